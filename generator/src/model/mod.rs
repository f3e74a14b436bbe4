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

use crate::spec::{HttpMethod, MergeOp};

pub use build::build;
pub use fields::{ALL_FIELDS, field_paths, kept_paths};
pub use prompt::{Prompt, PromptArgument, PromptPart, placeholders, prompt_parts};
pub use text::{Paragraph, mentions, paragraphs};

/// Longest tool name MCP clients accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Where a flat input goes, and what a tool does upstream (read or write,
/// derived from every request it can send, never declared by hand): the
/// contract's types, which the emitted table names as they are.
pub use malomo_contract::{Annotations, Location, MethodClass};

/// Filter words that name a class rather than a method, so no method may be
/// called one of them.
pub const CLASS_WORDS: &[&str] = &["read", "write", "custom"];

/// One flat input and its route: the contract's type over owned text.
pub type Route = malomo_contract::FieldRoute<String>;

/// Paging of a list tool: the contract's type over owned text.
pub type Pagination = malomo_contract::Pagination<String, Vec<String>>;

/// Field projection and answer budget of a get or list tool.
pub type Projection = malomo_contract::Projection<Vec<String>>;

/// A keyed array (field + key members).
pub type KeyedArray = malomo_contract::KeyedArray<String, Vec<String>>;

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
        op: MergeOp,
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
    pub class: MethodClass,
    /// Declared `kind: custom`: the tool also matches the filter word
    /// `custom` (besides its class and its method name).
    pub custom: bool,
    /// Every HTTP verb the tool can send upstream, in a fixed order (its
    /// class is read exactly when this is only GET).
    pub sends: Vec<HttpMethod>,
    /// Tags.
    pub tags: Vec<String>,
    /// Upstream verb (GET for a tool that sends nothing: see `sends`).
    pub http: HttpMethod,
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
    pub http: HttpMethod,
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

/// One piece of a tool's upstream path: literal text, or the flat input
/// (its name after `as:` renames) a placeholder takes its value from.
pub type PathPart = malomo_contract::PathPart<String>;

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
