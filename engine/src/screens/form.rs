//! Create and edit forms: sections of the edit layout, a widget per field type, server-side
//! validation errors beside each field with the user's input kept, and a version conflict
//! (someone saved first) explained with a way to reload.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use crm_model::types::Widget;
use crm_model::{Action, Catalog, Entity, FieldDef, FieldType};
use serde_json::{Map, Value as Json, json};

use super::view;
use super::{Posted, Viewer, html, local_path, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::records;

/// Where a form was opened from and what it shows: the values (stored or as typed), the
/// errors beside fields, and whether it edits an existing record.
struct FormState<'a> {
    entity: &'a Entity,
    values: Map<String, Json>,
    errors: HashMap<String, String>,
    id: Option<String>,
    version: Option<Json>,
    back: Option<String>,
    conflict: bool,
}

/// The new-record form of an entity as a user of one role sees it (their hidden fields left
/// out, read-only ones marked), for the studio; it cannot be sent.
pub(super) async fn preview(app: &App, viewer: &Viewer, entity: &Entity) -> ApiResult<Response> {
    let state = FormState {
        entity,
        values: Map::new(),
        errors: HashMap::new(),
        id: None,
        version: None,
        back: None,
        conflict: false,
    };
    render_form(app, viewer, state, StatusCode::OK, true).await
}

async fn render(app: &App, viewer: &Viewer, state: FormState<'_>, status: StatusCode) -> ApiResult<Response> {
    render_form(app, viewer, state, status, false).await
}

async fn render_form(
    app: &App,
    viewer: &Viewer,
    state: FormState<'_>,
    status: StatusCode,
    preview: bool,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = state.entity;
    let name = entity.name().as_str();
    let hidden = viewer.principal.hidden(name);
    let read_only = viewer.principal.read_only(name);
    let users = super::list::users(app).await?;
    // A lookup input shows the title of the record it holds.
    let refs: Vec<&FieldDef> = entity.live_fields().filter(|f| f.spec().widget == Widget::Lookup).collect();
    let values_json = Json::Object(state.values.clone());
    let titles = view::titles(app, &viewer.principal, view::references(&refs, &[&values_json])).await?;
    let sections: Vec<Json> = entity
        .layout
        .edit
        .sections
        .iter()
        .map(|section| {
            let items: Vec<Json> = section
                .fields
                .iter()
                .filter(|item| !hidden.contains(&item.field))
                .filter_map(|item| entity.field(item.field.as_str()).map(|f| (item, f)))
                .map(|(item, f)| {
                    let value = state.values.get(f.name.as_str()).cloned().unwrap_or(Json::Null);
                    let lookup_title = value.as_str().and_then(|id| id.parse().ok()).and_then(|id| titles.get(&id));
                    json!({
                        "name": f.name,
                        "label": f.label.get(viewer.locale),
                        "help": f.help.as_ref().map(|h| h.get(viewer.locale)),
                        "widget": f.spec().widget,
                        "required": f.required || item.required,
                        "readonly": item.readonly || read_only.contains(&f.name) || f.kept_by_engine(),
                        "value": view::input_value(f, &value, &viewer.offset),
                        "options": options(&catalog, f, &state.values, viewer, &users),
                        "currency": (f.field_type == FieldType::Money).then(|| f.currency()),
                        "percent": f.field_type == FieldType::Percent,
                        "target": f.target,
                        "title_field": f.reference_target().and_then(|t| catalog.entity(t)).and_then(|t| t.title_field()).map(|t| t.name.as_str()),
                        "lookup_title": lookup_title,
                        "max_length": f.max_length(),
                        "error": state.errors.get(f.name.as_str()),
                    })
                })
                .collect();
            json!({"label": section.label.get(viewer.locale), "columns": section.columns, "items": items})
        })
        .collect();
    // Errors on fields the form does not show still have to be seen.
    let shown: Vec<&str> =
        entity.layout.edit.sections.iter().flat_map(|s| s.fields.iter().map(|i| i.field.as_str())).collect();
    let other_errors: Vec<&String> =
        state.errors.iter().filter(|(k, _)| !shown.contains(&k.as_str())).map(|(_, v)| v).collect();
    // The fields the duplicate check looks at, under the rules whose fields the viewer sees.
    let mut duplicate_fields: Vec<&str> = Vec::new();
    for rule in entity.def.duplicates.iter().filter(|r| r.fields.iter().all(|f| !hidden.contains(&f.field))) {
        for field in &rule.fields {
            if !duplicate_fields.contains(&field.field.as_str()) {
                duplicate_fields.push(field.field.as_str());
            }
        }
    }
    let label = entity.def.label.get(viewer.locale).to_owned();
    let title = match &state.id {
        Some(_) => super::shell::text(viewer.locale, "form.edit_title", &[("entity", label.clone())]),
        None => super::shell::text(viewer.locale, "form.new_title", &[("entity", label.clone())]),
    };
    let values = json!({
        "entity": name,
        "entity_label": label,
        "id": state.id,
        "version": state.version,
        "sections": sections,
        "other_errors": other_errors,
        "has_errors": !state.errors.is_empty(),
        "conflict": state.conflict,
        "back": state.back,
        "provinces": crm_model::region::PROVINCES.as_slice(),
        "preview": preview,
        "duplicate_fields": duplicate_fields.join(","),
    });
    let mut response = html("form.html", viewer.page(&catalog, Some(name), &title, values))?;
    *response.status_mut() = status;
    Ok(response)
}

