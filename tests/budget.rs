//! Issue 15, the context budget: `fields` projection on get and list tools,
//! compact list defaults, and answer budgets that split lists at item
//! boundaries and refuse oversized gets, through a real MCP client.

mod support;

use std::collections::BTreeSet;

use malomo_mcp::catalog::TOOLS;
use serde_json::{Value, json};
use support::*;

/// Every item of a list tool, following `next_cursor`; also the page sizes.
async fn every_page(client: &Client, tool: &str, arguments: Value) -> (Vec<Value>, Vec<usize>) {
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    let mut arguments = arguments;
    for _ in 0..200 {
        let result = call(client, tool, arguments.clone()).await;
        assert_ne!(result.is_error, Some(true), "{tool}: {}", text(&result));
        let page = result.structured_content.clone().expect("structured");
        assert_conforms_to_output_schema(tool, &page);
        let text = text(&result);
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(page.clone()),
            "the text block is the structured content"
        );
        sizes.push(text.len());
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => arguments["next_cursor"] = json!(cursor),
            None => return (items, sizes),
        }
    }
    panic!("{tool}: more than 200 pages");
}

/// The member names of an object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| str_of(i, "id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_get_and_list_tool_offers_fields_from_its_output_schema() {
    let projected: Vec<_> = TOOLS.iter().filter(|t| t.projection.is_some()).collect();
    for tool in TOOLS {
        let reads = tool.name.starts_with("list_all_") || tool.name.starts_with("get_");
        assert_eq!(tool.projection.is_some(), reads, "{}", tool.name);
    }
    assert!(projected.len() >= 10, "{}", projected.len());
    for tool in projected {
        let input: Value = serde_json::from_str(tool.input_schema).expect("JSON");
        let choices = &input["properties"]["fields"]["items"]["enum"];
        let choices: Vec<&str> = choices
            .as_array()
            .unwrap_or_else(|| panic!("{}: no enum of fields", tool.name))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(choices[0], "*", "{}", tool.name);
        let output: Value = serde_json::from_str(tool.output_schema).expect("JSON");
        let object = if tool.pagination.is_some() {
            &output["properties"]["items"]["items"]
        } else {
            &output
        };
        for member in object["properties"].as_object().expect("members").keys() {
            assert!(
                choices.contains(&member.as_str()),
                "{}: {member}",
                tool.name
            );
        }
        for path in &choices[1..] {
            assert!(path.split('.').count() <= 2, "{}: {path}", tool.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_return_exactly_those_fields_plus_id_and_stay_schema_valid() {
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let page = ok(
        &client,
        "list_all_malomo_orders",
        json!({"limit": 5, "fields": ["number", "customer.first_name", "shipments.tracking_code"]}),
    )
    .await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    for order in items {
        let members = keys(order);
        let expected: BTreeSet<&str> = ["id", "number", "shipments"]
            .into_iter()
            .chain(order.get("customer").map(|_| "customer"))
            .collect();
        assert_eq!(members, expected, "{order}");
        if let Some(customer) = order["customer"].as_object() {
            assert!(customer.keys().all(|k| k == "first_name"), "{order}");
        }
        for shipment in order["shipments"].as_array().expect("shipments") {
            let members = keys(shipment);
            assert_eq!(members, BTreeSet::from(["tracking_code"]), "{shipment}");
        }
    }

    let id = str_of(&items[0], "id").to_owned();
    let full = ok(&client, "get_single_malomo_order_by_id", json!({"id": id})).await;
    assert!(
        full["shipments"][0]["scan_events"].is_array(),
        "a get answers every field by default"
    );
    let some = ok(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": id, "fields": ["email", "shipments.status"]}),
    )
    .await;
    assert_eq!(
        some,
        json!({
            "id": full["id"], "email": full["email"],
            "shipments": full["shipments"].as_array().expect("shipments").iter()
                .map(|s| json!({"status": s["status"]})).collect::<Vec<_>>()
        })
    );
    let all = ok(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": id, "fields": ["*"]}),
    )
    .await;
    assert_eq!(all, full);
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_path_is_refused_by_name_before_any_upstream_call() {
    let server = start_server(quiet_sandbox()).await;
    let client = stateless_client(server.url()).await;
    for (tool, arguments) in [
        ("list_all_malomo_orders", json!({"fields": ["id", "nmber"]})),
        (
            "get_single_malomo_order_by_id",
            json!({"id": "no-such-order", "fields": ["shipments.scan_events.city"]}),
        ),
        ("list_all_malomo_webhooks", json!({"fields": "url"})),
    ] {
        let message = tool_error(&client, tool, arguments.clone()).await;
        assert!(message.contains("`fields"), "{tool} {arguments}: {message}");
        assert!(
            message.contains("nothing was sent"),
            "{tool} {arguments}: {message}"
        );
    }
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_compact_by_default_and_star_returns_everything() {
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let compact = ok(&client, "list_all_malomo_orders", json!({"limit": 3})).await;
    let full = ok(
        &client,
        "list_all_malomo_orders",
        json!({"limit": 3, "fields": ["*"]}),
    )
    .await;
    assert_eq!(
        ids(compact["items"].as_array().expect("items")),
        ids(full["items"].as_array().expect("items"))
    );
    let order = &compact["items"][0];
    let members = keys(order);
    assert_eq!(
        members,
        BTreeSet::from(["id", "number", "email", "created_at", "shipments"]),
        "{order}"
    );
    let shipment_keys = keys(&order["shipments"][0]);
    assert_eq!(
        shipment_keys,
        BTreeSet::from(["carrier", "tracking_code", "status"])
    );
    assert!(full["items"][0]["shipments"][0]["scan_events"].is_array());
    let (small, large) = (compact.to_string().len(), full.to_string().len());
    assert!(small * 3 < large, "compact {small} bytes vs full {large}");
    server.server.shutdown().await;
}

/// Pages split by the budget cover the list exactly: every order once, in
/// order, none skipped, none twice; and every page fits the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_split_pages_cover_the_full_list_exactly() {
    let server = start_server(quiet_sandbox()).await;
    let client = stateless_client(server.url()).await;
    let budget = TOOLS
        .iter()
        .find(|t| t.name == "list_all_malomo_orders")
        .and_then(|t| t.projection)
        .expect("orders list projects")
        .budget as usize;
    // Small pages that fit: the reference order of the whole list.
    let (reference, _) = every_page(&client, "list_all_malomo_orders", json!({"limit": 3})).await;
    assert!(reference.len() > 25, "{}", reference.len());
    // Whole orders, 25 and 100 to an upstream page: far over the budget.
    for limit in [25, 100] {
        let (split, sizes) = every_page(
            &client,
            "list_all_malomo_orders",
            json!({"limit": limit, "fields": ["*"]}),
        )
        .await;
        assert!(
            sizes.iter().all(|s| *s <= budget),
            "{sizes:?} over {budget}"
        );
        assert!(
            sizes.len() > reference.len().div_ceil(limit),
            "the budget split pages: {sizes:?}"
        );
        assert_eq!(ids(&split), ids(&reference), "limit {limit}");
        assert!(
            split
                .iter()
                .all(|o| o["shipments"][0]["scan_events"].is_array())
        );
    }
    server.server.shutdown().await;
}

/// A get over budget is refused, naming `fields`; asking for fewer fields
/// gets the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_over_budget_is_refused_and_names_fields() {
    let server = start_server(quiet_sandbox()).await;
    let client = handshake_client(server.url()).await;
    let shipments: Vec<Value> = (0..100)
        .map(|i| json!({"carrier": "usps", "tracking_code": format!("DE{i:020}")}))
        .collect();
    let created = ok(
        &client,
        "create_a_malomo_order",
        json!({"number": "88001", "email": "big@example.com", "shipments": shipments}),
    )
    .await;
    let id = str_of(&created, "id").to_owned();
    let message = tool_error(&client, "get_single_malomo_order_by_id", json!({"id": id})).await;
    assert!(
        message.contains("`fields`") && message.contains("budget"),
        "{message}"
    );
    let small = ok(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": id, "fields": ["number", "shipments.tracking_code"]}),
    )
    .await;
    assert_eq!(small["shipments"].as_array().map(Vec::len), Some(100));
    assert_eq!(small["number"], json!("88001"));
    server.server.shutdown().await;
}

/// A `limit` passed with a cursor that resumes inside an upstream page
/// caps that page too, and the pages still cover the list exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_cursor_honours_a_passed_limit() {
    let server = start_server(quiet_sandbox()).await;
    let client = stateless_client(server.url()).await;
    let (reference, _) = every_page(&client, "list_all_malomo_orders", json!({"limit": 3})).await;
    // Whole orders, 100 to an upstream page: the budget cuts the first page
    // inside the upstream page, so its cursor resumes there.
    let first = ok(
        &client,
        "list_all_malomo_orders",
        json!({"limit": 100, "fields": ["*"]}),
    )
    .await;
    let mut items = first["items"].as_array().expect("items").clone();
    assert!(
        items.len() > 2 && items.len() < reference.len().min(100),
        "the budget cut the first page: {} items",
        items.len()
    );
    let mut cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    for _ in 0..200 {
        let page = ok(
            &client,
            "list_all_malomo_orders",
            json!({"limit": 2, "fields": ["*"], "next_cursor": cursor}),
        )
        .await;
        let got = page["items"].as_array().expect("items");
        assert!(got.len() <= 2, "limit 2 gave {} items", got.len());
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(!got.is_empty(), "an empty page with a cursor");
                cursor = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(ids(&items), ids(&reference), "no order skipped or repeated");
    server.server.shutdown().await;
}

/// A provisioned server's `answer_budget` replaces the tools' own: its
/// list pages are split to fit it and still cover the list exactly, and a
/// get over it names `fields`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_answer_budget_splits_its_pages_and_refuses_large_gets() {
    const ADMIN: &str = "budget-admin-token";
    const BUDGET: usize = 2048;
    let server = start_server_with(
        malomo_mcp::serve::Upstream::Sandbox(quiet_sandbox()),
        Some(ADMIN),
    )
    .await;
    let (status, created) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "small answers", "answer_budget": BUDGET}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["answer_budget"], json!(BUDGET));
    let small = stateless_client(created["url"].as_str().expect("url")).await;
    let default = stateless_client(server.url()).await;

    let (reference, sizes) = every_page(&default, "list_all_malomo_orders", json!({})).await;
    assert!(
        sizes.iter().any(|s| *s > BUDGET),
        "the tools' own budget allows bigger pages: {sizes:?}"
    );
    let (split, sizes) = every_page(&small, "list_all_malomo_orders", json!({})).await;
    assert!(
        sizes.iter().all(|s| *s <= BUDGET),
        "{sizes:?} over {BUDGET}"
    );
    assert!(
        sizes.len() > reference.len().div_ceil(25),
        "the budget split pages: {sizes:?}"
    );
    assert_eq!(ids(&split), ids(&reference), "no order skipped or repeated");
    assert_eq!(split, reference, "the same default fields");

    // An order whose whole record is over the server's budget.
    let mut large = None;
    for order in reference.iter().take(30) {
        let id = str_of(order, "id").to_owned();
        let full = ok(&default, "get_single_malomo_order_by_id", json!({"id": id})).await;
        if full.to_string().len() > BUDGET {
            large = Some((id, full));
            break;
        }
    }
    let (id, full) = large.expect("an order over 2048 bytes in the seed");
    let message = tool_error(&small, "get_single_malomo_order_by_id", json!({"id": id})).await;
    assert!(
        message.contains("`fields`") && message.contains(&BUDGET.to_string()),
        "{message}"
    );
    let some = ok(
        &small,
        "get_single_malomo_order_by_id",
        json!({"id": id, "fields": ["number", "shipments.status"]}),
    )
    .await;
    assert_eq!(some["number"], full["number"]);
    server.server.shutdown().await;
}

