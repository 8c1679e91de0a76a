//! Redrive from a chosen state, with new input, or onto another definition (stepwise's
//! extensions, docs/redrive-extensions.md). The redrive is `RedriveExecution`'s (eligibility,
//! client tokens, `ExecutionRedriven`, the `Redrive` signal); only where and on what it
//! re-opens differs: the checkpoint is moved (`asl::interpreter::restart_at` /
//! `replace_input`), checked against the new definition (`asl::interpreter::conflicts`) and
//! written in the commit of the redrive, with the new definition and what changed kept on the
//! record (`RedriveChange`).

use std::sync::Arc;

use asl::definition::Definition;
use asl::history::EventDetails;
use serde_json::Value;
use store::{ExecutionRecord, LaneRow, RedriveChange};

use crate::arn::{self, Qualifier};
use crate::checkpoint::Lanes;
use crate::executions::parse_execution_input;
use crate::redrive::Caller;
use crate::runner::Checkpoint;
use crate::{Engine, Error, Result};

/// History events read per page while looking for a state's last entry.
const PAGE: usize = 1000;

/// Where and with what a redrive re-opens an execution.
#[derive(Debug, Clone, Default)]
pub struct RedriveChanges {
    /// A state path (`State`, or `State/lane/State…` into the lanes of the Parallel or Map
    /// the execution stopped in); `None`: where it stopped.
    pub from_state: Option<String>,
    /// The input that state gets instead (JSON text).
    pub input: Option<String>,
    /// The definition the execution continues on; `None`: the one it runs.
    pub definition: Option<RedriveOnto>,
}

/// Which definition a redrive moves an execution onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveOnto {
    /// The state machine's current revision (`CURRENT`).
    Current,
    /// A published version of the execution's state machine, by its ARN.
    Version(String),
}

impl RedriveOnto {
    /// `CURRENT`, or anything else as a version ARN.
    pub fn parse(text: &str) -> RedriveOnto {
        match text {
            "CURRENT" => RedriveOnto::Current,
            arn => RedriveOnto::Version(arn.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RedriveOnto::Current => "CURRENT",
            RedriveOnto::Version(arn) => arn,
        }
    }
}

/// A definition an execution is moved onto.
pub(crate) struct Target {
    pub text: String,
    pub parsed: Arc<Definition>,
    pub revision_id: Option<String>,
    pub role_arn: String,
}

/// A checkpoint moved for a redrive, stored.
pub(crate) struct Moved {
    pub runtime: String,
    pub lanes: Vec<LaneRow>,
    pub change: RedriveChange,
    /// The definition it runs on from now, when it changes.
    pub target: Option<Target>,
}

impl Engine {
    /// Redrives `exec_arn` re-opened as `changes` say; returns the redrive date.
    pub async fn redrive_execution_from(
        &self,
        exec_arn: &str,
        changes: RedriveChanges,
        client_token: Option<String>,
    ) -> Result<i64> {
        self.redrive_changed(exec_arn, Caller::Aws(client_token), Some(&changes))
            .await
    }

    /// The checkpoint of `record` moved as `changes` say, or why it cannot be.
    pub(crate) async fn reposition(
        &self,
        record: &ExecutionRecord,
        def: &Arc<Definition>,
        changes: &RedriveChanges,
        now: i64,
    ) -> Result<Moved> {
        let input = changes
            .input
            .as_deref()
            .map(parse_execution_input)
            .transpose()?;
        let target = match &changes.definition {
            Some(onto) => Some(self.redrive_target(record, onto).await?),
            None => None,
        };
        let def = target.as_ref().map_or(def, |t| &t.parsed);
        let (mut checkpoint, _) = Checkpoint::load(self.store(), record).await?;
        let refused = |e: asl::interpreter::RestartError| Error::Validation(e.to_string());
        let previous = match &changes.from_state {
            None if input.is_none() && target.is_some() => None,
            None => {
                let previous = checkpoint.runtime.current.as_ref().map(|c| c.input.clone());
                let input = input.ok_or_else(|| {
                    Error::Validation(
                        "Give a state to re-open at, a new input, a definition, or some of them"
                            .into(),
                    )
                })?;
                asl::interpreter::replace_input(&mut checkpoint.runtime, input, now)
                    .map_err(refused)?;
                previous
            }
            Some(path) if !path.contains('/') => {
                // A top-level state: the input of its last entry, from the history.
                let entered = match def.root.state(path) {
                    Some(_) => self.last_entered_input(record, path).await?,
                    None => None,
                };
                let given = input.or_else(|| entered.clone());
                asl::interpreter::restart_at(def, &mut checkpoint.runtime, path, given, now)
                    .map_err(refused)?;
                if entered.is_none() {
                    return Err(refused(asl::interpreter::RestartError::NeverEntered(
                        path.clone(),
                    )));
                }
                entered
            }
            Some(path) => {
                let runtime = &mut checkpoint.runtime;
                match asl::interpreter::restart_at(def, runtime, path, input, now) {
                    // A state the lane left: the input of its last entry in that lane.
                    Err(asl::interpreter::RestartError::InputNeeded(state)) => {
                        let trail = asl::interpreter::lane_trail(runtime, path);
                        let entered = self
                            .entered_input_of(record, &trail, &state)
                            .await?
                            .ok_or_else(|| {
                                refused(asl::interpreter::RestartError::InputNeeded(state))
                            })?;
                        asl::interpreter::restart_at(
                            def,
                            runtime,
                            path,
                            Some(entered.clone()),
                            now,
                        )
                        .map_err(refused)?;
                        Some(entered)
                    }
                    other => other.map(|()| None).map_err(refused)?,
                }
            }
        };
        if let Some(target) = &target {
            let old = self.inner.runner.definition(&record.definition)?;
            let conflicts = asl::interpreter::conflicts(&old, &target.parsed, &checkpoint.runtime);
            if !conflicts.is_empty() {
                let list: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
                return Err(Error::Validation(format!(
                    "Cannot redrive onto definition '{}': {}",
                    changes.definition.as_ref().map_or("", RedriveOnto::as_str),
                    list.join("; ")
                )));
            }
            checkpoint.info.role_arn = target.role_arn.clone();
        }
        let (runtime, lanes) = checkpoint.store(Lanes::All);
        Ok(Moved {
            runtime,
            lanes,
            change: RedriveChange {
                redrive_count: 0,
                from_state: changes.from_state.clone(),
                previous_input: previous.map(|v| v.to_string()),
                input: changes.input.clone(),
                definition: changes.definition.as_ref().map(|d| d.as_str().to_owned()),
                previous_revision_id: target.as_ref().and(record.revision_id.clone()),
            },
            target,
        })
    }

