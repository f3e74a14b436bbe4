//! The serde records of the spec format (see `specs/README.md`).
//!
//! Every record rejects unknown fields, so a typo is an error that names the
//! file, line and field instead of a silently ignored key.

use indexmap::IndexMap;
use serde::Deserialize;

/// `specs/<integration>/integration.yaml`: how the upstream API is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    /// Short name used in tool names (`malomo`).
    pub name: String,
    /// Human name (`Malomo`).
    pub title: String,
    /// Default base URL of the upstream API.
    pub base_url: String,
    /// How requests authenticate.
    pub auth: AuthSpec,
    /// Headers sent on every request, in order.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// How list endpoints page.
    pub pagination: PaginationSpec,
    /// What the server tells a model about this API at `initialize`: a
    /// template with `title` and `tools.<resource>.<method>` (tool names).
    /// Paragraphs (blank-line separated) that name a tool a server hides are
    /// left out for that server.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Largest answer, in bytes of compact JSON, a get or list tool returns
    /// unless its method sets its own (a provisioned server may override it).
    #[serde(default = "default_answer_budget")]
    pub answer_budget: u32,
}

fn default_answer_budget() -> u32 {
    16_384
}

/// The authentication scheme of the upstream API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// The `Authorization` scheme, e.g. `Bearer`.
    pub scheme: String,
    /// Free text on where keys come from (documentation only).
    #[serde(default)]
    pub description: Option<String>,
}

/// The integration-wide pagination style of list endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaginationSpec {
    /// The paging mechanism; only `link_header_cursor` exists so far.
    pub style: PaginationStyle,
    /// Upstream query parameter carrying the page size.
    pub limit_param: String,
    /// Upstream query parameters carried inside the opaque cursor.
    pub cursor_params: Vec<String>,
    /// Page size when the caller gives none.
    pub default_limit: u32,
    /// Largest page size a caller may ask for.
    pub max_limit: u32,
}

/// Known pagination mechanisms.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PaginationStyle {
    /// Cursors in the query of a `Link: <...>; rel="next"` header URL.
    LinkHeaderCursor,
}

/// `specs/<integration>/resources/<resource>.yaml`: how to call a resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Singular noun used in tool names (`order`).
    pub singular: String,
    /// Plural noun used in tool names (`orders`).
    pub plural: String,
    /// Tags every tool of the resource carries.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Named schemas, referenced as `ref: name` or `ref: resource.name`.
    #[serde(default)]
    pub schemas: IndexMap<String, SchemaSpec>,
    /// The representation the resource's methods answer with.
    #[serde(default)]
    pub object: Option<SchemaSpec>,
    /// The methods, keyed by method name (`list`, `get`, ... or custom).
    pub methods: IndexMap<String, MethodSpec>,
}

/// One method of a resource: one upstream endpoint, or a strategy over them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// What the method does; defaults to the method name when that is one
    /// of `list`, `get`, `create`, `update`, `delete`.
    #[serde(default)]
    pub kind: Option<MethodKind>,
    /// HTTP verb of the upstream call; absent only for a method the runtime
    /// serves itself (`strategy: stored_events`).
    #[serde(default)]
    pub http: Option<HttpMethod>,
    /// Path template relative to the base URL, with `{param}` placeholders;
    /// absent exactly when `http` is.
    #[serde(default)]
    pub path: Option<String>,
    /// Which name pattern of `templates/tool_name.j2` names the tool.
    #[serde(default)]
    pub name: Option<NameSpec>,
    /// Fields substituted into the path.
    #[serde(default)]
    pub path_params: IndexMap<String, FieldSpec>,
    /// Fields sent in the query string.
    #[serde(default)]
    pub query: IndexMap<String, FieldSpec>,
    /// Top-level members of the JSON body.
    #[serde(default)]
    pub body: IndexMap<String, FieldSpec>,
    /// Paging behaviour; list methods page by default.
    #[serde(default)]
    pub pagination: Option<MethodPaginationSpec>,
    /// The answer's schema when it is not the resource object.
    #[serde(default)]
    pub output: Option<SchemaSpec>,
    /// Overrides of the annotations derived from the HTTP verb.
    #[serde(default)]
    pub annotations: AnnotationsSpec,
    /// Tags in addition to the resource's.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A runtime strategy instead of one direct upstream call.
    #[serde(default)]
    pub strategy: Option<StrategySpec>,
    /// Get and list methods: the field paths answered when the caller gives
    /// no `fields` (empty: every field).
    #[serde(default)]
    pub default_fields: Vec<String>,
    /// Get and list methods: this tool's answer budget in bytes, instead of
    /// the integration's `answer_budget`.
    #[serde(default)]
    pub answer_budget: Option<u32>,
    /// List methods: top-level scalar members of the item that this server
    /// filters each page by (the upstream has no such filter). Each becomes
    /// an optional input of that name: only items whose member equals it
    /// come back.
    #[serde(default, rename = "match")]
    pub match_fields: Vec<String>,
}

