//! Hostile input: requests and executions built to exhaust the stack, memory or time of the
//! server must get an AWS-style error or fail their execution, and the server must live on
//! with bounded memory. Each case was found to take the server down before it was bounded.

use crate::common;

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use common::{create_machine, start, wait_done, Server};
use serde_json::{json, Value};

/// The most memory the server may reach through all of these cases.
const MAX_RSS_KIB: u64 = 1024 * 1024;

fn pass_with_input_path(path: &str) -> Value {
    json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": path, "End": true}}})
}

fn pass_with_parameter(expression: &str) -> Value {
    json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": expression}, "End": true}}})
}

/// Definitions whose paths or intrinsics nest thousands of levels deep (4–35 KB each).
fn deep_definitions() -> Vec<(&'static str, Value)> {
    let parens = format!("$[?({}@.a == 1{})]", "(".repeat(1_300), ")".repeat(1_300));
    let bangs = format!("$[?({}@.a)]", "!".repeat(5_000));
    let arrays = format!("{}1{}", "States.Array(".repeat(3_500), ")".repeat(3_500));
    let chain = format!("$[?({}@.a)]", "@.a || ".repeat(4_000));
    vec![
        ("parentheses", pass_with_input_path(&parens)),
        ("negations", pass_with_input_path(&bangs)),
        ("or-chain", pass_with_input_path(&chain)),
        ("intrinsics", pass_with_parameter(&arrays)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_definitions_are_refused_not_fatal() {
    let mut server = Server::memory(1.0);
    let raw = server.raw();
    for (name, definition) in deep_definitions() {
        let text = definition.to_string();
        let validated = raw
            .ok(
                "ValidateStateMachineDefinition",
                &json!({"definition": text}),
            )
            .await;
        assert_eq!(validated["result"], "FAIL", "{name}: {validated}");
        let code = &validated["diagnostics"][0]["code"];
        assert_eq!(code, "SCHEMA_VALIDATION_FAILED", "{name}: {validated}");

        let created = raw
            .call(
                "CreateStateMachine",
                &json!({"name": format!("deep-{name}"), "definition": text,
                        "roleArn": common::ROLE_ARN}),
            )
            .await;
        assert_eq!(created.status, 400, "{name}: {}", created.text);
        assert_eq!(created.error_code().as_deref(), Some("InvalidDefinition"));

        let state = &definition["States"]["A"];
        let tested = raw
            .call(
                "TestState",
                &json!({"definition": state.to_string(), "roleArn": common::ROLE_ARN}),
            )
            .await;
        assert_eq!(tested.status, 400, "{name}: {}", tested.text);
        assert!(server.is_running(), "{name} took the server down");
    }
}

async fn stop(client: &aws_sdk_sfn::Client, arn: &str) {
    client
        .stop_execution()
        .execution_arn(arn)
        .send()
        .await
        .expect("StopExecution");
}

/// `{"k": {"k": … 1}}`, `levels` deep.
fn nested_object(levels: usize) -> String {
    format!("{}1{}", "{\"k\":".repeat(levels), "}".repeat(levels))
}

/// Waits (20 s at the test's time scale of 0.1), so the server can be killed mid-way.
fn wait_then_end(parameters: Option<Value>) -> Value {
    let mut first = json!({"Type": "Pass", "Next": "Nap"});
    if let Some(p) = parameters {
        first["Parameters"] = p;
    }
    json!({"StartAt": "Shape", "States": {
        "Shape": first,
        "Nap": {"Type": "Wait", "Seconds": 20, "Next": "Done"},
        "Done": {"Type": "Pass", "End": true}
    }})
}

/// A template `levels` deep around the input: `{"w": {"w": … {"in.$": "$"}}}`.
fn wrapping_template(levels: usize) -> Value {
    (0..levels).fold(json!({"in.$": "$"}), |inner, _| json!({ "w": inner }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_data_loads_back_after_a_restart() {
    let mut server = Server::sqlite(0.1);
    let client = server.client();
    // An input as deep as JSON text may be (127 levels), and a state output made deeper
    // still by a template: both sit in the checkpoint while the execution waits.
    let plain = create_machine(&client, "deep-input", &wait_then_end(None)).await;
    let wrapped = create_machine(
        &client,
        "deep-output",
        &wait_then_end(Some(wrapping_template(100))),
    )
    .await;
    let input: Value = serde_json::from_str(&nested_object(127)).expect("127 levels parse");
    let mut arns = Vec::new();
    for sm in [&plain, &wrapped] {
        arns.push(start(&client, sm, None, &input).await);
    }
    server.restart();
    let client = server.client();
    for arn in &arns {
        let done = wait_done(&client, arn, Duration::from_secs(30)).await;
        assert_eq!(
            *done.status(),
            ExecutionStatus::Succeeded,
            "{arn}: {done:?}"
        );
    }
    let out = client
        .describe_execution()
        .execution_arn(&arns[0])
        .send()
        .await
        .expect("describe");
    let output: Value = common::parse_json("output", out.output());
    assert_eq!(output, input);
    // One restart more, now with a running execution stopped after it.
    let arn = start(&client, &plain, None, &input).await;
    server.restart();
    let client = server.client();
    stop(&client, &arn).await;
    let stopped = wait_done(&client, &arn, Duration::from_secs(10)).await;
    assert_eq!(*stopped.status(), ExecutionStatus::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_evaluations_fail_their_execution() {
    let mut server = Server::memory(1.0);
    let client = server.client();
    // Each state wraps its input ten arrays deeper: the 30th would be over 300 levels.
    let mut states = serde_json::Map::new();
    let wrap = format!("{}${}", "States.Array(".repeat(10), ")".repeat(10));
    for i in 0..30 {
        let mut s = json!({"Type": "Pass", "Parameters": {"x.$": wrap}});
        match i {
            29 => s["End"] = json!(true),
            _ => s["Next"] = json!(format!("S{}", i + 1)),
        }
        states.insert(format!("S{i}"), s);
    }
    let deepening = json!({"StartAt": "S0", "States": states});
    // A few hundred bytes nested 120 deep, where each `..*` multiplies the matches.
    let scan = pass_with_input_path("$..*..*..*..*");
    let scan_input: Value =
        serde_json::from_str(&format!("{}1{}", "[0,".repeat(120), "]".repeat(120)))
            .expect("120 levels parse");
    // JSONata that builds a value 100,000 levels deep.
    let jsonata = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {
        "Type": "Pass",
        "Output": "{% $reduce([1..100000], function($acc, $v) { {\"k\": $acc} }, {}) %}",
        "End": true}}});
    // JSONata that builds a 256 MiB string, in one call or by doubling.
    let building = |expression: &str| {
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {
            "Type": "Pass", "Output": format!("{{% $length({expression}) %}}"), "End": true}}})
    };
    let padded = building("$pad('', 268435456)");
    let doubled = building("$reduce([1..28], function($acc, $v) { $acc & $acc }, 'x')");
    for (name, definition, input, error) in [
        ("deepening", deepening, json!({}), "States.Runtime"),
        ("scan", scan, scan_input, "States.Runtime"),
        ("jsonata", jsonata, json!({}), "States.QueryEvaluationError"),
        ("padded", padded, json!({}), "States.QueryEvaluationError"),
        ("doubled", doubled, json!({}), "States.QueryEvaluationError"),
    ] {
        let sm = create_machine(&client, name, &definition).await;
        let arn = start(&client, &sm, None, &input).await;
        let done = wait_done(&client, &arn, Duration::from_secs(60)).await;
        assert_eq!(*done.status(), ExecutionStatus::Failed, "{name}: {done:?}");
        assert_eq!(done.error(), Some(error), "{name}: {done:?}");
        assert!(server.is_running(), "{name} took the server down");
    }
    let rss = server.peak_rss_kib();
    assert!(
        rss.is_none_or(|kib| kib < MAX_RSS_KIB),
        "peak RSS {rss:?} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redrives_answer_as_aws_does() {
    let server = Server::memory(1.0);
    let client = server.client();
    let napping =
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let sm = create_machine(&client, "redrive-race", &napping).await;
    let arn = start(&client, &sm, None, &json!({})).await;
    for (round, token) in [(1, None), (2, Some("same-token"))] {
        stop(&client, &arn).await;
        let mut body = json!({"executionArn": arn});
        if let Some(t) = token {
            body["clientToken"] = json!(t);
        }
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (raw, body) = (common::Raw::new(&server.endpoint()), body.clone());
                tokio::spawn(async move { raw.call("RedriveExecution", &body).await })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.expect("a redrive call"));
        }
        let ok: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
        let refused = answers.iter().filter(|a| {
            a.status == 400 && a.error_code().as_deref() == Some("ExecutionNotRedrivable")
        });
        match token {
            None => {
                assert_eq!(ok.len(), 1, "round {round}: {answers:?}");
                assert_eq!(refused.count(), 7, "round {round}: {answers:?}");
            }
            Some(_) => {
                assert_eq!(ok.len(), 8, "round {round}: {answers:?}");
                let dates: std::collections::BTreeSet<String> = ok
                    .iter()
                    .map(|a| a.json()["redriveDate"].to_string())
                    .collect();
                assert_eq!(
                    dates.len(),
                    1,
                    "round {round}: one answer repeated: {dates:?}"
                );
            }
        }
        let d = client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .expect("describe");
        assert_eq!(d.redrive_count(), Some(round), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_waits_wait_instead_of_wrapping() {
    let server = Server::memory(1.0);
    let client = server.client();
    let waits = json!({"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "SecondsPath": "$.seconds", "End": true}}});
    let sm = create_machine(&client, "huge-wait", &waits).await;
    let mut arns = Vec::new();
    for seconds in [json!(1_u64 << 62), json!(i64::MAX), json!(99_999_999)] {
        arns.push(start(&client, &sm, None, &json!({ "seconds": seconds })).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for arn in &arns {
        let d = client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe");
        assert_eq!(*d.status(), ExecutionStatus::Running, "{arn} ended at once");
        stop(&client, arn).await;
    }
}

/// Everything but the API (`POST /`), the console (`GET /`, `GET /console/…`, whose missing
/// files get a plain 404) and `GET /metrics` gets AWS's error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_and_paths_get_aws_errors() {
    let server = Server::memory(1.0);
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::PUT, "/"),
        (reqwest::Method::DELETE, "/"),
        (reqwest::Method::POST, "/nowhere"),
        (reqwest::Method::GET, "/a/b?c=d"),
        (reqwest::Method::POST, "/metrics"),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", server.endpoint()))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status().as_u16(), 404, "{method} {path}");
        let has_id = response.headers().contains_key("x-amzn-requestid");
        let body: Value = response.json().await.expect("a JSON error body");
        assert!(has_id, "{method} {path}");
        assert_eq!(
            body["__type"], "com.amazon.coral.service#UnknownOperationException",
            "{method} {path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// Four executions evaluating JSONata until its time limit, while the API is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_while_states_compute() {
    let server = Server::memory(1.0);
    let client = server.client();
    let fib = "($fib := function($n) { $n < 2 ? $n : $fib($n - 1) + $fib($n - 2) }; $fib(60))";
    let runaway = json!({"QueryLanguage": "JSONata", "StartAt": "Spin", "States": {
        "Spin": {"Type": "Pass", "Output": format!("{{% {fib} %}}"), "End": true}}});
    let sm = create_machine(&client, "runaway", &runaway).await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let (client, sm) = (client.clone(), sm.clone());
            tokio::spawn(async move { start(&client, &sm, None, &json!({})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let began = std::time::Instant::now();
        client
            .list_state_machines()
            .send()
            .await
            .expect("ListStateMachines");
        latencies.push(began.elapsed());
    }
    latencies.sort();
    let p99 = latencies[98];
    let mut arns = Vec::new();
    for s in starts {
        arns.push(s.await.expect("a start"));
    }
    for arn in &arns {
        let done = wait_done(&client, arn, Duration::from_secs(60)).await;
        assert_eq!(
            done.error(),
            Some("States.QueryEvaluationError"),
            "{done:?}"
        );
    }
    // Before states were evaluated apart from the API, calls waited for an evaluation to end
    // (seconds). The target (p99 under 50 ms) is measured by stepwise-bench on a quiet
    // machine; here the other tests of this binary load the same two cores, so the bound
    // only tells waiting apart from answering.
    let p50 = latencies[49];
    assert!(
        p99 < Duration::from_millis(500),
        "ListStateMachines p50 {p50:?}, p99 {p99:?}"
    );
}

/// A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_names_are_refused_on_loopback() {
    let server = Server::memory(1.0);
    let http = reqwest::Client::new();
    for (host, status) in [
        ("evil.example", 403),
        (&*format!("localhost:{}", server.port()), 200),
    ] {
        let response = http
            .post(format!("{}/", server.endpoint()))
            .header("host", host)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
            .body("{}")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status().as_u16(), status, "{host}");
    }
}

/// An endpoint that answers every request with a redirect to `location`.
fn redirecting_endpoint(location: impl Fn(&str) -> String + Send + 'static) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let me = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let to = location(&me);
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    format!("{base}/start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tasks_cannot_reach_metadata_addresses() {
    let server = Server::memory(1.0);
    let client = server.client();
    let http_task = |endpoint: &str| {
        json!({"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:states:::http:invoke",
            "Parameters": {"ApiEndpoint": endpoint, "Method": "GET",
                "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/c/1"}},
            "End": true}}})
    };
    let to_metadata = redirecting_endpoint(|_| "http://169.254.169.254/latest/meta-data/".into());
    let in_a_loop = redirecting_endpoint(|me| format!("{me}/again"));
    for (name, endpoint, words) in [
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        (
            "metadata-v6",
            "http://[fd00:ec2::254]/".to_owned(),
            "link-local",
        ),
        ("redirected", to_metadata, "link-local"),
        ("redirect-loop", in_a_loop, "redirects"),
    ] {
        let sm = create_machine(&client, &format!("outbound-{name}"), &http_task(&endpoint)).await;
        let arn = start(&client, &sm, None, &json!({})).await;
        let done = wait_done(&client, &arn, Duration::from_secs(30)).await;
        assert_eq!(done.error(), Some("States.Http.Socket"), "{name}: {done:?}");
        let cause = done.cause().unwrap_or_default();
        assert!(cause.contains(words), "{name}: {cause}");
    }
}

/// A stored execution whose checkpoint cannot be read back is failed at start, visibly,
/// instead of staying RUNNING with nothing able to stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_checkpoint_fails_its_execution() {
    let mut server = Server::sqlite(1.0);
    let client = server.client();
    let napping =
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let sm = create_machine(&client, "unreadable", &napping).await;
    let arn = start(&client, &sm, None, &json!({})).await;
    server.kill9();
    let db = server.data_dir().join("stepwise.db");
    let corrupted = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE executions SET runtime = '{\\\"not\\\": \\\"a checkpoint\\\"}' WHERE arn = ?\", (sys.argv[2],)); c.commit()"])
        .arg(&db)
        .arg(&arn)
        .status()
        .expect("python3 rewrites the checkpoint");
    assert!(corrupted.success());
    server.restart();
    let client = server.client();
    let done = wait_done(&client, &arn, Duration::from_secs(10)).await;
    assert_eq!(*done.status(), ExecutionStatus::Failed, "{done:?}");
    assert_eq!(done.error(), Some("States.Runtime"));
    let events = common::history(&client, &arn).await;
    common::assert_history_well_formed("unreadable", &events);
    let last = common::event_types(&events).pop();
    assert_eq!(last.as_deref(), Some("ExecutionFailed"));
}
