//! The MCP server handler, written by hand over the generated tool table.
//!
//! One handler serves every transport. Which account a request acts for and
//! which tools it may see come from its [`Scope`]: fixed for stdio, and for
//! HTTP put into the request's extensions by the `/mcp/{token}` layer (rmcp
//! hands the HTTP request parts to the handler through the context).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    DiscoverResult, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, Tool, ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::transport::streamable_http_server::session::SessionRestoreMarker;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use super::events::{self, EventSubscribers, event_resource, visible_resource};
use crate::access::ToolFilter;
use crate::catalog::{self, INSTRUCTIONS, INTEGRATION, Paragraph, TOOLS, ToolDef, render_text};
use crate::events::EventHub;
use crate::runtime::{Account, RateLimit, Runtime, ToolOutcome};

/// Who a request acts for and what it may use.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: Account,
    pub filter: ToolFilter,
    /// The provisioned server's id (or `stdio`): the label of its logs,
    /// and what its list cursors are bound to.
    pub label: String,
    /// The server's answer budget in bytes, replacing each tool's own.
    pub answer_budget: Option<u32>,
}

/// Where the HTTP layer collects the upstream rate-limit state of a call so
/// that it can also answer it as response headers.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSlot(pub Arc<Mutex<Option<RateLimit>>>);

/// The upstream's rate-limit state as IETF `RateLimit-*` and `Retry-After`
/// response headers.
pub(super) fn rate_limit_headers(headers: &mut HeaderMap, rl: RateLimit) {
    for (name, value) in [
        ("ratelimit-limit", rl.limit),
        ("ratelimit-remaining", rl.remaining),
        ("ratelimit-reset", rl.reset),
        ("retry-after", rl.retry_after),
    ] {
        if let Some(v) = value {
            headers.insert(name, HeaderValue::from(v));
        }
    }
}

/// State shared by every handler instance.
pub struct Shared {
    pub runtime: Runtime,
    /// Every tool of the table as MCP describes it, in table order.
    tools: Vec<Tool>,
    /// Events stored by this node's inboxes (and, on PostgreSQL, by the
    /// others'), for subscribed sessions.
    events: EventHub,
    /// The 2025-11-25 sessions subscribed to the events resource.
    subscribers: Arc<EventSubscribers>,
}

impl Shared {
    pub fn new(runtime: Runtime) -> anyhow::Result<Self> {
        Ok(Self::with_tools(runtime, Self::describe_tools()?))
    }

    /// Every tool of the table as MCP describes it (built apart from the
    /// runtime, so that a caller can do it while it opens the store).
    pub fn describe_tools() -> anyhow::Result<Vec<Tool>> {
        let all = ToolFilter::all();
        TOOLS.iter().map(|def| mcp_tool(def, &all)).collect()
    }

    /// From tools made by [`Shared::describe_tools`].
    pub fn with_tools(runtime: Runtime, tools: Vec<Tool>) -> Self {
        Self {
            runtime,
            tools,
            events: EventHub::new(),
            subscribers: Arc::default(),
        }
    }

    /// The 2025-11-25 sessions subscribed to the events resource; a session
    /// that ends should be [`EventSubscribers::unsubscribe`]d.
    pub fn subscribers(&self) -> &Arc<EventSubscribers> {
        &self.subscribers
    }

    /// The node's feed of newly stored events.
    pub fn events(&self) -> &EventHub {
        &self.events
    }

    /// The tools `filter` allows, in the table's (deterministic) order, each
    /// described for that filter: a description paragraph naming a tool the
    /// filter hides is left out.
    pub fn visible_tools(&self, filter: &ToolFilter) -> Vec<Tool> {
        TOOLS
            .iter()
            .zip(&self.tools)
            .filter(|(def, _)| filter.allows(def))
            .map(|(def, tool)| {
                let mut tool = tool.clone();
                if !names_only_shown(def.description, filter) {
                    tool.description = Some(Cow::Owned(description(def, filter)));
                }
                tool
            })
            .collect()
    }
}

