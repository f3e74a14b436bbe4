//! The event tools: pointing a webhook at this server's event inbox, and
//! paging through the events the inbox stored.
//!
//! Which tools, fields and filters are involved comes from the generated
//! table (`Behavior::InboxSubscription`, `Behavior::StoredEvents`); what
//! the runtime adds is the account's inbox (its URL and signing secret,
//! which no model sees) and the store's events.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::cursor::{self, CursorScope, Position};
use super::project::Selection;
use super::{Account, Runtime, ToolOutcome, page_limit};
use crate::catalog::{EventFilter, INTEGRATION, Projection, ToolDef};
use crate::events::{EventQuery, StoredEvent};

/// The cursor parameter of a stored-events page: the `seq` the next page
/// starts below (the store's own order, so pages never shift).
const BEFORE: &str = "before_seq";

/// Most webhook pages an inbox subscription reads before giving up (at the
/// largest page size, far more webhooks than an account has).
const MAX_WEBHOOK_PAGES: usize = 100;

/// Where an account's inbox receives deliveries.
#[derive(Clone)]
pub struct InboxTarget {
    /// The public URL Malomo posts to (`.../hooks/{token}`).
    pub url: String,
    /// The signing secret deliveries are verified with.
    pub secret: String,
}

impl std::fmt::Debug for InboxTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboxTarget { url: <redacted>, secret: <redacted> }")
    }
}

/// What the event tools need from the node: the stored events and the
/// accounts' inboxes (the store, in production).
pub trait Inbox: Send + Sync {
    /// Events of `query.account_id`, newest first, at most `query.limit`.
    fn events(&self, query: &EventQuery) -> anyhow::Result<Vec<StoredEvent>>;
    /// The account's inbox, if an administrator has created one.
    fn target(&self, account_id: &str) -> anyhow::Result<Option<InboxTarget>>;
}

/// The store as the event tools' [`Inbox`], with inbox URLs under this
/// node's public base URL.
pub struct StoreInbox {
    pub store: crate::store::Store,
    /// Where Malomo reaches this node (`http://host:port`).
    pub public_url: String,
}

impl Inbox for StoreInbox {
    fn events(&self, query: &EventQuery) -> anyhow::Result<Vec<StoredEvent>> {
        Ok(self.store.list_events(query)?)
    }

    fn target(&self, account_id: &str) -> anyhow::Result<Option<InboxTarget>> {
        Ok(self
            .store
            .inbox_delivery(account_id)?
            .map(|delivery| InboxTarget {
                url: crate::events::inbox_url(&self.public_url, &delivery.token),
                secret: delivery.secret,
            }))
    }
}

/// The answer when a call needs an inbox that this account does not have.
fn no_inbox(tool: &ToolDef) -> ToolOutcome {
    ToolOutcome::error(format!(
        "This account has no event inbox yet, so {title} has nowhere to deliver events and `{tool}` did nothing (nothing was sent to {title}). An administrator creates it once, with `malomo-mcp servers inbox --account <account>` (CLI), `POST /admin/integrated-accounts/<id>/inbox` (admin API) or the inbox button on the account's page in the console; then call `{tool}` again.",
        title = INTEGRATION.title,
        tool = tool.name,
    ))
}

/// The answer where no store backs this server (stdio).
fn no_store(tool: &ToolDef) -> ToolOutcome {
    ToolOutcome::error(format!(
        "`{}` needs the event inbox of a `malomo-mcp serve` server (with its store); this server has none (e.g. stdio), so nothing was done.",
        tool.name
    ))
}

impl Runtime {
    /// Serves the event tools from `inbox`.
    pub fn with_inbox(mut self, inbox: Arc<dyn Inbox>) -> Self {
        self.inbox = Some(inbox);
        self
    }

