//! Distributed Map: Map Runs and their child executions.
//!
//! The interpreter dispatches a [`MapRunSpec`] like a task. Here it becomes a Map Run: the
//! items are read (state input or `ItemReader`), selected and batched, stored once as the Map
//! Run's items, and each item (or batch) runs as a child execution of the item processor, at
//! most `MaxConcurrency` at a time. Children are ordinary executions (Standard ones are
//! durable, listed with `mapRunArn`, and have their own history); when one ends the runner's
//! finish notice comes back here. When all ended, or too many failed, the Map Run ends and
//! the parent is told with `TaskFinished`.
//!
//! Memory: a live Map Run holds one status byte and one size per child, and the inputs of the
//! next page of children to start; outputs stay in the store until the Map Run ends, and are
//! then read a page at a time: into the Map state's result (at most 256 KiB, as any state
//! output) or streamed into the `ResultWriter`'s files.
//!
//! Durability: the record and items are written before the parent learns the Map Run
//! started. A Standard child's status is its own record (`PENDING_REDRIVE` while a redrive
//! waits to reopen it); an Express child's end is written into its item. After a restart the
//! parent's pending dispatch is performed again, finds the Map Run by `(parent, task id)` and
//! resumes it from those (Express children that were running run again).

use asl::error::names;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, MapRunSpec, S3Call, Signal, TaskOutcome};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{
    Cursor, ExecutionFilter, ExecutionRecord, ExecutionStatus, MapRunChild, MapRunCounts,
    MapRunRecord, MapRunStatus, Write,
};
use tokio::sync::Mutex;

use crate::executions::NewExecution;
use crate::integrations::{configured_endpoint, identity};
use crate::item_io::{self, ChildResult, ChildStatus, Export, ResultArray};
use crate::runner::{ParentLink, Signalled};
use crate::s3::S3;
use crate::tasks::{failed, TaskReply};
use crate::{arn, Engine, Error, Result};

/// AWS runs at most this many children of one Map Run at a time.
const MAX_CHILDREN_AT_ONCE: u64 = 10_000;

/// How long a Map Run waits to start a child again when the database failed to store it.
const CHILD_RETRY: Duration = Duration::from_millis(500);

/// AWS's hard limit on redrives of one Map Run.
const MAX_REDRIVES: u32 = 1000;

/// How many items are read from the store at a time.
const ITEM_PAGE: usize = 1024;

/// How long a Map Run with running children goes without a child's end before they are
/// checked against the store ([`Engine::sweep_map_runs`]); doubled after each check that finds
/// nothing, up to [`SWEEP_AT_MOST`].
const SWEEP_QUIET: Duration = Duration::from_secs(2);
const SWEEP_AT_MOST: Duration = Duration::from_secs(64);

/// Map Runs being run by this node, by ARN.
#[derive(Default)]
pub(crate) struct MapRuns {
    live: SyncMutex<HashMap<String, Arc<Mutex<LiveRun>>>>,
}

/// A running Map Run.
struct LiveRun {
    record: MapRunRecord,
    spec: MapRunSpec,
    /// Each child's item count (1, or the batch size).
    sizes: Vec<u64>,
    /// Each child's status; change it only through [`LiveRun::set`].
    children: Vec<Child>,
    /// Inputs (JSON text) of children waiting to start, read ahead a page at a time.
    window: HashMap<usize, String>,
    /// The ARN of each Standard child that ended unsuccessfully (a redrive reopens it).
    unsuccessful: HashMap<usize, String>,
    /// The name of each child whose start failed in the store: it is started again under
    /// that name, so a start whose commit went through after all is found, not doubled.
    tried: HashMap<usize, String>,
    /// Items and executions per child status (indexed by `Child as usize`).
    items: [u64; CHILD_STATES],
    executions: [u64; CHILD_STATES],
    /// No child before this index is waiting to start.
    scan_from: usize,
    parent: Parent,
    /// The `ResultWriter` wrote every child's result.
    results_written: bool,
    done: bool,
    /// When the children are next checked against the store, and the wait after that.
    sweep_at: Instant,
    sweep_quiet: Duration,
}

const CHILD_STATES: usize = 7;

/// What a Map Run takes from its parent's dispatch.
struct Parent {
    /// The parent execution's role, for the children.
    role_arn: String,
    /// The Map state, named by a result that outgrows a state's output.
    state: String,
    /// The parent's MockConfigFile test case, which its children run too.
    test_case: Option<String>,
    /// The parent's shard: the Map Run runs on the node that holds it.
    shard: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Pending,
    /// Unsuccessful in an earlier attempt; waits to be redriven (Standard children).
    PendingRedrive,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl From<ExecutionStatus> for Child {
    fn from(status: ExecutionStatus) -> Child {
        match status {
            ExecutionStatus::Running => Child::Running,
            ExecutionStatus::Succeeded => Child::Succeeded,
            ExecutionStatus::Failed => Child::Failed,
            ExecutionStatus::TimedOut => Child::TimedOut,
            ExecutionStatus::Aborted => Child::Aborted,
            ExecutionStatus::PendingRedrive => Child::PendingRedrive,
        }
    }
}

/// What `DescribeMapRun` answers.
#[derive(Debug, Clone)]
pub struct MapRunDescription {
    pub record: MapRunRecord,
    pub item_counts: MapRunCounts,
    pub execution_counts: MapRunCounts,
}

/// `UpdateMapRun`'s changes.
#[derive(Debug, Clone, Default)]
pub struct MapRunUpdate {
    pub max_concurrency: Option<u64>,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
}

impl LiveRun {
    fn new(record: MapRunRecord, spec: MapRunSpec, sizes: Vec<u64>, parent: Parent) -> LiveRun {
        let n = sizes.len();
        let mut items = [0; CHILD_STATES];
        items[Child::Pending as usize] = sizes.iter().sum();
        let mut executions = [0; CHILD_STATES];
        executions[Child::Pending as usize] = n as u64;
        LiveRun {
            record,
            spec,
            sizes,
            children: vec![Child::Pending; n],
            window: HashMap::new(),
            unsuccessful: HashMap::new(),
            tried: HashMap::new(),
            items,
            executions,
            scan_from: 0,
            parent,
            results_written: false,
            done: false,
            sweep_at: Instant::now() + SWEEP_QUIET,
            sweep_quiet: SWEEP_QUIET,
        }
    }

