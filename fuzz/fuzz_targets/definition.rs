//! A definition as CreateStateMachine receives it: parsed, validated and linted. Covers the
//! ASL parser, JSONPath/intrinsic/JSONata compilation, Choice rules and templates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = asl::definition::Definition::parse(text);
    let _ = asl::lint::warnings(text);
});
