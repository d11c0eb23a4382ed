//! Reports as metadata: the records of an entity matching a filter tree (the one lists use),
//! grouped by up to two keys (a field, a field of the record a lookup points at, or a date
//! bucketed by day, week, month, quarter or year) and measured (count, sum, average,
//! minimum, maximum, or a sum weighted by the stage's probability). [`compile`] turns a
//! document into an [`Aggregate`] the store runs as one `GROUP BY`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, FixedOffset, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::catalog::{Catalog, Entity};
use crate::filter::{Filter, QueryError};
use crate::ident::Ident;
use crate::meta::{FieldDef, Labels};
use crate::period::{self, Period};
use crate::types::{FieldType, Storage};
use crate::value::{self, Value};

/// Most groups a report returns.
pub const MAX_ROWS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDoc {
    pub name: Ident,
    pub label: Labels,
    pub entity: Ident,
    /// A filter tree as a list's `filter` parameter takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    /// Only the records whose date falls in a period relative to the user's today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodOf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<GroupBy>,
    pub measures: Vec<Measure>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub order: Order,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default)]
    pub chart: Chart,
    /// The roles the report is shared with; administrators see every report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Ident>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl ReportDoc {
    /// The same report over the period before its own, for a figure's change; none when the
    /// report has no period to move.
    pub fn previous_period(&self) -> Option<ReportDoc> {
        let period = self.period.as_ref().filter(|p| p.range.has_previous())?;
        let mut previous = self.clone();
        previous.period = Some(PeriodOf { field: period.field.clone(), range: period.range.previous() });
        Some(previous)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodOf {
    /// A date or date-time field of the report's entity.
    pub field: Ident,
    pub range: Period,
}

/// How the groups are ordered: by their keys, or by the first measure for a ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Keys,
    LargestFirst,
    SmallestFirst,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBy {
    pub field: Ident,
    /// A lookup field of the report's entity: `field` is then a field of the record it
    /// points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<Ident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Bucket {
    /// The days a bucket's key stands for, as the store writes keys: `2026-11-30` (a day, or
    /// the Monday of a week), `2026-11`, `2026-Q4`, `2026`. The first day and the day after
    /// the last.
    pub fn days(self, key: &str) -> Option<(NaiveDate, NaiveDate)> {
        let first = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        match self {
            Bucket::Day => first(key).map(|d| (d, d + Duration::days(1))),
            Bucket::Week => first(key).map(|d| (d, d + Duration::days(7))),
            Bucket::Month => first(&format!("{key}-01")).map(|d| (d, d + Months::new(1))),
            Bucket::Quarter => {
                let (year, quarter) = key.split_once("-Q")?;
                let quarter: u32 = quarter.parse().ok().filter(|q| (1..=4).contains(q))?;
                let d = NaiveDate::from_ymd_opt(year.parse().ok()?, quarter * 3 - 2, 1)?;
                Some((d, d + Months::new(3)))
            }
            Bucket::Year => {
                let d = NaiveDate::from_ymd_opt(key.parse().ok()?, 1, 1)?;
                Some((d, d + Months::new(12)))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub agg: Agg,
    /// The number or money field measured; none for a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Ident>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// The sum of the field times the probability of each record's stage.
    Weighted,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    #[default]
    Table,
    Bar,
    StackedBar,
    Line,
    Pie,
    Donut,
    Funnel,
    Number,
}

/// A group key as the store computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupKey {
    /// The field whose value is the key.
    pub field: FieldDef,
    /// The lookup of the report's entity the field is read through, and its entity.
    pub through: Option<(FieldDef, Ident)>,
    pub bucket: Option<Bucket>,
    /// For a stage: its stages in their order, which is the groups' order (a funnel reads
    /// from the first stage down, not alphabetically).
    pub stages: Vec<String>,
}

/// A measure as the store computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOf {
    pub agg: Agg,
    pub field: Option<FieldDef>,
    /// For a weighted sum: the stage field and each stage's probability in percent.
    pub weights: Option<(FieldDef, Vec<(String, u8)>)>,
}

/// A report ready to run: what the store's `GROUP BY` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub groups: Vec<GroupKey>,
    pub measures: Vec<MeasureOf>,
    pub filter: Option<Filter>,
    pub order: Order,
    pub limit: u32,
    /// The user's offset from UTC in minutes: date buckets of date-times are local days.
    pub offset_minutes: i32,
}

/// The filter tree of the records behind one row of a report — its filter, its period and
/// the row's keys — for the list a user drills into (the list adds the user's scope, as it
/// always does). None when a group is read through a lookup: a list filters on the entity's
/// own columns.
pub fn drill(
    doc: &ReportDoc,
    entity: &Entity,
    groups: &[GroupKey],
    keys: &[Value],
    now: DateTime<FixedOffset>,
) -> Option<Json> {
    let mut conditions: Vec<Json> = doc.filter.iter().cloned().collect();
    if let Some(period) = &doc.period {
        let field = entity.field(period.field.as_str())?;
        conditions.push(period.range.condition(field, now.date_naive(), *now.offset()));
    }
    for (group, key) in groups.iter().zip(keys) {
        if group.through.is_some() {
            return None;
        }
        let name = group.field.name.as_str();
        conditions.push(match (group.bucket, key) {
            (_, Value::Null) => json!({"field": name, "op": "is_null", "value": true}),
            (Some(bucket), Value::Text(text)) => {
                let (from, until) = bucket.days(text)?;
                period::days_condition(&group.field, from, until, *now.offset())
            }
            (Some(_), _) => return None,
            (None, key) => json!({"field": name, "op": "eq", "value": value::to_json(&group.field, key)}),
        });
    }
    Some(match conditions.len() {
        1 => conditions.remove(0),
        _ => json!({ "and": conditions }),
    })
}

/// The stages of a stage field in the order of its stage sets, each once.
fn stage_order(catalog: &Catalog, field: &FieldDef) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for set in catalog.stage_sets_of(field) {
        for stage in &set.stages {
            if !names.iter().any(|n| n == stage.name.as_str()) {
                names.push(stage.name.to_string());
            }
        }
    }
    names
}

