//! Industry templates (P-9, T-1 … T-6): packages of metadata shipped under
//! `metadata/templates/<name>/`, with their rules under `scripts/templates/<name>/`,
//! installed over the core and upgraded by a three-way plan (`crm_model::threeway`) that
//! keeps what an administrator changed. A package folder of an implementer's own installs the
//! same way.

pub mod cli;
mod export;
pub mod screens;

pub use export::export;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crm_model::threeway::{self, Choice, ItemKey, Items, Step};
use crm_model::{Docs, MetaError};
use crm_store::packages::{self, Installed};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::metadata::PackageChange;
use crate::package::Package;

#[derive(rust_embed::RustEmbed)]
#[folder = "metadata/templates/"]
struct TemplateFiles;

#[derive(rust_embed::RustEmbed)]
#[folder = "scripts/templates/"]
struct TemplateScripts;

/// The names of the templates shipped with the product.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = TemplateFiles::iter()
        .filter_map(|path| path.strip_suffix("/package.json").map(str::to_owned))
        .filter(|name| !name.contains('/'))
        .collect();
    names.sort();
    names
}

/// A shipped template by name.
pub fn template(name: &str) -> Option<Result<Package, Vec<MetaError>>> {
    if !names().iter().any(|n| n == name) {
        return None;
    }
    let prefix = format!("{name}/");
    let read = |data: std::borrow::Cow<'static, [u8]>| String::from_utf8_lossy(&data).into_owned();
    let files = TemplateFiles::iter().filter_map(|path| {
        let relative = path.strip_prefix(&prefix)?.to_owned();
        Some((relative, read(TemplateFiles::get(&path)?.data)))
    });
    let scripts = TemplateScripts::iter().filter_map(|path| {
        let relative = format!("scripts/{}", path.strip_prefix(&prefix)?);
        Some((relative, read(TemplateScripts::get(&path)?.data)))
    });
    Some(Package::from_files(files.chain(scripts).collect::<Vec<_>>()))
}

/// A shipped template by name, for the API and the studio.
pub fn shipped(name: &str) -> ApiResult<Package> {
    match template(name) {
        Some(Ok(package)) => Ok(package),
        Some(Err(errors)) => Err(ApiError::InvalidMetadata(errors)),
        None => Err(ApiError::not_found(format!("template {name}"))),
    }
}

/// A shipped template by name, or a package folder (an implementer's template, a new version).
pub fn find(name_or_dir: &str) -> anyhow::Result<Package> {
    let invalid = |errors: Vec<MetaError>| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("`{name_or_dir}` is not a valid package:\n{}", lines.join("\n"))
    };
    match template(name_or_dir) {
        Some(package) => package.map_err(invalid),
        None if Path::new(name_or_dir).join("package.json").is_file() => {
            Package::load(Path::new(name_or_dir))?.map_err(invalid)
        }
        None => anyhow::bail!("no template `{name_or_dir}`; `crm template list` shows them"),
    }
}

/// What installing (or upgrading to) a package would do.
pub struct Preview {
    pub installed: Option<Installed>,
    /// The items to add, change, remove or keep, and the conflicts.
    pub steps: Vec<Step>,
    /// The table and document steps, with the conflicts resolved as chosen (else kept).
    pub plan: Vec<String>,
    /// Why the result would not be valid metadata, if it would not.
    pub errors: Vec<MetaError>,
}

impl Preview {
    pub fn conflicts(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action == threeway::Action::Conflict)
    }
}

fn base_of(installed: Option<&Installed>) -> Items {
    let Some(Json::Object(items)) = installed.map(|i| &i.items) else { return Items::new() };
    items
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), threeway::Item::stored(ItemKey::parse(key)?, value.clone()))))
        .collect()
}

/// Whether the packages a package requires are installed.
async fn check_requires(app: &App, package: &Package) -> ApiResult<()> {
    let installed = packages::all(&app.db).await?;
    let missing: Vec<MetaError> = package.manifest["requires"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter(|name| *name != "core" && !installed.iter().any(|i| i.name == *name))
        .map(|name| MetaError {
            doc: "package".into(),
            path: "/requires".into(),
            message: format!("install `{name}` first"),
        })
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(missing.into()) }
}

/// The next documents: the plan's steps over `live`, conflicts as chosen.
fn next_docs(
    base: &Items,
    theirs: &Items,
    live: &Docs,
    choices: &BTreeMap<String, Choice>,
) -> Result<Docs, Vec<MetaError>> {
    let steps = threeway::plan(base, theirs, live);
    threeway::apply(live, &steps, choices)
}

