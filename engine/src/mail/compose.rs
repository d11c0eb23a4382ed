//! Composing a mailing: recipients chosen in a list (by ids, or by the list's filter), a
//! template or a subject and body, and when — kept as a draft, sent now or at a time. The
//! mailing is a record saved through the save pipeline; its recipients are delivery rows
//! written in the same transaction, so a mailing never exists without them nor they without
//! it. Only the recipients the sender may read are taken, and no more than their role's
//! `send_limit`.

use chrono::{DateTime, Utc};
use crm_model::Action;
use crm_store::mail::{self as store, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::merge::Template;
use super::{ADDRESS, MAILING, TEMPLATE};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
pub use crate::records::selection::Selection as Recipients;
use crate::records::{self, ListParams, MAX_LIMIT, Source, Unit, selection};

/// When a mailing goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Kept to finish later.
    #[default]
    Draft,
    Now,
    /// At `scheduled_at`.
    Later,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compose {
    pub recipients: Recipients,
    /// A mail template's id: its subject and body, unless given here.
    #[serde(default)]
    pub template: Option<Uuid>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub campaign: Option<Uuid>,
    #[serde(default)]
    pub send: When,
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// For texts instead of mails: an SMS template's id (its channel is `sms`).
    #[serde(default)]
    pub sms_template: Option<Uuid>,
}

/// `POST /api/v1/mailings`: saves a mailing with its recipients; returns it with how many
/// recipients it has.
pub async fn compose(app: &App, principal: &Principal, source: Source, body: &Json) -> ApiResult<Json> {
    let compose: Compose = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request("invalid_body", format!("a mailing: {e}")))?;
    let texts = compose.sms_template.is_some();
    let entity = recipient_entity(app, principal, &compose.recipients.entity, texts)?;
    let (subject, text) = match compose.sms_template {
        Some(id) => sms_content(app, principal, id).await?,
        None => content(app, principal, &compose).await?,
    };
    if !texts {
        Template::new(&subject, &text)?;
    }
    let (status, deliveries) = when(app, compose.send, compose.scheduled_at)?;
    let ids = resolve(app, principal, &compose.recipients).await?;
    let mut record = json!({
        "name": subject,
        "body": text,
        "recipient_entity": entity,
        "status": status,
        "scheduled_at": compose.scheduled_at.filter(|_| compose.send == When::Later),
    });
    if let Some(template) = compose.template {
        record["template"] = json!(template);
    }
    if let Some(campaign) = compose.campaign {
        record["campaign"] = json!(campaign);
    }
    if let Some(template) = compose.sms_template {
        record["channel"] = json!("sms");
        record["sms_template"] = json!(template);
    }
    let mut unit = Unit::new(app, principal, source).await?;
    let id = unit.create(MAILING, &record).await?;
    let count = ids.len();
    unit.also(move |tx, now| {
        Box::pin(async move { store::add_recipients(tx, id, &entity, &ids, deliveries, now).await })
    });
    let committed = unit.commit().await?;
    let out = committed.out(principal, id)?;
    Ok(json!({"mailing": out, "recipients": count}))
}

/// The entity recipients are of: one the caller may send to, with an address field (a mobile
/// number's, for texts).
fn recipient_entity(app: &App, principal: &Principal, name: &str, texts: bool) -> ApiResult<String> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, name, Action::Send).map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::field("recipients/entity", "invalid_option", format!("no entity `{name}`")),
        other => other,
    })?;
    let (field, kind, what) = if texts {
        (crate::sms::MOBILE, crm_model::FieldType::Phone, "mobile number")
    } else {
        (ADDRESS, crm_model::FieldType::Email, "e-mail address")
    };
    if entity.column(field).is_none_or(|f| f.field_type != kind) {
        return Err(ApiError::field("recipients/entity", "no_address", format!("`{name}` has no {what} field")));
    }
    Ok(name.to_owned())
}

