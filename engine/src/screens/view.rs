//! How values look on the screens: a display text (and link) per kind of display, the titles of
//! referenced records, and the conversions between form inputs and API values.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _};
use crm_model::filter::{Cond, Op};
use crm_model::types::{Display, Widget};
use crm_model::{Action, Catalog, FieldDef, Filter, ListQuery, USER_ENTITY, Value};
use crm_store::records as store;
use serde::Serialize;
use serde_json::Value as Json;
use uuid::Uuid;

use super::Viewer;
use crate::access::Principal;
use crate::app::App;
use crate::error::ApiResult;
use crate::records::{self, ListParams};

/// One value as shown: its text, and where it links to.
#[derive(Debug, Serialize)]
pub struct Cell {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Links that leave the product open in a new tab, without giving it a handle back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// How the cell is aligned and styled: `text`, `number`, `long`.
    pub kind: &'static str,
    /// A due time's state, `deadline-overdue` or `deadline-due-soon`, with its words for the
    /// reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Cell {
    fn text(text: String) -> Self {
        Cell { text, href: None, external: false, kind: "text", tone: None, note: None }
    }
}

/// A field of a record as shown: its value, and for a due time not yet met whether it has
/// passed or is near.
pub fn field_cell(app: &App, field: &FieldDef, record: &Json, viewer: &Viewer, titles: &Titles) -> Cell {
    let value = record.get(field.name.as_str()).unwrap_or(&Json::Null);
    let mut cell = display(&app.catalog(), field, value, viewer, titles);
    let Some(deadline) = &field.deadline else { return cell };
    if !record.get(deadline.met_by.as_str()).is_none_or(Json::is_null) {
        return cell;
    }
    let due = value.as_str().and_then(|text| {
        DateTime::parse_from_rfc3339(text).ok().map(|due| due.with_timezone(&chrono::Utc)).or_else(|| {
            // A due date is met until the end of that day, the reader's.
            let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.succ_opt()?;
            Some(day.and_time(chrono::NaiveTime::MIN).and_local_timezone(viewer.offset).single()?.to_utc())
        })
    });
    let Some(due) = due else { return cell };
    let now = app.now();
    let near = deadline.warn_hours.is_some_and(|h| due - now < chrono::TimeDelta::hours(i64::from(h)));
    let (tone, note) = if due < now {
        ("deadline-overdue", "deadline.overdue")
    } else if near {
        ("deadline-due-soon", "deadline.due_soon")
    } else {
        return cell;
    };
    cell.tone = Some(tone);
    cell.note = Some(super::shell::text(viewer.locale, note, &[]));
    cell
}

/// The display names of referenced records, by id, and which of them are in the recycle bin.
#[derive(Debug, Default)]
pub struct Titles {
    names: HashMap<Uuid, String>,
    deleted: HashSet<Uuid>,
}

impl std::ops::Deref for Titles {
    type Target = HashMap<Uuid, String>;

    fn deref(&self) -> &Self::Target {
        &self.names
    }
}

/// Formats one value of a field for display.
pub fn display(catalog: &Catalog, field: &FieldDef, value: &Json, viewer: &Viewer, titles: &Titles) -> Cell {
    let locale = viewer.locale;
    let text = |v: &Json| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    if value.is_null() {
        return Cell::text(String::new());
    }
    match field.spec().display {
        Display::Plain if field.stage_key => {
            let key = text(value);
            Cell::text(catalog.stage_label(&key).map_or(key, |label| label.get(locale).to_owned()))
        }
        Display::Plain => Cell::text(text(value)),
        Display::Long => Cell { kind: "long", ..Cell::text(text(value)) },
        Display::Option => Cell::text(option_label(field, &text(value), locale)),
        Display::Options => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            let labels: Vec<String> = items.iter().map(|v| option_label(field, &text(v), locale)).collect();
            Cell::text(labels.join(if locale == "en" { ", " } else { "、" }))
        }
        Display::Stage => {
            let name = text(value);
            let sets = catalog.stage_sets_of(field);
            let stage = sets.iter().flat_map(|set| set.stages.iter()).find(|s| s.name.as_str() == name);
            Cell::text(stage.map_or(name, |s| s.label.get(locale).to_owned()))
        }
        Display::YesNo => {
            let key = if value.as_bool() == Some(true) { "common.yes" } else { "common.no" };
            Cell::text(super::shell::text(locale, key, &[]))
        }
        Display::Money => Cell { kind: "number", ..Cell::text(money(&text(value), field.currency())) },
        Display::Percent => Cell { kind: "number", ..Cell::text(format!("{}%", group_digits(&plain(&text(value))))) },
        Display::Number => Cell { kind: "number", ..Cell::text(group_digits(&plain(&text(value)))) },
        Display::Datetime => Cell::text(
            DateTime::parse_from_rfc3339(&text(value))
                .map(|dt| dt.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| text(value)),
        ),
        Display::Record => {
            let id = text(value);
            let target = field.reference_target().unwrap_or_default();
            let id = Uuid::parse_str(&id).ok();
            match id.and_then(|id| titles.get(&id).map(|title| (id, title))) {
                // A record in the recycle bin is said to be there, with the way to it for those
                // who may bring it back.
                Some((id, title)) if titles.deleted.contains(&id) => {
                    let restores = viewer.principal.access.allows(target, Action::Restore);
                    let text = super::shell::text(locale, "common.deleted_record", &[("name", title.clone())]);
                    Cell { href: restores.then(|| format!("/e/{target}/bin")), ..Cell::text(text) }
                }
                Some((id, title)) => Cell { href: Some(format!("/e/{target}/{id}")), ..Cell::text(title.clone()) },
                None => Cell::text(super::shell::text(locale, "common.no_access", &[])),
            }
        }
        Display::Mailto => {
            let address = text(value);
            Cell { href: Some(format!("mailto:{address}")), ..Cell::text(address) }
        }
        Display::Tel => {
            let number = text(value);
            let digits: String = number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
            Cell { href: Some(format!("tel:{digits}")), ..Cell::text(number) }
        }
        Display::WebLink => {
            let url = text(value);
            // Only web addresses become links: a `javascript:` URL stays inert text.
            let safe = url.starts_with("https://") || url.starts_with("http://");
            Cell { href: safe.then(|| url.clone()), external: safe, ..Cell::text(url) }
        }
    }
}

