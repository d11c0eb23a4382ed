//! Global search (`GET /api/v1/search`, the box in every screen's top bar): the text of the
//! searchable fields of every entity the caller reads, found in the node's index within the
//! caller's read scope and among the fields they may see, then checked against the database
//! through the same scope as a list, so a search never shows, counts or quotes a record or a
//! field a list would not.

mod indexer;

use std::collections::{HashMap, HashSet};

use crm_model::filter::{Cond, Op};
use crm_model::{Entity, FieldDef, FieldType, Filter, ListQuery, Value, value};
use crm_search::{Hit, Query, Scope, Target};
use crm_store::records::{self as store, Members};
use serde_json::{Value as Json, json};

pub use indexer::{Indexer, REINDEX, rebuild};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Most records one search answers.
pub const MAX_RESULTS: usize = 50;

/// Most records a `contains` condition is narrowed to by the index; with more candidates the
/// database scans as it would without an index.
const MAX_CANDIDATES: usize = 5_000;

/// The fields of an entity global search looks in: searchable texts and choices.
fn searchable_fields(entity: &Entity) -> impl Iterator<Item = &FieldDef> {
    entity.live_fields().filter(|f| f.searchable && (f.field_type.is_text_like() || f.field_type == FieldType::Select))
}

/// The fields of an entity the index keeps: the searchable ones, and the texts its duplicate
/// rules compare (looked up by the duplicate check, never offered to global search).
pub(crate) fn indexed_fields(entity: &Entity) -> impl Iterator<Item = &FieldDef> {
    let compared = |f: &FieldDef| entity.def.duplicates.iter().any(|r| r.fields.iter().any(|c| c.field == f.name));
    entity.live_fields().filter(move |f| {
        (f.searchable && (f.field_type.is_text_like() || f.field_type == FieldType::Select))
            || (compared(f) && f.field_type.is_text_like())
    })
}

/// The entities whose indexed fields differ between two catalogs: a metadata change asks
/// the index to index them again.
pub fn reindexed(before: &crm_model::Catalog, after: &crm_model::Catalog) -> Vec<String> {
    let fields = |catalog: &crm_model::Catalog, name: &str| -> Vec<String> {
        catalog.entity(name).map(|e| indexed_fields(e).map(|f| f.name.to_string()).collect()).unwrap_or_default()
    };
    let mut names: Vec<String> = before.entities().chain(after.entities()).map(|e| e.name().to_string()).collect();
    names.sort_unstable();
    names.dedup();
    names.retain(|name| fields(before, name) != fields(after, name));
    names
}

/// Which records of an entity the index may return to the caller: all, or those of the
/// owners and ids that their read scope lets through. A scope the index cannot express
/// (none today) lets every record through here; the database check narrows it after.
async fn index_scope(app: &App, scope: Option<&Filter>) -> ApiResult<Scope> {
    let Some(Filter::Or(parts)) = scope else {
        return Ok(Scope::All);
    };
    let (mut owners, mut ids) = (Vec::new(), Vec::new());
    for part in parts {
        match part {
            Filter::Cond(cond) if cond.field.name.as_str() == "owner" => match &cond.op {
                Op::Eq(Value::Uuid(owner)) => owners.push(*owner),
                _ => return Ok(Scope::All),
            },
            Filter::Scope(term) => match store::scope_members(&app.db, term).await? {
                Members::Owners(found) => owners.extend(found),
                Members::Ids(found) => ids.extend(found),
            },
            _ => return Ok(Scope::All),
        }
    }
    Ok(Scope::Within { owners, ids })
}

/// Narrows a list of live records by the index: a `contains` or `starts_with` condition on
/// an indexed text field (one that every record must meet) adds `id IN (the records whose
/// n-grams hold the text)`. The index's candidates are a superset of the records whose text
/// holds it, and the condition itself stays, so the list is the one a scan gives — which is
/// why this is done only when the index has seen every write, and never for the recycle bin.
pub async fn narrow(app: &App, entity: &Entity, query: &mut ListQuery) -> ApiResult<()> {
    let Some(filter) = &query.filter else { return Ok(()) };
    if query.deleted {
        return Ok(());
    }
    let conditions: Vec<(&str, &str)> = required_conditions(filter)
        .into_iter()
        .filter_map(|cond| {
            let text = match &cond.op {
                Op::Contains(Value::Text(text)) => text.as_str(),
                Op::StartsWith(text) => text.as_str(),
                _ => return None,
            };
            let indexed =
                cond.field.field_type.is_text_like() && indexed_fields(entity).any(|f| f.name == cond.field.name);
            indexed.then_some((cond.field.name.as_str(), text))
        })
        .collect();
    if conditions.is_empty() || !indexer::caught_up(app).await? {
        return Ok(());
    }
    let mut candidates: Option<HashSet<uuid::Uuid>> = None;
    for (field, text) in conditions {
        let Some(found) = app
            .search
            .containing(entity.name().as_str(), field, text, MAX_CANDIDATES)
            .map_err(|e| ApiError::Internal(e.into()))?
        else {
            continue;
        };
        let found: HashSet<uuid::Uuid> = found.into_iter().collect();
        candidates = Some(match candidates {
            Some(before) => before.intersection(&found).copied().collect(),
            None => found,
        });
    }
    let Some(candidates) = candidates else { return Ok(()) };
    let narrowed = if candidates.is_empty() {
        Filter::Scope(Box::new(crm_model::filter::ScopeTerm::Nothing))
    } else {
        let id = entity.column("id").expect("every entity has an id").clone();
        Filter::Cond(Box::new(Cond { field: id, op: Op::In(candidates.into_iter().map(Value::Uuid).collect()) }))
    };
    query.filter = query.filter.take().map(|f| f.and(narrowed));
    Ok(())
}

