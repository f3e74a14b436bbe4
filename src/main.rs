//! The `malomo-mcp` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use malomo_mcp::access::ToolFilter;
use malomo_mcp::admin::cli::{AdminTokenCommand, ServersCommand};
use malomo_mcp::catalog::{INTEGRATION, TOOLS};
use malomo_mcp::inbox::InboxOptions;
use malomo_mcp::limits::Limits;
use malomo_mcp::mcp::handler::mcp_tool;
use malomo_mcp::sandbox::{self, SandboxConfig};
use malomo_mcp::serve::{self, ServeOptions, Upstream};
use malomo_mcp::store::EventRetention;

#[derive(Parser)]
#[command(
    name = "malomo-mcp",
    version,
    about = "A secure MCP server for the Malomo API, generated from YAML specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over HTTP (Streamable HTTP at /mcp/{token}, or /mcp with
    /// `Authorization: Bearer <token>`; legacy SSE at /mcp/{token}/sse or
    /// /mcp/sse) with the admin API under /admin. Without MALOMO_API_KEY it
    /// serves the embedded sandbox.
    Serve(ServeArgs),
    /// Speak MCP on stdin/stdout (Claude Desktop's `command` form).
    Stdio(StdioArgs),
    /// Run the Malomo sandbox alone.
    Sandbox(SandboxArgs),
    /// Print the tool catalog.
    Tools(ToolsArgs),
    /// Provision, list and revoke MCP servers in the database.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Create admin API tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
}

#[derive(Args)]
struct SandboxFlags {
    /// Seed of the sandbox's demo data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests a key may make at once before the sandbox rate-limits it.
    #[arg(long, default_value_t = 30)]
    rate_burst: u32,
    /// Requests per second the sandbox's bucket drains.
    #[arg(long, default_value_t = 0.5)]
    rate_per_sec: f64,
}

