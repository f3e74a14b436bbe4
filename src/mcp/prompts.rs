//! MCP prompts from the generated table: a prompt is offered only where the
//! server's filter allows every tool it uses.

use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value};

use crate::access::ToolFilter;
use crate::catalog::{PROMPTS, PromptDef};

fn offered(filter: &ToolFilter, prompt: &PromptDef) -> bool {
    prompt.tools.iter().all(|t| filter.allows(t))
}

/// The prompts this filter offers, in table order.
pub fn list(filter: &ToolFilter) -> Vec<Prompt> {
    PROMPTS
        .iter()
        .filter(|p| offered(filter, p))
        .map(|p| {
            let arguments = p
                .arguments
                .iter()
                .map(|a| {
                    PromptArgument::new(a.name)
                        .with_description(a.description)
                        .with_required(a.required)
                })
                .collect();
            Prompt::new(p.name, Some(p.description), Some(arguments)).with_title(p.title)
        })
        .collect()
}

/// Renders a prompt; a missing required argument is an error naming it.
pub fn get(
    filter: &ToolFilter,
    name: &str,
    arguments: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, McpError> {
    let prompt = PROMPTS
        .iter()
        .find(|p| p.name == name && offered(filter, p))
        .ok_or_else(|| McpError::invalid_params(format!("Unknown prompt: {name}"), None))?;
    let value_of = |arg: &str| -> Option<String> {
        match arguments.and_then(|a| a.get(arg)) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        }
    };
    for arg in prompt.arguments {
        if arg.required && value_of(arg.name).is_none_or(|v| v.trim().is_empty()) {
            return Err(McpError::invalid_params(
                format!(
                    "prompt `{name}` needs the argument `{}`: {}",
                    arg.name, arg.description
                ),
                None,
            ));
        }
    }
    let text = prompt.render(|arg| value_of(arg).unwrap_or_default());
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(prompt.description),
    )
}
