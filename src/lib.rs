//! malomo-mcp: a spec-generated MCP server for the Malomo API.

pub mod catalog;
pub mod sandbox;
pub mod store;
pub mod access;
