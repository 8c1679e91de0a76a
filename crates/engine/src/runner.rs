//! Runs executions: a work queue of executions ready to advance, workers that advance them
//! through the interpreter and commit each transition, a timer service for the ones waiting
//! on time, and an outbox of what must happen after a commit (tasks to perform, parents to
//! tell that a child ended).
//!
//! Invariants:
//! - An execution's in-memory [`Live`] copy changes only together with a committed
//!   transition. If the commit fails, the copy is rolled back and the execution retried
//!   later, so memory never runs ahead of the durable record.
//! - Side effects (the [`Outbox`]) are emitted only after the transition that asked for them
//!   is committed; after a restart, the pending ones are emitted again (at-least-once).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};

use asl::definition::Definition;
use asl::history::HistoryEvent;
use asl::interpreter::{self, Advance, Dispatch, Limits, Received, Signal, Status, TaskPhase};
use opentelemetry::context::FutureExt as _;
use serde::{Deserialize, Serialize};
use store::{ExecutionRecord, ExecutionStatus, HeldShards, Store, Write};
use tokio::sync::{mpsc, oneshot, watch, Mutex, Notify};
use tokio::task::JoinHandle;

pub(crate) use crate::checkpoint::Checkpoint;
use crate::checkpoint::Lanes;
use crate::ready::ReadyQueue;
use crate::spans::ExecutionSpans;
use crate::{Clock, Result};

/// A parent execution waiting for this one (`states:startExecution.sync`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParentLink {
    pub execution_arn: String,
    pub task_id: u64,
    /// `.sync:2` reports input and output as JSON rather than strings.
    pub json_payloads: bool,
}

/// Side effects the engine performs after a commit.
pub(crate) enum Outbox {
    /// Perform a task for an execution.
    Dispatch {
        execution_arn: String,
        dispatch: Dispatch,
        /// An activity task whose offer went with the commit that scheduled it
        /// ([`store::Offers`]): it is not offered again.
        offered: bool,
    },
    /// An execution ended; tell its parent if it has one.
    Finished {
        record: Box<ExecutionRecord>,
        parent: ParentLink,
    },
    /// An execution ended while it had a task in progress: cancel it (stop a child).
    Cancel {
        execution_arn: String,
        dispatch: Dispatch,
    },
}

/// An execution the engine is running, with its parsed definition.
pub(crate) struct Live {
    pub def: Arc<Definition>,
    pub checkpoint: Checkpoint,
    pub record: ExecutionRecord,
    /// Express executions are not persisted.
    pub durable: bool,
    /// The next commit writes every lane, not only the touched ones: the stored checkpoint
    /// kept its lanes inline.
    store_all_lanes: bool,
    /// The stored checkpoint's text and the lane rows the last step changed.
    stored: (String, Vec<store::LaneRow>),
    /// A commit failed and memory could not be brought back to the store yet: read the
    /// execution again before the next step.
    behind: bool,
    /// The task ids of the activity tasks the last commit offered ([`Runner::offers`]).
    offered: Vec<u64>,
    /// Told the final record when the execution ends (`StartSyncExecution`).
    pub waiters: Vec<oneshot::Sender<ExecutionRecord>>,
}

/// What a signal did to an execution.
pub(crate) enum Signalled {
    /// The execution is not running here (ended, or unknown).
    NotRunning,
    /// The signal named a task attempt that is no longer current.
    Stale,
    /// Applied and committed; the record after the transition (shared by the signals
    /// committed together).
    Applied(Arc<ExecutionRecord>),
    /// Another node runs the execution: the signal waits in its inbox, durably, for that node
    /// to apply it (see [`crate::inbox`]).
    Forwarded,
}

type LiveRef = Arc<Mutex<Live>>;

#[derive(Clone)]
pub(crate) struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    live: SyncMutex<HashMap<String, LiveRef>>,
    /// Executions whose start is being committed or taken up, not yet live (see
    /// [`Runner::adopt`]).
    starting: SyncMutex<std::collections::HashSet<String>>,
    ready: ReadyQueue,
    timers: SyncMutex<BTreeSet<(i64, String)>>,
    timer_changed: Notify,
    outbox: mpsc::Sender<Outbox>,
    definitions: crate::machines::DefinitionCache,
    /// Signals waiting for their execution, by execution ARN (see [`Runner::signal`]).
    inbox: SyncMutex<HashMap<String, Vec<Queued>>>,
    /// Task attempts in flight, for the task time metrics.
    task_times: crate::metrics::TaskTimes,
    /// The executions' trace spans, when traces are on.
    spans: Option<ExecutionSpans>,
    /// The runtime the runner was created on, where every state is evaluated (see
    /// [`Runner::on_engine`]).
    rt: tokio::runtime::Handle,
    /// The shards this node holds, on a store shared by several active nodes
    /// ([`Store::shards`]); `None`: it runs every execution.
    shards: Option<watch::Receiver<HeldShards>>,
    /// Turns over the held shards for new executions (see [`Runner::place`]).
    placed: std::sync::atomic::AtomicUsize,
    /// Set once by [`Runner::shutdown`]; the loops stop when they see it.
    closing: watch::Sender<bool>,
    /// The loops (workers, timers, the engine's outbox), awaited by [`Runner::shutdown`].
    loops: SyncMutex<Vec<JoinHandle<()>>>,
}

/// An execution's start (or its taking up) under way: in [`Inner::starting`] while this lives.
struct Starting<'a> {
    runner: &'a Runner,
    arn: String,
}

impl<'a> Starting<'a> {
    /// `None` when the execution's start is under way already.
    fn claim(runner: &'a Runner, arn: &str) -> Option<Starting<'a>> {
        let claimed = crate::lock::lock(&runner.inner.starting).insert(arn.to_owned());
        claimed.then(|| Starting {
            runner,
            arn: arn.to_owned(),
        })
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        crate::lock::lock(&self.runner.inner.starting).remove(&self.arn);
    }
}

/// Where a signal's caller waits for what the signal did.
type SignalReply = oneshot::Sender<Result<Signalled>>;

/// A signal waiting for its execution.
struct Queued {
    signal: Signal,
    /// The offered activity task its commit takes ([`Runner::take_offered`]); such a signal
    /// commits alone, so that a task another node took fails only its own caller.
    takes: Option<u64>,
    reply: SignalReply,
}

/// How many executions advance concurrently (commits are batched across them).
const WORKERS: usize = 8;
/// How often a node reads the inboxes of its shards without being told of a signal.
const INBOX_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Most inbox signals read at once.
const INBOX_BATCH: usize = 256;
/// How long to wait before retrying an execution whose transition failed to commit.
const RETRY_MILLIS: i64 = 1000;

impl Live {
    fn new(
        def: Arc<Definition>,
        checkpoint: Checkpoint,
        record: ExecutionRecord,
        durable: bool,
    ) -> Live {
        Live {
            def,
            checkpoint,
            record,
            durable,
            waiters: Vec::new(),
            store_all_lanes: false,
            stored: Default::default(),
            behind: false,
            offered: Vec::new(),
        }
    }
}

impl Runner {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        outbox: mpsc::Sender<Outbox>,
        tracer: Option<crate::Tracer>,
    ) -> Runner {
        let shards = store.shards();
        let runner = Runner {
            inner: Arc::new(Inner {
                shards,
                placed: Default::default(),
                store,
                clock,
                limits,
                live: SyncMutex::new(HashMap::new()),
                starting: SyncMutex::new(Default::default()),
                ready: ReadyQueue::default(),
                timers: SyncMutex::new(BTreeSet::new()),
                timer_changed: Notify::new(),
                outbox,
                definitions: Default::default(),
                inbox: Default::default(),
                task_times: Default::default(),
                spans: tracer.map(ExecutionSpans::new),
                rt: tokio::runtime::Handle::current(),
                closing: watch::channel(false).0,
                loops: Default::default(),
            }),
        };
        for _ in 0..WORKERS {
            let r = runner.clone();
            let mut closing = runner.inner.closing.subscribe();
            let worker = tokio::spawn(async move {
                loop {
                    // A wake-up that began runs to its end (its commit) before the worker stops.
                    tokio::select! {
                        biased;
                        _ = closed(&mut closing) => break,
                        arn = r.inner.ready.pop() => r.wake(&arn).await,
                    }
                }
            });
            crate::lock::lock(&runner.inner.loops).push(worker);
        }
        let r = runner.clone();
        runner.spawn_loop(async move { r.timer_loop().await });
        runner
    }

