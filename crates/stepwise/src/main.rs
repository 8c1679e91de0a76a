//! `stepwise`: the server (`serve`), the local front doors (`validate`, `run`) and the
//! redrive extensions' client (`redrive`).

mod redrive_cli;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

mod health;
mod metrics;
mod traces;

#[derive(Parser)]
#[command(
    name = "stepwise",
    version,
    about = "A self-hosted AWS Step Functions-compatible workflow engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve(Box<Serve>),
    /// Check a state machine definition and print its diagnostics.
    Validate {
        /// The definition file (Amazon States Language JSON).
        file: PathBuf,
    },
    /// Run a definition once, locally, and print its output and history.
    Run(Box<Run>),
    /// Redrive beyond AWS, on a running server (docs/redrive-extensions.md).
    Redrive {
        #[command(flatten)]
        connection: redrive_cli::Connection,
        #[command(subcommand)]
        command: redrive_cli::Redrive,
    },
}

#[derive(clap::Args)]
struct Run {
    file: PathBuf,
    /// The execution input (JSON).
    #[arg(long, default_value = "{}")]
    input: String,
    #[arg(long, env = "WAIT_TIME_SCALE", default_value_t = 1.0)]
    wait_time_scale: f64,
    /// Step Functions Local MockConfigFile whose `--test-case` the run uses.
    #[arg(long, env = "SFN_MOCK_CONFIG", requires = "test_case")]
    mock_config: Option<PathBuf>,
    /// The test case of `--mock-config` to run.
    #[arg(long, requires = "mock_config")]
    test_case: Option<String>,
    /// The state machine's name (what the mock configuration's `StateMachines` are keyed
    /// by). Default: the one state machine of `--mock-config` with the test case, else
    /// `local-run`.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    endpoints: Endpoints,
}

/// Where task integrations send their calls, and as whom (`serve` and `run`).
#[derive(clap::Args)]
struct Endpoints {
    /// Where Lambda tasks are invoked (Lambda Invoke REST API), e.g. http://127.0.0.1:3001.
    #[arg(long, env = "LAMBDA_ENDPOINT")]
    lambda_endpoint: Option<String>,
    /// One AWS-compatible endpoint for every service integration (LocalStack, moto).
    #[arg(long, env = "STEPWISE_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// A per-service endpoint, `SERVICE=URL` (repeatable; SERVICE as in
    /// `aws-sdk:SERVICE`, e.g. `sqs=http://127.0.0.1:9324`). Also read from Step Functions
    /// Local's SQS_ENDPOINT, SNS_ENDPOINT, DYNAMODB_ENDPOINT, EVENTBRIDGE_ENDPOINT,
    /// BATCH_ENDPOINT, ECS_ENDPOINT, GLUE_ENDPOINT, SAGE_MAKER_ENDPOINT, STEP_FUNCTIONS_ENDPOINT.
    #[arg(long = "endpoint", value_name = "SERVICE=URL", value_parser = parse_endpoint)]
    endpoints: Vec<(String, String)>,
    /// Each execution's calls use the credentials STS AssumeRole gives for its state
    /// machine's role (a Task's `Credentials` assume their own role with or without it).
    #[arg(long, env = "STEPWISE_ASSUME_EXECUTION_ROLE")]
    assume_execution_role: bool,
}

impl Endpoints {
    /// `config` with these endpoints.
    fn apply(self, config: engine::Config) -> engine::Config {
        engine::Config {
            lambda_endpoint: self.lambda_endpoint,
            aws_endpoint: self.aws_endpoint,
            endpoints: service_endpoints(self.endpoints),
            assume_execution_role: self.assume_execution_role,
            ..config
        }
    }
}

