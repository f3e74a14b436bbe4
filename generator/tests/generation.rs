//! Properties of everything the generator makes, checked on the fixture
//! cases under `tests/fixtures/` (whose `expected/` snapshots pin the exact
//! output; `tests/fixtures.rs`). Nothing here reads the real specs: they are
//! pinned by the checked-in `generated/`.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{Scratch, generate, generating_cases};
use generator::model::{Behavior, Location, MethodClass};
use generator::spec::{HttpMethod, MergeOp};

#[test]
fn every_tool_is_classed_by_what_it_sends() {
    for case in generating_cases() {
        let (catalog, _) = generate(&case);
        let verb_of = |name: &str| {
            catalog
                .tools
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.http)
                .unwrap_or_else(|| panic!("{case}: strategy tool {name}"))
        };
        for tool in &catalog.tools {
            // What the runtime sends, recomputed from the behaviour.
            let mut sent = match &tool.behavior {
                Behavior::Direct => vec![tool.http],
                Behavior::GuardedReplace { read_tool, .. } => vec![tool.http, verb_of(read_tool)],
                Behavior::KeyedArrayMerge {
                    read_tool,
                    write_tool,
                    ..
                } => vec![verb_of(read_tool), verb_of(write_tool)],
                Behavior::InboxSubscription {
                    list_tool,
                    create_tool,
                    ..
                } => vec![verb_of(list_tool), verb_of(create_tool)],
                // Served from the store: nothing goes upstream.
                Behavior::StoredEvents { .. } => vec![],
            };
            sent.sort();
            sent.dedup();
            assert_eq!(tool.sends, sent, "{case}: {}", tool.name);
            // A GET marked `read_only: false` (custom_methods) writes too.
            let writes = sent.iter().any(|v| *v != HttpMethod::Get) || !tool.annotations.read_only;
            assert_eq!(
                tool.class == MethodClass::Write,
                writes,
                "{case}: {}",
                tool.name
            );
        }
    }
}

#[test]
fn names_are_short_plain_unique_and_sorted() {
    for case in generating_cases() {
        let names: Vec<String> = generate(&case)
            .0
            .tools
            .into_iter()
            .map(|t| t.name)
            .collect();
        for name in &names {
            assert!(name.len() <= 64, "{case}: {name}");
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{case}: {name}"
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "{case}");
    }
}

#[test]
fn methods_without_documentation_are_skipped_and_reported() {
    let (catalog, _) = generate("plain_resource");
    let skipped: Vec<String> = catalog
        .skipped
        .iter()
        .map(|s| format!("{}.{}: {}", s.resource, s.method, s.reason))
        .collect();
    assert_eq!(skipped, ["widgets.update: no documentation record"]);
    assert!(catalog.tools.iter().all(|t| t.method != "update"));
}

#[test]
fn list_tools_page_with_limit_and_next_cursor() {
    let (catalog, _) = generate("pagination");
    let paged: Vec<_> = catalog
        .tools
        .iter()
        .filter(|t| t.pagination.is_some())
        .collect();
    assert!(paged.len() >= 2, "the case has list tools");
    for tool in paged {
        let p = tool.pagination.as_ref().expect("paged");
        for control in ["limit", "next_cursor"] {
            let route = tool
                .fields
                .iter()
                .find(|f| f.name == control)
                .expect("control input");
            assert_eq!(route.location, Location::Control);
            assert!(tool.input_schema["properties"][control].is_object());
        }
        assert_eq!(
            tool.input_schema["properties"]["limit"]["maximum"],
            p.max_limit
        );
        assert_eq!(
            tool.input_schema["properties"]["limit"]["default"],
            p.default_limit
        );
        assert_eq!(
            tool.output_schema["required"],
            serde_json::json!(["items", "next_cursor"])
        );
        assert!(
            tool.description.contains("pass next_cursor back unchanged"),
            "{}",
            tool.name
        );
    }
}

