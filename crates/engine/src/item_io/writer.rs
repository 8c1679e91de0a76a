//! ResultWriter and the Map state's result: child results shaped into AWS's entries, the
//! bounded result array, and the export of result files and their manifest to S3.

use asl::error::ErrorCause;
use serde_json::{json, Map, Value};

use asl::interpreter::MAX_PAYLOAD_BYTES;

use crate::s3::{S3Error, MIN_PART_BYTES, S3};

use super::reader::string_arg;
use super::{data_limit, writer_failed};

/// How a child execution of a Map Run ended (or that it never started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    /// Never started: the Map Run ended first.
    Pending,
}

impl ChildStatus {
    /// The status as the API and the result files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Succeeded => "SUCCEEDED",
            ChildStatus::Failed => "FAILED",
            ChildStatus::TimedOut => "TIMED_OUT",
            ChildStatus::Aborted => "ABORTED",
            ChildStatus::Pending => "PENDING",
        }
    }

    /// The result file the child is written to.
    fn group(self) -> Group {
        match self {
            ChildStatus::Succeeded => Group::Succeeded,
            ChildStatus::Failed | ChildStatus::TimedOut | ChildStatus::Aborted => Group::Failed,
            ChildStatus::Pending => Group::Pending,
        }
    }
}

/// The result files, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group {
    Succeeded,
    Failed,
    Pending,
}

impl Group {
    const ALL: [Group; 3] = [Group::Succeeded, Group::Failed, Group::Pending];

    fn name(self) -> &'static str {
        match self {
            Group::Succeeded => "SUCCEEDED",
            Group::Failed => "FAILED",
            Group::Pending => "PENDING",
        }
    }
}

/// One child execution of a Map Run, as the result files describe it. Text fields are
/// written as given: dates as AWS writes them (`2025-02-04T01:49:50.099Z`), `input` and
/// `output` as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildResult {
    pub execution_arn: Option<String>,
    pub state_machine_arn: Option<String>,
    pub name: Option<String>,
    pub status: ChildStatus,
    /// The input the child received (the item or batch), JSON text.
    pub input: String,
    /// The child's output, JSON text (succeeded children).
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: Option<String>,
    pub stop_date: Option<String>,
    pub redrive_count: Option<u32>,
    /// `REDRIVABLE`, `NOT_REDRIVABLE`, …
    pub redrive_status: Option<String>,
    /// `Execution is SUCCEEDED and cannot be redriven`, …
    pub redrive_status_reason: Option<String>,
}

impl ChildResult {
    /// A child that never started, for `input`.
    pub fn pending(input: String) -> ChildResult {
        ChildResult {
            execution_arn: None,
            state_machine_arn: None,
            name: None,
            status: ChildStatus::Pending,
            input,
            output: None,
            error: None,
            cause: None,
            start_date: None,
            stop_date: None,
            redrive_count: None,
            redrive_status: None,
            redrive_status_reason: None,
        }
    }
}

/// `WriterConfig.OutputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    Json,
    Jsonl,
}

/// `WriterConfig.Transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    None,
    Compact,
    Flatten,
}

/// A `WriterConfig`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    pub output_type: OutputType,
    pub transformation: Transformation,
}

impl WriterConfig {
    /// Checks a `WriterConfig`; absent fields take AWS's defaults (`JSON`, `NONE`).
    pub fn parse(config: &Value) -> Result<WriterConfig, ErrorCause> {
        let obj = config
            .as_object()
            .ok_or_else(|| writer_failed("WriterConfig must be an object"))?;
        let field = |name: &str| match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(writer_failed(format!(
                "WriterConfig field {name} must be a string, got {other}"
            ))),
        };
        let output_type = match field("OutputType")? {
            None | Some("JSON") => OutputType::Json,
            Some("JSONL") => OutputType::Jsonl,
            Some(other) => {
                return Err(writer_failed(format!(
                    "OutputType '{other}' is not JSON or JSONL"
                )))
            }
        };
        let transformation = match field("Transformation")? {
            None | Some("NONE") => Transformation::None,
            Some("COMPACT") => Transformation::Compact,
            Some("FLATTEN") => Transformation::Flatten,
            Some(other) => {
                return Err(writer_failed(format!(
                    "Transformation '{other}' is not NONE, COMPACT or FLATTEN"
                )))
            }
        };
        Ok(WriterConfig {
            output_type,
            transformation,
        })
    }
}

