//! Approval locks (审核锁定): a submitted or approved record, and the records whose `locked_by`
//! lookup points at it (an order's lines), may only be changed by those whose roles may
//! approve it. The save pipeline asks here before a write and again as it writes.

use std::sync::Arc;

use crm_model::{Action, Catalog, Entity, Value};
use crm_store::Record;
use uuid::Uuid;

use crate::access::Principal;
use crate::error::{ApiError, ApiResult};

/// Why a change is refused: the record (or its parent) is locked by its approval.
fn locked(what: &str) -> ApiError {
    ApiError::Forbidden {
        code: "record_locked",
        message: format!("{what} is locked by its approval (已审核或待审核，已锁定): only approvers may change it"),
    }
}

pub(crate) fn status_of(entity: &Entity, record: &Record) -> Option<String> {
    let approval = entity.def.approval.as_ref()?;
    match &record.values[entity.column_index(approval.field.as_str())?] {
        Value::Text(status) => Some(status.clone()),
        _ => None,
    }
}

fn is_locked(entity: &Entity, record: &Record) -> bool {
    let Some(approval) = &entity.def.approval else { return false };
    status_of(entity, record).is_some_and(|s| approval.locked.contains(&s))
}

/// Refuses a change to a locked record by someone whose roles may not approve its entity.
pub fn check_own_lock(principal: &Principal, entity: &Entity, record: &Record) -> ApiResult<()> {
    let name = entity.name().as_str();
    if is_locked(entity, record) && !principal.access.allows(name, Action::Approve) {
        return Err(locked(&format!("this {name}")));
    }
    Ok(())
}

/// The parent whose lock covers a record (`locked_by`: an order line's order), if it has one.
pub fn locking_parent(catalog: &Catalog, entity: &Entity, record: &Record) -> Option<(Arc<Entity>, Uuid)> {
    let parent_field = entity.def.locked_by.as_ref()?;
    let parent_entity =
        entity.field(parent_field.as_str()).and_then(|f| f.reference_target()).and_then(|t| catalog.entity(t))?;
    match record.values[entity.column_index(parent_field.as_str())?] {
        Value::Uuid(parent_id) => Some((parent_entity.clone(), parent_id)),
        _ => None,
    }
}

/// Refuses a write under a locked parent by someone whose roles may not approve it.
pub fn check_parent_lock(principal: &Principal, parent_entity: &Entity, parent: Option<&Record>) -> ApiResult<()> {
    let parent_name = parent_entity.name().as_str();
    if parent.is_some_and(|p| is_locked(parent_entity, p)) && !principal.access.allows(parent_name, Action::Approve) {
        return Err(locked(&format!("its {parent_name}")));
    }
    Ok(())
}
