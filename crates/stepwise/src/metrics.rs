//! `GET /metrics`: the Prometheus text of everything the engine and the store record through the
//! `metrics` facade (CloudWatch's Step Functions names, see `engine::metrics`), plus health
//! gauges sampled when the page is read, so that keeping them costs nothing in between.
//! With a `--metrics-token`, the page asks for it as a bearer token; under `--auth sigv4`
//! without one, it is refused (a scraper cannot sign SigV4).

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Who may read `/metrics`.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone (`--auth none` without a token).
    Open,
    /// Requests with `Authorization: Bearer <token>` (`--metrics-token`).
    Bearer(String),
    /// No one (`--auth sigv4` without a token).
    Closed,
}

impl Access {
    fn allows(&self, headers: &HeaderMap) -> bool {
        use subtle::ConstantTimeEq;
        match self {
            Access::Open => true,
            Access::Closed => false,
            Access::Bearer(token) => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))),
        }
    }
}

/// Installs the process's recorder and returns the `/metrics` route. `data_dir` is where the
/// store's files are, for `stepwise_store_bytes` (none for the in-memory store).
pub fn router(
    engine: engine::Engine,
    data_dir: Option<PathBuf>,
    access: Access,
) -> anyhow::Result<Router> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    describe();
    let page = move |headers: HeaderMap| {
        let (handle, engine, data_dir) = (handle.clone(), engine.clone(), data_dir.clone());
        let allowed = access.allows(&headers);
        async move {
            match (allowed, &access) {
                (true, _) => render(&handle, &engine, data_dir.as_deref()),
                (false, Access::Closed) => (
                    StatusCode::FORBIDDEN,
                    "/metrics is off under --auth sigv4 unless --metrics-token is set\n",
                )
                    .into_response(),
                (false, _) => {
                    let mut response =
                        (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"stepwise metrics\""),
                    );
                    response
                }
            }
        }
    };
    Ok(Router::new().route("/metrics", get(page)))
}

fn render(handle: &PrometheusHandle, engine: &engine::Engine, data_dir: Option<&Path>) -> Response {
    let health = engine.health();
    metrics::gauge!("OpenExecutionCount").set(health.open_executions as f64);
    let limit = engine.config().max_open_executions;
    metrics::gauge!("OpenExecutionLimit").set(limit as f64);
    metrics::gauge!("stepwise_parked_executions").set(health.parked_executions as f64);
    metrics::gauge!("stepwise_ready_queue_depth").set(health.ready_queue as f64);
    if let Some(dir) = data_dir {
        metrics::gauge!("stepwise_store_bytes").set(dir_size(dir) as f64);
    }
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The bytes of the files directly in `dir` (the SQLite database, its WAL and shared memory).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Help texts (CloudWatch's wording, shortened) for the metrics that are not obvious.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "ExecutionThrottled",
        "StartExecution and RedriveExecution calls refused beyond --max-open-executions"
    );
    describe_histogram!(
        "ExecutionTime",
        Unit::Milliseconds,
        "time between the start and the end of an execution"
    );
    describe_counter!(
        "ExecutionsRedriven",
        "executions redriven (RedriveExecution)"
    );
    describe_histogram!(
        "ActivityScheduleTime",
        Unit::Milliseconds,
        "time an activity task waited for a worker"
    );
    describe_histogram!(
        "ActivityRunTime",
        Unit::Milliseconds,
        "time between a worker taking an activity task and its end"
    );
    describe_histogram!(
        "stepwise_commit_seconds",
        Unit::Seconds,
        "time of one group commit (one transaction, one fsync)"
    );
    describe_histogram!(
        "stepwise_commit_batch_size",
        Unit::Count,
        "writes (transitions, creations) folded into one group commit"
    );
    describe_histogram!(
        "stepwise_timer_lag_seconds",
        Unit::Seconds,
        "how late a due timer (Wait, retry, timeout) woke its execution"
    );
    describe_gauge!(
        "OpenExecutionCount",
        "open executions (the ones --max-open-executions limits)"
    );
    describe_gauge!("OpenExecutionLimit", "--max-open-executions");
    describe_gauge!(
        "stepwise_parked_executions",
        "running executions waiting on a timer"
    );
    describe_gauge!(
        "stepwise_ready_queue_depth",
        "executions queued for a worker"
    );
    describe_gauge!(
        "stepwise_store_bytes",
        Unit::Bytes,
        "size of the data directory's files"
    );
}
