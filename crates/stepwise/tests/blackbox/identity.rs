//! Which identity integration calls are made with, black-box: the real server assumes roles
//! through moto's STS (`--endpoint sts=…`, AssumeRole answers fresh `ASIA…` keys) and sends
//! DynamoDB, Lambda and S3 calls to a stub endpoint (`--endpoint dynamodb=…`, `lambda=…`,
//! `s3=…`) that records the access key each call was signed with. moto's own state (`/moto-api/data.json`)
//! says which role each key was issued for, so each call is checked against the role it must
//! have assumed: the state machine's under `--assume-execution-role`, the Task's
//! `Credentials` (a literal `RoleArn`, `RoleArn.$`, JSONata) with or without it, the base
//! credentials otherwise. A role STS refuses fails the task with a catchable error; a Task's
//! role is asked for with the state machine's ARN as `ExternalId`. TestState's
//! real calls and a Distributed Map's `ItemReader` and `ResultWriter` assume roles the same way.
//!
//! moto must be installed (`scripts/setup-test-deps`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::common::{
    create_machine_as, history, parse_json, start, wait_done, Moto, Options, Server,
};
use crate::services::{catching, caught_tail, chain};

const DONE_WITHIN: Duration = Duration::from_secs(30);
const MACHINE_ROLE: &str = "arn:aws:iam::123456789012:role/machine-role";
const TASK_ROLE: &str = "arn:aws:iam::210987654321:role/task-role";
const PATH_ROLE: &str = "arn:aws:iam::210987654321:role/path-role";
const JSONATA_ROLE: &str = "arn:aws:iam::210987654321:role/jsonata-role";
const FORBIDDEN_ROLE: &str = "arn:aws:iam::210987654321:role/forbidden";

/// One call the stub received: what it was for (a DynamoDB table, a Lambda function), the
/// access key it was signed with, and whether it carried a session token.
#[derive(Debug, Clone)]
struct Received {
    target: String,
    key: String,
    session_token: bool,
}

type Calls = Arc<Mutex<Vec<Received>>>;

/// Starts the stub on a free port: its URL and what it receives.
async fn stub() -> (String, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the stub listener");
    let addr = listener.local_addr().expect("stub address");
    let calls = Calls::default();
    let recorded = calls.clone();
    let app = axum::Router::new().fallback(move |req| answer(req, recorded.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), calls)
}

/// Records a DynamoDB, Lambda or S3 call and answers `{}` (a GET, an S3 GetObject: a JSON
/// array of two items); records an STS AssumeRole (target `AssumeRole`, its `ExternalId` as
/// the key) and refuses it as AWS does for a role whose trust policy does not name the caller.
async fn answer(req: Request<Body>, calls: Calls) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.contains("Action=AssumeRole") {
        let external_id = reqwest::Url::parse(&format!("http://stub/?{text}"))
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "ExternalId")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        calls.lock().expect("stub calls").push(Received {
            target: "AssumeRole".into(),
            key: external_id,
            session_token: false,
        });
        let xml = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
            <Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
            arn:aws:iam::123456789012:user/stepwise is not authorized to perform: \
            sts:AssumeRole on resource: arn:aws:iam::210987654321:role/forbidden</Message>\
            </Error><RequestId>stub-sts</RequestId></ErrorResponse>";
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "text/xml")
            .body(Body::from(xml))
            .unwrap_or_else(|e| panic!("building the STS refusal: {e}"));
    }
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let key = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let table = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        v.get("TableName")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let target = table.unwrap_or_else(|| parts.uri.path().to_owned());
    calls.lock().expect("stub calls").push(Received {
        target,
        key,
        session_token: header("x-amz-security-token").is_some(),
    });
    let body = match parts.method {
        axum::http::Method::GET => r#"[{"n": 1}, {"n": 2}]"#,
        _ => "{}",
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "stub-request")
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("building a stub response: {e}"))
}

/// A DynamoDB `putItem` into `table` (the stub records the table), output discarded.
fn put(table: &str) -> Value {
    json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
        "Parameters": {"TableName": table, "Item": {"id": {"S": "1"}}}, "ResultPath": null})
}

/// `state` with a `Credentials` field.
fn with_credentials(mut state: Value, credentials: Value) -> Value {
    state["Credentials"] = credentials;
    state
}

/// Creates a state machine with `role` and runs it on `input`: the final description and
/// the history, as JSON text.
async fn run(
    server: &Server,
    name: &str,
    role: &str,
    definition: &Value,
    input: &Value,
) -> (
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    String,
) {
    let client = server.client();
    let kind = aws_sdk_sfn::types::StateMachineType::Standard;
    let sm = create_machine_as(&client, name, definition, kind, role).await;
    let exec = start(&client, &sm, None, input).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    let events = history(&client, &exec).await;
    (done, format!("{events:?}"))
}

