//! The shared store: PostgreSQL, for several nodes on one database.
//!
//! tokio-postgres with a deadpool pool: an async driver that pipelines the statements of a
//! batch on one connection, and a pool that reconnects by itself. (sqlx would add compile-time
//! query checking against a live database and a second SQL toolkit beside rusqlite; this store
//! needs neither.) Transitions go through one writer task that group-commits them (see
//! `writer`); everything else runs on pooled connections, as PostgreSQL serialises it.

mod announce;
mod lease;
mod listen;
mod schema;
mod shards;
mod tls;
mod writer;

pub use lease::{Held, LeaseOptions};

#[cfg(any(test, feature = "test-util"))]
pub mod local;
#[cfg(test)]
mod tests;

use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::{
    ActivityRecord, ActivityTaskRow, AliasRecord, ClaimedTask, Error, ExecutionFilter,
    ExecutionRecord, HeldShards, InboxSignal, LaneRow, MapRunItem, MapRunRecord, RedriveBatchItem,
    RedriveBatchRecord, Result, StartedElsewhere, StateMachineRecord, Store, StoredEvent,
    VersionRecord, Write,
};

/// Connections kept for reads and resource writes (the writer takes up to
/// [`writer::IN_FLIGHT`] more).
const POOL_SIZE: usize = 16;
/// Connections for claims of activity tasks (see [`Postgres::claims`]).
const CLAIMS: usize = 8;
/// Commits waiting for the writer before `commit` waits for room.
const QUEUE: usize = 4096;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::driver(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Error {
        Error::driver(e)
    }
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    /// Connections that commit without waiting for the WAL's flush (`synchronous_commit=off`),
    /// for claims of activity tasks, deletions of applied inbox signals and the notifications
    /// of offers committed (`announce::Bell`) only. A claim lost
    /// with a crash of the database is lost with everything committed after it, the claimed
    /// task's `TaskStarted` included (the WAL is one sequence; a `TaskStarted` for another
    /// node is in the claim's transaction): the task is offered again, as if never handed
    /// out.
    claims: Pool,
    writer: mpsc::Sender<(Vec<Write>, writer::Reply)>,
    announcer: announce::Announcer,
    /// Announces the offers committed with the writes that schedule them (active nodes).
    bell: Option<announce::Bell>,
    lease: Option<Lease>,
    shards: Option<Shards>,
}

/// How a node writes: alone (tests, tools), holding the one lease (an active node and
/// standbys), or holding shards among several active nodes.
enum Mode {
    Alone,
    Leased(LeaseOptions),
    Sharded(LeaseOptions),
}

/// What the writer checks every commit against (see `writer`).
#[derive(Clone)]
pub(super) enum Fence {
    None,
    Lease(Held),
    /// This node's id and the shards it holds.
    Shards(String, watch::Receiver<HeldShards>),
}

/// The shards this node holds (`shards`), their keeper, and the news of signals sent to
/// their inboxes (`listen`).
#[derive(Clone)]
struct Shards {
    node_id: String,
    held: watch::Receiver<HeldShards>,
    keeper: tokio::task::AbortHandle,
    news: listen::News,
}

/// The lease this node holds, the news of its loss, and its renewal.
#[derive(Clone)]
struct Lease {
    held: Held,
    lost: watch::Receiver<bool>,
    renewal: tokio::task::AbortHandle,
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// a key=value connection string), brings its schema up to date and starts the writer,
    /// unfenced: for a database no other node writes to (tests, tools). Must be called within a
    /// Tokio runtime, which runs the writer. The URL's `sslmode` and `sslrootcert` say how to
    /// use TLS, as with libpq (see `tls`).
    pub async fn connect(url: &str) -> Result<Postgres> {
        Postgres::open(url, Mode::Alone).await
    }

    /// Like [`Postgres::connect`], for a node among several: waits until it holds the lease
    /// (while another live node holds it, this one stands by), then fences every commit by
    /// it and keeps renewing it. See [`Postgres::lease_lost`].
    pub async fn connect_leased(url: &str, lease: LeaseOptions) -> Result<Postgres> {
        Postgres::open(url, Mode::Leased(lease)).await
    }

