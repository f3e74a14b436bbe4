//! The generator's fixture snapshots (generator/tests/fixtures/<case>/
//! expected/tools.rs) compiled against the runtime's table types, all cases
//! in this one test crate: generated code that does not build fails here.
//! Each table names its types by full path, so nothing is imported.
//! `generator/tests/fixtures.rs` checks that every case that generates is
//! listed.

#![allow(dead_code)]

mod custom_methods {
    include!("../generator/tests/fixtures/custom_methods/expected/tools.rs");
}

mod inbox_events {
    include!("../generator/tests/fixtures/inbox_events/expected/tools.rs");
}

mod pagination {
    include!("../generator/tests/fixtures/pagination/expected/tools.rs");
}

mod plain_resource {
    include!("../generator/tests/fixtures/plain_resource/expected/tools.rs");
}

mod prompts {
    include!("../generator/tests/fixtures/prompts/expected/tools.rs");
}

mod renames_and_collisions {
    include!("../generator/tests/fixtures/renames_and_collisions/expected/tools.rs");
}

mod strategies {
    include!("../generator/tests/fixtures/strategies/expected/tools.rs");
}

/// Each compiled table is usable as the runtime uses it: its schemas are
/// JSON objects and its tool names are unique.
#[test]
fn fixture_tables_compile_and_hold_json_schemas() {
    let cases: &[(&str, &[&malomo_mcp::catalog::ToolDef])] = &[
        ("custom_methods", custom_methods::TOOLS),
        ("inbox_events", inbox_events::TOOLS),
        ("pagination", pagination::TOOLS),
        ("plain_resource", plain_resource::TOOLS),
        ("prompts", prompts::TOOLS),
        ("renames_and_collisions", renames_and_collisions::TOOLS),
        ("strategies", strategies::TOOLS),
    ];
    for (case, tools) in cases {
        assert!(!tools.is_empty(), "{case}: no tools");
        let mut names: Vec<&str> = tools.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), tools.len(), "{case}: duplicate tool names");
        for (index, tool) in tools.iter().enumerate() {
            assert_eq!(tool.index, index, "{case}/{}: index", tool.name);
            assert_eq!(
                malomo_mcp::catalog::find_tool(tools, tool.name).map(|t| t.name),
                Some(tool.name),
                "{case}: TOOLS must be sorted by name"
            );
        }
        for tool in tools.iter() {
            for schema in [tool.input_schema, tool.output_schema] {
                let value: serde_json::Value = serde_json::from_str(schema)
                    .unwrap_or_else(|e| panic!("{case}/{}: {e}", tool.name));
                assert!(value.is_object(), "{case}/{}", tool.name);
            }
        }
    }
}