/// The execution succeeded (else: its error, its history and the server's log).
fn assert_succeeded(
    done: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    events: &str,
    server: &Server,
) {
    assert_eq!(
        done.status().as_str(),
        "SUCCEEDED",
        "{:?} {:?}\n{events}\n{}",
        done.error(),
        done.cause(),
        server.logs()
    );
}

/// Which role moto issued each access key for, and every secret it handed out.
async fn issued(moto: &Moto) -> (Vec<(String, String)>, Vec<String>) {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint()))
        .await
        .expect("moto's data.json")
        .json()
        .await
        .expect("moto's data.json is JSON");
    let roles = data
        .pointer("/sts/AssumedRole")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let field = |r: &Value, f: &str| r[f].as_str().unwrap_or_default().to_owned();
    let keys = roles
        .iter()
        .map(|r| (field(r, "access_key_id"), field(r, "role_arn")))
        .collect();
    let secrets = roles
        .iter()
        .flat_map(|r| [field(r, "secret_access_key"), field(r, "session_token")])
        .collect();
    (keys, secrets)
}

/// The role the call to `target` was signed as (`None`: a key moto did not issue).
fn role_of(calls: &[Received], keys: &[(String, String)], target: &str) -> Option<String> {
    let call = calls
        .iter()
        .find(|c| c.target == target)
        .unwrap_or_else(|| panic!("the stub received no call for {target}: {calls:#?}"));
    assert!(call.session_token, "{target}: no session token: {call:?}");
    issued_for(keys, &call.key)
}

/// The role moto issued `key` for.
fn issued_for(keys: &[(String, String)], key: &str) -> Option<String> {
    keys.iter()
        .find(|(k, _)| k == key)
        .map(|(_, role)| role.clone())
}

/// A server assuming execution roles through moto's STS, with `services` sent to the stub.
fn assuming_server(moto: &Moto, stub: &str, services: &[&str]) -> Server {
    let mut args = vec![
        "--assume-execution-role".to_owned(),
        "--endpoint".to_owned(),
        format!("sts={}", moto.endpoint()),
    ];
    for service in services {
        args.push("--endpoint".to_owned());
        args.push(format!("{service}={stub}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with_args(Options::default(), &args)
}

#[tokio::test]
async fn calls_sign_with_the_role_they_assume() {
    let moto = Moto::start().await;
    let (stub, calls) = stub().await;
    let server = assuming_server(&moto, &stub, &["dynamodb", "lambda"]);
    let definition = chain(vec![
        ("AsMachine", put("as-machine")),
        (
            "AsTask",
            with_credentials(put("as-task"), json!({"RoleArn": TASK_ROLE})),
        ),
        (
            "AsPath",
            with_credentials(
                json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "as-path", "Payload": {}}, "ResultPath": null}),
                json!({"RoleArn.$": "$.role"}),
            ),
        ),
        (
            "AsJsonata",
            json!({"Type": "Task", "QueryLanguage": "JSONata",
                "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                "Arguments": {"TableName": "as-jsonata", "Item": {"id": {"S": "1"}}},
                "Credentials": {"RoleArn": "{% $states.input.other %}"},
                "Output": "{% $states.input %}"}),
        ),
        ("AsMachineAgain", put("as-machine-again")),
    ]);
    let input = json!({"role": PATH_ROLE, "other": JSONATA_ROLE});
    let (done, events) = run(&server, "identities", MACHINE_ROLE, &definition, &input).await;
    assert_succeeded(&done, &events, &server);
    let calls = calls.lock().expect("stub calls").clone();
    let (keys, secrets) = issued(&moto).await;
    for (target, role) in [
        ("as-machine", MACHINE_ROLE),
        ("as-task", TASK_ROLE),
        ("/2015-03-31/functions/as-path/invocations", PATH_ROLE),
        ("as-jsonata", JSONATA_ROLE),
        ("as-machine-again", MACHINE_ROLE),
    ] {
        assert_eq!(
            role_of(&calls, &keys, target).as_deref(),
            Some(role),
            "{target}: {calls:#?} {keys:#?}"
        );
    }
    // Each role was assumed once: the second call as the machine reused its credentials.
    assert_eq!(keys.len(), 4, "{keys:#?}");
    // The history names the roles the Tasks' `Credentials` rendered, never a credential.
    for role in [TASK_ROLE, PATH_ROLE, JSONATA_ROLE] {
        assert!(events.contains(role), "{role} not in the history: {events}");
    }
    let logs = server.logs();
    for (key, _) in &keys {
        assert!(!events.contains(key.as_str()), "{key} in the history");
        assert!(!logs.contains(key.as_str()), "{key} in the logs");
    }
    for secret in &secrets {
        assert!(!events.contains(secret.as_str()), "a secret in the history");
        assert!(!logs.contains(secret.as_str()), "a secret in the logs");
    }
}

