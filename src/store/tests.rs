use std::path::PathBuf;
use std::time::Duration;

use super::testing::TestDatabase;
use super::*;
use crate::access::tests::tool;
use crate::catalog::MethodClass;

static TABLE: &[&ToolDef] = &[
    &tool("list_orders", "list", MethodClass::Read, &["orders"]),
    &tool("create_order", "create", MethodClass::Write, &["orders"]),
    &tool("list_customers", "list", MethodClass::Read, &["customers"]),
];

/// A database a test owns: a SQLite file in a temp dir, or a fresh
/// database on the PostgreSQL test cluster.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Db {
    fn location(&self) -> PathBuf {
        match self {
            Db::Sqlite(dir) => dir.path().join("t.db"),
            Db::Postgres(db) => PathBuf::from(&db.url),
        }
    }

    fn open_with_key(&self, key: &[u8; 32]) -> anyhow::Result<Store> {
        Ok(Store::open_with_key(&self.location(), key)?.with_tools(TABLE))
    }

    /// Another handle on the same database, as a second node would have.
    fn open(&self) -> Store {
        self.open_with_key(&[9u8; 32]).unwrap()
    }

    fn migrations(&self) -> &'static [migrations::Migration] {
        match self {
            Db::Sqlite(_) => migrations::SQLITE,
            Db::Postgres(_) => migrations::POSTGRES,
        }
    }

    fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Db::Sqlite(_) => rusqlite::Connection::open(self.location())
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
            Db::Postgres(db) => db.query_i64(&sql).unwrap(),
        }
    }

    fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(_) => rusqlite::Connection::open(self.location())
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Db::Postgres(db) => db.execute(sql).unwrap(),
        }
    }
}

/// One test suite, run on each backend: `mod sqlite` and `mod postgres`
/// get a `#[test]` per function. Without a PostgreSQL test cluster the
/// PostgreSQL ones announce that they skip (and fail in CI).
macro_rules! on_each_backend {
    ($(fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(#[test]
            fn $name() {
                let $db = Db::Sqlite(tempfile::tempdir().unwrap());
                $body
            })*
        }
        mod postgres {
            use super::*;
            $(#[test]
            fn $name() {
                let test = concat!("store::tests::postgres::", stringify!($name));
                let Some(db) = TestDatabase::for_test(test) else {
                    return;
                };
                let $db = Db::Postgres(db);
                $body
            })*
        }
    };
}

/// Waits up to a second (the promise to users) for `done`.
fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not seen within 1 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn server(name: &str, methods: &[&str]) -> NewServer {
    NewServer {
        name: name.to_string(),
        filter: ToolFilter {
            methods: methods.iter().map(|s| s.to_string()).collect(),
            tags: vec![],
        },
        require_api_token_auth: false,
        expires_at: None,
        answer_budget: None,
    }
}

/// A store with one account `a`; returns the account id.
fn open_with_account(db: &Db) -> (Store, String) {
    let store = db.open();
    let acct = store
        .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
        .unwrap();
    (store, acct)
}

fn guarded(name: &str) -> NewServer {
    NewServer {
        require_api_token_auth: true,
        ..server(name, &[])
    }
}

