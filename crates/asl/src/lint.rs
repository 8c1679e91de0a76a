//! The warnings of `ValidateStateMachineDefinition`: fields of JSONPath states that are valid
//! but probably not what the author meant, because a path or an intrinsic function there is
//! taken as a literal string.
//!
//! Read from the document as written, like `definition::variable_references`, so a definition
//! with errors still gets its warnings. JSONata states are skipped: their fields have no `.$`
//! or `…Path` forms. Locations are JSON pointers as in the errors (`/States/A/Parameters/k`).

use serde_json::{Map, Value};

use crate::definition::Diagnostic;

/// No `.$` on a payload template key whose value looks like a path or an intrinsic function.
pub const NO_DOLLAR: &str = "NO_DOLLAR";
/// A path-looking value in a field whose `…Path` form would read it from the input.
pub const NO_PATH: &str = "NO_PATH";
/// A `.$` key inside a Pass state's `Result`, which is never evaluated.
pub const PASS_RESULT_IS_STATIC: &str = "PASS_RESULT_IS_STATIC";

/// A state's payload templates, where only `.$` keys are evaluated.
const TEMPLATES: &[&str] = &[
    "Parameters",
    "ItemSelector",
    "ResultSelector",
    "Credentials",
    "Assign",
];
/// Payload templates one object down: (object, template).
const NESTED_TEMPLATES: &[(&str, &str)] = &[
    ("ItemReader", "Parameters"),
    ("ResultWriter", "Parameters"),
    ("ItemBatcher", "BatchInput"),
];
/// Arrays whose entries may carry an `Assign` template.
const ASSIGNING_ENTRIES: &[&str] = &["Catch", "Choices"];

/// String fields that have a `…Path` form: Fail's, Wait's and the Choice rule comparisons'.
/// (`StringMatches` has none; the numeric and boolean comparisons take no strings.)
const PATH_FORMS: &[&str] = &[
    "Error",
    "Cause",
    "Timestamp",
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
];

/// The warnings for the definition `text`, in document order; none when it is not a JSON
/// object.
pub fn warnings(text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(text) {
        machine(&doc, is_jsonata(doc.get("QueryLanguage")), "", &mut out);
    }
    out
}

/// The message of a warning about `field`. AWS does not document its wording: these are
/// guesses, and only the codes are AWS's.
fn message(code: &str, field: &str) -> String {
    match code {
        NO_DOLLAR => format!(
            "The value of '{field}' looks like a JSONPath or an intrinsic function, but it is taken literally because the field name does not end with '.$'"
        ),
        NO_PATH => format!(
            "The value of '{field}' looks like a path, but it is taken literally because the field name does not end with 'Path'"
        ),
        _ => format!(
            "The field '{field}' is taken literally: a Pass state's 'Result' is static and never evaluates paths (use 'Parameters')"
        ),
    }
}

fn warn(out: &mut Vec<Diagnostic>, code: &'static str, field: &str, at: String) {
    out.push(Diagnostic {
        code,
        message: message(code, field),
        location: Some(at),
    });
}

/// `QueryLanguage` as `definition.rs` reads it: anything but `"JSONPath"` means JSONata.
fn is_jsonata(language: Option<&Value>) -> bool {
    language.is_some_and(|l| l.as_str() != Some("JSONPath"))
}

/// The states of a machine at `at`; nested ones default to the state machine's language
/// (`jsonata`), as in `definition.rs`.
fn machine(m: &Map<String, Value>, jsonata: bool, at: &str, out: &mut Vec<Diagnostic>) {
    let Some(states) = m.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in states {
        let Some(fields) = spec.as_object() else {
            continue;
        };
        let here = format!("{at}/States/{name}");
        let state_jsonata = match fields.get("QueryLanguage") {
            None => jsonata,
            own => is_jsonata(own),
        };
        if !state_jsonata {
            state(fields, &here, out);
        }
        let branches = fields.get("Branches").and_then(Value::as_array);
        for (i, branch) in branches.into_iter().flatten().enumerate() {
            if let Some(b) = branch.as_object() {
                machine(b, jsonata, &format!("{here}/Branches[{i}]"), out);
            }
        }
        for field in ["ItemProcessor", "Iterator"] {
            if let Some(p) = fields.get(field).and_then(Value::as_object) {
                machine(p, jsonata, &format!("{here}/{field}"), out);
            }
        }
    }
}

