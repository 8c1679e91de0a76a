//! The load scenarios of docs/design.md §5. Each one creates its own state machine (unique name
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
    /// One Inline Map of 10,000 activity Tasks, all waiting at once, served by workers.
    MapTasks,
    /// N executions parked in a long Wait: server RSS, then resume time after a restart.
    ParkedWaits,
    /// Distributed Map over 100,000 items with Express children (and 2,000 Standard ones).
    DistributedMap,
    /// ListStateMachines latency while four executions evaluate JSONata to its time limit.
    ApiUnderLoad,
    /// A bulk redrive (stepwise's extension API) of 1,000 failed executions: dry run, then
    /// the run to its end.
    BulkRedrive,
    /// Chains of DynamoDB `putItem` Tasks against a local DynamoDB: the engine's overhead
    /// per integration call (docs/performance.md).
    DynamodbChain,
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
    /// parallel-map-fanout: executions, items per Map, branches per Parallel.
    pub fanout_executions: usize,
    pub items: usize,
    pub branches: usize,
    /// redrive-map: items in the Map, and how long the failing item waits before it fails
    /// (so every other iteration has succeeded by then).
    pub redrive_items: usize,
    pub redrive_hold: u64,
    /// map-tasks: iterations (each an activity Task) of the inline Map.
    pub map_tasks: usize,
    /// distributed-map: items (= children) of the Express-children Map Run and of the
    /// Standard-children one (0 skips it).
    pub distributed_items: usize,
    pub distributed_standard_items: usize,
    /// bulk-redrive: failed executions to redrive.
    pub bulk_executions: usize,
    /// dynamodb-chain: executions of each type, and `putItem` Tasks per execution.
    pub dynamodb_executions: usize,
    pub dynamodb_tasks: usize,
}

/// What every scenario runs against.
pub struct Bench {
    pub sfn: Sfn,
    pub server: Server,
    pub sizes: Sizes,
    /// Makes state machine names unique per run.
    pub run_id: u128,
    /// The DynamoDB endpoint the server sends its calls to (dynamodb-chain).
    pub dynamodb: Option<String>,
}

impl Bench {
    pub async fn run(&mut self, scenario: Scenario) -> Result<Vec<Report>> {
        match scenario {
            Scenario::PassChain => self.pass_chain().await,
            Scenario::SyncExpress => self.sync_express().await,
            Scenario::ParkedWaits => self.parked_waits().await,
            Scenario::ActivityTasks => self.activity_tasks().await,
            Scenario::ParallelMapFanout => self.parallel_map_fanout().await,
            Scenario::RedriveMap => self.redrive_map().await,
            Scenario::MapTasks => self.map_tasks().await,
            Scenario::DistributedMap => self.distributed_map().await,
            Scenario::ApiUnderLoad => self.api_under_load().await,
            Scenario::BulkRedrive => self.bulk_redrive().await,
            Scenario::DynamodbChain => self.dynamodb_chain().await,
        }
    }

    pub(crate) fn name(&self, scenario: &str) -> String {
        format!("bench-{scenario}-{}", self.run_id)
    }

    /// A new activity for `scenario`: its ARN.
    async fn activity(&self, scenario: &str) -> Result<String> {
        let request = json!({"name": self.name(scenario)});
        let out = self.sfn.call("CreateActivity", &request).await?;
        Ok(out["activityArn"].as_str().unwrap_or_default().to_owned())
    }

