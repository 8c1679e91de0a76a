//! The operations: request members in, engine call, response shape out.

use engine::{
    CreateAlias, CreateStateMachine, Engine, FieldValidation, HistoryQuery, MapRunUpdate, Route,
    TestMock, TestStateConfiguration, TestStateRequest, UpdateStateMachine,
};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::wire;

/// What every handler gets besides the request body.
pub struct Request<'a> {
    pub engine: &'a Engine,
    pub region: &'a str,
    /// The caller's account: the signing key's with `--auth sigv4`, else `--account-id`.
    pub account: &'a str,
    pub body: &'a Map<String, Value>,
}

impl Request<'_> {
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        self.body
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A member from one of the model's enums (validation has already checked its value).
    fn word<T: std::str::FromStr<Err = engine::UnknownWord>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ApiError> {
        self.str(key)
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| ApiError::validation(format!("Invalid '{key}': {e}")))
    }

    /// A member the model requires (validation has already checked it is there).
    pub(crate) fn required(&self, key: &str) -> Result<String, ApiError> {
        self.str(key).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }

    pub(crate) fn usize(&self, key: &str) -> usize {
        self.body.get(key).and_then(Value::as_u64).unwrap_or(0) as usize
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        self.body.get(key).and_then(Value::as_bool)
    }

    fn json_text(&self, key: &str) -> Option<String> {
        self.body
            .get(key)
            .filter(|v| !v.is_null())
            .map(Value::to_string)
    }

    fn tags(&self) -> Vec<(String, String)> {
        let Some(Value::Array(items)) = self.body.get("tags") else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|t| {
                let key = t.get("key")?.as_str()?.to_owned();
                let value = t
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                Some((key, value))
            })
            .collect()
    }
}

type OpResult = Result<Value, ApiError>;

/// Dispatches a known operation; `None` for operations this build does not implement.
pub async fn dispatch(op: &str, r: &Request<'_>) -> Option<OpResult> {
    Some(match op {
        "CreateStateMachine" => create_state_machine(r).await,
        "DescribeStateMachine" => describe_state_machine(r).await,
        "UpdateStateMachine" => update_state_machine(r).await,
        "DeleteStateMachine" => delete_state_machine(r).await,
        "ListStateMachines" => list_state_machines(r).await,
        "ValidateStateMachineDefinition" => validate_definition(r),
        "StartExecution" => start_execution(r).await,
        "StartSyncExecution" => start_sync_execution(r).await,
        "DescribeExecution" => describe_execution(r).await,
        "DescribeStateMachineForExecution" => describe_state_machine_for_execution(r).await,
        "ListExecutions" => list_executions(r).await,
        "GetExecutionHistory" => get_execution_history(r).await,
        "StopExecution" => stop_execution(r).await,
        "TagResource" => tag_resource(r).await,
        "UntagResource" => untag_resource(r).await,
        "ListTagsForResource" => list_tags(r).await,
        "CreateActivity" => create_activity(r).await,
        "DescribeActivity" => describe_activity(r).await,
        "DeleteActivity" => delete_activity(r).await,
        "ListActivities" => list_activities(r).await,
        "GetActivityTask" => get_activity_task(r).await,
        "SendTaskSuccess" => send_task_success(r).await,
        "SendTaskFailure" => send_task_failure(r).await,
        "SendTaskHeartbeat" => send_task_heartbeat(r).await,
        "RedriveExecution" => redrive_execution(r).await,
        "PublishStateMachineVersion" => publish_state_machine_version(r).await,
        "ListStateMachineVersions" => list_state_machine_versions(r).await,
        "DeleteStateMachineVersion" => delete_state_machine_version(r).await,
        "CreateStateMachineAlias" => create_state_machine_alias(r).await,
        "DescribeStateMachineAlias" => describe_state_machine_alias(r).await,
        "UpdateStateMachineAlias" => update_state_machine_alias(r).await,
        "DeleteStateMachineAlias" => delete_state_machine_alias(r).await,
        "ListStateMachineAliases" => list_state_machine_aliases(r).await,
        "DescribeMapRun" => describe_map_run(r).await,
        "ListMapRuns" => list_map_runs(r).await,
        "UpdateMapRun" => update_map_run(r).await,
        "TestState" => test_state(r).await,
        _ => return None,
    })
}

/// `versionDescription` is only allowed together with `publish: true`.
fn check_version_description(r: &Request<'_>) -> Result<bool, ApiError> {
    let publish = r.bool("publish") == Some(true);
    if !publish && r.body.contains_key("versionDescription") {
        return Err(ApiError::validation(
            "Version description can only be set when publish is true",
        ));
    }
    Ok(publish)
}

