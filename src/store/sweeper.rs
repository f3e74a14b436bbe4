//! The background task that deletes expired servers. Expired servers are
//! already refused by [`super::Store::resolve_token`]; sweeping only keeps
//! the table from growing.

use std::time::Duration;

use super::Store;

/// Deletes expired servers every `every` (at least a millisecond), on the
/// blocking pool so that a slow write never stalls the async workers.
pub fn spawn_sweeper(store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.sweep_expired()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(deleted = n, "swept expired MCP servers"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping expired MCP servers failed"),
                Err(e) => tracing::warn!(error = %e, "sweeper task failed"),
            }
        }
    })
}
