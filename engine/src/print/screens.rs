//! The print page of a record (`/e/{entity}/{id}/print`) and the studio's print templates:
//! the list, and an editor that previews a template against a chosen record without saving.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use crm_model::Action;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::RenderError;
use crate::app::{App, AppState};
use crate::error::ApiResult;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::screens::{Posted, Viewer, html, redirect_with};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintQuery {
    template: Option<String>,
}

/// `GET /e/{entity}/{id}/print?template=NAME`: the record printed with the chosen template,
/// else the entity's default.
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PrintQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Read)?;
    let template = super::template(&catalog, &entity_name, q.template.as_deref())?;
    let data = super::data(&app, &viewer, entity, &id).await?;
    Ok(match super::render(template.name.as_str(), &template.source, &data) {
        Ok(body) => Html(body).into_response(),
        Err(error) => failed(&app, &viewer, &error)?,
    })
}

/// The page that says a template could not print, in the viewer's language.
fn failed(app: &App, viewer: &Viewer, error: &RenderError) -> ApiResult<Response> {
    let detail = match error {
        RenderError::Runaway => viewer.text("print.runaway"),
        RenderError::Failed(why) => crate::screens::shell::text(viewer.locale, "print.failed", &[("why", why.clone())]),
    };
    let title = viewer.text("print.cannot_print");
    let context = viewer.page(&app.catalog(), None, &title, json!({"status": 422, "detail": detail}));
    let mut response = html("error.html", context)?;
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

/// The print templates of an entity as the record view offers them: name and label.
pub fn offered(app: &App, viewer: &Viewer, entity: &str) -> Vec<Json> {
    app.catalog()
        .print_templates(entity)
        .iter()
        .map(|t| json!({"name": t.name, "label": t.label.get(viewer.locale)}))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    new: Option<String>,
}

/// `GET /studio/prints`: every print template, and a name box for a new one.
pub async fn templates(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<NewTemplate>,
) -> ApiResult<Response> {
    if let Some(name) = q.new.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        return Ok(
            axum::response::Redirect::to(&format!("/studio/prints/{}", crate::screens::encode(name))).into_response()
        );
    }
    let catalog = app.catalog();
    let rows: Vec<Json> = catalog
        .docs()
        .print_templates
        .values()
        .map(|t| {
            let entity = catalog.entity(t.entity.as_str()).map(|e| e.def.label.get(viewer.locale));
            json!({"name": t.name, "label": t.label.get(viewer.locale), "entity": t.entity, "entity_label": entity, "default": t.default})
        })
        .collect();
    let title = viewer.text("studio.prints");
    html("studio_prints.html", viewer.page(&catalog, None, &title, json!({"templates": rows})))
}

/// `GET /studio/prints/{name}`: the editor (a new template when the name is free).
pub async fn template(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let form = match app.catalog().docs().print_templates.get(name.as_str()) {
        Some(t) => json!({
            "label_zh": t.label.zh_cn, "label_en": t.label.en, "entity": t.entity, "source": t.source, "default": t.default,
        }),
        None => json!({"source": "", "default": false}),
    };
    editor(&app, &viewer, &name, form, Vec::new(), None)
}

fn editor(
    app: &App,
    viewer: &Viewer,
    name: &str,
    form: Json,
    errors: Vec<String>,
    preview: Option<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let values = json!({
        "name": name,
        "exists": catalog.docs().print_templates.contains_key(name),
        "form": form,
        "errors": errors,
        "entities": catalog.entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(viewer.locale)})).collect::<Vec<_>>(),
        "preview": preview,
        "data_schema": super::DATA_SCHEMA,
    });
    let title = crate::screens::shell::text(viewer.locale, "studio.print_title", &[("name", name.to_owned())]);
    html("studio_print.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/prints/{name}`: saves the template (it must compile), or with `preview`
/// renders the source as typed against a record, saving nothing.
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty());
    let doc = json!({
        "name": name,
        "label": {"zh-CN": text("label_zh").unwrap_or(&name), "en": text("label_en").unwrap_or(&name)},
        "entity": text("entity").unwrap_or_default(),
        "source": form.get("source").unwrap_or_default(),
        "default": form.get("default") == Some("true"),
    });
    let shown = json!({
        "label_zh": doc["label"]["zh-CN"], "label_en": doc["label"]["en"], "entity": doc["entity"],
        "source": doc["source"], "default": doc["default"], "record_id": text("record_id"),
    });
    if form.get("preview") == Some("yes") {
        return match preview(&app, &viewer, &doc, text("record_id")).await? {
            Ok(page) => editor(&app, &viewer, &name, shown, Vec::new(), Some(page)),
            Err(error) => editor(&app, &viewer, &name, shown, vec![error], None).map(crate::screens::unprocessable),
        };
    }
    let by = Some(viewer.principal.user_id);
    match crate::metadata::put_document(&app, by, crm_model::DocKind::PrintTemplate, &name, &doc).await {
        Ok(_) => Ok(redirect_with(&format!("/studio/prints/{name}"), Some(&viewer.text("studio.applied")))),
        Err(crate::error::ApiError::InvalidMetadata(errors)) => {
            let errors = errors.iter().map(ToString::to_string).collect();
            editor(&app, &viewer, &name, shown, errors, None).map(crate::screens::unprocessable)
        }
        Err(e) => Err(e),
    }
}

/// A template as typed, rendered against a record the viewer reads: the page, or why not.
async fn preview(app: &App, viewer: &Viewer, doc: &Json, record_id: Option<&str>) -> ApiResult<Result<String, String>> {
    let catalog = app.catalog();
    let entity_name = doc["entity"].as_str().unwrap_or_default();
    let Some(entity) = catalog.entity(entity_name).filter(|_| viewer.principal.sees(entity_name)) else {
        return Ok(Err(viewer.text("studio.print_pick_entity")));
    };
    let Some(id) = record_id else { return Ok(Err(viewer.text("studio.print_pick_record"))) };
    let source = doc["source"].as_str().unwrap_or_default();
    if let Some(error) = super::compile_error("preview", source) {
        return Ok(Err(error));
    }
    let data = match super::data(app, viewer, entity, id).await {
        Ok(data) => data,
        Err(crate::error::ApiError::NotFound(_)) => return Ok(Err(viewer.text("error.not_found"))),
        Err(e) => return Err(e),
    };
    Ok(super::render("preview", source, &data).map_err(|e| match e {
        RenderError::Runaway => viewer.text("print.runaway"),
        RenderError::Failed(why) => why,
    }))
}

/// `POST /studio/prints/{name}/delete`
pub async fn delete(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    super::remove_template(&app, Some(viewer.principal.user_id), &name).await?;
    Ok(redirect_with("/studio/prints", Some(&viewer.text("studio.applied"))))
}
