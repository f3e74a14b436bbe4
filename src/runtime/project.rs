//! Field projection and answer budgets of get and list tools.
//!
//! A get or list tool takes `fields`: paths from its output schema (member
//! names, and `parent.child` one level down). The answer keeps exactly those
//! members, plus `id` and whatever the output schema requires, so that a
//! projected answer is still valid against the schema. List tools may
//! declare default fields in the spec; `["*"]` asks for everything.
//!
//! Every answer is then held to a budget in bytes of compact JSON. A list
//! page over budget returns fewer items and a `next_cursor` that resumes
//! right after the last item returned (the same upstream page, fetched the
//! same way, at an offset); a get over budget is an error that names
//! `fields`. JSON is never cut, and every answer matches the output schema.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::cursor::{self, CursorScope, Position, Resume};
use super::{Runtime, ToolOutcome, page_limit, page_value, raw_items};
use crate::catalog::{INTEGRATION, Pagination, Projection, ToolDef};
use crate::runtime::upstream::Account;

/// The `fields` value that asks for every field.
const ALL_FIELDS: &str = "*";

/// Which members an answer object keeps: `None` keeps all of them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Selection {
    /// Member name -> `None` for the whole member, or the members kept of
    /// each nested object (or of each object in a nested array).
    members: Option<BTreeMap<String, Option<BTreeSet<String>>>>,
}

impl Selection {
    /// What the caller asked for (`fields`, or the tool's default fields),
    /// plus the paths every answer keeps.
    pub(super) fn new(projection: &Projection, args: &Map<String, Value>) -> Selection {
        let asked: Vec<&str> = match args.get("fields").and_then(Value::as_array) {
            Some(fields) => fields.iter().filter_map(Value::as_str).collect(),
            None => projection.default_fields.to_vec(),
        };
        let all = asked.contains(&ALL_FIELDS)
            || (args.get("fields").is_none() && projection.default_fields.is_empty());
        if all {
            return Selection::default();
        }
        let mut members: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
        let whole = asked
            .iter()
            .chain(projection.kept)
            .filter(|p| !p.contains('.'));
        for name in whole {
            members.insert((*name).to_owned(), None);
        }
        for path in &asked {
            if let Some((parent, child)) = path.split_once('.')
                && let Some(children) = members
                    .entry(parent.to_owned())
                    .or_insert(Some(BTreeSet::new()))
            {
                children.insert(child.to_owned());
            }
        }
        // Members a nested object requires, only where it is returned in part.
        for path in projection.kept {
            if let Some((parent, child)) = path.split_once('.')
                && let Some(Some(children)) = members.get_mut(parent)
            {
                children.insert(child.to_owned());
            }
        }
        Selection {
            members: Some(members),
        }
    }

    fn is_all(&self) -> bool {
        self.members.is_none()
    }

    /// Drops every member of `object` the selection does not keep.
    fn apply(&self, object: &mut Value) {
        let (Some(members), Value::Object(map)) = (&self.members, object) else {
            return;
        };
        map.retain(|name, _| members.contains_key(name));
        for (name, value) in map.iter_mut() {
            if let Some(Some(children)) = members.get(name) {
                let keep = |nested: &mut Value| {
                    if let Value::Object(inner) = nested {
                        inner.retain(|k, _| children.contains(k));
                    }
                };
                match value {
                    Value::Array(elements) => elements.iter_mut().for_each(keep),
                    other => keep(other),
                }
            }
        }
    }
}

