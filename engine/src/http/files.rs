//! Handlers of imports and exports: an uploaded file previewed or imported, the report of an
//! import's failed rows, and a list exported as CSV or XLSX.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_model::Action;
use serde::Deserialize;
use serde_json::{Map, Value as Json_, json};

use super::{ApiPath, ApiQuery};
use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::export::{self, Audience, FileFormat};
use crate::import::{self, MAX_FILE_BYTES, Mode, Options};
use crate::records::ListParams;

/// The largest import request: the file and the few form fields beside it.
pub const IMPORT_UPLOAD_LIMIT: usize = MAX_FILE_BYTES + 1024 * 1024;

/// An upload as posted: the file, and what to do with it.
struct Upload {
    file_name: String,
    bytes: Vec<u8>,
    request: import::Request,
    preview: bool,
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request("invalid_body", error.body_text())
    }
}

/// Reads the parts of an import request, the file at most [`MAX_FILE_BYTES`] long.
async fn read_upload(mut form: Multipart) -> ApiResult<Upload> {
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut mapping = None;
    let (mut mode, mut key, mut unmatched, mut all_or_nothing, mut preview) =
        ("create".to_owned(), None, "report".to_owned(), false, false);
    let flag = |name: &str, text: &str| match text {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::bad_request("invalid_body", format!("`{name}` is true or false, not `{other}`"))),
    };
    while let Some(mut part) = form.next_field().await.map_err(multipart_error)? {
        let name = part.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = part.file_name().unwrap_or_default().to_owned();
            let mut bytes = Vec::new();
            while let Some(chunk) = part.chunk().await.map_err(multipart_error)? {
                if bytes.len() + chunk.len() > MAX_FILE_BYTES {
                    return Err(ApiError::PayloadTooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some((file_name, bytes));
            continue;
        }
        let text = part.text().await.map_err(multipart_error)?;
        match name.as_str() {
            "mapping" if text.trim().is_empty() => {}
            "mapping" => {
                let parsed: Map<String, Json_> = serde_json::from_str(&text).map_err(|e| {
                    ApiError::bad_request("invalid_body", format!("`mapping` is a JSON object of column: field: {e}"))
                })?;
                mapping = Some(parsed);
            }
            "mode" => mode = text,
            "key" => key = Some(text).filter(|k| !k.is_empty()),
            "unmatched" => unmatched = text,
            "all_or_nothing" => all_or_nothing = flag("all_or_nothing", &text)?,
            "preview" => preview = flag("preview", &text)?,
            other => return Err(ApiError::bad_request("invalid_body", format!("no form field `{other}`"))),
        }
    }
    let (file_name, bytes) =
        file.ok_or_else(|| ApiError::bad_request("import_no_file", "send the file as the form field `file`"))?;
    let create_unmatched = match unmatched.as_str() {
        "create" => true,
        "report" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("`unmatched` is create or report, not `{other}`"),
            ));
        }
    };
    let mode = match mode.as_str() {
        "create" => Mode::Create,
        "update" => Mode::Update { create_unmatched },
        "skip" => Mode::Skip,
        "skip_duplicates" => Mode::SkipDuplicates,
        other => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("`mode` is create, update, skip or skip_duplicates, not `{other}`"),
            ));
        }
    };
    let options = Options { mode, key, all_or_nothing };
    Ok(Upload { file_name, bytes, request: import::Request { mapping, options }, preview })
}

/// `POST /api/v1/records/{entity}/import`: a preview (`preview=true`), or the import started
/// as a background task.
pub async fn import(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    // A body announced too large is refused before any of it is read.
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > IMPORT_UPLOAD_LIMIT) {
        return Err(ApiError::PayloadTooLarge);
    }
    p.entity(&app.catalog(), &entity, Action::Import)?;
    let form = form.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let upload = read_upload(form).await?;
    let Upload { file_name, bytes, request, preview } = upload;
    let sheet = tokio::task::spawn_blocking(move || import::read::read(&file_name, &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let plan = import::plan(&app, &p, &entity, sheet, request).await?;
    if preview {
        return Ok(Json(import::preview(&app, &p, &plan).await?).into_response());
    }
    let task = import::start(&app, &p, plan).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"task": task}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    locale: Option<String>,
}

/// `GET /api/v1/tasks/{id}/report.csv`: the failed rows of an import, with their reasons.
pub async fn report(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    let locale = if params.locale.as_deref() == Some("en") { "en" } else { "zh-CN" };
    let body = import::report(&app, &p, id, locale).await?;
    Ok(file_response(body, FileFormat::Csv, &format!("import-{id}-failed.csv")))
}

/// A file to download. A Chinese name goes as UTF-8 (`filename*`), which browsers prefer,
/// with an ASCII stand-in for those that do not read it.
pub fn file_response(body: Vec<u8>, format: FileFormat, name: &str) -> Response {
    let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", crate::screens::encode(name));
    ([(header::CONTENT_TYPE, format.content_type().to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

/// The query of an export: its format and the list's filter, sort and fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    format: String,
    filter: Option<String>,
    sort: Option<String>,
    fields: Option<String>,
}

/// `GET /api/v1/records/{entity}/export?format=xlsx|csv`
pub async fn export(
    State(app): State<AppState>,
    p: Principal,
    ApiPath(entity): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let format = FileFormat::parse(&q.format)?;
    let params = ListParams { filter: q.filter, sort: q.sort, fields: q.fields, ..ListParams::default() };
    let audience = Audience { principal: &p, locale: "zh-CN", offset: crate::schedule::business_offset() };
    let (body, name) = export::export(&app, &audience, &entity, params, format).await?;
    Ok(file_response(body, format, &name))
}
