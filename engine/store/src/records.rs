//! Records of entity tables: read, list with filters and keyset pages, count, group, insert,
//! update with a version check (which also moves them to and from the recycle bin), rollups.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::catalog::Rollup;
use crm_model::filter::{Cond, Op, ScopeTerm};
use crm_model::{Entity, FieldDef, FieldType, Filter, ListQuery, Storage, Value};
use uuid::Uuid;

use crate::ddl::index_name;
use crate::sql::{Arg, Dialect, On, Row, Rows, Sql};
use crate::{Db, StoreError, Tx, TxInner};

/// One row of an entity table: a value per column of [`Entity::columns`], in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub values: Vec<Value>,
}

/// Positions of the system columns in every record.
pub mod col {
    pub const ID: usize = 0;
    pub const OWNER: usize = 1;
    pub const CREATED_BY: usize = 2;
    pub const CREATED_AT: usize = 3;
    pub const UPDATED_BY: usize = 4;
    pub const UPDATED_AT: usize = 5;
    pub const VERSION: usize = 6;
    pub const DELETED_AT: usize = 7;
}

impl Record {
    pub fn id(&self) -> Uuid {
        match self.values[col::ID] {
            Value::Uuid(id) => id,
            _ => Uuid::nil(),
        }
    }

    pub fn version(&self) -> i64 {
        match self.values[col::VERSION] {
            Value::Integer(v) => v,
            _ => 0,
        }
    }

    pub fn is_deleted(&self) -> bool {
        !self.values[col::DELETED_AT].is_null()
    }
}

fn read_record(mut row: Row, entity: &Entity) -> Result<Record, StoreError> {
    let values =
        entity.columns().iter().enumerate().map(|(i, field)| row.take(i, field.storage())).collect::<Result<_, _>>()?;
    Ok(Record { values })
}

/// How each column of the entity's table is kept, in the order [`select_from`] reads them.
fn storages(entity: &Entity) -> Vec<Storage> {
    entity.columns().iter().map(FieldDef::storage).collect()
}

fn select_from(sql: &mut Sql, entity: &Entity) {
    sql.push("SELECT ");
    sql.comma_list(entity.columns(), |sql, field| {
        sql.ident(&field.name);
    });
    sql.push(" FROM ").ident(entity.name());
}

/// Turns a unique-index violation into [`StoreError::Unique`] naming the field.
pub(crate) fn classify(entity: &Entity, error: StoreError) -> StoreError {
    if !error.is_unique_violation() {
        return error;
    }
    let detail = error.violation_detail().unwrap_or_default();
    let by_index =
        entity.columns().iter().find(|f| index_name(entity.name().as_str(), &[f.name.as_str()], true) == detail);
    // SQLite names the column instead: "UNIQUE constraint failed: customer.code".
    let by_message = || {
        let (_, column) = detail.rsplit_once('.')?;
        entity.columns().iter().find(|f| f.name.as_str() == column.trim())
    };
    match by_index.or_else(by_message) {
        Some(field) => StoreError::Unique(field.name.to_string()),
        None => error,
    }
}

/// The statement that reads one record (deleted or not) by id, within a scope.
pub fn get_statement(dialect: Dialect, entity: &Entity, id: Uuid, scope: Option<&Filter>) -> Sql {
    let mut sql = Sql::new(dialect);
    select_from(&mut sql, entity);
    sql.push(" WHERE \"id\" = ").bind(Arg::Uuid(id));
    push_and(&mut sql, scope);
    sql
}

fn push_and(sql: &mut Sql, filter: Option<&Filter>) {
    if let Some(filter) = filter {
        sql.push(" AND ");
        push_filter(sql, filter);
    }
}

pub async fn get(db: &Db, entity: &Entity, id: Uuid, scope: Option<&Filter>) -> Result<Option<Record>, StoreError> {
    let rows = get_statement(db.dialect(), entity, id, scope).fetch_values_keyed(db, &storages(entity)).await?;
    Ok(rows.into_iter().next().map(|values| Record { values }))
}

