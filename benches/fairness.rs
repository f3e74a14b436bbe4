//! Per-server fairness under a flood from one URL: `cargo bench --bench fairness`.
//!
//! Spawns the release `malomo-mcp serve` (embedded sandbox) once per set-up,
//! one after the other in one run, and provisions a second server through
//! the admin API. Per set-up:
//!
//! 1. quiet: the second server's stateless `tools/list` latency, one client
//!    sending 40 requests per second (an agent's pace, under the per-server
//!    rate) for BENCH_SECS;
//! 2. the flood: BENCH_CONNECTIONS clients open 2025-11-25 sessions
//!    (`initialize` + `notifications/initialized`) at the first URL as fast
//!    as they can for BENCH_SECS, ignoring refusals (a hostile client does
//!    not honour `Retry-After`), while the second server is measured again.
//!
//! The set-ups:
//! - `no fairness`: the per-server request rate and in-flight limits raised
//!   out of reach, the session caps too (what the session bench measured);
//! - `session caps only`: today's session caps (200 per server), no rate or
//!   in-flight limit;
//! - `fairness (defaults)`: the default `serve` limits.
//!
//! Printed per set-up: the quiet and flood p50 and their ratio, the flood's
//! requests per second (served and refused), and the CPU used during the
//! flood by `serve` and by this process (the load generator and the
//! measuring client), in cores. With BENCH_PIN=1, `serve` runs on CPU 0
//! (`taskset -c 0`) and this process on CPU 1, so that the load generator
//! does not take the server's core.
//!
//! Settings: BENCH_SECS (default 5), BENCH_CONNECTIONS (default 16),
//! BENCH_ROUNDS (the three set-ups again, default 1), BENCH_PIN.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{NO_FAIRNESS, provision, spawn_until, url_in};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// How often the other server's client sends a request: 40 per second,
/// under the default rate of 50 per server.
const EVERY: Duration = Duration::from_millis(25);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
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

/// Stateless `tools/list` at `url`, one every `EVERY` (an agent's pace,
/// within the per-server rate) for `limit`: sorted latencies (µs) and the
/// number of failures.
async fn measure(url: String, limit: Duration) -> (Vec<u64>, u64) {
    let http = client();
    let body = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
        }}
    }))
    .expect("json");
    let end = Instant::now() + limit;
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < end {
        ticks.tick().await;
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

/// What the flood's requests got.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    refused: AtomicU64,
}

/// Opens sessions at `url` until `stop`, ignoring refusals.
async fn flood(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let http = client();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let init = json!({"jsonrpc": "2.0", "id": n, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "flood", "version": "1"}}});
        let Ok(answer) = post(&http, &url).json(&init).send().await else {
            continue;
        };
        let session = answer
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ok = answer.status().is_success();
        let _ = answer.bytes().await;
        let counter = if ok { &tally.served } else { &tally.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        let Some(id) = session else { continue };
        let Ok(answer) = post(&http, &url)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
        else {
            continue;
        };
        let counter = if answer.status().is_success() {
            &tally.served
        } else {
            &tally.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let _ = answer.bytes().await;
    }
}

/// One set-up: `serve` with `flags`, quiet then flooded.
fn run(name: &str, flags: &[&str], secs: u64, conns: u64, pin: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bin = env!("CARGO_BIN_EXE_malomo-mcp");
    let mut command = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("bench.db"))
        .args(flags)
        .env("MALOMO_MCP_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("MALOMO_MCP_LOG", "error")
        .env_remove("MALOMO_API_KEY");
    let (server, lines) = spawn_until(command, "/mcp/")?;
    let pid = server.0.id().to_string();
    let url_a = lines
        .iter()
        .find_map(|l| url_in(l).filter(|u| u.contains("/mcp/")))
        .ok_or_else(|| anyhow::anyhow!("serve printed no MCP URL: {lines:?}"))?;
    let base = url_a.split("/mcp/").next().unwrap_or_default().to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http = client();
        let url_b = provision(&http, &base, ADMIN_TOKEN, "quiet").await?;

        measure(url_b.clone(), Duration::from_millis(500)).await;
        let (quiet, _) = measure(url_b.clone(), Duration::from_secs(secs)).await;

        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let (serve_cpu, own_cpu, started) = (cpu_secs(&pid), cpu_secs("self"), Instant::now());
        let floods: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(flood(url_a.clone(), stop.clone(), tally.clone())))
            .collect();
        let (loaded, failures) = measure(url_b.clone(), Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let wall = started.elapsed().as_secs_f64();
        let (serve_cpu, own_cpu) = (cpu_secs(&pid) - serve_cpu, cpu_secs("self") - own_cpu);
        for f in floods {
            f.await?;
        }
        let served = tally.served.load(Ordering::Relaxed) as f64 / wall;
        let refused = tally.refused.load(Ordering::Relaxed) as f64 / wall;
        println!(
            "{name:<22} quiet p50 {:>6.0} µs ({:>5} calls)  flood p50 {:>6.0} µs ({:>5} calls, {failures} failed)  {:>5.2}x  \
             flood {:>6.0} req/s served + {:>6.0} refused  CPU serve {:.2} + bench {:.2} cores",
            p50(&quiet),
            quiet.len(),
            p50(&loaded),
            loaded.len(),
            p50(&loaded) / p50(&quiet).max(1.0),
            served,
            refused,
            serve_cpu / wall,
            own_cpu / wall,
        );
        anyhow::Ok(())
    })?;
    drop(server);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNECTIONS", 16).max(1);
    let pin = std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    if pin {
        // Before any thread starts: the runtime's threads inherit it.
        let status = Command::new("taskset")
            .args(["-p", "-c", "1", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "taskset failed");
    }
    malomo_mcp::install_crypto_provider();
    println!(
        "malomo-mcp fairness: {cores} cores{}; flood of 2025-11-25 sessions from one URL over {conns} connections for {secs} s, another URL measured",
        if pin {
            ", serve pinned to CPU 0 and this load generator to CPU 1"
        } else {
            " shared by this load generator and `serve`"
        }
    );
    let unlimited = NO_FAIRNESS;
    let no_session_caps = [
        "--max-sessions-per-server",
        "1000000",
        "--max-sessions",
        "1000000",
    ];
    let none: Vec<&str> = unlimited.iter().chain(&no_session_caps).copied().collect();
    for _ in 0..env_or("BENCH_ROUNDS", 1) {
        run("no fairness", &none, secs, conns, pin)?;
        run("session caps only", &unlimited, secs, conns, pin)?;
        run("fairness (defaults)", &[], secs, conns, pin)?;
    }
    Ok(())
}
