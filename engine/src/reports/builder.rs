//! The report builder (D-2) for users whose role may build reports: pick a module, filter it
//! with the filter bar its list has, group it, measure it and pick a chart; the result shows
//! as the form changes (without JavaScript, on 预览), exports as a workbook, and saves as a
//! report of one's own, private or shared with roles. The form is a GET query, so a design
//! can be bookmarked, and everything it says becomes a report document checked like any
//! other: the builder offers choices, the report's compiler decides.

use axum::extract::State;
use axum::response::Response;
use crm_model::report::{Agg, Bucket, Chart, Order, ReportDoc};
use crm_model::{Action, Catalog, Entity, FieldDef, FieldType, Storage};
use serde_json::{Map, Value as Json, json};

use super::saved;
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiQuery;
use crate::screens::list::{Widget, filter_bar};
use crate::screens::{Posted, Viewer, html, redirect_with, unprocessable};

/// Most measures a design has.
const MEASURES: usize = 3;

const BUCKETS: [Bucket; 5] = [Bucket::Day, Bucket::Week, Bucket::Month, Bucket::Quarter, Bucket::Year];
const CHARTS: [Chart; 8] =
    [Chart::Bar, Chart::StackedBar, Chart::Line, Chart::Pie, Chart::Donut, Chart::Funnel, Chart::Number, Chart::Table];
const ORDERS: [Order; 3] = [Order::Keys, Order::LargestFirst, Order::SmallestFirst];

/// The builder's form, as its query or its post says it.
struct Draft {
    pairs: Vec<(String, String)>,
}

impl Draft {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim()).collect()
    }

    /// The pairs of the design itself: what the export link and the save form carry on.
    fn design(&self) -> impl Iterator<Item = &(String, String)> {
        self.pairs.iter().filter(|(k, v)| !v.is_empty() && !matches!(k.as_str(), "_csrf" | "label" | "roles"))
    }

    fn query(&self) -> String {
        let encode = crate::screens::encode;
        self.design().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
    }
}

/// `GET /reports/build`: the builder, with the result of the design so far. `?report=` opens
/// a saved report of one's own to change it.
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    may_build(&viewer)?;
    let mut draft = Draft { pairs };
    if draft.get("entity").is_none()
        && let Some(name) = draft.get("report").map(str::to_owned)
    {
        let found = saved::find(&app, &viewer.principal, &name).await?;
        if !found.editable_by(&viewer.principal) {
            return Err(ApiError::forbidden("only its owner changes a saved report"));
        }
        draft = Draft { pairs: pairs_of(&found.doc, &name) };
    }
    render(&app, &viewer, &draft, None).await
}

/// `POST /reports/build`: saves the design — a new report, or the one being changed — and
/// opens it; a design that cannot be saved shows again with what is wrong.
pub async fn save(State(app): State<AppState>, viewer: Viewer, form: Posted) -> ApiResult<Response> {
    may_build(&viewer)?;
    let draft = Draft { pairs: form.0 };
    let Some(label) = draft.get("label").map(str::to_owned) else {
        return render(&app, &viewer, &draft, Some(viewer.text("reports.builder_name_needed")))
            .await
            .map(unprocessable);
    };
    let Some((mut report, _)) = design(&app, &viewer, &draft).await? else {
        return render(&app, &viewer, &draft, Some(viewer.text("reports.builder_pick_module")))
            .await
            .map(unprocessable);
    };
    report["label"] = json!({"zh-CN": label, "en": label});
    let roles: Vec<String> = draft.all("roles").into_iter().map(str::to_owned).collect();
    match saved::save(&app, &viewer.principal, draft.get("report"), &report, &roles).await {
        Ok(name) => Ok(redirect_with(&format!("/reports/{name}"), Some(&viewer.text("reports.saved")))),
        Err(ApiError::BadRequest { .. } | ApiError::InvalidMetadata(_) | ApiError::Invalid(_)) => {
            render(&app, &viewer, &draft, Some(viewer.text("reports.builder_invalid"))).await.map(unprocessable)
        }
        Err(e) => Err(e),
    }
}

