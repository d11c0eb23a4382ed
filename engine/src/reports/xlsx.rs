//! A report's table as an Excel workbook: the groups as text, counts and amounts as numbers
//! Excel can add up, amounts with their decimals.

use axum::response::Response;
use serde_json::Value as Json;

use crate::error::ApiResult;
use crate::export::{FileFormat, Out, xlsx_bytes};
use crate::http::file_response;

/// The workbook of a report's result as a download named after the report.
pub fn download(result: &Json, locale: &str) -> ApiResult<Response> {
    Ok(file_response(workbook(result, locale)?, FileFormat::Xlsx, &file_name(result, locale)))
}

/// The workbook of a report's result, headed in `locale`.
fn workbook(result: &Json, locale: &str) -> ApiResult<Vec<u8>> {
    let text = |labels: &Json| labels[locale].as_str().unwrap_or_default().to_owned();
    let groups = result["groups"].as_array().map_or(&[][..], Vec::as_slice);
    let measures = result["measures"].as_array().map_or(&[][..], Vec::as_slice);
    let header: Vec<String> = groups.iter().chain(measures).map(|c| text(&c["label"])).collect();
    let rows: Vec<Vec<Out>> = result["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let keys = row["labels"].as_array().into_iter().flatten().map(|l| Out::Text(text(l)));
            keys.chain(row["values"].as_array().into_iter().flatten().map(cell)).collect()
        })
        .collect();
    xlsx_bytes(&header, &rows)
}

/// A measured value: a count as a whole number, an amount (an exact decimal string) with as
/// many decimals as it has.
fn cell(value: &Json) -> Out {
    match value {
        Json::Number(n) => n.as_f64().map_or(Out::Blank, |n| Out::Number(n, "#,##0")),
        Json::String(s) => match s.parse::<f64>() {
            Ok(n) => {
                let pattern = match s.split_once('.').map_or(0, |(_, d)| d.len()) {
                    0 => "#,##0",
                    1 => "#,##0.0",
                    2 => "#,##0.00",
                    3 => "#,##0.000",
                    _ => "#,##0.0000",
                };
                Out::Number(n, pattern)
            }
            Err(_) => Out::Text(s.clone()),
        },
        _ => Out::Blank,
    }
}

/// The file name of a report's workbook: its label, without characters a file name cannot
/// have.
fn file_name(result: &Json, locale: &str) -> String {
    let label = result["label"][locale].as_str().unwrap_or("report");
    let clean: String =
        label.chars().filter(|c| !matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')).collect();
    format!("{}.xlsx", clean.trim())
}
