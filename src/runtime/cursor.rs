//! Opaque, tamper-evident list cursors.
//!
//! A cursor carries the upstream's own paging parameters (e.g. `next=...`
//! taken from a `Link: <...>; rel="next"` header) plus what it was made
//! for: the provisioned MCP server, the tool and a digest of the filter
//! arguments, base64url-encoded and followed by a truncated HMAC-SHA256. A
//! model that edits, truncates or forges a cursor, or uses it with another
//! server, tool or filters, gets a clear error before any upstream call.
//! (The upstream's paging parameters may be valid with any key, so a cursor
//! of one server would otherwise page through another account.)
//!
//! The key comes from the store, so every node sharing a store accepts the
//! cursors of the others; the binding is inside the signed payload.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How many bytes of the MAC a cursor carries (128 bits).
const MAC_LEN: usize = 16;

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error(
        "`next_cursor` is not a cursor this server issued (it was changed or truncated); pass back the `next_cursor` value exactly as a previous call of this tool returned it, or omit it to start from the first page"
    )]
    Invalid,
    #[error(
        "`next_cursor` was issued by the tool `{0}`, not this one; pass it back to that tool, or omit it to start from the first page"
    )]
    WrongTool(String),
    #[error(
        "`next_cursor` was issued by another MCP server and is not valid here; omit it to start from the first page"
    )]
    WrongServer,
    #[error(
        "`next_cursor` was issued for other filter arguments; repeat the first page's filters unchanged with it (only `limit` and `fields` may change), or omit it to start from the first page"
    )]
    WrongFilters,
}

/// What a cursor is bound to: it is valid only for the same server, tool
/// and filter arguments.
#[derive(Debug, Clone, Copy)]
pub struct CursorScope<'a> {
    /// The provisioned MCP server's id (`stdio` for stdio).
    pub server: &'a str,
    pub tool: &'a str,
    /// [`filter_digest`] of the call's arguments.
    pub filters: &'a str,
}

#[derive(Serialize, Deserialize)]
struct CursorPayload {
    /// The server the cursor was issued by.
    s: String,
    /// The tool the cursor was issued by.
    t: String,
    /// Digest of the filter arguments it was issued for.
    f: String,
    /// Upstream query parameters to send with the next request.
    p: Vec<(String, String)>,
    /// Set when an answer budget cut an upstream page short: the rest of
    /// that same page comes next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<Resume>,
}

/// Where inside an upstream page the next page starts, when an answer
/// budget ended the previous page before the upstream page ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Items of the upstream page already returned.
    #[serde(rename = "o")]
    pub offset: usize,
    /// The upstream page size the page was fetched with (it must be fetched
    /// the same way again for `offset` to mean the same item).
    #[serde(rename = "l")]
    pub limit: u64,
    /// The id of the last item returned, so that the next page starts right
    /// after it even if the upstream page shifted in between.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// A verified cursor: upstream paging parameters, and where inside that
/// upstream page to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub params: Vec<(String, String)>,
    pub resume: Option<Resume>,
}

/// Arguments that do not change which items a list returns: the page size,
/// the cursor itself, and which fields of each item come back.
const NOT_FILTERS: &[&str] = &["limit", "next_cursor", "fields"];

/// A short digest of the filter arguments of a list call (all arguments but
/// `limit` and `next_cursor`), independent of key order.
pub fn filter_digest(arguments: &serde_json::Map<String, serde_json::Value>) -> String {
    use sha2::Digest;
    let filters: serde_json::Map<String, serde_json::Value> = arguments
        .iter()
        .filter(|(k, v)| !NOT_FILTERS.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let text =
        serde_json::to_string(&canonical(&serde_json::Value::Object(filters))).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(text.as_bytes())[..16])
}

/// `value` with every object's keys sorted.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => items.iter().map(canonical).collect(),
        other => other.clone(),
    }
}

/// Encodes and verifies cursors with a server-held key.
#[derive(Clone)]
pub struct CursorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec { key: <redacted> }")
    }
}

