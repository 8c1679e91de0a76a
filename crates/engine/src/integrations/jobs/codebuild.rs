//! CodeBuild `startBuild`: a build, followed with `BatchGetBuilds` (the `.sync` result is
//! `{"Build": …}`, as `StartBuild` answers), stopped with `StopBuild`.

use serde_json::{json, Value};

use super::{text, Kind, Progress};

pub(super) const KIND: Kind = Kind {
    model: "codebuild",
    prefix: "CodeBuild",
    cause_service: "AWSCodeBuild",
    generic: "AWSCodeBuildException",
    describe: "batchGetBuilds",
    stop: "stopBuild",
    describe_params: |_, submitted| Some(json!({ "Ids": [text(submitted, "/Build/Id")?] })),
    stop_params: |_, submitted| {
        text(submitted, "/Build/Id")
            .map(|id| json!({ "Id": id }))
            .into_iter()
            .collect()
    },
    progress,
    start_failure: |_| None,
};

fn progress(described: Value) -> Progress {
    let build = described
        .pointer("/Builds/0")
        .cloned()
        .unwrap_or(Value::Null);
    match text(&build, "/BuildStatus") {
        Some("SUCCEEDED") => Progress::Succeeded(json!({ "Build": build })),
        Some("FAILED" | "FAULT" | "TIMED_OUT" | "STOPPED") => {
            Progress::Failed(json!({ "Build": build }))
        }
        _ => Progress::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let at = |s: &str| json!({"Builds": [{"BuildStatus": s}]});
        assert_eq!(progress(at("IN_PROGRESS")), Progress::Running);
        assert_eq!(
            progress(at("SUCCEEDED")),
            Progress::Succeeded(json!({"Build": {"BuildStatus": "SUCCEEDED"}}))
        );
        assert_eq!(
            progress(at("FAULT")),
            Progress::Failed(json!({"Build": {"BuildStatus": "FAULT"}}))
        );
    }
}
