//! Handlers of `/api/v1/mailings` and `/api/v1/admin/mail`: extract, call the mail service,
//! respond.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value as Json_;
use uuid::Uuid;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::mail::{compose, settings};
use crate::records::Source;

/// `POST /api/v1/mailings`
pub async fn create(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    Ok((StatusCode::CREATED, Json(compose::compose(&app, &p, Source::Api, &body).await?)))
}

/// `POST /api/v1/mailings/{id}/send`
pub async fn send(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(compose::release(&app, &p, Source::Api, id, &body).await?))
}

/// `POST /api/v1/mailings/{id}/cancel`
pub async fn cancel(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Json_>> {
    Ok(Json(compose::cancel(&app, &p, Source::Api, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    status: Option<String>,
    after: Option<Uuid>,
    limit: Option<u32>,
}

/// `GET /api/v1/mailings/{id}/deliveries?status=&after=&limit=`
pub async fn deliveries(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeliveryParams>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(compose::deliveries(&app, &p, id, q.status.as_deref(), q.after, q.limit).await?))
}

/// `GET /api/v1/admin/mail`
pub async fn get_settings(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    Ok(Json(settings::get(&app, &p).await?))
}

/// `PUT /api/v1/admin/mail`
pub async fn put_settings(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(settings::put(&app, &p, &body).await?))
}

/// `POST /api/v1/admin/mail/test`
pub async fn test(State(app): State<AppState>, p: Principal, ApiJson(body): ApiJson<Json_>) -> ApiResult<Json<Json_>> {
    Ok(Json(settings::test(&app, &p, &body).await?))
}
