//! Handlers of `/api/v1/reports`: extract, call the report service, respond.

use axum::Json;
use axum::extract::State;
use axum::http::header;
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

/// `GET /api/v1/reports`: the saved reports the caller may run.
pub async fn list(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    let catalog = app.catalog();
    let data: Vec<Json_> = catalog
        .docs()
        .reports
        .values()
        .filter(|doc| reports::may_run(&p, doc))
        .map(|doc| json!({"name": doc.name, "label": doc.label, "entity": doc.entity, "chart": doc.chart}))
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `GET /api/v1/reports/{name}?offset=`
pub async fn get(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> ApiResult<Json<Json_>> {
    let doc = reports::saved(&app.catalog(), &p, &name)?;
    Ok(Json(reports::run(&app, &p, &doc, offset_minutes(&params)?).await?))
}

/// `GET /api/v1/reports/{name}/chart.svg?offset=&locale=`: the report drawn on the server as
/// its chart says (bars, stacked bars, lines, a pie, a donut, a funnel or a number).
pub async fn chart(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> ApiResult<Response> {
    let doc = reports::saved(&app.catalog(), &p, &name)?;
    let result = reports::run(&app, &p, &doc, offset_minutes(&params)?).await?;
    let locale = if params.locale.as_deref() == Some("en") { "en" } else { "zh-CN" };
    let svg = reports::chart::draw(&result, locale);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
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
