//! Order writes: create, update (with Malomo's destructive shipments
//! replace), delete, and the shipment progression step. Every function
//! checks its whole input before changing anything.

use super::error::{ApiError, ApiResult};
use super::input::{self, Field, ShipmentInput};
use super::model::{Address, Customer, Order, Shipment, Status, Ts};
use super::progression;
use super::store::{EventDraft, Store, to_value};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
}

pub struct OrderInput {
    pub alternate_id: Field<String>,
    pub number: Field<String>,
    pub email: Field<String>,
    pub customer: Field<CustomerInput>,
    pub meta: Field<Map<String, Value>>,
    pub shipments: Option<Vec<ShipmentInput>>,
}

pub fn parse_customer(obj: &Map<String, Value>, prefix: &str) -> ApiResult<CustomerInput> {
    Ok(CustomerInput {
        email: input::email(obj, prefix, "email")?.set(),
        first_name: input::optional_string(obj, prefix, "first_name")?,
        last_name: input::optional_string(obj, prefix, "last_name")?,
        phone_number: input::optional_string(obj, prefix, "phone_number")?,
    })
}

pub fn parse_order(obj: &Map<String, Value>, creating: bool) -> ApiResult<OrderInput> {
    let number = input::string(obj, "", "number")?;
    match &number {
        Field::Set(n) if n.trim().is_empty() => {
            return Err(ApiError::invalid("number", "must not be empty"));
        }
        Field::Null => return Err(ApiError::invalid("number", "must be a string, not null")),
        Field::Absent if creating => return Err(ApiError::invalid("number", "is required")),
        _ => {}
    }
    let customer = match input::object(obj, "", "customer")? {
        Field::Set(m) => Field::Set(parse_customer(m, "customer")?),
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    };
    let meta = match input::object(obj, "", "meta")? {
        Field::Set(m) => Field::Set(m.clone()),
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    };
    let shipments = match obj.get("shipments") {
        None => None,
        Some(v) => Some(input::shipments(v, "shipments")?),
    };
    Ok(OrderInput {
        alternate_id: input::string(obj, "", "alternate_id")?,
        number,
        email: input::email(obj, "", "email")?,
        customer,
        meta,
        shipments,
    })
}

fn address_for(order: &Order) -> Option<Address> {
    order
        .shipments
        .iter()
        .map(|s| s.destination.clone())
        .find(|a| a.city.is_some())
}