/// The choices of a select-like field.
fn options(
    catalog: &Catalog,
    field: &FieldDef,
    values: &Map<String, Json>,
    viewer: &Viewer,
    users: &[(String, String)],
) -> Vec<(String, String)> {
    match field.field_type {
        _ if field.spec().has_options => {
            field.options.iter().map(|o| (o.value.clone(), o.label.get(viewer.locale).to_owned())).collect()
        }
        // The stages of the record's own set, when it follows another field (a campaign's
        // type); of every set the field may use otherwise.
        FieldType::Stage => {
            let selected =
                field.stage_set_by.as_ref().and_then(|by| values.get(by.field.as_str())).and_then(Json::as_str);
            let sets = match selected.and_then(|_| catalog.stage_set_for(field, selected)) {
                Some(set) => vec![set],
                None => catalog.stage_sets_of(field),
            };
            sets.iter()
                .flat_map(|set| set.stages.iter())
                .map(|s| (s.name.to_string(), s.label.get(viewer.locale).to_owned()))
                .collect()
        }
        FieldType::User => users.to_vec(),
        _ => Vec::new(),
    }
}

/// `GET /e/{entity}/new`: an empty form; query values (`?customer=<id>` from a related
/// panel) are filled in.
pub async fn new(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(prefill): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Create)?;
    let mut values = Map::new();
    for field in entity.live_fields() {
        if let Some(default) = field.default.as_ref().filter(|d| !d.as_str().is_some_and(|s| s.starts_with('$'))) {
            values.insert(field.name.to_string(), default.clone());
        }
    }
    for (name, value) in &prefill {
        if entity.field(name).is_some() {
            values.insert(name.clone(), Json::from(value.as_str()));
        }
    }
    let back = prefill.iter().find(|(k, _)| k == "back").map(|(_, v)| local_path(Some(v)).to_owned());
    let state = FormState { entity, values, errors: HashMap::new(), id: None, version: None, back, conflict: false };
    render(&app, &viewer, state, StatusCode::OK).await
}

/// The record body a form posted: every field it carries that the user may write.
fn posted_values(entity: &Entity, viewer: &Viewer, form: &Posted) -> Map<String, Json> {
    let read_only = viewer.principal.read_only(entity.name().as_str());
    let layout_read_only: Vec<&str> = entity
        .layout
        .edit
        .sections
        .iter()
        .flat_map(|s| s.fields.iter().filter(|i| i.readonly).map(|i| i.field.as_str()))
        .collect();
    entity
        .live_fields()
        .filter(|f| !f.kept_by_engine())
        .filter(|f| !read_only.contains(&f.name) && !layout_read_only.contains(&f.name.as_str()))
        .filter_map(|f| {
            let posted = form.all(f.name.as_str());
            (!posted.is_empty()).then(|| (f.name.to_string(), view::form_value(f, &posted, &viewer.offset)))
        })
        .collect()
}

/// Fields the edit layout marks required that the form sent empty: the layout asks more than
/// the field does, for those who save through this form.
fn layout_required(entity: &Entity, values: &Map<String, Json>) -> Result<(), ApiError> {
    let missing: Vec<FieldError> = entity
        .layout
        .edit
        .sections
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter(|item| item.required && !item.readonly)
        .filter(|item| {
            values.get(item.field.as_str()).is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
        })
        .map(|item| FieldError::new(item.field.to_string(), "required", "a value is required"))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(ApiError::Invalid(missing)) }
}

