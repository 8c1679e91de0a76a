//! The writes other nodes are told of by `NOTIFY` (activity tasks offered, signals sent to an
//! inbox), grouped into one transaction.
//!
//! PostgreSQL serialises the commits of transactions that notified: each takes a lock for the
//! whole database from before its WAL flush to its end. One transaction per write would cap
//! them at one flush each (a few hundred per second on a disk that syncs); here the writes
//! queued while a group commits go together in the next one, with one notification per
//! activity or shard. A group of offers alone is one statement (its own transaction): the
//! insert and its notifications, without `BEGIN` and `COMMIT`.
//!
//! The tasks a group commit offers with the writes that schedule them ([`crate::Offers`])
//! are announced after it, by the [`Bell`]: a notification alone, which is only news, so it
//! need not wait for the WAL's flush and holds that lock for no time.

use std::collections::{BTreeSet, HashMap, HashSet};

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{mpsc, oneshot};

use super::{listen, TaskColumns};
use crate::{ActivityTaskRow, Error, Result};

/// Writes waiting for the next group before `send` waits for room.
const QUEUE: usize = 4096;
/// The most writes in one group.
const GROUP: usize = 1024;
/// Notifies the channel `$1` once per payload of the array `$2`.
const NOTIFY: &str = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p";

/// A write that other nodes are told of.
pub(super) enum Announced {
    /// Offers an activity task (replacing the one offered for the same execution and task),
    /// if its execution runs.
    Offer(ActivityTaskRow),
    /// Puts a signal in the inbox of a running execution's shard.
    Signal { execution_arn: String, body: String },
}

/// `Ok(false)` for a signal whose execution is not running; `Ok(true)` otherwise (an offer for
/// an execution that is not running is dropped).
type Reply = oneshot::Sender<Result<bool>>;

/// The queue to the task that writes the groups.
#[derive(Clone)]
pub(super) struct Announcer {
    tx: mpsc::Sender<(Announced, Reply)>,
}

impl Announcer {
    /// Starts the task that writes the groups; it ends with the last clone of the `Announcer`.
    pub fn start(pool: Pool) -> Announcer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Announcer { tx }
    }

    /// Writes `what` in the next group; returns once that group committed.
    pub async fn send(&self, what: Announced) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((what, reply))
            .await
            .map_err(|_| Error::backend("the announcer stopped"))?;
        answer
            .await
            .map_err(|_| Error::backend("the announcer stopped before answering"))?
    }
}

/// Announces the activities that committed offers were made to: one notification per
/// activity for the offers that came while the last was sent.
#[derive(Clone)]
pub(super) struct Bell {
    tx: mpsc::Sender<String>,
}

impl Bell {
    /// Starts the task that notifies, on connections that commit without waiting for the
    /// WAL's flush; it ends with the last clone of the `Bell`.
    pub fn start(unflushed: Pool) -> Bell {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(ring(unflushed, rx));
        Bell { tx }
    }

    /// Tells the other nodes that tasks of `activity_arn` were offered. A notification that
    /// finds the queue full is dropped: parked polls then look at their next poll.
    pub fn offered(&self, activity_arn: &str) {
        let _ = self.tx.try_send(activity_arn.to_owned());
    }
}

