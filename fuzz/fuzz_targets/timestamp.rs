//! AWS's timestamp grammar: parse, and format what parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some(ms) = asl::timestamp::parse(text) {
        let _ = asl::timestamp::format_millis(ms);
    }
    let _ = asl::timestamp::parse_nanos(text);
});
