//! A mail template rendered for one recipient. The subject and the body are MiniJinja; the
//! body is HTML and every merged value in it is escaped. What a template can merge:
//!
//! - `recipient`: the recipient's fields as the sender reads them, by name, as displayed
//!   (choices by their labels, money grouped), e.g. `{{ recipient.name }}`, and
//!   `recipient.salutation` (张总, 王先生: see [`salutation`]);
//! - the same record under its entity's name (`contact`, `customer`, `lead`), and the records
//!   its lookups point at under theirs (a contact's `customer`);
//! - `owner`: the recipient's owner (name, phone, mobile, email, title ...);
//! - `campaign`: the mailing's campaign, when it has one, and `survey_url`, the recipient's own
//!   link to the campaign's survey when it asks one;
//! - `company.name`, and `unsubscribe_url`, the recipient's signed link.
//!
//! Records are read as the mailing's sender, so a field hidden from them is not in the mail.

use std::collections::HashMap;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use super::OPT_OUT;
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records;
use crate::screens::Viewer;
use crate::screens::view;

/// A mail is one page: fewer instructions than a screen.
const MAIL_FUEL: u64 = 2_000_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // The body is HTML, the subject a header: each is escaped for what it is.
    env.set_auto_escape_callback(|name| if name == "body" { AutoEscape::Html } else { AutoEscape::None });
    env.set_fuel(Some(MAIL_FUEL));
    // A field the sender may not see, or left empty, merges as nothing.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env
}

/// A subject and body that compile, ready to render for each recipient.
pub struct Template {
    env: Environment<'static>,
}

impl Template {
    /// Compiles both; an error names the part (`name` for the subject, `body`) and the line.
    pub fn new(subject: &str, body: &str) -> ApiResult<Self> {
        let mut env = environment();
        env.add_template_owned("subject", subject.to_owned())
            .map_err(|e| ApiError::field("name", "invalid_template", located(&e)))?;
        env.add_template_owned("body", body.to_owned())
            .map_err(|e| ApiError::field("body", "invalid_template", located(&e)))?;
        Ok(Template { env })
    }

    /// The subject (one line) and the HTML body for one recipient's data.
    pub fn render(&self, data: &Json) -> Result<(String, String), String> {
        let context = Value::from(minijinja::value::Serde(data));
        let render = |name: &str| {
            self.env.get_template(name).and_then(|t| t.render(&context)).map_err(|e| match e.kind() {
                ErrorKind::OutOfFuel => format!("{name}: the template runs too long"),
                _ => format!("{name}: {}", located(&e)),
            })
        };
        let subject = render("subject")?;
        // A header is one line: line breaks a merged value brought are spaces.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((subject, render("body")?))
    }
}

fn located(error: &Error) -> String {
    let what = error.detail().map_or_else(|| error.kind().to_string(), |detail| format!("{}: {detail}", error.kind()));
    match error.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    }
}

/// Reads the records a mailing's mails merge, as its sender, remembering those that recur
/// (owners, customers) across recipients.
pub struct Reader<'a> {
    app: &'a App,
    viewer: Viewer,
    known: HashMap<(String, Uuid), Read>,
}

/// A record as read: its values as the API gives them, and as displayed.
#[derive(Clone)]
struct Read {
    values: Json,
    texts: Json,
}

