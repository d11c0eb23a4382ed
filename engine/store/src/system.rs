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

/// Copies an SQLite database, while others read and write it, into a new file: a snapshot
/// of one read transaction (`VACUUM INTO`), compacted.
pub async fn copy_sqlite(db: &Db, to: &std::path::Path) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("VACUUM INTO ").bind(Arg::Text(to.to_string_lossy().into_owned()));
    sql.fetch_all(db).await?;
    Ok(())
}

/// Whether the database holds this product's tables.
pub async fn has_tables(db: &Db) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push(match db.dialect() {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'crm_catalog'",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'crm_catalog'"
        }
    });
    Ok(sql.fetch_optional(db).await?.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0) > 0)
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
        if step.removes() {
            sql.push("DELETE FROM crm_meta WHERE kind = ");
            sql.bind(Arg::Text(step.kind.as_str().to_owned())).push(" AND name = ");
            sql.bind(Arg::Text(step.name.to_string()));
            sql.execute_tx(tx).await?;
        } else {
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
        }

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
pub async fn meta_changes(
    db: &Db,
    kind: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<MetaChange>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, catalog_version, kind, name, before, after, changed_by, changed_at FROM crm_meta_change WHERE 1 = 1");
    if let Some(kind) = kind {
        sql.push(" AND kind = ").bind(Arg::Text(kind.to_owned()));
    }
    if let Some(before) = before {
        sql.push(" AND id < ").bind_int(before);
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind_int(i64::from(limit));
    sql.fetch_all(db).await?.iter().map(read_change).collect()
}

/// One metadata change.
pub async fn meta_change(db: &Db, id: i64) -> Result<Option<MetaChange>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, catalog_version, kind, name, before, after, changed_by, changed_at FROM crm_meta_change WHERE id = ");
    sql.bind_int(id);
    sql.fetch_optional(db).await?.as_ref().map(read_change).transpose()
}

fn read_change(row: &crate::Row) -> Result<MetaChange, StoreError> {
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
}

/// What the engine knows of a user who signs in.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user_id: Uuid,
    pub password_hash: String,
    pub must_change: bool,
}

/// The credential of an active, live user who is not a pool account, by login.
pub async fn credential_by_login(db: &Db, login: &str) -> Result<Option<Credential>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT c.user_id, c.password_hash, c.must_change FROM crm_credential c ");
    sql.push("JOIN \"user\" u ON u.\"id\" = c.user_id WHERE u.\"login\" = ").bind(Arg::Text(login.to_owned()));
    push_user_can_sign_in(&mut sql);
    let Some(row) = sql.fetch_optional(db).await? else {
        return Ok(None);
    };
    Ok(Some(Credential {
        user_id: row.uuid(0)?.unwrap_or_default(),
        password_hash: row.text(1)?.unwrap_or_default(),
        must_change: row.boolean(2)?.unwrap_or(false),
    }))
}

/// The credential of a user by id (to check their current password).
pub async fn credential_of(db: &Db, user_id: Uuid) -> Result<Option<Credential>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT user_id, password_hash, must_change FROM crm_credential WHERE user_id = ")
        .bind(Arg::Uuid(user_id));
    let Some(row) = sql.fetch_optional(db).await? else {
        return Ok(None);
    };
    Ok(Some(Credential {
        user_id,
        password_hash: row.text(1)?.unwrap_or_default(),
        must_change: row.boolean(2)?.unwrap_or(false),
    }))
}

/// `AND` the user `u` is live, active and not a pool account.
fn push_user_can_sign_in(sql: &mut crate::Sql) {
    sql.push(" AND u.\"deleted_at\" IS NULL AND (u.\"active\" IS NULL OR u.\"active\" = ").bind(Arg::Boolean(true));
    sql.push(") AND (u.\"pool\" IS NULL OR u.\"pool\" = ").bind(Arg::Boolean(false)).push(")");
}

/// The users holding one of `roles` who can sign in: enabled, not in the recycle bin, not a
/// pool account.
pub async fn active_users_with_roles(db: &Db, roles: &[String]) -> Result<Vec<Uuid>, StoreError> {
    if roles.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    sql.push("SELECT DISTINCT u.\"id\" FROM \"user\" u JOIN crm_user_role r ON r.user_id = u.\"id\" WHERE r.role IN (");
    sql.comma_list(roles, |sql, role| {
        sql.bind(Arg::Text(role.clone()));
    });
    sql.push(")");
    push_user_can_sign_in(&mut sql);
    sql.fetch_all(db).await?.iter().map(|row| Ok(row.uuid(0)?.unwrap_or_default())).collect()
}

