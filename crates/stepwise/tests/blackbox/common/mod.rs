//! Shared helpers for the black-box test suites: a `stepwise serve` child process, SDK and
//! raw-HTTP clients, polling helpers and history checks.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sfn::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_sfn::error::BoxError;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use serde_json::Value;

/// How long a server may take to start accepting connections.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/stepwise-test";
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Which store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite in a temporary data directory (kept across `restart`).
    Sqlite,
    /// The in-memory store.
    Memory,
    /// A PostgreSQL server the test starts (kept across `restart`).
    Postgres,
}

impl StoreKind {
    /// What a test that asks for SQLite gets: PostgreSQL when `STEPWISE_TEST_STORE=postgres`,
    /// so that whole suites run on the shared store too (`scripts/test` does it for the
    /// suites that matter to several nodes).
    fn resolve(self) -> StoreKind {
        let postgres = std::env::var("STEPWISE_TEST_STORE").is_ok_and(|s| s == "postgres");
        match self {
            StoreKind::Sqlite if postgres => StoreKind::Postgres,
            other => other,
        }
    }
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    pub store: StoreKind,
    pub wait_time_scale: f64,
    pub account_id: String,
    /// A PostgreSQL database shared with other servers (with `StoreKind::Postgres`; without
    /// it the server gets a PostgreSQL server of its own).
    pub postgres_url: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            store: StoreKind::Sqlite,
            wait_time_scale: 0.1,
            account_id: DEFAULT_ACCOUNT.into(),
            postgres_url: None,
        }
    }
}

/// A `stepwise serve` child process, killed on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    options: Options,
    /// The SQLite data directory (kept for the whole life of the `Server`, across restarts).
    data_dir: tempfile::TempDir,
    /// Where each run's stderr goes (`run-N.log`).
    log_dir: tempfile::TempDir,
    runs: u32,
    /// Further `serve` flags (e.g. `--redrive-window 2s`), passed on every (re)start.
    extra_args: Vec<String>,
    /// `FAILPOINTS` for the next (re)starts (a build with the `failpoints` feature).
    failpoints: Option<String>,
    /// The database of a server on PostgreSQL (started with the first run, dropped after the
    /// server).
    postgres: Option<store::postgres::local::LocalPostgres>,
}

