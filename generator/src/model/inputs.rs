//! A method's flat input namespace: its path, query and body fields under
//! their flat names, the inputs the runtime adds (paging, override flags),
//! their documentation, and the input schema made of them.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::render;
use crate::schema::{Dialect, Direction};
use crate::spec::{MethodDocSpec, SchemaSpec, StrategySpec};

use super::method::{InputField, MethodContext};
use super::*;

#[derive(Serialize)]
struct ControlContext<'a> {
    role: &'a str,
    singular: &'a str,
    plural: &'a str,
    default_limit: u32,
    max_limit: u32,
    array: Option<&'a KeyedArray>,
}

impl MethodContext<'_> {
    /// The spec's fields in the flat namespace; a name used twice is an
    /// error unless renamed with `as:`.
    pub(super) fn spec_inputs(&self) -> Result<Vec<InputField>, Error> {
        let spec = self.spec;
        let mut inputs: Vec<InputField> = Vec::new();
        // A stored-events list's filters are inputs the runtime applies to
        // its store query: nothing is sent upstream.
        let no_filters = indexmap::IndexMap::new();
        let filters = match &spec.strategy {
            Some(StrategySpec::StoredEvents(s)) => &s.filters,
            _ => &no_filters,
        };
        let groups: [(&str, Location, &indexmap::IndexMap<String, SchemaSpec>); 4] = [
            ("path_params", Location::Path, &spec.path_params),
            ("query", Location::Query, &spec.query),
            ("body", Location::Body, &spec.body),
            ("filters", Location::Control, filters),
        ];
        for (group, location, fields) in groups {
            for (wire, field) in fields {
                let strategy_at = [
                    "methods",
                    self.method,
                    "strategy",
                    "stored_events",
                    group,
                    wire.as_str(),
                ];
                let field_at = ["methods", self.method, group, wire.as_str()];
                let at: &[&str] = if location == Location::Control {
                    &strategy_at
                } else {
                    &field_at
                };
                let resolved =
                    self.resolver
                        .resolve(field, &self.resource.name, self.source(), at)?;
                let flat = resolved.flat_name.clone().unwrap_or_else(|| wire.clone());
                if let Some(other) = inputs.iter().find(|i| i.route.name == flat) {
                    return Err(self
                        .err(
                            &[group, wire],
                            format!(
                                "`{flat}` is already a {} field of this method; path, query and body fields share one flat input namespace, expected `as: <another name>` on one of them",
                                other.route.location.as_str()
                            ),
                        )
                        .into());
                }
                let schema = self.resolver.convert(
                    field,
                    &self.resource.name,
                    self.source(),
                    at,
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

        Ok(inputs)
    }

    /// The inputs the runtime consumes itself: `limit` and `next_cursor` on
    /// list tools, a guarded replace's override flag.
    pub(super) fn add_control_inputs(
        &self,
        inputs: &mut Vec<InputField>,
        paginated: bool,
        behavior: &Behavior,
        fields: Option<&Value>,
    ) -> Result<(), Error> {
        let integration = &self.specs.integration.spec;
        let guarded_array = match behavior {
            Behavior::GuardedReplace { array, .. } | Behavior::KeyedArrayMerge { array, .. } => {
                Some(array.clone())
            }
            Behavior::Direct
            | Behavior::InboxSubscription { .. }
            | Behavior::StoredEvents { .. } => None,
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
        if let Behavior::GuardedReplace { override_flag, .. } = behavior {
            controls.push((
                override_flag.clone(),
                json!({"type": "boolean", "default": false, "description": control("override_flag")?}),
            ));
        }
        if let Some(fields) = fields {
            controls.push(("fields".to_string(), fields.clone()));
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

        Ok(())
    }

    /// Adds each documented field's text and examples to its schema; a
    /// documented name the tool does not have is an error in the docs file.
    pub(super) fn document_inputs(
        &self,
        inputs: &mut [InputField],
        doc: &MethodDocSpec,
    ) -> Result<(), Error> {
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

        Ok(())
    }
}

/// The input object's JSON Schema (draft 2020-12): every flat input, none
/// other.
pub(super) fn input_schema(inputs: &[InputField], doc: &MethodDocSpec) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for input in inputs {
        properties.insert(input.route.name.clone(), input.schema.clone());
        if input.route.required {
            required.push(json!(input.route.name));
        }
    }
    // No `$schema`: MCP input schemas are draft 2020-12 unless they say
    // otherwise, and the line would cost every tool bytes of catalog.
    let mut input_schema = Map::new();
    input_schema.insert("type".into(), json!("object"));
    input_schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        input_schema.insert("required".into(), Value::Array(required));
    }
    input_schema.insert("additionalProperties".into(), json!(false));
    if !doc.examples.is_empty() {
        input_schema.insert("examples".into(), Value::Array(doc.examples.clone()));
    }

    Value::Object(input_schema)
}
