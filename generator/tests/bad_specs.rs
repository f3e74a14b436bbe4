//! Every kind of bad spec is an error that names the file, line, column and
//! field, and says what was expected.

mod common;

use common::{Scratch, line_of};

#[test]
fn malformed_yaml_names_file_and_line() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "plural: customers",
        "plural: [customers",
    );
    let e = s.error();
    assert!(
        e.starts_with("specs/malomo/resources/customers.yaml:"),
        "{e}"
    );
    let line = line_of(&s.spec("resources/customers.yaml"), "plural: [customers");
    // The parser notices at or after the unclosed bracket.
    let reported: usize = e
        .split(':')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("line number");
    assert!(reported >= line, "{e}");
}

#[test]
fn unknown_field_is_rejected_with_its_path() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "  get:\n    http: GET",
        "  get:\n    colour: red\n    http: GET",
    );
    let e = s.error();
    let line = line_of(&s.spec("resources/customers.yaml"), "colour: red");
    assert!(
        e.starts_with(&format!("specs/malomo/resources/customers.yaml:{line}:5:")),
        "{e}"
    );
    assert!(e.contains("field `methods.get.colour`"), "{e}");
    assert!(e.contains("unknown field `colour`, expected one of"), "{e}");
}

#[test]
fn unknown_field_in_docs_is_rejected() {
    let s = Scratch::new();
    s.edit(
        "docs/customers.yaml",
        "    title: List customers",
        "    titel: List customers",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/docs/customers.yaml:"), "{e}");
    assert!(e.contains("unknown field `titel`"), "{e}");
}

#[test]
fn flat_namespace_collision_is_an_error_unless_renamed() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "    body:\n      email: {type: string, format: email}\n",
        "    body:\n      id: {type: string}\n      email: {type: string, format: email}\n",
    );
    let e = s.error();
    let file = s.spec("resources/customers.yaml");
    // The colliding body field is the first `id: {type: string}` after the path one.
    let text = std::fs::read_to_string(&file).expect("read");
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "id: {type: string}")
        .map(|(i, _)| i + 1)
        .find(|&i| i > line_of(&file, "  update:"))
        .and_then(|first_path| {
            text.lines()
                .enumerate()
                .skip(first_path)
                .find(|(_, l)| l.trim() == "id: {type: string}")
                .map(|(i, _)| i + 1)
        })
        .expect("body id line");
    assert!(
        e.starts_with(&format!("specs/malomo/resources/customers.yaml:{line}:7:")),
        "{e}"
    );
    assert!(e.contains("field `methods.update.body.id`"), "{e}");
    assert!(e.contains("already a path field"), "{e}");
    assert!(e.contains("as: <another name>"), "{e}");

    s.edit(
        "resources/customers.yaml",
        "      id: {type: string}\n      email: {type: string, format: email}\n",
        "      id: {type: string, as: body_id}\n      email: {type: string, format: email}\n",
    );
    let (catalog, _) = generator::generate(s.root()).expect("renamed field is fine");
    let tool = catalog
        .tools
        .iter()
        .find(|t| t.name == "update_a_malomo_customer_by_id")
        .expect("tool");
    let renamed = tool
        .fields
        .iter()
        .find(|f| f.name == "body_id")
        .expect("renamed route");
    assert_eq!(renamed.wire, "id");
}

#[test]
fn spec_field_named_like_a_control_input_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "  list:\n    http: GET\n    path: /customers\n",
        "  list:\n    http: GET\n    path: /customers\n    query:\n      limit: {type: integer}\n",
    );
    let e = s.error();
    assert!(e.contains("`limit` is an input the runtime adds"), "{e}");
}

#[test]
fn documentation_for_a_missing_method_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "docs/accounts.yaml",
        "methods:\n",
        "methods:\n  delete:\n    description: Deletes the account.\n",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/docs/accounts.yaml:2:3:"), "{e}");
    assert!(e.contains("field `methods.delete`"), "{e}");
    assert!(e.contains("does not define; expected one of: get"), "{e}");
}

#[test]
fn documentation_for_a_missing_resource_is_an_error() {
    let s = Scratch::new();
    s.write(
        "docs/invoices.yaml",
        "methods:\n  list:\n    description: Lists.\n",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/docs/invoices.yaml:1:1:"), "{e}");
    assert!(e.contains("no resource record"), "{e}");
}

#[test]
fn documentation_for_a_missing_field_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "docs/customers.yaml",
        "      id:\n        description: The Malomo customer id.\n",
        "      ident:\n        description: The Malomo customer id.\n",
    );
    let e = s.error();
    assert!(e.contains("field `methods.get.fields.ident`"), "{e}");
    assert!(e.contains("expected one of: id"), "{e}");
}