/// The statements that end every session and revoke every token of a user, to run in the
/// transaction that disables them. On PostgreSQL they also tell the other nodes, when the
/// transaction commits, to forget what they remember of sessions and tokens.
pub fn sign_out_statements(dialect: crate::Dialect, user_id: Uuid, now: DateTime<Utc>) -> Vec<crate::Sql> {
    let mut sessions = crate::Sql::new(dialect);
    sessions.push("DELETE FROM crm_session WHERE user_id = ").bind(Arg::Uuid(user_id));
    let mut tokens = crate::Sql::new(dialect);
    tokens.push("UPDATE crm_token SET revoked_at = ").bind(Arg::Datetime(now));
    tokens.push(" WHERE revoked_at IS NULL AND user_id = ").bind(Arg::Uuid(user_id));
    let mut statements = vec![sessions, tokens];
    if dialect == crate::Dialect::Postgres {
        let mut notify = crate::Sql::new(dialect);
        notify.push("NOTIFY crm_signed_out");
        statements.push(notify);
    }
    statements
}

/// The channel on which PostgreSQL tells every node that someone was signed out or given
/// other roles.
pub const SIGNED_OUT_CHANNEL: &str = "crm_signed_out";

pub async fn set_credential(
    tx: &mut Tx,
    user_id: Uuid,
    password_hash: &str,
    must_change: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_credential (user_id, password_hash, must_change, updated_at) VALUES (");
    sql.bind(Arg::Uuid(user_id)).push(", ").bind(Arg::Text(password_hash.to_owned())).push(", ");
    sql.bind(Arg::Boolean(must_change)).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, ");
    sql.push("must_change = excluded.must_change, updated_at = excluded.updated_at");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// Whether anyone can sign in yet (the first start creates the administrator).
pub async fn any_credential(db: &Db) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT 1 FROM crm_credential LIMIT 1");
    Ok(sql.fetch_optional(db).await?.is_some())
}

/// The roles a user holds.
pub async fn user_roles(db: &Db, user_id: Uuid) -> Result<Vec<String>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT role FROM crm_user_role WHERE user_id = ").bind(Arg::Uuid(user_id)).push(" ORDER BY role");
    sql.fetch_all(db).await?.iter().map(|row| Ok(row.text(0)?.unwrap_or_default())).collect()
}

/// Replaces the roles a user holds.
/// Gives a user these roles; on PostgreSQL every node is told, when the transaction commits,
/// to work out again who may do what (as for a sign-out).
pub async fn set_user_roles(tx: &mut Tx, user_id: Uuid, roles: &[String]) -> Result<(), StoreError> {
    let mut statements = Vec::with_capacity(2 + roles.len());
    let mut clear = tx.sql();
    clear.push("DELETE FROM crm_user_role WHERE user_id = ").bind(Arg::Uuid(user_id));
    statements.push(clear);
    for role in roles {
        let mut add = tx.sql();
        add.push("INSERT INTO crm_user_role (user_id, role) VALUES (").bind(Arg::Uuid(user_id)).push(", ");
        add.bind(Arg::Text(role.clone())).push(")");
        statements.push(add);
    }
    if tx.dialect() == crate::Dialect::Postgres {
        let mut notify = tx.sql();
        notify.push("NOTIFY crm_signed_out");
        statements.push(notify);
    }
    crate::Sql::execute_all(statements, tx).await
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

/// The user of a valid token: not revoked, not expired, its user able to sign in.
pub async fn token_user(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Uuid>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT t.user_id FROM crm_token t JOIN \"user\" u ON u.\"id\" = t.user_id WHERE t.token_hash = ");
    sql.bind(Arg::Text(token_hash.to_owned()));
    sql.push(" AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ")
        .bind(Arg::Datetime(now))
        .push(")");
    push_user_can_sign_in(&mut sql);
    let row = sql.fetch_optional(db).await?;
    Ok(row.map(|r| r.uuid(0)).transpose()?.flatten())
}

