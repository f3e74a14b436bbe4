//! Runtime strategies (guarded replace, keyed-array merge) resolved and
//! checked against the methods they use.

use crate::error::{Error, SpecError};
use crate::spec::{HttpVerb, JsonType, MethodSpec, StrategySpec};

use super::method::{InputField, MethodContext};
use super::*;

impl MethodContext<'_> {
    /// Every verb a call of this method can send upstream: its own for a
    /// direct call; for a guarded replace also the read; for a keyed-array
    /// merge the read and the write (the merge sends nothing of its own).
    /// Sorted and deduplicated. Unknown strategy methods are left out: they
    /// are reported by [`Self::behavior`].
    pub(super) fn sent_verbs(&self) -> Vec<HttpVerb> {
        let verb_of = |method: &str| self.resource.spec.methods.get(method).map(|m| m.http);
        let mut verbs: Vec<HttpVerb> = match &self.spec.strategy {
            None => vec![self.spec.http],
            Some(StrategySpec::KeyedArrayMerge(m)) => {
                [verb_of(&m.read_method), verb_of(&m.write_method)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Some(StrategySpec::GuardedReplace(g)) => {
                [Some(self.spec.http), verb_of(&g.read_method)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
        };
        verbs.sort();
        verbs.dedup();
        verbs
    }

    pub(super) fn behavior(&self, inputs: &[InputField]) -> Result<Behavior, Error> {
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
            // The runtime compares keys as text: a member that may be a
            // number, an object or null would not identify an element.
            for k in &array.key {
                let member = self.resolver.resolve(
                    &props[k],
                    &self.resource.name,
                    self.source(),
                    &["methods", self.method, "strategy"],
                )?;
                if member.json_type != Some(JsonType::String) || member.nullable {
                    return Err(self
                        .err(
                            &["strategy", key, "array", "key"],
                            format!(
                                "key member `{k}` of `{}` items is not a non-null string; expected `type: string` (keys are compared as text)",
                                array.field
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
            StrategySpec::GuardedReplace(g) => {
                let array = check_array(&g.array, self.spec, "guarded_replace")?;
                Ok(Behavior::GuardedReplace {
                    array,
                    read_tool: tool_of(&g.read_method, "guarded_replace")?,
                    override_flag: g.override_flag.clone(),
                    // Known once every tool is built (see `build`).
                    add_tool: None,
                })
            }
            StrategySpec::KeyedArrayMerge(m) => {
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
        }
    }
}
