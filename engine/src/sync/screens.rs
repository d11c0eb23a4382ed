//! The studio's ERP sync (ERP 同步): the connections (an address set, checked by connecting,
//! shown without its password), the mappings with their latest run, and one mapping: its
//! document (JSON, checked on save as through the API), runs started by hand (a run, a dry
//! run, a full compare) with their progress, and a run's failed rows and, for a dry run,
//! what it would change.

use axum::extract::State;
use axum::response::Response;
use crm_model::DocKind;
use crm_store::sync::Run;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{Options, Trigger};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiPath, ApiQuery};
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable};

const PATH: &str = "/studio/sync";

fn at(viewer: &Viewer, time: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    time.map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A run as a row of the screens: its labels in the viewer's language.
fn run_row(viewer: &Viewer, run: &Run) -> Json {
    json!({
        "id": run.id,
        "status": run.status,
        "status_label": viewer.text(&format!("sync.status_{}", run.status)),
        "trigger": viewer.text(&format!("sync.trigger_{}", run.trigger)),
        "dry_run": run.dry_run,
        "full": run.full,
        "started_at": at(viewer, Some(run.started_at)),
        "finished_at": at(viewer, run.finished_at),
        "counts": run.counts,
        "message": run.message,
    })
}

/// `GET /studio/sync`: the connections and the mappings.
pub async fn list(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    list_page(&app, &viewer, Vec::new()).await
}

async fn list_page(app: &App, viewer: &Viewer, errors: Vec<String>) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let catalog = app.catalog();
    let mut mappings = Vec::new();
    for sync in catalog.docs().syncs.values() {
        let last = crm_store::sync::runs(&app.db, sync.name.as_str(), 1).await?;
        let entity = catalog
            .entity(sync.entity.as_str())
            .map_or(sync.entity.to_string(), |e| e.def.label.get(viewer.locale).to_owned());
        let direction = serde_json::to_value(sync.direction).unwrap_or_default();
        mappings.push(json!({
            "name": sync.name,
            "label": sync.label.get(viewer.locale),
            "entity": entity,
            "direction": viewer.text(&format!("sync.direction_{}", direction.as_str().unwrap_or_default())),
            "table": sync.table,
            "schedule": sync.schedule,
            "enabled": sync.enabled,
            "last": last.first().map(|r| run_row(viewer, r)),
        }));
    }
    let values =
        json!({"mappings": mappings, "connections": super::connections(app, &catalog).await?, "errors": errors});
    html("studio_sync.html", viewer.page(&catalog, None, &viewer.text("sync.title"), values))
}

/// `POST /studio/sync/connections/{name}`: its address, checked by connecting.
pub async fn connect(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let url = form.get("url").unwrap_or_default();
    match super::set_connection(&app, &viewer.principal, &name, url).await {
        Ok(_) => Ok(redirect_with(PATH, Some(&viewer.text("sync.connected")))),
        Err(ApiError::Upstream { message, .. }) => {
            let said = format!("{}{message}", viewer.text("sync.unreachable"));
            Ok(unprocessable(list_page(&app, &viewer, vec![said]).await?))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shown {
    run: Option<String>,
}

/// `GET /studio/sync/{name}?run=`: a mapping, its runs, and one run's rows.
pub async fn show(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    ApiQuery(shown): ApiQuery<Shown>,
) -> ApiResult<Response> {
    let doc = app.catalog().docs().get_json(DocKind::Sync, &name);
    let doc = doc.ok_or_else(|| ApiError::not_found(format!("no sync mapping `{name}`")))?;
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    page(&app, &viewer, &name, &doc, &text, shown.run.as_deref(), Vec::new()).await
}

async fn page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    doc: &Json,
    text: &str,
    run: Option<&str>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let runs = super::runs(app, &viewer.principal, name, 20).await?;
    let chosen = match run {
        Some(id) => Some(super::run_of(app, &viewer.principal, id).await?),
        None => runs.first().cloned(),
    };
    let values = json!({
        "name": name,
        "doc": text,
        "runs": runs.iter().map(|r| run_row(viewer, r)).collect::<Vec<_>>(),
        "run": chosen.as_ref().map(|r| json!({"row": run_row(viewer, r), "errors": r.errors, "changes": r.changes})),
        "running": runs.iter().any(|r| r.status == "running"),
        "errors": errors,
    });
    let title = doc["label"][viewer.locale].as_str().unwrap_or(name).to_owned();
    html("studio_sync_mapping.html", viewer.page(&app.catalog(), None, &title, values))
}

/// `POST /studio/sync/{name}`: the mapping's document, saved through the metadata service.
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let text = form.get("doc").unwrap_or_default().to_owned();
    let refused = |errors: Vec<String>| async {
        let doc = json!({"name": name});
        Ok(unprocessable(page(&app, &viewer, &name, &doc, &text, None, errors).await?))
    };
    let doc: Json = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(e) => return refused(vec![format!("{}{e}", viewer.text("sync.not_json"))]).await,
    };
    match crate::metadata::put_document(&app, Some(viewer.principal.user_id), DocKind::Sync, &name, &doc).await {
        Ok(_) => Ok(redirect_with(&format!("{PATH}/{name}"), Some(&viewer.text("studio.applied")))),
        Err(ApiError::InvalidMetadata(errors)) => refused(errors.iter().map(ToString::to_string).collect()).await,
        Err(ApiError::BadRequest { message, .. }) => refused(vec![message]).await,
        Err(e) => Err(e),
    }
}

/// `POST /studio/sync/{name}/run` with `mode` = `run`, `dry_run` or `full`: started in the
/// background; the page shows it going.
pub async fn start(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let mode = form.get("mode").unwrap_or("run");
    let options = Options {
        full: mode == "full",
        dry_run: mode == "dry_run",
        trigger: Trigger::Manual,
        by: Some(viewer.principal.user_id),
    };
    match super::start(&app, &viewer.principal, &name, options, false).await {
        Ok(run) => Ok(redirect_with(&format!("{PATH}/{name}?run={}", run.id), Some(&viewer.text("sync.started")))),
        Err(ApiError::AlreadyDone { .. }) => {
            Ok(redirect_with(&format!("{PATH}/{name}"), Some(&viewer.text("sync.busy"))))
        }
        Err(e) => Err(e),
    }
}
