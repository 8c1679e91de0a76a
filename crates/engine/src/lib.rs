//! The engine: owns persistence, time and scheduling, and drives the pure interpreter.
//!
//! The API crate calls the operations on [`Engine`]; the engine validates them against its
//! own rules, persists through [`store::Store`], and runs executions on a work queue with a
//! timer service. It speaks its own types: AWS wire shapes live in the API crate, and errors
//! are this crate's [`Error`], mapped to AWS error codes in one place over there.

mod activities;
pub mod arn;
mod bulk_redrive;
mod checkpoint;
mod clock;
mod error;
mod executions;
mod inbox;
pub mod integrations;
pub mod item_io;
mod lock;
mod machines;
mod map_runs;
mod metrics;
mod mock_schema;
mod ready;
mod redrive;
mod redrive_from;
mod redrive_plan;
mod runner;
pub mod s3;
mod sfn_sdk;
mod spans;
pub mod stored_event;
mod stored_json;
mod stored_twin;
mod tasks;
mod test_state;
mod versions;

use std::sync::Arc;

pub use activities::ActivityTask;
pub use bulk_redrive::{
    BatchEntry, BatchOutcome, BatchReport, PlannedRedrive, RedriveSelection, MAX_SELECTED,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use executions::{ExecutionPage, HistoryPage, HistoryQuery, StartedExecution};
pub use machines::{definition_diagnostics, CreateStateMachine, UpdateStateMachine, MAX_TAGS};
pub use map_runs::{MapRunDescription, MapRunUpdate};
pub use metrics::Health;
pub use redrive::RedriveEligibility;
pub use redrive_from::{RedriveChanges, RedriveOnto};
pub use redrive_plan::{Reruns, MAX_PLACES};
pub use spans::{attribute as span_attribute, Tracer};
pub use store::RedriveBatchRecord;
pub use store::{
    ActivityRecord, AliasRecord, ExecutionRecord, ExecutionStatus, MapRunCounts, MapRunRecord,
    MapRunStatus, Route, StateMachineRecord, StateMachineType, UnknownWord, VersionRecord,
};
pub use test_state::{FieldValidation, TestMock, TestStateConfiguration, TestStateRequest};
pub use versions::CreateAlias;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many side effects (tasks to perform, parents to tell) may wait for the outbox loop;
/// beyond it, committing executions wait. The loop hands each one to a task of its own.
const OUTBOX_CAPACITY: usize = 4096;

/// Entry points for the fuzz targets in `fuzz/` (which build with `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing {
    /// Reads `text` as recovery reads a stored checkpoint, then walks and writes back what
    /// it read.
    pub fn load_checkpoint(text: &str) {
        let loaded = crate::checkpoint::Checkpoint::parse(text);
        if let Ok(checkpoint) = loaded {
            let _ = checkpoint.runtime.pending_tasks();
            let _ = checkpoint.whole();
        }
    }
}

