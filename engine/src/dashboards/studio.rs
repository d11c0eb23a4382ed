//! The studio's dashboards: the list, and an editor that arranges a dashboard's widgets in a
//! plain form (order, full width, chart or table, remove, add one) — it works without
//! JavaScript — and saves through the one way metadata changes, so a bad change is refused
//! with its reasons and nothing is written.

use axum::extract::State;
use axum::response::Response;
use crm_model::dashboard::{DashboardDoc, Show, Widget};
use crm_model::{Catalog, DocKind, Ident, Labels};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewQuery {
    /// The name of a dashboard to create.
    new: Option<String>,
}

/// `GET /studio/dashboards[?new=NAME]`
pub async fn list(State(app): State<AppState>, viewer: Viewer, ApiQuery(q): ApiQuery<NewQuery>) -> ApiResult<Response> {
    if let Some(name) = q.new.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        return Ok(redirect_with(&format!("/studio/dashboards/{}", crate::screens::encode(name)), None));
    }
    let catalog = app.catalog();
    let roles = |doc: &DashboardDoc| {
        doc.roles
            .iter()
            .map(|r| catalog.docs().roles.get(r).map_or(r.to_string(), |role| role.label.get(viewer.locale).to_owned()))
            .collect::<Vec<_>>()
            .join("、")
    };
    let dashboards: Vec<Json> = catalog
        .docs()
        .dashboards
        .values()
        .map(|d| json!({"name": d.name, "label": d.label.get(viewer.locale), "roles": roles(d), "widgets": d.widgets.len()}))
        .collect();
    let title = viewer.text("studio.dashboards");
    html("studio_dashboards.html", viewer.page(&catalog, None, &title, json!({"dashboards": dashboards})))
}

/// `GET /studio/dashboards/{name}`
pub async fn editor(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let doc = current(&app, &name)?;
    page(&app, &viewer, &doc, Vec::new())
}

/// `POST /studio/dashboards/{name}`
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let before = current(&app, &name)?;
    let doc = arranged(&app.catalog(), &before, &form);
    let json = serde_json::to_value(&doc).map_err(|e| ApiError::Internal(e.into()))?;
    match crate::metadata::put_document(&app, Some(viewer.principal.user_id), DocKind::Dashboard, &name, &json).await {
        Ok(_) => Ok(redirect_with(&format!("/studio/dashboards/{name}"), Some(&viewer.text("studio.applied")))),
        Err(ApiError::InvalidMetadata(errors)) => {
            page(&app, &viewer, &doc, errors.iter().map(ToString::to_string).collect()).map(unprocessable)
        }
        Err(e) => Err(e),
    }
}

/// The saved dashboard, or a new empty one under a valid name.
fn current(app: &App, name: &str) -> ApiResult<DashboardDoc> {
    if let Some(doc) = app.catalog().docs().dashboards.get(name) {
        return Ok(doc.clone());
    }
    let name = Ident::new(name).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    Ok(DashboardDoc { label: Labels::new(name.as_str(), name.as_str()), name, roles: Vec::new(), widgets: Vec::new() })
}

/// The dashboard as the form arranges it: the kept widgets in their new order, each with its
/// width and, for a report, chart or table; then the one added.
fn arranged(catalog: &Catalog, before: &DashboardDoc, form: &Posted) -> DashboardDoc {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty());
    let checked = |key: String| form.get(&key) == Some("on");
    let mut kept: Vec<(i64, usize, Widget)> = Vec::new();
    for (i, widget) in before.widgets.iter().enumerate() {
        if checked(format!("remove_{i}")) {
            continue;
        }
        let position = text(&format!("pos_{i}")).and_then(|p| p.parse().ok()).unwrap_or(i as i64 + 1);
        let mut widget = widget.clone();
        let wide_now = checked(format!("wide_{i}"));
        match &mut widget {
            Widget::Report { show, wide, .. } => {
                *show = if checked(format!("table_{i}")) { Show::Table } else { Show::Chart };
                *wide = wide_now;
            }
            Widget::List { wide, .. } | Widget::Reminders { wide } => *wide = wide_now,
        }
        kept.push((position, i, widget));
    }
    kept.sort_by_key(|(position, i, _)| (*position, *i));
    let mut widgets: Vec<Widget> = kept.into_iter().map(|(_, _, w)| w).collect();
    if let Some(added) = text("add").and_then(|choice| new_widget(catalog, choice)) {
        widgets.push(added);
    }
    let roles = form.all("role").into_iter().filter_map(|r| Ident::new(r).ok()).collect();
    let label = Labels::new(
        text("label_zh").unwrap_or(before.label.get("zh-CN")),
        text("label_en").unwrap_or(before.label.get("en")),
    );
    DashboardDoc { name: before.name.clone(), label, roles, widgets }
}

/// The widget the "add" choice names: `report:NAME`, `list:ENTITY` or `reminders`.
fn new_widget(catalog: &Catalog, choice: &str) -> Option<Widget> {
    match choice.split_once(':') {
        Some(("report", name)) => {
            Some(Widget::Report { report: Ident::new(name).ok()?, show: Show::Chart, wide: false })
        }
        Some(("list", entity)) => Some(Widget::List {
            label: catalog.entity(entity).map_or_else(|| Labels::new(entity, entity), |e| e.def.label.clone()),
            entity: Ident::new(entity).ok()?,
            filter: None,
            period: None,
            columns: Vec::new(),
            sort: None,
            limit: None,
            wide: false,
        }),
        None if choice == "reminders" => Some(Widget::Reminders { wide: false }),
        _ => None,
    }
}

fn page(app: &App, viewer: &Viewer, doc: &DashboardDoc, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let locale = viewer.locale;
    let report_label =
        |name: &Ident| catalog.docs().reports.get(name).map_or(name.to_string(), |r| r.label.get(locale).to_owned());
    let widgets: Vec<Json> = doc
        .widgets
        .iter()
        .map(|w| match w {
            Widget::Report { report, show, wide } => json!({
                "kind": viewer.text("studio.dashboard_kind_report"), "title": report_label(report),
                "report": true, "table": *show == Show::Table, "wide": wide,
            }),
            Widget::List { label, wide, .. } => json!({
                "kind": viewer.text("studio.dashboard_kind_list"), "title": label.get(locale), "wide": wide,
            }),
            Widget::Reminders { wide } => json!({
                "kind": viewer.text("studio.dashboard_kind_reminders"), "title": viewer.text("reminders.title"), "wide": wide,
            }),
        })
        .collect();
    let roles: Vec<Json> = catalog
        .docs()
        .roles
        .values()
        .map(|r| json!({"name": r.name, "label": r.label.get(locale), "checked": doc.roles.contains(&r.name)}))
        .collect();
    let reports: Vec<Json> =
        catalog.docs().reports.values().map(|r| json!({"name": r.name, "label": r.label.get(locale)})).collect();
    let entities: Vec<Json> =
        catalog.entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(locale)})).collect();
    let title = doc.label.get(locale).to_owned();
    let values = json!({
        "name": doc.name, "label_zh": doc.label.get("zh-CN"), "label_en": doc.label.get("en"),
        "widgets": widgets, "roles": roles, "reports": reports, "entities": entities, "errors": errors,
    });
    html("studio_dashboard.html", viewer.page(&catalog, None, &title, values))
}
