//! Runtime strategies (guarded replace, keyed-array merge) resolved and
//! checked against the methods they use.

use crate::error::{Error, SpecError};
use crate::spec::{
    HttpMethod, InboxSubscriptionSpec, JsonType, MethodKind, MethodSpec, StoredEventsSpec,
    StrategySpec,
};

use super::method::{InputField, MethodContext};
use super::*;

impl MethodContext<'_> {
    /// Every verb a call of this method can send upstream: its own for a
    /// direct call; for a guarded replace also the read; for a keyed-array
    /// merge the read and the write (the merge sends nothing of its own).
    /// Sorted and deduplicated. Unknown strategy methods are left out: they
    /// are reported by [`Self::behavior`].
    pub(super) fn sent_verbs(&self) -> Vec<HttpMethod> {
        let verb_of = |method: &str| self.resource.spec.methods.get(method).and_then(|m| m.http);
        let mut verbs: Vec<HttpMethod> = match &self.spec.strategy {
            None => self.spec.http.into_iter().collect(),
            Some(StrategySpec::StoredEvents(_)) => Vec::new(),
            Some(StrategySpec::InboxSubscription(s)) => {
                [verb_of(&s.list_method), verb_of(&s.create_method)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Some(StrategySpec::KeyedArrayMerge(m)) => {
                [verb_of(&m.read_method), verb_of(&m.write_method)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Some(StrategySpec::GuardedReplace(g)) => [self.spec.http, verb_of(&g.read_method)]
                .into_iter()
                .flatten()
                .collect(),
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
            // An undocumented method is no tool: its strategy calls nothing.
            let own = (self.resource.name.clone(), self.method.to_string());
            if !self.names.contains_key(&own) {
                return Ok(String::new());
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
            StrategySpec::InboxSubscription(s) => self.inbox_subscription(s, inputs, &tool_of),
            StrategySpec::StoredEvents(s) => self.stored_events(s, inputs),
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

impl MethodContext<'_> {
    /// Checks an inbox subscription: a documented list and create method of
    /// this resource; URL and secret are string body fields of the create
    /// that the model never gives (no inputs of this method); every input
    /// is a create body field and a member of the listed webhooks (what an
    /// existing one is matched on), and every other required create field
    /// is an input.
    fn inbox_subscription(
        &self,
        s: &InboxSubscriptionSpec,
        inputs: &[InputField],
        tool_of: &dyn Fn(&str, &str) -> Result<String, SpecError>,
    ) -> Result<Behavior, Error> {
        const KEY: &str = "inbox_subscription";
        let list_tool = tool_of(&s.list_method, KEY)?;
        let create_tool = tool_of(&s.create_method, KEY)?;
        let methods = &self.resource.spec.methods;
        let kind_of = |m: &str| {
            methods
                .get(m)
                .and_then(|spec| spec.kind.or_else(|| MethodKind::from_method_name(m)))
        };
        for (key, method, kind) in [
            ("list_method", &s.list_method, MethodKind::List),
            ("create_method", &s.create_method, MethodKind::Create),
        ] {
            if kind_of(method) != Some(kind) {
                return Err(self
                    .err(&["strategy", KEY, key], format!("method `{method}` is not `kind: {}`; expected this resource's {} method", kind.as_str(), kind.as_str()))
                    .into());
            }
        }
        let creator = &methods[&s.create_method];
        for (key, field) in [
            ("url_field", &s.url_field),
            ("secret_field", &s.secret_field),
        ] {
            let Some(spec) = creator.body.get(field) else {
                return Err(self
                    .err(
                        &["strategy", KEY, key],
                        format!(
                            "`{field}` is not a body field of `{}`; expected one of: {}",
                            s.create_method,
                            creator.body.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .into());
            };
            let resolved = self.resolver.resolve(
                spec,
                &self.resource.name,
                self.source(),
                &["methods", self.method, "strategy"],
            )?;
            if resolved.json_type != Some(JsonType::String) {
                return Err(self
                    .err(&["strategy", KEY, key], format!("`{field}` is not a string; expected `type: string` (the runtime fills it with text)"))
                    .into());
            }
            if inputs.iter().any(|i| &i.route.name == field) {
                return Err(self
                    .err(&["strategy", KEY, key], format!("`{field}` is an input of this method, but the runtime fills it in and no model may see or set it; expected it only in `{}`'s body", s.create_method))
                    .into());
            }
        }
        let listed = self.object_schema(crate::schema::Dialect::JsonSchema)?;
        let members = listed
            .get("properties")
            .and_then(serde_json::Value::as_object);
        let is_member = |name: &str| members.is_some_and(|m| m.contains_key(name));
        if !is_member(&s.url_field) {
            return Err(self
                .err(&["strategy", KEY, "url_field"], format!("`{}` is not a member of the listed objects, so an existing subscription cannot be recognised; expected a member of the resource `object`", s.url_field))
                .into());
        }
        for input in inputs {
            let name = &input.route.name;
            if !creator.body.contains_key(&input.route.wire) || !is_member(name) {
                return Err(self
                    .err(&["strategy", KEY], format!("input `{name}` is not both a body field of `{}` and a member of the listed objects; expected inputs the webhook is created with and matched on", s.create_method))
                    .into());
            }
        }
        for (wire, field) in &creator.body {
            let filled = wire == &s.url_field || wire == &s.secret_field;
            if field.required && !filled && !inputs.iter().any(|i| &i.route.wire == wire) {
                return Err(self
                    .err(&["strategy", KEY], format!("`{}` requires body field `{wire}`, which this method does not take; expected it among this method's `body` fields", s.create_method))
                    .into());
            }
        }
        Ok(Behavior::InboxSubscription {
            list_tool,
            create_tool,
            url_field: s.url_field.clone(),
            secret_field: s.secret_field.clone(),
        })
    }

    /// Checks a stored-events list: a list method whose filters are ones
    /// the store can apply, and whose items are made only of what a stored
    /// event has.
    fn stored_events(
        &self,
        s: &StoredEventsSpec,
        inputs: &[InputField],
    ) -> Result<Behavior, Error> {
        const KEY: &str = "stored_events";
        if self.kind != MethodKind::List {
            return Err(self
                .err(&["strategy", KEY], "a stored-events strategy on a method that is not a list; expected `kind: list`")
                .into());
        }
        let mut filters = Vec::new();
        for (key, field) in &s.filters {
            let Some((_, on)) = EventFilter::ALL.iter().find(|(k, _)| k == key) else {
                let known: Vec<&str> = EventFilter::ALL.iter().map(|(k, _)| *k).collect();
                return Err(self
                    .err(
                        &["strategy", KEY, "filters", key],
                        format!(
                            "the store cannot filter events on `{key}`; expected one of: {}",
                            known.join(", ")
                        ),
                    )
                    .into());
            };
            let input = field.flat_name.clone().unwrap_or_else(|| key.clone());
            debug_assert!(inputs.iter().any(|i| i.route.name == input));
            filters.push(EventFilterRoute { input, on: *on });
        }
        let listed = self.object_schema(crate::schema::Dialect::JsonSchema)?;
        let members = listed
            .get("properties")
            .and_then(serde_json::Value::as_object)
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for member in &members {
            if !STORED_EVENT_MEMBERS.contains(&member.as_str()) {
                return Err(self
                    .source()
                    .error_at(&["object"], format!("member `{member}` is nothing a stored event has, so the runtime could never answer it; expected members among: {}", STORED_EVENT_MEMBERS.join(", ")))
                    .into());
            }
        }
        let resource = s.resource.as_ref().map(|r| EventResource {
            uri: r.uri.clone(),
            title: r.title.trim().to_string(),
            description: r.description.trim().to_string(),
        });
        if let Some(r) = &resource
            && !r.uri.contains("://")
        {
            return Err(self
                .err(
                    &["strategy", KEY, "resource", "uri"],
                    format!(
                        "`{}` is not a URI; expected `scheme://path`, e.g. `{}://events`",
                        r.uri, self.specs.integration.spec.name
                    ),
                )
                .into());
        }
        Ok(Behavior::StoredEvents { filters, resource })
    }
}

/// What the runtime answers for each stored event (its list items may use
/// any of these members, and no other).
pub const STORED_EVENT_MEMBERS: &[&str] = &[
    "id",
    "topic",
    "received_at",
    "order_id",
    "order_number",
    "customer_email",
    "tracking_code",
    "status",
    "payload",
];
