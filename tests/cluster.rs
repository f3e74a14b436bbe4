//! Two `serve` processes on one PostgreSQL database behave as one service.
//! Needs the PostgreSQL test cluster (`scripts/with-postgres.sh`); without
//! it the tests say that they skip (and fail in CI).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use malomo_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use malomo_mcp::store::testing::TestDatabase;
use serde_json::{Value, json};

const ADMIN: &str = "cluster-admin-token";
const MASTER_KEY: &str = "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b";

/// A `malomo-mcp serve` child process; killed when dropped.
struct Node {
    child: Child,
    base: String,
    default_url: String,
    log: std::path::PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(
        db: &TestDatabase,
        upstream: &SandboxHandle,
        name: &str,
        logs: &std::path::Path,
    ) -> Node {
        let log = logs.join(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_malomo-mcp"))
            .args(["serve", "--listen", "127.0.0.1:0", "--sweep-every", "1"])
            .args(["--node-name", name])
            .env("MALOMO_MCP_DATABASE_URL", &db.url)
            .env("MALOMO_MCP_MASTER_KEY", MASTER_KEY)
            .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN)
            .env("MALOMO_API_KEY", upstream.secret_key())
            .env("MALOMO_BASE_URL", upstream.base_url())
            .env("MALOMO_MCP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (mut base, mut default_url) = (None, None);
        let mut lines = BufReader::new(stdout).lines();
        for line in &mut lines {
            let line = line.expect("stdout line");
            if let Some(rest) = line.strip_prefix("malomo-mcp listening on ") {
                base = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("MCP URL (shown once; it is the credential): ") {
                default_url = Some(rest.trim().to_owned());
                break;
            }
        }
        // Keep reading, or the node's next line to stdout would fail.
        std::thread::spawn(move || lines.for_each(drop));
        let (Some(base), Some(default_url)) = (base, default_url) else {
            panic!(
                "node {name} did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Node {
            child,
            base,
            default_url,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn upstream() -> SandboxHandle {
    let config = SandboxConfig {
        rate_burst: 1_000_000,
        rate_per_sec: 1_000_000.0,
        tick_interval: None,
        ..SandboxConfig::default()
    };
    sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("sandbox")
}

/// The JSON-RPC message of an answer, whether plain JSON or one SSE event.
fn message(body: &str) -> Value {
    let json = body
        .lines()
        .find_map(|l| l.strip_prefix("data:").map(str::trim))
        .filter(|d| !d.is_empty())
        .unwrap_or(body);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {body}"))
}

/// A stateless 2026-07-28 `tools/call`: the HTTP status and the message.
async fn call(http: &reqwest::Client, url: &str, tool: &str, arguments: Value) -> (u16, Value) {
    let response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments,
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {},
                                 "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}
        }))
        .send()
        .await
        .expect("POST tools/call");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let value = if status == 200 {
        message(&body)
    } else {
        Value::Null
    };
    (status, value)
}

async fn admin(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn account_id(http: &reqwest::Client, node: &Node) -> String {
    let (status, accounts) = admin(
        http,
        reqwest::Method::GET,
        format!("{}/admin/integrated-accounts", node.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{accounts}");
    let list = accounts
        .get("integrated_accounts")
        .or(accounts.get("items"))
        .unwrap_or(&accounts);
    list.as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "malomo"))
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no `malomo` account: {accounts}"))
        .to_owned()
}

async fn create_server(http: &reqwest::Client, node: &Node, account: &str, body: Value) -> Value {
    let (status, created) = admin(
        http,
        reqwest::Method::POST,
        format!("{}/admin/integrated-accounts/{account}/mcp", node.base),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// The same MCP URL on another node.
fn on(node: &Node, url: &str) -> String {
    let path = &url[url.find("/mcp/").expect("an MCP URL")..];
    format!("{}{path}", node.base)
}

/// Polls until `url` answers 404; how long that took, at most `within`.
async fn refused_after(http: &reqwest::Client, url: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if call(http, url, "get_current_malomo_account", json!({}))
            .await
            .0
            == 404
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_act_as_one_service() {
    let Some(db) = TestDatabase::for_test("cluster::two_nodes_on_one_postgres_act_as_one_service")
    else {
        return;
    };
    let logs = tempfile::tempdir().expect("tempdir");
    let upstream = upstream().await;
    let a = Node::start(&db, &upstream, "a", logs.path());
    let b = Node::start(&db, &upstream, "b", logs.path());
    malomo_mcp::install_crypto_provider();
    let http = reqwest::Client::new();

    // B's start revoked nothing A printed; each node's URL works on both.
    for url in [&a.default_url, &b.default_url] {
        for node in [&a, &b] {
            let (status, answer) = call(
                &http,
                &on(node, url),
                "get_current_malomo_account",
                json!({}),
            )
            .await;
            assert_eq!(status, 200, "{url} on {}", node.base);
            assert_ne!(answer["result"]["isError"], json!(true), "{answer}");
        }
    }

    // Created through A's admin API, served by B at once.
    let account = account_id(&http, &a).await;
    let created = create_server(
        &http,
        &a,
        &account,
        json!({"name": "shared", "config": {"methods": ["read"]}}),
    )
    .await;
    let url = created["url"].as_str().expect("url").to_owned();
    let on_b = on(&b, &url);
    let (status, page) = call(&http, &on_b, "list_all_malomo_orders", json!({"limit": 1})).await;
    assert_eq!(status, 200);
    let first = &page["result"]["structuredContent"];
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next_cursor")
        .to_owned();

    // A cursor made by B works on A, and pages on.
    let (status, next) = call(
        &http,
        &on(&a, &url),
        "list_all_malomo_orders",
        json!({"limit": 1, "next_cursor": cursor}),
    )
    .await;
    assert_eq!(status, 200);
    let second = &next["result"]["structuredContent"];
    assert_ne!(next["result"]["isError"], json!(true), "{next}");
    assert_ne!(
        second["items"][0]["id"], first["items"][0]["id"],
        "{second}"
    );

    // Revoked through B, refused by A within a second.
    let id = created["id"].as_str().expect("id");
    let (status, _) = admin(
        &http,
        reqwest::Method::DELETE,
        format!("{}/admin/mcp/{id}", b.base),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    let delay = refused_after(&http, &on(&a, &url), Duration::from_secs(1)).await;
    let delay = delay.expect("A still served a server revoked on B after 1 s");
    eprintln!("revocation on B refused by A after {delay:?}");

    // An expired server is refused by both and swept by one node, once.
    let expires_at = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    let expires_at = expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let short = create_server(
        &http,
        &b,
        &account,
        json!({"name": "short-lived", "config": {}, "expires_at": expires_at}),
    )
    .await;
    let short_url = short["url"].as_str().expect("url").to_owned();
    assert_eq!(
        call(
            &http,
            &on(&a, &short_url),
            "get_current_malomo_account",
            json!({})
        )
        .await
        .0,
        200
    );
    for node in [&a, &b] {
        assert!(
            refused_after(&http, &on(node, &short_url), Duration::from_secs(4))
                .await
                .is_some(),
            "an expired server still answers on {}",
            node.base
        );
    }
    let swept = || {
        [&a, &b]
            .iter()
            .map(|n| {
                n.log()
                    .lines()
                    .filter(|l| l.contains("swept expired MCP servers"))
                    .count()
            })
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while swept() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // two more sweep rounds each
    assert_eq!(swept(), 1, "A:\n{}\nB:\n{}", a.log(), b.log());

    // A 2025-11-25 session made on A is unknown to B: 404, so the client
    // initializes again there.
    let init = http
        .post(&a.default_url)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .expect("initialize");
    assert_eq!(init.status(), 200);
    let session = init
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let elsewhere = http
        .post(on(&b, &a.default_url))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .expect("tools/list");
    assert_eq!(elsewhere.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_creating_and_revoking_at_once_lose_nothing() {
    let Some(db) =
        TestDatabase::for_test("cluster::two_nodes_creating_and_revoking_at_once_lose_nothing")
    else {
        return;
    };
    let logs = tempfile::tempdir().expect("tempdir");
    let upstream = upstream().await;
    let nodes = [
        Node::start(&db, &upstream, "a", logs.path()),
        Node::start(&db, &upstream, "b", logs.path()),
    ];
    malomo_mcp::install_crypto_provider();
    let http = reqwest::Client::new();
    let account = account_id(&http, &nodes[0]).await;

    // Four workers, two per node: each creates 15 servers and revokes every
    // third one through the other node.
    let work = (0..4).map(|w| {
        let (mine, other) = (&nodes[w % 2], &nodes[(w + 1) % 2]);
        let (http, account) = (&http, &account);
        async move {
            let mut kept = Vec::new();
            for n in 0..15 {
                let created = create_server(
                    http,
                    mine,
                    account,
                    json!({"name": format!("w{w}-{n}"), "config": {}}),
                )
                .await;
                let id = created["id"].as_str().expect("id").to_owned();
                let url = created["url"].as_str().expect("url").to_owned();
                if n % 3 == 0 {
                    let (status, _) = admin(
                        http,
                        reqwest::Method::DELETE,
                        format!("{}/admin/mcp/{id}", other.base),
                        None,
                    )
                    .await;
                    assert!(status == 200 || status == 204, "{status}");
                    kept.push((id, url, false));
                } else {
                    kept.push((id, url, true));
                }
            }
            kept
        }
    });
    let results: Vec<(String, String, bool)> = futures::future::join_all(work)
        .await
        .into_iter()
        .flatten()
        .collect();

    let urls: std::collections::HashSet<_> =
        results.iter().map(|(_, url, _)| url.clone()).collect();
    assert_eq!(urls.len(), 60, "every server got its own token");
    let (status, listed) = admin(
        &http,
        reqwest::Method::GET,
        format!("{}/admin/integrated-accounts/{account}/mcp", nodes[1].base),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let listed = listed
        .get("items")
        .or(listed.get("mcp_servers"))
        .unwrap_or(&listed)
        .clone();
    let listed: std::collections::HashSet<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    for (id, url, live) in &results {
        assert_eq!(listed.contains(id), *live, "server {id}");
        for node in &nodes {
            let (status, _) = call(
                &http,
                &on(node, url),
                "get_current_malomo_account",
                json!({}),
            )
            .await;
            assert_eq!(
                status,
                if *live { 200 } else { 404 },
                "server {id} on {}",
                node.base
            );
        }
    }
}
