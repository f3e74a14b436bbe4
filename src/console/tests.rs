//! The console's security rules, through its router (no browser): sessions,
//! the sign-in throttle, CSRF, headers, escaping, and that it lists,
//! creates and revokes through the store the admin API uses.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt as _;

use super::{Console, ConsoleOptions, SessionLimits};
use crate::store::Store;

const ADMIN: &str = "console-test-admin-token";
const HOST: &str = "127.0.0.1:8080";

struct Harness {
    console: Console,
    app: Router,
    store: Store,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn location(&self) -> &str {
        self.header("location")
    }
}

fn harness_with(public_url: &str, limits: SessionLimits) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with_key(&dir.path().join("c.db"), &[7u8; 32]).expect("store");
    store.add_admin_token_hash(ADMIN).expect("admin token");
    let console = Console::new(
        store.clone(),
        ConsoleOptions {
            public_url: public_url.to_string(),
            allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            limits,
        },
    )
    .expect("console");
    Harness {
        app: console.router(),
        console,
        store,
        _dir: dir,
    }
}

fn harness() -> Harness {
    harness_with("http://127.0.0.1:8080", SessionLimits::default())
}

/// A browser-like request: Host, and for POST the headers a same-origin
/// form submission under `Referrer-Policy: no-referrer` carries.
fn request(method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    if let Some(c) = cookie {
        builder = builder.header(header::COOKIE, format!("malomo_console={c}"));
    }
    if method == "POST" {
        builder = builder
            .header(header::ORIGIN, "null")
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    builder
        .body(Body::from(form.unwrap_or("").to_string()))
        .expect("request")
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn cookie_of(answer: &Answer) -> String {
    let set = answer.header("set-cookie");
    set.strip_prefix("malomo_console=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in {set:?}"))
        .to_string()
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form token in the page") + marker.len();
    page[start..].split('"').next().expect("quoted").to_string()
}

impl Harness {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        send(&self.app, request("GET", path, cookie, None)).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Answer {
        send(&self.app, request("POST", path, cookie, Some(form))).await
    }

    /// Signs in; returns the session cookie and the form token.
    async fn sign_in(&self) -> (String, String) {
        let answer = self
            .post("/console/sign-in", None, &format!("admin_token={ADMIN}"))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), "/console/accounts");
        let cookie = cookie_of(&answer);
        let page = self.get("/console/accounts", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        (cookie.clone(), csrf_of(&page.body))
    }

    /// Submits the create form of account `id` with `fields` (and the
    /// form token).
    async fn submit_server(&self, cookie: &str, csrf: &str, id: &str, fields: &str) -> Answer {
        self.post(
            &format!("/console/accounts/{id}/servers"),
            Some(cookie),
            &format!("csrf={csrf}&{fields}"),
        )
        .await
    }

    fn account(&self, name: &str) -> String {
        self.store
            .create_account(name, "sk_test_console_key_0001", "http://127.0.0.1:9")
            .expect("account")
            .id
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_expiring_cookie() {
    let h = harness();
    let answer = h
        .post("/console/sign-in", None, &format!("admin_token={ADMIN}"))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = answer.header("set-cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http cannot keep a Secure cookie"
    );
    assert!(!cookie.contains(ADMIN), "the admin token is not the cookie");
    assert_eq!(h.console.session_count(), 1);

    let https = harness_with("https://mcp.example.com", SessionLimits::default());
    let answer = https
        .post("/console/sign-in", None, &format!("admin_token={ADMIN}"))
        .await;
    assert!(answer.header("set-cookie").contains("; Secure"));
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_never_echoed() {
    let h = harness();
    let answer = h
        .post("/console/sign-in", None, "admin_token=guess-12345")
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.contains("not a valid admin API token"));
    assert!(!answer.body.contains("guess-12345"));
    assert!(answer.headers.get("set-cookie").is_none());
    assert_eq!(h.console.session_count(), 0);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_even_for_the_right_token() {
    let h = harness();
    for _ in 0..5 {
        let answer = h.post("/console/sign-in", None, "admin_token=wrong").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer = h
        .post("/console/sign-in", None, &format!("admin_token={ADMIN}"))
        .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), "1");
    assert!(answer.body.contains("Too many failed sign-ins"));
    assert_eq!(h.console.session_count(), 0, "no session while throttled");
}

#[tokio::test]
async fn pages_need_a_session_and_sign_out_ends_it() {
    let h = harness();
    for path in [
        "/console/accounts",
        "/console/tools",
        "/console/preview?methods=read",
    ] {
        let answer = h.get(path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.location(), "/console/sign-in");
        let forged = h.get(path, Some("made-up-session")).await;
        assert_eq!(forged.location(), "/console/sign-in", "{path}");
    }
    let (cookie, csrf) = h.sign_in().await;
    assert_eq!(
        h.get("/console/tools", Some(&cookie)).await.status,
        StatusCode::OK
    );

    let out = h
        .post("/console/sign-out", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    // The old cookie, replayed, no longer works: the session ended on the server.
    let after = h.get("/console/accounts", Some(&cookie)).await;
    assert_eq!(after.location(), "/console/sign-in");
}

#[tokio::test]
async fn an_expired_session_redirects_to_sign_in() {
    let h = harness_with(
        "http://127.0.0.1:8080",
        SessionLimits {
            idle: Duration::from_millis(100),
            ..SessionLimits::default()
        },
    );
    let (cookie, _) = h.sign_in().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let answer = h.get("/console/accounts", Some(&cookie)).await;
    assert_eq!(answer.location(), "/console/sign-in");
}

#[tokio::test]
async fn the_first_run_link_works_once() {
    let h = harness();
    let link = h.console.sign_in_link();
    let path = link
        .strip_prefix("http://127.0.0.1:8080")
        .expect("public URL");
    let first = h.get(path, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = cookie_of(&first);
    assert!(first.body.contains("url=/console/accounts"));
    assert_eq!(
        h.get("/console/accounts", Some(&cookie)).await.status,
        StatusCode::OK
    );
    let again = h.get(path, None).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("already used or has expired"));
    assert!(again.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn state_changes_need_the_form_token() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let form = "name=intruder&malomo_api_key=sk_test_abcdefghijkl";
    let answer = h.post("/console/accounts", Some(&cookie), form).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("form token"));
    let other = h
        .post(
            "/console/accounts",
            Some(&cookie),
            &format!("{form}&csrf=not-{csrf}"),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(
        h.store.list_accounts().unwrap().is_empty(),
        "nothing created"
    );

    let ok = h
        .post(
            "/console/accounts",
            Some(&cookie),
            &format!("{form}&csrf={csrf}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(h.store.list_accounts().unwrap().len(), 1);
}

#[tokio::test]
async fn cross_site_requests_are_refused_before_anything_happens() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("victim");
    let server = h
        .store
        .create_server(
            &id,
            crate::store::NewServer {
                name: "keep".into(),
                filter: crate::access::ToolFilter::all(),
                require_api_token_auth: false,
                expires_at: None,
                answer_budget: None,
            },
        )
        .unwrap();
    let path = format!("/console/servers/{}/revoke", server.server.id);
    let cases: [(&str, &str); 4] = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "null"),
    ];
    for (name, value) in cases {
        let mut req = Request::builder()
            .method("POST")
            .uri(&path)
            .header(header::HOST, HOST)
            .header(header::COOKIE, format!("malomo_console={cookie}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(name, value);
        if name == "origin" && value == "null" {
            // `null` counts only with the browser's same-origin word for it.
            req = req.header("sec-fetch-site", "none");
        }
        let answer = send(
            &h.app,
            req.body(Body::from(format!("csrf={csrf}"))).unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(answer.body.contains("another site"), "{name}: {value}");
    }
    assert!(h.store.get_server(&server.server.id).unwrap().is_some());

    // The real Origin of this server is accepted.
    let req = Request::builder()
        .method("POST")
        .uri(&path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .header(header::COOKIE, format!("malomo_console={cookie}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    assert_eq!(send(&h.app, req).await.status, StatusCode::SEE_OTHER);
    assert!(h.store.get_server(&server.server.id).unwrap().is_none());
}

#[tokio::test]
async fn an_unknown_host_is_refused() {
    let h = harness();
    let req = Request::builder()
        .uri("/console/sign-in")
        .header(header::HOST, "rebound.example:8080")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&h.app, req).await.status,
        StatusCode::MISDIRECTED_REQUEST
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let h = harness();
    let (cookie, _) = h.sign_in().await;
    let id = h.account("acme");
    let paths = [
        ("/console/sign-in", None),
        ("/console/accounts", Some(cookie.as_str())),
        (&*format!("/console/accounts/{id}"), Some(cookie.as_str())),
        (
            &*format!("/console/accounts/{id}/servers/new"),
            Some(cookie.as_str()),
        ),
        ("/console/tools", Some(cookie.as_str())),
        ("/console/no-such-page", Some(cookie.as_str())),
        ("/console/static/console.js", None),
        ("/console/accounts", None),
    ];
    for (path, cookie) in paths {
        let a = h.get(path, cookie).await;
        let csp = a.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(a.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(a.header("referrer-policy"), "no-referrer", "{path}");
    }
    let page = h.get("/console/accounts", Some(&cookie)).await;
    assert_eq!(page.header("cache-control"), "no-store");
}

/// Pages hold no inline script and no event-handler attribute in any tag,
/// so the CSP can forbid them (escaped text such as `&lt;img onerror=` is
/// not a tag).
fn assert_no_inline_script(page: &str) {
    let lower = page.to_ascii_lowercase();
    for (i, _) in lower.match_indices('<') {
        let Some(end) = lower[i..].find('>') else {
            continue;
        };
        let tag = &lower[i..i + end];
        if tag.starts_with("<script") {
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        if tag.starts_with("<img") {
            panic!("an img tag in the page: {tag}");
        }
        let handler = tag
            .split_whitespace()
            .any(|word| word.starts_with("on") && word.contains('='));
        assert!(!handler, "event handler attribute: {tag}");
        assert!(!tag.contains("javascript:"), "javascript: URL: {tag}");
    }
}

#[tokio::test]
async fn typed_names_are_rendered_as_text() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let account_name = "\"><img src=x onerror=alert(1)>";
    let server_name = "<script>alert(1)</script>";
    let added = h
        .post(
            "/console/accounts",
            Some(&cookie),
            &format!(
                "csrf={csrf}&name={}&malomo_api_key=sk_test_abcdefghijkl&base_url=",
                enc(account_name)
            ),
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let account_path = added.location().to_string();
    let created = h
        .post(
            &format!("{account_path}/servers"),
            Some(&cookie),
            &format!(
                "csrf={csrf}&name={}&methods=read&expiry=none",
                enc(server_name)
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let shown = h.get(created.location(), Some(&cookie)).await;
    let list = h.get("/console/accounts", Some(&cookie)).await;
    let account = h.get(&account_path, Some(&cookie)).await;
    let revoke_path = format!(
        "/console/servers/{}/revoke",
        h.store.list_servers(None).unwrap()[0].id
    );
    let confirm = h.get(&revoke_path, Some(&cookie)).await;
    for page in [&shown, &list, &account, &confirm] {
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains(account_name));
        assert!(!page.body.contains(server_name));
        assert_no_inline_script(&page.body);
    }
    assert!(
        list.body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
    );
    assert!(
        account
            .body
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
    );

    // A refused form echoes what was typed, escaped, and names the field.
    let refused = h
        .post(
            "/console/accounts",
            Some(&cookie),
            &format!(
                "csrf={csrf}&name={}&malomo_api_key=sk_test_abcdefghijkl&base_url=ftp://x",
                enc(server_name)
            ),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("base_url"));
    assert!(!refused.body.contains(server_name));
    assert!(
        !refused.body.contains("sk_test_abcdefghijkl"),
        "keys are never echoed"
    );
}

#[tokio::test]
async fn the_console_creates_lists_and_revokes_through_the_store() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    let created = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=orders-bot&methods=read&tags=orders&expiry=24h",
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);

    // What the admin API and CLI read back is what the console made.
    let servers = h.store.list_servers(Some(&id)).unwrap();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    assert_eq!(server.filter.methods, ["read"]);
    assert_eq!(server.filter.tags, ["orders"]);
    let left = server.expires_at.unwrap() - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::hours(23) && left <= time::Duration::hours(24));

    // The URL is shown once, and it resolves to that server.
    let page = h.get(created.location(), Some(&cookie)).await;
    let marker = "data-testid=\"mcp-url\" class=\"break\">";
    let start = page.body.find(marker).expect("URL shown") + marker.len();
    let url = page.body[start..]
        .split('<')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    let token = url.rsplit('/').next().unwrap();
    let resolved = h.store.resolve_token(token).unwrap().expect("URL works");
    assert_eq!(resolved.id, server.id);
    assert!(page.body.contains("claude mcp add --transport http"));
    assert!(page.body.contains("mcp-remote"));
    let again = h.get(created.location(), Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(
        !again.body.contains(token),
        "a token is never rendered twice"
    );

    let listing = h
        .get(&format!("/console/accounts/{id}"), Some(&cookie))
        .await;
    assert!(listing.body.contains("orders-bot"));
    assert!(listing.body.contains("data-testid=\"revoke\""));
    assert!(listing.body.contains("23 h 59 min left"), "time left shown");

    let revoked = h
        .post(
            &format!("/console/servers/{}/revoke", server.id),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(
        h.store.resolve_token(token).unwrap().is_none(),
        "revoked at once"
    );
    let after = h.get(revoked.location(), Some(&cookie)).await;
    assert!(after.body.contains("MCP server orders-bot revoked."));
}

#[tokio::test]
async fn the_preview_shows_exactly_the_tools_the_filter_allows() {
    let h = harness();
    let (cookie, _) = h.sign_in().await;
    let answer = h
        .get("/console/preview?methods=read&tags=orders", Some(&cookie))
        .await;
    let filter = crate::access::ToolFilter {
        methods: vec!["read".into()],
        tags: vec!["orders".into()],
    };
    let expected: Vec<&str> = filter.allowed(h.store.tools()).map(|t| t.name).collect();
    assert!(!expected.is_empty());
    let items: Vec<&str> = answer
        .body
        .split("<li>")
        .skip(1)
        .map(|li| li.split([' ', '<']).next().unwrap())
        .collect();
    assert_eq!(items, expected);
    assert!(answer.body.contains("read-only"));

    let none = h
        .get(
            "/console/preview?methods=delete&tags=accounts",
            Some(&cookie),
        )
        .await;
    assert!(none.body.contains("No tool matches"), "{}", none.body);
    assert!(!none.body.contains("<li>"));
}

#[tokio::test]
async fn a_config_without_tools_is_refused_with_the_form_kept() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    let answer = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=nothing&methods=delete&tags=accounts&expiry=none",
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("leaves no tool"));
    assert!(answer.body.contains("value=\"nothing\""), "typed name kept");
    assert!(h.store.list_servers(None).unwrap().is_empty());

    let past = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=old&expiry=date&expires_on=2001-01-01",
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.body.contains("expires_on-error"));
    assert!(past.body.contains("must be in the future"));
}

#[tokio::test]
async fn deleting_an_account_says_its_servers_go_and_revokes_them() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("gone");
    let created = h
        .store
        .create_server(
            &id,
            crate::store::NewServer {
                name: "s".into(),
                filter: crate::access::ToolFilter::all(),
                require_api_token_auth: false,
                expires_at: None,
                answer_budget: None,
            },
        )
        .unwrap();
    let confirm = h
        .get(&format!("/console/accounts/{id}/delete"), Some(&cookie))
        .await;
    assert!(confirm.body.contains("revokes its 1 MCP server"));
    let deleted = h
        .post(
            &format!("/console/accounts/{id}/delete"),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(h.store.resolve_token(&created.token).unwrap().is_none());
    let list = h.get("/console/accounts", Some(&cookie)).await;
    assert!(list.body.contains("1 MCP server revoked"));
}

#[tokio::test]
async fn a_second_factor_server_shows_its_client_token_once() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    let created = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=guarded&second_factor=on&expiry=none",
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let server = h.store.list_servers(Some(&id)).unwrap().remove(0);
    assert!(server.require_api_token_auth);
    let page = h.get(created.location(), Some(&cookie)).await;
    let marker = "data-testid=\"client-token\" class=\"break\">";
    let start = page.body.find(marker).expect("client token shown") + marker.len();
    let token = page.body[start..].split('<').next().unwrap().to_string();
    assert!(token.len() >= 32, "{token}");
    assert!(
        page.body
            .contains(&format!("Authorization: Bearer {token}"))
    );
    let again = h.get(created.location(), Some(&cookie)).await;
    assert!(
        !again.body.contains(&token),
        "a client token is never rendered twice"
    );
    assert!(!again.body.contains("data-testid=\"client-token\""));
}

#[tokio::test]
async fn without_script_the_preview_button_renders_the_preview() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    let answer = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=p&methods=write&tags=webhooks&intent=preview",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        h.store.list_servers(None).unwrap().is_empty(),
        "nothing created"
    );
    assert!(answer.body.contains("destructive"), "badges shown");
    let filter = crate::access::ToolFilter {
        methods: vec!["write".into()],
        tags: vec!["webhooks".into()],
    };
    let count = filter.allowed(h.store.tools()).count();
    assert_eq!(answer.body.matches("<li>").count(), count);
    assert!(
        answer.body.contains("value=\"write\" checked"),
        "choices kept"
    );
}

#[tokio::test]
async fn the_server_form_sets_an_answer_budget_and_names_a_bad_one() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    for (typed, message) in [
        ("lots", "expected a whole number of bytes"),
        ("100", "must be from 1024"),
    ] {
        let refused = h
            .submit_server(
                &cookie,
                &csrf,
                &id,
                &format!("name=small&expiry=none&answer_budget={typed}"),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{typed}");
        assert!(refused.body.contains("answer_budget-error"), "{typed}");
        assert!(refused.body.contains(message), "{typed}");
        assert!(
            refused.body.contains(&format!("value=\"{typed}\"")),
            "typed value kept"
        );
    }
    assert!(h.store.list_servers(None).unwrap().is_empty());
    let created = h
        .submit_server(
            &cookie,
            &csrf,
            &id,
            "name=small&expiry=none&answer_budget=4096",
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let server = h.store.list_servers(Some(&id)).unwrap().remove(0);
    assert_eq!(server.answer_budget, Some(4096));
    let page = h.get(created.location(), Some(&cookie)).await;
    assert!(page.body.contains("4096 bytes"));
    let account = h
        .get(&format!("/console/accounts/{id}"), Some(&cookie))
        .await;
    assert!(account.body.contains("4096 bytes"));
}

#[tokio::test]
async fn the_account_page_creates_and_rotates_the_event_inbox_showing_its_url_once() {
    let h = harness();
    let (cookie, csrf) = h.sign_in().await;
    let id = h.account("shop");
    let page = h
        .get(&format!("/console/accounts/{id}"), Some(&cookie))
        .await;
    assert!(page.body.contains("No event inbox yet"));
    assert!(page.body.contains("data-testid=\"inbox-rotate\""));
    let path = format!("/console/accounts/{id}/inbox");
    let refused = h.post(&path, Some(&cookie), "csrf=wrong").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(h.store.inbox_info(&id).unwrap().is_none(), "nothing made");

    let created = h.post(&path, Some(&cookie), &format!("csrf={csrf}")).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let shown = h.get(created.location(), Some(&cookie)).await;
    let marker = "data-testid=\"inbox-url\" class=\"break\">";
    let start = shown.body.find(marker).expect("inbox URL shown") + marker.len();
    let url = shown.body[start..]
        .split('<')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    let token = url
        .strip_prefix("http://127.0.0.1:8080/hooks/")
        .expect("an inbox URL of the public URL");
    let delivery = h.store.inbox_delivery(&id).unwrap().expect("inbox");
    assert_eq!(delivery.token, token);
    assert!(
        !shown.body.contains(&delivery.secret),
        "the secret is never shown"
    );
    let again = h.get(created.location(), Some(&cookie)).await;
    assert!(!again.body.contains(token), "the URL is shown once");

    let page = h
        .get(&format!("/console/accounts/{id}"), Some(&cookie))
        .await;
    assert!(page.body.contains("Rotate event inbox URL"));
    assert!(!page.body.contains(token));
    let rotated = h.post(&path, Some(&cookie), &format!("csrf={csrf}")).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    assert!(
        h.store.resolve_inbox(token).unwrap().is_none(),
        "old URL retired"
    );
}