    /// Finds a webhook that delivers the arguments' topic to the account's
    /// inbox, else creates one; answers `{created, webhook}` without the
    /// inbox URL.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn inbox_subscription(
        &self,
        server: &str,
        account: &Account,
        tool: &'static ToolDef,
        args: &Map<String, Value>,
        lister: &'static ToolDef,
        creator: &'static ToolDef,
        url_field: &str,
        secret_field: &str,
    ) -> ToolOutcome {
        let (Some(inbox), Some(account_id)) = (&self.inbox, account.id.as_deref()) else {
            return no_store(tool);
        };
        let target = match inbox.target(account_id) {
            Ok(Some(target)) => target,
            Ok(None) => return no_inbox(tool),
            Err(e) => {
                tracing::error!(error = %e, "inbox lookup failed");
                return ToolOutcome::error(format!(
                    "could not read this account's event inbox; nothing was sent to {}",
                    INTEGRATION.title
                ));
            }
        };
        // One subscription at a time on this node, so that two concurrent
        // calls cannot both find nothing and both create.
        let _one_at_a_time = self.subscribing.lock().await;
        let wanted = |webhook: &Value| {
            webhook.get(url_field).and_then(Value::as_str) == Some(target.url.as_str())
                && args
                    .iter()
                    .all(|(name, value)| webhook.get(name) == Some(value))
        };
        let mut list_args = Map::new();
        if let Some(paging) = lister.pagination {
            list_args.insert("limit".into(), json!(paging.max_limit));
        }
        let mut found = None;
        for _ in 0..MAX_WEBHOOK_PAGES {
            let page = self.direct(server, account, lister, &list_args).await;
            let Some(value) = page.structured.as_ref().filter(|_| !page.is_error) else {
                return page;
            };
            let items = value.get("items").and_then(Value::as_array);
            found = items.and_then(|items| items.iter().find(|w| wanted(w)).cloned());
            match value.get("next_cursor").and_then(Value::as_str) {
                Some(next) if found.is_none() => {
                    list_args.insert("next_cursor".into(), json!(next));
                }
                _ => break,
            }
        }
        let (created, mut webhook) = match found {
            Some(webhook) => (false, webhook),
            None => {
                let mut create_args = args.clone();
                create_args.insert(url_field.to_owned(), json!(target.url));
                create_args.insert(secret_field.to_owned(), json!(target.secret));
                let outcome = self.direct(server, account, creator, &create_args).await;
                match outcome.structured {
                    Some(webhook) if !outcome.is_error && webhook.is_object() => (true, webhook),
                    _ => return outcome,
                }
            }
        };
        // The inbox URL carries the inbox token: no model sees it.
        if let Value::Object(members) = &mut webhook {
            members.shift_remove(url_field);
            members.shift_remove(secret_field);
        }
        ToolOutcome::success(json!({ "created": created, "webhook": webhook }))
    }

    /// A page of stored events, newest first, with the requested fields,
    /// within the answer budget. Nothing is sent upstream.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stored_events(
        &self,
        server: &str,
        account: &Account,
        tool: &'static ToolDef,
        args: &Map<String, Value>,
        filters: &[(&str, EventFilter)],
        projection: Option<&Projection>,
        budget: Option<u32>,
    ) -> ToolOutcome {
        let (Some(inbox), Some(account_id)) = (&self.inbox, account.id.as_deref()) else {
            return no_store(tool);
        };
        let Some(paging) = tool.pagination else {
            return ToolOutcome::error(format!("internal: `{}` does not page", tool.name));
        };
        let digest = cursor::filter_digest(args);
        let scope = CursorScope {
            server,
            tool: tool.name,
            filters: &digest,
        };
        let position = match args
            .get("next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        {
            Some(c) => match self.cursors.decode_position(scope, c) {
                Ok(position) => position,
                Err(e) => return ToolOutcome::error(e.to_string()),
            },
            None => Position {
                params: Vec::new(),
                resume: None,
            },
        };
        let mut query = match event_query(account_id, args, filters) {
            Ok(query) => query,
            Err(message) => {
                return ToolOutcome::error(format!(
                    "Invalid arguments for `{}`: {message}",
                    tool.name
                ));
            }
        };
        query.before_seq = position
            .params
            .iter()
            .find(|(k, _)| k == BEFORE)
            .and_then(|(_, v)| v.parse().ok());
        let limit = page_limit(paging, args, position.resume.as_ref());
        // One more than the page, to know whether another page follows.
        query.limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let mut events = match inbox.events(&query) {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "reading stored events failed");
                return ToolOutcome::error("could not read the stored events; try again");
            }
        };
        let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = match events.last() {
            Some(last) if more => json!(
                self.cursors
                    .encode(scope, vec![(BEFORE.to_owned(), last.seq.to_string())])
            ),
            _ => Value::Null,
        };
        let page = json!({
            "items": events.iter().map(event_item).collect::<Vec<_>>(),
            "next_cursor": next_cursor,
        });
        match projection {
            Some(projection) => {
                let selection = Selection::new(projection, args);
                let budget = budget.unwrap_or(projection.budget);
                self.list_page(tool, scope, args, page, &selection, budget)
            }
            None => ToolOutcome::success(page),
        }
    }
}

