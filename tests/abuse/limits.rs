//! One URL holder cannot exhaust the server: session, stream and connection
//! caps, connection timeouts, and sessions bound to the URL that made them.
//! Every loop is bounded and every server listens on 127.0.0.1:0 with caps
//! small enough to reach in a few requests.

use std::time::{Duration, Instant};

use malomo_mcp::access::ToolFilter;
use malomo_mcp::limits::Limits;
use malomo_mcp::serve::Upstream;
use malomo_mcp::store::NewServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestServer, quiet_sandbox, start_server_limited};

async fn start(limits: Limits) -> TestServer {
    start_server_limited(Upstream::Sandbox(quiet_sandbox()), None, limits).await
}

/// The MCP URL of a second server on the same account.
pub(crate) fn second_url(server: &TestServer, name: &str) -> String {
    let created = server
        .server
        .store
        .create_server(
            &server.server.account_id,
            NewServer {
                name: name.to_owned(),
                filter: ToolFilter::all(),
                require_api_token_auth: false,
                expires_at: None,
                answer_budget: None,
            },
        )
        .expect("second server");
    format!("{}/mcp/{}", server.base(), created.token)
}

pub(crate) fn http() -> reqwest::Client {
    malomo_mcp::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn post(http: &reqwest::Client, url: &str, session: Option<&str>) -> reqwest::RequestBuilder {
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    match session {
        Some(id) => request
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25"),
        None => request,
    }
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "abuse", "version": "1"}}})
}

/// The JSON-RPC message of an answer sent as JSON or as one SSE event.
fn message(text: &str) -> Value {
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or(text);
    serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {text}"))
}

/// Opens a 2025-11-25 session at `url` and returns its id.
async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let answer = post(http, url, None)
        .json(&initialize(1))
        .send()
        .await
        .expect("initialize");
    assert_eq!(answer.status(), StatusCode::OK, "initialize refused");
    let id = answer
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .expect("ascii")
        .to_owned();
    let initialized = post(http, url, Some(&id))
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .expect("initialized");
    assert_eq!(initialized.status(), StatusCode::ACCEPTED);
    id
}

/// `tools/list` inside a session: the status and the message.
async fn list_tools(http: &reqwest::Client, url: &str, session: &str) -> (StatusCode, String) {
    let answer = post(http, url, Some(session))
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .expect("tools/list");
    let status = answer.status();
    (status, answer.text().await.expect("body"))
}

fn assert_lists_tools(status: StatusCode, text: &str) {
    assert_eq!(status, StatusCode::OK, "{text}");
    let tools = message(text)["result"]["tools"].as_array().map(Vec::len);
    assert!(tools.is_some_and(|n| n > 0), "no tools in {text}");
}

