//! `crm template export`: entities an administrator built in the studio, with what they
//! need, written as a template folder to version and ship. What the core package has is not
//! repeated: a core document the modules changed is written as an extension holding only
//! the fields, sections, panels and grants that differ from the core's.

use std::path::Path;

use crm_model::threeway::{self, ItemKey};
use crm_model::{Catalog, DocKind};
use serde_json::{Value as Json, json};

use crate::package::{Package, module_docs, write_folder};

/// Writes the modules as a template folder; returns how many documents it wrote.
pub fn export(catalog: &Catalog, modules: &[String], name: &str, dir: &Path) -> anyhow::Result<usize> {
    if let Some(unknown) = modules.iter().find(|m| catalog.entity(m).is_none()) {
        anyhow::bail!("no entity `{unknown}`");
    }
    let core = Package::core()?.docs;
    let core_items = threeway::items_of(&core);
    let mut docs = module_docs(catalog, modules);
    let entities: Vec<String> =
        docs.iter().filter(|(kind, _, _)| *kind == DocKind::Entity).map(|(_, name, _)| name.to_string()).collect();
    // Each role's grants on the modules' entities: a role of the core is extended, a role of
    // the administrator's own comes whole.
    for (_, role, body) in catalog.docs().iter_json().into_iter().filter(|(kind, _, _)| *kind == DocKind::Role) {
        let grants: serde_json::Map<String, Json> = body["entities"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(entity, _)| entities.contains(entity))
            .map(|(entity, grant)| (entity.clone(), grant.clone()))
            .collect();
        if !grants.is_empty() {
            docs.push((DocKind::Role, role, body));
        }
    }
    let mut files = Vec::new();
    for (kind, doc_name, body) in docs {
        let header = ItemKey { kind, doc: doc_name.to_string(), part: None };
        if !core_items.contains_key(&header.to_string()) {
            files.push((kind, doc_name.to_string(), body));
            continue;
        }
        let mut live = crm_model::Docs::default();
        live.insert_json(kind, &body).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut changed: Vec<threeway::Item> = threeway::items_of(&live)
            .into_values()
            .filter(|item| {
                let key = &item.key;
                key.part.is_some()
                    && (kind != DocKind::Role || entities.iter().any(|e| key.part.as_ref().is_some_and(|p| &p.1 == e)))
                    && core_items.get(&key.to_string()).is_none_or(|core| core.value != item.value)
            })
            .collect();
        changed.sort_by_key(|item| item.order);
        let changed: Vec<(ItemKey, Json)> = changed.into_iter().map(|item| (item.key, item.value)).collect();
        if !changed.is_empty() {
            files.push((kind, format!("extends/{doc_name}"), threeway::partial(kind, doc_name.as_str(), &changed)));
        }
    }
    let manifest = json!({
        "name": name,
        "version": "1.0.0",
        "label": {"zh-CN": name, "en": name},
        "requires": ["core"],
        "description": format!("Exported from catalog version {}: {}", catalog.version, modules.join(", ")),
    });
    write_folder(dir, "../../schema", &manifest, files)
}
