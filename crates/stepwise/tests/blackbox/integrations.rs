//! Lambda and HTTP Task integrations, black-box: the real `stepwise serve` binary invokes a
//! real HTTP server in this test process that plays the Lambda Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations`) and an ordinary JSON API (`/api/...`).
//!
//! Functions of the fixture:
//! - `echo`: returns its payload;
//! - `fail`: a function error (`X-Amz-Function-Error`) of type `ValueError`;
//! - `flaky`: a function error `Flaky` on its first two invocations, then an echo;
//! - `slow`: answers after 3 s;
//! - `throttled`: the API answers 429 `TooManyRequestsException`;
//! - `callback`: accepts an `Event` invocation and later calls `SendTaskSuccess` with the
//!   payload's `token`;
//! - any other name: 404 `ResourceNotFoundException`.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{
    assert_history_well_formed, create_machine, event_types, history, parse_json, start, wait_done,
    Options, Server, StoreKind,
};
use serde_json::{json, Value};

const SCALE: f64 = 0.1;
const DONE_WITHIN: Duration = Duration::from_secs(20);
const FN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

// ---------------------------------------------------------------------------
// The fixture: a Lambda Invoke API and a JSON API on one local port
// ---------------------------------------------------------------------------

/// One request the fixture received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    flaky_calls: AtomicU32,
    /// The Step Functions endpoint, for `callback` (set once the server is up).
    sfn_endpoint: Mutex<Option<String>>,
}

struct Fixture {
    url: String,
    state: Arc<State>,
}

impl Fixture {
    async fn start() -> Fixture {
        let state = Arc::new(State::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fixture listener");
        let addr = listener.local_addr().expect("fixture address");
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let state = shared.clone();
            async move { handle(state, req).await }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fixture {
            url: format!("http://{addr}"),
            state,
        }
    }

    fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("fixture lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn json_response(status: StatusCode, headers: &[(&str, &str)], body: String) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("building a fixture response: {e}"))
}

async fn handle(state: Arc<State>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: header_map(&parts.headers),
        body,
    };
    state.seen.lock().expect("fixture lock").push(seen.clone());
    if let Some(name) = seen
        .path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
    {
        return lambda(&state, name, &parts.method, &seen).await;
    }
    api(&parts.uri, &seen).await
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The Lambda Invoke API.
async fn lambda(state: &Arc<State>, name: &str, method: &Method, seen: &Seen) -> Response {
    assert_eq!(method, Method::POST, "Invoke is a POST");
    let ok_headers = [
        ("x-amz-executed-version", "$LATEST"),
        ("x-amzn-requestid", "fixture-request-id"),
    ];
    let function_error = |error_type: &str, message: &str| {
        json_response(
            StatusCode::OK,
            &[
                ("x-amz-function-error", "Unhandled"),
                ("x-amzn-requestid", "fixture-request-id"),
            ],
            json!({"errorType": error_type, "errorMessage": message, "trace": []}).to_string(),
        )
    };
    match name {
        "echo" => json_response(StatusCode::OK, &ok_headers, seen.body.clone()),
        "fail" => function_error("ValueError", "bad input"),
        // A result over Step Functions' 256 KiB payload limit (a JSON string of 300,000 bytes).
        "large" => json_response(
            StatusCode::OK,
            &ok_headers,
            Value::String("a".repeat(300_000)).to_string(),
        ),
        "flaky" => {
            if state.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
                function_error("Flaky", "try again")
            } else {
                json_response(StatusCode::OK, &ok_headers, seen.body.clone())
            }
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json_response(StatusCode::OK, &ok_headers, seen.body.clone())
        }
        "throttled" => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &[("x-amzn-errortype", "TooManyRequestsException")],
            json!({"Type": "User", "message": "Rate exceeded"}).to_string(),
        ),
        "callback" => {
            let payload: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
            let token = payload["token"].as_str().unwrap_or_default().to_owned();
            let endpoint = state.sfn_endpoint.lock().expect("fixture lock").clone();
            if let Some(endpoint) = endpoint {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let client = common::sfn_client(&endpoint, "us-east-1");
                    let output = json!({"calledBack": payload["value"]}).to_string();
                    if let Err(e) = client
                        .send_task_success()
                        .task_token(token)
                        .output(output)
                        .send()
                        .await
                    {
                        eprintln!("callback SendTaskSuccess failed: {e:?}");
                    }
                });
            }
            Response::builder()
                .status(StatusCode::ACCEPTED)
                .header("x-amzn-requestid", "fixture-request-id")
                .body(Body::empty())
                .unwrap_or_else(|e| panic!("building a fixture response: {e}"))
        }
        other => json_response(
            StatusCode::NOT_FOUND,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
            json!({
                "Type": "User",
                "message": format!("Function not found: {FN_ARN}{other}"),
            })
            .to_string(),
        ),
    }
}

