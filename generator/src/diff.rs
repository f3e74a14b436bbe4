//! A small line diff for stale-output reports (unified style, 3 lines of
//! context), good enough for generated files of a few thousand lines.

/// A unified-style diff of `old` (expected on disk) against `new`
/// (freshly generated), labelled with `name`. Empty when equal.
pub fn unified(name: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Trim the common prefix and suffix so the quadratic part stays small.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let am = &a[prefix..a.len() - suffix];
    let bm = &b[prefix..b.len() - suffix];
    let ops = lcs_ops(am, bm);
    let mut out = format!("--- {name} (checked in)\n+++ {name} (generated)\n");
    let context = 3;
    let start = prefix.saturating_sub(context);
    out.push_str(&format!("@@ -{} +{} @@\n", start + 1, start + 1));
    for line in &a[start..prefix] {
        out.push_str(&format!(" {line}\n"));
    }
    for op in ops {
        match op {
            Op::Same(l) => out.push_str(&format!(" {l}\n")),
            Op::Del(l) => out.push_str(&format!("-{l}\n")),
            Op::Add(l) => out.push_str(&format!("+{l}\n")),
        }
    }
    for line in a[a.len() - suffix..].iter().take(context) {
        out.push_str(&format!(" {line}\n"));
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        out.push_str("\\ newline at end of file differs\n");
    }
    out
}

enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    // Past this size, show everything as replaced rather than spend memory.
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        let mut ops: Vec<Op<'a>> = a.iter().map(|l| Op::Del(l)).collect();
        ops.extend(b.iter().map(|l| Op::Add(l)));
        return ops;
    }
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * (m + 1) + j] = if a[i] == b[j] {
                table[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                table[(i + 1) * (m + 1) + j].max(table[i * (m + 1) + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            i += 1;
            j += 1;
        } else if table[(i + 1) * (m + 1) + j] >= table[i * (m + 1) + j + 1] {
            ops.push(Op::Del(a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| Op::Del(l)));
    ops.extend(b[j..].iter().map(|l| Op::Add(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a", "x\ny\n", "x\ny\n"), "");
    }

    #[test]
    fn a_changed_line_shows_with_context() {
        let d = unified("f", "1\n2\n3\n4\n5\n", "1\n2\nthree\n4\n5\n");
        assert_eq!(
            d,
            "--- f (checked in)\n+++ f (generated)\n@@ -1 +1 @@\n 1\n 2\n-3\n+three\n 4\n 5\n"
        );
    }

    #[test]
    fn inserted_lines_are_added_only() {
        let d = unified("f", "a\nc\n", "a\nb\nc\n");
        assert!(
            d.contains("+b\n") && !d.contains("-a") && !d.contains("-c"),
            "{d}"
        );
    }
}
