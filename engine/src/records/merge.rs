//! Merging duplicates (C-6): two to twenty records of one entity become one. The survivor
//! takes the values chosen per field, every record of any entity that points at a loser
//! through a reference field (the recycle bin included) points at the survivor instead, and
//! the losers go to the recycle bin — all in one [`Unit`], audited with source `merge`. What
//! the merge did is kept beside the records (`crm_merge`), so that it can be shown and undone
//! while the survivor has not changed since.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crm_model::{Action, Catalog, Entity, FieldDef, USER_ENTITY, Value, value};
use crm_store::Record;
use crm_store::merges::{self, Merge, Repointed};
use crm_store::records::{self as store, col};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::accounts;
use super::out::{RecordOut, visible_columns};
use super::read::{get, parse_id};
use super::save::{Source, Unit};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Most records one merge takes.
pub const MAX_MERGE: usize = 20;

/// A merge as asked: the records, the one kept, and values chosen for it per field (the
/// others are proposed: the master's value, else the first non-empty one of the others).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    pub ids: Vec<Json>,
    pub master: Json,
    #[serde(default)]
    pub values: Map<String, Json>,
}

/// What a merge of some records would do, for the caller to choose from.
#[derive(Serialize)]
pub struct Preview {
    pub entity: String,
    /// The richest record: most non-empty fields, then the most recently updated.
    pub master: Uuid,
    /// In the order asked.
    pub records: Vec<RecordOut>,
    /// The fields the caller sees.
    pub fields: Vec<Candidates>,
    /// References (record and field) that will point at the survivor instead of a loser, per
    /// entity.
    pub references: BTreeMap<String, usize>,
}

/// One field's values in the records of a merge.
#[derive(Serialize)]
pub struct Candidates {
    pub field: String,
    /// One per record, in the order of the records.
    pub values: Vec<Json>,
    /// The record whose value the survivor takes unless another is chosen.
    pub proposed: Uuid,
    /// Whether the caller may choose (fields they may only read, and computed ones, keep the
    /// master's value).
    pub choosable: bool,
}

/// A merge done.
#[derive(Serialize)]
pub struct Merged {
    pub merge: Uuid,
    pub survivor: RecordOut,
    pub repointed: usize,
}

/// A merge undone.
#[derive(Serialize)]
pub struct Undone {
    pub merge: Uuid,
    pub survivor: RecordOut,
    pub restored: Vec<Uuid>,
    pub repointed: usize,
}

/// What a merge of `ids` would do, the master proposed.
pub async fn preview(app: &App, principal: &Principal, entity_name: &str, ids: &[Json]) -> ApiResult<Preview> {
    let (entity, records) = load(app, principal, entity_name, ids).await?;
    let master = richest(&entity, principal, &records);
    let master_id = records[master].id();
    let hidden = principal.hidden(entity_name);
    let fields = entity
        .live_fields()
        .filter(|f| !hidden.contains(&f.name))
        .filter_map(|field| {
            let i = entity.column_index(field.name.as_str())?;
            Some(Candidates {
                field: field.name.to_string(),
                values: records.iter().map(|r| value::to_json(field, &r.values[i])).collect(),
                proposed: records[proposed(&records, master, i)].id(),
                choosable: choosable(principal, &entity, field),
            })
        })
        .collect();
    let losers: Vec<Uuid> = records.iter().map(Record::id).filter(|id| *id != master_id).collect();
    let mut references = BTreeMap::new();
    for (source, fields, found) in referring(app, &entity, &records, &losers).await? {
        let moved = |r: &Record| {
            fields.iter().filter(|i| matches!(r.values[**i], Value::Uuid(id) if losers.contains(&id))).count()
        };
        *references.entry(source.name().to_string()).or_default() += found.iter().map(moved).sum::<usize>();
    }
    let columns = visible_columns(&entity, hidden);
    let records = records
        .into_iter()
        .map(|record| RecordOut { entity: entity.clone(), record, fields: columns.clone() })
        .collect();
    Ok(Preview { entity: entity_name.to_owned(), master: master_id, records, fields, references })
}

