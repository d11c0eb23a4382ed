//! Exporting a list (R-3, C-8): the records of a list query — its filters, sort and the
//! caller's scope, in the SQL like every list — page by page along the keyset cursor, as CSV
//! or as an XLSX workbook with typed cells (numbers, money, dates as Excel dates, choices by
//! their label). Fields hidden from the caller are never written. Every text cell that Excel
//! would run as a formula is neutralised ([`neutralised`]), here and in the import report.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{Datelike, FixedOffset, Timelike};
use crm_model::types::Display;
use crm_model::{Action, Catalog, Entity, FieldDef, FieldType, Value, value};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, ListParams};
use crate::screens::view::{self, Wanted};

/// Most rows one export writes.
pub const EXPORT_LIMIT: usize = 100_000;

/// What an export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    pub fn parse(text: &str) -> ApiResult<Self> {
        match text {
            "csv" => Ok(FileFormat::Csv),
            "xlsx" => Ok(FileFormat::Xlsx),
            other => Err(ApiError::bad_request("invalid_query", format!("`format` is csv or xlsx, not `{other}`"))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Xlsx => XLSX_TYPE,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
        }
    }
}

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A text as a spreadsheet cell that Excel shows and never runs: one starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'`.
pub fn neutralised(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A CSV file of a header and rows, with a byte-order mark so that Excel reads the Chinese
/// text as UTF-8, every cell neutralised.
pub fn csv_bytes(header: &[String], rows: Vec<Vec<String>>) -> ApiResult<Vec<u8>> {
    let mut out = csv_writer();
    write_csv_row(&mut out, header.iter().map(|h| neutralised(h)))?;
    for row in &rows {
        write_csv_row(&mut out, row.iter().map(|c| neutralised(c)))?;
    }
    out.into_inner().map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec())
}

fn write_csv_row<'a>(out: &mut csv::Writer<Vec<u8>>, cells: impl Iterator<Item = Cow<'a, str>>) -> ApiResult<()> {
    out.write_record(cells.collect::<Vec<_>>().iter().map(|c| c.as_ref())).map_err(|e| ApiError::Internal(e.into()))
}

/// One value as exported.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Blank,
    Text(String),
    /// A number and the Excel number format it is shown with.
    Number(f64, &'static str),
    Date(chrono::NaiveDate),
    Datetime(chrono::NaiveDateTime),
}

