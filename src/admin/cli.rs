//! `malomo-mcp servers …` and `malomo-mcp admin-token create`: the admin API
//! over the store directly, for the operator on the machine.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use time::OffsetDateTime;

use super::handlers::{
    account_json, client_token_json, created_client_token_json, created_inbox_json,
    created_server_json, server_json,
};
use crate::access::ToolFilter;
use crate::store::{NewServer, Store, StoreError};

/// Where the store lives.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// SQLite database file, or a postgres:// URL (default: MALOMO_MCP_DATABASE_URL,
    /// else malomo-mcp.db).
    #[arg(long, env = "MALOMO_MCP_DB")]
    pub db: Option<PathBuf>,
}

impl DbArgs {
    /// `--db`, else `MALOMO_MCP_DATABASE_URL`, else `malomo-mcp.db`.
    pub fn location(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| {
            std::env::var_os(DATABASE_URL_ENV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from("malomo-mcp.db"), PathBuf::from)
        })
    }
}

/// The environment variable naming the database when `--db` is not given.
pub const DATABASE_URL_ENV: &str = "MALOMO_MCP_DATABASE_URL";

/// `malomo-mcp servers …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServersCommand {
    /// Provision an MCP server; prints its URL (holding its token) once.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Integrated account id or name (e.g. `sandbox`).
        #[arg(long)]
        account: String,
        /// Method classes (read: only reads upstream; write: can change
        /// anything upstream; custom: the custom methods) or method names
        /// (list, get, create, update, delete, or a custom method's name);
        /// repeat or comma-separate.
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Spec tags (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Lifetime, e.g. 90s, 15m, 1h, 2d, 1h30m.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
        /// Server name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Require a client token of this server (`Authorization: Bearer
        /// <client token>`) on MCP requests too; the first one is printed
        /// once. Mint more with `servers client-tokens create`.
        #[arg(long, alias = "require-api-token")]
        require_client_token: bool,
        /// Bytes of JSON a get or list answer of this server may take
        /// (1024 to 4194304), replacing each tool's own budget: longer
        /// lists come in more pages, larger gets ask for `fields`.
        #[arg(long, value_name = "BYTES")]
        answer_budget: Option<u64>,
        /// Public base URL of `malomo-mcp serve`, used to print the MCP URL.
        #[arg(
            long,
            env = "MALOMO_MCP_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
    },
    /// List provisioned servers (never their tokens).
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Only this integrated account (id or name).
        #[arg(long)]
        account: Option<String>,
    },
    /// Revoke a server at once.
    Delete {
        #[command(flatten)]
        db: DbArgs,
        /// Server id.
        id: String,
    },
    /// List integrated accounts (keys masked).
    Accounts {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create an integrated account's event inbox, or rotate it (the old URL
    /// stops working at once). Prints its URL, shown only now; the signing
    /// secret is never shown (the server fills it into the webhooks it
    /// creates).
    Inbox {
        #[command(flatten)]
        db: DbArgs,
        /// Integrated account id or name (e.g. `sandbox`).
        #[arg(long)]
        account: String,
        /// Public base URL of `malomo-mcp serve`, used to print the inbox URL.
        #[arg(
            long,
            env = "MALOMO_MCP_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
    },
    /// Mint, list and revoke the client tokens of a server created with
    /// `--require-client-token`.
    #[command(subcommand, name = "client-tokens")]
    ClientTokens(ClientTokensCommand),
}

/// `malomo-mcp servers client-tokens …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientTokensCommand {
    /// Mint a client token; prints it once, stores only its hash.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Server id.
        server: String,
    },
    /// List a server's client tokens (ids and dates, never the tokens).
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Server id.
        server: String,
    },
    /// Revoke a client token at once.
    Delete {
        #[command(flatten)]
        db: DbArgs,
        /// Server id.
        server: String,
        /// Client token id (from `list`).
        token_id: String,
    },
}

/// `malomo-mcp admin-token …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin API token; prints it once, stores only its hash.
    Create {
        #[command(flatten)]
        db: DbArgs,
    },
}

