//! The HTTP client that calls the upstream API, and how its answers are read.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};

use super::route::UpstreamRequest;
use crate::catalog::{HttpMethod, INTEGRATION};

/// The account a call is made for: where the upstream is and its key.
#[derive(Clone)]
pub struct Account {
    pub base_url: String,
    pub api_key: String,
    /// The integrated account's id in the store (`None` without a store,
    /// e.g. stdio): whose event inbox and stored events a call uses.
    pub id: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("id", &self.id)
            .finish()
    }
}

/// A raw upstream answer.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The largest upstream answer read by default (`--max-upstream-body`).
pub const DEFAULT_MAX_UPSTREAM_BODY: usize = 4 * 1024 * 1024;

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{service}'s answer is larger than this server's limit of {} (it {}); nothing of it was kept. Ask for less: a smaller `limit` on list tools, or narrower filters", mib(*limit as u64), declared.map_or_else(|| "kept coming past the limit".to_owned(), |n| format!("announced {}", mib(n))), service = INTEGRATION.title)]
    TooLarge { limit: usize, declared: Option<u64> },
    #[error("{service} did not answer within {0:?}; nothing is known to have changed, and the call may be retried", service = INTEGRATION.title)]
    Timeout(Duration),
    #[error("could not reach {service} at {0}: {1}", service = INTEGRATION.title)]
    Connect(String, String),
    #[error("the request to {service} failed: {0}", service = INTEGRATION.title)]
    Other(String),
}

/// A pooled HTTP client with the integration's fixed headers.
#[derive(Clone)]
pub struct UpstreamClient {
    /// Built on the first call: building loads the system's root
    /// certificates, which should not delay the server's start.
    client: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    timeout: Duration,
    /// The largest answer body read; a larger one is an error, and nothing
    /// past this is buffered.
    max_body: usize,
}

impl UpstreamClient {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        // Cheap, unlike building the client: other HTTP clients of the
        // process (tests, the sandbox) rely on a provider being installed.
        crate::install_crypto_provider();
        Ok(Self {
            client: std::sync::Arc::default(),
            timeout,
            max_body: DEFAULT_MAX_UPSTREAM_BODY,
        })
    }

    /// Reads answers of at most `bytes`.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    fn client(&self) -> Result<&reqwest::Client, TransportError> {
        self.client
            .get_or_init(|| {
                let mut headers = HeaderMap::new();
                for (name, value) in INTEGRATION.headers {
                    headers.insert(
                        reqwest::header::HeaderName::from_static(name),
                        HeaderValue::from_static(value),
                    );
                }
                reqwest::Client::builder()
                    .default_headers(headers)
                    .user_agent(concat!("malomo-mcp/", env!("CARGO_PKG_VERSION")))
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout.min(Duration::from_secs(10)))
                    .pool_max_idle_per_host(64)
                    .tcp_nodelay(true)
                    // An API answer is never a redirect to follow (and the
                    // key must not travel on), and nothing is retried behind
                    // the caller's back: a failure is the model's to see.
                    .redirect(reqwest::redirect::Policy::none())
                    .retry(reqwest::retry::never())
                    .build()
                    .map_err(|e| root_cause(&e))
            })
            .as_ref()
            .map_err(|e| TransportError::Other(format!("cannot build the HTTP client: {e}")))
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        account: &Account,
        request: &UpstreamRequest,
    ) -> Result<UpstreamResponse, TransportError> {
        let url = format!("{}{}", account.base_url.trim_end_matches('/'), request.path);
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client()?.request(method, &url).header(
            reqwest::header::AUTHORIZATION,
            format!("{} {}", INTEGRATION.auth_scheme, account.api_key),
        );
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.classify(&account.base_url, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = self.read_body(&account.base_url, response).await?;
        Ok(UpstreamResponse {
            status,
            headers,
            body,
        })
    }

    /// Reads the body chunk by chunk up to the cap: an announced length over
    /// it is refused before reading, and a body that grows past it is
    /// dropped (with its connection) as soon as it does.
    async fn read_body(
        &self,
        base_url: &str,
        mut response: reqwest::Response,
    ) -> Result<Bytes, TransportError> {
        let too_large = |declared| TransportError::TooLarge {
            limit: self.max_body,
            declared,
        };
        let declared = response.content_length();
        if let Some(length) = declared
            && length > self.max_body as u64
        {
            return Err(too_large(Some(length)));
        }
        // The announced length (when there is one) is trusted for the first
        // allocation only: it is within the cap.
        let mut body = bytes::BytesMut::with_capacity(
            declared.map_or(0, |n| usize::try_from(n).unwrap_or(self.max_body)),
        );
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(base_url, e))?
        {
            if chunk.len() > self.max_body - body.len() {
                return Err(too_large(None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn classify(&self, base_url: &str, error: reqwest::Error) -> TransportError {
        if error.is_timeout() {
            TransportError::Timeout(self.timeout)
        } else if error.is_connect() {
            // The error's Display holds no credentials: the key travels in a
            // header, never in the URL.
            TransportError::Connect(base_url.to_owned(), root_cause(&error))
        } else {
            TransportError::Other(root_cause(&error))
        }
    }
}

/// A byte count as people read it (`4 MiB`, `512 KiB`).
fn mib(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)).replace(".0 MiB", " MiB")
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// The `rel="next"` URL of a `Link` header, if any.
pub fn next_link(headers: &HeaderMap) -> Option<url::Url> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in text.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                let target = target.trim_start_matches('<').trim_end_matches('>');
                if let Ok(url) = url::Url::parse(target) {
                    return Some(url);
                }
            }
        }
    }
    None
}

