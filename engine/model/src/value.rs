//! Field values: JSON from a client checked and turned into typed values by the field's type
//! and options, and typed values turned back into JSON.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::meta::{FieldDef, StageSetDoc};
use crate::region;
use crate::types::Storage;

/// A typed value of one column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Null,
    Text(String),
    Integer(i64),
    /// An exact number scaled by `10^scale` of its field.
    Fixed(i64),
    Boolean(bool),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
    Uuid(Uuid),
    List(Vec<String>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Why a value was refused: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The offset used for a datetime given without one: Asia/Shanghai, which has no daylight
/// saving time, so a fixed offset is exact.
const DEFAULT_OFFSET_SECS: i32 = 8 * 3600;

/// Checks a client's JSON for a field and converts it, with the parser of the field's type.
/// `stages` is the stage set of a stage field. References are only checked for form here;
/// that the target exists is the store's business.
pub fn parse(field: &FieldDef, json: &Json, stages: Option<&StageSetDoc>) -> Result<Value, Problem> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    (field.spec().parse)(field, json, stages)
}

pub(crate) fn parse_text(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    Ok(checked_text(field, expect_text(json)?.trim())?.map_or(Value::Null, Value::Text))
}

/// A long text keeps its spaces and line breaks as typed.
pub(crate) fn parse_long_text(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    Ok(checked_text(field, expect_text(json)?)?.map_or(Value::Null, Value::Text))
}

pub(crate) fn parse_email(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    formed_text(field, json, is_email, || Problem::new("invalid_email", "not an email address"))
}

pub(crate) fn parse_phone(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    // A Chinese input method types digits and signs full-width (０１０－６２３４５６７８): they are
    // kept half-width, as every other phone is.
    let half_width: String = expect_text(json)?
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect();
    formed_text(field, &Json::String(half_width), is_phone, || Problem::new("invalid_phone", "not a phone number"))
}

pub(crate) fn parse_url(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    formed_text(field, json, is_url, || Problem::new("invalid_url", "not an http(s) address"))
}

pub(crate) fn parse_region(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let Some(text) = checked_text(field, expect_text(json)?.trim())? else {
        return Ok(Value::Null);
    };
    region::normalize(&text)
        .map(Value::Text)
        .ok_or_else(|| Problem::new("invalid_region", "not a province (and city) of China, e.g. 广东省/深圳市"))
}

pub(crate) fn refuse_generated(_: &FieldDef, _: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    Err(Problem::new("read_only", "an auto-number is generated"))
}

pub(crate) fn parse_integer(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let n = match json {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => return Err(type_error("an integer")),
    }
    .ok_or_else(|| Problem::new("invalid_number", "not a whole number in range"))?;
    check_range(field, n)?;
    Ok(Value::Integer(n))
}

/// Decimal, money and percent: exact numbers at the field's scale.
pub(crate) fn parse_exact(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let text = match json {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.trim().to_owned(),
        _ => return Err(type_error("a number")),
    };
    let n = parse_fixed(&text, field.scale())?;
    check_range(field, n)?;
    Ok(Value::Fixed(n))
}

pub(crate) fn parse_boolean(_: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    json.as_bool().map(Value::Boolean).ok_or_else(|| type_error("true or false"))
}

pub(crate) fn parse_date(_: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    NaiveDate::parse_from_str(expect_text(json)?.trim(), "%Y-%m-%d")
        .map(Value::Date)
        .map_err(|_| Problem::new("invalid_date", "not a date like 2026-01-31"))
}

pub(crate) fn parse_datetime(_: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    datetime_of(expect_text(json)?.trim())
        .map(Value::Datetime)
        .ok_or_else(|| Problem::new("invalid_datetime", "not a date and time like 2026-01-31T09:30:00+08:00"))
}

pub(crate) fn parse_option(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let text = expect_text(json)?;
    if field.options.iter().any(|o| o.value == text) {
        Ok(Value::Text(text.to_owned()))
    } else {
        Err(invalid_option(field, text))
    }
}

