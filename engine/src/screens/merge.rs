//! The merge screen (`/e/{entity}/merge?ids=a,b`): the records side by side, a choice per
//! field with the proposed value preselected, how many related records will move; and the
//! undo of a merge, offered on the survivor's page while it is possible.

use axum::extract::State;
use axum::response::Response;
use crm_model::{Action, Entity};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use super::view::{self, Titles};
use super::{Posted, Viewer, html, local_path, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::records::merge::{self, MergeRequest, Preview};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeQuery {
    ids: String,
}

fn ids_of(text: &str) -> Vec<Json> {
    text.split(',').map(str::trim).filter(|id| !id.is_empty()).map(Json::from).collect()
}

/// `GET /e/{entity}/merge?ids=a,b,c`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(q): ApiQuery<MergeQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Edit)?.clone();
    let preview = merge::preview(&app, &viewer.principal, &entity_name, &ids_of(&q.ids)).await?;
    let values = view_of(&app, &viewer, &entity, &preview, &q.ids).await?;
    let label = entity.def.label.get(viewer.locale).to_owned();
    let title = super::shell::text(viewer.locale, "merge.title", &[("entity", label)]);
    html("merge.html", viewer.page(&catalog, Some(&entity_name), &title, values))
}

/// What the page shows: a column per record, a row per field the viewer sees.
async fn view_of(app: &App, viewer: &Viewer, entity: &Entity, preview: &Preview, ids: &str) -> ApiResult<Json> {
    let catalog = app.catalog();
    let records: Vec<Json> = preview
        .records
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let lookups: Vec<_> = entity.live_fields().filter(|f| f.field_type.is_reference()).collect();
    let titles: Titles =
        view::titles(app, &viewer.principal, view::references(&lookups, &records.iter().collect::<Vec<_>>())).await?;
    let title_field = entity.title_field().map(|f| f.name.as_str()).unwrap_or("id");
    let columns: Vec<Json> = records
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            json!({"id": id, "title": r[title_field].as_str().unwrap_or(id), "master": id == preview.master.to_string()})
        })
        .collect();
    let rows: Vec<Json> = preview
        .fields
        .iter()
        .filter_map(|candidates| {
            let field = entity.field(&candidates.field)?;
            let cells: Vec<Json> = records
                .iter()
                .zip(&candidates.values)
                .map(|(record, value)| {
                    let id = record["id"].as_str().unwrap_or_default();
                    let cell = view::display(&catalog, field, value, viewer, &titles);
                    json!({"id": id, "cell": cell, "chosen": id == candidates.proposed.to_string()})
                })
                .collect();
            let differ = candidates.values.windows(2).any(|pair| pair[0] != pair[1]);
            Some(json!({
                "name": field.name,
                "label": field.label.get(viewer.locale),
                "choosable": candidates.choosable && differ,
                "cells": cells,
            }))
        })
        .collect();
    let moving: usize = preview.references.values().sum();
    let references: Vec<Json> = preview
        .references
        .iter()
        .map(|(name, n)| {
            let label = catalog.entity(name).map_or(name.clone(), |e| e.def.label.get(viewer.locale).to_owned());
            json!({"label": label, "count": n})
        })
        .collect();
    Ok(json!({
        "entity": entity.name(),
        "entity_label": entity.def.label.get(viewer.locale),
        "ids": ids,
        "columns": columns,
        "rows": rows,
        "moving": moving,
        "references": references,
    }))
}

/// `POST /e/{entity}/merge`: merges into the chosen master with the values of the records
/// chosen per field, then shows the survivor.
pub async fn merge(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(q): ApiQuery<MergeQuery>,
    form: Posted,
) -> ApiResult<Response> {
    let ids = ids_of(&q.ids);
    let preview = merge::preview(&app, &viewer.principal, &entity_name, &ids).await?;
    let chosen_record = |field: &str| form.get(&format!("f_{field}")).and_then(|id| Uuid::parse_str(id).ok());
    let mut values = Map::new();
    for candidates in preview.fields.iter().filter(|c| c.choosable) {
        let Some(chosen) = chosen_record(&candidates.field) else { continue };
        if let Some(at) = preview.records.iter().position(|r| r.id() == chosen) {
            values.insert(candidates.field.clone(), candidates.values[at].clone());
        }
    }
    let master = Json::from(form.get("master").unwrap_or_default());
    let listed: Vec<String> = ids.iter().filter_map(Json::as_str).map(super::encode).collect();
    let back = format!("/e/{entity_name}/merge?ids={}", listed.join(","));
    let request = MergeRequest { ids, master, values };
    match merge::merge(&app, &viewer.principal, &entity_name, &request).await {
        Ok(merged) => {
            let to = format!("/e/{entity_name}/{}", merged.survivor.id());
            let n = (preview.records.len()).to_string();
            Ok(redirect_with(&to, Some(&super::shell::text(viewer.locale, "merge.done", &[("n", n)]))))
        }
        Err(ApiError::Invalid(errors)) => {
            let message = errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; ");
            Ok(redirect_with(&back, Some(&message)))
        }
        Err(e) => Err(e),
    }
}

/// `POST /merges/{id}/undo`: back to the page the button was on, with what happened.
pub async fn undo(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let back = local_path(form.get("back"));
    match merge::undo(&app, &viewer.principal, &id).await {
        Ok(_) => Ok(redirect_with(back, Some(&viewer.text("merge.undone")))),
        // Why, in the viewer's words: the service's own are English.
        Err(ApiError::Conflict(_)) => Ok(redirect_with(back, Some(&viewer.text("merge.cannot_undo")))),
        Err(ApiError::Invalid(errors)) => {
            let message = errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; ");
            Ok(redirect_with(back, Some(&message)))
        }
        Err(e) => Err(e),
    }
}
