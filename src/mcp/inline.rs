//! Stateless (2026-07-28) `tools/call` answered in-line.
//!
//! rmcp's Streamable HTTP transport serves a stateless request by starting a
//! whole MCP service for it: a service task, a task that waits for it, a
//! task for the handler and channels between them, then it reads the answer
//! back from a channel. On a multi-threaded runtime each of those hand-offs
//! may wake another worker, and `benches/proxy.rs` showed the server spending
//! most of its CPU per call there, not in the call (BENCHMARKS.md has the
//! figures). So the one request that carries the load, a well-formed
//! stateless `tools/call`, is answered here on the connection's own task,
//! with rmcp's own message types for the request and the answer.
//!
//! Everything else, and any request this path does not fully recognise, goes
//! to rmcp unchanged: sessions, other methods, an `Origin`, unusual headers,
//! a body rmcp's types do not parse, an unknown or filtered tool, task or
//! input-response fields. So every error answer still comes from rmcp, and
//! `tests/mcp.rs` checks that both paths answer the same bytes.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, JsonRpcVersion2_0, ProtocolVersion, RequestId,
    ServerJsonRpcMessage, ServerResult,
};

use super::guard::{HostPolicy, MAX_BODY_BYTES};
use super::handler::{McpHandler, Scope, rate_limit_headers};

const PROTOCOL: &str = "2026-07-28";

/// The one value of header `name`, if it has exactly one.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or("").trim()
}

/// Whether a request, by its method and headers alone, may be a plain
/// stateless `tools/call` for this path. Conservative: any doubt sends it
/// to rmcp.
pub(super) fn eligible(method: &Method, headers: &HeaderMap, hosts: HostPolicy<'_>) -> bool {
    if method != Method::POST
        || single(headers, "mcp-protocol-version") != Some(PROTOCOL)
        || single(headers, "mcp-method") != Some("tools/call")
        || single(headers, "mcp-name").is_none()
        || headers.contains_key("mcp-session-id")
        || headers.contains_key(header::ORIGIN)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
        || hosts.check(headers).is_err()
    {
        return false;
    }
    let json_body = single(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| essence(ct).eq_ignore_ascii_case("application/json"));
    let small = single(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|len| len.parse::<usize>().ok())
        .is_some_and(|len| len <= MAX_BODY_BYTES);
    // Both media types must be accepted, with no parameters (a `q=0`
    // would refuse one; leave such headers to rmcp).
    let accept = single(headers, header::ACCEPT.as_str()).unwrap_or("");
    let ranges: Vec<&str> = accept.split(',').map(str::trim).collect();
    let accepts = |wanted: &str| ranges.iter().any(|r| r.eq_ignore_ascii_case(wanted));
    json_body && small && accepts("application/json") && accepts("text/event-stream")
}

/// A JSON-RPC `tools/call` request, every part of it one of rmcp's types.
/// (rmcp's message type reads the same shape through `#[serde(flatten)]`,
/// which first buffers the whole body as untyped content.)
#[derive(serde::Deserialize)]
struct PlainCall<'a> {
    #[allow(dead_code)]
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
    params: CallToolRequestParams,
}

/// Answers `body` when it is a stateless `tools/call` this path serves;
/// `None` hands the request to rmcp (nothing has run yet then).
pub(super) async fn answer(
    handler: &McpHandler,
    scope: &Scope,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let PlainCall {
        id, method, params, ..
    } = serde_json::from_slice::<PlainCall>(body).ok()?;
    let meta = params.meta.as_ref()?;
    if method != "tools/call"
        || meta
            .protocol_version()
            .as_ref()
            .map(ProtocolVersion::as_str)
            != Some(PROTOCOL)
        || !meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty()
        || params.input_responses.is_some()
        || params.request_state.is_some()
        || single(headers, "mcp-name") != Some(params.name.as_ref())
    {
        return None;
    }
    let tool = McpHandler::allowed_tool(scope, &params.name).ok()?;

    let (result, rate_limited) = handler.run_tool(scope, tool, params.arguments).await;
    // The answer carries the text twice, once escaped (the text block) and
    // once as `structuredContent`: written once into a buffer of about that
    // size, rather than grown by doubling (a peak of up to 3x the answer
    // while the last doubling copies).
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.len())
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(2 * text + text / 8 + 256);
    let message =
        ServerJsonRpcMessage::response(ServerResult::from(CallToolResponse::from(result)), id);
    let mut response = match serde_json::to_writer(&mut bytes, &message) {
        Ok(()) => Response::new(Body::from(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a tool result");
            return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(rl) = rate_limited {
        rate_limit_headers(response.headers_mut(), rl);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::http::HttpOptions;

    fn options() -> HttpOptions {
        HttpOptions::local("http://127.0.0.1:8080")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const PLAIN: &[(&str, &str)] = &[
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("content-length", "200"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_current_malomo_account"),
    ];

    fn with(change: (&'static str, Option<&'static str>)) -> HeaderMap {
        let mut map = headers(PLAIN);
        match change {
            (name, Some(value)) => {
                map.append(name, HeaderValue::from_static(value));
            }
            (name, None) => {
                map.remove(name);
            }
        }
        map
    }

    #[test]
    fn a_plain_stateless_tool_call_is_served_in_line() {
        assert!(eligible(
            &Method::POST,
            &headers(PLAIN),
            options().host_policy()
        ));
        let charset = with(("content-type", None));
        let mut charset = charset;
        charset.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(eligible(&Method::POST, &charset, options().host_policy()));
    }

    #[test]
    fn anything_unusual_goes_to_rmcp() {
        assert!(!eligible(
            &Method::GET,
            &headers(PLAIN),
            options().host_policy()
        ));
        for change in [
            ("origin", Some("http://localhost:6274")),
            ("mcp-session-id", Some("abc")),
            ("mcp-param-region", Some("us")),
            // Duplicated routing headers.
            ("mcp-method", Some("tools/call")),
            ("mcp-name", Some("other")),
            ("mcp-protocol-version", Some("2026-07-28")),
            // Missing ones.
            ("mcp-method", None),
            ("mcp-name", None),
            ("mcp-protocol-version", None),
            ("content-length", None),
            ("accept", None),
            ("content-type", None),
        ] {
            assert!(
                !eligible(&Method::POST, &with(change), options().host_policy()),
                "{change:?}"
            );
        }
        for (name, value) in [
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/list"),
            ("content-type", "text/plain"),
            ("content-length", "1048577"),
            ("accept", "application/json"),
            ("accept", "application/json, text/event-stream;q=0"),
            ("host", "evil.example"),
        ] {
            let mut map = headers(PLAIN);
            map.insert(name, HeaderValue::from_static(value));
            assert!(
                !eligible(&Method::POST, &map, options().host_policy()),
                "{name}: {value}"
            );
        }
    }
}
