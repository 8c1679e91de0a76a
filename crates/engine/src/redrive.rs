//! `RedriveExecution`: eligibility, client-token idempotency, and re-opening an execution at
//! its unsuccessful state (the interpreter's `Signal::Redrive`).
//!
//! Specification: `docs/redrive.md`. The choices it marks **[GUESS]** are made here,
//! each in one place: the order in which ineligibility reasons are checked
//! ([`Engine::redrive_status`]), the idempotency window (constants below), and what an
//! Express ARN answers ([`Engine::redrive_execution`]).

use store::{ExecutionRecord, ExecutionStatus, RedriveToken};

use crate::redrive_from::RedriveChanges;
use crate::runner::Checkpoint;
use crate::{arn, executions::execution_not_found, Engine, Error, Result};

/// How many recent client tokens an execution remembers, and for how long ([DOC] §3.3).
const TOKENS_KEPT: usize = 10;
const TOKEN_TTL_MILLIS: i64 = 15 * 60 * 1000;

/// Executions started before RedriveExecution existed (2023-11-15) are not redrivable.
const REDRIVE_LAUNCH_MILLIS: i64 = 1_700_006_400_000;

/// Whether an execution can be redriven now (DescribeExecution's `redriveStatus` and
/// `redriveStatusReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveEligibility {
    Redrivable,
    /// A Map Run child: it is redriven with its Map Run, by redriving the parent.
    ByMapRun,
    /// Not redrivable, for this reason (AWS's text).
    Not(&'static str),
}

impl RedriveEligibility {
    /// AWS's `ExecutionRedriveStatus` for it, and the reason when it is not redrivable.
    pub fn status(self) -> (&'static str, Option<&'static str>) {
        match self {
            RedriveEligibility::Redrivable => ("REDRIVABLE", None),
            RedriveEligibility::ByMapRun => ("REDRIVABLE_BY_MAP_RUN", None),
            RedriveEligibility::Not(reason) => ("NOT_REDRIVABLE", Some(reason)),
        }
    }

    /// Why `RedriveExecution` refuses the execution (`ExecutionNotRedrivable`'s message);
    /// `None` when it accepts it.
    pub fn refusal(self) -> Option<String> {
        match self {
            RedriveEligibility::Redrivable => None,
            RedriveEligibility::Not(reason) => Some(reason.into()),
            // [GUESS] §9 Q20: a direct redrive of a Map Run child is refused.
            RedriveEligibility::ByMapRun => Some(
                "Execution is a Map Run child: redrive its parent execution to redrive the Map Run"
                    .into(),
            ),
        }
    }
}

/// Who asks for a redrive, and what makes a repeated request the same one.
pub(crate) enum Caller {
    /// `RedriveExecution`, with its optional client token.
    Aws(Option<String>),
    /// A bulk redrive, by its batch token (kept on the record: a batch redrives an execution
    /// at most once).
    Batch(String),
}

