//! SMS (短信营销, M-4). Chinese providers send only texts of templates they approved, with a
//! signature (签名) they approved; a text is the template's code and the values of its
//! variables. So an SMS template here (`sms_template`) names the provider's template, keeps its
//! content (`${name}` variables) to preview and count, and says what each variable merges
//! (`name={{ recipient.salutation }}`, one per line). A mailing with the `sms` channel sends it
//! to each recipient's mobile through the same outbox consumer and delivery rows as mail.
//!
//! Providers sit behind [`Provider`]; Alibaba Cloud's ([`aliyun`]) is the one implemented.

pub mod aliyun;

use std::pin::Pin;

use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::mail::smtp::Failure;

/// The entity of SMS templates (短信模板).
pub const TEMPLATE: &str = "sms_template";
/// The field of a recipient with their mobile number.
pub const MOBILE: &str = "mobile";

/// Characters of a text sent as one message; a longer text goes in parts of [`PART`].
const SINGLE: usize = 70;
const PART: usize = 67;

/// How many messages a provider bills for a text: one up to 70 characters (Chinese or not),
/// else one per 67.
pub fn segments(text: &str) -> usize {
    let n = text.chars().count();
    if n <= SINGLE { 1 } else { n.div_ceil(PART) }
}

/// One text to send: the provider's template and its variables' values.
#[derive(Debug, Clone, Serialize)]
pub struct Text {
    pub to: String,
    pub template: String,
    pub params: Map<String, Json>,
}

/// What sending one text comes to: the provider's receipt, or why not.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<String, Failure>> + Send + 'a>>;

/// An SMS provider's API.
pub trait Provider: Send + Sync {
    fn send<'a>(&'a self, text: &'a Text) -> Sending<'a>;
}

/// The provider settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "aliyun")]
    pub provider: String,
    #[serde(default = "endpoint")]
    pub endpoint: String,
    pub access_key_id: String,
    /// Absent in a change: the saved one stays; empty: none.
    #[serde(default, skip_serializing)]
    pub access_key_secret: Option<String>,
    /// The approved signature (签名) texts are sent under.
    pub sign_name: String,
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
}

fn aliyun() -> String {
    "aliyun".into()
}

fn endpoint() -> String {
    "https://dysmsapi.aliyuncs.com/".into()
}

fn default_rate() -> u32 {
    10
}

impl Settings {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.provider != "aliyun" {
            errors.push(FieldError::new("provider", "invalid_option", "one of [\"aliyun\"]"));
        }
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            errors.push(FieldError::new("endpoint", "invalid_url", "the provider's web address"));
        }
        if self.access_key_id.trim().is_empty() {
            errors.push(FieldError::new("access_key_id", "required", "the AccessKey ID"));
        }
        if self.sign_name.trim().is_empty() {
            errors.push(FieldError::new("sign_name", "required", "the approved signature"));
        }
        if !(1..=1000).contains(&self.rate_per_second) {
            errors.push(FieldError::new("rate_per_second", "out_of_range", "from 1 to 1000 texts a second"));
        }
        errors
    }

    /// The provider these settings reach.
    pub fn provider(&self) -> Result<Box<dyn Provider>, Failure> {
        Ok(Box::new(aliyun::Aliyun::new(self.clone())?))
    }
}

impl crate::settings::Checked for Settings {
    fn problems(&self) -> Vec<FieldError> {
        self.check()
    }

    fn secret(&self) -> Option<&str> {
        self.access_key_secret.as_deref()
    }
}

const KIND: crate::settings::Kind = crate::settings::Kind { name: "sms", secret: "access_key_secret" };

pub async fn load(app: &App) -> ApiResult<Option<Settings>> {
    KIND.load(app).await
}

/// `GET /api/v1/admin/sms`
pub async fn get(app: &App, principal: &Principal) -> ApiResult<Json> {
    KIND.shown(app, principal).await
}

/// `PUT /api/v1/admin/sms`: checks and saves the settings; the secret is sealed.
pub async fn put(app: &App, principal: &Principal, body: &Json) -> ApiResult<Json> {
    KIND.put::<Settings>(app, principal, body).await
}

