//! Metadata packages: folders of JSON documents (`metadata/core`, industry templates, exports)
//! that are installed by merging them into the live catalog.

use std::path::Path;

use crm_model::{Catalog, Docs, MetaError};
use serde_json::Value as Json;

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

    fn from_files(files: impl IntoIterator<Item = (String, String)>) -> Result<Self, Vec<MetaError>> {
        let (manifest, docs) = Docs::from_package_files(files)?;
        Ok(Self { manifest, docs })
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
        next.fill_defaults();
        next
    }

    /// Writes the live catalog as a package folder, in the format of `metadata/core`.
    pub fn export(catalog: &Catalog, dir: &Path, name: &str) -> anyhow::Result<usize> {
        let manifest = serde_json::json!({
            "$schema": "../schema/package.schema.json",
            "name": name,
            "version": "1.0.0",
            "label": {"zh-CN": "导出的元数据", "en": "Exported metadata"},
            "description": format!("Exported from catalog version {}", catalog.version),
        });
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
        let mut written = 0;
        for (kind, doc_name, body) in catalog.docs().iter_json() {
            let folder = dir.join(kind.folder());
            std::fs::create_dir_all(&folder)?;
            let mut document = serde_json::Map::new();
            document.insert("$schema".into(), Json::String(format!("../../schema/{}", kind.schema_file())));
            if let Json::Object(fields) = body {
                document.extend(fields);
            }
            // A rule's source goes in its own file, where editors know it as Rhai.
            if kind == crm_model::DocKind::Script
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

fn describe_error(error: &crate::error::ApiError) -> String {
    match error {
        crate::error::ApiError::InvalidMetadata(errors) => {
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        }
        other => other.to_string(),
    }
}