/// `GET /reports/build/export.xlsx`: the design's result as a workbook.
pub async fn export(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    may_build(&viewer)?;
    let draft = Draft { pairs };
    let (report, _) =
        design(&app, &viewer, &draft).await?.ok_or_else(|| ApiError::bad_request("invalid_query", "no `entity`"))?;
    let doc = super::ad_hoc(&report)?;
    let result = super::run(&app, &viewer.principal, &doc, viewer.offset.local_minus_utc() / 60).await?;
    super::xlsx::download(&result, viewer.locale)
}

fn may_build(viewer: &Viewer) -> ApiResult<()> {
    if viewer.principal.builds_reports() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this needs a role that may build reports"))
    }
}

/// The report a design describes, with the filter bar of its module; none before a module
/// is chosen.
async fn design(app: &App, viewer: &Viewer, draft: &Draft) -> ApiResult<Option<(Json, Vec<Widget>)>> {
    let catalog = app.catalog();
    let Some(name) = draft.get("entity") else { return Ok(None) };
    let entity = viewer.principal.entity(&catalog, name, Action::Read)?;
    let (widgets, filter) = filter_bar(app, viewer, entity, draft.pairs.clone()).await?;
    let mut report = Map::new();
    report.insert(
        "label".into(),
        json!({"zh-CN": viewer.text("reports.builder_untitled"), "en": viewer.text("reports.builder_untitled")}),
    );
    report.insert("entity".into(), json!(name));
    if let Some(filter) = filter {
        let tree: Json = serde_json::from_str(&filter)
            .map_err(|_| ApiError::bad_request("invalid_query", "`filter` is not a filter tree"))?;
        report.insert("filter".into(), tree);
    }
    if let (Some(field), Some(range)) = (draft.get("period_field"), draft.get("period")) {
        report.insert("period".into(), json!({"field": field, "range": range}));
    }
    let groups: Vec<Json> = [("group1", "bucket1"), ("group2", "bucket2")]
        .into_iter()
        .filter_map(|(group, bucket)| group_json(&catalog, entity, draft.get(group)?, draft.get(bucket)))
        .collect();
    if !groups.is_empty() {
        report.insert("group_by".into(), json!(groups));
    }
    let mut measures: Vec<Json> = draft.all("measure").into_iter().take(MEASURES).map(measure_json).collect();
    if measures.is_empty() {
        measures.push(json!({"agg": "count"}));
    }
    report.insert("measures".into(), json!(measures));
    if let Some(order) = draft.get("order") {
        report.insert("order".into(), json!(order));
    }
    if let Some(limit) = draft.get("limit").and_then(|l| l.parse::<u32>().ok()) {
        report.insert("limit".into(), json!(limit));
    }
    report.insert("chart".into(), json!(draft.get("chart").unwrap_or("bar")));
    Ok(Some((Json::Object(report), widgets)))
}

/// A group as a report writes it: `field`, or `lookup.field` for a field of the record a
/// lookup points at; a date falls into months unless another bucket is chosen.
fn group_json(catalog: &Catalog, entity: &Entity, value: &str, bucket: Option<&str>) -> Option<Json> {
    let (through, name) = match value.split_once('.') {
        Some((lookup, name)) => (Some(lookup), name),
        None => (None, value),
    };
    let owner = match through {
        Some(lookup) => catalog.entity(entity.field(lookup)?.reference_target()?)?,
        None => entity,
    };
    let field = owner.field(name)?;
    let mut group = json!({"field": name});
    if let Some(lookup) = through {
        group["through"] = json!(lookup);
    }
    if matches!(field.storage(), Storage::Date | Storage::Datetime) {
        group["bucket"] = json!(bucket.unwrap_or("month"));
    }
    Some(group)
}

/// A measure as the form names it: `count`, or `sum:amount`.
fn measure_json(value: &str) -> Json {
    match value.split_once(':') {
        Some((agg, field)) => json!({"agg": agg, "field": field}),
        None => json!({"agg": value}),
    }
}

