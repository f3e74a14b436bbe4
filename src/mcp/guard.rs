//! What every MCP transport (Streamable HTTP, its in-line fast path and
//! the legacy HTTP+SSE routes) checks before it reads a request: the
//! `Host` and `Origin` headers, and the body size.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Largest MCP request body accepted (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which `Host` and `Origin` values the transports accept.
#[derive(Debug, Clone, Copy)]
pub struct HostPolicy<'a> {
    /// `Host` values accepted; empty accepts any.
    pub allowed_hosts: &'a [String],
    /// Browser `Origin`s accepted; any other present `Origin` is refused.
    pub allowed_origins: &'a [String],
}

impl HostPolicy<'_> {
    /// DNS-rebinding protection (rmcp does the same for its Streamable HTTP
    /// routes): the `Host` must be allowed, and an `Origin`, when present,
    /// must be too. The refusal is a 403 naming which one.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        let forbidden = |what: &str| {
            (
                StatusCode::FORBIDDEN,
                format!("Forbidden: {what} not allowed"),
            )
                .into_response()
        };
        if !self.allowed_hosts.is_empty() {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let name = match host.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or(""),
                None => host.split(':').next().unwrap_or(""),
            };
            if !self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(host))
            {
                return Err(forbidden("Host"));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self
                .allowed_origins
                .iter()
                .any(|allowed| origin_matches(allowed, origin))
            {
                return Err(forbidden("Origin"));
            }
        }
        Ok(())
    }
}

fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.strip_suffix(":*") {
        Some(prefix) => {
            origin == prefix
                || origin
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
        }
        None => allowed.eq_ignore_ascii_case(origin),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_matches;

    #[test]
    fn origins_match_by_scheme_host_and_port() {
        assert!(origin_matches(
            "http://localhost:*",
            "http://localhost:6274"
        ));
        assert!(origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost.evil.com"
        ));
        assert!(!origin_matches("http://localhost:*", "http://evil.com"));
        assert!(origin_matches(
            "https://app.example.com",
            "https://app.example.com"
        ));
    }
}
