//! Issue 6, the seed workflows end to end: a support agent's steps through a
//! real MCP client (rmcp, streamable HTTP) against the server on the
//! sandbox. Expectations come from the sandbox itself, read over its own
//! HTTP API past the runtime, plus the few facts the seed fixes (Sarah's
//! latest package failed a delivery attempt and went back to a
//! distribution center in her city).

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use malomo_mcp::sandbox::{self, DEMO_EMAIL, SandboxHandle};
use malomo_mcp::serve::Upstream;
use serde_json::{Value, json};
use support::*;

/// The server on a sandbox this test can also reach directly.
struct Desk {
    sandbox: SandboxHandle,
    server: TestServer,
    http: reqwest::Client,
}

impl Desk {
    async fn open() -> Desk {
        malomo_mcp::install_crypto_provider();
        let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), quiet_sandbox())
            .await
            .expect("sandbox starts");
        let server = start_server_with(
            Upstream::Remote {
                api_key: sandbox.secret_key().to_owned(),
                base_url: sandbox.base_url(),
            },
            None,
        )
        .await;
        Desk {
            sandbox,
            server,
            http: reqwest::Client::new(),
        }
    }

    /// One request straight to the sandbox; returns the JSON body and the
    /// `rel="next"` URL of the `Link` header, if any.
    async fn direct(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> (Value, Option<String>) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.sandbox.base_url())
        };
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.sandbox.secret_key());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer = req.send().await.expect("sandbox answers");
        assert_eq!(answer.status(), StatusCode::OK, "{method} {url}");
        let next = answer
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|link| {
                link.split(',').find_map(|part| {
                    let (target, params) = part.split_once(';')?;
                    params.contains("rel=\"next\"").then(|| {
                        target
                            .trim()
                            .trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_owned()
                    })
                })
            });
        (answer.json().await.expect("JSON body"), next)
    }

    /// Every item of a sandbox list, following `Link: rel="next"`.
    async fn direct_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut url = Some(format!("{path}?limit=100"));
        while let Some(u) = url {
            let (page, next) = self.direct(Method::GET, &u, None).await;
            items.extend(
                page.as_array()
                    .expect("a list answers an array")
                    .iter()
                    .cloned(),
            );
            url = next;
        }
        items
    }
}

/// Every item of an MCP list tool, following `next_cursor`.
async fn list_all(client: &Client, tool: &str, arguments: Value) -> Vec<Value> {
    let mut items = Vec::new();
    let mut arguments = arguments;
    for _ in 0..100 {
        let page = ok(client, tool, arguments.clone()).await;
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) if !cursor.is_empty() => arguments["next_cursor"] = json!(cursor),
            _ => return items,
        }
    }
    panic!("{tool}: still more pages after 100");
}

fn newest<'a>(items: impl IntoIterator<Item = &'a Value>, field: &str) -> Option<&'a Value> {
    items
        .into_iter()
        .max_by(|a, b| a[field].as_str().cmp(&b[field].as_str()))
}

const EXCEPTIONS: &[&str] = &["failure", "error", "return_to_sender", "cancelled"];

/// What the agent tells the customer.
#[derive(Debug, PartialEq)]
struct Answer {
    order_id: String,
    order_number: String,
    carrier: String,
    tracking_code: String,
    status: String,
    status_detail: String,
    message: String,
    city: String,
    state: String,
}

impl Answer {
    /// From an order, a shipment (carrier, tracking code, status) and a
    /// scan (status detail, message, location). A timeline event's
    /// properties carry both.
    fn new(order: &Value, shipment: &Value, scan: &Value) -> Answer {
        Answer {
            order_id: str_of(order, "id").to_owned(),
            order_number: str_of(order, "number").to_owned(),
            carrier: str_of(shipment, "carrier").to_owned(),
            tracking_code: str_of(shipment, "tracking_code").to_owned(),
            status: str_of(shipment, "status").to_owned(),
            status_detail: str_of(scan, "status_detail").to_owned(),
            message: str_of(scan, "message").to_owned(),
            city: str_of(&scan["location"], "city").to_owned(),
            state: str_of(&scan["location"], "state").to_owned(),
        }
    }
}

