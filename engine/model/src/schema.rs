//! The JSON Schemas of `metadata/schema/`, compiled once, that every metadata document must
//! satisfy before it is parsed.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value as Json;

use crate::meta::DocKind;

/// The schema files, embedded so the binary checks exactly what editors autocomplete with.
pub const FILES: [(DocKind, &str); 13] = [
    (DocKind::StageSet, include_str!("../../../metadata/schema/stage_set.schema.json")),
    (DocKind::Entity, include_str!("../../../metadata/schema/entity.schema.json")),
    (DocKind::Layout, include_str!("../../../metadata/schema/layout.schema.json")),
    (DocKind::ListView, include_str!("../../../metadata/schema/list_view.schema.json")),
    (DocKind::Related, include_str!("../../../metadata/schema/related.schema.json")),
    (DocKind::Role, include_str!("../../../metadata/schema/role.schema.json")),
    (DocKind::Script, include_str!("../../../metadata/schema/script.schema.json")),
    (DocKind::Report, include_str!("../../../metadata/schema/report.schema.json")),
    (DocKind::Dashboard, include_str!("../../../metadata/schema/dashboard.schema.json")),
    (DocKind::PrintTemplate, include_str!("../../../metadata/schema/print_template.schema.json")),
    (DocKind::WebForm, include_str!("../../../metadata/schema/web_form.schema.json")),
    (DocKind::Webhook, include_str!("../../../metadata/schema/webhook.schema.json")),
    (DocKind::Sync, include_str!("../../../metadata/schema/sync.schema.json")),
];

static VALIDATORS: LazyLock<HashMap<DocKind, jsonschema::Validator>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(kind, text)| {
            let schema: Json = serde_json::from_str(text).expect("embedded schema is JSON");
            let validator = jsonschema::validator_for(&schema).expect("embedded schema is valid");
            (*kind, validator)
        })
        .collect()
});

static PACKAGE_VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Json = serde_json::from_str(include_str!("../../../metadata/schema/package.schema.json"))
        .expect("embedded schema is JSON");
    jsonschema::validator_for(&schema).expect("embedded schema is valid")
});

/// A field on its own (as the field API takes it), checked by the entity schema's definition.
static FIELD_VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let mut schema = schema_json(DocKind::Entity);
    let defs = schema.get_mut("$defs").map(Json::take).expect("the entity schema has $defs");
    let field = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": "#/$defs/field",
    });
    jsonschema::validator_for(&field).expect("the field definition is valid")
});

/// The schema of a kind, as JSON (for the OpenAPI document and for editors).
pub fn schema_json(kind: DocKind) -> Json {
    let text = FILES.iter().find(|(k, _)| *k == kind).map(|(_, t)| *t).expect("every kind has a schema");
    serde_json::from_str(text).expect("embedded schema is JSON")
}

/// Checks a document against the schema of its kind; errors are `(JSON pointer, message)`.
/// Messages do not repeat the offending value, which may be long or hostile.
pub fn check(kind: DocKind, doc: &Json) -> Result<(), Vec<(String, String)>> {
    errors_of(&VALIDATORS[&kind], doc)
}

/// Checks a field sent on its own; errors are `(JSON pointer, message)` inside the field.
pub fn check_field(field: &Json) -> Result<(), Vec<(String, String)>> {
    errors_of(&FIELD_VALIDATOR, field)
}

/// Checks a package manifest (`package.json`).
pub fn check_package(manifest: &Json) -> Result<(), Vec<(String, String)>> {
    errors_of(&PACKAGE_VALIDATOR, manifest)
}

fn errors_of(validator: &jsonschema::Validator, doc: &Json) -> Result<(), Vec<(String, String)>> {
    let errors: Vec<(String, String)> =
        validator.iter_errors(doc).map(|e| (e.instance_path().as_str().to_owned(), e.masked().to_string())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles() {
        for kind in DocKind::ALL {
            let _ = &VALIDATORS[&kind];
        }
    }

    #[test]
    fn errors_name_the_path() {
        let doc = json!({"name": "x", "label": {"zh-CN": "甲", "en": "X"},
            "fields": [{"name": "Bad Name", "type": "text", "label": {"zh-CN": "乙", "en": "Y"}}]});
        let errors = check(DocKind::Entity, &doc).unwrap_err();
        assert!(errors.iter().any(|(path, _)| path == "/fields/0/name"), "{errors:?}");
    }
}
