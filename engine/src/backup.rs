//! Backup and restore (`crm backup --to FILE`, `crm restore --from FILE`): one zip file with
//! a consistent copy of the database taken while the server runs — on SQLite its online copy
//! (`VACUUM INTO`, a snapshot of one read transaction), on PostgreSQL `pg_dump`'s (one
//! repeatable-read snapshot) — so metadata, records, the audit log and the outbox consumers'
//! cursors are as they were at one moment; the node's secret key, which opens the secrets the
//! database keeps sealed; and a manifest. The search index is not copied: it is rebuilt from
//! the restored database.
//!
//! A restore goes into an empty data folder or database and refuses to overwrite one unless
//! told to (`--force`). With a backup folder configured, one node takes a backup each night
//! and the folder keeps the latest few.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use chrono::Utc;
use crm_store::{Db, Dialect};
use serde_json::json;

use crate::app::App;
use crate::config::Config;

/// When the nightly backup is taken (China time).
const NIGHTLY: &str = "daily 02:30";
/// The scheduled run's name, claimed by one node per night.
const JOB: &str = "backup";

/// The version of the archive's layout.
const FORMAT: i64 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "crm.db";
const POSTGRES_FILE: &str = "crm.pgdump";
const SECRET_FILE: &str = "secret.key";

fn dialect_of(url: &str) -> Dialect {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") { Dialect::Postgres } else { Dialect::Sqlite }
}

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    }
}