pub(crate) fn parse_options(field: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let Json::Array(items) = json else {
        return Err(type_error("a list of options"));
    };
    let mut chosen = Vec::with_capacity(items.len());
    for item in items {
        let text = item.as_str().ok_or_else(|| type_error("a list of options"))?;
        if !field.options.iter().any(|o| o.value == text) {
            return Err(invalid_option(field, text));
        }
        chosen.push(text);
    }
    // Kept in the order of the options so that equal choices are equal values.
    let list = field
        .options
        .iter()
        .filter(|o| chosen.contains(&o.value.as_str()))
        .map(|o| o.value.clone())
        .collect::<Vec<_>>();
    Ok(if list.is_empty() { Value::Null } else { Value::List(list) })
}

pub(crate) fn parse_reference(_: &FieldDef, json: &Json, _: Option<&StageSetDoc>) -> Result<Value, Problem> {
    Uuid::parse_str(expect_text(json)?)
        .map(Value::Uuid)
        .map_err(|_| Problem::new("invalid_reference", "not a record id"))
}

pub(crate) fn parse_stage(_: &FieldDef, json: &Json, stages: Option<&StageSetDoc>) -> Result<Value, Problem> {
    let text = expect_text(json)?;
    match stages {
        Some(set) if set.stages.iter().any(|s| s.name.as_str() == text) => Ok(Value::Text(text.to_owned())),
        _ => Err(Problem::new("invalid_stage", format!("`{text}` is not a stage of this record"))),
    }
}

/// A text within the field's maximum length; `None` when it is empty.
fn checked_text(field: &FieldDef, text: &str) -> Result<Option<String>, Problem> {
    if text.is_empty() {
        return Ok(None);
    }
    check_text(field, text)?;
    Ok(Some(text.to_owned()))
}

/// A trimmed text of a form (an email address, ...), `invalid` when it is not of it.
fn formed_text(
    field: &FieldDef,
    json: &Json,
    is_formed: fn(&str) -> bool,
    invalid: fn() -> Problem,
) -> Result<Value, Problem> {
    match checked_text(field, expect_text(json)?.trim())? {
        Some(text) if !is_formed(&text) => Err(invalid()),
        text => Ok(text.map_or(Value::Null, Value::Text)),
    }
}

fn expect_text(json: &Json) -> Result<&str, Problem> {
    let text = json.as_str().ok_or_else(|| type_error("text"))?;
    // PostgreSQL refuses NUL in text, and no person means one: refuse it the same on both.
    if text.contains('\0') {
        return Err(Problem::new("invalid_text", "contains a NUL character"));
    }
    Ok(text)
}

fn type_error(expected: &str) -> Problem {
    Problem::new("invalid_type", format!("expected {expected}"))
}

fn invalid_option(field: &FieldDef, text: &str) -> Problem {
    let allowed = field.options.iter().map(|o| o.value.as_str()).collect::<Vec<_>>().join(", ");
    Problem::new("invalid_option", format!("`{text}` is not one of: {allowed}"))
}

fn check_text(field: &FieldDef, text: &str) -> Result<(), Problem> {
    match field.max_length() {
        Some(max) if text.chars().count() > max as usize => {
            Err(Problem::new("too_long", format!("at most {max} characters")))
        }
        _ => Ok(()),
    }
}

fn check_range(field: &FieldDef, n: i64) -> Result<(), Problem> {
    let bound = |b: &Option<serde_json::Number>| b.as_ref().and_then(|b| parse_number_bound(field, b));
    if let Some(min) = bound(&field.min)
        && n < min
    {
        return Err(Problem::new("out_of_range", format!("at least {}", format_number(field, min))));
    }
    if let Some(max) = bound(&field.max)
        && n > max
    {
        return Err(Problem::new("out_of_range", format!("at most {}", format_number(field, max))));
    }
    Ok(())
}

/// A `min` or `max` of a number field in the field's stored units.
pub fn parse_number_bound(field: &FieldDef, bound: &serde_json::Number) -> Option<i64> {
    match field.storage() {
        Storage::Integer => bound.as_i64(),
        Storage::Fixed(scale) => parse_fixed(&bound.to_string(), scale).ok(),
        _ => None,
    }
}

fn format_number(field: &FieldDef, n: i64) -> String {
    match field.storage() {
        Storage::Fixed(scale) => format_fixed(n, scale),
        _ => n.to_string(),
    }
}

