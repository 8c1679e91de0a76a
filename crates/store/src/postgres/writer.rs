//! Group commit on PostgreSQL: one task takes every queued commit and makes them durable in
//! one transaction.
//!
//! The fast path costs a fixed number of round trips per batch, whatever its size: it locks
//! the batch's execution rows (`SELECT … FOR UPDATE`, in ARN order so concurrent writers do
//! not deadlock) and takes the activity tasks its `TakeTask`s name, decides every write's fate
//! from their versions in memory (fencing, duplicate creates, tasks taken elsewhere), then
//! writes all that passed with one statement per table over arrays (`unnest`), sent
//! together, with the tasks of writes that failed put back. Should a statement fail anyway
//! (a row created by another node meanwhile), the batch is done again write by write, each
//! in a savepoint, as the SQLite writer does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deadpool_postgres::{Client, GenericClient, Pool};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_postgres::Statement;

use super::{big, decode_activity_task, lease, shards, Fence, TaskColumns};
use crate::{ActivityTaskRow, Error, ExecutionRecord, ExecutionStatus, Result, Write};

pub(super) type Reply = oneshot::Sender<Result<Vec<Result<()>>>>;

/// Most writes one transaction takes; bounds the latency of the first in a burst.
const MAX_BATCH: usize = 4096;

/// Most group commits under way at once (each holds a connection of the pool).
pub(super) const IN_FLIGHT: usize = 4;

/// Fewest writes a batch takes to start while another commit is under way; a smaller one
/// waits for more or for that commit to end. Overlapping commits pay for large batches (a
/// Pass chain's); for a few writes each (activity tasks spread over several nodes) they
/// would only make more, smaller transactions of the same writes.
const OVERLAP_AT: usize = 16;

/// How long a batch of fewer than [`OVERLAP_AT`] writes waits for more before it commits,
/// when the batch before it held several commits. Each of several active nodes sees a part of
/// the load, so its batches are small, and PostgreSQL plans and executes every statement of a
/// transaction whatever its size: fewer, larger transactions cost it less per write (three
/// nodes, activity tasks: about a quarter fewer statements per Task state; performance.md,
/// stop 32). A lone commit goes at once.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Receives commits until every sender is gone. Every transaction is fenced by `fence`: the
/// lease, or the epochs of the shards its executions belong to.
///
/// Up to [`IN_FLIGHT`] transactions overlap, each on its own connection: the next batch is
/// taken once the one before has locked its execution rows (and holds [`OVERLAP_AT`]
/// writes, or no commit is under way any more), so the round trips and the fsync of one
/// commit no longer hold the next one back. Locks are taken in batch order, so writes to one
/// execution still commit in the order they were sent (and the engine sends an execution's
/// next write only once the last one is acknowledged).
pub(super) async fn run(pool: Pool, mut rx: mpsc::Receiver<(Vec<Write>, Reply)>, fence: Fence) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let ended = Arc::new(Notify::new());
    let mut last_jobs = 0;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut total = jobs[0].0.len();
        loop {
            while total < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => {
                        total += job.0.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let under_way = slots.available_permits() < IN_FLIGHT;
            if !under_way || total >= OVERLAP_AT {
                break;
            }
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => {
                        total += job.0.len();
                        jobs.push(job);
                    }
                    None => break,
                },
                () = ended.notified() => {}
            }
        }
        // Writes arrive side by side (the batch before held several commits): a small batch
        // waits a little for more.
        let busy = last_jobs > 1;
        last_jobs = jobs.len();
        if busy && total < OVERLAP_AT {
            let until = tokio::time::Instant::now() + LINGER;
            while total < OVERLAP_AT {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => {
                        total += job.0.len();
                        jobs.push(job);
                    }
                    _ => break,
                }
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (locked_tx, locked) = oneshot::channel();
        let (pool, fence, ended) = (pool.clone(), fence.clone(), ended.clone());
        tokio::spawn(async move {
            let mut sizes = Vec::with_capacity(jobs.len());
            let mut replies = Vec::with_capacity(jobs.len());
            let mut batch = Vec::with_capacity(total);
            for (writes, reply) in jobs {
                sizes.push(writes.len());
                batch.extend(writes);
                replies.push(reply);
            }
            let mut locked = Some(locked_tx);
            let outcome = match pool.get().await {
                Ok(mut client) => group_commit(&mut client, &batch, &fence, &mut locked).await,
                Err(e) => Err(Error::driver(e)),
            };
            drop(slot);
            ended.notify_one();
            crate::answer_commit(replies, sizes, outcome);
        });
        // Sent once the rows are locked, or dropped when the transaction failed before.
        let _ = locked.await;
    }
}