/// Whether every paragraph of `text` names only tools `filter` shows (the
/// common case, where the cached full text can be sent as it is).
fn names_only_shown(text: &[Paragraph], filter: &ToolFilter) -> bool {
    text.iter()
        .all(|p| p.mentions.iter().all(|m| filter.allows(m)))
}

/// The description of `def` as a server with `filter` sends it.
pub fn description(def: &ToolDef, filter: &ToolFilter) -> String {
    render_text(def.description, |tool| filter.allows(tool))
}

/// The server `instructions` as a server with `filter` sends them: the
/// paragraphs of the specs' text that name only tools it shows.
pub fn instructions(filter: &ToolFilter) -> String {
    render_text(INSTRUCTIONS, |tool| filter.allows(tool))
}

/// Describes one generated tool for MCP, as a server with `filter` shows it.
pub fn mcp_tool(def: &ToolDef, filter: &ToolFilter) -> anyhow::Result<Tool> {
    let schemas = catalog::schemas(def).map_err(anyhow::Error::msg)?;
    let annotations = ToolAnnotations::with_title(def.title)
        .read_only(def.annotations.read_only)
        .destructive(def.annotations.destructive)
        .idempotent(def.annotations.idempotent)
        .open_world(def.annotations.open_world);
    let mut meta = rmcp::model::MetaObject::new();
    meta.insert(
        "tags".into(),
        def.tags.iter().map(|t| Value::from(*t)).collect(),
    );
    meta.insert("method".into(), Value::from(def.method));
    meta.insert("class".into(), Value::from(def.class.as_str()));
    meta.insert("custom".into(), Value::from(def.custom));
    Ok(Tool::new_with_raw(
        def.name,
        Some(Cow::Owned(description(def, filter))),
        schemas.input.clone(),
    )
    .with_title(def.title)
    .with_raw_output_schema(schemas.output.clone())
    .with_annotations(annotations)
    .with_meta(meta))
}

tokio::task_local! {
    /// The scope of the HTTP request rmcp is handling, for the handler it
    /// makes for that request (or for the session it starts): the hooks
    /// rmcp calls without a request (`get_info`, the subscription filter)
    /// then know which server they answer for.
    pub static REQUEST_SCOPE: Arc<Scope>;
}

/// The MCP handler.
#[derive(Clone)]
pub struct McpHandler {
    shared: Arc<Shared>,
    /// The scope of every request (stdio); `None` means it comes with each
    /// HTTP request.
    fixed: Option<Arc<Scope>>,
    /// The scope of the request this handler was made for, where rmcp asks
    /// without a request (see [`REQUEST_SCOPE`]).
    made_for: Option<Arc<Scope>>,
    /// What a subscription of a handler without HTTP sessions (stdio, a
    /// legacy SSE connection) is keyed by.
    connection: Arc<str>,
    /// Set by the session's `initialize`: a second one is refused. Shared
    /// by the clones of one session's handler, fresh for each session.
    initialized: Arc<AtomicBool>,
}

