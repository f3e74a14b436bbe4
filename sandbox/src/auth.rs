//! Authentication, key scopes and rate limiting, in front of every route.

use super::Shared;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Publishable,
}

fn key_of(req: &Request) -> Option<(&str, KeyKind)> {
    let raw = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let key = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))?
        .trim();
    let kind = if key.len() > 3 && key.starts_with("sk_") {
        KeyKind::Secret
    } else if key.len() > 3 && key.starts_with("pk_") {
        KeyKind::Publishable
    } else {
        return None;
    };
    Some((key, kind))
}

/// Publishable keys may only read order and shipment data (orders, their
/// events, returns) and the account they belong to.
fn publishable_may(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path.starts_with("/orders") || path.starts_with("/returns") || path == "/accounts/self")
}

pub async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some((key, kind)) = key_of(&req) else {
        return ApiError::unauthorized().into_response();
    };
    let d = shared.limiter.check(key);
    let limit_headers = [
        ("x-ratelimit-limit", HeaderValue::from(d.limit)),
        ("x-ratelimit-remaining", HeaderValue::from(d.remaining)),
        ("x-ratelimit-reset", HeaderValue::from(d.reset)),
    ];
    let mut resp = if !d.allowed {
        let mut err = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit exceeded for this key; retry in {} s",
                d.retry_after
            ),
        );
        err.headers
            .push((header::RETRY_AFTER, HeaderValue::from(d.retry_after)));
        err.into_response()
    } else if kind == KeyKind::Publishable && !publishable_may(req.method(), req.uri().path()) {
        ApiError::forbidden().into_response()
    } else {
        let mut req = req;
        req.extensions_mut().insert(kind);
        next.run(req).await
    };
    let headers = resp.headers_mut();
    for (name, value) in limit_headers {
        headers.insert(name, value);
    }
    resp
}
