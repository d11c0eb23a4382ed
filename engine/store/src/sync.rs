//! What syncing with an ERP keeps: the record each code is kept in (a link, with a digest of
//! the values last written), where each mapping's incremental reading stands, and the runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crm_model::Storage;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError, Tx};

/// A code's record and the digest of the values last written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub record_id: Uuid,
    pub digest: String,
}

/// Every link of a mapping, by code.
pub async fn links(db: &Db, sync: &str) -> Result<HashMap<String, Link>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT code, record_id, digest FROM crm_sync_link WHERE sync = ").bind(Arg::Text(sync.to_owned()));
    let rows = sql.fetch_all(db).await?;
    rows.iter()
        .map(|r| {
            let link = Link { record_id: r.uuid(1)?.unwrap_or_default(), digest: r.text(2)?.unwrap_or_default() };
            Ok((r.text(0)?.unwrap_or_default(), link))
        })
        .collect()
}

/// Keeps a code's link, in the transaction of the record's write.
pub async fn link(tx: &mut Tx, sync: &str, code: &str, link: &Link) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_sync_link (sync, code, record_id, digest) VALUES (").bind(Arg::Text(sync.to_owned()));
    sql.push(", ").bind(Arg::Text(code.to_owned())).push(", ").bind(Arg::Uuid(link.record_id)).push(", ");
    sql.bind(Arg::Text(link.digest.clone())).push(") ON CONFLICT (sync, code) DO UPDATE SET ");
    sql.push("record_id = excluded.record_id, digest = excluded.digest");
    sql.execute_tx(tx).await?;
    Ok(())
}

/// Forgets a code whose row is gone, in the transaction that deletes its record.
pub async fn unlink(tx: &mut Tx, sync: &str, code: &str) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("DELETE FROM crm_sync_link WHERE sync = ").bind(Arg::Text(sync.to_owned()));
    sql.push(" AND code = ").bind(Arg::Text(code.to_owned()));
    sql.execute_tx(tx).await?;
    Ok(())
}

/// Where a mapping's reading stands: the watermark reached and the fingerprint of the
/// mapping that reached it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub watermark: Option<String>,
    pub fingerprint: String,
}

pub async fn state(db: &Db, sync: &str) -> Result<Option<State>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT watermark, fingerprint FROM crm_sync_state WHERE sync = ").bind(Arg::Text(sync.to_owned()));
    let row = sql.fetch_optional(db).await?;
    row.map(|r| Ok(State { watermark: r.text(0)?, fingerprint: r.text(1)?.unwrap_or_default() })).transpose()
}

pub async fn set_state(db: &Db, sync: &str, state: &State) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_sync_state (sync, watermark, fingerprint) VALUES (").bind(Arg::Text(sync.to_owned()));
    sql.push(", ").bind(state.watermark.clone().map_or(Arg::Null(Storage::Text), Arg::Text)).push(", ");
    sql.bind(Arg::Text(state.fingerprint.clone())).push(") ON CONFLICT (sync) DO UPDATE SET ");
    sql.push("watermark = excluded.watermark, fingerprint = excluded.fingerprint");
    sql.execute(db).await?;
    Ok(())
}

/// What a run did, row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub read: i64,
    pub created: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub failed: i64,
}

/// One run of a mapping.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub id: Uuid,
    pub sync: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    pub dry_run: bool,
    /// Whether every row was compared (and rows gone from the source were seen).
    pub full: bool,
    /// `running`, `succeeded` (rows may have failed) or `failed` (the run stopped).
    pub status: String,
    pub started_by: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// Why the run stopped, when it did.
    pub message: Option<String>,
    /// `[{code, message}]`: the rows it could not keep.
    pub errors: Json,
    /// For a dry run, `[{code, action, record_id, changes}]`: what it would have done.
    pub changes: Json,
}

const COLUMNS: &str = "id, sync, trigger, dry_run, full_compare, status, started_by, started_at, finished_at, \
     read_rows, created, updated, deleted, unchanged, failed, message, errors, changes";

