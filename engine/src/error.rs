//! The one error type of the API and its stable codes, answered as `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_model::MetaError;
use crm_store::StoreError;
use serde::Serialize;

/// A problem with one field of a submitted record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// What the request asks was done before (a quote that already became an order).
    #[error("{message}")]
    AlreadyDone { code: &'static str, message: String },
    /// What the request needs is not set up yet (a test mail before a mail server).
    #[error("{message}")]
    NotReady { code: &'static str, message: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("some values are not valid")]
    Invalid(Vec<FieldError>),
    #[error("the metadata is not valid")]
    InvalidMetadata(Vec<MetaError>),
    /// Another server this one works with (the mail server) refused or could not be reached;
    /// the message says what it answered.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// The database cannot serve now (unreachable, disk full): try again later.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The problem document.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden { code: "forbidden", message: message.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound(what.into())
    }

    /// The database cannot serve, for the reason [`StoreError::unavailable`] gives.
    pub fn unavailable(why: &str) -> Self {
        match why {
            "disk_full" => ApiError::Unavailable {
                code: "disk_full",
                message: "the database has no room left; nothing was saved. Try again once space is freed".into(),
            },
            _ => ApiError::Unavailable {
                code: "database_unavailable",
                message: "the database cannot be reached at the moment; nothing was saved. Try again shortly".into(),
            },
        }
    }

    /// One invalid field.
    pub fn field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, code, message)])
    }

    /// Status, stable code and title; the table every client can rely on.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, "Bad request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code, "Forbidden"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "Too many attempts"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "version_conflict", "Conflict"),
            ApiError::AlreadyDone { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            ApiError::NotReady { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Validation failed"),
            ApiError::InvalidMetadata(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_metadata", "Invalid metadata"),
            ApiError::Upstream { code, .. } => (StatusCode::BAD_GATEWAY, code, "Bad gateway"),
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code, "Service unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unique(field) => ApiError::field(field, "not_unique", "another record already has this value"),
            other => match other.unavailable() {
                Some(why) => {
                    tracing::warn!(error = %other, why, "the database cannot serve");
                    ApiError::unavailable(why)
                }
                None => ApiError::Internal(other.into()),
            },
        }
    }
}

impl From<Vec<MetaError>> for ApiError {
    fn from(errors: Vec<MetaError>) -> Self {
        ApiError::InvalidMetadata(errors)
    }
}

impl From<crm_model::QueryError> for ApiError {
    fn from(error: crm_model::QueryError) -> Self {
        ApiError::bad_request("invalid_query", error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let errors = match &self {
            ApiError::Invalid(errors) => Some(serde_json::to_value(errors).unwrap_or_default()),
            ApiError::InvalidMetadata(errors) => Some(serde_json::to_value(errors).unwrap_or_default()),
            _ => None,
        };
        // Internal errors are logged by the middleware that sees the route; the client gets
        // nothing of them.
        let detail = match &self {
            ApiError::Internal(_) => "something went wrong on our side; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let failure = Failure { code, detail: detail.clone() };
        let problem = Problem {
            kind: format!("https://crm.example/problems/{code}"),
            title,
            status: status.as_u16(),
            code,
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response.extensions_mut().insert(failure);
        if let ApiError::Internal(source) = self {
            response.extensions_mut().insert(InternalError(format!("{source:#}")));
        } else if matches!(self, ApiError::Unavailable { .. }) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// What went wrong, carried to the screens, which answer with a page instead of a problem
/// document.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub detail: String,
}

/// The cause of a 500, carried to the logging middleware.
#[derive(Clone)]
pub struct InternalError(pub String);

pub type ApiResult<T> = Result<T, ApiError>;
