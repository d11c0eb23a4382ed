//! The dialect layer: statements are assembled here from static SQL, validated identifiers
//! and bound values, and run on SQLite (through `sqlite.rs`) or PostgreSQL. [`Sql`] only
//! accepts `&'static str` text, [`Ident`]s and parameters, so every statement that reaches
//! either database was built here; for sqlx this is the one place that asserts a runtime
//! string is safe SQL (`AssertSqlSafe`).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use crm_model::{FieldDef, Ident, Storage, Value};
use rusqlite::types::ValueRef;
use sqlx::{AssertSqlSafe, PgConnection, Row as _};
use uuid::Uuid;

use crate::stats::Timing;
use crate::{Db, Pools, StoreError, Tx, TxInner};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a statement parameter. Nulls carry their type because PostgreSQL types
/// every parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null(Storage),
    Text(String),
    Integer(i64),
    Boolean(bool),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
    Uuid(Uuid),
    /// A JSON document (jsonb on PostgreSQL, text on SQLite).
    Json(serde_json::Value),
    /// A column of many rows' values, as one PostgreSQL array (see [`Rows`]).
    Array(Array),
}

/// The values of one column of many rows, all of one type, bound as one PostgreSQL array.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    Text(Vec<Option<String>>),
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Date(Vec<Option<NaiveDate>>),
    Datetime(Vec<Option<DateTime<Utc>>>),
    Uuid(Vec<Option<Uuid>>),
    Json(Vec<Option<serde_json::Value>>),
}

impl Array {
    /// The one type of a column's values, as the storage they would have as a field: that of
    /// its values, or of its nulls when it holds only nulls; none if they are of several.
    fn type_of<'a>(args: impl Iterator<Item = Option<&'a Arg>>) -> Option<Storage> {
        let mut values = None;
        let mut nulls = None;
        for arg in args {
            let storage = match arg? {
                Arg::Null(storage) => {
                    nulls.get_or_insert(*storage);
                    continue;
                }
                Arg::Text(_) => Storage::Text,
                Arg::Integer(_) => Storage::Integer,
                Arg::Boolean(_) => Storage::Boolean,
                Arg::Date(_) => Storage::Date,
                Arg::Datetime(_) => Storage::Datetime,
                Arg::Uuid(_) => Storage::Uuid,
                Arg::Json(_) => Storage::List,
                Arg::Array(_) => return None,
            };
            if *values.get_or_insert(storage) != storage {
                return None;
            }
        }
        values.or(nulls)
    }

    /// The values as an array of `storage`'s type, which [`Array::type_of`] found them to
    /// have: any other is a null.
    fn of(storage: Storage, args: Vec<Arg>) -> Array {
        fn each<T>(args: Vec<Arg>, value: impl Fn(Arg) -> Option<T>) -> Vec<Option<T>> {
            args.into_iter().map(value).collect()
        }
        match storage {
            Storage::Text => Array::Text(each(args, |arg| if let Arg::Text(s) = arg { Some(s) } else { None })),
            Storage::Integer | Storage::Fixed(_) => {
                Array::Integer(each(args, |arg| if let Arg::Integer(n) = arg { Some(n) } else { None }))
            }
            Storage::Boolean => {
                Array::Boolean(each(args, |arg| if let Arg::Boolean(b) = arg { Some(b) } else { None }))
            }
            Storage::Date => Array::Date(each(args, |arg| if let Arg::Date(d) = arg { Some(d) } else { None })),
            Storage::Datetime => {
                Array::Datetime(each(args, |arg| if let Arg::Datetime(dt) = arg { Some(dt) } else { None }))
            }
            Storage::Uuid => Array::Uuid(each(args, |arg| if let Arg::Uuid(id) = arg { Some(id) } else { None })),
            Storage::List => Array::Json(each(args, |arg| if let Arg::Json(json) = arg { Some(json) } else { None })),
        }
    }

    /// The array's type, as a cast after its placeholder.
    fn cast(&self) -> &'static str {
        match self {
            Array::Text(_) => "::text[]",
            Array::Integer(_) => "::bigint[]",
            Array::Boolean(_) => "::boolean[]",
            Array::Date(_) => "::date[]",
            Array::Datetime(_) => "::timestamptz[]",
            Array::Uuid(_) => "::uuid[]",
            Array::Json(_) => "::jsonb[]",
        }
    }
}

