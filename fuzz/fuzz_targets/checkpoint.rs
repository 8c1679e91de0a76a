//! The checkpoint loader: stored text read back as an execution's runtime.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    engine::fuzzing::load_checkpoint(text);
});