/// A port free to listen on, below Linux's ephemeral range (32768-60999): a port from that
/// range can be taken, between this probe and the server's bind, by an outgoing connection
/// (a server's own, to PostgreSQL). Each test process walks its own part of the range.
pub fn free_port() -> u16 {
    const FIRST: u16 = 20_000;
    const LAST: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = FIRST + (std::process::id() % 60) as u16 * 200;
    let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        if port >= LAST {
            NEXT.store(FIRST, Ordering::Relaxed);
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Server {
    /// A server on SQLite in a temporary data directory.
    pub fn sqlite(wait_time_scale: f64) -> Server {
        Server::start(Options {
            store: StoreKind::Sqlite,
            wait_time_scale,
            ..Options::default()
        })
    }

    /// A server on the in-memory store.
    pub fn memory(wait_time_scale: f64) -> Server {
        Server::start(Options {
            store: StoreKind::Memory,
            wait_time_scale,
            ..Options::default()
        })
    }

    pub fn start(options: Options) -> Server {
        Server::start_with_args(options, &[])
    }

    /// Like `start`, with further `serve` flags such as `["--redrive-window", "2s"]`.
    pub fn start_with_args(options: Options, extra_args: &[&str]) -> Server {
        let mut server = Server::prepare(options, extra_args);
        server.spawn();
        server
    }

    /// Like `start_with_args`, with `FAILPOINTS` set to `failpoints` from the first start (a
    /// build with the `failpoints` feature arms them).
    pub fn start_with_failpoints(
        options: Options,
        extra_args: &[&str],
        failpoints: Option<&str>,
    ) -> Server {
        let mut server = Server::prepare(options, extra_args);
        server.failpoints = failpoints.map(str::to_owned);
        server.spawn();
        server
    }

    /// Starts a server that may not be ready soon (a standby node waiting for its lease);
    /// `wait_until_ready` waits for it.
    pub fn start_standby(options: Options, extra_args: &[&str]) -> Server {
        let mut server = Server::prepare(options, extra_args);
        server.launch();
        server
    }

    /// Waits until the server accepts connections (panics after `within`).
    pub fn wait_until_ready(&mut self, within: Duration) {
        self.wait_ready(&self.log_path(self.runs), within);
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn prepare(options: Options, extra_args: &[&str]) -> Server {
        let data_dir = tempfile::Builder::new()
            .prefix("stepwise-data-")
            .tempdir()
            .expect("creating a temporary data directory");
        let log_dir = tempfile::Builder::new()
            .prefix("stepwise-log-")
            .tempdir()
            .expect("creating a temporary log directory");
        Server {
            child: None,
            port: free_port(),
            options,
            data_dir,
            log_dir,
            runs: 0,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            failpoints: None,
            postgres: None,
        }
    }

    /// The store the server runs on (PostgreSQL for SQLite under `STEPWISE_TEST_STORE`).
    pub fn store(&self) -> StoreKind {
        self.options.store.resolve()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn account_id(&self) -> &str {
        &self.options.account_id
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.log_dir.path().join(format!("run-{run}.log"))
    }

    /// Where the server's current run writes its stderr.
    pub fn log_file(&self) -> PathBuf {
        self.log_path(self.runs)
    }

    /// Everything the server wrote to stderr, over all runs (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let text = std::fs::read_to_string(self.log_path(run)).unwrap_or_default();
            out.push_str(&format!("----- server run {run} stderr -----\n{text}"));
        }
        out
    }

    fn spawn(&mut self) {
        self.launch();
        self.wait_ready(&self.log_path(self.runs), STARTUP_DEADLINE);
    }

    /// Starts the process, without waiting for it.
    fn launch(&mut self) {
        self.runs += 1;
        let log_path = self.log_path(self.runs);
        let log = File::create(&log_path).expect("creating the server log file");
        // A server on a PostgreSQL of its own keeps its node id across restarts, so a restart
        // after `kill9` retakes the lease at once instead of waiting for it to expire (unless
        // the test gives it an id).
        let own_postgres = self.options.store.resolve() == StoreKind::Postgres
            && self.options.postgres_url.is_none();
        let named = self.extra_args.iter().any(|a| a == "--node-id");
        let node_id = if own_postgres && !named {
            vec!["--node-id".to_owned(), format!("test-{}", self.port)]
        } else {
            Vec::new()
        };
        let store = match self.options.store.resolve() {
            StoreKind::Sqlite => "sqlite".to_owned(),
            StoreKind::Memory => "memory".to_owned(),
            StoreKind::Postgres => match &self.options.postgres_url {
                Some(url) => url.clone(),
                None => self
                    .postgres
                    .get_or_insert_with(store::postgres::local::LocalPostgres::start_or_panic)
                    .url("postgres"),
            },
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        match &self.failpoints {
            Some(spec) => command.env("FAILPOINTS", spec),
            None => command.env_remove("FAILPOINTS"),
        };
        let child = command
            .arg("serve")
            .args(["--host", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .args(["--store", &store])
            .args(node_id)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["--account-id", &self.options.account_id])
            .args([
                "--wait-time-scale",
                &self.options.wait_time_scale.to_string(),
            ])
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .env_remove("STEPWISE_PORT")
            .env_remove("STEPWISE_HOST")
            .env_remove("STEPWISE_STORE")
            .env_remove("STEPWISE_DATA_DIR")
            .env_remove("WAIT_TIME_SCALE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning `stepwise serve`");
        self.child = Some(child);
    }

    /// Polls until the server logged that it listens and the port accepts connections.
    fn wait_ready(&mut self, log_path: &Path, within: Duration) {
        let deadline = Instant::now() + within;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "`stepwise serve` exited during startup with {status} (port {})\n{}",
                        self.port,
                        self.logs()
                    );
                }
            }
            let logged = std::fs::read_to_string(log_path)
                .map(|t| t.contains("stepwise listening on"))
                .unwrap_or(false);
            if logged && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "`stepwise serve` did not accept connections on port {} within {within:?}\n{}",
                    self.port,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL: no shutdown hooks, no flushing.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("sending SIGKILL to the server");
            child.wait().expect("reaping the killed server");
        }
    }

    /// SIGTERM, what service managers send: the server stops taking requests and stops its
    /// engine. Returns whether it exited by itself within `within`, and successfully.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        sent && self.exit_status(within).is_some_and(|s| s.success())
    }

    /// Starts the server again on the same data directory and port (after `kill9`).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restarts the server with `FAILPOINTS` set to `spec` (`None`: none armed), e.g.
    /// `task-before-dispatch=return` to crash there.
    #[cfg(feature = "failpoints")]
    pub fn restart_with_failpoints(&mut self, spec: Option<&str>) {
        self.failpoints = spec.map(str::to_owned);
        self.restart();
    }

    /// Waits (up to `within`) for the server process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        self.child.is_none() || self.exit_status(within).is_some()
    }

    /// The server's exit status once it has exited by itself, waiting up to `within`.
    fn exit_status(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's peak resident memory so far (VmHWM), in KiB, where /proc tells it.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// An aws-sdk-sfn client for this server in `us-east-1`.
    pub fn client(&self) -> aws_sdk_sfn::Client {
        self.client_in("us-east-1")
    }

    /// An aws-sdk-sfn client for this server signing for `region`.
    pub fn client_in(&self, region: &str) -> aws_sdk_sfn::Client {
        sfn_client(&self.endpoint(), region)
    }

    /// A raw JSON 1.0 client.
    pub fn raw(&self) -> Raw {
        Raw::new(&self.endpoint())
    }
}

