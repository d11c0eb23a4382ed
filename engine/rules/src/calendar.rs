//! Working time: the moment a number of working hours after a start, under a calendar of
//! working days and daily hours. Service levels count their response and resolution targets
//! this way ("4 working hours" from a request logged on Friday evening ends on Monday).

use chrono::{DateTime, Datelike, FixedOffset, NaiveTime, TimeDelta, Weekday};

/// When work is done: the working days, each day's hours, in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub offset: FixedOffset,
}

/// How far ahead a target may reach: a year and a half of days without a working minute
/// means the calendar has none.
const MAX_DAYS: usize = 550;

impl Calendar {
    /// Reads `#{ days: ["mon", ...], start: "09:00", end: "18:00" }`; the time zone is China's
    /// unless `utc_offset_minutes` says otherwise.
    pub fn parse(days: &[String], start: &str, end: &str, offset_minutes: Option<i64>) -> Result<Calendar, String> {
        let time = |text: &str| {
            NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| format!("`{text}` is not a time like 09:00"))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(format!("the working day ends ({end}) before it starts ({start})"));
        }
        let days = days
            .iter()
            .map(|d| d.trim().parse::<Weekday>().map_err(|_| format!("`{d}` is not a day like mon")))
            .collect::<Result<Vec<_>, _>>()?;
        if days.is_empty() {
            return Err("a calendar needs at least one working day".into());
        }
        let seconds = i32::try_from(offset_minutes.unwrap_or(8 * 60) * 60).map_err(|_| "time zone out of range")?;
        let offset = FixedOffset::east_opt(seconds).ok_or("time zone out of range")?;
        Ok(Calendar { days, start, end, offset })
    }

    /// The moment `minutes` working minutes after `from`.
    pub fn after(&self, from: DateTime<FixedOffset>, minutes: i64) -> Result<DateTime<FixedOffset>, String> {
        let mut at = from.with_timezone(&self.offset);
        let mut left = TimeDelta::minutes(minutes.max(0));
        for _ in 0..MAX_DAYS {
            let day = at.date_naive();
            if self.days.contains(&day.weekday()) {
                let local = |time: NaiveTime| day.and_time(time).and_local_timezone(self.offset).single();
                let (opens, closes) =
                    (local(self.start).ok_or("no such time")?, local(self.end).ok_or("no such time")?);
                at = at.max(opens);
                if at < closes {
                    let open = closes - at;
                    if left <= open {
                        return Ok(at + left);
                    }
                    left -= open;
                }
            }
            let next = day.succ_opt().ok_or("past the last date")?;
            at = next.and_time(NaiveTime::MIN).and_local_timezone(self.offset).single().ok_or("no such time")?;
        }
        Err(format!("no working time within {MAX_DAYS} days"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays() -> Calendar {
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec();
        Calendar::parse(&days, "09:00", "18:00", None).unwrap()
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn counts_only_working_hours() {
        let calendar = weekdays();
        // Within the day.
        assert_eq!(calendar.after(at("2026-12-01T10:00:00+08:00"), 120).unwrap(), at("2026-12-01T12:00:00+08:00"));
        // Before opening: the clock starts at nine.
        assert_eq!(calendar.after(at("2026-12-01T07:30:00+08:00"), 60).unwrap(), at("2026-12-01T10:00:00+08:00"));
        // Friday 17:00 + 4 h: one hour on Friday, three on Monday.
        assert_eq!(calendar.after(at("2026-12-04T17:00:00+08:00"), 240).unwrap(), at("2026-12-07T12:00:00+08:00"));
        // Saturday, given in UTC: Monday's first hours.
        assert_eq!(calendar.after(at("2026-12-05T02:00:00Z"), 30).unwrap(), at("2026-12-07T09:30:00+08:00"));
        // Exactly a working day ends at closing time, not the next morning.
        assert_eq!(calendar.after(at("2026-12-01T09:00:00+08:00"), 540).unwrap(), at("2026-12-01T18:00:00+08:00"));
    }

    #[test]
    fn refuses_a_calendar_without_working_time() {
        assert!(Calendar::parse(&[], "09:00", "18:00", None).is_err());
        assert!(Calendar::parse(&["mon".into()], "18:00", "09:00", None).is_err());
        assert!(Calendar::parse(&["funday".into()], "09:00", "18:00", None).is_err());
        assert!(Calendar::parse(&["mon".into()], "9点", "18:00", None).is_err());
    }
}