/// Rows to insert into one table, as statements made before the transaction that runs them
/// begins (so that SQLite's writer is not held while they are): on SQLite, a multi-row
/// `VALUES` per chunk of rows the parameter limits allow; on PostgreSQL, one statement whose
/// parameters are the columns, each an array of every row's value (`UNNEST`), which the
/// server parses and plans once, whatever the number of rows, where a `VALUES` list costs it
/// work for every value. A single row, or a column whose values are not all of one type, goes
/// as `VALUES`, as on SQLite (PostgreSQL then refuses a value of the wrong type as always).
pub struct Rows {
    statements: Vec<Sql>,
    /// Rows per `VALUES` statement; none when the rows go as arrays.
    rows_per_statement: Option<usize>,
    columns: usize,
}

impl Rows {
    /// `head` is the statement's start, `INSERT INTO t (a, b, c)`, begun with
    /// [`Sql::insert_rows_into`]; each row has a value for each of its columns.
    pub fn new(head: Sql, rows: Vec<Vec<Arg>>) -> Rows {
        let Some(columns) = rows.first().map(Vec::len) else {
            return Rows { statements: Vec::new(), rows_per_statement: None, columns: 0 };
        };
        // One row goes faster as VALUES (a create: 5 % more per second than as arrays).
        let types: Option<Vec<Storage>> = match head.dialect {
            Dialect::Postgres if rows.len() > 1 => {
                (0..columns).map(|c| Array::type_of(rows.iter().map(|row| row.get(c)))).collect()
            }
            _ => None,
        };
        if let Some(types) = types {
            let mut by_column: Vec<Vec<Arg>> = (0..columns).map(|_| Vec::with_capacity(rows.len())).collect();
            for row in rows {
                for (column, arg) in by_column.iter_mut().zip(row) {
                    column.push(arg);
                }
            }
            let mut sql = head;
            sql.push(" SELECT * FROM UNNEST(");
            sql.comma_list(types.into_iter().zip(by_column), |sql, (storage, args)| {
                let array = Array::of(storage, args);
                let cast = array.cast();
                sql.bind(Arg::Array(array)).push(cast);
            });
            sql.push(")");
            return Rows { statements: vec![sql], rows_per_statement: None, columns };
        }
        // Both databases take at least 32766 parameters per statement.
        let rows_per_statement = (30_000 / columns.max(1)).clamp(1, 500);
        let mut statements = Vec::with_capacity(rows.len().div_ceil(rows_per_statement));
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut sql = head.clone();
            sql.push(" VALUES ");
            sql.comma_list(rows.by_ref().take(rows_per_statement), |sql, row| {
                sql.push("(");
                sql.comma_list(row, |sql, arg| {
                    sql.bind(arg);
                });
                sql.push(")");
            });
            statements.push(sql);
        }
        Rows { statements, rows_per_statement: Some(rows_per_statement), columns }
    }

    /// Sets column `column` of the rows to `texts`, in the order of the rows.
    pub fn set_texts(&mut self, column: usize, texts: Vec<String>) {
        match self.rows_per_statement {
            None => {
                if let Some(statement) = self.statements.first_mut() {
                    statement.set_arg(column, Arg::Array(Array::Text(texts.into_iter().map(Some).collect())));
                }
            }
            Some(per_statement) => {
                for (row, text) in texts.into_iter().enumerate() {
                    let statement = &mut self.statements[row / per_statement];
                    statement.set_arg((row % per_statement) * self.columns + column, Arg::Text(text));
                }
            }
        }
    }

    pub fn into_statements(self) -> Vec<Sql> {
        self.statements
    }
}

impl Arg {
    /// A JSON document: written out now as text on SQLite (which keeps it as text anyway), so
    /// that the work is done where the statement is built; jsonb on PostgreSQL.
    pub fn json(dialect: Dialect, value: serde_json::Value) -> Arg {
        match dialect {
            Dialect::Sqlite => Arg::Text(value.to_string()),
            Dialect::Postgres => Arg::Json(value),
        }
    }

    /// The parameter for a typed field value.
    pub fn of(field: &FieldDef, value: &Value) -> Arg {
        match value {
            Value::Null => Arg::Null(field.storage()),
            Value::Text(s) => Arg::Text(s.clone()),
            Value::Integer(n) | Value::Fixed(n) => Arg::Integer(*n),
            Value::Boolean(b) => Arg::Boolean(*b),
            Value::Date(d) => Arg::Date(*d),
            Value::Datetime(dt) => Arg::Datetime(*dt),
            Value::Uuid(id) => Arg::Uuid(*id),
            Value::List(items) => Arg::Json(serde_json::Value::from(items.clone())),
        }
    }
}

/// SQLite keeps datetimes as fixed-width UTC text (`2026-11-27T08:30:00.000000Z`) so that
/// text order is time order. Written out rather than through `format`, which parses its
/// pattern on every call: an import binds two datetimes per row.
pub(crate) fn sqlite_datetime(dt: &DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        // A leap second keeps its place in the order as the last microsecond of its minute.
        dt.timestamp_subsec_micros().min(999_999)
    )
}

