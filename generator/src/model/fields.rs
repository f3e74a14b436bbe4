//! Field projection and answer budgets of get and list tools: the paths a
//! tool's `fields` input accepts, derived from its output schema, and the
//! spec's default fields and budget.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::render;
use crate::spec::MethodKind;

use super::method::{InputField, MethodContext};
use super::{Behavior, Location, Projection, Route};

/// The `fields` value that asks for every field.
pub const ALL_FIELDS: &str = "*";

#[derive(Serialize)]
struct FieldsContext<'a> {
    role: &'a str,
    default_fields: &'a [String],
    budget: u32,
    paginated: bool,
}

#[derive(Serialize)]
struct MatchContext<'a> {
    role: &'a str,
    name: &'a str,
    plural: &'a str,
}

/// The members of a schema one level down: its own `properties`, or those
/// of its array items.
fn nested_properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema
        .get("properties")
        .or_else(|| {
            schema
                .get("items")
                .and_then(|items| items.get("properties"))
        })
        .and_then(Value::as_object)
}

fn required_of(schema: &Value) -> impl Iterator<Item = &str> {
    let nested = schema.get("items").unwrap_or(schema);
    schema
        .get("required")
        .into_iter()
        .chain(nested.get("required"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
}

/// Every path `fields` accepts for answers of `object` (a JSON Schema): each
/// member name, then `parent.child` for each member of a nested object or of
/// a nested array's item objects. One level down only: deeper paths would
/// multiply the catalog for little gain, and a parent name returns its
/// whole subtree.
pub fn field_paths(object: &Value) -> Vec<String> {
    let Some(members) = object.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = members.keys().cloned().collect();
    for (name, member) in members {
        if let Some(children) = nested_properties(member) {
            paths.extend(children.keys().map(|child| format!("{name}.{child}")));
        }
    }
    paths
}

/// Paths every projected answer keeps so that it still matches the output
/// schema and follow-up calls work: `id` and the required members, at the
/// top level and one level down (a nested one only when its parent is
/// returned at all).
pub fn kept_paths(object: &Value) -> Vec<String> {
    let Some(members) = object.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut kept: Vec<String> = Vec::new();
    let mut keep = |path: String| {
        if !kept.contains(&path) {
            kept.push(path);
        }
    };
    if members.contains_key("id") {
        keep("id".to_owned());
    }
    for name in required_of(object) {
        keep(name.to_owned());
    }
    for (name, member) in members {
        for child in required_of(member) {
            keep(format!("{name}.{child}"));
        }
    }
    kept
}

impl MethodContext<'_> {
    /// The projection of a get or list tool that makes one upstream call
    /// (`None` for other tools), with its `fields` input schema; checks the
    /// spec's `default_fields` and `answer_budget`.
    pub(super) fn projection(
        &self,
        paginated: bool,
        behavior: &Behavior,
    ) -> Result<Option<(Projection, Value)>, Error> {
        let spec = self.spec;
        let projects = matches!(self.kind, MethodKind::List | MethodKind::Get)
            && matches!(behavior, Behavior::Direct | Behavior::StoredEvents { .. });
        if !projects {
            for (key, set) in [
                ("default_fields", !spec.default_fields.is_empty()),
                ("answer_budget", spec.answer_budget.is_some()),
                ("match", !spec.match_fields.is_empty()),
            ] {
                if set {
                    return Err(self
                        .err(&[key], format!("`{key}` on a method that is not a plain get or list; expected it only on `kind: get` or `kind: list` methods without a strategy"))
                        .into());
                }
            }
            return Ok(None);
        }
        let answer = self.object_schema(crate::schema::Dialect::JsonSchema)?;
        let paths = field_paths(&answer);
        if paths.is_empty() {
            return Ok(None);
        }
        for (i, path) in spec.default_fields.iter().enumerate() {
            if !paths.contains(path) {
                return Err(self
                    .err(
                        &["default_fields", &i.to_string()],
                        format!(
                            "`{path}` is not a field path of this method's answer; expected one of: {}",
                            paths.join(", ")
                        ),
                    )
                    .into());
            }
        }
        if !paginated && !spec.match_fields.is_empty() {
            return Err(self
                .err(
                    &["match"],
                    "`match` on a method that does not page; expected it only on list methods",
                )
                .into());
        }
        let budget = spec
            .answer_budget
            .unwrap_or(self.specs.integration.spec.answer_budget);
        if budget == 0 {
            return Err(self
                .err(
                    &["answer_budget"],
                    "an answer budget of 0 bytes; expected a positive number of bytes",
                )
                .into());
        }
        let description = self.templates.render(
            render::CONTROL_FIELD,
            &FieldsContext {
                role: "fields",
                default_fields: &spec.default_fields,
                budget,
                paginated,
            },
        )?;
        let mut choices = vec![json!(ALL_FIELDS)];
        choices.extend(paths.iter().map(|p| json!(p)));
        let input = json!({
            "type": "array",
            "items": {"enum": choices},
            "description": description.trim(),
        });
        let projection = Projection {
            kept: kept_paths(&answer),
            paths,
            default_fields: spec.default_fields.clone(),
            budget,
            matches: spec.match_fields.clone(),
        };
        Ok(Some((projection, input)))
    }

    /// The inputs of the spec's `match` members: each one's schema is the
    /// item member's (a string, integer or boolean; not null), under the
    /// member's name, consumed by the runtime.
    pub(super) fn add_match_inputs(
        &self,
        inputs: &mut Vec<InputField>,
        projection: Option<&Projection>,
    ) -> Result<(), Error> {
        let Some(projection) = projection.filter(|p| !p.matches.is_empty()) else {
            return Ok(());
        };
        let answer = self.object_schema(crate::schema::Dialect::JsonSchema)?;
        let members = answer.get("properties").and_then(Value::as_object);
        for (i, name) in projection.matches.iter().enumerate() {
            let at = ["match".to_owned(), i.to_string()];
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            let Some(member) = members.and_then(|m| m.get(name)) else {
                let known: Vec<&str> = members
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                return Err(self
                    .err(
                        &at,
                        format!(
                            "`{name}` is not a member of this list's items; expected one of: {}",
                            known.join(", ")
                        ),
                    )
                    .into());
            };
            let mut schema = Map::new();
            let types: Vec<&str> = match member.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let scalar: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
            match scalar.as_slice() {
                [t @ ("string" | "integer" | "boolean")] => {
                    schema.insert("type".into(), json!(t));
                }
                _ => {
                    return Err(self
                        .err(&at, format!("`{name}` is not a string, integer or boolean member; expected a scalar member to match items by"))
                        .into());
                }
            }
            if let Some(values) = member.get("enum") {
                let values: Vec<&Value> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| !v.is_null())
                    .collect();
                schema.insert("enum".into(), json!(values));
            }
            let description = self.templates.render(
                render::CONTROL_FIELD,
                &MatchContext {
                    role: "match",
                    name,
                    plural: &self.resource.spec.plural,
                },
            )?;
            schema.insert("description".into(), json!(description.trim()));
            if inputs.iter().any(|input| &input.route.name == name) {
                return Err(self
                    .err(&at, format!("`{name}` is already an input of this method; expected `match` to name item members that are not inputs"))
                    .into());
            }
            inputs.push(InputField {
                route: Route {
                    name: name.clone(),
                    wire: name.clone(),
                    location: Location::Control,
                    required: false,
                },
                schema: Value::Object(schema),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "number": {"type": ["string", "null"]},
                "customer": {"type": ["object", "null"], "properties": {"email": {}, "first_name": {}}},
                "meta": {"type": ["object", "null"]},
                "shipments": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"id": {}, "status": {}, "scan_events": {"type": "array", "items": {"type": "object", "properties": {"city": {}}}}},
                    "required": ["id"]
                }}
            },
            "required": ["id"]
        })
    }

    #[test]
    fn paths_are_members_and_their_members_one_level_down() {
        assert_eq!(
            field_paths(&order()),
            [
                "id",
                "number",
                "customer",
                "meta",
                "shipments",
                "customer.email",
                "customer.first_name",
                "shipments.id",
                "shipments.status",
                "shipments.scan_events",
            ]
        );
    }

    #[test]
    fn id_and_required_members_are_kept_at_both_levels() {
        assert_eq!(kept_paths(&order()), ["id", "shipments.id"]);
    }
}
