//! Single sign-on (I-2) with a standard OpenID Connect provider — the company's identity
//! provider or the ERP's: the authorization code flow with PKCE. A user is matched by e-mail
//! or made on their first sign-in, with roles from the provider's groups and a department
//! from a claim; passwords can be turned off for everyone but one break-glass
//! administrator. The settings live in the setting `sso`, the client secret sealed.

mod flow;
pub mod screens;
mod token;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

const SETTING: &str = "sso";

/// How sign-in through the identity provider is set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub enabled: bool,
    /// The provider's issuer; its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Write-only: absent in a change, the saved one stays.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back; `<public url>/sso/callback` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// What is asked of the provider; the claims read are `email`, `name`,
    /// `preferred_username`, the groups' and the department's.
    #[serde(default = "scopes")]
    pub scopes: String,
    /// The claim listing the user's groups, and the role each group gives.
    #[serde(default = "groups_claim")]
    pub groups_claim: String,
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// The role of a new user whose groups give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// The claim naming the user's department (its name, as in the department tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_claim: Option<String>,
    /// Whether passwords sign in; when not, only the break-glass administrator's does.
    #[serde(default = "yes")]
    pub local_login: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

fn scopes() -> String {
    "openid email profile".into()
}

fn groups_claim() -> String {
    "groups".into()
}

fn yes() -> bool {
    true
}

/// The settings and the client secret, opened; `None` while single sign-on was never set up.
async fn load(app: &App) -> ApiResult<Option<(Settings, Option<String>)>> {
    let Some(stored) = crm_store::settings::setting(&app.db, SETTING).await? else { return Ok(None) };
    let secret = stored["sealed_secret"].as_str().and_then(|s| app.secrets.open(s));
    let mut plain = stored;
    if let Some(map) = plain.as_object_mut() {
        map.remove("sealed_secret");
    }
    let settings = serde_json::from_value(plain).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Some((settings, secret)))
}

/// The settings when single sign-on is on.
pub(crate) async fn enabled(app: &App) -> ApiResult<Option<(Settings, Option<String>)>> {
    Ok(load(app).await?.filter(|(s, _)| s.enabled))
}

/// Whether a password may sign in this login: always, unless single sign-on is on with
/// passwords turned off and the login is not the break-glass administrator's.
pub async fn password_allowed(app: &App, login: &str) -> ApiResult<bool> {
    Ok(match enabled(app).await? {
        Some((settings, _)) if !settings.local_login => settings.break_glass.as_deref() == Some(login),
        _ => true,
    })
}

/// `GET /api/v1/admin/sso`: the settings, without the secret (whether one is set instead).
pub async fn get(app: &App, principal: &Principal) -> ApiResult<Json> {
    principal.require_admin()?;
    Ok(match load(app).await? {
        Some((settings, secret)) => {
            let mut json = serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.into()))?;
            json["client_secret_set"] = json!(secret.is_some());
            json
        }
        None => json!({"enabled": false, "client_secret_set": false}),
    })
}

/// `PUT /api/v1/admin/sso`: checked before it is kept — the roles exist, the provider answers
/// its discovery document when turned on, and passwords are turned off only with a
/// break-glass administrator left to sign in.
pub async fn put(app: &App, principal: &Principal, mut settings: Settings) -> ApiResult<Json> {
    principal.require_admin()?;
    let catalog = app.catalog();
    let mut errors = Vec::new();
    for (group, role) in &settings.roles {
        if catalog.role(role).is_none() {
            errors.push(FieldError::new(format!("roles/{group}"), "not_found", format!("no role `{role}`")));
        }
    }
    if let Some(role) = settings.default_role.as_deref().filter(|r| catalog.role(r).is_none()) {
        errors.push(FieldError::new("default_role", "not_found", format!("no role `{role}`")));
    }
    if !settings.local_login {
        let admin = match settings.break_glass.as_deref() {
            Some(login) => flow::is_admin_login(app, login).await?,
            None => false,
        };
        if !admin {
            let message = "turning passwords off needs a break-glass administrator who still signs in with one";
            errors.push(FieldError::new("break_glass", "required", message));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let previous = load(app).await?;
    let secret = match settings.client_secret.take().filter(|s| !s.is_empty()) {
        Some(secret) => Some(secret),
        None => previous.and_then(|(_, secret)| secret),
    };
    if settings.enabled {
        flow::discover(&settings.issuer)
            .await
            .map_err(|message| ApiError::Upstream { code: "sso_unreachable", message })?;
    }
    let mut stored = serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(secret) = &secret {
        stored["sealed_secret"] = json!(app.secrets.seal(secret));
    }
    crm_store::settings::set_setting(&app.db, SETTING, stored, principal.user_id, app.now()).await?;
    get(app, principal).await
}
