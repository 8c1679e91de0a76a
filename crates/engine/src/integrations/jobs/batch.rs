//! Batch `submitJob`: a job, followed with `DescribeJobs` (the `.sync` result is the job's
//! description, `Jobs[0]`), stopped with `TerminateJob`.

use serde_json::{json, Value};

use super::{text, Kind, Progress};

pub(super) const KIND: Kind = Kind {
    model: "batch",
    prefix: "Batch",
    cause_service: "AWSBatch",
    generic: "AWSBatchException",
    describe: "describeJobs",
    stop: "terminateJob",
    describe_params: |_, submitted| Some(json!({ "Jobs": [text(submitted, "/JobId")?] })),
    stop_params: |_, submitted| {
        text(submitted, "/JobId")
            .map(|id| json!({ "JobId": id, "Reason": super::STOP_REASON }))
            .into_iter()
            .collect()
    },
    progress,
    start_failure: |_| None,
};

fn progress(described: Value) -> Progress {
    let job = described.pointer("/Jobs/0").cloned().unwrap_or(Value::Null);
    match text(&job, "/Status") {
        Some("SUCCEEDED") => Progress::Succeeded(job),
        Some("FAILED") => Progress::Failed(job),
        _ => Progress::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let at = |s: &str| json!({"Jobs": [{"JobId": "j", "Status": s}]});
        assert_eq!(progress(at("RUNNABLE")), Progress::Running);
        assert_eq!(
            progress(at("SUCCEEDED")),
            Progress::Succeeded(json!({"JobId": "j", "Status": "SUCCEEDED"}))
        );
        assert_eq!(
            progress(at("FAILED")),
            Progress::Failed(json!({"JobId": "j", "Status": "FAILED"}))
        );
        assert_eq!(progress(json!({"Jobs": []})), Progress::Running);
    }
}