    /// Runs `work` until it ends or [`Runner::shutdown`], which drops it wherever it waits:
    /// for loops whose every wait point may be abandoned.
    pub fn spawn_loop(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut closing = self.inner.closing.subscribe();
        let handle = tokio::spawn(async move {
            tokio::select! {
                _ = closed(&mut closing) => {}
                _ = work => {}
            }
        });
        crate::lock::lock(&self.inner.loops).push(handle);
    }

    /// Stops the workers (each after the wake-up it is in), the timer service and every
    /// [`Runner::spawn_loop`], and waits for them. Executions stay as they are stored; the
    /// next start resumes them, and emits again the tasks in flight (at-least-once).
    pub async fn shutdown(&self) {
        self.inner.closing.send_replace(true);
        let loops = std::mem::take(&mut *crate::lock::lock(&self.inner.loops));
        for handle in loops {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "an engine loop ended abnormally");
            }
        }
        if let Some(spans) = &self.inner.spans {
            spans.interrupt(self.inner.clock.now_millis());
        }
    }

    /// Resumes every execution the store has as running (after a restart or crash), and
    /// emits again the tasks they were waiting for.
    /// On a store split in shards, it resumes those of the shards this node holds instead,
    /// as it gains them, and drops those of the shards it loses.
    pub async fn recover(&self) -> Result<()> {
        if let Some(shards) = self.inner.shards.clone() {
            let runner = self.clone();
            self.spawn_loop(async move { runner.follow_shards(shards).await });
            return Ok(());
        }
        let open = self.inner.store.open_executions().await?;
        self.resume(open).await;
        Ok(())
    }

    /// The shard of a new execution: one this node holds (so it runs here), in turn; `None`
    /// when the store is not split in shards (or, for the moment, none is held: the commit
    /// is then refused).
    pub fn place(&self) -> Option<u32> {
        let held = self.inner.shards.as_ref()?.borrow();
        let n = held.len().max(1);
        let turn = self
            .inner
            .placed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(held.keys().nth(turn % n).copied().unwrap_or(0))
    }

    /// Runs the executions of the shards this node holds as they change: drops those of a
    /// shard lost (another node runs them now; what was in flight is fenced off by the
    /// shard's epoch) and resumes those of a shard gained, as a restart would.
    /// Between changes, it applies the signals other nodes left in the inboxes of the shards
    /// it runs, when told some arrived and every [`INBOX_POLL`] anyway.
    async fn follow_shards(&self, mut shards: watch::Receiver<HeldShards>) {
        let mut known = HeldShards::new();
        let arrived = self.inner.store.signals_arrived();
        loop {
            let now = shards.borrow_and_update().clone();
            let lost: Vec<u32> = moved(&known, &now);
            if !lost.is_empty() {
                self.drop_shards(&lost).await;
            }
            known.retain(|shard, _| !lost.contains(shard));
            let gained: Vec<u32> = moved(&now, &known);
            if !gained.is_empty() {
                match self.inner.store.open_executions_in(&gained).await {
                    Ok(open) => {
                        self.resume(open).await;
                        known = now;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, ?gained, "cannot resume the executions of gained shards; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
            self.drain_inbox(&known).await;
            let news = async {
                match &arrived {
                    Some(arrived) => arrived.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = shards.changed() => if changed.is_err() { return },
                () = news => {}
                () = tokio::time::sleep(INBOX_POLL) => {}
            }
        }
    }

    /// Applies the signals waiting in the inboxes of `shards` (whose executions run here),
    /// deleting each once applied; one the store fails to apply stays for the next round.
    async fn drain_inbox(&self, shards: &HeldShards) {
        if shards.is_empty() {
            return;
        }
        // Tests hold the inbox back here (its latency).
        match inbox_hold() {
            Some(None) => return,
            Some(Some(ms)) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            None => {}
        }
        let numbers: Vec<u32> = shards.keys().copied().collect();
        let waiting = match self.inner.store.inbox(&numbers, INBOX_BATCH).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the inbox");
                return;
            }
        };
        self.apply_stored(waiting).await;
    }

    /// Applies the signals waiting in the inbox for `arn`, which runs here.
    async fn drain_inbox_of(&self, arn: &str) {
        match self.inner.store.signals_for(arn).await {
            Ok(waiting) => self.apply_stored(waiting).await,
            Err(e) => tracing::warn!(%arn, error = %e, "cannot read the inbox"),
        }
    }

    /// Applies signals read from the inbox, then deletes those applied; one the store fails
    /// to apply stays for the next round. Each execution's signals are applied in their order,
    /// and the executions side by side, so that their commits share transactions.
    async fn apply_stored(&self, rows: Vec<store::InboxSignal>) {
        let mut by_execution: HashMap<String, Vec<store::InboxSignal>> = HashMap::new();
        for row in rows {
            by_execution
                .entry(row.execution_arn.clone())
                .or_default()
                .push(row);
        }
        let mut applying = tokio::task::JoinSet::new();
        for (arn, rows) in by_execution {
            let runner = self.clone();
            applying.spawn(async move { runner.apply_stored_of(&arn, rows).await });
        }
        let mut done = Vec::new();
        while let Some(applied) = applying.join_next().await {
            done.extend(applied.unwrap_or_default());
        }
        if done.is_empty() {
            return;
        }
        if let Err(e) = self.inner.store.delete_signals(&done).await {
            tracing::warn!(error = %e, "applied inbox signals not deleted; they will be applied again");
        }
    }

    /// Applies one execution's signals of the inbox in their order; consecutive task signals
    /// go in one transition. Returns the ids of those applied (or unreadable).
    async fn apply_stored_of(&self, arn: &str, rows: Vec<store::InboxSignal>) -> Vec<u64> {
        let mut done = Vec::new();
        let mut batch = Vec::new();
        for row in rows {
            let forwarded = match serde_json::from_str::<crate::inbox::Forwarded>(&row.body) {
                Ok(forwarded) => forwarded,
                Err(e) => {
                    tracing::error!(%arn, error = %e, "unreadable inbox signal dropped");
                    done.push(row.id);
                    continue;
                }
            };
            let applied = match forwarded {
                crate::inbox::Forwarded::ChildEnded { child_arn, task_id } => {
                    self.apply_signals(arn, std::mem::take(&mut batch), &mut done)
                        .await;
                    self.child_ended_here(arn, &child_arn, task_id).await
                }
                forwarded => match forwarded.into_signal() {
                    Some(signal) => {
                        batch.push((row.id, signal));
                        continue;
                    }
                    None => {
                        self.apply_signals(arn, std::mem::take(&mut batch), &mut done)
                            .await;
                        self.reopen_here(arn).await
                    }
                },
            };
            match applied {
                Ok(()) => done.push(row.id),
                Err(e) => tracing::warn!(%arn, error = %e, "inbox signal not applied; will retry"),
            }
        }
        self.apply_signals(arn, batch, &mut done).await;
        done
    }

    /// Applies `signals` (with their inbox ids) to `arn` in one transition; adds the ids of
    /// those applied to `done`.
    async fn apply_signals(&self, arn: &str, signals: Vec<(u64, Signal)>, done: &mut Vec<u64>) {
        if signals.is_empty() {
            return;
        }
        let (ids, signals): (Vec<u64>, Vec<(Signal, Option<u64>)>) =
            signals.into_iter().map(|(id, s)| (id, (s, None))).unzip();
        let Some(answers) = self.enqueue(arn, signals) else {
            done.extend(ids); // not running here: the signals change nothing
            return;
        };
        for (id, answer) in ids.into_iter().zip(answers) {
            match answer
                .await
                .unwrap_or_else(|_| Err(lost("the signal was dropped")))
            {
                Ok(_) => done.push(id),
                Err(e) => tracing::warn!(%arn, error = %e, "inbox signal not applied; will retry"),
            }
        }
    }

    /// Stops running the (durable) executions of `shards`, each after the step it is in.
    async fn drop_shards(&self, shards: &[u32]) {
        let all: Vec<(String, LiveRef)> = crate::lock::lock(&self.inner.live)
            .iter()
            .map(|(arn, live)| (arn.clone(), live.clone()))
            .collect();
        let mut dropped = 0;
        for (arn, live) in all {
            let live = live.lock().await;
            if live.durable && live.record.shard.is_some_and(|s| shards.contains(&s)) {
                self.forget(&arn);
                dropped += 1;
            }
        }
        tracing::info!(
            ?shards,
            executions = dropped,
            "stopped running the executions of lost shards"
        );
    }

    /// Whether this node runs the executions of `shard` (every one, on a store not split in
    /// shards).
    pub fn runs_shard(&self, shard: Option<u32>) -> bool {
        match (&self.inner.shards, shard) {
            (Some(held), Some(shard)) => held.borrow().contains_key(&shard),
            _ => true,
        }
    }

    /// Asks the node that holds the shard of `arn`, whose redrive this node committed, to
    /// re-open it (through its inbox).
    pub async fn redriven_elsewhere(&self, arn: &str) -> Result<()> {
        let body = serde_json::to_string(&crate::inbox::Forwarded::Reopen)
            .map_err(|e| lost(&e.to_string()))?;
        self.inner.store.send_signal(arn, body).await?;
        Ok(())
    }

    /// Tells the node that runs `parent` (and so its Map Run) that its child `child_arn`
    /// ended, through the parent's inbox, when `parent` does not run here. One that runs
    /// here but has no Map Run live yet reads the child's end from the store as it resumes it.
    pub async fn child_ended_elsewhere(
        &self,
        parent: &str,
        child_arn: &str,
        task_id: u64,
    ) -> Result<()> {
        if self.inner.shards.is_none() || self.get(parent).is_some() {
            return Ok(());
        }
        // The child's end is committed; the node running its Map Run does not know yet.
        fail::fail_point!("child-end-before-notice", |_| std::process::abort());
        let ended = crate::inbox::Forwarded::ChildEnded {
            child_arn: child_arn.to_owned(),
            task_id,
        };
        let body = serde_json::to_string(&ended).map_err(|e| lost(&e.to_string()))?;
        self.inner.store.send_signal(parent, body).await?;
        Ok(())
    }

    /// Hands the end of a Map Run's child that ran on another node to the Map Run (the
    /// engine's, through the outbox), as its own node would have: read from the store, so a
    /// message applied twice, or late, tells what the child is now.
    async fn child_ended_here(&self, parent: &str, child_arn: &str, task_id: u64) -> Result<()> {
        let Some(record) = self.inner.store.get_execution(child_arn).await? else {
            return Ok(());
        };
        if matches!(
            record.status,
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        ) {
            return Ok(()); // redriven since: its next end is told in turn
        }
        let parent = ParentLink {
            execution_arn: parent.to_owned(),
            task_id,
            json_payloads: false,
        };
        self.emit(Outbox::Finished {
            record: Box::new(record),
            parent,
        })
        .await;
        Ok(())
    }

    /// Whether the store is split in shards among several active nodes.
    pub fn sharded(&self) -> bool {
        self.inner.shards.is_some()
    }

    /// Whether this node holds every shard (or the store is not split in shards): then every
    /// offered activity task is one of its own executions'.
    pub fn holds_every_shard(&self) -> bool {
        match &self.inner.shards {
            Some(held) => held.borrow().len() == store::SHARDS as usize,
            None => true,
        }
    }

    /// The shard of a Map Run's Standard child `index`: the children are spread over every
    /// shard, in turn from one the Map Run's ARN picks; `None` when the store is not split in
    /// shards.
    pub fn spread(&self, map_run_arn: &str, index: u64) -> Option<u32> {
        use std::hash::{Hash, Hasher};
        self.inner.shards.as_ref()?;
        let mut hasher = std::hash::DefaultHasher::new();
        map_run_arn.hash(&mut hasher);
        let shards = u64::from(store::SHARDS);
        Some(((hasher.finish() % shards + index % shards) % shards) as u32)
    }

    /// Creates an execution on a shard another node holds (a Map Run's child placed there):
    /// commits its row, running but not started (no events), and asks the shard's owner,
    /// through its inbox, to start it. Should no node hear of it, the next to gain the shard
    /// starts it ([`Runner::resume`]).
    pub async fn create_elsewhere(
        &self,
        mut record: ExecutionRecord,
        checkpoint: Checkpoint,
    ) -> Result<ExecutionRecord> {
        let lanes;
        (record.runtime, lanes) = checkpoint.store(Lanes::All);
        record.version = 1;
        let write = Write::CreateExecution {
            execution: record.clone(),
            events: Vec::new(),
            lanes,
            offers: Vec::new(),
        };
        let mut results = self.inner.store.commit(vec![write]).await?;
        results.pop().unwrap_or(Ok(()))?;
        self.redriven_elsewhere(&record.arn).await?;
        Ok(record)
    }

    /// Starts an execution another node created on a shard this node runs
    /// ([`Runner::create_elsewhere`]): its `Start`, committed as a transition of the stored row.
    async fn start_created(
        &self,
        def: Arc<Definition>,
        record: ExecutionRecord,
        checkpoint: Checkpoint,
    ) -> Result<()> {
        let runner = self.clone();
        self.on_engine(async move {
            let mut live = Live::new(def, checkpoint, record, true);
            let advance = runner.step(&mut live, Signal::Start);
            runner.persist(&mut live, &advance).await?;
            runner.go_live(live, &advance).await;
            Ok(())
        })
        .await
    }

    /// Resumes an execution of a shard this node runs that another node redrove (its
    /// redrive committed, not applied), unless it runs already.
    async fn reopen_here(&self, arn: &str) -> Result<()> {
        if self.get(arn).is_some() {
            return Ok(());
        }
        let record = self.inner.store.get_execution(arn).await?;
        if let Some(record) = record.filter(|r| r.status == ExecutionStatus::Running) {
            self.resume(vec![record]).await;
        }
        Ok(())
    }

    /// Resumes these running executions (read from the store).
    async fn resume(&self, open: Vec<ExecutionRecord>) {
        let count = open.len();
        for record in open {
            if self.get(&record.arn).is_some() {
                continue; // running here already
            }
            let loaded = match self.inner.definitions.get(&record.definition) {
                Ok(def) => Checkpoint::load(&*self.inner.store, &record)
                    .await
                    .map(|c| (def, c)),
                Err(e) => Err(e),
            };
            let (def, (checkpoint, inline)) = match loaded {
                Ok(l) => l,
                Err(e @ crate::Error::Store(store::Error::Backend(_))) => {
                    // The store failed, not the execution: it stays for the next start.
                    tracing::error!(arn = %record.arn, error = %e, "cannot resume execution");
                    continue;
                }
                Err(e) => {
                    tracing::error!(arn = %record.arn, error = %e, "cannot resume execution");
                    self.fail_unloadable(record).await;
                    continue;
                }
            };
            if record.history_length == 0 {
                // Created by another node on this node's shard (a Map Run's child), not started.
                if let Err(e) = self.start_created(def, record, checkpoint).await {
                    tracing::error!(error = %e, "cannot start an execution placed here");
                }
                continue;
            }
            if checkpoint.runtime.status != Status::Running {
                // A redrive was committed and the crash came before it was applied.
                let checkpoint = checkpoint.redriven(&record);
                if let Err(e) = self.reopen(def, record, checkpoint, true).await {
                    tracing::error!(error = %e, "cannot re-open a redriven execution");
                }
                continue;
            }
            let arn = record.arn.clone();
            let wake_at = record.wake_at;
            // Tasks are at-least-once: perform again what was not known to be performed. An
            // activity a worker already took stays with that worker.
            for task in checkpoint.runtime.pending_tasks() {
                let Some(dispatch) = task.dispatch.clone() else {
                    continue;
                };
                let taken = task.phase == TaskPhase::Started
                    && matches!(dispatch.resource, asl::task::Resource::Activity { .. });
                if !taken {
                    self.emit(Outbox::Dispatch {
                        execution_arn: arn.clone(),
                        dispatch,
                        offered: false,
                    })
                    .await;
                }
            }
            let mut live = Live::new(def, checkpoint, record, true);
            live.store_all_lanes = inline;
            self.register(&arn, live);
            match wake_at {
                Some(at) => self.schedule(at, arn),
                None => self.ready(arn),
            }
        }
        if count > 0 {
            tracing::info!(count, "resumed running executions");
        }
    }

    /// Ends, as failed with `States.Runtime`, an open execution whose stored state cannot be
    /// read back, so that it does not stay `RUNNING` for good with nothing to stop. A parent
    /// waiting on it is not told: the link to the parent is in the unreadable checkpoint.
    async fn fail_unloadable(&self, mut record: ExecutionRecord) {
        let now = self.inner.clock.now_millis();
        let failure = asl::history::ErrorCause::new(
            asl::error::names::RUNTIME,
            "The execution's stored state could not be read back.",
        );
        let event = HistoryEvent {
            id: record.history_length + 1,
            previous_event_id: record.history_length,
            timestamp: now,
            details: asl::history::EventDetails::ExecutionFailed(failure.clone()),
        };
        record.status = ExecutionStatus::Failed;
        record.stop_date = Some(now);
        record.wake_at = None;
        (record.error, record.cause) = (failure.error, failure.cause);
        record.history_length = event.id;
        record.version += 1;
        let write = Write::Record {
            execution: record.clone(),
            events: crate::stored_event::rows(&[event]),
        };
        let committed = self.inner.store.commit(vec![write]).await;
        if let Err(e) = committed.and_then(|mut r| r.pop().unwrap_or(Ok(()))) {
            tracing::error!(arn = %record.arn, error = %e, "cannot fail an unreadable execution");
        }
    }

    /// Runs `work`, which evaluates states, on the runner's runtime. State evaluation is CPU
    /// work that can take seconds (a JSONata expression runs up to its time limit): the
    /// server gives the API a runtime of its own, so that requests are answered meanwhile.
    async fn on_engine<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        // With traces on, the work keeps the caller's trace context (the API request's span
        // is the parent of the run it starts).
        let rt = &self.inner.rt;
        let handle = match self.inner.spans {
            Some(_) => rt.spawn(work.with_context(opentelemetry::Context::current())),
            None => rt.spawn(work),
        };
        handle
            .await
            .unwrap_or_else(|e| Err(lost(&format!("the evaluation ended early: {e}"))))
    }

    /// Starts an execution: runs it to its first wait and commits that as its creation.
    /// `Err(store::Error::AlreadyExists)` when the ARN is taken.
    pub async fn start(
        &self,
        def: Arc<Definition>,
        record: ExecutionRecord,
        checkpoint: Checkpoint,
        durable: bool,
        waiter: Option<oneshot::Sender<ExecutionRecord>>,
    ) -> Result<ExecutionRecord> {
        let runner = self.clone();
        self.on_engine(async move {
            let mut live = Live::new(def, checkpoint, record, durable);
            live.waiters.extend(waiter);
            let advance = runner.step(&mut live, Signal::Start);
            // (Should another start of this name be under way, one of the commits fails.)
            let _starting = durable.then(|| Starting::claim(&runner, &live.record.arn));
            if durable {
                fail::fail_point!("commit-fails", |_| Err(lost("the commit-fails failpoint")));
                let events = crate::stored_event::rows(&advance.events);
                let offers = runner.offers(&live, &advance);
                let offered = offers.iter().map(|o| o.task_id).collect();
                let write = Write::CreateExecution {
                    execution: live.record.clone(),
                    events,
                    lanes: std::mem::take(&mut live.stored.1),
                    offers,
                };
                let store = &*runner.inner.store;
                let mut results = store.commit(vec![write]).await?;
                results.pop().unwrap_or(Ok(()))?;
                live.offered = offered;
                // Committed, but the answer lost on the way (a connection cut during COMMIT).
                fail::fail_point!("start-answer-lost", |_| Err(lost(
                    "the start-answer-lost failpoint"
                )));
                #[cfg(debug_assertions)]
                crate::checkpoint::verify(store, &live.record, &live.checkpoint).await;
            }
            Ok(runner.go_live(live, &advance).await)
        })
        .await
    }

    /// Takes up an execution that a start found already stored under its name: its start was
    /// committed but answered with an error (a connection cut during `COMMIT`), and its
    /// starter tried again under the same name. Running and run by no one, it runs here (one
    /// another node runs, or one being started or resumed here, is left alone); already ended
    /// (a child that ended in its first step), its `parent` is told, as its start would have.
    pub async fn adopt(&self, record: ExecutionRecord, parent: Option<ParentLink>) {
        if self.get(&record.arn).is_some() {
            return;
        }
        match (record.status, parent) {
            (ExecutionStatus::Running, _) => {
                if !self.runs_shard(record.shard) {
                    return;
                }
                if let Some(_adopting) = Starting::claim(self, &record.arn) {
                    tracing::warn!(arn = %record.arn, "execution started before without an answer; running it");
                    self.resume(vec![record]).await;
                }
            }
            (_, Some(parent)) => {
                tracing::warn!(arn = %record.arn, "child ended before its start was answered; telling its parent");
                let record = Box::new(record);
                self.emit(Outbox::Finished { record, parent }).await;
            }
            (_, None) => {}
        }
    }

    /// Re-opens a closed execution (`RedriveExecution`) and commits its `ExecutionRedriven`
    /// transition (`recorded`: that event is already stored). The record already carries
    /// the new redrive count and date.
    pub async fn reopen(
        &self,
        def: Arc<Definition>,
        record: ExecutionRecord,
        checkpoint: Checkpoint,
        recorded: bool,
    ) -> Result<ExecutionRecord> {
        let runner = self.clone();
        self.on_engine(async move {
            let mut live = Live::new(def, checkpoint, record, true);
            let advance = runner.redrive(&mut live, recorded).await?;
            Ok(runner.go_live(live, &advance).await)
        })
        .await
    }

    /// Applies and commits `Redrive` to a re-opened execution.
    async fn redrive(&self, live: &mut Live, recorded: bool) -> Result<Advance> {
        // The ExecutionRedriven event carries the same time as the answered redriveDate.
        let now = live
            .record
            .redrive_date
            .unwrap_or_else(|| self.inner.clock.now_millis());
        let signal = Signal::Redrive {
            redrive_count: live.record.redrive_count,
            recorded,
        };
        let advance = self.step_at(live, signal, now);
        self.persist(live, &advance).await?;
        Ok(advance)
    }

    /// Re-opens, in the background, an execution whose redrive is committed (its record
    /// `RUNNING` with the new redrive count, its checkpoint still closed): the checkpoint is
    /// parsed and `Redrive` applied after RedriveExecution has answered, so the answer does
    /// not wait for work that grows with the execution. Until then the execution is
    /// registered and locked: signals (StopExecution, ...) wait for the re-opening.
    /// After a crash in between, [`Runner::recover`] re-opens it.
    pub async fn reopen_detached(&self, def: Arc<Definition>, record: ExecutionRecord) {
        let arn = record.arn.clone();
        let placeholder = Live::new(def, Checkpoint::placeholder(), record, true);
        let slot = Arc::new(Mutex::new(placeholder));
        let mut guard = slot.clone().lock_owned().await;
        crate::lock::lock(&self.inner.live).insert(arn.clone(), slot);
        let runner = self.clone();
        self.inner.rt.spawn(async move {
            let opened = async {
                let store = &*runner.inner.store;
                guard.checkpoint = Checkpoint::for_redrive(store, &guard.record).await?;
                runner.redrive(&mut guard, true).await
            };
            match opened.await {
                Ok(advance) => runner.after_commit(&arn, &mut guard, &advance).await,
                Err(e) => {
                    // The committed record stays RUNNING: the next start re-opens it.
                    tracing::error!(%arn, error = %e, "redriven execution not re-opened");
                    runner.forget(&arn);
                }
            }
        });
    }

    /// The parsed definition for `text`, shared by every execution of that revision.
    pub fn definition(&self, text: &str) -> Result<Arc<Definition>> {
        self.inner.definitions.get(text)
    }

    /// How many executions are running on this node.
    pub fn open_count(&self) -> usize {
        crate::lock::lock(&self.inner.live).len()
    }

    /// Applies a signal (stop, task outcome, heartbeat, ...) to a running execution and
    /// commits the transition. Signals that arrive while the execution is busy (committing a
    /// transition) wait in its inbox, and the next caller to hold the execution applies them
    /// all in one transition: one commit for many task ends of one execution (a Map of tasks),
    /// where one commit each would make them wait for each other's fsync.
    /// An execution that does not run here but on another node (on a store split in shards)
    /// gets the signal through its inbox.
    /// On a store shared by several active nodes, an answer or heartbeat of an activity task
    /// not seen to start first applies the signals waiting in the store's inbox for the
    /// execution: a worker that took the task through another node may answer here before
    /// its `TaskStarted` came through the inbox.
    pub async fn signal(&self, arn: &str, signal: Signal) -> Result<Signalled> {
        match self.get(arn) {
            Some(live) => {
                if self.inner.shards.is_some() && unstarted_activity(&live, &signal).await {
                    self.drain_inbox_of(arn).await;
                }
                self.signal_here(arn, signal).await
            }
            None => self.forward(arn, &signal).await,
        }
    }

    /// [`Runner::signal`] for a signal the engine sends itself (a task's outcome, a child's
    /// end, a Map Run's start or end), which no client would send again: sent again while its
    /// commit fails ([`Runner::while_store_fails`]), until it is applied or answered (a task
    /// that already ended is [`Signalled::Stale`]), or this node no longer runs the execution
    /// (fenced: the new owner performs the task again).
    pub async fn signal_until_recorded(&self, arn: &str, signal: Signal) -> Result<Signalled> {
        let what = "signal not recorded";
        self.while_store_fails(what, || self.signal(arn, signal.clone()))
            .await
    }

    /// Runs `attempt` again while it fails as it would with the database away for a moment (a
    /// storage failure, a conflicting write), backing off from 50 ms to [`RETRY_MILLIS`],
    /// until it succeeds, fails otherwise, or this node stops: for work the engine does of its
    /// own accord, which no client would ask for again.
    pub async fn while_store_fails<T, F>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let mut delay = std::time::Duration::from_millis(50);
        loop {
            let failed = match attempt().await {
                Err(e) if e.is_momentary() => e,
                done => return done,
            };
            if *self.inner.closing.borrow() {
                return Err(failed);
            }
            tracing::warn!(error = %failed, "{what}; trying again");
            tokio::time::sleep(delay).await;
            let most = std::time::Duration::from_millis(RETRY_MILLIS as u64);
            delay = (delay * 2).min(most);
        }
    }

    /// The inbox signal that tells the node running `arn` that a worker here took its task
    /// `task_id` ([`store::Store::claim_activity_task`]); `None` when `arn` runs here.
    pub fn started_elsewhere(
        &self,
        arn: &str,
        task_id: u64,
        worker_name: Option<String>,
    ) -> Option<String> {
        if self.get(arn).is_some() {
            return None;
        }
        let started = crate::inbox::Forwarded::TaskStarted {
            task_id,
            worker_name,
        };
        serde_json::to_string(&started).ok()
    }

    /// Writes a signal for an execution this node does not run to its shard's inbox. A task
    /// answer or heartbeat for an attempt the stored checkpoint no longer waits for is
    /// [`Signalled::Stale`] here, as the owner would answer it.
    async fn forward(&self, arn: &str, signal: &Signal) -> Result<Signalled> {
        let forwarded = match (&self.inner.shards, crate::inbox::Forwarded::of(signal)) {
            (Some(_), Some(f)) => f,
            _ => return Ok(Signalled::NotRunning),
        };
        if let Signal::TaskFinished { task_id, .. } | Signal::TaskHeartbeat { task_id } = signal {
            if self.stored_task_open(arn, *task_id).await? == Some(false) {
                return Ok(Signalled::Stale);
            }
        }
        let body = serde_json::to_string(&forwarded).map_err(|e| lost(&e.to_string()))?;
        match self.inner.store.send_signal(arn, body).await? {
            true => Ok(Signalled::Forwarded),
            false => Ok(Signalled::NotRunning),
        }
    }

    /// Whether the stored checkpoint of the running execution `arn` waits for task attempt
    /// `task_id`. Memory never runs ahead of the store and a task is dispatched only once
    /// its attempt is committed, so an attempt that is not there has ended (or never was).
    /// `None` when the execution row alone cannot tell (the attempt may be in a lane of a large
    /// Map or Parallel, stored in a row of its own): reading every lane for each answer would
    /// make a Map's answers cost as many rows as it has lanes, so the owner decides.
    async fn stored_task_open(&self, arn: &str, task_id: u64) -> Result<Option<bool>> {
        let Some(record) = self.inner.store.get_execution(arn).await? else {
            return Ok(Some(false));
        };
        if record.status != ExecutionStatus::Running {
            return Ok(Some(false));
        }
        crate::checkpoint::waits_for_task(&record, task_id)
    }

    /// [`Runner::signal`] for an execution running on this node only.
    async fn signal_here(&self, arn: &str, signal: Signal) -> Result<Signalled> {
        self.signal_taking(arn, signal, None).await
    }

    /// Records that a worker polling this node took the activity task `task_id` of `arn`,
    /// which runs here and offered it on the shared store: the commit of its `TaskStarted`
    /// also takes the offered row ([`store::Write::TakeTask`]), so a claim costs no
    /// statement of its own. Fails with [`store::Error::Taken`] when a poll on another node
    /// took it first; [`Signalled::NotRunning`] when `arn` does not run here.
    pub async fn take_offered(
        &self,
        arn: &str,
        task_id: u64,
        worker_name: Option<String>,
    ) -> Result<Signalled> {
        let started = Signal::TaskStarted {
            task_id,
            worker_name,
        };
        self.signal_taking(arn, started, Some(task_id)).await
    }

    /// Queues `signal` for `arn` (taking the offered task `takes` in its commit, if any) and
    /// waits for its answer.
    async fn signal_taking(
        &self,
        arn: &str,
        signal: Signal,
        takes: Option<u64>,
    ) -> Result<Signalled> {
        let queued = vec![(signal, takes)];
        let Some(answer) = self.enqueue(arn, queued).and_then(|mut a| a.pop()) else {
            return Ok(Signalled::NotRunning);
        };
        answer
            .await
            .unwrap_or_else(|_| Err(lost("the signal was dropped")))
    }

    /// The token and input (JSON text) of activity task `task_id` of `arn`, while `arn` runs
    /// here and waits for a worker to take it (not started yet).
    pub async fn activity_task(&self, arn: &str, task_id: u64) -> Option<(String, String)> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        let pending = live.checkpoint.runtime.pending_tasks();
        let task = pending
            .iter()
            .find(|t| t.id == task_id && t.phase == TaskPhase::Scheduled)?;
        let dispatch = task.dispatch.as_ref()?;
        Some((dispatch.token.clone(), dispatch.input.to_string()))
    }

    /// Queues `signals` for `arn`, which runs on this node, to be applied in their order in
    /// one transition (with any queued before); their answers, or `None` when `arn` does not
    /// run here.
    fn enqueue(
        &self,
        arn: &str,
        signals: Vec<(Signal, Option<u64>)>,
    ) -> Option<Vec<oneshot::Receiver<Result<Signalled>>>> {
        let live = self.get(arn)?;
        let mut answers = Vec::with_capacity(signals.len());
        {
            let mut inbox = crate::lock::lock(&self.inner.inbox);
            let queued = inbox.entry(arn.to_owned()).or_default();
            for (signal, takes) in signals {
                let (reply, answer) = oneshot::channel();
                queued.push(Queued {
                    signal,
                    takes,
                    reply,
                });
                answers.push(answer);
            }
        }
        // Applied on a task of its own, so a caller that goes away (a client that hangs up)
        // cannot leave its signal in the inbox.
        let (runner, arn) = (self.clone(), arn.to_owned());
        self.inner.rt.spawn(async move {
            let mut live = live.lock().await;
            runner.apply_inbox(&arn, &mut live).await;
        });
        Some(answers)
    }

    /// Applies the signals waiting for an execution, in their order, and commits them as one
    /// transition (one that takes an offered task as one of its own); then answers each
    /// caller.
    async fn apply_inbox(&self, arn: &str, live: &mut Live) {
        let mut pending = crate::lock::lock(&self.inner.inbox)
            .remove(arn)
            .unwrap_or_default();
        while !pending.is_empty() {
            let alone = pending.iter().position(|q| q.takes.is_some());
            let rest = pending.split_off(match alone {
                Some(0) => 1,
                Some(at) => at,
                None => pending.len(),
            });
            self.apply_together(arn, live, pending).await;
            pending = rest;
        }
    }

    /// Applies `pending` signals in their order and commits them as one transition.
    async fn apply_together(&self, arn: &str, live: &mut Live, pending: Vec<Queued>) {
        if let Err(e) = self.catch_up(live).await {
            let message = e.to_string();
            for queued in pending {
                let _ = queued.reply.send(Err(lost(&message)));
            }
            return;
        }
        let now = self.inner.clock.now_millis();
        let takes = pending.iter().find_map(|q| q.takes);
        let (signals, replies): (Vec<Signal>, Vec<SignalReply>) =
            pending.into_iter().map(|q| (q.signal, q.reply)).unzip();
        let (advance, received) = self.interpret_batch(live, signals, now);
        let mut applied = Vec::new();
        for (reply, received) in replies.into_iter().zip(received) {
            match received {
                Received::Applied => applied.push(reply),
                // A signal for a task attempt that is no longer current changes nothing.
                Received::Stale => drop(reply.send(Ok(Signalled::Stale))),
                Received::NotRunning => drop(reply.send(Ok(Signalled::NotRunning))),
            }
        }
        if applied.is_empty() {
            return;
        }
        self.stage(live, &advance);
        match self.persist_taking(live, &advance, takes).await {
            Ok(()) => {
                self.after_commit(arn, live, &advance).await;
                let record = Arc::new(live.record.clone());
                for reply in applied {
                    let _ = reply.send(Ok(Signalled::Applied(record.clone())));
                }
            }
            Err(e) => {
                self.roll_back(live).await;
                // The first caller gets the error itself, the others its message.
                let message = e.to_string();
                let mut first = Some(e);
                for reply in applied {
                    let error = first.take().unwrap_or_else(|| lost(&message));
                    let _ = reply.send(Err(error));
                }
            }
        }
    }

    /// Running executions started by `parent`'s task `task_id` (`.sync` children).
    pub async fn children_of(&self, parent: &str, task_id: u64) -> Vec<String> {
        let all: Vec<(String, LiveRef)> = crate::lock::lock(&self.inner.live)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut children = Vec::new();
        for (arn, live) in all {
            let live = live.lock().await;
            let link = live.checkpoint.parent.as_ref();
            if link.is_some_and(|p| p.execution_arn == parent && p.task_id == task_id) {
                children.push(arn);
            }
        }
        children
    }

    /// Whether a running execution here still waits for task `task_id`.
    pub async fn awaits_task(&self, arn: &str, task_id: u64) -> bool {
        let Some(live) = self.get(arn) else {
            return false;
        };
        let live = live.lock().await;
        let pending = live.checkpoint.runtime.pending_tasks();
        pending.iter().any(|t| t.id == task_id)
    }

    /// The token stored for attempt `task_id` of a running execution, while the execution
    /// waits on it.
    pub async fn issued_token(&self, arn: &str, task_id: u64) -> Option<String> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        let pending = live.checkpoint.runtime.pending_tasks();
        let task = pending.iter().find(|t| t.id == task_id)?;
        task.dispatch.as_ref().map(|d| d.token.clone())
    }

    /// The MockConfigFile test case a running execution uses, if any.
    pub async fn test_case(&self, arn: &str) -> Option<String> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        live.checkpoint.test_case.clone()
    }

    /// The role of a running execution.
    pub async fn role_arn(&self, arn: &str) -> Option<String> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        Some(live.record.role_arn.clone())
    }

    /// The in-memory record of a running execution (Express executions live only here).
    pub async fn running_record(&self, arn: &str) -> Option<ExecutionRecord> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        Some(live.record.clone())
    }

    /// A receiver told the final record when `arn` ends, or `None` when it is not running
    /// here (or has ended already).
    pub async fn end_of(&self, arn: &str) -> Option<oneshot::Receiver<ExecutionRecord>> {
        let live = self.get(arn)?;
        let mut live = live.lock().await;
        if live.record.status != ExecutionStatus::Running {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        live.waiters.push(tx);
        Some(rx)
    }

    /// Advances an execution whose time has come or that yielded.
    async fn wake(&self, arn: &str) {
        let Some(live) = self.get(arn) else { return };
        let mut live = live.lock().await;
        if let Err(e) = self.catch_up(&mut live).await {
            tracing::warn!(%arn, error = %e, "execution not read back; will retry");
            self.schedule(self.inner.clock.now_millis() + RETRY_MILLIS, arn.to_owned());
            return;
        }
        if live.checkpoint.runtime.status != Status::Running {
            return;
        }
        if live
            .record
            .wake_at
            .is_some_and(|at| at > self.inner.clock.now_millis())
        {
            // Woken early (a stale timer entry); the right one is still scheduled.
            return;
        }
        let advance = self.step(&mut live, Signal::Wake);
        if let Err(e) = self.persist(&mut live, &advance).await {
            tracing::warn!(%arn, error = %e, "transition not committed; will retry");
            self.roll_back(&mut live).await;
            self.schedule(self.inner.clock.now_millis() + RETRY_MILLIS, arn.to_owned());
            return;
        }
        self.after_commit(arn, &mut live, &advance).await;
    }

    /// Undoes a step whose commit failed: memory is read back from the store (rather than
    /// kept as a copy made before every step, which would cost as much as the execution's
    /// size on every transition).
    async fn roll_back(&self, live: &mut Live) {
        live.behind = true;
        if let Err(e) = self.catch_up(live).await {
            tracing::warn!(arn = %live.record.arn, error = %e, "execution not read back");
        }
    }

    /// Brings an execution whose commit failed back to what the store has.
    async fn catch_up(&self, live: &mut Live) -> Result<()> {
        if !live.behind {
            return Ok(());
        }
        let store = &*self.inner.store;
        let record = store
            .get_execution(&live.record.arn)
            .await?
            .ok_or(crate::Error::Store(store::Error::NotFound))?;
        let (checkpoint, inline) = Checkpoint::load(store, &record).await?;
        (live.record, live.checkpoint) = (record, checkpoint);
        live.store_all_lanes = inline;
        live.behind = false;
        Ok(())
    }

    /// Runs the interpreter and brings the record up to date with the new runtime.
    fn step(&self, live: &mut Live, signal: Signal) -> Advance {
        let now = self.inner.clock.now_millis();
        self.step_at(live, signal, now)
    }

    fn step_at(&self, live: &mut Live, signal: Signal, now: i64) -> Advance {
        let advance = self.interpret(live, signal, now);
        if !(advance.stale && advance.events.is_empty()) {
            self.stage(live, &advance);
        }
        advance
    }

    /// Runs the interpreter and brings the record's status, times and outcome up to date. A
    /// signal for a task attempt that is no longer current changes nothing.
    fn interpret(&self, live: &mut Live, signal: Signal, now: i64) -> Advance {
        let mut entropy = asl::Entropy::new(rand::random());
        let limits = self.limits_for(live);
        let Checkpoint { info, runtime, .. } = &mut live.checkpoint;
        let advance =
            interpreter::advance(&live.def, info, runtime, signal, now, &mut entropy, limits);
        if !(advance.stale && advance.events.is_empty()) {
            self.update_record(live, &advance, now);
        }
        advance
    }

    /// Express executions keep no history, so the history cap does not apply to them.
    fn limits_for(&self, live: &Live) -> Limits {
        match live.durable {
            true => self.inner.limits,
            false => Limits {
                max_history_events: u64::MAX,
                ..self.inner.limits
            },
        }
    }

    /// [`Runner::interpret`] for signals that arrived together: one call of the interpreter.
    fn interpret_batch(
        &self,
        live: &mut Live,
        signals: Vec<Signal>,
        now: i64,
    ) -> (Advance, Vec<Received>) {
        let mut entropy = asl::Entropy::new(rand::random());
        let limits = self.limits_for(live);
        let Checkpoint { info, runtime, .. } = &mut live.checkpoint;
        let (advance, received) = interpreter::advance_batch(
            &live.def,
            info,
            runtime,
            signals,
            now,
            &mut entropy,
            limits,
        );
        if received.contains(&Received::Applied) {
            self.update_record(live, &advance, now);
        }
        (advance, received)
    }

    /// Brings the record's status, times and outcome up to date with the runtime.
    fn update_record(&self, live: &mut Live, advance: &Advance, now: i64) {
        let rt = &live.checkpoint.runtime;
        let r = &mut live.record;
        r.status = execution_status(rt.status);
        r.wake_at = advance.wake_at;
        r.history_length = rt.last_event_id;
        if rt.status != Status::Running {
            r.stop_date = Some(now);
            r.output = rt.output.clone();
            r.error = rt.error.clone();
            r.cause = rt.cause.clone();
        }
    }

    /// Makes the record the next transition: its version, and the checkpoint as stored with
    /// the lanes `advance` touched.
    fn stage(&self, live: &mut Live, advance: &Advance) {
        live.record.version += 1;
        if live.durable {
            let lanes = match std::mem::take(&mut live.store_all_lanes) {
                true => Lanes::All,
                false => Lanes::Touched(&advance.touched),
            };
            live.stored = live.checkpoint.store(lanes);
            live.record.runtime = std::mem::take(&mut live.stored.0);
        }
    }

    async fn persist(&self, live: &mut Live, advance: &Advance) -> Result<()> {
        self.persist_taking(live, advance, None).await
    }

    /// [`Runner::persist`], also taking the offered activity task `takes`.
    async fn persist_taking(
        &self,
        live: &mut Live,
        advance: &Advance,
        takes: Option<u64>,
    ) -> Result<()> {
        if !live.durable {
            return Ok(());
        }
        let (execution, events) = (
            live.record.clone(),
            crate::stored_event::rows(&advance.events),
        );
        // Tests arm it with a probability (`commit-fails=20%return`): commits that fail as a
        // database that went away would.
        fail::fail_point!("commit-fails", |_| Err(lost("the commit-fails failpoint")));
        let lanes = std::mem::take(&mut live.stored.1);
        let offers = self.offers(live, advance);
        let offered = offers.iter().map(|o| o.task_id).collect();
        let write = match takes {
            Some(task_id) => Write::TakeTask {
                execution,
                events,
                lanes,
                task_id,
                offers,
            },
            None => Write::Transition {
                execution,
                events,
                lanes,
                offers,
            },
        };
        let mut results = self.inner.store.commit(vec![write]).await?;
        results.pop().unwrap_or(Ok(()))?;
        live.offered = offered;
        #[cfg(debug_assertions)]
        crate::checkpoint::verify(&*self.inner.store, &live.record, &live.checkpoint).await;
        Ok(())
    }

    /// The activity tasks `advance` schedules, offered in its commit on a store that shares
    /// them (so that a task is never scheduled without being offered, and its offer costs
    /// no transaction of its own). Not for an execution that runs a test case: its tasks may
    /// be answered by a mock, and are offered when performed.
    fn offers(&self, live: &Live, advance: &Advance) -> store::Offers {
        if !live.durable
            || live.checkpoint.test_case.is_some()
            || !self.inner.store.shares_activity_tasks()
        {
            return Vec::new();
        }
        let scheduled = self.inner.clock.now_millis();
        let offer = |d: &Dispatch| match &d.resource {
            asl::task::Resource::Activity { arn } => Some(store::ActivityTaskRow {
                activity_arn: arn.clone(),
                execution_arn: live.record.arn.clone(),
                task_id: d.task_id,
                token: d.token.clone(),
                input: d.input.to_string(),
                scheduled,
            }),
            _ => None,
        };
        advance.dispatches.iter().filter_map(offer).collect()
    }

    /// What follows a committed transition: side effects, scheduling, or the end.
    async fn after_commit(&self, arn: &str, live: &mut Live, advance: &Advance) {
        self.observe(&live.record, &advance.events);
        let offered = std::mem::take(&mut live.offered);
        for dispatch in &advance.dispatches {
            let dispatch = dispatch.clone();
            self.emit(Outbox::Dispatch {
                execution_arn: arn.to_owned(),
                offered: offered.contains(&dispatch.task_id),
                dispatch,
            })
            .await;
        }
        if live.checkpoint.runtime.status == Status::Running {
            if advance.yielded {
                self.ready(arn.to_owned());
            } else if let Some(at) = advance.wake_at {
                self.schedule(at, arn.to_owned());
            }
            return;
        }
        let pending: Vec<Dispatch> = live
            .checkpoint
            .runtime
            .pending_tasks()
            .into_iter()
            .filter_map(|t| t.dispatch.clone())
            .collect();
        for dispatch in pending {
            self.emit(Outbox::Cancel {
                execution_arn: arn.to_owned(),
                dispatch,
            })
            .await;
        }
        for w in live.waiters.drain(..) {
            let _ = w.send(live.record.clone());
        }
        if let Some(parent) = live.checkpoint.parent.clone() {
            self.emit(Outbox::Finished {
                record: Box::new(live.record.clone()),
                parent,
            })
            .await;
        }
        self.forget(arn);
    }

    /// Queues a side effect; waits while the outbox is full. After shutdown the item is
    /// dropped: the next start emits again what is pending.
    async fn emit(&self, item: Outbox) {
        let _ = self.inner.outbox.send(item).await;
    }

    fn get(&self, arn: &str) -> Option<LiveRef> {
        crate::lock::lock(&self.inner.live).get(arn).cloned()
    }

    /// Makes a just-committed execution visible to signals, then performs what follows the
    /// commit. It is registered first (and locked meanwhile), so a signal caused by a side
    /// effect (a worker taking its activity task) always finds it.
    async fn go_live(&self, live: Live, advance: &Advance) -> ExecutionRecord {
        let arn = live.record.arn.clone();
        let live = Arc::new(Mutex::new(live));
        let mut guard = live.lock().await;
        crate::lock::lock(&self.inner.live).insert(arn.clone(), live.clone());
        self.after_commit(&arn, &mut guard, advance).await;
        guard.record.clone()
    }

    fn register(&self, arn: &str, live: Live) {
        crate::lock::lock(&self.inner.live).insert(arn.to_owned(), Arc::new(Mutex::new(live)));
    }

    fn forget(&self, arn: &str) {
        crate::lock::lock(&self.inner.live).remove(arn);
    }

    fn ready(&self, arn: String) {
        self.inner.ready.push(arn);
    }

    /// Running executions with a timer set. The timer set keeps the entries of executions that
    /// ended or were woken otherwise until they fall due, so it is matched with the open ones.
    fn parked_count(&self) -> usize {
        let timers = crate::lock::lock(&self.inner.timers);
        let live = crate::lock::lock(&self.inner.live);
        let parked: std::collections::HashSet<&str> = timers
            .iter()
            .map(|(_, arn)| arn.as_str())
            .filter(|arn| live.contains_key(*arn))
            .collect();
        parked.len()
    }

    /// Counts and logs committed events (see [`crate::metrics`]).
    pub fn observe(&self, record: &ExecutionRecord, events: &[HistoryEvent]) {
        self.inner.task_times.observe(record, events);
        if let Some(spans) = &self.inner.spans {
            spans.observe(record, events);
        }
    }

    /// What the health gauges show.
    pub fn health(&self) -> crate::metrics::Health {
        crate::metrics::Health {
            open_executions: self.open_count(),
            parked_executions: self.parked_count(),
            ready_queue: self.inner.ready.len(),
        }
    }

    fn schedule(&self, at: i64, arn: String) {
        crate::lock::lock(&self.inner.timers).insert((at, arn));
        self.inner.timer_changed.notify_one();
    }

    async fn timer_loop(&self) {
        loop {
            let now = self.inner.clock.now_millis();
            let mut due = Vec::new();
            let next = {
                let mut timers = crate::lock::lock(&self.inner.timers);
                while timers.first().is_some_and(|first| first.0 <= now) {
                    if let Some(due_timer) = timers.pop_first() {
                        due.push(due_timer);
                    }
                }
                timers.first().map(|t| t.0)
            };
            for (at, arn) in due {
                metrics::histogram!("stepwise_timer_lag_seconds")
                    .record((now - at) as f64 / 1000.0);
                self.ready(arn);
            }
            let at = next.unwrap_or(now.saturating_add(60_000));
            tokio::select! {
                _ = self.inner.clock.sleep_until(at) => {}
                _ = self.inner.timer_changed.notified() => {}
            }
        }
    }
}

