//! The web console: a page served on `GET /` of the API's port, with its scripts and styles
//! embedded in the binary (`assets/`). The page reads and drives the engine only through the
//! AWS API (`POST /` with `X-Amz-Target: AWSStepFunctions.*`), as any client does: this crate
//! knows nothing of the engine.
//!
//! The graph layout is `@dagrejs/dagre`, vendored from the npm registry by
//! `scripts/console-vendor` (pinned by `npm/package-lock.json`).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Whether the page can call the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The API takes unsigned (or any-signed) requests: the console works.
    Open,
    /// `--auth sigv4`: the page cannot sign its requests, so `GET /` explains that instead.
    SignedOnly,
}

/// One embedded file: its name under `/console/`, its type and its text.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../assets/api.js"),
    },
    Asset {
        name: "history.js",
        content_type: JS,
        body: include_str!("../assets/history.js"),
    },
    Asset {
        name: "containers.js",
        content_type: JS,
        body: include_str!("../assets/containers.js"),
    },
    Asset {
        name: "graph.js",
        content_type: JS,
        body: include_str!("../assets/graph.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/style.css"),
    },
    Asset {
        name: "vendor/dagre.esm.js",
        content_type: JS,
        body: include_str!("../assets/vendor/dagre.esm.js"),
    },
];

const INDEX: &str = include_str!("../assets/index.html");
const SIGNED_ONLY: &str = include_str!("../assets/signed-only.html");

/// The console's routes: `GET /` and `GET /console/{file}`. The caller merges them with the
/// API's `POST /`.
pub fn router(mode: Mode) -> Router {
    let index = move || async move {
        match mode {
            Mode::Open => html(StatusCode::OK, INDEX),
            Mode::SignedOnly => html(StatusCode::FORBIDDEN, SIGNED_ONLY),
        }
    };
    Router::new()
        .route("/", get(index))
        .route("/console/{*file}", get(asset))
}

fn html(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => {
            let mut response = a.body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