    /// Like [`Postgres::connect`], for one of several active nodes (experimental, see
    /// `shards`): returns after its first round of taking shards (at most a TTL) and keeps
    /// this node's fair share of the shards, which
    /// [`Store::shards`] reports; every commit of an execution is fenced by its shard's epoch.
    pub async fn connect_sharded(url: &str, lease: LeaseOptions) -> Result<Postgres> {
        Postgres::open(url, Mode::Sharded(lease)).await
    }

    async fn open(url: &str, mode: Mode) -> Result<Postgres> {
        let (config, tls) = tls::configure(url)?;
        let listener = (config.clone(), tls.clone());
        let mut unflushed = config.clone();
        let options = config.get_options().unwrap_or_default();
        unflushed.options(format!("{options} -c synchronous_commit=off").trim_start());
        let claims = pool_of(unflushed, tls.clone(), CLAIMS)?;
        let pool = pool_of(config, tls, POOL_SIZE + writer::IN_FLIGHT)?;
        let ran = schema::migrate(&mut pool.get().await?).await?;
        if ran > 0 {
            tracing::info!(migrations = ran, "postgres schema migrated");
        }
        let (lease, shards) = match mode {
            Mode::Leased(options) => {
                let held = lease::acquire(&pool, &options).await?;
                let (lost_tx, lost) = watch::channel(false);
                let renewal =
                    tokio::spawn(lease::renew(pool.clone(), options, held.clone(), lost_tx));
                let lease = Lease {
                    held,
                    lost,
                    renewal: renewal.abort_handle(),
                };
                (Some(lease), None)
            }
            Mode::Sharded(options) => {
                let (tx, held) = watch::channel(HeldShards::new());
                let (node_id, ttl) = (options.node_id.clone(), options.ttl);
                let keeper = tokio::spawn(shards::run(pool.clone(), options, tx));
                // The first round, so that a node alone starts with every shard; a node that
                // joins others gets its share as they give shards up, after this.
                let mut first = held.clone();
                let _ = tokio::time::timeout(ttl, first.wait_for(|h| !h.is_empty())).await;
                let news = listen::News::default();
                tokio::spawn(listen::run(listener.0, listener.1, news.clone()));
                let shards = Shards {
                    node_id,
                    held,
                    keeper: keeper.abort_handle(),
                    news,
                };
                (None, Some(shards))
            }
            Mode::Alone => (None, None),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let fence = match (&lease, &shards) {
            (Some(l), _) => Fence::Lease(l.held.clone()),
            (None, Some(s)) => Fence::Shards(s.node_id.clone(), s.held.clone()),
            (None, None) => Fence::None,
        };
        let bell = shards
            .is_some()
            .then(|| announce::Bell::start(claims.clone()));
        tokio::spawn(writer::run(pool.clone(), rx, fence));
        Ok(Postgres {
            announcer: announce::Announcer::start(pool.clone()),
            bell,
            pool,
            claims,
            writer: tx,
            lease,
            shards,
        })
    }

    /// Gives this node's shards up at a clean stop (with [`Postgres::connect_sharded`]), so
    /// that the other nodes take them at once rather than after the TTL. Call it once the
    /// engine has stopped committing.
    pub async fn release_shards(&self) -> Result<()> {
        let Some(shards) = &self.shards else {
            return Ok(());
        };
        shards.keeper.abort();
        let held = shards.held.borrow().clone();
        shards::release(&self.pool, &shards.node_id, &held).await
    }

    /// An execution from `definition, runtime, doc, input, shard` (the first two may be
    /// empty); its shard is kept when the store is sharded.
    fn decode(&self, row: &Row) -> Result<ExecutionRecord> {
        let mut record = decode_execution(row)?;
        if self.shards.is_some() {
            record.shard = Some(shards::shard_number(row.try_get(4)?));
        }
        Ok(record)
    }

    /// The lease this node holds (with [`Postgres::connect_leased`]).
    pub fn lease(&self) -> Option<&Held> {
        self.lease.as_ref().map(|l| &l.held)
    }

    /// Gives the lease up at a clean stop, so that a standby takes over at once rather than
    /// after the TTL: renewal stops (which [`Postgres::lease_lost`] reports) and the lease
    /// expires now. Call it once the engine has stopped committing.
    pub async fn release_lease(&self) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        lease.renewal.abort();
        lease::release(&self.pool, &lease.held).await
    }

