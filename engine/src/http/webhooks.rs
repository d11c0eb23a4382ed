//! Handlers of `/api/v1/webhooks/...`: a webhook's secret, its deliveries, sending one
//! again, and removing it. The subscriptions themselves are metadata
//! (`/api/v1/meta/webhooks/{name}`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value as Json_;

use super::{ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::webhooks;

/// `POST /api/v1/webhooks/{name}/secret`
pub async fn new_secret(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(webhooks::new_secret(&app, &p, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    limit: Option<i64>,
}

/// `GET /api/v1/webhooks/{name}/deliveries?limit=`
pub async fn deliveries(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogParams>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(webhooks::deliveries(&app, &p, &name, q.limit.unwrap_or(50)).await?))
}

/// `POST /api/v1/webhooks/{name}/deliveries/{id}/redeliver`
pub async fn redeliver(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(webhooks::redeliver(&app, &p, &name, &id).await?))
}

/// `DELETE /api/v1/webhooks/{name}`
pub async fn remove(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    webhooks::remove(&app, &p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
