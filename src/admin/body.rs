//! Reading request bodies field by field, so that every refusal names the
//! field and what was expected (serde's messages give a line and column).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The members of a JSON object, consumed one by one; [`Fields::finish`]
/// refuses whatever is left, so a misspelt field is not silently ignored.
pub struct Fields {
    prefix: String,
    members: Map<String, Value>,
}

/// Parses the body as one JSON object.
pub fn object(body: Result<Bytes, BytesRejection>) -> Result<Fields, ApiError> {
    let bytes = body.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_body"
        };
        ApiError::new(status, code, r.body_text())
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(members) => Ok(Fields {
            prefix: String::new(),
            members,
        }),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body must be a JSON object, not {}", kind(&other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Fields {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> ApiError {
        ApiError::field(
            self.path(name),
            format!("expected {expected}, got {}", kind(got)),
        )
    }

    /// A member that is absent or null is `None`.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.members.remove(name).filter(|v| !v.is_null())
    }

    pub fn required_string(&mut self, name: &str) -> Result<String, ApiError> {
        self.optional_string(name)?
            .ok_or_else(|| ApiError::field(self.path(name), "is required (a string)"))
    }

    pub fn optional_string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    pub fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "a boolean", &other)),
        }
    }

    /// A whole number of at least zero.
    pub fn optional_u64(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                ApiError::field(
                    self.path(name),
                    format!("expected a whole number of bytes, got {n}"),
                )
            }),
            Some(other) => Err(self.wrong_type(name, "a whole number", &other)),
        }
    }

    /// An array of strings; absent is empty.
    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(ApiError::field(
                        format!("{}[{i}]", self.path(name)),
                        format!("expected a string, got {}", kind(&other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(name, "an array of strings", &other)),
        }
    }

    /// A nested object; absent is an empty one.
    pub fn object(&mut self, name: &str) -> Result<Fields, ApiError> {
        let prefix = format!("{}.", self.path(name));
        match self.take(name) {
            None => Ok(Fields {
                prefix,
                members: Map::new(),
            }),
            Some(Value::Object(members)) => Ok(Fields { prefix, members }),
            Some(other) => Err(self.wrong_type(name, "an object", &other)),
        }
    }

    /// Refuses members nobody asked for.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.members.keys().next() {
            None => Ok(()),
            Some(extra) => {
                let shown: String = extra.chars().take(64).collect();
                Err(ApiError::field(self.path(&shown), "is not a known field"))
            }
        }
    }
}
