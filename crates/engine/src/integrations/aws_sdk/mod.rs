//! AWS service calls driven by the service models: the generic
//! `arn:aws:states:::aws-sdk:SERVICE:ACTION` integrations (and `.waitForTaskToken`), and the
//! optimized integrations built on them ([`optimized`]).
//!
//! A call: the Task's parameters are mapped onto the operation's input shape
//! ([`value::input`]), serialized by the service's protocol (awsJson1_0/1_1 in [`json`],
//! restJson1 and restXml in [`rest`], awsQuery and ec2Query in [`query`]), SigV4-signed
//! ([`super::sigv4`]) and sent to the service's endpoint ([`endpoint`]). The answer is decoded
//! along the output shape with PascalCase member names. A service error becomes
//! `Client.ErrorName` (`DynamoDb.ConditionalCheckFailedException`, `S3.NoSuchKeyException`:
//! the error's shape with an `Exception` suffix, or `Client.ClientException` for an error the
//! model does not list), catchable like any task error. No answer, or one that cannot be read,
//! is `Client.SdkClientException`; the task's `TimeoutSeconds` passing, `States.Timeout`.

mod json;
pub(crate) mod model;
pub mod optimized;
mod query;
mod rest;
pub mod validate;
mod value;
mod xml;

use asl::error::names;
use std::time::Duration;

use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::Pattern;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use self::model::{Operation, Protocol, Service};
use super::identity::{self, IdentityError};
use super::{client, configured_endpoint, error_chain, sigv4, task_timeout, timed_out};
use crate::tasks::{failed, TaskReply};
use crate::{Config, Engine};

/// Without a `TimeoutSeconds`, how long one call may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A serialized request, before the endpoint and the signature.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    /// Percent-encoded, starting with `/`.
    pub path_and_query: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A successful answer.
pub struct Answer {
    pub output: Value,
    pub status: u16,
    pub headers: HeaderMap,
}

/// How a failed call is named and described: the `aws-sdk:*` integrations follow the AWS
/// Java SDK v2 (`DynamoDb.…`, `… (Service: DynamoDb, Status Code: 400, Request ID: …)`),
/// the optimized ones the v1 SDK (`DynamoDB.…`, `(Service: AmazonDynamoDBv2; Status Code:
/// 400; Error Code: …; Request ID: …; Proxy: null)`).
pub struct Naming {
    /// The prefix of error names: `DynamoDb`, `S3`, `SNS`.
    pub prefix: String,
    /// The name of an error the model does not list: `DynamoDb.DynamoDbException`.
    pub generic: String,
    /// The service as the cause names it, and whether in the v1 SDK's form.
    pub cause_service: String,
    pub v1: bool,
}

impl Naming {
    /// The v2 SDK's names for `service`.
    fn sdk(service: &Service) -> Naming {
        Naming {
            prefix: service.client.clone(),
            generic: format!("{0}.{0}Exception", service.client),
            cause_service: service.client.clone(),
            v1: false,
        }
    }
}

/// A call that did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// The service answered with an error.
    Service {
        status: u16,
        code: String,
        message: String,
        request_id: String,
        extended_request_id: Option<String>,
    },
    /// No answer: the endpoint is unreachable, the connection failed.
    Transport(String),
    /// An answer that is not what the protocol sends.
    Response(String),
    /// The task's `TimeoutSeconds` passed.
    TimedOut,
    /// Parameters the operation does not take.
    Invalid(String),
    /// No credentials to sign with.
    Identity(IdentityError),
}

