//! Micro-benchmarks of the interpreter's hot paths (`stepwise-asl`): JSONPath, payload
//! templates, intrinsic functions, JSONata expressions and `Arguments` objects, definition
//! parsing, `advance` over a Pass chain, and history event serialization. Run with
//! `cargo bench -p stepwise-bench`.

use asl::definition::Definition;
use asl::history::HistoryEvent;
use asl::interpreter::{advance, ExecutionInfo, Limits, Runtime, Signal};
use asl::intrinsics::Intrinsic;
use asl::jsonata;
use asl::jsonpath::JsonPath;
use asl::template::{Scope, Template};
use asl::Entropy;
use divan::black_box;
use serde_json::{json, Value};

fn main() {
    divan::main();
}

fn document() -> Value {
    let orders: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("order-{i}"), "total": i * 7, "items": [{"sku": "a", "qty": i}]}))
        .collect();
    json!({"customer": {"name": "Ada", "address": {"city": "London"}}, "orders": orders})
}

fn context() -> Value {
    json!({"Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:m:e", "Name": "e"},
           "State": {"Name": "S0", "EnteredTime": "2025-01-01T00:00:00Z"}})
}

const PATHS: [&str; 3] = [
    "$.customer.address.city",
    "$.orders[3].items[0].qty",
    "$.orders[?(@.total > 50)].id",
];

#[divan::bench(args = PATHS)]
fn jsonpath_parse(path: &str) -> JsonPath {
    JsonPath::parse(black_box(path)).unwrap()
}

#[divan::bench(args = PATHS)]
fn jsonpath_select(bencher: divan::Bencher, path: &str) {
    let (path, doc) = (JsonPath::parse(path).unwrap(), document());
    bencher.bench_local(|| path.select(black_box(&doc)));
}

fn parameters() -> Value {
    json!({"name.$": "$.customer.name", "city.$": "$.customer.address.city",
           "execution.$": "$$.Execution.Id", "static": {"a": 1, "b": [1, 2, 3]},
           "greeting.$": "States.Format('Hello {} from {}', $.customer.name, $.customer.address.city)"})
}

#[divan::bench]
fn template_compile() -> Template {
    Template::compile(black_box(&parameters())).unwrap()
}

#[divan::bench]
fn template_render(bencher: divan::Bencher) {
    let (template, input, context) = (
        Template::compile(&parameters()).unwrap(),
        document(),
        context(),
    );
    let mut entropy = Entropy::new(7);
    bencher.bench_local(|| {
        template
            .render(&mut Scope::new(black_box(&input), &context, &mut entropy))
            .unwrap()
    });
}

const INTRINSICS: [&str; 4] = [
    "States.Format('{} has {} orders', $.customer.name, $.customer.address.city)",
    "States.JsonToString($.orders[0])",
    "States.ArrayLength($.orders)",
    "States.Hash($.customer.name, 'SHA-256')",
];

#[divan::bench(args = INTRINSICS)]
fn intrinsic_parse(text: &str) -> Intrinsic {
    Intrinsic::parse(black_box(text)).unwrap()
}

#[divan::bench(args = INTRINSICS)]
fn intrinsic_eval(bencher: divan::Bencher, text: &str) {
    let (f, input, context) = (Intrinsic::parse(text).unwrap(), document(), context());
    let mut entropy = Entropy::new(7);
    bencher.bench_local(|| {
        f.eval(&mut Scope::new(black_box(&input), &context, &mut entropy))
            .unwrap()
    });
}

/// `document()` plus 20 priced line items, for the JSONata expressions.
fn shop() -> Value {
    let mut doc = document();
    doc["items"] = (0..20)
        .map(|i| json!({"name": format!("item-{i}"), "price": i * 2, "qty": i % 3 + 1}))
        .collect();
    doc
}

/// The first is the issue's example; the next two are the JSONPath benchmarks' paths.
const JSONATA: [&str; 3] = [
    "{% $states.input.items[price > 10].name %}",
    "{% $states.input.customer.address.city %}",
    "{% $states.input.orders[total > 50].id %}",
];

