//! The contract between the generator's output and the runtime: the types
//! the generated tool table is made of.
//!
//! The generator (run by malomo-mcp's `build.rs`) emits Rust that builds
//! `INTEGRATION`, `INSTRUCTIONS`, `TOOLS`, `SKIPPED` and `PROMPTS` out of
//! these types, naming each by its full path (`::malomo_contract::ToolDef`),
//! so the table compiles wherever it is included and only against this
//! crate. Everything endpoint-specific lives in that table; the runtime
//! reads it and never names an upstream endpoint itself.
//!
//! Each tool is its own `static`; `TOOLS` lists references to them sorted by
//! name, and tools that use other tools (a strategy's read and write, the
//! tools a paragraph or a prompt names) hold `&'static ToolDef` references,
//! so a dangling reference cannot compile. Paths and prompt texts come split
//! into literal text and placeholders, so the runtime interprets them and
//! never parses them.

use std::fmt;

/// Where a flat tool argument goes in the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Location {
    /// Substituted into the path template (`{name}`), percent-encoded.
    Path,
    /// Appended to the query string.
    Query,
    /// A top-level member of the JSON request body.
    Body,
    /// Consumed by the runtime itself (e.g. `limit`, `next_cursor`, an
    /// override flag); never sent upstream.
    Control,
}

impl Location {
    /// Lower-case name, as messages and documents spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Body => "body",
            Location::Control => "control",
        }
    }
}

/// What a tool does upstream, matched by server filters (`methods: [read]`).
/// The generator derives it from every request the tool can send, its
/// strategy's included; nobody sets it by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum MethodClass {
    /// Only reads upstream.
    Read,
    /// Can change something upstream, whatever its verb or strategy.
    Write,
}

impl MethodClass {
    /// Lower-case name, as filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::Read => "read",
            MethodClass::Write => "write",
        }
    }
}

/// HTTP verbs the upstream is called with (spelled upper case in specs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "UPPERCASE")
)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// One flat tool argument and where it is routed (in the generator's model,
/// over owned text: `FieldRoute<String>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FieldRoute<Text = &'static str> {
    /// The name in the tool's flat input namespace.
    pub name: Text,
    /// The name on the wire (differs when the spec renamed a colliding field).
    pub wire: Text,
    pub location: Location,
    pub required: bool,
}

/// MCP tool annotations (hints for clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// How a list endpoint pages, and how its answer is normalized to
/// `{items, next_cursor}`.
///
/// Like [`Projection`], [`KeyedArray`], [`FieldRoute`] and [`PathPart`],
/// generic over how text is held: the table's is the default (`&'static`
/// text), and the generator's model is the same type over owned text
/// (`Pagination<String, Vec<String>>`), so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Pagination<Text = &'static str, List = &'static [&'static str]> {
    /// Upstream query parameter that carries the page size.
    pub limit_param: Text,
    /// Default and maximum page size accepted by the tool.
    pub default_limit: u32,
    pub max_limit: u32,
    /// Upstream query parameters taken from the `rel="next"` link and carried
    /// inside the opaque `next_cursor` (e.g. `next`).
    pub cursor_params: List,
    /// When the upstream answers a single JSON object (a lookup), it becomes
    /// one item and `next_cursor` is null.
    pub object_as_item: bool,
    /// When the upstream answers 404, the list is empty instead of an error.
    pub not_found_as_empty: bool,
}

/// Field projection and the answer budget of a get or list tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Projection<List = &'static [&'static str]> {
    /// Every path the `fields` input accepts besides `*`: member names, and
    /// `parent.child` one level down.
    pub paths: List,
    /// Paths answered when the caller gives no `fields`; empty means all.
    pub default_fields: List,
    /// Paths every projected answer keeps (`id`, members the output schema
    /// requires), so that answers stay schema-valid and follow-ups work.
    pub kept: List,
    /// Largest answer, in bytes of compact JSON, unless the provisioned
    /// server sets its own.
    pub budget: u32,
    /// Item members this server filters list pages by (the spec's `match`):
    /// an input of the same name keeps only the items whose member equals it.
    pub matches: List,
}

/// A keyed array inside a resource, e.g. an order's shipments keyed by
/// `(carrier, tracking_code)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyedArray<Text = &'static str, List = &'static [&'static str]> {
    /// The body field holding the array.
    pub field: Text,
    /// Member fields that together identify an element.
    pub key: List,
}

