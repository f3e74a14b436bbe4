//! The admin API over HTTP, the store behind it, server filters and the
//! admin CLI.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use malomo_mcp::access::ToolFilter;
use malomo_mcp::admin::cli::{
    AdminTokenCommand, ClientTokensCommand, DbArgs, ServersCommand, execute_admin_token,
    execute_servers,
};
use malomo_mcp::admin::{AdminState, router};
use malomo_mcp::catalog::{Annotations, Behavior, HttpMethod, MethodClass, PathPart, ToolDef};
use malomo_mcp::store::{NewServer, Store, spawn_sweeper};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const fn tool(
    name: &'static str,
    method: &'static str,
    class: MethodClass,
    tags: &'static [&'static str],
) -> ToolDef {
    ToolDef {
        name,
        index: 0,
        title: name,
        description: &[],
        resource: "orders",
        method,
        class,
        custom: false,
        tags,
        http_method: HttpMethod::Get,
        path: &[PathPart::Literal("/x")],
        fields: &[],
        input_schema: "{}",
        output_schema: "{}",
        annotations: Annotations {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: true,
        },
        pagination: None,
        behavior: Behavior::Direct,
        projection: None,
    }
}

static TABLE: &[&ToolDef] = &[
    &tool(
        "list_all_malomo_orders",
        "list",
        MethodClass::Read,
        &["orders"],
    ),
    &tool(
        "create_a_malomo_order",
        "create",
        MethodClass::Write,
        &["orders"],
    ),
    &tool(
        "delete_a_malomo_order_by_id",
        "delete",
        MethodClass::Write,
        &["orders"],
    ),
    &tool(
        "list_all_malomo_customers",
        "list",
        MethodClass::Read,
        &["customers"],
    ),
    &ToolDef {
        custom: true,
        ..tool(
            "add_malomo_order_shipment",
            "add_shipment",
            MethodClass::Write,
            &["orders", "shipments"],
        )
    },
];

const MASTER_KEY: [u8; 32] = [42u8; 32];
const API_KEY: &str = "sk_test_SECRETvalue_0123456789abcd";

struct Harness {
    _dir: tempfile::TempDir,
    db: PathBuf,
    store: Store,
    base: String,
    admin_token: String,
    client: reqwest::Client,
}

fn open_store(db: &std::path::Path) -> Store {
    Store::open_with_key(db, &MASTER_KEY)
        .unwrap()
        .with_tools(TABLE)
}

async fn start() -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("admin.db");
    let store = open_store(&db);
    let admin_token = store.create_admin_token().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AdminState {
        store: store.clone(),
        public_url: "https://mcp.example.test/".to_string(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        _dir: dir,
        db,
        store,
        base,
        admin_token,
        client: reqwest::Client::new(),
    }
}

