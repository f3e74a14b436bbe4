//! The event inbox: `POST /hooks/{token}`, where Malomo delivers an
//! account's webhooks.
//!
//! A delivery goes through, in order: the token (unknown: 404, like an
//! unknown MCP URL), the size cap (413), the `Malomo-Signature` HMAC made
//! with the inbox's secret (missing or wrong: 401), the inbox's rate limit
//! (429 with `Retry-After`), the payload (not a JSON object: 400), then the
//! store. Only once the store has committed the event (durably) does the
//! inbox answer 2xx and publish an [`EventNotice`] on the node's
//! [`EventHub`]; a redelivery of a stored event answers 2xx and stores
//! nothing. Nothing here logs a token, a secret or a signature.

mod ratelimit;
mod signature;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::events::{EventHub, EventNotice, ReceivedEvent};
use crate::store::{EventOutcome, EventRetention, Store, StoreError};
use ratelimit::RateLimiter;
pub use signature::{SIGNATURE_HEADER, sign, verify};

/// Settings of the inbox (`serve --inbox-*` and `--event-*` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxOptions {
    /// Largest delivery body accepted, in bytes; larger ones get 413.
    pub max_body: usize,
    /// Deliveries an inbox may send at once before it is rate-limited.
    pub rate_burst: u32,
    /// Deliveries per second an inbox's bucket refills.
    pub rate_per_sec: f64,
    /// How many and how old events each account keeps.
    pub retention: EventRetention,
}

impl Default for InboxOptions {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            rate_burst: 200,
            rate_per_sec: 100.0,
            retention: EventRetention::default(),
        }
    }
}

struct InboxState {
    store: Store,
    hub: EventHub,
    limiter: RateLimiter,
    max_body: usize,
}

/// `POST /hooks/{token}`, storing into `store` and announcing on `hub`.
pub fn router(store: Store, hub: EventHub, options: &InboxOptions) -> Router {
    let state = InboxState {
        store,
        hub,
        limiter: RateLimiter::new(options.rate_burst, options.rate_per_sec),
        max_body: options.max_body,
    };
    Router::new()
        .route("/hooks/{token}", post(deliver))
        .with_state(Arc::new(state))
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn stored(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "inbox: storing a delivery failed");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the event could not be stored; deliver it again later",
    )
}

fn not_found() -> Response {
    answer(StatusCode::NOT_FOUND, "not_found", "no inbox at this URL")
}

fn too_large(max: usize) -> Response {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("body: larger than this inbox accepts ({max} bytes)"),
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(StoreError::AccountNotFound(_))) => Err(not_found()),
        Ok(Err(e)) => Err(internal(e)),
        Err(e) => Err(internal(e)),
    }
}

/// The body, or 413 when it is over `max` bytes (declared or sent).
async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<bytes::Bytes, Response> {
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(max)),
        Err(_) => Err(answer(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body: could not be read",
        )),
    }
}

async fn deliver(
    State(state): State<Arc<InboxState>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    match deliver_inner(&state, token, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn deliver_inner(
    state: &InboxState,
    token: String,
    request: Request,
) -> Result<Response, Response> {
    let inbox = blocking(&state.store, move |s| s.resolve_inbox(&token))
        .await?
        .ok_or_else(not_found)?;
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, state.max_body).await?;
    let signature = header_str(&parts.headers, SIGNATURE_HEADER);
    if !signature.is_some_and(|sig| verify(&inbox.secret, &body, sig)) {
        return Err(answer(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "Malomo-Signature: missing, or not the HMAC-SHA256 of the body made with this \
             inbox's secret",
        ));
    }
    if let Err(wait) = state.limiter.take(&inbox.account_id) {
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "this inbox receives too many deliveries; deliver again after Retry-After seconds",
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return Err(response);
    }
    let event = ReceivedEvent::from_delivery(
        header_str(&parts.headers, "malomo-topic"),
        header_str(&parts.headers, "malomo-webhook-id"),
        &body,
    )
    .map_err(|e| answer(StatusCode::BAD_REQUEST, "bad_payload", &e.to_string()))?;
    let (account_id, topic) = (inbox.account_id.clone(), event.topic.clone());
    let outcome = blocking(&state.store, move |s| {
        s.store_event(&inbox.account_id, &event)
    })
    .await?;
    Ok(match outcome {
        EventOutcome::Stored(seq) => {
            state.hub.publish(EventNotice {
                account_id,
                topic,
                seq,
            });
            stored(serde_json::json!({ "status": "stored", "seq": seq }))
        }
        EventOutcome::Duplicate => stored(serde_json::json!({ "status": "duplicate" })),
    })
}
