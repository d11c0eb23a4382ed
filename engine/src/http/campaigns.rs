//! Handlers of `/api/v1/campaigns`: extract, call the campaign service, respond.

use axum::Json;
use axum::extract::State;
use serde_json::Value as Json_;
use uuid::Uuid;

use super::{ApiJson, ApiPath};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::records::Source;

/// `POST /api/v1/campaigns/{id}/members`
pub async fn join(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::campaigns::join(&app, &p, Source::Api, id, &body).await?))
}