#[test]
fn strategies_refer_to_their_tools_and_are_emitted_as_references() {
    let (catalog, files) = generate("strategies");
    let tool = |name: &str| catalog.tools.iter().find(|t| t.name == name).expect(name);
    match &tool("update_a_acme_box_by_id").behavior {
        Behavior::GuardedReplace {
            read_tool,
            add_tool,
            ..
        } => {
            assert_eq!(read_tool, "get_single_acme_box_by_id");
            assert_eq!(add_tool.as_deref(), Some("add_a_acme_box_part"));
        }
        other => panic!("{other:?}"),
    }
    for (name, op) in [
        ("add_a_acme_box_part", MergeOp::Add),
        ("remove_a_acme_box_part", MergeOp::Remove),
    ] {
        match &tool(name).behavior {
            Behavior::KeyedArrayMerge {
                op: actual,
                read_tool,
                write_tool,
                ..
            } => {
                assert_eq!(*actual, op);
                assert_eq!(read_tool, "get_single_acme_box_by_id");
                assert_eq!(write_tool, "update_a_acme_box_by_id");
            }
            other => panic!("{other:?}"),
        }
    }
    // In the table, by reference to the statics (a typo cannot compile).
    let rust = &files["tools.rs"];
    for reference in [
        "read_tool: &GET_SINGLE_ACME_BOX_BY_ID",
        "write_tool: &UPDATE_A_ACME_BOX_BY_ID",
        "add_tool: ::core::option::Option::Some(&ADD_A_ACME_BOX_PART)",
    ] {
        assert!(rust.contains(reference), "{reference}");
    }
}

#[test]
fn paths_are_emitted_split_into_text_and_inputs() {
    // renames_and_collisions renames a path parameter with `as:`: the
    // placeholder is bound to the renamed input.
    for case in generating_cases() {
        for tool in generate(&case).0.tools {
            let template: String = tool
                .path_parts
                .iter()
                .map(|part| match part {
                    generator::model::PathPart::Literal(text) => text.clone(),
                    generator::model::PathPart::Input(name) => {
                        let route = tool
                            .fields
                            .iter()
                            .find(|f| &f.name == name && f.location == Location::Path)
                            .unwrap_or_else(|| panic!("{case}: {}: input {name}", tool.name));
                        format!("{{{}}}", route.wire)
                    }
                })
                .collect();
            assert_eq!(template, tool.path, "{case}: {}", tool.name);
        }
    }
}

#[test]
fn removing_a_docs_file_removes_exactly_its_tools() {
    let (before, _) = generate("pagination");
    let s = Scratch::of("pagination");
    fs::remove_file(s.spec("docs/widgets_by_name.yaml")).expect("remove");
    let (after, _) = generator::generate(s.root()).expect("generates");
    let names = |c: &generator::Catalog| -> BTreeSet<String> {
        c.tools.iter().map(|t| t.name.clone()).collect()
    };
    let removed: BTreeSet<String> = names(&before).difference(&names(&after)).cloned().collect();
    let of_resource: BTreeSet<String> = before
        .tools
        .iter()
        .filter(|t| t.resource == "widgets_by_name")
        .map(|t| t.name.clone())
        .collect();
    assert!(!of_resource.is_empty());
    assert_eq!(removed, of_resource);
    assert!(names(&after).is_subset(&names(&before)));
    assert!(
        after
            .skipped
            .iter()
            .any(|s| s.resource == "widgets_by_name")
    );
}

#[test]
fn two_generations_into_different_directories_are_identical() {
    let s = Scratch::of("strategies");
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    generator::write(s.root(), a.path()).expect("first");
    generator::write(s.root(), b.path()).expect("second");
    let read = |dir: &std::path::Path| {
        let mut files = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).expect("dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).expect("under").to_path_buf();
                    files.insert(rel, fs::read(&path).expect("read"));
                }
            }
        }
        files
    };
    let (fa, fb) = (read(a.path()), read(b.path()));
    assert!(fa.len() >= 5);
    assert_eq!(fa, fb);
}

#[test]
fn every_generated_file_says_it_is_generated() {
    for case in generating_cases() {
        let (_, files) = generate(&case);
        for (name, text) in &files {
            let first = text.lines().next().unwrap_or_default();
            let ok = if name.ends_with(".json") {
                text.lines()
                    .nth(1)
                    .unwrap_or_default()
                    .contains("\"$comment\": \"@generated")
            } else {
                first.contains("@generated")
            };
            assert!(ok, "{case}: {name}: {first}");
            assert!(
                text.contains("cargo run -p generator -- generate"),
                "{case}: {name}"
            );
        }
        assert!(
            files.contains_key("openapi.json")
                && files.contains_key("TOOLS.md")
                && files.contains_key("tools.rs")
        );
    }
}

