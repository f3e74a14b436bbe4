//! Peak memory of one large upstream answer: `cargo bench --bench upstream_memory`.
//!
//! An in-process loopback upstream answers `GET /orders` with a JSON array
//! of BENCH_ANSWER_MIB MiB (default 3, under the default 4 MiB cap); the
//! release `malomo-mcp serve` proxies it (`MALOMO_API_KEY`/`MALOMO_BASE_URL`
//! pointing there), and this process calls `list_all_malomo_orders` over
//! stateless MCP. Before each call the server's peak RSS is reset (Linux
//! `/proc/PID/clear_refs`), so the figure is what that one answer added on
//! top of the RSS before it: the target is at most about 4x the answer.
//! Also printed: the bytes the MCP client received (the tool result carries
//! the answer twice, as text and as `structuredContent`: issue 15).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/{pid}/status"))
}

/// The answer: a JSON array of order-like objects, `bytes` long.
fn answer(bytes: usize) -> Vec<u8> {
    let mut body = b"[".to_vec();
    let mut i = 0u64;
    while body.len() + 200 < bytes {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(
            json!({"id": format!("ord_{i:010}"), "number": format!("#{i}"),
                   "customer_email": "bench@example.com", "total_price": "12.34",
                   "shipments": [{"id": format!("shp_{i:010}"), "carrier": "USPS",
                                  "tracking_code": "9400111899223197428490"}]})
            .to_string()
            .as_bytes(),
        );
        i += 1;
    }
    body.push(b']');
    body
}

/// A child process that is killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::var("BENCH_ANSWER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let calls = 3;
    let body = bytes::Bytes::from(answer(mib * 1024 * 1024));
    let size = body.len();
    malomo_mcp::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let upstream = runtime.block_on(async {
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        anyhow::Ok(url)
    })?;

    let dir = tempfile::tempdir()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_malomo-mcp"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("bench.db"))
        .env("MALOMO_API_KEY", "sk_bench")
        .env("MALOMO_BASE_URL", &upstream)
        .env("MALOMO_MCP_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Child(command.spawn()?);
    let stdout = server
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("serve exited before printing its URL"))??;
        if let Some(at) = line.find("http://").filter(|_| line.contains("/mcp/")) {
            break line[at..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let pid = server.0.id();

    let call = |limit: u32| {
        let url = url.clone();
        async move {
            let response = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "list_all_malomo_orders")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                    "name": "list_all_malomo_orders", "arguments": {"limit": limit},
                    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                              "io.modelcontextprotocol/clientCapabilities": {},
                              "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}}}))
                .send()
                .await?;
            let bytes = response.bytes().await?;
            anyhow::ensure!(
                !bytes.windows(15).any(|w| w == b"\"isError\":true"),
                "the call failed: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
            );
            anyhow::Ok(bytes.len())
        }
    };
    println!(
        "malomo-mcp upstream memory bench: one answer of {:.2} MiB, {calls} calls",
        size as f64 / 1048576.0
    );
    // One call first, so that the pools and caches a call warms are there.
    runtime.block_on(call(1))?;
    let mut worst = 0.0f64;
    for round in 1..=calls {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        let before = status_kib(pid, "VmRSS:")?;
        let received = runtime.block_on(call(100))?;
        let peak = status_kib(pid, "VmHWM:")?;
        let added = peak.saturating_sub(before) as f64 * 1024.0;
        let ratio = added / size as f64;
        worst = worst.max(ratio);
        println!(
            "call {round}: RSS before {:.1} MiB, peak {:.1} MiB: +{:.1} MiB = {ratio:.2}x the answer; client received {:.2} MiB ({:.2}x)",
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            added / 1048576.0,
            received as f64 / 1048576.0,
            received as f64 / size as f64,
        );
    }
    println!("worst: {worst:.2}x the answer (target: about 4x)");
    Ok(())
}
