//! Keyed-array safety: full-replacement updates that would silently delete
//! array elements (an order's shipments, keyed by carrier + tracking code)
//! are refused unless asked for, and single-element edits are done as
//! read-modify-write with a check for concurrent changes.
//!
//! Which field, which key and which tools are involved all come from the
//! generated table (`Behavior::GuardedReplace` / `Behavior::KeyedArrayMerge`).

use serde_json::{Map, Value, json};

use super::{Account, Runtime, ToolOutcome};
use crate::catalog::{INTEGRATION, KeyedArray, MergeOp, ToolDef};

type Key = Vec<String>;

fn key_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn key_of(element: &Value, array: KeyedArray) -> Key {
    array
        .key
        .iter()
        .map(|k| key_text(element.get(*k)))
        .collect()
}

/// The keys of the array `array.field` inside `object`, in order.
fn keys_in(object: &Value, array: KeyedArray) -> Vec<Key> {
    object
        .get(array.field)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|e| key_of(e, array)).collect())
        .unwrap_or_default()
}

fn key_object(key: &Key, array: KeyedArray) -> Value {
    let mut obj = Map::new();
    for (name, value) in array.key.iter().zip(key) {
        obj.insert((*name).to_owned(), Value::String(value.clone()));
    }
    Value::Object(obj)
}

fn describe(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| k.join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the resource with `reader`, taking the arguments it needs from
/// `args`. An upstream error comes back as the tool outcome to return.
async fn read(
    rt: &Runtime,
    server: &str,
    account: &Account,
    reader: &ToolDef,
    args: &Map<String, Value>,
) -> Result<Value, ToolOutcome> {
    let read_args: Map<String, Value> = args
        .iter()
        .filter(|(name, _)| reader.fields.iter().any(|f| f.name == name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let outcome = rt.direct(server, account, reader, &read_args).await;
    match outcome.structured {
        Some(value) if !outcome.is_error && value.is_object() => Ok(value),
        _ => Err(outcome),
    }
}

/// What a guarded replace checks, from its `Behavior::GuardedReplace`.
pub(super) struct Guard {
    pub(super) array: KeyedArray,
    pub(super) read_tool: &'static ToolDef,
    pub(super) override_flag: &'static str,
    /// The tool that adds one element safely, if the caller's server shows
    /// it: a refusal points to it.
    pub(super) add_tool: Option<&'static ToolDef>,
}

/// A full-replacement update: refused when it would drop elements the
/// resource has, unless `override_flag` is true.
pub(super) async fn guarded_replace(
    rt: &Runtime,
    server: &str,
    account: &Account,
    tool: &ToolDef,
    args: &Map<String, Value>,
    guard: Guard,
) -> ToolOutcome {
    let Guard {
        array,
        read_tool,
        override_flag,
        add_tool,
    } = guard;
    let Some(new_items) = args.get(array.field) else {
        // Without the array the upstream leaves it alone.
        return rt.direct(server, account, tool, args).await;
    };
    if args.get(override_flag).and_then(Value::as_bool) != Some(true) {
        let current = match read(rt, server, account, read_tool, args).await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        let requested: Vec<Key> = new_items
            .as_array()
            .map(|items| items.iter().map(|e| key_of(e, array)).collect())
            .unwrap_or_default();
        let current_keys = keys_in(&current, array);
        let dropped: Vec<Key> = current_keys
            .iter()
            .filter(|k| !requested.contains(k))
            .cloned()
            .collect();
        if !dropped.is_empty() {
            let keep: Vec<Value> = current_keys
                .iter()
                .chain(requested.iter().filter(|k| !current_keys.contains(k)))
                .map(|k| key_object(k, array))
                .collect();
            let add_hint = add_tool
                .map(|t| format!(" To add one element, use `{}` instead.", t.name))
                .unwrap_or_default();
            let message = format!(
                "Refused, nothing was changed: {service} deletes every element of `{field}` that the update omits, and this update omits {n} that exist ({key_names}): {list}. To keep them, send the full list, e.g. `{field}`: {keep}.{add_hint} To delete them on purpose, call again with `{override_flag}: true`.",
                service = INTEGRATION.title,
                field = array.field,
                n = dropped.len(),
                key_names = array.key.join(" + "),
                list = describe(&dropped),
                keep = Value::Array(keep.clone()),
            );
            let mut outcome = ToolOutcome::error(message.clone());
            outcome.structured = Some(json!({
                "error": {
                    "code": "would_delete_elements",
                    "message": message,
                    "field": array.field,
                    "would_delete": dropped.iter().map(|k| key_object(k, array)).collect::<Vec<_>>(),
                    "full_list_to_keep_them": keep,
                    "override_flag": override_flag,
                }
            }));
            return outcome;
        }
    }
    rt.direct(server, account, tool, args).await
}

/// Adds or removes one element of a keyed array by read-modify-write,
/// re-reading just before the write and retrying once when someone else
/// changed the array in between.
#[allow(clippy::too_many_arguments)]
pub(super) async fn merge(
    rt: &Runtime,
    server: &str,
    account: &Account,
    args: &Map<String, Value>,
    array: KeyedArray,
    op: MergeOp,
    read_tool: &ToolDef,
    writer: &ToolDef,
    id_arg: &str,
) -> ToolOutcome {
    let Some(id) = args.get(id_arg) else {
        return ToolOutcome::error(format!("missing required argument `{id_arg}`"));
    };
    let element: Key = array.key.iter().map(|k| key_text(args.get(*k))).collect();
    for attempt in 0..2 {
        let current = match read(rt, server, account, read_tool, args).await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        let keys = keys_in(&current, array);
        let present = keys.contains(&element);
        let new_keys: Vec<Key> = match op {
            MergeOp::Add if present => {
                // Already there: nothing to write, and nothing to lose.
                return ToolOutcome::success(current);
            }
            MergeOp::Add => keys
                .iter()
                .cloned()
                .chain(std::iter::once(element.clone()))
                .collect(),
            MergeOp::Remove if !present => {
                return ToolOutcome::error(format!(
                    "Nothing was changed: `{field}` has no element {wanted}; it has: {have}. Pass {key_names} exactly as listed.",
                    field = array.field,
                    wanted = element.join(" "),
                    have = if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        describe(&keys)
                    },
                    key_names = array.key.join(" and "),
                ));
            }
            MergeOp::Remove => keys.iter().filter(|k| **k != element).cloned().collect(),
        };
        // Someone else may have changed the array since we read it: check
        // again right before writing, and start over once if so.
        let again = match read(rt, server, account, read_tool, args).await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        if keys_in(&again, array) != keys {
            if attempt == 0 {
                continue;
            }
            return ToolOutcome::error(format!(
                "Conflict, nothing was changed: `{field}` changed twice while this call was editing it (someone else is writing to it). Read it again and retry.",
                field = array.field
            ));
        }
        let mut write_args = Map::new();
        write_args.insert(id_arg.to_owned(), id.clone());
        write_args.insert(
            array.field.to_owned(),
            Value::Array(new_keys.iter().map(|k| key_object(k, array)).collect()),
        );
        // `direct` routes the arguments and reports a routing error itself.
        return rt.direct(server, account, writer, &write_args).await;
    }
    ToolOutcome::error("Conflict, nothing was changed; retry")
}
