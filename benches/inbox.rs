//! Event inbox throughput: `cargo bench --bench inbox`.
//!
//! Signed deliveries (`POST /hooks/{token}`, a 1.2 KB shipment.exception
//! payload each, every one a new event) sent to a `serve` started in this
//! process, from BENCH_CLIENTS keep-alive clients (default 1 and 16, one
//! run each), BENCH_DELIVERIES deliveries per run (default 2000). For each
//! delivery it records the time from sending it to the `EventNotice` on the
//! node's EventHub (what the MCP side turns into a notification), and
//! reports deliveries/s (all answered 200, all stored, each announced
//! once), p50, p99 and the maximum of that latency.
//!
//! Then, on SQLite, the whole way to an MCP client (issue 13's promise):
//! BENCH_NOTIFIED deliveries (default 300), one at a time, each timed from
//! sending it to the `notifications/resources/updated` a subscribed rmcp
//! client receives: over a 2025-11-25 session (resources/subscribe, the
//! session's GET stream) and over 2026-07-28 `subscriptions/listen`.
//!
//! Set-ups, one after the other in one run: SQLite; and with
//! MALOMO_MCP_TEST_DATABASE_URL (`scripts/with-postgres.sh cargo bench
//! --bench inbox`) PostgreSQL, then two nodes on one PostgreSQL, where the
//! deliveries go to node A and the latency is to the notice on node B.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use malomo_mcp::events::EventHub;
use malomo_mcp::inbox::{InboxOptions, sign};
use malomo_mcp::sandbox::SandboxConfig;
use malomo_mcp::serve::{self, RunningServer, ServeOptions, Upstream};
use malomo_mcp::store::testing::{TestDatabase, test_cluster_url};

const MASTER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000042";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(db: PathBuf) -> RunningServer {
    serve::start(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db,
        public_url: None,
        allowed_hosts: Vec::new(),
        upstream: Upstream::Sandbox(SandboxConfig {
            tick_interval: None,
            ..SandboxConfig::default()
        }),
        admin_token: None,
        upstream_timeout: Duration::from_secs(5),
        max_upstream_body: malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY,
        limits: Default::default(),
        node_name: None,
        sweep_every: Duration::from_secs(60),
        inbox: InboxOptions {
            rate_burst: u32::MAX,
            rate_per_sec: 1e9,
            ..InboxOptions::default()
        },
    })
    .await
    .expect("serve starts")
}

fn body(run: &str, i: usize) -> Vec<u8> {
    let scans: Vec<_> = (0..4)
        .map(|s| serde_json::json!({"status": "in_transit", "message": format!("Departed sort facility {s}"), "location": {"city": "Memphis", "state": "TN"}}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": format!("{run}-{i}"),
        "topic": "shipment.exception",
        "created_at": "2026-11-25T22:00:00Z",
        "data": {
            "order_id": format!("order-{i}"),
            "shipment": {"tracking_code": format!("FA{i:08}"), "status": "failure", "carrier": "usps", "scan_events": scans},
        },
    }))
    .expect("json")
}

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Sends `n` signed deliveries to `url` from `clients` clients; the
/// latency is to each one's notice on `hub`.
async fn run(
    label: &str,
    url: &str,
    secret: &str,
    hub: &EventHub,
    n: usize,
    clients: usize,
) -> Figures {
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| body(label, i)).collect();
    let signatures: Vec<String> = bodies.iter().map(|b| sign(secret, b)).collect();
    let sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let mut rx = hub.subscribe();
    let arrivals = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(n);
        while seen.len() < n {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Ok(notice)) => seen.push((notice.seq, Instant::now())),
                Ok(Err(e)) => panic!("notices lost: {e}"),
                Err(_) => panic!("only {} of {n} notices arrived", seen.len()),
            }
        }
        seen
    });
    let jobs = Arc::new(Mutex::new((0..n).collect::<Vec<_>>()));
    let (bodies, signatures) = (Arc::new(bodies), Arc::new(signatures));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (jobs, bodies, signatures, sent) = (
            jobs.clone(),
            bodies.clone(),
            signatures.clone(),
            sent.clone(),
        );
        let url = url.to_owned();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Some(i) = jobs.lock().expect("jobs").pop() else {
                    break;
                };
                let at = Instant::now();
                let resp = http
                    .post(&url)
                    .header("Malomo-Topic", "shipment.exception")
                    .header("Malomo-Webhook-Id", "bench")
                    .header("Malomo-Signature", &signatures[i])
                    .body(bodies[i].clone())
                    .send()
                    .await
                    .expect("delivery");
                assert_eq!(resp.status(), 200, "delivery {i}");
                let answer: serde_json::Value = resp.json().await.expect("json");
                let seq = answer["seq"].as_i64().expect("stored, not a duplicate");
                sent.lock().expect("sent").insert(seq, at);
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = start.elapsed();
    let seen = arrivals.await.expect("arrivals");
    let sent = sent.lock().expect("sent");
    let mut latencies: Vec<Duration> = seen
        .iter()
        .map(|(seq, at)| at.duration_since(*sent.get(seq).expect("a notice per stored delivery")))
        .collect();
    assert_eq!(latencies.len(), n);
    latencies.sort();
    Figures {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50: latencies[n / 2],
        p99: latencies[(n * 99 / 100).min(n - 1)],
        max: latencies[n - 1],
    }
}