/// Rate-limit state reported by the upstream, in IETF terms (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Seconds until the quota resets.
    pub reset: Option<u64>,
    /// Seconds to wait before retrying.
    pub retry_after: Option<u64>,
}

impl RateLimit {
    /// Reads `X-RateLimit-*`, IETF `RateLimit-*` and `Retry-After` headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let num = |names: &[&str]| {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(|v| v.ceil() as u64)
            })
        };
        let now_exact = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let now = now_exact as u64;
        // X-RateLimit-Reset is a Unix time with some APIs and a delay with
        // others: anything past 2001 is taken as a time.
        let reset = num(&["ratelimit-reset", "x-ratelimit-reset"]).map(|r| {
            if r > 1_000_000_000 {
                r.saturating_sub(now)
            } else {
                r
            }
        });
        // Retry-After is either seconds or an HTTP date (RFC 9110 10.2.3).
        let retry_after = num(&["retry-after"]).or_else(|| {
            let text = headers.get("retry-after")?.to_str().ok()?;
            let at = httpdate::parse_http_date(text.trim()).ok()?;
            let wait = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64() - now_exact;
            Some(wait.max(0.0).ceil() as u64)
        });
        Self {
            limit: num(&["ratelimit-limit", "x-ratelimit-limit"]),
            remaining: num(&["ratelimit-remaining", "x-ratelimit-remaining"]),
            reset: reset.or(retry_after),
            retry_after: retry_after.or(reset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                *name,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        map
    }

    #[test]
    fn next_link_is_found_among_several_relations() {
        let h = headers(&[(
            "link",
            r#"<https://api.example.com/orders?prev=a1&limit=2>; rel="prev", <https://api.example.com/orders?next=b2&limit=2>; rel="next""#,
        )]);
        let next = next_link(&h).expect("a next link");
        assert_eq!(next.query(), Some("next=b2&limit=2"));
        assert!(
            next_link(&headers(&[(
                "link",
                r#"<https://x/orders?prev=a>; rel="prev""#
            )]))
            .is_none()
        );
        assert!(next_link(&HeaderMap::new()).is_none());
    }

    #[test]
    fn rate_limit_headers_become_ietf_seconds() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let reset_at = (now + 40).to_string();
        let rl = RateLimit::from_headers(&headers(&[
            ("x-ratelimit-limit", "30"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset_at),
            ("retry-after", "2"),
        ]));
        assert_eq!(rl.limit, Some(30));
        assert_eq!(rl.remaining, Some(0));
        assert!(rl.reset.is_some_and(|r| (39..=40).contains(&r)), "{rl:?}");
        assert_eq!(rl.retry_after, Some(2));

        // A delay-style reset, and Retry-After alone filling both.
        let rl = RateLimit::from_headers(&headers(&[("x-ratelimit-reset", "7")]));
        assert_eq!((rl.reset, rl.retry_after), (Some(7), Some(7)));
        let rl = RateLimit::from_headers(&headers(&[
            ("retry-after", "3"),
            ("x-ratelimit-limit", "nope"),
        ]));
        assert_eq!(
            (rl.limit, rl.reset, rl.retry_after),
            (None, Some(3), Some(3))
        );
    }

    #[test]
    fn retry_after_as_an_http_date_becomes_seconds() {
        let in_30s = std::time::SystemTime::now() + Duration::from_secs(30);
        let rl = RateLimit::from_headers(&headers(&[(
            "retry-after",
            &httpdate::fmt_http_date(in_30s),
        )]));
        assert!(
            rl.retry_after.is_some_and(|s| (29..=31).contains(&s)),
            "{rl:?}"
        );
        assert_eq!(rl.reset, rl.retry_after);
        // A date in the past means now, in both accepted date forms.
        for past in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            let rl = RateLimit::from_headers(&headers(&[("retry-after", past)]));
            assert_eq!(rl.retry_after, Some(0), "{past}");
        }
        let rl = RateLimit::from_headers(&headers(&[("retry-after", "soon")]));
        assert_eq!(rl.retry_after, None);
    }

    #[test]
    fn account_debug_hides_the_key() {
        let account = Account {
            base_url: "http://x".into(),
            api_key: "sk_secret_value".into(),
            id: None,
        };
        assert!(!format!("{account:?}").contains("sk_secret_value"));
    }
}
