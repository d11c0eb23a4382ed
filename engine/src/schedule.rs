//! Scheduled rules (`"schedule": "daily 08:00"`, `"every 15 minutes"`): each runs once per
//! slot, on one node, as the system, and leaves reminders or writes records through the save
//! pipeline. The time is passed in, so tests drive the schedule with a clock of their own
//! instead of waiting.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, Utc};
use crm_model::ScriptEvent;
use crm_rules::Effect;
use crm_store::system;
use serde_json::Map;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::ApiResult;
use crate::records::{Source, Unit};

/// The business day's time zone: China Standard Time.
pub fn business_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("in range")
}

/// The latest slot of a `daily HH:MM` or `every N minutes` schedule at or before `now`.
pub(crate) fn latest_slot(schedule: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(minutes) = schedule.strip_prefix("every ").and_then(|s| s.strip_suffix(" minutes")) {
        let every = minutes.parse::<i64>().ok().filter(|m| *m > 0)? * 60;
        return DateTime::from_timestamp(now.timestamp().div_euclid(every) * every, 0);
    }
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

/// Runs one scheduled rule as the system: its reminders replace those of its previous run,
/// and the records it creates or changes (a customer handed back to the pool) go through the
/// save pipeline, all in one transaction.
async fn run_one(app: &App, script: &crm_model::ScriptDoc, now: DateTime<Utc>) -> ApiResult<usize> {
    let catalog = app.catalog();
    let principal = Principal::system(&catalog);
    let outcome = crate::rules::run_alone(app, &principal, script, None, Map::new(), None, now)
        .await?
        .map_err(crate::rules::script_failure)?;
    let mut unit = Unit::new(app, &principal, Source::Schedule).await?;
    let mut reminders = Vec::new();
    for effect in outcome.effects {
        match effect {
            Effect::Notify { user, message, about } => {
                let Ok(user) = Uuid::parse_str(&user) else { continue };
                reminders.push((user, message, crate::rules::reminder_about(&catalog, about)?));
            }
            Effect::Create { entity, values } => {
                let what = format!("rule `{}` creating `{entity}`", script.name);
                unit.create(&entity, &values).await.map_err(|e| crate::rules::blame(&what, e))?;
            }
            Effect::Update { entity, id, values } => {
                let what = format!("rule `{}` changing `{entity}` `{id}`", script.name);
                unit.update(&entity, &id, &values, None).await.map_err(|e| crate::rules::blame(&what, e))?;
            }
        }
    }
    let count = reminders.len();
    let rule = script.name.to_string();
    unit.also(move |tx, _| {
        Box::pin(async move {
            system::supersede_reminders(tx, &rule, now).await?;
            for (user, message, about) in &reminders {
                let reminder = system::NewReminder {
                    user: *user,
                    message,
                    entity: about.as_ref().map(|(entity, _)| entity.as_str()),
                    record_id: about.as_ref().map(|(_, id)| *id),
                    rule: Some(&rule),
                    due_at: now,
                };
                system::insert_reminder(tx, &reminder, now).await?;
            }
            Ok(())
        })
    });
    unit.commit().await?;
    Ok(count)
}

/// Runs the schedule every minute while the server runs.
pub async fn follow_schedule(app: crate::AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "running the schedule failed");
        }
        if let Err(e) = crate::sync::run_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "running the scheduled syncs failed");
        }
        if let Err(e) = crate::reports::snapshot::take_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "taking the forecast snapshot failed");
        }
        if let Err(e) = crate::mail::compose::release_due(&app, app.now()).await {
            tracing::warn!(error = ?e, "sending the scheduled mailings failed");
        }
        if let Err(e) = crate::backup::take_due(&app, app.now()).await {
            tracing::error!(error = ?e, "the nightly backup failed");
        }
    }
}
