//! The review of likely duplicates (查重): the administrator starts a scan of an entity, follows
//! its progress, then goes through the clusters it found — records side by side with the
//! fields the rules compare — and merges them or says they are not duplicates, which the next
//! scans remember. Clusters whose records were merged or deleted meanwhile drop out.

use std::collections::HashSet;

use axum::extract::State;
use axum::response::Response;
use crm_store::records as store;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{Posted, Viewer, html, redirect_with};
use crate::app::AppState;
use crate::duplicates::{self, stored_text};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiPath, ApiQuery};

/// Clusters on one page of the review.
const PAGE: usize = 20;

#[derive(Deserialize)]
pub struct ReviewParams {
    page: Option<usize>,
}

/// `GET /e/{entity}/duplicates`
pub async fn review(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<ReviewParams>,
) -> ApiResult<Response> {
    viewer.principal.require_admin()?;
    let catalog = app.catalog();
    let entity = catalog.entity(&name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
    let task = crm_store::tasks::latest(&app.db, "duplicates", &name).await?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for rule in &entity.def.duplicates {
        for compared in &rule.fields {
            if !fields.iter().any(|(f, _)| f == compared.field.as_str())
                && let Some(field) = entity.field(compared.field.as_str())
            {
                fields.push((field.name.to_string(), field.label.get(viewer.locale).to_owned()));
            }
        }
    }
    let page = params.page.unwrap_or(0);
    let mut clusters = Vec::new();
    let mut total = 0;
    let apart: HashSet<(Uuid, Uuid)> = crm_store::tasks::not_duplicates(&app.db, &name).await?.into_iter().collect();
    if let Some(result) = task.as_ref().filter(|t| t.state == "done").and_then(|t| t.result.as_ref()) {
        let all = result["clusters"].as_array().cloned().unwrap_or_default();
        total = all.len();
        for cluster in all.iter().skip(page * PAGE).take(PAGE) {
            let ids: Vec<Uuid> = cluster["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().and_then(|id| id.parse().ok()))
                .collect();
            let records = store::get_many(&app.db, entity, &ids, None).await?;
            // Merged, deleted or set apart since the scan: nothing left to review.
            let live: Vec<Uuid> = records.iter().map(crm_store::Record::id).collect();
            let open = live
                .iter()
                .enumerate()
                .any(|(i, a)| live[i + 1..].iter().any(|b| !apart.contains(&((*a).min(*b), (*a).max(*b)))));
            if !open {
                continue;
            }
            let owners = duplicates::owners(&app, records.iter().filter_map(duplicates::owner_of)).await?;
            let rows: Vec<Json> = records
                .iter()
                .map(|r| {
                    let values: Vec<&str> =
                        fields.iter().map(|(f, _)| stored_text(entity, r, f).unwrap_or("")).collect();
                    let owner = duplicates::owner_of(r).and_then(|o| owners.get(&o)).map(|(name, _)| name);
                    json!({"id": r.id(), "values": values, "owner": owner})
                })
                .collect();
            let ids: Vec<String> = records.iter().map(|r| r.id().to_string()).collect();
            clusters.push(json!({"score": cluster["score"], "rows": rows, "ids": ids.join(",")}));
        }
    }
    let values = json!({
        "entity": name,
        "entity_label": entity.def.label.get(viewer.locale),
        "task": task.as_ref().map(|t| json!({
            "id": t.id, "state": t.state, "done": t.done, "total": t.total, "error": t.error,
            "records": t.result.as_ref().map(|r| &r["records"]), "found": t.result.as_ref().map(|r| &r["found"]),
        })),
        "has_rules": !entity.def.duplicates.is_empty(),
        "fields": fields.iter().map(|(_, label)| label).collect::<Vec<_>>(),
        "clusters": clusters,
        "page": page,
        "previous": page.checked_sub(1),
        "next": ((page + 1) * PAGE < total).then_some(page + 1),
    });
    let title = super::shell::text(
        viewer.locale,
        "duplicates.review_title",
        &[("entity", entity.def.label.get(viewer.locale).to_owned())],
    );
    html("duplicates.html", viewer.page(&catalog, Some(&name), &title, values))
}

/// `POST /e/{entity}/duplicates/scan`
pub async fn scan(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    crate::duplicates::scan::start(&app, &viewer.principal, &name).await?;
    Ok(redirect_with(&format!("/e/{name}/duplicates"), None))
}

/// `POST /e/{entity}/duplicates/apart`: the records of a cluster (`ids`, comma-separated)
/// are not duplicates of each other.
pub async fn apart(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let ids: Vec<Uuid> = form.get("ids").unwrap_or("").split(',').filter_map(|id| id.trim().parse().ok()).collect();
    crate::duplicates::apart(&app, &viewer.principal, &name, &ids).await?;
    Ok(redirect_with(&format!("/e/{name}/duplicates"), Some(&viewer.text("duplicates.set_apart"))))
}
