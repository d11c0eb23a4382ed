//! The external databases a sync reads and writes — an ERP's, on MySQL/MariaDB or
//! PostgreSQL — behind a small API: open a connection, read a table's rows (all, or those
//! changed since a watermark), insert or update one row. Every value comes and goes as
//! text, so that nothing is lost on the way (a DECIMAL's digits, a code's leading zeros);
//! the engine turns text into field values and decides what to write.
//!
//! Table and column names come from sync mappings, checked by
//! [`crm_model::catalog::is_external_name`] and quoted here; every value is bound.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Row as _};

#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    #[error("the address must start with mysql://, mariadb:// or postgres://")]
    Address,
    #[error("`{0}` is not a name of the external database (letters, digits, _)")]
    Name(String),
    #[error("the column `{0}` is not in the table `{1}`")]
    NoColumn(String, String),
    #[error("{0}")]
    Database(String),
}

impl From<sqlx::Error> for ErpError {
    fn from(e: sqlx::Error) -> Self {
        ErpError::Database(e.to_string())
    }
}

/// A connection to an external database.
pub struct Erp {
    pool: Pool,
}

enum Pool {
    MySql(MySqlPool),
    Postgres(PgPool),
}

/// The same code over either server's pool (their types differ, the calls do not).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::MySql($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// Rows as text cells, whichever the server.
fn texts<R: sqlx::Row>(rows: &[R], width: usize) -> Result<Vec<Vec<Option<String>>>, sqlx::Error>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter().map(|r| (0..width).map(|i| r.try_get::<Option<String>, _>(i)).collect()).collect()
}

/// What to read of a table.
pub struct Read<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub columns: &'a [&'a str],
    /// The column that grows with each change, and the value to read from (inclusive:
    /// rows written in the same second as the last one read are read again, and change
    /// nothing the second time).
    pub watermark: Option<&'a str>,
    pub since: Option<&'a str>,
}

/// A row as text: its key, its watermark and the cells of the columns asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: Option<String>,
    pub watermark: Option<String>,
    pub cells: Vec<Option<String>>,
}

/// An address with its password hidden, to show and log.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "…".into() };
    match rest.rsplit_once('@') {
        Some((user, host)) => format!("{scheme}://{}:***@{host}", user.split(':').next().unwrap_or_default()),
        None => format!("{scheme}://{rest}"),
    }
}

fn checked(name: &str, parts: usize) -> Result<&str, ErpError> {
    if crm_model::catalog::is_external_name(name, parts) { Ok(name) } else { Err(ErpError::Name(name.to_owned())) }
}

impl Erp {
    /// Opens a small pool (a sync runs one statement at a time) once a first connection
    /// has answered: a wrong address or password is told at once, not retried.
    pub async fn connect(url: &str) -> Result<Erp, ErpError> {
        let timeout = Duration::from_secs(10);
        let pool = if let Some(rest) = url.strip_prefix("mariadb://") {
            Pool::MySql(Self::mysql(&format!("mysql://{rest}"), timeout).await?)
        } else if url.starts_with("mysql://") {
            Pool::MySql(Self::mysql(url, timeout).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            options.connect().await?.close().await?;
            Pool::Postgres(PgPoolOptions::new().max_connections(2).acquire_timeout(timeout).connect_lazy_with(options))
        } else {
            return Err(ErpError::Address);
        };
        Ok(Erp { pool })
    }

    async fn mysql(url: &str, timeout: Duration) -> Result<MySqlPool, ErpError> {
        // utf8mb4 on the wire: the server converts the text of GBK tables, so Chinese names
        // arrive whole.
        let options = MySqlConnectOptions::from_str(url)?.charset("utf8mb4");
        options.connect().await?.close().await?;
        Ok(MySqlPoolOptions::new().max_connections(2).acquire_timeout(timeout).connect_lazy_with(options))
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, pool => pool.close().await)
    }

    fn quote(&self, name: &str) -> String {
        let q = match self.pool {
            Pool::MySql(_) => '`',
            Pool::Postgres(_) => '"',
        };
        name.split('.').map(|part| format!("{q}{part}{q}")).collect::<Vec<_>>().join(".")
    }

    /// The `n`th parameter's placeholder, cast to the column's type where the server needs it.
    fn param(&self, n: usize, cast: Option<&str>) -> String {
        match (&self.pool, cast) {
            (Pool::MySql(_), _) => "?".into(),
            (Pool::Postgres(_), Some(cast)) => format!("CAST(${n} AS {cast})"),
            (Pool::Postgres(_), None) => format!("${n}"),
        }
    }

