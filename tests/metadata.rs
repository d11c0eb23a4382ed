//! The metadata API on SQLite and PostgreSQL: changes alter the real tables in the same
//! transaction, are live on the next request, are validated with paths, and are recorded.

mod support;

use serde_json::{Value, json};
use support::TestApp;

backends!(
    added_field_is_live_on_the_next_request,
    field_changes_are_safe_or_refused,
    archived_field_keeps_its_data,
    new_entity_is_served_at_once,
    invalid_metadata_names_the_path,
    layout_and_list_documents,
    metadata_needs_an_administrator_token,
);

fn label(zh: &str, en: &str) -> Value {
    json!({"zh-CN": zh, "en": en})
}

async fn added_field_is_live_on_the_next_request(t: TestApp) {
    let before = t.create("customer", json!({"name": "老客户"})).await;
    let openapi_before = t.get("/api/openapi.json").await.expect(200);
    assert!(openapi_before["components"]["schemas"]["customer"]["properties"].get("wechat").is_none());

    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "wechat", "type": "text", "label": label("微信", "WeChat"), "indexed": true, "max_length": 40}),
        )
        .await
        .expect(201);
    assert!(
        reply["plan"].as_array().unwrap().iter().any(|s| s == "add column `customer.wechat` (Text)"),
        "{}",
        reply["plan"]
    );
    let sections = &reply["layout"]["edit"]["sections"];
    assert_eq!(sections.as_array().unwrap().last().unwrap()["fields"].as_array().unwrap().last().unwrap(), "wechat");

    let created = t.create("customer", json!({"name": "新客户", "wechat": "liyouxin"})).await;
    assert_eq!(created["wechat"], "liyouxin");
    let old = t.get(&format!("/api/v1/records/customer/{}", before["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(old["wechat"], Value::Null, "existing rows get an empty value");
    assert_eq!(t.names("customer", json!({"field": "wechat", "op": "eq", "value": "liyouxin"})).await, ["新客户"]);
    let too_long = t.post("/api/v1/records/customer", json!({"name": "x", "wechat": "w".repeat(41)})).await.expect(422);
    assert_eq!(too_long["errors"][0]["code"], "too_long");

    let openapi_after = t.get("/api/openapi.json").await.expect(200);
    assert_eq!(openapi_after["components"]["schemas"]["customer_input"]["properties"]["wechat"]["maxLength"], 40);
    assert_ne!(openapi_before["info"]["version"], openapi_after["info"]["version"]);

    t.post(
        "/api/v1/meta/entities/customer/fields",
        json!({"name": "tier", "type": "integer", "label": label("等级", "Tier"), "place_on_layouts": false}),
    )
    .await
    .expect(201);
    let entity = t.get("/api/v1/meta/entities/customer").await.expect(200);
    assert!(!entity["layout"]["edit"].to_string().contains("\"tier\""), "kept off the layouts");

    let history = t.get("/api/v1/meta/history?limit=5").await.expect(200);
    let latest = &history["data"][0];
    assert_eq!(latest["kind"], "entity");
    assert_eq!(latest["name"], "customer");
    assert!(latest["before"].to_string().contains("wechat") && latest["after"].to_string().contains("tier"));
    assert!(latest["changed_by"].is_string());

    let duplicate = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "wechat", "type": "text", "label": label("微信", "WeChat")}),
        )
        .await
        .expect(422);
    assert!(duplicate["errors"][0]["message"].as_str().unwrap().contains("already exists"));
}

async fn field_changes_are_safe_or_refused(t: TestApp) {
    let uri = "/api/v1/meta/entities/customer/fields";
    t.post(uri, json!({"name": "score", "type": "integer", "label": label("评分", "Score")})).await.expect(201);
    t.post(uri, json!({"name": "nickname", "type": "text", "label": label("简称", "Nickname")})).await.expect(201);
    t.create("customer", json!({"name": "甲", "score": 7, "nickname": "甲公司"})).await;

    let renamed = t
        .patch(
            &format!("{uri}/nickname"),
            json!({"label": label("简称2", "Short name"), "help": label("常用称呼", "Usual name")}),
        )
        .await
        .expect(200);
    let field =
        renamed["entity"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "nickname").unwrap().clone();
    assert_eq!(field["label"]["en"], "Short name");

    t.patch(&format!("{uri}/nickname"), json!({"type": "long_text"})).await.expect(200);
    let refused = t.patch(&format!("{uri}/nickname"), json!({"type": "integer"})).await.expect(422);
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("could lose data"), "{refused}");
    let path = refused["errors"][0]["path"].as_str().unwrap();
    assert!(path.starts_with("/fields/") && path.ends_with("/type"), "{path}");

    t.patch(&format!("{uri}/score"), json!({"type": "decimal", "scale": 1})).await.expect(200);
    let list = t.list("customer", None, "fields=score").await.expect(200);
    assert_eq!(list["data"][0]["score"], "7.0", "integers become exact decimals with their value kept");

    t.patch(&format!("{uri}/nickname"), json!({"name": "other"})).await.expect(422);
    t.patch(&format!("{uri}/nope"), json!({"required": true})).await.expect(404);
    t.patch("/api/v1/meta/entities/nope/fields/x", json!({})).await.expect(404);

    t.create("customer", json!({"name": "乙", "nickname": "同名"})).await;
    t.create("customer", json!({"name": "丙", "nickname": "同名"})).await;
    let not_unique = t.patch(&format!("{uri}/nickname"), json!({"unique": true, "type": "text"})).await.expect(422);
    assert!(not_unique["errors"][0]["message"].as_str().unwrap().contains("duplicate"), "{not_unique}");
    let entity = t.get("/api/v1/meta/entities/customer").await.expect(200);
    let nickname =
        entity["entity"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "nickname").unwrap().clone();
    assert_eq!(nickname.get("unique"), None, "nothing was applied");

    t.patch(&format!("{uri}/score"), json!({"required": true})).await.expect(200);
    t.post("/api/v1/records/customer", json!({"name": "丁"})).await.expect(422);
}

