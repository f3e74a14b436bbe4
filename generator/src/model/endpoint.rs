//! A method as an upstream operation, for the OpenAPI document.

use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::schema::{Dialect, Direction};
use crate::spec::MethodKind;
use crate::spec::StrategySpec;

use super::method::MethodContext;
use super::*;

impl MethodContext<'_> {
    pub(super) fn endpoint(
        &self,
        doc: Option<&crate::spec::MethodDocSpec>,
        tags: &[String],
        paginated: bool,
    ) -> Result<Endpoint, Error> {
        let spec = self.spec;
        let paging = &self.specs.integration.spec.pagination;
        // Strategies that are no single upstream call of their own.
        let merges = matches!(
            spec.strategy,
            Some(
                StrategySpec::KeyedArrayMerge(_)
                    | StrategySpec::InboxSubscription(_)
                    | StrategySpec::StoredEvents(_)
            )
        );
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
            http: self.verb(),
            path: spec.path.clone().unwrap_or_default(),
            parameters,
            body,
            response,
            composite: merges,
        })
    }
}