/// Checks a report against the catalog and the fields hidden from the caller (per entity)
/// and makes it ready to run; `scope` is the caller's read scope, and-ed with its filter;
/// `now` is the user's local time, which places its period and its date buckets.
pub fn compile(
    catalog: &Catalog,
    doc: &ReportDoc,
    hidden: &dyn Fn(&str) -> HashSet<Ident>,
    scope: Option<Filter>,
    now: DateTime<FixedOffset>,
) -> Result<Aggregate, QueryError> {
    let invalid = |path: String, message: String| QueryError { path, message };
    let entity = catalog
        .entity(doc.entity.as_str())
        .ok_or_else(|| invalid("/entity".into(), format!("no entity `{}`", doc.entity)))?;
    let own_hidden = hidden(entity.name().as_str());
    let visible = |entity: &crate::Entity, name: &Ident, hidden: &HashSet<Ident>, path: String| match entity
        .column(name.as_str())
    {
        Some(field) if !hidden.contains(name) => Ok(field.clone()),
        _ => Err(invalid(path, format!("no field `{name}` on `{}`", entity.name()))),
    };
    if doc.group_by.len() > 2 {
        return Err(invalid("/group_by".into(), "a report groups by at most two keys".into()));
    }
    if doc.measures.is_empty() {
        return Err(invalid("/measures".into(), "a report measures at least one thing".into()));
    }
    let mut groups = Vec::new();
    for (i, group) in doc.group_by.iter().enumerate() {
        let path = format!("/group_by/{i}");
        let (field, through) = match &group.through {
            None => (visible(entity, &group.field, &own_hidden, format!("{path}/field"))?, None),
            Some(lookup) => {
                let lookup = visible(entity, lookup, &own_hidden, format!("{path}/through"))?;
                let target = lookup
                    .reference_target()
                    .and_then(|t| catalog.entity(t))
                    .ok_or_else(|| invalid(format!("{path}/through"), format!("`{}` is not a lookup", lookup.name)))?;
                let field = visible(target, &group.field, &hidden(target.name().as_str()), format!("{path}/field"))?;
                (field, Some((lookup, target.name().clone())))
            }
        };
        let dated = matches!(field.storage(), Storage::Date | Storage::Datetime);
        if group.bucket.is_some() != dated {
            let message = if dated { "a date is grouped by a bucket" } else { "only a date is grouped by a bucket" };
            return Err(invalid(format!("{path}/bucket"), format!("`{}`: {message}", field.name)));
        }
        if field.storage() == Storage::List {
            return Err(invalid(path, format!("`{}`: a multi select cannot be a group", field.name)));
        }
        let stages = if field.field_type == FieldType::Stage { stage_order(catalog, &field) } else { Vec::new() };
        groups.push(GroupKey { field, through, bucket: group.bucket, stages });
    }
    let mut measures = Vec::new();
    for (i, measure) in doc.measures.iter().enumerate() {
        let path = format!("/measures/{i}");
        let field = match (&measure.field, measure.agg) {
            (None, Agg::Count) => None,
            (Some(name), agg) if agg != Agg::Count => {
                let field = visible(entity, name, &own_hidden, format!("{path}/field"))?;
                if !matches!(field.storage(), Storage::Integer | Storage::Fixed(_)) {
                    return Err(invalid(format!("{path}/field"), format!("`{name}` is not a number")));
                }
                Some(field)
            }
            _ => return Err(invalid(path, "a count takes no field; every other measure takes one".into())),
        };
        let weights = if measure.agg == Agg::Weighted {
            let stage = entity
                .live_fields()
                .find(|f| f.field_type == FieldType::Stage && !own_hidden.contains(&f.name))
                .ok_or_else(|| invalid(path.clone(), format!("`{}` has no stage to weigh by", entity.name())))?;
            let probabilities = stage_order(catalog, stage)
                .into_iter()
                .filter_map(|name| {
                    let stage = catalog
                        .stage_sets_of(stage)
                        .into_iter()
                        .flat_map(|s| &s.stages)
                        .find(|s| s.name.as_str() == name)?;
                    Some((name, stage.probability))
                })
                .collect();
            Some((stage.clone(), probabilities))
        } else {
            None
        };
        measures.push(MeasureOf { agg: measure.agg, field, weights });
    }
    let period = match &doc.period {
        None => None,
        Some(period) => {
            let field = visible(entity, &period.field, &own_hidden, "/period/field".into())?;
            if !matches!(field.storage(), Storage::Date | Storage::Datetime) {
                return Err(invalid("/period/field".into(), format!("`{}` is not a date", field.name)));
            }
            let condition = period.range.condition(&field, now.date_naive(), *now.offset());
            Some(Filter::parse(catalog, entity, &condition, &own_hidden)?)
        }
    };
    let filter = doc.filter.as_ref().map(|json| Filter::parse(catalog, entity, json, &own_hidden)).transpose()?;
    let filter = [scope, period, filter].into_iter().flatten().reduce(Filter::and);
    let limit = doc.limit.unwrap_or(MAX_ROWS).clamp(1, MAX_ROWS);
    let offset_minutes = now.offset().local_minus_utc() / 60;
    Ok(Aggregate { groups, measures, filter, order: doc.order, limit, offset_minutes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_key_stands_for_its_days() {
        let days = |bucket: Bucket, key: &str| bucket.days(key).map(|(a, b)| (a.to_string(), b.to_string()));
        let range = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(days(Bucket::Day, "2026-11-30"), range("2026-11-30", "2026-12-01"));
        assert_eq!(days(Bucket::Week, "2026-11-30"), range("2026-11-30", "2026-12-07"));
        assert_eq!(days(Bucket::Month, "2026-12"), range("2026-12-01", "2027-01-01"));
        assert_eq!(days(Bucket::Quarter, "2026-Q4"), range("2026-10-01", "2027-01-01"));
        assert_eq!(days(Bucket::Year, "2026"), range("2026-01-01", "2027-01-01"));
        assert_eq!(days(Bucket::Quarter, "2026-Q5"), None);
        assert_eq!(days(Bucket::Month, "late"), None);
    }
}
