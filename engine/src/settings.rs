//! Settings an administrator keeps in the admin screens (the mail server, the SMS provider):
//! one JSON document per name, with one secret field (a password, an access key secret) kept
//! sealed by the node's secret key and never given back — the API says only whether it is set.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

/// Settings as an administrator writes them: what is wrong with them, and their secret.
pub trait Checked: Serialize + DeserializeOwned {
    /// What is wrong, per field; empty when they may be saved.
    fn problems(&self) -> Vec<FieldError>;
    /// The secret as written: absent keeps the saved one, empty clears it.
    fn secret(&self) -> Option<&str>;
}

/// A kind of settings: where they are kept and which field is the secret.
pub struct Kind {
    /// The name they are kept under.
    pub name: &'static str,
    /// The secret field as the administrator writes it.
    pub secret: &'static str,
}

impl Kind {
    fn sealed_field(&self) -> String {
        format!("{}_sealed", self.secret)
    }

    /// The settings with the secret opened (in its field); `None` while nobody saved them.
    pub async fn load<T: DeserializeOwned>(&self, app: &App) -> ApiResult<Option<T>> {
        let Some(mut stored) = crm_store::settings::setting(&app.db, self.name).await? else { return Ok(None) };
        let sealed = stored.as_object_mut().and_then(|o| o.remove(&self.sealed_field()));
        if let Some(sealed) = sealed.as_ref().and_then(Json::as_str) {
            let opened = app.secrets.open(sealed).ok_or_else(|| ApiError::Upstream {
                code: "secret_unreadable",
                message: format!(
                    "the saved {} cannot be read with this server's secret key: enter it again",
                    self.secret
                ),
            })?;
            stored[self.secret] = json!(opened);
        }
        serde_json::from_value(stored)
            .map(Some)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("the saved {} settings: {e}", self.name)))
    }

    /// The settings without the secret, whether it is set, and whether there are any.
    pub async fn shown(&self, app: &App, principal: &Principal) -> ApiResult<Json> {
        principal.require_admin()?;
        let Some(mut stored) = crm_store::settings::setting(&app.db, self.name).await? else {
            return Ok(json!({"configured": false}));
        };
        let sealed = stored.as_object_mut().and_then(|o| o.remove(&self.sealed_field()));
        stored["configured"] = json!(true);
        stored[format!("{}_set", self.secret)] = json!(sealed.is_some());
        Ok(stored)
    }

    /// `PUT`: reads, checks and saves the settings an administrator sent; the secret is sealed.
    pub async fn put<T: Checked>(&self, app: &App, principal: &Principal, body: &Json) -> ApiResult<Json> {
        principal.require_admin()?;
        let settings: T = serde_json::from_value(body.clone())
            .map_err(|e| ApiError::bad_request("invalid_body", format!("the {} settings: {e}", self.name)))?;
        let errors = settings.problems();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        self.save(app, principal, &settings, settings.secret()).await
    }

    /// Saves checked settings. The secret: absent in them keeps the saved one, empty clears
    /// it, anything else is sealed.
    pub async fn save<T: Serialize>(
        &self,
        app: &App,
        principal: &Principal,
        settings: &T,
        secret: Option<&str>,
    ) -> ApiResult<Json> {
        principal.require_admin()?;
        let mut stored = serde_json::to_value(settings).map_err(|e| ApiError::Internal(e.into()))?;
        if let Some(object) = stored.as_object_mut() {
            object.remove(self.secret);
        }
        let sealed = match secret {
            Some("") => None,
            Some(secret) => Some(json!(app.secrets.seal(secret))),
            None => crm_store::settings::setting(&app.db, self.name)
                .await?
                .and_then(|mut old| old.as_object_mut().and_then(|o| o.remove(&self.sealed_field()))),
        };
        if let Some(sealed) = sealed {
            stored[self.sealed_field()] = sealed;
        }
        crm_store::settings::set_setting(&app.db, self.name, stored, principal.user_id, app.now()).await?;
        self.shown(app, principal).await
    }
}
