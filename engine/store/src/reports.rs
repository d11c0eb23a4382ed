//! Reports users build in the browser and save (D-2): a report document with its owner and
//! the roles it is shared with. Whoever opens one runs it in their own scope.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError};

/// A saved report as stored.
#[derive(Debug, Clone)]
pub struct SavedReport {
    pub id: Uuid,
    pub owner: Uuid,
    /// The report as metadata writes it.
    pub doc: Json,
    pub roles: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// The saved reports a user has: their own and those shared with one of their roles; every
/// one for an administrator. Newest first.
pub async fn visible(db: &Db, user: Uuid, roles: &[String], admin: bool) -> Result<Vec<SavedReport>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, owner, doc, updated_at FROM crm_user_report");
    if !admin {
        sql.push(" WHERE owner = ").bind(Arg::Uuid(user));
        if !roles.is_empty() {
            sql.push(" OR id IN (SELECT report_id FROM crm_user_report_role WHERE role IN (");
            sql.comma_list(roles, |sql, role| {
                sql.bind(Arg::Text(role.clone()));
            });
            sql.push("))");
        }
    }
    sql.push(" ORDER BY updated_at DESC, id");
    let rows = sql.fetch_all(db).await?;
    let mut reports = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<Uuid> = reports.iter().map(|r| r.id).collect();
    let shares = shares(db, &ids).await?;
    for report in &mut reports {
        report.roles = shares.iter().filter(|(id, _)| *id == report.id).map(|(_, role)| role.clone()).collect();
    }
    Ok(reports)
}

/// One saved report by id.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<SavedReport>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT id, owner, doc, updated_at FROM crm_user_report WHERE id = ").bind(Arg::Uuid(id));
    let Some(row) = sql.fetch_optional(db).await? else { return Ok(None) };
    let mut report = read(&row)?;
    report.roles = shares(db, &[id]).await?.into_iter().map(|(_, role)| role).collect();
    Ok(Some(report))
}

/// Creates or replaces a saved report and the roles it is shared with, in one transaction.
pub async fn save(db: &Db, report: &SavedReport) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let dialect = tx.dialect();
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_user_report (id, owner, doc, created_at, updated_at) VALUES (");
    sql.bind(Arg::Uuid(report.id)).push(", ").bind(Arg::Uuid(report.owner)).push(", ");
    sql.bind(Arg::json(dialect, report.doc.clone())).push(", ").bind(Arg::Datetime(report.updated_at)).push(", ");
    sql.bind(Arg::Datetime(report.updated_at));
    sql.push(") ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at");
    sql.execute_tx(&mut tx).await?;
    let mut clear = tx.sql();
    clear.push("DELETE FROM crm_user_report_role WHERE report_id = ").bind(Arg::Uuid(report.id));
    clear.execute_tx(&mut tx).await?;
    if !report.roles.is_empty() {
        let mut share = tx.sql();
        share.push("INSERT INTO crm_user_report_role (report_id, role) VALUES ");
        share.comma_list(&report.roles, |sql, role| {
            sql.push("(").bind(Arg::Uuid(report.id)).push(", ").bind(Arg::Text(role.clone())).push(")");
        });
        share.execute_tx(&mut tx).await?;
    }
    tx.commit().await
}

/// Deletes a saved report; false if there is none with that id.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let mut shares = tx.sql();
    shares.push("DELETE FROM crm_user_report_role WHERE report_id = ").bind(Arg::Uuid(id));
    shares.execute_tx(&mut tx).await?;
    let mut sql = tx.sql();
    sql.push("DELETE FROM crm_user_report WHERE id = ").bind(Arg::Uuid(id));
    let deleted = sql.execute_tx(&mut tx).await? > 0;
    tx.commit().await?;
    Ok(deleted)
}

fn read(row: &Row) -> Result<SavedReport, StoreError> {
    Ok(SavedReport {
        id: row.uuid(0)?.unwrap_or_default(),
        owner: row.uuid(1)?.unwrap_or_default(),
        doc: row.json(2)?.unwrap_or_default(),
        roles: Vec::new(),
        updated_at: row.datetime(3)?.unwrap_or_default(),
    })
}

/// `(report, role)` for each role the reports are shared with.
async fn shares(db: &Db, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    sql.push("SELECT report_id, role FROM crm_user_report_role WHERE report_id IN (");
    sql.comma_list(ids, |sql, id| {
        sql.bind(Arg::Uuid(*id));
    });
    sql.push(") ORDER BY role");
    let rows = sql.fetch_all(db).await?;
    rows.iter().map(|row| Ok((row.uuid(0)?.unwrap_or_default(), row.text(1)?.unwrap_or_default()))).collect()
}