/// An rmcp client that passes on the arrival time of each
/// `notifications/resources/updated`.
#[derive(Clone)]
struct Watcher(tokio::sync::mpsc::UnboundedSender<Instant>);

impl rmcp::ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        _params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(Instant::now());
    }
}

const EVENTS_URI: &str = "malomo://events";

/// Sends `n` signed deliveries one at a time, each timed to the
/// notification a client subscribed at `mcp_url` receives (2026-07-28
/// `subscriptions/listen` when `listen`, else a 2025-11-25 session).
async fn notified_run(
    label: &str,
    url: &str,
    secret: &str,
    mcp_url: &str,
    n: usize,
    listen: bool,
) -> Figures {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::{ClientServiceExt, ServiceExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let transport = || {
        StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(
            mcp_url.to_owned(),
        ))
    };
    // Held for the run: dropping either ends the subscription.
    let mut _session = None;
    let mut _listening = None;
    if listen {
        let client = ()
            .serve_with_lifecycle(
                transport(),
                rmcp::ClientLifecycleMode::Discover {
                    preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("server/discover");
        let mut subscription = client
            .peer()
            .listen(
                rmcp::model::SubscriptionFilter::builder()
                    .resource_subscription(EVENTS_URI)
                    .build(),
            )
            .await
            .expect("subscriptions/listen");
        _listening = Some((
            client,
            tokio::spawn(async move {
                while let Ok(Some(_)) = subscription.next().await {
                    let _ = tx.send(Instant::now());
                }
            }),
        ));
    } else {
        let client = Watcher(tx).serve(transport()).await.expect("initialize");
        #[allow(deprecated)]
        client
            .subscribe(rmcp::model::SubscribeRequestParams::new(EVENTS_URI))
            .await
            .expect("resources/subscribe");
        _session = Some(client);
    }
    // The session's GET stream (or the listen stream) settles in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let body = body(label, i);
        let signature = sign(secret, &body);
        while rx.try_recv().is_ok() {}
        let at = Instant::now();
        let resp = http
            .post(url)
            .header("Malomo-Topic", "shipment.exception")
            .header("Malomo-Webhook-Id", "bench")
            .header("Malomo-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("delivery");
        assert_eq!(resp.status(), 200, "delivery {i}");
        let arrived = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no notification for delivery {i} within 5 s"))
            .expect("watching");
        latencies.push(arrived.duration_since(at));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Figures {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50: latencies[n / 2],
        p99: latencies[(n * 99 / 100).min(n - 1)],
        max: latencies[n - 1],
    }
}

fn inbox_of(node: &RunningServer) -> (String, String) {
    let created = node.store.rotate_inbox(&node.account_id).expect("inbox");
    let secret = node
        .store
        .inbox_delivery(&node.account_id)
        .expect("store")
        .expect("inbox")
        .secret;
    (
        format!("http://{}/hooks/{}", node.addr, created.token),
        secret,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn bench() {
    malomo_mcp::install_crypto_provider();
    let n: usize = env_or("BENCH_DELIVERIES", 2000);
    let client_counts: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16]);
    println!("inbox bench: {n} signed deliveries per run, clients {client_counts:?}");
    println!(
        "| set-up | clients | deliveries/s | p50 delivery→notice (or notification) | p99 | max |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let report = |setup: &str, clients: usize, f: Figures| {
        println!(
            "| {setup} | {clients} | {:.0} | {} | {} | {} |",
            f.per_sec,
            ms(f.p50),
            ms(f.p99),
            ms(f.max)
        );
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path().join("bench.db")).await;
    let (url, secret) = inbox_of(&node);
    for &c in &client_counts {
        let f = run(&format!("sqlite-{c}"), &url, &secret, &node.events, n, c).await;
        report("SQLite", c, f);
    }
    let notified: usize = env_or("BENCH_NOTIFIED", 300);
    for (setup, listen) in [
        ("SQLite, to an MCP client (2025-11-25 session)", false),
        ("SQLite, to an MCP client (2026-07-28 listen)", true),
    ] {
        let f = notified_run(setup, &url, &secret, &node.mcp_url, notified, listen).await;
        report(setup, 1, f);
    }
    node.shutdown().await;

    if test_cluster_url("inbox bench (PostgreSQL)").is_some() {
        let cluster = std::env::var(malomo_mcp::store::testing::TEST_DATABASE_ENV).expect("url");
        let db = TestDatabase::create(&cluster).expect("database");
        let a = start(PathBuf::from(&db.url)).await;
        let b = start(PathBuf::from(&db.url)).await;
        let (url, secret) = inbox_of(&a);
        for &c in &client_counts {
            let f = run(&format!("pg-{c}"), &url, &secret, &a.events, n, c).await;
            report("PostgreSQL", c, f);
        }
        for &c in &client_counts {
            let f = run(&format!("pg2-{c}"), &url, &secret, &b.events, n, c).await;
            report("PostgreSQL, notice on node B", c, f);
        }
        a.shutdown().await;
        b.shutdown().await;
    }
}

fn main() {
    // Before any thread exists: PostgreSQL nodes need the master key.
    // SAFETY: single-threaded here; nothing reads the environment concurrently.
    unsafe { std::env::set_var(malomo_mcp::store::MASTER_KEY_ENV, MASTER_KEY) };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench());
}