/// A child's entry in a result file. `typed`: `Input` and `Output` as JSON values (the
/// `WriterConfig` format) rather than JSON text (the original format).
pub fn result_entry(child: &ChildResult, typed: bool) -> Value {
    let payload = |text: &str| {
        if typed {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        } else {
            Value::String(text.to_owned())
        }
    };
    let text = |v: &Option<String>| v.as_ref().map(|s| Value::String(s.clone()));
    // AWS writes the fields in alphabetical order.
    let fields: [(&str, Option<Value>); 15] = [
        ("Cause", text(&child.cause)),
        ("Error", text(&child.error)),
        ("ExecutionArn", text(&child.execution_arn)),
        ("Input", Some(payload(&child.input))),
        ("InputDetails", Some(json!({"Included": true}))),
        ("Name", text(&child.name)),
        ("Output", child.output.as_deref().map(payload)),
        (
            "OutputDetails",
            child.output.as_ref().map(|_| json!({"Included": true})),
        ),
        ("RedriveCount", child.redrive_count.map(Value::from)),
        ("RedriveStatus", text(&child.redrive_status)),
        ("RedriveStatusReason", text(&child.redrive_status_reason)),
        ("StartDate", text(&child.start_date)),
        ("StateMachineArn", text(&child.state_machine_arn)),
        ("Status", Some(Value::from(child.status.as_str()))),
        ("StopDate", text(&child.stop_date)),
    ];
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

/// A child's entries as `transformation` shapes them: its full entry (`NONE`, and any child
/// that did not succeed), or its output (`COMPACT`; an array output's elements, spliced in,
/// with `FLATTEN`).
pub(super) fn shaped(child: &ChildResult, transformation: Transformation) -> Vec<Value> {
    if transformation == Transformation::None || child.status != ChildStatus::Succeeded {
        return vec![result_entry(child, true)];
    }
    let output = match &child.output {
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        None => Value::Null,
    };
    match (output, transformation) {
        (Value::Array(items), Transformation::Flatten) => items,
        (value, _) => vec![value],
    }
}

/// A child's output as the Map state's result holds it.
///
/// [GUESS] A child that failed within the tolerated failures has no output: it is `null` in
/// the result (what AWS puts there is not recorded in the corpus).
pub(super) fn output_value(child: &ChildResult) -> Value {
    child
        .output
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The size of `v` as compact JSON text, without writing the text.
pub(super) fn json_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, v);
    counter.0
}

/// The Map state's result, built child by child in item order: each child's output (no
/// `ResultWriter`), or its entries as a `WriterConfig` shapes them (a `ResultWriter` without
/// S3). As a state's output it may not exceed 256 KiB of JSON: once it does, adding fails
/// with `States.DataLimitExceeded`, so no more than that is ever held. [GUESS] The limit
/// applies to the result before `ResultSelector`/`ResultPath`, so even `ResultPath: null`
/// does not avoid it (AWS's message says the state "returned a result" too large, as for a
/// task's result; a recorded case with `ResultPath: null` is not in the corpus).
#[derive(Debug)]
pub struct ResultArray {
    /// `None`: the children's outputs.
    transformation: Option<Transformation>,
    values: Vec<Value>,
    /// The size of the array's JSON text so far.
    size: usize,
    /// The Map state, named by the failure.
    state: String,
}

impl ResultArray {
    /// The children's outputs, for the Map state `state`.
    pub fn outputs(state: &str) -> ResultArray {
        ResultArray {
            transformation: None,
            values: Vec::new(),
            size: 2,
            state: state.to_owned(),
        }
    }

