//! HTTP routes: thin handlers that parse, call the store under its lock,
//! and serialize straight to bytes.

mod orders;
mod others;

use super::Shared;
use super::error::{ApiError, ApiResult};
use super::pagination::{self, Page, PageRequest};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/orders", get(orders::list).post(orders::create))
        .route(
            "/orders/{id}",
            get(orders::show).put(orders::update).delete(orders::delete),
        )
        .route(
            "/orders/{id}/events",
            get(orders::list_events).post(orders::create_event),
        )
        .route(
            "/customers",
            get(others::list_customers).post(others::create_customer),
        )
        .route(
            "/customers/{id}",
            get(others::show_customer)
                .put(others::update_customer)
                .delete(others::delete_customer),
        )
        .route("/customers/{id}/events", get(others::list_customer_events))
        .route(
            "/webhooks",
            get(others::list_webhooks).post(others::create_webhook),
        )
        .route(
            "/webhooks/{id}",
            get(others::show_webhook)
                .put(others::update_webhook)
                .delete(others::delete_webhook),
        )
        .route(
            "/returns",
            get(others::list_returns).post(others::create_return),
        )
        .route(
            "/returns/{id}",
            get(others::show_return).put(others::update_return),
        )
        .route("/accounts/self", get(others::account))
        .route("/_sandbox/tick", post(others::tick))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            super::auth::gate,
        ))
        .with_state(shared)
}

/// A 200 with a JSON body already serialized.
pub fn json_response(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn to_json<T: Serialize + ?Sized>(v: &T) -> ApiResult<Response> {
    serde_json::to_vec(v).map(json_response).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            e.to_string(),
        )
    })
}

/// Path ids that are not UUIDs cannot name anything: 404, as for a miss.
pub fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// Query parameters as (name, value) pairs.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn page(&self) -> ApiResult<PageRequest> {
        PageRequest::from_query(self.get("limit"), self.get("next"), self.get("prev"))
    }
}

/// A list page: a bare JSON array plus the `Link` header.
pub fn page_response<V: Serialize>(
    headers: &HeaderMap,
    shared: &Shared,
    path: &str,
    filters: &[(&str, &str)],
    req: &PageRequest,
    page: Page<'_, V>,
) -> ApiResult<Response> {
    let mut resp = to_json(&page.items)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| shared.addr.to_string());
    let base = format!("http://{host}{path}");
    if let Some(link) = pagination::link_header(&base, filters, req, page.next, page.prev)
        && let Ok(v) = HeaderValue::from_str(&link)
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    Ok(resp)
}
