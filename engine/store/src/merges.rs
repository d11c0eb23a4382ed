//! The record of merges (C-6): the survivor, the losers, the survivor's values before, every
//! reference moved and the survivor's version after, so that a merge can be shown and undone.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError, Tx};

/// One merge as recorded.
#[derive(Debug, Clone)]
pub struct Merge {
    pub id: Uuid,
    pub entity: String,
    pub survivor: Uuid,
    /// In the order they were given.
    pub losers: Vec<Uuid>,
    /// `{field: value}` of the survivor's fields the merge changed, as they were.
    pub survivor_before: Json,
    pub survivor_version: i64,
    pub merged_by: Uuid,
    pub merged_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// A reference a merge moved from a loser to the survivor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repointed {
    pub entity: String,
    pub record_id: Uuid,
    pub field: String,
    pub loser: Uuid,
}

/// Records a merge and the references it moved, in the merge's transaction.
pub async fn insert(tx: &mut Tx, merge: &Merge, repointed: &[Repointed]) -> Result<(), StoreError> {
    let dialect = tx.dialect();
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_merge (id, entity, survivor, survivor_before, survivor_version, merged_by, merged_at) VALUES (");
    sql.bind(Arg::Uuid(merge.id)).push(", ").bind(Arg::Text(merge.entity.clone())).push(", ");
    sql.bind(Arg::Uuid(merge.survivor)).push(", ").bind(Arg::json(dialect, merge.survivor_before.clone())).push(", ");
    sql.bind_int(merge.survivor_version).push(", ").bind(Arg::Uuid(merge.merged_by)).push(", ");
    sql.bind(Arg::Datetime(merge.merged_at)).push(")");
    sql.execute_tx(tx).await?;
    let mut losers = tx.sql();
    losers.push("INSERT INTO crm_merge_loser (merge_id, position, record_id) VALUES ");
    losers.comma_list(merge.losers.iter().enumerate(), |sql, (position, loser)| {
        sql.push("(").bind(Arg::Uuid(merge.id)).push(", ").bind_int(position as i64).push(", ");
        sql.bind(Arg::Uuid(*loser)).push(")");
    });
    losers.execute_tx(tx).await?;
    for chunk in repointed.chunks(500) {
        let mut sql = tx.sql();
        sql.push("INSERT INTO crm_merge_reference (merge_id, entity, record_id, field, loser) VALUES ");
        sql.comma_list(chunk, |sql, r| {
            sql.push("(").bind(Arg::Uuid(merge.id)).push(", ").bind(Arg::Text(r.entity.clone())).push(", ");
            sql.bind(Arg::Uuid(r.record_id)).push(", ").bind(Arg::Text(r.field.clone())).push(", ");
            sql.bind(Arg::Uuid(r.loser)).push(")");
        });
        sql.execute_tx(tx).await?;
    }
    Ok(())
}

const MERGE_COLUMNS: &str =
    "SELECT id, entity, survivor, survivor_before, survivor_version, merged_by, merged_at, undone_at FROM crm_merge";

fn merge_row(row: &Row) -> Result<Merge, StoreError> {
    Ok(Merge {
        id: row.uuid(0)?.unwrap_or_default(),
        entity: row.text(1)?.unwrap_or_default(),
        survivor: row.uuid(2)?.unwrap_or_default(),
        losers: Vec::new(),
        survivor_before: row.json(3)?.unwrap_or(Json::Null),
        survivor_version: row.int(4)?.unwrap_or_default(),
        merged_by: row.uuid(5)?.unwrap_or_default(),
        merged_at: row.datetime(6)?.unwrap_or_default(),
        undone_at: row.datetime(7)?,
    })
}

async fn with_losers(db: &Db, mut merge: Merge) -> Result<Merge, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT record_id FROM crm_merge_loser WHERE merge_id = ").bind(Arg::Uuid(merge.id));
    sql.push(" ORDER BY position");
    merge.losers =
        sql.fetch_all(db).await?.iter().filter_map(|row| row.uuid(0).transpose()).collect::<Result<_, _>>()?;
    Ok(merge)
}

/// A merge and the references it moved.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<(Merge, Vec<Repointed>)>, StoreError> {
    let mut sql = db.sql();
    sql.push(MERGE_COLUMNS).push(" WHERE id = ").bind(Arg::Uuid(id));
    let Some(row) = sql.fetch_optional(db).await? else { return Ok(None) };
    let merge = with_losers(db, merge_row(&row)?).await?;
    let mut sql = db.sql();
    sql.push("SELECT entity, record_id, field, loser FROM crm_merge_reference WHERE merge_id = ").bind(Arg::Uuid(id));
    sql.push(" ORDER BY entity, record_id, field");
    let repointed = sql
        .fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(Repointed {
                entity: row.text(0)?.unwrap_or_default(),
                record_id: row.uuid(1)?.unwrap_or_default(),
                field: row.text(2)?.unwrap_or_default(),
                loser: row.uuid(3)?.unwrap_or_default(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some((merge, repointed)))
}

/// The latest merge into a record that is not undone.
pub async fn latest_into(db: &Db, entity: &str, survivor: Uuid) -> Result<Option<Merge>, StoreError> {
    let mut sql = db.sql();
    sql.push(MERGE_COLUMNS).push(" WHERE entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND survivor = ")
        .bind(Arg::Uuid(survivor))
        .push(" AND undone_at IS NULL ORDER BY merged_at DESC LIMIT 1");
    match sql.fetch_optional(db).await? {
        Some(row) => Ok(Some(with_losers(db, merge_row(&row)?).await?)),
        None => Ok(None),
    }
}

/// Which of `ids` a merge that is not undone put in the recycle bin: (loser, survivor).
pub async fn merged_into(db: &Db, entity: &str, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    sql.push("SELECT l.record_id, m.survivor FROM crm_merge_loser l JOIN crm_merge m ON m.id = l.merge_id");
    sql.push(" WHERE m.undone_at IS NULL AND m.entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND l.record_id IN (");
    sql.comma_list(ids, |sql, id| {
        sql.bind(Arg::Uuid(*id));
    });
    sql.push(") ORDER BY m.merged_at");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| Ok((row.uuid(0)?.unwrap_or_default(), row.uuid(1)?.unwrap_or_default())))
        .collect()
}

/// Marks a merge undone, in the undo's transaction.
pub async fn mark_undone(tx: &mut Tx, id: Uuid, by: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = tx.sql();
    sql.push("UPDATE crm_merge SET undone_by = ").bind(Arg::Uuid(by)).push(", undone_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE id = ").bind(Arg::Uuid(id)).push(" AND undone_at IS NULL");
    sql.execute_tx(tx).await?;
    Ok(())
}
