//! The unsubscribe link in every marketing mail (退订): signed with the node's key for one
//! recipient, so nobody can unsubscribe anyone else, and needing no login. Opening it shows
//! a page with one button, because mail scanners open links; the button, or a mail program's
//! one-click unsubscribe (RFC 8058, a POST), puts the recipient's address on the suppression
//! list, which every later send honours whichever record carries the address, and marks the
//! record (拒收营销邮件) through the save pipeline, so people see it there.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use uuid::Uuid;

use crm_model::Value;

use super::{ADDRESS, OPT_OUT};
use crate::access::Principal;
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiPath;
use crate::records::{Source, Unit};
use crate::screens::{browser_locale, html, shell};

fn message(entity: &str, id: Uuid) -> String {
    format!("unsubscribe:{entity}:{id}")
}

/// The recipient's link, absolute.
pub fn link(app: &App, entity: &str, id: Uuid) -> String {
    let signature = app.secrets.sign(&message(entity, id));
    format!("{}/unsubscribe/{entity}/{id}/{signature}", app.config.public_url)
}

/// The recipient a link names, if its signature is this server's.
fn recipient(app: &App, entity: &str, id: &str, signature: &str) -> ApiResult<Uuid> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("no such link"))?;
    let known = app.catalog().entity(entity).is_some_and(|e| e.column(OPT_OUT).is_some());
    if !known || !app.secrets.verify(&message(entity, id), signature) {
        return Err(ApiError::not_found("no such link"));
    }
    Ok(id)
}

fn page(headers: &HeaderMap, done: bool) -> ApiResult<Response> {
    let locale = browser_locale(headers);
    let context = json!({
        "locale": locale,
        "theme": shell::THEMES[0],
        "title": shell::text(locale, "unsubscribe.title", &[]),
        "done": done,
    });
    html("unsubscribe.html", minijinja::Value::from(minijinja::value::Serde(context)))
}

/// `GET /unsubscribe/{entity}/{id}/{signature}`: asks to confirm.
pub async fn ask(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((entity, id, signature)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    recipient(&app, &entity, &id, &signature)?;
    page(&headers, false)
}

/// `POST /unsubscribe/{entity}/{id}/{signature}`: the recipient wants no more marketing mail.
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((entity, id, signature)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    let id = recipient(&app, &entity, &id, &signature)?;
    let catalog = app.catalog();
    let definition = catalog.entity(&entity).ok_or_else(|| ApiError::not_found("no such link"))?;
    // A recipient deleted since is not mailed anyway.
    let Some(record) = crm_store::records::get(&app.db, definition, id, None).await? else {
        return page(&headers, true);
    };
    let address = definition.column_index(ADDRESS).and_then(|i| match &record.values[i] {
        Value::Text(address) => Some(address.clone()),
        _ => None,
    });
    if let Some(address) = address {
        crm_store::mail::suppress(&app.db, &address, &entity, id, app.now()).await?;
    }
    if let Err(e) = mark(&app, &entity, id).await {
        // The address is suppressed whatever the record's own checks say (a required field
        // left empty long ago, an approval lock): the mark is for people to see.
        tracing::info!(entity, %id, error = %e, "an unsubscribed recipient's record was left unmarked");
    }
    page(&headers, true)
}

async fn mark(app: &App, entity: &str, id: Uuid) -> ApiResult<()> {
    let system = Principal::system(&app.catalog());
    let mut unit = Unit::new(app, &system, Source::Mail).await?;
    unit.update(entity, &id.to_string(), &json!({ OPT_OUT: true }), None).await?;
    unit.commit().await?;
    Ok(())
}
