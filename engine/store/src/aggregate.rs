//! A report's one `GROUP BY`: group keys (a column, a column of the record a lookup points
//! at, or a date bucket in the user's time zone) and measures over the live records that
//! match the report's filter and the caller's scope; beside a report grouped by a stage, the
//! average days the same records stayed in each stage. Nothing is fetched row by row.

use crm_model::report::{Agg, Aggregate, Bucket, GroupKey, MeasureOf, Order};
use crm_model::{Entity, Storage, Value};

use crate::records::push_where;
use crate::{Arg, Db, Dialect, Sql, StoreError};

/// A measured value: a count, or an exact number with its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    Count(i64),
    Number {
        units: i64,
        scale: u8,
    },
    /// No record had a value to measure.
    Empty,
}

/// One group: its keys (in the order of the report's groups) and its measures.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub keys: Vec<Value>,
    pub measures: Vec<Measured>,
}

/// The format of a date bucket, in `strftime` (SQLite) and `to_char` (PostgreSQL) terms.
fn bucket_format(bucket: Bucket, dialect: Dialect) -> &'static str {
    match (bucket, dialect) {
        (Bucket::Day | Bucket::Week, Dialect::Sqlite) => "'%Y-%m-%d'",
        (Bucket::Month, Dialect::Sqlite) => "'%Y-%m'",
        (Bucket::Year | Bucket::Quarter, Dialect::Sqlite) => "'%Y'",
        (Bucket::Day | Bucket::Week, Dialect::Postgres) => "'YYYY-MM-DD'",
        (Bucket::Month, Dialect::Postgres) => "'YYYY-MM'",
        (Bucket::Quarter, Dialect::Postgres) => "'YYYY-\"Q\"Q'",
        (Bucket::Year, Dialect::Postgres) => "'YYYY'",
    }
}

/// The column of a group key, read through its lookup if it has one.
fn push_column(sql: &mut Sql, entity: &Entity, key: &GroupKey) {
    match &key.through {
        None => {
            sql.ident(&key.field.name);
        }
        Some((lookup, target)) => {
            sql.push("(SELECT j.").ident(&key.field.name).push(" FROM ").ident(target).push(" j WHERE j.\"id\" = ");
            sql.ident(entity.name()).push(".").ident(&lookup.name).push(")");
        }
    }
}

/// A date bucket's key as text: `2026-11-30` (day, and the Monday of a week), `2026-11`,
/// `2026-Q4`, `2026`. A date-time is moved to the user's offset first.
fn push_bucket(sql: &mut Sql, entity: &Entity, key: &GroupKey, bucket: Bucket, offset_minutes: i32) {
    let datetime = key.field.storage() == Storage::Datetime;
    match sql.dialect() {
        // A date is stored as `YYYY-MM-DD` text: its month and year are its first characters,
        // which SQLite cuts far faster than it parses a date.
        Dialect::Sqlite if !datetime && matches!(bucket, Bucket::Day | Bucket::Month | Bucket::Year) => {
            sql.push("substr(");
            push_column(sql, entity, key);
            sql.push(match bucket {
                Bucket::Day => ", 1, 10)",
                Bucket::Month => ", 1, 7)",
                _ => ", 1, 4)",
            });
        }
        Dialect::Sqlite => {
            let modifiers = |sql: &mut Sql| {
                push_column(sql, entity, key);
                if datetime {
                    sql.push(", ").bind(Arg::Text(format!("{offset_minutes:+} minutes")));
                }
            };
            match bucket {
                Bucket::Week => {
                    sql.push("date(");
                    modifiers(sql);
                    sql.push(", '-6 days', 'weekday 1')");
                }
                Bucket::Quarter => {
                    sql.push("(strftime('%Y', ");
                    modifiers(sql);
                    sql.push(") || '-Q' || ((CAST(strftime('%m', ");
                    modifiers(sql);
                    sql.push(") AS INTEGER) + 2) / 3))");
                }
                _ => {
                    sql.push("strftime(").push(bucket_format(bucket, Dialect::Sqlite)).push(", ");
                    modifiers(sql);
                    sql.push(")");
                }
            }
        }
        Dialect::Postgres => {
            sql.push("to_char(");
            if bucket == Bucket::Week {
                sql.push("date_trunc('week', ");
            }
            if datetime {
                sql.push("(");
                push_column(sql, entity, key);
                sql.push(" AT TIME ZONE 'UTC') + make_interval(mins => CAST(");
                sql.bind_int(i64::from(offset_minutes)).push(" AS INTEGER))");
            } else {
                sql.push("CAST(");
                push_column(sql, entity, key);
                sql.push(" AS TIMESTAMP)");
            }
            if bucket == Bucket::Week {
                sql.push(")");
            }
            sql.push(", ").push(bucket_format(bucket, Dialect::Postgres)).push(")");
        }
    }
}