    /// The children's results as `writer_config` shapes them, for the Map state `state`.
    pub fn shaped(writer_config: &Value, state: &str) -> Result<ResultArray, ErrorCause> {
        let config = WriterConfig::parse(writer_config)?;
        Ok(ResultArray {
            transformation: Some(config.transformation),
            ..ResultArray::outputs(state)
        })
    }

    /// Adds the next child's result.
    pub fn push(&mut self, child: &ChildResult) -> Result<(), ErrorCause> {
        let values = match self.transformation {
            None => vec![output_value(child)],
            Some(t) => shaped(child, t),
        };
        for value in values {
            self.size += json_len(&value) + usize::from(!self.values.is_empty());
            if self.size > MAX_PAYLOAD_BYTES {
                return Err(data_limit(&self.state));
            }
            self.values.push(value);
        }
        Ok(())
    }

    pub fn finish(self) -> Value {
        Value::Array(self.values)
    }
}

/// Where a `ResultWriter` writes: `PREFIX/<map run id>/` in `Bucket`, files formatted as its
/// `WriterConfig` says (the original format without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTarget {
    pub bucket: String,
    /// `PREFIX/<map run id>/` (`<map run id>/` without a prefix).
    pub dir: String,
    pub config: Option<WriterConfig>,
}

impl ExportTarget {
    /// From the `ResultWriter`'s evaluated `Parameters` (`Bucket`, `Prefix`) and
    /// `WriterConfig`; the Map Run's id is the last `:` part of its ARN.
    pub fn parse(
        arguments: &Value,
        writer_config: Option<&Value>,
        map_run_arn: &str,
    ) -> Result<ExportTarget, ErrorCause> {
        let args = arguments
            .as_object()
            .ok_or_else(|| writer_failed("The ResultWriter parameters must be an object"))?;
        let bucket = string_arg(args, "Bucket")
            .map_err(writer_failed)?
            .ok_or_else(|| writer_failed("The field Bucket is required by the ResultWriter"))?;
        let prefix = string_arg(args, "Prefix")
            .map_err(writer_failed)?
            .unwrap_or_default();
        let config = writer_config.map(WriterConfig::parse).transpose()?;
        let run_id = map_run_arn.rsplit(':').next().unwrap_or(map_run_arn);
        let dir = match prefix.as_str() {
            "" => format!("{run_id}/"),
            p if p.ends_with('/') => format!("{p}{run_id}/"),
            p => format!("{p}/{run_id}/"),
        };
        Ok(ExportTarget {
            bucket,
            dir,
            config,
        })
    }

    pub fn manifest_key(&self) -> String {
        format!("{}manifest.json", self.dir)
    }

    fn file_key(&self, group: Group) -> String {
        format!("{}{}_0.json", self.dir, group.name())
    }

    fn output_type(&self) -> OutputType {
        self.config.map_or(OutputType::Json, |c| c.output_type)
    }

    /// A child's entries in its group's file.
    fn entries(&self, child: &ChildResult) -> Vec<Value> {
        match self.config {
            None => vec![result_entry(child, false)],
            Some(c) => shaped(child, c.transformation),
        }
    }
}

/// `manifest.json`: each file written (`Key`, `Size` in bytes) by group, the groups listed
/// alphabetically as AWS does.
pub(super) fn manifest(
    bucket: &str,
    map_run_arn: &str,
    written: &[(Group, String, usize)],
) -> Value {
    let mut groups = [Group::Failed, Group::Pending, Group::Succeeded];
    groups.sort_by_key(|g| g.name());
    let result_files: Map<String, Value> = groups
        .iter()
        .map(|&group| {
            let files = written
                .iter()
                .filter(|(g, _, _)| *g == group)
                .map(|(_, key, size)| json!({"Key": key, "Size": size}))
                .collect();
            (group.name().to_owned(), Value::Array(files))
        })
        .collect();
    json!({
        "DestinationBucket": bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": result_files,
    })
}

