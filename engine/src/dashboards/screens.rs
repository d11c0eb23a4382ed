//! The home page (工作台): the user's dashboard, its widgets drawn on the server in one pass
//! (a report as its inline chart or table, a short list of records, the reminders inbox), and
//! tabs for their other dashboards. Without a dashboard, the modules as tiles.

use axum::extract::State;
use axum::response::Response;
use crm_model::dashboard::{DashboardDoc, MAX_LIST_ROWS, Show, Widget};
use crm_model::{Action, FieldDef};
use futures_util::future::try_join_all;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiQuery;
use crate::records::{self, ListParams};
use crate::reports;
use crate::screens::{Viewer, html, open_reminders, view};

/// Rows a list widget shows when its dashboard does not say.
const LIST_ROWS: u32 = 6;

#[derive(Deserialize)]
pub struct HomeQuery {
    /// Another of the user's dashboards than their role's.
    board: Option<String>,
}

/// `GET /`
pub async fn home(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<HomeQuery>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let title = viewer.text("home.title");
    let dashboards = super::of(&catalog, &viewer.principal);
    let shown = match q.board.as_deref() {
        Some(name) => Some(
            *dashboards
                .iter()
                .find(|d| d.name.as_str() == name)
                .ok_or_else(|| ApiError::not_found(format!("no dashboard `{name}`")))?,
        ),
        None => dashboards.first().copied(),
    };
    let Some(doc) = shown else {
        return html("home.html", viewer.page(&catalog, None, &title, json!({"dashboard": null})));
    };
    let widgets = widgets(&app, &viewer, doc).await?;
    let tabs: Vec<Json> = dashboards
        .iter()
        .map(|d| json!({"name": d.name, "label": d.label.get(viewer.locale), "active": d.name == doc.name}))
        .collect();
    let dashboard = json!({"name": doc.name, "label": doc.label.get(viewer.locale), "widgets": widgets});
    html("home.html", viewer.page(&catalog, None, &title, json!({"dashboard": dashboard, "tabs": tabs})))
}

/// A dashboard's widgets as the viewer sees them, computed together; a widget over something
/// the viewer may not read is left out, as a related panel is.
pub async fn widgets(app: &App, viewer: &Viewer, doc: &DashboardDoc) -> ApiResult<Vec<Json>> {
    let drawn = try_join_all(doc.widgets.iter().map(|widget| draw(app, viewer, widget))).await?;
    Ok(drawn.into_iter().flatten().collect())
}

async fn draw(app: &App, viewer: &Viewer, widget: &Widget) -> ApiResult<Option<Json>> {
    let locale = viewer.locale;
    let drawn = match widget {
        Widget::Report { report, show, .. } => {
            let Ok(doc) = reports::shared(&app.catalog(), &viewer.principal, report.as_str()) else { return Ok(None) };
            let offset = viewer.offset.local_minus_utc() / 60;
            let result = reports::run(app, &viewer.principal, &doc, offset).await?;
            let href = format!("/reports/{report}");
            let title = doc.label.get(locale);
            match show {
                Show::Chart => json!({"kind": "chart", "title": title, "href": href,
                    "svg": reports::chart::draw(&result, locale)}),
                Show::Table => {
                    let (columns, rows) = reports::screens::table(&result, locale);
                    json!({"kind": "table", "title": title, "href": href, "columns": columns, "rows": rows})
                }
            }
        }
        Widget::List { label, entity, filter, period, columns, sort, limit, .. } => {
            let catalog = app.catalog();
            let Some(def) = catalog.entity(entity.as_str()) else { return Ok(None) };
            if !viewer.principal.access.allows(entity.as_str(), Action::Read) {
                return Ok(None);
            }
            let today = crate::screens::today(app, viewer);
            let period = period
                .as_ref()
                .and_then(|p| def.column(p.field.as_str()).map(|field| p.range.condition(field, today, viewer.offset)));
            let filter = match (filter.clone(), period) {
                (Some(a), Some(b)) => Some(json!({"and": [a, b]})),
                (a, b) => a.or(b),
            };
            let params = ListParams {
                filter: filter.map(|f| f.to_string()),
                sort: sort.clone(),
                limit: Some(limit.unwrap_or(LIST_ROWS).min(MAX_LIST_ROWS)),
                count: true,
                ..ListParams::default()
            };
            let page = records::list(app, &viewer.principal, entity.as_str(), &params).await?;
            let hidden = viewer.principal.hidden(entity.as_str());
            let names: Vec<&str> = if columns.is_empty() {
                def.list.columns.iter().take(4).map(|c| c.as_str()).collect()
            } else {
                columns.iter().map(|c| c.as_str()).collect()
            };
            let fields: Vec<&FieldDef> =
                names.into_iter().filter_map(|c| def.column(c)).filter(|f| !hidden.contains(&f.name)).collect();
            let records = view::records_of(&page)?;
            let rows = view::rows(app, viewer, entity.as_str(), &fields, &records).await?;
            json!({
                "kind": "list",
                "title": label.get(locale),
                "href": format!("/e/{entity}"),
                "columns": fields.iter().map(|f| f.label.get(locale)).collect::<Vec<_>>(),
                "rows": rows,
                "total": page.total.unwrap_or(0),
            })
        }
        Widget::Reminders { .. } => {
            let items = open_reminders(app, viewer).await?;
            json!({"kind": "reminders", "title": viewer.text("reminders.title"), "href": "/reminders", "items": items})
        }
    };
    let mut drawn = drawn;
    drawn["wide"] = json!(widget.wide());
    Ok(Some(drawn))
}
