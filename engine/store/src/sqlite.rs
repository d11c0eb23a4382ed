//! SQLite through rusqlite: one write connection behind an async lock (SQLite has one writer
//! at a time, so writes queue here instead of failing with SQLITE_BUSY) and a pool of
//! read-only connections. Each statement runs on a blocking thread and hands back owned rows,
//! so a page of rows costs one thread hop, not one per row.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::types::Value as Cell;
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
    // SQLite's planner peeks at some bound values (a LIMIT, a LIKE pattern) and then prepares
    // the statement again every time such a value is bound: a tenth of a list's time. The
    // engine's plans come from its indexes, not from the values, so they are pinned.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // A new database gets 8 KB pages, as PostgreSQL has: an index page holds twice the keys,
    // so an import splits fewer pages and a list page reads fewer. (The size is fixed once
    // the first table exists; this is a no-op afterwards.)
    // With WAL, NORMAL loses no committed data on an application crash; only a power loss can
    // drop the last transactions. It is the usual server choice.
    conn.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 268435456;",
    )?;
    // Readers keep a large page cache. The writer's is smaller: SQLite walks the whole cache
    // at the end of every write transaction, and the pages it needs are in the memory map.
    // The checkpointer thread copies the log into the database file as it goes and lets it
    // restart from its beginning (see `spawn_checkpointer`), so a commit rarely waits for
    // that; the writer checkpoints itself only past 10000 log pages, should the checkpointer
    // fall behind, and the log file is cut back to 64 MB when it restarts.
    conn.execute_batch(if read_only { "PRAGMA cache_size = -65536" } else { WRITER_CACHE })?;
    if !read_only {
        conn.execute_batch("PRAGMA journal_size_limit = 67108864")?;
    }
    Ok(conn)
}

const WRITER_CACHE: &str = "PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 10000";

/// A transaction that writes many rows (an import) dirties more pages than the writer's
/// cache holds: SQLite would write them to the log before the commit and read them back
/// for the next row, which costs an import about a quarter of its time. Such a transaction
/// gets a cache this large. It also leaves checkpoints to the checkpointer thread, which
/// copies the log while the next batch is written instead of inside this one's commit (the
/// writer takes over if the log passes 800 MB).
const LARGE_WRITE_CACHE: &str = "PRAGMA cache_size = -262144; PRAGMA wal_autocheckpoint = 100000";

/// Bound values in one trip that make a transaction a large write: about a thousand rows.
const LARGE_WRITE_ARGS: usize = 20_000;

/// How often the checkpointer copies the log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Log frames (8 KB pages) past which the checkpointer lets the log start over from its
/// beginning, well before the writer's own checkpoint at 10000 would.
const RESTART_LOG_AT: i64 = 2000;

/// A pass short enough to repeat in the writer's turn: it copied little, so the next copies
/// as little.
const SHORT_PASS: Duration = Duration::from_millis(10);

/// Passes in a row the checkpointer tries before it leaves the log to the next round.
const PASSES_TO_CATCH_UP: u32 = 10;

/// Checkpoints the log from a connection of its own until the pools are dropped. Passive
/// checkpoints never block readers or the writer.
///
/// Under a steady stream of writes a passive checkpoint never catches up with the log (new
/// frames come in while it copies), so the log can start over only once a pass runs while
/// no write can: in the writer's turn, which every write then waits for. Such a pass copies
/// the frames written since the pass before and syncs them, so it is as long as that one:
/// after a pass over a long log, a tenth of a second and more, a create's p99. So, once the
/// log is long, the checkpointer repeats passes outside the turn until one is short (each
/// copies what came in during the last), and only then takes the turn for a last one; the
/// next write starts the log over. Writes that outrun the copying leave the log to the next
/// round, and to the writer's own checkpoint at 10000 frames should it get that far.
fn spawn_checkpointer(path: &Path, writer: std::sync::Weak<Writer>) -> Result<(), StoreError> {
    let conn = open(path, false)?;
    let passive = move || conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1));
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while writer.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                let restarted = passive().and_then(|log| {
                    if log < RESTART_LOG_AT || !caught_up(&passive)? {
                        return Ok(());
                    }
                    let Some(writer) = writer.upgrade() else { return Ok(()) };
                    let _turn = writer.turn.blocking_lock();
                    {
                        let mut conn = writer.conn();
                        let mut group = writer.group();
                        if group.open {
                            // Its members learn how the commit went; an error is theirs.
                            let _ = writer.commit_group(&mut conn, &mut group);
                        }
                    }
                    passive().map(|_| ())
                });
                if let Err(e) = restarted {
                    tracing::warn!(error = %e, "checkpointing the SQLite log failed");
                }
            }
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpointer: {e}")))?;
    Ok(())
}

