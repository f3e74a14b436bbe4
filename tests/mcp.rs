//! The MCP runtime through real MCP clients (rmcp's) over HTTP, in the
//! handshake and the 2026-07-28 stateless mode, and over stdio.

mod support;

use std::collections::BTreeSet;

use malomo_mcp::catalog::TOOLS;
use malomo_mcp::sandbox::DEMO_EMAIL;
use serde_json::{Value, json};
use support::*;

/// Calls every tool of the table at least once, as a support agent would,
/// and returns the names called.
async fn exercise_every_tool(client: &Client, tag: &str) -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    macro_rules! ok {
        ($tool:expr, $args:expr) => {{
            called.insert($tool.to_owned());
            ok(client, $tool, $args).await
        }};
    }

    let account = ok!("get_current_malomo_account", json!({}));
    assert!(account.get("id").is_some(), "account has an id: {account}");

    // Lists page with opaque cursors passed back unchanged.
    let page1 = ok!("list_all_malomo_orders", json!({"limit": 2}));
    let items1 = page1["items"].as_array().expect("items");
    assert_eq!(items1.len(), 2);
    let cursor = str_of(&page1, "next_cursor").to_owned();
    let page2 = ok!(
        "list_all_malomo_orders",
        json!({"limit": 2, "next_cursor": cursor})
    );
    let items2 = page2["items"].as_array().expect("items");
    assert!(!items2.is_empty());
    assert!(
        items2
            .iter()
            .all(|o| !items1.iter().any(|p| p["id"] == o["id"])),
        "pages overlap"
    );

    let sarah = ok!(
        "list_all_malomo_orders",
        json!({"customer_email": DEMO_EMAIL})
    );
    assert!(
        !sarah["items"].as_array().expect("items").is_empty(),
        "the demo customer has orders"
    );

    // Customers.
    let email = format!("{tag}.customer@example.com");
    let customer = ok!(
        "create_a_malomo_customer",
        json!({"email": email, "first_name": "Ada", "last_name": "Lovelace"})
    );
    let customer_id = str_of(&customer, "id").to_owned();
    let got = ok!(
        "get_single_malomo_customer_by_id",
        json!({"id": customer_id})
    );
    assert_eq!(got["email"], json!(email));
    let updated = ok!(
        "update_a_malomo_customer_by_id",
        json!({"id": customer_id, "first_name": "Augusta"})
    );
    assert_eq!(updated["first_name"], json!("Augusta"));
    assert_eq!(
        updated["last_name"],
        json!("Lovelace"),
        "omitted fields stay"
    );
    ok!("list_all_malomo_customers", json!({"limit": 5}));
    ok!(
        "list_all_malomo_customer_events",
        json!({"customer_id": customer_id})
    );

    // Orders and the lookups.
    let alternate_id = format!("{tag}-alt-1");
    let number = format!("{}", 90000 + tag.len());
    let order = ok!(
        "create_a_malomo_order",
        json!({
            "alternate_id": alternate_id,
            "number": number,
            "email": email,
            "customer": {"email": email, "first_name": "Ada", "last_name": "Lovelace"},
            "shipments": [{"carrier": "usps", "tracking_code": format!("DE{tag}0001")}],
        })
    );
    let order_id = str_of(&order, "id").to_owned();
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(1));
    ok!("get_single_malomo_order_by_id", json!({"id": order_id}));
    let by_alt = ok!(
        "get_single_malomo_orders_by_alternate_id_by_id",
        json!({"alternate_id": alternate_id})
    );
    assert_eq!(by_alt["id"], json!(order_id));
    let by_code = ok!(
        "get_single_malomo_orders_by_tracking_code_by_id",
        json!({"tracking_code": format!("DE{tag}0001")})
    );
    assert_eq!(by_code["id"], json!(order_id));
    let by_number = ok!(
        "get_single_malomo_orders_by_number_by_id",
        json!({"number": number, "customer_email": email})
    );
    assert_eq!(by_number["id"], json!(order_id));

    // Shipment-safe edits.
    let added = ok!(
        "add_a_malomo_order_shipment",
        json!({"id": order_id, "carrier": "ups", "tracking_code": format!("1Z{tag}0002")})
    );
    assert_eq!(added["shipments"].as_array().map(Vec::len), Some(2));
    called.insert("update_a_malomo_order_by_id".to_owned());
    let refused = tool_error(
        client,
        "update_a_malomo_order_by_id",
        json!({"id": order_id, "shipments": [{"carrier": "fedex", "tracking_code": "FX1"}]}),
    )
    .await;
    assert!(
        refused.contains(&format!("DE{tag}0001")),
        "names the shipments at risk: {refused}"
    );
    assert!(
        refused.contains("remove_missing_shipments"),
        "says how to override: {refused}"
    );
    let meta = ok!(
        "update_a_malomo_order_by_id",
        json!({"id": order_id, "meta": {"note": tag}})
    );
    assert_eq!(
        meta["shipments"].as_array().map(Vec::len),
        Some(2),
        "no shipments lost"
    );
    let removed = ok!(
        "remove_a_malomo_order_shipment",
        json!({"id": order_id, "carrier": "ups", "tracking_code": format!("1Z{tag}0002")})
    );
    assert_eq!(removed["shipments"].as_array().map(Vec::len), Some(1));

    // Timeline.
    ok!(
        "create_a_malomo_order_event",
        json!({"order_id": order_id, "type": "SupportNote", "label": "Customer called"})
    );
    let events = ok!(
        "list_all_malomo_order_events",
        json!({"order_id": order_id})
    );
    assert!(
        events["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["type"] == json!("SupportNote")),
        "the new event is on the timeline: {events}"
    );

    // Returns.
    let ret = ok!(
        "create_a_malomo_return",
        json!({"order_id": order_id, "alternate_id": format!("{tag}-ret")})
    );
    let return_id = str_of(&ret, "id").to_owned();
    ok!("get_single_malomo_return_by_id", json!({"id": return_id}));
    ok!(
        "update_a_malomo_return_by_id",
        json!({"id": return_id, "alternate_id": format!("{tag}-ret2")})
    );
    let by_alt = ok!(
        "get_single_malomo_returns_by_alternate_id_by_id",
        json!({"alternate_id": format!("{tag}-ret2")})
    );
    assert_eq!(by_alt["id"], json!(return_id));
    ok!("list_all_malomo_returns", json!({}));

    // Webhooks.
    let hook = ok!(
        "create_a_malomo_webhook",
        json!({"url": format!("http://127.0.0.1:9/{tag}"), "topic": "shipment.exception", "secret": "s3cret", "active": false})
    );
    assert!(hook.get("secret").is_none(), "the secret is write-only");
    let hook_id = str_of(&hook, "id").to_owned();
    ok!("get_single_malomo_webhook_by_id", json!({"id": hook_id}));
    let toggled = ok!(
        "update_a_malomo_webhook_by_id",
        json!({"id": hook_id, "active": false})
    );
    assert_eq!(toggled["active"], json!(false));
    let hooks = ok!("list_all_malomo_webhooks", json!({}));
    assert!(
        hooks["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|h| h["id"] == json!(hook_id))
    );
    ok!("delete_a_malomo_webhook_by_id", json!({"id": hook_id}));

    // Events. This account has no event inbox: subscribing is refused
    // and says how to create one (tests/events.rs covers the rest).
    called.insert("subscribe_to_malomo_events".to_owned());
    let refused = tool_error(
        client,
        "subscribe_to_malomo_events",
        json!({"topic": "shipment.exception"}),
    )
    .await;
    assert!(refused.contains("inbox"), "{refused}");
    called.insert("list_all_malomo_received_events".to_owned());
    let received = call(
        client,
        "list_all_malomo_received_events",
        json!({"topic": "shipment.exception"}),
    )
    .await;
    if received.is_error == Some(true) {
        assert!(text(&received).contains("inbox"), "{}", text(&received));
    } else {
        assert_eq!(
            received.structured_content,
            Some(json!({"items": [], "next_cursor": null}))
        );
    }

    ok!("delete_a_malomo_order_by_id", json!({"id": order_id}));
    ok!("delete_a_malomo_customer_by_id", json!({"id": customer_id}));
    called
}

fn all_tool_names() -> BTreeSet<String> {
    TOOLS.iter().map(|t| t.name.to_owned()).collect()
}

#[tokio::test]
async fn handshake_client_lists_and_calls_every_tool() {
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let listed: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let table: Vec<String> = TOOLS.iter().map(|t| t.name.to_owned()).collect();
    assert_eq!(listed, table, "tools/list is the whole table, in its order");
    assert!(
        tools
            .iter()
            .all(|t| t.output_schema.is_some() && t.annotations.is_some())
    );
    let called = exercise_every_tool(&client, "hs").await;
    assert_eq!(called, all_tool_names());
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn stateless_2026_client_lists_and_calls_every_tool() {
    let server = start_server(quiet_sandbox()).await;
    let client = stateless_client(server.url()).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), TOOLS.len());
    let called = exercise_every_tool(&client, "sl").await;
    assert_eq!(called, all_tool_names());
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let err = client
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await
        .expect_err("unknown tool");
    assert!(err.to_string().contains("no_such_tool"), "{err}");
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_name_the_field_and_reach_no_upstream() {
    // The upstream is a closed port: any upstream call would fail with a
    // connection error instead of the validation error asserted below.
    let server = start_server_with(
        malomo_mcp::serve::Upstream::Remote {
            api_key: "sk_unused".into(),
            base_url: "http://127.0.0.1:9".into(),
        },
        None,
    )
    .await;
    let client = handshake_client(server.url()).await;
    let e = tool_error(&client, "list_all_malomo_orders", json!({"limit": 500})).await;
    assert!(e.contains("`limit`") && e.contains("100"), "{e}");
    let e = tool_error(&client, "get_single_malomo_order_by_id", json!({})).await;
    assert!(e.contains("id"), "{e}");
    let e = tool_error(
        &client,
        "create_a_malomo_webhook",
        json!({"url": "http://x", "topic": "order.shipped"}),
    )
    .await;
    assert!(e.contains("`topic`"), "{e}");
    let e = tool_error(&client, "get_single_malomo_order_by_id", json!({"id": 5})).await;
    assert!(e.contains("`id`") && e.contains("string"), "{e}");
    let e = tool_error(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": "x", "bogus": 1}),
    )
    .await;
    assert!(e.contains("bogus"), "{e}");
    // A forged cursor is refused before any call, too.
    let e = tool_error(
        &client,
        "list_all_malomo_orders",
        json!({"next_cursor": "eyJ0IjoibGlzdCJ9.AAAA"}),
    )
    .await;
    assert!(e.contains("next_cursor"), "{e}");
    // And an unreachable upstream is a tool error, not a crash.
    let e = tool_error(&client, "get_current_malomo_account", json!({})).await;
    assert!(e.contains("could not reach"), "{e}");
    assert!(
        client.list_all_tools().await.is_ok(),
        "the server keeps serving"
    );
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn upstream_429_is_passed_back_with_ratelimit_fields_and_headers() {
    let server = start_server(malomo_mcp::sandbox::SandboxConfig {
        rate_burst: 2,
        rate_per_sec: 0.01,
        tick_interval: None,
        ..Default::default()
    })
    .await;
    let client = handshake_client(server.url()).await;
    let mut limited = None;
    for _ in 0..4 {
        let result = call(&client, "get_current_malomo_account", json!({})).await;
        if result.is_error == Some(true) {
            limited = Some(result);
            break;
        }
    }
    let result = limited.expect("the sandbox rate-limits after its burst");
    assert!(
        result.structured_content.is_none(),
        "an error carries no structuredContent (clients check it against the output schema)"
    );
    let body = result
        .meta
        .as_ref()
        .and_then(|m| m.0.get(malomo_mcp::mcp::handler::ERROR_META_KEY))
        .cloned()
        .expect("the error details in _meta");
    assert_eq!(body["error"]["status"], json!(429));
    for field in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry_after",
    ] {
        assert!(body[field].is_u64(), "{field} in {body}");
    }
    assert_eq!(body["ratelimit-remaining"], json!(0));
    let _ = client.cancel().await;

    // On a stateless JSON answer the same values are response headers.
    let response = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "get_current_malomo_account")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_current_malomo_account", "arguments": {},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {},
                                 "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}
        }))
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ratelimit-reset"), "{text}");
    for name in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    ] {
        assert!(
            headers.contains_key(name),
            "header {name} missing: {headers:?} {text}"
        );
    }
    server.server.shutdown().await;
}

