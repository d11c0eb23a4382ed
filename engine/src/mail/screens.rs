//! The mail screens: composing a mailing for a list's selection (or everything its filters
//! show) with a merge-field picker and a preview; a mailing's recipients and their statuses on
//! its record page, with sending, scheduling and cancelling; the mails in a recipient's
//! timeline; and, in the studio, the mail server's and the SMS provider's settings with a test.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use crm_model::{Action, Entity};
use crm_store::mail::{self as store, Status};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::compose::{self, Recipients, When};
use super::merge::{Reader, Template};
use super::{MAILING, TEMPLATE, settings};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiPath, ApiQuery};
use crate::records::{self, ListParams, Source};
use crate::screens::list::filter_bar;
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable, view};

/// Recipients shown on a mailing's page; the API pages through the rest.
const SHOWN: u32 = 100;

/// Mails shown in a recipient's timeline.
const IN_TIMELINE: i64 = 20;

/// What the compose form holds, from its query or its post.
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The chosen records' ids (`ids=a,b` from a list, or one `ids` per record).
    fn ids(&self) -> Vec<Uuid> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == "ids")
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|id| id.trim().parse().ok())
            .collect()
    }

    /// The list's own query (its filters), when the mailing is for everything it shows.
    fn list_query(&self) -> Vec<(String, String)> {
        self.get("query").map(|q| serde_urlencoded::from_str(q).unwrap_or_default()).unwrap_or_default()
    }
}

/// The recipients a form names: the chosen ids, else what the list's filters show.
async fn recipients(app: &App, viewer: &Viewer, entity: &Entity, form: &Form) -> ApiResult<Recipients> {
    let ids = form.ids();
    let filter = if ids.is_empty() { filter_bar(app, viewer, entity, form.list_query()).await?.1 } else { None };
    let filter =
        filter.map(|text| serde_json::from_str(&text)).transpose().map_err(|e| ApiError::Internal(e.into()))?;
    let all = ids.is_empty() && filter.is_none();
    Ok(Recipients { entity: entity.name().to_string(), ids, filter, all })
}

/// How many recipients a selection has, as the sender reads them.
async fn count(app: &App, viewer: &Viewer, recipients: &Recipients) -> ApiResult<usize> {
    if !recipients.ids.is_empty() {
        return Ok(recipients.ids.len());
    }
    let filter = recipients.filter.as_ref().map(Json::to_string);
    let params = ListParams { filter, limit: Some(1), count: true, ..ListParams::default() };
    let page = records::list(app, &viewer.principal, &recipients.entity, &params).await?;
    Ok(page.total.unwrap_or_default() as usize)
}

/// The first recipient, to preview the mail for.
async fn first(app: &App, viewer: &Viewer, recipients: &Recipients) -> ApiResult<Option<Uuid>> {
    if let Some(id) = recipients.ids.first() {
        return Ok(Some(*id));
    }
    let filter = recipients.filter.as_ref().map(Json::to_string);
    let params = ListParams { filter, limit: Some(1), fields: Some("id".into()), ..ListParams::default() };
    let page = records::list(app, &viewer.principal, &recipients.entity, &params).await?;
    Ok(page.records().first().map(crm_store::Record::id))
}

