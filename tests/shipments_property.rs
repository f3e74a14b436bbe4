//! Issue 6, the property: through the MCP tools, a shipment disappears from
//! an order only when a call explicitly removed it.
//!
//! Setup, one per test: sandbox <- gate proxy <- MCP server (the real
//! `serve`, `Upstream::Remote` pointed at the proxy) <- rmcp clients over
//! HTTP. The proxy forwards every request unchanged; when armed for one tool
//! call it can hold that call's k-th read (GET) or k-th write (PUT) and hand
//! control to a concurrent writer (a direct PUT on the sandbox, or a second
//! MCP client calling `add_a_malomo_order_shipment`), resuming the held
//! request only once the writer is done. Interleavings are therefore exact
//! and reproducible, with explicit signals instead of sleeps.
//!
//! What is guaranteed (and checked here, for random sequences of add,
//! remove, guarded update with and without `remove_missing_shipments`, meta
//! updates and concurrent writers):
//! - after every step the order's (carrier, tracking_code) pairs are exactly
//!   what the model predicts, and every pair that was ever on the order is
//!   still there unless a call explicitly removed it (the remove tool, or a
//!   guarded update with `remove_missing_shipments: true` that omitted it);
//! - a pair that stays keeps its shipment object byte for byte (same id,
//!   same scan history);
//! - a guarded update that omits existing pairs without the flag is refused,
//!   lists exactly the omitted pairs, and changes nothing (the whole order
//!   reads back identical, meta included);
//! - a concurrent write that completes before one of the tool call's reads
//!   (before its first read, or between a read and the re-check) is never
//!   lost: the guarded update sees it and refuses to drop it; add/remove
//!   re-read right before writing, start over once when the pairs changed,
//!   and report a conflict (writing nothing) only when they changed twice.
//!
//! What is NOT guaranteed (Malomo has no conditional write: no ETag /
//! If-Match, no append endpoint): a write by someone else that lands after
//! the tool's last read and before its PUT is overwritten by that PUT. The
//! window is one local computation long but cannot be closed from our side;
//! `known_gap_*` below pins it so that a future fix shows up as a failing
//! test. A guarded update with `remove_missing_shipments: true` replaces the
//! list as asked, including pairs someone added a moment before: that is the
//! explicit removal the flag requests, and the model counts it as such.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use malomo_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use malomo_mcp::serve::Upstream;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use support::*;
use tokio::sync::{mpsc, oneshot};

// ---------------------------------------------------------------- proxy

/// A point in one tool call's upstream traffic: before its k-th read (GET)
/// or its k-th write (any other method), counting from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Read(usize),
    Write(usize),
}

#[derive(Default)]
struct Gate {
    armed: bool,
    /// Points not reached yet.
    points: Vec<Point>,
    reads: usize,
    writes: usize,
    /// A request is held; everything else passes uncounted (it is the
    /// concurrent writer's traffic).
    holding: bool,
    /// The armed call's requests, for failure messages.
    trace: Vec<String>,
    pauses: Option<mpsc::UnboundedSender<oneshot::Sender<()>>>,
}

struct Proxy {
    gate: Mutex<Gate>,
    http: reqwest::Client,
    target: String,
}

impl Proxy {
    fn arm(&self, points: &[Point]) -> mpsc::UnboundedReceiver<oneshot::Sender<()>> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.gate.lock().expect("gate") = Gate {
            armed: true,
            points: points.to_vec(),
            pauses: Some(tx),
            ..Gate::default()
        };
        rx
    }

    /// Disarms and returns the trace of the call.
    fn disarm(&self) -> Vec<String> {
        std::mem::take(&mut *self.gate.lock().expect("gate")).trace
    }

    /// Counts the request; when it is at an armed point, returns the signal
    /// to wait for before forwarding it.
    fn checkpoint(&self, method: &Method) -> Option<oneshot::Receiver<()>> {
        let mut g = self.gate.lock().expect("gate");
        if !g.armed || g.holding {
            return None;
        }
        let point = if method == Method::GET {
            g.reads += 1;
            Point::Read(g.reads - 1)
        } else {
            g.writes += 1;
            Point::Write(g.writes - 1)
        };
        let pos = g.points.iter().position(|p| *p == point);
        let Some(pos) = pos else {
            g.trace.push(method.to_string());
            return None;
        };
        g.points.remove(pos);
        let (tx, rx) = oneshot::channel();
        g.trace.push(format!("[writer] {method}"));
        let sent = g.pauses.as_ref().is_some_and(|p| p.send(tx).is_ok());
        g.holding = sent;
        sent.then_some(rx)
    }
}