#[derive(clap::Args)]
struct Serve {
    #[arg(long, env = "STEPWISE_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "STEPWISE_PORT", default_value_t = 8083)]
    port: u16,
    #[arg(long, env = "STEPWISE_DATA_DIR", default_value = "./stepwise-data")]
    data_dir: PathBuf,
    /// `sqlite`, `memory` (tests only) or a `postgres://` URL.
    #[arg(long, env = "STEPWISE_STORE", default_value = "sqlite")]
    store: String,
    /// This node's name in the lease of a PostgreSQL store (default: host name and process id).
    #[arg(long, env = "STEPWISE_NODE_ID")]
    node_id: Option<String>,
    /// How long a PostgreSQL node's lease holds without renewal: the longest a standby waits
    /// to take over from a node that died (with `--active-nodes`: its shards, and its claim
    /// on the bulk redrive it drives).
    #[arg(long, env = "STEPWISE_LEASE_TTL", default_value = "10s", value_parser = parse_duration)]
    lease_ttl: u64,
    /// Experimental, PostgreSQL only: every node serves and runs the executions of the shards
    /// it holds, instead of one active node and standbys (docs/deployment.md says what is
    /// missing).
    #[arg(long, env = "STEPWISE_ACTIVE_NODES")]
    active_nodes: bool,
    #[arg(long, env = "STEPWISE_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
    /// Step Functions Local MockConfigFile: executions started on `stateMachineArn#TestCase`
    /// use its mocked responses.
    #[arg(long, env = "SFN_MOCK_CONFIG")]
    mock_config: Option<PathBuf>,
    #[command(flatten)]
    endpoints: Endpoints,
    /// Multiplies Wait durations and timeouts.
    #[arg(long, env = "WAIT_TIME_SCALE", default_value_t = 1.0)]
    wait_time_scale: f64,
    /// How long a closed execution stays redrivable; `none`: for ever.
    #[arg(long, env = "STEPWISE_REDRIVE_WINDOW", default_value = "14d", value_parser = parse_window)]
    redrive_window: Limit,
    #[arg(long, env = "STEPWISE_MAX_EXECUTION_TIME", default_value = "365d", value_parser = parse_duration)]
    max_execution_time: u64,
    /// The history cap, which a redrive also needs room under; `none`: no cap.
    #[arg(long, env = "STEPWISE_MAX_HISTORY_EVENTS", default_value = "25000", value_parser = parse_cap)]
    max_history_events: Limit,
    /// Executions a bulk redrive redrives per second; 0: no limit.
    #[arg(long, env = "STEPWISE_BULK_REDRIVE_RATE", default_value_t = 0)]
    bulk_redrive_rate: u32,
    #[arg(
        long,
        env = "STEPWISE_MAX_OPEN_EXECUTIONS",
        default_value_t = 1_000_000
    )]
    max_open_executions: u64,
    /// `text` or `json`.
    #[arg(long, env = "STEPWISE_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// `none`: any signature is accepted and every caller is `--account-id` (local use);
    /// `sigv4`: signatures are verified against `--credentials-file`.
    #[arg(long, env = "STEPWISE_AUTH", value_enum, default_value = "none")]
    auth: AuthMode,
    /// A bearer token `GET /metrics` requires (`Authorization: Bearer TOKEN`). Without one,
    /// `/metrics` is open under `--auth none` and refused under `--auth sigv4`.
    #[arg(long, env = "STEPWISE_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// Access keys for `--auth sigv4`, in the AWS shared-credentials format: one
    /// `[profile]` per key with `aws_access_key_id`, `aws_secret_access_key` and
    /// `aws_account_id` (default `--account-id`).
    #[arg(long, env = "STEPWISE_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// Host names requests may address (comma-separated), against DNS rebinding. Default:
    /// the loopback names when listening on loopback, any name otherwise.
    #[arg(long, env = "STEPWISE_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Lets HTTP Tasks reach link-local and cloud metadata addresses (169.254.0.0/16,
    /// fe80::/10, fd00:ec2::254), which they may not by default.
    #[arg(long, env = "STEPWISE_ALLOW_LINK_LOCAL")]
    allow_link_local: bool,
    /// Serve https with this PEM certificate chain (and `--tls-key`) instead of http.
    #[arg(long, env = "STEPWISE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "STEPWISE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the web console on `GET /`; `off`: `GET /` and the console's files answer 404.
    #[arg(long, env = "STEPWISE_CONSOLE", value_enum, default_value = "on")]
    console: Switch,
    /// Export OpenTelemetry traces of API requests and executions to this OTLP/HTTP
    /// collector (its base URL; spans go to `URL/v1/traces`). Unset: no traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    None,
    Sigv4,
}

