//! Metadata changes: a new set of documents is checked, planned against the live catalog,
//! applied to the tables and stored in one transaction, then made live by swapping the
//! catalog. The API, packages and the first start all change metadata through here.

use crm_model::changes::ChangeError;
use crm_model::plan::{self, Plan};
use crm_model::{Catalog, DocKind, Docs};
use crm_store::{ddl, packages, system, tasks};
use uuid::Uuid;

use crate::app::App;
use crate::error::{ApiError, ApiResult};

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::NotFound(what) => ApiError::NotFound(what),
            ChangeError::Invalid(errors) => ApiError::InvalidMetadata(errors),
        }
    }
}

/// The checked catalog and the plan that would make `next` live.
pub fn plan_docs(current: &Catalog, next: Docs) -> ApiResult<(Catalog, Plan)> {
    let plan = plan::diff(current.docs(), &next)?;
    let catalog = Catalog::build(next, current.version)?;
    Ok((catalog, plan))
}

/// New and changed rules must compile: a syntax error is reported with the rule's name, line
/// and column, and nothing is saved.
fn check_scripts(app: &App, current: &Docs, next: &Docs) -> ApiResult<()> {
    let errors: Vec<crm_model::MetaError> = next
        .scripts
        .values()
        .filter(|s| current.scripts.get(&s.name).is_none_or(|old| old.source != s.source))
        .filter_map(|s| app.rules.compile(s.name.as_str(), &s.source).err().map(|e| (s, e)))
        .map(|(s, e)| crm_model::MetaError::new(crm_model::DocKind::Script, s.name.as_str(), "/source", e.to_string()))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(ApiError::InvalidMetadata(errors)) }
}

/// New and changed print templates must compile: an error names the template and the line.
fn check_print_templates(current: &Docs, next: &Docs) -> ApiResult<()> {
    let errors: Vec<crm_model::MetaError> = next
        .print_templates
        .values()
        .filter(|t| current.print_templates.get(&t.name).is_none_or(|old| old.source != t.source))
        .filter_map(|t| crate::print::compile_error(t.name.as_str(), &t.source).map(|e| (t, e)))
        .map(|(t, e)| crm_model::MetaError::new(crm_model::DocKind::PrintTemplate, t.name.as_str(), "/source", e))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(ApiError::InvalidMetadata(errors)) }
}

/// Refuses a change of roles after which no active user would be an administrator (while
/// someone is one now): nobody could sign in to undo it.
async fn keep_an_administrator(app: &App, current: &Docs, next: &Docs) -> ApiResult<()> {
    let admin_roles =
        |docs: &Docs| docs.roles.values().filter(|r| r.admin).map(|r| r.name.to_string()).collect::<Vec<_>>();
    // Before the first package there are no users to lock out.
    if !current.entities.contains_key(crm_model::USER_ENTITY)
        || !system::active_users_with_roles(&app.db, &admin_roles(next)).await?.is_empty()
        || system::active_users_with_roles(&app.db, &admin_roles(current)).await?.is_empty()
    {
        return Ok(());
    }
    Err(ApiError::InvalidMetadata(vec![crm_model::MetaError {
        doc: "roles".into(),
        path: "/admin".into(),
        message: "after this change no active user would be an administrator".into(),
    }]))
}

/// The history entry of a record whose value, entered by hand, a new rollup replaced: the
/// value is kept there, said as a change made by the rollup.
fn replaced_entry(catalog: &Catalog, by: Option<Uuid>, replaced: &ddl::Replaced) -> system::AuditEntry {
    let field = catalog.entity(replaced.entity.as_str()).and_then(|e| e.field(replaced.field.as_str()));
    let json = |value| field.map_or(serde_json::Value::Null, |f| crm_model::value::to_json(f, value));
    system::AuditEntry {
        actor: by,
        entity: replaced.entity.to_string(),
        record_id: replaced.id,
        action: "update",
        source: Some(crate::records::Source::Rollup.as_str()),
        changes: serde_json::json!({ replaced.field.as_str(): [json(&replaced.before), json(&replaced.after)] }),
    }
}

/// Creates or replaces one document, checked against its JSON Schema and the catalog. `name`
/// is the one it must carry: its `name`, or for the documents of an entity's screens its
/// `entity`.
pub async fn put_document(
    app: &App,
    by: Option<Uuid>,
    kind: DocKind,
    name: &str,
    doc: &serde_json::Value,
) -> ApiResult<Plan> {
    let key = if matches!(kind, DocKind::Layout | DocKind::ListView | DocKind::Related) { "entity" } else { "name" };
    if doc.get(key).and_then(serde_json::Value::as_str) != Some(name) {
        return Err(ApiError::bad_request("invalid_body", format!("the document's `{key}` must be `{name}`")));
    }
    apply_docs(app, by, |docs| {
        let mut next = docs.clone();
        next.insert_json(kind, doc).map_err(ChangeError::Invalid)?;
        Ok(next)
    })
    .await
}

