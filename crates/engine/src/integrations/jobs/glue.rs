//! Glue `startJobRun`: a job run, followed with `GetJobRun` (the `.sync` result is the run,
//! `JobRun`), stopped with `BatchStopJobRun`. Both name the job as the task's `JobName`.

use serde_json::{json, Value};

use super::{text, Kind, Progress};

pub(super) const KIND: Kind = Kind {
    model: "glue",
    prefix: "Glue",
    cause_service: "AWSGlue",
    generic: "AWSGlueException",
    describe: "getJobRun",
    stop: "batchStopJobRun",
    describe_params: |input, submitted| {
        Some(json!({
            "JobName": text(input, "/JobName")?,
            "RunId": text(submitted, "/JobRunId")?,
        }))
    },
    stop_params: |input, submitted| match (text(input, "/JobName"), text(submitted, "/JobRunId")) {
        (Some(job), Some(run)) => vec![json!({ "JobName": job, "JobRunIds": [run] })],
        _ => Vec::new(),
    },
    progress,
    start_failure: |_| None,
};

fn progress(described: Value) -> Progress {
    let run = described.get("JobRun").cloned().unwrap_or(Value::Null);
    match text(&run, "/JobRunState") {
        Some("SUCCEEDED") => Progress::Succeeded(run),
        Some("FAILED" | "STOPPED" | "TIMEOUT" | "ERROR" | "EXPIRED") => Progress::Failed(run),
        _ => Progress::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let at = |s: &str| json!({"JobRun": {"JobRunState": s}});
        assert_eq!(progress(at("STARTING")), Progress::Running);
        assert_eq!(progress(at("STOPPING")), Progress::Running);
        assert_eq!(
            progress(at("SUCCEEDED")),
            Progress::Succeeded(json!({"JobRunState": "SUCCEEDED"}))
        );
        assert_eq!(
            progress(at("TIMEOUT")),
            Progress::Failed(json!({"JobRunState": "TIMEOUT"}))
        );
    }
}
