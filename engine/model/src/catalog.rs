//! The catalog: every metadata document, checked against the others, with the lookups the
//! engine needs on each request. A catalog is immutable; a change builds a new one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::dashboard::DashboardDoc;
use crate::filter::Filter;
use crate::ident::Ident;
use crate::meta::{
    DocKind, EntityDef, FieldDef, Labels, Layout, LayoutDoc, LayoutItem, ListViewDoc, PrintTemplateDoc, RelatedDoc,
    ScriptDoc, ScriptEvent, Section, SortKey, StageSetDoc,
};
use crate::meta::{RollupDef, SyncDirection, SyncDoc, WebFormDoc, WebhookDoc};
use crate::report::ReportDoc;
use crate::roles::RoleDoc;
use crate::types::{FieldType, Reference, Storage};
use crate::{USER_ENTITY, schema, value};

/// A problem with a metadata document, located by the document and a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetaError {
    /// `kind:name` of the document, e.g. `entity:customer`.
    pub doc: String,
    /// JSON pointer into the document, e.g. `/fields/3/target`.
    pub path: String,
    pub message: String,
}

impl MetaError {
    pub fn new(kind: DocKind, name: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { doc: format!("{}:{name}", kind.as_str()), path: path.into(), message: message.into() }
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at `{}`: {}", self.doc, if self.path.is_empty() { "/" } else { &self.path }, self.message)
    }
}

/// The system columns every entity table has, in table order.
pub const SYSTEM_COLUMNS: [&str; 8] =
    ["id", "owner", "created_by", "created_at", "updated_by", "updated_at", "version", "deleted_at"];

pub fn is_system_column(name: &str) -> bool {
    SYSTEM_COLUMNS.contains(&name)
}

fn system_columns(entity: &Ident) -> Vec<FieldDef> {
    let column = |name: &'static str, field_type, zh: &str, en: &str| {
        let mut field = FieldDef::new(Ident::system(name), field_type, Labels::new(zh, en));
        if name == "id" {
            field.target = Some(entity.clone());
        }
        field
    };
    vec![
        column("id", FieldType::Lookup, "编号", "ID"),
        column("owner", FieldType::User, "所有者", "Owner"),
        column("created_by", FieldType::User, "创建人", "Created by"),
        column("created_at", FieldType::Datetime, "创建时间", "Created at"),
        column("updated_by", FieldType::User, "修改人", "Updated by"),
        column("updated_at", FieldType::Datetime, "修改时间", "Updated at"),
        column("version", FieldType::Integer, "版本", "Version"),
        column("deleted_at", FieldType::Datetime, "删除时间", "Deleted at"),
    ]
}

/// All metadata documents by kind and name: what is stored, exported and installed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Docs {
    pub stage_sets: BTreeMap<Ident, StageSetDoc>,
    pub entities: BTreeMap<Ident, EntityDef>,
    pub layouts: BTreeMap<Ident, LayoutDoc>,
    pub lists: BTreeMap<Ident, ListViewDoc>,
    pub related: BTreeMap<Ident, RelatedDoc>,
    pub roles: BTreeMap<Ident, RoleDoc>,
    pub scripts: BTreeMap<Ident, ScriptDoc>,
    pub reports: BTreeMap<Ident, ReportDoc>,
    pub dashboards: BTreeMap<Ident, DashboardDoc>,
    pub print_templates: BTreeMap<Ident, PrintTemplateDoc>,
    pub web_forms: BTreeMap<Ident, WebFormDoc>,
    pub webhooks: BTreeMap<Ident, WebhookDoc>,
    pub syncs: BTreeMap<Ident, SyncDoc>,
}

