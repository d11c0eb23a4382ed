//! Webhooks (P-10): subscriptions are metadata (`webhooks/<name>.json`: an entity, the events,
//! an optional filter tree, the address); their secrets are kept sealed apart, per
//! installation. A shared outbox consumer turns each event into at most one delivery per
//! webhook — the most specific event it subscribes to: approved, then stage_moved, then
//! updated — queued once however often the event is seen. Deliveries are sent apart from the
//! outbox ([`deliver`]), each on its own, so one slow or dead receiver delays no other, the
//! outbox or the app; every node sends, holding each delivery while it does.
//!
//! A delivery posts JSON with the headers `X-CRM-Delivery` (the id receivers deduplicate by),
//! `X-CRM-Event`, `X-CRM-Webhook`, `X-CRM-Timestamp` (Unix seconds) and `X-CRM-Signature`:
//! `sha256=` and the hex HMAC-SHA256, by the secret, of the timestamp, a dot and the body, so
//! that receivers can reject forgeries and replays.

pub mod deliver;
pub mod screens;

use crm_model::changes::ChangeError;
use crm_model::{Entity, FieldType, WebhookDoc, WebhookEvent};
use crm_store::jobs::Event;
use crm_store::webhooks::{self as store, Delivery, Status};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Consumer, Handled};
use crate::records::RecordOut;

/// The consumer's name, kept with its cursor and claim.
const NAME: &str = "webhooks";

pub struct Dispatcher;

impl Consumer for Dispatcher {
    fn name(&self) -> &'static str {
        NAME
    }

    fn shared(&self) -> bool {
        true
    }

    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move { queue(app, event).await.map_err(|e| e.to_string()) })
    }
}

/// The events a change is, most specific first.
fn kinds(entity: &Entity, event: &Event, record: &Json) -> Vec<WebhookEvent> {
    let changed = |name: &str| event.payload["fields"].as_array().is_some_and(|f| f.iter().any(|x| x == name));
    match event.event.as_str() {
        "created" => vec![WebhookEvent::Created],
        "deleted" => vec![WebhookEvent::Deleted],
        "restored" => vec![WebhookEvent::Restored],
        "updated" => {
            let mut kinds = Vec::new();
            if let Some(approval) = &entity.def.approval
                && changed(approval.field.as_str())
                && record[approval.field.as_str()] == "approved"
            {
                kinds.push(WebhookEvent::Approved);
            }
            if entity.live_fields().any(|f| f.field_type == FieldType::Stage && changed(f.name.as_str())) {
                kinds.push(WebhookEvent::StageMoved);
            }
            kinds.push(WebhookEvent::Updated);
            kinds
        }
        _ => Vec::new(),
    }
}

/// Queues an event for each enabled webhook of its entity that subscribes to it and whose
/// filter the record matches.
async fn queue(app: &App, event: &Event) -> ApiResult<()> {
    let catalog = app.catalog();
    let hooks: Vec<&WebhookDoc> = catalog.webhooks_of(&event.entity).collect();
    let Some(entity) = catalog.entity(&event.entity).filter(|_| !hooks.is_empty()) else { return Ok(()) };
    // The record as it is now, from the recycle bin too (a deleted record's last values).
    let Some(record) = crm_store::records::get(&app.db, entity, event.record_id, None).await? else { return Ok(()) };
    let record_json =
        serde_json::to_value(RecordOut::whole(entity.clone(), record)).map_err(|e| ApiError::Internal(e.into()))?;
    let kinds = kinds(entity, event, &record_json);
    for hook in hooks {
        let Some(kind) = kinds.iter().copied().find(|k| hook.events.contains(k)) else { continue };
        let filter = catalog.webhook_filter(hook).map_err(|e| ApiError::Internal(anyhow::anyhow!(e.message)))?;
        if let Some(filter) = filter
            && crm_store::records::get(&app.db, entity, event.record_id, Some(&filter)).await?.is_none()
        {
            continue;
        }
        let id = Uuid::now_v7();
        let body = json!({
            "id": id,
            "webhook": hook.name,
            "event": kind.as_str(),
            "entity": event.entity,
            "record_id": event.record_id,
            "occurred_at": crm_model::value::format_datetime(&event.at),
            "source": event.payload["source"],
            "changed": event.payload["fields"],
            "record": record_json,
        });
        let now = app.now();
        let delivery = Delivery {
            id,
            webhook: hook.name.to_string(),
            event_seq: event.seq,
            entity: event.entity.clone(),
            record_id: event.record_id,
            event: kind.as_str().to_owned(),
            body: body.to_string(),
            status: Status::Pending,
            attempts: 0,
            next_at: now,
            created_at: now,
            delivered_at: None,
        };
        store::queue(&app.db, &delivery).await?;
    }
    Ok(())
}

