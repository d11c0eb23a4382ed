//! What sending mail keeps: a delivery row per recipient of each mailing, whose key is the
//! send's idempotency key, and the addresses that asked for no more.

use chrono::{DateTime, Utc};
use crm_model::Storage;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError, Tx};

/// Where a recipient's mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Chosen for a mailing saved as a draft.
    Draft,
    Queued,
    /// Handed to the server; its answer is not recorded yet (the process may have stopped).
    Sending,
    Sent,
    Failed,
    /// Not sent: no address, or the recipient unsubscribed.
    Skipped,
    /// Refused for good by the recipient's server: the address does not take mail.
    Bounced,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Draft,
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Skipped,
        Status::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Bounced => "bounced",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One recipient's delivery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub mailing_id: Uuid,
    pub entity: String,
    pub record_id: Uuid,
    #[serde(serialize_with = "status_text")]
    pub status: Status,
    pub address: Option<String>,
    /// The subject as merged for the recipient, once it was.
    pub subject: Option<String>,
    pub attempts: i64,
    pub answer: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When the recipient first opened it, where opens are tracked.
    pub opened_at: Option<DateTime<Utc>>,
    /// When the recipient first followed a link in it, where clicks are tracked.
    pub clicked_at: Option<DateTime<Utc>>,
}

fn status_text<S: serde::Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(status.as_str())
}

const COLUMNS: &str = "mailing_id, entity, record_id, status, address, subject, attempts, answer, updated_at, sent_at, opened_at, clicked_at";

fn read(row: &Row) -> Result<Delivery, StoreError> {
    let status = row.text(3)?.unwrap_or_default();
    Ok(Delivery {
        mailing_id: row.uuid(0)?.unwrap_or_default(),
        entity: row.text(1)?.unwrap_or_default(),
        record_id: row.uuid(2)?.unwrap_or_default(),
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("a delivery is `{status}`")))?,
        address: row.text(4)?,
        subject: row.text(5)?,
        attempts: row.int(6)?.unwrap_or_default(),
        answer: row.text(7)?,
        updated_at: row.datetime(8)?.unwrap_or_default(),
        sent_at: row.datetime(9)?,
        opened_at: row.datetime(10)?,
        clicked_at: row.datetime(11)?,
    })
}

/// Most rows one statement inserts (PostgreSQL takes at most 65,535 parameters).
const INSERT_CHUNK: usize = 5000;

/// Adds recipients to a mailing, in the transaction that saves it; a recipient it already has
/// is left as it is.
pub async fn add_recipients(
    tx: &mut Tx,
    mailing: Uuid,
    entity: &str,
    ids: &[Uuid],
    status: Status,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut sql = tx.sql();
        sql.push("INSERT INTO crm_mail_delivery (mailing_id, entity, record_id, status, updated_at) VALUES ");
        sql.comma_list(chunk, |sql, id| {
            sql.push("(").bind(Arg::Uuid(mailing)).push(", ").bind(Arg::Text(entity.to_owned())).push(", ");
            sql.bind(Arg::Uuid(*id)).push(", ").bind(Arg::Text(status.as_str().to_owned())).push(", ");
            sql.bind(Arg::Datetime(now)).push(")");
        });
        sql.push(" ON CONFLICT (mailing_id, entity, record_id) DO NOTHING");
        sql.execute_tx(tx).await?;
    }
    Ok(())
}

/// Moves a mailing's recipients from one status to another (a draft sent); returns how many.
pub async fn move_all(
    tx: &mut Tx,
    mailing: Uuid,
    from: Status,
    to: Status,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut sql = tx.sql();
    sql.push("UPDATE crm_mail_delivery SET status = ").bind(Arg::Text(to.as_str().to_owned()));
    sql.push(", updated_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE mailing_id = ").bind(Arg::Uuid(mailing));
    sql.push(" AND status = ").bind(Arg::Text(from.as_str().to_owned()));
    sql.execute_tx(tx).await
}