/// What the runtime does when the tool is called. The tools a strategy
/// calls are references to their statics: the generator resolved them, so
/// the runtime never looks a tool up by name.
#[derive(Clone, Copy)]
pub enum Behavior {
    /// One upstream request routed from the flat arguments.
    Direct,
    /// A full-replacement update that would delete every element of a keyed
    /// array missing from the request: the runtime reads the resource first
    /// (with `read_tool`) and refuses when elements would be dropped, unless
    /// the boolean argument `override_flag` is true.
    GuardedReplace {
        array: KeyedArray,
        read_tool: &'static ToolDef,
        override_flag: &'static str,
        /// The merge tool that adds one element through this tool, if any:
        /// the safe way a refusal points to (where the server shows it).
        add_tool: Option<&'static ToolDef>,
    },
    /// Read the resource, add or remove one element of a keyed array, and
    /// write the full array back with `write_tool`, checking that nobody
    /// changed it in between.
    KeyedArrayMerge {
        array: KeyedArray,
        op: MergeOp,
        read_tool: &'static ToolDef,
        write_tool: &'static ToolDef,
        /// The argument holding the resource id passed to read and write.
        id_arg: &'static str,
    },
    /// Make sure a webhook delivers the arguments' topic to this server's
    /// event inbox: page through the webhooks with `list_tool`, and only
    /// when none has the inbox URL in `url_field` and the arguments' values,
    /// create one with `create_tool`, the inbox URL in `url_field` and its
    /// signing secret in `secret_field`. The model never sees either.
    InboxSubscription {
        list_tool: &'static ToolDef,
        create_tool: &'static ToolDef,
        url_field: &'static str,
        secret_field: &'static str,
    },
    /// The events this server's inbox stored for the account, newest first,
    /// read from the store: nothing is sent upstream.
    StoredEvents {
        /// Inputs that narrow the events, and what each filters on.
        filters: &'static [(&'static str, EventFilter)],
        /// An MCP resource that serves the first page and announces new
        /// events to subscribed clients.
        resource: Option<EventResource>,
    },
}

/// What a stored-events input filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// The event's topic, exactly.
    Topic,
    /// The order id the event is about, exactly.
    OrderId,
    /// The tracking code the event is about, exactly.
    TrackingCode,
    /// Received at or after this RFC 3339 instant.
    Since,
}

/// An MCP resource over the stored events (e.g. `malomo://events`).
#[derive(Debug, Clone, Copy)]
pub struct EventResource {
    pub uri: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

// By hand: tools refer to each other (a description names a tool whose
// description names it back), so a derived `Debug` would recurse forever.
// Referenced tools are shown by name.
impl fmt::Debug for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behavior::Direct => f.write_str("Direct"),
            Behavior::GuardedReplace {
                array,
                read_tool,
                override_flag,
                add_tool,
            } => f
                .debug_struct("GuardedReplace")
                .field("array", array)
                .field("read_tool", &read_tool.name)
                .field("override_flag", override_flag)
                .field("add_tool", &add_tool.map(|t| t.name))
                .finish(),
            Behavior::KeyedArrayMerge {
                array,
                op,
                read_tool,
                write_tool,
                id_arg,
            } => f
                .debug_struct("KeyedArrayMerge")
                .field("array", array)
                .field("op", op)
                .field("read_tool", &read_tool.name)
                .field("write_tool", &write_tool.name)
                .field("id_arg", id_arg)
                .finish(),
            Behavior::InboxSubscription {
                list_tool,
                create_tool,
                url_field,
                secret_field,
            } => f
                .debug_struct("InboxSubscription")
                .field("list_tool", &list_tool.name)
                .field("create_tool", &create_tool.name)
                .field("url_field", url_field)
                .field("secret_field", secret_field)
                .finish(),
            Behavior::StoredEvents { filters, resource } => f
                .debug_struct("StoredEvents")
                .field("filters", filters)
                .field("resource", resource)
                .finish(),
        }
    }
}

/// Tool references shown by name (see `Debug for Behavior`).
struct Names(&'static [&'static ToolDef]);

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|t| t.name))
            .finish()
    }
}

/// The edit a `KeyedArrayMerge` tool makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum MergeOp {
    Add,
    Remove,
}

