//! In-memory state: one table per resource, keyed by a monotonic sequence
//! number (the list order and cursor basis) with an id index beside it.
//! The whole store sits behind one RwLock; writers also collect the webhook
//! deliveries their change triggers, which are sent after the lock is gone.

use super::error::{ApiError, ApiResult};
use super::model::{Customer, Event, Order, Return, Ts, Webhook, iso_z};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows in list order plus an id index.
pub struct Table<T> {
    pub rows: BTreeMap<u64, T>,
    ids: HashMap<Uuid, u64>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T> Table<T> {
    pub fn get(&self, id: &Uuid) -> Option<&T> {
        self.ids.get(id).and_then(|seq| self.rows.get(seq))
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut T> {
        self.ids.get(id).and_then(|seq| self.rows.get_mut(seq))
    }

    pub fn insert(&mut self, seq: u64, id: Uuid, row: T) {
        self.ids.insert(id, seq);
        self.rows.insert(seq, row);
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<T> {
        let seq = self.ids.remove(id)?;
        self.rows.remove(&seq)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// One webhook POST to make once the store lock is released.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: Option<String>,
    pub topic: &'static str,
    pub body: Bytes,
}

pub struct Store {
    next_seq: u64,
    pub max_objects: usize,
    pub orders: Table<Order>,
    pub customers: Table<Customer>,
    pub customers_by_email: HashMap<String, Uuid>,
    pub webhooks: Table<Webhook>,
    pub returns: Table<Return>,
    pub event_count: usize,
    /// Deliveries triggered by the current write, drained by the caller.
    pub outgoing: Vec<Delivery>,
    /// While seeding, ids come from the seed so that demo data is the same
    /// on every run; afterwards they are random v4 UUIDs.
    pub id_source: Option<super::rng::SplitMix>,
}

impl Store {
    pub fn new(max_objects: usize) -> Self {
        Self {
            next_seq: 1,
            max_objects,
            orders: Table::default(),
            customers: Table::default(),
            customers_by_email: HashMap::new(),
            webhooks: Table::default(),
            returns: Table::default(),
            event_count: 0,
            outgoing: Vec::new(),
            id_source: None,
        }
    }

    pub fn new_id(&mut self) -> Uuid {
        match &mut self.id_source {
            Some(rng) => uuid::Builder::from_random_bytes(rng.bytes16()).into_uuid(),
            None => Uuid::new_v4(),
        }
    }

    /// The next sequence number; shared by every table and by events so that
    /// "newer" means the same thing everywhere.
    pub fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    pub fn object_count(&self) -> usize {
        self.orders.len()
            + self.customers.len()
            + self.webhooks.len()
            + self.returns.len()
            + self.event_count
    }

    /// Refuses a client-driven create once the cap is reached, so a runaway
    /// client cannot exhaust memory. Internal writes (progression events)
    /// are bounded by the shipments already stored and skip this check.
    pub fn ensure_room(&self, needed: usize) -> ApiResult<()> {
        if self.object_count() + needed > self.max_objects {
            return Err(ApiError::storage_full(self.max_objects));
        }
        Ok(())
    }

    pub fn customer_by_email(&self, email: &str) -> Option<&Customer> {
        self.customers_by_email
            .get(&email.to_ascii_lowercase())
            .and_then(|id| self.customers.get(id))
    }

    /// Queues deliveries of `topic` to every active webhook subscribed to it.
    /// The payload is built only when someone listens.
    pub fn notify(&mut self, topic: &'static str, at: Ts, data: impl FnOnce() -> Value) {
        let targets: Vec<(Uuid, String, Option<String>)> = self
            .webhooks
            .rows
            .values()
            .filter(|w| w.active && w.topic == topic)
            .map(|w| (w.id, w.url.clone(), w.secret.clone()))
            .collect();
        if targets.is_empty() {
            return;
        }
        let payload = json!({
            "id": Uuid::new_v4(),
            "topic": topic,
            "created_at": iso_z(at),
            "data": data(),
        });
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        for (webhook_id, url, secret) in targets {
            self.outgoing.push(Delivery {
                webhook_id,
                url,
                secret,
                topic,
                body: body.clone(),
            });
        }
    }

    /// Appends an event to an order's timeline (and to its customer's), and
    /// fires `events:created`.
    pub fn add_event(
        &mut self,
        order_id: Option<Uuid>,
        customer_id: Option<Uuid>,
        draft: EventDraft,
        at: Ts,
    ) -> Event {
        let seq = self.seq();
        let event = Event {
            id: self.new_id(),
            kind: draft.kind,
            label: draft.label,
            properties: draft.properties,
            timestamp: draft.timestamp.unwrap_or(at),
            link_back_url: draft.link_back_url,
            order_id,
            created_at: at,
            updated_at: at,
        };
        if let Some(order) = order_id.and_then(|id| self.orders.get_mut(&id)) {
            order.events.insert(seq, event.clone());
            self.event_count += 1;
        }
        if let Some(customer) = customer_id.and_then(|id| self.customers.get_mut(&id)) {
            customer.events.insert(seq, event.clone());
            self.event_count += 1;
        }
        self.notify("events:created", at, || to_value(&event));
        event
    }

    pub fn account(&self) -> Value {
        json!({
            "id": "5f0c6a4e-2b1d-4c39-9a57-0d7c1b8e3a11",
            "name": "Sandbox Outfitters",
            "domain": "sandbox-outfitters.example.com",
            "platform": "shopify",
            "environment": "sandbox",
            "created_at": "2024-01-15T12:00:00Z",
        })
    }
}

/// What a caller says about a new event; the store adds id and times.
pub struct EventDraft {
    pub kind: String,
    pub label: String,
    pub properties: Value,
    pub timestamp: Option<Ts>,
    pub link_back_url: Option<String>,
}

impl EventDraft {
    pub fn new(kind: &str, label: String, properties: Value) -> Self {
        Self {
            kind: kind.to_string(),
            label,
            properties,
            timestamp: None,
            link_back_url: None,
        }
    }
}

pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
