//! Web-to-lead forms (网站表单, M-5). A form is metadata (`web_forms/`): the lead fields a
//! company's website asks for. The studio designs it and gives the HTML to paste on the site
//! — a plain form, no script. A visitor's submission comes to a public address that names
//! the form and carries its key (this server's signature of the form's name, so it is in no
//! exported package), and becomes a lead through the save pipeline: source `web_form`, the
//! form's campaign and owner; with a campaign, the lead is also its member, registered (已报名);
//! with a survey, its questions follow the fields and the answers are linked to the lead.
//!
//! What a hostile visitor meets: a body over [`BODY_LIMIT`] is refused (413); a filled-in
//! honeypot field, a field the form does not ask for or a value twice is refused (400); a
//! value the lead refuses is said per field (422); more than [`PER_ADDRESS`] submissions from
//! one address within [`WINDOW`] are refused (429). None of them writes anything. What is
//! written is text, escaped wherever a signed-in page shows it.

pub mod screens;
pub(crate) mod snippet;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_model::{WEB_FORM_ENTITY, WebFormDoc};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::{self, ListParams, Source, Unit};
use crate::surveys;

pub use snippet::snippet;

/// The largest submission taken.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The hidden field a person leaves empty and a form-filling robot does not.
pub const HONEYPOT: &str = "_hp";

/// Submissions one address may make to one form within [`WINDOW`].
const PER_ADDRESS: usize = 10;
const WINDOW: Duration = Duration::from_secs(600);

/// The submissions each address made lately, per form.
#[derive(Default)]
pub struct Limiter {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// Counts a submission; refused when the address made too many lately.
    pub(crate) fn admit(&self, form: &str, address: &str) -> ApiResult<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Addresses that went quiet are forgotten, so the map does not grow without end.
        seen.retain(|_, times| times.back().is_some_and(|t| t.elapsed() < WINDOW));
        let times = seen.entry(format!("{form}|{address}")).or_default();
        times.retain(|t| t.elapsed() < WINDOW);
        if times.len() >= PER_ADDRESS {
            return Err(ApiError::TooManyRequests("too many submissions from this address; try again later".into()));
        }
        times.push_back(Instant::now());
        Ok(())
    }
}

/// The form's key: this server's signature of its name.
pub fn key(app: &App, name: &str) -> String {
    app.secrets.sign(&format!("web_form:{name}"))
}

/// Where the form's submissions go.
pub fn action(app: &App, name: &str) -> String {
    format!("{}/f/{name}/{}", app.config.public_url, key(app, name))
}

/// The form a public address names, if its key is right and it takes submissions.
pub fn form(app: &App, name: &str, key: &str) -> ApiResult<WebFormDoc> {
    let catalog = app.catalog();
    let form = catalog.docs().web_forms.get(name).filter(|f| f.enabled).cloned();
    match form {
        Some(form) if app.secrets.verify(&format!("web_form:{name}"), key) => Ok(form),
        _ => Err(ApiError::not_found("no such form")),
    }
}

/// Refuses a submission whose honeypot is filled in: a robot's.
pub(crate) fn refuse_robots(posted: &[(String, String)]) -> ApiResult<()> {
    if posted.iter().any(|(name, value)| name == HONEYPOT && !value.is_empty()) {
        return Err(ApiError::bad_request("rejected", "this submission looks automated"));
    }
    Ok(())
}

