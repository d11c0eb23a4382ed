//! The filter tree that lists, counts, saved views, reports and permission scopes all build,
//! and the list query around it. Parsing checks every field and value against the entity, so
//! the SQL layer only ever sees known columns and typed values.

use std::collections::HashSet;

use serde_json::Value as Json;

use uuid::Uuid;

use crate::catalog::{Catalog, Entity};
use crate::ident::Ident;
use crate::meta::{FieldDef, SortKey};
use crate::types::Storage;
use crate::value::{self, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Box<Cond>),
    /// A part of a data scope the engine adds; clients cannot write these.
    Scope(Box<ScopeTerm>),
}

/// The parts of a data scope that are not a comparison on the record's own columns.
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeTerm {
    /// Records owned by a user of one of these departments.
    OwnedInDepartments(Vec<Uuid>),
    /// Records owned by a public pool account.
    OwnedByPools,
    /// Records of `entity` shared with the user or one of the departments; for editing only
    /// when shared with edit access.
    SharedWith { entity: Ident, user: Uuid, departments: Vec<Uuid>, edit: bool },
    /// No record at all.
    Nothing,
}

/// One comparison on one column. `field` is a column of the entity the filter was parsed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub field: FieldDef,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    Lt(Value),
    Lte(Value),
    Gt(Value),
    Gte(Value),
    Between(Value, Value),
    In(Vec<Value>),
    /// Text containing the string, case-insensitively; for multi selects, having the option.
    Contains(Value),
    StartsWith(String),
    /// `true`: the column is empty; `false`: it has a value.
    IsNull(bool),
}

/// The name of a comparison, as a filter node's `op` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    Contains,
    StartsWith,
    IsNull,
}

impl Operator {
    pub const ALL: [Operator; 11] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Lt,
        Operator::Lte,
        Operator::Gt,
        Operator::Gte,
        Operator::Between,
        Operator::In,
        Operator::Contains,
        Operator::StartsWith,
        Operator::IsNull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Ne => "ne",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Between => "between",
            Operator::In => "in",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::IsNull => "is_null",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// Names of operators, as messages and documents list them.
fn operator_names(operators: &[Operator]) -> String {
    operators.iter().map(|op| op.name()).collect::<Vec<_>>().join(", ")
}

/// A malformed filter, sort or cursor: the client's mistake, answered with a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{path}`)")]
pub struct QueryError {
    pub path: String,
    pub message: String,
}

fn query_error(path: &str, message: impl Into<String>) -> QueryError {
    QueryError { path: path.to_owned(), message: message.into() }
}

const MAX_DEPTH: usize = 8;
const MAX_CONDITIONS: usize = 100;
const MAX_IN_VALUES: usize = 1000;
const MAX_SORT_KEYS: usize = 4;

impl Filter {
    /// Parses `{"and":[..]}`, `{"or":[..]}`, `{"not":{..}}` or
    /// `{"field":"name","op":"contains","value":"立友"}` for an entity; `hidden` fields are
    /// treated as if they did not exist.
    pub fn parse(
        catalog: &Catalog,
        entity: &Entity,
        json: &Json,
        hidden: &HashSet<Ident>,
    ) -> Result<Filter, QueryError> {
        let mut budget = MAX_CONDITIONS;
        let view = View { catalog, entity, hidden };
        parse_node(&view, json, "", 0, &mut budget)
    }

    /// Both filters must hold.
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut all) => {
                all.push(other);
                Filter::And(all)
            }
            first => Filter::And(vec![first, other]),
        }
    }
}

/// An entity as one user sees it.
struct View<'a> {
    catalog: &'a Catalog,
    entity: &'a Entity,
    hidden: &'a HashSet<Ident>,
}

/// A column a user may see.
fn visible_column<'a>(entity: &'a Entity, hidden: &HashSet<Ident>, name: &str) -> Option<&'a FieldDef> {
    entity.column(name).filter(|f| !hidden.contains(&f.name))
}