/// An API token as its owner sees it (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn tokens_of(db: &Db, user_id: Uuid) -> Result<Vec<TokenInfo>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, name, created_at, expires_at, revoked_at FROM crm_token WHERE user_id = ");
    sql.bind(Arg::Uuid(user_id)).push(" ORDER BY created_at DESC");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(TokenInfo {
                id: row.uuid(0)?.unwrap_or_default(),
                name: row.text(1)?.unwrap_or_default(),
                created_at: row.datetime(2)?,
                expires_at: row.datetime(3)?,
                revoked_at: row.datetime(4)?,
            })
        })
        .collect()
}

/// Revokes one of a user's tokens; returns whether there was one to revoke.
pub async fn revoke_token(db: &Db, user_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_token SET revoked_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE revoked_at IS NULL AND user_id = ").bind(Arg::Uuid(user_id));
    sql.push(" AND id = ").bind(Arg::Uuid(id));
    sql.execute(db).await
}

pub async fn insert_session(
    db: &Db,
    id_hash: &str,
    user_id: Uuid,
    csrf: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_session (id_hash, user_id, csrf, created_at, expires_at) VALUES (");
    sql.bind(Arg::Text(id_hash.to_owned())).push(", ").bind(Arg::Uuid(user_id)).push(", ");
    sql.bind(Arg::Text(csrf.to_owned())).push(", ").bind(Arg::Datetime(now)).push(", ").bind(Arg::Datetime(expires_at));
    sql.push(")");
    sql.execute(db).await?;
    Ok(())
}

/// The user and CSRF token of a live session whose user can sign in.
pub async fn session_user(db: &Db, id_hash: &str, now: DateTime<Utc>) -> Result<Option<(Uuid, String)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT s.user_id, s.csrf FROM crm_session s JOIN \"user\" u ON u.\"id\" = s.user_id WHERE s.id_hash = ");
    sql.bind(Arg::Text(id_hash.to_owned())).push(" AND s.expires_at > ").bind(Arg::Datetime(now));
    push_user_can_sign_in(&mut sql);
    let Some(row) = sql.fetch_optional(db).await? else {
        return Ok(None);
    };
    Ok(row.uuid(0)?.map(|id| (id, row.text(1).ok().flatten().unwrap_or_default())))
}

/// Ends one session (signing out).
pub async fn delete_session(db: &Db, id_hash: &str) -> Result<u64, StoreError> {
    let mut sql = db.sql();
    sql.push("DELETE FROM crm_session WHERE id_hash = ").bind(Arg::Text(id_hash.to_owned()));
    sql.execute(db).await
}

/// One grant of a record to a user or a department.
#[derive(Debug, Clone)]
pub struct Share {
    pub entity: String,
    pub record_id: Uuid,
    pub user: Option<Uuid>,
    pub department: Option<Uuid>,
    /// `read` or `edit`.
    pub access: &'static str,
}

