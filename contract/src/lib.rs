//! The contract between the generator's output and the runtime: the types
//! the generated tool table is made of.
//!
//! The generator (run by malomo-mcp's `build.rs`) emits Rust that builds
//! `INTEGRATION`, `INSTRUCTIONS`, `TOOLS`, `SKIPPED` and `PROMPTS` out of
//! these types, naming each by its full path (`::malomo_contract::ToolDef`),
//! so the table compiles wherever it is included and only against this
//! crate. Everything endpoint-specific lives in that table; the runtime
//! reads it and never names an upstream endpoint itself.

/// Where a flat tool argument goes in the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What a tool does upstream, matched by server filters (`methods: [read]`).
/// The generator derives it from every request the tool can send, its
/// strategy's included; nobody sets it by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodClass {
    /// Only reads upstream.
    Read,
    /// Can change something upstream, whatever its verb or strategy.
    Write,
}

impl MethodClass {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::Read => "read",
            MethodClass::Write => "write",
        }
    }
}

/// HTTP verbs the upstream is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One flat tool argument and where it is routed.
#[derive(Debug, Clone, Copy)]
pub struct FieldRoute {
    /// The name in the tool's flat input namespace.
    pub name: &'static str,
    /// The name on the wire (differs when the spec renamed a colliding field).
    pub wire: &'static str,
    pub location: Location,
    pub required: bool,
}

/// MCP tool annotations (hints for clients).
#[derive(Debug, Clone, Copy)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// How a list endpoint pages, and how its answer is normalized to
/// `{items, next_cursor}`.
#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    /// Upstream query parameter that carries the page size.
    pub limit_param: &'static str,
    /// Default and maximum page size accepted by the tool.
    pub default_limit: u32,
    pub max_limit: u32,
    /// Upstream query parameters taken from the `rel="next"` link and carried
    /// inside the opaque `next_cursor` (e.g. `next`).
    pub cursor_params: &'static [&'static str],
    /// When the upstream answers a single JSON object (a lookup), it becomes
    /// one item and `next_cursor` is null.
    pub object_as_item: bool,
    /// When the upstream answers 404, the list is empty instead of an error.
    pub not_found_as_empty: bool,
}

/// Field projection and the answer budget of a get or list tool.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    /// Every path the `fields` input accepts besides `*`: member names, and
    /// `parent.child` one level down.
    pub paths: &'static [&'static str],
    /// Paths answered when the caller gives no `fields`; empty means all.
    pub default_fields: &'static [&'static str],
    /// Paths every projected answer keeps (`id`, members the output schema
    /// requires), so that answers stay schema-valid and follow-ups work.
    pub kept: &'static [&'static str],
    /// Largest answer, in bytes of compact JSON, unless the provisioned
    /// server sets its own.
    pub budget: u32,
}

/// A keyed array inside a resource, e.g. an order's shipments keyed by
/// `(carrier, tracking_code)`.
#[derive(Debug, Clone, Copy)]
pub struct KeyedArray {
    /// The body field holding the array.
    pub field: &'static str,
    /// Member fields that together identify an element.
    pub key: &'static [&'static str],
}

/// What the runtime does when the tool is called.
#[derive(Debug, Clone, Copy)]
pub enum Behavior {
    /// One upstream request routed from the flat arguments.
    Direct,
    /// A full-replacement update that would delete every element of a keyed
    /// array missing from the request: the runtime reads the resource first
    /// (with the tool named by `read_tool`) and refuses when elements would
    /// be dropped, unless the boolean argument `override_flag` is true.
    GuardedReplace {
        array: KeyedArray,
        read_tool: &'static str,
        override_flag: &'static str,
    },
    /// Read the resource, add or remove one element of a keyed array, and
    /// write the full array back with `write_tool`, checking that nobody
    /// changed it in between.
    KeyedArrayMerge {
        array: KeyedArray,
        op: MergeOp,
        read_tool: &'static str,
        write_tool: &'static str,
        /// The argument holding the resource id passed to read and write.
        id_arg: &'static str,
    },
}

/// The edit a `KeyedArrayMerge` tool makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOp {
    Add,
    Remove,
}

/// One paragraph of text a model reads, with the tools it names.
#[derive(Debug, Clone, Copy)]
pub struct Paragraph {
    pub text: &'static str,
    /// Tools named in `text` (other than the tool it describes): the
    /// paragraph is shown only where all of them are shown.
    pub mentions: &'static [&'static str],
}

/// The paragraphs of `text` that name only tools `shown` accepts, joined by
/// blank lines: what a server whose filter shows exactly those tools may
/// send a model.
pub fn render_text(text: &[Paragraph], shown: impl Fn(&str) -> bool) -> String {
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

/// One generated MCP tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    pub name: &'static str,
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
    pub http_method: HttpMethod,
    /// Path template relative to the base URL, e.g. `/orders/{id}`.
    pub path: &'static str,
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
#[derive(Debug, Clone, Copy)]
pub struct PromptDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub arguments: &'static [PromptArgumentDef],
    /// Tools the workflow uses; a server without all of them does not offer
    /// the prompt.
    pub tools: &'static [&'static str],
    /// The user message, with `{{ argument }}` placeholders.
    pub text: &'static str,
}

/// One argument of a prompt.
#[derive(Debug, Clone, Copy)]
pub struct PromptArgumentDef {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
}
