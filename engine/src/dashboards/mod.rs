//! Dashboards (D-1): which dashboards a user has — those shared with one of their roles, every
//! one for an administrator. An administrator changes them through the one way metadata
//! changes (`metadata::put_document`). Each widget reads through the same services as its own screen
//! (a report's run, a list's query, the reminders inbox), so it shows only what the user may
//! read.

pub mod screens;
pub mod studio;

use crm_model::Catalog;
use crm_model::dashboard::DashboardDoc;

use crate::access::Principal;

/// The dashboards a user has, those of their own roles first (an administrator has all).
pub fn of<'c>(catalog: &'c Catalog, principal: &Principal) -> Vec<&'c DashboardDoc> {
    let mine = |doc: &DashboardDoc| doc.roles.iter().any(|role| principal.roles.iter().any(|r| r == role.as_str()));
    let mut dashboards: Vec<&DashboardDoc> =
        catalog.docs().dashboards.values().filter(|doc| principal.is_admin() || mine(doc)).collect();
    dashboards.sort_by_key(|doc| !mine(doc));
    dashboards
}
