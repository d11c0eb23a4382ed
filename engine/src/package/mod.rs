//! Metadata packages: folders of JSON documents (`metadata/core`, industry templates, exports)
//! that are installed by merging them into the live catalog.

use std::path::Path;

use crm_model::threeway;
use crm_model::{Catalog, DocKind, Docs, MetaError};
use serde_json::Value as Json;

use crate::app::App;
use crate::error::ApiResult;

pub mod records;

/// The core package, embedded so the binary installs it wherever it runs.
#[derive(rust_embed::RustEmbed)]
#[folder = "metadata/core/"]
struct CoreFiles;

/// The core package's rules, shipped as Rhai files under `scripts/core/`.
#[derive(rust_embed::RustEmbed)]
#[folder = "scripts/core/"]
struct CoreScripts;

pub struct Package {
    pub manifest: Json,
    pub docs: Docs,
    /// Partial documents adding fields, sections, panels or grants to documents the package
    /// does not own (`extends/entities/customer.json`): see [`crm_model::threeway`].
    pub extensions: Vec<(DocKind, Json)>,
    /// Records the package's configuration needs from the start (`data/<entity>.json`: an
    /// array of records), such as the service levels: created once, when it is installed.
    pub data: Vec<(String, Vec<Json>)>,
    /// Example records to try the package with (`sample/<entity>.json`), installed on demand.
    pub sample: Vec<(String, Vec<Json>)>,
}

impl Package {
    pub fn core() -> anyhow::Result<Self> {
        let files = CoreFiles::iter().filter_map(|path| {
            let file = CoreFiles::get(&path)?;
            Some((path.to_string(), String::from_utf8_lossy(&file.data).into_owned()))
        });
        let scripts = CoreScripts::iter().filter_map(|path| {
            let file = CoreScripts::get(&path)?;
            Some((format!("scripts/{path}"), String::from_utf8_lossy(&file.data).into_owned()))
        });
        let files = files.chain(scripts);
        Self::from_files(files).map_err(|errors| anyhow::anyhow!("the embedded core package is invalid: {errors:?}"))
    }

    /// Reads a package folder.
    pub fn load(dir: &Path) -> anyhow::Result<Result<Self, Vec<MetaError>>> {
        let mut files = Vec::new();
        let mut folders = vec![dir.to_owned()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).map_err(|e| anyhow::anyhow!("{}: {e}", folder.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "json" || e == "rhai") {
                    let relative = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
                    files.push((relative, std::fs::read_to_string(&path)?));
                }
            }
        }
        Ok(Self::from_files(files))
    }

    pub fn from_files(files: impl IntoIterator<Item = (String, String)>) -> Result<Self, Vec<MetaError>> {
        let files: Vec<(String, String)> = files.into_iter().collect();
        let (mut data, mut sample, mut extensions) = (Vec::new(), Vec::new(), Vec::new());
        let mut errors = Vec::new();
        let invalid = |path: &str, message: String| MetaError { doc: path.to_owned(), path: String::new(), message };
        for (path, text) in &files {
            let Some((folder, rest)) = path.split_once('/') else { continue };
            let Some(stem) = rest.strip_suffix(".json") else { continue };
            match folder {
                "data" | "sample" => match serde_json::from_str::<Vec<Json>>(text) {
                    Ok(records) if folder == "data" => data.push((stem.to_owned(), records)),
                    Ok(records) => sample.push((stem.to_owned(), records)),
                    Err(e) => errors.push(invalid(path, format!("an array of records: {e}"))),
                },
                "extends" => {
                    let kind = stem
                        .split_once('/')
                        .and_then(|(kind, _)| DocKind::ALL.into_iter().find(|k| k.folder() == kind));
                    match (kind, serde_json::from_str::<Json>(text)) {
                        (Some(kind), Ok(doc)) => extensions.push((kind, doc)),
                        (None, _) => {
                            errors.push(invalid(path, "extends/ holds folders named after kinds of document".into()))
                        }
                        (_, Err(e)) => errors.push(invalid(path, e.to_string())),
                    }
                }
                _ => {}
            }
        }
        let (manifest, docs) = Docs::from_package_files(files)?;
        if !errors.is_empty() {
            return Err(errors);
        }
        data.sort_by(|a, b| a.0.cmp(&b.0));
        sample.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { manifest, docs, extensions, data, sample })
    }

    pub fn name(&self) -> &str {
        self.manifest["name"].as_str().unwrap_or_default()
    }

    pub fn version(&self) -> &str {
        self.manifest["version"].as_str().unwrap_or_default()
    }

    /// The package's items over the live documents: those of its own documents and of its
    /// extensions.
    pub fn items(&self, live: &Docs) -> Result<threeway::Items, Vec<MetaError>> {
        let mut items = threeway::items_of(&self.docs);
        items.extend(threeway::extension_items(live, &self.extensions)?);
        Ok(items)
    }

    /// Creates the package's records (and its sample records, when asked) through the save
    /// pipeline, in one unit: all of them or none. Returns how many were created.
    pub async fn install_data(&self, app: &App, with_sample: bool) -> ApiResult<usize> {
        let records = self.data.iter().chain(self.sample.iter().filter(|_| with_sample));
        records::create(app, records, &mut Default::default()).await
    }

    /// The live documents with this package installed over them: the package's documents
    /// replace those of the same name, except that fields an administrator added to an
    /// entity and the package does not know are kept.
    pub fn merge_into(&self, current: &Docs) -> Docs {
        let mut next = current.clone();
        next.stage_sets.extend(self.docs.stage_sets.clone());
        for (name, entity) in &self.docs.entities {
            let mut merged = entity.clone();
            if let Some(live) = current.entities.get(name) {
                merged
                    .fields
                    .extend(live.fields.iter().filter(|f| !entity.fields.iter().any(|p| p.name == f.name)).cloned());
            }
            next.entities.insert(name.clone(), merged);
        }
        next.layouts.extend(self.docs.layouts.clone());
        next.lists.extend(self.docs.lists.clone());
        next.related.extend(self.docs.related.clone());
        next.roles.extend(self.docs.roles.clone());
        next.scripts.extend(self.docs.scripts.clone());
        next.reports.extend(self.docs.reports.clone());
        next.dashboards.extend(self.docs.dashboards.clone());
        next.print_templates.extend(self.docs.print_templates.clone());
        next.web_forms.extend(self.docs.web_forms.clone());
        next.webhooks.extend(self.docs.webhooks.clone());
        next.syncs.extend(self.docs.syncs.clone());
        next.fill_defaults();
        next
    }

    /// Writes the live catalog as a package folder, in the format of `metadata/core`.
    pub fn export(catalog: &Catalog, dir: &Path, name: &str) -> anyhow::Result<usize> {
        let manifest = serde_json::json!({
            "name": name,
            "version": "1.0.0",
            "label": {"zh-CN": "导出的元数据", "en": "Exported metadata"},
            "description": format!("Exported from catalog version {}", catalog.version),
        });
        write_folder(
            dir,
            "../schema",
            &manifest,
            catalog.docs().iter_json().into_iter().map(|(k, n, b)| (k, n.to_string(), b)),
        )
    }
}

