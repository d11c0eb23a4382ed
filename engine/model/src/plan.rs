//! Change plans: the difference between two sets of metadata as the steps that apply it —
//! the table changes and the documents to store — refusing what would lose data.

use std::fmt;

use serde_json::Value as Json;

use crate::catalog::{Docs, MetaError};
use crate::ident::Ident;
use crate::meta::{DocKind, FieldDef};
use crate::types::{FieldType, Storage};

/// A change to the tables.
#[derive(Debug, Clone, PartialEq)]
pub enum TableStep {
    CreateTable {
        entity: Ident,
    },
    AddColumn {
        entity: Ident,
        field: Box<FieldDef>,
    },
    /// An index on one field (`unique` or not) or on several (never unique).
    CreateIndex {
        entity: Ident,
        fields: Vec<Ident>,
        unique: bool,
    },
    DropIndex {
        entity: Ident,
        fields: Vec<Ident>,
        unique: bool,
    },
    /// An exact number gains digits after the point: stored values are multiplied.
    Rescale {
        entity: Ident,
        field: Ident,
        from: u8,
        to: u8,
    },
    /// A rollup is new or totals something else: every record's total is computed now,
    /// from then on the engine keeps it. `replaces`: the field held values entered by hand,
    /// which the totals replace; each record's history keeps the value it had.
    FillRollup {
        entity: Ident,
        field: Ident,
        replaces: bool,
    },
}

/// A document written by the plan: created, changed, (for a field) archived, or removed (a
/// print template), when `after` is null.
#[derive(Debug, Clone, PartialEq)]
pub struct DocStep {
    pub kind: DocKind,
    pub name: Ident,
    pub before: Option<Json>,
    pub after: Json,
}

impl DocStep {
    pub fn removes(&self) -> bool {
        self.after.is_null()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub tables: Vec<TableStep>,
    pub docs: Vec<DocStep>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.docs.is_empty()
    }

    /// One line per step, for people to read before they apply it.
    pub fn describe(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(ToString::to_string)
            .chain(self.docs.iter().map(|d| {
                let verb = match (&d.before, d.removes()) {
                    (_, true) => "remove",
                    (Some(_), false) => "update",
                    (None, false) => "create",
                };
                format!("{verb} {} `{}`", d.kind.as_str(), d.name)
            }))
            .collect()
    }
}

impl fmt::Display for TableStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableStep::CreateTable { entity } => write!(f, "create table `{entity}`"),
            TableStep::AddColumn { entity, field } => {
                write!(f, "add column `{entity}.{}` ({:?})", field.name, field.field_type)
            }
            TableStep::CreateIndex { entity, fields, unique } => {
                write!(f, "create {}index on `{entity}.{}`", if *unique { "unique " } else { "" }, join(fields))
            }
            TableStep::DropIndex { entity, fields, unique } => {
                write!(f, "drop {}index on `{entity}.{}`", if *unique { "unique " } else { "" }, join(fields))
            }
            TableStep::Rescale { entity, field, from, to } => {
                write!(f, "rescale `{entity}.{field}` from {from} to {to} decimals")
            }
            TableStep::FillRollup { entity, field, replaces: false } => {
                write!(f, "compute the rollup `{entity}.{field}`")
            }
            TableStep::FillRollup { entity, field, replaces: true } => write!(
                f,
                "compute the rollup `{entity}.{field}`, replacing the values entered by hand (each record's history keeps its value)"
            ),
        }
    }
}

fn join(fields: &[Ident]) -> String {
    fields.iter().map(Ident::as_str).collect::<Vec<_>>().join(", ")
}