    /// Changes child `i`'s status, keeping the tallies.
    fn set(&mut self, i: usize, status: Child) {
        let (old, size) = (self.children[i], self.sizes[i]);
        self.items[old as usize] -= size;
        self.executions[old as usize] -= 1;
        self.items[status as usize] += size;
        self.executions[status as usize] += 1;
        self.children[i] = status;
        match status {
            Child::Pending | Child::PendingRedrive => self.scan_from = self.scan_from.min(i),
            Child::Running => {}
            // A child's end came: the sweep waits for the run to go quiet again.
            Child::Succeeded | Child::Failed | Child::TimedOut | Child::Aborted => {
                self.sweep_quiet = SWEEP_QUIET;
                self.sweep_at = Instant::now() + SWEEP_QUIET;
            }
        }
    }

    fn counts(&self) -> (MapRunCounts, MapRunCounts) {
        let written = self.results_written;
        let counts = |t: &[u64; CHILD_STATES]| MapRunCounts {
            pending: t[Child::Pending as usize] + t[Child::PendingRedrive as usize],
            running: t[Child::Running as usize],
            succeeded: t[Child::Succeeded as usize],
            failed: t[Child::Failed as usize],
            timed_out: t[Child::TimedOut as usize],
            aborted: t[Child::Aborted as usize],
            total: t.iter().sum(),
            pending_redrive: t[Child::PendingRedrive as usize],
            results_written: if written { t.iter().sum() } else { 0 },
            ..MapRunCounts::default()
        };
        (counts(&self.items), counts(&self.executions))
    }

    /// Records a child's status from its execution record.
    fn child_ended(&mut self, child: &ExecutionRecord) {
        let Some(i) = child.map_run.as_ref().map(|m| m.index as usize) else {
            return;
        };
        if i >= self.children.len() {
            return;
        }
        let status = Child::from(child.status);
        self.set(i, status);
        let unsuccessful = matches!(
            status,
            Child::Failed | Child::TimedOut | Child::Aborted | Child::PendingRedrive
        );
        if unsuccessful && !crate::arn::is_express_execution(&child.arn) {
            self.unsuccessful.insert(i, child.arn.clone());
        } else {
            self.unsuccessful.remove(&i);
        }
    }

    /// True while a child waits to start or runs.
    fn open(&self) -> bool {
        let t = &self.executions;
        t[Child::Pending as usize] + t[Child::PendingRedrive as usize] + t[Child::Running as usize]
            > 0
    }

    /// Writes the counters into the record, for when the Map Run is no longer live.
    fn keep_counts(&mut self) {
        let (items, executions) = self.counts();
        self.record.item_counts = Some(items);
        self.record.execution_counts = Some(executions);
    }

    /// True when the failures exceed what the Map Run tolerates.
    fn intolerable(&self) -> bool {
        let t = &self.items;
        let failures =
            t[Child::Failed as usize] + t[Child::TimedOut as usize] + t[Child::Aborted as usize];
        let total: u64 = t.iter().sum();
        let r = &self.record;
        asl::interpreter::tolerance_exceeded(
            failures,
            total,
            r.tolerated_failure_count,
            r.tolerated_failure_percentage,
        )
    }

    /// How a child tells this Map Run's parent that it ended.
    fn parent_link(&self) -> ParentLink {
        ParentLink {
            execution_arn: self.record.execution_arn.clone(),
            task_id: self.record.task_id,
            json_payloads: false,
        }
    }

    fn child_arn(&self, name: &str) -> String {
        let sm = arn::Arn::parse(&self.record.state_machine_arn);
        match sm {
            Some(sm) if self.spec.express => {
                arn::express_execution(&sm, name, &uuid::Uuid::new_v4().to_string())
            }
            Some(sm) => arn::execution(&sm, name),
            None => String::new(),
        }
    }
}

impl Engine {
    /// Performs a Map Run dispatch: starts the Map Run, or resumes it after a restart.
    pub(crate) async fn perform_map_run(
        &self,
        parent_arn: &str,
        d: &Dispatch,
        spec: &MapRunSpec,
    ) -> TaskReply {
        match self.open_map_run(parent_arn, d, spec).await {
            Ok(Some(run)) => {
                self.pump(&run).await;
                TaskReply::Pending
            }
            Ok(None) => TaskReply::Pending,
            Err(reply) => reply,
        }
    }

    /// The Map Run for this dispatch: a new one, or the stored one to resume (`None` when it
    /// is already running here or already ended).
    async fn open_map_run(
        &self,
        parent_arn: &str,
        d: &Dispatch,
        spec: &MapRunSpec,
    ) -> std::result::Result<Option<Arc<Mutex<LiveRun>>>, TaskReply> {
        let internal = |e: Error| failed(names::RUNTIME, e.message());
        let existing = self
            .find_map_run(parent_arn, d.task_id)
            .await
            .map_err(internal)?;
        let parent_record = self
            .describe_execution(parent_arn)
            .await
            .map_err(internal)?;
        let parent = Parent {
            role_arn: parent_record.role_arn,
            state: d.state.clone(),
            test_case: self.inner.runner.test_case(parent_arn).await,
            shard: parent_record.shard,
        };
        if let Some(record) = existing {
            if self.live_map_run(&record.arn).is_some() {
                return Ok(None);
            }
            if let Some(ec) = Self::unread_map_run_failure(&record) {
                self.signal_map_run_started(parent_arn, d.task_id, &record)
                    .await;
                return Err(TaskReply::Done(TaskOutcome::Failed(ec)));
            }
            if record.status != MapRunStatus::Running && record.redrive_count < spec.redrive {
                return self
                    .redrive_map_run(record, spec, parent_arn, parent)
                    .await
                    .map(Some);
            }
            // Running when the engine stopped, or ended without the parent learning it: the
            // children's records say where it is.
            return self
                .resume_map_run(record, spec.clone(), parent)
                .await
                .map(Some)
                .map_err(internal);
        }
        let read = match (&spec.items, &spec.reader) {
            (Some(items), _) => Ok(items.clone()),
            (None, Some(reader)) => self.read_items(parent_arn, &parent.role_arn, reader).await,
            (None, None) => Ok(Vec::new()),
        };
        let items = match read {
            Ok(items) => items,
            Err(ec) => return Err(self.fail_unread_map_run(parent_arn, d, spec, ec).await),
        };
        let length = items.len() as u64;
        let mut entropy = asl::Entropy::new(rand::random());
        let inputs = spec
            .child_inputs(items, &mut entropy)
            .map_err(|e| TaskReply::Done(TaskOutcome::Failed(e)))?;
        let (inputs, sizes) = match &spec.batcher {
            Some(b) => batch(inputs, b)?,
            None => {
                let sizes = vec![1; inputs.len()];
                (inputs, sizes)
            }
        };
        let record = self
            .new_map_run_record(parent_arn, d, spec, length)
            .map_err(internal)?;
        let texts: Vec<String> = inputs.iter().map(Value::to_string).collect();
        self.store()
            .create_map_run(record.clone(), texts.clone())
            .await
            .map_err(|e| internal(e.into()))?;
        self.signal_map_run_started(parent_arn, d.task_id, &record)
            .await;
        let mut run = LiveRun::new(record, spec.clone(), sizes, parent);
        // The first page of inputs is at hand.
        run.window = texts.into_iter().take(ITEM_PAGE).enumerate().collect();
        Ok(Some(self.register(run)))
    }

