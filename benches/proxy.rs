//! MCP proxy overhead on loopback: `cargo bench --bench proxy`.
//!
//! Three processes, as in production: `malomo-mcp sandbox` stands in for
//! Malomo (a bucket too large to refuse anything), `malomo-mcp serve` proxies
//! it (`MALOMO_API_KEY`/`MALOMO_BASE_URL` pointing at the sandbox), and this
//! process generates the load. One run measures:
//!
//! 1. `tools/call get_single_malomo_order_by_id` through `serve` in the
//!    stateless 2026-07-28 JSON mode (one POST per call, no session), and
//!    the same upstream request, `GET /orders/{id}`, made directly to the
//!    sandbox: throughput, p50/p99 latency and CPU per request (of each
//!    process) at BENCH_CONNECTIONS concurrent keep-alive clients, then
//!    again at concurrency 1 for a clean added-latency figure;
//! 2. a freshly spawned `malomo-mcp serve` (the binary built with this
//!    bench's profile): idle RSS after it prints its URL, and the time from
//!    spawn to the first `tools/list` answered.
//!
//! All three share the machine's cores (BENCHMARKS.md says how many); the
//! client is reqwest, one HTTP/1.1 connection per concurrent client, for
//! both the direct and the proxied run.
//! Settings: BENCH_SECS (default 5, per phase), BENCH_CONNECTIONS (default
//! 16), BENCH_STARTS (default 5 spawns for the start-up figures),
//! BENCH_ONLY=direct|proxy|refused|healthz (one load phase only, for a
//! profiler: `refused` is a tool call refused by validation, the MCP path
//! without the upstream; `healthz` is the HTTP leg alone).

use std::io::{BufRead, BufReader};

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{NO_FAIRNESS, spawn_until, url_in};

const ACCEPT_V2: &str = "application/vnd.malomo+json; version=2";
const TOOL: &str = "get_single_malomo_order_by_id";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One kind of request the load loop repeats.
#[derive(Clone)]
enum Target {
    Direct {
        url: String,
        key: String,
    },
    /// An MCP request in the stateless 2026-07-28 mode: `method`, and the
    /// tool name for `tools/call`.
    Proxy {
        url: String,
        method: &'static str,
        name: Option<&'static str>,
        body: bytes::Bytes,
        /// The answer is expected to be a tool error (a call refused
        /// before any upstream request).
        refused: bool,
    },
    /// A GET that answers without MCP or upstream work (`/healthz`).
    Get {
        url: String,
    },
}

impl Target {
    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        match self {
            Target::Direct { url, key } => {
                client.get(url).bearer_auth(key).header("accept", ACCEPT_V2)
            }
            Target::Proxy {
                url,
                method,
                name,
                body,
                ..
            } => {
                let request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", *method);
                match name {
                    Some(name) => request.header("mcp-name", *name),
                    None => request,
                }
                .body(body.clone())
            }
            Target::Get { url } => client.get(url),
        }
    }

    /// Whether an answer is a success: 200, and for the proxy a tool
    /// result that is not an error.
    fn ok(&self, status: u16, body: &[u8]) -> bool {
        status == 200
            && match self {
                Target::Direct { .. } | Target::Get { .. } => true,
                Target::Proxy { refused, .. } => contains(body, b"\"isError\":true") == *refused,
            }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn tools_call_body(id: &Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": TOOL,
            "arguments": {"id": id},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
            }
        }
    })
}

fn tools_list_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
        }}
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

struct Phase {
    requests: u64,
    errors: u64,
    secs: f64,
    /// CPU time of this whole process (client, server and sandbox) over
    /// the timed window.
    cpu: Duration,
    /// The same split by process: this one (the load generator), then
    /// each of the `pids` given to [`load`].
    cpu_by_process: Vec<Duration>,
    /// Sorted latencies, nanoseconds.
    latencies: Vec<u64>,
}