/// How requests are authenticated, from the flags.
fn auth(args: &Serve) -> anyhow::Result<api::auth::Auth> {
    match (args.auth, &args.credentials_file) {
        (AuthMode::None, _) => {
            if !api::hosts::is_loopback(&args.host) {
                tracing::warn!(
                    host = %args.host,
                    "listening beyond loopback without authentication: anyone who reaches \
                     the port can do anything; use --auth sigv4 --credentials-file FILE"
                );
            }
            Ok(api::auth::Auth::Open {
                account: args.account_id.clone(),
            })
        }
        (AuthMode::Sigv4, None) => bail!("--auth sigv4 needs --credentials-file FILE"),
        (AuthMode::Sigv4, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
            let keys = api::auth::Keys::parse(&text, &args.account_id)
                .map_err(|e| anyhow::anyhow!("credentials file {}: {e}", path.display()))?;
            Ok(api::auth::Auth::SigV4(keys))
        }
    }
}

/// Step Functions Local's per-service endpoint variables, and the service each one names.
const ENDPOINT_VARIABLES: [(&str, &str); 9] = [
    ("SQS_ENDPOINT", "sqs"),
    ("SNS_ENDPOINT", "sns"),
    ("DYNAMODB_ENDPOINT", "dynamodb"),
    ("EVENTBRIDGE_ENDPOINT", "eventbridge"),
    ("BATCH_ENDPOINT", "batch"),
    ("ECS_ENDPOINT", "ecs"),
    ("GLUE_ENDPOINT", "glue"),
    ("SAGE_MAKER_ENDPOINT", "sagemaker"),
    ("STEP_FUNCTIONS_ENDPOINT", "sfn"),
];

/// Parses `SERVICE=URL`.
fn parse_endpoint(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((service, url)) if !service.is_empty() && url.starts_with("http") => {
            Ok((service.to_lowercase(), url.to_owned()))
        }
        _ => Err(format!(
            "invalid endpoint '{text}': use SERVICE=URL, e.g. sqs=http://127.0.0.1:9324"
        )),
    }
}

/// The per-service endpoints: the environment's, then the flags' (which win).
fn service_endpoints(flags: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut endpoints: BTreeMap<String, String> = ENDPOINT_VARIABLES
        .iter()
        .filter_map(|(var, service)| {
            let url = std::env::var(var).ok().filter(|u| !u.is_empty())?;
            Some(((*service).to_owned(), url))
        })
        .collect();
    endpoints.extend(flags);
    endpoints
}

/// A limit that `none` lifts.
#[derive(Clone, Copy)]
struct Limit(Option<u64>);

/// A duration (seconds) or `none`.
fn parse_window(text: &str) -> Result<Limit, String> {
    match text.trim() {
        "none" => Ok(Limit(None)),
        other => parse_duration(other).map(|s| Limit(Some(s))),
    }
}

/// A count or `none`.
fn parse_cap(text: &str) -> Result<Limit, String> {
    match text.trim() {
        "none" => Ok(Limit(None)),
        other => other
            .parse()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("invalid count '{other}': use a number or none")),
    }
}

/// Parses `90s`, `15m`, `2h`, `14d` (or plain seconds) into seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration '{text}': use e.g. 90s, 15m, 14d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "invalid duration unit in '{text}': use s, m, h or d"
            ))
        }
    };
    Ok(n * factor)
}

/// Counts what JSONata evaluations allocate, for their memory bound (`asl::memory`).
#[global_allocator]
static ALLOCATOR: asl::memory::Metered<std::alloc::System> =
    asl::memory::Metered(std::alloc::System);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Validate { file } => validate(&file),
        Command::Run(args) => run(*args),
        Command::Redrive {
            connection,
            command,
        } => redrive_cli::run(connection, command),
    }
}

