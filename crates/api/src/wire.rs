//! AWS wire shapes of the engine's records and history events.

use asl::history::{ErrorCause, EventDetails, HistoryEvent, TaskFamily, TaskRef};
use asl::interpreter::test_state::TestReport;
use engine::{
    AliasRecord, ExecutionRecord, MapRunDescription, MapRunRecord, RedriveEligibility,
    StateMachineRecord,
};
use serde_json::{json, Map, Value};

/// Epoch milliseconds as AWS's JSON timestamp: epoch seconds with a fraction.
pub fn timestamp(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// Inserts `key` only when the value is present.
fn put(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        obj.insert(key.into(), v);
    }
}

fn config_or(text: &Option<String>, default: Value) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(default)
}

fn logging(sm: &Option<String>) -> Value {
    let mut v = config_or(sm, json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.entry("level").or_insert(json!("OFF"));
        obj.entry("includeExecutionData").or_insert(json!(false));
    }
    v
}

fn tracing(sm: &Option<String>) -> Value {
    config_or(sm, json!({ "enabled": false }))
}

pub fn describe_state_machine(sm: &StateMachineRecord) -> Value {
    let mut o = Map::new();
    o.insert("stateMachineArn".into(), json!(sm.arn));
    o.insert("name".into(), json!(sm.name));
    o.insert("status".into(), json!("ACTIVE"));
    o.insert("definition".into(), json!(sm.definition));
    o.insert("roleArn".into(), json!(sm.role_arn));
    o.insert("type".into(), json!(sm.kind));
    o.insert("creationDate".into(), timestamp(sm.creation_date));
    o.insert(
        "loggingConfiguration".into(),
        logging(&sm.logging_configuration),
    );
    o.insert(
        "tracingConfiguration".into(),
        tracing(&sm.tracing_configuration),
    );
    put(
        &mut o,
        "revisionId",
        sm.revision_id.clone().map(Value::String),
    );
    put(
        &mut o,
        "description",
        sm.description.clone().map(Value::String),
    );
    o.insert(
        "encryptionConfiguration".into(),
        json!({ "type": "AWS_OWNED_KEY" }),
    );
    variable_references(&sm.definition, &mut o);
    Value::Object(o)
}

pub fn state_machine_for_execution(e: &ExecutionRecord, sm: Option<&StateMachineRecord>) -> Value {
    let name = e.state_machine_arn.rsplit(':').next().unwrap_or_default();
    let mut o = Map::new();
    o.insert("stateMachineArn".into(), json!(e.state_machine_arn));
    o.insert("name".into(), json!(name));
    o.insert("definition".into(), json!(e.definition));
    o.insert("roleArn".into(), json!(e.role_arn));
    let updated = sm
        .and_then(|s| s.update_date)
        .unwrap_or_else(|| sm.map_or(e.start_date, |s| s.creation_date));
    o.insert("updateDate".into(), timestamp(updated));
    o.insert(
        "loggingConfiguration".into(),
        logging(&sm.and_then(|s| s.logging_configuration.clone())),
    );
    o.insert(
        "tracingConfiguration".into(),
        tracing(&sm.and_then(|s| s.tracing_configuration.clone())),
    );
    put(
        &mut o,
        "revisionId",
        e.revision_id.clone().map(Value::String),
    );
    o.insert(
        "encryptionConfiguration".into(),
        json!({ "type": "AWS_OWNED_KEY" }),
    );
    variable_references(&e.definition, &mut o);
    if let Some(m) = &e.map_run {
        // A Map Run child's state machine is `PARENT/LABEL`.
        o.insert("mapRunArn".into(), json!(m.map_run_arn));
        let label = name.split_once('/').map_or(name, |(_, label)| label);
        o.insert("label".into(), json!(label));
    }
    Value::Object(o)
}

/// `variableReferences`, present when the definition reads workflow variables.
fn variable_references(definition: &str, o: &mut Map<String, Value>) {
    let refs = asl::definition::variable_references(definition);
    if !refs.is_empty() {
        o.insert("variableReferences".into(), Value::Object(refs));
    }
}