impl Phase {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    fn cpu_per_request(&self) -> Duration {
        self.cpu / (self.requests.max(1) as u32)
    }
    fn cpu_split(&self) -> String {
        self.cpu_by_process
            .iter()
            .map(|c| format!("{:.0}", us(*c / (self.requests.max(1) as u32))))
            .collect::<Vec<_>>()
            .join(" + ")
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        Duration::from_nanos(self.latencies[i - 1])
    }
}

/// `connections` clients, each on its own keep-alive connection, send
/// `target` back to back for `secs` (after a short warm-up).
async fn load(target: &Target, connections: u64, secs: u64, pids: &[u32]) -> Phase {
    let target = Arc::new(target.clone());
    let pids: Arc<[u32]> = pids.into();
    let warmup = Duration::from_millis(300);
    let start = Instant::now() + warmup;
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    let at_start = pids.clone();
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        processes_cpu(&at_start)
    });
    let at_end = pids.clone();
    let cpu_at_end = tokio::spawn(async move {
        tokio::time::sleep_until(end.into()).await;
        processes_cpu(&at_end)
    });
    for _ in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut latencies = Vec::with_capacity(64 * 1024);
            let (mut requests, mut errors) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let ok = match target.request(&client).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(body) => target.ok(status, &body),
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                };
                if sent < start {
                    continue;
                }
                requests += 1;
                if ok {
                    latencies.push(sent.elapsed().as_nanos() as u64);
                } else {
                    errors += 1;
                }
            }
            (requests, errors, latencies)
        }));
    }
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        secs: secs as f64,
        cpu: Duration::ZERO,
        cpu_by_process: Vec::new(),
        latencies: Vec::new(),
    };
    for task in tasks {
        let (requests, errors, latencies) = task.await.expect("load task");
        phase.requests += requests;
        phase.errors += errors;
        phase.latencies.extend(latencies);
    }
    phase.latencies.sort_unstable();
    let (from, to) = (cpu_at_start.await, cpu_at_end.await);
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    phase.cpu_by_process = to
        .iter()
        .zip(&from)
        .map(|(t, f)| t.saturating_sub(*f))
        .collect();
    phase.cpu = phase.cpu_by_process.iter().sum();
    phase
}

/// User + system CPU time so far of this process, then of each of `pids`.
fn processes_cpu(pids: &[u32]) -> Vec<Duration> {
    std::iter::once("self".to_owned())
        .chain(pids.iter().map(u32::to_string))
        .map(|pid| process_cpu(&pid))
        .collect()
}

/// User + system CPU time of one process so far (/proc/PID/stat).
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is
    // field 14 and stime 15 of the whole line, in clock ticks (USER_HZ=100).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_phase(label: &str, phase: &Phase) {
    println!(
        "  {label:<34} {:>7.0} req/s   p50 {:>7.1} µs   p99 {:>7.1} µs   CPU {:>6.1} µs/req ({} µs: load generator + sandbox + serve)   ({} requests, {} errors)",
        phase.rps(),
        us(phase.pct(0.50)),
        us(phase.pct(0.99)),
        us(phase.cpu_per_request()),
        phase.cpu_split(),
        phase.requests,
        phase.errors
    );
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Start {
    to_url: Duration,
    to_tools_list: Duration,
    rss_at_url_kib: u64,
    rss_after_list_kib: u64,
}

