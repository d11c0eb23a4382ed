//! Handlers of `/api/v1/kb/...`, and the reading of an import's multipart form, which the
//! knowledge-base page posts too.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::Principal;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::kb::import::{self, MAX_FILE_BYTES, MAX_FILES, Upload};

/// An import form: the files, the category they go in, and (from a page) its CSRF token.
pub struct ImportForm {
    pub files: Vec<Upload>,
    pub category: Option<String>,
    pub csrf: Option<String>,
}

/// A multipart form that cannot be read.
pub(crate) fn broken(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_body", format!("the multipart form cannot be read: {e}"))
}

impl<S: Send + Sync> FromRequest<S> for ImportForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut multipart = Multipart::from_request(request, state).await.map_err(|e| broken(e.body_text()))?;
        let mut form = ImportForm { files: Vec::new(), category: None, csrf: None };
        while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
            match field.name().unwrap_or_default() {
                "files" => {
                    if form.files.len() == MAX_FILES {
                        return Err(ApiError::field("files", "too_many", format!("at most {MAX_FILES} files at once")));
                    }
                    let name = field.file_name().unwrap_or_default().to_owned();
                    let mut bytes = Vec::new();
                    let mut too_large = false;
                    // Read by chunks so that a file over the limit is noted, not held whole.
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        if bytes.len() + chunk.len() > MAX_FILE_BYTES {
                            too_large = true;
                            break;
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    // A browser sends an empty part when no file was chosen.
                    if !(name.is_empty() && bytes.is_empty()) {
                        form.files.push(Upload { name, bytes, too_large });
                    }
                }
                "category" => form.category = Some(field.text().await.map_err(broken)?),
                "_csrf" => form.csrf = Some(field.text().await.map_err(broken)?),
                other => return Err(ApiError::bad_request("invalid_body", format!("unknown part `{other}`"))),
            }
        }
        Ok(form)
    }
}

/// `POST /api/v1/kb/import` (multipart: `files`, `category`)
pub async fn import(State(app): State<AppState>, p: Principal, form: ImportForm) -> ApiResult<Response> {
    let ids = import::import(&app, &p, form.category.as_deref(), &form.files).await?;
    Ok((StatusCode::CREATED, Json(json!({"ids": ids}))).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticlesParams {
    q: Option<String>,
    category: Option<uuid::Uuid>,
}

/// `GET /api/v1/kb/articles?q=&category=`: what the knowledge base shows the caller, as the
/// 查找知识 box of a service request asks it.
pub async fn articles(
    State(app): State<AppState>,
    p: Principal,
    super::ApiQuery(params): super::ApiQuery<ArticlesParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let text = params.q.unwrap_or_default();
    if text.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_query", "`q` is at most 100 characters"));
    }
    let tree = crate::kb::tree(&app, &p).await?;
    let found = crate::kb::articles(&app, &p, &tree, params.category, &text).await?;
    Ok(Json(json!({"data": found})))
}
