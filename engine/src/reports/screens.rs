//! The report screens: `/reports` lists the reports the viewer may run, `/reports/{name}`
//! shows one as its chart (the server's SVG, an image that needs no JavaScript and prints)
//! and its table, in the viewer's language and time zone.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value as Json, json};

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ApiPath;
use crate::screens::{Viewer, html};

/// `GET /reports`
pub async fn list(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let catalog = app.catalog();
    let reports: Vec<Json> = catalog
        .docs()
        .reports
        .values()
        .filter(|doc| super::may_run(&viewer.principal, doc))
        .map(|doc| {
            let module = catalog.entity(doc.entity.as_str()).map(|e| e.def.label.get(viewer.locale).to_owned());
            json!({"name": doc.name, "label": doc.label.get(viewer.locale), "module": module})
        })
        .collect();
    let title = viewer.text("reports.title");
    html("reports.html", viewer.page(&catalog, Some("reports"), &title, json!({"reports": reports})))
}

/// `GET /reports/{name}`
pub async fn page(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let doc = super::saved(&catalog, &viewer.principal, &name)?;
    let offset = viewer.offset.local_minus_utc() / 60;
    let result = super::run(&app, &viewer.principal, &doc, offset).await?;
    let (columns, rows) = table(&result, viewer.locale);
    let title = doc.label.get(viewer.locale).to_owned();
    // Inline, so the chart takes the page's theme.
    let chart = super::chart::draw(&result, viewer.locale);
    html(
        "report.html",
        viewer.page(&catalog, Some("reports"), &title, json!({"chart": chart, "columns": columns, "rows": rows})),
    )
}

/// A report's result as a table: the column headings (groups, then measures) and the cells
/// of each row, in `locale`.
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
            let keys =
                row["labels"].as_array().into_iter().flatten().map(|l| json!({"text": text(l), "number": false}));
            let values = row["values"].as_array().into_iter().flatten().map(|v| {
                let shown = match v {
                    Json::Null => "—".to_owned(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                json!({"text": shown, "number": true})
            });
            keys.chain(values).collect()
        })
        .collect();
    (columns, rows)
}
