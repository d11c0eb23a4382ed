//! The web form screens: the public page a form can be sent from and its answer (thanks, a
//! redirect, or what to correct), and the studio's designer with the HTML to paste.

use axum::extract::FromRequest;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use crm_model::{DocKind, WEB_FORM_ENTITY, WebFormDoc, on_web_forms};
use serde_json::{Map, Value as Json, json};

use super::{action, form, snippet, submit};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::ApiPath;
use crate::screens::{Posted, Viewer, browser_locale, html, redirect_with, shell, unprocessable, view};
use crate::surveys::Survey;

pub(crate) fn public_page(headers: &HeaderMap, title: &str, values: Json) -> ApiResult<Response> {
    let locale = browser_locale(headers);
    let mut context = json!({"locale": locale, "theme": shell::THEMES[0], "title": title});
    if let (Some(context), Json::Object(values)) = (context.as_object_mut(), values) {
        context.extend(values);
    }
    html("web_form.html", minijinja::Value::from(minijinja::value::Serde(context)))
}

/// `GET /f/{name}/{key}`: the form on a page of its own, for a link instead of the HTML.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let form = form(&app, &name, &key)?;
    let locale = browser_locale(&headers);
    let survey = asked_survey(&app, &form).await?;
    let body = snippet(&app.catalog(), &form, survey.as_ref(), &format!("/f/{name}/{key}"), locale)?;
    public_page(&headers, form.label.get(locale), json!({"form": body}))
}

/// `POST /f/{name}/{key}`: a visitor's submission.
pub async fn post(
    State(app): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
    request: Request<axum::body::Body>,
) -> ApiResult<Response> {
    let headers = request.headers().clone();
    let address = crate::auth::client_address(request.extensions());
    let form = form(&app, &name, &key)?;
    let locale = browser_locale(&headers);
    let posted = read_posted(request).await;
    match async { submit(&app, &form, &address, &posted?).await }.await {
        Ok(_) => match &form.redirect {
            Some(to) => Ok(Redirect::to(to).into_response()),
            None => public_page(&headers, form.label.get(locale), json!({"thanks": form.thanks.get(locale)})),
        },
        Err(ApiError::Invalid(errors)) => {
            let catalog = app.catalog();
            let lead = catalog.entity(WEB_FORM_ENTITY);
            let survey = asked_survey(&app, &form).await?;
            let label = |field: &str| {
                let asked = form.fields.iter().find(|f| f.field.as_str() == field);
                asked
                    .and_then(|f| f.label.clone().or_else(|| lead?.field(f.field.as_str()).map(|d| d.label.clone())))
                    .map(|l| l.get(locale).to_owned())
                    .or_else(|| question(survey.as_ref(), field))
            };
            let said = said(&errors, label, locale);
            let mut page = public_page(&headers, form.label.get(locale), json!({"errors": said}))?;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
        Err(e) => {
            let (status, text) = refused(&e, locale);
            let mut page = public_page(&headers, form.label.get(locale), json!({"errors": [text]}))?;
            *page.status_mut() = status;
            Ok(page)
        }
    }
}

/// A visitor's posted form, its names and values in order; too large a body is refused.
pub(crate) async fn read_posted(request: Request<axum::body::Body>) -> ApiResult<Vec<(String, String)>> {
    let posted = axum::Form::<Vec<(String, String)>>::from_request(request, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request("invalid_body", e.body_text())
        }
    })?;
    Ok(posted.0)
}

/// The survey a form asks after its fields, when it is open.
async fn asked_survey(app: &App, form: &WebFormDoc) -> ApiResult<Option<Survey>> {
    match form.survey {
        Some(id) => Ok(crate::surveys::load(app, id).await?.filter(|s| s.open)),
        None => Ok(None),
    }
}

/// The text of the survey's question posted under `field`.
pub(crate) fn question(survey: Option<&Survey>, field: &str) -> Option<String> {
    survey?.questions.iter().find(|q| q.input() == field).map(|q| q.text.clone())
}

/// What a visitor is told to correct, a line per field: its question, then what is wrong in
/// their language.
pub(crate) fn said(errors: &[FieldError], label: impl Fn(&str) -> Option<String>, locale: &str) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            let label = label(&e.field).unwrap_or_else(|| e.field.clone());
            let key = format!("error.{}", e.code);
            let text = shell::text(locale, &key, &[]);
            let text = if text == key || locale == "en" { e.message.clone() } else { text };
            format!("{label}: {text}")
        })
        .collect()
}

/// What a visitor reads when a submission is refused as a whole, in their language.
pub(crate) fn refused(error: &ApiError, locale: &str) -> (StatusCode, String) {
    let (status, code, _) = error.parts();
    let key = format!("forms.refused_{code}");
    let text = shell::text(locale, &key, &[]);
    let text = if text == key { shell::text(locale, "forms.refused", &[]) } else { text };
    (status, text)
}

/// `GET /studio/forms`: the web forms, and a new one.
pub async fn list(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let catalog = app.catalog();
    let forms: Vec<Json> = catalog
        .docs()
        .web_forms
        .values()
        .map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale), "enabled": f.enabled, "fields": f.fields.len()}))
        .collect();
    let title = viewer.text("forms.title");
    html("studio_forms.html", viewer.page(&catalog, None, &title, json!({"forms": forms})))
}

