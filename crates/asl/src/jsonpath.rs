//! JSONPath as AWS Step Functions evaluates it (Jayway dialect). INTERIM STUB: the public API
//! below is fixed; the implementation is being replaced.

use serde_json::Value;

/// What a path is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the effective input of the field.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    root: Root,
    keys: Vec<String>,
}

impl JsonPath {
    /// Parses `text`; the error is a short description of what is wrong.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let (root, rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (Root::Input, r)
        } else {
            return Err(format!("'{text}' is not a JSONPath"));
        };
        let keys = rest.split('.').filter(|k| !k.is_empty()).map(str::to_owned).collect();
        Ok(JsonPath { text: text.to_owned(), root, keys })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// A definite path (no wildcard, deep scan, filter, slice or union) yields one value.
    pub fn is_definite(&self) -> bool {
        true
    }

    /// Evaluates against the value of the path's root. A definite path yields its value, or
    /// `None` when it does not resolve; an indefinite path yields an array (maybe empty).
    pub fn select(&self, root: &Value) -> Option<Value> {
        let mut v = root;
        for k in &self.keys {
            v = v.get(k)?;
        }
        Some(v.clone())
    }
}
