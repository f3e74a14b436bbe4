//! The tool model: every documented method of every resource, validated and
//! resolved into what the runtime table, the schemas, the OpenAPI document
//! and TOOLS.md are printed from.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, SourceFile, SpecError};
use crate::load::{Loaded, SpecSet};
use crate::render::{self, Templates};
use crate::schema::{Dialect, Direction, SchemaResolver};
use crate::spec::{
    HttpVerb, JsonType, MergeOpSpec, MethodKind, MethodSpec, ResourceSpec, SchemaSpec, StrategySpec,
};

/// Longest tool name MCP clients accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Where a flat input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// Substituted into the path.
    Path,
    /// In the query string.
    Query,
    /// A member of the JSON body.
    Body,
    /// Consumed by the runtime.
    Control,
}

/// Read, write or custom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Does not change upstream state.
    Read,
    /// A plain create, update or delete.
    Write,
    /// Anything declared custom.
    Custom,
}

impl Class {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Custom => "custom",
        }
    }
}

/// One flat input and its route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Flat (tool) name.
    pub name: String,
    /// Upstream name.
    pub wire: String,
    /// Where it goes.
    pub location: Location,
    /// Whether the caller must give it.
    pub required: bool,
}

/// MCP annotations.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Annotations {
    /// readOnlyHint
    pub read_only: bool,
    /// destructiveHint
    pub destructive: bool,
    /// idempotentHint
    pub idempotent: bool,
    /// openWorldHint
    pub open_world: bool,
}

/// Paging of a list tool.
#[derive(Debug, Clone, Serialize)]
pub struct Pagination {
    /// Upstream page-size parameter.
    pub limit_param: String,
    /// Default page size.
    pub default_limit: u32,
    /// Largest page size.
    pub max_limit: u32,
    /// Upstream cursor parameters carried in `next_cursor`.
    pub cursor_params: Vec<String>,
    /// An object answer becomes one item.
    pub object_as_item: bool,
    /// A 404 becomes an empty list.
    pub not_found_as_empty: bool,
}

/// A keyed array (field + key members).
#[derive(Debug, Clone, Serialize)]
pub struct KeyedArray {
    /// The body field holding the array.
    pub field: String,
    /// Members identifying an element.
    pub key: Vec<String>,
}

/// What the runtime does for a call.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behavior {
    /// One routed upstream request.
    Direct,
    /// Read first; refuse to drop keyed elements unless overridden.
    GuardedReplace {
        /// The guarded array.
        array: KeyedArray,
        /// Tool that reads the current object.
        read_tool: String,
        /// Boolean input that allows dropping.
        override_flag: String,
    },
    /// Read, edit one element, write back.
    KeyedArrayMerge {
        /// The edited array.
        array: KeyedArray,
        /// `add` or `remove`.
        op: MergeOpSpec,
        /// Tool that reads the current object.
        read_tool: String,
        /// Tool that writes the array back.
        write_tool: String,
        /// Input holding the object id.
        id_arg: String,
    },
}

/// One generated tool.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// Human title.
    pub title: String,
    /// Description for the model.
    pub description: String,
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// Read, write or custom.
    pub class: Class,
    /// Tags.
    pub tags: Vec<String>,
    /// Upstream verb.
    pub http: HttpVerb,
    /// Upstream path template.
    pub path: String,
    /// Flat inputs in schema order.
    pub fields: Vec<Route>,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// JSON Schema of the structured output.
    pub output_schema: Value,
    /// MCP annotations.
    pub annotations: Annotations,
    /// Paging, for list tools.
    pub pagination: Option<Pagination>,
    /// What the runtime does.
    pub behavior: Behavior,
}

/// One upstream operation as the specs describe it (documented or not).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// The tool it became, if documented.
    pub tool: Option<String>,
    /// Short summary (the tool title, when documented).
    pub summary: Option<String>,
    /// Documentation text, when documented.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Upstream verb.
    pub http: HttpVerb,
    /// Upstream path template.
    pub path: String,
    /// Path and query parameters: (wire name, location, required, OpenAPI schema).
    pub parameters: Vec<(String, Location, bool, Value)>,
    /// OpenAPI schema of the JSON body, if any.
    pub body: Option<Value>,
    /// OpenAPI schema of the 2xx answer.
    pub response: Value,
    /// Whether the method is a runtime strategy rather than an endpoint.
    pub composite: bool,
}

