//! AWS service integrations, black-box: the real `stepwise serve` binary calls a real moto
//! server (`--aws-endpoint`) through the optimized integrations (SNS `publish`, SQS
//! `sendMessage`, EventBridge `putEvents`, DynamoDB `getItem`/`putItem`/`updateItem`/
//! `deleteItem`) and generic `aws-sdk:*` calls over each protocol: awsJson1_0 (DynamoDB, SQS),
//! awsJson1_1 (EventBridge), awsQuery (SNS, STS), restXml (S3), restJson1 (Lambda) and ec2Query
//! (EC2). Service errors are caught by their AWS names; an unreachable endpoint is a task
//! failure, not a hang.
//!
//! moto must be installed (`scripts/setup-test-deps`).

use crate::common;

use std::time::Duration;

use common::{create_machine, history, parse_json, start, wait_done, Moto, Options, Server};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(30);
const TABLE: &str = "stepwise-items";
const QUEUE: &str = "stepwise-queue";
const TOPIC: &str = "stepwise-topic";
const BUCKET: &str = "stepwise-bucket";

/// A Task state calling `resource` with `parameters`.
pub(crate) fn task(resource: &str, parameters: Value) -> Value {
    json!({"Type": "Task", "Resource": resource, "Parameters": parameters})
}

/// `aws-sdk:SERVICE:ACTION`
pub(crate) fn sdk(service_action: &str, parameters: Value) -> Value {
    task(
        &format!("arn:aws:states:::aws-sdk:{service_action}"),
        parameters,
    )
}

/// A definition running `states` in order, each one's output the next one's input.
pub(crate) fn chain(states: Vec<(&str, Value)>) -> Value {
    let mut out = serde_json::Map::new();
    let names: Vec<&str> = states.iter().map(|(n, _)| *n).collect();
    for (i, (name, mut state)) in states.into_iter().enumerate() {
        let terminal = state["Type"] == "Succeed" || state["Type"] == "Fail";
        if !terminal && state.get("Next").is_none() && state.get("End").is_none() {
            match names.get(i + 1) {
                Some(next) => state["Next"] = json!(next),
                None => state["End"] = json!(true),
            }
        }
        out.insert(name.to_owned(), state);
    }
    json!({"StartAt": names[0], "States": out})
}

/// A Task whose failure `error` is caught into `$.caught` and ends the execution.
pub(crate) fn catching(mut state: Value, error: &str) -> Value {
    state["Catch"] = json!([{"ErrorEquals": [error], "ResultPath": "$.caught", "Next": "Caught"}]);
    state["Next"] = json!("NotCaught");
    state
}

/// The states that follow a [`catching`] Task: `NotCaught` fails the execution.
pub(crate) fn caught_tail() -> Vec<(&'static str, Value)> {
    vec![
        (
            "NotCaught",
            json!({"Type": "Fail", "Error": "NotCaught", "Cause": "the call succeeded"}),
        ),
        ("Caught", json!({"Type": "Pass", "End": true})),
    ]
}