fn option_label(field: &FieldDef, value: &str, locale: &str) -> String {
    field.options.iter().find(|o| o.value == value).map_or_else(|| value.to_owned(), |o| o.label.get(locale).to_owned())
}

/// A quantity as people write it: `10.00` as `10`, `2.50` as `2.5` (money keeps its cents).
fn plain(number: &str) -> String {
    match number.split_once('.') {
        Some((whole, fraction)) => match fraction.trim_end_matches('0') {
            "" => whole.to_owned(),
            kept => format!("{whole}.{kept}"),
        },
        None => number.to_owned(),
    }
}

/// `1234567.50` as `1,234,567.50`.
fn group_digits(number: &str) -> String {
    let (sign, rest) = number.strip_prefix('-').map_or(("", number), |r| ("-", r));
    let (whole, fraction) = rest.split_once('.').map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::with_capacity(number.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn money(amount: &str, currency: &str) -> String {
    let symbol = match currency {
        "CNY" => "¥",
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "JP¥",
        "HKD" => "HK$",
        other => return format!("{other} {}", group_digits(amount)),
    };
    format!("{symbol}{}", group_digits(amount))
}

/// Ids of referenced records, by the entity they belong to.
pub type Wanted = HashMap<String, HashSet<Uuid>>;

/// The records the reference fields of `rows` point at.
pub fn references(fields: &[&FieldDef], rows: &[&Json]) -> Wanted {
    let mut wanted = Wanted::new();
    for field in fields {
        let Some(target) = field.reference_target() else { continue };
        let ids = rows
            .iter()
            .filter_map(|row| row.get(field.name.as_str())?.as_str())
            .filter_map(|id| id.parse::<Uuid>().ok());
        wanted.entry(target.to_owned()).or_default().extend(ids);
    }
    wanted
}

/// The titles of records as the viewer may see them: a record outside their scope has no
/// title (the screen says so). User names are directory information every signed-in user
/// sees.
pub async fn titles(app: &App, principal: &Principal, wanted: Wanted) -> ApiResult<Titles> {
    let catalog = app.catalog();
    let mut titles = Titles::default();
    let tree = app.departments().await?;
    for (target, ids) in &wanted {
        let target = target.as_str();
        let Some(entity) = catalog.entity(target) else { continue };
        let Some(title) = entity.title_field().and_then(|f| entity.column_index(f.name.as_str())) else { continue };
        if ids.is_empty() || (target != USER_ENTITY && !principal.access.allows(target, Action::Read)) {
            continue;
        }
        let id_field = entity.column("id").expect("every entity has an id").clone();
        let mut filter = Filter::Cond(Box::new(Cond {
            field: id_field,
            op: Op::In(ids.iter().map(|id| Value::Uuid(*id)).collect()),
        }));
        if target != USER_ENTITY
            && let Some(scope) = principal.read_scope(&tree, entity)
        {
            filter = filter.and(scope);
        }
        let limit = ids.len() as u32;
        let mut query = ListQuery { filter: Some(filter), sort: Vec::new(), limit, after: None, deleted: false };
        let live = store::list(&app.db, entity, &query).await?.records;
        // Those not found alive may be in the recycle bin.
        query.deleted = true;
        let binned =
            if live.len() < ids.len() { store::list(&app.db, entity, &query).await?.records } else { Vec::new() };
        titles.deleted.extend(binned.iter().map(|r| r.id()));
        for record in live.iter().chain(&binned) {
            if let Value::Text(text) = &record.values[title] {
                titles.names.insert(record.id(), text.clone());
            }
        }
    }
    Ok(titles)
}

/// A stored value as a form input's value.
pub fn input_value(field: &FieldDef, value: &Json, offset: &FixedOffset) -> Json {
    match (field.spec().widget, value) {
        (Widget::Datetime, Json::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|dt| Json::String(dt.with_timezone(offset).format("%Y-%m-%dT%H:%M").to_string()))
            .unwrap_or_else(|_| value.clone()),
        _ => value.clone(),
    }
}

/// The API value of a field from the values a form posted for it (several for a multi
/// select; a checkbox posts `true` after its hidden `false`). What cannot be read is passed
/// on as text, so the record service reports it beside the field.
pub fn form_value(field: &FieldDef, posted: &[&str], offset: &FixedOffset) -> Json {
    let last = posted.last().copied().unwrap_or("").trim();
    match field.spec().widget {
        Widget::MultiSelect => Json::Array(posted.iter().filter(|v| !v.is_empty()).map(|v| Json::from(*v)).collect()),
        Widget::Checkbox => Json::Bool(last == "true"),
        Widget::Textarea if !last.is_empty() => Json::from(posted.last().copied().unwrap_or("")),
        _ if last.is_empty() => Json::Null,
        Widget::Datetime => NaiveDateTime::parse_from_str(last, "%Y-%m-%dT%H:%M")
            .ok()
            .and_then(|local| offset.from_local_datetime(&local).single())
            .map_or_else(|| Json::from(last), |dt| Json::from(dt.to_rfc3339())),
        _ => Json::from(last),
    }
}

/// A row of a table on a page: the record's link and its cells.
#[derive(Debug, Serialize)]
pub struct Row {
    pub id: String,
    pub href: String,
    pub cells: Vec<Cell>,
}

/// The rows of a table of records (as the API serializes them) over some fields.
pub async fn rows(
    app: &App,
    viewer: &Viewer,
    entity: &str,
    fields: &[&FieldDef],
    records: &[Json],
) -> ApiResult<Vec<Row>> {
    let titles = titles(app, &viewer.principal, references(fields, &records.iter().collect::<Vec<_>>())).await?;
    Ok(records
        .iter()
        .map(|record| {
            let id = record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
            let cells = fields.iter().map(|f| field_cell(app, f, record, viewer, &titles)).collect();
            Row { href: format!("/e/{entity}/{id}"), id, cells }
        })
        .collect())
}

/// The records of a list page as the API serializes them.
pub fn records_of(page: &crate::records::ListPage) -> ApiResult<Vec<Json>> {
    let json = serde_json::to_value(page).map_err(|e| crate::error::ApiError::Internal(e.into()))?;
    Ok(match json {
        Json::Object(mut page) => match page.remove("data") {
            Some(Json::Array(records)) => records,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// Records of an entity the viewer may read, as (id, title) choices.
pub async fn choices(
    app: &App,
    viewer: &Viewer,
    entity: &str,
    filter: Option<Json>,
) -> ApiResult<Vec<(String, String)>> {
    let catalog = app.catalog();
    let Some(title) = catalog.entity(entity).and_then(|e| e.title_field()).filter(|_| viewer.principal.sees(entity))
    else {
        return Ok(Vec::new());
    };
    let params = ListParams {
        filter: filter.map(|f| f.to_string()),
        fields: Some(format!("id,{}", title.name)),
        sort: Some("-created_at".into()),
        limit: Some(200),
        ..ListParams::default()
    };
    let page = records::list(app, &viewer.principal, entity, &params).await?;
    Ok(records_of(&page)?
        .iter()
        .map(|r| {
            let text = |f: &str| r.get(f).and_then(Json::as_str).unwrap_or_default().to_owned();
            (text("id"), text(title.name.as_str()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_people_write_them() {
        assert_eq!(group_digits(&plain("10.00")), "10");
        assert_eq!(group_digits(&plain("12345.50")), "12,345.5");
        assert_eq!(group_digits(&plain("-0.25")), "-0.25");
        assert_eq!(group_digits(&plain("300")), "300");
        assert_eq!(money("1200.00", "CNY"), "¥1,200.00", "money keeps its cents");
    }
}
