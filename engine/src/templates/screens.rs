//! The studio's template gallery (行业模板): the templates shipped, what each brings, and
//! for one its plan over the live metadata — what it adds, changes, keeps and where it
//! conflicts with what is here, each conflict chosen on the page — then install, upgrade or
//! removal.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use crm_model::threeway::{Action, Choice, Step};
use crm_store::packages;
use serde_json::{Value as Json, json};

use super::{install, names, preview, remove, shipped, template, version_order};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::ApiPath;
use crate::package::Package;
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable};

const PATH: &str = "/studio/templates";

fn labels(viewer: &Viewer, value: &Json) -> String {
    value[viewer.locale].as_str().or_else(|| value["zh-CN"].as_str()).unwrap_or_default().to_owned()
}

/// A template as a card: its words in the viewer's language, and where it stands here.
fn card(viewer: &Viewer, package: &Package, installed: Option<&packages::Installed>) -> Json {
    let manifest = &package.manifest;
    let features: Vec<String> =
        manifest["features"].as_array().into_iter().flatten().map(|f| labels(viewer, f)).collect();
    let status = match installed {
        None => "available",
        Some(i) if version_order(package.version(), &i.version).is_gt() => "upgrade",
        Some(_) => "installed",
    };
    json!({
        "name": package.name(),
        "label": labels(viewer, &manifest["label"]),
        "summary": labels(viewer, &manifest["summary"]),
        "features": features,
        "version": package.version(),
        "installed": installed.map(|i| i.version.clone()),
        "sample_installed": installed.is_some_and(|i| i.sample_data),
        "status": status,
        "status_label": viewer.text(&format!("templates.status_{status}")),
        "has_sample": !package.sample.is_empty(),
        "sample_records": package.sample.iter().map(|(_, r)| r.len()).sum::<usize>(),
    })
}

/// `GET /studio/templates`: the gallery.
pub async fn gallery(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let installed = packages::all(&app.db).await?;
    let cards: Vec<Json> = names()
        .iter()
        .filter_map(|name| template(name)?.ok())
        .map(|package| card(&viewer, &package, installed.iter().find(|i| i.name == package.name())))
        .collect();
    let title = viewer.text("templates.title");
    html("studio_templates.html", viewer.page(&app.catalog(), None, &title, json!({"templates": cards})))
}

/// One step of a plan in the viewer's words: the document (by its label where it has one),
/// the part and element, and what happens.
fn step_row(viewer: &Viewer, app: &App, package: &Package, step: &Step) -> Json {
    let catalog = app.catalog();
    let entity_label = |name: &str| {
        catalog
            .entity(name)
            .map(|e| e.def.label.get(viewer.locale).to_owned())
            .or_else(|| package.docs.entities.get(name).map(|e| e.label.get(viewer.locale).to_owned()))
    };
    let value = step.theirs.as_ref().or(step.ours.as_ref()).or(step.base.as_ref());
    let own_label = value.map(|v| labels(viewer, &v["label"])).filter(|l| !l.is_empty());
    let doc = match step.item.kind {
        crm_model::DocKind::Entity
        | crm_model::DocKind::Layout
        | crm_model::DocKind::ListView
        | crm_model::DocKind::Related => entity_label(&step.item.doc),
        _ if step.item.part.is_none() => own_label.clone(),
        _ => None,
    }
    .unwrap_or_else(|| step.item.doc.clone());
    let part = step.item.part.as_ref().map(|(part, element)| {
        let element_label = match step.item.kind {
            crm_model::DocKind::Role => entity_label(element),
            _ => own_label.clone(),
        };
        format!(
            "{} · {}",
            viewer.text(&format!("templates.part_{part}")),
            element_label.unwrap_or_else(|| element.clone())
        )
    });
    let action = serde_json::to_value(step.action).unwrap_or_default();
    json!({
        "key": step.key,
        "kind": viewer.text(&format!("templates.kind_{}", step.item.kind.folder())),
        "doc": doc,
        "part": part,
        "action": action,
        "action_label": viewer.text(&format!("templates.action_{}", action.as_str().unwrap_or_default())),
        "conflict": step.action == Action::Conflict,
    })
}

