//! The record service: the save pipeline (permission → parse → defaults → required → auto
//! numbers → references → uniqueness → write with audit and outbox, in one transaction),
//! reads (get, list with filters and keyset pages, related panels, grouped counts), and the
//! bulk operations (update, delete, restore, assign, share). Every read and write carries the
//! caller's data scope into the SQL, and leaves out or refuses the fields they may not see.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_model::catalog::is_system_column;
use crm_model::filter::{self, Cond, Op};
use crm_model::{
    Action, Catalog, Entity, FieldDef, FieldType, Filter, Ident, ListQuery, ScriptEvent, SortKey, USER_ENTITY, Value,
    value,
};
use crm_store::records::{self as store, Page, col};
use crm_store::system::{self, AuditEntry, OutboxEvent};
use crm_store::{Arg, Db, Dialect, On, Record, StoreError, Tx};
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

/// Largest page a list returns.
pub const MAX_LIMIT: u32 = 500;
/// Most ids one bulk operation takes.
pub const MAX_BULK: usize = 1000;
/// Most records one import request takes.
pub const MAX_IMPORT: usize = 10_000;

/// The columns a caller may see when some are hidden from them (`None`: all of them).
fn visible_columns(entity: &Entity, hidden: &HashSet<Ident>) -> Option<Vec<usize>> {
    if hidden.is_empty() {
        return None;
    }
    Some((0..entity.columns().len()).filter(|i| !hidden.contains(&entity.columns()[*i].name)).collect())
}

/// A record as the API writes it: system keys and one key per live field (or only the
/// columns asked for), serialized straight from the stored values.
struct RecordView<'a> {
    entity: &'a Entity,
    record: &'a Record,
    fields: Option<&'a [usize]>,
}

impl Serialize for RecordView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns = self.entity.columns();
        let chosen: Box<dyn Iterator<Item = usize>> = match self.fields {
            Some(indexes) => {
                Box::new(std::iter::once(col::ID).chain(indexes.iter().copied().filter(|i| *i != col::ID)))
            }
            None => Box::new(0..columns.len()),
        };
        let mut map = serializer.serialize_map(None)?;
        for i in chosen {
            let field = &columns[i];
            if !field.archived {
                map.serialize_entry(field.name.as_str(), &ValueView { field, value: &self.record.values[i] })?;
            }
        }
        map.end()
    }
}

/// A value as [`value::to_json`] writes it, without building the JSON first.
struct ValueView<'a> {
    field: &'a FieldDef,
    value: &'a Value,
}

impl Serialize for ValueView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Null => serializer.serialize_none(),
            Value::Text(text) => serializer.serialize_str(text),
            Value::Integer(n) => serializer.serialize_i64(*n),
            Value::Fixed(n) => serializer.serialize_str(&value::format_fixed(*n, self.field.scale())),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::Date(d) => serializer.collect_str(&d.format("%Y-%m-%d")),
            Value::Datetime(dt) => serializer.serialize_str(&value::format_datetime(dt)),
            Value::Uuid(id) => serializer.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            Value::List(items) => items.serialize(serializer),
        }
    }
}

/// One record for a response.
pub struct RecordOut {
    entity: Arc<Entity>,
    record: Record,
    fields: Option<Vec<usize>>,
}

impl Serialize for RecordOut {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordView { entity: &self.entity, record: &self.record, fields: self.fields.as_deref() }.serialize(serializer)
    }
}

/// Column positions for a `fields=a,b` parameter; hidden fields do not exist for it.
pub fn parse_fields(entity: &Entity, text: &str, hidden: &HashSet<Ident>) -> ApiResult<Vec<usize>> {
    text.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|name| {
            entity
                .column(name)
                .filter(|f| !hidden.contains(&f.name))
                .and_then(|f| entity.column_index(f.name.as_str()))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_query", format!("no field `{name}` on `{}`", entity.name()))
                })
        })
        .collect()
}

fn stages_of<'a>(catalog: &'a Catalog, field: &FieldDef) -> Option<&'a crm_model::meta::StageSetDoc> {
    field.stage_set.as_ref().and_then(|s| catalog.stage_set(s.as_str()))
}

/// The stage set a value of a stage field is parsed against: the one of the field's sets that
/// has the stage (which one the record needs is checked with the whole record), else the
/// default.
pub(crate) fn stages_for_value<'a>(
    catalog: &'a Catalog,
    field: &FieldDef,
    value: &Json,
) -> Option<&'a crm_model::meta::StageSetDoc> {
    let sets = catalog.stage_sets_of(field);
    let name = value.as_str().unwrap_or_default();
    sets.iter().find(|set| set.stages.iter().any(|s| s.name.as_str() == name)).or(sets.first()).copied()
}