async fn relay(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    if let Some(resume) = proxy.checkpoint(req.method()) {
        // An Err means the test gave up on this step (it failed); go on.
        let _ = resume.await;
        proxy.gate.lock().expect("gate").holding = false;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut out = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.target))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let Ok(answer) = out.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

// ---------------------------------------------------------------- world

type Pair = (String, String);

const CARRIERS: &[&str] = &["usps", "ups", "fedex", "dhl_express"];
/// Few codes, so that adds collide and the same code under two carriers
/// (two different pairs) shows up often.
const CODES: &[&str] = &["DE100", "DE200", "FA300"];

fn pair_json(p: &Pair) -> Value {
    json!({"carrier": p.0, "tracking_code": p.1})
}

fn pair_of(v: &Value) -> Pair {
    (
        str_of(v, "carrier").to_owned(),
        str_of(v, "tracking_code").to_owned(),
    )
}

fn show(pairs: &BTreeSet<Pair>) -> String {
    pairs
        .iter()
        .map(|(c, t)| format!("{c} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct World {
    sandbox: SandboxHandle,
    proxy: Arc<Proxy>,
    server: TestServer,
    client: Client,
    /// A second MCP client (2026-07-28 stateless mode), the other writer.
    other: Client,
    http: reqwest::Client,
    stats: Mutex<Stats>,
}

/// What the random runs exercised, printed at the end and checked for
/// coverage.
#[derive(Debug, Default)]
struct Stats {
    steps: usize,
    writers_during_call: usize,
    writers_after_call: usize,
    refusals: usize,
    conflicts: usize,
    explicit_removals: usize,
    removes_of_absent: usize,
}

impl World {
    async fn start() -> World {
        malomo_mcp::install_crypto_provider();
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let sandbox = sandbox::start(
            local,
            SandboxConfig {
                demo_data: false,
                ..quiet_sandbox()
            },
        )
        .await
        .expect("sandbox starts");
        let proxy = Arc::new(Proxy {
            gate: Mutex::new(Gate::default()),
            http: reqwest::Client::new(),
            target: sandbox.base_url(),
        });
        let listener = tokio::net::TcpListener::bind(local)
            .await
            .expect("proxy binds");
        let proxy_url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let app = axum::Router::new()
            .fallback(relay)
            .with_state(proxy.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("proxy serves");
        });
        // The property is about shipments, not fairness: the per-server
        // request rate (50/s by default) would answer the sequences' fast
        // calls with 429 on an idle machine.
        let server = start_server_limited(
            Upstream::Remote {
                api_key: sandbox.secret_key().to_owned(),
                base_url: proxy_url,
            },
            None,
            malomo_mcp::limits::Limits {
                requests_per_second_per_server: 1_000_000,
                request_burst_per_server: 1_000_000,
                ..malomo_mcp::limits::Limits::default()
            },
        )
        .await;
        let client = handshake_client(server.url()).await;
        let other = stateless_client(server.url()).await;
        World {
            sandbox,
            proxy,
            server,
            client,
            other,
            http: reqwest::Client::new(),
            stats: Mutex::new(Stats::default()),
        }
    }

    /// A request straight to the sandbox, past the proxy and the runtime.
    fn direct(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.sandbox.base_url()))
            .bearer_auth(self.sandbox.secret_key())
    }

    /// The order as the sandbox has it, read directly (not through the
    /// runtime under test).
    async fn order(&self, id: &str) -> Value {
        let answer = self
            .direct(Method::GET, &format!("/orders/{id}"))
            .send()
            .await
            .expect("sandbox answers");
        assert_eq!(answer.status(), StatusCode::OK, "GET /orders/{id}");
        answer.json().await.expect("order JSON")
    }

    /// Creates an order with `pairs` through the MCP tool; returns its id.
    async fn create_order(&self, pairs: &[Pair], meta: Value) -> String {
        let created = ok(
            &self.client,
            "create_a_malomo_order",
            json!({
                "number": next_number(),
                "email": "prop@example.com",
                "meta": meta,
                "shipments": pairs.iter().map(pair_json).collect::<Vec<_>>(),
            }),
        )
        .await;
        str_of(&created, "id").to_owned()
    }

    /// The order's pairs, read directly from the sandbox.
    async fn pairs(&self, id: &str) -> BTreeSet<Pair> {
        shipments(&self.order(id).await).into_keys().collect()
    }

    async fn tick(&self) {
        let answer = self
            .direct(Method::POST, "/_sandbox/tick")
            .send()
            .await
            .expect("sandbox answers");
        assert!(answer.status().is_success(), "tick: {}", answer.status());
    }

    /// The concurrent writer: adds `pair` to the order, keeping the others.
    async fn write_concurrently(&self, order_id: &str, writer: &Writer) {
        match writer.via {
            Via::DirectPut => {
                // A careful writer: the order's own list, in its own order,
                // plus the new pair at the end.
                let order = self.order(order_id).await;
                let mut list: Vec<Value> = order["shipments"]
                    .as_array()
                    .expect("shipments array")
                    .iter()
                    .map(|s| json!({"carrier": s["carrier"], "tracking_code": s["tracking_code"]}))
                    .collect();
                if !shipments(&order).contains_key(&writer.pair) {
                    list.push(pair_json(&writer.pair));
                }
                let answer = self
                    .direct(Method::PUT, &format!("/orders/{order_id}"))
                    .json(&json!({"shipments": list}))
                    .send()
                    .await
                    .expect("sandbox answers");
                assert_eq!(answer.status(), StatusCode::OK, "direct PUT");
            }
            Via::SecondClient => {
                let mut a = pair_json(&writer.pair);
                a["id"] = json!(order_id);
                ok(&self.other, "add_a_malomo_order_shipment", a).await;
            }
        }
    }

    /// Calls `tool`, running `writers[i]` while the call is held at
    /// `points[i]`. Returns the result and how many writers ran during the
    /// call; the caller runs the others afterwards.
    async fn call_with_writers(
        &self,
        order_id: &str,
        tool: &str,
        arguments: Value,
        points: &[Point],
        writers: &[Writer],
    ) -> (CallToolResult, usize, Vec<String>) {
        let mut pauses = self.proxy.arm(points);
        let call = call(&self.client, tool, arguments);
        tokio::pin!(call);
        let mut fired = 0;
        let result = loop {
            tokio::select! {
                biased;
                Some(resume) = pauses.recv() => {
                    self.write_concurrently(order_id, &writers[fired]).await;
                    fired += 1;
                    let _ = resume.send(());
                }
                result = &mut call => break result,
            }
        };
        let trace = self.proxy.disarm();
        (result, fired, trace)
    }
}

