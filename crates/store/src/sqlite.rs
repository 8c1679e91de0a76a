//! The embedded store: SQLite in WAL mode.
//!
//! One writer thread owns the write connection and drains its queue into one transaction per
//! batch (group commit: one fsync for every transition that arrived meanwhile). Reads run on a
//! small pool of read connections, which WAL lets proceed while the writer commits.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::{
    ActivityRecord, AliasRecord, Error, ExecutionFilter, ExecutionRecord, LaneRow, MapRunItem,
    MapRunRecord, RedriveBatchItem, RedriveBatchRecord, Result, StateMachineRecord, Store,
    StoredEvent, VersionRecord, Write,
};

/// Numbered schema migrations: `MIGRATIONS[i]` takes a database whose `user_version` is `i`
/// to `i + 1`, in the transaction that sets the new number. Append only; never edit one that
/// shipped. The first is the layout of the first numbered version; it creates only what is
/// missing, because databases from before numbered migrations (`user_version` 0) already have
/// tables, whose older shapes [`upgrade_unnumbered`] brings to it.
const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2, SCHEMA_3, SCHEMA_4];

const SCHEMA_1: &str = "
CREATE TABLE IF NOT EXISTS state_machines(arn TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities(arn TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions(
    arn TEXT PRIMARY KEY,
    sm_arn TEXT NOT NULL,
    number INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_sm ON versions(sm_arn, number DESC);
CREATE TABLE IF NOT EXISTS version_counters(sm_arn TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aliases(arn TEXT PRIMARY KEY, sm_arn TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aliases_by_sm ON aliases(sm_arn, arn);
CREATE TABLE IF NOT EXISTS executions(
    arn TEXT PRIMARY KEY,
    sm_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    start_date INTEGER NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    runtime TEXT NOT NULL,
    doc TEXT NOT NULL,
    input TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_sm ON executions(sm_arn, start_date DESC, arn DESC);
CREATE INDEX IF NOT EXISTS executions_open ON executions(status) WHERE status = 'RUNNING';
CREATE TABLE IF NOT EXISTS events(
    execution_arn TEXT NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(execution_arn, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lanes(
    execution_arn TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(execution_arn, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS map_runs(
    arn TEXT PRIMARY KEY,
    execution_arn TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS map_runs_by_execution ON map_runs(execution_arn);
CREATE TABLE IF NOT EXISTS map_run_items(
    map_run_arn TEXT NOT NULL,
    idx INTEGER NOT NULL,
    input TEXT NOT NULL,
    result TEXT,
    PRIMARY KEY(map_run_arn, idx)
) WITHOUT ROWID;
";

/// Bulk redrives (stepwise's extension): the batch, and one row per execution with its
/// outcome.
const SCHEMA_2: &str = "
CREATE TABLE redrive_batches(
    token TEXT PRIMARY KEY,
    finished INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE redrive_batch_items(
    token TEXT NOT NULL,
    idx INTEGER NOT NULL,
    execution_arn TEXT NOT NULL,
    outcome TEXT,
    PRIMARY KEY(token, idx)
) WITHOUT ROWID;
";

/// The secret task tokens are sealed with: 32 bytes from SQLite's generator (seeded by the
/// operating system), made once and kept for the database's life.
const SCHEMA_3: &str = "
CREATE TABLE secrets(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
INSERT INTO secrets(name, value) VALUES ('task_token_key', randomblob(32));
";

/// The node that drives a bulk redrive, until when (epoch ms; `claim_redrive_batch`).
const SCHEMA_4: &str = "
ALTER TABLE redrive_batches ADD COLUMN owner TEXT;
ALTER TABLE redrive_batches ADD COLUMN expires_at INTEGER;
";

type CommitReply = oneshot::Sender<Result<Vec<Result<()>>>>;

enum Job {
    /// Transitions: batched with every other queued commit into one transaction.
    Commit(Vec<Write>, CommitReply),
    /// Any other write, run alone.
    Other(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Most commits one transaction takes; bounds the latency of the first in a burst.
const MAX_BATCH: usize = 4096;

/// How often the checkpointer thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// WAL pages after which the writer checkpoints itself (SQLite's default is 1,000). The
/// checkpointer has usually copied them already, so that checkpoint is short; it lets the
/// WAL start over, which a checkpoint running beside a busy writer cannot.
const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    durable: bool,
    /// Keeps the directory of a throw-away (`memory`) store alive.
    _temp: Option<tempfile::TempDir>,
}

impl Sqlite {
    /// Opens (creating if needed) the store in `dir`. A directory and database it creates
    /// are its owner's alone (0700, 0600; SQLite gives its WAL files the database's mode).
    pub fn open(dir: &Path) -> Result<Sqlite> {
        let io = Error::driver::<std::io::Error>;
        let path = dir.join("stepwise.db");
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir).map_err(io)?;
        Sqlite::start(path, true, None)
    }

    /// A store that lives in a temporary directory and skips fsync: for tests only.
    pub fn temporary() -> Result<Sqlite> {
        let dir = tempfile::tempdir().map_err(Error::driver)?;
        let path = dir.path().join("stepwise.db");
        Sqlite::start(path, false, Some(dir))
    }

    fn start(path: PathBuf, durable: bool, temp: Option<tempfile::TempDir>) -> Result<Sqlite> {
        let mut conn = connect(&path, durable)?;
        migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let checkpointer = connect(&path, durable)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(&mut conn, &rx))
            .map_err(Error::driver)?;
        let inner = Arc::new(Inner {
            path,
            writer: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
            durable,
            _temp: temp,
        });
        let alive = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &alive))
            .map_err(Error::driver)?;
        Ok(Sqlite { inner })
    }

    /// Runs `f` on the writer thread.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Other(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        self.send(job)?;
        rx.await
            .map_err(|_| Error::backend("writer thread stopped"))?
    }

    fn send(&self, job: Job) -> Result<()> {
        self.inner
            .writer
            .lock()
            .map_err(|_| Error::backend("writer lock poisoned"))?
            .send(job)
            .map_err(|_| Error::backend("writer thread stopped"))
    }

    /// Runs `f` on a read connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match conn {
                Some(c) => c,
                None => connect(&inner.path, inner.durable)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(Error::driver)?
    }
}

/// Resource tables (`state_machines`, `activities`) hold one JSON document per ARN.
/// `table` is always one of our constants, never user input.
impl Sqlite {
    async fn insert_doc(&self, table: &'static str, arn: String, doc: String) -> Result<()> {
        self.write(move |conn| {
            let sql = format!("INSERT OR IGNORE INTO {table}(arn, doc) VALUES (?1, ?2)");
            match conn.execute(&sql, params![arn, doc])? {
                0 => Err(Error::AlreadyExists),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn update_doc(&self, table: &'static str, arn: String, doc: String) -> Result<()> {
        self.write(move |conn| {
            let sql = format!("UPDATE {table} SET doc = ?2 WHERE arn = ?1");
            match conn.execute(&sql, params![arn, doc])? {
                0 => Err(Error::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_doc<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        arn: &str,
    ) -> Result<Option<T>> {
        let arn = arn.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT doc FROM {table} WHERE arn = ?1");
            let doc: Option<String> = conn
                .prepare_cached(&sql)?
                .query_row([arn], |r| r.get(0))
                .optional()?;
            doc.map(|d| serde_json::from_str(&d).map_err(Error::from))
                .transpose()
        })
        .await
    }

    async fn delete_doc(&self, table: &'static str, arn: &str) -> Result<()> {
        let arn = arn.to_owned();
        self.write(move |conn| {
            conn.execute(&format!("DELETE FROM {table} WHERE arn = ?1"), [arn])?;
            Ok(())
        })
        .await
    }

    async fn list_docs<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
    ) -> Result<Vec<T>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT doc FROM {table} ORDER BY arn"))?;
            let docs = stmt.query_map([], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::driver(e)
    }
}

/// Brings the database to the last of [`MIGRATIONS`]; refuses one a newer build migrated.
fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(Error::Corrupt(format!(
            "the database has schema version {version}, newer than this build's {}: run a newer stepwise",
            MIGRATIONS.len()
        )));
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if done == 0 {
            upgrade_unnumbered(&tx)?;
        }
        tx.pragma_update(None, "user_version", (done + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Older layouts of databases from before numbered migrations, told apart by their shape
/// (the only time the store probes one): Map Run inputs kept as one JSON array in
/// `map_runs.inputs` move into `map_run_items`; executions get their `input` column (rows
/// written before keep the input in `doc`, NULL here, which still reads).
fn upgrade_unnumbered(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let has_column = |table: &str, column: &str| -> Result<bool> {
        let n: i64 = tx.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    if has_column("map_runs", "inputs")? {
        tx.execute_batch(
            "INSERT OR IGNORE INTO map_run_items(map_run_arn, idx, input)
                 SELECT m.arn, CAST(j.key AS INTEGER), j.value FROM map_runs m, json_each(m.inputs) j;
             ALTER TABLE map_runs DROP COLUMN inputs;",
        )?;
    }
    if !has_column("executions", "input")? {
        tx.execute_batch("ALTER TABLE executions ADD COLUMN input TEXT")?;
    }
    Ok(())
}

fn connect(path: &Path, durable: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn insert_events(tx: &rusqlite::Transaction<'_>, arn: &str, events: &[StoredEvent]) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO events(execution_arn, id, body) VALUES (?1, ?2, ?3)")?;
    for e in events {
        stmt.execute(params![arn, e.id as i64, e.body])?;
    }
    Ok(())
}

fn upsert_lanes(tx: &rusqlite::Transaction<'_>, arn: &str, lanes: &[LaneRow]) -> Result<()> {
    if lanes.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO lanes(execution_arn, path, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(execution_arn, path) DO UPDATE SET body = excluded.body",
    )?;
    for lane in lanes {
        stmt.execute(params![arn, lane.path, lane.body])?;
    }
    Ok(())
}

/// The execution row's `doc`: the record but its definition, checkpoint and input (own
/// columns).
fn execution_doc(e: &ExecutionRecord) -> Result<String> {
    Ok(serde_json::to_string(e)?)
}

fn apply(tx: &rusqlite::Transaction<'_>, write: &Write) -> Result<()> {
    match write {
        // Activity tasks stay in the memory of the node that runs their execution: the
        // offers are not written.
        Write::CreateExecution {
            execution: e,
            events,
            lanes,
            ..
        } => {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO executions(arn, sm_arn, status, start_date, version, definition, runtime, doc, input)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    e.arn,
                    e.state_machine_arn,
                    e.status.as_str(),
                    e.start_date,
                    e.version as i64,
                    e.definition,
                    e.runtime,
                    execution_doc(e)?,
                    e.input
                ],
            )?;
            if inserted == 0 {
                return Err(Error::AlreadyExists);
            }
            insert_events(tx, &e.arn, events)?;
            upsert_lanes(tx, &e.arn, lanes)
        }
        Write::Transition {
            execution: e,
            events,
            lanes,
            ..
        }
        | Write::TakeTask {
            execution: e,
            events,
            lanes,
            ..
        } => {
            update_execution(tx, e, Some(&e.runtime), events)?;
            upsert_lanes(tx, &e.arn, lanes)
        }
        Write::Redefine {
            execution: e,
            events,
            lanes,
        } => {
            update_execution(tx, e, Some(&e.runtime), events)?;
            tx.prepare_cached("UPDATE executions SET definition = ?2 WHERE arn = ?1")?
                .execute(params![e.arn, e.definition])?;
            upsert_lanes(tx, &e.arn, lanes)
        }
        Write::Record {
            execution: e,
            events,
        } => update_execution(tx, e, None, events),
        Write::MapRunItem {
            map_run_arn,
            index,
            result,
        } => {
            tx.prepare_cached(
                "UPDATE map_run_items SET result = ?3 WHERE map_run_arn = ?1 AND idx = ?2",
            )?
            .execute(params![map_run_arn, *index as i64, result])?;
            Ok(())
        }
        Write::RedriveBatchItem {
            token,
            index,
            outcome,
        } => {
            tx.prepare_cached(
                "UPDATE redrive_batch_items SET outcome = ?3 WHERE token = ?1 AND idx = ?2",
            )?
            .execute(params![token, *index as i64, outcome])?;
            Ok(())
        }
    }
}

/// The fenced update of an execution row (and its new events); `runtime: None` keeps the
/// stored checkpoint.
fn update_execution(
    tx: &rusqlite::Transaction<'_>,
    e: &ExecutionRecord,
    runtime: Option<&String>,
    events: &[StoredEvent],
) -> Result<()> {
    let updated = tx.execute(
        "UPDATE executions SET status = ?2, version = ?3, doc = ?4, runtime = coalesce(?6, runtime)
         WHERE arn = ?1 AND version = ?5",
        params![
            e.arn,
            e.status.as_str(),
            e.version as i64,
            execution_doc(e)?,
            e.version as i64 - 1,
            runtime
        ],
    )?;
    if updated == 0 {
        return Err(Error::Conflict);
    }
    insert_events(tx, &e.arn, events)
}

/// Copies the WAL into the database beside the writer (a passive checkpoint waits for
/// nobody), so the writer's commits do not pay for it; ends with the store.
fn checkpoint_loop(conn: &Connection, alive: &std::sync::Weak<Inner>) {
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "passive checkpoint");
        }
    }
}

/// The writer thread: runs jobs in order, folding runs of queued commits into one transaction.
fn writer_loop(conn: &mut Connection, rx: &mpsc::Receiver<Job>) {
    let mut next = rx.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Other(f) => f(conn),
            Job::Commit(writes, reply) => {
                let mut sizes = vec![writes.len()];
                let mut replies = vec![reply];
                let mut batch = writes;
                while replies.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Job::Commit(w, r)) => {
                            sizes.push(w.len());
                            batch.extend(w);
                            replies.push(r);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = std::time::Instant::now();
                let size = batch.len();
                let committed = group_commit(conn, batch);
                metrics::histogram!("stepwise_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("stepwise_commit_batch_size").record(size as f64);
                crate::answer_commit(replies, sizes, committed);
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
}

/// Applies a batch of writes in one transaction; each write in its own savepoint, so one
/// failing write does not undo the others.
fn group_commit(conn: &mut Connection, batch: Vec<Write>) -> Result<Vec<Result<()>>> {
    let tx = conn.transaction()?;
    let mut results = Vec::with_capacity(batch.len());
    for (i, write) in batch.iter().enumerate() {
        let sp = format!("w{i}");
        tx.execute_batch(&format!("SAVEPOINT {sp}"))?;
        let r = apply(&tx, write);
        if let Err(e) = r {
            if tx.is_autocommit() {
                // The failure ended the transaction itself (SQLite rolls back on a full disk
                // or an IO error): the whole batch failed, with this write's own error.
                return Err(e);
            }
            tx.execute_batch(&format!("ROLLBACK TO {sp}"))?;
            tx.execute_batch(&format!("RELEASE {sp}"))?;
            results.push(Err(e));
            continue;
        }
        tx.execute_batch(&format!("RELEASE {sp}"))?;
        results.push(r);
    }
    tx.commit()?;
    // Committed, and no caller knows yet.
    fail::fail_point!("store-committed", |_| std::process::abort());
    Ok(results)
}

/// The columns every execution query selects: definition, runtime, doc, input (NULL when the
/// query does not need it, or the row keeps it in `doc`).
type ExecutionRow = (String, String, String, Option<String>);

fn read_execution(row: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn decode_execution((definition, runtime, doc, input): ExecutionRow) -> Result<ExecutionRecord> {
    let mut record: ExecutionRecord = serde_json::from_str(&doc)?;
    record.definition = definition;
    record.runtime = runtime;
    if let Some(input) = input {
        record.input = input;
    }
    Ok(record)
}

#[async_trait::async_trait]
impl Store for Sqlite {
    async fn create_state_machine(&self, sm: StateMachineRecord) -> Result<()> {
        let doc = serde_json::to_string(&sm)?;
        self.insert_doc("state_machines", sm.arn, doc).await
    }

    async fn update_state_machine(&self, sm: StateMachineRecord) -> Result<()> {
        let doc = serde_json::to_string(&sm)?;
        self.update_doc("state_machines", sm.arn, doc).await
    }

    async fn get_state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>> {
        self.get_doc("state_machines", arn).await
    }

    async fn delete_state_machine(&self, arn: &str) -> Result<()> {
        let arn = arn.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM state_machines WHERE arn = ?1", [&arn])?;
            tx.execute("DELETE FROM versions WHERE sm_arn = ?1", [&arn])?;
            tx.execute("DELETE FROM version_counters WHERE sm_arn = ?1", [&arn])?;
            tx.execute("DELETE FROM aliases WHERE sm_arn = ?1", [&arn])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>> {
        self.list_docs("state_machines").await
    }

    async fn create_version(&self, version: VersionRecord) -> Result<VersionRecord> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let last: Option<i64> = tx
                .query_row(
                    "SELECT last FROM version_counters WHERE sm_arn = ?1",
                    [&version.state_machine_arn],
                    |r| r.get(0),
                )
                .optional()?;
            let number = last.unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO version_counters(sm_arn, last) VALUES (?1, ?2)
                 ON CONFLICT(sm_arn) DO UPDATE SET last = excluded.last",
                params![version.state_machine_arn, number],
            )?;
            let mut v = version;
            v.version = number as u64;
            v.arn = format!("{}:{number}", v.state_machine_arn);
            tx.execute(
                "INSERT INTO versions(arn, sm_arn, number, doc) VALUES (?1, ?2, ?3, ?4)",
                params![
                    v.arn,
                    v.state_machine_arn,
                    number,
                    serde_json::to_string(&v)?
                ],
            )?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    async fn get_version(&self, arn: &str) -> Result<Option<VersionRecord>> {
        self.get_doc("versions", arn).await
    }

    async fn list_versions(&self, state_machine_arn: &str) -> Result<Vec<VersionRecord>> {
        let sm = state_machine_arn.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT doc FROM versions WHERE sm_arn = ?1 ORDER BY number DESC",
            )?;
            let docs = stmt.query_map([sm], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }

    async fn delete_version(&self, arn: &str) -> Result<()> {
        self.delete_doc("versions", arn).await
    }

    async fn create_alias(&self, alias: AliasRecord) -> Result<()> {
        let doc = serde_json::to_string(&alias)?;
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO aliases(arn, sm_arn, doc) VALUES (?1, ?2, ?3)",
                params![alias.arn, alias.state_machine_arn, doc],
            )?;
            match inserted {
                0 => Err(Error::AlreadyExists),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn update_alias(&self, alias: AliasRecord) -> Result<()> {
        let doc = serde_json::to_string(&alias)?;
        self.update_doc("aliases", alias.arn, doc).await
    }

    async fn get_alias(&self, arn: &str) -> Result<Option<AliasRecord>> {
        self.get_doc("aliases", arn).await
    }

    async fn delete_alias(&self, arn: &str) -> Result<()> {
        self.delete_doc("aliases", arn).await
    }

    async fn list_aliases(&self, state_machine_arn: &str) -> Result<Vec<AliasRecord>> {
        let sm = state_machine_arn.to_owned();
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT doc FROM aliases WHERE sm_arn = ?1 ORDER BY arn")?;
            let docs = stmt.query_map([sm], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }

    async fn create_activity(&self, activity: ActivityRecord) -> Result<()> {
        let doc = serde_json::to_string(&activity)?;
        self.insert_doc("activities", activity.arn, doc).await
    }

    async fn update_activity(&self, activity: ActivityRecord) -> Result<()> {
        let doc = serde_json::to_string(&activity)?;
        self.update_doc("activities", activity.arn, doc).await
    }

    async fn get_activity(&self, arn: &str) -> Result<Option<ActivityRecord>> {
        self.get_doc("activities", arn).await
    }

    async fn delete_activity(&self, arn: &str) -> Result<()> {
        self.delete_doc("activities", arn).await
    }

    async fn list_activities(&self) -> Result<Vec<ActivityRecord>> {
        self.list_docs("activities").await
    }

    async fn task_token_key(&self) -> Result<[u8; 32]> {
        self.read(|conn| {
            let key: Vec<u8> = conn.query_row(
                "SELECT value FROM secrets WHERE name = 'task_token_key'",
                [],
                |r| r.get(0),
            )?;
            crate::secret_key(key)
        })
        .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<Vec<Result<()>>> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Commit(writes, tx))?;
        rx.await
            .map_err(|_| Error::backend("writer thread stopped"))?
    }

    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>> {
        let arn = arn.to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT definition, runtime, doc, input FROM executions WHERE arn = ?1",
                )?
                .query_row([arn], read_execution)
                .optional()?;
            row.map(decode_execution).transpose()
        })
        .await
    }

    async fn execution_lanes(&self, arn: &str) -> Result<Vec<LaneRow>> {
        let arn = arn.to_owned();
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT path, body FROM lanes WHERE execution_arn = ?1")?;
            let rows = stmt.query_map([arn], |r| {
                Ok(LaneRow {
                    path: r.get(0)?,
                    body: r.get(1)?,
                })
            })?;
            rows.map(|r| r.map_err(Error::from)).collect()
        })
        .await
    }

    async fn list_executions(&self, f: ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        self.read(move |conn| {
            let (after_date, after_arn) = match &f.after {
                Some(c) => (c.start_date, c.arn.clone()),
                None => (i64::MAX, String::new()),
            };
            let mut stmt = conn.prepare_cached(
                "SELECT '', '', doc, NULL FROM executions
                 WHERE sm_arn = ?1 AND (?2 IS NULL OR status = ?2)
                   AND (?7 IS NULL OR (json_extract(doc, '$.redrive_count') > 0) = ?7)
                   AND (?8 IS NULL OR json_extract(doc, '$.state_machine_version_arn') = ?8
                        OR json_extract(doc, '$.state_machine_alias_arn') = ?8)
                   AND (?9 IS NULL OR json_extract(doc, '$.map_run.map_run_arn') = ?9)
                   AND (start_date < ?3 OR (start_date = ?3 AND arn < ?4) OR ?5)
                 ORDER BY start_date DESC, arn DESC LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![
                    f.state_machine_arn,
                    f.status.map(|s| s.as_str()),
                    after_date,
                    after_arn,
                    f.after.is_none(),
                    f.limit as i64,
                    f.redriven,
                    f.qualifier,
                    f.map_run_arn
                ],
                read_execution,
            )?;
            rows.map(|r| decode_execution(r?)).collect()
        })
        .await
    }

    async fn open_executions(&self) -> Result<Vec<ExecutionRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT definition, runtime, doc, input FROM executions WHERE status = 'RUNNING'",
            )?;
            let rows = stmt.query_map([], read_execution)?;
            rows.map(|r| decode_execution(r?)).collect()
        })
        .await
    }

    async fn history(
        &self,
        arn: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let arn = arn.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, body FROM events WHERE execution_arn = ?1 AND id >= ?2 AND id <= ?3
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    arn,
                    from as i64,
                    to.min(i64::MAX as u64) as i64,
                    limit as i64
                ],
                |r| {
                    Ok(StoredEvent {
                        id: r.get::<_, i64>(0)? as u64,
                        body: r.get(1)?,
                    })
                },
            )?;
            rows.map(|r| r.map_err(Error::from)).collect()
        })
        .await
    }

    async fn delete_execution(&self, arn: &str) -> Result<()> {
        let arn = arn.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM events WHERE execution_arn = ?1", [&arn])?;
            tx.execute("DELETE FROM lanes WHERE execution_arn = ?1", [&arn])?;
            tx.execute("DELETE FROM executions WHERE arn = ?1", [&arn])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_map_run(&self, run: MapRunRecord, inputs: Vec<String>) -> Result<()> {
        let doc = serde_json::to_string(&run)?;
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO map_runs(arn, execution_arn, doc) VALUES (?1, ?2, ?3)",
                params![run.arn, run.execution_arn, doc],
            )?;
            if inserted == 0 {
                return Err(Error::AlreadyExists);
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO map_run_items(map_run_arn, idx, input) VALUES (?1, ?2, ?3)",
                )?;
                for (i, input) in inputs.iter().enumerate() {
                    stmt.execute(params![run.arn, i as i64, input])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn update_map_run(&self, run: MapRunRecord) -> Result<()> {
        let doc = serde_json::to_string(&run)?;
        self.update_doc("map_runs", run.arn, doc).await
    }

    async fn get_map_run(&self, arn: &str) -> Result<Option<MapRunRecord>> {
        self.get_doc("map_runs", arn).await
    }

    async fn map_run_items(&self, arn: &str, from: u64, limit: usize) -> Result<Vec<MapRunItem>> {
        let arn = arn.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT idx, input, result FROM map_run_items
                 WHERE map_run_arn = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    arn,
                    from.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(MapRunItem {
                        index: r.get::<_, i64>(0)? as u64,
                        input: r.get(1)?,
                        result: r.get(2)?,
                    })
                },
            )?;
            rows.map(|r| r.map_err(Error::from)).collect()
        })
        .await
    }

    async fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>> {
        let execution_arn = execution_arn.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT doc FROM map_runs WHERE execution_arn = ?1 ORDER BY rowid",
            )?;
            let docs = stmt.query_map([execution_arn], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }

    async fn create_redrive_batch(
        &self,
        batch: RedriveBatchRecord,
        executions: Vec<String>,
    ) -> Result<()> {
        let doc = serde_json::to_string(&batch)?;
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO redrive_batches(token, finished, doc) VALUES (?1, ?2, ?3)",
                params![batch.token, batch.finish_date.is_some(), doc],
            )?;
            if inserted == 0 {
                return Err(Error::AlreadyExists);
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO redrive_batch_items(token, idx, execution_arn) VALUES (?1, ?2, ?3)",
                )?;
                for (i, arn) in executions.iter().enumerate() {
                    stmt.execute(params![batch.token, i as i64, arn])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn update_redrive_batch(&self, batch: RedriveBatchRecord) -> Result<()> {
        let doc = serde_json::to_string(&batch)?;
        self.write(move |conn| {
            let updated = conn.execute(
                "UPDATE redrive_batches SET finished = ?2, doc = ?3 WHERE token = ?1",
                params![batch.token, batch.finish_date.is_some(), doc],
            )?;
            match updated {
                0 => Err(Error::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_redrive_batch(&self, token: &str) -> Result<Option<RedriveBatchRecord>> {
        let token = token.to_owned();
        self.read(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM redrive_batches WHERE token = ?1")?
                .query_row([token], |r| r.get(0))
                .optional()?;
            doc.map(|d| serde_json::from_str(&d).map_err(Error::from))
                .transpose()
        })
        .await
    }

    async fn unfinished_redrive_batches(&self) -> Result<Vec<RedriveBatchRecord>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT doc FROM redrive_batches WHERE NOT finished")?;
            let docs = stmt.query_map([], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }

    async fn claim_redrive_batch(
        &self,
        token: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let (token, owner) = (token.to_owned(), owner.to_owned());
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.write(move |conn| {
            // SQLite's clock, in epoch milliseconds.
            let claimed = conn.execute(
                "UPDATE redrive_batches
                 SET owner = ?2,
                     expires_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?3
                 WHERE token = ?1 AND NOT finished AND (owner IS NULL OR owner = ?2
                     OR expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                params![token, owner, millis],
            )?;
            Ok(claimed == 1)
        })
        .await
    }

    async fn redrive_batch_items(
        &self,
        token: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RedriveBatchItem>> {
        let token = token.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT idx, execution_arn, outcome FROM redrive_batch_items
                 WHERE token = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    token,
                    from.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(RedriveBatchItem {
                        index: r.get::<_, i64>(0)? as u64,
                        execution_arn: r.get(1)?,
                        outcome: r.get(2)?,
                    })
                },
            )?;
            rows.map(|r| r.map_err(Error::from)).collect()
        })
        .await
    }
}
