//! Dashboards (D-1): which dashboards a user has — those shared with one of their roles, every
//! one for an administrator — and the one change an administrator makes to them, through the
//! one way metadata changes. Each widget reads through the same services as its own screen
//! (a report's run, a list's query, the reminders inbox), so it shows only what the user may
//! read.

pub mod screens;
pub mod studio;

use crm_model::changes::ChangeError;
use crm_model::dashboard::DashboardDoc;
use crm_model::plan::Plan;
use crm_model::{Catalog, DocKind};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// The dashboards a user has, those of their own roles first (an administrator has all).
pub fn of<'c>(catalog: &'c Catalog, principal: &Principal) -> Vec<&'c DashboardDoc> {
    let mine = |doc: &DashboardDoc| doc.roles.iter().any(|role| principal.roles.iter().any(|r| r == role.as_str()));
    let mut dashboards: Vec<&DashboardDoc> =
        catalog.docs().dashboards.values().filter(|doc| principal.is_admin() || mine(doc)).collect();
    dashboards.sort_by_key(|doc| !mine(doc));
    dashboards
}

/// Creates or replaces a dashboard.
pub async fn save(app: &App, by: Option<Uuid>, name: &str, doc: &Json) -> ApiResult<Plan> {
    if doc.get("name").and_then(Json::as_str) != Some(name) {
        return Err(ApiError::bad_request("invalid_body", format!("the document's `name` must be `{name}`")));
    }
    crate::metadata::apply_docs(app, by, |docs| {
        let mut next = docs.clone();
        next.insert_json(DocKind::Dashboard, doc).map_err(ChangeError::Invalid)?;
        Ok(next)
    })
    .await
}
