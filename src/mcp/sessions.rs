//! 2025-11-25 sessions: owned by the provisioned server that created them,
//! counted against the session caps, and kept as small records while idle.
//!
//! A session lives in one of two forms:
//!
//! - **live**: rmcp's [`LocalSessionManager`] runs its service (a handler,
//!   three tasks and half a dozen channels: about 68 KB);
//! - **dormant**: only its [`Record`] is left: its owner's place under the
//!   caps, the client's `initialize` params (interned: a flood of identical
//!   clients shares one copy), when it was last used. A hash-table slot of
//!   under 100 bytes.
//!
//! A live session with no request in flight and no stream open for
//! [`Limits::session_evict_after`] is evicted: its service is stopped and
//! the record stays. Its next request (POST, GET or DELETE) finds no live
//! session, and rmcp restores it from the record through the
//! [`SessionStore`] interface: a fresh handler (its `initialize` flag
//! unset) gets the client's original `initialize` replayed, marked with
//! [`rmcp::transport::streamable_http_server::session::SessionRestoreMarker`],
//! so the client's own second `initialize` after a restore is still the
//! second one and refused. A session with an open stream or a request in
//! flight is never evicted, and never expires.
//!
//! A record ends on `DELETE`, after [`Limits::session_idle_timeout`] with
//! nothing in flight, or when its service fails; only then does its place
//! under the caps go, and the hooks registered with
//! [`OwnedSessions::on_session_end`] run.
//!
//! The `/mcp/{token}` layer reserves a place under the caps before an
//! `initialize` reaches rmcp ([`Admission`]); rmcp's `create_session` turns
//! it into the session's record. Every later request must name a session of
//! its own server ([`OwnedSessions::begin_use`]), and counts as in flight
//! until its answer's body has ended.
//!
//! **Per-session state outside rmcp** (a resource subscription set, say)
//! must not live in the handler: a handler lives only as long as the live
//! form. Keep it in a map keyed by the session id (the `Mcp-Session-Id`
//! header, in the request parts of every request's extensions) and forget
//! an id in a hook registered with [`OwnedSessions::on_session_end`] (in
//! [`super::http::app_with_sessions`], where `Shared` is at hand). A
//! notification for a session goes to its standalone GET stream; while one
//! is open the session stays live, so its current peer can send it.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rmcp::model::{
    ClientJsonRpcMessage, Implementation, InitializeRequestParams, RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionState, SessionStore,
    SessionStoreError,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::limits::{CapCounter, CapExceeded, CapPermit, Limits, RETRY_AFTER_SECS};
use crate::memory::Trimmer;

tokio::task_local! {
    /// The place reserved for the session an `initialize` is about to
    /// create, while rmcp handles that request.
    static RESERVED: Cell<Option<CapPermit>>;
}

/// How long a restore waits for the evicted service of its session to end.
const EVICTION_WAIT: Duration = Duration::from_secs(5);

/// The largest `initialize` params a record keeps as they came; larger ones
/// are kept without their `_meta`, experimental and extension capabilities
/// and with a short client name (what this server never reads).
const MAX_KEPT_PARAMS: usize = 2048;

/// Why rmcp could not create or use a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    /// A session was to be created without a reserved place (a path that
    /// does not go through [`Admission`]).
    #[error("no place was reserved for a new session")]
    Unreserved,
    /// rmcp minted a session id that is not a UUID.
    #[error("session id {0} is not a UUID")]
    NotUuid(SessionId),
    /// The evicted service of a session did not end in time.
    #[error("session {0} is still being evicted")]
    StillEvicting(SessionId),
}

/// A session id as a number: rmcp mints lowercase hyphenated UUIDs, and any
/// other spelling of one is another (unknown) session.
type Key = u128;

fn key_of(id: &str) -> Option<Key> {
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    (uuid.hyphenated().encode_lower(&mut buf) == id).then(|| uuid.as_u128())
}

fn id_of(key: Key) -> SessionId {
    uuid::Uuid::from_u128(key).hyphenated().to_string().into()
}

/// Where a session's service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Residency {
    /// rmcp runs it.
    Live,
    /// It was told to stop and has not ended yet.
    Evicting,
    /// Only the record is left; the next request restores the service.
    Dormant,
}

