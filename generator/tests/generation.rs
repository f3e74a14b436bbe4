//! What the real specs generate.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{Scratch, workspace};
use generator::model::{Behavior, Class, Location};
use generator::spec::HttpVerb;

fn catalog() -> generator::Catalog {
    generator::generate(&workspace())
        .expect("real specs generate")
        .0
}

#[test]
fn documented_methods_become_tools() {
    let catalog = catalog();
    assert!(catalog.tools.len() >= 20, "{} tools", catalog.tools.len());
    let root = workspace().join("specs/malomo/docs");
    let mut documented = BTreeSet::new();
    for entry in fs::read_dir(&root).expect("docs dir") {
        let path = entry.expect("entry").path();
        let resource = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&path).expect("read");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        for method in doc["methods"].as_object().expect("methods").keys() {
            documented.insert((resource.clone(), method.clone()));
        }
    }
    let tools: BTreeSet<(String, String)> = catalog
        .tools
        .iter()
        .map(|t| (t.resource.clone(), t.method.clone()))
        .collect();
    assert_eq!(tools, documented);
}

#[test]
fn methods_without_documentation_are_skipped_and_reported() {
    let catalog = catalog();
    let skipped: Vec<String> = catalog
        .skipped
        .iter()
        .map(|s| format!("{}.{}: {}", s.resource, s.method, s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            "oauth.exchange_token: no documentation record",
            "oauth.uninstall: no documentation record"
        ]
    );
    assert!(catalog.tools.iter().all(|t| t.resource != "oauth"));
}

#[test]
fn tool_names_follow_the_managed_server_pattern() {
    let catalog = catalog();
    let names: BTreeSet<&str> = catalog.tools.iter().map(|t| t.name.as_str()).collect();
    for expected in [
        "list_all_malomo_orders",
        "get_single_malomo_order_by_id",
        "create_a_malomo_order",
        "update_a_malomo_order_by_id",
        "delete_a_malomo_order_by_id",
        "get_single_malomo_orders_by_tracking_code_by_id",
        "get_single_malomo_orders_by_alternate_id_by_id",
        "get_single_malomo_orders_by_number_by_id",
        "list_all_malomo_order_events",
        "list_all_malomo_customer_events",
        "create_a_malomo_webhook",
        "list_all_malomo_webhooks",
        "add_a_malomo_order_shipment",
        "remove_a_malomo_order_shipment",
    ] {
        assert!(names.contains(expected), "missing {expected}");
    }
}

#[test]
fn names_are_short_and_plain() {
    for tool in catalog().tools {
        assert!(tool.name.len() <= 64, "{}", tool.name);
        assert!(
            !tool.name.is_empty()
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{}",
            tool.name
        );
    }
}

