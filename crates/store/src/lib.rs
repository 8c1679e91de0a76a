//! Durable storage for stepwise, behind the [`Store`] trait.
//!
//! Architecture invariants:
//! - No SQL outside this crate. The engine speaks in records and [`Write`]s.
//! - One transition is one [`Write`]; [`Store::commit`] makes a batch of writes durable in one
//!   transaction (group commit), so a crash keeps either all of a transition or none of it.
//! - Every execution row carries a `version` that each transition bumps; a transition names the
//!   version it was computed from and fails with [`Error::Conflict`] if another writer got there
//!   first. That is the fencing a multi-node store (PostgreSQL, leases per execution) needs; the
//!   embedded store has one writer and never conflicts in practice.
//! - Payloads (inputs, outputs, history details) are stored as the JSON text the engine
//!   produced; nothing here parses them.

pub mod postgres;
mod sqlite;
mod vocab;

use serde::{Deserialize, Serialize};

pub use postgres::Postgres;

/// The shards a node holds ([`Store::shards`]), with the epoch it holds each at.
pub type HeldShards = std::collections::BTreeMap<u32, i64>;

/// How many shards a store split in shards has (fixed by PostgreSQL's migration 5); a Map
/// Run spreads its Standard children over all of them.
pub const SHARDS: u32 = 16;
pub use sqlite::Sqlite;
pub use vocab::{ExecutionStatus, MapRunStatus, StateMachineType, UnknownWord};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A store error. Cheap to clone, so a failed batch can answer each of its writers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("conflicting write: the execution changed since it was read")]
    Conflict,
    /// This node's lease was taken over by another node: it must not write any more.
    #[error("this node lost its lease to another node")]
    Fenced,
    /// The activity task a [`Write::TakeTask`] takes is no longer offered (a poll on another
    /// node took it).
    #[error("the activity task was taken by another poll")]
    Taken,
    /// The database failed (a full disk, an IO error, a lost connection): its own error,
    /// kept as the source and shown as it is. Callers name it a storage failure once.
    #[error(transparent)]
    Backend(BoxError),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// The error of a database driver, kept whole.
pub type BoxError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

impl Error {
    /// A backend failure: the driver's own error.
    pub fn driver<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
        Error::Backend(std::sync::Arc::new(e))
    }

    /// A backend failure described by a message of our own (a stopped writer, a lost reply).
    pub fn backend(message: impl Into<String>) -> Error {
        let boxed: Box<dyn std::error::Error + Send + Sync> = message.into().into();
        Error::Backend(boxed.into())
    }
}