/// The next recipients of a mailing to send to, in a stable order: those queued, and those
/// left `sending` by a process that stopped before it recorded the server's answer.
pub async fn due(db: &Db, mailing: Uuid, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_mail_delivery WHERE mailing_id = ").bind(Arg::Uuid(mailing));
    sql.push(" AND status IN ('queued', 'sending') ORDER BY record_id LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// Records what became of one recipient's mail.
pub async fn mark(db: &Db, delivery: &Delivery) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_mail_delivery SET status = ").bind(Arg::Text(delivery.status.as_str().to_owned()));
    sql.push(", address = ").bind(delivery.address.clone().map_or(Arg::Null(Storage::Text), Arg::Text));
    sql.push(", subject = ").bind(delivery.subject.clone().map_or(Arg::Null(Storage::Text), Arg::Text));
    sql.push(", attempts = ").bind_int(delivery.attempts);
    sql.push(", answer = ").bind(delivery.answer.clone().map_or(Arg::Null(Storage::Text), Arg::Text));
    sql.push(", updated_at = ").bind(Arg::Datetime(delivery.updated_at));
    sql.push(", sent_at = ").bind(delivery.sent_at.map_or(Arg::Null(Storage::Datetime), Arg::Datetime));
    sql.push(" WHERE mailing_id = ").bind(Arg::Uuid(delivery.mailing_id));
    sql.push(" AND entity = ").bind(Arg::Text(delivery.entity.clone()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(delivery.record_id));
    sql.execute(db).await?;
    Ok(())
}

/// What a recipient did with a mail: opened it, or followed a link (which opened it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    Opened,
    Clicked,
}

/// Records the first open or click of a sent mail; later ones change nothing. Returns whether
/// the recipient's delivery was found sent.
pub async fn engage(
    db: &Db,
    mailing: Uuid,
    entity: &str,
    record: Uuid,
    what: Engagement,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_mail_delivery SET opened_at = COALESCE(opened_at, ").bind(Arg::Datetime(now)).push(")");
    if what == Engagement::Clicked {
        sql.push(", clicked_at = COALESCE(clicked_at, ").bind(Arg::Datetime(now)).push(")");
    }
    sql.push(" WHERE mailing_id = ").bind(Arg::Uuid(mailing));
    sql.push(" AND entity = ").bind(Arg::Text(entity.to_owned()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(record));
    sql.push(" AND status = 'sent'");
    Ok(sql.execute(db).await? > 0)
}

/// How many recipients of a mailing opened it and how many followed a link.
pub async fn engaged(db: &Db, mailing: Uuid) -> Result<(i64, i64), StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT COUNT(opened_at), COUNT(clicked_at) FROM crm_mail_delivery WHERE mailing_id = ");
    sql.bind(Arg::Uuid(mailing));
    let rows = sql.fetch_all(db).await?;
    let row = rows.first().ok_or_else(|| StoreError::Corrupt("a count without a row".into()))?;
    Ok((row.int(0)?.unwrap_or_default(), row.int(1)?.unwrap_or_default()))
}

/// How many recipients of a mailing are at each status.
pub async fn counts(db: &Db, mailing: Uuid) -> Result<Vec<(Status, i64)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT status, COUNT(*) FROM crm_mail_delivery WHERE mailing_id = ").bind(Arg::Uuid(mailing));
    sql.push(" GROUP BY status");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            let status = row.text(0)?.unwrap_or_default();
            let status =
                Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("a delivery is `{status}`")))?;
            Ok((status, row.int(1)?.unwrap_or_default()))
        })
        .collect()
}

/// A page of a mailing's recipients, optionally at one status, after a record id.
pub async fn page(
    db: &Db,
    mailing: Uuid,
    status: Option<Status>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_mail_delivery WHERE mailing_id = ").bind(Arg::Uuid(mailing));
    if let Some(status) = status {
        sql.push(" AND status = ").bind(Arg::Text(status.as_str().to_owned()));
    }
    if let Some(after) = after {
        sql.push(" AND record_id > ").bind(Arg::Uuid(after));
    }
    sql.push(" ORDER BY record_id LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// The mails sent to one record (its timeline), newest first.
pub async fn of_record(db: &Db, entity: &str, record: Uuid, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM crm_mail_delivery WHERE entity = ")
        .bind(Arg::Text(entity.to_owned()));
    sql.push(" AND record_id = ").bind(Arg::Uuid(record));
    sql.push(" AND status <> 'draft' ORDER BY updated_at DESC LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// Keeps an address from marketing mail from now on (kept lowercase).
pub async fn suppress(
    db: &Db,
    address: &str,
    entity: &str,
    record: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_mail_suppression (address, entity, record_id, created_at) VALUES (");
    sql.bind(Arg::Text(address.trim().to_lowercase())).push(", ").bind(Arg::Text(entity.to_owned())).push(", ");
    sql.bind(Arg::Uuid(record)).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (address) DO NOTHING");
    sql.execute(db).await?;
    Ok(())
}

/// Which of these addresses (lowercase) asked for no marketing mail.
pub async fn suppressed(db: &Db, addresses: &[String]) -> Result<Vec<String>, StoreError> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    sql.push("SELECT address FROM crm_mail_suppression WHERE address IN (");
    sql.comma_list(addresses, |sql, address| {
        sql.bind(Arg::Text(address.clone()));
    });
    sql.push(")");
    sql.fetch_all(db).await?.iter().map(|row| Ok(row.text(0)?.unwrap_or_default())).collect()
}
