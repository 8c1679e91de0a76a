//! The AWS JSON 1.0 wire protocol, spoken raw over HTTP with reqwest.

use crate::common;

use std::collections::BTreeSet;

use common::{Options, RawResponse, Server, StoreKind, ROLE_ARN};
use serde_json::json;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// What a case expects of the error message.
enum Message {
    Any,
    Exactly(&'static str),
    Contains(&'static str),
}

/// One request and what must come back.
struct Case {
    name: &'static str,
    /// `X-Amz-Target`; `None` sends no header.
    target: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// The error code after `#` in `__type`; `None` for a success.
    code: Option<&'static str>,
    message: Message,
}

fn case(
    name: &'static str,
    target: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: Option<&'static str>,
    message: Message,
) -> Case {
    Case {
        name,
        target,
        body: body.into(),
        status,
        code,
        message,
    }
}

fn cases() -> Vec<Case> {
    let sfn = |op: &'static str| Some(op);
    let big = format!(r#"{{"definition": "{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let big_input = json!({
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        "input": "x".repeat(262_145)
    })
    .to_string();
    let long_name = json!({
        "name": "n".repeat(81),
        "definition": "{}",
        "roleArn": ROLE_ARN
    })
    .to_string();
    vec![
        case(
            "list state machines",
            sfn("AWSStepFunctions.ListStateMachines"),
            "{}",
            200,
            None,
            Message::Any,
        ),
        case(
            "empty body counts as {}",
            sfn("AWSStepFunctions.ListStateMachines"),
            "",
            200,
            None,
            Message::Any,
        ),
        case(
            "malformed JSON",
            sfn("AWSStepFunctions.ListStateMachines"),
            r#"{"maxResults": "#,
            400,
            Some("SerializationException"),
            Message::Any,
        ),
        case(
            "body is not an object",
            sfn("AWSStepFunctions.ListStateMachines"),
            "[1, 2]",
            400,
            Some("SerializationException"),
            Message::Any,
        ),
        case(
            "member of the wrong type",
            sfn("AWSStepFunctions.ListStateMachines"),
            r#"{"maxResults": "ten"}"#,
            400,
            Some("SerializationException"),
            Message::Any,
        ),
        case(
            "unknown operation",
            sfn("AWSStepFunctions.Frobnicate"),
            "{}",
            400,
            Some("UnknownOperationException"),
            Message::Any,
        ),
        case(
            "wrong service prefix",
            sfn("AmazonSQS.ListQueues"),
            "{}",
            400,
            Some("UnknownOperationException"),
            Message::Any,
        ),
        case("no target header", None, "{}", 400, Some("UnknownOperationException"), Message::Any),
        case(
            "missing required member",
            sfn("AWSStepFunctions.DescribeStateMachine"),
            "{}",
            400,
            Some("ValidationException"),
            Message::Exactly(
                "1 validation error detected: Value null at 'stateMachineArn' failed to satisfy \
                 constraint: Member must not be null",
            ),
        ),
        case(
            "null counts as missing",
            sfn("AWSStepFunctions.DescribeExecution"),
            r#"{"executionArn": null}"#,
            400,
            Some("ValidationException"),
            Message::Exactly(
                "1 validation error detected: Value null at 'executionArn' failed to satisfy \
                 constraint: Member must not be null",
            ),
        ),
        case(
            "two missing members",
            sfn("AWSStepFunctions.CreateStateMachine"),
            r#"{"name": "x"}"#,
            400,
            Some("ValidationException"),
            Message::Exactly(
                "2 validation errors detected: Value null at 'definition' failed to satisfy \
                 constraint: Member must not be null; Value null at 'roleArn' failed to satisfy \
                 constraint: Member must not be null",
            ),
        ),
        case(
            "maxResults out of range",
            sfn("AWSStepFunctions.ListStateMachines"),
            r#"{"maxResults": 1001}"#,
            400,
            Some("ValidationException"),
            Message::Exactly(
                "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy \
                 constraint: Member must have value less than or equal to 1000",
            ),
        ),
        case(
            "enum member out of its values",
            sfn("AWSStepFunctions.ListExecutions"),
            r#"{"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x", "statusFilter": "DONE"}"#,
            400,
            Some("ValidationException"),
            Message::Contains("at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set"),
        ),
        case(
            "execution input over 256 KiB",
            sfn("AWSStepFunctions.StartExecution"),
            big_input,
            400,
            Some("ValidationException"),
            Message::Contains(
                "at 'input' failed to satisfy constraint: Member must have length less than or equal to 262144",
            ),
        ),
        case(
            "name over 80 characters",
            sfn("AWSStepFunctions.CreateStateMachine"),
            long_name,
            400,
            Some("ValidationException"),
            Message::Contains(
                "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80",
            ),
        ),
        case(
            "nested member of the wrong type",
            sfn("AWSStepFunctions.TagResource"),
            r#"{"resourceArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x", "tags": [{"key": 1}]}"#,
            400,
            Some("SerializationException"),
            Message::Any,
        ),
        case(
            "body over 1 MiB",
            sfn("AWSStepFunctions.ValidateStateMachineDefinition"),
            big,
            413,
            Some("RequestEntityTooLargeException"),
            Message::Any,
        ),
        case(
            "missing state machine",
            sfn("AWSStepFunctions.DescribeStateMachine"),
            r#"{"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nope"}"#,
            400,
            Some("StateMachineDoesNotExist"),
            Message::Contains("arn:aws:states:us-east-1:123456789012:stateMachine:nope"),
        ),
    ]
}

/// Checks the headers every response must carry; returns problems.
fn header_problems(r: &RawResponse) -> Vec<String> {
    let mut problems = Vec::new();
    match r.header("x-amzn-requestid") {
        Some(id) if !id.is_empty() => {}
        other => problems.push(format!("x-amzn-RequestId is {other:?}")),
    }
    if r.header("content-type").as_deref() != Some(CONTENT_TYPE) {
        problems.push(format!("content-type is {:?}", r.header("content-type")));
    }
    problems
}

#[tokio::test]
async fn protocol_table() {
    let server = Server::memory(0.1);
    let raw = server.raw();
    let mut failures = Vec::new();
    let mut request_ids = BTreeSet::new();
    let mut responses = 0;
    for c in cases() {
        let r = raw.send(c.target, c.body.clone(), &[]).await;
        responses += 1;
        let mut problems = header_problems(&r);
        if let Some(id) = r.header("x-amzn-requestid") {
            request_ids.insert(id);
        }
        if r.status != c.status {
            problems.push(format!("status {}, expected {}", r.status, c.status));
        }
        let body: Option<serde_json::Value> = serde_json::from_str(&r.text).ok();
        match (&body, c.code) {
            (None, _) => problems.push("body is not JSON".into()),
            (Some(b), None) => {
                if b.get("__type").is_some() {
                    problems.push("success carries __type".into());
                }
            }
            (Some(b), Some(code)) => {
                let t = b.get("__type").and_then(|t| t.as_str()).unwrap_or_default();
                if t.rsplit('#').next() != Some(code) || !t.contains('#') {
                    problems.push(format!("__type {t:?}, expected namespace#{code}"));
                }
                let message = b.get("message").and_then(|m| m.as_str());
                match (&c.message, message) {
                    (_, None) => problems.push("no message".into()),
                    (Message::Any, Some(_)) => {}
                    (Message::Exactly(want), Some(m)) => {
                        if m != *want {
                            problems.push(format!("message {m:?}, expected {want:?}"));
                        }
                    }
                    (Message::Contains(want), Some(m)) => {
                        if !m.contains(want) {
                            problems.push(format!("message {m:?} does not contain {want:?}"));
                        }
                    }
                }
            }
        }
        if r.text.len() > 4096 {
            problems.push(format!(
                "error body of {} bytes echoes the request",
                r.text.len()
            ));
        }
        if !problems.is_empty() {
            let shown: String = r.text.chars().take(400).collect();
            failures.push(format!(
                "{} ({:?}): {}\n      response: {} {shown}",
                c.name,
                c.target,
                problems.join("; "),
                r.status
            ));
        }
    }
    // The server survived everything above (including the oversized body).
    let alive = raw.call("ListStateMachines", &json!({})).await;
    if alive.status != 200 {
        failures.push(format!(
            "server unhealthy after the table: {} {}",
            alive.status, alive.text
        ));
    }
    assert_eq!(request_ids.len(), responses, "request ids are not unique");
    assert!(
        failures.is_empty(),
        "protocol failures:\n  {}",
        failures.join("\n  ")
    );
}

/// A body far larger than the limit, sent to several operations in a row: error responses,
/// never a dropped connection, and the server stays up.
#[tokio::test]
async fn oversized_bodies_do_not_hurt_the_server() {
    let server = Server::memory(0.1);
    // The server drains an oversized body before answering 413 (a client still sending must
    // see the answer, not a reset); unpooled all the same, in case it closes the connection.
    let raw = common::Raw::unpooled(&server.endpoint());
    let huge = format!(r#"{{"name": "{}"}}"#, "n".repeat(3 * 1024 * 1024));
    for op in ["CreateStateMachine", "StartExecution", "Frobnicate"] {
        let r = raw
            .send(Some(&format!("AWSStepFunctions.{op}")), huge.clone(), &[])
            .await;
        assert!(
            (400..500).contains(&r.status),
            "{op} with a 3 MiB body answered {} {}",
            r.status,
            r.text
        );
        assert!(
            header_problems(&r).is_empty(),
            "{op}: {:?}",
            header_problems(&r)
        );
        assert!(r.error_code().is_some(), "{op}: no __type in {}", r.text);
    }
    // Exactly at the limit is still read (and then judged on its content).
    let prefix = r#"{"definition": ""#;
    let suffix = r#""}"#;
    let fill = 1024 * 1024 - prefix.len() - suffix.len();
    let at_limit = format!("{prefix}{}{suffix}", "y".repeat(fill));
    assert_eq!(at_limit.len(), 1024 * 1024);
    let r = raw
        .send(
            Some("AWSStepFunctions.ValidateStateMachineDefinition"),
            at_limit,
            &[],
        )
        .await;
    assert_ne!(
        r.status, 413,
        "a body of exactly 1 MiB was refused as too large: {}",
        r.text
    );
    let alive = raw.call("ListStateMachines", &json!({})).await;
    assert_eq!(alive.status, 200, "{}", alive.text);
}

fn sigv4(region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20240101/{region}/states/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef"
    )
}

#[tokio::test]
async fn region_and_account_in_arns() {
    let server = Server::start(Options {
        store: StoreKind::Memory,
        wait_time_scale: 0.1,
        account_id: "111122223333".into(),
        ..Options::default()
    });
    let raw = server.raw();
    let definition = json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}).to_string();
    // (Authorization header, machine name, region expected in the ARN)
    let eu = sigv4("eu-west-1");
    let ap = sigv4("ap-southeast-2");
    let table: [(Option<&str>, &str, &str); 4] = [
        (Some(eu.as_str()), "in-eu", "eu-west-1"),
        (Some(ap.as_str()), "in-ap", "ap-southeast-2"),
        (None, "no-auth", "us-east-1"),
        (Some("Bearer something-else"), "other-auth", "us-east-1"),
    ];
    let mut failures = Vec::new();
    for (auth, name, region) in table {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let body = json!({"name": name, "definition": definition, "roleArn": ROLE_ARN});
        let r = raw
            .send(
                Some("AWSStepFunctions.CreateStateMachine"),
                body.to_string(),
                &headers,
            )
            .await;
        let want = format!("arn:aws:states:{region}:111122223333:stateMachine:{name}");
        let got = serde_json::from_str::<serde_json::Value>(&r.text)
            .ok()
            .and_then(|b| {
                b.get("stateMachineArn")
                    .and_then(|a| a.as_str())
                    .map(str::to_owned)
            });
        if r.status != 200 || got.as_deref() != Some(want.as_str()) {
            failures.push(format!(
                "{name}: expected {want}, got {} {}",
                r.status, r.text
            ));
            continue;
        }
        // Executions inherit the machine's region, whatever the caller's header says.
        let start = json!({"stateMachineArn": want, "name": "e1"});
        let r = raw
            .send(
                Some("AWSStepFunctions.StartExecution"),
                start.to_string(),
                &headers,
            )
            .await;
        let want_exec = format!("arn:aws:states:{region}:111122223333:execution:{name}:e1");
        if !r.text.contains(&want_exec) {
            failures.push(format!(
                "{name}: StartExecution: expected {want_exec}, got {} {}",
                r.status, r.text
            ));
        }
    }
    // Listing is per region.
    let r = raw
        .send(
            Some("AWSStepFunctions.ListStateMachines"),
            "{}",
            &[("authorization", eu.as_str())],
        )
        .await;
    let listed: Vec<String> = r.json()["stateMachines"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if listed != ["in-eu"] {
        failures.push(format!(
            "ListStateMachines in eu-west-1 returned {listed:?}: {}",
            r.text
        ));
    }
    assert!(
        failures.is_empty(),
        "region/account failures:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn success_shapes_on_the_wire() {
    let server = Server::memory(0.1);
    let raw = server.raw();
    let definition =
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}});
    let created = raw
        .ok(
            "CreateStateMachine",
            &json!({"name": "wire", "definition": definition.to_string(), "roleArn": ROLE_ARN}),
        )
        .await;
    let arn = created["stateMachineArn"]
        .as_str()
        .expect("stateMachineArn")
        .to_owned();
    // Timestamps are epoch seconds (JSON numbers), as AWS JSON 1.0 sends them.
    assert!(
        created["creationDate"].is_number(),
        "creationDate: {created}"
    );

    let described = raw
        .ok("DescribeStateMachine", &json!({"stateMachineArn": arn}))
        .await;
    for key in [
        "stateMachineArn",
        "name",
        "status",
        "definition",
        "roleArn",
        "type",
        "creationDate",
    ] {
        assert!(
            described.get(key).is_some(),
            "DescribeStateMachine lacks {key}: {described}"
        );
    }
    assert_eq!(
        described["definition"].as_str(),
        Some(definition.to_string().as_str())
    );

    let started = raw
        .ok(
            "StartExecution",
            &json!({"stateMachineArn": arn, "input": "{\"k\": 1}"}),
        )
        .await;
    assert!(started["startDate"].is_number(), "startDate: {started}");
    let exec = started["executionArn"]
        .as_str()
        .expect("executionArn")
        .to_owned();
    // The input string is kept byte for byte.
    let d = raw
        .ok("DescribeExecution", &json!({"executionArn": exec}))
        .await;
    assert_eq!(d["input"].as_str(), Some("{\"k\": 1}"), "{d}");

    let validated = raw
        .ok(
            "ValidateStateMachineDefinition",
            &json!({"definition": definition.to_string()}),
        )
        .await;
    assert_eq!(validated["result"], "OK", "{validated}");
    let invalid = raw
        .ok(
            "ValidateStateMachineDefinition",
            &json!({"definition": json!({"StartAt": "Missing", "States": {}}).to_string()}),
        )
        .await;
    assert_eq!(invalid["result"], "FAIL", "{invalid}");
    let diagnostics = invalid["diagnostics"]
        .as_array()
        .expect("diagnostics array");
    assert!(!diagnostics.is_empty(), "{invalid}");
    for d in diagnostics {
        assert_eq!(d["severity"], "ERROR", "{d}");
        assert!(d["code"].is_string() && d["message"].is_string(), "{d}");
    }
}