/// What an execution must end with.
pub(crate) enum Want {
    /// SUCCEEDED, each JSON pointer of the output with the value given (`None`: present).
    Output(Vec<(&'static str, Option<Value>)>),
    /// SUCCEEDED after catching the error named: `$.caught.Error`, and the cause containing
    /// the text given.
    Caught(&'static str, &'static str),
}

pub(crate) struct Case {
    pub name: &'static str,
    pub definition: Value,
    pub want: Want,
}

pub(crate) async fn run(
    server: &Server,
    name: &str,
    definition: &Value,
    input: &Value,
) -> (String, Value) {
    let client = server.client();
    let sm = create_machine(&client, name, definition).await;
    let exec = start(&client, &sm, None, input).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    let events = history(&client, &exec).await;
    let status = done.status().as_str().to_owned();
    if status != "SUCCEEDED" {
        panic!(
            "{name}: {status} {:?} {:?}\nhistory: {events:#?}\n{}",
            done.error(),
            done.cause(),
            server.logs()
        );
    }
    (status, parse_json("execution output", done.output()))
}

pub(crate) fn check(case: &Case, output: &Value) {
    match &case.want {
        Want::Output(pointers) => {
            for (pointer, want) in pointers {
                let got = output.pointer(pointer);
                match want {
                    Some(w) => assert_eq!(got, Some(w), "{}: {pointer} in {output:#}", case.name),
                    None => assert!(got.is_some(), "{}: no {pointer} in {output:#}", case.name),
                }
            }
        }
        Want::Caught(error, cause) => {
            assert_eq!(
                output.pointer("/caught/Error"),
                Some(&json!(error)),
                "{}: {output:#}",
                case.name
            );
            let got = output
                .pointer("/caught/Cause")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(got.contains(cause), "{}: cause {got:?}", case.name);
            // The v2 SDK's form names S3's extended request id, as AWS does.
            if got.contains("(Service: S3,") {
                assert!(
                    got.contains(", Extended Request ID: "),
                    "{}: cause {got:?}",
                    case.name
                );
            }
        }
    }
}

/// Creates the table, queue, topic and bucket the cases use, with generic calls (awsJson1_0,
/// awsQuery, restXml).
async fn provision(server: &Server) {
    let definition = chain(vec![
        (
            "Table",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:createTable",
                "Parameters": {
                    "TableName": TABLE,
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST"
                },
                "ResultPath": null}),
        ),
        (
            "Queue",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:createQueue",
                "Parameters": {"QueueName": QUEUE}, "ResultPath": null}),
        ),
        (
            "Topic",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sns:createTopic",
                "Parameters": {"Name": TOPIC}, "ResultPath": null}),
        ),
        (
            "Bucket",
            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:createBucket",
                "Parameters": {"Bucket": BUCKET}, "ResultPath": null}),
        ),
    ]);
    run(server, "provision", &definition, &json!({})).await;
}

