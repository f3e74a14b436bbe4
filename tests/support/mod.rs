//! Shared helpers of the integration tests: a running server on the
//! in-process sandbox, and real MCP clients (rmcp's) talking to it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use malomo_mcp::limits::Limits;
use malomo_mcp::sandbox::SandboxConfig;
use malomo_mcp::serve::{self, RunningServer, ServeOptions, Upstream};
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Map, Value};

pub type Client = RunningService<RoleClient, ()>;

/// A sandbox that never rate-limits and only moves on explicit ticks.
pub fn quiet_sandbox() -> SandboxConfig {
    SandboxConfig {
        rate_burst: 1_000_000,
        rate_per_sec: 1_000_000.0,
        tick_interval: None,
        ..SandboxConfig::default()
    }
}

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn url(&self) -> &str {
        &self.server.mcp_url
    }
    pub fn base(&self) -> String {
        format!("http://{}", self.server.addr)
    }
}

/// `serve` on 127.0.0.1:0 with a fresh database, on the embedded sandbox.
pub async fn start_server(sandbox: SandboxConfig) -> TestServer {
    start_server_with(Upstream::Sandbox(sandbox), None).await
}

pub async fn start_server_with(upstream: Upstream, admin_token: Option<&str>) -> TestServer {
    start_server_limited(upstream, admin_token, Limits::default()).await
}

/// `serve` on 127.0.0.1:0 with a fresh database and the given caps.
pub async fn start_server_limited(
    upstream: Upstream,
    admin_token: Option<&str>,
    limits: Limits,
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve::start(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: dir.path().join("test.db"),
        public_url: None,
        allowed_hosts: Vec::new(),
        upstream,
        admin_token: admin_token.map(str::to_owned),
        upstream_timeout: Duration::from_secs(5),
        max_upstream_body: malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY,
        limits,
        node_name: None,
        sweep_every: Duration::from_secs(15),
        inbox: Default::default(),
    })
    .await
    .expect("server starts");
    TestServer { server, dir }
}

/// An MCP client doing the `initialize` handshake (protocol 2025-xx).
pub async fn handshake_client(url: &str) -> Client {
    malomo_mcp::install_crypto_provider();
    tokio::time::timeout(
        ANSWER_WITHIN,
        ().serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
        )),
    )
    .await
    .expect("initialize answered in time")
    .expect("initialize handshake")
}

/// An MCP client in the 2026-07-28 stateless mode (`server/discover`, no
/// session).
pub async fn stateless_client(url: &str) -> Client {
    malomo_mcp::install_crypto_provider();
    tokio::time::timeout(
        ANSWER_WITHIN,
        ().serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
            ),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        ),
    )
    .await
    .expect("server/discover answered in time")
    .expect("server/discover")
}

pub fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("arguments must be an object"),
    }
}

/// How long one exchange with the server may take: an answer that never
/// comes fails the test instead of hanging it.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Calls a tool; protocol errors fail the test, tool errors are returned.
pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    tokio::time::timeout(
        ANSWER_WITHIN,
        client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments))),
    )
    .await
    .unwrap_or_else(|_| panic!("{tool}: no answer within {ANSWER_WITHIN:?}"))
    .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

/// Calls a tool that must succeed and returns its structured content.
pub async fn ok(client: &Client, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments.clone()).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool}({arguments}) failed: {}",
        text(&result)
    );
    let value = result
        .structured_content
        .unwrap_or_else(|| panic!("{tool} returned no structuredContent"));
    assert_conforms_to_output_schema(tool, &value);
    value
}

/// Checks structured content against the tool's declared output schema.
pub fn assert_conforms_to_output_schema(tool: &str, value: &Value) {
    let Some(def) = malomo_mcp::catalog::tool(tool) else {
        return;
    };
    let schema: Value = serde_json::from_str(def.output_schema).expect("output schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("output schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path().as_str()))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "{tool}: structuredContent breaks its output schema: {errors:?}"
    );
}

/// Calls a tool that must fail and returns its text.
pub async fn tool_error(client: &Client, tool: &str, arguments: Value) -> String {
    let result = call(client, tool, arguments.clone()).await;
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool}({arguments}) unexpectedly succeeded"
    );
    text(&result)
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string `{key}` in {value}"))
}

/// `POST /admin/integrated-accounts/{id}/mcp` with `body` on the server's
/// account, as the admin token `admin`: the answer's status and JSON body.
pub async fn provision_with(server: &TestServer, admin: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/integrated-accounts/{}/mcp",
            server.base(),
            server.server.account_id
        ))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .expect("POST mcp server");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// A bare `initialize` POST (protocol 2025-06-18), optionally with a bearer
/// token, for tests about the HTTP answer itself (status, headers).
pub async fn raw_initialize(url: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        );
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST initialize")
}

/// Reads SSE events (`event`, `data`) from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    pub async fn next_event(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return (event, data.join("\n"));
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.response.chunk())
                    .await
                    .expect("SSE event within 10 s")
                    .expect("SSE stream")
                    .expect("SSE stream still open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
