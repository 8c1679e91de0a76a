//! ItemReader: the items of a Distributed Map read from S3 (JSON, JSONL, CSV,
//! listObjectsV2, S3 Inventory manifests), with `ReaderConfig` and `MaxItems`.

use asl::error::ErrorCause;
use serde_json::{json, Map, Value};

use crate::s3::{ListObjects, ObjectSummary, S3Error, S3};

use super::csv::csv_items;
use super::{reader_failed, MAX_ITEMS_CEILING};

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
    pub fn parse(config: Option<&Value>) -> Result<ReaderConfig, ErrorCause> {
        let mut out = ReaderConfig::default();
        let Some(config) = config else {
            return Ok(out);
        };
        let Some(obj) = config.as_object() else {
            return Err(reader_failed("ReaderConfig must be an object"));
        };
        let text = |name: &str| -> Result<Option<&str>, ErrorCause> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(reader_failed(format!(
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
                return Err(reader_failed(format!(
                    "InputType '{other}' is not supported by stepwise (JSON, JSONL, CSV, MANIFEST)"
                )))
            }
        };
        out.header_location = match text("CSVHeaderLocation")? {
            None | Some("FIRST_ROW") => HeaderLocation::FirstRow,
            Some("GIVEN") => HeaderLocation::Given,
            Some(other) => {
                return Err(reader_failed(format!(
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
                return Err(reader_failed(format!(
                    "CSVDelimiter '{other}' is not COMMA, PIPE, SEMICOLON, SPACE or TAB"
                )))
            }
        };
        if let Some(headers) = obj.get("CSVHeaders") {
            let list = headers.as_array().ok_or_else(|| {
                reader_failed("ReaderConfig field CSVHeaders must be an array of strings")
            })?;
            out.headers = list
                .iter()
                .map(|h| h.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    reader_failed("ReaderConfig field CSVHeaders must be an array of strings")
                })?;
        }
        if out.header_location == HeaderLocation::Given && obj.get("CSVHeaders").is_none() {
            return Err(reader_failed(
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
                return Err(reader_failed(format!(
                    "ReaderConfig Transformation '{other}' is not NONE or LOAD_AND_FLATTEN"
                )))
            }
        };
        Ok(out)
    }
}

/// `MaxItems`: a non-negative integer, `0` meaning no cap, capped at 100,000,000.
pub(super) fn max_items(v: &Value) -> Result<Option<usize>, ErrorCause> {
    if let Some(n) = v.as_u64() {
        return Ok((n != 0).then(|| {
            usize::try_from(n)
                .unwrap_or(MAX_ITEMS_CEILING)
                .min(MAX_ITEMS_CEILING)
        }));
    }
    if v.as_i64().is_some_and(|n| n < 0) {
        return Err(reader_failed("field MaxItems must be positive"));
    }
    Err(reader_failed(format!(
        "The MaxItems field refers to value '{v}' which is not a valid integer"
    )))
}

/// The S3 action an `ItemReader`/`ResultWriter` resource names
/// (`arn:aws:states:::s3:getObject`).
pub(super) fn s3_action(resource: &str) -> Option<&str> {
    let parts: Vec<&str> = resource.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", "", "", "s3", action] => Some(action),
        _ => None,
    }
}

/// A string argument (`Bucket`, `Key`, …); absent is `None`.
pub(super) fn string_arg(args: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("The field {name} must be a string, got {other}")),
    }
}

