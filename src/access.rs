//! Which tools a provisioned MCP server may see and call.
//!
//! A server's config `{methods, tags}` is a [`ToolFilter`]. `tools/list`
//! shows only the tools it allows and `tools/call` checks it again, so a
//! filtered tool called by name is answered like an unknown one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, ToolDef};

/// Method classes and the standard method names a filter may name.
pub const METHOD_KEYWORDS: &[&str] = &[
    "read", "write", "custom", "list", "get", "create", "update", "delete",
];

/// The filter words that name a class, not a method: `read` (a tool that
/// only reads upstream), `write` (one that can change anything upstream),
/// `custom` (a custom method, which is also read or write). The generator
/// refuses methods named like them.
pub const CLASS_WORDS: &[&str] = &["read", "write", "custom"];

/// The `{methods, tags}` config of a server. Empty lists do not restrict;
/// the two lists are AND-ed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolFilter {
    /// Method classes (`read`, `write`, `custom`) or method names (`list`,
    /// `get`, …, or a custom method such as `add_shipment`).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Spec tags; a tool passes when it has any of them.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown method {value:?}; valid methods: read (tools that only read upstream), write (tools that can change anything upstream), custom (the custom methods, which are also read or write), or a method name: {}", valid.iter().filter(|m| !CLASS_WORDS.contains(&m.as_str())).cloned().collect::<Vec<_>>().join(", "))]
    UnknownMethod { value: String, valid: Vec<String> },
    #[error("unknown tag {value:?}; valid tags: {}", if valid.is_empty() { "(none)".to_string() } else { valid.join(", ") })]
    UnknownTag { value: String, valid: Vec<String> },
    #[error("this config leaves no tool: no tool matches methods {methods:?} and tags {tags:?}")]
    NoTools {
        methods: Vec<String>,
        tags: Vec<String>,
    },
}

impl FilterError {
    /// The config field the error is about (`config.methods`, `config.tags`
    /// or `config`).
    pub fn field(&self) -> &'static str {
        match self {
            FilterError::UnknownMethod { .. } => "config.methods",
            FilterError::UnknownTag { .. } => "config.tags",
            FilterError::NoTools { .. } => "config",
        }
    }
}

impl ToolFilter {
    /// An unrestricted filter.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `tool` passes: some `methods` value is its class (`read` or
    /// `write`), its method name, or `custom` for a custom method; and some
    /// `tags` value is one of its tags (empty lists always pass).
    pub fn allows(&self, tool: &ToolDef) -> bool {
        let method_ok = self.methods.is_empty()
            || self.methods.iter().any(|m| {
                m == tool.class.as_str() || m == tool.method || (tool.custom && m == "custom")
            });
        let tags_ok =
            self.tags.is_empty() || self.tags.iter().any(|t| tool.tags.contains(&t.as_str()));
        method_ok && tags_ok
    }

    /// Validates against the generated table ([`catalog::TOOLS`]).
    pub fn validate(&self) -> Result<(), FilterError> {
        self.validate_against(catalog::TOOLS)
    }

    /// Every value must be known to `tools`, and at least one tool must pass.
    pub fn validate_against(&self, tools: &[&ToolDef]) -> Result<(), FilterError> {
        let methods = valid_methods(tools);
        if let Some(bad) = self.methods.iter().find(|m| !methods.contains(&m.as_str())) {
            return Err(FilterError::UnknownMethod {
                value: bad.clone(),
                valid: methods.into_iter().map(str::to_string).collect(),
            });
        }
        let tags = valid_tags(tools);
        if let Some(bad) = self.tags.iter().find(|t| !tags.contains(&t.as_str())) {
            return Err(FilterError::UnknownTag {
                value: bad.clone(),
                valid: tags.into_iter().map(str::to_string).collect(),
            });
        }
        if !tools.iter().any(|t| self.allows(t)) {
            return Err(FilterError::NoTools {
                methods: self.methods.clone(),
                tags: self.tags.clone(),
            });
        }
        Ok(())
    }

    /// The tools of `tools` this filter allows, in table order.
    pub fn allowed<'a>(
        &'a self,
        tools: &'a [&'static ToolDef],
    ) -> impl Iterator<Item = &'static ToolDef> + 'a {
        tools.iter().copied().filter(move |t| self.allows(t))
    }

    /// Sorted, deduplicated copy, so that stored configs read the same way
    /// whatever order they were given in.
    pub fn normalized(&self) -> Self {
        let dedup = |v: &[String]| -> Vec<String> {
            v.iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        ToolFilter {
            methods: dedup(&self.methods),
            tags: dedup(&self.tags),
        }
    }
}

