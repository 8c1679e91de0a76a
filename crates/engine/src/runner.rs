//! Runs executions: a work queue of executions ready to advance, workers that advance them
//! through the interpreter and commit each transition, and a timer service for the ones
//! waiting on time.
//!
//! Invariant: an execution's in-memory [`Live`] copy changes only together with a committed
//! transition. If the commit fails, the copy is rolled back and the execution retried later,
//! so memory never runs ahead of the durable record.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};

use asl::definition::Definition;
use asl::history::HistoryEvent;
use asl::interpreter::{self, Advance, ExecutionInfo, Limits, Runtime, Signal, Status};
use serde::{Deserialize, Serialize};
use store::{ExecutionRecord, Store, StoredEvent, Write};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use crate::{Clock, Result};

/// What the engine checkpoints in an execution record's `runtime` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub info: ExecutionInfo,
    pub runtime: Runtime,
}

/// An execution the engine is running, with its parsed definition.
pub(crate) struct Live {
    pub def: Arc<Definition>,
    pub checkpoint: Checkpoint,
    pub record: ExecutionRecord,
    /// Express executions are not persisted.
    pub durable: bool,
    /// Told the final record when the execution ends (`StartSyncExecution`).
    pub waiters: Vec<oneshot::Sender<ExecutionRecord>>,
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
    ready: mpsc::UnboundedSender<String>,
    timers: SyncMutex<BTreeSet<(i64, String)>>,
    timer_changed: Notify,
}

/// How many executions advance concurrently (commits are batched across them).
const WORKERS: usize = 8;
/// How long to wait before retrying an execution whose transition failed to commit.
const RETRY_MILLIS: i64 = 1000;

