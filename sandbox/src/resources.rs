//! Writes on customers, webhooks, returns and timeline events.

use super::error::{ApiError, ApiResult};
use super::input::{self, Field};
use super::model::{RETURN_STATUSES, Return, Status, TOPICS, Ts, Webhook};
use super::orders::parse_customer;
use super::progression;
use super::store::{EventDraft, Store, to_value};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn webhook_url(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(raw) = input::optional_string(obj, "", "url")? else {
        return Ok(None);
    };
    match url::Url::parse(&raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(raw)),
        _ => Err(ApiError::invalid(
            "url",
            format!("{raw:?} is not an http(s) URL"),
        )),
    }
}

impl Store {
    pub fn create_customer(&mut self, obj: &Map<String, Value>, at: Ts) -> ApiResult<Uuid> {
        let c = parse_customer(obj, "")?;
        let Some(email) = c.email.clone() else {
            return Err(ApiError::invalid("email", "is required"));
        };
        if self.customer_by_email(&email).is_some() {
            return Err(ApiError::invalid(
                "email",
                format!("a customer with email {email:?} already exists"),
            ));
        }
        self.ensure_room(1)?;
        let seq = self.seq();
        let customer = super::model::Customer {
            id: self.new_id(),
            email: email.clone(),
            first_name: c.first_name,
            last_name: c.last_name,
            phone_number: c.phone_number,
            created_at: at,
            updated_at: at,
            seq,
            events: BTreeMap::new(),
        };
        let id = customer.id;
        self.customers_by_email
            .insert(email.to_ascii_lowercase(), id);
        self.customers.insert(seq, id, customer);
        Ok(id)
    }

    pub fn update_customer(&mut self, id: Uuid, obj: &Map<String, Value>, at: Ts) -> ApiResult<()> {
        let c = parse_customer(obj, "")?;
        if let Some(new_email) = &c.email
            && self
                .customer_by_email(new_email)
                .is_some_and(|other| other.id != id)
        {
            return Err(ApiError::invalid(
                "email",
                format!("a customer with email {new_email:?} already exists"),
            ));
        }
        let row = self
            .customers
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let old_email = row.email.to_ascii_lowercase();
        if let Some(e) = c.email {
            row.email = e;
        }
        // Absent keeps, null clears, a string sets: a partial update.
        for (key, slot) in [
            ("first_name", &mut row.first_name),
            ("last_name", &mut row.last_name),
            ("phone_number", &mut row.phone_number),
        ] {
            match input::string(obj, "", key)? {
                Field::Set(v) => *slot = Some(v),
                Field::Null => *slot = None,
                Field::Absent => {}
            }
        }
        row.updated_at = at;
        let embedded = row.embedded();
        self.customers_by_email.remove(&old_email);
        self.customers_by_email
            .insert(embedded.email.to_ascii_lowercase(), id);
        // Orders embed a copy of their customer; keep the copies in step.
        for order in self.orders.rows.values_mut() {
            if order.customer.as_ref().is_some_and(|oc| oc.id == id) {
                order.customer = Some(embedded.clone());
            }
        }
        Ok(())
    }

    pub fn delete_customer(&mut self, id: Uuid) -> ApiResult<()> {
        let row = self
            .customers
            .remove(&id)
            .ok_or_else(|| ApiError::not_found("customer"))?;
        self.customers_by_email
            .remove(&row.email.to_ascii_lowercase());
        self.event_count = self.event_count.saturating_sub(row.events.len());
        Ok(())
    }

    pub fn create_webhook(&mut self, obj: &Map<String, Value>, at: Ts) -> ApiResult<Uuid> {
        let url = webhook_url(obj)?.ok_or_else(|| ApiError::invalid("url", "is required"))?;
        let topic = input::required_string(obj, "", "topic")?;
        if !TOPICS.contains(&topic.as_str()) {
            return Err(ApiError::invalid(
                "topic",
                format!(
                    "unknown topic {topic:?}; expected one of {}",
                    TOPICS.join(", ")
                ),
            ));
        }
        let active = input::boolean(obj, "", "active")?.unwrap_or(true);
        let secret = input::optional_string(obj, "", "secret")?;
        self.ensure_room(1)?;
        let seq = self.seq();
        let hook = Webhook {
            id: Uuid::new_v4(),
            url,
            topic,
            active,
            created_at: at,
            updated_at: at,
            secret,
        };
        let id = hook.id;
        self.webhooks.insert(seq, id, hook);
        Ok(id)
    }

