//! The generated tool table, built from the contract types of
//! [`malomo_contract`] (re-exported here, so `catalog::ToolDef` and
//! `malomo_contract::ToolDef` are one type), and what the runtime derives
//! from it once per process.

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

pub use malomo_contract::*;

include!(concat!(env!("OUT_DIR"), "/tools.rs"));

/// Finds a tool of the table by the name a client gave.
pub fn tool(name: &str) -> Option<&'static ToolDef> {
    find_tool(TOOLS, name)
}

/// A tool's input and output JSON Schemas, parsed from the table's text
/// once per process and shared by everything that needs them (the MCP tool
/// list, the argument validator, the console).
#[derive(Debug)]
pub struct ToolSchemas {
    pub input: Arc<Map<String, Value>>,
    pub output: Arc<Map<String, Value>>,
}

static SCHEMAS: LazyLock<Result<Vec<ToolSchemas>, String>> =
    LazyLock::new(|| TOOLS.iter().map(|tool| parse_schemas(tool)).collect());

fn parse_schemas(tool: &ToolDef) -> Result<ToolSchemas, String> {
    let object = |text: &str, what: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Arc::new(map)),
        Ok(_) => Err(format!(
            "the {what} of `{}` is not a JSON object",
            tool.name
        )),
        Err(e) => Err(format!("the {what} of `{}` is not JSON: {e}", tool.name)),
    };
    Ok(ToolSchemas {
        input: object(tool.input_schema, "input schema")?,
        output: object(tool.output_schema, "output schema")?,
    })
}

/// The parsed schemas of `tool`, a tool of [`TOOLS`] (found by its
/// `index`). The generator wrote them from JSON values, so the error is for
/// a hand-edited table.
pub fn schemas(tool: &ToolDef) -> Result<&'static ToolSchemas, String> {
    let all = SCHEMAS.as_ref().map_err(Clone::clone)?;
    all.get(tool.index)
        .ok_or_else(|| format!("`{}` is not a tool of the table", tool.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_sits_at_its_index_and_is_found_by_its_name() {
        for (index, def) in TOOLS.iter().enumerate() {
            assert_eq!(def.index, index, "{}", def.name);
            assert!(std::ptr::eq(tool(def.name).expect("found"), *def));
        }
        assert!(tool("no_such_tool").is_none());
    }

    #[test]
    fn every_schema_is_parsed_once_and_shared() {
        for def in TOOLS {
            let first = schemas(def).expect("schemas parse");
            let again = schemas(def).expect("schemas parse");
            assert!(Arc::ptr_eq(&first.input, &again.input), "{}", def.name);
            assert_eq!(first.input.get("type"), Some(&Value::from("object")));
            assert_eq!(first.output.get("type"), Some(&Value::from("object")));
        }
    }
}
