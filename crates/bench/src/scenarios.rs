//! The load scenarios of design.md §5. Each one creates its own state machine (unique name
//! per run), drives it over HTTP and returns its table rows.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::ValueEnum;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use tokio::task::JoinSet;

use crate::client::Sfn;
use crate::report::{Latency, Report};
use crate::server::Server;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// N executions of an M-state Pass chain, started concurrently (standard, durable).
    PassChain,
    /// A chain of activity Tasks served by a worker over HTTP.
    ActivityTasks,
    /// StartSyncExecution of a 3-state Express Pass machine, sequential and concurrent.
    SyncExpress,
    /// Parallel branches and an Inline Map fanning out.
    ParallelMapFanout,
    /// Redrive of a 10,000-iteration Inline Map with one failed iteration.
    RedriveMap,
    /// N executions parked in a long Wait: server RSS, then resume time after a restart.
    ParkedWaits,
    /// Distributed Map over 100,000 items with Express children.
    DistributedMap,
}

/// Sizes of the scenarios.
pub struct Sizes {
    pub executions: usize,
    pub states: usize,
    pub task_executions: usize,
    pub tasks: usize,
    pub requests: usize,
    pub concurrency: usize,
    pub parked: usize,
    pub wait_seconds: u64,
}

/// What every scenario runs against.
pub struct Bench {
    pub sfn: Sfn,
    pub server: Server,
    pub sizes: Sizes,
    /// Makes state machine names unique per run.
    pub run_id: u128,
}

impl Bench {
    pub async fn run(&mut self, scenario: Scenario) -> Result<Vec<Report>> {
        match scenario {
            Scenario::PassChain => self.pass_chain().await,
            Scenario::SyncExpress => self.sync_express().await,
            Scenario::ParkedWaits => self.parked_waits().await,
            Scenario::ActivityTasks => self.activity_tasks().await,
            Scenario::ParallelMapFanout => unavailable(
                "parallel-map-fanout",
                "(no §5 figure)",
                "stepwise has no Parallel or Map states yet",
            ),
            Scenario::RedriveMap => unavailable(
                "redrive-map",
                "1 iteration re-runs; RedriveExecution ≤ 10 ms",
                "stepwise has no Map states yet (RedriveExecution itself exists)",
            ),
            Scenario::DistributedMap => unavailable(
                "distributed-map",
                "≥ 20,000 child executions/s",
                "stepwise has no Distributed Map yet",
            ),
        }
    }

    fn name(&self, scenario: &str) -> String {
        format!("bench-{scenario}-{}", self.run_id)
    }

