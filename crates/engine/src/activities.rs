//! Activities: their records, the queues of scheduled activity tasks, `GetActivityTask` long
//! polling, and the `SendTask*` operations that complete any task by its token.
//!
//! The queues are memory only: they are rebuilt from the executions' checkpoints on restart
//! (a scheduled activity task is dispatched again), so nothing here needs to be durable. On a
//! store shared by several active nodes the tasks are rows of the store instead, which a
//! poll on any node claims ([`store::Store::claim_activity_task`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use asl::history::ErrorCause;
use asl::interpreter::{Signal, TaskOutcome};
use asl::task_token::{Checked, TaskTokenRef};
use serde_json::Value;
use store::ActivityRecord;
use tokio::sync::oneshot;

use crate::runner::Signalled;
use crate::{arn, Engine, Error, Result};

/// A scheduled activity task waiting for a worker.
#[derive(Debug, Clone)]
pub struct ActivityTask {
    pub token: String,
    pub input: String,
    pub execution_arn: String,
    /// When it was queued (epoch milliseconds).
    pub scheduled: i64,
    task_id: u64,
    /// Also offered in the store (by its scheduling's commit): a poll takes it by its key,
    /// as it takes the tasks this node offered.
    stored: bool,
}

/// Queued tasks and parked pollers, per activity ARN.
#[derive(Default)]
pub(crate) struct Queues {
    inner: Mutex<HashMap<String, Queue>>,
    /// Activities known to exist, so a `GetActivityTask` poll does not read the store.
    /// An activity leaves it when it is deleted.
    existing: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<ActivityTask>,
    pollers: VecDeque<oneshot::Sender<ActivityTask>>,
    /// On a shared store: the tasks this node offered, oldest first, which a poll here takes
    /// (or claims by their key) before it looks for the oldest of any node's (another node
    /// may have taken one meanwhile). At most [`OFFERED_HERE`].
    offered: VecDeque<Offered>,
    /// Claims made here, so that every [`SHARED_TURN`]th looks at every node's tasks first.
    claims: u64,
    /// When the oldest task of any node was scheduled, as the last shared turn that took
    /// none saw it: the next looks again only once this node's oldest is [`SHARED_AFTER`]
    /// younger (tasks offered since are younger still), so that where every node's workers
    /// keep up, shared turns cost no look at all.
    shared_seen: Option<i64>,
}

/// What [`Engine::take_here`] did with a task this node offered.
enum Took {
    /// Taken, and its start recorded.
    Started(store::ActivityTaskRow),
    /// A poll on another node took it.
    Gone,
    /// Not taken here (its execution does not run here, or no longer waits for it): to claim
    /// as any node's.
    Claim(Offered),
}

/// A task this node offered: its execution, task id and when it was scheduled.
struct Offered {
    execution_arn: String,
    task_id: u64,
    scheduled: i64,
}

impl Queue {
    /// Hands a task to the first parked poller still there; gives it back when none is.
    fn hand_over(&mut self, mut task: ActivityTask) -> std::result::Result<(), ActivityTask> {
        while let Some(poller) = self.pollers.pop_front() {
            match poller.send(task) {
                Ok(()) => return Ok(()),
                // That poller has gone away (client disconnected, or woken otherwise).
                Err(back) => task = back,
            }
        }
        Err(task)
    }
}

impl Queues {
    fn exists(&self, activity_arn: &str) -> bool {
        crate::lock::lock(&self.existing).contains(activity_arn)
    }

    fn set_exists(&self, activity_arn: &str, exists: bool) {
        {
            let mut set = crate::lock::lock(&self.existing);
            if exists {
                set.insert(activity_arn.to_owned());
            } else {
                set.remove(activity_arn);
            }
        }
    }

    /// Hands a task to a parked poller, or queues it.
    fn push(&self, activity_arn: &str, task: ActivityTask) {
        let mut map = crate::lock::lock(&self.inner);
        let queue = map.entry(activity_arn.to_owned()).or_default();
        if let Err(task) = queue.hand_over(task) {
            queue.tasks.push_back(task);
        }
    }

    /// Hands a task to a parked poller; gives it back when none is parked.
    fn hand_over(
        &self,
        activity_arn: &str,
        task: ActivityTask,
    ) -> std::result::Result<(), ActivityTask> {
        let mut map = crate::lock::lock(&self.inner);
        match map.get_mut(activity_arn) {
            Some(queue) => queue.hand_over(task),
            None => Err(task),
        }
    }