/// A statement being written: static SQL, quoted identifiers and placeholders.
#[derive(Debug, Clone)]
pub struct Sql {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
    /// Started by [`Sql::insert_rows_into`]: rows that no other statement of their
    /// transaction reads in the same trip (see [`Sql::execute_all`]).
    inserts_rows: bool,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, text: String::with_capacity(256), args: Vec::new(), inserts_rows: false }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The statement and its values as one text: equal texts ask the same question.
    pub fn cache_key(&self) -> String {
        format!("{}\u{1f}{:?}", self.text, self.args)
    }

    /// Appends SQL written in the source code; runtime text cannot get here.
    pub fn push(&mut self, sql: &'static str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Starts an INSERT of many rows. On SQLite a constraint failure stops it where it is
    /// (`OR FAIL`) instead of undoing the statement's own rows: undoing them needs a copy of
    /// every page the statement changes, made as it goes, which costs an import a large part
    /// of its time. Callers roll the whole transaction back on any error, so no partial
    /// statement survives.
    pub fn insert_rows_into(&mut self) -> &mut Self {
        self.inserts_rows = self.text.is_empty();
        self.push(match self.dialect {
            Dialect::Sqlite => "INSERT OR FAIL INTO ",
            Dialect::Postgres => "INSERT INTO ",
        })
    }

    /// Appends a quoted identifier. [`Ident`]s only hold `[a-z0-9_]`, so quoting cannot be
    /// escaped; quoting makes keywords such as `order` and `user` plain names.
    pub fn ident(&mut self, name: &Ident) -> &mut Self {
        self.quoted(name.as_str())
    }

    /// Appends a quoted name the engine made from identifiers (index names).
    pub(crate) fn quoted(&mut self, name: &str) -> &mut Self {
        debug_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        self.text.push('"');
        self.text.push_str(name);
        self.text.push('"');
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    /// Replaces the value of the `index`th parameter bound so far.
    pub fn set_arg(&mut self, index: usize, arg: Arg) {
        self.args[index] = arg;
    }

    /// Appends ` IN (values)` after a column. On PostgreSQL several values of one type go as
    /// one array (` = ANY($1::uuid[])`): the server parses and plans one parameter, not one
    /// per value (a filter narrowed by the search index holds thousands of ids).
    pub fn push_in(&mut self, values: Vec<Arg>) -> &mut Self {
        if self.dialect == Dialect::Postgres
            && values.len() > 1
            && let Some(storage) = Array::type_of(values.iter().map(Some))
        {
            let array = Array::of(storage, values);
            let cast = array.cast();
            return self.push(" = ANY(").bind(Arg::Array(array)).push(cast).push(")");
        }
        self.push(" IN (");
        self.comma_list(values, |sql, value| {
            sql.bind(value);
        });
        self.push(")")
    }

    /// Appends a number the engine computed (limits, scales) as a bound parameter.
    pub fn bind_int(&mut self, n: i64) -> &mut Self {
        self.bind(Arg::Integer(n))
    }

    /// Appends `a, b, c` by calling `each` between commas.
    pub fn comma_list<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            each(self, item);
        }
        self
    }

    pub(crate) fn postgres(self) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text));
        for arg in self.args {
            query = match arg {
                Arg::Null(storage) => match storage {
                    Storage::Text => query.bind(Option::<String>::None),
                    Storage::Integer | Storage::Fixed(_) => query.bind(Option::<i64>::None),
                    Storage::Boolean => query.bind(Option::<bool>::None),
                    Storage::Date => query.bind(Option::<NaiveDate>::None),
                    Storage::Datetime => query.bind(Option::<DateTime<Utc>>::None),
                    Storage::Uuid => query.bind(Option::<Uuid>::None),
                    Storage::List => query.bind(Option::<sqlx::types::Json<serde_json::Value>>::None),
                },
                Arg::Text(s) => query.bind(s),
                Arg::Integer(n) => query.bind(n),
                Arg::Boolean(b) => query.bind(b),
                Arg::Date(d) => query.bind(d),
                Arg::Datetime(dt) => query.bind(dt),
                Arg::Uuid(id) => query.bind(id),
                Arg::Json(json) => query.bind(sqlx::types::Json(json)),
                Arg::Array(array) => match array {
                    Array::Text(values) => query.bind(values),
                    Array::Integer(values) => query.bind(values),
                    Array::Boolean(values) => query.bind(values),
                    Array::Date(values) => query.bind(values),
                    Array::Datetime(values) => query.bind(values),
                    Array::Uuid(values) => query.bind(values),
                    Array::Json(values) => {
                        query.bind(values.into_iter().map(|v| v.map(sqlx::types::Json)).collect::<Vec<_>>())
                    }
                },
            };
        }
        query
    }

    /// Runs the statement on the read side and returns its rows.
    pub async fn fetch_all(self, db: &Db) -> Result<Vec<Row>, StoreError> {
        let _timing = Timing::read();
        Ok(match &db.pools {
            Pools::Sqlite(pools) => {
                pools.read(self.text, self.args, crate::sqlite::cells).await?.into_iter().map(Row::Sqlite).collect()
            }
            Pools::Postgres(pool) => self.postgres().fetch_all(pool).await?.into_iter().map(Row::Postgres).collect(),
        })
    }

    /// Reads the few rows a key finds (records by their ids). On SQLite such a read runs on
    /// the calling task instead of a database thread: it is shorter than the trip there.
    pub async fn fetch_keyed(self, db: &Db) -> Result<Vec<Row>, StoreError> {
        match &db.pools {
            Pools::Sqlite(pools) => {
                let _timing = Timing::read();
                Ok(pools
                    .read_keyed(self.text, self.args, crate::sqlite::cells)
                    .await?
                    .into_iter()
                    .map(Row::Sqlite)
                    .collect())
            }
            Pools::Postgres(_) => self.fetch_all(db).await,
        }
    }

    /// Reads rows whose columns are kept with `storages` as values. On SQLite each cell is
    /// read as the query steps over it, on the database thread, without an owned copy of
    /// its text first.
    pub async fn fetch_values(self, db: &Db, storages: Vec<Storage>) -> Result<Vec<Vec<Value>>, StoreError> {
        match &db.pools {
            Pools::Sqlite(pools) => {
                let _timing = Timing::read();
                pools.read(self.text, self.args, move |row| values(row, &storages)).await
            }
            Pools::Postgres(_) => postgres_values(self.fetch_all(db).await?, &storages),
        }
    }

    /// [`Sql::fetch_values`] for the few rows a key finds, read as [`Sql::fetch_keyed`] reads.
    pub async fn fetch_values_keyed(self, db: &Db, storages: &[Storage]) -> Result<Vec<Vec<Value>>, StoreError> {
        match &db.pools {
            Pools::Sqlite(pools) => {
                let _timing = Timing::read();
                pools.read_keyed(self.text, self.args, |row| values(row, storages)).await
            }
            Pools::Postgres(_) => postgres_values(self.fetch_all(db).await?, storages),
        }
    }

    pub async fn fetch_optional(self, db: &Db) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all(db).await?.into_iter().next())
    }

    /// Runs the statement inside a transaction and returns its rows.
    pub async fn fetch_all_tx(self, tx: &mut Tx) -> Result<Vec<Row>, StoreError> {
        let _timing = Timing::write();
        let rows = match &mut tx.inner {
            TxInner::Sqlite(t) => {
                t.run(self.text, self.args).await.map(|(rows, _)| rows.into_iter().map(Row::Sqlite).collect())
            }
            TxInner::Postgres(t) => {
                async {
                    let rows = self.postgres().fetch_all(t.connection().await?).await?;
                    Ok(rows.into_iter().map(Row::Postgres).collect())
                }
                .await
            }
        };
        tx.noted(rows)
    }

    pub async fn fetch_optional_tx(self, tx: &mut Tx) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all_tx(tx).await?.into_iter().next())
    }

    /// Runs the statement inside a transaction; returns the number of rows it touched.
    pub async fn execute_tx(self, tx: &mut Tx) -> Result<u64, StoreError> {
        let _timing = Timing::write();
        let touched = match &mut tx.inner {
            TxInner::Sqlite(t) => t.run(self.text, self.args).await.map(|(_, touched)| touched),
            TxInner::Postgres(t) => {
                async {
                    let done = self.postgres().execute(t.connection().await?).await?;
                    Ok(done.rows_affected())
                }
                .await
            }
        };
        tx.noted(touched)
    }

    /// Runs statements in order inside a transaction, in one trip to SQLite.
    pub async fn execute_all(statements: Vec<Sql>, tx: &mut Tx) -> Result<(), StoreError> {
        let _timing = Timing::write();
        let done = match &mut tx.inner {
            TxInner::Sqlite(t) => t.run_all(statements.into_iter().map(|s| (s.text, s.args)).collect()).await,
            TxInner::Postgres(t) => async { Sql::run_on_postgres(statements, t.connection().await?).await }.await,
        };
        tx.noted(done)
    }

    /// Runs statements in order on a PostgreSQL connection, consecutive inserts of rows as one.
    pub(crate) async fn run_on_postgres(statements: Vec<Sql>, conn: &mut PgConnection) -> Result<(), StoreError> {
        for statement in joined_inserts(statements) {
            statement.postgres().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Appends `other`'s text and values, its parameters numbered after this one's (PostgreSQL).
    /// Numbering is read from the text, which holds no `$` but placeholders: values are bound
    /// and identifiers are `[a-z0-9_]`.
    fn append_renumbered(&mut self, other: Sql) {
        let offset = self.args.len();
        let mut rest = other.text.as_str();
        while let Some(at) = rest.find('$') {
            self.text.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = rest[..digits].parse().unwrap_or(0);
            self.text.push_str(&(n + offset).to_string());
            rest = &rest[digits..];
        }
        self.text.push_str(rest);
        self.args.extend(other.args);
    }

    /// Runs the statement on the write side outside any transaction.
    pub async fn execute(self, db: &Db) -> Result<u64, StoreError> {
        let _timing = Timing::write();
        let touched = match &db.pools {
            Pools::Sqlite(pools) => pools.write(self.text, self.args).await.map(|(_, touched)| touched),
            Pools::Postgres(pool) => {
                self.postgres().execute(pool).await.map(|done| done.rows_affected()).map_err(StoreError::from)
            }
        };
        db.writes.noted(touched, true)
    }
}

/// The most parameters one joined statement takes (PostgreSQL takes 65535).
const JOINED_PARAMETERS: usize = 32_766;

/// Consecutive inserts of rows as one statement on PostgreSQL, all but the last as
/// data-modifying `WITH` parts: a new record, its audit row and its outbox event cost one
/// trip to the server instead of three. The parts cannot see each other's rows, which no
/// insert of rows needs.
pub(crate) fn joined_inserts(statements: Vec<Sql>) -> Vec<Sql> {
    let mut joined = Vec::with_capacity(statements.len());
    let mut group: Vec<Sql> = Vec::new();
    let mut parameters = 0;
    for statement in statements {
        let joins = statement.inserts_rows
            && group.last().is_some_and(|last| last.inserts_rows)
            && parameters + statement.args.len() <= JOINED_PARAMETERS;
        if !joins && !group.is_empty() {
            joined.push(join(std::mem::take(&mut group)));
            parameters = 0;
        }
        parameters += statement.args.len();
        group.push(statement);
    }
    if !group.is_empty() {
        joined.push(join(group));
    }
    joined
}

/// The statements of a group as one (a group holds at least one).
fn join(mut parts: Vec<Sql>) -> Sql {
    let last = parts.pop().expect("a group holds a statement");
    if parts.is_empty() {
        return last;
    }
    let mut sql = Sql::new(Dialect::Postgres);
    for (i, part) in parts.into_iter().enumerate() {
        sql.text.push_str(&if i == 0 { "WITH w0 AS (".to_owned() } else { format!(", w{i} AS (") });
        sql.append_renumbered(part);
        sql.push(")");
    }
    sql.push(" ");
    sql.append_renumbered(last);
    sql
}

/// The cells of an SQLite row as values kept with `storages`.
fn values(row: &rusqlite::Row<'_>, storages: &[Storage]) -> Result<Vec<Value>, StoreError> {
    let mut values = Vec::with_capacity(storages.len());
    for (i, storage) in storages.iter().enumerate() {
        values.push(sqlite_value(row.get_ref(i)?, *storage)?);
    }
    Ok(values)
}

fn postgres_values(rows: Vec<Row>, storages: &[Storage]) -> Result<Vec<Vec<Value>>, StoreError> {
    rows.iter().map(|row| storages.iter().enumerate().map(|(i, s)| row.value(i, *s)).collect()).collect()
}

/// Where a statement runs: on the read side, or inside a transaction.
pub enum On<'a> {
    Read(&'a Db),
    Tx(&'a mut Tx),
}

impl On<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            On::Read(db) => db.dialect(),
            On::Tx(tx) => tx.dialect(),
        }
    }

    pub fn sql(&self) -> Sql {
        Sql::new(self.dialect())
    }

    pub async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        match self {
            On::Read(db) => sql.fetch_all(db).await,
            On::Tx(tx) => sql.fetch_all_tx(tx).await,
        }
    }

    /// [`Sql::fetch_keyed`] on the read side.
    pub async fn fetch_keyed(&mut self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        match self {
            On::Read(db) => sql.fetch_keyed(db).await,
            On::Tx(tx) => sql.fetch_all_tx(tx).await,
        }
    }
}