/// What installing `package` now would do; conflicts not chosen are shown as kept.
pub async fn preview(app: &App, package: &Package, choices: &BTreeMap<String, Choice>) -> ApiResult<Preview> {
    check_requires(app, package).await?;
    let installed = packages::get(&app.db, package.name()).await?;
    let current = app.catalog();
    let base = base_of(installed.as_ref());
    let theirs = package.items(current.docs()).map_err(ApiError::from)?;
    let steps = threeway::plan(&base, &theirs, current.docs());
    let mut kept = choices.clone();
    for step in steps.iter().filter(|s| s.action == threeway::Action::Conflict) {
        kept.entry(step.key.clone()).or_insert(Choice::Mine);
    }
    let planned = threeway::apply(current.docs(), &steps, &kept)
        .map_err(ApiError::from)
        .and_then(|next| crate::metadata::plan_docs(&current, next));
    let (plan, errors) = match planned {
        Ok((_, plan)) => (plan.describe(), Vec::new()),
        Err(ApiError::InvalidMetadata(errors)) => (Vec::new(), errors),
        Err(other) => return Err(other),
    };
    Ok(Preview { installed, steps, plan, errors })
}

/// What an installation did.
pub struct Installation {
    pub plan: Vec<String>,
    pub records: usize,
}

/// Installs or upgrades a package: its metadata by the three-way plan (every conflict must be
/// chosen), recorded with its items in the same transaction; then, on a first installation,
/// its configuration records and, when asked, its sample data.
pub async fn install(
    app: &App,
    by: Option<Uuid>,
    package: &Package,
    with_sample: bool,
    choices: &BTreeMap<String, Choice>,
) -> ApiResult<Installation> {
    check_requires(app, package).await?;
    let ever = packages::ever(&app.db, package.name()).await?;
    let installed = ever.clone().and_then(|(installed, removed)| (!removed).then_some(installed));
    let base = base_of(installed.as_ref());
    let theirs = package.items(app.catalog().docs()).map_err(ApiError::from)?;
    let now = app.now();
    let record = Installed {
        name: package.name().to_owned(),
        version: package.version().to_owned(),
        items: Json::Object(theirs.iter().map(|(key, item)| (key.clone(), item.value.clone())).collect()),
        sample_data: false,
        keys: Json::Object(Default::default()),
        installed_at: installed.as_ref().map_or(now, |i| i.installed_at),
        updated_at: now,
        updated_by: by,
    };
    let plan = crate::metadata::apply_package(
        app,
        by,
        |docs| next_docs(&base, &theirs, docs, choices).map_err(crm_model::changes::ChangeError::Invalid),
        Some(PackageChange::Installed(&record)),
    )
    .await?;
    // Its configuration records on its very first installation (a removal keeps them), its
    // sample data once when asked; the sample data may point at the configuration records by
    // their keys.
    let before = ever.map(|(installed, _)| installed);
    let had_sample = before.as_ref().is_some_and(|i| i.sample_data);
    let sample = with_sample && !had_sample;
    let data = package.data.iter().filter(|_| before.is_none());
    let records: Vec<&(String, Vec<Json>)> = data.chain(package.sample.iter().filter(|_| sample)).collect();
    let mut keys: HashMap<String, Uuid> =
        before.as_ref().and_then(|i| serde_json::from_value(i.keys.clone()).ok()).unwrap_or_default();
    let created = if records.is_empty() {
        0
    } else {
        crate::package::records::create(app, records.into_iter(), &mut keys).await?
    };
    if created > 0 || before.is_none() {
        let keys = serde_json::to_value(&keys).unwrap_or_default();
        packages::set_data(&app.db, package.name(), had_sample || sample, &keys).await?;
    }
    let records = created;
    tracing::info!(package = package.name(), version = package.version(), records, "installed a package");
    Ok(Installation { plan: plan.describe(), records })
}

/// Removes an installed package. What it brought is archived — its entities and fields, with
/// their records — or taken out — its grants, panels, sections, rules, reports — except what
/// an administrator changed since it was installed, which stays as it is.
pub async fn remove(app: &App, by: Option<Uuid>, name: &str) -> ApiResult<Vec<String>> {
    let installed =
        packages::get(&app.db, name).await?.ok_or_else(|| ApiError::not_found(format!("package {name}")))?;
    let base = base_of(Some(&installed));
    let keep_changed = |docs: &Docs| {
        let steps = threeway::plan(&base, &Items::new(), docs);
        let mine =
            steps.iter().filter(|s| s.action == threeway::Action::Conflict).map(|s| (s.key.clone(), Choice::Mine));
        threeway::apply(docs, &steps, &mine.collect()).map_err(crm_model::changes::ChangeError::Invalid)
    };
    let plan = crate::metadata::apply_package(app, by, keep_changed, Some(PackageChange::Removed(name))).await?;
    tracing::info!(package = name, "removed a package");
    Ok(plan.describe())
}

/// Compares two versions `major.minor.patch`.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| v.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    parts(a).cmp(&parts(b))
}
