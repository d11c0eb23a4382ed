//! The admin studio (administrators only): the entities with their fields — create an entity,
//! add a field of any type with its options, archive a field — each change shown as its plan
//! before it is applied; and the metadata history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use crm_model::changes::{self, ChangeError};
use crm_model::plan::Plan;
use crm_model::types::{TYPES, TypeSpec};
use crm_model::{Catalog, DocKind, Docs};
use serde_json::{Map, Value as Json, json};

use super::{Posted, Viewer, html, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiPath, ApiQuery};

#[derive(serde::Deserialize)]
pub struct Open {
    role: Option<String>,
    stage_set: Option<String>,
}

/// `GET /studio`: the entities, roles and stage sets; `?role=` or `?stage_set=` opens the
/// editor of a new one.
pub async fn home(State(app): State<AppState>, viewer: Viewer, ApiQuery(open): ApiQuery<Open>) -> ApiResult<Response> {
    let named = |name: &Option<String>| name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(super::encode);
    if let Some(role) = named(&open.role) {
        return Ok(axum::response::Redirect::to(&format!("/studio/roles/{role}")).into_response());
    }
    if let Some(set) = named(&open.stage_set) {
        return Ok(axum::response::Redirect::to(&format!("/studio/stage-sets/{set}")).into_response());
    }
    home_page(&app, &viewer, json!({}), Vec::new(), Vec::new())
}

fn home_page(app: &App, viewer: &Viewer, form: Json, plan: Vec<String>, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entities: Vec<Json> = catalog
        .entities()
        .map(|e| {
            json!({
                "name": e.name(),
                "label": e.def.label.get(viewer.locale),
                "fields": e.live_fields().count(),
                "system": e.def.system,
            })
        })
        .collect();
    let roles: Vec<Json> =
        catalog.docs().roles.values().map(|r| json!({"name": r.name, "label": r.label.get(viewer.locale)})).collect();
    let stage_sets: Vec<Json> = catalog
        .docs()
        .stage_sets
        .values()
        .map(|s| json!({"name": s.name, "label": s.label.get(viewer.locale)}))
        .collect();
    let title = viewer.text("studio.title");
    let values = json!({
        "entities": entities,
        "roles": roles,
        "stage_sets": stage_sets,
        "form": form,
        "plan": plan,
        "field_errors": beside_inputs(&errors),
        "errors": errors,
    });
    html("studio_home.html", viewer.page(&catalog, None, &title, values))
}

/// The body of a new entity from the studio's form.
fn entity_body(form: &Posted) -> Json {
    let name = form.get("name").unwrap_or("").trim();
    let zh = form.get("label_zh").unwrap_or("").trim();
    let en = form.get("label_en").unwrap_or("").trim();
    let mut entity = json!({
        "name": name,
        "label": {"zh-CN": zh, "en": en},
        "fields": [{"name": "name", "type": "text", "label": {"zh-CN": "名称", "en": "Name"}, "required": true, "indexed": true}],
    });
    if let Some(icon) = form.get("icon").map(str::trim).filter(|i| !i.is_empty()) {
        entity["icon"] = json!(icon);
    }
    entity
}

/// The body of a new field from the studio's form: every option the field type takes.
fn field_body(form: &Posted) -> Json {
    let text = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty());
    let flag = |name: &str| form.get(name) == Some("true");
    let mut field = Map::new();
    field.insert("name".into(), json!(text("name").unwrap_or("")));
    field.insert("type".into(), json!(text("type").unwrap_or("text")));
    field
        .insert("label".into(), json!({"zh-CN": text("label_zh").unwrap_or(""), "en": text("label_en").unwrap_or("")}));
    if let (Some(zh), Some(en)) = (text("help_zh"), text("help_en")) {
        field.insert("help".into(), json!({"zh-CN": zh, "en": en}));
    }
    for name in ["required", "unique", "indexed", "searchable"] {
        if flag(name) {
            field.insert(name.into(), json!(true));
        }
    }
    if let Some(max) = text("max_length").and_then(|m| m.parse::<u32>().ok()) {
        field.insert("max_length".into(), json!(max));
    }
    for name in ["target", "stage_set", "currency"] {
        if let Some(value) = text(name) {
            field.insert(name.into(), json!(value));
        }
    }
    if let Some(default) = text("default") {
        field.insert("default".into(), json!(default));
    }
    // Options: one per line, `value | 中文 | English`.
    let options: Vec<Json> = form
        .get("options")
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split('|').map(str::trim).collect();
            let value = parts.first().copied().unwrap_or("");
            let zh = parts.get(1).copied().unwrap_or(value);
            let en = parts.get(2).copied().unwrap_or(zh);
            json!({"value": value, "label": {"zh-CN": zh, "en": en}})
        })
        .collect();
    if !options.is_empty() {
        field.insert("options".into(), Json::Array(options));
    }
    Json::Object(field)
}

