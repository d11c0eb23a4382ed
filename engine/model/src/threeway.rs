//! Three-way merges of packages. A package is cut into items — a document's own settings, and
//! each field, layout section, related panel and role grant in it — so that an industry
//! template can add a field to the customer without owning the customer, and an upgrade can
//! take what the template changed while keeping what an administrator changed. Comparing the
//! version installed (`base`), the package (`theirs`) and the live metadata (`ours`) item by
//! item says what to add, change or remove, what to keep, and what conflicts.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use crate::catalog::{Docs, MetaError};
use crate::meta::DocKind;

/// The parts of a document that are items of their own: an array of objects named by
/// `name`, or (for a role's grants) an object keyed by entity.
struct Part {
    /// How the part is named in an item's key.
    name: &'static str,
    path: &'static [&'static str],
    keyed: bool,
}

const ENTITY_PARTS: &[Part] = &[
    Part { name: "fields", path: &["fields"], keyed: false },
    Part { name: "duplicates", path: &["duplicates"], keyed: false },
];
const LAYOUT_PARTS: &[Part] = &[
    Part { name: "edit", path: &["edit", "sections"], keyed: false },
    Part { name: "view", path: &["view", "sections"], keyed: false },
];
const RELATED_PARTS: &[Part] = &[Part { name: "panels", path: &["panels"], keyed: false }];
const ROLE_PARTS: &[Part] = &[Part { name: "entities", path: &["entities"], keyed: true }];

fn parts(kind: DocKind) -> &'static [Part] {
    match kind {
        DocKind::Entity => ENTITY_PARTS,
        DocKind::Layout => LAYOUT_PARTS,
        DocKind::Related => RELATED_PARTS,
        DocKind::Role => ROLE_PARTS,
        _ => &[],
    }
}

/// One item: a document's own settings (`part` is `None`) or one element of a part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemKey {
    pub kind: DocKind,
    pub doc: String,
    pub part: Option<(&'static str, String)>,
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.folder(), self.doc)?;
        if let Some((part, name)) = &self.part {
            write!(f, "/{part}/{name}")?;
        }
        Ok(())
    }
}

impl ItemKey {
    /// Reads a key as [`fmt::Display`] writes it: `entities/customer/fields/credit_level`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut pieces = text.split('/');
        let folder = pieces.next()?;
        let kind = DocKind::ALL.into_iter().find(|k| k.folder() == folder)?;
        let doc = pieces.next()?.to_owned();
        let part = match (pieces.next(), pieces.next()) {
            (None, None) => None,
            (Some(part), Some(name)) => Some((parts(kind).iter().find(|p| p.name == part)?.name, name.to_owned())),
            _ => return None,
        };
        if pieces.next().is_some() {
            return None;
        }
        Some(ItemKey { kind, doc, part })
    }
}

/// Where a new element goes in its part: the package's order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    First,
    After(String),
    /// The first element an extension adds: after what is there.
    Last,
}

/// One item of a package, in the form the live metadata serializes to.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: ItemKey,
    pub value: Json,
    /// Its place among the package's items, and in its part.
    pub order: usize,
    pub place: Place,
}

/// A package's items by key.
pub type Items = BTreeMap<String, Item>;

impl Item {
    /// An item as stored, without the package's order.
    pub fn stored(key: ItemKey, value: Json) -> Self {
        Item { key, value, order: 0, place: Place::Last }
    }
}

fn at<'a>(doc: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(doc, |node, step| node.get(step))
}

fn at_mut<'a>(doc: &'a mut Json, path: &[&str]) -> Option<&'a mut Json> {
    path.iter().try_fold(doc, |node, step| node.get_mut(*step))
}

/// The elements of a part, by name.
fn elements(doc: &Json, part: &Part) -> Vec<(String, Json)> {
    match at(doc, part.path) {
        Some(Json::Object(map)) if part.keyed => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(Json::Array(list)) if !part.keyed => {
            list.iter().filter_map(|e| Some((e.get("name")?.as_str()?.to_owned(), e.clone()))).collect()
        }
        _ => Vec::new(),
    }
}

/// A document with its parts emptied: its own settings.
fn header(kind: DocKind, doc: &Json) -> Json {
    let mut header = doc.clone();
    for part in parts(kind) {
        if let Some(node) = at_mut(&mut header, part.path) {
            *node = if part.keyed { Json::Object(Default::default()) } else { Json::Array(Vec::new()) };
        }
    }
    header
}

