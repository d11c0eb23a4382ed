//! HTTP: the whole route table, the extractors that turn bad input into problem documents,
//! and the middleware around every request.

mod admin;
mod auth;
mod meta;
mod records;
mod rules;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, FieldError, InternalError};

/// Bodies larger than this are refused with 413, except imports.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn build_app(state: AppState) -> Router {
    let api = Router::new()
        // Metadata
        .route("/api/v1/meta/entities", get(meta::list_entities).post(meta::create_entity))
        .route("/api/v1/meta/entities/{entity}", get(meta::get_entity))
        .route("/api/v1/meta/entities/{entity}/fields", post(meta::add_field))
        .route(
            "/api/v1/meta/entities/{entity}/fields/{field}",
            axum::routing::patch(meta::patch_field).delete(meta::archive_field),
        )
        .route("/api/v1/meta/history", get(meta::history))
        .route("/api/v1/meta/roles", get(meta::list_roles))
        .route("/api/v1/meta/scripts/{name}/dry-run", post(rules::dry_run))
        .route("/api/v1/meta/{kind}/{name}", get(meta::get_doc).put(meta::put_doc))
        // Records
        .route("/api/v1/records/{entity}", get(records::list).post(records::create))
        .route("/api/v1/records/{entity}/groups", get(records::groups))
        .route("/api/v1/records/{entity}/bulk/update", post(records::bulk_update))
        .route("/api/v1/records/{entity}/bulk/delete", post(records::bulk_delete))
        .route("/api/v1/records/{entity}/bulk/restore", post(records::bulk_restore))
        .route("/api/v1/records/{entity}/bulk/assign", post(records::bulk_assign))
        .route("/api/v1/records/{entity}/bulk/share", post(records::bulk_share))
        .route("/api/v1/records/{entity}/bulk/unshare", post(records::bulk_unshare))
        .route(
            "/api/v1/records/{entity}/bulk/create",
            post(records::bulk_create).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/api/v1/records/{entity}/{id}", get(records::get).patch(records::update).delete(records::delete))
        .route("/api/v1/records/{entity}/{id}/restore", post(records::restore))
        .route("/api/v1/records/{entity}/{id}/related/{panel}", get(records::related))
        .route("/api/v1/records/{entity}/{id}/history", get(records::history))
        .route("/api/v1/records/{entity}/{id}/stage", post(rules::move_stage))
        .route("/api/v1/records/{entity}/{id}/stage-history", get(rules::stage_history))
        .route("/api/v1/records/{entity}/{id}/approval", post(rules::approve))
        .route("/api/v1/records/{entity}/{id}/approvals", get(rules::approvals))
        .route("/api/v1/leads/convert", post(rules::convert_leads))
        // One's reminders
        .route("/api/v1/reminders", get(rules::reminders))
        .route("/api/v1/reminders/{id}/done", post(rules::finish_reminder))
        // One's own session, password and tokens
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/session", get(auth::session))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route("/api/v1/auth/tokens", get(auth::tokens).post(auth::create_token))
        .route("/api/v1/auth/tokens/{id}", axum::routing::delete(auth::revoke_token))
        // Accounts and the audit log (administrators)
        .route("/api/v1/admin/users", post(admin::create_user))
        .route("/api/v1/admin/users/{id}", get(admin::account))
        .route("/api/v1/admin/users/{id}/roles", axum::routing::put(admin::set_roles))
        .route("/api/v1/admin/users/{id}/disable", post(admin::disable))
        .route("/api/v1/admin/users/{id}/enable", post(admin::enable))
        .route("/api/v1/admin/users/{id}/reset-password", post(admin::reset_password))
        .route("/api/v1/admin/users/{id}/transfer", post(admin::transfer))
        .route("/api/v1/admin/jobs", get(admin::jobs))
        .route("/api/v1/admin/jobs/{consumer}/retry", post(admin::retry_jobs))
        .route("/api/v1/audit", get(admin::audit))
        // The API's own description
        .route("/api/openapi.json", get(openapi))
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::authenticate));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/auth/login", post(auth::login))
        .merge(api)
        .merge(crate::screens::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_failures))
        .with_state(state)
}

/// `GET /healthz`: the database answers.
async fn healthz(State(app): State<AppState>) -> Response {
    match crm_store::system::catalog_version(&app.db).await {
        Ok(version) => Json(serde_json::json!({"status": "ok", "catalog_version": version})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "unavailable"}))).into_response()
        }
    }
}

/// `GET /api/openapi.json`: generated from the live catalog, for the caller's modules.
async fn openapi(State(app): State<AppState>, principal: Principal) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&app.catalog(), &principal))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Logs every 500 with its route and cause; the client saw a generic message.
async fn log_failures(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    if let Some(InternalError(cause)) = response.extensions().get::<InternalError>() {
        tracing::error!(%method, route = route.as_deref().unwrap_or("?"), cause, "request failed");
    }
    response
}

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