async fn ring(unflushed: Pool, mut rx: mpsc::Receiver<String>) {
    let mut queued = Vec::new();
    while rx.recv_many(&mut queued, GROUP).await > 0 {
        let activities: Vec<String> = queued
            .drain(..)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let rung = async {
            let client = unflushed.get().await?;
            let notify = client.prepare_cached(NOTIFY).await?;
            client
                .execute(&notify, &[&listen::ACTIVITIES, &activities])
                .await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = rung.await {
            tracing::debug!(error = %e, "offered activity tasks not announced");
        }
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<(Announced, Reply)>) {
    let mut group = Vec::new();
    while rx.recv_many(&mut group, GROUP).await > 0 {
        let (writes, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
        match write(&pool, &writes).await {
            Ok(sent) => {
                for (reply, sent) in replies.into_iter().zip(sent) {
                    let _ = reply.send(Ok(sent));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes a group in one transaction; says for each write whether it was made.
async fn write(pool: &Pool, writes: &[Announced]) -> Result<Vec<bool>> {
    // Tests arm it to show what does not depend on these writes (`announce-fails=return`).
    fail::fail_point!("announce-fails", |_| Err(Error::backend(
        "the announce-fails failpoint"
    )));
    let mut client = pool.get().await?;
    if writes.iter().all(|w| matches!(w, Announced::Offer(_))) {
        // One statement: a transaction of its own.
        return write_in(&client, writes).await;
    }
    let tx = client.transaction().await?;
    let made = write_in(&tx, writes).await?;
    tx.commit().await?;
    Ok(made)
}

/// Makes `writes` in the transaction `tx` (the group's, or another that must hold them too),
/// with their notifications; says for each whether it was made. Offers alone take one
/// statement, which may run outside a transaction.
pub(super) async fn write_in<C: GenericClient>(tx: &C, writes: &[Announced]) -> Result<Vec<bool>> {
    // The last offer of a task wins (one statement cannot update a row twice).
    let mut offers: HashMap<(&str, u64), &ActivityTaskRow> = HashMap::new();
    let mut signals = (Vec::new(), Vec::new());
    for what in writes {
        match what {
            Announced::Offer(row) => {
                offers.insert((&row.execution_arn, row.task_id), row);
            }
            Announced::Signal {
                execution_arn,
                body,
            } => {
                signals.0.push(execution_arn.as_str());
                signals.1.push(body.as_str());
            }
        }
    }
    if !offers.is_empty() {
        let rows: Vec<&ActivityTaskRow> = offers.into_values().collect();
        let columns = TaskColumns::new(&rows);
        // Only while the execution runs: its row is locked (`FOR SHARE`, in the writer's
        // order, by ARN) to the commit, so the commit that ends it (which withdraws its tasks)
        // comes wholly before or after. One notification per activity offered to.
        let insert = tx
            .prepare_cached(
                "WITH offered AS (
                     INSERT INTO activity_tasks(activity_arn, execution_arn, task_id, token,
                         input, scheduled)
                     SELECT u.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[],
                         $5::text[], $6::bigint[]) AS u(activity_arn, arn, task_id, token, input,
                         scheduled)
                     JOIN executions e ON e.arn = u.arn AND e.status = 'RUNNING'
                     ORDER BY e.arn FOR SHARE OF e
                     ON CONFLICT(execution_arn, task_id) DO UPDATE
                         SET token = excluded.token, input = excluded.input,
                             scheduled = excluded.scheduled
                     RETURNING activity_arn)
                 SELECT pg_notify($7, a) FROM (SELECT DISTINCT activity_arn AS a FROM offered) d",
            )
            .await?;
        let channel = listen::ACTIVITIES;
        let [activity, execution, task_ids, token, input, scheduled] = columns.params();
        let params = [
            activity, execution, task_ids, token, input, scheduled, &channel,
        ];
        tx.execute(&insert, &params).await?;
    }
    let mut running = HashSet::new();
    let mut shards = BTreeSet::new();
    if !signals.0.is_empty() {
        // In the order sent: the inbox is read by id.
        let insert = tx
            .prepare_cached(
                "INSERT INTO inbox(shard, execution_arn, body)
                 SELECT e.shard, e.arn, u.body
                 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(arn, body, n)
                 JOIN executions e ON e.arn = u.arn AND e.status = 'RUNNING'
                 ORDER BY u.n
                 RETURNING shard, execution_arn",
            )
            .await?;
        let rows = tx.query(&insert, &[&signals.0, &signals.1]).await?;
        for row in rows {
            shards.insert(row.try_get::<_, i32>(0)?.to_string());
            running.insert(row.try_get::<_, String>(1)?);
        }
    }
    if !shards.is_empty() {
        let payloads: Vec<String> = shards.into_iter().collect();
        let notify = tx.prepare_cached(NOTIFY).await?;
        tx.execute(&notify, &[&listen::INBOX, &payloads]).await?;
    }
    Ok(writes
        .iter()
        .map(|what| match what {
            Announced::Offer(_) => true,
            Announced::Signal { execution_arn, .. } => running.contains(execution_arn),
        })
        .collect())
}