impl Drop for Server {
    /// Kills the server, then (as the fields drop) its database.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Rust SDK puts `sync-` in front of the host for `StartSyncExecution` (the model's
/// `hostPrefix`), which turns `127.0.0.1` into the unresolvable `sync-127.0.0.1`. This interceptor
/// drops the prefix before the endpoint is applied, as `inject_host_prefix=False` does in boto3.
#[derive(Debug)]
struct NoHostPrefix;

impl Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .unset::<aws_smithy_runtime_api::client::endpoint::EndpointPrefix>();
        Ok(())
    }
}

/// An aws-sdk-sfn client: static credentials test/test, `region`, `endpoint`.
pub fn sfn_client(endpoint: &str, region: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "stepwise-tests",
        ))
        .endpoint_url(endpoint)
        .interceptor(NoHostPrefix)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

/// A raw AWS JSON 1.0 client over reqwest.
#[derive(Clone)]
pub struct Raw {
    http: reqwest::Client,
    endpoint: String,
}

/// A response as it came off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl RawResponse {
    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.text))
    }

    /// The error code after `#` in `__type`, if any.
    pub fn error_code(&self) -> Option<String> {
        let body = self.json();
        let t = body.get("__type")?.as_str()?;
        Some(t.rsplit('#').next().unwrap_or(t).to_owned())
    }

    pub fn message(&self) -> Option<String> {
        let body = self.json();
        let m = body.get("message").or_else(|| body.get("Message"))?;
        m.as_str().map(str::to_owned)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl Raw {
    pub fn new(endpoint: &str) -> Raw {
        Raw::build(endpoint, true)
    }

    /// A client that opens a new connection for every request (for requests after which the
    /// server may close the connection, such as an oversized body refused early).
    pub fn unpooled(endpoint: &str) -> Raw {
        Raw::build(endpoint, false)
    }

    fn build(endpoint: &str, pooled: bool) -> Raw {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if !pooled {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().expect("building the reqwest client");
        Raw {
            http,
            endpoint: endpoint.to_owned(),
        }
    }

    /// POSTs `body` (raw bytes) with the given `X-Amz-Target` (none when `target` is `None`)
    /// and extra headers.
    pub async fn send(
        &self,
        target: Option<&str>,
        body: impl Into<reqwest::Body>,
        extra_headers: &[(&str, &str)],
    ) -> RawResponse {
        let mut request = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.0");
        if let Some(t) = target {
            request = request.header("x-amz-target", t);
        }
        for (k, v) in extra_headers {
            request = request.header(*k, *v);
        }
        let response = request
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("sending {target:?} to {}: {e:?}", self.endpoint));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading the {target:?} response: {e}"));
        RawResponse {
            status,
            headers,
            text,
        }
    }

    /// Calls `AWSStepFunctions.<op>` with a JSON body.
    pub async fn call(&self, op: &str, body: &Value) -> RawResponse {
        self.send(
            Some(&format!("AWSStepFunctions.{op}")),
            body.to_string(),
            &[],
        )
        .await
    }

    /// Calls `op` and expects HTTP 200; returns the JSON body.
    pub async fn ok(&self, op: &str, body: &Value) -> Value {
        let r = self.call(op, body).await;
        assert_eq!(
            r.status, 200,
            "{op} {body} answered {} {}",
            r.status, r.text
        );
        r.json()
    }
}

// ---------------------------------------------------------------------------
// SDK helpers
// ---------------------------------------------------------------------------

/// Creates a state machine and returns its ARN.
pub async fn create_machine(
    client: &aws_sdk_sfn::Client,
    name: &str,
    definition: &Value,
) -> String {
    create_machine_of_type(
        client,
        name,
        definition,
        aws_sdk_sfn::types::StateMachineType::Standard,
    )
    .await
}

pub async fn create_machine_of_type(
    client: &aws_sdk_sfn::Client,
    name: &str,
    definition: &Value,
    kind: aws_sdk_sfn::types::StateMachineType,
) -> String {
    create_machine_as(client, name, definition, kind, ROLE_ARN).await
}

/// Creates a state machine of `kind` with the execution role `role`; its ARN.
pub async fn create_machine_as(
    client: &aws_sdk_sfn::Client,
    name: &str,
    definition: &Value,
    kind: aws_sdk_sfn::types::StateMachineType,
    role: &str,
) -> String {
    client
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn(role)
        .r#type(kind)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateStateMachine {name}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        })
        .state_machine_arn()
        .to_owned()
}

/// Starts an execution and returns its ARN.
pub async fn start(
    client: &aws_sdk_sfn::Client,
    sm_arn: &str,
    name: Option<&str>,
    input: &Value,
) -> String {
    client
        .start_execution()
        .state_machine_arn(sm_arn)
        .set_name(name.map(str::to_owned))
        .input(input.to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "StartExecution on {sm_arn}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        })
        .execution_arn()
        .to_owned()
}

/// Polls DescribeExecution until the status is no longer RUNNING (or the deadline passes).
pub async fn wait_done(
    client: &aws_sdk_sfn::Client,
    exec_arn: &str,
    deadline: Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let until = Instant::now() + deadline;
    loop {
        let d = client
            .describe_execution()
            .execution_arn(exec_arn)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DescribeExecution {exec_arn}: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )
            });
        if *d.status() != ExecutionStatus::Running {
            return d;
        }
        if Instant::now() > until {
            panic!("execution {exec_arn} still RUNNING after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The whole history (all pages), in order.
pub async fn history(client: &aws_sdk_sfn::Client, exec_arn: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(exec_arn)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "GetExecutionHistory {exec_arn}: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )
            });
        events.extend(page.events().iter().cloned());
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return events,
        }
    }
}