/// Parses the values of a write: `(column position, value)` per key. `owner` may be set by
/// those who may assign; other system columns, generated fields, fields the caller may only
/// read and unknown (or hidden) keys are refused.
fn parse_values(
    catalog: &Catalog,
    entity: &Entity,
    p: &Principal,
    body: &Map<String, Json>,
    prefix: &str,
) -> Result<Vec<(usize, Value)>, Vec<FieldError>> {
    let mut values = Vec::with_capacity(body.len());
    let mut errors = Vec::new();
    let hidden = p.hidden(entity.name().as_str());
    let read_only = p.read_only(entity.name().as_str());
    for (key, json) in body {
        let name = format!("{prefix}{key}");
        let field = match entity.column(key).filter(|f| !hidden.contains(&f.name)) {
            Some(field) if field.name.as_str() == "owner" => {
                let yours = json.as_str().and_then(|s| Uuid::parse_str(s).ok()) == Some(p.user_id);
                if !yours && !p.access.allows(entity.name().as_str(), Action::Assign) {
                    errors.push(FieldError::new(name, "forbidden", "your roles do not allow assigning records"));
                    continue;
                }
                field
            }
            Some(field) if read_only.contains(&field.name) => {
                errors.push(FieldError::new(name, "read_only", "you may see this field but not change it"));
                continue;
            }
            Some(field) if is_system_column(key) || field.field_type == FieldType::AutoNumber => {
                errors.push(FieldError::new(name, "read_only", "this value is set by the system"));
                continue;
            }
            Some(field) => field,
            None => {
                errors.push(FieldError::new(
                    name,
                    "unknown_field",
                    format!("`{}` has no field `{key}`", entity.name()),
                ));
                continue;
            }
        };
        match value::parse(field, json, stages_for_value(catalog, field, json)) {
            Ok(parsed) => values.push((entity.column_index(key).expect("a column of the entity"), parsed)),
            Err(problem) => errors.push(FieldError::new(name, problem.code, problem.message)),
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

fn body_object<'a>(body: &'a Json, what: &str) -> ApiResult<&'a Map<String, Json>> {
    body.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", format!("{what} is a JSON object")))
}

/// References that do not point at a live record of their target. The caller is a live user
/// (they were just authenticated), so references to them need no query.
async fn check_references(
    on: &mut On<'_>,
    catalog: &Catalog,
    entity: &Entity,
    records: &[(&Record, String)],
    caller: Uuid,
) -> Result<Vec<FieldError>, StoreError> {
    let mut wanted: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for field in entity.columns().iter().filter(|f| f.field_type.is_reference() && f.name.as_str() != "id") {
        let i = entity.column_index(field.name.as_str()).expect("own column");
        for (record, _) in records {
            if let Value::Uuid(id) = record.values[i] {
                let target = field.reference_target().unwrap_or_default();
                if !(target == USER_ENTITY && id == caller) {
                    wanted.entry(target).or_default().push(id);
                }
            }
        }
    }
    let mut existing: HashMap<&str, std::collections::HashSet<Uuid>> = HashMap::new();
    for (target, mut ids) in wanted {
        ids.sort_unstable();
        ids.dedup();
        let Some(target_entity) = catalog.entity(target) else { continue };
        // Records created in this same request are not yet visible, but exist.
        let mut found = store::existing_ids(on, target_entity, &ids).await?;
        if target == entity.name().as_str() {
            found.extend(records.iter().map(|(r, _)| r.id()));
        }
        existing.insert(target, found);
    }
    let mut errors = Vec::new();
    for field in entity.columns().iter().filter(|f| f.field_type.is_reference() && f.name.as_str() != "id") {
        let i = entity.column_index(field.name.as_str()).expect("own column");
        let target = field.reference_target().unwrap_or_default();
        for (record, prefix) in records {
            if let Value::Uuid(id) = record.values[i]
                && !(target == USER_ENTITY && id == caller)
                && !existing.get(target).is_some_and(|found| found.contains(&id))
            {
                errors.push(FieldError::new(
                    format!("{prefix}{}", field.name),
                    "not_found",
                    format!("no `{target}` with id {id}"),
                ));
            }
        }
    }
    Ok(errors)
}

/// Unique fields whose value another live record already holds.
async fn check_unique(
    on: &mut On<'_>,
    entity: &Entity,
    record: &Record,
    changed: &[usize],
    prefix: &str,
) -> Result<Vec<FieldError>, StoreError> {
    let mut errors = Vec::new();
    for &i in changed {
        let field = &entity.columns()[i];
        if field.unique
            && !record.values[i].is_null()
            && store::value_taken(on, entity, field, &record.values[i], record.id()).await?
        {
            errors.push(FieldError::new(
                format!("{prefix}{}", field.name),
                "not_unique",
                "another record already has this value",
            ));
        }
    }
    Ok(errors)
}

fn missing_required(entity: &Entity, record: &Record, only: Option<&[usize]>, prefix: &str) -> Vec<FieldError> {
    entity
        .live_fields()
        .filter(|f| f.required && f.field_type != FieldType::AutoNumber)
        .filter_map(|f| {
            let i = entity.column_index(f.name.as_str())?;
            let asked = only.is_none_or(|only| only.contains(&i));
            (asked && record.values[i].is_null())
                .then(|| FieldError::new(format!("{prefix}{}", f.name), "required", "a value is required"))
        })
        .collect()
}

/// `{field: [before, after]}` of the columns (and owner) that differ.
fn diff_json(entity: &Entity, before: &Record, after: &Record) -> Json {
    let columns = entity.columns();
    let changed = std::iter::once(col::OWNER).chain(col::DELETED_AT + 1..columns.len());
    let changes: Map<String, Json> = changed
        .filter(|i| before.values[*i] != after.values[*i])
        .map(|i| {
            let field = &columns[i];
            let pair = json!([value::to_json(field, &before.values[i]), value::to_json(field, &after.values[i])]);
            (field.name.to_string(), pair)
        })
        .collect();
    Json::Object(changes)
}

/// The values of a new record before its own: defaults and system columns (its id aside).
fn new_values(catalog: &Catalog, entity: &Entity, principal: &Principal, now: DateTime<Utc>) -> Vec<Value> {
    let mut values: Vec<Value> = entity
        .columns()
        .iter()
        .map(|f| {
            if f.archived {
                Value::Null
            } else {
                value::resolve_default(f, stages_of(catalog, f), now, principal.user_id)
            }
        })
        .collect();
    values[col::OWNER] = Value::Uuid(principal.user_id);
    values[col::CREATED_BY] = Value::Uuid(principal.user_id);
    values[col::CREATED_AT] = Value::Datetime(now);
    values[col::UPDATED_BY] = Value::Uuid(principal.user_id);
    values[col::UPDATED_AT] = Value::Datetime(now);
    values[col::VERSION] = Value::Integer(1);
    values
}

/// Numbers new records in the transaction, in the records and in their insert.
async fn fill_auto_numbers(
    tx: &mut Tx,
    entity: &Entity,
    records: &mut [Record],
    insert: &mut store::Insert,
) -> Result<(), StoreError> {
    for (i, field) in
        entity.columns().iter().enumerate().filter(|(_, f)| f.field_type == FieldType::AutoNumber && !f.archived)
    {
        let sequence = format!("{}.{}", entity.name(), field.name);
        let first = store::reserve_in_sequence(tx, &sequence, records.len() as i64).await?;
        let digits = usize::from(field.digits.unwrap_or(6));
        let prefix = field.prefix.as_deref().unwrap_or("");
        let numbers: Vec<String> = (first..).take(records.len()).map(|n| format!("{prefix}{n:0digits$}")).collect();
        insert.set_column(i, numbers.iter().map(|number| Arg::Text(number.clone())));
        for (record, number) in records.iter_mut().zip(numbers) {
            record.values[i] = Value::Text(number);
        }
    }
    Ok(())
}

pub async fn create(app: &App, principal: &Principal, entity_name: &str, body: &Json) -> ApiResult<RecordOut> {
    create_with(app, principal, entity_name, body, None, |_, _| Box::pin(async { Ok(()) })).await
}

/// Creates a record; `id` is only set by the engine itself, `extra` writes in the same
/// transaction.
pub async fn create_with(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    body: &Json,
    id: Option<Uuid>,
    extra: impl for<'t> FnOnce(
        &'t mut Tx,
        DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
    + Send,
) -> ApiResult<RecordOut> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Create)?;
    let body = body_object(body, "a record")?;
    let now = app.now();
    let mut records = build_new(&catalog, entity, principal, &[body], id, now)?;
    let effects = crate::rules::on_save(app, principal, &catalog, entity, &mut records[0], None).await?;
    let moves = crate::rules::check_stage_moves(app, principal, &catalog, entity, &mut records[0], None).await?;
    check_new(&app.db, &catalog, entity, principal, &records).await?;
    let insert = new_insert(app.db.dialect(), entity, principal, &records, now);
    let mut tx = app.db.begin().await?;
    write_new(&mut tx, entity, &mut records, insert).await?;
    crate::rules::record_stage_moves(&mut tx, entity, &records[0], &moves, principal.user_id, now).await?;
    crate::rules::apply_effects(&mut tx, app, principal, entity, &records[0], effects, now).await?;
    extra(&mut tx, now).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    let record = records.pop().expect("one record was built");
    let fields = visible_columns(entity, principal.hidden(entity_name));
    Ok(RecordOut { entity: entity.clone(), record, fields })
}

