//! The real-world definitions of `../shared/realworld-cases` (AWS's published samples) that
//! call only services moto serves (DynamoDB, SQS, SNS, EventBridge, S3, Athena, ECS, Batch,
//! Glue) or Lambda, each run to its end against moto: the real `stepwise serve` sends its
//! service calls to a moto server (`--aws-endpoint`) and its Lambda invocations to a stub in
//! this process (`--lambda-endpoint`) that answers a function with its canned answer from
//! `tests/realworld/answers.json` (`lambdas`, by function name), or else with its payload.
//!
//! Before the runs the tables, queues, topics, buckets and event buses the definitions name
//! are created in moto (by stepwise's own `aws-sdk:*` calls). Each case starts with its input
//! from `tests/realworld/inputs.json` (`{}` otherwise), and a task waiting for a task token is
//! answered (SendTaskSuccess) with the case's `callbacks` entry of `answers.json` (`{}`
//! otherwise), as the worker or the human of the sample would.
//!
//! A case passes when its execution ends, with any status, and no error stepwise itself raised
//! appears in its history ([`STEPWISE_ERRORS`]: an unsupported resource is `States.Runtime`).
//! The cases that do not, each with its reason, are listed in `tests/realworld/exceptions.txt`
//! (`file<TAB>reason`): a failure not listed fails the test, a listed case that passes is
//! reported so the list shrinks. Skipped, with a message, when the folder is absent.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use common::{Moto, Options, Raw, Server, StoreKind};
use serde_json::{json, Map, Value};

/// The services a case may call: the ones moto serves, and Lambda (the stub).
const SERVICES: &[&str] = &[
    "lambda",
    "dynamodb",
    "sqs",
    "sns",
    "events",
    "eventbridge",
    "s3",
    "athena",
    "ecs",
    "batch",
    "glue",
];
/// Errors stepwise raises itself, which a working run of a deployed sample never shows.
const STEPWISE_ERRORS: &[&str] = &[
    "States.Runtime",
    "States.QueryEvaluationError",
    "States.IntrinsicFailure",
];
/// How long all the cases, run at once, have to end.
const ALL_DONE_WITHIN: Duration = Duration::from_secs(60);
/// Wait states, retry intervals and timeouts run this much faster (a day in under 9 s). An
/// execution's `TimeoutSeconds` shrinks too: a case may end `TIMED_OUT` before it fails.
const WAIT_SCALE: f64 = 0.0001;

/// A file of `tests/realworld/`.
fn checked_in(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/realworld")
        .join(name)
}

/// `exceptions.txt`: case file → reason.
fn exceptions() -> BTreeMap<String, String> {
    let path = checked_in("exceptions.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, reason) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("{}: no reason on line {l:?}", path.display()));
            assert!(!reason.trim().is_empty(), "an empty reason for {file}");
            (file.to_owned(), reason.to_owned())
        })
        .collect()
}

/// `inputs.json`: case file → execution input.
fn inputs() -> Map<String, Value> {
    let path = checked_in("inputs.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        other => panic!("{}: not a JSON object: {other:?}", path.display()),
    }
}

/// `answers.json`: what the Lambda functions (`lambdas`: function name → its answer) and the
/// callback workers (`callbacks`: case file → the task's output) of the samples answer.
struct Answers {
    lambdas: Map<String, Value>,
    callbacks: Map<String, Value>,
}

fn answers() -> Answers {
    let path = checked_in("answers.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut all: Map<String, Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a JSON object: {e}", path.display()));
    let mut part = |name: &str| match all.remove(name) {
        Some(Value::Object(m)) => m,
        other => panic!("{}: `{name}` is not an object: {other:?}", path.display()),
    };
    Answers {
        lambdas: part("lambdas"),
        callbacks: part("callbacks"),
    }
}

