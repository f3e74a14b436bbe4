//! Building the catalog: names first (strategies refer to tools by
//! method), then one tool per documented method.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, SpecError, SpecErrors};
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

/// Builds the catalog from loaded specs and templates. Every check is made
/// (each header, docs record, method and prompt), so the error lists every
/// problem of the specs, not the first.
pub fn build(specs: &SpecSet, templates: &Templates) -> Result<Catalog, Error> {
    let mut errors = SpecErrors::new();
    let integration_spec = &specs.integration.spec;
    let integration = Integration {
        name: integration_spec.name.clone(),
        title: integration_spec.title.clone(),
        base_url: integration_spec.base_url.clone(),
        headers: header_pairs(&specs.integration, &mut errors),
        auth_scheme: integration_spec.auth.scheme.clone(),
    };
    let pagination = &integration_spec.pagination;
    if pagination.default_limit == 0 || pagination.default_limit > pagination.max_limit {
        errors.push(specs.integration.source.error_at(
            &["pagination", "default_limit"],
            "expected 1 <= default_limit <= max_limit",
        ));
    }
    check_docs_targets(specs, &mut errors);

    // Names first: strategies refer to other tools by method.
    let mut names: BTreeMap<(String, String), String> = BTreeMap::new();
    // Upper-case name -> (name, where it is defined).
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    // Methods whose kind or name is wrong, or whose name is taken: reported
    // once, not built.
    let mut unnamed: BTreeSet<(String, String)> = BTreeSet::new();
    // Names methods would have with a documentation record: a prompt using
    // one of them is skipped, not an error.
    let mut undocumented: BTreeSet<String> = BTreeSet::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            let kind = method_kind(resource, method, spec);
            let name = match kind {
                Ok(kind) => tool_name(&integration.name, resource, method, spec, kind, templates),
                Err(e) => Err(e.into()),
            };
            let Some(name) = errors.keep(name)? else {
                unnamed.insert((resource.name.clone(), method.clone()));
                continue;
            };
            if specs.method_doc(&resource.name, method).is_none() {
                undocumented.insert(name);
                continue;
            }
            let here = format!("{} methods.{method}", resource.source.name);
            // Keyed in upper case: each tool becomes a `static` named so.
            if let Some((first_name, first)) = owners.get(&name.to_ascii_uppercase()) {
                let clash = if *first_name == name {
                    format!("is also the name of {first}")
                } else {
                    format!("differs only in case from `{first_name}` of {first}")
                };
                errors.push(resource.source.error_at(&["methods", method], format!("tool name `{name}` {clash}; expected every tool name to be unique (choose another `name.pattern` or words)")));
                unnamed.insert((resource.name.clone(), method.clone()));
                continue;
            }
            owners.insert(name.to_ascii_uppercase(), (name.clone(), here));
            names.insert((resource.name.clone(), method.clone()), name);
        }
    }

    let resolver = SchemaResolver::new(specs);
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    let mut endpoints = Vec::new();
    for resource in &specs.resources {
        for (method, spec) in &resource.spec.methods {
            if unnamed.contains(&(resource.name.clone(), method.clone())) {
                continue;
            }
            let doc = specs.method_doc(&resource.name, method);
            let Some(kind) = errors.keep(method_kind(resource, method, spec))? else {
                continue;
            };
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
            let Some(built) = errors.keep(ctx.build(doc))? else {
                continue;
            };
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
    let tool_names: BTreeSet<&str> = names.values().map(String::as_str).collect();
    let prompts =
        super::prompt::build_prompts(specs, &tool_names, &undocumented, &mut skipped, &mut errors)?;
    check_schema_texts(specs, &tools, &mut errors);
    let instructions = errors.keep(super::text::instructions(specs, templates, &names))?;
    errors.finish()?;
    Ok(Catalog {
        integration,
        tools,
        skipped,
        endpoints,
        prompts,
        instructions: instructions.unwrap_or_default(),
    })
}

/// Docs must name existing resources and methods.
fn check_docs_targets(specs: &SpecSet, errors: &mut SpecErrors) {
    for docs in &specs.docs {
        let Some(resource) = specs.resources.iter().find(|r| r.name == docs.name) else {
            let known: Vec<&str> = specs.resources.iter().map(|r| r.name.as_str()).collect();
            errors.push(docs.source.error_at(&[], format!("documentation for resource `{}`, which has no resource record; expected a docs file named after one of: {}", docs.name, known.join(", "))));
            continue;
        };
        for method in docs.spec.methods.keys() {
            if !resource.spec.methods.contains_key(method) {
                let known: Vec<&str> = resource.spec.methods.keys().map(String::as_str).collect();
                errors.push(docs.source.error_at(
                    &["methods", method],
                    format!(
                        "documentation record for method `{method}`, which {} does not define; expected one of: {}",
                        resource.source.name,
                        known.join(", ")
                    ),
                ));
            }
        }
    }
}

/// Points each guarded replace at the merge tool that adds one element
/// through it, the safe way its refusal names.
fn link_add_tools(tools: &mut [Tool]) {
    let adders: Vec<(String, String)> = tools
        .iter()
        .filter_map(|t| match &t.behavior {
            Behavior::KeyedArrayMerge {
                op: MergeOp::Add,
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
fn check_schema_texts(specs: &SpecSet, tools: &[Tool], errors: &mut SpecErrors) {
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
            errors.push(source.error_at(&["methods", &tool.method], message));
        }
    }
}

/// The integration's headers with lower-case names, as the HTTP client
/// wants them; a name or value it would refuse is a spec error here
/// rather than a panic when the server starts.
fn header_pairs(
    integration: &Loaded<crate::spec::IntegrationSpec>,
    errors: &mut SpecErrors,
) -> Vec<(String, String)> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut pairs = Vec::new();
    for (name, value) in &integration.spec.headers {
        if name.is_empty() || !name.chars().all(token) {
            errors.push(integration.source.error_at(
                &["headers", name],
                format!("`{name}` is not an HTTP header name; expected letters, digits and -"),
            ));
        } else if !value
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
        {
            errors.push(integration.source.error_at(
                &["headers", name],
                "a header value outside visible ASCII; expected printable ASCII text",
            ));
        } else {
            pairs.push((name.to_ascii_lowercase(), value.clone()));
        }
    }
    pairs
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