/// A result file put together entry by entry and handed out in parts, so that it never has
/// to be held whole: a JSON array (`[`, the entries joined by `,`, `]`) or JSON Lines (each
/// entry, then a newline). Its parts, concatenated, are the file.
#[derive(Debug)]
pub struct FileAssembly {
    output_type: OutputType,
    /// Bytes not handed out yet.
    pending: Vec<u8>,
    entries: usize,
}

impl FileAssembly {
    pub fn new(output_type: OutputType) -> FileAssembly {
        FileAssembly {
            output_type,
            pending: Vec::new(),
            entries: 0,
        }
    }

    pub fn push(&mut self, entry: &Value) {
        if self.output_type == OutputType::Json {
            self.pending
                .push(if self.entries == 0 { b'[' } else { b',' });
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.pending, entry);
        if self.output_type == OutputType::Jsonl {
            self.pending.push(b'\n');
        }
        self.entries += 1;
    }

    /// The bytes assembled since the last part, once there are at least `min` of them.
    pub fn take_part(&mut self, min: usize) -> Option<Vec<u8>> {
        (self.pending.len() >= min).then(|| std::mem::take(&mut self.pending))
    }

    /// The last part: what is left, the array closed.
    pub fn finish(mut self) -> Vec<u8> {
        if self.output_type == OutputType::Json {
            if self.entries == 0 {
                self.pending.push(b'[');
            }
            self.pending.push(b']');
        }
        self.pending
    }
}

/// A `ResultWriter` export under way. The children's results are added in item order; each
/// status group's file (`SUCCEEDED_0.json`, `FAILED_0.json`, `PENDING_0.json`, a file from
/// the group's first child on) is uploaded while it grows: once it outgrows one part
/// ([`MIN_PART_BYTES`]) it becomes a multipart upload, a part sent each time that much is
/// assembled; a smaller file is one PutObject. So about one part per file is held at a
/// time. [`Export::finish`] completes the files in that order, then writes the manifest; a
/// failure aborts the multipart uploads begun.
pub struct Export {
    s3: S3,
    target: ExportTarget,
    map_run_arn: String,
    /// Each group's file, in [`Group::ALL`] order.
    files: [Option<GroupFile>; 3],
}

impl Export {
    /// An export through `s3` (see [`ExportTarget::parse`]); nothing is written yet.
    pub fn start(
        s3: S3,
        arguments: &Value,
        writer_config: Option<&Value>,
        map_run_arn: &str,
    ) -> Result<Export, ErrorCause> {
        let target = ExportTarget::parse(arguments, writer_config, map_run_arn)?;
        Ok(Export {
            s3,
            target,
            map_run_arn: map_run_arn.to_owned(),
            files: [None, None, None],
        })
    }

    /// Adds the next child's result to its group's file, uploading a part when one is full.
    pub async fn add(&mut self, child: &ChildResult) -> Result<(), ErrorCause> {
        let group = child.status.group();
        let entries = self.target.entries(child);
        let file = self.files[group as usize].get_or_insert_with(|| GroupFile {
            key: self.target.file_key(group),
            assembly: FileAssembly::new(self.target.output_type()),
            upload: None,
            uploaded: 0,
        });
        for entry in &entries {
            file.assembly.push(entry);
        }
        if let Err(e) = file.send_full_part(&self.s3, &self.target.bucket).await {
            self.abort().await;
            return Err(writer_s3(e));
        }
        Ok(())
    }

    /// Completes the files, writes the manifest and returns the `ResultWriterDetails`:
    /// `{"Bucket": …, "Key": …}` of the manifest.
    pub async fn finish(mut self) -> Result<Value, ErrorCause> {
        let mut written = Vec::new();
        for group in Group::ALL {
            let Some(file) = self.files[group as usize].take() else {
                continue;
            };
            match file.complete(&self.s3, &self.target.bucket).await {
                Ok((key, size)) => written.push((group, key, size)),
                Err(e) => {
                    self.abort().await;
                    return Err(writer_s3(e));
                }
            }
        }
        let bucket = &self.target.bucket;
        let manifest_key = self.target.manifest_key();
        let manifest = manifest(bucket, &self.map_run_arn, &written);
        self.s3
            .put_object(bucket, &manifest_key, manifest.to_string().as_bytes(), JSON)
            .await
            .map_err(writer_s3)?;
        Ok(json!({"Bucket": bucket, "Key": manifest_key}))
    }

