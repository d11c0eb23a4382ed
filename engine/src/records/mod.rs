//! Records: the save pipeline every write goes through ([`save`]), the bulk operations on it,
//! and the reads — get, list with filters and keyset pages, related panels, grouped counts,
//! history. Every read and write carries the caller's data scope into the SQL, and leaves out
//! or refuses the fields they may not see.

pub mod accounts;
mod bulk;
pub(crate) mod checks;
pub mod counts;
pub(crate) mod locks;
pub mod merge;
mod out;
pub mod pool;
pub(crate) mod read;
mod rollup;
mod save;
pub mod selection;

use serde_json::Value as Json;
use uuid::Uuid;

pub use bulk::{BulkOp, BulkResult, Grantee, MAX_BULK, Outcome, bulk, bulk_share};
pub use out::{ListPage, RecordOut};
pub use read::{
    ListParams, MAX_LIMIT, cursor_of, find_by, get, groups, history, list, list_query, parse_fields, related,
};
pub use save::{Committed, MAX_IMPORT, Source, Unit};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Creates one record from the caller's values.
pub async fn create(
    app: &App,
    principal: &Principal,
    source: Source,
    entity_name: &str,
    body: &Json,
) -> ApiResult<RecordOut> {
    let mut unit = Unit::new(app, principal, source).await?;
    let id = unit.create(entity_name, body).await?;
    unit.commit().await?.out(principal, id)
}

/// Creates many records in one transaction: all or none.
pub async fn import(
    app: &App,
    principal: &Principal,
    source: Source,
    entity_name: &str,
    rows: &[Json],
) -> ApiResult<Vec<Uuid>> {
    let mut unit = Unit::new(app, principal, source).await?;
    let ids = unit.create_many(entity_name, rows).await?;
    unit.commit().await?;
    Ok(ids)
}

/// Applies a partial update at the version the client read, sent as `version`.
pub async fn update(
    app: &App,
    principal: &Principal,
    source: Source,
    entity_name: &str,
    id: &str,
    body: &Json,
) -> ApiResult<RecordOut> {
    let mut body = checks::body_object(body, "a change")?.clone();
    let version = match body.remove("version") {
        Some(v) => {
            v.as_i64().ok_or_else(|| ApiError::field("version", "invalid_type", "the version is a whole number"))?
        }
        None => {
            return Err(ApiError::field(
                "version",
                "required",
                "send the version you read, so that a newer change is not overwritten",
            ));
        }
    };
    let mut unit = Unit::new(app, principal, source).await?;
    unit.update(entity_name, id, &Json::Object(body), Some(version)).await?;
    if unit.is_empty() {
        return get(app, principal, entity_name, id, None).await;
    }
    unit.commit().await?.out(principal, read::parse_id(id)?)
}