/// The errors of a metadata change by the form input they belong to, for the page to show
/// beside it: ``entity:x at `/fields/3/max_length`: …`` belongs to `max_length`.
fn beside_inputs(errors: &[String]) -> Json {
    const INPUTS: [&str; 11] = [
        "name",
        "label",
        "type",
        "target",
        "stage_set",
        "default",
        "max_length",
        "currency",
        "options",
        "help",
        "icon",
    ];
    let mut by_input = Map::new();
    for error in errors {
        let Some((path, message)) = error.split_once(" at `").and_then(|(_, rest)| rest.split_once("`: ")) else {
            continue;
        };
        if let Some(input) = path.split('/').find(|segment| INPUTS.contains(segment)) {
            let input = if input == "label" {
                "label_zh"
            } else if input == "help" {
                "help_zh"
            } else {
                input
            };
            by_input.entry(input).or_insert_with(|| json!(message));
        }
    }
    Json::Object(by_input)
}

/// A change's plan in the viewer's words, or the errors that stop it, for the page to show.
fn plan_of(catalog: &Catalog, viewer: &Viewer, next: Result<Docs, ChangeError>) -> Result<Vec<String>, Vec<String>> {
    let next = next.map_err(|e| match e {
        ChangeError::NotFound(what) => vec![what],
        ChangeError::Invalid(errors) => errors.iter().map(ToString::to_string).collect(),
    })?;
    let described = |(next, plan): (Catalog, Plan)| super::plan::describe(&next, &plan, viewer.locale);
    crate::metadata::plan_docs(catalog, next).map(described).map_err(|e| match e {
        ApiError::InvalidMetadata(errors) => errors.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    })
}

/// Applies a metadata change as the studio's user; the errors that stop it come back as text
/// for the page.
pub(super) async fn apply(
    app: &App,
    viewer: &Viewer,
    change: impl Fn(&Docs) -> Result<Docs, ChangeError>,
) -> ApiResult<Result<(), Vec<String>>> {
    match crate::metadata::apply_docs(app, Some(viewer.principal.user_id), change).await {
        Ok(_) => Ok(Ok(())),
        Err(ApiError::InvalidMetadata(errors)) => Ok(Err(errors.iter().map(ToString::to_string).collect())),
        Err(e) => Err(e),
    }
}

/// Saves one whole document (a layout, a role, a rule...) in place of the live one.
pub(super) async fn save_doc(
    app: &App,
    viewer: &Viewer,
    kind: DocKind,
    doc: &Json,
) -> ApiResult<Result<(), Vec<String>>> {
    apply(app, viewer, |docs| {
        let mut next = docs.clone();
        next.insert_json(kind, doc).map_err(ChangeError::Invalid)?;
        Ok(next)
    })
    .await
}

