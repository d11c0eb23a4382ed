//! The survey screens: the public page a survey is answered on and its answer, and for
//! signed-in users one page per survey with the questionnaire (questions added, moved and
//! previewed), where to publish it, and its statistics with their workbook.

use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{QUESTION, SURVEY, Survey, load, path, respondent, statistics, submit};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::export::{FileFormat, Out, xlsx_bytes};
use crate::forms::screens::{public_page, question, read_posted, refused, said};
use crate::forms::snippet::{Asked, html as form_html};
use crate::http::{ApiPath, ApiQuery, file_response};
use crate::records::{self, Source, Unit};
use crate::screens::{Posted, Viewer, browser_locale, html, redirect_with, shell};

#[derive(Deserialize, Default)]
pub struct Personal {
    /// A personal link's respondent, signed.
    r: Option<String>,
}

/// The survey's own address on this server, the respondent's when the link was personal.
fn action(app: &App, survey: &Survey, personal: &Personal) -> String {
    match &personal.r {
        Some(r) => format!("{}?r={}", path(app, survey.id), crate::screens::encode(r)),
        None => path(app, survey.id),
    }
}

/// The survey's HTML, posting to `action`.
fn form(survey: &Survey, action: &str, locale: &str) -> ApiResult<String> {
    let asked = Asked { name: "survey", title: &survey.name, intro: &survey.intro, fields: &[], survey: Some(survey) };
    form_html(&asked, action, locale)
}

/// `GET /q/{id}/{key}`: the survey on a page of its own; `?r=` links the answers to the
/// respondent a personal link names.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(personal): ApiQuery<Personal>,
) -> ApiResult<Response> {
    let survey = super::public(&app, &id, &key).await?;
    let locale = browser_locale(&headers);
    if !survey.open {
        let mut page =
            public_page(&headers, &survey.name, json!({"errors": [shell::text(locale, "surveys.closed", &[])]}))?;
        *page.status_mut() = StatusCode::CONFLICT;
        return Ok(page);
    }
    let body = form(&survey, &action(&app, &survey, &personal), locale)?;
    public_page(&headers, &survey.name, json!({"form": body}))
}

/// `POST /q/{id}/{key}`: a visitor's answers.
pub async fn post(
    State(app): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(personal): ApiQuery<Personal>,
    request: Request<axum::body::Body>,
) -> ApiResult<Response> {
    let headers = request.headers().clone();
    let address = crate::auth::client_address(request.extensions());
    let survey = super::public(&app, &id, &key).await?;
    let locale = browser_locale(&headers);
    let posted = read_posted(request).await;
    let respondent = personal.r.as_deref().and_then(|r| respondent(&app, survey.id, r));
    match async { submit(&app, &survey, &address, respondent, &posted?).await }.await {
        Ok(_) => {
            let thanks = if survey.thanks.is_empty() {
                shell::text(locale, "surveys.thanks", &[])
            } else {
                survey.thanks.clone()
            };
            public_page(&headers, &survey.name, json!({"thanks": thanks}))
        }
        Err(ApiError::Invalid(errors)) => {
            let said = said(&errors, |field| question(Some(&survey), field), locale);
            let mut page = public_page(&headers, &survey.name, json!({"errors": said}))?;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
        Err(e) => {
            let (status, text) = refused(&e, locale);
            let mut page = public_page(&headers, &survey.name, json!({"errors": [text]}))?;
            *page.status_mut() = status;
            Ok(page)
        }
    }
}

/// The survey a signed-in user opens: one they may read, with its questions.
async fn readable(app: &App, viewer: &Viewer, id: &str) -> ApiResult<(Json, Survey)> {
    let record = records::get(app, &viewer.principal, SURVEY, id, None).await?;
    let record = serde_json::to_value(record).map_err(|e| ApiError::Internal(e.into()))?;
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("no such survey"))?;
    let survey = load(app, id).await?.ok_or_else(|| ApiError::not_found("no such survey"))?;
    Ok((record, survey))
}

