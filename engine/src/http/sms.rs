//! Handlers of `/api/v1/admin/sms`: extract, call the SMS service, respond.

use axum::Json;
use axum::extract::State;
use serde_json::Value as Json_;

use super::ApiJson;
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::sms;

/// `GET /api/v1/admin/sms`
pub async fn get_settings(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    Ok(Json(sms::get(&app, &p).await?))
}

/// `PUT /api/v1/admin/sms`
pub async fn put_settings(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(sms::put(&app, &p, &body).await?))
}

/// `POST /api/v1/admin/sms/test`
pub async fn test(State(app): State<AppState>, p: Principal, ApiJson(body): ApiJson<Json_>) -> ApiResult<Json<Json_>> {
    Ok(Json(sms::test(&app, &p, &body).await?))
}
