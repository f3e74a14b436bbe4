//! Routing a tool's flat arguments to the upstream request's path, query
//! string and JSON body, as the generated table says.

use serde_json::{Map, Value};

use crate::catalog::{HttpMethod, Location, PathPart, ToolDef};

/// An upstream request, before the base URL and credentials are added.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: HttpMethod,
    /// Path with its parameters substituted and percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// JSON body; `None` when the method sends none.
    pub body: Option<Map<String, Value>>,
}

/// A routing failure that names the argument at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("missing required argument `{0}`")]
    MissingPathArgument(String),
    #[error("argument `{0}` must be a string or a number to be used in the URL path")]
    BadPathArgument(String),
    #[error("argument `{field}` {reason}; nothing was sent")]
    BadPathSegment { field: String, reason: SegmentError },
}

/// Why a value cannot stand as one URL path segment.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SegmentError {
    #[error("must not be empty")]
    Empty,
    /// `.` and `..` are dot segments: every URL parser (and many proxies)
    /// removes them with the segment before, so they would move the request
    /// to another endpoint. Percent-encoding does not help: `%2E%2E` is a
    /// dot segment too (WHATWG URL, RFC 3986 section 6.2.2.2).
    #[error("must not be `.` or `..` (it would address another endpoint)")]
    DotSegment,
}

/// Builds the upstream request for `tool` from validated flat arguments.
/// Control arguments (paging, override flags) are left to the caller.
pub fn route(tool: &ToolDef, args: &Map<String, Value>) -> Result<UpstreamRequest, RouteError> {
    let mut path = String::with_capacity(64);
    for part in tool.path {
        match *part {
            PathPart::Literal(text) => path.push_str(text),
            PathPart::Input(name) => {
                let value = args
                    .get(name)
                    .ok_or_else(|| RouteError::MissingPathArgument(name.to_owned()))?;
                let text = scalar_text(value)
                    .ok_or_else(|| RouteError::BadPathArgument(name.to_owned()))?;
                let segment =
                    encode_path_segment(&text).map_err(|reason| RouteError::BadPathSegment {
                        field: name.to_owned(),
                        reason,
                    })?;
                path.push_str(&segment);
            }
        }
    }

    let mut query = Vec::new();
    let mut body: Option<Map<String, Value>> = None;
    for field in tool.fields {
        let Some(value) = args.get(field.name) else {
            continue;
        };
        match field.location {
            Location::Query => {
                if value.is_null() {
                    continue;
                }
                match value {
                    Value::Array(items) => {
                        for item in items {
                            if let Some(text) = scalar_text(item) {
                                query.push((field.wire.to_owned(), text));
                            }
                        }
                    }
                    other => {
                        let text = scalar_text(other).unwrap_or_else(|| other.to_string());
                        query.push((field.wire.to_owned(), text));
                    }
                }
            }
            Location::Body => {
                body.get_or_insert_with(Map::new)
                    .insert(field.wire.to_owned(), value.clone());
            }
            Location::Path | Location::Control => {}
        }
    }
    if body.is_none()
        && matches!(
            tool.http_method,
            HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch
        )
    {
        body = Some(Map::new());
    }
    Ok(UpstreamRequest {
        method: tool.http_method,
        path,
        query,
        body,
    })
}

/// The text of a JSON scalar as it goes into a URL.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value as exactly one URL path segment: every byte outside RFC 3986
/// unreserved characters is percent-encoded (so `/`, `?`, `#`, `%` and
/// non-ASCII can neither add a segment nor a query, and `%2e` arrives as
/// `%252e`), and the values a URL parser would remove or merge (the empty
/// string and the dot segments) are refused.
pub fn encode_path_segment(value: &str) -> Result<String, SegmentError> {
    match value {
        "" => return Err(SegmentError::Empty),
        "." | ".." => return Err(SegmentError::DotSegment),
        _ => {}
    }
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Annotations, Behavior, FieldRoute, MethodClass};
    use serde_json::json;

    const FIELDS: &[FieldRoute] = &[
        FieldRoute {
            name: "id",
            wire: "id",
            location: Location::Path,
            required: true,
        },
        FieldRoute {
            name: "number",
            wire: "number",
            location: Location::Query,
            required: false,
        },
        FieldRoute {
            name: "email",
            wire: "email",
            location: Location::Body,
            required: false,
        },
        FieldRoute {
            name: "event_id",
            wire: "id",
            location: Location::Body,
            required: false,
        },
        FieldRoute {
            name: "limit",
            wire: "limit",
            location: Location::Control,
            required: false,
        },
    ];

    fn tool(method: HttpMethod) -> ToolDef {
        ToolDef {
            name: "t",
            index: 0,
            title: "t",
            description: &[],
            resource: "r",
            method: "m",
            class: MethodClass::Read,
            custom: false,
            tags: &[],
            http_method: method,
            path: &[
                PathPart::Literal("/things/"),
                PathPart::Input("id"),
                PathPart::Literal("/sub"),
            ],
            fields: FIELDS,
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

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn flat_arguments_go_to_path_query_and_body() {
        let args = obj(
            json!({"id": "a b/../c", "number": 1000, "email": "x@y.z", "event_id": "e1", "limit": 5}),
        );
        let req = route(&tool(HttpMethod::Put), &args).expect("routes");
        assert_eq!(req.path, "/things/a%20b%2F..%2Fc/sub");
        assert_eq!(req.query, vec![("number".to_owned(), "1000".to_owned())]);
        assert_eq!(req.body, Some(obj(json!({"email": "x@y.z", "id": "e1"}))));
    }

    #[test]
    fn missing_path_argument_is_named() {
        let err = route(&tool(HttpMethod::Get), &Map::new()).expect_err("fails");
        assert_eq!(err, RouteError::MissingPathArgument("id".into()));
        let err = route(&tool(HttpMethod::Get), &obj(json!({"id": ""}))).expect_err("fails");
        assert_eq!(
            err,
            RouteError::BadPathSegment {
                field: "id".into(),
                reason: SegmentError::Empty
            }
        );
    }

    #[test]
    fn dot_segments_are_refused_naming_the_field() {
        for dots in [".", ".."] {
            let err = route(&tool(HttpMethod::Delete), &obj(json!({ "id": dots })))
                .expect_err("a dot segment is refused");
            assert_eq!(
                err,
                RouteError::BadPathSegment {
                    field: "id".into(),
                    reason: SegmentError::DotSegment
                }
            );
            assert!(err.to_string().contains("`id`"), "{err}");
        }
    }

    #[test]
    fn a_segment_keeps_only_unreserved_bytes() {
        for (value, wire) in [
            ("...", "..."),
            ("%2e%2e", "%252e%252e"),
            ("a/b?c#d", "a%2Fb%3Fc%23d"),
            ("\\..", "%5C.."),
            ("é\0", "%C3%A9%00"),
            ("ord_1-x~y.z", "ord_1-x~y.z"),
        ] {
            assert_eq!(encode_path_segment(value).as_deref(), Ok(wire), "{value:?}");
        }
    }

    #[test]
    fn get_sends_no_body() {
        let req = route(&tool(HttpMethod::Get), &obj(json!({"id": 7}))).expect("routes");
        assert_eq!(req.path, "/things/7/sub");
        assert_eq!(req.body, None);
    }
}
