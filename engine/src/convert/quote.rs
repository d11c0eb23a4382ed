//! A quote becomes an order (SA-3 → O-1). The order takes every value of the quote it has a
//! field for — by the same name, type and target, one the caller may write: the name,
//! customer, contact, opportunity, remarks, and whatever an administrator added to both —
//! and points at the quote; each quote line becomes an order line the same way (product,
//! quantity, unit, price, discount, amount). It is one unit of the save pipeline, as the
//! caller: they need to read the quote and all its lines and to create orders and order
//! lines; rules, formulas and the order's total run as for records entered by hand, and a
//! refusal writes nothing. A quote becomes one order: while that order lives, converting the
//! quote again is refused.

use crm_model::{Action, Catalog, Entity, Value};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::{self, ListParams, MAX_LIMIT, RecordOut, Source, Unit};

pub const QUOTE: &str = "quote";
const QUOTE_LINE: &str = "quote_line";
pub const ORDER: &str = "order";
const ORDER_LINE: &str = "order_line";
/// The order's lookup of the quote it came from.
const ORDER_QUOTE: &str = "quote";
/// The lines' lookups of their quote and their order.
const LINE_QUOTE: &str = "quote";
const LINE_ORDER: &str = "order";

/// The code of the refusal to convert a quote a second time.
pub const ALREADY_CONVERTED: &str = "already_converted";

/// Whether the caller's roles let them turn quotes into orders.
pub fn allowed(principal: &Principal) -> bool {
    [(QUOTE, Action::Read), (QUOTE_LINE, Action::Read), (ORDER, Action::Create), (ORDER_LINE, Action::Create)]
        .into_iter()
        .all(|(entity, action)| principal.access.allows(entity, action))
}

/// Turns the quote `id` into an order with its lines; the order, as the caller sees it.
pub async fn to_order(app: &App, principal: &Principal, id: &str) -> ApiResult<RecordOut> {
    let catalog = app.catalog();
    let order = principal.entity(&catalog, ORDER, Action::Create)?.clone();
    let order_line = principal.entity(&catalog, ORDER_LINE, Action::Create)?.clone();
    let quote_entity = principal.entity(&catalog, QUOTE, Action::Read)?.clone();
    let quote_line = principal.entity(&catalog, QUOTE_LINE, Action::Read)?.clone();
    let read = records::get(app, principal, QUOTE, id, None).await?;
    let (quote_id, version) = (read.id(), read.version());
    let quote = object(&read)?;
    if let Some(existing) = order_of(app, quote_id).await? {
        return Err(already_converted(app, principal, existing).await);
    }
    let lines = lines_of(app, principal, quote_id).await?;

    let mut unit = Unit::new(app, principal, Source::Conversion).await?;
    // Two conversions of one quote at once (a double click): the quote is held as read,
    // which locks it, and the second finds the first's order when its turn comes.
    unit.hold(&quote_entity, quote_id, version, "the quote changed while it was being converted; try again".into());
    unit.refuse_if_taken(&order, ORDER_QUOTE, Value::Uuid(quote_id), already(None));
    let owner = owner_for(principal, &quote);
    let mut body = shared(&catalog, &quote_entity, &order, principal, &quote);
    body.insert(ORDER_QUOTE.into(), json!(quote_id));
    body.extend(owner.clone());
    let order_id = unit.create(ORDER, &Json::Object(body)).await?;
    for (i, line) in lines.iter().enumerate() {
        let mut body = shared(&catalog, &quote_line, &order_line, principal, line);
        body.remove(LINE_QUOTE);
        body.insert(LINE_ORDER.into(), json!(order_id));
        body.extend(owner.clone());
        unit.create(ORDER_LINE, &Json::Object(body)).await.map_err(|e| of_line(e, i))?;
    }
    let committed = unit.commit().await?;
    // As stored: its total is the lines' sum, which the commit computed after the writes.
    match records::get(app, principal, ORDER, &order_id.to_string(), None).await {
        Err(ApiError::NotFound(_)) => committed.out(principal, order_id),
        read => read,
    }
}

/// The live order a quote became, whoever may see it.
pub async fn order_of(app: &App, quote_id: Uuid) -> ApiResult<Option<Uuid>> {
    let filter = json!({"field": ORDER_QUOTE, "op": "eq", "value": quote_id}).to_string();
    let params =
        ListParams { filter: Some(filter), limit: Some(1), fields: Some("id".into()), ..ListParams::default() };
    let page = records::list(app, &Principal::system(&app.catalog()), ORDER, &params).await?;
    Ok(page.records().first().map(crm_store::Record::id))
}