/// A result row of either database.
pub enum Row {
    Sqlite(crate::sqlite::Cells),
    Postgres(sqlx::postgres::PgRow),
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what} `{text}`"))
}

/// Reads an SQLite cell as a value kept with `storage`.
pub(crate) fn sqlite_value(cell: ValueRef<'_>, storage: Storage) -> Result<Value, StoreError> {
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt("text that is not UTF-8".into()));
    Ok(match (cell, storage) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(n), Storage::Integer) => Value::Integer(n),
        (ValueRef::Integer(n), Storage::Fixed(_)) => Value::Fixed(n),
        (ValueRef::Integer(n), Storage::Boolean) => Value::Boolean(n != 0),
        (ValueRef::Text(bytes), Storage::Uuid) => {
            Value::Uuid(Uuid::try_parse_ascii(bytes).map_err(|_| corrupt("id", &String::from_utf8_lossy(bytes)))?)
        }
        (ValueRef::Text(bytes), Storage::Date) => {
            let text = text(bytes)?;
            Value::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| corrupt("date", text))?)
        }
        (ValueRef::Text(bytes), Storage::Datetime) => {
            let text = text(bytes)?;
            Value::Datetime(DateTime::parse_from_rfc3339(text).map_err(|_| corrupt("datetime", text))?.to_utc())
        }
        (ValueRef::Text(bytes), Storage::List) => {
            let text = text(bytes)?;
            Value::List(serde_json::from_str(text).map_err(|_| corrupt("list", text))?)
        }
        (ValueRef::Text(bytes), Storage::Text) => Value::Text(text(bytes)?.to_owned()),
        (other, _) => return Err(StoreError::Corrupt(format!("a {other:?} where a {storage:?} value belongs"))),
    })
}