/// How a mail greets its recipient: the salutation written on the record (张总), else the
/// surname with 先生 or 女士 where the gender is known, else the name.
fn salutation(record: &Json) -> String {
    let text = |field: &str| record.get(field).and_then(Json::as_str).map(str::trim).filter(|t| !t.is_empty());
    if let Some(written) = text("salutation") {
        return written.to_owned();
    }
    let name = text("name").unwrap_or_default();
    let chinese = name.chars().next().is_some_and(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    match (text("gender"), name.chars().next()) {
        (Some("male"), Some(surname)) if chinese => format!("{surname}先生"),
        (Some("female"), Some(surname)) if chinese => format!("{surname}女士"),
        _ => name.to_owned(),
    }
}

/// A recipient as a mail needs them.
pub struct Recipient {
    pub address: Option<String>,
    /// They asked for no marketing mail (拒收营销邮件).
    pub opted_out: bool,
    pub data: Json,
}

/// The fields of a user a mail may show of a recipient's owner.
const OWNER_FIELDS: [&str; 6] = ["name", "title", "phone", "mobile", "email", "department"];

impl<'a> Reader<'a> {
    pub fn new(app: &'a App, sender: Principal) -> Self {
        let viewer = Viewer {
            principal: sender,
            csrf: String::new(),
            locale: "zh-CN",
            theme: String::new(),
            offset: crate::schedule::business_offset(),
            name: String::new(),
            path: String::new(),
            flash: None,
            brand: Default::default(),
        };
        Reader { app, viewer, known: HashMap::new() }
    }

    /// A record's fields as displayed, by name; `None` when the sender may not read it or it
    /// is gone.
    async fn texts(&mut self, entity: &str, id: Uuid) -> ApiResult<Option<Json>> {
        Ok(self.read(entity, id).await?.map(|read| read.texts))
    }

    async fn read(&mut self, entity: &str, id: Uuid) -> ApiResult<Option<Read>> {
        if let Some(known) = self.known.get(&(entity.to_owned(), id)) {
            return Ok(Some(known.clone()));
        }
        let catalog = self.app.catalog();
        let Some(definition) = catalog.entity(entity) else { return Ok(None) };
        let read = records::get(self.app, &self.viewer.principal, entity, &id.to_string(), None).await;
        let record = match read {
            Ok(record) => serde_json::to_value(record).map_err(|e| ApiError::Internal(e.into()))?,
            Err(ApiError::NotFound(_) | ApiError::Forbidden { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fields: Vec<_> = definition.columns().iter().filter(|f| record.get(f.name.as_str()).is_some()).collect();
        let titles = view::titles(self.app, &self.viewer.principal, view::references(&fields, &[&record])).await?;
        let mut texts: Map<String, Json> = fields
            .iter()
            .map(|f| {
                let value = record.get(f.name.as_str()).unwrap_or(&Json::Null);
                (f.name.to_string(), json!(view::display(&catalog, f, value, &self.viewer, &titles).text))
            })
            .collect();
        texts.insert("id".into(), json!(id));
        let read = Read { values: record, texts: Json::Object(texts) };
        self.known.insert((entity.to_owned(), id), read.clone());
        Ok(Some(read))
    }

    /// One recipient: their address, whether they want no marketing mail, and what a template
    /// merges for them (see the module's notes); `None` when the sender may not read them.
    /// `address` names the field their address is in (an e-mail, a mobile number).
    pub async fn recipient(
        &mut self,
        entity: &str,
        id: Uuid,
        campaign: Option<Uuid>,
        address: &str,
    ) -> ApiResult<Option<Recipient>> {
        let catalog = self.app.catalog();
        let Some(definition) = catalog.entity(entity) else { return Ok(None) };
        let Some(Read { values: raw, texts: mut recipient }) = self.read(entity, id).await? else { return Ok(None) };
        recipient["salutation"] = json!(salutation(&raw));
        // Only one recipient's record is kept: the next recipients are other records.
        self.known.remove(&(entity.to_owned(), id));
        let mut data = Map::new();
        // The records the recipient's lookups point at, under their entity's name (a contact's
        // customer); the recipient itself comes last, so it is never shadowed.
        for field in definition.columns() {
            let Some(target) = field.reference_target() else { continue };
            let Some(linked) = raw.get(field.name.as_str()).and_then(Json::as_str).and_then(|v| v.parse().ok()) else {
                continue;
            };
            if target == crm_model::USER_ENTITY {
                if field.name.as_str() == "owner"
                    && let Some(owner) = self.texts(target, linked).await?
                {
                    let shown: Map<String, Json> =
                        OWNER_FIELDS.iter().filter_map(|f| Some(((*f).to_owned(), owner.get(*f)?.clone()))).collect();
                    data.insert("owner".into(), Json::Object(shown));
                }
                continue;
            }
            if let Some(texts) = self.texts(target, linked).await? {
                data.entry(target.to_owned()).or_insert(texts);
            }
        }
        if let Some(campaign) = campaign
            && let Some(read) = self.read("campaign", campaign).await?
        {
            // The campaign's survey, as this recipient's own link: their answers are theirs.
            let survey = read.values.get("survey").and_then(Json::as_str).and_then(|s| s.parse().ok());
            if let Some(survey) = survey {
                let link = crate::surveys::personal_link(self.app, survey, entity, id);
                data.insert("survey_url".into(), json!(link));
            }
            data.insert("campaign".into(), read.texts);
        }
        data.insert(entity.to_owned(), recipient.clone());
        data.insert("recipient".into(), recipient);
        data.insert("company".into(), json!({"name": crate::brand::brand(self.app).await?.name}));
        data.insert("unsubscribe_url".into(), json!(super::unsubscribe::link(self.app, entity, id)));
        Ok(Some(Recipient {
            address: raw.get(address).and_then(Json::as_str).map(str::to_owned).filter(|a| !a.trim().is_empty()),
            opted_out: raw.get(OPT_OUT) == Some(&Json::Bool(true)),
            data: Json::Object(data),
        }))
    }

    /// An SMS template's record as the sender reads it, ready to merge.
    pub async fn sms_template(&self, id: Uuid) -> ApiResult<crate::sms::Template> {
        let out = records::get(self.app, &self.viewer.principal, crate::sms::TEMPLATE, &id.to_string(), None).await?;
        let values = serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?;
        let text = |field: &str| values.get(field).and_then(Json::as_str).unwrap_or_default().to_owned();
        crate::sms::Template::new(&text("provider_template"), &text("content"), &text("params"))
    }
}