/// Commits a batch: results per write, in order; `Err` when the transaction itself failed.
/// `locked` is told once the batch's execution rows are locked.
///
/// The fast path takes two round trips: `BEGIN` goes out with the fence and the row locks,
/// `COMMIT` with the writes. A statement that fails aborts the transaction, and the `COMMIT`
/// behind it then rolls back; the batch is done again write by write, each in a savepoint.
async fn group_commit(
    client: &mut Client,
    batch: &[Write],
    fence: &Fence,
    locked: &mut Option<oneshot::Sender<()>>,
) -> Result<Vec<Result<()>>> {
    match apply(&*client, batch, fence, locked, Ending::Commit).await {
        Ok(results) => {
            committed();
            return Ok(results);
        }
        Err(e) => {
            // Ends the transaction when the failure came before the COMMIT went out (a
            // no-op, with a warning from the server, when it had).
            client.batch_execute("ROLLBACK").await?;
            if matches!(e, Error::Fenced) {
                // The lease is another node's: nothing of this batch may be written.
                return Err(e);
            }
            tracing::debug!(error = %e, "group commit falls back to one write at a time");
        }
    }
    let mut tx = client.transaction().await?;
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
        let savepoint = tx.savepoint("w").await?;
        let one = std::slice::from_ref(write);
        match apply(&savepoint, one, fence, &mut None, Ending::Open).await {
            Ok(mut r) => {
                savepoint.commit().await?;
                results.push(r.pop().unwrap_or(Ok(())));
            }
            Err(Error::Fenced) => return Err(Error::Fenced),
            Err(e) => {
                savepoint.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    committed();
    Ok(results)
}

/// Who opens and ends the transaction [`apply`] writes in.
#[derive(Clone, Copy)]
enum Ending {
    /// `apply` sends `BEGIN` with its first statements and `COMMIT` with its last.
    Commit,
    /// The caller's transaction (or savepoint) stays open.
    Open,
}

/// Creates execution rows, one per array element.
const INSERT_EXECUTIONS: &str =
    "INSERT INTO executions(arn, status, version, doc, runtime, redrive_count, sm_arn,
     start_date, definition, input, version_arn, alias_arn, map_run_arn, shard)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
     $6::bigint[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[],
     $12::text[], $13::text[], $14::int[])";

/// Updates execution rows from the version each was read at.
const UPDATE_EXECUTIONS: &str =
    "UPDATE executions e SET status = u.status, version = u.version, doc = u.doc,
     runtime = coalesce(u.runtime, e.runtime), redrive_count = u.redrive_count,
     definition = coalesce(u.definition, e.definition)
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
     $6::bigint[], $7::bigint[], $8::text[]) AS u(arn, status, version, doc,
     runtime, redrive_count, from_version, definition)
     WHERE e.arn = u.arn AND e.version = u.from_version";

/// Appends history events.
const INSERT_EVENTS: &str = "INSERT INTO events(execution_arn, id, body)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])";

/// Writes the lanes of checkpoints (a Map's or Parallel's branches).
const UPSERT_LANES: &str = "INSERT INTO lanes(execution_arn, path, body)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
     ON CONFLICT(execution_arn, path) DO UPDATE SET body = excluded.body";

/// Records the outcomes of a bulk redrive's items.
const SET_OUTCOMES: &str = "UPDATE redrive_batch_items b SET outcome = u.outcome
     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(token, idx, outcome)
     WHERE b.token = u.token AND b.idx = u.idx";

/// Records the results of Map Run items.
const SET_ITEMS: &str = "UPDATE map_run_items m SET result = u.result
     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(arn, idx, result)
     WHERE m.map_run_arn = u.arn AND m.idx = u.idx";

