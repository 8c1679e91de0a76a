//! This build reads what older builds stored and finishes their executions. Each fixture in
//! `tests/upgrade/` is a database an older build wrote (how: `tests/upgrade/README.md`); the
//! server starts on a copy of it and `tests/python/upgrade_fixture.py` works every open
//! execution to its end, redrives the failed one and checks outputs and histories.

use std::path::PathBuf;

use crate::common::{run_python_client_script_with, Options, Server};

/// The fixture databases, oldest first; each has its task tokens in `NAME.tokens.json`.
const FIXTURES: &[&str] = &["2026-12-bf744b0.db"];

#[test]
fn older_databases_are_read_and_their_executions_finish() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/upgrade");
    for fixture in FIXTURES {
        // The fixture's timers and backoffs are long past, so they fire at once; its tasks
        // have the longest timeout AWS allows, and the executions are kept open for as long.
        let mut server =
            Server::start_with_args(Options::default(), &["--max-execution-time", "36500d"]);
        server.kill9();
        for stale in ["stepwise.db", "stepwise.db-wal", "stepwise.db-shm"] {
            let _ = std::fs::remove_file(server.data_dir().join(stale));
        }
        std::fs::copy(dir.join(fixture), server.data_dir().join("stepwise.db"))
            .unwrap_or_else(|e| panic!("copying the fixture {fixture}: {e}"));
        server.restart();
        let tokens = dir.join(fixture).with_extension("tokens.json");
        run_python_client_script_with(
            &server,
            "upgrade_fixture.py",
            &["finish".as_ref(), tokens.as_os_str()],
        );
    }
}
