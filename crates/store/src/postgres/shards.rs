//! Shards for several active nodes (`--active-nodes`, experimental): the executions are split
//! into a fixed number of shards, each with a row of `leases` (owner, epoch, expiry on the
//! database's clock), fixed by the migration that made them.
//!
//! Every node keeps a heartbeat row in `nodes` and, every third of its TTL, renews the shards
//! it holds, gives up those beyond its fair share (an even split over the live nodes) and
//! takes free or expired ones up to it (`FOR UPDATE SKIP LOCKED`, epoch + 1). A round comes
//! sooner when another node's heartbeat or shard expires sooner: just after it expires, so
//! the shards of a node that died move as their leases run out. Every
//! group commit checks the epochs of the shards it writes (`FOR KEY SHARE`, see `writer` and
//! `lease`), so a node that lost a shard writes nothing more to it, and renewals do not wait
//! for commits. The held shards are published on a
//! watch channel: the engine runs the executions of those and drops the others.

use std::time::Instant;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::watch;

use super::lease::{next_look, LeaseOptions};
use crate::{HeldShards, Result};

/// Keeps this node's heartbeat and its fair share of shards until `held` has no receiver.
pub(super) async fn run(pool: Pool, options: LeaseOptions, held: watch::Sender<HeldShards>) {
    let mut renewed = Instant::now();
    loop {
        let mine = held.borrow().clone();
        let mut wait = options.ttl / 3;
        match balance(&pool, &options, &mine, &held).await {
            Ok((now, soonest)) => {
                renewed = Instant::now();
                publish(&options.node_id, &held, now);
                if let Some(seconds) = soonest {
                    wait = next_look(seconds, wait);
                }
            }
            Err(e) if renewed.elapsed() >= options.ttl && !mine.is_empty() => {
                tracing::error!(node = %options.node_id, error = %e, "shards lost: not renewed within their TTL");
                publish(&options.node_id, &held, HeldShards::new());
            }
            Err(e) => tracing::warn!(error = %e, "shard renewal failed; retrying"),
        }
        if held.is_closed() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Sets the held shards and logs what changed.
fn publish(node: &str, held: &watch::Sender<HeldShards>, now: HeldShards) {
    held.send_if_modified(|before| {
        if *before == now {
            return false;
        }
        for (shard, epoch) in before.iter() {
            if now.get(shard) != Some(epoch) {
                tracing::warn!(%node, shard, epoch, "shard lost");
            }
        }
        for (shard, epoch) in now.iter() {
            if before.get(shard) != Some(epoch) {
                tracing::info!(%node, shard, epoch, "shard gained");
            }
        }
        *before = now;
        true
    });
}

/// One round: heartbeat, renew, give up extras, take up to the fair share. Returns the
/// shards held after it, and in how many seconds the soonest heartbeat or shard of another
/// node expires (`None`: none is live). Extras are dropped from `held` before they are given
/// up, so the engine stops running them first (the epoch fences whatever was in flight
/// anyway).
async fn balance(
    pool: &Pool,
    options: &LeaseOptions,
    mine: &HeldShards,
    held: &watch::Sender<HeldShards>,
) -> Result<(HeldShards, Option<f64>)> {
    let ttl = options.ttl.as_secs_f64();
    let node = options.node_id.as_str();
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO nodes(node_id, expires_at)
             VALUES ($1, now() + $2::float8 * interval '1 second')
             ON CONFLICT(node_id) DO UPDATE SET expires_at = excluded.expires_at",
            &[&node, &ttl],
        )
        .await?;
    let live = client
        .query(
            "SELECT node_id FROM nodes WHERE expires_at > now() ORDER BY node_id",
            &[],
        )
        .await?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM leases", &[])
        .await?
        .try_get(0)?;
    let position = live
        .iter()
        .position(|r| r.try_get::<_, &str>(0).is_ok_and(|id| id == node))
        .unwrap_or(0);
    let fair = fair_share(usize::try_from(total).unwrap_or(0), live.len(), position);
    let (shards, epochs) = columns(mine);
    let rows = client
        .query(
            "UPDATE leases l SET expires_at = now() + $4::float8 * interval '1 second'
             FROM unnest($2::int[], $3::bigint[]) AS u(shard, epoch)
             WHERE l.shard = u.shard AND l.epoch = u.epoch AND l.owner = $1
             RETURNING l.shard, l.epoch",
            &[&node, &shards, &epochs, &ttl],
        )
        .await?;
    let mut now = HeldShards::new();
    for row in rows {
        now.insert(shard_number(row.try_get(0)?), row.try_get(1)?);
    }
    if now.len() > fair {
        let extra: HeldShards = now.split_off(&nth_key(&now, fair));
        publish(node, held, now.clone());
        give_up(&client, node, &extra).await?;
    } else if now.len() < fair {
        let wanted = i64::try_from(fair - now.len()).unwrap_or(0);
        // Free or expired shards, and those a previous run of this node (same id) held.
        let (mine, _) = columns(&now);
        let rows = client
            .query(
                "UPDATE leases l SET owner = $1, epoch = l.epoch + 1,
                     expires_at = now() + $3::float8 * interval '1 second'
                 WHERE l.shard IN (SELECT shard FROM leases
                                   WHERE (expires_at < now() OR owner = $1)
                                     AND NOT shard = ANY($4)
                                   ORDER BY shard LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING l.shard, l.epoch",
                &[&node, &wanted, &ttl, &mine],
            )
            .await?;
        for row in rows {
            now.insert(shard_number(row.try_get(0)?), row.try_get(1)?);
        }
    }
    let soonest = client
        .query_one(
            "SELECT extract(epoch FROM min(expires_at) - now())::float8 FROM (
                 SELECT expires_at FROM nodes WHERE node_id <> $1 AND expires_at > now()
                 UNION ALL
                 SELECT expires_at FROM leases WHERE owner <> $1 AND expires_at > now()) e",
            &[&node],
        )
        .await?
        .try_get::<_, Option<f64>>(0)?;
    // Still short of its share: a lease that expired just after the take (and so is not in
    // `soonest` any more) is taken on a look soon after, not a round later.
    let soonest = match now.len() < fair {
        true => Some(soonest.map_or(SHORT_LOOK, |s| s.min(SHORT_LOOK))),
        false => soonest,
    };
    Ok((now, soonest))
}

/// How soon (seconds) a node short of its fair share looks again at most.
const SHORT_LOOK: f64 = 0.25;

/// Gives every held shard up and removes this node's heartbeat, at a clean stop.
pub(super) async fn release(pool: &Pool, node: &str, mine: &HeldShards) -> Result<()> {
    let client = pool.get().await?;
    give_up(&client, node, mine).await?;
    client
        .execute("DELETE FROM nodes WHERE node_id = $1", &[&node])
        .await?;
    tracing::info!(%node, shards = mine.len(), "shards released");
    Ok(())
}

/// Ends the leases of `shards` now (if they are still this node's), for others to take.
async fn give_up(
    client: &deadpool_postgres::Client,
    node: &str,
    shards: &HeldShards,
) -> Result<()> {
    let (numbers, epochs) = columns(shards);
    client
        .execute(
            "UPDATE leases l SET expires_at = now()
             FROM unnest($2::int[], $3::bigint[]) AS u(shard, epoch)
             WHERE l.shard = u.shard AND l.epoch = u.epoch AND l.owner = $1",
            &[&node, &numbers, &epochs],
        )
        .await?;
    Ok(())
}

/// Of `shards` (with the epochs this node holds them at), the ones still this node's; holds
/// their lease rows until `tx` ends, so a takeover waits for this transaction.
pub(super) async fn fence<C: GenericClient>(
    tx: &C,
    node: &str,
    shards: &HeldShards,
) -> Result<std::collections::BTreeSet<u32>> {
    if shards.is_empty() {
        return Ok(Default::default());
    }
    let (numbers, epochs) = columns(shards);
    let stmt = tx
        .prepare_cached(
            "SELECT l.shard FROM leases l
             JOIN unnest($2::int[], $3::bigint[]) AS u(shard, epoch)
               ON l.shard = u.shard AND l.epoch = u.epoch
             WHERE l.owner = $1 ORDER BY l.shard FOR KEY SHARE OF l",
        )
        .await?;
    let rows = tx.query(&stmt, &[&node, &numbers, &epochs]).await?;
    rows.iter()
        .map(|r| Ok(shard_number(r.try_get(0)?)))
        .collect()
}

/// How many of `total` shards the node at `position` among `live` nodes (ordered by id)
/// holds: an even split, the first ones taking one more of what does not divide.
fn fair_share(total: usize, live: usize, position: usize) -> usize {
    let live = live.max(1);
    total / live + usize::from(position < total % live)
}

/// The shards' numbers and epochs as two arrays.
fn columns(shards: &HeldShards) -> (Vec<i32>, Vec<i64>) {
    shards
        .iter()
        .map(|(s, e)| (i32::try_from(*s).unwrap_or(i32::MAX), *e))
        .unzip()
}

/// A shard number as stored (never negative).
pub(super) fn shard_number(stored: i32) -> u32 {
    u32::try_from(stored).unwrap_or_default()
}

/// The `n`th key of a map that has more than `n`.
fn nth_key(map: &HeldShards, n: usize) -> u32 {
    map.keys().nth(n).copied().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shards_split_evenly_over_the_live_nodes() {
        for (total, live, wanted) in [
            (16, 1, vec![16]),
            (16, 2, vec![8, 8]),
            (16, 3, vec![6, 5, 5]),
            (16, 5, vec![4, 3, 3, 3, 3]),
            (16, 20, [vec![1; 16], vec![0; 4]].concat()),
        ] {
            let shares: Vec<usize> = (0..live).map(|p| fair_share(total, live, p)).collect();
            assert_eq!(shares, wanted, "{total} shards over {live} nodes");
            assert_eq!(shares.iter().sum::<usize>(), total);
        }
    }
}
