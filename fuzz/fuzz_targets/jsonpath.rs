//! A JSONPath (first line) evaluated against a JSON document (the rest, or a fixed one).
#![no_main]

use asl::jsonpath::{JsonPath, ReferencePath};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|text: &str| {
    let (path, doc) = text.split_once('\n').unwrap_or((text, ""));
    let doc: Value = serde_json::from_str(doc).unwrap_or_else(|_| {
        json!({"a": [1, {"b": "x", "c": [true, null, 2.5]}], "d": {"e": {"f": [[1], [2, 3]]}}})
    });
    if let Ok(p) = JsonPath::parse(path) {
        let _ = p.query(&doc);
        let _ = p.normalized();
    }
    if let Ok(r) = ReferencePath::parse(path) {
        let _ = r.get(&doc);
        let _ = r.set(doc.clone(), json!({"new": 1}));
    }
});
