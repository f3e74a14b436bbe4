//! Scaling out on one machine: `scripts/with-postgres.sh cargo bench --bench cluster`.
//!
//! Processes as deployed: `malomo-mcp sandbox` stands in for Malomo, and
//! `malomo-mcp serve` nodes proxy it. Three set-ups, measured one after the
//! other in one run with the same load (BENCH_CONNECTIONS keep-alive
//! clients, BENCH_SECS seconds of stateless 2026-07-28 `tools/call
//! get_current_malomo_account`):
//!
//! 1. one node on SQLite;
//! 2. one node on PostgreSQL;
//! 3. two nodes on one PostgreSQL, the clients split between them.
//!
//! Then the revocation delay: a server is created through node A and
//! called through node B (so that B has it cached), revoked through A, and
//! B is polled until it answers 404; BENCH_REVOCATIONS times.
//!
//! PostgreSQL comes from MALOMO_MCP_TEST_DATABASE_URL (a fresh database is
//! made there for each set-up); scripts/with-postgres.sh starts a cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use malomo_mcp::store::testing::{TEST_DATABASE_ENV, TestDatabase};
use serde_json::{Value, json};

mod common;
use common::{Child, NO_FAIRNESS, spawn_until, url_in};

const ADMIN: &str = "bench-admin-token";
const MASTER_KEY: &str = "6262626262626262626262626262626262626262626262626262626262626262";
const TOOL: &str = "get_current_malomo_account";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Node {
    _child: Child,
    base: String,
    url: String,
}

fn node(bin: &str, db: &str, upstream: &str, name: &str) -> anyhow::Result<Node> {
    let mut command = Command::new(bin);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--node-name",
            name,
        ])
        .args(NO_FAIRNESS)
        .env("MALOMO_MCP_MASTER_KEY", MASTER_KEY)
        .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN)
        .env("MALOMO_API_KEY", "sk_bench_cluster_0001")
        .env("MALOMO_BASE_URL", upstream);
    let (child, lines) = spawn_until(command, "/mcp/")?;
    let url = lines
        .iter()
        .rev()
        .find_map(|l| url_in(l))
        .ok_or_else(|| anyhow::anyhow!("no MCP URL in {lines:?}"))?;
    let base = url[..url.find("/mcp/").unwrap_or(url.len())].to_owned();
    Ok(Node {
        _child: child,
        base,
        url,
    })
}

fn call_body() -> bytes::Bytes {
    bytes::Bytes::from(
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": TOOL, "arguments": {},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {},
                                 "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}}
        })
        .to_string(),
    )
}

async fn call(client: &reqwest::Client, url: &str, body: &bytes::Bytes) -> reqwest::Result<u16> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", TOOL)
        .body(body.clone())
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = response.bytes().await?;
    if status == 200 && answer.windows(14).any(|w| w == b"\"isError\":true") {
        return Ok(500);
    }
    Ok(status)
}

/// Calls per second and the median latency, with `connections` clients
/// spread over `urls`.
async fn load(urls: &[String], connections: u64, secs: u64) -> (f64, Duration) {
    let body = call_body();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let url = urls[i as usize % urls.len()].clone();
            let body = body.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let status = call(&client, &url, &body).await.expect("call");
                    assert_eq!(status, 200, "a tool call failed");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    all.sort();
    let median = all.get(all.len() / 2).copied().unwrap_or_default();
    (all.len() as f64 / secs as f64, median)
}

async fn admin(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let _ = client;
    let response = request.bearer_auth(ADMIN).send().await?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "admin API answered {status}: {body}");
    Ok(if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body)?
    })
}