fn init_logging(format: &str) {
    // aws-config logs the access key id of assumed credentials at debug level: never shown.
    let quiet = "aws_config=warn".parse().ok();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = match quiet {
        Some(directive) => filter.add_directive(directive),
        None => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    named_runtime("stepwise")
}

/// The store `--store` names.
enum StoreChoice {
    Sqlite,
    Memory,
    /// The URL, the node's lease, and whether it is one of several active nodes.
    Postgres(String, store::postgres::LeaseOptions, bool),
}

impl StoreChoice {
    fn parse(
        store: &str,
        lease: store::postgres::LeaseOptions,
        active_nodes: bool,
    ) -> anyhow::Result<StoreChoice> {
        Ok(match store {
            "sqlite" => StoreChoice::Sqlite,
            "memory" => StoreChoice::Memory,
            s if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                StoreChoice::Postgres(s.to_owned(), lease, active_nodes)
            }
            other => bail!("unknown store '{other}': use sqlite, memory or a postgres:// URL"),
        })
    }

    /// Opens the store; a PostgreSQL node first waits for its lease (unless it is one of
    /// several active nodes, which take shards as they go).
    async fn open(
        self,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<(Arc<dyn store::Store>, Option<store::Postgres>)> {
        Ok(match self {
            StoreChoice::Sqlite => (
                Arc::new(store::Sqlite::open(data_dir).context("opening the data directory")?),
                None,
            ),
            StoreChoice::Memory => (
                Arc::new(store::Sqlite::temporary().context("creating a temporary store")?),
                None,
            ),
            StoreChoice::Postgres(url, lease, active) => {
                let pg = match active {
                    true => store::Postgres::connect_sharded(&url, lease).await,
                    false => store::Postgres::connect_leased(&url, lease).await,
                };
                let pg = pg.context("connecting to PostgreSQL")?;
                (Arc::new(pg.clone()), Some(pg))
            }
        })
    }

    /// The store's name in `/health`.
    fn name(&self) -> &'static str {
        match self {
            StoreChoice::Sqlite => "sqlite",
            StoreChoice::Memory => "memory",
            StoreChoice::Postgres(..) => "postgres",
        }
    }
}

/// `HOST-PID`.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "stepwise".into());
    format!("{}-{}", host.trim(), std::process::id())
}

