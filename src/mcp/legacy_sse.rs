//! The 2024-11-05 HTTP+SSE transport, for older clients: `GET
//! /mcp/{token}/sse` opens an event stream whose first `endpoint` event
//! names the URL to POST messages to; answers come back on the stream.
//!
//! rmcp 3 dropped its SSE server, so this file bridges the two HTTP routes
//! to an rmcp service through channels (rmcp's `Transport` trait); the
//! protocol itself is still rmcp's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RoleServer, ServiceExt};
use rmcp::transport::Transport;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handler::McpHandler;

/// Query of the message endpoint.
#[derive(Debug, serde::Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    pub session_id: String,
}

struct Session {
    /// SHA-256 of the URL token the stream was opened with: a message must
    /// come through the same capability URL.
    token_hash: [u8; 32],
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    ct: CancellationToken,
}

/// Open legacy SSE sessions.
#[derive(Clone)]
pub struct LegacySessions {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    shutdown: CancellationToken,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Channels as an rmcp transport.
struct ChannelTransport {
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let tx = self.to_client.clone();
        async move {
            tx.send(item).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "SSE stream closed")
            })
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.from_client.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.from_client.close();
        Ok(())
    }
}

/// Removes the session when its event stream is dropped (client gone).
struct StreamGuard {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(session) = sessions.remove(&self.id)
        {
            session.ct.cancel();
        }
    }
}

impl LegacySessions {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            sessions: Arc::default(),
            shutdown,
        }
    }

    /// Opens a session served by `handler` and answers its event stream,
    /// whose `endpoint` event names `endpoint` (the message path of the
    /// URL or header form) as where to POST.
    pub fn open(&self, handler: McpHandler, token: &str, endpoint: &str) -> Response {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (to_server, from_client) = mpsc::channel(64);
        let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
        let ct = self.shutdown.child_token();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(
                id.clone(),
                Session {
                    token_hash: hash(token),
                    to_server,
                    ct: ct.clone(),
                },
            );
        }
        let transport = ChannelTransport {
            from_client,
            to_client,
        };
        let serve_ct = ct.clone();
        tokio::spawn(async move {
            match handler.serve_with_ct(transport, serve_ct).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(e) => tracing::debug!(error = %e, "legacy SSE session ended before initialize"),
            }
        });
        let endpoint = format!("{endpoint}?sessionId={id}");
        let guard = StreamGuard {
            sessions: self.sessions.clone(),
            id,
        };
        let first = futures::stream::once(async move {
            Ok::<_, Infallible>(Event::default().event("endpoint").data(endpoint))
        });
        let rest = futures::stream::unfold(
            (guard, ct, from_server),
            |(guard, ct, mut from_server)| async move {
                let message = tokio::select! {
                    m = from_server.recv() => m,
                    () = ct.cancelled() => None,
                }?;
                let data = serde_json::to_string(&message).unwrap_or_default();
                Some((
                    Ok(Event::default().event("message").data(data)),
                    (guard, ct, from_server),
                ))
            },
        );
        Sse::new(futures::StreamExt::chain(first, rest))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response()
    }

    /// Ends a session (its capability was revoked or expired).
    pub fn close(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(session) = sessions.remove(id)
        {
            session.ct.cancel();
        }
    }

    /// Hands one POSTed JSON-RPC message to its session.
    pub async fn deliver(&self, id: &str, token: &str, body: &[u8]) -> Response {
        let sender = self.sessions.lock().ok().and_then(|sessions| {
            sessions
                .get(id)
                .filter(|s| s.token_hash == hash(token))
                .map(|s| s.to_server.clone())
        });
        let Some(sender) = sender else {
            return (StatusCode::NOT_FOUND, "unknown session").into_response();
        };
        let message = match super::malformed::parse_message(body) {
            Ok(m) => m,
            Err(refusal) => return refusal.into_response(),
        };
        match sender.send(message).await {
            Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
            Err(_) => (StatusCode::NOT_FOUND, "session closed").into_response(),
        }
    }
}
