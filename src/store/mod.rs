//! The store of integrated accounts, provisioned MCP servers, their client
//! tokens and admin API tokens.
//!
//! [`Store`] owns the secrets policy: Malomo API keys are sealed with
//! AES-256-GCM under the master key before they reach a [`Backend`], and of a
//! capability, client or admin token only its SHA-256 is ever kept. The backend (SQLite
//! here; the [`Backend`] trait is what a PostgreSQL one would implement) only
//! stores rows.

mod backend;
mod crypto;
mod events;
mod migrations;
mod postgres;
mod sqlite;
mod sweeper;
#[doc(hidden)]
pub mod testing;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use time::OffsetDateTime;

use crate::access::{FilterError, ToolFilter};
use crate::catalog::{self, ToolDef};

pub use backend::{AccountRow, Backend, BackendError, ClientTokenRow, ResolvedRow, ServerRow};
pub use crypto::{MASTER_KEY_ENV, key_file_path, mask_key};
pub use events::{CreatedInbox, EventOutcome, EventRetention, InboxInfo, ResolvedInbox};
pub use postgres::{PostgresBackend, is_postgres_url, redact_url};
pub use sqlite::SqliteBackend;
pub use sweeper::spawn_sweeper;

use crypto::MasterKey;
pub(crate) use crypto::{new_token, token_hash};

/// Why a store operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Bad input; `field` names it as the admin API spells it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("integrated account {0:?} not found")]
    AccountNotFound(String),
    #[error("MCP server {0:?} not found")]
    ServerNotFound(String),
    /// Client tokens only exist for servers with `require_api_token_auth`.
    #[error(
        "MCP server {0:?} does not require a client token (it was created without \
         require_api_token_auth), so a client token would have no use"
    )]
    NoSecondFactor(String),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Conflict(what) => StoreError::Conflict(what),
            BackendError::Missing(what) => StoreError::AccountNotFound(what.to_string()),
            BackendError::Other(e) => StoreError::Internal(e),
        }
    }
}

/// An integrated account as shown to people: the key masked.
#[derive(Clone, Debug)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub base_url: String,
    /// e.g. `sk_…abcd`.
    pub masked_api_key: String,
    pub created_at: OffsetDateTime,
}

/// A provisioned MCP server as shown to people (never its token).
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub filter: ToolFilter,
    pub require_api_token_auth: bool,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// Bytes of JSON a get or list answer may take, replacing each tool's
    /// own budget; `None` keeps the tools' budgets (from the spec).
    pub answer_budget: Option<u32>,
}

/// What a new server is made of.
#[derive(Clone, Debug)]
pub struct NewServer {
    pub name: String,
    pub filter: ToolFilter,
    pub require_api_token_auth: bool,
    /// Truncated to the second; must be after the current second.
    pub expires_at: Option<OffsetDateTime>,
    /// Bytes; see [`ServerInfo::answer_budget`]. Checked with
    /// [`validate::answer_budget`].
    pub answer_budget: Option<u64>,
}

/// A new server and its capability token, which exists only here.
#[derive(Clone)]
pub struct CreatedServer {
    pub server: ServerInfo,
    pub token: String,
    /// The first client token, when the server requires one
    /// (`require_api_token_auth`).
    pub client_token: Option<CreatedClientToken>,
}

impl fmt::Debug for CreatedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedServer")
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .field("client_token", &self.client_token)
            .finish()
    }
}

/// A client token of a server as shown to people (never the token).
#[derive(Clone, Debug)]
pub struct ClientTokenInfo {
    pub id: String,
    pub server_id: String,
    pub created_at: OffsetDateTime,
}

/// A new client token; its plain text exists only here.
#[derive(Clone)]
pub struct CreatedClientToken {
    pub info: ClientTokenInfo,
    pub token: String,
}

impl fmt::Debug for CreatedClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedClientToken")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A live server found by its token, with what a tool call needs.
#[derive(Clone)]
pub struct ResolvedServer {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub base_url: String,
    /// The decrypted Malomo API key.
    pub api_key: String,
    pub filter: ToolFilter,
    pub require_api_token_auth: bool,
    pub expires_at: Option<OffsetDateTime>,
    /// See [`ServerInfo::answer_budget`].
    pub answer_budget: Option<u32>,
}

