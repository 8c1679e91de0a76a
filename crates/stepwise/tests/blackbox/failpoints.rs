//! Crashes at named points of the commit and dispatch paths (the `fail` crate; this suite
//! needs the `failpoints` feature, which `scripts/test` turns on). Each case arms one point
//! with `FAILPOINTS=NAME=return`, which aborts the process there, restarts the server
//! unarmed on the same data, and checks that nothing was lost and no transition happened
//! twice. Tasks are at-least-once: one performed just before the crash is performed again.
#![cfg(feature = "failpoints")]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use common::{
    assert_history_well_formed, create_activity, create_machine, event_types, history, succeed,
    try_succeed, wait_done, Server,
};
use serde_json::{json, Value};

fn one_task(resource: &str, parameters: Option<Value>) -> Value {
    let mut task = json!({"Type": "Task", "Resource": resource, "End": true});
    if let Some(p) = parameters {
        task["Parameters"] = p;
    }
    json!({"StartAt": "T", "States": {"T": task}})
}

/// Starts `name` on `sm` with the server armed to crash at `point`, and waits for the crash.
async fn start_into_crash(server: &mut Server, sm: &str, name: &str, point: &str) -> String {
    server.restart_with_failpoints(Some(&format!("{point}=return")));
    // The start is committed before the crash; its answer may or may not arrive.
    let _ = server
        .client()
        .start_execution()
        .state_machine_arn(sm)
        .name(name)
        .send()
        .await;
    assert!(
        server.wait_exit(Duration::from_secs(20)),
        "{point} did not crash the server\n{}",
        server.logs()
    );
    server.restart_with_failpoints(None);
    format!("{}:{name}", sm.replace(":stateMachine:", ":execution:"))
}

/// The token of the task a worker of `activity` gets.
async fn task_token(client: &aws_sdk_sfn::Client, activity: &str) -> String {
    let task = client
        .get_activity_task()
        .activity_arn(activity)
        .send()
        .await
        .expect("GetActivityTask");
    task.task_token().expect("a task for the worker").to_owned()
}

fn count(types: &[String], t: &str) -> usize {
    types.iter().filter(|x| x.as_str() == t).count()
}

/// An activity whose scheduling was committed, and the process died before it reached the
/// activity's queue: after the restart a worker gets it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_commit_and_dispatch() {
    let mut server = Server::sqlite(1.0);
    let activity = create_activity(&server.client(), "fp-dispatch").await;
    let sm = create_machine(&server.client(), "fp-dispatch", &one_task(&activity, None)).await;
    let arn = start_into_crash(&mut server, &sm, "one", "task-before-dispatch").await;
    let client = server.client();
    let token = task_token(&client, &activity).await;
    succeed(&client, &token, &json!({"done": true})).await;
    let done = wait_done(&client, &arn, Duration::from_secs(20)).await;
    assert_eq!(*done.status(), ExecutionStatus::Succeeded);
    let events = history(&client, &arn).await;
    assert_history_well_formed("dispatch crash", &events);
    let types = event_types(&events);
    for t in ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"] {
        assert_eq!(count(&types, t), 1, "{t}: {types:?}");
    }
}

/// An HTTP endpoint that answers `{"ok": true}` and counts its calls.
fn counting_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/work", listener.local_addr().expect("address"));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"ok":true}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, calls)
}

/// An HTTP Task performed, and the process died before its outcome was recorded: after the
/// restart it is performed again (at-least-once) and its outcome recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_dispatch_and_outcome() {
    let mut server = Server::sqlite(1.0);
    let (url, calls) = counting_endpoint();
    let parameters = json!({
        "ApiEndpoint": url,
        "Method": "GET",
        "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/c/1"}
    });
    let definition = one_task("arn:aws:states:::http:invoke", Some(parameters));
    let sm = create_machine(&server.client(), "fp-outcome", &definition).await;
    let arn = start_into_crash(&mut server, &sm, "one", "task-before-outcome").await;
    let client = server.client();
    let done = wait_done(&client, &arn, Duration::from_secs(20)).await;
    assert_eq!(*done.status(), ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "performed before and after the crash"
    );
    let events = history(&client, &arn).await;
    assert_history_well_formed("outcome crash", &events);
    let types = event_types(&events);
    for t in ["TaskScheduled", "TaskSucceeded", "ExecutionSucceeded"] {
        assert_eq!(count(&types, t), 1, "{t}: {types:?}");
    }
}

/// A worker's SendTaskSuccess committed, and the process died before answering it: the
/// outcome stands after the restart, and the worker's retry changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_commit_and_answer() {
    let mut server = Server::sqlite(1.0);
    let client = server.client();
    let activity = create_activity(&client, "fp-answer").await;
    let sm = create_machine(&client, "fp-answer", &one_task(&activity, None)).await;
    let arn = common::start(&client, &sm, Some("one"), &json!({})).await;
    let token = task_token(&client, &activity).await;
    server.restart_with_failpoints(Some("store-committed=return"));
    let answered = try_succeed(&server.client(), &token, &json!({"n": 1})).await;
    assert!(answered.is_err(), "the server answered before crashing");
    assert!(server.wait_exit(Duration::from_secs(20)), "no crash");
    server.restart_with_failpoints(None);
    let client = server.client();
    let done = wait_done(&client, &arn, Duration::from_secs(20)).await;
    assert_eq!(*done.status(), ExecutionStatus::Succeeded);
    let retried = try_succeed(&client, &token, &json!({"n": 2})).await;
    assert!(
        retried.is_err(),
        "a second outcome for the same task was accepted"
    );
    let events = history(&client, &arn).await;
    assert_history_well_formed("answer crash", &events);
    let types = event_types(&events);
    assert_eq!(count(&types, "ActivitySucceeded"), 1, "{types:?}");
    let output: Value = common::parse_json("output", done.output());
    assert_eq!(output, json!({"n": 1}));
}
