//! Hostile tool input: path arguments that try to leave their template,
//! values that break their declared `format`, cursors used elsewhere than
//! where they were made.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use malomo_mcp::catalog;
use malomo_mcp::runtime::{Account, CursorCodec, Runtime};
use malomo_mcp::sandbox::DEMO_EMAIL;
use malomo_mcp::serve::Upstream;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::support::{
    call, ok, quiet_sandbox, start_server, start_server_with, stateless_client, tool_error,
};

/// An upstream that answers `{}` to everything and records the raw request
/// target (method and path exactly as they arrived on the wire).
struct RecordingUpstream {
    base_url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingUpstream {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let log = log.clone();
            async move {
                if let Ok(mut log) = log.lock() {
                    log.push(format!("{} {}", request.method(), request.uri().path()));
                }
                ([("content-type", "application/json")], "{}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().expect("log"))
    }

    fn upstream(&self) -> Upstream {
        Upstream::Remote {
            api_key: "sk_abuse_input".into(),
            base_url: self.base_url.clone(),
        }
    }
}

#[tokio::test]
async fn dot_segments_are_refused_before_any_upstream_call() {
    let upstream = RecordingUpstream::start().await;
    let server = start_server_with(upstream.upstream(), None).await;
    let client = stateless_client(server.url()).await;
    for (tool, field, arguments) in [
        // Was `DELETE /` with the account's secret key.
        ("delete_a_malomo_webhook_by_id", "id", json!({"id": ".."})),
        // Was `GET /orders/`.
        ("get_single_malomo_order_by_id", "id", json!({"id": "."})),
        // Was `GET /events`, outside a server limited to orders.
        (
            "list_all_malomo_order_events",
            "order_id",
            json!({"order_id": ".."}),
        ),
        ("get_single_malomo_order_by_id", "id", json!({"id": ""})),
    ] {
        let error = tool_error(&client, tool, arguments.clone()).await;
        assert!(
            error.contains(&format!("`{field}`")),
            "{tool}({arguments}): {error}"
        );
        assert_eq!(upstream.take(), Vec::<String>::new(), "{tool}({arguments})");
    }
    // Encoded dots and slashes are one literal segment, not a way out.
    call(
        &client,
        "delete_a_malomo_webhook_by_id",
        json!({"id": "%2e%2e"}),
    )
    .await;
    call(
        &client,
        "get_single_malomo_order_by_id",
        json!({"id": "../webhooks"}),
    )
    .await;
    assert_eq!(
        upstream.take(),
        vec![
            "DELETE /webhooks/%252e%252e".to_owned(),
            "GET /orders/..%2Fwebhooks".to_owned()
        ]
    );
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

/// Strings built from the characters that matter in a URL path, plus any
/// string at all.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%".to_owned()),
        Just(";".to_owned()),
        Just("\0".to_owned()),
        Just(" ".to_owned()),
        Just("é".to_owned()),
        Just("\u{ff0e}".to_owned()),
        Just("ord_1".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

/// Undoes percent-encoding; `None` when the text is not a valid encoding.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[test]
fn any_path_argument_is_exactly_one_segment_or_no_request() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let upstream = rt.block_on(RecordingUpstream::start());
    let runtime = Runtime::new(Duration::from_secs(5), CursorCodec::random()).expect("runtime");
    let account = Account {
        base_url: upstream.base_url.clone(),
        api_key: "sk_abuse_input".into(),
        id: None,
    };
    let get = catalog::tool("get_single_malomo_order_by_id").expect("tool");
    let events = catalog::tool("list_all_malomo_order_events").expect("tool");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::cell::Cell::new(0usize);
    let outcome = runner.run(&hostile_text(), |value| {
        for (tool, field, prefix, suffix) in [
            (get, "id", "GET /orders/", ""),
            (events, "order_id", "GET /orders/", "/events"),
        ] {
            let mut arguments = Map::new();
            arguments.insert(field.to_owned(), Value::String(value.clone()));
            let outcome = rt.block_on(runtime.call("srv_test", &account, tool, Some(arguments)));
            let seen = upstream.take();
            match seen.as_slice() {
                [] => prop_assert!(
                    outcome.is_error && outcome.text.contains(&format!("`{field}`")),
                    "no request, yet no error naming `{field}`: {}",
                    outcome.text
                ),
                [line] => {
                    sent.set(sent.get() + 1);
                    let segment = line
                        .strip_prefix(prefix)
                        .and_then(|rest| rest.strip_suffix(suffix))
                        .unwrap_or_else(|| panic!("{value:?} reached {line}"));
                    prop_assert!(!segment.contains('/'), "{value:?} reached {line}");
                    prop_assert!(segment != "." && segment != "..", "{line}");
                    prop_assert_eq!(
                        percent_decode(segment),
                        Some(value.as_bytes().to_vec()),
                        "{} is not {:?}",
                        line,
                        value
                    );
                }
                more => prop_assert!(false, "{value:?} made {more:?}"),
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(
        sent.get() > 0,
        "no generated value ever reached the upstream"
    );
}

#[tokio::test]
async fn values_that_break_their_format_reach_no_upstream() {
    let upstream = RecordingUpstream::start().await;
    let server = start_server_with(upstream.upstream(), None).await;
    let client = stateless_client(server.url()).await;
    for (tool, field, arguments) in [
        (
            "list_all_malomo_orders",
            "customer_email",
            json!({"customer_email": "not-an-email"}),
        ),
        (
            "create_a_malomo_webhook",
            "url",
            json!({"url": "not a url", "topic": "order.created"}),
        ),
    ] {
        let error = tool_error(&client, tool, arguments.clone()).await;
        assert!(
            error.contains(&format!("`{field}`")) && error.contains("format"),
            "{tool}({arguments}): {error}"
        );
        assert_eq!(upstream.take(), Vec::<String>::new(), "{tool}({arguments})");
    }
    // Well-formed values still go through.
    call(
        &client,
        "list_all_malomo_orders",
        json!({"customer_email": "sarah@example.com"}),
    )
    .await;
    assert_eq!(upstream.take().len(), 1);
    let _ = client.cancel().await;
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_cursor_works_only_for_its_server_tool_and_filters() {
    use malomo_mcp::access::ToolFilter;
    use malomo_mcp::store::NewServer;
    // Server A: the default one, on the sandbox.
    let server = start_server(quiet_sandbox()).await;
    let a = stateless_client(server.url()).await;
    let first = ok(
        &a,
        "list_all_malomo_orders",
        json!({"customer_email": DEMO_EMAIL, "limit": 1}),
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page of the demo customer's orders")
        .to_owned();
    // Same server, tool and filters: the next page, whatever the limit.
    ok(
        &a,
        "list_all_malomo_orders",
        json!({"limit": 2, "next_cursor": cursor, "customer_email": DEMO_EMAIL}),
    )
    .await;

    // Server B: another account (its own key and upstream) in the same
    // process.
    let upstream = RecordingUpstream::start().await;
    let store = &server.server.store;
    let account = store
        .create_account("other", "sk_other_account", &upstream.base_url)
        .expect("account");
    let created = store
        .create_server(
            &account.id,
            NewServer {
                name: "b".into(),
                filter: ToolFilter::all(),
                require_api_token_auth: false,
                expires_at: None,
                answer_budget: None,
            },
        )
        .expect("server");
    let b = stateless_client(&format!("{}/mcp/{}", server.base(), created.token)).await;
    let error = tool_error(
        &b,
        "list_all_malomo_orders",
        json!({"customer_email": DEMO_EMAIL, "next_cursor": cursor}),
    )
    .await;
    assert!(error.contains("another MCP server"), "{error}");
    assert_eq!(upstream.take(), Vec::<String>::new());

    // On A, with other filters or another tool.
    for (tool, arguments, words) in [
        (
            "list_all_malomo_orders",
            json!({"customer_email": "someone.else@example.com", "next_cursor": cursor}),
            "other filter arguments",
        ),
        (
            "list_all_malomo_orders",
            json!({"next_cursor": cursor}),
            "other filter arguments",
        ),
        (
            "list_all_malomo_customers",
            json!({"next_cursor": cursor}),
            "issued by the tool `list_all_malomo_orders`",
        ),
    ] {
        let error = tool_error(&a, tool, arguments.clone()).await;
        assert!(error.contains(words), "{tool}({arguments}): {error}");
    }
    let _ = a.cancel().await;
    let _ = b.cancel().await;
    server.server.shutdown().await;
}

/// An upstream whose every answer is a JSON array of `total` bytes, sent in
/// 64 KiB chunks (with a Content-Length when `announce`); it counts the
/// bytes it managed to hand to the connection.
async fn huge_upstream(total: usize, announce: bool) -> (String, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            const CHUNK: usize = 64 * 1024;
            let item =
                br#"{"id":"ord_0000000000","number":"1001","customer_email":"a@example.com"},"#;
            let chunks = total.div_ceil(CHUNK);
            let stream = futures::stream::iter(0..chunks).map(move |i| {
                let len = CHUNK.min(total - i * CHUNK);
                let mut chunk: Vec<u8> = item.iter().copied().cycle().take(len).collect();
                if i == 0 {
                    chunk[0] = b'[';
                }
                if i + 1 == chunks {
                    chunk[len - 1] = b']';
                }
                counter.fetch_add(len, Ordering::SeqCst);
                Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
            });
            let mut response = axum::response::Response::new(axum::body::Body::from_stream(stream));
            response.headers_mut().insert(
                "content-type",
                axum::http::HeaderValue::from_static("application/json"),
            );
            if announce {
                response.headers_mut().insert(
                    "content-length",
                    axum::http::HeaderValue::from(total as u64),
                );
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base_url, sent)
}

#[tokio::test]
async fn a_50_mb_upstream_answer_is_a_tool_error_and_is_not_buffered() {
    const HUGE: usize = 50 * 1024 * 1024;
    for announce in [false, true] {
        let (base_url, sent) = huge_upstream(HUGE, announce).await;
        let server = start_server_with(
            Upstream::Remote {
                api_key: "sk_abuse_input".into(),
                base_url,
            },
            None,
        )
        .await;
        let client = stateless_client(server.url()).await;
        let error = tool_error(&client, "list_all_malomo_orders", json!({"limit": 100})).await;
        assert!(
            error.contains("larger than this server's limit of 4 MiB")
                && error.contains("smaller `limit`"),
            "{error}"
        );
        if announce {
            assert!(error.contains("announced 50 MiB"), "{error}");
        }
        // The connection was dropped at the cap: the rest was never read.
        // (Socket buffers hold some megabytes on top of the cap.)
        let sent = sent.load(Ordering::SeqCst);
        assert!(sent < HUGE / 2, "{sent} of {HUGE} bytes were sent");
        let _ = client.cancel().await;
        server.server.shutdown().await;
    }
}
