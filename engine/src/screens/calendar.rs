//! The calendar of activities (行动日历, A-1): a month, a week or a day of the viewer's
//! activities — or their team's, as far as their read scope reaches — by due day (and hour,
//! in a week or a day) on their own clock, each day or hour with a link to plan a new
//! activity there, and activities dragged to another day or hour rescheduled through the
//! record form's save (the same path as the kanban's moves).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeDelta, Timelike};
use crm_model::{Action, USER_ENTITY};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{Viewer, encode, html, view};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::ApiQuery;
use crate::records::{self, ListParams, MAX_LIMIT};

pub(super) const ACTIVITY: &str = "activity";

#[derive(Deserialize)]
pub struct CalendarQuery {
    /// `month` (the default), `week` or `day`.
    #[serde(default)]
    view: String,
    /// A day of the period shown, `2026-12-09`; today on the viewer's clock when absent.
    date: Option<String>,
    /// `2026-12`: a month, as older links give it.
    month: Option<String>,
    /// `team` for everyone's activities the viewer reads; their own otherwise.
    #[serde(default)]
    who: String,
}

/// How much of the calendar a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Span {
    Month,
    Week,
    Day,
}

impl Span {
    fn parse(text: &str) -> Self {
        match text {
            "week" => Span::Week,
            "day" => Span::Day,
            _ => Span::Month,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Span::Month => "month",
            Span::Week => "week",
            Span::Day => "day",
        }
    }

    /// The first day of the period holding `day`, and the first day after it.
    fn period(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Span::Month => {
                let first = day.with_day(1).expect("every month has a first");
                (first, first + Months::new(1))
            }
            Span::Week => {
                let monday = day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()));
                (monday, monday + TimeDelta::days(7))
            }
            Span::Day => (day, day + TimeDelta::days(1)),
        }
    }

    /// A day of the period before.
    fn previous(self, first: NaiveDate) -> NaiveDate {
        match self {
            Span::Month => first - Months::new(1),
            Span::Week => first - TimeDelta::days(7),
            Span::Day => first - TimeDelta::days(1),
        }
    }
}

/// The hours a week or a day shows, one row each: the working day, widened to the earliest
/// and latest activity.
const FIRST_HOUR: u32 = 8;
const LAST_HOUR: u32 = 19;

