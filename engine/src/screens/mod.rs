//! The screens: server-rendered pages generated from the catalog — navigation, lists, record
//! views, forms, kanban boards, the recycle bin — for signed-in users with a session cookie.
//! Pages call the same record services as the API, so permissions and data scopes are the
//! same; the few scripts of the pages call the JSON API with the session's CSRF token.

mod board;
mod calendar;
mod company;
mod dry_run;
mod duplicates;
mod form;
mod import;
mod kb;
pub(crate) mod list;
mod merge;
mod plan;
mod record;
mod search;
pub mod shell;
mod studio;
mod studio_docs;
mod studio_duplicates;
mod studio_jobs;
pub(crate) mod view;
mod workload;

pub(crate) use studio::unprocessable;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use chrono::FixedOffset;
use crm_model::{Action, Catalog};
use crm_store::system;
use minijinja::value::Serde;
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::auth::{self, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, Failure};
use crate::http::extract::{ApiPath, ApiQuery};

pub fn routes(state: AppState) -> Router<AppState> {
    // The studio is for administrators: one check before any of its handlers runs.
    let studio = Router::new()
        .route("/studio", get(studio::home).post(studio::create_entity))
        .route("/studio/history", get(studio::history))
        .route("/studio/jobs", get(studio_jobs::jobs))
        .route("/studio/jobs/{consumer}/retry", post(studio_jobs::retry))
        .route("/studio/history/{id}/rollback", post(studio::rollback))
        .route("/studio/package", get(studio::package).post(studio::install_package))
        .route("/studio/package.json", get(studio::export_package))
        .route("/studio/scripts", get(studio::scripts))
        .route("/studio/scripts/{name}", get(studio::script).post(studio::save_script))
        .route("/studio/dashboards", get(crate::dashboards::studio::list))
        .route(
            "/studio/dashboards/{name}",
            get(crate::dashboards::studio::editor).post(crate::dashboards::studio::save),
        )
        .route("/studio/mail", get(crate::mail::screens::mail_settings).post(crate::mail::screens::save_mail_settings))
        .route("/studio/company", get(company::show).post(company::save))
        .route("/studio/webhooks", get(crate::webhooks::screens::list).post(crate::webhooks::screens::save))
        .route("/studio/webhooks/{name}", get(crate::webhooks::screens::show).post(crate::webhooks::screens::update))
        .route("/studio/webhooks/{name}/secret", post(crate::webhooks::screens::new_secret))
        .route("/studio/webhooks/{name}/delete", post(crate::webhooks::screens::remove))
        .route("/studio/webhooks/{name}/deliveries/{id}/redeliver", post(crate::webhooks::screens::redeliver))
        .route("/studio/sso", get(crate::sso::screens::settings).post(crate::sso::screens::save_settings))
        .route("/studio/templates", get(crate::templates::screens::gallery))
        .route("/studio/templates/{name}", get(crate::templates::screens::show).post(crate::templates::screens::apply))
        .route("/studio/templates/{name}/remove", post(crate::templates::screens::remove_template))
        .route("/studio/sync", get(crate::sync::screens::list))
        .route("/studio/sync/connections/{name}", post(crate::sync::screens::connect))
        .route("/studio/sync/{name}", get(crate::sync::screens::show).post(crate::sync::screens::save))
        .route("/studio/sync/{name}/run", post(crate::sync::screens::start))
        .route("/studio/sms", get(crate::mail::screens::sms_settings).post(crate::mail::screens::save_sms_settings))
        .route("/studio/forms", get(crate::forms::screens::list))
        .route("/studio/forms/{name}", get(crate::forms::screens::designer).post(crate::forms::screens::save))
        .route("/studio/prints", get(crate::print::screens::templates))
        .route("/studio/prints/{name}", get(crate::print::screens::template).post(crate::print::screens::save))
        .route("/studio/prints/{name}/delete", post(crate::print::screens::delete))
        .route("/studio/e/{entity}", get(studio::entity))
        .route("/studio/e/{entity}/fields", post(studio::add_field))
        .route("/studio/e/{entity}/layout", get(studio::layout).post(studio::save_layout))
        .route("/studio/e/{entity}/preview", get(studio::preview_as))
        .route("/studio/e/{entity}/related", get(studio_docs::related).post(studio_docs::save_related))
        .route("/studio/e/{entity}/list", get(studio_docs::list_settings).post(studio_docs::save_list))
        .route("/studio/e/{entity}/duplicates", get(studio_duplicates::rules).post(studio_duplicates::save))
        .route("/studio/roles/{name}", get(studio_docs::role).post(studio_docs::save_role))
        .route("/studio/users", get(studio_docs::users).post(studio_docs::create_user))
        .route("/studio/users/{id}", post(studio_docs::change_user))
        .route("/studio/stage-sets/{name}", get(studio_docs::stage_set).post(studio_docs::save_stage_set))
        .route("/studio/e/{entity}/fields/{field}", get(studio::field).post(studio::save_field))
        .route("/studio/e/{entity}/fields/{field}/archive", post(studio::archive_field))
        .route("/studio/e/{entity}/fields/{field}/move", post(studio::move_field))
        .route_layer(middleware::from_fn(admin_only));
    let signed_in = Router::new()
        .route("/", get(crate::dashboards::screens::home))
        .route("/logout", post(logout))
        .route("/prefs", post(preferences))
        .route("/password", get(password_page).post(change_password))
        .route("/e/{entity}", get(list::page))
        .route("/e/{entity}/export.csv", get(list::export_csv))
        .route("/e/{entity}/export.xlsx", get(list::export_xlsx))
        .route("/e/{entity}/import", get(import::page))
        .route("/e/{entity}/bulk", post(list::bulk))
        .route("/e/{entity}/views", post(list::save_view))
        .route("/e/{entity}/views/{id}/delete", post(list::delete_view))
        .route("/e/{entity}/bin", get(list::bin).post(list::restore))
        .route("/e/{entity}/board", get(board::page))
        .route("/e/{entity}/duplicates", get(duplicates::review))
        .route("/e/{entity}/duplicates/scan", post(duplicates::scan))
        .route("/e/{entity}/duplicates/apart", post(duplicates::apart))
        .route("/e/{entity}/merge", get(merge::page).post(merge::merge))
        .route("/e/{entity}/new", get(form::new).post(form::create))
        .route("/e/{entity}/{id}", get(record::page))
        .route("/e/{entity}/{id}/edit", get(form::edit).post(form::save))
        .route("/e/{entity}/{id}/print", get(crate::print::screens::page))
        .route("/e/{entity}/{id}/delete", post(record::delete))
        .route("/e/{entity}/{id}/approval", post(record::approve))
        .route("/e/lead/{id}/convert", post(record::convert))
        .route("/e/quote/{id}/order", post(record::quote_to_order))
        .route("/merges/{id}/undo", post(merge::undo))
        .route("/search", get(search::page))
        .route("/labels", get(crate::print::labels::page))
        .route("/mail/compose", get(crate::mail::screens::compose_page).post(crate::mail::screens::compose_post))
        .route("/mail/{id}/send", post(crate::mail::screens::send))
        .route("/surveys/{id}", get(crate::surveys::screens::designer))
        .route("/surveys/{id}/questions", post(crate::surveys::screens::add_question))
        .route("/surveys/{id}/questions/{question}/move", post(crate::surveys::screens::move_question))
        .route("/surveys/{id}/statistics.xlsx", get(crate::surveys::screens::export))
        .route("/reports", get(crate::reports::screens::list))
        .route("/reports/build", get(crate::reports::builder::page).post(crate::reports::builder::save))
        .route("/reports/build/export.xlsx", get(crate::reports::builder::export))
        .route("/reports/{name}", get(crate::reports::screens::page))
        .route("/reports/{name}/export.xlsx", get(crate::reports::screens::export))
        .route("/reports/{name}/delete", post(crate::reports::screens::delete))
        .route("/kb", get(kb::page))
        .route("/service/workload", get(workload::page))
        .route("/calendar", get(calendar::page))
        .route(
            "/kb/import",
            post(kb::import_files).layer(axum::extract::DefaultBodyLimit::max(crate::http::IMPORT_BODY_LIMIT)),
        )
        .route("/reminders", get(reminders))
        .route("/reminders/{id}/done", post(finish_reminder))
        .merge(studio)
        .layer(middleware::from_fn_with_state(state, sign_in_required));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/sso/login", get(crate::sso::screens::login))
        .route("/sso/callback", get(crate::sso::screens::callback))
        .route(
            "/f/{name}/{key}",
            get(crate::forms::screens::page)
                .post(crate::forms::screens::post)
                .layer(axum::extract::DefaultBodyLimit::max(crate::forms::BODY_LIMIT)),
        )
        .route(
            "/q/{id}/{key}",
            get(crate::surveys::screens::page)
                .post(crate::surveys::screens::post)
                .layer(axum::extract::DefaultBodyLimit::max(crate::forms::BODY_LIMIT)),
        )
        .route("/t/o/{mailing}/{entity}/{record}/{signature}", get(crate::mail::tracking::opened))
        .route("/t/c/{mailing}/{entity}/{record}/{signature}", get(crate::mail::tracking::clicked))
        .route(
            "/unsubscribe/{entity}/{id}/{signature}",
            get(crate::mail::unsubscribe::ask).post(crate::mail::unsubscribe::confirm),
        )
        .route("/static/{*path}", get(asset))
        .route(crate::brand::LOGO_PATH, get(company::logo))
        .merge(signed_in)
}