/// Merges records into the master, in one transaction.
pub async fn merge(app: &App, principal: &Principal, entity_name: &str, request: &MergeRequest) -> ApiResult<Merged> {
    let (entity, records) = load(app, principal, entity_name, &request.ids).await?;
    let master = request
        .master
        .as_str()
        .and_then(|m| Uuid::parse_str(m).ok())
        .and_then(|m| records.iter().position(|r| r.id() == m))
        .ok_or_else(|| ApiError::field("master", "invalid", "the master is one of `ids`"))?;
    let survivor = &records[master];
    let survivor_id = survivor.id();
    let losers: Vec<Uuid> = records.iter().map(Record::id).filter(|id| *id != survivor_id).collect();
    let values = survivor_values(principal, &entity, &records, master, &request.values);
    let before: Map<String, Json> = values
        .keys()
        .filter_map(|name| {
            let i = entity.column_index(name)?;
            Some((name.clone(), value::to_json(&entity.columns()[i], &survivor.values[i])))
        })
        .collect();
    let mut unit = Unit::new(app, principal, Source::Merge).await?;
    // Even with no value to change, the survivor must be the caller's to change: a merge
    // into a record they may only read would hand their records to it.
    unit.update(entity_name, &survivor_id.to_string(), &Json::Object(values), Some(survivor.version())).await?;
    let mut repointed = Vec::new();
    for (source, fields, found) in referring(app, &entity, &records, &losers).await? {
        for record in found {
            let mut moves = Vec::new();
            for i in &fields {
                if let Value::Uuid(loser) = record.values[*i]
                    && losers.contains(&loser)
                {
                    moves.push((*i, Value::Uuid(survivor_id)));
                    let field = source.columns()[*i].name.to_string();
                    repointed.push(Repointed {
                        entity: source.name().to_string(),
                        record_id: record.id(),
                        field,
                        loser,
                    });
                }
            }
            unit.change_checked(&source, record, moves, "merge").await?;
        }
    }
    for loser in &losers {
        unit.delete(entity_name, *loser).await?;
    }
    let id = Uuid::now_v7();
    let count = repointed.len();
    let mut done = Merge {
        id,
        entity: entity_name.to_owned(),
        survivor: survivor_id,
        losers,
        survivor_before: Json::Object(before),
        survivor_version: survivor.version(),
        merged_by: principal.user_id,
        merged_at: unit.now(),
        undone_at: None,
    };
    let kept = entity.clone();
    unit.also(move |tx, _| {
        Box::pin(async move {
            // The survivor's version as the whole unit leaves it, rollups of moved records
            // included: undo compares the survivor's version then with this one.
            if let Some(stored) = store::get_for_update(tx, &kept, done.survivor, None).await? {
                done.survivor_version = stored.version();
            }
            merges::insert(tx, &done, &repointed).await
        })
    });
    unit.commit().await?;
    let survivor = get(app, principal, entity_name, &survivor_id.to_string(), None).await?;
    Ok(Merged { merge: id, survivor, repointed: count })
}

