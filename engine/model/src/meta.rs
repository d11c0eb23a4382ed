//! The metadata documents as they are stored, exported and installed: entities with their
//! fields, layouts, list views, related panels, stage sets, rules and print templates.

use serde::{Deserialize, Serialize};

use crate::ident::Ident;
use crate::types::{FieldType, Reference, Storage, TypeSpec};

/// A text in each language of the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

impl Labels {
    pub fn new(zh_cn: &str, en: &str) -> Self {
        Self { zh_cn: zh_cn.to_owned(), en: en.to_owned() }
    }

    /// The text in a locale of the screens (`en`, otherwise Chinese).
    pub fn get(&self, locale: &str) -> &str {
        if locale == "en" { &self.en } else { &self.zh_cn }
    }

    /// A stored message (a reminder's) in both languages: the labels as JSON text.
    pub fn to_message(&self) -> String {
        serde_json::to_string(self).expect("two strings serialise")
    }

    /// A stored message in a locale: one written by [`Labels::to_message`] gives that
    /// language's text, any other is shown as it was written.
    pub fn message_in(message: &str, locale: &str) -> String {
        match serde_json::from_str::<Labels>(message) {
            Ok(labels) => labels.get(locale).to_owned(),
            Err(_) => message.to_owned(),
        }
    }
}

/// The kinds of metadata document; each is one row in the metadata table and one file in a
/// package folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    StageSet,
    Entity,
    Layout,
    ListView,
    Related,
    Role,
    Script,
    Report,
    Dashboard,
    PrintTemplate,
    WebForm,
    Webhook,
    Sync,
}

impl DocKind {
    /// In dependency order: stage sets before the entities that use them, entities before
    /// the documents that describe their screens.
    pub const ALL: [DocKind; 13] = [
        DocKind::StageSet,
        DocKind::Entity,
        DocKind::Layout,
        DocKind::ListView,
        DocKind::Related,
        DocKind::Role,
        DocKind::Script,
        DocKind::Report,
        DocKind::Dashboard,
        DocKind::PrintTemplate,
        DocKind::WebForm,
        DocKind::Webhook,
        DocKind::Sync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::StageSet => "stage_set",
            DocKind::Entity => "entity",
            DocKind::Layout => "layout",
            DocKind::ListView => "list_view",
            DocKind::Related => "related",
            DocKind::Role => "role",
            DocKind::Script => "script",
            DocKind::Report => "report",
            DocKind::Dashboard => "dashboard",
            DocKind::PrintTemplate => "print_template",
            DocKind::WebForm => "web_form",
            DocKind::Webhook => "webhook",
            DocKind::Sync => "sync",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The folder of a package that holds documents of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            DocKind::StageSet => "stage_sets",
            DocKind::Entity => "entities",
            DocKind::Layout => "layouts",
            DocKind::ListView => "lists",
            DocKind::Related => "related",
            DocKind::Role => "roles",
            DocKind::Script => "scripts",
            DocKind::Report => "reports",
            DocKind::Dashboard => "dashboards",
            DocKind::PrintTemplate => "prints",
            DocKind::WebForm => "web_forms",
            DocKind::Webhook => "webhooks",
            DocKind::Sync => "syncs",
        }
    }

    /// The JSON Schema file (in `metadata/schema/`) documents of this kind must satisfy.
    pub fn schema_file(self) -> &'static str {
        match self {
            DocKind::StageSet => "stage_set.schema.json",
            DocKind::Entity => "entity.schema.json",
            DocKind::Layout => "layout.schema.json",
            DocKind::ListView => "list_view.schema.json",
            DocKind::Related => "related.schema.json",
            DocKind::Role => "role.schema.json",
            DocKind::Script => "script.schema.json",
            DocKind::Report => "report.schema.json",
            DocKind::Dashboard => "dashboard.schema.json",
            DocKind::PrintTemplate => "print_template.schema.json",
            DocKind::WebForm => "web_form.schema.json",
            DocKind::Webhook => "webhook.schema.json",
            DocKind::Sync => "sync.schema.json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectOption {
    pub value: String,
    pub label: Labels,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: Ident,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Labels>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub searchable: bool,
    /// Hidden from the API and screens, its column and data kept.
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
    /// A value of the field's type, or `$now` / `$today` / `$me`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Number>,
    /// Digits after the decimal point of a decimal field (money and percent have 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    /// ISO 4217 code of a money field; CNY when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<SelectOption>,
    /// The entity a lookup points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Ident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_set: Option<Ident>,
    /// Stage sets chosen by another field's value (a campaign's type); `stage_set` serves the
    /// values without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_set_by: Option<StageSetBy>,
    /// Text put before the number of an auto-number field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<u8>,
    /// A total kept by the engine over the records that point at this one (a quote's lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<RollupDef>,
    /// A due time (a service request's resolution target): shown as overdue once it has
    /// passed, and as near within `warn_hours`, while `met_by` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// A text field keeping the key of a stage, copied from a related record by a rule (the
    /// stage an activity was logged in): shown with the stage's label.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stage_key: bool,
}

