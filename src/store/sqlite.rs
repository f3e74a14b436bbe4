//! The embedded SQLite backend: WAL, versioned migrations, and a
//! small pool of connections so that token lookups never queue behind the
//! sweeper or an admin write.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use super::backend::{
    AccountRow, Backend, BackendError, BackendResult, ClientTokenRow, EventFilter, EventRow,
    InboxRow, ResolvedRow, ServerRow,
};
use super::migrations::{self, Migration};

/// Idle connections kept for reuse; more are opened under contention.
const MAX_IDLE: usize = 8;

pub struct SqliteBackend {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// A connection that never writes: its `PRAGMA data_version` changes
    /// whenever any other connection, of any process, commits.
    watcher: Mutex<Option<Connection>>,
    /// Stores received events with `synchronous = FULL`: an event is
    /// acknowledged to Malomo only once it is on disk, so that not even a
    /// power cut loses it (the other writes keep NORMAL, which a crash of
    /// the process alone never loses under WAL).
    events: EventWriter,
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let backend = SqliteBackend {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            watcher: Mutex::new(None),
            events: EventWriter::default(),
        };
        create_private(path)?;
        let mut conn = backend.connect()?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("enabling WAL")?;
        migrate(&mut conn)?;
        backend.put_back(conn);
        Ok(backend)
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open(&self.path)
            .with_context(|| format!("opening database {}", self.path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> BackendResult<T> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        self.put_back(conn);
        result.map_err(classify)
    }
}

/// Creates the database file with mode 0600 unless it exists, so that it is
/// never readable by others, not even for a moment: SQLite then gives its
/// `-wal` and `-shm` files the database file's mode.
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            super::crypto::warn_if_shared(path, "database file");
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("creating database {}", path.display())),
    }
}

/// Applies the pending migrations in one transaction and records them in
/// `schema_migrations`. `PRAGMA user_version` follows along: the first
/// release recorded its schema there only, and it still refuses a database
/// whose `user_version` it does not know.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )?;
    let recorded: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let user_version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // A database of the first release: its migrations ran, unrecorded.
    let baseline = migrations::pending(migrations::SQLITE, 0)?
        .iter()
        .take_while(|m| recorded == 0 && m.version <= user_version);
    for m in baseline {
        record(&tx, m, now)?;
    }
    let current = recorded.max(user_version);
    for m in migrations::pending(migrations::SQLITE, current)? {
        tx.execute_batch(m.sql)
            .with_context(|| format!("applying migration {}", m.name))?;
        record(&tx, m, now)?;
    }
    tx.pragma_update(None, "user_version", migrations::latest(migrations::SQLITE))?;
    tx.commit()?;
    Ok(())
}

fn record(tx: &rusqlite::Transaction<'_>, m: &Migration, now: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![m.version, m.name, now],
    )
    .map(drop)
}

fn classify(e: rusqlite::Error) -> BackendError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e
        && err.code == ErrorCode::ConstraintViolation
    {
        match err.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return BackendError::Missing("integrated account");
            }
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return BackendError::Conflict("a record with this name or id");
            }
            _ => {}
        }
    }
    BackendError::Other(e.into())
}

const INBOX_COLUMNS: &str = "account_id, token_hash, token_sealed, secret_sealed, created_at";

fn inbox_row(r: &Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok(InboxRow {
        account_id: r.get(0)?,
        token_hash: r.get(1)?,
        token_sealed: r.get(2)?,
        secret_sealed: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(0)?,
        account_id: r.get(1)?,
        topic: r.get(2)?,
        received_at: r.get(3)?,
        dedup_key: r.get(4)?,
        order_id: r.get(5)?,
        order_number: r.get(6)?,
        customer_email: r.get(7)?,
        tracking_code: r.get(8)?,
        status: r.get(9)?,
        payload: r.get(10)?,
    })
}

fn insert_client_token(c: &Connection, t: &ClientTokenRow) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO mcp_client_tokens (id, server_id, token_hash, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![t.id, t.server_id, &t.token_hash[..], t.created_at])
    .map(drop)
}

fn to_json(list: &[String]) -> String {
    // A Vec<String> always serializes.
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_string())
}