/// Creates a record in a transaction already open (a rule's effect): checked like any new
/// record, owned by the caller; its own rules are not run.
pub async fn create_in(
    tx: &mut Tx,
    app: &App,
    principal: &Principal,
    entity_name: &str,
    body: &Json,
    now: DateTime<Utc>,
) -> ApiResult<Uuid> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Create)?;
    let body = body_object(body, "a record")?;
    let mut records = build_new(&catalog, entity, principal, &[body], None, now)?;
    let labelled = [(&records[0], String::new())];
    let mut errors = missing_required(entity, &records[0], None, "");
    errors.extend(check_references(&mut On::Tx(tx), &catalog, entity, &labelled, principal.user_id).await?);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let insert = new_insert(tx.dialect(), entity, principal, &records, now);
    write_new(tx, entity, &mut records, insert).await?;
    app.noticed_write(entity_name);
    Ok(records[0].id())
}

/// Changes a record's approval status: the approval itself is not held up by its lock.
pub(crate) async fn change_locked(
    tx: &mut Tx,
    app: &App,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    principal: &Principal,
    current: &Record,
    values: &[(usize, Value)],
) -> ApiResult<Record> {
    apply_change(tx, app, catalog, entity, principal, current, values, "approval", true).await
}

/// A refusal of one record of a bulk operation, as its result says it.
fn locked_error(error: ApiError) -> FieldError {
    match error {
        ApiError::Forbidden { code, message } => FieldError::new("", code, message),
        other => FieldError::new("", "failed", other.to_string()),
    }
}

/// Changes a record in a transaction already open (a rule's effect), within the caller's
/// edit scope; its own rules are not run again.
pub async fn update_in(
    tx: &mut Tx,
    app: &App,
    principal: &Principal,
    entity_name: &str,
    id: &str,
    body: &Json,
) -> ApiResult<()> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Edit)?;
    let id = parse_id(id)?;
    let values =
        parse_values(&catalog, entity, principal, body_object(body, "the values")?, "").map_err(ApiError::Invalid)?;
    let scope = principal.edit_scope(&*app.departments().await?, entity);
    let current = store::get_for_update(tx, entity, id, scope.as_ref()).await?.filter(|r| !r.is_deleted());
    let current = current.ok_or_else(|| ApiError::not_found(format!("no {entity_name} `{id}` you may change")))?;
    crate::approval::check_unlocked(tx, &catalog, principal, entity, &current).await?;
    Box::pin(apply_change(tx, app, &catalog, entity, principal, &current, &values, "update", false)).await?;
    app.noticed_write(entity_name);
    Ok(())
}

/// Creates many records in one transaction: all or none.
pub async fn import(app: &App, principal: &Principal, entity_name: &str, rows: &[Json]) -> ApiResult<Vec<Uuid>> {
    let mut records = prepare(app, principal, entity_name, rows)?;
    insert_prepared(app, principal, entity_name, &mut records).await?;
    Ok(records.iter().map(Record::id).collect())
}

/// The first half of an import: records parsed, checked by themselves and given defaults.
pub fn prepare(app: &App, principal: &Principal, entity_name: &str, rows: &[Json]) -> ApiResult<Vec<Record>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Import)?;
    if rows.len() > MAX_IMPORT {
        return Err(ApiError::bad_request("too_many", format!("at most {MAX_IMPORT} records per request")));
    }
    let bodies = rows.iter().map(|r| body_object(r, "each record")).collect::<ApiResult<Vec<_>>>()?;
    build_new(&catalog, entity, principal, &bodies, None, app.now())
}

/// The second half of an import: the checks against the database and the insert, with
/// audit and outbox, in one transaction.
pub async fn insert_prepared(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    records: &mut [Record],
) -> ApiResult<()> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Import)?;
    check_new(&app.db, &catalog, entity, principal, records).await?;
    let insert = new_insert(app.db.dialect(), entity, principal, records, app.now());
    let mut tx = app.db.begin().await?;
    write_new(&mut tx, entity, records, insert).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    Ok(())
}

