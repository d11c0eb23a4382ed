//! The outbox as its consumers read it: events in commit order after a cursor, the cursors
//! (one per node for node-local consumers, one claimed by a node at a time for shared ones),
//! and the events a consumer failed on.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::sql::{Arg, Dialect, Row};
use crate::{Db, StoreError};

/// One event of the outbox.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    /// The transaction that wrote it (PostgreSQL; 0 on SQLite, whose writes commit in order).
    pub tx: i64,
    pub at: DateTime<Utc>,
    pub entity: String,
    pub record_id: Uuid,
    pub event: String,
    pub payload: Json,
}

/// Where a consumer has read up to, in commit order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub tx: i64,
    pub seq: i64,
}

const EVENT_COLUMNS_SQLITE: &str = "SELECT seq, 0, at, entity, record_id, event, payload FROM crm_outbox";
const EVENT_COLUMNS_POSTGRES: &str =
    "SELECT seq, tx::text::bigint, at, entity, record_id, event, payload FROM crm_outbox";

fn event(row: &Row) -> Result<Event, StoreError> {
    Ok(Event {
        seq: row.int(0)?.unwrap_or(0),
        tx: row.int(1)?.unwrap_or(0),
        at: row.datetime(2)?.unwrap_or_default(),
        entity: row.text(3)?.unwrap_or_default(),
        record_id: row.uuid(4)?.unwrap_or_default(),
        event: row.text(5)?.unwrap_or_default(),
        payload: row.json(6)?.unwrap_or(Json::Null),
    })
}

/// Events after a position, in commit order. On PostgreSQL only events of transactions older
/// than every transaction still running are read: sequence numbers are drawn before commit,
/// so a smaller one may still appear, but never below that horizon.
pub async fn events_after(db: &Db, after: Position, limit: i64) -> Result<Vec<Event>, StoreError> {
    let mut sql = db.sql();
    match db.dialect() {
        Dialect::Sqlite => {
            sql.push(EVENT_COLUMNS_SQLITE).push(" WHERE seq > ").bind_int(after.seq).push(" ORDER BY seq");
        }
        Dialect::Postgres => {
            sql.push(EVENT_COLUMNS_POSTGRES).push(" WHERE (tx, seq) > (CAST(");
            sql.bind(Arg::Text(after.tx.to_string())).push(" AS xid8), ").bind_int(after.seq);
            sql.push(") AND tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY tx, seq");
        }
    }
    sql.push(" LIMIT ").bind_int(limit);
    sql.fetch_all(db).await?.iter().map(event).collect()
}

/// Whether what a consumer keeps may lack events, in one trip: any event this connection
/// sees lies after its position (on PostgreSQL including those of recent transactions that
/// [`events_after`] does not hand out yet), or it failed on some, to be tried again or dead.
pub async fn lacking(db: &Db, consumer: &str, node: &str, after: Position) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    // The first event after the position, as a value rather than `EXISTS`, whose subquery
    // loses its order: the order makes PostgreSQL's planner walk the index from the
    // position; without it, it guesses a third of the rows lie after and scans the table
    // for the first, all of it when none does (30 ms at 100k events, on every `contains`
    // filter).
    match db.dialect() {
        Dialect::Sqlite => {
            sql.push("SELECT 1 WHERE (SELECT seq FROM crm_outbox WHERE seq > ").bind_int(after.seq);
        }
        Dialect::Postgres => {
            sql.push("SELECT 1 WHERE (SELECT seq FROM crm_outbox WHERE (tx, seq) > (CAST(");
            sql.bind(Arg::Text(after.tx.to_string())).push(" AS xid8), ").bind_int(after.seq);
            sql.push(") ORDER BY tx, seq");
        }
    }
    sql.push(" LIMIT 1) IS NOT NULL OR EXISTS (SELECT 1 FROM crm_job_failure WHERE consumer = ");
    sql.bind(Arg::Text(consumer.to_owned())).push(" AND node = ").bind(Arg::Text(node.to_owned())).push(")");
    Ok(sql.fetch_optional(db).await?.is_some())
}

/// One event by its number.
pub async fn event_by_seq(db: &Db, seq: i64) -> Result<Option<Event>, StoreError> {
    let mut sql = db.sql();
    sql.push(if db.dialect() == Dialect::Sqlite { EVENT_COLUMNS_SQLITE } else { EVENT_COLUMNS_POSTGRES });
    sql.push(" WHERE seq = ").bind_int(seq);
    sql.fetch_optional(db).await?.as_ref().map(event).transpose()
}

