//! The list page of an entity (`/e/{entity}`): columns and sort from the list-view metadata,
//! a filter bar with a widget per field type, personal saved views, keyset pages with a total,
//! bulk actions on selected rows, CSV and Excel export, and the recycle bin.

use axum::extract::State;
use axum::response::Response;
use crm_model::types::FilterInput;
use crm_model::{Action, Entity, FieldDef, FieldType, USER_ENTITY};
use crm_store::system;
use serde::Serialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::view::{self, Cell};
use super::{Posted, Viewer, allowed, encode, html, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::export::{Audience, FileFormat};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::records::{self, BulkOp, BulkResult, Grantee, ListParams, Outcome, Source};

/// Rows per page.
const PAGE_SIZE: u32 = 50;

/// What a list page was asked for: its query string, read.
struct ListState {
    pairs: Vec<(String, String)>,
}

impl ListState {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The query string without some keys (the cursor, or the sort when a header sets it).
    fn query_without(&self, drop: &[&str]) -> String {
        self.pairs
            .iter()
            .filter(|(k, v)| !drop.contains(&k.as_str()) && !v.is_empty())
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn has_filters(&self) -> bool {
        self.pairs.iter().any(|(k, v)| (k.starts_with("f_") || k == "filter") && !v.is_empty())
    }
}

/// The fields a user sees as the list's columns: `cols=` if given, else the list view's.
fn columns<'e>(entity: &'e Entity, viewer: &Viewer, state: &ListState) -> Vec<&'e FieldDef> {
    let hidden = viewer.principal.hidden(entity.name().as_str());
    // `cols=a,b` from a saved link, or one `cols` per ticked box of the column chooser.
    let picked: Vec<String> = state
        .pairs
        .iter()
        .filter(|(k, _)| k == "cols")
        .flat_map(|(_, v)| v.split(',').map(str::to_owned))
        .filter(|v| !v.is_empty())
        .collect();
    let names: Vec<String> =
        if picked.is_empty() { entity.list.columns.iter().map(ToString::to_string).collect() } else { picked };
    let chosen: Vec<&FieldDef> =
        names.iter().filter_map(|n| entity.column(n.trim())).filter(|f| !hidden.contains(&f.name)).collect();
    if chosen.is_empty() { entity.title_field().into_iter().collect() } else { chosen }
}

/// The fields the filter bar offers: the columns, the owner, and any other field the query
/// filters on (a saved view may filter on a field it does not show).
fn filterable<'e>(
    entity: &'e Entity,
    viewer: &Viewer,
    columns: &[&'e FieldDef],
    state: &ListState,
) -> Vec<&'e FieldDef> {
    let hidden = viewer.principal.hidden(entity.name().as_str());
    let filtered = state.pairs.iter().filter_map(|(k, _)| {
        let name = k.strip_prefix("f_")?;
        let name = name.strip_suffix("_from").or_else(|| name.strip_suffix("_to")).unwrap_or(name);
        entity.column(name).or_else(|| entity.column(k.strip_prefix("f_")?))
    });
    let mut fields: Vec<&FieldDef> = Vec::new();
    for field in columns.iter().copied().chain(entity.column("owner")).chain(filtered) {
        let usable =
            field.spec().filter_input.is_some() && field.name.as_str() != "id" && !hidden.contains(&field.name);
        if usable && !fields.iter().any(|f| f.name == field.name) {
            fields.push(field);
        }
    }
    fields
}

/// What a list query shows: its columns, the fields its filter bar offers, and the list
/// request they make (the caller chooses the page: limit, cursor, count).
fn view_of<'e>(
    entity: &'e Entity,
    viewer: &Viewer,
    state: &ListState,
) -> (Vec<&'e FieldDef>, Vec<&'e FieldDef>, ListParams) {
    let fields = columns(entity, viewer, state);
    let filterable = filterable(entity, viewer, &fields, state);
    let params = ListParams {
        filter: filter_with_drill(state, filter_of(&filterable, state, viewer)),
        sort: state.get("sort").map(str::to_owned),
        fields: Some(fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(",")),
        ..ListParams::default()
    };
    (fields, filterable, params)
}