/// When a date or date-time field is a due time, and what meets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// The field whose value means the deadline was met (`resolved_at`).
    pub met_by: Ident,
    /// How long before the due time it shows as near; not at all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_hours: Option<u32>,
}

/// A field kept by the engine: the sum of a field (or the count) of the live records of
/// `from` whose lookup `via` points at the record, optionally only those matching `filter`
/// and taken off a number of the record itself (`left_of`: what is left of a budget). It is
/// recomputed, inside the writing transaction and over all records whoever wrote them,
/// whenever such a record is created, changed, deleted or restored, or `left_of` changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupDef {
    pub from: Ident,
    pub via: Ident,
    /// The number field summed; the records are counted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<Ident>,
    /// The date or date-time field whose latest value is kept instead (a customer's last
    /// follow-up, from its activities' completion times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<Ident>,
    /// Only the records of `from` matching this filter tree count (expenses submitted or
    /// approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    /// A number field of this record the total is taken off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_of: Option<Ident>,
}

impl FieldDef {
    /// A field with only the required properties set; the rest is filled in by callers.
    pub fn new(name: Ident, field_type: FieldType, label: Labels) -> Self {
        Self {
            name,
            field_type,
            label,
            help: None,
            required: false,
            unique: false,
            indexed: false,
            searchable: false,
            archived: false,
            default: None,
            max_length: None,
            min: None,
            max: None,
            scale: None,
            currency: None,
            options: Vec::new(),
            target: None,
            stage_set: None,
            stage_set_by: None,
            prefix: None,
            digits: None,
            rollup: None,
            deadline: None,
            stage_key: false,
        }
    }