/// The position after the last event written so far: where a consumer that does not need the
/// past starts.
pub async fn end(db: &Db) -> Result<Position, StoreError> {
    let mut sql = db.sql();
    match db.dialect() {
        Dialect::Sqlite => sql.push("SELECT 0, COALESCE(MAX(seq), 0) FROM crm_outbox"),
        Dialect::Postgres => sql.push(
            "SELECT tx::text::bigint, seq FROM crm_outbox WHERE tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY tx DESC, seq DESC LIMIT 1",
        ),
    };
    let row = sql.fetch_optional(db).await?;
    Ok(match row {
        Some(row) => Position { tx: row.int(0)?.unwrap_or(0), seq: row.int(1)?.unwrap_or(0) },
        None => Position::default(),
    })
}

/// A consumer's cursor on a node (`""` for a shared consumer), if it has one.
pub async fn cursor(db: &Db, consumer: &str, node: &str) -> Result<Option<Position>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT tx, seq FROM crm_job_cursor WHERE consumer = ").bind(Arg::Text(consumer.to_owned()));
    sql.push(" AND node = ").bind(Arg::Text(node.to_owned()));
    let row = sql.fetch_optional(db).await?;
    row.map(|row| Ok(Position { tx: row.int(0)?.unwrap_or(0), seq: row.int(1)?.unwrap_or(0) })).transpose()
}

/// Creates a cursor at `at` unless it exists.
pub async fn start_cursor(
    db: &Db,
    consumer: &str,
    node: &str,
    at: Position,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_job_cursor (consumer, node, tx, seq, updated_at) VALUES (");
    sql.bind(Arg::Text(consumer.to_owned())).push(", ").bind(Arg::Text(node.to_owned())).push(", ");
    sql.bind_int(at.tx).push(", ").bind_int(at.seq).push(", ").bind(Arg::Datetime(now));
    sql.push(") ON CONFLICT (consumer, node) DO NOTHING");
    sql.execute(db).await?;
    Ok(())
}

/// Moves a cursor forward.
pub async fn advance(db: &Db, consumer: &str, node: &str, to: Position, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_job_cursor SET tx = ").bind_int(to.tx).push(", seq = ").bind_int(to.seq);
    sql.push(", updated_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE consumer = ").bind(Arg::Text(consumer.to_owned()));
    sql.push(" AND node = ").bind(Arg::Text(node.to_owned()));
    sql.execute(db).await?;
    Ok(())
}

/// Claims a shared consumer for a node until `until`: it is free, already this node's, or
/// its last claim ran out (its node stopped). Returns whether this node holds it.
pub async fn claim(
    db: &Db,
    consumer: &str,
    node: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_job_cursor SET claimed_by = ").bind(Arg::Text(node.to_owned()));
    sql.push(", claimed_until = ").bind(Arg::Datetime(until));
    sql.push(" WHERE consumer = ").bind(Arg::Text(consumer.to_owned())).push(" AND node = ''");
    sql.push(" AND (claimed_by IS NULL OR claimed_by = ").bind(Arg::Text(node.to_owned()));
    sql.push(" OR claimed_until < ").bind(Arg::Datetime(now)).push(")");
    Ok(sql.execute(db).await? == 1)
}

/// Records that a consumer failed on an event: the attempts so far, and when to try again;
/// `dead` keeps it for an administrator instead.
#[expect(clippy::too_many_arguments, reason = "the parts of one failure")]
pub async fn failed(
    db: &Db,
    consumer: &str,
    node: &str,
    seq: i64,
    attempts: i64,
    error: &str,
    now: DateTime<Utc>,
    next_at: DateTime<Utc>,
    dead: bool,
) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_job_failure (consumer, node, seq, attempts, error, first_at, next_at, dead) VALUES (");
    sql.bind(Arg::Text(consumer.to_owned())).push(", ").bind(Arg::Text(node.to_owned())).push(", ");
    sql.bind_int(seq).push(", ").bind_int(attempts).push(", ").bind(Arg::Text(error.to_owned())).push(", ");
    sql.bind(Arg::Datetime(now)).push(", ").bind(Arg::Datetime(next_at)).push(", ").bind(Arg::Boolean(dead));
    sql.push(") ON CONFLICT (consumer, node, seq) DO UPDATE SET attempts = excluded.attempts, error = excluded.error,");
    sql.push(" next_at = excluded.next_at, dead = excluded.dead");
    sql.execute(db).await?;
    Ok(())
}

/// A failed event that is not dead and whose next attempt is due.
#[derive(Debug, Clone)]
pub struct Due {
    pub seq: i64,
    pub attempts: i64,
}

pub async fn due(db: &Db, consumer: &str, node: &str, now: DateTime<Utc>) -> Result<Vec<Due>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT seq, attempts FROM crm_job_failure WHERE consumer = ").bind(Arg::Text(consumer.to_owned()));
    sql.push(" AND node = ").bind(Arg::Text(node.to_owned()));
    sql.push(" AND dead = ").bind(Arg::Boolean(false));
    sql.push(" AND next_at <= ").bind(Arg::Datetime(now)).push(" ORDER BY seq LIMIT 100");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| Ok(Due { seq: row.int(0)?.unwrap_or(0), attempts: row.int(1)?.unwrap_or(0) }))
        .collect()
}

