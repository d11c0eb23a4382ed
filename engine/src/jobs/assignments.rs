//! Tells people when a record becomes theirs: a record created for someone else, or given to
//! them (分配), leaves them a reminder (not each row of an import: that is one person's
//! batch, not news for each record; nor a package's data and sample records). It acts once for the whole installation, and the
//! reminder's id comes from the event, so seeing an event twice leaves one reminder.

use crm_model::{Labels, USER_ENTITY, Value};
use crm_store::jobs::Event;
use crm_store::records as store;
use crm_store::system::{self, NewReminder};
use uuid::Uuid;

use super::{Consumer, Handled};
use crate::app::App;

pub(super) struct Assignments;

/// The first half of the ids of assignment reminders; the second is the event's number.
const REMINDER_IDS: u64 = 0x0192_0000_a551_0000;

impl Consumer for Assignments {
    fn name(&self) -> &'static str {
        "assignments"
    }

    fn shared(&self) -> bool {
        true
    }

    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move { notify(app, event).await.map_err(|e| e.to_string()) })
    }
}

async fn notify(app: &App, event: &Event) -> Result<(), crm_store::StoreError> {
    let owner_changed = match event.event.as_str() {
        "created" => !matches!(event.payload["source"].as_str(), Some("import" | "setup")),
        "updated" => event.payload["fields"].as_array().is_some_and(|f| f.iter().any(|f| f == "owner")),
        _ => false,
    };
    let by = event.payload["by"].as_str().and_then(|by| Uuid::parse_str(by).ok());
    let catalog = app.catalog();
    let (Some(entity), Some(users)) = (catalog.entity(&event.entity), catalog.entity(USER_ENTITY)) else {
        return Ok(());
    };
    if !owner_changed || entity.name().as_str() == USER_ENTITY {
        return Ok(());
    }
    // The owner the write gave the record: by the time this runs, it may have moved on.
    let Some(owner) = event.payload["owner"].as_str().and_then(|o| Uuid::parse_str(o).ok()) else { return Ok(()) };
    if Some(owner) == by {
        return Ok(());
    }
    let Some(record) = store::get(&app.db, entity, event.record_id, None).await?.filter(|r| !r.is_deleted()) else {
        return Ok(());
    };
    // Pool accounts sign in nowhere: nobody would read it.
    let pool = users.column_index("pool");
    let owner_record = store::get(&app.db, users, owner, None).await?;
    if owner_record.is_none_or(|u| pool.is_some_and(|i| u.values[i] == Value::Boolean(true))) {
        return Ok(());
    }
    let title = entity.title_of(&record.values).unwrap_or_default();
    let label = &entity.def.label;
    let message = Labels {
        zh_cn: format!("{}「{title}」已分配给你", label.zh_cn),
        en: format!("{} \"{title}\" is now yours", label.en),
    }
    .to_message();
    let reminder = NewReminder {
        user: owner,
        message: &message,
        entity: Some(entity.name().as_str()),
        record_id: Some(record.id()),
        rule: Some("assignments"),
        due_at: event.at,
    };
    let id = Uuid::from_u64_pair(REMINDER_IDS, event.seq as u64);
    system::insert_reminder_once(&app.db, id, &reminder, app.now()).await
}