    /// The definition `onto` names for `record`'s state machine.
    async fn redrive_target(&self, record: &ExecutionRecord, onto: &RedriveOnto) -> Result<Target> {
        let (text, revision_id, role_arn) = match onto {
            RedriveOnto::Current => {
                let sm = self
                    .store()
                    .get_state_machine(&record.state_machine_arn)
                    .await?
                    .ok_or_else(|| {
                        Error::StateMachineDoesNotExist(format!(
                            "State Machine Does Not Exist: '{}'",
                            record.state_machine_arn
                        ))
                    })?;
                (sm.definition, sm.revision_id, sm.role_arn)
            }
            RedriveOnto::Version(version_arn) => {
                let (a, qualifier) = arn::parse_qualified(version_arn)?;
                if !matches!(qualifier, Qualifier::Version(_))
                    || arn::unqualified(&a) != record.state_machine_arn
                {
                    return Err(Error::Validation(format!(
                        "Invalid definition '{version_arn}': give CURRENT or a version ARN of '{}'",
                        record.state_machine_arn
                    )));
                }
                let v = self
                    .store()
                    .get_version(version_arn)
                    .await?
                    .ok_or_else(|| Error::resource_not_found(version_arn))?;
                (v.definition, v.revision_id, v.role_arn)
            }
        };
        Ok(Target {
            parsed: self.inner.runner.definition(&text)?,
            text,
            revision_id,
            role_arn,
        })
    }

    /// The input of the newest of the `…StateEntered` events `ids` (oldest first) that
    /// entered `state`.
    async fn entered_input_of(
        &self,
        record: &ExecutionRecord,
        ids: &[u64],
        state: &str,
    ) -> Result<Option<Value>> {
        for &id in ids.iter().rev() {
            for stored in self.store().history(&record.arn, id, id, 1).await? {
                if let Some(input) = entered_input(&stored.body, state)? {
                    return Ok(Some(input));
                }
            }
        }
        Ok(None)
    }

    /// The input of the last `…StateEntered` event of `state`, newest page first.
    async fn last_entered_input(
        &self,
        record: &ExecutionRecord,
        state: &str,
    ) -> Result<Option<Value>> {
        let mut to = record.history_length;
        while to >= 1 {
            let from = to.saturating_sub(PAGE as u64 - 1).max(1);
            let page = self.store().history(&record.arn, from, to, PAGE).await?;
            for stored in page.iter().rev() {
                if let Some(input) = entered_input(&stored.body, state)? {
                    return Ok(Some(input));
                }
            }
            to = from - 1;
        }
        Ok(None)
    }
}

/// The input of a stored event if it is a `…StateEntered` of `state`.
fn entered_input(body: &str, state: &str) -> Result<Option<Value>> {
    let corrupt = |e: serde_json::Error| Error::Store(store::Error::Corrupt(e.to_string()));
    let event = crate::stored_event::parse(body).map_err(corrupt)?;
    match &event.details {
        EventDetails::StateEntered { name, input, .. } if name == state => {
            crate::stored_json::from_str(input)
                .map(Some)
                .map_err(corrupt)
        }
        _ => Ok(None),
    }
}