fn cases(topic_arn: &str) -> Vec<Case> {
    let key = json!({"id": {"S": "k1"}});
    vec![
        Case {
            name: "dynamodb-sdk-put-get",
            definition: chain(vec![
                (
                    "Put",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                        "Parameters": {"TableName": TABLE, "Item": {"id": {"S": "k1"}, "n": {"N": "5"}}},
                        "ResultPath": null}),
                ),
                (
                    "Get",
                    sdk("dynamodb:getItem", json!({"TableName": TABLE, "Key": key})),
                ),
            ]),
            want: Want::Output(vec![(
                "/Item",
                Some(json!({"id": {"S": "k1"}, "n": {"N": "5"}})),
            )]),
        },
        Case {
            name: "dynamodb-optimized",
            definition: chain(vec![
                (
                    "Put",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                        "Parameters": {"TableName": TABLE, "Item": {"id": {"S": "k2"}, "v": {"S": "a"}}},
                        "ResultSelector": {"Status.$": "$.SdkHttpMetadata.HttpStatusCode"},
                        "ResultPath": "$.put"}),
                ),
                (
                    "Update",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                        "Parameters": {"TableName": TABLE, "Key": {"id": {"S": "k2"}},
                            "UpdateExpression": "SET v = :v",
                            "ExpressionAttributeValues": {":v": {"S": "b"}},
                            "ReturnValues": "UPDATED_NEW"},
                        "ResultSelector": {"Attributes.$": "$.Attributes"},
                        "ResultPath": "$.update"}),
                ),
                (
                    "Get",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                        "Parameters": {"TableName": TABLE, "Key": {"id": {"S": "k2"}}},
                        "ResultPath": "$.get"}),
                ),
                (
                    "Delete",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:deleteItem",
                        "Parameters": {"TableName": TABLE, "Key": {"id": {"S": "k2"}}, "ReturnValues": "ALL_OLD"},
                        "ResultPath": "$.delete"}),
                ),
            ]),
            want: Want::Output(vec![
                ("/put/Status", Some(json!(200))),
                ("/update/Attributes", Some(json!({"v": {"S": "b"}}))),
                ("/get/Item", Some(json!({"id": {"S": "k2"}, "v": {"S": "b"}}))),
                ("/get/SdkHttpMetadata/HttpStatusCode", Some(json!(200))),
                ("/get/SdkResponseMetadata/RequestId", None),
                ("/delete/Attributes/v", Some(json!({"S": "b"}))),
            ]),
        },
        Case {
            name: "dynamodb-conditional-check-caught",
            definition: chain(
                [
                    vec![(
                        "Put",
                        catching(
                            sdk(
                                "dynamodb:putItem",
                                json!({"TableName": TABLE, "Item": {"id": {"S": "k1"}},
                                    "ConditionExpression": "attribute_not_exists(id)"}),
                            ),
                            "DynamoDb.ConditionalCheckFailedException",
                        ),
                    )],
                    caught_tail(),
                ]
                .concat(),
            ),
            want: Want::Caught(
                "DynamoDb.ConditionalCheckFailedException",
                "(Service: DynamoDb, Status Code: 400, Request ID: ",
            ),
        },
        Case {
            name: "dynamodb-optimized-error-caught",
            definition: chain(
                [
                    vec![(
                        "Get",
                        catching(
                            task(
                                "arn:aws:states:::dynamodb:getItem",
                                json!({"TableName": "no-such-table", "Key": key}),
                            ),
                            "DynamoDB.ResourceNotFoundException",
                        ),
                    )],
                    caught_tail(),
                ]
                .concat(),
            ),
            want: Want::Caught(
                "DynamoDB.ResourceNotFoundException",
                "(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ResourceNotFoundException",
            ),
        },
        Case {
            name: "sqs-send-receive",
            definition: chain(vec![
                (
                    "Url",
                    sdk("sqs:getQueueUrl", json!({"QueueName": QUEUE})),
                ),
                (
                    "Send",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                        "Parameters": {"QueueUrl.$": "$.QueueUrl", "MessageBody": {"hello": "world"}},
                        "ResultPath": "$.sent"}),
                ),
                (
                    "Receive",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:receiveMessage",
                        "Parameters": {"QueueUrl.$": "$.QueueUrl", "WaitTimeSeconds": 1},
                        "ResultPath": "$.received"}),
                ),
            ]),
            want: Want::Output(vec![
                ("/sent/MessageId", None),
                ("/sent/MD5OfMessageBody", None),
                ("/sent/SdkHttpMetadata/HttpStatusCode", Some(json!(200))),
                ("/received/Messages/0/Body", Some(json!(r#"{"hello":"world"}"#))),
            ]),
        },
        Case {
            name: "sqs-wait-for-task-token",
            definition: chain(vec![
                ("Url", sdk("sqs:getQueueUrl", json!({"QueueName": QUEUE}))),
                (
                    "Both",
                    json!({"Type": "Parallel", "Branches": [
                        chain(vec![(
                            "Send",
                            task(
                                "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                                json!({"QueueUrl.$": "$.QueueUrl",
                                    "MessageBody": {"token.$": "$$.Task.Token"}}),
                            ),
                        )]),
                        chain(vec![
                            (
                                "Receive",
                                json!({"Type": "Task",
                                    "Resource": "arn:aws:states:::aws-sdk:sqs:receiveMessage",
                                    "Parameters": {"QueueUrl.$": "$.QueueUrl", "WaitTimeSeconds": 5},
                                    "OutputPath": "$.Messages[0]"}),
                            ),
                            (
                                "Parse",
                                json!({"Type": "Pass",
                                    "Parameters": {"message.$": "States.StringToJson($.Body)"}}),
                            ),
                            (
                                "Answer",
                                sdk("sfn:sendTaskSuccess", json!({
                                    "TaskToken.$": "$.message.token",
                                    "Output": "{\"answered\": true}"})),
                            ),
                        ]),
                    ]}),
                ),
            ]),
            want: Want::Output(vec![("/0", Some(json!({"answered": true})))]),
        },
        Case {
            name: "sns-publish",
            definition: chain(vec![(
                "Publish",
                task(
                    "arn:aws:states:::sns:publish",
                    json!({"TopicArn": topic_arn, "Message": {"a": 1}}),
                ),
            )]),
            want: Want::Output(vec![
                ("/MessageId", None),
                ("/SdkHttpMetadata/HttpStatusCode", Some(json!(200))),
            ]),
        },
        Case {
            name: "sns-publish-missing-topic-caught",
            definition: chain(
                [
                    vec![(
                        "Publish",
                        catching(
                            task(
                                "arn:aws:states:::sns:publish",
                                json!({"TopicArn": format!("{topic_arn}-gone"), "Message": "m"}),
                            ),
                            "SNS.NotFoundException",
                        ),
                    )],
                    caught_tail(),
                ]
                .concat(),
            ),
            want: Want::Caught("SNS.NotFoundException", "(Service: AmazonSNS; Status Code: 404"),
        },
        Case {
            name: "eventbridge-put-events",
            definition: chain(vec![(
                "Put",
                task(
                    "arn:aws:states:::events:putEvents",
                    json!({"Entries": [{"Detail": {"a": 1}, "DetailType": "t", "Source": "stepwise.test"}]}),
                ),
            )]),
            want: Want::Output(vec![
                ("/FailedEntryCount", Some(json!(0))),
                ("/Entries/0/EventId", None),
            ]),
        },
        Case {
            name: "s3-put-get-delete-and-missing-key",
            definition: chain(
                [
                    vec![
                        (
                            "Put",
                            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                                "Parameters": {"Bucket": BUCKET, "Key": "dir/a b.txt", "Body": "hello"},
                                "ResultPath": "$.put"}),
                        ),
                        (
                            "Get",
                            json!({"Type": "Task", "Resource": "arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject",
                                "Parameters": {"Bucket": BUCKET, "Key": "dir/a b.txt"},
                                "ResultPath": "$.got"}),
                        ),
                        (
                            "Delete",
                            json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:deleteObjects",
                                "Parameters": {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": "dir/a b.txt"}]}},
                                "ResultPath": "$.deleted"}),
                        ),
                        (
                            "Missing",
                            catching(
                                sdk("s3:getObject", json!({"Bucket": BUCKET, "Key": "nope"})),
                                "S3.NoSuchKeyException",
                            ),
                        ),
                    ],
                    caught_tail(),
                ]
                .concat(),
            ),
            want: Want::Output(vec![
                ("/put/ETag", None),
                ("/got/Body", Some(json!("hello"))),
                ("/got/ContentLength", Some(json!(5))),
                ("/deleted/Deleted/0/Key", Some(json!("dir/a b.txt"))),
                ("/caught/Error", Some(json!("S3.NoSuchKeyException"))),
            ]),
        },
        Case {
            // moto sends no x-amz-id-2; the error body's HostId is the same id.
            name: "s3-error-has-the-extended-request-id",
            definition: chain(
                [
                    vec![(
                        "Missing",
                        catching(
                            sdk(
                                "s3:getObject",
                                json!({"Bucket": "no-such-bucket-here", "Key": "k"}),
                            ),
                            "S3.NoSuchBucketException",
                        ),
                    )],
                    caught_tail(),
                ]
                .concat(),
            ),
            want: Want::Caught(
                "S3.NoSuchBucketException",
                "The specified bucket does not exist (Service: S3, Status Code: 404, Request ID: ",
            ),
        },
        Case {
            name: "lambda-list-functions-rest-json",
            definition: chain(vec![("List", sdk("lambda:listFunctions", json!({})))]),
            want: Want::Output(vec![("/Functions", Some(json!([])))]),
        },
        Case {
            name: "ec2-describe-vpcs",
            definition: chain(vec![("Vpcs", sdk("ec2:describeVpcs", json!({})))]),
            want: Want::Output(vec![("/Vpcs/0/VpcId", None), ("/Vpcs/0/IsDefault", Some(json!(true)))]),
        },
        Case {
            name: "sts-caller-identity-query-with-region-arn",
            definition: chain(vec![(
                "Who",
                task(
                    "arn:aws:states:us-east-1:123456789012:aws-sdk:sts:getCallerIdentity",
                    json!({}),
                ),
            )]),
            want: Want::Output(vec![("/Account", None), ("/Arn", None)]),
        },
    ]
}

