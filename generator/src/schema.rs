//! Turning spec schemas into JSON Schema (draft 2020-12) and OpenAPI 3.0
//! schema JSON, resolving `ref`s and dropping members that do not belong to
//! the direction (write-only members never appear in output).

use serde_json::{Map, Value, json};

use crate::error::{SourceFile, SpecError};
use crate::load::SpecSet;
use crate::spec::{JsonType, SchemaSpec};

/// Which side of the API a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Tool input / request: read-only members are dropped.
    Input,
    /// Tool output / response: write-only members are dropped.
    Output,
}

/// Which dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON Schema draft 2020-12 (`type: [.., "null"]`).
    JsonSchema,
    /// OpenAPI 3.0 schema objects (`nullable: true`).
    OpenApi,
}

/// Resolves references against the loaded resources.
pub struct SchemaResolver<'a> {
    specs: &'a SpecSet,
}

const MAX_DEPTH: usize = 32;

impl<'a> SchemaResolver<'a> {
    /// A resolver over all resources of `specs`.
    pub fn new(specs: &'a SpecSet) -> Self {
        SchemaResolver { specs }
    }

    /// Converts `schema`, found at `at` in `source` of resource `resource`.
    pub fn convert(
        &self,
        schema: &SchemaSpec,
        resource: &str,
        source: &SourceFile,
        at: &[&str],
        direction: Direction,
        dialect: Dialect,
    ) -> Result<Value, SpecError> {
        self.convert_inner(schema, resource, source, at, direction, dialect, 0)
    }

    /// Follows `ref` (if any) and returns the effective schema with the
    /// referring site's description, nullability and flags laid over it.
    pub fn resolve(
        &self,
        schema: &SchemaSpec,
        resource: &str,
        source: &SourceFile,
        at: &[&str],
    ) -> Result<SchemaSpec, SpecError> {
        let mut current = schema.clone();
        let mut owner = resource.to_string();
        let mut depth = 0;
        while let Some(reference) = current.reference.clone() {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(source.error_at(at, format!("`ref: {reference}` loops; expected a chain of references that ends in a schema")));
            }
            if current.json_type.is_some()
                || current.properties.is_some()
                || current.items.is_some()
            {
                return Err(source.error_at(at, "`ref` cannot be combined with `type`, `properties` or `items`; expected either a reference or an inline schema"));
            }
            let (res, name) = match reference.split_once('.') {
                Some((r, n)) => (r.to_string(), n.to_string()),
                None => (owner.clone(), reference.clone()),
            };
            let Some(target) = self
                .specs
                .resources
                .iter()
                .find(|r| r.name == res)
                .and_then(|r| r.spec.schemas.get(&name))
            else {
                let known: Vec<String> = self
                    .specs
                    .resources
                    .iter()
                    .flat_map(|r| {
                        r.spec
                            .schemas
                            .keys()
                            .map(move |k| format!("{}.{k}", r.name))
                    })
                    .collect();
                let expected = if known.is_empty() {
                    "no resource defines named `schemas:` yet; expected an inline schema, or a schema added under `schemas:`".to_string()
                } else {
                    format!("expected one of: {}", known.join(", "))
                };
                return Err(source.error_at(
                    at,
                    format!("`ref: {reference}` names no schema; {expected}"),
                ));
            };
            let mut merged = target.clone();
            merged.nullable |= current.nullable;
            merged.required |= current.required;
            merged.write_only |= current.write_only;
            merged.read_only |= current.read_only;
            if current.description.is_some() {
                merged.description = current.description.clone();
            }
            if current.flat_name.is_some() {
                merged.flat_name = current.flat_name.clone();
            }
            if current.default.is_some() {
                merged.default = current.default.clone();
            }
            owner = res;
            current = merged;
        }
        Ok(current)
    }

    #[allow(clippy::too_many_arguments)]
    fn convert_inner(
        &self,
        schema: &SchemaSpec,
        resource: &str,
        source: &SourceFile,
        at: &[&str],
        direction: Direction,
        dialect: Dialect,
        depth: usize,
    ) -> Result<Value, SpecError> {
        if depth > MAX_DEPTH {
            return Err(source.error_at(at, "schema nests too deep; expected at most 32 levels"));
        }
        let owner = match schema.reference.as_deref().and_then(|r| r.split_once('.')) {
            Some((r, _)) => r.to_string(),
            None => resource.to_string(),
        };
        let s = self.resolve(schema, resource, source, at)?;
        let mut out = Map::new();
        if let Some(t) = s.json_type {
            match (dialect, s.nullable) {
                (Dialect::JsonSchema, true) => {
                    out.insert("type".into(), json!([t.as_str(), "null"]));
                }
                _ => {
                    out.insert("type".into(), json!(t.as_str()));
                }
            }
            if dialect == Dialect::OpenApi && s.nullable {
                out.insert("nullable".into(), json!(true));
            }
            if t != JsonType::Array && s.items.is_some() {
                return Err(source.error_at(
                    at,
                    format!(
                        "`items` on a schema of type {}; expected `type: array`",
                        t.as_str()
                    ),
                ));
            }
            if t != JsonType::Object && s.properties.is_some() {
                return Err(source.error_at(
                    at,
                    format!(
                        "`properties` on a schema of type {}; expected `type: object`",
                        t.as_str()
                    ),
                ));
            }
        } else if s.items.is_some() || s.properties.is_some() || s.enum_values.is_some() {
            return Err(source.error_at(at, "schema without `type`; expected one of string, integer, number, boolean, object, array"));
        }
        if let Some(f) = &s.format {
            out.insert("format".into(), json!(f));
        }
        if let Some(values) = &s.enum_values {
            if s.json_type != Some(JsonType::String) {
                return Err(
                    source.error_at(at, "`enum` on a non-string schema; expected `type: string`")
                );
            }
            let mut list: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            if s.nullable {
                list.push(Value::Null);
            }
            out.insert("enum".into(), Value::Array(list));
        }
        if let Some(d) = &s.description {
            out.insert("description".into(), json!(d.trim_end()));
        }
        if let Some(d) = &s.default {
            out.insert("default".into(), d.clone());
        }
        if let Some(m) = s.minimum {
            out.insert("minimum".into(), json!(m));
        }
        if let Some(m) = s.maximum {
            out.insert("maximum".into(), json!(m));
        }
        if dialect == Dialect::OpenApi {
            if s.read_only {
                out.insert("readOnly".into(), json!(true));
            }
            if s.write_only {
                out.insert("writeOnly".into(), json!(true));
            }
        }
        if let Some(items) = &s.items {
            let mut path = at.to_vec();
            path.push("items");
            let v =
                self.convert_inner(items, &owner, source, &path, direction, dialect, depth + 1)?;
            out.insert("items".into(), v);
        }
        if let Some(props) = &s.properties {
            let mut members = Map::new();
            let mut required = Vec::new();
            for (name, prop) in props {
                let mut path = at.to_vec();
                path.push("properties");
                path.push(name);
                let resolved = self.resolve(prop, &owner, source, &path)?;
                let skip = match direction {
                    Direction::Input => resolved.read_only,
                    Direction::Output => resolved.write_only,
                };
                if skip {
                    continue;
                }
                if resolved.required {
                    required.push(json!(name));
                }
                let v =
                    self.convert_inner(prop, &owner, source, &path, direction, dialect, depth + 1)?;
                members.insert(name.clone(), v);
            }
            out.insert("properties".into(), Value::Object(members));
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            }
        }
        if let Some(extra) = s.additional_properties {
            out.insert("additionalProperties".into(), json!(extra));
        }
        Ok(Value::Object(out))
    }
}