/// What is kept of a session in every form.
struct Record {
    /// Its place under the caps, which names its server.
    permit: CapPermit,
    /// The client's `initialize` params as JSON (set once the handshake
    /// succeeded); shared by every record with the same.
    params: Option<Arc<[u8]>>,
    /// When a request or stream last began or ended.
    last_used: Instant,
    /// Requests in flight and streams open.
    active: u32,
    residency: Residency,
}

#[derive(Default)]
struct Records {
    by_key: HashMap<Key, Record>,
    /// Interned `initialize` params.
    params: HashSet<Arc<[u8]>>,
}

impl Records {
    fn intern(&mut self, bytes: Vec<u8>) -> Arc<[u8]> {
        if let Some(known) = self.params.get(bytes.as_slice()) {
            return known.clone();
        }
        let params: Arc<[u8]> = bytes.into();
        self.params.insert(params.clone());
        params
    }

    fn release_params(&mut self, params: Option<Arc<[u8]>>) {
        // Held by the set and by this record alone: nobody else uses them.
        if let Some(params) = params
            && Arc::strong_count(&params) == 2
        {
            self.params.remove(&*params);
        }
    }

    fn remove(&mut self, key: Key) -> Option<Record> {
        let mut record = self.by_key.remove(&key)?;
        self.release_params(record.params.take());
        Some(record)
    }

    /// Gives back the table space of a flood that is over.
    fn shrink(&mut self) {
        if self.by_key.capacity() > 64 && self.by_key.len() * 4 < self.by_key.capacity() {
            self.by_key.shrink_to(self.by_key.len() * 2);
        }
        if self.params.capacity() > 64 && self.params.len() * 4 < self.params.capacity() {
            self.params.shrink_to(self.params.len() * 2);
        }
    }
}

/// Runs when a session ends for good (DELETE, idle timeout, failed
/// service), with its id; not when it is only evicted.
pub type SessionEndHook = Box<dyn Fn(&str) + Send + Sync>;

/// 2025-11-25 sessions, each owned by one provisioned server: live in
/// rmcp's [`LocalSessionManager`] while used, records while idle.
pub struct OwnedSessions {
    inner: LocalSessionManager,
    records: Mutex<Records>,
    /// Woken whenever an evicted service ends or a record goes.
    settled: Notify,
    sessions: Arc<CapCounter>,
    streams: Arc<CapCounter>,
    evict_after: Duration,
    idle_timeout: Duration,
    end_hooks: RwLock<Vec<SessionEndHook>>,
    /// Returns the memory of evicted and ended sessions to the OS.
    trimmer: Arc<Trimmer>,
}

fn lock(records: &Mutex<Records>) -> MutexGuard<'_, Records> {
    records.lock().unwrap_or_else(|e| e.into_inner())
}

impl OwnedSessions {
    pub fn new(limits: &Limits) -> Self {
        let mut inner = LocalSessionManager::default();
        // Idle sessions are evicted and expired by the sweeper, which knows
        // what is in flight: rmcp's keep-alive would also end a session
        // whose only sign of life is its open GET stream.
        inner.session_config.keep_alive = None;
        Self {
            inner,
            records: Mutex::default(),
            settled: Notify::new(),
            sessions: CapCounter::new(limits.sessions_per_server, limits.sessions_total),
            streams: CapCounter::new(limits.streams_per_server, limits.streams_total),
            evict_after: limits.session_evict_after,
            idle_timeout: limits.session_idle_timeout,
            end_hooks: RwLock::default(),
            trimmer: Trimmer::new(),
        }
    }