/// Every operation of the Step Functions model with a body that passes model validation:
/// each answers with a proper AWS JSON response (200 or a 4xx with a `namespace#Code`),
/// never 5xx or `UnknownOperationException`; the ones not implemented yet answer 400
/// `UnsupportedOperation` with a message naming the operation.
#[tokio::test]
async fn every_model_operation_answers() {
    let server = Server::memory(0.1);
    let raw = server.raw();
    let account = server.account_id().to_owned();
    let sm = format!("arn:aws:states:us-east-1:{account}:stateMachine:absent");
    let version = format!("{sm}:1");
    let alias = format!("{sm}:live");
    let exec = format!("arn:aws:states:us-east-1:{account}:execution:absent:e1");
    let map_run = format!("arn:aws:states:us-east-1:{account}:mapRun:absent/m:0123");
    let activity = format!("arn:aws:states:us-east-1:{account}:activity:absent");
    let definition =
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}).to_string();
    let ops: Vec<(&str, serde_json::Value)> = vec![
        ("CreateActivity", json!({"name": "sweep-activity"})),
        (
            "CreateStateMachine",
            json!({"name": "sweep", "definition": definition, "roleArn": ROLE_ARN}),
        ),
        (
            "CreateStateMachineAlias",
            json!({"name": "live", "routingConfiguration": [{"stateMachineVersionArn": version, "weight": 100}]}),
        ),
        ("DeleteActivity", json!({"activityArn": activity})),
        ("DeleteStateMachine", json!({"stateMachineArn": sm})),
        (
            "DeleteStateMachineAlias",
            json!({"stateMachineAliasArn": alias}),
        ),
        (
            "DeleteStateMachineVersion",
            json!({"stateMachineVersionArn": version}),
        ),
        ("DescribeActivity", json!({"activityArn": activity})),
        ("DescribeExecution", json!({"executionArn": exec})),
        ("DescribeMapRun", json!({"mapRunArn": map_run})),
        ("DescribeStateMachine", json!({"stateMachineArn": sm})),
        (
            "DescribeStateMachineAlias",
            json!({"stateMachineAliasArn": alias}),
        ),
        (
            "DescribeStateMachineForExecution",
            json!({"executionArn": exec}),
        ),
        ("GetActivityTask", json!({"activityArn": activity})),
        ("GetExecutionHistory", json!({"executionArn": exec})),
        ("ListActivities", json!({})),
        ("ListExecutions", json!({"stateMachineArn": sm})),
        ("ListMapRuns", json!({"executionArn": exec})),
        ("ListStateMachineAliases", json!({"stateMachineArn": sm})),
        ("ListStateMachineVersions", json!({"stateMachineArn": sm})),
        ("ListStateMachines", json!({})),
        ("ListTagsForResource", json!({"resourceArn": sm})),
        ("PublishStateMachineVersion", json!({"stateMachineArn": sm})),
        ("RedriveExecution", json!({"executionArn": exec})),
        ("SendTaskFailure", json!({"taskToken": "token"})),
        ("SendTaskHeartbeat", json!({"taskToken": "token"})),
        (
            "SendTaskSuccess",
            json!({"taskToken": "token", "output": "{}"}),
        ),
        ("StartExecution", json!({"stateMachineArn": sm})),
        ("StartSyncExecution", json!({"stateMachineArn": sm})),
        ("StopExecution", json!({"executionArn": exec})),
        (
            "TagResource",
            json!({"resourceArn": sm, "tags": [{"key": "k", "value": "v"}]}),
        ),
        (
            "TestState",
            json!({"definition": json!({"Type": "Pass", "End": true}).to_string(), "roleArn": ROLE_ARN}),
        ),
        (
            "UntagResource",
            json!({"resourceArn": sm, "tagKeys": ["k"]}),
        ),
        (
            "UpdateMapRun",
            json!({"mapRunArn": map_run, "maxConcurrency": 1}),
        ),
        (
            "UpdateStateMachine",
            json!({"stateMachineArn": sm, "definition": definition}),
        ),
        (
            "UpdateStateMachineAlias",
            json!({"stateMachineAliasArn": alias, "description": "d"}),
        ),
        (
            "ValidateStateMachineDefinition",
            json!({"definition": definition}),
        ),
    ];
    assert_eq!(ops.len(), 37, "the model has 37 operations");
    let mut failures = Vec::new();
    let mut unsupported = Vec::new();
    for (op, body) in &ops {
        let r = raw.call(op, body).await;
        let mut problems = header_problems(&r);
        let parsed: Option<serde_json::Value> = serde_json::from_str(&r.text).ok();
        let code = parsed
            .as_ref()
            .and_then(|b| b.get("__type"))
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
        let message = parsed
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        match (r.status, code.as_deref()) {
            (_, _) if parsed.is_none() => problems.push("body is not JSON".into()),
            (200, None) => {}
            (400..=499, Some("UnknownOperationException")) => {
                problems.push("a model operation is unknown".into())
            }
            (400..=499, Some("ValidationException" | "SerializationException")) => {
                problems.push("the request (valid for the model) was refused by validation".into())
            }
            (400, Some("UnsupportedOperation")) => {
                unsupported.push(*op);
                if !message.contains(op) {
                    problems.push(format!(
                        "UnsupportedOperation message {message:?} does not name {op}"
                    ));
                }
            }
            (400..=499, Some(_)) => {
                if message.is_empty() {
                    problems.push("error without a message".into());
                }
            }
            (status, code) => problems.push(format!("status {status} with __type {code:?}")),
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{op} {body}: {}\n      response: {} {}",
                problems.join("; "),
                r.status,
                r.text
            ));
        }
    }
    println!("operations answering UnsupportedOperation: {unsupported:?}");
    assert!(
        failures.is_empty(),
        "operation sweep failures:\n  {}",
        failures.join("\n  ")
    );
}