/// The filter tree of a list drilled into from a report (`filter=`, a filter tree as the
/// records API takes it) and-ed with the filter bar's. A malformed tree is passed on as it is,
/// for the list to say what is wrong with it.
fn filter_with_drill(state: &ListState, bar: Option<String>) -> Option<String> {
    let Some(drill) = state.get("filter") else { return bar };
    match (serde_json::from_str::<Json>(drill), bar.as_deref().map(serde_json::from_str::<Json>)) {
        (Ok(drill), Some(Ok(bar))) => Some(json!({ "and": [drill, bar] }).to_string()),
        _ => Some(drill.to_owned()),
    }
}

/// The filter tree the filter bar's inputs stand for.
fn filter_of(fields: &[&FieldDef], state: &ListState, viewer: &Viewer) -> Option<String> {
    let mut conditions = Vec::new();
    let offset = viewer.offset.to_string();
    for field in fields {
        let name = field.name.as_str();
        let value = state.get(&format!("f_{name}"));
        let from = state.get(&format!("f_{name}_from"));
        let to = state.get(&format!("f_{name}_to"));
        let cond = |op: &str, value: Json| json!({"field": name, "op": op, "value": value});
        let Some(input) = field.spec().filter_input else { continue };
        match input {
            FilterInput::Search => conditions.extend(value.map(|v| cond("contains", json!(v)))),
            FilterInput::Province => conditions.extend(value.map(|v| cond("starts_with", json!(v)))),
            FilterInput::Option | FilterInput::Stage => conditions.extend(value.map(|v| cond("eq", json!(v)))),
            FilterInput::YesNo => conditions.extend(value.map(|v| cond("eq", json!(v == "true")))),
            FilterInput::User | FilterInput::Record => {
                let me = viewer.principal.user_id.to_string();
                conditions.extend(value.map(|v| cond("eq", json!(if v == "me" { me.as_str() } else { v }))));
            }
            FilterInput::Datetimes => {
                conditions.extend(from.map(|d| cond("gte", json!(format!("{d}T00:00:00{offset}")))));
                conditions.extend(to.map(|d| cond("lte", json!(format!("{d}T23:59:59.999999{offset}")))));
            }
            FilterInput::Dates | FilterInput::Numbers => {
                conditions.extend(from.map(|v| cond("gte", json!(v))));
                conditions.extend(to.map(|v| cond("lte", json!(v))));
            }
        }
    }
    (!conditions.is_empty()).then(|| json!({"and": conditions}).to_string())
}

/// The filter bar of an entity's list for a query other than the list's own (a report
/// builder's): its widgets, and the filter tree they and a drill `filter=` stand for.
pub async fn filter_bar(
    app: &App,
    viewer: &Viewer,
    entity: &Entity,
    pairs: Vec<(String, String)>,
) -> ApiResult<(Vec<Widget>, Option<String>)> {
    let state = ListState { pairs };
    let (_, filterable, params) = view_of(entity, viewer, &state);
    let users = users(app).await?;
    Ok((bar(app, viewer, &filterable, &state, &users).await?, params.filter))
}

/// The widgets of a filter bar over `fields`, with the titles of the records its lookups hold.
async fn bar(
    app: &App,
    viewer: &Viewer,
    fields: &[&FieldDef],
    state: &ListState,
    users: &[(String, String)],
) -> ApiResult<Vec<Widget>> {
    let lookups: Vec<&FieldDef> =
        fields.iter().copied().filter(|f| f.spec().filter_input == Some(FilterInput::Record)).collect();
    let chosen: Vec<(String, Json)> = lookups
        .iter()
        .filter_map(|f| Some((f.name.to_string(), Json::from(state.get(&format!("f_{}", f.name))?))))
        .collect();
    let chosen = Json::Object(chosen.into_iter().collect());
    let titles = view::titles(app, &viewer.principal, view::references(&lookups, &[&chosen])).await?;
    Ok(widgets(app, fields, state, viewer, users, &titles))
}

/// A filter bar widget.
#[derive(Serialize)]
pub struct Widget {
    name: String,
    label: String,
    kind: &'static str,
    options: Vec<(String, String)>,
    value: String,
    from: String,
    to: String,
    /// For a lookup: the entity it searches, its title field, and the chosen record's title.
    target: Option<String>,
    title_field: Option<String>,
    title: Option<String>,
}

