//! `stepwise-bench`: drives a Step Functions endpoint (stepwise, LocalStack, ...) over the AWS
//! JSON 1.0 protocol with the scenarios of docs/design.md §5, and prints a table of throughput,
//! latency percentiles and server RSS (optionally also as JSON).
//!
//! ```sh
//! stepwise-bench --spawn target/release/stepwise            # every scenario, fresh server
//! stepwise-bench --endpoint http://127.0.0.1:4566 pass-chain --executions 20 --states 20
//! stepwise-bench --spawn target/release/stepwise dynamodb-chain   # starts moto too
//! stepwise-bench --endpoint http://127.0.0.1:8098 --also-endpoint http://127.0.0.1:8099 \
//!     pass-chain activity-tasks                                   # two nodes, calls in turn
//! ```

mod client;
mod dynamodb;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use client::Sfn;
use scenarios::{Bench, Scenario, Sizes};
use server::{Server, Spawn};

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Scenarios to run, in this order (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The Step Functions endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    endpoint: String,
    /// Another node of the same service (repeatable): the calls go to `--endpoint` and these
    /// in turn, as behind a round-robin load balancer.
    #[arg(long, value_name = "URL", conflicts_with = "spawn")]
    also_endpoint: Vec<String>,
    /// How the calls spread over the nodes (`--also-endpoint`).
    #[arg(long, value_enum, default_value = "request")]
    balance: client::Balance,
    /// Start this stepwise binary on the endpoint's port (fresh temporary data directory);
    /// enables RSS and the restart in `parked-waits`.
    #[arg(long, value_name = "PATH")]
    spawn: Option<PathBuf>,
    /// Store for the spawned server: `sqlite` (durable) or `memory`.
    #[arg(long, default_value = "sqlite", requires = "spawn")]
    store: String,
    /// An extra argument for the spawned server (repeatable), e.g.
    /// `--server-arg=--console --server-arg=off`.
    #[arg(
        long,
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "spawn"
    )]
    server_arg: Vec<String>,
    /// PID of an already running server, for its RSS.
    #[arg(long, conflicts_with = "spawn")]
    server_pid: Option<u32>,
    /// pass-chain: number of executions.
    #[arg(long, default_value_t = 1000)]
    executions: usize,
    /// pass-chain: Pass states per execution.
    #[arg(long, default_value_t = 100)]
    states: usize,
    /// activity-tasks: number of executions.
    #[arg(long, default_value_t = 500)]
    task_executions: usize,
    /// activity-tasks: Task states per execution.
    #[arg(long, default_value_t = 10)]
    tasks: usize,
    /// sync-express: requests per concurrency level.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// parked-waits: number of parked executions.
    #[arg(long, default_value_t = 100_000)]
    parked: usize,
    /// parked-waits: seconds each execution waits.
    #[arg(long, default_value_t = 3600)]
    wait_seconds: u64,
    /// parallel-map-fanout: number of executions (of each machine).
    #[arg(long, default_value_t = 200)]
    fanout_executions: usize,
    /// parallel-map-fanout: items per inline Map.
    #[arg(long, default_value_t = 100)]
    items: usize,
    /// parallel-map-fanout: branches per Parallel.
    #[arg(long, default_value_t = 10)]
    branches: usize,
    /// redrive-map: items in the inline Map.
    #[arg(long, default_value_t = 10_000)]
    redrive_items: usize,
    /// redrive-map: seconds the failing item waits before failing (must exceed the time the
    /// other iterations take).
    #[arg(long, default_value_t = 5)]
    redrive_hold: u64,
    /// map-tasks: iterations (activity Tasks) of the inline Map.
    #[arg(long, default_value_t = 10_000)]
    map_tasks: usize,
    /// distributed-map: items (= Express child executions) of the Distributed Map (at most
    /// ~131,000: the items come in the execution input, limited to 256 KiB; 0 skips it).
    #[arg(long, default_value_t = 100_000)]
    distributed_items: usize,
    /// distributed-map: items of the Standard-children variant (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    distributed_standard_items: usize,
    /// bulk-redrive: failed executions redriven by one bulk redrive.
    #[arg(long, default_value_t = 1000)]
    bulk_executions: usize,
    /// dynamodb-chain: executions of each type (Express, Standard), run one at a time.
    #[arg(long, default_value_t = 50)]
    dynamodb_executions: usize,
    /// dynamodb-chain: `putItem` Tasks per execution.
    #[arg(long, default_value_t = 20)]
    dynamodb_tasks: usize,
    /// dynamodb-chain: the DynamoDB endpoint the server calls (and the bench calls directly
    /// to measure the service's latency). Without it, a spawned server gets a moto the bench
    /// starts.
    #[arg(long, value_name = "URL")]
    dynamodb_endpoint: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.scenarios.is_empty() {
        args.scenarios = Scenario::value_variants().to_vec();
    }
    let sfn = Sfn::new(
        std::iter::once(args.endpoint.clone())
            .chain(args.also_endpoint.iter().cloned())
            .collect(),
        args.balance,
    )?;
    // dynamodb-chain against a spawned server: a moto of our own unless one is given.
    let moto = match (
        args.scenarios.contains(&Scenario::DynamodbChain),
        &args.dynamodb_endpoint,
        &args.spawn,
    ) {
        (true, None, Some(_)) => Some(dynamodb::Moto::start().await?),
        _ => None,
    };
    let dynamodb = args
        .dynamodb_endpoint
        .clone()
        .or_else(|| moto.as_ref().map(|m| m.endpoint.clone()));
    let server = match &args.spawn {
        Some(path) => {
            let url = reqwest::Url::parse(&args.endpoint)?;
            let spawn = Spawn {
                path: path.clone(),
                port: url
                    .port_or_known_default()
                    .context("endpoint without a port")?,
                store: args.store.clone(),
                data_dir: std::env::temp_dir()
                    .join(format!("stepwise-bench-{}", std::process::id())),
                extra_args: dynamodb
                    .iter()
                    .flat_map(|url| ["--endpoint".to_owned(), format!("dynamodb={url}")])
                    .chain(args.server_arg.iter().cloned())
                    .collect(),
            };
            Server::spawn(spawn, &sfn).await?
        }
        None => Server::external(args.server_pid),
    };
    let mut bench = Bench {
        sfn,
        server,
        sizes: Sizes {
            executions: args.executions,
            states: args.states,
            task_executions: args.task_executions,
            tasks: args.tasks,
            requests: args.requests,
            concurrency: args.concurrency,
            parked: args.parked,
            wait_seconds: args.wait_seconds,
            fanout_executions: args.fanout_executions,
            items: args.items,
            branches: args.branches,
            redrive_items: args.redrive_items,
            redrive_hold: args.redrive_hold,
            map_tasks: args.map_tasks,
            distributed_items: args.distributed_items,
            distributed_standard_items: args.distributed_standard_items,
            bulk_executions: args.bulk_executions,
            dynamodb_executions: args.dynamodb_executions,
            dynamodb_tasks: args.dynamodb_tasks,
        },
        run_id: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis(),
        dynamodb,
    };
    let mut reports = Vec::new();
    for scenario in args.scenarios {
        match bench.run(scenario).await {
            Ok(rows) => reports.extend(rows),
            Err(e) => {
                let name = scenario
                    .to_possible_value()
                    .map(|v| v.get_name().to_owned());
                let mut row = report::Report::new(name.unwrap_or_default(), "");
                row.note = format!("error: {e:#}");
                reports.push(row);
            }
        }
    }
    print!("{}", report::table(&reports));
    if let Some(file) = args.json {
        let json: Vec<_> = reports.iter().map(report::Report::json).collect();
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}