fn from_json(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, base_url, api_key_sealed, api_key_masked, created_at";

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: r.get(0)?,
        name: r.get(1)?,
        base_url: r.get(2)?,
        api_key_sealed: r.get(3)?,
        api_key_masked: r.get(4)?,
        created_at: r.get(5)?,
    })
}

const SERVER_COLUMNS: &str = "id, account_id, name, token_hash, methods, tags, \
                              require_api_token_auth, expires_at, created_at, answer_budget";

fn server_row(r: &Row<'_>) -> rusqlite::Result<ServerRow> {
    Ok(ServerRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        token_hash: r.get(3)?,
        methods: from_json(&r.get::<_, String>(4)?)?,
        tags: from_json(&r.get::<_, String>(5)?)?,
        require_api_token_auth: r.get(6)?,
        expires_at: r.get(7)?,
        created_at: r.get(8)?,
        answer_budget: r.get(9)?,
    })
}

impl Backend for SqliteBackend {
    fn get_meta(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.with_conn(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()
        })
    }

    fn init_meta(&self, key: &str, value: &[u8]) -> BackendResult<Vec<u8>> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            let stored =
                tx.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })?;
            tx.commit()?;
            Ok(stored)
        })
    }

    fn insert_account(&self, a: &AccountRow) -> BackendResult<()> {
        self.with_conn(|c| {
            c.prepare_cached(
                "INSERT INTO integrated_accounts \
                 (id, name, base_url, api_key_sealed, api_key_masked, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                a.id,
                a.name,
                a.base_url,
                a.api_key_sealed,
                a.api_key_masked,
                a.created_at
            ])
            .map(drop)
        })
        .map_err(|e| match e {
            BackendError::Conflict(_) => {
                BackendError::Conflict("an integrated account with this name")
            }
            other => other,
        })
    }

    fn update_account_secret(
        &self,
        id: &str,
        base_url: &str,
        sealed: &[u8],
        masked: &str,
    ) -> BackendResult<bool> {
        self.with_conn(|c| {
            c.prepare_cached(
                "UPDATE integrated_accounts \
                 SET base_url = ?2, api_key_sealed = ?3, api_key_masked = ?4 WHERE id = ?1",
            )?
            .execute(params![id, base_url, sealed, masked])
            .map(|n| n > 0)
        })
    }

    fn list_accounts(&self) -> BackendResult<Vec<AccountRow>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM integrated_accounts ORDER BY created_at, rowid"
            ))?;
            stmt.query_map([], account_row)?.collect()
        })
    }

    fn get_account(&self, id: &str) -> BackendResult<Option<AccountRow>> {
        self.with_conn(|c| {
            c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM integrated_accounts WHERE id = ?1"
            ))?
            .query_row(params![id], account_row)
            .optional()
        })
    }

    fn get_account_by_name(&self, name: &str) -> BackendResult<Option<AccountRow>> {
        self.with_conn(|c| {
            c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM integrated_accounts WHERE name = ?1"
            ))?
            .query_row(params![name], account_row)
            .optional()
        })
    }

    fn delete_account(&self, id: &str) -> BackendResult<Option<usize>> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let servers =
                tx.execute("DELETE FROM mcp_servers WHERE account_id = ?1", params![id])?;
            let accounts =
                tx.execute("DELETE FROM integrated_accounts WHERE id = ?1", params![id])?;
            tx.commit()?;
            Ok((accounts > 0).then_some(servers))
        })
    }

    fn insert_server(
        &self,
        s: &ServerRow,
        client_token: Option<&ClientTokenRow>,
    ) -> BackendResult<()> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO mcp_servers (id, account_id, name, token_hash, methods, tags, \
                 require_api_token_auth, expires_at, created_at, answer_budget) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                s.id,
                s.account_id,
                s.name,
                s.token_hash,
                to_json(&s.methods),
                to_json(&s.tags),
                s.require_api_token_auth,
                s.expires_at,
                s.created_at,
                s.answer_budget
            ])?;
            if let Some(t) = client_token {
                insert_client_token(&tx, t)?;
            }
            tx.commit()
        })
    }

    fn list_servers(&self, account_id: Option<&str>) -> BackendResult<Vec<ServerRow>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM mcp_servers \
                 WHERE ?1 IS NULL OR account_id = ?1 ORDER BY created_at, rowid"
            ))?;
            stmt.query_map(params![account_id], server_row)?.collect()
        })
    }

    fn get_server(&self, id: &str) -> BackendResult<Option<ServerRow>> {
        self.with_conn(|c| {
            c.prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE id = ?1"
            ))?
            .query_row(params![id], server_row)
            .optional()
        })
    }

    fn delete_server(&self, id: &str) -> BackendResult<bool> {
        self.with_conn(|c| {
            c.prepare_cached("DELETE FROM mcp_servers WHERE id = ?1")?
                .execute(params![id])
                .map(|n| n > 0)
        })
    }

    fn delete_servers_named(&self, account_id: &str, name: &str) -> BackendResult<usize> {
        self.with_conn(|c| {
            c.prepare_cached("DELETE FROM mcp_servers WHERE account_id = ?1 AND name = ?2")?
                .execute(params![account_id, name])
        })
    }

    fn resolve(&self, token_hash: &[u8; 32], now: i64) -> BackendResult<Option<ResolvedRow>> {
        self.with_conn(|c| {
            c.prepare_cached(
                "SELECT s.id, s.name, s.account_id, a.base_url, a.api_key_sealed, s.methods, \
                 s.tags, s.require_api_token_auth, s.expires_at, s.answer_budget \
                 FROM mcp_servers s JOIN integrated_accounts a ON a.id = s.account_id \
                 WHERE s.token_hash = ?1",
            )?
            // Expiry is checked below, not in SQL: a bound parameter compared
            // with the partial index's column makes SQLite re-prepare the
            // statement on every call.
            .query_row(params![&token_hash[..]], |r| {
                Ok(ResolvedRow {
                    server_id: r.get(0)?,
                    server_name: r.get(1)?,
                    account_id: r.get(2)?,
                    base_url: r.get(3)?,
                    api_key_sealed: r.get(4)?,
                    methods: from_json(&r.get::<_, String>(5)?)?,
                    tags: from_json(&r.get::<_, String>(6)?)?,
                    require_api_token_auth: r.get(7)?,
                    expires_at: r.get(8)?,
                    answer_budget: r.get(9)?,
                })
            })
            .optional()
        })
        .map(|row| row.filter(|r| r.expires_at.is_none_or(|at| at > now)))
    }

    fn change_counter(&self) -> BackendResult<Option<i64>> {
        let mut guard = self
            .watcher
            .lock()
            .map_err(|_| BackendError::Other(anyhow::anyhow!("watcher connection poisoned")))?;
        if guard.is_none() {
            *guard = Some(self.connect()?);
        }
        let Some(conn) = guard.as_ref() else {
            return Ok(None);
        };
        conn.prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map(Some)
            .map_err(classify)
    }

    fn delete_expired(&self, now: i64) -> BackendResult<usize> {
        self.with_conn(|c| {
            c.prepare_cached(
                "DELETE FROM mcp_servers WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            )?
            .execute(params![now])
        })
    }

    fn insert_client_token(&self, row: &ClientTokenRow) -> BackendResult<()> {
        self.with_conn(|c| insert_client_token(c, row))
            .map_err(|e| match e {
                BackendError::Missing(_) => BackendError::Missing("MCP server"),
                other => other,
            })
    }

    fn list_client_tokens(&self, server_id: &str) -> BackendResult<Vec<ClientTokenRow>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, server_id, token_hash, created_at FROM mcp_client_tokens \
                 WHERE server_id = ?1 ORDER BY created_at, rowid",
            )?;
            stmt.query_map(params![server_id], |r| {
                Ok(ClientTokenRow {
                    id: r.get(0)?,
                    server_id: r.get(1)?,
                    token_hash: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    fn delete_client_token(&self, server_id: &str, token_id: &str) -> BackendResult<bool> {
        self.with_conn(|c| {
            c.prepare_cached("DELETE FROM mcp_client_tokens WHERE server_id = ?1 AND id = ?2")?
                .execute(params![server_id, token_id])
                .map(|n| n > 0)
        })
    }

    fn client_token_matches(&self, server_id: &str, token_hash: &[u8; 32]) -> BackendResult<bool> {
        self.with_conn(|c| {
            c.prepare_cached(
                "SELECT 1 FROM mcp_client_tokens WHERE token_hash = ?1 AND server_id = ?2",
            )?
            .query_row(params![&token_hash[..], server_id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
        })
    }

    fn insert_admin_token(&self, token_hash: &[u8; 32], created_at: i64) -> BackendResult<()> {
        self.with_conn(|c| {
            c.prepare_cached(
                "INSERT INTO admin_tokens (token_hash, created_at) VALUES (?1, ?2) \
                 ON CONFLICT (token_hash) DO NOTHING",
            )?
            .execute(params![&token_hash[..], created_at])
            .map(drop)
        })
    }

    fn admin_token_exists(&self, token_hash: &[u8; 32]) -> BackendResult<bool> {
        self.with_conn(|c| {
            c.prepare_cached("SELECT 1 FROM admin_tokens WHERE token_hash = ?1")?
                .query_row(params![&token_hash[..]], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
    }

    fn put_inbox(&self, row: &InboxRow) -> BackendResult<()> {
        self.with_conn(|c| {
            c.prepare_cached(
                "INSERT INTO event_inboxes \
                 (account_id, token_hash, token_sealed, secret_sealed, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash, \
                 token_sealed = excluded.token_sealed, secret_sealed = excluded.secret_sealed, \
                 created_at = excluded.created_at",
            )?
            .execute(params![
                row.account_id,
                &row.token_hash[..],
                row.token_sealed,
                row.secret_sealed,
                row.created_at
            ])
            .map(drop)
        })
    }

    fn get_inbox(&self, account_id: &str) -> BackendResult<Option<InboxRow>> {
        self.with_conn(|c| {
            c.prepare_cached(&format!(
                "SELECT {INBOX_COLUMNS} FROM event_inboxes WHERE account_id = ?1"
            ))?
            .query_row(params![account_id], inbox_row)
            .optional()
        })
    }

    fn find_inbox(&self, token_hash: &[u8; 32]) -> BackendResult<Option<InboxRow>> {
        self.with_conn(|c| {
            c.prepare_cached(&format!(
                "SELECT {INBOX_COLUMNS} FROM event_inboxes WHERE token_hash = ?1"
            ))?
            .query_row(params![&token_hash[..]], inbox_row)
            .optional()
        })
    }

    fn insert_event(&self, e: &EventRow) -> BackendResult<Option<i64>> {
        self.events.insert(e, || {
            let conn = self.connect()?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(conn)
        })
    }

    fn list_events(&self, f: &EventFilter) -> BackendResult<Vec<EventRow>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, account_id, topic, received_at, dedup_key, order_id, order_number, \
                 customer_email, tracking_code, status, payload FROM events \
                 WHERE account_id = ?1 AND (?2 IS NULL OR topic = ?2) \
                 AND (?3 IS NULL OR order_id = ?3) AND (?4 IS NULL OR tracking_code = ?4) \
                 AND (?5 IS NULL OR received_at >= ?5) AND (?6 IS NULL OR seq < ?6) \
                 ORDER BY seq DESC LIMIT ?7",
            )?;
            stmt.query_map(
                params![
                    f.account_id,
                    f.topic,
                    f.order_id,
                    f.tracking_code,
                    f.since,
                    f.before_seq,
                    f.limit
                ],
                event_row,
            )?
            .collect()
        })
    }

    fn delete_old_events(&self, received_before: i64, keep: i64) -> BackendResult<usize> {
        self.with_conn(|c| {
            c.prepare_cached(DELETE_OLD_EVENTS)?
                .execute(params![received_before, keep])
        })
    }
}

type InsertOutcome = BackendResult<Option<i64>>;

/// An event waiting for the writer, and where its outcome goes.
struct PendingEvent {
    row: EventRow,
    outcome: std::sync::Arc<Mutex<Option<InsertOutcome>>>,
}

/// Group commit for received events: each caller queues its event, then
/// waits for the writer connection; whoever gets it commits every queued
/// event in one transaction (one fsync) and hands each caller its outcome.
/// Concurrent deliveries thus share a sync instead of queueing for one each.
#[derive(Default)]
struct EventWriter {
    queue: Mutex<Vec<PendingEvent>>,
    conn: Mutex<Option<Connection>>,
}

const INSERT_EVENT: &str = "INSERT INTO events (account_id, topic, received_at, dedup_key, \
     order_id, order_number, customer_email, tracking_code, status, payload) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (account_id, dedup_key) DO NOTHING RETURNING seq";

fn insert_event_row(c: &Connection, e: &EventRow) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(INSERT_EVENT)?
        .query_row(
            params![
                e.account_id,
                e.topic,
                e.received_at,
                e.dedup_key,
                e.order_id,
                e.order_number,
                e.customer_email,
                e.tracking_code,
                e.status,
                e.payload
            ],
            |r| r.get(0),
        )
        .optional()
}

fn poisoned() -> BackendError {
    BackendError::Other(anyhow::anyhow!("event writer poisoned"))
}

impl EventWriter {
    fn insert(
        &self,
        row: &EventRow,
        connect: impl FnOnce() -> anyhow::Result<Connection>,
    ) -> InsertOutcome {
        let outcome = std::sync::Arc::new(Mutex::new(None));
        self.queue
            .lock()
            .map_err(|_| poisoned())?
            .push(PendingEvent {
                row: row.clone(),
                outcome: outcome.clone(),
            });
        let mut conn = self.conn.lock().map_err(|_| poisoned())?;
        // A writer that held the connection before us may have committed ours.
        if let Some(done) = outcome.lock().map_err(|_| poisoned())?.take() {
            return done;
        }
        let batch = std::mem::take(&mut *self.queue.lock().map_err(|_| poisoned())?);
        if conn.is_none() {
            match connect() {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    let message = format!("{e:#}");
                    for p in &batch {
                        let failed = Err(BackendError::Other(anyhow::anyhow!("{message}")));
                        if let Ok(mut slot) = p.outcome.lock() {
                            *slot = Some(failed);
                        }
                    }
                    return outcome
                        .lock()
                        .map_err(|_| poisoned())?
                        .take()
                        .unwrap_or(Err(BackendError::Other(anyhow::anyhow!(
                            "event writer: no outcome"
                        ))));
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            return Err(BackendError::Other(anyhow::anyhow!("no event writer")));
        };
        for (p, result) in batch.iter().zip(commit_batch(c, &batch)) {
            if let Ok(mut slot) = p.outcome.lock() {
                *slot = Some(result);
            }
        }
        let mine = outcome.lock().map_err(|_| poisoned())?.take();
        mine.unwrap_or(Err(BackendError::Other(anyhow::anyhow!(
            "event writer: no outcome"
        ))))
    }
}

/// Commits `batch` in one transaction; when that fails (one row's account
/// was deleted, say), each row in a transaction of its own, so that one bad
/// row fails only its own delivery.
fn commit_batch(c: &mut Connection, batch: &[PendingEvent]) -> Vec<InsertOutcome> {
    let together = (|| {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seqs = batch
            .iter()
            .map(|p| insert_event_row(&tx, &p.row))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.commit()?;
        Ok::<_, rusqlite::Error>(seqs)
    })();
    match together {
        Ok(seqs) => seqs.into_iter().map(Ok).collect(),
        Err(_) if batch.len() > 1 => batch
            .iter()
            .map(|p| insert_event_row(c, &p.row).map_err(classify))
            .collect(),
        Err(e) => vec![Err(classify(e))],
    }
}

/// Events past their age, and each account's beyond its newest `keep`.
const DELETE_OLD_EVENTS: &str = "DELETE FROM events WHERE received_at < ?1 \
     OR seq IN (SELECT seq FROM (SELECT seq, row_number() OVER \
     (PARTITION BY account_id ORDER BY seq DESC) AS newer FROM events) AS ranked \
     WHERE newer > ?2)";