/// Parses the bodies of new records and applies defaults; field errors of row `i` are named
/// `records/i/field` when there are several.
fn build_new(
    catalog: &Catalog,
    entity: &Entity,
    principal: &Principal,
    bodies: &[&Map<String, Json>],
    id: Option<Uuid>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Record>> {
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(bodies.len());
    let defaults = new_values(catalog, entity, principal, now);
    // With rules that may fill fields in, required fields are checked after them.
    let filled_by_rules =
        [ScriptEvent::Default, ScriptEvent::Assignment, ScriptEvent::BeforeSave, ScriptEvent::Formula]
            .into_iter()
            .any(|event| !catalog.scripts(entity.name().as_str(), event).is_empty());
    for (row, body) in bodies.iter().enumerate() {
        let prefix = if bodies.len() > 1 { format!("records/{row}/") } else { String::new() };
        let mut record = Record { values: defaults.clone() };
        record.values[col::ID] = Value::Uuid(id.unwrap_or_else(Uuid::now_v7));
        match parse_values(catalog, entity, principal, body, &prefix) {
            Ok(values) => {
                for (i, value) in values {
                    record.values[i] = value;
                }
                if !filled_by_rules {
                    errors.extend(missing_required(entity, &record, None, &prefix));
                }
            }
            Err(e) => errors.extend(e),
        }
        records.push(record);
    }
    if errors.is_empty() { Ok(records) } else { Err(ApiError::Invalid(errors)) }
}

/// The checks of new records that need the database. They read committed data before the
/// write starts, so the writer's turn is not held for them; the unique indexes remain the
/// final guard against a concurrent duplicate.
async fn check_new(
    db: &Db,
    catalog: &Catalog,
    entity: &Entity,
    principal: &Principal,
    records: &[Record],
) -> ApiResult<()> {
    let several = records.len() > 1;
    let prefix = |row: usize| if several { format!("records/{row}/") } else { String::new() };
    let labelled: Vec<(&Record, String)> = records.iter().enumerate().map(|(i, r)| (r, prefix(i))).collect();
    // Required fields are checked here, after rules had their chance to fill them in.
    let mut errors: Vec<FieldError> =
        labelled.iter().flat_map(|(record, prefix)| missing_required(entity, record, None, prefix)).collect();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let mut on = On::Read(db);
    errors = check_references(&mut on, catalog, entity, &labelled, principal.user_id).await?;
    let unique: Vec<usize> =
        entity.columns().iter().enumerate().filter(|(_, f)| f.unique && !f.archived).map(|(i, _)| i).collect();
    if !unique.is_empty() {
        for (row, record) in records.iter().enumerate() {
            errors.extend(check_unique(&mut on, entity, record, &unique, &prefix(row)).await?);
        }
        errors.extend(duplicates_within(entity, records, &unique));
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Invalid(errors)) }
}

/// The statements that insert new records with their audit and outbox rows, built before
/// the transaction: an import's batch is written out while another batch still writes.
fn new_insert(
    dialect: Dialect,
    entity: &Entity,
    principal: &Principal,
    records: &[Record],
    now: DateTime<Utc>,
) -> store::Insert {
    // A creation is audited without its values: they are the record's until a change, whose
    // audit entry keeps the value before it. Nothing is lost, and imports stay fast.
    let audit: Vec<AuditEntry> = records
        .iter()
        .map(|r| AuditEntry {
            actor: Some(principal.user_id),
            entity: entity.name().to_string(),
            record_id: r.id(),
            action: "create",
            changes: json!({}),
        })
        .collect();
    let events: Vec<OutboxEvent> = records
        .iter()
        .map(|r| OutboxEvent {
            entity: entity.name().to_string(),
            record_id: r.id(),
            event: "created",
            payload: json!({"version": 1}),
        })
        .collect();
    let audit_and_outbox = system::change_statements(dialect, now, &audit, &events);
    store::Insert::new(dialect, entity, records, audit_and_outbox)
}

/// Numbers new records and runs their insert.
async fn write_new(tx: &mut Tx, entity: &Entity, records: &mut [Record], mut insert: store::Insert) -> ApiResult<()> {
    fill_auto_numbers(tx, entity, records, &mut insert).await?;
    insert.run(tx, entity).await?;
    Ok(())
}

/// Unique values repeated inside one import.
fn duplicates_within(entity: &Entity, records: &[Record], unique: &[usize]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for &i in unique {
        let mut seen = HashMap::new();
        for (row, record) in records.iter().enumerate() {
            if record.values[i].is_null() {
                continue;
            }
            if let Some(first) = seen.insert(&record.values[i], row) {
                errors.push(FieldError::new(
                    format!("records/{row}/{}", entity.columns()[i].name),
                    "not_unique",
                    format!("the same value as record {first}"),
                ));
            }
        }
    }
    errors
}

pub async fn get(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    id: &str,
    fields: Option<&str>,
) -> ApiResult<RecordOut> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let scope = principal.read_scope(&*app.departments().await?, entity);
    let record = live_record(app, entity, id, scope.as_ref()).await?;
    let hidden = principal.hidden(entity_name);
    let fields = match fields {
        Some(text) => Some(parse_fields(entity, text, hidden)?),
        None => visible_columns(entity, hidden),
    };
    Ok(RecordOut { entity: entity.clone(), record, fields })
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no record `{id}`")))
}

/// A live record within a scope; outside it, as if it did not exist.
async fn live_record(app: &App, entity: &Entity, id: &str, scope: Option<&Filter>) -> ApiResult<Record> {
    let id = parse_id(id)?;
    match store::get(&app.db, entity, id, scope).await? {
        Some(record) if !record.is_deleted() => Ok(record),
        _ => Err(ApiError::not_found(format!("no {} `{id}`", entity.name()))),
    }
}

/// Applies a partial update at the version the client read.
pub async fn update(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    id: &str,
    body: &Json,
) -> ApiResult<RecordOut> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Edit)?;
    let id = parse_id(id)?;
    let mut body = body_object(body, "a change")?.clone();
    let version = match body.remove("version") {
        Some(v) => {
            v.as_i64().ok_or_else(|| ApiError::field("version", "invalid_type", "the version is a whole number"))?
        }
        None => {
            return Err(ApiError::field(
                "version",
                "required",
                "send the version you read, so that a newer change is not overwritten",
            ));
        }
    };
    let values = parse_values(&catalog, entity, principal, &body, "").map_err(ApiError::Invalid)?;
    let tree = app.departments().await?;
    let scope = principal.edit_scope(&tree, entity);
    let mut tx = app.db.begin().await?;
    let current = store::get_for_update(&mut tx, entity, id, scope.as_ref()).await?.filter(|r| !r.is_deleted());
    let Some(current) = current else {
        drop(tx);
        return Err(not_editable(app, principal, &tree, entity, id).await);
    };
    crate::approval::check_unlocked(&mut tx, &catalog, principal, entity, &current).await?;
    if current.version() != version {
        return Err(ApiError::Conflict(format!(
            "this record was changed by someone else (version {} is current, you sent {version}); reload it and apply your change again",
            current.version()
        )));
    }
    let updated = apply_change(&mut tx, app, &catalog, entity, principal, &current, &values, "update", true).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    let fields = visible_columns(entity, principal.hidden(entity_name));
    Ok(RecordOut { entity: entity.clone(), record: updated, fields })
}