/// Shares records (replacing the access of an existing share to the same grantee).
pub async fn share(tx: &mut Tx, shares: &[Share], by: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut statements = Vec::new();
    for share in shares {
        let mut remove = tx.sql();
        push_share_match(&mut remove, share);
        statements.push(remove);
        let mut add = tx.sql();
        add.push("INSERT INTO crm_share (entity, record_id, user_id, department_id, access, created_by, created_at) VALUES (");
        add.bind(Arg::Text(share.entity.clone())).push(", ").bind(Arg::Uuid(share.record_id)).push(", ");
        add.bind(share.user.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
        add.bind(share.department.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
        add.bind(Arg::Text(share.access.to_owned())).push(", ").bind(Arg::Uuid(by)).push(", ");
        add.bind(Arg::Datetime(now)).push(")");
        statements.push(add);
    }
    crate::Sql::execute_all(statements, tx).await
}

/// Removes shares (their `access` is ignored).
pub async fn unshare(tx: &mut Tx, shares: &[Share]) -> Result<(), StoreError> {
    let statements = shares
        .iter()
        .map(|share| {
            let mut remove = tx.sql();
            push_share_match(&mut remove, share);
            remove
        })
        .collect();
    crate::Sql::execute_all(statements, tx).await
}

fn push_share_match(sql: &mut crate::Sql, share: &Share) {
    sql.push("DELETE FROM crm_share WHERE entity = ").bind(Arg::Text(share.entity.clone()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(share.record_id));
    match (share.user, share.department) {
        (Some(user), _) => sql.push(" AND user_id = ").bind(Arg::Uuid(user)),
        (None, Some(department)) => sql.push(" AND department_id = ").bind(Arg::Uuid(department)),
        (None, None) => sql.push(" AND 1 = 0"),
    };
}

/// One audited write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<Uuid>,
    pub entity: String,
    pub record_id: Uuid,
    pub action: &'static str,
    /// Where a record write came from: api, screen, import, rule, rollup, ...
    pub source: Option<&'static str>,
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
    audit: Vec<AuditEntry>,
    events: Vec<OutboxEvent>,
) -> Result<(), StoreError> {
    let statements = change_statements(tx.dialect(), now, audit, events);
    crate::Sql::execute_all(statements, tx).await
}

/// The statements that write audit entries and outbox events, to run with other writes.
/// Their values move into the statements, and JSON is written out here, before the writer's
/// turn, not while it is held.
pub fn change_statements(
    dialect: crate::Dialect,
    now: DateTime<Utc>,
    audit: Vec<AuditEntry>,
    events: Vec<OutboxEvent>,
) -> Vec<crate::Sql> {
    let mut head = crate::Sql::new(dialect);
    head.insert_rows_into().push("crm_audit (at, actor, entity, record_id, action, source, changes)");
    let audit = audit
        .into_iter()
        .map(|entry| {
            vec![
                Arg::Datetime(now),
                entry.actor.map_or(Arg::Null(Storage::Uuid), Arg::Uuid),
                Arg::Text(entry.entity),
                Arg::Uuid(entry.record_id),
                Arg::Text(entry.action.to_owned()),
                entry.source.map_or(Arg::Null(Storage::Text), |s| Arg::Text(s.to_owned())),
                Arg::json(dialect, entry.changes),
            ]
        })
        .collect();
    let mut statements = crate::sql::Rows::new(head, audit).into_statements();
    let mut head = crate::Sql::new(dialect);
    head.insert_rows_into().push("crm_outbox (at, entity, record_id, event, payload)");
    let events = events
        .into_iter()
        .map(|event| {
            vec![
                Arg::Datetime(now),
                Arg::Text(event.entity),
                Arg::Uuid(event.record_id),
                Arg::Text(event.event.to_owned()),
                Arg::json(dialect, event.payload),
            ]
        })
        .collect();
    statements.extend(crate::sql::Rows::new(head, events).into_statements());
    statements
}

/// The audit entries of one record, oldest first.
pub async fn record_history(db: &Db, entity: &str, record_id: Uuid) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = db.sql();
    sql.push(AUDIT_COLUMNS).push(" WHERE entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(record_id)).push(" ORDER BY id");
    sql.fetch_all(db).await?.iter().map(audit_row).collect()
}

const AUDIT_COLUMNS: &str = "SELECT id, at, actor, entity, record_id, action, source, changes FROM crm_audit";

fn audit_row(row: &crate::Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: row.int(0)?.unwrap_or(0),
        at: row.datetime(1)?,
        actor: row.uuid(2)?,
        entity: row.text(3)?.unwrap_or_default(),
        record_id: row.uuid(4)?,
        action: row.text(5)?.unwrap_or_default(),
        source: row.text(6)?,
        changes: row.json(7)?.unwrap_or(Json::Null),
    })
}

/// What to look for in the audit log; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this id (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

/// An audit entry as the log shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Option<DateTime<Utc>>,
    pub actor: Option<Uuid>,
    pub entity: String,
    pub record_id: Option<Uuid>,
    pub action: String,
    /// Where a record write came from (api, screen, import, rule, ...).
    pub source: Option<String>,
    pub changes: Json,
}

/// The audit log, newest first.
pub async fn audit_entries(db: &Db, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = db.sql();
    sql.push(AUDIT_COLUMNS);
    push_audit_where(&mut sql, query);
    sql.push(" ORDER BY id DESC LIMIT ").bind_int(i64::from(query.limit));
    sql.fetch_all(db).await?.iter().map(audit_row).collect()
}