/// The live records among `ids` within a scope, in no order: found by their ids, whatever
/// the lists' indexes are.
pub async fn get_many(
    db: &Db,
    entity: &Entity,
    ids: &[Uuid],
    scope: Option<&Filter>,
) -> Result<Vec<Record>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    select_from(&mut sql, entity);
    sql.push(" WHERE \"deleted_at\" IS NULL AND \"id\" IN ");
    push_ids(&mut sql, ids);
    push_and(&mut sql, scope);
    Ok(sql.fetch_values(db, storages(entity)).await?.into_iter().map(|values| Record { values }).collect())
}

/// Live records in the order of their ids, after `after`: for reading a whole table in
/// pages (rebuilding a search index).
pub async fn page_by_id(db: &Db, entity: &Entity, after: Option<Uuid>, limit: u32) -> Result<Vec<Record>, StoreError> {
    let mut sql = db.sql();
    select_from(&mut sql, entity);
    sql.push(" WHERE \"deleted_at\" IS NULL");
    if let Some(after) = after {
        sql.push(" AND \"id\" > ").bind(Arg::Uuid(after));
    }
    sql.push(" ORDER BY \"id\" LIMIT ").bind_int(i64::from(limit));
    Ok(sql.fetch_values(db, storages(entity)).await?.into_iter().map(|values| Record { values }).collect())
}

/// Reads a record within a scope inside a transaction, locking it on PostgreSQL until the
/// transaction ends.
pub async fn get_for_update(
    tx: &mut Tx,
    entity: &Entity,
    id: Uuid,
    scope: Option<&Filter>,
) -> Result<Option<Record>, StoreError> {
    let mut sql = tx.sql();
    select_from(&mut sql, entity);
    sql.push(" WHERE \"id\" = ").bind(Arg::Uuid(id));
    push_and(&mut sql, scope);
    if sql.dialect() == Dialect::Postgres {
        sql.push(" FOR UPDATE");
    }
    sql.fetch_optional_tx(tx).await?.map(|row| read_record(row, entity)).transpose()
}

/// The id and one reference of every live record: for small tables such as departments.
pub async fn references(db: &Db, entity: &Entity, field: &FieldDef) -> Result<Vec<(Uuid, Option<Uuid>)>, StoreError> {
    let mut sql = db.sql();
    sql.push("SELECT \"id\", ").ident(&field.name).push(" FROM ").ident(entity.name());
    sql.push(" WHERE \"deleted_at\" IS NULL");
    sql.fetch_all(db).await?.iter().map(|row| Ok((row.uuid(0)?.unwrap_or_default(), row.uuid(1)?))).collect()
}

/// Every record of `entity` (the recycle bin included) whose reference `fields` name one of
/// `ids`: the records a merge of `ids` moves.
pub async fn referring(
    db: &Db,
    entity: &Entity,
    fields: &[&FieldDef],
    ids: &[Uuid],
) -> Result<Vec<Record>, StoreError> {
    if fields.is_empty() || ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = db.sql();
    select_from(&mut sql, entity);
    sql.push(" WHERE ");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.ident(&field.name).push(" IN ");
        push_ids(&mut sql, ids);
    }
    sql.push(" ORDER BY \"id\"");
    Ok(sql.fetch_values(db, storages(entity)).await?.into_iter().map(|values| Record { values }).collect())
}

/// Which of `ids` are live records of `entity` within a scope.
pub async fn existing_ids(
    on: &mut On<'_>,
    entity: &Entity,
    ids: &[Uuid],
    scope: Option<&Filter>,
) -> Result<HashSet<Uuid>, StoreError> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(500) {
        let mut sql = on.sql();
        sql.push("SELECT \"id\" FROM ").ident(entity.name()).push(" WHERE \"deleted_at\" IS NULL AND \"id\" IN ");
        push_ids(&mut sql, chunk);
        push_and(&mut sql, scope);
        // At most 500 lookups by key: well under a millisecond, short enough for the caller's task.
        for row in on.fetch_keyed(sql).await? {
            found.extend(row.uuid(0)?);
        }
    }
    Ok(found)
}

/// Whether another live record already holds `value` in a unique field.
pub async fn value_taken(
    on: &mut On<'_>,
    entity: &Entity,
    field: &FieldDef,
    value: &Value,
    except: Uuid,
) -> Result<bool, StoreError> {
    let mut sql = on.sql();
    sql.push("SELECT 1 FROM ").ident(entity.name()).push(" WHERE ").ident(&field.name).push(" = ");
    sql.bind(Arg::of(field, value));
    sql.push(" AND \"deleted_at\" IS NULL AND \"id\" <> ").bind(Arg::Uuid(except));
    sql.push(" LIMIT 1");
    Ok(!on.fetch_all(sql).await?.is_empty())
}

