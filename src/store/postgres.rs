//! The shared PostgreSQL backend, for several `serve` nodes on one database.
//!
//! [`Backend`] is synchronous (the store is called from blocking code and,
//! for cached token lookups, straight from request handlers), while
//! tokio-postgres is async. The backend therefore owns a one-worker tokio
//! runtime: each call is spawned there and the caller waits on a plain
//! channel. That works from any thread, async or not, and never nests a
//! runtime inside another.
//!
//! Besides the rows, the backend keeps a LISTEN connection: every change to a
//! table that a cached lookup depends on fires `NOTIFY malomo_mcp_changes`
//! (triggers of the initial migration), which moves [`Backend::change_counter`]
//! within milliseconds of the commit. While that connection is down the
//! counter is unknown and nothing is cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Row, Statement};

use super::backend::{
    AccountRow, Backend, BackendError, BackendResult, ClientTokenRow, EventFilter, EventRow,
    InboxRow, ResolvedRow, ServerRow,
};
use super::migrations;
use crate::events::{EventHub, EventNotice};

/// Connections per node; each serves one call at a time.
const POOL_SIZE: usize = 8;
/// The longest a call may take before the caller gets an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the LISTEN connection proves it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
const CHANNEL: &str = "malomo_mcp_changes";
/// Where each stored event is announced to every node (see
/// [`Backend::forward_events`]); the payload is an [`EventAnnouncement`].
const EVENTS_CHANNEL: &str = "malomo_mcp_events";
/// `pg_advisory_xact_lock` keys: schema migrations and the expiry sweep.
const MIGRATION_LOCK: i64 = 0x6d61_6c6f_6d6f_0001;
pub(crate) const SWEEP_LOCK: i64 = 0x6d61_6c6f_6d6f_0002;

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable database URL>".to_owned(),
    }
}

/// One pooled connection, opened on first use and again after it broke.
#[derive(Default)]
struct Slot {
    live: Option<Live>,
}

struct Live {
    client: Client,
    /// Prepared statements by their SQL.
    statements: HashMap<&'static str, Statement>,
}

impl Live {
    async fn prepared(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await?;
        self.statements.insert(sql, st.clone());
        Ok(st)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.prepared(sql).await?;
        self.client.query(&st, params).await
    }

    async fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let st = self.prepared(sql).await?;
        self.client.execute(&st, params).await
    }
}

/// What the LISTEN task tells the callers.
#[derive(Default)]
struct ChangeFeed {
    counter: AtomicI64,
    listening: AtomicBool,
    /// Where events stored by other nodes are published.
    hub: std::sync::OnceLock<EventHub>,
    /// This process's name in event announcements, to skip its own.
    node: String,
}

/// The payload of a `malomo_mcp_events` notification.
#[derive(serde::Serialize, serde::Deserialize)]
struct EventAnnouncement {
    node: String,
    account_id: String,
    topic: String,
    seq: i64,
}

