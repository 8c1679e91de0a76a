//! The one way tests find the corpora kept beside the repository (the AWS-recorded
//! conformance cases, the real-world definitions): `$STEPWISE_SHARED_DIR`, or `../shared`
//! next to the repository root. Included with `#[path]` by every test that reads them, so
//! the variable, the default and the skip message are written once.

use std::path::PathBuf;

/// The variable that moves the folder.
pub const VARIABLE: &str = "STEPWISE_SHARED_DIR";

/// `relative` inside the shared folder, or `None` after printing why the test is skipped.
pub fn shared_path(relative: &str) -> Option<PathBuf> {
    let root = match std::env::var_os(VARIABLE) {
        Some(dir) => PathBuf::from(dir),
        // Every crate that includes this file is `crates/NAME`, two levels below the root.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let path = root.join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipped: {} is absent (set {VARIABLE} to the folder holding it)",
            path.display()
        );
        None
    }
}
