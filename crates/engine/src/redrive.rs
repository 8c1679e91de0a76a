//! `RedriveExecution`: eligibility, client-token idempotency, and re-opening an execution at
//! its unsuccessful state (the interpreter's `Signal::Redrive`).
//!
//! Specification: `docs/redrive.md`. The choices it marks **[GUESS]** are made here,
//! each in one place: the order in which ineligibility reasons are checked
//! ([`Engine::redrive_status`]), the idempotency window (constants below), and what an
//! Express ARN answers ([`Engine::redrive_execution`]).

use store::{ExecutionRecord, ExecutionStatus, RedriveToken};

use crate::runner::{stored, Checkpoint};
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
            _ if e.history_length + 2 > c.max_history_events => {
                RedriveEligibility::Not("Execution history event limit exceeded")
            }
            _ if now - e.start_date > c.max_execution_time as i64 * 1000 => {
                RedriveEligibility::Not("Execution has exceeded the max execution time")
            }
            _ if e
                .stop_date
                .is_some_and(|stop| now - stop > c.redrive_window as i64 * 1000) =>
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
        match self.try_redrive(exec_arn, client_token.clone()).await {
            Err(Error::Store(store::Error::Conflict)) => {
                self.try_redrive(exec_arn, client_token).await
            }
            other => other,
        }
    }

    async fn try_redrive(&self, exec_arn: &str, client_token: Option<String>) -> Result<i64> {
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
        if let Some(token) = &client_token {
            if let Some(seen) = record.redrive_tokens.iter().find(|t| &t.token == token) {
                // A repeated request: the original answer, and nothing changes.
                return Ok(seen.redrive_date);
            }
        }
        match self.redrive_status(&record).await? {
            RedriveEligibility::Redrivable => {}
            RedriveEligibility::Not(reason) => {
                return Err(Error::ExecutionNotRedrivable(reason.into()));
            }
            RedriveEligibility::ByMapRun => {
                // [GUESS] §9 Q20: a direct redrive of a Map Run child is refused.
                return Err(Error::ExecutionNotRedrivable(
                    "Execution is a Map Run child: redrive its parent execution to redrive the Map Run"
                        .into(),
                ));
            }
        }
        if self.inner.runner.open_count() >= self.config().max_open_executions {
            return Err(Error::ExecutionLimitExceeded(format!(
                "Execution Limit Exceeded: the account has {} open executions",
                self.config().max_open_executions
            )));
        }
        if let Some(token) = client_token {
            record.redrive_tokens.push(RedriveToken {
                token,
                first_used: now,
                redrive_date: now,
            });
            let excess = record.redrive_tokens.len().saturating_sub(TOKENS_KEPT);
            record.redrive_tokens.drain(..excess);
        }
        // The redrive is committed first (record RUNNING, new count and date, the
        // ExecutionRedriven event) and applied to the checkpoint after the answer
        // (`Runner::reopen_detached`): answering neither reads nor writes the checkpoint,
        // whose size grows with the execution's Maps and Parallels.
        let def = self.inner.runner.definition(&record.definition)?;
        mark_redriven(&mut record, now);
        record.status = ExecutionStatus::Running;
        record.version += 1;
        let event =
            asl::interpreter::redriven_event(record.history_length, record.redrive_count, now);
        record.history_length = event.id;
        let events = [event];
        let write = store::Write::Record {
            execution: record.clone(),
            events: stored(&events),
        };
        self.store()
            .commit(vec![write])
            .await?
            .pop()
            .unwrap_or(Ok(()))?;
        self.inner.runner.observe(&record, &events);
        self.inner.runner.reopen_detached(def, record).await;
        Ok(now)
    }

    /// Re-opens a closed execution at once: its redrive count and date, then the
    /// interpreter's `Redrive` signal (how a Map Run redrives its Standard children in place).
    pub(crate) async fn reopen_for_redrive(
        &self,
        mut record: ExecutionRecord,
        now: i64,
    ) -> Result<()> {
        let def = self.inner.runner.definition(&record.definition)?;
        mark_redriven(&mut record, now);
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
