//! The tool model: every documented method of every resource, validated and
//! resolved into what the runtime table, the schemas, the OpenAPI document
//! and TOOLS.md are printed from.

mod build;
mod describe;
mod endpoint;
mod fields;
mod inputs;
mod method;
mod prompt;
mod strategy;
mod text;

use serde::Serialize;
use serde_json::Value;

use crate::spec::{HttpVerb, MergeOpSpec};

pub use build::build;
pub use fields::{ALL_FIELDS, field_paths, kept_paths};
pub use prompt::{Prompt, PromptArgument, PromptPart, placeholders, prompt_parts};
pub use text::{Paragraph, mentions, paragraphs};

/// Longest tool name MCP clients accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Where a flat input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// Substituted into the path.
    Path,
    /// In the query string.
    Query,
    /// A member of the JSON body.
    Body,
    /// Consumed by the runtime.
    Control,
}

/// What a tool does upstream, derived from every request it can send (its
/// own and those of its strategy), never declared by hand. Server filters
/// (`methods: [read]`) match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Every request it can send is a GET, and the spec does not say it
    /// changes anything.
    Read,
    /// It can change something upstream: some request it can send is not a
    /// GET, or the spec marks it `read_only: false`.
    Write,
}

impl Class {
    /// Lower-case name, as filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
        }
    }
}

/// Filter words that name a class rather than a method, so no method may be
/// called one of them.
pub const CLASS_WORDS: &[&str] = &["read", "write", "custom"];

/// One flat input and its route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Flat (tool) name.
    pub name: String,
    /// Upstream name.
    pub wire: String,
    /// Where it goes.
    pub location: Location,
    /// Whether the caller must give it.
    pub required: bool,
}

/// MCP annotations.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Annotations {
    /// readOnlyHint
    pub read_only: bool,
    /// destructiveHint
    pub destructive: bool,
    /// idempotentHint
    pub idempotent: bool,
    /// openWorldHint
    pub open_world: bool,
}

/// Paging of a list tool.
#[derive(Debug, Clone, Serialize)]
pub struct Pagination {
    /// Upstream page-size parameter.
    pub limit_param: String,
    /// Default page size.
    pub default_limit: u32,
    /// Largest page size.
    pub max_limit: u32,
    /// Upstream cursor parameters carried in `next_cursor`.
    pub cursor_params: Vec<String>,
    /// An object answer becomes one item.
    pub object_as_item: bool,
    /// A 404 becomes an empty list.
    pub not_found_as_empty: bool,
}

/// Field projection and answer budget of a get or list tool.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    /// Every path `fields` accepts (besides `*`), from the output schema.
    pub paths: Vec<String>,
    /// Paths answered when the caller gives no `fields`; empty: all.
    pub default_fields: Vec<String>,
    /// Paths every projected answer keeps (`id`, required members).
    pub kept: Vec<String>,
    /// Largest answer in bytes of compact JSON, unless a server overrides it.
    pub budget: u32,
    /// Item members a list is filtered by in this server (`match`): each is
    /// an input of the same name.
    pub matches: Vec<String>,
}

/// A keyed array (field + key members).
#[derive(Debug, Clone, Serialize)]
pub struct KeyedArray {
    /// The body field holding the array.
    pub field: String,
    /// Members identifying an element.
    pub key: Vec<String>,
}

/// What the runtime does for a call.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behavior {
    /// One routed upstream request.
    Direct,
    /// Read first; refuse to drop keyed elements unless overridden.
    GuardedReplace {
        /// The guarded array.
        array: KeyedArray,
        /// Tool that reads the current object.
        read_tool: String,
        /// Boolean input that allows dropping.
        override_flag: String,
        /// The merge tool that adds one element through this tool, if any
        /// (what a refusal points to).
        add_tool: Option<String>,
    },
    /// Read, edit one element, write back.
    KeyedArrayMerge {
        /// The edited array.
        array: KeyedArray,
        /// `add` or `remove`.
        op: MergeOpSpec,
        /// Tool that reads the current object.
        read_tool: String,
        /// Tool that writes the array back.
        write_tool: String,
        /// Input holding the object id.
        id_arg: String,
    },
    /// Find a webhook that delivers the inputs' topic to this server's
    /// event inbox, else create one; the runtime fills in the inbox URL and
    /// secret.
    InboxSubscription {
        /// Tool that pages through the webhooks.
        list_tool: String,
        /// Tool that creates one.
        create_tool: String,
        /// Create body field that gets the inbox URL.
        url_field: String,
        /// Create body field that gets the inbox secret.
        secret_field: String,
    },
    /// Events the inbox stored, newest first, from the store.
    StoredEvents {
        /// Inputs that narrow the events, and what each filters on.
        filters: Vec<EventFilterRoute>,
        /// The MCP resource serving the first page, if any.
        resource: Option<EventResource>,
    },
}

/// What a stored-events input filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFilter {
    /// The event's topic, exactly.
    Topic,
    /// The order id in its payload, exactly.
    OrderId,
    /// The tracking code in its payload, exactly.
    TrackingCode,
    /// Received at or after this RFC 3339 instant.
    Since,
}