/// The function an invocation's path names (`/2015-03-31/functions/NAME/invocations`, NAME a
/// name or an ARN, maybe with a qualifier), as a bare name.
fn function_name(path: &str) -> String {
    let named = path
        .trim_start_matches("/2015-03-31/functions/")
        .trim_end_matches("/invocations");
    let named = percent_encoding::percent_decode_str(named).decode_utf8_lossy();
    let bare = named.split_once("function:").map_or(&*named, |(_, f)| f);
    bare.split(':').next().unwrap_or(bare).to_owned()
}

/// Every `Resource` of a definition, at any depth (Task states, ItemReader, ResultWriter).
fn resources<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("Resource", Value::String(r)) => out.push(r),
                    _ => resources(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| resources(x, out)),
        _ => {}
    }
}

/// The service a resource calls: `lambda` for a function ARN, `SERVICE` for
/// `arn:aws:states:REGION:ACCOUNT:[aws-sdk:]SERVICE:ACTION`, the resource itself otherwise.
fn service(resource: &str) -> &str {
    if resource.starts_with("arn:aws:lambda:") {
        return "lambda";
    }
    let parts: Vec<&str> = resource.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", _, _, "aws-sdk", rest @ ..] => {
            rest.first().copied().unwrap_or(resource)
        }
        ["arn", _, "states", _, _, svc, ..] => svc,
        _ => resource,
    }
}

/// A literal value (not a path or an expression) of a field.
fn literal(v: &Value) -> Option<&str> {
    v.as_str()
        .filter(|s| !s.is_empty() && !s.starts_with('$') && !s.starts_with("{%"))
}

/// The resources the definitions name, to create in moto.
#[derive(Default)]
struct Resources {
    /// Table → its key attributes (name, type), from a `Key` (or an `Item`) beside it.
    tables: BTreeMap<String, Vec<(String, String)>>,
    queues: BTreeSet<String>,
    topics: BTreeSet<String>,
    buckets: BTreeSet<String>,
    buses: BTreeSet<String>,
}

impl Resources {
    fn collect(&mut self, v: &Value) {
        match v {
            Value::Object(o) => {
                if let Some(table) = o.get("TableName").and_then(literal) {
                    let key = o.get("Key").or_else(|| o.get("Item")).map(key_schema);
                    let entry = self.tables.entry(table.to_owned()).or_default();
                    if entry.is_empty() {
                        *entry = key.unwrap_or_default();
                    }
                }
                let last = |s: &str| s.rsplit(['/', ':']).next().map(str::to_owned);
                if let Some(q) = o.get("QueueUrl").and_then(literal).and_then(last) {
                    self.queues.insert(q);
                }
                if let Some(t) = o.get("TopicArn").and_then(literal).and_then(last) {
                    self.topics.insert(t);
                }
                if let Some(b) = o.get("Bucket").and_then(literal) {
                    self.buckets.insert(b.to_owned());
                }
                if let Some(bus) = o.get("EventBusName").and_then(literal) {
                    if bus != "default" && !bus.starts_with("arn:") {
                        self.buses.insert(bus.to_owned());
                    }
                }
                o.values().for_each(|x| self.collect(x));
            }
            Value::Array(a) => a.iter().for_each(|x| self.collect(x)),
            _ => {}
        }
    }