#[tokio::test]
async fn http_guards_unknown_token_origin_host_size_and_version() {
    let server = start_server(quiet_sandbox()).await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |url: String| {
        http.post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
    };
    let health = http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    let unknown = post(format!("{}/mcp/not-a-token", server.base()))
        .json(&init)
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), 404);

    let origin = post(server.url().to_owned())
        .header("origin", "https://evil.example")
        .json(&init)
        .send()
        .await
        .expect("post");
    assert_eq!(origin.status(), 403);

    let host = post(server.url().to_owned())
        .header("host", "evil.example")
        .json(&init)
        .send()
        .await
        .expect("post");
    assert_eq!(host.status(), 403);

    let big = "x".repeat(1024 * 1024 + 10);
    let too_big = post(server.url().to_owned())
        .body(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"pad\":\"{big}\"}}}}"
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(too_big.status(), 413);

    let version = post(server.url().to_owned())
        .header("mcp-protocol-version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .expect("post");
    assert_eq!(version.status(), 400);

    let ok = post(server.url().to_owned())
        .header("origin", "http://localhost:6274")
        .json(&init)
        .send()
        .await
        .expect("post");
    assert_eq!(
        ok.status(),
        200,
        "a local Origin (the MCP Inspector) is allowed"
    );
    server.server.shutdown().await;
}

#[tokio::test]
async fn stdio_client_lists_and_calls_every_tool() {
    use rmcp::transport::TokioChildProcess;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"));
    command.args([
        "stdio",
        "--sandbox",
        "--rate-burst",
        "100000",
        "--rate-per-sec",
        "1000",
    ]);
    command.env_remove("MALOMO_API_KEY");
    let client: Client =
        rmcp::ServiceExt::serve((), TokioChildProcess::new(command).expect("spawn"))
            .await
            .expect("initialize over stdio");
    assert_eq!(
        client.list_all_tools().await.expect("tools/list").len(),
        TOOLS.len()
    );
    let called = exercise_every_tool(&client, "io").await;
    assert_eq!(called, all_tool_names());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn stdio_serves_the_sandbox() {
    use rmcp::transport::TokioChildProcess;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_malomo-mcp"));
    command.args([
        "stdio",
        "--sandbox",
        "--methods",
        "read",
        "--tags",
        "orders",
    ]);
    let client: Client =
        rmcp::ServiceExt::serve((), TokioChildProcess::new(command).expect("spawn"))
            .await
            .expect("initialize over stdio");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)),
        "--methods read leaves only read tools"
    );
    let page = ok(
        &client,
        "list_all_malomo_orders",
        json!({"customer_email": DEMO_EMAIL}),
    )
    .await;
    assert!(!page["items"].as_array().expect("items").is_empty());
    let filtered = client
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "create_a_malomo_order",
        ))
        .await;
    assert!(
        filtered.is_err(),
        "a filtered tool is answered like an unknown one"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn legacy_2024_11_05_clients_get_http_sse() {
    let server = start_server(quiet_sandbox()).await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/sse", server.url()))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let (event, endpoint) = sse.next_event().await;
    assert_eq!(event, "endpoint");
    let post_url = format!("{}{}", server.base(), endpoint);
    let post = |body: serde_json::Value| http.post(&post_url).json(&body).send();

    let accepted = post(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}}))
    .await
    .expect("POST initialize");
    assert_eq!(accepted.status(), 202);
    let (_, init) = sse.next_event().await;
    let init: serde_json::Value = serde_json::from_str(&init).expect("JSON-RPC");
    assert_eq!(init["result"]["protocolVersion"], json!("2024-11-05"));
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .expect("POST initialized");
    post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "list_all_malomo_orders", "arguments": {"customer_email": DEMO_EMAIL}}}),
    )
    .await
    .expect("POST tools/call");
    let (_, answer) = sse.next_event().await;
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON-RPC");
    assert_eq!(answer["id"], json!(2));
    assert!(
        !answer["result"]["structuredContent"]["items"]
            .as_array()
            .expect("items")
            .is_empty()
    );

    // A message for the session through another URL is refused.
    let other = format!(
        "{}/mcp/AAAA/message?{}",
        server.base(),
        endpoint.split('?').nth(1).unwrap_or("")
    );
    let refused = http
        .post(other)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 404);
    server.server.shutdown().await;
}