/// Offers the activity tasks the batch's writes schedule ([`crate::Offers`]), replacing any
/// offered before for the same execution and task id.
const OFFER_TASKS: &str = "INSERT INTO activity_tasks(activity_arn, execution_arn, task_id,
         token, input, scheduled)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
         $6::bigint[])
     ON CONFLICT(execution_arn, task_id) DO UPDATE
         SET token = excluded.token, input = excluded.input, scheduled = excluded.scheduled";

/// Withdraws the activity tasks offered for executions that end in this transaction: no
/// worker may get them any more.
const WITHDRAW_TASKS: &str = "DELETE FROM activity_tasks WHERE execution_arn = ANY($1)";

/// Takes the offered activity tasks of the batch's [`Write::TakeTask`]s (execution ARNs and
/// task ids); a task another transaction holds is skipped, as taken.
const TAKE_TASKS: &str = "DELETE FROM activity_tasks WHERE id IN (
         SELECT a.id FROM activity_tasks a
         JOIN unnest($1::text[], $2::bigint[]) AS u(arn, task_id)
           ON a.execution_arn = u.arn AND a.task_id = u.task_id
         FOR UPDATE OF a SKIP LOCKED)
     RETURNING activity_arn, execution_arn, task_id, token, input, scheduled";

/// Offers again the tasks taken for writes that failed (fenced, or in conflict): their
/// executions still wait for them.
const PUT_BACK_TASKS: &str = "INSERT INTO activity_tasks(activity_arn, execution_arn, task_id,
         token, input, scheduled)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
         $6::bigint[])
     ON CONFLICT(execution_arn, task_id) DO NOTHING";

/// Committed, and no caller knows yet.
fn committed() {
    fail::fail_point!("store-committed", |_| std::process::abort());
}

/// An execution row as the batch leaves it.
struct Row<'a> {
    record: &'a ExecutionRecord,
    /// The checkpoint to store; `None` keeps the stored one.
    runtime: Option<&'a str>,
    /// The definition to store ([`Write::Redefine`]); `None` keeps the stored one.
    definition: Option<&'a str>,
    /// Created by this batch (inserted), or stored before (updated from `from`).
    created: bool,
    from: i64,
}

