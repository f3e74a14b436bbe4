//! Sandbox GET throughput on loopback: `cargo bench --bench sandbox`.
//!
//! Starts the sandbox in-process with a bucket too large to refuse
//! anything, then drives `GET /orders/{id}` over keep-alive HTTP/1.1
//! connections for a fixed time. The client is a minimal hand-written
//! HTTP/1.1 loop so that the figure measures the server, not a client
//! library; client and server share the same 2 cores.
//! Settings: BENCH_SECS (default 5), BENCH_CONNECTIONS (default 32).

use malomo_mcp::sandbox::{self, SandboxConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns its
/// status code. Leftover bytes (none without pipelining) are kept in `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16 * 1024];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..total);
            return Ok(status);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn first_order_id(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "GET /orders?limit=1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer sk_bench\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("[]");
    let v: serde_json::Value = serde_json::from_str(body)?;
    v[0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no order in {body}"))
}

async fn run() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNECTIONS", 32);
    let config = SandboxConfig {
        rate_burst: u32::MAX,
        rate_per_sec: 1e12,
        tick_interval: None,
        ..SandboxConfig::default()
    };
    let handle = sandbox::start("127.0.0.1:0".parse()?, config).await?;
    let addr = handle.addr;
    let id = first_order_id(addr).await?;
    let request = format!(
        "GET /orders/{id} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer sk_bench\r\n\r\n"
    );

    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut latencies_us: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= stop {
                    break;
                }
                stream.write_all(request.as_bytes()).await?;
                let status = read_response(&mut stream, &mut buf).await?;
                if status != 200 {
                    errors += 1;
                }
                if t0 >= measure_from {
                    latencies_us.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
            }
            Ok::<_, std::io::Error>((latencies_us, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, err) = t.await??;
        all.extend(lat);
        errors += err;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
    };
    let rps = all.len() as f64 / secs as f64;
    println!(
        "sandbox GET /orders/{{id}}: {conns} keep-alive connections, {secs} s after 1 s warm-up"
    );
    println!(
        "  requests: {}  non-200: {errors}  throughput: {rps:.0} req/s  p50: {} us  p99: {} us",
        all.len(),
        pct(0.50).unwrap_or(0),
        pct(0.99).unwrap_or(0)
    );
    handle.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