#[tokio::test]
async fn workflow_prompts_are_listed_and_rendered() {
    use rmcp::model::GetPromptRequestParams;
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ensure_exception_webhook",
            "ensure_exception_webhook_at_url",
            "trace_lost_package",
            "watch_shipment_exceptions"
        ]
    );

    let mut arguments = serde_json::Map::new();
    arguments.insert("customer_email".into(), json!(DEMO_EMAIL));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("trace_lost_package").with_arguments(arguments))
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&prompt.messages).expect("JSON");
    assert!(
        text.contains(DEMO_EMAIL) && text.contains("list_all_malomo_order_events"),
        "{text}"
    );
    assert!(!text.contains("{{"), "every placeholder is filled: {text}");

    let missing = client
        .get_prompt(GetPromptRequestParams::new(
            "ensure_exception_webhook_at_url",
        ))
        .await
        .expect_err("missing argument");
    assert!(missing.to_string().contains("`url`"), "{missing}");

    // The loop of issue 13: subscribe this server's inbox, then read what
    // it received instead of polling.
    let inbox = client
        .get_prompt(GetPromptRequestParams::new("ensure_exception_webhook"))
        .await
        .expect("prompts/get without arguments");
    let text = serde_json::to_string(&inbox.messages).expect("JSON");
    assert!(text.contains("subscribe_to_malomo_events"), "{text}");
    let mut arguments = serde_json::Map::new();
    arguments.insert("since".into(), json!("2026-11-25T00:00:00Z"));
    let watch = client
        .get_prompt(
            GetPromptRequestParams::new("watch_shipment_exceptions").with_arguments(arguments),
        )
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&watch.messages).expect("JSON");
    assert!(
        text.contains("list_all_malomo_received_events")
            && text.contains("malomo://events")
            && text.contains("2026-11-25T00:00:00Z"),
        "{text}"
    );
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