/// Spawns `malomo-mcp serve` on a free port with a fresh database, waits for
/// its MCP URL, then polls `tools/list` until one succeeds.
fn spawn_once(bin: &str, remote: Option<&str>) -> anyhow::Result<Start> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let list = serde_json::to_vec(&tools_list_body())?;
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("bench.db"))
        .env_remove("MALOMO_MCP_LOG")
        .env_remove("MALOMO_MCP_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match remote {
        Some(base_url) => command
            .env("MALOMO_API_KEY", "sk_bench")
            .env("MALOMO_BASE_URL", base_url),
        None => command
            .env_remove("MALOMO_API_KEY")
            .env_remove("MALOMO_BASE_URL"),
    };
    let spawned = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id();
    let result = (|| -> anyhow::Result<Start> {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("serve exited before printing its URL"))??;
            if let Some(i) = line.find("http://")
                && line[i..].contains("/mcp/")
            {
                break line[i..].split_whitespace().next().unwrap_or("").to_owned();
            }
        };
        let to_url = spawned.elapsed();
        let rss_at_url_kib = vm_rss_kib(pid).unwrap_or(0);
        let to_tools_list = loop {
            if raw_tools_list(&url, &list)
                .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200") && answer.contains(TOOL))
            {
                break spawned.elapsed();
            }
            if spawned.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("no tools/list answer within 10 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        // Settle (the embedded sandbox seeds its demo data in the
        // background), then read the idle RSS again after one request.
        std::thread::sleep(Duration::from_millis(300));
        let rss_after_list_kib = vm_rss_kib(pid).unwrap_or(0);
        Ok(Start {
            to_url,
            to_tools_list,
            rss_at_url_kib,
            rss_after_list_kib,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// One `tools/list` POST over a fresh connection with plain std I/O (no
/// client library start-up in the measured time); the whole answer.
fn raw_tools_list(url: &str, body: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/list\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

fn startup(bin: &str, label: &str, remote: Option<&str>, runs: u64) -> anyhow::Result<()> {
    let mut starts = Vec::new();
    for _ in 0..runs {
        starts.push(spawn_once(bin, remote)?);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let to_list: Vec<Duration> = starts.iter().map(|s| s.to_tools_list).collect();
    println!(
        "  {label}: spawn→URL printed median {:.1} ms; spawn→first tools/list median {:.1} ms (min {:.1}, max {:.1}); \
         VmRSS at URL median {:.1} MiB, idle after one tools/list {:.1} MiB",
        ms(median(starts.iter().map(|s| s.to_url).collect())),
        ms(median(to_list.clone())),
        ms(*to_list.iter().min().expect("runs")),
        ms(*to_list.iter().max().expect("runs")),
        median(starts.iter().map(|s| s.rss_at_url_kib).collect()) as f64 / 1024.0,
        median(starts.iter().map(|s| s.rss_after_list_kib).collect()) as f64 / 1024.0,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNECTIONS", 16);
    let runs = env_or("BENCH_STARTS", 5).max(1);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bin = env!("CARGO_BIN_EXE_malomo-mcp");
    println!(
        "malomo-mcp proxy bench: {cores} cores shared by the load generator (this process), \
         `malomo-mcp serve` and `malomo-mcp sandbox` (two child processes); {secs} s per phase"
    );

    // The upstream: the sandbox binary on its own, as a remote Malomo would
    // be, with a bucket too large to refuse anything.
    let mut command = Command::new(bin);
    command
        .args(["sandbox", "--listen", "127.0.0.1:0", "--rate-burst"])
        .arg(u32::MAX.to_string())
        .args(["--rate-per-sec", "1e12"])
        .env("MALOMO_MCP_LOG", "warn");
    let (sandbox, lines) = spawn_until(command, "secret key")?;
    let sandbox_url = lines
        .iter()
        .find_map(|l| url_in(l))
        .ok_or_else(|| anyhow::anyhow!("no sandbox URL in {lines:?}"))?;
    let secret_key = lines
        .iter()
        .find_map(|l| l.split_once("secret key:"))
        .map(|(_, k)| k.trim().to_owned())
        .ok_or_else(|| anyhow::anyhow!("no secret key in {lines:?}"))?;

    // The server, as users run it, against that upstream.
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("bench.db"))
        .args(NO_FAIRNESS)
        .env("MALOMO_API_KEY", &secret_key)
        .env("MALOMO_BASE_URL", &sandbox_url)
        // The default log level: one line per tool call (to /dev/null).
        .env_remove("MALOMO_MCP_LOG")
        .env_remove("MALOMO_MCP_ADMIN_TOKEN");
    let (server, lines) = spawn_until(command, "/mcp/")?;
    let mcp_url = lines
        .iter()
        .filter(|l| l.contains("/mcp/"))
        .find_map(|l| url_in(l))
        .ok_or_else(|| anyhow::anyhow!("no MCP URL in {lines:?}"))?;
    let pids = [sandbox.0.id(), server.0.id()];

    malomo_mcp::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http = client();
        let orders: Value = http
            .get(format!("{sandbox_url}/orders?limit=1"))
            .bearer_auth(&secret_key)
            .header("accept", ACCEPT_V2)
            .send()
            .await?
            .json()
            .await?;
        let id = orders
            .pointer("/0/id")
            .or_else(|| orders.pointer("/data/0/id"))
            .or_else(|| orders.pointer("/orders/0/id"))
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("no order id in {orders}"))?
            .to_owned();

        let direct = Target::Direct {
            url: format!("{sandbox_url}/orders/{id}"),
            key: secret_key.clone(),
        };
        let proxy = Target::Proxy {
            url: mcp_url.clone(),
            method: "tools/call",
            name: Some(TOOL),
            body: serde_json::to_vec(&tools_call_body(&json!(id)))?.into(),
            refused: false,
        };
        // One call each, checked in full before timing anything.
        let answer = proxy.request(&http).send().await?;
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let status = answer.status().as_u16();
        let text = answer.text().await?;
        anyhow::ensure!(
            proxy.ok(status, text.as_bytes()) && text.contains(&id),
            "tools/call failed: {status} {text}"
        );
        let answer = direct.request(&http).send().await?;
        anyhow::ensure!(answer.status() == 200, "direct GET failed: {answer:?}");
        println!(
            "tools/call {TOOL} via {} ({content_type}, {} bytes) vs GET /orders/{{id}} on the sandbox",
            mcp_url.rsplit_once('/').map_or("", |(base, _)| base),
            text.len()
        );

        if let Ok(only) = std::env::var("BENCH_ONLY") {
            // For profiling one kind of request: BENCH_ONLY=direct|proxy|
            // refused|healthz, at BENCH_CONNECTIONS.
            let healthz = Target::Get {
                url: format!("{}/healthz", mcp_url.split("/mcp/").next().unwrap_or_default()),
            };
            // The same tool call with an argument of the wrong type: all of
            // the MCP path, validation included, and no upstream request.
            let refused = Target::Proxy {
                url: mcp_url.clone(),
                method: "tools/call",
                name: Some(TOOL),
                body: serde_json::to_vec(&tools_call_body(&json!(42)))?.into(),
                refused: true,
            };
            let target = match only.as_str() {
                "direct" => &direct,
                "healthz" => &healthz,
                "refused" => &refused,
                _ => &proxy,
            };
            print_phase(&only, &load(target, conns, secs, &pids).await);
            return Ok(());
        }
        for c in [conns, 1] {
            println!("concurrency {c}:");
            let d = load(&direct, c, secs, &pids).await;
            print_phase("direct   GET /orders/{id}", &d);
            let p = load(&proxy, c, secs, &pids).await;
            print_phase("proxied  tools/call (2026-07-28)", &p);
            println!(
                "  throughput ratio {:.2} (target ≥ 0.6); added latency p50 {:.1} µs, p99 {:.1} µs (target p50 < 200 µs)",
                p.rps() / d.rps(),
                us(p.pct(0.50)) - us(d.pct(0.50)),
                us(p.pct(0.99)) - us(d.pct(0.99)),
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if std::env::var("BENCH_ONLY").is_ok() {
        return Ok(());
    }
    drop(server);

    println!("fresh `malomo-mcp serve` processes ({runs} spawns each, fresh database each):");
    startup(bin, "embedded sandbox (no MALOMO_API_KEY)", None, runs)?;
    startup(
        bin,
        "remote upstream (MALOMO_API_KEY set, no sandbox)",
        Some(&sandbox_url),
        runs,
    )?;
    drop(sandbox);
    Ok(())
}
