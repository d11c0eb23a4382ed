//! The search screen: `/search?q=` shows what the top bar's box found, grouped by module,
//! each record linked, with the matched words marked (the template escapes every piece).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{Viewer, html};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ApiQuery;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// A fragment cut at its marked ranges: `[{text, mark}]`, for the template to escape.
pub(super) fn pieces(fragment: &str, highlights: &[Json]) -> Vec<Json> {
    let mut out = Vec::new();
    let mut at = 0;
    for range in highlights {
        let (Some(start), Some(end)) = (range[0].as_u64(), range[1].as_u64()) else { continue };
        let (start, end) = (start as usize, end as usize);
        if start < at || end > fragment.len() || !fragment.is_char_boundary(start) || !fragment.is_char_boundary(end) {
            continue;
        }
        out.push(json!({"text": &fragment[at..start], "mark": false}));
        out.push(json!({"text": &fragment[start..end], "mark": true}));
        at = end;
    }
    out.push(json!({"text": &fragment[at..], "mark": false}));
    out
}

/// `GET /search?q=`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Response> {
    let found = crate::search::search(&app, &viewer.principal, &query.q, None, crate::search::MAX_RESULTS).await?;
    let groups: Vec<Json> = found["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| {
            let hits: Vec<Json> = group["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|hit| {
                    let highlights = hit["highlights"].as_array().cloned().unwrap_or_default();
                    json!({
                        "href": format!("/e/{}/{}", group["entity"].as_str().unwrap_or_default(), hit["id"].as_str().unwrap_or_default()),
                        "title": hit["title"],
                        "field": hit["field_label"][viewer.locale].clone(),
                        "pieces": pieces(hit["fragment"].as_str().unwrap_or_default(), &highlights),
                    })
                })
                .collect();
            json!({"entity": group["entity"], "label": group["label"][viewer.locale], "hits": hits})
        })
        .collect();
    let title = viewer.text("search.title");
    html("search.html", viewer.page(&app.catalog(), None, &title, json!({"q": query.q.trim(), "groups": groups})))
}