    /// What the engine knows about the field's type.
    pub fn spec(&self) -> &'static TypeSpec {
        self.field_type.spec()
    }

    pub fn storage(&self) -> Storage {
        match self.spec().storage {
            Storage::Fixed(_) => Storage::Fixed(self.scale()),
            storage => storage,
        }
    }

    /// Digits after the decimal point of an exact number field: a decimal field chooses its
    /// own, other types have their storage's.
    pub fn scale(&self) -> u8 {
        match self.spec().storage {
            Storage::Fixed(default) if self.field_type == FieldType::Decimal => self.scale.unwrap_or(default),
            Storage::Fixed(scale) => scale,
            _ => 0,
        }
    }

    /// The longest text the field accepts; `None` for types that are not typed-in text.
    pub fn max_length(&self) -> Option<u32> {
        self.spec().max_length.map(|default| self.max_length.unwrap_or(default))
    }

    /// The entity a reference field points at.
    pub fn reference_target(&self) -> Option<&str> {
        match self.spec().reference? {
            Reference::Entity(entity) => Some(entity),
            Reference::Target => self.target.as_ref().map(Ident::as_str),
        }
    }

    /// Whether the column gets a (non-unique) index: fields marked indexed and the types lists
    /// filter on (references, stages).
    pub fn wants_index(&self) -> bool {
        !self.unique && (self.indexed || self.spec().indexed)
    }

    /// Whether the engine alone writes the field: system columns, generated values
    /// (auto-numbers) and rollups.
    pub fn kept_by_engine(&self) -> bool {
        crate::catalog::is_system_column(self.name.as_str()) || self.spec().generated || self.rollup.is_some()
    }

    pub fn currency(&self) -> &str {
        self.currency.as_deref().unwrap_or("CNY")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    pub name: Ident,
    pub label: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Position in the navigation; entities without one come after, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_order: Option<u16>,
    /// The field that names a record in lookups, titles and related panels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_field: Option<Ident>,
    /// Entities the engine itself relies on (user, department) cannot be removed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub system: bool,
    /// Left by a package that was removed: kept with its data, out of the menus.
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
    pub fields: Vec<FieldDef>,
    /// Indexes over several fields, for the filter-and-sort combinations lists use most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<CompositeIndex>,
    /// Records of this entity go through an approval (审核) kept in a select field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalDef>,
    /// A lookup to a parent whose lock (an approved order) also locks these records (its lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<Ident>,
    /// Duplicate rules (查重规则), checked at entry and by the duplicate scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<DuplicateRule>,
}

/// Which fields make two records likely the same: each field compared its way and weighted,
/// the weighted mean over the fields both records have is the score (0–100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRule {
    pub name: Ident,
    pub label: Labels,
    #[serde(default = "default_threshold")]
    pub threshold: u8,
    #[serde(default)]
    pub action: DuplicateAction,
    pub fields: Vec<DuplicateField>,
}

fn default_threshold() -> u8 {
    80
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateAction {
    /// The form and the API say so; the save goes on.
    #[default]
    Warn,
    /// The save is refused.
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateField {
    pub field: Ident,
    pub compare: Compare,
    #[serde(default = "default_weight")]
    pub weight: u8,
}

fn default_weight() -> u8 {
    1
}

/// How one field of two records is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    Exact,
    Text,
    Company,
    Phone,
    Email,
    Address,
}

/// How an entity's records are approved: the status field (with the options draft,
/// submitted, approved and rejected), the statuses that lock a record against those who may
/// not approve, whether only the submitter's department manager may approve, and the yes/no
/// field that, when set, makes an approval need the next level too (an expense over budget),
/// and the fields shown with the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDef {
    pub field: Ident,
    #[serde(default = "locked_statuses")]
    pub locked: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub manager_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_level_when: Option<Ident>,
    /// Fields the approver sees beside the decision (the budget and what is left of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shows: Vec<Ident>,
}

fn locked_statuses() -> Vec<String> {
    vec!["submitted".into(), "approved".into()]
}

/// The statuses of an approval, as the status field's options.
pub const APPROVAL_STATUSES: [&str; 4] = ["draft", "submitted", "approved", "rejected"];

/// An index over several columns, in order: equality filters first, then range filters
/// or the sort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeIndex {
    pub fields: Vec<Ident>,
}

/// A field placed on a layout, optionally read-only or required there only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LayoutItemWire", into = "LayoutItemWire")]
pub struct LayoutItem {
    pub field: Ident,
    pub readonly: bool,
    pub required: bool,
}

/// A layout item is written as the bare field name unless it carries flags.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum LayoutItemWire {
    Name(Ident),
    Item {
        field: Ident,
        #[serde(default, skip_serializing_if = "is_false")]
        readonly: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        required: bool,
    },
}

impl From<LayoutItemWire> for LayoutItem {
    fn from(wire: LayoutItemWire) -> Self {
        match wire {
            LayoutItemWire::Name(field) => Self { field, readonly: false, required: false },
            LayoutItemWire::Item { field, readonly, required } => Self { field, readonly, required },
        }
    }
}