/// Forgets a failure: its event went through.
pub async fn recovered(db: &Db, consumer: &str, node: &str, seq: i64) -> Result<(), StoreError> {
    let mut sql = db.sql();
    sql.push("DELETE FROM crm_job_failure WHERE consumer = ").bind(Arg::Text(consumer.to_owned()));
    sql.push(" AND node = ").bind(Arg::Text(node.to_owned())).push(" AND seq = ").bind_int(seq);
    sql.execute(db).await?;
    Ok(())
}

/// Sends a consumer's dead events again, now; returns how many.
pub async fn revive(db: &Db, consumer: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut sql = db.sql();
    sql.push("UPDATE crm_job_failure SET dead = ").bind(Arg::Boolean(false));
    sql.push(", attempts = 0, next_at = ").bind(Arg::Datetime(now));
    sql.push(" WHERE consumer = ").bind(Arg::Text(consumer.to_owned())).push(" AND dead = ").bind(Arg::Boolean(true));
    sql.execute(db).await
}

/// A cursor as administrators see it: how far it is, and how many events wait after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CursorState {
    pub consumer: String,
    pub node: String,
    pub seq: i64,
    pub lag: i64,
    pub updated_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
}

pub async fn cursors(db: &Db) -> Result<Vec<CursorState>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT c.consumer, c.node, c.seq, c.updated_at, c.claimed_by, c.claimed_until, ");
    sql.push(match db.dialect() {
        Dialect::Sqlite => "(SELECT COUNT(*) FROM crm_outbox o WHERE o.seq > c.seq)",
        Dialect::Postgres => "(SELECT COUNT(*) FROM crm_outbox o WHERE (o.tx, o.seq) > (c.tx::text::xid8, c.seq))",
    });
    sql.push(" FROM crm_job_cursor c ORDER BY c.consumer, c.node");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(CursorState {
                consumer: row.text(0)?.unwrap_or_default(),
                node: row.text(1)?.unwrap_or_default(),
                seq: row.int(2)?.unwrap_or(0),
                updated_at: row.datetime(3)?,
                claimed_by: row.text(4)?,
                claimed_until: row.datetime(5)?,
                lag: row.int(6)?.unwrap_or(0),
            })
        })
        .collect()
}

/// A failed event as administrators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub consumer: String,
    pub node: String,
    pub seq: i64,
    pub attempts: i64,
    pub error: String,
    pub first_at: Option<DateTime<Utc>>,
    pub next_at: Option<DateTime<Utc>>,
    pub dead: bool,
}

pub async fn failures(db: &Db) -> Result<Vec<Failure>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT consumer, node, seq, attempts, error, first_at, next_at, dead FROM crm_job_failure");
    sql.push(" ORDER BY consumer, seq LIMIT 1000");
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok(Failure {
                consumer: row.text(0)?.unwrap_or_default(),
                node: row.text(1)?.unwrap_or_default(),
                seq: row.int(2)?.unwrap_or(0),
                attempts: row.int(3)?.unwrap_or(0),
                error: row.text(4)?.unwrap_or_default(),
                first_at: row.datetime(5)?,
                next_at: row.datetime(6)?,
                dead: row.boolean(7)?.unwrap_or(false),
            })
        })
        .collect()
}