impl fmt::Debug for ResolvedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedServer")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("filter", &self.filter)
            .field("require_api_token_auth", &self.require_api_token_auth)
            .field("expires_at", &self.expires_at)
            .field("answer_budget", &self.answer_budget)
            .finish()
    }
}

struct Inner {
    backend: Box<dyn Backend>,
    key: MasterKey,
    /// Hashes of admin tokens accepted for this process only
    /// (`MALOMO_MCP_ADMIN_TOKEN`), never written to the database.
    session_admin_hashes: RwLock<Vec<[u8; 32]>>,
    /// Servers resolved since the database last changed (see
    /// [`Store::resolve_token`]).
    resolved: Mutex<ResolvedCache>,
    /// Token lookups that went to the backend (cache misses).
    database_lookups: AtomicU64,
}

/// Resolved servers by token hash, and client tokens found valid, both
/// valid while the backend's change counter stays where it was when they
/// were read.
#[derive(Default)]
struct ResolvedCache {
    counter: Option<i64>,
    /// Moves when this process changes the store: its own changes count at
    /// once, before the backend's change notice comes back (PostgreSQL).
    local_changes: u64,
    servers: HashMap<[u8; 32], ResolvedServer>,
    /// (server id, client token hash) pairs that matched.
    client_tokens: HashSet<(String, [u8; 32])>,
}

impl ResolvedCache {
    /// Forgets everything when the database changed since it was filled.
    fn sync(&mut self, counter: i64) {
        if self.counter != Some(counter) {
            self.servers.clear();
            self.client_tokens.clear();
            self.counter = Some(counter);
        }
    }
}

/// Cached servers (and client tokens) at most; past that the cache starts over.
const MAX_CACHED_SERVERS: usize = 10_000;

/// Handle to the store; cheap to clone, shareable across threads. Its
/// methods block on the database: call them from `spawn_blocking` where
/// latency matters.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// The table filters are validated against ([`catalog::TOOLS`] unless
    /// replaced with [`Store::with_tools`]).
    tools: &'static [&'static ToolDef],
}

/// Tokens longer than this are unknown without asking the database.
const MAX_TOKEN_LEN: usize = 256;
const KEY_CHECK: &str = "master_key_check";
const CURSOR_KEY: &str = "cursor_signing_key";

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn from_secs(secs: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).context("timestamp out of range in store")
}

impl Store {
    /// Opens the database `db`, migrated: a `postgres://` URL, else the path
    /// of a SQLite file (created if needed, WAL). The master key comes from
    /// `MALOMO_MCP_MASTER_KEY`, which PostgreSQL requires; SQLite falls back
    /// to `<db>.key`.
    pub fn open(db: &Path) -> anyhow::Result<Store> {
        let key = match postgres_url(db) {
            Some(_) => MasterKey::from_env_for_shared_db()?,
            None => MasterKey::load_for(db)?,
        };
        Store::with_backend(open_backend(db)?, key)
    }

    /// Opens with an explicit master key (32 bytes), ignoring the environment.
    pub fn open_with_key(db: &Path, master_key: &[u8; 32]) -> anyhow::Result<Store> {
        Store::with_backend(open_backend(db)?, MasterKey::from_bytes(master_key))
    }

