//! Provisioned MCP servers enforced at the MCP endpoint: method and tag
//! filters, the second factor, expiry, revocation, restarts, and the token
//! kept out of the database and the logs.

mod support;

use std::time::Duration;

use malomo_mcp::serve::Upstream;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::*;

const ADMIN: &str = "adm_test_token_0123456789abcdef";

async fn provision(server: &TestServer, body: Value) -> Value {
    let (status, value) = provision_with(server, ADMIN, &body).await;
    assert_eq!(status, 201, "{value}");
    value
}

async fn admin_server() -> TestServer {
    start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await
}

#[tokio::test]
async fn read_only_server_cannot_run_write_tools_by_name() {
    let server = admin_server().await;
    let created = provision(
        &server,
        json!({"name": "reader", "config": {"methods": ["read"], "tags": []}}),
    )
    .await;
    let client = handshake_client(str_of(&created, "url")).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    for name in [
        "create_a_malomo_order",
        "delete_a_malomo_order_by_id",
        "add_a_malomo_order_shipment",
    ] {
        assert!(tools.iter().all(|t| t.name != name));
        let filtered = client
            .call_tool(CallToolRequestParams::new(name).with_arguments(args(json!({"id": "x"}))))
            .await
            .expect_err("filtered tool");
        let unknown = client
            .call_tool(CallToolRequestParams::new("no_such_tool"))
            .await
            .expect_err("unknown tool");
        assert_eq!(
            filtered.to_string().replace(name, "NAME"),
            unknown.to_string().replace("no_such_tool", "NAME"),
            "a filtered tool is answered exactly like an unknown one"
        );
    }
    ok(&client, "list_all_malomo_orders", json!({"limit": 1})).await;
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn tag_and_method_filters_are_anded() {
    let server = admin_server().await;
    let created = provision(
        &server,
        json!({"name": "hooks", "config": {"methods": ["list", "create"], "tags": ["webhooks"]}}),
    )
    .await;
    let client = stateless_client(str_of(&created, "url")).await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "create_a_malomo_webhook",
            "list_all_malomo_received_events",
            "list_all_malomo_webhooks"
        ]
    );
    assert!(
        client
            .call_tool(CallToolRequestParams::new("list_all_malomo_orders"))
            .await
            .is_err()
    );
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn second_factor_is_a_client_token_of_that_server_never_an_admin_token() {
    let server = admin_server().await;
    let created = provision(
        &server,
        json!({"name": "2fa", "config": {"methods": [], "tags": []}, "require_api_token_auth": true}),
    )
    .await;
    let other = provision(
        &server,
        json!({"name": "2fa-other", "config": {"methods": [], "tags": []}, "require_api_token_auth": true}),
    )
    .await;
    let url = str_of(&created, "url");
    let client_token = str_of(&created, "client_token");
    let missing = raw_initialize(url, None).await;
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    let wrong = raw_initialize(url, Some("not-the-token")).await;
    assert_eq!(wrong.status(), 401);
    let admin = raw_initialize(url, Some(ADMIN)).await;
    assert_eq!(
        admin.status(),
        401,
        "an admin API token is not a client token"
    );
    let message = admin.text().await.expect("body");
    assert!(message.contains("client token"), "{message}");
    let foreign = raw_initialize(url, Some(str_of(&other, "client_token"))).await;
    assert_eq!(foreign.status(), 401, "another server's client token");
    let right = raw_initialize(url, Some(client_token)).await;
    assert_eq!(right.status(), 200);

    // A minted token works at once; revoked, it is refused at once.
    let http = reqwest::Client::new();
    let tokens_url = format!(
        "{}/admin/mcp/{}/client-tokens",
        server.base(),
        str_of(&created, "id")
    );
    let minted: Value = http
        .post(&tokens_url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("JSON");
    let minted_token = str_of(&minted, "token");
    assert_eq!(raw_initialize(url, Some(minted_token)).await.status(), 200);
    let revoked = http
        .delete(format!("{tokens_url}/{}", str_of(&minted, "id")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    assert_eq!(raw_initialize(url, Some(minted_token)).await.status(), 401);
    assert_eq!(raw_initialize(url, Some(client_token)).await.status(), 200);
    server.server.shutdown().await;
}

#[tokio::test]
async fn expired_and_revoked_servers_answer_like_unknown_tokens() {
    let server = admin_server().await;
    // Long enough that the checks before expiry finish on a loaded machine:
    // the sleep below waits from now until then, however long they took.
    let expires_at = time::OffsetDateTime::now_utc() + Duration::from_secs(8);
    let expiring = provision(
        &server,
        json!({"name": "brief", "config": {"methods": ["read"], "tags": []},
               "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).expect("format")}),
    )
    .await;
    let revoked = provision(
        &server,
        json!({"name": "gone", "config": {"methods": [], "tags": []}}),
    )
    .await;
    let unknown = raw_initialize(
        &format!(
            "{}/mcp/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            server.base()
        ),
        None,
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let unknown_body = unknown.text().await.expect("body");

    assert_eq!(
        raw_initialize(str_of(&expiring, "url"), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        raw_initialize(str_of(&revoked, "url"), None).await.status(),
        200
    );

    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/admin/mcp/{}",
            server.base(),
            str_of(&revoked, "id")
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("DELETE");
    assert!(deleted.status().is_success());
    let after_revoke = raw_initialize(str_of(&revoked, "url"), None).await;
    assert_eq!(after_revoke.status(), 404);
    assert_eq!(after_revoke.text().await.expect("body"), unknown_body);

    // Expiry takes effect from its second on (within a second of it).
    let wait = expires_at - time::OffsetDateTime::now_utc() + Duration::from_millis(1100);
    tokio::time::sleep(wait.try_into().unwrap_or(Duration::from_secs(3))).await;
    let after_expiry = raw_initialize(str_of(&expiring, "url"), None).await;
    assert_eq!(after_expiry.status(), 404);
    assert_eq!(after_expiry.text().await.expect("body"), unknown_body);
    server.server.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_provisioned_servers_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keep.db");
    let start = |db: std::path::PathBuf| async move {
        malomo_mcp::serve::start(malomo_mcp::serve::ServeOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            db,
            public_url: None,
            allowed_hosts: Vec::new(),
            upstream: Upstream::Sandbox(quiet_sandbox()),
            admin_token: Some(ADMIN.to_owned()),
            upstream_timeout: Duration::from_secs(5),
            max_upstream_body: malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY,
            limits: Default::default(),
            node_name: None,
            sweep_every: Duration::from_secs(15),
            inbox: Default::default(),
        })
        .await
        .expect("server starts")
    };
    let first = start(db.clone()).await;
    let created = reqwest::Client::new()
        .post(format!(
            "http://{}/admin/integrated-accounts/{}/mcp",
            first.addr, first.account_id
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "kept", "config": {"methods": ["read"], "tags": ["orders"]}}))
        .send()
        .await
        .expect("provision")
        .json::<Value>()
        .await
        .expect("JSON");
    let path = url::Url::parse(str_of(&created, "url"))
        .expect("url")
        .path()
        .to_owned();
    first.shutdown().await;

    // A new process: new port, new sandbox port; the same capability path.
    let second = start(db).await;
    let url = format!("http://{}{}", second.addr, path);
    let client = handshake_client(&url).await;
    let page = ok(&client, "list_all_malomo_orders", json!({"limit": 1})).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let _ = client.cancel().await;
    second.shutdown().await;
}

/// The binary's logs (even at trace level) and its database never contain the
/// capability token, the second-factor token or the upstream key.
#[tokio::test]
async fn token_is_absent_from_the_database_and_the_logs() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("secret.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("MALOMO_MCP_LOG", "trace")
        .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN)
        .env_remove("MALOMO_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    // Drain the logs as they come, so the server never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut url = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(found) = line.split_whitespace().find(|w| w.contains("/mcp/")) {
            url = Some(found.to_owned());
            break;
        }
    }
    let url = url.expect("serve prints the MCP URL");
    let token = url.rsplit('/').next().expect("token").to_owned();
    let base = url.split("/mcp/").next().expect("base").to_owned();
    let client = handshake_client(&url).await;
    ok(&client, "get_current_malomo_account", json!({})).await;
    let _ = tool_error(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": "missing"}),
    )
    .await;
    let _ = client.cancel().await;
    let _ = raw_initialize(&format!("{url}x"), None).await;
    // The header form carries the capability in `Authorization`.
    assert_eq!(
        raw_initialize(&format!("{base}/mcp"), Some(&token))
            .await
            .status(),
        200
    );
    let _ = raw_initialize(&format!("{base}/mcp"), Some(&format!("{token}x"))).await;

    // A server behind the second factor, used with its client token (and
    // refused with the admin token).
    let http = reqwest::Client::new();
    let accounts: Value = http
        .get(format!("{base}/admin/integrated-accounts"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("GET accounts")
        .json()
        .await
        .expect("JSON");
    let account_id = accounts
        .as_array()
        .and_then(|a| a.first())
        .or_else(|| accounts.get("items").and_then(|i| i.get(0)))
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("an account in {accounts}"))
        .to_owned();
    let second: Value = http
        .post(format!("{base}/admin/integrated-accounts/{account_id}/mcp"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "2fa", "config": {"methods": [], "tags": []}, "require_api_token_auth": true}))
        .send()
        .await
        .expect("POST mcp")
        .json()
        .await
        .expect("JSON");
    let second_url = str_of(&second, "url").to_owned();
    let second_token = second_url.rsplit('/').next().expect("token").to_owned();
    let client_token = str_of(&second, "client_token").to_owned();
    let minted: Value = http
        .post(format!(
            "{base}/admin/mcp/{}/client-tokens",
            str_of(&second, "id")
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("mint a client token")
        .json()
        .await
        .expect("JSON");
    let minted_token = str_of(&minted, "token").to_owned();
    assert_eq!(raw_initialize(&second_url, Some(ADMIN)).await.status(), 401);
    assert_eq!(
        raw_initialize(&second_url, Some(&minted_token))
            .await
            .status(),
        200
    );
    let guarded: Client = rmcp::ServiceExt::serve(
        (),
        rmcp::transport::StreamableHttpClientTransport::from_config(
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                second_url.clone(),
            )
            .auth_header(client_token.clone()),
        ),
    )
    .await
    .expect("initialize with the second factor");
    ok(&guarded, "list_all_malomo_orders", json!({"limit": 1})).await;
    let _ = guarded.cancel().await;

    child.start_kill().expect("kill");
    let _ = child.wait().await;
    let logs = logs.await.expect("logs");
    assert!(logs.contains("tool call"), "tool calls are logged");
    for (what, secret) in [
        ("the capability token", token.as_str()),
        ("the second server's token", second_token.as_str()),
        ("the admin token", ADMIN),
        ("the client token", client_token.as_str()),
        ("the minted client token", minted_token.as_str()),
        ("the API key", malomo_mcp::sandbox::EXAMPLE_SECRET_KEY),
    ] {
        assert!(!logs.contains(secret), "{what} leaked into the logs");
    }
    for file in ["secret.db", "secret.db-wal", "secret.db-shm"] {
        let path = dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            let haystack = String::from_utf8_lossy(&bytes);
            assert!(!haystack.contains(&token), "token in {file}");
            assert!(!haystack.contains(&second_token), "token in {file}");
            assert!(!haystack.contains(ADMIN), "admin token in {file}");
            assert!(!haystack.contains(&client_token), "client token in {file}");
            assert!(!haystack.contains(&minted_token), "client token in {file}");
            assert!(
                !haystack.contains(malomo_mcp::sandbox::EXAMPLE_SECRET_KEY),
                "key in {file}"
            );
        }
    }
}
