//! The event inbox over HTTP: `POST /hooks/{token}` on a running server,
//! its admin route, the embedded sandbox delivering to it on loopback, and
//! a `serve` process killed with SIGKILL right after acknowledging.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use malomo_mcp::events::{EventNotice, EventQuery};
use malomo_mcp::inbox::{InboxOptions, sign};
use malomo_mcp::serve::{self, RunningServer, ServeOptions, Upstream};
use malomo_mcp::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::quiet_sandbox;

const ADMIN: &str = "inbox-test-admin-token";

struct Inbox {
    server: RunningServer,
    _dir: tempfile::TempDir,
    url: String,
    secret: String,
    http: reqwest::Client,
}

async fn start(inbox: InboxOptions) -> Inbox {
    malomo_mcp::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve::start(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: dir.path().join("inbox.db"),
        public_url: None,
        allowed_hosts: Vec::new(),
        upstream: Upstream::Sandbox(quiet_sandbox()),
        admin_token: Some(ADMIN.to_owned()),
        upstream_timeout: Duration::from_secs(5),
        max_upstream_body: malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY,
        limits: Default::default(),
        node_name: None,
        sweep_every: Duration::from_secs(15),
        inbox,
    })
    .await
    .expect("server starts");
    let http = reqwest::Client::new();
    let created = create_inbox(
        &http,
        &format!("http://{}", server.addr),
        &server.account_id,
    )
    .await;
    let url = created["url"].as_str().expect("url").to_owned();
    let secret = server
        .store
        .inbox_delivery(&server.account_id)
        .expect("store")
        .expect("an inbox")
        .secret;
    Inbox {
        server,
        _dir: dir,
        url,
        secret,
        http,
    }
}

async fn create_inbox(http: &reqwest::Client, base: &str, account: &str) -> Value {
    let resp = http
        .post(format!("{base}/admin/integrated-accounts/{account}/inbox"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin call");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    assert!(body["created_at"].as_str().is_some(), "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "only url and created_at: {body}"
    );
    body
}

fn payload(id: &str, tracking: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "topic": "shipment.exception",
        "created_at": "2026-01-01T00:00:00Z",
        "data": {"order_id": "o-1", "shipment": {"tracking_code": tracking, "status": "failure"}},
    }))
    .expect("json")
}

impl Inbox {
    async fn post(&self, url: &str, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("Malomo-Topic", "shipment.exception")
            .header("Malomo-Webhook-Id", "wh-1")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("Malomo-Signature", sig);
        }
        req.send().await.expect("delivery")
    }

    async fn deliver(&self, body: &[u8]) -> reqwest::Response {
        self.post(&self.url, body, Some(&sign(&self.secret, body)))
            .await
    }

    fn events(&self) -> Vec<malomo_mcp::events::StoredEvent> {
        self.server
            .store
            .list_events(&EventQuery {
                account_id: self.server.account_id.clone(),
                limit: 1000,
                ..EventQuery::default()
            })
            .expect("list")
    }
}

