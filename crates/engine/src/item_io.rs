//! A Distributed Map's data going to and from S3: reading items (`ItemReader`), batching
//! them (`ItemBatcher`), and exporting the child executions' results (`ResultWriter`), with
//! the shapes and error names AWS documents.
//!
//! Only [`read_items`] and [`Export`] do IO (through [`crate::s3`]); parsing, batching, result
//! shaping and file assembly are pure, tested here without a server. Arguments arrive
//! evaluated: `Parameters`/`Arguments` resolved, every `…Path` field of `ReaderConfig` and
//! `ItemBatcher` already replaced by its value.
//!
//! What AWS documents, and what we do:
//! - **JSON**: the object must hold a top-level array; anything else fails with
//!   `Attempting to map over non-iterable node.` **JSONL**: one JSON value per non-blank line.
//! - **CSV**: rows become objects keyed by the headers (`FIRST_ROW`, or `GIVEN` in
//!   `CSVHeaders`), in header order, every value a string. Fields are split on
//!   `CSVDelimiter` (`COMMA` by default, `PIPE`, `SEMICOLON`, `SPACE`, `TAB`), records on
//!   newlines; double quotes enclose delimiters and newlines and are kept by doubling them; a
//!   backslash escapes a backslash, a double quote or the delimiter and is dropped before any
//!   other character. Missing fields are empty strings, extra fields are skipped, duplicate
//!   headers fail with `CSV headers cannot contain duplicates.`; blank lines are skipped.
//! - **listObjectsV2**: every object under `Prefix` (all pages), each item
//!   `{"Etag", "Key", "LastModified" (epoch seconds), "Size", "StorageClass"}`. With
//!   `ReaderConfig.Transformation: LOAD_AND_FLATTEN` the objects are read instead, with
//!   `InputType`, and their items concatenated (keys ending in `/` are skipped).
//! - **MANIFEST** (`S3_INVENTORY`): the manifest's data files are read as headerless CSV
//!   keyed by its `fileSchema`. Gzip-compressed data files (`.gz`, what S3 Inventory
//!   writes) are not supported yet and fail with a clear cause.
//! - `MaxItems` caps the items (after the CSV header row); `0` means no cap, the cap is
//!   at most 100,000,000.
//! - Failures: `States.ItemReaderFailed` when reading or parsing fails (S3 errors quoted the
//!   way the AWS Java SDK renders them), `States.ResultWriterFailed` when exporting fails,
//!   `States.Runtime` for an `ItemBatcher` that cannot be honoured.
//!
//! **Batch size.** `MaxInputBytesPerBatch` is measured on what the child receives: the
//! compact JSON of the whole batch object (`{"BatchInput":…,"Items":[…]}`), in UTF-8 bytes.
//! It never exceeds 256 KiB, the largest input an execution takes, and that ceiling applies
//! when only `MaxItemsPerBatch` is set. An item that does not fit in a batch on its own fails
//! with `States.Runtime`.
//!
//! **Result files.** `PREFIX/<map run id>/manifest.json` lists the files written, by status:
//! `SUCCEEDED_0.json`, `FAILED_0.json` (failed, timed out and aborted children) and
//! `PENDING_0.json`, a file only when it has entries. Without a `WriterConfig` (the original
//! format) each entry carries `Input` and `Output` as JSON text; with one, as JSON values,
//! `Transformation` applies to succeeded children (`COMPACT`: their outputs; `FLATTEN`: the
//! same with array outputs spliced in) and `OutputType: JSONL` writes one entry per line.
//! Entry fields are in AWS's (alphabetical) order. The results arrive in item order and each
//! file is uploaded while it grows ([`Export`]), so an export of any size holds about one
//! 5 MiB part per file. Without S3 (no `ResultWriter`, or only a `WriterConfig`) the results
//! are the Map state's output, which may not exceed 256 KiB ([`ResultArray`]): past that the
//! Map Run fails with `States.DataLimitExceeded`.

use std::collections::HashSet;
use std::fmt;

use serde_json::{json, Map, Value};

use asl::error::names::DATA_LIMIT_EXCEEDED;
use asl::interpreter::MAX_PAYLOAD_BYTES;

use crate::s3::{ListObjects, ObjectSummary, S3Error, MIN_PART_BYTES, S3};

/// The Map state could not read its items.
pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
/// The Map state could not export its results.
pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
const RUNTIME: &str = "States.Runtime";

