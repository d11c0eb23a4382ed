//! What posting webhooks keeps: a delivery per event and webhook, whose id is the key
//! receivers deduplicate by, and each attempt at it.

use chrono::{DateTime, Utc};
use crm_model::Storage;
use uuid::Uuid;

use crate::sql::{Arg, Row};
use crate::{Db, StoreError};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Delivered,
    /// Given up after its attempts, until someone sends it again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [Status::Pending, Status::Delivered, Status::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

/// An event to post to a webhook.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook: String,
    pub event_seq: i64,
    pub entity: String,
    pub record_id: Uuid,
    pub event: String,
    /// The JSON posted, exactly as signed.
    #[serde(skip)]
    pub body: String,
    pub status: Status,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, webhook, event_seq, entity, record_id, event, body, status, attempts, next_at, created_at, delivered_at";

fn read(row: &Row) -> Result<Delivery, StoreError> {
    let status = row.text(7)?.unwrap_or_default();
    Ok(Delivery {
        id: row.uuid(0)?.unwrap_or_default(),
        webhook: row.text(1)?.unwrap_or_default(),
        event_seq: row.int(2)?.unwrap_or_default(),
        entity: row.text(3)?.unwrap_or_default(),
        record_id: row.uuid(4)?.unwrap_or_default(),
        event: row.text(5)?.unwrap_or_default(),
        body: row.text(6)?.unwrap_or_default(),
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("a delivery is `{status}`")))?,
        attempts: row.int(8)?.unwrap_or_default(),
        next_at: row.datetime(9)?.unwrap_or_default(),
        created_at: row.datetime(10)?.unwrap_or_default(),
        delivered_at: row.datetime(11)?,
    })
}

/// Queues an event for a webhook, once: a second queuing of the same event changes nothing.
pub async fn queue(db: &Db, delivery: &Delivery) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_webhook_delivery (").push(COLUMNS).push(") VALUES (");
    sql.bind(Arg::Uuid(delivery.id)).push(", ").bind(Arg::Text(delivery.webhook.clone())).push(", ");
    sql.bind_int(delivery.event_seq).push(", ").bind(Arg::Text(delivery.entity.clone())).push(", ");
    sql.bind(Arg::Uuid(delivery.record_id)).push(", ").bind(Arg::Text(delivery.event.clone())).push(", ");
    sql.bind(Arg::Text(delivery.body.clone())).push(", ").bind(Arg::Text(delivery.status.as_str().into())).push(", ");
    sql.bind_int(delivery.attempts).push(", ").bind(Arg::Datetime(delivery.next_at)).push(", ");
    sql.bind(Arg::Datetime(delivery.created_at)).push(", ").bind(Arg::Null(Storage::Datetime)).push(")");
    sql.push(" ON CONFLICT (webhook, event_seq) DO NOTHING");
    sql.execute(db).await?;
    Ok(())
}

/// Deliveries due to be sent, oldest first, that no node holds.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_webhook_delivery WHERE status = 'pending' AND next_at <= ");
    sql.bind(Arg::Datetime(now)).push(" AND (claimed_until IS NULL OR claimed_until < ").bind(Arg::Datetime(now));
    sql.push(") ORDER BY next_at, event_seq LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// Holds a due delivery for this node until `until`; false when another node got it first.
pub async fn claim(db: &Db, id: Uuid, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_webhook_delivery SET claimed_until = ").bind(Arg::Datetime(until));
    sql.push(" WHERE id = ").bind(Arg::Uuid(id)).push(" AND status = 'pending'");
    sql.push(" AND (claimed_until IS NULL OR claimed_until < ").bind(Arg::Datetime(now)).push(")");
    Ok(sql.execute(db).await? == 1)
}

/// One attempt at a delivery, as it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i64>,
    /// The start of its answer, or why there was none.
    pub answer: Option<String>,
    pub duration_ms: i64,
}

/// Records an attempt and where the delivery stands after it: delivered, due again at
/// `next_at`, or failed; the node's hold ends.
pub async fn attempted(
    db: &Db,
    delivery: &Delivery,
    attempt: &Attempt,
    status: Status,
    next_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_webhook_attempt (delivery, at, status_code, answer, duration_ms) VALUES (");
    sql.bind(Arg::Uuid(delivery.id)).push(", ").bind(Arg::Datetime(attempt.at)).push(", ");
    sql.bind(attempt.status_code.map_or(Arg::Null(Storage::Integer), Arg::Integer)).push(", ");
    sql.bind(attempt.answer.clone().map_or(Arg::Null(Storage::Text), Arg::Text)).push(", ");
    sql.bind_int(attempt.duration_ms).push(")");
    sql.execute(db).await?;
    let mut sql = db.sql();
    sql.push("UPDATE crm_webhook_delivery SET status = ").bind(Arg::Text(status.as_str().into()));
    sql.push(", attempts = attempts + 1, claimed_until = NULL, next_at = ").bind(Arg::Datetime(next_at));
    if status == Status::Delivered {
        sql.push(", delivered_at = ").bind(Arg::Datetime(attempt.at));
    }
    sql.push(" WHERE id = ").bind(Arg::Uuid(delivery.id));
    sql.execute(db).await?;
    Ok(())
}

/// Sends a delivery again from now, whatever became of it; its attempts are kept.
pub async fn redeliver(db: &Db, webhook: &str, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_webhook_delivery SET status = 'pending', attempts = 0, claimed_until = NULL, next_at = ");
    sql.bind(Arg::Datetime(now)).push(" WHERE id = ").bind(Arg::Uuid(id));
    sql.push(" AND webhook = ").bind(Arg::Text(webhook.to_owned()));
    Ok(sql.execute(db).await? == 1)
}

/// A webhook's latest deliveries, newest first.
pub async fn log(db: &Db, webhook: &str, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT ").push(COLUMNS).push(" FROM crm_webhook_delivery WHERE webhook = ");
    sql.bind(Arg::Text(webhook.to_owned())).push(" ORDER BY created_at DESC, event_seq DESC LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(read).collect()
}

/// The attempts at deliveries, oldest first.
pub async fn attempts(db: &Db, deliveries: &[Uuid]) -> Result<Vec<(Uuid, Attempt)>, StoreError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    sql.push("SELECT delivery, at, status_code, answer, duration_ms FROM crm_webhook_attempt WHERE delivery IN (");
    sql.comma_list(deliveries, |sql, id| {
        sql.bind(Arg::Uuid(*id));
    });
    sql.push(") ORDER BY at");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            let attempt = Attempt {
                at: row.datetime(1)?.unwrap_or_default(),
                status_code: row.int(2)?,
                answer: row.text(3)?,
                duration_ms: row.int(4)?.unwrap_or_default(),
            };
            Ok((row.uuid(0)?.unwrap_or_default(), attempt))
        })
        .collect()
}

/// How many deliveries there are by status.
pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT status, COUNT(*) FROM crm_webhook_delivery GROUP BY status ORDER BY status");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| Ok((row.text(0)?.unwrap_or_default(), row.int(1)?.unwrap_or(0))))
        .collect()
}