impl From<LayoutItem> for LayoutItemWire {
    fn from(item: LayoutItem) -> Self {
        if item.readonly || item.required {
            LayoutItemWire::Item { field: item.field, readonly: item.readonly, required: item.required }
        } else {
            LayoutItemWire::Name(item.field)
        }
    }
}

impl LayoutItem {
    pub fn plain(field: Ident) -> Self {
        Self { field, readonly: false, required: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub name: Ident,
    pub label: Labels,
    #[serde(default = "one_column")]
    pub columns: u8,
    pub fields: Vec<LayoutItem>,
}

fn one_column() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub sections: Vec<Section>,
}

impl Layout {
    pub fn contains(&self, field: &str) -> bool {
        self.sections.iter().any(|s| s.fields.iter().any(|i| i.field.as_str() == field))
    }

    /// Puts a field at the end of the last section (a new section if there is none).
    pub fn append(&mut self, field: Ident) {
        if self.contains(field.as_str()) {
            return;
        }
        if self.sections.is_empty() {
            self.sections.push(Section {
                name: Ident::system("main"),
                label: Labels::new("基本信息", "Details"),
                columns: 2,
                fields: Vec::new(),
            });
        }
        if let Some(last) = self.sections.last_mut() {
            last.fields.push(LayoutItem::plain(field));
        }
    }

    pub fn remove(&mut self, field: &str) {
        for section in &mut self.sections {
            section.fields.retain(|i| i.field.as_str() != field);
        }
    }
}

/// The edit and view layouts of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutDoc {
    pub entity: Ident,
    pub edit: Layout,
    pub view: Layout,
}

/// A sort key as written in metadata and in the `sort` parameter: `name` or `-annual_revenue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: Ident,
    pub descending: bool,
}

impl SortKey {
    pub fn parse(text: &str) -> Result<Self, crate::ident::IdentError> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Ok(Self { field: Ident::new(name)?, descending })
    }
}

impl std::fmt::Display for SortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.field.as_str())
    }
}

impl Serialize for SortKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SortKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SortKey::parse(&text).map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
    }
}

/// The default list of an entity: its columns and sort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListViewDoc {
    pub entity: Ident,
    pub columns: Vec<Ident>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
}

/// A panel of related records on a record's view: the records of `source` whose `lookup`
/// field points at the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub name: Ident,
    pub label: Labels,
    pub source: Ident,
    pub lookup: Ident,
    pub columns: Vec<Ident>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    /// The panel's records (activities, say) also appear on the record's timeline.
    #[serde(default, skip_serializing_if = "is_false")]
    pub timeline: bool,
}

/// The related panels of one entity's record view, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedDoc {
    pub entity: Ident,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageCategory {
    Open,
    Won,
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: Ident,
    pub label: Labels,
    /// Percent chance of winning at this stage, 0..=100.
    pub probability: u8,
    pub category: StageCategory,
    /// Fields a record must have filled in to enter this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSetDoc {
    pub name: Ident,
    pub label: Labels,
    pub stages: Vec<Stage>,
    /// Whether a record may carry a probability other than its stage's.
    #[serde(default, skip_serializing_if = "is_false")]
    pub probability_override: bool,
}

/// The stage sets of a stage field by the value of a select field of the same record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSetBy {
    pub field: Ident,
    pub sets: std::collections::BTreeMap<String, Ident>,
}

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptEvent {
    /// Raises field errors; the save is refused if there are any.
    Validate,
    /// Sets or derives fields of the record being saved.
    BeforeSave,
    /// Creates related records or notifies people; applied in the save's transaction.
    AfterSave,
    /// Refuses a move between stages with a reason.
    BeforeStageMove,
    /// Computes `field` on every save; the value is stored, so it sorts and filters.
    Formula,
    /// Fills `field` of a new record when the caller leaves it empty.
    Default,
    /// Chooses the owner of a new record (sets `record.owner`).
    Assignment,
    /// Runs on a schedule (`schedule`), e.g. each morning's reminders.
    Scheduled,
    /// Creates records or notifies people when a record goes to the recycle bin; applied in
    /// the deletion's transaction.
    AfterDelete,
    /// The same when a record comes back out of the recycle bin.
    AfterRestore,
}

