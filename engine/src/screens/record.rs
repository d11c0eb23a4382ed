//! The record view (`/e/{entity}/{id}`): sections of the view layout, the stage path with the
//! stage history and time spent per stage, related panels with a "new" that pre-fills the
//! lookup, a timeline of changes, and the actions the user's roles allow.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use crm_model::{Action, Catalog, Entity, FieldDef, FieldType};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::view::{self, Titles};
use super::{Posted, Viewer, allowed, html, redirect_with};
use crate::app::{App, AppState};
use crate::convert::quote;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiPath;
use crate::kb;
use crate::records::{self, ListParams};

/// Rows a related panel shows before "more".
const PANEL_ROWS: u32 = 10;

/// `GET /e/{entity}/{id}`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Read)?.clone();
    let found = match records::get(&app, &viewer.principal, &entity_name, &id, None).await {
        Err(ApiError::NotFound(why)) => return merged_away(&app, &viewer, &entity_name, &id, why).await,
        found => found?,
    };
    let found_id = found.id();
    let merge = records::merge::undoable(&app, &entity_name, found_id, found.version()).await?;
    let record = serde_json::to_value(found).map_err(|e| ApiError::Internal(e.into()))?;
    let hidden = viewer.principal.hidden(&entity_name);
    let history = records::history(&app, &viewer.principal, &entity_name, &id).await?;
    let history = history.get("data").and_then(Json::as_array).cloned().unwrap_or_default();

    // One batch of titles for every reference on the page: the record's and the history's.
    let references: Vec<&FieldDef> = entity.columns().iter().filter(|f| f.field_type.is_reference()).collect();
    let mut values = vec![record.clone()];
    values.extend(history.iter().flat_map(|entry| {
        let changes = entry.get("changes").and_then(Json::as_object);
        [0, 1].map(|side| {
            let mut row = serde_json::Map::new();
            for (name, pair) in changes.into_iter().flatten() {
                row.insert(name.clone(), pair.get(side).cloned().unwrap_or(Json::Null));
            }
            Json::Object(row)
        })
    }));
    let mut wanted = view::references(&references, &values.iter().collect::<Vec<_>>());
    let actors = history.iter().filter_map(|e| e.get("actor")?.as_str()?.parse::<Uuid>().ok());
    wanted.entry(crm_model::USER_ENTITY.to_owned()).or_default().extend(actors);
    let titles = view::titles(&app, &viewer.principal, wanted).await?;

    let sections: Vec<Json> = entity
        .layout
        .view
        .sections
        .iter()
        .map(|section| {
            let items: Vec<Json> = section
                .fields
                .iter()
                .filter(|item| !hidden.contains(&item.field))
                .filter_map(|item| entity.column(item.field.as_str()))
                .map(|f| {
                    let cell = view::field_cell(&app, f, &record, &viewer, &titles);
                    json!({"name": f.name, "label": f.label.get(viewer.locale), "cell": cell})
                })
                .collect();
            json!({"label": section.label.get(viewer.locale), "columns": section.columns, "items": items})
        })
        .filter(|s| s["items"].as_array().is_some_and(|i| !i.is_empty()))
        .collect();

    let title =
        entity.title_field().and_then(|f| record.get(f.name.as_str())).and_then(Json::as_str).unwrap_or(&id).to_owned();
    let panels = panels(&app, &viewer, &entity, &id).await?;
    let confirm_delete = confirm_delete(&viewer, &panels);
    let stage = stage_path(&catalog, &entity, &viewer, &record, &history, app.now());
    let mut logged = logged(&app, &viewer, &entity, &id).await?;
    logged.extend(crate::mail::screens::timeline(&app, &viewer, &entity, found_id).await?);
    let timeline = timeline(&catalog, &entity, &viewer, &history, &titles, logged);
    let approval = approval(&app, &viewer, &entity, &record, &titles).await?;
    let finder = knowledge_finder(&app, &viewer, &entity, &id, &panels).await?;
    let convertible = entity_name == "lead"
        && record.get("status").and_then(Json::as_str) != Some("converted")
        && viewer.principal.access.allows("customer", Action::Create);
    let to_order = entity_name == quote::QUOTE
        && quote::allowed(&viewer.principal)
        && quote::order_of(&app, found_id).await?.is_none();
    let owner = record.get("owner").and_then(Json::as_str).and_then(|o| Uuid::parse_str(o).ok());
    let claimable = match owner {
        Some(owner) if viewer.principal.sees_pool(&catalog, &entity_name) => {
            crate::records::pool::is_pool(&app, owner).await?
        }
        _ => false,
    };
    let satisfaction = match entity_name.as_str() {
        crate::surveys::SERVICE_REQUEST => crate::surveys::satisfaction_link(&app, &record).await?,
        _ => None,
    };
    let values = json!({
        "entity": entity_name,
        "entity_label": entity.def.label.get(viewer.locale),
        "satisfaction_link": satisfaction,
        "id": id,
        "claimable": claimable,
        "confirm_delete": confirm_delete,
        "version": record.get("version"),
        "sections": sections,
        "panels": panels,
        "finder": finder,
        "stage": stage,
        "timeline": timeline,
        "approval": approval,
        "convertible": convertible,
        "survey_page": (entity_name == crate::surveys::SURVEY).then(|| format!("/surveys/{found_id}")),
        "to_order": to_order,
        "prints": crate::print::screens::offered(&app, &viewer, &entity_name),
        "merge": merge.map(|m| json!({"id": m.id, "count": m.losers.len() + 1})),
        "mailing": crate::mail::screens::panel(&app, &viewer, &entity_name, found_id, &record).await?,
        "can": allowed(&viewer, &entity_name),
    });
    html("record.html", viewer.page(&catalog, Some(&entity_name), &title, values))
}