/// Applies a batch inside `tx`: the result of each write, or `Err` when a statement failed
/// (then `tx` is aborted). With shards, a write to an execution of a shard this node no
/// longer holds fails with [`Error::Fenced`]; with the lease, the whole batch does when the
/// lease is another node's. `locked` is told once the rows are locked.
async fn apply<C: GenericClient>(
    tx: &C,
    batch: &[Write],
    fence: &Fence,
    locked: &mut Option<oneshot::Sender<()>>,
    ending: Ending,
) -> Result<Vec<Result<()>>> {
    let mut arns: Vec<&str> = batch.iter().filter_map(execution_arn).collect();
    arns.sort_unstable();
    arns.dedup();
    // `BEGIN`, the fence and the row locks go out together (one round trip). With shards,
    // the shards the batch's records name are checked (all this node holds when one names
    // none); a write whose stored shard was not checked is refused below.
    let begin = async {
        match ending {
            Ending::Commit => tx.batch_execute("BEGIN").await.map_err(Error::from),
            Ending::Open => Ok(()),
        }
    };
    let ((), valid, locked_rows, mut taken) = tokio::try_join!(
        begin,
        check_fence(tx, fence, batch),
        lock_rows(tx, &arns),
        take_tasks(tx, batch)
    )?;
    if let Some(locked) = locked.take() {
        let _ = locked.send(());
    }
    let mut stored: HashMap<&str, i64> = HashMap::new();
    let mut shard_of: HashMap<&str, u32> = HashMap::new();
    let mut closed: std::collections::HashSet<&str> = Default::default();
    for row in &locked_rows {
        let arn: &str = row.try_get(0)?;
        if let Ok(i) = arns.binary_search(&arn) {
            stored.insert(arns[i], row.try_get(1)?);
            shard_of.insert(arns[i], shards::shard_number(row.try_get(2)?));
            if row.try_get::<_, &str>(3)? != "RUNNING" {
                closed.insert(arns[i]);
            }
        }
    }
    let shard = |write: &Write| match write {
        Write::CreateExecution { execution, .. } => Some(execution.shard.unwrap_or(0)),
        other => execution_arn(other).and_then(|arn| shard_of.get(arn).copied()),
    };
    // Each execution's version as the batch goes, and its row at the end.
    let mut current: HashMap<&str, i64> = stored.clone();
    let mut rows: BTreeMap<&str, Row<'_>> = BTreeMap::new();
    let mut events = (Vec::new(), Vec::new(), Vec::new());
    let mut lanes: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut items: BTreeMap<(&str, i64), Option<&str>> = BTreeMap::new();
    let mut outcomes: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    let mut offers: BTreeMap<(&str, u64), &ActivityTaskRow> = BTreeMap::new();
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
        // A redrive re-opening a closed execution (no node runs it) may come from any node,
        // where it stopped (a record) or elsewhere (a moved checkpoint, another definition):
        // the row lock and its version keep it to one; the shard's owner then resumes it.
        let reopening = match write {
            Write::Record { execution, .. } => closed.contains(execution.arn.as_str()),
            Write::Transition { execution, .. } | Write::Redefine { execution, .. } => {
                closed.contains(execution.arn.as_str())
                    && execution.status == ExecutionStatus::Running
            }
            _ => false,
        };
        // So may a Map Run's child placed on another node's shard, created not yet started
        // (no events): the shard's owner starts it.
        let placing = matches!(write, Write::CreateExecution { events, .. } if events.is_empty());
        if let (Some(valid), Some(shard), false) = (&valid, shard(write), reopening || placing) {
            if !valid.contains(&shard) {
                results.push(Err(Error::Fenced));
                continue;
            }
        }
        if let Write::TakeTask {
            execution, task_id, ..
        } = write
        {
            if !taken.contains_key(&(execution.arn.as_str(), *task_id)) {
                results.push(Err(Error::Taken));
                continue;
            }
        }
        let (e, new_events, new_lanes, runtime, new_offers) = match write {
            Write::CreateExecution {
                execution: e,
                events,
                lanes,
                offers,
            } => {
                if current.contains_key(e.arn.as_str()) {
                    results.push(Err(Error::AlreadyExists));
                    continue;
                }
                rows.insert(
                    &e.arn,
                    Row {
                        record: e,
                        runtime: Some(&e.runtime),
                        definition: None,
                        created: true,
                        from: 0,
                    },
                );
                let runtime = Some(e.runtime.as_str());
                (e, events, lanes.as_slice(), runtime, offers.as_slice())
            }
            Write::Transition {
                execution: e,
                events,
                lanes,
                offers,
            }
            | Write::TakeTask {
                execution: e,
                events,
                lanes,
                offers,
                ..
            } => {
                let runtime = Some(e.runtime.as_str());
                (e, events, lanes.as_slice(), runtime, offers.as_slice())
            }
            Write::Redefine {
                execution: e,
                events,
                lanes,
            } => (
                e,
                events,
                lanes.as_slice(),
                Some(e.runtime.as_str()),
                &[][..],
            ),
            Write::Record {
                execution: e,
                events,
            } => (e, events, &[][..], None, &[][..]),
            Write::MapRunItem {
                map_run_arn,
                index,
                result,
            } => {
                items.insert((map_run_arn, *index as i64), result.as_deref());
                results.push(Ok(()));
                continue;
            }
            Write::RedriveBatchItem {
                token,
                index,
                outcome,
            } => {
                outcomes.insert((token, *index as i64), outcome);
                results.push(Ok(()));
                continue;
            }
        };
        let version = e.version as i64;
        if !matches!(write, Write::CreateExecution { .. }) {
            if current.get(e.arn.as_str()) != Some(&(version - 1)) {
                results.push(Err(Error::Conflict));
                continue;
            }
            let row = rows.entry(&e.arn).or_insert(Row {
                record: e,
                runtime: None,
                definition: None,
                created: false,
                from: version - 1,
            });
            row.record = e;
            if runtime.is_some() {
                row.runtime = runtime;
            }
            if matches!(write, Write::Redefine { .. }) {
                row.definition = Some(&e.definition);
            }
        }
        if let Write::TakeTask { task_id, .. } = write {
            // Taken for good: not put back below.
            taken.remove(&(e.arn.as_str(), *task_id));
        }
        current.insert(&e.arn, version);
        for event in new_events {
            events.0.push(e.arn.as_str());
            events.1.push(event.id as i64);
            events.2.push(event.body.as_str());
        }
        for lane in new_lanes {
            lanes.insert((&e.arn, &lane.path), &lane.body);
        }
        for task in new_offers {
            offers.insert((&task.execution_arn, task.task_id), task);
        }
        results.push(Ok(()));
    }
    let (created, updated): (Vec<&Row<'_>>, Vec<&Row<'_>>) = rows.values().partition(|r| r.created);
    // Prepared first (no round trip once cached), so that each statement below goes out
    // when first polled, in order, and the COMMIT last.
    let (insert, update, append, lanes_stmt, items_stmt, outcomes_stmt, offer, withdraw, put_back) =
        tokio::try_join!(
            tx.prepare_cached(INSERT_EXECUTIONS),
            tx.prepare_cached(UPDATE_EXECUTIONS),
            tx.prepare_cached(INSERT_EVENTS),
            tx.prepare_cached(UPSERT_LANES),
            tx.prepare_cached(SET_ITEMS),
            tx.prepare_cached(SET_OUTCOMES),
            tx.prepare_cached(OFFER_TASKS),
            tx.prepare_cached(WITHDRAW_TASKS),
            tx.prepare_cached(PUT_BACK_TASKS),
        )?;
    let ended: Vec<&str> = updated
        .iter()
        .filter(|r| r.record.status != ExecutionStatus::Running)
        .map(|r| r.record.arn.as_str())
        .collect();
    let commit = async {
        match ending {
            Ending::Commit => tx.batch_execute("COMMIT").await.map_err(Error::from),
            Ending::Open => Ok(()),
        }
    };
    // `join`, not `try_join`: every answer is awaited, so none is left on the connection.
    // The offers go before the withdrawals: an execution that ends keeps none.
    let (a, b, c, d, e, f, g, h, i, committed) = tokio::join!(
        insert_executions(tx, &insert, &created),
        update_executions(tx, &update, &updated),
        insert_events(tx, &append, &events),
        upsert_lanes(tx, &lanes_stmt, &lanes),
        set_items(tx, &items_stmt, &items),
        set_outcomes(tx, &outcomes_stmt, &outcomes),
        write_tasks(tx, &offer, offers.values().copied()),
        withdraw_tasks(tx, &withdraw, &ended),
        write_tasks(tx, &put_back, taken.values()),
        commit,
    );
    for outcome in [a, b, c, d, e, f, g, h, i, committed] {
        outcome?;
    }
    Ok(results)
}