impl CallError {
    /// The task failure it is, named for `service`.
    pub fn reply(self, service: &Service, naming: &Naming) -> TaskReply {
        match self {
            CallError::Service {
                status,
                code,
                message,
                request_id,
                extended_request_id,
            } => {
                let error = match service.error_shape(&code) {
                    Some(shape) if shape.ends_with("Exception") => {
                        format!("{}.{shape}", naming.prefix)
                    }
                    Some(shape) => format!("{}.{shape}Exception", naming.prefix),
                    None => naming.generic.clone(),
                };
                let cause = if naming.v1 {
                    format!(
                        "{message} (Service: {}; Status Code: {status}; Error Code: {code}; \
                         Request ID: {request_id}; Proxy: null)",
                        naming.cause_service
                    )
                } else {
                    let extended = extended_request_id
                        .map(|id| format!(", Extended Request ID: {id}"))
                        .unwrap_or_default();
                    format!(
                        "{message} (Service: {}, Status Code: {status}, Request ID: {request_id}{extended})",
                        naming.cause_service
                    )
                };
                failed(&error, cause)
            }
            CallError::Transport(e) => failed(
                &format!("{}.SdkClientException", naming.prefix),
                format!("Unable to execute HTTP request: {e}"),
            ),
            CallError::Response(e) => failed(
                &format!("{}.SdkClientException", naming.prefix),
                format!("Unable to unmarshall response ({e})"),
            ),
            CallError::TimedOut => {
                timed_out("The task timed out while waiting for the service to answer.")
            }
            CallError::Invalid(e) => failed(names::RUNTIME, e),
            CallError::Identity(e) => e.reply(&naming.prefix),
        }
    }
}

/// `arn:aws:states:::aws-sdk:SERVICE:ACTION[.waitForTaskToken]`.
pub async fn invoke(
    engine: &Engine,
    d: &Dispatch,
    name: &str,
    action: &str,
    pattern: Pattern,
    region: &str,
) -> TaskReply {
    let unsupported = |why: &str| {
        failed(
            names::RUNTIME,
            format!(
                "The resource 'arn:aws:states:::aws-sdk:{name}:{action}' is not supported: {why}."
            ),
        )
    };
    let Some(service) = model::service(name) else {
        return unsupported("stepwise has no model of this service (see README: adding a service)");
    };
    let op_action = action.strip_suffix(".waitForTaskToken").unwrap_or(action);
    if matches!(pattern, Pattern::Sync | Pattern::Sync2) {
        return unsupported("AWS SDK integrations do not support .sync");
    }
    let Some((op_name, op)) = service.operation(op_action) else {
        return unsupported("the service has no such action");
    };
    let naming = Naming::sdk(&service);
    let target = Target {
        service: &service,
        name,
        op_name,
        op,
        region,
    };
    match call(engine, d, &target, &d.input).await {
        Ok(answer) if pattern == Pattern::WaitForTaskToken => TaskReply::Submitted(answer.output),
        Ok(answer) => TaskReply::Done(TaskOutcome::Succeeded(answer.output)),
        Err(e) => e.reply(&service, &naming),
    }
}

/// What a call calls: an operation of a service (`name` in `aws-sdk:NAME`) in a region.
pub struct Target<'a> {
    pub service: &'a Service,
    pub name: &'a str,
    pub op_name: &'a str,
    pub op: &'a Operation,
    pub region: &'a str,
}

/// One call of `target` with the Task's `params`.
pub async fn call(
    engine: &Engine,
    d: &Dispatch,
    target: &Target<'_>,
    params: &Value,
) -> Result<Answer, CallError> {
    let Target {
        service,
        name,
        op_name,
        op,
        region,
    } = *target;
    let input = match &op.input {
        Some(shape) => value::input(service, shape, params).map_err(|e| CallError::Invalid(e.0))?,
        None => Value::Object(Map::new()),
    };
    let request = serialize(service, op_name, op, &input).map_err(|e| CallError::Invalid(e.0))?;
    let names = [name, service.endpoint_prefix.as_str()];
    let credentials = identity::task_credentials(engine, &names, d, region)
        .await
        .map_err(CallError::Identity)?;
    let endpoint = endpoint(engine.config(), name, service, region);
    let url = format!(
        "{}{}",
        endpoint.trim_end_matches('/'),
        request.path_and_query
    );
    let signing_region = if service.global_endpoint.is_some() {
        "us-east-1"
    } else {
        region
    };
    let scope = sigv4::Scope {
        region: signing_region,
        service: &service.signing_name,
    };
    let header_refs: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = sigv4::headers(
        &credentials,
        &scope,
        &request.method,
        &url,
        &header_refs,
        &request.body,
    )
    .map_err(CallError::Transport)?;
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| CallError::Invalid(e.to_string()))?;
    let http = client(engine).map_err(CallError::Transport)?;
    let timeout = task_timeout(engine, d).unwrap_or(DEFAULT_TIMEOUT);
    let mut req = http
        .request(method, &url)
        .timeout(timeout)
        .body(request.body);
    for (n, v) in header_refs
        .iter()
        .copied()
        .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
    {
        req = req.header(n, v);
    }
    let resp = req.send().await.map_err(no_answer)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(no_answer)?;
    if !(200..300).contains(&status) {
        return Err(service_error(service, status, &headers, &body));
    }
    let output = deserialize(service, op, status, &headers, &body).map_err(CallError::Response)?;
    Ok(Answer {
        output,
        status,
        headers,
    })
}