/// A text's name and content: its SMS template's, which must merge.
async fn sms_content(app: &App, principal: &Principal, id: Uuid) -> ApiResult<(String, String)> {
    let out = records::get(app, principal, crate::sms::TEMPLATE, &id.to_string(), None).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::field("sms_template", "not_found", "no such SMS template"),
        other => other,
    })?;
    let values = serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?;
    let text = |field: &str| values.get(field).and_then(Json::as_str).unwrap_or_default().to_owned();
    crate::sms::Template::new(&text("provider_template"), &text("content"), &text("params"))?;
    Ok((text("name"), text("content")))
}

/// The subject and body: given, else the template's.
async fn content(app: &App, principal: &Principal, compose: &Compose) -> ApiResult<(String, String)> {
    let template = match compose.template {
        Some(id) => {
            let out = records::get(app, principal, TEMPLATE, &id.to_string(), None).await.map_err(|e| match e {
                ApiError::NotFound(_) => ApiError::field("template", "not_found", "no such mail template"),
                other => other,
            })?;
            serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?
        }
        None => Json::Null,
    };
    let pick = |given: &Option<String>, field: &str| {
        given
            .clone()
            .or_else(|| template.get(field).and_then(Json::as_str).map(str::to_owned))
            .filter(|t| !t.trim().is_empty())
    };
    let subject = pick(&compose.subject, "subject");
    let body = pick(&compose.body, "body");
    let mut errors = Vec::new();
    if subject.is_none() {
        errors.push(FieldError::new("subject", "required", "a subject, or a template with one"));
    }
    if body.is_none() {
        errors.push(FieldError::new("body", "required", "a body, or a template with one"));
    }
    match (subject, body) {
        (Some(subject), Some(body)) => Ok((subject, body)),
        _ => Err(ApiError::Invalid(errors)),
    }
}

/// The mailing's status and its recipients' for a choice of when.
fn when(app: &App, send: When, at: Option<DateTime<Utc>>) -> ApiResult<(&'static str, Status)> {
    match send {
        When::Draft => Ok(("draft", Status::Draft)),
        When::Now => Ok(("queued", Status::Queued)),
        When::Later => match at {
            Some(at) if at > app.now() => Ok(("scheduled", Status::Draft)),
            Some(_) => Err(ApiError::field("scheduled_at", "in_the_past", "a time still to come")),
            None => Err(ApiError::field("scheduled_at", "required", "when to send")),
        },
    }
}

fn within_limit(principal: &Principal, count: usize) -> ApiResult<()> {
    let limit = principal.access.send_limit.unwrap_or(u32::MAX) as usize;
    if count > limit { Err(over_limit(limit, count)) } else { Ok(()) }
}

fn over_limit(limit: usize, count: usize) -> ApiError {
    ApiError::Forbidden {
        code: "send_limit",
        message: format!("your role sends to at most {limit} recipients at once; this mailing has {count}"),
    }
}

/// The recipients the sender may read, each once, within their role's limit.
async fn resolve(app: &App, principal: &Principal, recipients: &Recipients) -> ApiResult<Vec<Uuid>> {
    let limit = principal.access.send_limit.unwrap_or(u32::MAX) as usize;
    selection::resolve(app, principal, recipients, limit, |count| over_limit(limit, count), "recipients").await
}