/// `GET /studio/forms/{name}`: the designer; a name without a form starts a new one.
pub async fn designer(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let doc = app.catalog().docs().web_forms.get(name.as_str()).cloned();
    let doc = match doc {
        Some(doc) => serde_json::to_value(doc).map_err(|e| ApiError::Internal(e.into()))?,
        None => json!({
            "name": name,
            "label": {"zh-CN": viewer.text("forms.new_label"), "en": "Contact us"},
            "fields": [{"field": "name", "required": true}, {"field": "company"}, {"field": "mobile"}, {"field": "email"}],
            "thanks": {"zh-CN": "感谢您的关注，我们会尽快与您联系。", "en": "Thank you: we will be in touch soon."},
        }),
    };
    designer_page(&app, &viewer, &name, &doc, Vec::new()).await
}

async fn designer_page(app: &App, viewer: &Viewer, name: &str, doc: &Json, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let lead = catalog.entity(WEB_FORM_ENTITY).ok_or_else(|| ApiError::not_found("no lead entity"))?;
    let asked = doc["fields"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Json> = lead
        .live_fields()
        .filter(|f| on_web_forms(f.field_type) && f.name.as_str() != "web_form")
        .map(|f| {
            let at = asked.iter().position(|a| a["field"] == json!(f.name));
            let chosen = at.map(|i| &asked[i]);
            json!({
                "name": f.name,
                "label": f.label.get(viewer.locale),
                "asked": chosen.is_some(),
                "required": chosen.is_some_and(|a| a["required"] == json!(true)),
                "order": at.map_or(String::new(), |i| (i + 1).to_string()),
                "question_zh": chosen.and_then(|a| a["label"]["zh-CN"].as_str()).unwrap_or_default(),
                "question_en": chosen.and_then(|a| a["label"]["en"].as_str()).unwrap_or_default(),
            })
        })
        .collect();
    let saved: Option<WebFormDoc> = catalog.docs().web_forms.get(name).cloned();
    let (code, link) = match &saved {
        Some(form) => {
            let action = action(app, name);
            let survey = asked_survey(app, form).await?;
            (Some(snippet(&catalog, form, survey.as_ref(), &action, "zh-CN")?), Some(action))
        }
        None => (None, None),
    };
    let leads = json!({"field": "web_form", "op": "eq", "value": name}).to_string();
    let values = json!({
        "name": name,
        "doc": doc,
        "rows": rows,
        "campaigns": view::choices(app, viewer, "campaign", None).await?,
        "surveys": view::choices(app, viewer, crate::surveys::SURVEY, None).await?,
        "snippet": code,
        "link": link,
        "leads_href": format!("/e/lead?filter={}", crate::screens::encode(&leads)),
        "errors": errors,
    });
    let title = shell::text(viewer.locale, "forms.designer", &[("name", name.to_owned())]);
    html("studio_form.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/forms/{name}`: the designer's choices saved as the web form: the fields
/// ticked, in the order given, with their questions and whether they are required.
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let catalog = app.catalog();
    let lead = catalog.entity(WEB_FORM_ENTITY).ok_or_else(|| ApiError::not_found("no lead entity"))?;
    let mut fields: Vec<(usize, Json)> = lead
        .live_fields()
        .filter(|f| form.get(&format!("ask.{}", f.name)) == Some("true"))
        .map(|f| {
            let order = text(&format!("order.{}", f.name)).and_then(|o| o.parse().ok()).unwrap_or(usize::MAX);
            let mut asked = json!({"field": f.name});
            if form.get(&format!("required.{}", f.name)) == Some("true") {
                asked["required"] = json!(true);
            }
            if let (Some(zh), Some(en)) = (text(&format!("q_zh.{}", f.name)), text(&format!("q_en.{}", f.name))) {
                asked["label"] = json!({"zh-CN": zh, "en": en});
            }
            (order, asked)
        })
        .collect();
    fields.sort_by_key(|(order, _)| *order);
    let mut doc = Map::new();
    doc.insert("name".into(), json!(name));
    doc.insert("label".into(), json!({"zh-CN": text("label_zh").unwrap_or_else(|| name.clone()), "en": text("label_en").unwrap_or_else(|| name.clone())}));
    doc.insert("fields".into(), Json::Array(fields.into_iter().map(|(_, f)| f).collect()));
    doc.insert(
        "thanks".into(),
        json!({"zh-CN": text("thanks_zh").unwrap_or_default(), "en": text("thanks_en").unwrap_or_default()}),
    );
    for (key, field) in [("campaign", "campaign"), ("survey", "survey"), ("owner", "owner"), ("redirect", "redirect")] {
        if let Some(value) = text(field) {
            doc.insert(key.into(), json!(value));
        }
    }
    if form.get("enabled") != Some("true") {
        doc.insert("enabled".into(), json!(false));
    }
    let doc = Json::Object(doc);
    match crate::metadata::put_document(&app, Some(viewer.principal.user_id), DocKind::WebForm, &name, &doc).await {
        Ok(_) => Ok(redirect_with(&format!("/studio/forms/{name}"), Some(&viewer.text("studio.applied")))),
        Err(ApiError::InvalidMetadata(errors)) => {
            let said = errors.iter().map(ToString::to_string).collect();
            Ok(unprocessable(designer_page(&app, &viewer, &name, &doc, said).await?))
        }
        Err(e) => Err(e),
    }
}
