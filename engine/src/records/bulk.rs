//! Operations on many records at once — update, assign, delete, restore, share — with a
//! result per id: each record goes through the save pipeline on its own right, those refused
//! are left as they were, and the others are written together.

use std::collections::HashSet;

use crm_model::filter::{Cond, Op};
use crm_model::{Action, Filter, ListQuery, USER_ENTITY, Value};
use crm_store::Record;
use crm_store::records as store;
use crm_store::system::{self, AuditEntry};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::save::{Source, Unit};
use super::{checks, pool};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

/// Most ids one bulk operation takes.
pub const MAX_BULK: usize = 1000;

/// The outcome of one record of a bulk operation.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the new version when there is one.
    Done(Option<i64>),
    NotFound,
    /// The caller may see the record but not do this to it (a lock, an edit scope).
    Forbidden {
        code: &'static str,
        message: String,
    },
    Invalid(Vec<FieldError>),
}

impl Outcome {
    /// The outcome of a refusal; other errors end the whole operation.
    fn of(error: ApiError) -> Result<Outcome, ApiError> {
        match error {
            ApiError::NotFound(_) => Ok(Outcome::NotFound),
            ApiError::Forbidden { code, message } => Ok(Outcome::Forbidden { code, message }),
            ApiError::Invalid(errors) => Ok(Outcome::Invalid(errors)),
            other => Err(other),
        }
    }
}

#[derive(Debug)]
pub struct BulkResult {
    pub id: String,
    pub outcome: Outcome,
}

impl serde::Serialize for BulkResult {
    /// `{"id", "status", "version"?, "error"?}` with the HTTP status the record would have had.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match &self.outcome {
            Outcome::Done(Some(version)) => json!({"id": self.id, "status": 200, "version": version}),
            Outcome::Done(None) => json!({"id": self.id, "status": 200}),
            Outcome::NotFound => {
                json!({"id": self.id, "status": 404, "error": {"code": "not_found", "message": "no such record"}})
            }
            Outcome::Forbidden { code, message } => {
                json!({"id": self.id, "status": 403, "error": {"code": code, "message": message}})
            }
            Outcome::Invalid(errors) => {
                json!({"id": self.id, "status": 422, "error": {"code": "validation_failed", "errors": errors}})
            }
        };
        value.serialize(serializer)
    }
}

fn bulk_ids(ids: &[Json]) -> ApiResult<Vec<(String, Option<Uuid>)>> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(ApiError::bad_request("invalid_body", format!("`ids` takes 1 to {MAX_BULK} ids")));
    }
    ids.iter()
        .map(|id| {
            let text = id.as_str().ok_or_else(|| ApiError::bad_request("invalid_body", "ids are strings"))?;
            Ok((text.to_owned(), Uuid::parse_str(text).ok()))
        })
        .collect()
}

/// What a bulk operation does to each record.
#[derive(Clone, Copy)]
pub enum BulkOp<'b> {
    /// Sets the same values.
    Update(&'b Json),
    /// Gives a new owner.
    Assign(Uuid),
    /// Takes records from a public pool as the caller's own, within the claim limits.
    Claim,
    Delete,
    Restore,
}

/// How often a bulk operation is tried again when a record changed while it was prepared.
const ATTEMPTS: usize = 3;

