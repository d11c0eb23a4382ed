//! `crm template ...`: the templates on the command line, for implementers.

use std::collections::BTreeMap;

use crm_model::threeway::{Action, Choice};
use crm_store::packages;

use super::{find, install, names, preview, template, version_order};
use crate::app::App;
use crate::config::{ChoiceArgs, Config, TemplateCommand};
use crate::package::{Package, describe_error};

pub async fn run(command: TemplateCommand) -> anyhow::Result<()> {
    let failed = |e: crate::error::ApiError| anyhow::anyhow!("{}", describe_error(&e));
    match command {
        TemplateCommand::List { server } => {
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            let installed = packages::all(&app.db).await?;
            for name in names() {
                let Some(Ok(package)) = template(&name) else { continue };
                let here = installed.iter().find(|i| i.name == name).map_or("-".to_owned(), |i| i.version.clone());
                println!("{name:<12} {:<8} installed: {here:<8} {}", package.version(), label(&package));
            }
            for other in installed.iter().filter(|i| !names().contains(&i.name)) {
                println!("{:<12} {:<8} installed from a folder", other.name, other.version);
            }
            Ok(())
        }
        TemplateCommand::Show { name, server } => {
            let package = find(&name)?;
            println!("{} {} — {}", package.name(), package.version(), label(&package));
            if let Some(description) = package.manifest["description"].as_str() {
                println!("{description}");
            }
            for (kind, count) in contents(&package) {
                println!("  {count} {kind}");
            }
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            print_preview(&app, &package, &BTreeMap::new()).await.map_err(failed)?;
            Ok(())
        }
        TemplateCommand::Install { name, with_sample_data, choices, server } => {
            let package = find(&name)?;
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            if let Some(installed) = packages::get(&app.db, package.name()).await? {
                anyhow::bail!(
                    "`{}` {} is installed already; `crm template upgrade {name}` brings it to {}",
                    installed.name,
                    installed.version,
                    package.version()
                );
            }
            apply(&app, &package, with_sample_data, &choices).await
        }
        TemplateCommand::Upgrade { name, choices, server } => {
            let package = find(&name)?;
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            let Some(installed) = packages::get(&app.db, package.name()).await? else {
                anyhow::bail!("`{}` is not installed; `crm template install {name}` installs it", package.name());
            };
            if version_order(package.version(), &installed.version).is_lt() {
                anyhow::bail!("{} is older than the installed {}", package.version(), installed.version);
            }
            apply(&app, &package, false, &choices).await
        }
        TemplateCommand::Remove { name, server } => {
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            let plan = super::remove(&app, None, &name).await.map_err(failed)?;
            for line in &plan {
                println!("  {line}");
            }
            println!("removed {name}: its entities and fields are archived with their data");
            Ok(())
        }
        TemplateCommand::Export { modules, to, name, server } => {
            let app = crate::setup::open(Config::resolve(&server)?).await?.app;
            let name = name.unwrap_or_else(|| modules[0].clone());
            let written = super::export(&app.catalog(), &modules, &name, &to)?;
            println!("wrote {written} files to {}", to.display());
            Ok(())
        }
    }
}

fn label(package: &Package) -> String {
    let label = &package.manifest["label"];
    format!("{} / {}", label["zh-CN"].as_str().unwrap_or_default(), label["en"].as_str().unwrap_or_default())
}

/// How many documents of each kind the package brings, and how many records.
pub fn contents(package: &Package) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _, _) in package.docs.iter_json() {
        *counts.entry(kind.folder().to_owned()).or_default() += 1;
    }
    if !package.extensions.is_empty() {
        counts.insert("extended documents".into(), package.extensions.len());
    }
    let sample: usize = package.sample.iter().map(|(_, records)| records.len()).sum();
    if sample > 0 {
        counts.insert("sample records".into(), sample);
    }
    counts.into_iter().collect()
}

fn choices_of(args: &ChoiceArgs) -> anyhow::Result<BTreeMap<String, Choice>> {
    let choice = |text: &str| match text {
        "mine" => Ok(Choice::Mine),
        "theirs" => Ok(Choice::Theirs),
        other => Err(anyhow::anyhow!("`{other}`: say mine or theirs")),
    };
    args.resolve
        .iter()
        .map(|pair| {
            let (item, which) =
                pair.split_once('=').ok_or_else(|| anyhow::anyhow!("`{pair}`: write ITEM=mine|theirs"))?;
            Ok((item.to_owned(), choice(which)?))
        })
        .collect()
}

async fn print_preview(
    app: &App,
    package: &Package,
    choices: &BTreeMap<String, Choice>,
) -> Result<super::Preview, crate::error::ApiError> {
    let preview = preview(app, package, choices).await?;
    if let Some(installed) = &preview.installed {
        println!("installed: {} (since {})", installed.version, installed.installed_at.format("%Y-%m-%d"));
    }
    for step in &preview.steps {
        let said = match (step.action, choices.get(&step.key)) {
            (Action::Add, _) => "add",
            (Action::Update, _) => "update",
            (Action::Remove, _) => "remove",
            (Action::KeepLocal, _) => "keep local change",
            (Action::Conflict, Some(Choice::Mine)) => "conflict, keeping mine",
            (Action::Conflict, Some(Choice::Theirs)) => "conflict, taking theirs",
            (Action::Conflict, None) => "CONFLICT",
        };
        println!("  {said:<24} {}", step.key);
    }
    println!("plan ({} steps):", preview.plan.len());
    for line in &preview.plan {
        println!("  {line}");
    }
    for error in &preview.errors {
        println!("  invalid: {error}");
    }
    Ok(preview)
}

async fn apply(app: &App, package: &Package, with_sample: bool, args: &ChoiceArgs) -> anyhow::Result<()> {
    let failed = |e: crate::error::ApiError| anyhow::anyhow!("{}", describe_error(&e));
    let mut choices = choices_of(args)?;
    if let Some(all) = &args.all {
        let all = choices_of(&ChoiceArgs { resolve: vec![format!("*={all}")], ..ChoiceArgs::default() })?["*"];
        let conflicts = preview(app, package, &choices).await.map_err(failed)?;
        for step in conflicts.conflicts() {
            choices.entry(step.key.clone()).or_insert(all);
        }
    }
    let preview = print_preview(app, package, &choices).await.map_err(failed)?;
    let open: Vec<&str> =
        preview.conflicts().filter(|s| !choices.contains_key(&s.key)).map(|s| s.key.as_str()).collect();
    if args.dry_run {
        println!("dry run: nothing applied");
        return Ok(());
    }
    if !open.is_empty() {
        anyhow::bail!(
            "{} conflicts ({}): choose with --resolve ITEM=mine|theirs or --all mine|theirs",
            open.len(),
            open.join(", ")
        );
    }
    let done = install(app, None, package, with_sample, &choices).await.map_err(failed)?;
    println!(
        "installed {} {}: {} steps, {} records; catalog version {}",
        package.name(),
        package.version(),
        done.plan.len(),
        done.records,
        app.catalog().version
    );
    Ok(())
}