impl ServersCommand {
    pub fn db(&self) -> PathBuf {
        match self {
            ServersCommand::Create { db, .. }
            | ServersCommand::List { db, .. }
            | ServersCommand::Delete { db, .. }
            | ServersCommand::Accounts { db }
            | ServersCommand::Inbox { db, .. }
            | ServersCommand::ClientTokens(
                ClientTokensCommand::Create { db, .. }
                | ClientTokensCommand::List { db, .. }
                | ClientTokensCommand::Delete { db, .. },
            ) => db.location(),
        }
    }
}

/// Opens the store named by the command and runs it, printing JSON to stdout.
pub fn run_servers(cmd: ServersCommand) -> anyhow::Result<()> {
    let store = Store::open(&cmd.db())?;
    execute_servers(&store, &cmd, &mut std::io::stdout().lock())
}

/// Opens the store named by the command and runs it, printing to stdout.
pub fn run_admin_token(cmd: AdminTokenCommand) -> anyhow::Result<()> {
    let AdminTokenCommand::Create { db } = &cmd;
    let store = Store::open(&db.location())?;
    execute_admin_token(&store, &cmd, &mut std::io::stdout().lock())
}

fn print(out: &mut dyn Write, value: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn account_id(store: &Store, id_or_name: &str) -> anyhow::Result<String> {
    match store.find_account(id_or_name)? {
        Some(a) => Ok(a.id),
        None => bail!("integrated account {id_or_name:?} not found (see `servers accounts`)"),
    }
}

/// Runs a `servers` command against `store`.
pub fn execute_servers(
    store: &Store,
    cmd: &ServersCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        ServersCommand::Create {
            account,
            methods,
            tags,
            expires_in,
            name,
            require_client_token,
            answer_budget,
            public_url,
            ..
        } => {
            let account_id = account_id(store, account)?;
            let expires_at = expires_in
                .map(|d| {
                    time::Duration::try_from(d)
                        .ok()
                        .and_then(|d| OffsetDateTime::now_utc().checked_add(d))
                        .context("--expires-in is too long")
                })
                .transpose()?;
            let req = NewServer {
                name: name.clone(),
                filter: ToolFilter {
                    methods: methods.clone(),
                    tags: tags.clone(),
                },
                require_api_token_auth: *require_client_token,
                expires_at,
                answer_budget: *answer_budget,
            };
            let created = store.create_server(&account_id, req).map_err(cli_error)?;
            print(out, &created_server_json(&created, public_url))?;
            if created.client_token.is_some() {
                eprintln!(
                    "The URL above holds the server's token, and client_token is its second \
                     factor; neither is shown again."
                );
            } else {
                eprintln!("The URL above holds the server's token; it is not shown again.");
            }
        }
        ServersCommand::List { account, .. } => {
            let account_id = account
                .as_deref()
                .map(|a| account_id(store, a))
                .transpose()?;
            let servers = store.list_servers(account_id.as_deref())?;
            print(
                out,
                &json!(servers.iter().map(server_json).collect::<Vec<_>>()),
            )?;
        }
        ServersCommand::Delete { id, .. } => {
            if !store.delete_server(id)? {
                bail!("MCP server {id:?} not found");
            }
            print(out, &json!({ "deleted": id }))?;
        }
        ServersCommand::Accounts { .. } => {
            let accounts = store.list_accounts()?;
            print(
                out,
                &json!(accounts.iter().map(account_json).collect::<Vec<_>>()),
            )?;
        }
        ServersCommand::Inbox {
            account,
            public_url,
            ..
        } => {
            let account_id = account_id(store, account)?;
            let created = store.rotate_inbox(&account_id).map_err(cli_error)?;
            print(out, &created_inbox_json(&created, public_url))?;
            eprintln!(
                "The URL above holds the inbox token; it is not shown again. Any earlier \
                 inbox URL of this account no longer works."
            );
        }
        ServersCommand::ClientTokens(cmd) => execute_client_tokens(store, cmd, out)?,
    }
    Ok(())
}