    /// Runs `hook` with the id of every session that ends from now on.
    pub fn on_session_end(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        self.end_hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    /// Evicts and expires idle sessions, a few times per eviction period,
    /// until `shutdown` or until these sessions are dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: CancellationToken) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let every = (self.evict_after.min(self.idle_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let this = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(this) = this.upgrade() else { return };
                this.sweep().await;
            }
        });
    }

    /// One pass: stops the services of sessions idle for `evict_after` and
    /// ends the records idle for `idle_timeout`.
    async fn sweep(&self) {
        let now = Instant::now();
        let mut evicted = Vec::new();
        let mut expired = Vec::new();
        {
            let mut records = lock(&self.records);
            let mut expired_keys = Vec::new();
            for (key, record) in &mut records.by_key {
                if record.active > 0 {
                    continue;
                }
                let idle = now.saturating_duration_since(record.last_used);
                if idle >= self.idle_timeout {
                    expired_keys.push(*key);
                } else if idle >= self.evict_after
                    && record.residency == Residency::Live
                    // Without params there is nothing to restore it from.
                    && record.params.is_some()
                {
                    record.residency = Residency::Evicting;
                    evicted.push(*key);
                }
            }
            for key in expired_keys {
                if let Some(record) = records.remove(key) {
                    expired.push((key, record));
                }
            }
            records.shrink();
        }
        if evicted.is_empty() && expired.is_empty() {
            return;
        }
        for key in evicted {
            // Stops the worker; its end comes back as `close_session`.
            let _ = self.inner.close_session(&id_of(key)).await;
        }
        for (key, record) in expired {
            let id = id_of(key);
            if record.residency == Residency::Live {
                let _ = self.inner.close_session(&id).await;
            }
            self.ended(&id, record);
        }
        {
            let mut live = self.inner.sessions.write().await;
            let len = live.len();
            if live.capacity() > 64 && len * 4 < live.capacity() {
                live.shrink_to(len * 2);
            }
        }
        self.trimmer.released();
    }

    /// A record has gone: its place under the caps with it.
    fn ended(&self, id: &str, record: Record) {
        drop(record);
        for hook in self
            .end_hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            hook(id);
        }
        self.settled.notify_waiters();
        self.trimmer.released();
    }

    /// Marks a request of `server` in session `id` as in flight, if the
    /// session exists and belongs to `server`; it stays in flight (and its
    /// session live) until the returned value drops.
    pub fn begin_use(self: &Arc<Self>, id: &str, server: &str) -> Option<SessionUse> {
        let key = key_of(id)?;
        let mut records = lock(&self.records);
        let record = records
            .by_key
            .get_mut(&key)
            .filter(|r| r.permit.server() == server)?;
        record.active += 1;
        record.last_used = Instant::now();
        Some(SessionUse {
            sessions: self.clone(),
            key,
        })
    }

    /// A place for one more open SSE stream of `server`.
    pub fn stream_permit(&self, server: &str) -> Result<CapPermit, CapExceeded> {
        self.streams.try_acquire(server)
    }

    /// Sessions in total, live or dormant (what the caps count).
    pub fn count(&self) -> usize {
        self.sessions.held_total()
    }

    /// Sessions whose service runs now (the rest are records).
    pub fn live(&self) -> usize {
        lock(&self.records)
            .by_key
            .values()
            .filter(|r| r.residency != Residency::Dormant)
            .count()
    }

    fn residency(&self, key: Key) -> Option<Residency> {
        lock(&self.records).by_key.get(&key).map(|r| r.residency)
    }
}

/// A request or stream in flight in one session (see
/// [`OwnedSessions::begin_use`]).
pub struct SessionUse {
    sessions: Arc<OwnedSessions>,
    key: Key,
}

impl Drop for SessionUse {
    fn drop(&mut self) {
        let mut records = lock(&self.sessions.records);
        if let Some(record) = records.by_key.get_mut(&self.key) {
            record.active = record.active.saturating_sub(1);
            record.last_used = Instant::now();
        }
    }
}

/// What a record keeps of the client's `initialize` params: all of them up
/// to [`MAX_KEPT_PARAMS`] of JSON, else what this server reads of them.
fn kept_params(params: &InitializeRequestParams) -> Option<Vec<u8>> {
    let full = serde_json::to_vec(params).ok()?;
    if full.len() <= MAX_KEPT_PARAMS {
        return Some(full);
    }
    let mut slim = params.clone();
    slim.meta = None;
    slim.capabilities.experimental = None;
    slim.capabilities.extensions = None;
    slim.client_info = Implementation::new(
        truncated(&params.client_info.name, 128),
        truncated(&params.client_info.version, 64),
    );
    let slim = serde_json::to_vec(&slim).ok()?;
    (slim.len() <= MAX_KEPT_PARAMS).then_some(slim)
}