#[test]
fn tool_name_over_64_characters_is_an_error() {
    let long = "orders_by_a_very_long_and_descriptive_alternate_identifier";
    let s = Scratch::new();
    s.edit(
        "resources/orders_by_alternate_id.yaml",
        "singular: orders_by_alternate_id",
        &format!("singular: {long}"),
    );
    let e = s.error();
    let line = line_of(&s.spec("resources/orders_by_alternate_id.yaml"), "  get:");
    assert!(
        e.starts_with(&format!(
            "specs/malomo/resources/orders_by_alternate_id.yaml:{line}:3:"
        )),
        "{e}"
    );
    assert!(e.contains("expected at most 64"), "{e}");
}

#[test]
fn tool_name_outside_the_allowed_characters_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "singular: customer",
        "singular: customer-record",
    );
    let e = s.error();
    assert!(e.contains("^[A-Za-z0-9_]+$"), "{e}");
    assert!(
        e.contains("create_a_malomo_customer-record") || e.contains("customer-record"),
        "{e}"
    );
}

#[test]
fn two_tools_with_one_name_is_an_error() {
    let s = Scratch::new();
    let resource = std::fs::read_to_string(s.spec("resources/customers.yaml")).expect("read");
    let docs = std::fs::read_to_string(s.spec("docs/customers.yaml")).expect("read");
    s.write("resources/customers_copy.yaml", &resource);
    s.write("docs/customers_copy.yaml", &docs);
    let e = s.error();
    assert!(
        e.starts_with("specs/malomo/resources/customers_copy.yaml:"),
        "{e}"
    );
    assert!(
        e.contains("is also the name of specs/malomo/resources/customers.yaml methods."),
        "{e}"
    );
    assert!(e.contains("unique"), "{e}");
}

#[test]
fn path_parameter_missing_from_the_path_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/webhooks.yaml",
        "    path: /webhooks/{id}\n    path_params:\n      id: {type: string}\n  create:",
        "    path: /webhooks/{id}\n    path_params:\n      id: {type: string}\n      version: {type: string}\n  create:",
    );
    let e = s.error();
    let line = line_of(
        &s.spec("resources/webhooks.yaml"),
        "version: {type: string}",
    );
    assert!(
        e.starts_with(&format!("specs/malomo/resources/webhooks.yaml:{line}:7:")),
        "{e}"
    );
    assert!(e.contains("field `methods.get.path_params.version`"), "{e}");
    assert!(
        e.contains("does not appear in path `/webhooks/{id}`"),
        "{e}"
    );
}

#[test]
fn path_placeholder_without_a_field_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/webhooks.yaml",
        "    path: /webhooks\n",
        "    path: /webhooks/{account}\n",
    );
    let e = s.error();
    assert!(e.contains("placeholder `{account}` with no field"), "{e}");
}

#[test]
fn method_without_a_kind_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/oauth.yaml",
        "  uninstall:\n    kind: custom\n",
        "  uninstall:\n",
    );
    let e = s.error();
    assert!(e.contains("field `methods.uninstall`"), "{e}");
    assert!(e.contains("expected a `kind:`"), "{e}");
}

#[test]
fn unknown_schema_reference_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/customer_events.yaml",
        "ref: order_events.event",
        "ref: order_events.evnt",
    );
    let e = s.error();
    assert!(
        e.contains("`ref: order_events.evnt` names no schema"),
        "{e}"
    );
}

#[test]
fn strategy_on_an_undocumented_method_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "docs/orders.yaml",
        "  get:\n    title: Get an order\n",
        "  got:\n    title: Get an order\n",
    );
    let e = s.error();
    // Either the misspelt record or the strategy's missing read tool is reported.
    assert!(
        e.contains("`got`") || e.contains("no documentation record"),
        "{e}"
    );
}

#[test]
fn prompt_naming_an_unknown_tool_is_rejected() {
    let s = Scratch::new();
    s.edit(
        "prompts.yaml",
        "      - list_all_malomo_order_events",
        "      - list_all_malomo_order_eventz",
    );
    let e = s.error();
    let line = line_of(&s.spec("prompts.yaml"), "list_all_malomo_order_eventz");
    assert!(
        e.starts_with(&format!("specs/malomo/prompts.yaml:{line}:")),
        "{e}"
    );
    assert!(e.contains("prompts.trace_lost_package.tools.1"), "{e}");
    assert!(e.contains("is not a documented tool"), "{e}");
}

