//! Execution operations: start (async and sync), describe, list, history, stop.

use std::sync::Arc;

use asl::error::names;
use asl::history::HistoryEvent;
use asl::interpreter::{ExecutionInfo, Signal};
use serde_json::Value;
use store::{
    Cursor, ExecutionFilter, ExecutionRecord, ExecutionStatus, MapRunChild, StateMachineType,
};
use tokio::sync::oneshot;

use crate::machines::not_found;
use crate::runner::{Checkpoint, ParentLink, Signalled};
use crate::{arn, Engine, Error, Result};

/// What `StartExecution` answers.
#[derive(Debug, Clone)]
pub struct StartedExecution {
    pub arn: String,
    pub start_date: i64,
}

/// One page of `ListExecutions`.
#[derive(Debug, Clone)]
pub struct ExecutionPage {
    pub executions: Vec<ExecutionRecord>,
    pub next_token: Option<String>,
}

/// What `GetExecutionHistory` asks for.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub arn: String,
    pub max_results: usize,
    pub reverse: bool,
    pub next_token: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    pub next_token: Option<String>,
}

/// What a new execution is made of.
pub(crate) struct NewExecution {
    pub arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub definition: String,
    pub revision_id: Option<String>,
    pub input_text: String,
    pub input: Value,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
    pub parent: Option<ParentLink>,
    pub test_case: Option<String>,
    pub map_run: Option<MapRunChild>,
    pub trace_header: Option<String>,
}

/// How long `StartSyncExecution` waits for an Express execution (AWS: 5 minutes).
const SYNC_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);
/// See [`Engine::wait_for_end`].
const END_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// An execution input as JSON; AWS's `InvalidExecutionInput` with Jackson's message (AWS's
/// parser) when it is not.
pub(crate) fn parse_execution_input(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        let problem = match asl::jackson::syntax_error(text) {
            Some(j) => format!("{}: {j}", j.exception_class()),
            None => e.to_string(),
        };
        Error::InvalidExecutionInput(format!(
            "Invalid State Machine Execution Input: '{problem}'"
        ))
    })
}

/// An execution's name as its start asks for it.
enum Naming {
    /// The caller's, or none (a UUID is chosen).
    Caller(Option<String>),
    /// Chosen by the engine for a child, and kept across tries of its start.
    Own(String),
}

impl Engine {
    /// Starts a Standard execution (or an asynchronous Express one).
    pub async fn start_execution(
        &self,
        sm_arn: &str,
        name: Option<String>,
        input: Option<String>,
        trace_header: Option<String>,
    ) -> Result<StartedExecution> {
        let (record, _) = self
            .launch(
                sm_arn,
                Naming::Caller(name),
                input,
                trace_header,
                None,
                None,
            )
            .await?;
        Ok(StartedExecution {
            arn: record.arn,
            start_date: record.start_date,
        })
    }

    /// Starts a child execution for a `states:startExecution` task. With `own_name` (the
    /// engine chose `name`), an execution found stored under it is this child, from a try
    /// whose answer was lost: it is taken up ([`crate::runner::Runner::adopt`]).
    pub(crate) async fn start_linked(
        &self,
        sm_arn: &str,
        name: String,
        own_name: bool,
        input: Option<String>,
        parent: Option<ParentLink>,
    ) -> Result<ExecutionRecord> {
        let naming = if own_name {
            Naming::Own(name)
        } else {
            Naming::Caller(Some(name))
        };
        Ok(self
            .launch(sm_arn, naming, input, None, None, parent)
            .await?
            .0)
    }

