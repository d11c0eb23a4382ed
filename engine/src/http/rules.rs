//! Handlers of stage moves and their history, approvals, conversions (leads, quotes), the
//! dry run of a rule, and the reminders inbox.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use crm_model::{Action, FieldType};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use uuid::Uuid;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::records;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    stage: String,
    /// The stage field, when the entity has several.
    field: Option<String>,
    /// The version the client read; without it the move applies to the current version.
    version: Option<i64>,
}

/// `POST /api/v1/records/{entity}/{id}/stage`: moves a record to a stage (forward, back or
/// skipping stages), with the same checks as any save plus the stage's own.
pub async fn move_stage(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<StageMove>,
) -> ApiResult<Json<records::RecordOut>> {
    let catalog = app.catalog();
    let def = p.entity(&catalog, &entity, Action::Edit)?;
    let field = match &body.field {
        Some(name) => def.field(name).filter(|f| f.field_type == FieldType::Stage),
        None => def.live_fields().find(|f| f.field_type == FieldType::Stage),
    }
    .ok_or_else(|| ApiError::bad_request("invalid_body", format!("`{entity}` has no such stage field")))?;
    let version = match body.version {
        Some(version) => version,
        None => {
            let current = serde_json::to_value(records::get(&app, &p, &entity, &id, Some("version")).await?)
                .map_err(|e| ApiError::Internal(e.into()))?;
            current["version"].as_i64().unwrap_or_default()
        }
    };
    let change = json!({ field.name.as_str(): body.stage, "version": version });
    Ok(Json(records::update(&app, &p, records::Source::Api, &entity, &id, &change).await?))
}

/// `GET /api/v1/records/{entity}/{id}/stage-history`: the record's moves, oldest first, with
/// who moved it and how long it had been in the stage it left.
pub async fn stage_history(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Json_>> {
    // Reading the record first applies the caller's scope: no record, no history.
    records::get(&app, &p, &entity, &id, Some("id")).await?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found(format!("no {entity} `{id}`")))?;
    let rows = crm_store::system::stage_history(&app.db, &entity, id).await?;
    Ok(Json(json!({ "data": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// submit, approve, reject or recall.
    action: String,
    comment: Option<String>,
}

/// `POST /api/v1/records/{entity}/{id}/approval`: one step of the record's approval.
pub async fn approve(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ApprovalStep>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::approval::act(&app, &p, &entity, &id, &body.action, body.comment.as_deref()).await?))
}

/// `GET /api/v1/records/{entity}/{id}/approvals`: the record's approval steps, oldest first.
pub async fn approvals(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::approval::steps(&app, &p, &entity, &id).await?))
}

/// `POST /api/v1/leads/convert`: leads to customer, contact and opportunity; a result per lead.
pub async fn convert_leads(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<crate::convert::lead::Conversion>,
) -> ApiResult<Json<Json_>> {
    let results = crate::convert::lead::convert(&app, &p, &body).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/quotes/{id}/order`: the quote becomes an order with its lines; 201 with it.
pub async fn convert_quote(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<records::RecordOut>)> {
    Ok((StatusCode::CREATED, Json(crate::convert::quote::to_order(&app, &p, &id).await?)))
}

/// `POST /api/v1/meta/scripts/{name}/dry-run` with `{"id": ...}` and/or `{"record": {...}}`.
pub async fn dry_run(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::rules::dry_run(&app, &p, &name, &body).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderParams {
    /// `today` (due today, not before), `overdue` (due before today), or both by default.
    when: Option<String>,
}

/// `GET /api/v1/reminders`: the caller's open reminders due by the end of today.
pub async fn reminders(
    State(app): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ReminderParams>,
) -> ApiResult<Json<Json_>> {
    let now = app.now();
    let offset = crate::schedule::business_offset();
    let start_of_day = now
        .with_timezone(&offset)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(offset).single())
        .map_or(now, |t| t.with_timezone(&Utc));
    let end_of_day = start_of_day + TimeDelta::days(1);
    let open = crm_store::system::open_reminders(&app.db, p.user_id, end_of_day).await?;
    let keep = |overdue: bool| match q.when.as_deref() {
        Some("today") => !overdue,
        Some("overdue") => overdue,
        _ => true,
    };
    if let Some(when) = q.when.as_deref().filter(|w| !matches!(*w, "today" | "overdue")) {
        return Err(ApiError::bad_request("invalid_query", format!("`when` is today or overdue, not `{when}`")));
    }
    let data: Vec<Json_> = open
        .into_iter()
        .map(|r| {
            let overdue = r.due_at.is_some_and(|d| d < start_of_day);
            (overdue, r)
        })
        .filter(|(overdue, _)| keep(*overdue))
        .map(|(overdue, r)| {
            let mut json = serde_json::to_value(&r).unwrap_or_default();
            json["overdue"] = Json_::Bool(overdue);
            // A message kept in both languages: the Chinese text, and each language's.
            if let Ok(labels) = serde_json::from_str::<crm_model::Labels>(&r.message) {
                json["message"] = Json_::String(labels.zh_cn.clone());
                json["messages"] = json!(labels);
            }
            json
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/v1/reminders/{id}/done`
pub async fn finish_reminder(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    if !crm_store::system::finish_reminder(&app.db, p.user_id, id, app.now()).await? {
        return Err(ApiError::not_found(format!("no open reminder `{id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}