/// Reserves `count` consecutive numbers of a counter (auto-number fields), which starts at 1;
/// returns the first.
pub async fn reserve_in_sequence(tx: &mut Tx, name: &str, count: i64) -> Result<i64, StoreError> {
    let mut sql = tx.sql();
    sql.push("INSERT INTO crm_sequence (name, value) VALUES (").bind(Arg::Text(name.to_owned())).push(", ");
    sql.bind_int(count).push(")");
    first_reserved(reserving(sql, count).fetch_optional_tx(tx).await?, count)
}

/// [`reserve_in_sequence`] on PostgreSQL, before the transaction of the records that take the
/// numbers begins: in theirs the counter's row would stay locked until it commits, and every
/// new record of the entity would wait for the one before it to reach the disk. This is one
/// statement, its own transaction, and its commit does not wait for the disk either (the
/// setting lasts as long as that transaction): the records' commit does, so a number is
/// durable whenever a record carrying it is, since the log reaches the disk in order.
/// Records that then fail to commit leave a gap.
pub async fn reserve_ahead(db: &Db, name: &str, count: i64) -> Result<i64, StoreError> {
    let mut sql = db.sql();
    sql.push("INSERT INTO crm_sequence (name, value) SELECT ").bind(Arg::Text(name.to_owned())).push(", ");
    sql.bind_int(count).push(" FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed");
    let rows = db.writes.noted(reserving(sql, count).fetch_all(db).await, true)?;
    first_reserved(rows.into_iter().next(), count)
}

/// The end of an insert into the counters that adds `count` to an existing one.
fn reserving(mut sql: Sql, count: i64) -> Sql {
    sql.push(" ON CONFLICT (name) DO UPDATE SET value = crm_sequence.value + ").bind_int(count);
    sql.push(" RETURNING value");
    sql
}

fn first_reserved(row: Option<Row>, count: i64) -> Result<i64, StoreError> {
    let row = row.ok_or_else(|| StoreError::Corrupt("sequence returned nothing".into()))?;
    let last = row.int(0)?.ok_or_else(|| StoreError::Corrupt("sequence returned null".into()))?;
    Ok(last - count + 1)
}

/// New records as INSERT statements ([`Rows`]), followed by the statements of the change
/// (its audit and outbox rows), to run in one trip to the database. They are built before the
/// transaction that runs them begins, so that the writer is not held while they are; what
/// only the transaction knows (auto-numbers) is set with [`Insert::set_texts`].
pub struct Insert {
    rows: Rows,
    then: Vec<Sql>,
}

impl Insert {
    pub fn new(dialect: Dialect, entity: &Entity, records: &[&Record], then: Vec<Sql>) -> Self {
        let columns = entity.columns();
        let mut head = Sql::new(dialect);
        head.insert_rows_into().ident(entity.name()).push(" (");
        head.comma_list(columns, |sql, field| {
            sql.ident(&field.name);
        });
        head.push(")");
        let rows = records
            .iter()
            .map(|record| columns.iter().zip(&record.values).map(|(field, value)| Arg::of(field, value)).collect())
            .collect();
        Insert { rows: Rows::new(head, rows), then }
    }

    /// Sets column `column` of the rows to `texts`, in the order of the records.
    pub fn set_texts(&mut self, column: usize, texts: Vec<String>) {
        self.rows.set_texts(column, texts);
    }

    /// Runs the statements in `tx`; on PostgreSQL they may wait for the transaction's next
    /// statement or its commit (see `postgres::PgTx`).
    pub async fn run(self, tx: &mut Tx, entity: &Arc<Entity>) -> Result<(), StoreError> {
        match &mut tx.inner {
            TxInner::Postgres(t) => {
                let done = t.insert(self.statements(), entity).await;
                tx.noted(done)
            }
            TxInner::Sqlite(_) => Sql::execute_all(self.statements(), tx).await.map_err(|e| classify(entity, e)),
        }
    }

    fn statements(self) -> Vec<Sql> {
        let mut statements = self.rows.into_statements();
        statements.extend(self.then);
        statements
    }
}

