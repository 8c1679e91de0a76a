//! Bulk redrive, a stepwise extension beside `RedriveExecution`: select closed executions of
//! a state machine, see what a redrive would do to each (dry run), then redrive them under a
//! batch token.
//!
//! The batch is durable: its record and its list of executions are written once, when it is
//! created, and each execution's outcome is written as it is known. An execution redriven by
//! the batch carries the batch token on its record, written in the same commit as the
//! redrive, so a batch resumed after a crash (at the next start) answers an execution it had
//! already redriven from that record instead of redriving it again.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use store::{
    ExecutionFilter, ExecutionRecord, ExecutionStatus, RedriveBatchItem, RedriveBatchRecord, Write,
};

use crate::redrive::Caller;
use crate::redrive_plan::{reruns, Reruns};
use crate::runner::Checkpoint;
use crate::{executions::execution_not_found, Engine, Error, Result};

/// Most executions one bulk redrive selects.
pub const MAX_SELECTED: usize = 10_000;
/// Executions redriven at once (their commits share a group commit).
const CONCURRENCY: usize = 64;
/// Executions read per page while selecting and resuming.
const PAGE: usize = 1000;
/// The statuses selected when the request names none: the redrivable ones.
const REDRIVABLE_STATUSES: [ExecutionStatus; 3] = [
    ExecutionStatus::Failed,
    ExecutionStatus::TimedOut,
    ExecutionStatus::Aborted,
];

/// Which executions a bulk redrive takes. Every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveSelection {
    /// A state machine, version or alias ARN (as for `ListExecutions`).
    pub state_machine_arn: String,
    /// Empty: `FAILED`, `TIMED_OUT` and `ABORTED`.
    pub statuses: Vec<ExecutionStatus>,
    /// The execution's error name, exactly.
    pub error: Option<String>,
    /// A substring of the execution's cause.
    pub cause_contains: Option<String>,
    /// Stopped at or after this time (epoch ms).
    pub stopped_after: Option<i64>,
    /// Stopped at or before this time (epoch ms).
    pub stopped_before: Option<i64>,
    pub min_redrive_count: Option<u32>,
    pub max_redrive_count: Option<u32>,
}

impl RedriveSelection {
    fn matches(&self, e: &ExecutionRecord) -> bool {
        let status_ok = match self.statuses.is_empty() {
            true => REDRIVABLE_STATUSES.contains(&e.status),
            false => self.statuses.contains(&e.status),
        };
        let stop = e.stop_date.unwrap_or(i64::MAX);
        status_ok
            && self
                .error
                .as_ref()
                .is_none_or(|x| e.error.as_ref() == Some(x))
            && self.cause_contains.as_ref().is_none_or(|x| {
                e.cause
                    .as_deref()
                    .is_some_and(|cause| cause.contains(x.as_str()))
            })
            && self.stopped_after.is_none_or(|t| stop >= t)
            && self.stopped_before.is_none_or(|t| stop <= t)
            && self.min_redrive_count.is_none_or(|n| e.redrive_count >= n)
            && self.max_redrive_count.is_none_or(|n| e.redrive_count <= n)
    }
}

/// What a redrive would do to one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRedrive {
    pub execution_arn: String,
    pub status: ExecutionStatus,
    pub redrive_count: u32,
    /// Why it cannot be redriven (the `ExecutionNotRedrivable` message); `None`: it can.
    pub not_redrivable: Option<String>,
    /// The places that would run again (empty when it cannot be redriven).
    pub reruns: Reruns,
}

/// What a bulk redrive did to one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome")]
pub enum BatchOutcome {
    Redriven {
        redrive_date: i64,
    },
    /// Refused, with the error `RedriveExecution` would have answered.
    Refused {
        code: String,
        message: String,
    },
}

/// One execution of a bulk redrive, with its outcome once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    pub index: u64,
    pub execution_arn: String,
    pub outcome: Option<BatchOutcome>,
}

/// A bulk redrive as `DescribeBulkRedrive` reports it.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub record: RedriveBatchRecord,
    pub selection: RedriveSelection,
    pub redriven: u64,
    pub refused: u64,
    pub pending: u64,
    /// A page of its executions.
    pub entries: Vec<BatchEntry>,
    /// The index the next page starts at.
    pub next: Option<u64>,
}

/// The bulk redrives this node is driving now (one driver per batch).
#[derive(Default)]
pub(crate) struct Driving(Mutex<HashSet<String>>);

impl Driving {
    fn claim(&self, token: &str) -> bool {
        self.0.lock().is_ok_and(|mut s| s.insert(token.to_owned()))
    }

    fn release(&self, token: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(token);
        }
    }
}

