//! Lead conversion (L-3): one or many leads become a customer, a contact and an opportunity
//! (each optional), owned by a chosen user, keeping the lead's campaign; the lead is marked
//! converted and points at what it became. Each lead converts in its own transaction, so one
//! refusal leaves the others done; the answer has a result per lead.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, BulkResult, ListParams, Outcome, Source, Unit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    pub ids: Vec<Json>,
    /// Who owns what is created (a manager, or a public pool account); the caller otherwise.
    pub owner: Option<Uuid>,
    /// Attach to this customer instead of creating one.
    pub customer: Option<Uuid>,
    #[serde(default = "yes")]
    pub create_contact: bool,
    #[serde(default = "yes")]
    pub create_opportunity: bool,
    pub opportunity_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// The lead's values worth carrying over, by their names on the new record.
fn carry(lead: &Map<String, Json>, pairs: &[(&str, &str)]) -> Map<String, Json> {
    pairs
        .iter()
        .filter_map(|(from, to)| lead.get(*from).filter(|v| !v.is_null()).map(|v| ((*to).to_owned(), v.clone())))
        .collect()
}

pub async fn convert(app: &App, principal: &Principal, conversion: &Conversion) -> ApiResult<Vec<BulkResult>> {
    if conversion.ids.is_empty() || conversion.ids.len() > 100 {
        return Err(ApiError::bad_request("invalid_body", "`ids` takes 1 to 100 leads"));
    }
    let mut results = Vec::with_capacity(conversion.ids.len());
    for id in &conversion.ids {
        let text = id.as_str().unwrap_or_default().to_owned();
        let outcome = match convert_one(app, principal, conversion, &text).await {
            Ok(()) => Outcome::Done(None),
            Err(ApiError::NotFound(_)) => Outcome::NotFound,
            Err(ApiError::Invalid(errors)) => Outcome::Invalid(errors),
            Err(ApiError::Forbidden { code, message }) => Outcome::Forbidden { code, message },
            Err(other) => return Err(other),
        };
        results.push(BulkResult { id: text, outcome });
    }
    Ok(results)
}

async fn convert_one(app: &App, principal: &Principal, conversion: &Conversion, id: &str) -> ApiResult<()> {
    let lead = serde_json::to_value(records::get(app, principal, "lead", id, None).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let Json::Object(lead) = lead else { return Err(ApiError::not_found("no lead")) };
    if lead.get("status").and_then(Json::as_str) == Some("converted") {
        return Err(ApiError::field("status", "converted", "this lead is already converted"));
    }
    let company = lead.get("company").and_then(Json::as_str).filter(|c| !c.trim().is_empty());
    let person = lead.get("name").and_then(Json::as_str).unwrap_or_default();
    let owner = conversion.owner.map(|o| Json::from(o.to_string()));
    let with_owner = |mut body: Map<String, Json>| {
        if let Some(owner) = &owner {
            body.insert("owner".into(), owner.clone());
        }
        Json::Object(body)
    };
    let customer_name = company.unwrap_or(person).trim().to_owned();
    if conversion.customer.is_none() {
        refuse_duplicate(app, principal, &customer_name).await?;
    }
    let mut unit = Unit::new(app, principal, Source::Conversion).await?;
    let customer = match conversion.customer {
        Some(existing) => existing,
        None => {
            let mut body =
                carry(&lead, &[("industry", "industry"), ("region", "region"), ("phone", "phone"), ("email", "email")]);
            body.insert("name".into(), Json::from(customer_name.as_str()));
            unit.create("customer", &with_owner(body)).await?
        }
    };
    let mut converted = json!({"status": "converted", "converted_customer": customer});
    let mut contact = None;
    if conversion.create_contact {
        let mut body = carry(
            &lead,
            &[
                ("name", "name"),
                ("title", "title"),
                ("mobile", "mobile"),
                ("phone", "office_phone"),
                ("email", "email"),
            ],
        );
        body.insert("customer".into(), Json::from(customer.to_string()));
        let created = unit.create("contact", &with_owner(body)).await?;
        converted["converted_contact"] = json!(created);
        contact = Some(created);
    }
    if conversion.create_opportunity {
        let name = conversion.opportunity_name.clone().unwrap_or_else(|| format!("{customer_name} 商机"));
        let mut body = carry(&lead, &[("campaign", "campaign")]);
        body.insert("name".into(), Json::from(name));
        body.insert("customer".into(), Json::from(customer.to_string()));
        body.insert("lead".into(), Json::from(id));
        if let Some(contact) = contact {
            body.insert("contact".into(), Json::from(contact.to_string()));
        }
        let created = unit.create("opportunity", &with_owner(body)).await?;
        converted["converted_opportunity"] = json!(created);
    }
    unit.update("lead", id, &converted, None).await?;
    unit.commit().await?;
    Ok(())
}

/// Refuses to create a customer whose name a live one already has: the caller attaches the
/// lead to that customer instead. Every customer counts, but only one the caller may read is
/// named by its id. Only an equal name refuses: likely duplicates under the customer's rules
/// are told on the form and refused only where a rule blocks, in the save pipeline.
async fn refuse_duplicate(app: &App, principal: &Principal, name: &str) -> ApiResult<()> {
    let filter = json!({"field": "name", "op": "eq", "value": name}).to_string();
    let params =
        ListParams { filter: Some(filter), limit: Some(1), fields: Some("name".into()), ..ListParams::default() };
    let everyone = records::list(app, &Principal::system(&app.catalog()), "customer", &params).await?;
    if everyone.record_count() == 0 {
        return Ok(());
    }
    let yours = serde_json::to_value(records::list(app, principal, "customer", &params).await?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let message = match yours["data"].get(0).and_then(|c| c["id"].as_str()) {
        Some(id) => format!("a customer named `{name}` exists ({id}); convert into it with `customer`"),
        None => format!("a customer named `{name}` exists and belongs to someone else; ask its owner or a manager"),
    };
    Err(ApiError::field("customer", "duplicate", message))
}
