//! The studio's editor of an entity's duplicate rules (查重规则): for each rule its labels,
//! threshold and whether a likely duplicate blocks the save or only warns, and the fields it
//! compares with how and how much. Saved through the metadata service like every change, so
//! the schema and the checks of the API apply and their errors are shown on the page.

use axum::extract::State;
use axum::response::Response;
use crm_model::{Compare, DuplicateAction, Entity, Storage, changes};
use serde_json::{Value as Json, json};

use super::studio::{apply, unprocessable};
use super::{Posted, Viewer, html, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiPath;

const COMPARES: [Compare; 6] =
    [Compare::Company, Compare::Phone, Compare::Address, Compare::Email, Compare::Text, Compare::Exact];
/// Blank field rows offered under each rule, and for a new rule.
const BLANK_ROWS: usize = 2;

/// A comparison's name as the metadata writes it.
fn compare_name(compare: Compare) -> String {
    serde_json::to_value(compare).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The fields a rule may compare: live texts without options.
fn comparable_fields(entity: &Entity) -> impl Iterator<Item = &crm_model::FieldDef> {
    entity.live_fields().filter(|f| f.storage() == Storage::Text && !f.field_type.spec().has_options)
}

/// `GET /studio/e/{entity}/duplicates`
pub async fn rules(State(app): State<AppState>, viewer: Viewer, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    page(&app, &viewer, &name, Vec::new())
}

fn page(app: &App, viewer: &Viewer, name: &str, errors: Vec<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = catalog.entity(name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let row = |field: &str, compare: &str, weight: u8| json!({"field": field, "compare": compare, "weight": weight});
    let blank = || (0..BLANK_ROWS).map(|_| row("", "company", 1)).collect::<Vec<_>>();
    let mut rules: Vec<Json> = entity
        .def
        .duplicates
        .iter()
        .map(|r| {
            let mut rows: Vec<Json> =
                r.fields.iter().map(|f| row(f.field.as_str(), &compare_name(f.compare), f.weight)).collect();
            rows.extend(blank());
            json!({
                "name": r.name, "zh": r.label.zh_cn, "en": r.label.en, "threshold": r.threshold,
                "block": r.action == DuplicateAction::Block, "rows": rows, "new": false,
            })
        })
        .collect();
    rules.push(json!({"name": "", "zh": "", "en": "", "threshold": 80, "block": false, "rows": blank(), "new": true}));
    let fields: Vec<Json> =
        comparable_fields(entity).map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale)})).collect();
    let compares: Vec<Json> = COMPARES
        .iter()
        .map(|c| json!({"name": compare_name(*c), "label": viewer.text(&format!("duplicates.compare.{}", compare_name(*c)))}))
        .collect();
    let values = json!({"entity": name, "rules": rules, "fields": fields, "compares": compares, "errors": errors});
    let title = super::shell::text(
        viewer.locale,
        "studio.duplicates_title",
        &[("entity", entity.def.label.get(viewer.locale).to_owned())],
    );
    html("studio_duplicates.html", viewer.page(&catalog, None, &title, values))
}

/// The rules as posted: `r{i}_…` per rule, `r{i}_f{j}_…` per compared field; a rule marked
/// for removal, or without a label and fields (the blank one), is left out.
fn posted_rules(form: &Posted) -> Json {
    let mut rules = Vec::new();
    for i in 0.. {
        let key = |part: &str| format!("r{i}_{part}");
        let Some(zh) = form.get(&key("zh")) else { break };
        let en = form.get(&key("en")).unwrap_or("").trim();
        let mut fields = Vec::new();
        for j in 0.. {
            let field_key = |part: &str| format!("r{i}_f{j}_{part}");
            let Some(field) = form.get(&field_key("field")) else { break };
            if field.is_empty() {
                continue;
            }
            let weight: Json =
                form.get(&field_key("weight")).and_then(|w| w.trim().parse::<u64>().ok()).map_or(json!(1), Json::from);
            fields.push(
                json!({"field": field, "compare": form.get(&field_key("compare")).unwrap_or("text"), "weight": weight}),
            );
        }
        let zh = zh.trim();
        if form.get(&key("delete")) == Some("true") || (zh.is_empty() && en.is_empty() && fields.is_empty()) {
            continue;
        }
        let name = match form.get(&key("name")).map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => format!("rule_{}", i + 1),
        };
        let threshold: Json =
            form.get(&key("threshold")).and_then(|t| t.trim().parse::<u64>().ok()).map_or(json!(80), Json::from);
        let action = if form.get(&key("block")) == Some("true") { "block" } else { "warn" };
        let en = if en.is_empty() { zh } else { en };
        rules.push(json!({
            "name": name, "label": {"zh-CN": zh, "en": en}, "threshold": threshold, "action": action, "fields": fields,
        }));
    }
    Json::Array(rules)
}

/// `POST /studio/e/{entity}/duplicates`
pub async fn save(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let rules = posted_rules(&form);
    match apply(&app, &viewer, |docs| changes::set_duplicates(docs, &name, &rules)).await? {
        Ok(()) => Ok(redirect_with(&format!("/studio/e/{name}/duplicates"), Some(&viewer.text("studio.applied")))),
        Err(errors) => Ok(unprocessable(page(&app, &viewer, &name, errors)?)),
    }
}
