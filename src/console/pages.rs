//! The console's pages. Every list, create and revoke goes through the
//! same [`Store`] methods as the admin API.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Serialize;
use time::OffsetDateTime;

use super::form::{FormData, cookie};
use super::session::CreatedFlash;
use super::view::refusal;
use super::{Console, SESSION_COOKIE, SIGN_IN_PATH, SignedIn, client_key};
use crate::access::{self, ToolFilter};
use crate::admin::mcp_url;
use crate::catalog::{INTEGRATION, ToolDef};
use crate::store::{AccountInfo, NewServer, ServerInfo, Store, StoreError};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

type PageResult = Result<Response, Response>;

/// A serializable view model as a template value.
fn v<T: Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    console: &Console,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = console.store().clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
}

impl Console {
    /// What every page of a signed-in person shows: the form token for
    /// its forms and the notice left by the previous action.
    fn base(&self, s: &SignedIn) -> Value {
        context! {
            csrf => s.csrf.clone(),
            signed_in => true,
            notice => self.inner.sessions.take_notice(&s.cookie),
        }
    }

    fn anonymous(&self) -> Value {
        context! { csrf => "", signed_in => false, notice => None::<String> }
    }

    /// The answer to a store failure nobody handled more precisely.
    fn store_failure(&self, e: StoreError) -> Response {
        match e {
            StoreError::AccountNotFound(_) => self.not_found_page("integrated account"),
            StoreError::Internal(e) => {
                tracing::error!(error = %e, "console store call failed");
                refusal(
                    self,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server; the details are in its log.",
                )
            }
            other => refusal(self, StatusCode::BAD_REQUEST, &other.to_string()),
        }
    }

    fn not_found_page(&self, what: &str) -> Response {
        refusal(
            self,
            StatusCode::NOT_FOUND,
            &format!("This {what} does not exist (it may have been deleted)."),
        )
    }

    /// The session cookie of a request, if it names a live session.
    fn signed_in(&self, headers: &axum::http::HeaderMap) -> bool {
        cookie(headers, SESSION_COOKIE).is_some_and(|c| self.inner.sessions.get(c).is_some())
    }

    /// Starts a session and answers with `response` carrying its cookie.
    fn with_new_session(&self, mut response: Response) -> Response {
        let cookie = self.inner.sessions.start();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, self.session_cookie(&cookie));
        response
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Reads a form body (and the request parts the handler needs).
async fn read_form(
    console: &Console,
    request: Request,
) -> Result<(axum::http::Extensions, FormData), Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            refusal(
                console,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is larger than 64 KiB.",
            )
        })?;
    Ok((parts.extensions, FormData::parse(&bytes)))
}

async fn signed_in_form(
    console: &Console,
    s: &SignedIn,
    request: Request,
) -> Result<FormData, Response> {
    let (_, form) = read_form(console, request).await?;
    s.check_form(console, &form)?;
    Ok(form)
}