impl ChangeFeed {
    /// Publishes another node's stored event on this node's hub.
    fn announce(&self, payload: &str) {
        let Some(hub) = self.hub.get() else {
            return;
        };
        match serde_json::from_str::<EventAnnouncement>(payload) {
            Ok(a) if a.node != self.node => {
                hub.publish(EventNotice {
                    account_id: a.account_id,
                    topic: a.topic,
                    seq: a.seq,
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable event announcement"),
        }
    }
}

struct Shared {
    config: Config,
    slots: Vec<Arc<Mutex<Slot>>>,
    next: AtomicUsize,
    feed: ChangeFeed,
}

pub struct PostgresBackend {
    shared: Arc<Shared>,
    /// `Option` only so that `Drop` can shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

impl Shared {
    /// A connected slot: a free one if any, else waits for one in turn.
    async fn checkout(&self) -> BackendResult<OwnedMutexGuard<Slot>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let mut guard = None;
        for i in 0..n {
            if let Ok(g) = self.slots[(start + i) % n].clone().try_lock_owned() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self.slots[start % n].clone().lock_owned().await,
        };
        if guard.live.as_ref().is_none_or(|l| l.client.is_closed()) {
            guard.live = Some(Live {
                client: connect(&self.config).await.map_err(classify)?,
                statements: HashMap::new(),
            });
        }
        Ok(guard)
    }
}

impl PostgresBackend {
    /// Connects to `url`, applies pending migrations and starts listening
    /// for changes.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let mut config: Config = url
            .parse()
            .with_context(|| format!("--db: not a valid PostgreSQL URL: {}", redact_url(url)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("malomo-mcp");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("malomo-mcp-postgres")
            .enable_all()
            .build()
            .context("starting the PostgreSQL client runtime")?;
        let backend = PostgresBackend {
            shared: Arc::new(Shared {
                config,
                slots: (0..POOL_SIZE).map(|_| Arc::default()).collect(),
                next: AtomicUsize::new(0),
                feed: ChangeFeed {
                    node: uuid::Uuid::new_v4().to_string(),
                    ..ChangeFeed::default()
                },
            }),
            runtime: Some(runtime),
        };
        backend
            .run(|mut slot| async move { migrate(&mut slot).await })
            .map_err(|e| match e {
                BackendError::Other(e) => e,
                e => anyhow::Error::from(e),
            })
            .with_context(|| format!("opening PostgreSQL database {}", redact_url(url)))?;
        if let Some(rt) = &backend.runtime {
            rt.spawn(listen(backend.shared.clone()));
        }
        // Start with the cache working: wait (briefly) for the change feed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !backend.shared.feed.listening.load(Ordering::SeqCst) {
            if std::time::Instant::now() > deadline {
                tracing::warn!("PostgreSQL change feed not up yet; resolving uncached until it is");
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(backend)
    }

    /// Runs `f` on a pooled connection on the backend's runtime and waits.
    fn run<T, F, Fut>(&self, f: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(OwnedMutexGuard<Slot>) -> Fut + Send + 'static,
        Fut: Future<Output = BackendResult<T>> + Send + 'static,
    {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL backend is shut down"))?;
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let call = async {
                let slot = shared.checkout().await?;
                f(slot).await
            };
            let result = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| {
                    Err(BackendError::Other(anyhow::anyhow!(
                        "PostgreSQL did not answer within {} s",
                        CALL_TIMEOUT.as_secs()
                    )))
                });
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| anyhow::anyhow!("PostgreSQL call was abandoned"))?
    }
}

fn live(slot: &mut Slot) -> BackendResult<&mut Live> {
    slot.live
        .as_mut()
        .ok_or_else(|| BackendError::Other(anyhow::anyhow!("PostgreSQL connection missing")))
}

/// Applies pending migrations under an advisory lock, so that nodes that
/// start together migrate one after the other.
async fn migrate(slot: &mut Slot) -> BackendResult<()> {
    let client = &mut live(slot)?.client;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for m in migrations::pending(migrations::POSTGRES, current)? {
        tx.batch_execute(m.sql)
            .await
            .with_context(|| format!("applying migration {}", m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Keeps a LISTEN connection open for as long as the runtime lives, moving
/// the change counter on every notification and on every reconnection
/// (changes may have been missed while it was down).
async fn listen(shared: Arc<Shared>) {
    let feed = &shared.feed;
    loop {
        match listen_once(&shared.config, feed).await {
            Ok(()) => tracing::warn!("PostgreSQL change feed closed; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "PostgreSQL change feed failed; reconnecting"),
        }
        feed.listening.store(false, Ordering::SeqCst);
        feed.counter.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(config: &Config, feed: &ChangeFeed) -> anyhow::Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    let counter = &feed.counter;
    let driver = async move {
        let mut messages = std::pin::pin!(futures::stream::poll_fn(|cx| {
            connection.poll_message(cx)
        }));
        while let Some(message) = futures::StreamExt::next(&mut messages).await {
            match message {
                // Stored events change nothing a cached lookup depends on.
                Ok(AsyncMessage::Notification(n)) if n.channel() == EVENTS_CHANNEL => {
                    feed.announce(n.payload());
                }
                Ok(AsyncMessage::Notification(_)) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL change feed connection failed");
                    break;
                }
            }
        }
        let _ = closed_tx.send(());
    };
    let watch = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {EVENTS_CHANNEL}"))
            .await?;
        // Anything committed before LISTEN took effect is covered by this.
        feed.counter.fetch_add(1, Ordering::SeqCst);
        feed.listening.store(true, Ordering::SeqCst);
        loop {
            tokio::select! {
                _ = &mut closed => return anyhow::Ok(()),
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
            tokio::time::timeout(HEARTBEAT, client.simple_query("SELECT 1"))
                .await
                .context("the change feed's heartbeat timed out")??;
        }
    };
    tokio::select! {
        () = driver => Ok(()),
        r = watch => r,
    }
}

impl From<tokio_postgres::Error> for BackendError {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(e)
    }
}

fn classify(e: tokio_postgres::Error) -> BackendError {
    match e.code() {
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
            BackendError::Missing("integrated account")
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            BackendError::Conflict("a record with this name or id")
        }
        _ => BackendError::Other(anyhow::Error::new(e).context("PostgreSQL")),
    }
}

fn hash_bytes(row: &Row, idx: usize) -> BackendResult<[u8; 32]> {
    let bytes: Vec<u8> = row.try_get(idx)?;
    bytes
        .try_into()
        .map_err(|_| BackendError::Other(anyhow::anyhow!("stored token hash is not 32 bytes")))
}

fn account_row(r: &Row) -> BackendResult<AccountRow> {
    Ok(AccountRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        base_url: r.try_get(2)?,
        api_key_sealed: r.try_get(3)?,
        api_key_masked: r.try_get(4)?,
        created_at: r.try_get(5)?,
    })
}

fn server_row(r: &Row) -> BackendResult<ServerRow> {
    Ok(ServerRow {
        id: r.try_get(0)?,
        account_id: r.try_get(1)?,
        name: r.try_get(2)?,
        token_hash: hash_bytes(r, 3)?,
        methods: r.try_get(4)?,
        tags: r.try_get(5)?,
        require_api_token_auth: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        created_at: r.try_get(8)?,
        answer_budget: r.try_get(9)?,
    })
}

/// `SELECT <account columns> FROM integrated_accounts <rest>`, as a
/// `&'static str` for the statement cache.
macro_rules! select_accounts {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, base_url, api_key_sealed, api_key_masked, created_at \
             FROM integrated_accounts ",
            $rest
        )
    };
}

macro_rules! select_servers {
    ($rest:literal) => {
        concat!(
            "SELECT id, account_id, name, token_hash, methods, tags, \
             require_api_token_auth, expires_at, created_at, answer_budget FROM mcp_servers ",
            $rest
        )
    };
}

const INSERT_CLIENT_TOKEN: &str = "INSERT INTO mcp_client_tokens \
     (id, server_id, token_hash, created_at) VALUES ($1, $2, $3, $4)";

macro_rules! select_inboxes {
    ($rest:literal) => {
        concat!(
            "SELECT account_id, token_hash, token_sealed, secret_sealed, created_at \
             FROM event_inboxes ",
            $rest
        )
    };
}

fn inbox_row(r: &Row) -> BackendResult<InboxRow> {
    Ok(InboxRow {
        account_id: r.try_get(0)?,
        token_hash: hash_bytes(r, 1)?,
        token_sealed: r.try_get(2)?,
        secret_sealed: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn event_row(r: &Row) -> BackendResult<EventRow> {
    Ok(EventRow {
        seq: r.try_get(0)?,
        account_id: r.try_get(1)?,
        topic: r.try_get(2)?,
        received_at: r.try_get(3)?,
        dedup_key: r.try_get(4)?,
        order_id: r.try_get(5)?,
        order_number: r.try_get(6)?,
        customer_email: r.try_get(7)?,
        tracking_code: r.try_get(8)?,
        status: r.try_get(9)?,
        payload: r.try_get(10)?,
    })
}

fn u(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Backend for PostgresBackend {
    fn get_meta(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query("SELECT value FROM meta WHERE key = $1", &[&key])
                .await?;
            Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
        })
    }

    fn init_meta(&self, key: &str, value: &[u8]) -> BackendResult<Vec<u8>> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(move |mut slot| async move {
            let live = live(&mut slot)?;
            live.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
            let rows = live
                .query("SELECT value FROM meta WHERE key = $1", &[&key])
                .await?;
            let row = rows
                .first()
                .ok_or_else(|| anyhow::anyhow!("meta {key:?} vanished after insert"))?;
            Ok(row.try_get(0)?)
        })
    }

    fn insert_account(&self, a: &AccountRow) -> BackendResult<()> {
        let a = a.clone();
        self.run(move |mut slot| async move {
            live(&mut slot)?
                .execute(
                    "INSERT INTO integrated_accounts \
                     (id, name, base_url, api_key_sealed, api_key_masked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &a.id,
                        &a.name,
                        &a.base_url,
                        &a.api_key_sealed,
                        &a.api_key_masked,
                        &a.created_at,
                    ],
                )
                .await?;
            Ok(())
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
        let (id, base_url, sealed, masked) = (
            id.to_owned(),
            base_url.to_owned(),
            sealed.to_vec(),
            masked.to_owned(),
        );
        self.run(move |mut slot| async move {
            let n = live(&mut slot)?
                .execute(
                    "UPDATE integrated_accounts \
                     SET base_url = $2, api_key_sealed = $3, api_key_masked = $4 WHERE id = $1",
                    &[&id, &base_url, &sealed, &masked],
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn list_accounts(&self) -> BackendResult<Vec<AccountRow>> {
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_accounts!("ORDER BY created_at, seq"), &[])
                .await?;
            rows.iter().map(account_row).collect()
        })
    }

    fn get_account(&self, id: &str) -> BackendResult<Option<AccountRow>> {
        let id = id.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_accounts!("WHERE id = $1"), &[&id])
                .await?;
            rows.first().map(account_row).transpose()
        })
    }

    fn get_account_by_name(&self, name: &str) -> BackendResult<Option<AccountRow>> {
        let name = name.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_accounts!("WHERE name = $1"), &[&name])
                .await?;
            rows.first().map(account_row).transpose()
        })
    }

    fn delete_account(&self, id: &str) -> BackendResult<Option<usize>> {
        let id = id.to_owned();
        self.run(move |mut slot| async move {
            let tx = live(&mut slot)?.client.transaction().await?;
            let servers = tx
                .execute("DELETE FROM mcp_servers WHERE account_id = $1", &[&id])
                .await?;
            let accounts = tx
                .execute("DELETE FROM integrated_accounts WHERE id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok((accounts > 0).then_some(u(servers)))
        })
    }

    fn insert_server(
        &self,
        s: &ServerRow,
        client_token: Option<&ClientTokenRow>,
    ) -> BackendResult<()> {
        let (s, t) = (s.clone(), client_token.cloned());
        self.run(move |mut slot| async move {
            let tx = live(&mut slot)?.client.transaction().await?;
            tx.execute(
                "INSERT INTO mcp_servers (id, account_id, name, token_hash, methods, tags, \
                 require_api_token_auth, expires_at, created_at, answer_budget) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &s.id,
                    &s.account_id,
                    &s.name,
                    &&s.token_hash[..],
                    &s.methods,
                    &s.tags,
                    &s.require_api_token_auth,
                    &s.expires_at,
                    &s.created_at,
                    &s.answer_budget,
                ],
            )
            .await?;
            if let Some(t) = t {
                tx.execute(
                    INSERT_CLIENT_TOKEN,
                    &[&t.id, &t.server_id, &&t.token_hash[..], &t.created_at],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn list_servers(&self, account_id: Option<&str>) -> BackendResult<Vec<ServerRow>> {
        let account_id = account_id.map(str::to_owned);
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(
                    select_servers!(
                        "WHERE $1::text IS NULL OR account_id = $1 ORDER BY created_at, seq"
                    ),
                    &[&account_id],
                )
                .await?;
            rows.iter().map(server_row).collect()
        })
    }

    fn get_server(&self, id: &str) -> BackendResult<Option<ServerRow>> {
        let id = id.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_servers!("WHERE id = $1"), &[&id])
                .await?;
            rows.first().map(server_row).transpose()
        })
    }

    fn delete_server(&self, id: &str) -> BackendResult<bool> {
        let id = id.to_owned();
        self.run(move |mut slot| async move {
            let n = live(&mut slot)?
                .execute("DELETE FROM mcp_servers WHERE id = $1", &[&id])
                .await?;
            Ok(n > 0)
        })
    }

    fn delete_servers_named(&self, account_id: &str, name: &str) -> BackendResult<usize> {
        let (account_id, name) = (account_id.to_owned(), name.to_owned());
        self.run(move |mut slot| async move {
            let n = live(&mut slot)?
                .execute(
                    "DELETE FROM mcp_servers WHERE account_id = $1 AND name = $2",
                    &[&account_id, &name],
                )
                .await?;
            Ok(u(n))
        })
    }

    fn resolve(&self, token_hash: &[u8; 32], now: i64) -> BackendResult<Option<ResolvedRow>> {
        let hash = token_hash.to_vec();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(
                    "SELECT s.id, s.name, s.account_id, a.base_url, a.api_key_sealed, \
                     s.methods, s.tags, s.require_api_token_auth, s.expires_at, \
                     s.answer_budget FROM mcp_servers s JOIN integrated_accounts a ON a.id = s.account_id \
                     WHERE s.token_hash = $1 AND (s.expires_at IS NULL OR s.expires_at > $2)",
                    &[&hash, &now],
                )
                .await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            Ok(Some(ResolvedRow {
                server_id: r.try_get(0)?,
                server_name: r.try_get(1)?,
                account_id: r.try_get(2)?,
                base_url: r.try_get(3)?,
                api_key_sealed: r.try_get(4)?,
                methods: r.try_get(5)?,
                tags: r.try_get(6)?,
                require_api_token_auth: r.try_get(7)?,
                expires_at: r.try_get(8)?,
                answer_budget: r.try_get(9)?,
            }))
        })
    }

    fn change_counter(&self) -> BackendResult<Option<i64>> {
        let feed = &self.shared.feed;
        Ok(feed
            .listening
            .load(Ordering::SeqCst)
            .then(|| feed.counter.load(Ordering::SeqCst)))
    }

    fn is_shared(&self) -> bool {
        true
    }

    /// Only one node sweeps at a time: the others find the lock taken and
    /// skip this round.
    fn delete_expired(&self, now: i64) -> BackendResult<usize> {
        self.run(move |mut slot| async move {
            let tx = live(&mut slot)?.client.transaction().await?;
            let locked: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
                .await?
                .try_get(0)?;
            if !locked {
                return Ok(0);
            }
            let n = tx
                .execute(
                    "DELETE FROM mcp_servers WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    &[&now],
                )
                .await?;
            tx.commit().await?;
            Ok(u(n))
        })
    }

    fn insert_client_token(&self, row: &ClientTokenRow) -> BackendResult<()> {
        let t = row.clone();
        self.run(move |mut slot| async move {
            live(&mut slot)?
                .execute(
                    INSERT_CLIENT_TOKEN,
                    &[&t.id, &t.server_id, &&t.token_hash[..], &t.created_at],
                )
                .await?;
            Ok(())
        })
        .map_err(|e| match e {
            BackendError::Missing(_) => BackendError::Missing("MCP server"),
            other => other,
        })
    }

    fn list_client_tokens(&self, server_id: &str) -> BackendResult<Vec<ClientTokenRow>> {
        let server_id = server_id.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(
                    "SELECT id, server_id, token_hash, created_at FROM mcp_client_tokens \
                     WHERE server_id = $1 ORDER BY created_at, seq",
                    &[&server_id],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(ClientTokenRow {
                        id: r.try_get(0)?,
                        server_id: r.try_get(1)?,
                        token_hash: hash_bytes(r, 2)?,
                        created_at: r.try_get(3)?,
                    })
                })
                .collect()
        })
    }

    fn delete_client_token(&self, server_id: &str, token_id: &str) -> BackendResult<bool> {
        let (server_id, token_id) = (server_id.to_owned(), token_id.to_owned());
        self.run(move |mut slot| async move {
            let n = live(&mut slot)?
                .execute(
                    "DELETE FROM mcp_client_tokens WHERE server_id = $1 AND id = $2",
                    &[&server_id, &token_id],
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn client_token_matches(&self, server_id: &str, token_hash: &[u8; 32]) -> BackendResult<bool> {
        let (server_id, hash) = (server_id.to_owned(), token_hash.to_vec());
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(
                    "SELECT 1 FROM mcp_client_tokens WHERE token_hash = $1 AND server_id = $2",
                    &[&hash, &server_id],
                )
                .await?;
            Ok(!rows.is_empty())
        })
    }

    fn insert_admin_token(&self, token_hash: &[u8; 32], created_at: i64) -> BackendResult<()> {
        let hash = token_hash.to_vec();
        self.run(move |mut slot| async move {
            live(&mut slot)?
                .execute(
                    "INSERT INTO admin_tokens (token_hash, created_at) VALUES ($1, $2) \
                     ON CONFLICT (token_hash) DO NOTHING",
                    &[&hash, &created_at],
                )
                .await?;
            Ok(())
        })
    }

    fn admin_token_exists(&self, token_hash: &[u8; 32]) -> BackendResult<bool> {
        let hash = token_hash.to_vec();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query("SELECT 1 FROM admin_tokens WHERE token_hash = $1", &[&hash])
                .await?;
            Ok(!rows.is_empty())
        })
    }

    fn put_inbox(&self, row: &InboxRow) -> BackendResult<()> {
        let row = row.clone();
        self.run(move |mut slot| async move {
            live(&mut slot)?
                .execute(
                    "INSERT INTO event_inboxes \
                     (account_id, token_hash, token_sealed, secret_sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash, \
                     token_sealed = excluded.token_sealed, \
                     secret_sealed = excluded.secret_sealed, created_at = excluded.created_at",
                    &[
                        &row.account_id,
                        &&row.token_hash[..],
                        &row.token_sealed,
                        &row.secret_sealed,
                        &row.created_at,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn get_inbox(&self, account_id: &str) -> BackendResult<Option<InboxRow>> {
        let account_id = account_id.to_owned();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_inboxes!("WHERE account_id = $1"), &[&account_id])
                .await?;
            rows.first().map(inbox_row).transpose()
        })
    }

    fn find_inbox(&self, token_hash: &[u8; 32]) -> BackendResult<Option<InboxRow>> {
        let hash = token_hash.to_vec();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(select_inboxes!("WHERE token_hash = $1"), &[&hash])
                .await?;
            rows.first().map(inbox_row).transpose()
        })
    }

    /// Inserts and announces in one transaction: the NOTIFY goes out with
    /// the commit, never for an event that was rolled back.
    fn insert_event(&self, e: &EventRow) -> BackendResult<Option<i64>> {
        let e = e.clone();
        let node = self.shared.feed.node.clone();
        self.run(move |mut slot| async move {
            let live = live(&mut slot)?;
            let insert = live
                .prepared(
                    "INSERT INTO events (account_id, topic, received_at, dedup_key, order_id, \
                     order_number, customer_email, tracking_code, status, payload) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (account_id, dedup_key) DO NOTHING RETURNING seq",
                )
                .await?;
            let tx = live.client.transaction().await?;
            let rows = tx
                .query(
                    &insert,
                    &[
                        &e.account_id,
                        &e.topic,
                        &e.received_at,
                        &e.dedup_key,
                        &e.order_id,
                        &e.order_number,
                        &e.customer_email,
                        &e.tracking_code,
                        &e.status,
                        &e.payload,
                    ],
                )
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let seq: i64 = row.try_get(0)?;
            let announcement = serde_json::to_string(&EventAnnouncement {
                node,
                account_id: e.account_id,
                topic: e.topic,
                seq,
            })
            .map_err(anyhow::Error::from)?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&EVENTS_CHANNEL, &announcement],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(seq))
        })
    }

    fn list_events(&self, f: &EventFilter) -> BackendResult<Vec<EventRow>> {
        let f = f.clone();
        self.run(move |mut slot| async move {
            let rows = live(&mut slot)?
                .query(
                    "SELECT seq, account_id, topic, received_at, dedup_key, order_id, \
                     order_number, customer_email, tracking_code, status, payload FROM events \
                     WHERE account_id = $1 AND ($2::text IS NULL OR topic = $2) \
                     AND ($3::text IS NULL OR order_id = $3) \
                     AND ($4::text IS NULL OR tracking_code = $4) \
                     AND ($5::bigint IS NULL OR received_at >= $5) \
                     AND ($6::bigint IS NULL OR seq < $6) \
                     ORDER BY seq DESC LIMIT $7",
                    &[
                        &f.account_id,
                        &f.topic,
                        &f.order_id,
                        &f.tracking_code,
                        &f.since,
                        &f.before_seq,
                        &f.limit,
                    ],
                )
                .await?;
            rows.iter().map(event_row).collect()
        })
    }

    /// Under the sweep's advisory lock, like expired servers: one node at a
    /// time.
    fn delete_old_events(&self, received_before: i64, keep: i64) -> BackendResult<usize> {
        self.run(move |mut slot| async move {
            let tx = live(&mut slot)?.client.transaction().await?;
            let locked: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
                .await?
                .try_get(0)?;
            if !locked {
                return Ok(0);
            }
            let n = tx
                .execute(
                    "DELETE FROM events WHERE received_at < $1 \
                     OR seq IN (SELECT seq FROM (SELECT seq, row_number() OVER \
                     (PARTITION BY account_id ORDER BY seq DESC) AS newer FROM events) AS ranked \
                     WHERE newer > $2)",
                    &[&received_before, &keep],
                )
                .await?;
            tx.commit().await?;
            Ok(u(n))
        })
    }

    fn forward_events(&self, hub: EventHub) {
        let _ = self.shared.feed.hub.set(hub);
    }
}
