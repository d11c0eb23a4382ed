//! SQLite through rusqlite: one write connection behind an async lock (SQLite has one writer
//! at a time, so writes queue here instead of failing with SQLITE_BUSY) and a pool of
//! read-only connections. Each statement runs on a blocking thread and hands back owned rows,
//! so a page of rows costs one thread hop, not one per row.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value as Cell};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::sql::{Arg, sqlite_datetime};

fn open(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(512);
    // With WAL, NORMAL loses no committed data on an application crash; only a power loss can
    // drop the last transactions. It is the usual server choice.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 268435456;",
    )?;
    Ok(conn)
}

struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
}

/// The connections to one SQLite file.
#[derive(Clone)]
pub(crate) struct SqlitePools {
    read: Arc<ReadPool>,
    /// Held by a transaction for its whole life: the writer's turn.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    write: Arc<Mutex<Connection>>,
}

/// A result row: its cells, owned.
pub(crate) type Cells = Vec<Cell>;

fn bind(arg: &Arg) -> ToSqlOutput<'_> {
    use rusqlite::types::ValueRef;
    match arg {
        Arg::Null(_) => ToSqlOutput::Owned(Cell::Null),
        Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Arg::Integer(n) => ToSqlOutput::Owned(Cell::Integer(*n)),
        Arg::Boolean(b) => ToSqlOutput::Owned(Cell::Integer(i64::from(*b))),
        Arg::Date(d) => ToSqlOutput::Owned(Cell::Text(d.format("%Y-%m-%d").to_string())),
        Arg::Datetime(dt) => ToSqlOutput::Owned(Cell::Text(sqlite_datetime(dt))),
        Arg::Uuid(id) => ToSqlOutput::Owned(Cell::Text(id.to_string())),
        Arg::Json(json) => ToSqlOutput::Owned(Cell::Text(json.to_string())),
    }
}

/// Runs one statement on a connection: its rows when it returns any, and the changed-row
/// count.
fn run(conn: &Connection, sql: &str, args: &[Arg]) -> Result<(Vec<Cells>, u64), StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    for (i, arg) in args.iter().enumerate() {
        statement.raw_bind_parameter(i + 1, bind(arg))?;
    }
    let columns = statement.column_count();
    if columns == 0 {
        let changed = statement.raw_execute()?;
        return Ok((Vec::new(), changed as u64));
    }
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            cells.push(row.get::<_, Cell>(i)?);
        }
        out.push(cells);
    }
    drop(rows);
    let changed = conn.changes();
    Ok((out, changed))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Corrupt(format!("a database thread failed: {e}")))?
}

impl SqlitePools {
    pub(crate) fn open(path: PathBuf, readers: u32) -> Result<Self, StoreError> {
        let write = open(&path, false)?;
        let idle = (0..readers.max(1)).map(|_| open(&path, true)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            read: Arc::new(ReadPool {
                idle: Mutex::new(idle),
                permits: tokio::sync::Semaphore::new(readers.max(1) as usize),
            }),
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
            write: Arc::new(Mutex::new(write)),
        })
    }

    /// Runs a statement on a read connection.
    pub(crate) async fn read(&self, sql: String, args: Vec<Arg>) -> Result<Vec<Cells>, StoreError> {
        let _permit =
            self.read.permits.acquire().await.map_err(|_| StoreError::Corrupt("the pool is closed".into()))?;
        let pool = self.read.clone();
        blocking(move || {
            let conn = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = conn.ok_or_else(|| StoreError::Corrupt("no idle read connection".into()))?;
            let result = run(&conn, &sql, &args);
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            Ok(result?.0)
        })
        .await
    }

    /// Runs a statement on the write connection outside any transaction.
    pub(crate) async fn write(&self, sql: String, args: Vec<Arg>) -> Result<(Vec<Cells>, u64), StoreError> {
        let _turn = self.write_turn.lock().await;
        let conn = self.write.clone();
        blocking(move || run(&lock(&conn), &sql, &args)).await
    }

    /// Takes the writer's turn; the transaction itself begins with its first statement, in
    /// the same trip to the database.
    pub(crate) async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let turn = self.write_turn.clone().lock_owned().await;
        Ok(SqliteTx { _turn: turn, conn: self.write.clone(), begun: false })
    }
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// A transaction on the write connection; rolled back if dropped before `commit`.
pub(crate) struct SqliteTx {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    conn: Arc<Mutex<Connection>>,
    begun: bool,
}

/// Starts the transaction on its first statement.
fn begin_once(conn: &Connection, begun: bool) -> Result<(), StoreError> {
    if !begun {
        // A transaction whose task was cancelled may not have rolled back yet.
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
    }
    Ok(())
}

impl SqliteTx {
    pub(crate) async fn run(&mut self, sql: String, args: Vec<Arg>) -> Result<(Vec<Cells>, u64), StoreError> {
        let conn = self.conn.clone();
        let begun = std::mem::replace(&mut self.begun, true);
        blocking(move || {
            let conn = lock(&conn);
            begin_once(&conn, begun)?;
            run(&conn, &sql, &args)
        })
        .await
    }

    /// Runs several statements in one trip.
    pub(crate) async fn run_all(&mut self, statements: Vec<(String, Vec<Arg>)>) -> Result<(), StoreError> {
        let conn = self.conn.clone();
        let begun = std::mem::replace(&mut self.begun, true);
        blocking(move || {
            let conn = lock(&conn);
            begin_once(&conn, begun)?;
            for (sql, args) in &statements {
                run(&conn, sql, args)?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn script(&mut self, sql: &'static str) -> Result<(), StoreError> {
        let conn = self.conn.clone();
        let begun = std::mem::replace(&mut self.begun, true);
        blocking(move || {
            let conn = lock(&conn);
            begin_once(&conn, begun)?;
            Ok(conn.execute_batch(sql)?)
        })
        .await
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if !std::mem::replace(&mut self.begun, false) {
            return Ok(());
        }
        let conn = self.conn.clone();
        blocking(move || Ok(lock(&conn).execute_batch("COMMIT")?)).await
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.begun {
            let conn = lock(&self.conn);
            if !conn.is_autocommit() {
                // Rolling back is immediate in SQLite; it must happen before the writer's turn
                // passes to the next transaction.
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}
