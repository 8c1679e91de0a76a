//! Real clients against a real server: boto3 and the AWS CLI (`tests/python/test_clients.py`),
//! and the AWS SDK for JavaScript v3 (`tests/js/test_client_sfn.mjs`).
//!
//! python3, boto3 and the AWS CLI are required; a missing one fails the test with a message
//! saying which. The JavaScript test needs node and the packages `scripts/setup-test-deps`
//! installs (`npm ci` in `tests/js`); without node it is skipped with a message.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::{run_python_client_script, Server};

#[test]
fn boto3_and_aws_cli() {
    let server = Server::sqlite(0.1);
    run_python_client_script(&server, "test_clients.py");
}

#[test]
fn javascript_sdk() {
    if Command::new("node").arg("--version").output().is_err() {
        println!("skipped: node is not installed");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js");
    assert!(
        dir.join("node_modules/@aws-sdk/client-sfn").is_dir(),
        "@aws-sdk/client-sfn is not installed in {}: run scripts/setup-test-deps",
        dir.display()
    );
    let server = Server::memory(0.1);
    let out = Command::new("node")
        .arg("--no-warnings")
        .arg("test_client_sfn.mjs")
        .current_dir(&dir)
        .env("STEPWISE_ENDPOINT", server.endpoint())
        .output()
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("checks passed"),
        "test_client_sfn.mjs failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n{}",
        out.status,
        server.logs()
    );
}