/// Repeats passes until one is short; false if none was.
fn caught_up(passive: impl Fn() -> rusqlite::Result<i64>) -> rusqlite::Result<bool> {
    for _ in 0..PASSES_TO_CATCH_UP {
        let started = Instant::now();
        passive()?;
        if started.elapsed() < SHORT_PASS {
            return Ok(true);
        }
    }
    Ok(false)
}

struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
    /// How many read connections there are.
    size: usize,
}

impl ReadPool {
    /// Runs a query on an idle connection, reading each row with `read`; the caller holds a
    /// permit, so there is one.
    fn run<T>(
        &self,
        sql: &str,
        args: &[Arg],
        read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = conn.ok_or_else(|| StoreError::Corrupt("no idle read connection".into()))?;
        let result = query(&conn, sql, args, read);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        result
    }
}

/// The connections to one SQLite file.
#[derive(Clone)]
pub(crate) struct SqlitePools {
    read: Arc<ReadPool>,
    writer: Arc<Writer>,
}

/// The write connection and the group commit around it.
///
/// Transactions take turns on the connection. The first of a group begins a SQLite
/// transaction; when it finishes while others wait for their turn, the transaction is left
/// open for them, each runs inside a savepoint of it, and one COMMIT makes the whole group
/// durable. Nobody is told their transaction succeeded before that COMMIT did. The pages a
/// group shares (table and index leaves, the audit and outbox tables) are written to the log
/// once instead of once each.
///
/// A transaction's statements run on the task that holds the turn, not on another thread:
/// each trip there and back would keep the turn for two thread wake-ups and a wait in the
/// scheduler's queue, longer than the statements of a single record take. Only a large
/// write, which would hold up the task's other work for long, goes to a thread of its own.
struct Writer {
    path: PathBuf,
    turn: Arc<tokio::sync::Mutex<()>>,
    conn: Mutex<Connection>,
    /// Transactions waiting for the turn.
    queued: AtomicUsize,
    group: Mutex<Group>,
}

#[derive(Default)]
struct Group {
    /// A SQLite transaction is open on the write connection.
    open: bool,
    /// Finished transactions waiting for the group's COMMIT.
    waiting: Vec<tokio::sync::oneshot::Sender<Told>>,
    /// SQLite's error on the group's last failed statement: when it undoes the whole
    /// transaction (a full disk), the waiting members learn that reason, not a vaguer one.
    failure: Option<rusqlite::ffi::Error>,
    /// A task will commit the group if nobody else does.
    flusher: bool,
    /// The running transaction is inside a savepoint (it joined a group others left open).
    /// The first of a group needs none: nobody else's changes are there to keep if it
    /// rolls back, and a savepoint makes SQLite copy every page it changes aside.
    savepoint: bool,
    /// The write connection has the cache of a large write.
    large_cache: bool,
    /// A transaction of the open group is a large write.
    large_write: bool,
}

