//! Handlers of `/api/v1/meta/print_templates`: print templates, for administrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_model::DocKind;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// `GET /api/v1/meta/print_templates`
pub async fn list(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let catalog = app.catalog();
    Ok(Json(json!({ "data": catalog.docs().print_templates.values().collect::<Vec<_>>() })))
}

/// `GET /api/v1/meta/print_templates/{name}`
pub async fn get(State(app): State<AppState>, p: Principal, ApiPath(name): ApiPath<String>) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    app.catalog()
        .docs()
        .get_json(DocKind::PrintTemplate, &name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no print template `{name}`")))
}

/// `PUT /api/v1/meta/print_templates/{name}`: creates or replaces the template.
pub async fn put(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let plan = crate::metadata::put_document(&app, Some(p.user_id), DocKind::PrintTemplate, &name, &body).await?;
    let doc = app.catalog().docs().get_json(DocKind::PrintTemplate, &name).unwrap_or_default();
    Ok(Json(json!({"document": doc, "plan": plan.describe()})).into_response())
}

/// `DELETE /api/v1/meta/print_templates/{name}`
pub async fn delete(State(app): State<AppState>, p: Principal, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    p.require_admin()?;
    crate::print::remove_template(&app, Some(p.user_id), &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
