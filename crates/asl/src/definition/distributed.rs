//! The Distributed Map's own fields: `ProcessorConfig`, `Label`, `ItemReader`, `ItemBatcher`,
//! `ResultWriter` and the tolerated failure thresholds.
//!
//! A Distributed Map runs each item as a child execution of a Map Run, which the engine
//! owns; the interpreter only resolves these fields against the state input (see
//! `interpreter::MapRunSpec`).

use serde_json::{Map, Value};

use super::{codes, Payload, QueryLanguage, Validator};
use crate::jsonata;
use crate::jsonpath::JsonPath;
use crate::template::Template;

/// A Map state with `ProcessorConfig.Mode = DISTRIBUTED`.
#[derive(Debug, Clone)]
pub struct Distributed {
    /// `ProcessorConfig.ExecutionType`: the children are `STANDARD` or `EXPRESS` executions.
    pub express: bool,
    pub label: Option<String>,
    /// The item processor as a definition of its own: what every child execution runs.
    pub processor_definition: String,
    pub item_reader: Option<ItemReader>,
    /// `ItemSelector` (or `Parameters`) as written: the engine applies it to each item.
    pub item_selector: Option<Value>,
    /// `ItemBatcher` as written; its `…Path` fields and `BatchInput` resolve at run time.
    pub item_batcher: Option<Value>,
    pub result_writer: Option<ResultWriter>,
    pub tolerated_failure_count: Option<Threshold>,
    pub tolerated_failure_percentage: Option<Threshold>,
}

/// Where the items come from when they are not in the state input.
#[derive(Debug, Clone)]
pub struct ItemReader {
    /// `arn:aws:states:::s3:getObject` or `arn:aws:states:::s3:listObjectsV2`.
    pub resource: String,
    /// `Parameters` (JSONPath) or `Arguments` (JSONata).
    pub parameters: Option<Payload>,
    /// `ReaderConfig` as written; `MaxItemsPath` resolves at run time.
    pub reader_config: Option<Value>,
}

/// Where the results go: `arn:aws:states:::s3:putObject`.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    pub resource: String,
    pub parameters: Option<Payload>,
    pub writer_config: Option<Value>,
}

/// A tolerated failure count or percentage: a literal, read from the state input, or a
/// JSONata expression.
#[derive(Debug, Clone)]
pub enum Threshold {
    Fixed(f64),
    Path(JsonPath),
    Jsonata(jsonata::Template),
}

const LABEL_MAX: usize = 40;

impl Validator {
    /// A Map's `ProcessorConfig` at `at`: `Mode` INLINE or DISTRIBUTED, `ExecutionType`
    /// STANDARD or EXPRESS, and required in the distributed mode.
    pub(super) fn processor_config(&mut self, config: &Value, at: &str) {
        let Value::Object(config) = config else {
            self.schema("Value must be an object", at);
            return;
        };
        let one_of = [
            ("Mode", "[INLINE, DISTRIBUTED]"),
            ("ExecutionType", "[STANDARD, EXPRESS]"),
        ];
        for (field, values) in one_of {
            let value = config.get(field);
            let allowed = values.trim_matches(['[', ']']).split(", ");
            if value.is_some_and(|v| !allowed.clone().any(|a| v.as_str() == Some(a))) {
                self.schema(
                    format!("The field '{field}' should have one of these values: {values}"),
                    &format!("{at}/{field}"),
                );
            }
        }
        let distributed = config.get("Mode").and_then(Value::as_str) == Some("DISTRIBUTED");
        if distributed && !config.contains_key("ExecutionType") {
            self.schema("These fields are required: [ExecutionType]", at);
        }
    }