    /// A new Map Run's record, running, with `length` items.
    fn new_map_run_record(
        &self,
        parent_arn: &str,
        d: &Dispatch,
        spec: &MapRunSpec,
        length: u64,
    ) -> Result<MapRunRecord> {
        let exec = arn::parse_execution(parent_arn)?;
        let label = spec
            .label
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let sm_name = format!("{}/{label}", exec.parts[0]);
        let prefix = format!(
            "arn:{}:states:{}:{}",
            exec.partition, exec.region, exec.account
        );
        Ok(MapRunRecord {
            arn: format!("{prefix}:mapRun:{sm_name}:{}", uuid::Uuid::new_v4()),
            execution_arn: parent_arn.to_owned(),
            task_id: d.task_id,
            state_machine_arn: format!("{prefix}:stateMachine:{sm_name}"),
            status: MapRunStatus::Running,
            start_date: self.now(),
            stop_date: None,
            max_concurrency: spec.max_concurrency,
            tolerated_failure_count: spec.tolerated_failure_count,
            tolerated_failure_percentage: spec.tolerated_failure_percentage,
            express: spec.express,
            item_total: length,
            error: None,
            cause: None,
            redrive_count: 0,
            redrive_date: None,
            item_counts: None,
            execution_counts: None,
            spec: serde_json::to_string(&crate::checkpoint::StoredMapRunSpec::from(spec))
                .unwrap_or_default(),
        })
    }

    /// Tells the parent its Map Run started (the interpreter ignores a repeat).
    async fn signal_map_run_started(&self, parent_arn: &str, task_id: u64, record: &MapRunRecord) {
        let started = Signal::MapRunStarted {
            task_id,
            map_run_arn: record.arn.clone(),
            length: record.item_total,
            redrive_count: None,
        };
        let recorded = self.inner.runner.signal_until_recorded(parent_arn, started);
        if let Err(e) = recorded.await {
            tracing::warn!(parent = %parent_arn, error = %e, "Map Run start not recorded");
        }
    }

    /// The `ItemReader` failed (`States.ItemReaderFailed`): as AWS does, the Map Run starts
    /// and fails at once, with no items (the recordings: `MapStateStarted` with length 0,
    /// `MapRunStarted`, `MapRunFailed`). It is stored failed before the parent learns of it,
    /// so a dispatch performed again after a restart answers the same
    /// ([`Engine::unread_map_run_failure`]).
    async fn fail_unread_map_run(
        &self,
        parent_arn: &str,
        d: &Dispatch,
        spec: &MapRunSpec,
        ec: ErrorCause,
    ) -> TaskReply {
        let mut record = match self.new_map_run_record(parent_arn, d, spec, 0) {
            Ok(record) => record,
            Err(e) => return failed(names::RUNTIME, e.message()),
        };
        record.status = MapRunStatus::Failed;
        record.stop_date = Some(record.start_date);
        (record.error, record.cause) = (ec.error.clone(), ec.cause.clone());
        if let Err(e) = self
            .store()
            .create_map_run(record.clone(), Vec::new())
            .await
        {
            return failed(names::RUNTIME, Error::from(e).message());
        }
        self.signal_map_run_started(parent_arn, d.task_id, &record)
            .await;
        TaskReply::Done(TaskOutcome::Failed(ec))
    }

    /// The failure of a stored Map Run that failed reading its items, if `record` is one.
    fn unread_map_run_failure(record: &MapRunRecord) -> Option<ErrorCause> {
        let unread = record.status == MapRunStatus::Failed
            && record.item_total == 0
            && record.error.as_deref() == Some(names::ITEM_READER_FAILED);
        unread.then(|| ErrorCause {
            error: record.error.clone(),
            cause: record.cause.clone(),
            ..ErrorCause::default()
        })
    }

    /// Redrives a Map Run that ended unsuccessfully: its unsuccessful Standard children are
    /// redriven in place, its Express ones (and those never started) run again.
    async fn redrive_map_run(
        &self,
        mut record: MapRunRecord,
        spec: &MapRunSpec,
        parent_arn: &str,
        parent: Parent,
    ) -> std::result::Result<Arc<Mutex<LiveRun>>, TaskReply> {
        let internal = |e: Error| failed(names::RUNTIME, e.message());
        if record.redrive_count >= MAX_REDRIVES {
            return Err(failed(
                names::RUNTIME,
                format!("The Map Run has reached the limit of {MAX_REDRIVES} redrives."),
            ));
        }
        record.redrive_count += 1;
        record.redrive_date = Some(self.now());
        record.status = MapRunStatus::Running;
        record.stop_date = None;
        (record.error, record.cause) = (None, None);
        let started = Signal::MapRunStarted {
            task_id: record.task_id,
            map_run_arn: record.arn.clone(),
            length: record.item_total,
            redrive_count: Some(record.redrive_count),
        };
        let run = self
            .resume_map_run(record.clone(), spec.clone(), parent)
            .await
            .map_err(internal)?;
        {
            let mut r = run.lock().await;
            self.queue_for_redrive(&mut r).await.map_err(internal)?;
        }
        // Stored after the children are queued: a crash before this redrives again.
        self.store()
            .update_map_run(record)
            .await
            .map_err(|e| internal(e.into()))?;
        let recorded = self.inner.runner.signal_until_recorded(parent_arn, started);
        if let Err(e) = recorded.await {
            tracing::warn!(parent = %parent_arn, error = %e, "Map Run redrive not recorded");
        }
        Ok(run)
    }

