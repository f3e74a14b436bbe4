//! Server filters mean what users think: the method classes follow what a
//! tool does upstream, and nothing a server sends a model names a tool it
//! hides, over every combination a server can be given.

mod support;

use std::collections::BTreeSet;

use malomo_mcp::access::ToolFilter;
use malomo_mcp::catalog::{Behavior, HttpMethod, TOOLS, ToolDef, tool};
use malomo_mcp::mcp::Shared;
use malomo_mcp::mcp::handler::{description, instructions};
use malomo_mcp::runtime::Runtime;
use malomo_mcp::runtime::cursor::CursorCodec;
use malomo_mcp::serve::Upstream;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::*;

const ADMIN: &str = "adm_test_token_0123456789abcdef";

/// Whether a call of `def` can send anything but a GET upstream, worked out
/// from the table's verbs and strategies (not from its class).
fn can_send_non_get(def: &ToolDef) -> bool {
    let mut sent = vec![def.http_method];
    match def.behavior {
        Behavior::Direct => {}
        Behavior::GuardedReplace { read_tool, .. } => sent.push(read_tool.http_method),
        Behavior::KeyedArrayMerge {
            read_tool,
            write_tool,
            ..
        } => sent.extend([read_tool.http_method, write_tool.http_method]),
        Behavior::InboxSubscription {
            list_tool,
            create_tool,
            ..
        } => sent.extend([list_tool.http_method, create_tool.http_method]),
        // Served from the store: it sends nothing at all.
        Behavior::StoredEvents { .. } => sent.clear(),
    }
    sent.iter().any(|v| *v != HttpMethod::Get)
}

fn writing_tools() -> Vec<&'static str> {
    TOOLS
        .iter()
        .filter(|t| can_send_non_get(t))
        .map(|t| t.name)
        .collect()
}

fn all_tags() -> Vec<&'static str> {
    TOOLS
        .iter()
        .flat_map(|t| t.tags.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every subset of `items`, the empty one first.
fn subsets<'a>(items: &[&'a str]) -> Vec<Vec<&'a str>> {
    (0u32..1 << items.len())
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, t)| *t)
                .collect()
        })
        .collect()
}

async fn admin_server() -> TestServer {
    start_server_with(Upstream::Sandbox(quiet_sandbox()), Some(ADMIN)).await
}

/// Creates an MCP server with `config`; the answer's status and body.
async fn provision(server: &TestServer, config: Value) -> (u16, Value) {
    provision_with(
        server,
        ADMIN,
        &json!({"name": "filtered", "config": config}),
    )
    .await
}

