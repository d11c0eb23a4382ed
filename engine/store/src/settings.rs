//! Settings an administrator keeps (the mail server, the SMS provider): one JSON document per
//! name.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::Arg;
use crate::{Db, StoreError};

/// A setting's document; `None` while nobody saved it.
pub async fn setting(db: &Db, name: &str) -> Result<Option<Json>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT value FROM crm_setting WHERE name = ").bind(Arg::Text(name.to_owned()));
    match sql.fetch_optional(db).await? {
        Some(row) => row.json(0),
        None => Ok(None),
    }
}

pub async fn set_setting(db: &Db, name: &str, value: Json, by: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = db.sql();
    let dialect = sql.dialect();
    sql.push("INSERT INTO crm_setting (name, value, updated_at, updated_by) VALUES (");
    sql.bind(Arg::Text(name.to_owned())).push(", ").bind(Arg::json(dialect, value)).push(", ");
    sql.bind(Arg::Datetime(now)).push(", ").bind(Arg::Uuid(by));
    sql.push(") ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, ");
    sql.push("updated_by = excluded.updated_by");
    sql.execute(db).await?;
    Ok(())
}
