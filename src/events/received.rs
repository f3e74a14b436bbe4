//! What the inbox keeps of a verified delivery: its topic, its
//! de-duplication key and the fields an agent filters and reads by, taken
//! from the payload where it has them.
//!
//! Malomo's payloads are `{id, topic, created_at, data}`. `data` is an order
//! (`order.*`), `{order_id, shipment}` (`shipment.*`), a return
//! (`return.created`) or a timeline event with `properties`
//! (`events:created`); the fields are looked up in each of those places.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A verified delivery, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub topic: String,
    /// Unique per account: a redelivery of the same event has the same key.
    pub dedup_key: String,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub customer_email: Option<String>,
    pub tracking_code: Option<String>,
    pub status: Option<String>,
    /// The body as delivered (valid JSON).
    pub payload: String,
}

/// Why a signed delivery cannot be stored (answered 400: Malomo would
/// only retry the same bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceivedEventError {
    #[error("body: not a JSON object ({0})")]
    NotJson(String),
    #[error("topic: neither the Malomo-Topic header nor the payload's `topic` names one")]
    NoTopic,
    #[error("topic: {0:?} is not a topic (at most 100 printable ASCII characters)")]
    BadTopic(String),
}

/// Longest topic kept (Malomo's are like `shipment.exception`).
const MAX_TOPIC_LEN: usize = 100;
/// Longest extracted field kept; longer values stay in the payload only.
const MAX_FIELD_LEN: usize = 256;

impl ReceivedEvent {
    /// From a delivery's headers (`Malomo-Topic`, `Malomo-Webhook-Id`) and
    /// raw body. The key is the webhook id plus the payload's event `id`
    /// (the same across Malomo's retries), or plus a SHA-256 of the body
    /// when the payload has no id.
    pub fn from_delivery(
        topic_header: Option<&str>,
        webhook_id: Option<&str>,
        body: &[u8],
    ) -> Result<ReceivedEvent, ReceivedEventError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ReceivedEventError::NotJson("not UTF-8".to_owned()))?;
        let payload: Value =
            serde_json::from_str(text).map_err(|e| ReceivedEventError::NotJson(e.to_string()))?;
        if !payload.is_object() {
            return Err(ReceivedEventError::NotJson(
                "a JSON value, but not an object".to_owned(),
            ));
        }
        let topic = topic_header
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .or_else(|| payload.get("topic").and_then(Value::as_str))
            .ok_or(ReceivedEventError::NoTopic)?;
        if topic.len() > MAX_TOPIC_LEN || !topic.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ReceivedEventError::BadTopic(
                topic.chars().take(MAX_TOPIC_LEN).collect(),
            ));
        }
        let webhook = webhook_id
            .map(str::trim)
            .filter(|w| !w.is_empty() && w.len() <= MAX_FIELD_LEN)
            .unwrap_or("-");
        let dedup_key = match scalar(payload.get("id")) {
            Some(id) => format!("{webhook}/id:{id}"),
            None => format!("{webhook}/sha256:{}", hex::encode(Sha256::digest(body))),
        };
        let data = payload.get("data").unwrap_or(&Value::Null);
        let is_order = topic.starts_with("order");
        let shipment = data.get("shipment");
        let properties = data.get("properties");
        let order = data.get("order");
        let first = |candidates: &[Option<&Value>]| candidates.iter().find_map(|v| scalar(*v));
        Ok(ReceivedEvent {
            order_id: first(&[
                data.get("order_id"),
                is_order.then(|| data.get("id")).flatten(),
                order.and_then(|o| o.get("id")),
                properties.and_then(|p| p.get("order_id")),
            ]),
            order_number: first(&[
                data.get("order_number"),
                is_order.then(|| data.get("number")).flatten(),
                order.and_then(|o| o.get("number")),
            ]),
            customer_email: first(&[
                data.get("customer").and_then(|c| c.get("email")),
                data.get("customer_email"),
                data.get("email"),
                order.and_then(|o| o.get("email")),
                order
                    .and_then(|o| o.get("customer"))
                    .and_then(|c| c.get("email")),
            ]),
            tracking_code: first(&[
                shipment.and_then(|s| s.get("tracking_code")),
                data.get("tracking_code"),
                properties.and_then(|p| p.get("tracking_code")),
            ]),
            status: first(&[
                shipment.and_then(|s| s.get("status")),
                properties.and_then(|p| p.get("status")),
                (!is_order).then(|| data.get("status")).flatten(),
            ]),
            topic: topic.to_owned(),
            dedup_key,
            payload: text.to_owned(),
        })
    }
}