/// Applies a change to the live metadata. `change` computes the next documents from the
/// current ones; it is called again if another node changed the metadata meanwhile.
pub async fn apply_docs(
    app: &App,
    by: Option<Uuid>,
    change: impl Fn(&Docs) -> Result<Docs, ChangeError>,
) -> ApiResult<Plan> {
    apply_package(app, by, change, None).await
}

/// What becomes of a package with a metadata change.
#[derive(Clone, Copy)]
pub enum PackageChange<'a> {
    /// Installed or upgraded: recorded with its items.
    Installed(&'a packages::Installed),
    /// Removed: marked so.
    Removed(&'a str),
}

impl PackageChange<'_> {
    async fn record(
        self,
        tx: &mut crm_store::Tx,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crm_store::StoreError> {
        match self {
            PackageChange::Installed(package) => packages::put(tx, package).await,
            PackageChange::Removed(name) => packages::mark_removed(tx, name, now).await,
        }
    }
}

/// [`apply_docs`] for a package: what becomes of the package is recorded in the same
/// transaction (also when its documents are already as it wants them).
pub async fn apply_package(
    app: &App,
    by: Option<Uuid>,
    change: impl Fn(&Docs) -> Result<Docs, ChangeError>,
    package: Option<PackageChange<'_>>,
) -> ApiResult<Plan> {
    let _guard = app.meta_lock.lock().await;
    for _ in 0..3 {
        let current = app.catalog();
        let next = change(current.docs())?;
        check_scripts(app, current.docs(), &next)?;
        check_print_templates(current.docs(), &next)?;
        if next.roles != current.docs().roles {
            keep_an_administrator(app, current.docs(), &next).await?;
        }
        let (mut catalog, plan) = plan_docs(&current, next)?;
        if plan.is_empty() {
            if let Some(package) = package {
                let mut tx = app.db.begin().await?;
                package.record(&mut tx, app.now()).await?;
                tx.commit().await?;
            }
            return Ok(plan);
        }
        let mut tx = app.db.begin().await?;
        if let Some(package) = package {
            package.record(&mut tx, app.now()).await?;
        }
        if system::lock_catalog(&mut tx).await? != current.version {
            drop(tx);
            app.set_catalog(crate::app::load_catalog(&app.db).await.map_err(ApiError::Internal)?);
            continue;
        }
        let replaced = ddl::apply(&mut tx, &catalog, &plan.tables).await.map_err(|e| {
            if e.is_unique_violation() {
                ApiError::InvalidMetadata(vec![crm_model::MetaError {
                    doc: "data".into(),
                    path: String::new(),
                    message: "existing records have duplicate values in a field being made unique".into(),
                }])
            } else {
                e.into()
            }
        })?;
        catalog.version = system::save_docs(&mut tx, &plan.docs, by, app.now()).await?;
        let mut audit: Vec<system::AuditEntry> = plan
            .docs
            .iter()
            .map(|doc| system::AuditEntry {
                actor: by,
                entity: format!("meta:{}", doc.kind.as_str()),
                record_id: Uuid::nil(),
                action: "meta_change",
                source: None,
                changes: serde_json::json!({"name": doc.name, "catalog_version": catalog.version}),
            })
            .collect();
        audit.extend(replaced.iter().map(|r| replaced_entry(&catalog, by, r)));
        let mut events = Vec::new();
        for entity in crate::search::reindexed(&current, &catalog) {
            let task = Uuid::now_v7();
            tasks::insert(app.db.dialect(), task, crate::search::REINDEX, Some(&entity), &app.node, by, app.now())
                .execute_tx(&mut tx)
                .await?;
            let payload = serde_json::json!({"task": task});
            events.push(system::OutboxEvent { entity, record_id: Uuid::nil(), event: crate::search::REINDEX, payload });
        }
        system::record_change(&mut tx, app.now(), audit, events).await?;
        tx.commit().await?;
        app.wrote();
        tracing::info!(
            version = catalog.version,
            table_steps = plan.tables.len(),
            documents = plan.docs.len(),
            "metadata changed"
        );
        app.set_catalog(catalog);
        return Ok(plan);
    }
    Err(ApiError::Conflict("the metadata keeps changing on another node; try again".into()))
}