impl Docs {
    /// Checks a document against its JSON Schema, parses it and puts it in place of the
    /// document of the same kind and name.
    pub fn insert_json(&mut self, kind: DocKind, json: &Json) -> Result<Ident, Vec<MetaError>> {
        let hint = json.get("name").or_else(|| json.get("entity")).and_then(Json::as_str).unwrap_or("?");
        schema::check(kind, json).map_err(|errors| {
            errors.into_iter().map(|(path, message)| MetaError::new(kind, hint, path, message)).collect::<Vec<_>>()
        })?;
        let parse_error = |e: serde_json::Error| vec![MetaError::new(kind, hint, "", e.to_string())];
        let mut body = json.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("$schema");
        }
        let name = match kind {
            DocKind::StageSet => {
                let doc: StageSetDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.stage_sets.insert(name.clone(), doc);
                name
            }
            DocKind::Entity => {
                let doc: EntityDef = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.entities.insert(name.clone(), doc);
                name
            }
            DocKind::Layout => {
                let doc: LayoutDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.entity.clone();
                self.layouts.insert(name.clone(), doc);
                name
            }
            DocKind::ListView => {
                let doc: ListViewDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.entity.clone();
                self.lists.insert(name.clone(), doc);
                name
            }
            DocKind::Related => {
                let doc: RelatedDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.entity.clone();
                self.related.insert(name.clone(), doc);
                name
            }
            DocKind::Role => {
                let doc: RoleDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.roles.insert(name.clone(), doc);
                name
            }
            DocKind::Script => {
                let doc: ScriptDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.scripts.insert(name.clone(), doc);
                name
            }
            DocKind::Report => {
                let doc: ReportDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.reports.insert(name.clone(), doc);
                name
            }
            DocKind::Dashboard => {
                let doc: DashboardDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.dashboards.insert(name.clone(), doc);
                name
            }
            DocKind::PrintTemplate => {
                let doc: PrintTemplateDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.print_templates.insert(name.clone(), doc);
                name
            }
            DocKind::WebForm => {
                let doc: WebFormDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.web_forms.insert(name.clone(), doc);
                name
            }
            DocKind::Webhook => {
                let doc: WebhookDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.webhooks.insert(name.clone(), doc);
                name
            }
            DocKind::Sync => {
                let doc: SyncDoc = serde_json::from_value(body).map_err(parse_error)?;
                let name = doc.name.clone();
                self.syncs.insert(name.clone(), doc);
                name
            }
        };
        Ok(name)
    }

    /// Reads the files of a package: `(path relative to the package folder, contents)`.
    /// Returns the manifest (`package.json`) and the documents; files outside the kind
    /// folders are ignored. A document's file must be named after it.
    pub fn from_package_files(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Json, Docs), Vec<MetaError>> {
        let mut docs = Docs::default();
        let mut manifest = None;
        let mut errors = Vec::new();
        let mut files: Vec<(String, String)> = files.into_iter().collect();
        files.sort();
        // A rule's source may sit beside its document as `scripts/<name>.rhai`.
        let sources: HashMap<&str, &str> = files
            .iter()
            .filter_map(|(path, text)| {
                let stem = path.strip_prefix("scripts/")?.strip_suffix(".rhai")?;
                Some((stem, text.as_str()))
            })
            .collect();
        for kind in DocKind::ALL {
            for (path, text) in &files {
                let Some((folder, file)) = path.split_once('/') else { continue };
                let Some(stem) = file.strip_suffix(".json") else { continue };
                if folder != kind.folder() {
                    continue;
                }
                let mut json: Json = match serde_json::from_str(text) {
                    Ok(json) => json,
                    Err(e) => {
                        errors.push(MetaError::new(kind, stem, "", format!("{path}: {e}")));
                        continue;
                    }
                };
                if kind == DocKind::Script
                    && let (Some(source), Some(doc)) = (sources.get(stem), json.as_object_mut())
                    && doc.get("source").and_then(Json::as_str).is_none_or(|s| s.trim().is_empty())
                {
                    doc.insert("source".into(), Json::String((*source).to_owned()));
                }
                match docs.insert_json(kind, &json) {
                    Ok(name) if name.as_str() != stem => {
                        errors.push(MetaError::new(
                            kind,
                            stem,
                            "",
                            format!("{path} holds `{name}`; name the file after its document"),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => errors.extend(e),
                }
            }
        }
        if let Some((_, text)) = files.iter().find(|(path, _)| path == "package.json") {
            match serde_json::from_str::<Json>(text) {
                Ok(json) => match schema::check_package(&json) {
                    Ok(()) => manifest = Some(json),
                    Err(e) => errors.extend(e.into_iter().map(|(path, message)| MetaError {
                        doc: "package".into(),
                        path,
                        message,
                    })),
                },
                Err(e) => errors.push(MetaError { doc: "package".into(), path: String::new(), message: e.to_string() }),
            }
        } else {
            errors.push(MetaError {
                doc: "package".into(),
                path: String::new(),
                message: "package.json is missing".into(),
            });
        }
        if errors.is_empty() { Ok((manifest.unwrap_or_default(), docs)) } else { Err(errors) }
    }

    /// Every document as `(kind, name, json)`, in dependency order.
    pub fn iter_json(&self) -> Vec<(DocKind, Ident, Json)> {
        fn all<T: serde::Serialize>(
            kind: DocKind,
            map: &BTreeMap<Ident, T>,
        ) -> impl Iterator<Item = (DocKind, Ident, Json)> + '_ {
            map.iter()
                .map(move |(name, doc)| (kind, name.clone(), serde_json::to_value(doc).expect("metadata serializes")))
        }
        all(DocKind::StageSet, &self.stage_sets)
            .chain(all(DocKind::Entity, &self.entities))
            .chain(all(DocKind::Layout, &self.layouts))
            .chain(all(DocKind::ListView, &self.lists))
            .chain(all(DocKind::Related, &self.related))
            .chain(all(DocKind::Role, &self.roles))
            .chain(all(DocKind::Script, &self.scripts))
            .chain(all(DocKind::Report, &self.reports))
            .chain(all(DocKind::Dashboard, &self.dashboards))
            .chain(all(DocKind::PrintTemplate, &self.print_templates))
            .chain(all(DocKind::WebForm, &self.web_forms))
            .chain(all(DocKind::Webhook, &self.webhooks))
            .chain(all(DocKind::Sync, &self.syncs))
            .collect()
    }

    /// One document as JSON, if it exists.
    pub fn get_json(&self, kind: DocKind, name: &str) -> Option<Json> {
        fn one<T: serde::Serialize>(map: &BTreeMap<Ident, T>, name: &str) -> Option<Json> {
            map.get(name).map(|doc| serde_json::to_value(doc).expect("metadata serializes"))
        }
        match kind {
            DocKind::StageSet => one(&self.stage_sets, name),
            DocKind::Entity => one(&self.entities, name),
            DocKind::Layout => one(&self.layouts, name),
            DocKind::ListView => one(&self.lists, name),
            DocKind::Related => one(&self.related, name),
            DocKind::Role => one(&self.roles, name),
            DocKind::Script => one(&self.scripts, name),
            DocKind::Report => one(&self.reports, name),
            DocKind::Dashboard => one(&self.dashboards, name),
            DocKind::PrintTemplate => one(&self.print_templates, name),
            DocKind::WebForm => one(&self.web_forms, name),
            DocKind::Webhook => one(&self.webhooks, name),
            DocKind::Sync => one(&self.syncs, name),
        }
    }

    /// Gives every entity that has none a layout (all fields in one section), a list view
    /// (its first fields, newest first) and an empty set of related panels.
    pub fn fill_defaults(&mut self) {
        for (name, entity) in &self.entities {
            let live: Vec<&FieldDef> = entity.fields.iter().filter(|f| !f.archived).collect();
            self.layouts.entry(name.clone()).or_insert_with(|| {
                let section = Section {
                    name: Ident::system("main"),
                    label: Labels::new("基本信息", "Details"),
                    columns: 2,
                    fields: live.iter().map(|f| LayoutItem::plain(f.name.clone())).collect(),
                };
                let layout = Layout { sections: vec![section] };
                LayoutDoc { entity: name.clone(), edit: layout.clone(), view: layout }
            });
            self.lists.entry(name.clone()).or_insert_with(|| {
                let mut columns: Vec<Ident> =
                    live.iter().filter(|f| f.field_type.is_sortable()).take(6).map(|f| f.name.clone()).collect();
                // A list shows at least one column, as its schema says: an entity created
                // without fields yet lists its ids.
                if columns.is_empty() {
                    columns.push(Ident::system("id"));
                }
                ListViewDoc {
                    entity: name.clone(),
                    columns,
                    sort: vec![SortKey { field: Ident::system("created_at"), descending: true }],
                }
            });
            self.related.entry(name.clone()).or_insert_with(|| RelatedDoc { entity: name.clone(), panels: Vec::new() });
        }
    }
}

/// One entity with everything needed to serve it.
#[derive(Debug)]
pub struct Entity {
    pub def: EntityDef,
    pub layout: LayoutDoc,
    pub list: ListViewDoc,
    pub related: RelatedDoc,
    /// System columns, then every field (archived ones too): the columns of the table.
    columns: Vec<FieldDef>,
    by_name: HashMap<Ident, usize>,
}

impl Entity {
    pub fn name(&self) -> &Ident {
        &self.def.name
    }

    /// Every column of the table, system columns first, archived fields included.
    pub fn columns(&self) -> &[FieldDef] {
        &self.columns
    }

    /// The position of a column in [`Entity::columns`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// A system column or a field that is not archived: what the API reads and filters.
    pub fn column(&self, name: &str) -> Option<&FieldDef> {
        self.column_index(name).map(|i| &self.columns[i]).filter(|f| !f.archived)
    }

    /// A field (not a system column) that is not archived: what the API writes.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.column(name).filter(|f| !is_system_column(f.name.as_str()))
    }

    /// Fields that are not archived, in declaration order.
    pub fn live_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.def.fields.iter().filter(|f| !f.archived)
    }

    pub fn title_field(&self) -> Option<&FieldDef> {
        match &self.def.title_field {
            Some(name) => self.field(name.as_str()),
            None => self.field("name").or_else(|| self.live_fields().find(|f| f.field_type == FieldType::Text)),
        }
    }

    /// A stored row's title (its name), as text, when it has one.
    pub fn title_of(&self, values: &[crate::Value]) -> Option<String> {
        let i = self.column_index(self.title_field()?.name.as_str())?;
        match value::to_json(&self.columns()[i], values.get(i)?) {
            Json::String(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }

    pub fn panel(&self, name: &str) -> Option<&crate::meta::Panel> {
        self.related.panels.iter().find(|p| p.name.as_str() == name)
    }
}

/// A checked, immutable set of metadata; the engine swaps whole catalogs.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Bumped on every change; a request keeps the catalog it started with.
    pub version: i64,
    docs: Docs,
    entities: BTreeMap<Ident, Arc<Entity>>,
    /// The rollups fed by each entity's records, by the feeding entity's name.
    rollups: HashMap<Ident, Vec<Rollup>>,
}

