//! The API request path, bytes to response: an input is an `X-Amz-Target` line and a request
//! body, sent through the whole router (host check, authentication, validation, the
//! operation) of one engine on an in-memory store, which keeps what earlier inputs created.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// JSONata evaluations (TestState) get their memory bound, as in the server.
#[global_allocator]
static ALLOCATOR: asl::memory::Metered<std::alloc::System> =
    asl::memory::Metered(std::alloc::System);

/// Longer than any operation but a long poll (`GetActivityTask` waits 60 s), shorter than
/// the fuzzer's timeout.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

struct Server {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let store = Arc::new(store::Sqlite::temporary().expect("a temporary store"));
            // Task integrations reach a closed local port, never the network.
            let nowhere = Some("http://127.0.0.1:9".to_owned());
            let config = engine::Config {
                aws_endpoint: nowhere.clone(),
                lambda_endpoint: nowhere,
                ..engine::Config::default()
            };
            let engine = engine::Engine::start(config, store, Arc::new(engine::SystemClock))
                .await
                .expect("an engine");
            let auth = api::auth::Auth::Open {
                account: engine::Config::default().account_id,
            };
            let hosts = api::hosts::AllowedHosts::new("127.0.0.1", &[]);
            api::router(engine, auth, hosts, axum::Router::new())
        });
        Server { runtime, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let (target, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut request = Request::post("/")
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-amz-json-1.0");
    if let Ok(target) = HeaderValue::from_bytes(target) {
        request = request.header("x-amz-target", target);
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let server = server();
    server.runtime.block_on(async {
        let answered = tokio::time::timeout(ANSWER_WITHIN, server.router.clone().oneshot(request));
        let Ok(response) = answered.await else {
            return;
        };
        let response = response.expect("the router answers every request");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a readable body");
        // Every answer, error or not, is a JSON document.
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("a JSON answer");
    });
});
