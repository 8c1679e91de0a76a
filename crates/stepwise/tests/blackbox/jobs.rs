//! The optimized integrations that run a job (Athena `startQueryExecution`, ECS `runTask`,
//! Batch `submitJob`, Glue `startJobRun`, CodeBuild `startBuild`), black-box against moto:
//! request-response, `.sync` to the job's end (moto's state manager makes jobs take several
//! describes), a failed job failing the task with `States.TaskFailed`, `.waitForTaskToken`
//! with the token handed to the container, a stop during `.sync`
//! stopping the job, and a restart of the server mid-poll following the same job.
//!
//! What moto cannot do, and so is not tested here: Batch jobs only fail (moto runs them in
//! Docker, which the test machine does not serve); CodeBuild builds succeed on the first
//! describe; ECS `runTask` never answers `Failures`; a query never fails in moto's Athena.

use std::time::{Duration, Instant};

use crate::common::{self, event_types, history, start, wait_done, Moto, Options, Server};
use crate::services::{catching, caught_tail, chain, check, run, sdk, task, Case, Want};
use serde_json::{json, Value};

const CLUSTER: &str = "stepwise-cluster";
const FAMILY: &str = "stepwise-family";
const GLUE_JOB: &str = "stepwise-glue-job";
const PROJECT: &str = "stepwise-project";
const QUEUE: &str = "stepwise-job-queue";
const JOB_DEFINITION: &str = "stepwise-job-definition";
const DONE_WITHIN: Duration = Duration::from_secs(60);

/// `arn:aws:states:::SERVICE:ACTION` with `parameters`.
fn optimized(service_action: &str, parameters: Value) -> Value {
    task(&format!("arn:aws:states:::{service_action}"), parameters)
}

/// Makes moto's jobs of `model` (`athena::execution`, `ecs::task`) move one status on every
/// `times` describes.
async fn slow_down(moto: &Moto, model: &str, times: u32) {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/state-manager/set-transition",
            moto.endpoint()
        ))
        .json(
            &json!({"model_name": model, "transition": {"progression": "manual", "times": times}}),
        )
        .send()
        .await
        .expect("moto's state manager answers");
    assert!(
        r.status().is_success(),
        "set-transition {model}: {}",
        r.status()
    );
}

/// Creates what the jobs need, with generic `aws-sdk:*` calls: an IAM role, an ECS cluster
/// and task definition, a Glue job, a CodeBuild project, a Batch compute environment, queue
/// and job definition.
async fn provision(server: &Server) {
    let definition = chain(vec![
        (
            "Role",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:iam:createRole",
                "Parameters": {"RoleName": "stepwise-jobs", "AssumeRolePolicyDocument": "{}"},
                "ResultSelector": {"Arn.$": "$.Role.Arn"}, "ResultPath": "$.role"}),
        ),
        (
            "Cluster",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:createCluster",
                "Parameters": {"ClusterName": CLUSTER}, "ResultPath": null}),
        ),
        (
            "TaskDefinition",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:registerTaskDefinition",
                "Parameters": {"Family": FAMILY,
                    "ContainerDefinitions": [{"Name": "main", "Image": "busybox", "Memory": 128}]},
                "ResultPath": null}),
        ),
        (
            "GlueJob",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:createJob",
                "Parameters": {"Name": GLUE_JOB, "Role.$": "$.role.Arn",
                    "Command": {"Name": "glueetl", "ScriptLocation": "s3://scripts/job.py"}},
                "ResultPath": null}),
        ),
        (
            "Project",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:codebuild:createProject",
                "Parameters": {"Name": PROJECT, "ServiceRole.$": "$.role.Arn",
                    "Source": {"Type": "S3", "Location": "sources/src.zip"},
                    "Artifacts": {"Type": "NO_ARTIFACTS"},
                    "Environment": {"Type": "LINUX_CONTAINER", "Image": "aws/codebuild/standard:7.0",
                        "ComputeType": "BUILD_GENERAL1_SMALL"}},
                "ResultPath": null}),
        ),
        (
            "ComputeEnvironment",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:batch:createComputeEnvironment",
                "Parameters": {"ComputeEnvironmentName": "stepwise-compute", "Type": "UNMANAGED",
                    "State": "ENABLED", "ServiceRole.$": "$.role.Arn"},
                "ResultPath": null}),
        ),
        (
            "JobQueue",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:batch:createJobQueue",
                "Parameters": {"JobQueueName": QUEUE, "State": "ENABLED", "Priority": 1,
                    "ComputeEnvironmentOrder": [{"Order": 1, "ComputeEnvironment": "stepwise-compute"}]},
                "ResultPath": null}),
        ),
        (
            "JobDefinition",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:batch:registerJobDefinition",
                "Parameters": {"JobDefinitionName": JOB_DEFINITION, "Type": "container",
                    "ContainerProperties": {"Image": "busybox", "Vcpus": 1, "Memory": 128,
                        "Command": ["true"]}},
                "ResultPath": null}),
        ),
    ]);
    run(server, "provision-jobs", &definition, &json!({})).await;
}