    async fn pass_chain(&self) -> Result<Vec<Report>> {
        let Sizes {
            executions: n,
            states: m,
            concurrency: c,
            ..
        } = self.sizes;
        let machine = self
            .sfn
            .create_machine(&self.name("pass-chain"), "STANDARD", &pass_chain(m))
            .await?;
        let bar = progress(n, "pass-chain: StartExecution");
        let began = Instant::now();
        let (sfn, arn) = (self.sfn.clone(), machine.clone());
        let (starts, _) = fan_out(n, c, &bar, move |_| {
            let (sfn, arn) = (sfn.clone(), arn.clone());
            async move { sfn.start(&arn).await }
        })
        .await?;
        bar.reset();
        bar.set_message("pass-chain: waiting for SUCCEEDED");
        loop {
            let running = self.sfn.count(&machine, "RUNNING").await?;
            bar.set_position((n - running.min(n)) as u64);
            if running == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wall = began.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let succeeded = self.sfn.count(&machine, "SUCCEEDED").await?;
        if succeeded != n {
            bail!("{succeeded} of {n} executions SUCCEEDED");
        }
        let mut r = Report::new(format!("pass-chain {n}×{m}"), "≥ 50,000 transitions/s");
        r.throughput = Some(((n * m) as f64 / wall, "transitions/s"));
        r.latency = Some(("StartExecution", Latency::of(&starts)));
        r.rss_mib = self.server.rss_mib();
        r.note = format!("all SUCCEEDED after {wall:.2} s; {c} concurrent clients");
        Ok(vec![r])
    }

    async fn activity_tasks(&self) -> Result<Vec<Report>> {
        let Sizes {
            task_executions: n,
            tasks: k,
            concurrency: c,
            ..
        } = self.sizes;
        let out = self
            .sfn
            .call("CreateActivity", &json!({"name": self.name("activity")}))
            .await?;
        let activity = out["activityArn"].as_str().unwrap_or_default().to_owned();
        let machine = self
            .sfn
            .create_machine(
                &self.name("activity-tasks"),
                "STANDARD",
                &task_chain(k, &activity),
            )
            .await?;
        let total = n * k;
        let bar = progress(total, "activity-tasks: tasks completed");
        let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
        let mut workers = JoinSet::new();
        for w in 0..c {
            let poll = json!({"activityArn": activity, "workerName": format!("bench-{w}")});
            workers.spawn(activity_worker(
                self.sfn.clone(),
                poll,
                bar.clone(),
                latency.clone(),
            ));
        }
        let began = Instant::now();
        let (sfn, arn) = (self.sfn.clone(), machine.clone());
        fan_out(n, c, &ProgressBar::hidden(), move |_| {
            let (sfn, arn) = (sfn.clone(), arn.clone());
            async move { sfn.start(&arn).await }
        })
        .await?;
        // Count completions client-side: polling ListExecutions would load the server.
        let completed = || latency.lock().map_or(0, |h| h.len() as usize);
        while completed() < total {
            if let Some(failed) = workers.try_join_next() {
                failed??;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        workers.shutdown().await;
        while self.sfn.count(&machine, "RUNNING").await? > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let wall = began.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let succeeded = self.sfn.count(&machine, "SUCCEEDED").await?;
        if succeeded != n {
            bail!("{succeeded} of {n} executions SUCCEEDED");
        }
        let mut r = Report::new(format!("activity-tasks {n}×{k}"), "≥ 5,000 Task states/s");
        r.throughput = Some((total as f64 / wall, "Task states/s"));
        if let Ok(h) = latency.lock() {
            r.latency = Some(("SendTaskSuccess", Latency::of(&h)));
        }
        r.rss_mib = self.server.rss_mib();
        r.note =
            format!("all SUCCEEDED after {wall:.2} s; {c} workers long-polling GetActivityTask");
        Ok(vec![r])
    }

    async fn sync_express(&self) -> Result<Vec<Report>> {
        let Sizes {
            requests: n,
            concurrency,
            ..
        } = self.sizes;
        let machine = self
            .sfn
            .create_machine(&self.name("sync-express"), "EXPRESS", &pass_chain(3))
            .await?;
        let mut reports = Vec::new();
        for c in [1, concurrency] {
            let bar = progress(n, &format!("sync-express: {c} client(s)"));
            let began = Instant::now();
            let (sfn, arn) = (self.sfn.clone(), machine.clone());
            let (latency, _) = fan_out(n, c, &bar, move |_| {
                let (sfn, arn) = (sfn.clone(), arn.clone());
                async move {
                    let request = json!({"stateMachineArn": arn, "input": "{}"});
                    let out = sfn.call("StartSyncExecution", &request).await?;
                    if out["status"] != "SUCCEEDED" {
                        bail!("StartSyncExecution answered {out}");
                    }
                    Ok(())
                }
            })
            .await?;
            let wall = began.elapsed().as_secs_f64();
            bar.finish_and_clear();
            let mut r = Report::new(format!("sync-express c={c}"), "p50 ≤ 0.5 ms, p99 ≤ 3 ms");
            r.throughput = Some((n as f64 / wall, "executions/s"));
            r.latency = Some(("StartSyncExecution", Latency::of(&latency)));
            r.rss_mib = self.server.rss_mib();
            r.note = format!("{n} requests");
            reports.push(r);
        }
        Ok(reports)
    }

    async fn parked_waits(&mut self) -> Result<Vec<Report>> {
        let Sizes {
            parked: n,
            concurrency: c,
            wait_seconds,
            ..
        } = self.sizes;
        let definition = json!({"StartAt": "Park", "States": {
            "Park": {"Type": "Wait", "Seconds": wait_seconds, "Next": "Done"},
            "Done": {"Type": "Succeed"}}});
        let machine = self
            .sfn
            .create_machine(&self.name("parked-waits"), "STANDARD", &definition)
            .await?;
        let rss_before = self.server.rss_mib();
        let bar = progress(n, "parked-waits: StartExecution");
        let began = Instant::now();
        let (sfn, arn) = (self.sfn.clone(), machine.clone());
        let (starts, arns) = fan_out(n, c, &bar, move |_| {
            let (sfn, arn) = (sfn.clone(), arn.clone());
            async move { sfn.start(&arn).await }
        })
        .await?;
        let wall = began.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let mut r = Report::new(format!("parked-waits {n}"), "RSS ≤ 512 MiB; resume ≤ 5 s");
        r.throughput = Some((n as f64 / wall, "starts/s"));
        r.latency = Some(("StartExecution", Latency::of(&starts)));
        r.rss_mib = self.server.rss_mib();
        if let Some(before) = rss_before {
            r.note = format!("RSS {before:.0} MiB before the starts; ");
        }
        if !self.server.can_restart() {
            r.note += "restart not measured (needs --spawn)";
        } else if !self.server.is_durable() {
            r.note += "restart not measured (memory store keeps nothing)";
        } else {
            let arns = Arc::new(arns);
            let sweep = self.all_running(&arns, "before the restart").await?;
            let began = Instant::now();
            let answering = self.server.restart(&self.sfn).await?.as_secs_f64();
            self.all_running(&arns, "after the restart").await?;
            let resumed = began.elapsed().as_secs_f64();
            let rss = self.server.rss_mib().unwrap_or(f64::NAN);
            r.note += &format!(
                "after kill -9 + restart: answering in {answering:.2} s, all {n} DescribeExecution RUNNING in {resumed:.2} s (that sweep alone took {sweep:.2} s before the restart), RSS {rss:.0} MiB"
            );
        }
        Ok(vec![r])
    }

    /// Checks with DescribeExecution that every execution is RUNNING; returns the seconds it took.
    async fn all_running(&self, arns: &Arc<Vec<String>>, when: &str) -> Result<f64> {
        let bar = progress(
            arns.len(),
            &format!("parked-waits: DescribeExecution {when}"),
        );
        let began = Instant::now();
        let (sfn, list) = (self.sfn.clone(), arns.clone());
        let when = when.to_owned();
        fan_out(arns.len(), self.sizes.concurrency, &bar, move |i| {
            let (sfn, arns, when) = (sfn.clone(), list.clone(), when.clone());
            async move {
                let request = json!({"executionArn": arns[i]});
                let out = sfn.call("DescribeExecution", &request).await?;
                if out["status"] != "RUNNING" {
                    bail!("{} is {} {when}", arns[i], out["status"]);
                }
                Ok(())
            }
        })
        .await?;
        bar.finish_and_clear();
        Ok(began.elapsed().as_secs_f64())
    }
}

fn unavailable(scenario: &str, target: &'static str, reason: &str) -> Result<Vec<Report>> {
    let mut r = Report::new(scenario, target);
    r.note = format!("not available: {reason}");
    Ok(vec![r])
}

/// A chain of `states` Pass states, each adding a field (so every state moves a payload).
fn pass_chain(states: usize) -> Value {
    let mut map = Map::new();
    for i in 0..states {
        let mut state = json!({"Type": "Pass", "Result": i, "ResultPath": "$.last"});
        if i + 1 == states {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        map.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": map})
}

/// Polls for activity tasks and completes each one at once, until aborted.
async fn activity_worker(
    sfn: Sfn,
    poll: Value,
    bar: ProgressBar,
    latency: Arc<Mutex<Histogram<u64>>>,
) -> Result<()> {
    loop {
        let task = sfn.call("GetActivityTask", &poll).await?;
        let Some(token) = task["taskToken"].as_str() else {
            continue;
        };
        let t = Instant::now();
        let done = json!({"taskToken": token, "output": "{}"});
        sfn.call("SendTaskSuccess", &done).await?;
        if let Ok(mut h) = latency.lock() {
            h.record(t.elapsed().as_micros() as u64)?;
        }
        bar.inc(1);
    }
}

/// A chain of `tasks` activity Task states.
fn task_chain(tasks: usize, activity: &str) -> Value {
    let mut map = Map::new();
    for i in 0..tasks {
        let mut state = json!({"Type": "Task", "Resource": activity});
        if i + 1 == tasks {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("T{}", i + 1));
        }
        map.insert(format!("T{i}"), state);
    }
    json!({"StartAt": "T0", "States": map})
}

fn progress(len: usize, message: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec}")
        .expect("a valid template")
        .progress_chars("=> ");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_message(message.to_owned())
}

/// Runs `op(i)` for every `i` in `0..n` on `concurrency` workers; returns the latency
/// histogram (µs) and the results (in completion order).
async fn fan_out<T, F, Fut>(
    n: usize,
    concurrency: usize,
    bar: &ProgressBar,
    op: F,
) -> Result<(Histogram<u64>, Vec<T>)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (op, next, bar) = (op.clone(), next.clone(), bar.clone());
        workers.spawn(async move {
            let mut latency = Histogram::<u64>::new(3)?;
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok((latency, results));
                }
                let t = Instant::now();
                results.push(op(i).await?);
                latency.record(t.elapsed().as_micros() as u64)?;
                bar.inc(1);
            }
        });
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut results = Vec::with_capacity(n);
    while let Some(worker) = workers.join_next().await {
        let (h, r) = worker??;
        latency.add(h)?;
        results.extend(r);
    }
    Ok((latency, results))
}
