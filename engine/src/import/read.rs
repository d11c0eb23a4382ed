//! Reading an uploaded file into a table: CSV (UTF-8 with or without a byte-order mark, or
//! GB18030 as Chinese Excel saves it) or XLSX (the first sheet, its first row the header).
//! A file that is neither, or a broken one, is refused with a code the screens translate.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{ApiError, ApiResult};

/// Largest file an import takes.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;

/// Most data rows one file may have.
pub const MAX_ROWS: usize = 500_000;

/// One cell as the file has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Datetime(NaiveDateTime),
    /// A value the file does not hold: a formula never calculated, an Excel error (`#DIV/0!`).
    Unreadable(Unreadable),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A formula without the value Excel calculated for it.
    Formula,
    /// An error value such as `#DIV/0!`.
    Error,
}

impl Cell {
    /// The cell as text, as a person would read it (for previews and the failed-rows report).
    pub fn text(&self) -> String {
        match self {
            Cell::Empty | Cell::Unreadable(_) => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Number(n) => number_text(*n),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
            Cell::Datetime(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }
}

/// A number without a trailing `.0`, and whole numbers of any size without an exponent.
pub fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// A data row and its number in the file (the header is row 1).
#[derive(Debug, Clone)]
pub struct Row {
    pub number: usize,
    pub cells: Vec<Cell>,
}

/// Something about the file a person should know before importing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Merged cells: the value is the top-left cell's, the others are empty.
    Merged { range: String },
}

/// A file read: its header, its non-empty rows, and notes about it.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<Note>,
}

/// Reads an uploaded file; `name` is the file name the browser sent.
pub fn read(name: &str, bytes: &[u8]) -> ApiResult<Sheet> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let lower = name.to_ascii_lowercase();
    let sheet = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes)?
    } else if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") {
        return Err(refused("import_not_xlsx", "the file is named .xlsx but is not an Excel workbook"));
    } else if lower.ends_with(".xls") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(refused("import_xls", "old .xls workbooks are not read; save the file as .xlsx or CSV"));
    } else if is_binary(bytes) {
        return Err(refused("import_unsupported", "the file is neither CSV nor XLSX"));
    } else {
        read_csv(&decode(bytes)?)?
    };
    if sheet.headers.iter().all(|h| h.is_empty()) {
        return Err(refused("import_no_header", "the file has no header row"));
    }
    if sheet.rows.len() > MAX_ROWS {
        return Err(refused("import_too_many_rows", format!("at most {MAX_ROWS} rows per file")));
    }
    Ok(sheet)
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// Images, archives and other binary files have NUL bytes early on; text never does.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|b| *b == 0)
}

/// The text of a CSV file: UTF-8 (its byte-order mark dropped), else GB18030, which covers
/// GBK, what Excel on a Chinese Windows saves.
fn decode(bytes: &[u8]) -> ApiResult<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
        .ok_or_else(|| refused("import_encoding", "the file is neither UTF-8 nor GB18030/GBK text"))
}

fn read_csv(text: &str) -> ApiResult<Sheet> {
    let first_line = text.lines().next().unwrap_or("");
    // Excel's "Unicode text" and some exports separate with tabs or semicolons.
    let delimiter = [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .filter(|d| first_line.as_bytes().contains(d))
        .unwrap_or(b',');
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut sheet = Sheet::default();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| refused("import_broken", format!("the CSV cannot be read: {e}")))?;
        if i == 0 {
            sheet.headers = record.iter().map(|h| h.trim().to_owned()).collect();
            continue;
        }
        let cells: Vec<Cell> =
            record.iter().map(|c| if c.is_empty() { Cell::Empty } else { Cell::Text(c.to_owned()) }).collect();
        if !cells.iter().all(Cell::is_empty) {
            sheet.rows.push(Row { number: i + 1, cells });
        }
    }
    Ok(sheet)
}

fn read_xlsx(bytes: &[u8]) -> ApiResult<Sheet> {
    let broken = |e: calamine::XlsxError| refused("import_broken", format!("the workbook cannot be read: {e}"));
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(broken)?;
    let first =
        book.sheet_names().first().cloned().ok_or_else(|| refused("import_no_header", "the workbook has no sheet"))?;
    let range = book.worksheet_range(&first).map_err(broken)?;
    let formulas = book.worksheet_formula(&first).map_err(broken)?;
    let merged = book.merge_cells_by_sheet_name(&first).map_err(broken)?;
    let Some((top, left)) = range.start() else { return Ok(Sheet::default()) };
    let mut sheet = Sheet::default();
    for (i, row) in range.rows().enumerate() {
        let at = top + i as u32;
        // Columns left of the used range are empty in every row.
        let mut cells = vec![Cell::Empty; left as usize];
        for (j, data) in row.iter().enumerate() {
            let column = left + j as u32;
            let cell = match data {
                Data::Empty if formulas.get_value((at, column)).is_some_and(|f| !f.is_empty()) => {
                    Cell::Unreadable(Unreadable::Formula)
                }
                other => cell_of(other),
            };
            cells.push(cell);
        }
        if i == 0 {
            sheet.headers = cells.iter().map(|c| c.text().trim().to_owned()).collect();
            continue;
        }
        if !cells.iter().all(Cell::is_empty) {
            sheet.rows.push(Row { number: at as usize + 1, cells });
        }
    }
    sheet.notes =
        merged.iter().map(|d| Note::Merged { range: format!("{}:{}", cell_name(d.start), cell_name(d.end)) }).collect();
    Ok(sheet)
}

fn cell_of(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(text) => Cell::Text(text.clone()),
        Data::Int(n) => Cell::Number(*n as f64),
        Data::Float(n) => Cell::Number(*n),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(moment) => match moment.as_datetime() {
            // A time of midnight is a date as Excel keeps dates.
            Some(dt) if dt.time() == chrono::NaiveTime::MIN => Cell::Date(dt.date()),
            Some(dt) => Cell::Datetime(dt),
            None => Cell::Number(moment.as_f64()),
        },
        Data::DateTimeIso(text) => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .map(Cell::Datetime)
            .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Cell::Date))
            .unwrap_or_else(|_| Cell::Text(text.clone())),
        Data::DurationIso(text) => Cell::Text(text.clone()),
        Data::Error(_) => Cell::Unreadable(Unreadable::Error),
    }
}

/// `(row, column)` from zero as Excel names the cell: `(0, 27)` is `AB1`.
pub fn cell_name((row, column): (u32, u32)) -> String {
    format!("{}{}", column_name(column as usize), row + 1)
}

/// A column from zero as Excel names it: 0 is `A`, 26 is `AA`.
pub fn column_name(column: usize) -> String {
    let mut n = column + 1;
    let mut name = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        name.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_excel_names_them() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(cell_name((2, 27)), "AB3");
    }

    #[test]
    fn gbk_text_is_read() {
        let (bytes, _, _) = encoding_rs::GB18030.encode("客户名称,电话\n北京立友信,010-1234\n");
        let sheet = read("a.csv", &bytes).expect("read");
        assert_eq!(sheet.headers, ["客户名称", "电话"]);
        assert_eq!(sheet.rows[0].cells[0], Cell::Text("北京立友信".into()));
    }

    #[test]
    fn whole_numbers_have_no_fraction() {
        assert_eq!(number_text(1200000.0), "1200000");
        assert_eq!(number_text(12.5), "12.5");
    }
}
