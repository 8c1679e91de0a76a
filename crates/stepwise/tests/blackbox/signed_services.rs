//! API Gateway `invoke` and Bedrock `invokeModel`, which cannot run locally, against a stub
//! endpoint (`--endpoint execute-api=…`, `--endpoint bedrock=…`) that reads the request,
//! checks that its SigV4 `Authorization` header is well formed, says for which region and
//! service it was signed, and verifies the signature (the server signs for a configured
//! endpoint with the environment's credentials, else `test`/`test`, which the stub can read
//! too), then echoes all that back for the cases to check.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::body::{to_bytes, Body};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::common::{Options, Server};
use crate::services::{catching, caught_tail, chain, check, run, task, Case, Want};

/// Starts the stub on a free port; its URL.
async fn stub() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the stub listener");
    let addr = listener.local_addr().expect("stub address");
    let app = axum::Router::new().fallback(answer);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// `20261203T153000Z` as a time.
fn amz_date(text: &str) -> Option<SystemTime> {
    let n = |r: std::ops::Range<usize>| text.get(r).and_then(|t| t.parse::<u64>().ok());
    let (year, month, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, m, sec) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm), for years after 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether the request's signature is the one its credentials (the environment's, as the
/// server uses them, else `test`/`test`) give for what it signed.
fn verified(parts: &Parts, body: &[u8], scope: (&str, &str), signed: &[&str]) -> bool {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(time) = header("x-amz-date").and_then(amz_date) else {
        return false;
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (key, secret) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(k), Some(s)) => (k, s),
        _ => ("test".to_owned(), "test".to_owned()),
    };
    let token = env("AWS_SESSION_TOKEN");
    let identity = Credentials::new(key, secret, token, None, "stub").into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.0)
        .name(scope.1)
        .time(time)
        .settings(SigningSettings::default())
        .build()
    else {
        return false;
    };
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .filter(|n| !matches!(**n, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|n| Some((*n, header(n)?)))
        .collect();
    let url = format!("http://{}{}", header("host").unwrap_or_default(), parts.uri);
    let Ok(signable) = SignableRequest::new(
        parts.method.as_str(),
        &url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    ) else {
        return false;
    };
    let Ok(output) = sign(signable, &params.into()) else {
        return false;
    };
    let (instructions, _) = output.into_parts();
    let (expected, _) = instructions.into_parts();
    let expected = expected
        .iter()
        .find(|h| h.name() == "authorization")
        .map(|h| h.value().to_owned());
    expected.as_deref() == header("authorization")
}

/// The parts of a SigV4 `Authorization` header, or why it is not one, and whether its
/// signature verifies.
fn authorization(request: &Parts, body: &[u8], header: &str, date: Option<&str>) -> Value {
    let Some(rest) = header.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return json!({"malformed": "not AWS4-HMAC-SHA256"});
    };
    let parts: BTreeMap<&str, &str> = rest.split(", ").filter_map(|p| p.split_once('=')).collect();
    let (Some(credential), Some(signed), Some(signature)) = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    ) else {
        return json!({"malformed": "Credential, SignedHeaders and Signature are required"});
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [_key, day, region, service, "aws4_request"] = scope.as_slice() else {
        return json!({"malformed": format!("credential scope {credential}")});
    };
    let hex = signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
    let signed: Vec<&str> = signed.split(';').collect();
    json!({
        "region": region,
        "service": service,
        "verified": verified(request, body, (region, service), &signed),
        "signedHeaders": signed,
        "signatureIsHex256": hex,
        "dateMatches": date.is_some_and(|d| d.starts_with(day)),
    })
}

/// Echoes the request: method, path, query, body, a header, the signature's parts. Bedrock
/// model `bad-model` and API path `…/forbidden` answer errors as the services do.
async fn answer(req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let auth = header("authorization")
        .map(|a| authorization(&parts, &bytes, a, header("x-amz-date")))
        .unwrap_or(Value::Null);
    let path = parts.uri.path().to_owned();
    let echo = json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query().unwrap_or_default(),
        "trace": header("x-trace"),
        "accept": header("accept"),
        "received": body,
        "auth": auth,
    });
    let (status, extra, text) = if path == "/model/bad-model/invoke" {
        (
            StatusCode::BAD_REQUEST,
            Some(("x-amzn-errortype", "ValidationException:http://internal")),
            json!({"message": "The provided model identifier is invalid."}).to_string(),
        )
    } else if path.ends_with("/forbidden") {
        (
            StatusCode::FORBIDDEN,
            None,
            json!({"message": "Forbidden"}).to_string(),
        )
    } else {
        (StatusCode::OK, None, echo.to_string())
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "stub-request");
    if let Some((n, v)) = extra {
        builder = builder.header(n, v);
    }
    builder
        .body(Body::from(text))
        .unwrap_or_else(|e| panic!("building a stub response: {e}"))
}

