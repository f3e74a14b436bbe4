//! The minijinja templates under `templates/`: tool names, titles,
//! descriptions, control-field text and the TOOLS.md table.

use std::fs;
use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::Error;

/// Template that names a tool.
pub const TOOL_NAME: &str = "tool_name.j2";
/// Template of a tool's title when its documentation record gives none.
pub const TITLE: &str = "title.j2";
/// Template of a tool's description.
pub const DESCRIPTION: &str = "description.j2";
/// Template of the descriptions of runtime-consumed inputs.
pub const CONTROL_FIELD: &str = "control_field.j2";
/// Template of `generated/TOOLS.md`.
pub const TOOLS_MD: &str = "tools_md.j2";
/// Template of the server `instructions`.
pub const INSTRUCTIONS: &str = "instructions.j2";

const REQUIRED: [&str; 6] = [
    TOOL_NAME,
    TITLE,
    DESCRIPTION,
    CONTROL_FIELD,
    TOOLS_MD,
    INSTRUCTIONS,
];

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads every `*.j2` file of `dir`; fails when one of the templates the
    /// generator needs is missing or does not parse.
    pub fn load(dir: &Path) -> Result<Templates, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| Error::Template {
                template: String::new(),
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "j2") {
                names.push(path);
            }
        }
        names.sort();
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            env.add_template_owned(name.clone(), text)
                .map_err(|e| Error::Template {
                    template: name.clone(),
                    message: e.to_string(),
                })?;
        }
        for name in REQUIRED {
            if env.get_template(name).is_err() {
                return Err(Error::io(
                    dir.join(name),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "required template is missing",
                    ),
                ));
            }
        }
        Ok(Templates { env })
    }

    /// Renders template `name` with `context`.
    pub fn render<C: Serialize>(&self, name: &str, context: &C) -> Result<String, Error> {
        let template_error = |e: minijinja::Error| Error::Template {
            template: name.to_string(),
            message: format!("{e:#}"),
        };
        let template = self.env.get_template(name).map_err(template_error)?;
        template.render(Serde(context)).map_err(template_error)
    }

    /// Renders `source`, a template written in a spec file, with `context`
    /// under the same syntax and strictness; the error is minijinja's one
    /// line (a spec error is one line of a list of them).
    pub fn render_str<C: Serialize>(&self, source: &str, context: &C) -> Result<String, String> {
        self.env
            .render_str(source, Serde(context))
            .map_err(|e| e.to_string())
    }
}