fn widgets(
    app: &App,
    fields: &[&FieldDef],
    state: &ListState,
    viewer: &Viewer,
    users: &[(String, String)],
    titles: &view::Titles,
) -> Vec<Widget> {
    let catalog = app.catalog();
    fields
        .iter()
        .map(|field| {
            let name = field.name.as_str();
            let value = |suffix: &str| state.get(&format!("f_{name}{suffix}")).unwrap_or("").to_owned();
            let input = field.spec().filter_input;
            let (kind, options) = match input {
                Some(FilterInput::Option) => (
                    "select",
                    field.options.iter().map(|o| (o.value.clone(), o.label.get(viewer.locale).to_owned())).collect(),
                ),
                Some(FilterInput::Stage) => {
                    let mut options: Vec<(String, String)> = Vec::new();
                    for stage in catalog.stage_sets_of(field).into_iter().flat_map(|set| set.stages.iter()) {
                        if !options.iter().any(|(name, _)| name == stage.name.as_str()) {
                            options.push((stage.name.to_string(), stage.label.get(viewer.locale).to_owned()));
                        }
                    }
                    ("select", options)
                }
                Some(FilterInput::YesNo) => (
                    "select",
                    vec![("true".into(), viewer.text("common.yes")), ("false".into(), viewer.text("common.no"))],
                ),
                Some(FilterInput::User) => {
                    let mut options = vec![("me".to_owned(), viewer.text("list.me"))];
                    options.extend(users.iter().cloned());
                    ("select", options)
                }
                Some(FilterInput::Province) => (
                    "select",
                    crm_model::region::PROVINCES.iter().map(|p| ((*p).to_owned(), (*p).to_owned())).collect(),
                ),
                Some(FilterInput::Record) => ("lookup", Vec::new()),
                Some(FilterInput::Dates | FilterInput::Datetimes) => ("date_range", Vec::new()),
                Some(FilterInput::Numbers) => ("number_range", Vec::new()),
                Some(FilterInput::Search) | None => ("text", Vec::new()),
            };
            let target = (input == Some(FilterInput::Record)).then(|| field.reference_target()).flatten();
            let title_field =
                target.and_then(|t| catalog.entity(t)).and_then(|e| e.title_field()).map(|f| f.name.to_string());
            let title = Uuid::parse_str(&value("")).ok().and_then(|id| titles.get(&id).cloned());
            Widget {
                name: name.to_owned(),
                label: field.label.get(viewer.locale).to_owned(),
                kind,
                options,
                value: value(""),
                from: value("_from"),
                to: value("_to"),
                target: target.map(str::to_owned),
                title_field,
                title,
            }
        })
        .collect()
}

/// Active users by name, for owner filters and the assign and share actions.
pub async fn users(app: &App) -> ApiResult<Vec<(String, String)>> {
    let catalog = app.catalog();
    let Some(users) = catalog.entity(USER_ENTITY) else { return Ok(Vec::new()) };
    let Some(title) = users.title_field() else { return Ok(Vec::new()) };
    let mut filter = None;
    if let Some(active) = users.column("active") {
        filter = Some(crm_model::Filter::Cond(Box::new(crm_model::filter::Cond {
            field: active.clone(),
            op: crm_model::filter::Op::Eq(crm_model::Value::Boolean(true)),
        })));
    }
    let sort = vec![crm_model::SortKey { field: title.name.clone(), descending: false }];
    let query = crm_model::ListQuery { filter, sort, limit: 1000, after: None, deleted: false };
    let index = users.column_index(title.name.as_str()).expect("the title is a column");
    let page = crm_store::records::list(&app.db, users, &query).await?;
    Ok(page
        .records
        .iter()
        .map(|r| {
            (
                r.id().to_string(),
                match &r.values[index] {
                    crm_model::Value::Text(t) => t.clone(),
                    _ => String::new(),
                },
            )
        })
        .collect())
}

#[derive(Serialize)]
struct Column {
    name: String,
    label: String,
    sort_href: Option<String>,
    sorted: Option<&'static str>,
}