/// The most items a reader yields (AWS's ceiling for `MaxItems`).
pub const MAX_ITEMS_CEILING: usize = 100_000_000;
/// The largest batch: 256 KiB, the largest execution input.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Why a Map Run could not read, batch or export: an error name and a cause, as the Map
/// state fails with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    fn reader(cause: impl Into<String>) -> Failure {
        Failure {
            error: ITEM_READER_FAILED.into(),
            cause: cause.into(),
        }
    }

    fn writer(cause: impl Into<String>) -> Failure {
        Failure {
            error: RESULT_WRITER_FAILED.into(),
            cause: cause.into(),
        }
    }

    /// A result larger than a state's output may be.
    fn data_limit(state: &str) -> Failure {
        Failure {
            error: DATA_LIMIT_EXCEEDED.into(),
            cause: format!(
                "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
            ),
        }
    }

    fn runtime(cause: impl Into<String>) -> Failure {
        Failure {
            error: RUNTIME.into(),
            cause: cause.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for Failure {}

// ---------------------------------------------------------------------------------------
// ItemReader
// ---------------------------------------------------------------------------------------

/// `ReaderConfig.InputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Json,
    Jsonl,
    Csv,
    Manifest,
}

/// `ReaderConfig.CSVHeaderLocation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderLocation {
    FirstRow,
    Given,
}

/// A `ReaderConfig`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    pub input_type: Option<InputType>,
    pub header_location: HeaderLocation,
    /// `CSVHeaders` (with `GIVEN`).
    pub headers: Vec<String>,
    pub delimiter: char,
    /// `None`: no cap.
    pub max_items: Option<usize>,
    /// `Transformation: LOAD_AND_FLATTEN` (listObjectsV2 reads the objects it lists).
    pub load_and_flatten: bool,
}

impl Default for ReaderConfig {
    fn default() -> ReaderConfig {
        ReaderConfig {
            input_type: None,
            header_location: HeaderLocation::FirstRow,
            headers: Vec::new(),
            delimiter: ',',
            max_items: None,
            load_and_flatten: false,
        }
    }
}

impl ReaderConfig {
    /// Checks a `ReaderConfig` (absent: the defaults).
    pub fn parse(config: Option<&Value>) -> Result<ReaderConfig, Failure> {
        let mut out = ReaderConfig::default();
        let Some(config) = config else {
            return Ok(out);
        };
        let Some(obj) = config.as_object() else {
            return Err(Failure::reader("ReaderConfig must be an object"));
        };
        let text = |name: &str| -> Result<Option<&str>, Failure> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(Failure::reader(format!(
                    "ReaderConfig field {name} must be a string, got {other}"
                ))),
            }
        };
        out.input_type = match text("InputType")? {
            None => None,
            Some("JSON") => Some(InputType::Json),
            Some("JSONL") => Some(InputType::Jsonl),
            Some("CSV") => Some(InputType::Csv),
            Some("MANIFEST") => Some(InputType::Manifest),
            Some(other) => {
                return Err(Failure::reader(format!(
                    "InputType '{other}' is not supported by stepwise (JSON, JSONL, CSV, MANIFEST)"
                )))
            }
        };
        out.header_location = match text("CSVHeaderLocation")? {
            None | Some("FIRST_ROW") => HeaderLocation::FirstRow,
            Some("GIVEN") => HeaderLocation::Given,
            Some(other) => {
                return Err(Failure::reader(format!(
                    "CSVHeaderLocation '{other}' is not FIRST_ROW or GIVEN"
                )))
            }
        };
        out.delimiter = match text("CSVDelimiter")? {
            None | Some("COMMA") => ',',
            Some("PIPE") => '|',
            Some("SEMICOLON") => ';',
            Some("SPACE") => ' ',
            Some("TAB") => '\t',
            Some(other) => {
                return Err(Failure::reader(format!(
                    "CSVDelimiter '{other}' is not COMMA, PIPE, SEMICOLON, SPACE or TAB"
                )))
            }
        };
        if let Some(headers) = obj.get("CSVHeaders") {
            let list = headers.as_array().ok_or_else(|| {
                Failure::reader("ReaderConfig field CSVHeaders must be an array of strings")
            })?;
            out.headers = list
                .iter()
                .map(|h| h.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    Failure::reader("ReaderConfig field CSVHeaders must be an array of strings")
                })?;
        }
        if out.header_location == HeaderLocation::Given && obj.get("CSVHeaders").is_none() {
            return Err(Failure::reader(
                "CSVHeaders must be given when CSVHeaderLocation is GIVEN",
            ));
        }
        out.max_items = match obj.get("MaxItems") {
            None | Some(Value::Null) => None,
            Some(v) => max_items(v)?,
        };
        out.load_and_flatten = match text("Transformation")? {
            None | Some("NONE") => false,
            Some("LOAD_AND_FLATTEN") => true,
            Some(other) => {
                return Err(Failure::reader(format!(
                    "ReaderConfig Transformation '{other}' is not NONE or LOAD_AND_FLATTEN"
                )))
            }
        };
        Ok(out)
    }
}

