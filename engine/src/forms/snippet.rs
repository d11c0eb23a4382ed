//! The HTML of a web form or a survey, to paste on a company's website: a plain form that
//! posts to this server, with a field for each question, a honeypot a person never sees, and
//! no script.

use crm_model::{Catalog, FieldType, WEB_FORM_ENTITY, WebFormDoc};
use serde_json::{Value as Json, json};

use super::HONEYPOT;
use crate::error::{ApiError, ApiResult};
use crate::screens::shell;
use crate::surveys::Survey;

/// The input a field is asked with.
fn input(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::LongText => "textarea",
        FieldType::Select => "select",
        FieldType::MultiSelect => "checkboxes",
        FieldType::Boolean => "checkbox",
        FieldType::Email => "email",
        FieldType::Phone => "tel",
        FieldType::Url => "url",
        FieldType::Integer | FieldType::Decimal => "number",
        FieldType::Date => "date",
        _ => "text",
    }
}

/// The form's HTML in a language, posting to `action`: the lead's fields, then the survey's
/// questions when it asks one.
pub fn snippet(
    catalog: &Catalog,
    form: &WebFormDoc,
    survey: Option<&Survey>,
    action: &str,
    locale: &str,
) -> ApiResult<String> {
    let lead = catalog.entity(WEB_FORM_ENTITY).ok_or_else(|| ApiError::not_found("no lead entity"))?;
    let fields: Vec<Json> = form
        .fields
        .iter()
        .filter_map(|asked| {
            let field = lead.field(asked.field.as_str())?;
            let label = asked.label.as_ref().unwrap_or(&field.label).get(locale).to_owned();
            let options: Vec<(String, String)> =
                field.options.iter().map(|o| (o.value.clone(), o.label.get(locale).to_owned())).collect();
            Some(json!({
                "name": field.name,
                "label": label,
                "input": input(field.field_type),
                "required": asked.required,
                "max_length": field.max_length,
                "step": (field.field_type == FieldType::Decimal).then_some("any"),
                "options": options,
            }))
        })
        .collect();
    let asked = Asked { name: form.name.as_str(), title: form.label.get(locale), intro: "", fields: &fields, survey };
    html(&asked, action, locale)
}

/// What a public form asks: a web form's fields, a survey's questions, or both.
pub struct Asked<'a> {
    /// The form's name, which its element's id carries.
    pub name: &'a str,
    pub title: &'a str,
    pub intro: &'a str,
    pub fields: &'a [Json],
    pub survey: Option<&'a Survey>,
}

/// The HTML of a form that asks `asked`, posting to `action`.
pub fn html(asked: &Asked<'_>, action: &str, locale: &str) -> ApiResult<String> {
    let questions: Vec<Json> = asked
        .survey
        .iter()
        .flat_map(|s| &s.questions)
        .map(|q| {
            json!({
                "name": q.input(),
                "label": q.text,
                "kind": q.kind.as_str(),
                "options": q.options,
                "required": q.required,
            })
        })
        .collect();
    // The address is written as it is, so the HTML pasted on a website reads plainly: it is
    // the configured public URL and a path of an identifier and a base64url key, with the
    // characters that end an attribute escaped all the same.
    let action = action.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let context = minijinja::context! {
        locale => locale,
        action => minijinja::Value::from_safe_string(action),
        name => asked.name,
        title => asked.title,
        intro => asked.intro,
        fields => minijinja::Value::from(minijinja::value::Serde(asked.fields)),
        questions => minijinja::Value::from(minijinja::value::Serde(&questions)),
        honeypot => HONEYPOT,
    };
    shell::render("web_form_snippet.html", context)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the web form's HTML: {e}")))
}
