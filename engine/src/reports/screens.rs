//! The report screens: `/reports` lists the reports the viewer may run, `/reports/{name}`
//! shows one as its chart (the server's SVG, an image that needs no JavaScript and prints)
//! and its table, in the viewer's language and time zone.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value as Json, json};

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ApiPath;
use crate::screens::{Viewer, html, shell};

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

/// A report's result as a table: the column headings (groups, then measures, then a stage's
/// average days in it when the result carries them) and the cells of each row, in `locale`.
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
            let values = row["values"].as_array().into_iter().flatten().map(number);
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
