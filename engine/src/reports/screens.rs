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
use crate::http::extract::ApiPath;
use crate::screens::{Posted, Viewer, html, redirect_with, shell};

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
    super::xlsx::download(&result, viewer.locale)
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

/// A report's result as a table: the column headings (groups, then measures, then a stage's
/// average days in it when the result carries them) and the cells of each row, in `locale`; a
/// measure's cell links to the records behind its row.
pub fn table(result: &Json, locale: &str) -> (Vec<String>, Vec<Vec<Json>>) {
    let text = |labels: &Json| labels[locale].as_str().unwrap_or_default().to_owned();
    let number = |value: &Json| {
        let shown = match value {
            Json::Null => "—".to_owned(),
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        json!({"text": shown, "number": true})
    };
    let result_rows = result["rows"].as_array().into_iter().flatten();
    let days = result_rows.clone().any(|row| row.get("days_in_stage").is_some());
    let mut columns: Vec<String> =
        result["groups"].as_array().into_iter().flatten().map(|g| text(&g["label"])).collect();
    columns.extend(result["measures"].as_array().into_iter().flatten().map(|m| text(&m["label"])));
    if days {
        columns.push(shell::text(locale, "reports.days_in_stage", &[]));
    }
    let rows = result_rows
        .map(|row| {
            let keys =
                row["labels"].as_array().into_iter().flatten().map(|l| json!({"text": text(l), "number": false}));
            let href = super::drill_href(result, row);
            let values = row["values"].as_array().into_iter().flatten().map(|v| {
                let mut cell = number(v);
                cell["href"] = json!(href);
                cell
            });
            keys.chain(values).chain(days.then(|| number(&row["days_in_stage"]))).collect()
        })
        .collect();
    (columns, rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::table;

    #[test]
    fn a_stage_report_has_a_column_of_days_in_stage() {
        let stage = json!({"zh-CN": "方案报价", "en": "Proposal"});
        let mut result = json!({
            "groups": [{"label": {"zh-CN": "销售阶段", "en": "Stage"}}],
            "measures": [{"label": {"zh-CN": "数量", "en": "Count"}}],
            "rows": [{"keys": ["proposal"], "labels": [stage], "values": [3]}],
        });
        let (columns, rows) = table(&result, "zh-CN");
        assert_eq!((columns.len(), rows[0].len()), (2, 2), "no days, no column");
        for (days, shown) in [(json!("3.5"), "3.5"), (json!(null), "—")] {
            result["rows"][0]["days_in_stage"] = days;
            let (columns, rows) = table(&result, "zh-CN");
            assert_eq!(columns, ["销售阶段", "数量", "平均停留天数"]);
            assert_eq!(rows[0][2], json!({"text": shown, "number": true}));
        }
        assert_eq!(table(&result, "en").0[2], "Avg. days in stage");
    }
}