/// The JSON API for the HTTP Task.
async fn api(uri: &Uri, seen: &Seen) -> Response {
    let echo = json!({
        "method": seen.method,
        "query": seen.query,
        "contentType": seen.headers.get("content-type"),
        "custom": seen.headers.get("x-custom"),
        "userAgent": seen.headers.get("user-agent"),
        "body": seen.body,
    });
    match uri.path() {
        "/api/echo" => json_response(StatusCode::OK, &[("x-fixture", "yes")], echo.to_string()),
        "/api/text" => (StatusCode::OK, "plain words").into_response(),
        "/api/error" => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[],
            json!({"message": "kaput"}).to_string(),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &[],
            json!({"message": "no such route"}).to_string(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A server on the memory store invoking Lambda at `lambda_endpoint` (if any).
fn server(lambda_endpoint: Option<&str>) -> Server {
    let options = Options {
        store: StoreKind::Memory,
        wait_time_scale: SCALE,
        ..Options::default()
    };
    match lambda_endpoint {
        Some(url) => Server::start_with_args(options, &["--lambda-endpoint", url]),
        None => Server::start(options),
    }
}

/// Both together; the fixture learns the server's endpoint for `callback`.
async fn setup() -> (Fixture, Server) {
    let fixture = Fixture::start().await;
    let server = server(Some(&fixture.url));
    *fixture.state.sfn_endpoint.lock().expect("fixture lock") = Some(server.endpoint());
    (fixture, server)
}

/// A single Task state (plus `extra` fields such as Retry/Catch) and a `Caught` Pass state.
fn one_task(resource: &str, parameters: Option<Value>, extra: Value) -> Value {
    let mut task = json!({"Type": "Task", "Resource": resource, "End": true});
    if let Some(p) = parameters {
        task["Parameters"] = p;
    }
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            task[k] = v;
        }
    }
    json!({
        "StartAt": "Call",
        "States": {
            "Call": task,
            "Caught": {"Type": "Pass", "End": true},
        },
    })
}

/// Runs `definition` on `input` to its end; returns the description and the history.
async fn run(
    server: &Server,
    name: &str,
    definition: &Value,
    input: &Value,
) -> (
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    Vec<HistoryEvent>,
) {
    let client = server.client();
    let sm = create_machine(&client, name, definition).await;
    let exec = start(&client, &sm, None, input).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    let events = history(&client, &exec).await;
    assert_history_well_formed(name, &events);
    (done, events)
}

fn output(d: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput) -> Value {
    parse_json("execution output", d.output())
}

fn count(types: &[String], t: &str) -> usize {
    types.iter().filter(|x| *x == t).count()
}

fn context(server: &Server, types: &[String]) -> String {
    format!("events: {types:?}\n{}", server.logs())
}

// ---------------------------------------------------------------------------
// Lambda
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_arn_succeeds_with_lambda_function_events() {
    let (fixture, server) = setup().await;
    let arn = format!("{FN_ARN}echo");
    let definition = one_task(&arn, None, json!({}));
    let input = json!({"hello": "world", "n": [1, 2]});
    let (done, events) = run(&server, "lambda-arn", &definition, &input).await;
    let types = event_types(&events);
    assert_eq!(
        *done.status(),
        ExecutionStatus::Succeeded,
        "{}",
        context(&server, &types)
    );
    assert_eq!(output(&done), input);
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ]
    );
    let scheduled = events[2]
        .lambda_function_scheduled_event_details()
        .expect("LambdaFunctionScheduled details");
    assert_eq!(scheduled.resource(), arn);
    let succeeded = events[4]
        .lambda_function_succeeded_event_details()
        .expect("LambdaFunctionSucceeded details");
    assert_eq!(
        parse_json("LambdaFunctionSucceeded output", succeeded.output()),
        input
    );
    // The payload went to the function unchanged, as a synchronous invocation.
    let seen = fixture.requests_to("/2015-03-31/functions/echo/invocations");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].body).ok(),
        Some(input)
    );
    assert_eq!(
        seen[0]
            .headers
            .get("x-amz-invocation-type")
            .map(String::as_str),
        Some("RequestResponse")
    );
    // SigV4-signed for Lambda in the function's region.
    let authorization = seen[0]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=")
            && authorization.contains("/us-east-1/lambda/aws4_request"),
        "{authorization:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoke_has_aws_output_shape() {
    let (fixture, server) = setup().await;
    let definition = one_task(
        "arn:aws:states:::lambda:invoke",
        Some(json!({
            "FunctionName": format!("{FN_ARN}echo:live"),
            "Payload": {"order.$": "$.order", "fixed": true},
            "ClientContext": "eyJhIjoxfQ==",
        })),
        json!({}),
    );
    let (done, events) = run(&server, "lambda-invoke", &definition, &json!({"order": 42})).await;
    let types = event_types(&events);
    assert_eq!(
        *done.status(),
        ExecutionStatus::Succeeded,
        "{}",
        context(&server, &types)
    );
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ]
    );
    let scheduled = events[2]
        .task_scheduled_event_details()
        .expect("TaskScheduled details");
    assert_eq!(scheduled.resource_type(), "lambda");
    assert_eq!(scheduled.resource(), "invoke");

    let out = output(&done);
    let keys: Vec<&String> = out.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        [
            "ExecutedVersion",
            "Payload",
            "SdkHttpMetadata",
            "SdkResponseMetadata",
            "StatusCode"
        ]
    );
    assert_eq!(out["ExecutedVersion"], "$LATEST");
    assert_eq!(out["Payload"], json!({"order": 42, "fixed": true}));
    assert_eq!(out["StatusCode"], 200);
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], 200);
    assert_eq!(
        out["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Executed-Version"],
        "$LATEST"
    );
    assert_eq!(
        out["SdkHttpMetadata"]["AllHttpHeaders"]["x-amzn-RequestId"],
        json!(["fixture-request-id"])
    );
    assert_eq!(
        out["SdkResponseMetadata"]["RequestId"],
        "fixture-request-id"
    );

    // The ARN's qualifier became ?Qualifier=, the client context a header.
    let seen = fixture.requests_to("/2015-03-31/functions/echo/invocations");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].query, "Qualifier=live");
    assert_eq!(
        seen[0]
            .headers
            .get("x-amz-client-context")
            .map(String::as_str),
        Some("eyJhIjoxfQ==")
    );
}

