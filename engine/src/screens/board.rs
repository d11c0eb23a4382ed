//! The kanban board (`/e/{entity}/board`) of an entity with a stage field: a column per stage
//! with its count and the sum of the amount field; dragging a card moves its stage through
//! the same save as the stage path.

use axum::extract::State;
use axum::response::Response;
use crm_model::{Action, FieldDef, FieldType};
use serde_json::{Value as Json, json};

use super::view;
use super::{Viewer, allowed, html};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiPath;
use crate::records::{self, ListParams};

/// Cards a column shows; the count says how many there are in all.
const CARDS_PER_STAGE: u32 = 50;

/// `GET /e/{entity}/board`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Read)?.clone();
    let hidden = viewer.principal.hidden(&entity_name);
    let no_board = || ApiError::not_found(format!("`{entity_name}` has no stages to show on a board"));
    let stage_field = entity
        .live_fields()
        .find(|f| f.field_type == FieldType::Stage && !hidden.contains(&f.name))
        .ok_or_else(no_board)?;
    let set = stage_field.stage_set.as_ref().and_then(|s| catalog.stage_set(s.as_str())).ok_or_else(no_board)?;
    let amount = entity
        .live_fields()
        .filter(|f| f.field_type == FieldType::Money && !hidden.contains(&f.name))
        .min_by_key(|f| f.name.as_str() != "amount");
    let groups = records::groups(
        &app,
        &viewer.principal,
        &entity_name,
        stage_field.name.as_str(),
        amount.map(|f| f.name.as_str()),
        None,
    )
    .await?;
    let groups = groups.get("groups").and_then(Json::as_array).cloned().unwrap_or_default();
    // The card shows the title and the next list columns (a deal's customer, amount, expected
    // close and owner).
    let fields: Vec<&FieldDef> = entity
        .list
        .columns
        .iter()
        .filter(|c| !hidden.contains(*c) && c.as_str() != stage_field.name.as_str())
        .filter_map(|c| entity.column(c.as_str()))
        .take(5)
        .collect();
    let mut columns = Vec::new();
    for stage in &set.stages {
        let group = groups.iter().find(|g| g.get("value").and_then(Json::as_str) == Some(stage.name.as_str()));
        let count = group.and_then(|g| g.get("count")).and_then(Json::as_i64).unwrap_or(0);
        let sum = match (amount, group.and_then(|g| g.get("sum"))) {
            (Some(field), Some(sum)) => Some(view::display(&catalog, field, sum, &viewer, &Default::default()).text),
            _ => None,
        };
        let filter = json!({"field": stage_field.name, "op": "eq", "value": stage.name}).to_string();
        let mut names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        names.push("version");
        let params = ListParams {
            filter: Some(filter),
            limit: Some(CARDS_PER_STAGE),
            fields: Some(names.join(",")),
            ..ListParams::default()
        };
        let page =
            if count > 0 { Some(records::list(&app, &viewer.principal, &entity_name, &params).await?) } else { None };
        let records = page.as_ref().map(view::records_of).transpose()?.unwrap_or_default();
        let rows = view::rows(&app, &viewer, &entity_name, &fields, &records).await?;
        let cards: Vec<Json> = rows
            .into_iter()
            .zip(&records)
            .map(|(row, record)| json!({"id": row.id, "href": row.href, "cells": row.cells, "version": record.get("version")}))
            .collect();
        columns.push(json!({
            "name": stage.name,
            "label": stage.label.get(viewer.locale),
            "category": stage.category,
            "probability": stage.probability,
            "count": count,
            "sum": sum,
            "cards": cards,
        }));
    }
    let label = entity.def.label.get(viewer.locale).to_owned();
    let values = json!({
        "entity": entity_name,
        "entity_label": label,
        "stage_field": stage_field.name,
        "amount_label": amount.map(|f| f.label.get(viewer.locale)),
        "columns": columns,
        "can": allowed(&viewer, &entity_name),
    });
    let title = super::shell::text(viewer.locale, "board.title", &[("entity", label)]);
    html("board.html", viewer.page(&catalog, Some(&entity_name), &title, values))
}
