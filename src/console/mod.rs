//! The admin console at `/console`: server-rendered pages over the same
//! [`Store`] calls as the admin API and the CLI, so the three cannot
//! disagree.
//!
//! Security model: a person signs in with an admin API token (or the
//! one-time link `serve` prints) and gets a server-side session whose
//! cookie is `HttpOnly`, `SameSite=Strict`, `Secure` over https. Every
//! state-changing request must also pass an Origin check and carry the
//! session's form token. Every page is sent with a script-less CSP,
//! `frame-ancestors 'none'`, `nosniff`, `no-referrer` and `no-store`.

mod form;
mod pages;
mod session;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use session::{SessionLimits, Sessions, SignInThrottle};

use crate::store::Store;
use form::{FormData, cookie};
use view::Templates;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "malomo_console";
/// Where people who are not signed in are sent.
pub const SIGN_IN_PATH: &str = "/console/sign-in";

/// How the console is reached.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Public base URL of the server (`http://127.0.0.1:8080`); MCP URLs
    /// and the sign-in link start with it, and `https` makes the cookie
    /// `Secure`.
    pub public_url: String,
    /// `Host` names the console answers to (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    pub limits: SessionLimits,
}

struct Inner {
    store: Store,
    public_url: String,
    secure_cookie: bool,
    allowed_hosts: Vec<String>,
    sessions: Sessions,
    throttle: SignInThrottle,
    templates: Templates,
}

/// The console: its sessions, templates and routes. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

impl Console {
    pub fn new(store: Store, options: ConsoleOptions) -> anyhow::Result<Console> {
        let public_url = options.public_url.trim_end_matches('/').to_string();
        Ok(Console {
            inner: Arc::new(Inner {
                store,
                secure_cookie: public_url.starts_with("https://"),
                public_url,
                allowed_hosts: options.allowed_hosts,
                sessions: Sessions::new(options.limits),
                throttle: SignInThrottle::default(),
                templates: Templates::new()?,
            }),
        })
    }

    /// A fresh one-time sign-in link (works once, for
    /// [`SessionLimits::link_ttl`]).
    pub fn sign_in_link(&self) -> String {
        format!(
            "{}/console/first-run?token={}",
            self.inner.public_url,
            self.inner.sessions.issue_link()
        )
    }

    /// Live sessions (for tests).
    pub fn session_count(&self) -> usize {
        self.inner.sessions.count()
    }

    /// Every console route, under `/console`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/console", get(pages::home))
            .route("/console/", get(pages::home))
            .route(
                "/console/sign-in",
                get(pages::sign_in_form).post(pages::sign_in),
            )
            .route("/console/first-run", get(pages::first_run))
            .route("/console/sign-out", post(pages::sign_out))
            .route(
                "/console/accounts",
                get(pages::accounts).post(pages::add_account),
            )
            .route("/console/accounts/{id}", get(pages::account))
            .route(
                "/console/accounts/{id}/delete",
                get(pages::confirm_delete_account).post(pages::delete_account),
            )
            .route(
                "/console/accounts/{id}/servers/new",
                get(pages::new_server_form),
            )
            .route("/console/accounts/{id}/servers", post(pages::create_server))
            .route("/console/accounts/{id}/inbox", post(pages::rotate_inbox))
            .route(
                "/console/accounts/{id}/inbox/created",
                get(pages::inbox_created),
            )
            .route("/console/preview", get(pages::preview))
            .route("/console/servers/{id}/created", get(pages::created))
            .route(
                "/console/servers/{id}/revoke",
                get(pages::confirm_revoke).post(pages::revoke),
            )
            .route("/console/tools", get(pages::tools))
            .route("/console/static/console.css", get(view::stylesheet))
            .route("/console/static/console.js", get(view::script))
            .fallback(pages::not_found)
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone())
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// Security headers on every console answer, and the checks every
/// console request passes first: a known `Host`, and for anything but
/// GET/HEAD a same-origin browser context.
async fn guard(State(console): State<Console>, request: Request, next: Next) -> Response {
    let mut response = if !console.host_allowed(request.headers()) {
        (StatusCode::MISDIRECTED_REQUEST, "unknown Host").into_response()
    } else if !matches!(*request.method(), Method::GET | Method::HEAD)
        && !console.same_origin(request.headers())
    {
        view::refusal(
            &console,
            StatusCode::FORBIDDEN,
            "This request came from another site and was refused (cross-site request forgery protection). Go back to the console and submit the form again.",
        )
    } else {
        next.run(request).await
    };
    security_headers(response.headers_mut());
    response
}

/// The headers every console page carries.
pub fn security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Pages may hold a credential shown once: never from a cache or the
    // back button.
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
}

impl Console {
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            // HTTP/1.0 without Host: nothing for a rebinding attack to use.
            return true;
        };
        let name = host_name(host);
        self.inner
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
    }

    /// Whether a state-changing request comes from a page of this origin.
    ///
    /// The console's own `Referrer-Policy: no-referrer` makes browsers send
    /// `Origin: null` on its forms, so `Sec-Fetch-Site` (sent by current
    /// browsers and not settable by pages) decides first; an `Origin` must
    /// then name this server. A request with neither is no browser's (it
    /// still needs the session cookie and the form token).
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if let Some(site) = fetch_site
            && site != "same-origin"
        {
            return false;
        }
        match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some("null") => fetch_site == Some("same-origin"),
            Some(origin) => self.is_own_origin(origin, headers),
        }
    }

    fn is_own_origin(&self, origin: &str, headers: &HeaderMap) -> bool {
        if let Ok(public) = url::Url::parse(&self.inner.public_url)
            && public.origin().ascii_serialization() == origin
        {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    }

    /// `Set-Cookie` starting a session.
    fn session_cookie(&self, value: &str) -> HeaderValue {
        self.cookie_header(value, self.inner.sessions.limits().absolute.as_secs())
    }

    /// `Set-Cookie` removing the session cookie.
    fn cleared_cookie(&self) -> HeaderValue {
        self.cookie_header("", 0)
    }

    fn cookie_header(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.inner.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        // The value is base64url: nothing in it needs quoting.
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The host name of a `Host` header value, without port or IPv6 brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// A signed-in request: its session cookie and form token. Requests
/// without a live session are sent to the sign-in page.
pub struct SignedIn {
    cookie: String,
    pub csrf: String,
}

impl SignedIn {
    /// Checks the form token a state-changing form carries.
    // The error is the answer to send, as in axum's own extractors.
    #[allow(clippy::result_large_err)]
    fn check_form(&self, console: &Console, form: &FormData) -> Result<(), Response> {
        let sent = form.raw("csrf").unwrap_or("");
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(view::refusal(
                console,
                StatusCode::FORBIDDEN,
                "The form token is missing or stale (cross-site request forgery protection). Reload the page and submit the form again.",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let session = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|c| console.inner.sessions.get(c).map(|s| (c.to_string(), s)));
        match session {
            Some((cookie, view)) => Ok(SignedIn {
                cookie,
                csrf: view.csrf,
            }),
            None => {
                let mut response = Redirect::to(SIGN_IN_PATH).into_response();
                if cookie(&parts.headers, SESSION_COOKIE).is_some() {
                    response
                        .headers_mut()
                        .insert(header::SET_COOKIE, console.cleared_cookie());
                }
                Err(response)
            }
        }
    }
}

/// Who is signing in, for the throttle: the peer address when the server
/// records it, else everyone together.
fn client_key(parts_extensions: &axum::http::Extensions) -> String {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "any".to_string())
}

#[cfg(test)]
mod tests;