    fn with_backend(backend: Box<dyn Backend>, key: MasterKey) -> anyhow::Result<Store> {
        // A sealed known value tells a wrong master key apart from a corrupt
        // row before any request fails on it.
        let check = key.seal(KEY_CHECK.as_bytes(), KEY_CHECK.as_bytes())?;
        let stored = backend
            .init_meta(KEY_CHECK, &check)
            .map_err(anyhow::Error::from)?;
        key.open(&stored, KEY_CHECK.as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "the master key does not match the one this database was created with \
                 (check {MASTER_KEY_ENV} or the .key file beside the database)"
            )
        })?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                key,
                session_admin_hashes: RwLock::new(Vec::new()),
                resolved: Mutex::new(ResolvedCache::default()),
                database_lookups: AtomicU64::new(0),
            }),
            tools: catalog::TOOLS,
        })
    }

    /// The key that signs list cursors: made once per store (sealed under
    /// the master key) so that every node sharing the store accepts the
    /// cursors of the others, and a restart keeps them valid.
    pub fn cursor_key(&self) -> anyhow::Result<[u8; 32]> {
        let mut fresh = [0u8; 32];
        rand::fill(&mut fresh);
        let sealed = self.inner.key.seal(&fresh, CURSOR_KEY.as_bytes())?;
        let stored = self
            .backend()
            .init_meta(CURSOR_KEY, &sealed)
            .map_err(anyhow::Error::from)?;
        let key = self.inner.key.open(&stored, CURSOR_KEY.as_bytes())?;
        key.try_into()
            .map_err(|_| anyhow::anyhow!("the stored cursor key is not 32 bytes"))
    }

    /// Validates filters against `tools` instead of the generated table.
    pub fn with_tools(mut self, tools: &'static [&'static ToolDef]) -> Store {
        self.tools = tools;
        self
    }

    /// The table filters are validated against.
    pub fn tools(&self) -> &'static [&'static ToolDef] {
        self.tools
    }

    fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// Whether other nodes share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.backend().is_shared()
    }

    // ---- integrated accounts ----

    /// Creates an account; a taken name is a [`StoreError::Conflict`].
    pub fn create_account(
        &self,
        name: &str,
        api_key: &str,
        base_url: &str,
    ) -> Result<AccountInfo, StoreError> {
        validate::name("name", name)?;
        validate::api_key("malomo_api_key", api_key)?;
        validate::base_url("base_url", base_url)?;
        let id = uuid::Uuid::new_v4().to_string();
        let row = AccountRow {
            api_key_sealed: self.inner.key.seal(api_key.as_bytes(), id.as_bytes())?,
            api_key_masked: mask_key(api_key),
            id,
            name: name.to_string(),
            base_url: base_url.to_string(),
            created_at: now_secs(),
        };
        self.backend().insert_account(&row)?;
        account_info(row)
    }

    /// Upsert by name: an existing account keeps its id (and its servers) and
    /// gets the new key and base URL.
    pub fn ensure_account(
        &self,
        name: &str,
        api_key: &str,
        base_url: &str,
    ) -> anyhow::Result<String> {
        validate::name("name", name)?;
        validate::api_key("api_key", api_key)?;
        validate::base_url("base_url", base_url)?;
        for _ in 0..3 {
            if let Some(row) = self.backend().get_account_by_name(name)? {
                let sealed = self.inner.key.seal(api_key.as_bytes(), row.id.as_bytes())?;
                let updated = self.backend().update_account_secret(
                    &row.id,
                    base_url,
                    &sealed,
                    &mask_key(api_key),
                );
                self.forget_resolved();
                if updated? {
                    return Ok(row.id);
                }
                continue; // deleted meanwhile: create it
            }
            match self.create_account(name, api_key, base_url) {
                Ok(info) => return Ok(info.id),
                Err(StoreError::Conflict(_)) => continue, // created meanwhile
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("integrated account {name:?} keeps changing; try again")
    }

    pub fn list_accounts(&self) -> Result<Vec<AccountInfo>, StoreError> {
        self.backend()
            .list_accounts()?
            .into_iter()
            .map(account_info)
            .collect()
    }

    pub fn get_account(&self, id: &str) -> Result<Option<AccountInfo>, StoreError> {
        self.backend()
            .get_account(id)?
            .map(account_info)
            .transpose()
    }

    /// By id, else by name (for the CLI's `--account`).
    pub fn find_account(&self, id_or_name: &str) -> Result<Option<AccountInfo>, StoreError> {
        if let Some(a) = self.get_account(id_or_name)? {
            return Ok(Some(a));
        }
        self.backend()
            .get_account_by_name(id_or_name)?
            .map(account_info)
            .transpose()
    }

    /// Deletes the account and revokes all its servers, atomically. Returns
    /// the number of servers revoked, or `None` when there was no account.
    pub fn delete_account(&self, id: &str) -> Result<Option<usize>, StoreError> {
        let deleted = self.backend().delete_account(id);
        self.forget_resolved();
        Ok(deleted?)
    }

    // ---- MCP servers ----

    /// Provisions a server; the plaintext token exists only in the answer.
    pub fn create_server(
        &self,
        account_id: &str,
        req: NewServer,
    ) -> Result<CreatedServer, StoreError> {
        validate::name("name", &req.name)?;
        validate::filter_values("config.methods", &req.filter.methods)?;
        validate::filter_values("config.tags", &req.filter.tags)?;
        let filter = req.filter.normalized();
        filter.validate_against(self.tools)?;
        let answer_budget = req
            .answer_budget
            .map(|b| validate::answer_budget("answer_budget", b))
            .transpose()?;
        let now = now_secs();
        let expires_at = req.expires_at.map(|t| t.unix_timestamp());
        if let Some(exp) = expires_at
            && exp <= now
        {
            return Err(StoreError::Invalid {
                field: "expires_at".to_string(),
                message: "must be in the future".to_string(),
            });
        }
        let token = new_token();
        let id = uuid::Uuid::new_v4().to_string();
        let client_token = req
            .require_api_token_auth
            .then(|| new_client_token(&id, now));
        let row = ServerRow {
            id,
            account_id: account_id.to_string(),
            name: req.name,
            token_hash: token_hash(&token),
            methods: filter.methods,
            tags: filter.tags,
            require_api_token_auth: req.require_api_token_auth,
            expires_at,
            created_at: now,
            answer_budget: answer_budget.map(i64::from),
        };
        let client_row = client_token.as_ref().map(|(row, _)| row);
        match self.backend().insert_server(&row, client_row) {
            Ok(()) => {}
            Err(BackendError::Missing(_)) => {
                return Err(StoreError::AccountNotFound(account_id.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CreatedServer {
            server: server_info(row)?,
            token,
            client_token: client_token
                .map(|(row, token)| created_client_token(row, token))
                .transpose()?,
        })
    }

    /// Servers of one account, or of all accounts; never their tokens.
    pub fn list_servers(&self, account_id: Option<&str>) -> Result<Vec<ServerInfo>, StoreError> {
        self.backend()
            .list_servers(account_id)?
            .into_iter()
            .map(|r| server_info(r).map_err(StoreError::from))
            .collect()
    }

    pub fn get_server(&self, id: &str) -> Result<Option<ServerInfo>, StoreError> {
        Ok(self
            .backend()
            .get_server(id)?
            .map(server_info)
            .transpose()?)
    }

    /// Revokes a server at once; false when there was none.
    pub fn delete_server(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.backend().delete_server(id);
        self.forget_resolved();
        Ok(deleted?)
    }

    /// Deletes the account's servers called `name` (used by `serve` to
    /// replace its default server on each start).
    pub fn delete_servers_named(&self, account_id: &str, name: &str) -> anyhow::Result<usize> {
        let deleted = self.backend().delete_servers_named(account_id, name);
        self.forget_resolved();
        Ok(deleted?)
    }

    /// The live server holding `token`. Unknown, revoked and expired tokens
    /// all give `None`. Reads the database every time, so a revocation by
    /// another process takes effect at once.
    ///
    /// Resolved servers are cached (with their decrypted key) for as long
    /// as the database is unchanged: every lookup first reads the backend's
    /// change counter, which moves with any commit by any connection, so a
    /// revocation from the CLI of another process still counts at once.
    /// Expiry is checked on every lookup. Unknown tokens are never cached.
    pub fn resolve_token(&self, token: &str) -> anyhow::Result<Option<ResolvedServer>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash = token_hash(token);
        let now = now_secs();
        let counter = self.backend().change_counter()?;
        let mut local_changes = None;
        if let Some(counter) = counter
            && let Ok(mut cache) = self.inner.resolved.lock()
        {
            cache.sync(counter);
            if let Some(server) = cache.servers.get(&hash) {
                let live = server.expires_at.is_none_or(|at| at.unix_timestamp() > now);
                return Ok(live.then(|| server.clone()));
            }
            local_changes = Some(cache.local_changes);
        }
        let resolved = self.resolve_uncached(&hash, now)?;
        if let (Some(counter), Some(server)) = (counter, &resolved)
            && let Ok(mut cache) = self.inner.resolved.lock()
            && cache.counter == Some(counter)
            && local_changes == Some(cache.local_changes)
        {
            if cache.servers.len() >= MAX_CACHED_SERVERS {
                cache.servers.clear();
            }
            cache.servers.insert(hash, server.clone());
        }
        Ok(resolved)
    }

    /// Drops cached servers after this process changed the store.
    fn forget_resolved(&self) {
        if let Ok(mut cache) = self.inner.resolved.lock() {
            cache.servers.clear();
            cache.client_tokens.clear();
            cache.local_changes += 1;
        }
    }

    /// How many token lookups missed the cache and asked the database.
    pub fn database_lookups(&self) -> u64 {
        self.inner.database_lookups.load(Ordering::Relaxed)
    }

    fn resolve_uncached(
        &self,
        hash: &[u8; 32],
        now: i64,
    ) -> anyhow::Result<Option<ResolvedServer>> {
        self.inner.database_lookups.fetch_add(1, Ordering::Relaxed);
        let Some(row) = self.backend().resolve(hash, now)? else {
            return Ok(None);
        };
        let key = self
            .inner
            .key
            .open(&row.api_key_sealed, row.account_id.as_bytes())
            .context("decrypting the integrated account's API key")?;
        Ok(Some(ResolvedServer {
            api_key: String::from_utf8(key).context("stored API key is not UTF-8")?,
            id: row.server_id,
            name: row.server_name,
            account_id: row.account_id,
            base_url: row.base_url,
            filter: ToolFilter {
                methods: row.methods,
                tags: row.tags,
            },
            require_api_token_auth: row.require_api_token_auth,
            expires_at: row.expires_at.map(from_secs).transpose()?,
            answer_budget: stored_budget(row.answer_budget)?,
        }))
    }

    /// Deletes expired servers; returns how many.
    pub fn sweep_expired(&self) -> anyhow::Result<usize> {
        let deleted = self.backend().delete_expired(now_secs())?;
        if deleted > 0 {
            self.forget_resolved();
        }
        Ok(deleted)
    }

    // ---- client tokens (a server's second factor) ----

    /// Mints a client token for a server that requires one; the plaintext
    /// exists only in the answer.
    pub fn create_client_token(&self, server_id: &str) -> Result<CreatedClientToken, StoreError> {
        let server = self
            .backend()
            .get_server(server_id)?
            .ok_or_else(|| StoreError::ServerNotFound(server_id.to_string()))?;
        if !server.require_api_token_auth {
            return Err(StoreError::NoSecondFactor(server_id.to_string()));
        }
        let (row, token) = new_client_token(server_id, now_secs());
        match self.backend().insert_client_token(&row) {
            Ok(()) => Ok(created_client_token(row, token)?),
            // Deleted between the two calls.
            Err(BackendError::Missing(_)) => Err(StoreError::ServerNotFound(server_id.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// A server's client tokens, oldest first; never the tokens themselves.
    pub fn list_client_tokens(&self, server_id: &str) -> Result<Vec<ClientTokenInfo>, StoreError> {
        if self.backend().get_server(server_id)?.is_none() {
            return Err(StoreError::ServerNotFound(server_id.to_string()));
        }
        self.backend()
            .list_client_tokens(server_id)?
            .into_iter()
            .map(|row| Ok(client_token_info(&row)?))
            .collect()
    }

    /// Revokes one client token; the next request that presents it is
    /// refused, in this process and in any other on the same database.
    /// False when the server has no such token.
    pub fn delete_client_token(&self, server_id: &str, token_id: &str) -> Result<bool, StoreError> {
        let deleted = self.backend().delete_client_token(server_id, token_id);
        self.forget_resolved();
        Ok(deleted?)
    }

    /// Whether `token` is a live client token of server `server_id`. Found
    /// tokens are cached like resolved servers: only until the database
    /// changes (see [`Store::resolve_token`]), so a revocation counts at once.
    pub fn verify_client_token(&self, server_id: &str, token: &str) -> anyhow::Result<bool> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(false);
        }
        let key = (server_id.to_string(), token_hash(token));
        let counter = self.backend().change_counter()?;
        let mut local_changes = None;
        if let Some(counter) = counter
            && let Ok(mut cache) = self.inner.resolved.lock()
        {
            cache.sync(counter);
            if cache.client_tokens.contains(&key) {
                return Ok(true);
            }
            local_changes = Some(cache.local_changes);
        }
        let matches = self.backend().client_token_matches(server_id, &key.1)?;
        if let (Some(counter), true) = (counter, matches)
            && let Ok(mut cache) = self.inner.resolved.lock()
            && cache.counter == Some(counter)
            && local_changes == Some(cache.local_changes)
        {
            if cache.client_tokens.len() >= MAX_CACHED_SERVERS {
                cache.client_tokens.clear();
            }
            cache.client_tokens.insert(key);
        }
        Ok(matches)
    }

    // ---- admin API tokens ----

    /// Creates a persistent admin token; returns it (shown once), stores its hash.
    pub fn create_admin_token(&self) -> anyhow::Result<String> {
        let token = new_token();
        self.backend()
            .insert_admin_token(&token_hash(&token), now_secs())?;
        Ok(token)
    }

    /// Accepts `token` as an admin token for the life of this process
    /// (`MALOMO_MCP_ADMIN_TOKEN`); only its hash is kept, in memory.
    pub fn add_admin_token_hash(&self, token: &str) -> anyhow::Result<()> {
        if token.is_empty() {
            anyhow::bail!("admin token must not be empty");
        }
        let hash = token_hash(token);
        let mut hashes = self
            .inner
            .session_admin_hashes
            .write()
            .map_err(|_| anyhow::anyhow!("admin token list poisoned"))?;
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
        Ok(())
    }

    /// Whether `token` is an admin token (persistent or of this process).
    pub fn verify_admin_token(&self, token: &str) -> anyhow::Result<bool> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(false);
        }
        let hash = token_hash(token);
        let in_session = self
            .inner
            .session_admin_hashes
            .read()
            .map(|h| h.contains(&hash))
            .unwrap_or(false);
        Ok(in_session || self.backend().admin_token_exists(&hash)?)
    }
}

fn postgres_url(db: &Path) -> Option<&str> {
    db.to_str().filter(|s| is_postgres_url(s))
}

fn open_backend(db: &Path) -> anyhow::Result<Box<dyn Backend>> {
    Ok(match postgres_url(db) {
        Some(url) => Box::new(PostgresBackend::open(url)?),
        None => Box::new(SqliteBackend::open(db)?),
    })
}

fn account_info(row: AccountRow) -> Result<AccountInfo, StoreError> {
    Ok(AccountInfo {
        id: row.id,
        name: row.name,
        base_url: row.base_url,
        masked_api_key: row.api_key_masked,
        created_at: from_secs(row.created_at)?,
    })
}

/// A fresh client token for `server_id` and the row that stores its hash.
fn new_client_token(server_id: &str, now: i64) -> (ClientTokenRow, String) {
    let token = new_token();
    let row = ClientTokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        server_id: server_id.to_string(),
        token_hash: token_hash(&token),
        created_at: now,
    };
    (row, token)
}

fn client_token_info(row: &ClientTokenRow) -> anyhow::Result<ClientTokenInfo> {
    Ok(ClientTokenInfo {
        id: row.id.clone(),
        server_id: row.server_id.clone(),
        created_at: from_secs(row.created_at)?,
    })
}

fn created_client_token(row: ClientTokenRow, token: String) -> anyhow::Result<CreatedClientToken> {
    Ok(CreatedClientToken {
        info: client_token_info(&row)?,
        token,
    })
}

fn server_info(row: ServerRow) -> anyhow::Result<ServerInfo> {
    Ok(ServerInfo {
        id: row.id,
        name: row.name,
        account_id: row.account_id,
        filter: ToolFilter {
            methods: row.methods,
            tags: row.tags,
        },
        require_api_token_auth: row.require_api_token_auth,
        expires_at: row.expires_at.map(from_secs).transpose()?,
        created_at: from_secs(row.created_at)?,
        answer_budget: stored_budget(row.answer_budget)?,
    })
}

fn stored_budget(bytes: Option<i64>) -> anyhow::Result<Option<u32>> {
    bytes
        .map(|b| u32::try_from(b).context("answer_budget out of range in store"))
        .transpose()
}

#[cfg(test)]
mod tests;
