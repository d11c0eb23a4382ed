//! Background tasks as stored: one row per task with its progress and outcome, and the pairs
//! of records people said are not duplicates.

use chrono::{DateTime, Utc};
use crm_model::Storage;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Dialect, Row, Sql};
use crate::{Db, StoreError};

/// A task as its progress bar and its report read it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Task {
    pub id: Uuid,
    pub kind: String,
    pub entity: Option<String>,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub done: i64,
    pub total: Option<i64>,
    pub result: Option<Json>,
    pub error: Option<String>,
    #[serde(skip)]
    pub node: String,
    pub created_by: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "SELECT id, kind, entity, state, done, total, result, error, node, created_by, created_at, finished_at FROM crm_task";

fn task(row: &Row) -> Result<Task, StoreError> {
    Ok(Task {
        id: row.uuid(0)?.unwrap_or_default(),
        kind: row.text(1)?.unwrap_or_default(),
        entity: row.text(2)?,
        state: row.text(3)?.unwrap_or_default(),
        done: row.int(4)?.unwrap_or(0),
        total: row.int(5)?,
        result: row.json(6)?,
        error: row.text(7)?,
        node: row.text(8)?.unwrap_or_default(),
        created_by: row.uuid(9)?,
        created_at: row.datetime(10)?,
        finished_at: row.datetime(11)?,
    })
}

fn optional_text(text: Option<&str>) -> Arg {
    text.map_or(Arg::Null(Storage::Text), |t| Arg::Text(t.to_owned()))
}

/// The statement that records a new running task, for the caller's connection or
/// transaction (a metadata change starts its reindex with the change itself).
pub fn insert(
    dialect: Dialect,
    id: Uuid,
    kind: &str,
    entity: Option<&str>,
    node: &str,
    created_by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("INSERT INTO crm_task (id, kind, entity, state, node, created_by, created_at, updated_at) VALUES (");
    sql.bind(Arg::Uuid(id)).push(", ").bind(Arg::Text(kind.to_owned())).push(", ");
    sql.bind(optional_text(entity)).push(", 'running', ").bind(Arg::Text(node.to_owned())).push(", ");
    sql.bind(created_by.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
    sql.bind(Arg::Datetime(now)).push(", ").bind(Arg::Datetime(now));
    sql.push(")");
    sql
}

pub async fn progress(db: &Db, id: Uuid, done: i64, total: Option<i64>, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_task SET done = ").bind_int(done).push(", total = ");
    sql.bind(total.map_or(Arg::Null(Storage::Integer), Arg::Integer)).push(", updated_at = ");
    sql.bind(Arg::Datetime(now)).push(" WHERE state = 'running' AND id = ").bind(Arg::Uuid(id));
    sql.execute(db).await?;
    Ok(())
}

/// The end of a task: `done` with its result, or `failed` with the reason.
pub async fn finish(db: &Db, id: Uuid, outcome: Result<Json, String>, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = db.sql();
    match outcome {
        Ok(result) => {
            sql.push("UPDATE crm_task SET state = 'done', result = ").bind(Arg::json(db.dialect(), result));
        }
        Err(error) => {
            sql.push("UPDATE crm_task SET state = 'failed', error = ").bind(Arg::Text(error));
        }
    }
    sql.push(", updated_at = ").bind(Arg::Datetime(now)).push(", finished_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE id = ").bind(Arg::Uuid(id));
    sql.execute(db).await?;
    Ok(())
}

/// Ends every running task of a kind as done with `result` (a rebuild did their work).
pub async fn finish_all(db: &Db, kind: &str, result: Json, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_task SET state = 'done', result = ").bind(Arg::json(db.dialect(), result));
    sql.push(", updated_at = ").bind(Arg::Datetime(now)).push(", finished_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE state = 'running' AND kind = ").bind(Arg::Text(kind.to_owned()));
    sql.execute(db).await
}

/// Marks the tasks a node left running as failed: those created before `before`, when its
/// process started, ended with the process before it.
pub async fn interrupted(
    db: &Db,
    node: &str,
    reason: &str,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_task SET state = 'failed', error = ").bind(Arg::Text(reason.to_owned()));
    sql.push(", finished_at = ").bind(Arg::Datetime(now)).push(", updated_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE state = 'running' AND node = ").bind(Arg::Text(node.to_owned()));
    sql.push(" AND created_at < ").bind(Arg::Datetime(before));
    sql.execute(db).await
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Task>, StoreError> {
    let mut sql = db.sql();
    sql.push(COLUMNS).push(" WHERE id = ").bind(Arg::Uuid(id));
    sql.fetch_optional(db).await?.as_ref().map(task).transpose()
}

/// The latest task of a kind on an entity, if any.
pub async fn latest(db: &Db, kind: &str, entity: &str) -> Result<Option<Task>, StoreError> {
    let mut sql = db.sql();
    sql.push(COLUMNS).push(" WHERE kind = ").bind(Arg::Text(kind.to_owned()));
    sql.push(" AND entity = ").bind(Arg::Text(entity.to_owned())).push(" ORDER BY created_at DESC LIMIT 1");
    sql.fetch_optional(db).await?.as_ref().map(task).transpose()
}

/// A pair of records, smaller id first, as `crm_not_duplicate` keeps it.
fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

pub async fn not_duplicate(
    db: &Db,
    entity: &str,
    a: Uuid,
    b: Uuid,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (a, b) = pair(a, b);
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_not_duplicate (entity, a, b, decided_by, decided_at) VALUES (");
    sql.bind(Arg::Text(entity.to_owned())).push(", ").bind(Arg::Uuid(a)).push(", ").bind(Arg::Uuid(b));
    sql.push(", ").bind(Arg::Uuid(by)).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (entity, a, b) DO NOTHING");
    sql.execute(db).await?;
    Ok(())
}

/// Every pair of an entity's records said not to be duplicates.
pub async fn not_duplicates(db: &Db, entity: &str) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT a, b FROM crm_not_duplicate WHERE entity = ").bind(Arg::Text(entity.to_owned()));
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| Ok((row.uuid(0)?.unwrap_or_default(), row.uuid(1)?.unwrap_or_default())))
        .collect()
}