fn add(items: &mut Items, key: ItemKey, value: Json, place: Place) {
    let order = items.len();
    items.insert(key.to_string(), Item { key, value, order, place });
}

/// Every item of whole documents: their settings and their parts' elements.
pub fn items_of(docs: &Docs) -> Items {
    let mut items = Items::new();
    for (kind, name, doc) in docs.iter_json() {
        add(&mut items, ItemKey { kind, doc: name.to_string(), part: None }, header(kind, &doc), Place::First);
        for part in parts(kind) {
            let mut place = Place::First;
            for (element, value) in elements(&doc, part) {
                let key = ItemKey { kind, doc: name.to_string(), part: Some((part.name, element.clone())) };
                add(&mut items, key, value, place);
                place = Place::After(element);
            }
        }
    }
    items
}

/// The items of extensions — partial documents that add elements to documents the package
/// does not own (`extends/entities/customer.json` with a `fields` array) — in their live
/// form: each is grafted onto the live document, checked and read back. A document that is
/// not there to extend is an error.
pub fn extension_items(live: &Docs, extensions: &[(DocKind, Json)]) -> Result<Items, Vec<MetaError>> {
    let mut items = Items::new();
    let mut errors = Vec::new();
    for (kind, extension) in extensions {
        let name = extension.get("name").or_else(|| extension.get("entity")).and_then(Json::as_str).unwrap_or("?");
        let Some(mut doc) = live.get_json(*kind, name) else {
            errors.push(MetaError::new(
                *kind,
                name,
                "",
                format!("extends {} `{name}`, which is not installed", kind.as_str()),
            ));
            continue;
        };
        let mut grafted = Vec::new();
        for part in parts(*kind) {
            let mut place = Place::Last;
            for (element, value) in elements(extension, part) {
                put(&mut doc, part, &element, value, &place);
                grafted.push((part, element.clone(), place));
                place = Place::After(element);
            }
        }
        let mut scratch = Docs::default();
        match scratch.insert_json(*kind, &doc) {
            Ok(_) => {
                let checked = scratch.get_json(*kind, name).unwrap_or_default();
                for (part, element, place) in grafted {
                    if let Some((_, value)) = elements(&checked, part).into_iter().find(|(e, _)| *e == element) {
                        let key = ItemKey { kind: *kind, doc: name.to_owned(), part: Some((part.name, element)) };
                        add(&mut items, key, value, place);
                    }
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(items) } else { Err(errors) }
}

/// An extension document holding the given parts' elements of a document: the inverse of
/// [`extension_items`].
pub fn partial(kind: DocKind, doc: &str, items: &[(ItemKey, Json)]) -> Json {
    let naming = if matches!(kind, DocKind::Layout | DocKind::ListView | DocKind::Related) { "entity" } else { "name" };
    let mut out = serde_json::json!({ naming: doc });
    for part in parts(kind) {
        let elements: Vec<&(ItemKey, Json)> =
            items.iter().filter(|(key, _)| key.part.as_ref().is_some_and(|(p, _)| *p == part.name)).collect();
        if elements.is_empty() {
            continue;
        }
        let mut node = &mut out;
        for step in &part.path[..part.path.len() - 1] {
            node = node.as_object_mut().expect("an object").entry(*step).or_insert_with(|| serde_json::json!({}));
        }
        let last = part.path[part.path.len() - 1];
        let value = if part.keyed {
            Json::Object(elements.iter().filter_map(|(k, v)| Some((k.part.as_ref()?.1.clone(), v.clone()))).collect())
        } else {
            Json::Array(elements.iter().map(|(_, v)| v.clone()).collect())
        };
        node.as_object_mut().expect("an object").insert(last.to_owned(), value);
    }
    out
}

/// A field is placed once on a page: where a package's section places a field the page
/// already shows (an administrator added it under the same name), the earlier place stays.
fn place_once(layout: &mut Json, part: &Part) {
    let Some(Json::Array(sections)) = at_mut(layout, part.path) else { return };
    let mut placed = std::collections::HashSet::new();
    for section in sections.iter_mut() {
        if let Some(Json::Array(fields)) = section.get_mut("fields") {
            fields.retain(|item| {
                let name = item.as_str().or_else(|| item.get("field").and_then(Json::as_str)).unwrap_or_default();
                placed.insert(name.to_owned())
            });
        }
    }
}

/// Puts an element into a part: in place of the one of the same name, or where the package
/// has it (after the element before it there, else first or last).
fn put(doc: &mut Json, part: &Part, name: &str, value: Json, place: &Place) {
    let Some(node) = at_mut(doc, part.path) else { return };
    let named = |e: &Json, name: &str| e.get("name").and_then(Json::as_str) == Some(name);
    match node {
        Json::Object(map) if part.keyed => {
            map.insert(name.to_owned(), value);
        }
        Json::Array(list) => match list.iter().position(|e| named(e, name)) {
            Some(at) => list[at] = value,
            None => {
                let at = match place {
                    Place::First => 0,
                    Place::After(before) => list.iter().position(|e| named(e, before)).map_or(list.len(), |i| i + 1),
                    Place::Last => list.len(),
                };
                list.insert(at, value);
            }
        },
        _ => {}
    }
}

/// Takes an element out of a part. A field is archived instead, so its column and data stay.
fn take_out(kind: DocKind, doc: &mut Json, part: &Part, name: &str) {
    let Some(node) = at_mut(doc, part.path) else { return };
    match node {
        Json::Object(map) if part.keyed => {
            map.remove(name);
        }
        Json::Array(list) if kind == DocKind::Entity && part.name == "fields" => {
            if let Some(field) = list.iter_mut().find(|e| e.get("name").and_then(Json::as_str) == Some(name)) {
                field["archived"] = Json::Bool(true);
            }
        }
        Json::Array(list) => list.retain(|e| e.get("name").and_then(Json::as_str) != Some(name)),
        _ => {}
    }
}

/// The live value of an item, if it exists.
pub fn live_item(live: &Docs, key: &ItemKey) -> Option<Json> {
    let doc = live.get_json(key.kind, &key.doc)?;
    match &key.part {
        None => Some(header(key.kind, &doc)),
        Some((part_name, element)) => {
            let part = parts(key.kind).iter().find(|p| p.name == *part_name)?;
            elements(&doc, part).into_iter().find(|(e, _)| e == element).map(|(_, v)| v)
        }
    }
}

/// What installing the package does to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New with the package.
    Add,
    /// The package changed it and the live one is as the package had it.
    Update,
    /// The package no longer has it and the live one is as the package had it.
    Remove,
    /// Changed here since the package installed it, and the package left it alone.
    KeepLocal,
    /// Changed both here and in the package, differently: someone chooses.
    Conflict,
}

/// How a conflict is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Keep the live item.
    Mine,
    /// Take the package's.
    Theirs,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub key: String,
    #[serde(skip)]
    pub item: ItemKey,
    #[serde(skip)]
    pub order: usize,
    #[serde(skip)]
    pub place: Place,
    pub action: Action,
    pub base: Option<Json>,
    pub theirs: Option<Json>,
    pub ours: Option<Json>,
}

/// The steps from `base` (the items of the version installed, empty for a first install) to
/// `theirs`, over what is live. Items where nothing is to be done are left out.
pub fn plan(base: &Items, theirs: &Items, live: &Docs) -> Vec<Step> {
    let mut keys: Vec<&String> = base.keys().chain(theirs.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut steps = Vec::new();
    for key in keys {
        let Some(known) = theirs.get(key).or_else(|| base.get(key)) else { continue };
        let (item, order, place) = (known.key.clone(), known.order, known.place.clone());
        let b = base.get(key).map(|i| i.value.clone());
        let t = theirs.get(key).map(|i| i.value.clone());
        let o = live_item(live, &item);
        // A package installed again over what its removal archived brings it back.
        let restores = b.is_none() && matches!((&t, &o), (Some(t), Some(o)) if unarchived(o) == *t);
        let action = if t == o {
            continue;
        } else if b == o || restores {
            match (&b, &t) {
                (None, _) => Action::Add,
                (_, None) => Action::Remove,
                _ => Action::Update,
            }
        } else if b == t {
            Action::KeepLocal
        } else if t.is_none() && o.as_ref().is_some_and(|o| is_archived_field(&item, o)) {
            // The package dropped a field an administrator had already archived.
            continue;
        } else {
            Action::Conflict
        };
        steps.push(Step { key: key.clone(), item, order, place, action, base: b, theirs: t, ours: o });
    }
    steps
}

/// An entity or field as it was before it was archived.
fn unarchived(value: &Json) -> Json {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove("archived");
    }
    value
}

fn is_archived_field(item: &ItemKey, value: &Json) -> bool {
    item.kind == DocKind::Entity && value.get("archived") == Some(&Json::Bool(true))
}

/// The live documents with the plan's steps applied: additions, updates and removals, and
/// conflicts as `choices` say (unresolved ones are errors). Entities are never removed: the
/// package's fields of one it drops are archived and the entity itself stays.
pub fn apply(live: &Docs, steps: &[Step], choices: &BTreeMap<String, Choice>) -> Result<Docs, Vec<MetaError>> {
    let mut docs: BTreeMap<(DocKind, String), Json> =
        live.iter_json().into_iter().map(|(kind, name, json)| ((kind, name.to_string()), json)).collect();
    let mut errors = Vec::new();
    let mut taken: Vec<&Step> = Vec::new();
    for step in steps {
        match step.action {
            Action::Add | Action::Update | Action::Remove => taken.push(step),
            Action::KeepLocal => {}
            Action::Conflict => match choices.get(&step.key) {
                Some(Choice::Theirs) => taken.push(step),
                Some(Choice::Mine) => {}
                None => errors.push(conflict_error(step)),
            },
        }
    }
    // A document's own settings before its parts, so that a new document exists to put them
    // in; the parts in the package's order, so that they are placed as it has them.
    taken.sort_by_key(|s| (s.item.part.is_some(), s.order));
    // An entity being archived keeps its fields and screens as they are, to come back whole.
    let archived: Vec<&str> = taken
        .iter()
        .filter(|s| s.item.kind == DocKind::Entity && s.item.part.is_none() && s.theirs.is_none())
        .map(|s| s.item.doc.as_str())
        .collect();
    let screens = [DocKind::Entity, DocKind::Layout, DocKind::ListView, DocKind::Related];
    taken.retain(|s| {
        s.item.part.is_none()
            || s.theirs.is_some()
            || !screens.contains(&s.item.kind)
            || !archived.contains(&s.item.doc.as_str())
    });
    for step in taken {
        let doc_key = (step.item.kind, step.item.doc.clone());
        match (&step.item.part, &step.theirs) {
            (None, Some(header)) => {
                let merged = match docs.get(&doc_key) {
                    Some(current) => {
                        let mut merged = header.clone();
                        for part in parts(step.item.kind) {
                            if let (Some(slot), Some(value)) = (at_mut(&mut merged, part.path), at(current, part.path))
                            {
                                *slot = value.clone();
                            }
                        }
                        merged
                    }
                    None => header.clone(),
                };
                docs.insert(doc_key, merged);
            }
            // An entity is never removed: it is archived with its records, and its screens
            // stay with it.
            (None, None) if step.item.kind == DocKind::Entity => {
                if let Some(doc) = docs.get_mut(&doc_key) {
                    doc["archived"] = Json::Bool(true);
                }
            }
            // Stage sets stay too: archived fields still name theirs.
            (None, None)
                if matches!(
                    step.item.kind,
                    DocKind::Layout | DocKind::ListView | DocKind::Related | DocKind::StageSet
                ) => {}
            (None, None) => {
                docs.remove(&doc_key);
            }
            (Some((part_name, element)), theirs) => {
                let Some(part) = parts(step.item.kind).iter().find(|p| p.name == *part_name) else { continue };
                let Some(doc) = docs.get_mut(&doc_key) else { continue };
                match theirs {
                    Some(value) => put(doc, part, element, value.clone(), &step.place),
                    None => take_out(step.item.kind, doc, part, element),
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for ((kind, _), doc) in docs.iter_mut().filter(|((kind, _), _)| *kind == DocKind::Layout) {
        for part in parts(*kind) {
            place_once(doc, part);
        }
    }
    let mut next = Docs::default();
    for kind in DocKind::ALL {
        for ((doc_kind, _), json) in docs.iter().filter(|((k, _), _)| *k == kind) {
            if let Err(e) = next.insert_json(*doc_kind, json) {
                errors.extend(e);
            }
        }
    }
    next.fill_defaults();
    if errors.is_empty() { Ok(next) } else { Err(errors) }
}

/// The path of the error an unchosen conflict is.
pub const CONFLICT: &str = "/conflict";

fn conflict_error(step: &Step) -> MetaError {
    MetaError::new(
        step.item.kind,
        &step.item.doc,
        CONFLICT,
        format!("`{}` was changed both here and in the package; choose which to keep", step.key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A package's documents, as read from its folder.
    fn docs(files: &[(&str, Json)]) -> Docs {
        let mut docs = Docs::default();
        for (kind, json) in files {
            docs.insert_json(DocKind::parse(kind).unwrap(), json).unwrap();
        }
        docs
    }

    /// Live documents: every entity has its screens.
    fn live(files: &[(&str, Json)]) -> Docs {
        let mut docs = docs(files);
        docs.fill_defaults();
        docs
    }

    fn entity(fields: Json) -> Json {
        json!({"name": "member", "label": {"zh-CN": "会员", "en": "Member"}, "title_field": "name", "fields": fields})
    }

    fn text(name: &str, zh: &str) -> Json {
        json!({"name": name, "type": "text", "label": {"zh-CN": zh, "en": name}})
    }

    #[test]
    fn keys_read_back_as_written() {
        for key in ["entities/customer", "entities/customer/fields/credit_level", "roles/sales_rep/entities/member"] {
            assert_eq!(ItemKey::parse(key).unwrap().to_string(), key);
        }
        assert!(ItemKey::parse("entities/customer/nothing/x").is_none());
        assert!(ItemKey::parse("nowhere/customer").is_none());
    }

    #[test]
    fn an_upgrade_takes_the_packages_changes_and_keeps_the_administrators() {
        let v1 = docs(&[("entity", entity(json!([text("name", "名称"), text("level", "等级")])))]);
        let v2 =
            docs(&[("entity", entity(json!([text("name", "会员名称"), text("level", "等级"), text("card", "卡号")])))]);
        // An administrator renamed `level` and added a field of their own.
        let live =
            live(&[("entity", entity(json!([text("name", "名称"), text("level", "会员等级"), text("mine", "备注")])))]);
        let steps = plan(&items_of(&v1), &items_of(&v2), &live);
        let actions: BTreeMap<&str, Action> = steps.iter().map(|s| (s.key.as_str(), s.action)).collect();
        assert_eq!(actions.get("entities/member/fields/name"), Some(&Action::Update));
        assert_eq!(actions.get("entities/member/fields/card"), Some(&Action::Add));
        assert_eq!(actions.get("entities/member/fields/level"), Some(&Action::KeepLocal));
        assert!(!actions.contains_key("entities/member/fields/mine"));
        let next = apply(&live, &steps, &BTreeMap::new()).unwrap();
        let fields: Vec<(String, String)> = next.entities["member"]
            .fields
            .iter()
            .map(|f| (f.name.to_string(), f.label.get("zh-CN").to_owned()))
            .collect();
        // The new field goes where the package has it: after `level`.
        let expected = [("name", "会员名称"), ("level", "会员等级"), ("card", "卡号"), ("mine", "备注")];
        assert_eq!(fields, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn a_conflict_is_refused_until_chosen_and_a_dropped_field_is_archived() {
        let v1 = docs(&[("entity", entity(json!([text("name", "名称"), text("level", "等级")])))]);
        let v2 = docs(&[("entity", entity(json!([text("name", "客户名称")])))]);
        let live = live(&[("entity", entity(json!([text("name", "会员"), text("level", "等级")])))]);
        let steps = plan(&items_of(&v1), &items_of(&v2), &live);
        let conflict = steps.iter().find(|s| s.action == Action::Conflict).unwrap();
        assert_eq!(conflict.key, "entities/member/fields/name");
        assert!(apply(&live, &steps, &BTreeMap::new()).is_err());
        let mine = BTreeMap::from([(conflict.key.clone(), Choice::Mine)]);
        let next = apply(&live, &steps, &mine).unwrap();
        let member = &next.entities["member"];
        assert_eq!(member.fields[0].label.get("zh-CN"), "会员");
        assert!(member.fields[1].archived, "a field the package dropped is archived, not deleted");
        let theirs = BTreeMap::from([(conflict.key.clone(), Choice::Theirs)]);
        assert_eq!(apply(&live, &steps, &theirs).unwrap().entities["member"].fields[0].label.get("zh-CN"), "客户名称");
    }

    #[test]
    fn an_extension_adds_to_a_document_it_does_not_own_and_a_clash_is_a_conflict() {
        let live = live(&[("entity", entity(json!([text("name", "名称"), text("level", "级别")])))]);
        let extension = json!({"name": "member", "fields": [text("balance", "余额"), text("level", "等级")]});
        let theirs = extension_items(&live, &[(DocKind::Entity, extension)]).unwrap();
        let steps = plan(&Items::new(), &theirs, &live);
        let actions: Vec<(&str, Action)> = steps.iter().map(|s| (s.key.as_str(), s.action)).collect();
        assert_eq!(
            actions,
            [("entities/member/fields/balance", Action::Add), ("entities/member/fields/level", Action::Conflict)]
        );
        let missing = json!({"name": "nobody", "fields": []});
        assert!(extension_items(&live, &[(DocKind::Entity, missing)]).is_err());
    }
}