    /// Resolves when this node has lost its lease (another node took it, or it could not be
    /// renewed within its TTL); never without a lease. From then on every commit fails with
    /// [`Error::Fenced`]: the node should stop.
    pub async fn lease_lost(&self) {
        match &self.lease {
            Some(lease) => {
                let mut lost = lease.lost.clone();
                let _ = lost.wait_for(|lost| *lost).await;
            }
            None => std::future::pending().await,
        }
    }

    /// A transaction for a resource write (state machines, versions, aliases, activities,
    /// Map Runs, bulk redrives), fenced by this node's lease as the writer's are: it fails
    /// with [`Error::Fenced`] once another node took the lease, and holds the lease row until
    /// it ends, so a takeover waits for it.
    async fn begin<'c>(&self, client: &'c mut Client) -> Result<Transaction<'c>> {
        let tx = client.transaction().await?;
        if let Some(lease) = &self.lease {
            lease::fence(&tx, &lease.held).await?;
        }
        Ok(tx)
    }

    /// One resource write statement, in a transaction of [`Postgres::begin`].
    async fn write(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        let stmt = tx.prepare_cached(sql).await?;
        let n = tx.execute(&stmt, params).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, params).await?)
    }

    /// Documents from column 0 of a query's rows.
    async fn docs<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>> {
        let rows = self.query(sql, params).await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(r.try_get::<_, &str>(0)?)?))
            .collect()
    }

    async fn doc<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>> {
        Ok(self.docs(sql, params).await?.pop())
    }
}

/// A pool of at most `size` connections made with `config`.
fn pool_of(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(Error::driver)
}

/// `0` rows changed means `missing`.
fn one(changed: u64, missing: Error) -> Result<()> {
    match changed {
        0 => Err(missing),
        _ => Ok(()),
    }
}

/// An execution from `definition, runtime, doc, input` (the first two may be empty).
fn decode_execution(row: &Row) -> Result<ExecutionRecord> {
    let mut record: ExecutionRecord = serde_json::from_str(row.try_get(2)?)?;
    record.definition = row.try_get(0)?;
    record.runtime = row.try_get(1)?;
    record.input = row.try_get(3)?;
    Ok(record)
}

/// An activity task from `activity_arn, execution_arn, task_id, token, input, scheduled`.
fn decode_activity_task(row: &Row) -> Result<ActivityTaskRow> {
    Ok(ActivityTaskRow {
        activity_arn: row.try_get(0)?,
        execution_arn: row.try_get(1)?,
        task_id: unsigned(row, 2)?,
        token: row.try_get(3)?,
        input: row.try_get(4)?,
        scheduled: row.try_get(5)?,
    })
}

/// Activity tasks as the six array parameters `activity_arn, execution_arn, task_id, token,
/// input, scheduled` of an `unnest` insert.
struct TaskColumns<'a> {
    text: [Vec<&'a str>; 4],
    task_ids: Vec<i64>,
    scheduled: Vec<i64>,
}