    /// Runs an Express execution to its end and returns its final record.
    pub async fn start_sync_execution(
        &self,
        sm_arn: &str,
        name: Option<String>,
        input: Option<String>,
        trace_header: Option<String>,
    ) -> Result<ExecutionRecord> {
        let (tx, rx) = oneshot::channel();
        let (started, express) = self
            .launch(
                sm_arn,
                Naming::Caller(name),
                input,
                trace_header,
                Some(tx),
                None,
            )
            .await?;
        if !express {
            return Err(Error::StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine".into(),
            ));
        }
        if started.status != ExecutionStatus::Running {
            return Ok(started);
        }
        match tokio::time::timeout(SYNC_LIMIT, rx).await {
            Ok(Ok(done)) => Ok(done),
            _ => {
                let stop = Signal::Stop {
                    error: Some(names::TIMEOUT.into()),
                    cause: None,
                };
                match self.inner.runner.signal(&started.arn, stop).await? {
                    Signalled::Applied(r) => Ok(Arc::unwrap_or_clone(r)),
                    _ => Ok(started),
                }
            }
        }
    }

    /// Starts an execution; returns its record and whether it is an Express execution.
    async fn launch(
        &self,
        sm_arn: &str,
        naming: Naming,
        input: Option<String>,
        trace_header: Option<String>,
        waiter: Option<oneshot::Sender<ExecutionRecord>>,
        parent: Option<ParentLink>,
    ) -> Result<(ExecutionRecord, bool)> {
        let (name, own_name) = match naming {
            Naming::Caller(name) => (name, false),
            Naming::Own(name) => (Some(name), true),
        };
        // `stateMachineArn#TestCase` selects a MockConfigFile test case.
        let (sm_arn, test_case) = match sm_arn.split_once('#') {
            Some((arn, case)) => (arn, Some(case.to_owned())),
            None => (sm_arn, None),
        };
        if test_case.is_some() && self.config().mock_config.is_none() {
            return Err(Error::Validation(
                "A test case was given but the server has no mock configuration (--mock-config)"
                    .into(),
            ));
        }
        let target = self.resolve_target(sm_arn).await?;
        let sm = target.machine;
        let sm_parts = arn::parse_state_machine(&sm.arn)?;
        let express = sm.kind == StateMachineType::Express;
        if !express && parent.is_none() {
            self.admit(&sm.arn)?;
        }
        if waiter.is_some() && !express {
            return Err(Error::StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine".into(),
            ));
        }
        let input_text = input.unwrap_or_else(|| "{}".into());
        let input_value = parse_execution_input(&input_text)?;
        let name = match name {
            Some(n) => {
                arn::check_name(&n)?;
                n
            }
            None => self.new_uuid(),
        };
        let exec_arn = if express {
            arn::express_execution(&sm_parts, &name, &self.new_uuid())
        } else {
            arn::execution(&sm_parts, &name)
        };
        let def = self.inner.runner.definition(&sm.definition)?;
        let (record, checkpoint) = self.new_execution(NewExecution {
            arn: exec_arn.clone(),
            name,
            state_machine_arn: sm.arn.clone(),
            state_machine_name: sm.name.clone(),
            role_arn: sm.role_arn.clone(),
            definition: sm.definition.clone(),
            revision_id: sm.revision_id.clone(),
            input_text: input_text.clone(),
            input: input_value,
            version_arn: target.version_arn,
            alias_arn: target.alias_arn,
            parent: parent.clone(),
            test_case,
            map_run: None,
            trace_header,
        });
        match self
            .inner
            .runner
            .start(def, record, checkpoint, !express, waiter)
            .await
        {
            Ok(r) => Ok((r, express)),
            Err(Error::Store(store::Error::AlreadyExists)) => {
                // Idempotent by name: the same input while it runs returns the same execution.
                let existing = self.store().get_execution(&exec_arn).await?;
                match existing {
                    Some(e) if e.input == input_text && own_name => {
                        self.inner.runner.adopt(e.clone(), parent).await;
                        Ok((e, express))
                    }
                    Some(e) if e.status == ExecutionStatus::Running && e.input == input_text => {
                        self.inner.runner.adopt(e.clone(), None).await;
                        Ok((e, express))
                    }
                    _ => Err(Error::ExecutionAlreadyExists(format!(
                        "Execution Already Exists: '{exec_arn}'"
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses a Standard execution beyond `--max-open-executions` (counted as
    /// `ExecutionThrottled`).
    pub(crate) fn admit(&self, state_machine_arn: &str) -> Result<()> {
        let limit = self.config().max_open_executions;
        if self.inner.runner.open_count() < limit {
            return Ok(());
        }
        crate::metrics::execution_throttled(state_machine_arn);
        Err(Error::ExecutionLimitExceeded(format!(
            "Execution Limit Exceeded: the account has {limit} open executions"
        )))
    }

    /// The record and checkpoint of an execution about to start.
    pub(crate) fn new_execution(&self, n: NewExecution) -> (ExecutionRecord, Checkpoint) {
        let now = self.now();
        let shard = self.inner.runner.place();
        let info = ExecutionInfo {
            execution_arn: n.arn.clone(),
            name: n.name.clone(),
            state_machine_arn: n.state_machine_arn.clone(),
            state_machine_name: n.state_machine_name,
            role_arn: n.role_arn.clone(),
            start_time: now,
            input: n.input,
            redrive_count: 0,
            redrive_time: None,
            input_text: n.input_text.clone(),
            state_machine_version_arn: n.version_arn.clone(),
            state_machine_alias_arn: n.alias_arn.clone(),
        };
        let record = ExecutionRecord {
            arn: n.arn,
            state_machine_arn: n.state_machine_arn,
            name: n.name,
            status: ExecutionStatus::Running,
            start_date: now,
            stop_date: None,
            input: n.input_text,
            output: None,
            error: None,
            cause: None,
            role_arn: n.role_arn,
            definition: n.definition,
            revision_id: n.revision_id,
            runtime: String::new(),
            wake_at: None,
            redrive_count: 0,
            redrive_date: None,
            version: 0,
            history_length: 0,
            redrive_tokens: Vec::new(),
            state_machine_version_arn: n.version_arn,
            state_machine_alias_arn: n.alias_arn,
            map_run: n.map_run,
            trace_header: n.trace_header,
            redrive_batch: None,
            redrive_change: None,
            shard,
        };
        let checkpoint = Checkpoint {
            info,
            runtime: asl::interpreter::Runtime::new(),
            parent: n.parent,
            test_case: n.test_case,
        };
        (record, checkpoint)
    }

    pub async fn describe_execution(&self, exec_arn: &str) -> Result<ExecutionRecord> {
        arn::parse_execution(exec_arn)?;
        if let Some(r) = self.store().get_execution(exec_arn).await? {
            return Ok(r);
        }
        match self.inner.runner.running_record(exec_arn).await {
            Some(r) => Ok(r),
            None => Err(execution_not_found(exec_arn)),
        }
    }

    /// Waits until the execution is no longer `RUNNING` and returns its record. (An
    /// execution that is stored as running but not live here, which happens only while a
    /// redriven one re-opens, is looked at again every [`END_POLL`].)
    pub async fn wait_for_end(&self, exec_arn: &str) -> Result<ExecutionRecord> {
        loop {
            if let Some(end) = self.inner.runner.end_of(exec_arn).await {
                if let Ok(record) = end.await {
                    return Ok(record);
                }
            }
            let record = self.describe_execution(exec_arn).await?;
            if record.status != ExecutionStatus::Running {
                return Ok(record);
            }
            tokio::time::sleep(END_POLL).await;
        }
    }

    /// Stops a running execution and returns the stop date.
    pub async fn stop_execution(
        &self,
        exec_arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<i64> {
        let record = self.describe_execution(exec_arn).await?;
        if record.status != ExecutionStatus::Running {
            // Stopping an execution that already ended changes nothing.
            return Ok(record.stop_date.unwrap_or_else(|| self.now()));
        }
        match self
            .inner
            .runner
            .signal(exec_arn, Signal::Stop { error, cause })
            .await?
        {
            Signalled::Applied(r) => Ok(r.stop_date.unwrap_or_else(|| self.now())),
            _ => Ok(self.now()),
        }
    }

    /// `ListExecutions` of a state machine (`target` a state machine, version or alias ARN)
    /// or of a Map Run (`target` a Map Run ARN: its children).
    pub async fn list_executions(
        &self,
        target: &str,
        status: Option<ExecutionStatus>,
        redriven: Option<bool>,
        max_results: usize,
        next_token: Option<&str>,
    ) -> Result<ExecutionPage> {
        let (base, qualifier, map_run_arn) = if target.contains(":mapRun:") {
            let sm = self.map_run_state_machine(target).await?;
            (sm, None, Some(target.to_owned()))
        } else {
            let (base, qualifier) = self.list_target(target).await?;
            (base, qualifier, None)
        };
        let after = next_token.map(decode_cursor).transpose()?;
        let limit = if max_results == 0 { 100 } else { max_results };
        let mut executions = self
            .store()
            .list_executions(ExecutionFilter {
                state_machine_arn: base,
                status,
                redriven,
                qualifier,
                map_run_arn,
                after,
                limit: limit + 1,
            })
            .await?;
        let next_token = if executions.len() > limit {
            executions.truncate(limit);
            executions
                .last()
                .map(|e| encode_cursor(e.start_date, &e.arn))
        } else {
            None
        };
        Ok(ExecutionPage {
            executions,
            next_token,
        })
    }

    /// The state machine whose executions to list, and the version or alias qualifier.
    pub(crate) async fn list_target(&self, sm_arn: &str) -> Result<(String, Option<String>)> {
        // A version or alias ARN lists the executions that ran that version or were started
        // through that alias.
        let (parts, qualifier) = arn::parse_qualified(sm_arn)?;
        let base = arn::unqualified(&parts);
        let sm = self
            .store()
            .get_state_machine(&base)
            .await?
            .ok_or_else(|| not_found(sm_arn))?;
        let qualifier = match qualifier {
            arn::Qualifier::None => None,
            arn::Qualifier::Version(_) => {
                if self.store().get_version(sm_arn).await?.is_none() {
                    return Err(not_found(sm_arn));
                }
                Some(sm_arn.to_owned())
            }
            arn::Qualifier::Alias(_) => {
                if self.store().get_alias(sm_arn).await?.is_none() {
                    return Err(not_found(sm_arn));
                }
                Some(sm_arn.to_owned())
            }
        };
        if sm.kind == StateMachineType::Express {
            return Err(Error::StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine".into(),
            ));
        }
        Ok((base, qualifier))
    }

    pub async fn get_execution_history(&self, q: HistoryQuery) -> Result<HistoryPage> {
        let record = self.describe_execution(&q.arn).await?;
        if crate::arn::is_express_execution(&record.arn) {
            return Err(Error::Validation(
                "This operation is not supported by this type of state machine".into(),
            ));
        }
        // The record knows its history length: no need to parse the checkpoint.
        let last = record.history_length;
        let limit = if q.max_results == 0 {
            100
        } else {
            q.max_results
        } as u64;
        let start = match &q.next_token {
            Some(t) => t
                .strip_prefix("h")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n >= 1 && *n <= last)
                .ok_or_else(|| Error::InvalidToken(format!("Invalid Token: '{t}'")))?,
            None if q.reverse => last,
            None => 1,
        };
        let (from, to) = if q.reverse {
            (start.saturating_sub(limit - 1).max(1), start)
        } else {
            (start, (start + limit - 1).min(last))
        };
        let stored = self
            .store()
            .history(&q.arn, from, to, limit as usize)
            .await?;
        let mut events = stored
            .iter()
            .map(|e| crate::stored_event::parse(&e.body))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())))?;
        let next = if q.reverse {
            from.checked_sub(1).filter(|n| *n >= 1)
        } else {
            Some(to + 1).filter(|n| *n <= last)
        };
        if q.reverse {
            events.reverse();
        }
        Ok(HistoryPage {
            events,
            next_token: next.map(|n| format!("h{n}")),
        })
    }
}

pub(crate) fn execution_not_found(arn: &str) -> Error {
    Error::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
}

/// Page tokens are opaque to clients: the cursor, hex-encoded.
fn encode_cursor(start_date: i64, arn: &str) -> String {
    format!("{start_date}:{arn}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(token: &str) -> Result<Cursor> {
    let invalid = || Error::InvalidToken(format!("Invalid Token: '{token}'"));
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.split_once(':')
        .and_then(|(d, a)| {
            Some(Cursor {
                start_date: d.parse().ok()?,
                arn: a.to_owned(),
            })
        })
        .ok_or_else(invalid)
}
