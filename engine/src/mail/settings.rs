//! The mail server an administrator sets up (邮件服务器设置): where it is, how to reach it
//! safely, the login, the sender and how many mails a second it takes. The password is kept
//! sealed with the node's secret key and never given back: the API says only whether one is
//! set.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{Address, Message};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::smtp::{Connection, Failure, answer_of};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};

/// How a connection to the server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain SMTP, for a relay on the same machine or network.
    None,
    /// STARTTLS on the submission port (587), required.
    #[default]
    Starttls,
    /// TLS from the first byte (465).
    Tls,
}

/// The settings as the administrator writes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: String,
    /// Absent in a change: the saved one stays; empty: none.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    pub from_address: String,
    #[serde(default)]
    pub from_name: String,
    /// Mails a second the server is given at most.
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    /// Whether marketing mails count their opens and clicks (see [`super::tracking`]).
    #[serde(default)]
    pub tracking: bool,
}

fn default_rate() -> u32 {
    10
}

/// The most mails a second the engine sends, whatever the settings say.
const MOST_RATE: u32 = 2000;

impl Settings {
    /// The sender as a mailbox.
    pub fn from(&self) -> ApiResult<Mailbox> {
        let address: Address = self.from_address.parse().map_err(|_| {
            ApiError::field("from_address", "invalid_email", "the sender address is not an e-mail address")
        })?;
        Ok(Mailbox::new(Some(self.from_name.clone()).filter(|n| !n.trim().is_empty()), address))
    }

    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let host = self.host.trim();
        if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new("host", "invalid_host", "the server's host name or address"));
        }
        if self.port == 0 {
            errors.push(FieldError::new("port", "out_of_range", "a port from 1 to 65535"));
        }
        if let Err(ApiError::Invalid(mut found)) = self.from() {
            errors.append(&mut found);
        }
        if !(1..=MOST_RATE).contains(&self.rate_per_second) {
            errors.push(FieldError::new(
                "rate_per_second",
                "out_of_range",
                format!("from 1 to {MOST_RATE} mails a second"),
            ));
        }
        errors
    }
}

impl crate::settings::Checked for Settings {
    fn problems(&self) -> Vec<FieldError> {
        self.check()
    }

    fn secret(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

/// Where the settings are kept; the password is their secret.
const KIND: crate::settings::Kind = crate::settings::Kind { name: "mail", secret: "password" };

/// The settings with the password opened; `None` while nobody set up a server.
pub async fn load(app: &App) -> ApiResult<Option<Settings>> {
    KIND.load(app).await
}

/// `GET /api/v1/admin/mail`: the settings without the password, and whether one is set.
pub async fn get(app: &App, principal: &Principal) -> ApiResult<Json> {
    KIND.shown(app, principal).await
}

/// `PUT /api/v1/admin/mail`: checks and saves the settings; the password is sealed.
pub async fn put(app: &App, principal: &Principal, body: &Json) -> ApiResult<Json> {
    KIND.put::<Settings>(app, principal, body).await
}

/// `POST /api/v1/admin/mail/test`: sends a test mail to `to` with the saved settings and says
/// what the server answered.
pub async fn test(app: &App, principal: &Principal, body: &Json) -> ApiResult<Json> {
    principal.require_admin()?;
    let to: Address = body
        .get("to")
        .and_then(Json::as_str)
        .and_then(|to| to.trim().parse().ok())
        .ok_or_else(|| ApiError::field("to", "invalid_email", "the address to send the test mail to"))?;
    let settings = load(app).await?.ok_or_else(not_configured)?;
    let message = Message::builder()
        .from(settings.from()?)
        .to(Mailbox::new(None, to))
        .subject("测试邮件 Test mail")
        .header(ContentType::TEXT_PLAIN)
        .body("邮件服务器设置可用。\nThe mail server settings work.\n".to_owned())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut connection = Connection::open(&settings).await.map_err(refused)?;
    let response = connection.send(&message).await.map_err(refused)?;
    connection.close().await;
    Ok(json!({"sent": true, "answer": answer_of(&response)}))
}

pub(super) fn not_configured() -> ApiError {
    ApiError::NotReady { code: "mail_not_configured", message: "no mail server is set up yet".into() }
}

/// A failure to send, as what the server (or the network) said.
fn refused(failure: Failure) -> ApiError {
    ApiError::Upstream { code: "mail_refused", message: failure.answer().to_owned() }
}