/// The store query the arguments ask for; the error names the argument.
fn event_query(
    account_id: &str,
    args: &Map<String, Value>,
    filters: &[(&str, EventFilter)],
) -> Result<EventQuery, String> {
    let mut query = EventQuery {
        account_id: account_id.to_owned(),
        ..EventQuery::default()
    };
    for (input, on) in filters {
        let Some(value) = args.get(*input).and_then(Value::as_str) else {
            continue;
        };
        let value = value.to_owned();
        match on {
            EventFilter::Topic => query.topic = Some(value),
            EventFilter::OrderId => query.order_id = Some(value),
            EventFilter::TrackingCode => query.tracking_code = Some(value),
            EventFilter::Since => query.since = Some(instant(input, &value)?),
        }
    }
    Ok(query)
}

/// `value` if it is an RFC 3339 date-time or a date (its start in UTC), as
/// the store takes it; the error names `input`.
fn instant(input: &str, value: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    let value = value.trim();
    let date = time::macros::format_description!("[year]-[month]-[day]");
    let valid = time::OffsetDateTime::parse(value, &Rfc3339).is_ok()
        || time::Date::parse(value, &date).is_ok();
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{input}` must be an RFC 3339 date-time such as 2026-11-25T00:00:00Z (or a date such as 2026-11-25, meaning its start in UTC), not {value:?}"
        ))
    }
}

/// One stored event as a list item: absent members are left out.
fn event_item(event: &StoredEvent) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(event.seq.to_string()));
    item.insert("topic".into(), json!(event.topic));
    item.insert("received_at".into(), json!(event.received_at));
    for (name, value) in [
        ("order_id", &event.order_id),
        ("order_number", &event.order_number),
        ("customer_email", &event.customer_email),
        ("tracking_code", &event.tracking_code),
        ("status", &event.status),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), json!(value));
        }
    }
    item.insert("payload".into(), event.payload.clone());
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_must_be_an_instant_or_a_date() {
        let filters = [("since", EventFilter::Since), ("topic", EventFilter::Topic)];
        let mut args = Map::new();
        args.insert("since".into(), json!("2026-11-25T01:00:00+01:00"));
        args.insert("topic".into(), json!("shipment.exception"));
        let query = event_query("acct", &args, &filters).expect("valid");
        assert_eq!(query.since.as_deref(), Some("2026-11-25T01:00:00+01:00"));
        args.insert("since".into(), json!("2026-11-25"));
        assert!(event_query("acct", &args, &filters).is_ok());
        assert_eq!(query.topic.as_deref(), Some("shipment.exception"));
        args.insert("since".into(), json!("today"));
        let error = event_query("acct", &args, &filters).expect_err("refused");
        assert!(error.contains("`since`"), "{error}");
    }

    #[test]
    fn an_item_leaves_out_what_the_event_does_not_have() {
        let event = StoredEvent {
            seq: 7,
            account_id: "acct".into(),
            topic: "order.created".into(),
            received_at: "2026-11-25T00:00:00Z".into(),
            order_id: Some("o1".into()),
            order_number: None,
            customer_email: None,
            tracking_code: None,
            status: None,
            payload: json!({"id": "o1"}),
        };
        assert_eq!(
            event_item(&event),
            json!({"id": "7", "topic": "order.created", "received_at": "2026-11-25T00:00:00Z", "order_id": "o1", "payload": {"id": "o1"}})
        );
    }
}
