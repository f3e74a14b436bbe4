//! Server filters mean what users think: the method classes follow what a
//! tool does upstream, over every combination a server can be given.

mod support;

use std::collections::BTreeSet;

use malomo_mcp::catalog::{Behavior, HttpMethod, TOOLS, ToolDef, tool};
use malomo_mcp::serve::Upstream;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::*;

const ADMIN: &str = "adm_test_token_0123456789abcdef";

/// Whether a call of `def` can send anything but a GET upstream, worked out
/// from the table's verbs and strategies (not from its class).
fn can_send_non_get(def: &ToolDef) -> bool {
    let verb = |name: &str| tool(name).expect("strategy tool in the table").http_method;
    let mut sent = vec![def.http_method];
    match def.behavior {
        Behavior::Direct => {}
        Behavior::GuardedReplace { read_tool, .. } => sent.push(verb(read_tool)),
        Behavior::KeyedArrayMerge {
            read_tool,
            write_tool,
            ..
        } => sent.extend([verb(read_tool), verb(write_tool)]),
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
            "remove_a_malomo_order_shipment"
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