pub(crate) fn not_configured() -> ApiError {
    ApiError::NotReady { code: "sms_not_configured", message: "no SMS provider is set up yet".into() }
}

/// Whether a text is a mainland mobile number (with or without +86).
pub(crate) fn mobile(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = digits.strip_prefix("+86").unwrap_or(&digits).to_owned();
    (digits.len() == 11 && digits.starts_with('1') && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// `POST /api/v1/admin/sms/test`: sends one text of a template to a number and says what the
/// provider answered.
pub async fn test(app: &App, principal: &Principal, body: &Json) -> ApiResult<Json> {
    principal.require_admin()?;
    let to = body["to"]
        .as_str()
        .and_then(mobile)
        .ok_or_else(|| ApiError::field("to", "invalid_phone", "a mainland mobile number"))?;
    let template = body["template"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::field("template", "required", "the provider's template code"))?;
    let params = body["params"].as_object().cloned().unwrap_or_default();
    let settings = load(app).await?.ok_or_else(not_configured)?;
    let text = Text { to, template: template.to_owned(), params };
    let refused = |f: Failure| ApiError::Upstream { code: "sms_refused", message: f.answer().to_owned() };
    let receipt = settings.provider().map_err(refused)?.send(&text).await.map_err(refused)?;
    Ok(json!({"sent": true, "answer": receipt}))
}

/// An SMS template ready to merge: its code, its content and each variable's merge.
pub struct Template {
    code: String,
    content: String,
    env: Environment<'static>,
    variables: Vec<String>,
}

impl Template {
    /// From a template record's values; an error names the field and line.
    pub fn new(code: &str, content: &str, params: &str) -> ApiResult<Self> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(200_000));
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let mut variables = Vec::new();
        for (line, text) in params.lines().enumerate().filter(|(_, t)| !t.trim().is_empty()) {
            let Some((name, merge)) = text.split_once('=') else {
                return Err(ApiError::field("params", "invalid_template", format!("line {}: `name=value`", line + 1)));
            };
            let name = name.trim().to_owned();
            env.add_template_owned(name.clone(), merge.trim().to_owned())
                .map_err(|e| ApiError::field("params", "invalid_template", format!("line {}: {e}", line + 1)))?;
            variables.push(name);
        }
        Ok(Template { code: code.trim().to_owned(), content: content.to_owned(), env, variables })
    }

    /// The text for one recipient, and the content as they will read it (to count and keep).
    pub fn render(&self, to: String, data: &Json) -> Result<(Text, String), String> {
        let context = minijinja::Value::from(minijinja::value::Serde(data));
        let mut params = Map::new();
        let mut read = self.content.clone();
        for name in &self.variables {
            let value =
                self.env.get_template(name).and_then(|t| t.render(&context)).map_err(|e| format!("{name}: {e}"))?;
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            read = read.replace(&format!("${{{name}}}"), &value);
            params.insert(name.clone(), json!(value));
        }
        Ok((Text { to, template: self.code.clone(), params }, read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_billed_as_providers_count() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"短".repeat(70)), 1);
        assert_eq!(segments(&"短".repeat(71)), 2);
        assert_eq!(segments(&"短".repeat(134)), 2);
        assert_eq!(segments(&"短".repeat(135)), 3);
        assert_eq!(segments(&"a".repeat(70)), 1, "Latin letters count the same");
    }

    #[test]
    fn numbers_and_merges() {
        assert_eq!(mobile("+86 138-0013-8000").as_deref(), Some("13800138000"));
        assert_eq!(mobile("010-12345678"), None);
        let template =
            Template::new("SMS_1", "${name}您好，${product}上市", "name={{ recipient.salutation }}\nproduct=新品")
                .unwrap();
        let (text, read) =
            template.render("13800138000".into(), &json!({"recipient": {"salutation": "张先生"}})).unwrap();
        assert_eq!(read, "张先生您好，新品上市");
        assert_eq!(text.params, *json!({"name": "张先生", "product": "新品"}).as_object().unwrap());
        assert!(Template::new("SMS_1", "x", "no equals sign").is_err());
    }
}
