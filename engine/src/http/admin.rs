//! Handlers of `/api/v1/admin/...` and `/api/v1/audit`: accounts, the outbox consumers and
//! the audit log, for administrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use uuid::Uuid;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::brand::{self, Brand, Change};
use crate::error::ApiResult;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user record's fields (name, login, department, ...).
    user: Json_,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /api/v1/admin/users`: a user with a password (to change at first login) and roles.
pub async fn create_user(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    let user = crate::admin::create_user(&app, &p, &body.user, &body.password, &body.roles).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /api/v1/admin/users/{id}`: roles and password state.
pub async fn account(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::account(&app, &p, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    roles: Vec<String>,
}

/// `PUT /api/v1/admin/users/{id}/roles`
pub async fn set_roles(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Roles>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::set_roles(&app, &p, id, &body.roles).await?))
}

/// `POST /api/v1/admin/users/{id}/disable`: 停用; signed out everywhere at once.
pub async fn disable(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::set_active(&app, &p, id, false).await?))
}

/// `POST /api/v1/admin/users/{id}/enable`
pub async fn enable(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::set_active(&app, &p, id, true).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    password: Option<String>,
}

/// `POST /api/v1/admin/users/{id}/reset-password`: `{"password"}` or a generated one, shown
/// once; to be changed at next login.
pub async fn reset_password(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Reset>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::reset_password(&app, &p, id, body.password.as_deref()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    to: Uuid,
}

/// `POST /api/v1/admin/users/{id}/transfer`: every record of a leaver to another user.
pub async fn transfer(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Transfer>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::admin::transfer(&app, &p, id, body.to).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    entity: Option<String>,
    record_id: Option<Uuid>,
    actor: Option<Uuid>,
    action: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit`: the audit log, newest first, filtered; `before` pages on.
pub async fn audit(
    State(app): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let query = crm_store::system::AuditQuery {
        entity: q.entity,
        record_id: q.record_id,
        actor: q.actor,
        action: q.action,
        from: q.from,
        to: q.to,
        before: q.before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    let rows = crm_store::system::audit_entries(&app.db, &query).await?;
    let next = if rows.len() == query.limit as usize { rows.last().map(|r| r.id) } else { None };
    Ok(Json(json!({ "data": rows, "next_before": next })))
}

/// `GET /api/v1/admin/jobs`: the outbox consumers, how far each has read and what failed.
pub async fn jobs(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::jobs::status(&app, &p).await?))
}

/// `POST /api/v1/admin/jobs/{consumer}/retry`: the consumer's dead events, sent again.
pub async fn retry_jobs(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(consumer): ApiPath<String>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::jobs::retry(&app, &p, &consumer).await?))
}

/// `GET /api/v1/admin/company`: the company's name and the address of its logo.
pub async fn company(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Brand>> {
    Ok(Json(brand::shown(&app, &p).await?))
}

/// `PUT /api/v1/admin/company` (multipart: `name`, `logo`, `remove_logo`)
pub async fn put_company(State(app): State<AppState>, p: Principal, change: Change) -> ApiResult<Json<Brand>> {
    Ok(Json(brand::save(&app, &p, &change).await?))
}

/// `GET /api/v1/admin/sso`: single sign-on's settings, without the client secret.
pub async fn sso(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::sso::get(&app, &p).await?))
}

/// `PUT /api/v1/admin/sso`
pub async fn put_sso(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(settings): ApiJson<crate::sso::Settings>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::sso::put(&app, &p, settings).await?))
}
