//! Credentials stay in their lane: an admin API token never opens an MCP
//! server, a server's client token never opens the admin API, and a revoked
//! client token is refused on the very next request, whichever process
//! revoked it.

use malomo_mcp::serve::Upstream;
use serde_json::json;

use crate::support::*;

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().expect("a token")
}

const ADMIN: &str = "adm_abuse_token_0123456789abcdef";

struct Guarded {
    server: TestServer,
    id: String,
    url: String,
    client_token: String,
}

/// A server with the default `serve` setup plus one provisioned server
/// that requires a client token.
async fn guarded_server() -> Guarded {
    let server = start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await;
    let (status, created) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "2fa", "config": {"methods": ["read"]}, "require_api_token_auth": true}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    Guarded {
        id: str_of(&created, "id").to_owned(),
        url: str_of(&created, "url").to_owned(),
        client_token: str_of(&created, "client_token").to_owned(),
        server,
    }
}

#[tokio::test]
async fn an_admin_token_is_refused_at_an_mcp_endpoint() {
    let g = guarded_server().await;
    let refused = raw_initialize(&g.url, Some(ADMIN)).await;
    assert_eq!(refused.status(), 401);
    let body = refused.text().await.expect("body");
    assert!(body.contains("admin API tokens are not accepted"), "{body}");
    // Nor is an admin token created with the CLI (stored in the database).
    let stored = g
        .server
        .server
        .store
        .create_admin_token()
        .expect("admin token");
    assert_eq!(raw_initialize(&g.url, Some(&stored)).await.status(), 401);
    // As the capability itself it is just an unknown token, in the URL
    // form and in the header form (`/mcp` + `Authorization`).
    let as_capability = format!("{}/mcp/{ADMIN}", g.server.base());
    assert_eq!(raw_initialize(&as_capability, None).await.status(), 404);
    let header_form = format!("{}/mcp", g.server.base());
    for token in [ADMIN, stored.as_str(), g.client_token.as_str()] {
        assert_eq!(
            raw_initialize(&header_form, Some(token)).await.status(),
            404,
            "a non-capability token at /mcp"
        );
    }
    assert_eq!(
        raw_initialize(&header_form, Some(token_of(g.server.url())))
            .await
            .status(),
        200
    );
    assert_eq!(
        raw_initialize(&g.url, Some(&g.client_token)).await.status(),
        200
    );
    g.server.server.shutdown().await;
}

#[tokio::test]
async fn a_client_token_is_refused_at_the_admin_api() {
    let g = guarded_server().await;
    let http = reqwest::Client::new();
    let base = g.server.base();
    let attempts = [
        http.get(format!("{base}/admin/integrated-accounts")),
        http.post(format!(
            "{base}/admin/integrated-accounts/{}/mcp",
            g.server.server.account_id
        ))
        .json(&json!({"name": "escalated", "config": {"methods": ["write"]}})),
        http.post(format!("{base}/admin/mcp/{}/client-tokens", g.id)),
        http.delete(format!("{base}/admin/mcp/{}", g.id)),
    ];
    for attempt in attempts {
        let response = attempt
            .bearer_auth(&g.client_token)
            .send()
            .await
            .expect("admin call");
        assert_eq!(response.status(), 401);
    }
    // Nothing was created or deleted.
    assert_eq!(
        g.server
            .server
            .store
            .list_servers(None)
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        raw_initialize(&g.url, Some(&g.client_token)).await.status(),
        200
    );
    g.server.server.shutdown().await;
}

#[tokio::test]
async fn a_revoked_client_token_is_refused_at_once() {
    let g = guarded_server().await;
    let store = g.server.server.store.clone();
    // Used first, so that any cache has seen it.
    for _ in 0..3 {
        assert_eq!(
            raw_initialize(&g.url, Some(&g.client_token)).await.status(),
            200
        );
    }
    // Revoked by another process: the CLI on the same database.
    let listed = store.list_client_tokens(&g.id).expect("list");
    let db = g.server.dir.path().join("test.db");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"))
        .args(["servers", "client-tokens", "delete", "--db"])
        .arg(&db)
        .args([&g.id, &listed[0].id])
        .output()
        .await
        .expect("run the CLI");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        raw_initialize(&g.url, Some(&g.client_token)).await.status(),
        401
    );

    // Revoked over the admin API of this process.
    let minted = store.create_client_token(&g.id).expect("mint");
    assert_eq!(
        raw_initialize(&g.url, Some(&minted.token)).await.status(),
        200
    );
    let revoked = reqwest::Client::new()
        .delete(format!(
            "{}/admin/mcp/{}/client-tokens/{}",
            g.server.base(),
            g.id,
            minted.info.id
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        raw_initialize(&g.url, Some(&minted.token)).await.status(),
        401
    );
    g.server.server.shutdown().await;
}
