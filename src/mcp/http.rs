//! The HTTP face of the server: `/mcp/{token}` (Streamable HTTP, by rmcp),
//! `/mcp/{token}/sse` (the 2024-11-05 HTTP+SSE transport), each also in the
//! header form (`/mcp`, `/mcp/sse` with `Authorization: Bearer <token>`),
//! `/admin/...` and `/healthz`.
//!
//! The token is the capability: it is resolved through its hash in the
//! store on every request, so a revoked or expired server stops answering at
//! once. Unknown, revoked and expired tokens get the same 404, in both forms.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::guard::HostPolicy;
use super::handler::{McpHandler, REQUEST_SCOPE, RateLimitSlot, Scope, Shared, rate_limit_headers};
use super::inline;
use super::legacy_sse::{self, LegacySessions};
use super::sessions::{self, Admission, OwnedSessions};
use crate::fair::Fairness;
use crate::limits::Limits;
use crate::runtime::Account;
use crate::store::{ResolvedServer, Store};

pub use super::guard::MAX_BODY_BYTES;

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Public base URL, used in printed and provisioned MCP URLs.
    pub public_url: String,
    /// `Host` values accepted (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted; any other present `Origin` gets 403.
    pub allowed_origins: Vec<String>,
    /// Session and stream caps (the connection limits apply below HTTP).
    pub limits: Limits,
}

impl HttpOptions {
    /// Loopback-only defaults for a server at `public_url`.
    pub fn local(public_url: &str) -> Self {
        let mut allowed_hosts = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let mut allowed_origins = vec![
            "http://localhost:*".to_owned(),
            "http://127.0.0.1:*".to_owned(),
            "http://[::1]:*".to_owned(),
        ];
        if let Ok(url) = url::Url::parse(public_url) {
            if let Some(host) = url.host_str() {
                allowed_hosts.push(host.trim_matches(['[', ']']).to_owned());
            }
            allowed_origins.push(url.origin().ascii_serialization());
        }
        allowed_hosts.dedup();
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            allowed_hosts,
            allowed_origins,
            limits: Limits::default(),
        }
    }
}

impl HttpOptions {
    /// The `Host` and `Origin` checks every transport applies.
    pub fn host_policy(&self) -> HostPolicy<'_> {
        HostPolicy {
            allowed_hosts: &self.allowed_hosts,
            allowed_origins: &self.allowed_origins,
        }
    }
}

/// State of the HTTP routes.
pub struct AppState {
    /// The handler of HTTP requests (their scope comes with each request).
    handler: McpHandler,
    store: Store,
    mcp: StreamableHttpService<McpHandler, OwnedSessions>,
    sessions: Arc<OwnedSessions>,
    legacy: LegacySessions,
    options: Arc<HttpOptions>,
    /// Each provisioned server's request rate and requests in flight.
    fairness: Fairness,
}

/// Builds the whole HTTP application.
pub fn app(
    shared: Arc<Shared>,
    store: Store,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Router {
    app_with_sessions(shared, store, options, shutdown).0
}

/// Builds the whole HTTP application; also returns its 2025-11-25 sessions
/// (to register hooks on, and for tests and benches to look into).
pub fn app_with_sessions(
    shared: Arc<Shared>,
    store: Store,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> (Router, Arc<OwnedSessions>) {
    let handler = McpHandler::per_request(shared.clone());
    let for_rmcp = handler.clone();
    let sessions = Arc::new(OwnedSessions::new(&options.limits));
    sessions.spawn_sweeper(shutdown.child_token());
    // A session's subscription to the events resource ends with it.
    let subscribers = shared.subscribers().clone();
    sessions.on_session_end(move |id| {
        subscribers.unsubscribe(&super::handler::session_key(id));
    });
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts.clone())
        .with_allowed_origins(options.allowed_origins.clone())
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_json_response(true)
        .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)))
        .with_cancellation_token(shutdown.child_token());
    // Idle sessions are kept as records, and restored from them on their
    // next request (see `sessions`).
    config.session_store = Some(sessions.clone());
    // A fresh handler per session: it refuses a second `initialize`.
    let mcp =
        StreamableHttpService::new(move || Ok(for_rmcp.for_session()), sessions.clone(), config);
    let state = AppState {
        handler,
        store: store.clone(),
        mcp,
        sessions: sessions.clone(),
        legacy: LegacySessions::new(shutdown),
        fairness: Fairness::new(&options.limits),
        options: Arc::new(options.clone()),
    };
    let admin = crate::admin::router(crate::admin::AdminState {
        store,
        public_url: options.public_url.clone(),
    });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/mcp", any(mcp_header_entry))
        .route("/mcp/{token}", any(mcp_url_entry))
        // Static segments win over `{token}` (no capability is that short).
        .route("/mcp/sse", get(legacy_sse_header_entry))
        .route(
            "/mcp/message",
            axum::routing::post(legacy_message_header_entry),
        )
        .route("/mcp/{token}/sse", get(legacy_sse_url_entry))
        .route(
            "/mcp/{token}/message",
            axum::routing::post(legacy_message_url_entry),
        )
        // Shared, not cloned per request: the rmcp service holds its config.
        .with_state(Arc::new(state))
        .merge(admin);
    (router, sessions)
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A 401 with a bearer challenge.
fn unauthorized(message: &str) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"malomo-mcp\""),
    );
    response
}

