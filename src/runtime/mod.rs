//! Running a generated tool: validate, route, call the upstream, normalize.
//!
//! Nothing here names an upstream endpoint: every endpoint-specific fact
//! comes from the generated table in `crate::catalog`.

pub mod cursor;
mod inbox;
mod keyed;
mod project;
pub mod route;
pub mod upstream;
pub mod validate;

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::access::ToolFilter;
use crate::catalog::{Behavior, INTEGRATION, Pagination, TOOLS, ToolDef};
pub use cursor::{CursorCodec, CursorScope};
pub use inbox::{Inbox, InboxTarget, StoreInbox};
use upstream::UpstreamResponse;
pub use upstream::{Account, DEFAULT_MAX_UPSTREAM_BODY, RateLimit, UpstreamClient};
use validate::ArgumentValidator;

/// What a tool call produced: a JSON value for `structuredContent` (or the
/// error's details), whether it is an error, and upstream rate-limit state
/// when the upstream refused with 429.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub is_error: bool,
    /// Human-readable text (the JSON itself for successes).
    pub text: String,
    pub structured: Option<Value>,
    pub rate_limited: Option<RateLimit>,
    /// Upstream HTTP status, when an upstream answered (for logs).
    pub upstream_status: Option<u16>,
}

impl ToolOutcome {
    fn success(value: Value) -> Self {
        let text = serde_json::to_string(&value).unwrap_or_default();
        Self::success_with_text(value, text)
    }

    /// A success whose text (the same JSON) is already at hand.
    fn success_with_text(value: Value, text: String) -> Self {
        Self {
            is_error: false,
            text,
            structured: Some(value),
            rate_limited: None,
            upstream_status: None,
        }
    }

    /// A tool error a model can act on: the message says what to do.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            is_error: true,
            structured: Some(json!({ "error": { "message": message } })),
            text: message,
            rate_limited: None,
            upstream_status: None,
        }
    }
}

/// Shared, immutable state for running tools.
pub struct Runtime {
    client: UpstreamClient,
    cursors: CursorCodec,
    validators: Vec<ArgumentValidator>,
    /// The stored events and the accounts' inboxes (`None` without a store).
    inbox: Option<std::sync::Arc<dyn Inbox>>,
    /// Held while an inbox subscription looks for its webhook and creates it.
    subscribing: tokio::sync::Mutex<()>,
}

