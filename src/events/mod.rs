//! Malomo events received at an account's inbox, and the in-process feed
//! that tells MCP sessions about them.
//!
//! The inbox (`POST /hooks/{token}`) verifies and stores each delivery, and
//! only after the store has committed it publishes an [`EventNotice`] on the
//! node's [`EventHub`]. On PostgreSQL, notices from other nodes arrive
//! through the change feed and are published on every node's hub, so a
//! session learns of an event whichever node received it. Subscribers read
//! the event itself from the store: a notice carries no payload.

use tokio::sync::broadcast;

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
