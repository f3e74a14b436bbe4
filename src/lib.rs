//! malomo-mcp: a spec-generated MCP server for the Malomo API.

pub mod access;
pub mod admin;
pub mod catalog;
pub mod mcp;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod store;

/// Installs rustls' ring provider as the process default (idempotent): the
/// build carries no other provider, and reqwest needs one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
