//! Reading the spec tree from disk and parsing each file with errors that
//! name the file, line, column and field path.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Error, SourceFile, SpecError, SpecErrors};
use crate::spec::{DocsSpec, IntegrationSpec, MethodDocSpec, PromptsSpec, ResourceSpec};

/// One parsed spec file with its source text.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// Resource name (file stem), or the integration directory name.
    pub name: String,
    /// The file's text, for pointing errors at lines.
    pub source: SourceFile,
    /// The parsed record.
    pub spec: T,
}

/// Every spec file of one integration, sorted by resource name.
#[derive(Debug, Clone)]
pub struct SpecSet {
    /// `integration.yaml`.
    pub integration: Loaded<IntegrationSpec>,
    /// `resources/*.yaml`.
    pub resources: Vec<Loaded<ResourceSpec>>,
    /// `docs/*.yaml`.
    pub docs: Vec<Loaded<DocsSpec>>,
    /// `prompts.yaml`, when present.
    pub prompts: Option<Loaded<PromptsSpec>>,
}

impl SpecSet {
    /// The documentation file of `resource`, if it has one.
    pub fn docs_for(&self, resource: &str) -> Option<&Loaded<DocsSpec>> {
        self.docs.iter().find(|d| d.name == resource)
    }

    /// The documentation record of one method; `None` means no tool.
    pub fn method_doc(&self, resource: &str, method: &str) -> Option<&MethodDocSpec> {
        self.docs_for(resource)
            .and_then(|d| d.spec.methods.get(method))
    }
}

/// Loads the single integration under `<root>/specs/`. File names in errors
/// are shown relative to `root`.
pub fn load_specs(root: &Path) -> Result<SpecSet, Error> {
    let specs = root.join("specs");
    let mut dirs = Vec::new();
    for entry in fs::read_dir(&specs).map_err(|e| Error::io(&specs, e))? {
        let entry = entry.map_err(|e| Error::io(&specs, e))?;
        if entry.path().join("integration.yaml").is_file() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let dir = match dirs.as_slice() {
        [one] => one.clone(),
        _ => {
            return Err(SpecError {
                file: display(root, &specs),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!(
                    "expected exactly one integration directory with an integration.yaml, found {}",
                    dirs.len()
                ),
            }
            .into());
        }
    };
    load_integration(root, &dir)
}

/// Loads one integration directory (`integration.yaml`, `resources/`,
/// `docs/`, optional `prompts.yaml`). File names in errors are shown
/// relative to `root`. Every file is parsed: the error names each file
/// that does not parse.
pub fn load_integration(root: &Path, dir: &Path) -> Result<SpecSet, Error> {
    let integration_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = SpecErrors::new();
    let integration = load_file(root, &dir.join("integration.yaml"), integration_name);
    let resources = load_dir(root, &dir.join("resources"), &mut errors)?;
    let docs = load_dir(root, &dir.join("docs"), &mut errors)?;
    let prompts_path = dir.join("prompts.yaml");
    let prompts = if prompts_path.is_file() {
        errors.keep(load_file(root, &prompts_path, "prompts".to_owned()))?
    } else {
        None
    };
    let integration = match integration {
        Ok(integration) => integration,
        Err(error) => {
            errors.keep::<(), _>(Err(error))?;
            return Err(errors.into_error());
        }
    };
    errors.finish()?;
    Ok(SpecSet {
        integration,
        resources,
        docs,
        prompts,
    })
}

/// Every path `load_specs` reads, plus the directories (for
/// `cargo:rerun-if-changed`).
pub fn watched_paths(root: &Path, dirs: &[&str]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    out.push(dir.to_path_buf());
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The files of `dir` that parse; the spec errors of the others go to
/// `errors`.
fn load_dir<T: DeserializeOwned>(
    root: &Path,
    dir: &Path,
    errors: &mut SpecErrors,
) -> Result<Vec<Loaded<T>>, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    let mut loaded = Vec::new();
    for path in &files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        loaded.extend(errors.keep(load_file(root, path, stem))?);
    }
    Ok(loaded)
}

fn load_file<T: DeserializeOwned>(
    root: &Path,
    path: &Path,
    name: String,
) -> Result<Loaded<T>, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let source = SourceFile {
        name: display(root, path),
        text,
    };
    let spec = parse(&source)?;
    Ok(Loaded { name, source, spec })
}

/// Parses one YAML record, turning the parser's complaint into a
/// [`SpecError`] with the file, line, column and field path.
pub fn parse<T: DeserializeOwned>(source: &SourceFile) -> Result<T, SpecError> {
    // serde-saphyr hands its deserializer to a closure and locates the
    // error on the way out; serde_path_to_error records the field path on
    // the way in, so the path is carried out beside the error.
    let mut field = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str(&source.text, |de| {
        serde_path_to_error::deserialize(de).map_err(|err| {
            field = err.path().to_string();
            err.into_inner()
        })
    });
    parsed.map_err(|err| {
        let (line, column) = err
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        SpecError {
            file: source.name.clone(),
            line,
            column,
            field: if field == "." { String::new() } else { field },
            message: yaml_message(&err),
        }
    })
}

/// The parser's message alone: the location and the field are reported
/// apart, and a snippet of the source would repeat the line.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = match err.location() {
        Some(l) => {
            let suffix = format!(" at line {}, column {}", l.line(), l.column());
            first.strip_suffix(&suffix).unwrap_or(first)
        }
        None => first,
    };
    match message {
        // A tagged enum (a strategy) written with two keys.
        "expected end of mapping after enum variant value" => {
            "a second key beside the one that chose the variant; expected exactly one key here"
                .to_string()
        }
        other => other.to_string(),
    }
}

fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}