impl Store {
    /// Finds or creates the customer record an order points at.
    fn upsert_customer(
        &mut self,
        c: &CustomerInput,
        fallback_email: Option<&str>,
        at: Ts,
    ) -> ApiResult<Uuid> {
        let Some(email) = c.email.as_deref().or(fallback_email) else {
            return Err(ApiError::invalid(
                "customer.email",
                "is required (or give the order an email)",
            ));
        };
        if let Some(id) = self.customer_by_email(email).map(|c| c.id) {
            if let Some(row) = self.customers.get_mut(&id) {
                // Names sent with an order refresh the record, as a merchant
                // platform sync would.
                row.first_name = c.first_name.clone().or(row.first_name.take());
                row.last_name = c.last_name.clone().or(row.last_name.take());
                row.phone_number = c.phone_number.clone().or(row.phone_number.take());
                row.updated_at = at;
            }
            return Ok(id);
        }
        let customer = Customer {
            id: self.new_id(),
            email: email.to_string(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            phone_number: c.phone_number.clone(),
            created_at: at,
            updated_at: at,
            seq: self.seq(),
            events: BTreeMap::new(),
        };
        let id = customer.id;
        self.customers_by_email
            .insert(email.to_ascii_lowercase(), id);
        self.customers.insert(customer.seq, id, customer);
        Ok(id)
    }

    pub fn create_order(&mut self, inp: OrderInput, at: Ts) -> ApiResult<Uuid> {
        self.ensure_room(1)?;
        let email = inp.email.clone().set();
        let customer = match &inp.customer {
            Field::Set(c) => {
                let id = self.upsert_customer(c, email.as_deref(), at)?;
                self.customers.get(&id).map(Customer::embedded)
            }
            _ => None,
        };
        let email = email.or_else(|| customer.as_ref().map(|c| c.email.clone()));
        let shipments: Vec<Shipment> = inp
            .shipments
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let sid = self.new_id();
                progression::new_shipment(sid, s, None, at)
            })
            .collect();
        let order = Order {
            id: self.new_id(),
            alternate_id: inp.alternate_id.set(),
            number: inp.number.set().unwrap_or_default(),
            email,
            customer,
            meta: Value::Object(inp.meta.set().unwrap_or_default()),
            shipments,
            created_at: at,
            updated_at: at,
            seq: self.seq(),
            events: BTreeMap::new(),
        };
        let id = order.id;
        self.orders.insert(order.seq, id, order);
        self.after_create(id, at);
        Ok(id)
    }

    /// The timeline and webhooks of a new order.
    fn after_create(&mut self, id: Uuid, at: Ts) {
        let Some(order) = self.orders.get(&id) else {
            return;
        };
        let kind = if order.meta.get("shopify_order").is_some() {
            "ShopifyOrderCreated"
        } else {
            "OrderCreated"
        };
        let draft = EventDraft::new(
            kind,
            format!("Order #{} created", order.number),
            json!({"order_id": id}),
        );
        let cust = order.customer.as_ref().map(|c| c.id);
        let ships: Vec<Shipment> = order.shipments.clone();
        let snapshot = to_value(order);
        self.add_event(Some(id), cust, draft, at);
        self.notify("order.created", at, || snapshot);
        for s in &ships {
            self.shipment_created(id, cust, s, at);
        }
    }

    fn shipment_created(&mut self, order_id: Uuid, cust: Option<Uuid>, s: &Shipment, at: Ts) {
        let label = format!("Shipment {} created ({})", s.tracking_code, s.carrier_name);
        let props =
            json!({"shipment_id": s.id, "carrier": s.carrier, "tracking_code": s.tracking_code});
        let kind = if s.is_return {
            "ReturnShipmentCreated"
        } else {
            "ShipmentCreated"
        };
        self.add_event(
            Some(order_id),
            cust,
            EventDraft::new(kind, label, props),
            at,
        );
        self.notify(
            "shipment.created",
            at,
            || json!({"order_id": order_id, "shipment": s}),
        );
    }

    pub fn update_order(&mut self, id: Uuid, inp: OrderInput, at: Ts) -> ApiResult<()> {
        let Some(existing) = self.orders.get(&id) else {
            return Err(ApiError::not_found("order"));
        };
        let fallback_email = inp.email.clone().set().or_else(|| existing.email.clone());
        // New shipments and customers add objects (and timeline events), so
        // an update can fill the store too.
        if inp.shipments.is_some() || matches!(inp.customer, Field::Set(_)) {
            self.ensure_room(1)?;
        }
        // Resolve the customer first: it is the only step that can fail.
        let customer = match &inp.customer {
            Field::Set(c) => {
                let cid = self.upsert_customer(c, fallback_email.as_deref(), at)?;
                Field::Set(self.customers.get(&cid).map(Customer::embedded))
            }
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        };
        let Some(order) = self.orders.get_mut(&id) else {
            return Err(ApiError::not_found("order"));
        };
        match inp.alternate_id {
            Field::Set(a) => order.alternate_id = Some(a),
            Field::Null => order.alternate_id = None,
            Field::Absent => {}
        }
        if let Field::Set(n) = inp.number {
            order.number = n;
        }
        match inp.email {
            Field::Set(e) => order.email = Some(e),
            Field::Null => order.email = None,
            Field::Absent => {}
        }
        match customer {
            Field::Set(c) => order.customer = c,
            Field::Null => order.customer = None,
            Field::Absent => {}
        }
        match inp.meta {
            Field::Set(m) => order.meta = Value::Object(m),
            Field::Null => order.meta = Value::Object(Map::new()),
            Field::Absent => {}
        }
        let mut created = Vec::new();
        if let Some(wanted) = inp.shipments {
            // Malomo's destructive replace: the request is the whole set.
            let dest = address_for(order);
            let mut old = std::mem::take(&mut order.shipments);
            for w in &wanted {
                let pos = old.iter().position(|s| {
                    s.carrier == w.carrier.code && s.tracking_code == w.tracking_code
                });
                match pos {
                    Some(i) => order.shipments.push(old.swap_remove(i)),
                    None => {
                        let s = progression::new_shipment(Uuid::new_v4(), w, dest.clone(), at);
                        created.push(s.clone());
                        order.shipments.push(s);
                    }
                }
            }
        }
        order.updated_at = at;
        let cust = order.customer.as_ref().map(|c| c.id);
        let snapshot = to_value(&*order);
        self.notify("order.updated", at, || snapshot);
        for s in &created {
            self.shipment_created(id, cust, s, at);
        }
        Ok(())
    }

    pub fn delete_order(&mut self, id: Uuid) -> ApiResult<()> {
        let order = self
            .orders
            .remove(&id)
            .ok_or_else(|| ApiError::not_found("order"))?;
        self.event_count = self.event_count.saturating_sub(order.events.len());
        Ok(())
    }

    /// Moves one shipment of an order one step: scan event, timeline event,
    /// webhooks. None when the shipment is missing or already final.
    pub fn advance_order_shipment(&mut self, order_id: Uuid, idx: usize, at: Ts) -> Option<Status> {
        let order = self.orders.get_mut(&order_id)?;
        let ship = order.shipments.get_mut(idx)?;
        let status = progression::advance(ship, at)?;
        let ship = ship.clone();
        order.updated_at = at;
        let cust = order.customer.as_ref().map(|c| c.id);
        self.record_progress(order_id, cust, ship, status, at);
        Some(status)
    }

    pub fn record_progress(
        &mut self,
        order_id: Uuid,
        cust: Option<Uuid>,
        ship: Shipment,
        status: Status,
        at: Ts,
    ) {
        let Some(scan) = ship.scan_events.last() else {
            return;
        };
        let kind = if ship.is_return {
            "ReturnShipmentUpdateReceived"
        } else {
            "ShipmentUpdateReceived"
        };
        let label = format!(
            "Shipment {} is {}",
            ship.tracking_code,
            status.as_str().replace('_', " ")
        );
        let props = json!({
            "shipment_id": ship.id,
            "carrier": ship.carrier,
            "tracking_code": ship.tracking_code,
            "status": status,
            "status_detail": scan.status_detail,
            "message": scan.message,
            "location": scan.location,
        });
        self.add_event(
            Some(order_id),
            cust,
            EventDraft::new(kind, label, props),
            at,
        );
        let data = json!({"order_id": order_id, "shipment": ship});
        self.notify("shipment.updated", at, || data.clone());
        if status == Status::Delivered {
            self.notify("shipment.delivered", at, || data.clone());
        }
        if status.is_exception() {
            self.notify("shipment.exception", at, || data);
        }
    }

    /// Advances every non-final shipment (orders' and returns') one step.
    pub fn tick(&mut self, at: Ts) -> Value {
        let order_steps: Vec<(Uuid, usize)> = self
            .orders
            .rows
            .values()
            .flat_map(|o| {
                o.shipments
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.status.is_final())
                    .map(move |(i, _)| (o.id, i))
            })
            .collect();
        let return_steps: Vec<(Uuid, usize)> = self
            .returns
            .rows
            .values()
            .flat_map(|r| {
                r.shipments
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.status.is_final())
                    .map(move |(i, _)| (r.id, i))
            })
            .collect();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut advanced = 0usize;
        for (id, i) in order_steps {
            if let Some(s) = self.advance_order_shipment(id, i, at) {
                advanced += 1;
                *counts.entry(s.as_str()).or_default() += 1;
            }
        }
        for (id, i) in return_steps {
            if let Some(s) = self.advance_return_shipment(id, i, at) {
                advanced += 1;
                *counts.entry(s.as_str()).or_default() += 1;
            }
        }
        json!({"advanced": advanced, "now_in_status": counts})
    }
}