/// Same answer for unknown, revoked and expired tokens.
fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no MCP server at this URL",
    )
}

/// Where a request carries its capability token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenForm {
    /// In the path: `/mcp/{token}`; `Authorization` may carry a client token.
    Url,
    /// In `Authorization: Bearer <token>` at `/mcp`; no room for a client token.
    Header,
}

/// The capability token of a header-form request, or the 401 to answer.
#[allow(clippy::result_large_err)]
fn header_token(headers: &HeaderMap) -> Result<String, Response> {
    crate::admin::bearer_token(headers)
        .map(str::to_owned)
        .ok_or_else(|| {
            unauthorized(
                "send the MCP server's capability token as `Authorization: Bearer <token>`, \
                 or use its URL form /mcp/<token>",
            )
        })
}

/// Resolves the capability token and checks the second factor; the error
/// is the response to send.
#[allow(clippy::result_large_err)]
pub(super) fn authorize(
    store: &Store,
    token: &str,
    form: TokenForm,
    headers: &HeaderMap,
) -> Result<Scope, Response> {
    let resolved: ResolvedServer = match store.resolve_token(token) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            return Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "token lookup failed",
            ));
        }
    };
    if resolved.require_api_token_auth && form == TokenForm::Header {
        // The header already holds the capability: there is no room for
        // the client token too.
        return Err(unauthorized(
            "this MCP server requires a client token, so it cannot be used with the \
             capability token in the Authorization header: use its URL form \
             /mcp/<capability token> with `Authorization: Bearer <client token>`",
        ));
    }
    if resolved.require_api_token_auth {
        // Only a client token minted for this very server: an admin API
        // token (which can create unrestricted servers) is never accepted.
        let ok = match crate::admin::bearer_token(headers) {
            Some(t) => store.verify_client_token(&resolved.id, t).map_err(|e| {
                tracing::error!(error = %e, "client token lookup failed");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "token lookup failed",
                )
            })?,
            None => false,
        };
        if !ok {
            return Err(unauthorized(
                "this MCP server requires one of its client tokens: send \
                 `Authorization: Bearer <client token>` (admin API tokens are not accepted here)",
            ));
        }
    }
    Ok(Scope {
        account: Account {
            base_url: resolved.base_url,
            api_key: resolved.api_key,
            id: Some(resolved.account_id),
        },
        filter: resolved.filter,
        label: resolved.id,
        answer_budget: resolved.answer_budget,
    })
}

/// `/mcp/{token}`.
async fn mcp_url_entry(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    mcp_entry(&state, &token, TokenForm::Url, request).await
}

/// `/mcp` with `Authorization: Bearer <capability token>`: the same server,
/// through the same code, as `/mcp/{token}`.
async fn mcp_header_entry(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match header_token(request.headers()) {
        Ok(token) => mcp_entry(&state, &token, TokenForm::Header, request).await,
        Err(response) => response,
    }
}