async fn create_state_machine(r: &Request<'_>) -> OpResult {
    let publish = check_version_description(r)?;
    let sm = r
        .engine
        .create_state_machine(CreateStateMachine {
            region: r.region.to_owned(),
            account: r.account.to_owned(),
            name: r.required("name")?,
            definition: r.required("definition")?,
            role_arn: r.required("roleArn")?,
            kind: r.word("type")?,
            logging_configuration: r.json_text("loggingConfiguration"),
            tracing_configuration: r.json_text("tracingConfiguration"),
            tags: r.tags(),
        })
        .await?;
    let mut out =
        json!({ "stateMachineArn": sm.arn, "creationDate": wire::timestamp(sm.creation_date) });
    if publish {
        let v = r
            .engine
            .publish_state_machine_version(&sm.arn, None, r.str("versionDescription"))
            .await?;
        out["stateMachineVersionArn"] = json!(v.arn);
    }
    Ok(out)
}

async fn describe_state_machine(r: &Request<'_>) -> OpResult {
    let sm = r
        .engine
        .describe_state_machine(&r.required("stateMachineArn")?)
        .await?;
    Ok(wire::describe_state_machine(&sm))
}

async fn update_state_machine(r: &Request<'_>) -> OpResult {
    let publish = check_version_description(r)?;
    let sm = r
        .engine
        .update_state_machine(UpdateStateMachine {
            arn: r.required("stateMachineArn")?,
            definition: r.str("definition"),
            role_arn: r.str("roleArn"),
            logging_configuration: r.json_text("loggingConfiguration"),
            tracing_configuration: r.json_text("tracingConfiguration"),
        })
        .await?;
    let mut out =
        json!({ "updateDate": wire::timestamp(sm.update_date.unwrap_or(sm.creation_date)) });
    if let (Some(id), Some(o)) = (&sm.revision_id, out.as_object_mut()) {
        o.insert("revisionId".into(), json!(id));
    }
    if publish {
        let v = r
            .engine
            .publish_state_machine_version(&sm.arn, None, r.str("versionDescription"))
            .await?;
        out["stateMachineVersionArn"] = json!(v.arn);
    }
    Ok(out)
}

async fn delete_state_machine(r: &Request<'_>) -> OpResult {
    r.engine
        .delete_state_machine(&r.required("stateMachineArn")?)
        .await?;
    Ok(json!({}))
}

/// Offset-based pagination over an already sorted list.
pub(crate) fn page<T>(
    items: Vec<T>,
    max_results: usize,
    token: Option<String>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        Some(t) => t
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::sfn("InvalidToken", format!("Invalid Token: '{t}'")))?,
        None => 0,
    };
    let size = if max_results == 0 { 100 } else { max_results };
    let total = items.len();
    let end = (start + size).min(total);
    let next = (end < total).then(|| format!("o{end}"));
    Ok((items.into_iter().skip(start).take(size).collect(), next))
}

