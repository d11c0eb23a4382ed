//! The studio's webhooks (集成推送): the subscriptions with how their deliveries stand, one
//! webhook's form, its secret (shown once when made), its delivery log with each attempt, and
//! sending a delivery again.

use axum::extract::State;
use axum::response::Response;
use crm_model::{DocKind, WebhookEvent};
use serde_json::{Map, Value as Json, json};

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::ApiPath;
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable};

const PATH: &str = "/studio/webhooks";

/// The events as checkboxes, ticked as the document has them.
fn events(viewer: &Viewer, doc: &Json) -> Vec<Json> {
    WebhookEvent::ALL
        .iter()
        .map(|e| {
            let on = doc["events"].as_array().is_some_and(|list| list.iter().any(|x| x == e.as_str()));
            json!({"name": e.as_str(), "label": viewer.text(&format!("webhooks.event_{}", e.as_str())), "on": on})
        })
        .collect()
}

fn entities(app: &App, viewer: &Viewer) -> Vec<Json> {
    app.catalog().entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(viewer.locale)})).collect()
}

/// `GET /studio/webhooks`: the webhooks and a form for a new one.
pub async fn list(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let catalog = app.catalog();
    let hooks: Vec<Json> = catalog
        .docs()
        .webhooks
        .values()
        .map(|h| {
            let entity = catalog.entity(h.entity.as_str()).map_or(h.entity.to_string(), |e| e.def.label.get(viewer.locale).to_owned());
            let events: Vec<String> =
                h.events.iter().map(|e| viewer.text(&format!("webhooks.event_{}", e.as_str()))).collect();
            json!({"name": h.name, "label": h.label.get(viewer.locale), "entity": entity, "events": events.join("、"), "url": h.url, "enabled": h.enabled})
        })
        .collect();
    let new = json!({"enabled": true, "events": ["created", "updated"]});
    let values = json!({"hooks": hooks, "events": events(&viewer, &new), "entities": entities(&app, &viewer)});
    html("studio_webhooks.html", viewer.page(&catalog, None, &viewer.text("webhooks.title"), values))
}

async fn page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    doc: &Json,
    errors: Vec<String>,
    secret: Option<String>,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let log = super::deliveries(app, &viewer.principal, name, 50).await?;
    let deliveries: Vec<Json> = log["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let last = d["attempt_log"].as_array().and_then(|a| a.last()).cloned().unwrap_or(Json::Null);
            let at = |v: &Json| {
                v.as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M:%S").to_string())
            };
            json!({
                "id": d["id"],
                "event": viewer.text(&format!("webhooks.event_{}", d["event"].as_str().unwrap_or_default())),
                "record": format!("/e/{}/{}", d["entity"].as_str().unwrap_or_default(), d["record_id"].as_str().unwrap_or_default()),
                "status": d["status"],
                "status_label": viewer.text(&format!("webhooks.status_{}", d["status"].as_str().unwrap_or_default())),
                "attempts": d["attempts"],
                "created_at": at(&d["created_at"]),
                "next_at": at(&d["next_at"]),
                "code": last["status_code"],
                "answer": last["answer"],
                "ms": last["duration_ms"],
            })
        })
        .collect();
    let values = json!({
        "name": name,
        "doc": doc,
        "filter": doc.get("filter").map(|f| serde_json::to_string_pretty(f).unwrap_or_default()),
        "events": events(viewer, doc),
        "entities": entities(app, viewer),
        "deliveries": deliveries,
        "secret_set": log["secret_set"],
        "secret": secret,
        "errors": errors,
    });
    let title = doc["label"][viewer.locale].as_str().unwrap_or(name).to_owned();
    html("studio_webhook.html", viewer.page(&app.catalog(), None, &title, values))
}

/// `GET /studio/webhooks/{name}`
pub async fn show(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    let doc = app
        .catalog()
        .docs()
        .get_json(DocKind::Webhook, &name)
        .ok_or_else(|| ApiError::not_found(format!("no webhook `{name}`")))?;
    page(&app, &viewer, &name, &doc, Vec::new(), None).await
}

/// The document as the form posts it.
fn posted_doc(form: &Posted, name: &str) -> Result<Json, String> {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut doc = Map::new();
    doc.insert("name".into(), json!(name));
    let label = |key: &str| text(key).unwrap_or_else(|| name.to_owned());
    doc.insert("label".into(), json!({"zh-CN": label("label_zh"), "en": label("label_en")}));
    doc.insert("entity".into(), json!(text("entity").unwrap_or_default()));
    let ticked: Vec<&str> = WebhookEvent::ALL
        .iter()
        .map(|e| e.as_str())
        .filter(|e| form.get(&format!("event.{e}")) == Some("true"))
        .collect();
    doc.insert("events".into(), json!(ticked));
    doc.insert("url".into(), json!(text("url").unwrap_or_default()));
    if let Some(filter) = text("filter") {
        let parsed: Json = serde_json::from_str(&filter).map_err(|e| format!("filter: {e}"))?;
        doc.insert("filter".into(), parsed);
    }
    if form.get("enabled") != Some("true") {
        doc.insert("enabled".into(), json!(false));
    }
    Ok(Json::Object(doc))
}

/// `POST /studio/webhooks` (a new one, named by the form) and `POST /studio/webhooks/{name}`.
pub async fn save(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    save_named(&app, &viewer, &name, &form).await
}

/// `POST /studio/webhooks/{name}`
pub async fn update(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    save_named(&app, &viewer, &name, &form).await
}

async fn save_named(app: &App, viewer: &Viewer, name: &str, form: &Posted) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let doc = match posted_doc(form, name) {
        Ok(doc) => doc,
        Err(e) => return Ok(unprocessable(page(app, viewer, name, &json!({"name": name}), vec![e], None).await?)),
    };
    match crate::metadata::put_document(app, Some(viewer.principal.user_id), DocKind::Webhook, name, &doc).await {
        Ok(_) => Ok(redirect_with(&format!("{PATH}/{name}"), Some(&viewer.text("studio.applied")))),
        Err(ApiError::InvalidMetadata(errors)) => {
            let said = errors.iter().map(ToString::to_string).collect();
            Ok(unprocessable(page(app, viewer, name, &doc, said, None).await?))
        }
        Err(ApiError::BadRequest { message, .. }) => {
            Ok(unprocessable(page(app, viewer, name, &doc, vec![message], None).await?))
        }
        Err(e) => Err(e),
    }
}

/// `POST /studio/webhooks/{name}/secret`: a new secret, shown on the page this once.
pub async fn new_secret(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    let made = super::new_secret(&app, &viewer.principal, &name).await?;
    let doc = app.catalog().docs().get_json(DocKind::Webhook, &name).unwrap_or_default();
    page(&app, &viewer, &name, &doc, Vec::new(), made["secret"].as_str().map(str::to_owned)).await
}

/// `POST /studio/webhooks/{name}/deliveries/{id}/redeliver`
pub async fn redeliver(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((name, id)): ApiPath<(String, String)>,
    _: Posted,
) -> ApiResult<Response> {
    super::redeliver(&app, &viewer.principal, &name, &id).await?;
    Ok(redirect_with(&format!("{PATH}/{name}"), Some(&viewer.text("webhooks.redelivered"))))
}

/// `POST /studio/webhooks/{name}/delete`
pub async fn remove(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    super::remove(&app, &viewer.principal, &name).await?;
    Ok(redirect_with(PATH, Some(&viewer.text("webhooks.removed"))))
}
