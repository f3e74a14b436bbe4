//! The header form (`/mcp` with `Authorization: Bearer <capability token>`)
//! is the same server as `/mcp/{token}`, for both transports, and a
//! 2025-11-25 session ends with a 2xx answer to its DELETE.

mod support;

use std::time::Duration;

use malomo_mcp::sandbox::DEMO_EMAIL;
use malomo_mcp::serve::Upstream;
use rmcp::model::ProtocolVersion;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};
use support::*;

const ADMIN: &str = "adm_header_form_0123456789abcdef";

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().expect("a token")
}

/// A handshake client on `/mcp` sending the capability as a bearer token.
async fn header_client(base: &str, token: &str) -> Client {
    malomo_mcp::install_crypto_provider();
    tokio::time::timeout(
        ANSWER_WITHIN,
        ().serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token),
        )),
    )
    .await
    .expect("initialize answered in time")
    .expect("initialize over the header form")
}

async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[tokio::test]
async fn the_header_form_is_the_same_server_as_the_url_form() {
    let server = start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await;
    let base = server.base();
    let by_url = handshake_client(server.url()).await;
    let by_header = header_client(&base, token_of(server.url())).await;
    let all = tool_names(&by_url).await;
    assert_eq!(tool_names(&by_header).await, all);
    let page = ok(
        &by_header,
        "list_all_malomo_orders",
        json!({"customer_email": DEMO_EMAIL}),
    )
    .await;
    assert!(
        !page["items"].as_array().expect("items").is_empty(),
        "{page}"
    );
    let _ = by_url.cancel().await;
    let _ = by_header.cancel().await;

    // A provisioned server keeps its scope in the header form.
    let (_, reader) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "reader", "config": {"methods": ["read"], "tags": ["orders"]}}),
    )
    .await;
    let reader_token = token_of(str_of(&reader, "url"));
    let by_header = header_client(&base, reader_token).await;
    let scoped = tool_names(&by_header).await;
    let by_url = handshake_client(str_of(&reader, "url")).await;
    assert_eq!(scoped, tool_names(&by_url).await);
    assert!(scoped.len() < all.len(), "{scoped:?}");
    assert!(scoped.iter().all(|name| !name.starts_with("delete_")));
    let _ = by_url.cancel().await;
    let _ = by_header.cancel().await;

    // The stateless 2026-07-28 mode too.
    let stateless = tokio::time::timeout(
        ANSWER_WITHIN,
        ().serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
                    .auth_header(reader_token),
            ),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        ),
    )
    .await
    .expect("server/discover in time")
    .expect("server/discover over the header form");
    assert_eq!(tool_names(&stateless).await, scoped);
    ok(&stateless, "list_all_malomo_orders", json!({"limit": 1})).await;
    let _ = stateless.cancel().await;
    server.server.shutdown().await;
}

async fn header_initialize(base: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        );
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.expect("POST /mcp")
}

#[tokio::test]
async fn unknown_revoked_and_expired_tokens_get_the_same_404_in_both_forms() {
    let server = start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await;
    let base = server.base();
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let by_url = raw_initialize(&format!("{base}/mcp/{unknown}"), None).await;
    assert_eq!(by_url.status(), 404);
    let expected = by_url.text().await.expect("body");

    let expires_at = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    let (_, expiring) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "brief", "config": {},
               "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).expect("format")}),
    )
    .await;
    let (_, revoked) = provision_with(&server, ADMIN, &json!({"name": "gone", "config": {}})).await;
    let revoked_token = token_of(str_of(&revoked, "url"));
    let expiring_token = token_of(str_of(&expiring, "url"));
    assert_eq!(
        header_initialize(&base, Some(&format!("Bearer {revoked_token}")))
            .await
            .status(),
        200
    );
    assert!(
        server
            .server
            .store
            .delete_server(str_of(&revoked, "id"))
            .expect("revoke")
    );
    let wait = expires_at - time::OffsetDateTime::now_utc() + Duration::from_millis(1100);
    tokio::time::sleep(wait.try_into().unwrap_or(Duration::from_secs(3))).await;

    for token in [unknown, revoked_token, expiring_token, ADMIN] {
        let response = header_initialize(&base, Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.text().await.expect("body"), expected);
    }

    // No bearer at all: say how to send one.
    for auth in [None, Some("Basic Zm9vOmJhcg=="), Some("Bearer ")] {
        let response = header_initialize(&base, auth).await;
        assert_eq!(response.status(), 401, "{auth:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body = response.text().await.expect("body");
        assert!(body.contains("Authorization: Bearer"), "{body}");
    }
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_requires_a_client_token_refuses_the_header_form() {
    let server = start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await;
    let (_, guarded) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "2fa", "config": {}, "require_api_token_auth": true}),
    )
    .await;
    let capability = token_of(str_of(&guarded, "url"));
    let response = header_initialize(&server.base(), Some(&format!("Bearer {capability}"))).await;
    assert_eq!(response.status(), 401);
    let body = response.text().await.expect("body");
    assert!(body.contains("use its URL form"), "{body}");
    // The URL form with the client token works.
    let url_form = raw_initialize(
        str_of(&guarded, "url"),
        Some(str_of(&guarded, "client_token")),
    )
    .await;
    assert_eq!(url_form.status(), 200);
    server.server.shutdown().await;
}