/// The shards this node still holds (`None`: not sharded); with the lease, `Err(Fenced)`
/// when another node holds it. The rows checked stay locked (`FOR KEY SHARE`) to the commit.
async fn check_fence<C: GenericClient>(
    tx: &C,
    fence: &Fence,
    batch: &[Write],
) -> Result<Option<std::collections::BTreeSet<u32>>> {
    match fence {
        Fence::Shards(node, held) => {
            let mut held = held.borrow().clone();
            if let Some(written) = shards_written(batch) {
                held.retain(|shard, _| written.contains(shard));
            }
            Ok(Some(shards::fence(tx, node, &held).await?))
        }
        Fence::Lease(held) => lease::fence(tx, held).await.map(|()| None),
        Fence::None => Ok(None),
    }
}

/// The shards `batch` writes, as its records name them; `None` when one names none.
fn shards_written(batch: &[Write]) -> Option<std::collections::BTreeSet<u32>> {
    let mut shards = std::collections::BTreeSet::new();
    for write in batch {
        match write {
            Write::CreateExecution { execution, .. } => {
                shards.insert(execution.shard.unwrap_or(0));
            }
            Write::Transition { execution, .. }
            | Write::TakeTask { execution, .. }
            | Write::Redefine { execution, .. }
            | Write::Record { execution, .. } => {
                shards.insert(execution.shard?);
            }
            Write::MapRunItem { .. } | Write::RedriveBatchItem { .. } => {}
        }
    }
    Some(shards)
}