/// What the AWS SDK for JavaScript noticed (issue 18): tags on activities, `TooManyTags` with
/// `resourceName`, `InvalidLoggingConfiguration`, `traceHeader` kept, ListExecutions with two
/// parents refused, the alias routing `reason`, `ResourceNotFound`'s `resourceName` and the
/// statuses of the model's `httpError` traits (404, 409).
#[tokio::test]
async fn error_shapes_and_fields_clients_read() {
    let server = Server::memory(1.0);
    let raw = server.raw();
    let account = server.account_id().to_owned();
    let tags = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| json!({ "key": format!("k{i}"), "value": "v" }))
            .collect()
    };
    let mut problems = Vec::new();
    let mut expect = |what: &str, r: &RawResponse, status: u16, code: &str| -> serde_json::Value {
        if r.status != status || r.error_code().as_deref() != Some(code) {
            problems.push(format!(
                "{what}: expected {status} {code}, got {} {}",
                r.status, r.text
            ));
        }
        r.json()
    };

    // Activities: CreateActivity keeps its tags; the tagging operations take activity ARNs.
    let activity = raw
        .ok(
            "CreateActivity",
            &json!({ "name": "tagged", "tags": tags(2) }),
        )
        .await["activityArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let listed = raw
        .ok("ListTagsForResource", &json!({ "resourceArn": activity }))
        .await;
    assert_eq!(listed["tags"], json!(tags(2)), "CreateActivity's tags");
    raw.ok(
        "TagResource",
        &json!({ "resourceArn": activity, "tags": [{ "key": "k0", "value": "new" }] }),
    )
    .await;
    raw.ok(
        "UntagResource",
        &json!({ "resourceArn": activity, "tagKeys": ["k1"] }),
    )
    .await;
    let listed = raw
        .ok("ListTagsForResource", &json!({ "resourceArn": activity }))
        .await;
    assert_eq!(listed["tags"], json!([{ "key": "k0", "value": "new" }]));

    // More than 50 tags, at creation or in total after TagResource.
    let r = raw
        .call(
            "CreateActivity",
            &json!({ "name": "crowded", "tags": tags(51) }),
        )
        .await;
    let crowded = format!("arn:aws:states:us-east-1:{account}:activity:crowded");
    let body = expect("CreateActivity with 51 tags", &r, 400, "TooManyTags");
    assert_eq!(body["resourceName"], json!(crowded), "{body}");
    let r = raw
        .call(
            "TagResource",
            &json!({ "resourceArn": activity, "tags": tags(51)[1..] }),
        )
        .await;
    let body = expect("TagResource past 50 tags", &r, 400, "TooManyTags");
    assert_eq!(body["resourceName"], json!(activity), "{body}");

    // A logging level other than OFF needs a destination.
    let definition = json!({ "StartAt": "P", "States": { "P": { "Type": "Pass", "End": true } } });
    let create = |name: &str, extra: serde_json::Value| {
        let mut body =
            json!({ "name": name, "definition": definition.to_string(), "roleArn": ROLE_ARN });
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        body
    };
    for level in ["ALL", "ERROR", "FATAL"] {
        let r = raw
            .call(
                "CreateStateMachine",
                &create(
                    "logged",
                    json!({ "loggingConfiguration": { "level": level } }),
                ),
            )
            .await;
        let body = expect(level, &r, 400, "InvalidLoggingConfiguration");
        assert_eq!(
            body["message"],
            "Invalid Logging Configuration: Must specify exactly one Log Destination."
        );
    }
    let sm = raw
        .ok(
            "CreateStateMachine",
            &create(
                "traced",
                json!({ "loggingConfiguration": { "level": "OFF" } }),
            ),
        )
        .await["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // traceHeader comes back from DescribeExecution.
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let exec = raw
        .ok(
            "StartExecution",
            &json!({ "stateMachineArn": sm, "traceHeader": trace }),
        )
        .await["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let described = raw
        .ok("DescribeExecution", &json!({ "executionArn": exec }))
        .await;
    assert_eq!(described["traceHeader"], json!(trace), "{described}");
    let express = raw
        .ok(
            "CreateStateMachine",
            &create("traced-sync", json!({ "type": "EXPRESS" })),
        )
        .await["stateMachineArn"]
        .clone();
    let sync = raw
        .ok(
            "StartSyncExecution",
            &json!({ "stateMachineArn": express, "traceHeader": trace }),
        )
        .await;
    assert_eq!(sync["traceHeader"], json!(trace), "{sync}");

    // An input that is not JSON: the message of AWS's parser (Jackson).
    let r = raw
        .call(
            "StartExecution",
            &json!({ "stateMachineArn": sm, "input": "{\"a\": tru}" }),
        )
        .await;
    let body = expect(
        "an input that is not JSON",
        &r,
        400,
        "InvalidExecutionInput",
    );
    assert_eq!(
        body["message"],
        "Invalid State Machine Execution Input: 'com.fasterxml.jackson.core.JsonParseException: Unrecognized token 'tru': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: (String)\"{\"a\": tru}\"; line: 1, column: 10]'"
    );

    // ListExecutions names one parent: a state machine or a Map Run.
    let map_run = format!("arn:aws:states:us-east-1:{account}:mapRun:traced/m:1");
    let r = raw
        .call(
            "ListExecutions",
            &json!({ "stateMachineArn": sm, "mapRunArn": map_run }),
        )
        .await;
    expect(
        "ListExecutions with both parents",
        &r,
        400,
        "ValidationException",
    );

    // An alias whose routing does not add up: a ValidationException with its reason.
    let version = raw
        .ok(
            "PublishStateMachineVersion",
            &json!({ "stateMachineArn": sm }),
        )
        .await["stateMachineVersionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = raw
        .call(
            "CreateStateMachineAlias",
            &json!({ "name": "half", "routingConfiguration": [
                { "stateMachineVersionArn": version, "weight": 50 }
            ] }),
        )
        .await;
    let body = expect(
        "routing weights summing to 50",
        &r,
        400,
        "ValidationException",
    );
    assert_eq!(body["reason"], "INVALID_ROUTING_CONFIGURATION", "{body}");

    // ResourceNotFound: 404, with the resource's name.
    let missing_alias = format!("{sm}:nope");
    let missing_activity = format!("arn:aws:states:us-east-1:{account}:activity:nope");
    for (op, member, missing) in [
        (
            "DescribeStateMachineAlias",
            "stateMachineAliasArn",
            &missing_alias,
        ),
        ("ListTagsForResource", "resourceArn", &missing_activity),
    ] {
        let r = raw.call(op, &json!({ member: missing })).await;
        let body = expect(op, &r, 404, "ResourceNotFound");
        assert_eq!(body["resourceName"], json!(missing), "{body}");
    }

    // ConflictException: 409.
    let r = raw
        .call(
            "PublishStateMachineVersion",
            &json!({ "stateMachineArn": sm, "revisionId": "not-the-current-one" }),
        )
        .await;
    expect("publishing a stale revision", &r, 409, "ConflictException");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
