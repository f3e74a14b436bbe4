//! The storage interface under [`super::Store`].
//!
//! A backend stores rows and nothing else: sealing API keys, hashing tokens
//! and validating input happen above it, so a PostgreSQL backend only has to
//! implement these row operations (each one atomic).

/// An integrated account as stored (the API key sealed).
#[derive(Clone)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub base_url: String,
    /// nonce || AES-256-GCM ciphertext of the Malomo API key, AAD = id.
    pub api_key_sealed: Vec<u8>,
    pub api_key_masked: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A provisioned MCP server as stored.
#[derive(Clone)]
pub struct ServerRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// SHA-256 of the capability token.
    pub token_hash: [u8; 32],
    pub methods: Vec<String>,
    pub tags: Vec<String>,
    pub require_api_token_auth: bool,
    /// Unix seconds; the server is dead from this second on.
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Bytes; `None` keeps each tool's own budget.
    pub answer_budget: Option<i64>,
}

/// A client token of a server (its second factor), as stored: never the
/// token itself, only its SHA-256.
#[derive(Clone)]
pub struct ClientTokenRow {
    pub id: String,
    pub server_id: String,
    pub token_hash: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
}

/// What a token lookup returns: the server joined with its account.
pub struct ResolvedRow {
    pub server_id: String,
    pub server_name: String,
    pub account_id: String,
    pub base_url: String,
    pub api_key_sealed: Vec<u8>,
    pub methods: Vec<String>,
    pub tags: Vec<String>,
    pub require_api_token_auth: bool,
    pub expires_at: Option<i64>,
    pub answer_budget: Option<i64>,
}

