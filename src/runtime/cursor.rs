//! Opaque, tamper-evident list cursors.
//!
//! A cursor carries the upstream's own paging parameters (e.g. `next=...`
//! taken from a `Link: <...>; rel="next"` header) plus the tool it belongs
//! to, base64url-encoded and followed by a truncated HMAC-SHA256. A model
//! that edits, truncates or forges a cursor gets a clear error before any
//! upstream call, and a cursor from one tool cannot be replayed on another.

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
}

#[derive(Serialize, Deserialize)]
struct CursorPayload {
    /// The tool the cursor was issued by.
    t: String,
    /// Upstream query parameters to send with the next request.
    p: Vec<(String, String)>,
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

    /// Wraps upstream paging parameters into an opaque cursor for `tool`.
    pub fn encode(&self, tool: &str, params: Vec<(String, String)>) -> String {
        let payload = CursorPayload {
            t: tool.to_owned(),
            p: params,
        };
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]))
    }

    /// Verifies a cursor and returns the upstream paging parameters in it.
    pub fn decode(&self, tool: &str, cursor: &str) -> Result<Vec<(String, String)>, CursorError> {
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
        if payload.t != tool {
            return Err(CursorError::WrongTool(payload.t));
        }
        Ok(payload.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        vec![("next".into(), "c_00042".into())]
    }

    #[test]
    fn cursor_round_trips_for_its_tool() {
        let codec = CursorCodec::random();
        let cursor = codec.encode("list_all_x", params());
        assert_eq!(codec.decode("list_all_x", &cursor), Ok(params()));
    }

    #[test]
    fn edited_cursor_is_refused() {
        let codec = CursorCodec::random();
        let cursor = codec.encode("list_all_x", params());
        let mut bytes = cursor.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(
            codec.decode("list_all_x", &edited),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode("list_all_x", "garbage"),
            Err(CursorError::Invalid)
        );
        assert_eq!(codec.decode("list_all_x", ""), Err(CursorError::Invalid));
    }

    #[test]
    fn cursor_from_another_key_is_refused() {
        let cursor = CursorCodec::random().encode("list_all_x", params());
        assert_eq!(
            CursorCodec::random().decode("list_all_x", &cursor),
            Err(CursorError::Invalid)
        );
    }

    #[test]
    fn cursor_of_another_tool_is_refused() {
        let codec = CursorCodec::random();
        let cursor = codec.encode("list_all_x", params());
        assert_eq!(
            codec.decode("list_all_y", &cursor),
            Err(CursorError::WrongTool("list_all_x".into()))
        );
    }
}
