//! /customers, /webhooks, /returns, /accounts/self and /_sandbox/tick.

use super::{Params, json_response, page_response, parse_id, to_json};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::input::JsonObject;
use crate::model::now;
use crate::pagination;
use crate::store::{Store, Table};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

type S = State<Arc<Shared>>;

fn show_in<T: Serialize>(
    shared: &Shared,
    raw: &str,
    what: &str,
    table: impl Fn(&Store) -> &Table<T>,
) -> ApiResult<Response> {
    let id = parse_id(raw, what)?;
    shared
        .read(|st| {
            table(st)
                .get(&id)
                .map(|row| serde_json::to_vec(row).unwrap_or_default())
        })
        .map(json_response)
        .ok_or_else(|| ApiError::not_found(what))
}

fn list_in<T: Serialize>(
    shared: &Shared,
    headers: &HeaderMap,
    q: Option<&str>,
    path: &str,
    table: impl Fn(&Store) -> &Table<T>,
) -> ApiResult<Response> {
    let req = Params::parse(q).page()?;
    shared.read(|st| {
        let page = pagination::page(&table(st).rows, &req, |_| true);
        page_response(headers, shared, path, &[], &req, page)
    })
}

/// Runs a write that yields the id of the row to answer with.
fn write_then_show<T: Serialize>(
    shared: &Shared,
    what: &str,
    table: impl Fn(&Store) -> &Table<T>,
    f: impl FnOnce(&mut Store) -> ApiResult<Uuid>,
) -> ApiResult<Response> {
    let body = shared.write(|st| {
        let id = f(st)?;
        Ok::<_, ApiError>(
            table(st)
                .get(&id)
                .map(|row| serde_json::to_vec(row).unwrap_or_default()),
        )
    })?;
    body.map(json_response)
        .ok_or_else(|| ApiError::not_found(what))
}

fn delete_in<T: Serialize>(
    shared: &Shared,
    raw: &str,
    what: &str,
    table: impl Fn(&Store) -> &Table<T>,
    remove: impl FnOnce(&mut Store, Uuid) -> ApiResult<()>,
) -> ApiResult<Response> {
    let id = parse_id(raw, what)?;
    let body = shared.write(|st| {
        let body = table(st)
            .get(&id)
            .map(|row| serde_json::to_vec(row).unwrap_or_default());
        let body = body.ok_or_else(|| ApiError::not_found(what))?;
        remove(st, id)?;
        Ok::<_, ApiError>(body)
    })?;
    Ok(json_response(body))
}

fn customers(st: &Store) -> &Table<crate::model::Customer> {
    &st.customers
}
fn webhooks(st: &Store) -> &Table<crate::model::Webhook> {
    &st.webhooks
}
fn returns(st: &Store) -> &Table<crate::model::Return> {
    &st.returns
}

pub async fn list_customers(
    State(s): S,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_in(&s, &h, q.as_deref(), "/customers", customers)
}
pub async fn show_customer(State(s): S, Path(id): Path<String>) -> ApiResult<Response> {
    show_in(&s, &id, "customer", customers)
}
pub async fn create_customer(State(s): S, JsonObject(b): JsonObject) -> ApiResult<Response> {
    write_then_show(&s, "customer", customers, |st| {
        st.create_customer(&b, now())
    })
}
pub async fn update_customer(
    State(s): S,
    Path(id): Path<String>,
    JsonObject(b): JsonObject,
) -> ApiResult<Response> {
    let id = parse_id(&id, "customer")?;
    write_then_show(&s, "customer", customers, |st| {
        st.update_customer(id, &b, now()).map(|_| id)
    })
}
pub async fn delete_customer(State(s): S, Path(id): Path<String>) -> ApiResult<Response> {
    delete_in(&s, &id, "customer", customers, Store::delete_customer)
}
pub async fn list_customer_events(
    State(s): S,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let id = parse_id(&id, "customer")?;
    let req = Params::parse(q.as_deref()).page()?;
    let path = format!("/customers/{id}/events");
    s.read(|st| {
        let c = st
            .customers
            .get(&id)
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let page = pagination::page(&c.events, &req, |_| true);
        page_response(&h, &s, &path, &[], &req, page)
    })
}

pub async fn list_webhooks(
    State(s): S,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_in(&s, &h, q.as_deref(), "/webhooks", webhooks)
}
pub async fn show_webhook(State(s): S, Path(id): Path<String>) -> ApiResult<Response> {
    show_in(&s, &id, "webhook", webhooks)
}
pub async fn create_webhook(State(s): S, JsonObject(b): JsonObject) -> ApiResult<Response> {
    write_then_show(&s, "webhook", webhooks, |st| st.create_webhook(&b, now()))
}
pub async fn update_webhook(
    State(s): S,
    Path(id): Path<String>,
    JsonObject(b): JsonObject,
) -> ApiResult<Response> {
    let id = parse_id(&id, "webhook")?;
    write_then_show(&s, "webhook", webhooks, |st| {
        st.update_webhook(id, &b, now()).map(|_| id)
    })
}
pub async fn delete_webhook(State(s): S, Path(id): Path<String>) -> ApiResult<Response> {
    delete_in(&s, &id, "webhook", webhooks, Store::delete_webhook)
}

pub async fn list_returns(State(s): S, h: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let params = Params::parse(q.as_deref());
    if let Some(alt) = params.get("alternate_id") {
        let found = s.read(|st| {
            st.returns
                .rows
                .values()
                .rev()
                .find(|r| r.alternate_id.as_deref() == Some(alt))
                .map(|r| serde_json::to_vec(r).unwrap_or_default())
        });
        return found
            .map(json_response)
            .ok_or_else(|| ApiError::not_found("return"));
    }
    list_in(&s, &h, q.as_deref(), "/returns", returns)
}
pub async fn show_return(State(s): S, Path(id): Path<String>) -> ApiResult<Response> {
    show_in(&s, &id, "return", returns)
}
pub async fn create_return(State(s): S, JsonObject(b): JsonObject) -> ApiResult<Response> {
    write_then_show(&s, "return", returns, |st| st.create_return(&b, now()))
}
pub async fn update_return(
    State(s): S,
    Path(id): Path<String>,
    JsonObject(b): JsonObject,
) -> ApiResult<Response> {
    let id = parse_id(&id, "return")?;
    write_then_show(&s, "return", returns, |st| {
        st.update_return(id, &b, now()).map(|_| id)
    })
}

pub async fn account(
    State(s): S,
    kind: Option<axum::Extension<crate::auth::KeyKind>>,
) -> ApiResult<Response> {
    let mut acct = s.read(|st| st.account());
    let key_type = match kind.map(|k| k.0) {
        Some(crate::auth::KeyKind::Publishable) => "publishable",
        _ => "secret",
    };
    acct["key_type"] = key_type.into();
    to_json(&acct)
}

/// Advances every shipment one step, as the background clock does.
pub async fn tick(State(s): S) -> ApiResult<Response> {
    let summary = s.write(|st| st.tick(now()));
    to_json(&summary)
}
