//! Handlers of `/api/v1/meta/...`: reading the catalog for everyone, changing it for
//! administrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_model::{DocKind, changes};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::metadata::apply_docs;
use crate::visible;

/// The description of an entity the API gives: its document and its screens' documents as
/// the caller may learn them, and the fields they may not change.
fn entity_json(catalog: &crm_model::Catalog, p: &Principal, name: &str) -> ApiResult<Json_> {
    let entity = p.entity(catalog, name, crm_model::Action::Read)?;
    let read_only: Vec<&str> = visible::read_only(p, entity).map(|f| f.name.as_str()).collect();
    Ok(json!({
        "entity": visible::entity_def(p, entity),
        "layout": visible::layout(p, &entity.layout),
        "list_view": visible::list_view(p, &entity.list),
        "related": visible::related(p, &entity.related),
        "read_only": read_only,
    }))
}

/// `GET /api/v1/meta/entities`: the caller's modules.
pub async fn list_entities(State(app): State<AppState>, p: Principal) -> Json<Json_> {
    let catalog = app.catalog();
    let entities: Vec<Json_> = catalog
        .entities()
        .filter(|e| p.sees(e.name().as_str()))
        .map(|e| json!({"name": e.name(), "label": e.def.label, "icon": e.def.icon, "system": e.def.system}))
        .collect();
    Json(json!({ "catalog_version": catalog.version, "data": entities }))
}

/// `GET /api/v1/meta/entities/{entity}`
pub async fn get_entity(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(entity_json(&app.catalog(), &p, &entity)?))
}

fn applied(
    app: &AppState,
    p: &Principal,
    entity: &str,
    plan: &crm_model::plan::Plan,
    status: StatusCode,
) -> ApiResult<Response> {
    let mut body = entity_json(&app.catalog(), p, entity)?;
    body["plan"] = json!(plan.describe());
    Ok((status, Json(body)).into_response())
}

/// `POST /api/v1/meta/entities`
pub async fn create_entity(
    State(app): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let plan = apply_docs(&app, Some(p.user_id), |docs| changes::create_entity(docs, &body)).await?;
    let name = body.get("name").and_then(Json_::as_str).unwrap_or_default();
    applied(&app, &p, name, &plan, StatusCode::CREATED)
}

/// `POST /api/v1/meta/entities/{entity}/fields`: the field, and optionally
/// `"place_on_layouts": false` to keep it off the edit and view layouts.
pub async fn add_field(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(mut body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let place = match body.as_object_mut().and_then(|o| o.remove("place_on_layouts")) {
        None => true,
        Some(Json_::Bool(place)) => place,
        Some(_) => return Err(ApiError::bad_request("invalid_body", "`place_on_layouts` is true or false")),
    };
    let plan = apply_docs(&app, Some(p.user_id), |docs| changes::add_field(docs, &entity, &body, place)).await?;
    applied(&app, &p, &entity, &plan, StatusCode::CREATED)
}

/// `PATCH /api/v1/meta/entities/{entity}/fields/{field}`
pub async fn patch_field(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, field)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let plan = apply_docs(&app, Some(p.user_id), |docs| changes::patch_field(docs, &entity, &field, &body)).await?;
    applied(&app, &p, &entity, &plan, StatusCode::OK)
}

/// `PUT /api/v1/meta/entities/{entity}/duplicates`: the entity's duplicate rules, all of them.
pub async fn set_duplicates(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let plan = apply_docs(&app, Some(p.user_id), |docs| changes::set_duplicates(docs, &entity, &body)).await?;
    applied(&app, &p, &entity, &plan, StatusCode::OK)
}

/// `DELETE /api/v1/meta/entities/{entity}/fields/{field}`: archives the field, data kept.
pub async fn archive_field(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, field)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let plan = apply_docs(&app, Some(p.user_id), |docs| changes::archive_field(docs, &entity, &field)).await?;
    applied(&app, &p, &entity, &plan, StatusCode::OK)
}

/// The document kinds that `/api/v1/meta/{kind}/{name}` serves, by their folder names.
fn doc_kind(kind: &str) -> ApiResult<DocKind> {
    // Entities and print templates have routes of their own.
    let generic = |k: &DocKind| !matches!(k, DocKind::Entity | DocKind::PrintTemplate);
    DocKind::ALL.into_iter().filter(generic).find(|k| k.folder() == kind).ok_or_else(|| {
        ApiError::not_found(format!(
            "no metadata kind `{kind}`; use layouts, lists, related, stage_sets, roles, scripts, reports, dashboards, web_forms, webhooks or syncs"
        ))
    })
}

/// `GET /api/v1/meta/{layouts|lists|related|stage_sets|roles}/{name}`: roles for
/// administrators, the others for the entities the caller sees.
pub async fn get_doc(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((kind, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<Json_>> {
    let kind = doc_kind(&kind)?;
    match kind {
        DocKind::Role
        | DocKind::Script
        | DocKind::Report
        | DocKind::Dashboard
        | DocKind::WebForm
        | DocKind::Webhook
        | DocKind::Sync => p.require_admin()?,
        DocKind::StageSet => {}
        _ if !p.sees(&name) => return Err(ApiError::not_found(format!("no {} `{name}`", kind.as_str()))),
        _ => {}
    }
    visible::document(&app.catalog(), &p, kind, &name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no {} `{name}`", kind.as_str())))
}

/// `PUT /api/v1/meta/{layouts|lists|related|stage_sets|roles}/{name}`: replaces (or, for
/// stage sets and roles, creates) the document.
pub async fn put_doc(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((kind, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let kind = doc_kind(&kind)?;
    let screens = matches!(kind, DocKind::Layout | DocKind::ListView | DocKind::Related);
    if screens && app.catalog().entity(&name).is_none() {
        return Err(ApiError::not_found(format!("no entity `{name}`")));
    }
    let plan = crate::metadata::put_document(&app, Some(p.user_id), kind, &name, &body).await?;
    let doc = app.catalog().docs().get_json(kind, &name).unwrap_or_default();
    Ok(Json(json!({"document": doc, "plan": plan.describe()})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    limit: Option<u32>,
}

/// `GET /api/v1/meta/history`: metadata changes, newest first (administrators).
pub async fn history(
    State(app): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let changes = crm_store::system::meta_changes(&app.db, None, None, q.limit.unwrap_or(100).min(1000)).await?;
    Ok(Json(json!({ "data": changes })))
}

/// `GET /api/v1/meta/roles`: every role (administrators).
pub async fn list_roles(State(app): State<AppState>, p: Principal) -> ApiResult<Json<Json_>> {
    p.require_admin()?;
    let catalog = app.catalog();
    Ok(Json(json!({ "data": catalog.docs().roles.values().collect::<Vec<_>>() })))
}