#[test]
fn tools_are_sorted_by_name() {
    let names: Vec<String> = catalog().tools.into_iter().map(|t| t.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn list_tools_page_with_limit_and_next_cursor() {
    for tool in catalog().tools.iter().filter(|t| t.pagination.is_some()) {
        let p = tool.pagination.as_ref().expect("paged");
        assert_eq!(
            (p.limit_param.as_str(), p.default_limit, p.max_limit),
            ("limit", 25, 100)
        );
        assert_eq!(p.cursor_params, ["next"]);
        for control in ["limit", "next_cursor"] {
            let route = tool
                .fields
                .iter()
                .find(|f| f.name == control)
                .expect("control input");
            assert_eq!(route.location, Location::Control);
            assert!(tool.input_schema["properties"][control].is_object());
        }
        assert_eq!(tool.input_schema["properties"]["limit"]["maximum"], 100);
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
fn order_list_takes_the_lookup_filters_and_normalizes() {
    let catalog = catalog();
    let tool = catalog
        .tools
        .iter()
        .find(|t| t.name == "list_all_malomo_orders")
        .expect("tool");
    for filter in ["alternate_id", "tracking_code", "number", "customer_email"] {
        let route = tool.fields.iter().find(|f| f.name == filter).expect(filter);
        assert_eq!(route.location, Location::Query);
        assert!(!route.required);
    }
    let p = tool.pagination.as_ref().expect("paged");
    assert!(p.object_as_item && p.not_found_as_empty);
}

#[test]
fn order_update_is_guarded_and_warns() {
    let catalog = catalog();
    let tool = catalog
        .tools
        .iter()
        .find(|t| t.name == "update_a_malomo_order_by_id")
        .expect("tool");
    match &tool.behavior {
        Behavior::GuardedReplace {
            array,
            read_tool,
            override_flag,
            add_tool,
        } => {
            assert_eq!(array.field, "shipments");
            assert_eq!(array.key, ["carrier", "tracking_code"]);
            assert_eq!(read_tool, "get_single_malomo_order_by_id");
            assert_eq!(override_flag, "remove_missing_shipments");
            assert_eq!(add_tool.as_deref(), Some("add_a_malomo_order_shipment"));
        }
        other => panic!("{other:?}"),
    }
    let flag = tool
        .fields
        .iter()
        .find(|f| f.name == "remove_missing_shipments")
        .expect("flag");
    assert_eq!(flag.location, Location::Control);
    assert_eq!(
        tool.input_schema["properties"]["remove_missing_shipments"]["type"],
        "boolean"
    );
    assert!(tool.description.contains("WARNING"), "{}", tool.description);
    assert!(tool.description.contains("remove_missing_shipments"));
    assert_eq!(tool.class, Class::Write);
}

#[test]
fn shipment_tools_merge_into_the_keyed_array() {
    let catalog = catalog();
    for (name, add) in [
        ("add_a_malomo_order_shipment", true),
        ("remove_a_malomo_order_shipment", false),
    ] {
        let tool = catalog.tools.iter().find(|t| t.name == name).expect("tool");
        // Custom, and class write: the merge sends the update's PUT.
        assert!(tool.custom, "{}", tool.name);
        assert_eq!(tool.class, Class::Write, "{}", tool.name);
        assert_eq!(tool.sends, [HttpVerb::Get, HttpVerb::Put], "{}", tool.name);
        match &tool.behavior {
            Behavior::KeyedArrayMerge {
                array,
                op,
                read_tool,
                write_tool,
                id_arg,
            } => {
                assert_eq!(array.field, "shipments");
                assert_eq!(array.key, ["carrier", "tracking_code"]);
                assert_eq!(*op == generator::spec::MergeOpSpec::Add, add);
                assert_eq!(read_tool, "get_single_malomo_order_by_id");
                assert_eq!(write_tool, "update_a_malomo_order_by_id");
                assert_eq!(id_arg, "id");
            }
            other => panic!("{other:?}"),
        }
        let names: Vec<&str> = tool.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "carrier", "tracking_code"]);
    }
}

#[test]
fn webhook_topic_is_an_enum_and_secret_is_write_only() {
    let catalog = catalog();
    let create = catalog
        .tools
        .iter()
        .find(|t| t.name == "create_a_malomo_webhook")
        .expect("tool");
    let topics = create.input_schema["properties"]["topic"]["enum"]
        .as_array()
        .expect("enum");
    assert!(topics.contains(&"events:created".into()));
    assert!(topics.contains(&"shipment.exception".into()));
    assert_eq!(topics.len(), 8);
    assert!(create.input_schema["properties"]["secret"].is_object());
    for tool in catalog.tools.iter().filter(|t| t.resource == "webhooks") {
        let text = tool.output_schema.to_string();
        assert!(
            !text.contains("\"secret\""),
            "{} returns the secret",
            tool.name
        );
    }
}

#[test]
fn annotations_follow_the_http_verb() {
    for tool in catalog().tools {
        let a = tool.annotations;
        if tool.sends.is_empty() {
            // Served by this server alone: it reads and reaches nothing outside.
            assert!(
                a.read_only && a.idempotent && !a.destructive && !a.open_world,
                "{}",
                tool.name
            );
            continue;
        }
        assert!(a.open_world);
        match tool.http {
            generator::spec::HttpVerb::Get => assert!(
                a.read_only && a.idempotent && !a.destructive,
                "{}",
                tool.name
            ),
            generator::spec::HttpVerb::Post => {
                assert!(!a.read_only, "{}", tool.name);
                // A strategy may make a POST idempotent (it looks first).
                if matches!(tool.behavior, Behavior::Direct) {
                    assert!(!a.idempotent, "{}", tool.name)
                }
            }
            generator::spec::HttpVerb::Delete => {
                assert!(a.destructive && a.idempotent, "{}", tool.name)
            }
            _ => {}
        }
        assert_eq!(a.read_only, tool.class == Class::Read, "{}", tool.name);
    }
}

#[test]
fn class_is_read_exactly_when_every_request_sent_is_a_get() {
    let catalog = catalog();
    let verb_of = |name: &str| {
        catalog
            .tools
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.http)
            .expect("strategy tool in the catalog")
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
        assert_eq!(tool.sends, sent, "{}", tool.name);
        let writes = sent.iter().any(|v| *v != HttpVerb::Get);
        assert_eq!(tool.class == Class::Write, writes, "{}", tool.name);
        assert_eq!(
            tool.custom,
            !["list", "get", "create", "update", "delete"].contains(&tool.method.as_str()),
            "{}",
            tool.name
        );
    }
}

#[test]
fn removing_the_webhooks_docs_removes_exactly_the_webhook_tools() {
    let before: BTreeSet<String> = catalog().tools.into_iter().map(|t| t.name).collect();
    let s = Scratch::new();
    fs::remove_file(s.spec("docs/webhooks.yaml")).expect("remove");
    let (after, _) = generator::generate(s.root()).expect("generates");
    let after_names: BTreeSet<String> = after.tools.iter().map(|t| t.name.clone()).collect();
    let removed: BTreeSet<String> = before.difference(&after_names).cloned().collect();
    let expected: BTreeSet<String> = [
        "create_a_malomo_webhook",
        "delete_a_malomo_webhook_by_id",
        "get_single_malomo_webhook_by_id",
        "list_all_malomo_webhooks",
        "subscribe_to_malomo_events",
        "update_a_malomo_webhook_by_id",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(removed, expected);
    assert!(after_names.is_subset(&before));
    assert_eq!(
        after
            .skipped
            .iter()
            .filter(|s| s.resource == "webhooks")
            .count(),
        6
    );
    // The webhook-audit prompt needs those tools: it is skipped too, and
    // reported, while the other prompt stays.
    let prompts: Vec<&str> = after.prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(prompts, ["trace_lost_package"]);
    assert!(
        after
            .skipped
            .iter()
            .any(|s| s.resource == "prompts" && s.method == "ensure_exception_webhook")
    );
}

#[test]
fn two_generations_into_different_directories_are_identical() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    generator::write(&workspace(), a.path()).expect("first");
    generator::write(&workspace(), b.path()).expect("second");
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
    assert!(fa.len() > 20);
    assert_eq!(fa, fb);
}

#[test]
fn every_generated_file_says_it_is_generated() {
    let (_, files) = generator::generate(&workspace()).expect("generates");
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
        assert!(ok, "{name}: {first}");
        assert!(
            text.contains("cargo run -p generator -- generate"),
            "{name}"
        );
    }
    assert!(
        files.contains_key("openapi.json")
            && files.contains_key("TOOLS.md")
            && files.contains_key("tools.rs")
    );
}

