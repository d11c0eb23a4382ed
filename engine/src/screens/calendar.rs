//! The calendar of activities (行动日历, A-1): a month of the viewer's activities — or their
//! team's, as far as their read scope reaches — by due day on their own clock, each day with
//! a link to plan a new activity on it, and activities dragged to another day rescheduled
//! through the record form's save (the same path as the kanban's moves).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeDelta};
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
    /// `2026-12`; the viewer's current month when absent.
    month: Option<String>,
    /// `team` for everyone's activities the viewer reads; their own otherwise.
    #[serde(default)]
    who: String,
}

/// `GET /calendar`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    viewer.principal.entity(&catalog, ACTIVITY, Action::Read)?;
    let today = super::today(&app, &viewer);
    let first = q
        .month
        .as_deref()
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .unwrap_or_else(|| today.with_day(1).expect("every month has a first"));
    let next = first + Months::new(1);
    // Whole weeks, Monday first.
    let start = first - TimeDelta::days(i64::from(first.weekday().num_days_from_monday()));
    let last = next - TimeDelta::days(1);
    let end = last + TimeDelta::days(i64::from(7 - last.weekday().num_days_from_monday()));
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
    let mut by_day: BTreeMap<NaiveDate, Vec<Json>> = BTreeMap::new();
    for activity in &activities {
        let Some(due) = activity["due_at"].as_str().and_then(|d| DateTime::parse_from_rfc3339(d).ok()) else {
            continue;
        };
        let local = due.with_timezone(&viewer.offset);
        let owner = activity["owner"].as_str().and_then(|o| Uuid::parse_str(o).ok()).and_then(|o| names.get(&o));
        let id = activity["id"].as_str().unwrap_or_default();
        by_day.entry(local.date_naive()).or_default().push(json!({
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
    let here = format!("/calendar?month={}{who}", first.format("%Y-%m"));
    let creates = viewer.principal.access.allows(ACTIVITY, Action::Create);
    let mut weeks = Vec::new();
    let mut day = start;
    while day < end {
        let week: Vec<Json> = (0..7)
            .map(|i| {
                let date = day + TimeDelta::days(i);
                // A new activity on that day, at nine on the viewer's clock.
                let nine = date.and_hms_opt(9, 0, 0).and_then(|t| t.and_local_timezone(viewer.offset).single());
                let new_href = nine
                    .filter(|_| creates)
                    .map(|t| format!("/e/{ACTIVITY}/new?due_at={}&back={}", encode(&t.to_rfc3339()), encode(&here)));
                json!({
                    "date": date.to_string(),
                    "day": date.day(),
                    "in_month": date.month() == first.month(),
                    "today": date == today,
                    "items": by_day.get(&date).cloned().unwrap_or_default(),
                    "new_href": new_href,
                })
            })
            .collect();
        weeks.push(week);
        day += TimeDelta::days(7);
    }
    let month_href = |month: NaiveDate| format!("/calendar?month={}{who}", month.format("%Y-%m"));
    let title = viewer.text("calendar.title");
    let values = json!({
        "month": super::shell::text(viewer.locale, "calendar.month", &[("year", first.year().to_string()), ("month", first.month().to_string())]),
        "weeks": weeks,
        "weekdays": (0..7).map(|i| viewer.text(&format!("calendar.weekday_{i}"))).collect::<Vec<_>>(),
        "previous": month_href(first - Months::new(1)),
        "next": month_href(next),
        "current": format!("/calendar{}", if team { "?who=team" } else { "" }),
        "mine_href": format!("/calendar?month={}", first.format("%Y-%m")),
        "team_href": format!("/calendar?month={}&who=team", first.format("%Y-%m")),
        "team": team,
        "more": more,
        "here": here,
        "movable": viewer.principal.access.allows(ACTIVITY, Action::Edit),
    });
    html("calendar.html", viewer.page(&catalog, Some("calendar"), &title, values))
}
