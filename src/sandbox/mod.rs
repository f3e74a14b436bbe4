//! The embedded Malomo sandbox: a faithful local Malomo API (see
//! ../shared/MALOMO_API.md) used by `serve` without a key, by tests and by
//! benchmarks.

use std::net::SocketAddr;

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub seed: u64,
    pub rate_burst: u32,
    pub rate_per_sec: f64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { seed: 42, rate_burst: 30, rate_per_sec: 0.5 }
    }
}

/// A running sandbox.
pub struct SandboxHandle {
    pub addr: SocketAddr,
}

/// Starts the sandbox on `listen` (port 0 picks a free port).
pub async fn start(listen: SocketAddr, config: SandboxConfig) -> anyhow::Result<SandboxHandle> {
    let _ = config;
    anyhow::bail!("sandbox not implemented yet (listen {listen})")
}