    pub fn update_webhook(&mut self, id: Uuid, obj: &Map<String, Value>, at: Ts) -> ApiResult<()> {
        let url = webhook_url(obj)?;
        let active = input::boolean(obj, "", "active")?;
        let topic = input::optional_string(obj, "", "topic")?;
        let secret = input::string(obj, "", "secret")?;
        let hook = self
            .webhooks
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("webhook"))?;
        if let Some(t) = topic.filter(|t| *t != hook.topic) {
            return Err(ApiError::invalid(
                "topic",
                format!(
                    "a webhook's topic is fixed at creation ({:?}); create a new webhook for {t:?}",
                    hook.topic
                ),
            ));
        }
        if let Some(u) = url {
            hook.url = u;
        }
        if let Some(a) = active {
            hook.active = a;
        }
        match secret {
            Field::Set(s) => hook.secret = Some(s),
            Field::Null => hook.secret = None,
            Field::Absent => {}
        }
        hook.updated_at = at;
        Ok(())
    }

    pub fn delete_webhook(&mut self, id: Uuid) -> ApiResult<()> {
        self.webhooks
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found("webhook"))
    }

    pub fn create_order_event(
        &mut self,
        order_id: Uuid,
        obj: &Map<String, Value>,
        at: Ts,
    ) -> ApiResult<Value> {
        let kind = input::required_string(obj, "", "type")?;
        let label = input::optional_string(obj, "", "label")?.unwrap_or_else(|| kind.clone());
        let properties = match input::object(obj, "", "properties")? {
            Field::Set(m) => Value::Object(m.clone()),
            _ => json!({}),
        };
        let timestamp = match obj.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(other) => {
                return Err(ApiError::invalid(
                    "timestamp",
                    format!(
                        "expected unix seconds (an integer), got {}",
                        input::kind(other)
                    ),
                ));
            }
        };
        let link_back_url = input::optional_string(obj, "", "link_back_url")?;
        let order = self
            .orders
            .get(&order_id)
            .ok_or_else(|| ApiError::not_found("order"))?;
        let cust = order.customer.as_ref().map(|c| c.id);
        self.ensure_room(1)?;
        let draft = EventDraft {
            kind,
            label,
            properties,
            timestamp,
            link_back_url,
        };
        let event = self.add_event(Some(order_id), cust, draft, at);
        Ok(to_value(&event))
    }

    pub fn create_return(&mut self, obj: &Map<String, Value>, at: Ts) -> ApiResult<Uuid> {
        let raw = input::required_string(obj, "", "order_id")?;
        let order_id = Uuid::parse_str(&raw)
            .map_err(|_| ApiError::invalid("order_id", "is not an order id"))?;
        let alternate_id = input::optional_string(obj, "", "alternate_id")?;
        let status = return_status(obj)?.unwrap_or_else(|| "requested".into());
        let inputs = match obj.get("shipments") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => input::shipments(v, "shipments")?,
        };
        let order = self
            .orders
            .get(&order_id)
            .ok_or_else(|| ApiError::invalid("order_id", format!("no order {order_id}")))?;
        let cust = order.customer.as_ref().map(|c| c.id);
        // A return travels back from the customer to the merchant.
        let from = order.shipments.first().map(|s| s.destination.clone());
        self.ensure_room(1)?;
        let ids: Vec<Uuid> = inputs.iter().map(|_| self.new_id()).collect();
        let shipments: Vec<_> = inputs
            .iter()
            .zip(ids)
            .map(|(i, sid)| {
                let mut s = progression::new_shipment(sid, i, None, at);
                s.is_return = true;
                if let Some(f) = &from {
                    s.destination = std::mem::replace(&mut s.origin, f.clone());
                }
                s
            })
            .collect();
        let seq = self.seq();
        let ret = Return {
            id: self.new_id(),
            order_id,
            alternate_id,
            status,
            shipments,
            created_at: at,
            updated_at: at,
        };
        let id = ret.id;
        let snapshot = to_value(&ret);
        let ships = ret.shipments.clone();
        self.returns.insert(seq, id, ret);
        for s in &ships {
            let label = format!(
                "Return shipment {} created ({})",
                s.tracking_code, s.carrier_name
            );
            let props = json!({"return_id": id, "shipment_id": s.id, "carrier": s.carrier, "tracking_code": s.tracking_code});
            self.add_event(
                Some(order_id),
                cust,
                EventDraft::new("ReturnShipmentCreated", label, props),
                at,
            );
        }
        self.notify("return.created", at, || snapshot);
        Ok(id)
    }

    pub fn update_return(&mut self, id: Uuid, obj: &Map<String, Value>, at: Ts) -> ApiResult<()> {
        let status = return_status(obj)?;
        let alternate_id = input::string(obj, "", "alternate_id")?;
        let ret = self
            .returns
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("return"))?;
        if let Some(s) = status {
            ret.status = s;
        }
        match alternate_id {
            Field::Set(a) => ret.alternate_id = Some(a),
            Field::Null => ret.alternate_id = None,
            Field::Absent => {}
        }
        ret.updated_at = at;
        Ok(())
    }

    pub fn advance_return_shipment(
        &mut self,
        return_id: Uuid,
        idx: usize,
        at: Ts,
    ) -> Option<Status> {
        let ret = self.returns.get_mut(&return_id)?;
        let ship = ret.shipments.get_mut(idx)?;
        let status = progression::advance(ship, at)?;
        let ship = ship.clone();
        ret.updated_at = at;
        let order_id = ret.order_id;
        let cust = self
            .orders
            .get(&order_id)
            .and_then(|o| o.customer.as_ref().map(|c| c.id));
        self.record_progress(order_id, cust, ship, status, at);
        Some(status)
    }
}

fn return_status(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    let status = input::optional_string(obj, "", "status")?;
    if let Some(s) = &status
        && !RETURN_STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            format!(
                "unknown return status {s:?}; expected one of {}",
                RETURN_STATUSES.join(", ")
            ),
        ));
    }
    Ok(status)
}