impl McpHandler {
    /// A handler whose scope comes with each HTTP request.
    pub fn per_request(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            fixed: None,
            made_for: None,
            connection: new_connection_key(),
            initialized: Arc::default(),
        }
    }

    /// The same handler for a new session (or one stateless request), not
    /// yet initialized.
    pub fn for_session(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            fixed: self.fixed.clone(),
            made_for: REQUEST_SCOPE.try_with(Arc::clone).ok(),
            connection: new_connection_key(),
            initialized: Arc::default(),
        }
    }

    /// A handler with one scope for its whole life (stdio).
    pub fn fixed(shared: Arc<Shared>, scope: Scope) -> Self {
        Self {
            shared,
            fixed: Some(Arc::new(scope)),
            made_for: None,
            connection: new_connection_key(),
            initialized: Arc::default(),
        }
    }

    /// The filter of the server this handler answers for when rmcp asks
    /// without a request; `None` when that is not known.
    fn known_filter(&self) -> Option<&ToolFilter> {
        self.fixed
            .as_ref()
            .or(self.made_for.as_ref())
            .map(|scope| &scope.filter)
    }

    /// What the request's subscription is keyed by: its 2025-11-25 session,
    /// else this handler's connection.
    fn subscription_key(&self, context: &RequestContext<RoleServer>) -> String {
        Self::parts(context)
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(session_key)
            .unwrap_or_else(|| format!("{}{}", events::CONNECTION_PREFIX, self.connection))
    }

    /// A handler over the same shared state, with one scope for its whole
    /// life (a legacy SSE session).
    pub fn scoped(&self, scope: Scope) -> Self {
        Self::fixed(self.shared.clone(), scope)
    }

    fn parts(context: &RequestContext<RoleServer>) -> Option<&http::request::Parts> {
        context.extensions.get::<http::request::Parts>()
    }

    fn scope(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Scope>, McpError> {
        if let Some(scope) = &self.fixed {
            return Ok(scope.clone());
        }
        Self::parts(context)
            .and_then(|p| p.extensions.get::<Arc<Scope>>())
            .cloned()
            .ok_or_else(|| McpError::internal_error("no MCP server is bound to this request", None))
    }

    /// The tool `name` if this scope may use it. A filtered tool is answered
    /// exactly like an unknown one.
    pub(super) fn allowed_tool(scope: &Scope, name: &str) -> Result<&'static ToolDef, McpError> {
        catalog::tool(name)
            .filter(|t| scope.filter.allows(t))
            .ok_or_else(|| McpError::invalid_params(format!("Unknown tool: {name}"), None))
    }

    /// Runs `tool` for `scope` and logs the call; also returns the upstream
    /// rate-limit state when the upstream refused with 429.
    pub(super) async fn run_tool(
        &self,
        scope: &Scope,
        tool: &'static ToolDef,
        arguments: Option<Map<String, Value>>,
    ) -> (CallToolResult, Option<RateLimit>) {
        let started = Instant::now();
        let outcome = self
            .shared
            .runtime
            .call_within(
                &scope.label,
                &scope.account,
                &scope.filter,
                tool,
                arguments,
                scope.answer_budget,
            )
            .await;
        tracing::info!(
            target: "malomo_mcp::tool_call",
            server = %scope.label,
            tool = tool.name,
            upstream_status = outcome.upstream_status,
            is_error = outcome.is_error,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "tool call"
        );
        let rate_limited = outcome.rate_limited;
        (to_result(outcome), rate_limited)
    }
}

impl McpHandler {
    /// The server description; with `filter`, the instructions of a server
    /// with that filter (none when the scope is only known per request).
    // `logging` is deprecated by SEP-2577 (2026-07-28) but part of the
    // 2025-11-25 revision this server also serves: clients of that revision
    // may send `logging/setLevel`, which must not be "method not found".
    #[allow(deprecated)]
    fn info(&self, filter: Option<&ToolFilter>) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_logging()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        // The events resource is the only one: a server that hides its
        // tool (or a table without one) offers no resources at all.
        let offered = match filter {
            Some(filter) => visible_resource(filter).is_some(),
            None => event_resource().is_some(),
        };
        if !offered {
            capabilities.resources = None;
        }
        let config = ServerConfig::new(capabilities).with_server_info(
            Implementation::new("malomo-mcp", env!("CARGO_PKG_VERSION"))
                .with_title(format!("{} MCP server", INTEGRATION.title)),
        );
        match filter {
            Some(filter) => config.with_instructions(instructions(filter)),
            None => config,
        }
    }
}

/// What the subscription of 2025-11-25 session `id` is keyed by.
pub fn session_key(id: &str) -> String {
    format!("session:{id}")
}

