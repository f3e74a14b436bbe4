//! The OpenAPI 3 document of the upstream API as the specs describe it,
//! built with the openapiv3 types.

use indexmap::IndexMap;
use openapiv3::{
    Components, Info, MediaType, OpenAPI, Operation, Parameter, ParameterData,
    ParameterSchemaOrContent, PathItem, PathStyle, Paths, QueryStyle, ReferenceOr, RequestBody,
    Response, Responses, Schema, SecurityScheme, Server, StatusCode,
};
use serde_json::Value;

use crate::error::Error;
use crate::model::{Catalog, Endpoint, Location};
use crate::spec::HttpMethod;

const JSON: &str = "application/json";

/// Builds the document. Composite methods (runtime strategies) are no
/// upstream operations and are left out; endpoints that share a verb and
/// path (lookups on a list endpoint) merge into one operation whose extra
/// query parameters are optional.
pub fn document(catalog: &Catalog) -> Result<OpenAPI, Error> {
    let integration = &catalog.integration;
    let mut paths: IndexMap<String, PathItem> = IndexMap::new();
    let mut endpoints: Vec<&Endpoint> = catalog.endpoints.iter().filter(|e| !e.composite).collect();
    endpoints.sort_by(|a, b| {
        (&a.path, a.http.as_str(), &a.resource, &a.method).cmp(&(
            &b.path,
            b.http.as_str(),
            &b.resource,
            &b.method,
        ))
    });
    for endpoint in endpoints {
        let item = paths.entry(endpoint.path.clone()).or_default();
        let slot = match endpoint.http {
            HttpMethod::Get => &mut item.get,
            HttpMethod::Post => &mut item.post,
            HttpMethod::Put => &mut item.put,
            HttpMethod::Patch => &mut item.patch,
            HttpMethod::Delete => &mut item.delete,
        };
        match slot {
            None => *slot = Some(operation(endpoint)?),
            Some(existing) => merge(existing, endpoint)?,
        }
    }
    let mut security_schemes = IndexMap::new();
    security_schemes.insert(
        "bearer".to_string(),
        ReferenceOr::Item(SecurityScheme::HTTP {
            scheme: integration.auth_scheme.to_lowercase(),
            bearer_format: None,
            description: Some("A secret (`sk_`) or publishable (`pk_`) API key.".to_string()),
            extensions: IndexMap::new(),
        }),
    );
    let mut requirement = IndexMap::new();
    requirement.insert("bearer".to_string(), Vec::new());
    let mut info_ext = IndexMap::new();
    info_ext.insert(
        "x-headers".to_string(),
        Value::Object(
            integration
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
    );
    Ok(OpenAPI {
        openapi: "3.0.3".to_string(),
        info: Info {
            title: format!(
                "{} API (as described by malomo-mcp's specs)",
                integration.title
            ),
            version: "2".to_string(),
            extensions: info_ext,
            ..Default::default()
        },
        servers: vec![Server {
            url: integration.base_url.clone(),
            ..Default::default()
        }],
        paths: Paths {
            paths: paths
                .into_iter()
                .map(|(k, v)| (k, ReferenceOr::Item(v)))
                .collect(),
            extensions: IndexMap::new(),
        },
        components: Some(Components {
            security_schemes,
            ..Default::default()
        }),
        security: Some(vec![requirement]),
        ..Default::default()
    })
}

fn schema(value: &Value) -> Result<ReferenceOr<Schema>, Error> {
    Ok(ReferenceOr::Item(serde_json::from_value(value.clone())?))
}

fn parameter(
    name: &str,
    location: Location,
    required: bool,
    value: &Value,
) -> Result<ReferenceOr<Parameter>, Error> {
    let description = value
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let data = ParameterData {
        name: name.to_string(),
        description,
        required,
        deprecated: None,
        format: ParameterSchemaOrContent::Schema(schema(value)?),
        example: None,
        examples: IndexMap::new(),
        explode: None,
        extensions: IndexMap::new(),
    };
    Ok(ReferenceOr::Item(match location {
        Location::Path => Parameter::Path {
            parameter_data: data,
            style: PathStyle::default(),
        },
        _ => Parameter::Query {
            parameter_data: data,
            allow_reserved: false,
            style: QueryStyle::default(),
            allow_empty_value: None,
        },
    }))
}

fn operation(endpoint: &Endpoint) -> Result<Operation, Error> {
    let parameters = endpoint
        .parameters
        .iter()
        .map(|(name, location, required, value)| parameter(name, *location, *required, value))
        .collect::<Result<Vec<_>, Error>>()?;
    let request_body = match &endpoint.body {
        Some(body) => {
            let mut content = IndexMap::new();
            content.insert(
                JSON.to_string(),
                MediaType {
                    schema: Some(schema(body)?),
                    ..Default::default()
                },
            );
            Some(ReferenceOr::Item(RequestBody {
                content,
                required: true,
                ..Default::default()
            }))
        }
        None => None,
    };
    let mut content = IndexMap::new();
    content.insert(
        JSON.to_string(),
        MediaType {
            schema: Some(schema(&endpoint.response)?),
            ..Default::default()
        },
    );
    let mut responses = IndexMap::new();
    responses.insert(
        StatusCode::Code(200),
        ReferenceOr::Item(Response {
            description: "Success".to_string(),
            content,
            ..Default::default()
        }),
    );
    let mut extensions = IndexMap::new();
    extensions.insert(
        "x-spec-method".to_string(),
        Value::String(format!("{}.{}", endpoint.resource, endpoint.method)),
    );
    if endpoint.tool.is_none() {
        extensions.insert("x-undocumented".to_string(), Value::Bool(true));
    }
    Ok(Operation {
        tags: endpoint.tags.clone(),
        summary: endpoint.summary.clone(),
        description: endpoint.description.clone(),
        operation_id: Some(
            endpoint
                .tool
                .clone()
                .unwrap_or_else(|| format!("{}_{}", endpoint.resource, endpoint.method)),
        ),
        parameters,
        request_body,
        responses: Responses {
            responses,
            ..Default::default()
        },
        extensions,
        ..Default::default()
    })
}

fn merge(existing: &mut Operation, endpoint: &Endpoint) -> Result<(), Error> {
    for (name, location, _, value) in &endpoint.parameters {
        let present = existing.parameters.iter().any(|p| match p {
            ReferenceOr::Item(p) => p.clone().parameter_data().name == *name,
            ReferenceOr::Reference { .. } => false,
        });
        if !present {
            existing
                .parameters
                .push(parameter(name, *location, false, value)?);
        }
    }
    let also = existing
        .extensions
        .entry("x-also-spec-methods".to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = also {
        list.push(Value::String(format!(
            "{}.{}",
            endpoint.resource, endpoint.method
        )));
    }
    Ok(())
}