    /// Drops the multipart uploads begun and not completed (on S3's side, their parts).
    pub async fn abort(&mut self) {
        for file in self.files.iter_mut().filter_map(Option::take) {
            if let Some(upload) = file.upload {
                upload.abort(&self.s3, &self.target.bucket, &file.key).await;
            }
        }
    }
}

const JSON: &str = "application/json";

pub(super) fn writer_s3(e: S3Error) -> ErrorCause {
    writer_failed(e.to_string())
}

/// One result file of an [`Export`].
struct GroupFile {
    key: String,
    assembly: FileAssembly,
    /// Begun once the file outgrows one part.
    upload: Option<Upload>,
    /// Bytes sent in parts so far.
    uploaded: usize,
}

impl GroupFile {
    /// Sends what is assembled as the next part, once it makes a full one.
    async fn send_full_part(&mut self, s3: &S3, bucket: &str) -> Result<(), S3Error> {
        let Some(part) = self.assembly.take_part(MIN_PART_BYTES) else {
            return Ok(());
        };
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => {
                let id = s3.create_multipart_upload(bucket, &self.key, JSON).await?;
                self.upload.insert(Upload {
                    id,
                    parts: Vec::new(),
                })
            }
        };
        upload.send(s3, bucket, &self.key, &part).await?;
        self.uploaded += part.len();
        Ok(())
    }

    /// Writes the file's last part and completes it (or puts it whole, when it never
    /// outgrew a part): its key and size. A multipart upload that fails is aborted.
    async fn complete(self, s3: &S3, bucket: &str) -> Result<(String, usize), S3Error> {
        let last = self.assembly.finish();
        let size = self.uploaded + last.len();
        let Some(mut upload) = self.upload else {
            s3.put_object(bucket, &self.key, &last, JSON).await?;
            return Ok((self.key, size));
        };
        let completed = async {
            if !last.is_empty() {
                upload.send(s3, bucket, &self.key, &last).await?;
            }
            s3.complete_multipart_upload(bucket, &self.key, &upload.id, &upload.parts)
                .await
        }
        .await;
        if let Err(e) = completed {
            upload.abort(s3, bucket, &self.key).await;
            return Err(e);
        }
        Ok((self.key, size))
    }
}

/// A multipart upload under way: its id and the parts sent (number, ETag).
struct Upload {
    id: String,
    parts: Vec<(u32, String)>,
}

impl Upload {
    async fn send(&mut self, s3: &S3, bucket: &str, key: &str, part: &[u8]) -> Result<(), S3Error> {
        let number = self.parts.len() as u32 + 1;
        let etag = s3.upload_part(bucket, key, &self.id, number, part).await?;
        self.parts.push((number, etag));
        Ok(())
    }

