//! The service supervisor's view of the desk (`/service/workload`, 服务工作量): per owner of
//! service requests, how many are open, how many of those are past their resolution target,
//! how many were resolved this week and how long resolving took on average. Counted by the
//! records' grouped counts, so each viewer sees the requests of their own read scope.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use chrono::{Datelike, NaiveTime, TimeDelta};
use crm_model::Action;
use crm_model::meta::StageCategory;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::view::titles;
use super::{Viewer, html};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::records;

const SERVICE_REQUEST: &str = "service_request";
/// The stage field of a request: its open stages are the requests still being worked on.
const STATUS: &str = "status";

/// One owner's line.
#[derive(Default)]
struct Line {
    open: i64,
    overdue: i64,
    resolved: i64,
    /// The hours resolving took, summed.
    hours: Option<f64>,
}

/// `GET /service/workload`
pub async fn page(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let p = &viewer.principal;
    let catalog = app.catalog();
    let entity = p.entity(&catalog, SERVICE_REQUEST, Action::Read)?;
    // Open is what the stage set says, so a stage an administrator adds counts too.
    let open: Vec<&str> = entity
        .column(STATUS)
        .map(|f| catalog.stage_sets_of(f))
        .unwrap_or_default()
        .into_iter()
        .flat_map(|set| set.stages.iter())
        .filter(|s| s.category == StageCategory::Open)
        .map(|s| s.name.as_str())
        .collect();
    let now = app.now();
    let local = now.with_timezone(&viewer.offset);
    let monday = local.date_naive() - TimeDelta::days(i64::from(local.weekday().num_days_from_monday()));
    let week = monday.and_time(NaiveTime::MIN).and_local_timezone(viewer.offset).single().map_or(now, |t| t.to_utc());
    let open = json!({"field": STATUS, "op": "in", "value": open});
    let overdue = json!({"and": [open, {"field": "resolution_due_at", "op": "lt", "value": now.to_rfc3339()}]});
    let resolved = json!({"field": "resolved_at", "op": "gte", "value": week.to_rfc3339()});
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    let count = async |filter: &Json, sum: Option<&str>| {
        let filter = filter.to_string();
        let groups = records::groups(&app, p, SERVICE_REQUEST, "owner", sum, Some(&filter)).await?;
        let rows = groups["groups"].as_array().cloned().unwrap_or_default();
        ApiResult::Ok(rows)
    };
    for row in count(&open, None).await? {
        lines.entry(owner_of(&row)).or_default().open = row["count"].as_i64().unwrap_or(0);
    }
    for row in count(&overdue, None).await? {
        lines.entry(owner_of(&row)).or_default().overdue = row["count"].as_i64().unwrap_or(0);
    }
    for row in count(&resolved, Some("resolution_hours")).await? {
        let line = lines.entry(owner_of(&row)).or_default();
        line.resolved = row["count"].as_i64().unwrap_or(0);
        line.hours = row["sum"].as_str().and_then(|s| s.parse::<f64>().ok());
    }
    let ids: HashSet<Uuid> = lines.keys().filter_map(|id| Uuid::parse_str(id).ok()).collect();
    let names = titles(&app, p, HashMap::from([(crm_model::USER_ENTITY.to_owned(), ids)])).await?;
    let mut rows: Vec<Json> = lines
        .iter()
        .map(|(owner, line)| {
            let name = Uuid::parse_str(owner).ok().and_then(|id| names.get(&id).cloned());
            // An average for reading, not for sums: a float at one decimal is exact enough.
            let average =
                line.hours.filter(|_| line.resolved > 0).map(|sum| format!("{:.1}", sum / line.resolved as f64));
            json!({
                "owner": name.unwrap_or_else(|| viewer.text("workload.nobody")),
                "open": line.open,
                "overdue": line.overdue,
                "resolved": line.resolved,
                "average": average,
            })
        })
        .collect();
    // The busiest first: what is late, then what is open.
    rows.sort_by_key(|r| (-r["overdue"].as_i64().unwrap_or(0), -r["open"].as_i64().unwrap_or(0)));
    let title = viewer.text("workload.title");
    html("workload.html", viewer.page(&catalog, Some(SERVICE_REQUEST), &title, json!({"rows": rows})))
}

fn owner_of(row: &Json) -> String {
    row["value"].as_str().unwrap_or_default().to_owned()
}
