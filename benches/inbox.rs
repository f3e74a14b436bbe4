//! Event inbox throughput: `cargo bench --bench inbox`.
//!
//! Signed deliveries (`POST /hooks/{token}`, a 1.2 KB shipment.exception
//! payload each, every one a new event) sent to a `serve` started in this
//! process, from BENCH_CLIENTS keep-alive clients (default 1 and 16, one
//! run each), BENCH_DELIVERIES deliveries per run (default 2000). For each
//! delivery it records the time from sending it to the `EventNotice` on the
//! node's EventHub (what the MCP side turns into a notification), and
//! reports deliveries/s (all answered 200, all stored, each announced
//! once), p50 and p99 of that latency.
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
    println!("| set-up | clients | deliveries/s | p50 delivery→notice | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let report = |setup: &str, clients: usize, f: Figures| {
        println!(
            "| {setup} | {clients} | {:.0} | {} | {} |",
            f.per_sec,
            ms(f.p50),
            ms(f.p99)
        );
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path().join("bench.db")).await;
    let (url, secret) = inbox_of(&node);
    for &c in &client_counts {
        let f = run(&format!("sqlite-{c}"), &url, &secret, &node.events, n, c).await;
        report("SQLite", c, f);
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
