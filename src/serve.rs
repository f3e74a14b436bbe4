//! Starting the server: the HTTP server (`serve`) and stdio (`stdio`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::access::ToolFilter;
use crate::catalog::INTEGRATION;
use crate::console::{Console, ConsoleOptions, SessionLimits};
use crate::events::EventHub;
use crate::inbox::{self, InboxOptions};
use crate::limits::Limits;
use crate::mcp::http::{self, HttpOptions};
use crate::mcp::sessions::OwnedSessions;
use crate::mcp::{McpHandler, Scope, Shared};
use crate::runtime::{Account, CursorCodec, Runtime, StoreInbox};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::store::{NewServer, Store};

/// Which upstream the server talks to.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The embedded sandbox, started in-process.
    Sandbox(SandboxConfig),
    /// A real account.
    Remote { api_key: String, base_url: String },
}

impl Upstream {
    /// `MALOMO_API_KEY` (and `MALOMO_BASE_URL`) when set, else the sandbox.
    pub fn from_env(sandbox: SandboxConfig) -> Self {
        match std::env::var("MALOMO_API_KEY") {
            Ok(key) if !key.trim().is_empty() => Upstream::Remote {
                api_key: key.trim().to_owned(),
                base_url: std::env::var("MALOMO_BASE_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                    .unwrap_or_else(|| INTEGRATION.default_base_url.to_owned()),
            },
            _ => Upstream::Sandbox(sandbox),
        }
    }
}

/// A started upstream: the account to call it with, and the sandbox to keep
/// alive when it is one.
pub struct StartedUpstream {
    pub account_name: &'static str,
    pub account: Account,
    pub sandbox: Option<SandboxHandle>,
}

/// Starts the sandbox when asked for, and says which account to use.
pub async fn start_upstream(upstream: Upstream) -> anyhow::Result<StartedUpstream> {
    Ok(match upstream {
        Upstream::Sandbox(config) => {
            let handle = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), config).await?;
            StartedUpstream {
                account_name: "sandbox",
                account: Account {
                    base_url: handle.base_url(),
                    api_key: handle.secret_key().to_owned(),
                    id: None,
                },
                sandbox: Some(handle),
            }
        }
        Upstream::Remote { api_key, base_url } => StartedUpstream {
            account_name: INTEGRATION.name,
            account: Account {
                base_url,
                api_key,
                id: None,
            },
            sandbox: None,
        },
    })
}

/// Settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// Public base URL for printed MCP URLs and inbox URLs (the ones
    /// Malomo's webhooks deliver to); defaults to `http://{listen}`, which
    /// the embedded sandbox reaches on loopback.
    pub public_url: Option<String>,
    /// Extra `Host` names accepted besides loopback and the public URL's.
    pub allowed_hosts: Vec<String>,
    pub upstream: Upstream,
    pub admin_token: Option<String>,
    pub upstream_timeout: Duration,
    /// The largest upstream answer read (`--max-upstream-body`).
    pub max_upstream_body: usize,
    /// Connection, session and stream caps and timeouts.
    pub limits: Limits,
    /// This node's name among the nodes sharing a PostgreSQL database (its
    /// printed server is `default@NAME`); default `HOSTNAME:PORT`.
    pub node_name: Option<String>,
    /// How often expired servers and old events are swept.
    pub sweep_every: Duration,
    /// The event inbox's caps and the events' retention.
    pub inbox: InboxOptions,
}

/// A running HTTP server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The MCP URL of the `default` server provisioned at start.
    pub mcp_url: String,
    /// A one-time console sign-in link (works once, for ten minutes).
    pub console_link: String,
    pub console: Console,
    pub store: Store,
    pub account_id: String,
    /// The node's feed of stored events (the same as `Shared::events()`).
    pub events: EventHub,
    /// The 2025-11-25 sessions of the MCP endpoint.
    pub sessions: Arc<OwnedSessions>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _sandbox: Option<SandboxHandle>,
    _sweeper: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self._sweeper.abort();
    }

    /// Waits until the server stops (after `shutdown_token` is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The name of the server a start provisions and prints. On its own