/// The merge fields a template for `entity` can use, as (label, code) pairs.
fn merge_fields(app: &App, viewer: &Viewer, entity: &Entity) -> Vec<(String, String)> {
    let catalog = app.catalog();
    let hidden = viewer.principal.hidden(entity.name().as_str());
    let mut fields = vec![(viewer.text("mail.salutation"), "{{ recipient.salutation }}".to_owned())];
    fields.extend(
        entity
            .live_fields()
            .filter(|f| !hidden.contains(&f.name))
            .map(|f| (f.label.get(viewer.locale).to_owned(), format!("{{{{ recipient.{} }}}}", f.name))),
    );
    for field in entity.live_fields() {
        let Some(target) = field.reference_target().and_then(|t| catalog.entity(t)) else { continue };
        if target.name().as_str() == crm_model::USER_ENTITY {
            continue;
        }
        if let Some(title) = target.title_field() {
            let label = format!("{} › {}", field.label.get(viewer.locale), title.label.get(viewer.locale));
            fields.push((label, format!("{{{{ {}.{} }}}}", target.name(), title.name)));
        }
    }
    // A webinar's invitation merges the meeting's link, number and password (M-6).
    if let Some(campaign) = catalog.entity("campaign") {
        for name in ["meeting_url", "meeting_id", "meeting_password", "meeting_at"] {
            if let Some(field) = campaign.field(name) {
                let label = format!("{} › {}", campaign.def.label.get(viewer.locale), field.label.get(viewer.locale));
                fields.push((label, format!("{{{{ campaign.{name} }}}}")));
            }
        }
    }
    for (key, code) in [
        ("mail.owner_name", "{{ owner.name }}"),
        ("mail.owner_mobile", "{{ owner.mobile }}"),
        ("mail.owner_email", "{{ owner.email }}"),
        ("mail.campaign_name", "{{ campaign.name }}"),
        ("mail.company_name", "{{ company.name }}"),
        ("mail.unsubscribe_url", "{{ unsubscribe_url }}"),
        ("mail.survey_url", "{{ survey_url }}"),
    ] {
        fields.push((viewer.text(key), code.to_owned()));
    }
    fields
}

/// What went wrong, in the viewer's words, for a form's error box.
fn said(viewer: &Viewer, error: &ApiError) -> Vec<String> {
    match error {
        ApiError::Invalid(errors) => errors
            .iter()
            .map(|e| {
                let label = viewer.text(&format!("mail.field_{}", e.field.replace('/', "_")));
                let label = if label.starts_with("mail.field_") { e.field.clone() } else { label };
                format!("{label}: {}", viewer.error_text(e))
            })
            .collect(),
        other => {
            let (_, code, _) = other.parts();
            let key = format!("error.{code}");
            let text = viewer.text(&key);
            vec![if text == key || viewer.locale == "en" { other.to_string() } else { text }]
        }
    }
}

/// `GET /mail/compose?entity=&ids=` (or the list's `query=`): the compose page.
pub async fn compose_page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let form = Form { pairs };
    render(&app, &viewer, &form, None, Vec::new()).await
}

async fn render(
    app: &App,
    viewer: &Viewer,
    form: &Form,
    preview: Option<Json>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let name = form.get("entity").unwrap_or_default();
    let entity = viewer.principal.entity(&catalog, name, Action::Send)?.clone();
    let recipients = recipients(app, viewer, &entity, form).await?;
    let count = count(app, viewer, &recipients).await?;
    let templates =
        view::choices(app, viewer, TEMPLATE, Some(json!({"field": "recipient_entity", "op": "eq", "value": name})))
            .await?;
    let campaigns = view::choices(app, viewer, "campaign", None).await?;
    // A template chosen (and loaded) fills the subject and body the form does not have yet.
    let template = match form.get("template").and_then(|t| t.parse::<Uuid>().ok()) {
        Some(id) if form.get("action") == Some("load") || form.get("subject").is_none() => {
            let out = records::get(app, &viewer.principal, TEMPLATE, &id.to_string(), None).await?;
            serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))?
        }
        _ => Json::Null,
    };
    let pick = |field: &str| template.get(field).and_then(Json::as_str).or(form.get(field)).unwrap_or_default();
    let texts = form.get("channel") == Some("sms");
    let sms_templates = if texts {
        let filter = json!({"field": "recipient_entity", "op": "eq", "value": name});
        view::choices(app, viewer, crate::sms::TEMPLATE, Some(filter)).await?
    } else {
        Vec::new()
    };
    let list_href = match form.get("query") {
        Some(query) => format!("/e/{name}?{query}"),
        None => format!("/e/{name}"),
    };
    let values = json!({
        "entity": name,
        "entity_label": entity.def.label.get(viewer.locale),
        "ids": recipients.ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","),
        "query": form.get("query"),
        "selected": !recipients.ids.is_empty(),
        "count": count,
        "limit": viewer.principal.access.send_limit,
        "templates": templates,
        "campaigns": campaigns,
        "template": form.get("template"),
        "campaign": form.get("campaign"),
        "subject": pick("subject"),
        "body": pick("body"),
        "scheduled_at": form.get("scheduled_at"),
        "fields": merge_fields(app, viewer, &entity),
        "texts": texts,
        "sms_templates": sms_templates,
        "sms_template": form.get("sms_template"),
        "preview": preview,
        "errors": errors,
        "list_href": list_href,
    });
    let title = viewer.text(if texts { "sms.compose" } else { "mail.compose" });
    html("mail_compose.html", viewer.page(&catalog, Some(name), &title, values))
}

