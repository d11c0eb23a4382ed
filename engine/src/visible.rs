//! The metadata as one caller may learn it: the documents of the entities they see, without
//! the fields their roles hide from them (nor the archived ones) wherever a document names
//! them. The entity API, the documents API and the OpenAPI document answer from these.

use crm_model::meta::{Layout, LayoutDoc, ListViewDoc, RelatedDoc, StageSetDoc};
use crm_model::{Catalog, DocKind, Entity, EntityDef, FieldDef, Ident};
use serde_json::Value as Json;

use crate::access::Principal;

/// An entity's definition: its live fields the caller sees, and none of its other settings
/// that name a field hidden from them.
pub fn entity_def(p: &Principal, entity: &Entity) -> EntityDef {
    let name = entity.name().as_str();
    let shows = |field: &str| p.shows(name, field);
    let mut def = entity.def.clone();
    def.fields.retain(|f| !f.archived && shows(f.name.as_str()));
    for field in &mut def.fields {
        if field.stage_set_by.as_ref().is_some_and(|by| !shows(by.field.as_str())) {
            field.stage_set_by = None;
        }
        let feeds_hidden = |r: &crm_model::meta::RollupDef| {
            let from = r.from.as_str();
            !p.shows(from, r.via.as_str()) || r.sum.as_ref().is_some_and(|sum| !p.shows(from, sum.as_str()))
        };
        if field.rollup.as_ref().is_some_and(feeds_hidden) {
            field.rollup = None;
        }
    }
    if def.title_field.as_ref().is_some_and(|f| !shows(f.as_str())) {
        def.title_field = None;
    }
    def.indexes.retain(|index| index.fields.iter().all(|f| shows(f.as_str())));
    if def.approval.as_ref().is_some_and(|a| !shows(a.field.as_str())) {
        def.approval = None;
    }
    if def.locked_by.as_ref().is_some_and(|f| !shows(f.as_str())) {
        def.locked_by = None;
    }
    def.duplicates.retain(|rule| rule.fields.iter().all(|c| shows(c.field.as_str())));
    def
}

/// Whether the caller may write a field they see: not one their roles make read-only, nor
/// one the engine keeps (system columns but the owner, auto-numbers, rollups).
pub fn writable(p: &Principal, entity: &Entity, field: &FieldDef) -> bool {
    field.name.as_str() == "owner"
        || !(field.kept_by_engine() || p.read_only(entity.name().as_str()).contains(&field.name))
}

/// The fields of an entity the caller sees but may not change.
pub fn read_only<'e>(p: &Principal, entity: &'e Entity) -> impl Iterator<Item = &'e FieldDef> {
    let name = entity.name().as_str();
    entity.live_fields().filter(move |f| p.shows(name, f.name.as_str()) && !writable(p, entity, f))
}

/// Sections keep the fields the caller sees; a section left empty by that goes.
fn layout_of(p: &Principal, entity: &str, layout: &Layout) -> Layout {
    let mut layout = layout.clone();
    layout.sections.retain_mut(|section| {
        let had = section.fields.len();
        section.fields.retain(|item| p.shows(entity, item.field.as_str()));
        had == 0 || !section.fields.is_empty()
    });
    layout
}

pub fn layout(p: &Principal, doc: &LayoutDoc) -> LayoutDoc {
    let entity = doc.entity.as_str();
    LayoutDoc {
        entity: doc.entity.clone(),
        edit: layout_of(p, entity, &doc.edit),
        view: layout_of(p, entity, &doc.view),
    }
}

/// Columns the caller sees; as when a field is archived, a list left without any shows ids.
fn columns(p: &Principal, entity: &str, columns: &mut Vec<Ident>) {
    columns.retain(|c| p.shows(entity, c.as_str()));
    if columns.is_empty() {
        columns.push(Ident::new("id").expect("a valid name"));
    }
}

pub fn list_view(p: &Principal, doc: &ListViewDoc) -> ListViewDoc {
    let entity = doc.entity.as_str();
    let mut doc = doc.clone();
    columns(p, entity, &mut doc.columns);
    doc.sort.retain(|k| p.shows(entity, k.field.as_str()));
    doc
}

/// The panels of records the caller sees, through lookups they see, with the columns they see.
pub fn related(p: &Principal, doc: &RelatedDoc) -> RelatedDoc {
    let mut doc = doc.clone();
    doc.panels.retain(|panel| p.shows(panel.source.as_str(), panel.lookup.as_str()));
    for panel in &mut doc.panels {
        let source = panel.source.as_str();
        columns(p, source, &mut panel.columns);
        panel.sort.retain(|k| p.shows(source, k.field.as_str()));
    }
    doc
}

/// A stage set without the fields it requires that are hidden from the caller on an entity
/// they see that uses it.
pub fn stage_set(catalog: &Catalog, p: &Principal, doc: &StageSetDoc) -> StageSetDoc {
    let using: Vec<&str> = catalog
        .entities()
        .filter(|e| p.sees(e.name().as_str()))
        .filter(|e| e.live_fields().any(|f| catalog.stage_sets_of(f).iter().any(|s| s.name == doc.name)))
        .map(|e| e.name().as_str())
        .collect();
    let mut doc = doc.clone();
    for stage in &mut doc.stages {
        stage.required.retain(|field| using.iter().all(|entity| p.shows(entity, field.as_str())));
    }
    doc
}

/// A metadata document of a kind other than an entity, as the caller may read it; `None` when
/// there is no such document.
pub fn document(catalog: &Catalog, p: &Principal, kind: DocKind, name: &str) -> Option<Json> {
    let docs = catalog.docs();
    let doc = match kind {
        DocKind::Layout => serde_json::to_value(layout(p, docs.layouts.get(name)?)),
        DocKind::ListView => serde_json::to_value(list_view(p, docs.lists.get(name)?)),
        DocKind::Related => serde_json::to_value(related(p, docs.related.get(name)?)),
        DocKind::StageSet => serde_json::to_value(stage_set(catalog, p, docs.stage_sets.get(name)?)),
        DocKind::Entity
        | DocKind::Role
        | DocKind::Script
        | DocKind::Report
        | DocKind::Dashboard
        | DocKind::PrintTemplate
        | DocKind::WebForm
        | DocKind::Webhook
        | DocKind::Sync => {
            return docs.get_json(kind, name);
        }
    };
    Some(doc.expect("metadata serializes"))
}