fn gateway(parameters: Value) -> Value {
    task("arn:aws:states:::apigateway:invoke", parameters)
}

fn caught(name: &'static str, state: Value, error: &'static str, cause: &'static str) -> Case {
    Case {
        name,
        definition: chain([vec![("Call", catching(state, error))], caught_tail()].concat()),
        want: Want::Caught(error, cause),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "apigateway-iam-post",
            definition: chain(vec![(
                "Call",
                gateway(json!({
                    "ApiEndpoint": "abc123.execute-api.us-west-2.amazonaws.com",
                    "Method": "POST", "Stage": "prod", "Path": "pets/7",
                    "QueryParameters": {"kind": ["dog"]},
                    "Headers": {"X-Trace": ["t-1"]},
                    "RequestBody": {"name": "rex"},
                    "AuthType": "IAM_ROLE"
                })),
            )]),
            want: Want::Output(vec![
                ("/StatusCode", Some(json!(200))),
                ("/StatusText", Some(json!("OK"))),
                ("/Headers/content-type", Some(json!(["application/json"]))),
                ("/ResponseBody/method", Some(json!("POST"))),
                ("/ResponseBody/path", Some(json!("/prod/pets/7"))),
                ("/ResponseBody/query", Some(json!("kind=dog"))),
                ("/ResponseBody/trace", Some(json!("t-1"))),
                ("/ResponseBody/received", Some(json!({"name": "rex"}))),
                ("/ResponseBody/auth/region", Some(json!("us-west-2"))),
                ("/ResponseBody/auth/service", Some(json!("execute-api"))),
                ("/ResponseBody/auth/signatureIsHex256", Some(json!(true))),
                ("/ResponseBody/auth/verified", Some(json!(true))),
                ("/ResponseBody/auth/dateMatches", Some(json!(true))),
                ("/ResponseBody/auth/signedHeaders/0", Some(json!("content-type"))),
            ]),
        },
        Case {
            name: "apigateway-no-auth-get",
            definition: chain(vec![(
                "Call",
                gateway(json!({
                    "ApiEndpoint": "abc123.execute-api.us-west-2.amazonaws.com",
                    "Method": "GET", "Stage": "prod", "Path": "/pets"
                })),
            )]),
            want: Want::Output(vec![
                ("/ResponseBody/path", Some(json!("/prod/pets"))),
                ("/ResponseBody/auth", Some(Value::Null)),
            ]),
        },
        caught(
            "apigateway-403",
            gateway(json!({
                "ApiEndpoint": "abc123.execute-api.us-west-2.amazonaws.com",
                "Method": "GET", "Stage": "prod", "Path": "forbidden", "AuthType": "IAM_ROLE"
            })),
            "ApiGateway.403",
            "\"StatusCode\":403",
        ),
        Case {
            name: "bedrock-invoke-model-in-the-resource-region",
            definition: chain(vec![(
                "Call",
                task(
                    "arn:aws:states:eu-central-1:123456789012:bedrock:invokeModel",
                    json!({"ModelId": "amazon.titan-text-express-v1",
                        "Body": {"inputText": "Say hi", "textGenerationConfig": {"maxTokenCount": 10}}}),
                ),
            )]),
            want: Want::Output(vec![
                ("/ContentType", Some(json!("application/json"))),
                ("/Body/method", Some(json!("POST"))),
                ("/Body/path", Some(json!("/model/amazon.titan-text-express-v1/invoke"))),
                ("/Body/accept", Some(json!("application/json"))),
                ("/Body/received/inputText", Some(json!("Say hi"))),
                ("/Body/auth/region", Some(json!("eu-central-1"))),
                ("/Body/auth/service", Some(json!("bedrock"))),
                ("/Body/auth/signatureIsHex256", Some(json!(true))),
                ("/Body/auth/verified", Some(json!(true))),
            ]),
        },
        caught(
            "bedrock-validation-error",
            task(
                "arn:aws:states:::bedrock:invokeModel",
                json!({"ModelId": "bad-model", "Body": {"inputText": "x"}}),
            ),
            "Bedrock.ValidationException",
            "The provided model identifier is invalid. (Service: BedrockRuntime, Status Code: 400, Request ID: stub-request)",
        ),
    ]
}

/// API Gateway and Bedrock calls reach the stub signed for their service and region, and
/// their answers and errors are shaped as AWS records them.
#[tokio::test]
async fn apigateway_and_bedrock_against_a_stub() {
    let url = stub().await;
    let server = Server::start_with_args(
        Options::default(),
        &[
            "--endpoint",
            &format!("execute-api={url}"),
            "--endpoint",
            &format!("bedrock={url}"),
        ],
    );
    for (i, case) in cases().iter().enumerate() {
        let (_, output) = run(
            &server,
            &format!("signed-{i}"),
            &case.definition,
            &json!({}),
        )
        .await;
        check(case, &output);
    }
}