impl Group {
    /// Why the group's transaction was rolled back, as SQLite's code: the failure it noted,
    /// else a rollback.
    fn rolled_back(&self) -> rusqlite::ffi::Error {
        self.failure.unwrap_or(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT_ROLLBACK))
    }

    /// The SQLite transaction is over, committed or rolled back.
    /// The cache of a large write is kept while large writes follow each other (the
    /// batches of one import find their pages still there) and given back after the first
    /// transaction that is not one, with the connection: SQLite walks the hash table of
    /// the cache at every commit, and a table grown for a large cache does not shrink with
    /// it, which cost every later write a twentieth of its time.
    fn ended(&mut self, conn: &mut Connection, path: &Path) {
        self.open = false;
        self.failure = None;
        if self.large_cache && !std::mem::take(&mut self.large_write) {
            match open(path, false) {
                Ok(fresh) => {
                    *conn = fresh;
                    self.large_cache = false;
                }
                // Shrinking the cache frees its clean pages; a failure leaves it large.
                Err(_) => self.large_cache = conn.execute_batch(WRITER_CACHE).is_err(),
            }
        }
    }

    fn make_large(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.large_write = true;
        if !self.large_cache {
            conn.execute_batch(LARGE_WRITE_CACHE)?;
            self.large_cache = true;
        }
        Ok(())
    }
}

/// How a group's COMMIT went, as each member learns it: SQLite's error code where there is
/// one, so that a full disk is a full disk to each of them, and the message.
type Told = Result<(), (Option<rusqlite::ffi::Error>, String)>;

/// SQLite's error code in an error, if it is SQLite's.
fn code_of(error: &rusqlite::Error) -> Option<rusqlite::ffi::Error> {
    match error {
        rusqlite::Error::SqliteFailure(code, _) => Some(*code),
        _ => None,
    }
}

/// The most transactions one COMMIT makes durable: enough to share the log writes, few
/// enough that the first waits little.
const MAX_GROUP: usize = 64;

impl Writer {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn group(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps SQLite's code of a statement's failure for the group's members.
    fn failed(&self, error: &StoreError) {
        if let StoreError::Sqlite(error) = error {
            self.group().failure = code_of(error);
        }
    }

    /// Commits the open group and tells its members how it went. Callers hold the connection.
    fn commit_group(&self, conn: &mut Connection, group: &mut Group) -> Result<(), StoreError> {
        let result = if conn.is_autocommit() {
            // SQLite undid the transaction by itself, after a statement failed.
            Err(rusqlite::Error::SqliteFailure(
                group.rolled_back(),
                Some("the group's transaction was rolled back".into()),
            ))
        } else {
            conn.execute_batch("COMMIT")
        };
        // A COMMIT that failed (a full disk) may leave the transaction open; the next group
        // must begin afresh, as SQLite advises.
        if result.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        group.ended(conn, &self.path);
        let told: Told = result.as_ref().map(|_| ()).map_err(|e| (code_of(e), e.to_string()));
        for member in group.waiting.drain(..) {
            let _ = member.send(told.clone());
        }
        Ok(result?)
    }

    /// Makes sure an open group gets committed even if the transaction it was left open for
    /// never comes (its request was cancelled).
    fn ensure_flusher(self: &Arc<Self>, conn: &mut Connection, group: &mut Group) {
        if group.flusher {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let _ = self.commit_group(conn, group);
            return;
        };
        group.flusher = true;
        let writer = self.clone();
        runtime.spawn(async move {
            let _turn = writer.turn.lock().await;
            let flush = writer.clone();
            let _ = blocking(move || {
                let mut conn = flush.conn();
                let mut group = flush.group();
                group.flusher = false;
                if group.open { flush.commit_group(&mut conn, &mut group) } else { Ok(()) }
            })
            .await;
        });
    }
}

/// Counts a transaction as waiting for its turn until it has it (or gives up).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A result row: its cells, owned.
pub(crate) type Cells = Vec<Cell>;

/// Binds the parameters of a statement. SQLite copies every text it is given, so ids are
/// written into a buffer on the stack, and a datetime bound again (a batch's creation time,
/// four times a row) is formatted once.
fn bind(statement: &mut rusqlite::Statement<'_>, args: &[Arg]) -> rusqlite::Result<()> {
    let mut last_datetime: Option<(&DateTime<Utc>, String)> = None;
    for (i, arg) in args.iter().enumerate() {
        let i = i + 1;
        match arg {
            Arg::Null(_) => statement.raw_bind_parameter(i, rusqlite::types::Null)?,
            Arg::Text(text) => statement.raw_bind_parameter(i, text.as_str())?,
            Arg::Integer(n) => statement.raw_bind_parameter(i, n)?,
            Arg::Boolean(b) => statement.raw_bind_parameter(i, i64::from(*b))?,
            Arg::Date(d) => statement.raw_bind_parameter(i, d.to_string())?,
            Arg::Datetime(dt) => {
                if last_datetime.as_ref().is_none_or(|(last, _)| *last != dt) {
                    last_datetime = Some((dt, sqlite_datetime(dt)));
                }
                let (_, text) = last_datetime.as_ref().expect("formatted just above");
                statement.raw_bind_parameter(i, text.as_str())?;
            }
            Arg::Uuid(id) => {
                statement.raw_bind_parameter(i, &*id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))?;
            }
            Arg::Json(json) => statement.raw_bind_parameter(i, json.to_string())?,
            // Rows go to SQLite as VALUES (see `Rows`).
            Arg::Array(_) => return Err(rusqlite::Error::ToSqlConversionFailure("an array of rows' values".into())),
        }
    }
    Ok(())
}

