//! Handler of `/api/v1/search`: extract, call the search service, respond.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value as Json_;

use super::ApiQuery;
use crate::access::Principal;
use crate::app::AppState;
use crate::error::ApiResult;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: String,
    /// Modules to search, comma-separated; all the caller reads when absent.
    entities: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/search?q=&entities=&limit=`
pub async fn search(
    State(app): State<AppState>,
    p: Principal,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<Json_>> {
    let entities: Option<Vec<String>> = params
        .entities
        .map(|list| list.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect());
    let limit = params.limit.unwrap_or(20);
    Ok(Json(crate::search::search(&app, &p, &params.q, entities.as_deref(), limit).await?))
}