/// Answers the callers of one group commit: each its own writes' results (`sizes` says how
/// many each sent, in order), or all the transaction's error.
fn answer_commit(
    replies: Vec<tokio::sync::oneshot::Sender<Result<Vec<Result<()>>>>>,
    sizes: Vec<usize>,
    outcome: Result<Vec<Result<()>>>,
) {
    match outcome {
        Ok(mut results) => {
            for (reply, n) in replies.into_iter().zip(sizes) {
                let rest = results.split_off(n.min(results.len()));
                let _ = reply.send(Ok(std::mem::replace(&mut results, rest)));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A stored secret key: exactly 32 bytes, or the store is corrupt.
fn secret_key(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| Error::Corrupt(format!("a secret key of {} bytes", b.len())))
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Corrupt(e.to_string())
    }
}

/// A state machine as `DescribeStateMachine` sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub arn: String,
    pub name: String,
    pub kind: StateMachineType,
    pub definition: String,
    pub role_arn: String,
    pub creation_date: i64,
    pub update_date: Option<i64>,
    pub revision_id: Option<String>,
    pub description: Option<String>,
    /// `loggingConfiguration` as given (JSON text).
    pub logging_configuration: Option<String>,
    /// `tracingConfiguration` as given (JSON text).
    pub tracing_configuration: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// An activity (`CreateActivity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub arn: String,
    pub name: String,
    pub creation_date: i64,
    pub tags: Vec<(String, String)>,
}

/// An execution, with everything needed to describe, continue or redrive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    /// The execution input (JSON text). Stored in its own column, written once; records
    /// stored before that keep it in their JSON, which still reads.
    #[serde(default, skip_serializing)]
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub role_arn: String,
    /// The definition revision the execution runs: the one it started on (never a later
    /// update), unless a redrive moved it onto another ([`Write::Redefine`]). Stored in its
    /// own column, written only by those two writes.
    #[serde(skip)]
    pub definition: String,
    pub revision_id: Option<String>,
    /// The interpreter's checkpoint (JSON text): current state, its input, timers. Stored in
    /// its own column, so it is not escaped into the record's JSON on every transition.
    #[serde(skip)]
    pub runtime: String,
    /// When the engine must wake the execution (epoch ms), if it is waiting on time.
    pub wake_at: Option<i64>,
    pub redrive_count: u32,
    pub redrive_date: Option<i64>,
    /// Bumped by every transition (fencing for multi-writer stores).
    pub version: u64,
    /// How many history events the execution has.
    #[serde(default)]
    pub history_length: u64,
    /// Recent `RedriveExecution` client tokens, newest last (idempotency).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redrive_tokens: Vec<RedriveToken>,
    /// The version the execution runs, when started through a version or an alias ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
    /// The alias the execution was started through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_alias_arn: Option<String>,
    /// The Map Run this execution is a child of, and the index of its item (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run: Option<MapRunChild>,
    /// StartExecution's `traceHeader` (X-Ray), returned by DescribeExecution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
    /// The token of the bulk redrive that last redrove this execution, written with that
    /// redrive: a resumed bulk redrive finds here what it already did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_batch: Option<String>,
    /// What the last redrive through stepwise's extensions changed (a chosen state, a new
    /// input), so a user can see the old input beside the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_change: Option<RedriveChange>,
    /// The shard the execution belongs to on a store split in shards among active nodes
    /// ([`Store::shards`]); its own column there, `None` on the other stores. Set when the
    /// execution is created (a shard of the node that starts it) and never changed.
    #[serde(skip)]
    pub shard: Option<u32>,
}

/// A redrive that did not re-open an execution where it stopped, or with the input it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedriveChange {
    /// Which redrive (the execution's redrive count after it).
    pub redrive_count: u32,
    /// The state path it re-opened at; `None`: where the execution stopped.
    pub from_state: Option<String>,
    /// The input that state had (JSON text), when known.
    pub previous_input: Option<String>,
    /// The input it was given instead (JSON text).
    pub input: Option<String>,
    /// The definition it was moved onto (`CURRENT` or a version ARN), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// The revision it ran before that move (`None`: the state machine's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision_id: Option<String>,
}

/// Where a Map Run child execution belongs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRunChild {
    pub map_run_arn: String,
    pub index: u64,
    /// How many items the child processes (1, or its batch's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
}

/// A Map Run's item or execution counts (`DescribeMapRun`'s `itemCounts`, `executionCounts`).
/// Stored with camelCase names, which is how records written before this type existed hold them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunCounts {
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub total: u64,
    pub results_written: u64,
    pub failures_not_redrivable: u64,
    pub pending_redrive: u64,
}

/// A Distributed Map's Map Run. Its items are stored once, apart from the record (see
/// [`Store::create_map_run`]); its counters are rewritten when it changes status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRunRecord {
    /// `…:mapRun:STATE_MACHINE/LABEL:ID`.
    pub arn: String,
    /// The parent execution.
    pub execution_arn: String,
    /// The parent's dispatch (task id) that started this Map Run.
    pub task_id: u64,
    /// What the children report as their state machine: `…:stateMachine:NAME/LABEL`.
    pub state_machine_arn: String,
    pub status: MapRunStatus,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    /// 0 = unlimited.
    pub max_concurrency: u64,
    /// Unset thresholds tolerate nothing unless the other one is set.
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
    pub express: bool,
    /// How many items there are (each child takes one item or one batch).
    pub item_total: u64,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub redrive_count: u32,
    pub redrive_date: Option<i64>,
    /// The item and execution counts as they were when the Map Run last changed status.
    #[serde(default)]
    pub item_counts: Option<MapRunCounts>,
    #[serde(default)]
    pub execution_counts: Option<MapRunCounts>,
    /// The `MapRunSpec` the parent dispatched (JSON), so a restarted engine can finish it.
    pub spec: String,
}