impl EventFilter {
    /// Every filter, with the key that names it in a spec.
    pub const ALL: [(&'static str, EventFilter); 4] = [
        ("topic", EventFilter::Topic),
        ("order_id", EventFilter::OrderId),
        ("tracking_code", EventFilter::TrackingCode),
        ("since", EventFilter::Since),
    ];
}

/// One stored-events input and what it filters on.
#[derive(Debug, Clone, Serialize)]
pub struct EventFilterRoute {
    /// The flat input name.
    pub input: String,
    /// What it filters on.
    pub on: EventFilter,
}

/// An MCP resource over the stored events.
#[derive(Debug, Clone, Serialize)]
pub struct EventResource {
    /// Its URI.
    pub uri: String,
    /// Short human title.
    pub title: String,
    /// What a client finds there.
    pub description: String,
}

/// One generated tool.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// Human title.
    pub title: String,
    /// Description for the model.
    pub description: String,
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// Read or write, by effect.
    pub class: Class,
    /// Declared `kind: custom`: the tool also matches the filter word
    /// `custom` (besides its class and its method name).
    pub custom: bool,
    /// Every HTTP verb the tool can send upstream, in a fixed order (its
    /// class is read exactly when this is only GET).
    pub sends: Vec<HttpVerb>,
    /// Tags.
    pub tags: Vec<String>,
    /// Upstream verb (GET for a tool that sends nothing: see `sends`).
    pub http: HttpVerb,
    /// Upstream path template (empty for a tool that sends nothing).
    pub path: String,
    /// The path split into literal text and inputs (what the runtime joins).
    pub path_parts: Vec<PathPart>,
    /// Flat inputs in schema order.
    pub fields: Vec<Route>,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// JSON Schema of the structured output.
    pub output_schema: Value,
    /// MCP annotations.
    pub annotations: Annotations,
    /// Paging, for list tools.
    pub pagination: Option<Pagination>,
    /// What the runtime does.
    pub behavior: Behavior,
    /// `fields` and the answer budget, for get and list tools.
    pub projection: Option<Projection>,
}

/// One upstream operation as the specs describe it (documented or not).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// The tool it became, if documented.
    pub tool: Option<String>,
    /// Short summary (the tool title, when documented).
    pub summary: Option<String>,
    /// Documentation text, when documented.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Upstream verb.
    pub http: HttpVerb,
    /// Upstream path template.
    pub path: String,
    /// Path and query parameters: (wire name, location, required, OpenAPI schema).
    pub parameters: Vec<(String, Location, bool, Value)>,
    /// OpenAPI schema of the JSON body, if any.
    pub body: Option<Value>,
    /// OpenAPI schema of the 2xx answer.
    pub response: Value,
    /// Whether the method is a runtime strategy rather than an endpoint.
    pub composite: bool,
}

/// A method with no documentation record.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Spec resource.
    pub resource: String,
    /// Spec method.
    pub method: String,
    /// Why it is no tool.
    pub reason: String,
}

/// The integration as the runtime sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    /// Short name.
    pub name: String,
    /// Human name.
    pub title: String,
    /// Default base URL.
    pub base_url: String,
    /// Headers on every request.
    pub headers: Vec<(String, String)>,
    /// Authorization scheme.
    pub auth_scheme: String,
}

/// Everything generated output is printed from.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The integration.
    pub integration: Integration,
    /// Tools sorted by name.
    pub tools: Vec<Tool>,
    /// Undocumented methods, sorted by resource and method.
    pub skipped: Vec<Skipped>,
    /// Every method as an upstream operation, in spec order.
    pub endpoints: Vec<Endpoint>,
    /// MCP prompts, sorted by name.
    pub prompts: Vec<Prompt>,
    /// The server `instructions` (all paragraphs; a server drops those that
    /// name a tool it hides).
    pub instructions: String,
}

impl Catalog {
    /// `text` as paragraphs tagged with the tools of this catalog they name
    /// (other than `own`).
    pub fn paragraphs(&self, text: &str, own: Option<&str>) -> Vec<Paragraph> {
        paragraphs(text, self.tools.iter().map(|t| t.name.as_str()), own)
    }
}

pub(crate) fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Body => "body",
        Location::Control => "control",
    }
}

/// One piece of a tool's upstream path: literal text, or a placeholder bound
/// to the flat input its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PathPart {
    /// Text sent as it is.
    Literal(String),
    /// The flat input (its name after `as:` renames) sent as one segment.
    Input(String),
}

/// Splits the path template `path` at its `{wire}` placeholders, binding
/// each to the flat input that `fields` route to that path parameter.
pub fn path_parts(path: &str, fields: &[Route]) -> Vec<PathPart> {
    let mut parts = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        if open > 0 {
            parts.push(PathPart::Literal(rest[..open].to_owned()));
        }
        let wire = &after[..close];
        let input = fields
            .iter()
            .find(|f| f.location == Location::Path && f.wire == wire)
            .map_or(wire, |f| f.name.as_str());
        parts.push(PathPart::Input(input.to_owned()));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(PathPart::Literal(rest.to_owned()));
    }
    parts
}

/// The `{name}` placeholders of a path template, in order.
pub fn path_placeholders(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}