/// A request that got no (complete) answer.
fn no_answer(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::TimedOut
    } else {
        CallError::Transport(error_chain(&e))
    }
}

/// Where calls to `name` go: the configured endpoint, else AWS's regional endpoint.
pub fn endpoint(config: &Config, name: &str, service: &Service, region: &str) -> String {
    if let Some(url) = configured_endpoint(config, &[name, &service.endpoint_prefix]) {
        return url.clone();
    }
    match &service.global_endpoint {
        Some(host) => format!("https://{host}"),
        None => format!("https://{}.{region}.amazonaws.com", service.endpoint_prefix),
    }
}

fn serialize(
    service: &Service,
    op_name: &str,
    op: &Operation,
    input: &Value,
) -> Result<HttpRequest, value::InvalidParameter> {
    match service.protocol {
        Protocol::Json => {
            let body = match &op.input {
                Some(shape) => json::encode(service, shape, input),
                None => Value::Object(Map::new()),
            };
            let version = service.json_version.as_deref().unwrap_or("1.0");
            let target = match &service.target_prefix {
                Some(prefix) => format!("{prefix}.{op_name}"),
                None => op_name.to_owned(),
            };
            Ok(HttpRequest {
                method: "POST".into(),
                path_and_query: "/".into(),
                headers: vec![
                    (
                        "content-type".into(),
                        format!("application/x-amz-json-{version}"),
                    ),
                    ("x-amz-target".into(), target),
                ],
                body: body.to_string().into_bytes(),
            })
        }
        Protocol::Query | Protocol::Ec2 => Ok(HttpRequest {
            method: "POST".into(),
            path_and_query: "/".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: query::body(service, op_name, op, input).into_bytes(),
        }),
        Protocol::RestJson | Protocol::RestXml => rest::request(service, op, input),
    }
}

fn deserialize(
    service: &Service,
    op: &Operation,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, String> {
    let Some(shape) = op.output.as_deref() else {
        return Ok(Value::Object(Map::new()));
    };
    match service.protocol {
        Protocol::Json => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Object(Map::new()));
            }
            let v: Value =
                serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
            Ok(json::decode(service, shape, &v))
        }
        Protocol::Query => {
            let root = xml::parse(body)?;
            let wrapper = op.result_wrapper.as_deref().unwrap_or_default();
            Ok(match root.child(wrapper) {
                Some(result) => xml::decode(service, shape, result),
                None => Value::Object(Map::new()),
            })
        }
        Protocol::Ec2 => Ok(xml::decode(service, shape, &xml::parse(body)?)),
        Protocol::RestJson | Protocol::RestXml => {
            rest::response(service, shape, status, headers, body)
        }
    }
}

/// The error an error answer carries: its code, message and request id, wherever the
/// protocol puts them.
fn service_error(service: &Service, status: u16, headers: &HeaderMap, body: &[u8]) -> CallError {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // S3's error body repeats its extended request id (`x-amz-id-2`) as `HostId`.
    let (code, message, body_id, host_id) = match service.protocol {
        Protocol::Json | Protocol::RestJson => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let field = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| v.get(*n).and_then(Value::as_str))
                    .map(str::to_owned)
            };
            (
                header("x-amzn-errortype").or_else(|| field(&["__type", "code", "Code"])),
                field(&["message", "Message", "errorMessage"]),
                None,
                None,
            )
        }
        Protocol::Query | Protocol::Ec2 | Protocol::RestXml => match xml::parse(body) {
            Ok(doc) => (
                doc.find_text("Code"),
                doc.find_text("Message"),
                doc.find_text("RequestId")
                    .or_else(|| doc.find_text("RequestID")),
                doc.find_text("HostId"),
            ),
            Err(_) => (None, None, None, None),
        },
    };
    let code = code
        .map(|c| {
            let c = c.rsplit('#').next().unwrap_or(&c).to_owned();
            c.split(':').next().unwrap_or(&c).to_owned()
        })
        .unwrap_or_else(|| {
            match status {
                400 => "BadRequest",
                403 => "AccessDenied",
                404 => "NotFound",
                _ => "InternalFailure",
            }
            .to_owned()
        });
    CallError::Service {
        status,
        message: message.unwrap_or_else(|| format!("HTTP status {status}")),
        request_id: body_id
            .or_else(|| header("x-amzn-requestid"))
            .or_else(|| header("x-amz-request-id"))
            .unwrap_or_else(|| "null".into()),
        extended_request_id: header("x-amz-id-2").or(host_id),
        code,
    }
}