/// Writes changed columns of a live record at `version`, bumping the version. Returns the
/// record as stored, or `None` if it is gone or at another version.
pub async fn update(
    tx: &mut Tx,
    entity: &Entity,
    id: Uuid,
    version: i64,
    changes: &[(usize, Value)],
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Record>, StoreError> {
    let columns = entity.columns();
    let mut sql = tx.sql();
    sql.push("UPDATE ").ident(entity.name()).push(" SET ");
    for (i, value) in changes {
        let field = &columns[*i];
        sql.ident(&field.name).push(" = ").bind(Arg::of(field, value)).push(", ");
    }
    sql.push("\"updated_by\" = ").bind(Arg::Uuid(by));
    sql.push(", \"updated_at\" = ").bind(Arg::Datetime(now));
    sql.push(", \"version\" = \"version\" + 1 WHERE \"id\" = ").bind(Arg::Uuid(id));
    sql.push(" AND \"version\" = ").bind_int(version);
    sql.push(" RETURNING ");
    sql.comma_list(columns, |sql, field| {
        sql.ident(&field.name);
    });
    let row = sql.fetch_optional_tx(tx).await.map_err(|e| classify(entity, e))?;
    row.map(|row| read_record(row, entity)).transpose()
}

/// Every record a user owns, the recycle bin included.
pub async fn owned_by(db: &Db, entity: &Entity, user: Uuid) -> Result<Vec<Record>, StoreError> {
    let mut sql = db.sql();
    select_from(&mut sql, entity);
    sql.push(" WHERE \"owner\" = ").bind(Arg::Uuid(user));
    Ok(sql.fetch_values(db, storages(entity)).await?.into_iter().map(|values| Record { values }).collect())
}

/// How many live records of an entity a user owns.
pub async fn count_owned(db: &Db, entity: &Entity, user: Uuid) -> Result<i64, StoreError> {
    let owner = entity.column("owner").expect("every entity has an owner").clone();
    let mine = Filter::Cond(Box::new(Cond { field: owner, op: Op::Eq(Value::Uuid(user)) }));
    count(db, count_statement(db.dialect(), entity, Some(&mine), false)).await
}

/// `SELECT <total> FROM <from> src WHERE … src.<via> = `, the parent's id to follow: the sum of
/// `sum` (or the count) of the live records of `from` that point at one parent.
/// The value a rollup keeps for a row of its entity's table, named as such in the statement:
/// the total of the live records of `from` pointing at the row (those matching the filter),
/// taken off the row's `left_of` when there is one.
pub(crate) fn push_total(sql: &mut Sql, rollup: &Rollup) {
    let def = &rollup.def;
    if let Some(left_of) = &def.left_of {
        sql.ident(&rollup.entity).push(".").ident(left_of).push(" - ");
    }
    match (&def.sum, &def.latest) {
        // PostgreSQL sums bigints as numeric: cast back to what the column holds.
        (Some(summed), _) => sql.push("(SELECT CAST(COALESCE(SUM(src.").ident(summed).push("), 0) AS BIGINT)"),
        (None, Some(latest)) => sql.push("(SELECT MAX(src.").ident(latest).push(")"),
        (None, None) => sql.push("(SELECT COUNT(*)"),
    };
    sql.push(" FROM ").ident(&def.from).push(" src WHERE src.\"deleted_at\" IS NULL");
    // The filter's columns are those of `from`, which the innermost table answers.
    push_and(sql, rollup.filter.as_ref());
    sql.push(" AND src.").ident(&def.via).push(" = ").ident(&rollup.entity).push(".\"id\")");
}

/// Recomputes a rollup of one record of `parent` and writes it if it changed.
/// Returns the value before and the record as stored, or `None` if nothing changed. The
/// parent is locked before the total is read, so that on PostgreSQL two transactions adding
/// lines to one parent count each other's.
pub async fn recompute_rollup(
    tx: &mut Tx,
    parent: &Entity,
    rollup: &Rollup,
    id: Uuid,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(Value, Record)>, StoreError> {
    let Some(field) = parent.field(rollup.field.as_str()) else { return Ok(None) };
    let Some(current) = get_for_update(tx, parent, id, None).await? else { return Ok(None) };
    let index = parent.column_index(field.name.as_str()).expect("a column of the parent");
    let mut total = tx.sql();
    total.push("SELECT ");
    push_total(&mut total, rollup);
    total.push(" FROM ").ident(parent.name()).push(" WHERE \"id\" = ").bind(Arg::Uuid(id));
    let row =
        total.fetch_optional_tx(tx).await?.ok_or_else(|| StoreError::Corrupt("a total returned nothing".into()))?;
    let total = row.value(0, field.storage())?;
    if current.values[index] == total {
        return Ok(None);
    }
    let stored = update(tx, parent, id, current.version(), &[(index, total)], by, now).await?;
    Ok(stored.map(|stored| (current.values[index].clone(), stored)))
}

/// A page of records and whether more follow.
pub struct Page {
    pub records: Vec<Record>,
    pub more: bool,
}

/// The statement of a list page: exposed so a benchmark can run the very same SQL directly.
///
/// The page's ids are chosen first and the rows read after, so that the filtering and
/// sorting can be answered from an index alone and only the rows of the page are read.
pub fn list_statement(dialect: Dialect, entity: &Entity, query: &ListQuery) -> Sql {
    let keys = order_keys(entity, &query.sort);
    let mut sql = Sql::new(dialect);
    select_from(&mut sql, entity);
    // The page is chosen by row key: on SQLite its rows are then read straight from the
    // table instead of through the index of ids.
    let key = row_key(dialect);
    sql.push(" WHERE ").push(key).push(" IN (SELECT ").push(key).push(" FROM ").ident(entity.name());
    push_where(&mut sql, query.filter.as_ref(), query.deleted);
    if let Some(after) = &query.after {
        sql.push(" AND ");
        push_after(&mut sql, entity, &keys, after);
    }
    push_order(&mut sql, &keys);
    sql.push(" LIMIT ").bind_int(i64::from(query.limit) + 1);
    sql.push(")");
    push_order(&mut sql, &keys);
    sql
}

fn push_order(sql: &mut Sql, keys: &[OrderKey]) {
    sql.push(" ORDER BY ");
    sql.comma_list(keys, |sql, key| {
        push_key(sql, key);
        sql.push(if key.descending { " DESC" } else { " ASC" });
        if key.nullable {
            sql.push(" NULLS LAST");
        }
    });
}

pub async fn list(db: &Db, entity: &Entity, query: &ListQuery) -> Result<Page, StoreError> {
    let rows = list_statement(db.dialect(), entity, query).fetch_values(db, storages(entity)).await?;
    let mut records: Vec<Record> = rows.into_iter().map(|values| Record { values }).collect();
    let more = records.len() > query.limit as usize;
    records.truncate(query.limit as usize);
    Ok(Page { records, more })
}

pub fn count_statement(dialect: Dialect, entity: &Entity, filter: Option<&Filter>, deleted: bool) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT COUNT(*) FROM ").ident(entity.name());
    push_where(&mut sql, filter, deleted);
    sql
}

/// Runs a [`count_statement`].
pub async fn count(db: &Db, statement: Sql) -> Result<i64, StoreError> {
    let row = statement.fetch_optional(db).await?;
    Ok(row.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0))
}

