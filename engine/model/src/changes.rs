//! Edits an administrator makes to the metadata, as functions from the current documents to
//! the next ones. The result still has to pass [`crate::Catalog::build`] and [`crate::plan::diff`].

use serde_json::Value as Json;

use crate::catalog::{Docs, MetaError};
use crate::ident::Ident;
use crate::meta::{DocKind, EntityDef, FieldDef};
use crate::schema;

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeError {
    /// The entity or field named in the request does not exist.
    NotFound(String),
    Invalid(Vec<MetaError>),
}

fn invalid(kind: DocKind, name: &str, path: impl Into<String>, message: impl Into<String>) -> ChangeError {
    ChangeError::Invalid(vec![MetaError::new(kind, name, path, message)])
}

fn entity_mut<'a>(docs: &'a mut Docs, entity: &str) -> Result<&'a mut EntityDef, ChangeError> {
    docs.entities.get_mut(entity).ok_or_else(|| ChangeError::NotFound(format!("no entity `{entity}`")))
}

/// Parses a field sent on its own, reporting paths inside it.
fn parse_field(entity: &str, body: &Json) -> Result<FieldDef, ChangeError> {
    schema::check_field(body).map_err(|errors| {
        ChangeError::Invalid(
            errors.into_iter().map(|(path, message)| MetaError::new(DocKind::Entity, entity, path, message)).collect(),
        )
    })?;
    serde_json::from_value(body.clone()).map_err(|e| invalid(DocKind::Entity, entity, "", e.to_string()))
}

/// A new entity, with a default layout, list view and (no) related panels.
pub fn create_entity(docs: &Docs, body: &Json) -> Result<Docs, ChangeError> {
    let mut next = docs.clone();
    let name = body.get("name").and_then(Json::as_str).unwrap_or("");
    if docs.entities.contains_key(name) {
        return Err(invalid(DocKind::Entity, name, "/name", format!("entity `{name}` already exists")));
    }
    if body.get("system").and_then(Json::as_bool) == Some(true) {
        return Err(invalid(DocKind::Entity, name, "/system", "only the engine creates system entities"));
    }
    next.insert_json(DocKind::Entity, body).map_err(ChangeError::Invalid)?;
    next.fill_defaults();
    Ok(next)
}

/// A new field, appended to the edit and view layouts when `place_on_layouts`.
pub fn add_field(docs: &Docs, entity: &str, body: &Json, place_on_layouts: bool) -> Result<Docs, ChangeError> {
    let mut next = docs.clone();
    let field = parse_field(entity, body)?;
    let def = entity_mut(&mut next, entity)?;
    if let Some(existing) = def.fields.iter().find(|f| f.name == field.name) {
        let hint = if existing.archived { " (archived: restore it with archived=false)" } else { "" };
        return Err(invalid(DocKind::Entity, entity, "/name", format!("field `{}` already exists{hint}", field.name)));
    }
    let name = field.name.clone();
    def.fields.push(field);
    if place_on_layouts && let Some(layout) = next.layouts.get_mut(entity) {
        layout.edit.append(name.clone());
        layout.view.append(name);
    }
    Ok(next)
}

/// Changes a field's labels, options and flags (a JSON merge patch); its name never changes,
/// and its type only in ways [`crate::plan::diff`] accepts.
pub fn patch_field(docs: &Docs, entity: &str, field: &str, patch: &Json) -> Result<Docs, ChangeError> {
    let mut next = docs.clone();
    let def = entity_mut(&mut next, entity)?;
    let position = def
        .fields
        .iter()
        .position(|f| f.name.as_str() == field)
        .ok_or_else(|| ChangeError::NotFound(format!("no field `{field}` on `{entity}`")))?;
    let Some(changes) = patch.as_object() else {
        return Err(invalid(DocKind::Entity, entity, "", "a patch is a JSON object"));
    };
    if changes.get("name").is_some_and(|n| n.as_str() != Some(field)) {
        return Err(invalid(DocKind::Entity, entity, "/name", "a field cannot be renamed; add a new field"));
    }
    let mut merged = serde_json::to_value(&def.fields[position]).expect("metadata serializes");
    let object = merged.as_object_mut().expect("a field is an object");
    for (key, value) in changes {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    let updated = parse_field(entity, &merged)?;
    let restored = def.fields[position].archived && !updated.archived;
    if updated.archived && !def.fields[position].archived {
        return archive_field(docs, entity, field);
    }
    def.fields[position] = updated;
    if restored && let Some(layout) = next.layouts.get_mut(entity) {
        let name = Ident::new(field).expect("existing field names are valid");
        layout.view.append(name);
    }
    Ok(next)
}

/// Replaces an entity's duplicate rules (查重规则) with `rules`, a JSON array of them.
pub fn set_duplicates(docs: &Docs, entity: &str, rules: &Json) -> Result<Docs, ChangeError> {
    let mut next = docs.clone();
    let def = entity_mut(&mut next, entity)?;
    let mut whole = serde_json::to_value(&*def).expect("metadata serializes");
    whole["duplicates"] = rules.clone();
    schema::check(DocKind::Entity, &whole).map_err(|errors| {
        ChangeError::Invalid(
            errors.into_iter().map(|(path, message)| MetaError::new(DocKind::Entity, entity, path, message)).collect(),
        )
    })?;
    *def = serde_json::from_value(whole).map_err(|e| invalid(DocKind::Entity, entity, "/duplicates", e.to_string()))?;
    Ok(next)
}

/// Hides a field: its column and data stay; it leaves every layout, list and panel.
pub fn archive_field(docs: &Docs, entity: &str, field: &str) -> Result<Docs, ChangeError> {
    let mut next = docs.clone();
    let def = entity_mut(&mut next, entity)?;
    if def.system && def.fields.iter().any(|f| f.name.as_str() == field && f.required) {
        return Err(invalid(DocKind::Entity, entity, "", format!("`{field}` is required by the engine")));
    }
    let is_title = def.title_field.as_ref().map_or(field == "name", |t| t.as_str() == field);
    if is_title {
        return Err(invalid(
            DocKind::Entity,
            entity,
            "/title_field",
            format!("`{field}` names the records; choose another title field first"),
        ));
    }
    let target = def
        .fields
        .iter_mut()
        .find(|f| f.name.as_str() == field && !f.archived)
        .ok_or_else(|| ChangeError::NotFound(format!("no field `{field}` on `{entity}`")))?;
    target.archived = true;
    if let Some(layout) = next.layouts.get_mut(entity) {
        layout.edit.remove(field);
        layout.view.remove(field);
    }
    if let Some(list) = next.lists.get_mut(entity) {
        list.columns.retain(|c| c.as_str() != field);
        list.sort.retain(|k| k.field.as_str() != field);
        if list.columns.is_empty() {
            list.columns.push(Ident::new("id").expect("valid"));
        }
    }
    for related in next.related.values_mut() {
        related.panels.retain(|p| !(p.source.as_str() == entity && p.lookup.as_str() == field));
        for panel in related.panels.iter_mut().filter(|p| p.source.as_str() == entity) {
            panel.columns.retain(|c| c.as_str() != field);
            panel.sort.retain(|k| k.field.as_str() != field);
            if panel.columns.is_empty() {
                panel.columns.push(Ident::new("id").expect("valid"));
            }
        }
    }
    Ok(next)
}