fn when(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `3 d 4 h left`, `25 min left`, or `expired`.
fn time_left(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (at - now).whole_seconds();
    if secs <= 0 {
        return "expired".to_string();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if d > 0 {
        format!("{d} d {h} h left")
    } else if h > 0 {
        format!("{h} h {m} min left")
    } else {
        format!("{} min left", m.max(1))
    }
}

#[derive(Serialize)]
struct AccountView {
    id: String,
    name: String,
    base_url: String,
    masked_key: String,
    servers: usize,
    created: String,
}

fn account_view(a: &AccountInfo, servers: usize) -> AccountView {
    AccountView {
        id: a.id.clone(),
        name: a.name.clone(),
        base_url: a.base_url.clone(),
        masked_key: a.masked_api_key.clone(),
        servers,
        created: when(a.created_at),
    }
}

#[derive(Serialize)]
struct ServerView {
    id: String,
    name: String,
    methods: Vec<String>,
    tags: Vec<String>,
    second_factor: bool,
    expires: Option<String>,
    time_left: Option<String>,
    created: String,
    active: bool,
    answer_budget: Option<u32>,
}

fn server_view(s: &ServerInfo, now: OffsetDateTime) -> ServerView {
    ServerView {
        id: s.id.clone(),
        name: s.name.clone(),
        methods: s.filter.methods.clone(),
        tags: s.filter.tags.clone(),
        second_factor: s.require_api_token_auth,
        expires: s.expires_at.map(when),
        time_left: s.expires_at.map(|t| time_left(t, now)),
        created: when(s.created_at),
        active: s.expires_at.is_none_or(|t| t > now),
        answer_budget: s.answer_budget,
    }
}

#[derive(Serialize)]
struct ToolView {
    name: &'static str,
    title: &'static str,
    class: &'static str,
    method: &'static str,
    tags: &'static [&'static str],
    description: String,
    read_only: bool,
    destructive: bool,
    input_schema: String,
}

/// `t` as a server with `filter` would show it (description paragraphs naming
/// a tool the filter hides are left out).
fn tool_view(t: &ToolDef, filter: &access::ToolFilter) -> ToolView {
    let input_schema = crate::catalog::schemas(t)
        .ok()
        .and_then(|s| serde_json::to_string_pretty(&s.input).ok())
        .unwrap_or_else(|| t.input_schema.to_string());
    ToolView {
        name: t.name,
        title: t.title,
        class: t.class.as_str(),
        method: t.method,
        tags: t.tags,
        description: crate::mcp::handler::description(t, filter),
        read_only: t.annotations.read_only,
        destructive: t.annotations.destructive,
        input_schema,
    }
}

// ---- sign-in and sign-out ----

pub async fn home(State(console): State<Console>, request: Request) -> Response {
    if console.signed_in(request.headers()) {
        see_other("/console/accounts")
    } else {
        see_other(SIGN_IN_PATH)
    }
}

fn sign_in_page(console: &Console, status: StatusCode, error: Option<&str>) -> Response {
    console.page(
        status,
        "sign_in.html",
        context! { error => error, ..console.anonymous() },
    )
}

pub async fn sign_in_form(State(console): State<Console>, request: Request) -> Response {
    if console.signed_in(request.headers()) {
        return see_other("/console/accounts");
    }
    sign_in_page(&console, StatusCode::OK, None)
}

pub async fn sign_in(State(console): State<Console>, request: Request) -> PageResult {
    let (extensions, form) = read_form(&console, request).await?;
    let client = client_key(&extensions);
    if let Err(wait) = console.inner.throttle.check(&client) {
        let secs = wait.as_secs().max(1);
        let mut response = sign_in_page(
            &console,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed sign-ins. Wait {secs} s before trying again."
            )),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let token = form.raw("admin_token").unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Ok(sign_in_page(
            &console,
            StatusCode::BAD_REQUEST,
            Some("Admin token: enter an admin API token."),
        ));
    }
    let valid = blocking(&console, move |s| Ok(s.verify_admin_token(&token)?)).await;
    match valid {
        Ok(true) => {
            console.inner.throttle.succeeded(&client);
            Ok(console.with_new_session(see_other("/console/accounts")))
        }
        Ok(false) => {
            console.inner.throttle.failed(&client);
            tracing::info!(client = %client, "console sign-in refused");
            Ok(sign_in_page(
                &console,
                StatusCode::UNAUTHORIZED,
                Some("Admin token: this is not a valid admin API token."),
            ))
        }
        Err(e) => Err(console.store_failure(e)),
    }
}

pub async fn first_run(State(console): State<Console>, RawQuery(query): RawQuery) -> Response {
    let form = FormData::parse(query.unwrap_or_default().as_bytes());
    let token = form.raw("token").unwrap_or("");
    if !console.inner.sessions.redeem_link(token) {
        return console.page(
            StatusCode::FORBIDDEN,
            "message.html",
            context! {
                title => "Sign-in link used or expired",
                message => "This one-time sign-in link was already used or has expired. Sign in with an admin API token instead (create one with `malomo-mcp admin-token create`).",
                link => SIGN_IN_PATH,
                ..console.anonymous()
            },
        );
    }
    // A page rather than a redirect: the next request is then a same-site
    // navigation, which carries the SameSite=Strict cookie even when the
    // link was opened from another site.
    let page = console.page(StatusCode::OK, "first_run.html", console.anonymous());
    console.with_new_session(page)
}

