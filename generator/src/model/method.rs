//! One method turned into a tool: its flat inputs, schemas, annotations
//! and description.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{Error, SourceFile, SpecError};
use crate::load::{Loaded, SpecSet};
use crate::render::Templates;
use crate::schema::{Dialect, Direction, SchemaResolver};
use crate::spec::{
    HttpVerb, JsonType, MethodDocSpec, MethodKind, MethodSpec, ResourceSpec, SchemaSpec,
};

use super::inputs::input_schema;
use super::*;

pub(super) struct MethodContext<'a> {
    pub(super) specs: &'a SpecSet,
    pub(super) resource: &'a Loaded<ResourceSpec>,
    pub(super) method: &'a str,
    pub(super) spec: &'a MethodSpec,
    pub(super) kind: MethodKind,
    pub(super) resolver: &'a SchemaResolver<'a>,
    pub(super) templates: &'a Templates,
    pub(super) names: &'a BTreeMap<(String, String), String>,
}

pub(super) struct Built {
    pub(super) tool: Option<Tool>,
    pub(super) endpoint: Endpoint,
}

pub(super) struct InputField {
    pub(super) route: Route,
    pub(super) schema: Value,
}

impl MethodContext<'_> {
    pub(super) fn source(&self) -> &SourceFile {
        &self.resource.source
    }

    pub(super) fn err(&self, rest: &[&str], message: impl Into<String>) -> SpecError {
        let mut at = vec!["methods", self.method];
        at.extend_from_slice(rest);
        self.source().error_at(&at, message)
    }

    /// Builds the method's endpoint and, when it is documented, its tool.
    /// Each step is one concern: inputs (inputs.rs), strategy
    /// (strategy.rs), class and annotations, schemas, words (describe.rs).
    pub(super) fn build(&self, doc: Option<&MethodDocSpec>) -> Result<Built, Error> {
        self.check_path_params()?;
        let paginated = self.paginated()?;
        let mut inputs = self.spec_inputs()?;
        let behavior = self.behavior(&inputs)?;
        let projection = self.projection(paginated, &behavior)?;
        self.add_control_inputs(
            &mut inputs,
            paginated,
            &behavior,
            projection.as_ref().map(|(_, input)| input),
        )?;
        self.add_match_inputs(&mut inputs, projection.as_ref().map(|(p, _)| p))?;
        let output_schema = self.output_schema(paginated)?;
        let sends = self.sent_verbs();
        let class = self.class(&sends)?;
        let annotations = self.annotations(class);
        let tags = self.tags();

        let endpoint = self.endpoint(doc, &tags, paginated)?;
        let Some(doc) = doc else {
            return Ok(Built {
                tool: None,
                endpoint,
            });
        };
        self.document_inputs(&mut inputs, doc)?;
        let fields: Vec<Route> = inputs.iter().map(|i| i.route.clone()).collect();
        let tool = Tool {
            name: self.tool_name(),
            title: self.title(doc)?,
            description: self.description(doc, paginated, &behavior, annotations.read_only)?,
            resource: self.resource.name.clone(),
            method: self.method.to_string(),
            class,
            custom: self.kind == MethodKind::Custom,
            sends,
            tags,
            http: self.spec.http,
            path: self.spec.path.clone(),
            path_parts: path_parts(&self.spec.path, &fields),
            fields,
            input_schema: input_schema(&inputs, doc),
            output_schema,
            annotations,
            pagination: paginated.then(|| self.pagination()),
            behavior,
            projection: projection.map(|(projection, _)| projection),
        };
        Ok(Built {
            tool: Some(tool),
            endpoint,
        })
    }

    /// Whether the method pages: list methods do unless the spec turns it
    /// off; `pagination` elsewhere is an error.
    fn paginated(&self) -> Result<bool, Error> {
        let spec = self.spec;
        let paginated = match (&spec.pagination, self.kind) {
            (Some(p), MethodKind::List) => p.enabled,
            (None, MethodKind::List) => true,
            (Some(_), _) => {
                return Err(self
                    .err(&["pagination"], "`pagination` on a method that is not a list; expected it only on `kind: list`")
                    .into());
            }
            (None, _) => false,
        };
        Ok(paginated)
    }

    /// MCP annotations: read-only from the class, the others from the verb
    /// unless the spec overrides them.
    fn annotations(&self, class: Class) -> Annotations {
        let o = self.spec.annotations;
        // (destructive, idempotent) implied by the verb.
        let (destructive, idempotent) = match self.spec.http {
            HttpVerb::Get => (false, true),
            HttpVerb::Post | HttpVerb::Patch => (false, false),
            HttpVerb::Put | HttpVerb::Delete => (true, true),
        };
        Annotations {
            read_only: class == Class::Read,
            destructive: o.destructive.unwrap_or(destructive),
            idempotent: o.idempotent.unwrap_or(idempotent),
            open_world: o.open_world.unwrap_or(true),
        }
    }

    /// The resource's tags, then the method's own.
    fn tags(&self) -> Vec<String> {
        let mut tags = self.resource.spec.tags.clone();
        for t in &self.spec.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }

        tags
    }

    /// The tool's name, decided before any tool is built (strategies refer
    /// to other tools by it).
    fn tool_name(&self) -> String {
        self.names
            .get(&(self.resource.name.clone(), self.method.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Paging settings of a list tool.
    fn pagination(&self) -> Pagination {
        let integration = &self.specs.integration.spec;
        let p = self.spec.pagination.clone().unwrap_or_default();
        Pagination {
            limit_param: integration.pagination.limit_param.clone(),
            default_limit: integration.pagination.default_limit,
            max_limit: integration.pagination.max_limit,
            cursor_params: integration.pagination.cursor_params.clone(),
            object_as_item: p.object_as_item,
            not_found_as_empty: p.not_found_as_empty,
        }
    }

    /// The structured output's schema: the answer object, or a page of them.
    fn output_schema(&self, paginated: bool) -> Result<Value, Error> {
        let object = self.object_schema(Dialect::JsonSchema)?;
        Ok(if paginated {
            json!({
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": object},
                    "next_cursor": {
                        "type": ["string", "null"],
                        "description": "Pass back unchanged as `next_cursor` to get the next page; null on the last page."
                    }
                },
                "required": ["items", "next_cursor"]
            })
        } else {
            object
        })
    }

    /// The class follows from what the tool sends: write as soon as one of
    /// `sends` is not a GET, or the spec says `read_only: false` (a GET with
    /// side effects). `read_only: true` on a tool that sends anything else
    /// would make clients and read-only servers trust a writer: refused.
    fn class(&self, sends: &[HttpVerb]) -> Result<Class, SpecError> {
        let writer = sends.iter().find(|v| **v != HttpVerb::Get);
        match (writer, self.spec.annotations.read_only) {
            (Some(verb), Some(true)) => Err(self.err(
                &["annotations", "read_only"],
                format!(
                    "`read_only: true` on a method that sends {} upstream{}; expected no `read_only` override (a tool that can change anything upstream is class write)",
                    verb.as_str(),
                    if self.spec.strategy.is_some() { " through its strategy" } else { "" }
                ),
            )),
            (Some(_), _) | (None, Some(false)) => Ok(Class::Write),
            (None, _) => Ok(Class::Read),
        }
    }

    pub(super) fn check_path_params(&self) -> Result<(), SpecError> {
        let placeholders = path_placeholders(&self.spec.path);
        for name in self.spec.path_params.keys() {
            if !placeholders.contains(&name.as_str()) {
                return Err(self.err(
                    &["path_params", name],
                    format!("path parameter `{name}` does not appear in path `{}`; expected a `{{{name}}}` placeholder in it, or the field under `query`/`body`", self.spec.path),
                ));
            }
        }
        for name in placeholders {
            if !self.spec.path_params.contains_key(name) {
                return Err(self.err(
                    &["path"],
                    format!("path `{}` has placeholder `{{{name}}}` with no field; expected `{name}` under `path_params`", self.spec.path),
                ));
            }
        }
        Ok(())
    }

    /// The JSON or OpenAPI schema of the answer object (before list wrapping).
    pub(super) fn object_schema(&self, dialect: Dialect) -> Result<Value, Error> {
        let (schema, at): (Option<&SchemaSpec>, Vec<&str>) = match (&self.spec.output, self.kind) {
            (Some(s), _) => (Some(s), vec!["methods", self.method, "output"]),
            (None, MethodKind::Delete) => (None, vec![]),
            (None, _) => (self.resource.spec.object.as_ref(), vec!["object"]),
        };
        let Some(schema) = schema else {
            return Ok(json!({"type": "object"}));
        };
        let resolved = self
            .resolver
            .resolve(schema, &self.resource.name, self.source(), &at)?;
        if resolved.json_type != Some(JsonType::Object) || resolved.nullable {
            return Err(self
                .source()
                .error_at(&at, "an answer schema that is not an object; expected `type: object` (tools return structured objects)")
                .into());
        }
        Ok(self.resolver.convert(
            schema,
            &self.resource.name,
            self.source(),
            &at,
            Direction::Output,
            dialect,
        )?)
    }
}
