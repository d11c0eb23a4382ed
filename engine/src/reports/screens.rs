//! The report screens: `/reports` lists the reports the viewer may run — those of metadata
//! shared with their roles, then their own and those shared with them — and `/reports/{name}`
//! shows one as its chart (the server's SVG, an image that needs no JavaScript and prints)
//! and its table, in the viewer's language and time zone; both link each figure to the
//! records behind it.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value as Json, json};

use crate::app::AppState;
use crate::error::ApiResult;
use crate::export::FileFormat;
use crate::http::extract::ApiPath;
use crate::http::file_response;
use crate::screens::{Posted, Viewer, html, redirect_with};

/// `GET /reports`
pub async fn list(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let catalog = app.catalog();
    let module = |entity: &str| catalog.entity(entity).map(|e| e.def.label.get(viewer.locale).to_owned());
    let reports: Vec<Json> = catalog
        .docs()
        .reports
        .values()
        .filter(|doc| super::may_run(&viewer.principal, doc))
        .map(|doc| json!({"name": doc.name, "label": doc.label.get(viewer.locale), "module": module(doc.entity.as_str())}))
        .collect();
    let saved: Vec<Json> = super::saved::visible(&app, &viewer.principal)
        .await?
        .iter()
        .map(|found| {
            let doc = &found.doc;
            json!({
                "name": doc.name,
                "label": doc.label.get(viewer.locale),
                "module": module(doc.entity.as_str()),
                "mine": found.saved.as_ref().is_some_and(|s| s.owner == viewer.principal.user_id),
                "shared": !doc.roles.is_empty(),
            })
        })
        .collect();
    let title = viewer.text("reports.title");
    let values = json!({"reports": reports, "saved": saved, "builds": viewer.principal.builds_reports()});
    html("reports.html", viewer.page(&catalog, Some("reports"), &title, values))
}

/// `GET /reports/{name}`
pub async fn page(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let found = super::saved::find(&app, &viewer.principal, &name).await?;
    let offset = viewer.offset.local_minus_utc() / 60;
    let result = super::run(&app, &viewer.principal, &found.doc, offset).await?;
    let (columns, rows) = table(&result, viewer.locale);
    let title = found.doc.label.get(viewer.locale).to_owned();
    // Inline, so the chart takes the page's theme.
    let chart = super::chart::draw(&result, viewer.locale);
    let values = json!({
        "name": name,
        "chart": chart,
        "columns": columns,
        "rows": rows,
        "editable": found.editable_by(&viewer.principal),
    });
    html("report.html", viewer.page(&catalog, Some("reports"), &title, values))
}

/// `GET /reports/{name}/export.xlsx`: the report's table as a workbook.
pub async fn export(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let found = super::saved::find(&app, &viewer.principal, &name).await?;
    let result = super::run(&app, &viewer.principal, &found.doc, viewer.offset.local_minus_utc() / 60).await?;
    let body = super::xlsx::workbook(&result, viewer.locale)?;
    Ok(file_response(body, FileFormat::Xlsx, &super::xlsx::file_name(&result, viewer.locale)))
}

/// `POST /reports/{name}/delete`: deletes a saved report of the viewer's.
pub async fn delete(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    super::saved::delete(&app, &viewer.principal, &name).await?;
    Ok(redirect_with("/reports", Some(&viewer.text("reports.deleted"))))
}

/// A report's result as a table: the column headings (groups, then measures) and the cells
/// of each row, in `locale`; a measure's cell links to the records behind its row.
pub fn table(result: &Json, locale: &str) -> (Vec<String>, Vec<Vec<Json>>) {
    let text = |labels: &Json| labels[locale].as_str().unwrap_or_default().to_owned();
    let mut columns: Vec<String> =
        result["groups"].as_array().into_iter().flatten().map(|g| text(&g["label"])).collect();
    columns.extend(result["measures"].as_array().into_iter().flatten().map(|m| text(&m["label"])));
    let rows = result["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let href = super::drill_href(result, row);
            let keys =
                row["labels"].as_array().into_iter().flatten().map(|l| json!({"text": text(l), "number": false}));
            let values = row["values"].as_array().into_iter().flatten().map(|v| {
                let shown = match v {
                    Json::Null => "—".to_owned(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                json!({"text": shown, "number": true, "href": href})
            });
            keys.chain(values).collect()
        })
        .collect();
    (columns, rows)
}
