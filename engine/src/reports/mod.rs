//! Reports: a saved report (metadata) or an ad hoc one, compiled against the caller's fields
//! and read scope — the same predicates a list of the entity uses — and run as one
//! `GROUP BY` in the database. A rep's report counts only what the rep may read, and a
//! field hidden from them can be neither a group nor a measure.

pub mod builder;
pub mod chart;
pub mod saved;
pub mod screens;
pub mod snapshot;
mod stages;
pub mod xlsx;

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};

use crm_model::report::{self, Agg, Aggregate, ReportDoc};
use crm_model::{Action, Catalog, FieldDef, Ident, Storage, Value, value};
use crm_store::aggregate::{self, GroupRow, Measured};
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::screens::view::{Wanted, titles};

/// Whether a caller may run a saved report: one of an entity they see, and for those who are
/// not administrators, shared with one of their roles.
pub fn may_run(principal: &Principal, doc: &ReportDoc) -> bool {
    principal.sees(doc.entity.as_str())
        && (principal.is_admin() || doc.roles.iter().any(|role| principal.roles.iter().any(|r| r == role.as_str())))
}

/// A report of metadata by name, if the caller may run it.
pub fn shared(catalog: &Catalog, principal: &Principal, name: &str) -> ApiResult<ReportDoc> {
    catalog
        .docs()
        .reports
        .get(name)
        .filter(|doc| may_run(principal, doc))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no report `{name}`")))
}

/// Runs a report for the caller; date-times fall into the buckets of their offset from UTC,
/// and a period is counted from their today. A single number carries the figure of the
/// period before as `previous`, for its change.
pub async fn run(app: &App, principal: &Principal, doc: &ReportDoc, offset_minutes: i32) -> ApiResult<Json> {
    let offset = FixedOffset::east_opt(offset_minutes * 60)
        .ok_or_else(|| ApiError::bad_request("invalid_query", "`offset` is minutes from UTC, -840 to 840"))?;
    let now = app.now().with_timezone(&offset);
    let mut result = run_at(app, principal, doc, now).await?;
    if doc.chart == report::Chart::Number
        && let Some(previous) = doc.previous_period()
    {
        let before = run_at(app, principal, &previous, now).await?;
        result["previous"] = before["total"].clone();
    }
    Ok(result)
}

async fn run_at(app: &App, principal: &Principal, doc: &ReportDoc, now: DateTime<FixedOffset>) -> ApiResult<Json> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, doc.entity.as_str(), Action::Read)?;
    let tree = app.departments().await?;
    let hidden = |name: &str| -> HashSet<Ident> {
        if name == entity.name().as_str() || principal.sees(name) {
            principal.hidden(name).clone()
        } else {
            // An entity the caller does not see has no field they may group by.
            catalog.entity(name).map(|e| e.live_fields().map(|f| f.name.clone()).collect()).unwrap_or_default()
        }
    };
    let scope = principal.read_scope(&tree, entity);
    let compiled = report::compile(&catalog, doc, &hidden, scope, now)?;
    // The same statement with the same scope gives the same groups until the next write.
    let key = aggregate::statement(app.db.dialect(), entity, &compiled).cache_key();
    let rows = app
        .report_groups
        .get_or(key, || async { Ok(std::sync::Arc::new(aggregate::run(&app.db, entity, &compiled).await?)) })
        .await?;
    let labels = key_labels(app, principal, &catalog, &compiled, &rows).await?;
    let total = first_total(&rows);
    let period = doc.period.as_ref().map(|p| {
        let (from, until) = p.range.range(now.date_naive());
        json!({"field": p.field, "range": p.range, "from": from, "until": until})
    });
    let mut result = json!({
        "name": doc.name,
        "label": doc.label,
        "entity": doc.entity,
        "chart": doc.chart,
        "period": period,
        "total": total,
        "groups": compiled.groups.iter().map(|g| json!({"field": g.field.name, "label": g.field.label, "bucket": g.bucket})).collect::<Vec<_>>(),
        "measures": doc.measures.iter().zip(&compiled.measures).map(|(m, c)| json!({
            "agg": m.agg,
            "field": m.field,
            "label": measure_label(m.agg, c.field.as_ref()),
        })).collect::<Vec<_>>(),
        "rows": rows.iter().map(|row| json!({
            "keys": row.keys.iter().zip(&compiled.groups).map(|(v, g)| key_json(&g.field, v)).collect::<Vec<_>>(),
            "labels": row.keys.iter().zip(&compiled.groups).map(|(v, g)| labels(&g.field, v)).collect::<Vec<_>>(),
            "values": row.measures.iter().map(measured_json).collect::<Vec<_>>(),
            "filter": report::drill(doc, entity, &compiled.groups, &row.keys, now),
        })).collect::<Vec<_>>(),
    });
    stages::add_days(app, entity, &compiled, &mut result).await?;
    Ok(result)
}