#[tokio::test]
async fn without_the_flag_only_task_credentials_assume_and_a_refused_role_is_caught() {
    let (stub, calls) = stub().await;
    let sts = format!("sts={stub}");
    let ddb = format!("dynamodb={stub}");
    let server = Server::start_with_args(
        Options::default(),
        &["--endpoint", &sts, "--endpoint", &ddb],
    );
    let refused = catching(
        with_credentials(put("refused"), json!({"RoleArn": FORBIDDEN_ROLE})),
        "States.TaskFailed",
    );
    let definition = chain(
        [
            vec![("Base", put("base")), ("Refused", refused)],
            caught_tail(),
        ]
        .concat(),
    );
    let (done, events) = run(&server, "refused", MACHINE_ROLE, &definition, &json!({})).await;
    assert_eq!(
        done.status().as_str(),
        "SUCCEEDED",
        "{:?} {:?}\n{events}",
        done.error(),
        done.cause()
    );
    let output = parse_json("execution output", done.output());
    let cause = output
        .pointer("/caught/Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        cause.contains(FORBIDDEN_ROLE)
            && cause.contains("not authorized to perform: sts:AssumeRole"),
        "cause {cause:?}"
    );
    let calls = calls.lock().expect("stub calls").clone();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let base_key = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(_)) => key,
        _ => "test".to_owned(),
    };
    let targets: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.target.as_str(), c.key.as_str()))
        .collect();
    // The machine's role is not assumed without the flag; the Task's role is, with the state
    // machine's ARN as its external id, and the refused Task never called.
    let machine = done.state_machine_arn();
    assert!(machine.ends_with(":stateMachine:refused"), "{machine}");
    assert_eq!(
        targets,
        vec![("base", base_key.as_str()), ("AssumeRole", machine)],
        "{calls:#?}"
    );
}

/// The roles the calls under `prefix` were signed as (`None`: a key moto did not issue).
fn roles_under(calls: &[Received], keys: &[(String, String)], prefix: &str) -> Vec<Option<String>> {
    calls
        .iter()
        .filter(|c| c.target.starts_with(prefix))
        .map(|c| issued_for(keys, &c.key))
        .collect()
}

#[tokio::test]
async fn test_state_and_distributed_map_s3_calls_sign_with_the_role_they_assume() {
    let moto = Moto::start().await;
    let (stub, calls) = stub().await;
    let server = assuming_server(&moto, &stub, &["dynamodb", "s3"]);
    // TestState: as its `roleArn`, or as the Task's `Credentials`.
    let raw = server.raw();
    for state in [
        put("test-state-as-machine"),
        with_credentials(put("test-state-as-task"), json!({"RoleArn": TASK_ROLE})),
    ] {
        let mut state = state;
        state["End"] = json!(true);
        let answer = raw
            .ok(
                "TestState",
                &json!({"definition": state.to_string(), "roleArn": MACHINE_ROLE}),
            )
            .await;
        assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    }
    // A Distributed Map reading its items from S3 and writing its results there.
    let definition = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "items", "Key": "in.json"}
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "results", "Prefix": "out"}
        },
        "End": true
    }}});
    let (done, events) = run(
        &server,
        "s3-identity",
        MACHINE_ROLE,
        &definition,
        &json!({}),
    )
    .await;
    assert_succeeded(&done, &events, &server);
    let calls = calls.lock().expect("stub calls").clone();
    let (keys, secrets) = issued(&moto).await;
    assert_eq!(
        role_of(&calls, &keys, "test-state-as-machine").as_deref(),
        Some(MACHINE_ROLE),
        "{calls:#?} {keys:#?}"
    );
    assert_eq!(
        role_of(&calls, &keys, "test-state-as-task").as_deref(),
        Some(TASK_ROLE),
        "{calls:#?} {keys:#?}"
    );
    for prefix in ["/items/", "/results/"] {
        let roles = roles_under(&calls, &keys, prefix);
        assert!(!roles.is_empty(), "no S3 call under {prefix}: {calls:#?}");
        assert!(
            roles.iter().all(|r| r.as_deref() == Some(MACHINE_ROLE)),
            "{prefix}: {roles:?} {calls:#?} {keys:#?}"
        );
    }
    assert!(calls.iter().all(|c| c.session_token), "{calls:#?}");
    let logs = server.logs();
    for secret in keys.iter().map(|(k, _)| k).chain(&secrets) {
        assert!(
            !events.contains(secret.as_str()),
            "a credential in the history"
        );
        assert!(!logs.contains(secret.as_str()), "a credential in the logs");
    }
}
