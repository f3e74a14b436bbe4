//! The MCP side of the event inbox: the two event tools, the
//! `malomo://events` resource and its notifications, over real rmcp
//! clients. Events are stood in for by an in-memory inbox and notices
//! published on the node's hub, exactly as the inbox publishes them after
//! storing an event.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use malomo_mcp::access::ToolFilter;
use malomo_mcp::events::{EventNotice, EventQuery, StoredEvent};
use malomo_mcp::mcp::Shared;
use malomo_mcp::mcp::http::{self, HttpOptions};
use malomo_mcp::runtime::{CursorCodec, Inbox, InboxTarget, Runtime};
use malomo_mcp::store::{NewServer, Store};
use rmcp::model::{
    ReadResourceRequestParams, ResourceUpdatedNotificationParam, ServerNotification,
    SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use support::*;
use tokio::sync::mpsc;

const URI: &str = "malomo://events";
const INBOX_URL: &str = "http://127.0.0.1:9/hooks/inbox_token_for_tests";
const INBOX_SECRET: &str = "whsec_for_tests_only";

/// Events and inboxes held in memory; counts how often events are read.
#[derive(Default)]
struct MemoryInbox {
    events: Mutex<Vec<StoredEvent>>,
    with_inbox: Mutex<bool>,
}

impl Inbox for MemoryInbox {
    fn events(&self, q: &EventQuery) -> anyhow::Result<Vec<StoredEvent>> {
        let events = self.events.lock().expect("events");
        let mut found: Vec<StoredEvent> = events
            .iter()
            .filter(|e| e.account_id == q.account_id)
            .filter(|e| q.topic.as_ref().is_none_or(|t| &e.topic == t))
            .filter(|e| q.order_id.is_none() || e.order_id == q.order_id)
            .filter(|e| q.tracking_code.is_none() || e.tracking_code == q.tracking_code)
            .filter(|e| q.since.as_ref().is_none_or(|s| &e.received_at >= s))
            .filter(|e| q.before_seq.is_none_or(|b| e.seq < b))
            .cloned()
            .collect();
        found.sort_by_key(|e| std::cmp::Reverse(e.seq));
        found.truncate(q.limit);
        Ok(found)
    }

    fn target(&self, _account_id: &str) -> anyhow::Result<Option<InboxTarget>> {
        Ok(
            (*self.with_inbox.lock().expect("flag")).then(|| InboxTarget {
                url: INBOX_URL.to_owned(),
                secret: INBOX_SECRET.to_owned(),
            }),
        )
    }
}

fn exception(seq: i64, account_id: &str, order: &str, code: &str) -> StoredEvent {
    StoredEvent {
        seq,
        account_id: account_id.to_owned(),
        topic: "shipment.exception".to_owned(),
        received_at: format!("2026-11-25T10:00:{:02}Z", seq % 60),
        order_id: Some(order.to_owned()),
        order_number: Some(format!("10{seq:02}")),
        customer_email: Some("ada@example.com".to_owned()),
        tracking_code: Some(code.to_owned()),
        status: Some("failure".to_owned()),
        payload: json!({"order": {"id": order}, "status": "failure"}),
    }
}

/// A node over the in-process sandbox (or an upstream nobody listens on),
/// its store, an inbox in memory, and MCP servers provisioned on it.
struct Node {
    shared: Arc<Shared>,
    store: Store,
    inbox: Arc<MemoryInbox>,
    account_id: String,
    base: String,
    _sandbox: Option<malomo_mcp::sandbox::SandboxHandle>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(with_sandbox: bool) -> Node {
        Self::start_limited(with_sandbox, malomo_mcp::limits::Limits::default()).await
    }

    async fn start_limited(with_sandbox: bool, limits: malomo_mcp::limits::Limits) -> Node {
        malomo_mcp::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("events.db")).expect("store");
        let sandbox = if with_sandbox {
            Some(
                malomo_mcp::sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), quiet_sandbox())
                    .await
                    .expect("sandbox"),
            )
        } else {
            None
        };
        // Without the sandbox, the upstream is a port nobody listens on:
        // any call to it would be an error.
        let base_url = sandbox
            .as_ref()
            .map_or_else(|| "http://127.0.0.1:9".to_owned(), |s| s.base_url());
        let key = sandbox.as_ref().map_or("sk_unused_key", |s| s.secret_key());
        let account_id = store
            .create_account("acme", key, &base_url)
            .expect("account")
            .id;
        let inbox = Arc::new(MemoryInbox::default());
        let runtime = Runtime::new(Duration::from_secs(5), CursorCodec::random())
            .expect("runtime")
            .with_inbox(inbox.clone());
        let shared = Arc::new(Shared::new(runtime).expect("shared"));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut options = HttpOptions::local(&base);
        options.limits = limits;
        let app = http::app(
            shared.clone(),
            store.clone(),
            options,
            tokio_util::sync::CancellationToken::new(),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Node {
            shared,
            store,
            inbox,
            account_id,
            base,
            _sandbox: sandbox,
            _dir: dir,
        }
    }

    /// The MCP URL of a new server with `methods` and `tags`.
    fn server(&self, methods: &[&str], tags: &[&str]) -> String {
        let created = self
            .store
            .create_server(
                &self.account_id,
                NewServer {
                    name: format!("s{}", rand_suffix()),
                    filter: ToolFilter {
                        methods: methods.iter().map(|m| m.to_string()).collect(),
                        tags: tags.iter().map(|t| t.to_string()).collect(),
                    },
                    require_api_token_auth: false,
                    expires_at: None,
                    answer_budget: None,
                },
            )
            .expect("server");
        format!("{}/mcp/{}", self.base, created.token)
    }

    fn publish(&self, account_id: &str, seq: i64) -> usize {
        self.shared.events().publish(EventNotice {
            account_id: account_id.to_owned(),
            topic: "shipment.exception".to_owned(),
            seq,
        })
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A 2025-11-25 client that passes on every resource-updated notice.
#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<String>);

impl ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

async fn watching_client(
    url: &str,
) -> (
    RunningService<RoleClient, Watcher>,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = tokio::time::timeout(
        ANSWER_WITHIN,
        Watcher(tx).serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
        )),
    )
    .await
    .expect("initialize in time")
    .expect("initialize");
    (client, rx)
}

