//! A selection of records for an operation on many (a mailing's recipients, a campaign's new
//! members): the ids chosen in a list, everything a list's filter shows, or all of a list — in
//! any case only the records the caller may read, each once, and no more than the operation
//! takes.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::read::{ListParams, MAX_LIMIT, list};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Records of one entity, by id or by a filter tree as lists take it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub entity: String,
    #[serde(default)]
    pub ids: Vec<Uuid>,
    #[serde(default)]
    pub filter: Option<Json>,
    /// Every record the caller may read (a list without filters).
    #[serde(default)]
    pub all: bool,
}

/// What a selection holds that the caller may read, in the order found; `too_many` is the
/// error when there are more than `most`. `field` names the selection in errors.
pub async fn resolve(
    app: &App,
    principal: &Principal,
    selection: &Selection,
    most: usize,
    too_many: impl Fn(usize) -> ApiError,
    field: &str,
) -> ApiResult<Vec<Uuid>> {
    let mut ids = Vec::new();
    match (&selection.filter, selection.ids.is_empty(), selection.all) {
        (None, false, false) => {
            for chunk in selection.ids.chunks(MAX_LIMIT as usize) {
                let filter = json!({"field": "id", "op": "in", "value": chunk});
                collect(app, principal, &selection.entity, Some(&filter), most, &mut ids).await?;
            }
        }
        (Some(filter), true, false) => collect(app, principal, &selection.entity, Some(filter), most, &mut ids).await?,
        (None, true, true) => collect(app, principal, &selection.entity, None, most, &mut ids).await?,
        _ => return Err(ApiError::field(field, "invalid", "one of: the records' ids, a filter, or all")),
    }
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(*id));
    if ids.len() > most {
        return Err(too_many(ids.len()));
    }
    if ids.is_empty() {
        return Err(ApiError::field(field, "empty", "none of the chosen records is one you may read"));
    }
    Ok(ids)
}

/// Every record of a filter (or of the list) the caller may read, page by page; stops once
/// past `most`.
async fn collect(
    app: &App,
    principal: &Principal,
    entity: &str,
    filter: Option<&Json>,
    most: usize,
    ids: &mut Vec<Uuid>,
) -> ApiResult<()> {
    let mut cursor = None;
    loop {
        let params = ListParams {
            filter: filter.map(Json::to_string),
            limit: Some(MAX_LIMIT),
            cursor,
            fields: Some("id".into()),
            ..ListParams::default()
        };
        let page = list(app, principal, entity, &params).await?;
        ids.extend(page.records().iter().map(crm_store::Record::id));
        match page.next_cursor {
            Some(next) if ids.len() <= most => cursor = Some(next),
            _ => return Ok(()),
        }
    }
}
