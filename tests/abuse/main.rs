//! The abuse suite (issue 10): what one holder of one MCP URL can try, on
//! loopback, with bounded loops that stop by themselves. One module per
//! concern.

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod fairness;
mod input;
mod limits;
