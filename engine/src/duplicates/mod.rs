//! Duplicates (查重): the rules of an entity's metadata say which fields make two records
//! likely the same and how each is compared; [`crm_search::matching`] scores a pair.
//!
//! - At entry, [`check`] finds the likely duplicates of the values a form or an API client
//!   is about to save: candidates from the search index, scored on their stored values. A
//!   candidate the caller may not read is named only by its owner and department — a rep
//!   learns that a colleague already works the customer, and nothing of the record.
//! - In the save pipeline, [`blocking`] refuses a write that a rule set to `block` finds a
//!   likely duplicate for.
//! - [`scan`] finds the clusters of likely duplicates across an entity, as a background task.

pub mod scan;

use std::collections::{HashMap, HashSet};

use crm_model::{Compare, DuplicateAction, DuplicateRule, Entity, USER_ENTITY, Value};
use crm_search::matching::{self, Rule};
use crm_store::Record;
use crm_store::records::{self as store, col};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

/// Candidates the index gives for each compared field.
const CANDIDATES: usize = 20;
/// Most likely duplicates a check answers.
const MAX_MATCHES: usize = 10;

fn compare_of(compare: Compare) -> matching::Compare {
    match compare {
        Compare::Exact => matching::Compare::Exact,
        Compare::Text => matching::Compare::Text,
        Compare::Company => matching::Compare::Company,
        Compare::Phone => matching::Compare::Phone,
        Compare::Email => matching::Compare::Email,
        Compare::Address => matching::Compare::Address,
    }
}

pub(crate) fn rule_of(rule: &DuplicateRule) -> Rule {
    Rule { fields: rule.fields.iter().map(|f| (compare_of(f.compare), u32::from(f.weight))).collect() }
}

/// The comparable forms of a record's values under a rule, from a way to read a field's text.
pub(crate) fn forms<'a>(rule: &DuplicateRule, text: impl Fn(&str) -> Option<&'a str>) -> Vec<Option<String>> {
    rule.fields
        .iter()
        .map(|f| text(f.field.as_str()).and_then(|t| matching::comparable(compare_of(f.compare), t)))
        .collect()
}

/// A stored record's text in a field.
pub(crate) fn stored_text<'a>(entity: &Entity, record: &'a Record, field: &str) -> Option<&'a str> {
    match &record.values[entity.column_index(field)?] {
        Value::Text(text) => Some(text.as_str()),
        _ => None,
    }
}

/// A likely duplicate: the record, the rule that found it and its score.
pub struct Found<'r> {
    pub record: Record,
    pub rule: &'r DuplicateRule,
    pub score: u8,
}

