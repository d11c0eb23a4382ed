//! The sign-in through the identity provider: `/sso/login` sends the browser there,
//! `/sso/callback` brings it back signed in, or to the login page saying why not; and the
//! studio's form of the settings (单点登录).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::flow::{self, Refusal};
use crate::app::{App, AppState};
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::http::ApiQuery;
use crate::screens::{
    Posted, Viewer, browser_locale, html, local_path, login_form, redirect_with, shell, unprocessable,
};

/// The cookie that keeps a sign-in's state while the browser is at the provider.
const FLOW_COOKIE: &str = "crm_sso";

fn flow_cookie(app: &App, value: &str, open: bool) -> ApiResult<axum::http::HeaderValue> {
    let secure = if app.config.secure_cookies { "; Secure" } else { "" };
    let max_age = if open { 600 } else { 0 };
    let cookie = format!("{FLOW_COOKIE}={value}; Path=/sso; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    axum::http::HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))
}

async fn refused(app: &App, headers: &HeaderMap, next: Option<&str>, refusal: Refusal) -> ApiResult<Response> {
    tracing::warn!(reason = %refusal.reason, "a sign-in through the identity provider was refused");
    let locale = browser_locale(headers);
    let text = shell::text(locale, refusal.text, &[]);
    let mut response = login_form(app, locale, next, "", Some(text), StatusCode::UNAUTHORIZED).await?;
    response.headers_mut().insert(header::SET_COOKIE, flow_cookie(app, "", false)?);
    Ok(response)
}

#[derive(Deserialize)]
pub struct Start {
    next: Option<String>,
}

/// `GET /sso/login?next=`
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<Start>,
) -> ApiResult<Response> {
    let Some((settings, _)) = super::enabled(&app).await? else {
        return Err(ApiError::not_found("single sign-on is not set up"));
    };
    let next = local_path(q.next.as_deref());
    match flow::begin(&app, &settings, next).await {
        Ok((location, cookie)) => {
            let mut response = Redirect::to(&location).into_response();
            response.headers_mut().insert(header::SET_COOKIE, flow_cookie(&app, &cookie, true)?);
            Ok(response)
        }
        Err(refusal) => refused(&app, &headers, Some(next), refusal).await,
    }
}

#[derive(Deserialize)]
pub struct Back {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    #[serde(rename = "iss")]
    _issuer: Option<String>,
}

/// `GET /sso/callback?code=&state=`: signed in, with a session, where the user was headed.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<Back>,
) -> ApiResult<Response> {
    let Some((settings, secret)) = super::enabled(&app).await? else {
        return Err(ApiError::not_found("single sign-on is not set up"));
    };
    let (Some(code), Some(state)) = (q.code.as_deref(), q.state.as_deref()) else {
        let reason = format!(
            "the provider answered {}: {}",
            q.error.unwrap_or_default(),
            q.error_description.unwrap_or_default()
        );
        return refused(&app, &headers, None, Refusal { text: "login.sso_failed", reason }).await;
    };
    let cookie = auth::cookie(&headers, FLOW_COOKIE);
    let (user, next) = match flow::complete(&app, &settings, secret.as_deref(), cookie, code, state).await {
        Ok(signed_in) => signed_in,
        Err(refusal) => return refused(&app, &headers, None, refusal).await,
    };
    auth::audit(&app, Some(user), user, "login", json!({"via": "sso"})).await?;
    let (session, _) = auth::open_session(&app, user).await?;
    let mut response = Redirect::to(local_path(Some(&next))).into_response();
    response.headers_mut().append(header::SET_COOKIE, auth::session_cookie(&app, &session, true)?);
    response.headers_mut().append(header::SET_COOKIE, flow_cookie(&app, "", false)?);
    Ok(response)
}

const STUDIO: &str = "/studio/sso";

/// The settings form: what is saved (or was posted), the roles to choose from, and what is
/// wrong.
fn settings_page(app: &App, viewer: &Viewer, shown: &Json, errors: Vec<String>) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let catalog = app.catalog();
    let roles: Vec<Json> =
        catalog.docs().roles.values().map(|r| json!({"name": r.name, "label": r.label.get(viewer.locale)})).collect();
    let mapping: Vec<String> = shown["roles"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(group, role)| format!("{group} = {}", role.as_str().unwrap_or_default()))
        .collect();
    let values = json!({
        "sso": shown,
        "mapping": mapping.join("\n"),
        "roles": roles,
        "callback": format!("{}/sso/callback", app.config.public_url.trim_end_matches('/')),
        "errors": errors,
    });
    html("studio_sso.html", viewer.page(&catalog, None, &viewer.text("sso.title"), values))
}

/// `GET /studio/sso`
pub async fn settings(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let shown = super::get(&app, &viewer.principal).await?;
    settings_page(&app, &viewer, &shown, Vec::new())
}

/// The settings as the form posts them: the roles as `group = role` lines.
fn posted(form: &Posted) -> Json {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let roles: serde_json::Map<String, Json> = form
        .get("roles")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(['=', '＝']))
        .map(|(group, role)| (group.trim().to_owned(), Json::from(role.trim())))
        .filter(|(group, _)| !group.is_empty())
        .collect();
    json!({
        "enabled": form.get("enabled") == Some("true"),
        "issuer": text("issuer").unwrap_or_default(),
        "client_id": text("client_id").unwrap_or_default(),
        "client_secret": text("client_secret"),
        "redirect_uri": text("redirect_uri"),
        "scopes": text("scopes").unwrap_or_else(|| "openid email profile".into()),
        "groups_claim": text("groups_claim").unwrap_or_else(|| "groups".into()),
        "roles": roles,
        "default_role": text("default_role"),
        "department_claim": text("department_claim"),
        "local_login": form.get("local_login") == Some("true"),
        "break_glass": text("break_glass"),
    })
}

/// `POST /studio/sso`: saved when it checks out (the provider answers, the roles exist, a
/// break-glass administrator is left), otherwise the form again saying why.
pub async fn save_settings(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let mut shown = posted(&form);
    let outcome = match serde_json::from_value::<super::Settings>(shown.clone()) {
        Ok(settings) => super::put(&app, &viewer.principal, settings).await,
        Err(e) => Err(ApiError::bad_request("invalid_body", e.to_string())),
    };
    if let Some(map) = shown.as_object_mut() {
        map.remove("client_secret");
    }
    match outcome {
        Ok(_) => Ok(redirect_with(STUDIO, Some(&viewer.text("studio.applied")))),
        Err(ApiError::Invalid(errors)) => {
            let said = errors.iter().map(|e| viewer.error_text(e)).collect();
            Ok(unprocessable(settings_page(&app, &viewer, &shown, said)?))
        }
        Err(ApiError::Upstream { message, .. }) => {
            let said = vec![format!("{}{message}", viewer.text("sso.unreachable"))];
            Ok(unprocessable(settings_page(&app, &viewer, &shown, said)?))
        }
        Err(ApiError::BadRequest { message, .. }) => {
            Ok(unprocessable(settings_page(&app, &viewer, &shown, vec![message])?))
        }
        Err(e) => Err(e),
    }
}