/// The answer from one order object (its shipments and scan events).
fn answer_from_order(order: &Value) -> Answer {
    let shipments = order["shipments"].as_array().expect("shipments");
    let troubled = shipments
        .iter()
        .find(|s| EXCEPTIONS.contains(&s["status"].as_str().unwrap_or("")))
        .unwrap_or_else(|| panic!("no shipment in an exception status: {order}"));
    let scan = newest(
        troubled["scan_events"].as_array().expect("scan_events"),
        "scanned_at",
    )
    .unwrap_or_else(|| panic!("the shipment has no scan: {troubled}"));
    Answer::new(order, troubled, scan)
}

/// Workflow 1: a customer writes from `email`. Latest order by email, its
/// timeline, and where and how its package got stuck, read from both the
/// order's scan events and the timeline (they must agree).
async fn where_is_my_package(client: &Client, email: &str) -> Answer {
    let orders = list_all(
        client,
        "list_all_malomo_orders",
        json!({"customer_email": email}),
    )
    .await;
    assert!(!orders.is_empty(), "{email} has orders");
    let latest = newest(&orders, "created_at").expect("an order");
    assert_eq!(
        orders[0]["id"], latest["id"],
        "the list is newest first, so the first item is the latest order"
    );
    // The list is compact (carrier, tracking code and status per shipment);
    // the scan history is one `fields` call away.
    let detailed = ok(
        client,
        "get_single_malomo_order_by_id",
        json!({"id": latest["id"], "fields": ["number", "shipments"]}),
    )
    .await;
    let from_order = answer_from_order(&detailed);
    let listed = latest["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .find(|s| s["tracking_code"].as_str() == Some(from_order.tracking_code.as_str()))
        .expect("the troubled shipment is in the compact list");
    assert_eq!(
        (str_of(listed, "carrier"), str_of(listed, "status")),
        (from_order.carrier.as_str(), from_order.status.as_str()),
        "the compact list says which shipment is in trouble"
    );

    let events = list_all(
        client,
        "list_all_malomo_order_events",
        json!({"order_id": from_order.order_id}),
    )
    .await;
    let update = newest(
        events.iter().filter(|e| {
            e["properties"]["tracking_code"].as_str() == Some(from_order.tracking_code.as_str())
        }),
        "created_at",
    )
    .unwrap_or_else(|| panic!("no timeline event for the shipment: {events:?}"));
    let p = &update["properties"];
    let from_events = Answer::new(latest, p, p);
    assert_eq!(
        from_events, from_order,
        "the timeline and the order's scan events tell the same story"
    );
    from_order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_writes_in_where_is_my_package() {
    let desk = Desk::open().await;
    let client = handshake_client(desk.server.url()).await;
    let answer = where_is_my_package(&client, DEMO_EMAIL).await;
    eprintln!("{answer:?}");

    // The truth, straight from the sandbox: all orders, filtered here.
    let all = desk.direct_all("/orders").await;
    let hers: Vec<&Value> = all
        .iter()
        .filter(|o| {
            o["email"].as_str() == Some(DEMO_EMAIL)
                || o["customer"]["email"].as_str() == Some(DEMO_EMAIL)
        })
        .collect();
    assert!(hers.len() > 1, "the seed gives Sarah several orders");
    let latest = newest(hers.iter().copied(), "created_at").expect("her latest order");
    let (fresh, _) = desk
        .direct(
            Method::GET,
            &format!("/orders/{}", str_of(latest, "id")),
            None,
        )
        .await;
    let ship = &fresh["shipments"][0];
    let last_scan = newest(
        ship["scan_events"].as_array().expect("scan_events"),
        "scanned_at",
    )
    .expect("a scan");
    let truth = Answer::new(&fresh, ship, last_scan);
    assert_eq!(answer, truth, "the agent's answer is the sandbox's data");

    // What the seed fixes: her earlier orders arrived, the latest one
    // failed a delivery attempt at her door (Columbus, OH) and went back to
    // the distribution center there.
    for older in hers.iter().filter(|o| o["id"] != latest["id"]) {
        assert_eq!(
            older["shipments"][0]["status"],
            json!("delivered"),
            "earlier order {} arrived",
            older["number"]
        );
    }
    assert_eq!(answer.status, "failure");
    assert_eq!(answer.status_detail, "delivery_attempt_failed");
    assert!(
        answer.message.contains("distribution center"),
        "{}",
        answer.message
    );
    assert_eq!(
        (answer.city.as_str(), answer.state.as_str()),
        ("Columbus", "OH")
    );
    assert_eq!(
        (answer.city.as_str(), answer.state.as_str()),
        (
            str_of(&ship["destination"], "city"),
            str_of(&ship["destination"], "state")
        ),
        "the attempt was at the destination"
    );
    assert!(
        answer
            .message
            .contains(&format!("{}, {}", answer.city, answer.state)),
        "the message names the place: {}",
        answer.message
    );
}

/// Workflow 2: make sure `url` gets `topic`; creates the webhook only when
/// no webhook for that URL and topic exists. Returns it and whether it was
/// created.
async fn ensure_webhook(client: &Client, url: &str, topic: &str) -> (Value, bool) {
    // As the prompt says: the server filters by topic and URL.
    let hooks = list_all(
        client,
        "list_all_malomo_webhooks",
        json!({"topic": topic, "url": url, "limit": 10}),
    )
    .await;
    assert!(
        hooks
            .iter()
            .all(|h| h["url"].as_str() == Some(url) && h["topic"].as_str() == Some(topic)),
        "only matching webhooks come back: {hooks:?}"
    );
    if let Some(hook) = hooks
        .iter()
        .find(|h| h["url"].as_str() == Some(url) && h["topic"].as_str() == Some(topic))
    {
        return (hook.clone(), false);
    }
    let hook = ok(
        client,
        "create_a_malomo_webhook",
        json!({"url": url, "topic": topic}),
    )
    .await;
    (hook, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_shipment_exceptions_twice_creates_one_webhook() {
    let desk = Desk::open().await;
    let client = handshake_client(desk.server.url()).await;
    let url = "https://support.example.com/hooks/malomo-exceptions";
    let topic = "shipment.exception";
    let decoy = |url: &str, topic: &str| json!({"url": url, "topic": topic});
    // Someone else's webhooks: the same URL on another topic, the topic on
    // another URL. Neither counts.
    for body in [
        decoy(url, "shipment.delivered"),
        decoy("https://other.example.com/hook", topic),
    ] {
        desk.direct(Method::POST, "/webhooks", Some(body)).await;
    }

    let (first, created) = ensure_webhook(&client, url, topic).await;
    assert!(created, "none existed, so the first run creates it");
    assert_eq!(
        (first["url"].as_str(), first["topic"].as_str()),
        (Some(url), Some(topic))
    );
    assert_eq!(first["active"], json!(true));

    // More webhooks arrive, pushing ours off the first page of the list.
    for i in 0..12 {
        desk.direct(
            Method::POST,
            "/webhooks",
            Some(decoy(&format!("https://other.example.com/hook/{i}"), topic)),
        )
        .await;
    }
    // A second agent, a second session: the run finds it and creates none.
    let other = stateless_client(desk.server.url()).await;
    let (second, created) = ensure_webhook(&other, url, topic).await;
    assert!(!created, "the second run must find the webhook: {second}");
    assert_eq!(second["id"], first["id"]);

    let matching = |hooks: &[Value]| {
        hooks
            .iter()
            .filter(|h| h["url"].as_str() == Some(url) && h["topic"].as_str() == Some(topic))
            .count()
    };
    let direct = desk.direct_all("/webhooks").await;
    assert_eq!(
        matching(&direct),
        1,
        "exactly one, per the sandbox: {direct:?}"
    );
    assert_eq!(direct.len(), 2 + 1 + 12, "and nothing else was created");
    let listed = list_all(&client, "list_all_malomo_webhooks", json!({})).await;
    assert_eq!(matching(&listed), 1, "exactly one, per the tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_update_names_what_it_would_delete_and_the_flag_deletes_exactly_that() {
    let desk = Desk::open().await;
    let client = handshake_client(desk.server.url()).await;
    let pair = |carrier: &str, code: &str| json!({"carrier": carrier, "tracking_code": code});
    let created = ok(
        &client,
        "create_a_malomo_order",
        json!({
            "number": "77001",
            "email": "guard@example.com",
            "shipments": [pair("usps", "DE7001"), pair("ups", "DE7002"), pair("fedex", "DE7003")],
        }),
    )
    .await;
    let id = str_of(&created, "id").to_owned();
    // Give the shipments tracking history worth keeping.
    desk.direct(Method::POST, "/_sandbox/tick", None).await;
    let (before, _) = desk
        .direct(Method::GET, &format!("/orders/{id}"), None)
        .await;

    // An agent "updates" with only part of the list plus a new shipment.
    let update = json!({
        "id": id,
        "shipments": [pair("ups", "DE7002"), pair("dhl_express", "DE7004")],
    });
    let result = call(&client, "update_a_malomo_order_by_id", update.clone()).await;
    assert_eq!(result.is_error, Some(true), "refused: {}", text(&result));
    let message = text(&result);
    for named in ["usps DE7001", "fedex DE7003"] {
        assert!(message.contains(named), "names {named}: {message}");
    }
    assert!(
        !message.contains("ups DE7002"),
        "does not list the kept one as deleted: {message}"
    );
    assert!(
        message.contains("remove_missing_shipments: true")
            && message.contains("add_a_malomo_order_shipment"),
        "explains how to keep them and how to delete on purpose: {message}"
    );
    let details = result
        .meta
        .as_ref()
        .and_then(|m| m.0.get(malomo_mcp::mcp::handler::ERROR_META_KEY))
        .expect("the error details in _meta");
    let error = &details["error"];
    let as_pairs = |v: &Value| -> BTreeSet<(String, String)> {
        v.as_array()
            .expect("a list of pairs")
            .iter()
            .map(|p| {
                (
                    str_of(p, "carrier").to_owned(),
                    str_of(p, "tracking_code").to_owned(),
                )
            })
            .collect()
    };
    let would_delete = as_pairs(&error["would_delete"]);
    assert_eq!(
        would_delete,
        BTreeSet::from([
            ("fedex".to_owned(), "DE7003".to_owned()),
            ("usps".to_owned(), "DE7001".to_owned()),
        ])
    );
    assert_eq!(
        as_pairs(&error["full_list_to_keep_them"]).len(),
        4,
        "the keep list has the three and the new one: {error}"
    );
    let (after_refusal, _) = desk
        .direct(Method::GET, &format!("/orders/{id}"), None)
        .await;
    assert_eq!(after_refusal, before, "the refusal changed nothing");

    // On purpose: exactly the listed pairs go, the kept one keeps its
    // history, the new one is added.
    let mut forced = update;
    forced["remove_missing_shipments"] = json!(true);
    ok(&client, "update_a_malomo_order_by_id", forced).await;
    let (after, _) = desk
        .direct(Method::GET, &format!("/orders/{id}"), None)
        .await;
    let before_pairs = as_pairs(&before["shipments"]);
    let after_pairs = as_pairs(&after["shipments"]);
    let deleted: BTreeSet<_> = before_pairs.difference(&after_pairs).cloned().collect();
    assert_eq!(
        deleted, would_delete,
        "deleted exactly what the refusal listed"
    );
    assert_eq!(
        after_pairs,
        BTreeSet::from([
            ("dhl_express".to_owned(), "DE7004".to_owned()),
            ("ups".to_owned(), "DE7002".to_owned()),
        ])
    );
    let ups = |order: &Value| {
        order["shipments"]
            .as_array()
            .expect("shipments")
            .iter()
            .find(|s| s["tracking_code"] == json!("DE7002"))
            .cloned()
            .expect("ups DE7002")
    };
    let kept = ups(&after);
    assert_eq!(
        kept,
        ups(&before),
        "the kept shipment is the same, history and all"
    );
    assert!(
        !kept["scan_events"].as_array().expect("scans").is_empty(),
        "and it had history to keep"
    );
}