/// `GET /e/{entity}`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Read)?.clone();
    let state = ListState { pairs };
    let (fields, filterable, base) = view_of(&entity, &viewer, &state);
    let users = users(&app).await?;
    // The public pools the viewer may claim from, each a view of the list (公海).
    let pools = if viewer.principal.sees_pool(&catalog, &entity_name) {
        view::choices(&app, &viewer, USER_ENTITY, Some(json!({"field": "pool", "op": "eq", "value": true}))).await?
    } else {
        Vec::new()
    };
    let sort = base.sort.clone();
    let params =
        ListParams { limit: Some(PAGE_SIZE), cursor: state.get("cursor").map(str::to_owned), count: true, ..base };
    // A filter value that is not valid (a word in a number box) is said beside the bar.
    let (records, next_cursor, total, problem) =
        match records::list(&app, &viewer.principal, &entity_name, &params).await {
            Ok(page) => (view::records_of(&page)?, page.next_cursor.clone(), page.total.unwrap_or(0), None),
            Err(ApiError::BadRequest { message, .. }) => (Vec::new(), None, 0, Some(message)),
            Err(e) => return Err(e),
        };
    let rows = view::rows(&app, &viewer, &entity_name, &fields, &records).await?;
    let widgets = bar(&app, &viewer, &filterable, &state, &users).await?;
    let current_sort =
        sort.unwrap_or_else(|| entity.list.sort.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
    let base = state.query_without(&["cursor", "sort"]);
    let columns: Vec<Column> = fields
        .iter()
        .map(|f| {
            let name = f.name.as_str();
            let sorted = match current_sort.split(',').next() {
                Some(first) if first == name => Some("asc"),
                Some(first) if first.strip_prefix('-') == Some(name) => Some("desc"),
                _ => None,
            };
            let next = if sorted == Some("asc") { format!("-{name}") } else { name.to_owned() };
            let sort_href = f
                .field_type
                .is_sortable()
                .then(|| format!("?{}{}sort={}", base, if base.is_empty() { "" } else { "&" }, encode(&next)));
            Column { name: name.to_owned(), label: f.label.get(viewer.locale).to_owned(), sort_href, sorted }
        })
        .collect();
    let query = state.query_without(&["cursor"]);
    let next_href =
        next_cursor.map(|c| format!("?{}{}cursor={}", query, if query.is_empty() { "" } else { "&" }, encode(&c)));
    let views = system::saved_views(&app.db, viewer.principal.user_id, &entity_name).await?;
    let views: Vec<Json> = views
        .iter()
        .map(|v| json!({"id": v.id, "name": v.name, "href": format!("?{}", v.query), "active": v.query == query}))
        .collect();
    let hidden = viewer.principal.hidden(&entity_name);
    let read_only = viewer.principal.read_only(&entity_name);
    let all_fields: Vec<Json> = entity
        .live_fields()
        .filter(|f| !hidden.contains(&f.name))
        .map(|f| json!({"name": f.name, "label": f.label.get(viewer.locale), "shown": fields.iter().any(|c| c.name == f.name)}))
        .collect();
    let editable: Vec<Json> = entity
        .live_fields()
        .filter(|f| !hidden.contains(&f.name) && !read_only.contains(&f.name) && !f.spec().generated)
        .map(|f| {
            let options: Vec<Json> =
                f.options.iter().map(|o| json!({"value": o.value, "label": o.label.get(viewer.locale)})).collect();
            json!({"name": f.name, "label": f.label.get(viewer.locale), "options": options})
        })
        .collect();
    let label = entity.def.label.get(viewer.locale).to_owned();
    let campaigns = joinable_campaigns(&app, &viewer, &entity_name).await?;
    let values = json!({
        "entity": entity_name.as_str(),
        "entity_label": label.as_str(),
        "has_board": entity.live_fields().any(|f| f.field_type == FieldType::Stage),
        "reviews_duplicates": viewer.principal.is_admin() && !entity.def.duplicates.is_empty(),
        "columns": columns,
        "rows": rows,
        "total": total,
        "next_href": next_href,
        "first_href": state.get("cursor").map(|_| format!("?{query}")),
        "widgets": widgets,
        "filtered": state.has_filters(),
        "drill": state.get("filter"),
        "undrilled_href": format!("?{}", state.query_without(&["cursor", "filter"])),
        "problem": problem,
        "query": query,
        "views": views,
        "all_fields": all_fields,
        "editable_fields": editable,
        "users": users,
        "pools": pools,
        "can": allowed(&viewer, &entity_name),
        "builds_reports": viewer.principal.builds_reports(),
        "campaigns": campaigns,
        "labels": crate::print::labels::LABELLED.contains(&entity_name.as_str()),
        "texts": entity.column(crate::sms::MOBILE).is_some_and(|f| f.field_type == crm_model::FieldType::Phone),
    });
    html("list.html", viewer.page(&catalog, Some(&entity_name), &label, values))
}