/// Runs one statement on a connection: its rows when it returns any, and the changed-row
/// count.
fn run(conn: &Connection, sql: &str, args: &[Arg]) -> Result<(Vec<Cells>, u64), StoreError> {
    let rows = query(conn, sql, args, cells)?;
    Ok((rows, conn.changes()))
}

/// Runs a statement on a connection to its end, reading each row it returns with `read`.
fn query<T>(
    conn: &Connection,
    sql: &str,
    args: &[Arg],
    mut read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Every cell of a row, owned.
pub(crate) fn cells(row: &rusqlite::Row<'_>) -> Result<Cells, StoreError> {
    let columns = row.as_ref().column_count();
    let mut cells = Vec::with_capacity(columns);
    for i in 0..columns {
        cells.push(row.get::<_, Cell>(i)?);
    }
    Ok(cells)
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
        let writer = Arc::new(Writer {
            path: path.clone(),
            turn: Arc::new(tokio::sync::Mutex::new(())),
            conn: Mutex::new(write),
            queued: AtomicUsize::new(0),
            group: Mutex::new(Group::default()),
        });
        spawn_checkpointer(&path, Arc::downgrade(&writer))?;
        Ok(Self {
            read: Arc::new(ReadPool {
                idle: Mutex::new(idle),
                permits: tokio::sync::Semaphore::new(readers.max(1) as usize),
                size: readers.max(1) as usize,
            }),
            writer,
        })
    }

    /// The connections and how many are idle: the readers not lent out, and the writer
    /// when no transaction holds it.
    pub(crate) fn connections(&self) -> (usize, usize) {
        let idle_readers = self.read.idle.lock().map_or(0, |idle| idle.len());
        let writer_idle = usize::from(self.writer.turn.try_lock().is_ok());
        (self.read.size + 1, idle_readers + writer_idle)
    }

    /// Runs a query on a read connection, on a thread of the blocking pool, reading each
    /// row with `read` there.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        sql: String,
        args: Vec<Arg>,
        read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Vec<T>, StoreError> {
        let _permit = self.read_permit().await?;
        let pool = self.read.clone();
        blocking(move || pool.run(&sql, &args, read)).await
    }

    /// Runs a query that finds its few rows through a key (a record by its id) on the
    /// calling task: it takes microseconds, less than the trip to another thread and back.
    pub(crate) async fn read_keyed<T>(
        &self,
        sql: String,
        args: Vec<Arg>,
        read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let _permit = self.read_permit().await?;
        self.read.run(&sql, &args, read)
    }

    async fn read_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        self.read.permits.acquire().await.map_err(|_| StoreError::Corrupt("the pool is closed".into()))
    }

    /// Runs one statement as a transaction of its own.
    pub(crate) async fn write(&self, sql: String, args: Vec<Arg>) -> Result<(Vec<Cells>, u64), StoreError> {
        let mut tx = self.begin().await?;
        let result = tx.run(sql, args).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// A full checkpoint on the write connection, in the writer's turn so that no write
    /// starts meanwhile, that cuts the log file back to nothing.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        let _turn = self.writer.turn.clone().lock_owned().await;
        let writer = self.writer.clone();
        blocking(move || {
            let mut conn = writer.conn();
            let mut group = writer.group();
            if group.open {
                writer.commit_group(&mut conn, &mut group)?;
            }
            // While the checkpointer thread copies the log, a second checkpoint is refused
            // (busy) rather than waited for: try again shortly, for up to two seconds.
            for _ in 0..100 {
                let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
                if busy == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })
        .await
    }

    /// Waits for the writer's turn; the transaction starts with its first statement, in the
    /// same trip to the database.
    pub(crate) async fn begin(&self) -> Result<SqliteTx, StoreError> {
        self.writer.queued.fetch_add(1, Ordering::SeqCst);
        let queued = Queued(&self.writer.queued);
        let turn = self.writer.turn.clone().lock_owned().await;
        drop(queued);
        Ok(SqliteTx { writer: self.writer.clone(), _turn: turn, started: false })
    }
}