impl Out {
    /// The value in a CSV cell: numbers plain, so that they read back; texts neutralised
    /// (a number's minus sign is no formula).
    fn text(&self) -> String {
        match self {
            Out::Blank => String::new(),
            Out::Text(text) => neutralised(text).into_owned(),
            Out::Number(n, _) => crate::import::read::number_text(*n),
            Out::Date(d) => d.format("%Y-%m-%d").to_string(),
            Out::Datetime(dt) => dt.format("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

/// Who an export is for: their language and wall clock.
pub struct Audience<'a> {
    pub principal: &'a Principal,
    pub locale: &'static str,
    pub offset: FixedOffset,
}

/// The fields of an export: those `params.fields` names, or every field the caller sees.
fn export_fields<'e>(entity: &'e Entity, principal: &Principal, params: &ListParams) -> ApiResult<Vec<&'e FieldDef>> {
    let hidden = principal.hidden(entity.name().as_str());
    let chosen =
        params.fields.as_deref().map(|text| records::parse_fields(entity, text, hidden)).transpose()?.flatten();
    Ok(match chosen {
        Some(columns) => {
            columns.into_iter().map(|i| &entity.columns()[i]).filter(|f| f.name.as_str() != "id").collect()
        }
        None => entity.live_fields().filter(|f| !hidden.contains(&f.name)).collect(),
    })
}

/// A list exported: the file and its name.
pub async fn export(
    app: &App,
    audience: &Audience<'_>,
    entity_name: &str,
    params: ListParams,
    format: FileFormat,
) -> ApiResult<(Vec<u8>, String)> {
    let catalog = app.catalog();
    let entity = audience.principal.entity(&catalog, entity_name, Action::Export)?.clone();
    let fields = export_fields(&entity, audience.principal, &params)?;
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let mut params = ListParams {
        limit: Some(records::MAX_LIMIT),
        fields: Some(names.join(",")),
        count: false,
        deleted: false,
        ..params
    };
    let header: Vec<String> = fields.iter().map(|f| f.label.get(audience.locale).to_owned()).collect();
    let mut sink = match format {
        FileFormat::Csv => Sink::Csv(Box::new(csv_writer())),
        FileFormat::Xlsx => Sink::Xlsx(Box::new(Sheet::new())),
    };
    let mut written = 0;
    let mut started = false;
    loop {
        let page = records::list(app, audience.principal, entity_name, &params).await?;
        let titles = titles(app, audience.principal, &entity, &fields, page.records()).await?;
        let rows: Vec<Vec<Out>> = page
            .records()
            .iter()
            .map(|record| {
                fields
                    .iter()
                    .map(|field| {
                        let at = entity.column_index(field.name.as_str()).expect("export fields are columns");
                        typed(&catalog, field, &record.values[at], audience, &titles)
                    })
                    .collect()
            })
            .collect();
        if !started {
            sink.start(&header, &rows)?;
            started = true;
        }
        sink.rows(&rows, written)?;
        written += rows.len();
        match page.next_cursor.clone() {
            Some(cursor) if written < EXPORT_LIMIT => params.cursor = Some(cursor),
            _ => break,
        }
    }
    Ok((sink.finish()?, format!("{entity_name}.{}", format.extension())))
}

/// The titles of the records the page's lookups point at, as the caller may see them.
async fn titles(
    app: &App,
    principal: &Principal,
    entity: &Entity,
    fields: &[&FieldDef],
    records: &[crm_store::Record],
) -> ApiResult<view::Titles> {
    let mut wanted = Wanted::new();
    for field in fields {
        let Some(target) = field.reference_target() else { continue };
        let at = entity.column_index(field.name.as_str()).expect("a column");
        let ids: HashSet<Uuid> = records
            .iter()
            .filter_map(|r| match r.values[at] {
                Value::Uuid(id) => Some(id),
                _ => None,
            })
            .collect();
        wanted.entry(target.to_owned()).or_default().extend(ids);
    }
    view::titles(app, principal, wanted).await
}

/// A stored value as an export cell.
fn typed(catalog: &Catalog, field: &FieldDef, stored: &Value, audience: &Audience<'_>, titles: &view::Titles) -> Out {
    let locale = audience.locale;
    let label = |value: &str| {
        field
            .options
            .iter()
            .find(|o| o.value == value)
            .map_or_else(|| value.to_owned(), |o| o.label.get(locale).to_owned())
    };
    match stored {
        Value::Null => Out::Blank,
        Value::Integer(n) => Out::Number(*n as f64, "#,##0"),
        Value::Fixed(n) => {
            let number: f64 = value::format_fixed(*n, field.scale()).parse().unwrap_or_default();
            let format = match field.field_type {
                FieldType::Money => "#,##0.00",
                FieldType::Percent => "0.00\"%\"",
                _ if field.scale() == 0 => "#,##0",
                _ => "#,##0.00########",
            };
            Out::Number(number, format)
        }
        Value::Boolean(b) => {
            Out::Text(crate::screens::shell::text(locale, if *b { "common.yes" } else { "common.no" }, &[]))
        }
        Value::Date(d) => Out::Date(*d),
        Value::Datetime(dt) => Out::Datetime(dt.with_timezone(&audience.offset).naive_local()),
        Value::Uuid(id) => Out::Text(titles.get(id).cloned().unwrap_or_else(|| id.to_string())),
        Value::List(items) => {
            let labels: Vec<String> = items.iter().map(|v| label(v)).collect();
            Out::Text(labels.join(if locale == "en" { ", " } else { "、" }))
        }
        Value::Text(text) => match field.spec().display {
            Display::Option => Out::Text(label(text)),
            Display::Stage => {
                let sets = catalog.stage_sets_of(field);
                let stage = sets.iter().flat_map(|s| s.stages.iter()).find(|s| s.name.as_str() == text);
                Out::Text(stage.map_or_else(|| text.clone(), |s| s.label.get(locale).to_owned()))
            }
            _ => Out::Text(text.clone()),
        },
    }
}

/// Where exported rows go.
enum Sink {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Xlsx(Box<Sheet>),
}

impl Sink {
    fn start(&mut self, header: &[String], first: &[Vec<Out>]) -> ApiResult<()> {
        match self {
            Sink::Csv(out) => write_csv_row(out, header.iter().map(|h| neutralised(h))),
            Sink::Xlsx(sheet) => sheet.start(header, first).map_err(xlsx_error),
        }
    }