/// One group of a grouped count: the value, how many records, and the sum asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub value: Value,
    pub count: i64,
    pub sum: Option<Value>,
}

pub fn group_statement(
    dialect: Dialect,
    entity: &Entity,
    by: &FieldDef,
    sum: Option<&FieldDef>,
    filter: Option<&Filter>,
) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ").ident(&by.name).push(", COUNT(*)");
    if let Some(sum) = sum {
        // PostgreSQL widens a sum of bigints to numeric; the engine reads it as a bigint again.
        sql.push(", CAST(SUM(").ident(&sum.name).push(") AS BIGINT)");
    }
    sql.push(" FROM ").ident(entity.name());
    push_where(&mut sql, filter, false);
    sql.push(" GROUP BY ").ident(&by.name).push(" ORDER BY COUNT(*) DESC LIMIT 1000");
    sql
}

/// Counts live records per value of a field, optionally summing a number field: runs a
/// [`group_statement`].
pub async fn group(db: &Db, statement: Sql, by: &FieldDef, sum: Option<&FieldDef>) -> Result<Vec<Group>, StoreError> {
    let rows = statement.fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            let sum = match sum {
                Some(field) => Some(match (row.int(2)?, field.storage()) {
                    (None, _) => Value::Null,
                    (Some(n), Storage::Fixed(_)) => Value::Fixed(n),
                    (Some(n), _) => Value::Integer(n),
                }),
                None => None,
            };
            Ok(Group { value: row.value(0, by.storage())?, count: row.int(1)?.unwrap_or(0), sum })
        })
        .collect()
}