/// `GET /surveys/{id}`: the questionnaire with its preview, where to publish it, and the
/// statistics.
pub async fn designer(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let (record, survey) = readable(&app, &viewer, &id).await?;
    let catalog = app.catalog();
    let may_design = viewer.principal.entity(&catalog, QUESTION, crm_model::Action::Create).is_ok()
        && viewer.principal.entity(&catalog, SURVEY, crm_model::Action::Edit).is_ok();
    let link = super::link(&app, survey.id);
    let snippet = form(&survey, &link, viewer.locale)?;
    let preview = form(&survey, "#", viewer.locale)?;
    let offset = viewer.offset.local_minus_utc() / 60;
    let stats = statistics(&app, &viewer.principal, &survey, offset, viewer.locale).await?;
    let questions: Vec<Json> = survey
        .questions
        .iter()
        .map(|q| json!({"id": q.id, "text": q.text, "kind": q.kind.as_str(), "options": q.options, "required": q.required}))
        .collect();
    let values = json!({
        "survey": {"id": survey.id, "name": survey.name, "open": survey.open, "status": record["status"]},
        "questions": questions,
        "may_design": may_design,
        "link": link,
        "snippet": snippet,
        "preview": preview,
        "stats": stats,
    });
    let title = shell::text(viewer.locale, "surveys.title", &[("name", survey.name.clone())]);
    html("survey.html", viewer.page(&catalog, Some(SURVEY), &title, values))
}

/// `POST /surveys/{id}/questions`: a question added at the end, through the save pipeline.
pub async fn add_question(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let (_, survey) = readable(&app, &viewer, &id).await?;
    let mut question = json!({
        "survey": survey.id,
        "name": form.get("name").unwrap_or_default().trim(),
        "kind": form.get("kind").unwrap_or("single"),
        "position": survey.questions.len() + 1,
        "required": form.get("required") == Some("true"),
    });
    if let Some(options) = form.get("options").map(str::trim).filter(|o| !o.is_empty()) {
        question["options"] = json!(options);
    }
    let mut unit = Unit::new(&app, &viewer.principal, Source::Screen).await?;
    unit.create(QUESTION, &question).await?;
    unit.commit().await?;
    Ok(redirect_with(&format!("/surveys/{id}"), Some(&viewer.text("surveys.added"))))
}

/// `POST /surveys/{id}/questions/{question}/move`: a question one place up or down; the
/// questions are numbered again in their new order, in one transaction.
pub async fn move_question(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((id, moved)): ApiPath<(String, String)>,
    form: Posted,
) -> ApiResult<Response> {
    let (_, survey) = readable(&app, &viewer, &id).await?;
    let mut order: Vec<Uuid> = survey.questions.iter().map(|q| q.id).collect();
    let at =
        order.iter().position(|q| q.to_string() == moved).ok_or_else(|| ApiError::not_found("no such question"))?;
    let to = match form.get("to") {
        Some("up") => at.checked_sub(1),
        _ => Some(at + 1).filter(|t| *t < order.len()),
    };
    if let Some(to) = to {
        order.swap(at, to);
        let mut unit = Unit::new(&app, &viewer.principal, Source::Screen).await?;
        for (position, question) in order.iter().enumerate() {
            unit.update(QUESTION, &question.to_string(), &json!({"position": position + 1}), None).await?;
        }
        unit.commit().await?;
    }
    Ok(redirect_with(&format!("/surveys/{id}#q-{moved}"), None))
}

/// `GET /surveys/{id}/statistics.xlsx`: the statistics as a workbook, a row per option.
pub async fn export(State(app): State<AppState>, viewer: Viewer, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let (_, survey) = readable(&app, &viewer, &id).await?;
    viewer.principal.entity(&app.catalog(), super::ANSWER, crm_model::Action::Export)?;
    let offset = viewer.offset.local_minus_utc() / 60;
    let stats = statistics(&app, &viewer.principal, &survey, offset, viewer.locale).await?;
    let header: Vec<String> = ["question", "answer", "count", "percent"]
        .iter()
        .map(|k| viewer.text(&format!("surveys.column_{k}")))
        .collect();
    let mut rows = Vec::new();
    for question in stats["questions"].as_array().into_iter().flatten() {
        let text = question["text"].as_str().unwrap_or_default();
        for row in question["rows"].as_array().into_iter().flatten() {
            let percent = row["percent"].as_str().and_then(|p| p.parse::<f64>().ok()).unwrap_or(0.0);
            rows.push(vec![
                Out::Text(text.to_owned()),
                Out::Text(row["option"].as_str().unwrap_or_default().to_owned()),
                Out::Number(row["count"].as_f64().unwrap_or(0.0), "#,##0"),
                Out::Number(percent / 100.0, "0.0%"),
            ]);
        }
        for answer in question["texts"].as_array().into_iter().flatten() {
            rows.push(vec![Out::Text(text.to_owned()), Out::Text(answer.as_str().unwrap_or_default().to_owned())]);
        }
    }
    let name = format!("{}.xlsx", survey.name.replace(['/', '\\', ':', '*', '?', '"', '<', '>', '|'], ""));
    Ok(file_response(xlsx_bytes(&header, &rows)?, FileFormat::Xlsx, &name))
}