async fn archived_field_keeps_its_data(t: TestApp) {
    let created = t.create("customer", json!({"name": "甲", "fax": "010-88886666"})).await;
    let uri = format!("/api/v1/records/customer/{}", created["id"].as_str().unwrap());
    t.delete("/api/v1/meta/entities/customer/fields/fax").await.expect(200);
    let hidden = t.get(&uri).await.expect(200);
    assert!(hidden.get("fax").is_none(), "archived fields are not returned");
    let refused = t.patch(&uri, json!({"version": 1, "fax": "1"})).await.expect(422);
    assert_eq!(refused["errors"][0]["code"], "unknown_field");
    t.list("customer", Some(json!({"field": "fax", "op": "is_null", "value": false})), "").await.expect(400);
    let entity = t.get("/api/v1/meta/entities/customer").await.expect(200);
    assert!(!entity["layout"].to_string().contains("\"fax\""));

    t.patch("/api/v1/meta/entities/customer/fields/fax", json!({"archived": false})).await.expect(200);
    assert_eq!(t.get(&uri).await.expect(200)["fax"], "010-88886666", "the data came back with the field");

    let title = t.delete("/api/v1/meta/entities/customer/fields/name").await.expect(422);
    assert!(title["errors"][0]["message"].as_str().unwrap().contains("names the records"));
    t.delete("/api/v1/meta/entities/customer/fields/nope").await.expect(404);
}

async fn new_entity_is_served_at_once(t: TestApp) {
    let body = json!({
        "name": "competitor",
        "label": label("竞争对手", "Competitor"),
        "fields": [
            {"name": "name", "type": "text", "label": label("名称", "Name"), "required": true},
            {"name": "strength", "type": "select", "label": label("实力", "Strength"), "options": [
                {"value": "strong", "label": label("强", "Strong")}, {"value": "weak", "label": label("弱", "Weak")}]},
            {"name": "customer", "type": "lookup", "target": "customer", "label": label("客户", "Customer")},
            {"name": "tags", "type": "multi_select", "label": label("标签", "Tags"), "options": [
                {"value": "price", "label": label("价格", "Price")}, {"value": "service", "label": label("服务", "Service")}]},
            {"name": "founded", "type": "date", "label": label("成立", "Founded")},
            {"name": "seen_at", "type": "datetime", "label": label("发现于", "Seen at")},
            {"name": "listed", "type": "boolean", "label": label("上市", "Listed")},
            {"name": "share", "type": "percent", "label": label("份额", "Share")},
            {"name": "ref", "type": "auto_number", "prefix": "CP-", "digits": 3, "label": label("编号", "Ref")},
        ],
    });
    let reply = t.post("/api/v1/meta/entities", body.clone()).await.expect(201);
    assert_eq!(reply["list_view"]["entity"], "competitor");
    t.post("/api/v1/meta/entities", body).await.expect(422);
    let customer = t.create("customer", json!({"name": "客户甲"})).await;
    let created = t
        .create(
            "competitor",
            json!({"name": "对手", "strength": "strong", "customer": customer["id"], "tags": ["service", "price"],
                   "founded": "2001-05-01", "seen_at": "2026-01-31T09:30:00+08:00", "listed": true, "share": "12.5"}),
        )
        .await;
    assert_eq!(created["tags"], json!(["price", "service"]));
    assert_eq!(created["seen_at"], "2026-01-31T01:30:00Z");
    assert_eq!(created["share"], "12.50");
    assert_eq!(created["ref"], "CP-001");
    let f = |field: &str, op: &str, value: Value| json!({"field": field, "op": op, "value": value});
    assert_eq!(t.names("competitor", f("tags", "contains", json!("price"))).await, ["对手"]);
    assert_eq!(t.names("competitor", f("tags", "in", json!(["service"]))).await, ["对手"]);
    assert!(t.names("competitor", f("listed", "eq", json!(false))).await.is_empty());
    assert_eq!(t.names("competitor", f("seen_at", "gt", json!("2026-01-31T01:00:00Z"))).await, ["对手"]);
    assert_eq!(t.names("competitor", f("founded", "between", json!(["2000-01-01", "2001-12-31"]))).await, ["对手"]);

    let entities = t.get("/api/v1/meta/entities").await.expect(200);
    assert!(entities["data"].as_array().unwrap().iter().any(|e| e["name"] == "competitor"));

    let reserved = t
        .post("/api/v1/meta/entities", json!({"name": "select", "label": label("选", "Select"), "fields": []}))
        .await
        .expect(422);
    assert_eq!(reserved["code"], "invalid_metadata");
    t.post(
        "/api/v1/meta/entities",
        json!({"name": "x\"; DROP TABLE customer; --", "label": label("甲", "A"), "fields": []}),
    )
    .await
    .expect(422);
    t.post("/api/v1/meta/entities", json!({"name": "crm_meta", "label": label("甲", "A"), "fields": []}))
        .await
        .expect(422);
    t.get("/api/v1/records/customer?limit=1").await.expect(200);
}