/// A published state machine version (`PublishStateMachineVersion`): an immutable snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `…:stateMachine:NAME:N`; assigned by [`Store::create_version`].
    pub arn: String,
    pub state_machine_arn: String,
    /// Assigned by [`Store::create_version`]: increasing per state machine, never reused.
    pub version: u64,
    pub kind: StateMachineType,
    pub definition: String,
    pub role_arn: String,
    /// The state machine revision the version was published from.
    pub revision_id: Option<String>,
    pub description: Option<String>,
    pub creation_date: i64,
    pub logging_configuration: Option<String>,
    pub tracing_configuration: Option<String>,
}

/// One entry of an alias's routing configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub version_arn: String,
    /// Percent of the executions started through the alias.
    pub weight: u32,
}

/// A state machine alias (`CreateStateMachineAlias`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// `…:stateMachine:NAME:ALIAS`.
    pub arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub description: Option<String>,
    pub routing: Vec<Route>,
    pub creation_date: i64,
    pub update_date: i64,
}

/// A `RedriveExecution` client token and the answer it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedriveToken {
    pub token: String,
    /// When the token was first used (epoch ms).
    pub first_used: i64,
    /// The `redriveDate` it answered.
    pub redrive_date: i64,
}

/// A bulk redrive (stepwise's `BulkRedrive`): what it selected, kept so that it resumes after
/// a restart and can be described while and after it runs. Its executions are rows of their
/// own, fixed when it is created ([`Store::create_redrive_batch`]); each gets its outcome by a
/// [`Write::RedriveBatchItem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedriveBatchRecord {
    /// The caller's batch token (unique).
    pub token: String,
    pub state_machine_arn: String,
    /// The selection it was asked for (the engine's JSON text): a repeated request must ask
    /// for the same.
    pub selection: String,
    pub creation_date: i64,
    /// How many executions it redrives.
    pub total: u64,
    /// When every execution had its outcome.
    pub finish_date: Option<i64>,
}

/// One execution of a bulk redrive, and what happened to it (the engine's JSON text) once
/// that is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RedriveBatchItem {
    pub index: u64,
    pub execution_arn: String,
    pub outcome: Option<String>,
}

/// A history event as stored: its id and the engine's serialized form.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: u64,
    pub body: String,
}

/// One atomic change.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new execution with its first events (and lanes).
    CreateExecution {
        execution: ExecutionRecord,
        events: Vec<StoredEvent>,
        lanes: Vec<LaneRow>,
        offers: Offers,
    },
    /// A transition: the new execution row (its `version` already bumped), the events it
    /// appended and the lanes it changed. Fails with [`Error::Conflict`] unless the stored
    /// version is `version - 1`.
    Transition {
        execution: ExecutionRecord,
        events: Vec<StoredEvent>,
        lanes: Vec<LaneRow>,
        offers: Offers,
    },
    /// A transition that leaves the stored checkpoint as it is (a redrive, committed before
    /// the checkpoint is re-opened). Fenced like [`Write::Transition`].
    Record {
        execution: ExecutionRecord,
        events: Vec<StoredEvent>,
    },
    /// A [`Write::Transition`] that also replaces the execution's definition with
    /// `execution.definition` (a redrive onto another definition). Fenced the same way.
    Redefine {
        execution: ExecutionRecord,
        events: Vec<StoredEvent>,
        lanes: Vec<LaneRow>,
    },
    /// A [`Write::Transition`] (a task's start) that also takes the activity task its
    /// execution offered for `task_id` ([`Store::offer_activity_task`]), so a poll on the
    /// node that runs the execution claims the task and records its start in one commit.
    /// Fails with [`Error::Taken`], writing nothing, when the task is no longer offered. A
    /// store that does not share activity tasks has none to take: a plain transition.
    TakeTask {
        execution: ExecutionRecord,
        events: Vec<StoredEvent>,
        lanes: Vec<LaneRow>,
        task_id: u64,
        offers: Offers,
    },
    /// Sets (or clears) the result of a Map Run's item: how its child ended (an Express
    /// child keeps no record of its own; a Standard child's record is copied there when the
    /// Map Run ends, so the results can be read in item order).
    MapRunItem {
        map_run_arn: String,
        index: u64,
        result: Option<String>,
    },
    /// Records what happened to one execution of a bulk redrive.
    RedriveBatchItem {
        token: String,
        index: u64,
        outcome: String,
    },
}

