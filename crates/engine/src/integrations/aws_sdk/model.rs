//! The AWS service models the `aws-sdk:*` integrations are driven by: compact extracts of
//! botocore's models (`scripts/gen-aws-models.py` → `src/aws_models/models.json.gz`), embedded
//! in the binary and read on first use.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::Value;

/// The models, gzipped JSON keyed by the service name of `aws-sdk:SERVICE:ACTION`.
const MODELS: &[u8] = include_bytes!("../../aws_models/models.json.gz");

/// A wire protocol, as botocore names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// awsJson1_0 / awsJson1_1: `POST /`, `X-Amz-Target`, a JSON body.
    Json,
    /// restJson1: the operation's HTTP binding, JSON bodies.
    RestJson,
    /// restXml: the operation's HTTP binding, XML bodies (S3).
    RestXml,
    /// awsQuery: form-encoded `Action` requests, XML answers.
    Query,
    /// ec2Query: awsQuery with EC2's list and name rules.
    Ec2,
}

/// One service.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The AWS Java SDK's client name (`DynamoDb`, `S3`, `EventBridge`): Step Functions'
    /// prefix of the service's error names.
    pub client: String,
    pub protocol: Protocol,
    pub endpoint_prefix: String,
    pub signing_name: String,
    pub api_version: String,
    pub target_prefix: Option<String>,
    pub json_version: Option<String>,
    /// The one endpoint of a global service (IAM), without a region.
    pub global_endpoint: Option<String>,
    pub operations: HashMap<String, Operation>,
    /// Wire error codes that differ from their shape's name.
    pub errors: HashMap<String, String>,
    pub shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Method and request URI (with the URI's label templates and fixed query).
    pub http: (String, String),
    pub input: Option<String>,
    pub output: Option<String>,
    /// awsQuery: the element that wraps the output (`PublishResult`).
    pub result_wrapper: Option<String>,
}

/// The type of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    Timestamp,
    Blob,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
    pub member: Option<Member>,
    pub key: Option<Member>,
    pub value: Option<Member>,
    #[serde(default)]
    pub flattened: bool,
    /// The member that is the whole HTTP body (rest protocols).
    pub payload: Option<String>,
    pub location_name: Option<String>,
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(default)]
    pub exception: bool,
}

/// A reference to a shape from a structure, list or map, with its serialization traits.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub shape: String,
    pub location: Option<Location>,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_attribute: bool,
    pub xml_namespace: Option<XmlNamespace>,
}

/// Where a member of a rest request or response goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Uri,
    Querystring,
    Header,
    /// A map whose entries are the headers starting with the member's `locationName`.
    Headers,
    #[serde(rename = "statusCode")]
    StatusCode,
}

#[derive(Debug, Deserialize)]
pub struct XmlNamespace {
    pub uri: Option<String>,
}

impl Service {
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The operation an action names: `getItem` → `GetItem` (`DescribeVpcs` too).
    pub fn operation(&self, action: &str) -> Option<(&str, &Operation)> {
        let mut name = action.to_owned();
        if let Some(first) = name.get(0..1) {
            name.replace_range(0..1, &first.to_uppercase());
        }
        self.operations
            .get_key_value(&name)
            .map(|(k, op)| (k.as_str(), op))
    }

    /// The shape an error code names, when the model has it (`NoSuchKey`, `ResourceNotFound…`).
    pub fn error_shape(&self, code: &str) -> Option<&str> {
        if let Some(shape) = self.errors.get(code) {
            return Some(shape);
        }
        self.shapes
            .get_key_value(code)
            .filter(|(_, s)| s.exception)
            .map(|(k, _)| k.as_str())
    }
}

/// The model of a service (`aws-sdk:SERVICE`), parsed on first use. `None` when stepwise
/// ships no model for it.
pub fn service(name: &str) -> Option<Arc<Service>> {
    static RAW: OnceLock<HashMap<String, Value>> = OnceLock::new();
    static PARSED: OnceLock<Mutex<HashMap<String, Arc<Service>>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(Default::default);
    let mut cache = parsed.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = cache.get(name) {
        return Some(s.clone());
    }
    let raw = RAW.get_or_init(|| {
        let mut text = Vec::new();
        // The embedded models were written by our script: failing to read them is a build
        // defect, reported by the unit test below; at run time the services are just absent.
        if flate2::read::GzDecoder::new(MODELS)
            .read_to_end(&mut text)
            .is_err()
        {
            return HashMap::new();
        }
        serde_json::from_slice(&text).unwrap_or_default()
    });
    let service: Service = serde_json::from_value(raw.get(name)?.clone()).ok()?;
    let service = Arc::new(service);
    cache.insert(name.to_owned(), service.clone());
    Some(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_model_parses() {
        let names = [
            "dynamodb",
            "sqs",
            "sns",
            "eventbridge",
            "s3",
            "lambda",
            "sfn",
            "ecs",
            "batch",
            "glue",
            "athena",
            "sts",
            "secretsmanager",
            "ssm",
            "kms",
            "sagemaker",
            "codebuild",
            "ec2",
            "cloudwatch",
            "cloudwatchlogs",
            "kinesis",
            "firehose",
            "apigateway",
            "bedrockruntime",
            "rekognition",
            "textract",
            "comprehend",
            "translate",
            "emr",
            "iam",
        ];
        for name in names {
            let s = service(name).unwrap_or_else(|| panic!("no model for {name}"));
            for (op, o) in &s.operations {
                for shape in o.input.iter().chain(&o.output) {
                    assert!(s.shape(shape).is_some(), "{name}.{op}: no shape {shape}");
                }
            }
        }
        let ddb = service("dynamodb").expect("dynamodb");
        assert_eq!(ddb.client, "DynamoDb");
        assert_eq!(ddb.protocol, Protocol::Json);
        assert_eq!(ddb.operation("getItem").map(|(n, _)| n), Some("GetItem"));
        assert_eq!(
            ddb.error_shape("ConditionalCheckFailedException"),
            Some("ConditionalCheckFailedException")
        );
        assert_eq!(service("s3").expect("s3").protocol, Protocol::RestXml);
        assert_eq!(service("ec2").expect("ec2").protocol, Protocol::Ec2);
        assert!(service("nosuch").is_none());
    }
}