/// A transaction on the write connection (the group's SQLite transaction, or a savepoint of
/// it when it joins a group); rolled back if dropped before `commit`.
pub(crate) struct SqliteTx {
    writer: Arc<Writer>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
    started: bool,
}

/// Starts the transaction on its first statement: joins the open group or begins one.
fn start(writer: &Writer, conn: &mut Connection, started: bool) -> Result<(), StoreError> {
    if started {
        return Ok(());
    }
    let mut group = writer.group();
    if group.open && conn.is_autocommit() {
        // SQLite rolled the group back by itself (a full disk, say): its members learn it.
        writer.commit_group(conn, &mut group)?;
    }
    if group.open {
        conn.execute_batch("SAVEPOINT tx")?;
        group.savepoint = true;
    } else {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        group.open = true;
        group.savepoint = false;
    }
    Ok(())
}

impl SqliteTx {
    pub(crate) async fn run(&mut self, sql: String, args: Vec<Arg>) -> Result<(Vec<Cells>, u64), StoreError> {
        let mut conn = self.writer.conn();
        start(&self.writer, &mut conn, std::mem::replace(&mut self.started, true))?;
        run(&conn, &sql, &args).inspect_err(|e| self.writer.failed(e))
    }

    /// Runs several statements in one trip. A large write runs on a thread of its own;
    /// anything smaller runs here, in the writer's turn, without a trip to another thread.
    pub(crate) async fn run_all(&mut self, statements: Vec<(String, Vec<Arg>)>) -> Result<(), StoreError> {
        let writer = self.writer.clone();
        let started = std::mem::replace(&mut self.started, true);
        let large = statements.iter().map(|(_, args)| args.len()).sum::<usize>() >= LARGE_WRITE_ARGS;
        let work = move || {
            let mut conn = writer.conn();
            start(&writer, &mut conn, started)?;
            if large {
                writer.group().make_large(&conn)?;
            }
            for (sql, args) in &statements {
                run(&conn, sql, args).inspect_err(|e| writer.failed(e))?;
            }
            Ok(statements)
        };
        if large {
            let statements = blocking(work).await?;
            // Freeing a large write's values (a hundred thousand strings) is a twentieth of
            // the write; the transaction does not wait for it.
            tokio::task::spawn_blocking(move || drop(statements));
            Ok(())
        } else {
            work().map(drop)
        }
    }

    pub(crate) async fn script(&mut self, sql: &'static str) -> Result<(), StoreError> {
        let mut conn = self.writer.conn();
        start(&self.writer, &mut conn, std::mem::replace(&mut self.started, true))?;
        Ok(conn.execute_batch(sql)?)
    }

