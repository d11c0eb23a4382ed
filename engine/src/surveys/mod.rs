//! Surveys (市场调查, M-7). A survey is a record with its questions as child records
//! (单选, 多选, 评分, 文字回答; required or not; in their order), so whoever may edit records
//! designs one with the screens every record has. It is answered on a public page, or in a
//! web form after the lead's fields, or from a mail whose campaign asks it (`survey_url`,
//! each recipient's own link). Each answering is a `survey_response` linked to the lead,
//! contact or customer when known, with one `survey_answer` per answer (per option ticked),
//! all written through the save pipeline in one transaction; the statistics are reports over
//! those answers, in the reader's scope.
//!
//! The public address carries the survey's key (this server's signature of its id); a
//! personal link adds the respondent, signed the same way, so nobody answers as someone else.
//!
//! A service request may be the respondent too (the satisfaction survey after it is resolved,
//! SV-5): the first rating answered becomes the request's satisfaction (满意度, whose options
//! go from the best to the worst: five stars are the first) and the first written answer its
//! comment, in the same transaction.

pub mod screens;
mod statistics;

use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::{self, ListParams, Source, Unit};

pub use statistics::statistics;

pub const SURVEY: &str = "survey";
pub const QUESTION: &str = "survey_question";
pub const RESPONSE: &str = "survey_response";
pub const ANSWER: &str = "survey_answer";

/// The longest free-text answer kept.
const TEXT_LIMIT: usize = 2000;

/// Ratings go from one to this many stars.
pub const RATING_MAX: i64 = 5;

/// The prefix of a posted answer's name: `q.` and the question's id.
const ANSWER_PREFIX: &str = "q.";

/// The entities a respondent may be, each a lookup of a response.
const RESPONDENTS: [&str; 4] = ["lead", "contact", "customer", SERVICE_REQUEST];

/// The respondent whose satisfaction a survey's answers score.
pub const SERVICE_REQUEST: &str = "service_request";
/// What a survey is for: `general`, or `service`: the satisfaction survey of service requests.
pub const SERVICE_PURPOSE: &str = "service";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Multiple,
    Rating,
    Text,
}

impl Kind {
    fn parse(text: &str) -> Kind {
        match text {
            "multiple" => Kind::Multiple,
            "rating" => Kind::Rating,
            "text" => Kind::Text,
            _ => Kind::Single,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::Multiple => "multiple",
            Kind::Rating => "rating",
            Kind::Text => "text",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Question {
    pub id: Uuid,
    pub text: String,
    pub kind: Kind,
    /// The choices, in order: a choice question's options, or the ratings.
    pub options: Vec<String>,
    pub required: bool,
}

impl Question {
    /// The name its answers are posted under.
    pub fn input(&self) -> String {
        format!("{ANSWER_PREFIX}{}", self.id)
    }
}

#[derive(Debug, Clone)]
pub struct Survey {
    pub id: Uuid,
    pub name: String,
    pub intro: String,
    pub thanks: String,
    pub open: bool,
    pub owner: Option<Uuid>,
    pub questions: Vec<Question>,
}

/// One answer to write: a question's option, rating or text.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub question: Uuid,
    pub text: String,
    pub rating: Option<i64>,
}

/// Who answered, when known: a lead, contact or customer.
#[derive(Debug, Clone, Copy)]
pub struct Respondent<'a> {
    pub entity: &'a str,
    pub id: Uuid,
}

fn text(record: &Json, field: &str) -> String {
    record[field].as_str().unwrap_or_default().trim().to_owned()
}

/// A survey and its questions in their order, as stored; `None` when there is no such
/// survey. What a visitor sees of it does not depend on who reads it.
pub async fn load(app: &App, id: Uuid) -> ApiResult<Option<Survey>> {
    let system = Principal::system(&app.catalog());
    let survey = match records::get(app, &system, SURVEY, &id.to_string(), None).await {
        Ok(out) => serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?,
        Err(ApiError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let params = ListParams {
        filter: Some(json!({"field": "survey", "op": "eq", "value": id}).to_string()),
        sort: Some("position,created_at".into()),
        limit: Some(500),
        ..ListParams::default()
    };
    let page = records::list(app, &system, QUESTION, &params).await?;
    let page = serde_json::to_value(page).map_err(|e| ApiError::Internal(e.into()))?;
    let questions = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| {
            let kind = Kind::parse(q["kind"].as_str().unwrap_or_default());
            let options = match kind {
                Kind::Single | Kind::Multiple => {
                    text(q, "options").lines().map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect()
                }
                Kind::Rating => (1..=RATING_MAX).map(|r| r.to_string()).collect(),
                Kind::Text => Vec::new(),
            };
            Some(Question {
                id: q["id"].as_str()?.parse().ok()?,
                text: text(q, "name"),
                kind,
                options,
                required: q["required"] == json!(true),
            })
        })
        .collect();
    Ok(Some(Survey {
        id,
        name: text(&survey, "name"),
        intro: text(&survey, "intro"),
        thanks: text(&survey, "thanks"),
        open: survey["status"] == json!("open"),
        owner: survey["owner"].as_str().and_then(|o| o.parse().ok()),
        questions,
    }))
}

fn message(survey: Uuid) -> String {
    format!("survey:{survey}")
}

fn personal(survey: Uuid, entity: &str, id: Uuid) -> String {
    format!("survey:{survey}:{entity}:{id}")
}

/// The survey's public address, absolute.
pub fn link(app: &App, survey: Uuid) -> String {
    format!("{}{}", app.config.public_url, path(app, survey))
}

/// The survey's public address on this server.
pub fn path(app: &App, survey: Uuid) -> String {
    format!("/q/{survey}/{}", app.secrets.sign(&message(survey)))
}

/// The satisfaction survey's address for a service request that is resolved or closed, to
/// send its customer: the first open survey for service, if there is one.
pub async fn satisfaction_link(app: &App, request: &Json) -> ApiResult<Option<String>> {
    let done = matches!(request["status"].as_str(), Some("resolved" | "closed"));
    let Some(id) = request["id"].as_str().and_then(|i| i.parse().ok()).filter(|_| done) else { return Ok(None) };
    let open = json!({"and": [
        {"field": "status", "op": "eq", "value": "open"},
        {"field": "purpose", "op": "eq", "value": SERVICE_PURPOSE},
    ]});
    let params = ListParams {
        filter: Some(open.to_string()),
        sort: Some("created_at".into()),
        limit: Some(1),
        ..ListParams::default()
    };
    let system = Principal::system(&app.catalog());
    let page = serde_json::to_value(records::list(app, &system, SURVEY, &params).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let survey = page["data"][0]["id"].as_str().and_then(|s| s.parse().ok());
    Ok(survey.map(|survey| personal_link(app, survey, SERVICE_REQUEST, id)))
}

/// A respondent's own address of the survey: their answers are linked to them.
pub fn personal_link(app: &App, survey: Uuid, entity: &str, id: Uuid) -> String {
    let signature = app.secrets.sign(&personal(survey, entity, id));
    format!("{}?r={entity}.{id}.{signature}", link(app, survey))
}

/// The survey a public address names, if its key is this server's.
pub async fn public(app: &App, id: &str, key: &str) -> ApiResult<Survey> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("no such survey"))?;
    if !app.secrets.verify(&message(id), key) {
        return Err(ApiError::not_found("no such survey"));
    }
    load(app, id).await?.ok_or_else(|| ApiError::not_found("no such survey"))
}

/// The respondent a personal link's `r` names, if its signature is this server's.
pub fn respondent<'a>(app: &App, survey: Uuid, signed: &'a str) -> Option<Respondent<'a>> {
    let mut parts = signed.splitn(3, '.');
    let (entity, id, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let id: Uuid = id.parse().ok()?;
    (RESPONDENTS.contains(&entity) && app.secrets.verify(&personal(survey, entity, id), signature))
        .then_some(Respondent { entity, id })
}

