//! A row's cells as field values, and a record's values as cells: the transforms of a sync
//! mapping (trim, code tables, a unit's factor, a date format, a reference through another
//! mapping's codes), then the same reading of text as an import's.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use crm_model::{Catalog, Entity, FieldDef, FieldType, SyncDoc, SyncField, Value, value};
use serde_json::{Map, Value as Json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::import::mapping::value_of;
use crate::import::read::{Cell, number_text};
use crate::schedule::business_offset;

/// The records other mappings keep, by code: references are kept through them.
pub type Codes = HashMap<String, Uuid>;

/// A short digest of values, to tell a changed row from one written before.
pub fn digest(values: &Json) -> String {
    let hash = Sha256::digest(values.to_string().as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn field<'e>(entity: &'e Entity, mapped: &SyncField) -> Result<&'e FieldDef, String> {
    entity.column(mapped.field.as_str()).ok_or_else(|| format!("no field `{}`", mapped.field))
}

/// A row's cells as the values of its record, or why a cell does not fit.
pub fn incoming(
    catalog: &Catalog,
    entity: &Entity,
    sync: &SyncDoc,
    cells: &[Option<String>],
    via: &HashMap<String, Codes>,
) -> Result<Map<String, Json>, String> {
    let mut values = Map::new();
    for (mapped, cell) in sync.fields.iter().zip(cells) {
        let field = field(entity, mapped)?;
        let text = cell.as_deref().map(|c| if mapped.trim { c.trim() } else { c }).filter(|c| !c.is_empty());
        let value = match text {
            None => Json::Null,
            Some(text) => incoming_value(catalog, field, mapped, text, via)?,
        };
        values.insert(field.name.to_string(), value);
    }
    Ok(values)
}

fn incoming_value(
    catalog: &Catalog,
    field: &FieldDef,
    mapped: &SyncField,
    text: &str,
    via: &HashMap<String, Codes>,
) -> Result<Json, String> {
    let column = &mapped.column;
    if let Some(other) = &mapped.via {
        let id = via.get(other.as_str()).and_then(|codes| codes.get(text));
        return id
            .map(|id| Json::from(id.to_string()))
            .ok_or_else(|| format!("{column}: `{text}` is not synced by `{other}` yet"));
    }
    let mut text = match mapped.codes.get(text) {
        Some(ours) => ours.clone(),
        None if mapped.codes.is_empty() => text.to_owned(),
        None => return Err(format!("{column}: the code `{text}` is not in the mapping's code table")),
    };
    if let Some(format) = &mapped.date_format {
        text = read_date(&text, format, field.field_type)
            .ok_or_else(|| format!("{column}: `{text}` is not a date in `{format}`"))?;
    } else if field.field_type == FieldType::Date {
        // A DATETIME column read into a date.
        text = text.split(' ').next().unwrap_or_default().to_owned();
    }
    if let Some(factor) = mapped.factor.as_ref().and_then(serde_json::Number::as_f64) {
        let n: f64 = text.trim().parse().map_err(|_| format!("{column}: `{text}` is not a number"))?;
        text = rounded(n * factor);
    }
    let value = value_of(catalog, field, &Cell::Text(text), column).map_err(|e| e.message)?;
    Ok(value.unwrap_or(Json::Null))
}

/// A converted quantity without the binary fraction's noise (0.1 × 3 is 0.3).
fn rounded(n: f64) -> String {
    number_text((n * 1e6).round() / 1e6)
}

fn read_date(text: &str, format: &str, field_type: FieldType) -> Option<String> {
    let datetime = NaiveDateTime::parse_from_str(text, format).ok();
    let date = datetime.map(|d| d.date()).or_else(|| NaiveDate::parse_from_str(text, format).ok())?;
    Some(match (field_type, datetime) {
        (FieldType::Datetime, Some(dt)) => dt.format("%Y-%m-%dT%H:%M:%S").to_string(),
        (FieldType::Datetime, None) => format!("{date}T00:00:00"),
        _ => date.to_string(),
    })
}

/// The fields of `values` whose value differs from the record's, as `{field: [was, is]}`.
pub fn differences(
    catalog: &Catalog,
    entity: &Entity,
    record: &[Value],
    values: &Map<String, Json>,
) -> Map<String, Json> {
    let mut changed = Map::new();
    for (name, new) in values {
        let (Some(at), Some(field)) = (entity.column_index(name), entity.column(name)) else { continue };
        let stages = field.stage_set.as_ref().and_then(|s| catalog.stage_set(s.as_str()));
        let same = value::parse(field, new, stages).is_ok_and(|parsed| parsed == record[at]);
        if !same {
            changed.insert(name.clone(), Json::Array(vec![value::to_json(field, &record[at]), new.clone()]));
        }
    }
    changed
}

/// A record's values as the cells of its row, or why one cannot be written.
pub fn outgoing(
    entity: &Entity,
    sync: &SyncDoc,
    record: &[Value],
    via: &HashMap<String, HashMap<Uuid, String>>,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut cells = Vec::new();
    for mapped in &sync.fields {
        let field = field(entity, mapped)?;
        let at = entity.column_index(field.name.as_str()).ok_or_else(|| format!("no field `{}`", field.name))?;
        let text = match &record[at] {
            Value::Null => None,
            value => Some(outgoing_value(field, mapped, value, via)?),
        };
        cells.push((mapped.column.clone(), text));
    }
    Ok(cells)
}

fn outgoing_value(
    field: &FieldDef,
    mapped: &SyncField,
    value: &Value,
    via: &HashMap<String, HashMap<Uuid, String>>,
) -> Result<String, String> {
    let name = &field.name;
    if let Some(other) = &mapped.via {
        let Value::Uuid(id) = value else { return Err(format!("{name}: not a reference")) };
        let code = via.get(other.as_str()).and_then(|codes| codes.get(id));
        return code.cloned().ok_or_else(|| format!("{name}: the record it points at is not synced by `{other}` yet"));
    }
    let mut text = match (value, &mapped.date_format) {
        (Value::Date(d), Some(format)) => d.format(format).to_string(),
        (Value::Datetime(dt), Some(format)) => dt.with_timezone(&business_offset()).format(format).to_string(),
        (Value::Datetime(dt), None) => dt.with_timezone(&business_offset()).format("%Y-%m-%d %H:%M:%S").to_string(),
        (Value::Boolean(b), _) => if *b { "1" } else { "0" }.to_owned(),
        _ => match value::to_json(field, value) {
            Json::String(s) => s,
            other => other.to_string(),
        },
    };
    if !mapped.codes.is_empty() {
        let code = mapped.codes.iter().find(|(_, ours)| **ours == text).map(|(code, _)| code.clone());
        text = code.ok_or_else(|| format!("{name}: `{text}` has no code in the mapping's code table"))?;
    }
    if let Some(factor) = mapped.factor.as_ref().and_then(serde_json::Number::as_f64) {
        let n: f64 = text.parse().map_err(|_| format!("{name}: `{text}` is not a number"))?;
        text = rounded(n / factor);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erp_dates_are_read_in_their_format() {
        assert_eq!(read_date("20261130", "%Y%m%d", FieldType::Date).as_deref(), Some("2026-11-30"));
        assert_eq!(
            read_date("2026/11/30 08:05", "%Y/%m/%d %H:%M", FieldType::Datetime).as_deref(),
            Some("2026-11-30T08:05:00")
        );
        assert_eq!(read_date("30.11.2026", "%Y%m%d", FieldType::Date), None);
    }

    #[test]
    fn conversions_keep_decimal_digits() {
        assert_eq!(rounded(0.1 * 3.0), "0.3");
        assert_eq!(rounded(2.5 * 1000.0), "2500");
    }

    #[test]
    fn digests_follow_the_values() {
        let a = digest(&serde_json::json!({"name": "北京立友信科技有限公司", "class": "a"}));
        assert_eq!(a, digest(&serde_json::json!({"name": "北京立友信科技有限公司", "class": "a"})));
        assert_ne!(a, digest(&serde_json::json!({"name": "北京立友信科技有限公司", "class": "b"})));
    }
}
