//! Address labels (地址标签, M-3): the customers or contacts chosen in a list, one label each
//! on A4 sheets of 3 × 8 (or 2 × 7) — postcode, address, company, and the contact with their
//! title — to print for a direct mail campaign. A contact's address is their customer's; a
//! customer's label is addressed to its first contact. Only what the viewer may read is
//! printed.

use axum::extract::State;
use axum::response::Response;
use crm_model::Action;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiQuery;
use crate::records::selection::{self, Selection};
use crate::records::{self, ListParams, MAX_BULK, MAX_LIMIT};
use crate::screens::{Viewer, html};

/// The entities labels are printed for.
pub const LABELLED: [&str; 2] = ["customer", "contact"];

/// Label sheets: (name, columns, rows).
const SHEETS: [(&str, usize, usize); 2] = [("3x8", 3, 8), ("2x7", 2, 7)];

/// `GET /labels?entity=&ids=a,b&sheet=3x8`: the labels, ready to print.
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let get = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    let entity = get("entity");
    if !LABELLED.contains(&entity) {
        return Err(ApiError::bad_request("invalid_query", format!("labels are printed for {LABELLED:?}")));
    }
    viewer.principal.entity(&app.catalog(), entity, Action::Read)?;
    let (name, columns, rows) = SHEETS.iter().copied().find(|(name, ..)| *name == get("sheet")).unwrap_or(SHEETS[0]);
    let ids: Vec<Uuid> = get("ids").split(',').filter_map(|id| id.trim().parse().ok()).collect();
    let chosen = Selection { entity: entity.to_owned(), ids, filter: None, all: false };
    let too_many = |n| ApiError::bad_request("too_many", format!("at most {MAX_BULK} labels at once, not {n}"));
    let ids = selection::resolve(&app, &viewer.principal, &chosen, MAX_BULK, too_many, "ids").await?;
    let labels = labels(&app, &viewer, entity, &ids).await?;
    let sheets: Vec<&[Json]> = labels.chunks(columns * rows).collect();
    let title = viewer.text("labels.title");
    let ids = ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",");
    let values = json!({"sheets": sheets, "sheet": name, "columns": columns, "rows": rows, "count": labels.len(),
        "entity": entity, "ids": ids});
    html("labels.html", viewer.page(&app.catalog(), Some(entity), &title, values))
}

/// Records of `entity` whose `field` is one of `ids`, as the viewer reads them, oldest first.
async fn read(app: &App, viewer: &Viewer, entity: &str, field: &str, ids: &[Uuid]) -> ApiResult<Vec<Json>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(MAX_LIMIT as usize) {
        let filter = json!({"field": field, "op": "in", "value": chunk}).to_string();
        let mut cursor = None;
        loop {
            let params = ListParams {
                filter: Some(filter.clone()),
                sort: Some("created_at".into()),
                limit: Some(MAX_LIMIT),
                cursor,
                ..ListParams::default()
            };
            let page = records::list(app, &viewer.principal, entity, &params).await?;
            found.extend(crate::screens::view::records_of(&page)?);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(found)
}

fn text<'a>(record: &'a Json, field: &str) -> &'a str {
    record.get(field).and_then(Json::as_str).unwrap_or_default()
}

/// One label per record, in the order chosen.
async fn labels(app: &App, viewer: &Viewer, entity: &str, ids: &[Uuid]) -> ApiResult<Vec<Json>> {
    let records = read(app, viewer, entity, "id", ids).await?;
    let by = |records: &[Json], field: &str, id: &str| records.iter().find(|r| text(r, field) == id).cloned();
    let (customers, contacts) = match entity {
        "contact" if viewer.principal.sees("customer") => {
            let of: Vec<Uuid> = records.iter().filter_map(|r| text(r, "customer").parse().ok()).collect();
            (read(app, viewer, "customer", "id", &of).await?, Vec::new())
        }
        "customer" if viewer.principal.sees("contact") => {
            (Vec::new(), read(app, viewer, "contact", "customer", ids).await?)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Ok(ids
        .iter()
        .filter_map(|id| by(&records, "id", &id.to_string()))
        .map(|record| {
            let (company, person) = match entity {
                "contact" => (by(&customers, "id", text(&record, "customer")).unwrap_or(Json::Null), Some(record)),
                _ => {
                    let first = by(&contacts, "customer", text(&record, "id"));
                    (record, first)
                }
            };
            json!({
                "postcode": text(&company, "postcode"),
                "address": text(&company, "address"),
                "company": text(&company, "name"),
                "name": person.as_ref().map(|p| text(p, "name")),
                "title": person.as_ref().map(|p| text(p, "title")),
            })
        })
        .collect())
}
