//! The words a model reads about a tool: its description and title,
//! rendered from the documentation record through the templates.

use serde::Serialize;

use crate::error::Error;
use crate::render;
use crate::spec::MethodDocSpec;

use super::method::MethodContext;
use super::*;

#[derive(Serialize)]
struct DescriptionContext<'a> {
    integration: &'a str,
    title: &'a str,
    singular: &'a str,
    plural: &'a str,
    kind: &'a str,
    description: &'a str,
    warnings: &'a [String],
    paginated: bool,
    behavior: &'a Behavior,
    read_only: bool,
}

impl MethodContext<'_> {
    /// The description: the documented text plus what the templates add
    /// (the paging instruction, a strategy's warning).
    pub(super) fn description(
        &self,
        doc: &MethodDocSpec,
        paginated: bool,
        behavior: &Behavior,
        read_only: bool,
    ) -> Result<String, Error> {
        Ok(self
            .templates
            .render(
                render::DESCRIPTION,
                &DescriptionContext {
                    integration: &self.specs.integration.spec.name,
                    title: &self.specs.integration.spec.title,
                    singular: &self.resource.spec.singular,
                    plural: &self.resource.spec.plural,
                    kind: self.kind.as_str(),
                    description: doc.description.trim(),
                    warnings: &doc.warnings,
                    paginated,
                    behavior,
                    read_only,
                },
            )?
            .trim()
            .to_string())
    }

    /// The documented title, or one the title template makes.
    pub(super) fn title(&self, doc: &MethodDocSpec) -> Result<String, Error> {
        Ok(match &doc.title {
            Some(t) => t.trim().to_string(),
            None => self
                .templates
                .render(
                    render::TITLE,
                    &serde_json::json!({
                        "kind": self.kind.as_str(),
                        "method": self.method,
                        "singular": self.resource.spec.singular,
                        "plural": self.resource.spec.plural,
                    }),
                )?
                .trim()
                .to_string(),
        })
    }
}
