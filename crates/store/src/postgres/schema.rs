//! The PostgreSQL schema, as numbered migrations.
//!
//! Each migration runs once, in order, in a transaction that also records it in
//! `schema_migrations`; an advisory lock makes nodes that start together take turns. A
//! migration is never edited once released: a change is a new one at the end.

use deadpool_postgres::Client;

use crate::{Error, Result};

/// Key of the advisory lock held while migrating (any constant unique to stepwise).
const MIGRATION_LOCK: i64 = 0x5354_4550_5749_5345;

/// The migrations, numbered from 1 by their position.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the tables of the SQLite store, with the columns its queries filter on (ARNs sort
    // bytewise, as in SQLite, whatever the database's collation).
    r#"
CREATE TABLE state_machines(arn TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE activities(arn TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE versions(
    arn TEXT COLLATE "C" PRIMARY KEY,
    sm_arn TEXT COLLATE "C" NOT NULL,
    number BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX versions_by_sm ON versions(sm_arn, number DESC);
CREATE TABLE version_counters(sm_arn TEXT COLLATE "C" PRIMARY KEY, last BIGINT NOT NULL);
CREATE TABLE aliases(
    arn TEXT COLLATE "C" PRIMARY KEY,
    sm_arn TEXT COLLATE "C" NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX aliases_by_sm ON aliases(sm_arn, arn);
CREATE TABLE executions(
    arn TEXT COLLATE "C" PRIMARY KEY,
    sm_arn TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    version BIGINT NOT NULL,
    definition TEXT NOT NULL,
    runtime TEXT NOT NULL,
    doc TEXT NOT NULL,
    input TEXT NOT NULL,
    redrive_count BIGINT NOT NULL,
    version_arn TEXT COLLATE "C",
    alias_arn TEXT COLLATE "C",
    map_run_arn TEXT COLLATE "C"
);
CREATE INDEX executions_by_sm ON executions(sm_arn, start_date DESC, arn DESC);
CREATE INDEX executions_open ON executions(status) WHERE status = 'RUNNING';
CREATE INDEX executions_by_map_run ON executions(map_run_arn) WHERE map_run_arn IS NOT NULL;
CREATE TABLE events(
    execution_arn TEXT COLLATE "C" NOT NULL,
    id BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(execution_arn, id)
);
CREATE TABLE lanes(
    execution_arn TEXT COLLATE "C" NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(execution_arn, path)
);
CREATE TABLE map_runs(
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    arn TEXT COLLATE "C" PRIMARY KEY,
    execution_arn TEXT COLLATE "C" NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX map_runs_by_execution ON map_runs(execution_arn, seq);
CREATE TABLE map_run_items(
    map_run_arn TEXT COLLATE "C" NOT NULL,
    idx BIGINT NOT NULL,
    input TEXT NOT NULL,
    result TEXT,
    PRIMARY KEY(map_run_arn, idx)
);
"#,
    // 2: the lease of the node that runs the executions, with its epoch (see `lease`).
    r#"
CREATE TABLE leases(
    shard INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#,
    // 3: bulk redrives (stepwise's extension): the batch, and one row per execution with its
    // outcome.
    r#"
CREATE TABLE redrive_batches(
    token TEXT COLLATE "C" PRIMARY KEY,
    finished BOOLEAN NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE redrive_batch_items(
    token TEXT COLLATE "C" NOT NULL,
    idx BIGINT NOT NULL,
    execution_arn TEXT NOT NULL,
    outcome TEXT,
    PRIMARY KEY(token, idx)
);
"#,
    // 4: the secret task tokens are sealed with, made once for every node: 32 bytes of two
    // `gen_random_uuid()`s (the server's strong random source; 244 random bits).
    r#"
CREATE TABLE secrets(name TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL);
INSERT INTO secrets(name, value) VALUES (
    'task_token_key',
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
);
"#,
    // 5: shards for several active nodes (`shards`): 16 lease rows, fixed here (the number
    // of shards never changes under data), each execution's shard, the nodes' heartbeats,
    // the signals waiting for the node that runs their execution (`inbox`), and the activity
    // tasks waiting for a worker on any node (`activity_tasks`).
    r#"
ALTER TABLE executions ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
CREATE INDEX executions_open_by_shard ON executions(shard) WHERE status = 'RUNNING';
CREATE TABLE nodes(node_id TEXT COLLATE "C" PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE inbox(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shard INTEGER NOT NULL,
    execution_arn TEXT COLLATE "C" NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX inbox_by_shard ON inbox(shard, id);
CREATE TABLE activity_tasks(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_arn TEXT COLLATE "C" NOT NULL,
    execution_arn TEXT COLLATE "C" NOT NULL,
    task_id BIGINT NOT NULL,
    token TEXT NOT NULL,
    input TEXT NOT NULL,
    scheduled BIGINT NOT NULL,
    UNIQUE(execution_arn, task_id)
);
CREATE INDEX activity_tasks_by_activity ON activity_tasks(activity_arn, id);
INSERT INTO leases(shard, owner, epoch, expires_at)
    SELECT s, '', 0, '-infinity' FROM generate_series(0, 15) AS s
    ON CONFLICT(shard) DO NOTHING;
"#,
    // 6: the node that drives a bulk redrive, until when (`claim_redrive_batch`).
    r#"
ALTER TABLE redrive_batches ADD COLUMN owner TEXT, ADD COLUMN expires_at TIMESTAMPTZ;
"#,
    // 7: a lease's epoch becomes part of a key, so that a takeover (a new epoch) is a key
    // update, which waits for the group commits that hold the lease row (`FOR KEY SHARE`),
    // while a renewal (the expiry only) does not wait for them, nor they for it.
    r#"
CREATE UNIQUE INDEX leases_by_epoch ON leases(shard, epoch);
"#,
];

/// Brings the database's schema up to date; returns how many migrations ran.
pub(super) async fn migrate(client: &mut Client) -> Result<usize> {
    let tx = client.transaction().await.map_err(Error::driver)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(Error::driver)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations(
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(Error::driver)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(Error::driver)?;
    let done: i64 = row.get(0);
    if done > MIGRATIONS.len() as i64 {
        return Err(Error::backend(format!(
            "the database's schema is version {done}, newer than this build knows ({}): \
             run a newer stepwise",
            MIGRATIONS.len()
        )));
    }
    let mut ran = 0;
    for (number, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql).await.map_err(Error::driver)?;
        tx.execute(
            "INSERT INTO schema_migrations(version) VALUES ($1)",
            &[&(number as i64 + 1)],
        )
        .await
        .map_err(Error::driver)?;
        ran += 1;
    }
    tx.commit().await.map_err(Error::driver)?;
    Ok(ran)
}