/// One paragraph of text a model reads, with the tools it names.
#[derive(Clone, Copy)]
pub struct Paragraph {
    pub text: &'static str,
    /// Tools named in `text` (other than the tool it describes): the
    /// paragraph is shown only where all of them are shown.
    pub mentions: &'static [&'static ToolDef],
}

impl fmt::Debug for Paragraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paragraph")
            .field("text", &self.text)
            .field("mentions", &Names(self.mentions))
            .finish()
    }
}

/// The paragraphs of `text` that name only tools `shown` accepts, joined by
/// blank lines: what a server whose filter shows exactly those tools may
/// send a model.
pub fn render_text(text: &[Paragraph], shown: impl Fn(&ToolDef) -> bool) -> String {
    text.iter()
        .filter(|p| p.mentions.iter().all(|m| shown(m)))
        .map(|p| p.text)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The whole of `text`, as an unfiltered server sends it.
pub fn full_text(text: &[Paragraph]) -> String {
    render_text(text, |_| true)
}

/// One piece of a tool's upstream path, split at generation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum PathPart<Text = &'static str> {
    /// Text sent as it is (`/orders/`).
    Literal(Text),
    /// The value of the flat input named here (its name after renames),
    /// sent as exactly one percent-encoded path segment.
    Input(Text),
}

/// One generated MCP tool, a `static` of the generated table.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    pub name: &'static str,
    /// Position in `TOOLS` (sorted by name), where the runtime keeps what it
    /// derives from the tool once (parsed schemas, the compiled validator).
    pub index: usize,
    pub title: &'static str,
    /// The description as paragraphs; see [`render_text`].
    pub description: &'static [Paragraph],
    /// Spec resource (e.g. `orders`) and method (e.g. `list`, `add_shipment`).
    pub resource: &'static str,
    pub method: &'static str,
    pub class: MethodClass,
    /// A custom method (not list/get/create/update/delete): it also matches
    /// the filter word `custom`.
    pub custom: bool,
    pub tags: &'static [&'static str],
    /// The upstream request of a direct call (GET and an empty path for a
    /// tool that sends nothing upstream: `Behavior::StoredEvents`).
    pub http_method: HttpMethod,
    /// The path relative to the base URL (`/orders/{id}` is
    /// `[Literal("/orders/"), Input("id")]`); see [`ToolDef::path_template`].
    pub path: &'static [PathPart],
    pub fields: &'static [FieldRoute],
    /// JSON Schema (draft 2020-12) of the flat input object, as JSON text.
    pub input_schema: &'static str,
    /// JSON Schema of `structuredContent`, as JSON text.
    pub output_schema: &'static str,
    pub annotations: Annotations,
    pub pagination: Option<Pagination>,
    pub behavior: Behavior,
    /// `fields` and the answer budget, for get and list tools.
    pub projection: Option<Projection>,
}

impl ToolDef {
    /// The path as a template with `{input}` placeholders (`/orders/{id}`),
    /// for people: logs, consoles, docs.
    pub fn path_template(&self) -> String {
        self.path
            .iter()
            .map(|part| match part {
                PathPart::Literal(text) => (*text).to_owned(),
                PathPart::Input(name) => format!("{{{name}}}"),
            })
            .collect()
    }
}

/// How the upstream API is reached.
#[derive(Debug, Clone, Copy)]
pub struct Integration {
    /// Short name used in tool names and account names (`malomo`).
    pub name: &'static str,
    pub title: &'static str,
    pub default_base_url: &'static str,
    /// Extra headers sent on every request (e.g. the version `accept`); the
    /// generator lower-cases the names and checks names and values, so the
    /// HTTP client takes them as they are.
    pub headers: &'static [(&'static str, &'static str)],
    /// `Authorization` scheme (`Bearer`).
    pub auth_scheme: &'static str,
}

/// A method present in a resource record but with no documentation record,
/// and therefore not a tool.
#[derive(Debug, Clone, Copy)]
pub struct SkippedMethod {
    pub resource: &'static str,
    pub method: &'static str,
    pub reason: &'static str,
}

/// An MCP prompt: a named workflow over the tools.
#[derive(Clone, Copy)]
pub struct PromptDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub arguments: &'static [PromptArgumentDef],
    /// Tools the workflow uses; a server without all of them does not offer
    /// the prompt.
    pub tools: &'static [&'static ToolDef],
    /// The user message, split at its `{{ argument }}` placeholders.
    pub text: &'static [PromptPart],
}