#[tokio::test]
async fn a_session_flood_from_one_url_is_capped_while_another_url_keeps_answering() {
    let server = start(Limits {
        sessions_per_server: 3,
        sessions_total: 5,
        ..Limits::default()
    })
    .await;
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "other");

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open_session(&http, &a).await);
    }
    // The flood goes on: every further initialize at A is refused, with the
    // request's id, a reason and when to retry.
    for attempt in 0..20 {
        let refused = post(&http, &a, None)
            .json(&initialize(100 + attempt))
            .send()
            .await
            .expect("initialize");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            refused
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("30")
        );
        assert!(refused.headers().get("mcp-session-id").is_none());
        let error = message(&refused.text().await.expect("body"));
        assert_eq!(error["id"], 100 + attempt);
        assert_eq!(error["error"]["code"], -32000);
        assert_eq!(error["error"]["data"]["limit"], 3);
        let text = error["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains("limit of 3 live sessions"), "{text}");
    }
    // A's own sessions keep working, and so does everyone else.
    let (status, text) = list_tools(&http, &a, &held[0]).await;
    assert_lists_tools(status, &text);
    let at_b = open_session(&http, &b).await;
    let (status, text) = list_tools(&http, &b, &at_b).await;
    assert_lists_tools(status, &text);

    // Ending a session gives its place back at once.
    let deleted = http
        .delete(&a)
        .header("mcp-session-id", &held[0])
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    held[0] = open_session(&http, &a).await;

    // The total cap (5): B may open one more, then the server is full.
    let _second_at_b = open_session(&http, &b).await;
    let full = post(&http, &b, None)
        .json(&initialize(7))
        .send()
        .await
        .expect("initialize");
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().contains_key("retry-after"));
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_session_answers_only_at_the_url_that_created_it() {
    let server = start(Limits::default()).await;
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "other");
    let session = open_session(&http, &a).await;

    let (status, text) = list_tools(&http, &b, &session).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let stream = http
        .get(&b)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("get");
    assert_eq!(stream.status(), StatusCode::NOT_FOUND);
    let deleted = http
        .delete(&b)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);

    // Untouched at A.
    let (status, text) = list_tools(&http, &a, &session).await;
    assert_lists_tools(status, &text);
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_second_initialize_inside_a_session_is_refused() {
    let server = start(Limits::default()).await;
    let http = http();
    let a = server.url().to_owned();
    let session = open_session(&http, &a).await;
    let again = post(&http, &a, Some(&session))
        .json(&initialize(9))
        .send()
        .await
        .expect("initialize");
    let text = again.text().await.expect("body");
    let answer = message(&text);
    assert_eq!(answer["id"], 9, "{text}");
    assert_eq!(answer["error"]["code"], -32600, "{text}");
    assert!(answer.get("result").is_none(), "{text}");
    // The session itself goes on.
    let (status, text) = list_tools(&http, &a, &session).await;
    assert_lists_tools(status, &text);
    server.server.shutdown().await;
}

