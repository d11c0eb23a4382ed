//! Storage on SQLite or PostgreSQL: connections, system tables, tables built from metadata,
//! records, and the engine's own bookkeeping (metadata rows, credentials, audit, the outbox
//! and its consumers' cursors).

pub mod aggregate;
pub mod ddl;
pub mod jobs;
pub mod mail;
pub mod merges;
pub mod packages;
mod postgres;
pub mod records;
pub mod reports;
pub mod settings;
pub mod sql;
mod sqlite;
pub mod stats;
pub mod sync;
pub mod system;
pub mod tasks;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use records::Record;
pub use sql::{Arg, Dialect, On, Row, Sql, server};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A value in the database that the engine cannot read back; never a client's fault.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A unique index refused a value; names the column.
    #[error("duplicate value in `{0}`")]
    Unique(String),
}

impl StoreError {
    /// Whether a unique index refused the statement.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Unique(_) => true,
            StoreError::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }

    /// Why the database cannot serve at the moment, if that is what went wrong: it cannot be
    /// reached or refuses connections (`unreachable`), or it has no room left (`disk_full`).
    /// The request was not at fault and the same one may succeed later.
    pub fn unavailable(&self) -> Option<&'static str> {
        use rusqlite::ffi::ErrorCode;
        match self {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_),
            ) => Some("unreachable"),
            StoreError::Database(sqlx::Error::Database(db)) => match db.code().as_deref() {
                Some("53100") => Some("disk_full"),
                // Connections lost or refused: the server shutting down, too many connections,
                // the database gone or not accepting connections (55000 says so in words).
                Some(code)
                    if code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "53300"
                        || code == "3D000"
                        || code == "55000" && db.message().contains("accepting connections") =>
                {
                    Some("unreachable")
                }
                _ => None,
            },
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                ErrorCode::DiskFull => Some("disk_full"),
                ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::ReadOnly => Some("unreachable"),
                _ => None,
            },
            _ => None,
        }
    }

    /// The constraint (PostgreSQL) or the message naming the columns (SQLite) of a violation.
    pub(crate) fn violation_detail(&self) -> Option<String> {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db.constraint().map(str::to_owned),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(_, message)) => message.clone(),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite(sqlite::SqlitePools),
    Postgres(sqlx::PgPool),
}

/// The database: its connections and its dialect. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(crate) pools: Pools,
    pub(crate) writes: Arc<Writes>,
}

/// A transaction on the write side.
pub struct Tx {
    pub(crate) inner: TxInner,
    writes: Arc<Writes>,
}

/// How long a refused write says writes are refused, when none was tried since: longer tells
/// nothing about now.
const REFUSALS_TOLD_FOR: Duration = Duration::from_secs(30);

/// How long after a refused write a committed one says the trouble is over: while the disk is
/// full, writes that need no new room (a cursor moved in place) still commit in between.
const RECOVERED_AFTER: Duration = Duration::from_secs(2);

/// Whether the database refuses writes while it still answers reads (a full disk): the
/// reason of the last write that failed for want of the database, until writes commit again.
#[derive(Default)]
pub(crate) struct Writes {
    /// Set with `last`; every write reads it, so the lock is only taken while writes are
    /// being refused.
    refused: AtomicBool,
    last: std::sync::Mutex<Option<(&'static str, Instant)>>,
}

impl Writes {
    /// Notes how a write went: a failure that is the database's (no room, gone) is told to
    /// health checks; `committed` tells the write is over.
    pub(crate) fn noted<T>(&self, result: Result<T, StoreError>, committed: bool) -> Result<T, StoreError> {
        match &result {
            Err(e) => {
                if let Some(reason) = e.unavailable() {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((reason, Instant::now()));
                    self.refused.store(true, Ordering::Relaxed);
                }
            }
            Ok(_) if committed && self.refused.load(Ordering::Relaxed) => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|(_, at)| at.elapsed() >= RECOVERED_AFTER) {
                    *last = None;
                    self.refused.store(false, Ordering::Relaxed);
                }
            }
            Ok(_) => {}
        }
        result
    }

    fn refusing(&self) -> Option<&'static str> {
        if !self.refused.load(Ordering::Relaxed) {
            return None;
        }
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(_, at)| at.elapsed() < REFUSALS_TOLD_FOR).map(|(reason, _)| reason)
    }
}

