//! `--auth sigv4`: signatures verified against a credentials file, accounts isolated. The
//! account checks run in boto3 (tests/python/test_auth.py); the signature-level cases (a
//! stale or future date, a tampered body, no signature) sign requests here with aws-sigv4.

use crate::common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use common::{Options, Server};
use serde_json::Value;

const CREDENTIALS: &str = "[alice]
aws_access_key_id = AKIDALICE
aws_secret_access_key = alice-secret
aws_account_id = 111111111111

[bob]
aws_access_key_id = AKIDBOB
aws_secret_access_key = bob-secret
aws_account_id = 222222222222
";

fn server() -> (Server, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().expect("a credentials file");
    std::fs::write(file.path(), CREDENTIALS).expect("writing the credentials file");
    let path = file.path().to_string_lossy().into_owned();
    let server = Server::start_with_args(
        Options::default(),
        &["--auth", "sigv4", "--credentials-file", &path],
    );
    (server, file)
}

#[test]
fn accounts_are_isolated_for_boto3() {
    let (server, _file) = server();
    common::run_python_client_script(&server, "test_auth.py");
}

/// ListStateMachines signed by alice at `signed_at`, with `body` sent (signed over `{}`).
async fn call(server: &Server, signed_at: SystemTime, body: &str) -> (u16, Value) {
    let url = format!("{}/", server.endpoint());
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "AWSStepFunctions.ListStateMachines"),
    ];
    let identity = Credentials::new("AKIDALICE", "alice-secret", None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("states")
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(b"{}"),
    )
    .expect("a signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let (signed, _) = instructions.into_parts();
    let mut request = reqwest::Client::new().post(&url).body(body.to_owned());
    for (name, value) in headers.iter().skip(1) {
        request = request.header(*name, *value);
    }
    for h in signed {
        request = request.header(h.name(), h.value());
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn signatures_are_checked_as_aws_does() {
    let (server, _file) = server();
    let now = SystemTime::now();
    let (status, body) = call(&server, now, "{}").await;
    assert_eq!(status, 200, "{body}");

    let minutes = |m: u64| Duration::from_secs(60 * m);
    let cases = [
        (
            now - minutes(20),
            "{}",
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            now + minutes(20),
            "{}",
            "InvalidSignatureException",
            "not yet current",
        ),
        (
            now,
            "{\"maxResults\": 1}",
            "InvalidSignatureException",
            "does not match",
        ),
    ];
    for (at, sent, code, words) in cases {
        let (status, body) = call(&server, at, sent).await;
        assert_eq!(status, 400, "{body}");
        let error = body["__type"].as_str().unwrap_or_default();
        assert!(error.ends_with(&format!("#{code}")), "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}");
    }

    let unsigned = server
        .raw()
        .call("ListStateMachines", &serde_json::json!({}))
        .await;
    assert_eq!(
        unsigned.error_code().as_deref(),
        Some("MissingAuthenticationTokenException"),
        "{}",
        unsigned.text
    );
}

/// `--tls-cert`/`--tls-key`: the API over https, with a certificate the client trusts.
#[tokio::test]
async fn the_api_speaks_tls() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .expect("a self-signed certificate");
    let dir = tempfile::tempdir().expect("a directory");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("writing the certificate");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("writing the key");
    let (cert_arg, key_arg) = (cert.to_string_lossy(), key.to_string_lossy());
    let server = Server::start_with_args(
        Options::default(),
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
    );
    let trusted = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes())
        .expect("the certificate parses");
    let https = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .build()
        .expect("an https client");
    let url = format!("https://localhost:{}/", server.port());
    let response = https
        .post(&url)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
        .body("{}")
        .send()
        .await
        .expect("an https answer");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["stateMachines"].is_array(), "{body}");
    // Plain http on the same port is not answered as the API.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/", server.port()))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err(), "plain http was answered: {plain:?}");
}

/// The console cannot sign requests: under `--auth sigv4` `GET /` says so (403) and serves no
/// page; `/metrics` is closed too without `--metrics-token` (it shows every account's ARNs),
/// while `/health` (for probes) and the API's own answers stay.
#[tokio::test]
async fn the_console_is_off_under_sigv4() {
    let (server, _file) = server();
    let get = |path: &str| reqwest::get(format!("{}{path}", server.endpoint()));
    let page = get("/").await.expect("GET /");
    assert_eq!(page.status().as_u16(), 403);
    let text = page.text().await.expect("the page");
    assert!(text.contains("--auth sigv4"), "{text}");
    let status = |path: &'static str| async move { get(path).await.expect(path).status().as_u16() };
    assert_eq!(
        (status("/metrics").await, status("/health").await),
        (403, 200)
    );
    let unsigned = reqwest::Client::new()
        .put(format!("{}/", server.endpoint()))
        .send()
        .await
        .expect("PUT /");
    assert_eq!(
        unsigned.status().as_u16(),
        404,
        "other methods get the AWS 404"
    );
    let body: Value = serde_json::from_str(&unsigned.text().await.unwrap_or_default())
        .expect("an AWS error body");
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#UnknownOperationException"
    );
}