/// The form of a saved report, to change it.
fn pairs_of(doc: &ReportDoc, name: &str) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("report".to_owned(), name.to_owned()),
        ("entity".to_owned(), doc.entity.to_string()),
        ("label".to_owned(), doc.label.get("zh-CN").to_owned()),
    ];
    if let Some(filter) = &doc.filter {
        pairs.push(("filter".into(), filter.to_string()));
    }
    if let Some(period) = &doc.period {
        pairs.push(("period_field".into(), period.field.to_string()));
        pairs.push(("period".into(), name_of(&period.range)));
    }
    for (i, group) in doc.group_by.iter().enumerate() {
        let value = match &group.through {
            Some(lookup) => format!("{lookup}.{}", group.field),
            None => group.field.to_string(),
        };
        pairs.push((format!("group{}", i + 1), value));
        if let Some(bucket) = group.bucket {
            pairs.push((format!("bucket{}", i + 1), name_of(&bucket)));
        }
    }
    for measure in &doc.measures {
        let value = match &measure.field {
            Some(field) => format!("{}:{field}", name_of(&measure.agg)),
            None => name_of(&measure.agg),
        };
        pairs.push(("measure".into(), value));
    }
    pairs.push(("order".into(), name_of(&doc.order)));
    if let Some(limit) = doc.limit {
        pairs.push(("limit".into(), limit.to_string()));
    }
    pairs.push(("chart".into(), name_of(&doc.chart)));
    pairs.extend(doc.roles.iter().map(|r| ("roles".to_owned(), r.to_string())));
    pairs
}

/// The name a report document gives a value of one of its enums (`month`, `largest_first`).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The builder page: the form with its choices, and the result of the design so far.
async fn render(app: &App, viewer: &Viewer, draft: &Draft, error: Option<String>) -> ApiResult<Response> {
    let catalog = app.catalog();
    let locale = viewer.locale;
    let entities: Vec<Json> = catalog
        .entities()
        .filter(|e| viewer.principal.sees(e.name().as_str()))
        .map(|e| json!({"name": e.name(), "label": e.def.label.get(locale)}))
        .collect();
    let designed = design(app, viewer, draft).await?;
    let mut preview = json!(null);
    let mut problem = error;
    let mut choices = json!({});
    if let (Some((report, _)), Some(entity)) = (&designed, draft.get("entity").and_then(|n| catalog.entity(n))) {
        choices = choices_of(&catalog, viewer, entity);
        let offset = viewer.offset.local_minus_utc() / 60;
        let run = match super::ad_hoc(report) {
            Ok(doc) => super::run(app, &viewer.principal, &doc, offset).await,
            Err(e) => Err(e),
        };
        match run {
            Ok(result) => {
                let (columns, rows) = super::screens::table(&result, locale);
                preview = json!({"chart": super::chart::draw(&result, locale), "columns": columns, "rows": rows});
            }
            Err(ApiError::BadRequest { .. } | ApiError::InvalidMetadata(_)) => {
                problem.get_or_insert_with(|| viewer.text("reports.builder_invalid"));
            }
            Err(e) => return Err(e),
        }
    }
    let roles: Vec<Json> = catalog
        .docs()
        .roles
        .values()
        .filter(|r| !r.admin)
        .map(|r| {
            let chosen = draft.all("roles").contains(&r.name.as_str());
            json!({"name": r.name, "label": r.label.get(locale), "chosen": chosen})
        })
        .collect();
    let label = |prefix: &str, name: String| {
        let text = viewer.text(&format!("{prefix}.{name}"));
        json!([name, text])
    };
    let query = draft.query();
    let values = json!({
        "entities": entities,
        "choices": choices,
        "widgets": designed.as_ref().map(|(_, w)| w),
        "draft": {
            "entity": draft.get("entity"),
            "report": draft.get("report"),
            "label": draft.get("label"),
            "filter": draft.get("filter"),
            "group1": draft.get("group1"), "bucket1": draft.get("bucket1"),
            "group2": draft.get("group2"), "bucket2": draft.get("bucket2"),
            "measures": (0..MEASURES).map(|i| draft.all("measure").get(i).copied()).collect::<Vec<_>>(),
            "period_field": draft.get("period_field"), "period": draft.get("period"),
            "order": draft.get("order"), "limit": draft.get("limit"),
            "chart": draft.get("chart").unwrap_or("bar"),
        },
        "buckets": BUCKETS.iter().map(|b| label("report.bucket", name_of(b))).collect::<Vec<_>>(),
        "charts": CHARTS.iter().map(|c| label("report.chart", name_of(c))).collect::<Vec<_>>(),
        "orders": ORDERS.iter().map(|o| label("report.order", name_of(o))).collect::<Vec<_>>(),
        "periods": crm_model::period::Period::ALL.iter().map(|p| label("report.period", name_of(p))).collect::<Vec<_>>(),
        "roles": roles,
        "preview": preview,
        "problem": problem,
        "design": draft.design().collect::<Vec<_>>(),
        "filtered": draft.pairs.iter().any(|(k, v)| k.starts_with("f_") && !v.is_empty()),
        "export_href": format!("/reports/build/export.xlsx?{query}"),
    });
    let title = viewer.text(if draft.get("report").is_some() { "reports.builder_edit" } else { "reports.builder" });
    html("report_builder.html", viewer.page(&catalog, Some("reports"), &title, values))
}

