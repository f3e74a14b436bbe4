//! Protocol faults get the JSON-RPC error that names them, on every
//! transport: `-32602` for `tools/call` params that are not a tool call,
//! `-32700` for a body that is not JSON, 415 only for a wrong Content-Type.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{quiet_sandbox, start_server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `tools/call` params that are not a tool call, and the words the error
/// must contain.
fn malformed_params() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"arguments": {}}), "`params.name` is missing"),
        (json!({"name": 7}), "`params.name` must be a string"),
        (
            json!({"name": "get_current_malomo_account", "arguments": [1, 2]}),
            "`params.arguments` must be an object",
        ),
        (
            json!({"name": "get_single_malomo_order_by_id", "arguments": "id=x"}),
            "`params.arguments` must be an object",
        ),
    ]
}

const META_2026: &str = r#"{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}"#;

fn assert_invalid_params(answer: &Value, words: &str, context: &str) {
    assert_eq!(
        answer["error"]["code"],
        json!(-32602),
        "{context}: {answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(words), "{context}: {answer}");
}

async fn post(
    url: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("accept", "application/json, text/event-stream")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .expect("answer in time")
        .expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    // A JSON answer, or one SSE event carrying it.
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .rfind(|data| !data.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .to_owned();
    (
        status,
        serde_json::from_str(&json).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn malformed_tool_calls_are_invalid_params_over_streamable_http() {
    let server = start_server(quiet_sandbox()).await;
    let meta: Value = serde_json::from_str(META_2026).expect("meta");
    // Stateless 2026-07-28: the in-line path's headers, and with an Origin
    // (which sends the request through rmcp's transport).
    for origin in [None, Some("http://localhost:6274")] {
        for (params, words) in malformed_params() {
            let mut params = params;
            params["_meta"] = meta.clone();
            let name = params["name"].as_str().unwrap_or("x").to_owned();
            let mut headers = vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", name.as_str()),
            ];
            if let Some(origin) = origin {
                headers.push(("origin", origin));
            }
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
            let (status, answer) = post(
                server.url(),
                &headers,
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
            let context = format!("stateless, origin {origin:?}, {params}");
            assert_ne!(status, 404, "{context}");
            assert_invalid_params(&answer, words, &context);
        }
    }

    // A 2025-11-25 session.
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let response = reqwest::Client::new()
        .post(server.url())
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .expect("initialize");
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let session_headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post(
        server.url(),
        &session_headers,
        "application/json",
        initialized.to_string().into_bytes(),
    )
    .await;
    for (params, words) in malformed_params() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let (status, answer) = post(
            server.url(),
            &session_headers,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
        assert_ne!(status, 404, "session, {params}");
        assert_invalid_params(&answer, words, &format!("session, {params}"));
    }

    // Not JSON is a parse error; only a wrong Content-Type is 415.
    for headers in [&session_headers[..], &[][..]] {
        let (status, answer) =
            post(server.url(), headers, "application/json", b"id=x".to_vec()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], json!(-32700), "{answer}");
        let (status, answer) =
            post(server.url(), headers, "application/json", b"[1,2]".to_vec()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], json!(-32600), "{answer}");
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let (status, _) = post(
            server.url(),
            headers,
            "text/plain",
            ping.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 415);
    }
    server.server.shutdown().await;
}

/// Reads `data:` lines of an SSE stream.
async fn next_sse_data(response: &mut reqwest::Response, buffer: &mut String) -> String {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                return data.join("\n");
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("SSE event within 10 s")
            .expect("SSE stream")
            .expect("SSE stream still open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn malformed_tool_calls_are_invalid_params_over_legacy_sse() {
    let server = start_server(quiet_sandbox()).await;
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("{}/sse", server.url()))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    let mut buffer = String::new();
    let endpoint = next_sse_data(&mut stream, &mut buffer).await;
    let post_url = format!("{}{}", server.base(), endpoint);
    let send = |body: String| {
        http.post(&post_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "old", "version": "1"}}})
        .to_string(),
    )
    .await
    .expect("initialize");
    next_sse_data(&mut stream, &mut buffer).await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .await
        .expect("initialized");
    for (params, words) in malformed_params() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let accepted = send(body.to_string()).await.expect("POST");
        assert_eq!(accepted.status(), 202);
        let answer: Value =
            serde_json::from_str(&next_sse_data(&mut stream, &mut buffer).await).expect("JSON");
        assert_invalid_params(&answer, words, &format!("legacy SSE, {params}"));
    }
    let refused = send("id=x".to_owned()).await.expect("POST");
    assert_eq!(refused.status(), 400);
    let answer: Value = refused.json().await.expect("a JSON-RPC error");
    assert_eq!(answer["error"]["code"], json!(-32700), "{answer}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn malformed_tool_calls_are_invalid_params_over_stdio() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"))
        .args(["stdio", "--sandbox"])
        .env_remove("MALOMO_API_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = async |message: Value| {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}),
    )
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    let cases = malformed_params();
    for (i, (params, _)) in cases.iter().enumerate() {
        send(json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": params}))
            .await;
    }
    let mut answered = 0;
    while answered < cases.len() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("an answer in time")
            .expect("stdout")
            .expect("stdio still open");
        let answer: Value = serde_json::from_str(&line).expect("JSON-RPC");
        let Some(id) = answer["id"].as_u64().filter(|id| *id > 0) else {
            continue;
        };
        let (params, words) = &cases[id as usize - 1];
        assert_invalid_params(&answer, words, &format!("stdio, {params}"));
        answered += 1;
    }
}
