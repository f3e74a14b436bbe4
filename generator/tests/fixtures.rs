//! Fixture snapshots: every directory under `tests/fixtures/` is a small
//! integration (`integration.yaml`, `resources/`, `docs/`, `prompts.yaml`)
//! generated with the workspace's templates, and its `expected/` directory
//! holds what the generator must produce from it: every output file, or
//! `error.txt` with the error a person would read.
//!
//! A stale snapshot fails with a diff. To accept a change, rerun with
//! `UPDATE_SNAPSHOTS=1` (or `EXPECTORATE=overwrite`) and review the diff of
//! `expected/` like any other code: it is what the change does.
//!
//! The `tools.rs` of every case that generates is also compiled, by the
//! workspace's `tests/generated_fixtures.rs` (one crate for all cases).

use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
}

fn overwrite() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0")
        || std::env::var("EXPECTORATE").is_ok_and(|v| v == "overwrite")
}

/// Every case directory, sorted.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("tests/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("integration.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

fn case_name(case: &Path) -> String {
    case.file_name()
        .expect("case name")
        .to_string_lossy()
        .into_owned()
}

/// Checks (or rewrites) one case; returns its diff, empty when it matches.
fn check_case(case: &Path) -> String {
    let expected = case.join("expected");
    let error_file = expected.join("error.txt");
    match generator::generate_integration(case, &templates()) {
        Ok((_, files)) => {
            if overwrite() {
                let _ = fs::remove_file(&error_file);
                generator::output::write(&expected, &files).expect("write snapshot");
                return String::new();
            }
            let mut diff = String::new();
            if error_file.exists() {
                diff.push_str("error.txt: checked in, but the case now generates\n");
            }
            diff.push_str(&generator::output::compare(&expected, &files).expect("compare"));
            diff
        }
        Err(e) => {
            let text = format!("{e}\n");
            if overwrite() {
                if expected.exists() {
                    fs::remove_dir_all(&expected).expect("clear snapshot");
                }
                fs::create_dir_all(&expected).expect("mkdir expected");
                fs::write(&error_file, &text).expect("write error.txt");
                return String::new();
            }
            match fs::read_to_string(&error_file) {
                Ok(old) if old == text => String::new(),
                Ok(old) => generator::diff::unified("error.txt", &old, &text),
                Err(_) => format!("error.txt: not checked in; the case fails with:\n{text}"),
            }
        }
    }
}

#[test]
fn every_fixture_matches_its_snapshot() {
    let cases = cases();
    assert!(cases.len() >= 10, "fixture cases went missing: {cases:?}");
    let mut failures = String::new();
    for case in &cases {
        let diff = check_case(case);
        if !diff.is_empty() {
            failures.push_str(&format!("== {}\n{diff}\n", case_name(case)));
        }
    }
    assert!(
        failures.is_empty(),
        "stale fixture snapshots (rerun with UPDATE_SNAPSHOTS=1 to accept, then review the diff):\n{failures}"
    );
}

/// The compile test must cover every case that generates: a case missing
/// from `tests/generated_fixtures.rs` would go unbuilt.
#[test]
fn every_generating_fixture_is_compiled() {
    if overwrite() {
        // The other test is rewriting expected/ at this moment.
        return;
    }
    let compile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/generated_fixtures.rs");
    let listed = fs::read_to_string(&compile).expect("tests/generated_fixtures.rs");
    for case in cases() {
        let name = case_name(&case);
        let generates = case.join("expected/tools.rs").is_file();
        let included = listed.contains(&format!("fixtures/{name}/expected/tools.rs"));
        assert_eq!(
            generates, included,
            "case `{name}`: generates tools.rs = {generates}, compiled by tests/generated_fixtures.rs = {included}"
        );
    }
}
