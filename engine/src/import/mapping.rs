//! Which column of a file goes into which field: proposed from the fields' labels (zh-CN and
//! en) and names, remembered per entity and user, and the cells turned into the values the
//! save pipeline reads.

use std::collections::HashMap;

use crm_model::{Action, Catalog, Entity, FieldDef, FieldType};
use crm_store::system;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::read::{Cell, Unreadable, number_text};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiResult, FieldError};

/// The preference a user's last mapping for an entity is kept under.
fn preference(entity: &str) -> String {
    format!("import_mapping.{entity}")
}

/// The fields a caller may fill from a file: those they see and may write, the record's id
/// (to find records to update) and, when they may assign, the owner.
pub fn importable<'e>(entity: &'e Entity, principal: &Principal) -> Vec<&'e FieldDef> {
    let name = entity.name().as_str();
    let hidden = principal.hidden(name);
    let read_only = principal.read_only(name);
    let id = entity.column("id");
    let owner = entity.column("owner").filter(|_| principal.access.allows(name, Action::Assign));
    let fields = entity
        .live_fields()
        .filter(|f| !hidden.contains(&f.name) && !read_only.contains(&f.name) && !f.kept_by_engine());
    id.into_iter().chain(fields).chain(owner).collect()
}

/// Whether a field's value goes into the record: not the id nor an engine-kept key, which only
/// find records; the owner, a system column, is written.
pub fn is_written(field: &FieldDef) -> bool {
    field.name.as_str() == "owner" || !field.kept_by_engine()
}

/// Whether a field can find the record a row updates: the id, a unique field, an auto-number.
pub fn is_key(field: &FieldDef) -> bool {
    field.name.as_str() == "id" || field.unique || field.field_type == FieldType::AutoNumber
}

/// A header or label as compared: without case or spaces.
fn folded(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && *c != '_' && *c != '*').flat_map(char::to_lowercase).collect()
}

/// A field per column (or none): the user's remembered choice for that header, else the field
/// whose label or name matches it.
pub fn propose(fields: &[&FieldDef], headers: &[String], remembered: &Map<String, Json>) -> Vec<Option<String>> {
    let mut by_text: HashMap<String, &str> = HashMap::new();
    for field in fields {
        for text in [field.name.as_str(), field.label.zh_cn.as_str(), field.label.en.as_str()] {
            by_text.entry(folded(text)).or_insert(field.name.as_str());
        }
    }
    let known = |name: &str| fields.iter().any(|f| f.name.as_str() == name);
    let mut taken: Vec<String> = Vec::new();
    headers
        .iter()
        .map(|header| {
            let chosen = match remembered.get(header) {
                Some(Json::String(name)) if known(name) => Some(name.clone()),
                Some(Json::Null) => None,
                _ => by_text.get(&folded(header)).map(|name| (*name).to_owned()),
            };
            // One column per field: a second column with the same label stays out.
            let chosen = chosen.filter(|name| !taken.contains(name));
            taken.extend(chosen.clone());
            chosen
        })
        .collect()
}

/// The mapping the user chose last for an entity.
pub async fn remembered(app: &App, user: Uuid, entity: &str) -> ApiResult<Map<String, Json>> {
    let name = preference(entity);
    let preferences = system::preferences(&app.db, user).await?;
    Ok(preferences
        .into_iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, value)| serde_json::from_str(&value).ok())
        .unwrap_or_default())
}

/// Keeps the mapping of an import the user started, for their next file.
pub async fn remember(
    app: &App,
    user: Uuid,
    entity: &str,
    headers: &[String],
    targets: &[Option<String>],
) -> ApiResult<()> {
    let mapping: Map<String, Json> = headers
        .iter()
        .zip(targets)
        .filter(|(header, _)| !header.is_empty())
        .map(|(header, target)| (header.clone(), target.clone().map_or(Json::Null, Json::String)))
        .collect();
    let text = Json::Object(mapping).to_string();
    system::set_preference(&app.db, user, &preference(entity), &text).await?;
    Ok(())
}