async fn listed(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[test]
fn the_table_has_writing_tools_of_every_kind() {
    // Guards the exhaustive test below against passing on an empty set.
    let writers = writing_tools();
    for name in [
        "create_a_malomo_order",
        "update_a_malomo_order_by_id",
        "delete_a_malomo_order_by_id",
        "add_a_malomo_order_shipment",
        "remove_a_malomo_order_shipment",
    ] {
        assert!(writers.contains(&name), "{name} can write upstream");
    }
}

/// Lists the tools of a `read` server with `tags` and tries to call every
/// writing tool on it; panics on any writing tool listed or run.
async fn check_read_server(server: &TestServer, tags: Vec<&'static str>) {
    let writers = writing_tools();
    let (status, created) = provision(server, json!({"methods": ["read"], "tags": tags})).await;
    if status == 422 {
        return; // no tool at all: nothing can be exposed
    }
    assert_eq!(status, 201, "{tags:?}: {created}");
    let client = handshake_client(str_of(&created, "url")).await;
    let names = listed(&client).await;
    assert!(!names.is_empty(), "{tags:?}");
    for name in &names {
        assert!(
            !writers.contains(&name.as_str()),
            "read + tags {tags:?} lists the writing tool {name}"
        );
    }
    for name in &writers {
        let refused = client
            .call_tool(CallToolRequestParams::new(*name).with_arguments(args(json!({"id": "x"}))))
            .await
            .expect_err("a writing tool is unknown to a read server");
        assert!(
            refused.to_string().contains("Unknown tool"),
            "read + tags {tags:?} ran {name}: {refused}"
        );
    }
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_filter_with_any_tags_lists_or_calls_a_writing_tool() {
    let server = std::sync::Arc::new(admin_server().await);
    let tags = all_tags();
    let combinations = subsets(&tags);
    assert_eq!(combinations.len(), 1 << tags.len());
    // A few servers at a time: the checks are independent.
    for chunk in combinations.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for tags in chunk.iter().cloned() {
            let server = server.clone();
            set.spawn(async move { check_read_server(&server, tags).await });
        }
        while let Some(done) = set.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

#[tokio::test]
async fn read_and_write_is_every_tool_and_custom_only_the_custom_ones() {
    let server = admin_server().await;
    let every: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();

    let (_, created) = provision(&server, json!({"methods": ["read", "write"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    assert_eq!(listed(&client).await, every);
    let _ = client.cancel().await;

    let (_, created) = provision(&server, json!({"methods": ["custom"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    let custom = listed(&client).await;
    assert_eq!(
        custom,
        [
            "add_a_malomo_order_shipment",
            "remove_a_malomo_order_shipment",
            "subscribe_to_malomo_events"
        ]
    );
    let _ = client.cancel().await;

    let (_, created) = provision(&server, json!({"methods": ["write"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    assert_eq!(listed(&client).await, writing_tools());
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_read_write_server_adds_a_shipment_and_keeps_the_others() {
    let server = admin_server().await;
    let (_, created) = provision(&server, json!({"methods": ["read", "write"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    let orders = ok(
        &client,
        "list_all_malomo_orders",
        json!({"customer_email": "sarah.smith@example.com"}),
    )
    .await;
    let order = &orders["items"][0];
    let id = str_of(order, "id").to_owned();
    let pairs = |order: &Value| -> BTreeSet<(String, String)> {
        order["shipments"]
            .as_array()
            .expect("shipments")
            .iter()
            .map(|s| {
                (
                    str_of(s, "carrier").to_owned(),
                    str_of(s, "tracking_code").to_owned(),
                )
            })
            .collect()
    };
    let before = pairs(order);
    assert!(!before.is_empty());
    let added = ok(
        &client,
        "add_a_malomo_order_shipment",
        json!({"id": id, "carrier": "fedex", "tracking_code": "FX4471"}),
    )
    .await;
    let mut expected = before.clone();
    expected.insert(("fedex".into(), "FX4471".into()));
    assert_eq!(pairs(&added), expected);
    let now = ok(&client, "get_single_malomo_order_by_id", json!({"id": id})).await;
    assert_eq!(pairs(&now), expected, "the earlier shipments are kept");
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

/// Whether `text` names `tool` as a whole word.
fn names(text: &str, tool: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(tool)
        .any(|(at, _)| !text[..at].ends_with(word) && !text[at + tool.len()..].starts_with(word))
}

/// The tool names among `hidden` that `text` names.
fn hidden_names_in(text: &str, hidden: &[&'static str]) -> Vec<&'static str> {
    hidden.iter().copied().filter(|t| names(text, t)).collect()
}

/// Everything a server with `filter` sends a model, as (where, text).
fn texts_sent(shared: &Shared, filter: &ToolFilter) -> Vec<(String, String)> {
    let mut out = vec![("instructions".to_owned(), instructions(filter))];
    for tool in shared.visible_tools(filter) {
        out.push((
            format!("tool {}", tool.name),
            serde_json::to_string(&tool).expect("tool JSON"),
        ));
    }
    for prompt in malomo_mcp::mcp::prompts::list(filter) {
        out.push((
            format!("prompt {}", prompt.name),
            serde_json::to_string(&prompt).expect("prompt JSON"),
        ));
        let arguments: serde_json::Map<String, Value> = prompt
            .arguments
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), json!("someone@example.com")))
            .collect();
        let rendered = malomo_mcp::mcp::prompts::get(filter, &prompt.name, Some(&arguments))
            .expect("an offered prompt renders");
        out.push((
            format!("prompt {} text", prompt.name),
            serde_json::to_string(&rendered).expect("prompt JSON"),
        ));
    }
    out
}

fn shared() -> Shared {
    let runtime = Runtime::new(
        std::time::Duration::from_secs(1),
        CursorCodec::new([7u8; 32]),
    )
    .expect("runtime");
    Shared::new(runtime).expect("shared")
}

#[test]
fn no_filter_combination_sends_a_text_naming_a_hidden_tool() {
    let shared = shared();
    let classes = subsets(&["read", "write", "custom"]);
    let tags = subsets(&all_tags());
    let mut servers = 0;
    let mut trimmed = 0;
    for methods in &classes {
        for tags in &tags {
            let filter = ToolFilter {
                methods: methods.iter().map(|s| s.to_string()).collect(),
                tags: tags.iter().map(|s| s.to_string()).collect(),
            };
            if filter.validate().is_err() {
                continue; // refused at creation: no such server exists
            }
            servers += 1;
            let hidden: Vec<&'static str> = TOOLS
                .iter()
                .filter(|t| !filter.allows(t))
                .map(|t| t.name)
                .collect();
            for (place, text) in texts_sent(&shared, &filter) {
                let named = hidden_names_in(&text, &hidden);
                assert!(
                    named.is_empty(),
                    "methods {methods:?} tags {tags:?}: {place} names hidden {named:?}"
                );
            }
            if instructions(&filter) != instructions(&ToolFilter::all()) {
                trimmed += 1;
            }
        }
    }
    // Guards against a vacuous pass: most combinations make real servers,
    // and many of them need text left out.
    assert!(servers > 500, "{servers} servers checked");
    assert!(trimmed > 100, "{trimmed} servers with trimmed instructions");
}

#[test]
fn an_unfiltered_server_sends_every_paragraph() {
    let all = ToolFilter::all();
    let text = instructions(&all);
    for name in [
        "add_a_malomo_order_shipment",
        "remove_a_malomo_order_shipment",
        "update_a_malomo_order_by_id",
        "list_all_malomo_orders",
    ] {
        assert!(names(&text, name), "instructions name {name}: {text}");
    }
    let update = tool("update_a_malomo_order_by_id").expect("tool");
    let described = description(update, &all);
    assert!(
        names(&described, "add_a_malomo_order_shipment"),
        "{described}"
    );
    assert!(described.contains("WARNING"), "{described}");
    // Hiding the safe tools drops their paragraphs, never the warning.
    let update_only = ToolFilter {
        methods: vec!["update".into()],
        tags: vec!["orders".into()],
    };
    let described = description(update, &update_only);
    assert!(
        !names(&described, "add_a_malomo_order_shipment"),
        "{described}"
    );
    assert!(described.contains("WARNING"), "{described}");
    assert!(
        described.contains("remove_missing_shipments"),
        "{described}"
    );
}

#[test]
fn the_shipment_tools_say_what_the_concurrency_check_does_not_cover() {
    for name in [
        "add_a_malomo_order_shipment",
        "remove_a_malomo_order_shipment",
    ] {
        let text = description(tool(name).expect("tool"), &ToolFilter::all());
        assert!(!text.contains("never overwritten"), "{name}: {text}");
        assert!(text.contains("can be overwritten"), "{name}: {text}");
        assert!(text.contains("no conditional write"), "{name}: {text}");
    }
}

/// The handshake of a provisioned server carries its own instructions, and
/// its tools/list its own descriptions.
#[tokio::test]
async fn a_server_sends_the_texts_of_its_own_scope() {
    let server = admin_server().await;
    let (_, created) = provision(&server, json!({"methods": ["read", "update"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    let info = client.peer_info().expect("initialize answer");
    let sent = info.instructions.clone().expect("instructions");
    let filter = ToolFilter {
        methods: vec!["read".into(), "update".into()],
        tags: vec![],
    };
    assert_eq!(sent, instructions(&filter));
    assert!(names(&sent, "update_a_malomo_order_by_id"), "{sent}");
    assert!(!names(&sent, "add_a_malomo_order_shipment"), "{sent}");
    let tools = client.list_all_tools().await.expect("tools/list");
    let update = tools
        .iter()
        .find(|t| t.name == "update_a_malomo_order_by_id")
        .expect("update listed");
    let text = update.description.as_deref().unwrap_or_default();
    assert!(!names(text, "add_a_malomo_order_shipment"), "{text}");
    assert!(names(text, "get_single_malomo_order_by_id"), "{text}");

    // The refusal of a shipment-dropping update names no hidden tool either.
    let orders = ok(
        &client,
        "list_all_malomo_orders",
        json!({"customer_email": "sarah.smith@example.com"}),
    )
    .await;
    let id = str_of(&orders["items"][0], "id").to_owned();
    let refused = tool_error(
        &client,
        "update_a_malomo_order_by_id",
        json!({"id": id, "shipments": [{"carrier": "fedex", "tracking_code": "FX1"}]}),
    )
    .await;
    assert!(refused.contains("Refused"), "{refused}");
    assert!(!names(&refused, "add_a_malomo_order_shipment"), "{refused}");
    let _ = client.cancel().await;

    let (_, created) = provision(&server, json!({"methods": ["read", "write"]})).await;
    let client = handshake_client(str_of(&created, "url")).await;
    let refused = tool_error(
        &client,
        "update_a_malomo_order_by_id",
        json!({"id": id, "shipments": [{"carrier": "fedex", "tracking_code": "FX1"}]}),
    )
    .await;
    assert!(names(&refused, "add_a_malomo_order_shipment"), "{refused}");
    let _ = client.cancel().await;
    server.server.shutdown().await;
}