/// The conditions every record of a filter must meet: the filter itself, or the members of
/// its top `and`s.
fn required_conditions(filter: &Filter) -> Vec<&Cond> {
    match filter {
        Filter::Cond(cond) => vec![cond],
        Filter::And(all) => all.iter().flat_map(required_conditions).collect(),
        _ => Vec::new(),
    }
}

/// Searches the records the caller reads; `entities` narrows to some modules.
pub async fn search(
    app: &App,
    principal: &Principal,
    text: &str,
    entities: Option<&[String]>,
    limit: usize,
) -> ApiResult<Json> {
    let text = text.trim();
    if text.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_query", "`q` is at most 100 characters"));
    }
    let limit = limit.clamp(1, MAX_RESULTS);
    let catalog = app.catalog();
    let tree = app.departments().await?;
    let mut targets = Vec::new();
    let mut scopes: HashMap<String, Option<Filter>> = HashMap::new();
    for entity in catalog.entities() {
        let name = entity.name().as_str();
        if !principal.sees(name) || entities.is_some_and(|wanted| !wanted.iter().any(|w| w == name)) {
            continue;
        }
        let hidden = principal.hidden(name);
        let fields: Vec<String> =
            searchable_fields(entity).filter(|f| !hidden.contains(&f.name)).map(|f| f.name.to_string()).collect();
        if fields.is_empty() {
            continue;
        }
        let scope = principal.read_scope(&tree, entity);
        targets.push(Target { entity: name.to_owned(), fields, scope: index_scope(app, scope.as_ref()).await? });
        scopes.insert(name.to_owned(), scope);
    }
    let hits = if text.is_empty() || targets.is_empty() {
        Vec::new()
    } else {
        app.search.search(&Query { text, targets, limit }).map_err(|e| ApiError::Internal(e.into()))?
    };
    // The database has the last word: what the scope lets through, as a list sees it now.
    let mut by_entity: Vec<(String, Vec<Hit>)> = Vec::new();
    for hit in hits {
        match by_entity.iter_mut().find(|(e, _)| *e == hit.entity) {
            Some((_, group)) => group.push(hit),
            None => by_entity.push((hit.entity.clone(), vec![hit])),
        }
    }
    let mut groups = Vec::new();
    for (name, hits) in by_entity {
        let Some(entity) = catalog.entity(&name) else { continue };
        let ids: Vec<uuid::Uuid> = hits.iter().map(|h| h.id).collect();
        let scope = scopes.get(&name).cloned().flatten();
        let records = store::get_many(&app.db, entity, &ids, scope.as_ref()).await?;
        let visible: HashSet<uuid::Uuid> = records.iter().map(crm_store::Record::id).collect();
        let title = |id: uuid::Uuid| {
            let record = records.iter().find(|r| r.id() == id)?;
            let field = entity.title_field().filter(|f| !principal.hidden(&name).contains(&f.name))?;
            let i = entity.column_index(field.name.as_str())?;
            match value::to_json(field, &record.values[i]) {
                Json::String(text) => Some(text),
                _ => None,
            }
        };
        let found: Vec<Json> = hits
            .iter()
            .filter(|h| visible.contains(&h.id))
            .map(|h| {
                let field = entity.field(&h.field);
                json!({
                    "id": h.id,
                    "title": title(h.id).unwrap_or_else(|| h.fragment.clone()),
                    "field": h.field,
                    "field_label": field.map(|f| json!(f.label)),
                    "fragment": h.fragment,
                    "highlights": h.highlights.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>(),
                    "score": h.score,
                })
            })
            .collect();
        if !found.is_empty() {
            // `json!` would copy the hits value by value: they are moved in instead.
            let mut group = json!({"entity": name, "label": entity.def.label});
            group["hits"] = Json::Array(found);
            groups.push(group);
        }
    }
    let mut found = json!({ "q": text });
    found["groups"] = Json::Array(groups);
    Ok(found)
}