/// A `datetime-local` value in the viewer's time zone, as a moment.
fn moment(viewer: &Viewer, text: Option<&str>) -> Option<DateTime<Utc>> {
    let local = NaiveDateTime::parse_from_str(text?, "%Y-%m-%dT%H:%M").ok()?;
    Some(local.and_local_timezone(viewer.offset).single()?.with_timezone(&Utc))
}

/// `POST /mail/compose`: a preview, a template loaded, or the mailing saved — as a draft,
/// sent now or scheduled — and its page shown.
pub async fn compose_post(State(app): State<AppState>, viewer: Viewer, posted: Posted) -> ApiResult<Response> {
    let form = Form { pairs: posted.0 };
    let action = form.get("action").unwrap_or("draft");
    let catalog = app.catalog();
    let name = form.get("entity").unwrap_or_default();
    let entity = viewer.principal.entity(&catalog, name, Action::Send)?.clone();
    if action == "load" {
        return render(&app, &viewer, &form, None, Vec::new()).await;
    }
    let subject = form.get("subject").unwrap_or_default().to_owned();
    let body = form.get("body").unwrap_or_default().to_owned();
    if action == "preview" {
        let recipients = recipients(&app, &viewer, &entity, &form).await?;
        let shown = match preview(&app, &viewer, &form, &recipients, &subject, &body).await {
            Ok(shown) => shown,
            Err(e) => return Ok(unprocessable(render(&app, &viewer, &form, None, said(&viewer, &e)).await?)),
        };
        return render(&app, &viewer, &form, Some(shown), Vec::new()).await;
    }
    let send = match action {
        "now" => When::Now,
        "later" => When::Later,
        _ => When::Draft,
    };
    let recipients = recipients(&app, &viewer, &entity, &form).await?;
    let chosen = match (recipients.filter, recipients.all) {
        (Some(filter), _) => json!({"entity": name, "filter": filter}),
        (None, true) => json!({"entity": name, "all": true}),
        (None, false) => json!({"entity": name, "ids": recipients.ids}),
    };
    let mut request = match form.get("channel") {
        Some("sms") => json!({"recipients": chosen, "sms_template": form.get("sms_template"), "send": send}),
        _ => json!({"recipients": chosen, "subject": subject, "body": body, "send": send}),
    };
    for field in ["template", "campaign"] {
        if let Some(id) = form.get(field) {
            request[field] = json!(id);
        }
    }
    if send == When::Later {
        request["scheduled_at"] = json!(moment(&viewer, form.get("scheduled_at")));
    }
    match compose::compose(&app, &viewer.principal, Source::Screen, &request).await {
        Ok(done) => {
            let id = done["mailing"]["id"].as_str().unwrap_or_default();
            let key = format!("mail.saved_{action}");
            let message = crate::screens::shell::text(viewer.locale, &key, &[("n", done["recipients"].to_string())]);
            Ok(redirect_with(&format!("/e/{MAILING}/{id}"), Some(&message)))
        }
        Err(e @ (ApiError::Invalid(_) | ApiError::Forbidden { .. })) => {
            Ok(unprocessable(render(&app, &viewer, &form, None, said(&viewer, &e)).await?))
        }
        Err(e) => Err(e),
    }
}

