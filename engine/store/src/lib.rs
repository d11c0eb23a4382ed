//! Storage on SQLite or PostgreSQL: connections, system tables, tables built from metadata,
//! records, and the engine's own bookkeeping (metadata rows, credentials, audit, outbox).

pub mod ddl;
pub mod records;
pub mod sql;
pub mod system;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, SqlSafeStr as _};

pub use records::Record;
pub use sql::{Arg, Dialect, Row, Sql, server};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
        matches!(self, StoreError::Unique(_))
            || matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite allows one writer at a time: writes go through one connection, so they queue
    /// in the pool instead of failing with SQLITE_BUSY, and reads use the others in parallel.
    Sqlite {
        read: sqlx::SqlitePool,
        write: sqlx::SqlitePool,
    },
    Postgres(sqlx::PgPool),
}

/// The database: a pool (two on SQLite) and its dialect. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(crate) pools: Pools,
}

/// A transaction on the write side.
pub struct Tx {
    pub(crate) inner: TxInner,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "system tables", include_str!("../../../migrations/sqlite/0001_system.sql"))];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "system tables", include_str!("../../../migrations/postgres/0001_system.sql"))];

impl Db {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str, read_connections: u32) -> Result<Self, StoreError> {
        let pools = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?
                .statement_cache_capacity(500)
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
            let pool = PgPoolOptions::new()
                .max_connections(read_connections.max(4) + 4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Pools::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL loses no committed data on an application crash; only a
                // power loss can drop the last transactions. It is the usual server choice.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .statement_cache_capacity(500)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                .pragma("mmap_size", "268435456")
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(read_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.read_only(true))
                .await?;
            Pools::Sqlite { read, write }
        };
        Ok(Self { pools })
    }

    /// A SQLite URL for a file.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    pub fn dialect(&self) -> Dialect {
        match self.pools {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn sql(&self) -> Sql {
        Sql::new(self.dialect())
    }

    /// Creates or updates the system tables.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = |list: &[(i64, &'static str, &'static str)]| {
            list.iter()
                .map(|(version, description, sql)| {
                    Migration::new(*version, (*description).into(), MigrationType::Simple, sql.into_sql_str(), false)
                })
                .collect::<Vec<_>>()
        };
        match &self.pools {
            Pools::Sqlite { write, .. } => Migrator::with_migrations(migrations(SQLITE_MIGRATIONS)).run(write).await?,
            Pools::Postgres(pool) => Migrator::with_migrations(migrations(POSTGRES_MIGRATIONS)).run(pool).await?,
        }
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin().await?),
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
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
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}