/// Parses `-1234.5` into `-123450` for scale 2. More digits after the point than the scale
/// allows is an error, not a rounding: money must come back exactly as it was given.
pub fn parse_fixed(text: &str, scale: u8) -> Result<i64, Problem> {
    let invalid = || Problem::new("invalid_number", "not a number like 1234.56");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale as usize {
        return Err(Problem::new("too_precise", format!("at most {scale} digits after the decimal point")));
    }
    let out_of_range = || Problem::new("out_of_range", "too large");
    let mut n: i64 = 0;
    for b in whole.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', scale as usize - fraction.len())) {
        n = n.checked_mul(10).and_then(|n| n.checked_add(i64::from(b - b'0'))).ok_or_else(out_of_range)?;
    }
    Ok(if negative { -n } else { n })
}

/// `-123450` at scale 2 is `-1234.50`.
pub fn format_fixed(n: i64, scale: u8) -> String {
    if scale == 0 {
        return n.to_string();
    }
    let factor = 10u64.pow(u32::from(scale));
    let abs = n.unsigned_abs();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:0width$}", abs / factor, abs % factor, width = scale as usize)
}

fn datetime_of(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .ok()?;
    let offset = FixedOffset::east_opt(DEFAULT_OFFSET_SECS)?;
    local.and_local_timezone(offset).single().map(|dt| dt.with_timezone(&Utc))
}

/// The JSON a client reads for a value.
pub fn to_json(field: &FieldDef, value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(s) => Json::String(s.clone()),
        Value::Integer(n) => Json::from(*n),
        Value::Fixed(n) => Json::String(format_fixed(*n, field.scale())),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::Datetime(dt) => Json::String(format_datetime(dt)),
        Value::Uuid(id) => Json::String(id.to_string()),
        Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
    }
}

/// Reads back JSON this module wrote (as in a cursor), by storage class, without the checks
/// of [`parse`]: the value was checked when it was stored.
pub fn decode(field: &FieldDef, json: &Json) -> Option<Value> {
    if json.is_null() {
        return Some(Value::Null);
    }
    Some(match field.storage() {
        Storage::Text => Value::Text(json.as_str()?.to_owned()),
        Storage::Integer => Value::Integer(json.as_i64()?),
        Storage::Fixed(scale) => Value::Fixed(parse_fixed(json.as_str()?, scale).ok()?),
        Storage::Boolean => Value::Boolean(json.as_bool()?),
        Storage::Date => Value::Date(NaiveDate::parse_from_str(json.as_str()?, "%Y-%m-%d").ok()?),
        Storage::Datetime => Value::Datetime(DateTime::parse_from_rfc3339(json.as_str()?).ok()?.with_timezone(&Utc)),
        Storage::Uuid => Value::Uuid(Uuid::parse_str(json.as_str()?).ok()?),
        Storage::List => {
            Value::List(json.as_array()?.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<_>>()?)
        }
    })
}

pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Defaults that are computed when a record is created.
pub const DEFAULT_NOW: &str = "$now";
pub const DEFAULT_TODAY: &str = "$today";
pub const DEFAULT_ME: &str = "$me";

/// Checks that a field's default is a value of the field (or a computed default that fits).
pub fn check_default(field: &FieldDef, default: &Json, stages: Option<&StageSetDoc>) -> Result<(), Problem> {
    match default.as_str() {
        Some(computed @ (DEFAULT_NOW | DEFAULT_TODAY | DEFAULT_ME))
            if field.spec().computed_default == Some(computed) =>
        {
            Ok(())
        }
        Some(DEFAULT_NOW | DEFAULT_TODAY | DEFAULT_ME) => {
            Err(Problem::new("invalid_default", "this computed default does not fit the field's type"))
        }
        _ => parse(field, default, stages).map(|_| ()),
    }
}

/// The value a new record gets for a field it was not given.
pub fn resolve_default(field: &FieldDef, stages: Option<&StageSetDoc>, now: DateTime<Utc>, me: Uuid) -> Value {
    let Some(default) = &field.default else {
        return Value::Null;
    };
    match default.as_str() {
        Some(DEFAULT_NOW) => Value::Datetime(now),
        Some(DEFAULT_TODAY) => {
            let offset = FixedOffset::east_opt(DEFAULT_OFFSET_SECS).expect("valid offset");
            Value::Date(now.with_timezone(&offset).date_naive())
        }
        Some(DEFAULT_ME) => Value::Uuid(me),
        // Defaults are checked when the metadata is saved, so this cannot fail.
        _ => parse(field, default, stages).unwrap_or(Value::Null),
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c == ',' || c == ';' || c == '<' || c == '>')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
}