/// A cell as the value the pipeline reads for a field: `None` leaves the field out (an empty
/// cell never clears a value). Labels of choices are read as their values, 是/否 as yes and no,
/// dates in the usual Chinese and ISO forms; what still does not fit is passed on as it is,
/// so that the pipeline names the problem as it would for the API.
pub fn value_of(catalog: &Catalog, field: &FieldDef, cell: &Cell, column: &str) -> Result<Option<Json>, FieldError> {
    let name = field.name.to_string();
    let text = match cell {
        Cell::Unreadable(Unreadable::Formula) => {
            return Err(FieldError::new(
                name,
                "import_formula",
                format!(
                    "column {column}: a formula without a calculated value; open the file in Excel and save it again"
                ),
            ));
        }
        Cell::Unreadable(Unreadable::Error) => {
            return Err(FieldError::new(
                name,
                "import_cell_error",
                format!("column {column}: the cell holds an Excel error"),
            ));
        }
        _ if cell.is_empty() => return Ok(None),
        Cell::Date(d) if field.field_type == FieldType::Datetime => {
            return Ok(Some(Json::from(format!("{d}T00:00:00"))));
        }
        Cell::Datetime(dt) if field.field_type == FieldType::Date => {
            return Ok(Some(Json::from(dt.date().to_string())));
        }
        Cell::Datetime(dt) => return Ok(Some(Json::from(dt.format("%Y-%m-%dT%H:%M:%S").to_string()))),
        Cell::Bool(b) if field.field_type == FieldType::Boolean => return Ok(Some(Json::Bool(*b))),
        Cell::Number(n) => number_text(*n),
        other => other.text().trim().to_owned(),
    };
    let value = match field.field_type {
        FieldType::Boolean => match yes_no(&text) {
            Some(b) => Json::Bool(b),
            None => Json::from(text),
        },
        FieldType::Integer | FieldType::Decimal | FieldType::Money | FieldType::Percent => {
            Json::from(plain_number(&text))
        }
        FieldType::Date => Json::from(plain_date(&text).unwrap_or(text)),
        FieldType::Datetime => Json::from(plain_datetime(&text)),
        FieldType::Select => Json::from(option_value(field, &text)),
        FieldType::MultiSelect => Json::Array(
            text.split([',', '，', '、', ';', '；'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Json::from(option_value(field, t)))
                .collect(),
        ),
        FieldType::Stage => {
            let stages = catalog.stage_sets_of(field);
            let stage = stages.iter().flat_map(|s| s.stages.iter()).find(|s| {
                s.name.as_str() == text
                    || folded(&s.label.zh_cn) == folded(&text)
                    || folded(&s.label.en) == folded(&text)
            });
            Json::from(stage.map_or(text, |s| s.name.to_string()))
        }
        _ => Json::from(text),
    };
    Ok(Some(value))
}

fn yes_no(text: &str) -> Option<bool> {
    match folded(text).as_str() {
        "是" | "true" | "yes" | "y" | "1" | "√" | "✓" | "对" => Some(true),
        "否" | "false" | "no" | "n" | "0" | "×" | "错" => Some(false),
        _ => None,
    }
}

/// `¥1,200,000.00` as `1200000.00`; `12.5%` as `12.5`.
fn plain_number(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, ',' | '，' | '¥' | '￥' | '$' | '%' | ' ')).collect()
}

/// `2026/1/31`, `2026.1.31` and `2026年1月31日` as `2026-01-31`.
fn plain_date(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(['-', '/', '.', '年', '月', '日']).filter(|p| !p.is_empty()).collect();
    let [y, m, d] = parts.as_slice() else { return None };
    let date = chrono::NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    Some(date.to_string())
}

/// `2026/1/31 9:30` as `2026-01-31T09:30:00`, read in Beijing time by the pipeline; a text
/// with an offset is passed on as it is.
fn plain_datetime(text: &str) -> String {
    let Some((date, time)) = text.trim().split_once([' ', 'T']) else { return text.to_owned() };
    let time = time.trim();
    let parsed = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(time, "%H:%M"));
    match (plain_date(date), parsed) {
        (Some(date), Ok(time)) => format!("{date}T{}", time.format("%H:%M:%S")),
        _ => text.to_owned(),
    }
}

/// The value of a choice named by its value or by a label in either language.
fn option_value(field: &FieldDef, text: &str) -> String {
    let wanted = folded(text);
    field
        .options
        .iter()
        .find(|o| o.value == text || folded(&o.label.zh_cn) == wanted || folded(&o.label.en) == wanted)
        .map_or_else(|| text.to_owned(), |o| o.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_chinese_forms_are_read() {
        assert_eq!(plain_date("2026年1月31日").as_deref(), Some("2026-01-31"));
        assert_eq!(plain_date("2026/1/5").as_deref(), Some("2026-01-05"));
        assert_eq!(plain_datetime("2026/1/5 9:30"), "2026-01-05T09:30:00");
        assert_eq!(plain_number("¥1,200,000.50"), "1200000.50");
    }

    #[test]
    fn headers_match_labels_without_case_or_spaces() {
        assert_eq!(folded(" Annual  Revenue "), "annualrevenue");
        assert_eq!(folded("客户 名称*"), "客户名称");
    }
}
