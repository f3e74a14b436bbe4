//! `generated/` must be what the generator makes from `specs/` and
//! `templates/` today. `build.rs` regenerates the whole set into
//! `OUT_DIR/generated` on every spec or template change; this test compares
//! it with the checked-in copy, prints a diff when they differ, and (like
//! rust-analyzer's sourcegen tests) rewrites `generated/` so that the next
//! run passes. CI runs on a fresh clone, so a stale copy still fails there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = fs::read_to_string(&path) {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                out.insert(rel.to_string_lossy().replace('\\', "/"), text);
            }
        }
    }
    out
}

/// The differing region of two texts (common head and tail trimmed), with
/// three lines of context; long regions are cut at 40 lines a side.
fn difference(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let from = head.saturating_sub(3);
    let mut out = format!(
        "--- generated/{name} (checked in)\n+++ generated/{name} (fresh)\n@@ -{} +{} @@\n",
        from + 1,
        from + 1
    );
    for line in &a[from..head] {
        out.push_str(&format!(" {line}\n"));
    }
    for line in a[head..a.len() - tail].iter().take(40) {
        out.push_str(&format!("-{line}\n"));
    }
    for line in b[head..b.len() - tail].iter().take(40) {
        out.push_str(&format!("+{line}\n"));
    }
    for line in a[a.len() - tail..].iter().take(3) {
        out.push_str(&format!(" {line}\n"));
    }
    out
}

#[test]
fn generated_is_fresh() {
    let fresh_dir = PathBuf::from(env!("OUT_DIR")).join("generated");
    let checked_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("generated");
    let fresh = files_under(&fresh_dir);
    let checked = files_under(&checked_dir);
    assert!(
        !fresh.is_empty(),
        "build.rs wrote nothing to {}",
        fresh_dir.display()
    );

    let mut report = String::new();
    for (name, text) in &fresh {
        match checked.get(name) {
            Some(old) if old == text => {}
            Some(old) => report.push_str(&difference(name, old, text)),
            None => report.push_str(&format!(
                "generated/{name}: missing from the checked-in copy\n"
            )),
        }
    }
    for name in checked.keys().filter(|n| !fresh.contains_key(*n)) {
        report.push_str(&format!(
            "generated/{name}: checked in but no longer generated\n"
        ));
    }
    if report.is_empty() {
        return;
    }

    // Refresh the checked-in copy so that the next run passes.
    for name in checked.keys().filter(|n| !fresh.contains_key(*n)) {
        let _ = fs::remove_file(checked_dir.join(name));
    }
    for (name, text) in &fresh {
        let path = checked_dir.join(name);
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let _ = fs::write(&path, text);
    }
    panic!(
        "generated/ was stale and has been rewritten (commit it; `cargo run -p generator -- generate` does the same):\n{report}"
    );
}
