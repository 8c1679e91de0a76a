//! State machine versions and aliases, end to end through aws-sdk-sfn: publishing (also on
//! create and update), listing and deleting versions, the alias lifecycle, AWS's conflict and
//! validation errors, executions on version and alias ARNs, and weighted alias routing.

use crate::common;

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::{ExecutionStatus, RoutingConfigurationListItem, Tag};
use common::{history, parse_json, start, wait_done, Server, ROLE_ARN};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(15);

/// A one-state machine whose output names the revision it was published from.
fn definition(tag: &str) -> Value {
    json!({
        "Comment": tag,
        "StartAt": "Tag",
        "States": { "Tag": { "Type": "Pass", "Result": { "revision": tag }, "End": true } }
    })
}

/// The error code and message of a failed call.
fn error_of<T: std::fmt::Debug, E: ProvideErrorMetadata>(
    what: &str,
    r: Result<T, E>,
) -> (String, String) {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or_default().to_owned(),
            e.message().unwrap_or_default().to_owned(),
        ),
    }
}

fn route(version_arn: &str, weight: i32) -> RoutingConfigurationListItem {
    RoutingConfigurationListItem::builder()
        .state_machine_version_arn(version_arn)
        .weight(weight)
        .build()
        .expect("a routing configuration item")
}

async fn create_published(client: &aws_sdk_sfn::Client, name: &str, tag: &str) -> (String, String) {
    let out = client
        .create_state_machine()
        .name(name)
        .definition(definition(tag).to_string())
        .role_arn(ROLE_ARN)
        .publish(true)
        .version_description(format!("first: {tag}"))
        .send()
        .await
        .expect("CreateStateMachine with publish");
    let version = out
        .state_machine_version_arn()
        .expect("CreateStateMachine with publish answers the version ARN")
        .to_owned();
    (out.state_machine_arn().to_owned(), version)
}

/// Updates the definition, publishing it; returns the new version's ARN.
async fn update_published(client: &aws_sdk_sfn::Client, sm: &str, tag: &str) -> String {
    client
        .update_state_machine()
        .state_machine_arn(sm)
        .definition(definition(tag).to_string())
        .publish(true)
        .send()
        .await
        .expect("UpdateStateMachine with publish")
        .state_machine_version_arn()
        .expect("UpdateStateMachine with publish answers the version ARN")
        .to_owned()
}

