//! Handler of `/api/v1/tasks/{id}`: how far a background task is.

use axum::Json;
use axum::extract::State;
use crm_store::tasks::Task;

use super::ApiPath;
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;

/// `GET /api/v1/tasks/{id}`
pub async fn get(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<uuid::Uuid>) -> ApiResult<Json<Task>> {
    Ok(Json(crate::tasks::get(&app, &p, id).await?))
}
