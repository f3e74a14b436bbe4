//! Fixture cases (generator/tests/fixtures/<case>/) as the input of tests:
//! read in place, or copied into a scratch workspace (`specs/acme/` beside a
//! copy of the workspace's templates) that a test can edit first.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The real workspace root (for its templates).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("generator crate sits in the workspace")
        .to_path_buf()
}

/// The fixture case directory `case`.
pub fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

/// Every fixture case that generates (its snapshot has a `tools.rs`), sorted.
pub fn generating_cases() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases: Vec<String> = fs::read_dir(&dir)
        .expect("tests/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("expected/tools.rs").is_file())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "generating fixture cases went missing");
    cases
}

/// What the generator makes of fixture case `case`.
pub fn generate(case: &str) -> (generator::Catalog, generator::FileSet) {
    generator::generate_integration(&fixture(case), &workspace().join("templates"))
        .unwrap_or_else(|e| panic!("{case} generates: {e}"))
}

/// A temp workspace holding one fixture case as `specs/acme/` and a copy of
/// the templates.
pub struct Scratch {
    /// Kept alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// Copies fixture case `case` (without its snapshot) and the templates.
    pub fn of(case: &str) -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&fixture(case), &dir.path().join("specs/acme"));
        copy_dir(
            &workspace().join("templates"),
            &dir.path().join("templates"),
        );
        Scratch { dir }
    }

    /// The scratch workspace root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a spec file, relative to `specs/acme/`.
    pub fn spec(&self, rel: &str) -> PathBuf {
        self.root().join("specs/acme").join(rel)
    }

    /// Replaces `from` with `to` in a spec file; panics when `from` is absent
    /// so a test never passes by editing nothing.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.spec(rel);
        let text = fs::read_to_string(&path).expect("read spec");
        assert!(text.contains(from), "{rel} has no {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).expect("write spec");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        if name == "expected" {
            continue;
        }
        let target = to.join(name);
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).expect("copy");
        }
    }
}