/// Writes a package folder: the manifest and each document in its kind's folder (a rule's
/// source beside it, in its own file where editors know it as Rhai), each naming its JSON
/// Schema under `schemas` (relative to the folder). Documents under `extends/` are given as
/// `extends/<folder>` kinds by the caller's names. Returns how many documents it wrote.
pub fn write_folder(
    dir: &Path,
    schemas: &str,
    manifest: &Json,
    docs: impl IntoIterator<Item = (DocKind, String, Json)>,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut head = serde_json::Map::new();
    head.insert("$schema".into(), Json::String(format!("{schemas}/package.schema.json")));
    head.extend(manifest.as_object().cloned().unwrap_or_default());
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&Json::Object(head))? + "\n")?;
    let mut written = 0;
    for (kind, doc_name, body) in docs {
        // An extension is a partial document: no schema of its own, its rule source inline.
        let (folder, whole) = match doc_name.split_once('/') {
            Some(("extends", _)) => (dir.join("extends").join(kind.folder()), false),
            _ => (dir.join(kind.folder()), true),
        };
        let doc_name = doc_name.rsplit('/').next().unwrap_or_default().to_owned();
        std::fs::create_dir_all(&folder)?;
        let mut document = serde_json::Map::new();
        if whole {
            document.insert("$schema".into(), Json::String(format!("../{schemas}/{}", kind.schema_file())));
        }
        if let Json::Object(fields) = body {
            document.extend(fields);
        }
        if kind == DocKind::Script
            && whole
            && let Some(Json::String(source)) = document.remove("source")
        {
            std::fs::write(folder.join(format!("{doc_name}.rhai")), source)?;
        }
        let text = serde_json::to_string_pretty(&Json::Object(document))? + "\n";
        std::fs::write(folder.join(format!("{doc_name}.json")), text)?;
        written += 1;
    }
    Ok(written)
}

/// The live metadata (or one entity's module) as one package file: `{"package": manifest,
/// "files": {"entities/x.json": ...}}`, the files of a package folder in one JSON document.
pub fn bundle(catalog: &Catalog, name: &str, module: Option<&str>) -> Json {
    let docs = match module {
        Some(module) => module_docs(catalog, &[module.to_owned()]),
        None => catalog.docs().iter_json(),
    };
    let files: serde_json::Map<String, Json> =
        docs.into_iter().map(|(kind, doc_name, body)| (format!("{}/{doc_name}.json", kind.folder()), body)).collect();
    serde_json::json!({
        "package": {
            "name": name,
            "version": "1.0.0",
            "label": {"zh-CN": "导出的元数据", "en": "Exported metadata"},
            "description": format!("Exported from catalog version {}", catalog.version),
        },
        "files": files,
    })
}