/// What a method does; decides its class and default name pattern.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// A paginated list (read).
    List,
    /// One object (read).
    Get,
    /// Creates an object (write).
    Create,
    /// Changes an object (write).
    Update,
    /// Deletes an object (write).
    Delete,
    /// Anything else (custom).
    Custom,
}

impl MethodKind {
    /// The kind a standard method name implies, if any.
    pub fn from_method_name(name: &str) -> Option<MethodKind> {
        match name {
            "list" => Some(MethodKind::List),
            "get" => Some(MethodKind::Get),
            "create" => Some(MethodKind::Create),
            "update" => Some(MethodKind::Update),
            "delete" => Some(MethodKind::Delete),
            _ => None,
        }
    }

    /// The snake_case name, as used in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::List => "list",
            MethodKind::Get => "get",
            MethodKind::Create => "create",
            MethodKind::Update => "update",
            MethodKind::Delete => "delete",
            MethodKind::Custom => "custom",
        }
    }
}

/// HTTP verbs, spelled upper case (`GET`): the contract's type.
pub use malomo_contract::HttpMethod;

/// Chooses the tool-name pattern and fills its words.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSpec {
    /// Pattern name in `templates/tool_name.j2` (default: the method kind).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Verb word for action patterns (`add`).
    #[serde(default)]
    pub verb: Option<String>,
    /// Object word for action patterns (`shipment`).
    #[serde(default)]
    pub object: Option<String>,
}

/// One field of a method (its wire name is the map key): a schema whose
/// `required` and `as` say how the tool takes it.
pub type FieldSpec = SchemaSpec;

/// A JSON Schema subset, written in YAML.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// A named schema to use (`name` of this resource or `resource.name`).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// JSON type.
    #[serde(default, rename = "type")]
    pub json_type: Option<JsonType>,
    /// Whether `null` is accepted too.
    #[serde(default)]
    pub nullable: bool,
    /// JSON Schema `format` (e.g. `uuid`, `email`, `uri`, `date-time`).
    #[serde(default)]
    pub format: Option<String>,
    /// Allowed string values.
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    /// Item schema of an array.
    #[serde(default)]
    pub items: Option<Box<SchemaSpec>>,
    /// Member schemas of an object.
    #[serde(default)]
    pub properties: Option<IndexMap<String, SchemaSpec>>,
    /// Whether the caller must give this field (or object member).
    #[serde(default)]
    pub required: bool,
    /// Name in the tool's flat input namespace when it must differ from the
    /// wire name, to avoid a collision (fields only).
    #[serde(default, rename = "as")]
    pub flat_name: Option<String>,
    /// Whether members beyond `properties` are accepted.
    #[serde(default)]
    pub additional_properties: Option<bool>,
    /// Inclusive lower bound of a number.
    #[serde(default)]
    pub minimum: Option<i64>,
    /// Inclusive upper bound of a number.
    #[serde(default)]
    pub maximum: Option<i64>,
    /// Default value.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Accepted on input, never returned.
    #[serde(default)]
    pub write_only: bool,
    /// Returned, never accepted on input.
    #[serde(default)]
    pub read_only: bool,
    /// Text for people and models.
    #[serde(default)]
    pub description: Option<String>,
}

/// JSON types.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    /// string
    String,
    /// integer
    Integer,
    /// number
    Number,
    /// boolean
    Boolean,
    /// object
    Object,
    /// array
    Array,
}

impl JsonType {
    /// The JSON Schema type name.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
        }
    }
}

/// Per-method paging options on top of the integration's style.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodPaginationSpec {
    /// `false` turns paging off for a list method.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An object answer (a lookup) becomes one item.
    #[serde(default)]
    pub object_as_item: bool,
    /// A 404 answer becomes an empty list.
    #[serde(default)]
    pub not_found_as_empty: bool,
}

fn yes() -> bool {
    true
}

/// Annotation overrides; unset ones are derived from the HTTP verb.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationsSpec {
    /// readOnlyHint
    #[serde(default)]
    pub read_only: Option<bool>,
    /// destructiveHint
    #[serde(default)]
    pub destructive: Option<bool>,
    /// idempotentHint
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// openWorldHint
    #[serde(default)]
    pub open_world: Option<bool>,
}