async fn detail_page(
    app: &App,
    viewer: &Viewer,
    package: &Package,
    choices: &BTreeMap<String, Choice>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let installed = packages::get(&app.db, package.name()).await?;
    let (steps, plan, mut errors) = match preview(app, package, choices).await {
        Ok(preview) => {
            let steps: Vec<Json> = preview.steps.iter().map(|s| step_row(viewer, app, package, s)).collect();
            let problems = preview.errors.iter().map(ToString::to_string);
            (steps, preview.plan, errors.into_iter().chain(problems).collect::<Vec<_>>())
        }
        Err(ApiError::InvalidMetadata(problems)) => {
            (Vec::new(), Vec::new(), errors.into_iter().chain(problems.iter().map(ToString::to_string)).collect())
        }
        Err(other) => return Err(other),
    };
    errors.dedup();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _, _) in package.docs.iter_json() {
        *kinds.entry(viewer.text(&format!("templates.kind_{}", kind.folder()))).or_default() += 1;
    }
    let contents: Vec<Json> = kinds.into_iter().map(|(kind, count)| json!({"kind": kind, "count": count})).collect();
    let entities: Vec<String> = package.docs.entities.values().map(|e| e.label.get(viewer.locale).to_owned()).collect();
    let values = json!({
        "template": card(viewer, package, installed.as_ref()),
        "description": package.manifest["description"],
        "contents": contents,
        "entities": entities,
        "steps": steps,
        "plan": plan,
        "errors": errors,
    });
    let title = labels(viewer, &package.manifest["label"]);
    html("studio_template.html", viewer.page(&app.catalog(), None, &title, values))
}

/// `GET /studio/templates/{name}`: what the template brings and its plan here.
pub async fn show(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    let package = shipped(&name)?;
    detail_page(&app, &viewer, &package, &BTreeMap::new(), Vec::new()).await
}

/// The conflicts chosen on the page: `choice:<item>` = `mine` or `theirs`.
fn posted_choices(form: &Posted) -> BTreeMap<String, Choice> {
    form.0
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("choice:")?;
            let choice = match value.as_str() {
                "mine" => Choice::Mine,
                "theirs" => Choice::Theirs,
                _ => return None,
            };
            Some((key.to_owned(), choice))
        })
        .collect()
}

/// `POST /studio/templates/{name}`: installs or upgrades it, with the conflicts as chosen.
pub async fn apply(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let package = shipped(&name)?;
    let choices = posted_choices(&form);
    let sample = form.get("sample_data") == Some("on");
    match install(&app, Some(viewer.principal.user_id), &package, sample, &choices).await {
        Ok(done) => {
            let message = crate::screens::shell::text(
                viewer.locale,
                "templates.installed",
                &[("name", labels(&viewer, &package.manifest["label"])), ("records", done.records.to_string())],
            );
            Ok(redirect_with(&format!("{PATH}/{name}"), Some(&message)))
        }
        Err(ApiError::InvalidMetadata(errors)) => {
            // Unchosen conflicts are on the page, each with its choice: one line says so.
            let (conflicts, other): (Vec<_>, Vec<_>) =
                errors.iter().partition(|e| e.path == crm_model::threeway::CONFLICT);
            let mut errors: Vec<String> = other.iter().map(ToString::to_string).collect();
            if !conflicts.is_empty() {
                errors.insert(0, viewer.text("templates.choose_conflicts"));
            }
            detail_page(&app, &viewer, &package, &choices, errors).await.map(unprocessable)
        }
        Err(other) => Err(other),
    }
}

/// `POST /studio/templates/{name}/remove`: archives what it brought.
pub async fn remove_template(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let package = shipped(&name)?;
    remove(&app, Some(viewer.principal.user_id), &name).await?;
    let message = crate::screens::shell::text(
        viewer.locale,
        "templates.removed",
        &[("name", labels(&viewer, &package.manifest["label"]))],
    );
    Ok(redirect_with(&format!("{PATH}/{name}"), Some(&message)))
}
