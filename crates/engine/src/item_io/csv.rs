//! CSV as AWS's ItemReader reads it: records split on the delimiter with quotes and
//! backslash escapes, rows keyed by their headers.

use std::collections::HashSet;

use asl::error::ErrorCause;
use serde_json::{Map, Value};

use super::reader::{HeaderLocation, ReaderConfig};
use super::reader_failed;

/// CSV rows as objects keyed by the headers, at most `cap` of them.
pub(super) fn csv_items(
    text: &str,
    config: &ReaderConfig,
    cap: usize,
) -> Result<Vec<Value>, ErrorCause> {
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
        return Err(reader_failed("CSV headers cannot contain duplicates."));
    }
    Ok(records
        .take(cap)
        .map(|row| row_object(&headers, row))
        .collect())
}

/// A row keyed by `headers`: missing fields are empty strings, extra fields are dropped.
/// The keys are in header order, except that an empty header's key comes first, as AWS
/// records it (`H1,` gives `{"":…,"H1":…}`).
pub(super) fn row_object(headers: &[String], row: Vec<String>) -> Value {
    let mut fields: Vec<(&String, Value)> = headers
        .iter()
        .zip(
            row.into_iter()
                .map(Value::String)
                .chain(std::iter::repeat_with(|| Value::String(String::new()))),
        )
        .collect();
    // Stable: the other keys keep their order.
    fields.sort_by_key(|(h, _)| !h.is_empty());
    let object: Map<String, Value> = fields.into_iter().map(|(h, v)| (h.clone(), v)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_io::{parse_items, InputType};
    use serde_json::json;

    fn config(v: Value) -> ReaderConfig {
        ReaderConfig::parse(Some(&v)).expect("config")
    }

    fn csv(text: &str, v: Value) -> Result<Vec<Value>, ErrorCause> {
        parse_items(InputType::Csv, text.as_bytes(), &config(v))
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

    /// An empty header's key comes first, the others in header order (AWS's recording of
    /// `H1,` as `{"":…,"H1":…}`).
    #[test]
    fn csv_empty_header_key_first() {
        for (text, keys) in [
            ("H1,\nv1,v2\n", vec!["", "H1"]),
            ("b,,a\n1,2,3\n", vec!["", "b", "a"]),
            (",x\n1,2\n", vec!["", "x"]),
        ] {
            let items = csv(
                text,
                json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
            )
            .expect("items");
            let got: Vec<&String> = items[0].as_object().expect("object").keys().collect();
            assert_eq!(got, keys, "{text:?}");
        }
        let items = csv(
            "H1,\nValue4,Value5,Value6\n",
            json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        )
        .expect("items");
        assert_eq!(
            serde_json::to_string(&items).expect("JSON"),
            r#"[{"":"Value5","H1":"Value4"}]"#
        );
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
        assert_eq!(e.cause_text(), "CSV headers cannot contain duplicates.");
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
}
