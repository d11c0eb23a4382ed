//! HTTP: the whole route table, the extractors that turn bad input into problem documents,
//! and the middleware around every request.

mod admin;
mod auth;
mod campaigns;
pub mod extract;
mod files;
pub mod kb;
mod mail;
mod meta;
mod print;
mod records;
mod reports;
mod rules;
mod search;
mod sms;
mod sync;
mod tasks;
mod templates;
mod webhooks;

pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use files::file_response;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, InternalError};

/// Bodies larger than this are refused with 413, except imports.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn build_app(state: AppState) -> Router {
    let api = Router::new()
        // Metadata
        .route("/api/v1/meta/entities", get(meta::list_entities).post(meta::create_entity))
        .route("/api/v1/meta/entities/{entity}", get(meta::get_entity))
        .route("/api/v1/meta/entities/{entity}/fields", post(meta::add_field))
        .route("/api/v1/meta/entities/{entity}/duplicates", axum::routing::put(meta::set_duplicates))
        .route(
            "/api/v1/meta/entities/{entity}/fields/{field}",
            axum::routing::patch(meta::patch_field).delete(meta::archive_field),
        )
        .route("/api/v1/meta/history", get(meta::history))
        .route("/api/v1/meta/roles", get(meta::list_roles))
        .route("/api/v1/meta/scripts/{name}/dry-run", post(rules::dry_run))
        .route("/api/v1/meta/print_templates", get(print::list))
        .route("/api/v1/meta/print_templates/{name}", get(print::get).put(print::put).delete(print::delete))
        .route("/api/v1/meta/{kind}/{name}", get(meta::get_doc).put(meta::put_doc))
        // Records
        .route("/api/v1/records/{entity}", get(records::list).post(records::create))
        .route("/api/v1/records/{entity}/groups", get(records::groups))
        .route("/api/v1/records/{entity}/duplicates", post(records::duplicates))
        .route("/api/v1/records/{entity}/duplicates/scan", post(records::duplicate_scan))
        .route("/api/v1/records/{entity}/not-duplicates", post(records::not_duplicates))
        .route("/api/v1/records/{entity}/merge/preview", post(records::merge_preview))
        .route("/api/v1/records/{entity}/merge", post(records::merge))
        .route("/api/v1/records/{entity}/bulk/update", post(records::bulk_update))
        .route("/api/v1/records/{entity}/bulk/delete", post(records::bulk_delete))
        .route("/api/v1/records/{entity}/bulk/restore", post(records::bulk_restore))
        .route("/api/v1/records/{entity}/bulk/assign", post(records::bulk_assign))
        .route("/api/v1/records/{entity}/bulk/claim", post(records::bulk_claim))
        .route("/api/v1/records/{entity}/bulk/share", post(records::bulk_share))
        .route("/api/v1/records/{entity}/bulk/unshare", post(records::bulk_unshare))
        .route(
            "/api/v1/records/{entity}/bulk/create",
            post(records::bulk_create).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(
            "/api/v1/records/{entity}/import",
            post(files::import).layer(DefaultBodyLimit::max(files::IMPORT_UPLOAD_LIMIT)),
        )
        .route("/api/v1/records/{entity}/export", get(files::export))
        .route("/api/v1/records/{entity}/{id}", get(records::get).patch(records::update).delete(records::delete))
        .route("/api/v1/records/{entity}/{id}/restore", post(records::restore))
        .route("/api/v1/records/{entity}/{id}/related/{panel}", get(records::related))
        .route("/api/v1/records/{entity}/{id}/history", get(records::history))
        .route("/api/v1/records/{entity}/{id}/stage", post(rules::move_stage))
        .route("/api/v1/records/{entity}/{id}/stage-history", get(rules::stage_history))
        .route("/api/v1/records/{entity}/{id}/approval", post(rules::approve))
        .route("/api/v1/records/{entity}/{id}/approvals", get(rules::approvals))
        .route("/api/v1/leads/convert", post(rules::convert_leads))
        .route("/api/v1/quotes/{id}/order", post(rules::convert_quote))
        .route("/api/v1/merges/{id}/undo", post(records::undo_merge))
        // Reports
        .route("/api/v1/reports", get(reports::list).post(reports::create))
        .route("/api/v1/reports/run", post(reports::run))
        .route("/api/v1/reports/{name}", get(reports::get).put(reports::update).delete(reports::delete))
        .route("/api/v1/reports/{name}/chart.svg", get(reports::chart))
        .route("/api/v1/reports/{name}/export.xlsx", get(reports::export))
        // Search
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/tasks/{id}", get(tasks::get))
        // The knowledge base
        .route("/api/v1/kb/articles", get(kb::articles))
        .route("/api/v1/kb/import", post(kb::import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
        .route("/api/v1/tasks/{id}/report.csv", get(files::report))
        // One's reminders
        .route("/api/v1/campaigns/{id}/members", post(campaigns::join))
        .route("/api/v1/mailings", post(mail::create))
        .route("/api/v1/mailings/{id}/send", post(mail::send))
        .route("/api/v1/mailings/{id}/cancel", post(mail::cancel))
        .route("/api/v1/mailings/{id}/deliveries", get(mail::deliveries))
        .route("/api/v1/reminders", get(rules::reminders))
        .route("/api/v1/reminders/{id}/done", post(rules::finish_reminder))
        // One's own session, password and tokens
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/session", get(auth::session))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route("/api/v1/auth/tokens", get(auth::tokens).post(auth::create_token))
        .route("/api/v1/auth/tokens/{id}", axum::routing::delete(auth::revoke_token))
        // Accounts and the audit log (administrators)
        .route("/api/v1/admin/users", post(admin::create_user))
        .route("/api/v1/admin/users/{id}", get(admin::account))
        .route("/api/v1/admin/users/{id}/roles", axum::routing::put(admin::set_roles))
        .route("/api/v1/admin/users/{id}/disable", post(admin::disable))
        .route("/api/v1/admin/users/{id}/enable", post(admin::enable))
        .route("/api/v1/admin/users/{id}/reset-password", post(admin::reset_password))
        .route("/api/v1/admin/users/{id}/transfer", post(admin::transfer))
        .route("/api/v1/admin/jobs", get(admin::jobs))
        .route("/api/v1/admin/company", get(admin::company).put(admin::put_company))
        .route("/api/v1/admin/sso", get(admin::sso).put(admin::put_sso))
        .route("/api/v1/templates", get(templates::list))
        .route("/api/v1/templates/{name}", get(templates::show))
        .route("/api/v1/templates/{name}/install", post(templates::install))
        .route("/api/v1/templates/{name}/remove", post(templates::remove))
        .route("/api/v1/sync", get(sync::overview))
        .route("/api/v1/sync/connections/{name}", axum::routing::put(sync::set_connection))
        .route("/api/v1/sync/runs/{id}", get(sync::run))
        .route("/api/v1/sync/{name}/runs", get(sync::runs).post(sync::start))
        .route("/api/v1/webhooks/{name}", axum::routing::delete(webhooks::remove))
        .route("/api/v1/webhooks/{name}/secret", post(webhooks::new_secret))
        .route("/api/v1/webhooks/{name}/deliveries", get(webhooks::deliveries))
        .route("/api/v1/webhooks/{name}/deliveries/{id}/redeliver", post(webhooks::redeliver))
        .route("/api/v1/admin/mail", get(mail::get_settings).put(mail::put_settings))
        .route("/api/v1/admin/mail/test", post(mail::test))
        .route("/api/v1/admin/sms", get(sms::get_settings).put(sms::put_settings))
        .route("/api/v1/admin/sms/test", post(sms::test))
        .route("/api/v1/admin/jobs/{consumer}/retry", post(admin::retry_jobs))
        .route("/api/v1/audit", get(admin::audit))
        // The API's own description
        .route("/api/openapi.json", get(openapi))
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::authenticate));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/auth/login", post(auth::login))
        .merge(api)
        .merge(crate::screens::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_failures))
        .layer(middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .with_state(state)
}

/// `GET /healthz`: the database answers, and takes writes.
async fn healthz(State(app): State<AppState>) -> Response {
    match crm_store::system::catalog_version(&app.db).await {
        Ok(version) => match app.db.refusing_writes() {
            // Reads work but the last writes were refused (a full disk): no save can succeed.
            Some(reason) => {
                let body = serde_json::json!({"status": "unavailable", "reason": reason, "catalog_version": version});
                (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
            }
            None => Json(serde_json::json!({"status": "ok", "catalog_version": version})).into_response(),
        },
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            // Why, for the load balancer's log and whoever is paged: unreachable, disk_full.
            let reason = e.unavailable().unwrap_or("database_error");
            let body = serde_json::json!({"status": "unavailable", "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `GET /api/openapi.json`: generated from the live catalog, for the caller's modules.
async fn openapi(State(app): State<AppState>, principal: Principal) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&app.catalog(), &principal))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Logs every 500 with its route and cause; the client saw a generic message.
async fn log_failures(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    if let Some(InternalError(cause)) = response.extensions().get::<InternalError>() {
        tracing::error!(%method, route = route.as_deref().unwrap_or("?"), cause, "request failed");
    }
    response
}