/// Runs `pg_dump` or `pg_restore` with the database's address, saying what failed.
fn postgres_tool(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(tool).args(args).output().with_context(|| format!("{tool} could not be started"))?;
    if !output.status.success() {
        bail!("{tool} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Writes the backup of the configured database to `to`; returns its size in bytes.
pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<u64> {
    let dialect = dialect_of(&config.database_url);
    let work = tempfile::tempdir_in(to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    let (copy, name) = match dialect {
        Dialect::Sqlite => {
            let db = Db::connect(&config.database_url, 1).await?;
            let copy = work.path().join(SQLITE_FILE);
            crm_store::system::copy_sqlite(&db, &copy).await?;
            (copy, SQLITE_FILE)
        }
        Dialect::Postgres => {
            let copy = work.path().join(POSTGRES_FILE);
            let file = copy.to_string_lossy().into_owned();
            postgres_tool(
                "pg_dump",
                &["--format=custom", "--no-owner", "--file", &file, "--dbname", &config.database_url],
            )?;
            (copy, POSTGRES_FILE)
        }
    };
    let db = Db::connect(&config.database_url, 1).await?;
    let catalog_version = crm_store::system::catalog_version(&db).await?;
    let manifest = json!({
        "format": FORMAT,
        "product": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "database": dialect_name(dialect),
        "catalog_version": catalog_version,
        "taken_at": crm_model::value::format_datetime(&Utc::now()),
        "search_index": "not included: rebuilt from the database when restored (crm search reindex)",
    });
    let partial = to.with_extension("partial");
    let mut zip =
        zip::ZipWriter::new(File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(MANIFEST, options)?;
    zip.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    let size = std::fs::metadata(&copy)?.len();
    zip.start_file(name, options.large_file(size >= u64::from(u32::MAX)))?;
    std::io::copy(&mut File::open(&copy)?, &mut zip)?;
    let secret = config.data_dir.join(SECRET_FILE);
    if config.secret_key.is_none() && secret.exists() {
        zip.start_file(SECRET_FILE, options)?;
        zip.write_all(&std::fs::read(&secret)?)?;
    }
    zip.finish()?;
    // Whole or not at all: a backup cut short never stands under the name asked for.
    std::fs::rename(&partial, to)?;
    Ok(std::fs::metadata(to)?.len())
}

/// Restores a backup into the configured data folder or database: refused when it already
/// holds one, unless `force`. The search index is rebuilt afterwards by the caller.
pub async fn restore(config: &Config, from: &Path, force: bool) -> anyhow::Result<()> {
    let mut archive =
        zip::ZipArchive::new(File::open(from).with_context(|| format!("cannot read {}", from.display()))?)
            .context("not a backup file")?;
    let mut manifest = String::new();
    archive.by_name(MANIFEST).context("not a backup file: it has no manifest")?.read_to_string(&mut manifest)?;
    let manifest: serde_json::Value = serde_json::from_str(&manifest)?;
    if manifest["format"].as_i64() != Some(FORMAT) {
        bail!("this backup's format ({}) is not one this version reads", manifest["format"]);
    }
    let dialect = dialect_of(&config.database_url);
    if manifest["database"] != dialect_name(dialect) {
        bail!(
            "this backup is of a {} database; restore it with a {} one",
            manifest["database"].as_str().unwrap_or("?"),
            manifest["database"].as_str().unwrap_or("?")
        );
    }
    std::fs::create_dir_all(&config.data_dir)?;
    match dialect {
        Dialect::Sqlite => {
            let target = config.data_dir.join(SQLITE_FILE);
            if target.exists() && !force {
                bail!(
                    "{} already holds a database: restore into an empty data folder, or add --force to replace it",
                    config.data_dir.display()
                );
            }
            for stale in ["crm.db-wal", "crm.db-shm"] {
                let _ = std::fs::remove_file(config.data_dir.join(stale));
            }
            let partial: PathBuf = config.data_dir.join("crm.db.restoring");
            std::io::copy(&mut archive.by_name(SQLITE_FILE)?, &mut File::create(&partial)?)?;
            std::fs::rename(&partial, &target)?;
        }
        Dialect::Postgres => {
            let db = Db::connect(&config.database_url, 1).await?;
            if crm_store::system::has_tables(&db).await? && !force {
                bail!("the database already holds a CRM: restore into an empty database, or add --force to replace it");
            }
            drop(db);
            let work = tempfile::tempdir()?;
            let dump = work.path().join(POSTGRES_FILE);
            std::io::copy(&mut archive.by_name(POSTGRES_FILE)?, &mut File::create(&dump)?)?;
            let dump = dump.to_string_lossy().into_owned();
            let mut args = vec!["--no-owner", "--exit-on-error", "--dbname", &config.database_url];
            if force {
                args.extend(["--clean", "--if-exists"]);
            }
            args.push(&dump);
            postgres_tool("pg_restore", &args)?;
        }
    }
    if let Ok(mut secret) = archive.by_name(SECRET_FILE) {
        let target = config.data_dir.join(SECRET_FILE);
        if force || !target.exists() {
            std::io::copy(&mut secret, &mut File::create(&target)?)?;
        }
    }
    // The node's search index followed the database it replaces: it is built anew.
    let index = config.data_dir.join("search");
    if index.exists() {
        std::fs::remove_dir_all(&index)?;
    }
    Ok(())
}

/// Takes the nightly backup when its time has come and no node has taken it yet, then keeps
/// only the latest `backup_keep` in the folder; the file written, if one was.
pub async fn take_due(app: &App, now: chrono::DateTime<Utc>) -> anyhow::Result<Option<PathBuf>> {
    let Some(dir) = &app.config.backup_dir else { return Ok(None) };
    let Some(slot) = crate::schedule::latest_slot(NIGHTLY, now) else { return Ok(None) };
    if !crm_store::system::claim_scheduled_run(&app.db, JOB, slot).await? {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let local = slot.with_timezone(&crate::schedule::business_offset());
    let file = dir.join(format!("crm-{}.zip", local.format("%Y%m%d-%H%M")));
    let size = backup(&app.config, &file).await?;
    tracing::info!(file = %file.display(), bytes = size, "took the nightly backup");
    let mut taken: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("crm-") && n.ends_with(".zip"))
        })
        .collect();
    // Their names sort as their times.
    taken.sort();
    let stale = taken.len().saturating_sub(app.config.backup_keep);
    for old in &taken[..stale] {
        std::fs::remove_file(old)?;
    }
    Ok(Some(file))
}