/// `GET /calendar?view=&date=&who=`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    viewer.principal.entity(&catalog, ACTIVITY, Action::Read)?;
    let today = super::today(&app, &viewer);
    let span = Span::parse(&q.view);
    let month = q.month.as_deref().and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
    let anchor = q.date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).or(month);
    let (first, next) = span.period(anchor.unwrap_or(today));
    // A month shows whole weeks, Monday first.
    let (start, end) = match span {
        Span::Month => {
            let last = next - TimeDelta::days(1);
            (
                first - TimeDelta::days(i64::from(first.weekday().num_days_from_monday())),
                last + TimeDelta::days(i64::from(7 - last.weekday().num_days_from_monday())),
            )
        }
        Span::Week | Span::Day => (first, next),
    };
    let moment = |day: NaiveDate| {
        day.and_time(NaiveTime::MIN).and_local_timezone(viewer.offset).single().map(|t| t.to_utc().to_rfc3339())
    };
    let team = q.who == "team";
    let mut conditions = vec![
        json!({"field": "due_at", "op": "gte", "value": moment(start)}),
        json!({"field": "due_at", "op": "lt", "value": moment(end)}),
    ];
    if !team {
        conditions.push(json!({"field": "owner", "op": "eq", "value": viewer.principal.user_id}));
    }
    let params = ListParams {
        filter: Some(json!({"and": conditions}).to_string()),
        sort: Some("due_at".into()),
        limit: Some(MAX_LIMIT),
        ..ListParams::default()
    };
    let listed = records::list(&app, &viewer.principal, ACTIVITY, &params).await?;
    let more = listed.next_cursor.is_some();
    let activities = view::records_of(&listed)?;
    let owners: HashSet<Uuid> =
        activities.iter().filter_map(|a| a["owner"].as_str().and_then(|o| Uuid::parse_str(o).ok())).collect();
    let names = view::titles(&app, &viewer.principal, HashMap::from([(USER_ENTITY.to_owned(), owners)])).await?;
    // Each activity in its day and hour on the viewer's clock.
    let mut slots: BTreeMap<(NaiveDate, u32), Vec<Json>> = BTreeMap::new();
    for activity in &activities {
        let Some(due) = activity["due_at"].as_str().and_then(|d| DateTime::parse_from_rfc3339(d).ok()) else {
            continue;
        };
        let local = due.with_timezone(&viewer.offset);
        let owner = activity["owner"].as_str().and_then(|o| Uuid::parse_str(o).ok()).and_then(|o| names.get(&o));
        let id = activity["id"].as_str().unwrap_or_default();
        slots.entry((local.date_naive(), local.hour())).or_default().push(json!({
            "id": id,
            "href": format!("/e/{ACTIVITY}/{id}"),
            "name": activity["name"],
            "time": local.format("%H:%M").to_string(),
            "version": activity["version"],
            "done": activity["status"] == "done",
            "owner": if team { owner.cloned() } else { None },
        }));
    }
    let who = if team { "&who=team" } else { "" };
    let link = |span: Span, day: NaiveDate| format!("/calendar?view={}&date={day}{who}", span.name());
    let here = link(span, first);
    let creates = viewer.principal.access.allows(ACTIVITY, Action::Create);
    // A new activity on a day, at an hour on the viewer's clock.
    let new_href = |date: NaiveDate, hour: u32| {
        let at = date.and_hms_opt(hour, 0, 0).and_then(|t| t.and_local_timezone(viewer.offset).single());
        at.filter(|_| creates)
            .map(|t| format!("/e/{ACTIVITY}/new?due_at={}&back={}", encode(&t.to_rfc3339()), encode(&here)))
    };
    let day_json = |date: NaiveDate, items: Vec<Json>, hour: Option<u32>| {
        json!({
            "date": date.to_string(),
            "day": date.day(),
            "hour": hour.map(|h| format!("{h:02}")),
            "in_month": span != Span::Month || date.month() == first.month(),
            "today": date == today,
            "items": items,
            "new_href": new_href(date, hour.unwrap_or(9)),
            "day_href": link(Span::Day, date),
        })
    };
    let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d < end).collect();
    let weekday = |date: NaiveDate| viewer.text(&format!("calendar.weekday_{}", date.weekday().num_days_from_monday()));
    let (rows, heads): (Vec<Json>, Vec<Json>) = match span {
        Span::Month => {
            let rows = days
                .chunks(7)
                .map(|week| {
                    let cells = week.iter().map(|d| {
                        let items = slots.range((*d, 0)..=(*d, 23)).flat_map(|(_, items)| items.clone()).collect();
                        day_json(*d, items, None)
                    });
                    json!({"cells": cells.collect::<Vec<_>>()})
                })
                .collect();
            (rows, (0..7).map(|i| json!({"label": viewer.text(&format!("calendar.weekday_{i}"))})).collect())
        }
        Span::Week | Span::Day => {
            let hours = slots.keys().map(|(_, h)| *h);
            let (low, high) = hours.fold((FIRST_HOUR, LAST_HOUR), |(l, h), x| (l.min(x), h.max(x)));
            let rows = (low..=high)
                .map(|hour| {
                    let cells = days
                        .iter()
                        .map(|d| day_json(*d, slots.get(&(*d, hour)).cloned().unwrap_or_default(), Some(hour)));
                    json!({"hour": format!("{hour:02}:00"), "cells": cells.collect::<Vec<_>>()})
                })
                .collect();
            let heads = days
                .iter()
                .map(|d| {
                    json!({"label": format!("{} {}/{}", weekday(*d), d.month(), d.day()), "href": link(Span::Day, *d), "today": *d == today})
                })
                .collect();
            (rows, heads)
        }
    };
    let date_text = |d: NaiveDate| {
        let args = [("year", d.year().to_string()), ("month", d.month().to_string()), ("day", d.day().to_string())];
        super::shell::text(viewer.locale, "calendar.date", &args)
    };
    let heading = match span {
        Span::Month => super::shell::text(
            viewer.locale,
            "calendar.month",
            &[("year", first.year().to_string()), ("month", first.month().to_string())],
        ),
        Span::Week => format!("{} – {}", date_text(first), date_text(next - TimeDelta::days(1))),
        Span::Day => format!("{} {}", date_text(first), weekday(first)),
    };
    let title = viewer.text("calendar.title");
    let spans = [Span::Month, Span::Week, Span::Day].map(|s| {
        json!({"name": s.name(), "label": viewer.text(&format!("calendar.view_{}", s.name())), "href": link(s, anchor.unwrap_or(today)), "on": s == span})
    });
    let values = json!({
        "heading": heading,
        "span": span.name(),
        "spans": spans,
        "heads": heads,
        "rows": rows,
        "previous": link(span, span.previous(first)),
        "next": link(span, next),
        "current": link(span, today),
        "previous_label": viewer.text(&format!("calendar.previous_{}", span.name())),
        "next_label": viewer.text(&format!("calendar.next_{}", span.name())),
        "current_label": viewer.text(&format!("calendar.current_{}", span.name())),
        "mine_href": link(span, first),
        "team_href": format!("{}&who=team", link(span, first).replace("&who=team", "")),
        "team": team,
        "more": more,
        "here": here,
        "movable": viewer.principal.access.allows(ACTIVITY, Action::Edit),
    });
    html("calendar.html", viewer.page(&catalog, Some("calendar"), &title, values))
}
