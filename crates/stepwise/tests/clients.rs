//! boto3 and the AWS CLI against a real server: runs `tests/python/test_clients.py`.
//!
//! python3, boto3 and the AWS CLI are required; a missing one fails the test with a message
//! saying which.

mod common;

use common::{run_python_client_script, Server};

#[test]
fn boto3_and_aws_cli() {
    let server = Server::sqlite(0.1);
    run_python_client_script(&server, "test_clients.py");
}