/// Applies an operation to many records, each through the pipeline; a result per id.
pub async fn bulk(
    app: &App,
    principal: &Principal,
    source: Source,
    entity_name: &str,
    ids: &[Json],
    op: BulkOp<'_>,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let needed = match op {
        BulkOp::Update(_) => Action::Edit,
        BulkOp::Assign(_) | BulkOp::Claim => Action::Read,
        BulkOp::Delete => Action::Delete,
        BulkOp::Restore => Action::Restore,
    };
    principal.entity(&catalog, entity_name, needed)?;
    if let BulkOp::Update(set) = op {
        // Values that are wrong for every record are said once, for the whole request.
        let set = checks::body_object(set, "`set`")?;
        if set.is_empty() {
            return Err(ApiError::bad_request("invalid_body", "`set` names no field"));
        }
        let entity = principal.entity(&catalog, entity_name, Action::Edit)?;
        checks::parse_values(&catalog, entity, principal, set, "", false).map_err(ApiError::Invalid)?;
    }
    let to_pool = match op {
        BulkOp::Assign(owner) => pool::is_pool(app, owner).await?,
        _ => false,
    };
    if matches!(op, BulkOp::Assign(_)) && !to_pool && !principal.access.allows(entity_name, Action::Assign) {
        return Err(ApiError::forbidden(format!("your roles do not allow `assign` on `{entity_name}`")));
    }
    let ids = bulk_ids(ids)?;
    let mut attempt = 0;
    loop {
        let mut allowance = match op {
            BulkOp::Claim => pool::allowance(app, principal, entity_name).await?,
            _ => pool::Allowance::Unlimited,
        };
        let mut unit = Unit::new(app, principal, source).await?;
        let mut results = Vec::with_capacity(ids.len());
        for (text, id) in &ids {
            let Some(id) = *id else {
                results.push(BulkResult { id: text.clone(), outcome: Outcome::NotFound });
                continue;
            };
            if let Some(refusal) = allowance.refusal() {
                results.push(BulkResult { id: text.clone(), outcome: refusal });
                continue;
            }
            let mark = unit.mark();
            let done = match op {
                BulkOp::Update(set) => unit.update(entity_name, &id.to_string(), set, None).await,
                BulkOp::Assign(owner) => unit.assign(entity_name, id, owner, to_pool).await,
                BulkOp::Claim => unit.claim(entity_name, id).await.inspect(|()| allowance.take()),
                BulkOp::Delete => unit.delete(entity_name, id).await,
                BulkOp::Restore => unit.restore(entity_name, id).await,
            };
            let outcome = match done {
                Ok(()) => Outcome::Done(None),
                Err(error) => {
                    unit.rewind(mark);
                    Outcome::of(error)?
                }
            };
            results.push(BulkResult { id: text.clone(), outcome });
        }
        match unit.commit().await {
            Ok(stored) => {
                for result in &mut results {
                    if let (Outcome::Done(version), Ok(id)) = (&mut result.outcome, Uuid::parse_str(&result.id)) {
                        *version = stored.record(id).map(Record::version);
                    }
                }
                return Ok(results);
            }
            Err(ApiError::Conflict(_)) if attempt + 1 < ATTEMPTS => attempt += 1,
            Err(other) => return Err(other),
        }
    }
}

/// Who records are shared with.
#[derive(Debug, Clone, Copy)]
pub enum Grantee {
    User(Uuid),
    Department(Uuid),
}

/// Shares records the caller may change with a user or a department, for reading or editing
/// (C-3), or takes such shares back (`access` is `None`); a result per id. A share is not a
/// change of the record: it is kept beside it, and audited.
pub async fn bulk_share(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
    grantee: Grantee,
    access: Option<&'static str>,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Share)?;
    let (target_entity, target, field) = match grantee {
        Grantee::User(id) => (USER_ENTITY, id, "user"),
        Grantee::Department(id) => ("department", id, "department"),
    };
    let targets = catalog.entity(target_entity).ok_or_else(|| ApiError::not_found(format!("no {target_entity}")))?;
    if store::get(&app.db, targets, target, None).await?.is_none_or(|r| r.is_deleted()) {
        return Err(ApiError::field(field, "not_found", format!("no {target_entity} with id {target}")));
    }
    let scope = principal.edit_scope(&*app.departments().await?, entity);
    let ids = bulk_ids(ids)?;
    let wanted: Vec<Uuid> = ids.iter().filter_map(|(_, id)| *id).collect();
    let mut scoped = Filter::Cond(Box::new(Cond {
        field: entity.column("id").expect("every entity has an id").clone(),
        op: Op::In(wanted.iter().map(|id| Value::Uuid(*id)).collect()),
    }));
    if let Some(scope) = scope {
        scoped = scoped.and(scope);
    }
    let found: HashSet<Uuid> = if wanted.is_empty() {
        HashSet::new()
    } else {
        let query =
            ListQuery { filter: Some(scoped), sort: Vec::new(), limit: MAX_BULK as u32, after: None, deleted: false };
        store::list(&app.db, entity, &query).await?.records.iter().map(Record::id).collect()
    };
    let shares: Vec<system::Share> = wanted
        .iter()
        .filter(|id| found.contains(id))
        .map(|id| system::Share {
            entity: entity_name.to_owned(),
            record_id: *id,
            user: matches!(grantee, Grantee::User(_)).then_some(target),
            department: matches!(grantee, Grantee::Department(_)).then_some(target),
            access: access.unwrap_or("read"),
        })
        .collect();
    let now = app.now();
    let mut tx = app.db.begin().await?;
    match access {
        Some(_) => system::share(&mut tx, &shares, principal.user_id, now).await?,
        None => system::unshare(&mut tx, &shares).await?,
    }
    let audit: Vec<AuditEntry> = shares
        .iter()
        .map(|s| AuditEntry {
            actor: Some(principal.user_id),
            entity: entity_name.to_owned(),
            record_id: s.record_id,
            action: if access.is_some() { "share" } else { "unshare" },
            source: None,
            changes: json!({ field: target, "access": access }),
        })
        .collect();
    system::record_change(&mut tx, now, audit, Vec::new()).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    Ok(ids
        .into_iter()
        .map(|(text, id)| match id {
            Some(id) if found.contains(&id) => BulkResult { id: text, outcome: Outcome::Done(None) },
            _ => BulkResult { id: text, outcome: Outcome::NotFound },
        })
        .collect())
}
