//! Scheduled rules (`"schedule": "daily 08:00"`): each runs once per slot, on one node, as the
//! system, and may only leave reminders. The time is passed in, so tests drive the schedule
//! with a clock of their own instead of waiting.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, Utc};
use crm_model::ScriptEvent;
use crm_rules::Effect;
use crm_store::system;
use serde_json::Map;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// The business day's time zone: China Standard Time.
pub fn business_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("in range")
}

/// The latest slot of a `daily HH:MM` schedule at or before `now`.
fn latest_slot(schedule: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let time = NaiveTime::parse_from_str(schedule.strip_prefix("daily ")?, "%H:%M").ok()?;
    let local = now.with_timezone(&business_offset());
    let today = local.date_naive().and_time(time).and_local_timezone(business_offset()).single()?;
    let slot = if today <= local { today } else { today - TimeDelta::days(1) };
    Some(slot.with_timezone(&Utc))
}

/// Runs every scheduled rule whose slot has come and that no node has run for it yet;
/// returns how many ran. A rule that fails is logged and does not stop the others.
pub async fn run_due(app: &App, now: DateTime<Utc>) -> ApiResult<usize> {
    let catalog = app.catalog();
    let due: Vec<_> = catalog
        .docs()
        .scripts
        .values()
        .filter(|s| s.enabled && s.event == ScriptEvent::Scheduled)
        .filter_map(|s| Some((s.clone(), latest_slot(s.schedule.as_deref()?, now)?)))
        .collect();
    let mut ran = 0;
    for (script, slot) in due {
        if !system::claim_scheduled_run(&app.db, script.name.as_str(), slot).await? {
            continue;
        }
        match run_one(app, &script, now).await {
            Ok(reminders) => {
                tracing::info!(rule = %script.name, reminders, "ran a scheduled rule");
                ran += 1;
            }
            Err(e) => tracing::warn!(rule = %script.name, error = ?e, "a scheduled rule failed"),
        }
    }
    Ok(ran)
}

async fn run_one(app: &App, script: &crm_model::ScriptDoc, now: DateTime<Utc>) -> ApiResult<usize> {
    let principal = Principal::system(&app.catalog());
    let outcome = crate::rules::run_alone(app, &principal, script, None, Map::new(), None, now)
        .await?
        .map_err(crate::rules::script_failure)?;
    let mut tx = app.db.begin().await?;
    system::supersede_reminders(&mut tx, script.name.as_str(), now).await?;
    let mut reminders = 0;
    for effect in outcome.effects {
        let Effect::Notify { user, message } = effect else {
            return Err(ApiError::bad_request("invalid_effect", "a scheduled rule may only notify"));
        };
        let Ok(user) = Uuid::parse_str(&user) else { continue };
        let reminder = system::NewReminder {
            user,
            message: &message,
            entity: None,
            record_id: None,
            rule: Some(script.name.as_str()),
            due_at: now,
        };
        system::insert_reminder(&mut tx, &reminder, now).await?;
        reminders += 1;
    }
    tx.commit().await?;
    Ok(reminders)
}

/// Runs the schedule every minute while the server runs.
pub async fn follow_schedule(app: crate::AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "running the schedule failed");
        }
        if let Err(e) = crate::reports::snapshot::take_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "taking the forecast snapshot failed");
        }
        if let Err(e) = crate::mail::compose::release_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "sending the scheduled mailings failed");
        }
    }
}