/// A record a merge put in the recycle bin: its survivor, said so (a link to the loser from
/// before the merge still leads somewhere). Any other record that is not there is not found.
async fn merged_away(app: &App, viewer: &Viewer, entity_name: &str, id: &str, why: String) -> ApiResult<Response> {
    let Ok(loser) = id.parse::<Uuid>() else { return Err(ApiError::NotFound(why)) };
    let survivors = records::merge::merged_into(app, entity_name, &[loser]).await?;
    let Some(survivor) = survivors.get(&loser) else { return Err(ApiError::NotFound(why)) };
    // The survivor answers for itself: outside the viewer's scope it is not found either.
    records::get(app, &viewer.principal, entity_name, &survivor.to_string(), Some("id")).await?;
    Ok(redirect_with(&format!("/e/{entity_name}/{survivor}"), Some(&viewer.text("merge.redirected"))))
}

/// The approval of a record: its status, the steps taken, and the actions the viewer may take.
async fn approval(
    app: &App,
    viewer: &Viewer,
    entity: &Entity,
    record: &Json,
    titles: &Titles,
) -> ApiResult<Option<Json>> {
    let Some(def) = &entity.def.approval else { return Ok(None) };
    let Some(field) = entity.field(def.field.as_str()) else { return Ok(None) };
    let name = entity.name().as_str();
    let status = record.get(def.field.as_str()).and_then(Json::as_str);
    let id = record.get("id").and_then(Json::as_str).and_then(|i| i.parse().ok()).unwrap_or_default();
    let steps = crm_store::system::approval_steps(&app.db, name, id).await?;
    let pending = crate::approval::Pending::of(&steps);
    let steps: Vec<Json> = steps
        .iter()
        .map(|s| {
            // A first approval that leaves the record submitted waits for the next level.
            let key = if s.action == "approve" && s.to == "submitted" { "approve_first" } else { s.action.as_str() };
            json!({
                "action": super::shell::text(viewer.locale, &format!("approval.{key}"), &[]),
                "actor": s.actor.and_then(|a| titles.get(&a)),
                "comment": s.comment,
                "at": s.at.map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string()),
            })
        })
        .collect();
    let may = |action| viewer.principal.access.allows(name, action);
    let actions: Vec<&str> = match status {
        None | Some("draft" | "rejected") if may(Action::Edit) => vec!["submit"],
        Some("submitted") if may(Action::Approve) => vec!["approve", "reject", "recall"],
        Some("submitted") if may(Action::Edit) => vec!["recall"],
        _ => Vec::new(),
    };
    let catalog = app.catalog();
    let mut label =
        view::display(&catalog, field, record.get(def.field.as_str()).unwrap_or(&Json::Null), viewer, titles).text;
    let needs_next_level =
        def.next_level_when.as_ref().is_some_and(|f| record.get(f.as_str()) == Some(&Json::Bool(true)));
    if status == Some("submitted") && pending.level(needs_next_level) == crate::approval::Level::Next {
        label = viewer.text("approval.awaiting_next_level");
    }
    let facts: Vec<Json> = def
        .shows
        .iter()
        .filter(|f| viewer.principal.shows(name, f.as_str()))
        .filter_map(|f| entity.field(f.as_str()))
        .map(|f| {
            let shown = view::display(&catalog, f, record.get(f.name.as_str()).unwrap_or(&Json::Null), viewer, titles);
            json!({"label": f.label.get(viewer.locale), "value": shown.text, "href": shown.href, "tone": shown.tone})
        })
        .collect();
    Ok(Some(json!({"status": label, "steps": steps, "actions": actions, "facts": facts})))
}