impl Engine {
    /// Whether `e` can be redriven now, and why not. [GUESS] §2.4: the reasons are checked
    /// in this order, the same for DescribeExecution and RedriveExecution.
    pub async fn redrive_status(&self, e: &ExecutionRecord) -> Result<RedriveEligibility> {
        let now = self.now();
        let c = self.config();
        if crate::arn::is_express_execution(&e.arn) {
            return Ok(RedriveEligibility::Not(
                "Execution is of type EXPRESS and cannot be redriven",
            ));
        }
        if e.map_run.is_some() {
            // A Map Run child is redriven with its Map Run, by redriving the parent (§6.1).
            return Ok(match e.status {
                ExecutionStatus::Running => {
                    RedriveEligibility::Not("Execution is RUNNING and cannot be redriven")
                }
                ExecutionStatus::Succeeded => {
                    RedriveEligibility::Not("Execution is SUCCEEDED and cannot be redriven")
                }
                _ => RedriveEligibility::ByMapRun,
            });
        }
        if self
            .store()
            .get_state_machine(&e.state_machine_arn)
            .await?
            .is_none()
        {
            return Ok(RedriveEligibility::Not(
                "State machine is in DELETING status",
            ));
        }
        Ok(match e.status {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                RedriveEligibility::Not("Execution is RUNNING and cannot be redriven")
            }
            ExecutionStatus::Succeeded => {
                RedriveEligibility::Not("Execution is SUCCEEDED and cannot be redriven")
            }
            _ if e.start_date < REDRIVE_LAUNCH_MILLIS => RedriveEligibility::Not(
                "Execution was started before the launch of RedriveExecution",
            ),
            // Room is needed for ExecutionRedriven plus at least one more event.
            _ if c
                .max_history_events
                .is_some_and(|cap| e.history_length + 2 > cap) =>
            {
                RedriveEligibility::Not("Execution history event limit exceeded")
            }
            _ if now - e.start_date > c.max_execution_time as i64 * 1000 => {
                RedriveEligibility::Not("Execution has exceeded the max execution time")
            }
            _ if e
                .stop_date
                .zip(c.redrive_window)
                .is_some_and(|(stop, window)| {
                    now - stop > (window as i64).saturating_mul(1000)
                }) =>
            {
                RedriveEligibility::Not("Execution redrivable period exceeded")
            }
            _ => RedriveEligibility::Redrivable,
        })
    }

    /// `RedriveExecution`: re-opens a failed, aborted or timed-out Standard execution at its
    /// unsuccessful state and returns the redrive date.
    ///
    /// Concurrent redrives of one execution race for the same record version: one commits,
    /// the others are fenced off and answered from the record the winner wrote (the first
    /// answer for the same client token, `ExecutionNotRedrivable` otherwise).
    pub async fn redrive_execution(
        &self,
        exec_arn: &str,
        client_token: Option<String>,
    ) -> Result<i64> {
        self.redrive_once(exec_arn, Caller::Aws(client_token)).await
    }

    /// Redrives `exec_arn` once for `caller`: a repeated request gets the first answer.
    pub(crate) async fn redrive_once(&self, exec_arn: &str, caller: Caller) -> Result<i64> {
        self.redrive_changed(exec_arn, caller, None).await
    }

    /// Redrives `exec_arn` once for `caller`, re-opened as `changes` say (stepwise's
    /// extensions) or, without, where it stopped.
    pub(crate) async fn redrive_changed(
        &self,
        exec_arn: &str,
        caller: Caller,
        changes: Option<&RedriveChanges>,
    ) -> Result<i64> {
        match self.try_redrive(exec_arn, &caller, changes).await {
            Err(Error::Store(store::Error::Conflict)) => {
                self.try_redrive(exec_arn, &caller, changes).await
            }
            other => other,
        }
    }

    async fn try_redrive(
        &self,
        exec_arn: &str,
        caller: &Caller,
        changes: Option<&RedriveChanges>,
    ) -> Result<i64> {
        let parsed = arn::parse_execution(exec_arn)?;
        if parsed.resource_type == "express" {
            // [GUESS] §9 Q4: Express executions are answered as a wrong resource type.
            return Err(Error::InvalidArn(
                "Invalid Arn: 'Resource type not valid in this context: express'".into(),
            ));
        }
        let mut record = self
            .store()
            .get_execution(exec_arn)
            .await?
            .ok_or_else(|| execution_not_found(exec_arn))?;
        let now = self.now();
        record
            .redrive_tokens
            .retain(|t| now - t.first_used <= TOKEN_TTL_MILLIS);
        match caller {
            Caller::Aws(Some(token)) => {
                if let Some(seen) = record.redrive_tokens.iter().find(|t| &t.token == token) {
                    // A repeated request: the original answer, and nothing changes.
                    return Ok(seen.redrive_date);
                }
            }
            Caller::Aws(None) => {}
            Caller::Batch(token) => {
                if record.redrive_batch.as_ref() == Some(token) {
                    // Redriven by this batch before it was interrupted.
                    return Ok(record.redrive_date.unwrap_or(now));
                }
            }
        }
        if let Some(reason) = self.redrive_status(&record).await?.refusal() {
            return Err(Error::ExecutionNotRedrivable(reason));
        }
        self.admit(&record.state_machine_arn)?;
        match caller {
            Caller::Aws(Some(token)) => {
                record.redrive_tokens.push(RedriveToken {
                    token: token.clone(),
                    first_used: now,
                    redrive_date: now,
                });
                let excess = record.redrive_tokens.len().saturating_sub(TOKENS_KEPT);
                record.redrive_tokens.drain(..excess);
            }
            Caller::Aws(None) => {}
            Caller::Batch(token) => record.redrive_batch = Some(token.clone()),
        }
        // The redrive is committed first (record RUNNING, new count and date, the
        // ExecutionRedriven event) and applied to the checkpoint after the answer
        // (`Runner::reopen_detached`): answering neither reads nor writes the checkpoint,
        // whose size grows with the execution's Maps and Parallels. A redrive that re-opens
        // elsewhere (`changes`) writes the moved checkpoint in the same commit.
        let mut def = self.inner.runner.definition(&record.definition)?;
        let moved = match changes {
            Some(changes) => Some(self.reposition(&record, &def, changes, now).await?),
            None => None,
        };
        mark_redriven(&mut record, now);
        record.status = ExecutionStatus::Running;
        record.version += 1;
        let event =
            asl::interpreter::redriven_event(record.history_length, record.redrive_count, now);
        record.history_length = event.id;
        let events = [event];
        let write = match moved {
            None => store::Write::Record {
                execution: record.clone(),
                events: crate::stored_event::rows(&events),
            },
            Some(moved) => {
                record.runtime = moved.runtime;
                record.redrive_change = Some(store::RedriveChange {
                    redrive_count: record.redrive_count,
                    ..moved.change
                });
                match moved.target {
                    None => store::Write::Transition {
                        execution: record.clone(),
                        events: crate::stored_event::rows(&events),
                        lanes: moved.lanes,
                        // No task is scheduled here: the re-opened execution's steps do.
                        offers: Vec::new(),
                    },
                    Some(target) => {
                        (record.definition, record.revision_id, record.role_arn) =
                            (target.text, target.revision_id, target.role_arn);
                        def = target.parsed;
                        store::Write::Redefine {
                            execution: record.clone(),
                            events: crate::stored_event::rows(&events),
                            lanes: moved.lanes,
                        }
                    }
                }
            }
        };
        self.store()
            .commit(vec![write])
            .await?
            .pop()
            .unwrap_or(Ok(()))?;
        self.inner.runner.observe(&record, &events);
        if self.inner.runner.runs_shard(record.shard) {
            self.inner.runner.reopen_detached(def, record).await;
        } else {
            // Committed: if the owner does not hear of it, its next start resumes it.
            self.inner.runner.redriven_elsewhere(&record.arn).await?;
        }
        Ok(now)
    }

    /// Re-opens a closed execution at once: its redrive count and date, then the
    /// interpreter's `Redrive` signal (how a Map Run redrives its Standard children in place).
    /// One of another node's shard is redriven as `RedriveExecution` does it there: the
    /// redrive committed here, re-opened by that node.
    pub(crate) async fn reopen_for_redrive(
        &self,
        mut record: ExecutionRecord,
        now: i64,
    ) -> Result<()> {
        let def = self.inner.runner.definition(&record.definition)?;
        mark_redriven(&mut record, now);
        if !self.inner.runner.runs_shard(record.shard) {
            record.status = ExecutionStatus::Running;
            record.version += 1;
            let event =
                asl::interpreter::redriven_event(record.history_length, record.redrive_count, now);
            record.history_length = event.id;
            let write = store::Write::Record {
                execution: record.clone(),
                events: crate::stored_event::rows(std::slice::from_ref(&event)),
            };
            self.store()
                .commit(vec![write])
                .await?
                .pop()
                .unwrap_or(Ok(()))?;
            self.inner.runner.observe(&record, &[event]);
            return self.inner.runner.redriven_elsewhere(&record.arn).await;
        }
        let checkpoint = Checkpoint::for_redrive(self.store(), &record).await?;
        self.inner
            .runner
            .reopen(def, record, checkpoint, false)
            .await?;
        Ok(())
    }
}

/// A closed record's new redrive count and date; it has no end any more.
fn mark_redriven(record: &mut ExecutionRecord, now: i64) {
    record.redrive_count += 1;
    record.redrive_date = Some(now);
    record.stop_date = None;
    (record.output, record.error, record.cause) = (None, None, None);
}