pub async fn sign_out(State(console): State<Console>, s: SignedIn, request: Request) -> PageResult {
    signed_in_form(&console, &s, request).await?;
    console.inner.sessions.end(&s.cookie);
    let mut response = see_other(SIGN_IN_PATH);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.cleared_cookie());
    Ok(response)
}

// ---- accounts ----

#[derive(Default, Serialize)]
struct AccountForm {
    name: String,
    base_url: String,
    errors: BTreeMap<String, String>,
}

async fn accounts_page(
    console: &Console,
    s: &SignedIn,
    status: StatusCode,
    form: AccountForm,
) -> Response {
    let listed = blocking(console, |store| {
        let accounts = store.list_accounts()?;
        let servers = store.list_servers(None)?;
        Ok(accounts
            .iter()
            .map(|a| account_view(a, servers.iter().filter(|s| s.account_id == a.id).count()))
            .collect::<Vec<_>>())
    })
    .await;
    match listed {
        Ok(accounts) => console.page(
            status,
            "accounts.html",
            context! {
                accounts => v(&accounts),
                form => v(&form),
                default_base_url => INTEGRATION.default_base_url,
                ..console.base(s)
            },
        ),
        Err(e) => console.store_failure(e),
    }
}

pub async fn accounts(State(console): State<Console>, s: SignedIn) -> Response {
    accounts_page(&console, &s, StatusCode::OK, AccountForm::default()).await
}

pub async fn add_account(
    State(console): State<Console>,
    s: SignedIn,
    request: Request,
) -> PageResult {
    let form = signed_in_form(&console, &s, request).await?;
    let name = form.get("name").unwrap_or("").to_string();
    let key = form.raw("malomo_api_key").unwrap_or("").to_string();
    let base_url = form
        .get("base_url")
        .unwrap_or(INTEGRATION.default_base_url)
        .to_string();
    let (n, u) = (name.clone(), base_url.clone());
    match blocking(&console, move |store| store.create_account(&n, &key, &u)).await {
        Ok(account) => {
            console
                .inner
                .sessions
                .set_notice(&s.cookie, format!("Account {} added.", account.name));
            Ok(see_other(&format!("/console/accounts/{}", account.id)))
        }
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict(_))) => {
            let (status, field, message) = match &e {
                StoreError::Invalid { field, message } => {
                    (StatusCode::BAD_REQUEST, field.clone(), message.clone())
                }
                _ => (
                    StatusCode::CONFLICT,
                    "name".to_string(),
                    "an account with this name already exists".to_string(),
                ),
            };
            let mut errors = BTreeMap::new();
            errors.insert(field, message);
            let form = AccountForm {
                name,
                base_url,
                errors,
            };
            Ok(accounts_page(&console, &s, status, form).await)
        }
        Err(e) => Err(console.store_failure(e)),
    }
}

async fn load_account(console: &Console, id: String) -> Result<AccountInfo, Response> {
    match blocking(console, move |store| store.get_account(&id)).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(console.not_found_page("integrated account")),
        Err(e) => Err(console.store_failure(e)),
    }
}

pub async fn account(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let account = load_account(&console, id.clone()).await?;
    let servers = blocking(&console, move |store| store.list_servers(Some(&id)))
        .await
        .map_err(|e| console.store_failure(e))?;
    let account_id = account.id.clone();
    let inbox = blocking(&console, move |store| store.inbox_info(&account_id))
        .await
        .map_err(|e| console.store_failure(e))?;
    let now = OffsetDateTime::now_utc();
    let servers: Vec<ServerView> = servers.iter().map(|v| server_view(v, now)).collect();
    Ok(console.page(
        StatusCode::OK,
        "account.html",
        context! {
            account => v(&account_view(&account, servers.len())),
            servers => v(&servers),
            inbox_created => inbox.map(|i| when(i.created_at)),
            tab => "servers",
            ..console.base(&s)
        },
    ))
}