/// The activity tasks a write schedules, offered in its transaction and only if it is made,
/// by a store that shares them ([`Store::shares_activity_tasks`]; another ignores them): a
/// task is never scheduled without being offered. Each replaces the task offered before for
/// the same execution and task id, as [`Store::offer_activity_task`] does.
pub type Offers = Vec<ActivityTaskRow>;

/// An activity task offered to the workers of every node ([`Store::offer_activity_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTaskRow {
    pub activity_arn: String,
    pub execution_arn: String,
    pub task_id: u64,
    pub token: String,
    /// The task's input (JSON text).
    pub input: String,
    /// When it was offered (epoch ms).
    pub scheduled: i64,
}

/// For an activity task being taken (its execution's ARN and its task id), the inbox signal
/// that tells the node running its execution that it started; `None` when this node runs it
/// (and tells it itself).
pub type StartedElsewhere<'a> = dyn Fn(&str, u64) -> Option<String> + Send + Sync + 'a;

/// An activity task a worker took ([`Store::claim_activity_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub task: ActivityTaskRow,
    /// Its start went to the inbox of its execution's shard with the claim.
    pub started_sent: bool,
}

/// A signal waiting in an inbox ([`Store::send_signal`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxSignal {
    pub id: u64,
    pub execution_arn: String,
    /// The engine's text.
    pub body: String,
}

/// One lane (a Parallel branch, an inline Map iteration) of an execution's checkpoint, kept
/// in a row of its own so a transition writes only the lanes it changed. The store does not
/// read it: `path` names the lane, `body` is the engine's text; a row replaces the one with
/// the same path.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneRow {
    pub path: String,
    pub body: String,
}

/// One child of a Map Run: its input, and how it ended when that is not kept elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunItem {
    pub index: u64,
    pub input: String,
    /// Set by [`Write::MapRunItem`].
    pub result: Option<String>,
}

/// Which executions [`Store::list_executions`] returns.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub state_machine_arn: String,
    pub status: Option<ExecutionStatus>,
    /// `Some(true)`: only redriven executions; `Some(false)`: only never-redriven ones.
    pub redriven: Option<bool>,
    /// Only executions that ran this version or were started through this alias (an ARN).
    pub qualifier: Option<String>,
    /// Only the children of this Map Run.
    pub map_run_arn: Option<String>,
    /// Only executions after this position (an opaque cursor from a previous page).
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// A position in the list of executions: newest first, by start date then ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub start_date: i64,
    pub arn: String,
}