impl Runtime {
    pub fn new(timeout: Duration, cursors: CursorCodec) -> anyhow::Result<Self> {
        Ok(Self {
            client: UpstreamClient::new(timeout)?,
            cursors,
            validators: TOOLS.iter().map(|_| ArgumentValidator::new()).collect(),
            inbox: None,
            subscribing: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads upstream answers of at most `bytes` (default
    /// [`DEFAULT_MAX_UPSTREAM_BODY`]); a larger one is a tool error.
    pub fn with_max_upstream_body(mut self, bytes: usize) -> Self {
        self.client = self.client.with_max_body(bytes);
        self
    }

    /// The validator of `tool`, a tool of the table, kept at its index.
    fn validator(&self, tool: &ToolDef) -> Option<&ArgumentValidator> {
        self.validators.get(tool.index)
    }

    /// Runs `tool` with `arguments` for `account`, on behalf of the MCP
    /// server `server` (its id; list cursors are bound to it) that shows
    /// every tool: its messages may name any tool. Never panics on input;
    /// every failure is a tool error with a message that names its cause.
    pub async fn call(
        &self,
        server: &str,
        account: &Account,
        tool: &'static ToolDef,
        arguments: Option<Map<String, Value>>,
    ) -> ToolOutcome {
        self.call_scoped(server, account, &ToolFilter::all(), tool, arguments)
            .await
    }

    /// [`Self::call`] for a server with `filter`: its messages name only
    /// tools that server shows.
    pub async fn call_scoped(
        &self,
        server: &str,
        account: &Account,
        filter: &ToolFilter,
        tool: &'static ToolDef,
        arguments: Option<Map<String, Value>>,
    ) -> ToolOutcome {
        self.call_within(server, account, filter, tool, arguments, None)
            .await
    }

    /// [`Self::call_scoped`] with `answer_budget` (a provisioned server's
    /// setting) replacing the tool's own answer budget.
    pub async fn call_within(
        &self,
        server: &str,
        account: &Account,
        filter: &ToolFilter,
        tool: &'static ToolDef,
        arguments: Option<Map<String, Value>>,
        answer_budget: Option<u32>,
    ) -> ToolOutcome {
        let args = Value::Object(arguments.unwrap_or_default());
        if let Some(validator) = self.validator(tool)
            && let Err(problems) = validator.check(tool, &args)
        {
            return ToolOutcome::error(format!(
                "Invalid arguments for `{}` (nothing was sent to {}): {}",
                tool.name,
                INTEGRATION.title,
                problems.join("; ")
            ));
        }
        let Value::Object(args) = args else {
            return ToolOutcome::error("arguments must be a JSON object");
        };
        match tool.behavior {
            Behavior::Direct => match &tool.projection {
                Some(projection) => {
                    let budget = answer_budget.unwrap_or(projection.budget);
                    self.projected(server, account, tool, &args, projection, budget)
                        .await
                }
                None => self.direct(server, account, tool, &args).await,
            },
            Behavior::GuardedReplace {
                array,
                read_tool,
                override_flag,
                add_tool,
            } => {
                let add_tool = add_tool.filter(|t| filter.allows(t));
                keyed::guarded_replace(
                    self,
                    server,
                    account,
                    tool,
                    &args,
                    keyed::Guard {
                        array,
                        read_tool,
                        override_flag,
                        add_tool,
                    },
                )
                .await
            }
            Behavior::KeyedArrayMerge {
                array,
                op,
                read_tool,
                write_tool,
                id_arg,
            } => {
                keyed::merge(
                    self, server, account, &args, array, op, read_tool, write_tool, id_arg,
                )
                .await
            }
            Behavior::InboxSubscription {
                list_tool,
                create_tool,
                url_field,
                secret_field,
            } => {
                self.inbox_subscription(
                    server,
                    account,
                    tool,
                    &args,
                    list_tool,
                    create_tool,
                    url_field,
                    secret_field,
                )
                .await
            }
            Behavior::StoredEvents { filters, .. } => {
                self.stored_events(
                    server,
                    account,
                    tool,
                    &args,
                    filters,
                    tool.projection.as_ref(),
                    answer_budget,
                )
                .await
            }
        }
    }

    /// One upstream request, normalized.
    async fn direct(
        &self,
        server: &str,
        account: &Account,
        tool: &ToolDef,
        args: &Map<String, Value>,
    ) -> ToolOutcome {
        match self.fetch(server, account, tool, args).await {
            Ok(fetched) => self.normalize(server, tool, fetched),
            Err(outcome) => outcome,
        }
    }

    /// The one upstream request of `tool`, its answer as it came (or the
    /// error outcome when there is none).
    async fn fetch(
        &self,
        server: &str,
        account: &Account,
        tool: &ToolDef,
        args: &Map<String, Value>,
    ) -> Result<Fetched, ToolOutcome> {
        let mut request = match route::route(tool, args) {
            Ok(r) => r,
            Err(e) => {
                return Err(ToolOutcome::error(format!(
                    "Invalid arguments for `{}`: {e}",
                    tool.name
                )));
            }
        };
        let filters = tool.pagination.map(|_| cursor::filter_digest(args));
        let cursor_scope = filters.as_deref().map(|filters| CursorScope {
            server,
            tool: tool.name,
            filters,
        });
        if let (Some(paging), Some(cursor_scope)) = (tool.pagination, cursor_scope) {
            let position = match args
                .get("next_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                Some(cursor) => match self.cursors.decode_position(cursor_scope, cursor) {
                    Ok(position) => Some(position),
                    Err(e) => return Err(ToolOutcome::error(e.to_string())),
                },
                None => None,
            };
            let limit = page_limit(
                paging,
                args,
                position.as_ref().and_then(|p| p.resume.as_ref()),
            );
            request.query.retain(|(k, _)| k != paging.limit_param);
            request
                .query
                .push((paging.limit_param.to_owned(), limit.to_string()));
            for (key, value) in position.map(|p| p.params).unwrap_or_default() {
                request.query.retain(|(k, _)| *k != key);
                request.query.push((key, value));
            }
        }
        match self.client.send(account, &request).await {
            Ok(response) => Ok(Fetched { response, filters }),
            Err(e) => Err(ToolOutcome::error(e.to_string())),
        }
    }

    /// Turns an upstream answer into the tool's output shape.
    fn normalize(&self, server: &str, tool: &ToolDef, fetched: Fetched) -> ToolOutcome {
        let Fetched { response, filters } = fetched;
        let cursor_scope = filters.as_deref().map(|filters| CursorScope {
            server,
            tool: tool.name,
            filters,
        });
        let status = response.status;
        let mut outcome = if (200..300).contains(&status) {
            match self.success_value(tool, cursor_scope, &response) {
                // The upstream's own JSON is the text when it is passed
                // through unchanged (no second serialization).
                Ok((value, true)) => match std::str::from_utf8(&response.body) {
                    Ok(text) => ToolOutcome::success_with_text(value, text.trim().to_owned()),
                    Err(_) => ToolOutcome::success(value),
                },
                Ok((value, false)) => ToolOutcome::success(value),
                Err(message) => ToolOutcome::error(message),
            }
        } else if status == 404 && tool.pagination.is_some_and(|p| p.not_found_as_empty) {
            ToolOutcome::success(json!({ "items": [], "next_cursor": null }))
        } else {
            upstream_error(tool, &response)
        };
        outcome.upstream_status = Some(status);
        outcome
    }

    /// The tool's output for a 2xx answer, and whether it is the upstream
    /// body itself, unchanged.
    fn success_value(
        &self,
        tool: &ToolDef,
        cursor_scope: Option<CursorScope<'_>>,
        response: &UpstreamResponse,
    ) -> Result<(Value, bool), String> {
        let not_json = |e: serde_json::Error| {
            format!(
                "{} answered {} with a body that is not JSON: {e}",
                INTEGRATION.title, response.status
            )
        };
        if let (Some(paging), Some(cursor_scope)) = (tool.pagination, cursor_scope) {
            let items = raw_items(&response.body, paging, response.status)?
                .into_iter()
                .map(|item| serde_json::from_str(item.get()))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(not_json)?;
            let next = self.next_cursor(paging, cursor_scope, response, !items.is_empty());
            return Ok((page_value(items, next.into()), false));
        }
        let body: Value = if response.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).map_err(not_json)?
        };
        if body.is_object() {
            return Ok((body, true));
        }
        let value = match body {
            // An empty success (e.g. a delete answering 204) still gives the
            // model something structured to read.
            Value::Null => json!({ "ok": true, "status": response.status }),
            // A lookup answered as a one-element array is that element.
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            Value::Array(items) if items.is_empty() => {
                return Err(format!(
                    "{} found nothing matching these arguments",
                    INTEGRATION.title
                ));
            }
            other => json!({ "result": other }),
        };
        Ok((value, false))
    }
}

impl Runtime {
    /// The cursor to the next upstream page, from the `rel="next"` link of
    /// an answer that had items. It carries every parameter of the link but
    /// the page size (so filters stay those of the first page), and only a
    /// link that carries a cursor parameter counts.
    fn next_cursor(
        &self,
        paging: Pagination,
        scope: CursorScope<'_>,
        response: &UpstreamResponse,
        had_items: bool,
    ) -> Option<String> {
        upstream::next_link(&response.headers)
            .filter(|url| {
                had_items
                    && (paging.cursor_params.is_empty()
                        || url
                            .query_pairs()
                            .any(|(k, _)| paging.cursor_params.contains(&k.as_ref())))
            })
            .map(|url| {
                let params: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != paging.limit_param)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                self.cursors.encode(scope, params)
            })
    }
}