/// `MaxItems`: a non-negative integer, `0` meaning no cap, capped at 100,000,000.
fn max_items(v: &Value) -> Result<Option<usize>, Failure> {
    if let Some(n) = v.as_u64() {
        return Ok((n != 0).then(|| {
            usize::try_from(n)
                .unwrap_or(MAX_ITEMS_CEILING)
                .min(MAX_ITEMS_CEILING)
        }));
    }
    if v.as_i64().is_some_and(|n| n < 0) {
        return Err(Failure::reader("field MaxItems must be positive"));
    }
    Err(Failure::reader(format!(
        "The MaxItems field refers to value '{v}' which is not a valid integer"
    )))
}

/// The S3 action an `ItemReader`/`ResultWriter` resource names
/// (`arn:aws:states:::s3:getObject`).
fn s3_action(resource: &str) -> Option<&str> {
    let parts: Vec<&str> = resource.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", "", "", "s3", action] => Some(action),
        _ => None,
    }
}

/// A string argument (`Bucket`, `Key`, …); absent is `None`.
fn string_arg(args: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("The field {name} must be a string, got {other}")),
    }
}

/// Reads the items of a Distributed Map's `ItemReader` from S3 at `endpoint`.
///
/// `resource` is `arn:aws:states:::s3:getObject` or `…:s3:listObjectsV2`; `arguments` its
/// evaluated `Parameters` (`Bucket`, `Key`, `VersionId`, `Prefix`, `Delimiter`,
/// `StartAfter`); `reader_config` the `ReaderConfig` with `MaxItemsPath` resolved.
pub async fn read_items(
    endpoint: &str,
    region: &str,
    resource: &str,
    arguments: &Value,
    reader_config: Option<&Value>,
) -> Result<Vec<Value>, Failure> {
    let config = ReaderConfig::parse(reader_config)?;
    let action = s3_action(resource).ok_or_else(|| {
        Failure::reader(format!(
            "The ItemReader resource '{resource}' is not supported"
        ))
    })?;
    let args = arguments
        .as_object()
        .ok_or_else(|| Failure::reader("The ItemReader parameters must be an object"))?;
    let arg = |name: &str| string_arg(args, name).map_err(Failure::reader);
    let bucket = arg("Bucket")?
        .ok_or_else(|| Failure::reader("The field Bucket is required by the ItemReader"))?;
    let s3 = S3::new(endpoint, region).map_err(reader_s3)?;
    match action {
        "getObject" => {
            let key = arg("Key")?
                .ok_or_else(|| Failure::reader("The field Key is required by s3:getObject"))?;
            let input_type = config.input_type.ok_or_else(|| {
                Failure::reader("ReaderConfig InputType is required with s3:getObject")
            })?;
            let body = s3
                .get_object(&bucket, &key, arg("VersionId")?.as_deref())
                .await
                .map_err(reader_s3)?;
            if input_type == InputType::Manifest {
                return read_inventory(&s3, &body, config.max_items).await;
            }
            parse_items(input_type, &body, &config)
        }
        "listObjectsV2" => {
            let request = ListObjects {
                prefix: arg("Prefix")?,
                delimiter: arg("Delimiter")?,
                start_after: arg("StartAfter")?,
                limit: config.max_items.filter(|_| !config.load_and_flatten),
                page_size: None,
            };
            let objects = s3
                .list_objects_v2(&bucket, &request)
                .await
                .map_err(reader_s3)?;
            if !config.load_and_flatten {
                return Ok(objects.iter().map(object_item).collect());
            }
            let input_type = config.input_type.unwrap_or(InputType::Json);
            if input_type == InputType::Manifest {
                return Err(Failure::reader(
                    "InputType MANIFEST cannot be used with LOAD_AND_FLATTEN",
                ));
            }
            let cap = config.max_items.unwrap_or(MAX_ITEMS_CEILING);
            let mut items = Vec::new();
            for object in objects.iter().filter(|o| !o.key.ends_with('/')) {
                let body = s3
                    .get_object(&bucket, &object.key, None)
                    .await
                    .map_err(reader_s3)?;
                items.extend(parse_items(input_type, &body, &config)?);
                if items.len() >= cap {
                    items.truncate(cap);
                    break;
                }
            }
            Ok(items)
        }
        other => Err(Failure::reader(format!(
            "The ItemReader resource action 's3:{other}' is not supported (getObject, listObjectsV2)"
        ))),
    }
}