async fn version_numbers(client: &aws_sdk_sfn::Client, sm: &str) -> Vec<String> {
    client
        .list_state_machine_versions()
        .state_machine_arn(sm)
        .send()
        .await
        .expect("ListStateMachineVersions")
        .state_machine_versions()
        .iter()
        .map(|v| {
            v.state_machine_version_arn()
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn output_of(client: &aws_sdk_sfn::Client, exec: &str) -> Value {
    let d = wait_done(client, exec, DONE_WITHIN).await;
    assert_eq!(*d.status(), ExecutionStatus::Succeeded, "{exec}");
    parse_json("execution output", d.output())
}

#[tokio::test]
async fn versions_publish_list_and_delete() {
    let server = Server::memory(0.1);
    let client = server.client();
    let (sm, v1) = create_published(&client, "versions", "r0").await;
    assert_eq!(v1, format!("{sm}:1"));

    let d = client
        .describe_state_machine()
        .state_machine_arn(&v1)
        .send()
        .await
        .expect("DescribeStateMachine on a version ARN");
    assert_eq!(d.state_machine_arn(), v1);
    assert_eq!(d.name(), "versions");
    assert_eq!(d.description(), Some("first: r0"));
    assert_eq!(
        parse_json("definition", Some(d.definition())),
        definition("r0")
    );

    // Publishing the same revision again returns the same version.
    let again = client
        .publish_state_machine_version()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("PublishStateMachineVersion");
    assert_eq!(again.state_machine_version_arn(), v1);

    let v2 = update_published(&client, &sm, "r1").await;
    assert_eq!(v2, format!("{sm}:2"));
    let current = client
        .describe_state_machine()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("DescribeStateMachine");
    let revision = current
        .revision_id()
        .expect("a revision after an update")
        .to_owned();
    let d2 = client
        .describe_state_machine()
        .state_machine_arn(&v2)
        .send()
        .await
        .expect("DescribeStateMachine on version 2");
    assert_eq!(d2.revision_id(), Some(revision.as_str()));

    // An update that changes nothing keeps the revision, so publishing returns version 2.
    let same = update_published(&client, &sm, "r1").await;
    assert_eq!(same, v2);

    // revisionId must be the current revision.
    let (code, message) = error_of(
        "publish a stale revision",
        client
            .publish_state_machine_version()
            .state_machine_arn(&sm)
            .revision_id("00000000-0000-4000-8000-000000000000")
            .send()
            .await,
    );
    assert_eq!(code, "ConflictException");
    assert_eq!(
        message,
        format!("Failed to publish the State Machine version for revision 00000000-0000-4000-8000-000000000000. The current State Machine revision is {revision}.")
    );
    let ok = client
        .publish_state_machine_version()
        .state_machine_arn(&sm)
        .revision_id(&revision)
        .description("the current revision")
        .send()
        .await
        .expect("PublishStateMachineVersion with the current revisionId");
    assert_eq!(ok.state_machine_version_arn(), v2);

    let v3 = update_published(&client, &sm, "r2").await;
    assert_eq!(version_numbers(&client, &sm).await, ["3", "2", "1"]);

    // Pagination.
    let page1 = client
        .list_state_machine_versions()
        .state_machine_arn(&sm)
        .max_results(2)
        .send()
        .await
        .expect("first page");
    assert_eq!(page1.state_machine_versions().len(), 2);
    let token = page1.next_token().expect("a next token").to_owned();
    let page2 = client
        .list_state_machine_versions()
        .state_machine_arn(&sm)
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .expect("second page");
    assert_eq!(page2.state_machine_versions().len(), 1);
    assert_eq!(
        page2.state_machine_versions()[0].state_machine_version_arn(),
        v1
    );
    assert!(page2.next_token().is_none());

    // Deleting a version; its number is not reused.
    client
        .delete_state_machine_version()
        .state_machine_version_arn(&v3)
        .send()
        .await
        .expect("DeleteStateMachineVersion");
    client
        .delete_state_machine_version()
        .state_machine_version_arn(&v3)
        .send()
        .await
        .expect("deleting a deleted version succeeds");
    assert_eq!(version_numbers(&client, &sm).await, ["2", "1"]);
    let (code, _) = error_of(
        "describe a deleted version",
        client
            .describe_state_machine()
            .state_machine_arn(&v3)
            .send()
            .await,
    );
    assert_eq!(code, "StateMachineDoesNotExist");
    let v4 = client
        .publish_state_machine_version()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("publish after a delete")
        .state_machine_version_arn()
        .to_owned();
    assert_eq!(v4, format!("{sm}:4"));

    // Versions are read-only and untaggable.
    let (code, message) = error_of(
        "update a version",
        client
            .update_state_machine()
            .state_machine_arn(&v2)
            .definition(definition("nope").to_string())
            .send()
            .await,
    );
    assert_eq!(code, "StateMachineDoesNotExist");
    assert_eq!(message, format!("State Machine Does Not Exist: '{v2}'"));
    let (code, _) = error_of(
        "tag a version",
        client
            .tag_resource()
            .resource_arn(&v2)
            .tags(Tag::builder().key("k").value("v").build())
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFound");

    let (code, message) = error_of(
        "versionDescription without publish",
        client
            .update_state_machine()
            .state_machine_arn(&sm)
            .definition(definition("r3").to_string())
            .version_description("no")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Version description can only be set when publish is true"
    );
    let (code, message) = error_of(
        "publish on an invalid ARN",
        client
            .publish_state_machine_version()
            .state_machine_arn("invalid_arn")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArn");
    assert_eq!(message, "Invalid Arn: 'Invalid ARN prefix: invalid_arn'");

    // Deleting the state machine deletes its versions.
    client
        .delete_state_machine()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("DeleteStateMachine");
    let (code, _) = error_of(
        "describe a version of a deleted state machine",
        client
            .describe_state_machine()
            .state_machine_arn(&v1)
            .send()
            .await,
    );
    assert_eq!(code, "StateMachineDoesNotExist");
}

#[tokio::test]
async fn aliases_lifecycle_and_errors() {
    let server = Server::memory(0.1);
    let client = server.client();
    let (sm, v1) = create_published(&client, "aliased", "r0").await;
    let v2 = update_published(&client, &sm, "r1").await;

    let created = client
        .create_state_machine_alias()
        .name("live")
        .description("production")
        .routing_configuration(route(&v1, 100))
        .send()
        .await
        .expect("CreateStateMachineAlias");
    let alias = created.state_machine_alias_arn().to_owned();
    assert_eq!(alias, format!("{sm}:live"));

    // Idempotent with the same settings, a conflict with others.
    let again = client
        .create_state_machine_alias()
        .name("live")
        .description("production")
        .routing_configuration(route(&v1, 100))
        .send()
        .await
        .expect("the same CreateStateMachineAlias again");
    assert_eq!(again.state_machine_alias_arn(), alias);
    let (code, message) = error_of(
        "an alias of the same name with other routing",
        client
            .create_state_machine_alias()
            .name("live")
            .description("production")
            .routing_configuration(route(&v2, 100))
            .send()
            .await,
    );
    assert_eq!(code, "ConflictException");
    assert_eq!(
        message,
        "Failed to create alias because an alias with the same name and a different routing configuration already exists."
    );

    // Validation of the routing configuration and the name.
    let (code, message) = error_of(
        "weights that do not sum to 100",
        client
            .create_state_machine_alias()
            .name("bad-weights")
            .routing_configuration(route(&v1, 60))
            .routing_configuration(route(&v2, 30))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "The sum of the weights in the routing configuration must be equal to 100."
    );
    let (code, message) = error_of(
        "a state machine ARN in the routing",
        client
            .create_state_machine_alias()
            .name("unversioned")
            .routing_configuration(route(&sm, 100))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        format!("Routing configuration must contain state machine version ARNs. Received: [{sm}]")
    );
    let v3 = update_published(&client, &sm, "r2").await;
    let (code, _) = error_of(
        "three versions",
        client
            .create_state_machine_alias()
            .name("three")
            .routing_configuration(route(&v1, 40))
            .routing_configuration(route(&v2, 30))
            .routing_configuration(route(&v3, 30))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, message) = error_of(
        "an all-digit alias name",
        client
            .create_state_machine_alias()
            .name("123")
            .routing_configuration(route(&v1, 100))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("regular expression pattern"), "{message}");

    // Update: the description, then the routing.
    client
        .update_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .description("new description")
        .send()
        .await
        .expect("UpdateStateMachineAlias description");
    let d = client
        .describe_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .send()
        .await
        .expect("DescribeStateMachineAlias");
    assert_eq!(d.name(), Some("live"));
    assert_eq!(d.description(), Some("new description"));
    assert_eq!(d.routing_configuration().len(), 1);
    assert!(d.update_date().is_some() && d.creation_date().is_some());
    client
        .update_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .routing_configuration(route(&v1, 50))
        .routing_configuration(route(&v2, 50))
        .send()
        .await
        .expect("UpdateStateMachineAlias routing");
    let d = client
        .describe_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .send()
        .await
        .expect("DescribeStateMachineAlias after a routing update");
    let routes: Vec<(String, i32)> = d
        .routing_configuration()
        .iter()
        .map(|r| (r.state_machine_version_arn().to_owned(), r.weight()))
        .collect();
    assert_eq!(routes, vec![(v1.clone(), 50), (v2.clone(), 50)]);
    assert_eq!(d.description(), Some("new description"));

    // Listing: all aliases of the machine, or those that route to a version.
    client
        .create_state_machine_alias()
        .name("beta")
        .routing_configuration(route(&v3, 100))
        .send()
        .await
        .expect("a second alias");
    let list = |arn: String| {
        let client = client.clone();
        async move {
            client
                .list_state_machine_aliases()
                .state_machine_arn(arn)
                .send()
                .await
                .expect("ListStateMachineAliases")
                .state_machine_aliases()
                .iter()
                .map(|a| a.state_machine_alias_arn().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(sm.clone()).await,
        vec![format!("{sm}:beta"), alias.clone()]
    );
    assert_eq!(list(v3.clone()).await, vec![format!("{sm}:beta")]);
    let paged = client
        .list_state_machine_aliases()
        .state_machine_arn(&sm)
        .max_results(1)
        .send()
        .await
        .expect("a page of aliases");
    assert_eq!(paged.state_machine_aliases().len(), 1);
    assert!(paged.next_token().is_some());

    // A version an alias routes to cannot be deleted.
    let (code, _) = error_of(
        "delete a version an alias routes to",
        client
            .delete_state_machine_version()
            .state_machine_version_arn(&v2)
            .send()
            .await,
    );
    assert_eq!(code, "ConflictException");

    // Delete: idempotent; afterwards the alias is not found.
    for _ in 0..2 {
        client
            .delete_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .send()
            .await
            .expect("DeleteStateMachineAlias");
    }
    let (code, message) = error_of(
        "describe a deleted alias",
        client
            .describe_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFound");
    assert_eq!(
        message,
        "Request references a resource that does not exist."
    );
    let (code, _) = error_of(
        "update a deleted alias",
        client
            .update_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .description("gone")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFound");
    client
        .delete_state_machine_version()
        .state_machine_version_arn(&v2)
        .send()
        .await
        .expect("once no alias routes to it, the version can be deleted");

    // Deleting the state machine deletes its aliases.
    client
        .delete_state_machine()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("DeleteStateMachine");
    let (code, _) = error_of(
        "describe an alias of a deleted state machine",
        client
            .describe_state_machine_alias()
            .state_machine_alias_arn(format!("{sm}:beta"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFound");
}

#[tokio::test]
async fn executions_on_version_and_alias_arns() {
    let server = Server::sqlite(0.1);
    let client = server.client();
    let (sm, v1) = create_published(&client, "runs", "r0").await;
    let alias = client
        .create_state_machine_alias()
        .name("prod")
        .routing_configuration(route(&v1, 100))
        .send()
        .await
        .expect("CreateStateMachineAlias")
        .state_machine_alias_arn()
        .to_owned();
    // The state machine moves on; the version and the alias keep running revision r0.
    client
        .update_state_machine()
        .state_machine_arn(&sm)
        .definition(definition("latest").to_string())
        .send()
        .await
        .expect("UpdateStateMachine");

    let on_latest = start(&client, &sm, Some("latest"), &json!({})).await;
    let on_version = start(&client, &v1, Some("version"), &json!({})).await;
    let on_alias = start(&client, &alias, Some("alias"), &json!({})).await;
    assert_eq!(
        on_version,
        format!("{}:version", sm.replace(":stateMachine:", ":execution:"))
    );
    assert_eq!(
        output_of(&client, &on_latest).await,
        json!({ "revision": "latest" })
    );
    assert_eq!(
        output_of(&client, &on_version).await,
        json!({ "revision": "r0" })
    );
    assert_eq!(
        output_of(&client, &on_alias).await,
        json!({ "revision": "r0" })
    );

    let described = |arn: String| {
        let client = client.clone();
        async move {
            let d = client
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("DescribeExecution");
            (
                d.state_machine_arn().to_owned(),
                d.state_machine_version_arn().map(str::to_owned),
                d.state_machine_alias_arn().map(str::to_owned),
            )
        }
    };
    assert_eq!(described(on_latest.clone()).await, (sm.clone(), None, None));
    assert_eq!(
        described(on_version.clone()).await,
        (sm.clone(), Some(v1.clone()), None)
    );
    assert_eq!(
        described(on_alias.clone()).await,
        (sm.clone(), Some(v1.clone()), Some(alias.clone()))
    );

    // The ExecutionStarted event records them too.
    let events = history(&client, &on_alias).await;
    let started = events[0]
        .execution_started_event_details()
        .expect("ExecutionStarted first");
    assert_eq!(started.state_machine_alias_arn(), Some(alias.as_str()));
    assert_eq!(started.state_machine_version_arn(), Some(v1.as_str()));

    // DescribeStateMachineForExecution shows the definition the execution ran.
    let for_exec = client
        .describe_state_machine_for_execution()
        .execution_arn(&on_version)
        .send()
        .await
        .expect("DescribeStateMachineForExecution");
    assert_eq!(for_exec.state_machine_arn(), sm);
    assert_eq!(
        parse_json("definition", Some(for_exec.definition())),
        definition("r0")
    );

    // ListExecutions: the state machine lists all; a version or an alias ARN its own.
    let listed = |arn: String| {
        let client = client.clone();
        async move {
            let mut names: Vec<(String, Option<String>, Option<String>)> = client
                .list_executions()
                .state_machine_arn(arn)
                .send()
                .await
                .expect("ListExecutions")
                .executions()
                .iter()
                .map(|e| {
                    (
                        e.name().to_owned(),
                        e.state_machine_version_arn().map(str::to_owned),
                        e.state_machine_alias_arn().map(str::to_owned),
                    )
                })
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        listed(sm.clone()).await,
        vec![
            ("alias".to_owned(), Some(v1.clone()), Some(alias.clone())),
            ("latest".to_owned(), None, None),
            ("version".to_owned(), Some(v1.clone()), None),
        ]
    );
    let names = |l: Vec<(String, Option<String>, Option<String>)>| {
        l.into_iter().map(|(n, _, _)| n).collect::<Vec<_>>()
    };
    assert_eq!(names(listed(v1.clone()).await), ["alias", "version"]);
    assert_eq!(names(listed(alias.clone()).await), ["alias"]);

    // Unknown versions and aliases.
    let (code, _) = error_of(
        "start an unknown version",
        client
            .start_execution()
            .state_machine_arn(format!("{sm}:9"))
            .send()
            .await,
    );
    assert_eq!(code, "StateMachineDoesNotExist");
    let (code, _) = error_of(
        "start an unknown alias",
        client
            .start_execution()
            .state_machine_arn(format!("{sm}:nope"))
            .send()
            .await,
    );
    assert_eq!(code, "StateMachineDoesNotExist");
}

#[tokio::test]
async fn alias_routes_by_weight() {
    const RUNS: usize = 200;
    let server = Server::memory(0.1);
    let client = server.client();
    let (sm, v1) = create_published(&client, "weighted", "r0").await;
    let v2 = update_published(&client, &sm, "r1").await;
    let alias = client
        .create_state_machine_alias()
        .name("canary")
        .routing_configuration(route(&v1, 70))
        .routing_configuration(route(&v2, 30))
        .send()
        .await
        .expect("CreateStateMachineAlias 70/30")
        .state_machine_alias_arn()
        .to_owned();
    let mut arns = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        arns.push(start(&client, &alias, Some(&format!("run-{i}")), &json!({})).await);
    }
    let (mut on_v1, mut on_v2) = (0, 0);
    for arn in &arns {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        let output = parse_json("output", d.output());
        match d.state_machine_version_arn() {
            Some(v) if v == v1 => {
                assert_eq!(output, json!({ "revision": "r0" }), "{arn} ran version 1");
                on_v1 += 1;
            }
            Some(v) if v == v2 => {
                assert_eq!(output, json!({ "revision": "r1" }), "{arn} ran version 2");
                on_v2 += 1;
            }
            other => panic!("{arn}: unexpected version {other:?}"),
        }
        assert_eq!(d.state_machine_alias_arn(), Some(alias.as_str()));
    }
    // Expected 140/60; the band is more than 4 standard deviations (6.5) wide on each side.
    assert!(
        (110..=170).contains(&on_v1),
        "70/30 routing over {RUNS} executions gave {on_v1}/{on_v2}"
    );
    assert_eq!(on_v1 + on_v2, RUNS);

    // All traffic to one version after an update.
    client
        .update_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .routing_configuration(route(&v1, 0))
        .routing_configuration(route(&v2, 100))
        .send()
        .await
        .expect("UpdateStateMachineAlias 0/100");
    for i in 0..20 {
        let arn = start(&client, &alias, Some(&format!("after-{i}")), &json!({})).await;
        let d = wait_done(&client, &arn, DONE_WITHIN).await;
        assert_eq!(d.state_machine_version_arn(), Some(v2.as_str()));
    }
}
