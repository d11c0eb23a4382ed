//! Handlers of `/api/v1/templates/...`: the industry templates shipped, one's plan over the
//! live metadata, its installation (or upgrade) and removal. Administrators only.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use crm_model::threeway::Choice;
use crm_store::packages;
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::templates;

/// `GET /api/v1/templates`
pub async fn list(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let installed = packages::all(&app.db).await?;
    let items: Vec<Json_> = templates::names()
        .iter()
        .filter_map(|name| templates::template(name)?.ok())
        .map(|package| {
            let here = installed.iter().find(|i| i.name == package.name());
            json!({
                "name": package.name(),
                "version": package.version(),
                "label": package.manifest["label"],
                "summary": package.manifest["summary"],
                "features": package.manifest["features"],
                "installed": here.map(|i| json!({"version": i.version, "sample_data": i.sample_data, "at": i.installed_at})),
            })
        })
        .collect();
    Ok(Json(json!({"data": items})))
}

/// `GET /api/v1/templates/{name}`: the template and its plan here.
pub async fn show(State(app): State<AppState>, p: Principal, ApiPath(name): ApiPath<String>) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let package = templates::shipped(&name)?;
    let preview = templates::preview(&app, &package, &BTreeMap::new()).await?;
    Ok(Json(json!({
        "name": package.name(),
        "version": package.version(),
        "manifest": package.manifest,
        "installed": preview.installed.map(|i| i.version),
        "steps": preview.steps,
        "plan": preview.plan,
        "errors": preview.errors,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    #[serde(default)]
    sample_data: bool,
    /// Only the plan: nothing is applied.
    #[serde(default)]
    dry_run: bool,
    /// `{item: "mine" | "theirs"}` for each conflict.
    #[serde(default)]
    choices: BTreeMap<String, Choice>,
}

/// `POST /api/v1/templates/{name}/install`: installs or upgrades it (201), or with `dry_run`
/// answers its plan (200). A conflict not chosen is a 422 naming it.
pub async fn install(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<InstallBody>,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    p.require_admin()?;
    let package = templates::shipped(&name)?;
    if body.dry_run {
        let preview = templates::preview(&app, &package, &body.choices).await?;
        let reply = json!({"steps": preview.steps, "plan": preview.plan, "errors": preview.errors});
        return Ok((StatusCode::OK, Json(reply)));
    }
    let done = templates::install(&app, Some(p.user_id), &package, body.sample_data, &body.choices).await?;
    let reply = json!({"version": package.version(), "plan": done.plan, "records": done.records});
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `POST /api/v1/templates/{name}/remove`: archives what it brought.
pub async fn remove(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let plan = templates::remove(&app, Some(p.user_id), &name).await?;
    Ok(Json(json!({"plan": plan})))
}