/// The fields `DescribeExecution`, `StartSyncExecution` and `ListExecutions` share.
fn execution_common(e: &ExecutionRecord, o: &mut Map<String, Value>) {
    o.insert("executionArn".into(), json!(e.arn));
    o.insert("stateMachineArn".into(), json!(e.state_machine_arn));
    o.insert("name".into(), json!(e.name));
    o.insert("status".into(), json!(e.status));
    o.insert("startDate".into(), timestamp(e.start_date));
    put(o, "stopDate", e.stop_date.map(timestamp));
}

/// `stateMachineVersionArn` and `stateMachineAliasArn`, when the execution was started
/// through a version or an alias.
fn execution_qualifiers(e: &ExecutionRecord, o: &mut Map<String, Value>) {
    let version = e.state_machine_version_arn.clone().map(Value::String);
    put(o, "stateMachineVersionArn", version);
    let alias = e.state_machine_alias_arn.clone().map(Value::String);
    put(o, "stateMachineAliasArn", alias);
    let map_run = e.map_run.as_ref().map(|m| json!(m.map_run_arn));
    put(o, "mapRunArn", map_run);
}

pub fn describe_map_run(d: &MapRunDescription) -> Value {
    let r = &d.record;
    let mut o = Map::new();
    o.insert("mapRunArn".into(), json!(r.arn));
    o.insert("executionArn".into(), json!(r.execution_arn));
    o.insert("status".into(), json!(r.status));
    o.insert("startDate".into(), timestamp(r.start_date));
    put(&mut o, "stopDate", r.stop_date.map(timestamp));
    o.insert("maxConcurrency".into(), json!(r.max_concurrency));
    let percentage = r.tolerated_failure_percentage.unwrap_or(0.0);
    let percentage = if percentage.fract() == 0.0 {
        json!(percentage as u64)
    } else {
        json!(percentage)
    };
    o.insert("toleratedFailurePercentage".into(), percentage);
    o.insert(
        "toleratedFailureCount".into(),
        json!(r.tolerated_failure_count.unwrap_or(0)),
    );
    o.insert("itemCounts".into(), map_run_counts(&d.item_counts));
    o.insert(
        "executionCounts".into(),
        map_run_counts(&d.execution_counts),
    );
    o.insert("redriveCount".into(), json!(r.redrive_count));
    put(&mut o, "redriveDate", r.redrive_date.map(timestamp));
    Value::Object(o)
}

/// `MapRunItemCounts` / `MapRunExecutionCounts`.
fn map_run_counts(c: &engine::MapRunCounts) -> Value {
    json!({
        "pending": c.pending,
        "running": c.running,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "timedOut": c.timed_out,
        "aborted": c.aborted,
        "total": c.total,
        "resultsWritten": c.results_written,
        "failuresNotRedrivable": c.failures_not_redrivable,
        "pendingRedrive": c.pending_redrive,
    })
}

pub fn map_run_list_item(r: &MapRunRecord) -> Value {
    let mut o = Map::new();
    o.insert("executionArn".into(), json!(r.execution_arn));
    o.insert("mapRunArn".into(), json!(r.arn));
    o.insert("stateMachineArn".into(), json!(r.state_machine_arn));
    o.insert("startDate".into(), timestamp(r.start_date));
    put(&mut o, "stopDate", r.stop_date.map(timestamp));
    Value::Object(o)
}

pub fn describe_alias(a: &AliasRecord) -> Value {
    let mut o = Map::new();
    o.insert("stateMachineAliasArn".into(), json!(a.arn));
    o.insert("name".into(), json!(a.name));
    put(
        &mut o,
        "description",
        a.description.clone().map(Value::String),
    );
    let routes: Vec<Value> = a
        .routing
        .iter()
        .map(|r| json!({ "stateMachineVersionArn": r.version_arn, "weight": r.weight }))
        .collect();
    o.insert("routingConfiguration".into(), Value::Array(routes));
    o.insert("creationDate".into(), timestamp(a.creation_date));
    o.insert("updateDate".into(), timestamp(a.update_date));
    Value::Object(o)
}