    /// Queues a redriven Map Run's unsuccessful children, durably: Standard ones become
    /// `PENDING_REDRIVE` (their records), Express ones lose their result (their items).
    async fn queue_for_redrive(&self, r: &mut LiveRun) -> Result<()> {
        let mut writes = Vec::new();
        for i in 0..r.children.len() {
            if !matches!(
                r.children[i],
                Child::Failed | Child::TimedOut | Child::Aborted
            ) {
                continue;
            }
            let Some(arn) = r.unsuccessful.get(&i) else {
                if r.spec.express {
                    writes.push(Write::MapRunItem {
                        map_run_arn: r.record.arn.clone(),
                        index: i as u64,
                        result: None,
                    });
                }
                r.set(i, Child::Pending);
                continue;
            };
            if let Some(mut child) = self.store().get_execution(arn).await? {
                child.status = ExecutionStatus::PendingRedrive;
                child.version += 1;
                // A record write of a closed execution: allowed on another node's shard too.
                writes.push(Write::Record {
                    execution: child,
                    events: Vec::new(),
                });
            }
            r.set(i, Child::PendingRedrive);
        }
        for result in self.store().commit(writes).await? {
            result?;
        }
        Ok(())
    }

    fn register(&self, run: LiveRun) -> Arc<Mutex<LiveRun>> {
        let arn = run.record.arn.clone();
        let run = Arc::new(Mutex::new(run));
        crate::lock::lock(&self.inner.map_runs.live).insert(arn, run.clone());
        run
    }

    fn live_map_run(&self, arn: &str) -> Option<Arc<Mutex<LiveRun>>> {
        crate::lock::lock(&self.inner.map_runs.live)
            .get(arn)
            .cloned()
    }

