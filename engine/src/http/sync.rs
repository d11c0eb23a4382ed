//! Handlers of `/api/v1/sync/...`: connections, runs (on demand, dry, full) and their
//! history. The mappings themselves are metadata (`/api/v1/meta/syncs/{name}`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value as Json_;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::sync::{self, Options, Trigger};
use crm_store::sync::Run;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    url: String,
}

/// `PUT /api/v1/sync/connections/{name}`
pub async fn set_connection(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Connection>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(sync::set_connection(&app, &p, &name, &body.url).await?))
}

/// `GET /api/v1/sync`
pub async fn overview(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    Ok(Json(sync::overview(&app, &p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    full: bool,
    #[serde(default)]
    dry_run: bool,
    /// Answer when the run has ended, instead of as it starts.
    #[serde(default)]
    wait: bool,
}

/// `POST /api/v1/sync/{name}/runs`: 201 with the finished run when waited for, otherwise
/// 202 with the run as it starts.
pub async fn start(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let options = Options { full: body.full, dry_run: body.dry_run, trigger: Trigger::Manual, by: Some(p.user_id) };
    let run = sync::start(&app, &p, &name, options, body.wait).await?;
    let status = if body.wait { StatusCode::CREATED } else { StatusCode::ACCEPTED };
    Ok((status, Json(run)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    limit: Option<i64>,
}

/// `GET /api/v1/sync/{name}/runs?limit=`
pub async fn runs(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogParams>,
) -> ApiResult<Json<Vec<Run>>> {
    Ok(Json(sync::runs(&app, &p, &name, q.limit.unwrap_or(20)).await?))
}

/// `GET /api/v1/sync/runs/{id}`
pub async fn run(State(app): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Run>> {
    Ok(Json(sync::run_of(&app, &p, &id).await?))
}
