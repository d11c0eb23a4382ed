//! The studio's editors of whole documents: the role matrix (entity × action, data scope,
//! pool), stage sets (stages with probability, category and required fields), an entity's
//! related panels, and its list settings. Each saves its document through the metadata
//! service, so the JSON Schemas and checks of the API apply, and errors are shown on the page.

use axum::extract::State;
use axum::response::Response;
use crm_model::{DocKind, FieldType};
use serde_json::{Map, Value as Json, json};

use super::studio::{save_doc, unprocessable};
use super::{Posted, Viewer, html, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiPath;

const ACTIONS: [&str; 11] =
    ["read", "create", "edit", "delete", "restore", "assign", "share", "import", "export", "approve", "send"];
const SCOPES: [&str; 4] = ["own", "department", "department_tree", "all"];

fn list_of(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("").split([',', '，', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `GET /studio/roles/{name}`: the role as one matrix.
pub async fn role(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    role_page(&app, &viewer, &name, Vec::new())
}

fn role_page(app: &App, viewer: &Viewer, name: &str, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let doc = catalog.docs().get_json(DocKind::Role, name).unwrap_or_else(|| json!({"name": name, "entities": {}}));
    let rows: Vec<Json> = catalog
        .entities()
        .map(|e| {
            let grant = &doc["entities"][e.name().as_str()];
            let has = |action: &str| grant["actions"].as_array().is_some_and(|a| a.iter().any(|x| x == action));
            let fields: Vec<Json> = e
                .live_fields()
                .map(|f| {
                    let access = grant["fields"][f.name.as_str()].as_str().unwrap_or("");
                    json!({"name": f.name, "label": f.label.get(viewer.locale), "access": access})
                })
                .collect();
            json!({
                "name": e.name(),
                "label": e.def.label.get(viewer.locale),
                "actions": ACTIONS.iter().map(|a| json!({"name": a, "on": has(a)})).collect::<Vec<_>>(),
                "scope": grant["scope"].as_str().unwrap_or("own"),
                "pool": grant["pool"].as_bool().unwrap_or(false),
                "fields": fields,
            })
        })
        .collect();
    let roles: Vec<Json> =
        catalog.docs().roles.values().map(|r| json!({"name": r.name, "label": r.label.get(viewer.locale)})).collect();
    let values = json!({
        "name": name,
        "label": doc["label"],
        "admin": doc["admin"].as_bool().unwrap_or(false),
        "build_reports": doc["build_reports"].as_bool().unwrap_or(false),
        "send_limit": doc["send_limit"],
        "rows": rows,
        "actions": ACTIONS,
        "scopes": SCOPES,
        "roles": roles,
        "errors": errors,
    });
    let title = super::shell::text(viewer.locale, "studio.role_title", &[("name", name.to_owned())]);
    html("studio_role.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/roles/{name}`: the matrix saved as the role, with its field permissions
/// (`entity.field.name` = `read` or `hidden`; empty: editable).
pub async fn save_role(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let current = catalog.docs().get_json(DocKind::Role, &name).unwrap_or(Json::Null);
    let mut entities = Map::new();
    for entity in catalog.entities() {
        let e = entity.name().as_str();
        let actions: Vec<&str> =
            ACTIONS.iter().copied().filter(|a| form.get(&format!("{e}.{a}")) == Some("true")).collect();
        if actions.is_empty() {
            continue;
        }
        let mut grant = json!({"actions": actions, "scope": form.get(&format!("{e}.scope")).unwrap_or("own")});
        if form.get(&format!("{e}.pool")) == Some("true") {
            grant["pool"] = json!(true);
        }
        let fields: Map<String, Json> = entity
            .live_fields()
            .filter_map(|f| {
                let access = form.get(&format!("{e}.field.{}", f.name)).filter(|a| matches!(*a, "read" | "hidden"))?;
                Some((f.name.to_string(), json!(access)))
            })
            .collect();
        if !fields.is_empty() {
            grant["fields"] = Json::Object(fields);
        }
        entities.insert(e.to_owned(), grant);
    }
    let label = |key: &str| form.get(key).map(str::trim).filter(|l| !l.is_empty()).unwrap_or(&name).to_owned();
    let mut doc =
        json!({"name": name, "label": {"zh-CN": label("label_zh"), "en": label("label_en")}, "entities": entities});
    if current["admin"] == json!(true) {
        doc["admin"] = json!(true);
    }
    if form.get("build_reports") == Some("true") {
        doc["build_reports"] = json!(true);
    }
    if let Some(limit) = form.get("send_limit").map(str::trim).filter(|l| !l.is_empty()) {
        // The schema says what is wrong with a limit that is not a whole number.
        doc["send_limit"] = limit.parse::<u32>().map_or_else(|_| json!(limit), |n| json!(n));
    }
    match save_doc(&app, &viewer, DocKind::Role, &doc).await? {
        Ok(()) => {
            app.scopes_changed();
            Ok(redirect_with(&format!("/studio/roles/{name}"), Some(&viewer.text("studio.applied"))))
        }
        Err(errors) => Ok(unprocessable(role_page(&app, &viewer, &name, errors)?)),
    }
}

/// `GET /studio/stage-sets/{name}`: the stages as rows, with blank rows to add more.
pub async fn stage_set(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let doc = app.catalog().docs().get_json(DocKind::StageSet, &name);
    stage_set_page(&app, &viewer, &name, doc, Vec::new())
}

fn stage_set_page(
    app: &App,
    viewer: &Viewer,
    name: &str,
    doc: Option<Json>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let doc = doc.unwrap_or_else(|| json!({"name": name, "stages": []}));
    let mut stages: Vec<Json> = doc["stages"].as_array().cloned().unwrap_or_default();
    stages.extend((0..3).map(|_| json!({"category": "open", "probability": 0})));
    let sets: Vec<Json> = catalog
        .docs()
        .stage_sets
        .values()
        .map(|s| json!({"name": s.name, "label": s.label.get(viewer.locale)}))
        .collect();
    let values = json!({"name": name, "label": doc["label"], "override": doc["probability_override"], "stages": stages, "sets": sets, "errors": errors});
    let title = super::shell::text(viewer.locale, "studio.stage_set_title", &[("name", name.to_owned())]);
    html("studio_stage_set.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/stage-sets/{name}`: rows with a name are the stages, in order.
pub async fn save_stage_set(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let names = form.all("stage");
    let column = |key: &str| form.all(key);
    let (zh, en, probability, category, required, order) = (
        column("stage_zh"),
        column("stage_en"),
        column("probability"),
        column("category"),
        column("required"),
        column("order"),
    );
    // Rows are taken in the order of their position numbers (then as listed).
    let mut rows: Vec<usize> = (0..names.len()).filter(|i| !names[*i].trim().is_empty()).collect();
    rows.sort_by_key(|i| order.get(*i).and_then(|o| o.trim().parse::<i64>().ok()).unwrap_or(i64::MAX));
    let stages: Vec<Json> = rows
        .into_iter()
        .map(|i| {
            let at = |list: &Vec<&str>| list.get(i).map(|v| v.trim()).unwrap_or("").to_owned();
            let mut stage = json!({
                "name": names[i].trim(),
                "label": {"zh-CN": at(&zh), "en": at(&en)},
                "probability": at(&probability).parse::<i64>().unwrap_or(-1),
                "category": at(&category),
            });
            let needed = list_of(Some(&at(&required)));
            if !needed.is_empty() {
                stage["required"] = json!(needed);
            }
            stage
        })
        .collect();
    let label = |key: &str| form.get(key).map(str::trim).filter(|l| !l.is_empty()).unwrap_or(&name).to_owned();
    let mut doc =
        json!({"name": name, "label": {"zh-CN": label("label_zh"), "en": label("label_en")}, "stages": stages});
    if form.get("probability_override") == Some("true") {
        doc["probability_override"] = json!(true);
    }
    match save_doc(&app, &viewer, DocKind::StageSet, &doc).await? {
        Ok(()) => Ok(redirect_with(&format!("/studio/stage-sets/{name}"), Some(&viewer.text("studio.applied")))),
        Err(errors) => Ok(unprocessable(stage_set_page(&app, &viewer, &name, Some(doc), errors)?)),
    }
}

/// `GET /studio/e/{entity}/related`: the record view's related panels, and the reverse
/// lookups that could become one.
pub async fn related(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    related_page(&app, &viewer, &name, Vec::new())
}

fn related_page(app: &App, viewer: &Viewer, name: &str, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let panels: Vec<Json> = entity
        .related
        .panels
        .iter()
        .map(|p| {
            let sort: Vec<String> = p.sort.iter().map(ToString::to_string).collect();
            json!({"name": p.name, "label": p.label.get(viewer.locale), "source": p.source, "lookup": p.lookup, "columns": p.columns, "sort": sort.join(", ")})
        })
        .collect();
    let candidates: Vec<Json> = catalog
        .entities()
        .flat_map(|source| {
            source
                .live_fields()
                .filter(|f| f.field_type == FieldType::Lookup && f.target.as_ref().is_some_and(|t| t.as_str() == name))
                .map(|f| {
                    json!({
                        "value": format!("{}.{}", source.name(), f.name),
                        "label": format!("{} · {}", source.def.label.get(viewer.locale), f.label.get(viewer.locale)),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let values = json!({"entity": name, "panels": panels, "candidates": candidates, "errors": errors});
    let title = super::shell::text(
        viewer.locale,
        "studio.related_title",
        &[("entity", entity.def.label.get(viewer.locale).to_owned())],
    );
    html("studio_related.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/e/{entity}/related`: adds a panel (`add`), or removes one (`remove`).
pub async fn save_related(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let mut doc = catalog
        .docs()
        .get_json(DocKind::Related, &name)
        .ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let panels = doc["panels"].as_array_mut().expect("related documents have panels");
    if let Some(removed) = form.get("remove") {
        panels.retain(|p| p["name"] != removed);
    } else if let Some(moved) = form.get("up") {
        if let Some(at) = panels.iter().position(|p| p["name"] == moved).filter(|at| *at > 0) {
            panels.swap(at, at - 1);
        }
    } else if let Some(sorted) = form.get("sort_panel") {
        let sort = list_of(form.get("sort"));
        if let Some(panel) = panels.iter_mut().find(|p| p["name"] == sorted) {
            panel["sort"] = json!(sort);
        }
    } else {
        let (source, lookup) = form.get("source").unwrap_or("").split_once('.').unwrap_or(("", ""));
        let columns = match list_of(form.get("columns")) {
            picked if !picked.is_empty() => picked,
            _ => catalog
                .entity(source)
                .map(|e| e.list.columns.iter().take(5).map(ToString::to_string).collect())
                .unwrap_or_default(),
        };
        let label = |key: &str| form.get(key).map(str::trim).filter(|l| !l.is_empty()).unwrap_or(source).to_owned();
        let panel_name = form.get("name").map(str::trim).filter(|n| !n.is_empty()).unwrap_or(source);
        panels.push(json!({
            "name": panel_name,
            "label": {"zh-CN": label("label_zh"), "en": label("label_en")},
            "source": source,
            "lookup": lookup,
            "columns": columns,
            "sort": ["-created_at"],
        }));
    }
    match save_doc(&app, &viewer, DocKind::Related, &doc).await? {
        Ok(()) => Ok(redirect_with(&format!("/studio/e/{name}/related"), Some(&viewer.text("studio.applied")))),
        Err(errors) => Ok(unprocessable(related_page(&app, &viewer, &name, errors)?)),
    }
}

/// `GET /studio/e/{entity}/list`: the list's default columns (in order) and sort.
pub async fn list_settings(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    list_page(&app, &viewer, &name, Vec::new())
}

fn list_page(app: &App, viewer: &Viewer, name: &str, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let label = |field: &str| entity.column(field).map_or(field.to_owned(), |f| f.label.get(viewer.locale).to_owned());
    let columns: Vec<Json> =
        entity.list.columns.iter().map(|c| json!({"name": c, "label": label(c.as_str())})).collect();
    let unused: Vec<Json> = entity
        .columns()
        .iter()
        .filter(|f| !f.archived && f.name.as_str() != "deleted_at" && !entity.list.columns.contains(&f.name))
        .map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale)}))
        .collect();
    let sortable: Vec<Json> = entity
        .columns()
        .iter()
        .filter(|f| !f.archived && f.field_type.is_sortable())
        .map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale)}))
        .collect();
    let sort = entity.list.sort.first();
    let values = json!({
        "entity": name,
        "columns": columns,
        "unused": unused,
        "sortable": sortable,
        "sort_field": sort.map(|s| s.field.to_string()),
        "descending": sort.is_some_and(|s| s.descending),
        "errors": errors,
    });
    let title = super::shell::text(
        viewer.locale,
        "studio.list_title",
        &[("entity", entity.def.label.get(viewer.locale).to_owned())],
    );
    html("studio_list.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/e/{entity}/list`: `columns` in order (the designer keeps them in a hidden
/// field; without scripts, a comma list), and the sort.
pub async fn save_list(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let columns = list_of(form.get("columns"));
    let sort = match form.get("sort_field").filter(|f| !f.is_empty()) {
        Some(field) if form.get("descending") == Some("true") => vec![format!("-{field}")],
        Some(field) => vec![field.to_owned()],
        None => Vec::new(),
    };
    let doc = json!({"entity": name, "columns": columns, "sort": sort});
    match save_doc(&app, &viewer, DocKind::ListView, &doc).await? {
        Ok(()) => Ok(redirect_with(&format!("/studio/e/{name}/list"), Some(&viewer.text("studio.applied")))),
        Err(errors) => Ok(unprocessable(list_page(&app, &viewer, &name, errors)?)),
    }
}

/// `GET /studio/users`: the department tree, and the users with their roles — create one,
/// disable or enable, reset a password, change roles.
pub async fn users(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    users_page(&app, &viewer, None, Vec::new()).await
}

async fn users_page(app: &App, viewer: &Viewer, notice: Option<String>, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let params = crate::records::ListParams { limit: Some(500), sort: Some("name".into()), ..Default::default() };
    let page = crate::records::list(app, &viewer.principal, crm_model::USER_ENTITY, &params).await?;
    let records = super::view::records_of(&page)?;
    let departments = crate::records::list(app, &viewer.principal, "department", &params).await?;
    let departments = super::view::records_of(&departments)?;
    let department_name = |id: &Json| {
        departments.iter().find(|d| d["id"] == *id).and_then(|d| d["name"].as_str()).unwrap_or("").to_owned()
    };
    let mut users = Vec::new();
    for user in &records {
        let id = user["id"].as_str().and_then(|i| i.parse().ok()).unwrap_or_default();
        let roles = crm_store::system::user_roles(&app.db, id).await?;
        users.push(json!({
            "id": user["id"],
            "name": user["name"],
            "login": user["login"],
            "department": department_name(&user["department"]),
            "active": user["active"].as_bool().unwrap_or(true),
            "pool": user["pool"].as_bool().unwrap_or(false),
            "roles": roles,
            // Nobody disables themself: the button is not offered on one's own row.
            "me": id == viewer.principal.user_id,
        }));
    }
    // The department tree, depth first.
    let mut tree = Vec::new();
    fn walk(departments: &[Json], parent: &Json, depth: usize, tree: &mut Vec<Json>) {
        for d in departments.iter().filter(|d| d["parent"] == *parent) {
            tree.push(json!({"id": d["id"], "name": d["name"], "depth": depth}));
            if depth < 10 {
                walk(departments, &d["id"], depth + 1, tree);
            }
        }
    }
    walk(&departments, &Json::Null, 0, &mut tree);
    let roles: Vec<Json> =
        catalog.docs().roles.values().map(|r| json!({"name": r.name, "label": r.label.get(viewer.locale)})).collect();
    let values = json!({
        "users": users,
        "tree": tree,
        "departments": departments.iter().map(|d| json!({"id": d["id"], "name": d["name"]})).collect::<Vec<_>>(),
        "roles": roles,
        "notice": notice,
        "errors": errors,
    });
    let title = viewer.text("studio.users");
    html("studio_users.html", viewer.page(&catalog, None, &title, values))
}

/// `POST /studio/users`: a new user with a first password (changed at first sign-in) and roles.
pub async fn create_user(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    let mut fields =
        json!({"name": form.get("name").unwrap_or("").trim(), "login": form.get("login").unwrap_or("").trim()});
    if let Some(department) = form.get("department").filter(|d| !d.is_empty()) {
        fields["department"] = json!(department);
    }
    let roles: Vec<String> = form.all("roles").into_iter().map(str::to_owned).collect();
    match crate::admin::create_user(&app, &viewer.principal, &fields, form.get("password").unwrap_or(""), &roles).await
    {
        Ok(_) => Ok(redirect_with("/studio/users", Some(&viewer.text("studio.user_created")))),
        Err(ApiError::Invalid(errors)) => {
            let errors = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            Ok(unprocessable(users_page(&app, &viewer, None, errors).await?))
        }
        Err(e) => Err(e),
    }
}

/// `POST /studio/users/{id}`: `action` = disable, enable, reset (a temporary password shown
/// once, on this page) or roles.
pub async fn change_user(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<uuid::Uuid>,
    form: Posted,
) -> ApiResult<Response> {
    let p = &viewer.principal;
    match form.get("action").unwrap_or("") {
        "disable" => crate::admin::set_active(&app, p, id, false).await.map(|_| ())?,
        "enable" => crate::admin::set_active(&app, p, id, true).await.map(|_| ())?,
        "roles" => {
            let roles: Vec<String> = form.all("roles").into_iter().map(str::to_owned).collect();
            crate::admin::set_roles(&app, p, id, &roles).await.map(|_| ())?
        }
        "reset" => {
            let reset = crate::admin::reset_password(&app, p, id, None).await?;
            let password = reset["temporary_password"].as_str().unwrap_or_default();
            let notice =
                super::shell::text(viewer.locale, "studio.temporary_password", &[("password", password.to_owned())]);
            return users_page(&app, &viewer, Some(notice), Vec::new()).await;
        }
        other => return Err(ApiError::bad_request("invalid_body", format!("no user action `{other}`"))),
    }
    Ok(redirect_with("/studio/users", Some(&viewer.text("studio.applied"))))
}