on_each_backend! {
    fn tokens_resolve_until_revoked(db) {
        let store = db.open();
        let acct = store
            .ensure_account("sandbox", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let created = store
            .create_server(&acct, server("default", &["read"]))
            .unwrap();
        let resolved = store.resolve_token(&created.token).unwrap().unwrap();
        assert_eq!(resolved.api_key, "sk_test_0123456789");
        assert_eq!(resolved.filter.methods, ["read"]);
        assert!(!format!("{resolved:?}").contains("sk_test"));
        assert!(!format!("{created:?}").contains(&created.token));
        assert!(store.resolve_token("nope").unwrap().is_none());
        assert!(store.delete_server(&created.server.id).unwrap());
        assert!(store.resolve_token(&created.token).unwrap().is_none());
    }

    fn ensure_account_keeps_id_and_servers_across_restarts(db) {
        let store = db.open();
        let id = store
            .ensure_account("sandbox", "sk_old_key_123456", "http://127.0.0.1:1")
            .unwrap();
        let created = store.create_server(&id, server("s", &[])).unwrap();
        drop(store);
        let store = db.open();
        assert_eq!(
            store
                .ensure_account("sandbox", "sk_new_key_123456", "http://127.0.0.1:2")
                .unwrap(),
            id
        );
        let resolved = store.resolve_token(&created.token).unwrap().unwrap();
        assert_eq!(resolved.api_key, "sk_new_key_123456");
        assert_eq!(resolved.base_url, "http://127.0.0.1:2");
    }

    fn a_wrong_master_key_is_refused_at_open(db) {
        drop(db.open());
        let err = db.open_with_key(&[1u8; 32])
            .err()
            .unwrap();
        assert!(err.to_string().contains("master key"), "{err}");
    }

    fn expired_servers_stop_resolving_and_are_swept(db) {
        let store = db.open();
        let acct = store
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let mut req = server("short", &[]);
        req.expires_at = Some(OffsetDateTime::now_utc() + Duration::from_secs(4));
        let created = store.create_server(&acct, req).unwrap();
        store.create_server(&acct, server("long", &[])).unwrap();
        assert!(store.resolve_token(&created.token).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(5100));
        assert!(store.resolve_token(&created.token).unwrap().is_none());
        assert_eq!(store.sweep_expired().unwrap(), 1);
        assert_eq!(store.list_servers(Some(&acct)).unwrap().len(), 1);
    }

    fn past_expiry_bad_filters_and_unknown_accounts_are_refused(db) {
        let store = db.open();
        let acct = store
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let mut req = server("s", &[]);
        req.expires_at = Some(OffsetDateTime::now_utc() - Duration::from_secs(5));
        assert!(
            matches!(store.create_server(&acct, req), Err(StoreError::Invalid { field, .. }) if field == "expires_at")
        );
        assert!(matches!(
            store.create_server(&acct, server("s", &["delete"])),
            Err(StoreError::Filter(FilterError::NoTools { .. }))
        ));
        assert!(matches!(
            store.create_server(&acct, server("s", &["nope"])),
            Err(StoreError::Filter(FilterError::UnknownMethod { .. }))
        ));
        assert!(matches!(
            store.create_server("missing", server("s", &[])),
            Err(StoreError::AccountNotFound(_))
        ));
        assert!(store.list_servers(None).unwrap().is_empty());
    }

    fn a_servers_answer_budget_is_kept_and_resolved_and_checked(db) {
        let store = db.open();
        let acct = store
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let mut req = server("small", &[]);
        req.answer_budget = Some(2048);
        let small = store.create_server(&acct, req).unwrap();
        let plain = store.create_server(&acct, server("plain", &[])).unwrap();
        assert_eq!(small.server.answer_budget, Some(2048));
        // Another handle (another node) reads the same column.
        let other = db.open();
        let got = other.get_server(&small.server.id).unwrap().unwrap();
        assert_eq!(got.answer_budget, Some(2048));
        let listed: Vec<_> = other
            .list_servers(Some(&acct))
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.answer_budget))
            .collect();
        assert_eq!(listed, [("small".to_string(), Some(2048)), ("plain".to_string(), None)]);
        let resolved = other.resolve_token(&small.token).unwrap().unwrap();
        assert_eq!(resolved.answer_budget, Some(2048));
        let resolved = other.resolve_token(&plain.token).unwrap().unwrap();
        assert_eq!(resolved.answer_budget, None);
        for bad in [0, 1023, 4 * 1024 * 1024 + 1] {
            let mut req = server("bad", &[]);
            req.answer_budget = Some(bad);
            assert!(
                matches!(store.create_server(&acct, req), Err(StoreError::Invalid { field, .. }) if field == "answer_budget"),
                "{bad}"
            );
        }
        assert_eq!(store.list_servers(None).unwrap().len(), 2, "nothing half-written");
    }

    fn deleting_an_account_revokes_its_servers(db) {
        let store = db.open();
        let acct = store
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let created = store.create_server(&acct, server("s", &[])).unwrap();
        assert_eq!(store.delete_account(&acct).unwrap(), Some(1));
        assert!(store.resolve_token(&created.token).unwrap().is_none());
        assert_eq!(store.delete_account(&acct).unwrap(), None);
    }

    fn admin_tokens_are_verified_by_hash(db) {
        let store = db.open();
        let token = store.create_admin_token().unwrap();
        assert!(store.verify_admin_token(&token).unwrap());
        assert!(!store.verify_admin_token("wrong").unwrap());
        assert!(!store.verify_admin_token("from-env").unwrap());
        store.add_admin_token_hash("from-env").unwrap();
        assert!(store.verify_admin_token("from-env").unwrap());
        drop(store);
        let store = db.open();
        assert!(store.verify_admin_token(&token).unwrap());
        assert!(!store.verify_admin_token("from-env").unwrap());
    }

    fn a_change_through_another_handle_is_seen_within_a_second(db) {
        let (a, b) = (db.open(), db.open());
        let acct = a
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let created = a.create_server(&acct, server("s", &[])).unwrap();
        // Created on A, served by B at once; then B answers from its cache.
        assert!(b.resolve_token(&created.token).unwrap().is_some());
        let lookups = b.database_lookups();
        assert!(b.resolve_token(&created.token).unwrap().is_some());
        assert_eq!(b.database_lookups(), lookups, "a cached lookup asked the database");

        // A new key through A reaches B's cached server.
        a.ensure_account("a", "sk_test_rotated_9876", "http://127.0.0.1:1")
            .unwrap();
        eventually(|| b.resolve_token(&created.token).unwrap().unwrap().api_key == "sk_test_rotated_9876");
        assert!(a.delete_server(&created.server.id).unwrap());
        eventually(|| b.resolve_token(&created.token).unwrap().is_none());

        let second = a.create_server(&acct, server("t", &[])).unwrap();
        assert!(b.resolve_token(&second.token).unwrap().is_some());
        assert_eq!(a.delete_account(&acct).unwrap(), Some(1));
        eventually(|| b.resolve_token(&second.token).unwrap().is_none());
    }

    fn concurrent_creates_lose_nothing_and_never_share_a_token(db) {
        let stores = [db.open(), db.open()];
        let acct = stores[0]
            .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
            .unwrap();
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|i| {
                    let (store, acct) = (&stores[i % 2], &acct);
                    scope.spawn(move || {
                        (0..20)
                            .map(|n| {
                                store
                                    .create_server(acct, server(&format!("w{i}-{n}"), &[]))
                                    .unwrap()
                                    .token
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        let distinct: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(distinct.len(), 80);
        assert_eq!(stores[1].list_servers(Some(&acct)).unwrap().len(), 80);
        for token in &tokens {
            assert!(stores[1].resolve_token(token).unwrap().is_some());
        }
    }

    fn a_database_newer_than_the_binary_is_refused(db) {
        drop(db.open());
        let future = migrations::latest(db.migrations()) + 1;
        db.execute(&format!(
            "INSERT INTO schema_migrations (version, name, applied_at) \
             VALUES ({future}, 'from_the_future', 0)"
        ));
        let err = format!("{:#}", db.open_with_key(&[9u8; 32]).err().unwrap());
        assert!(err.contains(&format!("schema version {future}, newer than this malomo-mcp")), "{err}");
    }


    fn every_handle_on_a_database_gets_the_same_cursor_key(db) {
        let first = db.open().cursor_key().unwrap();
        assert_eq!(db.open().cursor_key().unwrap(), first);
        let other = Db::Sqlite(tempfile::tempdir().unwrap());
        assert_ne!(other.open().cursor_key().unwrap(), first);
    }

    fn a_guarded_server_is_created_with_its_first_client_token(db) {
        let (store, acct) = open_with_account(&db);
        let created = store.create_server(&acct, guarded("2fa")).unwrap();
        let first = created.client_token.clone().unwrap();
        assert_ne!(first.token, created.token);
        assert!(!format!("{created:?}").contains(&first.token));
        let id = &created.server.id;
        assert!(store.verify_client_token(id, &first.token).unwrap());
        assert!(!store.verify_client_token(id, &created.token).unwrap());
        let listed = store.list_client_tokens(id).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, first.info.id);

        let plain = store.create_server(&acct, server("plain", &[])).unwrap();
        assert!(plain.client_token.is_none());
        assert!(matches!(
            store.create_client_token(&plain.server.id),
            Err(StoreError::NoSecondFactor(_))
        ));
        assert!(matches!(
            store.create_client_token("missing"),
            Err(StoreError::ServerNotFound(_))
        ));
        assert!(matches!(
            store.list_client_tokens("missing"),
            Err(StoreError::ServerNotFound(_))
        ));
    }

    fn a_client_token_belongs_to_one_server(db) {
        let (store, acct) = open_with_account(&db);
        let one = store.create_server(&acct, guarded("one")).unwrap();
        let two = store.create_server(&acct, guarded("two")).unwrap();
        let one_token = one.client_token.unwrap().token;
        assert!(
            store
                .verify_client_token(&one.server.id, &one_token)
                .unwrap()
        );
        assert!(
            !store
                .verify_client_token(&two.server.id, &one_token)
                .unwrap()
        );
        let admin = store.create_admin_token().unwrap();
        assert!(!store.verify_client_token(&one.server.id, &admin).unwrap());
        assert!(!store.verify_admin_token(&one_token).unwrap());
    }

    fn a_revoked_client_token_is_refused_at_once_in_every_process(db) {
        let (store, acct) = open_with_account(&db);
        // Another process on the same database.
        let other = db.open();
        let created = store.create_server(&acct, guarded("2fa")).unwrap();
        let id = created.server.id.clone();
        let second = store.create_client_token(&id).unwrap();
        // Both are verified (and cached) in both stores first.
        for s in [&store, &other] {
            assert!(s.verify_client_token(&id, &second.token).unwrap());
            assert!(s.verify_client_token(&id, &second.token).unwrap());
        }
        assert!(other.delete_client_token(&id, &second.info.id).unwrap());
        assert!(!other.verify_client_token(&id, &second.token).unwrap());
        eventually(|| !store.verify_client_token(&id, &second.token).unwrap());
        assert!(!other.delete_client_token(&id, &second.info.id).unwrap());
        let first = created.client_token.unwrap();
        assert!(store.verify_client_token(&id, &first.token).unwrap());
        assert_eq!(store.list_client_tokens(&id).unwrap().len(), 1);
    }

    fn deleting_a_server_deletes_its_client_tokens(db) {
        let (store, acct) = open_with_account(&db);
        let created = store.create_server(&acct, guarded("2fa")).unwrap();
        let id = created.server.id.clone();
        store.create_client_token(&id).unwrap();
        let by_account = store.create_server(&acct, guarded("other")).unwrap();
        assert!(store.delete_server(&id).unwrap());
        assert!(store.delete_account(&acct).unwrap().is_some());
        assert_eq!(
            db.count("mcp_client_tokens"),
            0,
            "client tokens outlived their servers"
        );
        let token = by_account.client_token.unwrap().token;
        assert!(
            !store
                .verify_client_token(&by_account.server.id, &token)
                .unwrap()
        );
    }
}

/// The fixture's description (tests/fixtures/store-v1.json).
#[derive(serde::Deserialize)]
struct Fixture {
    master_key_hex: String,
    accounts: Vec<FixtureAccount>,
    servers: Vec<FixtureServer>,
    admin_tokens: Vec<String>,
}

#[derive(serde::Deserialize)]
struct FixtureAccount {
    id: String,
    name: String,
    api_key: String,
    base_url: String,
}

#[derive(serde::Deserialize)]
struct FixtureServer {
    id: String,
    account_id: String,
    name: String,
    token: String,
    methods: Vec<String>,
    tags: Vec<String>,
    require_api_token_auth: bool,
    expires_at: Option<i64>,
}

fn fixture_copy(dir: &tempfile::TempDir) -> (std::path::PathBuf, Fixture, [u8; 32]) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("store-v1.json")).unwrap())
            .unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(fixtures.join("store-v1.db"), &db).unwrap();
    let key: [u8; 32] = hex::decode(&fixture.master_key_hex)
        .unwrap()
        .try_into()
        .unwrap();
    (db, fixture, key)
}