/// A method with no documentation record.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// Why it is no tool.
    pub reason: String,
}

/// The integration as the runtime sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    /// Short name.
    pub name: String,
    /// Human name.
    pub title: String,
    /// Default base URL.
    pub base_url: String,
    /// Headers on every request.
    pub headers: Vec<(String, String)>,
    /// Authorization scheme.
    pub auth_scheme: String,
}

/// Everything generated output is printed from.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The integration.
    pub integration: Integration,
    /// Tools sorted by name.
    pub tools: Vec<Tool>,
    /// Undocumented methods, sorted by resource and method.
    pub skipped: Vec<Skipped>,
    /// Every method as an upstream operation, in spec order.
    pub endpoints: Vec<Endpoint>,
}

#[derive(Serialize)]
struct NameContext<'a> {
    integration: &'a str,
    resource: &'a str,
    singular: &'a str,
    plural: &'a str,
    method: &'a str,
    kind: &'a str,
    pattern: &'a str,
    verb: &'a str,
    object: &'a str,
}

#[derive(Serialize)]
struct DescriptionContext<'a> {
    integration: &'a str,
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

const ALLOWED_NAME_CHARS: fn(char) -> bool = |c| c.is_ascii_alphanumeric() || c == '_';

/// Builds the catalog from loaded specs and templates.
pub fn build(specs: &SpecSet, templates: &Templates) -> Result<Catalog, Error> {
    let integration_spec = &specs.integration.spec;
    let integration = Integration {
        name: integration_spec.name.clone(),
        title: integration_spec.title.clone(),
        base_url: integration_spec.base_url.clone(),
        headers: integration_spec
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        auth_scheme: integration_spec.auth.scheme.clone(),
    };
    let pagination = &integration_spec.pagination;
    if pagination.default_limit == 0 || pagination.default_limit > pagination.max_limit {
        return Err(specs
            .integration
            .source
            .error_at(
                &["pagination", "default_limit"],
                "expected 1 <= default_limit <= max_limit",
            )
            .into());
    }

    // Docs must name existing resources and methods.
    for docs in &specs.docs {
        let Some(resource) = specs.resources.iter().find(|r| r.name == docs.name) else {
            let known: Vec<&str> = specs.resources.iter().map(|r| r.name.as_str()).collect();
            return Err(docs
                .source
                .error_at(&[], format!("documentation for resource `{}`, which has no resource record; expected a docs file named after one of: {}", docs.name, known.join(", ")))
                .into());
        };
        for method in docs.spec.methods.keys() {
            if !resource.spec.methods.contains_key(method) {
                let known: Vec<&str> = resource.spec.methods.keys().map(String::as_str).collect();
                return Err(docs
                    .source
                    .error_at(
                        &["methods", method],
                        format!(
                            "documentation record for method `{method}`, which {} does not define; expected one of: {}",
                            resource.source.name,
                            known.join(", ")
                        ),
                    )
                    .into());
            }
        }
    }

    // Names first: strategies refer to other tools by method.
    let mut names: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            let kind = method_kind(resource, method, spec)?;
            let name = tool_name(&integration.name, resource, method, spec, kind, templates)?;
            if documented(specs, &resource.name, method).is_none() {
                continue;
            }
            let here = format!("{} methods.{method}", resource.source.name);
            if let Some(first) = owners.get(&name) {
                return Err(resource
                    .source
                    .error_at(&["methods", method], format!("tool name `{name}` is also the name of {first}; expected every tool name to be unique (choose another `name.pattern` or words)"))
                    .into());
            }
            owners.insert(name.clone(), here);
            names.insert((resource.name.clone(), method.clone()), name);
        }
    }

    let resolver = SchemaResolver::new(specs);
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    let mut endpoints = Vec::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            let doc = documented(specs, &resource.name, method);
            let kind = method_kind(resource, method, spec)?;
            let ctx = MethodContext {
                specs,
                resource,
                method,
                spec,
                kind,
                resolver: &resolver,
                templates,
                names: &names,
            };
            let built = ctx.build(doc)?;
            endpoints.push(built.endpoint);
            match (doc, built.tool) {
                (Some(_), Some(tool)) => tools.push(tool),
                _ => skipped.push(Skipped {
                    resource: resource.name.clone(),
                    method: method.clone(),
                    reason: "no documentation record".to_string(),
                }),
            }
        }
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    skipped.sort_by(|a, b| (&a.resource, &a.method).cmp(&(&b.resource, &b.method)));
    Ok(Catalog {
        integration,
        tools,
        skipped,
        endpoints,
    })
}