/// A key of the total order of a list: the requested keys, then the id.
struct OrderKey {
    field: FieldDef,
    descending: bool,
    nullable: bool,
    /// The last key, which breaks ties: the id, or on SQLite the rowid (see
    /// `ddl::push_tie_breaker`).
    tie_breaker: bool,
}

/// What a statement matches rows by: on SQLite the rowid, which every index entry carries,
/// so that the match needs no read of the row; on PostgreSQL the id.
fn row_key(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "\"id\"",
    }
}

/// The column of a sort key.
fn push_key(sql: &mut Sql, key: &OrderKey) {
    if key.tie_breaker {
        sql.push(row_key(sql.dialect()));
    } else {
        sql.ident(&key.field.name);
    }
}

/// A cursor's value of a sort key. On SQLite the tie breaker's is the rowid of the cursor's
/// record, found by its id; the record stays in the table when it is deleted (the recycle
/// bin), so only a purge between two pages loses the place.
fn push_value(sql: &mut Sql, entity: &Entity, key: &OrderKey, value: &Value) {
    if key.tie_breaker && sql.dialect() == Dialect::Sqlite {
        sql.push("(SELECT rowid FROM ").ident(entity.name()).push(" WHERE \"id\" = ");
        sql.bind(Arg::of(&key.field, value)).push(")");
    } else {
        sql.bind(Arg::of(&key.field, value));
    }
}

fn order_keys(entity: &Entity, sort: &[crm_model::SortKey]) -> Vec<OrderKey> {
    let mut keys: Vec<OrderKey> = sort
        .iter()
        .filter_map(|key| {
            let field = entity.column(key.field.as_str())?;
            let nullable = !matches!(field.name.as_str(), "id" | "owner" | "created_at" | "updated_at" | "version");
            Some(OrderKey { field: field.clone(), descending: key.descending, nullable, tie_breaker: false })
        })
        .collect();
    // The id follows the direction of the other keys when they agree, so that a row-value
    // comparison (which an index can serve) is possible.
    let descending = !keys.is_empty() && keys.iter().all(|k| k.descending);
    let id = entity.column("id").expect("every entity has an id").clone();
    keys.push(OrderKey { field: id, descending, nullable: false, tie_breaker: true });
    keys
}

/// Rows strictly after `after` in the order of `keys` (nulls sort last in both directions).
fn push_after(sql: &mut Sql, entity: &Entity, keys: &[OrderKey], after: &[Value]) {
    let same_direction = keys.iter().all(|k| k.descending == keys[0].descending);
    let no_nulls = keys.iter().all(|k| !k.nullable) && after.iter().all(|v| !v.is_null());
    if same_direction && no_nulls {
        sql.push("(");
        sql.comma_list(keys, push_key);
        sql.push(if keys[0].descending { ") < (" } else { ") > (" });
        sql.comma_list(keys.iter().zip(after), |sql, (key, value)| push_value(sql, entity, key, value));
        sql.push(")");
        return;
    }
    sql.push("(1 = 0");
    for i in 0..keys.len() {
        if after[i].is_null() {
            // Nothing sorts after an empty value in its own key.
            continue;
        }
        sql.push(" OR (");
        for (key, value) in keys[..i].iter().zip(after) {
            push_key(sql, key);
            if value.is_null() {
                sql.push(" IS NULL AND ");
            } else {
                sql.push(" = ");
                push_value(sql, entity, key, value);
                sql.push(" AND ");
            }
        }
        let key = &keys[i];
        sql.push("(");
        push_key(sql, key);
        sql.push(if key.descending { " < " } else { " > " });
        push_value(sql, entity, key, &after[i]);
        if key.nullable {
            sql.push(" OR ").ident(&key.field.name).push(" IS NULL");
        }
        sql.push("))");
    }
    sql.push(")");
}

pub(crate) fn push_where(sql: &mut Sql, filter: Option<&Filter>, deleted: bool) {
    sql.push(if deleted { " WHERE \"deleted_at\" IS NOT NULL" } else { " WHERE \"deleted_at\" IS NULL" });
    push_and(sql, filter);
}

