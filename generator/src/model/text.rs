//! Text a model reads (tool descriptions, server instructions) as
//! paragraphs, each tagged with the tools it names, so that a server can drop
//! the paragraphs that name a tool its filter hides and never send a model a
//! name it cannot use.

use serde::Serialize;

use crate::error::Error;
use crate::load::SpecSet;
use crate::render::{self, Templates};

/// One paragraph and the tools it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paragraph {
    /// The text, without surrounding blank lines.
    pub text: String,
    /// Every tool named in `text` (as a whole word), sorted, except the tool
    /// the text describes: a server shows the paragraph only when it shows
    /// all of them.
    pub mentions: Vec<String>,
}

/// Splits `text` at blank lines and tags each paragraph with the names of
/// `tools` it mentions, leaving out `own` (a description may name its own
/// tool).
pub fn paragraphs<'a>(
    text: &str,
    tools: impl Iterator<Item = &'a str> + Clone,
    own: Option<&str>,
) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut flush = |lines: &mut Vec<&str>| {
        if !lines.is_empty() {
            let text = lines.join("\n");
            let mut mentions: Vec<String> = tools
                .clone()
                .filter(|t| Some(*t) != own && mentions(&text, t))
                .map(str::to_owned)
                .collect();
            mentions.sort();
            mentions.dedup();
            out.push(Paragraph { text, mentions });
            lines.clear();
        }
    };
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            flush(&mut current);
        } else {
            current.push(line.trim_end());
        }
    }
    flush(&mut current);
    out
}

/// Whether `text` contains `name` as a whole word (tool names are
/// `[A-Za-z0-9_]+`, so `list_all_x` does not mention `list_all_x_events`).
pub fn mentions(text: &str, name: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    text.match_indices(name).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + name.len()).copied();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[derive(Serialize)]
struct InstructionsContext<'a> {
    title: &'a str,
    /// The integration's own text from `integration.yaml`, rendered.
    text: String,
}

/// The server `instructions`: `integration.yaml`'s `instructions` rendered
/// as a template (with `title` and `tools.<resource>.<method>`, the tool
/// names, so a renamed or undocumented tool is an error, not a stale name),
/// inside `templates/instructions.j2`.
pub fn instructions(
    specs: &SpecSet,
    templates: &Templates,
    names: &std::collections::BTreeMap<(String, String), String>,
) -> Result<String, Error> {
    let integration = &specs.integration.spec;
    let mut by_resource: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, &str>> =
        Default::default();
    for ((resource, method), name) in names {
        by_resource
            .entry(resource)
            .or_default()
            .insert(method, name);
    }
    let text = match &integration.instructions {
        Some(source) => templates
            .render_str(
                source,
                &serde_json::json!({"title": integration.title, "tools": by_resource}),
            )
            .map_err(|message| {
                specs.integration.source.error_at(
                    &["instructions"],
                    format!("{message}; expected `{{{{ title }}}}` or `{{{{ tools.<resource>.<method> }}}}` naming a documented method"),
                )
            })?
            .trim()
            .to_owned(),
        None => String::new(),
    };
    let text = templates.render(
        render::INSTRUCTIONS,
        &InstructionsContext {
            title: &integration.title,
            text,
        },
    )?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_as_whole_words() {
        assert!(mentions("use `list_all_x` now", "list_all_x"));
        assert!(!mentions("use list_all_x_events", "list_all_x"));
        assert!(!mentions("my_list_all_x", "list_all_x"));
        assert!(mentions("list_all_x", "list_all_x"));
    }

    #[test]
    fn each_paragraph_carries_the_tools_it_names() {
        let tools = ["get_x", "add_x", "update_x"];
        let got = paragraphs(
            "Updates x.\nKeeps y.\n\nPrefer `add_x`.\n\n\nRead with get_x, then update_x.\n",
            tools.iter().copied(),
            Some("update_x"),
        );
        assert_eq!(
            got,
            [
                Paragraph {
                    text: "Updates x.\nKeeps y.".into(),
                    mentions: vec![]
                },
                Paragraph {
                    text: "Prefer `add_x`.".into(),
                    mentions: vec!["add_x".into()]
                },
                Paragraph {
                    text: "Read with get_x, then update_x.".into(),
                    mentions: vec!["get_x".into()]
                },
            ]
        );
    }
}