/// Whether a posted name is a survey's answer rather than a form's field.
pub fn is_answer(name: &str) -> bool {
    name.starts_with(ANSWER_PREFIX)
}

/// The answers posted to a survey, checked: every name a question of it, every choice one
/// of its options, every rating 1 to 5, every required question answered. A name no
/// question has is refused as a whole (400); what is missing or wrong is said per question.
pub fn answers(survey: &Survey, posted: &[(String, String)]) -> ApiResult<Vec<Answer>> {
    for (name, _) in posted.iter().filter(|(name, _)| is_answer(name)) {
        if !survey.questions.iter().any(|q| q.input() == *name) {
            return Err(ApiError::bad_request("unknown_field", format!("the survey does not ask `{name}`")));
        }
    }
    let mut answers = Vec::new();
    let mut errors = Vec::new();
    for question in &survey.questions {
        let input = question.input();
        let given: Vec<&str> =
            posted.iter().filter(|(n, v)| *n == input && !v.trim().is_empty()).map(|(_, v)| v.trim()).collect();
        if given.is_empty() {
            if question.required {
                errors.push(FieldError::new(input, "required", "a value is required"));
            }
            continue;
        }
        if given.len() > 1 && question.kind != Kind::Multiple {
            return Err(ApiError::bad_request("repeated_field", format!("`{input}` is given more than once")));
        }
        match question.kind {
            Kind::Text => {
                if given[0].chars().count() > TEXT_LIMIT {
                    errors.push(FieldError::new(input, "too_long", format!("at most {TEXT_LIMIT} characters")));
                    continue;
                }
                answers.push(Answer { question: question.id, text: given[0].to_owned(), rating: None });
            }
            Kind::Single | Kind::Multiple | Kind::Rating => {
                if let Some(wrong) = given.iter().find(|g| !question.options.iter().any(|o| o == *g)) {
                    let code = if question.kind == Kind::Rating { "out_of_range" } else { "invalid_option" };
                    errors.push(FieldError::new(input, code, format!("`{wrong}` is not one of the choices")));
                    continue;
                }
                // Each option once, in the survey's order, however often it was posted.
                for option in question.options.iter().filter(|o| given.contains(&o.as_str())) {
                    let rating = (question.kind == Kind::Rating).then(|| option.parse().ok()).flatten();
                    answers.push(Answer { question: question.id, text: option.clone(), rating });
                }
            }
        }
    }
    if errors.is_empty() { Ok(answers) } else { Err(ApiError::Invalid(errors)) }
}

