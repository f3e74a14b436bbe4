//! A session flood from one URL: `cargo bench --bench sessions`.
//!
//! Spawns the release `malomo-mcp serve` (embedded sandbox, caps raised to
//! let the whole flood in) and provisions a second server through the admin
//! API. Then, in one run:
//!
//! 1. quiet: the second server's stateless `tools/list` latency, one client
//!    back to back for BENCH_SECS;
//! 2. the flood: BENCH_SESSIONS 2025-11-25 sessions (`initialize` +
//!    `notifications/initialized`) opened from the first URL by
//!    BENCH_CONNECTIONS clients, while the second server is measured again;
//! 3. RSS (VmRSS of `serve`): before the flood; 1 s after it, every
//!    session still live (its service running); once every session has been
//!    idle for longer than serve's `--session-evict-after` and is kept as a
//!    record (per idle session = difference from before / sessions); the
//!    peak (VmHWM); and after every session has been ended by DELETE: at
//!    once, then every 5 s for a minute.
//!
//! Settings: BENCH_SESSIONS (default 10000), BENCH_CONNECTIONS (default 16),
//! BENCH_SECS (default 3), BENCH_EVICT_AFTER (seconds, serve's
//! `--session-evict-after`, default 5).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{NO_FAIRNESS, provision, spawn_until, url_in};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `kB` figure of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn vm_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(4)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

fn post(http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

fn stateless_list() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
        }}
    })
}

/// Stateless `tools/list` at `url`, back to back until `stop` is set or
/// `limit` passes; sorted latencies (µs) and the number of failures.
async fn measure(url: String, stop: Arc<AtomicBool>, limit: Duration) -> (Vec<u64>, u64) {
    let http = client();
    let body = serde_json::to_vec(&stateless_list()).expect("json");
    let end = Instant::now() + limit;
    let (mut latencies, mut failures) = (Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let sent = Instant::now();
        let answer = post(&http, &url)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .body(body.clone())
            .send()
            .await;
        let ok = match answer {
            Ok(a) if a.status() == 200 => a.bytes().await.is_ok(),
            _ => false,
        };
        if ok {
            latencies.push(sent.elapsed().as_micros() as u64);
        } else {
            failures += 1;
        }
    }
    latencies.sort_unstable();
    (latencies, failures)
}

fn p50(latencies: &[u64]) -> f64 {
    latencies.get(latencies.len() / 2).copied().unwrap_or(0) as f64
}

/// Opens `count` sessions at `url` and returns their ids.
async fn open_sessions(
    http: &reqwest::Client,
    url: &str,
    count: u64,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count as usize);
    for n in 0..count {
        let init = json!({"jsonrpc": "2.0", "id": n, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "flood", "version": "1"}}});
        let answer = post(http, url).json(&init).send().await?;
        anyhow::ensure!(answer.status() == 200, "initialize: {}", answer.status());
        let id = answer
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow::anyhow!("no session id"))?
            .to_owned();
        answer.bytes().await?;
        let initialized = post(http, url)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await?;
        anyhow::ensure!(
            initialized.status() == 202,
            "initialized: {}",
            initialized.status()
        );
        ids.push(id);
    }
    Ok(ids)
}