fn push_filter(sql: &mut Sql, filter: &Filter) {
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(filter, Filter::And(_)) { " AND " } else { " OR " };
            sql.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                push_filter(sql, item);
            }
            sql.push(")");
        }
        Filter::Not(inner) => {
            sql.push("NOT (");
            push_filter(sql, inner);
            sql.push(")");
        }
        Filter::Cond(cond) => push_cond(sql, cond),
        Filter::Scope(term) => push_scope(sql, term),
    }
}

fn push_ids(sql: &mut Sql, ids: &[Uuid]) {
    sql.push("(");
    sql.comma_list(ids, |sql, id| {
        sql.bind(Arg::Uuid(*id));
    });
    sql.push(")");
}

/// The parts of data scopes that look beyond the record: who its owner is, what is shared.
fn push_scope(sql: &mut Sql, term: &ScopeTerm) {
    match term {
        ScopeTerm::OwnedInDepartments(departments) if departments.is_empty() => {
            sql.push("1 = 0");
        }
        ScopeTerm::OwnedInDepartments(departments) => {
            sql.push("\"owner\" IN (SELECT \"id\" FROM \"user\" WHERE \"department\" IN ");
            push_ids(sql, departments);
            sql.push(")");
        }
        ScopeTerm::OwnedByPools => {
            sql.push("\"owner\" IN (SELECT \"id\" FROM \"user\" WHERE \"pool\" = ").bind(Arg::Boolean(true)).push(")");
        }
        ScopeTerm::SharedWith { entity, user, departments, edit } => {
            // One subquery per kind of grantee, so that each is served by its own index.
            let grantee = |sql: &mut Sql, column: &'static str, ids: &[Uuid]| {
                sql.push("SELECT record_id FROM crm_share WHERE entity = ").bind(Arg::Text(entity.to_string()));
                sql.push(" AND ").push(column).push(" IN ");
                push_ids(sql, ids);
                if *edit {
                    sql.push(" AND access = ").bind(Arg::Text("edit".into()));
                }
            };
            // Shared records are matched by row key; on SQLite that takes their rowids first.
            let by_rowid = sql.dialect() == Dialect::Sqlite;
            sql.push(row_key(sql.dialect())).push(" IN (");
            if by_rowid {
                sql.push("SELECT rowid FROM ").ident(entity).push(" WHERE \"id\" IN (");
            }
            grantee(sql, "user_id", &[*user]);
            if !departments.is_empty() {
                sql.push(" UNION ALL ");
                grantee(sql, "department_id", departments);
            }
            sql.push(if by_rowid { "))" } else { ")" });
        }
        ScopeTerm::Nothing => {
            sql.push("1 = 0");
        }
    }
}

/// The owners, or the record ids, that one part of a data scope lets through: what a search
/// index, which knows each record's owner and id but not departments or shares, is asked
/// for.
pub enum Members {
    Owners(Vec<Uuid>),
    Ids(Vec<Uuid>),
}

pub async fn scope_members(db: &Db, term: &ScopeTerm) -> Result<Members, StoreError> {
    let mut sql = db.sql();
    let owners = match term {
        ScopeTerm::OwnedInDepartments(departments) if departments.is_empty() => return Ok(Members::Owners(Vec::new())),
        ScopeTerm::Nothing => return Ok(Members::Owners(Vec::new())),
        ScopeTerm::OwnedInDepartments(departments) => {
            sql.push("SELECT \"id\" FROM \"user\" WHERE \"department\" IN ");
            push_ids(&mut sql, departments);
            true
        }
        ScopeTerm::OwnedByPools => {
            sql.push("SELECT \"id\" FROM \"user\" WHERE \"pool\" = ").bind(Arg::Boolean(true));
            true
        }
        ScopeTerm::SharedWith { entity, user, departments, edit } => {
            sql.push("SELECT record_id FROM crm_share WHERE entity = ").bind(Arg::Text(entity.to_string()));
            sql.push(" AND (user_id = ").bind(Arg::Uuid(*user));
            if !departments.is_empty() {
                sql.push(" OR department_id IN ");
                push_ids(&mut sql, departments);
            }
            sql.push(")");
            if *edit {
                sql.push(" AND access = ").bind(Arg::Text("edit".into()));
            }
            false
        }
    };
    let found: Vec<Uuid> = sql.fetch_all(db).await?.iter().filter_map(|row| row.uuid(0).ok().flatten()).collect();
    Ok(if owners { Members::Owners(found) } else { Members::Ids(found) })
}

