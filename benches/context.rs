//! Context budget: `cargo bench --bench context`.
//!
//! What the seed's two workflows cost a model, in bytes, through
//! malomo-mcp on a fresh sandbox (demo data, seed 1):
//!
//! 1. **lost package** (the `trace_lost_package` prompt): the orders of
//!    `sarah.smith@example.com`, then every page of the latest order's
//!    timeline;
//! 2. **webhook audit** (`ensure_exception_webhook_at_url`) on an account that
//!    already has [`WEBHOOKS`] (a merchant's realistic set, made directly on
//!    the sandbox before the workflow, the same for every server measured):
//!    the webhooks for `shipment.exception` at the URL, as the prompt says
//!    (the list's `topic` and `url` match inputs), then the webhook created
//!    because none matches.
//!
//! Each workflow runs twice: with the tools' defaults (what a model gets
//! without asking), and as before issue 15: `fields: ["*"]` on every get
//! and list call (what each call answered before field projection), and
//! the webhook audit reading every webhook (there were no match inputs). Per
//! step it records the bytes of the result's text blocks (what the model
//! reads) and of the whole JSON-RPC result (text + `structuredContent`, on
//! the wire), and it checks that the workflow's answer is in what the model
//! read. It also measures `tools/list`: the model-facing bytes (name +
//! description + compact `inputSchema` of every tool) and the whole answer.
//!
//! With `FASTMCP_PYTHON` set to a Python that has `fastmcp` installed
//! (`scripts/fastmcp-workflows.sh` makes one), the same workflows also run
//! through FastMCP's `from_openapi` on `generated/openapi.json`, against
//! another fresh sandbox with the same seed, and the table gets its column.

use std::net::SocketAddr;
use std::time::Duration;

use malomo_mcp::sandbox::{self, DEMO_EMAIL, SandboxConfig, SandboxHandle};
use malomo_mcp::serve::{self, ServeOptions, Upstream};
use serde_json::{Value, json};

const HOOK_URL: &str = "https://support.example.com/hooks/malomo-exceptions";

/// A merchant's webhooks before the audit (url, topic, active): an ERP, a
/// marketing tool, a data pipeline, a returns app, a Slack relay that
/// already gets exceptions (another URL), the support desk getting
/// deliveries (the audited URL, another topic), and a retired endpoint.
const WEBHOOKS: &[(&str, &str, bool)] = &[
    (
        "https://erp.acme-outdoor.com/webhooks/malomo",
        "order.created",
        true,
    ),
    (
        "https://erp.acme-outdoor.com/webhooks/malomo",
        "order.updated",
        true,
    ),
    (
        "https://erp.acme-outdoor.com/webhooks/malomo",
        "shipment.created",
        true,
    ),
    (
        "https://a.klaviyo-example.com/hooks/malomo/3f9c2",
        "shipment.updated",
        true,
    ),
    (
        "https://a.klaviyo-example.com/hooks/malomo/3f9c2",
        "shipment.delivered",
        true,
    ),
    (
        "https://ingest.segment-example.com/v1/webhooks/malomo",
        "events:created",
        true,
    ),
    (
        "https://returns.loop-example.com/hooks/malomo",
        "return.created",
        true,
    ),
    (
        "https://hooks.slack-example.com/services/T024BE7LD/B08C4H1",
        "shipment.exception",
        true,
    ),
    (HOOK_URL, "shipment.delivered", true),
    (
        "https://old-erp.acme-outdoor.com/malomo",
        "shipment.updated",
        false,
    ),
    (
        "https://old-erp.acme-outdoor.com/malomo",
        "order.created",
        false,
    ),
    (
        "https://status.acme-outdoor.com/api/carrier-events",
        "shipment.updated",
        true,
    ),
];

/// Makes [`WEBHOOKS`] on the sandbox directly (not through a server
/// measured).
async fn seed_webhooks(sandbox: &SandboxHandle) {
    let http = reqwest::Client::new();
    for (i, (url, topic, active)) in WEBHOOKS.iter().enumerate() {
        let status = http
            .post(format!("{}/webhooks", sandbox.base_url()))
            .bearer_auth(sandbox.secret_key())
            .json(&json!({"url": url, "topic": topic, "active": active, "secret": format!("whsec_bench_{i:04}")}))
            .send()
            .await
            .expect("POST /webhooks")
            .status();
        assert!(status.is_success(), "{url} {topic}: {status}");
    }
}

fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        seed: 1,
        rate_burst: 1_000_000,
        rate_per_sec: 1_000_000.0,
        tick_interval: None,
        ..SandboxConfig::default()
    }
}

async fn fresh_sandbox() -> SandboxHandle {
    sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), sandbox_config())
        .await
        .expect("sandbox starts")
}

/// One measured call.
#[derive(Debug, Clone)]
struct Step {
    workflow: &'static str,
    step: String,
    /// Bytes of the text blocks: what the model reads.
    model: usize,
    /// Bytes of the whole JSON-RPC `result`.
    wire: usize,
}

