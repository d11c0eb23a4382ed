//! Printable pages (SA-3): print templates are metadata (MiniJinja source per entity); a record
//! is printed by reading it, and its lines, the way the record screen does — within the
//! caller's scope, without the fields hidden from them — and rendering the chosen template in
//! an environment of its own: every value HTML-escaped, no other template reachable, and a
//! fuel limit that stops a runaway template.

pub mod labels;
mod rmb;
pub mod screens;

use crm_model::changes::ChangeError;
use crm_model::plan::Plan;
use crm_model::{Catalog, Entity, PrintTemplateDoc};
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, ListParams};
use crate::screens::Viewer;
use crate::screens::view::{self, Titles};

pub use rmb::rmb_upper;

/// The related panel whose records are a printed record's lines (a quote's, an order's).
pub const LINES_PANEL: &str = "lines";

/// The most lines a printed record shows (the largest page the record services read).
const MOST_LINES: u32 = 500;

/// Fewer instructions than a screen gets: a print page is one record and its lines.
const PRINT_FUEL: u64 = 5_000_000;

/// What the data a template receives looks like, for the studio's editor.
pub const DATA_SCHEMA: &str = include_str!("../../../metadata/schema/print_data.schema.json");

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_fuel(Some(PRINT_FUEL));
    // A field hidden from the person printing is not in the data: the template goes on
    // without it instead of failing.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("rmb_upper", rmb_upper_filter);
    env
}

/// `{{ amount|rmb_upper }}`: a money value (the API's text, `"12345.67"`, or a whole number)
/// in Chinese capital numerals; empty for no value. A float is refused: money is exact.
fn rmb_upper_filter(amount: Value) -> Result<String, Error> {
    if amount.is_undefined() || amount.is_none() {
        return Ok(String::new());
    }
    let invalid = || Error::new(ErrorKind::InvalidOperation, "rmb_upper takes an amount like \"1234.56\"");
    let cents = match amount.as_str() {
        Some(text) => crm_model::value::parse_fixed(text.trim(), 2).map_err(|_| invalid())?,
        None => i64::try_from(amount).ok().and_then(|yuan| yuan.checked_mul(100)).ok_or_else(invalid)?,
    };
    Ok(rmb_upper(cents))
}

/// Why a template's source does not compile, with its line; `None` when it compiles.
pub fn compile_error(name: &str, source: &str) -> Option<String> {
    let env = environment();
    env.template_from_named_str(name, source).err().map(|e| located(&e))
}

/// An error as `line N: what`, the way rules' errors read.
fn located(error: &Error) -> String {
    let what = error.detail().map_or_else(|| error.kind().to_string(), |detail| format!("{}: {detail}", error.kind()));
    match error.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    }
}

/// Why a print page could not be rendered.
#[derive(Debug)]
pub enum RenderError {
    /// The template ran out of fuel (an endless loop, say).
    Runaway,
    /// Any other error of the template, as `line N: what`.
    Failed(String),
}

/// Renders a template's source against a record's print data.
pub fn render(name: &str, source: &str, data: &Json) -> Result<String, RenderError> {
    let env = environment();
    let outcome =
        env.template_from_named_str(name, source).and_then(|t| t.render(Value::from(minijinja::value::Serde(data))));
    outcome.map_err(|e| match e.kind() {
        ErrorKind::OutOfFuel => RenderError::Runaway,
        _ => RenderError::Failed(located(&e)),
    })
}

/// The template to print a record of `entity` with: the one named, else the entity's default,
/// else its only one.
pub fn template<'c>(catalog: &'c Catalog, entity: &str, name: Option<&str>) -> ApiResult<&'c PrintTemplateDoc> {
    let templates = catalog.print_templates(entity);
    let chosen = match name.filter(|n| !n.is_empty()) {
        Some(name) => templates.into_iter().find(|t| t.name.as_str() == name),
        None => templates.into_iter().next(),
    };
    chosen.ok_or_else(|| ApiError::not_found(format!("no print template for `{entity}`")))
}

/// Removes a print template; its history keeps it, so a rollback brings it back.
pub async fn remove_template(app: &App, by: Option<Uuid>, name: &str) -> ApiResult<Plan> {
    crate::metadata::apply_docs(app, by, |docs| {
        let mut next = docs.clone();
        next.print_templates
            .remove(name)
            .ok_or_else(|| ChangeError::NotFound(format!("no print template `{name}`")))?;
        Ok(next)
    })
    .await
}

