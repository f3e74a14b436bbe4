//! Peak memory of one large upstream answer: `cargo bench --bench upstream_memory`.
//!
//! An in-process loopback upstream answers `GET /orders` with a JSON array
//! of BENCH_ANSWER_MIB MiB (default 3, under the default 4 MiB cap; one
//! order when asked for `limit=1`); the release `malomo-mcp serve` proxies
//! it (`MALOMO_API_KEY`/`MALOMO_BASE_URL` pointing there), and this process
//! calls `list_all_malomo_orders` with `limit: 100` on both MCP paths:
//! stateless 2026-07-28 (answered in-line) and a 2025-11-25 session (rmcp),
//! with the default fields and with `fields: ["*"]`.
//!
//! Each case runs in a fresh `serve` (memory a previous answer freed but the
//! allocator kept would hide the next one's): one small call warms it up,
//! then the server's peak RSS is reset (Linux `/proc/PID/clear_refs`), and
//! the figure is what the one large answer added on top of the RSS before
//! it, as a multiple of the answer (target: about 4x). Also printed, for
//! the wire: the bytes of the text block, of `structuredContent` and of the
//! whole answer the client received. BENCH_BIN runs another build of
//! `malomo-mcp` instead (an older one, for a side-by-side comparison).

use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::{spawn_until, url_in};

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/{pid}/status"))
}

fn order(i: u64) -> Value {
    json!({"id": format!("ord_{i:010}"), "number": format!("#{i}"),
           "customer_email": "bench@example.com", "total_price": "12.34",
           "shipments": [{"id": format!("shp_{i:010}"), "carrier": "USPS",
                          "tracking_code": "9400111899223197428490"}]})
}

/// The answer: a JSON array of order-like objects, `bytes` long.
fn answer(bytes: usize) -> Vec<u8> {
    let mut body = b"[".to_vec();
    let mut i = 0u64;
    while body.len() + 200 < bytes {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(order(i).to_string().as_bytes());
        i += 1;
    }
    body.push(b']');
    body
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Stateless,
    Session,
}

/// One MCP client of one `serve`, on one path.
struct Mcp {
    http: reqwest::Client,
    url: String,
    path: Path,
    session: Option<String>,
}

impl Mcp {
    async fn open(url: &str, path: Path) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let mut mcp = Self {
            http,
            url: url.to_owned(),
            path,
            session: None,
        };
        if path == Path::Session {
            let answer = mcp
                .post()
                .json(
                    &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "1"}}}),
                )
                .send()
                .await?;
            let id = answer
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow::anyhow!("no session id"))?
                .to_owned();
            answer.bytes().await?;
            mcp.session = Some(id);
            mcp.post()
                .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .send()
                .await?
                .bytes()
                .await?;
        }
        Ok(mcp)
    }

    fn post(&self) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        match (&self.session, self.path) {
            (Some(id), _) => request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25"),
            (None, Path::Session) => request,
            (None, Path::Stateless) => request
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "list_all_malomo_orders"),
        }
    }

    /// `list_all_malomo_orders` with `arguments`: the whole answer's bytes.
    async fn call(&self, arguments: Value) -> anyhow::Result<bytes::Bytes> {
        let mut params = json!({"name": "list_all_malomo_orders", "arguments": arguments});
        if self.path == Path::Stateless {
            params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}});
        }
        let response = self
            .post()
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
            .send()
            .await?;
        let bytes = response.bytes().await?;
        anyhow::ensure!(
            !bytes.windows(15).any(|w| w == b"\"isError\":true"),
            "the call failed: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        );
        Ok(bytes)
    }
}

/// The sizes of an answer (JSON, or one SSE event): its text block and its
/// `structuredContent`.
fn parts(answer: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(answer);
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.starts_with('{'))
        .unwrap_or(&text);
    let message: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let text = message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .map_or(0, str::len);
    let structured = message
        .pointer("/result/structuredContent")
        .map_or(0, |v| v.to_string().len());
    (text, structured)
}

fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::var("BENCH_ANSWER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let body = bytes::Bytes::from(answer(mib * 1024 * 1024));
    let small = bytes::Bytes::from(format!("[{}]", order(0)));
    let size = body.len();
    malomo_mcp::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let upstream = runtime.block_on(async {
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let one = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .any(|(k, v)| k == "limit" && v == "1");
            let body = if one { small.clone() } else { body.clone() };
            async move { ([("content-type", "application/json")], body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        anyhow::Ok(url)
    })?;

    println!(
        "malomo-mcp upstream memory bench: one upstream answer of {:.2} MiB, `list_all_malomo_orders` limit 100, a fresh `serve` per case",
        size as f64 / 1048576.0
    );
    let cases = [
        (
            "stateless (in-line), default fields",
            Path::Stateless,
            json!({"limit": 100}),
        ),
        (
            "stateless (in-line), fields [*]",
            Path::Stateless,
            json!({"limit": 100, "fields": ["*"]}),
        ),
        (
            "session (rmcp), default fields",
            Path::Session,
            json!({"limit": 100}),
        ),
        (
            "session (rmcp), fields [*]",
            Path::Session,
            json!({"limit": 100, "fields": ["*"]}),
        ),
    ];
    let mut worst = 0.0f64;
    for (name, path, arguments) in cases {
        let dir = tempfile::tempdir()?;
        let bin = std::env::var("BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_malomo-mcp").to_owned());
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("bench.db"))
            .env("MALOMO_API_KEY", "sk_bench")
            .env("MALOMO_BASE_URL", &upstream)
            .env("MALOMO_MCP_LOG", "warn");
        let (server, lines) = spawn_until(command, "/mcp/")?;
        let url = lines
            .iter()
            .find_map(|l| url_in(l).filter(|u| u.contains("/mcp/")))
            .ok_or_else(|| anyhow::anyhow!("serve printed no MCP URL: {lines:?}"))?;
        let pid = server.0.id();
        let (before, peak, answer) = runtime.block_on(async {
            let mcp = Mcp::open(&url, path).await?;
            // Warm up the pools and caches a call uses, with a small answer.
            mcp.call(json!({"limit": 1})).await?;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
            let before = status_kib(pid, "VmRSS:")?;
            let answer = mcp.call(arguments).await?;
            let peak = status_kib(pid, "VmHWM:")?;
            anyhow::Ok((before, peak, answer))
        })?;
        drop(server);
        let added = peak.saturating_sub(before) as f64 * 1024.0;
        let ratio = added / size as f64;
        worst = worst.max(ratio);
        let (text, structured) = parts(&answer);
        println!(
            "{name:<38} RSS before {:>5.1} MiB, peak {:>5.1} MiB: +{:>5.1} MiB = {ratio:>5.2}x the answer; \
             to the client {} bytes (text {text}, structuredContent {structured}: {:.2}x the text)",
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            added / 1048576.0,
            answer.len(),
            answer.len() as f64 / text.max(1) as f64,
        );
    }
    println!("worst: {worst:.2}x the answer (target: about 4x)");
    Ok(())
}