impl Engine {
    /// The executions `selection` takes, newest first; refused beyond [`MAX_SELECTED`].
    async fn select(&self, selection: &RedriveSelection) -> Result<Vec<ExecutionRecord>> {
        let (base, qualifier) = self.list_target(&selection.state_machine_arn).await?;
        let status = match selection.statuses.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let mut selected = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_executions(ExecutionFilter {
                    state_machine_arn: base.clone(),
                    status,
                    qualifier: qualifier.clone(),
                    after: after.take(),
                    limit: PAGE,
                    ..ExecutionFilter::default()
                })
                .await?;
            let full = page.len() == PAGE;
            after = page.last().map(|e| store::Cursor {
                start_date: e.start_date,
                arn: e.arn.clone(),
            });
            selected.extend(page.into_iter().filter(|e| selection.matches(e)));
            if selected.len() > MAX_SELECTED {
                return Err(Error::Validation(format!(
                    "The selection matches more than {MAX_SELECTED} executions: narrow it"
                )));
            }
            if !full {
                return Ok(selected);
            }
        }
    }

    /// What a redrive would do to the execution `arn` now.
    pub async fn plan_redrive(&self, arn: &str) -> Result<PlannedRedrive> {
        let record = self
            .store()
            .get_execution(arn)
            .await?
            .ok_or_else(|| execution_not_found(arn))?;
        let not_redrivable = self.redrive_status(&record).await?.refusal();
        let reruns = match not_redrivable {
            Some(_) => Reruns::default(),
            None => reruns(&Checkpoint::load(self.store(), &record).await?.0.runtime),
        };
        Ok(PlannedRedrive {
            execution_arn: record.arn,
            status: record.status,
            redrive_count: record.redrive_count,
            not_redrivable,
            reruns,
        })
    }

    /// The dry run of a bulk redrive: every execution it would take, and what a redrive
    /// would do to each.
    pub async fn plan_bulk_redrive(
        &self,
        selection: &RedriveSelection,
    ) -> Result<Vec<PlannedRedrive>> {
        let mut plans = Vec::new();
        for e in self.select(selection).await? {
            plans.push(self.plan_redrive(&e.arn).await?);
        }
        Ok(plans)
    }

    /// Starts a bulk redrive under `token` (or, for a token already used with the same
    /// selection, answers that batch and makes sure it is being driven) and returns it.
    pub async fn bulk_redrive(
        &self,
        token: &str,
        selection: RedriveSelection,
    ) -> Result<RedriveBatchRecord> {
        let text =
            serde_json::to_string(&selection).map_err(|e| Error::Validation(e.to_string()))?;
        let batch = match self.store().get_redrive_batch(token).await? {
            Some(batch) if batch.selection == text => batch,
            Some(_) => return Err(used_elsewhere(token)),
            None => {
                let arns: Vec<String> = self
                    .select(&selection)
                    .await?
                    .into_iter()
                    .map(|e| e.arn)
                    .collect();
                let batch = RedriveBatchRecord {
                    token: token.to_owned(),
                    state_machine_arn: selection.state_machine_arn.clone(),
                    selection: text,
                    creation_date: self.now(),
                    total: arns.len() as u64,
                    finish_date: None,
                };
                match self.store().create_redrive_batch(batch.clone(), arns).await {
                    Ok(()) => batch,
                    Err(store::Error::AlreadyExists) => {
                        // A concurrent request with the same token won: answer as a repeat.
                        return Box::pin(self.bulk_redrive(token, selection)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if batch.finish_date.is_none() {
            tokio::spawn(self.clone().drive_batch(token.to_owned()));
        }
        Ok(batch)
    }

    /// A bulk redrive and a page of its executions (`limit` from index `from`).
    pub async fn describe_bulk_redrive(
        &self,
        token: &str,
        from: u64,
        limit: usize,
    ) -> Result<BatchReport> {
        let record = self
            .store()
            .get_redrive_batch(token)
            .await?
            .ok_or_else(|| batch_not_found(token))?;
        let selection: RedriveSelection = serde_json::from_str(&record.selection)
            .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())))?;
        let (mut redriven, mut refused, mut pending) = (0, 0, 0);
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            let page = self.store().redrive_batch_items(token, at, PAGE).await?;
            let Some(last) = page.last() else { break };
            at = last.index + 1;
            for item in page {
                let entry = entry(item)?;
                match &entry.outcome {
                    Some(BatchOutcome::Redriven { .. }) => redriven += 1,
                    Some(BatchOutcome::Refused { .. }) => refused += 1,
                    None => pending += 1,
                }
                if entry.index >= from && entries.len() < limit {
                    entries.push(entry);
                }
            }
        }
        let next = entries
            .last()
            .map(|e| e.index + 1)
            .filter(|&n| n < record.total && entries.len() == limit);
        Ok(BatchReport {
            record,
            selection,
            redriven,
            refused,
            pending,
            entries,
            next,
        })
    }

    /// Resumes the bulk redrives a previous run left unfinished. On a store shared by
    /// several active nodes, it looks again every third of the claim TTL and resumes those
    /// whose driver stopped renewing its claim (a node that died).
    pub(crate) fn follow_bulk_redrives(&self) {
        let engine = self.clone();
        let shared = self.store().shards().is_some();
        let every = self.config().claim_ttl / 3;
        self.inner.runner.spawn_loop(async move {
            loop {
                match engine.store().unfinished_redrive_batches().await {
                    Ok(batches) => {
                        for batch in batches {
                            tokio::spawn(engine.clone().drive_batch(batch.token));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the unfinished bulk redrives")
                    }
                }
                if !shared {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Redrives every execution of the batch that has no outcome yet, [`CONCURRENCY`] at a
    /// time and at most `bulk_redrive_rate` a second, then marks the batch finished. On a
    /// storage failure it stops; the next start resumes it. On a store shared by several
    /// active nodes, the node claims the batch first and renews the claim while it drives
    /// it: one node drives it, another takes over once the claim expired.
    async fn drive_batch(self, token: String) {
        if !self.inner.redrive_batches.claim(&token) {
            return;
        }
        let driven = if self.store().shards().is_some() {
            self.drive_claimed(&token).await
        } else {
            self.drive(&token).await
        };
        if let Err(e) = driven {
            tracing::error!(batch = %token, error = %e, "bulk redrive interrupted");
        }
        self.inner.redrive_batches.release(&token);
    }

    /// [`Engine::drive`] under this node's claim on the batch, renewed every third of its
    /// TTL; stops when the claim is another node's or could not be renewed within its TTL.
    async fn drive_claimed(&self, token: &str) -> Result<()> {
        let (node, ttl) = (&self.config().node_id, self.config().claim_ttl);
        if !self.store().claim_redrive_batch(token, node, ttl).await? {
            return Ok(()); // another node drives it
        }
        tracing::info!(batch = %token, "driving bulk redrive");
        let renewing = async {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.store().claim_redrive_batch(token, node, ttl).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => return,
                    Err(e) if renewed.elapsed() >= ttl => {
                        tracing::warn!(batch = %token, error = %e, "bulk redrive claim not renewed");
                        return;
                    }
                    Err(_) => {}
                }
            }
        };
        tokio::select! {
            driven = self.drive(token) => driven,
            () = renewing => {
                tracing::warn!(batch = %token, "bulk redrive claim lost: another node drives it");
                Ok(())
            }
        }
    }

    async fn drive(&self, token: &str) -> Result<()> {
        let rate = self.config().bulk_redrive_rate as usize;
        let group = match rate {
            0 => CONCURRENCY,
            r => r.min(CONCURRENCY),
        };
        let mut from = 0;
        loop {
            let page = self.store().redrive_batch_items(token, from, PAGE).await?;
            let Some(last) = page.last() else { break };
            from = last.index + 1;
            let todo: Vec<RedriveBatchItem> =
                page.into_iter().filter(|i| i.outcome.is_none()).collect();
            for items in todo.chunks(group) {
                let began = tokio::time::Instant::now();
                let mut running = tokio::task::JoinSet::new();
                for item in items {
                    let (engine, token) = (self.clone(), token.to_owned());
                    let (index, arn) = (item.index, item.execution_arn.clone());
                    running.spawn(async move {
                        let outcome = engine.redrive_in_batch(&arn, token.clone()).await?;
                        let outcome = serde_json::to_string(&outcome)
                            .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())))?;
                        Ok::<_, Error>(Write::RedriveBatchItem {
                            token,
                            index,
                            outcome,
                        })
                    });
                }
                let mut writes = Vec::with_capacity(items.len());
                while let Some(done) = running.join_next().await {
                    match done {
                        Ok(write) => writes.push(write?),
                        Err(e) => return Err(Error::Store(store::Error::backend(e.to_string()))),
                    }
                }
                for result in self.store().commit(writes).await? {
                    result?;
                }
                if rate > 0 {
                    let due = Duration::from_secs_f64(items.len() as f64 / rate as f64);
                    tokio::time::sleep_until(began + due).await;
                }
            }
        }
        let mut batch = self
            .store()
            .get_redrive_batch(token)
            .await?
            .ok_or_else(|| batch_not_found(token))?;
        batch.finish_date = Some(self.now());
        self.store().update_redrive_batch(batch).await?;
        Ok(())
    }

    /// Redrives one execution for the batch `token`; a storage failure is an error (the
    /// execution keeps no outcome and is tried again on resume), any other refusal is its
    /// outcome.
    async fn redrive_in_batch(&self, arn: &str, token: String) -> Result<BatchOutcome> {
        match self.redrive_once(arn, Caller::Batch(token)).await {
            Ok(redrive_date) => Ok(BatchOutcome::Redriven { redrive_date }),
            Err(e @ Error::Store(_)) => Err(e),
            Err(e) => Ok(BatchOutcome::Refused {
                code: e.code().to_owned(),
                message: e.message(),
            }),
        }
    }
}

fn entry(item: RedriveBatchItem) -> Result<BatchEntry> {
    let outcome = item
        .outcome
        .map(|o| serde_json::from_str(&o))
        .transpose()
        .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())))?;
    Ok(BatchEntry {
        index: item.index,
        execution_arn: item.execution_arn,
        outcome,
    })
}

fn batch_not_found(token: &str) -> Error {
    Error::ResourceNotFound {
        message: format!("Bulk redrive does not exist: '{token}'"),
        resource_name: token.to_owned(),
    }
}

fn used_elsewhere(token: &str) -> Error {
    Error::Conflict(format!(
        "Batch token '{token}' was already used for a different selection"
    ))
}