/// `{"items": [...], "next_cursor": ...}`, built in place (`json!` would
/// copy every item).
fn page_value(items: Vec<Value>, next_cursor: Value) -> Value {
    let mut page = Map::new();
    page.insert("items".into(), Value::Array(items));
    page.insert("next_cursor".into(), next_cursor);
    Value::Object(page)
}

/// The items of a list answer, each still the upstream's JSON text borrowed
/// from `body`: an array's elements, an object as the one item when the
/// tool says so, none for an empty body or `null`.
fn raw_items(
    body: &[u8],
    paging: Pagination,
    status: u16,
) -> Result<Vec<&serde_json::value::RawValue>, String> {
    let not_json = |e: serde_json::Error| {
        format!(
            "{} answered {status} with a body that is not JSON: {e}",
            INTEGRATION.title
        )
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Vec::new()),
        Some(b'[') => serde_json::from_slice(body).map_err(not_json),
        Some(b'{') if paging.object_as_item => {
            Ok(vec![serde_json::from_slice(body).map_err(not_json)?])
        }
        Some(_) => match serde_json::from_slice::<Value>(body).map_err(not_json)? {
            Value::Null => Ok(Vec::new()),
            other => Err(format!(
                "{} answered a list request with {}, not a list",
                INTEGRATION.title,
                json_kind(&other)
            )),
        },
    }
}