/// A rollup field as the engine keeps it: `entity.field` totals the records of `def.from`
/// whose `def.via` points at it, those matching `filter` only when there is one.
#[derive(Debug, Clone)]
pub struct Rollup {
    pub entity: Ident,
    pub field: Ident,
    pub def: RollupDef,
    pub filter: Option<Filter>,
}

impl Catalog {
    /// Checks the documents against each other and builds the catalog.
    pub fn build(docs: Docs, version: i64) -> Result<Self, Vec<MetaError>> {
        let errors = check(&docs);
        if !errors.is_empty() {
            return Err(errors);
        }
        let entities = docs
            .entities
            .values()
            .map(|def| {
                let mut columns = system_columns(&def.name);
                columns.extend(def.fields.iter().cloned());
                let by_name = columns.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
                let entity = Entity {
                    def: def.clone(),
                    layout: docs.layouts[&def.name].clone(),
                    list: docs.lists[&def.name].clone(),
                    related: docs.related[&def.name].clone(),
                    columns,
                    by_name,
                };
                (def.name.clone(), Arc::new(entity))
            })
            .collect();
        let mut catalog = Self { version, docs, entities, rollups: HashMap::new() };
        let (rollups, mut errors) = catalog.compile_rollups();
        catalog.rollups = rollups;
        // A report is checked by compiling it as it would run, with nothing hidden.
        errors.extend(catalog.docs.reports.values().filter_map(|report| {
            let compiled = crate::report::compile(
                &catalog,
                report,
                &|_| HashSet::new(),
                None,
                chrono::DateTime::UNIX_EPOCH.fixed_offset(),
            );
            compiled.err().map(|e| MetaError::new(DocKind::Report, report.name.as_str(), e.path, e.message))
        }));
        for dashboard in catalog.docs.dashboards.values() {
            errors.extend(crate::dashboard::check(&catalog, dashboard));
        }
        for hook in catalog.docs.webhooks.values() {
            if let Err(e) = catalog.webhook_filter(hook) {
                errors.push(MetaError::new(
                    DocKind::Webhook,
                    hook.name.as_str(),
                    format!("/filter{}", e.path),
                    e.message,
                ));
            }
        }
        for sync in catalog.docs.syncs.values() {
            if let Err(e) = catalog.sync_filter(sync) {
                errors.push(MetaError::new(DocKind::Sync, sync.name.as_str(), format!("/filter{}", e.path), e.message));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(catalog)
    }

    /// The rollups, by the entity whose records feed them, with their filters parsed.
    fn compile_rollups(&self) -> (HashMap<Ident, Vec<Rollup>>, Vec<MetaError>) {
        let (mut rollups, mut errors): (HashMap<Ident, Vec<Rollup>>, _) = (HashMap::new(), Vec::new());
        for def in self.docs.entities.values().filter(|e| !e.archived) {
            for (i, field) in def.fields.iter().enumerate().filter(|(_, f)| !f.archived) {
                let Some(rollup) = &field.rollup else { continue };
                let filter = match (&rollup.filter, self.entity(rollup.from.as_str())) {
                    (Some(json), Some(source)) => match Filter::parse(self, source, json, &HashSet::new()) {
                        Ok(filter) => Some(filter),
                        Err(e) => {
                            let path = format!("/fields/{i}/rollup/filter{}", e.path);
                            errors.push(MetaError::new(DocKind::Entity, def.name.as_str(), path, e.message));
                            continue;
                        }
                    },
                    _ => None,
                };
                rollups.entry(rollup.from.clone()).or_default().push(Rollup {
                    entity: def.name.clone(),
                    field: field.name.clone(),
                    def: rollup.clone(),
                    filter,
                });
            }
        }
        (rollups, errors)
    }

    /// A webhook's filter, parsed for its entity.
    pub fn webhook_filter(&self, hook: &WebhookDoc) -> Result<Option<Filter>, crate::filter::QueryError> {
        let (Some(json), Some(entity)) = (&hook.filter, self.entity(hook.entity.as_str())) else { return Ok(None) };
        Filter::parse(self, entity, json, &HashSet::new()).map(Some)
    }

    /// The records a sync towards the ERP sends, as a filter parsed for its entity.
    pub fn sync_filter(&self, sync: &SyncDoc) -> Result<Option<Filter>, crate::filter::QueryError> {
        let (Some(json), Some(entity)) = (&sync.filter, self.entity(sync.entity.as_str())) else { return Ok(None) };
        Filter::parse(self, entity, json, &HashSet::new()).map(Some)
    }

    /// The enabled webhooks of an entity.
    pub fn webhooks_of(&self, entity: &str) -> impl Iterator<Item = &WebhookDoc> {
        self.docs.webhooks.values().filter(move |h| h.enabled && h.entity.as_str() == entity)
    }

    /// The rollups that records of `entity` feed.
    pub fn rollups_from(&self, entity: &str) -> &[Rollup] {
        self.rollups.get(entity).map_or(&[], Vec::as_slice)
    }

    /// Whether writing records of `entity` may change a rollup: its own or another's.
    pub fn feeds_rollups(&self, entity: &str) -> bool {
        !self.rollups_from(entity).is_empty() || self.rollups_left_of(entity).next().is_some()
    }

    /// The rollup kept in `entity.field`.
    pub fn rollup(&self, entity: &str, field: &str) -> Option<&Rollup> {
        let def = self.entity(entity)?.field(field)?.rollup.as_ref()?;
        self.rollups_from(def.from.as_str()).iter().find(|r| r.entity.as_str() == entity && r.field.as_str() == field)
    }

    /// The rollups of `entity` that take their total off one of its own fields, which
    /// are recomputed when that field changes.
    pub fn rollups_left_of(&self, entity: &str) -> impl Iterator<Item = &Rollup> {
        let fields = self.entity(entity).map(|e| e.def.fields.as_slice()).unwrap_or_default();
        fields
            .iter()
            .filter(|f| f.rollup.as_ref().is_some_and(|r| r.left_of.is_some()))
            .filter_map(move |f| self.rollup(entity, f.name.as_str()))
    }

    pub fn docs(&self) -> &Docs {
        &self.docs
    }

    pub fn entity(&self, name: &str) -> Option<&Arc<Entity>> {
        self.entities.get(name)
    }

    pub fn entities(&self) -> impl Iterator<Item = &Arc<Entity>> {
        self.entities.values()
    }

    pub fn stage_set(&self, name: &str) -> Option<&StageSetDoc> {
        self.docs.stage_sets.get(name)
    }

    /// The stage set of a stage field for a record whose selector field (see
    /// [`crate::meta::StageSetBy`]) has `selector`.
    pub fn stage_set_for(&self, field: &FieldDef, selector: Option<&str>) -> Option<&StageSetDoc> {
        let chosen = field.stage_set_by.as_ref().zip(selector).and_then(|(by, value)| by.sets.get(value));
        chosen.or(field.stage_set.as_ref()).and_then(|name| self.stage_set(name.as_str()))
    }

    /// Every stage set a stage field may use, its default first.
    /// The label of a stage by its key, from whichever stage set has it.
    pub fn stage_label(&self, key: &str) -> Option<&Labels> {
        let mut stages = self.docs.stage_sets.values().flat_map(|set| set.stages.iter());
        stages.find(|s| s.name.as_str() == key).map(|s| &s.label)
    }

    pub fn stage_sets_of(&self, field: &FieldDef) -> Vec<&StageSetDoc> {
        let by = field.stage_set_by.iter().flat_map(|by| by.sets.values());
        let mut sets: Vec<&StageSetDoc> = Vec::new();
        for name in field.stage_set.iter().chain(by) {
            if let Some(set) = self.stage_set(name.as_str())
                && !sets.iter().any(|s| s.name == set.name)
            {
                sets.push(set);
            }
        }
        sets
    }

    /// The print templates of an entity, the default first, then by name.
    pub fn print_templates(&self, entity: &str) -> Vec<&PrintTemplateDoc> {
        let mut templates: Vec<&PrintTemplateDoc> =
            self.docs.print_templates.values().filter(|t| t.entity.as_str() == entity).collect();
        templates.sort_by_key(|t| (!t.default, t.name.clone()));
        templates
    }

    pub fn role(&self, name: &str) -> Option<&RoleDoc> {
        self.docs.roles.get(name)
    }

    /// The enabled rules of an entity's event, in the order they run.
    pub fn scripts(&self, entity: &str, event: ScriptEvent) -> Vec<&ScriptDoc> {
        let mut scripts: Vec<&ScriptDoc> = self
            .docs
            .scripts
            .values()
            .filter(|s| s.enabled && s.event == event && s.entity.as_ref().is_some_and(|e| e.as_str() == entity))
            .collect();
        scripts.sort_by_key(|s| (s.order, s.name.clone()));
        scripts
    }
}

/// The semantic checks: everything a JSON Schema cannot say.
fn check(docs: &Docs) -> Vec<MetaError> {
    let mut errors = Vec::new();
    // An empty catalog is the state before the first package is installed.
    if !docs.entities.is_empty() && !docs.entities.contains_key(USER_ENTITY) {
        errors.push(MetaError::new(
            DocKind::Entity,
            USER_ENTITY,
            "",
            "the `user` entity is required: every record has an owner",
        ));
    }
    for set in docs.stage_sets.values() {
        check_stage_set(set, &mut errors);
    }
    for entity in docs.entities.values() {
        check_entity(docs, entity, &mut errors);
        check_rollups(docs, entity, &mut errors);
        let name = entity.name.as_str();
        match docs.layouts.get(name) {
            Some(layout) => check_layout(entity, layout, &mut errors),
            None => errors.push(MetaError::new(DocKind::Layout, name, "", "missing")),
        }
        match docs.lists.get(name) {
            Some(list) => check_list(entity, list, &mut errors),
            None => errors.push(MetaError::new(DocKind::ListView, name, "", "missing")),
        }
        match docs.related.get(name) {
            // An archived entity's panels may read through lookups archived with it.
            Some(_) if entity.archived => {}
            Some(related) => check_related(docs, entity, related, &mut errors),
            None => errors.push(MetaError::new(DocKind::Related, name, "", "missing")),
        }
    }
    for role in docs.roles.values() {
        check_role(docs, role, &mut errors);
    }
    for script in docs.scripts.values() {
        check_script(docs, script, &mut errors);
    }
    check_print_templates(docs, &mut errors);
    check_web_forms(docs, &mut errors);
    check_webhooks(docs, &mut errors);
    check_syncs(docs, &mut errors);
    for (kind, names) in [
        (DocKind::Layout, docs.layouts.keys().collect::<Vec<_>>()),
        (DocKind::ListView, docs.lists.keys().collect()),
        (DocKind::Related, docs.related.keys().collect()),
    ] {
        for name in names {
            if !docs.entities.contains_key(name) {
                errors.push(MetaError::new(kind, name.as_str(), "/entity", format!("no entity `{name}`")));
            }
        }
    }
    errors
}

fn check_role(docs: &Docs, role: &RoleDoc, errors: &mut Vec<MetaError>) {
    for (entity, grant) in &role.entities {
        let path = format!("/entities/{entity}");
        let Some(def) = docs.entities.get(entity) else {
            errors.push(MetaError::new(DocKind::Role, role.name.as_str(), path, format!("no entity `{entity}`")));
            continue;
        };
        for field in grant.fields.keys() {
            if !def.fields.iter().any(|f| &f.name == field) {
                errors.push(MetaError::new(
                    DocKind::Role,
                    role.name.as_str(),
                    format!("{path}/fields/{field}"),
                    format!("no field `{field}` on `{entity}`"),
                ));
            }
        }
    }
}

fn check_script(docs: &Docs, script: &ScriptDoc, errors: &mut Vec<MetaError>) {
    let err = |path: &str, message: String| MetaError::new(DocKind::Script, script.name.as_str(), path, message);
    if script.source.trim().is_empty() {
        errors.push(err("/source", "a rule needs a script".into()));
    }
    let Some(entity) = &script.entity else { return };
    let Some(def) = docs.entities.get(entity) else {
        errors.push(err("/entity", format!("no entity `{entity}`")));
        return;
    };
    if let Some(field) = &script.field
        && !def.fields.iter().any(|f| &f.name == field && !f.archived)
    {
        errors.push(err("/field", format!("no field `{field}` on `{entity}`")));
    }
}

/// A print template prints records of an entity that exists, and an entity has at most one
/// default template. Whether its source compiles is the engine's check (the template engine
/// lives there, like the rules').
fn check_print_templates(docs: &Docs, errors: &mut Vec<MetaError>) {
    let mut defaults: HashMap<&Ident, &Ident> = HashMap::new();
    for template in docs.print_templates.values() {
        let err =
            |path: &str, message: String| MetaError::new(DocKind::PrintTemplate, template.name.as_str(), path, message);
        if !docs.entities.contains_key(&template.entity) {
            errors.push(err("/entity", format!("no entity `{}`", template.entity)));
        }
        if template.source.trim().is_empty() {
            errors.push(err("/source", "a print template needs a source".into()));
        }
        if template.default
            && let Some(other) = defaults.insert(&template.entity, &template.name)
        {
            errors.push(err(
                "/default",
                format!("`{other}` is already the default print template of `{}`", template.entity),
            ));
        }
    }
}

/// The entity web forms make records of.
pub const WEB_FORM_ENTITY: &str = "lead";

/// A web form asks for fields of leads a visitor can fill in, each once, and for every field
/// a lead needs; its redirect is a web address.
/// A webhook posts the events of an existing entity to an http(s) address.
fn check_webhooks(docs: &Docs, errors: &mut Vec<MetaError>) {
    for hook in docs.webhooks.values() {
        let err = |path: &str, message: String| MetaError::new(DocKind::Webhook, hook.name.as_str(), path, message);
        if !docs.entities.contains_key(&hook.entity) {
            errors.push(err("/entity", format!("no entity `{}`", hook.entity)));
        }
        let url = hook.url.trim();
        let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
        if host.is_empty() || host.starts_with('/') || url.chars().any(char::is_whitespace) {
            errors.push(err("/url", format!("`{url}` is not an http:// or https:// address")));
        }
    }
}

/// Whether a name of the external database (`table`, `schema.table`, `column`) is one that
/// may be written into its SQL: letters, digits and underscores, each part under 64.
pub fn is_external_name(name: &str, parts: usize) -> bool {
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && !part.starts_with(|c: char| c.is_ascii_digit())
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let split: Vec<&str> = name.split('.').collect();
    split.len() <= parts && split.iter().all(|p| valid(p))
}

/// A sync mapping keeps existing fields from columns with names fit for SQL; a reference is
/// kept through a mapping of the entity it points at.
fn check_syncs(docs: &Docs, errors: &mut Vec<MetaError>) {
    for sync in docs.syncs.values() {
        let err = |path: String, message: String| MetaError::new(DocKind::Sync, sync.name.as_str(), path, message);
        if !is_external_name(&sync.table, 2) {
            errors.push(err("/table".into(), format!("`{}` is not a table name (letters, digits, _)", sync.table)));
        }
        for (path, column) in
            [("/key/column", Some(&sync.key.column)), ("/watermark", sync.watermark.as_ref())].into_iter()
        {
            if let Some(column) = column.filter(|c| !is_external_name(c, 1)) {
                errors.push(err(path.into(), format!("`{column}` is not a column name (letters, digits, _)")));
            }
        }
        let Some(entity) = docs.entities.get(&sync.entity) else {
            errors.push(err("/entity".into(), format!("no entity `{}`", sync.entity)));
            continue;
        };
        // The owner is kept like a field: from the ERP's 业务员 through the employees' mapping.
        let system = system_columns(&entity.name);
        let field_of = |name: &Ident| {
            entity
                .fields
                .iter()
                .find(|f| f.name == *name && !f.archived)
                .or_else(|| system.iter().find(|f| f.name == *name && f.name.as_str() == "owner"))
        };
        if let Some(key_field) = &sync.key.field
            && field_of(key_field).is_none()
        {
            errors.push(err("/key/field".into(), format!("no field `{key_field}` on `{}`", sync.entity)));
        }
        if sync.direction == SyncDirection::ToErp && sync.key.field.is_none() {
            errors
                .push(err("/key/field".into(), "towards the ERP, name the field that gives a new row its code".into()));
        }
        let mut seen = HashSet::new();
        for (i, mapped) in sync.fields.iter().enumerate() {
            if !is_external_name(&mapped.column, 1) {
                errors.push(err(format!("/fields/{i}/column"), format!("`{}` is not a column name", mapped.column)));
            }
            if !seen.insert(&mapped.field) {
                errors.push(err(format!("/fields/{i}/field"), format!("`{}` is mapped twice", mapped.field)));
            }
            let Some(field) = field_of(&mapped.field) else {
                errors.push(err(
                    format!("/fields/{i}/field"),
                    format!("no field `{}` on `{}`", mapped.field, sync.entity),
                ));
                continue;
            };
            if let Some(via) = &mapped.via {
                let target = match field.field_type {
                    FieldType::User => Some(crate::USER_ENTITY),
                    FieldType::Lookup => field.target.as_ref().map(Ident::as_str),
                    _ => None,
                };
                match (target, docs.syncs.get(via)) {
                    (None, _) => {
                        errors.push(err(format!("/fields/{i}/via"), format!("`{}` is not a reference", field.name)))
                    }
                    (_, None) => errors.push(err(format!("/fields/{i}/via"), format!("no sync mapping `{via}`"))),
                    (Some(target), Some(other)) if other.entity.as_str() != target => errors.push(err(
                        format!("/fields/{i}/via"),
                        format!("`{via}` keeps `{}`, and `{}` points at `{target}`", other.entity, field.name),
                    )),
                    _ => {}
                }
            }
        }
    }
}

fn check_web_forms(docs: &Docs, errors: &mut Vec<MetaError>) {
    for form in docs.web_forms.values() {
        let err = |path: String, message: String| MetaError::new(DocKind::WebForm, form.name.as_str(), path, message);
        let Some(lead) = docs.entities.get(WEB_FORM_ENTITY) else {
            errors.push(err(String::new(), format!("web forms need the `{WEB_FORM_ENTITY}` entity")));
            continue;
        };
        if form.fields.is_empty() {
            errors.push(err("/fields".into(), "a form asks for at least one field".into()));
        }
        let mut seen = HashSet::new();
        for (i, asked) in form.fields.iter().enumerate() {
            let path = format!("/fields/{i}/field");
            match lead.fields.iter().find(|f| f.name == asked.field && !f.archived) {
                None => errors.push(err(path, format!("no field `{}` on `{WEB_FORM_ENTITY}`", asked.field))),
                Some(field) if !on_web_forms(field.field_type) => {
                    errors.push(err(path, format!("a {:?} field is not filled in on a web form", field.field_type)));
                }
                Some(_) => {}
            }
            if !seen.insert(&asked.field) {
                errors.push(err(path_of(i), format!("`{}` is asked twice", asked.field)));
            }
        }
        for needed in lead.fields.iter().filter(|f| f.required && f.default.is_none() && !f.archived) {
            if !form.fields.iter().any(|a| a.field == needed.name && a.required) {
                errors.push(err("/fields".into(), format!("a lead needs `{}`: ask for it, required", needed.name)));
            }
        }
        if let Some(redirect) = &form.redirect
            && !(redirect.starts_with("https://") || redirect.starts_with("http://"))
        {
            errors.push(err("/redirect".into(), "a web address (http or https)".into()));
        }
    }
}

/// Whether a visitor fills in a field of this type on a web form: text, numbers, dates and
/// choices; not references to records, people, stages or what the engine keeps.
pub fn on_web_forms(field_type: FieldType) -> bool {
    use FieldType::*;
    matches!(
        field_type,
        Text | LongText | Integer | Decimal | Date | Boolean | Select | MultiSelect | Email | Phone | Url | Region
    )
}

fn path_of(i: usize) -> String {
    format!("/fields/{i}")
}

fn check_stage_set(set: &StageSetDoc, errors: &mut Vec<MetaError>) {
    let err = |path: String, message: String| MetaError::new(DocKind::StageSet, set.name.as_str(), path, message);
    let mut seen = HashSet::new();
    for (i, stage) in set.stages.iter().enumerate() {
        if !seen.insert(&stage.name) {
            errors.push(err(format!("/stages/{i}/name"), format!("stage `{}` appears twice", stage.name)));
        }
        if stage.probability > 100 {
            errors.push(err(format!("/stages/{i}/probability"), "must be between 0 and 100".into()));
        }
    }
    if set.stages.is_empty() {
        errors.push(err("/stages".into(), "a stage set needs at least one stage".into()));
    }
}

/// Each duplicate rule names itself once and compares live text fields.
fn check_duplicate_rules(entity: &EntityDef, err: &impl Fn(String, String) -> MetaError, errors: &mut Vec<MetaError>) {
    let mut names = HashSet::new();
    for (i, rule) in entity.duplicates.iter().enumerate() {
        if !names.insert(&rule.name) {
            errors.push(err(format!("/duplicates/{i}/name"), format!("rule `{}` appears twice", rule.name)));
        }
        for (j, compared) in rule.fields.iter().enumerate() {
            let field = entity.fields.iter().find(|f| f.name == compared.field && !f.archived);
            let is_text = field.is_some_and(|f| f.storage() == Storage::Text && !f.field_type.spec().has_options);
            if !is_text {
                errors.push(err(
                    format!("/duplicates/{i}/fields/{j}/field"),
                    format!("`{}` is not a text field of this entity", compared.field),
                ));
            }
        }
    }
}

fn check_entity(docs: &Docs, entity: &EntityDef, errors: &mut Vec<MetaError>) {
    let name = entity.name.as_str();
    let err = |path: String, message: String| MetaError::new(DocKind::Entity, name, path, message);
    if let Some(approval) = &entity.approval {
        let field = entity.fields.iter().find(|f| f.name == approval.field && !f.archived);
        let has_statuses = field.is_some_and(|f| {
            f.field_type == FieldType::Select
                && crate::meta::APPROVAL_STATUSES.iter().all(|s| f.options.iter().any(|o| o.value == *s))
        });
        if !has_statuses {
            errors.push(err(
                "/approval/field".into(),
                format!(
                    "`{}` must be a select field with the options draft, submitted, approved and rejected",
                    approval.field
                ),
            ));
        }
        if let Some(when) = &approval.next_level_when {
            let boolean =
                entity.fields.iter().any(|f| &f.name == when && !f.archived && f.field_type == FieldType::Boolean);
            if !boolean {
                errors.push(err("/approval/next_level_when".into(), format!("`{when}` must be a yes/no field")));
            }
        }
        for (i, shown) in approval.shows.iter().enumerate() {
            if !entity.fields.iter().any(|f| &f.name == shown && !f.archived) {
                errors.push(err(format!("/approval/shows/{i}"), format!("no field `{shown}`")));
            }
        }
    }
    if let Some(parent) = &entity.locked_by {
        let lookup = entity.fields.iter().find(|f| &f.name == parent && f.field_type == FieldType::Lookup);
        let locks = lookup
            .and_then(|f| f.target.as_ref())
            .and_then(|target| docs.entities.get(target))
            .is_some_and(|target| target.approval.is_some());
        if !locks {
            errors.push(err("/locked_by".into(), format!("`{parent}` must be a lookup to an entity with an approval")));
        }
    }
    check_duplicate_rules(entity, &err, errors);
    let mut seen = HashSet::new();
    let mut stage_fields = 0;
    for (i, field) in entity.fields.iter().enumerate() {
        let at = |prop: &str| format!("/fields/{i}{prop}");
        if is_system_column(field.name.as_str()) {
            errors.push(err(at("/name"), format!("`{}` is a system column", field.name)));
        }
        if !seen.insert(&field.name) {
            errors.push(err(at("/name"), format!("field `{}` appears twice", field.name)));
        }
        let ty = field.field_type;
        let spec = ty.spec();
        if field.max_length.is_some() && spec.max_length.is_none() {
            errors.push(err(at("/max_length"), "only text fields have a maximum length".into()));
        }
        if field.scale.is_some() && ty != FieldType::Decimal {
            errors.push(err(at("/scale"), "only decimal fields have a scale".into()));
        }
        if field.currency.is_some() && ty != FieldType::Money {
            errors.push(err(at("/currency"), "only money fields have a currency".into()));
        }
        if (field.min.is_some() || field.max.is_some())
            && !matches!(field.storage(), Storage::Integer | Storage::Fixed(_))
        {
            errors.push(err(at("/min"), "only number fields have a range".into()));
        }
        for (prop, bound) in [("/min", &field.min), ("/max", &field.max)] {
            if let Some(bound) = bound
                && value::parse_number_bound(field, bound).is_none()
            {
                errors.push(err(at(prop), "not a number this field can hold".into()));
            }
        }
        if spec.has_options {
            if field.options.is_empty() {
                errors.push(err(at("/options"), "a select field needs options".into()));
            }
            let mut values = HashSet::new();
            for (j, option) in field.options.iter().enumerate() {
                if !values.insert(&option.value) {
                    errors.push(err(
                        at(&format!("/options/{j}/value")),
                        format!("option `{}` appears twice", option.value),
                    ));
                }
            }
        } else if !field.options.is_empty() {
            errors.push(err(at("/options"), "only select fields have options".into()));
        }
        let names_target = spec.reference == Some(Reference::Target);
        match &field.target {
            Some(target) if names_target && !docs.entities.contains_key(target) => {
                errors.push(err(at("/target"), format!("no entity `{target}`")));
            }
            None if names_target => errors.push(err(at("/target"), "a lookup needs a target entity".into())),
            Some(_) if !names_target => errors.push(err(at("/target"), "only lookups have a target".into())),
            _ => {}
        }
        match (ty, &field.stage_set) {
            (FieldType::Stage, Some(set)) => {
                stage_fields += 1;
                if !docs.stage_sets.contains_key(set) {
                    errors.push(err(at("/stage_set"), format!("no stage set `{set}`")));
                }
            }
            (FieldType::Stage, None) => errors.push(err(at("/stage_set"), "a stage field needs a stage set".into())),
            (_, Some(_)) => errors.push(err(at("/stage_set"), "only stage fields have a stage set".into())),
            (_, None) => {}
        }
        if field.stage_key && ty != FieldType::Text {
            errors.push(err(at("/stage_key"), "only a text field keeps a stage's key".into()));
        }
        if let Some(by) = &field.stage_set_by {
            let selector = entity.fields.iter().find(|f| f.name == by.field && f.field_type == FieldType::Select);
            match selector {
                None => errors.push(err(at("/stage_set_by/field"), format!("`{}` is not a select field", by.field))),
                Some(selector) => {
                    for (value, set) in &by.sets {
                        if !selector.options.iter().any(|o| &o.value == value) {
                            errors.push(err(
                                at("/stage_set_by/sets"),
                                format!("`{value}` is not an option of `{}`", by.field),
                            ));
                        }
                        if !docs.stage_sets.contains_key(set) {
                            errors.push(err(at("/stage_set_by/sets"), format!("no stage set `{set}`")));
                        }
                    }
                }
            }
            if ty != FieldType::Stage {
                errors.push(err(at("/stage_set_by"), "only stage fields have stage sets".into()));
            }
        }
        if let Some(deadline) = &field.deadline {
            if !matches!(ty, FieldType::Date | FieldType::Datetime) {
                errors.push(err(at("/deadline"), "only date and date-time fields are due times".into()));
            }
            if !entity.fields.iter().any(|f| f.name == deadline.met_by && f.name != field.name) {
                errors.push(err(at("/deadline/met_by"), format!("no other field `{}`", deadline.met_by)));
            }
        }
        if ty != FieldType::AutoNumber && (field.prefix.is_some() || field.digits.is_some()) {
            errors.push(err(at("/prefix"), "only auto-number fields have a prefix and digits".into()));
        }
        if spec.generated && field.default.is_some() {
            errors.push(err(at("/default"), "an auto-number is generated, it has no default".into()));
        }
        if let Some(default) = &field.default
            && !spec.generated
            && let Err(e) = value::check_default(
                field,
                default,
                docs.stage_sets.get(field.stage_set.as_ref().map_or("", Ident::as_str)),
            )
        {
            errors.push(err(at("/default"), e.message));
        }
    }
    let mut seen_indexes = HashSet::new();
    for (i, index) in entity.indexes.iter().enumerate() {
        if !seen_indexes.insert(&index.fields) {
            errors.push(err(format!("/indexes/{i}"), "the same index appears twice".into()));
        }
        for (j, column) in index.fields.iter().enumerate() {
            let sortable = is_system_column(column.as_str())
                || entity.fields.iter().any(|f| &f.name == column && f.field_type.is_sortable());
            if !sortable {
                errors
                    .push(err(format!("/indexes/{i}/fields/{j}"), format!("no field `{column}` that can be indexed")));
            }
        }
    }
    if stage_fields > 1 {
        errors.push(err("/fields".into(), "an entity has at most one stage field".into()));
    }
    if let Some(title) = &entity.title_field {
        match entity.fields.iter().find(|f| &f.name == title) {
            Some(f) if f.field_type.is_text_like() || f.field_type == FieldType::Select => {}
            Some(_) => errors.push(err("/title_field".into(), format!("`{title}` is not a text field"))),
            None => errors.push(err("/title_field".into(), format!("no field `{title}`"))),
        }
    }
}

/// A rollup totals a number field (or counts the records) of an entity whose live lookup
/// points back, into a number field that nobody else writes.
fn check_rollups(docs: &Docs, entity: &EntityDef, errors: &mut Vec<MetaError>) {
    // An archived entity's totals sleep: the lookups they count through may be archived too.
    if entity.archived {
        return;
    }
    for (i, field) in entity.fields.iter().enumerate() {
        let Some(rollup) = field.rollup.as_ref().filter(|_| !field.archived) else { continue };
        let mut err = |prop: &str, message: String| {
            errors.push(MetaError::new(
                DocKind::Entity,
                entity.name.as_str(),
                format!("/fields/{i}/rollup{prop}"),
                message,
            ));
        };
        let kept = if rollup.latest.is_some() {
            [FieldType::Date, FieldType::Datetime].contains(&field.field_type)
        } else {
            matches!(field.field_type, FieldType::Integer | FieldType::Decimal | FieldType::Money)
        };
        if !kept {
            err(
                "",
                "a total is kept in an integer, decimal or money field, a latest moment in a date or date-time field"
                    .into(),
            );
        }
        if field.required || field.unique || field.default.is_some() {
            err("", "a rollup is kept by the engine: it is neither required, unique nor defaulted".into());
        }
        if let Some(name) = &rollup.left_of {
            match entity.fields.iter().find(|f| &f.name == name && !f.archived) {
                Some(base) if base.storage() == field.storage() && base.rollup.is_none() && rollup.latest.is_none() => {
                }
                _ => err(
                    "/left_of",
                    format!(
                        "`{name}` is not a number field of `{}` kept in the same way as `{}`",
                        entity.name, field.name
                    ),
                ),
            }
        }
        let Some(source) = docs.entities.get(&rollup.from) else {
            err("/from", format!("no entity `{}`", rollup.from));
            continue;
        };
        let live = |name: &Ident| source.fields.iter().find(|f| &f.name == name && !f.archived);
        match live(&rollup.via) {
            Some(via) if via.field_type == FieldType::Lookup && via.target.as_ref() == Some(&entity.name) => {}
            _ => err("/via", format!("`{}` is not a lookup of `{}` to `{}`", rollup.via, rollup.from, entity.name)),
        }
        if let Some(name) = &rollup.latest {
            match live(name) {
                _ if rollup.sum.is_some() => err("/latest", "a rollup keeps a sum or a latest moment, not both".into()),
                Some(latest) if latest.storage() == field.storage() => {}
                Some(_) => err("/latest", format!("`{name}` is not a date of the same kind as `{}`", field.name)),
                None => err("/latest", format!("no field `{name}` on `{}`", rollup.from)),
            }
            continue;
        }
        match rollup.sum.as_ref().map(|name| (name, live(name))) {
            None => {
                if field.field_type != FieldType::Integer {
                    err("", "a count is kept in an integer field".into());
                }
            }
            Some((name, None)) => err("/sum", format!("no field `{name}` on `{}`", rollup.from)),
            Some((name, Some(summed))) => {
                if summed.storage() != field.storage() {
                    err("/sum", format!("`{name}` is not a number of the same kind and scale as `{}`", field.name));
                }
            }
        }
    }
}

/// Finds a field of an entity by name, archived ones excluded; system columns when allowed.
fn live_column<'a>(entity: &'a EntityDef, name: &str, system: bool) -> Result<Option<&'a FieldDef>, String> {
    if is_system_column(name) {
        return if system { Ok(None) } else { Err(format!("`{name}` is a system column")) };
    }
    match entity.fields.iter().find(|f| f.name.as_str() == name) {
        Some(f) if f.archived => Err(format!("field `{name}` is archived")),
        Some(f) => Ok(Some(f)),
        None => Err(format!("no field `{name}` on `{}`", entity.name)),
    }
}