/// `POST /e/{entity}/{id}/approval`: one approval step, then back to the record.
pub async fn approve(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
    form: Posted,
) -> ApiResult<Response> {
    let back = format!("/e/{entity_name}/{id}");
    let action = form.get("action").unwrap_or("");
    let message =
        match crate::approval::act(&app, &viewer.principal, &entity_name, &id, action, form.get("comment")).await {
            Ok(_) => super::shell::text(viewer.locale, &format!("approval.done_{action}"), &[]),
            Err(ApiError::Invalid(errors)) => errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "),
            Err(ApiError::Forbidden { message, .. }) => message,
            Err(e) => return Err(e),
        };
    Ok(redirect_with(&back, Some(&message)))
}

/// `POST /e/lead/{id}/convert`: the lead becomes a customer, a contact and an opportunity.
pub async fn convert(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    let conversion = crate::convert::lead::Conversion {
        ids: vec![Json::from(id.as_str())],
        owner: None,
        customer: None,
        create_contact: true,
        create_opportunity: true,
        opportunity_name: None,
    };
    let results = crate::convert::lead::convert(&app, &viewer.principal, &conversion).await?;
    let back = format!("/e/lead/{id}");
    Ok(match results.into_iter().next().map(|r| r.outcome) {
        Some(records::Outcome::Done(_)) => redirect_with(&back, Some(&viewer.text("lead.converted"))),
        Some(records::Outcome::Invalid(errors)) => {
            redirect_with(&back, Some(&errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")))
        }
        _ => return Err(ApiError::not_found(format!("no lead `{id}`"))),
    })
}

/// `POST /e/quote/{id}/order`: the quote becomes an order, which opens; a refusal is said on
/// the quote.
pub async fn quote_to_order(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<String>,
    _: Posted,
) -> ApiResult<Response> {
    let back = format!("/e/quote/{id}");
    let message = match quote::to_order(&app, &viewer.principal, &id).await {
        Ok(order) => {
            return Ok(redirect_with(&format!("/e/order/{}", order.id()), Some(&viewer.text("quote.converted"))));
        }
        Err(ApiError::AlreadyDone { .. }) => viewer.text("error.already_converted"),
        Err(ApiError::Invalid(errors)) => errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; "),
        Err(ApiError::Forbidden { message, .. } | ApiError::Conflict(message)) => message,
        Err(e) => return Err(e),
    };
    Ok(redirect_with(&back, Some(&message)))
}

/// The related panels the user may see, with their first rows.
async fn panels(app: &App, viewer: &Viewer, entity: &Entity, id: &str) -> ApiResult<Vec<Json>> {
    let catalog = app.catalog();
    let mut panels = Vec::new();
    for panel in &entity.related.panels {
        let Some(source) = catalog.entity(panel.source.as_str()) else { continue };
        if !viewer.principal.sees(panel.source.as_str()) {
            continue;
        }
        let params = ListParams { limit: Some(PANEL_ROWS), count: true, ..ListParams::default() };
        let page =
            match records::related(app, &viewer.principal, entity.name().as_str(), id, panel.name.as_str(), &params)
                .await
            {
                Ok(page) => page,
                // A panel whose lookup the user may not see does not exist for them.
                Err(ApiError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
        let hidden = viewer.principal.hidden(panel.source.as_str());
        let fields: Vec<&FieldDef> =
            panel.columns.iter().filter(|c| !hidden.contains(*c)).filter_map(|c| source.column(c.as_str())).collect();
        let records = view::records_of(&page)?;
        let rows = view::rows(app, viewer, panel.source.as_str(), &fields, &records).await?;
        let new_href = viewer
            .principal
            .access
            .allows(panel.source.as_str(), Action::Create)
            .then(|| format!("/e/{}/new?{}={}", panel.source, panel.lookup, id));
        let more = page.next_cursor.is_some().then(|| format!("/e/{}?f_{}={}", panel.source, panel.lookup, id));
        panels.push(json!({
            "name": panel.name,
            "label": panel.label.get(viewer.locale),
            "columns": fields.iter().map(|f| f.label.get(viewer.locale)).collect::<Vec<_>>(),
            "rows": rows,
            "total": page.total.unwrap_or(0),
            "new_href": new_href,
            "more_href": more,
        }));
    }
    Ok(panels)
}

/// The question before a record goes to the recycle bin, naming what still points at it (a
/// customer's opportunities, orders and service requests), as its panels count them.
fn confirm_delete(viewer: &Viewer, panels: &[Json]) -> String {
    let linked: Vec<String> = panels
        .iter()
        .filter_map(|p| {
            let total = p["total"].as_i64().filter(|n| *n > 0)?;
            let args = [("what", p["label"].as_str().unwrap_or("").to_owned()), ("n", total.to_string())];
            Some(super::shell::text(viewer.locale, "record.linked_count", &args))
        })
        .collect();
    if linked.is_empty() {
        return viewer.text("record.confirm_delete");
    }
    let separator = if viewer.locale == "en" { ", " } else { "、" };
    super::shell::text(viewer.locale, "record.confirm_delete_linked", &[("linked", linked.join(separator))])
}

/// 查找知识 (SV-3): on a service request whose articles panel the viewer sees, a box that
/// searches the knowledge base as one types and attaches an article, if they may link them.
async fn knowledge_finder(
    app: &App,
    viewer: &Viewer,
    entity: &Entity,
    id: &str,
    panels: &[Json],
) -> ApiResult<Option<Json>> {
    let may = |name, action| viewer.principal.access.allows(name, action);
    let shown = panels.iter().any(|p| p["name"] == kb::REQUEST_PANEL);
    if entity.name().as_str() != kb::REQUEST
        || !shown
        || !may(kb::LINK, Action::Create)
        || !may(kb::ARTICLE, Action::Read)
    {
        return Ok(None);
    }
    let attached = kb::attached(app, &viewer.principal, id).await?;
    Ok(Some(json!({"panel": kb::REQUEST_PANEL, "attached": attached})))
}

/// The stage path: every stage of the record's stage set, the current one marked, and how
/// long the record spent in each stage it passed through.
fn stage_path(
    catalog: &Catalog,
    entity: &Entity,
    viewer: &Viewer,
    record: &Json,
    history: &[Json],
    now: DateTime<Utc>,
) -> Option<Json> {
    let field = entity.live_fields().find(|f| f.field_type == FieldType::Stage)?;
    let selector = field.stage_set_by.as_ref().and_then(|by| record.get(by.field.as_str())).and_then(Json::as_str);
    let set = catalog.stage_set_for(field, selector)?;
    let name = field.name.as_str();
    let current = record.get(name).and_then(Json::as_str).unwrap_or("");
    let at = |entry: &Json| {
        entry
            .get("at")
            .and_then(Json::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let created = record
        .get("created_at")
        .and_then(Json::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))?;
    // Each move: (when, from, to, who).
    let moves: Vec<(DateTime<Utc>, String, String, Json)> = history
        .iter()
        .filter_map(|entry| {
            let pair = entry.get("changes")?.get(name)?;
            let text = |i: usize| pair.get(i).and_then(Json::as_str).unwrap_or("").to_owned();
            Some((at(entry)?, text(0), text(1), entry.get("actor").cloned().unwrap_or(Json::Null)))
        })
        .collect();
    let label = |stage: &str| {
        set.stages
            .iter()
            .find(|s| s.name.as_str() == stage)
            .map_or(stage.to_owned(), |s| s.label.get(viewer.locale).to_owned())
    };
    // Times on the viewer's clock, as in the timeline; how long in days and hours.
    let local = |t: DateTime<Utc>| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string();
    let mut periods = Vec::new();
    let mut since = created;
    let mut stage = moves.first().map_or(current.to_owned(), |m| m.1.clone());
    let mut visited = vec![stage.clone()];
    for (when, _, to, _) in &moves {
        periods.push(json!({"stage": label(&stage), "from": local(since), "days": duration(viewer, *when - since)}));
        since = *when;
        stage = to.clone();
        visited.push(stage.clone());
    }
    periods.push(
        json!({"stage": label(&stage), "from": local(since), "days": duration(viewer, now - since), "current": true}),
    );
    let position = set.stages.iter().position(|s| s.name.as_str() == current);
    let stages: Vec<Json> = set
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // A stage passed over on the way is skipped, not done.
            let state = match position {
                Some(p) if i < p && visited.iter().any(|v| v == s.name.as_str()) => "done",
                Some(p) if i < p => "skipped",
                Some(p) if i == p => "current",
                _ => "upcoming",
            };
            // A move that closes the record or passes stages over is confirmed first.
            let label = s.label.get(viewer.locale).to_owned();
            let skipped = position.map_or(0, |p| i.saturating_sub(p + 1));
            let confirm = if s.category != crm_model::meta::StageCategory::Open && state != "current" {
                Some(super::shell::text(viewer.locale, "stage.confirm_close", &[("stage", label.clone())]))
            } else if skipped > 0 {
                let args = [("stage", label.clone()), ("n", skipped.to_string())];
                Some(super::shell::text(viewer.locale, "stage.confirm_skip", &args))
            } else {
                None
            };
            json!({"name": s.name, "label": label, "state": state, "category": s.category, "probability": s.probability, "confirm": confirm})
        })
        .collect();
    Some(json!({"field": name, "label": field.label.get(viewer.locale), "stages": stages, "periods": periods}))
}

/// A stay in a stage as days and hours: "2 天 5 小时".
fn duration(viewer: &Viewer, span: chrono::TimeDelta) -> String {
    let hours = span.num_hours().max(0);
    let args = [("days", (hours / 24).to_string()), ("hours", (hours % 24).to_string())];
    super::shell::text(viewer.locale, "stage.duration", &args)
}

/// The record's history, newest first: who changed which fields from what to what.
fn timeline(
    catalog: &Catalog,
    entity: &Entity,
    viewer: &Viewer,
    history: &[Json],
    titles: &Titles,
    logged: Vec<(DateTime<Utc>, Json)>,
) -> Vec<Json> {
    let mut entries: Vec<(DateTime<Utc>, Json)> = fold_recalculations(history)
        .iter()
        .map(|entry| {
            let changes: Vec<Json> = entry
                .get("changes")
                .and_then(Json::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(name, pair)| {
                    let field = entity.column(name)?;
                    let side =
                        |i: usize| view::display(catalog, field, pair.get(i).unwrap_or(&Json::Null), viewer, titles);
                    Some(json!({"label": field.label.get(viewer.locale), "before": side(0), "after": side(1)}))
                })
                .collect();
            let actor =
                entry.get("actor").and_then(Json::as_str).and_then(|a| a.parse().ok()).and_then(|a| titles.get(&a));
            let at = entry.get("at").and_then(Json::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            let action = match entry.get("source").and_then(Json::as_str) {
                Some("rollup") => "recalculated",
                _ => entry.get("action").and_then(Json::as_str).unwrap_or(""),
            };
            let entry = json!({
                "action": super::shell::text(viewer.locale, &format!("timeline.{action}"), &[]),
                "actor": actor,
                "at": at.map(|t| t.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string()),
                "changes": changes,
            });
            (at.map(|t| t.with_timezone(&Utc)).unwrap_or_default(), entry)
        })
        .collect();
    entries.extend(logged);
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    entries.into_iter().map(|(_, entry)| entry).collect()
}

/// Recalculations the engine made one after another (a quote's total as its lines are added)
/// are one entry of the timeline: each field from its first value to its last.
fn fold_recalculations(history: &[Json]) -> Vec<Json> {
    let mut folded: Vec<Json> = Vec::new();
    for entry in history {
        let derived = |e: &Json| e.get("source").and_then(Json::as_str) == Some("rollup");
        if derived(entry)
            && let Some(last) = folded.last_mut().filter(|last| derived(last))
        {
            if let (Some(into), Some(from)) = (last["changes"].as_object_mut(), entry["changes"].as_object()) {
                for (name, pair) in from {
                    match into.get_mut(name) {
                        Some(kept) => kept[1] = pair[1].clone(),
                        None => {
                            into.insert(name.clone(), pair.clone());
                        }
                    }
                }
            }
            last["at"] = entry["at"].clone();
            continue;
        }
        folded.push(entry.clone());
    }
    folded
}

/// The records of timeline panels (activities), as timeline entries: who logged what, when.
async fn logged(app: &App, viewer: &Viewer, entity: &Entity, id: &str) -> ApiResult<Vec<(DateTime<Utc>, Json)>> {
    let catalog = app.catalog();
    let mut entries = Vec::new();
    for panel in entity.related.panels.iter().filter(|p| p.timeline) {
        let Some(source) =
            catalog.entity(panel.source.as_str()).filter(|_| viewer.principal.sees(panel.source.as_str()))
        else {
            continue;
        };
        let Some(title) = source.title_field() else { continue };
        let params = ListParams {
            fields: Some(format!("{},created_at,created_by", title.name)),
            sort: Some("-created_at".into()),
            limit: Some(20),
            ..ListParams::default()
        };
        let page =
            match records::related(app, &viewer.principal, entity.name().as_str(), id, panel.name.as_str(), &params)
                .await
            {
                Ok(page) => page,
                Err(ApiError::NotFound(_) | ApiError::BadRequest { .. }) => continue,
                Err(e) => return Err(e),
            };
        let rows = view::records_of(&page)?;
        let creators = source.column("created_by").into_iter().collect::<Vec<_>>();
        let titles =
            view::titles(app, &viewer.principal, view::references(&creators, &rows.iter().collect::<Vec<_>>())).await?;
        for row in rows {
            let at = row.get("created_at").and_then(Json::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            let Some(at) = at else { continue };
            let actor = row
                .get("created_by")
                .and_then(Json::as_str)
                .and_then(|a| a.parse::<Uuid>().ok())
                .and_then(|a| titles.get(&a));
            let entry = json!({
                "action": super::shell::text(viewer.locale, "timeline.logged", &[("what", panel.label.get(viewer.locale).to_owned())]),
                "actor": actor,
                "at": at.with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string(),
                "item": {
                    "text": row.get(title.name.as_str()).and_then(Json::as_str).unwrap_or_default(),
                    "href": format!("/e/{}/{}", panel.source, row.get("id").and_then(Json::as_str).unwrap_or_default()),
                },
                "changes": [],
            });
            entries.push((at.with_timezone(&Utc), entry));
        }
    }
    Ok(entries)
}

/// `POST /e/{entity}/{id}/delete`: to the recycle bin, then back to the list.
pub async fn delete(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, String)>,
    _: Posted,
) -> ApiResult<Response> {
    let results = records::bulk(
        &app,
        &viewer.principal,
        records::Source::Screen,
        &entity_name,
        &[Json::from(id.as_str())],
        records::BulkOp::Delete,
    )
    .await?;
    match results.into_iter().next().map(|r| r.outcome) {
        Some(records::Outcome::Done(_)) => {
            Ok(redirect_with(&format!("/e/{entity_name}"), Some(&viewer.text("record.deleted"))))
        }
        Some(records::Outcome::Forbidden { code, message }) => Err(ApiError::Forbidden { code, message }),
        Some(records::Outcome::Invalid(errors)) => Err(ApiError::Invalid(errors)),
        _ => Err(ApiError::not_found(format!("no {entity_name} `{id}`"))),
    }
}