/// Opens a 2025-11-25 session at `url` (with `auth` when given) and
/// returns its id.
async fn open_session(http: &reqwest::Client, url: &str, auth: Option<&str>) -> String {
    let with_auth = |request: reqwest::RequestBuilder| match auth {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = with_auth(http.post(url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let initialized = with_auth(http.post(url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .expect("initialized");
    assert!(initialized.status().is_success());
    session
}

async fn in_session(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    session: &str,
) -> reqwest::Response {
    let mut request = http
        .request(method, url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    request
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
        .send()
        .await
        .expect("request in the session")
}

#[tokio::test]
async fn deleting_a_session_answers_2xx_and_ends_it() {
    let server = start_server(quiet_sandbox()).await;
    let http = reqwest::Client::new();
    let header_url = format!("{}/mcp", server.base());
    let token = token_of(server.url());
    for (url, auth) in [(server.url(), None), (header_url.as_str(), Some(token))] {
        let session = open_session(&http, url, auth).await;
        let live = in_session(&http, reqwest::Method::POST, url, auth, &session).await;
        assert_eq!(live.status(), 200);
        let deleted = in_session(&http, reqwest::Method::DELETE, url, auth, &session).await;
        assert!(
            matches!(deleted.status().as_u16(), 200 | 204),
            "DELETE answered {}",
            deleted.status()
        );
        let after = in_session(&http, reqwest::Method::POST, url, auth, &session).await;
        assert_eq!(after.status(), 404, "the session has ended");
    }
    server.server.shutdown().await;
}

#[tokio::test]
async fn legacy_sse_has_a_header_form_too() {
    let server = start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await;
    let base = server.base();
    let token = token_of(server.url()).to_owned();
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{base}/mcp/sse"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /mcp/sse");
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let (event, endpoint) = sse.next_event().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/mcp/message?"), "{endpoint}");
    assert!(
        !endpoint.contains(&token),
        "the header form keeps the token out of URLs"
    );
    let post_url = format!("{base}{endpoint}");
    let accepted = http
        .post(&post_url)
        .bearer_auth(&token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}}))
        .send()
        .await
        .expect("POST initialize");
    assert_eq!(accepted.status(), 202);
    let (_, init) = sse.next_event().await;
    let init: Value = serde_json::from_str(&init).expect("JSON-RPC");
    assert_eq!(init["result"]["protocolVersion"], json!("2024-11-05"));

    // The session's messages need the same capability in the header.
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let bare = http.post(&post_url).json(&ping).send().await.expect("POST");
    assert_eq!(bare.status(), 401);
    let (_, other) = provision_with(&server, ADMIN, &json!({"name": "other", "config": {}})).await;
    let foreign = http
        .post(&post_url)
        .bearer_auth(token_of(str_of(&other, "url")))
        .json(&ping)
        .send()
        .await
        .expect("POST");
    assert_eq!(foreign.status(), 404);

    // A server that requires a client token refuses it here as well.
    let (_, guarded) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "2fa", "config": {}, "require_api_token_auth": true}),
    )
    .await;
    let refused = http
        .get(format!("{base}/mcp/sse"))
        .bearer_auth(token_of(str_of(&guarded, "url")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /mcp/sse");
    assert_eq!(refused.status(), 401);
    server.server.shutdown().await;
}