#[test]
fn a_database_of_the_first_release_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let (db, fixture, key) = fixture_copy(&dir);
    let store = Store::open_with_key(&db, &key).unwrap();

    let accounts = store.list_accounts().unwrap();
    assert_eq!(accounts.len(), fixture.accounts.len());
    for (got, want) in accounts.iter().zip(&fixture.accounts) {
        assert_eq!((&got.id, &got.name), (&want.id, &want.name));
        assert_eq!(got.base_url, want.base_url);
        assert_eq!(got.masked_api_key, mask_key(&want.api_key));
    }
    assert_eq!(
        store.list_servers(None).unwrap().len(),
        fixture.servers.len()
    );
    for want in &fixture.servers {
        let got = store.resolve_token(&want.token).unwrap().unwrap();
        let account = fixture
            .accounts
            .iter()
            .find(|a| a.id == want.account_id)
            .unwrap();
        assert_eq!((&got.id, &got.name), (&want.id, &want.name));
        assert_eq!(got.api_key, account.api_key, "{}", want.name);
        assert_eq!(got.base_url, account.base_url);
        assert_eq!(got.filter.methods, want.methods);
        assert_eq!(got.filter.tags, want.tags);
        assert_eq!(got.require_api_token_auth, want.require_api_token_auth);
        assert_eq!(got.expires_at.map(|t| t.unix_timestamp()), want.expires_at);
    }
    for token in &fixture.admin_tokens {
        assert!(store.verify_admin_token(token).unwrap());
    }
    drop(store);

    // The upgrade is recorded, and a second open changes nothing.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let recorded: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let known: Vec<i64> = migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(recorded, known);
    drop(conn);
    let store = Store::open_with_key(&db, &key).unwrap();
    assert_eq!(store.list_accounts().unwrap().len(), fixture.accounts.len());
}