/// The campaigns the viewer may add the list's records to as members; none for a list whose
/// records cannot join one.
async fn joinable_campaigns(app: &App, viewer: &Viewer, entity: &str) -> ApiResult<Vec<(String, String)>> {
    let may = crate::campaigns::JOINING.contains(&entity)
        && viewer.principal.access.allows(crate::campaigns::MEMBER, Action::Create);
    if !may {
        return Ok(Vec::new());
    }
    view::choices(app, viewer, "campaign", None).await
}

/// `GET /e/{entity}/export.csv`: the current view (filters, columns, sort) as CSV.
pub async fn export_csv(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    export(&app, &viewer, &entity_name, pairs, FileFormat::Csv).await
}

/// `GET /e/{entity}/export.xlsx`: the current view as an Excel workbook with typed cells.
pub async fn export_xlsx(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    export(&app, &viewer, &entity_name, pairs, FileFormat::Xlsx).await
}

/// The list a page shows, exported through the same query as the page.
async fn export(
    app: &App,
    viewer: &Viewer,
    entity_name: &str,
    pairs: Vec<(String, String)>,
    format: FileFormat,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, entity_name, Action::Export)?.clone();
    let (_, _, params) = view_of(&entity, viewer, &ListState { pairs });
    let audience = Audience { principal: &viewer.principal, locale: viewer.locale, offset: viewer.offset };
    let (body, name) = crate::export::export(app, &audience, entity_name, params, format).await?;
    Ok(crate::http::file_response(body, format, &name))
}

/// Sums up the results of a bulk action for the next page.
fn summary(viewer: &Viewer, results: &[BulkResult]) -> String {
    let done = results.iter().filter(|r| matches!(r.outcome, Outcome::Done(_))).count();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Done(_) => None,
            Outcome::NotFound => Some(viewer.text("bulk.not_allowed")),
            Outcome::Forbidden { code, message } => {
                Some(viewer.error_text(&crate::error::FieldError::new("", code, message.clone())))
            }
            Outcome::Invalid(errors) => {
                Some(errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; "))
            }
        })
        .collect();
    let mut text = super::shell::text(viewer.locale, "bulk.done", &[("n", done.to_string())]);
    if !failed.is_empty() {
        text.push_str(&super::shell::text(
            viewer.locale,
            "bulk.failed",
            &[("n", failed.len().to_string()), ("why", failed[0].clone())],
        ));
    }
    text
}

