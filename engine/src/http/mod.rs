//! HTTP: the whole route table, the extractors that turn bad input into problem documents,
//! and the middleware around every request.

mod meta;
mod records;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::{self, Principal};
use crate::error::{ApiError, ApiResult, InternalError};

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
        .route("/api/v1/meta/{kind}/{name}", get(meta::get_doc).put(meta::put_doc))
        // Records
        .route("/api/v1/records/{entity}", get(records::list).post(records::create))
        .route("/api/v1/records/{entity}/groups", get(records::groups))
        .route("/api/v1/records/{entity}/bulk/update", post(records::bulk_update))
        .route("/api/v1/records/{entity}/bulk/delete", post(records::bulk_delete))
        .route("/api/v1/records/{entity}/bulk/restore", post(records::bulk_restore))
        .route(
            "/api/v1/records/{entity}/bulk/create",
            post(records::bulk_create).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/api/v1/records/{entity}/{id}", get(records::get).patch(records::update).delete(records::delete))
        .route("/api/v1/records/{entity}/{id}/restore", post(records::restore))
        .route("/api/v1/records/{entity}/{id}/related/{panel}", get(records::related))
        .route("/api/v1/records/{entity}/{id}/history", get(records::history))
        // The API's own description
        .route("/api/openapi.json", get(openapi))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/auth/token", post(token))
        .merge(api)
        .fallback(not_found)
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    login: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/auth/token`: a bearer token for a login and password.
async fn token(State(app): State<AppState>, ApiJson(body): ApiJson<TokenRequest>) -> ApiResult<Response> {
    let name = body.name.as_deref().unwrap_or("api");
    let (token, principal) = auth::login_for_token(&app, &body.login, &body.password, name).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"token": token, "token_type": "Bearer", "user_id": principal.user_id})),
    )
        .into_response())
}

/// `GET /api/openapi.json`: generated from the live catalog.
async fn openapi(State(app): State<AppState>, _principal: Principal) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&app.catalog()))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
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

/// JSON bodies whose rejections are problem documents (400, or 413 for oversized bodies).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::bad_request("invalid_body", "send the body as JSON with Content-Type: application/json"))
            }
            Err(e) => Err(ApiError::bad_request("malformed_json", e.body_text())),
        }
    }
}

/// Query strings whose rejections are problem documents.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}
