//! The events resource (`malomo://events`, declared by the stored-events
//! list in the specs) and the notifications its subscribers get.
//!
//! A server offers the resource only when its filter shows the tool that
//! lists the stored events; reading it is that tool's first page. Clients
//! subscribe in the way of their protocol revision:
//! - 2025-11-25: `resources/subscribe` inside a session. The subscription
//!   is kept here, keyed by session id (outside rmcp's session, which may
//!   be evicted and restored), and each event of the session's account is
//!   announced with `notifications/resources/updated` on the session's
//!   standalone GET stream.
//! - 2026-07-28: `subscriptions/listen`, whose open answer stream carries
//!   the same notification for as long as the client keeps it open.
//!
//! Every announcement follows an [`EventNotice`] on the node's
//! [`EventHub`], published after the event is committed to the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{Peer, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer};
use tokio::sync::broadcast::error::RecvError;

use crate::access::ToolFilter;
use crate::catalog::{Behavior, EventResource, TOOLS, ToolDef};
use crate::events::{EventHub, EventNotice};

/// How the subscription of a connection without 2025-11-25 sessions
/// (stdio, legacy SSE) is keyed: `connection:N`.
pub const CONNECTION_PREFIX: &str = "connection:";

/// The stored-events tool that declares a resource, and that resource.
pub fn event_resource() -> Option<(&'static ToolDef, EventResource)> {
    TOOLS.iter().find_map(|tool| match tool.behavior {
        Behavior::StoredEvents {
            resource: Some(resource),
            ..
        } => Some((*tool, resource)),
        _ => None,
    })
}

/// The events resource as a server with `filter` offers it: only where the
/// filter shows the tool that lists the events.
pub fn visible_resource(filter: &ToolFilter) -> Option<(&'static ToolDef, EventResource)> {
    event_resource().filter(|(tool, _)| filter.allows(tool))
}

/// One session's subscription to the events resource.
struct Subscriber {
    /// Whose events it is told about.
    account_id: String,
    uri: &'static str,
    /// The session's side of the connection; notifications without a
    /// request go to its standalone GET stream.
    peer: Peer<RoleServer>,
}

/// The 2025-11-25 sessions subscribed to the events resource, by session id.
#[derive(Default)]
pub struct EventSubscribers {
    sessions: Mutex<HashMap<String, Subscriber>>,
    /// Whether the task that reads the hub and notifies sessions runs.
    dispatching: AtomicBool,
}

impl EventSubscribers {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscriber>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes session `session` (of `account_id`) to `uri`; starts the
    /// notifying task on the first subscription.
    pub fn subscribe(
        self: &Arc<Self>,
        hub: &EventHub,
        session: &str,
        account_id: &str,
        uri: &'static str,
        peer: Peer<RoleServer>,
    ) {
        self.sessions().insert(
            session.to_owned(),
            Subscriber {
                account_id: account_id.to_owned(),
                uri,
                peer,
            },
        );
        if !self.dispatching.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().dispatch(hub.subscribe()));
        }
    }

    /// Points the subscription of `key` (if it has one) at `peer`: the
    /// service of a 2025-11-25 session restored after eviction.
    pub fn reattach(&self, key: &str, peer: Peer<RoleServer>) {
        if let Some(subscriber) = self.sessions().get_mut(key) {
            subscriber.peer = peer;
        }
    }

    /// Ends session `session`'s subscription (`resources/unsubscribe`, or
    /// the end of the session); whether it had one.
    pub fn unsubscribe(&self, session: &str) -> bool {
        self.sessions().remove(session).is_some()
    }

    /// Sessions subscribed now (for tests and benches).
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Announces each notice to the sessions of its account, for as long
    /// as the hub lives.
    async fn dispatch(self: Arc<Self>, mut notices: tokio::sync::broadcast::Receiver<EventNotice>) {
        loop {
            match notices.recv().await {
                Ok(notice) => self.announce(Some(&notice.account_id)).await,
                // Notices were missed: tell every subscriber to look again
                // rather than leave one with a stale view.
                Err(RecvError::Lagged(_)) => self.announce(None).await,
                Err(RecvError::Closed) => break,
            }
        }
        self.dispatching.store(false, Ordering::SeqCst);
    }

    /// Sends `notifications/resources/updated` to every subscribed session
    /// of `account_id` (of every account for `None`) whose service runs.
    /// A 2025-11-25 session whose service has stopped was evicted (it had
    /// no GET stream open, so it could not have been told anyway): it keeps
    /// its subscription until the session ends. A connection without
    /// sessions (stdio, legacy SSE) that has closed is forgotten.
    async fn announce(&self, account_id: Option<&str>) {
        let targets: Vec<(&'static str, Peer<RoleServer>)> = {
            let mut sessions = self.sessions();
            sessions.retain(|key, s| {
                !(key.starts_with(CONNECTION_PREFIX) && s.peer.is_transport_closed())
            });
            sessions
                .values()
                .filter(|s| account_id.is_none_or(|a| a == s.account_id))
                .filter(|s| !s.peer.is_transport_closed())
                .map(|s| (s.uri, s.peer.clone()))
                .collect()
        };
        for (uri, peer) in targets {
            // A failed send means the service stopped meanwhile: see above.
            let _ = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await;
        }
    }
}

/// Runs one 2026-07-28 `subscriptions/listen` stream: a
/// `notifications/resources/updated` for each event of `account_id`, until
/// the client cancels or goes.
pub async fn listen(
    context: SubscriptionContext,
    hub: &EventHub,
    account_id: Option<String>,
    uri: Option<&'static str>,
) -> Result<(), McpError> {
    let wanted = uri.filter(|uri| {
        context
            .accepted()
            .resource_subscriptions
            .as_ref()
            .is_some_and(|uris| uris.iter().any(|u| u == uri))
    });
    let (Some(uri), Some(account_id)) = (wanted, account_id) else {
        context.cancelled().await;
        return Ok(());
    };
    let mut notices = hub.subscribe();
    loop {
        let notice = tokio::select! {
            () = context.cancelled() => return Ok(()),
            notice = notices.recv() => notice,
        };
        let for_us = match notice {
            Ok(notice) => notice.account_id == account_id,
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return Ok(()),
        };
        if for_us && context.sink().notify_resource_updated(uri).await.is_err() {
            // The stream has ended.
            return Ok(());
        }
    }
}