fn reader_s3(e: S3Error) -> Failure {
    Failure::reader(e.to_string())
}

/// An object of a listing, as a child execution receives it.
pub fn object_item(o: &ObjectSummary) -> Value {
    let last_modified = asl::timestamp::parse(&o.last_modified)
        .map(|ms| Value::from(ms.div_euclid(1000)))
        .unwrap_or_else(|| Value::from(o.last_modified.clone()));
    json!({
        "Etag": o.etag,
        "Key": o.key,
        "LastModified": last_modified,
        "Size": o.size,
        "StorageClass": o.storage_class,
    })
}

/// The items of an object's content read as `input_type` (not `MANIFEST`), `MaxItems` applied.
pub fn parse_items(
    input_type: InputType,
    body: &[u8],
    config: &ReaderConfig,
) -> Result<Vec<Value>, Failure> {
    let cap = config.max_items.unwrap_or(MAX_ITEMS_CEILING);
    let text = decode(body)?;
    let mut items = match input_type {
        InputType::Json => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            Ok(_) => return Err(Failure::reader("Attempting to map over non-iterable node.")),
            Err(e) => {
                return Err(Failure::reader(format!(
                    "The content of the object is not valid JSON: {e}"
                )))
            }
        },
        InputType::Jsonl => {
            let mut items = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if items.len() >= cap {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                items.push(serde_json::from_str(line).map_err(|e| {
                    Failure::reader(format!("Line {} is not valid JSON: {e}", n + 1))
                })?);
            }
            items
        }
        InputType::Csv => csv_items(text, config, cap)?,
        InputType::Manifest => {
            return Err(Failure::reader(
                "A MANIFEST is read with s3:getObject, not as an item list",
            ))
        }
    };
    items.truncate(cap);
    Ok(items)
}

/// UTF-8 text without a byte-order mark.
fn decode(body: &[u8]) -> Result<&str, Failure> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Failure::reader(format!("The content of the object is not UTF-8: {e}")))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// CSV rows as objects keyed by the headers, at most `cap` of them.
fn csv_items(text: &str, config: &ReaderConfig, cap: usize) -> Result<Vec<Value>, Failure> {
    let mut records = csv_records(text, config.delimiter).into_iter();
    let headers = match config.header_location {
        HeaderLocation::FirstRow => match records.next() {
            Some(first) => first,
            None => return Ok(Vec::new()),
        },
        HeaderLocation::Given => config.headers.clone(),
    };
    let mut seen = HashSet::new();
    if !headers.iter().all(|h| seen.insert(h.as_str())) {
        return Err(Failure::reader("CSV headers cannot contain duplicates."));
    }
    Ok(records
        .take(cap)
        .map(|row| row_object(&headers, row))
        .collect())
}

/// A row keyed by `headers`: missing fields are empty strings, extra fields are dropped.
fn row_object(headers: &[String], row: Vec<String>) -> Value {
    let mut fields = row.into_iter();
    let object: Map<String, Value> = headers
        .iter()
        .map(|h| (h.clone(), Value::String(fields.next().unwrap_or_default())))
        .collect();
    Value::Object(object)
}

/// Splits CSV text into records of fields, by AWS's rules (see the module docs).
pub fn csv_records(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    // Whether the current field has begun (a character or an opening quote was read).
    let mut started = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&n) if n == '\\' || n == '"' || n == delimiter => {
                    field.push(n);
                    chars.next();
                }
                // Before any other character the backslash is dropped.
                _ => {}
            }
            started = true;
            continue;
        }
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if !started => {
                quoted = true;
                started = true;
            }
            '\n' | '\r' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if started || !record.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                started = false;
            }
            c if c == delimiter => {
                record.push(std::mem::take(&mut field));
                started = false;
            }
            c => {
                field.push(c);
                started = true;
            }
        }
    }
    if started || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The items of an S3 Inventory: its manifest's CSV data files, keyed by `fileSchema`.
