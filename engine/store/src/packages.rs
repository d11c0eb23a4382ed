//! The packages installed over the core, with their items as installed: the base of a
//! three-way upgrade.

use chrono::{DateTime, Utc};
use crm_model::Storage;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    /// `{key: value}`: the package's items as it installed them.
    pub items: Json,
    pub sample_data: bool,
    /// `{key: id}`: the records its data and sample data made under a `$key`.
    pub keys: Json,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<Uuid>,
}

const COLUMNS: &str = "name, version, items, sample_data, keys, installed_at, updated_at, updated_by";

fn read(row: &Row) -> Result<Installed, StoreError> {
    Ok(Installed {
        name: row.text(0)?.unwrap_or_default(),
        version: row.text(1)?.unwrap_or_default(),
        items: row.json(2)?.unwrap_or_default(),
        sample_data: row.boolean(3)?.unwrap_or_default(),
        keys: row.json(4)?.unwrap_or_default(),
        installed_at: row.datetime(5)?.unwrap_or_default(),
        updated_at: row.datetime(6)?.unwrap_or_default(),
        updated_by: row.uuid(7)?,
    })
}

/// The packages installed (not removed).
pub async fn all(db: &Db) -> Result<Vec<Installed>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_package WHERE removed_at IS NULL ORDER BY name");
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// A package as installed, unless it is not (or was removed).
pub async fn get(db: &Db, name: &str) -> Result<Option<Installed>, StoreError> {
    Ok(ever(db, name).await?.and_then(|(installed, removed)| (!removed).then_some(installed)))
}

/// A package as last installed, and whether it was removed since.
pub async fn ever(db: &Db, name: &str) -> Result<Option<(Installed, bool)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(", removed_at IS NOT NULL FROM crm_package WHERE name = ");
    sql.bind(Arg::Text(name.to_owned()));
    let row = sql.fetch_optional(db).await?;
    row.map(|r| Ok((read(&r)?, r.boolean(8)?.unwrap_or_default()))).transpose()
}

/// Records a package as installed (or upgraded), in the transaction of its metadata change;
/// what its data made is kept (see [`set_data`]).
pub async fn put(tx: &mut Tx, package: &Installed) -> Result<(), StoreError> {
    let dialect = tx.dialect();
    let mut sql = tx.sql();
    sql.push(
        "INSERT INTO crm_package (name, version, items, sample_data, keys, installed_at, updated_at, updated_by) ",
    );
    sql.push("VALUES (").bind(Arg::Text(package.name.clone())).push(", ").bind(Arg::Text(package.version.clone()));
    sql.push(", ").bind(Arg::json(dialect, package.items.clone())).push(", ").bind(Arg::Boolean(package.sample_data));
    sql.push(", ").bind(Arg::json(dialect, package.keys.clone()));
    sql.push(", ").bind(Arg::Datetime(package.installed_at)).push(", ").bind(Arg::Datetime(package.updated_at));
    sql.push(", ").bind(package.updated_by.map_or(Arg::Null(Storage::Uuid), Arg::Uuid));
    sql.push(") ON CONFLICT (name) DO UPDATE SET version = excluded.version, items = excluded.items, ");
    sql.push("updated_at = excluded.updated_at, updated_by = excluded.updated_by, removed_at = NULL");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// Records the records a package's data made, once they are written.
pub async fn set_data(db: &Db, name: &str, sample_data: bool, keys: &Json) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_package SET keys = ").bind(Arg::json(db.dialect(), keys.clone()));
    sql.push(", sample_data = ").bind(Arg::Boolean(sample_data));
    sql.push(" WHERE name = ").bind(Arg::Text(name.to_owned()));
    sql.execute(db).await?;
    Ok(())
}

/// Marks a package removed, in the transaction that archives what it brought.
pub async fn mark_removed(tx: &mut Tx, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("UPDATE crm_package SET removed_at = ").bind(Arg::Datetime(at));
    sql.push(" WHERE name = ").bind(Arg::Text(name.to_owned()));
    sql.execute_tx(tx).await?;
    Ok(())
}
