//! One state run as TestState runs it: the state's JSON (first line) on an input (the rest),
//! its work mocked with the input. Evaluates paths, intrinsics, JSONata, Choice rules,
//! templates, ResultSelector/ResultPath, Retry/Catch and Wait times without IO.
#![no_main]

use asl::definition::Definition;
use asl::interpreter::test_state::{run, Mocked, TestCase, TestConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fuzz_target!(|text: &str| {
    let (state, input) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(definition) = Definition::parse_state(state) else {
        return;
    };
    let Some(state) = definition.find_state(&definition.root.start_at) else {
        return;
    };
    let input: Value = serde_json::from_str(input).unwrap_or(json!({"a": [1, 2], "b": "x"}));
    let case = TestCase {
        definition: &definition,
        state,
        input: input.clone(),
        context: json!({"Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:m:e"}}),
        variables: Map::new(),
        config: TestConfig {
            retrier_retry_count: 0,
            map_iteration_failure_count: None,
        },
        now: 1_700_000_000_000,
        seed: 7,
    };
    let _ = run(&case, Some(Mocked::Result(input)));
});
