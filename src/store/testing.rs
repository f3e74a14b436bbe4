//! Throwaway PostgreSQL databases for tests (this crate's and the
//! integration tests'). Not part of the product.
//!
//! `MALOMO_MCP_TEST_DATABASE_URL` points at a cluster the tests may create
//! databases in (`scripts/with-postgres.sh` starts one). Without it the
//! PostgreSQL tests skip and say so on the terminal; with `CI=true` a skip
//! is a failure.

use std::io::Write;

use anyhow::Context;

pub const TEST_DATABASE_ENV: &str = "MALOMO_MCP_TEST_DATABASE_URL";

/// The test cluster's URL, or `None` after announcing that `test` skips.
/// Panics in CI, where PostgreSQL must be there.
pub fn test_cluster_url(test: &str) -> Option<String> {
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: {TEST_DATABASE_ENV} is not set, and CI must run the PostgreSQL \
                 tests (run them under scripts/with-postgres.sh)"
            );
            // Straight to stderr: the test harness hides eprintln! of tests
            // that pass, and this skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: no PostgreSQL ({TEST_DATABASE_ENV} is not set; \
                 run under scripts/with-postgres.sh) ***"
            );
            None
        }
    }
}

/// A fresh, empty database on the test cluster, dropped with this value.
pub struct TestDatabase {
    cluster: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a database with a random name on the cluster at `cluster`.
    pub fn create(cluster: &str) -> anyhow::Result<TestDatabase> {
        let name = format!("malomo_test_{}", uuid::Uuid::new_v4().simple());
        admin(cluster, format!("CREATE DATABASE {name}"))?;
        let mut url = url::Url::parse(cluster).context("test cluster URL")?;
        url.set_path(&format!("/{name}"));
        Ok(TestDatabase {
            cluster: cluster.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    /// `create` on the test cluster, or `None` (announced) without one.
    pub fn for_test(test: &str) -> Option<TestDatabase> {
        let cluster = test_cluster_url(test)?;
        Some(TestDatabase::create(&cluster).expect("creating a test database"))
    }

    /// Runs `sql` on this database (for tests that tamper with it).
    pub fn execute(&self, sql: &str) -> anyhow::Result<()> {
        admin(&self.url, sql.to_owned())
    }

    /// The single BIGINT that `sql` selects.
    pub fn query_i64(&self, sql: &str) -> anyhow::Result<i64> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        on_own_runtime(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            Ok(client.query_one(&sql, &[]).await?.try_get(0)?)
        })
    }
}

/// A session-level advisory lock held by another connection until dropped.
pub struct HeldLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TestDatabase {
    /// Takes `pg_advisory_lock(key)` on a connection of its own, as another
    /// node would, and holds it until the value is dropped.
    pub fn hold_advisory_lock(&self, key: i64) -> HeldLock {
        let url = self.url.clone();
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test runtime");
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connecting to the test database");
                tokio::spawn(conn);
                client
                    .execute("SELECT pg_advisory_lock($1)", &[&key])
                    .await
                    .expect("taking the advisory lock");
                let _ = locked_tx.send(());
                // Blocks this test thread's runtime, which has nothing else to do.
                let _ = released.recv();
                // Unlock explicitly: a closed connection's session locks are
                // released only once PostgreSQL notices the disconnect, which
                // may be after the caller has already tried the lock again.
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .expect("releasing the advisory lock");
                drop(client);
            });
        });
        locked.recv().expect("the lock holder failed");
        HeldLock {
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = admin(
            &self.cluster,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs `sql` on its own connection and runtime (callable from any thread
/// that is not inside a tokio runtime, and from ones that are).
fn admin(url: &str, sql: String) -> anyhow::Result<()> {
    let url = url.to_owned();
    on_own_runtime(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&sql).await?;
        Ok(())
    })
}

/// Runs `task` to completion on a thread and runtime of its own.
fn on_own_runtime<T: Send + 'static>(
    task: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(task)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("test database thread panicked"))?
}