/// Only one node sweeps at a time: while another holds the sweep lock, a
/// sweep deletes nothing; once released, the next one does.
#[test]
fn a_sweep_waits_for_the_node_holding_the_lock() {
    let Some(db) =
        TestDatabase::for_test("store::tests::a_sweep_waits_for_the_node_holding_the_lock")
    else {
        return;
    };
    let store = Store::open_with_key(std::path::Path::new(&db.url), &[9u8; 32])
        .unwrap()
        .with_tools(TABLE);
    let acct = store
        .ensure_account("a", "sk_test_0123456789", "http://127.0.0.1:1")
        .unwrap();
    let mut req = server("short", &[]);
    req.expires_at = Some(OffsetDateTime::now_utc() + Duration::from_secs(1));
    store.create_server(&acct, req).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let holder = db.hold_advisory_lock(crate::store::postgres::SWEEP_LOCK);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    drop(holder);
    assert_eq!(store.sweep_expired().unwrap(), 1);
}

#[cfg(unix)]
#[test]
fn the_database_and_its_wal_and_shm_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Under the usual umask (022) a plain new file is readable by others;
    // the database files must not be.
    let db = Db::Sqlite(dir);
    let (store, acct) = open_with_account(&db);
    store.create_server(&acct, guarded("2fa")).unwrap();
    for name in ["t.db", "t.db-wal", "t.db-shm"] {
        let mode = std::fs::metadata(db.location().with_file_name(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
    drop(store);
    // An existing database keeps working (and keeps its mode).
    let store = db.open();
    assert_eq!(store.list_servers(None).unwrap().len(), 1);
}

mod inbox;
