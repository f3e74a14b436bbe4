//! Argument validation against each tool's input JSON Schema, before any
//! upstream call, with messages that name the field.

use std::sync::OnceLock;

use serde_json::Value;

use crate::catalog::{self, ToolDef};

/// A tool's compiled input schema (compiled on first use, then shared).
pub struct ArgumentValidator {
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

impl Default for ArgumentValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl ArgumentValidator {
    pub fn new() -> Self {
        Self {
            compiled: OnceLock::new(),
        }
    }

    fn compiled(&self, tool: &ToolDef) -> &Result<jsonschema::Validator, String> {
        self.compiled.get_or_init(|| {
            // The schema parsed once for the whole process (the MCP tool
            // list holds the same map).
            let schema = Value::Object(catalog::schemas(tool)?.input.as_ref().clone());
            // `format` is only an annotation in 2020-12 unless asked for:
            // the specs declare it (email, uri) because the upstream needs
            // it, so it is asserted.
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| format!("input schema of `{}` is invalid: {e}", tool.name))
        })
    }

    /// Checks `args`; on failure returns one line per problem, each naming
    /// the argument and what was expected.
    pub fn check(&self, tool: &ToolDef, args: &Value) -> Result<(), Vec<String>> {
        let validator = match self.compiled(tool) {
            Ok(v) => v,
            Err(e) => return Err(vec![e.clone()]),
        };
        let mut problems: Vec<String> = validator.iter_errors(args).map(|e| describe(&e)).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort();
            problems.dedup();
            problems.truncate(10);
            Err(problems)
        }
    }
}

/// Names the argument an error is about and says what was expected.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let pointer = error.instance_path().as_str().to_owned();
    let field = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".");
    let message = match error.kind() {
        jsonschema::error::ValidationErrorKind::Format { format } => format!(
            "{} is not a valid {} (JSON Schema format `{format}`)",
            error.instance(),
            match format.as_str() {
                "email" => "email address",
                "uri" => "absolute URI, e.g. https://example.com/path",
                "date-time" => "RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z",
                "uuid" => "UUID",
                other => other,
            }
        ),
        _ => error.to_string(),
    };
    if field.is_empty() {
        // Errors about the whole object (a missing or unknown property)
        // already name the property in the message.
        format!("arguments: {message}")
    } else {
        format!("argument `{field}`: {message}")
    }
}