fn check_layout(entity: &EntityDef, doc: &LayoutDoc, errors: &mut Vec<MetaError>) {
    for (which, layout) in [("edit", &doc.edit), ("view", &doc.view)] {
        let mut seen = HashSet::new();
        let mut sections = HashSet::new();
        for (i, section) in layout.sections.iter().enumerate() {
            if !sections.insert(&section.name) {
                errors.push(MetaError::new(
                    DocKind::Layout,
                    entity.name.as_str(),
                    format!("/{which}/sections/{i}/name"),
                    format!("section `{}` appears twice", section.name),
                ));
            }
            for (j, item) in section.fields.iter().enumerate() {
                let path = format!("/{which}/sections/{i}/fields/{j}");
                if let Err(message) = live_column(entity, item.field.as_str(), which == "view") {
                    errors.push(MetaError::new(DocKind::Layout, entity.name.as_str(), path, message));
                } else if !seen.insert(&item.field) {
                    errors.push(MetaError::new(
                        DocKind::Layout,
                        entity.name.as_str(),
                        path,
                        format!("`{}` is placed twice", item.field),
                    ));
                }
            }
        }
    }
}

fn check_sort(
    entity: &EntityDef,
    sort: &[SortKey],
    kind: DocKind,
    doc: &str,
    prefix: &str,
    errors: &mut Vec<MetaError>,
) {
    for (i, key) in sort.iter().enumerate() {
        match live_column(entity, key.field.as_str(), true) {
            Ok(Some(f)) if !f.field_type.is_sortable() => {
                errors.push(MetaError::new(
                    kind,
                    doc,
                    format!("{prefix}/sort/{i}"),
                    format!("`{}` cannot be sorted", key.field),
                ));
            }
            Ok(_) => {}
            Err(message) => errors.push(MetaError::new(kind, doc, format!("{prefix}/sort/{i}"), message)),
        }
    }
}