struct Mcp {
    http: reqwest::Client,
    url: String,
    steps: Vec<Step>,
    /// Ask for every field (`fields: ["*"]`) on get and list calls.
    everything: bool,
}

impl Mcp {
    async fn post(&self, method: &str, name: Option<&str>, params: Value) -> Value {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "context-bench", "version": "1"}
        });
        let answer: Value = request
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON-RPC answer");
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method}: {answer}"))
    }

    /// Calls a tool, records its bytes, returns its structured content.
    async fn call(&mut self, workflow: &'static str, tool: &str, arguments: Value) -> Value {
        let mut arguments = arguments;
        let projected = malomo_mcp::catalog::tool(tool).is_some_and(|t| t.projection.is_some());
        if self.everything && projected {
            arguments["fields"] = json!(["*"]);
        }
        let result = self
            .post(
                "tools/call",
                Some(tool),
                json!({"name": tool, "arguments": arguments}),
            )
            .await;
        assert_ne!(result["isError"], json!(true), "{tool}: {result}");
        let text: usize = result["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b["text"].as_str())
                    .map(str::len)
                    .sum()
            })
            .unwrap_or(0);
        self.steps.push(Step {
            workflow,
            step: tool.to_owned(),
            model: text,
            wire: serde_json::to_string(&result).map_or(0, |s| s.len()),
        });
        result["structuredContent"].clone()
    }

    /// Every page of a list tool.
    async fn pages(&mut self, workflow: &'static str, tool: &str, arguments: Value) -> Vec<Value> {
        let mut items = Vec::new();
        let mut arguments = arguments;
        for _ in 0..100 {
            let page = self.call(workflow, tool, arguments.clone()).await;
            items.extend(page["items"].as_array().into_iter().flatten().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => arguments["next_cursor"] = json!(cursor),
                None => return items,
            }
        }
        panic!("{tool}: more than 100 pages");
    }

    /// Model-facing bytes of `tools/list` (name + description + compact
    /// input schema of every tool) and of the whole result.
    async fn catalog(&self) -> (usize, usize, usize) {
        let result = self.post("tools/list", None, json!({})).await;
        let tools = result["tools"].as_array().cloned().unwrap_or_default();
        let model = tools
            .iter()
            .map(|t| {
                t["name"].as_str().map_or(0, str::len)
                    + t["description"].as_str().map_or(0, str::len)
                    + serde_json::to_string(&t["inputSchema"]).map_or(0, |s| s.len())
            })
            .sum();
        let wire = serde_json::to_string(&result).map_or(0, |s| s.len());
        (tools.len(), model, wire)
    }
}

/// Workflow 1; returns what the agent reports (carrier, tracking code,
/// status, status detail, city).
async fn lost_package(mcp: &mut Mcp) -> Vec<String> {
    const W: &str = "lost package";
    let orders = mcp
        .call(
            W,
            "list_all_malomo_orders",
            json!({"customer_email": DEMO_EMAIL}),
        )
        .await;
    let order = &orders["items"][0];
    let id = order["id"]
        .as_str()
        .expect("the latest order has an id")
        .to_owned();
    let shipment = order["shipments"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["status"] == json!("failure")))
        .cloned()
        .expect("a shipment in failure");
    let events = mcp
        .pages(W, "list_all_malomo_order_events", json!({"order_id": id}))
        .await;
    let scan = events
        .iter()
        .filter(|e| e["properties"]["tracking_code"] == shipment["tracking_code"])
        .max_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()))
        .map(|e| e["properties"].clone())
        .expect("a timeline event for the shipment");
    [
        &shipment["carrier"],
        &shipment["tracking_code"],
        &shipment["status"],
        &scan["status_detail"],
        &scan["location"]["city"],
    ]
    .iter()
    .map(|v| v.as_str().unwrap_or("?").to_owned())
    .collect()
}

/// Workflow 2; returns the id of the webhook that receives exceptions.
async fn webhook_audit(mcp: &mut Mcp) -> String {
    const W: &str = "webhook audit";
    let filters = if mcp.everything {
        json!({})
    } else {
        json!({"topic": "shipment.exception", "url": HOOK_URL})
    };
    let hooks = mcp.pages(W, "list_all_malomo_webhooks", filters).await;
    let existing = hooks
        .iter()
        .find(|h| h["url"] == json!(HOOK_URL) && h["topic"] == json!("shipment.exception"));
    if let Some(hook) = existing {
        return hook["id"].as_str().unwrap_or("?").to_owned();
    }
    let created = mcp
        .call(
            W,
            "create_a_malomo_webhook",
            json!({"url": HOOK_URL, "topic": "shipment.exception"}),
        )
        .await;
    created["id"]
        .as_str()
        .expect("created webhook id")
        .to_owned()
}

