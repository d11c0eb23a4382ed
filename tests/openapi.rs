//! The OpenAPI document validates against the OpenAPI 3.1 schema, every schema in it is a
//! valid JSON Schema, and it follows the live catalog.

mod support;

use serde_json::{Value, json};
use support::TestApp;

fn validate(document: &Value) {
    let schema: Value = serde_json::from_str(include_str!("fixtures/openapi-3.1.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OpenAPI schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "invalid OpenAPI document:\n{}", errors.join("\n"));
    // The OpenAPI schema only checks that schema objects are objects: compile each one (with
    // the document around it, for its references) to check it is a real JSON Schema.
    for name in document["components"]["schemas"].as_object().unwrap().keys() {
        let wrapper = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": document["components"],
            "$ref": format!("#/components/schemas/{name}"),
        });
        jsonschema::validator_for(&wrapper).unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_and_follows_the_catalog() {
    let t = TestApp::sqlite().await;
    let before = t.get("/api/openapi.json").await.expect(200);
    validate(&before);
    assert_eq!(before["openapi"], "3.1.0");
    for path in
        ["/api/v1/records/customer", "/api/v1/records/order/{id}", "/api/v1/records/customer/{id}/related/contacts"]
    {
        assert!(before["paths"].get(path).is_some(), "{path} is documented");
    }
    assert_eq!(
        before["components"]["schemas"]["customer"]["properties"]["industry"]["enum"].as_array().unwrap().len(),
        9
    );
    let types: Vec<&str> = before["components"]["schemas"]["FieldType"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["const"].as_str().unwrap())
        .collect();
    assert_eq!(types, crm_model::types::TYPES.iter().map(|spec| spec.name).collect::<Vec<_>>());

    t.post(
        "/api/v1/meta/entities/customer/fields",
        json!({"name": "loyalty", "type": "select", "label": {"zh-CN": "忠诚度", "en": "Loyalty"},
               "options": [{"value": "high", "label": {"zh-CN": "高", "en": "High"}}]}),
    )
    .await
    .expect(201);
    let after = t.get("/api/openapi.json").await.expect(200);
    validate(&after);
    assert_eq!(after["components"]["schemas"]["customer"]["properties"]["loyalty"]["enum"], json!(["high", null]));
    assert!(after["components"]["schemas"]["customer_input"]["properties"].get("loyalty").is_some());

    let anonymous = t.call(axum::http::Method::GET, "/api/openapi.json", None, Some("")).await;
    assert_eq!(anonymous.status.as_u16(), 401);
}