#[test]
fn openapi_document_parses_back_and_covers_every_endpoint() {
    let (_, files) = generator::generate(&workspace()).expect("generates");
    let doc: openapiv3::OpenAPI = serde_json::from_str(&files["openapi.json"]).expect("OpenAPI 3");
    let ops: BTreeSet<(String, String)> = doc
        .operations()
        .map(|(path, verb, _)| (verb.to_uppercase(), path.to_string()))
        .collect();
    for (verb, path) in [
        ("GET", "/orders"),
        ("POST", "/orders"),
        ("GET", "/orders/{id}"),
        ("PUT", "/orders/{id}"),
        ("DELETE", "/orders/{id}"),
        ("GET", "/orders/{order_id}/events"),
        ("POST", "/orders/{order_id}/events"),
        ("GET", "/customers"),
        ("POST", "/customers"),
        ("GET", "/customers/{id}"),
        ("PUT", "/customers/{id}"),
        ("DELETE", "/customers/{id}"),
        ("GET", "/customers/{customer_id}/events"),
        ("GET", "/webhooks"),
        ("POST", "/webhooks"),
        ("GET", "/webhooks/{id}"),
        ("PUT", "/webhooks/{id}"),
        ("DELETE", "/webhooks/{id}"),
        ("GET", "/accounts/self"),
        ("GET", "/returns"),
        ("POST", "/returns"),
        ("GET", "/returns/{id}"),
        ("PUT", "/returns/{id}"),
    ] {
        assert!(
            ops.contains(&(verb.to_string(), path.to_string())),
            "{verb} {path}"
        );
    }
}