/// The list of the records behind a row of a report's result (its `filter`), if it has one.
pub fn drill_href(result: &Json, row: &Json) -> Option<String> {
    let entity = result["entity"].as_str()?;
    let filter = row.get("filter").filter(|f| !f.is_null())?;
    Some(format!("/e/{entity}?filter={}", crate::screens::encode(&filter.to_string())))
}

/// The first measure summed over every group: what a single number shows. A count adds up;
/// a sum of amounts adds up exactly at its scale.
fn first_total(rows: &[GroupRow]) -> Json {
    let mut total: Option<Measured> = None;
    for row in rows {
        total = match (total, row.measures.first()) {
            (None, Some(m)) => Some(*m),
            (Some(Measured::Count(a)), Some(Measured::Count(b))) => Some(Measured::Count(a + b)),
            (Some(Measured::Number { units: a, scale }), Some(Measured::Number { units: b, .. })) => {
                Some(Measured::Number { units: a + b, scale })
            }
            (Some(Measured::Empty), Some(m)) => Some(*m),
            (kept, _) => kept,
        };
    }
    total.map_or(Json::Null, |m| measured_json(&m))
}

fn key_json(field: &FieldDef, value: &Value) -> Json {
    match value {
        Value::Text(text) if field.storage() != Storage::Text => Json::String(text.clone()),
        _ => value::to_json(field, value),
    }
}

/// A measure's value as JSON: a count as a number, an amount as an exact decimal string.
fn measured_json(measured: &Measured) -> Json {
    match measured {
        Measured::Count(n) => json!(n),
        Measured::Number { units, scale } => Json::String(value::format_fixed(*units, *scale)),
        Measured::Empty => Json::Null,
    }
}

/// What a measure is called: `数量` / `Count`, `金额 合计` / `Amount (sum)`.
pub(super) fn measure_label(agg: Agg, field: Option<&FieldDef>) -> Json {
    let (zh, en) = match agg {
        Agg::Count => ("数量", "Count"),
        Agg::Sum => ("合计", "sum"),
        Agg::Avg => ("平均", "average"),
        Agg::Min => ("最小", "minimum"),
        Agg::Max => ("最大", "maximum"),
        Agg::Weighted => ("加权合计", "weighted by stage"),
    };
    match field {
        None => json!({"zh-CN": zh, "en": en}),
        Some(f) => {
            json!({"zh-CN": format!("{}{zh}", f.label.get("zh-CN")), "en": format!("{} ({en})", f.label.get("en"))})
        }
    }
}

/// How each group key reads: an option's or a stage's label in both languages, a
/// referenced record's title (when the caller may read it), the bucket or value as it is.
async fn key_labels(
    app: &App,
    principal: &Principal,
    catalog: &Catalog,
    compiled: &Aggregate,
    rows: &[GroupRow],
) -> ApiResult<impl Fn(&FieldDef, &Value) -> Json> {
    let mut wanted = Wanted::new();
    for (i, group) in compiled.groups.iter().enumerate() {
        if let Some(target) = group.field.reference_target() {
            let ids = rows.iter().filter_map(|r| match &r.keys[i] {
                Value::Uuid(id) => Some(*id),
                _ => None,
            });
            wanted.entry(target.to_owned()).or_default().extend(ids);
        }
    }
    let titles = titles(app, principal, wanted).await?;
    let stages: Vec<(String, Json)> = compiled
        .groups
        .iter()
        .flat_map(|g| catalog.stage_sets_of(&g.field))
        .flat_map(|set| set.stages.iter().map(|s| (s.name.to_string(), json!(s.label))))
        .collect();
    Ok(move |field: &FieldDef, value: &Value| -> Json {
        match value {
            Value::Null => json!({"zh-CN": "（空）", "en": "(none)"}),
            Value::Uuid(id) => titles.get(id).map_or_else(
                || json!({"zh-CN": "（无权查看）", "en": "(not visible)"}),
                |t| json!({"zh-CN": t, "en": t}),
            ),
            Value::Text(text) => field
                .options
                .iter()
                .find(|o| o.value == *text)
                .map(|o| json!(o.label))
                .or_else(|| stages.iter().find(|(name, _)| name == text).map(|(_, label)| label.clone()))
                .unwrap_or_else(|| json!({"zh-CN": text, "en": text})),
            other => {
                let text = match value::to_json(field, other) {
                    Json::String(s) => s,
                    json => json.to_string(),
                };
                json!({"zh-CN": text, "en": text})
            }
        }
    })
}

/// The report an ad hoc request describes, checked against the JSON Schema of reports.
pub fn ad_hoc(body: &Json) -> ApiResult<ReportDoc> {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.entry("name").or_insert_with(|| json!("ad_hoc"));
        object.entry("label").or_insert_with(|| json!({"zh-CN": "临时报表", "en": "Ad hoc report"}));
    }
    let mut docs = crm_model::Docs::default();
    docs.insert_json(crm_model::DocKind::Report, &body).map_err(ApiError::InvalidMetadata)?;
    Ok(docs.reports.into_values().next().expect("just inserted"))
}