#[test]
fn prompt_placeholder_without_argument_is_rejected() {
    let s = Scratch::new();
    s.edit(
        "prompts.yaml",
        "Make sure shipment exceptions are delivered to {{ url }}.",
        "Make sure shipment exceptions are delivered to {{ endpoint }}.",
    );
    let e = s.error();
    assert!(
        e.contains("prompts.ensure_exception_webhook_at_url.text"),
        "{e}"
    );
    assert!(
        e.contains("`{{ endpoint }}` names no argument; expected one of: url"),
        "{e}"
    );
}

#[test]
fn unknown_field_in_prompts_is_rejected() {
    let s = Scratch::new();
    s.edit(
        "prompts.yaml",
        "        required: true\n    tools:\n      - list_all_malomo_webhooks",
        "        required: true\n        default: x\n    tools:\n      - list_all_malomo_webhooks",
    );
    let e = s.error();
    assert!(e.contains("unknown field `default`"), "{e}");
}

#[test]
fn read_only_override_on_a_writing_method_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "  create:\n    http: POST\n",
        "  create:\n    http: POST\n    annotations: {read_only: true}\n",
    );
    let e = s.error();
    assert!(
        e.starts_with("specs/malomo/resources/customers.yaml:"),
        "{e}"
    );
    assert!(
        e.contains("field `methods.create.annotations.read_only`"),
        "{e}"
    );
    assert!(e.contains("sends POST upstream"), "{e}");
}

#[test]
fn a_merge_that_writes_cannot_be_declared_read_only() {
    let s = Scratch::new();
    s.edit(
        "resources/orders.yaml",
        "    annotations: {destructive: false, idempotent: true}\n",
        "    annotations: {read_only: true, destructive: false, idempotent: true}\n",
    );
    let e = s.error();
    assert!(
        e.contains("field `methods.add_shipment.annotations.read_only`"),
        "{e}"
    );
    assert!(e.contains("sends PUT upstream through its strategy"), "{e}");
}

#[test]
fn a_get_with_side_effects_is_class_write() {
    let s = Scratch::new();
    s.edit(
        "resources/customers.yaml",
        "  list:\n    http: GET\n",
        "  list:\n    http: GET\n    annotations: {read_only: false}\n",
    );
    let (catalog, _) = generator::generate(s.root()).expect("generates");
    let tool = catalog
        .tools
        .iter()
        .find(|t| t.name == "list_all_malomo_customers")
        .expect("tool");
    assert_eq!(tool.class, generator::model::Class::Write);
    assert!(!tool.annotations.read_only);
}

#[test]
fn a_method_named_like_a_filter_class_is_an_error() {
    let s = Scratch::new();
    s.edit("resources/orders.yaml", "  add_shipment:\n", "  read:\n");
    s.edit("docs/orders.yaml", "  add_shipment:\n", "  read:\n");
    let e = s.error();
    assert!(e.contains("field `methods.read`"), "{e}");
    assert!(e.contains("is a filter class word"), "{e}");
}

#[test]
fn instructions_naming_an_unknown_method_are_an_error() {
    let s = Scratch::new();
    s.edit(
        "integration.yaml",
        "{{ tools.orders.add_shipment }}",
        "{{ tools.orders.add_shipments }}",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/integration.yaml:"), "{e}");
    assert!(e.contains("field `instructions`"), "{e}");
    assert!(e.contains("tools.<resource>.<method>"), "{e}");
}

#[test]
fn a_prompt_naming_a_tool_it_does_not_list_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "prompts.yaml",
        "say so and stop.",
        "say so and stop, or ask `list_all_malomo_customers`.",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/prompts.yaml:"), "{e}");
    assert!(e.contains("names `list_all_malomo_customers`"), "{e}");
}

#[test]
fn a_field_description_naming_another_tool_is_an_error() {
    let s = Scratch::new();
    s.edit(
        "docs/orders.yaml",
        "description: The customer; null removes it from the order.",
        "description: The customer; see get_single_malomo_customer_by_id.",
    );
    let e = s.error();
    assert!(e.starts_with("specs/malomo/docs/orders.yaml:"), "{e}");
    assert!(e.contains("field `methods.update`"), "{e}");
    assert!(
        e.contains("names the tool `get_single_malomo_customer_by_id`"),
        "{e}"
    );
}