/// The columns of a measure: one, or for an average its sum and how many had a value.
fn push_measure(sql: &mut Sql, measure: &MeasureOf) {
    let Some(field) = &measure.field else {
        sql.push("COUNT(*)");
        return;
    };
    // PostgreSQL widens a sum of bigints to numeric; the engine reads it as a bigint again.
    match measure.agg {
        Agg::Count => {
            sql.push("COUNT(*)");
        }
        Agg::Sum => {
            sql.push("CAST(SUM(").ident(&field.name).push(") AS BIGINT)");
        }
        Agg::Avg => {
            sql.push("CAST(SUM(").ident(&field.name).push(") AS BIGINT), COUNT(").ident(&field.name).push(")");
        }
        Agg::Min => {
            sql.push("MIN(").ident(&field.name).push(")");
        }
        Agg::Max => {
            sql.push("MAX(").ident(&field.name).push(")");
        }
        Agg::Weighted => {
            sql.push("CAST(SUM(").ident(&field.name).push(" * CASE ");
            if let Some((stage, probabilities)) = &measure.weights {
                sql.ident(&stage.name);
                for (name, probability) in probabilities {
                    sql.push(" WHEN ").bind(Arg::Text(name.clone())).push(" THEN ").bind_int(i64::from(*probability));
                }
            } else {
                sql.push("1");
            }
            sql.push(" ELSE 0 END) AS BIGINT)");
        }
    }
}

pub fn statement(dialect: Dialect, entity: &Entity, aggregate: &Aggregate) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ");
    for key in &aggregate.groups {
        match key.bucket {
            Some(bucket) => push_bucket(&mut sql, entity, key, bucket, aggregate.offset_minutes),
            None => push_column(&mut sql, entity, key),
        }
        sql.push(", ");
    }
    sql.comma_list(&aggregate.measures, |sql, measure| {
        push_measure(sql, measure);
    });
    sql.push(" FROM ").ident(entity.name());
    push_where(&mut sql, aggregate.filter.as_ref(), false);
    // The groups by their places in the select list: at most two.
    let positions = match aggregate.groups.len() {
        0 => None,
        1 => Some("1"),
        _ => Some("1, 2"),
    };
    if let Some(positions) = positions {
        sql.push(" GROUP BY ").push(positions).push(" ORDER BY ");
        let direction = match aggregate.order {
            Order::Keys => None,
            Order::LargestFirst => Some(" DESC, "),
            Order::SmallestFirst => Some(" ASC, "),
        };
        if let (Some(direction), Some(first)) = (direction, aggregate.measures.first()) {
            push_ranked(&mut sql, first);
            sql.push(direction);
        }
        for (i, key) in aggregate.groups.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            if key.stages.is_empty() {
                sql.push(if i == 0 { "1" } else { "2" });
            } else {
                // Stages in their order; one no longer in the set after them.
                sql.push("CASE ");
                push_column(&mut sql, entity, key);
                for (rank, stage) in key.stages.iter().enumerate() {
                    sql.push(" WHEN ").bind(Arg::Text(stage.clone())).push(" THEN ").bind_int(rank as i64);
                }
                sql.push(" ELSE ").bind_int(key.stages.len() as i64).push(" END, ").push(if i == 0 {
                    "1"
                } else {
                    "2"
                });
            }
        }
        sql.push(" LIMIT ").bind_int(i64::from(aggregate.limit));
    }
    sql
}

/// The value a ranking orders the groups by: the measure itself, and for an average the
/// quotient its two columns stand for.
fn push_ranked(sql: &mut Sql, measure: &MeasureOf) {
    match (&measure.field, measure.agg) {
        (Some(field), Agg::Avg) => {
            sql.push("SUM(").ident(&field.name).push(") * 1.0 / NULLIF(COUNT(").ident(&field.name).push("), 0)");
        }
        _ => push_measure(sql, measure),
    }
}