    /// The rows of a table, as text, in the order of the watermark (then the key).
    pub async fn read(&self, read: &Read<'_>) -> Result<Vec<Row>, ErpError> {
        let table = checked(read.table, 2)?;
        let key = checked(read.key, 1)?;
        let watermark = read.watermark.map(|w| checked(w, 1)).transpose()?;
        let text = match self.pool {
            Pool::MySql(_) => "CHAR",
            Pool::Postgres(_) => "text",
        };
        let cast = |column: &str| format!("CAST({} AS {text})", self.quote(column));
        let mut selected = vec![cast(key), watermark.map_or_else(|| "NULL".into(), cast)];
        for column in read.columns {
            selected.push(cast(checked(column, 1)?));
        }
        let mut sql = format!("SELECT {} FROM {}", selected.join(", "), self.quote(table));
        let since = read.since.filter(|_| watermark.is_some());
        if let (Some(column), Some(_)) = (watermark, since) {
            let types = self.column_types(table).await?;
            let cast = self.cast_of(&types, table, column)?;
            sql.push_str(&format!(" WHERE {} >= {}", self.quote(column), self.param(1, cast)));
        }
        match watermark {
            Some(column) => sql.push_str(&format!(" ORDER BY {}, {}", self.quote(column), self.quote(key))),
            None => sql.push_str(&format!(" ORDER BY {}", self.quote(key))),
        }
        let width = read.columns.len() + 2;
        let rows = on_pool!(&self.pool, pool => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            if let Some(since) = since {
                query = query.bind(since.to_owned());
            }
            texts(&query.fetch_all(pool).await?, width)?
        });
        Ok(rows
            .into_iter()
            .map(|mut cells| {
                let rest = cells.split_off(2);
                let watermark = cells.pop().flatten();
                Row { key: cells.pop().flatten(), watermark, cells: rest }
            })
            .collect())
    }

    /// A new row.
    pub async fn insert(&self, table: &str, values: &[(&str, Option<String>)]) -> Result<(), ErpError> {
        let types = self.column_types(checked(table, 2)?).await?;
        let mut columns = Vec::new();
        let mut params = Vec::new();
        for (n, (column, _)) in values.iter().enumerate() {
            columns.push(self.quote(checked(column, 1)?));
            params.push(self.param(n + 1, self.cast_of(&types, table, column)?));
        }
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", self.quote(table), columns.join(", "), params.join(", "));
        self.execute(sql, values.iter().map(|(_, v)| v.clone())).await?;
        Ok(())
    }

    /// Changes the row whose `key` column holds `code`; how many rows it changed.
    pub async fn update(
        &self,
        table: &str,
        (key, code): (&str, &str),
        values: &[(&str, Option<String>)],
    ) -> Result<u64, ErpError> {
        let types = self.column_types(checked(table, 2)?).await?;
        let mut sets = Vec::new();
        for (n, (column, _)) in values.iter().enumerate() {
            let param = self.param(n + 1, self.cast_of(&types, table, column)?);
            sets.push(format!("{} = {param}", self.quote(checked(column, 1)?)));
        }
        let key_param = self.param(values.len() + 1, self.cast_of(&types, table, key)?);
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = {key_param}",
            self.quote(table),
            sets.join(", "),
            self.quote(checked(key, 1)?)
        );
        let args = values.iter().map(|(_, v)| v.clone()).chain([Some(code.to_owned())]);
        self.execute(sql, args).await
    }

    async fn execute(&self, sql: String, args: impl Iterator<Item = Option<String>>) -> Result<u64, ErpError> {
        let args: Vec<Option<String>> = args.collect();
        Ok(on_pool!(&self.pool, pool => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for arg in args {
                query = query.bind(arg);
            }
            query.execute(pool).await?.rows_affected()
        }))
    }

    /// PostgreSQL's types of a table's columns, by name: text parameters are cast to them
    /// (MySQL converts text by itself, and is asked nothing).
    async fn column_types(&self, table: &str) -> Result<HashMap<String, String>, ErpError> {
        let Pool::Postgres(pool) = &self.pool else { return Ok(HashMap::new()) };
        let (schema, name) = table.split_once('.').unwrap_or(("", table));
        let rows = sqlx::query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = $1 AND ($2 = '' OR table_schema = $2)",
        )
        .bind(name)
        .bind(schema)
        .fetch_all(pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?))).collect()
    }

    /// The cast a text parameter needs to meet a column: one of a fixed few type names,
    /// never text from the database itself.
    fn cast_of(
        &self,
        types: &HashMap<String, String>,
        table: &str,
        column: &str,
    ) -> Result<Option<&'static str>, ErpError> {
        let Pool::Postgres(_) = self.pool else { return Ok(None) };
        let data_type = types.get(column).ok_or_else(|| ErpError::NoColumn(column.into(), table.into()))?;
        Ok(Some(match data_type.as_str() {
            "smallint" | "integer" | "bigint" => "bigint",
            "numeric" | "real" | "double precision" => "numeric",
            "date" => "date",
            "timestamp without time zone" => "timestamp",
            "timestamp with time zone" => "timestamptz",
            "time without time zone" => "time",
            "boolean" => "boolean",
            "uuid" => "uuid",
            _ => "text",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("mysql://root:s3cret@10.0.0.5:3306/ufdata_001"),
            "mysql://root:***@10.0.0.5:3306/ufdata_001"
        );
        assert_eq!(redacted("mysql://root@127.0.0.1/t6"), "mysql://root:***@127.0.0.1/t6");
        assert!(!redacted("postgres://sync:p@ss@db/erp").contains("p@ss"));
    }

    #[tokio::test]
    async fn other_databases_are_refused_before_connecting() {
        assert!(matches!(Erp::connect("mssql://sa@erp/ufdata").await, Err(ErpError::Address)));
    }
}