impl Runner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, limits: Limits) -> Runner {
        let (tx, rx) = mpsc::unbounded_channel();
        let runner = Runner {
            inner: Arc::new(Inner {
                store,
                clock,
                limits,
                live: SyncMutex::new(HashMap::new()),
                ready: tx,
                timers: SyncMutex::new(BTreeSet::new()),
                timer_changed: Notify::new(),
            }),
        };
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            let (r, rx) = (runner.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    match next {
                        Some(arn) => r.wake(&arn).await,
                        None => break,
                    }
                }
            });
        }
        let r = runner.clone();
        tokio::spawn(async move { r.timer_loop().await });
        runner
    }

    /// Resumes every execution the store has as running (after a restart or crash).
    pub async fn recover(&self) -> Result<()> {
        let open = self.inner.store.open_executions().await?;
        let count = open.len();
        for record in open {
            let def = match crate::machines::parse_definition(&record.definition) {
                Ok(d) => Arc::new(d),
                Err(e) => {
                    tracing::error!(arn = %record.arn, error = %e, "cannot resume execution");
                    continue;
                }
            };
            let checkpoint: Checkpoint = match serde_json::from_str(&record.runtime) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(arn = %record.arn, error = %e, "corrupt checkpoint");
                    continue;
                }
            };
            let arn = record.arn.clone();
            let wake_at = record.wake_at;
            let live = Live {
                def,
                checkpoint,
                record,
                durable: true,
                waiters: Vec::new(),
            };
            self.register(&arn, live);
            match wake_at {
                Some(at) => self.schedule(at, arn),
                None => self.ready(arn),
            }
        }
        if count > 0 {
            tracing::info!(count, "resumed running executions");
        }
        Ok(())
    }

    /// Starts an execution: runs it to its first wait and commits that as its creation.
    /// `Err(store::Error::AlreadyExists)` when the ARN is taken.
    pub async fn start(
        &self,
        def: Arc<Definition>,
        record: ExecutionRecord,
        info: ExecutionInfo,
        durable: bool,
        waiter: Option<oneshot::Sender<ExecutionRecord>>,
    ) -> Result<ExecutionRecord> {
        let checkpoint = Checkpoint {
            info,
            runtime: Runtime::new(),
        };
        let mut live = Live {
            def,
            checkpoint,
            record,
            durable,
            waiters: waiter.into_iter().collect(),
        };
        let advance = self.step(&mut live, Signal::Start);
        let events = stored(&advance.events);
        if durable {
            let write = Write::CreateExecution {
                execution: live.record.clone(),
                events,
            };
            let mut results = self.inner.store.commit(vec![write]).await?;
            results.pop().unwrap_or(Ok(()))?;
        }
        let record = live.record.clone();
        let arn = record.arn.clone();
        if live.checkpoint.runtime.status == Status::Running {
            self.register(&arn, live);
            self.follow_up(&arn, &advance);
        } else {
            finish(&mut live);
        }
        Ok(record)
    }

    /// Stops a running execution. `None` when it is not running here.
    pub async fn stop(
        &self,
        arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<Option<ExecutionRecord>> {
        let Some(live) = self.get(arn) else {
            return Ok(None);
        };
        let mut live = live.lock().await;
        if live.checkpoint.runtime.status != Status::Running {
            return Ok(None);
        }
        let before = (live.checkpoint.runtime.clone(), live.record.clone());
        let advance = self.step(&mut live, Signal::Stop { error, cause });
        if let Err(e) = self.persist(&live, &advance).await {
            (live.checkpoint.runtime, live.record) = before;
            return Err(e);
        }
        let record = live.record.clone();
        finish(&mut live);
        self.forget(arn);
        Ok(Some(record))
    }

    /// The in-memory record of a running execution (Express executions live only here).
    pub async fn running_record(&self, arn: &str) -> Option<ExecutionRecord> {
        let live = self.get(arn)?;
        let live = live.lock().await;
        Some(live.record.clone())
    }

    /// Advances an execution whose time has come or that yielded.
    async fn wake(&self, arn: &str) {
        let Some(live) = self.get(arn) else { return };
        let mut live = live.lock().await;
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
        let before = (live.checkpoint.runtime.clone(), live.record.clone());
        let advance = self.step(&mut live, Signal::Wake);
        if let Err(e) = self.persist(&live, &advance).await {
            tracing::warn!(%arn, error = %e, "transition not committed; will retry");
            (live.checkpoint.runtime, live.record) = before;
            self.schedule(self.inner.clock.now_millis() + RETRY_MILLIS, arn.to_owned());
            return;
        }
        if live.checkpoint.runtime.status == Status::Running {
            self.follow_up(arn, &advance);
        } else {
            finish(&mut live);
            self.forget(arn);
        }
    }

    /// Runs the interpreter and brings the record up to date with the new runtime.
    fn step(&self, live: &mut Live, signal: Signal) -> Advance {
        let now = self.inner.clock.now_millis();
        let mut entropy = asl::Entropy::new(rand::random());
        let Checkpoint { info, runtime } = &mut live.checkpoint;
        let advance = interpreter::advance(
            &live.def,
            info,
            runtime,
            signal,
            now,
            &mut entropy,
            self.inner.limits,
        );
        let rt = &live.checkpoint.runtime;
        let r = &mut live.record;
        r.status = rt.status.as_str().to_owned();
        r.wake_at = advance.wake_at;
        r.version += 1;
        if rt.status != Status::Running {
            r.stop_date = Some(now);
            r.output = rt.output.clone();
            r.error = rt.error.clone();
            r.cause = rt.cause.clone();
        }
        r.runtime = serde_json::to_string(&live.checkpoint).unwrap_or_default();
        advance
    }

    async fn persist(&self, live: &Live, advance: &Advance) -> Result<()> {
        if !live.durable {
            return Ok(());
        }
        let write = Write::Transition {
            execution: live.record.clone(),
            events: stored(&advance.events),
        };
        let mut results = self.inner.store.commit(vec![write]).await?;
        results.pop().unwrap_or(Ok(()))?;
        Ok(())
    }

    fn follow_up(&self, arn: &str, advance: &Advance) {
        if advance.yielded {
            self.ready(arn.to_owned());
        } else if let Some(at) = advance.wake_at {
            self.schedule(at, arn.to_owned());
        }
    }

    fn get(&self, arn: &str) -> Option<LiveRef> {
        self.inner.live.lock().ok()?.get(arn).cloned()
    }

    fn register(&self, arn: &str, live: Live) {
        if let Ok(mut map) = self.inner.live.lock() {
            map.insert(arn.to_owned(), Arc::new(Mutex::new(live)));
        }
    }

    fn forget(&self, arn: &str) {
        if let Ok(mut map) = self.inner.live.lock() {
            map.remove(arn);
        }
    }

    fn ready(&self, arn: String) {
        let _ = self.inner.ready.send(arn);
    }

    fn schedule(&self, at: i64, arn: String) {
        if let Ok(mut timers) = self.inner.timers.lock() {
            timers.insert((at, arn));
        }
        self.inner.timer_changed.notify_one();
    }

    async fn timer_loop(&self) {
        loop {
            let now = self.inner.clock.now_millis();
            let mut due = Vec::new();
            let next = match self.inner.timers.lock() {
                Ok(mut timers) => {
                    while let Some(first) = timers.first() {
                        if first.0 > now {
                            break;
                        }
                        if let Some((_, arn)) = timers.pop_first() {
                            due.push(arn);
                        }
                    }
                    timers.first().map(|t| t.0)
                }
                Err(_) => return,
            };
            for arn in due {
                self.ready(arn);
            }
            let sleep = match next {
                Some(at) => std::time::Duration::from_millis((at - now).clamp(1, 60_000) as u64),
                None => std::time::Duration::from_secs(60),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.inner.timer_changed.notified() => {}
            }
        }
    }
}

fn stored(events: &[HistoryEvent]) -> Vec<StoredEvent> {
    events
        .iter()
        .map(|e| StoredEvent {
            id: e.id,
            body: serde_json::to_string(e).unwrap_or_default(),
        })
        .collect()
}

fn finish(live: &mut Live) {
    for w in live.waiters.drain(..) {
        let _ = w.send(live.record.clone());
    }
}