impl CursorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A codec with a fresh random key (cursors then last as long as the
    /// process).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(payload);
        mac
    }

    /// Wraps upstream paging parameters into an opaque cursor bound to
    /// `scope`.
    pub fn encode(&self, scope: CursorScope<'_>, params: Vec<(String, String)>) -> String {
        self.encode_position(
            scope,
            Position {
                params,
                resume: None,
            },
        )
    }

    /// Wraps a position (upstream paging parameters and where inside that
    /// upstream page to resume) into an opaque cursor bound to `scope`.
    pub fn encode_position(&self, scope: CursorScope<'_>, position: Position) -> String {
        let payload = CursorPayload {
            s: scope.server.to_owned(),
            t: scope.tool.to_owned(),
            f: scope.filters.to_owned(),
            p: position.params,
            r: position.resume,
        };
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]))
    }

    /// Verifies a cursor and its binding to `scope`, and returns the
    /// upstream paging parameters in it.
    pub fn decode(
        &self,
        scope: CursorScope<'_>,
        cursor: &str,
    ) -> Result<Vec<(String, String)>, CursorError> {
        self.decode_position(scope, cursor).map(|p| p.params)
    }

    /// Verifies a cursor and its binding to `scope`, and returns the
    /// position it stands for.
    pub fn decode_position(
        &self,
        scope: CursorScope<'_>,
        cursor: &str,
    ) -> Result<Position, CursorError> {
        let (body, tag) = cursor.split_once('.').ok_or(CursorError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Invalid)?;
        if tag.len() != MAC_LEN {
            return Err(CursorError::Invalid);
        }
        self.mac(body.as_bytes())
            .verify_truncated_left(&tag)
            .map_err(|_| CursorError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CursorError::Invalid)?;
        let payload: CursorPayload =
            serde_json::from_slice(&json).map_err(|_| CursorError::Invalid)?;
        if payload.s != scope.server {
            return Err(CursorError::WrongServer);
        }
        if payload.t != scope.tool {
            return Err(CursorError::WrongTool(payload.t));
        }
        if payload.f != scope.filters {
            return Err(CursorError::WrongFilters);
        }
        Ok(Position {
            params: payload.p,
            resume: payload.r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Vec<(String, String)> {
        vec![("next".into(), "c_00042".into())]
    }

    fn scope<'a>(server: &'a str, tool: &'a str, filters: &'a str) -> CursorScope<'a> {
        CursorScope {
            server,
            tool,
            filters,
        }
    }

    const X: CursorScope<'static> = CursorScope {
        server: "srv_a",
        tool: "list_all_x",
        filters: "f1",
    };

    #[test]
    fn cursor_round_trips_for_its_scope() {
        let codec = CursorCodec::random();
        let cursor = codec.encode(X, params());
        assert_eq!(codec.decode(X, &cursor), Ok(params()));
    }

    #[test]
    fn edited_cursor_is_refused() {
        let codec = CursorCodec::random();
        let cursor = codec.encode(X, params());
        let mut bytes = cursor.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(codec.decode(X, &edited), Err(CursorError::Invalid));
        assert_eq!(codec.decode(X, "garbage"), Err(CursorError::Invalid));
        assert_eq!(codec.decode(X, ""), Err(CursorError::Invalid));
    }

    #[test]
    fn cursor_from_another_key_is_refused() {
        let cursor = CursorCodec::random().encode(X, params());
        assert_eq!(
            CursorCodec::random().decode(X, &cursor),
            Err(CursorError::Invalid)
        );
    }

    #[test]
    fn cursor_of_another_server_tool_or_filters_is_refused() {
        let codec = CursorCodec::new([7; 32]);
        let cursor = codec.encode(X, params());
        assert_eq!(
            codec.decode(scope("srv_b", "list_all_x", "f1"), &cursor),
            Err(CursorError::WrongServer)
        );
        assert_eq!(
            codec.decode(scope("srv_a", "list_all_y", "f1"), &cursor),
            Err(CursorError::WrongTool("list_all_x".into()))
        );
        assert_eq!(
            codec.decode(scope("srv_a", "list_all_x", "f2"), &cursor),
            Err(CursorError::WrongFilters)
        );
        // Another codec with the same key (another node) accepts it.
        assert_eq!(CursorCodec::new([7; 32]).decode(X, &cursor), Ok(params()));
    }

    #[test]
    fn a_position_inside_a_page_round_trips() {
        let codec = CursorCodec::random();
        let position = Position {
            params: params(),
            resume: Some(Resume {
                offset: 7,
                limit: 25,
                after: Some("o_7".into()),
            }),
        };
        let cursor = codec.encode_position(X, position.clone());
        assert_eq!(codec.decode_position(X, &cursor), Ok(position));
        let plain = codec.encode(X, params());
        assert_eq!(
            codec.decode_position(X, &plain),
            Ok(Position {
                params: params(),
                resume: None
            })
        );
    }

    #[test]
    fn filter_digest_ignores_paging_projection_and_key_order() {
        let a = json!({"email": "a@b.c", "status": ["x", "y"], "limit": 5, "next_cursor": "c", "fields": ["id"]});
        let b = json!({"status": ["x", "y"], "email": "a@b.c", "limit": 50});
        let c = json!({"status": ["y", "x"], "email": "a@b.c"});
        let digest = |v: serde_json::Value| filter_digest(v.as_object().expect("object"));
        assert_eq!(digest(a.clone()), digest(b));
        assert_ne!(digest(a.clone()), digest(c));
        assert_ne!(digest(a), digest(json!({})));
    }
}
