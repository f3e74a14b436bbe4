//! One method turned into a tool: its flat inputs, schemas, annotations
//! and description.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{Error, SourceFile, SpecError};
use crate::load::{Loaded, SpecSet};
use crate::render::Templates;
use crate::schema::{Dialect, Direction, SchemaResolver};
use crate::spec::{
    HttpMethod, JsonType, MethodDocSpec, MethodKind, MethodSpec, ResourceSpec, SchemaSpec,
    StrategySpec,
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
        self.check_upstream()?;
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
        let output_schema = self.output_schema(paginated, &behavior)?;
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
            http: self.verb(),
            path: self.spec.path.clone().unwrap_or_default(),
            path_parts: path_parts(self.spec.path.as_deref().unwrap_or_default(), &fields),
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

    /// The method's own upstream verb; GET for a method that sends
    /// nothing (its `sends` is empty).
    pub(super) fn verb(&self) -> HttpMethod {
        self.spec.http.unwrap_or(HttpMethod::Get)
    }

    /// `http` and `path` say which upstream request the method is: every
    /// method has both, except one the runtime serves from its own store,
    /// which has neither (and no path, query or body fields).
    fn check_upstream(&self) -> Result<(), SpecError> {
        let local = matches!(self.spec.strategy, Some(StrategySpec::StoredEvents(_)));
        let spec = self.spec;
        if local {
            for (key, set) in [
                ("http", spec.http.is_some()),
                ("path", spec.path.is_some()),
                ("path_params", !spec.path_params.is_empty()),
                ("query", !spec.query.is_empty()),
                ("body", !spec.body.is_empty()),
            ] {
                if set {
                    return Err(self.err(&[key], format!("`{key}` on a method served from the store (`strategy: stored_events`), which sends nothing upstream; expected no `{key}` (its inputs are the strategy's `filters`)")));
                }
            }
            return Ok(());
        }
        for (key, missing) in [("http", spec.http.is_none()), ("path", spec.path.is_none())] {
            if missing {
                return Err(self.err(&[], format!("no `{key}`; expected the upstream request's `http` verb and `path` (only a `stored_events` method has neither)")));
            }
        }
        Ok(())
    }

    /// MCP annotations: read-only from the class, the others from the verb
    /// unless the spec overrides them. A method that sends nothing upstream
    /// is idempotent and not open-world.
    fn annotations(&self, class: MethodClass) -> Annotations {
        let o = self.spec.annotations;
        // (destructive, idempotent) implied by the verb.
        let (destructive, idempotent) = match self.spec.http {
            None | Some(HttpMethod::Get) => (false, true),
            Some(HttpMethod::Post | HttpMethod::Patch) => (false, false),
            Some(HttpMethod::Put | HttpMethod::Delete) => (true, true),
        };
        Annotations {
            read_only: class == MethodClass::Read,
            destructive: o.destructive.unwrap_or(destructive),
            idempotent: o.idempotent.unwrap_or(idempotent),
            open_world: o.open_world.unwrap_or(self.spec.http.is_some()),
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

    /// The structured output's schema: the answer object, or a page of
    /// them; for an inbox subscription, whether it created the webhook and
    /// the webhook without the inbox URL (which no model sees).
    fn output_schema(&self, paginated: bool, behavior: &Behavior) -> Result<Value, Error> {
        let mut object = self.object_schema(Dialect::JsonSchema)?;
        if let Behavior::InboxSubscription { url_field, .. } = behavior {
            if let Some(props) = object.get_mut("properties").and_then(Value::as_object_mut) {
                props.shift_remove(url_field);
            }
            if let Some(required) = object.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r.as_str() != Some(url_field.as_str()));
            }
            return Ok(json!({
                "type": "object",
                "properties": {
                    "created": {
                        "type": "boolean",
                        "description": "true when this call created the webhook; false when one already delivered this topic to this server's event inbox (nothing was created)."
                    },
                    "webhook": object
                },
                "required": ["created", "webhook"]
            }));
        }
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
    fn class(&self, sends: &[HttpMethod]) -> Result<MethodClass, SpecError> {
        let writer = sends.iter().find(|v| **v != HttpMethod::Get);
        match (writer, self.spec.annotations.read_only) {
            (Some(verb), Some(true)) => Err(self.err(
                &["annotations", "read_only"],
                format!(
                    "`read_only: true` on a method that sends {} upstream{}; expected no `read_only` override (a tool that can change anything upstream is class write)",
                    verb.as_str(),
                    if self.spec.strategy.is_some() { " through its strategy" } else { "" }
                ),
            )),
            (Some(_), _) | (None, Some(false)) => Ok(MethodClass::Write),
            (None, _) => Ok(MethodClass::Read),
        }
    }

    pub(super) fn check_path_params(&self) -> Result<(), SpecError> {
        let path = self.spec.path.as_deref().unwrap_or_default();
        let placeholders = path_placeholders(path);
        for name in self.spec.path_params.keys() {
            if !placeholders.contains(&name.as_str()) {
                return Err(self.err(
                    &["path_params", name],
                    format!("path parameter `{name}` does not appear in path `{path}`; expected a `{{{name}}}` placeholder in it, or the field under `query`/`body`"),
                ));
            }
        }
        for name in placeholders {
            if !self.spec.path_params.contains_key(name) {
                return Err(self.err(
                    &["path"],
                    format!("path `{path}` has placeholder `{{{name}}}` with no field; expected `{name}` under `path_params`"),
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
