//! /orders, lookups, and order events.

use super::{Params, json_response, page_response, parse_id, to_json};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::input::JsonObject;
use crate::model::{Order, now};
use crate::orders::parse_order;
use crate::pagination;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

fn one(found: Option<Vec<u8>>) -> ApiResult<Response> {
    found
        .map(json_response)
        .ok_or_else(|| ApiError::not_found("order"))
}

fn serialize(order: &Order) -> Vec<u8> {
    serde_json::to_vec(order).unwrap_or_default()
}

/// Newest order matching `pred`, serialized.
fn lookup(shared: &Shared, pred: impl Fn(&Order) -> bool) -> ApiResult<Response> {
    one(shared.read(|st| {
        st.orders
            .rows
            .values()
            .rev()
            .find(|o| pred(o))
            .map(serialize)
    }))
}

fn has_email(o: &Order, email: &str) -> bool {
    o.email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(email))
        || o.customer
            .as_ref()
            .is_some_and(|c| c.email.eq_ignore_ascii_case(email))
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(q.as_deref());
    if let Some(alt) = params.get("alternate_id") {
        return lookup(&shared, |o| o.alternate_id.as_deref() == Some(alt));
    }
    if let Some(tc) = params.get("tracking_code") {
        return lookup(&shared, |o| {
            o.shipments
                .iter()
                .any(|s| s.tracking_code.eq_ignore_ascii_case(tc))
        });
    }
    let email = params.get("customer_email");
    if let Some(number) = params.get("number") {
        let Some(email) = email else {
            return Err(ApiError::invalid(
                "customer_email",
                "is required together with number",
            ));
        };
        return lookup(&shared, |o| o.number == number && has_email(o, email));
    }
    let req = params.page()?;
    let filters: Vec<(&str, &str)> = email.map(|e| ("customer_email", e)).into_iter().collect();
    shared.read(|st| {
        let page = pagination::page(&st.orders.rows, &req, |o| {
            email.is_none_or(|e| has_email(o, e))
        });
        page_response(&headers, &shared, "/orders", &filters, &req, page)
    })
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "order")?;
    one(shared.read(|st| st.orders.get(&id).map(serialize)))
}

pub async fn create(
    State(shared): State<Arc<Shared>>,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let input = parse_order(&body, true)?;
    one(shared.write(|st| {
        let id = st.create_order(input, now())?;
        Ok::<_, ApiError>(st.orders.get(&id).map(serialize))
    })?)
}

pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let id = parse_id(&id, "order")?;
    let input = parse_order(&body, false)?;
    one(shared.write(|st| {
        st.update_order(id, input, now())?;
        Ok::<_, ApiError>(st.orders.get(&id).map(serialize))
    })?)
}

pub async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "order")?;
    one(Some(shared.write(|st| {
        let body = st
            .orders
            .get(&id)
            .map(serialize)
            .ok_or_else(|| ApiError::not_found("order"))?;
        st.delete_order(id)?;
        Ok::<_, ApiError>(body)
    })?))
}

pub async fn list_events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let id = parse_id(&id, "order")?;
    let req = Params::parse(q.as_deref()).page()?;
    let path = format!("/orders/{id}/events");
    shared.read(|st| {
        let order = st
            .orders
            .get(&id)
            .ok_or_else(|| ApiError::not_found("order"))?;
        let page = pagination::page(&order.events, &req, |_| true);
        page_response(&headers, &shared, &path, &[], &req, page)
    })
}

pub async fn create_event(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let id = parse_id(&id, "order")?;
    let event = shared.write(|st| st.create_order_event(id, &body, now()))?;
    to_json(&event)
}