async fn run_mcp(everything: bool) -> (Vec<Step>, Vec<String>, (usize, usize, usize)) {
    let sandbox = fresh_sandbox().await;
    seed_webhooks(&sandbox).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve::start(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: dir.path().join("bench.db"),
        public_url: None,
        allowed_hosts: Vec::new(),
        upstream: Upstream::Remote {
            api_key: sandbox.secret_key().to_owned(),
            base_url: sandbox.base_url(),
        },
        admin_token: None,
        upstream_timeout: Duration::from_secs(10),
        max_upstream_body: malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY,
        limits: Default::default(),
        node_name: None,
        sweep_every: Duration::from_secs(15),
        inbox: Default::default(),
    })
    .await
    .expect("server starts");
    let mut mcp = Mcp {
        http: reqwest::Client::new(),
        url: server.mcp_url.clone(),
        steps: Vec::new(),
        everything,
    };
    let answer = lost_package(&mut mcp).await;
    webhook_audit(&mut mcp).await;
    let catalog = mcp.catalog().await;
    server.shutdown().await;
    (mcp.steps, answer, catalog)
}

/// The same workflows through FastMCP, when `FASTMCP_PYTHON` is set.
async fn run_fastmcp() -> Option<(Vec<Step>, String, usize)> {
    let python = std::env::var("FASTMCP_PYTHON").ok()?;
    let sandbox = fresh_sandbox().await;
    seed_webhooks(&sandbox).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fastmcp_workflows.py");
    let openapi = concat!(env!("CARGO_MANIFEST_DIR"), "/generated/openapi.json");
    let args = [
        script.to_owned(),
        openapi.to_owned(),
        sandbox.base_url(),
        sandbox.secret_key().to_owned(),
        DEMO_EMAIL.to_owned(),
        HOOK_URL.to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python).args(args).output()
    })
    .await
    .expect("the script's task")
    .expect("runs the FastMCP script");
    assert!(
        output.status.success(),
        "FastMCP script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let steps = report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Step {
            workflow: if s["workflow"] == json!("lost package") {
                "lost package"
            } else {
                "webhook audit"
            },
            step: s["step"].as_str().unwrap_or("?").to_owned(),
            model: s["model"].as_u64().unwrap_or(0) as usize,
            wire: s["wire"].as_u64().unwrap_or(0) as usize,
        })
        .collect();
    Some((
        steps,
        report["versions"].as_str().unwrap_or("?").to_owned(),
        report["catalog_model"].as_u64().unwrap_or(0) as usize,
    ))
}

fn total(steps: &[Step], workflow: &str) -> (usize, usize, usize) {
    steps
        .iter()
        .filter(|s| s.workflow == workflow)
        .fold((0, 0, 0), |(n, m, w), s| (n + 1, m + s.model, w + s.wire))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    malomo_mcp::install_crypto_provider();
    let (compact, answer, catalog) = run_mcp(false).await;
    let (full, full_answer, _) = run_mcp(true).await;
    assert_eq!(
        answer, full_answer,
        "the defaults lose nothing the workflow needs"
    );
    println!("lost package answer: {}", answer.join(", "));
    println!("\nper step (defaults): model bytes / wire bytes");
    for s in &compact {
        println!(
            "  {:<14} {:<32} {:>7} {:>7}",
            s.workflow, s.step, s.model, s.wire
        );
    }
    let fastmcp = run_fastmcp().await;
    if let Some((steps, versions, _)) = &fastmcp {
        println!("\nper step (FastMCP {versions}): model bytes / wire bytes");
        for s in steps {
            println!(
                "  {:<14} {:<32} {:>7} {:>7}",
                s.workflow, s.step, s.model, s.wire
            );
        }
    }
    println!(
        "\n| workflow | calls | malomo-mcp defaults: model (wire) | before issue 15 (every field): model (wire) | ratio | FastMCP: model (wire) |"
    );
    println!("|---|---|---|---|---|---|");
    for workflow in ["lost package", "webhook audit"] {
        let (calls, model, wire) = total(&compact, workflow);
        let (_, full_model, full_wire) = total(&full, workflow);
        let fast = fastmcp
            .as_ref()
            .map_or("not run".to_owned(), |(steps, _, _)| {
                let (n, m, w) = total(steps, workflow);
                format!("{m} ({w}), {n} calls")
            });
        println!(
            "| {workflow} | {calls} | {model} ({wire}) | {full_model} ({full_wire}) | {:.2} | {fast} |",
            model as f64 / full_model.max(1) as f64
        );
    }
    let (tools, model, wire) = catalog;
    let fast = fastmcp
        .as_ref()
        .map_or("not run".to_owned(), |(_, _, m)| m.to_string());
    println!(
        "\ntools/list: {tools} tools, {model} model-facing bytes (whole answer {wire}); FastMCP: {fast}"
    );
}