/// The tasks taken for the batch's [`Write::TakeTask`]s, by execution ARN and task id.
type Taken<'a> = HashMap<(&'a str, u64), ActivityTaskRow>;

/// Takes the offered tasks the batch's [`Write::TakeTask`]s name ([`TAKE_TASKS`]).
async fn take_tasks<'a, C: GenericClient>(tx: &C, batch: &'a [Write]) -> Result<Taken<'a>> {
    let wanted: Vec<(&str, u64)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::TakeTask {
                execution, task_id, ..
            } => Some((execution.arn.as_str(), *task_id)),
            _ => None,
        })
        .collect();
    let mut taken = Taken::new();
    if wanted.is_empty() {
        return Ok(taken);
    }
    let arns: Vec<&str> = wanted.iter().map(|w| w.0).collect();
    let ids: Vec<i64> = wanted.iter().map(|w| big(w.1)).collect();
    let stmt = tx.prepare_cached(TAKE_TASKS).await?;
    for row in tx.query(&stmt, &[&arns, &ids]).await? {
        let task = decode_activity_task(&row)?;
        if let Some(key) = wanted
            .iter()
            .find(|(arn, id)| *id == task.task_id && *arn == task.execution_arn)
        {
            taken.insert(*key, task);
        }
    }
    Ok(taken)
}

/// Writes activity task rows with `stmt` (the offers, or the tasks put back); nothing when
/// there are none.
async fn write_tasks<'a, C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    rows: impl Iterator<Item = &'a ActivityTaskRow>,
) -> Result<()> {
    let rows: Vec<&ActivityTaskRow> = rows.collect();
    if rows.is_empty() {
        return Ok(());
    }
    let columns = TaskColumns::new(&rows);
    tx.execute(stmt, &columns.params()).await?;
    Ok(())
}

/// Locks the execution rows `arns` (sorted, so concurrent writers do not deadlock).
async fn lock_rows<C: GenericClient>(tx: &C, arns: &[&str]) -> Result<Vec<tokio_postgres::Row>> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let lock = tx
        .prepare_cached(
            "SELECT arn, version, shard, status FROM executions WHERE arn = ANY($1)
             ORDER BY arn FOR UPDATE",
        )
        .await?;
    Ok(tx.query(&lock, &[&arns]).await?)
}

fn execution_arn(write: &Write) -> Option<&str> {
    match write {
        Write::CreateExecution { execution, .. }
        | Write::Transition { execution, .. }
        | Write::TakeTask { execution, .. }
        | Write::Redefine { execution, .. }
        | Write::Record { execution, .. } => Some(&execution.arn),
        Write::MapRunItem { .. } | Write::RedriveBatchItem { .. } => None,
    }
}

/// The execution row's `doc`: the record but its definition, checkpoint and input (own
/// columns).
fn doc(e: &ExecutionRecord) -> Result<String> {
    Ok(serde_json::to_string(e)?)
}

async fn insert_executions<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    rows: &[&Row<'_>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols = ExecutionColumns::default();
    for row in rows {
        cols.push(row)?;
    }
    let definitions: Vec<&str> = rows.iter().map(|r| r.record.definition.as_str()).collect();
    let inputs: Vec<&str> = rows.iter().map(|r| r.record.input.as_str()).collect();
    let start_dates: Vec<i64> = rows.iter().map(|r| r.record.start_date).collect();
    let sm_arns: Vec<&str> = rows
        .iter()
        .map(|r| r.record.state_machine_arn.as_str())
        .collect();
    let version_arns: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.record.state_machine_version_arn.as_deref())
        .collect();
    let alias_arns: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.record.state_machine_alias_arn.as_deref())
        .collect();
    let map_run_arns: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.record.map_run.as_ref().map(|m| m.map_run_arn.as_str()))
        .collect();
    let shards: Vec<i32> = rows
        .iter()
        .map(|r| i32::try_from(r.record.shard.unwrap_or(0)).unwrap_or(0))
        .collect();
    tx.execute(
        stmt,
        &[
            &cols.arns,
            &cols.statuses,
            &cols.versions,
            &cols.docs,
            &cols.runtimes,
            &cols.redrive_counts,
            &sm_arns,
            &start_dates,
            &definitions,
            &inputs,
            &version_arns,
            &alias_arns,
            &map_run_arns,
            &shards,
        ],
    )
    .await?;
    Ok(())
}

