//! Requests that are not what they claim to be, answered with the JSON-RPC
//! error that says so: `-32700` for a body that is not JSON, `-32600` for
//! JSON that is not a JSON-RPC message, `-32602` for a known method whose
//! params do not fit it.
//!
//! rmcp reads a request whose params do not fit the method's type as a
//! custom request, and its default answer to that is "method not found"
//! (`-32601`, which its HTTP transport turns into a 404). And it answers a
//! body that is not JSON with 415, which is meant for a wrong
//! `Content-Type`. Both send a client looking for the wrong fault.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ErrorCode, GetPromptRequestParams};
use serde_json::{Value, json};

use crate::runtime::json_kind;

/// Methods rmcp has a type for: a request for one of them that reaches the
/// custom-request handler had params that do not fit.
const TYPED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/call",
    "tools/list",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
];

/// The `-32602` error for a typed method whose params did not fit, naming
/// the part at fault; `None` for a method rmcp has no type for.
pub(super) fn invalid_params(method: &str, params: Option<&Value>) -> Option<McpError> {
    if !TYPED_METHODS.contains(&method) {
        return None;
    }
    let problem = match method {
        "tools/call" => tools_call_problem(params),
        "prompts/get" => typed_problem::<GetPromptRequestParams>(params),
        _ => typed_problem::<Value>(params),
    };
    Some(McpError::invalid_params(
        format!("Invalid params for `{method}`: {problem}"),
        None,
    ))
}

/// Whether `method` is one that the 2026-07-28 revision removed (SEP-2575)
/// and the request declared that revision (or a later one) in its `_meta`:
/// rmcp routes such a stateless request to the custom-request handler on
/// purpose, and the answer is "method not found" (HTTP 404), not a params
/// fault.
pub(super) fn removed_for(method: &str, declared_version: Option<&str>) -> bool {
    const REMOVED: &[&str] = &[
        "initialize",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    ];
    REMOVED.contains(&method) && declared_version.is_some_and(|v| v >= "2026-07-28")
}

fn tools_call_problem(params: Option<&Value>) -> String {
    let Some(Value::Object(fields)) = params else {
        return format!(
            "`params` must be an object with `name` (the tool, a string) and `arguments` (an object), not {}",
            params.map_or("missing", json_kind)
        );
    };
    match fields.get("name") {
        None => return "`params.name` is missing: it names the tool to call".to_owned(),
        Some(Value::String(_)) => {}
        Some(other) => {
            return format!(
                "`params.name` must be a string (the tool's name), not {}",
                json_kind(other)
            );
        }
    }
    match fields.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return format!(
                "`params.arguments` must be an object of named arguments, not {}",
                json_kind(other)
            );
        }
    }
    typed_problem::<CallToolRequestParams>(params)
}

/// serde's own account of why `params` is not a `T`.
fn typed_problem<T: serde::de::DeserializeOwned>(params: Option<&Value>) -> String {
    match params.map(|p| serde_json::from_value::<T>(p.clone())) {
        Some(Err(e)) => e.to_string(),
        None => "`params` is missing".to_owned(),
        Some(Ok(_)) => "`params` does not match the method's schema".to_owned(),
    }
}

/// Why a body is not a JSON-RPC message: the JSON-RPC error to answer.
#[derive(Debug)]
pub(super) struct NotAMessage {
    id: Value,
    code: ErrorCode,
    message: String,
}

impl NotAMessage {
    /// The JSON-RPC error object of the answer.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code.0, "message": self.message },
        })
    }
}

impl IntoResponse for NotAMessage {
    /// HTTP 400 with the JSON-RPC error as the body.
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_json().to_string(),
        )
            .into_response()
    }
}

/// Reads a body as one JSON-RPC message, or says why it is not one.
pub(super) fn parse_message(body: &[u8]) -> Result<ClientJsonRpcMessage, NotAMessage> {
    let value: Value = serde_json::from_slice(body).map_err(|e| NotAMessage {
        id: Value::Null,
        code: ErrorCode::PARSE_ERROR,
        message: format!("Parse error: the body is not JSON ({e})"),
    })?;
    serde_json::from_value(value.clone()).map_err(|e| NotAMessage {
        id: value
            .get("id")
            .filter(|id| id.is_string() || id.is_number())
            .cloned()
            .unwrap_or(Value::Null),
        code: ErrorCode::INVALID_REQUEST,
        message: format!(
            "Invalid Request: the body is JSON but not a JSON-RPC 2.0 request, notification or response ({e})"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_removed_in_2026_07_28_stay_unknown_to_its_requests() {
        for method in ["initialize", "logging/setLevel", "resources/subscribe"] {
            assert!(removed_for(method, Some("2026-07-28")), "{method}");
            // Sessions of earlier revisions still have them.
            assert!(!removed_for(method, Some("2025-11-25")), "{method}");
            assert!(!removed_for(method, None), "{method}");
        }
        assert!(!removed_for("tools/call", Some("2026-07-28")));
    }

    fn message(params: Value) -> String {
        invalid_params("tools/call", Some(&params))
            .map(|e| {
                assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
                e.message.into_owned()
            })
            .unwrap_or_default()
    }

    #[test]
    fn malformed_tool_calls_name_the_part_at_fault() {
        assert!(message(json!({})).contains("`params.name` is missing"));
        assert!(message(json!({"name": 7})).contains("`params.name` must be a string"));
        assert!(
            message(json!({"name": "t", "arguments": [1, 2]}))
                .contains("`params.arguments` must be an object of named arguments, not an array")
        );
        assert!(
            message(json!({"name": "t", "arguments": "id=x"}))
                .contains("`params.arguments` must be an object of named arguments, not a string")
        );
        assert!(
            invalid_params("tools/call", None)
                .is_some_and(|e| e.message.contains("`params` must be an object"))
        );
        assert!(invalid_params("vendor/thing", None).is_none());
    }

    #[test]
    fn bodies_that_are_not_messages_get_parse_or_invalid_request_errors() {
        for (body, code) in [
            (&b"id=x"[..], -32700),
            (b"{\"jsonrpc\": \"2.0\",", -32700),
            (b"[1, 2]", -32600),
            (b"{\"id\": 3, \"method\": 5}", -32600),
            (b"{\"jsonrpc\": \"2.0\", \"id\": 3}", -32600),
        ] {
            let refusal = parse_message(body).expect_err("refused");
            assert_eq!(
                refusal.to_json()["error"]["code"],
                json!(code),
                "{refusal:?}"
            );
            assert_eq!(refusal.into_response().status(), StatusCode::BAD_REQUEST);
        }
        assert!(parse_message(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
    }
}