/// A key no other handler of this process has.
fn new_connection_key() -> Arc<str> {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string().into()
}

/// The answer for a resource this server does not offer (unknown, or
/// hidden by its filter: the two look the same).
fn unknown_resource(uri: &str) -> McpError {
    McpError::resource_not_found(
        format!("Unknown resource: {uri}"),
        Some(serde_json::json!({ "uri": uri })),
    )
}

impl McpHandler {
    /// The events resource if `scope` offers it and `uri` names it.
    fn offered_resource(
        scope: &Scope,
        uri: &str,
    ) -> Result<(&'static ToolDef, catalog::EventResource), McpError> {
        visible_resource(&scope.filter)
            .filter(|(_, resource)| resource.uri == uri)
            .ok_or_else(|| unknown_resource(uri))
    }
}

/// The `_meta` key of a tool error's machine-readable details.
pub const ERROR_META_KEY: &str = "malomo-mcp/error";

/// A tool error carries no `structuredContent`: clients check it against the
/// tool's output schema even on errors (TypeScript SDK 1.32 turns a mismatch
/// into a thrown -32602, so the model never sees the error), and the spec
/// asks for structured content only on success. The error's details
/// (`{"error": {status, message, ...}}`, the IETF `ratelimit-*` fields and
/// `retry_after` of an upstream 429, the shipments a refused update would
/// delete) go in `_meta` under [`ERROR_META_KEY`]; the text says the same in
/// words.
fn to_result(outcome: ToolOutcome) -> CallToolResult {
    let content = vec![ContentBlock::text(outcome.text)];
    if outcome.is_error {
        let mut result = CallToolResult::error(content);
        if let Some(details) = outcome.structured {
            let mut meta = rmcp::model::JsonObject::new();
            meta.insert(ERROR_META_KEY.to_owned(), details);
            result.meta = Some(meta.into());
        }
        result
    } else {
        let mut result = CallToolResult::success(content);
        result.structured_content = outcome.structured;
        result
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let mut config = self.info(self.known_filter());
        if self.fixed.is_none() {
            // Instructions come with `initialize` and `server/discover`,
            // from the request's own scope.
            config.instructions = None;
        }
        config
    }

    /// The handshake answer carries the instructions of the request's own
    /// server (rmcp's default would use [`Self::get_info`], which has no
    /// request to take the scope from). One `initialize` per session: a
    /// second one inside a live session would renegotiate what the client
    /// already relies on.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        if self.initialized.swap(true, Ordering::SeqCst) {
            return Err(McpError::invalid_request(
                "this session is already initialized; to start over, end it (DELETE) and send `initialize` without Mcp-Session-Id",
                None,
            ));
        }
        let scope = self.scope(&context)?;
        context.peer.set_peer_info(request.clone());
        // A session restored from its record (after eviction) has a new
        // service: its subscription, kept outside it, now notifies through
        // the new one.
        if let Some(restored) = context.extensions.get::<SessionRestoreMarker>() {
            self.shared
                .subscribers
                .reattach(&session_key(&restored.id), context.peer.clone());
        }
        let mut info = self.negotiate_initialize(&request)?;
        info.instructions = Some(instructions(&scope.filter));
        Ok(info)
    }

    /// `server/discover` (2026-07-28), scoped like `initialize`.
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        let scope = self.scope(&context)?;
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.info(Some(&scope.filter)),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let index = catalog::tool(name)?.index;
        self.shared.tools.get(index).cloned()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let scope = self.scope(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.shared.visible_tools(&scope.filter),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let scope = self.scope(&context)?;
        let tool = Self::allowed_tool(&scope, &request.name)?;
        let (result, rate_limited) = self.run_tool(&scope, tool, request.arguments).await;
        if let (Some(rl), Some(slot)) = (
            rate_limited,
            Self::parts(&context).and_then(|p| p.extensions.get::<RateLimitSlot>()),
        ) && let Ok(mut guard) = slot.0.lock()
        {
            *guard = Some(rl);
        }
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let scope = self.scope(&context)?;
        Ok(ListPromptsResult::with_all_items(super::prompts::list(
            &scope.filter,
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let scope = self.scope(&context)?;
        super::prompts::get(&scope.filter, &request.name, request.arguments.as_ref())
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let scope = self.scope(&context)?;
        let resources = visible_resource(&scope.filter)
            .map(|(_, r)| {
                Resource::new(r.uri, r.uri)
                    .with_title(r.title)
                    .with_description(r.description)
                    .with_mime_type("application/json")
            })
            .into_iter()
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    /// The events resource: the first page of the stored events, as the
    /// tool that lists them answers it.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let scope = self.scope(&context)?;
        let (tool, resource) = Self::offered_resource(&scope, &request.uri)?;
        let (result, _) = self.run_tool(&scope, tool, None).await;
        let text = match (&result.structured_content, result.is_error) {
            (Some(page), Some(false) | None) => page.to_string(),
            _ => {
                let message = result
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map(|t| t.text.clone())
                    .unwrap_or_else(|| "the events could not be read".to_owned());
                return Err(McpError::internal_error(message, None));
            }
        };
        let contents = ResourceContents::TextResourceContents {
            uri: resource.uri.to_owned(),
            mime_type: Some("application/json".to_owned()),
            text,
            meta: None,
        };
        // New events change it at any time: nobody may cache it.
        Ok(ReadResourceResult::new(vec![contents])
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private)
            .into())
    }

    /// 2025-11-25: notifications of each new event of this server's
    /// account, on the session's standalone GET stream.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let scope = self.scope(&context)?;
        let (_, resource) = Self::offered_resource(&scope, &request.uri)?;
        let Some(account_id) = scope.account.id.as_deref() else {
            return Err(McpError::invalid_request(
                "this server has no event inbox (it runs without a store, e.g. stdio), so it has no events to announce",
                None,
            ));
        };
        self.shared.subscribers.subscribe(
            &self.shared.events,
            &self.subscription_key(&context),
            account_id,
            resource.uri,
            context.peer.clone(),
        );
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let scope = self.scope(&context)?;
        Self::offered_resource(&scope, &request.uri)?;
        self.shared
            .subscribers
            .unsubscribe(&self.subscription_key(&context));
        Ok(())
    }

    /// 2026-07-28: what `subscriptions/listen` may carry here: the events
    /// resource, where this server offers it.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let offered = match self.known_filter() {
            Some(filter) => visible_resource(filter),
            None => event_resource(),
        };
        Some(match offered {
            Some((_, resource)) => SubscriptionFilter::builder()
                .resource_subscription(resource.uri)
                .build(),
            None => SubscriptionFilter::new(),
        })
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let scope = self.scope(context.request_context())?;
        let uri = visible_resource(&scope.filter).map(|(_, r)| r.uri);
        events::listen(context, &self.shared.events, scope.account.id.clone(), uri).await
    }

    /// A request for a known method lands here when its params do not fit
    /// the method's type: that is `-32602` naming the part at fault, not
    /// rmcp's default "method not found". A method the 2026-07-28 revision
    /// removed, asked for by a request of that revision, stays "method not
    /// found".
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        let declared = context.meta.protocol_version();
        let removed =
            super::malformed::removed_for(&request.method, declared.as_ref().map(|v| v.as_str()));
        Err((!removed)
            .then(|| super::malformed::invalid_params(&request.method, request.params.as_ref()))
            .flatten()
            .unwrap_or_else(|| {
                McpError::new(
                    rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                    request.method,
                    None,
                )
            }))
    }

    /// Accepted so that clients that set a level work; the server sends no
    /// log notifications (its logs go to its own output, never to clients).
    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }
}
