//! One URL's traffic cannot take another's turn: each provisioned server
//! has a request rate (a token bucket) and a cap on its requests in
//! flight. Over either, its requests get HTTP 429 with `Retry-After` and a
//! JSON-RPC error, while another URL of the same process is served. Every
//! loop is bounded and the limits are small enough to reach in a few
//! requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use malomo_mcp::limits::Limits;
use malomo_mcp::serve::Upstream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::limits::{http, second_url};
use crate::support::{quiet_sandbox, start_server_limited};

/// A stateless (2026-07-28) request: `tools/list`, or `tools/call` of `tool`.
fn stateless(http: &reqwest::Client, url: &str, tool: Option<&str>) -> reqwest::RequestBuilder {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "abuse", "version": "1"}
    });
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28");
    match tool {
        None => request.header("mcp-method", "tools/list").json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}),
        ),
        Some(name) => request
            .header("mcp-method", "tools/call")
            .header("mcp-name", name)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": name, "arguments": {}, "_meta": meta}})),
    }
}

/// Checks a refusal for being over a per-server limit; its `Retry-After`.
async fn assert_refused(answer: reqwest::Response, words: &str) -> u64 {
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: Value = answer.json().await.expect("a JSON-RPC error");
    assert_eq!(error["jsonrpc"], "2.0");
    assert_eq!(error["error"]["code"], -32000, "{error}");
    assert_eq!(
        error["error"]["data"]["retry_after"], retry_after,
        "{error}"
    );
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message}");
    retry_after
}

#[tokio::test]
async fn a_url_over_its_request_rate_is_refused_while_another_url_is_served() {
    let server = start_server_limited(
        Upstream::Sandbox(quiet_sandbox()),
        None,
        Limits {
            requests_per_second_per_server: 1,
            request_burst_per_server: 4,
            ..Limits::default()
        },
    )
    .await;
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "quiet");
    let initialize = |url: &str| {
        http.post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "abuse", "version": "1"}}}),
            )
    };

    // The flood, stateless calls and new sessions in turn: the burst is
    // served, then the requests are refused but for what refills (one per
    // second; each refusal is answered after a short delay, so a client
    // that ignores Retry-After cannot spin).
    let (mut served, mut refused) = (0, [0, 0]);
    let mut retry_after = 0;
    let started = Instant::now();
    for n in 0..14 {
        let request = if n % 2 == 0 {
            stateless(&http, &a, None)
        } else {
            initialize(&a)
        };
        let answer = request.send().await.expect("send");
        if answer.status() == StatusCode::OK {
            served += 1;
        } else {
            retry_after = assert_refused(answer, "request rate limit (1 per second").await;
            refused[n % 2] += 1;
        }
    }
    let refilled = started.elapsed().as_secs_f64().ceil() as usize;
    assert!(
        (4..=4 + refilled).contains(&served),
        "{served} served in {:?}",
        started.elapsed()
    );
    assert!(
        refused[0] > 0 && refused[1] > 0,
        "both kinds refused: {refused:?}"
    );
    assert_eq!(retry_after, 1);

    // Another URL of the same process has its own share, at once.
    for n in 0..4 {
        let request = if n % 2 == 0 {
            stateless(&http, &b, None)
        } else {
            initialize(&b)
        };
        assert_eq!(request.send().await.expect("send").status(), StatusCode::OK);
    }

    // After Retry-After, A is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let answer = stateless(&http, &a, None).send().await.expect("send");
    assert_eq!(answer.status(), StatusCode::OK);
    server.server.shutdown().await;
}

/// An upstream that holds every request until `release` passes, counting
/// the requests it is holding.
async fn slow_upstream(hold: Duration) -> (String, Arc<AtomicUsize>) {
    let holding = Arc::new(AtomicUsize::new(0));
    let counter = holding.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(hold).await;
            counter.fetch_sub(1, Ordering::SeqCst);
            (
                [("content-type", "application/json")],
                r#"{"id":"acc_1","name":"Slow"}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, holding)
}

#[tokio::test]
async fn requests_in_flight_are_capped_per_url() {
    let (upstream, holding) = slow_upstream(Duration::from_secs(2)).await;
    let server = start_server_limited(
        Upstream::Remote {
            api_key: "sk_fairness".into(),
            base_url: upstream,
        },
        None,
        Limits {
            in_flight_per_server: 2,
            ..Limits::default()
        },
    )
    .await;
    let http = http();
    let a = server.url().to_owned();
    let b = second_url(&server, "quiet");

    let slow = |url: &str| {
        let pending = stateless(&http, url, Some("get_current_malomo_account")).send();
        tokio::spawn(async move { pending.await.expect("send").status() })
    };
    let (first, second) = (slow(&a), slow(&a));
    let until = Instant::now() + Duration::from_secs(5);
    while holding.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < until,
            "the two calls never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A third call at A while two are in flight: refused at once.
    let sent = Instant::now();
    let third = stateless(&http, &a, Some("get_current_malomo_account"))
        .send()
        .await
        .expect("send");
    assert_refused(third, "2 requests in progress").await;
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "refused without waiting"
    );
    // Another URL is served meanwhile.
    let answer = stateless(&http, &b, None).send().await.expect("send");
    assert_eq!(answer.status(), StatusCode::OK);

    // The two calls finish normally, and A has its places back.
    for call in [first, second] {
        assert_eq!(call.await.expect("task"), StatusCode::OK);
    }
    let answer = stateless(&http, &a, None).send().await.expect("send");
    assert_eq!(answer.status(), StatusCode::OK);
    server.server.shutdown().await;
}