impl Row {
    /// Moves column `i` out as a value kept with `storage`: a page of records does not copy
    /// every text it read.
    pub fn take(&mut self, i: usize, storage: Storage) -> Result<Value, StoreError> {
        if let (Row::Sqlite(cells), Storage::Text) = (&mut *self, storage)
            && let Some(rusqlite::types::Value::Text(text)) = cells.get_mut(i)
        {
            return Ok(Value::Text(std::mem::take(text)));
        }
        self.value(i, storage)
    }

    /// Reads column `i` as a value kept with `storage`.
    pub fn value(&self, i: usize, storage: Storage) -> Result<Value, StoreError> {
        match self {
            Row::Sqlite(cells) => {
                let cell = cells.get(i).ok_or_else(|| StoreError::Corrupt(format!("no column {i}")))?;
                sqlite_value(cell.into(), storage)
            }
            Row::Postgres(row) => {
                let value = match storage {
                    Storage::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
                    Storage::Integer => row.try_get::<Option<i64>, _>(i)?.map(Value::Integer),
                    Storage::Fixed(_) => row.try_get::<Option<i64>, _>(i)?.map(Value::Fixed),
                    Storage::Boolean => row.try_get::<Option<bool>, _>(i)?.map(Value::Boolean),
                    Storage::Date => row.try_get::<Option<NaiveDate>, _>(i)?.map(Value::Date),
                    Storage::Datetime => row.try_get::<Option<DateTime<Utc>>, _>(i)?.map(Value::Datetime),
                    Storage::Uuid => row.try_get::<Option<Uuid>, _>(i)?.map(Value::Uuid),
                    Storage::List => {
                        row.try_get::<Option<sqlx::types::Json<Vec<String>>>, _>(i)?.map(|json| Value::List(json.0))
                    }
                };
                Ok(value.unwrap_or(Value::Null))
            }
        }
    }