/// The likely duplicates among the stored records of a record described by its forms under
/// each rule, best first; `except` (the record itself, when it is changed) is left out, and
/// so are the records said not to be its duplicates.
async fn likely<'r>(
    app: &App,
    entity: &Entity,
    rules: &[&'r DuplicateRule],
    forms: &[Vec<Option<String>>],
    except: &HashSet<Uuid>,
    record: Option<Uuid>,
) -> ApiResult<Vec<Found<'r>>> {
    let mut ids = Vec::new();
    for (rule, forms) in rules.iter().zip(forms) {
        for (compared, form) in rule.fields.iter().zip(forms) {
            let Some(form) = form else { continue };
            let found = app
                .search
                .similar(
                    entity.name().as_str(),
                    compared.field.as_str(),
                    compare_of(compared.compare),
                    form,
                    CANDIDATES,
                )
                .map_err(|e| ApiError::Internal(e.into()))?;
            for id in found {
                if !except.contains(&id) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    let apart: HashSet<Uuid> = match record {
        Some(id) if !ids.is_empty() => crm_store::tasks::not_duplicates(&app.db, entity.name().as_str())
            .await?
            .into_iter()
            .filter_map(|(a, b)| {
                if a == id {
                    Some(b)
                } else if b == id {
                    Some(a)
                } else {
                    None
                }
            })
            .collect(),
        _ => HashSet::new(),
    };
    ids.retain(|id| !apart.contains(id));
    let mut found = Vec::new();
    for candidate in store::get_many(&app.db, entity, &ids, None).await? {
        let best = rules
            .iter()
            .zip(forms)
            .filter_map(|(rule, forms)| {
                let theirs = self::forms(rule, |f| stored_text(entity, &candidate, f));
                let score = matching::score(&rule_of(rule), forms, &theirs)?;
                (score >= rule.threshold).then_some((*rule, score))
            })
            .max_by_key(|(rule, score)| (*score, rule.action == DuplicateAction::Block));
        if let Some((rule, score)) = best {
            found.push(Found { record: candidate, rule, score });
        }
    }
    found.sort_by(|a, b| b.score.cmp(&a.score).then(a.record.id().cmp(&b.record.id())));
    found.truncate(MAX_MATCHES);
    Ok(found)
}

/// Whether the values of a record about to be created (an import's row) are a likely
/// duplicate of a stored record under any of the entity's rules.
pub(crate) async fn any_likely(app: &App, entity: &Entity, values: &serde_json::Map<String, Json>) -> ApiResult<bool> {
    let rules: Vec<&DuplicateRule> = entity.def.duplicates.iter().collect();
    if rules.is_empty() {
        return Ok(false);
    }
    let forms: Vec<Vec<Option<String>>> =
        rules.iter().map(|rule| forms(rule, |f| values.get(f).and_then(Json::as_str))).collect();
    Ok(!likely(app, entity, &rules, &forms, &HashSet::new(), None).await?.is_empty())
}

/// `POST /api/v1/records/{entity}/duplicates`: the likely duplicates of values about to be
/// saved (`{"values": {...}, "id": "<the record, when it is changed>"}`), under the rules
/// whose fields the caller sees. Candidates they may read come with their id and title;
/// the others only with their owner and the owner's department.
pub async fn check(app: &App, principal: &Principal, entity_name: &str, body: &Json) -> ApiResult<Json> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, crm_model::Action::Read)?;
    let Some(values) = body.get("values").and_then(Json::as_object) else {
        return Err(ApiError::field("values", "required", "send the values to check as an object"));
    };
    let record = match body.get("id") {
        None | Some(Json::Null) => None,
        Some(id) => Some(id.as_str().and_then(|id| Uuid::parse_str(id).ok()).ok_or_else(|| {
            ApiError::field("id", "invalid_type", "the id of the record being changed, or nothing for a new one")
        })?),
    };
    let hidden = principal.hidden(entity_name);
    let rules: Vec<&DuplicateRule> =
        entity.def.duplicates.iter().filter(|r| r.fields.iter().all(|f| !hidden.contains(&f.field))).collect();
    let forms: Vec<Vec<Option<String>>> =
        rules.iter().map(|rule| forms(rule, |f| values.get(f).and_then(Json::as_str))).collect();
    let except: HashSet<Uuid> = record.into_iter().collect();
    let found = likely(app, entity, &rules, &forms, &except, record).await?;
    let tree = app.departments().await?;
    let ids: Vec<Uuid> = found.iter().map(|f| f.record.id()).collect();
    let readable: HashSet<Uuid> = match principal.read_scope(&tree, entity) {
        None => ids.iter().copied().collect(),
        Some(scope) => store::get_many(&app.db, entity, &ids, Some(&scope)).await?.iter().map(Record::id).collect(),
    };
    let owners = owners(app, found.iter().filter_map(|f| owner_of(&f.record))).await?;
    let title = entity.title_field().filter(|f| !hidden.contains(&f.name)).map(|f| f.name.to_string());
    let matches: Vec<Json> = found
        .iter()
        .map(|f| {
            let visible = readable.contains(&f.record.id());
            let owner = owner_of(&f.record).and_then(|o| owners.get(&o));
            json!({
                "visible": visible,
                "id": visible.then(|| f.record.id()),
                "title": title.as_deref().filter(|_| visible).and_then(|t| stored_text(entity, &f.record, t)),
                "score": f.score,
                "rule": f.rule.name,
                "rule_label": f.rule.label,
                "action": f.rule.action,
                "owner": owner.map(|(name, _)| name),
                "department": owner.and_then(|(_, department)| department.as_ref()),
            })
        })
        .collect();
    let blocked = found.iter().any(|f| f.rule.action == DuplicateAction::Block);
    Ok(json!({"blocked": blocked, "matches": matches}))
}