    /// Rebuilds a Map Run from its record, items and children: after a restart, or for a
    /// redrive.
    async fn resume_map_run(
        &self,
        record: MapRunRecord,
        spec: MapRunSpec,
        parent: Parent,
    ) -> Result<Arc<Mutex<LiveRun>>> {
        let mut sizes = Vec::new();
        // How the Express children that ended did, by index (their items keep it).
        let mut express_ended = Vec::new();
        let mut from = 0;
        loop {
            let page = self
                .store()
                .map_run_items(&record.arn, from, ITEM_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.index + 1;
            for item in page {
                sizes.push(match &spec.batcher {
                    Some(_) => {
                        crate::stored_json::from_str(&item.input).map_or(1, |b| batch_size(&b))
                    }
                    None => 1,
                });
                let ended = item.result.filter(|_| spec.express);
                if let Some(e) = ended.and_then(|t| serde_json::from_str::<Ended>(&t).ok()) {
                    express_ended.push((item.index as usize, Child::from(e.status)));
                }
            }
        }
        let children_of = record.clone();
        let run = self.register(LiveRun::new(record, spec, sizes, parent));
        // Registered first: a child ending meanwhile waits for the lock, and one that ended
        // before is final in the store.
        let mut guard = run.lock().await;
        for (i, status) in express_ended {
            if i < guard.children.len() {
                guard.set(i, status);
            }
        }
        let mut after = None;
        loop {
            let page = self.map_run_children(&children_of, after).await?;
            for child in &page {
                guard.child_ended(child);
            }
            after = next_cursor(&page);
            if after.is_none() {
                break;
            }
        }
        drop(guard);
        Ok(run)
    }

    /// The Map Run a parent's dispatch (task id) started, if any.
    async fn find_map_run(&self, parent_arn: &str, task_id: u64) -> Result<Option<MapRunRecord>> {
        let runs = self.store().list_map_runs(parent_arn).await?;
        Ok(runs.into_iter().find(|r| r.task_id == task_id))
    }

    /// A page of the durable (Standard) children of a Map Run, newest first, from after
    /// `after` (see [`next_cursor`]).
    async fn map_run_children(
        &self,
        record: &MapRunRecord,
        after: Option<Cursor>,
    ) -> Result<Vec<ExecutionRecord>> {
        Ok(self
            .store()
            .list_executions(ExecutionFilter {
                state_machine_arn: record.state_machine_arn.clone(),
                map_run_arn: Some(record.arn.clone()),
                after,
                limit: ITEM_PAGE,
                ..Default::default()
            })
            .await?)
    }

    /// Starts children while the concurrency allows, and ends the Map Run when it is done.
    async fn pump(&self, run: &Arc<Mutex<LiveRun>>) {
        let mut r = run.lock().await;
        if r.done {
            return;
        }
        if !self.inner.runner.runs_shard(r.parent.shard) {
            // The parent's shard moved to another node, which resumes the Map Run.
            r.done = true;
            crate::lock::lock(&self.inner.map_runs.live).remove(&r.record.arn);
            return;
        }
        if r.intolerable() {
            let ec = asl::interpreter::exceeded_tolerance();
            return self.end_map_run(&mut r, Err(ec)).await;
        }
        let limit = match r.record.max_concurrency {
            0 => MAX_CHILDREN_AT_ONCE,
            n => n.min(MAX_CHILDREN_AT_ONCE),
        };
        let mut running = r.executions[Child::Running as usize];
        let mut i = r.scan_from;
        while running < limit && i < r.children.len() {
            let status = r.children[i];
            if matches!(status, Child::Pending | Child::PendingRedrive) {
                r.set(i, Child::Running);
                running += 1;
                let started = match status {
                    Child::PendingRedrive => self.redrive_map_run_child(&r, i).await,
                    _ => self.start_map_run_child(&mut r, i).await,
                };
                match started {
                    Ok(()) => {}
                    // The database failed for a moment: this child and the rest start later.
                    Err(e) if e.is_momentary() => {
                        tracing::warn!(map_run = %r.record.arn, error = %e, "Map Run child not started; trying again");
                        r.set(i, status);
                        tokio::spawn(self.pump_later(run.clone()));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(map_run = %r.record.arn, error = %e, "child not started");
                        r.set(i, Child::Failed);
                        running -= 1;
                    }
                }
            }
            i += 1;
            if !matches!(
                r.children.get(r.scan_from),
                Some(Child::Pending | Child::PendingRedrive)
            ) {
                r.scan_from = i.min(r.children.len());
            }
        }
        if !r.open() {
            let outcome = if r.intolerable() {
                Err(asl::interpreter::exceeded_tolerance())
            } else {
                Ok(())
            };
            self.end_map_run(&mut r, outcome).await;
        }
    }

    /// [`Engine::pump`] again after [`CHILD_RETRY`] (a child could not be started).
    fn pump_later(
        &self,
        run: Arc<Mutex<LiveRun>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let engine = self.clone();
        Box::pin(async move {
            tokio::time::sleep(CHILD_RETRY).await;
            engine.pump(&run).await;
        })
    }

    /// Redrives an unsuccessful Standard child in place.
    async fn redrive_map_run_child(&self, r: &LiveRun, index: usize) -> Result<()> {
        let Some(arn) = r.unsuccessful.get(&index) else {
            return Ok(());
        };
        let record = self
            .store()
            .get_execution(arn)
            .await?
            .ok_or_else(|| Error::ExecutionDoesNotExist(arn.clone()))?;
        self.reopen_for_redrive(record, self.now()).await
    }

    /// Child `index`'s input: from the window, which is refilled from the store with the
    /// next page of children waiting to start.
    async fn child_input(&self, r: &mut LiveRun, index: usize) -> Result<String> {
        if let Some(input) = r.window.remove(&index) {
            return Ok(input);
        }
        let page = self
            .store()
            .map_run_items(&r.record.arn, index as u64, ITEM_PAGE)
            .await?;
        r.window.clear();
        let mut found = None;
        for item in page {
            let i = item.index as usize;
            if i == index {
                found = Some(item.input);
            } else if r.children.get(i) == Some(&Child::Pending) {
                r.window.insert(i, item.input);
            }
        }
        found.ok_or(Error::Store(store::Error::NotFound))
    }

    async fn start_map_run_child(&self, r: &mut LiveRun, index: usize) -> Result<()> {
        let name = r
            .tried
            .remove(&index)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let started = self.start_named_child(r, index, &name).await;
        match &started {
            Err(e) if e.is_momentary() => {
                r.tried.insert(index, name);
            }
            // Stored by the try before, whose answer was an error.
            Err(Error::Store(store::Error::AlreadyExists)) => {
                let arn = r.child_arn(&name);
                let runner = &self.inner.runner;
                match self.store().get_execution(&arn).await? {
                    // Running on another node's shard: asks it to start the child, if it
                    // has not yet.
                    Some(child)
                        if child.status == ExecutionStatus::Running
                            && !runner.runs_shard(child.shard) =>
                    {
                        runner.redriven_elsewhere(&arn).await?;
                    }
                    Some(child) => runner.adopt(child, Some(r.parent_link())).await,
                    None => {}
                }
                return Ok(());
            }
            _ => {}
        }
        started
    }

    /// Starts child `index` under `name` ([`Self::start_map_run_child`]).
    async fn start_named_child(&self, r: &mut LiveRun, index: usize, name: &str) -> Result<()> {
        let name = name.to_owned();
        let input_text = self.child_input(r, index).await?;
        let input = crate::stored_json::from_str(&input_text).unwrap_or(Value::Null);
        let def = self.inner.runner.definition(&r.spec.definition)?;
        let sm_name = r
            .record
            .state_machine_arn
            .rsplit_once(":stateMachine:")
            .map(|(_, n)| n.to_owned())
            .unwrap_or_default();
        let (record, checkpoint) = self.new_execution(NewExecution {
            arn: r.child_arn(&name),
            name,
            state_machine_arn: r.record.state_machine_arn.clone(),
            state_machine_name: sm_name,
            role_arn: r.parent.role_arn.clone(),
            definition: r.spec.definition.clone(),
            revision_id: None,
            input_text,
            input,
            version_arn: None,
            alias_arn: None,
            parent: Some(r.parent_link()),
            test_case: r.parent.test_case.clone(),
            map_run: Some(MapRunChild {
                map_run_arn: r.record.arn.clone(),
                index: index as u64,
                item_count: Some(r.sizes[index]),
            }),
            trace_header: None,
        });
        let runner = &self.inner.runner;
        if r.spec.express {
            runner.start(def, record, checkpoint, false, None).await?;
            return Ok(());
        }
        // Standard children are spread over every shard; one another node holds runs there.
        let shard = runner.spread(&r.record.arn, index as u64);
        let record = ExecutionRecord {
            shard: shard.or(record.shard),
            ..record
        };
        if runner.runs_shard(record.shard) {
            let here = runner.start(def, record.clone(), checkpoint.clone(), true, None);
            match here.await {
                // The shard moved meanwhile: its new owner starts the child.
                Err(Error::Store(store::Error::Fenced)) => {}
                other => return other.map(drop),
            }
        }
        runner.create_elsewhere(record, checkpoint).await?;
        Ok(())
    }

    /// A child execution of a Map Run ended. The Map Run runs where its parent runs: a child
    /// that ended on another node is told there ([`crate::runner::Runner::child_ended_elsewhere`]).
    pub(crate) async fn map_run_child_finished(
        &self,
        child: &ExecutionRecord,
        parent: &ParentLink,
    ) {
        let Some(link) = &child.map_run else { return };
        let run = self.live_map_run(&link.map_run_arn);
        let here = match &run {
            Some(run) => self.inner.runner.runs_shard(run.lock().await.parent.shard),
            None => false,
        };
        let Some(run) = run.filter(|_| here) else {
            if let Some(moved) = self.live_map_run(&link.map_run_arn) {
                self.pump(&moved).await; // the parent moved: dropped here
            }
            let runner = &self.inner.runner;
            let told =
                runner.child_ended_elsewhere(&parent.execution_arn, &child.arn, parent.task_id);
            if let Err(e) = told.await {
                tracing::warn!(child = %child.arn, error = %e, "Map Run child's end not sent");
            }
            return;
        };
        if crate::arn::is_express_execution(&child.arn) && child.status != ExecutionStatus::Running
        {
            // The item keeps how the child ended: it has no record of its own.
            let write = item_result(child).into_iter().collect();
            if let Err(e) = self.store().commit(write).await {
                tracing::warn!(child = %child.arn, error = %e, "Express child result not stored");
            }
        }
        {
            let mut r = run.lock().await;
            if r.done {
                return;
            }
            r.child_ended(child);
        }
        self.pump(&run).await;
    }

    /// Ends a Map Run: its running children stopped, its results written, its record, the
    /// parent told.
    async fn end_map_run(&self, r: &mut LiveRun, outcome: std::result::Result<(), ErrorCause>) {
        r.done = true;
        crate::lock::lock(&self.inner.map_runs.live).remove(&r.record.arn);
        if outcome.is_err() {
            self.stop_running_children(r).await;
        }
        let outcome = match outcome {
            Ok(()) => self.map_run_output(r).await,
            // A failed Map Run still exports what its children did.
            Err(ec) => {
                if let Some(writer) = r.spec.writer.clone() {
                    let written = self.write_results(r, &writer).await;
                    r.results_written = written.is_ok();
                }
                Err(ec)
            }
        };
        let (status, outcome) = match outcome {
            Ok(output) => (MapRunStatus::Succeeded, TaskOutcome::Succeeded(output)),
            Err(ec) => {
                (r.record.error, r.record.cause) = (ec.error.clone(), ec.cause.clone());
                (MapRunStatus::Failed, TaskOutcome::Failed(ec))
            }
        };
        r.record.status = status;
        r.record.stop_date = Some(self.now());
        r.keep_counts();
        if let Err(e) = self.store().update_map_run(r.record.clone()).await {
            tracing::warn!(map_run = %r.record.arn, error = %e, "Map Run end not stored");
        }
        let signal = Signal::TaskFinished {
            task_id: r.record.task_id,
            outcome,
        };
        if let Err(e) = self
            .inner
            .runner
            .signal_until_recorded(&r.record.execution_arn, signal)
            .await
        {
            tracing::warn!(parent = %r.record.execution_arn, error = %e, "Map Run end not recorded");
        }
    }

    /// The Map state's result: the children's outputs in item order, or where the
    /// `ResultWriter` wrote them.
    async fn map_run_output(&self, r: &mut LiveRun) -> std::result::Result<Value, ErrorCause> {
        let Some(writer) = r.spec.writer.clone() else {
            return self
                .result_array(r, ResultArray::outputs(&r.parent.state))
                .await;
        };
        let output = self.write_results(r, &writer).await?;
        r.results_written = true;
        Ok(output)
    }

    /// The children's results gathered into the Map state's result; it fails as soon as it
    /// outgrows a state's output (`States.DataLimitExceeded`).
    async fn result_array(
        &self,
        r: &LiveRun,
        mut array: ResultArray,
    ) -> std::result::Result<Value, ErrorCause> {
        self.feed_results(r, ResultSink::Output(&mut array)).await?;
        Ok(array.finish())
    }

    /// Feeds every child's result to `sink` in item order, reading a page at a time.
    async fn feed_results(
        &self,
        r: &LiveRun,
        mut sink: ResultSink<'_>,
    ) -> std::result::Result<(), ErrorCause> {
        self.keep_standard_results(r).await.map_err(runtime)?;
        let mut from = Some(0);
        while let Some(at) = from {
            let page;
            (page, from) = self.result_page(r, at).await.map_err(runtime)?;
            for child in &page {
                sink.add(child).await?;
            }
        }
        Ok(())
    }

    /// One page of the children as the results report them, in item order from item
    /// `from`: the child's input, and how it ended as its item keeps it (see
    /// [`Engine::keep_standard_results`]). Also where the next page starts, if there is one.
    async fn result_page(&self, r: &LiveRun, from: u64) -> Result<(Vec<ChildResult>, Option<u64>)> {
        let items = self
            .store()
            .map_run_items(&r.record.arn, from, ITEM_PAGE)
            .await?;
        let next = match items.last() {
            Some(last) if items.len() == ITEM_PAGE => Some(last.index + 1),
            _ => None,
        };
        let page = items
            .into_iter()
            .map(|item| {
                let ended = item.result.and_then(|t| serde_json::from_str(&t).ok());
                let status = r.children.get(item.index as usize).copied();
                child_result(status, item.input, ended)
            })
            .collect();
        Ok((page, next))
    }

    /// Copies every Standard child's record into its item, a page of children at a time, so
    /// that the results can be read from the items alone, in item order (an Express child's
    /// item already keeps how it ended).
    ///
    /// Why a copy: the store lists a Map Run's children by start date, not by item, so their
    /// records cannot be read in item order a page at a time. Why here rather than as each
    /// child ends: the copy is made whenever the Map Run ends, after its children ended, so
    /// no crash leaves an item behind its child's record: a Map Run a crash interrupts is
    /// resumed from the records and copies them when it ends, and a redriven child's new
    /// end replaces its old copy at the next end.
    async fn keep_standard_results(&self, r: &LiveRun) -> Result<()> {
        if r.spec.express {
            return Ok(());
        }
        let mut after = None;
        loop {
            let page = self.map_run_children(&r.record, after).await?;
            after = next_cursor(&page);
            let writes = page.iter().filter_map(item_result).collect();
            for written in self.store().commit(writes).await? {
                written?;
            }
            if after.is_none() {
                return Ok(());
            }
        }
    }

    /// Stops the children still running, here and (Standard ones, through their owners'
    /// inboxes) on other nodes, and counts those that had not ended as aborted.
    async fn stop_running_children(&self, r: &mut LiveRun) {
        let mut children = self
            .inner
            .runner
            .children_of(&r.record.execution_arn, r.record.task_id)
            .await;
        if self.inner.runner.sharded() && !r.spec.express {
            match self.running_children(&r.record).await {
                Ok(elsewhere) => {
                    let here: std::collections::HashSet<String> =
                        children.iter().cloned().collect();
                    children.extend(elsewhere.into_iter().filter(|arn| !here.contains(arn)));
                }
                Err(e) => {
                    tracing::warn!(map_run = %r.record.arn, error = %e, "children on other nodes not listed")
                }
            }
        }
        for child in children {
            let stop = Signal::Stop {
                error: None,
                cause: None,
            };
            let ended = match self.inner.runner.signal(&child, stop).await {
                Ok(Signalled::Applied(record)) => Some(Arc::unwrap_or_clone(record)),
                // It ended before the stop arrived: its record says how.
                Ok(_) => self.describe_execution(&child).await.ok(),
                Err(e) => {
                    tracing::warn!(%child, error = %e, "child not stopped");
                    None
                }
            };
            if let Some(record) = ended {
                r.child_ended(&record);
            }
        }
        for i in 0..r.children.len() {
            if r.children[i] == Child::Running {
                r.set(i, Child::Aborted);
            }
        }
    }

    /// The Standard children of a Map Run stored as running, on any node.
    async fn running_children(&self, record: &MapRunRecord) -> Result<Vec<String>> {
        let mut running = Vec::new();
        let mut after = None;
        loop {
            let page = self.map_run_children(record, after).await?;
            after = next_cursor(&page);
            let open = page
                .into_iter()
                .filter(|c| c.status == ExecutionStatus::Running);
            running.extend(open.map(|c| c.arn));
            if after.is_none() {
                return Ok(running);
            }
        }
    }

    /// Checks the Standard children a live Map Run counts as running against the store once
    /// the run has gone [`SWEEP_QUIET`] without a child's end: so that an end whose message
    /// was lost (the child's node died between its commit and the message) does not hold the
    /// Map Run for good, and children placed on another node's shard and still not started
    /// are asked for again. A check reads every child of the run, so a run whose children end
    /// steadily is not checked, and a quiet one (children that run for long) ever less often.
    /// Runs on a store split in shards, where children run on other nodes.
    pub(crate) async fn sweep_map_runs(self) {
        loop {
            tokio::time::sleep(SWEEP_QUIET / 2).await;
            let runs: Vec<Arc<Mutex<LiveRun>>> = crate::lock::lock(&self.inner.map_runs.live)
                .values()
                .cloned()
                .collect();
            for run in runs {
                match self.sweep(&run).await {
                    Ok(true) => self.pump(&run).await,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "Map Run children not checked"),
                }
            }
        }
    }