    /// Rows after `written` rows.
    fn rows(&mut self, rows: &[Vec<Out>], written: usize) -> ApiResult<()> {
        match self {
            Sink::Csv(out) => {
                for row in rows {
                    write_csv_row(out, row.iter().map(|cell| Cow::Owned(cell.text())))?;
                }
                Ok(())
            }
            Sink::Xlsx(sheet) => sheet.rows(rows, written).map_err(xlsx_error),
        }
    }

    fn finish(self) -> ApiResult<Vec<u8>> {
        match self {
            Sink::Csv(out) => out.into_inner().map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}"))),
            Sink::Xlsx(mut sheet) => sheet.book.save_to_buffer().map_err(xlsx_error),
        }
    }
}

/// A workbook of one sheet holding a header and a few rows (a report's table, say).
pub fn xlsx_bytes(header: &[String], rows: &[Vec<Out>]) -> ApiResult<Vec<u8>> {
    let mut sheet = Sheet::new();
    sheet.start(header, rows).map_err(xlsx_error)?;
    sheet.rows(rows, 0).map_err(xlsx_error)?;
    sheet.book.save_to_buffer().map_err(xlsx_error)
}

fn xlsx_error(error: XlsxError) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("writing the workbook failed: {error}"))
}

/// A workbook of one sheet written row by row: rows go to a temporary file as they come
/// (`constant_memory`), so a large export does not sit in memory as cells.
struct Sheet {
    book: Workbook,
    header: Format,
    date: Format,
    datetime: Format,
}

impl Sheet {
    fn new() -> Self {
        Sheet {
            book: Workbook::new(),
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm"),
        }
    }

    /// The header, frozen, and column widths from it and the first page (a streamed sheet
    /// sets its columns before its first row).
    fn start(&mut self, header: &[String], first: &[Vec<Out>]) -> Result<(), XlsxError> {
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        for (i, title) in header.iter().enumerate() {
            let widest = first.iter().filter_map(|row| row.get(i)).map(|c| width(&c.text())).max().unwrap_or(0);
            let column = u16::try_from(i).unwrap_or(u16::MAX);
            sheet.set_column_width(column, (widest.max(width(title)) as f64 + 2.0).clamp(8.0, 60.0))?;
        }
        for (i, title) in header.iter().enumerate() {
            sheet.write_string_with_format(
                0,
                u16::try_from(i).unwrap_or(u16::MAX),
                neutralised(title),
                &self.header,
            )?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(())
    }

    fn rows(&mut self, rows: &[Vec<Out>], written: usize) -> Result<(), XlsxError> {
        let Sheet { book, date, datetime, .. } = self;
        let sheet = book.worksheet_from_index(0)?;
        let mut formats: Vec<(&'static str, Format)> = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let at = u32::try_from(written + r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let column = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Out::Blank => {}
                    Out::Text(text) => {
                        sheet.write_string(at, column, neutralised(text))?;
                    }
                    Out::Number(n, pattern) => {
                        if !formats.iter().any(|(p, _)| p == pattern) {
                            formats.push((pattern, Format::new().set_num_format(*pattern)));
                        }
                        let format = &formats.iter().find(|(p, _)| p == pattern).expect("just added").1;
                        sheet.write_number_with_format(at, column, *n, format)?;
                    }
                    Out::Date(d) => {
                        let moment = excel_date(*d)?;
                        sheet.write_datetime_with_format(at, column, &moment, date)?;
                    }
                    Out::Datetime(dt) => {
                        let moment =
                            excel_date(dt.date())?.and_hms(dt.hour() as u16, dt.minute() as u8, dt.second())?;
                        sheet.write_datetime_with_format(at, column, &moment, datetime)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn excel_date(d: chrono::NaiveDate) -> Result<ExcelDateTime, XlsxError> {
    ExcelDateTime::from_ymd(u16::try_from(d.year()).unwrap_or(1900), d.month() as u8, d.day() as u8)
}

/// How wide a text shows: Chinese characters take two columns.
fn width(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for text in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralised(text), format!("'{text}"));
        }
        assert_eq!(neutralised("北京 = 1"), "北京 = 1");
    }
}
