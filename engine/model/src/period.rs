//! Periods relative to today — today, this week, last month, this quarter... — as reports and
//! dashboards name them. A period becomes two plain conditions of the filter tree (`gte` its
//! first day, `lt` the day after its last), so it is scoped, checked and indexed like any
//! other condition; a date-time field is compared at the user's local midnight.

use chrono::{Datelike, Duration, FixedOffset, Months, NaiveDate, SecondsFormat};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::meta::FieldDef;
use crate::types::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Today,
    Yesterday,
    ThisWeek,
    LastWeek,
    ThisMonth,
    LastMonth,
    NextMonth,
    ThisQuarter,
    LastQuarter,
    NextQuarter,
    ThisYear,
    LastYear,
}

impl Period {
    pub const ALL: [Period; 12] = [
        Period::Today,
        Period::Yesterday,
        Period::ThisWeek,
        Period::LastWeek,
        Period::ThisMonth,
        Period::LastMonth,
        Period::NextMonth,
        Period::ThisQuarter,
        Period::LastQuarter,
        Period::NextQuarter,
        Period::ThisYear,
        Period::LastYear,
    ];

    /// The first day of the period and the first day after it, for a user whose today is
    /// `today`; weeks start on Monday.
    pub fn range(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let month = |d: NaiveDate| d.with_day(1).expect("day 1 exists");
        let quarter = |d: NaiveDate| {
            NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).expect("a quarter's first day exists")
        };
        let year = |d: NaiveDate| NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("1 January exists");
        let week = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let add = |d: NaiveDate, months: u32| d + Months::new(months);
        let sub = |d: NaiveDate, months: u32| d - Months::new(months);
        match self {
            Period::Today => (today, today + Duration::days(1)),
            Period::Yesterday => (today - Duration::days(1), today),
            Period::ThisWeek => (week, week + Duration::days(7)),
            Period::LastWeek => (week - Duration::days(7), week),
            Period::ThisMonth => (month(today), add(month(today), 1)),
            Period::LastMonth => (sub(month(today), 1), month(today)),
            Period::NextMonth => (add(month(today), 1), add(month(today), 2)),
            Period::ThisQuarter => (quarter(today), add(quarter(today), 3)),
            Period::LastQuarter => (sub(quarter(today), 3), quarter(today)),
            Period::NextQuarter => (add(quarter(today), 3), add(quarter(today), 6)),
            Period::ThisYear => (year(today), add(year(today), 12)),
            Period::LastYear => (sub(year(today), 12), year(today)),
        }
    }

    /// The period a figure of this one is compared with: the one just before it.
    pub fn previous(self) -> Period {
        match self {
            Period::Today => Period::Yesterday,
            Period::ThisWeek | Period::LastWeek => Period::LastWeek,
            Period::ThisMonth | Period::NextMonth => Period::LastMonth,
            Period::ThisQuarter | Period::NextQuarter => Period::LastQuarter,
            Period::ThisYear => Period::LastYear,
            other => other,
        }
    }

    /// Whether [`previous`](Self::previous) is a different period, so a change can be shown.
    pub fn has_previous(self) -> bool {
        self.previous() != self
    }

    /// The filter-tree node for `field` in this period: a date compares with dates, a
    /// date-time with the user's local midnights.
    pub fn condition(self, field: &FieldDef, today: NaiveDate, offset: FixedOffset) -> Json {
        let (from, until) = self.range(today);
        days_condition(field, from, until, offset)
    }
}

/// The filter-tree node for `field` from the day `from` up to, not including, `until`; a
/// date-time is compared at local midnights of `offset`.
pub fn days_condition(field: &FieldDef, from: NaiveDate, until: NaiveDate, offset: FixedOffset) -> Json {
    let bound = |day: NaiveDate| match field.storage() {
        Storage::Datetime => {
            let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
            let local = midnight.and_local_timezone(offset).single().expect("a fixed offset is unambiguous");
            json!(local.to_rfc3339_opts(SecondsFormat::Secs, false))
        }
        _ => json!(day.format("%Y-%m-%d").to_string()),
    };
    json!({"and": [
        {"field": field.name, "op": "gte", "value": bound(from)},
        {"field": field.name, "op": "lt", "value": bound(until)},
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_are_half_open_ranges_around_today() {
        let today = day("2026-12-01"); // a Tuesday
        let range = |p: Period| {
            let (a, b) = p.range(today);
            (a.to_string(), b.to_string())
        };
        assert_eq!(range(Period::Today), ("2026-12-01".into(), "2026-12-02".into()));
        assert_eq!(range(Period::Yesterday), ("2026-11-30".into(), "2026-12-01".into()));
        assert_eq!(range(Period::ThisWeek), ("2026-11-30".into(), "2026-12-07".into()));
        assert_eq!(range(Period::LastWeek), ("2026-11-23".into(), "2026-11-30".into()));
        assert_eq!(range(Period::ThisMonth), ("2026-12-01".into(), "2027-01-01".into()));
        assert_eq!(range(Period::LastMonth), ("2026-11-01".into(), "2026-12-01".into()));
        assert_eq!(range(Period::NextMonth), ("2027-01-01".into(), "2027-02-01".into()));
        assert_eq!(range(Period::ThisQuarter), ("2026-10-01".into(), "2027-01-01".into()));
        assert_eq!(range(Period::LastQuarter), ("2026-07-01".into(), "2026-10-01".into()));
        assert_eq!(range(Period::ThisYear), ("2026-01-01".into(), "2027-01-01".into()));
        assert_eq!(range(Period::LastYear), ("2025-01-01".into(), "2026-01-01".into()));
        assert_eq!(Period::ThisQuarter.previous(), Period::LastQuarter);
        assert!(!Period::Yesterday.has_previous());
    }
}
