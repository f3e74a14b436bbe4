//! The background task that deletes expired servers and received events
//! past their retention. Expired servers are already refused by
//! [`super::Store::resolve_token`]; sweeping only keeps the tables from
//! growing.

use std::time::Duration;

use super::{EventRetention, Store};

/// Deletes expired servers and old events every `every` (at least a
/// millisecond), on the blocking pool so that a slow write never stalls the
/// async workers.
pub fn spawn_sweeper(
    store: Store,
    every: Duration,
    retention: EventRetention,
) -> tokio::task::JoinHandle<()> {
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let servers = store.clone();
            match tokio::task::spawn_blocking(move || servers.sweep_expired()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(deleted = n, "swept expired MCP servers"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping expired MCP servers failed"),
                Err(e) => tracing::warn!(error = %e, "sweeper task failed"),
            }
            let events = store.clone();
            match tokio::task::spawn_blocking(move || events.sweep_events(&retention)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(deleted = n, "swept events past their retention"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping old events failed"),
                Err(e) => tracing::warn!(error = %e, "sweeper task failed"),
            }
        }
    })
}
