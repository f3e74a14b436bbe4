//! malomo-mcp: a spec-generated MCP server for the Malomo API.

pub mod access;
pub mod admin;
pub mod catalog;
pub mod connections;
pub mod console;
pub mod events;
pub mod fair;
pub mod inbox;
pub mod limits;
pub mod mcp;
pub mod memory;
pub mod runtime;
pub mod serve;
pub mod store;

/// The embedded Malomo sandbox, a crate of its own so that it cannot depend
/// on the generated catalog it is used to check.
pub use malomo_sandbox as sandbox;

/// Installs rustls' ring provider as the process default (idempotent): the
/// build carries no other provider, and reqwest needs one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