/// Each optimized integration and a generic call over every protocol, against moto.
#[tokio::test]
async fn services_against_moto() {
    let moto = Moto::start().await;
    let server = Server::start_with_args(Options::default(), &["--aws-endpoint", moto.endpoint()]);
    provision(&server).await;
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{TOPIC}");
    for (i, case) in cases(&topic_arn).iter().enumerate() {
        let (_, output) = run(&server, &format!("case-{i}"), &case.definition, &json!({})).await;
        check(case, &output);
    }
}

/// A per-service `--endpoint` wins over `--aws-endpoint`: DynamoDB sent to a closed port fails
/// with `DynamoDb.SdkClientException` (caught), Kinesis sent to a page that answers HTML fails
/// the same way ("Unable to unmarshall response"), while SQS still reaches moto. Unknown
/// services and actions fail with `States.Runtime` naming the resource.
#[tokio::test]
async fn endpoint_overrides_and_unreachable_services() {
    let moto = Moto::start().await;
    let closed = format!("dynamodb=http://127.0.0.1:{}", common::free_port());
    let html = format!("kinesis={}/moto-api", moto.endpoint());
    let server = Server::start_with_args(
        Options::default(),
        &[
            "--aws-endpoint",
            moto.endpoint(),
            "--endpoint",
            &closed,
            "--endpoint",
            &html,
        ],
    );
    let definition = chain(
        [
            vec![
                (
                    "Queue",
                    json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:createQueue",
                        "Parameters": {"QueueName": "reachable"}, "ResultPath": "$.queue"}),
                ),
                (
                    "Get",
                    catching(
                        sdk(
                            "dynamodb:getItem",
                            json!({"TableName": TABLE, "Key": {"id": {"S": "x"}}}),
                        ),
                        "DynamoDb.SdkClientException",
                    ),
                ),
            ],
            caught_tail(),
        ]
        .concat(),
    );
    let (_, output) = run(&server, "unreachable", &definition, &json!({})).await;
    assert!(output.pointer("/queue/QueueUrl").is_some(), "{output:#}");
    let cause = output
        .pointer("/caught/Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        cause.starts_with("Unable to execute HTTP request"),
        "{cause}"
    );
    let definition = chain(
        [
            vec![(
                "List",
                catching(
                    sdk("kinesis:listStreams", json!({})),
                    "Kinesis.SdkClientException",
                ),
            )],
            caught_tail(),
        ]
        .concat(),
    );
    let (_, output) = run(&server, "not-json", &definition, &json!({})).await;
    let cause = output
        .pointer("/caught/Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        cause.starts_with("Unable to unmarshall response"),
        "{cause}"
    );

    let client = server.client();
    // A service without a shipped model, and a nested field (in an object given by a path)
    // the action does not take, fail when called.
    for (name, resource, params, want) in [
        (
            "no-model",
            "arn:aws:states:::aws-sdk:nosuchservice:doIt",
            json!({"Bogus": 1}),
            "no model of this service",
        ),
        (
            "no-field",
            "arn:aws:states:::aws-sdk:dynamodb:putItem",
            json!({"TableName": "t", "Item.$": "$.item"}),
            "The field 'Bogus' is not supported",
        ),
    ] {
        let definition = chain(vec![("T", task(resource, params))]);
        let sm = create_machine(&client, name, &definition).await;
        let input = json!({"item": {"id": {"Bogus": 1}}});
        let exec = start(&client, &sm, None, &input).await;
        let done = wait_done(&client, &exec, DONE_WITHIN).await;
        assert_eq!(done.error(), Some("States.Runtime"), "{name}");
        assert!(
            done.cause().unwrap_or_default().contains(want),
            "{name}: {:?}",
            done.cause()
        );
    }
    // An action or a top-level field a shipped model does not have is refused at creation.
    for (name, resource) in [
        (
            "no-action",
            "arn:aws:states:::aws-sdk:dynamodb:noSuchAction",
        ),
        ("no-top-field", "arn:aws:states:::aws-sdk:sqs:listQueues"),
    ] {
        let definition = chain(vec![("T", task(resource, json!({"Bogus": 1})))]);
        let created = client
            .create_state_machine()
            .name(name)
            .role_arn("arn:aws:iam::123456789012:role/r")
            .definition(definition.to_string())
            .send()
            .await;
        let e = created.expect_err(name).into_service_error();
        assert!(e.is_invalid_definition(), "{name}: {e:?}");
    }
}