/// Publishes notices until one arrives (the session's GET stream opens
/// right after `initialize`, so the first ones may find it not open yet);
/// how many were needed.
async fn notified(node: &Node, rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    for seq in 1..=50 {
        node.publish(&node.account_id, seq);
        if let Ok(Some(uri)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            return uri;
        }
    }
    panic!("no notifications/resources/updated after 50 events of the account");
}

#[allow(deprecated)]
#[tokio::test]
async fn a_subscribed_session_is_told_of_its_accounts_events_and_no_others() {
    let node = Node::start(false).await;
    let url = node.server(&[], &[]);
    let (client, mut rx) = watching_client(&url).await;
    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(
        resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        [URI]
    );
    client
        .subscribe(SubscribeRequestParams::new(URI))
        .await
        .expect("resources/subscribe");
    assert_eq!(node.shared.subscribers().len(), 1);
    assert_eq!(notified(&node, &mut rx).await, URI);
    while rx.try_recv().is_ok() {}

    // Another account's event says nothing to this session.
    node.publish("another-account", 99);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "notified of another account's event"
    );

    // Reading the resource is the first page of the stored events.
    node.inbox.events.lock().expect("events").push(exception(
        1,
        &node.account_id,
        "ord_1",
        "FA123",
    ));
    let read = client
        .read_resource(ReadResourceRequestParams::new(URI))
        .await
        .expect("resources/read");
    let text = serde_json::to_value(&read.contents[0]).expect("json")["text"]
        .as_str()
        .expect("text")
        .to_owned();
    let page: Value = serde_json::from_str(&text).expect("JSON page");
    assert_eq!(page["items"][0]["tracking_code"], "FA123");

    client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(URI))
        .await
        .expect("resources/unsubscribe");
    assert!(node.shared.subscribers().is_empty());
    let _ = client.cancel().await;
}