/// `POST /e/{entity}/bulk`: assign, share, update a field or delete the selected rows.
pub async fn bulk(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let ids: Vec<Json> = form.all("ids").into_iter().map(Json::from).collect();
    // A record's own page sends its one id, and is where the answer shows.
    let record = form.get("record").and_then(|id| Uuid::parse_str(id).ok());
    let back = match (record, form.get("query").filter(|q| !q.is_empty())) {
        (Some(id), _) => format!("/e/{entity_name}/{id}"),
        (None, Some(query)) => format!("/e/{entity_name}?{query}"),
        (None, None) => format!("/e/{entity_name}"),
    };
    if ids.is_empty() {
        return Ok(redirect_with(&back, Some(&viewer.text("bulk.none_selected"))));
    }
    if form.get("action") == Some("join") {
        let campaign = form.get("campaign").and_then(|c| Uuid::parse_str(c).ok());
        let Some(campaign) = campaign else {
            return Ok(redirect_with(&back, Some(&viewer.text("bulk.choose_campaign"))));
        };
        let body = json!({"entity": entity_name, "ids": ids});
        let joined = crate::campaigns::join(&app, &viewer.principal, Source::Screen, campaign, &body).await?;
        let args = [("added", joined["added"].to_string()), ("already", joined["already"].to_string())];
        return Ok(redirect_with(&back, Some(&super::shell::text(viewer.locale, "bulk.joined", &args))));
    }
    if form.get("action") == Some("labels") {
        let ids: Vec<String> = form.all("ids").into_iter().map(encode).collect();
        return Ok(redirect_with(&format!("/labels?entity={entity_name}&ids={}", ids.join(",")), None));
    }
    if let Some(action @ ("mail" | "sms")) = form.get("action") {
        let ids: Vec<String> = form.all("ids").into_iter().map(encode).collect();
        let channel = if action == "sms" { "&channel=sms" } else { "" };
        return Ok(redirect_with(&format!("/mail/compose?entity={entity_name}{channel}&ids={}", ids.join(",")), None));
    }
    if form.get("action") == Some("merge") {
        if ids.len() < 2 {
            return Ok(redirect_with(&back, Some(&viewer.text("merge.choose_two"))));
        }
        let ids: Vec<String> = form.all("ids").into_iter().map(encode).collect();
        return Ok(redirect_with(&format!("/e/{entity_name}/merge?ids={}", ids.join(",")), None));
    }
    let results = match bulk_action(&app, &viewer, &entity_name, &ids, &form).await {
        Ok(results) => results,
        // A value that is not valid for every row is said on the list, as a row's would be.
        Err(ApiError::Invalid(errors)) => {
            let message = errors.iter().map(|e| viewer.error_text(e)).collect::<Vec<_>>().join("; ");
            return Ok(redirect_with(&back, Some(&message)));
        }
        Err(e) => return Err(e),
    };
    Ok(redirect_with(&back, Some(&summary(&viewer, &results))))
}

async fn bulk_action(
    app: &App,
    viewer: &Viewer,
    entity_name: &str,
    ids: &[Json],
    form: &Posted,
) -> ApiResult<Vec<BulkResult>> {
    let user = |name: &str| {
        form.get(name)
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| ApiError::field(name, "required", viewer.text("bulk.choose_user")))
    };
    let p = &viewer.principal;
    Ok(match form.get("action").unwrap_or("") {
        "assign" => records::bulk(app, p, Source::Screen, entity_name, ids, BulkOp::Assign(user("owner")?)).await?,
        "share" => {
            let access = if form.get("access") == Some("edit") { "edit" } else { "read" };
            records::bulk_share(app, p, entity_name, ids, Grantee::User(user("share_with")?), Some(access)).await?
        }
        "update" => {
            let catalog = app.catalog();
            let entity = p.entity(&catalog, entity_name, Action::Edit)?;
            let name = form.get("field").unwrap_or("");
            let field =
                entity.field(name).ok_or_else(|| ApiError::field(name, "unknown", viewer.text("bulk.choose_field")))?;
            // A field with options posts its own choice; typed text may be an option's label.
            let chosen = form.get(&format!("value_{name}")).filter(|v| !v.is_empty());
            let typed = chosen.or(form.get("value")).unwrap_or("").trim();
            let option =
                field.options.iter().find(|o| o.value == typed || o.label.zh_cn == typed || o.label.en == typed);
            let value = view::form_value(field, &[option.map_or(typed, |o| o.value.as_str())], &viewer.offset);
            records::bulk(app, p, Source::Screen, entity_name, ids, BulkOp::Update(&json!({ name: value }))).await?
        }
        "delete" => records::bulk(app, p, Source::Screen, entity_name, ids, BulkOp::Delete).await?,
        "claim" => records::bulk(app, p, Source::Screen, entity_name, ids, BulkOp::Claim).await?,
        other => return Err(ApiError::bad_request("invalid_body", format!("no bulk action `{other}`"))),
    })
}

