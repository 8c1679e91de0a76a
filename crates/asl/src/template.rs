//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`).
//!
//! A template is compiled once from the definition: a key ending in `.$` holds a JSONPath
//! (`$…`, `$$…`, `$var…`) or an intrinsic function call, and its output key drops the `.$`.
//! Everything else is copied; nested objects and arrays are walked recursively.

use serde_json::{Map, Value};

use crate::intrinsics::{is_intrinsic, missing_path, Intrinsic};
use crate::jsonpath::{JsonPath, Root};
use crate::{Entropy, ErrorCause};

/// What a template, path or intrinsic function is evaluated against.
pub struct Scope<'a> {
    /// The effective input (`$`).
    pub input: &'a Value,
    /// The context object (`$$`).
    pub context: &'a Value,
    /// Workflow variables (`$name`), when the state can see any.
    pub variables: Option<&'a Map<String, Value>>,
    /// Randomness for `States.UUID` and `States.MathRandom`.
    pub entropy: &'a mut Entropy,
}

impl<'a> Scope<'a> {
    /// A scope without variables.
    pub fn new(input: &'a Value, context: &'a Value, entropy: &'a mut Entropy) -> Scope<'a> {
        Scope {
            input,
            context,
            variables: None,
            entropy,
        }
    }

    /// Evaluates a path against the root it names; `None` when it does not resolve.
    /// The same scope with workflow variables readable as `$name`.
    pub fn with_variables(mut self, variables: &'a Map<String, Value>) -> Scope<'a> {
        self.variables = Some(variables);
        self
    }

    pub fn select(&self, path: &JsonPath) -> Option<Value> {
        match path.root() {
            Root::Input => path.select(self.input),
            Root::Context => path.select(self.context),
            Root::Variable(name) => path.select(self.variables?.get(name)?),
        }
    }
}

/// A compiled payload template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    /// A subtree without any `.$` key, copied as is.
    Literal(Value),
    Path {
        field: String,
        path: JsonPath,
    },
    Intrinsic {
        field: String,
        call: Intrinsic,
    },
    /// Output key and value, in definition order.
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Template {
    /// Compiles a template; the error is AWS's validation message naming the bad field.
    pub fn compile(value: &Value) -> Result<Template, String> {
        Ok(Template {
            root: compile(value)?,
        })
    }

    /// Produces the payload.
    pub fn render(&self, scope: &mut Scope) -> Result<Value, ErrorCause> {
        self.root.render(scope)
    }

    /// The keys of the object it produces (without their `.$`), when it produces one.
    pub fn keys(&self) -> Option<Vec<&str>> {
        match &self.root {
            Node::Object(fields) => Some(fields.iter().map(|(k, _)| k.as_str()).collect()),
            Node::Literal(Value::Object(fields)) => {
                Some(fields.keys().map(String::as_str).collect())
            }
            _ => None,
        }
    }
}

fn compile(value: &Value) -> Result<Node, String> {
    let node = match value {
        Value::Object(m) => {
            let mut members = Vec::with_capacity(m.len());
            for (key, v) in m {
                let node = match key.strip_suffix(".$") {
                    Some(name) => (name.to_owned(), dynamic(key, v)?),
                    None => (key.clone(), compile(v)?),
                };
                members.push(node);
            }
            Node::Object(members)
        }
        Value::Array(items) => Node::Array(items.iter().map(compile).collect::<Result<_, _>>()?),
        other => Node::Literal(other.clone()),
    };
    Ok(match node {
        Node::Object(_) | Node::Array(_) if node.is_static() => Node::Literal(value.clone()),
        node => node,
    })
}

/// The value of a `key.$` field: a path or an intrinsic call.
fn dynamic(key: &str, value: &Value) -> Result<Node, String> {
    let invalid = || {
        format!("The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call")
    };
    let Value::String(s) = value else {
        return Err(invalid());
    };
    let field = key.to_owned();
    if is_intrinsic(s) {
        Intrinsic::parse(s)
            .map(|call| Node::Intrinsic { field, call })
            .map_err(|_| invalid())
    } else {
        JsonPath::parse(s)
            .map(|path| Node::Path { field, path })
            .map_err(|_| invalid())
    }
}

impl Node {
    fn is_static(&self) -> bool {
        match self {
            Node::Literal(_) => true,
            Node::Path { .. } | Node::Intrinsic { .. } => false,
            Node::Object(members) => members.iter().all(|(_, n)| n.is_static()),
            Node::Array(items) => items.iter().all(Node::is_static),
        }
    }

    fn render(&self, scope: &mut Scope) -> Result<Value, ErrorCause> {
        Ok(match self {
            Node::Literal(v) => v.clone(),
            Node::Path { field, path } => scope
                .select(path)
                .ok_or_else(|| missing_path(path, field, scope.input))?,
            Node::Intrinsic { field, call } => call.eval_field(scope, field)?,
            Node::Object(members) => {
                let mut out = Map::with_capacity(members.len());
                for (key, node) in members {
                    out.insert(key.clone(), node.render(scope)?);
                }
                Value::Object(out)
            }
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|n| n.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn render_table() {
        let input = json!({"a": 1, "b": {"c": [1, 2]}, "int-literal": 0});
        let context = json!({"Execution": {"Id": "arn:e"}});
        let vars = json!({"x": {"y": "var"}});
        let cases: Vec<(Value, Result<Value, ErrorCause>)> = vec![
            (json!({"k": "v", "p.$": "$.a", "q.$": "$$.Execution.Id", "r.$": "$x.y"}),
                Ok(json!({"k": "v", "p": 1, "q": "arn:e", "r": "var"}))),
            (json!({"whole.$": "$", "items.$": "$.b.c[*]", "first.$": "$.b.c[0]"}),
                Ok(json!({"whole": input, "items": [1, 2], "first": 1}))),
            (json!({"nested": {"deep": [{"f.$": "States.Format('{}-{}', $.a, $.b.c[1])"}, 3]}}),
                Ok(json!({"nested": {"deep": [{"f": "1-2"}, 3]}}))),
            (json!({"lit": {"x": [1, 2]}, "s": "$.not_a_path"}),
                Ok(json!({"lit": {"x": [1, 2]}, "s": "$.not_a_path"}))),
            (json!({"value.$": "$.no_such_jsonpath"}),
                Err(ErrorCause::runtime("The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found in the input '{\"a\":1,\"b\":{\"c\":[1,2]},\"int-literal\":0}'"))),
            (json!({"v.$": "$nope.x"}),
                Err(ErrorCause::runtime("The JSONPath '$nope.x' specified for the field 'v.$' could not be found in the input '{\"a\":1,\"b\":{\"c\":[1,2]},\"int-literal\":0}'"))),
            (json!("plain"), Ok(json!("plain"))),
        ];
        let vars = vars.as_object().cloned().unwrap_or_default();
        for (i, (template, want)) in cases.into_iter().enumerate() {
            let mut entropy = Entropy::new(1);
            let mut scope = Scope::new(&input, &context, &mut entropy);
            scope.variables = Some(&vars);
            let t = Template::compile(&template).unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(t.render(&mut scope), want, "case {i}: {template}");
        }
    }

    #[test]
    fn compile_errors() {
        let cases = [
            (
                json!({"parsed.$": "States.StringToJson('{\"text\":\"An \\\"q\\\" here\"}')"}),
                "parsed.$",
            ),
            (json!({"x": {"y.$": "a.b"}}), "y.$"),
            (json!([{"z.$": 1}]), "z.$"),
            (json!({"f.$": "States.Nope()"}), "f.$"),
        ];
        for (template, field) in cases {
            assert_eq!(
                Template::compile(&template).err(),
                Some(format!("The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call")),
                "{template}"
            );
        }
    }
}