impl Harness {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body.to_string()))
            .await
    }

    async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body.to_string()))
            .await
    }

    async fn delete(&self, path: &str) -> StatusCode {
        self.send(reqwest::Method::DELETE, path, None).await.0
    }

    async fn account(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/admin/integrated-accounts",
                json!({"name": name, "malomo_api_key": API_KEY, "base_url": "http://127.0.0.1:9"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Creates a server; returns its JSON answer and the token of its URL.
    async fn server(&self, account: &str, body: Value) -> (Value, String) {
        let (status, answer) = self
            .post(&format!("/admin/integrated-accounts/{account}/mcp"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let url = answer["url"].as_str().unwrap();
        let token = url
            .strip_prefix("https://mcp.example.test/mcp/")
            .unwrap()
            .to_string();
        (answer, token)
    }
}

fn assert_field_error(status: StatusCode, body: &Value, want_status: StatusCode, field: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().len() > 3,
        "{body}"
    );
}

#[tokio::test]
async fn admin_api_refuses_missing_and_wrong_tokens() {
    let h = start().await;
    let url = format!("{}/admin/integrated-accounts", h.base);
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic Zm9vOmJhcg=="),
        Some("Bearer "),
    ] {
        let mut req = h.client.get(&url);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let resp = h
        .client
        .get(&url)
        .bearer_auth(&h.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // MALOMO_MCP_ADMIN_TOKEN is accepted for the life of the process.
    h.store.add_admin_token_hash("env-admin-token").unwrap();
    let resp = h
        .client
        .get(&url)
        .bearer_auth("env-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = h
        .client
        .delete(format!("{}/admin/mcp/x", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn accounts_are_created_listed_fetched_and_deleted_with_masked_keys() {
    let h = start().await;
    let id = h.account("acme").await;
    let (status, one) = h.get(&format!("/admin/integrated-accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "acme");
    assert_eq!(one["base_url"], "http://127.0.0.1:9");
    assert_eq!(one["malomo_api_key"], "sk_…abcd");
    OffsetDateTime::parse(one["created_at"].as_str().unwrap(), &Rfc3339).unwrap();

    let (status, list) = h.get("/admin/integrated-accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("SECRET"), "{list}");

    let (status, body) = h
        .post(
            "/admin/integrated-accounts",
            json!({"name": "acme", "malomo_api_key": API_KEY}),
        )
        .await;
    assert_field_error(status, &body, StatusCode::CONFLICT, "name");

    let (status, default) = h
        .post(
            "/admin/integrated-accounts",
            json!({"name": "other", "malomo_api_key": "sk_live_zzzzzzzz9999"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(default["base_url"], "https://api.gomalomo.com");

    assert_eq!(
        h.delete(&format!("/admin/integrated-accounts/{id}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&format!("/admin/integrated-accounts/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.delete(&format!("/admin/integrated-accounts/{id}")).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn secrets_never_reach_the_database_file() {
    let h = start().await;
    let account = h.account("acme").await;
    let (_, token) = h.server(&account, json!({"name": "s", "config": {}})).await;
    let (guarded, _) = h
        .server(
            &account,
            json!({"name": "2fa", "config": {}, "require_api_token_auth": true}),
        )
        .await;
    let client_token = guarded["client_token"].as_str().unwrap();
    let raw_client_token = URL_SAFE_NO_PAD.decode(client_token).unwrap();
    let raw_token = URL_SAFE_NO_PAD.decode(&token).unwrap();
    assert_eq!(raw_token.len(), 32);

    let mut files = 0;
    for entry in std::fs::read_dir(h.db.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("admin.db") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(API_KEY.as_bytes()), "API key in {name}");
        assert!(!contains(b"SECRETvalue"), "part of the API key in {name}");
        assert!(!contains(token.as_bytes()), "token in {name}");
        assert!(!contains(&raw_token), "raw token bytes in {name}");
        assert!(!contains(client_token.as_bytes()), "client token in {name}");
        assert!(!contains(&raw_client_token), "raw client token in {name}");
        assert!(!contains(h.admin_token.as_bytes()), "admin token in {name}");
    }
    assert!(files >= 1);
}

#[tokio::test]
async fn servers_answer_a_url_once_and_lists_never_show_tokens() {
    let h = start().await;
    let account = h.account("acme").await;
    let (created, token) = h
        .server(
            &account,
            json!({"name": "orders reader", "config": {"methods": ["read"], "tags": ["orders"]},
                   "require_api_token_auth": true}),
        )
        .await;
    assert_eq!(created["name"], "orders reader");
    assert_eq!(
        created["config"],
        json!({"methods": ["read"], "tags": ["orders"]})
    );
    assert_eq!(created["require_api_token_auth"], true);
    assert_eq!(created["expires_at"], Value::Null);
    assert_eq!(
        created["answer_budget"],
        Value::Null,
        "the tools' own budgets"
    );
    assert_eq!(token.len(), 43);

    let (status, list) = h
        .get(&format!("/admin/integrated-accounts/{account}/mcp"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created["id"]);
    assert!(items[0].get("url").is_none());
    assert!(!list.to_string().contains(&token));
    let (_, one) = h
        .get(&format!("/admin/mcp/{}", created["id"].as_str().unwrap()))
        .await;
    assert!(!one.to_string().contains(&token));

    let resolved = h.store.resolve_token(&token).unwrap().unwrap();
    assert_eq!(resolved.account_id, account);
    assert_eq!(resolved.api_key, API_KEY);
    assert_eq!(resolved.base_url, "http://127.0.0.1:9");
    assert!(resolved.require_api_token_auth);
    assert!(!format!("{resolved:?}").contains("SECRET"));

    assert_eq!(
        h.get("/admin/integrated-accounts/nope/mcp").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = h
        .post("/admin/integrated-accounts/nope/mcp", json!({"name": "s"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn client_tokens_are_minted_listed_and_revoked_over_the_api() {
    let h = start().await;
    let account = h.account("acme").await;
    let (created, _) = h
        .server(
            &account,
            json!({"name": "2fa", "config": {}, "require_api_token_auth": true}),
        )
        .await;
    let server = created["id"].as_str().unwrap();
    let first = created["client_token"].as_str().unwrap().to_string();
    assert_eq!(URL_SAFE_NO_PAD.decode(&first).unwrap().len(), 32);
    assert!(h.store.verify_client_token(server, &first).unwrap());

    let path = format!("/admin/mcp/{server}/client-tokens");
    let (status, minted) = h.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let second = minted["token"].as_str().unwrap().to_string();
    let second_id = minted["id"].as_str().unwrap().to_string();
    assert!(minted["created_at"].is_string());
    assert_ne!(second, first);
    assert!(h.store.verify_client_token(server, &second).unwrap());

    let (status, list) = h.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [created["client_token_id"].as_str().unwrap(), &second_id]
    );
    assert!(!list.to_string().contains(&first));
    assert!(!list.to_string().contains(&second));
    assert!(list["items"][0].get("token").is_none());

    assert_eq!(
        h.delete(&format!("{path}/{second_id}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(!h.store.verify_client_token(server, &second).unwrap());
    assert!(h.store.verify_client_token(server, &first).unwrap());
    assert_eq!(
        h.delete(&format!("{path}/{second_id}")).await,
        StatusCode::NOT_FOUND
    );

    // A server without a second factor has no use for client tokens.
    let (plain, _) = h.server(&account, json!({"name": "plain"})).await;
    assert!(plain.get("client_token").is_none());
    let (status, body) = h
        .post(
            &format!("/admin/mcp/{}/client-tokens", plain["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_second_factor");
    assert_eq!(
        h.post("/admin/mcp/nope/client-tokens", json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/admin/mcp/nope/client-tokens").await.0,
        StatusCode::NOT_FOUND
    );

    // Deleting the server deletes its client tokens.
    assert_eq!(
        h.delete(&format!("/admin/mcp/{server}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(!h.store.verify_client_token(server, &first).unwrap());
    assert_eq!(h.get(&path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_token_is_refused_at_the_admin_api() {
    let h = start().await;
    let account = h.account("acme").await;
    let (created, capability) = h
        .server(
            &account,
            json!({"name": "2fa", "config": {}, "require_api_token_auth": true}),
        )
        .await;
    let client_token = created["client_token"].as_str().unwrap();
    for token in [client_token, capability.as_str()] {
        let resp = h
            .client
            .get(format!("{}/admin/integrated-accounts", h.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = h
            .client
            .post(format!(
                "{}/admin/integrated-accounts/{account}/mcp",
                h.base
            ))
            .bearer_auth(token)
            .json(&json!({"name": "escalated"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(h.store.list_servers(None).unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_filter_values_are_refused_with_the_valid_ones() {
    let h = start().await;
    let account = h.account("acme").await;
    let path = format!("/admin/integrated-accounts/{account}/mcp");
    let (status, body) = h
        .post(&path, json!({"name": "s", "config": {"methods": ["reed"]}}))
        .await;
    assert_field_error(status, &body, StatusCode::BAD_REQUEST, "config.methods");
    let message = body["error"]["message"].as_str().unwrap();
    for valid in [
        "read",
        "write",
        "custom",
        "list",
        "get",
        "create",
        "update",
        "delete",
        "add_shipment",
    ] {
        assert!(message.contains(valid), "{message}");
    }
    assert!(
        body["error"]["valid"]
            .as_array()
            .unwrap()
            .contains(&json!("add_shipment"))
    );

    let (status, body) = h
        .post(&path, json!({"name": "s", "config": {"tags": ["order"]}}))
        .await;
    assert_field_error(status, &body, StatusCode::BAD_REQUEST, "config.tags");
    assert_eq!(
        body["error"]["valid"],
        json!(["customers", "orders", "shipments"])
    );
}

#[tokio::test]
async fn a_config_leaving_no_tool_is_422() {
    let h = start().await;
    let account = h.account("acme").await;
    let path = format!("/admin/integrated-accounts/{account}/mcp");
    let (status, body) = h
        .post(
            &path,
            json!({"name": "s", "config": {"methods": ["delete"], "tags": ["customers"]}}),
        )
        .await;
    assert_field_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "config");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tool"),
        "{body}"
    );
    assert!(h.store.list_servers(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_servers_answer_budget_is_answered_listed_and_resolved() {
    let h = start().await;
    let account = h.account("acme").await;
    let (created, token) = h
        .server(&account, json!({"name": "small", "answer_budget": 2048}))
        .await;
    assert_eq!(created["answer_budget"], 2048);
    let id = created["id"].as_str().unwrap();
    let (status, got) = h.get(&format!("/admin/mcp/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["answer_budget"], 2048);
    let (_, list) = h
        .get(&format!("/admin/integrated-accounts/{account}/mcp"))
        .await;
    assert_eq!(list["items"][0]["answer_budget"], 2048, "{list}");
    let resolved = h.store.resolve_token(&token).unwrap().unwrap();
    assert_eq!(resolved.answer_budget, Some(2048));
}

#[tokio::test]
async fn expires_at_must_be_a_future_rfc3339_time() {
    let h = start().await;
    let account = h.account("acme").await;
    let path = format!("/admin/integrated-accounts/{account}/mcp");
    let past = (OffsetDateTime::now_utc() - Duration::from_secs(60))
        .format(&Rfc3339)
        .unwrap();
    let (status, body) = h
        .post(&path, json!({"name": "s", "expires_at": past}))
        .await;
    assert_field_error(status, &body, StatusCode::BAD_REQUEST, "expires_at");
    let (status, body) = h
        .post(&path, json!({"name": "s", "expires_at": "tomorrow"}))
        .await;
    assert_field_error(status, &body, StatusCode::BAD_REQUEST, "expires_at");
    assert!(h.store.list_servers(None).unwrap().is_empty());
}

#[tokio::test]
async fn revoked_and_unknown_tokens_do_not_resolve() {
    let h = start().await;
    let account = h.account("acme").await;
    let (created, token) = h.server(&account, json!({"name": "s"})).await;
    assert!(h.store.resolve_token(&token).unwrap().is_some());
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        h.delete(&format!("/admin/mcp/{id}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(h.store.resolve_token(&token).unwrap().is_none());
    assert_eq!(
        h.delete(&format!("/admin/mcp/{id}")).await,
        StatusCode::NOT_FOUND
    );

    // A second handle on the same file (another process, say) sees it too.
    let (_, token) = h.server(&account, json!({"name": "s2"})).await;
    let other = open_store(&h.db);
    assert!(other.resolve_token(&token).unwrap().is_some());
    // Resolved (and cached) here before the other handle revokes it.
    assert!(h.store.resolve_token(&token).unwrap().is_some());
    assert!(h.store.resolve_token(&token).unwrap().is_some());
    let id = h.store.list_servers(None).unwrap()[0].id.clone();
    assert!(other.delete_server(&id).unwrap());
    assert!(h.store.resolve_token(&token).unwrap().is_none());

    for unknown in ["", "nope", &"A".repeat(43), &"x".repeat(10_000)] {
        assert!(h.store.resolve_token(unknown).unwrap().is_none());
    }
}

#[tokio::test]
async fn expired_servers_stop_resolving_within_a_second_and_are_swept() {
    let h = start().await;
    let account = h.account("acme").await;
    let soon = (OffsetDateTime::now_utc() + Duration::from_secs(1))
        .format(&Rfc3339)
        .unwrap();
    let (created, token) = h
        .server(&account, json!({"name": "brief", "expires_at": soon}))
        .await;
    let (_, keeper) = h.server(&account, json!({"name": "keeper"})).await;
    assert!(created["expires_at"].is_string());
    assert!(h.store.resolve_token(&token).unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deadline =
        OffsetDateTime::parse(created["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    while OffsetDateTime::now_utc() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.store.resolve_token(&token).unwrap().is_none());

    let sweeper = spawn_sweeper(
        h.store.clone(),
        Duration::from_millis(50),
        Default::default(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sweeper.abort();
    let (_, list) = h
        .get(&format!("/admin/integrated-accounts/{account}/mcp"))
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keeper"]);
    assert!(h.store.resolve_token(&keeper).unwrap().is_some());
}

#[tokio::test]
async fn deleting_an_account_revokes_its_servers() {
    let h = start().await;
    let a = h.account("a").await;
    let b = h.account("b").await;
    let (_, ta) = h.server(&a, json!({"name": "s"})).await;
    let (_, ta2) = h.server(&a, json!({"name": "s2"})).await;
    let (_, tb) = h.server(&b, json!({"name": "s"})).await;
    assert_eq!(
        h.delete(&format!("/admin/integrated-accounts/{a}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(h.store.resolve_token(&ta).unwrap().is_none());
    assert!(h.store.resolve_token(&ta2).unwrap().is_none());
    assert!(h.store.resolve_token(&tb).unwrap().is_some());
    assert_eq!(h.store.list_servers(None).unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_writes_nothing() {
    let h = start().await;
    let accounts = "/admin/integrated-accounts";
    let cases: Vec<(&str, Option<&str>)> = vec![
        (r#"{"name": "x", "malomo_api_key": "#, None),
        ("[1, 2]", None),
        ("", None),
        (r#"{"name": 7, "malomo_api_key": "sk_x"}"#, Some("name")),
        (r#"{"malomo_api_key": "sk_x"}"#, Some("name")),
        (r#"{"name": "x"}"#, Some("malomo_api_key")),
        (
            r#"{"name": "x", "malomo_api_key": ["sk_x"]}"#,
            Some("malomo_api_key"),
        ),
        (
            r#"{"name": "x", "malomo_api_key": "sk x"}"#,
            Some("malomo_api_key"),
        ),
        (
            r#"{"name": "a\u0000b", "malomo_api_key": "sk_x"}"#,
            Some("name"),
        ),
        (
            r#"{"name": "a\nb", "malomo_api_key": "sk_x"}"#,
            Some("name"),
        ),
        (r#"{"name": "", "malomo_api_key": "sk_x"}"#, Some("name")),
        (
            r#"{"name": "x", "malomo_api_key": "sk_x", "base_url": "file:///etc/passwd"}"#,
            Some("base_url"),
        ),
        (
            r#"{"name": "x", "malomo_api_key": "sk_x", "admin": true}"#,
            Some("admin"),
        ),
    ];
    let long = format!(
        r#"{{"name": "{}", "malomo_api_key": "sk_x"}}"#,
        "n".repeat(101)
    );
    for (body, field) in cases.iter().copied().chain([(long.as_str(), Some("name"))]) {
        let (status, answer) = h.post_raw(accounts, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], json!(field), "{body} → {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    assert!(h.store.list_accounts().unwrap().is_empty());

    let account = h.account("acme").await;
    let servers = format!("/admin/integrated-accounts/{account}/mcp");
    let cases = [
        (json!({"config": {}}), "name"),
        (
            json!({"name": "s", "config": {"methods": "read"}}),
            "config.methods",
        ),
        (
            json!({"name": "s", "config": {"methods": [1]}}),
            "config.methods[0]",
        ),
        (
            json!({"name": "s", "config": {"methods": ["read; DROP TABLE mcp_servers"]}}),
            "config.methods",
        ),
        (
            json!({"name": "s", "config": {"tags": [null]}}),
            "config.tags[0]",
        ),
        (
            json!({"name": "s", "config": {"method": ["read"]}}),
            "config.method",
        ),
        (json!({"name": "s", "config": []}), "config"),
        (
            json!({"name": "s", "require_api_token_auth": "yes"}),
            "require_api_token_auth",
        ),
        (json!({"name": "s", "expires_at": 12}), "expires_at"),
        (
            json!({"name": "s", "answer_budget": "8 KB"}),
            "answer_budget",
        ),
        (
            json!({"name": "s", "answer_budget": 8192.5}),
            "answer_budget",
        ),
        (json!({"name": "s", "answer_budget": -1}), "answer_budget"),
        (json!({"name": "s", "answer_budget": 1000}), "answer_budget"),
        (
            json!({"name": "s", "answer_budget": 4 * 1024 * 1024 + 1}),
            "answer_budget",
        ),
        (json!({"name": "\u{202E}evil"}), "name"),
    ];
    for (body, field) in cases {
        let (status, answer) = h.post(&servers, body.clone()).await;
        assert_field_error(status, &answer, StatusCode::BAD_REQUEST, field);
    }
    assert!(h.store.list_servers(None).unwrap().is_empty());

    // SQL-looking strings are data.
    let sneaky = "x'); DELETE FROM mcp_servers; --";
    let (created, token) = h.server(&account, json!({"name": sneaky})).await;
    assert_eq!(created["name"], sneaky);
    let (status, acct) = h
        .post(
            accounts,
            json!({"name": "' OR 1=1 --", "malomo_api_key": "sk_x'--abcdefghij"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(acct["name"], "' OR 1=1 --");
    assert_eq!(
        h.get(&format!("/admin/integrated-accounts/{}", "' OR '1'='1"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.store.list_accounts().unwrap().len(), 2);
    assert!(h.store.resolve_token(&token).unwrap().is_some());
}

#[tokio::test]
async fn a_restart_keeps_every_server_working() {
    let h = start().await;
    let account = h
        .store
        .ensure_account("sandbox", API_KEY, "http://127.0.0.1:1111")
        .unwrap();
    let (_, token) = h
        .server(
            &account,
            json!({"name": "kept", "config": {"methods": ["read"]}}),
        )
        .await;
    let db = h.db.clone();
    let _dir = h._dir; // keep the files; drop the rest

    let store = open_store(&db);
    // `serve` upserts its account with the sandbox's new port on every start.
    assert_eq!(
        store
            .ensure_account("sandbox", API_KEY, "http://127.0.0.1:2222")
            .unwrap(),
        account
    );
    let resolved = store.resolve_token(&token).unwrap().unwrap();
    assert_eq!(resolved.base_url, "http://127.0.0.1:2222");
    assert_eq!(resolved.filter.methods, ["read"]);
    assert_eq!(resolved.api_key, API_KEY);
}

#[test]
fn the_master_key_file_is_private_and_reused() {
    if std::env::var_os(malomo_mcp::store::MASTER_KEY_ENV).is_some() {
        return; // the key comes from the environment here
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let store = Store::open(&db).unwrap().with_tools(TABLE);
    let account = store
        .ensure_account("a", API_KEY, "http://127.0.0.1:1")
        .unwrap();
    let created = store
        .create_server(&account, new_server("s", &[], &[]))
        .unwrap();
    drop(store);
    let key_file = malomo_mcp::store::key_file_path(&db);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store
            .resolve_token(&created.token)
            .unwrap()
            .unwrap()
            .api_key,
        API_KEY
    );
}

fn new_server(name: &str, methods: &[&str], tags: &[&str]) -> NewServer {
    NewServer {
        name: name.to_string(),
        filter: ToolFilter {
            methods: methods.iter().map(|s| s.to_string()).collect(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
        },
        require_api_token_auth: false,
        expires_at: None,
        answer_budget: None,
    }
}

fn allowed(filter: &ToolFilter) -> Vec<&'static str> {
    TABLE
        .iter()
        .filter(|t| filter.allows(t))
        .map(|t| t.name)
        .collect()
}

#[test]
fn read_only_servers_cannot_see_write_tools() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("f.db"));
    let account = store
        .ensure_account("a", API_KEY, "http://127.0.0.1:1")
        .unwrap();
    let created = store
        .create_server(&account, new_server("ro", &["read"], &[]))
        .unwrap();
    let filter = store.resolve_token(&created.token).unwrap().unwrap().filter;
    assert_eq!(
        allowed(&filter),
        ["list_all_malomo_orders", "list_all_malomo_customers"]
    );
    assert!(!filter.allows(TABLE[1]));
    assert!(!filter.allows(TABLE[2]));
}

#[test]
fn tags_and_methods_are_and_ed() {
    let f = |m: &[&str], t: &[&str]| new_server("x", m, t).filter;
    assert_eq!(
        allowed(&f(&["read"], &["orders"])),
        ["list_all_malomo_orders"]
    );
    assert_eq!(
        allowed(&f(&["write"], &["orders"])),
        [
            "create_a_malomo_order",
            "delete_a_malomo_order_by_id",
            "add_malomo_order_shipment"
        ]
    );
    // A custom method that writes is class write, never read.
    assert_eq!(allowed(&f(&["read"], &["shipments"])), Vec::<&str>::new());
    assert_eq!(
        allowed(&f(&["delete", "add_shipment"], &[])),
        ["delete_a_malomo_order_by_id", "add_malomo_order_shipment"]
    );
    assert_eq!(
        allowed(&f(&[], &["shipments"])),
        ["add_malomo_order_shipment"]
    );
    assert_eq!(allowed(&f(&["custom"], &["customers"])), Vec::<&str>::new());
    assert_eq!(allowed(&ToolFilter::default()).len(), TABLE.len());
}

#[test]
fn the_cli_mirrors_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let store = open_store(&db);
    store
        .ensure_account("sandbox", API_KEY, "http://127.0.0.1:1")
        .unwrap();
    let dbargs = DbArgs {
        db: Some(db.clone()),
    };
    let run = |cmd: ServersCommand| -> anyhow::Result<Value> {
        let mut out = Vec::new();
        execute_servers(&store, &cmd, &mut out)?;
        Ok(serde_json::from_slice(&out).unwrap())
    };
    let created = run(ServersCommand::Create {
        db: dbargs.clone(),
        account: "sandbox".to_string(),
        methods: vec!["read".to_string()],
        tags: vec!["orders".to_string()],
        expires_in: Some(Duration::from_secs(3600)),
        name: "cli".to_string(),
        require_client_token: false,
        answer_budget: Some(4096),
        public_url: "http://127.0.0.1:8080".to_string(),
    })
    .unwrap();
    assert_eq!(created["answer_budget"], 4096);
    let url = created["url"].as_str().unwrap();
    let token = url.strip_prefix("http://127.0.0.1:8080/mcp/").unwrap();
    assert!(store.resolve_token(token).unwrap().is_some());
    assert!(created["expires_at"].is_string());

    let err = run(ServersCommand::Create {
        db: dbargs.clone(),
        account: "sandbox".to_string(),
        methods: vec!["reed".to_string()],
        tags: vec![],
        expires_in: None,
        name: "cli".to_string(),
        require_client_token: false,
        answer_budget: None,
        public_url: "http://x".to_string(),
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("--methods: unknown method"),
        "{err}"
    );
    let err = run(ServersCommand::Create {
        db: dbargs.clone(),
        account: "sandbox".to_string(),
        methods: vec![],
        tags: vec![],
        expires_in: None,
        name: "tiny".to_string(),
        require_client_token: false,
        answer_budget: Some(100),
        public_url: "http://x".to_string(),
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--answer-budget: must be from 1024"),
        "{err}"
    );
    assert!(
        run(ServersCommand::List {
            db: dbargs.clone(),
            account: Some("nope".into())
        })
        .is_err()
    );

    let list = run(ServersCommand::List {
        db: dbargs.clone(),
        account: Some("sandbox".into()),
    })
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(token));
    let accounts = run(ServersCommand::Accounts { db: dbargs.clone() }).unwrap();
    assert!(!accounts.to_string().contains("SECRET"));

    let id = created["id"].as_str().unwrap().to_string();
    run(ServersCommand::Delete {
        db: dbargs.clone(),
        id: id.clone(),
    })
    .unwrap();
    assert!(store.resolve_token(token).unwrap().is_none());
    assert!(
        run(ServersCommand::Delete {
            db: dbargs.clone(),
            id
        })
        .is_err()
    );

    // A server with a second factor, and its client tokens.
    let guarded = run(ServersCommand::Create {
        db: dbargs.clone(),
        account: "sandbox".to_string(),
        methods: vec![],
        tags: vec![],
        expires_in: None,
        name: "2fa".to_string(),
        require_client_token: true,
        answer_budget: None,
        public_url: "http://127.0.0.1:8080".to_string(),
    })
    .unwrap();
    let server = guarded["id"].as_str().unwrap().to_string();
    let first = guarded["client_token"].as_str().unwrap();
    assert!(store.verify_client_token(&server, first).unwrap());
    let tokens = |cmd: ClientTokensCommand| run(ServersCommand::ClientTokens(cmd));
    let minted = tokens(ClientTokensCommand::Create {
        db: dbargs.clone(),
        server: server.clone(),
    })
    .unwrap();
    let second = minted["token"].as_str().unwrap();
    assert!(store.verify_client_token(&server, second).unwrap());
    let listed = tokens(ClientTokensCommand::List {
        db: dbargs.clone(),
        server: server.clone(),
    })
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(first) && !listed.to_string().contains(second));
    tokens(ClientTokensCommand::Delete {
        db: dbargs.clone(),
        server: server.clone(),
        token_id: minted["id"].as_str().unwrap().to_string(),
    })
    .unwrap();
    assert!(!store.verify_client_token(&server, second).unwrap());
    let err = tokens(ClientTokensCommand::Create {
        db: dbargs.clone(),
        server: "nope".to_string(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");

    let mut out = Vec::new();
    execute_admin_token(&store, &AdminTokenCommand::Create { db: dbargs }, &mut out).unwrap();
    let printed: Value = serde_json::from_slice(&out).unwrap();
    assert!(
        store
            .verify_admin_token(printed["admin_token"].as_str().unwrap())
            .unwrap()
    );
}

#[test]
fn filters_validate_against_the_generated_table() {
    use malomo_mcp::catalog::TOOLS;
    if TOOLS.is_empty() {
        return; // the generator has not produced a table in this build
    }
    let read = ToolFilter {
        methods: vec!["read".into()],
        tags: vec![],
    };
    read.validate().unwrap();
    assert!(
        TOOLS
            .iter()
            .filter(|t| read.allows(t))
            .all(|t| t.class == MethodClass::Read)
    );
    assert!(TOOLS.iter().any(|t| !read.allows(t)));
    for tag in TOOLS.iter().flat_map(|t| t.tags) {
        let f = ToolFilter {
            methods: vec![],
            tags: vec![tag.to_string()],
        };
        f.validate().unwrap();
    }
    let unknown = ToolFilter {
        methods: vec![],
        tags: vec!["no-such-tag".into()],
    };
    assert!(
        unknown
            .validate()
            .unwrap_err()
            .to_string()
            .contains("valid tags")
    );
}