async fn invalid_metadata_names_the_path(t: TestApp) {
    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "partner", "type": "lookup", "target": "no_such_entity", "label": label("伙伴", "Partner")}),
        )
        .await
        .expect(422);
    let error = &reply["errors"][0];
    assert!(error["path"].as_str().unwrap().ends_with("/target"), "{error}");
    assert!(error["message"].as_str().unwrap().contains("no_such_entity"));

    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "Bad Name", "type": "text", "label": label("甲", "A")}),
        )
        .await
        .expect(422);
    assert_eq!(reply["errors"][0]["path"], "/name");
    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "level", "type": "select", "label": label("级", "Level")}),
        )
        .await
        .expect(422);
    assert_eq!(reply["errors"][0]["path"], "");
    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "level", "type": "text", "label": label("级", "Level"), "colour": "red"}),
        )
        .await
        .expect(422);
    assert_eq!(reply["code"], "invalid_metadata");
    let reply = t
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "owner", "type": "text", "label": label("甲", "A")}),
        )
        .await
        .expect(422);
    assert!(reply["errors"][0]["message"].as_str().unwrap().contains("system column"));
}

async fn layout_and_list_documents(t: TestApp) {
    let mut layout = t.get("/api/v1/meta/layouts/customer").await.expect(200);
    let fields = layout["edit"]["sections"][0]["fields"].as_array_mut().unwrap();
    let moved = fields.remove(0);
    fields.push(moved.clone());
    t.put("/api/v1/meta/layouts/customer", layout.clone()).await.expect(200);
    let live = t.get("/api/v1/meta/entities/customer").await.expect(200);
    assert_eq!(live["layout"]["edit"]["sections"][0]["fields"].as_array().unwrap().last().unwrap(), &moved);

    layout["edit"]["sections"][0]["fields"].as_array_mut().unwrap().push(json!("no_such_field"));
    let bad = t.put("/api/v1/meta/layouts/customer", layout).await.expect(422);
    assert!(bad["errors"][0]["path"].as_str().unwrap().starts_with("/edit/sections/0/fields/"));

    let list = json!({"entity": "customer", "columns": ["name", "region", "owner"], "sort": ["name"]});
    t.put("/api/v1/meta/lists/customer", list).await.expect(200);
    t.create("customer", json!({"name": "b"})).await;
    t.create("customer", json!({"name": "a"})).await;
    let page = t.get("/api/v1/records/customer").await.expect(200);
    assert_eq!(page["data"][0]["name"], "a", "the list view's default sort applies");
    t.put("/api/v1/meta/lists/customer", json!({"entity": "contact", "columns": ["name"]})).await.expect(400);
    t.put("/api/v1/meta/nope/customer", json!({})).await.expect(404);
    let stages = t.get("/api/v1/meta/stage_sets/sales").await.expect(200);
    assert_eq!(stages["stages"].as_array().unwrap().last().unwrap()["category"], "lost");
}

async fn metadata_needs_an_administrator_token(t: TestApp) {
    let anonymous = t.call(axum::http::Method::GET, "/api/v1/meta/entities", None, Some("")).await;
    assert_eq!(anonymous.status.as_u16(), 401);
    let forged = t.call(axum::http::Method::GET, "/api/v1/meta/entities", None, Some("crm_forged")).await;
    assert_eq!(forged.status.as_u16(), 401);
    assert_eq!(forged.body["code"], "unauthorized");
    assert!(t.login("admin", "wrong").await.is_none());
    assert!(t.login("nobody", "wrong").await.is_none());
    t.get("/healthz").await.expect(200);
}