/// Why a record the caller wanted to change was not found in their edit scope: they may see
/// it but not change it (403), or it is not there for them at all (404).
async fn not_editable(
    app: &App,
    principal: &Principal,
    tree: &crate::access::DepartmentTree,
    entity: &Entity,
    id: Uuid,
) -> ApiError {
    let visible = principal.read_scope(tree, entity);
    match store::get(&app.db, entity, id, visible.as_ref()).await {
        Ok(Some(record)) if !record.is_deleted() => ApiError::forbidden("you may see this record but not change it"),
        Ok(_) => ApiError::not_found(format!("no {} `{id}`", entity.name())),
        Err(e) => e.into(),
    }
}

/// Checks and writes a change to a locked, live record, with its stage moves and (with
/// `run_rules`) its rules and their effects; returns the record as stored. `action` names the
/// change in the audit log (update, assign, ...).
#[expect(clippy::too_many_arguments, reason = "the pieces of one save, all needed")]
async fn apply_change(
    tx: &mut Tx,
    app: &App,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    principal: &Principal,
    current: &Record,
    values: &[(usize, Value)],
    action: &'static str,
    run_rules: bool,
) -> ApiResult<Record> {
    let now = app.now();
    let mut next = current.clone();
    for (i, value) in values {
        next.values[*i] = value.clone();
    }
    if next.values == current.values {
        return Ok(current.clone());
    }
    let effects = if run_rules {
        crate::rules::on_save(app, principal, catalog, entity, &mut next, Some(current)).await?
    } else {
        Vec::new()
    };
    let moves = crate::rules::check_stage_moves(app, principal, catalog, entity, &mut next, Some(current)).await?;
    let changed: Vec<usize> = (0..next.values.len()).filter(|i| next.values[*i] != current.values[*i]).collect();
    if changed.is_empty() {
        return Ok(current.clone());
    }
    let mut errors = missing_required(entity, &next, Some(&changed), "");
    let mut only_changed = next.clone();
    for (i, value) in only_changed.values.iter_mut().enumerate() {
        if !changed.contains(&i) && i != col::ID {
            *value = Value::Null;
        }
    }
    errors.extend(
        check_references(&mut On::Tx(tx), catalog, entity, &[(&only_changed, String::new())], principal.user_id)
            .await?,
    );
    errors.extend(check_unique(&mut On::Tx(tx), entity, &next, &changed, "").await?);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let changes: Vec<(usize, Value)> = changed.iter().map(|i| (*i, next.values[*i].clone())).collect();
    let stored = store::update(tx, entity, current.id(), current.version(), &changes, principal.user_id, now)
        .await?
        .ok_or_else(|| ApiError::Conflict("this record changed while it was being saved; reload it".into()))?;
    let audit = AuditEntry {
        actor: Some(principal.user_id),
        entity: entity.name().to_string(),
        record_id: stored.id(),
        action,
        changes: diff_json(entity, current, &stored),
    };
    let fields: Vec<String> = changed.iter().map(|i| entity.columns()[*i].name.to_string()).collect();
    let event = OutboxEvent {
        entity: entity.name().to_string(),
        record_id: stored.id(),
        event: "updated",
        payload: json!({"version": stored.version(), "fields": fields}),
    };
    system::record_change(tx, now, &[audit], &[event]).await?;
    crate::rules::record_stage_moves(tx, entity, &stored, &moves, principal.user_id, now).await?;
    crate::rules::apply_effects(tx, app, principal, entity, &stored, effects, now).await?;
    Ok(stored)
}

/// The outcome of one record of a bulk operation.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the new version when there is one.
    Done(Option<i64>),
    NotFound,
    Invalid(Vec<FieldError>),
}

#[derive(Debug)]
pub struct BulkResult {
    pub id: String,
    pub outcome: Outcome,
}

impl serde::Serialize for BulkResult {
    /// `{"id", "status", "version"?, "error"?}` with the HTTP status the record would have had.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match &self.outcome {
            Outcome::Done(Some(version)) => json!({"id": self.id, "status": 200, "version": version}),
            Outcome::Done(None) => json!({"id": self.id, "status": 200}),
            Outcome::NotFound => {
                json!({"id": self.id, "status": 404, "error": {"code": "not_found", "message": "no such record"}})
            }
            Outcome::Invalid(errors) => {
                json!({"id": self.id, "status": 422, "error": {"code": "validation_failed", "errors": errors}})
            }
        };
        value.serialize(serializer)
    }
}

fn bulk_ids(ids: &[Json]) -> ApiResult<Vec<(String, Option<Uuid>)>> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(ApiError::bad_request("invalid_body", format!("`ids` takes 1 to {MAX_BULK} ids")));
    }
    ids.iter()
        .map(|id| {
            let text = id.as_str().ok_or_else(|| ApiError::bad_request("invalid_body", "ids are strings"))?;
            Ok((text.to_owned(), Uuid::parse_str(text).ok()))
        })
        .collect()
}

fn missing(id: &str) -> BulkResult {
    BulkResult { id: id.to_owned(), outcome: Outcome::NotFound }
}

/// Sets the same values on many records; a result per id. Records that fail are left as
/// they were; the others are saved together.
pub async fn bulk_update(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
    set: &Json,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Edit)?;
    let values =
        parse_values(&catalog, entity, principal, body_object(set, "`set`")?, "").map_err(ApiError::Invalid)?;
    if values.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "`set` names no field"));
    }
    let scope = principal.edit_scope(&*app.departments().await?, entity);
    change_each(app, &catalog, entity, principal, ids, scope.as_ref(), &values, "update").await
}