/// Function and API errors, in both resource forms, caught by `States.ALL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_errors_are_caught_with_aws_names() {
    let (_fixture, server) = setup().await;
    // (function, expected Error, a piece of the expected Cause)
    let cases = [
        ("fail", "ValueError", r#""errorMessage":"bad input""#),
        (
            "missing",
            "Lambda.ResourceNotFoundException",
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing (Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException;",
        ),
        (
            "throttled",
            "Lambda.TooManyRequestsException",
            "Rate exceeded (Service: AWSLambda; Status Code: 429",
        ),
    ];
    let catch = json!({"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]});
    for (function, error, cause) in cases {
        for (form, resource, parameters, failed_event) in [
            (
                "arn",
                format!("{FN_ARN}{function}"),
                None,
                "LambdaFunctionFailed",
            ),
            (
                "invoke",
                "arn:aws:states:::lambda:invoke".to_owned(),
                Some(json!({"FunctionName": function, "Payload.$": "$"})),
                "TaskFailed",
            ),
        ] {
            let what = format!("{function} via {form}");
            let definition = one_task(&resource, parameters, catch.clone());
            let name = format!("errors-{function}-{form}");
            let (done, events) = run(&server, &name, &definition, &json!({"k": 1})).await;
            let types = event_types(&events);
            assert_eq!(
                *done.status(),
                ExecutionStatus::Succeeded,
                "{what}: {}",
                context(&server, &types)
            );
            assert_eq!(count(&types, failed_event), 1, "{what}: {types:?}");
            assert!(
                types.contains(&"PassStateEntered".to_owned()),
                "{what}: {types:?}"
            );
            let out = output(&done);
            assert_eq!(out["k"], 1, "{what}");
            assert_eq!(out["error"]["Error"], error, "{what}: {out}");
            let got_cause = out["error"]["Cause"].as_str().unwrap_or_default();
            assert!(got_cause.contains(cause), "{what}: cause {got_cause:?}");
        }
    }
}

/// A result over 256 KiB fails the task (not the state) with `States.DataLimitExceeded`, which
/// `States.ALL` catches, as AWS records it; the cause names the function's ARN, or the service
/// for `lambda:invoke`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_is_a_catchable_task_failure() {
    let (_fixture, server) = setup().await;
    let arn = format!("{FN_ARN}large");
    let limit = "States.DataLimitExceeded";
    for (form, resource, parameters, failed_event, named, catch_with) in [
        (
            "arn",
            arn.clone(),
            None,
            "LambdaFunctionFailed",
            arn.as_str(),
            "States.ALL",
        ),
        (
            "arn-named",
            arn.clone(),
            None,
            "LambdaFunctionFailed",
            arn.as_str(),
            limit,
        ),
        (
            "invoke",
            "arn:aws:states:::lambda:invoke".to_owned(),
            Some(json!({"FunctionName": "large", "Payload.$": "$"})),
            "TaskFailed",
            "lambda",
            "States.ALL",
        ),
    ] {
        let catch = json!({"Catch": [{"ErrorEquals": [catch_with], "Next": "Caught"}]});
        let definition = one_task(&resource, parameters, catch);
        let name = format!("too-large-{form}");
        let (done, events) = run(&server, &name, &definition, &json!({})).await;
        let types = event_types(&events);
        assert_eq!(
            *done.status(),
            ExecutionStatus::Succeeded,
            "{form}: {}",
            context(&server, &types)
        );
        assert_eq!(count(&types, failed_event), 1, "{form}: {types:?}");
        assert!(
            !types
                .iter()
                .any(|t| t.ends_with("Succeeded") && t != "ExecutionSucceeded"),
            "{form}: {types:?}"
        );
        let out = output(&done);
        assert_eq!(out["Error"], limit, "{form}: {out}");
        assert_eq!(
            out["Cause"],
            format!("The state/task '{named}' returned a result with a size exceeding the maximum number of bytes service limit."),
            "{form}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_function_error_cause_is_the_payload() {
    let (_fixture, server) = setup().await;
    let definition = one_task(&format!("{FN_ARN}fail"), None, json!({}));
    let (done, events) = run(&server, "uncaught-fail", &definition, &json!({})).await;
    let types = event_types(&events);
    assert_eq!(
        *done.status(),
        ExecutionStatus::Failed,
        "{}",
        context(&server, &types)
    );
    assert_eq!(done.error(), Some("ValueError"));
    let cause = parse_json("cause", done.cause());
    assert_eq!(
        cause,
        json!({"errorType": "ValueError", "errorMessage": "bad input", "trace": []})
    );
    let failed = events
        .iter()
        .find_map(HistoryEvent::lambda_function_failed_event_details)
        .expect("LambdaFunctionFailed details");
    assert_eq!(failed.error(), Some("ValueError"));
    assert_eq!(types.last().map(String::as_str), Some("ExecutionFailed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_retry_then_success() {
    let (fixture, server) = setup().await;
    let definition = one_task(
        &format!("{FN_ARN}flaky"),
        None,
        json!({"Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}]}),
    );
    let input = json!({"attempt": "any"});
    let (done, events) = run(&server, "flaky", &definition, &input).await;
    let types = event_types(&events);
    assert_eq!(
        *done.status(),
        ExecutionStatus::Succeeded,
        "{}",
        context(&server, &types)
    );
    assert_eq!(output(&done), input);
    assert_eq!(count(&types, "LambdaFunctionScheduled"), 3, "{types:?}");
    assert_eq!(count(&types, "LambdaFunctionFailed"), 2, "{types:?}");
    assert_eq!(count(&types, "LambdaFunctionSucceeded"), 1, "{types:?}");
    assert_eq!(
        fixture
            .requests_to("/2015-03-31/functions/flaky/invocations")
            .len(),
        3
    );
}

/// Nothing listening at the Lambda endpoint: a clear `Lambda.SdkClientException`. (Without an
/// endpoint the call goes to AWS Lambda, which a hermetic test cannot reach.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_without_a_reachable_endpoint_fails_clearly() {
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let cases: [(Option<&str>, &[&str]); 1] =
        [(Some(&closed), &["Unable to execute HTTP request", &closed])];
    for (endpoint, pieces) in cases {
        let server = server(endpoint);
        let definition = one_task(&format!("{FN_ARN}echo"), None, json!({}));
        let (done, events) = run(&server, "no-endpoint", &definition, &json!({})).await;
        let types = event_types(&events);
        assert_eq!(
            *done.status(),
            ExecutionStatus::Failed,
            "{endpoint:?}: {}",
            context(&server, &types)
        );
        assert_eq!(
            done.error(),
            Some("Lambda.SdkClientException"),
            "{endpoint:?}"
        );
        let cause = done.cause().unwrap_or_default();
        for piece in pieces {
            assert!(
                cause.contains(piece),
                "{endpoint:?}: cause {cause:?} lacks {piece:?}"
            );
        }
        assert_eq!(count(&types, "LambdaFunctionFailed"), 1, "{types:?}");
    }
}

/// `TimeoutSeconds` against a function that answers after 3 s (the timeout is 1 s × 0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_timeout_against_a_slow_function() {
    let (_fixture, server) = setup().await;
    let cases = [
        (format!("{FN_ARN}slow"), None, "LambdaFunctionTimedOut"),
        (
            "arn:aws:states:::lambda:invoke".to_owned(),
            Some(json!({"FunctionName": "slow", "Payload": {}})),
            "TaskTimedOut",
        ),
    ];
    for (i, (resource, parameters, timed_out)) in cases.into_iter().enumerate() {
        let definition = one_task(&resource, parameters, json!({"TimeoutSeconds": 1}));
        let started = std::time::Instant::now();
        let (done, events) = run(&server, &format!("slow-{i}"), &definition, &json!({})).await;
        let types = event_types(&events);
        assert_eq!(
            *done.status(),
            ExecutionStatus::Failed,
            "{resource}: {}",
            context(&server, &types)
        );
        assert_eq!(done.error(), Some("States.Timeout"), "{resource}");
        assert_eq!(count(&types, timed_out), 1, "{resource}: {types:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{resource}: the timeout did not end the task early ({:?})",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoke_wait_for_task_token() {
    let (fixture, server) = setup().await;
    let definition = one_task(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        Some(json!({
            "FunctionName": "callback",
            "Payload": {"token.$": "$$.Task.Token", "value.$": "$.value"},
        })),
        json!({}),
    );
    let (done, events) = run(&server, "callback", &definition, &json!({"value": 7})).await;
    let types = event_types(&events);
    assert_eq!(
        *done.status(),
        ExecutionStatus::Succeeded,
        "{}",
        context(&server, &types)
    );
    assert_eq!(output(&done), json!({"calledBack": 7}));
    let seen = fixture.requests_to("/2015-03-31/functions/callback/invocations");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]
            .headers
            .get("x-amz-invocation-type")
            .map(String::as_str),
        Some("Event")
    );
    assert!(types.contains(&"TaskSucceeded".to_owned()), "{types:?}");
}

// ---------------------------------------------------------------------------
// HTTP Task
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_task_requests_and_result_shape() {
    let (fixture, server) = setup().await;
    let echo = format!("{}/api/echo", fixture.url);
    // (case, Parameters, what the API saw: method, query, content type, body)
    let cases = [
        (
            "get-query",
            json!({
                "ApiEndpoint": echo,
                "Method": "GET",
                "QueryParameters": {"q": "a b", "n": 5},
                "Headers": {"X-Custom": "yes"},
                "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/c/1"},
            }),
            ("GET", "q=a+b&n=5", None, ""),
        ),
        (
            "post-json",
            json!({
                "ApiEndpoint": echo,
                "Method": "POST",
                "RequestBody": {"order.$": "$.order"},
            }),
            (
                "POST",
                "",
                Some("application/json; charset=UTF-8"),
                r#"{"order":42}"#,
            ),
        ),
        (
            "put-url-encoded",
            json!({
                "ApiEndpoint": echo,
                "Method": "PUT",
                "RequestBody": {"tags": ["x", "y"], "order.$": "$.order"},
                "Transform": {
                    "RequestBodyEncoding": "URL_ENCODED",
                    "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"},
                },
            }),
            (
                "PUT",
                "",
                Some("application/x-www-form-urlencoded"),
                "tags%5B%5D=x&tags%5B%5D=y&order=42",
            ),
        ),
    ];
    for (case, parameters, (method, query, content_type, body)) in cases {
        let definition = one_task("arn:aws:states:::http:invoke", Some(parameters), json!({}));
        let (done, events) = run(&server, case, &definition, &json!({"order": 42})).await;
        let types = event_types(&events);
        assert_eq!(
            *done.status(),
            ExecutionStatus::Succeeded,
            "{case}: {}",
            context(&server, &types)
        );
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "TaskStateEntered",
                "TaskScheduled",
                "TaskStarted",
                "TaskSucceeded",
                "TaskStateExited",
                "ExecutionSucceeded",
            ],
            "{case}"
        );
        let scheduled = events[2]
            .task_scheduled_event_details()
            .expect("TaskScheduled details");
        assert_eq!(
            (scheduled.resource_type(), scheduled.resource()),
            ("http", "invoke")
        );
        let out = output(&done);
        let keys: Vec<&String> = out.as_object().expect("an object").keys().collect();
        assert_eq!(
            keys,
            ["Headers", "ResponseBody", "StatusCode", "StatusText"],
            "{case}"
        );
        assert_eq!(out["StatusCode"], 200, "{case}");
        assert_eq!(out["StatusText"], "OK", "{case}");
        assert_eq!(out["Headers"]["x-fixture"], json!(["yes"]), "{case}");
        assert_eq!(
            out["Headers"]["content-type"],
            json!(["application/json"]),
            "{case}"
        );
        let seen = &out["ResponseBody"];
        assert_eq!(seen["method"], method, "{case}: {seen}");
        assert_eq!(seen["query"], query, "{case}: {seen}");
        assert_eq!(seen["contentType"], json!(content_type), "{case}: {seen}");
        assert_eq!(seen["body"], body, "{case}: {seen}");
        if case == "get-query" {
            assert_eq!(seen["custom"], "yes");
        }
    }
    assert_eq!(fixture.requests_to("/api/echo").len(), 3);

    // A body that is not JSON comes back as a string.
    let definition = one_task(
        "arn:aws:states:::http:invoke",
        Some(json!({"ApiEndpoint": format!("{}/api/text", fixture.url), "Method": "GET"})),
        json!({"OutputPath": "$.ResponseBody"}),
    );
    let (done, _) = run(&server, "text", &definition, &json!({})).await;
    assert_eq!(output(&done), json!("plain words"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_task_500_fails_with_the_status_code_error() {
    let (fixture, server) = setup().await;
    let parameters = json!({"ApiEndpoint": format!("{}/api/error", fixture.url), "Method": "GET"});
    let catch = json!({"Catch": [{"ErrorEquals": ["States.Http.StatusCode.500"], "ResultPath": "$.error", "Next": "Caught"}]});
    // (case, extra fields, expected status)
    let cases = [
        ("uncaught", json!({}), ExecutionStatus::Failed),
        ("caught", catch, ExecutionStatus::Succeeded),
    ];
    for (case, extra, status) in cases {
        let definition = one_task(
            "arn:aws:states:::http:invoke",
            Some(parameters.clone()),
            extra,
        );
        let (done, events) = run(&server, case, &definition, &json!({})).await;
        let types = event_types(&events);
        assert_eq!(
            *done.status(),
            status,
            "{case}: {}",
            context(&server, &types)
        );
        assert_eq!(count(&types, "TaskFailed"), 1, "{case}: {types:?}");
        let (error, cause) = if status == ExecutionStatus::Failed {
            (
                done.error().unwrap_or_default().to_owned(),
                done.cause().unwrap_or_default().to_owned(),
            )
        } else {
            let out = output(&done);
            (
                out["error"]["Error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                out["error"]["Cause"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        };
        assert_eq!(error, "States.Http.StatusCode.500", "{case}");
        let cause = parse_json("cause", Some(&cause));
        assert_eq!(cause["StatusCode"], 500, "{case}: {cause}");
        assert_eq!(cause["StatusText"], "Internal Server Error", "{case}");
        assert_eq!(cause["ResponseBody"], json!({"message": "kaput"}), "{case}");
    }
}