#[allow(deprecated)]
#[tokio::test]
async fn a_server_filtered_away_from_the_event_tools_gets_no_resource_and_no_notifications() {
    let node = Node::start(false).await;
    let url = node.server(&[], &["orders"]);
    let (client, mut rx) = watching_client(&url).await;
    let info = client.peer_info().expect("initialize result");
    assert!(
        info.capabilities.resources.is_none(),
        "offers resources: {:?}",
        info.capabilities
    );
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(
        tools
            .iter()
            .all(|t| !t.name.contains("events") || t.name == "list_all_malomo_order_events")
    );
    let refused = client
        .subscribe(SubscribeRequestParams::new(URI))
        .await
        .expect_err("subscribing to a resource this server hides");
    assert!(
        refused.to_string().contains("Unknown resource"),
        "{refused}"
    );
    client
        .read_resource(ReadResourceRequestParams::new(URI))
        .await
        .expect_err("reading a resource this server hides");
    for seq in 1..=5 {
        node.publish(&node.account_id, seq);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "a filtered server was notified"
    );
    assert!(node.shared.subscribers().is_empty());
    let _ = client.cancel().await;
}

#[allow(deprecated)]
#[tokio::test]
async fn a_read_only_server_lists_events_and_is_notified_but_cannot_subscribe_malomo() {
    let node = Node::start(false).await;
    let url = node.server(&["read"], &[]);
    let (client, mut rx) = watching_client(&url).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"list_all_malomo_received_events".to_owned()));
    assert!(!names.contains(&"subscribe_to_malomo_events".to_owned()));
    let refused = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("subscribe_to_malomo_events")
                .with_arguments(args(json!({"topic": "shipment.exception"}))),
        )
        .await
        .expect_err("a read-only server refuses the write tool");
    assert!(refused.to_string().contains("Unknown tool"), "{refused}");
    client
        .subscribe(SubscribeRequestParams::new(URI))
        .await
        .expect("a read-only server offers the events resource");
    assert_eq!(notified(&node, &mut rx).await, URI);
    // The subscription ends with the session (the client's DELETE).
    let _ = client.cancel().await;
    for _ in 0..100 {
        if node.shared.subscribers().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ended session is still subscribed");
}

#[tokio::test]
async fn listen_streams_the_accounts_events_over_2026_07_28() {
    let node = Node::start(false).await;
    let client = stateless_client(&node.server(&[], &[])).await;
    let mut subscription = client
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .resource_subscription(URI)
                .build(),
        )
        .await
        .expect("subscriptions/listen");
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![URI.to_owned()])
    );
    // The listen stream is open once acknowledged: the first notice counts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    node.publish("another-account", 1);
    node.publish(&node.account_id, 2);
    let notice = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("a notification in time")
        .expect("stream")
        .expect("a notification");
    match notice {
        ServerNotification::ResourceUpdatedNotification(n) => assert_eq!(n.params.uri, URI),
        other => panic!("unexpected {other:?}"),
    }
    // Only one: the other account's event was not announced.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), subscription.next())
            .await
            .is_err()
    );
    let _ = subscription.cancel().await;

    // A filtered server accepts nothing.
    let filtered = stateless_client(&node.server(&[], &["orders"])).await;
    let sub = filtered
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .resource_subscription(URI)
                .build(),
        )
        .await;
    if let Ok(sub) = sub {
        assert_eq!(sub.acknowledged().resource_subscriptions, None);
    }
}