fn field_errors(viewer: &Viewer, errors: &[FieldError]) -> HashMap<String, String> {
    errors.iter().map(|e| (e.field.clone(), viewer.error_text(e))).collect()
}

/// `POST /e/{entity}/new`
pub async fn create(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Create)?;
    let values = posted_values(entity, &viewer, &form);
    let back = form.get("_back").map(|b| local_path(Some(b)).to_owned());
    let created = match layout_required(entity, &values) {
        Ok(()) => {
            records::create(
                &app,
                &viewer.principal,
                records::Source::Screen,
                &entity_name,
                &Json::Object(values.clone()),
            )
            .await
        }
        Err(missing) => Err(missing),
    };
    match created {
        Ok(record) => {
            let id =
                serde_json::to_value(&record).ok().and_then(|r| r.get("id").and_then(Json::as_str).map(str::to_owned));
            let to = back.unwrap_or_else(|| format!("/e/{entity_name}/{}", id.unwrap_or_default()));
            Ok(redirect_with(&to, Some(&viewer.text("form.created"))))
        }
        Err(ApiError::Invalid(errors)) => {
            let errors = field_errors(&viewer, &errors);
            let state = FormState { entity, values, errors, id: None, version: None, back, conflict: false };
            render(&app, &viewer, state, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e),
    }
}

/// `GET /e/{entity}/{id}/edit`
pub async fn edit(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Edit)?;
    let record = serde_json::to_value(records::get(&app, &viewer.principal, &entity_name, &id, None).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let Json::Object(values) = record else { return Err(ApiError::not_found("no record")) };
    let version = values.get("version").cloned();
    let state =
        FormState { entity, values, errors: HashMap::new(), id: Some(id), version, back: None, conflict: false };
    render(&app, &viewer, state, StatusCode::OK).await
}

/// `POST /e/{entity}/{id}/edit`: saves the form, or (from the stage path, with `_back`) one
/// field and returns to where the user was.
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
    form: Posted,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Edit)?;
    let mut values = posted_values(entity, &viewer, &form);
    let version: Option<i64> = form.get("version").and_then(|v| v.parse().ok());
    let mut body = values.clone();
    if let Some(version) = version {
        body.insert("version".into(), Json::from(version));
    }
    let record_page = format!("/e/{entity_name}/{id}");
    let back = form.get("_back").map(|b| local_path(Some(b)).to_owned());
    let outcome = match layout_required(entity, &values) {
        Ok(()) => {
            records::update(&app, &viewer.principal, records::Source::Screen, &entity_name, &id, &Json::Object(body))
                .await
        }
        Err(missing) => Err(missing),
    };
    // A one-field change from another page (a stage on the path) that needs other fields — a
    // lost deal's reason — is asked for on the whole form; anything else is said where the
    // user was.
    let needs_more =
        matches!(&outcome, Err(ApiError::Invalid(errors)) if errors.iter().any(|e| !values.contains_key(&e.field)));
    if let Some(back) = back.filter(|_| !needs_more) {
        let message = match outcome {
            Ok(_) => viewer.text("form.saved"),
            Err(ApiError::Invalid(errors)) => {
                errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; ")
            }
            Err(ApiError::Conflict(_)) => viewer.text("form.conflict"),
            Err(e) => return Err(e),
        };
        return Ok(redirect_with(&back, Some(&message)));
    }
    let (errors, conflict, status) = match outcome {
        Ok(_) => return Ok(redirect_with(&record_page, Some(&viewer.text("form.saved")))),
        Err(ApiError::Invalid(errors)) => (field_errors(&viewer, &errors), false, StatusCode::UNPROCESSABLE_ENTITY),
        Err(ApiError::Conflict(_)) => (HashMap::new(), true, StatusCode::CONFLICT),
        Err(e) => return Err(e),
    };
    // Fields the form did not carry keep their stored values on the redrawn form.
    let stored = serde_json::to_value(records::get(&app, &viewer.principal, &entity_name, &id, None).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    if let Json::Object(stored) = stored {
        for (k, v) in stored {
            values.entry(k).or_insert(v);
        }
    }
    let version = version.map(Json::from);
    let state = FormState { entity, values, errors, id: Some(id), version, back: None, conflict };
    render(&app, &viewer, state, status).await
}
