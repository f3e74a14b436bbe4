//! Errors a person reads: each names the file, line, column and field path,
//! and says what was expected.

use std::fmt;
use std::path::PathBuf;

/// Anything that stops a generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Spec files are malformed or inconsistent: every problem the run
    /// found, one per line.
    #[error("{0}")]
    Spec(SpecErrors),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A template failed to parse or render.
    #[error("templates/{template}: {message}")]
    Template {
        /// Template file name.
        template: String,
        /// What minijinja said.
        message: String,
    },
    /// Emitted Rust failed to parse (a generator bug).
    #[error("generated Rust does not parse: {0}")]
    Rust(String),
    /// JSON serialization failed (a generator bug).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<SpecError> for Error {
    fn from(error: SpecError) -> Error {
        Error::Spec(SpecErrors(vec![error]))
    }
}

impl From<SpecErrors> for Error {
    fn from(errors: SpecErrors) -> Error {
        Error::Spec(errors)
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// A problem at one place of one spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file, relative to the workspace root when possible.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted path of the field, e.g. `methods.get.path_params.id`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// Every spec problem of a run. Like serde_derive's `Ctxt`, the generator
/// gathers them before reporting any, so that a person fixes them all in one
/// go: each file is parsed, and each check of each method, docs record and
/// prompt is made, even after an error elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecErrors(Vec<SpecError>);

impl SpecErrors {
    /// No error yet.
    pub fn new() -> SpecErrors {
        SpecErrors::default()
    }

    /// Records one error.
    pub fn push(&mut self, error: SpecError) {
        self.0.push(error);
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, sorted by file, line and column once finished.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }

    /// The value of `result`, or `None` after recording its spec errors, so
    /// that the caller goes on to the next check; any other error (I/O, a
    /// template) ends the run.
    pub fn keep<T, E: Into<Error>>(&mut self, result: Result<T, E>) -> Result<Option<T>, Error> {
        match result.map_err(Into::into) {
            Ok(value) => Ok(Some(value)),
            Err(Error::Spec(errors)) => {
                self.0.extend(errors.0);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// `Ok` when nothing was recorded; otherwise every error, in file order.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// Every error recorded, in file order, as the run's error.
    pub fn into_error(mut self) -> Error {
        self.0.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.field, &a.message)
                .cmp(&(&b.file, b.line, b.column, &b.field, &b.message))
        });
        self.0.dedup();
        Error::Spec(self)
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} spec errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// A loaded spec file's text, used to point errors at lines.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Display name (relative path).
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl SourceFile {
    /// An error at the YAML key reached by `path` (block-style YAML), or at
    /// the deepest key of it that could be found.
    pub fn error_at(&self, path: &[&str], message: impl Into<String>) -> SpecError {
        let (line, column) = locate(&self.text, path);
        SpecError {
            file: self.name.clone(),
            line,
            column,
            field: path.join("."),
            message: message.into(),
        }
    }
}

/// Finds the line and column of the key reached by `path` in block-style
/// YAML, by following indentation. Falls back to the deepest key found, or
/// 1:1 when none is.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = (1, 1);
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if let Some(p) = parent_indent
                && indent <= p
            {
                break;
            }
            let bare = trimmed.trim_start_matches("- ");
            let indent = indent + (trimmed.len() - bare.len());
            if key_of(bare) == Some(key) {
                hit = Some((i, indent));
                break;
            }
        }
        // A numeric key is an index into a block sequence: the n-th `- `
        // item under the parent.
        if hit.is_none()
            && let Ok(index) = key.parse::<usize>()
        {
            hit = lines
                .iter()
                .enumerate()
                .skip(start)
                .take_while(|(_, line)| {
                    let t = line.trim_start();
                    t.is_empty()
                        || t.starts_with('#')
                        || parent_indent.is_none_or(|p| line.len() - t.len() > p)
                })
                .filter(|(_, line)| line.trim_start().starts_with("- "))
                .nth(index)
                .map(|(i, line)| (i, line.len() - line.trim_start().len() + 2));
        }
        match hit {
            Some((i, indent)) => {
                found = (i + 1, indent + 1);
                start = i + 1;
                parent_indent = Some(indent);
            }
            None => break,
        }
    }
    found
}

fn key_of(line: &str) -> Option<&str> {
    let colon = line.find(':')?;
    let key = line[..colon].trim();
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::locate;

    const YAML: &str = "\
# comment
methods:
  list:
    http: GET
  get:
    http: GET
    path_params:
      id: {type: string}
";

    #[test]
    fn locate_follows_indentation_to_the_key() {
        assert_eq!(locate(YAML, &["methods", "get", "http"]), (6, 5));
        assert_eq!(
            locate(YAML, &["methods", "get", "path_params", "id"]),
            (8, 7)
        );
    }

    #[test]
    fn locate_falls_back_to_the_deepest_key_found() {
        assert_eq!(locate(YAML, &["methods", "get", "nope"]), (5, 3));
        assert_eq!(locate(YAML, &["elsewhere"]), (1, 1));
    }

    #[test]
    fn locate_does_not_leave_the_parent_block() {
        // `http` under `list` must not match when asking for list.path.
        assert_eq!(locate(YAML, &["methods", "list", "path_params"]), (3, 3));
    }
}