/// The documents of some entities' modules: the entities, their layouts, lists, panels,
/// rules, print templates, webhooks and syncs. A module brings what it needs that a fresh
/// installation (the core package) lacks — the entities its lookups, panels and rollups name,
/// with their own documents — and every stage set its fields name, archived ones too, so
/// that it always installs. Roles are left out: they grant more than the module.
pub fn module_docs(catalog: &Catalog, modules: &[String]) -> Vec<(DocKind, crm_model::Ident, Json)> {
    let entities = needed_entities(catalog, modules);
    let used_sets: Vec<String> = entities
        .iter()
        .filter_map(|m| catalog.entity(m))
        .flat_map(|e| e.def.fields.iter())
        .flat_map(|f| f.stage_set.iter().chain(f.stage_set_by.iter().flat_map(|by| by.sets.values())))
        .map(ToString::to_string)
        .collect();
    let wanted = |kind: DocKind, doc_name: &str, body: &Json| match kind {
        DocKind::StageSet => used_sets.iter().any(|s| s == doc_name),
        DocKind::Role | DocKind::Report | DocKind::Dashboard => false,
        DocKind::WebForm => entities.iter().any(|m| m == crm_model::WEB_FORM_ENTITY),
        DocKind::Script | DocKind::PrintTemplate | DocKind::Webhook | DocKind::Sync => {
            body.get("entity").and_then(Json::as_str).is_some_and(|e| entities.iter().any(|m| m == e))
        }
        _ => entities.iter().any(|m| m == doc_name),
    };
    catalog
        .docs()
        .iter_json()
        .into_iter()
        .filter(|(kind, doc_name, body)| wanted(*kind, doc_name.as_str(), body))
        .collect()
}

/// The modules' entities and, transitively, the entities they name: the targets of their
/// lookups, the sources of their panels and rollups. A core entity a panel or rollup reads
/// from is named too (it holds the lookup back, which the module may have added) but not
/// walked: a fresh installation has the rest of the core.
fn needed_entities(catalog: &Catalog, modules: &[String]) -> Vec<String> {
    let core = Package::core().map(|p| p.docs).unwrap_or_default();
    let is_core = |name: &str| core.entities.keys().any(|k| k.as_str() == name);
    let mut needed = modules.to_vec();
    let mut i = 0;
    while i < needed.len() {
        if let Some(entity) = catalog.entity(&needed[i]).filter(|e| !is_core(e.name().as_str()) || i < modules.len()) {
            let targets = entity.def.fields.iter().filter_map(|f| f.target.as_ref().map(ToString::to_string));
            let targets: Vec<String> = targets.filter(|t| !is_core(t)).collect();
            let rollups = entity.def.fields.iter().filter_map(|f| f.rollup.as_ref().map(|r| r.from.to_string()));
            let panels = entity.related.panels.iter().map(|p| p.source.to_string());
            for name in targets.into_iter().chain(rollups).chain(panels) {
                if !needed.contains(&name) {
                    needed.push(name);
                }
            }
        }
        i += 1;
    }
    needed
}

/// A package file made by [`bundle`], read back.
pub fn unbundle(file: &Json) -> Result<Package, Vec<MetaError>> {
    let invalid =
        |message: &str| vec![MetaError { doc: "package".into(), path: String::new(), message: message.into() }];
    let manifest = file.get("package").ok_or_else(|| invalid("a package file has a `package` manifest"))?;
    let files = file.get("files").and_then(Json::as_object).ok_or_else(|| invalid("a package file has `files`"))?;
    let mut entries = vec![("package.json".to_owned(), manifest.to_string())];
    for (path, body) in files {
        let text = match body {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        };
        entries.push((path.clone(), text));
    }
    Package::from_files(entries)
}

/// `crm meta apply DIR`: validate → diff → print the plan → apply.
pub async fn apply_dir(app: &crate::App, dir: &Path, dry_run: bool) -> anyhow::Result<()> {
    let package = match Package::load(dir)? {
        Ok(package) => package,
        Err(errors) => {
            for error in &errors {
                eprintln!("invalid: {error}");
            }
            anyhow::bail!("{} is not a valid package ({} problems)", dir.display(), errors.len());
        }
    };
    let current = app.catalog();
    let (_, plan) = crate::metadata::plan_docs(&current, package.merge_into(current.docs()))
        .map_err(|e| anyhow::anyhow!("{}", describe_error(&e)))?;
    if plan.is_empty() {
        println!("nothing to change: the package is installed");
        return Ok(());
    }
    println!("plan ({} steps):", plan.tables.len() + plan.docs.len());
    for line in plan.describe() {
        println!("  {line}");
    }
    if dry_run {
        println!("dry run: nothing applied");
        return Ok(());
    }
    crate::metadata::apply_docs(app, None, |docs| Ok(package.merge_into(docs)))
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe_error(&e)))?;
    println!("applied; catalog version {}", app.catalog().version);
    Ok(())
}

pub(crate) fn describe_error(error: &crate::error::ApiError) -> String {
    match error {
        crate::error::ApiError::InvalidMetadata(errors) => {
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        }
        other => other.to_string(),
    }
}
