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
        before["components"]["schemas"]["customer_input"]["properties"]["industry"]["enum"].as_array().unwrap().len(),
        9
    );
    // What was stored under options since removed is still read.
    assert!(before["components"]["schemas"]["customer"]["properties"]["industry"].get("enum").is_none());
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
    assert_eq!(
        after["components"]["schemas"]["customer_input"]["properties"]["loyalty"]["enum"],
        json!(["high", null])
    );
    assert!(after["components"]["schemas"]["customer"]["properties"].get("loyalty").is_some());

    let anonymous = t.call(axum::http::Method::GET, "/api/openapi.json", None, Some("")).await;
    assert_eq!(anonymous.status.as_u16(), 401);
}

/// A sales rep's document describes only what their roles let them see and do: no field
/// hidden from them anywhere, the fields they may only read marked `readOnly`, and no
/// operation their roles do not allow. The metadata API says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_learns_only_the_fields_they_see() {
    let t = TestApp::sqlite().await;
    let (_, rep) = t.user("rep", &["sales_rep"], None).await;
    let as_rep = |uri: &'static str| t.call(axum::http::Method::GET, uri, None, Some(&rep));
    let document = as_rep("/api/openapi.json").await.expect(200);
    validate(&document);
    assert!(!document.to_string().contains("cost_price"), "the hidden field is nowhere in the rep's document");
    let schemas = &document["components"]["schemas"];
    assert!(schemas["product"]["properties"].get("standard_price").is_some());
    assert_eq!(schemas["customer"]["properties"]["credit_limit"]["readOnly"], true);
    assert_eq!(schemas["customer_input"]["properties"]["credit_limit"]["readOnly"], true);
    assert!(schemas["customer"]["properties"]["name"].get("readOnly").is_none());
    assert!(document["paths"]["/api/v1/records/product"].get("post").is_none(), "reps only read products");
    assert!(document["paths"].get("/api/v1/admin/users").is_none(), "accounts are for administrators");

    for uri in ["/api/v1/meta/entities/product", "/api/v1/meta/layouts/product", "/api/v1/meta/lists/product"] {
        let answer = as_rep(uri).await.expect(200);
        assert!(!answer.to_string().contains("cost_price"), "{uri}: {answer}");
    }
    let customer = as_rep("/api/v1/meta/entities/customer").await.expect(200);
    let read_only = json!(["code", "credit_limit", "last_followed_at"]);
    assert_eq!(customer["read_only"], read_only, "an auto-number, a read-only field and a rollup");
    let admin_view = t.get("/api/v1/meta/entities/product").await.expect(200);
    assert!(admin_view.to_string().contains("cost_price"), "the administrator sees it");
}

/// Each operation says what it answers: a 204 has no body, errors are problem documents
/// where they can occur, and `fields` names the entity's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_document_every_answer() {
    let t = TestApp::sqlite().await;
    let document = t.get("/api/openapi.json").await.expect(200);
    let logout = &document["paths"]["/api/v1/auth/logout"]["post"]["responses"];
    assert!(logout["204"].get("content").is_none(), "logging out answers no body: {logout}");
    let token = &document["paths"]["/api/v1/auth/token"]["post"]["responses"];
    for status in ["400", "401", "413", "422", "429"] {
        assert_eq!(token[status]["$ref"], format!("#/components/responses/Problem{status}"));
    }
    let user = &document["paths"]["/api/v1/admin/users/{id}"]["get"]["responses"];
    for status in ["401", "403", "404"] {
        assert!(user.get(status).is_some(), "{status} of reading an account");
    }
    let fields = document["paths"]["/api/v1/records/customer/{id}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fields")
        .unwrap()
        .clone();
    assert_eq!(fields["explode"], false);
    assert!(fields["schema"]["items"]["enum"].as_array().unwrap().contains(&json!("industry")));
}