/// Applies the same values to many records within a scope, each in its own right: a result
/// per id; those that fail are left as they were, the others saved together.
#[expect(clippy::too_many_arguments, reason = "the pieces of one bulk change")]
async fn change_each(
    app: &App,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    principal: &Principal,
    ids: &[Json],
    scope: Option<&Filter>,
    values: &[(usize, Value)],
    action: &'static str,
) -> ApiResult<Vec<BulkResult>> {
    let ids = bulk_ids(ids)?;
    let mut tx = app.db.begin().await?;
    let mut results = Vec::with_capacity(ids.len());
    for (text, id) in ids {
        let current = match id {
            Some(id) => store::get_for_update(&mut tx, entity, id, scope).await?.filter(|r| !r.is_deleted()),
            None => None,
        };
        let Some(current) = current else {
            results.push(missing(&text));
            continue;
        };
        if let Err(e) = crate::approval::check_unlocked(&mut tx, catalog, principal, entity, &current).await {
            results.push(BulkResult { id: text, outcome: Outcome::Invalid(vec![locked_error(e)]) });
            continue;
        }
        match apply_change(&mut tx, app, catalog, entity, principal, &current, values, action, true).await {
            Ok(stored) => results.push(BulkResult { id: text, outcome: Outcome::Done(Some(stored.version())) }),
            Err(ApiError::Invalid(errors)) => results.push(BulkResult { id: text, outcome: Outcome::Invalid(errors) }),
            Err(other) => return Err(other),
        }
    }
    tx.commit().await?;
    app.noticed_write(entity.name().as_str());
    Ok(results)
}

/// Moves records to the recycle bin (`restore`: out of it); a result per id.
pub async fn bulk_set_deleted(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
    restore: bool,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, if restore { Action::Restore } else { Action::Delete })?;
    let scope = principal.edit_scope(&*app.departments().await?, entity);
    let ids = bulk_ids(ids)?;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let wanted: Vec<Uuid> = ids.iter().filter_map(|(_, id)| *id).collect();
    let mut blocked: HashMap<Uuid, Vec<FieldError>> = HashMap::new();
    if restore {
        // A restored record must not collide with a live one on a unique field.
        let unique: Vec<usize> =
            entity.columns().iter().enumerate().filter(|(_, f)| f.unique && !f.archived).map(|(i, _)| i).collect();
        for id in &wanted {
            let record = store::get_for_update(&mut tx, entity, *id, scope.as_ref()).await?;
            if let Some(record) = record.filter(Record::is_deleted) {
                let errors = check_unique(&mut On::Tx(&mut tx), entity, &record, &unique, "").await?;
                if !errors.is_empty() {
                    blocked.insert(*id, errors);
                }
            }
        }
    } else if entity.def.approval.is_some() || entity.def.locked_by.is_some() {
        // A locked record stays where it is, for those who may not approve it.
        for id in &wanted {
            if let Some(record) = store::get_for_update(&mut tx, entity, *id, scope.as_ref()).await?
                && let Err(e) = crate::approval::check_unlocked(&mut tx, &catalog, principal, entity, &record).await
            {
                blocked.insert(*id, vec![locked_error(e)]);
            }
        }
    }
    let allowed: Vec<Uuid> = wanted.into_iter().filter(|id| !blocked.contains_key(id)).collect();
    let deleted = if restore { None } else { Some(now) };
    let changed =
        store::set_deleted(&mut tx, entity, &allowed, scope.as_ref(), deleted, principal.user_id, now).await?;
    let action = if restore { "restore" } else { "delete" };
    let audit: Vec<AuditEntry> = changed
        .iter()
        .map(|id| AuditEntry {
            actor: Some(principal.user_id),
            entity: entity.name().to_string(),
            record_id: *id,
            action,
            changes: json!({}),
        })
        .collect();
    let event = if restore { "restored" } else { "deleted" };
    let events: Vec<OutboxEvent> = changed
        .iter()
        .map(|id| OutboxEvent { entity: entity.name().to_string(), record_id: *id, event, payload: json!({}) })
        .collect();
    system::record_change(&mut tx, now, &audit, &events).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    Ok(ids
        .into_iter()
        .map(|(text, id)| match id {
            Some(id) if changed.contains(&id) => BulkResult { id: text, outcome: Outcome::Done(None) },
            Some(id) => match blocked.remove(&id) {
                Some(errors) => BulkResult { id: text, outcome: Outcome::Invalid(errors) },
                None => missing(&text),
            },
            None => missing(&text),
        })
        .collect())
}

/// The totals of lists, kept until the next write on this node. Counting every row of a
/// large table is most of the cost of a list's first page, and most pages are read far more
/// often than their entity is written. Writes made on another node (PostgreSQL) are seen
/// after [`COUNT_TTL`] at most.
#[derive(Default)]
pub struct CountCache {
    generation: std::sync::atomic::AtomicU64,
    totals: std::sync::Mutex<HashMap<String, (u64, std::time::Instant, i64)>>,
}

const COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(5);
const COUNT_CACHE_SIZE: usize = 10_000;

impl CountCache {
    /// Every remembered total is stale: something was written.
    pub fn forget(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    async fn count(&self, db: &Db, statement: crm_store::Sql) -> ApiResult<i64> {
        let key = statement.cache_key();
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        {
            let totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((seen, at, total)) = totals.get(&key)
                && *seen == generation
                && at.elapsed() < COUNT_TTL
            {
                return Ok(*total);
            }
        }
        let total = store::count(db, statement).await?;
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        if totals.len() >= COUNT_CACHE_SIZE {
            totals.clear();
        }
        // Counted under `generation`: a write while counting leaves this entry already stale.
        totals.insert(key, (generation, std::time::Instant::now(), total));
        Ok(total)
    }
}

/// The parameters of a list, as the API takes them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub fields: Option<String>,
    #[serde(default)]
    pub count: bool,
    /// The recycle bin instead of live records.
    #[serde(default)]
    pub deleted: bool,
}

/// A page of a list, answered as `{"data": [...], "next_cursor": ..., "total": ...}`.
pub struct ListPage {
    entity: Arc<Entity>,
    records: Vec<Record>,
    fields: Option<Vec<usize>>,
    pub next_cursor: Option<String>,
    pub total: Option<i64>,
}

impl ListPage {
    /// Records on the page.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }
}

impl Serialize for ListPage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a ListPage);
        impl Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let page = self.0;
                serializer.collect_seq(page.records.iter().map(|record| RecordView {
                    entity: &page.entity,
                    record,
                    fields: page.fields.as_deref(),
                }))
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("data", &Data(self))?;
        map.serialize_entry("next_cursor", &self.next_cursor)?;
        if let Some(total) = self.total {
            map.serialize_entry("total", &total)?;
        }
        map.end()
    }
}