/// The data a template receives (`metadata/schema/print_data.schema.json`): the record and the
/// lines as the viewer may read them, each field with its labels, value and displayed text.
pub async fn data(app: &App, viewer: &Viewer, entity: &Entity, id: &str) -> ApiResult<Json> {
    let catalog = app.catalog();
    let name = entity.name().as_str();
    let principal = &viewer.principal;
    let record = serde_json::to_value(records::get(app, principal, name, id, None).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (lines, line_entity) =
        match entity.panel(LINES_PANEL).and_then(|p| Some((p, catalog.entity(p.source.as_str())?))) {
            Some((panel, source)) if principal.sees(panel.source.as_str()) => {
                let params = ListParams { limit: Some(MOST_LINES), ..ListParams::default() };
                match records::related(app, principal, name, id, LINES_PANEL, &params).await {
                    Ok(page) => (view::records_of(&page)?, Some((panel, source))),
                    // Lines whose lookup the viewer may not see are not there for them.
                    Err(ApiError::NotFound(_)) => (Vec::new(), None),
                    Err(e) => return Err(e),
                }
            }
            _ => (Vec::new(), None),
        };

    let mut wanted = view::references(&entity.columns().iter().collect::<Vec<_>>(), &[&record]);
    if let Some((_, source)) = line_entity {
        let more = view::references(&source.columns().iter().collect::<Vec<_>>(), &lines.iter().collect::<Vec<_>>());
        for (target, ids) in more {
            wanted.entry(target).or_default().extend(ids);
        }
    }
    let titles = view::titles(app, principal, wanted).await?;

    let fields: Vec<Json> = entity
        .layout
        .view
        .sections
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter(|item| record.get(item.field.as_str()).is_some())
        .filter_map(|item| entity.column(item.field.as_str()))
        .map(|f| {
            let mut shown = field_json(&catalog, f, &record, viewer, &titles);
            shown["name"] = json!(f.name);
            shown
        })
        .collect();
    let line_fields: Vec<Json> = line_entity
        .map(|(panel, source)| {
            let hidden = principal.hidden(source.name().as_str());
            panel
                .columns
                .iter()
                .filter(|c| !hidden.contains(*c))
                .filter_map(|c| source.column(c.as_str()))
                .map(|f| json!({"name": f.name, "label": f.label}))
                .collect()
        })
        .unwrap_or_default();
    let lines: Vec<Json> = match line_entity {
        Some((_, source)) => lines.iter().map(|line| values_json(&catalog, source, line, viewer, &titles)).collect(),
        None => Vec::new(),
    };
    let title = entity.title_field().and_then(|f| record.get(f.name.as_str())).and_then(Json::as_str).unwrap_or(id);
    Ok(json!({
        "locale": viewer.locale,
        "company": *crate::brand::brand(app).await?,
        "entity": {"name": name, "label": entity.def.label},
        "id": id,
        "title": title,
        "record": values_json(&catalog, entity, &record, viewer, &titles),
        "fields": fields,
        "lines": lines,
        "line_fields": line_fields,
        "printed_at": app.now().with_timezone(&viewer.offset).format("%Y-%m-%d %H:%M").to_string(),
    }))
}

/// Every field a record read gave, by name: only those the viewer may see are there.
fn values_json(catalog: &Catalog, entity: &Entity, record: &Json, viewer: &Viewer, titles: &Titles) -> Json {
    let values: Map<String, Json> = record
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, _)| entity.column(name))
        .map(|f| (f.name.to_string(), field_json(catalog, f, record, viewer, titles)))
        .collect();
    Json::Object(values)
}

fn field_json(catalog: &Catalog, field: &crm_model::FieldDef, record: &Json, viewer: &Viewer, titles: &Titles) -> Json {
    let value = record.get(field.name.as_str()).cloned().unwrap_or(Json::Null);
    let cell = view::display(catalog, field, &value, viewer, titles);
    json!({"label": field.label, "value": value, "text": cell.text, "kind": cell.kind})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_takes_the_exact_amount() {
        let out =
            render("t", "{{ a|rmb_upper }}|{{ b|rmb_upper }}|{{ c|rmb_upper }}", &json!({"a": "12345.67", "b": 100}))
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(out, "壹万贰仟叁佰肆拾伍元陆角柒分|壹佰元整|");
        assert!(matches!(render("t", "{{ 1.5|rmb_upper }}", &json!({})), Err(RenderError::Failed(_))));
        assert!(matches!(render("t", "{{ '1.234'|rmb_upper }}", &json!({})), Err(RenderError::Failed(_))));
    }

    #[test]
    fn values_are_escaped_and_runaways_stop() {
        let out = render("t", "{{ v }}", &json!({"v": "<script>alert(1)</script>"})).unwrap_or_default();
        assert_eq!(out, "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;");
        let endless = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(matches!(render("t", endless, &json!({})), Err(RenderError::Runaway)));
    }

    #[test]
    fn compile_errors_name_their_line() {
        assert_eq!(compile_error("t", "ok {{ a }}"), None);
        let error = compile_error("t", "first\nsecond {% if %}\n").unwrap_or_default();
        assert!(error.starts_with("line 2: "), "{error}");
    }
}
