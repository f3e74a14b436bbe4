//! Malomo events received at an account's inbox, and the in-process feed
//! that tells MCP sessions about them.
//!
//! The inbox (`POST /hooks/{token}`) verifies and stores each delivery, and
//! only after the store has committed it publishes an [`EventNotice`] on the
//! node's [`EventHub`]. On PostgreSQL, notices from other nodes arrive
//! through the change feed and are published on every node's hub, so a
//! session learns of an event whichever node received it. Subscribers read
//! the event itself from the store: a notice carries no payload.
//!
//! The types of stored events ([`StoredEvent`], [`EventQuery`]) and what the
//! inbox extracts from a delivery ([`ReceivedEvent`]) live here too, so that
//! the store, the inbox and the MCP tools share one definition.

mod received;

use std::fmt;

use tokio::sync::broadcast;

pub use received::{ReceivedEvent, ReceivedEventError};

/// One event as the store keeps it, newest first in listings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the store: increasing, never reused.
    pub seq: i64,
    pub account_id: String,
    /// The Malomo topic, e.g. `shipment.exception`.
    pub topic: String,
    /// When the inbox stored it, RFC 3339 UTC (millisecond precision).
    pub received_at: String,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub customer_email: Option<String>,
    /// For shipment topics.
    pub tracking_code: Option<String>,
    /// The shipment's (or the return's) status where the payload has one.
    pub status: Option<String>,
    /// The delivered JSON body, as received.
    pub payload: serde_json::Value,
}

/// Which stored events to list: one account's, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub account_id: String,
    /// Exact topic.
    pub topic: Option<String>,
    pub order_id: Option<String>,
    pub tracking_code: Option<String>,
    /// RFC 3339 date-time (or a `YYYY-MM-DD` date, meaning its start in
    /// UTC): only events received at or after it.
    pub since: Option<String>,
    /// Only events with a smaller `seq` (the next page after the last seen).
    pub before_seq: Option<i64>,
    /// At most this many (capped at [`MAX_EVENT_PAGE`]).
    pub limit: usize,
}

/// The most events one [`EventQuery`] returns.
pub const MAX_EVENT_PAGE: usize = 1000;

/// What the runtime fills into a Malomo webhook it creates for an account:
/// the inbox token (for its URL) and the signing secret. Never shown to a
/// model, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct InboxDelivery {
    pub token: String,
    pub secret: String,
}

impl fmt::Debug for InboxDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InboxDelivery(<redacted>)")
    }
}

/// `{public_url}/hooks/{token}`: where Malomo delivers an account's events.
pub fn inbox_url(public_url: &str, token: &str) -> String {
    format!("{}/hooks/{token}", public_url.trim_end_matches('/'))
}

/// How many notices a slow subscriber may fall behind before it misses some
/// (it then sees `RecvError::Lagged` and should re-read the store).
const BACKLOG: usize = 1024;

/// One stored event, announced to the node's subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotice {
    /// The integrated account whose inbox received the event.
    pub account_id: String,
    /// The event's Malomo topic, e.g. `shipment.exception`.
    pub topic: String,
    /// The event's position in the store (increasing per store).
    pub seq: i64,
}

/// The node's feed of newly stored events. Cloning shares the feed.
#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<EventNotice>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self { sender }
    }

    /// Announces a stored event to every current subscriber; returns how
    /// many there were. Call it only after the event is committed.
    pub fn publish(&self, notice: EventNotice) -> usize {
        self.sender.send(notice).unwrap_or(0)
    }

    /// Notices published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventNotice> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_notices_published_after_they_subscribe() {
        let hub = EventHub::new();
        let early = EventNotice {
            account_id: "acct".into(),
            topic: "shipment.exception".into(),
            seq: 1,
        };
        assert_eq!(hub.publish(early), 0, "nobody listens yet");
        let mut rx = hub.subscribe();
        let notice = EventNotice {
            account_id: "acct".into(),
            topic: "shipment.delivered".into(),
            seq: 2,
        };
        assert_eq!(hub.clone().publish(notice.clone()), 1);
        assert_eq!(rx.recv().await.expect("notice"), notice);
    }
}