/// Escapes LIKE wildcards so a user's `%` or `_` matches itself.
fn like_pattern(text: &str, leading: bool) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    if leading {
        pattern.push('%');
    }
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn push_like(sql: &mut Sql, field: &FieldDef, pattern: String) {
    sql.ident(&field.name);
    // SQLite's LIKE ignores ASCII case; ILIKE does the same on PostgreSQL.
    sql.push(if sql.dialect() == Dialect::Postgres { " ILIKE " } else { " LIKE " });
    sql.bind(Arg::Text(pattern)).push(" ESCAPE '\\'");
}

/// `EXISTS (SELECT 1 FROM <elements of the list column> WHERE value IN (...))`.
fn push_list_has_any(sql: &mut Sql, field: &FieldDef, options: &[String]) {
    match sql.dialect() {
        Dialect::Sqlite => sql.push("EXISTS (SELECT 1 FROM json_each(").ident(&field.name).push(") WHERE value IN ("),
        Dialect::Postgres => sql
            .push("EXISTS (SELECT 1 FROM jsonb_array_elements_text(")
            .ident(&field.name)
            .push(") AS e(value) WHERE e.value IN ("),
    };
    sql.comma_list(options, |sql, option| {
        sql.bind(Arg::Text(option.clone()));
    });
    sql.push("))");
}

fn push_cond(sql: &mut Sql, cond: &Cond) {
    let field = &cond.field;
    let compare = |sql: &mut Sql, op: &'static str, value: &Value| {
        sql.ident(&field.name).push(op).bind(Arg::of(field, value));
    };
    match &cond.op {
        // A region contains its cities: 广东省 matches 广东省/深圳市. Regions are normalized and
        // compared byte-wise, and '/' is the byte just below '0', so the region and its cities
        // are exactly the range [region, region + "0"), which an index serves.
        Op::Eq(Value::Text(region)) if field.field_type == FieldType::Region => {
            sql.push("(");
            compare(sql, " >= ", &Value::Text(region.clone()));
            sql.push(" AND ");
            compare(sql, " < ", &Value::Text(format!("{region}0")));
            sql.push(")");
        }
        Op::Ne(Value::Text(region)) if field.field_type == FieldType::Region => {
            sql.push("(");
            compare(sql, " < ", &Value::Text(region.clone()));
            sql.push(" OR ");
            compare(sql, " >= ", &Value::Text(format!("{region}0")));
            sql.push(" OR ").ident(&field.name).push(" IS NULL)");
        }
        Op::Eq(value) => compare(sql, " = ", value),
        Op::Ne(value) => {
            sql.push("(");
            compare(sql, " <> ", value);
            sql.push(" OR ").ident(&field.name).push(" IS NULL)");
        }
        Op::Lt(value) => compare(sql, " < ", value),
        Op::Lte(value) => compare(sql, " <= ", value),
        Op::Gt(value) => compare(sql, " > ", value),
        Op::Gte(value) => compare(sql, " >= ", value),
        Op::Between(low, high) => {
            compare(sql, " BETWEEN ", low);
            sql.push(" AND ").bind(Arg::of(field, high));
        }
        Op::In(values) if field.storage() == Storage::List => {
            let options: Vec<String> = values
                .iter()
                .flat_map(|v| match v {
                    Value::List(items) => items.clone(),
                    _ => Vec::new(),
                })
                .collect();
            push_list_has_any(sql, field, &options);
        }
        Op::In(values) => {
            sql.ident(&field.name).push_in(values.iter().map(|value| Arg::of(field, value)).collect());
        }
        Op::Contains(Value::List(options)) => push_list_has_any(sql, field, options),
        Op::Contains(Value::Text(text)) => push_like(sql, field, like_pattern(text, true)),
        Op::Contains(_) => {
            sql.push("1 = 0");
        }
        Op::StartsWith(text) => push_like(sql, field, like_pattern(text, false)),
        Op::IsNull(true) => {
            sql.ident(&field.name).push(" IS NULL");
        }
        Op::IsNull(false) => {
            sql.ident(&field.name).push(" IS NOT NULL");
        }
    }
}