    async fn abort(self, s3: &S3, bucket: &str, key: &str) {
        if let Err(e) = s3.abort_multipart_upload(bucket, key, &self.id).await {
            tracing::warn!(%key, error = %e, "multipart upload not aborted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asl::error::names::RESULT_WRITER_FAILED;

    fn succeeded(n: u32, output: &str) -> ChildResult {
        ChildResult {
            execution_arn: Some(format!(
                "arn:aws:states:us-east-1:123456789012:execution:sm/Map:run:{n}"
            )),
            state_machine_arn: Some(
                "arn:aws:states:us-east-1:123456789012:stateMachine:sm/Map".into(),
            ),
            name: Some(n.to_string()),
            status: ChildStatus::Succeeded,
            input: format!("{{\"n\":{n}}}"),
            output: Some(output.to_owned()),
            error: None,
            cause: None,
            start_date: Some("2025-02-04T01:49:50.099Z".into()),
            stop_date: Some("2025-02-04T01:49:50.163Z".into()),
            redrive_count: Some(0),
            redrive_status: Some("NOT_REDRIVABLE".into()),
            redrive_status_reason: Some("Execution is SUCCEEDED and cannot be redriven".into()),
        }
    }

    fn failed(n: u32) -> ChildResult {
        ChildResult {
            status: ChildStatus::Failed,
            output: None,
            error: Some("Boom".into()),
            cause: Some("it broke".into()),
            redrive_status: Some("REDRIVABLE".into()),
            redrive_status_reason: None,
            ..succeeded(n, "null")
        }
    }

    #[test]
    fn entries_have_aws_fields_in_order() {
        let entry = result_entry(&succeeded(1, "{\"r\":1}"), false);
        let keys: Vec<&String> = entry.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "ExecutionArn",
                "Input",
                "InputDetails",
                "Name",
                "Output",
                "OutputDetails",
                "RedriveCount",
                "RedriveStatus",
                "RedriveStatusReason",
                "StartDate",
                "StateMachineArn",
                "Status",
                "StopDate"
            ]
        );
        assert_eq!(entry["Input"], json!("{\"n\":1}"));
        assert_eq!(entry["Output"], json!("{\"r\":1}"));
        assert_eq!(entry["InputDetails"], json!({"Included": true}));
        let typed = result_entry(&succeeded(1, "{\"r\":1}"), true);
        assert_eq!(typed["Input"], json!({"n": 1}));
        assert_eq!(typed["Output"], json!({"r": 1}));
        let f = result_entry(&failed(2), false);
        assert_eq!(f["Error"], json!("Boom"));
        assert_eq!(f["Cause"], json!("it broke"));
        assert_eq!(f["Status"], json!("FAILED"));
        assert!(f.get("Output").is_none() && f.get("OutputDetails").is_none());
        let p = result_entry(&ChildResult::pending("3".into()), true);
        assert_eq!(
            p,
            json!({"Input": 3, "InputDetails": {"Included": true}, "Status": "PENDING"})
        );
    }

    #[test]
    fn transformations_shape_the_map_output() {
        let results = vec![succeeded(1, "[1,2]"), failed(2), succeeded(3, "{\"x\":3}")];
        let shape = |config: Value| {
            let mut array = ResultArray::shaped(&config, "Map").expect("config");
            for r in &results {
                array.push(r).expect("fits");
            }
            array.finish()
        };
        let none = shape(json!({"Transformation": "NONE"}));
        assert_eq!(none.as_array().map(Vec::len), Some(3));
        assert_eq!(none[0]["Output"], json!([1, 2]));
        let compact = shape(json!({"Transformation": "COMPACT"}));
        assert_eq!(compact[0], json!([1, 2]));
        assert_eq!(compact[1]["Status"], json!("FAILED"));
        assert_eq!(compact[2], json!({"x": 3}));
        let flat = shape(json!({"Transformation": "FLATTEN", "OutputType": "JSONL"}));
        assert_eq!(flat[0], json!(1));
        assert_eq!(flat[1], json!(2));
        assert_eq!(flat[2]["Error"], json!("Boom"));
        assert_eq!(flat[3], json!({"x": 3}));
        assert!(ResultArray::shaped(&json!({"Transformation": "SQUASH"}), "Map").is_err());
        // Without a ResultWriter: the outputs, null for a child without one.
        let mut outputs = ResultArray::outputs("Map");
        for r in &results {
            outputs.push(r).expect("fits");
        }
        assert_eq!(outputs.finish(), json!([[1, 2], null, {"x": 3}]));
    }

    /// A string output whose JSON text is `len` bytes.
    fn output_of_len(len: usize) -> ChildResult {
        succeeded(1, &format!("\"{}\"", "x".repeat(len - 2)))
    }

    #[test]
    fn the_map_output_stops_at_256_kib() {
        // 255 outputs of 1,023 bytes: 1 + 255 × 1,024 = 261,121 bytes of JSON with the
        // brackets and commas; a comma and 1,023 bytes more make 262,144 (256 KiB).
        let filled = || {
            let mut array = ResultArray::outputs("Fan");
            for _ in 0..255 {
                array.push(&output_of_len(1023)).expect("fits");
            }
            array
        };
        let mut exact = filled();
        exact
            .push(&output_of_len(1022))
            .expect("exactly 256 KiB fits");
        assert_eq!(exact.size, MAX_PAYLOAD_BYTES);
        let mut over = filled();
        let e = over.push(&output_of_len(1023)).expect_err("one byte more");
        assert_eq!(e.error_name(), "States.DataLimitExceeded");
        assert_eq!(e.cause_text(),
            "The state/task 'Fan' returned a result with a size exceeding the maximum number of bytes service limit."
        );
    }

    #[test]
    fn the_map_output_size_is_its_json_size() {
        let mut array =
            ResultArray::shaped(&json!({"Transformation": "FLATTEN"}), "M").expect("config");
        for r in [succeeded(1, "[1,\"é\",{}]"), failed(2), succeeded(3, "[]")] {
            array.push(&r).expect("fits");
        }
        let size = array.size;
        assert_eq!(size, array.finish().to_string().len());
        let empty = ResultArray::outputs("M");
        let size = empty.size;
        assert_eq!(size, empty.finish().to_string().len());
    }

    /// A file as an [`Export`] sends it: the parts of at least `part` bytes taken while the
    /// entries are pushed, then the last one.
    fn parts(output_type: OutputType, entries: &[Value], part: usize) -> Vec<Vec<u8>> {
        let mut file = FileAssembly::new(output_type);
        let mut parts = Vec::new();
        for entry in entries {
            file.push(entry);
            parts.extend(file.take_part(part));
        }
        parts.push(file.finish());
        parts
    }

    #[test]
    fn files_are_assembled_across_parts() {
        let entries: Vec<Value> = (0..40)
            .map(|i| json!({"n": i, "pad": "x".repeat(i * 3)}))
            .collect();
        let array = Value::Array(entries.clone()).to_string().into_bytes();
        let lines: Vec<u8> = entries
            .iter()
            .flat_map(|e| format!("{e}\n").into_bytes())
            .collect();
        for (output_type, whole) in [(OutputType::Json, array), (OutputType::Jsonl, lines)] {
            for part in [1, 50, 1000, 1 << 20] {
                let parts = parts(output_type, &entries, part);
                let (last, full) = parts.split_last().expect("a last part");
                assert!(
                    full.iter().all(|p| p.len() >= part),
                    "{output_type:?}/{part}: parts under the minimum"
                );
                // The array is closed in the last part; JSON Lines may leave it empty.
                let closed = output_type == OutputType::Jsonl || last.ends_with(b"]");
                assert!(closed, "{output_type:?}/{part}");
                assert_eq!(parts.concat(), whole, "{output_type:?}/{part}");
            }
        }
        // With many small parts the array's brackets and commas straddle them.
        let json_parts = parts(OutputType::Json, &entries, 1);
        assert_eq!(json_parts.len(), entries.len() + 1);
        assert!(json_parts[0].starts_with(b"[{"));
        assert!(json_parts[1].starts_with(b",{"));
        assert_eq!(json_parts[entries.len()], b"]");
        // No entries: an empty array, an empty file.
        assert_eq!(parts(OutputType::Json, &[], 1), [b"[]".to_vec()]);
        assert_eq!(parts(OutputType::Jsonl, &[], 1), [Vec::<u8>::new()]);
    }

    /// A group's file as an [`Export`] writes `results` to it, whole.
    fn file(target: &ExportTarget, results: &[ChildResult], group: Group) -> Vec<u8> {
        let entries: Vec<Value> = results
            .iter()
            .filter(|c| c.status.group() == group)
            .flat_map(|c| target.entries(c))
            .collect();
        parts(target.output_type(), &entries, MIN_PART_BYTES).concat()
    }

    #[test]
    fn exports_are_laid_out_like_aws() {
        let arn = "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:ad9b5f27-090b-3ac6-9beb-243cd77144a7";
        let results = vec![succeeded(1, "1"), failed(2), succeeded(3, "3")];
        let target = ExportTarget::parse(&json!({"Bucket": "out", "Prefix": "jobs"}), None, arn)
            .expect("target");
        let dir = "jobs/ad9b5f27-090b-3ac6-9beb-243cd77144a7/";
        assert_eq!(target.manifest_key(), format!("{dir}manifest.json"));
        assert_eq!(
            target.file_key(Group::Succeeded),
            format!("{dir}SUCCEEDED_0.json")
        );
        assert_eq!(
            target.file_key(Group::Failed),
            format!("{dir}FAILED_0.json")
        );
        let written = [
            (Group::Succeeded, target.file_key(Group::Succeeded), 120),
            (Group::Failed, target.file_key(Group::Failed), 80),
        ];
        assert_eq!(
            manifest("out", arn, &written),
            json!({
                "DestinationBucket": "out",
                "MapRunArn": arn,
                "ResultFiles": {
                    "FAILED": [{"Key": format!("{dir}FAILED_0.json"), "Size": 80}],
                    "PENDING": [],
                    "SUCCEEDED": [{"Key": format!("{dir}SUCCEEDED_0.json"), "Size": 120}]
                }
            })
        );
        let keys: Vec<String> = manifest("out", arn, &written)["ResultFiles"]
            .as_object()
            .expect("groups")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["FAILED", "PENDING", "SUCCEEDED"]);
        let succeeded_file: Value =
            serde_json::from_slice(&file(&target, &results, Group::Succeeded)).expect("json");
        assert_eq!(succeeded_file.as_array().map(Vec::len), Some(2));
        assert_eq!(succeeded_file[1]["Output"], json!("3"));
        assert_eq!(succeeded_file[1]["Input"], json!("{\"n\":3}"));

        // Prefixes ending in '/' and empty prefixes.
        let t = ExportTarget::parse(&json!({"Bucket": "b", "Prefix": "x/"}), None, arn)
            .expect("target");
        assert_eq!(
            t.manifest_key(),
            "x/ad9b5f27-090b-3ac6-9beb-243cd77144a7/manifest.json"
        );
        let t = ExportTarget::parse(&json!({"Bucket": "b"}), None, arn).expect("target");
        assert_eq!(
            t.manifest_key(),
            "ad9b5f27-090b-3ac6-9beb-243cd77144a7/manifest.json"
        );
        let e = ExportTarget::parse(&json!({"Prefix": "p"}), None, arn).expect_err("no bucket");
        assert_eq!(e.error_name(), RESULT_WRITER_FAILED);
    }

    #[test]
    fn writer_config_formats_files() {
        let arn = "arn:aws:states:us-east-1:1:mapRun:sm/Map:run";
        let results = vec![
            succeeded(1, "[1,2]"),
            succeeded(2, "[3]"),
            ChildResult::pending("4".into()),
        ];
        let target = ExportTarget::parse(
            &json!({"Bucket": "b", "Prefix": "p"}),
            Some(&json!({"OutputType": "JSONL", "Transformation": "FLATTEN"})),
            arn,
        )
        .expect("target");
        assert_eq!(target.file_key(Group::Succeeded), "p/run/SUCCEEDED_0.json");
        assert_eq!(
            String::from_utf8_lossy(&file(&target, &results, Group::Succeeded)),
            "1\n2\n3\n"
        );
        assert_eq!(target.file_key(Group::Pending), "p/run/PENDING_0.json");
        assert_eq!(
            String::from_utf8_lossy(&file(&target, &results, Group::Pending)),
            "{\"Input\":4,\"InputDetails\":{\"Included\":true},\"Status\":\"PENDING\"}\n"
        );
    }
}