async fn mcp_entry(
    state: &AppState,
    token: &str,
    form: TokenForm,
    mut request: Request,
) -> Response {
    let scope = match authorize(&state.store, token, form, request.headers()) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    // Before the body is read: a server over its share costs little more.
    let _turn = match state.fairness.admit(&scope.label) {
        Ok(turn) => turn,
        Err(refusal) => return refusal.answer().await,
    };
    let method = request.method().clone();
    // rmcp keeps the request parts (and may log them at trace level): it
    // needs neither the capability token in the path nor the second-factor
    // token, so neither goes past this point.
    request.headers_mut().remove(header::AUTHORIZATION);
    *request.uri_mut() = axum::http::Uri::from_static("/mcp");
    if let Some(is_inline) = json_post(&request, state.options.host_policy()) {
        let (parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "could not read a request body within 1 MiB",
                );
            }
        };
        if is_inline
            && let Some(response) =
                inline::answer(&state.handler, &scope, &parts.headers, &body).await
        {
            return response;
        }
        // rmcp would answer a body that is not JSON-RPC with 415, which is
        // for a wrong Content-Type.
        if let Err(refusal) = super::malformed::parse_message(&body) {
            return refusal.into_response();
        }
        request = Request::from_parts(parts, Body::from(body));
    }
    let (parts, body) = request.into_parts();
    // The connection layer has read the whole body already.
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "could not read the request body",
        );
    };
    let admission = match Admission::check(
        &state.sessions,
        &scope.label,
        &parts.method,
        &parts.headers,
        &body,
    ) {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let mut request = Request::from_parts(parts, Body::from(body));
    let slot = RateLimitSlot::default();
    let scope = Arc::new(scope);
    request.extensions_mut().insert(scope.clone());
    request.extensions_mut().insert(slot.clone());
    let response = admission
        .run(REQUEST_SCOPE.scope(scope, async {
            match state.mcp.clone().oneshot(request).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }))
        .await;
    let (mut parts, body) = response.into_parts();
    // A JSON answer is complete when it gets here, so the tool's upstream
    // rate-limit state can also go out as headers. (Streamed SSE answers
    // have sent their headers before the tool ran; the values are in the
    // tool result there.)
    let rate_limit = slot.0.lock().ok().and_then(|g| *g);
    if let Some(rl) = rate_limit {
        rate_limit_headers(&mut parts.headers, rl);
    }
    // rmcp answers a session's DELETE with 202, which clients read as a
    // failure ("Session termination failed: 202" in the Python SDK): the
    // session has ended by now, so say so.
    if method == Method::DELETE && parts.status == StatusCode::ACCEPTED {
        parts.status = StatusCode::NO_CONTENT;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::new(body))
}

/// For a POST with a JSON body (whose body is read here, to answer what is
/// not JSON-RPC with the right error): whether it may take the in-line
/// path. `None` leaves the request as it is to rmcp.
fn json_post(request: &Request, policy: super::guard::HostPolicy<'_>) -> Option<bool> {
    let json = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
        // A refused Host or Origin is rmcp's 403 before anything is read.
        && policy.check(request.headers()).is_ok();
    json.then(|| inline::eligible(request.method(), request.headers(), policy))
}

/// `GET /mcp/{token}/sse`.
async fn legacy_sse_url_entry(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let endpoint = format!("/mcp/{token}/message");
    legacy_sse_entry(&state, &token, TokenForm::Url, &headers, &endpoint)
}

/// `GET /mcp/sse` with `Authorization: Bearer <capability token>`; its
/// messages go to `/mcp/message` with the same header.
async fn legacy_sse_header_entry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    match header_token(&headers) {
        Ok(token) => legacy_sse_entry(&state, &token, TokenForm::Header, &headers, "/mcp/message"),
        Err(response) => response,
    }
}

fn legacy_sse_entry(
    state: &AppState,
    token: &str,
    form: TokenForm,
    headers: &HeaderMap,
    endpoint: &str,
) -> Response {
    if let Err(response) = state.options.host_policy().check(headers) {
        return response;
    }
    let scope = match authorize(&state.store, token, form, headers) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    if let Err(refusal) = state.fairness.admit(&scope.label) {
        return refusal.into_response();
    }
    let stream = match state.sessions.stream_permit(&scope.label) {
        Ok(permit) => permit,
        Err(exceeded) => return sessions::refused(exceeded, None, "open SSE streams"),
    };
    let handler = state.handler.scoped(scope);
    sessions::hold_while_streaming(state.legacy.open(handler, token, endpoint), stream)
}

/// `POST /mcp/{token}/message`.
async fn legacy_message_url_entry(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    axum::extract::Query(query): axum::extract::Query<legacy_sse::MessageQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    legacy_message_entry(&state, &token, TokenForm::Url, &query, &headers, &body).await
}

/// `POST /mcp/message` with `Authorization: Bearer <capability token>`.
async fn legacy_message_header_entry(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(query): axum::extract::Query<legacy_sse::MessageQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match header_token(&headers) {
        Ok(token) => {
            legacy_message_entry(&state, &token, TokenForm::Header, &query, &headers, &body).await
        }
        Err(response) => response,
    }
}

async fn legacy_message_entry(
    state: &AppState,
    token: &str,
    form: TokenForm,
    query: &legacy_sse::MessageQuery,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(response) = state.options.host_policy().check(headers) {
        return response;
    }
    let scope = match authorize(&state.store, token, form, headers) {
        Ok(scope) => scope,
        Err(response) => {
            // Revoked or expired while the stream was open: end the session.
            state.legacy.close(&query.session_id);
            return response;
        }
    };
    let _turn = match state.fairness.admit(&scope.label) {
        Ok(turn) => turn,
        Err(refusal) => return refusal.answer().await,
    };
    if body.len() > MAX_BODY_BYTES {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body over 1 MiB",
        );
    }
    state.legacy.deliver(&query.session_id, token, body).await
}
