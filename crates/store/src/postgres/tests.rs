//! The contract on a real PostgreSQL, and what only the shared store has: migrations that run
//! once, and fencing between two stores on one database.

use std::sync::atomic::{AtomicU32, Ordering};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::local::LocalPostgres;
use super::{LeaseOptions, Postgres};
use crate::contract::{event, execution, map_run, run_all, state_machine, version};
use crate::{ActivityRecord, AliasRecord, Error, RedriveBatchRecord, Store, Write};

#[tokio::test]
async fn postgres_meets_the_contract() {
    let server = LocalPostgres::start_or_panic();
    let n = AtomicU32::new(0);
    run_all(|| async {
        let name = format!("contract{}", n.fetch_add(1, Ordering::Relaxed));
        let url = server.create_database(&name).unwrap();
        Postgres::connect(&url).await.unwrap()
    })
    .await;
}

/// Two stores (two nodes) on one database: the schema is migrated once, and a transition
/// computed from a version another node already moved past is refused, in a batch whose other
/// writes still commit.
#[tokio::test]
async fn postgres_fences_a_second_node() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("nodes").unwrap();
    let (a, b) = tokio::join!(Postgres::connect(&url), Postgres::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let client = a.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let all: Vec<i64> = (1..=super::schema::MIGRATIONS.len() as i64).collect();
    assert_eq!(versions, all, "each migration ran once");

    let create = |arn: &str| Write::CreateExecution {
        execution: execution(arn, 1, crate::ExecutionStatus::Running),
        events: vec![event(1)],
        lanes: vec![],
        offers: vec![],
    };
    let r = a.commit(vec![create("x"), create("y")]).await.unwrap();
    assert!(r.iter().all(Result::is_ok));
    let r = b.commit(vec![create("x")]).await.unwrap();
    assert!(matches!(r[0], Err(Error::AlreadyExists)), "{r:?}");
    let step = |arn: &str, version: u64, id: u64| Write::Transition {
        execution: crate::ExecutionRecord {
            version,
            ..execution(arn, 1, crate::ExecutionStatus::Running)
        },
        events: vec![event(id)],
        lanes: vec![],
        offers: vec![],
    };
    assert!(a.commit(vec![step("x", 2, 2)]).await.unwrap()[0].is_ok());
    let r = b
        .commit(vec![step("x", 2, 2), step("y", 2, 2)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(Error::Conflict)), "{r:?}");
    assert!(r[1].is_ok(), "the batch's other write commits: {r:?}");
    let ids: Vec<u64> = b
        .history("x", 1, u64::MAX, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

/// Two nodes asking for the lease: the second stands by while the first holds it, takes it
/// once it expires (the first paused past its TTL), and from then on the first's commits are
/// fenced off and it learns that it lost the lease.
#[tokio::test]
async fn postgres_lease_fences_the_old_owner() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("lease").unwrap();
    let options = |node: &str| leased(node, 1);
    let a = Postgres::connect_leased(&url, options("a")).await.unwrap();
    assert_eq!(a.lease().map(|h| h.epoch), Some(1));
    let create = |arn: &str| Write::CreateExecution {
        execution: execution(arn, 1, crate::ExecutionStatus::Running),
        events: vec![event(1)],
        lanes: vec![],
        offers: vec![],
    };
    assert!(a.commit(vec![create("before")]).await.unwrap()[0].is_ok());

    let url_b = url.clone();
    let b = tokio::spawn(async move { Postgres::connect_leased(&url_b, options("b")).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!b.is_finished(), "b stands by while a renews its lease");

    pause_past_lease(&a).await;
    let b = tokio::time::timeout(Duration::from_secs(3), b)
        .await
        .expect("b takes the expired lease")
        .unwrap()
        .unwrap();
    assert_eq!(b.lease().map(|h| h.epoch), Some(2));

    let stale = a.commit(vec![create("after")]).await;
    assert!(matches!(stale, Err(Error::Fenced)), "{stale:?}");
    tokio::time::timeout(Duration::from_secs(3), a.lease_lost())
        .await
        .expect("a learns it lost the lease");
    assert!(b.get_execution("after").await.unwrap().is_none());
    assert!(b.commit(vec![create("after")]).await.unwrap()[0].is_ok());
}

fn leased(node: &str, ttl_seconds: u64) -> LeaseOptions {
    LeaseOptions {
        node_id: node.into(),
        ttl: Duration::from_secs(ttl_seconds),
    }
}

/// As if `node` stopped renewing (paused): its lease runs out, for another node to take.
async fn pause_past_lease(node: &Postgres) {
    node.pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE leases SET owner = 'paused', expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
}

/// A group commit holds the lease row until it commits: a takeover (a new epoch) waits for
/// it, but a renewal (the expiry) does not, so a steady stream of commits cannot hold a
/// renewal back until the lease runs out.
#[tokio::test]
async fn a_renewal_does_not_wait_for_commits_but_a_takeover_does() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("renewal").unwrap();
    let a = Postgres::connect_leased(&url, leased("a", 60))
        .await
        .unwrap();
    let held = a.lease().unwrap().clone();
    let mut client = a.pool.get().await.unwrap();
    let commit = client.transaction().await.unwrap();
    super::lease::fence(&commit, &held).await.unwrap();

    let renewal = super::lease::extend(&a.pool, &held, 60.0);
    let renewed = tokio::time::timeout(Duration::from_secs(2), renewal).await;
    assert_eq!(renewed.expect("the renewal does not wait").unwrap(), 1);

    pause_past_lease(&a).await;
    let url_b = url.clone();
    let b = tokio::spawn(async move { Postgres::connect_leased(&url_b, leased("b", 60)).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !b.is_finished(),
        "the takeover waits for the commit under way"
    );
    commit.commit().await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(3), b)
        .await
        .expect("b takes the lease once the commit ended")
        .unwrap()
        .unwrap();
    assert_eq!(b.lease().map(|h| h.epoch), Some(2));
}

/// A node whose lease another node took writes no resource either: every state machine,
/// version, alias, activity, Map Run and bulk redrive write of the old owner fails with
/// `Fenced` and leaves the database as the new owner sees it.
#[tokio::test]
async fn postgres_lease_fences_resource_writes() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("resources").unwrap();
    let options = |node: &str| leased(node, 60);
    let a = Postgres::connect_leased(&url, options("a")).await.unwrap();
    a.create_state_machine(state_machine("m")).await.unwrap();
    let v1 = a.create_version(version("m", "r1")).await.unwrap();
    let activity = ActivityRecord {
        arn: "act".into(),
        name: "act".into(),
        creation_date: 1,
        tags: Vec::new(),
    };
    a.create_activity(activity.clone()).await.unwrap();
    pause_past_lease(&a).await;
    let b = Postgres::connect_leased(&url, options("b")).await.unwrap();

    let changed = crate::StateMachineRecord {
        definition: "{\"changed\": true}".into(),
        ..state_machine("m")
    };
    let alias = AliasRecord {
        arn: "m:live".into(),
        state_machine_arn: "m".into(),
        name: "live".into(),
        description: None,
        routing: Vec::new(),
        creation_date: 1,
        update_date: 1,
    };
    let batch = RedriveBatchRecord {
        token: "t".into(),
        state_machine_arn: "m".into(),
        selection: "{}".into(),
        creation_date: 1,
        total: 0,
        finish_date: None,
    };
    type Attempt<'a> = Pin<Box<dyn Future<Output = crate::Result<()>> + Send + 'a>>;
    let attempts: Vec<(&str, Attempt<'_>)> = vec![
        (
            "create_state_machine",
            Box::pin(a.create_state_machine(state_machine("n"))),
        ),
        (
            "update_state_machine",
            Box::pin(a.update_state_machine(changed)),
        ),
        (
            "delete_state_machine",
            Box::pin(a.delete_state_machine("m")),
        ),
        (
            "create_version",
            Box::pin(async { a.create_version(version("m", "r2")).await.map(drop) }),
        ),
        ("delete_version", Box::pin(a.delete_version(&v1.arn))),
        ("create_alias", Box::pin(a.create_alias(alias))),
        (
            "create_activity",
            Box::pin(a.create_activity(ActivityRecord {
                arn: "other".into(),
                ..activity.clone()
            })),
        ),
        (
            "update_activity",
            Box::pin(a.update_activity(ActivityRecord {
                tags: vec![("k".into(), "v".into())],
                ..activity.clone()
            })),
        ),
        ("delete_activity", Box::pin(a.delete_activity("act"))),
        (
            "create_map_run",
            Box::pin(a.create_map_run(map_run("mr"), vec!["{}".into()])),
        ),
        (
            "create_redrive_batch",
            Box::pin(a.create_redrive_batch(batch, Vec::new())),
        ),
    ];
    for (name, attempt) in attempts {
        let outcome = attempt.await;
        assert!(matches!(outcome, Err(Error::Fenced)), "{name}: {outcome:?}");
    }

    assert_eq!(
        b.get_state_machine("m").await.unwrap(),
        Some(state_machine("m"))
    );
    assert_eq!(b.get_state_machine("n").await.unwrap(), None);
    assert_eq!(b.list_versions("m").await.unwrap(), vec![v1]);
    assert!(b.list_aliases("m").await.unwrap().is_empty());
    assert_eq!(b.list_activities().await.unwrap(), vec![activity]);
    assert_eq!(b.get_map_run("mr").await.unwrap(), None);
    assert_eq!(b.get_redrive_batch("t").await.unwrap(), None);
    b.create_state_machine(state_machine("n")).await.unwrap();
}

