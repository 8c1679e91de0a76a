//! Athena `startQueryExecution`: a query, followed with `GetQueryExecution` (the `.sync`
//! result is its whole answer, `{"QueryExecution": …}`), stopped with `StopQueryExecution`.

use serde_json::{json, Value};

use super::{text, Kind, Progress};

pub(super) const KIND: Kind = Kind {
    model: "athena",
    prefix: "Athena",
    cause_service: "AmazonAthena",
    generic: "AmazonAthenaException",
    describe: "getQueryExecution",
    stop: "stopQueryExecution",
    describe_params: query,
    stop_params: |input, submitted| query(input, submitted).into_iter().collect(),
    progress,
    start_failure: |_| None,
};

fn query(_: &Value, submitted: &Value) -> Option<Value> {
    let id = text(submitted, "/QueryExecutionId")?;
    Some(json!({ "QueryExecutionId": id }))
}

fn progress(described: Value) -> Progress {
    match text(&described, "/QueryExecution/Status/State") {
        Some("SUCCEEDED") => Progress::Succeeded(described),
        Some("FAILED" | "CANCELLED") => Progress::Failed(described),
        _ => Progress::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let at = |s: &str| json!({"QueryExecution": {"Status": {"State": s}}});
        assert_eq!(progress(at("RUNNING")), Progress::Running);
        assert_eq!(progress(at("QUEUED")), Progress::Running);
        assert_eq!(
            progress(at("SUCCEEDED")),
            Progress::Succeeded(at("SUCCEEDED"))
        );
        assert_eq!(progress(at("CANCELLED")), Progress::Failed(at("CANCELLED")));
        assert_eq!(
            query(&json!({}), &json!({"QueryExecutionId": "q1"})),
            Some(json!({"QueryExecutionId": "q1"}))
        );
        assert_eq!(query(&json!({}), &json!({})), None);
    }
}
