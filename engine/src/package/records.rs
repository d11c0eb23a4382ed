//! The records a package ships — its configuration data and its sample data — created through
//! the save pipeline as the system, in one unit. A record may name itself (`"$key": "c1"`) for
//! others to point at (`{"$ref": "c1"}`), so that contacts belong to their customers and
//! records to their owners; dates are relative to the day of installation (`{"$date": -10}`:
//! ten days ago, `{"$datetime": 3}`: in three days), so that sample data looks current; a user
//! gets its roles from `"$roles"`.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{Source, Unit};

/// Creates the records, all or none, in an order that puts each after those it points at;
/// `keys` are records made before (a package's data, for its sample data installed later),
/// to which the new ones are added. Returns how many were created.
pub async fn create<'a>(
    app: &App,
    files: impl Iterator<Item = &'a (String, Vec<Json>)>,
    keys: &mut HashMap<String, Uuid>,
) -> ApiResult<usize> {
    let principal = Principal::system(&app.catalog());
    let mut unit = Unit::new(app, &principal, Source::Setup).await?;
    let now = app.now();
    let today = now.with_timezone(&crate::schedule::business_offset()).date_naive();
    let mut pending: Vec<(&str, &Json)> =
        files.flat_map(|(entity, records)| records.iter().map(move |r| (entity.as_str(), r))).collect();
    let mut created = 0;
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        for (entity, record) in std::mem::take(&mut pending) {
            let Some(body) = resolve(record, keys, today, now) else {
                waiting.push((entity, record));
                continue;
            };
            let id = unit.create(entity, &body).await?;
            if let Some(key) = record.get("$key").and_then(Json::as_str) {
                keys.insert(key.to_owned(), id);
            }
            if let Some(roles) = record.get("$roles").and_then(Json::as_array) {
                let roles: Vec<String> = roles.iter().filter_map(Json::as_str).map(str::to_owned).collect();
                unit.also(move |tx, _| {
                    Box::pin(async move { crm_store::system::set_user_roles(tx, id, &roles).await })
                });
            }
            created += 1;
        }
        // A pass that created nothing cannot be followed by one that does.
        if waiting.iter().all(|(_, r)| resolve(r, keys, today, now).is_none()) && !waiting.is_empty() {
            let mut missing: Vec<String> =
                waiting.iter().flat_map(|(_, r)| refs(r)).filter(|r| !keys.contains_key(r)).collect();
            missing.dedup();
            return Err(ApiError::bad_request(
                "unresolved_reference",
                format!("records point at keys no record has: {}", missing.join(", ")),
            ));
        }
        pending = waiting;
    }
    unit.commit().await?;
    Ok(created)
}

/// The record as the save pipeline takes it, or `None` while a record it points at is yet
/// to be created.
fn resolve(value: &Json, keys: &HashMap<String, Uuid>, today: NaiveDate, now: DateTime<Utc>) -> Option<Json> {
    match value {
        Json::Object(map) => {
            if let Some(key) = map.get("$ref").and_then(Json::as_str) {
                return keys.get(key).map(|id| Json::String(id.to_string()));
            }
            if let Some(days) = map.get("$date").and_then(Json::as_i64) {
                return Some(Json::String(shift(today, days).to_string()));
            }
            if let Some(days) = map.get("$datetime").and_then(Json::as_i64) {
                let at =
                    if days < 0 { now - Days::new(days.unsigned_abs()) } else { now + Days::new(days.unsigned_abs()) };
                return Some(Json::String(at.to_rfc3339()));
            }
            let mut out = Map::new();
            for (name, value) in map.iter().filter(|(name, _)| !name.starts_with('$')) {
                out.insert(name.clone(), resolve(value, keys, today, now)?);
            }
            Some(Json::Object(out))
        }
        Json::Array(items) => {
            items.iter().map(|v| resolve(v, keys, today, now)).collect::<Option<Vec<_>>>().map(Json::Array)
        }
        other => Some(other.clone()),
    }
}

fn shift(day: NaiveDate, days: i64) -> NaiveDate {
    if days < 0 { day - Days::new(days.unsigned_abs()) } else { day + Days::new(days.unsigned_abs()) }
}

/// The keys a record points at.
fn refs(value: &Json) -> Vec<String> {
    match value {
        Json::Object(map) => match map.get("$ref").and_then(Json::as_str) {
            Some(key) => vec![key.to_owned()],
            None => map.values().flat_map(refs).collect(),
        },
        Json::Array(items) => items.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}