/// The mail (or text) as its first recipient would get it.
async fn preview(
    app: &App,
    viewer: &Viewer,
    form: &Form,
    recipients: &Recipients,
    subject: &str,
    body: &str,
) -> ApiResult<Json> {
    let Some(id) = first(app, viewer, recipients).await? else {
        return Err(ApiError::field("recipients", "empty", viewer.text("mail.no_recipients")));
    };
    let campaign = form.get("campaign").and_then(|c| c.parse().ok());
    let mut reader = Reader::new(app, viewer.principal.clone());
    if form.get("channel") == Some("sms") {
        let template = form
            .get("sms_template")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| ApiError::field("sms_template", "required", viewer.text("sms.choose_template")))?;
        let template = reader.sms_template(template).await?;
        let recipient = reader
            .recipient(&recipients.entity, id, campaign, crate::sms::MOBILE)
            .await?
            .ok_or_else(|| ApiError::field("recipients", "empty", viewer.text("mail.no_recipients")))?;
        let to = recipient.address.unwrap_or_default();
        let (_, read) = template
            .render(to.clone(), &recipient.data)
            .map_err(|e| ApiError::field("params", "invalid_template", e))?;
        let parts = crate::sms::segments(&read);
        return Ok(json!({"to": to, "text": read, "parts": parts}));
    }
    let template = Template::new(subject, body)?;
    let recipient = reader
        .recipient(&recipients.entity, id, campaign, super::ADDRESS)
        .await?
        .ok_or_else(|| ApiError::field("recipients", "empty", viewer.text("mail.no_recipients")))?;
    let (subject, html) =
        template.render(&recipient.data).map_err(|e| ApiError::field("body", "invalid_template", e))?;
    Ok(json!({"to": recipient.address, "subject": subject, "html": html}))
}

/// The recipients' part of a mailing's page: counts by status, the first recipients with
/// the server's answers, and what the viewer may do with it now. Null for other entities.
pub async fn panel(app: &App, viewer: &Viewer, entity: &str, id: Uuid, record: &Json) -> ApiResult<Json> {
    if entity != MAILING {
        return Ok(Json::Null);
    }
    let counts = store::counts(&app.db, id).await?;
    let rows = store::page(&app.db, id, None, None, i64::from(SHOWN)).await?;
    let catalog = app.catalog();
    let recipient_entity = record.get("recipient_entity").and_then(Json::as_str).unwrap_or_default();
    let mut wanted = view::Wanted::new();
    if catalog.entity(recipient_entity).is_some() {
        wanted.insert(recipient_entity.to_owned(), rows.iter().map(|r| r.record_id).collect());
    }
    let titles = view::titles(app, &viewer.principal, wanted).await?;
    let status_text = |status: Status| viewer.text(&format!("mail.status_{}", status.as_str()));
    let at = |moment: Option<DateTime<Utc>>| {
        moment.map(|m| m.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string())
    };
    let rows: Vec<Json> = rows
        .iter()
        .map(|d| {
            json!({
                "href": titles.contains_key(&d.record_id).then(|| format!("/e/{}/{}", d.entity, d.record_id)),
                "name": titles.get(&d.record_id).cloned().unwrap_or_else(|| viewer.text("mail.hidden_recipient")),
                "address": d.address,
                "status": d.status.as_str(),
                "status_text": status_text(d.status),
                "answer": d.answer,
                "sent_at": at(d.sent_at),
                "opened_at": at(d.opened_at),
                "clicked_at": at(d.clicked_at),
            })
        })
        .collect();
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let counts: Vec<Json> = Status::ALL
        .iter()
        .filter_map(|s| {
            counts
                .iter()
                .find(|(c, _)| c == s)
                .map(|(_, n)| json!({"status": s.as_str(), "text": status_text(*s), "n": n}))
        })
        .collect();
    let (opened, clicked) = store::engaged(&app.db, id).await?;
    let status = record.get("status").and_then(Json::as_str).unwrap_or_default();
    let may_edit = viewer.principal.access.allows(MAILING, Action::Edit);
    Ok(json!({
        "id": id,
        "total": total,
        "counts": counts,
        "opened": opened,
        "clicked": clicked,
        "rows": rows,
        "more": total > i64::from(SHOWN),
        "can_send": may_edit && matches!(status, "draft" | "scheduled"),
        "can_cancel": may_edit && matches!(status, "draft" | "scheduled" | "queued"),
    }))
}