async fn delete_sessions(http: &reqwest::Client, url: &str, ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        let answer = http
            .delete(url)
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "DELETE: {}", answer.status());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let sessions = env_or("BENCH_SESSIONS", 10_000);
    let conns = env_or("BENCH_CONNECTIONS", 16).max(1);
    let secs = env_or("BENCH_SECS", 3);
    let evict_after = env_or("BENCH_EVICT_AFTER", 5);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bin = env!("CARGO_BIN_EXE_malomo-mcp");

    let dir = tempfile::tempdir()?;
    let cap = (sessions + 100).to_string();
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("bench.db"))
        .args(["--max-sessions-per-server", &cap, "--max-sessions", &cap])
        .args(["--session-evict-after", &evict_after.to_string()])
        .args(NO_FAIRNESS)
        .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("MALOMO_MCP_LOG", "warn")
        .env_remove("MALOMO_API_KEY");
    let (server, lines) = spawn_until(command, "/mcp/")?;
    let pid = server.0.id();
    let url_a = lines
        .iter()
        .find_map(|l| url_in(l).filter(|u| u.contains("/mcp/")))
        .ok_or_else(|| anyhow::anyhow!("serve printed no MCP URL: {lines:?}"))?;
    let base = url_a.split("/mcp/").next().unwrap_or_default().to_owned();
    println!(
        "malomo-mcp session flood: {cores} cores shared by this load generator and `serve`; \
         {sessions} sessions from one URL over {conns} connections"
    );

    malomo_mcp::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http = client();
        let url_b = provision(&http, &base, ADMIN_TOKEN, "quiet").await?;

        // Warm up, settle, then the quiet figures.
        let never = Arc::new(AtomicBool::new(false));
        measure(url_b.clone(), never.clone(), Duration::from_millis(500)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = vm_rss_kib(pid);
        let (quiet, quiet_failures) =
            measure(url_b.clone(), never.clone(), Duration::from_secs(secs)).await;

        // The flood, with the other server measured meanwhile.
        let stop = Arc::new(AtomicBool::new(false));
        let during = tokio::spawn(measure(url_b.clone(), stop.clone(), Duration::from_secs(600)));
        let started = Instant::now();
        let mut floods = Vec::new();
        for c in 0..conns {
            let share = sessions / conns + u64::from(c < sessions % conns);
            let url = url_a.clone();
            floods.push(tokio::spawn(async move {
                open_sessions(&client(), &url, share).await
            }));
        }
        let mut ids = Vec::with_capacity(sessions as usize);
        for flood in floods {
            ids.extend(flood.await??);
        }
        let flood_secs = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let (loaded, loaded_failures) = during.await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_live = vm_rss_kib(pid);
        // Idle past the eviction period, a sweep and the trim after it.
        tokio::time::sleep(Duration::from_secs(evict_after + 4)).await;
        let rss_idle = vm_rss_kib(pid);
        let rss_peak = status_kib(pid, "VmHWM:");

        // End every session, then watch RSS for a minute.
        let started = Instant::now();
        let chunk = ids.len().div_ceil(conns as usize).max(1);
        let mut deletes = Vec::new();
        for part in ids.chunks(chunk) {
            let (url, part) = (url_a.clone(), part.to_vec());
            deletes.push(tokio::spawn(async move {
                delete_sessions(&client(), &url, &part).await
            }));
        }
        for delete in deletes {
            delete.await??;
        }
        let delete_secs = started.elapsed().as_secs_f64();
        let ended = Instant::now();
        let mut after = Vec::new();
        for at in [0u64, 5, 10, 20, 30, 45, 60] {
            tokio::time::sleep_until((ended + Duration::from_secs(at)).into()).await;
            after.push((at, vm_rss_kib(pid)));
        }

        println!(
            "  opened {} sessions in {flood_secs:.1} s ({:.0}/s); ended them by DELETE in {delete_secs:.1} s",
            ids.len(),
            ids.len() as f64 / flood_secs
        );
        let per_session = |kib: u64| {
            kib.saturating_sub(rss_before) as f64 * 1024.0 / ids.len().max(1) as f64 / 1000.0
        };
        println!(
            "  VmRSS before {:.1} MiB; 1 s after the flood, every session live, {:.1} MiB ({:.1} KB per live session); \
             idle {} s later, every session a record, {:.1} MiB ({:.2} KB per idle session); peak (VmHWM) {:.1} MiB",
            mib(rss_before),
            mib(rss_live),
            per_session(rss_live),
            evict_after + 4,
            mib(rss_idle),
            per_session(rss_idle),
            mib(rss_peak),
        );
        let trail: Vec<String> = after
            .iter()
            .map(|(at, kib)| format!("+{at} s {:.1} MiB", mib(*kib)))
            .collect();
        println!("  VmRSS after the sessions ended: {}", trail.join(", "));
        let last = after.last().map_or(0, |(_, kib)| *kib);
        println!(
            "  a minute after: {:+.1}% of the pre-flood RSS",
            (last as f64 / rss_before.max(1) as f64 - 1.0) * 100.0
        );
        println!(
            "  other server, stateless tools/list p50: quiet {:.0} µs ({} calls, {quiet_failures} failed), during the flood {:.0} µs ({} calls, {loaded_failures} failed): {:.2}x",
            p50(&quiet),
            quiet.len(),
            p50(&loaded),
            loaded.len(),
            p50(&loaded) / p50(&quiet).max(1.0)
        );
        anyhow::Ok(())
    })?;
    drop(server);
    Ok(())
}
