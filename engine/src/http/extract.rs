//! The extractors every handler, of the API and of the screens, takes its input through:
//! JSON bodies, query strings and path parameters whose rejections are problem documents.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// JSON bodies whose rejections are problem documents (400, or 413 for oversized bodies, or
/// 422 for texts with NUL characters).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::bad_request(
                "invalid_body",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("malformed_json", e.body_text())
            }
        })?;
        // A body is read without keeping track of where each value sits, which costs a large
        // import a third of its reading; only a body that fails is read again, to say where.
        let value = serde_json::from_slice(&body).map_err(|plain| {
            let message =
                match serde_path_to_error::deserialize::<_, T>(&mut serde_json::Deserializer::from_slice(&body)) {
                    Err(located) => located.to_string(),
                    Ok(_) => plain.to_string(),
                };
            ApiError::bad_request("malformed_json", message)
        })?;
        let nul = nul_texts(&body);
        if nul.is_empty() { Ok(ApiJson(value)) } else { Err(ApiError::Invalid(nul)) }
    }
}

/// The texts of a JSON body that contain a NUL character, by their paths. PostgreSQL keeps
/// no NUL in text or JSON and no person means one, so both databases refuse them alike, here.
fn nul_texts(body: &[u8]) -> Vec<FieldError> {
    // Only a body that spells a NUL (`\u0000`) is read again to find where.
    let spells_nul = body.iter().enumerate().any(|(i, b)| *b == b'\\' && body[i + 1..].starts_with(b"u0000"));
    let mut found = Vec::new();
    if spells_nul && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        find_nul(&value, "", &mut found);
    }
    found
}

fn find_nul(value: &serde_json::Value, path: &str, found: &mut Vec<FieldError>) {
    let at = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}/{key}") };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            found.push(FieldError::new(path, "invalid_text", "contains a NUL character"));
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, &at(&i.to_string()), found);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    found.push(FieldError::new(at(key), "invalid_text", "a key contains a NUL character"));
                }
                find_nul(item, &at(key), found);
            }
        }
        _ => {}
    }
}

/// Whether a request says its body is JSON (`application/json`, or a `+json` type).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence.starts_with("application/") && essence.ends_with("+json")
}

/// Query strings whose rejections are problem documents.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    #[expect(clippy::disallowed_types, reason = "the one place that reads a query string")]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // PostgreSQL keeps no NUL in text: a query with one is refused before any reaches it.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::bad_request("invalid_query", "a query parameter contains a NUL character"));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// Path parameters whose rejections are problem documents. A value that does not parse as
/// what the route takes (an id that is not a UUID, text that is not UTF-8) names nothing
/// there: 404, as for a well-formed id that matches no record.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    #[expect(clippy::disallowed_types, reason = "the one place that reads path parameters")]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL character names nothing, and PostgreSQL refuses it in a text.
        if parts.uri.path().contains("%00") {
            return Err(ApiError::not_found("nothing is named with a NUL character"));
        }
        let rejection = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(path) => return Ok(ApiPath(path.0)),
            Err(rejection) => rejection,
        };
        let kind = match rejection {
            PathRejection::FailedToDeserializePathParams(failed) => failed.into_kind(),
            other => return Err(ApiError::Internal(anyhow::anyhow!("path parameters: {}", other.body_text()))),
        };
        Err(match kind {
            ErrorKind::ParseErrorAtKey { key, value, .. } | ErrorKind::DeserializeError { key, value, .. } => {
                ApiError::not_found(format!("no {key} `{value}`"))
            }
            ErrorKind::ParseErrorAtIndex { value, .. } | ErrorKind::ParseError { value, .. } => {
                ApiError::not_found(format!("nothing is named `{value}`"))
            }
            ErrorKind::InvalidUtf8InPathParam { key } => ApiError::not_found(format!("no {key} of that name")),
            // A route whose parameters do not fit its handler is a bug, not the client's.
            other => ApiError::Internal(anyhow::anyhow!("path parameters: {other}")),
        })
    }
}