/// Whether `item` has every member the call's `match` inputs name, equal
/// to the value given (inputs not given match everything).
fn matches_all(tool: &ToolDef, args: &Map<String, Value>, item: &Value) -> bool {
    let Some(projection) = &tool.projection else {
        return true;
    };
    projection.matches.iter().all(|name| match args.get(*name) {
        None | Some(Value::Null) => true,
        Some(wanted) => item.get(*name) == Some(wanted),
    })
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn item_id(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

/// The `id` of an item still in the upstream's JSON text, read without
/// building the item.
fn raw_item_id(item: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Id>(item.get()).ok()?.id
}

/// Where the rest of an upstream page starts: right after the item the
/// previous page ended with, found by id (the page may have shifted), else
/// at the recorded offset.
fn resume_index(items: &[&RawValue], resume: &Resume) -> usize {
    if let Some(after) = resume.after.as_deref() {
        let at_offset = resume
            .offset
            .checked_sub(1)
            .and_then(|i| items.get(i))
            .and_then(|i| raw_item_id(i));
        if at_offset.as_deref() != Some(after)
            && let Some(found) = items
                .iter()
                .position(|i| raw_item_id(i).as_deref() == Some(after))
        {
            return found + 1;
        }
    }
    resume.offset.min(items.len())
}

/// The compact JSON of a list page whose items are `items` (each already
/// compact JSON): the bytes `serde_json` writes for [`page_value`].
fn page_text(items: &[String], next: &Value) -> String {
    let next = compact(next);
    let size = items.iter().map(|i| i.len() + 1).sum::<usize>() + next.len() + 32;
    let mut text = String::with_capacity(size);
    text.push_str(r#"{"items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(item);
    }
    text.push_str(r#"],"next_cursor":"#);
    text.push_str(&next);
    text.push('}');
    text
}

fn over_budget(tool: &ToolDef, what: &str, size: usize, budget: u32) -> ToolOutcome {
    ToolOutcome::error(format!(
        "{what} of `{}` is {size} bytes of JSON, over this server's answer budget of {budget} bytes, so nothing was returned (an answer is never cut). Ask for fewer fields with `fields`, e.g. [\"id\"] plus the paths you need; the `fields` description lists them.",
        tool.name
    ))
}

impl Runtime {
    /// Runs a get or list tool that has a projection: one upstream call,
    /// then the requested fields, within the answer budget.
    pub(super) async fn projected(
        &self,
        server: &str,
        account: &Account,
        tool: &'static ToolDef,
        args: &Map<String, Value>,
        projection: &Projection,
        budget: u32,
    ) -> ToolOutcome {
        let selection = Selection::new(projection, args);
        if let Some(paging) = tool.pagination {
            return self
                .projected_list(server, account, tool, paging, args, &selection, budget)
                .await;
        }
        let mut outcome = self.direct(server, account, tool, args).await;
        if outcome.is_error {
            return outcome;
        }
        let Some(value) = outcome.structured.take() else {
            return outcome;
        };
        let shaped = get_answer(
            tool,
            value,
            std::mem::take(&mut outcome.text),
            &selection,
            budget,
        );
        ToolOutcome {
            upstream_status: outcome.upstream_status,
            ..shaped
        }
    }

    /// A list tool's page. The upstream page stays the bytes it came as:
    /// its items are parsed and projected one at a time, and only as far as
    /// the budget reaches, so a page of several MiB is never held as a
    /// `Value` (about six times its size).
    #[allow(clippy::too_many_arguments)]
    async fn projected_list(
        &self,
        server: &str,
        account: &Account,
        tool: &'static ToolDef,
        paging: Pagination,
        args: &Map<String, Value>,
        selection: &Selection,
        budget: u32,
    ) -> ToolOutcome {
        let fetched = match self.fetch(server, account, tool, args).await {
            Ok(fetched) => fetched,
            Err(outcome) => return outcome,
        };
        let status = fetched.response.status;
        if !(200..300).contains(&status) {
            return self.normalize(server, tool, fetched);
        }
        let filters = cursor::filter_digest(args);
        let scope = CursorScope {
            server,
            tool: tool.name,
            filters: &filters,
        };
        let response = &fetched.response;
        let shaped = match raw_items(&response.body, paging, status) {
            Ok(items) => {
                let next = self
                    .next_cursor(paging, scope, response, !items.is_empty())
                    .map_or(Value::Null, Value::String);
                self.raw_list_page(tool, scope, args, &items, next, selection, budget)
            }
            Err(message) => ToolOutcome::error(message),
        };
        ToolOutcome {
            upstream_status: Some(status),
            ..shaped
        }
    }

    /// A list page, projected and cut at an item boundary to fit `budget`,
    /// from a page already built as `{items, next_cursor}` (stored events).
    pub(super) fn list_page(
        &self,
        tool: &ToolDef,
        scope: CursorScope<'_>,
        args: &Map<String, Value>,
        page: Value,
        selection: &Selection,
        budget: u32,
    ) -> ToolOutcome {
        let (items, next) = match page {
            Value::Object(mut page) => (
                page.remove("items").unwrap_or_default(),
                page.remove("next_cursor").unwrap_or_default(),
            ),
            _ => (Value::Null, Value::Null),
        };
        let items: Vec<Box<RawValue>> = match items {
            Value::Array(items) => items
                .iter()
                .filter_map(|item| serde_json::value::to_raw_value(item).ok())
                .collect(),
            _ => Vec::new(),
        };
        let items: Vec<&RawValue> = items.iter().map(AsRef::as_ref).collect();
        self.raw_list_page(tool, scope, args, &items, next, selection, budget)
    }

    /// A list page, projected and cut at an item boundary to fit `budget`.
    /// `items` is the upstream page, `upstream_next` the cursor to the next
    /// one.
    #[allow(clippy::too_many_arguments)]
    fn raw_list_page(
        &self,
        tool: &ToolDef,
        scope: CursorScope<'_>,
        args: &Map<String, Value>,
        items: &[&RawValue],
        upstream_next: Value,
        selection: &Selection,
        budget: u32,
    ) -> ToolOutcome {
        let budget = budget as usize;
        // The page this call fetched, and where inside it to start.
        let position = args
            .get("next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .and_then(|c| self.cursors.decode_position(scope, c).ok())
            .unwrap_or(Position {
                params: Vec::new(),
                resume: None,
            });
        let start = position
            .resume
            .as_ref()
            .map_or(0, |r| resume_index(items, r));
        let items = items.get(start..).unwrap_or_default();
        // A `limit` passed with a cursor that resumes inside an upstream
        // page caps this page too (the upstream page itself is fetched with
        // the size it had, so that the offset still means the same item).
        let wanted = args
            .get("limit")
            .and_then(Value::as_u64)
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(usize::MAX);

        // The items the `match` inputs keep, projected, in order, while
        // they can still fit: one past the budget cannot be part of any
        // answer, nor can the rest. `ends` is where each one ends in the
        // upstream page (a cursor after it resumes there); `more` says
        // whether a kept item follows the last one taken.
        let mut shown: Vec<Value> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        let (mut used, mut more) = (0, false);
        for (index, raw) in items.iter().enumerate() {
            if used > budget {
                break;
            }
            let mut item: Value = match serde_json::from_str(raw.get()) {
                Ok(item) => item,
                Err(e) => {
                    return ToolOutcome::error(format!(
                        "an item of {}'s answer could not be read: {e}",
                        INTEGRATION.title
                    ));
                }
            };
            if !matches_all(tool, args, &item) {
                continue;
            }
            if shown.len() == wanted {
                more = true;
                break;
            }
            ends.push(start + index + 1);
            selection.apply(&mut item);
            let text = compact(&item);
            used += text.len() + usize::from(!texts.is_empty());
            shown.push(item);
            texts.push(text);
        }

        // The upstream page size this page was fetched with: a cursor into
        // the rest of it must fetch it the same way again.
        let limit = tool.pagination.map_or(0, |paging| {
            page_limit(paging, args, position.resume.as_ref())
        });
        let resume_at = |count: usize, shown: &[Value]| -> Value {
            let cursor = self.cursors.encode_position(
                scope,
                Position {
                    params: position.params.clone(),
                    resume: Some(Resume {
                        offset: count
                            .checked_sub(1)
                            .and_then(|i| ends.get(i))
                            .copied()
                            .unwrap_or(start),
                        limit,
                        after: shown
                            .get(count.wrapping_sub(1))
                            .and_then(item_id)
                            .map(str::to_owned),
                    }),
                },
            );
            Value::String(cursor)
        };
        if used <= budget {
            let next = if more {
                resume_at(shown.len(), &shown)
            } else {
                upstream_next
            };
            let text = page_text(&texts, &next);
            if text.len() <= budget {
                return ToolOutcome::success_with_text(page_value(shown, next), text);
            }
        }

        // Over budget: the most items that fit with a cursor to the rest.
        let cursor_len = compact(&resume_at(texts.len(), &shown)).len();
        let frame = r#"{"items":[],"next_cursor":}"#.len() + cursor_len;
        let mut count = 0;
        let mut used = frame;
        for text in &texts {
            let size = text.len() + usize::from(count > 0);
            if used + size > budget {
                break;
            }
            used += size;
            count += 1;
        }
        // The estimate used one cursor's length; make sure of the real one.
        while count > 0 {
            let next = resume_at(count, &shown);
            let text = page_text(&texts[..count], &next);
            if text.len() <= budget {
                shown.truncate(count);
                return ToolOutcome::success_with_text(page_value(shown, next), text);
            }
            count -= 1;
        }
        let first = texts.first().map_or(0, String::len);
        over_budget(tool, "One item", first + frame, budget as u32)
    }
}

/// A get answer, projected, within `budget`. `upstream_text` is the
/// upstream's own JSON when the value is that body unchanged.
fn get_answer(
    tool: &ToolDef,
    mut value: Value,
    upstream_text: String,
    selection: &Selection,
    budget: u32,
) -> ToolOutcome {
    // The upstream's own bytes serve as the text only when they are
    // already compact (no pretty-printing reaches the model).
    let text = if selection.is_all() && !upstream_text.is_empty() && !upstream_text.contains('\n') {
        upstream_text
    } else {
        selection.apply(&mut value);
        compact(&value)
    };
    if text.len() > budget as usize {
        return over_budget(tool, "The answer", text.len(), budget);
    }
    ToolOutcome::success_with_text(value, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDER: Projection = Projection {
        paths: &[],
        default_fields: &["id", "number", "shipments.status"],
        kept: &["id", "shipments.id"],
        budget: 1000,
        matches: &[],
    };

    fn order() -> Value {
        json!({
            "id": "o1", "number": "1000", "email": "a@example.com",
            "customer": {"email": "a@example.com", "first_name": "A"},
            "shipments": [
                {"id": "s1", "status": "failure", "carrier": "usps", "scan_events": [{}]},
                {"id": "s2", "status": "delivered", "carrier": "ups", "scan_events": []}
            ]
        })
    }

    fn projected(args: Value) -> Value {
        let Value::Object(args) = args else {
            unreachable!()
        };
        let mut value = order();
        Selection::new(&ORDER, &args).apply(&mut value);
        value
    }

    #[test]
    fn default_fields_apply_without_fields_and_keep_required_nested_members() {
        assert_eq!(
            projected(json!({})),
            json!({"id": "o1", "number": "1000", "shipments": [
                {"id": "s1", "status": "failure"}, {"id": "s2", "status": "delivered"}
            ]})
        );
    }

    #[test]
    fn named_fields_replace_the_defaults_and_id_stays() {
        assert_eq!(
            projected(json!({"fields": ["customer.first_name", "email"]})),
            json!({"id": "o1", "email": "a@example.com", "customer": {"first_name": "A"}})
        );
    }

    #[test]
    fn a_whole_member_wins_over_its_children() {
        assert_eq!(
            projected(json!({"fields": ["customer", "customer.email"]})),
            json!({"id": "o1", "customer": {"email": "a@example.com", "first_name": "A"}})
        );
    }

    #[test]
    fn star_returns_everything() {
        assert_eq!(projected(json!({"fields": ["*"]})), order());
        assert_eq!(projected(json!({"fields": ["id", "*"]})), order());
    }

    #[test]
    fn resuming_starts_after_the_last_item_even_if_the_page_shifted() {
        let owned: Vec<Box<RawValue>> = ["a", "b", "c", "d"]
            .iter()
            .filter_map(|id| serde_json::value::to_raw_value(&json!({"n": 1, "id": id})).ok())
            .collect();
        let items: Vec<&RawValue> = owned.iter().map(AsRef::as_ref).collect();
        let resume = |offset, after: &str| Resume {
            offset,
            limit: 4,
            after: Some(after.to_owned()),
        };
        assert_eq!(resume_index(&items, &resume(2, "b")), 2);
        // One item was inserted before `b`: `b` is now third.
        assert_eq!(resume_index(&items, &resume(1, "b")), 2);
        // `b` is gone: fall back to the offset.
        assert_eq!(resume_index(&items, &resume(2, "x")), 2);
        assert_eq!(resume_index(&items, &resume(9, "x")), 4);
    }

    #[test]
    fn a_page_is_written_as_serde_json_writes_it() {
        let items = vec![json!({"id": "a", "n": [1, 2]}), json!({"id": "b\"q"})];
        let texts: Vec<String> = items.iter().map(compact).collect();
        for next in [Value::Null, json!("cursor")] {
            assert_eq!(
                page_text(&texts, &next),
                compact(&page_value(items.clone(), next.clone()))
            );
        }
        assert_eq!(
            page_text(&[], &Value::Null),
            r#"{"items":[],"next_cursor":null}"#
        );
    }
}
