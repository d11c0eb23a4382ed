//! Forecast snapshots (SA-4): once a week the open opportunities' forecast — per owner and
//! month of expected close: how many, their amount and their amount weighted by stage — is
//! kept as `forecast_snapshot` records, so a manager sees how a quarter's forecast moved week
//! by week (a report of snapshots grouped by week). Written as the system through the one
//! save path, once per week on one node; each snapshot keeps the opportunity's owner, so
//! every user reads the snapshots of the deals they could read.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use crm_model::Value;
use crm_model::report::{self, ReportDoc};
use crm_store::aggregate::{self, Measured};
use crm_store::system;
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{Source, Unit};
use crate::schedule::business_offset;

/// The entity snapshots are kept in.
pub const ENTITY: &str = "forecast_snapshot";

/// The key under which the schedule remembers the last week taken.
const JOB: &str = "job.forecast_snapshot";

/// Takes this week's snapshot if no node has yet (the week starts Monday 06:00, China time);
/// returns how many snapshot records were written.
pub async fn take_due(app: &App, now: DateTime<Utc>) -> ApiResult<usize> {
    let catalog = app.catalog();
    if catalog.entity(ENTITY).is_none() || catalog.entity("opportunity").is_none() {
        return Ok(0);
    }
    let local = now.with_timezone(&business_offset());
    let monday = local.date_naive() - Duration::days(i64::from(local.weekday().num_days_from_monday()));
    let start =
        monday.and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("a time")).and_local_timezone(business_offset());
    let start = start.single().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no week start")))?;
    let (week, slot) =
        if local < start { (monday - Duration::days(7), start - Duration::days(7)) } else { (monday, start) };
    if !system::claim_scheduled_run(&app.db, JOB, slot.with_timezone(&Utc)).await? {
        return Ok(0);
    }
    take(app, week).await
}

/// The forecast as of `week`: one record per owner and month of expected close.
pub async fn take(app: &App, week: NaiveDate) -> ApiResult<usize> {
    let catalog = app.catalog();
    let system = Principal::system(&catalog);
    let entity = system.entity(&catalog, "opportunity", crm_model::Action::Read)?;
    // Open stages are those neither won nor lost: a probability strictly between 0 and 100.
    let open: Vec<String> = entity
        .live_fields()
        .find(|f| f.field_type == crm_model::FieldType::Stage)
        .map(|stage| {
            catalog
                .stage_sets_of(stage)
                .into_iter()
                .flat_map(|set| &set.stages)
                .filter(|s| s.probability > 0 && s.probability < 100)
                .map(|s| s.name.to_string())
                .collect()
        })
        .unwrap_or_default();
    if open.is_empty() {
        return Ok(0);
    }
    let doc: ReportDoc = serde_json::from_value(json!({
        "name": ENTITY,
        "label": {"zh-CN": "预测快照", "en": "Forecast snapshot"},
        "entity": entity.name(),
        "filter": {"field": "stage", "op": "in", "value": open},
        "group_by": [{"field": "owner"}, {"field": "expected_close", "bucket": "month"}],
        "measures": [{"agg": "count"}, {"agg": "sum", "field": "amount"}, {"agg": "weighted", "field": "amount"}],
    }))
    .map_err(|e| ApiError::Internal(e.into()))?;
    let now = Utc::now().with_timezone(&business_offset());
    let compiled = report::compile(&catalog, &doc, &|_| Default::default(), None, now)?;
    let groups = aggregate::run(&app.db, entity, &compiled).await?;
    let amount = |m: &Measured| match m {
        Measured::Number { units, scale } => json!(crm_model::value::format_fixed(*units, *scale)),
        _ => Json::Null,
    };
    let rows: Vec<Json> = groups
        .iter()
        .filter_map(|g| {
            // Deals without an owner or a close date have no place in a forecast by month.
            let (Value::Uuid(owner), Value::Text(month)) = (&g.keys[0], &g.keys[1]) else { return None };
            let deals = match g.measures[0] {
                Measured::Count(n) => n,
                _ => 0,
            };
            Some(json!({
                "week": week.to_string(), "close_month": format!("{month}-01"), "owner": owner,
                "deals": deals, "amount": amount(&g.measures[1]), "weighted_amount": amount(&g.measures[2]),
            }))
        })
        .collect();
    let mut unit = Unit::new(app, &system, Source::Schedule).await?;
    for chunk in rows.chunks(crate::records::MAX_IMPORT) {
        unit.create_many(ENTITY, chunk).await?;
    }
    unit.commit().await?;
    tracing::info!(week = %week, records = rows.len(), "took the forecast snapshot");
    Ok(rows.len())
}
