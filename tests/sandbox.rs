//! The embedded Malomo sandbox, pinned over HTTP against a running instance.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use malomo_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

const SK: &str = "sk_test_sandbox";
const PK: &str = "pk_test_sandbox";

fn quiet_config() -> SandboxConfig {
    SandboxConfig {
        rate_burst: 1_000_000,
        rate_per_sec: 1_000_000.0,
        tick_interval: None,
        webhook_retry_base: Duration::from_millis(20),
        ..SandboxConfig::default()
    }
}

struct Api {
    sandbox: SandboxHandle,
    client: Client,
}

impl Api {
    async fn start(config: SandboxConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let sandbox = sandbox::start(listen, config)
            .await
            .expect("sandbox starts");
        Self {
            sandbox,
            client: Client::new(),
        }
    }

    async fn quiet() -> Self {
        Self::start(quiet_config()).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sandbox.base_url())
        }
    }

    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request reaches the sandbox")
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let resp = self.call(Some(SK), method, path, body).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        self.json(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.json(Method::POST, path, Some(body)).await;
        (s, v)
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.json(Method::PUT, path, Some(body)).await;
        (s, v)
    }

    async fn create_order(&self, body: Value) -> Value {
        let (status, order) = self.post("/orders", body).await;
        assert_eq!(status, StatusCode::OK, "create failed: {order}");
        order
    }

    async fn delete_and_expect_gone(&self, path: &str) {
        let (status, _, _) = self.json(Method::DELETE, path, None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = self.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// Walks every page of a list from the first, following rel="next".
    async fn walk(&self, first: &str) -> Vec<Value> {
        let mut url = first.to_string();
        let mut all = Vec::new();
        loop {
            let (status, headers, page) = self.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            all.extend(page.as_array().cloned().unwrap_or_default());
            match link(&headers, "next") {
                Some(next) => url = next,
                None => return all,
            }
        }
    }
}

fn link(headers: &HeaderMap, rel: &str) -> Option<String> {
    let raw = headers.get("link")?.to_str().ok()?;
    raw.split(", ")
        .find(|part| part.ends_with(&format!("rel=\"{rel}\"")))
        .map(|part| {
            let start = part.find('<').map(|i| i + 1).unwrap_or(0);
            let end = part.find('>').unwrap_or(part.len());
            part[start..end].to_string()
        })
}

fn assert_error_shape(body: &Value, status: u16, code: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

/// Malomo's 400s start with the field at fault.
fn assert_names_field(body: &Value, field: &str) {
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(field),
        "expected a message naming {field}: {body}"
    );
}

fn order_body(number: &str, shipments: Value) -> Value {
    json!({
        "alternate_id": format!("ALT-{number}"),
        "number": number,
        "email": format!("buyer{number}@example.com"),
        "customer": {"email": format!("buyer{number}@example.com"), "first_name": "Ada", "last_name": "Byron"},
        "meta": {"shopify_order": {"order_id": 1}},
        "shipments": shipments,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_key_is_401_with_malomo_error_body() {
    let api = Api::quiet().await;
    for key in [None, Some("nope"), Some("sk_"), Some("Basic abc")] {
        let resp = api.call(key, Method::GET, "/orders", None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_error_shape(&body, 401, "unauthorized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pk_key_can_read_orders_but_cannot_write() {
    let api = Api::quiet().await;
    assert_eq!(
        api.call(Some(PK), Method::GET, "/orders", None)
            .await
            .status(),
        StatusCode::OK
    );
    let resp = api
        .call(
            Some(PK),
            Method::POST,
            "/orders",
            Some(order_body("1", json!([]))),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_error_shape(&body, 403, "forbidden");
    // Webhooks are not shipment or order data.
    assert_eq!(
        api.call(Some(PK), Method::GET, "/webhooks", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let (status, _, acct) = api.get("/accounts/self").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(acct["key_type"], "secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_answer_one_order_and_404_on_a_miss() {
    let api = Api::quiet().await;
    let order = api
        .create_order(order_body(
            "7001",
            json!([{"carrier": "ups", "tracking_code": "1ZLOOKUP1"}]),
        ))
        .await;
    let id = order["id"].clone();
    for q in [
        "/orders?alternate_id=ALT-7001",
        "/orders?tracking_code=1ZLOOKUP1",
        "/orders?number=7001&customer_email=buyer7001%40example.com",
    ] {
        let (status, _, found) = api.get(q).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert_eq!(found["id"], id, "{q}");
    }
    for q in [
        "/orders?alternate_id=none",
        "/orders?tracking_code=none",
        "/orders?number=7001&customer_email=x%40y.z",
    ] {
        let (status, _, body) = api.get(q).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{q}");
        assert_error_shape(&body, 404, "not_found");
    }
    let (status, _, body) = api.get("/orders?number=7001").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&body, "customer_email");
    let (status, _, _) = api
        .get("/orders/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_customer_latest_order_had_a_failed_delivery_attempt() {
    let api = Api::quiet().await;
    let (status, _, orders) = api
        .get("/orders?customer_email=sarah.smith%40example.com")
        .await;
    assert_eq!(status, StatusCode::OK);
    let orders = orders.as_array().cloned().unwrap_or_default();
    assert!(orders.len() >= 2, "sarah has several orders");
    assert!(orders.iter().all(|o| o["email"] == sandbox::DEMO_EMAIL));
    let latest = &orders[0]["shipments"][0];
    assert_eq!(latest["status"], "failure");
    let scan = latest["scan_events"]
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(scan["status_detail"], "delivery_attempt_failed");
    assert!(
        scan["message"]
            .as_str()
            .is_some_and(|m| m.contains("distribution center"))
    );
    assert!(scan["location"]["city"].is_string());
    // Shipment timestamps carry no zone; order timestamps end in Z.
    assert!(
        scan["scanned_at"]
            .as_str()
            .is_some_and(|t| !t.ends_with('Z'))
    );
    assert!(
        orders[0]["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_the_same_for_the_same_seed() {
    let a = Api::quiet().await;
    let b = Api::quiet().await;
    let (_, _, pa) = a.get("/orders?limit=100").await;
    let (_, _, pb) = b.get("/orders?limit=100").await;
    assert_eq!(pa, pb);
    let statuses: HashSet<String> = a
        .walk("/orders?limit=100")
        .await
        .iter()
        .flat_map(|o| o["shipments"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["status"].as_str().map(str::to_string))
        .collect();
    for s in [
        "unknown",
        "pre_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "failure",
    ] {
        assert!(
            statuses.contains(s),
            "no seeded shipment in {s}: {statuses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_shipments_replaces_the_set_keeping_repeated_pairs() {
    let api = Api::quiet().await;
    let order = api
        .create_order(order_body(
            "8001",
            json!([{"carrier": "usps", "tracking_code": "DEKEEP1"}, {"carrier": "fedex", "tracking_code": "DEDROP1"}]),
        ))
        .await;
    let id = order["id"].as_str().unwrap_or_default().to_string();
    let kept_id = order["shipments"][0]["id"].clone();
    let (status, summary) = api.post("/_sandbox/tick", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["advanced"].as_u64().map(|n| n >= 2), Some(true));

    let (status, updated) = api
        .put(
            &format!("/orders/{id}"),
            json!({"shipments": [{"carrier": "usps", "tracking_code": "DEKEEP1"}, {"carrier": "dhl", "tracking_code": "DENEW1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let ships = updated["shipments"].as_array().cloned().unwrap_or_default();
    assert_eq!(ships.len(), 2);
    assert_eq!(ships[0]["id"], kept_id, "a repeated pair keeps its id");
    assert_eq!(
        ships[0]["scan_events"].as_array().map(Vec::len),
        Some(1),
        "and its history"
    );
    assert_eq!(ships[1]["tracking_code"], "DENEW1");
    assert_eq!(ships[1]["status"], "unknown");
    assert!(
        ships.iter().all(|s| s["tracking_code"] != "DEDROP1"),
        "pairs left out are deleted"
    );

    // Without `shipments`, the set is untouched.
    let (status, again) = api
        .put(&format!("/orders/{id}"), json!({"number": "8001-B"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["number"], "8001-B");
    assert_eq!(again["shipments"], updated["shipments"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_null_removes_the_customer() {
    let api = Api::quiet().await;
    let order = api.create_order(order_body("8101", json!([]))).await;
    assert_eq!(order["customer"]["email"], "buyer8101@example.com");
    let id = order["id"].as_str().unwrap_or_default();
    let (status, updated) = api
        .put(&format!("/orders/{id}"), json!({"customer": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(updated["customer"].is_null());
    assert_eq!(updated["alternate_id"], "ALT-8101", "other fields stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walk_during_concurrent_inserts_yields_every_order_once() {
    let api = Arc::new(Api::quiet().await);
    let before: HashSet<String> = api
        .walk("/orders?limit=100")
        .await
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                api.create_order(order_body(&format!("9{i:03}"), json!([])))
                    .await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut url = "/orders?limit=7".to_string();
    loop {
        let (status, headers, page) = api.get(&url).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(page.as_array().cloned().unwrap_or_default());
        match link(&headers, "next") {
            Some(next) => url = next,
            None => break,
        }
    }
    writer.await.expect("writer finishes");
    let ids: Vec<String> = seen
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no order appears twice");
    assert!(
        before.is_subset(&unique),
        "every order that existed before the walk is seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_bare_arrays_newest_first_with_next_and_prev_links() {
    let api = Api::quiet().await;
    let (status, headers, first) = api.get("/orders").await;
    assert_eq!(status, StatusCode::OK);
    let first = first.as_array().cloned().unwrap_or_default();
    assert_eq!(first.len(), 25, "default limit");
    assert!(
        first[0]["created_at"].as_str() > first[24]["created_at"].as_str(),
        "newest first"
    );
    let next = link(&headers, "next").unwrap_or_default();
    assert!(
        next.starts_with("http://") && next.contains("next="),
        "absolute URL with a cursor: {next}"
    );
    let (_, headers2, second) = api.get(&next).await;
    let prev = link(&headers2, "prev").unwrap_or_default();
    let (_, _, back) = api.get(&prev).await;
    assert_eq!(back.as_array().cloned().unwrap_or_default(), first);
    assert_ne!(second, Value::Array(first));

    for bad in ["0", "101", "ten"] {
        let (status, _, body) = api.get(&format!("/orders?limit={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error_shape(&body, 400, "invalid_request");
        assert_names_field(&body, "limit");
    }
    let (status, _, body) = api.get("/orders?next=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&body, "next");
    let (_, _, hundred) = api.get("/orders?limit=100").await;
    assert!(hundred.as_array().is_some_and(|a| a.len() > 25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_order_writes_its_timeline() {
    let api = Api::quiet().await;
    let order = api
        .create_order(order_body("8201", json!([{"carrier": "usps", "tracking_code": "DE1"}, {"carrier": "ups", "tracking_code": "1Z2"}])))
        .await;
    let id = order["id"].as_str().unwrap_or_default();
    let (status, _, events) = api.get(&format!("/orders/{id}/events")).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = events
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        vec!["ShipmentCreated", "ShipmentCreated", "ShopifyOrderCreated"]
    );

    let (status, event) = api
        .post(&format!("/orders/{id}/events"), json!({"type": "OrderIssueCreated", "label": "Customer called", "properties": {"channel": "phone"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{event}");
    let (_, _, events) = api.get(&format!("/orders/{id}/events?limit=1")).await;
    assert_eq!(events[0]["id"], event["id"]);
    let (status, body) = api
        .post(&format!("/orders/{id}/events"), json!({"label": "no type"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&body, "type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_walks_shipments_to_the_final_state_their_prefix_names() {
    let api = Api::quiet().await;
    let order = api
        .create_order(order_body(
            "8301",
            json!([{"carrier": "fedex", "tracking_code": "FA555"}]),
        ))
        .await;
    let id = order["id"].as_str().unwrap_or_default();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        api.post("/_sandbox/tick", json!({})).await;
        let (_, _, o) = api.get(&format!("/orders/{id}")).await;
        statuses.push(
            o["shipments"][0]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        statuses,
        [
            "pre_transit",
            "in_transit",
            "out_for_delivery",
            "failure",
            "failure"
        ]
    );
    let (_, _, o) = api.get(&format!("/orders/{id}")).await;
    let scans = o["shipments"][0]["scan_events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(scans.len(), 4);
    assert!(scans.iter().all(|s| s["location"].is_object()
        && s["status_detail"].is_string()
        && s["message"].is_string()));
    let (_, _, events) = api.get(&format!("/orders/{id}/events?limit=100")).await;
    let updates = events.as_array().map(|a| {
        a.iter()
            .filter(|e| e["type"] == "ShipmentUpdateReceived")
            .count()
    });
    assert_eq!(updates, Some(4));
}

/// A local webhook receiver: fails the first attempt of every delivery with
/// 500, verifies the signature, and reports what it accepted.
async fn receiver(
    secret: &'static str,
) -> (
    String,
    mpsc::UnboundedReceiver<(HeaderMap, Value)>,
    Arc<AtomicUsize>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let refused = Arc::new(AtomicUsize::new(0));
    let refused2 = refused.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let refused = refused2.clone();
            async move {
                let sig = headers
                    .get("malomo-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let expected = sandbox::sign_webhook_body(secret, &body);
                if !sig.eq_ignore_ascii_case(&expected) {
                    return StatusCode::UNAUTHORIZED;
                }
                if headers
                    .get("malomo-attempt-number")
                    .and_then(|v| v.to_str().ok())
                    == Some("1")
                {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((headers, value));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_after_a_failed_attempt() {
    let api = Api::quiet().await;
    let (url, mut rx, refused) = receiver("whsec_test").await;
    let (status, hook) = api
        .post(
            "/webhooks",
            json!({"url": url, "topic": "shipment.exception", "secret": "whsec_test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert!(hook.get("secret").is_none(), "the secret is write-only");
    assert_eq!(hook["active"], true);
    api.create_order(order_body(
        "8401",
        json!([{"carrier": "usps", "tracking_code": "RE42"}]),
    ))
    .await;
    for _ in 0..4 {
        api.post("/_sandbox/tick", json!({})).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .ok()
        .flatten();
    let (headers, payload) = got.expect("the exception webhook arrives");
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("malomo-topic"), "shipment.exception");
    assert_eq!(
        header("malomo-webhook-id"),
        hook["id"].as_str().unwrap_or_default()
    );
    assert_eq!(header("malomo-attempt-number"), "2");
    assert_eq!(payload["topic"], "shipment.exception");
    assert_eq!(payload["data"]["shipment"]["status"], "return_to_sender");
    assert!(refused.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_created_webhook_fires_for_every_event() {
    let api = Api::quiet().await;
    let (url, mut rx, _) = receiver("s3cret").await;
    api.post(
        "/webhooks",
        json!({"url": url, "topic": "events:created", "secret": "s3cret"}),
    )
    .await;
    api.create_order(order_body(
        "8451",
        json!([{"carrier": "usps", "tracking_code": "DE9"}]),
    ))
    .await;
    let mut types = Vec::new();
    for _ in 0..2 {
        let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .ok()
            .flatten();
        let (_, payload) = got.expect("an events:created delivery");
        types.push(
            payload["data"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    types.sort();
    assert_eq!(types, ["ShipmentCreated", "ShopifyOrderCreated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_topic_is_fixed_after_create() {
    let api = Api::quiet().await;
    let (_, hook) = api
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "topic": "order.created", "active": false}),
        )
        .await;
    let id = hook["id"].as_str().unwrap_or_default();
    let (status, body) = api
        .put(
            &format!("/webhooks/{id}"),
            json!({"topic": "order.updated"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&body, "topic");
    let (status, body) = api
        .put(
            &format!("/webhooks/{id}"),
            json!({"active": true, "url": "http://127.0.0.1:9/y"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    assert_eq!(body["url"], "http://127.0.0.1:9/y");
    let (status, body) = api
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "topic": "order.exploded"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&body, "topic");
    api.delete_and_expect_gone(&format!("/webhooks/{id}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after_and_limit_headers() {
    let api = Api::start(SandboxConfig {
        rate_burst: 3,
        rate_per_sec: 0.01,
        ..quiet_config()
    })
    .await;
    for left in ["2", "1", "0"] {
        let resp = api
            .call(Some(SK), Method::GET, "/accounts/self", None)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok()),
            Some(left)
        );
    }
    let resp = api
        .call(Some(SK), Method::GET, "/accounts/self", None)
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert!(
        h("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    assert_eq!(h("x-ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(h("x-ratelimit-reset").is_some());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_error_shape(&body, 429, "rate_limited");
    let other = api
        .call(Some("sk_other_key"), Method::GET, "/accounts/self", None)
        .await;
    assert_eq!(other.status(), StatusCode::OK, "buckets are per key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_naming_the_field_and_writes_nothing() {
    let api = Api::quiet().await;
    let before = api.walk("/orders?limit=100").await.len();
    let raw = |body: &'static str| {
        api.client
            .post(api.url("/orders"))
            .bearer_auth(SK)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = raw("{\"number\": ").await.expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_error_shape(&body, 400, "invalid_request");
    assert_names_field(&body, "body");

    let cases = [
        (json!({"number": 12}), "number"),
        (json!({"alternate_id": "x"}), "number"),
        (json!({"number": "1", "email": "not-an-email"}), "email"),
        (
            json!({"number": "1", "shipments": [{"carrier": "pigeon", "tracking_code": "X"}]}),
            "shipments[0].carrier",
        ),
        (
            json!({"number": "1", "shipments": [{"carrier": "usps", "tracking_code": "A"}, {"carrier": "usps"}]}),
            "shipments[1].tracking_code",
        ),
        (
            json!({"number": "1", "shipments": {"carrier": "usps"}}),
            "shipments",
        ),
        (json!({"number": "1", "meta": "x"}), "meta"),
        (
            json!({"number": "1", "customer": {"first_name": "NoEmail"}}),
            "customer.email",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = api.post("/orders", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let msg = err["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(&format!("{field}:")), "{body} -> {msg}");
    }
    let big = "x".repeat(sandbox::MAX_BODY_BYTES + 10);
    let (status, err) = api
        .post("/orders", json!({"number": "1", "meta": {"blob": big}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&err, "body");
    assert_eq!(
        api.walk("/orders?limit=100").await.len(),
        before,
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_cap_answers_507_storage_full() {
    let api = Api::start(SandboxConfig {
        demo_data: false,
        max_objects: 5,
        ..quiet_config()
    })
    .await;
    let mut last = StatusCode::OK;
    let mut body = Value::Null;
    for i in 0..10 {
        (last, body) = api
            .post("/customers", json!({"email": format!("c{i}@example.com")}))
            .await;
        if last != StatusCode::OK {
            break;
        }
    }
    assert_eq!(last, StatusCode::INSUFFICIENT_STORAGE);
    assert_error_shape(&body, 507, "storage_full");
    let (status, _, _) = api.get("/customers").await;
    assert_eq!(status, StatusCode::OK, "reads still work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_crud_and_events() {
    let api = Api::quiet().await;
    let (status, c) = api
        .post(
            "/customers",
            json!({"email": "new@example.com", "first_name": "New"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let id = c["id"].as_str().unwrap_or_default().to_string();
    let (status, _) = api
        .post("/customers", json!({"email": "NEW@example.com"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "emails are unique");
    let order = api
        .create_order(json!({"number": "5", "customer": {"email": "new@example.com"}, "shipments": [{"carrier": "ups", "tracking_code": "1ZC"}]}))
        .await;
    assert_eq!(order["customer"]["id"], c["id"]);
    assert_eq!(order["email"], "new@example.com");
    let (status, c2) = api
        .put(
            &format!("/customers/{id}"),
            json!({"last_name": "Person", "phone_number": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c2["last_name"], "Person");
    assert_eq!(c2["first_name"], "New");
    let (_, _, o) = api
        .get(&format!(
            "/orders/{}",
            order["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        o["customer"]["last_name"], "Person",
        "orders embed the current customer"
    );
    let (_, _, events) = api.get(&format!("/customers/{id}/events")).await;
    assert_eq!(events.as_array().map(Vec::len), Some(2));
    api.delete_and_expect_gone(&format!("/customers/{id}"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_create_lookup_update_and_progress() {
    let api = Api::quiet().await;
    let order = api
        .create_order(order_body(
            "8601",
            json!([{"carrier": "usps", "tracking_code": "DE86"}]),
        ))
        .await;
    let body = json!({"order_id": order["id"], "alternate_id": "RMA-86", "shipments": [{"carrier": "usps", "tracking_code": "DERET86"}]});
    let (status, ret) = api.post("/returns", body).await;
    assert_eq!(status, StatusCode::OK, "{ret}");
    assert_eq!(ret["status"], "requested");
    assert_eq!(ret["shipments"][0]["is_return"], true);
    let (_, _, found) = api.get("/returns?alternate_id=RMA-86").await;
    assert_eq!(found["id"], ret["id"]);
    let rid = ret["id"].as_str().unwrap_or_default();
    let (status, updated) = api
        .put(&format!("/returns/{rid}"), json!({"status": "received"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["status"], "received");
    let (status, _) = api
        .put(&format!("/returns/{rid}"), json!({"status": "lost"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api.post("/_sandbox/tick", json!({})).await;
    let (_, _, again) = api.get(&format!("/returns/{rid}")).await;
    assert_eq!(again["shipments"][0]["status"], "pre_transit");
    let (status, err) = api
        .post(
            "/returns",
            json!({"order_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_names_field(&err, "order_id");
    let (status, _, list) = api.get("/returns").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.as_array().is_some_and(|a| a.len() >= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_orders_are_gone_and_shutdown_stops_the_server() {
    let api = Api::quiet().await;
    let order = api.create_order(order_body("8701", json!([]))).await;
    let id = order["id"].as_str().unwrap_or_default();
    let (status, _, deleted) = api
        .json(Method::DELETE, &format!("/orders/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["id"], order["id"]);
    let (status, _, _) = api.get(&format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let url = api.sandbox.base_url();
    api.sandbox.shutdown().await;
    assert!(
        api.client
            .get(format!("{url}/orders"))
            .bearer_auth(SK)
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_clock_advances_shipments_without_a_tick() {
    let api = Api::start(SandboxConfig {
        tick_interval: Some(Duration::from_millis(20)),
        demo_data: false,
        ..quiet_config()
    })
    .await;
    let order = api
        .create_order(order_body(
            "8801",
            json!([{"carrier": "usps", "tracking_code": "AV1"}]),
        ))
        .await;
    let path = format!("/orders/{}", order["id"].as_str().unwrap_or_default());
    // Poll until the clock has carried the shipment to its final state; the
    // bound only keeps a broken clock from hanging the suite.
    let mut status = String::new();
    for _ in 0..1_500 {
        let (_, _, o) = api.get(&path).await;
        status = o["shipments"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "available_for_pickup" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "available_for_pickup");
}
