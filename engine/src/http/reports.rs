//! Handlers of `/api/v1/reports`: extract, call the report service, respond.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::reports;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// The caller's offset from UTC in minutes (480 in China, the default): date-times fall
    /// into the days, weeks and months of that time zone.
    offset: Option<i32>,
    /// The language of a chart's labels and numbers.
    locale: Option<String>,
}

fn offset_minutes(params: &RunParams) -> ApiResult<i32> {
    match params.offset {
        None => Ok(crate::schedule::business_offset().local_minus_utc() / 60),
        Some(minutes) if (-14 * 60..=14 * 60).contains(&minutes) => Ok(minutes),
        Some(_) => Err(ApiError::bad_request("invalid_query", "`offset` is minutes from UTC, -840 to 840")),
    }
}

/// `GET /api/v1/reports`: the reports the caller may run — those of metadata shared with
/// their roles, then the saved reports they own or that are shared with them.
pub async fn list(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    let catalog = app.catalog();
    let mut data: Vec<Json_> = catalog
        .docs()
        .reports
        .values()
        .filter(|doc| reports::may_run(&p, doc))
        .map(|doc| json!({"name": doc.name, "label": doc.label, "entity": doc.entity, "chart": doc.chart}))
        .collect();
    for found in reports::saved::visible(&app, &p).await? {
        let saved = found.saved.as_ref().expect("a saved report");
        data.push(json!({
            "name": found.doc.name,
            "label": found.doc.label,
            "entity": found.doc.entity,
            "chart": found.doc.chart,
            "owner": saved.owner,
            "roles": saved.roles,
        }));
    }
    Ok(Json(json!({ "data": data })))
}

/// `GET /api/v1/reports/{name}?offset=`
pub async fn get(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> ApiResult<Json<Json_>> {
    let found = reports::saved::find(&app, &p, &name).await?;
    Ok(Json(reports::run(&app, &p, &found.doc, offset_minutes(&params)?).await?))
}

/// `GET /api/v1/reports/{name}/chart.svg?offset=&locale=`: the report drawn on the server as
/// its chart says (bars, stacked bars, lines, a pie, a donut, a funnel or a number).
pub async fn chart(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> ApiResult<Response> {
    let found = reports::saved::find(&app, &p, &name).await?;
    let result = reports::run(&app, &p, &found.doc, offset_minutes(&params)?).await?;
    let svg = reports::chart::draw(&result, locale(&params));
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

/// `GET /api/v1/reports/{name}/export.xlsx?offset=&locale=`: the report's table as a workbook.
pub async fn export(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> ApiResult<Response> {
    let found = reports::saved::find(&app, &p, &name).await?;
    let result = reports::run(&app, &p, &found.doc, offset_minutes(&params)?).await?;
    reports::xlsx::download(&result, locale(&params))
}

fn locale(params: &RunParams) -> &'static str {
    if params.locale.as_deref() == Some("en") { "en" } else { "zh-CN" }
}

/// What saving a report takes: the report (as `POST /api/v1/reports/run` takes it) and the
/// roles it is shared with (none: private).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    report: Json_,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /api/v1/reports`: saves a report the caller built; 201 with its name.
pub async fn create(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<SaveBody>,
) -> ApiResult<Response> {
    let name = reports::saved::save(&app, &p, None, &body.report, &body.roles).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name})).into_response()).into_response())
}

/// `PUT /api/v1/reports/{name}`: changes a saved report of the caller's.
pub async fn update(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SaveBody>,
) -> ApiResult<Json<Json_>> {
    let name = reports::saved::save(&app, &p, Some(&name), &body.report, &body.roles).await?;
    Ok(Json(json!({"name": name})))
}

/// `DELETE /api/v1/reports/{name}`: deletes a saved report of the caller's.
pub async fn delete(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    reports::saved::delete(&app, &p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/reports/run?offset=`: runs a report described in the body, unsaved.
pub async fn run(
    State(app): State<AppState>,
    p: Principal,
    ApiQuery(params): ApiQuery<RunParams>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    let doc = reports::ad_hoc(&body)?;
    Ok(Json(reports::run(&app, &p, &doc, offset_minutes(&params)?).await?))
}