async fn read_inventory(
    s3: &S3,
    manifest: &[u8],
    max_items: Option<usize>,
) -> Result<Vec<Value>, Failure> {
    let manifest: Value = serde_json::from_slice(manifest)
        .map_err(|e| Failure::reader(format!("The manifest is not valid JSON: {e}")))?;
    let files = inventory_files(&manifest)?;
    let cap = max_items.unwrap_or(MAX_ITEMS_CEILING);
    let mut items = Vec::new();
    for (bucket, key) in files.locations {
        if key.ends_with(".gz") {
            return Err(Failure::reader(format!(
                "The inventory file '{key}' is gzip-compressed, which stepwise cannot read yet"
            )));
        }
        let body = s3
            .get_object(&bucket, &key, None)
            .await
            .map_err(reader_s3)?;
        let config = ReaderConfig {
            input_type: Some(InputType::Csv),
            header_location: HeaderLocation::Given,
            headers: files.schema.clone(),
            ..ReaderConfig::default()
        };
        items.extend(csv_items(decode(&body)?, &config, cap - items.len())?);
        if items.len() >= cap {
            break;
        }
    }
    Ok(items)
}

/// An S3 Inventory manifest: its data files and their columns.
#[derive(Debug, PartialEq, Eq)]
struct InventoryFiles {
    schema: Vec<String>,
    /// (bucket, key) of each data file.
    locations: Vec<(String, String)>,
}

fn inventory_files(manifest: &Value) -> Result<InventoryFiles, Failure> {
    let field = |name: &str| {
        manifest
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::reader(format!("The manifest has no {name}")))
    };
    let format = field("fileFormat")?;
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(Failure::reader(format!(
            "The inventory format '{format}' is not supported; only CSV is"
        )));
    }
    let destination = field("destinationBucket")?;
    let bucket = destination
        .rsplit(":::")
        .next()
        .unwrap_or(destination)
        .to_owned();
    let schema = field("fileSchema")?
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    let locations = manifest
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::reader("The manifest has no files"))?
        .iter()
        .map(|f| {
            f.get("key")
                .and_then(Value::as_str)
                .map(|k| (bucket.clone(), k.to_owned()))
                .ok_or_else(|| Failure::reader("A manifest file has no key"))
        })
        .collect::<Result<_, _>>()?;
    Ok(InventoryFiles { schema, locations })
}

// ---------------------------------------------------------------------------------------
// ItemBatcher
// ---------------------------------------------------------------------------------------

/// Groups items into the batches child executions receive: `{"BatchInput": …, "Items": […]}`
/// (`BatchInput` only when the batcher has one), each within `MaxItemsPerBatch` items and
/// `MaxInputBytesPerBatch` bytes (see the module docs for how bytes are counted).
pub fn batch_items(items: Vec<Value>, item_batcher: &Value) -> Result<Vec<Value>, Failure> {
    let obj = item_batcher
        .as_object()
        .ok_or_else(|| Failure::runtime("ItemBatcher must be an object"))?;
    let max_items = positive(obj, "MaxItemsPerBatch")?;
    let max_bytes = positive(obj, "MaxInputBytesPerBatch")?
        .unwrap_or(MAX_BATCH_BYTES)
        .min(MAX_BATCH_BYTES);
    let batch_input = obj.get("BatchInput");
    let envelope = |items: Vec<Value>| {
        let mut batch = Map::new();
        if let Some(input) = batch_input {
            batch.insert("BatchInput".into(), input.clone());
        }
        batch.insert("Items".into(), Value::Array(items));
        Value::Object(batch)
    };
    // The size of a batch without items; each item adds its own size and a comma.
    let empty = envelope(Vec::new()).to_string().len();
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = empty;
    for item in items {
        let item_size = item.to_string().len();
        let full = max_items.is_some_and(|m| current.len() >= m)
            || size + item_size + usize::from(!current.is_empty()) > max_bytes;
        if full && !current.is_empty() {
            batches.push(envelope(std::mem::take(&mut current)));
            size = empty;
        }
        if size + item_size > max_bytes {
            return Err(Failure::runtime(format!(
                "An item of {item_size} bytes does not fit in a batch of at most {max_bytes} bytes (MaxInputBytesPerBatch)"
            )));
        }
        size += item_size + usize::from(!current.is_empty());
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(envelope(current));
    }
    Ok(batches)
}

/// An optional positive integer field of the batcher.
fn positive(obj: &Map<String, Value>, name: &str) -> Result<Option<usize>, Failure> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(Failure::runtime(format!(
                "field {name} must be a positive integer, got {v}"
            ))),
        },
    }
}

