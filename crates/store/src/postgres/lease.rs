//! The lease that lets one node at a time run the executions of a PostgreSQL database.
//!
//! A row of `leases` names its owner, an epoch and when it expires (the database's clock, so
//! nodes' clocks do not matter). A node takes the lease when it is free or expired, bumping
//! the epoch; renews it every third of its TTL; and learns it lost it when a renewal finds
//! another epoch, or finds none succeeded for a whole TTL. Every group commit checks the epoch
//! in its own transaction, holding the row (`FOR KEY SHARE`) until it commits, so once another
//! node has taken the lease not one more transition of the old owner gets in (Temporal's
//! range-id fencing). The epoch is part of a unique index: a takeover, which changes it, waits
//! for those transactions, but a renewal, which changes only the expiry, does not, so a steady
//! stream of commits cannot hold a renewal back until the lease runs out. There is one lease
//! (shard 0) for now: a standby node waits for it, looking again every quarter of the TTL, or
//! just after the lease expires if that comes sooner.

use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::watch;

use crate::{Error, Result};

/// The one shard.
const SHARD: i32 = 0;

/// Who asks for the lease, and for how long it holds without renewal.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub node_id: String,
    pub ttl: Duration,
}

/// A lease this node holds: what its writes are fenced by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub node_id: String,
    pub epoch: i64,
}

/// Waits until the lease is free or expired and takes it.
pub(super) async fn acquire(pool: &Pool, options: &LeaseOptions) -> Result<Held> {
    let ttl = interval(options.ttl);
    let mut told = false;
    loop {
        let client = pool.get().await?;
        let row = client
            .query_opt(
                "INSERT INTO leases(shard, owner, epoch, expires_at)
                 VALUES ($1, $2, 1, now() + $3::float8 * interval '1 second')
                 ON CONFLICT(shard) DO UPDATE
                     SET owner = excluded.owner, epoch = leases.epoch + 1,
                         expires_at = excluded.expires_at
                     WHERE leases.expires_at < now() OR leases.owner = excluded.owner
                 RETURNING epoch",
                &[&SHARD, &options.node_id, &ttl],
            )
            .await?;
        if let Some(row) = row {
            let epoch: i64 = row.try_get(0)?;
            tracing::info!(node = %options.node_id, epoch, "lease gained");
            return Ok(Held {
                node_id: options.node_id.clone(),
                epoch,
            });
        }
        let holder = client
            .query_opt(
                "SELECT owner, epoch, extract(epoch FROM expires_at - now())::float8
                 FROM leases WHERE shard = $1",
                &[&SHARD],
            )
            .await?;
        drop(client);
        let mut wait = options.ttl / 4;
        if let Some(h) = holder {
            let (owner, epoch): (String, i64) = (h.try_get(0)?, h.try_get(1)?);
            if !told {
                tracing::info!(%owner, epoch, "standing by: another node holds the lease");
                told = true;
            }
            wait = next_look(h.try_get(2)?, wait);
        }
        tokio::time::sleep(wait).await;
    }
}

/// How long after its expiry another node's lease (or heartbeat) is looked at again.
const PAST_EXPIRY: Duration = Duration::from_millis(50);

/// When to look again at a lease (or heartbeat) of another node that expires in `seconds`
/// (the database's clock): just after it expires, or after `at_most` if that comes first
/// (the holder renews it meanwhile). So a node that died is taken over as its lease runs out,
/// not up to a round later.
pub(super) fn next_look(seconds: f64, at_most: Duration) -> Duration {
    let until = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(at_most);
    (until + PAST_EXPIRY).min(at_most)
}

/// Renews the lease until it is lost, then says so on `lost` (once) and returns.
pub(super) async fn renew(
    pool: Pool,
    options: LeaseOptions,
    held: Held,
    lost: watch::Sender<bool>,
) {
    let ttl = interval(options.ttl);
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(options.ttl / 3).await;
        if lost.is_closed() {
            return; // the store is gone
        }
        match extend(&pool, &held, ttl).await {
            Ok(1) => renewed = Instant::now(),
            Ok(_) => {
                tracing::error!(node = %held.node_id, epoch = held.epoch, "lease lost: another node took it");
                let _ = lost.send(true);
                return;
            }
            Err(e) if renewed.elapsed() >= options.ttl => {
                tracing::error!(node = %held.node_id, epoch = held.epoch, error = %e, "lease lost: not renewed within its TTL");
                let _ = lost.send(true);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
        }
    }
}

/// Extends the lease by `ttl` seconds from now; how many rows it changed (1 while the lease is
/// still this node's).
pub(super) async fn extend(pool: &Pool, held: &Held, ttl: f64) -> Result<u64> {
    let client = pool.get().await?;
    let n = client
        .execute(
            "UPDATE leases SET expires_at = now() + $4::float8 * interval '1 second'
             WHERE shard = $1 AND owner = $2 AND epoch = $3",
            &[&SHARD, &held.node_id, &held.epoch, &ttl],
        )
        .await?;
    Ok(n)
}

/// Ends the lease now, if it is still this node's.
pub(super) async fn release(pool: &Pool, held: &Held) -> Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE leases SET expires_at = now() WHERE shard = $1 AND owner = $2 AND epoch = $3",
            &[&SHARD, &held.node_id, &held.epoch],
        )
        .await?;
    tracing::info!(node = %held.node_id, epoch = held.epoch, "lease released");
    Ok(())
}

/// Fails with [`Error::Fenced`] unless `held` is still the lease; holds the lease row until
/// `tx` ends, so a takeover waits for this transaction.
pub(super) async fn fence<C: GenericClient>(tx: &C, held: &Held) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "SELECT 1 FROM leases WHERE shard = $1 AND owner = $2 AND epoch = $3
             FOR KEY SHARE",
        )
        .await?;
    match tx
        .query_opt(&stmt, &[&SHARD, &held.node_id, &held.epoch])
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::Fenced),
    }
}

fn interval(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::next_look;
    use std::time::Duration;

    #[test]
    fn a_lease_is_looked_at_again_just_after_it_expires() {
        let at_most = Duration::from_millis(2500);
        let ms = Duration::from_millis;
        assert_eq!(next_look(1.0, at_most), ms(1050));
        assert_eq!(next_look(2.45, at_most), at_most);
        assert_eq!(next_look(9.0, at_most), at_most, "renewed before then");
        assert_eq!(
            next_look(-0.3, at_most),
            ms(50),
            "expired since it was read"
        );
        assert_eq!(next_look(f64::NAN, at_most), ms(50));
        assert_eq!(next_look(f64::INFINITY, at_most), at_most);
    }
}