    /// Notes a task this node offered, so that a poll here claims it by its key.
    fn offered_here(&self, activity_arn: &str, task: Offered) {
        let mut map = crate::lock::lock(&self.inner);
        let queue = map.entry(activity_arn.to_owned()).or_default();
        if queue.offered.len() == OFFERED_HERE {
            // Still claimable with any node's (the oldest first).
            queue.offered.pop_front();
        }
        queue.offered.push_back(task);
    }

    /// Counts a claim here; `Some` when it is one that looks at every node's tasks first
    /// (`others`: other nodes hold shards) and the last such look leaves room for an old
    /// enough one ([`Queue::shared_seen`]), with when this node's oldest offered task was
    /// scheduled (`None`: it has none).
    fn shared_turn(&self, activity_arn: &str, others: bool) -> Option<Option<i64>> {
        let mut map = crate::lock::lock(&self.inner);
        let queue = map.get_mut(activity_arn)?;
        queue.claims += 1;
        let oldest_here = queue.offered.front().map(|oldest| oldest.scheduled);
        let seen_older = match (oldest_here, queue.shared_seen) {
            (Some(here), Some(seen)) => here - SHARED_AFTER <= seen,
            _ => false,
        };
        (others && queue.claims % SHARED_TURN == 0 && !seen_older).then_some(oldest_here)
    }

    /// Notes what a shared turn saw: when the oldest task of any node was scheduled
    /// (`None`: it took that task, or found none, so the next turn looks again).
    fn shared_seen(&self, activity_arn: &str, oldest: Option<i64>) {
        let mut map = crate::lock::lock(&self.inner);
        if let Some(queue) = map.get_mut(activity_arn) {
            queue.shared_seen = oldest;
        }
    }

    /// The oldest task this node offered and no poll here claimed yet.
    fn next_offered_here(&self, activity_arn: &str) -> Option<Offered> {
        let mut map = crate::lock::lock(&self.inner);
        map.get_mut(activity_arn)?.offered.pop_front()
    }

    /// Forgets a task this node offered that a poll here claimed as the oldest of any node's.
    fn claimed_here(&self, activity_arn: &str, task: &store::ActivityTaskRow) {
        let mut map = crate::lock::lock(&self.inner);
        if let Some(queue) = map.get_mut(activity_arn) {
            let key =
                |o: &Offered| o.task_id == task.task_id && o.execution_arn == task.execution_arn;
            if let Some(at) = queue.offered.iter().position(key) {
                queue.offered.remove(at);
            }
        }
    }

    /// The tasks queued for `activity_arn`, oldest first.
    fn queued(&self, activity_arn: &str) -> Vec<ActivityTask> {
        let map = crate::lock::lock(&self.inner);
        map.get(activity_arn)
            .map(|q| q.tasks.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes a queued task, if there is one.
    fn take(&self, activity_arn: &str) -> Option<ActivityTask> {
        let mut map = crate::lock::lock(&self.inner);
        map.get_mut(activity_arn)?.tasks.pop_front()
    }

    /// Takes a queued task, or parks a poller.
    fn take_or_park<'a>(
        &'a self,
        activity_arn: &'a str,
    ) -> std::result::Result<ActivityTask, Parked<'a>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut map = crate::lock::lock(&self.inner);
            let queue = map.entry(activity_arn.to_owned()).or_default();
            if let Some(task) = queue.tasks.pop_front() {
                return Ok(task);
            }
            queue.pollers.push_back(tx);
        }
        Err(Parked {
            queues: self,
            activity_arn,
            rx,
        })
    }
}

/// A poll parked until a task is handed to it. Dropped with a task handed to it and not yet
/// received (its long poll ended just then, or its client went away), it queues that task
/// again for the next poll: a task is lost only after its `TaskStarted` is recorded, where
/// its timeouts still end it.
struct Parked<'a> {
    queues: &'a Queues,
    activity_arn: &'a str,
    rx: oneshot::Receiver<ActivityTask>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.rx.close();
        match self.rx.try_recv() {
            Ok(task) if task.stored => self.queues.offered_here(self.activity_arn, task.offered()),
            Ok(task) => self.queues.push(self.activity_arn, task),
            Err(_) => {}
        }
    }
}