/// What a module offers the builder: the fields to group by (its own, and through each
/// lookup or user the fields of the record it points at that make good groups — an owner's
/// department, say), the measures, and
/// the dates a period can be on; none of a field hidden from the viewer.
fn choices_of(catalog: &Catalog, viewer: &Viewer, entity: &Entity) -> Json {
    let locale = viewer.locale;
    let principal = &viewer.principal;
    let visible = |e: &'_ Entity| {
        let hidden = principal.hidden(e.name().as_str()).clone();
        e.live_fields()
            .filter(move |f| !hidden.contains(&f.name) && f.name.as_str() != "id")
            .cloned()
            .collect::<Vec<_>>()
    };
    let own = visible(entity);
    let mut groups: Vec<Json> =
        own.iter().filter(|f| groupable(f, true)).map(|f| json!([f.name, f.label.get(locale)])).collect();
    for lookup in own.iter().filter(|f| matches!(f.field_type, FieldType::Lookup | FieldType::User)) {
        let Some(target) = lookup.reference_target().and_then(|t| catalog.entity(t)) else { continue };
        if !principal.sees(target.name().as_str()) {
            continue;
        }
        for field in visible(target).iter().filter(|f| groupable(f, false)) {
            let label = format!("{} › {}", lookup.label.get(locale), field.label.get(locale));
            groups.push(json!([format!("{}.{}", lookup.name, field.name), label]));
        }
    }
    let staged = own.iter().any(|f| f.field_type == FieldType::Stage);
    let mut measures = vec![json!(["count", super::measure_label(Agg::Count, None)[locale]])];
    for field in own.iter().filter(|f| matches!(f.storage(), Storage::Integer | Storage::Fixed(_))) {
        let mut aggs = vec![Agg::Sum, Agg::Avg, Agg::Min, Agg::Max];
        if staged && field.field_type == FieldType::Money {
            aggs.push(Agg::Weighted);
        }
        for agg in aggs {
            measures.push(json!([
                format!("{}:{}", name_of(&agg), field.name),
                super::measure_label(agg, Some(field))[locale]
            ]));
        }
    }
    let dates: Vec<Json> = own
        .iter()
        .filter(|f| matches!(f.storage(), Storage::Date | Storage::Datetime))
        .map(|f| json!([f.name, f.label.get(locale)]))
        .collect();
    json!({"groups": groups, "measures": measures, "dates": dates})
}

/// Whether a field makes groups a reader can use: choices, stages, people, records, yes/no,
/// regions and (of the report's own entity) dates and short texts.
fn groupable(field: &FieldDef, own: bool) -> bool {
    match field.field_type {
        FieldType::Select
        | FieldType::Stage
        | FieldType::User
        | FieldType::Lookup
        | FieldType::Boolean
        | FieldType::Region => true,
        FieldType::Date | FieldType::Datetime | FieldType::Text => own,
        _ => false,
    }
}
