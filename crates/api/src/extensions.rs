//! stepwise's own operations (`X-Amz-Target: Stepwise.<Op>`), beside AWS's: redrive beyond
//! what AWS offers. Same JSON 1.0 protocol, signing, validation (`stepwise-model.json`) and
//! error shapes as the AWS operations; each request and response is documented in
//! `docs/redrive-extensions.md`.

use engine::{BatchOutcome, BatchReport, PlannedRedrive, RedriveSelection, UnknownWord};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::ops::{page, with_token, Request};
use crate::wire::timestamp;

type Reply = Result<Value, ApiError>;

/// Dispatches a stepwise operation; `None` for one the model lists but this build lacks.
pub async fn dispatch(op: &str, r: &Request<'_>) -> Option<Reply> {
    Some(match op {
        "BulkRedrive" => bulk_redrive(r).await,
        "DescribeBulkRedrive" => describe_bulk_redrive(r).await,
        "DescribeExecutionRedrives" => describe_execution_redrives(r).await,
        "RedriveExecutionFromState" => redrive_execution_from_state(r).await,
        "ListActivityTasks" => list_activity_tasks(r).await,
        _ => return None,
    })
}

/// A request timestamp (epoch seconds, with a fraction) in epoch milliseconds.
fn millis(r: &Request<'_>, key: &str) -> Option<i64> {
    r.body
        .get(key)
        .and_then(Value::as_f64)
        .map(|s| (s * 1000.0).round() as i64)
}

fn count(r: &Request<'_>, key: &str) -> Option<u32> {
    r.body
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

fn selection(r: &Request<'_>) -> Result<RedriveSelection, ApiError> {
    let statuses = match r.body.get("statusFilter") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| {
                s.parse()
                    .map_err(|e: UnknownWord| ApiError::validation(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    Ok(RedriveSelection {
        state_machine_arn: r.required("stateMachineArn")?,
        statuses,
        error: r.str("errorName"),
        cause_contains: r.str("causeContains"),
        stopped_after: millis(r, "stoppedAfter"),
        stopped_before: millis(r, "stoppedBefore"),
        min_redrive_count: count(r, "minRedriveCount"),
        max_redrive_count: count(r, "maxRedriveCount"),
    })
}

async fn bulk_redrive(r: &Request<'_>) -> Reply {
    let selection = selection(r)?;
    if r.bool("dryRun") == Some(true) {
        let plans = r.engine.plan_bulk_redrive(&selection).await?;
        let executions: Vec<Value> = plans.iter().map(plan).collect();
        let redrivable = plans.iter().filter(|p| p.not_redrivable.is_none()).count();
        return Ok(json!({
            "dryRun": true,
            "selected": plans.len(),
            "redrivable": redrivable,
            "executions": executions,
        }));
    }
    let Some(token) = r.str("batchToken") else {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'batchToken' failed to satisfy constraint: Member must not be null unless dryRun is true",
        ));
    };
    let batch = r.engine.bulk_redrive(&token, selection).await?;
    Ok(json!({
        "batchToken": batch.token,
        "creationDate": timestamp(batch.creation_date),
        "total": batch.total,
        "status": if batch.finish_date.is_some() { "COMPLETED" } else { "RUNNING" },
    }))
}

/// One execution of a dry run, or of DescribeExecutionRedrives.
fn plan(p: &PlannedRedrive) -> Value {
    let mut out = Map::new();
    out.insert("executionArn".into(), json!(p.execution_arn));
    out.insert("status".into(), json!(p.status.as_str()));
    out.insert("redriveCount".into(), json!(p.redrive_count));
    out.insert("redrivable".into(), json!(p.not_redrivable.is_none()));
    match &p.not_redrivable {
        Some(reason) => {
            out.insert("notRedrivableReason".into(), json!(reason));
        }
        None => {
            out.insert("reruns".into(), json!(p.reruns.places));
            out.insert("rerunsTotal".into(), json!(p.reruns.total));
        }
    }
    Value::Object(out)
}

async fn describe_bulk_redrive(r: &Request<'_>) -> Reply {
    let token = r.required("batchToken")?;
    let from = match r.str("nextToken") {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| ApiError::sfn("InvalidToken", format!("Invalid Token: '{t}'")))?,
        None => 0,
    };
    let limit = match r.usize("maxResults") {
        0 => 100,
        n => n,
    };
    let report = r.engine.describe_bulk_redrive(&token, from, limit).await?;
    // A batch of another account's state machine is not the caller's to see.
    let owner = json!({ "stateMachineArn": report.record.state_machine_arn });
    if crate::auth::foreign_resource(&owner, r.account).is_some() {
        return Err(engine::Error::ResourceNotFound {
            message: format!("Bulk redrive does not exist: '{token}'"),
            resource_name: token,
        }
        .into());
    }
    Ok(report_json(&report))
}

fn report_json(b: &BatchReport) -> Value {
    let s = &b.selection;
    let mut selection = Map::new();
    selection.insert("stateMachineArn".into(), json!(s.state_machine_arn));
    if !s.statuses.is_empty() {
        let statuses: Vec<&str> = s.statuses.iter().map(|s| s.as_str()).collect();
        selection.insert("statusFilter".into(), json!(statuses));
    }
    let optional = [
        ("errorName", s.error.as_ref().map(|v| json!(v))),
        ("causeContains", s.cause_contains.as_ref().map(|v| json!(v))),
        ("stoppedAfter", s.stopped_after.map(timestamp)),
        ("stoppedBefore", s.stopped_before.map(timestamp)),
        ("minRedriveCount", s.min_redrive_count.map(|v| json!(v))),
        ("maxRedriveCount", s.max_redrive_count.map(|v| json!(v))),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            selection.insert(key.into(), v);
        }
    }
    let executions: Vec<Value> = b
        .entries
        .iter()
        .map(|e| {
            let mut out = json!({ "index": e.index, "executionArn": e.execution_arn });
            match &e.outcome {
                None => out["outcome"] = json!("PENDING"),
                Some(BatchOutcome::Redriven { redrive_date }) => {
                    out["outcome"] = json!("REDRIVEN");
                    out["redriveDate"] = timestamp(*redrive_date);
                }
                Some(BatchOutcome::Refused { code, message }) => {
                    out["outcome"] = json!("REFUSED");
                    out["error"] = json!(code);
                    out["cause"] = json!(message);
                }
            }
            out
        })
        .collect();
    let mut out = json!({
        "batchToken": b.record.token,
        "selection": selection,
        "status": if b.record.finish_date.is_some() { "COMPLETED" } else { "RUNNING" },
        "creationDate": timestamp(b.record.creation_date),
        "total": b.record.total,
        "redriven": b.redriven,
        "refused": b.refused,
        "pending": b.pending,
        "executions": executions,
    });
    if let Some(finished) = b.record.finish_date {
        out["finishDate"] = timestamp(finished);
    }
    if let Some(next) = b.next {
        out["nextToken"] = json!(next.to_string());
    }
    out
}