async fn update_executions<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    rows: &[&Row<'_>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols = ExecutionColumns::default();
    for row in rows {
        cols.push(row)?;
    }
    let from: Vec<i64> = rows.iter().map(|r| r.from).collect();
    let definitions: Vec<Option<&str>> = rows.iter().map(|r| r.definition).collect();
    let n = tx
        .execute(
            stmt,
            &[
                &cols.arns,
                &cols.statuses,
                &cols.versions,
                &cols.docs,
                &cols.runtimes,
                &cols.redrive_counts,
                &from,
                &definitions,
            ],
        )
        .await?;
    if n != rows.len() as u64 {
        // The rows were locked: only a bug gets here. Fail the batch, not one write. (On the
        // pipelined path the COMMIT has gone out and stood: the fallback then finds every
        // write in conflict, and the engine reads the executions back from the store.)
        return Err(Error::backend("execution rows changed under their lock"));
    }
    Ok(())
}

/// The columns an insert and an update of executions share.
#[derive(Default)]
struct ExecutionColumns<'a> {
    arns: Vec<&'a str>,
    statuses: Vec<&'a str>,
    versions: Vec<i64>,
    docs: Vec<String>,
    runtimes: Vec<Option<&'a str>>,
    redrive_counts: Vec<i64>,
}

impl<'a> ExecutionColumns<'a> {
    fn push(&mut self, row: &Row<'a>) -> Result<()> {
        let e = row.record;
        self.arns.push(&e.arn);
        self.statuses.push(e.status.as_str());
        self.versions.push(e.version as i64);
        self.docs.push(doc(e)?);
        self.runtimes.push(row.runtime);
        self.redrive_counts.push(i64::from(e.redrive_count));
        Ok(())
    }
}

async fn insert_events<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    (arns, ids, bodies): &(Vec<&str>, Vec<i64>, Vec<&str>),
) -> Result<()> {
    if arns.is_empty() {
        return Ok(());
    }
    tx.execute(stmt, &[arns, ids, bodies]).await?;
    Ok(())
}

async fn upsert_lanes<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    lanes: &BTreeMap<(&str, &str), &str>,
) -> Result<()> {
    if lanes.is_empty() {
        return Ok(());
    }
    let arns: Vec<&str> = lanes.keys().map(|k| k.0).collect();
    let paths: Vec<&str> = lanes.keys().map(|k| k.1).collect();
    let bodies: Vec<&str> = lanes.values().copied().collect();
    tx.execute(stmt, &[&arns, &paths, &bodies]).await?;
    Ok(())
}

async fn set_outcomes<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    outcomes: &BTreeMap<(&str, i64), &str>,
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let tokens: Vec<&str> = outcomes.keys().map(|k| k.0).collect();
    let indexes: Vec<i64> = outcomes.keys().map(|k| k.1).collect();
    let values: Vec<&str> = outcomes.values().copied().collect();
    tx.execute(stmt, &[&tokens, &indexes, &values]).await?;
    Ok(())
}

async fn withdraw_tasks<C: GenericClient>(tx: &C, stmt: &Statement, ended: &[&str]) -> Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    tx.execute(stmt, &[&ended]).await?;
    Ok(())
}

async fn set_items<C: GenericClient>(
    tx: &C,
    stmt: &Statement,
    items: &BTreeMap<(&str, i64), Option<&str>>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let arns: Vec<&str> = items.keys().map(|k| k.0).collect();
    let indexes: Vec<i64> = items.keys().map(|k| k.1).collect();
    let results: Vec<Option<&str>> = items.values().copied().collect();
    tx.execute(stmt, &[&arns, &indexes, &results]).await?;
    Ok(())
}