async fn notice(rx: &mut tokio::sync::broadcast::Receiver<EventNotice>) -> EventNotice {
    tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("a notice within 1 s")
        .expect("hub open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unsigned_deliveries_get_401_and_store_nothing() {
    let inbox = start(InboxOptions::default()).await;
    let body = payload("ev-1", "FA1");
    let forged = sign("not-the-secret", &body);
    let good = sign(&inbox.secret, &body);
    let tampered = payload("ev-1", "FA2");
    for (what, body, sig) in [
        ("unsigned", &body, None),
        ("signed with another secret", &body, Some(forged.as_str())),
        (
            "a body that is not the signed one",
            &tampered,
            Some(good.as_str()),
        ),
        ("not hex", &body, Some("zz")),
        ("truncated", &body, Some(&good[..40])),
    ] {
        let resp = inbox.post(&inbox.url, body, sig).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    assert!(inbox.events().is_empty(), "nothing stored");
    // Hex in either case is the same signature.
    let resp = inbox
        .post(&inbox.url, &body, Some(&good.to_lowercase()))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(inbox.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_body_is_acknowledged_but_stored_and_announced_once() {
    let inbox = start(InboxOptions::default()).await;
    let mut rx = inbox.server.events.subscribe();
    let body = payload("ev-2", "FA22");
    let first = inbox.deliver(&body).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["status"], "stored");
    let got = notice(&mut rx).await;
    assert_eq!(
        (got.topic.as_str(), got.account_id.as_str(), Some(got.seq)),
        (
            "shipment.exception",
            inbox.server.account_id.as_str(),
            first["seq"].as_i64()
        )
    );
    for _ in 0..3 {
        let again = inbox.deliver(&body).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(
            again.json::<Value>().await.expect("json")["status"],
            "duplicate"
        );
    }
    let events = inbox.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tracking_code.as_deref(), Some("FA22"));
    assert_eq!(events[0].order_id.as_deref(), Some("o-1"));
    assert!(rx.try_recv().is_err(), "a redelivery announces nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_rotated_tokens_get_404_and_big_bodies_413() {
    let options = InboxOptions {
        max_body: 4096,
        ..InboxOptions::default()
    };
    let inbox = start(options).await;
    let body = payload("ev-3", "FA3");
    let sig = sign(&inbox.secret, &body);
    let base = format!("http://{}", inbox.server.addr);
    for url in [
        format!("{base}/hooks/not-a-token"),
        format!("{base}/hooks/{}", "x".repeat(300)),
    ] {
        let resp = inbox.post(&url, &body, Some(&sig)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let big = vec![b' '; 4097];
    let resp = inbox
        .post(&inbox.url, &big, Some(&sign(&inbox.secret, &big)))
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not JSON, but signed: 400 naming the body.
    let resp = inbox
        .post(&inbox.url, b"nope", Some(&sign(&inbox.secret, b"nope")))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("text").contains("body:"));

    // Rotation: the old URL is dead at once, the new one works with the
    // new secret.
    let old = inbox.url.clone();
    let rotated = create_inbox(&inbox.http, &base, &inbox.server.account_id).await;
    let new_url = rotated["url"].as_str().expect("url");
    assert_ne!(new_url, old);
    assert_eq!(
        inbox.post(&old, &body, Some(&sig)).await.status(),
        StatusCode::NOT_FOUND
    );
    let secret = inbox
        .server
        .store
        .inbox_delivery(&inbox.server.account_id)
        .expect("store")
        .expect("inbox")
        .secret;
    let resp = inbox
        .post(new_url, &body, Some(&sign(&secret, &body)))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(inbox.events().iter().all(|e| e.payload.is_object()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_over_its_rate_is_told_when_to_come_back() {
    let options = InboxOptions {
        rate_burst: 3,
        rate_per_sec: 0.5,
        ..InboxOptions::default()
    };
    let inbox = start(options).await;
    for i in 0..3 {
        let resp = inbox.deliver(&payload(&format!("r{i}"), "FA")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = inbox.deliver(&payload("r3", "FA")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(
        inbox.events().len(),
        3,
        "the refused delivery is not stored"
    );
    // Forged deliveries do not spend the inbox's budget: they are refused
    // before it is consulted.
    let resp = inbox
        .post(&inbox.url, &payload("r4", "FA"), Some("00"))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// `POST` to the embedded sandbox with the account's key.
async fn sandbox_post(
    http: &reqwest::Client,
    store: &Store,
    mcp_url: &str,
    path: &str,
    body: Value,
) -> Value {
    let token = mcp_url.rsplit('/').next().expect("token");
    let account = store.resolve_token(token).expect("store").expect("server");
    let resp = http
        .post(format!("{}{path}", account.base_url))
        .bearer_auth(&account.api_key)
        .json(&body)
        .send()
        .await
        .expect("sandbox call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_sandbox_delivers_signed_events_to_the_inbox_on_loopback() {
    let inbox = start(InboxOptions::default()).await;
    let (http, store, mcp) = (&inbox.http, &inbox.server.store, &inbox.server.mcp_url);
    let delivery = store
        .inbox_delivery(&inbox.server.account_id)
        .expect("store")
        .expect("inbox");
    // What the MCP side does: a webhook with the inbox URL and secret.
    let url = format!("http://{}/hooks/{}", inbox.server.addr, delivery.token);
    assert_eq!(url, inbox.url);
    sandbox_post(
        http,
        store,
        mcp,
        "/webhooks",
        json!({"url": url, "topic": "shipment.exception", "secret": delivery.secret}),
    )
    .await;
    let mut rx = inbox.server.events.subscribe();
    let order = sandbox_post(
        http,
        store,
        mcp,
        "/orders",
        json!({
            "number": "7001",
            "email": "ada@example.com",
            "shipments": [{"carrier": "usps", "tracking_code": "FA7001"}],
        }),
    )
    .await;
    for _ in 0..4 {
        sandbox_post(http, store, mcp, "/_sandbox/tick", json!({})).await;
    }
    let got = notice(&mut rx).await;
    assert_eq!(got.topic, "shipment.exception");
    let events = inbox.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].tracking_code.as_deref(), Some("FA7001"));
    assert_eq!(events[0].status.as_deref(), Some("failure"));
    assert_eq!(events[0].order_id.as_deref(), order["id"].as_str());
}

/// A `serve` process on `db`; its base URL.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_serve(db: &std::path::Path) -> Process {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--inbox-rate-burst",
            "100000",
        ])
        .arg("--db")
        .arg(db)
        .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN)
        .env_remove("MALOMO_API_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    for line in &mut lines {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("malomo-mcp listening on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Process {
        child,
        base: base.expect("serve printed its address"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_serve_is_killed_with_sigkill() {
    malomo_mcp::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("durable.db");
    let http = reqwest::Client::new();
    let process = spawn_serve(&db);
    let store = Store::open(&db).expect("open the same database");
    let account = store
        .find_account("sandbox")
        .expect("store")
        .expect("the sandbox account");
    let created = create_inbox(&http, &process.base, &account.id).await;
    let url = created["url"].as_str().expect("url").to_owned();
    let secret = store
        .inbox_delivery(&account.id)
        .expect("store")
        .expect("inbox")
        .secret;
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let body = payload(&format!("k{i}"), &format!("FA{i}"));
        let resp = http
            .post(&url)
            .header("Malomo-Webhook-Id", "wh-k")
            .header("Malomo-Signature", sign(&secret, &body))
            .body(body)
            .send()
            .await
            .expect("delivery");
        assert_eq!(resp.status(), StatusCode::OK);
        acknowledged.push(format!("FA{i}"));
    }
    // SIGKILL right after the last 2xx: no shutdown, no checkpoint.
    let mut process = process;
    process.child.kill().expect("SIGKILL");
    process.child.wait().expect("reaped");
    drop(store);

    let restarted = spawn_serve(&db);
    let store = Store::open(&db).expect("reopen");
    let events = store
        .list_events(&EventQuery {
            account_id: account.id.clone(),
            limit: 1000,
            ..EventQuery::default()
        })
        .expect("list");
    let mut codes: Vec<String> = events.into_iter().filter_map(|e| e.tracking_code).collect();
    codes.reverse();
    assert_eq!(codes, acknowledged);
    // The restarted server has them too: a redelivery is a duplicate.
    let token = url.rsplit('/').next().expect("token");
    let body = payload("k49", "FA49");
    let resp = http
        .post(format!("{}/hooks/{token}", restarted.base))
        .header("Malomo-Webhook-Id", "wh-k")
        .header("Malomo-Signature", sign(&secret, &body))
        .body(body)
        .send()
        .await
        .expect("delivery");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["status"],
        "duplicate"
    );
    drop(restarted);
}

#[test]
fn the_cli_creates_and_rotates_an_inbox_and_prints_its_url_once() {
    use malomo_mcp::admin::cli::{DbArgs, ServersCommand, execute_servers};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cli.db");
    let store = Store::open(&db).expect("store");
    let account = store
        .ensure_account("sandbox", "sk_test_0123456789", "http://127.0.0.1:1")
        .expect("account");
    let run = |account: &str| {
        let mut out = Vec::new();
        let cmd = ServersCommand::Inbox {
            db: DbArgs {
                db: Some(db.clone()),
            },
            account: account.to_owned(),
            public_url: "https://mcp.example.com/".to_owned(),
        };
        execute_servers(&store, &cmd, &mut out)
            .map(|()| serde_json::from_slice::<Value>(&out).expect("JSON on stdout"))
    };
    let first = run("sandbox").expect("inbox created");
    let url = first["url"].as_str().expect("url");
    let token = url
        .strip_prefix("https://mcp.example.com/hooks/")
        .expect("the public URL's inbox");
    assert_eq!(
        store
            .resolve_inbox(token)
            .expect("store")
            .map(|i| i.account_id),
        Some(account.clone())
    );
    let second = run(&account).expect("rotated, by id too");
    assert_ne!(second["url"], first["url"]);
    assert!(store.resolve_inbox(token).expect("store").is_none());
    let err = run("nope").expect_err("unknown account");
    assert!(err.to_string().contains("\"nope\" not found"), "{err}");
}
