//! ECS `runTask`: one or more tasks, followed with `DescribeTasks` until every one is
//! `STOPPED` (the `.sync` result is the task's description, or `{"Tasks": […]}` for several),
//! stopped with `StopTask`. A stopped task fails the Step Functions task when it failed to
//! start or a container exited with a non-zero code. A `runTask` answer with `Failures` fails
//! `.sync` and `.waitForTaskToken` with `AmazonECS.Unknown`, as AWS does.

use serde_json::{json, Value};

use super::{text, Kind, Progress};

pub(super) const KIND: Kind = Kind {
    model: "ecs",
    prefix: "ECS",
    cause_service: "AmazonECS",
    generic: "AmazonECSException",
    describe: "describeTasks",
    stop: "stopTask",
    describe_params: |_, submitted| {
        let arns = task_arns(submitted);
        let cluster = text(submitted, "/Tasks/0/ClusterArn")?;
        (!arns.is_empty()).then(|| json!({ "Cluster": cluster, "Tasks": arns }))
    },
    stop_params: |_, submitted| {
        let cluster = text(submitted, "/Tasks/0/ClusterArn").unwrap_or_default();
        task_arns(submitted)
            .into_iter()
            .map(|task| json!({ "Cluster": cluster, "Task": task, "Reason": super::STOP_REASON }))
            .collect()
    },
    progress,
    start_failure: |answer| match answer.get("Failures") {
        Some(Value::Array(f)) if !f.is_empty() => Some(("AmazonECS.Unknown", answer.to_string())),
        _ => None,
    },
};

fn task_arns(submitted: &Value) -> Vec<&str> {
    submitted
        .get("Tasks")
        .and_then(Value::as_array)
        .map(|tasks| tasks.iter().filter_map(|t| text(t, "/TaskArn")).collect())
        .unwrap_or_default()
}

fn progress(described: Value) -> Progress {
    let tasks = described
        .get("Tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty()
        || tasks
            .iter()
            .any(|t| text(t, "/LastStatus") != Some("STOPPED"))
    {
        return Progress::Running;
    }
    let failed = tasks.iter().any(|t| {
        let exit_codes = t
            .get("Containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("ExitCode").and_then(Value::as_i64))
            })
            .into_iter()
            .flatten();
        text(t, "/StopCode") == Some("TaskFailedToStart") || exit_codes.into_iter().any(|c| c != 0)
    });
    let result = match <[Value; 1]>::try_from(tasks) {
        Ok([task]) => task,
        Err(tasks) => json!({ "Tasks": tasks }),
    };
    match failed {
        true => Progress::Failed(result),
        false => Progress::Succeeded(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_must_stop_and_exit_zero() {
        let task = |status: &str, code: i64| json!({"LastStatus": status, "Containers": [{"ExitCode": code}]});
        assert_eq!(
            progress(json!({"Tasks": [task("RUNNING", 0)]})),
            Progress::Running
        );
        assert_eq!(
            progress(json!({"Tasks": [task("STOPPED", 0), task("PENDING", 0)]})),
            Progress::Running
        );
        assert_eq!(
            progress(json!({"Tasks": [task("STOPPED", 0)]})),
            Progress::Succeeded(task("STOPPED", 0))
        );
        assert_eq!(
            progress(json!({"Tasks": [task("STOPPED", 0), task("STOPPED", 2)]})),
            Progress::Failed(json!({"Tasks": [task("STOPPED", 0), task("STOPPED", 2)]}))
        );
        let submitted = json!({"Tasks": [{"TaskArn": "t1", "ClusterArn": "c"}], "Failures": []});
        assert_eq!(
            (KIND.describe_params)(&json!({}), &submitted),
            Some(json!({"Cluster": "c", "Tasks": ["t1"]}))
        );
        assert!((KIND.start_failure)(&submitted).is_none());
        let refused = json!({"Tasks": [], "Failures": [{"Reason": "MISSING"}]});
        assert_eq!(
            (KIND.start_failure)(&refused).map(|f| f.0),
            Some("AmazonECS.Unknown")
        );
    }
}