/// One JSONPath state's own fields.
fn state(fields: &Map<String, Value>, at: &str, out: &mut Vec<Diagnostic>) {
    for field in TEMPLATES {
        if let Some(t) = fields.get(*field) {
            template(t, &format!("{at}/{field}"), out);
        }
    }
    for (outer, inner) in NESTED_TEMPLATES {
        if let Some(t) = fields.get(*outer).and_then(|o| o.get(*inner)) {
            template(t, &format!("{at}/{outer}/{inner}"), out);
        }
    }
    for list in ASSIGNING_ENTRIES {
        let entries = fields.get(*list).and_then(Value::as_array);
        for (i, entry) in entries.into_iter().flatten().enumerate() {
            if let Some(t) = entry.get("Assign") {
                template(t, &format!("{at}/{list}[{i}]/Assign"), out);
            }
        }
    }
    path_forms(fields, at, out);
    let choices = fields.get("Choices").and_then(Value::as_array);
    for (i, rule) in choices.into_iter().flatten().enumerate() {
        choice_rule(rule, &format!("{at}/Choices[{i}]"), out);
    }
    if fields.get("Type").and_then(Value::as_str) == Some("Pass") {
        if let Some(result) = fields.get("Result") {
            static_result(result, &format!("{at}/Result"), out);
        }
    }
}

