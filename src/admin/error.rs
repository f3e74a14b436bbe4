//! The admin API's one error shape: `{"error": {"code", "message", "field"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::FilterError;
use crate::store::StoreError;

/// An error answer of the admin API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, dotted (`config.methods`), if any.
    pub field: Option<String>,
    /// Accepted values, when the error is an unknown one.
    pub valid: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            valid: None,
        }
    }

    /// 400 about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin API token is required in `Authorization: Bearer <token>`",
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        // The detail goes to the log, never to the client.
        tracing::error!(error = %e, "admin API internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, message } => ApiError::field(field, message),
            StoreError::Filter(f) => {
                let field = f.field().to_string();
                let message = f.to_string();
                match f {
                    FilterError::UnknownMethod { valid, .. }
                    | FilterError::UnknownTag { valid, .. } => ApiError {
                        field: Some(field),
                        valid: Some(valid),
                        ..ApiError::new(StatusCode::BAD_REQUEST, "unknown_filter_value", message)
                    },
                    FilterError::NoTools { .. } => ApiError {
                        field: Some(field),
                        ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_tools", message)
                    },
                }
            }
            StoreError::AccountNotFound(_) => ApiError::not_found("integrated account"),
            StoreError::ServerNotFound(_) => ApiError::not_found("MCP server"),
            StoreError::NoSecondFactor(_) => {
                ApiError::new(StatusCode::CONFLICT, "no_second_factor", e.to_string())
            }
            StoreError::Conflict(what) => ApiError {
                field: Some("name".to_string()),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("{what} already exists"),
                )
            },
            StoreError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "field": self.field,
        });
        if let Some(valid) = self.valid {
            error["valid"] = json!(valid);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"malomo-mcp admin\""),
            );
        }
        response
    }
}