/// Reads the items of a Distributed Map's `ItemReader` through `s3`.
///
/// `resource` is `arn:aws:states:::s3:getObject` or `…:s3:listObjectsV2`; `arguments` its
/// evaluated `Parameters` (`Bucket`, `Key`, `VersionId`, `Prefix`, `Delimiter`,
/// `StartAfter`); `reader_config` the `ReaderConfig` with `MaxItemsPath` resolved.
pub async fn read_items(
    s3: &S3,
    resource: &str,
    arguments: &Value,
    reader_config: Option<&Value>,
) -> Result<Vec<Value>, ErrorCause> {
    let config = ReaderConfig::parse(reader_config)?;
    let action = s3_action(resource).ok_or_else(|| {
        reader_failed(format!(
            "The ItemReader resource '{resource}' is not supported"
        ))
    })?;
    let args = arguments
        .as_object()
        .ok_or_else(|| reader_failed("The ItemReader parameters must be an object"))?;
    let arg = |name: &str| string_arg(args, name).map_err(reader_failed);
    let bucket = arg("Bucket")?
        .ok_or_else(|| reader_failed("The field Bucket is required by the ItemReader"))?;
    match action {
        "getObject" => {
            let key = arg("Key")?
                .ok_or_else(|| reader_failed("The field Key is required by s3:getObject"))?;
            let input_type = config.input_type.ok_or_else(|| {
                reader_failed("ReaderConfig InputType is required with s3:getObject")
            })?;
            let body = s3
                .get_object(&bucket, &key, arg("VersionId")?.as_deref())
                .await
                .map_err(reader_s3)?;
            if input_type == InputType::Manifest {
                return read_inventory(s3, &body, config.max_items).await;
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
                return Err(reader_failed(
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
        other => Err(reader_failed(format!(
            "The ItemReader resource action 's3:{other}' is not supported (getObject, listObjectsV2)"
        ))),
    }
}

pub(super) fn reader_s3(e: S3Error) -> ErrorCause {
    reader_failed(e.to_string())
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
) -> Result<Vec<Value>, ErrorCause> {
    let cap = config.max_items.unwrap_or(MAX_ITEMS_CEILING);
    let text = decode(body)?;
    let mut items = match input_type {
        InputType::Json => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            Ok(_) => return Err(reader_failed("Attempting to map over non-iterable node.")),
            Err(e) => {
                return Err(reader_failed(format!(
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
                    reader_failed(format!("Line {} is not valid JSON: {e}", n + 1))
                })?);
            }
            items
        }
        InputType::Csv => csv_items(text, config, cap)?,
        InputType::Manifest => {
            return Err(reader_failed(
                "A MANIFEST is read with s3:getObject, not as an item list",
            ))
        }
    };
    items.truncate(cap);
    Ok(items)
}

/// UTF-8 text without a byte-order mark.
pub(super) fn decode(body: &[u8]) -> Result<&str, ErrorCause> {
    let text = std::str::from_utf8(body)
        .map_err(|e| reader_failed(format!("The content of the object is not UTF-8: {e}")))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The items of an S3 Inventory: its manifest's CSV data files, keyed by `fileSchema`.
pub(super) async fn read_inventory(
    s3: &S3,
    manifest: &[u8],
    max_items: Option<usize>,
) -> Result<Vec<Value>, ErrorCause> {
    let manifest: Value = serde_json::from_slice(manifest)
        .map_err(|e| reader_failed(format!("The manifest is not valid JSON: {e}")))?;
    let files = inventory_files(&manifest)?;
    let cap = max_items.unwrap_or(MAX_ITEMS_CEILING);
    let mut items = Vec::new();
    for (bucket, key) in files.locations {
        if key.ends_with(".gz") {
            return Err(reader_failed(format!(
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
pub(super) struct InventoryFiles {
    schema: Vec<String>,
    /// (bucket, key) of each data file.
    locations: Vec<(String, String)>,
}

pub(super) fn inventory_files(manifest: &Value) -> Result<InventoryFiles, ErrorCause> {
    let field = |name: &str| {
        manifest
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| reader_failed(format!("The manifest has no {name}")))
    };
    let format = field("fileFormat")?;
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(reader_failed(format!(
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
        .ok_or_else(|| reader_failed("The manifest has no files"))?
        .iter()
        .map(|f| {
            f.get("key")
                .and_then(Value::as_str)
                .map(|k| (bucket.clone(), k.to_owned()))
                .ok_or_else(|| reader_failed("A manifest file has no key"))
        })
        .collect::<Result<_, _>>()?;
    Ok(InventoryFiles { schema, locations })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asl::error::names::ITEM_READER_FAILED;

    fn config(v: Value) -> ReaderConfig {
        ReaderConfig::parse(Some(&v)).expect("config")
    }

    #[test]
    fn json_arrays_are_items() {
        let c = ReaderConfig::default();
        let items = parse_items(InputType::Json, br#"[1, {"a": 2}, "x"]"#, &c).expect("items");
        assert_eq!(items, vec![json!(1), json!({"a": 2}), json!("x")]);
        let e = parse_items(InputType::Json, br#"{"a": [1]}"#, &c).expect_err("object");
        assert_eq!(e.error_name(), ITEM_READER_FAILED);
        assert_eq!(e.cause_text(), "Attempting to map over non-iterable node.");
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
            e.cause_text().starts_with("Line 2 is not valid JSON"),
            "{}",
            e.cause_text()
        );
        let capped = config(json!({"MaxItems": 1}));
        // Lines past the cap are not parsed.
        assert_eq!(
            parse_items(InputType::Jsonl, b"1\n{oops\n", &capped).expect("items"),
            vec![json!(1)]
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
        assert_eq!(e.cause_text(), "field MaxItems must be positive");
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
}