/// NO_DOLLAR in a payload template, at any depth.
fn template(value: &Value, at: &str, out: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj.iter().filter(|(k, _)| !k.ends_with(".$")) {
                let here = format!("{at}/{key}");
                match v {
                    Value::String(s) if looks_evaluated(s) => warn(out, NO_DOLLAR, key, here),
                    _ => template(v, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                template(item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A Choice rule and the rules nested in its `And`, `Or` and `Not`.
fn choice_rule(rule: &Value, at: &str, out: &mut Vec<Diagnostic>) {
    let Some(fields) = rule.as_object() else {
        return;
    };
    path_forms(fields, at, out);
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("And" | "Or", Value::Array(rules)) => {
                for (i, r) in rules.iter().enumerate() {
                    choice_rule(r, &format!("{at}/{key}[{i}]"), out);
                }
            }
            ("Not", r) => choice_rule(r, &format!("{at}/Not"), out),
            _ => {}
        }
    }
}

/// NO_PATH on the fields of `fields` that have a `…Path` form.
fn path_forms(fields: &Map<String, Value>, at: &str, out: &mut Vec<Diagnostic>) {
    for (key, value) in fields {
        if let Value::String(s) = value {
            let path_like = ["$.", "$$.", "$["].iter().any(|p| s.starts_with(p));
            if path_like && PATH_FORMS.contains(&key.as_str()) {
                warn(out, NO_PATH, key, format!("{at}/{key}"));
            }
        }
    }
}

/// PASS_RESULT_IS_STATIC for every `.$` key in a Pass state's `Result`.
fn static_result(value: &Value, at: &str, out: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj {
                let here = format!("{at}/{key}");
                if key.ends_with(".$") {
                    warn(out, PASS_RESULT_IS_STATIC, key, here);
                } else {
                    static_result(v, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                static_result(item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Whether a template value would be evaluated under a `.$` key: a path on the input (`$`,
/// `$.…`, `$[…`), on the context object (`$$…`), or an intrinsic call (`States.Name(`).
fn looks_evaluated(s: &str) -> bool {
    let intrinsic = s
        .strip_prefix("States.")
        .and_then(|rest| rest.split_once('('))
        .is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
        });
    s == "$" || s.starts_with("$.") || s.starts_with("$[") || s.starts_with("$$") || intrinsic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            // Nothing to say.
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"a.$":"$.x","b":"$5","c":"States.ALL"},"End":true}}}"#,
                &[],
            ),
            ("not json", &[]),
            ("[]", &[]),
            // NO_DOLLAR in every template, at any depth, arrays included.
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
                    "Parameters":{"p":"$.x","q":{"r":"$$.Execution.Id","s":[{"t":"States.Format('{}', $.a)"}]},"u":"$","v":"$[0]"},
                    "ResultSelector":{"w":"$.Payload"},"Credentials":{"RoleArn":"$.role"},
                    "Catch":[{"ErrorEquals":["States.ALL"],"Assign":{"e":"$.Cause"},"Next":"A"}],"End":true}}}"#,
                &[
                    (NO_DOLLAR, "/States/A/Parameters/p"),
                    (NO_DOLLAR, "/States/A/Parameters/q/r"),
                    (NO_DOLLAR, "/States/A/Parameters/q/s[0]/t"),
                    (NO_DOLLAR, "/States/A/Parameters/u"),
                    (NO_DOLLAR, "/States/A/Parameters/v"),
                    (NO_DOLLAR, "/States/A/ResultSelector/w"),
                    (NO_DOLLAR, "/States/A/Credentials/RoleArn"),
                    (NO_DOLLAR, "/States/A/Catch[0]/Assign/e"),
                ],
            ),
            // NO_PATH: Fail, Wait and Choice rules, nested ones included.
            (
                r#"{"StartAt":"C","States":{
                    "C":{"Type":"Choice","Choices":[
                        {"Variable":"$.a","StringEquals":"$.b","Next":"F"},
                        {"And":[{"Variable":"$.a","IsPresent":true},{"Not":{"Variable":"$.t","TimestampLessThan":"$$.Execution.StartTime"}}],"Next":"W"},
                        {"Variable":"$.a","StringMatches":"$.*","Next":"F"}],"Default":"F"},
                    "W":{"Type":"Wait","Timestamp":"$.when","Next":"F"},
                    "F":{"Type":"Fail","Error":"$.error","Cause":"plain"}}}"#,
                &[
                    (NO_PATH, "/States/C/Choices[0]/StringEquals"),
                    (NO_PATH, "/States/C/Choices[1]/And[1]/Not/TimestampLessThan"),
                    (NO_PATH, "/States/W/Timestamp"),
                    (NO_PATH, "/States/F/Error"),
                ],
            ),
            // PASS_RESULT_IS_STATIC at any depth; a Task's Result is not a Pass's.
            (
                r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"a.$":"$.x","b":[{"c.$":"$.y"}],"d":"$.z"},"End":true}}}"#,
                &[
                    (PASS_RESULT_IS_STATIC, "/States/P/Result/a.$"),
                    (PASS_RESULT_IS_STATIC, "/States/P/Result/b[0]/c.$"),
                ],
            ),
            // Nested machines: Parallel branches, ItemProcessor, Iterator, Map templates.
            (
                r#"{"StartAt":"Par","States":{
                    "Par":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Fail","Cause":"$.c"}}}],"Next":"M"},
                    "M":{"Type":"Map","ItemSelector":{"i":"$$.Map.Item.Value"},"ItemProcessor":{"StartAt":"I","States":{
                        "I":{"Type":"Pass","Parameters":{"x":"$.x"},"End":true}}},"Next":"L"},
                    "L":{"Type":"Map","Iterator":{"StartAt":"J","States":{"J":{"Type":"Pass","Result":{"k.$":"$"},"End":true}}},
                        "ItemReader":{"Resource":"arn:aws:states:::s3:getObject","Parameters":{"Bucket":"$.b"}},"End":true}}}"#,
                &[
                    (NO_PATH, "/States/Par/Branches[0]/States/B/Cause"),
                    (NO_DOLLAR, "/States/M/ItemSelector/i"),
                    (NO_DOLLAR, "/States/M/ItemProcessor/States/I/Parameters/x"),
                    (NO_DOLLAR, "/States/L/ItemReader/Parameters/Bucket"),
                    (
                        PASS_RESULT_IS_STATIC,
                        "/States/L/Iterator/States/J/Result/k.$",
                    ),
                ],
            ),
            // JSONata states are skipped: the machine's language, a state's own, and nested
            // states inheriting the machine's (not the enclosing state's).
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Fail","Error":"$.e"}}}"#,
                &[],
            ),
            (
                r#"{"StartAt":"A","States":{
                    "A":{"Type":"Fail","QueryLanguage":"JSONata","Error":"$.e"},
                    "M":{"Type":"Map","QueryLanguage":"JSONata","ItemProcessor":{"StartAt":"P","States":{
                        "P":{"Type":"Fail","Error":"$.e"}}},"End":true}}}"#,
                &[(NO_PATH, "/States/M/ItemProcessor/States/P/Error")],
            ),
            // Warnings come with errors too: the document as written is read.
            (
                r#"{"StartAt":"Missing","States":{"A":{"Type":"Fail","Cause":"$.c"}}}"#,
                &[(NO_PATH, "/States/A/Cause")],
            ),
        ];
        for (text, expected) in cases {
            let got: Vec<(&str, String)> = warnings(text)
                .into_iter()
                .map(|d| (d.code, d.location.unwrap_or_default()))
                .collect();
            let want: Vec<(&str, String)> = expected
                .iter()
                .map(|(code, at)| (*code, (*at).to_owned()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn messages_name_the_field() {
        let d = warnings(r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"$.e"}}}"#);
        assert_eq!(
            d[0].message,
            "The value of 'Error' looks like a path, but it is taken literally because the field name does not end with 'Path'"
        );
    }
}