/// Revoke through `a`, poll `b` until it refuses: the delays.
async fn revocation_delays(a: &Node, b: &Node, runs: u64) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let body = call_body();
    let accounts = admin(
        &client,
        client.get(format!("{}/admin/integrated-accounts", a.base)),
    )
    .await?;
    let account = accounts["items"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "malomo"))
        .and_then(|a| a["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no malomo account: {accounts}"))?
        .to_owned();
    let mut delays = Vec::new();
    for n in 0..runs {
        let created = admin(
            &client,
            client
                .post(format!(
                    "{}/admin/integrated-accounts/{account}/mcp",
                    a.base
                ))
                .json(&json!({"name": format!("revoke-{n}"), "config": {}})),
        )
        .await?;
        let url = created["url"].as_str().unwrap_or_default();
        let on_b = format!("{}{}", b.base, &url[url.find("/mcp/").unwrap_or(0)..]);
        // Twice, so that B answers from its cache.
        for _ in 0..2 {
            anyhow::ensure!(
                call(&client, &on_b, &body).await? == 200,
                "B refused a new server"
            );
        }
        let id = created["id"].as_str().unwrap_or_default();
        admin(&client, client.delete(format!("{}/admin/mcp/{id}", a.base))).await?;
        let revoked = Instant::now();
        loop {
            if call(&client, &on_b, &body).await? == 404 {
                delays.push(revoked.elapsed());
                break;
            }
            anyhow::ensure!(
                revoked.elapsed() < Duration::from_secs(5),
                "B never refused"
            );
        }
    }
    delays.sort();
    Ok(delays)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    malomo_mcp::install_crypto_provider();
    let Ok(cluster) = std::env::var(TEST_DATABASE_ENV) else {
        anyhow::bail!("{TEST_DATABASE_ENV} is not set: run under scripts/with-postgres.sh");
    };
    let bin = env!("CARGO_BIN_EXE_malomo-mcp");
    let secs = env_or("BENCH_SECS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 16);
    let mut sandbox = Command::new(bin);
    sandbox.args([
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--rate-burst",
        "1000000000",
        "--rate-per-sec",
        "1000000000",
    ]);
    let (_sandbox, lines) = spawn_until(sandbox, "secret key")?;
    let upstream = lines
        .iter()
        .find_map(|l| url_in(l))
        .ok_or_else(|| anyhow::anyhow!("no sandbox URL in {lines:?}"))?;
    println!("cluster bench: {connections} connections, {secs} s per set-up, tools/call {TOOL}");

    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("bench.db");
    let one = node(bin, &sqlite.to_string_lossy(), &upstream, "solo")?;
    let warm = load(std::slice::from_ref(&one.url), connections, 1).await;
    let _ = warm;
    let (rate, p50) = load(std::slice::from_ref(&one.url), connections, secs).await;
    println!(
        "one node, SQLite:           {rate:8.0} calls/s  p50 {:.2} ms",
        ms(p50)
    );
    let sqlite_rate = rate;
    drop(one);

    let db = TestDatabase::create(&cluster)?;
    let one = node(bin, &db.url, &upstream, "solo")?;
    load(std::slice::from_ref(&one.url), connections, 1).await;
    let (rate, p50) = load(std::slice::from_ref(&one.url), connections, secs).await;
    println!(
        "one node, PostgreSQL:       {rate:8.0} calls/s  p50 {:.2} ms  ({:.2} of SQLite)",
        ms(p50),
        rate / sqlite_rate
    );
    drop(one);
    drop(db);

    let db = TestDatabase::create(&cluster)?;
    let a = node(bin, &db.url, &upstream, "a")?;
    let b = node(bin, &db.url, &upstream, "b")?;
    // Each node serves its own printed URL and the other's.
    let urls = [
        a.url.clone(),
        format!("{}{}", b.base, &a.url[a.base.len()..]),
    ];
    load(&urls, connections, 1).await;
    let (rate, p50) = load(&urls, connections, secs).await;
    println!(
        "two nodes, one PostgreSQL:  {rate:8.0} calls/s  p50 {:.2} ms  ({:.2} of SQLite)",
        ms(p50),
        rate / sqlite_rate
    );

    let runs = env_or("BENCH_REVOCATIONS", 20);
    let delays = revocation_delays(&a, &b, runs).await?;
    println!(
        "revocation through A refused by B after: median {:.2} ms, max {:.2} ms ({runs} runs; \
         one poll is one tools/call round trip)",
        ms(delays[delays.len() / 2]),
        ms(delays[delays.len() - 1])
    );
    Ok(())
}
