//! The company's details in the studio (公司信息): its name and logo, shown in the top bar,
//! on the login page and on printouts; and the logo itself, served to anyone.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::studio::unprocessable;
use super::{Viewer, html, redirect_with};
use crate::app::{App, AppState};
use crate::brand::{self, Change};
use crate::error::{ApiError, ApiResult};

const PATH: &str = "/studio/company";

fn page(app: &App, viewer: &Viewer, name: &str, errors: Vec<String>) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let values = json!({"name": name, "errors": errors, "max_kb": brand::MAX_LOGO_BYTES / 1024});
    html("studio_company.html", viewer.page(&app.catalog(), None, &viewer.text("company.title"), values))
}

/// `GET /studio/company`
pub async fn show(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let shown = brand::shown(&app, &viewer.principal).await?;
    page(&app, &viewer, shown.name.as_deref().unwrap_or_default(), Vec::new())
}

/// `POST /studio/company` (multipart: `name`, `logo`, `remove_logo`): saved and back, or the
/// form again with what is wrong and nothing saved.
pub async fn save(State(app): State<AppState>, viewer: Viewer, change: Change) -> ApiResult<Response> {
    super::check_csrf(change.csrf.as_deref(), &viewer.csrf)?;
    match brand::save(&app, &viewer.principal, &change).await {
        Ok(_) => Ok(redirect_with(PATH, Some(&viewer.text("studio.applied")))),
        Err(ApiError::Invalid(errors)) => {
            let said = errors.iter().map(|e| viewer.error_text(e)).collect();
            Ok(unprocessable(page(&app, &viewer, &change.name, said)?))
        }
        Err(e) => Err(e),
    }
}

/// `GET /brand/logo`: the saved logo; its address changes with it, so it may be kept long.
pub async fn logo(State(app): State<AppState>) -> ApiResult<Response> {
    Ok(match brand::logo(&app).await? {
        Some((kind, bytes)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}