    pub fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.value(i, Storage::Text)? {
            Value::Text(text) => Ok(Some(text)),
            _ => Ok(None),
        }
    }

    pub fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.value(i, Storage::Integer)? {
            Value::Integer(n) => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    pub fn uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        match self.value(i, Storage::Uuid)? {
            Value::Uuid(id) => Ok(Some(id)),
            _ => Ok(None),
        }
    }

    pub fn datetime(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.value(i, Storage::Datetime)? {
            Value::Datetime(dt) => Ok(Some(dt)),
            _ => Ok(None),
        }
    }

    pub fn boolean(&self, i: usize) -> Result<Option<bool>, StoreError> {
        match self.value(i, Storage::Boolean)? {
            Value::Boolean(b) => Ok(Some(b)),
            _ => Ok(None),
        }
    }

    /// Reads a JSON document column.
    pub fn json(&self, i: usize) -> Result<Option<serde_json::Value>, StoreError> {
        match self {
            Row::Sqlite(_) => match self.text(i)? {
                Some(text) => Ok(Some(serde_json::from_str(&text).map_err(|_| corrupt("JSON", &text))?)),
                None => Ok(None),
            },
            Row::Postgres(row) => Ok(row.try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>(i)?.map(|j| j.0)),
        }
    }
}