/// How many audit entries match (a user's claims from a pool today, say).
pub async fn audit_count(db: &Db, query: &AuditQuery) -> Result<i64, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT COUNT(*) FROM crm_audit");
    push_audit_where(&mut sql, query);
    crate::records::count(db, sql).await
}

fn push_audit_where(sql: &mut crate::Sql, query: &AuditQuery) {
    sql.push(" WHERE 1 = 1");
    if let Some(entity) = &query.entity {
        sql.push(" AND entity = ").bind(Arg::Text(entity.clone()));
    }
    if let Some(record) = query.record_id {
        sql.push(" AND record_id = ").bind(Arg::Uuid(record));
    }
    if let Some(actor) = query.actor {
        sql.push(" AND actor = ").bind(Arg::Uuid(actor));
    }
    if let Some(action) = &query.action {
        sql.push(" AND action = ").bind(Arg::Text(action.clone()));
    }
    if let Some(from) = query.from {
        sql.push(" AND at >= ").bind(Arg::Datetime(from));
    }
    if let Some(to) = query.to {
        sql.push(" AND at < ").bind(Arg::Datetime(to));
    }
    if let Some(before) = query.before {
        sql.push(" AND id < ").bind_int(before);
    }
}

/// A user's screen preferences (language, theme), by name.
pub async fn preferences(db: &Db, user_id: Uuid) -> Result<Vec<(String, String)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT name, value FROM crm_preference WHERE user_id = ").bind(Arg::Uuid(user_id));
    let rows = sql.fetch_all(db).await?;
    rows.iter().map(|row| Ok((row.text(0)?.unwrap_or_default(), row.text(1)?.unwrap_or_default()))).collect()
}

pub async fn set_preference(db: &Db, user_id: Uuid, name: &str, value: &str) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_preference (user_id, name, value) VALUES (").bind(Arg::Uuid(user_id)).push(", ");
    sql.bind(Arg::Text(name.to_owned())).push(", ").bind(Arg::Text(value.to_owned()));
    sql.push(") ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value");
    sql.execute(db).await?;
    Ok(())
}

/// A personal saved list view.
pub struct SavedView {
    pub id: Uuid,
    pub name: String,
    /// The list page's query string: filters, columns and sort.
    pub query: String,
}

