//! boto3 and the AWS CLI against a real server: runs `tests/python/test_clients.py`.
//!
//! python3, boto3 and the AWS CLI are required; a missing one fails the test with a message
//! saying which.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/test_clients.py")
}

/// Runs a probe command; panics with `missing` when it cannot run or fails.
fn require(program: &str, args: &[&str], missing: &str) {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{missing}\n`{program} {}` exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("{missing}\ncannot run `{program}`: {e}"),
    }
}

#[test]
fn boto3_and_aws_cli() {
    require(
        "python3",
        &["--version"],
        "python3 is required for the client tests",
    );
    require(
        "python3",
        &["-c", "import boto3, botocore"],
        "boto3 is required for the client tests (pip install boto3)",
    );
    require(
        "aws",
        &["--version"],
        "the AWS CLI (`aws`) is required for the client tests",
    );
    let path = script();
    assert!(path.is_file(), "missing {}", path.display());

    let server = Server::sqlite(0.1);
    let out = Command::new("python3")
        .arg(&path)
        .env("STEPWISE_ENDPOINT", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("running python3 tests/python/test_clients.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "test_clients.py failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n{}",
        out.status,
        server.logs()
    );
    assert!(
        stdout.contains("checks passed"),
        "the script did not finish:\n{stdout}"
    );
}