fn documented<'a>(
    specs: &'a SpecSet,
    resource: &str,
    method: &str,
) -> Option<&'a crate::spec::MethodDocSpec> {
    specs
        .docs
        .iter()
        .find(|d| d.name == resource)
        .and_then(|d| d.spec.methods.get(method))
}

fn docs_file<'a>(specs: &'a SpecSet, resource: &str) -> Option<&'a Loaded<crate::spec::DocsSpec>> {
    specs.docs.iter().find(|d| d.name == resource)
}

fn method_kind(
    resource: &Loaded<ResourceSpec>,
    method: &str,
    spec: &MethodSpec,
) -> Result<MethodKind, SpecError> {
    match spec.kind.or_else(|| MethodKind::from_method_name(method)) {
        Some(kind) => Ok(kind),
        None => Err(resource.source.error_at(
            &["methods", method],
            format!("method `{method}` is not one of list, get, create, update, delete; expected a `kind:` (list, get, create, update, delete or custom)"),
        )),
    }
}

fn tool_name(
    integration: &str,
    resource: &Loaded<ResourceSpec>,
    method: &str,
    spec: &MethodSpec,
    kind: MethodKind,
    templates: &Templates,
) -> Result<String, Error> {
    let name_spec = spec.name.clone().unwrap_or_default();
    let context = NameContext {
        integration,
        resource: &resource.name,
        singular: &resource.spec.singular,
        plural: &resource.spec.plural,
        method,
        kind: kind.as_str(),
        pattern: name_spec.pattern.as_deref().unwrap_or(kind.as_str()),
        verb: name_spec.verb.as_deref().unwrap_or(method),
        object: name_spec.object.as_deref().unwrap_or(""),
    };
    let name = templates
        .render(render::TOOL_NAME, &context)?
        .trim()
        .to_string();
    let at: Vec<&str> = if spec.name.is_some() {
        vec!["methods", method, "name"]
    } else {
        vec!["methods", method]
    };
    if name.is_empty() {
        return Err(resource
            .source
            .error_at(&at, format!("templates/{} gives no name for pattern `{}`; expected a pattern the template knows", render::TOOL_NAME, context.pattern))
            .into());
    }
    if name.len() > MAX_TOOL_NAME {
        return Err(resource
            .source
            .error_at(
                &at,
                format!(
                    "tool name `{name}` is {} characters long; expected at most {MAX_TOOL_NAME}",
                    name.len()
                ),
            )
            .into());
    }
    if !name.chars().all(ALLOWED_NAME_CHARS) {
        return Err(resource
            .source
            .error_at(&at, format!("tool name `{name}` has characters outside [A-Za-z0-9_]; expected a name matching ^[A-Za-z0-9_]+$"))
            .into());
    }
    Ok(name)
}

struct MethodContext<'a> {
    specs: &'a SpecSet,
    resource: &'a Loaded<ResourceSpec>,
    method: &'a str,
    spec: &'a MethodSpec,
    kind: MethodKind,
    resolver: &'a SchemaResolver<'a>,
    templates: &'a Templates,
    names: &'a BTreeMap<(String, String), String>,
}

struct Built {
    tool: Option<Tool>,
    endpoint: Endpoint,
}

struct InputField {
    route: Route,
    schema: Value,
}