/// The signed-in user of a page, with what the page needs to know about them.
#[derive(Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    pub locale: &'static str,
    pub theme: String,
    /// Where the user's wall clock is; the business time zone unless they chose otherwise.
    pub offset: FixedOffset,
    pub name: String,
    /// The page's path and query, to come back to after changing a preference.
    pub path: String,
    /// A message left by the previous page (after a redirect), shown once.
    pub flash: Option<String>,
    /// The company's name and logo for the top bar.
    pub brand: Arc<crate::brand::Brand>,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Viewer>().cloned().ok_or(ApiError::Unauthorized)
    }
}

const FLASH_COOKIE: &str = "crm_flash";

impl Viewer {
    pub fn text(&self, key: &str) -> String {
        shell::text(self.locale, key, &[])
    }

    /// The message of a field error in the user's language: the service's own (English)
    /// words, which carry the details, or the Chinese text of its code.
    pub fn error_text(&self, error: &crate::error::FieldError) -> String {
        if self.locale == "en" {
            return error.message.clone();
        }
        let key = format!("error.{}", error.code);
        let text = self.text(&key);
        if text == key { error.message.clone() } else { text }
    }

    /// The context every page template gets: who is signed in, the navigation, the page's
    /// title, and the page's own values, which win over these. Each part goes into the
    /// template's values once, without a JSON copy first.
    pub fn page(
        &self,
        catalog: &Catalog,
        active: Option<&str>,
        title: &str,
        values: impl Serialize,
    ) -> minijinja::Value {
        // Until the user has a password of their own every link leads back to the form: no
        // menu is offered.
        let nav = if self.principal.must_change_password {
            Vec::new()
        } else {
            navigation(catalog, &self.principal, self.locale, active)
        };
        let shell = minijinja::context! {
            locale => self.locale,
            locales => Serde(shell::LOCALES),
            theme => self.theme.as_str(),
            themes => Serde(shell::THEMES),
            csrf => self.csrf.as_str(),
            user_name => self.name.as_str(),
            path => self.path.as_str(),
            is_admin => self.principal.is_admin(),
            nav => Serde(nav),
            title,
            flash => Serde(&self.flash),
            company => Serde(self.brand.as_ref()),
        };
        minijinja::value::merge_maps([minijinja::Value::from(Serde(values)), shell])
    }
}