pub async fn confirm_delete_account(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let account = load_account(&console, id.clone()).await?;
    let count = blocking(&console, move |store| {
        Ok(store.list_servers(Some(&id))?.len())
    })
    .await
    .map_err(|e| console.store_failure(e))?;
    Ok(console.page(
        StatusCode::OK,
        "confirm.html",
        context! {
            title => format!("Delete account {}?", account.name),
            message => format!(
                "Deleting this account revokes its {count} MCP server{}: their URLs stop working at once. Its Malomo API key is forgotten.",
                if count == 1 { "" } else { "s" }
            ),
            action => format!("/console/accounts/{}/delete", account.id),
            button => "Delete account",
            cancel => format!("/console/accounts/{}", account.id),
            ..console.base(&s)
        },
    ))
}

pub async fn delete_account(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    signed_in_form(&console, &s, request).await?;
    let account = load_account(&console, id.clone()).await?;
    match blocking(&console, move |store| store.delete_account(&id)).await {
        Ok(Some(revoked)) => {
            console.inner.sessions.set_notice(
                &s.cookie,
                format!(
                    "Account {} deleted; {revoked} MCP server{} revoked.",
                    account.name,
                    if revoked == 1 { "" } else { "s" }
                ),
            );
            Ok(see_other("/console/accounts"))
        }
        Ok(None) => Err(console.not_found_page("integrated account")),
        Err(e) => Err(console.store_failure(e)),
    }
}

// ---- creating MCP servers ----

/// The create form as submitted (or its defaults).
#[derive(Serialize)]
struct ServerForm {
    name: String,
    methods: Vec<String>,
    tags: Vec<String>,
    second_factor: bool,
    /// `none`, `1h`, `24h`, `7d` or `date`.
    expiry: String,
    /// `YYYY-MM-DD` when `expiry` is `date`.
    expires_on: String,
    /// Bytes, as typed; empty keeps the tools' own budgets.
    answer_budget: String,
}

impl Default for ServerForm {
    fn default() -> Self {
        ServerForm {
            name: String::new(),
            methods: Vec::new(),
            tags: Vec::new(),
            second_factor: false,
            expiry: "none".to_string(),
            expires_on: String::new(),
            answer_budget: String::new(),
        }
    }
}

impl ServerForm {
    fn read(form: &FormData) -> Self {
        ServerForm {
            name: form.get("name").unwrap_or("").to_string(),
            methods: form.all("methods"),
            tags: form.all("tags"),
            second_factor: form.get("second_factor").is_some(),
            expiry: form.get("expiry").unwrap_or("none").to_string(),
            expires_on: form.get("expires_on").unwrap_or("").to_string(),
            answer_budget: form.get("answer_budget").unwrap_or("").to_string(),
        }
    }

    /// The answer budget typed, if any; the error names the form field.
    fn answer_budget(&self) -> Result<Option<u64>, (String, String)> {
        if self.answer_budget.is_empty() {
            return Ok(None);
        }
        self.answer_budget.parse().map(Some).map_err(|_| {
            (
                "answer_budget".to_string(),
                "expected a whole number of bytes, such as 8192".to_string(),
            )
        })
    }

    fn filter(&self) -> ToolFilter {
        ToolFilter {
            methods: self.methods.clone(),
            tags: self.tags.clone(),
        }
    }