#[test]
fn openapi_document_parses_back_and_covers_every_endpoint() {
    for case in generating_cases() {
        let (catalog, files) = generate(&case);
        let doc: openapiv3::OpenAPI =
            serde_json::from_str(&files["openapi.json"]).expect("OpenAPI 3");
        let ops: BTreeSet<(String, String)> = doc
            .operations()
            .map(|(path, verb, _)| (verb.to_uppercase(), path.to_string()))
            .collect();
        // Documented or not, every method of the specs that calls the
        // upstream is an operation (one the runtime serves itself has no
        // path).
        for endpoint in catalog.endpoints.iter().filter(|e| !e.path.is_empty()) {
            let op = (endpoint.http.as_str().to_owned(), endpoint.path.clone());
            assert!(ops.contains(&op), "{case}: {op:?}");
        }
    }
}

#[test]
fn stale_output_is_reported_as_a_diff() {
    let s = Scratch::of("plain_resource");
    let dir = tempfile::tempdir().expect("tempdir");
    generator::write(s.root(), dir.path()).expect("write");
    assert_eq!(generator::check(s.root(), dir.path()).expect("check"), "");
    let md = dir.path().join("TOOLS.md");
    let text = fs::read_to_string(&md).expect("read");
    fs::write(
        &md,
        text.replace("list_all_acme_widgets", "list_every_widget"),
    )
    .expect("write");
    fs::write(dir.path().join("schemas/old_tool.json"), "{}").expect("write");
    let diff = generator::check(s.root(), dir.path()).expect("check");
    assert!(diff.contains("--- TOOLS.md (checked in)"), "{diff}");
    assert!(diff.contains("-| `list_every_widget`"), "{diff}");
    assert!(diff.contains("+| `list_all_acme_widgets`"), "{diff}");
    assert!(
        diff.contains("schemas/old_tool.json: checked in but no longer generated"),
        "{diff}"
    );
}

#[test]
fn emitted_rust_is_the_contract_table() {
    for case in generating_cases() {
        let (catalog, files) = generate(&case);
        let file = syn::parse_file(&files["tools.rs"]).expect("parses");
        let statics: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Static(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            statics[..5],
            ["INTEGRATION", "INSTRUCTIONS", "TOOLS", "SKIPPED", "PROMPTS"],
            "{case}"
        );
        // Then one static per tool, named after it, in the order of `TOOLS`.
        let tools: Vec<String> = catalog
            .tools
            .iter()
            .map(|t| t.name.to_uppercase())
            .collect();
        assert_eq!(statics[5..], tools, "{case}");
    }
}

#[test]
fn build_script_writes_the_table_and_fails_on_bad_specs() {
    let s = Scratch::of("plain_resource");
    let out = tempfile::tempdir().expect("tempdir");
    generator::build_script(s.root(), out.path()).expect("good specs build");
    let tools = fs::read_to_string(out.path().join("tools.rs")).expect("tools.rs");
    let (_, files) = generator::generate(s.root()).expect("generates");
    assert_eq!(tools, files["tools.rs"]);
    assert!(out.path().join("generated/openapi.json").is_file());

    s.edit(
        "resources/widgets.yaml",
        "singular: widget",
        "singular: widget\nsingularity: 1",
    );
    let e = generator::build_script(s.root(), out.path())
        .expect_err("bad spec fails the build")
        .to_string();
    assert!(e.starts_with("specs/acme/resources/widgets.yaml:"), "{e}");
    assert!(e.contains("unknown field `singularity`"), "{e}");
}

#[test]
fn instructions_come_from_the_specs_with_real_tool_names() {
    let (catalog, _) = generate("strategies");
    let paragraphs = catalog.paragraphs(&catalog.instructions, None);
    assert!(paragraphs[0].text.starts_with("Tools for the Acme API."));
    assert!(paragraphs[0].mentions.is_empty());
    let add = paragraphs
        .iter()
        .find(|p| p.text.contains("add_a_acme_box_part"))
        .expect("a paragraph on adding a part");
    assert_eq!(add.mentions, ["add_a_acme_box_part"]);
    // Every tool name in the text is a mention of its paragraph.
    for p in &paragraphs {
        for t in &catalog.tools {
            assert_eq!(
                generator::model::mentions(&p.text, &t.name),
                p.mentions.contains(&t.name),
                "{}: {}",
                t.name,
                p.text
            );
        }
    }
}