    /// [`Engine::sweep_map_runs`] for one Map Run: whether it has to be pumped (a child's end
    /// was found, or the parent moved). The store is read without holding the run, whose
    /// children's ends keep coming meanwhile.
    async fn sweep(&self, run: &Arc<Mutex<LiveRun>>) -> Result<bool> {
        let (record, since, running) = {
            let r = run.lock().await;
            if !r.done && !self.inner.runner.runs_shard(r.parent.shard) {
                return Ok(true); // the parent moved: `pump` drops the Map Run
            }
            let quiet = r.executions[Child::Running as usize] == 0;
            if r.done || r.spec.express || quiet || Instant::now() < r.sweep_at {
                return Ok(false);
            }
            let running: HashSet<usize> = (r.children.iter().enumerate())
                .filter(|(_, c)| **c == Child::Running)
                .map(|(i, _)| i)
                .collect();
            (r.record.clone(), r.sweep_at, running)
        };
        let now = self.now();
        let (mut ended, mut after) = (Vec::new(), None);
        loop {
            let page = self.map_run_children(&record, after).await?;
            after = next_cursor(&page);
            for child in page {
                let Some(i) = child.map_run.as_ref().map(|m| m.index as usize) else {
                    continue;
                };
                if !running.contains(&i) {
                    continue;
                }
                match child.status {
                    ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                        let unstarted = child.history_length == 0
                            && now - child.start_date > SWEEP_QUIET.as_millis() as i64;
                        if unstarted {
                            self.inner.runner.redriven_elsewhere(&child.arn).await?;
                        }
                    }
                    _ => ended.push((i, child)),
                }
            }
            if after.is_none() {
                break;
            }
        }
        let mut r = run.lock().await;
        let mut found = false;
        for (i, child) in &ended {
            if r.children.get(*i) == Some(&Child::Running) {
                r.child_ended(child);
                found = true;
            }
        }
        if !found && r.sweep_at == since {
            r.sweep_quiet = (r.sweep_quiet * 2).min(SWEEP_AT_MOST);
            r.sweep_at = Instant::now() + r.sweep_quiet;
        }
        Ok(found)
    }

