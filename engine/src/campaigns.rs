//! Campaign members added in bulk (M-1, M-3): the customers, contacts or leads chosen in a
//! list (or everything its filter shows) join a campaign, at its current stage or one given,
//! through the save pipeline; those already members are left as they are.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::selection::{self, Selection};
use crate::records::{self, ListParams, MAX_IMPORT, MAX_LIMIT, Source, Unit};

/// The entity of campaign members.
pub const MEMBER: &str = "campaign_member";

/// The entities whose records may join a campaign: each is a lookup of a member.
pub const JOINING: [&str; 3] = ["customer", "contact", "lead"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    #[serde(flatten)]
    pub selection: Selection,
    /// The stage they join at; the campaign's current one when absent.
    #[serde(default)]
    pub stage: Option<String>,
}

/// `POST /api/v1/campaigns/{id}/members`: adds the selection as members; says how many were
/// added and how many were members already.
pub async fn join(app: &App, principal: &Principal, source: Source, campaign: Uuid, body: &Json) -> ApiResult<Json> {
    let join: Join = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the records to add: {e}")))?;
    let entity = join.selection.entity.as_str();
    if !JOINING.contains(&entity) {
        return Err(ApiError::field("entity", "invalid_option", format!("one of {JOINING:?}")));
    }
    records::get(app, principal, "campaign", &campaign.to_string(), Some("id")).await?;
    let too_many = |n| ApiError::bad_request("too_many", format!("at most {MAX_IMPORT} records at once, not {n}"));
    let ids = selection::resolve(app, principal, &join.selection, MAX_IMPORT, too_many, "ids").await?;
    let members = members(app, campaign, entity).await?;
    let new: Vec<Uuid> = ids.iter().copied().filter(|id| !members.contains(id)).collect();
    let mut unit = Unit::new(app, principal, source).await?;
    for id in &new {
        let mut member = json!({"campaign": campaign, entity: id});
        if let Some(stage) = &join.stage {
            member["stage"] = json!(stage);
        }
        unit.create(MEMBER, &member).await?;
    }
    if !unit.is_empty() {
        unit.commit().await?;
    }
    Ok(json!({"added": new.len(), "already": ids.len() - new.len()}))
}

/// The records of `entity` that are members of the campaign already, whoever added them (a
/// member the caller cannot see is a member all the same).
async fn members(app: &App, campaign: Uuid, entity: &str) -> ApiResult<HashSet<Uuid>> {
    let system = Principal::system(&app.catalog());
    let filter = json!({"field": "campaign", "op": "eq", "value": campaign}).to_string();
    let mut found = HashSet::new();
    let mut cursor = None;
    loop {
        let params = ListParams {
            filter: Some(filter.clone()),
            fields: Some(entity.to_owned()),
            limit: Some(MAX_LIMIT),
            cursor,
            ..ListParams::default()
        };
        let page = records::list(app, &system, MEMBER, &params).await?;
        for row in crate::screens::view::records_of(&page)? {
            if let Some(id) = row.get(entity).and_then(Json::as_str).and_then(|id| id.parse().ok()) {
                found.insert(id);
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}