impl ScriptEvent {
    /// Every event, in the order an editor offers them.
    pub const ALL: [ScriptEvent; 10] = [
        ScriptEvent::Validate,
        ScriptEvent::BeforeSave,
        ScriptEvent::AfterSave,
        ScriptEvent::BeforeStageMove,
        ScriptEvent::Formula,
        ScriptEvent::Default,
        ScriptEvent::Assignment,
        ScriptEvent::Scheduled,
        ScriptEvent::AfterDelete,
        ScriptEvent::AfterRestore,
    ];

    /// The event's name in metadata.
    pub fn name(self) -> &'static str {
        match self {
            ScriptEvent::Validate => "validate",
            ScriptEvent::BeforeSave => "before_save",
            ScriptEvent::AfterSave => "after_save",
            ScriptEvent::BeforeStageMove => "before_stage_move",
            ScriptEvent::Formula => "formula",
            ScriptEvent::Default => "default",
            ScriptEvent::Assignment => "assignment",
            ScriptEvent::Scheduled => "scheduled",
            ScriptEvent::AfterDelete => "after_delete",
            ScriptEvent::AfterRestore => "after_restore",
        }
    }
}

/// A rule: a Rhai script attached to an entity's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptDoc {
    pub name: Ident,
    pub label: Labels,
    /// The entity whose records the rule sees; a scheduled rule may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<Ident>,
    pub event: ScriptEvent,
    /// The field a formula or default computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Ident>,
    /// When a scheduled rule runs: `daily HH:MM` (the server's business time zone) or
    /// `every N minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Rules of one event run in this order (then by name).
    #[serde(default)]
    pub order: i32,
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// The Rhai source; in a package folder it may instead be `scripts/<package>/<name>.rhai`.
    #[serde(default)]
    pub source: String,
}

/// A print template (打印模板): MiniJinja source rendered against one record of `entity` and
/// its lines, for a printable page (a quote, an order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintTemplateDoc {
    pub name: Ident,
    pub label: Labels,
    pub entity: Ident,
    /// The template, given the data `metadata/schema/print_data.schema.json` describes.
    pub source: String,
    /// The template printed when none is chosen; at most one per entity.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
}

/// A web-to-lead form (网站表单, M-5): the lead fields a company's website asks for, and what
/// the visitor sees once they sent it. Each submission becomes a lead through the save
/// pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFormDoc {
    pub name: Ident,
    pub label: Labels,
    /// The lead fields asked, in order.
    pub fields: Vec<WebFormField>,
    /// The campaign the leads come from: a campaign record's id in this installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<uuid::Uuid>,
    /// The survey (市场调查) asked after the fields: a survey record's id in this installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<uuid::Uuid>,
    /// The login of the user the leads are given to; the first administrator when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the visitor reads after sending the form.
    pub thanks: Labels,
    /// Where the visitor's browser goes after sending the form, instead of the thanks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// A form switched off takes no submissions.
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// One field of a web form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFormField {
    pub field: Ident,
    /// The question on the form; the field's label when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Labels>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// A webhook subscription (P-10): the events of an entity's records (those matching a filter,