    /// `count` workers long-polling `activity`, each answering every task at once.
    fn workers(
        &self,
        activity: &str,
        count: usize,
        bar: &ProgressBar,
        latency: &Arc<Mutex<Histogram<u64>>>,
    ) -> JoinSet<Result<()>> {
        let mut workers = JoinSet::new();
        for w in 0..count {
            let poll = json!({"activityArn": activity, "workerName": format!("bench-{w}")});
            let (sfn, bar, latency) = (self.sfn.for_worker(), bar.clone(), latency.clone());
            workers.spawn(activity_worker(sfn, poll, bar, latency));
        }
        workers
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
        let activity = self.activity("activity").await?;
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
        let mut workers = self.workers(&activity, c, &bar, &latency);
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

    async fn api_under_load(&self) -> Result<Vec<Report>> {
        const RUNAWAYS: usize = 4;
        let requests = self.sizes.requests.min(2_000);
        let spin = "($f := function($n) { $n < 2 ? $n : $f($n - 1) + $f($n - 2) }; $f(60))";
        let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Spin", "States": {
            "Spin": {"Type": "Pass", "Output": format!("{{% {spin} %}}"), "End": true}}});
        let machine = self
            .sfn
            .create_machine(&self.name("api-under-load"), "STANDARD", &definition)
            .await?;
        // StartExecution answers once the first state has run: start them in the background.
        let mut spinning = JoinSet::new();
        for _ in 0..RUNAWAYS {
            let (sfn, arn) = (self.sfn.clone(), machine.clone());
            spinning.spawn(async move { sfn.start(&arn).await });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bar = progress(requests, "api-under-load: ListStateMachines");
        let began = Instant::now();
        let sfn = self.sfn.clone();
        let (latency, _) = fan_out(requests, 1, &bar, move |_| {
            let sfn = sfn.clone();
            async move { sfn.call("ListStateMachines", &json!({})).await.map(|_| ()) }
        })
        .await?;
        let busy = began.elapsed();
        bar.finish_and_clear();
        while let Some(started) = spinning.join_next().await {
            started??;
        }
        let mut r = Report::new("api-under-load", "ListStateMachines p99 < 50 ms");
        r.latency = Some(("ListStateMachines", Latency::of(&latency)));
        r.rss_mib = self.server.rss_mib();
        r.note = format!(
            "{requests} sequential calls in {:.2} s (slowest {:.1} ms) while {RUNAWAYS} executions evaluate JSONata to its 5 s limit",
            busy.as_secs_f64(),
            latency.max() as f64 / 1000.0
        );
        Ok(vec![r])
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

    async fn parallel_map_fanout(&self) -> Result<Vec<Report>> {
        let Sizes {
            fanout_executions: n,
            items: k,
            branches: b,
            ..
        } = self.sizes;
        let items: Vec<usize> = (0..k).collect();
        let map = self
            .sfn
            .create_machine(&self.name("inline-map"), "STANDARD", &inline_map())
            .await?;
        let (wall, run) = self
            .run_all(&map, json!({"items": items}), "inline Map")
            .await?;
        let mut m = Report::new(format!("inline-map {n}×{k}"), "(no §5 figure)");
        m.throughput = Some(((n * k) as f64 / wall, "iterations/s"));
        m.latency = Some(("start → SUCCEEDED", run.latency));
        m.rss_mib = self.server.rss_mib();
        m.note = format!(
            "all SUCCEEDED after {wall:.2} s; StartExecution p50 {:.2} ms; MaxConcurrency 10, Pass processor",
            run.start_p50
        );
        let parallel = self
            .sfn
            .create_machine(&self.name("parallel"), "STANDARD", &parallel(b))
            .await?;
        let (wall, run) = self.run_all(&parallel, json!({}), "Parallel").await?;
        let mut p = Report::new(format!("parallel {n}×{b}"), "(no §5 figure)");
        p.throughput = Some(((n * b) as f64 / wall, "branches/s"));
        p.latency = Some(("start → SUCCEEDED", run.latency));
        p.rss_mib = self.server.rss_mib();
        p.note = format!(
            "all SUCCEEDED after {wall:.2} s; StartExecution p50 {:.2} ms; one Pass per branch",
            run.start_p50
        );
        Ok(vec![m, p])
    }

    /// Runs `fanout_executions` executions of `machine`, each client starting one and polling
    /// DescribeExecution until it SUCCEEDED; returns the wall time and the latencies.
    async fn run_all(&self, machine: &str, input: Value, what: &str) -> Result<(f64, Run)> {
        let Sizes {
            fanout_executions: n,
            concurrency: c,
            ..
        } = self.sizes;
        let bar = progress(n, &format!("parallel-map-fanout: {what}"));
        let began = Instant::now();
        let (sfn, arn, input) = (self.sfn.clone(), machine.to_owned(), Arc::new(input));
        let (latency, starts) = fan_out(n, c, &bar, move |_| {
            let (sfn, arn, input) = (sfn.clone(), arn.clone(), input.clone());
            async move {
                let t = Instant::now();
                let execution = sfn.start_with(&arn, &input).await?;
                let start = t.elapsed().as_micros() as u64;
                let out = sfn.until_done(&execution).await?;
                if out["status"] != "SUCCEEDED" {
                    bail!("{execution} is {}: {}", out["status"], out["cause"]);
                }
                Ok(start)
            }
        })
        .await?;
        let wall = began.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let mut start = Histogram::<u64>::new(3)?;
        for s in starts {
            start.record(s)?;
        }
        let run = Run {
            latency: Latency::of(&latency),
            start_p50: Latency::of(&start).p50,
        };
        Ok((wall, run))
    }

    /// One execution of a large inline Map in which one item fails the first time, then
    /// RedriveExecution: its latency, which iterations ran again, and the time to SUCCEEDED.
    async fn redrive_map(&self) -> Result<Vec<Report>> {
        let Sizes {
            redrive_items: k,
            redrive_hold: hold,
            ..
        } = self.sizes;
        let failing = FAILING_ITEM.min(k.saturating_sub(1));
        let machine = self
            .sfn
            .create_machine(&self.name("redrive-map"), "STANDARD", &redrive_map(failing))
            .await?;
        let items: Vec<usize> = (0..k).collect();
        let input = json!({"items": items, "hold": hold});
        let began = Instant::now();
        let execution = self.sfn.start_with(&machine, &input).await?;
        let start_ms = began.elapsed().as_secs_f64() * 1e3;
        let first = self.sfn.until_done(&execution).await?;
        let first_run = began.elapsed().as_secs_f64();
        if first["status"] != "FAILED" {
            bail!("first run ended {} instead of FAILED", first["status"]);
        }
        // The whole first-run history: every other iteration must have succeeded.
        let (mut counts, mut started_at, mut last_success) = (Counts::default(), 0.0, 0.0);
        let read = Instant::now();
        let pages = self
            .sfn
            .history(&execution, false, |e| {
                let t = e["timestamp"].as_f64().unwrap_or(0.0);
                match e["type"].as_str() {
                    Some("ExecutionStarted") => started_at = t,
                    Some("MapIterationSucceeded") => last_success = t,
                    _ => {}
                }
                counts.add(e);
                true
            })
            .await?;
        let history_s = read.elapsed().as_secs_f64();
        let first_counts = counts;
        if first_counts.succeeded + 1 != k || first_counts.failed != 1 {
            bail!(
                "first run: {first_counts} (expected {} succeeded, 1 failed; raise --redrive-hold above the time the other iterations take)",
                k - 1
            );
        }
        let mut r = Report::new(
            format!("redrive-map {k}"),
            "1 iteration re-runs; RedriveExecution ≤ 10 ms",
        );
        let first_run_note = format!(
            "first run: StartExecution answered in {start_ms:.1} ms, {} iterations succeeded {:.2} s after the start, FAILED after {first_run:.2} s (item {failing} held {hold} s), its {} events read in {pages} pages in {history_s:.2} s",
            k - 1,
            last_success - started_at,
            first_counts.events,
        );
        // RedriveExecution, then only the newest events up to ExecutionRedriven.
        let t = Instant::now();
        let redriven = self
            .sfn
            .call("RedriveExecution", &json!({"executionArn": execution}))
            .await;
        let redrive_ms = t.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = redriven {
            r.note = format!("RedriveExecution refused ({e:#}); {first_run_note}");
            return Ok(vec![r]);
        }
        let done = self.sfn.until_done(&execution).await?;
        let to_success = t.elapsed().as_secs_f64() * 1e3;
        if done["status"] != "SUCCEEDED" {
            bail!("after the redrive: {} {}", done["status"], done["cause"]);
        }
        let mut after = Counts::default();
        let t = Instant::now();
        let tail_pages = self
            .sfn
            .history(&execution, true, |e| {
                after.add(e);
                e["type"] != "ExecutionRedriven"
            })
            .await?;
        let tail_ms = t.elapsed().as_secs_f64() * 1e3;
        let reran = after.indices.len();
        let verdict = if reran == 1 { "met" } else { "MISSED" };
        let once = Latency {
            p50: redrive_ms,
            p95: redrive_ms,
            p99: redrive_ms,
        };
        r.latency = Some(("RedriveExecution, one request", once));
        r.rss_mib = self.server.rss_mib();
        r.note = format!(
            "after the redrive: {reran} iteration(s) ran again ({verdict}; {after}, {} events, {tail_pages} page(s) of reverse history in {tail_ms:.1} ms), SUCCEEDED {to_success:.1} ms after RedriveExecution was sent; {first_run_note}",
            after.events,
        );
        Ok(vec![r])
    }

    /// `bulk_executions` executions that fail at once (Pass → Fail), then one bulk redrive of
    /// them all: the dry run's time, and the time from the request until the batch reports
    /// every execution redriven (each runs again and fails again meanwhile).
    async fn bulk_redrive(&self) -> Result<Vec<Report>> {
        let Sizes {
            bulk_executions: n,
            concurrency: c,
            ..
        } = self.sizes;
        let definition = json!({
            "StartAt": "Prepare",
            "States": {
                "Prepare": {"Type": "Pass", "Next": "Broken"},
                "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "bench"}
            }
        });
        let machine = self
            .sfn
            .create_machine(&self.name("bulk-redrive"), "STANDARD", &definition)
            .await?;
        let bar = progress(n, "bulk-redrive: failing executions");
        let (sfn, arn) = (self.sfn.clone(), machine.clone());
        fan_out(n, c, &bar, move |_| {
            let (sfn, arn) = (sfn.clone(), arn.clone());
            async move { sfn.until_done(&sfn.start(&arn).await?).await }
        })
        .await?;
        bar.finish_and_clear();
        let selection = json!({"stateMachineArn": machine, "errorName": "Nope"});
        let mut dry = selection.clone();
        dry["dryRun"] = json!(true);
        let t = Instant::now();
        let planned = self.sfn.call_stepwise("BulkRedrive", &dry).await?;
        let dry_ms = t.elapsed().as_secs_f64() * 1e3;
        if planned["redrivable"] != json!(n) {
            bail!(
                "the dry run found {} redrivable, not {n}",
                planned["redrivable"]
            );
        }
        let mut run = selection;
        run["batchToken"] = json!(self.name("batch"));
        let describe = json!({"batchToken": run["batchToken"], "maxResults": 1});
        let t = Instant::now();
        self.sfn.call_stepwise("BulkRedrive", &run).await?;
        let report = loop {
            let report = self
                .sfn
                .call_stepwise("DescribeBulkRedrive", &describe)
                .await?;
            if report["status"] == "COMPLETED" {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let seconds = t.elapsed().as_secs_f64();
        if report["redriven"] != json!(n) {
            bail!("the batch redrove {} of {n}", report["redriven"]);
        }
        let mut r = Report::new(format!("bulk-redrive {n}"), "1,000 executions < 2 s");
        r.throughput = Some((n as f64 / seconds, "executions/s"));
        r.rss_mib = self.server.rss_mib();
        r.note = format!(
            "{n} redriven in {seconds:.2} s ({}); dry run of {n} in {dry_ms:.0} ms",
            if seconds < 2.0 { "met" } else { "MISSED" }
        );
        Ok(vec![r])
    }

    /// One inline Map whose iterations are activity Tasks, with no concurrency limit: every
    /// iteration waits on its task at once while `concurrency` workers serve them. Each task
    /// that ends is a transition of an execution with thousands of waiting lanes.
    async fn map_tasks(&self) -> Result<Vec<Report>> {
        let Sizes {
            map_tasks: n,
            concurrency: c,
            ..
        } = self.sizes;
        let activity = self.activity("map-tasks").await?;
        let processor = task_chain(1, &activity);
        let definition = json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "ResultPath": null, "End": true,
            "ItemProcessor": processor}}});
        let machine = self
            .sfn
            .create_machine(&self.name("map-tasks"), "STANDARD", &definition)
            .await?;
        let bar = progress(n, "map-tasks: tasks completed");
        let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
        let mut workers = self.workers(&activity, c, &bar, &latency);
        let items: Vec<usize> = (0..n).collect();
        let began = Instant::now();
        let execution = self
            .sfn
            .start_with(&machine, &json!({ "items": items }))
            .await?;
        let done = self.sfn.until_done(&execution).await?;
        let wall = began.elapsed().as_secs_f64();
        workers.shutdown().await;
        bar.finish_and_clear();
        if done["status"] != "SUCCEEDED" {
            bail!("map-tasks ended {} {}", done["status"], done["cause"]);
        }
        let mut r = Report::new(format!("map-tasks {n}"), "(no §5 figure)");
        r.throughput = Some((n as f64 / wall, "Task states/s"));
        if let Ok(h) = latency.lock() {
            r.latency = Some(("SendTaskSuccess", Latency::of(&h)));
        }
        r.rss_mib = self.server.rss_mib();
        r.note = format!(
            "SUCCEEDED after {wall:.2} s; one Map, no MaxConcurrency, {c} workers long-polling GetActivityTask"
        );
        Ok(vec![r])
    }

    /// One Distributed Map over the execution input's items, with Express children and then
    /// (smaller) with Standard children: child executions/s from StartExecution to the parent
    /// SUCCEEDED, checked against DescribeMapRun's counts, and the server's peak RSS.
    async fn distributed_map(&self) -> Result<Vec<Report>> {
        let Sizes {
            distributed_items: express_items,
            distributed_standard_items: standard_items,
            ..
        } = self.sizes;
        let mut reports = Vec::new();
        if express_items > 0 {
            reports.push(self.map_run(true, express_items).await?);
        }
        if standard_items > 0 {
            reports.push(self.map_run(false, standard_items).await?);
        }
        Ok(reports)
    }

    async fn map_run(&self, express: bool, n: usize) -> Result<Report> {
        let kind = if express { "EXPRESS" } else { "STANDARD" };
        // One-digit items: 2 bytes each, so 100,000 of them fit in the 256 KiB input.
        let items: Vec<usize> = (0..n).map(|i| i % 10).collect();
        let input = json!({ "items": items });
        let size = input.to_string().len();
        if size > MAX_INPUT_BYTES {
            bail!(
                "{n} items make a {size}-byte execution input, over the 256 KiB limit (at most ~{} items)",
                (MAX_INPUT_BYTES - 12) / 2
            );
        }
        let label = if express { "express" } else { "standard" };
        let machine = self
            .sfn
            .create_machine(
                &self.name(&format!("distributed-map-{label}")),
                "STANDARD",
                &distributed_map(kind),
            )
            .await?;
        let bar = progress(n, &format!("distributed-map: {label} children succeeded"));
        // VmHWM only counts when it could be reset (else it is the peak since the server started).
        let peak_known = self.server.reset_peak_rss();
        let mut rss_sampled = self.server.rss_mib();
        let began = Instant::now();
        let execution = self.sfn.start_with(&machine, &input).await?;
        let start_ms = began.elapsed().as_secs_f64() * 1e3;
        // The Map Run (ListMapRuns), then its counts (DescribeMapRun, a small answer) until it
        // ended, and only then DescribeExecution (whose answer carries the 200 KB input).
        let list = json!({"executionArn": execution});
        let map_run = loop {
            let out = self.sfn.call("ListMapRuns", &list).await?;
            if let Some(arn) = out["mapRuns"][0]["mapRunArn"].as_str() {
                break arn.to_owned();
            }
            if began.elapsed() > MAP_RUN_DEADLINE {
                bail!("no Map Run listed for {execution} after {MAP_RUN_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let listed_ms = began.elapsed().as_secs_f64() * 1e3;
        let describe = json!({"mapRunArn": map_run});
        loop {
            let out = self.sfn.call("DescribeMapRun", &describe).await?;
            bar.set_position(out["itemCounts"]["succeeded"].as_u64().unwrap_or(0));
            rss_sampled = max_of(rss_sampled, self.server.rss_mib());
            if out["status"] != "RUNNING" {
                break;
            }
            if began.elapsed() > MAP_RUN_DEADLINE {
                bail!("Map Run still RUNNING after {MAP_RUN_DEADLINE:?}: {out}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let done = self.sfn.until_done(&execution).await?;
        let wall = began.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if done["status"] != "SUCCEEDED" {
            bail!(
                "{execution} is {}: {} {}",
                done["status"],
                done["error"],
                done["cause"]
            );
        }
        let run = self.sfn.call("DescribeMapRun", &describe).await?;
        let (items_done, executions) = (&run["itemCounts"], &run["executionCounts"]);
        let all = |counts: &Value| {
            counts["succeeded"].as_u64() == Some(n as u64)
                && counts["total"].as_u64() == Some(n as u64)
        };
        if run["status"] != "SUCCEEDED" || !all(items_done) || !all(executions) {
            bail!(
                "Map Run {}: itemCounts {items_done}, executionCounts {executions} (expected {n} succeeded)",
                run["status"]
            );
        }
        let map_run_s = map_run_seconds(&run);
        let target = if express {
            "≥ 20,000 child executions/s"
        } else {
            "(no §5 figure)"
        };
        let mut r = Report::new(format!("distributed-map {label} {n}"), target);
        r.throughput = Some((n as f64 / wall, "child executions/s"));
        let once = Latency {
            p50: start_ms,
            p95: start_ms,
            p99: start_ms,
        };
        r.latency = Some(("StartExecution, one request", once));
        let peak = self.server.peak_rss_mib().filter(|_| peak_known);
        r.rss_mib = max_of(peak, rss_sampled);
        r.note = format!(
            "parent SUCCEEDED {wall:.2} s after StartExecution was sent; DescribeMapRun: SUCCEEDED, itemCounts and executionCounts {n}/{n} succeeded, Map Run startDate → stopDate {}; Map Run listed after {listed_ms:.0} ms; {kind} children, one Pass each, MaxConcurrency 0; input {size} bytes; RSS {} (now {})",
            map_run_s.map_or("-".into(), |s| format!("{s:.2} s")),
            match (peak, rss_sampled) {
                (Some(p), _) => format!("peak {p:.0} MiB (VmHWM)"),
                (None, Some(s)) => format!("max sampled {s:.0} MiB"),
                (None, None) => "not known".into(),
            },
            self.server
                .rss_mib()
                .map_or("-".into(), |m| format!("{m:.0} MiB")),
        );
        Ok(r)
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

/// AWS's limit on an execution's input (and on a state's output).
const MAX_INPUT_BYTES: usize = 262_144;

/// How long `distributed-map` waits for its Map Run to appear and to end.
const MAP_RUN_DEADLINE: Duration = Duration::from_secs(1800);

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A Map Run's `stopDate - startDate` in seconds (epoch seconds on the wire).
fn map_run_seconds(run: &Value) -> Option<f64> {
    Some(run["stopDate"].as_f64()? - run["startDate"].as_f64()?)
}

/// The Map item that fails on the first run of `redrive-map`.
const FAILING_ITEM: usize = 4242;

/// Execution latency percentiles (StartExecution sent → DescribeExecution answers SUCCEEDED)
/// and the StartExecution p50 of `run_all`.
struct Run {
    latency: Latency,
    start_p50: f64,
}

/// Map iteration events of a history (or part of one).
#[derive(Default)]
struct Counts {
    events: usize,
    started: usize,
    succeeded: usize,
    failed: usize,
    aborted: usize,
    /// The iteration indices named by MapIteration* events.
    indices: std::collections::BTreeSet<u64>,
}

impl Counts {
    fn add(&mut self, event: &Value) {
        self.events += 1;
        let Some(kind) = event["type"].as_str() else {
            return;
        };
        let Some(phase) = kind.strip_prefix("MapIteration") else {
            return;
        };
        match phase {
            "Started" => self.started += 1,
            "Succeeded" => self.succeeded += 1,
            "Failed" => self.failed += 1,
            "Aborted" => self.aborted += 1,
            _ => {}
        }
        let details = event
            .as_object()
            .and_then(|o| o.values().find_map(|v| v.get("index")));
        if let Some(index) = details.and_then(Value::as_u64) {
            self.indices.insert(index);
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MapIteration Started {} / Succeeded {} / Failed {} / Aborted {}",
            self.started, self.succeeded, self.failed, self.aborted
        )
    }
}

/// An inline Map over `$.items` whose processor is one Pass state.
fn inline_map() -> Value {
    json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 10, "ResultPath": null,
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Touch",
            "States": {"Touch": {"Type": "Pass", "Result": "ok", "ResultPath": "$.seen", "End": true}}
        },
        "End": true}}})
}

/// A Distributed Map over `$.items` whose children (`EXPRESS` or `STANDARD`) run one Pass
/// state answering `0`: the Map Run's result (`[0,0,…]`, 2 bytes an item) stays within the
/// 256 KiB a state's output may have, as the items do in the input. The results are then
/// dropped and the parent's output is `{}`.
fn distributed_map(execution_type: &str) -> Value {
    json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "ResultPath": null, "OutputPath": null,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": "Touch",
            "States": {"Touch": {"Type": "Pass", "Result": 0, "End": true}}
        },
        "End": true}}})
}

