//! Finding records a file names: those whose key matches a row's (to update or skip), and the
//! records and users that lookup columns name by their title. Both look only among the records
//! the caller may read, in one query per chunk and field.

use std::collections::{BTreeSet, HashMap};

use crm_model::filter::{Cond, Op};
use crm_model::{Entity, FieldDef, Filter, ListQuery, Value, value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::mapping;
use super::run::{Plan, Prepared};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiResult, FieldError};

/// A key as compared: its text.
pub(super) fn key_text(key: &Json) -> String {
    key.as_str().map_or_else(|| key.to_string(), |s| s.trim().to_owned())
}

/// The records whose key is one of the rows', among those the caller may read: by key text.
pub(super) async fn find(
    app: &App,
    principal: &Principal,
    entity: &Entity,
    key: &FieldDef,
    rows: &[Prepared],
) -> ApiResult<HashMap<String, Uuid>> {
    let mut wanted: Vec<Value> = Vec::new();
    for row in rows {
        if let Some(parsed) = row.key.as_ref().and_then(|k| value::parse(key, &Json::from(key_text(k)), None).ok())
            && !parsed.is_null()
            && !wanted.contains(&parsed)
        {
            wanted.push(parsed);
        }
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let limit = wanted.len() as u32;
    let mut filter = Filter::Cond(Box::new(Cond { field: key.clone(), op: Op::In(wanted) }));
    if let Some(scope) = principal.read_scope(&*app.departments().await?, entity) {
        filter = filter.and(scope);
    }
    let query = ListQuery { filter: Some(filter), sort: Vec::new(), limit, after: None, deleted: false };
    let index = entity.column_index(key.name.as_str()).expect("the key is a column");
    let page = crm_store::records::list(&app.db, entity, &query).await?;
    Ok(page.records.iter().map(|r| (key_text(&value::to_json(key, &r.values[index])), r.id())).collect())
}

/// Lookups and users named in the file by their title (a customer's name, a user's name) become
/// the ids the pipeline reads, found among the records the caller may see; a title that names
/// none or several is the row's error. Ids are passed on as they are.
pub(super) async fn resolve_references(
    app: &App,
    principal: &Principal,
    plan: &Plan,
    rows: &mut [Prepared],
) -> ApiResult<()> {
    let catalog = app.catalog();
    let tree = app.departments().await?;
    let mut fields: Vec<&FieldDef> = Vec::new();
    for name in plan.targets.iter().flatten() {
        if let Some(field) =
            plan.entity.column(name).filter(|f| f.reference_target().is_some() && mapping::is_written(f))
            && !fields.iter().any(|f| f.name == field.name)
        {
            fields.push(field);
        }
    }
    for field in fields {
        let name = field.name.as_str();
        let titles: Vec<String> = rows
            .iter()
            .filter_map(|row| row.body.get(name)?.as_str())
            .filter(|text| Uuid::parse_str(text).is_err())
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let target = catalog.entity(field.reference_target().unwrap_or_default());
        let title_field = target.and_then(|t| t.title_field());
        let (Some(target), Some(title_field), false) = (target, title_field, titles.is_empty()) else { continue };
        let mut filter = Filter::Cond(Box::new(Cond {
            field: title_field.clone(),
            op: Op::In(titles.iter().map(|t| Value::Text(t.clone())).collect()),
        }));
        // User names are directory information everyone sees; other records, within the scope.
        if target.name().as_str() != crm_model::USER_ENTITY
            && let Some(scope) = principal.read_scope(&tree, target)
        {
            filter = filter.and(scope);
        }
        let limit = u32::try_from(titles.len() * 2).unwrap_or(u32::MAX);
        let query = ListQuery { filter: Some(filter), sort: Vec::new(), limit, after: None, deleted: false };
        let at = target.column_index(title_field.name.as_str()).expect("the title is a column");
        let mut found: HashMap<String, Vec<Uuid>> = HashMap::new();
        for record in crm_store::records::list(&app.db, target, &query).await?.records {
            if let Value::Text(title) = &record.values[at] {
                found.entry(title.clone()).or_default().push(record.id());
            }
        }
        for row in rows.iter_mut() {
            let Some(Json::String(text)) = row.body.get(name).cloned() else { continue };
            if Uuid::parse_str(&text).is_ok() {
                continue;
            }
            match found.get(&text).map(Vec::as_slice) {
                Some([id]) => {
                    row.body.insert(name.to_owned(), Json::from(id.to_string()));
                }
                Some(_) => {
                    row.body.remove(name);
                    row.errors.push(FieldError::new(
                        name,
                        "import_ambiguous",
                        format!("several records are named `{text}`; use the id"),
                    ));
                }
                None => {
                    row.body.remove(name);
                    row.errors.push(FieldError::new(
                        name,
                        "import_no_record",
                        format!("no record named `{text}` that you may see"),
                    ));
                }
            }
        }
    }
    Ok(())
}
