//! Reading records: one by id, lists with filters, sorts and keyset pages, related panels,
//! grouped counts and a record's history — each within the caller's scope, without the
//! fields hidden from them.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_model::filter::{self, Cond, Op};
use crm_model::{Action, Catalog, Entity, Filter, Ident, ListQuery, SortKey, Value, value};
use crm_store::Record;
use crm_store::records::{self as store, Page};
use crm_store::system;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use super::out::{ListPage, RecordOut, visible_columns};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Largest page a list returns.
pub const MAX_LIMIT: u32 = 500;

/// Column positions for a `fields=a,b` parameter, each once; hidden fields do not exist for
/// it. A parameter that names no field (`fields=`) asks for the default fields: `None`.
pub fn parse_fields(entity: &Entity, text: &str, hidden: &HashSet<Ident>) -> ApiResult<Option<Vec<usize>>> {
    let mut columns = Vec::new();
    for name in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let column = entity
            .column(name)
            .filter(|f| !hidden.contains(&f.name))
            .and_then(|f| entity.column_index(f.name.as_str()))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("no field `{name}` on `{}`", entity.name()))
            })?;
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    Ok(Some(columns).filter(|c| !c.is_empty()))
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
    let chosen = fields.map(|text| parse_fields(entity, text, hidden)).transpose()?.flatten();
    let fields = chosen.or_else(|| visible_columns(entity, hidden));
    Ok(RecordOut { entity: entity.clone(), record, fields })
}

pub(crate) fn parse_id(id: &str) -> ApiResult<Uuid> {
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
    mut query: ListQuery,
    params: &ListParams,
    default_fields: Option<Vec<usize>>,
    hidden: &HashSet<Ident>,
) -> ApiResult<ListPage> {
    let chosen = params.fields.as_deref().map(|text| parse_fields(entity, text, hidden)).transpose()?.flatten();
    let fields = chosen.or(default_fields).or_else(|| visible_columns(entity, hidden));
    crate::search::narrow(app, entity, &mut query).await?;
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

/// A live record of an entity whose `field` equals `value`, within the caller's read scope
/// (a code an ERP row names, a user by e-mail).
pub async fn find_by(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    field: &str,
    value: &str,
) -> ApiResult<Option<Record>> {
    let params = ListParams {
        filter: Some(json!({"field": field, "op": "eq", "value": value}).to_string()),
        limit: Some(1),
        ..ListParams::default()
    };
    Ok(list(app, principal, entity_name, &params).await?.records.into_iter().next())
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
    let statement = store::group_statement(app.db.dialect(), entity, by_field, sum_field, query.filter.as_ref());
    let groups = app
        .record_groups
        .get_or(statement.cache_key(), || async {
            Ok(std::sync::Arc::new(store::group(&app.db, statement, by_field, sum_field).await?))
        })
        .await?;
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
        .map(|mut entry| {
            if let Some(fields) = entry.changes.as_object_mut() {
                fields.retain(|name, _| !hidden.iter().any(|h| h.as_str() == name));
            }
            let at = entry.at.map(|at| value::format_datetime(&at));
            json!({"at": at, "actor": entry.actor, "action": entry.action, "source": entry.source, "changes": entry.changes})
        })
        .collect();
    Ok(json!({ "data": data }))
}