impl fmt::Debug for PromptDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptDef")
            .field("name", &self.name)
            .field("title", &self.title)
            .field("description", &self.description)
            .field("arguments", &self.arguments)
            .field("tools", &Names(self.tools))
            .field("text", &self.text)
            .finish()
    }
}

impl PromptDef {
    /// The user message with each placeholder replaced by `value(argument)`.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.text
            .iter()
            .map(|part| match part {
                PromptPart::Literal(text) => (*text).to_owned(),
                PromptPart::Argument(name) => value(name),
            })
            .collect()
    }
}

/// One piece of a prompt's message, split at generation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum PromptPart<Text = &'static str> {
    /// Text sent as it is.
    Literal(Text),
    /// The value of the prompt argument named here.
    Argument(Text),
}

/// One argument of a prompt (in the generator's model, over owned text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PromptArgumentDef<Text = &'static str> {
    pub name: Text,
    pub description: Text,
    pub required: bool,
}

/// The tool named `name` among `tools`, a generated `TOOLS` (sorted by name,
/// so this is a binary search): how a tool a client names is found.
pub fn find_tool(tools: &[&'static ToolDef], name: &str) -> Option<&'static ToolDef> {
    let index = tools.binary_search_by(|t| t.name.cmp(name)).ok()?;
    tools.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn tool(name: &'static str, index: usize, behavior: Behavior) -> ToolDef {
        ToolDef {
            name,
            index,
            title: name,
            description: &[],
            resource: "orders",
            method: "get",
            class: MethodClass::Read,
            custom: false,
            tags: &[],
            http_method: HttpMethod::Get,
            path: &[
                PathPart::Literal("/orders/"),
                PathPart::Input("order_id"),
                PathPart::Literal("/events"),
            ],
            fields: &[],
            input_schema: "{}",
            output_schema: "{}",
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: true,
            },
            pagination: None,
            behavior,
            projection: None,
        }
    }

    static READ: ToolDef = tool("a_read", 0, Behavior::Direct);
    static WRITE: ToolDef = tool(
        "b_write",
        1,
        Behavior::KeyedArrayMerge {
            array: KeyedArray {
                field: "shipments",
                key: &["carrier"],
            },
            op: MergeOp::Add,
            read_tool: &READ,
            write_tool: &WRITE,
            id_arg: "id",
        },
    );
    static TOOLS: &[&ToolDef] = &[&READ, &WRITE];

    #[test]
    fn a_path_template_shows_inputs_as_placeholders() {
        assert_eq!(READ.path_template(), "/orders/{order_id}/events");
    }

    #[test]
    fn tools_are_found_by_name_and_only_by_it() {
        assert_eq!(find_tool(TOOLS, "b_write").map(|t| t.index), Some(1));
        assert_eq!(find_tool(TOOLS, "a_read").map(|t| t.index), Some(0));
        assert!(find_tool(TOOLS, "c").is_none());
        assert!(find_tool(TOOLS, "").is_none());
    }

    #[test]
    fn debug_names_referenced_tools_instead_of_following_them() {
        // WRITE refers to itself: a derived Debug would never end.
        let text = format!("{WRITE:?}");
        assert!(text.contains("write_tool: \"b_write\""), "{text}");
        assert!(text.contains("read_tool: \"a_read\""), "{text}");
    }

    #[test]
    fn a_prompt_fills_each_placeholder() {
        static PROMPT: PromptDef = PromptDef {
            name: "p",
            title: "p",
            description: "p",
            arguments: &[],
            tools: &[&READ],
            text: &[
                PromptPart::Literal("to "),
                PromptPart::Argument("url"),
                PromptPart::Literal(" and "),
                PromptPart::Argument("url"),
                PromptPart::Literal("."),
            ],
        };
        assert_eq!(PROMPT.render(|n| format!("<{n}>")), "to <url> and <url>.");
        assert!(format!("{PROMPT:?}").contains("[\"a_read\"]"));
    }

    #[test]
    fn text_keeps_the_paragraphs_naming_shown_tools() {
        static TEXT: [Paragraph; 2] = [
            Paragraph {
                text: "one",
                mentions: &[],
            },
            Paragraph {
                text: "two",
                mentions: &[&WRITE],
            },
        ];
        assert_eq!(full_text(&TEXT), "one\n\ntwo");
        assert_eq!(render_text(&TEXT, |t| t.name != "b_write"), "one");
    }
}