/// The most tasks a node notes as offered by it, per activity ([`Queue::offered`]).
const OFFERED_HERE: usize = 4096;
/// One claim in this many takes the oldest task of any node before this node's own, if it
/// has waited [`SHARED_AFTER`] longer than this node's oldest, so that the tasks of a node
/// that no worker polls are taken too.
const SHARED_TURN: u64 = 4;
/// How much longer than this node's oldest offered task another node's must have waited for
/// a poll here to take it first (milliseconds). Where every node has workers, they keep to
/// their own node's tasks, whose answers then skip the inbox.
const SHARED_AFTER: i64 = 1_000;
/// Tasks of this node's a poll tries to claim before it looks at any node's.
const OWN_TRIES: usize = 4;

/// How long `GetActivityTask` waits for a task (AWS: 60 seconds).
const LONG_POLL: Duration = Duration::from_secs(60);
/// How often a parked `GetActivityTask` looks for a task on a shared store without being told
/// of one (a notification lost with the listening connection, or by a poll that went away).
const CLAIM_POLL: Duration = Duration::from_secs(1);

impl ActivityTask {
    fn offered(&self) -> Offered {
        Offered {
            execution_arn: self.execution_arn.clone(),
            task_id: self.task_id,
            scheduled: self.scheduled,
        }
    }

    fn row(self, activity_arn: &str) -> store::ActivityTaskRow {
        store::ActivityTaskRow {
            activity_arn: activity_arn.to_owned(),
            execution_arn: self.execution_arn,
            task_id: self.task_id,
            token: self.token,
            input: self.input,
            scheduled: self.scheduled,
        }
    }
}

impl From<store::ActivityTaskRow> for ActivityTask {
    fn from(row: store::ActivityTaskRow) -> ActivityTask {
        ActivityTask {
            token: row.token,
            input: row.input,
            execution_arn: row.execution_arn,
            scheduled: row.scheduled,
            task_id: row.task_id,
            stored: false,
        }
    }
}

