//! Redrive from a chosen state, or with new input (stepwise's extensions,
//! docs/redrive-extensions.md). The redrive is `RedriveExecution`'s (eligibility, client
//! tokens, `ExecutionRedriven`, the `Redrive` signal); only where it re-opens differs: the
//! checkpoint is moved (`asl::interpreter::restart_at` / `replace_input`) and written in the
//! commit of the redrive, with what changed kept on the record (`RedriveChange`).

use std::sync::Arc;

use asl::definition::Definition;
use asl::history::{EventDetails, HistoryEvent};
use serde_json::Value;
use store::{ExecutionRecord, LaneRow, RedriveChange};

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
}

/// A checkpoint moved for a redrive, stored.
pub(crate) struct Moved {
    pub runtime: String,
    pub lanes: Vec<LaneRow>,
    pub change: RedriveChange,
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
        let (mut checkpoint, _) = Checkpoint::load(self.store(), record).await?;
        let refused = |e: asl::interpreter::RestartError| Error::Validation(e.to_string());
        let previous = match &changes.from_state {
            None => {
                let previous = checkpoint.runtime.current.as_ref().map(|c| c.input.clone());
                let input = input.ok_or_else(|| {
                    Error::Validation("Give a state to re-open at, a new input, or both".into())
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
                asl::interpreter::restart_at(def, &mut checkpoint.runtime, path, input, now)
                    .map_err(refused)?;
                None
            }
        };
        let (runtime, lanes) = checkpoint.store(Lanes::All);
        Ok(Moved {
            runtime,
            lanes,
            change: RedriveChange {
                redrive_count: 0,
                from_state: changes.from_state.clone(),
                previous_input: previous.map(|v| v.to_string()),
                input: changes.input.clone(),
            },
        })
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
                let event: HistoryEvent = serde_json::from_str(&stored.body)
                    .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())))?;
                if let EventDetails::StateEntered { name, input, .. } = &event.details {
                    if name == state {
                        return crate::stored_json::from_str(input)
                            .map(Some)
                            .map_err(|e| Error::Store(store::Error::Corrupt(e.to_string())));
                    }
                }
            }
            to = from - 1;
        }
        Ok(None)
    }
}
