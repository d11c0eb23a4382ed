//! Approvals (审核) and record locks: a record of an entity with an approval is submitted,
//! then approved or rejected by someone whose roles may approve (optionally only the
//! submitter's department manager); each step is kept with its comment. While its status
//! locks it, only approvers may change the record — and the records whose `locked_by` points
//! at it (an approved order's lines).

use chrono::{DateTime, Utc};
use crm_model::{Action, Catalog, Entity, Labels, Value};
use crm_store::Record;
use crm_store::records::{self as store, col};
use crm_store::system::{self, ApprovalStep};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::locks::status_of;
use crate::records::{Source, Unit};

/// The status an approval action leads to from the current one, if it may be taken.
fn next_status(action: &str, current: Option<&str>) -> Result<&'static str, String> {
    match (action, current) {
        ("submit", None | Some("draft" | "rejected")) => Ok("submitted"),
        ("approve", Some("submitted")) => Ok("approved"),
        ("reject", Some("submitted")) => Ok("rejected"),
        ("recall", Some("submitted")) => Ok("draft"),
        ("submit" | "approve" | "reject" | "recall", status) => {
            Err(format!("cannot {action} a record whose approval status is {}", status.unwrap_or("empty")))
        }
        (other, _) => Err(format!("no approval action `{other}`; use submit, approve, reject or recall")),
    }
}

/// `POST /api/v1/records/{entity}/{id}/approval`: takes one approval step.
pub async fn act(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    id: &str,
    action: &str,
    comment: Option<&str>,
) -> ApiResult<Json> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?.clone();
    let approval = entity
        .def
        .approval
        .clone()
        .ok_or_else(|| ApiError::bad_request("no_approval", format!("`{entity_name}` has no approval")))?;
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no {entity_name} `{id}`")))?;
    let deciding = matches!(action, "approve" | "reject");
    let needed = if deciding { Action::Approve } else { Action::Edit };
    principal.entity(&catalog, entity_name, needed)?;
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if action == "reject" && comment.is_none() {
        return Err(ApiError::field("comment", "required", "say why the record is rejected"));
    }
    let tree = app.departments().await?;
    let scope = if deciding { principal.read_scope(&tree, &entity) } else { principal.edit_scope(&tree, &entity) };
    let current = store::get(&app.db, &entity, id, scope.as_ref()).await?.filter(|r| !r.is_deleted());
    let current = current.ok_or_else(|| ApiError::not_found(format!("no {entity_name} `{id}`")))?;
    let from = status_of(&entity, &current);
    let mut to = next_status(action, from.as_deref())
        .map_err(|m| ApiError::field(approval.field.to_string(), "invalid_step", m))?;
    let mut next_approver = None;
    if deciding {
        let pending = Pending::of(&system::approval_steps(&app.db, entity_name, id).await?);
        let needs_next_level = needs_next_level(&entity, &current);
        let level = pending.level(needs_next_level);
        let decider = match (level, pending.submitter) {
            (Level::First, Some(submitter)) if approval.manager_only => manager_of(app, &catalog, submitter, 0).await?,
            (Level::Next, Some(submitter)) => manager_of(app, &catalog, submitter, 1).await?,
            _ => None,
        };
        let bound = approval.manager_only || level == Level::Next;
        if bound && !principal.is_admin() && decider != Some(principal.user_id) {
            return Err(ApiError::forbidden(match level {
                Level::Next => {
                    "this approval needs the next level: the manager of the department above the submitter's"
                }
                Level::First => "only the manager of the submitter's department may decide this approval",
            }));
        }
        if action == "approve" && level == Level::First && needs_next_level {
            to = "submitted";
            if let Some(submitter) = pending.submitter {
                next_approver = manager_of(app, &catalog, submitter, 1).await?;
            }
        }
    }
    let owner = match current.values[col::OWNER] {
        Value::Uuid(owner) => Some(owner),
        _ => None,
    };
    let title = entity.title_of(&current.values).unwrap_or_default();
    let current_version = current.version();
    let index = entity.column_index(approval.field.as_str()).expect("the approval field is a column");
    let mut unit = Unit::new(app, principal, Source::Approval).await?;
    unit.change_checked(&entity, current, vec![(index, Value::Text(to.to_owned()))], "approval").await?;
    let step = ApprovalStep {
        action: action.to_owned(),
        from,
        to: to.to_owned(),
        actor: Some(principal.user_id),
        comment: comment.map(str::to_owned),
        at: None,
    };
    let (zh, en) = match (action, to) {
        ("approve", "submitted") => ("通过了初审，待上级审批", "passed the first approval and awaits the next level"),
        ("approve", _) => ("已审核通过", "approved"),
        _ => ("被退回", "rejected"),
    };
    let label = &entity.def.label;
    let message = Labels {
        zh_cn: format!("{}「{title}」{zh}{}", label.zh_cn, comment.map(|c| format!("：{c}")).unwrap_or_default()),
        en: format!("{} \"{title}\" {en}{}", label.en, comment.map(|c| format!(": {c}")).unwrap_or_default()),
    }
    .to_message();
    // The submitter hears the decision; the next level hears it is their turn.
    let notify: Vec<Uuid> = if deciding { owner.into_iter().chain(next_approver).collect() } else { Vec::new() };
    let entity_name = entity_name.to_owned();
    unit.also(move |tx, now: DateTime<Utc>| {
        Box::pin(async move {
            system::insert_approval_step(tx, &entity_name, id, &step, now).await?;
            for user in notify {
                let reminder = system::NewReminder {
                    user,
                    message: &message,
                    entity: Some(&entity_name),
                    record_id: Some(id),
                    rule: None,
                    due_at: now,
                };
                system::insert_reminder(tx, &reminder, now).await?;
            }
            Ok(())
        })
    });
    let stored = unit.commit().await?;
    let version = stored.record(id).map_or(current_version, Record::version);
    Ok(json!({"id": id, "status": to, "version": version}))
}