/// Event type names, in order.
/// `GET /health`: must answer 200 with JSON.
pub async fn health(server: &Server) -> Value {
    let response = reqwest::get(format!("{}/health", server.endpoint()))
        .await
        .expect("GET /health");
    assert_eq!(response.status(), 200, "{response:?}");
    response.json().await.expect("/health answers JSON")
}

pub fn event_types(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.r#type().as_str().to_owned())
        .collect()
}

/// Checks AWS's history numbering: ids 1..=n contiguous, `previousEventId` is the id before
/// except for the first `*StateEntered` and `ExecutionAborted`, which have 0 (as AWS does); exactly one
/// `ExecutionStarted` (first) and at most one terminal event (last, when present).
/// Returns a description of every problem (empty when the history is well formed).
pub fn history_problems(events: &[HistoryEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let types = event_types(events);
    let mut seen_state_entered = false;
    for (i, e) in events.iter().enumerate() {
        let want_id = i as i64 + 1;
        if e.id() != want_id {
            problems.push(format!(
                "event #{i} ({}) has id {}, expected {want_id}",
                types[i],
                e.id()
            ));
        }
        let is_state_entered = types[i].ends_with("StateEntered");
        // AWS records the first state's entry and a StopExecution's ExecutionAborted (which
        // follows no event of the run) with previousEventId 0.
        let want_prev =
            if (is_state_entered && !seen_state_entered) || types[i] == "ExecutionAborted" {
                0
            } else {
                e.id() - 1
            };
        if is_state_entered {
            seen_state_entered = true;
        }
        if e.previous_event_id() != want_prev {
            problems.push(format!(
                "event id {} ({}) has previousEventId {}, expected {want_prev}",
                e.id(),
                types[i],
                e.previous_event_id()
            ));
        }
    }
    let started = types.iter().filter(|t| *t == "ExecutionStarted").count();
    if started != 1 || types.first().map(String::as_str) != Some("ExecutionStarted") {
        problems.push(format!(
            "expected exactly one ExecutionStarted, first; got {types:?}"
        ));
    }
    let terminal = [
        "ExecutionSucceeded",
        "ExecutionFailed",
        "ExecutionAborted",
        "ExecutionTimedOut",
    ];
    let terminals: Vec<usize> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| terminal.contains(&t.as_str()))
        .map(|(i, _)| i)
        .collect();
    if terminals.len() > 1 || terminals.first().is_some_and(|&i| i + 1 != types.len()) {
        problems.push(format!(
            "expected at most one terminal event, last; got {types:?}"
        ));
    }
    problems
}