fn named_runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn serve(args: Serve) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    // `FAILPOINTS` (with the `failpoints` feature, a test build) arms named crash points.
    let _failpoints = fail::FailScenario::setup();
    let auth = auth(&args)?;
    let hosts = api::hosts::AllowedHosts::new(&args.host, &args.allowed_hosts);
    let mock_config = args
        .mock_config
        .as_deref()
        .map(read_mock_config)
        .transpose()?;
    let node_id = args.node_id.clone().unwrap_or_else(default_node_id);
    let lease = store::postgres::LeaseOptions {
        node_id: node_id.clone(),
        ttl: std::time::Duration::from_secs(args.lease_ttl.max(1)),
    };
    let claim_ttl = lease.ttl;
    let store = StoreChoice::parse(&args.store, lease, args.active_nodes)?;
    let otlp_endpoint = args.otlp_endpoint.as_deref().filter(|u| !u.is_empty());
    let (traces, tracer) = match otlp_endpoint {
        Some(url) => {
            let (traces, tracer) = traces::start(url)?;
            (Some(traces), Some(tracer))
        }
        None => (None, None),
    };
    let config = engine::Config {
        account_id: args.account_id,
        wait_time_scale: args.wait_time_scale,
        max_execution_time: args.max_execution_time,
        redrive_window: args.redrive_window.0,
        max_history_events: args.max_history_events.0,
        bulk_redrive_rate: args.bulk_redrive_rate,
        node_id: node_id.clone(),
        claim_ttl,
        max_open_executions: usize::try_from(args.max_open_executions).unwrap_or(usize::MAX),
        mock_config,
        allow_link_local: args.allow_link_local,
        tracer,
        isolate_accounts: matches!(args.auth, AuthMode::Sigv4),
        ..engine::Config::default()
    };
    let config = args.endpoints.apply(config);
    // Two runtimes, so that the operating system shares the CPU between them: the engine's,
    // where states are evaluated (CPU work that can take seconds), and the API's, which keeps
    // answering meanwhile.
    let engine_runtime = named_runtime("stepwise-engine")?;
    let engine_handle = engine_runtime.handle().clone();
    let served = runtime()?.block_on(async move {
        let clock = Arc::new(engine::SystemClock);
        let data_dir = args.data_dir.clone();
        // The store's own tasks (PostgreSQL's writer) run on the engine's runtime.
        let store_name = store.name();
        let (engine, leased) = engine_handle
            .spawn(async move {
                let (store, leased) = store.open(&data_dir).await?;
                let engine = engine::Engine::start(config, store, clock).await?;
                anyhow::Ok((engine, leased))
            })
            .await??;
        // A node that lost its lease is fenced off: it stops, and a supervisor may start it
        // again as a standby.
        let watcher = leased.clone().map(|pg| {
            engine_handle.spawn(async move {
                pg.lease_lost().await;
                tracing::error!("stopping: this node lost its lease");
                std::process::exit(3);
            })
        });
        let node = health::Node {
            id: node_id,
            store: store_name,
            lease: leased.as_ref().and_then(|pg| pg.lease().cloned()),
            shards: leased.as_ref().and_then(store::Store::shards),
        };
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let shutdown = stop_requested();
        let local = listener.local_addr()?;
        let console = match (args.console, args.auth) {
            (Switch::Off, _) => None,
            (Switch::On, AuthMode::None) => Some(console::Mode::Open),
            (Switch::On, AuthMode::Sigv4) => Some(console::Mode::SignedOnly),
        };
        let data_dir = (args.store == "sqlite").then(|| args.data_dir.clone());
        let token = args.metrics_token.as_deref().filter(|t| !t.is_empty());
        let access = match (token, args.auth) {
            (Some(token), _) => metrics::Access::Bearer(token.to_owned()),
            (None, AuthMode::None) => metrics::Access::Open,
            (None, AuthMode::Sigv4) => metrics::Access::Closed,
        };
        let mut pages = metrics::router(engine.clone(), data_dir, access)?
            .merge(health::router(engine.clone(), node));
        if let Some(mode) = console {
            pages = pages.merge(console::router(mode));
        }
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let listener = listener.into_std()?;
                tracing::info!("stepwise listening on https://{local}");
                let app = (engine.clone(), auth, hosts, pages);
                api::serve_tls(listener, (cert, key), app, shutdown)
                    .await
                    .with_context(|| format!("cannot serve TLS with {}", cert.display()))?;
            }
            _ => {
                tracing::info!("stepwise listening on http://{local}");
                api::serve(listener, engine.clone(), auth, hosts, pages, shutdown).await?;
            }
        }
        // The API takes no more requests; let the engine finish the transitions it is in,
        // then hand the lease on at once.
        engine.shutdown().await;
        if let Some(pg) = leased {
            watcher.into_iter().for_each(|w| w.abort());
            if let Err(e) = pg.release_lease().await {
                tracing::warn!(error = %e, "the lease was not released; it expires after its TTL");
            }
            if let Err(e) = pg.release_shards().await {
                tracing::warn!(error = %e, "the shards were not released; they expire after their TTL");
            }
        }
        tracing::info!("stepwise stopped");
        Ok(())
    });
    if let Some(traces) = traces {
        traces.flush();
    }
    served
}

