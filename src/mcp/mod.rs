//! MCP protocol: the handler over the generated table and its transports.

pub mod events;
mod guard;
pub mod handler;
pub mod http;
mod inline;
mod legacy_sse;
mod malformed;
pub mod prompts;
pub mod sessions;

pub use handler::{McpHandler, Scope, Shared};