/// Builds the query of a list request; `base` is a filter the caller imposes (a related
/// panel's lookup).
pub fn list_query(
    catalog: &Catalog,
    entity: &Entity,
    params: &ListParams,
    base: Option<Filter>,
    default_sort: &[SortKey],
    hidden: &HashSet<Ident>,
) -> ApiResult<ListQuery> {
    let filter = params
        .filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(|text| {
            let json: Json = serde_json::from_str(text)
                .map_err(|e| ApiError::bad_request("invalid_query", format!("`filter` is not JSON: {e}")))?;
            Ok::<_, ApiError>(Filter::parse(catalog, entity, &json, hidden)?)
        })
        .transpose()?;
    let filter = match (base, filter) {
        (Some(base), Some(filter)) => Some(base.and(filter)),
        (base, filter) => base.or(filter),
    };
    let sort = match params.sort.as_deref() {
        Some(text) => filter::parse_sort(entity, text, hidden)?,
        // A default sort on a field hidden from the caller falls back to the newest first.
        None if default_sort.iter().any(|k| hidden.contains(&k.field)) => Vec::new(),
        None => default_sort.to_vec(),
    };
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request("invalid_query", format!("`limit` is 1 to {MAX_LIMIT}")));
    }
    let after = params
        .cursor
        .as_deref()
        .map(|cursor| {
            let invalid = || ApiError::bad_request("invalid_query", "`cursor` is not a cursor of this list");
            let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
            let items: Vec<Json> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
            Ok::<_, ApiError>(filter::cursor_values(entity, &sort, &items)?)
        })
        .transpose()?;
    Ok(ListQuery { filter, sort, limit, after, deleted: params.deleted })
}

/// The cursor that continues a list after `record`.
pub fn cursor_of(entity: &Entity, sort: &[SortKey], record: &Record) -> String {
    let items: Vec<Json> = sort
        .iter()
        .map(|k| k.field.as_str())
        .chain(["id"])
        .map(|name| {
            let i = entity.column_index(name).expect("sort keys are checked");
            value::to_json(&entity.columns()[i], &record.values[i])
        })
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&items).unwrap_or_default())
}

async fn run_list(
    app: &App,
    entity: &Arc<Entity>,
    query: ListQuery,
    params: &ListParams,
    default_fields: Option<Vec<usize>>,
    hidden: &HashSet<Ident>,
) -> ApiResult<ListPage> {
    let fields = match params.fields.as_deref() {
        Some(text) => Some(parse_fields(entity, text, hidden)?),
        None => default_fields.or_else(|| visible_columns(entity, hidden)),
    };
    let total = if params.count {
        Some(
            app.counts
                .count(&app.db, store::count_statement(app.db.dialect(), entity, query.filter.as_ref(), query.deleted))
                .await?,
        )
    } else {
        None
    };
    let Page { records, more } = store::list(&app.db, entity, &query).await?;
    let next_cursor = if more { records.last().map(|r| cursor_of(entity, &query.sort, r)) } else { None };
    Ok(ListPage { entity: entity.clone(), records, fields, next_cursor, total })
}

pub async fn list(app: &App, principal: &Principal, entity_name: &str, params: &ListParams) -> ApiResult<ListPage> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let scope = scope_for_list(app, principal, entity, params).await?;
    let hidden = principal.hidden(entity_name);
    let query = list_query(&catalog, entity, params, scope, &entity.list.sort, hidden)?;
    run_list(app, entity, query, params, None, hidden).await
}

/// The scope of a list: what the caller may read; in the recycle bin, what they may restore.
async fn scope_for_list(
    app: &App,
    principal: &Principal,
    entity: &Entity,
    params: &ListParams,
) -> ApiResult<Option<Filter>> {
    let tree = app.departments().await?;
    if params.deleted {
        principal.entity(&app.catalog(), entity.name().as_str(), Action::Restore)?;
        return Ok(principal.edit_scope(&tree, entity));
    }
    Ok(principal.read_scope(&tree, entity))
}

/// The records of a related panel of a record.
pub async fn related(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    id: &str,
    panel_name: &str,
    params: &ListParams,
) -> ApiResult<ListPage> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let tree = app.departments().await?;
    let record = live_record(app, entity, id, principal.read_scope(&tree, entity).as_ref()).await?;
    let no_panel = || ApiError::not_found(format!("no panel `{panel_name}` on `{entity_name}`"));
    let panel = entity.panel(panel_name).ok_or_else(no_panel)?;
    // A panel of records the caller may not see does not exist for them.
    let source = principal.entity(&catalog, panel.source.as_str(), Action::Read).map_err(|_| no_panel())?;
    let hidden = principal.hidden(panel.source.as_str());
    let lookup = source.column(panel.lookup.as_str()).filter(|f| !hidden.contains(&f.name)).ok_or_else(no_panel)?;
    let mut base = Filter::Cond(Box::new(Cond { field: lookup.clone(), op: Op::Eq(Value::Uuid(record.id())) }));
    if let Some(scope) = principal.read_scope(&tree, source) {
        base = base.and(scope);
    }
    let query = list_query(&catalog, source, params, Some(base), &panel.sort, hidden)?;
    let columns =
        panel.columns.iter().filter(|c| !hidden.contains(*c)).filter_map(|c| source.column_index(c.as_str())).collect();
    run_list(app, source, query, params, Some(columns), hidden).await
}

/// Counts (and optionally sums) live records per value of a field.
pub async fn groups(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    by: &str,
    sum: Option<&str>,
    filter: Option<&str>,
) -> ApiResult<Json> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let hidden = principal.hidden(entity_name);
    let by_field = entity
        .column(by)
        .filter(|f| f.field_type.is_sortable() && !hidden.contains(&f.name))
        .ok_or_else(|| ApiError::bad_request("invalid_query", format!("cannot group `{entity_name}` by `{by}`")))?;
    let sum_field = sum
        .map(|name| {
            entity
                .column(name)
                .filter(|f| !hidden.contains(&f.name))
                .filter(|f| matches!(f.storage(), crm_model::Storage::Integer | crm_model::Storage::Fixed(_)))
                .ok_or_else(|| ApiError::bad_request("invalid_query", format!("cannot sum `{name}`")))
        })
        .transpose()?;
    let params = ListParams { filter: filter.map(str::to_owned), ..ListParams::default() };
    let scope = scope_for_list(app, principal, entity, &params).await?;
    let query = list_query(&catalog, entity, &params, scope, &[], hidden)?;
    let groups = store::group(&app.db, entity, by_field, sum_field, query.filter.as_ref()).await?;
    let rows: Vec<Json> = groups
        .iter()
        .map(|g| {
            let mut row = Map::new();
            row.insert("value".into(), value::to_json(by_field, &g.value));
            row.insert("count".into(), g.count.into());
            if let (Some(field), Some(sum)) = (sum_field, &g.sum) {
                row.insert("sum".into(), value::to_json(field, sum));
            }
            Json::Object(row)
        })
        .collect();
    Ok(json!({ "groups": rows }))
}