/// Creating and dropping whole PostgreSQL databases, for fresh benchmark and test databases.
pub mod server {
    use sqlx::Executor as _;
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{AssertSqlSafe, ConnectOptions as _};
    use std::str::FromStr;

    use crate::StoreError;

    fn checked(name: &str) -> Result<&str, StoreError> {
        if crm_model::Ident::new(name).is_ok()
            || name.starts_with("crm_")
                && name[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Ok(name)
        } else {
            Err(StoreError::Corrupt(format!("`{name}` is not a database name the engine makes")))
        }
    }

    /// Creates database `name` on the server of `url`, copying `template` when given.
    pub async fn create_database(url: &str, name: &str, template: Option<&str>) -> Result<(), StoreError> {
        let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
        let statement = match template {
            Some(t) => format!("CREATE DATABASE \"{}\" TEMPLATE \"{}\"", checked(name)?, checked(t)?),
            None => format!("CREATE DATABASE \"{}\"", checked(name)?),
        };
        conn.execute(AssertSqlSafe(statement)).await?;
        Ok(())
    }

    pub async fn drop_database(url: &str, name: &str) -> Result<(), StoreError> {
        let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", checked(name)?);
        conn.execute(AssertSqlSafe(statement)).await?;
        Ok(())
    }

    pub async fn rename_database(url: &str, from: &str, to: &str) -> Result<(), StoreError> {
        let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
        let statement = format!("ALTER DATABASE \"{}\" RENAME TO \"{}\"", checked(from)?, checked(to)?);
        conn.execute(AssertSqlSafe(statement)).await?;
        Ok(())
    }

    /// A session-level advisory lock of the server, held until released.
    pub struct AdvisoryLock(sqlx::PgConnection);