/// database a node replaces `default` on each start, so that the URL it
/// prints is the one that works. Nodes sharing PostgreSQL each own one,
/// `default@NODE`: a start replaces only its own node's, never the URL
/// another node printed.
fn default_server_name(store: &Store, node_name: Option<&str>, addr: SocketAddr) -> String {
    if !store.is_shared() {
        return "default".to_owned();
    }
    match node_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(node) => format!("default@{node}"),
        None => format!("default@{}:{}", hostname(), addr.port()),
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Opens the store, provisions the account and a `default` MCP server, and
/// serves HTTP until shut down.
pub async fn start(options: ServeOptions) -> anyhow::Result<RunningServer> {
    // Opening (and on first run creating) the database and seeding the
    // sandbox are independent: do them at once, to answer sooner.
    let db = options.db.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&db));
    let (started, tools) = tokio::join!(start_upstream(options.upstream.clone()), async {
        // The tool descriptions are built while the database opens.
        Shared::describe_tools()
    });
    let store = store.await??;
    let started = started?;
    // Cursors are signed with the store's key: valid on every node that
    // shares the store, and across restarts.
    let cursors = CursorCodec::new(store.cursor_key()?);
    if let Some(token) = options.admin_token.as_deref().filter(|t| !t.is_empty()) {
        store.add_admin_token_hash(token)?;
    }
    let account_id = store.ensure_account(
        started.account_name,
        &started.account.api_key,
        &started.account.base_url,
    )?;
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut http_options = HttpOptions::local(&public_url);
    http_options
        .allowed_hosts
        .extend(options.allowed_hosts.iter().cloned());
    http_options.limits = options.limits.clone();
    // The event tools read the store, and fill inbox URLs under the
    // public URL into the webhooks they create.
    let inbox = StoreInbox {
        store: store.clone(),
        public_url: http_options.public_url.clone(),
    };
    let shared = Arc::new(Shared::with_tools(
        Runtime::new(options.upstream_timeout, cursors)?
            .with_max_upstream_body(options.max_upstream_body)
            .with_inbox(Arc::new(inbox)),
        tools?,
    ));

    // Each start replaces this node's default server, so the URL printed
    // now is the one that works (its token is shown once and only hashed).
    let default_name = default_server_name(&store, options.node_name.as_deref(), addr);
    store.delete_servers_named(&account_id, &default_name)?;
    let created = store
        .create_server(
            &account_id,
            NewServer {
                name: default_name,
                filter: ToolFilter::all(),
                require_api_token_auth: false,
                expires_at: None,
                answer_budget: None,
            },
        )
        .map_err(|e| anyhow::anyhow!("could not provision the default MCP server: {e}"))?;
    let mcp_url = format!("{}/mcp/{}", http_options.public_url, created.token);
    let events = shared.events().clone();
    store.forward_remote_events(events.clone());

    let shutdown = CancellationToken::new();
    let console = Console::new(
        store.clone(),
        ConsoleOptions {
            public_url: http_options.public_url.clone(),
            allowed_hosts: http_options.allowed_hosts.clone(),
            limits: SessionLimits::default(),
        },
    )?;
    let console_link = console.sign_in_link();
    let (app, sessions) =
        http::app_with_sessions(shared, store.clone(), http_options, shutdown.clone());
    let app = app.merge(console.router()).merge(inbox::router(
        store.clone(),
        events.clone(),
        &options.inbox,
    ));
    let sweeper =
        crate::store::spawn_sweeper(store.clone(), options.sweep_every, options.inbox.retention);
    let stop = shutdown.clone();
    let limits = options.limits.clone();
    let task = tokio::spawn(async move {
        // Peer addresses (ConnectInfo) let the console slow down failed
        // sign-ins per client.
        crate::connections::serve(listener, app, &limits, stop).await;
    });
    Ok(RunningServer {
        addr,
        mcp_url,
        console_link,
        console,
        store,
        account_id,
        events,
        sessions,
        shutdown,
        task,
        _sandbox: started.sandbox,
        _sweeper: sweeper,
    })
}

/// Serves MCP on stdin/stdout for one client until it hangs up.
pub async fn stdio(
    upstream: Upstream,
    filter: ToolFilter,
    timeout: Duration,
    max_upstream_body: usize,
) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let started = start_upstream(upstream).await?;
    // stdio has no store: its cursors live as long as the process.
    let shared = Arc::new(Shared::new(
        Runtime::new(timeout, CursorCodec::random())?.with_max_upstream_body(max_upstream_body),
    )?);
    let handler = McpHandler::fixed(
        shared,
        Scope {
            account: started.account,
            filter,
            label: "stdio".to_owned(),
            answer_budget: None,
        },
    );
    let running = handler.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    drop(started.sandbox);
    Ok(())
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