#[derive(Serialize)]
struct NavItem {
    name: String,
    href: String,
    label: String,
    active: bool,
    /// Modules without a place in the menu (child records, new ones) are under "more".
    more: bool,
}

/// The user's modules in menu order; the knowledge base page (知识库) follows the articles,
/// and the reports (报表) every user may run come last.
fn navigation(catalog: &Catalog, principal: &Principal, locale: &str, active: Option<&str>) -> Vec<NavItem> {
    let mut entities: Vec<_> =
        catalog.entities().filter(|e| !e.def.archived && principal.sees(e.name().as_str())).collect();
    entities.sort_by_key(|e| (e.def.menu_order.unwrap_or(u16::MAX), e.name().as_str().to_owned()));
    let mut items = Vec::new();
    for e in entities {
        let name = e.name().to_string();
        let more = e.def.menu_order.is_none();
        let articles = name == crate::kb::ARTICLE;
        let activities = name == calendar::ACTIVITY;
        items.push(NavItem {
            href: format!("/e/{name}"),
            label: e.def.label.get(locale).to_owned(),
            active: active == Some(name.as_str()),
            more,
            name,
        });
        // The knowledge base page follows the articles, the calendar the activities.
        let page = match (articles, activities) {
            (true, _) => Some(("kb", "/kb", "kb.title")),
            (_, true) => Some(("calendar", "/calendar", "calendar.title")),
            _ => None,
        };
        if let Some((name, href, title)) = page {
            items.push(NavItem {
                name: name.into(),
                href: href.into(),
                label: shell::text(locale, title, &[]),
                active: active == Some(name),
                more,
            });
        }
    }
    items.push(NavItem {
        name: "reports".into(),
        href: "/reports".into(),
        label: shell::text(locale, "reports.title", &[]),
        active: active == Some("reports"),
        more: false,
    });
    items
}