/// Writes one answering of a survey in the caller's unit: the response, linked to the
/// respondent when known, and its answers. Returns the response's id.
pub async fn record(
    unit: &mut Unit<'_>,
    survey: &Survey,
    respondent: Option<Respondent<'_>>,
    name: Option<Json>,
    answers: &[Answer],
) -> ApiResult<Uuid> {
    let mut response = Map::new();
    response.insert("survey".into(), json!(survey.id));
    if let Some(owner) = survey.owner {
        response.insert("owner".into(), json!(owner));
    }
    if let Some(name) = name.filter(|n| !n.is_null()) {
        response.insert("name".into(), name);
    }
    if let Some(respondent) = respondent {
        response.insert(respondent.entity.into(), json!(respondent.id));
    }
    let id = unit.create(RESPONSE, &Json::Object(response)).await?;
    let rows: Vec<Json> = answers
        .iter()
        .map(|a| {
            let mut row = json!({"response": id, "survey": survey.id, "question": a.question, "answer": a.text});
            if let Some(rating) = a.rating {
                row["rating"] = json!(rating);
            }
            if let Some(owner) = survey.owner {
                row["owner"] = json!(owner);
            }
            row
        })
        .collect();
    unit.create_many(ANSWER, &rows).await?;
    if let Some(request) = respondent.filter(|r| r.entity == SERVICE_REQUEST) {
        score(unit, survey, request.id, answers).await?;
    }
    Ok(id)
}

/// A service request's satisfaction from its survey: the first rating as the option as far
/// from the worst (the last) as the rating is from one star, and the first written answer.
async fn score(unit: &mut Unit<'_>, survey: &Survey, request: Uuid, answers: &[Answer]) -> ApiResult<()> {
    let kind = |a: &Answer| survey.questions.iter().find(|q| q.id == a.question).map(|q| q.kind);
    let catalog = unit.catalog();
    let options = catalog.entity(SERVICE_REQUEST).and_then(|e| e.field("satisfaction")).map(|f| f.options.as_slice());
    let mut change = Map::new();
    let rating = answers.iter().find_map(|a| a.rating).and_then(|r| usize::try_from(r).ok());
    if let (Some(rating), Some(options)) = (rating, options)
        && let Some(option) = options.len().checked_sub(rating).and_then(|i| options.get(i))
    {
        change.insert("satisfaction".into(), json!(option.value));
    }
    if let Some(comment) = answers.iter().find(|a| kind(a) == Some(Kind::Text) && !a.text.trim().is_empty()) {
        change.insert("satisfaction_comment".into(), json!(comment.text));
    }
    if change.is_empty() {
        return Ok(());
    }
    unit.update(SERVICE_REQUEST, &request.to_string(), &Json::Object(change), None).await
}

/// A visitor's answers to an open survey, from its public page: checked, then written;
/// returns the response's id. Nothing answered is refused. The same limits as a web form's
/// hold: the honeypot and a number of answerings per address.
pub async fn submit(
    app: &App,
    survey: &Survey,
    address: &str,
    respondent: Option<Respondent<'_>>,
    posted: &[(String, String)],
) -> ApiResult<Uuid> {
    if !survey.open {
        return Err(ApiError::NotReady { code: "survey_closed", message: "this survey takes no answers now".into() });
    }
    app.forms.admit(&message(survey.id), address)?;
    crate::forms::refuse_robots(posted)?;
    if let Some((name, _)) = posted.iter().find(|(name, _)| !is_answer(name) && name != crate::forms::HONEYPOT) {
        return Err(ApiError::bad_request("unknown_field", format!("the survey does not ask `{name}`")));
    }
    let answers = answers(survey, posted)?;
    if answers.is_empty() {
        return Err(ApiError::bad_request("no_answers", "answer at least one question"));
    }
    let system = Principal::system(&app.catalog());
    let (respondent, name) = match respondent {
        Some(r) => known(app, r).await?,
        None => (None, None),
    };
    let mut unit = Unit::new(app, &system, Source::WebForm).await?;
    let id = record(&mut unit, survey, respondent, name, &answers).await?;
    unit.commit().await?;
    Ok(id)
}

/// A personal link's respondent with their name, for their response's title; an anonymous
/// answering when the record is gone since.
async fn known<'a>(app: &App, respondent: Respondent<'a>) -> ApiResult<(Option<Respondent<'a>>, Option<Json>)> {
    let system = Principal::system(&app.catalog());
    match records::get(app, &system, respondent.entity, &respondent.id.to_string(), None).await {
        Ok(out) => {
            let record = serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?;
            Ok((Some(respondent), record.get("name").cloned()))
        }
        Err(ApiError::NotFound(_)) => Ok((None, None)),
        Err(e) => Err(e),
    }
}
