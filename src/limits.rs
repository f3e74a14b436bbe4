//! What one client may hold at once, and how long a connection may keep the
//! server waiting: the settings of `serve` that keep one URL holder from
//! exhausting the server for everyone else, and the counters that enforce
//! the per-server and total caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::RequestId;

/// Caps and timeouts of the HTTP server. Every field is a `serve` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open TCP connections in total; one over the cap is answered 503 and
    /// closed.
    pub max_connections: usize,
    /// A connection must deliver a complete request head within this long
    /// after it opens or after its previous answer (so it is also how long
    /// an idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// A request body must arrive completely within this long after its head.
    pub body_timeout: Duration,
    /// A connection on which no byte moves either way for this long is
    /// closed (a client that stopped reading its answers or its stream).
    pub idle_timeout: Duration,
    /// Live 2025-11-25 sessions per provisioned server.
    pub sessions_per_server: usize,
    /// Live 2025-11-25 sessions in total.
    pub sessions_total: usize,
    /// A session with no request in flight and no stream open for this
    /// long ends.
    pub session_idle_timeout: Duration,
    /// A session with no request in flight and no stream open for this
    /// long gives up its in-memory service and is kept as a small record;
    /// its next request restores it transparently.
    pub session_evict_after: Duration,
    /// Open SSE streams (Streamable HTTP `GET` streams and legacy
    /// 2024-11-05 streams) per provisioned server.
    pub streams_per_server: usize,
    /// Open SSE streams in total.
    pub streams_total: usize,
    /// Requests of one provisioned server being handled at once (an SSE
    /// stream counts until its answer starts); over it, 429.
    pub in_flight_per_server: usize,
    /// Requests per second one provisioned server may sustain (a token
    /// bucket refilled at this rate); over it, 429 before the body is read.
    pub requests_per_second_per_server: u32,
    /// Requests one provisioned server may send at once above its rate (the
    /// bucket's size).
    pub request_burst_per_server: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            sessions_per_server: 200,
            sessions_total: 5000,
            session_idle_timeout: Duration::from_secs(300),
            session_evict_after: Duration::from_secs(5),
            streams_per_server: 32,
            streams_total: 512,
            in_flight_per_server: 16,
            requests_per_second_per_server: 50,
            request_burst_per_server: 200,
        }
    }
}

/// Seconds a client refused for a cap is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 30;

/// Which cap refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    /// The provisioned server already holds `limit`.
    PerServer { limit: usize },
    /// The whole process already holds `limit`.
    Total { limit: usize },
}

/// Counts what each provisioned server holds of one kind of resource, under
/// a per-server and a total cap.
#[derive(Debug)]
pub struct CapCounter {
    per_server: usize,
    total: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    by_server: HashMap<Arc<str>, usize>,
    total: usize,
}

impl CapCounter {
    pub fn new(per_server: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_server,
            total,
            held: Mutex::default(),
        })
    }

    /// Takes one unit for `server`, given back when the permit drops.
    pub fn try_acquire(self: &Arc<Self>, server: &str) -> Result<CapPermit, CapExceeded> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.total >= self.total {
            return Err(CapExceeded::Total { limit: self.total });
        }
        let server: Arc<str> = match held.by_server.get_key_value(server) {
            Some((_, &count)) if count >= self.per_server => {
                return Err(CapExceeded::PerServer {
                    limit: self.per_server,
                });
            }
            Some((key, _)) => key.clone(),
            None => Arc::from(server),
        };
        *held.by_server.entry(server.clone()).or_insert(0) += 1;
        held.total += 1;
        Ok(CapPermit {
            counter: self.clone(),
            server,
        })
    }

    /// Units `server` holds now.
    pub fn held_by(&self, server: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.by_server.get(server).copied().unwrap_or(0)
    }

    /// Units held in total now.
    pub fn held_total(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    fn release(&self, server: &Arc<str>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_server.get_mut(server) {
            *count -= 1;
            if *count == 0 {
                // No entry per server that held something once: a flood of
                // servers leaves nothing behind.
                held.by_server.remove(server);
            }
        }
    }
}

/// One unit held for one server.
#[derive(Debug)]
pub struct CapPermit {
    counter: Arc<CapCounter>,
    server: Arc<str>,
}

impl CapPermit {
    /// The server holding it.
    pub fn server(&self) -> &str {
        &self.server
    }
}

impl Drop for CapPermit {
    fn drop(&mut self) {
        self.counter.release(&self.server);
    }
}

/// The answer to a request refused under a limit (a session or stream cap,
/// the per-server request rate or in-flight cap): HTTP `status` with
/// `Retry-After`, and a JSON-RPC error -32000 for request `id` (`null` when
/// the body was not read) whose data names the limit and when to retry.
pub fn refusal(
    status: StatusCode,
    id: Option<RequestId>,
    message: String,
    limit: usize,
    retry_after: u64,
) -> Response {
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32000,
            "message": message,
            "data": { "limit": limit, "retry_after": retry_after },
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
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_at_its_cap_leaves_room_for_others() {
        let counter = CapCounter::new(2, 3);
        let a1 = counter.try_acquire("a").expect("first");
        let _a2 = counter.try_acquire("a").expect("second");
        assert_eq!(
            counter.try_acquire("a").err(),
            Some(CapExceeded::PerServer { limit: 2 })
        );
        let _b1 = counter.try_acquire("b").expect("another server");
        assert_eq!(
            counter.try_acquire("c").err(),
            Some(CapExceeded::Total { limit: 3 })
        );
        drop(a1);
        assert_eq!(counter.held_by("a"), 1);
        let _c1 = counter.try_acquire("c").expect("room again");
        assert_eq!(counter.held_total(), 3);
    }

    #[test]
    fn released_servers_leave_no_entry() {
        let counter = CapCounter::new(1, 10);
        drop(counter.try_acquire("gone").expect("acquire"));
        assert!(counter.held.lock().expect("lock").by_server.is_empty());
        assert_eq!(counter.held_total(), 0);
    }
}