/// Renders a page, or the error page if the template fails.
pub fn html(name: &str, context: minijinja::Value) -> ApiResult<Response> {
    let body =
        shell::render(name, context).map_err(|e| ApiError::Internal(anyhow::anyhow!("template {name}: {e:#}")))?;
    Ok(Html(body).into_response())
}

/// A redirect after a change, carrying a message for the next page.
pub fn redirect_with(to: &str, message: Option<&str>) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Some(message) = message {
        let cookie = format!("{FLASH_COOKIE}={}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax", encode(message));
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Percent-encodes a text for a URL query value or a cookie.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn decode(text: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={text}")).unwrap_or_default();
    pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default()
}

/// The locale a browser asks for: English if it prefers it, Chinese otherwise.
pub(crate) fn browser_locale(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
    if first.starts_with("en") { "en" } else { "zh-CN" }
}

fn known_locale(name: &str) -> Option<&'static str> {
    shell::LOCALES.into_iter().find(|l| *l == name)
}

/// Middleware: pages need a session; without one the browser goes to the login page and
/// comes back after. Error answers of the services become error pages in the user's language.
async fn admin_only(viewer: Viewer, request: Request, next: Next) -> Response {
    match viewer.principal.require_admin() {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn sign_in_required(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let back = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let to_login = || Redirect::to(&format!("/login?next={}", encode(&back))).into_response();
    let Some(cookie) = auth::cookie(request.headers(), SESSION_COOKIE) else {
        return to_login();
    };
    let (user, csrf) = match auth::session_user(&app, cookie).await {
        Ok(session) => session,
        Err(ApiError::Unauthorized) => return to_login(),
        Err(e) => return bare_error(request.headers(), e),
    };
    let viewer = match viewer(&app, user, csrf, request.headers()).await {
        Ok(viewer) => Viewer { path: back, ..viewer },
        Err(e) => return bare_error(request.headers(), e),
    };
    let path = request.uri().path();
    if viewer.principal.must_change_password && path != "/password" && path != "/logout" {
        return Redirect::to("/password").into_response();
    }
    let had_flash = viewer.flash.is_some();
    request.extensions_mut().insert(viewer.clone());
    let mut response = next.run(request).await;
    if let Some(failure) = response.extensions().get::<Failure>().cloned() {
        response = error_page(&app, &viewer, response.status(), &failure);
    }
    if had_flash && response.status().is_success() {
        let expired = format!("{FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
        response.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&expired).expect("ASCII"));
    }
    response
}

async fn viewer(app: &App, user: uuid::Uuid, csrf: String, headers: &HeaderMap) -> ApiResult<Viewer> {
    let principal = app.principal(user).await?;
    let preferences = system::preferences(&app.db, user).await?;
    let chosen = |name: &str| preferences.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let locale = chosen("locale").and_then(known_locale).unwrap_or_else(|| browser_locale(headers));
    let theme = chosen("theme").filter(|t| shell::THEMES.contains(t)).unwrap_or(shell::THEMES[0]).to_owned();
    let offset = chosen("utc_offset")
        .and_then(|o| o.parse::<i32>().ok())
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(crate::schedule::business_offset);
    let name = user_name(app, user).await?;
    let flash = auth::cookie(headers, FLASH_COOKIE).map(decode).filter(|f| !f.is_empty());
    let brand = crate::brand::brand(app).await?;
    Ok(Viewer { principal, csrf, locale, theme, offset, name, path: String::new(), flash, brand })
}

async fn user_name(app: &App, user: uuid::Uuid) -> ApiResult<String> {
    let catalog = app.catalog();
    let users = catalog.entity(crm_model::USER_ENTITY).ok_or_else(|| ApiError::not_found("no user entity"))?;
    let record = crm_store::records::get(&app.db, users, user, None).await?;
    let title = users.title_field().and_then(|f| users.column_index(f.name.as_str()));
    Ok(match (record, title) {
        (Some(record), Some(i)) => match &record.values[i] {
            crm_model::Value::Text(name) => name.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    })
}

/// An error before the viewer is known (the database down while the session is looked up): a
/// page of its own in the browser's language, which needs nothing from the database.
fn bare_error(headers: &HeaderMap, error: ApiError) -> Response {
    let ApiError::Unavailable { code, .. } = &error else { return error.into_response() };
    let locale = browser_locale(headers);
    let title = shell::text(locale, "error.unavailable", &[]);
    let detail = shell::text(locale, &format!("error.{code}"), &[]);
    let body = format!(
        "<!DOCTYPE html><html lang=\"{locale}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main class=\"empty error-page\"><h1>{title}</h1><p class=\"detail\">{detail}</p></main></body></html>"
    );
    let mut response = error.into_response();
    *response.body_mut() = axum::body::Body::from(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn error_page(app: &App, viewer: &Viewer, status: StatusCode, failure: &Failure) -> Response {
    let catalog = app.catalog();
    let key = match status {
        StatusCode::NOT_FOUND => "error.not_found",
        StatusCode::FORBIDDEN => "error.forbidden",
        StatusCode::BAD_REQUEST => "error.bad_request",
        StatusCode::CONFLICT => "error.conflict",
        StatusCode::SERVICE_UNAVAILABLE => "error.unavailable",
        _ => "error.failed",
    };
    let title = viewer.text(key);
    // The engine's detail is written in English for developers and the API: a Chinese screen
    // says what went wrong in Chinese — by the error's code where it has words of its own.
    let detail = match viewer.locale {
        "en" => failure.detail.clone(),
        locale => {
            let own = format!("error.{}", failure.code);
            let text = shell::text(locale, &own, &[]);
            if text == own || text == title { viewer.text(&format!("{key}_detail")) } else { text }
        }
    };
    let context = viewer.page(&catalog, None, &title, json!({"status": status.as_u16(), "detail": detail}));
    match shell::render("error.html", context) {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the error page failed to render");
            (status, failure.detail.clone()).into_response()
        }
    }
}

/// A form posted by a page: its fields in order, after its CSRF token was checked.
pub struct Posted(pub Vec<(String, String)>);

impl Posted {
    /// The last value posted under a name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value posted under a name, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let csrf = request.extensions().get::<Viewer>().map(|v| v.csrf.clone()).ok_or(ApiError::Unauthorized)?;
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
        let posted = Posted(pairs);
        check_csrf(posted.get("_csrf"), &csrf)?;
        Ok(posted)
    }
}

/// A form's CSRF token against the session's: a form from an older page (or another site) is
/// refused. Multipart forms, which [`Posted`] does not read, check theirs with this too.
pub(crate) fn check_csrf(given: Option<&str>, session: &str) -> ApiResult<()> {
    if auth::same_secret(given.unwrap_or(""), session) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "csrf_failed",
        message: "this form is out of date; reload the page and send it again".into(),
    })
}