pub async fn saved_views(db: &Db, user_id: Uuid, entity: &str) -> Result<Vec<SavedView>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, name, query FROM crm_saved_view WHERE user_id = ").bind(Arg::Uuid(user_id));
    sql.push(" AND entity = ").bind(Arg::Text(entity.to_owned())).push(" ORDER BY name");
    let rows = sql.fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok(SavedView {
                id: row.uuid(0)?.unwrap_or_default(),
                name: row.text(1)?.unwrap_or_default(),
                query: row.text(2)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// Saves a view under its name, replacing the user's view of that name.
pub async fn save_view(
    db: &Db,
    user_id: Uuid,
    entity: &str,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_saved_view (id, user_id, entity, name, query, created_at) VALUES (");
    sql.bind(Arg::Uuid(Uuid::now_v7())).push(", ").bind(Arg::Uuid(user_id)).push(", ");
    sql.bind(Arg::Text(entity.to_owned())).push(", ").bind(Arg::Text(name.to_owned())).push(", ");
    sql.bind(Arg::Text(query.to_owned())).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (user_id, entity, name) DO UPDATE SET query = excluded.query");
    sql.execute(db).await?;
    Ok(())
}

/// Deletes one of the user's views; false if they have none with that id.
pub async fn delete_view(db: &Db, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("DELETE FROM crm_saved_view WHERE id = ").bind(Arg::Uuid(id));
    sql.push(" AND user_id = ").bind(Arg::Uuid(user_id));
    Ok(sql.execute(db).await? > 0)
}

/// A move of a record between stages.
pub struct StageMove<'a> {
    pub entity: &'a str,
    pub record_id: Uuid,
    pub field: &'a str,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub actor: Uuid,
    pub at: DateTime<Utc>,
    /// How long the record was in the stage it leaves.
    pub seconds_in_previous: Option<i64>,
}

pub async fn insert_stage_move(tx: &mut Tx, m: &StageMove<'_>) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_stage_history (entity, record_id, field, from_stage, to_stage, actor, at, seconds_in_previous) VALUES (");
    sql.bind(Arg::Text(m.entity.to_owned())).push(", ").bind(Arg::Uuid(m.record_id)).push(", ");
    sql.bind(Arg::Text(m.field.to_owned())).push(", ");
    sql.bind(m.from.map_or(Arg::Null(Storage::Text), |f| Arg::Text(f.to_owned()))).push(", ");
    sql.bind(Arg::Text(m.to.to_owned())).push(", ").bind(Arg::Uuid(m.actor)).push(", ").bind(Arg::Datetime(m.at));
    sql.push(", ").bind(m.seconds_in_previous.map_or(Arg::Null(Storage::Integer), Arg::Integer)).push(")");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// When a record last moved between stages of a field, if it ever did.
pub async fn last_stage_move(
    tx: &mut Tx,
    entity: &str,
    record_id: Uuid,
    field: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut sql = tx.sql();
    sql.push("SELECT at FROM crm_stage_history WHERE entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(record_id)).push(" AND field = ").bind(Arg::Text(field.to_owned()));
    sql.push(" ORDER BY id DESC LIMIT 1");
    Ok(sql.fetch_optional_tx(tx).await?.map(|row| row.datetime(0)).transpose()?.flatten())
}

/// A record's moves between stages, oldest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageHistoryRow {
    pub field: String,
    pub from: Option<String>,
    pub to: String,
    pub actor: Option<Uuid>,
    pub at: Option<DateTime<Utc>>,
    pub seconds_in_previous: Option<i64>,
}

pub async fn stage_history(db: &Db, entity: &str, record_id: Uuid) -> Result<Vec<StageHistoryRow>, StoreError> {
    let mut sql = db.sql();
    sql.push(
        "SELECT field, from_stage, to_stage, actor, at, seconds_in_previous FROM crm_stage_history WHERE entity = ",
    );
    sql.bind(Arg::Text(entity.to_owned())).push(" AND record_id = ").bind(Arg::Uuid(record_id)).push(" ORDER BY id");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(StageHistoryRow {
                field: row.text(0)?.unwrap_or_default(),
                from: row.text(1)?,
                to: row.text(2)?.unwrap_or_default(),
                actor: row.uuid(3)?,
                at: row.datetime(4)?,
                seconds_in_previous: row.int(5)?,
            })
        })
        .collect()
}

/// A reminder for a user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reminder {
    pub id: Uuid,
    pub message: String,
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
    pub rule: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

/// A new reminder, due at `due_at`.
pub struct NewReminder<'a> {
    pub user: Uuid,
    pub message: &'a str,
    pub entity: Option<&'a str>,
    pub record_id: Option<Uuid>,
    pub rule: Option<&'a str>,
    pub due_at: DateTime<Utc>,
}

pub async fn insert_reminder(tx: &mut Tx, r: &NewReminder<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    reminder_statement(tx.dialect(), Uuid::now_v7(), r, now).execute_tx(tx).await?;
    Ok(())
}

/// Leaves a reminder with a given id unless one with that id exists: a consumer that sees
/// an event twice leaves one reminder.
pub async fn insert_reminder_once(
    db: &Db,
    id: Uuid,
    r: &NewReminder<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = reminder_statement(db.dialect(), id, r, now);
    sql.push(" ON CONFLICT (id) DO NOTHING");
    sql.execute(db).await?;
    Ok(())
}