pub(crate) enum TxInner {
    Sqlite(sqlite::SqliteTx),
    Postgres(postgres::PgTx),
}

/// The system tables' migrations: version, description, SQLite script, PostgreSQL script.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "system tables",
        include_str!("../../../migrations/sqlite/0001_system.sql"),
        include_str!("../../../migrations/postgres/0001_system.sql"),
    ),
    (
        2,
        "screen preferences and saved views",
        include_str!("../../../migrations/sqlite/0002_screens.sql"),
        include_str!("../../../migrations/postgres/0002_screens.sql"),
    ),
    (
        3,
        "stage history, reminders, schedules and approvals",
        include_str!("../../../migrations/sqlite/0003_rules.sql"),
        include_str!("../../../migrations/postgres/0003_rules.sql"),
    ),
    (
        4,
        "the source of each write, and the outbox consumers' cursors and failures",
        include_str!("../../../migrations/sqlite/0004_pipeline.sql"),
        include_str!("../../../migrations/postgres/0004_pipeline.sql"),
    ),
    (
        5,
        "background tasks with their progress, and pairs that are not duplicates",
        include_str!("../../../migrations/sqlite/0005_tasks.sql"),
        include_str!("../../../migrations/postgres/0005_tasks.sql"),
    ),
    (
        6,
        "merges of duplicate records, with what each moved, so that they can be undone",
        include_str!("../../../migrations/sqlite/0006_merge.sql"),
        include_str!("../../../migrations/postgres/0006_merge.sql"),
    ),
    (
        7,
        "reports users build and save, private or shared with roles",
        include_str!("../../../migrations/sqlite/0007_reports.sql"),
        include_str!("../../../migrations/postgres/0007_reports.sql"),
    ),
    (
        8,
        "settings, and a delivery per recipient of each mailing",
        include_str!("../../../migrations/sqlite/0008_mail.sql"),
        include_str!("../../../migrations/postgres/0008_mail.sql"),
    ),
    (
        9,
        "the first open and click of each mail, where they are tracked",
        include_str!("../../../migrations/sqlite/0009_mail_tracking.sql"),
        include_str!("../../../migrations/postgres/0009_mail_tracking.sql"),
    ),
    (
        10,
        "the audit log by actor and action, to count a user's claims from a pool",
        include_str!("../../../migrations/sqlite/0010_claims.sql"),
        include_str!("../../../migrations/postgres/0010_claims.sql"),
    ),
    (
        11,
        "webhook deliveries and their attempts",
        include_str!("../../../migrations/sqlite/0011_webhooks.sql"),
        include_str!("../../../migrations/postgres/0011_webhooks.sql"),
    ),
    (
        12,
        "sync mappings' links, watermarks and runs",
        include_str!("../../../migrations/sqlite/0012_sync.sql"),
        include_str!("../../../migrations/postgres/0012_sync.sql"),
    ),
    (
        13,
        "the packages installed, with their items as installed",
        include_str!("../../../migrations/sqlite/0013_packages.sql"),
        include_str!("../../../migrations/postgres/0013_packages.sql"),
    ),
];