/// The audit entries of a record, oldest first.
pub async fn history(app: &App, principal: &Principal, entity_name: &str, id: &str) -> ApiResult<Json> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let id = parse_id(id)?;
    let scope = principal.read_scope(&*app.departments().await?, entity);
    if store::get(&app.db, entity, id, scope.as_ref()).await?.is_none() {
        return Err(ApiError::not_found(format!("no {entity_name} `{id}`")));
    }
    let hidden = principal.hidden(entity_name);
    let entries = system::record_history(&app.db, entity_name, id).await?;
    let data: Vec<Json> = entries
        .into_iter()
        .map(|(at, actor, action, mut changes)| {
            if let Some(fields) = changes.as_object_mut() {
                fields.retain(|name, _| !hidden.iter().any(|h| h.as_str() == name));
            }
            json!({"at": value::format_datetime(&at), "actor": actor, "action": action, "changes": changes})
        })
        .collect();
    Ok(json!({ "data": data }))
}

/// Gives records a new owner (C-2, SA-2, L-2, SV-2); a result per id. Those who may assign
/// do it on every record they see (pool records included); anyone may hand records they may
/// change back to a public pool account (C-7).
pub async fn bulk_assign(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
    owner: Uuid,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Read)?;
    let to_pool = is_pool(app, owner).await?;
    let tree = app.departments().await?;
    let scope = if principal.access.allows(entity_name, Action::Assign) {
        principal.read_scope(&tree, entity)
    } else if to_pool {
        principal.entity(&catalog, entity_name, Action::Edit)?;
        principal.edit_scope(&tree, entity)
    } else {
        return Err(ApiError::forbidden(format!("your roles do not allow `assign` on `{entity_name}`")));
    };
    let values = [(col::OWNER, Value::Uuid(owner))];
    change_each(app, &catalog, entity, principal, ids, scope.as_ref(), &values, "assign").await
}

/// Whether a user is a public pool account.
async fn is_pool(app: &App, user: Uuid) -> ApiResult<bool> {
    let catalog = app.catalog();
    let users = catalog.entity(USER_ENTITY).ok_or_else(|| ApiError::not_found("no user entity"))?;
    let record = store::get(&app.db, users, user, None).await?.filter(|r| !r.is_deleted());
    let record = record.ok_or_else(|| ApiError::field("owner", "not_found", format!("no user with id {user}")))?;
    Ok(users.column_index("pool").is_some_and(|i| record.values[i] == Value::Boolean(true)))
}

/// Who records are shared with.
#[derive(Debug, Clone, Copy)]
pub enum Grantee {
    User(Uuid),
    Department(Uuid),
}

/// Shares records the caller may change with a user or a department, for reading or editing
/// (C-3), or takes such shares back (`access` is `None`); a result per id.
pub async fn bulk_share(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    ids: &[Json],
    grantee: Grantee,
    access: Option<&'static str>,
) -> ApiResult<Vec<BulkResult>> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Share)?;
    let (target_entity, target, field) = match grantee {
        Grantee::User(id) => (USER_ENTITY, id, "user"),
        Grantee::Department(id) => ("department", id, "department"),
    };
    let targets = catalog.entity(target_entity).ok_or_else(|| ApiError::not_found(format!("no {target_entity}")))?;
    if store::get(&app.db, targets, target, None).await?.is_none_or(|r| r.is_deleted()) {
        return Err(ApiError::field(field, "not_found", format!("no {target_entity} with id {target}")));
    }
    let scope = principal.edit_scope(&*app.departments().await?, entity);
    let ids = bulk_ids(ids)?;
    let wanted: Vec<Uuid> = ids.iter().filter_map(|(_, id)| *id).collect();
    let mut scoped = Filter::Cond(Box::new(Cond {
        field: entity.column("id").expect("every entity has an id").clone(),
        op: Op::In(wanted.iter().map(|id| Value::Uuid(*id)).collect()),
    }));
    if let Some(scope) = scope {
        scoped = scoped.and(scope);
    }
    let found: HashSet<Uuid> = if wanted.is_empty() {
        HashSet::new()
    } else {
        let query =
            ListQuery { filter: Some(scoped), sort: Vec::new(), limit: MAX_BULK as u32, after: None, deleted: false };
        store::list(&app.db, entity, &query).await?.records.iter().map(Record::id).collect()
    };
    let shares: Vec<system::Share> = wanted
        .iter()
        .filter(|id| found.contains(id))
        .map(|id| system::Share {
            entity: entity_name.to_owned(),
            record_id: *id,
            user: matches!(grantee, Grantee::User(_)).then_some(target),
            department: matches!(grantee, Grantee::Department(_)).then_some(target),
            access: access.unwrap_or("read"),
        })
        .collect();
    let now = app.now();
    let mut tx = app.db.begin().await?;
    match access {
        Some(_) => system::share(&mut tx, &shares, principal.user_id, now).await?,
        None => system::unshare(&mut tx, &shares).await?,
    }
    let audit: Vec<AuditEntry> = shares
        .iter()
        .map(|s| AuditEntry {
            actor: Some(principal.user_id),
            entity: entity_name.to_owned(),
            record_id: s.record_id,
            action: if access.is_some() { "share" } else { "unshare" },
            changes: json!({ field: target, "access": access }),
        })
        .collect();
    system::record_change(&mut tx, now, &audit, &[]).await?;
    tx.commit().await?;
    app.noticed_write(entity_name);
    Ok(ids
        .into_iter()
        .map(|(text, id)| match id {
            Some(id) if found.contains(&id) => BulkResult { id: text, outcome: Outcome::Done(None) },
            _ => missing(&text),
        })
        .collect())
}