/// Settings the engine runs with (docs/design.md §2).
#[derive(Debug, Clone)]
pub struct Config {
    pub account_id: String,
    /// Multiplies Wait durations and timeouts (tests use a small value).
    pub wait_time_scale: f64,
    /// Standard execution lifetime, in seconds.
    pub max_execution_time: u64,
    /// How long after it closes an execution stays redrivable, in seconds (AWS: 14 days);
    /// `None`: for ever.
    pub redrive_window: Option<u64>,
    /// The history cap (AWS: 25,000 events), which a redrive needs room under; `None`: no
    /// cap.
    pub max_history_events: Option<u64>,
    /// How many executions a bulk redrive redrives per second (0: as fast as it can).
    pub bulk_redrive_rate: u32,
    /// This node's name in the claims it makes on a shared store (the bulk redrive it
    /// drives); unique among the nodes of one store.
    pub node_id: String,
    /// How long such a claim holds without renewal (the node's lease TTL): how long the
    /// other nodes wait to take over from a node that died.
    pub claim_ttl: std::time::Duration,
    /// Open Standard executions allowed at once (`ExecutionLimitExceeded` beyond).
    pub max_open_executions: usize,
    /// How many states a worker runs for one execution before serving the next one.
    pub states_per_call: u32,
    /// Where Lambda tasks are invoked (the Lambda Invoke REST API), e.g. `http://127.0.0.1:3001`.
    pub lambda_endpoint: Option<String>,
    /// One AWS-compatible endpoint for every service integration (LocalStack or moto style).
    pub aws_endpoint: Option<String>,
    /// Per-service endpoints, by the integration's service name (`sqs`, `eventbridge`,
    /// `sfn`, …) or the service's endpoint prefix (`events`, `states`, …).
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// A Step Functions Local MockConfigFile, already read.
    pub mock_config: Option<serde_json::Value>,
    /// Whether HTTP Tasks may reach link-local and metadata addresses.
    pub allow_link_local: bool,
    /// Where API requests and executions are traced (`--otlp-endpoint`); `None`: traces off.
    pub tracer: Option<Tracer>,
    /// Whether each execution's integration calls assume its state machine's role (STS).
    pub assume_execution_role: bool,
    /// Whether accounts are kept apart (`--auth sigv4`): a workflow's calls to this server
    /// then act as its execution's account and may not name another account's resources.
    pub isolate_accounts: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            account_id: "123456789012".into(),
            wait_time_scale: 1.0,
            max_execution_time: 365 * 24 * 3600,
            redrive_window: Some(14 * 24 * 3600),
            max_history_events: Some(25_000),
            bulk_redrive_rate: 0,
            node_id: format!("engine-{:016x}", rand::random::<u64>()),
            claim_ttl: std::time::Duration::from_secs(10),
            max_open_executions: 1_000_000,
            states_per_call: 256,
            lambda_endpoint: None,
            aws_endpoint: None,
            endpoints: Default::default(),
            mock_config: None,
            allow_link_local: false,
            tracer: None,
            assume_execution_role: false,
            isolate_accounts: false,
        }
    }
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Arc<dyn store::Store>,
    clock: Arc<dyn Clock>,
    runner: runner::Runner,
    /// What task tokens are sealed with (the store's; [`asl::task_token`]).
    token_key: asl::task_token::TokenKey,
    activities: activities::Queues,
    map_runs: map_runs::MapRuns,
    /// The HTTP client of the task integrations ([`integrations::client`]).
    http: std::sync::OnceLock<reqwest::Client>,
    /// Credentials of assumed roles ([`integrations::identity`]).
    assumed: integrations::identity::Assumed,
    /// Draws the roll (taken modulo 100) that picks an alias's version.
    routing_roll: Box<dyn Fn() -> u32 + Send + Sync>,
    /// `.sync` child executions whose parent has not recorded the submission yet.
    submissions: tasks::Submissions,
    /// The bulk redrives this node drives.
    redrive_batches: bulk_redrive::Driving,
}

impl Engine {
    /// Starts the engine on `store` and resumes every execution that was running.
    pub async fn start(
        config: Config,
        store: Arc<dyn store::Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        let (outbox, outbox_rx) = tokio::sync::mpsc::channel(OUTBOX_CAPACITY);
        let token_key = asl::task_token::TokenKey::new(store.task_token_key().await?);
        let limits = asl::interpreter::Limits {
            states_per_call: config.states_per_call,
            wait_time_scale: config.wait_time_scale,
            max_execution_millis: (config.max_execution_time as i64).saturating_mul(1000),
            max_history_events: config.max_history_events.unwrap_or(u64::MAX),
            token_key,
        };
        let runner = runner::Runner::new(
            store.clone(),
            clock.clone(),
            limits,
            outbox,
            config.tracer.clone(),
        );
        let activities = activities::Queues::default();
        let inner = Arc::new(Inner {
            config,
            store,
            clock,
            runner,
            token_key,
            activities,
            map_runs: Default::default(),
            http: Default::default(),
            assumed: Default::default(),
            routing_roll: Box::new(rand::random::<u32>),
            submissions: Default::default(),
            redrive_batches: Default::default(),
        });
        let engine = Engine { inner };
        engine
            .inner
            .runner
            .spawn_loop(engine.clone().run_outbox(outbox_rx));
        if engine.inner.runner.sharded() {
            let sweeping = engine.clone().sweep_map_runs();
            engine.inner.runner.spawn_loop(sweeping);
        }
        engine.inner.runner.recover().await?;
        engine.follow_bulk_redrives();
        Ok(engine)
    }

    /// Stops the engine: its workers finish the transition they are in, its timers and
    /// outbox stop, and it waits for them. What is stored stays as it is; the next start on
    /// the same store resumes every running execution. Call it after the API stopped taking
    /// requests.
    pub async fn shutdown(&self) {
        self.inner.runner.shutdown().await;
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The runner's state, for the health gauges of `/metrics`.
    pub fn health(&self) -> Health {
        self.inner.runner.health()
    }

    fn store(&self) -> &dyn store::Store {
        self.inner.store.as_ref()
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_millis()
    }
}