/// One stateless 2026-07-28 `tools/call` POST with every routing header;
/// `origin` (an allowed one) sends it through rmcp's own transport instead
/// of the server's in-line path. Status, content type and body bytes.
async fn raw_stateless_call(
    url: &str,
    tool: &str,
    arguments: Value,
    origin: Option<&str>,
) -> (u16, String, bytes::Bytes) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments,
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {},
                                 "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}
        }));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.bytes().await.expect("body"))
}

/// The answer with the upstream's request id (new on every call) masked.
fn without_request_id(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).into_owned();
    let key = "\"request_id\":\"";
    match text.find(key) {
        Some(at) => {
            let rest = &text[at + key.len()..];
            let id = &rest[..rest.find('"').unwrap_or(0)];
            text.replace(id, "REQUEST-ID")
        }
        None => text,
    }
}

#[tokio::test]
async fn in_line_stateless_calls_answer_what_rmcp_answers() {
    let server = start_server(quiet_sandbox()).await;
    let client = stateless_client(server.url()).await;
    let orders = ok(&client, "list_all_malomo_orders", json!({"limit": 1})).await;
    let id = orders["items"][0]["id"].clone();
    assert!(id.is_string(), "{orders}");
    let _ = client.cancel().await;
    for (tool, arguments) in [
        ("get_single_malomo_order_by_id", json!({ "id": id })),
        (
            "get_single_malomo_order_by_id",
            json!({ "id": id, "fields": ["number", "shipments.status"] }),
        ),
        // Compact default fields, and a page the answer budget splits.
        ("list_all_malomo_orders", json!({"limit": 4})),
        (
            "list_all_malomo_orders",
            json!({"limit": 30, "fields": ["*"]}),
        ),
        ("get_current_malomo_account", json!({})),
        // Refused before any upstream call, naming the field.
        ("get_single_malomo_order_by_id", json!({"id": 42})),
        // The upstream's 404, as a tool error.
        (
            "get_single_malomo_order_by_id",
            json!({"id": "no-such-order"}),
        ),
        // An unknown tool is rmcp's JSON-RPC error on both.
        ("no_such_tool", json!({})),
    ] {
        let in_line = raw_stateless_call(server.url(), tool, arguments.clone(), None).await;
        let by_rmcp = raw_stateless_call(
            server.url(),
            tool,
            arguments.clone(),
            Some("http://localhost:6274"),
        )
        .await;
        assert_eq!(
            (in_line.0, &in_line.1),
            (by_rmcp.0, &by_rmcp.1),
            "{tool} {arguments}: {in_line:?} vs {by_rmcp:?}"
        );
        assert_eq!(
            without_request_id(&in_line.2),
            without_request_id(&by_rmcp.2),
            "{tool} {arguments}"
        );
    }
    let (status, _, body) = raw_stateless_call(
        server.url(),
        "get_single_malomo_order_by_id",
        json!({"id": 42}),
        None,
    )
    .await;
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(status, 200);
    assert_eq!(body["id"], json!(7));
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("`id`")),
        "{body}"
    );
    server.server.shutdown().await;
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Where a redirect would lead: counts every request that reaches it.
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let elsewhere = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("http://{}/account", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, elsewhere).await });
    // The upstream answers every request with a redirect there.
    let upstream = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (axum::http::StatusCode::FOUND, [("location", target)], "") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, upstream).await });

    let server = start_server_with(
        malomo_mcp::serve::Upstream::Remote {
            api_key: "sk_redirect_test".into(),
            base_url,
        },
        None,
    )
    .await;
    let client = stateless_client(server.url()).await;
    let e = tool_error(&client, "get_current_malomo_account", json!({})).await;
    assert!(e.contains("302"), "{e}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the key went on to the redirect target"
    );
    let _ = client.cancel().await;
    server.server.shutdown().await;
}
