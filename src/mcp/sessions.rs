//! 2025-11-25 sessions owned by the provisioned server that created them,
//! and counted against the session caps.
//!
//! rmcp's [`LocalSessionManager`] keeps the sessions; this wraps it to
//! remember which server each one belongs to. The `/mcp/{token}` layer
//! reserves a place under the caps before an `initialize` reaches rmcp
//! ([`Admission`]), and rmcp's `create_session` turns that reservation into
//! the session's owner record; when rmcp closes the session (DELETE, idle
//! timeout, end of its service) the record and its place go.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};

use crate::limits::{CapCounter, CapExceeded, CapPermit, Limits, RETRY_AFTER_SECS};
use crate::memory::Trimmer;

tokio::task_local! {
    /// The place reserved for the session an `initialize` is about to
    /// create, while rmcp handles that request.
    static RESERVED: Cell<Option<CapPermit>>;
}

/// Why rmcp could not create or use a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    /// A session was to be created without a reserved place (a path that
    /// does not go through [`Admission`]).
    #[error("no place was reserved for a new session")]
    Unreserved,
}

/// rmcp's in-memory sessions, each owned by one provisioned server.
pub struct OwnedSessions {
    inner: LocalSessionManager,
    /// Each live session's place under the caps, which names its server.
    owners: Mutex<HashMap<SessionId, CapPermit>>,
    sessions: Arc<CapCounter>,
    streams: Arc<CapCounter>,
    /// Returns the memory of ended sessions to the OS.
    trimmer: Arc<Trimmer>,
}

impl OwnedSessions {
    pub fn new(limits: &Limits) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(limits.session_idle_timeout);
        Self {
            inner,
            owners: Mutex::default(),
            sessions: CapCounter::new(limits.sessions_per_server, limits.sessions_total),
            streams: CapCounter::new(limits.streams_per_server, limits.streams_total),
            trimmer: Trimmer::new(),
        }
    }

    /// The server that owns session `id`, if it is live.
    fn owner_is(&self, id: &str, server: &str) -> bool {
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners
            .get(id)
            .is_some_and(|permit| permit.server() == server)
    }

    /// A place for one more open SSE stream of `server`.
    pub fn stream_permit(&self, server: &str) -> Result<CapPermit, CapExceeded> {
        self.streams.try_acquire(server)
    }

    /// Live sessions in total (for tests and benches).
    pub fn live(&self) -> usize {
        self.sessions.held_total()
    }
}

/// What the `/mcp/{token}` layer let through for one request: a place
/// reserved for the session it creates, or an SSE stream's place.
#[derive(Default)]
pub struct Admission {
    reserved: Option<CapPermit>,
    stream: Option<CapPermit>,
}

/// The start of a JSON-RPC message: enough to tell an `initialize`.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default)]
    method: Option<String>,
}

impl Admission {
    /// Checks a request for `server` against session ownership and the caps;
    /// the error is the answer to send. `body` is the (already read) body.
    #[allow(clippy::result_large_err)]
    pub fn check(
        sessions: &OwnedSessions,
        server: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, Response> {
        if let Some(id) = headers.get("mcp-session-id") {
            // A session answers only at the capability that created it;
            // anywhere else it does not exist.
            let owned = id.to_str().is_ok_and(|id| sessions.owner_is(id, server));
            if !owned {
                return Err(unknown_session());
            }
            if method == Method::GET {
                let stream = sessions
                    .stream_permit(server)
                    .map_err(|e| refused(e, None, "open SSE streams"))?;
                return Ok(Self {
                    stream: Some(stream),
                    ..Self::default()
                });
            }
            return Ok(Self::default());
        }
        if method != Method::POST {
            return Ok(Self::default());
        }
        let Ok(head) = serde_json::from_slice::<Head>(body) else {
            return Ok(Self::default());
        };
        if head.method.as_deref() != Some("initialize") {
            return Ok(Self::default());
        }
        let reserved = sessions
            .sessions
            .try_acquire(server)
            .map_err(|e| refused(e, head.id, "live sessions"))?;
        Ok(Self {
            reserved: Some(reserved),
            ..Self::default()
        })
    }

    /// Runs `handle` (rmcp's handling of the request) with the reserved
    /// place available to `create_session`, and ties a stream's place to
    /// the answer's body.
    pub async fn run<F>(self, handle: F) -> Response
    where
        F: Future<Output = Response>,
    {
        let response = RESERVED.scope(Cell::new(self.reserved), handle).await;
        match self.stream {
            Some(permit) => hold_while_streaming(response, permit),
            None => response,
        }
    }
}

/// Keeps `permit` until the answer's body ends or its client goes.
pub fn hold_while_streaming(response: Response, permit: CapPermit) -> Response {
    let (parts, body) = response.into_parts();
    let stream = futures::StreamExt::map(body.into_data_stream(), move |frame| {
        let _held = &permit;
        frame
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// rmcp's answer for a session it does not know.
fn unknown_session() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// The answer over a cap: 429 when this server holds its share, 503 when
/// the whole server is full; both say when to retry.
pub fn refused(exceeded: CapExceeded, id: Option<RequestId>, what: &str) -> Response {
    let (status, message, limit) = match exceeded {
        CapExceeded::PerServer { limit } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "this MCP server has reached its limit of {limit} {what}; end one (a DELETE of a session) or retry after {RETRY_AFTER_SECS} s"
            ),
            limit,
        ),
        CapExceeded::Total { limit } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server has reached its limit of {limit} {what} in total; retry after {RETRY_AFTER_SECS} s"
            ),
            limit,
        ),
    };
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32000,
            "message": message,
            "data": { "limit": limit, "retry_after": RETRY_AFTER_SECS },
        },
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

impl SessionManager for OwnedSessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let reserved = RESERVED
            .try_with(Cell::take)
            .ok()
            .flatten()
            .ok_or(SessionsError::Unreserved)?;
        let (id, transport) = self.inner.create_session().await?;
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), reserved);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let place = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let closed = self.inner.close_session(id).await;
        if place.is_some() {
            self.trimmer.released();
        }
        Ok(closed?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}
