//! The engine's own tables: metadata documents and their history, credentials, API tokens,
//! the audit log and the outbox.

use chrono::{DateTime, Utc};
use crm_model::plan::DocStep;
use crm_model::{DocKind, Storage};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Dialect};
use crate::{Db, StoreError, Tx};

/// A stored metadata document.
pub struct StoredDoc {
    pub kind: DocKind,
    pub name: String,
    pub body: Json,
}

/// The catalog version and every stored document.
pub async fn load_docs(db: &Db) -> Result<(i64, Vec<StoredDoc>), StoreError> {
    let version = catalog_version(db).await?;
    let mut sql = db.sql();
    sql.push("SELECT kind, name, body FROM crm_meta ORDER BY kind, name");
    let mut docs = Vec::new();
    for row in sql.fetch_all(db).await? {
        let kind = row.text(0)?.unwrap_or_default();
        let kind =
            DocKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown metadata kind `{kind}`")))?;
        docs.push(StoredDoc { kind, name: row.text(1)?.unwrap_or_default(), body: row.json(2)?.unwrap_or(Json::Null) });
    }
    Ok((version, docs))
}

pub async fn catalog_version(db: &Db) -> Result<i64, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT version FROM crm_catalog WHERE id = 1");
    let row = sql.fetch_optional(db).await?;
    Ok(row.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0))
}

/// Takes the catalog lock for a metadata change and returns the current version, so that two
/// changes (from any node) apply one after the other to the version they were planned on.
pub async fn lock_catalog(tx: &mut Tx) -> Result<i64, StoreError> {
    let mut sql = tx.sql();
    sql.push("SELECT version FROM crm_catalog WHERE id = 1");
    if sql.dialect() == Dialect::Postgres {
        sql.push(" FOR UPDATE");
    }
    let row = sql.fetch_optional_tx(tx).await?;
    Ok(row.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0))
}

/// Stores the documents of a plan with their history and bumps the catalog version; returns
/// the new version.
pub async fn save_docs(
    tx: &mut Tx,
    steps: &[DocStep],
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut sql = tx.sql();
    sql.push("UPDATE crm_catalog SET version = version + 1 WHERE id = 1 RETURNING version");
    let version = sql.fetch_optional_tx(tx).await?.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0);
    let by = by.map_or(Arg::Null(Storage::Uuid), Arg::Uuid);
    for step in steps {
        let mut sql = tx.sql();
        sql.push("INSERT INTO crm_meta (kind, name, version, body, updated_at, updated_by) VALUES (");
        sql.bind(Arg::Text(step.kind.as_str().to_owned())).push(", ");
        sql.bind(Arg::Text(step.name.to_string())).push(", ");
        sql.bind_int(version).push(", ");
        sql.bind(Arg::Json(step.after.clone())).push(", ");
        sql.bind(Arg::Datetime(now)).push(", ");
        sql.bind(by.clone());
        sql.push(") ON CONFLICT (kind, name) DO UPDATE SET version = excluded.version, body = excluded.body, ");
        sql.push("updated_at = excluded.updated_at, updated_by = excluded.updated_by");
        sql.execute_tx(tx).await?;

        let mut sql = tx.sql();
        sql.push(
            "INSERT INTO crm_meta_change (catalog_version, kind, name, before, after, changed_by, changed_at) VALUES (",
        );
        sql.bind_int(version).push(", ");
        sql.bind(Arg::Text(step.kind.as_str().to_owned())).push(", ");
        sql.bind(Arg::Text(step.name.to_string())).push(", ");
        sql.bind(step.before.clone().map_or(Arg::Null(Storage::List), Arg::Json)).push(", ");
        sql.bind(Arg::Json(step.after.clone())).push(", ");
        sql.bind(by.clone()).push(", ");
        sql.bind(Arg::Datetime(now)).push(")");
        sql.execute_tx(tx).await?;
    }
    Ok(version)
}

/// One entry of the metadata history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetaChange {
    pub id: i64,
    pub catalog_version: i64,
    pub kind: String,
    pub name: String,
    pub before: Option<Json>,
    pub after: Json,
    pub changed_by: Option<Uuid>,
    pub changed_at: Option<DateTime<Utc>>,
}

/// The newest metadata changes, newest first.
pub async fn meta_changes(db: &Db, limit: u32) -> Result<Vec<MetaChange>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, catalog_version, kind, name, before, after, changed_by, changed_at FROM crm_meta_change ORDER BY id DESC LIMIT ");
    sql.bind_int(i64::from(limit));
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(MetaChange {
                id: row.int(0)?.unwrap_or(0),
                catalog_version: row.int(1)?.unwrap_or(0),
                kind: row.text(2)?.unwrap_or_default(),
                name: row.text(3)?.unwrap_or_default(),
                before: row.json(4)?,
                after: row.json(5)?.unwrap_or(Json::Null),
                changed_by: row.uuid(6)?,
                changed_at: row.datetime(7)?,
            })
        })
        .collect()
}

/// What the engine knows of a user who signs in.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user_id: Uuid,
    pub password_hash: String,
    pub is_admin: bool,
    pub must_change: bool,
}

/// The credential of an active, live user by login.
pub async fn credential_by_login(db: &Db, login: &str) -> Result<Option<Credential>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT c.user_id, c.password_hash, c.is_admin, c.must_change FROM crm_credential c ");
    sql.push("JOIN \"user\" u ON u.\"id\" = c.user_id WHERE u.\"login\" = ").bind(Arg::Text(login.to_owned()));
    sql.push(" AND u.\"deleted_at\" IS NULL AND (u.\"active\" IS NULL OR u.\"active\" = ")
        .bind(Arg::Boolean(true))
        .push(")");
    let Some(row) = sql.fetch_optional(db).await? else {
        return Ok(None);
    };
    Ok(Some(Credential {
        user_id: row.uuid(0)?.unwrap_or_default(),
        password_hash: row.text(1)?.unwrap_or_default(),
        is_admin: row.boolean(2)?.unwrap_or(false),
        must_change: row.boolean(3)?.unwrap_or(false),
    }))
}

