//! A rule's dry run as the studio shows it: the record to try it on chosen from a list, and
//! what the rule would do said in words — the fields it would change (by label, from what to
//! what), the errors it would raise, the reminders and records it would leave — with the
//! engine's own answer folded beneath.

use serde_json::{Value as Json, json};

use super::Viewer;
use super::view;
use crate::app::App;
use crate::error::ApiResult;

/// The records a rule on `entity` may be tried on: the latest ones the viewer reads.
pub async fn records(app: &App, viewer: &Viewer, entity: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    match entity {
        Some(entity) => view::choices(app, viewer, entity, None).await,
        None => Ok(Vec::new()),
    }
}

/// A dry run's answer (`rules::dry_run`) in the viewer's words.
pub fn readable(app: &App, viewer: &Viewer, entity: Option<&str>, outcome: &Json) -> Json {
    let catalog = app.catalog();
    let entity = entity.and_then(|e| catalog.entity(e));
    let label = |name: &str| {
        entity.and_then(|e| e.column(name)).map_or(name.to_owned(), |f| f.label.get(viewer.locale).to_owned())
    };
    let shown = |value: &Json| match value {
        Json::Null => "—".to_owned(),
        Json::String(text) => text.clone(),
        other => other.to_string(),
    };
    let changes: Vec<Json> = outcome["changes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, pair)| json!({"label": label(name), "before": shown(&pair[0]), "after": shown(&pair[1])}))
        .collect();
    let errors: Vec<Json> = outcome["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!({"label": label(e["field"].as_str().unwrap_or("")), "message": e["message"]}))
        .collect();
    let entity_label =
        |name: &str| catalog.entity(name).map_or(name.to_owned(), |e| e.def.label.get(viewer.locale).to_owned());
    let effects: Vec<String> = outcome["effects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|effect| {
            let say = |key: &str, args: &[(&str, String)]| super::shell::text(viewer.locale, key, args);
            if let Some(notify) = effect.get("notify") {
                let message = crm_model::Labels::message_in(notify["message"].as_str().unwrap_or(""), viewer.locale);
                say("studio.dry_notify", &[("message", message)])
            } else if let Some(create) = effect.get("create") {
                let what = entity_label(create["entity"].as_str().unwrap_or(""));
                say("studio.dry_create", &[("entity", what), ("values", create["values"].to_string())])
            } else {
                let update = &effect["update"];
                let what = entity_label(update["entity"].as_str().unwrap_or(""));
                say("studio.dry_update", &[("entity", what), ("values", update["values"].to_string())])
            }
        })
        .collect();
    json!({
        "ok": outcome["ok"] == true,
        "error": outcome["error"],
        "changes": changes,
        "errors": errors,
        "effects": effects,
        "value": outcome.get("value").filter(|v| !v.is_null()).map(shown),
        "raw": serde_json::to_string_pretty(outcome).unwrap_or_default(),
    })
}
