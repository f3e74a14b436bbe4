//! The malomo-mcp generator: compiles the YAML specs under `specs/` and the
//! templates under `templates/` into the runtime's tool table (Rust, emitted
//! with quote + prettyplease), one JSON Schema file per tool, an OpenAPI 3
//! document of the upstream API, and `TOOLS.md`.
//!
//! Front ends are thin: `build.rs` calls [`build_script`], the CLI calls
//! [`generate`], [`write`] and [`check`].

#![warn(missing_docs)]

pub mod diff;
pub mod error;
pub mod load;
pub mod model;
pub mod openapi;
pub mod output;
pub mod render;
pub mod rust;
pub mod schema;
pub mod spec;

use std::path::Path;

pub use error::{Error, SpecError};
pub use model::Catalog;
pub use output::FileSet;

/// Directories whose contents decide the output.
pub const INPUT_DIRS: [&str; 2] = ["specs", "templates"];

/// Loads and validates the specs and templates under `root` (the workspace
/// root) into the tool catalog.
pub fn catalog(root: &Path) -> Result<(Catalog, render::Templates), Error> {
    let templates = render::Templates::load(&root.join("templates"))?;
    let specs = load::load_specs(root)?;
    let catalog = model::build(&specs, &templates)?;
    Ok((catalog, templates))
}

/// Generates every output file from the specs under `root`.
pub fn generate(root: &Path) -> Result<(Catalog, FileSet), Error> {
    let (catalog, templates) = catalog(root)?;
    let files = output::files(&catalog, &templates)?;
    Ok((catalog, files))
}

/// Generates every output file from one integration directory and a
/// templates directory; errors name files relative to `integration_dir`.
/// (The fixture tests use this: each case is an integration directory.)
pub fn generate_integration(
    integration_dir: &Path,
    templates_dir: &Path,
) -> Result<(Catalog, FileSet), Error> {
    let templates = render::Templates::load(templates_dir)?;
    let specs = load::load_integration(integration_dir, integration_dir)?;
    let catalog = model::build(&specs, &templates)?;
    let files = output::files(&catalog, &templates)?;
    Ok((catalog, files))
}

/// Generates and writes everything into `out`.
pub fn write(root: &Path, out: &Path) -> Result<Catalog, Error> {
    let (catalog, files) = generate(root)?;
    output::write(out, &files)?;
    Ok(catalog)
}

/// Compares a fresh generation with `dir`; returns the diff (empty when up
/// to date).
pub fn check(root: &Path, dir: &Path) -> Result<String, Error> {
    let (_, files) = generate(root)?;
    output::compare(dir, &files)
}

/// What `build.rs` does: prints `cargo:rerun-if-changed` for every input
/// file and directory, writes `OUT_DIR/tools.rs` (included by the runtime)
/// and the whole output set under `OUT_DIR/generated/` (compared with the
/// checked-in copy by the freshness test).
pub fn build_script(manifest_dir: &Path, out_dir: &Path) -> Result<(), Error> {
    for path in load::watched_paths(manifest_dir, &INPUT_DIRS)? {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let (catalog, files) = generate(manifest_dir)?;
    let tools = out_dir.join("tools.rs");
    std::fs::write(&tools, output::tools_rs(&catalog)?).map_err(|e| Error::io(&tools, e))?;
    output::write(&out_dir.join("generated"), &files)?;
    for skipped in &catalog.skipped {
        println!(
            "cargo:warning=skipped {}.{}: {}",
            skipped.resource, skipped.method, skipped.reason
        );
    }
    Ok(())
}