/// A local path to go back to; anything else (another site) goes home.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/",
    }
}

/// `GET /`: the user's modules.
#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`
async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LoginQuery>,
) -> ApiResult<Response> {
    login_form(&app, browser_locale(&headers), q.next.as_deref(), "", None, StatusCode::OK).await
}

pub(crate) async fn login_form(
    app: &App,
    locale: &str,
    next: Option<&str>,
    login: &str,
    error: Option<String>,
    status: StatusCode,
) -> ApiResult<Response> {
    let context = json!({
        "locale": locale,
        "theme": shell::THEMES[0],
        "title": shell::text(locale, "login.title", &[]),
        "next": local_path(next),
        "login": login,
        "error": error,
        "company": *crate::brand::brand(app).await?,
        "sso": crate::sso::enabled(app).await?.is_some(),
    });
    let mut response = html("login.html", minijinja::Value::from(minijinja::value::Serde(context)))?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /login`: checks the password, opens a session and goes where the user was headed.
async fn login(State(app): State<AppState>, request: Request) -> ApiResult<Response> {
    let locale = browser_locale(request.headers());
    let address = auth::client_address(request.extensions());
    let axum::Form(form) = axum::Form::<Vec<(String, String)>>::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let form = Posted(form);
    let (login, password, next) =
        (form.get("login").unwrap_or(""), form.get("password").unwrap_or(""), form.get("next"));
    let user = match auth::check_password(&app, login, password, &address).await {
        Ok(user) => user,
        Err(ApiError::Unauthorized) => {
            let error = shell::text(locale, "login.failed", &[]);
            return login_form(&app, locale, next, login, Some(error), StatusCode::UNAUTHORIZED).await;
        }
        Err(ApiError::TooManyRequests(_)) => {
            let error = shell::text(locale, "login.throttled", &[]);
            return login_form(&app, locale, next, login, Some(error), StatusCode::TOO_MANY_REQUESTS).await;
        }
        Err(ApiError::Forbidden { code: auth::SSO_ONLY, .. }) => {
            let error = shell::text(locale, "login.sso_only", &[]);
            return login_form(&app, locale, next, login, Some(error), StatusCode::FORBIDDEN).await;
        }
        Err(e) => return Err(e),
    };
    let (cookie, _) = auth::open_session(&app, user).await?;
    let mut response = Redirect::to(local_path(next)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, auth::session_cookie(&app, &cookie, true)?);
    Ok(response)
}

/// `POST /logout`
async fn logout(State(app): State<AppState>, viewer: Viewer, headers: HeaderMap, _: Posted) -> ApiResult<Response> {
    if let Some(cookie) = auth::cookie(&headers, SESSION_COOKIE) {
        auth::close_session(&app, cookie).await?;
    }
    auth::audit(&app, Some(viewer.principal.user_id), viewer.principal.user_id, "logout", json!({})).await?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, auth::session_cookie(&app, "", false)?);
    Ok(response)
}

/// `POST /prefs`: the user's language or theme, remembered for their next sessions.
async fn preferences(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    if let Some(locale) = form.get("locale") {
        let locale = known_locale(locale).ok_or_else(|| ApiError::field("locale", "invalid", "unknown language"))?;
        system::set_preference(&app.db, viewer.principal.user_id, "locale", locale).await?;
    }
    if let Some(theme) = form.get("theme") {
        if !shell::THEMES.contains(&theme) {
            return Err(ApiError::field("theme", "invalid", "unknown theme"));
        }
        system::set_preference(&app.db, viewer.principal.user_id, "theme", theme).await?;
    }
    Ok(Redirect::to(local_path(form.get("back"))).into_response())
}

/// `GET /password`: set a new password (required after an administrator reset).
async fn password_page(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    password_form(&app, &viewer, None)
}

fn password_form(app: &App, viewer: &Viewer, error: Option<String>) -> ApiResult<Response> {
    let title = viewer.text("password.title");
    let values = json!({"error": error, "required": viewer.principal.must_change_password});
    html("password.html", viewer.page(&app.catalog(), None, &title, values))
}

async fn change_password(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let (current, new) = (form.get("current_password").unwrap_or(""), form.get("password").unwrap_or(""));
    if form.get("password_again").unwrap_or("") != new {
        return password_form(&app, &viewer, Some(viewer.text("password.mismatch")));
    }
    match crate::admin::change_own_password(&app, &viewer.principal, current, new).await {
        Ok(()) => Ok(redirect_with("/", Some(&viewer.text("password.changed")))),
        Err(ApiError::Invalid(errors)) => {
            let message = errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; ");
            password_form(&app, &viewer, Some(message))
        }
        Err(ApiError::Unauthorized) => password_form(&app, &viewer, Some(viewer.text("password.wrong_current"))),
        Err(e) => Err(e),
    }
}

/// `GET /reminders`: the user's open reminders, overdue first.
async fn reminders(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let items = open_reminders(&app, &viewer).await?;
    let title = viewer.text("reminders.title");
    html("reminders.html", viewer.page(&app.catalog(), None, &title, json!({"items": items})))
}

/// The viewer's date on their wall clock.
pub fn today(app: &App, viewer: &Viewer) -> chrono::NaiveDate {
    app.now().with_timezone(&viewer.offset).date_naive()
}

/// The viewer's open reminders due by the end of their today, as the inbox lists them.
pub async fn open_reminders(app: &App, viewer: &Viewer) -> ApiResult<Vec<Json>> {
    let offset = viewer.offset;
    let now = app.now();
    let today = today(app, viewer);
    let end_of_day = today
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(offset).single())
        .map_or(now, |t| t.with_timezone(&chrono::Utc));
    let open = system::open_reminders(&app.db, viewer.principal.user_id, end_of_day).await?;
    Ok(open
        .iter()
        .map(|r| {
            let due = r.due_at.map(|d| d.with_timezone(&offset));
            json!({
                "id": r.id,
                "message": crm_model::Labels::message_in(&r.message, viewer.locale),
                "href": r.entity.as_ref().zip(r.record_id).map(|(e, id)| format!("/e/{e}/{id}")),
                "due": due.map(|d| d.format("%Y-%m-%d %H:%M").to_string()),
                "overdue": due.is_some_and(|d| d.date_naive() < today),
            })
        })
        .collect())
}

/// `POST /reminders/{id}/done`
async fn finish_reminder(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<uuid::Uuid>,
    _: Posted,
) -> ApiResult<Response> {
    if !system::finish_reminder(&app.db, viewer.principal.user_id, id, app.now()).await? {
        return Err(ApiError::not_found("no such reminder"));
    }
    Ok(redirect_with("/reminders", Some(&viewer.text("reminders.done"))))
}

/// `GET /static/...`: the shell's CSS and scripts, cached by the browser for a day.
async fn asset(ApiPath(path): ApiPath<String>) -> Response {
    match shell::asset(&path) {
        Some((body, content_type)) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The actions of an entity the viewer's roles allow, for showing only the buttons that work.
pub fn allowed(viewer: &Viewer, entity: &str) -> Json {
    let may = |action| viewer.principal.access.allows(entity, action);
    json!({
        "create": may(Action::Create),
        "edit": may(Action::Edit),
        "delete": may(Action::Delete),
        "restore": may(Action::Restore),
        "assign": may(Action::Assign),
        "share": may(Action::Share),
        "export": may(Action::Export),
        "merge": may(Action::Edit) && may(Action::Delete) && entity != crm_model::USER_ENTITY,
        "import": may(Action::Import),
        "send": may(Action::Send) && viewer.principal.access.allows(crate::mail::MAILING, Action::Create),
    })
}