fn object(record: &RecordOut) -> ApiResult<Map<String, Json>> {
    match serde_json::to_value(record).map_err(|e| ApiError::Internal(e.into()))? {
        Json::Object(map) => Ok(map),
        _ => Err(ApiError::Internal(anyhow::anyhow!("a record is a JSON object"))),
    }
}

/// The quote's lines, oldest first, as the caller reads them: all of them, or the conversion
/// is refused — an order without the lines the caller may not see would be a wrong order.
async fn lines_of(app: &App, principal: &Principal, quote_id: Uuid) -> ApiResult<Vec<Map<String, Json>>> {
    let filter = json!({"field": LINE_QUOTE, "op": "eq", "value": quote_id}).to_string();
    let mut params = ListParams {
        filter: Some(filter.clone()),
        sort: Some("created_at".into()),
        limit: Some(MAX_LIMIT),
        ..ListParams::default()
    };
    let mut lines = Vec::new();
    loop {
        let page = records::list(app, principal, QUOTE_LINE, &params).await?;
        params.cursor = page.next_cursor.clone();
        let page = serde_json::to_value(&page).map_err(|e| ApiError::Internal(e.into()))?;
        let data = page.get("data").and_then(Json::as_array).into_iter().flatten();
        lines.extend(data.filter_map(|line| line.as_object().cloned()));
        if params.cursor.is_none() {
            break;
        }
    }
    let counted = ListParams { filter: Some(filter), limit: Some(1), count: true, ..ListParams::default() };
    let all = records::list(app, &Principal::system(&app.catalog()), QUOTE_LINE, &counted).await?.total;
    if all.and_then(|n| usize::try_from(n).ok()) != Some(lines.len()) {
        return Err(ApiError::forbidden(
            "some lines of this quote are not yours to read; its owner or a manager may convert it",
        ));
    }
    Ok(lines)
}

/// The owner of the order and its lines: the quote's owner when the caller may give records
/// of both to others (a manager converting a rep's quote), so the rep keeps what they sold;
/// the caller otherwise.
fn owner_for(principal: &Principal, quote: &Map<String, Json>) -> Option<(String, Json)> {
    let may_assign = [ORDER, ORDER_LINE].into_iter().all(|entity| principal.access.allows(entity, Action::Assign));
    quote.get("owner").filter(|_| may_assign).map(|owner| ("owner".to_owned(), owner.clone()))
}

/// The values of a record of `from`, as the caller read it, that a new record of `to` takes:
/// those of the fields `to` has by the same name, type and target that the caller may write,
/// where the value fits (the options of a select may differ). The engine's own fields (the
/// number, the totals) are left to it.
fn shared(
    catalog: &Catalog,
    from: &Entity,
    to: &Entity,
    principal: &Principal,
    record: &Map<String, Json>,
) -> Map<String, Json> {
    let name = to.name().as_str();
    let (hidden, read_only) = (principal.hidden(name), principal.read_only(name));
    to.live_fields()
        .filter(|f| !f.kept_by_engine() && !hidden.contains(&f.name) && !read_only.contains(&f.name))
        .filter_map(|field| {
            let source = from.field(field.name.as_str())?;
            if source.field_type != field.field_type || source.reference_target() != field.reference_target() {
                return None;
            }
            let value = record.get(field.name.as_str()).filter(|v| !v.is_null())?;
            let stages = records::checks::stages_for_value(catalog, field, value);
            crm_model::value::parse(field, value, stages).ok()?;
            Some((field.name.to_string(), value.clone()))
        })
        .collect()
}

/// A line's refusal, its fields named `lines/{i}/{field}`.
fn of_line(error: ApiError, i: usize) -> ApiError {
    match error {
        ApiError::Invalid(errors) => ApiError::Invalid(
            errors.into_iter().map(|e| FieldError { field: format!("lines/{i}/{}", e.field), ..e }).collect(),
        ),
        other => other,
    }
}

/// The refusal of a second conversion, naming the order when the caller may see it.
async fn already_converted(app: &App, principal: &Principal, order: Uuid) -> ApiError {
    let seen = records::get(app, principal, ORDER, &order.to_string(), Some("code")).await.ok();
    let code = seen.as_ref().and_then(|o| object(o).ok()).and_then(|o| o.get("code")?.as_str().map(str::to_owned));
    already(code.map(|code| (code, order)))
}

fn already(order: Option<(String, Uuid)>) -> ApiError {
    let message = match order {
        Some((code, id)) => format!("this quote already became order {code} ({id}); 该报价已生成订单 {code}"),
        None => "this quote already became an order; 该报价已生成订单".to_owned(),
    };
    ApiError::AlreadyDone { code: ALREADY_CONVERTED, message }
}