/// `POST /e/{entity}/views`: saves the current filters, columns and sort under a name.
pub async fn save_view(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    viewer.principal.entity(&app.catalog(), &entity_name, Action::Read)?;
    let name = form.get("name").unwrap_or("").trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(ApiError::field("name", "invalid", viewer.text("views.name_rule")));
    }
    let query = form.get("query").unwrap_or("");
    system::save_view(&app.db, viewer.principal.user_id, &entity_name, name, query, app.now()).await?;
    Ok(redirect_with(&format!("/e/{entity_name}?{query}"), Some(&viewer.text("views.saved"))))
}

/// `POST /e/{entity}/views/{id}/delete`
pub async fn delete_view(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath((entity_name, id)): ApiPath<(String, Uuid)>,
    _: Posted,
) -> ApiResult<Response> {
    if !system::delete_view(&app.db, viewer.principal.user_id, id).await? {
        return Err(ApiError::not_found("no such view"));
    }
    Ok(redirect_with(&format!("/e/{entity_name}"), Some(&viewer.text("views.deleted"))))
}

/// `GET /e/{entity}/bin`: the recycle bin — records the user deleted or may restore.
pub async fn bin(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Restore)?.clone();
    let state = ListState { pairs };
    let fields = columns(&entity, &viewer, &ListState { pairs: Vec::new() });
    let params = ListParams {
        sort: Some("-deleted_at".into()),
        limit: Some(PAGE_SIZE),
        cursor: state.get("cursor").map(str::to_owned),
        count: true,
        deleted: true,
        ..ListParams::default()
    };
    let page = records::list(&app, &viewer.principal, &entity_name, &params).await?;
    let records = view::records_of(&page)?;
    let deleted_at: Vec<Cell> = records
        .iter()
        .map(|r| {
            let at = entity.column("deleted_at").expect("every entity has deleted_at");
            view::display(&catalog, at, r.get("deleted_at").unwrap_or(&Json::Null), &viewer, &Default::default())
        })
        .collect();
    let rows = view::rows(&app, &viewer, &entity_name, &fields, &records).await?;
    let merged = merged_into(&app, &viewer, &entity_name, &records).await?;
    let label = entity.def.label.get(viewer.locale).to_owned();
    let title = super::shell::text(viewer.locale, "bin.title", &[("entity", label.clone())]);
    let values = json!({
        "entity": entity_name,
        "entity_label": label,
        "columns": fields.iter().map(|f| json!({"label": f.label.get(viewer.locale)})).collect::<Vec<_>>(),
        "rows": rows,
        "deleted_at": deleted_at,
        "merged": merged,
        "total": page.total.unwrap_or(0),
        "next_href": page.next_cursor.map(|c| format!("?cursor={}", encode(&c))),
    });
    html("bin.html", viewer.page(&catalog, Some(&entity_name), &title, values))
}

/// Per row of the recycle bin, the record a merge put it there for (its id, and its title
/// if the viewer may see it), or null.
async fn merged_into(app: &App, viewer: &Viewer, entity_name: &str, records: &[Json]) -> ApiResult<Vec<Json>> {
    let ids: Vec<Uuid> = records.iter().filter_map(|r| r.get("id")?.as_str()?.parse().ok()).collect();
    let survivors = records::merge::merged_into(app, entity_name, &ids).await?;
    let wanted = [(entity_name.to_owned(), survivors.values().copied().collect())].into_iter().collect();
    let titles = view::titles(app, &viewer.principal, wanted).await?;
    Ok(ids
        .iter()
        .map(|id| match survivors.get(id) {
            Some(survivor) => json!({
                "title": titles.get(survivor).cloned().unwrap_or_else(|| viewer.text("common.no_access")),
                "id": survivor,
                "visible": titles.contains_key(survivor),
            }),
            None => Json::Null,
        })
        .collect())
}

/// `POST /e/{entity}/bin`: restores the selected records.
pub async fn restore(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
    form: Posted,
) -> ApiResult<Response> {
    let ids: Vec<Json> = form.all("ids").into_iter().map(Json::from).collect();
    let back = format!("/e/{entity_name}/bin");
    if ids.is_empty() {
        return Ok(redirect_with(&back, Some(&viewer.text("bulk.none_selected"))));
    }
    let results = records::bulk(&app, &viewer.principal, Source::Screen, &entity_name, &ids, BulkOp::Restore).await?;
    Ok(redirect_with(&back, Some(&summary(&viewer, &results))))
}