/// Method keywords plus every method name of the table, sorted: keywords
/// first in their fixed order, then the table's other names alphabetically.
pub fn valid_methods<'a>(tools: &[&'a ToolDef]) -> Vec<&'a str> {
    let mut out: Vec<&str> = METHOD_KEYWORDS.to_vec();
    let extra: BTreeSet<&str> = tools
        .iter()
        .map(|t| t.method)
        .filter(|m| !METHOD_KEYWORDS.contains(m))
        .collect();
    out.extend(extra);
    out
}

/// The union of the table's tags, sorted.
pub fn valid_tags<'a>(tools: &[&'a ToolDef]) -> Vec<&'a str> {
    tools
        .iter()
        .flat_map(|t| t.tags.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{Annotations, Behavior, HttpMethod, MethodClass, PathPart};

    pub(crate) const fn tool(
        name: &'static str,
        method: &'static str,
        class: MethodClass,
        tags: &'static [&'static str],
    ) -> ToolDef {
        ToolDef {
            name,
            index: 0,
            title: name,
            description: &[],
            resource: "orders",
            method,
            class,
            custom: false,
            tags,
            http_method: HttpMethod::Get,
            path: &[PathPart::Literal("/x")],
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
            behavior: Behavior::Direct,
            projection: None,
        }
    }

    const TABLE: &[&ToolDef] = &[
        &tool("list_orders", "list", MethodClass::Read, &["orders"]),
        &tool("create_order", "create", MethodClass::Write, &["orders"]),
        &tool("list_customers", "list", MethodClass::Read, &["customers"]),
        &ToolDef {
            custom: true,
            ..tool(
                "add_shipment",
                "add_shipment",
                MethodClass::Write,
                &["orders", "shipments"],
            )
        },
    ];

    fn filter(methods: &[&str], tags: &[&str]) -> ToolFilter {
        ToolFilter {
            methods: methods.iter().map(|s| s.to_string()).collect(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn names(f: &ToolFilter) -> Vec<&'static str> {
        TABLE
            .iter()
            .filter(|t| f.allows(t))
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn empty_filter_allows_everything() {
        assert_eq!(names(&ToolFilter::all()).len(), TABLE.len());
    }

    #[test]
    fn read_only_filter_excludes_write_tools() {
        assert_eq!(
            names(&filter(&["read"], &[])),
            ["list_orders", "list_customers"]
        );
    }

    #[test]
    fn methods_match_class_or_method_name() {
        assert_eq!(
            names(&filter(&["create", "add_shipment"], &[])),
            ["create_order", "add_shipment"]
        );
    }

    #[test]
    fn classes_follow_effect_and_custom_is_an_extra_match() {
        // read + write is every tool, custom methods included.
        assert_eq!(names(&filter(&["read", "write"], &[])).len(), TABLE.len());
        // A custom method that writes is no read tool.
        assert!(!names(&filter(&["read"], &[])).contains(&"add_shipment"));
        assert_eq!(names(&filter(&["custom"], &[])), ["add_shipment"]);
        assert_eq!(
            names(&filter(&["write"], &[])),
            ["create_order", "add_shipment"]
        );
    }

    #[test]
    fn tags_and_methods_are_and_ed() {
        assert_eq!(names(&filter(&["read"], &["orders"])), ["list_orders"]);
        assert_eq!(
            names(&filter(&[], &["shipments", "customers"])),
            ["list_customers", "add_shipment"]
        );
    }

    #[test]
    fn unknown_values_list_the_valid_ones() {
        let err = filter(&["reed"], &[]).validate_against(TABLE).unwrap_err();
        assert_eq!(err.field(), "config.methods");
        assert!(
            err.to_string().contains("read (tools that only read upstream), write (tools that can change anything upstream), custom"),
            "{err}"
        );
        assert!(err.to_string().contains("add_shipment"), "{err}");
        let err = filter(&[], &["order"]).validate_against(TABLE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown tag \"order\"; valid tags: customers, orders, shipments"
        );
    }

    #[test]
    fn a_filter_leaving_no_tool_is_refused() {
        let err = filter(&["delete"], &[])
            .validate_against(TABLE)
            .unwrap_err();
        assert!(matches!(err, FilterError::NoTools { .. }));
        assert!(
            filter(&["write"], &["orders"])
                .validate_against(TABLE)
                .is_ok()
        );
    }
}
