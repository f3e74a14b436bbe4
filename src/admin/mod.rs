//! The admin side: the HTTP admin API under `/admin/` and the `servers` /
//! `admin-token` CLI commands, both over [`crate::store::Store`].

mod body;
pub mod cli;
mod error;
mod handlers;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get};

pub use cli::{AdminTokenCommand, ServersCommand, run_admin_token, run_servers};
pub use error::ApiError;

use crate::store::Store;

/// Largest accepted admin request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    /// Base of the MCP URLs handed out, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
}

/// `{public_url}/mcp/{token}`.
pub fn mcp_url(public_url: &str, token: &str) -> String {
    format!("{}/mcp/{token}", public_url.trim_end_matches('/'))
}

/// Every admin route, prefixed with `/admin`, behind admin-token auth.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/integrated-accounts",
            get(handlers::list_accounts).post(handlers::create_account),
        )
        .route(
            "/admin/integrated-accounts/{id}",
            get(handlers::get_account).delete(handlers::delete_account),
        )
        .route(
            "/admin/integrated-accounts/{id}/mcp",
            get(handlers::list_servers).post(handlers::create_server),
        )
        .route(
            "/admin/integrated-accounts/{id}/inbox",
            axum::routing::post(handlers::rotate_inbox),
        )
        .route(
            "/admin/mcp/{id}",
            delete(handlers::delete_server).get(handlers::get_server),
        )
        .route(
            "/admin/mcp/{id}/client-tokens",
            get(handlers::list_client_tokens).post(handlers::create_client_token),
        )
        .route(
            "/admin/mcp/{id}/client-tokens/{token_id}",
            delete(handlers::delete_client_token),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn require_admin(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = bearer_token(request.headers()).map(str::to_string) else {
        return Err(ApiError::unauthorized());
    };
    let store = state.store.clone();
    let ok = tokio::task::spawn_blocking(move || store.verify_admin_token(&token))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}
