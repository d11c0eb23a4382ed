//! Reports users build in the browser and save (D-2), beside the reports of metadata: a
//! user's own, private until they share it with roles. A saved report goes by the name
//! `u_` and its id, so every report screen and the API open both kinds by name. Sharing a
//! report shares its design only: whoever opens it runs it in their own scope.

use crm_model::Ident;
use crm_model::report::ReportDoc;
use crm_store::reports::{self as store, SavedReport};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// A report the caller may run: one of metadata, or a saved one with its owner.
pub struct Found {
    pub doc: ReportDoc,
    pub saved: Option<SavedReport>,
}

impl Found {
    /// Whether the caller may change or delete it: a saved report of theirs, or any saved
    /// report for an administrator. Reports of metadata change in the studio.
    pub fn editable_by(&self, principal: &Principal) -> bool {
        self.saved.as_ref().is_some_and(|s| principal.is_admin() || s.owner == principal.user_id)
    }
}

/// The name a saved report goes by.
pub fn name_of(id: Uuid) -> String {
    format!("u_{}", id.simple())
}

fn id_of(name: &str) -> Option<Uuid> {
    name.strip_prefix("u_").and_then(|hex| Uuid::try_parse(hex).ok())
}

fn readable(principal: &Principal, saved: &SavedReport) -> bool {
    principal.is_admin() || saved.owner == principal.user_id || saved.roles.iter().any(|r| principal.roles.contains(r))
}

/// A report by name, of metadata or saved, if the caller may run it.
pub async fn find(app: &App, principal: &Principal, name: &str) -> ApiResult<Found> {
    if let Ok(doc) = super::shared(&app.catalog(), principal, name) {
        return Ok(Found { doc, saved: None });
    }
    let not_found = || ApiError::not_found(format!("no report `{name}`"));
    let id = id_of(name).ok_or_else(not_found)?;
    let saved = store::get(&app.db, id).await?.filter(|s| readable(principal, s)).ok_or_else(not_found)?;
    let doc = document(&saved)?;
    if !principal.sees(doc.entity.as_str()) {
        return Err(not_found());
    }
    Ok(Found { doc, saved: Some(saved) })
}

/// The saved reports the caller has, of the entities they see: their own and those shared
/// with their roles (all for an administrator), newest first.
pub async fn visible(app: &App, principal: &Principal) -> ApiResult<Vec<Found>> {
    let all = store::visible(&app.db, principal.user_id, &principal.roles, principal.is_admin()).await?;
    let mut found = Vec::new();
    for saved in all {
        let doc = document(&saved)?;
        if principal.sees(doc.entity.as_str()) {
            found.push(Found { doc, saved: Some(saved) });
        }
    }
    Ok(found)
}

/// The report as stored, named as the screens open it.
fn document(saved: &SavedReport) -> ApiResult<ReportDoc> {
    let mut doc: ReportDoc = serde_json::from_value(saved.doc.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("saved report {} cannot be read: {e}", saved.id)))?;
    doc.name = Ident::new(&name_of(saved.id)).map_err(|e| ApiError::Internal(e.into()))?;
    doc.roles = saved.roles.iter().filter_map(|r| Ident::new(r).ok()).collect();
    Ok(doc)
}

/// Saves a report the caller built — a new one, or `name` of theirs — shared with `roles`.
/// It is checked as any report is (its JSON Schema, then its fields against the caller's);
/// returns its name.
pub async fn save(
    app: &App,
    principal: &Principal,
    name: Option<&str>,
    report: &Json,
    roles: &[String],
) -> ApiResult<String> {
    if !principal.builds_reports() {
        return Err(ApiError::forbidden("this needs a role that may build reports"));
    }
    let catalog = app.catalog();
    if let Some(unknown) = roles.iter().find(|r| !catalog.docs().roles.contains_key(r.as_str())) {
        return Err(ApiError::field("roles", "unknown", format!("no role `{unknown}`")));
    }
    let (id, owner) = match name {
        None => (Uuid::now_v7(), principal.user_id),
        Some(name) => {
            let found = find(app, principal, name).await?;
            let saved = found.saved.as_ref().filter(|_| found.editable_by(principal));
            let saved = saved.ok_or_else(|| ApiError::forbidden("only its owner changes a saved report"))?;
            (saved.id, saved.owner)
        }
    };
    let mut report = report.clone();
    if let Some(object) = report.as_object_mut() {
        object.insert("name".into(), json!(name_of(id)));
        object.insert("roles".into(), json!(roles));
    }
    let doc = super::ad_hoc(&report)?;
    // Run once: a report that does not compile for its author is not saved.
    super::run(app, principal, &doc, 0).await?;
    let mut stored = serde_json::to_value(&doc).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(object) = stored.as_object_mut() {
        object.remove("roles");
    }
    let saved = SavedReport { id, owner, doc: stored, roles: roles.to_vec(), updated_at: app.now() };
    store::save(&app.db, &saved).await?;
    Ok(name_of(id))
}

/// Deletes a saved report of the caller's (any, for an administrator).
pub async fn delete(app: &App, principal: &Principal, name: &str) -> ApiResult<()> {
    let found = find(app, principal, name).await?;
    match &found.saved {
        Some(saved) if found.editable_by(principal) => {
            store::delete(&app.db, saved.id).await?;
            Ok(())
        }
        _ => Err(ApiError::forbidden("only its owner deletes a saved report")),
    }
}