fn parse_node(
    view: &View<'_>,
    json: &Json,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Filter, QueryError> {
    if depth > MAX_DEPTH {
        return Err(query_error(path, format!("filters nest at most {MAX_DEPTH} deep")));
    }
    let Some(node) = json.as_object() else {
        return Err(query_error(path, "a filter node is an object"));
    };
    let list = |key: &str, items: &Json, budget: &mut usize| -> Result<Vec<Filter>, QueryError> {
        let items = items.as_array().ok_or_else(|| query_error(path, format!("`{key}` takes a list")))?;
        if items.is_empty() {
            return Err(query_error(path, format!("`{key}` needs at least one filter")));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_node(view, item, &format!("{path}/{key}/{i}"), depth + 1, budget))
            .collect()
    };
    if node.len() == 1 {
        if let Some(items) = node.get("and") {
            return Ok(Filter::And(list("and", items, budget)?));
        }
        if let Some(items) = node.get("or") {
            return Ok(Filter::Or(list("or", items, budget)?));
        }
        if let Some(inner) = node.get("not") {
            let inner = parse_node(view, inner, &format!("{path}/not"), depth + 1, budget)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
    }
    if let Some(key) = node.keys().find(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
        return Err(query_error(path, format!("unknown key `{key}`; a node is and/or/not or field/op/value")));
    }
    if *budget == 0 {
        return Err(query_error(path, format!("at most {MAX_CONDITIONS} conditions")));
    }
    *budget -= 1;
    let name = node.get("field").and_then(Json::as_str).ok_or_else(|| query_error(path, "`field` is missing"))?;
    let entity = view.entity;
    let field = visible_column(entity, view.hidden, name)
        .ok_or_else(|| query_error(&format!("{path}/field"), format!("no field `{name}` on `{}`", entity.name())))?;
    let op = node.get("op").and_then(Json::as_str).ok_or_else(|| query_error(path, "`op` is missing"))?;
    let value = node.get("value").unwrap_or(&Json::Null);
    let op = parse_op(view.catalog, field, op, value, &format!("{path}/value"))?;
    Ok(Filter::Cond(Box::new(Cond { field: field.clone(), op })))
}

fn parse_op(catalog: &Catalog, field: &FieldDef, op: &str, value: &Json, path: &str) -> Result<Op, QueryError> {
    let Some(operator) = Operator::parse(op) else {
        return Err(query_error(path, format!("unknown op `{op}`; use {}", operator_names(&Operator::ALL))));
    };
    let spec = field.field_type.spec();
    if !spec.operators.contains(&operator) {
        return Err(query_error(
            path,
            format!("`{op}` does not apply to a {} field; use {}", spec.name, operator_names(spec.operators)),
        ));
    }
    // A list value (a multi select) has options: `in` and `contains` ask for one of them.
    let list = field.storage() == Storage::List;
    let one = |json: &Json| operand(catalog, field, json, path);
    let parsed = match operator {
        Operator::Eq => Op::Eq(one(value)?),
        Operator::Ne => Op::Ne(one(value)?),
        Operator::Lt => Op::Lt(one(value)?),
        Operator::Lte => Op::Lte(one(value)?),
        Operator::Gt => Op::Gt(one(value)?),
        Operator::Gte => Op::Gte(one(value)?),
        Operator::Between => match value.as_array().map(Vec::as_slice) {
            Some([low, high]) => Op::Between(one(low)?, one(high)?),
            _ => return Err(query_error(path, "`between` takes [low, high]")),
        },
        // On a multi select, `in` means having any of the options: one list value.
        Operator::In if list => Op::In(vec![one(value)?]),
        Operator::In => {
            let items = value.as_array().ok_or_else(|| query_error(path, "`in` takes a list"))?;
            if items.is_empty() || items.len() > MAX_IN_VALUES {
                return Err(query_error(path, format!("`in` takes 1 to {MAX_IN_VALUES} values")));
            }
            Op::In(items.iter().map(one).collect::<Result<_, _>>()?)
        }
        Operator::Contains if list => Op::Contains(one(&Json::Array(vec![value.clone()]))?),
        Operator::Contains | Operator::StartsWith => {
            let text = value.as_str().filter(|s| !s.is_empty() && s.chars().count() <= 255 && !s.contains('\0'));
            let text = text.ok_or_else(|| query_error(path, "takes a text of 1 to 255 characters"))?;
            if operator == Operator::Contains {
                Op::Contains(Value::Text(text.to_owned()))
            } else {
                Op::StartsWith(text.to_owned())
            }
        }
        Operator::IsNull => {
            Op::IsNull(value.as_bool().ok_or_else(|| query_error(path, "`is_null` takes true or false"))?)
        }
    };
    Ok(parsed)
}

/// A value to compare with: the field's own check, except that generated values (auto
/// numbers) may be searched for, and an empty value must be asked for with `is_null`.
fn operand(catalog: &Catalog, field: &FieldDef, json: &Json, path: &str) -> Result<Value, QueryError> {
    let parsed = if field.field_type.spec().generated {
        json.as_str()
            .map(|s| Value::Text(s.to_owned()))
            .ok_or_else(|| value::Problem::new("invalid_type", "expected text"))
    } else {
        let stages = field.stage_set.as_ref().and_then(|s| catalog.stage_set(s.as_str()));
        value::parse(field, json, stages)
    };
    match parsed {
        Ok(Value::Null) => Err(query_error(path, "an empty value; use `is_null`")),
        Ok(v) => Ok(v),
        Err(problem) => Err(query_error(path, problem.message)),
    }
}

/// What a list asks for: which rows, in which order, how many, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// The requested order; the store adds `id` to make it total.
    pub sort: Vec<SortKey>,
    pub limit: u32,
    /// The sort values and then the id of the last row of the previous page.
    pub after: Option<Vec<Value>>,
    /// The recycle bin instead of the live rows.
    pub deleted: bool,
}

/// Checks sort keys against an entity: they exist, are not hidden and can be sorted.
pub fn check_sort(entity: &Entity, sort: &[SortKey], hidden: &HashSet<Ident>) -> Result<(), QueryError> {
    if sort.len() > MAX_SORT_KEYS {
        return Err(query_error("sort", format!("at most {MAX_SORT_KEYS} sort keys")));
    }
    for key in sort {
        match visible_column(entity, hidden, key.field.as_str()) {
            Some(f) if f.field_type.is_sortable() => {}
            Some(_) => return Err(query_error("sort", format!("`{}` cannot be sorted", key.field))),
            None => return Err(query_error("sort", format!("no field `{}` on `{}`", key.field, entity.name()))),
        }
    }
    Ok(())
}

/// Parses `-annual_revenue,name`.
pub fn parse_sort(entity: &Entity, text: &str, hidden: &HashSet<Ident>) -> Result<Vec<SortKey>, QueryError> {
    let keys = text
        .split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| SortKey::parse(k.trim()).map_err(|e| query_error("sort", format!("`{k}`: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    check_sort(entity, &keys, hidden)?;
    Ok(keys)
}

/// The values a cursor carries, back into typed values: the sort keys' and then the id.
pub fn cursor_values(entity: &Entity, sort: &[SortKey], items: &[Json]) -> Result<Vec<Value>, QueryError> {
    let invalid = || query_error("cursor", "this cursor does not belong to this list; start again without it");
    if items.len() != sort.len() + 1 {
        return Err(invalid());
    }
    let fields = sort.iter().map(|k| k.field.as_str()).chain(["id"]);
    fields
        .zip(items)
        .map(|(name, json)| {
            let field = entity.column(name).ok_or_else(invalid)?;
            value::decode(field, json).ok_or_else(invalid)
        })
        .collect()
}