    /// The parent ended while its Map Run ran: abort the Map Run and its children.
    pub(crate) async fn abort_map_run(&self, parent_arn: &str, task_id: u64) {
        let Ok(Some(record)) = self.find_map_run(parent_arn, task_id).await else {
            return;
        };
        let Some(run) = self.live_map_run(&record.arn) else {
            return;
        };
        let mut r = run.lock().await;
        if r.done {
            return;
        }
        r.done = true;
        crate::lock::lock(&self.inner.map_runs.live).remove(&r.record.arn);
        self.stop_running_children(&mut r).await;
        r.record.status = MapRunStatus::Aborted;
        r.record.stop_date = Some(self.now());
        r.keep_counts();
        if let Err(e) = self.store().update_map_run(r.record.clone()).await {
            tracing::warn!(map_run = %r.record.arn, error = %e, "Map Run abort not stored");
        }
    }

    /// `DescribeMapRun`.
    pub async fn describe_map_run(&self, map_run_arn: &str) -> Result<MapRunDescription> {
        arn::parse_map_run(map_run_arn)?;
        if let Some(run) = self.live_map_run(map_run_arn) {
            let r = run.lock().await;
            let (item_counts, execution_counts) = r.counts();
            return Ok(MapRunDescription {
                record: r.record.clone(),
                item_counts,
                execution_counts,
            });
        }
        let record = self
            .store()
            .get_map_run(map_run_arn)
            .await?
            .ok_or_else(|| map_run_not_found(map_run_arn))?;
        Ok(MapRunDescription {
            item_counts: record.item_counts.clone().unwrap_or_default(),
            execution_counts: record.execution_counts.clone().unwrap_or_default(),
            record,
        })
    }

    /// `ListMapRuns`: the Map Runs an execution started.
    pub async fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>> {
        self.describe_execution(execution_arn).await?;
        Ok(self.store().list_map_runs(execution_arn).await?)
    }

    /// `UpdateMapRun`: the new limits apply to the running Map Run at once; an ended one
    /// cannot change.
    pub async fn update_map_run(&self, map_run_arn: &str, u: MapRunUpdate) -> Result<()> {
        arn::parse_map_run(map_run_arn)?;
        let apply = |record: &mut MapRunRecord| {
            if let Some(n) = u.max_concurrency {
                record.max_concurrency = n;
            }
            if let Some(n) = u.tolerated_failure_count {
                record.tolerated_failure_count = Some(n);
            }
            if let Some(p) = u.tolerated_failure_percentage {
                record.tolerated_failure_percentage = Some(p);
            }
        };
        if let Some(run) = self.live_map_run(map_run_arn) {
            let record = {
                let mut r = run.lock().await;
                apply(&mut r.record);
                r.record.clone()
            };
            self.store().update_map_run(record).await?;
            self.pump(&run).await;
            return Ok(());
        }
        let record = self
            .store()
            .get_map_run(map_run_arn)
            .await?
            .ok_or_else(|| map_run_not_found(map_run_arn))?;
        Err(Error::CannotUpdateCompletedMapRun(format!(
            "The Map Run '{}' is {} and cannot be updated.",
            record.arn, record.status
        )))
    }

    /// `ListExecutions` with `mapRunArn`: the child state machine the Map Run's children
    /// report.
    pub(crate) async fn map_run_state_machine(&self, map_run_arn: &str) -> Result<String> {
        arn::parse_map_run(map_run_arn)?;
        let record = self
            .store()
            .get_map_run(map_run_arn)
            .await?
            .ok_or_else(|| map_run_not_found(map_run_arn))?;
        Ok(record.state_machine_arn)
    }
}