/// `POST /mail/{id}/send`: a draft sent now or scheduled, or a mailing cancelled, from its page.
pub async fn send(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<Uuid>,
    form: Posted,
) -> ApiResult<Response> {
    let back = format!("/e/{MAILING}/{id}");
    let outcome = match form.get("action").unwrap_or_default() {
        "cancel" => compose::cancel(&app, &viewer.principal, Source::Screen, id).await,
        action => {
            let send = if action == "later" { When::Later } else { When::Now };
            let request = json!({"send": send, "scheduled_at": moment(&viewer, form.get("scheduled_at"))});
            compose::release(&app, &viewer.principal, Source::Screen, id, &request).await
        }
    };
    match outcome {
        Ok(_) => Ok(redirect_with(&back, Some(&viewer.text("mail.updated")))),
        Err(e @ (ApiError::Invalid(_) | ApiError::Forbidden { .. } | ApiError::AlreadyDone { .. })) => {
            Ok(redirect_with(&back, Some(&said(&viewer, &e).join("; "))))
        }
        Err(e) => Err(e),
    }
}

/// The mails a record received (or that were not sent to it, and why), as timeline entries.
pub async fn timeline(app: &App, viewer: &Viewer, entity: &Entity, id: Uuid) -> ApiResult<Vec<(DateTime<Utc>, Json)>> {
    if entity.column(super::ADDRESS).is_none() {
        return Ok(Vec::new());
    }
    let mails = store::of_record(&app.db, entity.name().as_str(), id, IN_TIMELINE).await?;
    let sees = viewer.principal.sees(MAILING);
    Ok(mails
        .into_iter()
        .map(|d| {
            let at = d.sent_at.unwrap_or(d.updated_at);
            let mut status = viewer.text(&format!("mail.status_{}", d.status.as_str()));
            for (moment, key) in [(d.opened_at, "mail.opened"), (d.clicked_at, "mail.clicked")] {
                if moment.is_some() {
                    status = format!("{status} · {}", viewer.text(key));
                }
            }
            // A text went to a mobile number, a mail to an address with an `@`.
            let texted = d.address.as_deref().is_some_and(|a| !a.contains('@'));
            let key = if texted { "timeline.sms" } else { "timeline.mail" };
            let entry = json!({
                "action": crate::screens::shell::text(viewer.locale, key, &[("status", status)]),
                "actor": Json::Null,
                "at": at.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string(),
                "item": {
                    "text": d.subject.clone().unwrap_or_else(|| viewer.text("mail.mailing")),
                    "href": if sees { format!("/e/{MAILING}/{}", d.mailing_id) } else { String::new() },
                },
                "changes": [],
            });
            (at, entry)
        })
        .collect())
}

/// The services the studio sets up: the mail server and the SMS provider.
#[derive(Clone, Copy)]
enum Setup {
    Mail,
    Sms,
}

