//! One method turned into a tool: its flat inputs, schemas, annotations
//! and description.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, SourceFile, SpecError};
use crate::load::{Loaded, SpecSet};
use crate::render::{self, Templates};
use crate::schema::{Dialect, Direction, SchemaResolver};
use crate::spec::{HttpVerb, JsonType, MethodKind, MethodSpec, ResourceSpec, SchemaSpec};

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

#[derive(Serialize)]
struct ControlContext<'a> {
    role: &'a str,
    singular: &'a str,
    plural: &'a str,
    default_limit: u32,
    max_limit: u32,
    array: Option<&'a KeyedArray>,
}

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

    pub(super) fn build(&self, doc: Option<&crate::spec::MethodDocSpec>) -> Result<Built, Error> {
        let spec = self.spec;
        let integration = &self.specs.integration.spec;
        self.check_path_params()?;
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

        // The flat namespace: spec fields, then control fields.
        let mut inputs: Vec<InputField> = Vec::new();
        let groups: [(&str, Location, &indexmap::IndexMap<String, SchemaSpec>); 3] = [
            ("path_params", Location::Path, &spec.path_params),
            ("query", Location::Query, &spec.query),
            ("body", Location::Body, &spec.body),
        ];
        for (group, location, fields) in groups {
            for (wire, field) in fields {
                let at = ["methods", self.method, group, wire.as_str()];
                let resolved =
                    self.resolver
                        .resolve(field, &self.resource.name, self.source(), &at)?;
                let flat = resolved.flat_name.clone().unwrap_or_else(|| wire.clone());
                if let Some(other) = inputs.iter().find(|i| i.route.name == flat) {
                    return Err(self
                        .err(
                            &[group, wire],
                            format!(
                                "`{flat}` is already a {} field of this method; path, query and body fields share one flat input namespace, expected `as: <another name>` on one of them",
                                location_name(other.route.location)
                            ),
                        )
                        .into());
                }
                let schema = self.resolver.convert(
                    field,
                    &self.resource.name,
                    self.source(),
                    &at,
                    Direction::Input,
                    Dialect::JsonSchema,
                )?;
                inputs.push(InputField {
                    route: Route {
                        name: flat,
                        wire: wire.clone(),
                        location,
                        required: resolved.required || location == Location::Path,
                    },
                    schema,
                });
            }
        }

        let behavior = self.behavior(&inputs)?;
        let guarded_array = match &behavior {
            Behavior::GuardedReplace { array, .. } | Behavior::KeyedArrayMerge { array, .. } => {
                Some(array.clone())
            }
            Behavior::Direct => None,
        };
        let control = |role: &str| -> Result<String, Error> {
            let text = self.templates.render(
                render::CONTROL_FIELD,
                &ControlContext {
                    role,
                    singular: &self.resource.spec.singular,
                    plural: &self.resource.spec.plural,
                    default_limit: integration.pagination.default_limit,
                    max_limit: integration.pagination.max_limit,
                    array: guarded_array.as_ref(),
                },
            )?;
            Ok(text.trim().to_string())
        };
        let mut controls: Vec<(String, Value)> = Vec::new();
        if paginated {
            controls.push((
                "limit".to_string(),
                json!({
                    "type": "integer",
                    "minimum": 1,
                    "maximum": integration.pagination.max_limit,
                    "default": integration.pagination.default_limit,
                    "description": control("limit")?,
                }),
            ));
            controls.push((
                "next_cursor".to_string(),
                json!({"type": "string", "description": control("next_cursor")?}),
            ));
        }
        if let Behavior::GuardedReplace { override_flag, .. } = &behavior {
            controls.push((
                override_flag.clone(),
                json!({"type": "boolean", "default": false, "description": control("override_flag")?}),
            ));
        }
        for (name, schema) in controls {
            if inputs.iter().any(|i| i.route.name == name) {
                return Err(self
                    .err(&[], format!("`{name}` is an input the runtime adds to this method; expected spec fields to use other names (`as: <another name>`)"))
                    .into());
            }
            inputs.push(InputField {
                route: Route {
                    name: name.clone(),
                    wire: name,
                    location: Location::Control,
                    required: false,
                },
                schema,
            });
        }

        let object = self.object_schema(Dialect::JsonSchema)?;
        let output_schema = if paginated {
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
        };

        let verb = spec.http;
        let o = spec.annotations;
        let sends = self.sent_verbs();
        let class = self.class(&sends)?;
        // (destructive, idempotent) implied by the verb.
        let (destructive, idempotent) = match verb {
            HttpVerb::Get => (false, true),
            HttpVerb::Post | HttpVerb::Patch => (false, false),
            HttpVerb::Put | HttpVerb::Delete => (true, true),
        };
        let annotations = Annotations {
            read_only: class == Class::Read,
            destructive: o.destructive.unwrap_or(destructive),
            idempotent: o.idempotent.unwrap_or(idempotent),
            open_world: o.open_world.unwrap_or(true),
        };
        let mut tags = self.resource.spec.tags.clone();
        for t in &spec.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }

        let endpoint = self.endpoint(doc, &tags, paginated)?;
        let Some(doc) = doc else {
            return Ok(Built {
                tool: None,
                endpoint,
            });
        };

        // Documentation of inputs: only names the tool has.
        let docs_source = self.specs.docs_for(&self.resource.name).map(|d| &d.source);
        for (name, field_doc) in &doc.fields {
            let Some(input) = inputs.iter_mut().find(|i| &i.route.name == name) else {
                let known: Vec<&str> = inputs.iter().map(|i| i.route.name.as_str()).collect();
                let message = format!(
                    "documentation for input `{name}`, which method `{}` does not have; expected one of: {}",
                    self.method,
                    known.join(", ")
                );
                return Err(match docs_source {
                    Some(s) => s.error_at(&["methods", self.method, "fields", name], message),
                    None => self.err(&[], message),
                }
                .into());
            };
            if let Value::Object(map) = &mut input.schema {
                map.insert(
                    "description".into(),
                    json!(field_doc.description.trim_end()),
                );
                if !field_doc.examples.is_empty() {
                    map.insert("examples".into(), Value::Array(field_doc.examples.clone()));
                }
            }
        }

        let mut properties = Map::new();
        let mut required = Vec::new();
        for input in &inputs {
            properties.insert(input.route.name.clone(), input.schema.clone());
            if input.route.required {
                required.push(json!(input.route.name));
            }
        }
        let mut input_schema = Map::new();
        input_schema.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        input_schema.insert("type".into(), json!("object"));
        input_schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            input_schema.insert("required".into(), Value::Array(required));
        }
        input_schema.insert("additionalProperties".into(), json!(false));
        if !doc.examples.is_empty() {
            input_schema.insert("examples".into(), Value::Array(doc.examples.clone()));
        }

        let description = self
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
                    behavior: &behavior,
                    read_only: annotations.read_only,
                },
            )?
            .trim()
            .to_string();
        let title = match &doc.title {
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
        };
        let name = self
            .names
            .get(&(self.resource.name.clone(), self.method.to_string()))
            .cloned()
            .unwrap_or_default();
        let pagination = paginated.then(|| {
            let p = spec.pagination.clone().unwrap_or_default();
            Pagination {
                limit_param: integration.pagination.limit_param.clone(),
                default_limit: integration.pagination.default_limit,
                max_limit: integration.pagination.max_limit,
                cursor_params: integration.pagination.cursor_params.clone(),
                object_as_item: p.object_as_item,
                not_found_as_empty: p.not_found_as_empty,
            }
        });
        let tool = Tool {
            name,
            title,
            description,
            resource: self.resource.name.clone(),
            method: self.method.to_string(),
            class,
            custom: self.kind == MethodKind::Custom,
            sends,
            tags,
            http: verb,
            path: spec.path.clone(),
            fields: inputs.iter().map(|i| i.route.clone()).collect(),
            input_schema: Value::Object(input_schema),
            output_schema,
            annotations,
            pagination,
            behavior,
        };
        Ok(Built {
            tool: Some(tool),
            endpoint,
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
