//! Rendering: the embedded templates (autoescaped HTML, strict about
//! undefined values), the stylesheet and the script.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, Value};

use super::Console;

/// Templates compiled into the binary; a name ending `.html` is
/// autoescaped, so everything a person typed is rendered as text.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("first_run.html", include_str!("templates/first_run.html")),
    ("accounts.html", include_str!("templates/accounts.html")),
    (
        "account_header.html",
        include_str!("templates/account_header.html"),
    ),
    ("account.html", include_str!("templates/account.html")),
    ("new_server.html", include_str!("templates/new_server.html")),
    ("preview.html", include_str!("templates/preview.html")),
    ("created.html", include_str!("templates/created.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("tools.html", include_str!("templates/tools.html")),
    ("message.html", include_str!("templates/message.html")),
];

const STYLESHEET: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| anyhow::anyhow!("console template syntax: {e}"))?,
        );
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| anyhow::anyhow!("console template {name}: {e}"))?;
        }
        Ok(Templates { env })
    }

    /// Renders `name`; a template error is logged and becomes a 500 page
    /// without detail.
    // The error is the answer to send, as in axum's own extractors.
    #[allow(clippy::result_large_err)]
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, Response> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| {
                tracing::error!(template = name, error = %e, "console template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            })
    }
}

impl Console {
    /// A full page with `status`.
    pub(super) fn page(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match self.inner.templates.render(name, ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(response) => response,
        }
    }
}

/// A page that only says why a request was refused.
pub fn refusal(console: &Console, status: StatusCode, message: &str) -> Response {
    console.page(
        status,
        "message.html",
        minijinja::context! {
            title => status.canonical_reason().unwrap_or("Refused"),
            message => message,
            csrf => "",
            signed_in => false,
            notice => None::<String>,
        },
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