fn execute_client_tokens(
    store: &Store,
    cmd: &ClientTokensCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        ClientTokensCommand::Create { server, .. } => {
            let created = store.create_client_token(server).map_err(cli_error)?;
            print(out, &created_client_token_json(&created))?;
            eprintln!("Store this client token now; only its hash is kept, it is not shown again.");
        }
        ClientTokensCommand::List { server, .. } => {
            let tokens = store.list_client_tokens(server).map_err(cli_error)?;
            print(
                out,
                &json!(tokens.iter().map(client_token_json).collect::<Vec<_>>()),
            )?;
        }
        ClientTokensCommand::Delete {
            server, token_id, ..
        } => {
            if !store.delete_client_token(server, token_id)? {
                bail!("MCP server {server:?} has no client token {token_id:?}");
            }
            print(out, &json!({ "deleted": token_id }))?;
        }
    }
    Ok(())
}

/// Runs an `admin-token` command against `store`.
pub fn execute_admin_token(
    store: &Store,
    cmd: &AdminTokenCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        AdminTokenCommand::Create { .. } => {
            let token = store.create_admin_token()?;
            print(out, &json!({ "admin_token": token }))?;
            eprintln!("Store this token now; only its hash is kept, it is not shown again.");
        }
    }
    Ok(())
}

/// Words a CLI user understands: field names become flag names.
fn cli_error(e: StoreError) -> anyhow::Error {
    let flag = |field: &str| match field {
        "config.methods" => "--methods".to_string(),
        "config.tags" => "--tags".to_string(),
        "expires_at" => "--expires-in".to_string(),
        "config" => "--methods/--tags".to_string(),
        "require_api_token_auth" => "--require-client-token".to_string(),
        "answer_budget" => "--answer-budget".to_string(),
        other => format!("--{other}"),
    };
    match &e {
        StoreError::Filter(f) => anyhow::anyhow!("{}: {f}", flag(f.field())),
        StoreError::Invalid { field, message } => anyhow::anyhow!("{}: {message}", flag(field)),
        StoreError::NoSecondFactor(_) => {
            anyhow::anyhow!("{e}; create a server with --require-client-token instead")
        }
        _ => e.into(),
    }
}

/// `90`, `90s`, `15m`, `1h`, `2d`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("unknown unit {c:?} in {text:?} (use s, m, h, d)")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("expected a number before {c:?} in {text:?}"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(format!(
            "expected a positive duration like 90s, 15m, 1h, 2d, not {text:?}"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(clap::Subcommand)]
    enum Command {
        #[command(subcommand)]
        Servers(ServersCommand),
        #[command(subcommand)]
        AdminToken(AdminTokenCommand),
    }

    #[test]
    fn commands_parse_as_documented() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "malomo-mcp",
            "servers",
            "create",
            "--account",
            "sandbox",
            "--methods",
            "read",
            "--tags",
            "orders",
            "--expires-in",
            "1h",
            "--db",
            "x.db",
        ])
        .unwrap();
        let Command::Servers(ServersCommand::Create {
            account,
            methods,
            expires_in,
            db,
            name,
            ..
        }) = cli.command
        else {
            panic!("not servers create");
        };
        assert_eq!(
            (account.as_str(), methods, name.as_str()),
            ("sandbox", vec!["read".to_string()], "cli")
        );
        assert_eq!(expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(db.location(), PathBuf::from("x.db"));
        for args in [
            &["malomo-mcp", "servers", "list"][..],
            &["malomo-mcp", "servers", "list", "--account", "sandbox"],
            &["malomo-mcp", "servers", "inbox", "--account", "sandbox"],
            &["malomo-mcp", "servers", "delete", "abc"],
            &["malomo-mcp", "servers", "client-tokens", "create", "srv"],
            &["malomo-mcp", "servers", "client-tokens", "list", "srv"],
            &[
                "malomo-mcp",
                "servers",
                "client-tokens",
                "delete",
                "srv",
                "tok",
            ],
            &[
                "malomo-mcp",
                "servers",
                "create",
                "--account",
                "a",
                "--require-client-token",
            ],
            &[
                "malomo-mcp",
                "servers",
                "create",
                "--account",
                "a",
                "--require-api-token",
            ],
            &[
                "malomo-mcp",
                "servers",
                "create",
                "--account",
                "a",
                "--answer-budget",
                "4096",
            ],
            &["malomo-mcp", "admin-token", "create", "--db", "y.db"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10").is_ok());
    }
}