// ---------------------------------------------------------------------------------------
// ResultWriter
// ---------------------------------------------------------------------------------------

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
enum Group {
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
    pub fn parse(config: &Value) -> Result<WriterConfig, Failure> {
        let obj = config
            .as_object()
            .ok_or_else(|| Failure::writer("WriterConfig must be an object"))?;
        let field = |name: &str| match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(Failure::writer(format!(
                "WriterConfig field {name} must be a string, got {other}"
            ))),
        };
        let output_type = match field("OutputType")? {
            None | Some("JSON") => OutputType::Json,
            Some("JSONL") => OutputType::Jsonl,
            Some(other) => {
                return Err(Failure::writer(format!(
                    "OutputType '{other}' is not JSON or JSONL"
                )))
            }
        };
        let transformation = match field("Transformation")? {
            None | Some("NONE") => Transformation::None,
            Some("COMPACT") => Transformation::Compact,
            Some("FLATTEN") => Transformation::Flatten,
            Some(other) => {
                return Err(Failure::writer(format!(
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
fn shaped(child: &ChildResult, transformation: Transformation) -> Vec<Value> {
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
fn output_value(child: &ChildResult) -> Value {
    child
        .output
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The size of `v` as compact JSON text, without writing the text.
fn json_len(v: &Value) -> usize {
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
    pub fn shaped(writer_config: &Value, state: &str) -> Result<ResultArray, Failure> {
        let config = WriterConfig::parse(writer_config)?;
        Ok(ResultArray {
            transformation: Some(config.transformation),
            ..ResultArray::outputs(state)
        })
    }

    /// Adds the next child's result.
    pub fn push(&mut self, child: &ChildResult) -> Result<(), Failure> {
        let values = match self.transformation {
            None => vec![output_value(child)],
            Some(t) => shaped(child, t),
        };
        for value in values {
            self.size += json_len(&value) + usize::from(!self.values.is_empty());
            if self.size > MAX_PAYLOAD_BYTES {
                return Err(Failure::data_limit(&self.state));
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
    ) -> Result<ExportTarget, Failure> {
        let args = arguments
            .as_object()
            .ok_or_else(|| Failure::writer("The ResultWriter parameters must be an object"))?;
        let bucket = string_arg(args, "Bucket")
            .map_err(Failure::writer)?
            .ok_or_else(|| Failure::writer("The field Bucket is required by the ResultWriter"))?;
        let prefix = string_arg(args, "Prefix")
            .map_err(Failure::writer)?
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
fn manifest(bucket: &str, map_run_arn: &str, written: &[(Group, String, usize)]) -> Value {
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
    /// An export to S3 at `endpoint` (see [`ExportTarget::parse`]); nothing is written yet.
    pub fn start(
        endpoint: &str,
        region: &str,
        arguments: &Value,
        writer_config: Option<&Value>,
        map_run_arn: &str,
    ) -> Result<Export, Failure> {
        let target = ExportTarget::parse(arguments, writer_config, map_run_arn)?;
        let s3 = S3::new(endpoint, region).map_err(writer_s3)?;
        Ok(Export {
            s3,
            target,
            map_run_arn: map_run_arn.to_owned(),
            files: [None, None, None],
        })
    }

    /// Adds the next child's result to its group's file, uploading a part when one is full.
    pub async fn add(&mut self, child: &ChildResult) -> Result<(), Failure> {
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
    pub async fn finish(mut self) -> Result<Value, Failure> {
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

fn writer_s3(e: S3Error) -> Failure {
    Failure::writer(e.to_string())
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

    fn config(v: Value) -> ReaderConfig {
        ReaderConfig::parse(Some(&v)).expect("config")
    }

    fn csv(text: &str, v: Value) -> Result<Vec<Value>, Failure> {
        parse_items(InputType::Csv, text.as_bytes(), &config(v))
    }

    #[test]
    fn json_arrays_are_items() {
        let c = ReaderConfig::default();
        let items = parse_items(InputType::Json, br#"[1, {"a": 2}, "x"]"#, &c).expect("items");
        assert_eq!(items, vec![json!(1), json!({"a": 2}), json!("x")]);
        let e = parse_items(InputType::Json, br#"{"a": [1]}"#, &c).expect_err("object");
        assert_eq!(e.error, ITEM_READER_FAILED);
        assert_eq!(e.cause, "Attempting to map over non-iterable node.");
        assert!(parse_items(InputType::Json, b"[1,", &c).is_err());
        assert!(parse_items(InputType::Json, b"\xff", &c).is_err());
        let capped = config(json!({"InputType": "JSON", "MaxItems": 2}));
        assert_eq!(
            parse_items(InputType::Json, b"[1,2,3]", &capped).expect("items"),
            vec![json!(1), json!(2)]
        );
        // A byte-order mark is not content.
        assert_eq!(
            parse_items(InputType::Json, "\u{feff}[1]".as_bytes(), &c).expect("items"),
            vec![json!(1)]
        );
    }

    #[test]
    fn jsonl_lines_are_items() {
        let c = ReaderConfig::default();
        let text = b"{\"a\":1}\r\n\n  \n[2]\n\"s\"\n";
        let items = parse_items(InputType::Jsonl, text, &c).expect("items");
        assert_eq!(items, vec![json!({"a": 1}), json!([2]), json!("s")]);
        let e = parse_items(InputType::Jsonl, b"1\n{oops\n", &c).expect_err("bad line");
        assert!(
            e.cause.starts_with("Line 2 is not valid JSON"),
            "{}",
            e.cause
        );
        let capped = config(json!({"MaxItems": 1}));
        // Lines past the cap are not parsed.
        assert_eq!(
            parse_items(InputType::Jsonl, b"1\n{oops\n", &capped).expect("items"),
            vec![json!(1)]
        );
    }

    #[test]
    fn csv_rows_are_objects_of_strings() {
        let items = csv(
            "name,qty,note\nwidget,3,\"a, b\"\r\ngadget,\"4\"\n\n",
            json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        )
        .expect("items");
        assert_eq!(
            items,
            vec![
                json!({"name": "widget", "qty": "3", "note": "a, b"}),
                json!({"name": "gadget", "qty": "4", "note": ""}),
            ]
        );
        // Header order is kept.
        let keys: Vec<&String> = items[0].as_object().expect("object").keys().collect();
        assert_eq!(keys, ["name", "qty", "note"]);
    }

    #[test]
    fn csv_given_headers_and_extra_fields() {
        let items = csv(
            "1,2,3\n4\n",
            json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"]}),
        )
        .expect("items");
        assert_eq!(
            items,
            vec![json!({"a": "1", "b": "2"}), json!({"a": "4", "b": ""})]
        );
        let e = csv(
            "a,a\n1,2\n",
            json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        )
        .expect_err("duplicates");
        assert_eq!(e.cause, "CSV headers cannot contain duplicates.");
        assert!(ReaderConfig::parse(Some(&json!({"CSVHeaderLocation": "GIVEN"}))).is_err());
    }

    #[test]
    fn csv_quotes_backslashes_and_delimiters() {
        let records = csv_records(
            "\"multi\nline\",\"say \"\"hi\"\"\"\nC:\\\\dir,a\\,b,\\q\n",
            ',',
        );
        assert_eq!(
            records,
            vec![
                vec!["multi\nline".to_owned(), "say \"hi\"".to_owned()],
                vec!["C:\\dir".to_owned(), "a,b".to_owned(), "q".to_owned()],
            ]
        );
        assert_eq!(
            csv_records("a|b\n\"\"", '|'),
            vec![vec!["a", "b"], vec![""]]
        );
        assert_eq!(csv_records("a\tb c", '\t'), vec![vec!["a", "b c"]]);
        assert_eq!(csv_records("", ','), Vec::<Vec<String>>::new());
        assert_eq!(csv_records("a,", ','), vec![vec!["a", ""]]);
        let items = csv(
            "h1;h2\nx;y\n",
            json!({"InputType": "CSV", "CSVDelimiter": "SEMICOLON"}),
        )
        .expect("items");
        assert_eq!(items, vec![json!({"h1": "x", "h2": "y"})]);
    }

    #[test]
    fn csv_max_items_counts_rows_after_the_header() {
        let items = csv("h\n1\n2\n3\n", json!({"InputType": "CSV", "MaxItems": 2})).expect("items");
        assert_eq!(items, vec![json!({"h": "1"}), json!({"h": "2"})]);
        assert_eq!(
            csv("", json!({"InputType": "CSV"})).expect("items"),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn reader_config_checks() {
        assert_eq!(config(json!({"MaxItems": 0})).max_items, None);
        assert_eq!(
            config(json!({"MaxItems": 500_000_000_u64})).max_items,
            Some(MAX_ITEMS_CEILING)
        );
        let e = ReaderConfig::parse(Some(&json!({"MaxItems": -1}))).expect_err("negative");
        assert_eq!(e.cause, "field MaxItems must be positive");
        assert!(ReaderConfig::parse(Some(&json!({"MaxItems": 1.5}))).is_err());
        assert!(ReaderConfig::parse(Some(&json!({"InputType": "XML"}))).is_err());
        assert!(ReaderConfig::parse(Some(&json!({"CSVDelimiter": "DASH"}))).is_err());
        assert_eq!(config(json!({"CSVDelimiter": "TAB"})).delimiter, '\t');
        assert!(config(json!({"Transformation": "LOAD_AND_FLATTEN"})).load_and_flatten);
    }

    #[test]
    fn resources_name_s3_actions() {
        assert_eq!(
            s3_action("arn:aws:states:::s3:getObject"),
            Some("getObject")
        );
        assert_eq!(
            s3_action("arn:aws-cn:states:::s3:listObjectsV2"),
            Some("listObjectsV2")
        );
        assert_eq!(s3_action("arn:aws:states:::lambda:invoke"), None);
    }

    #[test]
    fn listed_objects_have_aws_shape() {
        let item = object_item(&ObjectSummary {
            key: "data/a.json".into(),
            etag: "\"05704fbd\"".into(),
            last_modified: "2022-11-17T15:44:41.000Z".into(),
            size: 34910,
            storage_class: "STANDARD".into(),
        });
        assert_eq!(
            item,
            json!({
                "Etag": "\"05704fbd\"",
                "Key": "data/a.json",
                "LastModified": 1668699881,
                "Size": 34910,
                "StorageClass": "STANDARD"
            })
        );
    }

    #[test]
    fn inventory_manifests_name_their_files() {
        let manifest = json!({
            "sourceBucket": "src",
            "destinationBucket": "arn:aws:s3:::inventory",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size, LastModifiedDate",
            "files": [{"key": "inv/data/1.csv", "size": 10, "MD5checksum": "x"}]
        });
        assert_eq!(
            inventory_files(&manifest).expect("files"),
            InventoryFiles {
                schema: vec![
                    "Bucket".into(),
                    "Key".into(),
                    "Size".into(),
                    "LastModifiedDate".into()
                ],
                locations: vec![("inventory".into(), "inv/data/1.csv".into())],
            }
        );
        assert!(inventory_files(&json!({"fileFormat": "ORC"})).is_err());
    }

    #[test]
    fn batches_respect_item_counts() {
        let items: Vec<Value> = (1..=5).map(Value::from).collect();
        let batches = batch_items(items, &json!({"MaxItemsPerBatch": 2})).expect("batches");
        assert_eq!(
            batches,
            vec![
                json!({"Items": [1, 2]}),
                json!({"Items": [3, 4]}),
                json!({"Items": [5]}),
            ]
        );
        let with_input = batch_items(
            vec![json!("a")],
            &json!({"MaxItemsPerBatch": 10, "BatchInput": {"k": "v"}}),
        )
        .expect("batches");
        assert_eq!(
            with_input,
            vec![json!({"BatchInput": {"k": "v"}, "Items": ["a"]})]
        );
        assert_eq!(
            batch_items(Vec::new(), &json!({"MaxItemsPerBatch": 1})),
            Ok(vec![])
        );
    }

    #[test]
    fn batches_respect_byte_limits() {
        // {"Items":[]} is 12 bytes; "aaaa" is 6, plus a comma after the first.
        let items = vec![json!("aaaa"); 5];
        let batches =
            batch_items(items.clone(), &json!({"MaxInputBytesPerBatch": 25})).expect("ok");
        assert_eq!(batches.len(), 3);
        for b in &batches {
            assert!(b.to_string().len() <= 25, "{b}");
        }
        // Exactly at the limit: {"Items":["aaaa","aaaa"]} is 25 bytes.
        assert_eq!(batches[0], json!({"Items": ["aaaa", "aaaa"]}));
        // Both limits: the tighter one wins.
        let batches = batch_items(
            items,
            &json!({"MaxInputBytesPerBatch": 1000, "MaxItemsPerBatch": 4}),
        )
        .expect("ok");
        assert_eq!(batches.len(), 2);
        // BatchInput counts.
        let e = batch_items(
            vec![json!("aaaa")],
            &json!({"MaxInputBytesPerBatch": 20, "BatchInput": {"x": 1}}),
        )
        .expect_err("too big");
        assert_eq!(e.error, "States.Runtime");
        assert!(batch_items(vec![json!(1)], &json!({"MaxItemsPerBatch": 0})).is_err());
        assert!(batch_items(vec![json!(1)], &json!({"MaxItemsPerBatch": "2"})).is_err());
        // Without MaxInputBytesPerBatch, 256 KiB still bounds a batch.
        let big = json!("x".repeat(200 * 1024));
        let batches =
            batch_items(vec![big.clone(), big], &json!({"MaxItemsPerBatch": 10})).expect("ok");
        assert_eq!(batches.len(), 2);
    }

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
        assert_eq!(e.error, "States.DataLimitExceeded");
        assert_eq!(
            e.cause,
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
        assert_eq!(e.error, RESULT_WRITER_FAILED);
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