/// The storage interface the engine and the API depend on.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a state machine; [`Error::AlreadyExists`] if its ARN is taken.
    async fn create_state_machine(&self, sm: StateMachineRecord) -> Result<()>;
    /// Replaces a state machine; [`Error::NotFound`] if it does not exist.
    async fn update_state_machine(&self, sm: StateMachineRecord) -> Result<()>;
    async fn get_state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>>;
    /// Deletes a state machine with its versions and aliases.
    async fn delete_state_machine(&self, arn: &str) -> Result<()>;
    /// All state machines, ordered by ARN.
    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>>;

    /// Publishes a version: assigns the state machine's next version number (one more than any
    /// it ever had, so numbers of deleted versions are not reused) and the ARN, stores it and
    /// returns it.
    async fn create_version(&self, version: VersionRecord) -> Result<VersionRecord>;
    async fn get_version(&self, arn: &str) -> Result<Option<VersionRecord>>;
    /// The versions of a state machine, newest (highest number) first.
    async fn list_versions(&self, state_machine_arn: &str) -> Result<Vec<VersionRecord>>;
    async fn delete_version(&self, arn: &str) -> Result<()>;

    /// Creates an alias; [`Error::AlreadyExists`] if its ARN is taken.
    async fn create_alias(&self, alias: AliasRecord) -> Result<()>;
    /// Replaces an alias; [`Error::NotFound`] if it does not exist.
    async fn update_alias(&self, alias: AliasRecord) -> Result<()>;
    async fn get_alias(&self, arn: &str) -> Result<Option<AliasRecord>>;
    async fn delete_alias(&self, arn: &str) -> Result<()>;
    /// The aliases of a state machine, ordered by ARN.
    async fn list_aliases(&self, state_machine_arn: &str) -> Result<Vec<AliasRecord>>;

    /// Creates an activity; [`Error::AlreadyExists`] if its ARN is taken.
    async fn create_activity(&self, activity: ActivityRecord) -> Result<()>;
    /// Replaces an activity (tags); [`Error::NotFound`] if it does not exist.
    async fn update_activity(&self, activity: ActivityRecord) -> Result<()>;
    async fn get_activity(&self, arn: &str) -> Result<Option<ActivityRecord>>;
    async fn delete_activity(&self, arn: &str) -> Result<()>;
    /// All activities, ordered by ARN.
    async fn list_activities(&self) -> Result<Vec<ActivityRecord>>;

    /// The secret task tokens are sealed with: random, made by the schema migration that
    /// added it, the same for every node of a shared store and across restarts.
    async fn task_token_key(&self) -> Result<[u8; 32]>;

    /// Makes a batch of writes durable together. Results are per write, in order; a write that
    /// fails (conflict, duplicate) does not prevent the others.
    async fn commit(&self, writes: Vec<Write>) -> Result<Vec<Result<()>>>;
    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>>;
    /// Every lane row stored for an execution (rows a later container replaced included).
    async fn execution_lanes(&self, arn: &str) -> Result<Vec<LaneRow>>;
    /// A page of executions, newest first. The records come without their definition,
    /// checkpoint and input (`definition`, `runtime` empty; `input` empty but in records
    /// stored before it had a column): listing never needs them.
    async fn list_executions(&self, filter: ExecutionFilter) -> Result<Vec<ExecutionRecord>>;
    /// Executions that are still running: what a restarting engine resumes.
    async fn open_executions(&self) -> Result<Vec<ExecutionRecord>>;
    /// The shards this node holds, as they change, when the store splits the executions in
    /// shards among several active nodes (PostgreSQL with `--active-nodes`): the node runs
    /// the executions of these shards only. `None` (the default): it runs every execution.
    fn shards(&self) -> Option<tokio::sync::watch::Receiver<HeldShards>> {
        None
    }
    /// The running executions of these shards: what a node resumes when it gains them.
    async fn open_executions_in(&self, shards: &[u32]) -> Result<Vec<ExecutionRecord>> {
        let _ = shards;
        self.open_executions().await
    }
    /// Keeps a signal (the engine's text) for a running execution that another node runs, in
    /// the inbox of its shard, until that node applies it ([`Store::inbox`]); wakes that node
    /// ([`Store::signals_arrived`]). `false`: no such execution is running (or the store is
    /// not split in shards, the default: every execution runs on this node).
    async fn send_signal(&self, execution_arn: &str, body: String) -> Result<bool> {
        let _ = (execution_arn, body);
        Ok(false)
    }
    /// The oldest signals waiting in the inboxes of these shards, at most `limit`.
    async fn inbox(&self, shards: &[u32], limit: usize) -> Result<Vec<InboxSignal>> {
        let _ = (shards, limit);
        Ok(Vec::new())
    }
    /// The signals waiting in the inbox for one execution, oldest first.
    async fn signals_for(&self, execution_arn: &str) -> Result<Vec<InboxSignal>> {
        let _ = execution_arn;
        Ok(Vec::new())
    }
    /// Removes signals that were applied.
    async fn delete_signals(&self, ids: &[u64]) -> Result<()> {
        let _ = ids;
        Ok(())
    }
    /// Told when another node may have sent a signal to this one's inbox (besides, the
    /// engine polls); `None` when the store has no such news.
    fn signals_arrived(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Whether activity tasks are kept in the store for the workers of every node
    /// ([`Store::offer_activity_task`]) rather than in the memory of the node that runs their
    /// execution (the default).
    fn shares_activity_tasks(&self) -> bool {
        false
    }
    /// Tells the nodes' parked pollers ([`Store::activity_tasks_offered`]) that a committed
    /// write offered tasks of `activity_arn` ([`Offers`]). Only news: a poller also looks on
    /// its own now and then.
    fn announce_offered(&self, activity_arn: &str) {
        let _ = activity_arn;
    }
    /// Offers an activity task to the workers of every node, replacing the one offered before
    /// for the same execution and task id; wakes the nodes' parked pollers
    /// ([`Store::activity_tasks_offered`]). Nothing is offered for an execution that is not
    /// running: the commit that ends an execution withdraws its offered tasks.
    async fn offer_activity_task(&self, task: ActivityTaskRow) -> Result<()> {
        let _ = task;
        Ok(())
    }
    /// When the oldest offered task of an activity was scheduled (epoch milliseconds, on the
    /// clock of the node that offered it); `None` when none is offered.
    async fn oldest_offered_task(&self, activity_arn: &str) -> Result<Option<i64>> {
        let _ = activity_arn;
        Ok(None)
    }
    /// Takes the oldest offered task of an activity, if any (with `before`, only if it was
    /// scheduled before that time, epoch milliseconds); no other node can take it too.
    /// Its execution may have ended since it was offered: the caller checks. `started` gives,
    /// for the task taken, the signal (the engine's text) that tells another node running its
    /// execution that it started: it goes to the inbox of the execution's shard in the
    /// transaction that takes the task, so a crash loses neither without the other.
    async fn claim_activity_task(
        &self,
        activity_arn: &str,
        before: Option<i64>,
        started: &StartedElsewhere<'_>,
    ) -> Result<Option<ClaimedTask>> {
        let _ = (activity_arn, before, started);
        Ok(None)
    }
    /// Takes the offered task of `execution_arn` with `task_id` (one this node offered), as
    /// [`Store::claim_activity_task`] takes the oldest; `None` when no such task is offered
    /// (another node took it, or its execution ended) or its start did not go out.
    async fn claim_offered_task(
        &self,
        execution_arn: &str,
        task_id: u64,
        started: &StartedElsewhere<'_>,
    ) -> Result<Option<ClaimedTask>> {
        let _ = (execution_arn, task_id, started);
        Ok(None)
    }
    /// The offered tasks of an activity, oldest first.
    async fn offered_activity_tasks(&self, activity_arn: &str) -> Result<Vec<ActivityTaskRow>> {
        let _ = activity_arn;
        Ok(Vec::new())
    }
    /// Told (one waiter, [`tokio::sync::Notify::notify_one`]) when some node offered a task
    /// of `activity_arn`.
    fn activity_tasks_offered(
        &self,
        activity_arn: &str,
    ) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        let _ = activity_arn;
        None
    }
    /// History events with ids in `from..=to`, in ascending order, at most `limit`.
    async fn history(
        &self,
        arn: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;
    /// Deletes an execution and its history.
    async fn delete_execution(&self, arn: &str) -> Result<()>;

    /// Creates a Map Run with one item per child (its input, a JSON text; index = position),
    /// written once; [`Error::AlreadyExists`] if its ARN is taken.
    async fn create_map_run(&self, run: MapRunRecord, inputs: Vec<String>) -> Result<()>;
    /// Replaces a Map Run's record (not its items).
    async fn update_map_run(&self, run: MapRunRecord) -> Result<()>;
    async fn get_map_run(&self, arn: &str) -> Result<Option<MapRunRecord>>;
    /// A page of a Map Run's items: at most `limit`, from index `from` on, in index order.
    async fn map_run_items(&self, arn: &str, from: u64, limit: usize) -> Result<Vec<MapRunItem>>;
    /// The Map Runs an execution started, oldest first.
    async fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>>;

    /// Creates a bulk redrive with its executions (in this order, without outcomes), written
    /// once; [`Error::AlreadyExists`] if its token is taken.
    async fn create_redrive_batch(
        &self,
        batch: RedriveBatchRecord,
        executions: Vec<String>,
    ) -> Result<()>;
    /// Replaces a bulk redrive's record (not its executions).
    async fn update_redrive_batch(&self, batch: RedriveBatchRecord) -> Result<()>;
    async fn get_redrive_batch(&self, token: &str) -> Result<Option<RedriveBatchRecord>>;
    /// Bulk redrives that have not finished: what a restarting engine resumes.
    async fn unfinished_redrive_batches(&self) -> Result<Vec<RedriveBatchRecord>>;
    /// Claims the unfinished bulk redrive `token` for `owner` until `ttl` from now (on the
    /// store's clock), so that one node drives it; renews the claim when `owner` holds it
    /// already. Another owner's claim is taken only once it expired. `true`: `owner` holds
    /// it now; `false`: another owner does, or it finished (or does not exist).
    async fn claim_redrive_batch(
        &self,
        token: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool>;
    /// A page of a bulk redrive's executions: at most `limit`, from index `from` on.
    async fn redrive_batch_items(
        &self,
        token: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RedriveBatchItem>>;
}

/// The contract every [`Store`] meets, as a suite each backend runs (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod contract;
#[cfg(test)]
mod tests;