impl Setup {
    fn path(self) -> &'static str {
        match self {
            Setup::Mail => "/studio/mail",
            Setup::Sms => "/studio/sms",
        }
    }

    async fn shown(self, app: &App, viewer: &Viewer) -> ApiResult<Json> {
        match self {
            Setup::Mail => settings::get(app, &viewer.principal).await,
            Setup::Sms => crate::sms::get(app, &viewer.principal).await,
        }
    }

    /// The settings as the form posts them. The secret box left empty keeps the saved one; a
    /// ticked box clears it.
    fn body(self, form: &Posted) -> Json {
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        let number = |name: &str| text(name).parse::<u32>().unwrap_or(0);
        let (mut body, secret) = match self {
            Setup::Mail => (
                json!({
                    "host": text("host"), "port": number("port"), "security": text("security"),
                    "username": text("username"), "from_address": text("from_address"),
                    "from_name": text("from_name"), "rate_per_second": number("rate_per_second"),
                    "tracking": form.get("tracking") == Some("true"),
                }),
                "password",
            ),
            Setup::Sms => (
                json!({
                    "endpoint": text("endpoint"), "access_key_id": text("access_key_id"),
                    "sign_name": text("sign_name"), "rate_per_second": number("rate_per_second"),
                }),
                "access_key_secret",
            ),
        };
        if form.get("clear_secret") == Some("true") {
            body[secret] = json!("");
        } else if let Some(given) = form.get("secret").filter(|p| !p.is_empty()) {
            body[secret] = json!(given);
        }
        body
    }

    async fn put(self, app: &App, viewer: &Viewer, body: &Json) -> ApiResult<Json> {
        match self {
            Setup::Mail => settings::put(app, &viewer.principal, body).await,
            Setup::Sms => crate::sms::put(app, &viewer.principal, body).await,
        }
    }

    async fn test(self, app: &App, viewer: &Viewer, form: &Posted) -> ApiResult<Json> {
        let to = form.get("to").unwrap_or_default();
        match self {
            Setup::Mail => settings::test(app, &viewer.principal, &json!({"to": to})).await,
            Setup::Sms => {
                let test = json!({"to": to, "template": form.get("template").unwrap_or_default()});
                crate::sms::test(app, &viewer.principal, &test).await
            }
        }
    }

    fn page(
        self,
        app: &App,
        viewer: &Viewer,
        values: Json,
        errors: Vec<String>,
        tested: Option<String>,
    ) -> ApiResult<Response> {
        let catalog = app.catalog();
        let (title, template) = match self {
            Setup::Mail => ("mail.settings", "studio_mail.html"),
            Setup::Sms => ("sms.settings", "studio_sms.html"),
        };
        let values = json!({"s": values, "errors": errors, "tested": tested});
        html(template, viewer.page(&catalog, None, &viewer.text(title), values))
    }
}

async fn settings_page(app: &App, viewer: &Viewer, setup: Setup) -> ApiResult<Response> {
    let saved = setup.shown(app, viewer).await?;
    setup.page(app, viewer, saved, Vec::new(), None)
}

/// Saves the settings, or sends a test with the saved ones.
async fn settings_post(app: &App, viewer: &Viewer, setup: Setup, form: &Posted) -> ApiResult<Response> {
    if form.get("action") == Some("test") {
        let saved = setup.shown(app, viewer).await?;
        return match setup.test(app, viewer, form).await {
            Ok(sent) => {
                let answer = sent["answer"].as_str().unwrap_or_default().to_owned();
                let text = crate::screens::shell::text(viewer.locale, "mail.test_sent", &[("answer", answer)]);
                setup.page(app, viewer, saved, Vec::new(), Some(text))
            }
            Err(e) => Ok(unprocessable(setup.page(app, viewer, saved, said(viewer, &e), None)?)),
        };
    }
    let body = setup.body(form);
    match setup.put(app, viewer, &body).await {
        Ok(_) => Ok(redirect_with(setup.path(), Some(&viewer.text("studio.applied")))),
        Err(e @ (ApiError::Invalid(_) | ApiError::BadRequest { .. })) => {
            Ok(unprocessable(setup.page(app, viewer, body, said(viewer, &e), None)?))
        }
        Err(e) => Err(e),
    }
}

/// `GET /studio/mail`: the mail server's settings and a test mail.
pub async fn mail_settings(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    settings_page(&app, &viewer, Setup::Mail).await
}

/// `POST /studio/mail`
pub async fn save_mail_settings(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    settings_post(&app, &viewer, Setup::Mail, &form).await
}

/// `GET /studio/sms`: the SMS provider's settings and a test text.
pub async fn sms_settings(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    settings_page(&app, &viewer, Setup::Sms).await
}

/// `POST /studio/sms`
pub async fn save_sms_settings(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    settings_post(&app, &viewer, Setup::Sms, &form).await
}