/// The steps from `old` to `new`. Both must be complete catalogs (checked by
/// [`crate::Catalog::build`]); this only refuses transitions that would lose data.
pub fn diff(old: &Docs, new: &Docs) -> Result<Plan, Vec<MetaError>> {
    let mut plan = Plan::default();
    let mut errors = Vec::new();
    for name in old.entities.keys() {
        if !new.entities.contains_key(name) {
            errors.push(MetaError::new(DocKind::Entity, name.as_str(), "", "entities cannot be removed"));
        }
    }
    let mut fills = Vec::new();
    for (name, entity) in &new.entities {
        let Some(before) = old.entities.get(name) else {
            plan.tables.push(TableStep::CreateTable { entity: name.clone() });
            for field in &entity.fields {
                push_indexes(&mut plan, name, None, field);
            }
            for index in &entity.indexes {
                plan.tables.push(TableStep::CreateIndex {
                    entity: name.clone(),
                    fields: index.fields.clone(),
                    unique: false,
                });
            }
            continue;
        };
        for index in before.indexes.iter().filter(|i| !entity.indexes.contains(i)) {
            plan.tables.push(TableStep::DropIndex {
                entity: name.clone(),
                fields: index.fields.clone(),
                unique: false,
            });
        }
        for index in entity.indexes.iter().filter(|i| !before.indexes.contains(i)) {
            plan.tables.push(TableStep::CreateIndex {
                entity: name.clone(),
                fields: index.fields.clone(),
                unique: false,
            });
        }
        for (i, field) in before.fields.iter().enumerate() {
            if !entity.fields.iter().any(|f| f.name == field.name) {
                errors.push(MetaError::new(
                    DocKind::Entity,
                    name.as_str(),
                    format!("/fields/{i}"),
                    format!("field `{}` cannot be removed; archive it", field.name),
                ));
            }
        }
        for (i, field) in entity.fields.iter().enumerate() {
            match before.fields.iter().find(|f| f.name == field.name) {
                None => {
                    plan.tables.push(TableStep::AddColumn { entity: name.clone(), field: Box::new(field.clone()) });
                    push_indexes(&mut plan, name, None, field);
                }
                Some(old_field) => match type_change(old_field, field) {
                    Ok(rescale) => {
                        if let Some((from, to)) = rescale {
                            plan.tables.push(TableStep::Rescale {
                                entity: name.clone(),
                                field: field.name.clone(),
                                from,
                                to,
                            });
                        }
                        push_indexes(&mut plan, name, Some(old_field), field);
                    }
                    Err(message) => {
                        errors.push(MetaError::new(
                            DocKind::Entity,
                            name.as_str(),
                            format!("/fields/{i}/type"),
                            message,
                        ));
                    }
                },
            }
        }
        // An archived entity's totals sleep; one back from the archive has them computed again.
        let live = |f: &&FieldDef| f.rollup.is_some() && !f.archived && !entity.archived;
        for field in entity.fields.iter().filter(live) {
            let old_field = before.fields.iter().find(|f| f.name == field.name);
            if old_field.is_some_and(|f| f.rollup == field.rollup && !f.archived) && !before.archived {
                continue;
            }
            fills.push(TableStep::FillRollup {
                entity: name.clone(),
                field: field.name.clone(),
                replaces: old_field.is_some_and(|f| f.rollup.is_none()),
            });
        }
    }
    // Totals are computed once every table and column exists: a rollup may total records of
    // an entity created by the same change.
    plan.tables.extend(fills);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut before: std::collections::BTreeMap<(DocKind, Ident), Json> =
        old.iter_json().into_iter().map(|(kind, name, json)| ((kind, name), json)).collect();
    for (kind, name, after) in new.iter_json() {
        let previous = before.remove(&(kind, name.clone()));
        if previous.as_ref() != Some(&after) {
            plan.docs.push(DocStep { kind, name, before: previous, after });
        }
    }
    // What is left was removed: entities never are (refused above), the documents of their
    // screens go with them, so in practice these are print templates.
    for ((kind, name), previous) in before {
        plan.docs.push(DocStep { kind, name, before: Some(previous), after: Json::Null });
    }
    Ok(plan)
}

/// Index changes for a field that is new (`old` is `None`) or changed.
fn push_indexes(plan: &mut Plan, entity: &Ident, old: Option<&FieldDef>, new: &FieldDef) {
    let had_unique = old.is_some_and(|f| f.unique);
    let had_index = old.is_some_and(FieldDef::wants_index);
    if had_unique && !new.unique {
        plan.tables.push(TableStep::DropIndex { entity: entity.clone(), fields: vec![new.name.clone()], unique: true });
    }
    if had_index && !new.wants_index() {
        plan.tables.push(TableStep::DropIndex {
            entity: entity.clone(),
            fields: vec![new.name.clone()],
            unique: false,
        });
    }
    if new.unique && !had_unique {
        plan.tables.push(TableStep::CreateIndex {
            entity: entity.clone(),
            fields: vec![new.name.clone()],
            unique: true,
        });
    }
    if new.wants_index() && !had_index {
        plan.tables.push(TableStep::CreateIndex {
            entity: entity.clone(),
            fields: vec![new.name.clone()],
            unique: false,
        });
    }
}

/// Whether a field may change from one definition to another without losing data; `Some`
/// when stored numbers must be rescaled.
fn type_change(old: &FieldDef, new: &FieldDef) -> Result<Option<(u8, u8)>, String> {
    use FieldType as T;
    if old.reference_target() != new.reference_target() {
        return Err("the target of a lookup cannot change".into());
    }
    if old.field_type == T::Stage && old.stage_set != new.stage_set {
        return Err("the stage set of a stage field cannot change".into());
    }
    if old.field_type == new.field_type && old.storage() == new.storage() {
        return Ok(None);
    }
    let refused = || {
        Err(format!(
            "changing a {:?} field to {:?} could lose data; add a new field instead",
            old.field_type, new.field_type
        ))
    };
    match (old.storage(), new.storage()) {
        // Any text widens to plain or long text: every stored value stays valid.
        (Storage::Text, Storage::Text) if old.field_type.is_text_like() || old.field_type == T::Select => {
            if matches!(new.field_type, T::Text | T::LongText) { Ok(None) } else { refused() }
        }
        (Storage::Integer, Storage::Fixed(to)) => Ok(Some((0, to))),
        (Storage::Fixed(from), Storage::Fixed(to)) if to >= from => Ok(if to > from { Some((from, to)) } else { None }),
        _ => refused(),
    }
}