/// Reads and checks a MockConfigFile.
fn read_mock_config(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the mock configuration {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    engine::integrations::mock::validate(&value)
        .map_err(|e| anyhow::anyhow!("invalid mock configuration {}: {e}", path.display()))?;
    Ok(value)
}

/// The state machine `stepwise run` names: `--name`, else the one state machine of the mock
/// configuration with the test case, else `local-run`.
fn run_name(args: &Run, mock_config: Option<&serde_json::Value>) -> anyhow::Result<String> {
    if let Some(name) = &args.name {
        return Ok(name.clone());
    }
    let (Some(config), Some(case)) = (mock_config, &args.test_case) else {
        return Ok("local-run".into());
    };
    let machines = config
        .get("StateMachines")
        .and_then(serde_json::Value::as_object);
    let with_case: Vec<&String> = machines
        .into_iter()
        .flatten()
        .filter(|(_, m)| {
            m.pointer(&format!(
                "/TestCases/{}",
                case.replace('~', "~0").replace('/', "~1")
            ))
            .is_some()
        })
        .map(|(name, _)| name)
        .collect();
    match with_case.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("the mock configuration has no state machine with the test case '{case}'"),
        several => bail!(
            "several state machines of the mock configuration have the test case '{case}' ({}): choose one with --name",
            several.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service managers and container
/// runtimes send).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn validate(file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let print = |severity: &str, d: &asl::definition::Diagnostic| {
        let at = d.location.as_deref().unwrap_or("-");
        println!("{severity} {} {at}: {}", d.code, d.message);
    };
    let errors = match asl::definition::Definition::parse(&text) {
        Ok(d) => engine::definition_diagnostics(&d),
        Err(d) => d,
    };
    for d in &errors {
        print("ERROR", d);
    }
    for d in &asl::lint::warnings(&text) {
        print("WARNING", d);
    }
    if !errors.is_empty() {
        bail!("{} problem(s) found", errors.len())
    }
    println!("OK");
    Ok(())
}

/// Runs a definition on a throw-away in-process engine and prints the outcome and history.
fn run(args: Run) -> anyhow::Result<()> {
    let file = &args.file;
    let definition =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mock_config = args
        .mock_config
        .as_deref()
        .map(read_mock_config)
        .transpose()?;
    let name = run_name(&args, mock_config.as_ref())?;
    let Run {
        input,
        wait_time_scale,
        test_case,
        endpoints,
        ..
    } = args;
    runtime()?.block_on(async move {
        let store: Arc<dyn store::Store> = Arc::new(store::Sqlite::temporary()?);
        let config = endpoints.apply(engine::Config {
            wait_time_scale,
            mock_config,
            ..engine::Config::default()
        });
        let engine = engine::Engine::start(config, store, Arc::new(engine::SystemClock)).await?;
        let sm = engine
            .create_state_machine(engine::CreateStateMachine {
                region: "us-east-1".into(),
                account: engine.config().account_id.clone(),
                name,
                definition,
                role_arn: "arn:aws:iam::123456789012:role/stepwise-local".into(),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!(api::error::ApiError::from(e).message))?;
        let target = match &test_case {
            Some(case) => format!("{}#{case}", sm.arn),
            None => sm.arn.clone(),
        };
        let started = engine
            .start_execution(&target, None, Some(input), None)
            .await
            .map_err(|e| anyhow::anyhow!(api::error::ApiError::from(e).message))?;
        let record = engine.wait_for_end(&started.arn).await?;
        let history = engine
            .get_execution_history(engine::HistoryQuery {
                arn: started.arn.clone(),
                max_results: 1000,
                reverse: false,
                next_token: None,
            })
            .await?;
        for e in &history.events {
            println!("{}", api::wire::history_event(e, true));
        }
        println!("status: {}", record.status);
        if let Some(o) = &record.output {
            println!("output: {o}");
        }
        if let (Some(e), c) = (&record.error, &record.cause) {
            println!("error: {e}");
            if let Some(c) = c {
                println!("cause: {c}");
            }
        }
        if record.status == engine::ExecutionStatus::Succeeded {
            Ok(())
        } else {
            bail!("execution {}", record.status.as_str().to_lowercase())
        }
    })
}
