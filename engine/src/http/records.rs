//! Handlers of `/api/v1/records/...`: extract, call the record service, respond.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::{ApiJson, ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::records::merge::{self, MergeRequest};
use crate::records::{self, BulkOp, ListParams, Outcome, Source};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsParam {
    fields: Option<String>,
}

/// `GET /api/v1/records/{entity}`
pub async fn list(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    page_response(&records::list(&app, &p, &entity, &params).await?)
}

/// Room a listed record takes in JSON, about: a customer is 600 bytes.
const RECORD_JSON_BYTES: usize = 1024;

/// A page of records as JSON, written into a buffer sized for it at once: grown from a
/// small one, a page of fifty would be copied over half a dozen times.
fn page_response(page: &records::ListPage) -> ApiResult<Response> {
    let mut body = Vec::with_capacity(256 + page.record_count() * RECORD_JSON_BYTES);
    serde_json::to_writer(&mut body, page).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/v1/records/{entity}`
pub async fn create(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Response> {
    let record = records::create(&app, &p, Source::Api, &entity, &body).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

/// `GET /api/v1/records/{entity}/{id}`
pub async fn get(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<FieldsParam>,
) -> ApiResult<Json<records::RecordOut>> {
    Ok(Json(records::get(&app, &p, &entity, &id, q.fields.as_deref()).await?))
}

/// `PATCH /api/v1/records/{entity}/{id}`
pub async fn update(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<records::RecordOut>> {
    Ok(Json(records::update(&app, &p, Source::Api, &entity, &id, &body).await?))
}

/// The single result of a one-record bulk operation as a response.
fn single(results: Vec<records::BulkResult>) -> ApiResult<Response> {
    match results.into_iter().next().map(|r| (r.id, r.outcome)) {
        Some((_, Outcome::Done(_))) => Ok(StatusCode::NO_CONTENT.into_response()),
        Some((_, Outcome::Invalid(errors))) => Err(ApiError::Invalid(errors)),
        Some((_, Outcome::Forbidden { code, message })) => Err(ApiError::Forbidden { code, message }),
        Some((id, Outcome::NotFound)) => Err(ApiError::not_found(format!("no record `{id}`"))),
        None => Err(ApiError::not_found("no record")),
    }
}

/// `DELETE /api/v1/records/{entity}/{id}`: to the recycle bin.
pub async fn delete(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    single(records::bulk(&app, &p, Source::Api, &entity, &[Json_::String(id)], BulkOp::Delete).await?)
}

/// `POST /api/v1/records/{entity}/{id}/restore`: out of the recycle bin.
pub async fn restore(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    single(records::bulk(&app, &p, Source::Api, &entity, &[Json_::String(id.clone())], BulkOp::Restore).await?)?;
    Ok(Json(records::get(&app, &p, &entity, &id, None).await?).into_response())
}

/// `GET /api/v1/records/{entity}/{id}/related/{panel}`
pub async fn related(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id, panel)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    page_response(&records::related(&app, &p, &entity, &id, &panel, &params).await?)
}

/// `GET /api/v1/records/{entity}/{id}/history`
pub async fn history(
    State(app): State<AppState>,
    p: Principal,
    ApiPath((entity, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(records::history(&app, &p, &entity, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupParams {
    by: String,
    sum: Option<String>,
    filter: Option<String>,
}

/// `GET /api/v1/records/{entity}/groups?by=status&sum=amount`
pub async fn groups(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiQuery(q): ApiQuery<GroupParams>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(records::groups(&app, &p, &entity, &q.by, q.sum.as_deref(), q.filter.as_deref()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkUpdate {
    ids: Vec<Json_>,
    set: Json_,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkIds {
    ids: Vec<Json_>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkCreate {
    records: Vec<Json_>,
}

/// `POST /api/v1/records/{entity}/bulk/update`
pub async fn bulk_update(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkUpdate>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk(&app, &p, Source::Api, &entity, &body.ids, BulkOp::Update(&body.set)).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/records/{entity}/bulk/delete`
pub async fn bulk_delete(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk(&app, &p, Source::Api, &entity, &body.ids, BulkOp::Delete).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/records/{entity}/bulk/restore`
pub async fn bulk_restore(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk(&app, &p, Source::Api, &entity, &body.ids, BulkOp::Restore).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/records/{entity}/bulk/claim`: records from the public pool become the
/// caller's, within their claim limits.
pub async fn bulk_claim(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk(&app, &p, Source::Api, &entity, &body.ids, BulkOp::Claim).await?;
    Ok(Json(json!({ "results": results })))
}

/// The answer to an import: written straight from the ids, without a JSON tree of them.
#[derive(serde::Serialize)]
struct Created {
    created: usize,
    ids: Vec<uuid::Uuid>,
}

/// `POST /api/v1/records/{entity}/bulk/create`: all records or none.
pub async fn bulk_create(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkCreate>,
) -> ApiResult<Response> {
    let ids = records::import(&app, &p, Source::Import, &entity, &body.records).await?;
    Ok((StatusCode::CREATED, Json(Created { created: ids.len(), ids })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAssign {
    ids: Vec<Json_>,
    owner: uuid::Uuid,
}

/// `POST /api/v1/records/{entity}/bulk/assign`: a new owner for many records.
pub async fn bulk_assign(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkAssign>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk(&app, &p, Source::Api, &entity, &body.ids, BulkOp::Assign(body.owner)).await?;
    Ok(Json(json!({ "results": results })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkShare {
    ids: Vec<Json_>,
    user: Option<uuid::Uuid>,
    department: Option<uuid::Uuid>,
    access: Option<String>,
}

impl BulkShare {
    fn grantee(&self) -> ApiResult<records::Grantee> {
        match (self.user, self.department) {
            (Some(user), None) => Ok(records::Grantee::User(user)),
            (None, Some(department)) => Ok(records::Grantee::Department(department)),
            _ => Err(ApiError::bad_request("invalid_body", "give either `user` or `department`")),
        }
    }
}

/// `POST /api/v1/records/{entity}/bulk/share`: `{"ids", "user"|"department", "access": "read"|"edit"}`.
pub async fn bulk_share(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkShare>,
) -> ApiResult<Json<Json_>> {
    let access = match body.access.as_deref() {
        Some("read") | None => "read",
        Some("edit") => "edit",
        Some(_) => return Err(ApiError::bad_request("invalid_body", "`access` is read or edit")),
    };
    let results = records::bulk_share(&app, &p, &entity, &body.ids, body.grantee()?, Some(access)).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/records/{entity}/bulk/unshare`: `{"ids", "user"|"department"}`.
pub async fn bulk_unshare(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<BulkShare>,
) -> ApiResult<Json<Json_>> {
    let results = records::bulk_share(&app, &p, &entity, &body.ids, body.grantee()?, None).await?;
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/v1/records/{entity}/duplicates`
pub async fn duplicates(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> ApiResult<Json<Json_>> {
    Ok(Json(crate::duplicates::check(&app, &p, &entity, &body).await?))
}

/// `POST /api/v1/records/{entity}/duplicates/scan`
pub async fn duplicate_scan(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
) -> ApiResult<Response> {
    let task = crate::duplicates::scan::start(&app, &p, &entity).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"task": task}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsBody {
    ids: Vec<uuid::Uuid>,
}

/// `POST /api/v1/records/{entity}/not-duplicates`
pub async fn not_duplicates(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> ApiResult<StatusCode> {
    crate::duplicates::apart(&app, &p, &entity, &body.ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeIds {
    ids: Vec<Json_>,
}

/// `POST /api/v1/records/{entity}/merge/preview`: the proposed master and the values to choose from.
pub async fn merge_preview(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<MergeIds>,
) -> ApiResult<Json<merge::Preview>> {
    Ok(Json(merge::preview(&app, &p, &entity, &body.ids).await?))
}

/// `POST /api/v1/records/{entity}/merge`
pub async fn merge(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiJson(body): ApiJson<MergeRequest>,
) -> ApiResult<Json<merge::Merged>> {
    Ok(Json(merge::merge(&app, &p, &entity, &body).await?))
}

/// `POST /api/v1/merges/{id}/undo`
pub async fn undo_merge(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<merge::Undone>> {
    Ok(Json(merge::undo(&app, &p, &id).await?))
}
