//! The studio's view of the background work that follows writes: each outbox consumer, how
//! far it has read, how many events wait, and the events it failed on — with a button that
//! sends dead events again once their cause is fixed.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value as Json, json};

use super::{Posted, Viewer, html, redirect_with};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ApiPath;

/// `GET /studio/jobs`
pub async fn jobs(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let status = crate::jobs::status(&app, &viewer.principal).await?;
    let when = |at: &Json| {
        at.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M:%S").to_string())
    };
    let consumers: Vec<Json> = status["consumers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default();
            let key = format!("jobs.consumer.{name}");
            let label = viewer.text(&key);
            let failures: Vec<Json> = c["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    json!({
                        "seq": f["seq"], "attempts": f["attempts"], "error": f["error"], "dead": f["dead"],
                        "first_at": when(&f["first_at"]), "next_at": when(&f["next_at"]),
                    })
                })
                .collect();
            json!({
                "name": name,
                "label": if label == key { name.to_owned() } else { label },
                "shared": c["shared"], "lag": c["lag"], "retrying": c["retrying"], "dead": c["dead"],
                "nodes": c["cursors"].as_array().map_or(0, Vec::len),
                "failures": failures,
            })
        })
        .collect();
    let title = viewer.text("jobs.title");
    html("studio_jobs.html", viewer.page(&app.catalog(), None, &title, json!({"consumers": consumers})))
}

/// `POST /studio/jobs/{consumer}/retry`: the consumer's dead events, sent again.
pub async fn retry(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(consumer): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    crate::jobs::retry(&app, &viewer.principal, &consumer).await?;
    Ok(redirect_with("/studio/jobs", Some(&viewer.text("jobs.retried"))))
}