/// What the `inbox-drain` failpoint asks of a drain of the inbox: `return` skips it
/// (`Some(None)`), `return(MS)` delays it by MS milliseconds.
fn inbox_hold() -> Option<Option<u64>> {
    fail::fail_point!("inbox-drain", |ms: Option<String>| Some(
        ms.and_then(|ms| ms.parse().ok())
    ));
    None
}

/// Whether `signal` answers (or beats) an activity task of `live` that has not started.
async fn unstarted_activity(live: &LiveRef, signal: &Signal) -> bool {
    let (Signal::TaskFinished { task_id, .. } | Signal::TaskHeartbeat { task_id }) = signal else {
        return false;
    };
    let live = live.lock().await;
    let pending = live.checkpoint.runtime.pending_tasks();
    pending.iter().any(|t| {
        t.id == *task_id
            && t.phase == TaskPhase::Scheduled
            && t.dispatch
                .as_ref()
                .is_some_and(|d| matches!(d.resource, asl::task::Resource::Activity { .. }))
    })
}

/// The shards of `from` that `to` does not hold at the same epoch.
fn moved(from: &HeldShards, to: &HeldShards) -> Vec<u32> {
    from.iter()
        .filter(|(shard, epoch)| to.get(shard) != Some(epoch))
        .map(|(shard, _)| *shard)
        .collect()
}

/// Resolves once [`Runner::shutdown`] began (or the runner is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// An error for a caller whose signal could not be committed.
fn lost(message: &str) -> crate::Error {
    crate::Error::Store(store::Error::backend(message))
}

/// The stored status of an execution the interpreter says is `status`.
fn execution_status(status: Status) -> ExecutionStatus {
    match status {
        Status::Running => ExecutionStatus::Running,
        Status::Succeeded => ExecutionStatus::Succeeded,
        Status::Failed => ExecutionStatus::Failed,
        Status::TimedOut => ExecutionStatus::TimedOut,
        Status::Aborted => ExecutionStatus::Aborted,
    }
}