pub(crate) fn owner_of(record: &Record) -> Option<Uuid> {
    match record.values[col::OWNER] {
        Value::Uuid(owner) => Some(owner),
        _ => None,
    }
}

/// The names of users, with the names of their departments.
pub(crate) async fn owners(
    app: &App,
    ids: impl Iterator<Item = Uuid>,
) -> ApiResult<HashMap<Uuid, (String, Option<String>)>> {
    let catalog = app.catalog();
    let (Some(users), Some(departments)) = (catalog.entity(USER_ENTITY), catalog.entity("department")) else {
        return Ok(HashMap::new());
    };
    let ids: Vec<Uuid> = ids.collect::<HashSet<_>>().into_iter().collect();
    let people = store::get_many(&app.db, users, &ids, None).await?;
    let department_of = |user: &Record| match users.column_index("department").map(|i| &user.values[i]) {
        Some(Value::Uuid(department)) => Some(*department),
        _ => None,
    };
    let wanted: Vec<Uuid> = people.iter().filter_map(department_of).collect();
    let named: HashMap<Uuid, String> = store::get_many(&app.db, departments, &wanted, None)
        .await?
        .iter()
        .filter_map(|d| Some((d.id(), stored_text(departments, d, "name")?.to_owned())))
        .collect();
    Ok(people
        .iter()
        .map(|user| {
            let name = stored_text(users, user, "name").unwrap_or_default().to_owned();
            (user.id(), (name, department_of(user).and_then(|d| named.get(&d).cloned())))
        })
        .collect())
}

/// Step 8 of the save pipeline for rules that block: a record whose compared fields are new
/// or changed (`changed`, all for a new record) may not be saved as a likely duplicate of a
/// stored one. Records the same unit removes (`leaving`) do not count.
pub(crate) async fn blocking(
    app: &App,
    entity: &Entity,
    record: &Record,
    changed: Option<&[usize]>,
    leaving: &HashSet<Uuid>,
    prefix: &str,
) -> ApiResult<Vec<FieldError>> {
    let touched = |rule: &DuplicateRule| {
        changed.is_none_or(|changed| {
            rule.fields.iter().any(|f| entity.column_index(f.field.as_str()).is_some_and(|i| changed.contains(&i)))
        })
    };
    let rules: Vec<&DuplicateRule> =
        entity.def.duplicates.iter().filter(|r| r.action == DuplicateAction::Block && touched(r)).collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let forms: Vec<Vec<Option<String>>> =
        rules.iter().map(|rule| forms(rule, |f| stored_text(entity, record, f))).collect();
    let mut except = leaving.clone();
    except.insert(record.id());
    let found = likely(app, entity, &rules, &forms, &except, Some(record.id())).await?;
    Ok(found
        .first()
        .map(|f| {
            let field = &f.rule.fields[0].field;
            FieldError::new(
                format!("{prefix}{field}"),
                "duplicate",
                format!("likely a duplicate of another record (score {}, rule `{}`)", f.score, f.rule.name),
            )
        })
        .into_iter()
        .collect())
}

/// Remembers that records are not duplicates of each other (every pair of them): the scan
/// and the check leave them apart from then on.
pub async fn apart(app: &App, principal: &Principal, entity_name: &str, ids: &[Uuid]) -> ApiResult<()> {
    principal.require_admin()?;
    let catalog = app.catalog();
    let entity =
        catalog.entity(entity_name).ok_or_else(|| ApiError::not_found(format!("no entity `{entity_name}`")))?;
    let unique: HashSet<&Uuid> = ids.iter().collect();
    if !(2..=20).contains(&ids.len()) || unique.len() != ids.len() {
        return Err(ApiError::field("ids", "invalid", "between 2 and 20 different records"));
    }
    let found = store::get_many(&app.db, entity, ids, None).await?;
    if found.len() != ids.len() {
        return Err(ApiError::not_found(format!("some of these are not live `{entity_name}` records")));
    }
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            crm_store::tasks::not_duplicate(&app.db, entity_name, *a, *b, principal.user_id, app.now()).await?;
        }
    }
    Ok(())
}