/// A page that shows why what was sent is refused.
pub(crate) fn unprocessable(mut response: Response) -> Response {
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// A page that shows a plan (200) or the errors that stop the change (422).
fn planned_or_refused(response: Response, errors_shown: bool) -> Response {
    if errors_shown { unprocessable(response) } else { response }
}

/// Shows a change's plan (first post), or applies it (the post that confirms it).
async fn plan_or_apply(
    app: &App,
    viewer: &Viewer,
    form: &Posted,
    change: impl Fn(&Docs) -> Result<Docs, ChangeError>,
    done: &str,
) -> ApiResult<Result<Response, (Vec<String>, Vec<String>)>> {
    let catalog = app.catalog();
    match plan_of(&catalog, viewer, change(catalog.docs())) {
        Err(errors) => Ok(Err((Vec::new(), errors))),
        Ok(plan) if form.get("confirm") != Some("yes") => Ok(Err((plan, Vec::new()))),
        Ok(_) => Ok(match apply(app, viewer, change).await? {
            Ok(()) => Ok(redirect_with(done, Some(&viewer.text("studio.applied")))),
            Err(errors) => Err((Vec::new(), errors)),
        }),
    }
}

/// `POST /studio`: a new entity, planned then applied.
pub async fn create_entity(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let body = entity_body(&form);
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let outcome =
        plan_or_apply(&app, &viewer, &form, |docs| changes::create_entity(docs, &body), &format!("/studio/e/{name}"))
            .await?;
    let (plan, errors) = match outcome {
        Ok(response) => return Ok(response),
        Err(shown) => shown,
    };
    let failed = !errors.is_empty();
    Ok(planned_or_refused(home_page(&app, &viewer, form_map(&form), plan, errors)?, failed))
}

fn form_map(form: &Posted) -> Json {
    Json::Object(form.0.iter().filter(|(k, _)| k != "_csrf").map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// `GET /studio/e/{entity}`: the entity's fields and the form to add one.
pub async fn entity(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    entity_page(&app, &viewer, &name, json!({}), Vec::new(), Vec::new()).await
}

async fn entity_page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    form: Json,
    plan: Vec<String>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let fields: Vec<Json> = entity
        .def
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.label.get(viewer.locale),
                "type": f.field_type,
                "type_label": f.spec().label(viewer.locale),
                "required": f.required,
                "unique": f.unique,
                "indexed": f.indexed || f.wants_index(),
                "archived": f.archived,
                // A lookup's target by its name in the viewer's language, not its API name.
                "target": f.target.as_ref().map(|t| catalog.entity(t.as_str()).map_or(t.to_string(), |e| e.def.label.get(viewer.locale).to_owned())),
            })
        })
        .collect();
    let label = entity.def.label.get(viewer.locale).to_owned();
    let values = json!({
        "entity": name,
        "entity_label": label,
        "fields": fields,
        "types": TYPES.iter().map(|t| json!({"name": t.name, "label": t.label(viewer.locale)})).collect::<Vec<_>>(),
        "targets": catalog.entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(viewer.locale)})).collect::<Vec<_>>(),
        "stage_sets": catalog.docs().stage_sets.values().map(|s| json!({"name": s.name, "label": s.label.get(viewer.locale)})).collect::<Vec<_>>(),
        "form": form,
        "plan": plan,
        "field_errors": beside_inputs(&errors),
        "errors": errors,
        // A field made searchable is being indexed: the page follows it.
        "reindex": crm_store::tasks::latest(&app.db, crate::search::REINDEX, name)
            .await?
            .filter(|t| t.state == "running")
            .map(|t| json!({"id": t.id, "done": t.done, "total": t.total})),
    });
    let title = super::shell::text(viewer.locale, "studio.entity_title", &[("entity", label)]);
    html("studio_entity.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/e/{entity}/fields`: a new field, planned then applied.
pub async fn add_field(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let body = field_body(&form);
    let back = format!("/studio/e/{name}");
    match plan_or_apply(&app, &viewer, &form, |docs| changes::add_field(docs, &name, &body, true), &back).await? {
        Ok(response) => Ok(response),
        Err((plan, errors)) => {
            let failed = !errors.is_empty();
            Ok(planned_or_refused(entity_page(&app, &viewer, &name, form_map(&form), plan, errors).await?, failed))
        }
    }
}

/// `GET /studio/e/{entity}/fields/{field}`: a field's labels, options and flags, to change
/// (its name and type stay; an archived field can be restored here).
pub async fn field(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((name, field)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(&name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let def = entity
        .def
        .fields
        .iter()
        .find(|f| f.name.as_str() == field)
        .ok_or_else(|| ApiError::not_found(format!("no field `{field}`")))?;
    let options: Vec<String> =
        def.options.iter().map(|o| format!("{} | {} | {}", o.value, o.label.zh_cn, o.label.en)).collect();
    let form = json!({
        "name": def.name, "type": def.field_type, "label_zh": def.label.zh_cn, "label_en": def.label.en,
        "help_zh": def.help.as_ref().map(|h| h.zh_cn.clone()), "help_en": def.help.as_ref().map(|h| h.en.clone()),
        "required": if def.required { "true" } else { "" }, "unique": if def.unique { "true" } else { "" },
        "indexed": if def.indexed { "true" } else { "" }, "searchable": if def.searchable { "true" } else { "" },
        "options": options.join("\n"), "default": def.default.as_ref().map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned)),
        "max_length": def.max_length, "archived": def.archived,
    });
    field_page(&app, &viewer, &name, form, Vec::new(), Vec::new())
}

fn field_page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    form: Json,
    plan: Vec<String>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let title = super::shell::text(
        viewer.locale,
        "studio.field_title",
        &[("field", form["name"].as_str().unwrap_or_default().to_owned())],
    );
    let type_label = form["type"].as_str().and_then(TypeSpec::by_name).map(|t| t.label(viewer.locale));
    let values = json!({"entity": name, "form": form, "type_label": type_label, "plan": plan,
        "field_errors": beside_inputs(&errors), "errors": errors});
    html("studio_field.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/e/{entity}/fields/{field}`: the change, planned then applied.
pub async fn save_field(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((name, field)): ApiPath<(String, String)>,
    form: Posted,
) -> ApiResult<Response> {
    let mut patch = field_body(&form);
    if let Some(object) = patch.as_object_mut() {
        object.remove("type");
        for flag in ["required", "unique", "indexed", "searchable"] {
            object.entry(flag).or_insert(json!(false));
        }
        for optional in ["help", "default", "max_length", "options"] {
            object.entry(optional).or_insert(Json::Null);
        }
        if form.get("restore") == Some("true") {
            object.insert("archived".into(), json!(false));
        }
        object.insert("name".into(), json!(field));
    }
    let back = format!("/studio/e/{name}");
    match plan_or_apply(&app, &viewer, &form, |docs| changes::patch_field(docs, &name, &field, &patch), &back).await? {
        Ok(response) => Ok(response),
        Err((plan, errors)) => {
            let failed = !errors.is_empty();
            let mut shown = form_map(&form);
            shown["name"] = json!(field);
            Ok(planned_or_refused(field_page(&app, &viewer, &name, shown, plan, errors)?, failed))
        }
    }
}

/// `POST /studio/e/{entity}/fields/{field}/move`: one place up or down (`direction`), which
/// is the order new layouts and lists take them in.
pub async fn move_field(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((name, field)): ApiPath<(String, String)>,
    form: Posted,
) -> ApiResult<Response> {
    let up = form.get("direction") == Some("up");
    let change = |docs: &Docs| {
        let mut next = docs.clone();
        let def =
            next.entities.get_mut(name.as_str()).ok_or_else(|| ChangeError::NotFound(format!("no entity `{name}`")))?;
        let at = def
            .fields
            .iter()
            .position(|f| f.name.as_str() == field)
            .ok_or_else(|| ChangeError::NotFound(format!("no field `{field}`")))?;
        let other = if up { at.checked_sub(1) } else { Some(at + 1).filter(|o| *o < def.fields.len()) };
        if let Some(other) = other {
            def.fields.swap(at, other);
        }
        Ok(next)
    };
    crate::metadata::apply_docs(&app, Some(viewer.principal.user_id), change).await?;
    Ok(redirect_with(&format!("/studio/e/{name}"), None))
}

/// `POST /studio/e/{entity}/fields/{field}/archive`: hidden, its data kept.
pub async fn archive_field(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((name, field)): ApiPath<(String, String)>,
    _: Posted,
) -> ApiResult<Response> {
    crate::metadata::apply_docs(&app, Some(viewer.principal.user_id), |docs| {
        changes::archive_field(docs, &name, &field)
    })
    .await?;
    Ok(redirect_with(&format!("/studio/e/{name}"), Some(&viewer.text("studio.archived"))))
}

#[derive(serde::Deserialize)]
pub struct SideQuery {
    side: Option<String>,
}

/// `GET /studio/e/{entity}/layout?side=edit|view`: the layout designer. Fields are dragged
/// between sections and from the palette of unused fields; without scripts, the layout is
/// edited as JSON in the same form.
pub async fn layout(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SideQuery>,
) -> ApiResult<Response> {
    let side = if q.side.as_deref() == Some("view") { "view" } else { "edit" };
    layout_page(&app, &viewer, &name, side, None, Vec::new())
}

fn layout_page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    side: &str,
    typed: Option<&str>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let layout = if side == "view" { &entity.layout.view } else { &entity.layout.edit };
    let label = |field: &str| entity.column(field).map_or(field.to_owned(), |f| f.label.get(viewer.locale).to_owned());
    let sections: Vec<Json> = layout
        .sections
        .iter()
        .map(|section| {
            json!({
                "name": section.name,
                "label": section.label,
                "columns": section.columns,
                "fields": section.fields.iter().map(|item| json!({
                    "name": item.field,
                    "label": label(item.field.as_str()),
                    "readonly": item.readonly,
                    "required": item.required,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    // The view layout may show system columns too; the edit layout only fields.
    let candidates: Vec<&crm_model::FieldDef> = if side == "view" {
        entity
            .columns()
            .iter()
            .filter(|f| !f.archived && f.name.as_str() != "id" && f.name.as_str() != "deleted_at")
            .collect()
    } else {
        entity.live_fields().collect()
    };
    let unused: Vec<Json> = candidates
        .iter()
        .filter(|f| !layout.contains(f.name.as_str()))
        .map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale)}))
        .collect();
    let json_text = match typed {
        Some(typed) => typed.to_owned(),
        None => serde_json::to_string_pretty(layout).unwrap_or_default(),
    };
    let entity_label = entity.def.label.get(viewer.locale).to_owned();
    let title = super::shell::text(viewer.locale, "studio.layout_title", &[("entity", entity_label)]);
    let roles: Vec<Json> =
        catalog.docs().roles.values().map(|r| json!({"name": r.name, "label": r.label.get(viewer.locale)})).collect();
    let values = json!({
        "entity": name,
        "roles": roles,
        "side": side,
        "sections": sections,
        "unused": unused,
        "layout_json": json_text,
        "errors": errors,
    });
    html("studio_layout.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/e/{entity}/layout`: saves one side of the layout.
pub async fn save_layout(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let side = if form.get("side") == Some("view") { "view" } else { "edit" };
    let typed = form.get("layout").unwrap_or("");
    let refuse = |errors: Vec<String>| layout_page(&app, &viewer, &name, side, Some(typed), errors).map(unprocessable);
    let layout: Json = match serde_json::from_str(typed) {
        Ok(layout) => layout,
        Err(e) => return refuse(vec![format!("the layout is not JSON: {e}")]),
    };
    let catalog = app.catalog();
    let Some(mut doc) = catalog.docs().get_json(DocKind::Layout, &name) else {
        return Err(ApiError::not_found(format!("no entity `{name}`")));
    };
    doc[side] = layout;
    match save_doc(&app, &viewer, DocKind::Layout, &doc).await? {
        Ok(()) => {
            Ok(redirect_with(&format!("/studio/e/{name}/layout?side={side}"), Some(&viewer.text("studio.applied"))))
        }
        Err(errors) => refuse(errors),
    }
}

#[derive(serde::Deserialize)]
pub struct NewScript {
    new: Option<String>,
}

/// `GET /studio/scripts`: every rule, with the entity and event it is attached to;
/// `?new=name` opens the editor of a new rule.
pub async fn scripts(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<NewScript>,
) -> ApiResult<Response> {
    if let Some(name) = q.new.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        return Ok(axum::response::Redirect::to(&format!("/studio/scripts/{}", super::encode(name))).into_response());
    }
    let catalog = app.catalog();
    let rows: Vec<Json> = catalog
        .docs()
        .scripts
        .values()
        .map(|s| {
            json!({
                "name": s.name,
                "label": s.label.get(viewer.locale),
                "entity": s.entity,
                "event": s.event,
                "field": s.field,
                "schedule": s.schedule,
                "enabled": s.enabled,
            })
        })
        .collect();
    let title = viewer.text("studio.scripts");
    html("studio_scripts.html", viewer.page(&catalog, None, &title, json!({"scripts": rows})))
}

/// `GET /studio/scripts/{name}`: the editor (a new rule when the name is free).
pub async fn script(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let doc = app.catalog().docs().get_json(DocKind::Script, &name);
    let form = match doc {
        Some(doc) => json!({
            "label_zh": doc["label"]["zh-CN"], "label_en": doc["label"]["en"], "entity": doc["entity"], "event": doc["event"],
            "field": doc["field"], "schedule": doc["schedule"], "order": doc.get("order").cloned().unwrap_or(json!(0)),
            "enabled": doc.get("enabled").and_then(Json::as_bool).unwrap_or(true), "source": doc["source"],
        }),
        None => json!({"enabled": true, "order": 0}),
    };
    script_page(&app, &viewer, &name, form, Vec::new(), None).await
}

async fn script_page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    form: Json,
    errors: Vec<String>,
    dry_run: Option<Json>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = form["entity"].as_str().filter(|e| !e.is_empty());
    let records = super::dry_run::records(app, viewer, entity).await?;
    let dry_run = dry_run.map(|outcome| super::dry_run::readable(app, viewer, entity, &outcome));
    let values = json!({
        "name": name,
        "exists": catalog.docs().scripts.contains_key(name),
        "form": form,
        "errors": errors,
        "events": crm_model::ScriptEvent::ALL.map(crm_model::ScriptEvent::name),
        "entities": catalog.entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(viewer.locale)})).collect::<Vec<_>>(),
        "records": records,
        "dry_run": dry_run,
    });
    let title = super::shell::text(viewer.locale, "studio.script_title", &[("name", name.to_owned())]);
    html("studio_script.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/scripts/{name}`: saves the rule (its syntax checked), or with `dry_run`
/// runs it against a record without saving anything.
pub async fn save_script(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let text = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty());
    let mut doc = json!({
        "name": name,
        "label": {"zh-CN": text("label_zh").unwrap_or(&name), "en": text("label_en").unwrap_or(&name)},
        "event": text("event").unwrap_or("validate"),
        "order": text("order").and_then(|o| o.parse::<i32>().ok()).unwrap_or(0),
        "enabled": form.get("enabled") == Some("true"),
        "source": form.get("source").unwrap_or(""),
    });
    for key in ["entity", "field", "schedule"] {
        if let Some(value) = text(key) {
            doc[key] = json!(value);
        }
    }
    let shown = json!({
        "label_zh": doc["label"]["zh-CN"], "label_en": doc["label"]["en"], "entity": doc["entity"], "event": doc["event"],
        "field": doc["field"], "schedule": doc["schedule"], "order": doc["order"], "enabled": doc["enabled"],
        "source": doc["source"], "record_id": text("record_id"),
    });
    if form.get("dry_run") == Some("yes") {
        let outcome = match app.catalog().docs().scripts.get(name.as_str()) {
            Some(_) => {
                let body = match text("record_id") {
                    Some(id) => json!({"id": id}),
                    None => json!({}),
                };
                match crate::rules::dry_run(&app, &viewer.principal, &name, &body).await {
                    Ok(result) => result,
                    Err(e) => json!({"ok": false, "error": e.to_string()}),
                }
            }
            None => json!({"ok": false, "error": viewer.text("studio.save_first")}),
        };
        return script_page(&app, &viewer, &name, shown, Vec::new(), Some(outcome)).await;
    }
    // A syntax error is said in the reader's words with its place; the engine's own words
    // follow as the detail.
    if let Err(crm_rules::RuleError::Syntax { line, column, message, .. }) =
        app.rules.compile(&name, form.get("source").unwrap_or(""))
    {
        let args = [("line", line.to_string()), ("column", column.to_string()), ("detail", message)];
        let error = super::shell::text(viewer.locale, "studio.syntax_error", &args);
        return script_page(&app, &viewer, &name, shown, vec![error], None).await.map(unprocessable);
    }
    match save_doc(&app, &viewer, DocKind::Script, &doc).await? {
        Ok(()) => Ok(redirect_with(&format!("/studio/scripts/{name}"), Some(&viewer.text("studio.applied")))),
        Err(errors) => script_page(&app, &viewer, &name, shown, errors, None).await.map(unprocessable),
    }
}

#[derive(serde::Deserialize)]
pub struct RoleQuery {
    role: String,
}

/// `GET /studio/e/{entity}/preview?role=`: the entity's form as a user with that role sees it.
pub async fn preview_as(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RoleQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let role = catalog.role(&q.role).ok_or_else(|| ApiError::not_found(format!("no role `{}`", q.role)))?;
    let as_role = crate::access::Principal {
        roles: vec![q.role.clone()],
        access: std::sync::Arc::new(crm_model::Access::of([role])),
        ..viewer.principal.clone()
    };
    let entity = as_role.entity(&catalog, &name, crm_model::Action::Read)?.clone();
    let viewer = Viewer { principal: as_role, ..viewer };
    super::form::preview(&app, &viewer, &entity).await
}

/// How many metadata changes a page of the history shows.
const HISTORY_PAGE: u32 = 50;

#[derive(serde::Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    kind: String,
    before: Option<i64>,
}

/// `GET /studio/history`: the metadata changes, newest first, with who and when, a page at a
/// time (`before`), of one kind of document if asked (`kind`).
pub async fn history(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let kind = DocKind::parse(&q.kind);
    let kind_name = kind.map(DocKind::as_str);
    let changes = crm_store::system::meta_changes(&app.db, kind_name, q.before, HISTORY_PAGE).await?;
    let catalog = app.catalog();
    let users: std::collections::HashMap<String, String> = super::list::users(&app).await?.into_iter().collect();
    let kind_label = |kind: &str| viewer.text(&format!("plan.kind.{kind}"));
    let rows: Vec<Json> = changes
        .iter()
        .map(|c| {
            // A document by its kind and label, as the studio names it; its API name beside.
            let label = DocKind::parse(&c.kind)
                .and_then(|k| catalog.docs().get_json(k, &c.name))
                .and_then(|doc| doc["label"][viewer.locale].as_str().map(str::to_owned))
                .or_else(|| catalog.entity(&c.name).map(|e| e.def.label.get(viewer.locale).to_owned()))
                .unwrap_or_else(|| c.name.clone());
            json!({
                "id": c.id,
                "version": c.catalog_version,
                "kind": c.kind,
                "kind_label": kind_label(&c.kind),
                "label": label,
                "name": c.name,
                "created": c.before.is_none(),
                "by": c.changed_by.and_then(|u| users.get(&u.to_string()).cloned()),
                "at": c.changed_at.map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string()),
                "diff": diff(&viewer, c.before.as_ref(), &c.after),
            })
        })
        .collect();
    let title = viewer.text("studio.history");
    let filter = kind_name.map(|k| format!("&kind={k}")).unwrap_or_default();
    let older = (changes.len() == HISTORY_PAGE as usize)
        .then(|| changes.last().map(|c| format!("/studio/history?before={}{filter}", c.id)))
        .flatten();
    let kinds: Vec<Json> =
        DocKind::ALL.iter().map(|k| json!({"name": k.as_str(), "label": kind_label(k.as_str())})).collect();
    let values = json!({"changes": rows, "older": older, "kinds": kinds, "kind": kind_name});
    html("studio_history.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/history/{id}/rollback`: puts a document back as it was before a change. An
/// entity's fields added since are archived, never dropped with their data; a new rule is
/// disabled; other new documents stay (say so).
pub async fn rollback(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    _: Posted,
) -> ApiResult<Response> {
    let change =
        crm_store::system::meta_change(&app.db, id).await?.ok_or_else(|| ApiError::not_found("no such change"))?;
    let kind = DocKind::parse(&change.kind).ok_or_else(|| ApiError::not_found("no such kind"))?;
    let catalog = app.catalog();
    // Fields added since the change are archived the usual way: off every layout, list and
    // panel, their data kept.
    let mut added = Vec::new();
    let doc = match (kind, change.before) {
        (DocKind::Script, None) => {
            let mut doc = change.after.clone();
            doc["enabled"] = json!(false);
            doc
        }
        (_, None) => return Ok(redirect_with("/studio/history", Some(&viewer.text("studio.cannot_roll_back")))),
        (DocKind::Entity, Some(mut before)) => {
            let current = catalog.docs().get_json(kind, &change.name).unwrap_or(Json::Null);
            let known: Vec<Json> = before["fields"].as_array().cloned().unwrap_or_default();
            for field in current["fields"].as_array().into_iter().flatten() {
                if !known.iter().any(|f| f["name"] == field["name"])
                    && let Some(fields) = before["fields"].as_array_mut()
                {
                    if field["archived"] != json!(true) {
                        added.push(field["name"].as_str().unwrap_or_default().to_owned());
                    }
                    let mut archived = field.clone();
                    archived["archived"] = json!(true);
                    fields.push(archived);
                }
            }
            before
        }
        (_, Some(before)) => before,
    };
    let outcome = apply(&app, &viewer, |docs| {
        let mut next = docs.clone();
        for field in &added {
            next = changes::archive_field(&next, &change.name, field)?;
        }
        next.insert_json(kind, &doc).map_err(ChangeError::Invalid)?;
        Ok(next)
    })
    .await?;
    let message = match outcome {
        Ok(()) => viewer.text("studio.rolled_back"),
        Err(errors) => errors.join("; "),
    };
    Ok(redirect_with("/studio/history", Some(&message)))
}

#[derive(serde::Deserialize)]
pub struct ModuleQuery {
    entity: Option<String>,
}

/// `GET /studio/package.json?entity=`: the live metadata, or one entity's module, as a
/// package file to install elsewhere.
pub async fn export_package(State(app): State<AppState>, ApiQuery(q): ApiQuery<ModuleQuery>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let module = q.entity.as_deref().filter(|e| catalog.entity(e).is_some());
    let name = module.unwrap_or("export");
    let bundle = crate::package::bundle(&catalog, name, module);
    let body = serde_json::to_vec_pretty(&bundle).map_err(|e| ApiError::Internal(e.into()))?;
    let disposition = format!("attachment; filename=\"{name}.package.json\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `GET /studio/package`: upload a package file to see its plan, then install it.
pub async fn package(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    package_page(&app, &viewer, "", Vec::new(), Vec::new())
}

fn package_page(app: &App, viewer: &Viewer, text: &str, plan: Vec<String>, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entities: Vec<Json> =
        catalog.entities().map(|e| json!({"name": e.name(), "label": e.def.label.get(viewer.locale)})).collect();
    let title = viewer.text("studio.packages");
    let values = json!({"text": text, "plan": plan, "errors": errors, "entities": entities});
    html("studio_package.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/package`: the uploaded package's plan, or (confirmed) its installation.
pub async fn install_package(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let text = form.get("package").unwrap_or("");
    let refuse = |errors: Vec<String>| package_page(&app, &viewer, text, Vec::new(), errors).map(unprocessable);
    let file: Json = match serde_json::from_str(text) {
        Ok(file) => file,
        Err(e) => return refuse(vec![format!("the package file is not JSON: {e}")]),
    };
    let package = match crate::package::unbundle(&file) {
        Ok(package) => package,
        Err(errors) => return refuse(errors.iter().map(ToString::to_string).collect()),
    };
    let outcome = plan_or_apply(&app, &viewer, &form, |docs| Ok(package.merge_into(docs)), "/studio").await?;
    match outcome {
        Ok(response) => Ok(response),
        Err((_, errors)) if !errors.is_empty() => refuse(errors),
        Err((plan, _)) => package_page(&app, &viewer, text, plan, Vec::new()),
    }
}

/// A readable difference between two versions of a document: the top-level keys that changed
/// and, for entities, the fields added or changed.
fn diff(viewer: &Viewer, before: Option<&Json>, after: &Json) -> Vec<String> {
    let Some(before) = before else { return Vec::new() };
    let field_label = |field: &Json| {
        let name = field["name"].as_str().unwrap_or_default();
        field["label"][viewer.locale].as_str().unwrap_or(name).to_owned()
    };
    let said = |key: &str, name: String| super::shell::text(viewer.locale, key, &[("name", name)]);
    let mut lines = Vec::new();
    if let (Some(old), Some(new)) = (before.as_object(), after.as_object()) {
        for (key, value) in new {
            if old.get(key) == Some(value) {
                continue;
            }
            if key == "fields"
                && let (Some(old_fields), Some(new_fields)) = (old.get(key).and_then(Json::as_array), value.as_array())
            {
                for field in new_fields {
                    match old_fields.iter().find(|f| f["name"] == field["name"]) {
                        None => lines.push(said("studio.diff_field_added", field_label(field))),
                        Some(old) if old != field => lines.push(said("studio.diff_field_changed", field_label(field))),
                        Some(_) => {}
                    }
                }
                continue;
            }
            // A property by its name in the viewer's words where it has one.
            let property = super::shell::text(viewer.locale, &format!("studio.property.{key}"), &[]);
            let property = if property.starts_with("studio.property.") { key.clone() } else { property };
            lines.push(said("studio.diff_changed", property));
        }
    }
    lines
}