/// A string or number as text, when it is short enough to be an id.
fn scalar(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_FIELD_LEN).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received(topic: &str, payload: Value) -> ReceivedEvent {
        let body = serde_json::to_vec(&payload).unwrap();
        ReceivedEvent::from_delivery(Some(topic), Some("wh_1"), &body).unwrap()
    }

    #[test]
    fn shipment_payloads_give_order_tracking_code_and_status() {
        let e = received(
            "shipment.exception",
            json!({"id": "ev1", "topic": "shipment.exception", "created_at": "2026-01-01T00:00:00Z",
                   "data": {"order_id": "o1", "shipment": {"tracking_code": "FA123", "status": "failure"}}}),
        );
        assert_eq!(e.topic, "shipment.exception");
        assert_eq!(e.dedup_key, "wh_1/id:ev1");
        assert_eq!(e.order_id.as_deref(), Some("o1"));
        assert_eq!(e.tracking_code.as_deref(), Some("FA123"));
        assert_eq!(e.status.as_deref(), Some("failure"));
        assert_eq!(e.order_number, None);
    }

    #[test]
    fn order_payloads_give_id_number_and_customer_email() {
        let e = received(
            "order.created",
            json!({"id": "ev2", "data": {"id": "o2", "number": "1001", "email": "a@b.example",
                   "customer": {"email": "c@d.example"}, "status": "ignored for orders"}}),
        );
        assert_eq!(e.order_id.as_deref(), Some("o2"));
        assert_eq!(e.order_number.as_deref(), Some("1001"));
        assert_eq!(e.customer_email.as_deref(), Some("c@d.example"));
        assert_eq!(e.status, None);
    }

    #[test]
    fn timeline_events_give_their_properties() {
        let e = received(
            "events:created",
            json!({"id": "ev3", "data": {"id": "tl1", "order_id": "o3",
                   "properties": {"tracking_code": "RE9", "status": "in_transit"}}}),
        );
        assert_eq!(e.order_id.as_deref(), Some("o3"));
        assert_eq!(e.tracking_code.as_deref(), Some("RE9"));
        assert_eq!(e.status.as_deref(), Some("in_transit"));
    }

    #[test]
    fn without_an_event_id_the_body_digest_is_the_key() {
        let a = received("order.updated", json!({"data": {"id": "o"}}));
        let b = received("order.updated", json!({"data": {"id": "o"}}));
        let c = received("order.updated", json!({"data": {"id": "p"}}));
        assert!(a.dedup_key.starts_with("wh_1/sha256:"));
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn the_topic_comes_from_the_header_else_the_payload() {
        let body = br#"{"id":"x","topic":"return.created","data":{"status":"open"}}"#;
        let e = ReceivedEvent::from_delivery(None, None, body).unwrap();
        assert_eq!(
            (e.topic.as_str(), e.dedup_key.as_str()),
            ("return.created", "-/id:x")
        );
        assert_eq!(e.status.as_deref(), Some("open"));
        assert_eq!(
            ReceivedEvent::from_delivery(None, None, b"{}"),
            Err(ReceivedEventError::NoTopic)
        );
        assert!(matches!(
            ReceivedEvent::from_delivery(Some("a b"), None, b"{}"),
            Err(ReceivedEventError::BadTopic(_))
        ));
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused_naming_the_body() {
        for body in [&b"not json"[..], b"[1,2]", b"\xff"] {
            let err = ReceivedEvent::from_delivery(Some("t"), None, body).unwrap_err();
            assert!(err.to_string().starts_with("body:"), "{err}");
        }
    }
}
