//! The AWS JSON 1.0 front door: `POST /` with `X-Amz-Target: AWSStepFunctions.<Op>`, and
//! stepwise's own operations beside them (`Stepwise.<Op>`, [`extensions`]) with the same
//! signing, validation and error shapes.
//!
//! API boundary: wire shapes live only here ([`wire`]); errors become AWS responses only in
//! [`error`]. Request bodies are validated against the service model ([`validate`]) before
//! an operation runs, so handlers only see well-typed members.

pub mod auth;
pub mod error;
mod extensions;
pub mod hosts;
mod ops;
mod traces;
pub mod validate;
pub mod wire;

use std::future::Future;

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use engine::Engine;
use opentelemetry::context::FutureExt as _;
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::hosts::AllowedHosts;
use crate::validate::Service;

/// AWS's request size limit.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How much of an oversized body is read and dropped before the 413 answer, so a client
/// still sending sees the answer rather than a reset connection.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
const TARGET_PREFIX: &str = "AWSStepFunctions.";
/// stepwise's own operations ([`extensions`]), beside AWS's on the same port.
const STEPWISE_PREFIX: &str = "Stepwise.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Serves the API over TLS (rustls) on `listener` with the PEM certificate chain and key,
/// until `shutdown` completes.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    tls: (&std::path::Path, &std::path::Path),
    app: (Engine, Auth, AllowedHosts, Router),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (cert, key) = tls;
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.graceful_shutdown(None);
    });
    let (engine, auth, hosts, pages) = app;
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router(engine, auth, hosts, pages).into_make_service())
        .await
}

/// What every request handler shares.
#[derive(Clone)]
struct Shared {
    engine: Engine,
    auth: Arc<Auth>,
    hosts: Arc<AllowedHosts>,
}

/// The HTTP router for the whole API: `POST /`, and `pages` (the console, metrics) for
/// other requests. What neither answers gets an AWS-shaped error.
pub fn router(engine: Engine, auth: Auth, hosts: AllowedHosts, pages: Router) -> Router {
    let shared = Shared {
        engine,
        auth: Arc::new(auth),
        hosts: Arc::new(hosts),
    };
    let pages = pages
        .fallback(elsewhere)
        .method_not_allowed_fallback(elsewhere);
    Router::new()
        .route("/", post(handle).fallback_service(pages.clone()))
        .fallback_service(pages)
        .with_state(shared)
}

/// A request that is not `POST /`: what AWS answers for an operation it does not know.
async fn elsewhere(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let error = ApiError {
        status: StatusCode::NOT_FOUND,
        ..ApiError::unknown_operation(&format!("{method} {}", uri.path()))
    };
    reply(error.status, error.body(), &engine_uuid())
}

/// Serves the API and `pages` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    auth: Auth,
    hosts: AllowedHosts,
    pages: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine, auth, hosts, pages))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = engine_uuid();
    let result = match &shared.engine.config().tracer {
        None => answer(&shared, &uri, &headers, body).await,
        Some(tracer) => {
            let cx = traces::begin(tracer, &headers, operation(&headers));
            let answered = answer(&shared, &uri, &headers, body);
            let result = answered.with_context(cx.clone()).await;
            traces::finish(&cx, &result, &request_id);
            result
        }
    };
    let (status, text) = match result {
        Ok(v) => (StatusCode::OK, v.to_string()),
        Err(e) => (e.status, e.body()),
    };
    reply(status, text, &request_id)
}

/// Checks the host and the signature, then runs the operation.
async fn answer(
    shared: &Shared,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    shared.hosts.check(headers)?;
    let body = read_body(body).await?;
    // The signature covers the URI the client addressed: `http://HOST/PATH`.
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let url = format!("http://{}{uri}", host.unwrap_or("localhost"));
    let now = std::time::SystemTime::now();
    let account = shared.auth.account("POST", &url, headers, &body, now)?;
    respond(&shared.engine, &account, headers, &body).await
}

/// The service and operation `X-Amz-Target` names, if it names one of theirs.
fn operation(headers: &HeaderMap) -> Option<(Service, &str)> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (service, op) = match (
        target.strip_prefix(TARGET_PREFIX),
        target.strip_prefix(STEPWISE_PREFIX),
    ) {
        (Some(op), _) => (Service::StepFunctions, op),
        (None, Some(op)) => (Service::Stepwise, op),
        (None, None) => return None,
    };
    validate::operations(service)
        .contains(&op)
        .then_some((service, op))
}

/// A JSON 1.0 response with its request id.
fn reply(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
    response
}

/// The request body, at most [`MAX_REQUEST_BYTES`]; a larger one is drained (up to
/// [`DRAIN_BYTES`]) and refused.
async fn read_body(mut body: Body) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while seen <= DRAIN_BYTES {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = frame else { break };
        let frame =
            frame.map_err(|e| ApiError::serialization(format!("Unreadable request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_REQUEST_BYTES {
            bytes.extend_from_slice(&data);
        }
    }
    match seen {
        n if n > MAX_REQUEST_BYTES => Err(ApiError::payload_too_large(MAX_REQUEST_BYTES)),
        _ => Ok(bytes),
    }
}

async fn respond(
    engine: &Engine,
    account: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let Some((service, op)) = operation(headers) else {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        return Err(ApiError::unknown_operation(target.unwrap_or_default()));
    };
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?
    };
    if let Some(resource) = auth::foreign_resource(&parsed, account) {
        return Err(auth::access_denied(account, op, &resource));
    }
    let Value::Object(members) = parsed else {
        return Err(ApiError::serialization(
            "Request body must be a JSON object",
        ));
    };
    validate::validate(service, op, &members).map_err(|r| match r {
        validate::Rejection::Serialization(m) => ApiError::serialization(m),
        validate::Rejection::Validation(m) => ApiError::validation(m),
    })?;
    let region = region_of(headers);
    let request = ops::Request {
        engine,
        region: &region,
        account,
        body: &members,
    };
    let reply = match service {
        Service::StepFunctions => ops::dispatch(op, &request).await,
        Service::Stepwise => extensions::dispatch(op, &request).await,
    };
    match reply {
        Some(reply) => reply,
        None => Err(ApiError::not_supported(op)),
    }
}

/// The region from the SigV4 credential scope (`Credential=AKID/DATE/REGION/states/...`).
fn region_of(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(2))
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("us-east-1")
        .to_owned()
}

fn engine_uuid() -> String {
    asl::Entropy::new(rand_seed()).uuid_v4()
}

/// A per-request seed: request ids need to be unique, not unpredictable.
fn rand_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ COUNTER
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