fn check_list(entity: &EntityDef, list: &ListViewDoc, errors: &mut Vec<MetaError>) {
    let name = entity.name.as_str();
    for (i, column) in list.columns.iter().enumerate() {
        if let Err(message) = live_column(entity, column.as_str(), true) {
            errors.push(MetaError::new(DocKind::ListView, name, format!("/columns/{i}"), message));
        }
    }
    check_sort(entity, &list.sort, DocKind::ListView, name, "", errors);
}

fn check_related(docs: &Docs, entity: &EntityDef, related: &RelatedDoc, errors: &mut Vec<MetaError>) {
    let name = entity.name.as_str();
    let mut seen = HashSet::new();
    for (i, panel) in related.panels.iter().enumerate() {
        let err =
            |path: &str, message: String| MetaError::new(DocKind::Related, name, format!("/panels/{i}{path}"), message);
        if !seen.insert(&panel.name) {
            errors.push(err("/name", format!("panel `{}` appears twice", panel.name)));
        }
        let Some(source) = docs.entities.get(&panel.source) else {
            errors.push(err("/source", format!("no entity `{}`", panel.source)));
            continue;
        };
        match live_column(source, panel.lookup.as_str(), true) {
            Ok(Some(f)) if f.reference_target() == Some(name) => {}
            Ok(None)
                if matches!(panel.lookup.as_str(), "owner" | "created_by" | "updated_by") && name == USER_ENTITY => {}
            Ok(_) => {
                errors.push(err("/lookup", format!("`{}.{}` does not point at `{name}`", panel.source, panel.lookup)))
            }
            Err(message) => errors.push(err("/lookup", message)),
        }
        for (j, column) in panel.columns.iter().enumerate() {
            if let Err(message) = live_column(source, column.as_str(), true) {
                errors.push(err(&format!("/columns/{j}"), message));
            }
        }
        check_sort(source, &panel.sort, DocKind::Related, name, &format!("/panels/{i}"), errors);
    }
}