    pub async fn advisory_lock(url: &str, key: i64) -> Result<AdvisoryLock, StoreError> {
        let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut conn).await?;
        Ok(AdvisoryLock(conn))
    }

    impl AdvisoryLock {
        pub async fn release(mut self, key: i64) -> Result<(), StoreError> {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut self.0).await?;
            Ok(())
        }
    }

    pub async fn database_exists(url: &str, name: &str) -> Result<bool, StoreError> {
        let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
        let found: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1").bind(name).fetch_optional(&mut conn).await?;
        Ok(found.is_some())
    }

    /// A connection that hears notifications on one channel (`LISTEN`).
    pub struct Listener(sqlx::postgres::PgListener);

    pub async fn listen(url: &str, channel: &str) -> Result<Listener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Listener(listener))
    }

    impl Listener {
        /// Waits for the next notification; a lost connection is opened again, and a
        /// notification sent meanwhile is lost (the caller then does what it would have).
        pub async fn next(&mut self) -> Result<(), StoreError> {
            self.0.recv().await?;
            Ok(())
        }
    }

    /// The URL of database `name` on the server of `url`.
    pub fn database_url(url: &str, name: &str) -> String {
        match url.rsplit_once('/') {
            Some((server, _)) if server.contains("://") && !server.ends_with('/') => format!("{server}/{name}"),
            _ => format!("{}/{name}", url.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_datetimes_are_fixed_width_and_sort_as_time() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        assert_eq!(sqlite_datetime(&at("2026-01-02T03:04:05.006007+08:00")), "2026-01-01T19:04:05.006007Z");
        assert_eq!(sqlite_datetime(&at("0999-12-31T23:59:59Z")), "0999-12-31T23:59:59.000000Z");
        let times = ["2026-11-27T09:00:00Z", "2026-11-27T09:00:00.5Z", "2026-11-27T10:00:00Z", "2027-01-01T00:00:00Z"];
        let texts: Vec<String> = times.iter().map(|t| sqlite_datetime(&at(t))).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1] && w[0].len() == w[1].len()), "{texts:?}");
    }

    fn insert(table: &'static str, values: &[i64]) -> Sql {
        let mut sql = Sql::new(Dialect::Postgres);
        sql.insert_rows_into().push(table).push(" (n) VALUES ");
        sql.comma_list(values, |sql, n| {
            sql.push("(").bind_int(*n).push(")");
        });
        sql
    }

    #[test]
    fn consecutive_inserts_of_rows_go_as_one_statement_with_their_parameters_renumbered() {
        let mut update = Sql::new(Dialect::Postgres);
        update.push("UPDATE t SET n = ").bind_int(7);
        let statements = vec![insert("a", &[1, 2]), insert("b", &[3]), insert("c", &[4, 5]), update, insert("d", &[6])];
        let joined = joined_inserts(statements);
        let texts: Vec<&str> = joined.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "WITH w0 AS (INSERT INTO a (n) VALUES ($1), ($2)), w1 AS (INSERT INTO b (n) VALUES ($3)) \
                 INSERT INTO c (n) VALUES ($4), ($5)",
                "UPDATE t SET n = $1",
                "INSERT INTO d (n) VALUES ($1)",
            ]
        );
        let values: Vec<String> = joined[0].args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(values, ["Integer(1)", "Integer(2)", "Integer(3)", "Integer(4)", "Integer(5)"]);
    }

    fn rows(dialect: Dialect, rows: Vec<Vec<Arg>>) -> Vec<Sql> {
        let mut head = Sql::new(dialect);
        head.insert_rows_into().push("t (a, b)");
        Rows::new(head, rows).into_statements()
    }

    #[test]
    fn rows_go_to_postgresql_as_one_array_per_column_and_to_sqlite_as_values() {
        let values = |n: i64| {
            vec![Arg::Text(format!("r{n}")), if n == 1 { Arg::Null(Storage::Fixed(2)) } else { Arg::Integer(n) }]
        };
        let postgres = rows(Dialect::Postgres, (0..1200).map(values).collect());
        assert_eq!(postgres.len(), 1);
        assert_eq!(postgres[0].text, "INSERT INTO t (a, b) SELECT * FROM UNNEST($1::text[], $2::bigint[])");
        let Arg::Array(Array::Integer(numbers)) = &postgres[0].args[1] else { panic!("{:?}", postgres[0].args[1]) };
        assert_eq!(numbers[..3], [Some(0), None, Some(2)]);
        assert_eq!(numbers.len(), 1200);

        let sqlite = rows(Dialect::Sqlite, (0..1200).map(values).collect());
        assert_eq!(sqlite.len(), 3, "500 rows a statement");
        assert!(sqlite[2].text.starts_with("INSERT OR FAIL INTO t (a, b) VALUES (?, ?), (?, ?)"));
        assert_eq!(sqlite[2].args.len(), 400);
        assert!(rows(Dialect::Postgres, Vec::new()).is_empty());
    }

    #[test]
    fn a_single_row_or_a_column_of_several_types_goes_to_postgresql_as_values() {
        let mixed =
            vec![vec![Arg::Text("a".into()), Arg::Integer(1)], vec![Arg::Text("b".into()), Arg::Text("2".into())]];
        let statements = rows(Dialect::Postgres, mixed);
        assert_eq!(statements[0].text, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        let one = vec![vec![Arg::Text("a".into()), Arg::Integer(1)]];
        assert_eq!(rows(Dialect::Postgres, one)[0].text, "INSERT INTO t (a, b) VALUES ($1, $2)");
        // Nulls only: the array takes the type the nulls carry.
        let nulls = vec![vec![Arg::Null(Storage::Date), Arg::Null(Storage::Uuid)]; 2];
        assert_eq!(
            rows(Dialect::Postgres, nulls)[0].text,
            "INSERT INTO t (a, b) SELECT * FROM UNNEST($1::date[], $2::uuid[])"
        );
    }

    #[test]
    fn auto_numbers_set_after_the_rows_land_in_their_column() {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let mut head = Sql::new(dialect);
            head.insert_rows_into().push("t (a, b)");
            let mut inserted =
                Rows::new(head, (0..600).map(|n| vec![Arg::Null(Storage::Text), Arg::Integer(n)]).collect());
            inserted.set_texts(0, (0..600).map(|n| format!("C{n}")).collect());
            let texts: Vec<String> = inserted
                .into_statements()
                .into_iter()
                .flat_map(|sql| sql.args)
                .flat_map(|arg| match arg {
                    Arg::Array(Array::Text(texts)) => texts.into_iter().flatten().collect(),
                    Arg::Text(text) => vec![text],
                    _ => Vec::new(),
                })
                .collect();
            assert_eq!(texts, (0..600).map(|n| format!("C{n}")).collect::<Vec<_>>(), "{dialect:?}");
        }
    }

    #[test]
    fn a_join_stops_at_the_parameter_limit() {
        let big: Vec<i64> = (0..20_000).collect();
        let joined = joined_inserts(vec![insert("a", &big), insert("b", &big), insert("c", &[1])]);
        assert_eq!(joined.len(), 2);
        assert!(joined[1].text.starts_with("WITH w0 AS (INSERT INTO b"), "{}", &joined[1].text[..40]);
        assert!(joined[1].text.ends_with("INSERT INTO c (n) VALUES ($20001)"));
    }
}