#[tokio::test]
async fn received_events_page_newest_first_from_the_store_without_a_malomo_call() {
    // The account's upstream is a port nobody listens on: a single call to
    // it would make the tool fail.
    let node = Node::start(false).await;
    {
        let mut events = node.inbox.events.lock().expect("events");
        for seq in 1..=5 {
            events.push(exception(
                seq,
                &node.account_id,
                &format!("ord_{seq}"),
                &format!("FA{seq}"),
            ));
        }
        events.push(exception(6, "another-account", "ord_x", "FAX"));
    }
    let client = handshake_client(&node.server(&[], &[])).await;
    let tool = "list_all_malomo_received_events";
    let first = ok(
        &client,
        tool,
        json!({"topic": "shipment.exception", "limit": 2}),
    )
    .await;
    assert_conforms_to_output_schema(tool, &first);
    let codes: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["tracking_code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["FA5", "FA4"]);
    assert_eq!(first["items"][0]["order_id"], "ord_5");
    assert_eq!(first["items"][0]["status"], "failure");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    // New events do not shift the pages already started.
    node.inbox
        .events
        .lock()
        .expect("events")
        .push(exception(7, &node.account_id, "ord_7", "FA7"));
    let second = ok(
        &client,
        tool,
        json!({"topic": "shipment.exception", "limit": 2, "next_cursor": cursor}),
    )
    .await;
    assert_eq!(second["items"][0]["tracking_code"], "FA3");
    assert_eq!(second["items"][1]["tracking_code"], "FA2");
    // Cursors are bound to their filters.
    let error = tool_error(
        &client,
        tool,
        json!({"tracking_code": "FA3", "next_cursor": cursor}),
    )
    .await;
    assert!(error.contains("other filter arguments"), "{error}");
    let error = tool_error(&client, tool, json!({"since": "yesterday"})).await;
    assert!(error.contains("`since`"), "{error}");
    let one = ok(
        &client,
        tool,
        json!({"tracking_code": "FA2", "fields": ["tracking_code"]}),
    )
    .await;
    assert_eq!(
        one,
        json!({"items": [{"id": "2", "topic": "shipment.exception", "received_at": "2026-11-25T10:00:02Z", "tracking_code": "FA2"}], "next_cursor": null})
    );
}

#[tokio::test]
async fn subscribing_creates_one_webhook_to_the_inbox_and_never_shows_its_url_or_secret() {
    let node = Node::start(true).await;
    let client = handshake_client(&node.server(&[], &[])).await;
    let tool = "subscribe_to_malomo_events";
    let topic = json!({"topic": "shipment.exception"});

    let error = tool_error(&client, tool, topic.clone()).await;
    assert!(error.contains("no event inbox"), "{error}");
    let webhooks = ok(&client, "list_all_malomo_webhooks", json!({})).await;
    assert_eq!(
        webhooks["items"],
        json!([]),
        "nothing created without an inbox"
    );

    *node.inbox.with_inbox.lock().expect("flag") = true;
    // Other webhooks of the account do not count.
    for i in 0..3 {
        ok(
            &client,
            "create_a_malomo_webhook",
            json!({"url": format!("https://example.com/{i}"), "topic": "shipment.exception"}),
        )
        .await;
    }
    let first = ok(&client, tool, topic.clone()).await;
    assert_conforms_to_output_schema(tool, &first);
    assert_eq!(first["created"], true);
    let again = ok(&client, tool, topic.clone()).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["webhook"]["id"], first["webhook"]["id"]);
    for answer in [&first, &again] {
        let text = answer.to_string();
        assert!(
            !text.contains("inbox_token_for_tests") && !text.contains(INBOX_SECRET),
            "{text}"
        );
    }
    // A second topic is a second webhook.
    let delivered = ok(&client, tool, json!({"topic": "shipment.delivered"})).await;
    assert_eq!(delivered["created"], true);

    let all = ok(
        &client,
        "list_all_malomo_webhooks",
        json!({"limit": 100, "fields": ["*"]}),
    )
    .await;
    let to_inbox: Vec<&Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|w| w["url"] == INBOX_URL)
        .collect();
    assert_eq!(to_inbox.len(), 2, "{all}");
}

#[tokio::test]
async fn listen_streams_count_against_the_servers_open_streams() {
    let limits = malomo_mcp::limits::Limits {
        streams_per_server: 1,
        ..malomo_mcp::limits::Limits::default()
    };
    let node = Node::start_limited(false, limits).await;
    let url = node.server(&[], &[]);
    let filter = || {
        SubscriptionFilter::builder()
            .resource_subscription(URI)
            .build()
    };
    let first = stateless_client(&url).await;
    let mut open = first
        .peer()
        .listen(filter())
        .await
        .expect("the first listen");
    let second = stateless_client(&url).await;
    let refused = second
        .peer()
        .listen(filter())
        .await
        .expect_err("a second open stream is over this server's cap");
    assert!(
        refused.to_string().contains("429") || refused.to_string().contains("limit"),
        "{refused}"
    );
    let _ = open.cancel().await;
}