/// A list's `match` inputs (webhooks: topic, url, active) keep only the
/// items equal to them, page by page; following the cursors gives every
/// match exactly once, in the list's order, also when the pages are small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_inputs_keep_exactly_the_matching_items_across_pages() {
    const ADMIN: &str = "match-admin-token";
    let server = start_server_with(
        malomo_mcp::serve::Upstream::Sandbox(quiet_sandbox()),
        Some(ADMIN),
    )
    .await;
    let client = stateless_client(server.url()).await;
    // A server whose budget cuts pages of whole webhooks inside the upstream
    // page: the cursors then resume after filtered-out items too.
    let (_, created) = provision_with(
        &server,
        ADMIN,
        &json!({"name": "tiny", "answer_budget": 1024}),
    )
    .await;
    let tiny = stateless_client(created["url"].as_str().expect("url")).await;
    let topics = ["shipment.exception", "shipment.delivered", "order.created"];
    let urls = [
        "https://erp.example.com/malomo",
        "https://support.example.com/hooks/malomo",
    ];
    for i in 0..14 {
        ok(
            &client,
            "create_a_malomo_webhook",
            json!({"url": urls[i % 2], "topic": topics[i % 3], "active": i % 4 != 0}),
        )
        .await;
    }
    let (all, _) = every_page(&client, "list_all_malomo_webhooks", json!({"limit": 100})).await;
    assert_eq!(all.len(), 14);
    let mut split = false;
    for (filter, limit) in [
        (json!({"topic": "shipment.exception"}), 4),
        (json!({"topic": "shipment.exception", "url": urls[1]}), 3),
        (json!({"active": false}), 2),
        (json!({"url": urls[0], "active": true}), 100),
    ] {
        let wanted: Vec<Value> = all
            .iter()
            .filter(|h| {
                filter
                    .as_object()
                    .expect("object")
                    .iter()
                    .all(|(k, v)| &h[k] == v)
            })
            .cloned()
            .collect();
        assert!(!wanted.is_empty(), "{filter}");
        let mut arguments = filter.clone();
        arguments["limit"] = json!(limit);
        let (got, _) = every_page(&client, "list_all_malomo_webhooks", arguments).await;
        assert_eq!(ids(&got), ids(&wanted), "{filter} limit {limit}");
        let mut arguments = filter.clone();
        arguments["fields"] = json!(["*"]);
        arguments["limit"] = json!(100);
        let (got, sizes) = every_page(&tiny, "list_all_malomo_webhooks", arguments).await;
        assert_eq!(ids(&got), ids(&wanted), "{filter} within 1024 bytes");
        assert!(sizes.iter().all(|s| *s <= 1024), "{sizes:?}");
        split |= sizes.len() > 1;
    }
    assert!(split, "the 1024-byte budget split some matching page");
    let message = tool_error(
        &client,
        "list_all_malomo_webhooks",
        json!({"topic": "shipment.lost"}),
    )
    .await;
    assert!(message.contains("topic"), "{message}");
    server.server.shutdown().await;
}