/// A Parallel state with `branches` branches of one Pass state each.
fn parallel(branches: usize) -> Value {
    let branch = |i: usize| json!({"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": i, "End": true}}});
    json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Parallel", "ResultPath": null,
        "Branches": (0..branches).map(branch).collect::<Vec<_>>(),
        "End": true}}})
}

/// An inline Map over `$.items` in which item `failing` fails on the first run only: it waits
/// `$.hold` seconds (so every other iteration has succeeded by then), then reaches a Choice
/// with no matching rule (States.NoChoiceMatched). Redrive re-enters that Choice, where
/// `$$.Execution.RedriveCount` is now 1. (The item index comes in through ItemSelector; the
/// redrive count is read from `$$` in the processor, because an iteration keeps its input.)
fn redrive_map(failing: usize) -> Value {
    let first_run_of_failing = json!({"And": [
        {"Variable": "$.index", "NumericEquals": failing},
        {"Variable": "$$.Execution.RedriveCount", "NumericEquals": 0}], "Next": "Hold"});
    json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "ResultPath": null,
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "hold.$": "$.hold"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Route",
            "States": {
                "Route": {"Type": "Choice",
                    "Choices": [first_run_of_failing],
                    "Default": "Done"},
                "Hold": {"Type": "Wait", "SecondsPath": "$.hold", "Next": "Check"},
                "Check": {"Type": "Choice",
                    "Choices": [{"Variable": "$$.Execution.RedriveCount", "NumericGreaterThan": 0, "Next": "Done"}]},
                "Done": {"Type": "Succeed"}
            }
        },
        "End": true}}})
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
