//! MCP prompts: named workflows over the generated tools.

use serde::Serialize;

use std::collections::BTreeSet;

use super::{MAX_TOOL_NAME, Skipped};
use crate::error::{Error, SpecErrors};
use crate::load::{Loaded, SpecSet};
use crate::spec::{PromptSpec, PromptsSpec};

/// One prompt, validated against the tool list.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    /// Name clients call `prompts/get` with.
    pub name: String,
    /// Short human title.
    pub title: String,
    /// What the workflow does.
    pub description: String,
    /// Arguments, in spec order.
    pub arguments: Vec<PromptArgument>,
    /// Tools the workflow needs.
    pub tools: Vec<String>,
    /// Message text with `{{ argument }}` placeholders.
    pub text: String,
    /// `text` split at its placeholders (what the runtime joins).
    pub parts: Vec<PromptPart>,
}

/// One prompt argument: the contract's type over owned text.
pub type PromptArgument = malomo_contract::PromptArgumentDef<String>;

/// One piece of a prompt's message: the contract's type over owned text.
pub type PromptPart = malomo_contract::PromptPart<String>;

/// The `{{ name }}` placeholders of a prompt text, in order; `Err` carries
/// the text of a placeholder that is not a plain name.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    Ok(prompt_parts(text)?
        .into_iter()
        .filter_map(|part| match part {
            PromptPart::Argument(name) => Some(name),
            PromptPart::Literal(_) => None,
        })
        .collect())
}

/// A prompt text split into literal text and `{{ name }}` placeholders;
/// `Err` carries the text of a placeholder that is not a plain name.
pub fn prompt_parts(text: &str) -> Result<Vec<PromptPart>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(after.chars().take(30).collect());
        };
        let name = after[..close].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(name.to_owned());
        }
        if open > 0 {
            out.push(PromptPart::Literal(rest[..open].to_owned()));
        }
        out.push(PromptPart::Argument(name.to_owned()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(PromptPart::Literal(rest.to_owned()));
    }
    Ok(out)
}

/// Builds and checks the prompts of `specs` against `tools`, the names of
/// every documented method's tool (built or not: a method that failed has
/// its own error, and its prompts are not blamed for it). A prompt that uses
/// a method without a documentation record (named in `undocumented`) is
/// skipped and reported in `skipped`, as its tools are; a tool name that no
/// method has is an error. Every prompt is checked: errors go to `errors`.
pub fn build_prompts(
    specs: &SpecSet,
    tools: &BTreeSet<&str>,
    undocumented: &BTreeSet<String>,
    skipped: &mut Vec<Skipped>,
    errors: &mut SpecErrors,
) -> Result<Vec<Prompt>, Error> {
    let Some(loaded) = &specs.prompts else {
        return Ok(Vec::new());
    };
    let mut prompts = Vec::new();
    for (name, spec) in &loaded.spec.prompts {
        if let Some(missing) = spec.tools.iter().find(|t| undocumented.contains(*t)) {
            skipped.push(Skipped {
                resource: "prompts".to_owned(),
                method: name.clone(),
                reason: format!("uses `{missing}`, which has no documentation record"),
            });
            continue;
        }
        if let Some(prompt) = errors.keep(build_prompt(loaded, name, spec, tools))? {
            prompts.push(prompt);
        }
    }
    prompts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(prompts)
}

/// One prompt, checked.
fn build_prompt(
    loaded: &Loaded<PromptsSpec>,
    name: &str,
    spec: &PromptSpec,
    tools: &BTreeSet<&str>,
) -> Result<Prompt, Error> {
    let at = |field: &[&str], message: String| {
        let mut path = vec!["prompts", name];
        path.extend_from_slice(field);
        Error::from(loaded.source.error_at(&path, message))
    };
    if name.is_empty()
        || name.len() > MAX_TOOL_NAME
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(at(
            &[],
            format!(
                "prompt name `{name}`: expected 1 to {MAX_TOOL_NAME} characters matching ^[A-Za-z0-9_]+$"
            ),
        ));
    }
    for (index, tool) in spec.tools.iter().enumerate() {
        if !tools.contains(tool.as_str()) {
            let index = index.to_string();
            return Err(at(
                &["tools", &index],
                format!(
                    "`{tool}` is not a documented tool; expected one of the names in generated/TOOLS.md"
                ),
            ));
        }
    }
    // A prompt is offered only where all its `tools` are shown, so its
    // words may name no other tool.
    for (field, text) in [("description", &spec.description), ("text", &spec.text)] {
        if let Some(named) = tools
            .iter()
            .find(|t| super::mentions(text, t) && !spec.tools.iter().any(|s| s == *t))
        {
            return Err(at(
                &[field],
                format!(
                    "names `{named}`, which is not in this prompt's `tools`; expected every tool the prompt names listed under `tools` (a server offers the prompt only when it shows them all)"
                ),
            ));
        }
    }
    match placeholders(&spec.text) {
        Ok(names) => {
            if let Some(unknown) = names.iter().find(|n| !spec.arguments.contains_key(*n)) {
                let known: Vec<&str> = spec.arguments.keys().map(String::as_str).collect();
                return Err(at(
                    &["text"],
                    format!(
                        "placeholder `{{{{ {unknown} }}}}` names no argument; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Err(bad) => {
            return Err(at(
                &["text"],
                format!(
                    "placeholder `{{{{ {bad}` is not a plain argument name; expected `{{{{ name }}}}`"
                ),
            ));
        }
    }
    Ok(Prompt {
        name: name.to_owned(),
        title: spec.title.clone(),
        description: spec.description.trim().to_owned(),
        arguments: spec
            .arguments
            .iter()
            .map(|(n, a)| PromptArgument {
                name: n.clone(),
                description: a.description.trim().to_owned(),
                required: a.required,
            })
            .collect(),
        tools: spec.tools.clone(),
        text: spec.text.trim_end().to_owned(),
        parts: prompt_parts(spec.text.trim_end()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_plain_names() {
        assert_eq!(
            placeholders("a {{ x }} b {{y}}"),
            Ok(vec!["x".to_owned(), "y".to_owned()])
        );
        assert!(placeholders("{{ x | upper }}").is_err());
        assert!(placeholders("{{ x").is_err());
    }
}