impl MethodContext<'_> {
    fn source(&self) -> &SourceFile {
        &self.resource.source
    }

    fn err(&self, rest: &[&str], message: impl Into<String>) -> SpecError {
        let mut at = vec!["methods", self.method];
        at.extend_from_slice(rest);
        self.source().error_at(&at, message)
    }

    fn build(&self, doc: Option<&crate::spec::MethodDocSpec>) -> Result<Built, Error> {
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
        let merges = spec
            .strategy
            .as_ref()
            .is_some_and(|s| s.keyed_array_merge.is_some());
        let class = match (self.kind, merges) {
            (MethodKind::Custom, _) | (_, true) => Class::Custom,
            (MethodKind::List | MethodKind::Get, _) => Class::Read,
            _ => Class::Write,
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
        // (readOnly, destructive, idempotent) implied by the verb.
        let (read_only, destructive, idempotent) = match verb {
            HttpVerb::Get => (true, false, true),
            HttpVerb::Post | HttpVerb::Patch => (false, false, false),
            HttpVerb::Put | HttpVerb::Delete => (false, true, true),
        };
        let o = spec.annotations;
        let annotations = Annotations {
            read_only: o.read_only.unwrap_or(read_only),
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
        let docs_source = docs_file(self.specs, &self.resource.name).map(|d| &d.source);
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

    fn check_path_params(&self) -> Result<(), SpecError> {
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
    fn object_schema(&self, dialect: Dialect) -> Result<Value, Error> {
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

    fn behavior(&self, inputs: &[InputField]) -> Result<Behavior, Error> {
        let Some(strategy) = &self.spec.strategy else {
            return Ok(Behavior::Direct);
        };
        let tool_of = |method: &str, key: &str| -> Result<String, SpecError> {
            if !self.resource.spec.methods.contains_key(method) {
                let known: Vec<&str> = self
                    .resource
                    .spec
                    .methods
                    .keys()
                    .map(String::as_str)
                    .collect();
                return Err(self.err(
                    &["strategy", key],
                    format!(
                        "no method `{method}` in this resource; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
            self.names
                .get(&(self.resource.name.clone(), method.to_string()))
                .cloned()
                .ok_or_else(|| self.err(&["strategy", key], format!("method `{method}` has no documentation record, so it is no tool this strategy can call; expected a documented method")))
        };
        let check_array = |array: &crate::spec::KeyedArraySpec,
                           writer: &MethodSpec,
                           key: &str|
         -> Result<KeyedArray, Error> {
            let Some(field) = writer.body.get(&array.field) else {
                return Err(self.err(&["strategy", key, "array", "field"], format!("`{}` is not a body field of the writing method; expected the name of an array body field", array.field)).into());
            };
            let resolved = self.resolver.resolve(
                field,
                &self.resource.name,
                self.source(),
                &["methods", self.method, "strategy"],
            )?;
            let items = match (resolved.json_type, &resolved.items) {
                (Some(JsonType::Array), Some(items)) => self.resolver.resolve(items, &self.resource.name, self.source(), &["methods", self.method, "strategy"])?,
                _ => return Err(self.err(&["strategy", key, "array", "field"], format!("`{}` is not an array of objects; expected `type: array` with object `items`", array.field)).into()),
            };
            let props = items.properties.unwrap_or_default();
            if array.key.is_empty() {
                return Err(self
                    .err(
                        &["strategy", key, "array", "key"],
                        "an empty key; expected at least one member name",
                    )
                    .into());
            }
            for k in &array.key {
                if !props.contains_key(k) {
                    return Err(self
                        .err(
                            &["strategy", key, "array", "key"],
                            format!(
                                "`{k}` is not a member of `{}` items; expected one of: {}",
                                array.field,
                                props.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        )
                        .into());
                }
            }
            Ok(KeyedArray {
                field: array.field.clone(),
                key: array.key.clone(),
            })
        };
        match strategy {
            StrategySpec {
                guarded_replace: Some(g),
                keyed_array_merge: None,
            } => {
                let array = check_array(&g.array, self.spec, "guarded_replace")?;
                Ok(Behavior::GuardedReplace {
                    array,
                    read_tool: tool_of(&g.read_method, "guarded_replace")?,
                    override_flag: g.override_flag.clone(),
                })
            }
            StrategySpec {
                guarded_replace: None,
                keyed_array_merge: Some(m),
            } => {
                let writer = self
                    .resource
                    .spec
                    .methods
                    .get(&m.write_method)
                    .ok_or_else(|| {
                        self.err(
                            &["strategy", "keyed_array_merge", "write_method"],
                            format!("no method `{}` in this resource", m.write_method),
                        )
                    })?;
                let array = check_array(&m.array, writer, "keyed_array_merge")?;
                for needed in std::iter::once(&m.id_field).chain(array.key.iter()) {
                    if !inputs.iter().any(|i| &i.route.name == needed) {
                        return Err(self
                            .err(&["strategy", "keyed_array_merge"], format!("the merge needs input `{needed}`; expected it among this method's fields"))
                            .into());
                    }
                }
                Ok(Behavior::KeyedArrayMerge {
                    array,
                    op: m.op,
                    read_tool: tool_of(&m.read_method, "keyed_array_merge")?,
                    write_tool: tool_of(&m.write_method, "keyed_array_merge")?,
                    id_arg: m.id_field.clone(),
                })
            }
            _ => Err(self
                .err(
                    &["strategy"],
                    "expected exactly one of `guarded_replace` or `keyed_array_merge`",
                )
                .into()),
        }
    }

    fn endpoint(
        &self,
        doc: Option<&crate::spec::MethodDocSpec>,
        tags: &[String],
        paginated: bool,
    ) -> Result<Endpoint, Error> {
        let spec = self.spec;
        let paging = &self.specs.integration.spec.pagination;
        let merges = spec
            .strategy
            .as_ref()
            .is_some_and(|s| s.keyed_array_merge.is_some());
        let mut parameters = Vec::new();
        for (group, location, fields) in [
            ("path_params", Location::Path, &spec.path_params),
            ("query", Location::Query, &spec.query),
        ] {
            for (wire, field) in fields {
                let at = ["methods", self.method, group, wire.as_str()];
                let resolved =
                    self.resolver
                        .resolve(field, &self.resource.name, self.source(), &at)?;
                let schema = self.resolver.convert(
                    field,
                    &self.resource.name,
                    self.source(),
                    &at,
                    Direction::Input,
                    Dialect::OpenApi,
                )?;
                parameters.push((
                    wire.clone(),
                    location,
                    resolved.required || location == Location::Path,
                    schema,
                ));
            }
        }
        if paginated {
            parameters.push((
                paging.limit_param.clone(),
                Location::Query,
                false,
                json!({
                    "type": "integer",
                    "minimum": 1,
                    "maximum": paging.max_limit,
                    "default": paging.default_limit,
                    "description": "Page size.",
                }),
            ));
            for cursor in &paging.cursor_params {
                parameters.push((
                    cursor.clone(),
                    Location::Query,
                    false,
                    json!({
                        "type": "string",
                        "description": "Opaque cursor, taken from the query of the URL in the previous answer's `Link: <...>; rel=\"next\"` header.",
                    }),
                ));
            }
        }
        let body = if spec.body.is_empty() {
            None
        } else {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (wire, field) in &spec.body {
                let at = ["methods", self.method, "body", wire.as_str()];
                let resolved =
                    self.resolver
                        .resolve(field, &self.resource.name, self.source(), &at)?;
                if resolved.required {
                    required.push(json!(wire));
                }
                props.insert(
                    wire.clone(),
                    self.resolver.convert(
                        field,
                        &self.resource.name,
                        self.source(),
                        &at,
                        Direction::Input,
                        Dialect::OpenApi,
                    )?,
                );
            }
            let mut schema = Map::new();
            schema.insert("type".into(), json!("object"));
            schema.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                schema.insert("required".into(), Value::Array(required));
            }
            Some(Value::Object(schema))
        };
        let object = self.object_schema(Dialect::OpenApi)?;
        let response = if self.kind == MethodKind::List {
            json!({"type": "array", "items": object})
        } else {
            object
        };
        Ok(Endpoint {
            resource: self.resource.name.clone(),
            method: self.method.to_string(),
            tool: self
                .names
                .get(&(self.resource.name.clone(), self.method.to_string()))
                .cloned(),
            summary: doc.and_then(|d| d.title.clone()),
            description: doc.map(|d| d.description.trim().to_string()),
            tags: tags.to_vec(),
            http: spec.http,
            path: spec.path.clone(),
            parameters,
            body,
            response,
            composite: merges,
        })
    }
}

fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Body => "body",
        Location::Control => "control",
    }
}

/// The `{name}` placeholders of a path template, in order.
pub fn path_placeholders(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}