/// when it has one) posted to a URL, signed with the webhook's secret, which is kept apart
/// from the metadata (sealed, per installation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDoc {
    pub name: Ident,
    pub label: Labels,
    pub entity: Ident,
    pub events: Vec<WebhookEvent>,
    /// A filter tree over the entity's fields, as in lists: only matching records are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    /// Where the events are posted (`https://`, or `http://` on a trusted network).
    pub url: String,
    /// A webhook switched off posts nothing; events while it is off are not posted later.
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// What happened to a record, as a webhook subscribes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    Created,
    Updated,
    Deleted,
    Restored,
    /// A stage field changed (an opportunity moved to 方案报价).
    StageMoved,
    /// The record's approval reached approved.
    Approved,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 6] = [
        WebhookEvent::Created,
        WebhookEvent::Updated,
        WebhookEvent::Deleted,
        WebhookEvent::Restored,
        WebhookEvent::StageMoved,
        WebhookEvent::Approved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Created => "created",
            WebhookEvent::Updated => "updated",
            WebhookEvent::Deleted => "deleted",
            WebhookEvent::Restored => "restored",
            WebhookEvent::StageMoved => "stage_moved",
            WebhookEvent::Approved => "approved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A sync mapping (I-1): the rows of a table of an external database (an ERP's) and the
/// records of an entity, kept alike by a key — the ERP's code, remembered per record — in
/// one direction. The connection's address is kept sealed apart from the metadata, per
/// installation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncDoc {
    pub name: Ident,
    pub label: Labels,
    /// The external database, by the name its address is kept under.
    pub connection: Ident,
    pub entity: Ident,
    #[serde(default, skip_serializing_if = "SyncDirection::is_from_erp")]
    pub direction: SyncDirection,
    /// The external table (or `schema.table`).
    pub table: String,
    pub key: SyncKey,
    /// A column that grows with every change of a row (a modification time): a run reads
    /// only the rows changed since the last one. Without it every run compares all rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    pub fields: Vec<SyncField>,
    /// Whether a row without a record makes one; off, rows only update the records they
    /// match (the execution of orders made here, read back).
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub creates: bool,
    /// What becomes of a record whose row is gone from the source, seen when all rows are
    /// compared.
    #[serde(default, skip_serializing_if = "OnMissing::is_delete")]
    pub on_missing: OnMissing,
    /// `every N minutes` or `daily HH:MM` (Beijing time); run on demand only without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Towards the ERP: only the records matching this filter tree are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// Which side a sync mapping writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncDirection {
    /// ERP rows make and change records.
    #[default]
    FromErp,
    /// Records make and change ERP rows.
    ToErp,
}

impl SyncDirection {
    fn is_from_erp(&self) -> bool {
        *self == SyncDirection::FromErp
    }
}

/// What becomes of a record whose source row is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// It goes to the recycle bin, and comes back if the row does.
    #[default]
    Delete,
    Keep,
}

impl OnMissing {
    fn is_delete(&self) -> bool {
        *self == OnMissing::Delete
    }
}

/// How rows and records are matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncKey {
    /// The ERP's code column.
    pub column: String,
    /// A field of ours holding the same code: records not yet matched are found by it, and
    /// new ones get it (towards the ERP, it gives the code of a new row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Ident>,
}

/// A column and the field it is kept in, with the transforms between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncField {
    pub field: Ident,
    pub column: String,
    /// Spaces around the ERP's text dropped (fixed-width CHAR columns pad with them).
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub trim: bool,
    /// The ERP's codes and the values of ours they stand for (a select's options).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub codes: std::collections::BTreeMap<String, String>,
    /// Ours = the ERP's × factor (a unit conversion: 1000 for tonnes kept in kilograms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<serde_json::Number>,
    /// How the ERP writes a date or time, in chrono's format (`%Y%m%d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    /// For a reference: the sync mapping whose code the column holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Ident>,
}

fn enabled() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_schema_lists_every_event_by_its_name() {
        let schema = crate::schema::schema_json(DocKind::Script);
        let listed: Vec<&str> = schema["properties"]["event"]["enum"]
            .as_array()
            .expect("the event is an enum")
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        let events: Vec<&str> = ScriptEvent::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(listed, events);
        for event in ScriptEvent::ALL {
            assert_eq!(serde_json::to_value(event).unwrap(), event.name());
        }
    }
}