async fn list_state_machines(r: &Request<'_>) -> OpResult {
    let all = r.engine.list_state_machines(r.region, r.account).await?;
    let (items, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let machines: Vec<Value> = items
        .iter()
        .map(|sm| {
            json!({
                "stateMachineArn": sm.arn,
                "name": sm.name,
                "type": sm.kind,
                "creationDate": wire::timestamp(sm.creation_date),
            })
        })
        .collect();
    let mut out = json!({ "stateMachines": machines });
    with_token(&mut out, next);
    Ok(out)
}

pub(crate) fn with_token(out: &mut Value, token: Option<String>) {
    if let (Some(t), Some(o)) = (token, out.as_object_mut()) {
        o.insert("nextToken".into(), json!(t));
    }
}

/// ERROR diagnostics: the definition's, then what its service integrations name that their
/// service models do not have, then for `type: EXPRESS` what an Express state machine may not
/// use; WARNING ones only when `severity` is `WARNING`. The order (errors first, each
/// kind in document order) is our guess: AWS documents none. `result` depends on errors only.
fn validate_definition(r: &Request<'_>) -> OpResult {
    let definition = r.required("definition")?;
    let express = r.word("type")? == Some(engine::StateMachineType::Express);
    let errors = match asl::definition::Definition::parse(&definition) {
        Ok(d) => {
            let mut errors = engine::definition_diagnostics(&d);
            if express {
                errors.extend(d.express_diagnostics());
            }
            errors
        }
        Err(d) => d,
    };
    let warnings = match r.str("severity").as_deref() {
        Some("WARNING") => asl::lint::warnings(&definition),
        _ => Vec::new(),
    };
    let all: Vec<(&str, &asl::definition::Diagnostic)> = errors
        .iter()
        .map(|d| ("ERROR", d))
        .chain(warnings.iter().map(|d| ("WARNING", d)))
        .collect();
    let max = match r.usize("maxResults") {
        0 => 100,
        n => n,
    };
    let list: Vec<Value> = all
        .iter()
        .take(max)
        .map(|(severity, d)| {
            let mut o = json!({ "severity": severity, "code": d.code, "message": d.message });
            if let (Some(at), Some(obj)) = (&d.location, o.as_object_mut()) {
                obj.insert("location".into(), json!(at));
            }
            o
        })
        .collect();
    let result = if errors.is_empty() { "OK" } else { "FAIL" };
    Ok(json!({ "result": result, "diagnostics": list, "truncated": all.len() > max }))
}

async fn start_execution(r: &Request<'_>) -> OpResult {
    let started = r
        .engine
        .start_execution(
            &r.required("stateMachineArn")?,
            r.str("name"),
            r.str("input"),
            r.str("traceHeader"),
        )
        .await?;
    Ok(json!({ "executionArn": started.arn, "startDate": wire::timestamp(started.start_date) }))
}

async fn start_sync_execution(r: &Request<'_>) -> OpResult {
    let done = r
        .engine
        .start_sync_execution(
            &r.required("stateMachineArn")?,
            r.str("name"),
            r.str("input"),
            r.str("traceHeader"),
        )
        .await?;
    Ok(wire::sync_execution(&done))
}

async fn describe_execution(r: &Request<'_>) -> OpResult {
    let e = r
        .engine
        .describe_execution(&r.required("executionArn")?)
        .await?;
    let redrive = r.engine.redrive_status(&e).await?;
    Ok(wire::describe_execution(&e, redrive))
}

async fn describe_state_machine_for_execution(r: &Request<'_>) -> OpResult {
    let e = r
        .engine
        .describe_execution(&r.required("executionArn")?)
        .await?;
    let sm = r
        .engine
        .describe_state_machine(&e.state_machine_arn)
        .await
        .ok();
    Ok(wire::state_machine_for_execution(&e, sm.as_ref()))
}

async fn list_executions(r: &Request<'_>) -> OpResult {
    if r.body.contains_key("stateMachineArn") && r.body.contains_key("mapRunArn") {
        return Err(ApiError::validation(
            "Only one of StateMachine ARN or MapRun ARN can be provided",
        ));
    }
    let Some(sm) = r.str("stateMachineArn").or_else(|| r.str("mapRunArn")) else {
        return Err(ApiError::validation(
            "Must provide a StateMachine ARN or MapRun ARN",
        ));
    };
    let page = r
        .engine
        .list_executions(
            &sm,
            r.word("statusFilter")?,
            r.str("redriveFilter").map(|f| f == "REDRIVEN"),
            r.usize("maxResults"),
            r.str("nextToken").as_deref(),
        )
        .await?;
    let items: Vec<Value> = page
        .executions
        .iter()
        .map(wire::execution_list_item)
        .collect();
    let mut out = json!({ "executions": items });
    with_token(&mut out, page.next_token);
    Ok(out)
}

async fn describe_map_run(r: &Request<'_>) -> OpResult {
    let d = r.engine.describe_map_run(&r.required("mapRunArn")?).await?;
    Ok(wire::describe_map_run(&d))
}

async fn list_map_runs(r: &Request<'_>) -> OpResult {
    let all = r.engine.list_map_runs(&r.required("executionArn")?).await?;
    let (runs, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let items: Vec<Value> = runs.iter().map(wire::map_run_list_item).collect();
    let mut out = json!({ "mapRuns": items });
    with_token(&mut out, next);
    Ok(out)
}

async fn update_map_run(r: &Request<'_>) -> OpResult {
    let update = MapRunUpdate {
        max_concurrency: r.body.get("maxConcurrency").and_then(Value::as_u64),
        tolerated_failure_count: r.body.get("toleratedFailureCount").and_then(Value::as_u64),
        tolerated_failure_percentage: r
            .body
            .get("toleratedFailurePercentage")
            .and_then(Value::as_f64),
    };
    r.engine
        .update_map_run(&r.required("mapRunArn")?, update)
        .await?;
    Ok(json!({}))
}

async fn get_execution_history(r: &Request<'_>) -> OpResult {
    let include = r.bool("includeExecutionData").unwrap_or(true);
    let page = r
        .engine
        .get_execution_history(HistoryQuery {
            arn: r.required("executionArn")?,
            max_results: r.usize("maxResults"),
            reverse: r.bool("reverseOrder").unwrap_or(false),
            next_token: r.str("nextToken"),
        })
        .await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| wire::history_event(e, include))
        .collect();
    let mut out = json!({ "events": events });
    with_token(&mut out, page.next_token);
    Ok(out)
}

async fn stop_execution(r: &Request<'_>) -> OpResult {
    let stop = r
        .engine
        .stop_execution(&r.required("executionArn")?, r.str("error"), r.str("cause"))
        .await?;
    Ok(json!({ "stopDate": wire::timestamp(stop) }))
}

async fn tag_resource(r: &Request<'_>) -> OpResult {
    r.engine
        .tag_resource(&r.required("resourceArn")?, r.tags())
        .await?;
    Ok(json!({}))
}

async fn untag_resource(r: &Request<'_>) -> OpResult {
    let keys: Vec<String> = match r.body.get("tagKeys") {
        Some(Value::Array(k)) => k
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    r.engine
        .untag_resource(&r.required("resourceArn")?, &keys)
        .await?;
    Ok(json!({}))
}

async fn list_tags(r: &Request<'_>) -> OpResult {
    let tags = r.engine.list_tags(&r.required("resourceArn")?).await?;
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect();
    Ok(json!({ "tags": list }))
}

async fn create_activity(r: &Request<'_>) -> OpResult {
    let a = r
        .engine
        .create_activity(r.region, r.account, &r.required("name")?, r.tags())
        .await?;
    Ok(json!({ "activityArn": a.arn, "creationDate": wire::timestamp(a.creation_date) }))
}

async fn describe_activity(r: &Request<'_>) -> OpResult {
    let a = r
        .engine
        .describe_activity(&r.required("activityArn")?)
        .await?;
    Ok(json!({
        "activityArn": a.arn,
        "name": a.name,
        "creationDate": wire::timestamp(a.creation_date),
        "encryptionConfiguration": { "type": "AWS_OWNED_KEY" },
    }))
}

async fn delete_activity(r: &Request<'_>) -> OpResult {
    r.engine
        .delete_activity(&r.required("activityArn")?)
        .await?;
    Ok(json!({}))
}

async fn list_activities(r: &Request<'_>) -> OpResult {
    let all = r.engine.list_activities(r.region, r.account).await?;
    let (items, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let activities: Vec<Value> = items
        .iter()
        .map(|a| json!({ "activityArn": a.arn, "name": a.name, "creationDate": wire::timestamp(a.creation_date) }))
        .collect();
    let mut out = json!({ "activities": activities });
    with_token(&mut out, next);
    Ok(out)
}

/// Long poll: answers `{}` (no `taskToken`) when no task arrived within 60 seconds.
async fn get_activity_task(r: &Request<'_>) -> OpResult {
    let task = r
        .engine
        .get_activity_task(&r.required("activityArn")?, r.str("workerName"))
        .await?;
    Ok(match task {
        Some(t) => json!({ "taskToken": t.token, "input": t.input }),
        None => json!({}),
    })
}

async fn send_task_success(r: &Request<'_>) -> OpResult {
    r.engine
        .send_task_success(&r.required("taskToken")?, &r.required("output")?)
        .await?;
    Ok(json!({}))
}

async fn send_task_failure(r: &Request<'_>) -> OpResult {
    r.engine
        .send_task_failure(&r.required("taskToken")?, r.str("error"), r.str("cause"))
        .await?;
    Ok(json!({}))
}

async fn send_task_heartbeat(r: &Request<'_>) -> OpResult {
    r.engine
        .send_task_heartbeat(&r.required("taskToken")?)
        .await?;
    Ok(json!({}))
}

async fn redrive_execution(r: &Request<'_>) -> OpResult {
    let date = r
        .engine
        .redrive_execution(&r.required("executionArn")?, r.str("clientToken"))
        .await?;
    Ok(json!({ "redriveDate": wire::timestamp(date) }))
}

async fn publish_state_machine_version(r: &Request<'_>) -> OpResult {
    let v = r
        .engine
        .publish_state_machine_version(
            &r.required("stateMachineArn")?,
            r.str("revisionId"),
            r.str("description"),
        )
        .await?;
    Ok(json!({ "stateMachineVersionArn": v.arn, "creationDate": wire::timestamp(v.creation_date) }))
}

async fn list_state_machine_versions(r: &Request<'_>) -> OpResult {
    let all = r
        .engine
        .list_state_machine_versions(&r.required("stateMachineArn")?)
        .await?;
    let (items, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let versions: Vec<Value> = items
        .iter()
        .map(|v| json!({ "stateMachineVersionArn": v.arn, "creationDate": wire::timestamp(v.creation_date) }))
        .collect();
    let mut out = json!({ "stateMachineVersions": versions });
    with_token(&mut out, next);
    Ok(out)
}

async fn delete_state_machine_version(r: &Request<'_>) -> OpResult {
    r.engine
        .delete_state_machine_version(&r.required("stateMachineVersionArn")?)
        .await?;
    Ok(json!({}))
}

/// `routingConfiguration`: `[{stateMachineVersionArn, weight}]`.
fn routing(r: &Request<'_>) -> Option<Vec<Route>> {
    let Some(Value::Array(items)) = r.body.get("routingConfiguration") else {
        return None;
    };
    Some(
        items
            .iter()
            .map(|item| Route {
                version_arn: item
                    .get("stateMachineVersionArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                weight: item.get("weight").and_then(Value::as_u64).unwrap_or(0) as u32,
            })
            .collect(),
    )
}

async fn create_state_machine_alias(r: &Request<'_>) -> OpResult {
    let alias = r
        .engine
        .create_state_machine_alias(CreateAlias {
            name: r.required("name")?,
            description: r.str("description"),
            routing: routing(r).unwrap_or_default(),
        })
        .await?;
    Ok(
        json!({ "stateMachineAliasArn": alias.arn, "creationDate": wire::timestamp(alias.creation_date) }),
    )
}

async fn describe_state_machine_alias(r: &Request<'_>) -> OpResult {
    let alias = r
        .engine
        .describe_state_machine_alias(&r.required("stateMachineAliasArn")?)
        .await?;
    Ok(wire::describe_alias(&alias))
}

async fn update_state_machine_alias(r: &Request<'_>) -> OpResult {
    let alias = r
        .engine
        .update_state_machine_alias(
            &r.required("stateMachineAliasArn")?,
            r.str("description"),
            routing(r),
        )
        .await?;
    Ok(json!({ "updateDate": wire::timestamp(alias.update_date) }))
}

async fn delete_state_machine_alias(r: &Request<'_>) -> OpResult {
    r.engine
        .delete_state_machine_alias(&r.required("stateMachineAliasArn")?)
        .await?;
    Ok(json!({}))
}

async fn list_state_machine_aliases(r: &Request<'_>) -> OpResult {
    let all = r
        .engine
        .list_state_machine_aliases(&r.required("stateMachineArn")?)
        .await?;
    let (items, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let aliases: Vec<Value> = items
        .iter()
        .map(|a| json!({ "stateMachineAliasArn": a.arn, "creationDate": wire::timestamp(a.creation_date) }))
        .collect();
    let mut out = json!({ "stateMachineAliases": aliases });
    with_token(&mut out, next);
    Ok(out)
}

async fn test_state(r: &Request<'_>) -> OpResult {
    let member = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mock = r.body.get("mock").filter(|m| m.is_object()).map(|m| {
        let error_output =
            m.get("errorOutput")
                .filter(|e| e.is_object())
                .map(|e| asl::history::ErrorCause {
                    error: member(e, "error"),
                    cause: member(e, "cause"),
                    location: None,
                });
        let field_validation = match m.get("fieldValidationMode").and_then(Value::as_str) {
            Some("PRESENT") => FieldValidation::Present,
            Some("NONE") => FieldValidation::None,
            _ => FieldValidation::Strict,
        };
        TestMock {
            result: member(m, "result"),
            error_output,
            field_validation,
        }
    });
    let config = r
        .body
        .get("stateConfiguration")
        .cloned()
        .unwrap_or_default();
    let count = |key: &str| config.get(key).and_then(Value::as_u64);
    let report = r
        .engine
        .test_state(TestStateRequest {
            region: r.region.to_owned(),
            account: r.account.to_owned(),
            definition: r.required("definition")?,
            role_arn: r.str("roleArn"),
            input: r.str("input"),
            reveal_secrets: r.bool("revealSecrets") == Some(true),
            variables: r.str("variables"),
            state_name: r.str("stateName"),
            mock,
            context: r.str("context"),
            config: TestStateConfiguration {
                retrier_retry_count: count("retrierRetryCount")
                    .map(|n| n.min(u64::from(u32::MAX)) as u32),
                error_caused_by_state: member(&config, "errorCausedByState"),
                map_iteration_failure_count: count("mapIterationFailureCount"),
                map_item_reader_data: member(&config, "mapItemReaderData"),
            },
        })
        .await?;
    let inspect = matches!(r.str("inspectionLevel").as_deref(), Some("DEBUG" | "TRACE"));
    Ok(wire::test_state(&report, inspect))
}