/// Undoes a merge: the losers come back, each moved reference points at its loser again
/// (unless it was changed since) and the survivor gets its values back — while the survivor
/// is at the version the merge left it at.
pub async fn undo(app: &App, principal: &Principal, id: &str) -> ApiResult<Undone> {
    let id = parse_id(id)?;
    let no_merge = || ApiError::not_found(format!("no merge `{id}`"));
    let (merge, repointed) = merges::get(&app.db, id).await?.ok_or_else(no_merge)?;
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, &merge.entity, Action::Read).map_err(|_| no_merge())?.clone();
    let survivor = merge.survivor.to_string();
    let current = get(app, principal, &merge.entity, &survivor, None).await?;
    if let Some(at) = merge.undone_at {
        return Err(ApiError::Conflict(format!("this merge was already undone, at {}", value::format_datetime(&at))));
    }
    let changed = format!(
        "the record this merge kept has changed since (it is at version {}, the merge left it at version {}); \
         undoing the merge now would lose that change, so it stays merged",
        current.record.version(),
        merge.survivor_version
    );
    if current.record.version() != merge.survivor_version {
        return Err(ApiError::Conflict(changed));
    }
    let mut unit = Unit::new(app, principal, Source::Merge).await?;
    unit.hold(&entity, merge.survivor, merge.survivor_version, changed);
    for loser in &merge.losers {
        unit.restore_as(&merge.entity, *loser, Action::Delete).await?;
    }
    let mut moved: BTreeMap<(&str, Uuid), Vec<&Repointed>> = BTreeMap::new();
    for r in &repointed {
        moved.entry((r.entity.as_str(), r.record_id)).or_default().push(r);
    }
    let mut count = 0;
    for ((source, record_id), moves) in moved {
        // An entity removed since holds nothing to move back.
        let Some(source) = catalog.entity(source) else { continue };
        let Some(record) = store::get(&app.db, source, record_id, None).await? else { continue };
        // A reference changed after the merge is someone's later choice: it stays.
        let back: Vec<(usize, Value)> = moves
            .iter()
            .filter_map(|m| source.column_index(&m.field).map(|i| (i, m.loser)))
            .filter(|(i, _)| record.values[*i] == Value::Uuid(merge.survivor))
            .map(|(i, loser)| (i, Value::Uuid(loser)))
            .collect();
        if !back.is_empty() {
            count += back.len();
            unit.change_checked(source, record, back, "unmerge").await?;
        }
    }
    unit.update(&merge.entity, &survivor, &merge.survivor_before, None).await?;
    let by = principal.user_id;
    unit.also(move |tx, now| Box::pin(merges::mark_undone(tx, id, by, now)));
    unit.commit().await?;
    let survivor = get(app, principal, &merge.entity, &survivor, None).await?;
    Ok(Undone { merge: id, survivor, restored: merge.losers, repointed: count })
}

/// The latest merge into a record that can still be undone (the record has not changed
/// since), for its page to offer the undo.
pub async fn undoable(app: &App, entity_name: &str, id: Uuid, version: i64) -> ApiResult<Option<Merge>> {
    let latest = merges::latest_into(&app.db, entity_name, id).await?;
    Ok(latest.filter(|m| m.survivor_version == version))
}

/// Which of `ids` are in the recycle bin because of a merge: loser → survivor.
pub async fn merged_into(app: &App, entity_name: &str, ids: &[Uuid]) -> ApiResult<HashMap<Uuid, Uuid>> {
    Ok(merges::merged_into(&app.db, entity_name, ids).await?.into_iter().collect())
}

/// The records of a merge, read within the caller's read scope, in the order given: two to
/// [`MAX_MERGE`] distinct ids of live records of the entity.
async fn load(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
) -> ApiResult<(Arc<Entity>, Vec<Record>)> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?.clone();
    if entity_name == USER_ENTITY {
        return Err(accounts::users_are_not_deleted());
    }
    if ids.len() < 2 || ids.len() > MAX_MERGE {
        return Err(ApiError::bad_request("invalid_body", format!("a merge takes 2 to {MAX_MERGE} records")));
    }
    let mut parsed = Vec::with_capacity(ids.len());
    for (at, id) in ids.iter().enumerate() {
        let id = id
            .as_str()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| ApiError::field(format!("ids/{at}"), "invalid", "not a record id"))?;
        if parsed.contains(&id) {
            return Err(ApiError::bad_request("invalid_body", format!("`{id}` is given twice")));
        }
        parsed.push(id);
    }
    let tree = app.departments().await?;
    let scope = principal.read_scope(&tree, &entity);
    let mut records = Vec::with_capacity(parsed.len());
    for (at, id) in parsed.into_iter().enumerate() {
        match store::get(&app.db, &entity, id, scope.as_ref()).await? {
            Some(record) if !record.is_deleted() => records.push(record),
            _ => return Err(missing(app, principal, &catalog, &entity, at, id).await?),
        }
    }
    Ok((entity, records))
}

/// Why an id of a merge is not one of its records: a record of another entity the caller
/// may read (422), or none they may see (404).
async fn missing(
    app: &App,
    principal: &Principal,
    catalog: &Catalog,
    entity: &Entity,
    at: usize,
    id: Uuid,
) -> ApiResult<ApiError> {
    let tree = app.departments().await?;
    for other in catalog.entities().filter(|e| e.name() != entity.name() && principal.sees(e.name().as_str())) {
        let scope = principal.read_scope(&tree, other);
        if store::get(&app.db, other, id, scope.as_ref()).await?.is_some_and(|r| !r.is_deleted()) {
            let message =
                format!("`{id}` is a {}, not a {}: only records of one entity merge", other.name(), entity.name());
            return Ok(ApiError::field(format!("ids/{at}"), "other_entity", message));
        }
    }
    Ok(ApiError::not_found(format!("no {} `{id}`", entity.name())))
}

