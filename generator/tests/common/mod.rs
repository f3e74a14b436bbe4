//! A scratch copy of the workspace's specs and templates that a test can
//! edit before generating from it.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The real workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("generator crate sits in the workspace")
        .to_path_buf()
}

/// A temp dir holding copies of `specs/` and `templates/`.
pub struct Scratch {
    /// Kept alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// Copies the real specs and templates.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["specs", "templates"] {
            copy_dir(&workspace().join(sub), &dir.path().join(sub));
        }
        Scratch { dir }
    }

    /// The scratch workspace root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a spec file, relative to `specs/malomo/`.
    pub fn spec(&self, rel: &str) -> PathBuf {
        self.root().join("specs/malomo").join(rel)
    }

    /// Replaces `from` with `to` in a spec file; panics when `from` is absent
    /// so a test never passes by editing nothing.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.spec(rel);
        let text = fs::read_to_string(&path).expect("read spec");
        assert!(text.contains(from), "{rel} has no {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).expect("write spec");
    }

    /// Writes a spec file.
    pub fn write(&self, rel: &str, text: &str) {
        fs::write(self.spec(rel), text).expect("write spec");
    }

    /// Generation's error message, panicking when generation succeeds.
    pub fn error(&self) -> String {
        match generator::generate(self.root()) {
            Ok(_) => panic!("expected a spec error"),
            Err(e) => e.to_string(),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).expect("copy");
        }
    }
}

/// 1-based line of the first line of `file` containing `needle`.
pub fn line_of(file: &Path, needle: &str) -> usize {
    let text = fs::read_to_string(file).expect("read");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle present")
}