impl SandboxFlags {
    fn config(&self) -> anyhow::Result<SandboxConfig> {
        if !(self.rate_per_sec.is_finite() && self.rate_per_sec > 0.0) {
            anyhow::bail!(
                "--rate-per-sec must be a positive number, got {}",
                self.rate_per_sec
            );
        }
        if self.rate_burst == 0 {
            anyhow::bail!("--rate-burst must be at least 1");
        }
        Ok(SandboxConfig {
            seed: self.seed,
            rate_burst: self.rate_burst,
            rate_per_sec: self.rate_per_sec,
            ..SandboxConfig::default()
        })
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database of accounts, servers and admin tokens: a SQLite file, or a
    /// postgres:// URL shared by several nodes (then MALOMO_MCP_MASTER_KEY
    /// is required).
    #[arg(long, env = "MALOMO_MCP_DATABASE_URL", default_value = "malomo-mcp.db")]
    db: PathBuf,
    /// This node's name among nodes sharing PostgreSQL: it prints the URL of
    /// its own server `default@NAME` (default: HOSTNAME:PORT).
    #[arg(long, env = "MALOMO_MCP_NODE_NAME")]
    node_name: Option<String>,
    /// Seconds between sweeps of expired servers (one node at a time).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    sweep_every: u64,
    /// Public base URL used in MCP URLs and in event inbox URLs, the ones
    /// Malomo delivers webhooks to (default: http://LISTEN, which the
    /// embedded sandbox reaches on loopback).
    #[arg(long)]
    public_url: Option<String>,
    /// Extra Host names to accept (DNS-rebinding protection allows loopback
    /// and the public URL's host).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Upstream request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    upstream_timeout: u64,
    /// Largest upstream answer read, in bytes; a larger one is a tool error.
    #[arg(long, default_value_t = malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY)]
    max_upstream_body: usize,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    #[command(flatten)]
    limits: LimitFlags,
    #[command(flatten)]
    inbox: InboxFlags,
    #[command(flatten)]
    sandbox: SandboxFlags,
}

/// The event inbox (`POST /hooks/{token}`) and how long events are kept.
#[derive(Args)]
struct InboxFlags {
    /// Largest webhook delivery accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = InboxOptions::default().max_body)]
    inbox_max_body: usize,
    /// Deliveries an inbox may receive at once before it is answered 429.
    #[arg(long, default_value_t = InboxOptions::default().rate_burst)]
    inbox_rate_burst: u32,
    /// Deliveries per second an inbox's rate limit refills.
    #[arg(long, default_value_t = InboxOptions::default().rate_per_sec)]
    inbox_rate_per_sec: f64,
    /// Events kept per integrated account; older ones beyond it are swept.
    #[arg(long, default_value_t = InboxOptions::default().retention.max_per_account)]
    event_max_count: usize,
    /// Days an event is kept.
    #[arg(long, default_value_t = InboxOptions::default().retention.max_age.as_secs_f64() / 86_400.0)]
    event_max_age_days: f64,
}

impl InboxFlags {
    fn options(&self) -> anyhow::Result<InboxOptions> {
        if !(self.inbox_rate_per_sec.is_finite() && self.inbox_rate_per_sec > 0.0) {
            anyhow::bail!(
                "--inbox-rate-per-sec must be a positive number, got {}",
                self.inbox_rate_per_sec
            );
        }
        let max_age =
            seconds("event-max-age-days", self.event_max_age_days * 86_400.0).map_err(|_| {
                anyhow::anyhow!(
                    "--event-max-age-days must be a positive number of days, got {}",
                    self.event_max_age_days
                )
            })?;
        Ok(InboxOptions {
            max_body: at_least_one("inbox-max-body", self.inbox_max_body)?,
            rate_burst: u32::try_from(at_least_one(
                "inbox-rate-burst",
                self.inbox_rate_burst as usize,
            )?)?,
            rate_per_sec: self.inbox_rate_per_sec,
            retention: EventRetention {
                max_per_account: at_least_one("event-max-count", self.event_max_count)?,
                max_age,
            },
        })
    }
}

/// What one client may hold at once and how long it may keep the server
/// waiting (defaults in README, "Limits").
#[derive(Args)]
struct LimitFlags {
    /// Open connections in total; more are answered 503 and closed.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection may take to send a request head (also how long
    /// an idle keep-alive connection stays open).
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a request body may take to arrive.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
    /// Seconds a connection may pass with no byte moving either way.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Live 2025-11-25 sessions per provisioned MCP server.
    #[arg(long, default_value_t = Limits::default().sessions_per_server)]
    max_sessions_per_server: usize,
    /// Live 2025-11-25 sessions in total.
    #[arg(long, default_value_t = Limits::default().sessions_total)]
    max_sessions: usize,
    /// Seconds a session may pass with no request in flight and no stream
    /// open before it ends.
    #[arg(long, default_value_t = Limits::default().session_idle_timeout.as_secs_f64())]
    session_idle_timeout: f64,
    /// Seconds an idle session keeps its in-memory service before it is
    /// kept as a small record instead (restored on its next request).
    #[arg(long, default_value_t = Limits::default().session_evict_after.as_secs_f64())]
    session_evict_after: f64,
    /// Open SSE streams per provisioned MCP server.
    #[arg(long, default_value_t = Limits::default().streams_per_server)]
    max_streams_per_server: usize,
    /// Open SSE streams in total.
    #[arg(long, default_value_t = Limits::default().streams_total)]
    max_streams: usize,
    /// Requests of one provisioned MCP server handled at once; more get 429.
    #[arg(long, default_value_t = Limits::default().in_flight_per_server)]
    max_in_flight_per_server: usize,
    /// Requests per second one provisioned MCP server may sustain; more get
    /// 429 with Retry-After.
    #[arg(long, default_value_t = Limits::default().requests_per_second_per_server)]
    max_requests_per_second_per_server: u32,
    /// Requests one provisioned MCP server may send at once above that rate.
    #[arg(long, default_value_t = Limits::default().request_burst_per_server)]
    request_burst_per_server: u32,
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        anyhow::bail!("--{flag} must be a positive number of seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn at_least_one(flag: &str, value: usize) -> anyhow::Result<usize> {
    if value == 0 {
        anyhow::bail!("--{flag} must be at least 1");
    }
    Ok(value)
}

impl LimitFlags {
    fn limits(&self) -> anyhow::Result<Limits> {
        Ok(Limits {
            max_connections: at_least_one("max-connections", self.max_connections)?,
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            body_timeout: seconds("body-timeout", self.body_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            sessions_per_server: at_least_one(
                "max-sessions-per-server",
                self.max_sessions_per_server,
            )?,
            sessions_total: at_least_one("max-sessions", self.max_sessions)?,
            session_idle_timeout: seconds("session-idle-timeout", self.session_idle_timeout)?,
            session_evict_after: seconds("session-evict-after", self.session_evict_after)?,
            streams_per_server: at_least_one(
                "max-streams-per-server",
                self.max_streams_per_server,
            )?,
            streams_total: at_least_one("max-streams", self.max_streams)?,
            in_flight_per_server: at_least_one(
                "max-in-flight-per-server",
                self.max_in_flight_per_server,
            )?,
            requests_per_second_per_server: at_least_one(
                "max-requests-per-second-per-server",
                self.max_requests_per_second_per_server as usize,
            )? as u32,
            request_burst_per_server: at_least_one(
                "request-burst-per-server",
                self.request_burst_per_server as usize,
            )? as u32,
        })
    }
}

#[derive(Args)]
struct StdioArgs {
    /// Use the embedded sandbox even when MALOMO_API_KEY is set.
    #[arg(long)]
    sandbox: bool,
    /// Only tools of these method classes (read: only reads upstream; write: can change anything upstream; custom) or method names (list, get, ..., add_shipment).
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// Only tools with one of these tags.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Upstream request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    upstream_timeout: u64,
    /// Largest upstream answer read, in bytes; a larger one is a tool error.
    #[arg(long, default_value_t = malomo_mcp::runtime::DEFAULT_MAX_UPSTREAM_BODY)]
    max_upstream_body: usize,
    #[command(flatten)]
    sandbox_flags: SandboxFlags,
}

#[derive(Args)]
struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    #[command(flatten)]
    flags: SandboxFlags,
}

#[derive(Args)]
struct ToolsArgs {
    /// Print MCP tool objects as a JSON array.
    #[arg(long)]
    json: bool,
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
}

fn init_logs(json: bool) {
    // rmcp logs protocol details at debug and below; the URL token is in
    // the request path, so keep it quiet unless asked for explicitly.
    let filter = tracing_subscriber::EnvFilter::try_from_env("MALOMO_MCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    // Colours only for a terminal: not into log files or collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn filter(methods: Vec<String>, tags: Vec<String>) -> anyhow::Result<ToolFilter> {
    let filter = ToolFilter { methods, tags };
    filter.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(filter)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        // Before any thread: memory freed after a flood must go back to
        // the OS (see `memory`).
        malomo_mcp::memory::without_thread_caches();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            init_logs(args.log_json);
            let upstream = Upstream::from_env(args.sandbox.config()?);
            // Said from the upstream chosen, not by reading the environment again.
            let described = match &upstream {
                Upstream::Remote { .. } => {
                    format!("{} (account `{}`)", INTEGRATION.title, INTEGRATION.name)
                }
                Upstream::Sandbox(_) => "the embedded sandbox (account `sandbox`; set MALOMO_API_KEY for a real account)".to_owned(),
            };
            let server = serve::start(ServeOptions {
                listen: args.listen,
                db: args.db,
                public_url: args.public_url,
                allowed_hosts: args.allowed_hosts,
                upstream,
                admin_token: std::env::var("MALOMO_MCP_ADMIN_TOKEN").ok(),
                upstream_timeout: Duration::from_secs(args.upstream_timeout),
                max_upstream_body: args.max_upstream_body,
                limits: args.limits.limits()?,
                node_name: args.node_name,
                sweep_every: Duration::from_secs(args.sweep_every),
                inbox: args.inbox.options()?,
            })
            .await?;
            println!(
                "malomo-mcp listening on http://{} for {described}",
                server.addr
            );
            println!(
                "MCP URL (shown once; it is the credential): {}",
                server.mcp_url
            );
            println!(
                "  claude mcp add --transport http malomo {}",
                server.mcp_url
            );
            println!(
                "Console (one-time sign-in link, valid 10 minutes): {}",
                server.console_link
            );
            let stop = server.shutdown_token();
            tokio::spawn(async move {
                serve::shutdown_signal().await;
                tracing::info!("shutting down");
                stop.cancel();
            });
            server.wait().await;
            Ok(())
        }
        Command::Stdio(args) => {
            // stdout carries the protocol: logs go to stderr, warnings only.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("MALOMO_MCP_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .try_init();
            let filter = filter(args.methods, args.tags)?;
            let config = args.sandbox_flags.config()?;
            let upstream = if args.sandbox {
                Upstream::Sandbox(config)
            } else {
                Upstream::from_env(config)
            };
            serve::stdio(
                upstream,
                filter,
                Duration::from_secs(args.upstream_timeout),
                args.max_upstream_body,
            )
            .await
        }
        Command::Sandbox(args) => {
            init_logs(false);
            let handle = sandbox::start(args.listen, args.flags.config()?).await?;
            println!("Malomo sandbox listening on {}", handle.base_url());
            println!("  secret key:      {}", handle.secret_key());
            println!("  publishable key: {}", handle.publishable_key());
            serve::shutdown_signal().await;
            handle.shutdown().await;
            Ok(())
        }
        Command::Servers(cmd) => malomo_mcp::admin::cli::run_servers(cmd),
        Command::AdminToken(cmd) => malomo_mcp::admin::cli::run_admin_token(cmd),
        Command::Tools(args) => {
            let filter = filter(args.methods, args.tags)?;
            let tools: Vec<_> = TOOLS.iter().filter(|t| filter.allows(t)).collect();
            if args.json {
                let objects = tools
                    .iter()
                    .map(|t| mcp_tool(t, &filter))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                println!("{}", serde_json::to_string_pretty(&objects)?);
            } else {
                for tool in tools {
                    let class = match tool.custom {
                        true => format!("{},custom", tool.class.as_str()),
                        false => tool.class.as_str().to_string(),
                    };
                    println!("{:<56} {:<12} {}", tool.name, class, tool.tags.join(","));
                }
            }
            Ok(())
        }
    }
}