fn execution_data(e: &ExecutionRecord, o: &mut Map<String, Value>) {
    o.insert("input".into(), json!(e.input));
    o.insert("inputDetails".into(), json!({ "included": true }));
    if let Some(out) = &e.output {
        o.insert("output".into(), json!(out));
        o.insert("outputDetails".into(), json!({ "included": true }));
    }
    put(o, "error", e.error.clone().map(Value::String));
    put(o, "cause", e.cause.clone().map(Value::String));
}

pub fn describe_execution(e: &ExecutionRecord, redrive: RedriveEligibility) -> Value {
    let mut o = Map::new();
    execution_common(e, &mut o);
    execution_qualifiers(e, &mut o);
    execution_data(e, &mut o);
    o.insert("redriveCount".into(), json!(e.redrive_count));
    put(&mut o, "redriveDate", e.redrive_date.map(timestamp));
    let (status, reason) = redrive.status();
    o.insert("redriveStatus".into(), json!(status));
    put(&mut o, "redriveStatusReason", reason.map(|r| json!(r)));
    put(
        &mut o,
        "traceHeader",
        e.trace_header.clone().map(Value::String),
    );
    Value::Object(o)
}

pub fn sync_execution(e: &ExecutionRecord) -> Value {
    let mut o = Map::new();
    execution_common(e, &mut o);
    execution_data(e, &mut o);
    // StartSyncExecution reports outputDetails even for a failure, which has no output.
    o.insert("outputDetails".into(), json!({ "included": true }));
    put(
        &mut o,
        "traceHeader",
        e.trace_header.clone().map(Value::String),
    );
    let billed = e.stop_date.unwrap_or(e.start_date) - e.start_date;
    o.insert(
        "billingDetails".into(),
        json!({ "billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": billed.max(100) }),
    );
    Value::Object(o)
}

pub fn execution_list_item(e: &ExecutionRecord) -> Value {
    let mut o = Map::new();
    execution_common(e, &mut o);
    execution_qualifiers(e, &mut o);
    o.insert("redriveCount".into(), json!(e.redrive_count));
    put(&mut o, "redriveDate", e.redrive_date.map(timestamp));
    let items = e.map_run.as_ref().map(|m| json!(m.item_count.unwrap_or(1)));
    put(&mut o, "itemCount", items);
    Value::Object(o)
}

fn error_cause(ec: &ErrorCause, o: &mut Map<String, Value>) {
    put(o, "error", ec.error.clone().map(Value::String));
    put(o, "cause", ec.cause.clone().map(Value::String));
}

