//! OpenTelemetry traces (`--otlp-endpoint`): a real OTLP/HTTP receiver in the test takes the
//! protobuf bodies the server posts to `/v1/traces`; executions run through the AWS SDK, the
//! server stops on SIGTERM (which flushes the exporter), and the spans are checked: the API
//! span of StartExecution, under it the execution's run, under that one span per state; a
//! redrive is a second run under the RedriveExecution request.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::routing::post;
use common::{create_machine, start, wait_done, Options, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const DONE_WITHIN: Duration = Duration::from_secs(20);

/// What the receiver was sent: the export requests, decoded.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| async move {
            match ExportTraceServiceRequest::decode(body) {
                Ok(request) => {
                    store.lock().expect("the receiver's list").push(request);
                    // An empty ExportTraceServiceResponse: full success.
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                        Vec::new(),
                    )
                }
                Err(_) => (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain")],
                    Vec::new(),
                ),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the OTLP receiver");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// An attribute's value as text.
fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

fn attr(span: &Span, key: &str) -> Option<String> {
    attribute(&span.attributes, key)
}

fn status(span: &Span) -> i32 {
    span.status.as_ref().map_or(0, |s| s.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_show_requests_executions_and_states() {
    let (url, received) = receiver().await;
    let mut server =
        Server::start_with_args(Options::default(), &["--otlp-endpoint", url.as_str()]);
    let sfn = server.client();

    let chain = create_machine(
        &sfn,
        "traced-chain",
        &json!({"StartAt": "Prepare", "States": {
            "Prepare": {"Type": "Pass", "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Finish"},
            "Finish": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let ok = start(&sfn, &chain, Some("traced-ok"), &json!({})).await;
    let failing = create_machine(
        &sfn,
        "traced-failing",
        &json!({"StartAt": "Before", "States": {
            "Before": {"Type": "Pass", "Next": "Boom"},
            "Boom": {"Type": "Fail", "Error": "Custom.Error", "Cause": "on purpose"}}}),
    )
    .await;
    let failed = start(&sfn, &failing, Some("traced-failed"), &json!({})).await;
    assert_eq!(
        wait_done(&sfn, &ok, DONE_WITHIN).await.status().as_str(),
        "SUCCEEDED"
    );
    assert_eq!(
        wait_done(&sfn, &failed, DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "FAILED"
    );
    sfn.redrive_execution()
        .execution_arn(&failed)
        .send()
        .await
        .expect("RedriveExecution");
    assert_eq!(
        wait_done(&sfn, &failed, DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "FAILED"
    );
    let missing = sfn
        .describe_execution()
        .execution_arn(ok.replace("traced-ok", "no-such-execution"))
        .send()
        .await;
    assert!(
        missing.is_err(),
        "DescribeExecution of an unknown execution"
    );
    // A caller already in a trace: its W3C `traceparent` makes the request's span its child.
    let joined = reqwest::Client::new()
        .post(server.endpoint())
        .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
        .header("content-type", "application/x-amz-json-1.0")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .body("{}")
        .send()
        .await
        .expect("ListStateMachines with a traceparent");
    assert_eq!(joined.status(), 200);

    // SIGTERM: the server flushes its exporter before it exits.
    assert!(
        server.terminate(Duration::from_secs(30)),
        "{}",
        server.logs()
    );

    let requests = received.lock().expect("the receiver's list").clone();
    let resources: Vec<_> = requests.iter().flat_map(|r| &r.resource_spans).collect();
    assert!(
        !resources.is_empty(),
        "no spans received; logs:\n{}",
        server.logs()
    );
    for r in &resources {
        let attributes = r.resource.as_ref().map(|r| r.attributes.as_slice());
        let service = attribute(attributes.unwrap_or_default(), "service.name");
        assert_eq!(service.as_deref(), Some("stepwise"));
    }
    let spans: Vec<&Span> = resources
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), *s)).collect();

    // The API span of each StartExecution, naming the execution it started.
    let api_span = |arn: &str| {
        spans
            .iter()
            .find(|s| {
                s.name == "StartExecution"
                    && attr(s, "stepwise.execution.arn").as_deref() == Some(arn)
            })
            .copied()
            .unwrap_or_else(|| panic!("no StartExecution span for {arn}"))
    };
    let request = api_span(&ok);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(
        attr(request, "rpc.method").as_deref(),
        Some("StartExecution")
    );
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_ne!(status(request), SpanStatus::Error as i32);

    // Its child: the execution's run, ending with the execution.
    let run_of = |arn: &str, redrive_count: &str| {
        let runs: Vec<&Span> = spans
            .iter()
            .filter(|s| {
                s.name == "Execution"
                    && attr(s, "stepwise.execution.arn").as_deref() == Some(arn)
                    && attr(s, "stepwise.execution.redrive_count").as_deref() == Some(redrive_count)
            })
            .copied()
            .collect();
        assert_eq!(runs.len(), 1, "one span for run {redrive_count} of {arn}");
        runs[0]
    };
    let run = run_of(&ok, "0");
    assert_eq!(
        run.trace_id, request.trace_id,
        "the run is in the request's trace"
    );
    assert_eq!(
        run.parent_span_id, request.span_id,
        "the run is the request's child"
    );
    assert_eq!(
        attr(run, "stepwise.state_machine.arn").as_deref(),
        Some(chain.as_str())
    );
    assert_eq!(
        attr(run, "stepwise.execution.status").as_deref(),
        Some("SUCCEEDED")
    );
    assert_ne!(status(run), SpanStatus::Error as i32);

    // Its children: one span per state, in order, with name, type and execution.
    let states_of = |run: &Span| {
        let mut states: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == run.span_id)
            .copied()
            .collect();
        states.sort_by_key(|s| s.start_time_unix_nano);
        states
    };
    let states = states_of(run);
    let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Prepare", "Pause", "Finish"]);
    let types: Vec<String> = states
        .iter()
        .filter_map(|s| attr(s, "stepwise.state.type"))
        .collect();
    assert_eq!(types, ["Pass", "Wait", "Pass"]);
    for s in &states {
        assert_eq!(s.trace_id, run.trace_id);
        assert_eq!(
            attr(s, "stepwise.state.name").as_deref(),
            Some(s.name.as_str())
        );
        assert_eq!(
            attr(s, "stepwise.execution.arn").as_deref(),
            Some(ok.as_str())
        );
        assert!(s.start_time_unix_nano >= run.start_time_unix_nano);
        assert!(s.end_time_unix_nano <= run.end_time_unix_nano);
    }
    // The Wait lasted its second times the tests' wait scale (0.1).
    let pause = states[1];
    let waited = pause.end_time_unix_nano - pause.start_time_unix_nano;
    assert!(waited >= 90_000_000, "Pause lasted {waited} ns");

    // The failed execution: its run and the Fail state it ended in are errors.
    let run = run_of(&failed, "0");
    assert_eq!(run.parent_span_id, api_span(&failed).span_id);
    assert_eq!(status(run), SpanStatus::Error as i32);
    assert_eq!(attr(run, "error.type").as_deref(), Some("Custom.Error"));
    assert_eq!(
        attr(run, "stepwise.execution.status").as_deref(),
        Some("FAILED")
    );
    let states = states_of(run);
    let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Before", "Boom"]);
    assert_ne!(status(states[0]), SpanStatus::Error as i32);
    assert_eq!(status(states[1]), SpanStatus::Error as i32);
    assert_eq!(
        attr(states[1], "error.type").as_deref(),
        Some("Custom.Error")
    );

    // The redrive is a second run, the child of the RedriveExecution request, that re-enters
    // only the failed state.
    let redrive = spans
        .iter()
        .find(|s| s.name == "RedriveExecution")
        .expect("the RedriveExecution span");
    let rerun = run_of(&failed, "1");
    assert_eq!(rerun.parent_span_id, redrive.span_id);
    assert_eq!(rerun.trace_id, redrive.trace_id);
    assert!(rerun.start_time_unix_nano >= run.end_time_unix_nano);
    let names: Vec<String> = states_of(rerun).iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["Boom"]);

    // A refused request: its AWS error code and status.
    let refused = spans
        .iter()
        .find(|s| s.name == "DescribeExecution" && status(s) == SpanStatus::Error as i32)
        .expect("the refused DescribeExecution's span");
    assert_eq!(
        attr(refused, "error.type").as_deref(),
        Some("ExecutionDoesNotExist")
    );
    assert_eq!(
        attr(refused, "http.response.status_code").as_deref(),
        Some("400")
    );
    assert!(
        refused.parent_span_id.is_empty(),
        "a request's span is a root"
    );

    // Every parent named was exported too (but the caller's, below, which is not the server's).
    for s in &spans {
        let parent = s.parent_span_id.as_slice();
        assert!(
            parent.is_empty() || by_id.contains_key(parent) || hex(parent) == CALLER_SPAN,
            "{} has no parent",
            s.name
        );
    }

    // The request that came with a traceparent joined the caller's trace, under its span.
    let joined = spans
        .iter()
        .find(|s| s.name == "ListStateMachines")
        .expect("the ListStateMachines span");
    assert_eq!(hex(&joined.trace_id), CALLER_TRACE);
    assert_eq!(hex(&joined.parent_span_id), CALLER_SPAN);
    assert!(
        spans
            .iter()
            .filter(|s| s.name == "StartExecution")
            .all(|s| s.parent_span_id.is_empty() && hex(&s.trace_id) != CALLER_TRACE),
        "a request without a traceparent starts a trace of its own"
    );
}

/// The trace and span of a caller that sends `traceparent` (W3C Trace Context).
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