/// Runs a report's aggregate: its groups in the order of their keys.
pub async fn run(db: &Db, entity: &Entity, aggregate: &Aggregate) -> Result<Vec<GroupRow>, StoreError> {
    let rows = statement(db.dialect(), entity, aggregate).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            let mut keys = Vec::with_capacity(aggregate.groups.len());
            for (i, key) in aggregate.groups.iter().enumerate() {
                keys.push(match key.bucket {
                    Some(_) => row.text(i)?.map_or(Value::Null, Value::Text),
                    None => row.value(i, key.field.storage())?,
                });
            }
            let mut at = aggregate.groups.len();
            let mut measures = Vec::with_capacity(aggregate.measures.len());
            for measure in &aggregate.measures {
                let scale = measure.field.as_ref().map_or(0, |f| f.scale());
                let number =
                    |units: Option<i64>| units.map_or(Measured::Empty, |units| Measured::Number { units, scale });
                measures.push(match measure.agg {
                    Agg::Count => Measured::Count(row.int(at)?.unwrap_or(0)),
                    Agg::Sum | Agg::Min | Agg::Max => number(row.int(at)?),
                    Agg::Avg => {
                        at += 1;
                        match (row.int(at - 1)?, row.int(at)?) {
                            (Some(sum), Some(count)) if count > 0 => number(Some(divide_rounded(sum, count))),
                            _ => Measured::Empty,
                        }
                    }
                    Agg::Weighted => number(row.int(at)?.map(|sum| divide_rounded(sum, 100))),
                });
                at += 1;
            }
            Ok(GroupRow { keys, measures })
        })
        .collect()
}

/// For a report whose first group is a stage field of its own entity: the average time the
/// records it counts (the same filter and scope) spent in each stage before they left it, from
/// the stage history. The history's own columns (`id`, `entity`, `field`, `actor`, `at`) may
/// be an entity's column names too, and the filter names columns bare: the records are picked
/// by a subquery over the entity alone, where those names are the entity's, and the history
/// index on `(entity, record_id)` finds each record's moves.
pub fn days_in_stage_statement(dialect: Dialect, entity: &Entity, aggregate: &Aggregate) -> Option<Sql> {
    let stage =
        aggregate.groups.first().filter(|g| g.through.is_none() && g.bucket.is_none() && !g.stages.is_empty())?;
    let mut sql = Sql::new(dialect);
    sql.push(
        "SELECT from_stage, CAST(SUM(seconds_in_previous) AS BIGINT), COUNT(*) FROM crm_stage_history WHERE entity = ",
    );
    sql.bind(Arg::Text(entity.name().to_string())).push(" AND field = ").bind(Arg::Text(stage.field.name.to_string()));
    sql.push(" AND seconds_in_previous IS NOT NULL AND record_id IN (SELECT \"id\" FROM ").ident(entity.name());
    push_where(&mut sql, aggregate.filter.as_ref(), false);
    sql.push(") GROUP BY from_stage");
    Some(sql)
}

/// Runs a [`days_in_stage_statement`]: a group per stage left, its key the stage and its
/// measure the average days in it, to a tenth of a day.
pub async fn days_in_stage(db: &Db, statement: Sql) -> Result<Vec<GroupRow>, StoreError> {
    const SECONDS_PER_TENTH_OF_A_DAY: i64 = 8_640;
    let rows = statement.fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            let stage = row.text(0)?.map_or(Value::Null, Value::Text);
            let days = match (row.int(1)?, row.int(2)?) {
                (Some(seconds), Some(moves)) if moves > 0 => {
                    Measured::Number { units: divide_rounded(seconds, moves * SECONDS_PER_TENTH_OF_A_DAY), scale: 1 }
                }
                _ => Measured::Empty,
            };
            Ok(GroupRow { keys: vec![stage], measures: vec![days] })
        })
        .collect()
}

/// `n / d` rounded half away from zero: exact amounts stay exact to the unit.
fn divide_rounded(n: i64, d: i64) -> i64 {
    let (q, r) = (n / d, n % d);
    if 2 * r.abs() >= d.abs() { q + n.signum() * d.signum() } else { q }
}

#[cfg(test)]
mod tests {
    use super::divide_rounded;

    #[test]
    fn division_rounds_half_away_from_zero() {
        assert_eq!(divide_rounded(250, 100), 3);
        assert_eq!(divide_rounded(249, 100), 2);
        assert_eq!(divide_rounded(-250, 100), -3);
        assert_eq!(divide_rounded(10, 3), 3);
        assert_eq!(divide_rounded(11, 2), 6);
    }
}