/// A child as the `ResultWriter` files report it: `status` as the Map Run counts it, its
/// input, and its record once it started.
fn child_result(
    status: Option<Child>,
    input: String,
    child: Option<ExecutionRecord>,
) -> ChildResult {
    let status = match status {
        Some(Child::Succeeded) => ChildStatus::Succeeded,
        Some(Child::Failed) => ChildStatus::Failed,
        Some(Child::TimedOut) => ChildStatus::TimedOut,
        Some(Child::Aborted) => ChildStatus::Aborted,
        _ => ChildStatus::Pending,
    };
    let mut result = ChildResult::pending(input);
    result.status = status;
    let Some(e) = child else {
        return result;
    };
    let date = |ms: i64| asl::timestamp::format_millis(ms);
    result.execution_arn = Some(e.arn);
    result.state_machine_arn = Some(e.state_machine_arn);
    result.name = Some(e.name);
    result.output = e.output;
    (result.error, result.cause) = (e.error, e.cause);
    result.start_date = Some(date(e.start_date));
    result.stop_date = e.stop_date.map(date);
    result.redrive_count = Some(e.redrive_count);
    let succeeded = status == ChildStatus::Succeeded;
    result.redrive_status = Some(
        if succeeded {
            "NOT_REDRIVABLE"
        } else {
            "REDRIVABLE_BY_MAP_RUN"
        }
        .into(),
    );
    result.redrive_status_reason =
        succeeded.then(|| "Execution is SUCCEEDED and cannot be redriven".into());
    result
}

fn map_run_not_found(arn: &str) -> Error {
    Error::resource_not_found(arn)
}

/// `ItemBatcher`: groups the child inputs into batches, and the item count of each.
fn batch(
    inputs: Vec<Value>,
    batcher: &Value,
) -> std::result::Result<(Vec<Value>, Vec<u64>), TaskReply> {
    let batches = item_io::batch_items(inputs, batcher)
        .map_err(|f| TaskReply::Done(TaskOutcome::Failed(f)))?;
    let sizes = batches.iter().map(batch_size).collect();
    Ok((batches, sizes))
}

/// How many items an `ItemBatcher` batch holds.
fn batch_size(batch: &Value) -> u64 {
    batch
        .get("Items")
        .and_then(Value::as_array)
        .map_or(1, Vec::len) as u64
}

impl Engine {
    /// The S3 client of an `ItemReader`/`ResultWriter` (failing with `error`): the S3
    /// endpoint (`--endpoint s3=URL`, else `--aws-endpoint`), the execution's region, and
    /// the credentials of the role its Task calls assume under `--assume-execution-role`
    /// (the execution's role `role`), as [`identity::credentials`] gives them.
    async fn s3_client(
        &self,
        execution_arn: &str,
        role: &str,
        error: &str,
    ) -> std::result::Result<S3, ErrorCause> {
        let Some(endpoint) = configured_endpoint(self.config(), &["s3"]) else {
            return Err(ErrorCause::new(
                error,
                "No S3 endpoint is configured: start stepwise with --aws-endpoint (STEPWISE_AWS_ENDPOINT) or --endpoint s3=URL",
            ));
        };
        let region =
            arn::Arn::parse(execution_arn).map_or_else(|| "us-east-1".into(), |a| a.region);
        let role = Some(role).filter(|_| self.config().assume_execution_role);
        let credentials = identity::credentials(self, &["s3"], role, None, &region)
            .await
            .map_err(|e| ErrorCause::new(error, e.to_string()))?;
        S3::with_credentials(endpoint, &region, credentials)
            .map_err(|e| ErrorCause::new(error, e.to_string()))
    }

    async fn read_items(
        &self,
        parent_arn: &str,
        role: &str,
        reader: &S3Call,
    ) -> std::result::Result<Vec<Value>, ErrorCause> {
        let s3 = self
            .s3_client(parent_arn, role, names::ITEM_READER_FAILED)
            .await?;
        item_io::read_items(
            &s3,
            &reader.resource,
            &reader.arguments,
            reader.config.as_ref(),
        )
        .await
    }

    /// `ResultWriter`: the children's results to S3 (the Map state's output says where), or,
    /// with only a `WriterConfig`, shaped into the output itself. The export is streamed: the
    /// results are read a page at a time and each file is uploaded while it grows.
    async fn write_results(
        &self,
        r: &LiveRun,
        writer: &S3Call,
    ) -> std::result::Result<Value, ErrorCause> {
        if writer.resource.is_empty() {
            let config = writer.config.clone().unwrap_or(Value::Null);
            let array = ResultArray::shaped(&config, &r.parent.state)?;
            return self.result_array(r, array).await;
        }
        let s3 = self
            .s3_client(
                &r.record.execution_arn,
                &r.parent.role_arn,
                names::RESULT_WRITER_FAILED,
            )
            .await?;
        let mut export =
            Export::start(s3, &writer.arguments, writer.config.as_ref(), &r.record.arn)?;
        if let Err(e) = self.feed_results(r, ResultSink::Export(&mut export)).await {
            export.abort().await;
            return Err(e);
        }
        let details = export.finish().await?;
        Ok(json!({ "MapRunArn": r.record.arn, "ResultWriterDetails": details }))
    }
}

/// Where a Map Run's results go as they are read.
enum ResultSink<'a> {
    /// The Map state's result.
    Output(&'a mut ResultArray),
    /// The `ResultWriter`'s files.
    Export(&'a mut Export),
}

impl ResultSink<'_> {
    async fn add(&mut self, child: &ChildResult) -> std::result::Result<(), ErrorCause> {
        match self {
            ResultSink::Output(array) => array.push(child),
            ResultSink::Export(export) => export.add(child).await,
        }
    }
}

/// What an engine error (the store's) fails the Map Run with.
fn runtime(e: Error) -> ErrorCause {
    ErrorCause::new(names::RUNTIME, e.message())
}

/// How a child ended, written into its item (the child's input is there already).
fn item_result(child: &ExecutionRecord) -> Option<Write> {
    let link = child.map_run.as_ref()?;
    let summary = ExecutionRecord {
        input: String::new(),
        ..child.clone()
    };
    Some(Write::MapRunItem {
        map_run_arn: link.map_run_arn.clone(),
        index: link.index,
        result: serde_json::to_string(&summary).ok(),
    })
}

/// Where the page of children after `page` starts; `None` when `page` was the last.
fn next_cursor(page: &[ExecutionRecord]) -> Option<Cursor> {
    match page.last() {
        Some(last) if page.len() == ITEM_PAGE => Some(Cursor {
            start_date: last.start_date,
            arn: last.arn.clone(),
        }),
        _ => None,
    }
}

/// The status of an ended child as its item keeps it.
#[derive(Deserialize)]
struct Ended {
    status: ExecutionStatus,
}
