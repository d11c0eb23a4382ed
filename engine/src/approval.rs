//! Approvals (审核) and record locks: a record of an entity with an approval is submitted,
//! then approved or rejected by someone whose roles may approve (optionally only the
//! submitter's department manager); each step is kept with its comment. While its status
//! locks it, only approvers may change the record — and the records whose `locked_by` points
//! at it (an approved order's lines).

use chrono::{DateTime, Utc};
use crm_model::{Action, Catalog, Labels, Value};
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
    let to = next_status(action, from.as_deref())
        .map_err(|m| ApiError::field(approval.field.to_string(), "invalid_step", m))?;
    if deciding && approval.manager_only && !principal.is_admin() {
        let submitter =
            system::approval_steps(&app.db, entity_name, id).await?.into_iter().rev().find(|s| s.action == "submit");
        let manager = match submitter.and_then(|s| s.actor) {
            Some(user) => manager_of(app, &catalog, user).await?,
            None => None,
        };
        if manager != Some(principal.user_id) {
            return Err(ApiError::forbidden("only the manager of the submitter's department may decide this approval"));
        }
    }
    let owner = match current.values[col::OWNER] {
        Value::Uuid(owner) => Some(owner),
        _ => None,
    };
    let title = entity.title_of(&current.values).unwrap_or_default();
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
    // The submitter hears the decision.
    let (zh, en) = if action == "approve" { ("已审核通过", "approved") } else { ("被退回", "rejected") };
    let label = &entity.def.label;
    let message = Labels {
        zh_cn: format!("{}「{title}」{zh}{}", label.zh_cn, comment.map(|c| format!("：{c}")).unwrap_or_default()),
        en: format!("{} \"{title}\" {en}{}", label.en, comment.map(|c| format!(": {c}")).unwrap_or_default()),
    }
    .to_message();
    let notify = if deciding { owner } else { None };
    let entity_name = entity_name.to_owned();
    unit.also(move |tx, now: DateTime<Utc>| {
        Box::pin(async move {
            system::insert_approval_step(tx, &entity_name, id, &step, now).await?;
            if let Some(owner) = notify {
                let reminder = system::NewReminder {
                    user: owner,
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
    let version = stored.record(id).map_or(0, Record::version);
    Ok(json!({"id": id, "status": to, "version": version}))
}

/// The manager of a user's department.
async fn manager_of(app: &App, catalog: &Catalog, user: Uuid) -> ApiResult<Option<Uuid>> {
    let (Some(users), Some(departments)) = (catalog.entity(crm_model::USER_ENTITY), catalog.entity("department"))
    else {
        return Ok(None);
    };
    let department = match (store::get(&app.db, users, user, None).await?, users.column_index("department")) {
        (Some(record), Some(i)) => match record.values[i] {
            Value::Uuid(department) => department,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(match (store::get(&app.db, departments, department, None).await?, departments.column_index("manager")) {
        (Some(record), Some(i)) => match record.values[i] {
            Value::Uuid(manager) => Some(manager),
            _ => None,
        },
        _ => None,
    })
}

/// `GET /api/v1/records/{entity}/{id}/approvals`: the record's approval steps.
pub async fn steps(app: &App, principal: &Principal, entity_name: &str, id: &str) -> ApiResult<Json> {
    crate::records::read::get(app, principal, entity_name, id, Some("id")).await?;
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no {entity_name} `{id}`")))?;
    Ok(json!({"data": system::approval_steps(&app.db, entity_name, id).await?}))
}
