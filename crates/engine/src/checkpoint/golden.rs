//! Checkpoints written by earlier builds, kept as fixtures in `tests/checkpoints/format-N/`
//! (`NAME.json` the execution row's text, `NAME.lanes` its lane rows, one `PATH BODY` a
//! line). Each is read, converted to the interpreter's types and stored again: today's
//! format must come back byte for byte, an older one as the same text in today's format. A
//! change to the interpreter's types that would change what is stored fails here.
//!
//! The format 3 fixtures were written by the build of format 3 running
//! `tests/python/upgrade_fixture.py prepare` plus a Map of 300 iterations waiting (its lanes
//! in rows); the format 0 ones are the checkpoints of `tests/upgrade/2026-12-bf744b0.db`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::*;

fn fixtures(format: u32) -> Vec<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/checkpoints/format-{format}"));
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    paths
}

/// The lane rows kept beside a fixture, by path.
fn lane_rows_of(fixture: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(fixture.with_extension("lanes")) else {
        return BTreeMap::new();
    };
    let rows = text.lines().map(|line| {
        let (path, body) = line.split_once(' ').expect("`PATH BODY`");
        (path.to_owned(), body.to_owned())
    });
    rows.collect()
}

/// Reads a fixture as `Checkpoint::load` does and stores it again: (text, lane rows).
fn round_trip(fixture: &Path) -> (String, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(fixture).expect("the fixture reads");
    let mut stored = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    let mut rows: HashMap<String, String> = lane_rows_of(fixture).into_iter().collect();
    if let Some(current) = stored.runtime.current.as_mut() {
        attach(current, &mut Vec::new(), &mut rows).expect("its lanes are all there");
    }
    assert!(rows.is_empty(), "{}: rows left unread", fixture.display());
    let checkpoint = Checkpoint::try_from(stored).expect("converts to the interpreter's types");
    let (text, rows) = checkpoint.store(Lanes::All);
    (text, rows.into_iter().map(|r| (r.path, r.body)).collect())
}

#[test]
fn todays_checkpoints_are_stored_again_byte_for_byte() {
    let mut detached = 0;
    for fixture in fixtures(FORMAT) {
        let (text, rows) = round_trip(&fixture);
        let name = fixture.display();
        let expected = std::fs::read_to_string(&fixture).expect("the fixture reads");
        assert_eq!(text, expected, "{name}");
        assert_eq!(rows, lane_rows_of(&fixture), "{name}: lane rows");
        detached += usize::from(!rows.is_empty());
    }
    assert!(detached > 0, "a fixture keeps its lanes in rows");
}

#[test]
fn format_0_checkpoints_come_back_as_the_same_text_in_todays_format() {
    for fixture in fixtures(0) {
        let (text, _) = round_trip(&fixture);
        let old = std::fs::read_to_string(&fixture).expect("the fixture reads");
        assert!(!old.contains("\"format\""), "{}", fixture.display());
        let expected = old.replacen('{', &format!("{{\"format\":{FORMAT},"), 1);
        assert_eq!(text, expected, "{}", fixture.display());
    }
}
