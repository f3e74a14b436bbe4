//! Building the catalog: names first (strategies refer to tools by
//! method), then one tool per documented method.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, SpecError};
use crate::load::{Loaded, SpecSet};
use crate::render::{self, Templates};
use crate::schema::SchemaResolver;
use crate::spec::{MethodKind, MethodSpec, ResourceSpec};

use super::method::MethodContext;
use super::*;

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

const ALLOWED_NAME_CHARS: fn(char) -> bool = |c| c.is_ascii_alphanumeric() || c == '_';

/// Builds the catalog from loaded specs and templates.
pub fn build(specs: &SpecSet, templates: &Templates) -> Result<Catalog, Error> {
    let integration_spec = &specs.integration.spec;
    let integration = Integration {
        name: integration_spec.name.clone(),
        title: integration_spec.title.clone(),
        base_url: integration_spec.base_url.clone(),
        headers: header_pairs(&specs.integration)?,
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
    // Names methods would have with a documentation record: a prompt using
    // one of them is skipped, not an error.
    let mut undocumented: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            let kind = method_kind(resource, method, spec)?;
            let name = tool_name(&integration.name, resource, method, spec, kind, templates)?;
            if specs.method_doc(&resource.name, method).is_none() {
                undocumented.insert(name);
                continue;
            }
            let here = format!("{} methods.{method}", resource.source.name);
            // Keyed in upper case: each tool becomes a `static` named so.
            if let Some(first) = owners.get(&name.to_ascii_uppercase()) {
                return Err(resource
                    .source
                    .error_at(&["methods", method], format!("tool name `{name}` is also the name of {first} (ignoring case); expected every tool name to be unique (choose another `name.pattern` or words)"))
                    .into());
            }
            owners.insert(name.to_ascii_uppercase(), here);
            names.insert((resource.name.clone(), method.clone()), name);
        }
    }

    let resolver = SchemaResolver::new(specs);
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    let mut endpoints = Vec::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            let doc = specs.method_doc(&resource.name, method);
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
    link_add_tools(&mut tools);
    skipped.sort_by(|a, b| (&a.resource, &a.method).cmp(&(&b.resource, &b.method)));
    let prompts = super::prompt::build_prompts(specs, &tools, &undocumented, &mut skipped)?;
    check_schema_texts(specs, &tools)?;
    let instructions = super::text::instructions(specs, templates, &tools)?;
    Ok(Catalog {
        integration,
        tools,
        skipped,
        endpoints,
        prompts,
        instructions,
    })
}

/// Points each guarded replace at the merge tool that adds one element
/// through it, the safe way its refusal names.
fn link_add_tools(tools: &mut [Tool]) {
    let adders: Vec<(String, String)> = tools
        .iter()
        .filter_map(|t| match &t.behavior {
            Behavior::KeyedArrayMerge {
                op: MergeOpSpec::Add,
                write_tool,
                ..
            } => Some((write_tool.clone(), t.name.clone())),
            _ => None,
        })
        .collect();
    for tool in tools.iter_mut() {
        if let Behavior::GuardedReplace { add_tool, .. } = &mut tool.behavior {
            *add_tool = adders
                .iter()
                .find(|(writer, _)| *writer == tool.name)
                .map(|(_, adder)| adder.clone());
        }
    }
}

/// Schema texts (input and output field descriptions) are sent whole, so
/// they may name no other tool: a server hiding it would still show its
/// name. Tool names belong in the description, whose paragraphs naming a
/// hidden tool are dropped.
fn check_schema_texts(specs: &SpecSet, tools: &[Tool]) -> Result<(), Error> {
    for tool in tools {
        let text = format!("{} {}", tool.input_schema, tool.output_schema);
        let Some(named) = tools
            .iter()
            .find(|t| t.name != tool.name && super::mentions(&text, &t.name))
        else {
            continue;
        };
        let message = format!(
            "an input or output field description names the tool `{}`; expected tool names only in the method's `description` (a server that hides a tool drops the description paragraphs naming it, but sends field descriptions whole)",
            named.name
        );
        let source = specs
            .docs_for(&tool.resource)
            .map(|d| &d.source)
            .or_else(|| {
                specs
                    .resources
                    .iter()
                    .find(|r| r.name == tool.resource)
                    .map(|r| &r.source)
            });
        if let Some(source) = source {
            return Err(source.error_at(&["methods", &tool.method], message).into());
        }
    }
    Ok(())
}

/// The integration's headers with lower-case names, as the HTTP client
/// wants them; a name or value it would refuse is a spec error here
/// rather than a panic when the server starts.
fn header_pairs(
    integration: &Loaded<crate::spec::IntegrationSpec>,
) -> Result<Vec<(String, String)>, SpecError> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut pairs = Vec::new();
    for (name, value) in &integration.spec.headers {
        if name.is_empty() || !name.chars().all(token) {
            return Err(integration.source.error_at(
                &["headers", name],
                format!("`{name}` is not an HTTP header name; expected letters, digits and -"),
            ));
        }
        if !value
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
        {
            return Err(integration.source.error_at(
                &["headers", name],
                "a header value outside visible ASCII; expected printable ASCII text",
            ));
        }
        pairs.push((name.to_ascii_lowercase(), value.clone()));
    }
    Ok(pairs)
}

fn method_kind(
    resource: &Loaded<ResourceSpec>,
    method: &str,
    spec: &MethodSpec,
) -> Result<MethodKind, SpecError> {
    if super::CLASS_WORDS.contains(&method) {
        return Err(resource.source.error_at(
            &["methods", method],
            format!("method name `{method}` is a filter class word ({}), so `methods: [{method}]` would mean two things; expected another name", super::CLASS_WORDS.join(", ")),
        ));
    }
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