impl Db {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str, read_connections: u32) -> Result<Self, StoreError> {
        let pools = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)?
                .statement_cache_capacity(500)
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
            // Encryption over the loopback protects nothing and costs both processes time on
            // every statement; a URL that names its sslmode keeps it.
            let loopback = ["127.0.0.1", "::1", "localhost"].contains(&options.get_host());
            if loopback && !url.contains("sslmode=") {
                options = options.ssl_mode(sqlx::postgres::PgSslMode::Disable);
            }
            let pool = PgPoolOptions::new()
                .max_connections(read_connections.max(4) + 4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Pools::Postgres(pool)
        } else {
            let path =
                PathBuf::from(url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url));
            let pools = tokio::task::spawn_blocking(move || sqlite::SqlitePools::open(path, read_connections))
                .await
                .map_err(|e| StoreError::Corrupt(format!("opening the database failed: {e}")))??;
            Pools::Sqlite(pools)
        };
        Ok(Self { pools, writes: Arc::default() })
    }

    /// Why writes fail while the database answers reads (`disk_full`), if the last write
    /// that was tried failed so lately.
    pub fn refusing_writes(&self) -> Option<&'static str> {
        self.writes.refusing()
    }

    /// A SQLite URL for a file.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    pub fn dialect(&self) -> Dialect {
        match self.pools {
            Pools::Sqlite(_) => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn sql(&self) -> Sql {
        Sql::new(self.dialect())
    }

    /// The node's open connections and how many of them are idle (SQLite: the readers and
    /// the writer).
    pub fn connections(&self) -> (usize, usize) {
        match &self.pools {
            Pools::Sqlite(pools) => pools.connections(),
            Pools::Postgres(pool) => (pool.size() as usize, pool.num_idle()),
        }
    }

    /// Creates or updates the system tables, one node at a time.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if tx.dialect() == Dialect::Postgres {
            let mut lock = tx.sql();
            lock.push("SELECT pg_advisory_xact_lock(7242)");
            lock.fetch_all_tx(&mut tx).await?;
        }
        tx.script("CREATE TABLE IF NOT EXISTS crm_migration (version BIGINT PRIMARY KEY, description TEXT NOT NULL)")
            .await?;
        let mut applied = tx.sql();
        applied.push("SELECT version FROM crm_migration");
        let applied: Vec<i64> =
            applied.fetch_all_tx(&mut tx).await?.iter().filter_map(|row| row.int(0).ok().flatten()).collect();
        for (version, description, sqlite, postgres) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.script(if tx.dialect() == Dialect::Sqlite { sqlite } else { postgres }).await?;
            let mut record = tx.sql();
            record.push("INSERT INTO crm_migration (version, description) VALUES (").bind_int(*version).push(", ");
            record.bind(Arg::Text((*description).to_owned())).push(")");
            record.execute_tx(&mut tx).await?;
            tracing::info!(version, description, "migrated the system tables");
        }
        tx.commit().await
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite(pools) => TxInner::Sqlite(pools.begin().await?),
            Pools::Postgres(pool) => TxInner::Postgres(postgres::PgTx::new(pool.clone())),
        };
        Ok(Tx { inner, writes: self.writes.clone() })
    }

    /// Settles the database after a large write to the tables of `entities` (and at shutdown,
    /// with none): on SQLite, copies the whole log into the database file and starts the log
    /// over once readers are done with it (the file keeps its size, so the next writes need
    /// not grow it again); on PostgreSQL, vacuums and analyses the tables, so that the planner
    /// knows their new rows and index-only scans need not visit them (autovacuum would, a
    /// minute or more later, while the first lists ran on the statistics of an empty table).
    pub async fn settle(&self, entities: &[&crm_model::Entity]) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite(pools) => pools.checkpoint().await,
            Pools::Postgres(_) => {
                for entity in entities {
                    let mut vacuum = self.sql();
                    vacuum.push("VACUUM (ANALYZE) ").ident(entity.name());
                    vacuum.execute(self).await?;
                }
                Ok(())
            }
        }
    }

    /// Closes the connections (SQLite's close when the last handle is dropped).
    pub async fn close(&self) {
        if let Pools::Postgres(pool) = &self.pools {
            pool.close().await;
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn sql(&self) -> Sql {
        Sql::new(self.dialect())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let result = match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        };
        self.writes.noted(result, true)
    }

    /// Notes how a statement of the transaction went (see [`Writes`]).
    pub(crate) fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.writes.noted(result, false)
    }

    /// Runs a script of several statements without parameters (migrations).
    async fn script(&mut self, sql: &'static str) -> Result<(), StoreError> {
        match &mut self.inner {
            TxInner::Sqlite(t) => t.script(sql).await,
            TxInner::Postgres(t) => {
                sqlx::raw_sql(sql).execute(t.connection().await?).await?;
                Ok(())
            }
        }
    }
}