async fn describe_execution_redrives(r: &Request<'_>) -> Reply {
    let arn = r.required("executionArn")?;
    let record = r.engine.describe_execution(&arn).await?;
    let mut out = plan(&r.engine.plan_redrive(&arn).await?);
    if let Some(date) = record.redrive_date {
        out["redriveDate"] = timestamp(date);
    }
    if let Some(batch) = &record.redrive_batch {
        out["lastBatchToken"] = json!(batch);
    }
    if let Some(change) = &record.redrive_change {
        let mut last = json!({ "redriveCount": change.redrive_count });
        if let Some(state) = &change.from_state {
            last["statePath"] = json!(state);
        }
        if let Some(previous) = &change.previous_input {
            last["previousInput"] = json!(previous);
        }
        if let Some(input) = &change.input {
            last["input"] = json!(input);
        }
        if let Some(definition) = &change.definition {
            last["definition"] = json!(definition);
        }
        if let Some(revision) = &change.previous_revision_id {
            last["previousRevisionId"] = json!(revision);
        }
        out["lastChangedRedrive"] = last;
    }
    Ok(out)
}

async fn redrive_execution_from_state(r: &Request<'_>) -> Reply {
    let changes = engine::RedriveChanges {
        from_state: r.str("statePath"),
        input: r.str("input"),
        definition: r
            .str("definition")
            .as_deref()
            .map(engine::RedriveOnto::parse),
    };
    let date = r
        .engine
        .redrive_execution_from(&r.required("executionArn")?, changes, r.str("clientToken"))
        .await?;
    Ok(json!({ "redriveDate": timestamp(date) }))
}

/// The tasks of an activity that wait for a worker: AWS has no operation that lists them.
async fn list_activity_tasks(r: &Request<'_>) -> Reply {
    let all = r
        .engine
        .pending_activity_tasks(&r.required("activityArn")?)
        .await?;
    let (items, next) = page(all, r.usize("maxResults"), r.str("nextToken"))?;
    let tasks: Vec<Value> = items
        .iter()
        .map(|t| {
            json!({
                "executionArn": t.execution_arn,
                "input": t.input,
                "scheduledDate": timestamp(t.scheduled),
            })
        })
        .collect();
    let mut out = json!({ "tasks": tasks });
    with_token(&mut out, next);
    Ok(out)
}
