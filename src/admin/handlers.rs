//! The admin API's routes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::body;
use super::error::ApiError;
use super::{AdminState, mcp_url};
use crate::access::ToolFilter;
use crate::store::{
    AccountInfo, ClientTokenInfo, CreatedClientToken, CreatedInbox, CreatedServer, NewServer,
    ServerInfo, Store, StoreError,
};

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn account_json(a: &AccountInfo) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "base_url": a.base_url,
        "malomo_api_key": a.masked_api_key,
        "created_at": rfc3339(a.created_at),
    })
}

pub fn server_json(s: &ServerInfo) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "account_id": s.account_id,
        "config": { "methods": s.filter.methods, "tags": s.filter.tags },
        "require_api_token_auth": s.require_api_token_auth,
        "expires_at": s.expires_at.map(rfc3339),
        "answer_budget": s.answer_budget,
        "created_at": rfc3339(s.created_at),
    })
}

/// A client token without its secret.
pub fn client_token_json(t: &ClientTokenInfo) -> Value {
    json!({
        "id": t.id,
        "server_id": t.server_id,
        "created_at": rfc3339(t.created_at),
    })
}

/// A new client token: the only answer that ever shows it.
pub fn created_client_token_json(t: &CreatedClientToken) -> Value {
    let mut answer = client_token_json(&t.info);
    answer["token"] = json!(t.token);
    answer
}

/// A new server with its URL and, when it requires one, its first client
/// token: the only answer that ever shows them.
pub fn created_server_json(created: &CreatedServer, public_url: &str) -> Value {
    let mut answer = server_json(&created.server);
    answer["url"] = json!(mcp_url(public_url, &created.token));
    if let Some(client) = &created.client_token {
        answer["client_token"] = json!(client.token);
        answer["client_token_id"] = json!(client.info.id);
    }
    answer
}

/// A new or rotated inbox: the only answer that ever shows its URL (which
/// holds the token). The signing secret is never shown: the runtime fills
/// it into the webhooks it creates.
pub fn created_inbox_json(created: &CreatedInbox, public_url: &str) -> Value {
    json!({
        "url": crate::events::inbox_url(public_url, &created.token),
        "created_at": rfc3339(created.info.created_at),
    })
}

pub async fn create_account(
    State(state): State<AdminState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut fields = body::object(body)?;
    let name = fields.required_string("name")?;
    let api_key = fields.required_string("malomo_api_key")?;
    let base_url = fields.optional_string("base_url")?;
    fields.finish()?;
    let base_url =
        base_url.unwrap_or_else(|| crate::catalog::INTEGRATION.default_base_url.to_string());
    let account = blocking(&state.store, move |s| {
        s.create_account(&name, &api_key, &base_url)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(account_json(&account))).into_response())
}

pub async fn list_accounts(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let accounts = blocking(&state.store, |s| s.list_accounts()).await?;
    let items: Vec<Value> = accounts.iter().map(account_json).collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn get_account(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = blocking(&state.store, move |s| s.get_account(&id)).await?;
    account
        .map(|a| Json(account_json(&a)))
        .ok_or_else(|| ApiError::not_found("integrated account"))
}

pub async fn delete_account(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match blocking(&state.store, move |s| s.delete_account(&id)).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found("integrated account")),
    }
}

pub async fn create_server(
    State(state): State<AdminState>,
    Path(account_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut fields = body::object(body)?;
    let name = fields.required_string("name")?;
    let mut config = fields.object("config")?;
    let filter = ToolFilter {
        methods: config.string_list("methods")?,
        tags: config.string_list("tags")?,
    };
    config.finish()?;
    let require_api_token_auth = fields
        .optional_bool("require_api_token_auth")?
        .unwrap_or(false);
    let expires_at = fields
        .optional_string("expires_at")?
        .map(|text| {
            OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| {
                ApiError::field(
                    "expires_at",
                    format!("expected an RFC 3339 date-time ({e})"),
                )
            })
        })
        .transpose()?;
    let answer_budget = fields.optional_u64("answer_budget")?;
    fields.finish()?;
    let req = NewServer {
        name,
        filter,
        require_api_token_auth,
        expires_at,
        answer_budget,
    };
    let created = blocking(&state.store, move |s| s.create_server(&account_id, req)).await?;
    let answer = created_server_json(&created, &state.public_url);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn list_servers(
    State(state): State<AdminState>,
    Path(account_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let servers = blocking(&state.store, move |s| {
        if s.get_account(&account_id)?.is_none() {
            return Err(StoreError::AccountNotFound(account_id));
        }
        s.list_servers(Some(&account_id))
    })
    .await?;
    let items: Vec<Value> = servers.iter().map(server_json).collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn get_server(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let server = blocking(&state.store, move |s| s.get_server(&id)).await?;
    server
        .map(|s| Json(server_json(&s)))
        .ok_or_else(|| ApiError::not_found("MCP server"))
}

pub async fn delete_server(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if blocking(&state.store, move |s| s.delete_server(&id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("MCP server"))
    }
}

pub async fn create_client_token(
    State(state): State<AdminState>,
    Path(server_id): Path<String>,
) -> Result<Response, ApiError> {
    let created = blocking(&state.store, move |s| s.create_client_token(&server_id)).await?;
    let answer = created_client_token_json(&created);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn list_client_tokens(
    State(state): State<AdminState>,
    Path(server_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tokens = blocking(&state.store, move |s| s.list_client_tokens(&server_id)).await?;
    let items: Vec<Value> = tokens.iter().map(client_token_json).collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn delete_client_token(
    State(state): State<AdminState>,
    Path((server_id, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if blocking(&state.store, move |s| {
        s.delete_client_token(&server_id, &token_id)
    })
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("client token"))
    }
}

/// `POST /admin/integrated-accounts/{id}/inbox`: creates the account's
/// event inbox, or rotates it (the old URL answers 404 from now on).
pub async fn rotate_inbox(
    State(state): State<AdminState>,
    Path(account_id): Path<String>,
) -> Result<Response, ApiError> {
    let created = blocking(&state.store, move |s| s.rotate_inbox(&account_id)).await?;
    let answer = created_inbox_json(&created, &state.public_url);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