/// An upstream answer as it came, with the digest of the filters of a list
/// call (what its cursors are bound to).
struct Fetched {
    response: UpstreamResponse,
    filters: Option<String>,
}

/// The upstream page size of a list call: the caller's `limit`, unless the
/// cursor resumes inside an upstream page, which must then be fetched with
/// the size it was fetched with before.
fn page_limit(
    paging: Pagination,
    args: &Map<String, Value>,
    resume: Option<&cursor::Resume>,
) -> u64 {
    resume.map(|r| r.limit).unwrap_or_else(|| {
        args.get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(paging.default_limit))
    })
}

/// What a JSON value is, as an error message says it ("an array").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An upstream error as a tool error: status, the upstream's code, message
/// and request id, and for 429 the rate-limit fields in IETF terms.
fn upstream_error(tool: &ToolDef, response: &UpstreamResponse) -> ToolOutcome {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let code = field("code");
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&response.body);
        let text = text.trim();
        if text.is_empty() {
            "no message".to_owned()
        } else {
            text.chars().take(300).collect()
        }
    });
    let request_id = field("request_id");
    let mut error = json!({
        "status": response.status,
        "code": code,
        "message": message,
        "request_id": request_id,
    });
    let mut text = format!(
        "{} answered HTTP {}{} to `{}`: {}",
        INTEGRATION.title,
        response.status,
        code.as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        tool.name,
        message
    );
    if let Some(id) = &request_id {
        text.push_str(&format!(" [request_id {id}]"));
    }
    let mut rate_limited = None;
    let mut structured = Map::new();
    if response.status == 429 {
        let rl = RateLimit::from_headers(&response.headers);
        rate_limited = Some(rl);
        text.push_str(&format!(
            ". Rate limited: retry after {} s (ratelimit-limit {}, ratelimit-remaining {}, ratelimit-reset {} s). This server does not retry for you.",
            rl.retry_after.map_or("?".into(), |v| v.to_string()),
            rl.limit.map_or("?".into(), |v| v.to_string()),
            rl.remaining.map_or("?".into(), |v| v.to_string()),
            rl.reset.map_or("?".into(), |v| v.to_string()),
        ));
        structured.insert("ratelimit-limit".into(), json!(rl.limit));
        structured.insert("ratelimit-remaining".into(), json!(rl.remaining));
        structured.insert("ratelimit-reset".into(), json!(rl.reset));
        structured.insert("retry_after".into(), json!(rl.retry_after));
    } else if response.status == 401 || response.status == 403 {
        text.push_str(
            ". The account's API key does not allow this call; no retry will change that.",
        );
    }
    if let Some(obj) = error.as_object_mut() {
        obj.insert("message".into(), json!(text.clone()));
        obj.insert("upstream_message".into(), json!(message));
    }
    structured.insert("error".into(), error);
    ToolOutcome {
        is_error: true,
        text,
        structured: Some(Value::Object(structured)),
        rate_limited,
        upstream_status: Some(response.status),
    }
}