/// Which approval a submitted record waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    First,
    /// The second, by the manager of the department above the submitter's.
    Next,
}

/// Where an approval stands since the record was last submitted: by whom, and how often it
/// was approved since (a first approval of a record needing the next level keeps it
/// submitted).
pub(crate) struct Pending {
    pub submitter: Option<Uuid>,
    approvals: usize,
}

impl Pending {
    pub fn of(steps: &[ApprovalStep]) -> Self {
        let since = steps.iter().rposition(|s| s.action == "submit").map_or(0, |i| i + 1);
        Pending {
            submitter: since.checked_sub(1).and_then(|i| steps[i].actor),
            approvals: steps[since..].iter().filter(|s| s.action == "approve").count(),
        }
    }

    /// The approval due, given whether the record asks for the next level.
    pub fn level(&self, needs_next_level: bool) -> Level {
        if self.approvals > 0 && needs_next_level { Level::Next } else { Level::First }
    }
}

/// Whether the record's own values ask for a second approval (it is over budget).
fn needs_next_level(entity: &Entity, record: &Record) -> bool {
    let when = entity.def.approval.as_ref().and_then(|a| a.next_level_when.as_ref());
    when.and_then(|f| entity.column_index(f.as_str())).is_some_and(|i| record.values[i] == Value::Boolean(true))
}

/// The manager of a user's department, or of the department `above` levels over it.
async fn manager_of(app: &App, catalog: &Catalog, user: Uuid, above: usize) -> ApiResult<Option<Uuid>> {
    let (Some(users), Some(departments)) = (catalog.entity(crm_model::USER_ENTITY), catalog.entity("department"))
    else {
        return Ok(None);
    };
    let lookup = |record: Option<Record>, entity: &Entity, field: &str| match (record, entity.column_index(field)) {
        (Some(record), Some(i)) => match record.values[i] {
            Value::Uuid(id) => Some(id),
            _ => None,
        },
        _ => None,
    };
    let Some(mut department) = lookup(store::get(&app.db, users, user, None).await?, users, "department") else {
        return Ok(None);
    };
    for _ in 0..above {
        let record = store::get(&app.db, departments, department, None).await?;
        let Some(parent) = lookup(record, departments, "parent") else { return Ok(None) };
        department = parent;
    }
    Ok(lookup(store::get(&app.db, departments, department, None).await?, departments, "manager"))
}

/// `GET /api/v1/records/{entity}/{id}/approvals`: the record's approval steps.
pub async fn steps(app: &App, principal: &Principal, entity_name: &str, id: &str) -> ApiResult<Json> {
    crate::records::read::get(app, principal, entity_name, id, Some("id")).await?;
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no {entity_name} `{id}`")))?;
    Ok(json!({"data": system::approval_steps(&app.db, entity_name, id).await?}))
}