fn truncated(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What the `/mcp/{token}` layer let through for one request: a place
/// reserved for the session it creates, an SSE stream's place, the
/// session it uses.
#[derive(Default)]
pub struct Admission {
    reserved: Option<CapPermit>,
    stream: Option<CapPermit>,
    using: Option<SessionUse>,
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
        sessions: &Arc<OwnedSessions>,
        server: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, Response> {
        if let Some(id) = headers.get("mcp-session-id") {
            // A session answers only at the capability that created it;
            // anywhere else it does not exist.
            let using = id
                .to_str()
                .ok()
                .and_then(|id| sessions.begin_use(id, server));
            let Some(using) = using else {
                return Err(unknown_session());
            };
            let stream = if method == Method::GET {
                let permit = sessions
                    .stream_permit(server)
                    .map_err(|e| refused(e, None, "open SSE streams"))?;
                Some(permit)
            } else {
                None
            };
            return Ok(Self {
                stream,
                using: Some(using),
                ..Self::default()
            });
        }
        if method != Method::POST {
            return Ok(Self::default());
        }
        let Ok(head) = serde_json::from_slice::<Head>(body) else {
            return Ok(Self::default());
        };
        if head.method.as_deref() == Some("subscriptions/listen") {
            // A 2026-07-28 listen answer stays open like a GET stream, and
            // counts as one.
            let permit = sessions
                .stream_permit(server)
                .map_err(|e| refused(e, head.id, "open SSE streams"))?;
            return Ok(Self {
                stream: Some(permit),
                ..Self::default()
            });
        }
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
    /// place available to `create_session`, and keeps the stream's place
    /// and the session's use until the answer's body ends.
    pub async fn run<F>(self, handle: F) -> Response
    where
        F: Future<Output = Response>,
    {
        let response = RESERVED.scope(Cell::new(self.reserved), handle).await;
        match (self.stream, self.using) {
            (None, None) => response,
            held => hold_while_streaming(response, held),
        }
    }
}

/// Keeps `held` until the answer's body ends or its client goes.
pub fn hold_while_streaming<T: Send + 'static>(response: Response, held: T) -> Response {
    let (parts, body) = response.into_parts();
    let stream = futures::StreamExt::map(body.into_data_stream(), move |frame| {
        let _held = &held;
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
    crate::limits::refusal(status, id, message, limit, RETRY_AFTER_SECS)
}

/// What `close_session` found.
enum Closing {
    /// No record: only make sure rmcp holds nothing either.
    Unknown,
    /// The evicted service has ended; the record stays.
    Evicted,
    /// A dormant session: nothing runs (a DELETE's `SessionStore::delete`
    /// follows and ends the record).
    Dormant,
    /// A live session ended (a DELETE, or its service ended on its own).
    Ended(Record),
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
        let Some(key) = key_of(&id) else {
            let _ = self.inner.close_session(&id).await;
            return Err(SessionsError::NotUuid(id));
        };
        lock(&self.records).by_key.insert(
            key,
            Record {
                permit: reserved,
                params: None,
                last_used: Instant::now(),
                active: 0,
                residency: Residency::Live,
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    /// Only live sessions: for a dormant one rmcp asks the session store
    /// and restores it.
    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        let live = key_of(id).and_then(|key| self.residency(key)) == Some(Residency::Live);
        Ok(live && self.inner.has_session(id).await?)
    }

    /// Called by rmcp for a DELETE and when a session's service has ended
    /// (also after an eviction).
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closing = match key_of(id) {
            None => Closing::Unknown,
            Some(key) => {
                let mut records = lock(&self.records);
                match records.by_key.get_mut(&key).map(|r| r.residency) {
                    None => Closing::Unknown,
                    Some(Residency::Evicting) => {
                        if let Some(record) = records.by_key.get_mut(&key) {
                            record.residency = Residency::Dormant;
                        }
                        Closing::Evicted
                    }
                    Some(Residency::Dormant) => Closing::Dormant,
                    Some(Residency::Live) => match records.remove(key) {
                        Some(record) => Closing::Ended(record),
                        None => Closing::Unknown,
                    },
                }
            }
        };
        match closing {
            Closing::Unknown => Ok(self.inner.close_session(id).await?),
            Closing::Evicted => {
                self.settled.notify_waiters();
                Ok(())
            }
            Closing::Dormant => Ok(()),
            Closing::Ended(record) => {
                let closed = self.inner.close_session(id).await;
                self.ended(id, record);
                Ok(closed?)
            }
        }
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

    /// Brings a dormant session's service back (rmcp then replays the
    /// client's `initialize`); waits first for an evicted one to end.
    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let Some(key) = key_of(&id) else {
            return Ok(RestoreOutcome::NotSupported);
        };
        let deadline = tokio::time::Instant::now() + EVICTION_WAIT;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut records = lock(&self.records);
                match records.by_key.get_mut(&key) {
                    None => return Ok(RestoreOutcome::NotSupported),
                    Some(record) if record.residency == Residency::Dormant => {
                        record.residency = Residency::Live;
                        break;
                    }
                    Some(record) if record.residency == Residency::Live => {
                        return Ok(RestoreOutcome::AlreadyPresent);
                    }
                    Some(_) => {}
                }
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(SessionsError::StillEvicting(id));
            }
        }
        Ok(self.inner.restore_session(id).await?)
    }
}

/// The records are rmcp's session store: rmcp saves the client's
/// `initialize` params after the handshake, loads them to restore a
/// dormant session, and deletes them after a DELETE.
#[async_trait::async_trait]
impl SessionStore for OwnedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(key) = key_of(session_id) else {
            return Ok(None);
        };
        let params = lock(&self.records)
            .by_key
            .get(&key)
            .and_then(|r| r.params.clone());
        match params {
            None => Ok(None),
            Some(params) => {
                let params: InitializeRequestParams = serde_json::from_slice(&params)?;
                Ok(Some(SessionState::new(params)))
            }
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let Some(key) = key_of(session_id) else {
            return Ok(());
        };
        let Some(params) = kept_params(&state.initialize_params) else {
            // Not restorable: it stays live until it ends.
            return Ok(());
        };
        let mut records = lock(&self.records);
        if !records.by_key.contains_key(&key) {
            return Ok(());
        }
        let params = records.intern(params);
        let old = records
            .by_key
            .get_mut(&key)
            .and_then(|record| record.params.replace(params));
        records.release_params(old);
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let Some(key) = key_of(session_id) else {
            return Ok(());
        };
        let record = lock(&self.records).remove(key);
        if let Some(record) = record {
            if record.residency != Residency::Dormant {
                let _ = self.inner.close_session(&id_of(key)).await;
            }
            self.ended(session_id, record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_minted_spelling_of_a_session_id_is_a_key() {
        let id = "0b6f3c1e-2f4a-4d5b-9c8d-7e6f5a4b3c2d";
        let key = key_of(id).expect("a uuid");
        assert_eq!(&*id_of(key), id);
        assert_eq!(key_of("0B6F3C1E-2F4A-4D5B-9C8D-7E6F5A4B3C2D"), None);
        assert_eq!(key_of("0b6f3c1e2f4a4d5b9c8d7e6f5a4b3c2d"), None);
        assert_eq!(key_of("{0b6f3c1e-2f4a-4d5b-9c8d-7e6f5a4b3c2d}"), None);
        assert_eq!(key_of("not a session"), None);
    }

    #[test]
    fn large_initialize_params_are_kept_slim_and_small_ones_whole() {
        let small: InitializeRequestParams = serde_json::from_value(serde_json::json!({
            "protocolVersion": "2025-11-25", "capabilities": {"roots": {}},
            "clientInfo": {"name": "c", "version": "1"}}))
        .expect("params");
        let kept = kept_params(&small).expect("kept");
        let back: InitializeRequestParams = serde_json::from_slice(&kept).expect("json");
        assert_eq!(
            serde_json::to_value(&back).expect("json"),
            serde_json::to_value(&small).expect("json")
        );

        let large: InitializeRequestParams = serde_json::from_value(serde_json::json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"roots": {}, "experimental": {"x": {"pad": "p".repeat(100_000)}}},
            "clientInfo": {"name": "é".repeat(10_000), "version": "1"}}))
        .expect("params");
        let kept = kept_params(&large).expect("kept");
        assert!(kept.len() <= MAX_KEPT_PARAMS, "{}", kept.len());
        let back: InitializeRequestParams = serde_json::from_slice(&kept).expect("json");
        assert!(back.capabilities.roots.is_some());
        assert!(back.capabilities.experimental.is_none());
        assert!(back.client_info.name.starts_with('é'));
    }
}
