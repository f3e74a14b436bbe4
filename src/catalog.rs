//! The generated tool table, built from the contract types of
//! [`malomo_contract`] (re-exported here, so `catalog::ToolDef` and
//! `malomo_contract::ToolDef` are one type).

pub use malomo_contract::*;

include!(concat!(env!("OUT_DIR"), "/tools.rs"));

/// Finds a tool of the table by name.
pub fn tool(name: &str) -> Option<&'static ToolDef> {
    TOOLS.iter().find(|t| t.name == name)
}