    /// One state machine creating them all; a call that fails (already there) is skipped.
    fn provisioning(&self) -> Value {
        let mut calls: Vec<(String, Value)> = Vec::new();
        for (table, key) in &self.tables {
            let key = if key.is_empty() {
                vec![("id".to_owned(), "S".to_owned())]
            } else {
                key.clone()
            };
            let schema: Vec<Value> = key
                .iter()
                .enumerate()
                .map(|(i, (n, _))| json!({"AttributeName": n, "KeyType": if i == 0 { "HASH" } else { "RANGE" }}))
                .collect();
            let attributes: Vec<Value> = key
                .iter()
                .map(|(n, t)| json!({"AttributeName": n, "AttributeType": t}))
                .collect();
            calls.push((
                "dynamodb:createTable".into(),
                json!({"TableName": table, "KeySchema": schema, "AttributeDefinitions": attributes,
                       "BillingMode": "PAY_PER_REQUEST"}),
            ));
        }
        for q in &self.queues {
            let mut p = json!({"QueueName": q});
            if q.ends_with(".fifo") {
                p["Attributes"] = json!({"FifoQueue": "true"});
            }
            calls.push(("sqs:createQueue".into(), p));
        }
        for t in &self.topics {
            let mut p = json!({"Name": t});
            if t.ends_with(".fifo") {
                p["Attributes"] = json!({"FifoTopic": "true"});
            }
            calls.push(("sns:createTopic".into(), p));
        }
        for b in &self.buckets {
            calls.push(("s3:createBucket".into(), json!({"Bucket": b})));
        }
        for bus in &self.buses {
            calls.push(("eventbridge:createEventBus".into(), json!({"Name": bus})));
        }
        let mut states = Map::new();
        let n = calls.len();
        for (i, (action, parameters)) in calls.into_iter().enumerate() {
            let next = if i + 1 < n {
                json!({"Next": format!("C{}", i + 1)})
            } else {
                json!({"End": true})
            };
            let mut state = json!({"Type": "Task",
                "Resource": format!("arn:aws:states:::aws-sdk:{action}"),
                "Parameters": parameters, "ResultPath": null});
            if let (Some(s), Value::Object(next)) = (state.as_object_mut(), next.clone()) {
                s.extend(next.clone());
                if let Some(to) = next.get("Next") {
                    s.insert(
                        "Catch".into(),
                        json!([{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": to}]),
                    );
                }
            }
            states.insert(format!("C{i}"), state);
        }
        if states.is_empty() {
            states.insert("C0".into(), json!({"Type": "Succeed"}));
        }
        json!({"StartAt": "C0", "States": states})
    }
}

/// The key attributes of a DynamoDB `Key` or `Item` template: at most two, typed by their
/// attribute value (`{"S": …}`, `{"N.$": …}`).
fn key_schema(v: &Value) -> Vec<(String, String)> {
    let Some(o) = v.as_object() else {
        return Vec::new();
    };
    o.iter()
        .filter_map(|(name, value)| {
            let kind = value.as_object()?.keys().next()?.trim_end_matches(".$");
            let kind = if ["S", "N", "B"].contains(&kind) {
                kind
            } else {
                "S"
            };
            Some((name.trim_end_matches(".$").to_owned(), kind.to_owned()))
        })
        .take(2)
        .collect()
}

/// The Lambda stub: every function returns its payload (`{}` for none); an `Event`
/// invocation is accepted (202).
async fn start_lambda_stub(lambdas: Arc<Map<String, Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the Lambda stub");
    let addr = listener.local_addr().expect("Lambda stub address");
    let app = axum::Router::new().fallback(move |req: Request<Body>| async move {
        let event = req
            .headers()
            .get("x-amz-invocation-type")
            .is_some_and(|v| v == "Event");
        let canned = lambdas.get(&function_name(req.uri().path())).cloned();
        let body = to_bytes(req.into_body(), 8 << 20).await.unwrap_or_default();
        let (status, body) = match (event, canned, body.is_empty()) {
            (true, _, _) => (StatusCode::ACCEPTED, Body::empty()),
            (false, Some(answer), _) => (StatusCode::OK, Body::from(answer.to_string())),
            (false, None, true) => (StatusCode::OK, Body::from("{}")),
            (false, None, false) => (StatusCode::OK, Body::from(body)),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("x-amz-executed-version", "$LATEST")
            .header("x-amzn-requestid", "stub-request-id")
            .body(body)
            .unwrap_or_else(|e| panic!("building a stub response: {e}"))
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A case's history, all pages, as JSON events.
async fn history(raw: &Raw, exec: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"executionArn": exec, "maxResults": 1000});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = raw.call("GetExecutionHistory", &body).await.json();
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return events,
        }
    }
}

/// Every string in a value, at any depth.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            out.push(s.clone());
            // A JSON document in a string (a message body) may hold the token too.
            if let Ok(inner @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(s) {
                strings(&inner, out);
            }
        }
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Answers the tasks of `events` that wait for a task token: every string of their
/// parameters shaped like a token, not tried before, is sent SendTaskSuccess `{}`.
async fn answer_tokens(raw: &Raw, events: &[Value], tried: &mut HashSet<String>, output: &str) {
    for e in events {
        let Some(d) = e.get("taskScheduledEventDetails") else {
            continue;
        };
        if !d["resource"]
            .as_str()
            .is_some_and(|r| r.ends_with(".waitForTaskToken"))
        {
            continue;
        }
        let params: Value = d["parameters"]
            .as_str()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        let mut found = Vec::new();
        strings(&params, &mut found);
        let tokens = found.into_iter().filter(|s| {
            s.len() >= 40
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        for token in tokens {
            if tried.insert(token.clone()) {
                let body = json!({"taskToken": token, "output": output});
                raw.call("SendTaskSuccess", &body).await;
            }
        }
    }
}

/// How a case ended.
enum Ending {
    /// Ended with this status; the stepwise errors its history shows (error: cause).
    Ended(String, Vec<String>),
    /// Still running at the deadline.
    Running,
    /// CreateStateMachine or StartExecution refused it.
    Refused(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Ended(status, errors) if errors.is_empty() => write!(f, "{status}"),
            Ending::Ended(status, errors) => write!(f, "{status} with {}", errors.join("; ")),
            Ending::Running => write!(f, "still RUNNING after {ALL_DONE_WITHIN:?}"),
            Ending::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl Ending {
    fn passed(&self) -> bool {
        matches!(self, Ending::Ended(_, errors) if errors.is_empty())
    }
}

/// The errors stepwise raised in a history.
fn stepwise_errors(events: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        let Some(o) = e.as_object() else { continue };
        for d in o.values().filter_map(Value::as_object) {
            if let Some(error) = d.get("error").and_then(Value::as_str) {
                if STEPWISE_ERRORS.contains(&error) {
                    let cause = d.get("cause").and_then(Value::as_str).unwrap_or_default();
                    out.push(format!("{error}: {cause}"));
                }
            }
        }
    }
    out
}

/// Creates, starts and follows one case until it ends or `until`.
async fn run_case(
    raw: Raw,
    name: String,
    definition: String,
    (input, callback): (Value, Value),
    until: Instant,
) -> Ending {
    let created = raw
        .call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition,
                    "roleArn": "arn:aws:iam::123456789012:role/realworld"}),
        )
        .await;
    let Some(sm) = created.json()["stateMachineArn"]
        .as_str()
        .map(str::to_owned)
    else {
        return Ending::Refused(format!("CreateStateMachine: {:?}", created.message()));
    };
    let started = raw
        .call(
            "StartExecution",
            &json!({"stateMachineArn": sm, "input": input.to_string()}),
        )
        .await;
    let Some(exec) = started.json()["executionArn"].as_str().map(str::to_owned) else {
        return Ending::Refused(format!("StartExecution: {:?}", started.message()));
    };
    let callbacks = definition.contains(".waitForTaskToken");
    let mut tried = HashSet::new();
    loop {
        let d = raw
            .call("DescribeExecution", &json!({"executionArn": exec}))
            .await
            .json();
        let status = d["status"].as_str().unwrap_or("RUNNING").to_owned();
        if status != "RUNNING" {
            let events = history(&raw, &exec).await;
            let mut errors = stepwise_errors(&events);
            // The execution's own error too, should the history not show it yet.
            if let Some(error) = d["error"].as_str().filter(|e| STEPWISE_ERRORS.contains(e)) {
                let cause = d["cause"].as_str().unwrap_or_default();
                errors.push(format!("{error}: {cause}"));
            }
            errors.dedup();
            return Ending::Ended(status, errors);
        }
        if Instant::now() > until {
            return Ending::Running;
        }
        if callbacks {
            let events = history(&raw, &exec).await;
            answer_tokens(&raw, &events, &mut tried, &callback.to_string()).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The real-world definitions that use only moto's services and Lambda, run against moto.
#[tokio::test]
async fn realworld_cases_against_moto() {
    let Some(dir) = crate::shared_dir::shared_path("realworld-cases") else {
        return;
    };
    let index = std::fs::read_to_string(dir.join("index.json")).expect("reading index.json");
    let index: Value = serde_json::from_str(&index).expect("index.json is JSON");
    let mut cases: Vec<(String, Value)> = Vec::new();
    for case in index["cases"]
        .as_array()
        .expect("index.json lists its cases")
    {
        let Some(file) = case["file"].as_str() else {
            continue;
        };
        if !case["duplicate_of"].is_null()
            || crate::validate::REALWORLD_INVALID_ON_AWS.contains(&file)
        {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(file)).expect("reading a definition");
        let definition: Value = serde_json::from_str(&text).expect("a definition is JSON");
        let mut used = Vec::new();
        resources(&definition, &mut used);
        if used.iter().all(|r| SERVICES.contains(&service(r))) {
            cases.push((file.to_owned(), definition));
        }
    }
    assert!(
        !cases.is_empty(),
        "no real-world case uses only moto's services"
    );

    let moto = Moto::start().await;
    let answers = answers();
    let lambda = start_lambda_stub(Arc::new(answers.lambdas)).await;
    let options = Options {
        store: StoreKind::Memory,
        wait_time_scale: WAIT_SCALE,
        ..Options::default()
    };
    let server = Server::start_with_args(
        options,
        &[
            "--aws-endpoint",
            moto.endpoint(),
            "--lambda-endpoint",
            &lambda,
        ],
    );
    let raw = server.raw();

    let mut wanted = Resources::default();
    cases.iter().for_each(|(_, d)| wanted.collect(d));
    let provisioned = run_case(
        raw.clone(),
        "provision".into(),
        wanted.provisioning().to_string(),
        (json!({}), json!({})),
        Instant::now() + Duration::from_secs(60),
    )
    .await;
    assert!(
        provisioned.passed(),
        "provisioning: {provisioned}\n{}",
        server.logs()
    );

    let inputs = Arc::new(inputs());
    let until = Instant::now() + ALL_DONE_WITHIN;
    let mut runs = tokio::task::JoinSet::new();
    for (i, (file, definition)) in cases.iter().enumerate() {
        let input = inputs.get(file).cloned().unwrap_or_else(|| json!({}));
        let callback = answers.callbacks.get(file).cloned();
        let callback = callback.unwrap_or_else(|| json!({}));
        let (raw, file, definition) = (raw.clone(), file.clone(), definition.to_string());
        runs.spawn(async move {
            let name = format!("realworld-{i}");
            let ending = run_case(raw, name, definition, (input, callback), until).await;
            (file, ending)
        });
    }
    let mut endings = BTreeMap::new();
    while let Some(done) = runs.join_next().await {
        let (file, ending) = done.expect("a case's task panicked");
        endings.insert(file, ending);
    }

    let listed = exceptions();
    let mut unlisted = Vec::new();
    let mut now_pass = Vec::new();
    for (file, ending) in &endings {
        match (ending.passed(), listed.contains_key(file)) {
            (false, false) => unlisted.push(format!("{file}\t{ending}")),
            (true, true) => now_pass.push(file.as_str()),
            _ => {}
        }
    }
    let unknown: Vec<&String> = listed
        .keys()
        .chain(answers.callbacks.keys())
        .filter(|f| !endings.contains_key(*f))
        .collect();
    let passed = endings.values().filter(|e| e.passed()).count();
    println!(
        "{passed} of {} real-world cases ended without a stepwise error; {} listed as exceptions",
        endings.len(),
        listed.len()
    );
    if !now_pass.is_empty() {
        println!(
            "listed in tests/realworld/exceptions.txt but passing now (remove them): {now_pass:#?}"
        );
    }
    assert!(
        unknown.is_empty(),
        "exceptions.txt or answers.json's callbacks name cases that are not run: {unknown:#?}"
    );
    assert!(
        unlisted.is_empty(),
        "cases that did not end cleanly and are not in tests/realworld/exceptions.txt:\n{}",
        unlisted.join("\n")
    );
}