/// A history event in AWS's shape. Without execution data, inputs and outputs are left out.
pub fn history_event(e: &HistoryEvent, include_data: bool) -> Value {
    let payload = |o: &mut Map<String, Value>, key: &str, text: &str| {
        if include_data {
            o.insert(key.into(), json!(text));
            o.insert(format!("{key}Details"), json!({ "truncated": false }));
        }
    };
    let mut o = Map::new();
    match &e.details {
        EventDetails::ExecutionStarted {
            input,
            role_arn,
            state_machine_alias_arn,
            state_machine_version_arn,
        } => {
            payload(&mut o, "input", input);
            o.insert("roleArn".into(), json!(role_arn));
            let alias = state_machine_alias_arn.clone().map(Value::String);
            put(&mut o, "stateMachineAliasArn", alias);
            let version = state_machine_version_arn.clone().map(Value::String);
            put(&mut o, "stateMachineVersionArn", version);
        }
        EventDetails::ExecutionSucceeded { output } => payload(&mut o, "output", output),
        EventDetails::ExecutionFailed(ec)
        | EventDetails::ExecutionAborted(ec)
        | EventDetails::ExecutionTimedOut(ec) => error_cause(ec, &mut o),
        EventDetails::ExecutionRedriven { redrive_count } => {
            o.insert("redriveCount".into(), json!(redrive_count));
        }
        EventDetails::StateEntered { name, input, .. } => {
            o.insert("name".into(), json!(name));
            payload(&mut o, "input", input);
        }
        EventDetails::StateExited {
            name,
            output,
            assigned_variables,
            ..
        } => {
            o.insert("name".into(), json!(name));
            payload(&mut o, "output", output);
            if let (Some(vars), true) = (assigned_variables, include_data) {
                o.insert("assignedVariables".into(), Value::Object(vars.clone()));
                o.insert(
                    "assignedVariablesDetails".into(),
                    json!({ "truncated": false }),
                );
            }
        }
        EventDetails::ContainerStarted { length, .. } => {
            put(&mut o, "length", length.map(|l| json!(l)))
        }
        EventDetails::ContainerSucceeded { .. }
        | EventDetails::ContainerFailed { .. }
        | EventDetails::StateAborted { .. } => {}
        EventDetails::MapIteration { name, index, .. } => {
            o.insert("name".into(), json!(name));
            o.insert("index".into(), json!(index));
        }
        EventDetails::MapRunStarted { map_run_arn } => {
            o.insert("mapRunArn".into(), json!(map_run_arn));
        }
        EventDetails::MapRunSucceeded | EventDetails::MapRunAborted => {}
        EventDetails::MapRunFailed(error) => error_cause(error, &mut o),
        EventDetails::MapRunRedriven {
            map_run_arn,
            redrive_count,
        } => {
            o.insert("mapRunArn".into(), json!(map_run_arn));
            o.insert("redriveCount".into(), json!(redrive_count));
        }
        EventDetails::TaskScheduled {
            task,
            region,
            input,
            timeout,
            heartbeat,
            credentials,
        } => {
            resource(task, &mut o);
            match task.family {
                TaskFamily::Task => {
                    o.insert("region".into(), json!(region));
                    if include_data {
                        o.insert("parameters".into(), json!(input));
                    }
                }
                _ => payload(&mut o, "input", input),
            }
            put(&mut o, "timeoutInSeconds", timeout.map(|t| json!(t)));
            put(&mut o, "heartbeatInSeconds", heartbeat.map(|h| json!(h)));
            let role = credentials
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|c| c.get("RoleArn").cloned());
            put(
                &mut o,
                "taskCredentials",
                role.map(|r| json!({ "roleArn": r })),
            );
        }
        EventDetails::TaskStarted { task, worker_name } => {
            if task.family == TaskFamily::Task {
                resource(task, &mut o);
            }
            put(&mut o, "workerName", worker_name.clone().map(Value::String));
        }
        EventDetails::TaskSubmitted { task, output }
        | EventDetails::TaskSucceeded { task, output } => {
            if task.family == TaskFamily::Task {
                resource(task, &mut o);
            }
            payload(&mut o, "output", output);
        }
        EventDetails::TaskFailed { task, error } | EventDetails::TaskTimedOut { task, error } => {
            if task.family == TaskFamily::Task {
                resource(task, &mut o);
            }
            error_cause(error, &mut o);
        }
        EventDetails::EvaluationFailed {
            state,
            error,
            cause,
            location,
        } => {
            o.insert("error".into(), json!(error));
            o.insert("cause".into(), json!(cause));
            put(&mut o, "location", location.clone().map(Value::String));
            o.insert("state".into(), json!(state));
        }
    }
    let kind = e.details.event_type();
    let mut event = Map::new();
    event.insert("timestamp".into(), timestamp(e.timestamp));
    event.insert("type".into(), json!(kind));
    event.insert("id".into(), json!(e.id));
    event.insert("previousEventId".into(), json!(e.previous_event_id));
    // Events that carry no details object: the ones with nothing to say.
    let bare = kind == "LambdaFunctionStarted"
        || (o.is_empty()
            && matches!(
                e.details,
                EventDetails::ContainerStarted { .. }
                    | EventDetails::ContainerSucceeded { .. }
                    | EventDetails::ContainerFailed { .. }
                    | EventDetails::StateAborted { .. }
                    | EventDetails::MapRunSucceeded
                    | EventDetails::MapRunAborted
            ));
    if !bare {
        event.insert(details_key(&kind), Value::Object(o));
    }
    Value::Object(event)
}