impl<'a> TaskColumns<'a> {
    fn new(rows: &[&'a ActivityTaskRow]) -> TaskColumns<'a> {
        let column = |f: fn(&'a ActivityTaskRow) -> &'a str| rows.iter().map(|r| f(r)).collect();
        TaskColumns {
            text: [
                column(|r| &r.activity_arn),
                column(|r| &r.execution_arn),
                column(|r| &r.token),
                column(|r| &r.input),
            ],
            task_ids: rows.iter().map(|r| big(r.task_id)).collect(),
            scheduled: rows.iter().map(|r| r.scheduled).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        let [activity, execution, token, input] = &self.text;
        [
            activity,
            execution,
            &self.task_ids,
            token,
            input,
            &self.scheduled,
        ]
    }
}

/// When the oldest offered task of `activity_arn` was scheduled (the first along the index,
/// offered first).
async fn oldest_offered(
    client: &deadpool_postgres::Client,
    activity_arn: &str,
) -> Result<Option<i64>> {
    let look = client
        .prepare_cached(
            "SELECT scheduled FROM activity_tasks WHERE activity_arn = $1
             ORDER BY id LIMIT 1",
        )
        .await?;
    let row = client.query_opt(&look, &[&activity_arn]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Commits the claim of `task` in `tx`, with the inbox signal of its start (`started`) when
/// its execution runs on another node; `None` when that execution ended meanwhile,
/// withdrawing the task.
async fn hand_out(
    tx: Transaction<'_>,
    task: ActivityTaskRow,
    started: Option<String>,
) -> Result<Option<ClaimedTask>> {
    let Some(body) = started else {
        tx.commit().await?;
        return Ok(Some(ClaimedTask {
            task,
            started_sent: false,
        }));
    };
    let signal = announce::Announced::Signal {
        execution_arn: task.execution_arn.clone(),
        body,
    };
    let sent = announce::write_in(&tx, &[signal]).await?;
    fail::fail_point!("activity-hand-out", |_| std::process::abort());
    tx.commit().await?;
    Ok((sent.first() == Some(&true)).then_some(ClaimedTask {
        task,
        started_sent: true,
    }))
}

/// An inbox signal from `id, execution_arn, body`.
fn decode_signal(row: &Row) -> Result<InboxSignal> {
    Ok(InboxSignal {
        id: unsigned(row, 0)?,
        execution_arn: row.try_get(1)?,
        body: row.try_get(2)?,
    })
}

/// `u64` counts and indexes as PostgreSQL's `BIGINT`, saturating.
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `BIGINT` column written by [`big`], read back as a `u64` (a negative one as 0).
fn unsigned(row: &Row, column: usize) -> Result<u64> {
    Ok(u64::try_from(row.try_get::<_, i64>(column)?).unwrap_or_default())
}

#[async_trait::async_trait]
impl Store for Postgres {
    async fn create_state_machine(&self, sm: StateMachineRecord) -> Result<()> {
        let doc = serde_json::to_string(&sm)?;
        let n = self
            .write(
                "INSERT INTO state_machines(arn, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&sm.arn, &doc],
            )
            .await?;
        one(n, Error::AlreadyExists)
    }

    async fn update_state_machine(&self, sm: StateMachineRecord) -> Result<()> {
        let doc = serde_json::to_string(&sm)?;
        let n = self
            .write(
                "UPDATE state_machines SET doc = $2 WHERE arn = $1",
                &[&sm.arn, &doc],
            )
            .await?;
        one(n, Error::NotFound)
    }

    async fn get_state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>> {
        self.doc("SELECT doc FROM state_machines WHERE arn = $1", &[&arn])
            .await
    }

    async fn delete_state_machine(&self, arn: &str) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        for sql in [
            "DELETE FROM state_machines WHERE arn = $1",
            "DELETE FROM versions WHERE sm_arn = $1",
            "DELETE FROM version_counters WHERE sm_arn = $1",
            "DELETE FROM aliases WHERE sm_arn = $1",
        ] {
            tx.execute(sql, &[&arn]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>> {
        self.docs("SELECT doc FROM state_machines ORDER BY arn", &[])
            .await
    }

    async fn create_version(&self, version: VersionRecord) -> Result<VersionRecord> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        let row = tx
            .query_one(
                "INSERT INTO version_counters(sm_arn, last) VALUES ($1, 1)
                 ON CONFLICT(sm_arn) DO UPDATE SET last = version_counters.last + 1
                 RETURNING last",
                &[&version.state_machine_arn],
            )
            .await?;
        let number: i64 = row.try_get(0)?;
        let mut v = version;
        v.version = u64::try_from(number).unwrap_or_default();
        v.arn = format!("{}:{number}", v.state_machine_arn);
        tx.execute(
            "INSERT INTO versions(arn, sm_arn, number, doc) VALUES ($1, $2, $3, $4)",
            &[
                &v.arn,
                &v.state_machine_arn,
                &number,
                &serde_json::to_string(&v)?,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(v)
    }

    async fn get_version(&self, arn: &str) -> Result<Option<VersionRecord>> {
        self.doc("SELECT doc FROM versions WHERE arn = $1", &[&arn])
            .await
    }

    async fn list_versions(&self, state_machine_arn: &str) -> Result<Vec<VersionRecord>> {
        self.docs(
            "SELECT doc FROM versions WHERE sm_arn = $1 ORDER BY number DESC",
            &[&state_machine_arn],
        )
        .await
    }

    async fn delete_version(&self, arn: &str) -> Result<()> {
        self.write("DELETE FROM versions WHERE arn = $1", &[&arn])
            .await?;
        Ok(())
    }

    async fn create_alias(&self, alias: AliasRecord) -> Result<()> {
        let doc = serde_json::to_string(&alias)?;
        let n = self
            .write(
                "INSERT INTO aliases(arn, sm_arn, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&alias.arn, &alias.state_machine_arn, &doc],
            )
            .await?;
        one(n, Error::AlreadyExists)
    }

    async fn update_alias(&self, alias: AliasRecord) -> Result<()> {
        let doc = serde_json::to_string(&alias)?;
        let n = self
            .write(
                "UPDATE aliases SET doc = $2 WHERE arn = $1",
                &[&alias.arn, &doc],
            )
            .await?;
        one(n, Error::NotFound)
    }

    async fn get_alias(&self, arn: &str) -> Result<Option<AliasRecord>> {
        self.doc("SELECT doc FROM aliases WHERE arn = $1", &[&arn])
            .await
    }

    async fn delete_alias(&self, arn: &str) -> Result<()> {
        self.write("DELETE FROM aliases WHERE arn = $1", &[&arn])
            .await?;
        Ok(())
    }

    async fn list_aliases(&self, state_machine_arn: &str) -> Result<Vec<AliasRecord>> {
        self.docs(
            "SELECT doc FROM aliases WHERE sm_arn = $1 ORDER BY arn",
            &[&state_machine_arn],
        )
        .await
    }

    async fn create_activity(&self, activity: ActivityRecord) -> Result<()> {
        let doc = serde_json::to_string(&activity)?;
        let n = self
            .write(
                "INSERT INTO activities(arn, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&activity.arn, &doc],
            )
            .await?;
        one(n, Error::AlreadyExists)
    }

    async fn update_activity(&self, activity: ActivityRecord) -> Result<()> {
        let doc = serde_json::to_string(&activity)?;
        let n = self
            .write(
                "UPDATE activities SET doc = $2 WHERE arn = $1",
                &[&activity.arn, &doc],
            )
            .await?;
        one(n, Error::NotFound)
    }

    async fn get_activity(&self, arn: &str) -> Result<Option<ActivityRecord>> {
        self.doc("SELECT doc FROM activities WHERE arn = $1", &[&arn])
            .await
    }

    async fn delete_activity(&self, arn: &str) -> Result<()> {
        self.write("DELETE FROM activities WHERE arn = $1", &[&arn])
            .await?;
        Ok(())
    }

    async fn list_activities(&self) -> Result<Vec<ActivityRecord>> {
        self.docs("SELECT doc FROM activities ORDER BY arn", &[])
            .await
    }

    async fn task_token_key(&self) -> Result<[u8; 32]> {
        let rows = self
            .query(
                "SELECT value FROM secrets WHERE name = 'task_token_key'",
                &[],
            )
            .await?;
        let key: Vec<u8> = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => Vec::new(),
        };
        crate::secret_key(key)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<Vec<Result<()>>> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((writes, tx))
            .await
            .map_err(|_| Error::backend("the postgres writer stopped"))?;
        rx.await
            .map_err(|_| Error::backend("the postgres writer stopped"))?
    }

    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>> {
        let rows = self
            .query(
                "SELECT definition, runtime, doc, input, shard FROM executions WHERE arn = $1",
                &[&arn],
            )
            .await?;
        rows.first().map(|r| self.decode(r)).transpose()
    }

    async fn execution_lanes(&self, arn: &str) -> Result<Vec<LaneRow>> {
        let rows = self
            .query(
                "SELECT path, body FROM lanes WHERE execution_arn = $1",
                &[&arn],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LaneRow {
                    path: r.try_get(0)?,
                    body: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn list_executions(&self, f: ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let (after_date, after_arn) = match &f.after {
            Some(c) => (Some(c.start_date), Some(c.arn.as_str())),
            None => (None, None),
        };
        let limit = big(f.limit as u64);
        let status = f.status.map(|s| s.as_str());
        let rows = self
            .query(
                "SELECT '', '', doc, '', shard FROM executions
                 WHERE sm_arn = $1 AND ($2::text IS NULL OR status = $2)
                   AND ($3::bool IS NULL OR (redrive_count > 0) = $3)
                   AND ($4::text IS NULL OR version_arn = $4 OR alias_arn = $4)
                   AND ($5::text IS NULL OR map_run_arn = $5)
                   AND ($6::bigint IS NULL OR (start_date, arn) < ($6, $7::text))
                 ORDER BY start_date DESC, arn DESC LIMIT $8",
                &[
                    &f.state_machine_arn,
                    &status,
                    &f.redriven,
                    &f.qualifier,
                    &f.map_run_arn,
                    &after_date,
                    &after_arn,
                    &limit,
                ],
            )
            .await?;
        rows.iter().map(|r| self.decode(r)).collect()
    }

    async fn open_executions(&self) -> Result<Vec<ExecutionRecord>> {
        let rows = self
            .query(
                "SELECT definition, runtime, doc, input, shard FROM executions
                 WHERE status = 'RUNNING'",
                &[],
            )
            .await?;
        rows.iter().map(|r| self.decode(r)).collect()
    }

    fn shards(&self) -> Option<watch::Receiver<HeldShards>> {
        self.shards.as_ref().map(|s| s.held.clone())
    }

    async fn send_signal(&self, execution_arn: &str, body: String) -> Result<bool> {
        let signal = announce::Announced::Signal {
            execution_arn: execution_arn.to_owned(),
            body,
        };
        self.announcer.send(signal).await
    }

    async fn inbox(&self, shards: &[u32], limit: usize) -> Result<Vec<InboxSignal>> {
        let shards: Vec<i32> = shards
            .iter()
            .filter_map(|s| i32::try_from(*s).ok())
            .collect();
        let rows = self
            .query(
                "SELECT id, execution_arn, body FROM inbox WHERE shard = ANY($1)
                 ORDER BY id LIMIT $2",
                &[&shards, &big(limit as u64)],
            )
            .await?;
        rows.iter().map(decode_signal).collect()
    }

    async fn signals_for(&self, execution_arn: &str) -> Result<Vec<InboxSignal>> {
        let rows = self
            .query(
                "SELECT id, execution_arn, body FROM inbox
                 WHERE shard = (SELECT shard FROM executions WHERE arn = $1)
                     AND execution_arn = $1
                 ORDER BY id",
                &[&execution_arn],
            )
            .await?;
        rows.iter().map(decode_signal).collect()
    }

    async fn delete_signals(&self, ids: &[u64]) -> Result<()> {
        // Without waiting for the WAL flush (see `claims`): a deletion lost with a crash of the
        // database has the signal applied again, which changes nothing.
        let client = self.claims.get().await?;
        let delete = client
            .prepare_cached("DELETE FROM inbox WHERE id = ANY($1)")
            .await?;
        let ids: Vec<i64> = ids.iter().map(|id| big(*id)).collect();
        client.execute(&delete, &[&ids]).await?;
        Ok(())
    }

    fn signals_arrived(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.shards.as_ref().map(|s| s.news.signals.clone())
    }

    fn shares_activity_tasks(&self) -> bool {
        self.shards.is_some()
    }

    fn announce_offered(&self, activity_arn: &str) {
        if let Some(bell) = &self.bell {
            bell.offered(activity_arn);
        }
    }

    async fn offer_activity_task(&self, task: ActivityTaskRow) -> Result<()> {
        self.announcer
            .send(announce::Announced::Offer(task))
            .await?;
        Ok(())
    }

    async fn oldest_offered_task(&self, activity_arn: &str) -> Result<Option<i64>> {
        let client = self.claims.get().await?;
        oldest_offered(&client, activity_arn).await
    }

    async fn claim_activity_task(
        &self,
        activity_arn: &str,
        before: Option<i64>,
        started: &StartedElsewhere<'_>,
    ) -> Result<Option<ClaimedTask>> {
        let mut client = self.claims.get().await?;
        // Most polls find nothing, or nothing old enough: one look first, without a
        // transaction's BEGIN and ROLLBACK.
        let Some(oldest) = oldest_offered(&client, activity_arn).await? else {
            return Ok(None);
        };
        let cutoff = before.unwrap_or(i64::MAX);
        if oldest >= cutoff {
            return Ok(None);
        }
        loop {
            let tx = client.transaction().await?;
            let claim = tx
                .prepare_cached(
                    // The oldest first, along the index (no sort, no read of the executions:
                    // a task of one that ended is skipped, and is gone then).
                    "DELETE FROM activity_tasks WHERE id = (
                         SELECT id FROM activity_tasks WHERE activity_arn = $1
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) AND scheduled < $2
                     RETURNING activity_arn, execution_arn, task_id, token, input, scheduled",
                )
                .await?;
            let rows = tx.query(&claim, &[&activity_arn, &cutoff]).await?;
            let Some(task) = rows.first().map(decode_activity_task).transpose()? else {
                return Ok(None);
            };
            let body = started(&task.execution_arn, task.task_id);
            if let Some(claimed) = hand_out(tx, task, body).await? {
                return Ok(Some(claimed));
            }
            // Its execution ended meanwhile, withdrawing the task: take the next one.
        }
    }

    async fn claim_offered_task(
        &self,
        execution_arn: &str,
        task_id: u64,
        started: &StartedElsewhere<'_>,
    ) -> Result<Option<ClaimedTask>> {
        // By the key: no walk over the index of the activity's tasks, which claimed and
        // withdrawn tasks leave dead entries in until a vacuum.
        const CLAIM: &str = "DELETE FROM activity_tasks WHERE id = (
                 SELECT id FROM activity_tasks WHERE execution_arn = $1 AND task_id = $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING activity_arn, execution_arn, task_id, token, input, scheduled";
        let mut client = self.claims.get().await?;
        let key: [&(dyn ToSql + Sync); 2] = [&execution_arn, &big(task_id)];
        let Some(body) = started(execution_arn, task_id) else {
            // Its execution runs here, which records the start itself: one statement.
            let claim = client.prepare_cached(CLAIM).await?;
            let rows = client.query(&claim, &key).await?;
            let task = rows.first().map(decode_activity_task).transpose()?;
            return Ok(task.map(|task| ClaimedTask {
                task,
                started_sent: false,
            }));
        };
        let tx = client.transaction().await?;
        let claim = tx.prepare_cached(CLAIM).await?;
        let rows = tx.query(&claim, &key).await?;
        match rows.first().map(decode_activity_task).transpose()? {
            Some(task) => hand_out(tx, task, Some(body)).await,
            None => Ok(None),
        }
    }

    async fn offered_activity_tasks(&self, activity_arn: &str) -> Result<Vec<ActivityTaskRow>> {
        let rows = self
            .query(
                "SELECT t.activity_arn, t.execution_arn, t.task_id, t.token, t.input, t.scheduled
                 FROM activity_tasks t
                 JOIN executions e ON e.arn = t.execution_arn AND e.status = 'RUNNING'
                 WHERE t.activity_arn = $1 ORDER BY t.id",
                &[&activity_arn],
            )
            .await?;
        rows.iter().map(decode_activity_task).collect()
    }

    fn activity_tasks_offered(
        &self,
        activity_arn: &str,
    ) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.shards.as_ref().map(|s| s.news.activity(activity_arn))
    }

    async fn open_executions_in(&self, shards: &[u32]) -> Result<Vec<ExecutionRecord>> {
        let shards: Vec<i32> = shards
            .iter()
            .filter_map(|s| i32::try_from(*s).ok())
            .collect();
        let rows = self
            .query(
                "SELECT definition, runtime, doc, input, shard FROM executions
                 WHERE status = 'RUNNING' AND shard = ANY($1)",
                &[&shards],
            )
            .await?;
        rows.iter().map(|r| self.decode(r)).collect()
    }

    async fn history(
        &self,
        arn: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let rows = self
            .query(
                "SELECT id, body FROM events WHERE execution_arn = $1 AND id >= $2 AND id <= $3
                 ORDER BY id LIMIT $4",
                &[&arn, &big(from), &big(to), &big(limit as u64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    id: unsigned(r, 0)?,
                    body: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn delete_execution(&self, arn: &str) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        for sql in [
            "DELETE FROM events WHERE execution_arn = $1",
            "DELETE FROM lanes WHERE execution_arn = $1",
            "DELETE FROM executions WHERE arn = $1",
        ] {
            tx.execute(sql, &[&arn]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_map_run(&self, run: MapRunRecord, inputs: Vec<String>) -> Result<()> {
        let doc = serde_json::to_string(&run)?;
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        let n = tx
            .execute(
                "INSERT INTO map_runs(arn, execution_arn, doc) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&run.arn, &run.execution_arn, &doc],
            )
            .await?;
        one(n, Error::AlreadyExists)?;
        let indexes: Vec<i64> = (0..big(inputs.len() as u64)).collect();
        tx.execute(
            "INSERT INTO map_run_items(map_run_arn, idx, input)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[])",
            &[&run.arn, &indexes, &inputs],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_map_run(&self, run: MapRunRecord) -> Result<()> {
        let doc = serde_json::to_string(&run)?;
        let n = self
            .write(
                "UPDATE map_runs SET doc = $2 WHERE arn = $1",
                &[&run.arn, &doc],
            )
            .await?;
        one(n, Error::NotFound)
    }

    async fn get_map_run(&self, arn: &str) -> Result<Option<MapRunRecord>> {
        self.doc("SELECT doc FROM map_runs WHERE arn = $1", &[&arn])
            .await
    }

    async fn map_run_items(&self, arn: &str, from: u64, limit: usize) -> Result<Vec<MapRunItem>> {
        let rows = self
            .query(
                "SELECT idx, input, result FROM map_run_items
                 WHERE map_run_arn = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                &[&arn, &big(from), &big(limit as u64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MapRunItem {
                    index: unsigned(r, 0)?,
                    input: r.try_get(1)?,
                    result: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>> {
        self.docs(
            "SELECT doc FROM map_runs WHERE execution_arn = $1 ORDER BY seq",
            &[&execution_arn],
        )
        .await
    }

    async fn create_redrive_batch(
        &self,
        batch: RedriveBatchRecord,
        executions: Vec<String>,
    ) -> Result<()> {
        let doc = serde_json::to_string(&batch)?;
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client).await?;
        let n = tx
            .execute(
                "INSERT INTO redrive_batches(token, finished, doc) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&batch.token, &batch.finish_date.is_some(), &doc],
            )
            .await?;
        one(n, Error::AlreadyExists)?;
        let indexes: Vec<i64> = (0..big(executions.len() as u64)).collect();
        tx.execute(
            "INSERT INTO redrive_batch_items(token, idx, execution_arn)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[])",
            &[&batch.token, &indexes, &executions],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_redrive_batch(&self, batch: RedriveBatchRecord) -> Result<()> {
        let doc = serde_json::to_string(&batch)?;
        let n = self
            .write(
                "UPDATE redrive_batches SET finished = $2, doc = $3 WHERE token = $1",
                &[&batch.token, &batch.finish_date.is_some(), &doc],
            )
            .await?;
        one(n, Error::NotFound)
    }

    async fn get_redrive_batch(&self, token: &str) -> Result<Option<RedriveBatchRecord>> {
        self.doc(
            "SELECT doc FROM redrive_batches WHERE token = $1",
            &[&token],
        )
        .await
    }

    async fn unfinished_redrive_batches(&self) -> Result<Vec<RedriveBatchRecord>> {
        self.docs(
            "SELECT doc FROM redrive_batches WHERE NOT finished ORDER BY token",
            &[],
        )
        .await
    }

    async fn claim_redrive_batch(
        &self,
        token: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let millis = big(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let n = self
            .write(
                "UPDATE redrive_batches
                 SET owner = $2, expires_at = now() + $3::bigint * interval '1 millisecond'
                 WHERE token = $1 AND NOT finished
                     AND (owner IS NULL OR owner = $2 OR expires_at <= now())",
                &[&token, &owner, &millis],
            )
            .await?;
        Ok(n == 1)
    }

    async fn redrive_batch_items(
        &self,
        token: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RedriveBatchItem>> {
        let rows = self
            .query(
                "SELECT idx, execution_arn, outcome FROM redrive_batch_items
                 WHERE token = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                &[&token, &big(from), &big(limit as u64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RedriveBatchItem {
                    index: unsigned(r, 0)?,
                    execution_arn: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                })
            })
            .collect()
    }
}