    /// Keeps the transaction's changes; returns once they are committed to the database.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if !std::mem::replace(&mut self.started, false) {
            return Ok(());
        }
        let writer = self.writer.clone();
        let large = writer.group().large_write;
        let work = move || {
            let mut conn = writer.conn();
            let mut group = writer.group();
            if group.savepoint {
                conn.execute_batch("RELEASE tx")?;
            }
            // A large write is committed at once: its log write is not worth sharing, and
            // the next large write (an import's next batch) then needs no savepoint.
            if !group.large_write && writer.queued.load(Ordering::SeqCst) > 0 && group.waiting.len() + 1 < MAX_GROUP {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                group.waiting.push(sender);
                writer.ensure_flusher(&mut conn, &mut group);
                Ok(Some(receiver))
            } else {
                writer.commit_group(&mut conn, &mut group).map(|()| None)
            }
        };
        let waiting = if large { blocking(work).await? } else { work()? };
        // The turn passes on here, when `self` is dropped.
        drop(self);
        match waiting {
            None => Ok(()),
            Some(receiver) => match receiver.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err((Some(code), message))) => Err(rusqlite::Error::SqliteFailure(code, Some(message)).into()),
                Ok(Err((None, message))) => Err(StoreError::Corrupt(format!("the commit failed: {message}"))),
                Err(_) => Err(StoreError::Corrupt("the commit was abandoned".into())),
            },
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        // Undo this transaction only; the group's other members stay. Rolling back is
        // immediate in SQLite, and must happen before the turn passes on.
        let mut conn = self.writer.conn();
        let mut group = self.writer.group();
        let undone = if group.savepoint { conn.execute_batch("ROLLBACK TO tx; RELEASE tx") } else { Ok(()) };
        if !group.savepoint || undone.is_err() || group.waiting.is_empty() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let code = group.rolled_back();
            group.ended(&mut conn, &self.writer.path);
            for member in group.waiting.drain(..) {
                let _ = member.send(Err((Some(code), "the group's transaction was rolled back".into())));
            }
        } else {
            self.writer.ensure_flusher(&mut conn, &mut group);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Arg, Db};

    /// The log's length in frames, from the header of the wal-index in the `-shm` file
    /// (`mxFrame`: a native-endian u32 at byte 16), read as a file: a connection would hold or
    /// checkpoint the log itself.
    fn log_frames(database: &Path) -> u32 {
        let shm = std::fs::read(database.with_extension("db-shm")).unwrap_or_default();
        shm.get(16..20).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[tokio::test]
    async fn the_checkpointer_starts_the_log_over_long_before_the_writer_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let db = Db::connect(&Db::sqlite_url(&path), 1).await.unwrap();
        let mut sql = db.sql();
        sql.push("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT)");
        sql.execute(&db).await.unwrap();
        let mut sql = db.sql();
        sql.push("CREATE INDEX t_k ON t (k)");
        sql.execute(&db).await.unwrap();

        // About 12,000 log frames in all, four a row (a page of the index, three of the row),
        // written at a steady 3,000–4,000 frames a second for three or four seconds: left to
        // the writer's own checkpoint, the log would grow to 10,000 frames.
        let (mut longest, mut restarts, mut last) = (0, 0, 0);
        let mut pace = tokio::time::interval(std::time::Duration::from_millis(1));
        for i in 0..3_000 {
            pace.tick().await;
            let mut sql = db.sql();
            sql.push("INSERT INTO t (k, v) VALUES (").bind(Arg::Text(format!("{i:08}"))).push(", ");
            sql.bind(Arg::Text("值".repeat(7_000))).push(")");
            sql.execute(&db).await.unwrap();
            let frames = log_frames(&path);
            restarts += usize::from(frames < last);
            longest = longest.max(frames);
            last = frames;
        }
        assert!(restarts >= 1, "the log never started over (longest {longest} frames)");
        assert!(longest < 8_000, "the log grew to {longest} frames");
    }
}
