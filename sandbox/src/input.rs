//! Request bodies: read with a size cap, parsed as JSON, and checked field by
//! field so that every 400 names the field at fault. Handlers validate the
//! whole body before touching the store, so a bad request writes nothing.

use super::error::{ApiError, ApiResult};
use super::model::{Address, CARRIERS, Carrier, carrier};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

/// Bodies above this size are refused with a 400 naming `body`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON object body. Reading it here (instead of axum's `Json`) lets every
/// failure, oversize included, answer Malomo's error shape.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<Self> {
        let body: Body = req.into_body();
        let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::invalid(
                    "body",
                    format!("larger than the {MAX_BODY_BYTES}-byte limit"),
                )
            })?;
        parse_object(&bytes).map(JsonObject)
    }
}

pub fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid(
            "body",
            format!("expected a JSON object, got {}", kind(&other)),
        )),
        Err(e) => Err(ApiError::invalid("body", format!("malformed JSON: {e}"))),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field of a partial update: absent (leave alone), null (clear) or set.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    pub fn set(self) -> Option<T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn wrong(path: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(path, format!("expected {expected}, got {}", kind(got)))
}

pub fn string(obj: &Map<String, Value>, prefix: &str, key: &str) -> ApiResult<Field<String>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::String(s)) => Ok(Field::Set(s.clone())),
        Some(other) => Err(wrong(&join(prefix, key), "a string", other)),
    }
}

pub fn required_string(obj: &Map<String, Value>, prefix: &str, key: &str) -> ApiResult<String> {
    match string(obj, prefix, key)? {
        Field::Set(s) if !s.trim().is_empty() => Ok(s),
        Field::Set(_) => Err(ApiError::invalid(&join(prefix, key), "must not be empty")),
        _ => Err(ApiError::invalid(&join(prefix, key), "is required")),
    }
}

pub fn optional_string(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> ApiResult<Option<String>> {
    Ok(string(obj, prefix, key)?.set())
}

pub fn boolean(obj: &Map<String, Value>, prefix: &str, key: &str) -> ApiResult<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong(&join(prefix, key), "a boolean", other)),
    }
}

pub fn object<'a>(
    obj: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
) -> ApiResult<Field<&'a Map<String, Value>>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::Object(m)) => Ok(Field::Set(m)),
        Some(other) => Err(wrong(&join(prefix, key), "an object", other)),
    }
}

pub fn email(obj: &Map<String, Value>, prefix: &str, key: &str) -> ApiResult<Field<String>> {
    let field = string(obj, prefix, key)?;
    if let Field::Set(s) = &field {
        let ok = s
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
        if !ok {
            return Err(ApiError::invalid(
                &join(prefix, key),
                format!("{s:?} is not an email address"),
            ));
        }
    }
    Ok(field)
}

/// `{carrier, tracking_code, ...}` as sent in an order's or a return's
/// `shipments` array.
#[derive(Debug, Clone)]
pub struct ShipmentInput {
    pub carrier: &'static Carrier,
    pub tracking_code: String,
    pub carrier_service: Option<String>,
    pub container_type: Option<String>,
    pub is_return: bool,
    pub destination: Option<Address>,
}

pub fn address(obj: &Map<String, Value>, prefix: &str) -> ApiResult<Address> {
    Ok(Address {
        city: optional_string(obj, prefix, "city")?,
        state: optional_string(obj, prefix, "state")?,
        postal_code: optional_string(obj, prefix, "postal_code")?,
        country: optional_string(obj, prefix, "country")?,
    })
}

/// Parses a `shipments` array; duplicate (carrier, tracking_code) pairs are
/// refused because the pair is a shipment's identity in replace semantics.
pub fn shipments(value: &Value, path: &str) -> ApiResult<Vec<ShipmentInput>> {
    let Value::Array(items) = value else {
        return Err(wrong(path, "an array", value));
    };
    if items.len() > 100 {
        return Err(ApiError::invalid(path, "at most 100 shipments per request"));
    }
    let mut out: Vec<ShipmentInput> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{path}[{i}]");
        let Value::Object(obj) = item else {
            return Err(wrong(&prefix, "an object", item));
        };
        let code = required_string(obj, &prefix, "carrier")?.to_ascii_lowercase();
        let Some(carrier) = carrier(&code) else {
            let known: Vec<&str> = CARRIERS.iter().map(|c| c.code).collect();
            return Err(ApiError::invalid(
                &join(&prefix, "carrier"),
                format!(
                    "unknown carrier {code:?}; expected one of {}",
                    known.join(", ")
                ),
            ));
        };
        let tracking_code = required_string(obj, &prefix, "tracking_code")?
            .trim()
            .to_string();
        if out
            .iter()
            .any(|s| s.carrier.code == carrier.code && s.tracking_code == tracking_code)
        {
            return Err(ApiError::invalid(
                &join(&prefix, "tracking_code"),
                format!("duplicate shipment ({}, {tracking_code})", carrier.code),
            ));
        }
        let destination = match object(obj, &prefix, "destination")? {
            Field::Set(m) => Some(address(m, &join(&prefix, "destination"))?),
            _ => None,
        };
        out.push(ShipmentInput {
            carrier,
            tracking_code,
            carrier_service: optional_string(obj, &prefix, "carrier_service")?,
            container_type: optional_string(obj, &prefix, "container_type")?,
            is_return: boolean(obj, &prefix, "is_return")?.unwrap_or(false),
            destination,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_carrier_names_the_field() {
        let err = shipments(
            &json!([{"carrier": "pigeon", "tracking_code": "X"}]),
            "shipments",
        )
        .err();
        assert!(err.is_some_and(|e| e.message.starts_with("shipments[0].carrier")));
    }

    #[test]
    fn malformed_json_names_the_body() {
        let err = parse_object(b"{\"a\":").err();
        assert!(err.is_some_and(|e| e.message.starts_with("body: malformed JSON")));
    }
}