fn is_phone(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    digits >= 3
        && text.chars().all(|c| c.is_ascii_digit() || " +-()#*/.".contains(c) || c == '转' || c == 'x' || c == 'X')
}

fn is_url(text: &str) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty()
            && !text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::Ident;
    use crate::meta::{Labels, SelectOption};
    use crate::types::FieldType;
    use serde_json::json;

    fn field(ty: FieldType) -> FieldDef {
        FieldDef::new(Ident::new("f").unwrap(), ty, Labels::new("字段", "Field"))
    }

    #[test]
    fn money_is_exact_and_refuses_rounding() {
        let money = field(FieldType::Money);
        assert_eq!(parse(&money, &json!("1234.5"), None), Ok(Value::Fixed(123_450)));
        assert_eq!(parse(&money, &json!(0.1), None), Ok(Value::Fixed(10)));
        assert_eq!(parse(&money, &json!("-0.07"), None), Ok(Value::Fixed(-7)));
        assert_eq!(parse(&money, &json!("1.005"), None).unwrap_err().code, "too_precise");
        assert_eq!(parse(&money, &json!("1e3"), None).unwrap_err().code, "invalid_number");
        assert_eq!(parse(&money, &json!("99999999999999999999"), None).unwrap_err().code, "out_of_range");
        assert_eq!(to_json(&money, &Value::Fixed(-7)), json!("-0.07"));
        assert_eq!(to_json(&money, &Value::Fixed(123_450)), json!("1234.50"));
    }

    #[test]
    fn texts_are_checked_by_kind_and_length() {
        let mut text = field(FieldType::Text);
        text.max_length = Some(3);
        assert_eq!(parse(&text, &json!(" 北京市 "), None), Ok(Value::Text("北京市".into())));
        assert_eq!(parse(&text, &json!("北京市朝"), None).unwrap_err().code, "too_long");
        assert_eq!(parse(&text, &json!("a\0"), None).unwrap_err().code, "invalid_text");
        assert_eq!(parse(&text, &json!(""), None), Ok(Value::Null));
        assert_eq!(parse(&text, &json!(3), None).unwrap_err().code, "invalid_type");
        let email = field(FieldType::Email);
        assert!(parse(&email, &json!("li@example.cn"), None).is_ok());
        assert_eq!(parse(&email, &json!("li@"), None).unwrap_err().code, "invalid_email");
        let phone = field(FieldType::Phone);
        assert!(parse(&phone, &json!("+86 10-6543 2100转8"), None).is_ok());
        assert_eq!(parse(&phone, &json!("call me"), None).unwrap_err().code, "invalid_phone");
        assert_eq!(
            parse(&phone, &json!("（０１０）６２３４５６７８"), None).unwrap(),
            Value::Text("(010)62345678".into())
        );
        let url = field(FieldType::Url);
        assert!(parse(&url, &json!("https://example.cn/a?b"), None).is_ok());
        assert_eq!(parse(&url, &json!("javascript:alert(1)"), None).unwrap_err().code, "invalid_url");
    }

    #[test]
    fn options_and_lists_keep_option_order() {
        let mut multi = field(FieldType::MultiSelect);
        multi.options =
            ["a", "b", "c"].iter().map(|v| SelectOption { value: (*v).into(), label: Labels::new(v, v) }).collect();
        assert_eq!(parse(&multi, &json!(["c", "a", "c"]), None), Ok(Value::List(vec!["a".into(), "c".into()])));
        assert_eq!(parse(&multi, &json!(["x"]), None).unwrap_err().code, "invalid_option");
    }

    #[test]
    fn datetimes_without_offset_are_beijing_time() {
        let dt = field(FieldType::Datetime);
        let Value::Datetime(parsed) = parse(&dt, &json!("2026-01-31T09:30:00"), None).unwrap() else { panic!() };
        assert_eq!(format_datetime(&parsed), "2026-01-31T01:30:00Z");
        assert_eq!(parse(&dt, &json!("yesterday"), None).unwrap_err().code, "invalid_datetime");
    }
}
