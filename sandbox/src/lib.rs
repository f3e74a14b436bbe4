//! The embedded Malomo sandbox: a faithful local Malomo API (see
//! ../shared/MALOMO_API.md) used by `serve` without a key, by tests and by
//! benchmarks.
//!
//! Sandbox choices not fixed by Malomo's docs: creates, updates and deletes
//! answer 200 with the object (Malomo documents no 201/204); the object cap
//! answers 507 with code `storage_full`; a second customer with the same
//! email is a 400; webhook payloads are `{id, topic, created_at, data}`.

mod auth;
mod delivery;
mod error;
mod input;
mod model;
mod orders;
mod pagination;
mod progression;
mod ratelimit;
mod resources;
mod rng;
mod routes;
mod seed;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;

pub use delivery::sign as sign_webhook_body;
pub use input::MAX_BODY_BYTES;
pub use seed::{DEMO_EMAIL, SEED_EPOCH};

/// Example keys: any `sk_...` / `pk_...` works, these are for docs and tests.
pub const EXAMPLE_SECRET_KEY: &str = "sk_sandbox_4eC39HqLyjWDarjtT1zdp7dc";
pub const EXAMPLE_PUBLISHABLE_KEY: &str = "pk_sandbox_TYooMQauvdEDq54NiTphI7jx";

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Demo data is a pure function of this seed.
    pub seed: u64,
    /// Leaky bucket size per key.
    pub rate_burst: u32,
    /// Leaky bucket drain rate per key.
    pub rate_per_sec: f64,
    /// Load the demo merchant's orders, customers and returns.
    pub demo_data: bool,
    /// Cap on stored objects (orders, customers, webhooks, returns, events);
    /// creates beyond it answer 507 `storage_full`.
    pub max_objects: usize,
    /// Background clock: every interval all shipments advance one step.
    /// None disables it (tests then use `POST /_sandbox/tick`).
    pub tick_interval: Option<Duration>,
    /// First webhook retry delay; doubles on every further attempt.
    pub webhook_retry_base: Duration,
    /// Attempts per webhook delivery, the first included.
    pub webhook_max_attempts: u32,
    /// Timeout of one delivery attempt.
    pub webhook_timeout: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            rate_burst: 30,
            rate_per_sec: 0.5,
            demo_data: true,
            max_objects: 100_000,
            tick_interval: Some(Duration::from_secs(30)),
            webhook_retry_base: Duration::from_secs(30),
            webhook_max_attempts: 10,
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

/// State shared by every request.
pub(crate) struct Shared {
    store: RwLock<store::Store>,
    limiter: ratelimit::RateLimiter,
    deliverer: delivery::Deliverer,
    addr: SocketAddr,
}

impl Shared {
    /// Runs `f` under the read lock. Callers never hold it across an await.
    fn read<R>(&self, f: impl FnOnce(&store::Store) -> R) -> R {
        let guard = self.store.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Runs `f` under the write lock, then sends the webhooks it triggered
    /// once the lock is released.
    fn write<R>(&self, f: impl FnOnce(&mut store::Store) -> R) -> R {
        let (result, outgoing) = {
            let mut guard = self.store.write().unwrap_or_else(|e| e.into_inner());
            let result = f(&mut guard);
            (result, std::mem::take(&mut guard.outgoing))
        };
        if !outgoing.is_empty() {
            self.deliverer.dispatch(outgoing);
        }
        result
    }
}

/// A running sandbox. Dropping it leaves the server running (it lives as
/// long as the runtime); call [`SandboxHandle::shutdown`] to stop it.
pub struct SandboxHandle {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    /// `http://ADDR`, the base URL to give a Malomo client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn secret_key(&self) -> &'static str {
        EXAMPLE_SECRET_KEY
    }

    pub fn publishable_key(&self) -> &'static str {
        EXAMPLE_PUBLISHABLE_KEY
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the sandbox on `listen` (port 0 picks a free port).
pub async fn start(listen: SocketAddr, config: SandboxConfig) -> anyhow::Result<SandboxHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let deliverer = delivery::Deliverer::new(
        config.webhook_retry_base,
        config.webhook_max_attempts,
        config.webhook_timeout,
    )?;
    let (tx, rx) = oneshot::channel::<()>();
    // Seeding the demo data takes about 10 ms. The address is known and
    // returned at once (a server in front can start and list its tools);
    // connections wait in the listen backlog until the data is in, so no
    // request ever sees a half-seeded account.
    let task = tokio::spawn(async move {
        let seeded = tokio::task::spawn_blocking(move || {
            let mut st = store::Store::new(config.max_objects);
            if config.demo_data {
                seed::load(&mut st, config.seed);
            }
            st
        })
        .await;
        let st = match seeded {
            Ok(st) => st,
            Err(e) => {
                tracing::error!(error = %e, "sandbox demo data failed; the sandbox is not serving");
                return;
            }
        };
        let shared = Arc::new(Shared {
            store: RwLock::new(st),
            limiter: ratelimit::RateLimiter::new(config.rate_burst, config.rate_per_sec),
            deliverer,
            addr,
        });
        let app = routes::router(shared.clone());
        let clock = config.tick_interval.map(|every| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await; // the first tick fires at once; skip it
                loop {
                    interval.tick().await;
                    shared.write(|st| st.tick(model::now()));
                }
            })
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped handle (sender gone) is not a request to stop.
                if rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "sandbox server stopped");
        }
        if let Some(clock) = clock {
            clock.abort();
        }
    });
    tracing::info!(%addr, "Malomo sandbox listening");
    Ok(SandboxHandle {
        addr,
        shutdown: Some(tx),
        task,
    })
}