/// A visitor's submission: checked, then a lead; returns its id.
pub async fn submit(app: &App, form: &WebFormDoc, address: &str, posted: &[(String, String)]) -> ApiResult<Uuid> {
    app.forms.admit(form.name.as_str(), address)?;
    refuse_robots(posted)?;
    let catalog = app.catalog();
    let lead = catalog.entity(WEB_FORM_ENTITY).ok_or_else(|| ApiError::not_found("no lead entity"))?;
    let mut values = Map::new();
    let mut errors = Vec::new();
    for (name, _) in posted.iter().filter(|(name, _)| name != HONEYPOT && !surveys::is_answer(name)) {
        let asked = form.fields.iter().find(|f| f.field.as_str() == name.as_str());
        let field = asked.and_then(|a| lead.field(a.field.as_str()));
        let Some(field) = field else {
            return Err(ApiError::bad_request("unknown_field", format!("the form does not ask for `{name}`")));
        };
        let given: Vec<&str> = posted.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        if given.len() > 1 && field.field_type != crm_model::FieldType::MultiSelect {
            return Err(ApiError::bad_request("repeated_field", format!("`{name}` is given more than once")));
        }
        let value = crate::screens::view::form_value(field, &given, &crate::schedule::business_offset());
        if !value.is_null() && value != json!([]) {
            values.insert(name.clone(), value);
        }
    }
    for asked in form.fields.iter().filter(|a| a.required) {
        if !values.contains_key(asked.field.as_str()) {
            errors.push(FieldError::new(asked.field.to_string(), "required", "a value is required"));
        }
    }
    // A survey that is not open (any more) asks nothing: its answers are let go, the lead
    // is kept.
    let survey = match form.survey {
        Some(id) => surveys::load(app, id).await?.filter(|s| s.open),
        None => None,
    };
    let answers = match &survey {
        Some(survey) => match surveys::answers(survey, posted) {
            Ok(answers) => answers,
            Err(ApiError::Invalid(wrong)) => {
                errors.extend(wrong);
                Vec::new()
            }
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    values.insert("source".into(), json!("web_form"));
    values.insert("web_form".into(), json!(form.name));
    if let Some(campaign) = form.campaign {
        values.insert("campaign".into(), json!(campaign));
    }
    let owner = owner(app, form).await?;
    values.insert("owner".into(), json!(owner));
    let name = values.get("name").cloned();
    let system = Principal::system(&catalog);
    let mut unit = Unit::new(app, &system, Source::WebForm).await?;
    let id = unit.create(WEB_FORM_ENTITY, &Json::Object(values)).await?;
    // A sign-up for a campaign (a webinar's registration page) makes the lead a member of
    // it, registered, in the same transaction.
    if let Some(campaign) = form.campaign {
        let member =
            json!({"campaign": campaign, "lead": id, "name": name.clone(), "status": "registered", "owner": owner});
        unit.create(crate::campaigns::MEMBER, &member).await?;
    }
    if let Some(survey) = survey.filter(|_| !answers.is_empty()) {
        let respondent = surveys::Respondent { entity: WEB_FORM_ENTITY, id };
        surveys::record(&mut unit, &survey, Some(respondent), name, &answers).await?;
    }
    unit.commit().await?;
    Ok(id)
}

/// Who a form's leads are given to: the user of its `owner` login, else the first active
/// administrator.
async fn owner(app: &App, form: &WebFormDoc) -> ApiResult<Uuid> {
    let system = Principal::system(&app.catalog());
    let filter = match &form.owner {
        Some(login) => {
            json!({"and": [{"field": "login", "op": "eq", "value": login}, {"field": "active", "op": "eq", "value": true}]})
        }
        None => json!({"field": "active", "op": "eq", "value": true}),
    };
    let params = ListParams {
        filter: Some(filter.to_string()),
        sort: Some("created_at".into()),
        limit: Some(100),
        fields: Some("id".into()),
        ..ListParams::default()
    };
    let users = records::list(app, &system, crm_model::USER_ENTITY, &params).await?;
    let ids: Vec<Uuid> = users.records().iter().map(crm_store::Record::id).collect();
    let chosen = match &form.owner {
        Some(_) => ids.first().copied(),
        None => {
            let admins = crm_store::system::active_users_with_roles(&app.db, &administrator_roles(app)).await?;
            ids.into_iter().find(|id| admins.contains(id))
        }
    };
    chosen.ok_or_else(|| ApiError::NotReady {
        code: "form_owner_missing",
        message: "the form's owner is not an active user: an administrator sets another".into(),
    })
}

fn administrator_roles(app: &App) -> Vec<String> {
    app.catalog().docs().roles.values().filter(|r| r.admin).map(|r| r.name.to_string()).collect()
}
