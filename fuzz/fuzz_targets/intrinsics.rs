//! An intrinsic function call, parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = asl::intrinsics::Intrinsic::parse(text);
});
