//! Handlers of `/api/v1/auth/...`: tokens, browser sessions, one's own password and tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath};
use crate::access::Principal;
use crate::app::AppState;
use crate::auth::{self, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    login: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/auth/token`: a bearer token for a login and password.
pub async fn token(
    State(app): State<AppState>,
    request: axum::http::Extensions,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let address = auth::client_address(&request);
    let user = auth::check_password(&app, &body.login, &body.password, &address).await?;
    let token = auth::issue_token(&app, user, body.name.as_deref().unwrap_or("api")).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "token_type": "Bearer", "user_id": user}))).into_response())
}

/// `POST /api/v1/auth/login`: a browser session in an HttpOnly, SameSite=Lax cookie; the
/// answer carries the CSRF token that changes must send back in `X-CSRF-Token`.
pub async fn login(
    State(app): State<AppState>,
    request: axum::http::Extensions,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let address = auth::client_address(&request);
    let user = auth::check_password(&app, &body.login, &body.password, &address).await?;
    let (cookie, csrf) = auth::open_session(&app, user).await?;
    let principal = app.principal(user).await?;
    let mut response = Json(json!({
        "user_id": user,
        "csrf_token": csrf,
        "must_change_password": principal.must_change_password,
    }))
    .into_response();
    response.headers_mut().insert(header::SET_COOKIE, auth::session_cookie(&app, &cookie, true)?);
    Ok(response)
}

/// `POST /api/v1/auth/logout`: ends the browser session.
pub async fn logout(State(app): State<AppState>, p: Principal, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(cookie) = auth::cookie(&headers, SESSION_COOKIE) {
        auth::close_session(&app, cookie).await?;
    }
    auth::audit(&app, Some(p.user_id), p.user_id, "logout", json!({})).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, auth::session_cookie(&app, "", false)?);
    Ok(response)
}

/// `GET /api/v1/auth/session`: who is signed in, their roles, and (for a cookie session)
/// the CSRF token.
pub async fn session(State(app): State<AppState>, p: Principal, headers: HeaderMap) -> ApiResult<Json<Json_>> {
    let csrf = match auth::cookie(&headers, SESSION_COOKIE) {
        Some(cookie) => Some(auth::session_csrf(&app, cookie).await?),
        None => None,
    };
    Ok(Json(json!({
        "user_id": p.user_id,
        "department": p.department,
        "roles": p.roles,
        "administrator": p.is_admin(),
        "must_change_password": p.must_change_password,
        "csrf_token": csrf,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    current_password: String,
    password: String,
}

/// `POST /api/v1/auth/password`: changes one's own password.
pub async fn change_password(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<StatusCode> {
    crate::admin::change_own_password(&app, &p, &body.current_password, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/tokens`: one's API tokens (never the secrets).
pub async fn tokens(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    let tokens = crm_store::system::tokens_of(&app.db, p.user_id).await?;
    Ok(Json(json!({ "data": tokens })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenName {
    name: String,
}

/// `POST /api/v1/auth/tokens`: a new API token for oneself, shown once.
pub async fn create_token(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<TokenName>,
) -> ApiResult<Response> {
    let token = auth::issue_token(&app, p.user_id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "token_type": "Bearer"}))).into_response())
}

/// `DELETE /api/v1/auth/tokens/{id}`: revokes one of one's tokens at once.
pub async fn revoke_token(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    if crm_store::system::revoke_token(&app.db, p.user_id, id, app.now()).await? == 0 {
        return Err(ApiError::not_found(format!("no token `{id}`")));
    }
    app.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}