/// The setting that keeps a webhook's sealed secret.
fn secret_setting(name: &str) -> String {
    format!("webhook:{name}")
}

/// A webhook's secret, opened; `None` while none was made.
pub(crate) async fn secret(app: &App, name: &str) -> ApiResult<Option<String>> {
    let stored = crm_store::settings::setting(&app.db, &secret_setting(name)).await?;
    Ok(stored.and_then(|s| s["sealed"].as_str().and_then(|sealed| app.secrets.open(sealed))))
}

fn webhook<'c>(catalog: &'c crm_model::Catalog, name: &str) -> ApiResult<&'c WebhookDoc> {
    catalog.docs().webhooks.get(name).ok_or_else(|| ApiError::not_found(format!("no webhook `{name}`")))
}

/// `POST /api/v1/webhooks/{name}/secret`: a new secret, answered this once; deliveries sign
/// with it from now on.
pub async fn new_secret(app: &App, principal: &Principal, name: &str) -> ApiResult<Json> {
    principal.require_admin()?;
    webhook(&app.catalog(), name)?;
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    let secret = format!("whsec_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let stored = json!({"sealed": app.secrets.seal(&secret)});
    crm_store::settings::set_setting(&app.db, &secret_setting(name), stored, principal.user_id, app.now()).await?;
    Ok(json!({"secret": secret}))
}

/// `GET /api/v1/webhooks/{name}/deliveries`: the latest deliveries, each with its attempts.
pub async fn deliveries(app: &App, principal: &Principal, name: &str, limit: i64) -> ApiResult<Json> {
    principal.require_admin()?;
    webhook(&app.catalog(), name)?;
    let log = store::log(&app.db, name, limit.clamp(1, 200)).await?;
    let ids: Vec<Uuid> = log.iter().map(|d| d.id).collect();
    let attempts = store::attempts(&app.db, &ids).await?;
    let data: Vec<Json> = log
        .iter()
        .map(|d| {
            let mine: Vec<&store::Attempt> = attempts.iter().filter(|(id, _)| *id == d.id).map(|(_, a)| a).collect();
            let mut json = serde_json::to_value(d).unwrap_or_default();
            json["attempt_log"] = json!(mine);
            json
        })
        .collect();
    let has_secret = secret(app, name).await?.is_some();
    Ok(json!({"data": data, "secret_set": has_secret}))
}

/// `POST /api/v1/webhooks/{name}/deliveries/{id}/redeliver`: sent again from now.
pub async fn redeliver(app: &App, principal: &Principal, name: &str, id: &str) -> ApiResult<Json> {
    principal.require_admin()?;
    let missing = || ApiError::not_found(format!("no delivery `{id}` of the webhook `{name}`"));
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    if !store::redeliver(&app.db, name, id, app.now()).await? {
        return Err(missing());
    }
    Ok(json!({"id": id, "status": Status::Pending.as_str()}))
}

/// `DELETE /api/v1/webhooks/{name}`: the subscription goes (its history keeps it), with its
/// secret; its deliveries stay in the log.
pub async fn remove(app: &App, principal: &Principal, name: &str) -> ApiResult<()> {
    principal.require_admin()?;
    crate::metadata::apply_docs(app, Some(principal.user_id), |docs| {
        let mut next = docs.clone();
        next.webhooks.remove(name).ok_or_else(|| ChangeError::NotFound(format!("no webhook `{name}`")))?;
        Ok(next)
    })
    .await?;
    crm_store::settings::set_setting(&app.db, &secret_setting(name), json!({}), principal.user_id, app.now()).await?;
    Ok(())
}