fn reminder_statement(dialect: crate::Dialect, id: Uuid, r: &NewReminder<'_>, now: DateTime<Utc>) -> crate::Sql {
    let mut sql = crate::Sql::new(dialect);
    sql.push("INSERT INTO crm_reminder (id, user_id, message, entity, record_id, rule, due_at, created_at) VALUES (");
    sql.bind(Arg::Uuid(id)).push(", ").bind(Arg::Uuid(r.user)).push(", ");
    sql.bind(Arg::Text(r.message.to_owned())).push(", ");
    sql.bind(r.entity.map_or(Arg::Null(Storage::Text), |e| Arg::Text(e.to_owned()))).push(", ");
    sql.bind(r.record_id.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
    sql.bind(r.rule.map_or(Arg::Null(Storage::Text), |e| Arg::Text(e.to_owned()))).push(", ");
    sql.bind(Arg::Datetime(r.due_at)).push(", ").bind(Arg::Datetime(now)).push(")");
    sql
}

/// Closes the open reminders a scheduled rule left on its previous run: today's run lists
/// what is still to do.
pub async fn supersede_reminders(tx: &mut Tx, rule: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut sql = tx.sql();
    sql.push("UPDATE crm_reminder SET done_at = ").bind(Arg::Datetime(now)).push(" WHERE rule = ");
    sql.bind(Arg::Text(rule.to_owned())).push(" AND done_at IS NULL");
    sql.execute_tx(tx).await
}

/// A user's open reminders due before `until`, oldest first.
pub async fn open_reminders(db: &Db, user: Uuid, until: DateTime<Utc>) -> Result<Vec<Reminder>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, message, entity, record_id, rule, due_at, done_at FROM crm_reminder WHERE user_id = ");
    sql.bind(Arg::Uuid(user)).push(" AND done_at IS NULL AND due_at < ").bind(Arg::Datetime(until));
    sql.push(" ORDER BY due_at, id LIMIT 500");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(Reminder {
                id: row.uuid(0)?.unwrap_or_default(),
                message: row.text(1)?.unwrap_or_default(),
                entity: row.text(2)?,
                record_id: row.uuid(3)?,
                rule: row.text(4)?,
                due_at: row.datetime(5)?,
                done_at: row.datetime(6)?,
            })
        })
        .collect()
}

/// Marks one of a user's reminders done; false if they have no such open reminder.
pub async fn finish_reminder(db: &Db, user: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_reminder SET done_at = ").bind(Arg::Datetime(now)).push(" WHERE id = ").bind(Arg::Uuid(id));
    sql.push(" AND user_id = ").bind(Arg::Uuid(user)).push(" AND done_at IS NULL");
    Ok(sql.execute(db).await? > 0)
}

/// Claims the run of a scheduled rule for the slot at `slot`: true for exactly one caller
/// (of any node) per slot.
pub async fn claim_scheduled_run(db: &Db, rule: &str, slot: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_schedule_run (rule, last_run_at) VALUES (").bind(Arg::Text(rule.to_owned()));
    sql.push(", ")
        .bind(Arg::Datetime(slot))
        .push(") ON CONFLICT (rule) DO UPDATE SET last_run_at = excluded.last_run_at");
    sql.push(" WHERE crm_schedule_run.last_run_at < excluded.last_run_at");
    Ok(sql.execute(db).await? > 0)
}

/// A step of a record's approval.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApprovalStep {
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub actor: Option<Uuid>,
    pub comment: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

pub async fn insert_approval_step(
    tx: &mut Tx,
    entity: &str,
    record_id: Uuid,
    step: &ApprovalStep,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push(
        "INSERT INTO crm_approval (entity, record_id, action, from_status, to_status, actor, comment, at) VALUES (",
    );
    sql.bind(Arg::Text(entity.to_owned())).push(", ").bind(Arg::Uuid(record_id)).push(", ");
    sql.bind(Arg::Text(step.action.clone())).push(", ");
    sql.bind(step.from.clone().map_or(Arg::Null(Storage::Text), Arg::Text)).push(", ");
    sql.bind(Arg::Text(step.to.clone())).push(", ").bind(Arg::Uuid(step.actor.unwrap_or_default())).push(", ");
    sql.bind(step.comment.clone().map_or(Arg::Null(Storage::Text), Arg::Text)).push(", ").bind(Arg::Datetime(now));
    sql.push(")");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// A record's approval steps, oldest first.
pub async fn approval_steps(db: &Db, entity: &str, record_id: Uuid) -> Result<Vec<ApprovalStep>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT action, from_status, to_status, actor, comment, at FROM crm_approval WHERE entity = ");
    sql.bind(Arg::Text(entity.to_owned())).push(" AND record_id = ").bind(Arg::Uuid(record_id)).push(" ORDER BY id");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(ApprovalStep {
                action: row.text(0)?.unwrap_or_default(),
                from: row.text(1)?,
                to: row.text(2)?.unwrap_or_default(),
                actor: row.uuid(3)?,
                comment: row.text(4)?,
                at: row.datetime(5)?,
            })
        })
        .collect()
}