    /// The distributed fields of the Map state at `at`; `processor` is its `ItemProcessor`.
    pub(super) fn distributed(
        &mut self,
        obj: &Map<String, Value>,
        processor: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Distributed {
        let express = processor
            .get("ProcessorConfig")
            .and_then(|c| c.get("ExecutionType"))
            .and_then(Value::as_str)
            == Some("EXPRESS");
        let mut child = processor.clone();
        child.remove("ProcessorConfig");
        // The processor's states inherit the machine's query language, which the child's own
        // definition must then name.
        if self.language == QueryLanguage::Jsonata {
            child
                .entry("QueryLanguage")
                .or_insert_with(|| Value::from("JSONata"));
        }
        let label = match obj.get("Label") {
            Some(Value::String(l)) => {
                self.label(l, at);
                Some(l.clone())
            }
            Some(_) => {
                self.schema("Value must be a string", &format!("{at}/Label"));
                None
            }
            None => None,
        };
        let item_reader = obj.get("ItemReader").and_then(|r| {
            let (resource, parameters, config) =
                self.s3_call(r, "ReaderConfig", at, "ItemReader", language)?;
            Some(ItemReader {
                resource,
                parameters,
                reader_config: config,
            })
        });
        let result_writer = obj.get("ResultWriter").and_then(|r| {
            let (resource, parameters, config) =
                self.s3_call(r, "WriterConfig", at, "ResultWriter", language)?;
            Some(ResultWriter {
                resource,
                parameters,
                writer_config: config,
            })
        });
        if language == QueryLanguage::Jsonata {
            // Checked here; the engine evaluates it for each item.
            self.jsonata(obj, "ItemSelector", at);
        }
        Distributed {
            express,
            label,
            processor_definition: Value::Object(child).to_string(),
            item_reader,
            item_selector: obj
                .get("ItemSelector")
                .or_else(|| obj.get("Parameters"))
                .cloned(),
            item_batcher: obj.get("ItemBatcher").cloned(),
            result_writer,
            tolerated_failure_count: self.threshold(
                obj,
                "ToleratedFailureCount",
                at,
                None,
                language,
            ),
            tolerated_failure_percentage: self.threshold(
                obj,
                "ToleratedFailurePercentage",
                at,
                Some(100.0),
                language,
            ),
        }
    }

    /// AWS checks a Map Run label like a name: at most 40 characters, none of the reserved
    /// ones. Its message is the Python-style `ValueError` AWS answers with.
    fn label(&mut self, label: &str, at: &str) {
        if label.chars().count() > LABEL_MAX {
            let message = format!("Label cannot exceed {LABEL_MAX} characters");
            self.error(codes::VALUE_ERROR, message, &format!("{at}/Label"));
            return;
        }
        if let Some(c) = label
            .chars()
            .find(|&c| crate::resource_name::is_reserved(c))
        {
            let message = format!(
                "Label contains invalid character: {}",
                python_repr(&c.to_string())
            );
            self.error(codes::VALUE_ERROR, message, &format!("{at}/Label"));
        }
    }

    /// `Resource`, `Parameters` (or JSONata `Arguments`) and the config object of an
    /// `ItemReader` or `ResultWriter`.
    fn s3_call(
        &mut self,
        spec: &Value,
        config_field: &str,
        at: &str,
        field: &str,
        language: QueryLanguage,
    ) -> Option<(String, Option<Payload>, Option<Value>)> {
        let here = format!("{at}/{field}");
        let Value::Object(o) = spec else {
            self.schema("Value must be an object", &here);
            return None;
        };
        // A ResultWriter with only a WriterConfig shapes the output instead of writing to S3.
        let resource = match o.get("Resource") {
            Some(Value::String(r)) => r.clone(),
            None if field == "ResultWriter" && o.contains_key(config_field) => String::new(),
            _ => {
                self.schema("These fields are required: [Resource]", &here);
                return None;
            }
        };
        let parameters = match language {
            QueryLanguage::Jsonata => self.jsonata(o, "Arguments", &here).map(Payload::Jsonata),
            QueryLanguage::JsonPath => match o.get("Parameters") {
                Some(p) => match Template::compile(p) {
                    Ok(t) => Some(Payload::Path(t)),
                    Err(m) => {
                        self.schema(m, &format!("{here}/Parameters"));
                        None
                    }
                },
                None => None,
            },
        };
        Some((resource, parameters, o.get(config_field).cloned()))
    }

    fn threshold(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        at: &str,
        max: Option<f64>,
        language: QueryLanguage,
    ) -> Option<Threshold> {
        let path_field = format!("{field}Path");
        if let Some(Value::String(s)) = obj.get(field) {
            if language == QueryLanguage::Jsonata && jsonata::is_expression(s) {
                return self.jsonata(obj, field, at).map(Threshold::Jsonata);
            }
        }
        if let Some(v) = obj.get(field) {
            let n = v
                .as_f64()
                .filter(|n| *n >= 0.0 && max.is_none_or(|m| *n <= m));
            let integral = max.is_some() || v.as_u64().is_some();
            return match n.filter(|_| integral) {
                Some(n) => Some(Threshold::Fixed(n)),
                None => {
                    let message = match max {
                        Some(m) => format!("Value must be between 0 and {m}"),
                        None => "Value must be a non-negative integer".into(),
                    };
                    self.schema(message, &format!("{at}/{field}"));
                    None
                }
            };
        }
        match obj.get(&path_field) {
            Some(Value::String(p)) => match JsonPath::parse(p) {
                Ok(p) => Some(Threshold::Path(p)),
                Err(_) => {
                    self.schema(
                        format!("The value for the field '{path_field}' must be a valid JSONPath"),
                        &format!("{at}/{path_field}"),
                    );
                    None
                }
            },
            Some(_) => {
                self.schema("Value must be a string", &format!("{at}/{path_field}"));
                None
            }
            None => None,
        }
    }
}

/// A string as Python's `repr` writes it: `'a'`, `'\\n'`, `'\\x85'`, `"it's"`.
pub(super) fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::python_repr;

    #[test]
    fn repr_matches_python() {
        let cases = [
            ("a", "'a'"),
            ("\n", "'\\n'"),
            ("\u{85}", "'\\x85'"),
            ("\u{1}", "'\\x01'"),
            ("\"", "'\"'"),
            ("'", "\"'\""),
            ("\\", "'\\\\'"),
            ("char: '&'", "\"char: '&'\""),
            ("char: '\"'", "'char: \\'\"\\''"),
        ];
        for (s, want) in cases {
            assert_eq!(python_repr(s), want, "{s:?}");
        }
    }
}