/// The error and cause of a failed reply, for tests.
#[cfg(test)]
fn failure(reply: TaskReply) -> (String, String) {
    match reply {
        TaskReply::Done(TaskOutcome::Failed(asl::history::ErrorCause {
            error,
            cause,
            location: None,
        })) => (error.unwrap_or_default(), cause.unwrap_or_default()),
        _ => panic!("not a failure"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_named_after_the_model() {
        let ddb = model::service("dynamodb").expect("model");
        let naming = Naming::sdk(&ddb);
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-requestid", "R1".parse().expect("header"));
        let e = service_error(
            &ddb,
            400,
            &headers,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
        );
        assert_eq!(
            failure(e.reply(&ddb, &naming)),
            (
                "DynamoDb.ConditionalCheckFailedException".into(),
                "The conditional request failed (Service: DynamoDb, Status Code: 400, Request ID: R1)"
                    .into()
            )
        );
        let e = service_error(&ddb, 400, &headers, br#"{"__type":"ValidationException"}"#);
        assert_eq!(
            failure(e.reply(&ddb, &naming)).0,
            "DynamoDb.DynamoDbException"
        );
        let s3 = model::service("s3").expect("model");
        let e = service_error(
            &s3,
            404,
            &HeaderMap::new(),
            b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>Q</RequestId></Error>",
        );
        assert_eq!(
            failure(e.reply(&s3, &Naming::sdk(&s3))).0,
            "S3.NoSuchKeyException"
        );
        let ec2 = model::service("ec2").expect("model");
        let e = service_error(
            &ec2,
            400,
            &HeaderMap::new(),
            b"<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>no vpc</Message>\
              </Error></Errors><RequestID>E1</RequestID></Response>",
        );
        assert_eq!(
            failure(e.reply(&ec2, &Naming::sdk(&ec2))),
            (
                "Ec2.Ec2Exception".into(),
                "no vpc (Service: Ec2, Status Code: 400, Request ID: E1)".into()
            )
        );
        let sns = model::service("sns").expect("model");
        let e = service_error(
            &sns,
            404,
            &HeaderMap::new(),
            b"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message>\
              </Error><RequestId>S1</RequestId></ErrorResponse>",
        );
        assert_eq!(
            failure(e.reply(&sns, &Naming::sdk(&sns))).0,
            "Sns.NotFoundException"
        );
        let e = CallError::Transport("connection refused".into());
        assert_eq!(
            failure(e.reply(&s3, &Naming::sdk(&s3))).0,
            "S3.SdkClientException"
        );
    }

    #[test]
    fn endpoints_by_override_then_aws_endpoint_then_aws() {
        let sqs = model::service("sqs").expect("model");
        let iam = model::service("iam").expect("model");
        let mut config = Config::default();
        assert_eq!(
            endpoint(&config, "sqs", &sqs, "eu-west-1"),
            "https://sqs.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&config, "iam", &iam, "eu-west-1"),
            "https://iam.amazonaws.com"
        );
        config.aws_endpoint = Some("http://local:5000".into());
        assert_eq!(
            endpoint(&config, "sqs", &sqs, "eu-west-1"),
            "http://local:5000"
        );
        config.endpoints.insert("sqs".into(), "http://sqs:1".into());
        assert_eq!(endpoint(&config, "sqs", &sqs, "eu-west-1"), "http://sqs:1");
    }
}