impl Engine {
    /// Creates an activity; creating an existing one again returns it (idempotent).
    pub async fn create_activity(
        &self,
        region: &str,
        account: &str,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<ActivityRecord> {
        arn::check_name(name)?;
        let activity_arn = format!("arn:aws:states:{region}:{account}:activity:{name}");
        crate::machines::check_tag_count(&activity_arn, &tags)?;
        let record = ActivityRecord {
            arn: activity_arn.clone(),
            name: name.to_owned(),
            creation_date: self.now(),
            tags,
        };
        match self.store().create_activity(record.clone()).await {
            Ok(()) => Ok(record),
            Err(store::Error::AlreadyExists) => Ok(self.describe_activity(&activity_arn).await?),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_activity(&self, activity_arn: &str) -> Result<ActivityRecord> {
        arn::parse_activity(activity_arn)?;
        self.store()
            .get_activity(activity_arn)
            .await?
            .ok_or_else(|| {
                Error::ActivityDoesNotExist(format!("Activity Does Not Exist: '{activity_arn}'"))
            })
    }

    pub async fn delete_activity(&self, activity_arn: &str) -> Result<()> {
        arn::parse_activity(activity_arn)?;
        self.inner.activities.set_exists(activity_arn, false);
        Ok(self.store().delete_activity(activity_arn).await?)
    }

    /// The activities of `account` in `region`, ordered by ARN.
    pub async fn list_activities(
        &self,
        region: &str,
        account: &str,
    ) -> Result<Vec<ActivityRecord>> {
        let prefix = format!("arn:aws:states:{region}:{account}:");
        let all = self.store().list_activities().await?;
        Ok(all
            .into_iter()
            .filter(|a| a.arn.starts_with(&prefix))
            .collect())
    }

    /// Queues a scheduled activity task for the workers of `activity_arn` (offers it to
    /// every node's, on a shared store, unless its scheduling's commit did: `offered`).
    pub(crate) async fn enqueue_activity(
        &self,
        activity_arn: &str,
        execution_arn: &str,
        task_id: u64,
        token: String,
        input: &Value,
        offered: bool,
    ) {
        let task = ActivityTask {
            token,
            input: input.to_string(),
            execution_arn: execution_arn.to_owned(),
            scheduled: self.now(),
            task_id,
            stored: offered,
        };
        // An Express execution is not stored and stays on this node: so do its tasks.
        let shared = self.store().shares_activity_tasks();
        if !shared || arn::is_express_execution(execution_arn) {
            self.inner.activities.push(activity_arn, task);
            return;
        }
        // A poll parked on this node takes it at once; otherwise a poll on any node claims it.
        let Err(task) = self.inner.activities.hand_over(activity_arn, task) else {
            return;
        };
        let offered = task.offered();
        if task.stored {
            // Other nodes' parked polls are told; the row is there already.
            self.inner.activities.offered_here(activity_arn, offered);
            self.store().announce_offered(activity_arn);
            return;
        }
        // Made again while the database is away: no worker could get the task otherwise.
        let row = task.row(activity_arn);
        let offer = || async { Ok(self.store().offer_activity_task(row.clone()).await?) };
        let runner = &self.inner.runner;
        match runner
            .while_store_fails("activity task not offered", offer)
            .await
        {
            Ok(()) => self.inner.activities.offered_here(activity_arn, offered),
            // This node stops: offered again when the execution is next resumed.
            Err(e) => tracing::error!(%execution_arn, error = %e, "activity task not offered"),
        }
    }

    /// The tasks of an activity that wait for a worker (scheduled, not yet handed out), oldest
    /// first: the queue of this process, which holds every scheduled task of its executions
    /// (or, on a shared store, the tasks offered by every node).
    pub async fn pending_activity_tasks(&self, activity_arn: &str) -> Result<Vec<ActivityTask>> {
        self.describe_activity(activity_arn).await?;
        if !self.store().shares_activity_tasks() {
            return Ok(self.inner.activities.queued(activity_arn));
        }
        let rows = self.store().offered_activity_tasks(activity_arn).await?;
        let mut tasks = self.inner.activities.queued(activity_arn);
        tasks.extend(rows.into_iter().map(ActivityTask::from));
        Ok(tasks)
    }

    /// `GetActivityTask` on a shared store: takes a task queued on this node (of its Express
    /// executions, or handed over while a poll was parked here) or claims an offered task
    /// ([`Engine::claim_offered`]), waiting (up to the long poll) for one to be handed over
    /// here or offered on any node.
    async fn claim_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<String>,
    ) -> Result<Option<ActivityTask>> {
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        let offered = self.store().activity_tasks_offered(activity_arn);
        let mut handed = None;
        let runner = &self.inner.runner;
        let elsewhere = |execution_arn: &str, task_id: u64| {
            runner.started_elsewhere(execution_arn, task_id, worker_name.clone())
        };
        loop {
            let local = handed
                .take()
                .or_else(|| self.inner.activities.take(activity_arn));
            let mut claimed = None;
            if let Some(task) = local.as_ref().filter(|t| t.stored) {
                claimed = self
                    .take_own(activity_arn, task.offered(), &worker_name, &elsewhere)
                    .await?;
                if claimed.is_none() {
                    // Another node's poll took it: look again.
                    continue;
                }
            } else if let Some(task) = local {
                let started = Signal::TaskStarted {
                    task_id: task.task_id,
                    worker_name: worker_name.clone(),
                };
                match self.inner.runner.signal(&task.execution_arn, started).await {
                    Ok(Signalled::Applied(_) | Signalled::Forwarded) => return Ok(Some(task)),
                    Ok(_) => continue,
                    Err(e) => {
                        // Not recorded as started: leave it for another poll.
                        self.inner.activities.push(activity_arn, task);
                        return Err(e);
                    }
                }
            }
            if claimed.is_none() {
                claimed = self
                    .claim_offered(activity_arn, &worker_name, &elsewhere)
                    .await?;
            }
            if let Some(claimed) = claimed {
                let row = claimed.task;
                if claimed.started_sent {
                    // Its TaskStarted is recorded, or waits in the inbox of the node that
                    // runs the execution.
                    return Ok(Some(row.into()));
                }
                let started = Signal::TaskStarted {
                    task_id: row.task_id,
                    worker_name: worker_name.clone(),
                };
                match self.inner.runner.signal(&row.execution_arn, started).await {
                    Ok(Signalled::Applied(_) | Signalled::Forwarded) => {
                        return Ok(Some(row.into()))
                    }
                    // The execution ended or moved on: skip it.
                    Ok(Signalled::Stale | Signalled::NotRunning) => continue,
                    Err(e) => {
                        // Not recorded as started: offered again for another poll.
                        if let Err(again) = self.store().offer_activity_task(row).await {
                            tracing::error!(error = %again, "activity task not offered again");
                        }
                        return Err(e);
                    }
                }
            }
            let mut parked = match self.inner.activities.take_or_park(activity_arn) {
                Ok(task) => {
                    handed = Some(task);
                    continue;
                }
                Err(parked) => parked,
            };
            let news = async {
                match &offered {
                    Some(offered) => offered.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                task = &mut parked.rx => {
                    handed = task.ok();
                    continue;
                }
                () = news => {}
                () = tokio::time::sleep(CLAIM_POLL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
            // No more hand-overs to this poll; one made meanwhile is taken.
            parked.rx.close();
            handed = parked.rx.try_recv().ok();
            if handed.is_none() && tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Claims an offered task on a shared store: one this node offered, by its key (up to
    /// [`OWN_TRIES`]: another node may have taken some), else the oldest of any node's. On
    /// its [`SHARED_TURN`], another node's task that waited [`SHARED_AFTER`] longer comes
    /// first. A task of an execution that runs here is taken in the commit of its start
    /// ([`Engine::take_here`]).
    async fn claim_offered(
        &self,
        activity_arn: &str,
        worker_name: &Option<String>,
        elsewhere: &store::StartedElsewhere<'_>,
    ) -> Result<Option<store::ClaimedTask>> {
        let others = !self.inner.runner.holds_every_shard();
        let queues = &self.inner.activities;
        if let Some(Some(oldest_here)) = queues.shared_turn(activity_arn, others) {
            let before = oldest_here - SHARED_AFTER;
            let oldest = self.store().oldest_offered_task(activity_arn).await?;
            let claimed = match oldest {
                Some(oldest) if oldest < before => {
                    let before = Some(before);
                    let store = self.store();
                    store
                        .claim_activity_task(activity_arn, before, elsewhere)
                        .await?
                }
                _ => None,
            };
            queues.shared_seen(activity_arn, oldest.filter(|_| claimed.is_none()));
            if let Some(claimed) = claimed {
                queues.claimed_here(activity_arn, &claimed.task);
                return Ok(Some(claimed));
            }
        }
        for _ in 0..OWN_TRIES {
            let Some(own) = queues.next_offered_here(activity_arn) else {
                break;
            };
            let claimed = self
                .take_own(activity_arn, own, worker_name, elsewhere)
                .await?;
            if claimed.is_some() {
                return Ok(claimed);
            }
        }
        let claimed = self
            .store()
            .claim_activity_task(activity_arn, None, elsewhere)
            .await?;
        if let Some(claimed) = &claimed {
            queues.claimed_here(activity_arn, &claimed.task);
        }
        Ok(claimed)
    }

    /// Takes a task this node offered: in the commit of its start when its execution runs
    /// here ([`Engine::take_here`]), by its key otherwise; `None` when another node's poll
    /// took it.
    async fn take_own(
        &self,
        activity_arn: &str,
        own: Offered,
        worker_name: &Option<String>,
        elsewhere: &store::StartedElsewhere<'_>,
    ) -> Result<Option<store::ClaimedTask>> {
        match self.take_here(activity_arn, own, worker_name).await? {
            Took::Started(task) => {
                // Its start is recorded: nothing more to send.
                let started_sent = true;
                Ok(Some(store::ClaimedTask { task, started_sent }))
            }
            Took::Gone => Ok(None),
            Took::Claim(own) => {
                let (arn, id) = (&own.execution_arn, own.task_id);
                Ok(self.store().claim_offered_task(arn, id, elsewhere).await?)
            }
        }
    }

    /// Takes a task this node offered, for an execution that runs here and waits for it, in
    /// the commit that records its start (`Runner::take_offered`): no claim statement of
    /// its own.
    async fn take_here(
        &self,
        activity_arn: &str,
        own: Offered,
        worker_name: &Option<String>,
    ) -> Result<Took> {
        let runner = &self.inner.runner;
        let (arn, task_id) = (own.execution_arn.as_str(), own.task_id);
        let Some((token, input)) = runner.activity_task(arn, task_id).await else {
            return Ok(Took::Claim(own));
        };
        match runner.take_offered(arn, task_id, worker_name.clone()).await {
            Ok(Signalled::Applied(_)) => Ok(Took::Started(store::ActivityTaskRow {
                activity_arn: activity_arn.to_owned(),
                execution_arn: own.execution_arn,
                task_id,
                token,
                input,
                scheduled: own.scheduled,
            })),
            // It moved on or away meanwhile: its row is claimed as any other.
            Ok(_) => Ok(Took::Claim(own)),
            Err(Error::Store(store::Error::Taken)) => Ok(Took::Gone),
            Err(e) => {
                // Nothing committed: still offered, and still this node's to take by its key.
                self.inner.activities.offered_here(activity_arn, own);
                Err(e)
            }
        }
    }

    /// `GetActivityTask`: waits up to 60 seconds for a task; `None` when none came.
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<String>,
    ) -> Result<Option<ActivityTask>> {
        if !self.inner.activities.exists(activity_arn) {
            self.describe_activity(activity_arn).await?;
            self.inner.activities.set_exists(activity_arn, true);
        }
        if self.store().shares_activity_tasks() {
            return self.claim_activity_task(activity_arn, worker_name).await;
        }
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        loop {
            let task = match self.inner.activities.take_or_park(activity_arn) {
                Ok(task) => task,
                // A task handed over as the long poll ends is queued again as `parked` drops.
                Err(mut parked) => match tokio::time::timeout_at(deadline, &mut parked.rx).await {
                    Ok(Ok(task)) => task,
                    _ => return Ok(None),
                },
            };
            let started = Signal::TaskStarted {
                task_id: task.task_id,
                worker_name: worker_name.clone(),
            };
            match self.inner.runner.signal(&task.execution_arn, started).await {
                Ok(Signalled::Applied(_) | Signalled::Forwarded) => return Ok(Some(task)),
                // The execution ended or moved on while the task was queued: skip it.
                Ok(_) => continue,
                Err(e) => {
                    // Not recorded as started: leave it for another poll.
                    self.inner.activities.push(activity_arn, task);
                    return Err(e);
                }
            }
        }
    }

    /// `SendTaskSuccess`.
    pub async fn send_task_success(&self, token: &str, output: &str) -> Result<()> {
        let output: Value = serde_json::from_str(output)
            .map_err(|e| Error::InvalidOutput(format!("Invalid Output: '{e}'")))?;
        self.complete_task(token, TaskOutcome::Succeeded(output))
            .await
    }

    /// `SendTaskFailure`.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<()> {
        self.complete_task(
            token,
            TaskOutcome::Failed(ErrorCause {
                error,
                cause,
                location: None,
            }),
        )
        .await
    }

    /// `SendTaskHeartbeat`.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<()> {
        let TaskTokenRef {
            execution_arn,
            task_id,
        } = self.check_token(token).await?;
        let signalled = self
            .inner
            .runner
            .signal(&execution_arn, Signal::TaskHeartbeat { task_id })
            .await?;
        self.check_signalled(signalled)
    }

    pub(crate) async fn complete_task(&self, token: &str, outcome: TaskOutcome) -> Result<()> {
        let TaskTokenRef {
            execution_arn,
            task_id,
        } = self.check_token(token).await?;
        let signalled = self
            .inner
            .runner
            .signal(&execution_arn, Signal::TaskFinished { task_id, outcome })
            .await?;
        self.check_signalled(signalled)
    }

    /// The attempt a token answers, if the engine issued it: sealed with the store's key, or
    /// an older build's unsealed token that is exactly the one stored for a task still in
    /// flight (so tokens handed out before an upgrade keep working until their tasks end).
    async fn check_token(&self, token: &str) -> Result<TaskTokenRef> {
        match asl::task_token::check(&self.inner.token_key, token) {
            Some(Checked::Genuine(named)) => Ok(named),
            Some(Checked::Unsealed(named)) => {
                let issued = self
                    .inner
                    .runner
                    .issued_token(&named.execution_arn, named.task_id)
                    .await;
                match issued {
                    Some(issued) if issued == token => Ok(named),
                    Some(_) => Err(invalid_token(token)),
                    // No such task in flight: nothing it could change.
                    None => Err(task_gone()),
                }
            }
            None => Err(invalid_token(token)),
        }
    }

    fn check_signalled(&self, signalled: Signalled) -> Result<()> {
        match signalled {
            Signalled::Applied(_) | Signalled::Forwarded => Ok(()),
            Signalled::Stale | Signalled::NotRunning => Err(task_gone()),
        }
    }
}

/// AWS's answer to a token whose task has ended.
fn task_gone() -> Error {
    Error::TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'".into())
}

/// AWS's answer to a token that is not one this engine issued.
fn invalid_token(token: &str) -> Error {
    Error::InvalidToken(format!("Invalid Token: '{token}'"))
}