fn read(row: &Row) -> Result<Run, StoreError> {
    let int = |i| row.int(i).map(Option::unwrap_or_default);
    Ok(Run {
        id: row.uuid(0)?.unwrap_or_default(),
        sync: row.text(1)?.unwrap_or_default(),
        trigger: row.text(2)?.unwrap_or_default(),
        dry_run: row.boolean(3)?.unwrap_or_default(),
        full: row.boolean(4)?.unwrap_or_default(),
        status: row.text(5)?.unwrap_or_default(),
        started_by: row.uuid(6)?,
        started_at: row.datetime(7)?.unwrap_or_default(),
        finished_at: row.datetime(8)?,
        counts: Counts {
            read: int(9)?,
            created: int(10)?,
            updated: int(11)?,
            deleted: int(12)?,
            unchanged: int(13)?,
            failed: int(14)?,
        },
        message: row.text(15)?,
        errors: row.json(16)?.unwrap_or_default(),
        changes: row.json(17)?.unwrap_or_default(),
    })
}

/// Records a run as started, unless another run of the mapping started after `stale` is
/// still going; false then.
pub async fn start(db: &Db, run: &Run, stale: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_sync_run (id, sync, trigger, dry_run, full_compare, status, started_by, started_at) ");
    sql.push("SELECT ").bind(Arg::Uuid(run.id)).push(", ").bind(Arg::Text(run.sync.clone())).push(", ");
    sql.bind(Arg::Text(run.trigger.clone())).push(", ").bind(Arg::Boolean(run.dry_run)).push(", ");
    sql.bind(Arg::Boolean(run.full)).push(", ").bind(Arg::Text(run.status.clone())).push(", ");
    sql.bind(run.started_by.map_or(Arg::Null(Storage::Uuid), Arg::Uuid)).push(", ");
    sql.bind(Arg::Datetime(run.started_at));
    sql.push(" WHERE NOT EXISTS (SELECT 1 FROM crm_sync_run WHERE sync = ").bind(Arg::Text(run.sync.clone()));
    sql.push(" AND status = 'running' AND started_at > ").bind(Arg::Datetime(stale)).push(")");
    Ok(sql.execute(db).await? == 1)
}

/// Where a running run stands, for its progress bar.
pub async fn progress(db: &Db, id: Uuid, counts: &Counts) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_sync_run SET ");
    set_counts(&mut sql, counts);
    sql.push(" WHERE id = ").bind(Arg::Uuid(id));
    sql.execute(db).await?;
    Ok(())
}

fn set_counts(sql: &mut crate::Sql, counts: &Counts) {
    sql.push("read_rows = ").bind_int(counts.read).push(", created = ").bind_int(counts.created);
    sql.push(", updated = ").bind_int(counts.updated).push(", deleted = ").bind_int(counts.deleted);
    sql.push(", unchanged = ").bind_int(counts.unchanged).push(", failed = ").bind_int(counts.failed);
}

/// Records how a run ended.
pub async fn finish(db: &Db, run: &Run) -> Result<(), StoreError> {
    let dialect = db.dialect();
    let mut sql = db.sql();
    sql.push("UPDATE crm_sync_run SET status = ").bind(Arg::Text(run.status.clone())).push(", finished_at = ");
    sql.bind(run.finished_at.map_or(Arg::Null(Storage::Datetime), Arg::Datetime)).push(", ");
    set_counts(&mut sql, &run.counts);
    sql.push(", message = ").bind(run.message.clone().map_or(Arg::Null(Storage::Text), Arg::Text));
    sql.push(", errors = ").bind(Arg::json(dialect, run.errors.clone()));
    sql.push(", changes = ").bind(Arg::json(dialect, run.changes.clone()));
    sql.push(" WHERE id = ").bind(Arg::Uuid(run.id));
    sql.execute(db).await?;
    Ok(())
}

/// A mapping's latest runs, newest first.
pub async fn runs(db: &Db, sync: &str, limit: i64) -> Result<Vec<Run>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_sync_run WHERE sync = ").bind(Arg::Text(sync.to_owned()));
    sql.push(" ORDER BY started_at DESC LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

pub async fn run(db: &Db, id: Uuid) -> Result<Option<Run>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_sync_run WHERE id = ").bind(Arg::Uuid(id));
    sql.fetch_optional(db).await?.as_ref().map(read).transpose()
}