/// The order's shipments by pair; panics on a duplicate pair.
fn shipments(order: &Value) -> BTreeMap<Pair, Value> {
    let mut out = BTreeMap::new();
    for s in order["shipments"].as_array().expect("shipments array") {
        let pair = (
            s["carrier"].as_str().expect("carrier").to_owned(),
            s["tracking_code"]
                .as_str()
                .expect("tracking_code")
                .to_owned(),
        );
        assert!(
            out.insert(pair.clone(), s.clone()).is_none(),
            "duplicate pair {pair:?} on {order}"
        );
    }
    out
}

// ---------------------------------------------------------------- ops

#[derive(Debug, Clone, Copy)]
enum Via {
    DirectPut,
    SecondClient,
}

#[derive(Debug, Clone)]
struct Writer {
    pair: Pair,
    via: Via,
}

/// Which of the order's current pairs (sorted) a guarded update keeps.
#[derive(Debug, Clone, Copy)]
enum Keep {
    All,
    Mask(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Add(Pair),
    Remove(Pair),
    /// `update_a_malomo_order_by_id` with `shipments` (kept + extra) and a
    /// meta change.
    Replace {
        keep: Keep,
        extra: Vec<Pair>,
        flag: bool,
    },
    /// `update_a_malomo_order_by_id` without `shipments`.
    Meta,
    /// `op` while other writers add pairs at the given points.
    Concurrent {
        op: Box<Op>,
        points: Vec<Point>,
        writers: Vec<Writer>,
    },
}

fn pair() -> impl Strategy<Value = Pair> {
    (
        proptest::sample::select(CARRIERS),
        proptest::sample::select(CODES),
    )
        .prop_map(|(c, t)| (c.to_owned(), t.to_owned()))
}

fn replace(flag: bool) -> impl Strategy<Value = Op> {
    (
        prop_oneof![Just(Keep::All), any::<u8>().prop_map(Keep::Mask)],
        proptest::collection::vec(pair(), 0..3),
    )
        .prop_map(move |(keep, extra)| Op::Replace { keep, extra, flag })
}

fn writer() -> impl Strategy<Value = Writer> {
    (
        pair(),
        prop_oneof![Just(Via::DirectPut), Just(Via::SecondClient)],
    )
        .prop_map(|(pair, via)| Writer { pair, via })
}

fn concurrent() -> impl Strategy<Value = Op> {
    // Ops that read before writing: writers only before a read (a write
    // after the last read is the documented gap).
    let reading = prop_oneof![
        (
            prop_oneof![pair().prop_map(Op::Add), pair().prop_map(Op::Remove)],
            proptest::collection::btree_set(0usize..4, 1..=2),
        )
            .prop_map(|(op, reads)| (op, reads.into_iter().map(Point::Read).collect())),
        // The guarded update reads once.
        replace(false).prop_map(|op| (op, vec![Point::Read(0)])),
    ];
    // Ops that do not read: writers before or after their write.
    let blind = (
        prop_oneof![replace(true), Just(Op::Meta)],
        prop_oneof![Just(Point::Write(0)), (0usize..2).prop_map(Point::Read)],
    )
        .prop_map(|(op, point)| (op, vec![point]));
    (
        prop_oneof![reading, blind],
        proptest::collection::vec(writer(), 2),
    )
        .prop_map(
            |((op, points), mut writers): ((Op, Vec<Point>), Vec<Writer>)| {
                writers.truncate(points.len());
                Op::Concurrent {
                    op: Box::new(op),
                    points,
                    writers,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => pair().prop_map(Op::Add),
        2 => pair().prop_map(Op::Remove),
        2 => replace(false),
        1 => replace(true),
        1 => Just(Op::Meta),
        4 => concurrent(),
    ]
}

fn case() -> impl Strategy<Value = (BTreeSet<Pair>, Vec<Op>)> {
    (
        proptest::collection::btree_set(pair(), 0..4),
        proptest::collection::vec(op(), 1..=12),
    )
}

// ---------------------------------------------------------------- model

struct Model {
    order_id: String,
    /// The pairs the order must have.
    expected: BTreeSet<Pair>,
    /// Every pair ever seen on the order.
    ever: BTreeSet<Pair>,
    /// Pairs whose latest fate is an explicit removal.
    removed: BTreeSet<Pair>,
    /// The order as read after the previous step.
    last: Value,
    step: usize,
}

impl Model {
    fn add(&mut self, p: &Pair) -> bool {
        self.removed.remove(p);
        self.expected.insert(p.clone())
    }

    fn remove_explicitly(&mut self, p: &Pair, this_step: &mut BTreeSet<Pair>) {
        self.expected.remove(p);
        self.removed.insert(p.clone());
        this_step.insert(p.clone());
    }
}

/// A fresh order number.
fn next_number() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(5000);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

async fn run_case(w: &World, initial: BTreeSet<Pair>, ops: Vec<Op>) {
    let order_id = w
        .create_order(
            &initial.iter().cloned().collect::<Vec<_>>(),
            json!({"step": 0}),
        )
        .await;
    // Give the first shipments some scan history to keep.
    w.tick().await;
    let last = w.order(&order_id).await;
    let mut m = Model {
        order_id,
        expected: initial.clone(),
        ever: initial,
        removed: BTreeSet::new(),
        last,
        step: 0,
    };
    let seen: BTreeSet<Pair> = shipments(&m.last).into_keys().collect();
    assert_eq!(seen, m.expected, "the order was created with its pairs");
    for op in &ops {
        m.step += 1;
        step(w, &mut m, op).await;
    }
}

/// Runs one op and checks the order afterwards.
async fn step(w: &World, m: &mut Model, op: &Op) {
    let (inner, points, writers): (&Op, &[Point], &[Writer]) = match op {
        Op::Concurrent {
            op,
            points,
            writers,
        } => (op, points, writers),
        other => (other, &[], &[]),
    };
    let id = m.order_id.clone();
    let meta = json!({"step": m.step});
    let mut sent_list: Option<BTreeSet<Pair>> = None;
    let (tool, arguments) = match inner {
        Op::Add(p) | Op::Remove(p) => {
            let mut a = pair_json(p);
            a["id"] = json!(id);
            let tool = if matches!(inner, Op::Add(_)) {
                "add_a_malomo_order_shipment"
            } else {
                "remove_a_malomo_order_shipment"
            };
            (tool, a)
        }
        Op::Replace { keep, extra, flag } => {
            let current: Vec<&Pair> = m.expected.iter().collect();
            let mut list: Vec<Pair> = current
                .iter()
                .enumerate()
                .filter(|(i, _)| match keep {
                    Keep::All => true,
                    Keep::Mask(bits) => bits & (1 << (i % 8)) != 0,
                })
                .map(|(_, p)| (*p).clone())
                .collect();
            for p in extra {
                if !list.contains(p) {
                    list.push(p.clone());
                }
            }
            sent_list = Some(list.iter().cloned().collect());
            let mut a = json!({
                "id": id,
                "meta": meta,
                "shipments": list.iter().map(pair_json).collect::<Vec<_>>(),
            });
            if *flag {
                a["remove_missing_shipments"] = json!(true);
            }
            ("update_a_malomo_order_by_id", a)
        }
        Op::Meta => (
            "update_a_malomo_order_by_id",
            json!({"id": id, "meta": meta}),
        ),
        Op::Concurrent { .. } => unreachable!("not generated nested"),
    };

    let (result, fired, trace) = w
        .call_with_writers(&id, tool, arguments.clone(), points, writers)
        .await;
    let context = format!(
        "step {} {op:?}\n  arguments {arguments}\n  upstream {trace:?}\n  result {}",
        m.step,
        text(&result)
    );

    let mut removed_now = BTreeSet::new();
    let mut changes = 0;
    for wr in &writers[..fired] {
        if m.add(&wr.pair) {
            changes += 1;
        }
    }
    let at_call = m.expected.clone();
    let message = text(&result);
    let conflict = is_error(&result) && message.starts_with("Conflict, nothing was changed");
    if conflict {
        assert!(
            matches!(inner, Op::Add(_) | Op::Remove(_)),
            "only add/remove report conflicts: {context}"
        );
        assert!(
            changes >= 2,
            "a conflict needs two concurrent changes, there were {changes}: {context}"
        );
    } else {
        match inner {
            Op::Add(p) => {
                assert!(!is_error(&result), "add failed: {context}");
                m.add(p);
            }
            Op::Remove(p) => {
                if at_call.contains(p) {
                    assert!(
                        !is_error(&result),
                        "remove of a present pair failed: {context}"
                    );
                    m.remove_explicitly(p, &mut removed_now);
                } else {
                    assert!(
                        is_error(&result) && message.starts_with("Nothing was changed"),
                        "remove of an absent pair must say nothing changed: {context}"
                    );
                }
            }
            Op::Replace { flag, .. } => {
                let list = sent_list.clone().expect("a list was sent");
                let dropped: BTreeSet<Pair> = at_call.difference(&list).cloned().collect();
                if !flag && !dropped.is_empty() {
                    assert!(
                        is_error(&result) && message.starts_with("Refused, nothing was changed"),
                        "an update dropping {} without the flag must be refused: {context}",
                        show(&dropped)
                    );
                    let listed: BTreeSet<Pair> = result
                        .meta
                        .as_ref()
                        .and_then(|m| m.0.get(malomo_mcp::mcp::handler::ERROR_META_KEY))
                        .and_then(|s| s["error"]["would_delete"].as_array())
                        .expect("would_delete in the refusal")
                        .iter()
                        .map(pair_of)
                        .collect();
                    assert_eq!(
                        listed, dropped,
                        "the refusal lists the dropped pairs: {context}"
                    );
                    for (c, t) in &dropped {
                        assert!(
                            message.contains(&format!("{c} {t}")),
                            "the refusal text names {c} {t}: {context}"
                        );
                    }
                } else {
                    assert!(!is_error(&result), "update failed: {context}");
                    for p in &dropped {
                        m.remove_explicitly(p, &mut removed_now);
                    }
                    for p in &list {
                        m.add(p);
                    }
                }
            }
            Op::Meta => assert!(!is_error(&result), "meta update failed: {context}"),
            Op::Concurrent { .. } => unreachable!(),
        }
    }
    {
        let mut st = w.stats.lock().expect("stats");
        st.steps += 1;
        st.writers_during_call += fired;
        st.writers_after_call += writers.len() - fired;
        st.conflicts += usize::from(conflict);
        st.refusals += usize::from(message.starts_with("Refused, nothing was changed"));
        st.removes_of_absent += usize::from(message.starts_with("Nothing was changed"));
        st.explicit_removals += removed_now.len();
    }
    // Writers whose point the call never reached write after it.
    for wr in &writers[fired..] {
        w.write_concurrently(&id, wr).await;
        m.add(&wr.pair);
    }

    let order = w.order(&id).await;
    let now = shipments(&order);
    let actual: BTreeSet<Pair> = now.keys().cloned().collect();

    // The invariant: nothing vanished without an explicit removal.
    // (The writers' pairs and the tools' additions were on the order.)
    m.ever.extend(m.expected.iter().cloned());
    let vanished: BTreeSet<Pair> = m
        .ever
        .iter()
        .filter(|p| !actual.contains(*p) && !m.removed.contains(*p))
        .cloned()
        .collect();
    assert!(
        vanished.is_empty(),
        "LOST without an explicit removal: {} — {context}\n  order {order}",
        show(&vanished)
    );
    assert_eq!(
        actual, m.expected,
        "the order's pairs differ from the model: {context}"
    );
    // Kept shipments keep their id and their history, byte for byte.
    let before = shipments(&m.last);
    for (p, s) in &now {
        if let Some(old) = before.get(p)
            && !removed_now.contains(p)
        {
            assert_eq!(s, old, "shipment {p:?} changed: {context}");
        }
    }
    // Meta follows successful updates; a refused one changed nothing.
    let updated = !is_error(&result) && matches!(inner, Op::Replace { .. } | Op::Meta);
    if updated {
        assert_eq!(
            order["meta"], meta,
            "meta of a successful update: {context}"
        );
    } else {
        assert_eq!(order["meta"], m.last["meta"], "meta unchanged: {context}");
    }
    if is_error(&result) && writers.is_empty() {
        assert_eq!(order, m.last, "a refused call changes nothing: {context}");
    }
    m.ever.extend(actual);
    m.last = order;
}

// ---------------------------------------------------------------- tests

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn a_shipment_disappears_only_when_a_call_removed_it() {
    let rt = runtime();
    let world = rt.block_on(World::start());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let outcome = runner.run(&case(), |(initial, ops)| {
        rt.block_on(run_case(&world, initial, ops));
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let stats = world.stats.lock().expect("stats");
    eprintln!("{cases} cases: {stats:?}");
    assert!(
        stats.writers_during_call > 0 && stats.refusals > 0 && stats.explicit_removals > 0,
        "the random runs exercised too little: {stats:?}"
    );
    drop(stats);
    rt.block_on(async {
        world.server.server.shutdown().await;
        world.sandbox.shutdown().await;
    });
}

fn key(carrier: &str, code: &str) -> Pair {
    (carrier.to_owned(), code.to_owned())
}

/// The one interleaving that is not safe, pinned: a write by someone else
/// between the tool's last read and its PUT is overwritten. Closing it needs
/// a conditional write upstream (ETag / If-Match) or an append endpoint,
/// which Malomo does not document. If this test starts failing because the
/// pair survived, the gap has been closed: turn it into a guarantee.
#[test]
fn known_gap_a_write_between_the_last_read_and_the_put_is_lost() {
    let rt = runtime();
    rt.block_on(async {
        let w = World::start().await;
        let (usps, ups, other) = (
            key("usps", "DE100"),
            key("ups", "DE200"),
            key("fedex", "DE300"),
        );
        for (tool, mut arguments) in [
            ("add_a_malomo_order_shipment", pair_json(&ups)),
            (
                "update_a_malomo_order_by_id",
                json!({"shipments": [pair_json(&usps), pair_json(&ups)]}),
            ),
        ] {
            let id = w.create_order(std::slice::from_ref(&usps), json!({})).await;
            arguments["id"] = json!(id);
            let writer = Writer {
                pair: other.clone(),
                via: Via::DirectPut,
            };
            let (result, fired, trace) = w
                .call_with_writers(&id, tool, arguments, &[Point::Write(0)], &[writer])
                .await;
            assert_eq!(fired, 1, "{tool}: the writer ran before the PUT: {trace:?}");
            assert!(!is_error(&result), "{tool}: {}", text(&result));
            let pairs = w.pairs(&id).await;
            assert!(
                !pairs.contains(&other),
                "{tool}: the concurrent pair survived a write after the last read; the gap is closed, make this a guarantee"
            );
            assert_eq!(pairs, [usps.clone(), ups.clone()].into(), "{tool}");
        }
    });
}

/// A concurrent write between the tool's first read and its re-check is
/// seen: the tool starts over and the other writer's pair stays. Two such
/// writes in a row make it give up with a conflict, writing nothing.
#[test]
fn add_and_remove_retry_once_then_report_a_conflict() {
    let rt = runtime();
    rt.block_on(async {
        let w = World::start().await;
        let (usps, ups) = (key("usps", "DE100"), key("ups", "DE200"));
        let writers = [
            Writer {
                pair: key("fedex", "DE300"),
                via: Via::DirectPut,
            },
            Writer {
                pair: key("dhl_express", "DE400"),
                via: Via::SecondClient,
            },
        ];
        for tool in [
            "add_a_malomo_order_shipment",
            "remove_a_malomo_order_shipment",
        ] {
            let adding = tool.starts_with("add");
            let initial: BTreeSet<Pair> = if adding {
                [usps.clone()].into()
            } else {
                [usps.clone(), ups.clone()].into()
            };
            let initial: Vec<Pair> = initial.into_iter().collect();
            // (writer points, writers that run, tool succeeds)
            let scenarios: [(&[Point], &[Writer], bool); 2] = [
                // One write between read and re-check: retried, both kept.
                (&[Point::Read(1)], &writers[..1], true),
                // A write before each re-check: conflict, nothing written.
                (&[Point::Read(1), Point::Read(3)], &writers, false),
            ];
            for (points, run, succeeds) in scenarios {
                let id = w.create_order(&initial, json!({})).await;
                let mut arguments = pair_json(&ups);
                arguments["id"] = json!(id);
                let (result, fired, trace) =
                    w.call_with_writers(&id, tool, arguments, points, run).await;
                let context = format!("{tool} {points:?}: {} {trace:?}", text(&result));
                assert_eq!(fired, run.len(), "{context}");
                assert_eq!(
                    trace.iter().filter(|t| t.ends_with("GET")).count(),
                    4,
                    "read and re-check, twice: {context}"
                );
                let mut want: BTreeSet<Pair> = initial.iter().cloned().collect();
                want.extend(run.iter().map(|wr| wr.pair.clone()));
                if succeeds {
                    assert!(!is_error(&result), "{context}");
                    if adding {
                        want.insert(ups.clone());
                    } else {
                        want.remove(&ups);
                    }
                } else {
                    assert!(
                        is_error(&result)
                            && text(&result).starts_with("Conflict, nothing was changed"),
                        "{context}"
                    );
                    assert!(
                        !trace.iter().any(|t| t == "PUT"),
                        "no write of its own after a conflict: {context}"
                    );
                }
                assert_eq!(w.pairs(&id).await, want, "{context}");
            }
        }
    });
}