/// The body of `POST /api/v1/mailings/{id}/send`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub send: When,
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/mailings/{id}/send`: a draft (or a scheduled mailing) sent now or at a time.
pub async fn release(app: &App, principal: &Principal, source: Source, id: Uuid, body: &Json) -> ApiResult<Json> {
    let release: Release = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request("invalid_body", format!("when to send: {e}")))?;
    let mailing = read(app, principal, id).await?;
    let status = mailing["status"].as_str().unwrap_or_default();
    if !matches!(status, "draft" | "scheduled") || release.send == When::Draft {
        return Err(ApiError::AlreadyDone {
            code: "not_a_draft",
            message: format!("a mailing that is `{status}` cannot be sent again"),
        });
    }
    let entity = mailing["recipient_entity"].as_str().unwrap_or_default();
    recipient_entity(app, principal, entity, mailing["channel"] == "sms")?;
    let count: i64 = store::counts(&app.db, id).await?.into_iter().map(|(_, n)| n).sum();
    within_limit(principal, count as usize)?;
    let (status, deliveries) = when(app, release.send, release.scheduled_at)?;
    let change = json!({"status": status, "scheduled_at": release.scheduled_at.filter(|_| status == "scheduled")});
    let mut unit = Unit::new(app, principal, source).await?;
    unit.update(MAILING, &id.to_string(), &change, mailing["version"].as_i64()).await?;
    if deliveries == Status::Queued {
        unit.also(move |tx, now| {
            Box::pin(async move { store::move_all(tx, id, Status::Draft, Status::Queued, now).await.map(|_| ()) })
        });
    }
    let out = unit.commit().await?.out(principal, id)?;
    Ok(json!({"mailing": out, "recipients": count}))
}

/// `POST /api/v1/mailings/{id}/cancel`: what was not sent yet is not sent.
pub async fn cancel(app: &App, principal: &Principal, source: Source, id: Uuid) -> ApiResult<Json> {
    let mailing = read(app, principal, id).await?;
    let status = mailing["status"].as_str().unwrap_or_default();
    if !matches!(status, "draft" | "scheduled" | "queued") {
        return Err(ApiError::AlreadyDone { code: "not_cancellable", message: format!("the mailing is `{status}`") });
    }
    let mut unit = Unit::new(app, principal, source).await?;
    unit.update(MAILING, &id.to_string(), &json!({"status": "cancelled"}), mailing["version"].as_i64()).await?;
    unit.also(move |tx, now| {
        Box::pin(async move {
            for from in [Status::Draft, Status::Queued] {
                store::move_all(tx, id, from, Status::Skipped, now).await?;
            }
            Ok(())
        })
    });
    let out = unit.commit().await?.out(principal, id)?;
    Ok(json!({"mailing": out}))
}

/// A mailing as the caller may read it.
async fn read(app: &App, principal: &Principal, id: Uuid) -> ApiResult<Json> {
    let out = records::get(app, principal, MAILING, &id.to_string(), None).await?;
    serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))
}

/// Sends the scheduled mailings whose time has come, as the engine; returns how many.
pub async fn release_due(app: &App, now: DateTime<Utc>) -> ApiResult<usize> {
    let system = Principal::system(&app.catalog());
    let filter = json!({"and": [
        {"field": "status", "op": "eq", "value": "scheduled"},
        {"field": "scheduled_at", "op": "lte", "value": now},
    ]});
    let params = ListParams { filter: Some(filter.to_string()), limit: Some(MAX_LIMIT), ..ListParams::default() };
    let due: Vec<Uuid> =
        records::list(app, &system, MAILING, &params).await?.records().iter().map(|r| r.id()).collect();
    for id in &due {
        let id = *id;
        let mut unit = Unit::new(app, &system, Source::Schedule).await?;
        unit.update(MAILING, &id.to_string(), &json!({"status": "queued"}), None).await?;
        unit.also(move |tx, now| {
            Box::pin(async move { store::move_all(tx, id, Status::Draft, Status::Queued, now).await.map(|_| ()) })
        });
        unit.commit().await?;
    }
    Ok(due.len())
}

/// `GET /api/v1/mailings/{id}/deliveries`: how many recipients are at each status, and a
/// page of them (optionally at one status) after a recipient's id.
pub async fn deliveries(
    app: &App,
    principal: &Principal,
    id: Uuid,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: Option<u32>,
) -> ApiResult<Json> {
    read(app, principal, id).await?;
    let status = match status.filter(|s| !s.is_empty()) {
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            ApiError::bad_request("invalid_query", format!("`status` is one of {:?}", Status::ALL.map(Status::as_str)))
        })?),
        None => None,
    };
    let limit = limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let counts: serde_json::Map<String, Json> =
        store::counts(&app.db, id).await?.into_iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    let (opened, clicked) = store::engaged(&app.db, id).await?;
    let page = store::page(&app.db, id, status, after, i64::from(limit)).await?;
    let next = (page.len() == limit as usize).then(|| page.last().map(|d| d.record_id)).flatten();
    Ok(json!({"counts": counts, "opened": opened, "clicked": clicked, "data": page, "next_after": next}))
}
