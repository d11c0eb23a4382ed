//! The checks of the save pipeline that look at values: parsing the caller's input against
//! what they may write, defaults, required fields, references through the caller's read
//! scope, and uniqueness.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use crm_model::meta::StageSetDoc;
use crm_model::{Action, Catalog, Entity, FieldDef, USER_ENTITY, Value, value};
use crm_store::records::{self as store, col};
use crm_store::{Db, On, Record};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::{DepartmentTree, Principal};
use crate::error::{ApiError, ApiResult, FieldError};

pub(super) fn body_object<'a>(body: &'a Json, what: &str) -> ApiResult<&'a Map<String, Json>> {
    body.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", format!("{what} is a JSON object")))
}

fn stages_of<'a>(catalog: &'a Catalog, field: &FieldDef) -> Option<&'a StageSetDoc> {
    field.stage_set.as_ref().and_then(|s| catalog.stage_set(s.as_str()))
}

/// The stage set a value of a stage field is parsed against: the one of the field's sets that
/// has the stage (which one the record needs is checked with the whole record), else the
/// default.
pub(crate) fn stages_for_value<'a>(catalog: &'a Catalog, field: &FieldDef, value: &Json) -> Option<&'a StageSetDoc> {
    let sets = catalog.stage_sets_of(field);
    let name = value.as_str().unwrap_or_default();
    sets.iter().find(|set| set.stages.iter().any(|s| s.name.as_str() == name)).or(sets.first()).copied()
}

/// Parses the values of a write: `(column position, value)` per key. `owner` may be set by
/// those who may assign (left empty on a new record, it is the caller); fields the engine
/// keeps, fields the caller may only read and unknown (or hidden) keys are refused.
pub(super) fn parse_values(
    catalog: &Catalog,
    entity: &Entity,
    p: &Principal,
    body: &Map<String, Json>,
    prefix: &str,
    new: bool,
) -> Result<Vec<(usize, Value)>, Vec<FieldError>> {
    let mut values = Vec::with_capacity(body.len());
    let mut errors = Vec::new();
    let hidden = p.hidden(entity.name().as_str());
    let read_only = p.read_only(entity.name().as_str());
    for (key, json) in body {
        let name = format!("{prefix}{key}");
        let field = match entity.column(key).filter(|f| !hidden.contains(&f.name)) {
            Some(field) if field.name.as_str() == "owner" => {
                if json.is_null() {
                    if !new {
                        errors.push(FieldError::new(name, "required", "a record always has an owner"));
                    }
                    continue;
                }
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
            Some(field) if field.kept_by_engine() => {
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

/// The values of a new record before its own: defaults and system columns (its id aside).
pub(super) fn new_values(catalog: &Catalog, entity: &Entity, principal: &Principal, now: DateTime<Utc>) -> Vec<Value> {
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

/// Required fields left empty; of a change, only those it touches.
pub(super) fn missing_required(
    entity: &Entity,
    record: &Record,
    only: Option<&[usize]>,
    prefix: &str,
) -> Vec<FieldError> {
    entity
        .live_fields()
        .filter(|f| f.required && !f.spec().generated)
        .filter_map(|f| {
            let i = entity.column_index(f.name.as_str())?;
            let asked = only.is_none_or(|only| only.contains(&i));
            (asked && record.values[i].is_null())
                .then(|| FieldError::new(format!("{prefix}{}", f.name), "required", "a value is required"))
        })
        .collect()
}

/// One record whose references are checked, the columns to check (all when `None`), and the
/// prefix its errors are named with.
pub(super) struct Referring<'r> {
    pub record: &'r Record,
    pub only: Option<&'r [usize]>,
    pub prefix: String,
}

/// References that do not point at a live record the caller may read: a record that is not
/// there and one that is not theirs get the same answer, so nobody learns what exists
/// outside their scope. Records created in the same unit count as there; the caller is a
/// live user (they were just authenticated).
pub(super) async fn references(
    db: &Db,
    catalog: &Catalog,
    entity: &Entity,
    principal: &Principal,
    tree: &DepartmentTree,
    records: &[Referring<'_>],
    created: &HashMap<&str, HashSet<Uuid>>,
) -> ApiResult<Vec<FieldError>> {
    let fields: Vec<(usize, &FieldDef, &str)> = entity
        .columns()
        .iter()
        .enumerate()
        .filter(|(i, f)| f.field_type.is_reference() && *i != col::ID)
        .map(|(i, f)| (i, f, f.reference_target().unwrap_or_default()))
        .collect();
    let asked = |r: &Referring<'_>, i: usize| r.only.is_none_or(|only| only.contains(&i));
    let known = |target: &str, id: Uuid| {
        (target == USER_ENTITY && id == principal.user_id) || created.get(target).is_some_and(|ids| ids.contains(&id))
    };
    let mut wanted: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for (i, _, target) in &fields {
        for r in records.iter().filter(|r| asked(r, *i)) {
            if let Value::Uuid(id) = r.record.values[*i]
                && !known(target, id)
            {
                wanted.entry(target).or_default().push(id);
            }
        }
    }
    let mut found: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    for (target, mut ids) in wanted {
        ids.sort_unstable();
        ids.dedup();
        // A module the caller does not have holds nothing they may point at.
        let Some(target_entity) = catalog.entity(target).filter(|_| principal.sees(target)) else { continue };
        let scope = principal.read_scope(tree, target_entity);
        found.insert(target, store::existing_ids(&mut On::Read(db), target_entity, &ids, scope.as_ref()).await?);
    }
    let mut errors = Vec::new();
    for (i, field, target) in &fields {
        for r in records.iter().filter(|r| asked(r, *i)) {
            if let Value::Uuid(id) = r.record.values[*i]
                && !known(target, id)
                && !found.get(target).is_some_and(|ids| ids.contains(&id))
            {
                errors.push(FieldError::new(
                    format!("{}{}", r.prefix, field.name),
                    "not_found",
                    format!("no `{target}` with id {id}"),
                ));
            }
        }
    }
    Ok(errors)
}

/// The unique fields of an entity, by column position.
pub(super) fn unique_columns(entity: &Entity) -> Vec<usize> {
    entity.columns().iter().enumerate().filter(|(_, f)| f.unique && !f.archived).map(|(i, _)| i).collect()
}

/// Unique fields whose value another live record already holds. It reads committed data:
/// the unique indexes remain the final guard against a concurrent duplicate.
pub(super) async fn unique(
    db: &Db,
    entity: &Entity,
    record: &Record,
    columns: &[usize],
    prefix: &str,
) -> ApiResult<Vec<FieldError>> {
    let mut errors = Vec::new();
    for &i in columns {
        let field = &entity.columns()[i];
        if field.unique
            && !record.values[i].is_null()
            && store::value_taken(&mut On::Read(db), entity, field, &record.values[i], record.id()).await?
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

/// Unique values repeated among new records of one request.
pub(super) fn duplicates_within(entity: &Entity, records: &[Record], unique: &[usize]) -> Vec<FieldError> {
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

/// `{field: [before, after]}` of the columns (and owner) that differ.
pub(super) fn diff_json(entity: &Entity, before: &Record, after: &Record) -> Json {
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