#[test]
fn stale_output_is_reported_as_a_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    generator::write(&workspace(), dir.path()).expect("write");
    assert_eq!(
        generator::check(&workspace(), dir.path()).expect("check"),
        ""
    );
    let md = dir.path().join("TOOLS.md");
    let text = fs::read_to_string(&md).expect("read");
    fs::write(
        &md,
        text.replace("list_all_malomo_orders", "list_every_order"),
    )
    .expect("write");
    fs::write(dir.path().join("schemas/old_tool.json"), "{}").expect("write");
    let diff = generator::check(&workspace(), dir.path()).expect("check");
    assert!(diff.contains("--- TOOLS.md (checked in)"), "{diff}");
    assert!(diff.contains("-| `list_every_order`"), "{diff}");
    assert!(diff.contains("+| `list_all_malomo_orders`"), "{diff}");
    assert!(
        diff.contains("schemas/old_tool.json: checked in but no longer generated"),
        "{diff}"
    );
}

#[test]
fn emitted_rust_is_the_contract_table() {
    let (catalog, files) = generator::generate(&workspace()).expect("generates");
    let rust = &files["tools.rs"];
    let file = syn::parse_file(rust).expect("parses");
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
        ["INTEGRATION", "INSTRUCTIONS", "TOOLS", "SKIPPED", "PROMPTS"]
    );
    // Then one static per tool, named after it, in the order of `TOOLS`.
    let tools: Vec<String> = catalog
        .tools
        .iter()
        .map(|t| t.name.to_uppercase())
        .collect();
    assert_eq!(statics[5..], tools);
}

#[test]
fn build_script_writes_the_table_and_fails_on_bad_specs() {
    let s = Scratch::new();
    let out = tempfile::tempdir().expect("tempdir");
    generator::build_script(s.root(), out.path()).expect("good specs build");
    let tools = fs::read_to_string(out.path().join("tools.rs")).expect("tools.rs");
    let (_, files) = generator::generate(s.root()).expect("generates");
    assert_eq!(tools, files["tools.rs"]);
    assert!(out.path().join("generated/openapi.json").is_file());

    s.edit(
        "resources/customers.yaml",
        "singular: customer",
        "singular: customer\nsingularity: 1",
    );
    let e = generator::build_script(s.root(), out.path())
        .expect_err("bad spec fails the build")
        .to_string();
    assert!(
        e.starts_with("specs/malomo/resources/customers.yaml:"),
        "{e}"
    );
    assert!(e.contains("unknown field `singularity`"), "{e}");
}

#[test]
fn instructions_come_from_the_specs_with_real_tool_names() {
    let catalog = catalog();
    let paragraphs = catalog.paragraphs(&catalog.instructions, None);
    assert!(paragraphs[0].text.starts_with("Tools for the Malomo API."));
    assert!(paragraphs[0].mentions.is_empty());
    let add = paragraphs
        .iter()
        .find(|p| p.text.contains("add_a_malomo_order_shipment"))
        .expect("a paragraph on adding a shipment");
    assert_eq!(add.mentions, ["add_a_malomo_order_shipment"]);
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