/// Waits until `node` holds `n` shards.
async fn holds(node: &Postgres, n: usize) -> Vec<u32> {
    let mut held = Store::shards(node).expect("a sharded store");
    let shards = tokio::time::timeout(Duration::from_secs(5), held.wait_for(|h| h.len() == n))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "holds {n} shards: {:?}",
                node.shards.as_ref().map(|s| s.held.borrow().clone())
            )
        })
        .unwrap()
        .keys()
        .copied()
        .collect();
    shards
}

/// Several active nodes: shards split evenly between two nodes; a write to a shard the node
/// no longer holds (given up, or taken under it) is fenced while its other writes commit; the
/// inbox and the activity tasks of a shared store.
#[tokio::test]
async fn postgres_shards_spread_and_fence_writes() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("shards").unwrap();
    let a = Postgres::connect_sharded(&url, leased("a", 1))
        .await
        .unwrap();
    assert_eq!(holds(&a, 16).await, (0..16).collect::<Vec<u32>>());
    let in_shard = |shard: u32, version: u64| crate::ExecutionRecord {
        shard: Some(shard),
        version,
        ..execution(&format!("e{shard}"), 1, crate::ExecutionStatus::Running)
    };
    let creates: Vec<Write> = (0..16)
        .map(|s| Write::CreateExecution {
            execution: in_shard(s, 1),
            events: vec![event(1)],
            lanes: vec![],
            offers: vec![],
        })
        .collect();
    let r = a.commit(creates).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");

    for body in ["{\"kind\":\"x\"}", "{\"kind\":\"y\"}"] {
        assert!(a.send_signal("e3", body.into()).await.unwrap());
    }
    assert!(!a.send_signal("nothing", "{}".into()).await.unwrap());
    let waiting = a.inbox(&[3], 10).await.unwrap();
    let bodies: Vec<&str> = waiting.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["{\"kind\":\"x\"}", "{\"kind\":\"y\"}"],
        "in the order sent"
    );
    assert!(waiting.iter().all(|s| s.execution_arn == "e3"));
    assert!(a.inbox(&[4], 10).await.unwrap().is_empty());
    let ids: Vec<u64> = waiting.iter().map(|s| s.id).collect();
    a.delete_signals(&ids).await.unwrap();
    assert!(a.inbox(&[3], 10).await.unwrap().is_empty());

    let task = crate::ActivityTaskRow {
        activity_arn: "act".into(),
        execution_arn: "e3".into(),
        task_id: 1,
        token: "t1".into(),
        input: "{}".into(),
        scheduled: 1,
    };
    a.offer_activity_task(task.clone()).await.unwrap();
    let again = crate::ActivityTaskRow {
        token: "t2".into(),
        ..task.clone()
    };
    a.offer_activity_task(again.clone()).await.unwrap();
    assert_eq!(
        a.offered_activity_tasks("act").await.unwrap(),
        vec![again.clone()]
    );
    // Taken with its start for the node that runs e3, in one transaction.
    let started = |_: &str, task_id: u64| Some(format!("started {task_id}"));
    let claimed = a.claim_activity_task("act", None, &started).await.unwrap();
    let expected = crate::ClaimedTask {
        task: again,
        started_sent: true,
    };
    assert_eq!(claimed, Some(expected));
    let waiting = a.signals_for("e3").await.unwrap();
    let bodies: Vec<&str> = waiting.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(bodies, ["started 1"]);
    assert!(a.signals_for("e4").await.unwrap().is_empty());
    a.delete_signals(&[waiting[0].id]).await.unwrap();
    assert_eq!(
        a.claim_activity_task("act", None, &started).await.unwrap(),
        None
    );
    // Taken for an execution this node runs: nothing in the inbox.
    let third = crate::ActivityTaskRow {
        task_id: 3,
        ..task.clone()
    };
    a.offer_activity_task(third.clone()).await.unwrap();
    // Only one scheduled before the time given.
    let not_yet = a.claim_activity_task("act", Some(third.scheduled), &|_, _| None);
    assert_eq!(not_yet.await.unwrap(), None);
    let before = Some(third.scheduled + 1);
    let claimed = a
        .claim_activity_task("act", before, &|_, _| None)
        .await
        .unwrap();
    let expected = crate::ClaimedTask {
        task: third,
        started_sent: false,
    };
    assert_eq!(claimed, Some(expected));
    assert!(a.signals_for("e3").await.unwrap().is_empty());
    // Taken by its key: once, with its start for another node when it runs elsewhere.
    let fourth = crate::ActivityTaskRow {
        task_id: 4,
        ..task.clone()
    };
    let fifth = crate::ActivityTaskRow {
        task_id: 5,
        ..task.clone()
    };
    a.offer_activity_task(fourth.clone()).await.unwrap();
    a.offer_activity_task(fifth.clone()).await.unwrap();
    let here = |_: &str, _: u64| None;
    let expected = crate::ClaimedTask {
        task: fifth,
        started_sent: false,
    };
    assert_eq!(
        a.claim_offered_task("e3", 5, &here).await.unwrap(),
        Some(expected)
    );
    assert_eq!(
        a.claim_offered_task("e3", 5, &here).await.unwrap(),
        None,
        "taken already"
    );
    assert!(a.signals_for("e3").await.unwrap().is_empty());
    let elsewhere = |_: &str, task_id: u64| Some(format!("started {task_id}"));
    let expected = crate::ClaimedTask {
        task: fourth,
        started_sent: true,
    };
    assert_eq!(
        a.claim_offered_task("e3", 4, &elsewhere).await.unwrap(),
        Some(expected)
    );
    let waiting = a.signals_for("e3").await.unwrap();
    let bodies: Vec<&str> = waiting.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(bodies, ["started 4"]);
    a.delete_signals(&[waiting[0].id]).await.unwrap();
    assert!(a.offered_activity_tasks("act").await.unwrap().is_empty());

    let b = Postgres::connect_sharded(&url, leased("b", 1))
        .await
        .unwrap();
    let (held_a, held_b) = tokio::join!(holds(&a, 8), holds(&b, 8));
    assert_eq!(held_a, (0..8).collect::<Vec<u32>>(), "a is first by id");
    assert_eq!(held_b, (8..16).collect::<Vec<u32>>());
    let open: Vec<String> = b
        .open_executions_in(&held_b)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.arn)
        .collect();
    let mut open = open;
    open.sort();
    let mut wanted: Vec<String> = (8..16).map(|s| format!("e{s}")).collect();
    wanted.sort();
    assert_eq!(open, wanted);

    // Shard 5 taken under a (as if it had been paused): a does not know yet.
    a.pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE leases SET owner = 'c', epoch = epoch + 1 WHERE shard = 5",
            &[],
        )
        .await
        .unwrap();
    let task_of = |activity: &str, s: u32, task_id: u64| crate::ActivityTaskRow {
        activity_arn: activity.into(),
        execution_arn: format!("e{s}"),
        task_id,
        token: format!("{activity} {s}"),
        input: "{}".into(),
        scheduled: 1,
    };
    // e4's and e5's steps take the tasks they offered (a poll on a takes them).
    for s in [4, 5] {
        a.offer_activity_task(task_of("taken", s, 7)).await.unwrap();
    }
    // Every step schedules a task, offered in its commit; e6's also ends its execution.
    let scheduled = |s: u32| task_of("scheduled", s, 8);
    let steps: Vec<Write> = (0..16)
        .map(|s| {
            let (mut execution, events, lanes) = (in_shard(s, 2), vec![event(2)], vec![]);
            if s == 6 {
                execution.status = crate::ExecutionStatus::Succeeded;
            }
            let offers = vec![scheduled(s)];
            match s {
                4 | 5 => Write::TakeTask {
                    execution,
                    events,
                    lanes,
                    offers,
                    task_id: 7,
                },
                _ => Write::Transition {
                    execution,
                    events,
                    lanes,
                    offers,
                },
            }
        })
        .collect();
    let r = a.commit(steps).await.unwrap();
    for (shard, result) in r.iter().enumerate() {
        match shard {
            0..=4 | 6..=7 => assert!(result.is_ok(), "shard {shard}: {result:?}"),
            _ => assert!(
                matches!(result, Err(Error::Fenced)),
                "shard {shard}: {result:?}"
            ),
        }
    }
    let e5 = b.get_execution("e5").await.unwrap().unwrap();
    assert_eq!(
        (e5.version, e5.shard),
        (1, Some(5)),
        "the fenced write left no trace"
    );
    let offered = a.offered_activity_tasks("taken").await.unwrap();
    let left: Vec<&str> = offered.iter().map(|t| t.execution_arn.as_str()).collect();
    assert_eq!(
        left,
        ["e5"],
        "taken with e4's start; put back when e5's was fenced"
    );
    let mut offered = a.offered_activity_tasks("scheduled").await.unwrap();
    offered.sort_by(|x, y| x.execution_arn.cmp(&y.execution_arn));
    let made: Vec<crate::ActivityTaskRow> = [0, 1, 2, 3, 4, 7].map(scheduled).into();
    assert_eq!(
        offered, made,
        "offered with the writes made; none for e5 (fenced), e6 (ended), e8 to e15 (b's)"
    );
    let rows = a.pool.get().await.unwrap();
    let e6 = "SELECT count(*) FROM activity_tasks WHERE execution_arn = 'e6'";
    let left: i64 = rows.query_one(e6, &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "e6 ended in the commit that offered: withdrawn");
    // Taken once: a second start that takes it fails, and writes nothing.
    let again = Write::TakeTask {
        execution: in_shard(4, 3),
        events: vec![event(3)],
        lanes: vec![],
        offers: vec![],
        task_id: 7,
    };
    let r = a.commit(vec![again]).await.unwrap();
    assert!(matches!(r[0], Err(Error::Taken)), "{r:?}");
    assert_eq!(b.get_execution("e4").await.unwrap().unwrap().version, 2);
    // A commit checks the shards its records name; a record that names one this node holds
    // for an execution stored in one it does not is refused all the same.
    let misnamed = crate::ExecutionRecord {
        shard: Some(2),
        ..in_shard(9, 2)
    };
    let write = Write::Transition {
        execution: misnamed,
        events: vec![event(2)],
        lanes: vec![],
        offers: vec![],
    };
    let r = a.commit(vec![write]).await.unwrap();
    assert!(matches!(r[0], Err(Error::Fenced)), "{r:?}");
    assert_eq!(b.get_execution("e9").await.unwrap().unwrap().version, 1);
}