/// Panics with every numbering problem of the history.
pub fn assert_history_well_formed(context: &str, events: &[HistoryEvent]) {
    let problems = history_problems(events);
    assert!(
        problems.is_empty(),
        "{context}: malformed history:\n  {}\nevents: {:?}",
        problems.join("\n  "),
        event_types(events)
    );
}

/// Parses a JSON document the server returned.
pub fn parse_json(what: &str, text: Option<&str>) -> Value {
    let text = text.unwrap_or_else(|| panic!("{what} is missing"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text:?}"))
}

/// Runs `tests/python/<name>` against `server` with test credentials and asserts it finished
/// ("checks passed"). python3, boto3 and the AWS CLI are required: a missing one fails the
/// test with a message saying which.
pub fn run_python_client_script(server: &Server, name: &str) {
    run_python_client_script_with(server, name, &[])
}

/// [`run_python_client_script`] with command-line arguments for the script.
pub fn run_python_client_script_with(server: &Server, name: &str, args: &[&std::ffi::OsStr]) {
    let probes: [(&str, &[&str], &str); 3] = [
        (
            "python3",
            &["--version"],
            "python3 is required for the client tests",
        ),
        (
            "python3",
            &["-c", "import boto3, botocore"],
            "boto3 is required for the client tests (pip install boto3)",
        ),
        (
            "aws",
            &["--version"],
            "the AWS CLI (`aws`) is required for the client tests",
        ),
    ];
    for (program, args, missing) in probes {
        match std::process::Command::new(program).args(args).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "{missing}\n`{program} {}` exited with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("{missing}\ncannot run `{program}`: {e}"),
        }
    }
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(name);
    assert!(script.is_file(), "missing {}", script.display());
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .env("STEPWISE_ENDPOINT", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .unwrap_or_else(|e| panic!("running python3 {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{name} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n{}",
        out.status,
        server.logs()
    );
    assert!(
        stdout.contains("checks passed"),
        "the script did not finish:\n{stdout}"
    );
}

// ---------------------------------------------------------------------------
// moto's S3 server
// ---------------------------------------------------------------------------

/// moto's server (`python3 -m moto.server`) on a free port, killed when dropped. A missing
/// moto fails the test with what to install (`scripts/setup-test-deps` installs it).
pub struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Moto {
    /// Starts moto and waits until it answers (its own API at `/moto-api/`).
    pub async fn start() -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "moto's server is not installed (python3 cannot import moto.server): \
             run scripts/setup-test-deps, which installs it with pip install 'moto[server]'"
        );
        let port = free_port();
        let log = std::env::temp_dir().join(format!("stepwise-moto-{port}.log"));
        let out = File::create(&log).expect("moto log file");
        let err = out.try_clone().expect("moto log file");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start python3 -m moto.server");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("building the reqwest client"),
        };
        moto.ready().await;
        moto
    }

    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto's server exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let probe = self
                .http
                .get(format!("{}/moto-api/", self.endpoint))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto's server did not answer within 60 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A path-style request as the `test` account. moto does not verify signatures but
    /// treats a request without `Authorization` as anonymous (403 on private objects), so a
    /// SigV4-shaped header with a dummy signature is enough.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/{path}", self.endpoint))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=00",
            )
    }

    /// Sends an S3 request (`op` on `path`, for the panic messages). `missing_ok`: a 404 is
    /// an answer (`None`); any other failure panics.
    async fn call(
        &self,
        op: &str,
        path: &str,
        request: reqwest::RequestBuilder,
        missing_ok: bool,
    ) -> Option<reqwest::Response> {
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{op} {path}: {e}"));
        if missing_ok && r.status().as_u16() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "{op} {path}: {}", r.status());
        Some(r)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let request = self.request(reqwest::Method::PUT, bucket);
        self.call("CreateBucket", bucket, request, false).await;
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: &str) {
        let path = format!("{bucket}/{key}");
        let request = self.request(reqwest::Method::PUT, &path);
        self.call("PutObject", &path, request.body(body.to_owned()), false)
            .await;
    }

    /// The object's body, or `None` when S3 answers 404.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<String> {
        let path = format!("{bucket}/{key}");
        let request = self.request(reqwest::Method::GET, &path);
        let r = self.call("GetObject", &path, request, true).await?;
        Some(r.text().await.expect("object body"))
    }

    /// HeadObject: the object's `ETag` (quoted, as S3 sends it) and size.
    pub async fn head_object(&self, bucket: &str, key: &str) -> (String, u64) {
        let path = format!("{bucket}/{key}");
        let request = self.request(reqwest::Method::HEAD, &path);
        let r = self.call("HeadObject", &path, request, false).await;
        let r = r.unwrap_or_else(|| panic!("HeadObject {path}: missing"));
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let size = header("content-length").parse().unwrap_or_default();
        (header("etag"), size)
    }

    /// The object's body as JSON (panics when it is missing or not JSON).
    pub async fn get_json(&self, bucket: &str, key: &str) -> Value {
        let text = self
            .get_object(bucket, key)
            .await
            .unwrap_or_else(|| panic!("no object {bucket}/{key}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

// ---------------------------------------------------------------------------
// Activity workers
// ---------------------------------------------------------------------------

/// Creates an activity and returns its ARN.
pub async fn create_activity(client: &aws_sdk_sfn::Client, name: &str) -> String {
    client
        .create_activity()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateActivity {name}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        })
        .activity_arn()
        .to_owned()
}

/// SendTaskSuccess; `Err(error code)` when the service refused it.
pub async fn try_succeed(
    client: &aws_sdk_sfn::Client,
    token: &str,
    output: &Value,
) -> Result<(), String> {
    client
        .send_task_success()
        .task_token(token)
        .output(output.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            e.into_service_error()
                .meta()
                .code()
                .unwrap_or("?")
                .to_owned()
        })
}

pub async fn succeed(client: &aws_sdk_sfn::Client, token: &str, output: &Value) {
    try_succeed(client, token, output)
        .await
        .unwrap_or_else(|code| panic!("SendTaskSuccess {output}: {code}"));
}

/// SendTaskFailure; `Err(error code)` when the service refused it.
pub async fn try_fail(
    client: &aws_sdk_sfn::Client,
    token: &str,
    error: &str,
) -> Result<(), String> {
    client
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(format!("the worker failed with {error}"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            e.into_service_error()
                .meta()
                .code()
                .unwrap_or("?")
                .to_owned()
        })
}
