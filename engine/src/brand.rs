//! The company the product serves, as its administrator names it (公司信息): its name and
//! logo in the top bar, on the login page, on printouts and in mails. Kept as a setting; the
//! configuration's name and logo address stand until an administrator saves their own.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Multipart, Request};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::kb::broken;

/// Where the saved logo is served, to anyone: the login page shows it.
pub const LOGO_PATH: &str = "/brand/logo";
/// The largest logo kept; a top-bar image needs far less.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
const MAX_NAME_CHARS: usize = 100;
const SETTING: &str = "company";
/// How long a node shows the brand it read before reading it again: another node's change
/// shows within this.
const KEPT_FOR: Duration = Duration::from_secs(10);

/// The setting as kept: the name, and the logo's bytes with their type.
#[derive(Serialize, Deserialize, Default)]
struct Stored {
    name: Option<String>,
    logo_type: Option<String>,
    logo: Option<String>,
}

/// What pages, printouts and mails show: the name and the address of the logo.
#[derive(Serialize, Clone, Default, Debug, PartialEq)]
pub struct Brand {
    pub name: Option<String>,
    pub logo: Option<String>,
}

/// The brand as this node last read it.
#[derive(Default)]
pub struct Cache(Mutex<Option<(Instant, Arc<Brand>)>>);

impl Cache {
    fn forget(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

async fn stored(app: &App) -> ApiResult<Stored> {
    let json = crm_store::settings::setting(&app.db, SETTING).await?;
    Ok(json.and_then(|j| serde_json::from_value(j).ok()).unwrap_or_default())
}

/// The brand to show, from the setting or else the configuration.
pub async fn brand(app: &App) -> ApiResult<Arc<Brand>> {
    if let Some((read, brand)) = app.brand.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && read.elapsed() < KEPT_FOR
    {
        return Ok(brand.clone());
    }
    let stored = stored(app).await?;
    let logo = match &stored.logo {
        // The address changes with the picture, so browsers may keep it for long.
        Some(data) => {
            let mut hasher = DefaultHasher::new();
            data.hash(&mut hasher);
            Some(format!("{LOGO_PATH}?v={:016x}", hasher.finish()))
        }
        None => app.config.company_logo.clone(),
    };
    let brand = Arc::new(Brand { name: stored.name.or_else(|| app.config.company_name.clone()), logo });
    *app.brand.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), brand.clone()));
    Ok(brand)
}

/// The saved logo: its type and bytes.
pub async fn logo(app: &App) -> ApiResult<Option<(String, Vec<u8>)>> {
    let stored = stored(app).await?;
    Ok(match (stored.logo_type, stored.logo) {
        (Some(kind), Some(data)) => STANDARD.decode(data).ok().map(|bytes| (kind, bytes)),
        _ => None,
    })
}

/// The type of an image a browser shows safely, by its first bytes: PNG, JPEG, GIF or WebP.
/// SVG is refused, as it may carry scripts.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// A change of the company's details as a form or the API sends it: the name, a new logo,
/// or the logo taken away.
#[derive(Default)]
pub struct Change {
    pub name: String,
    pub logo: Option<Vec<u8>>,
    pub remove_logo: bool,
    /// The page's CSRF token, when a page sent it.
    pub csrf: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for Change {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut multipart = Multipart::from_request(request, state).await.map_err(|e| broken(e.body_text()))?;
        let mut change = Change::default();
        while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
            match field.name().unwrap_or_default() {
                "logo" => {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        if bytes.len() + chunk.len() > MAX_LOGO_BYTES {
                            return Err(ApiError::field("logo", "logo_too_large", "the logo is larger than 256 KB"));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    // A browser sends an empty part when no file was chosen.
                    change.logo = Some(bytes).filter(|b| !b.is_empty());
                }
                "name" => change.name = field.text().await.map_err(broken)?,
                "remove_logo" => {
                    change.remove_logo = matches!(field.text().await.map_err(broken)?.as_str(), "true" | "on")
                }
                "_csrf" => change.csrf = Some(field.text().await.map_err(broken)?),
                other => return Err(ApiError::bad_request("invalid_body", format!("unknown part `{other}`"))),
            }
        }
        Ok(change)
    }
}

/// `GET /api/v1/admin/company`
pub async fn shown(app: &App, principal: &Principal) -> ApiResult<Brand> {
    principal.require_admin()?;
    Ok((*brand(app).await?).clone())
}

/// `PUT /api/v1/admin/company`: checks and saves a change; nothing is saved if any part is
/// wrong.
pub async fn save(app: &App, principal: &Principal, change: &Change) -> ApiResult<Brand> {
    principal.require_admin()?;
    let name = change.name.trim();
    let mut errors = Vec::new();
    if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new("name", "too_long", format!("at most {MAX_NAME_CHARS} characters")));
    }
    let logo_type = change.logo.as_deref().map(image_type);
    if logo_type == Some(None) {
        errors.push(FieldError::new("logo", "not_an_image", "the logo must be a PNG, JPEG, GIF or WebP picture"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let mut stored = stored(app).await?;
    stored.name = Some(name.to_owned()).filter(|n| !n.is_empty());
    if let (Some(bytes), Some(Some(kind))) = (&change.logo, logo_type) {
        stored.logo_type = Some(kind.to_owned());
        stored.logo = Some(STANDARD.encode(bytes));
    } else if change.remove_logo {
        stored.logo_type = None;
        stored.logo = None;
    }
    let json = serde_json::to_value(&stored).map_err(|e| ApiError::Internal(e.into()))?;
    crm_store::settings::set_setting(&app.db, SETTING, json, principal.user_id, app.now()).await?;
    app.brand.forget();
    shown(app, principal).await
}

#[cfg(test)]
mod tests {
    use super::image_type;

    #[test]
    fn only_pictures_a_browser_shows_safely_are_logos() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b""), None);
    }
}