/// `PassStateEntered` → `stateEnteredEventDetails`, `TaskScheduled` → `taskScheduledEventDetails`.
fn details_key(kind: &str) -> String {
    let short = ["StateEntered", "StateExited"]
        .into_iter()
        .find(|suffix| kind.ends_with(suffix))
        .unwrap_or(kind);
    let mut chars = short.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    format!("{first}{}EventDetails", chars.as_str())
}

/// The resource fields of a task event: `resourceType` + `resource` for service
/// integrations, the ARN for activities and Lambda functions.
fn resource(task: &TaskRef, o: &mut Map<String, Value>) {
    put(
        o,
        "resourceType",
        task.resource_type.clone().map(Value::String),
    );
    o.insert("resource".into(), json!(task.resource));
}

/// JSON text the way TestState writes its payloads: `", "` between items, `": "` after keys.
pub fn test_state_json(value: &Value) -> String {
    use serde::Serialize;
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            self.begin_array_value(writer, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
        ) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = serde_json::Serializer::with_formatter(Vec::new(), Spaced);
    match value.serialize(&mut out) {
        Ok(()) => String::from_utf8(out.into_inner()).unwrap_or_else(|_| value.to_string()),
        Err(_) => value.to_string(),
    }
}

/// TestState's answer; `inspect` (DEBUG, TRACE) adds `inspectionData`.
pub fn test_state(report: &TestReport, inspect: bool) -> Value {
    let text = |v: &Option<Value>| v.as_ref().map(|v| json!(test_state_json(v)));
    let mut out = Map::new();
    out.insert("status".into(), json!(report.status.as_str()));
    put(&mut out, "output", text(&report.output));
    put(&mut out, "error", report.error.clone().map(Value::String));
    put(&mut out, "cause", report.cause.clone().map(Value::String));
    put(
        &mut out,
        "nextState",
        report.next_state.clone().map(Value::String),
    );
    if inspect {
        let i = &report.inspection;
        let mut data = Map::new();
        put(&mut data, "input", text(&i.input));
        put(&mut data, "afterInputPath", text(&i.after_input_path));
        put(&mut data, "afterParameters", text(&i.after_parameters));
        put(&mut data, "afterArguments", text(&i.after_arguments));
        put(&mut data, "result", text(&i.result));
        put(
            &mut data,
            "afterResultSelector",
            text(&i.after_result_selector),
        );
        put(&mut data, "afterResultPath", text(&i.after_result_path));
        put(&mut data, "afterItemsPath", text(&i.after_items_path));
        put(&mut data, "variables", text(&i.variables));
        put(
            &mut data,
            "maxConcurrency",
            i.max_concurrency.map(|n| json!(n)),
        );
        put(
            &mut data,
            "toleratedFailureCount",
            i.tolerated_failure_count.map(|n| json!(n)),
        );
        put(
            &mut data,
            "toleratedFailurePercentage",
            i.tolerated_failure_percentage.map(|n| json!(n)),
        );
        if let Some(d) = &i.error_details {
            let mut details = Map::new();
            put(&mut details, "catchIndex", d.catch_index.map(|n| json!(n)));
            put(&mut details, "retryIndex", d.retry_index.map(|n| json!(n)));
            put(
                &mut details,
                "retryBackoffIntervalSeconds",
                d.retry_backoff_interval_seconds.map(|n| json!(n)),
            );
            data.insert("errorDetails".into(), Value::Object(details));
        }
        out.insert("inspectionData".into(), Value::Object(data));
    }
    Value::Object(out)
}