fn query() -> Value {
    json!({"QueryString": "SELECT 1", "WorkGroup": "primary",
        "ResultConfiguration": {"OutputLocation": "s3://stepwise-results/"}})
}

fn run_task() -> Value {
    json!({"Cluster": CLUSTER, "TaskDefinition": FAMILY, "LaunchType": "FARGATE"})
}

fn cases() -> Vec<Case> {
    let ok = |name, definition| Case {
        name,
        definition,
        want: Want::Output(Vec::new()),
    };
    vec![
        Case {
            want: Want::Output(vec![
                ("/QueryExecutionId", None),
                ("/SdkHttpMetadata/HttpStatusCode", Some(json!(200))),
                ("/SdkResponseMetadata/RequestId", None),
            ]),
            ..ok(
                "athena-request-response",
                chain(vec![(
                    "Q",
                    optimized("athena:startQueryExecution", query()),
                )]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/QueryExecution/QueryExecutionId", None),
                ("/QueryExecution/Query", Some(json!("SELECT 1"))),
                ("/QueryExecution/Status/State", Some(json!("SUCCEEDED"))),
            ]),
            ..ok(
                "athena-sync",
                chain(vec![(
                    "Q",
                    optimized("athena:startQueryExecution.sync", query()),
                )]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/Tasks/0/TaskArn", None),
                ("/Failures", Some(json!([]))),
                ("/SdkHttpMetadata/HttpStatusCode", Some(json!(200))),
            ]),
            ..ok(
                "ecs-request-response",
                chain(vec![("T", optimized("ecs:runTask", run_task()))]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/TaskArn", None),
                ("/LastStatus", Some(json!("STOPPED"))),
                ("/Containers/0/Name", Some(json!("main"))),
            ]),
            ..ok(
                "ecs-sync",
                chain(vec![("T", optimized("ecs:runTask.sync", run_task()))]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/Id", None),
                ("/JobName", Some(json!(GLUE_JOB))),
                ("/JobRunState", Some(json!("SUCCEEDED"))),
            ]),
            ..ok(
                "glue-sync",
                chain(vec![(
                    "G",
                    optimized("glue:startJobRun.sync", json!({"JobName": GLUE_JOB})),
                )]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/Build/Id", None),
                ("/Build/ProjectName", Some(json!(PROJECT))),
                ("/Build/BuildStatus", Some(json!("SUCCEEDED"))),
            ]),
            ..ok(
                "codebuild-sync",
                chain(vec![(
                    "B",
                    optimized("codebuild:startBuild.sync", json!({"ProjectName": PROJECT})),
                )]),
            )
        },
        Case {
            want: Want::Output(vec![
                ("/JobId", None),
                ("/JobName", Some(json!("stepwise-job"))),
            ]),
            ..ok(
                "batch-request-response",
                chain(vec![(
                    "J",
                    optimized(
                        "batch:submitJob",
                        json!({"JobName": "stepwise-job", "JobQueue": QUEUE,
                            "JobDefinition": JOB_DEFINITION}),
                    ),
                )]),
            )
        },
        Case {
            // moto cannot run the container: the job fails, and so does the task.
            want: Want::Caught("States.TaskFailed", "\"Status\":\"FAILED\""),
            ..ok(
                "batch-sync-failed-job",
                chain(
                    [
                        vec![(
                            "J",
                            catching(
                                optimized(
                                    "batch:submitJob.sync",
                                    json!({"JobName": "stepwise-failing", "JobQueue": QUEUE,
                                        "JobDefinition": JOB_DEFINITION}),
                                ),
                                "States.TaskFailed",
                            ),
                        )],
                        caught_tail(),
                    ]
                    .concat(),
                ),
            )
        },
        Case {
            want: Want::Caught("Glue.EntityNotFoundException", "Service: AWSGlue"),
            ..ok(
                "glue-sync-unknown-job",
                chain(
                    [
                        vec![(
                            "G",
                            catching(
                                optimized(
                                    "glue:startJobRun.sync",
                                    json!({"JobName": "no-such-job"}),
                                ),
                                "Glue.EntityNotFoundException",
                            ),
                        )],
                        caught_tail(),
                    ]
                    .concat(),
                ),
            )
        },
    ]
}