/// An account's event inbox as stored: the token's hash (for lookups) and
/// the token and signing secret sealed under the master key.
#[derive(Clone)]
pub struct InboxRow {
    pub account_id: String,
    pub token_hash: [u8; 32],
    pub token_sealed: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A received event as stored.
#[derive(Clone, Debug)]
pub struct EventRow {
    /// Set by the backend; ignored on insert.
    pub seq: i64,
    pub account_id: String,
    pub topic: String,
    /// Unix milliseconds.
    pub received_at: i64,
    pub dedup_key: String,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub customer_email: Option<String>,
    pub tracking_code: Option<String>,
    pub status: Option<String>,
    pub payload: String,
}

/// Which events to list (already validated), newest first.
#[derive(Clone, Debug)]
pub struct EventFilter {
    pub account_id: String,
    pub topic: Option<String>,
    pub order_id: Option<String>,
    pub tracking_code: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Errors a backend reports in terms the layers above understand.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A unique constraint (e.g. the account name) was violated.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A referenced row (e.g. the account of a new server) does not exist.
    #[error("{0} not found")]
    Missing(&'static str),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type BackendResult<T> = Result<T, BackendError>;

/// Row storage for accounts, servers, their client tokens and admin tokens.
pub trait Backend: Send + Sync {
    fn get_meta(&self, key: &str) -> BackendResult<Option<Vec<u8>>>;
    /// Sets `key` only when it is absent; returns the value now stored.
    fn init_meta(&self, key: &str, value: &[u8]) -> BackendResult<Vec<u8>>;

    fn insert_account(&self, row: &AccountRow) -> BackendResult<()>;
    /// Replaces the key and base URL of an existing account; false when the
    /// account is gone.
    fn update_account_secret(
        &self,
        id: &str,
        base_url: &str,
        api_key_sealed: &[u8],
        api_key_masked: &str,
    ) -> BackendResult<bool>;
    fn list_accounts(&self) -> BackendResult<Vec<AccountRow>>;
    fn get_account(&self, id: &str) -> BackendResult<Option<AccountRow>>;
    fn get_account_by_name(&self, name: &str) -> BackendResult<Option<AccountRow>>;
    /// Deletes the account and all its servers in one transaction; returns
    /// the number of servers deleted, or `None` when there was no account.
    fn delete_account(&self, id: &str) -> BackendResult<Option<usize>>;

    /// Inserts the server and, when given, its first client token, in one
    /// transaction. Fails with `Missing("integrated account")` when the
    /// account is gone.
    fn insert_server(
        &self,
        row: &ServerRow,
        client_token: Option<&ClientTokenRow>,
    ) -> BackendResult<()>;
    fn list_servers(&self, account_id: Option<&str>) -> BackendResult<Vec<ServerRow>>;
    fn get_server(&self, id: &str) -> BackendResult<Option<ServerRow>>;
    /// Deletes the server and its client tokens (as every server deletion
    /// here does: by account, by name, by expiry).
    fn delete_server(&self, id: &str) -> BackendResult<bool>;
    fn delete_servers_named(&self, account_id: &str, name: &str) -> BackendResult<usize>;
    /// The live server with this token hash (`expires_at` unset or after `now`).
    fn resolve(&self, token_hash: &[u8; 32], now: i64) -> BackendResult<Option<ResolvedRow>>;
    /// A number that changes whenever any connection (in this process or
    /// another) commits a change, so that resolved servers can be cached
    /// and dropped as soon as anything changed. `None`: the backend cannot
    /// tell, and nothing is cached.
    fn change_counter(&self) -> BackendResult<Option<i64>> {
        Ok(None)
    }
    /// Whether other processes on other machines may share this database
    /// (so that, e.g., a node must not treat a `default` server as its own).
    fn is_shared(&self) -> bool {
        false
    }
    /// Deletes servers with `expires_at <= now`; returns how many.
    fn delete_expired(&self, now: i64) -> BackendResult<usize>;

    /// Fails with `Missing("MCP server")` when the server is gone.
    fn insert_client_token(&self, row: &ClientTokenRow) -> BackendResult<()>;
    /// The server's client tokens, oldest first.
    fn list_client_tokens(&self, server_id: &str) -> BackendResult<Vec<ClientTokenRow>>;
    /// False when the server has no client token with this id.
    fn delete_client_token(&self, server_id: &str, token_id: &str) -> BackendResult<bool>;
    /// Whether `token_hash` is a client token of this server.
    fn client_token_matches(&self, server_id: &str, token_hash: &[u8; 32]) -> BackendResult<bool>;

    fn insert_admin_token(&self, token_hash: &[u8; 32], created_at: i64) -> BackendResult<()>;
    fn admin_token_exists(&self, token_hash: &[u8; 32]) -> BackendResult<bool>;

    /// Creates or replaces the account's inbox (the old token stops
    /// working). Fails with `Missing("integrated account")` when the account
    /// is gone.
    fn put_inbox(&self, row: &InboxRow) -> BackendResult<()>;
    fn get_inbox(&self, account_id: &str) -> BackendResult<Option<InboxRow>>;
    /// The inbox whose token has this hash.
    fn find_inbox(&self, token_hash: &[u8; 32]) -> BackendResult<Option<InboxRow>>;
    /// Stores an event durably (committed and synced before it returns) and
    /// returns its `seq`, or `None` when the account already has an event
    /// with this `dedup_key`. A backend shared by several nodes also
    /// announces it to the others (see [`Backend::forward_events`]). Fails
    /// with `Missing("integrated account")` when the account is gone.
    fn insert_event(&self, row: &EventRow) -> BackendResult<Option<i64>>;
    fn list_events(&self, filter: &EventFilter) -> BackendResult<Vec<EventRow>>;
    /// Deletes events received before `received_before` (Unix ms) and, per
    /// account, all but the newest `keep`; returns how many. Shared
    /// backends let one node at a time sweep.
    fn delete_old_events(&self, received_before: i64, keep: i64) -> BackendResult<usize>;
    /// Publishes on `hub` the events that other nodes store (shared
    /// backends only; a node publishes its own after it stored them).
    fn forward_events(&self, _hub: crate::events::EventHub) {}
}