/// A JSONata state's `Arguments`: five expressions and a literal.
fn arguments() -> Value {
    json!({"names": "{% $states.input.items[price > 10].name %}",
           "total": "{% $sum($states.input.items.(price * qty)) %}",
           "count": "{% $count($states.input.orders) %}",
           "customer": "{% $uppercase($states.input.customer.name) %}",
           "execution": "{% $states.context.Execution.Id %}",
           "static": {"a": 1, "b": [1, 2, 3]}})
}

/// Parsing (and checking) one `{% %}` field, as `Definition::parse` does.
#[divan::bench(args = JSONATA)]
fn jsonata_compile(text: &str) -> jsonata::Template {
    jsonata::Template::compile(&json!(black_box(text)), "Output", false).unwrap()
}

/// Evaluating it against `shop()` (binds `$states` from the input and context each time).
#[divan::bench(args = JSONATA)]
fn jsonata_eval(bencher: divan::Bencher, text: &str) {
    let template = jsonata::Template::compile(&json!(text), "Output", false).unwrap();
    jsonata_render_bench(bencher, &template);
}

#[divan::bench]
fn jsonata_arguments_compile() -> jsonata::Template {
    jsonata::Template::compile(black_box(&arguments()), "Arguments", false).unwrap()
}

#[divan::bench]
fn jsonata_arguments_render(bencher: divan::Bencher) {
    let template = jsonata::Template::compile(&arguments(), "Arguments", false).unwrap();
    jsonata_render_bench(bencher, &template);
}

fn jsonata_render_bench(bencher: divan::Bencher, template: &jsonata::Template) {
    let (input, context, variables) = (shop(), context(), serde_json::Map::new());
    let mut entropy = Entropy::new(7);
    bencher.bench_local(|| {
        let mut env = jsonata::Env {
            states: jsonata::States::new(black_box(&input), &context),
            variables: &variables,
            now: 1_735_689_600_000,
            entropy: &mut entropy,
        };
        template.render(&mut env).unwrap()
    });
}

/// The harness's pass-chain definition: `states` Pass states, each writing `$.last`.
fn pass_chain(states: usize) -> String {
    let mut map = serde_json::Map::new();
    for i in 0..states {
        let mut state = json!({"Type": "Pass", "Result": i, "ResultPath": "$.last"});
        if i + 1 == states {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        map.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": map}).to_string()
}

#[divan::bench]
fn definition_parse_100_states(bencher: divan::Bencher) {
    let text = pass_chain(100);
    bencher.bench_local(|| Definition::parse(black_box(&text)).unwrap());
}

fn info() -> ExecutionInfo {
    ExecutionInfo {
        execution_arn: "arn:aws:states:us-east-1:123456789012:execution:m:e".into(),
        name: "e".into(),
        state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:m".into(),
        state_machine_name: "m".into(),
        role_arn: "arn:aws:iam::123456789012:role/r".into(),
        start_time: 1_735_689_600_000,
        input: document(),
        ..ExecutionInfo::default()
    }
}

fn run_chain(def: &Definition, info: &ExecutionInfo) -> Vec<HistoryEvent> {
    let mut runtime = Runtime::new();
    let mut entropy = Entropy::new(7);
    let limits = Limits {
        states_per_call: 1000,
        ..Limits::default()
    };
    advance(
        def,
        info,
        &mut runtime,
        Signal::Start,
        1_735_689_600_000,
        &mut entropy,
        limits,
    )
    .events
}

/// One whole execution of a 100-state Pass chain (200 state events), as the runner does it.
#[divan::bench]
fn advance_100_pass_states(bencher: divan::Bencher) {
    let (def, info) = (Definition::parse(&pass_chain(100)).unwrap(), info());
    bencher.bench_local(|| run_chain(&def, black_box(&info)));
}

/// Serializing those events for the store (what the runner does per transition).
#[divan::bench]
fn history_serialize_100_pass_states(bencher: divan::Bencher) {
    let events = run_chain(&Definition::parse(&pass_chain(100)).unwrap(), &info());
    bencher.bench_local(|| engine::stored_event::rows(black_box(&events)));
}