/// Whether a field holds something.
fn filled(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Text(text) => !text.trim().is_empty(),
        Value::List(items) => !items.is_empty(),
        _ => true,
    }
}

/// The record with the most non-empty fields the caller sees, then the latest updated.
fn richest(entity: &Entity, principal: &Principal, records: &[Record]) -> usize {
    let hidden = principal.hidden(entity.name().as_str());
    let shown: Vec<usize> = entity
        .live_fields()
        .filter(|f| !hidden.contains(&f.name))
        .filter_map(|f| entity.column_index(f.name.as_str()))
        .collect();
    let rank = |r: &Record| {
        let updated = match &r.values[col::UPDATED_AT] {
            Value::Datetime(at) => Some(*at),
            _ => None,
        };
        (shown.iter().filter(|i| filled(&r.values[**i])).count(), updated)
    };
    // The first of equals wins: the order the caller gave.
    (0..records.len()).rev().max_by_key(|at| rank(&records[*at])).unwrap_or(0)
}

/// The record whose value of column `i` the survivor takes by default: the master's, else the
/// first of the others that has one.
fn proposed(records: &[Record], master: usize, i: usize) -> usize {
    if filled(&records[master].values[i]) {
        return master;
    }
    (0..records.len()).find(|at| *at != master && filled(&records[*at].values[i])).unwrap_or(master)
}

fn choosable(principal: &Principal, entity: &Entity, field: &FieldDef) -> bool {
    let name = entity.name().as_str();
    !principal.hidden(name).contains(&field.name)
        && !principal.read_only(name).contains(&field.name)
        && !field.spec().generated
}

/// The survivor's change: the proposed values that differ from its own, then the chosen ones
/// (which the pipeline checks like any change of the caller's).
fn survivor_values(
    principal: &Principal,
    entity: &Entity,
    records: &[Record],
    master: usize,
    chosen: &Map<String, Json>,
) -> Map<String, Json> {
    let merged: HashSet<Uuid> = records.iter().map(Record::id).collect();
    let mut values = Map::new();
    for field in entity.live_fields().filter(|f| choosable(principal, entity, f)) {
        let Some(i) = entity.column_index(field.name.as_str()) else { continue };
        let from = &records[proposed(records, master, i)].values[i];
        let mut value = value::to_json(field, from);
        // A reference to one of the merged records would point at the survivor itself or
        // at the recycle bin.
        if matches!(from, Value::Uuid(id) if merged.contains(id))
            && field.reference_target() == Some(entity.name().as_str())
        {
            value = Json::Null;
        }
        if value != value::to_json(field, &records[master].values[i]) {
            values.insert(field.name.to_string(), value);
        }
    }
    values.extend(chosen.iter().map(|(name, value)| (name.clone(), value.clone())));
    values
}

/// The records of every entity whose reference fields point at one of `losers`, with those
/// fields; the records merged are left out (they are the merge's own business).
async fn referring(
    app: &App,
    entity: &Entity,
    merged: &[Record],
    losers: &[Uuid],
) -> ApiResult<Vec<(Arc<Entity>, Vec<usize>, Vec<Record>)>> {
    let catalog = app.catalog();
    let mut found = Vec::new();
    for source in catalog.entities() {
        let fields: Vec<usize> = source
            .columns()
            .iter()
            .enumerate()
            .filter(|(i, f)| *i != col::ID && !f.archived && f.reference_target() == Some(entity.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let defs: Vec<&FieldDef> = fields.iter().map(|i| &source.columns()[*i]).collect();
        let mut pointing = store::referring(&app.db, source, &defs, losers).await?;
        if source.name() == entity.name() {
            pointing.retain(|r| !merged.iter().any(|m| m.id() == r.id()));
        }
        if !pointing.is_empty() {
            found.push((source.clone(), fields, pointing));
        }
    }
    Ok(found)
}