/// Each job integration against moto; Athena queries and ECS tasks take several describes.
#[tokio::test]
async fn jobs_against_moto() {
    let moto = Moto::start().await;
    slow_down(&moto, "athena::execution", 2).await;
    let server = Server::start_with_args(Options::default(), &["--aws-endpoint", moto.endpoint()]);
    provision(&server).await;
    for (i, case) in cases().iter().enumerate() {
        let (_, output) = run(&server, &format!("job-{i}"), &case.definition, &json!({})).await;
        check(case, &output);
    }
}

/// Waits until the execution's history has a `TaskSubmitted` event.
async fn wait_submitted(server: &Server, exec: &str) {
    let until = Instant::now() + DONE_WITHIN;
    loop {
        let events = history(&server.client(), exec).await;
        if event_types(&events).iter().any(|t| t == "TaskSubmitted") {
            return;
        }
        assert!(
            Instant::now() < until,
            "no TaskSubmitted: {events:#?}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The output of a one-state execution of `state`.
async fn call(server: &Server, name: &str, state: Value) -> Value {
    run(server, name, &chain(vec![("Call", state)]), &json!({}))
        .await
        .1
}

/// Stopping an execution during `.sync` stops the job: the ECS task and the Athena query,
/// which would otherwise run for good (moto's state manager holds them).
#[tokio::test]
async fn stopping_the_execution_stops_the_job() {
    let moto = Moto::start().await;
    slow_down(&moto, "ecs::task", 1_000_000).await;
    slow_down(&moto, "athena::execution", 1_000_000).await;
    let server = Server::start_with_args(Options::default(), &["--aws-endpoint", moto.endpoint()]);
    provision(&server).await;
    let client = server.client();
    let jobs = [
        ("ecs", optimized("ecs:runTask.sync", run_task())),
        (
            "athena",
            optimized("athena:startQueryExecution.sync", query()),
        ),
    ];
    for (name, state) in jobs {
        let sm = common::create_machine(
            &client,
            &format!("stop-{name}"),
            &chain(vec![("Job", state)]),
        )
        .await;
        let exec = start(&client, &sm, None, &json!({})).await;
        wait_submitted(&server, &exec).await;
        client
            .stop_execution()
            .execution_arn(&exec)
            .send()
            .await
            .expect("StopExecution");
        assert_eq!(
            wait_done(&client, &exec, DONE_WITHIN)
                .await
                .status()
                .as_str(),
            "ABORTED"
        );
        let submitted: Value = history(&client, &exec)
            .await
            .iter()
            .find_map(|e| e.task_submitted_event_details())
            .and_then(|d| d.output())
            .and_then(|o| serde_json::from_str(o).ok())
            .expect("the TaskSubmitted output");
        // The stop is sent after the execution ended: wait for moto to see it.
        let until = Instant::now() + DONE_WITHIN;
        loop {
            let (pointer, stopped, state) = match name {
                "ecs" => {
                    let arn = submitted
                        .pointer("/Tasks/0/TaskArn")
                        .cloned()
                        .unwrap_or_default();
                    let params = json!({"Cluster": CLUSTER, "Tasks": [arn]});
                    (
                        "/Tasks/0/LastStatus",
                        "STOPPED",
                        sdk("ecs:describeTasks", params),
                    )
                }
                _ => {
                    let id = submitted
                        .pointer("/QueryExecutionId")
                        .cloned()
                        .unwrap_or_default();
                    let params = json!({"QueryExecutionId": id});
                    (
                        "/QueryExecution/Status/State",
                        "CANCELLED",
                        sdk("athena:getQueryExecution", params),
                    )
                }
            };
            let described = call(&server, &format!("describe-{name}"), state).await;
            if described.pointer(pointer) == Some(&json!(stopped)) {
                break;
            }
            assert!(
                Instant::now() < until,
                "{name} job not stopped: {described:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A server killed while it polls a `.sync` job follows the same job after its restart: the
/// history has one `TaskSubmitted`, moto one query, and the execution succeeds with it.
#[tokio::test]
async fn a_restart_mid_poll_follows_the_same_job() {
    let moto = Moto::start().await;
    // QUEUED → RUNNING → SUCCEEDED, 6 describes each: seconds at the test's poll interval.
    slow_down(&moto, "athena::execution", 6).await;
    let mut server =
        Server::start_with_args(Options::default(), &["--aws-endpoint", moto.endpoint()]);
    let client = server.client();
    let definition = chain(vec![(
        "Q",
        optimized("athena:startQueryExecution.sync", query()),
    )]);
    let sm = common::create_machine(&client, "restart-athena", &definition).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    wait_submitted(&server, &exec).await;
    server.restart();
    let client = server.client();
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    let events = history(&client, &exec).await;
    assert_eq!(
        done.status().as_str(),
        "SUCCEEDED",
        "{events:#?}\n{}",
        server.logs()
    );
    let types = event_types(&events);
    assert_eq!(
        types.iter().filter(|t| *t == "TaskSubmitted").count(),
        1,
        "{types:?}"
    );
    let output: Value =
        serde_json::from_str(done.output().unwrap_or_default()).expect("JSON output");
    let queries = call(
        &server,
        "list-queries",
        sdk("athena:listQueryExecutions", json!({})),
    )
    .await;
    assert_eq!(
        queries.pointer("/QueryExecutionIds"),
        Some(&json!([output.pointer("/QueryExecution/QueryExecutionId")])),
        "{queries:#}"
    );
}

/// `runTask.waitForTaskToken`: the task is started with the token in a container's
/// environment (as workflows hand it to the container), `TaskSubmitted` records what
/// `RunTask` answered, and the container's `SendTaskSuccess` ends the state.
#[tokio::test]
async fn run_task_wait_for_task_token() {
    let moto = Moto::start().await;
    let server = Server::start_with_args(Options::default(), &["--aws-endpoint", moto.endpoint()]);
    provision(&server).await;
    let client = server.client();
    let mut parameters = run_task();
    parameters["Overrides"] = json!({"ContainerOverrides": [{"Name": "main",
        "Environment": [{"Name": "TASK_TOKEN", "Value.$": "$$.Task.Token"}]}]});
    let definition = chain(vec![(
        "Job",
        optimized("ecs:runTask.waitForTaskToken", parameters),
    )]);
    let sm = common::create_machine(&client, "ecs-callback", &definition).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    wait_submitted(&server, &exec).await;
    let events = history(&client, &exec).await;
    let submitted: Value = events
        .iter()
        .find_map(|e| e.task_submitted_event_details())
        .and_then(|d| d.output())
        .and_then(|o| serde_json::from_str(o).ok())
        .expect("the TaskSubmitted output");
    let token = submitted
        .pointer("/Tasks/0/Overrides/ContainerOverrides/0/Environment/0/Value")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no token in what RunTask answered: {submitted:#}"));
    common::succeed(&client, token, &json!({"done": true})).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(done.status().as_str(), "SUCCEEDED", "{:?}", done.cause());
    assert_eq!(done.output(), Some(r#"{"done":true}"#));
}