    /// The expiry chosen; the error names the form field.
    fn expires_at(&self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, (String, String)> {
        let hours = |h: i64| Ok(Some(now + time::Duration::hours(h)));
        match self.expiry.as_str() {
            "none" => Ok(None),
            "1h" => hours(1),
            "24h" => hours(24),
            "7d" => hours(24 * 7),
            "date" => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let date = time::Date::parse(&self.expires_on, format).map_err(|_| {
                    (
                        "expires_on".to_string(),
                        "expected a date such as 2026-12-31".to_string(),
                    )
                })?;
                // The server works through the whole day chosen (UTC).
                let end = date
                    .next_day()
                    .ok_or_else(|| ("expires_on".to_string(), "date out of range".to_string()))?;
                Ok(Some(end.midnight().assume_utc()))
            }
            other => Err((
                "expiry".to_string(),
                format!("unknown choice {other:?}; expected none, 1h, 24h, 7d or date"),
            )),
        }
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    /// Tools this value alone selects.
    tools: usize,
    checked: bool,
}

/// Method checkboxes: the classes, then the method names that exist, as
/// the filter code knows them; values that select no tool are left out.
fn method_choices(tools: &[&'static ToolDef], chosen: &[String]) -> (Vec<Choice>, Vec<Choice>) {
    let mut classes = Vec::new();
    let mut methods = Vec::new();
    for value in access::valid_methods(tools) {
        let filter = ToolFilter {
            methods: vec![value.to_string()],
            tags: Vec::new(),
        };
        let count = filter.allowed(tools).count();
        if count == 0 {
            continue;
        }
        let choice = Choice {
            value: value.to_string(),
            tools: count,
            checked: chosen.iter().any(|c| c == value),
        };
        if tools.iter().any(|t| t.method == value) {
            methods.push(choice);
        } else {
            classes.push(choice);
        }
    }
    (classes, methods)
}

fn tag_choices(tools: &[&'static ToolDef], chosen: &[String]) -> Vec<Choice> {
    access::valid_tags(tools)
        .into_iter()
        .map(|tag| Choice {
            value: tag.to_string(),
            tools: tools.iter().filter(|t| t.tags.contains(&tag)).count(),
            checked: chosen.iter().any(|c| c == tag),
        })
        .collect()
}

#[derive(Serialize)]
struct Preview {
    tools: Vec<ToolView>,
    /// Why the choice is refused (an unknown value, or no tool left).
    problem: Option<String>,
}

fn preview_of(tools: &[&'static ToolDef], filter: &ToolFilter) -> Preview {
    let problem = filter.validate_against(tools).err().map(|e| match e {
        access::FilterError::NoTools { .. } => {
            "No tool matches these methods and tags: a server with this configuration would have no tools, so it cannot be created.".to_string()
        }
        other => other.to_string(),
    });
    Preview {
        tools: filter
            .allowed(tools)
            .map(|t| tool_view(t, filter))
            .collect(),
        problem,
    }
}

fn server_form_page(
    console: &Console,
    s: &SignedIn,
    status: StatusCode,
    account: &AccountInfo,
    form: ServerForm,
    errors: BTreeMap<String, String>,
) -> Response {
    let tools = console.store().tools();
    let (classes, methods) = method_choices(tools, &form.methods);
    console.page(
        status,
        "new_server.html",
        context! {
            account => v(&account_view(account, 0)),
            classes => v(&classes),
            methods => v(&methods),
            tags => v(&tag_choices(tools, &form.tags)),
            preview => v(&preview_of(tools, &form.filter())),
            form => v(&form),
            errors => v(&errors),
            tab => "create",
            ..console.base(s)
        },
    )
}

pub async fn new_server_form(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let account = load_account(&console, id).await?;
    Ok(server_form_page(
        &console,
        &s,
        StatusCode::OK,
        &account,
        ServerForm::default(),
        BTreeMap::new(),
    ))
}

pub async fn create_server(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    let submitted = signed_in_form(&console, &s, request).await?;
    let account = load_account(&console, id).await?;
    let form = ServerForm::read(&submitted);
    let mut errors = BTreeMap::new();
    if submitted.get("intent") == Some("preview") {
        return Ok(server_form_page(
            &console,
            &s,
            StatusCode::OK,
            &account,
            form,
            errors,
        ));
    }
    let chosen = form
        .expires_at(OffsetDateTime::now_utc())
        .and_then(|at| Ok((at, form.answer_budget()?)));
    let (expires_at, answer_budget) = match chosen {
        Ok(chosen) => chosen,
        Err((field, message)) => {
            errors.insert(field, message);
            return Ok(server_form_page(
                &console,
                &s,
                StatusCode::BAD_REQUEST,
                &account,
                form,
                errors,
            ));
        }
    };
    let request = NewServer {
        name: form.name.clone(),
        filter: form.filter(),
        require_api_token_auth: form.second_factor,
        expires_at,
        answer_budget,
    };
    let account_id = account.id.clone();
    match blocking(&console, move |store| {
        store.create_server(&account_id, request)
    })
    .await
    {
        Ok(created) => {
            let server_id = created.server.id.clone();
            console.inner.sessions.set_created(
                &s.cookie,
                CreatedFlash {
                    server_id: server_id.clone(),
                    url: mcp_url(&console.inner.public_url, &created.token),
                    client_token: created.client_token.map(|c| c.token),
                },
            );
            Ok(see_other(&format!("/console/servers/{server_id}/created")))
        }
        Err(StoreError::Invalid { field, message }) => {
            // The date field is where a past expiry was chosen.
            let field = if field == "expires_at" {
                "expires_on".to_string()
            } else {
                field
            };
            errors.insert(field, message);
            Ok(server_form_page(
                &console,
                &s,
                StatusCode::BAD_REQUEST,
                &account,
                form,
                errors,
            ))
        }
        Err(StoreError::Filter(e)) => {
            errors.insert(e.field().to_string(), e.to_string());
            Ok(server_form_page(
                &console,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &account,
                form,
                errors,
            ))
        }
        Err(e) => Err(console.store_failure(e)),
    }
}

/// The preview list alone, for the script that updates it as boxes change.
pub async fn preview(
    State(console): State<Console>,
    _s: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let form = ServerForm::read(&FormData::parse(query.unwrap_or_default().as_bytes()));
    let preview = preview_of(console.store().tools(), &form.filter());
    console.page(
        StatusCode::OK,
        "preview.html",
        context! { preview => v(&preview) },
    )
}

#[derive(Serialize)]
struct Snippets {
    claude_code: String,
    claude_desktop: String,
    python: String,
}

fn snippets(url: &str, client_token: Option<&str>) -> Snippets {
    let name = INTEGRATION.name;
    let claude_code = match client_token {
        Some(t) => format!(
            "claude mcp add --transport http {name} {url} --header \"Authorization: Bearer {t}\""
        ),
        None => format!("claude mcp add --transport http {name} {url}"),
    };
    let mut args = vec!["mcp-remote".to_string(), url.to_string()];
    if let Some(t) = client_token {
        args.push("--header".to_string());
        args.push(format!("Authorization: Bearer {t}"));
    }
    let desktop = serde_json::json!({
        "mcpServers": { name: { "command": "npx", "args": args } }
    });
    let python = match client_token {
        Some(t) => format!(
            "import asyncio\n\nimport httpx2\nfrom mcp import Client\nfrom mcp.client.streamable_http import streamable_http_client\n\n\nasync def main():\n    headers = {{\"Authorization\": \"Bearer {t}\"}}\n    async with httpx2.AsyncClient(headers=headers) as http:\n        async with Client(streamable_http_client(\"{url}\", http_client=http)) as client:\n            tools = await client.list_tools()\n            print([tool.name for tool in tools.tools])\n\n\nasyncio.run(main())\n"
        ),
        None => format!(
            "import asyncio\n\nfrom mcp import Client\n\n\nasync def main():\n    async with Client(\"{url}\") as client:\n        tools = await client.list_tools()\n        print([tool.name for tool in tools.tools])\n\n\nasyncio.run(main())\n"
        ),
    };
    Snippets {
        claude_code,
        claude_desktop: serde_json::to_string_pretty(&desktop).unwrap_or_default(),
        python,
    }
}

pub async fn created(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let server_id = id.clone();
    let server = match blocking(&console, move |store| store.get_server(&server_id)).await {
        Ok(Some(server)) => server,
        Ok(None) => return Err(console.not_found_page("MCP server")),
        Err(e) => return Err(console.store_failure(e)),
    };
    let Some(flash) = console.inner.sessions.take_created(&s.cookie, &id) else {
        return Ok(console.page(
            StatusCode::GONE,
            "message.html",
            context! {
                title => "Shown once",
                message => "The URL of this MCP server was shown once, when it was created, and cannot be shown again. If it was lost, revoke the server and create a new one.",
                link => format!("/console/accounts/{}", server.account_id),
                ..console.base(&s)
            },
        ));
    };
    let account = load_account(&console, server.account_id.clone()).await?;
    let now = OffsetDateTime::now_utc();
    Ok(console.page(
        StatusCode::OK,
        "created.html",
        context! {
            account => v(&account_view(&account, 0)),
            server => v(&server_view(&server, now)),
            url => flash.url.clone(),
            client_token => flash.client_token.clone(),
            snippets => v(&snippets(&flash.url, flash.client_token.as_deref())),
            ..console.base(&s)
        },
    ))
}

// ---- the event inbox ----

/// The one-time page's key among a session's flashes: server ids are
/// UUIDs, so this never names a server.
fn inbox_flash_id(account_id: &str) -> String {
    format!("inbox:{account_id}")
}

/// Creates or rotates the account's event inbox, then shows its URL once.
pub async fn rotate_inbox(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    signed_in_form(&console, &s, request).await?;
    let account = load_account(&console, id).await?;
    let account_id = account.id.clone();
    let created = blocking(&console, move |store| store.rotate_inbox(&account_id))
        .await
        .map_err(|e| console.store_failure(e))?;
    console.inner.sessions.set_created(
        &s.cookie,
        CreatedFlash {
            server_id: inbox_flash_id(&account.id),
            url: crate::events::inbox_url(&console.inner.public_url, &created.token),
            client_token: None,
        },
    );
    Ok(see_other(&format!(
        "/console/accounts/{}/inbox/created",
        account.id
    )))
}

pub async fn inbox_created(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let account = load_account(&console, id).await?;
    let Some(flash) = console
        .inner
        .sessions
        .take_created(&s.cookie, &inbox_flash_id(&account.id))
    else {
        return Ok(console.page(
            StatusCode::OK,
            "message.html",
            context! {
                title => "Shown once",
                message => "The URL of this event inbox was shown once, when it was created, and cannot be shown again. If it was lost, rotate the inbox: that makes a new URL and retires the old one.",
                link => format!("/console/accounts/{}", account.id),
                ..console.base(&s)
            },
        ));
    };
    Ok(console.page(
        StatusCode::OK,
        "inbox.html",
        context! {
            account => v(&account_view(&account, 0)),
            url => flash.url,
            ..console.base(&s)
        },
    ))
}

// ---- revoking ----

async fn load_server(console: &Console, id: String) -> Result<ServerInfo, Response> {
    match blocking(console, move |store| store.get_server(&id)).await {
        Ok(Some(server)) => Ok(server),
        Ok(None) => Err(console.not_found_page("MCP server")),
        Err(e) => Err(console.store_failure(e)),
    }
}

pub async fn confirm_revoke(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let server = load_server(&console, id).await?;
    Ok(console.page(
        StatusCode::OK,
        "confirm.html",
        context! {
            title => format!("Revoke MCP server {}?", server.name),
            message => "Its URL stops working at once: clients using it get 404. This cannot be undone.",
            action => format!("/console/servers/{}/revoke", server.id),
            button => "Revoke server",
            cancel => format!("/console/accounts/{}", server.account_id),
            ..console.base(&s)
        },
    ))
}

pub async fn revoke(
    State(console): State<Console>,
    s: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    signed_in_form(&console, &s, request).await?;
    let server = load_server(&console, id.clone()).await?;
    match blocking(&console, move |store| store.delete_server(&id)).await {
        Ok(_) => {
            console
                .inner
                .sessions
                .set_notice(&s.cookie, format!("MCP server {} revoked.", server.name));
            Ok(see_other(&format!(
                "/console/accounts/{}",
                server.account_id
            )))
        }
        Err(e) => Err(console.store_failure(e)),
    }
}

// ---- the catalog ----

pub async fn tools(State(console): State<Console>, s: SignedIn) -> Response {
    let all = access::ToolFilter::all();
    let tools: Vec<ToolView> = console
        .store()
        .tools()
        .iter()
        .map(|t| tool_view(t, &all))
        .collect();
    console.page(
        StatusCode::OK,
        "tools.html",
        context! { tools => v(&tools), ..console.base(&s) },
    )
}

pub async fn not_found(State(console): State<Console>) -> Response {
    console.not_found_page("page")
}