#[tokio::test]
async fn open_sse_streams_are_capped_per_server() {
    let server = start(Limits {
        streams_per_server: 1,
        ..Limits::default()
    })
    .await;
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "other");
    let get = |url: &str, session: &str| {
        http.get(url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    let first = open_session(&http, &a).await;
    let second = open_session(&http, &a).await;
    let open = get(&a, &first).await.expect("get");
    assert_eq!(open.status(), StatusCode::OK);

    let refused = get(&a, &second).await.expect("get");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // The legacy 2024-11-05 transport counts against the same cap.
    let legacy = http.get(format!("{a}/sse")).send().await.expect("sse");
    assert_eq!(legacy.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another server's streams are unaffected.
    let at_b = open_session(&http, &b).await;
    let other = get(&b, &at_b).await.expect("get");
    assert_eq!(other.status(), StatusCode::OK);

    // A closed stream gives its place back.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let retry = get(&a, &second).await.expect("get");
        if retry.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(other);
    server.server.shutdown().await;
}

/// Reads until the server closes the connection (or `within` passes);
/// returns what it sent and whether it closed.
async fn read_until_closed(tcp: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_connections_are_closed_and_fast_ones_are_not() {
    let server = start(Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let addr = server.server.addr;
    let silent = TcpStream::connect(addr).await.expect("connect");
    let mut half_head = TcpStream::connect(addr).await.expect("connect");
    half_head
        .write_all(b"POST /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let mut half_body = TcpStream::connect(addr).await.expect("connect");
    half_body
        .write_all(
            b"POST /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{\"half\":",
        )
        .await
        .expect("write");

    // A fast client meanwhile is served, again and again on one connection.
    let http = http();
    for _ in 0..5 {
        let health = http
            .get(format!("{}/healthz", server.base()))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), StatusCode::OK);
    }

    let mut silent = silent;
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a connection that sent nothing stayed open");
    let (_, closed) = read_until_closed(&mut half_head, Duration::from_secs(5)).await;
    assert!(closed, "a connection that sent half a head stayed open");
    let (answer, closed) = read_until_closed(&mut half_body, Duration::from_secs(5)).await;
    assert!(closed, "a connection that sent half a body stayed open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_until_one_closes() {
    let server = start(Limits {
        max_connections: 3,
        ..Limits::default()
    })
    .await;
    let addr = server.server.addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Accepted in order: give the server a moment to take all three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(addr).await.expect("connect");
    let (answer, closed) = read_until_closed(&mut over, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 30"), "{answer}");

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no room after a close: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.server.shutdown().await;
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `tools/call list_all_malomo_orders` for the demo customer inside a
/// session: the status and the message.
async fn call_tool(http: &reqwest::Client, url: &str, session: &str) -> (StatusCode, Value) {
    let answer = post(http, url, Some(session))
        .json(
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "list_all_malomo_orders",
            "arguments": {"customer_email": malomo_mcp::sandbox::DEMO_EMAIL}}}),
        )
        .send()
        .await
        .expect("tools/call");
    let status = answer.status();
    let text = answer.text().await.expect("body");
    let message = if status == StatusCode::OK {
        message(&text)
    } else {
        Value::String(text)
    };
    (status, message)
}

fn assert_orders(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["id"], 3, "{answer}");
    assert_ne!(answer["result"]["isError"], true, "{answer}");
    let items = answer["result"]["structuredContent"]["items"].as_array();
    assert!(
        items.is_some_and(|i| !i.is_empty()),
        "no orders in {answer}"
    );
}

async fn delete_session(http: &reqwest::Client, url: &str, session: &str) -> StatusCode {
    http.delete(url)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("delete")
        .status()
}

fn open_stream(
    http: &reqwest::Client,
    url: &str,
    session: &str,
) -> impl Future<Output = reqwest::Result<reqwest::Response>> {
    http.get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
}

#[tokio::test]
async fn an_evicted_idle_session_keeps_its_id_its_server_and_its_place() {
    let server = start(Limits {
        sessions_per_server: 2,
        session_evict_after: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let sessions = server.server.sessions.clone();
    let ended = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = ended.clone();
    sessions.on_session_end(move |id| seen.lock().expect("lock").push(id.to_owned()));
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "other");
    let session = open_session(&http, &a).await;
    eventually("eviction", Duration::from_secs(10), || sessions.live() == 0).await;
    assert_eq!(sessions.count(), 1, "the record is gone with its service");

    // Still bound to A: at B it does not exist, whatever the method.
    let (status, text) = list_tools(&http, &b, &session).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let stream = open_stream(&http, &b, &session).await.expect("get");
    assert_eq!(stream.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        delete_session(&http, &b, &session).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sessions.live(), 0, "a foreign URL restored the session");

    // Still counted: A holds one dormant session, and its cap is 2.
    let second = open_session(&http, &a).await;
    let refused = post(&http, &a, None)
        .json(&initialize(5))
        .send()
        .await
        .expect("initialize");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    // The client's own second `initialize` is the first request after the
    // eviction: the restore replays the first one, and this one is refused.
    let again = post(&http, &a, Some(&session))
        .json(&initialize(9))
        .send()
        .await
        .expect("initialize");
    assert_eq!(again.status(), StatusCode::OK);
    let answer = message(&again.text().await.expect("body"));
    assert_eq!(answer["id"], 9, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(sessions.live() >= 1, "the session was not restored");

    // Evicted again, it still answers a tool call with the same id.
    eventually("eviction", Duration::from_secs(10), || sessions.live() == 0).await;
    let (status, answer) = call_tool(&http, &a, &session).await;
    assert_orders(status, &answer);

    // DELETE ends a dormant session for good, and gives its place back.
    eventually("eviction", Duration::from_secs(10), || sessions.live() == 0).await;
    assert!(delete_session(&http, &a, &session).await.is_success());
    assert_eq!(sessions.count(), 1);
    assert_eq!(*ended.lock().expect("lock"), vec![session.clone()]);
    let (status, answer) = call_tool(&http, &a, &session).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let _third = open_session(&http, &a).await;
    assert!(delete_session(&http, &a, &second).await.is_success());
    server.server.shutdown().await;
}

#[tokio::test]
async fn an_idle_session_record_expires() {
    let server = start(Limits {
        session_evict_after: Duration::from_millis(100),
        session_idle_timeout: Duration::from_millis(800),
        ..Limits::default()
    })
    .await;
    let sessions = server.server.sessions.clone();
    let ended = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = ended.clone();
    sessions.on_session_end(move |id| seen.lock().expect("lock").push(id.to_owned()));
    let http = http();
    let a = server.url().to_owned();
    let session = open_session(&http, &a).await;
    eventually("eviction", Duration::from_secs(10), || sessions.live() == 0).await;
    eventually("expiry", Duration::from_secs(10), || sessions.count() == 0).await;
    assert_eq!(*ended.lock().expect("lock"), vec![session.clone()]);
    let (status, text) = list_tools(&http, &a, &session).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_session_with_an_open_stream_is_neither_evicted_nor_expired() {
    let server = start(Limits {
        session_evict_after: Duration::from_millis(100),
        session_idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let sessions = server.server.sessions.clone();
    let http = http();
    let a = server.url().to_owned();
    let session = open_session(&http, &a).await;
    let mut stream = open_stream(&http, &a, &session).await.expect("get");
    assert_eq!(stream.status(), StatusCode::OK);

    // Well past both the eviction period and the idle timeout, the stream
    // is still open (no end of body) and its session still live.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(_))) => continue,
            Ok(end) => panic!("the session's stream ended: {end:?}"),
        }
    }
    assert_eq!(sessions.live(), 1);
    let (status, text) = list_tools(&http, &a, &session).await;
    assert_lists_tools(status, &text);

    // Once the stream is closed, the session is evicted, then expires.
    drop(stream);
    eventually("eviction", Duration::from_secs(10), || sessions.live() == 0).await;
    eventually("expiry", Duration::from_secs(10), || sessions.count() == 0).await;
    server.server.shutdown().await;
}

/// The environment `serve` runs with, read once it has printed its URL
/// (as the kernel shows it; glibc may cut `GLIBC_TUNABLES` up with NULs
/// while parsing it, so look for its parts).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn serve_environment(tunables: Option<&str>) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_malomo-mcp"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("env.db"))
        .env_remove("MALOMO_API_KEY")
        .env_remove("GLIBC_TUNABLES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(tunables) = tunables {
        command.env("GLIBC_TUNABLES", tunables);
    }
    let mut child = command.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .take(50)
        .map_while(Result::ok)
        .any(|line| line.contains("/mcp/"));
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "serve printed no MCP URL");
    String::from_utf8_lossy(&environ).replace('\0', "\n")
}

/// Memory freed after a flood can only go back to the OS without glibc's
/// per-thread caches (BENCHMARKS.md, "Session flood"): `serve` turns them
/// off for itself, keeping other tunables, unless told otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_runs_without_glibc_thread_caches_unless_told_otherwise() {
    let environ = serve_environment(None);
    assert!(environ.contains("MALOMO_MCP_MALLOC_TUNED=1"), "{environ}");
    assert!(
        environ.contains("GLIBC_TUNABLES=glibc.malloc.tcache_count=0"),
        "{environ}"
    );
    let environ = serve_environment(Some("glibc.malloc.arena_max=2"));
    assert!(environ.contains("MALOMO_MCP_MALLOC_TUNED=1"), "{environ}");
    assert!(
        environ.contains("GLIBC_TUNABLES=glibc.malloc.arena_max=2"),
        "{environ}"
    );
    assert!(environ.contains("glibc.malloc.tcache_count=0"), "{environ}");
    let environ = serve_environment(Some("glibc.malloc.tcache_count=7"));
    assert!(!environ.contains("MALOMO_MCP_MALLOC_TUNED"), "{environ}");
    assert!(!environ.contains("tcache_count=0"), "{environ}");
}