pub async fn set_credential(
    tx: &mut Tx,
    user_id: Uuid,
    password_hash: &str,
    is_admin: bool,
    must_change: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_credential (user_id, password_hash, is_admin, must_change, updated_at) VALUES (");
    sql.bind(Arg::Uuid(user_id)).push(", ").bind(Arg::Text(password_hash.to_owned())).push(", ");
    sql.bind(Arg::Boolean(is_admin)).push(", ").bind(Arg::Boolean(must_change)).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, ");
    sql.push("is_admin = excluded.is_admin, must_change = excluded.must_change, updated_at = excluded.updated_at");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// Whether any administrator exists (the first start creates one).
pub async fn admin_exists(db: &Db) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT 1 FROM crm_credential WHERE is_admin = ").bind(Arg::Boolean(true)).push(" LIMIT 1");
    Ok(sql.fetch_optional(db).await?.is_some())
}

pub async fn insert_token(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    token_hash: &str,
    name: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_token (id, user_id, token_hash, name, created_at, expires_at) VALUES (");
    sql.bind(Arg::Uuid(id)).push(", ").bind(Arg::Uuid(user_id)).push(", ");
    sql.bind(Arg::Text(token_hash.to_owned())).push(", ").bind(Arg::Text(name.to_owned())).push(", ");
    sql.bind(Arg::Datetime(now))
        .push(", ")
        .bind(expires_at.map_or(Arg::Null(Storage::Datetime), Arg::Datetime))
        .push(")");
    sql.execute(db).await?;
    Ok(())
}

/// The user (and whether an administrator) of a valid token: not revoked, not expired, its
/// user live and active.
pub async fn token_user(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(Uuid, bool)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT t.user_id, c.is_admin FROM crm_token t JOIN crm_credential c ON c.user_id = t.user_id ");
    sql.push("JOIN \"user\" u ON u.\"id\" = t.user_id WHERE t.token_hash = ").bind(Arg::Text(token_hash.to_owned()));
    sql.push(" AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ").bind(Arg::Datetime(now));
    sql.push(") AND u.\"deleted_at\" IS NULL AND (u.\"active\" IS NULL OR u.\"active\" = ")
        .bind(Arg::Boolean(true))
        .push(")");
    let Some(row) = sql.fetch_optional(db).await? else {
        return Ok(None);
    };
    Ok(row.uuid(0)?.map(|id| (id, row.boolean(1).ok().flatten().unwrap_or(false))))
}

/// One audited write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<Uuid>,
    pub entity: String,
    pub record_id: Uuid,
    pub action: &'static str,
    /// `{field: [before, after]}`
    pub changes: Json,
}

/// One record event for the consumers of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub entity: String,
    pub record_id: Uuid,
    pub event: &'static str,
    pub payload: Json,
}

/// Writes audit entries and outbox events of one change in the caller's transaction.
pub async fn record_change(
    tx: &mut Tx,
    now: DateTime<Utc>,
    audit: &[AuditEntry],
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    let statements = change_statements(tx.dialect(), now, audit, events);
    crate::Sql::execute_all(statements, tx).await
}

/// The statements that write audit entries and outbox events, to run with other writes.
pub fn change_statements(
    dialect: crate::Dialect,
    now: DateTime<Utc>,
    audit: &[AuditEntry],
    events: &[OutboxEvent],
) -> Vec<crate::Sql> {
    let mut statements = Vec::new();
    for chunk in audit.chunks(1000) {
        let mut sql = crate::Sql::new(dialect);
        sql.push("INSERT INTO crm_audit (at, actor, entity, record_id, action, changes) VALUES ");
        sql.comma_list(chunk, |sql, entry| {
            sql.push("(").bind(Arg::Datetime(now)).push(", ");
            sql.bind(entry.actor.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
            sql.bind(Arg::Text(entry.entity.clone())).push(", ").bind(Arg::Uuid(entry.record_id)).push(", ");
            sql.bind(Arg::Text(entry.action.to_owned())).push(", ").bind(Arg::Json(entry.changes.clone())).push(")");
        });
        statements.push(sql);
    }
    for chunk in events.chunks(1000) {
        let mut sql = crate::Sql::new(dialect);
        sql.push("INSERT INTO crm_outbox (at, entity, record_id, event, payload) VALUES ");
        sql.comma_list(chunk, |sql, event| {
            sql.push("(").bind(Arg::Datetime(now)).push(", ");
            sql.bind(Arg::Text(event.entity.clone())).push(", ").bind(Arg::Uuid(event.record_id)).push(", ");
            sql.bind(Arg::Text(event.event.to_owned())).push(", ").bind(Arg::Json(event.payload.clone())).push(")");
        });
        statements.push(sql);
    }
    statements
}

/// The audit entries of one record, oldest first.
pub async fn record_history(
    db: &Db,
    entity: &str,
    record_id: Uuid,
) -> Result<Vec<(DateTime<Utc>, Option<Uuid>, String, Json)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT at, actor, action, changes FROM crm_audit WHERE entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(record_id)).push(" ORDER BY id");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.datetime(0)?.unwrap_or_default(),
                row.uuid(1)?,
                row.text(2)?.unwrap_or_default(),
                row.json(3)?.unwrap_or(Json::Null),
            ))
        })
        .collect()
}