/// A runtime strategy that replaces one direct upstream call. The YAML key
/// under `strategy:` names which one, so a method has at most one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategySpec {
    /// A full-replacement update guarded against dropping keyed elements.
    GuardedReplace(GuardedReplaceSpec),
    /// Add or remove one element of a keyed array by read-modify-write.
    KeyedArrayMerge(KeyedArrayMergeSpec),
    /// Point a webhook at this server's event inbox, unless one already
    /// does: list the webhooks, create one only when none matches.
    InboxSubscription(InboxSubscriptionSpec),
    /// Page through the events this server's inbox stored, newest first:
    /// served from the store, nothing is sent upstream.
    StoredEvents(StoredEventsSpec),
}

/// Options of the inbox-subscription strategy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSubscriptionSpec {
    /// List method of the same resource that pages through the webhooks.
    pub list_method: String,
    /// Create method of the same resource that creates one.
    pub create_method: String,
    /// Body field of the create method that the runtime fills with the
    /// inbox URL (never an input, never answered).
    pub url_field: String,
    /// Body field of the create method that the runtime fills with the
    /// inbox signing secret (never an input, never answered).
    pub secret_field: String,
}

/// Options of the stored-events strategy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredEventsSpec {
    /// Inputs that narrow the events, keyed by what they filter on
    /// (`topic`, `order_id`, `tracking_code`, `since`).
    #[serde(default)]
    pub filters: IndexMap<String, FieldSpec>,
    /// An MCP resource that serves the first page and that clients can
    /// subscribe to for a notification on each new event.
    #[serde(default)]
    pub resource: Option<EventResourceSpec>,
}

/// An MCP resource over the stored events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventResourceSpec {
    /// The resource URI (`malomo://events`).
    pub uri: String,
    /// Short human title.
    pub title: String,
    /// What a client finds there.
    pub description: String,
}

/// An array of objects whose elements are identified by some members.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyedArraySpec {
    /// The body field holding the array.
    pub field: String,
    /// Member names that together identify an element.
    pub key: Vec<String>,
}

/// Options of the guarded-replace strategy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardedReplaceSpec {
    /// The keyed array that a full replacement would truncate.
    pub array: KeyedArraySpec,
    /// Method of the same resource that reads the current object.
    pub read_method: String,
    /// Boolean input that allows dropping elements.
    pub override_flag: String,
}

/// Options of the keyed-array-merge strategy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyedArrayMergeSpec {
    /// The keyed array to edit.
    pub array: KeyedArraySpec,
    /// Whether the element is added or removed.
    pub op: MergeOp,
    /// Method of the same resource that reads the current object.
    pub read_method: String,
    /// Method of the same resource that writes the whole array back.
    pub write_method: String,
    /// Input field holding the object's id.
    pub id_field: String,
}

/// The edit a merge makes (`add`, `remove`): the contract's type.
pub use malomo_contract::MergeOp;

/// `specs/<integration>/docs/<resource>.yaml`: documentation records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsSpec {
    /// One record per documented method; a method without one is no tool.
    pub methods: IndexMap<String, MethodDocSpec>,
}

/// What a tool is for, in words for a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodDocSpec {
    /// Short human title.
    #[serde(default)]
    pub title: Option<String>,
    /// What the tool does and when to use it.
    pub description: String,
    /// Per-field text, keyed by flat field name.
    #[serde(default)]
    pub fields: IndexMap<String, FieldDocSpec>,
    /// Things the model must know before calling.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Example argument objects.
    #[serde(default)]
    pub examples: Vec<serde_json::Value>,
}

/// Documentation of one input field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDocSpec {
    /// What the field means.
    pub description: String,
    /// Example values.
    #[serde(default)]
    pub examples: Vec<serde_json::Value>,
}

/// `specs/<integration>/prompts.yaml`: MCP prompts, ready-made starting
/// points for common workflows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsSpec {
    /// Prompts by name (the name clients call `prompts/get` with).
    pub prompts: IndexMap<String, PromptSpec>,
}

/// One MCP prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// Short human title.
    pub title: String,
    /// What the workflow does.
    pub description: String,
    /// Arguments the client fills in, by name.
    #[serde(default)]
    pub arguments: IndexMap<String, PromptArgumentSpec>,
    /// Tools the workflow uses: a server that lacks any of them does not
    /// offer the prompt.
    pub tools: Vec<String>,
    /// The user message; `{{ argument }}` placeholders are replaced by the
    /// arguments' values.
    pub text: String,
}

/// One argument of a prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptArgumentSpec {
    /// What to fill in.
    pub description: String,
    /// Whether `prompts/get` must carry it.
    #[serde(default)]
    pub required: bool,
}
