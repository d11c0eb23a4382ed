//! The record API on SQLite and PostgreSQL: the save pipeline, errors, filters, sorting and
//! keyset pages, related panels, bulk operations and the recycle bin.

mod support;

use crm::records::{Source, Unit};
use serde_json::{Value, json};
use support::TestApp;

backends!(
    crud_and_optimistic_concurrency,
    malformed_paths_are_problems,
    values_are_checked_and_nothing_is_written_on_error,
    money_is_exact,
    every_filter_operator,
    keyset_pages_visit_every_row_once,
    related_panels_and_groups,
    bulk_operations_answer_per_id,
    import_is_all_or_nothing,
    unique_values_and_the_recycle_bin,
    hostile_input_stays_data,
    concurrent_writes_all_land_or_fail_alone,
    a_row_the_database_refuses_undoes_its_whole_import,
    imports_and_single_writes_interleave,
);

async fn crud_and_optimistic_concurrency(t: TestApp) {
    let created = t
        .create(
            "customer",
            json!({"name": "北京立友信科技有限公司", "industry": "software", "annual_revenue": 1200000}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["annual_revenue"], "1200000.00");
    assert_eq!(created["status"], "prospect", "the default applies");
    assert!(created["code"].as_str().unwrap().starts_with('C'), "auto number: {}", created["code"]);
    assert_eq!(created["owner"], created["created_by"], "the creator owns the record");

    let read = t.get(&format!("/api/v1/records/customer/{id}")).await.expect(200);
    assert_eq!(read, created, "a record reads back exactly as created");
    let only = t.get(&format!("/api/v1/records/customer/{id}?fields=name")).await.expect(200);
    assert_eq!(only, json!({"id": id, "name": "北京立友信科技有限公司"}));
    let every = t.get(&format!("/api/v1/records/customer/{id}?fields=")).await.expect(200);
    assert_eq!(every, created, "a `fields` that names no field asks for every field");
    let listed = t.list("customer", None, "fields=,").await.expect(200);
    assert_eq!(listed["data"][0], created);

    let changed = t
        .patch(&format!("/api/v1/records/customer/{id}"), json!({"version": 1, "phone": "010-6543 2100"}))
        .await
        .expect(200);
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["phone"], "010-6543 2100");
    let stale = t
        .patch(&format!("/api/v1/records/customer/{id}"), json!({"version": 1, "phone": "010-1111111"}))
        .await
        .expect(409);
    assert_eq!(stale["code"], "version_conflict");
    let missing_version = t.patch(&format!("/api/v1/records/customer/{id}"), json!({"phone": "0"})).await.expect(422);
    assert_eq!(missing_version["errors"][0]["field"], "version");

    let history = t.get(&format!("/api/v1/records/customer/{id}/history")).await.expect(200);
    assert_eq!(history["data"].as_array().unwrap().len(), 2);
    assert_eq!(history["data"][1]["changes"]["phone"], json!([null, "010-6543 2100"]));

    t.delete(&format!("/api/v1/records/customer/{id}")).await.expect(204);
    t.get(&format!("/api/v1/records/customer/{id}")).await.expect(404);
    let bin = t.list("customer", None, "deleted=true").await.expect(200);
    assert_eq!(bin["data"][0]["id"], id.as_str());
    let restored = t.post(&format!("/api/v1/records/customer/{id}/restore"), json!({})).await.expect(200);
    assert_eq!(restored["deleted_at"], Value::Null);
    t.post(&format!("/api/v1/records/customer/{id}/restore"), json!({})).await.expect(404);

    t.get("/api/v1/records/customer/not-a-uuid").await.expect(404);
    t.get("/api/v1/records/no_such_entity").await.expect(404);
    let problem = t.get("/api/v1/records/customer/01a21935-3b0d-7648-bf6c-9d2fa8b7c6b5").await;
    assert_eq!(problem.content_type.as_deref(), Some("application/problem+json"));
}

/// A path parameter that is not what the route takes (an id that is not a UUID, text that is
/// not UTF-8) names nothing: a 404 problem document, like any unknown id. A method the route
/// does not take is a problem document too.
async fn malformed_paths_are_problems(t: TestApp) {
    use axum::http::Method;
    for (method, uri) in [
        (Method::GET, "/api/v1/admin/users/not-a-uuid"),
        (Method::POST, "/api/v1/admin/users/not-a-uuid/disable"),
        (Method::DELETE, "/api/v1/auth/tokens/%FF%FE"),
        (Method::POST, "/api/v1/reminders/1/done"),
        (Method::GET, "/api/v1/records/customer/%FF%FE"),
        (Method::GET, "/api/v1/meta/entities/a%00b"),
    ] {
        let reply = t.call(method.clone(), uri, Some(json!({})), None).await;
        assert_eq!(reply.content_type.as_deref(), Some("application/problem+json"), "{method} {uri}: {:?}", reply.body);
        assert_eq!(reply.body["code"], "not_found", "{method} {uri}");
        assert_eq!(reply.status.as_u16(), 404);
    }
    let wrong_method = t.call(Method::PUT, "/api/v1/records/customer", None, None).await;
    assert_eq!(wrong_method.status.as_u16(), 405);
    assert_eq!(wrong_method.body["code"], "method_not_allowed");
    let nul = t.post("/api/v1/auth/tokens", json!({"name": "a\u{0}b"})).await.expect(422);
    assert_eq!(
        nul["errors"][0],
        json!({"field": "name", "code": "invalid_text", "message": "contains a NUL character"})
    );
}

async fn values_are_checked_and_nothing_is_written_on_error(t: TestApp) {
    let customer = t.create("customer", json!({"name": "上海友信"})).await;
    let bad = t
        .post(
            "/api/v1/records/contact",
            json!({
                "email": "not-an-email",
                "role": "emperor",
                "birthday": "1990-02-30",
                "customer": "01a21935-3b0d-7648-bf6c-9d2fa8b7c6b5",
                "wechat": "x",
                "code": "x",
                "id": "01a21935-3b0d-7648-bf6c-9d2fa8b7c6b5",
            }),
        )
        .await
        .expect(422);
    let mut codes: Vec<(String, String)> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("birthday", "invalid_date"),
            ("code", "unknown_field"),
            ("email", "invalid_email"),
            ("id", "read_only"),
            ("name", "required"),
            ("role", "invalid_option"),
            ("wechat", "unknown_field"),
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned())),
        "every error at once, the missing name with the wrong values"
    );
    let missing = t.post("/api/v1/records/contact", json!({"customer": customer["id"]})).await.expect(422);
    assert_eq!(missing["errors"], json!([{"field": "name", "code": "required", "message": "a value is required"}]));
    let dangling = t
        .post("/api/v1/records/contact", json!({"name": "张三", "customer": "01a21935-3b0d-7648-bf6c-9d2fa8b7c6b5"}))
        .await
        .expect(422);
    assert_eq!(dangling["errors"][0]["code"], "not_found");
    let total = t.list("contact", None, "count=true").await.expect(200);
    assert_eq!(total["total"], 0, "no contact was written");

    let contact =
        t.create("contact", json!({"name": "张三", "customer": customer["id"], "role": "decision_maker"})).await;
    let uri = format!("/api/v1/records/contact/{}", contact["id"].as_str().unwrap());
    let cleared = t.patch(&uri, json!({"version": 1, "name": null})).await.expect(422);
    assert_eq!(cleared["errors"][0]["code"], "required");
    let unchanged = t.get(&uri).await.expect(200);
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["name"], "张三");

    t.post("/api/v1/records/contact", json!(["not", "an", "object"])).await.expect(400);
}

async fn money_is_exact(t: TestApp) {
    let amounts = ["0.10", "0.20", "99999999999.99", "0.03", "1234.5"];
    for (i, amount) in amounts.iter().enumerate() {
        t.create("customer", json!({"name": format!("公司{i}"), "annual_revenue": amount, "status": "active"})).await;
    }
    let groups = t.get("/api/v1/records/customer/groups?by=status&sum=annual_revenue").await.expect(200);
    assert_eq!(groups["groups"], json!([{"value": "active", "count": 5, "sum": "100000001234.82"}]));
    let sorted = t.list("customer", None, "sort=annual_revenue&fields=annual_revenue").await.expect(200);
    let values: Vec<&str> =
        sorted["data"].as_array().unwrap().iter().map(|r| r["annual_revenue"].as_str().unwrap()).collect();
    assert_eq!(values, ["0.03", "0.10", "0.20", "1234.50", "99999999999.99"]);
    let too_precise =
        t.post("/api/v1/records/customer", json!({"name": "x", "annual_revenue": "1.001"})).await.expect(422);
    assert_eq!(too_precise["errors"][0]["code"], "too_precise");
    let negative = t.post("/api/v1/records/customer", json!({"name": "x", "annual_revenue": "-1"})).await.expect(422);
    assert_eq!(negative["errors"][0]["code"], "out_of_range", "min 0 holds");
}

async fn seed_filter_data(t: &TestApp) {
    let rows = [
        json!({"name": "Alpha 北京", "industry": "software", "region": "北京市", "annual_revenue": "100", "class": "key"}),
        json!({"name": "beta 深圳", "industry": "retail", "region": "广东省/深圳市", "annual_revenue": "200", "status": "active"}),
        json!({"name": "Gamma 广州", "industry": "retail", "region": "广东省/广州市", "annual_revenue": "300", "status": "lost"}),
        json!({"name": "delta_100%", "industry": "finance", "region": "上海市"}),
        json!({"name": "Epsilon", "industry": "software", "region": "广东省", "annual_revenue": "300", "email": "a@b.cn"}),
    ];
    for row in rows {
        t.create("customer", row).await;
    }
}

async fn every_filter_operator(t: TestApp) {
    seed_filter_data(&t).await;
    let f = |field: &str, op: &str, value: Value| json!({"field": field, "op": op, "value": value});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (f("industry", "eq", json!("retail")), vec!["Gamma 广州", "beta 深圳"]),
        (f("industry", "ne", json!("retail")), vec!["Alpha 北京", "Epsilon", "delta_100%"]),
        (f("annual_revenue", "lt", json!("200")), vec!["Alpha 北京"]),
        (f("annual_revenue", "lte", json!(200)), vec!["Alpha 北京", "beta 深圳"]),
        (f("annual_revenue", "gt", json!("200")), vec!["Epsilon", "Gamma 广州"]),
        (f("annual_revenue", "gte", json!("300.00")), vec!["Epsilon", "Gamma 广州"]),
        (f("annual_revenue", "between", json!(["150", "300"])), vec!["Epsilon", "Gamma 广州", "beta 深圳"]),
        (f("industry", "in", json!(["finance", "software"])), vec!["Alpha 北京", "Epsilon", "delta_100%"]),
        (f("name", "contains", json!("ALPHA")), vec!["Alpha 北京"]),
        (f("name", "contains", json!("100%")), vec!["delta_100%"]),
        (f("name", "contains", json!("_")), vec!["delta_100%"]),
        (f("name", "contains", json!("深圳")), vec!["beta 深圳"]),
        (f("name", "starts_with", json!("gam")), vec!["Gamma 广州"]),
        (f("annual_revenue", "is_null", json!(true)), vec!["delta_100%"]),
        (f("email", "is_null", json!(false)), vec!["Epsilon"]),
        (f("region", "eq", json!("广东")), vec!["Epsilon", "Gamma 广州", "beta 深圳"]),
        (f("region", "eq", json!("广东省/深圳市")), vec!["beta 深圳"]),
        (f("status", "in", json!(["active", "lost"])), vec!["Gamma 广州", "beta 深圳"]),
        (
            json!({"and": [f("industry", "eq", json!("retail")), {"not": f("status", "eq", json!("lost"))}]}),
            vec!["beta 深圳"],
        ),
        (
            json!({"or": [f("class", "eq", json!("key")), f("region", "eq", json!("上海"))]}),
            vec!["Alpha 北京", "delta_100%"],
        ),
    ];
    for (filter, expected) in cases {
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(t.names("customer", filter.clone()).await, expected, "filter {filter}");
    }
    let counted =
        t.list("customer", Some(f("industry", "eq", json!("retail"))), "count=true&limit=1").await.expect(200);
    assert_eq!(counted["total"], 2);
    assert_eq!(counted["data"].as_array().unwrap().len(), 1);

    for (bad, why) in [
        (json!({"field": "nope", "op": "eq", "value": 1}), "unknown field"),
        (json!({"field": "name", "op": "like", "value": "x"}), "unknown op"),
        (json!({"field": "annual_revenue", "op": "eq", "value": "lots"}), "bad value"),
        (json!({"field": "industry", "op": "eq", "value": "mining"}), "not an option"),
        (json!({"field": "annual_revenue", "op": "contains", "value": "1"}), "contains on a number"),
        (json!({"and": []}), "empty and"),
        (json!({"field": "name", "op": "eq", "value": "x", "extra": 1}), "extra key"),
        (json!([1, 2]), "not an object"),
    ] {
        let reply = t.list("customer", Some(bad.clone()), "").await;
        assert_eq!(reply.status.as_u16(), 400, "{why}: {bad} → {}", reply.body);
        assert_eq!(reply.body["code"], "invalid_query");
    }
    let mut deep = json!({"field": "name", "op": "eq", "value": "x"});
    for _ in 0..20 {
        deep = json!({"not": deep});
    }
    t.list("customer", Some(deep), "").await.expect(400);
    t.get("/api/v1/records/customer?filter=%7Bnot%20json").await.expect(400);
    t.get("/api/v1/records/customer?sort=name;drop%20table%20customer").await.expect(400);
    t.get("/api/v1/records/customer?sort=remark").await.expect(400);
    t.get("/api/v1/records/customer?limit=0").await.expect(400);
    t.get("/api/v1/records/customer?cursor=garbage").await.expect(400);
    t.get("/api/v1/records/customer?unknown=1").await.expect(400);
}

async fn keyset_pages_visit_every_row_once(t: TestApp) {
    let rows: Vec<Value> = (0..37)
        .map(|i| {
            let revenue = if i % 5 == 0 { Value::Null } else { json!(format!("{}", (i * 7) % 11)) };
            let industry = ["software", "retail", "finance"][i % 3];
            json!({"name": format!("公司{:02}", i % 13), "annual_revenue": revenue, "industry": industry})
        })
        .collect();
    t.post("/api/v1/records/customer/bulk/create", json!({"records": rows})).await.expect(201);
    for sort in ["-annual_revenue,name", "annual_revenue,-name", "name", "-created_at", "industry,-annual_revenue"] {
        let all = t
            .list("customer", None, &format!("sort={sort}&limit=500&fields=name,annual_revenue,industry"))
            .await
            .expect(200);
        let expected: Vec<Value> = all["data"].as_array().unwrap().clone();
        assert_eq!(expected.len(), 37);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut extra = format!("sort={sort}&limit=5&fields=name,annual_revenue,industry");
            if let Some(c) = &cursor {
                extra.push_str(&format!("&cursor={c}"));
            }
            let page = t.get(&format!("/api/v1/records/customer?{extra}")).await.expect(200);
            seen.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "pages of sort {sort} match the full list");
        if sort.starts_with("-annual_revenue") {
            let last = expected.last().unwrap();
            assert_eq!(last["annual_revenue"], Value::Null, "empty values sort last");
        }
    }
    // A cursor keeps its place when its record goes to the recycle bin before the next page.
    let fields = "sort=-created_at&limit=5&fields=name";
    let first = t.list("customer", None, fields).await.expect(200);
    let all = t.list("customer", None, "sort=-created_at&limit=500&fields=name").await.expect(200);
    let last_id = first["data"][4]["id"].as_str().unwrap();
    t.delete(&format!("/api/v1/records/customer/{last_id}")).await.expect(204);
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = t.get(&format!("/api/v1/records/customer?{fields}&cursor={cursor}")).await.expect(200);
    assert_eq!(next["data"].as_array().unwrap()[..], all["data"].as_array().unwrap()[5..10]);
}

async fn related_panels_and_groups(t: TestApp) {
    let customer = t.create("customer", json!({"name": "深圳立友电子"})).await;
    let other = t.create("customer", json!({"name": "别家"})).await;
    let id = customer["id"].as_str().unwrap();
    for name in ["李四", "王五"] {
        t.create("contact", json!({"name": name, "customer": id, "mobile": "13900000000"})).await;
    }
    t.create("contact", json!({"name": "外人", "customer": other["id"]})).await;
    let panel = t.get(&format!("/api/v1/records/customer/{id}/related/contacts")).await.expect(200);
    let mut names: Vec<&str> = panel["data"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["李四", "王五"]);
    assert!(panel["data"][0].get("customer").is_none(), "panel columns only: {}", panel["data"][0]);
    t.get(&format!("/api/v1/records/customer/{id}/related/nope")).await.expect(404);

    let groups = t.get("/api/v1/records/contact/groups?by=customer").await.expect(200);
    let counts: Vec<i64> = groups["groups"].as_array().unwrap().iter().map(|g| g["count"].as_i64().unwrap()).collect();
    assert_eq!(counts, [2, 1]);
    t.get("/api/v1/records/contact/groups?by=remark").await.expect(400);
}

async fn bulk_operations_answer_per_id(t: TestApp) {
    let a = t.create("customer", json!({"name": "甲"})).await;
    let b = t.create("customer", json!({"name": "乙"})).await;
    let ghost = "01a21935-3b0d-7648-bf6c-9d2fa8b7c6b5";
    let reply = t
        .post(
            "/api/v1/records/customer/bulk/update",
            json!({"ids": [a["id"], ghost, b["id"], "junk"], "set": {"class": "key"}}),
        )
        .await
        .expect(200);
    let statuses: Vec<i64> =
        reply["results"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 404, 200, 404]);
    assert_eq!(t.names("customer", json!({"field": "class", "op": "eq", "value": "key"})).await, ["乙", "甲"]);
    let invalid = t
        .post("/api/v1/records/customer/bulk/update", json!({"ids": [a["id"]], "set": {"class": "royal"}}))
        .await
        .expect(422);
    assert_eq!(invalid["errors"][0]["field"], "class");
    let cleared = t
        .post("/api/v1/records/customer/bulk/update", json!({"ids": [a["id"]], "set": {"name": null}}))
        .await
        .expect(200);
    assert_eq!(cleared["results"][0]["status"], 422, "a required field cannot be cleared: {cleared}");

    let deleted = t.post("/api/v1/records/customer/bulk/delete", json!({"ids": [a["id"], ghost]})).await.expect(200);
    assert_eq!(deleted["results"][0]["status"], 200);
    assert_eq!(deleted["results"][1]["status"], 404);
    let again = t.post("/api/v1/records/customer/bulk/delete", json!({"ids": [a["id"]]})).await.expect(200);
    assert_eq!(again["results"][0]["status"], 404, "already in the recycle bin");
    let restored = t.post("/api/v1/records/customer/bulk/restore", json!({"ids": [a["id"]]})).await.expect(200);
    assert_eq!(restored["results"][0]["status"], 200);
    t.post("/api/v1/records/customer/bulk/delete", json!({"ids": []})).await.expect(400);
}

async fn import_is_all_or_nothing(t: TestApp) {
    let bad = t
        .post(
            "/api/v1/records/customer/bulk/create",
            json!({"records": [{"name": "好"}, {"name": "坏", "industry": "mining"}, {"industry": "retail"}]}),
        )
        .await
        .expect(422);
    let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["records/1/industry", "records/2/name"]);
    // One record: a wrong value and a missing one are said together, not one after the other.
    let both = t.post("/api/v1/records/customer", json!({"industry": "mining"})).await.expect(422);
    let fields: Vec<&str> = both["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["industry", "name"], "{both}");
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 0);
    let ok = t
        .post("/api/v1/records/customer/bulk/create", json!({"records": [{"name": "一"}, {"name": "二"}]}))
        .await
        .expect(201);
    assert_eq!(ok["created"], 2);
    let codes: Vec<String> = t.list("customer", None, "sort=code&fields=code").await.expect(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["C000001", "C000002"], "auto numbers are consecutive and unique");
}

async fn unique_values_and_the_recycle_bin(t: TestApp) {
    let first = t.create("product", json!({"name": "主机", "code": "P-001"})).await;
    let dup = t.post("/api/v1/records/product", json!({"name": "另一台", "code": "P-001"})).await.expect(422);
    assert_eq!(
        dup["errors"][0],
        json!({"field": "code", "code": "not_unique", "message": "another record already has this value"})
    );
    let in_batch = t
        .post(
            "/api/v1/records/product/bulk/create",
            json!({"records": [{"name": "a", "code": "X"}, {"name": "b", "code": "X"}]}),
        )
        .await
        .expect(422);
    assert_eq!(in_batch["errors"][0]["field"], "records/1/code");
    t.delete(&format!("/api/v1/records/product/{}", first["id"].as_str().unwrap())).await.expect(204);
    let second = t.create("product", json!({"name": "新主机", "code": "P-001"})).await;
    assert_eq!(second["code"], "P-001", "a deleted record does not hold its unique value");
    let blocked = t
        .post(&format!("/api/v1/records/product/{}/restore", first["id"].as_str().unwrap()), json!({}))
        .await
        .expect(422);
    assert_eq!(blocked["errors"][0]["field"], "code");
}

async fn hostile_input_stays_data(t: TestApp) {
    let nasty = [
        "'; DROP TABLE customer; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM crm_meta; --",
        "<script>alert(1)</script>",
        "\\'%_\u{202e}",
        "𝕏 emoji 🚀",
    ];
    for text in nasty {
        let created = t.create("customer", json!({"name": text, "address": text, "remark": text})).await;
        assert_eq!(created["name"], text);
        let found = t.names("customer", json!({"field": "name", "op": "eq", "value": text})).await;
        assert_eq!(found, [text], "exact match of {text}");
        let contains = t.names("customer", json!({"field": "remark", "op": "is_null", "value": false})).await;
        assert!(contains.contains(&text.to_owned()));
    }
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], nasty.len());
    t.get("/api/v1/records/customer;drop").await.expect(404);
    t.get("/api/v1/records/crm_meta").await.expect(404);
    t.get("/api/v1/records/sqlite_master").await.expect(404);
    t.get("/api/v1/records/customer/1%20OR%201=1").await.expect(404);
    for key in ["name\"; --", "crm_meta", "Name"] {
        let reply = t.list("customer", Some(json!({"field": key, "op": "eq", "value": "x"})), "").await;
        assert_eq!(reply.status.as_u16(), 400, "{key}");
    }
    let big = vec![b'a'; 10 * 1024 * 1024];
    let reply = t
        .raw(axum::http::Method::POST, "/api/v1/records/customer", big, Some("application/json"), Some(&t.token))
        .await;
    assert_eq!(reply.status.as_u16(), 413);
    assert_eq!(reply.body["code"], "payload_too_large");
    let reply = t
        .raw(
            axum::http::Method::POST,
            "/api/v1/records/customer",
            b"{\"name\": ".to_vec(),
            Some("application/json"),
            Some(&t.token),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(reply.body["code"], "malformed_json");
    let reply = t
        .raw(
            axum::http::Method::POST,
            "/api/v1/records/customer",
            b"name=x".to_vec(),
            Some("text/plain"),
            Some(&t.token),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400);
    let nul = t.post("/api/v1/records/customer", json!({"name": "a\u{0}b"})).await.expect(422);
    assert_eq!(nul["errors"][0]["code"], "invalid_text");
    let long = t.post("/api/v1/records/customer", json!({"name": "长".repeat(201)})).await.expect(422);
    assert_eq!(long["errors"][0]["code"], "too_long");
}

async fn concurrent_writes_all_land_or_fail_alone(t: TestApp) {
    let t = std::sync::Arc::new(t);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            // Every third product repeats a code: exactly one of each pair may land.
            let code = if i % 3 == 0 { format!("DUP-{}", i % 2) } else { format!("P-{i}") };
            let reply = t.post("/api/v1/records/product", json!({"name": format!("产品{i}"), "code": code})).await;
            (i, reply.status.as_u16(), reply.body)
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let (i, status, body) = task.await.unwrap();
        match status {
            201 => created.push(body["id"].as_str().unwrap().to_owned()),
            422 => assert_eq!(body["errors"][0]["field"], "code", "request {i}: {body}"),
            other => panic!("request {i}: {other} {body}"),
        }
    }
    assert_eq!(created.len(), 40 + 2, "every unique code lands, one of each duplicate");
    let listed = t.list("product", None, "count=true&limit=1").await.expect(200);
    assert_eq!(listed["total"], 42);
    for id in created.iter().take(5) {
        t.get(&format!("/api/v1/records/product/{id}")).await.expect(200);
    }
    let audit = t.get(&format!("/api/v1/records/product/{}/history", created[0])).await.expect(200);
    assert_eq!(audit["data"][0]["action"], "create", "the audit row committed with its record");
}

async fn a_row_the_database_refuses_undoes_its_whole_import(t: TestApp) {
    let admin = t.list("user", Some(json!({"field": "login", "op": "eq", "value": "admin"})), "").await.expect(200);
    let admin: uuid::Uuid = admin["data"][0]["id"].as_str().unwrap().parse().unwrap();
    let principal = t.app.principal(admin).await.unwrap();
    // A thousand rows: a large write, and several statements of many rows each. The last
    // row's unique code is taken by someone else after the import was checked and before it
    // is written, which only the database itself can refuse: the statement stops there with
    // the rows before it written, and the transaction must undo them all.
    let products: Vec<Value> =
        (0..1000).map(|i| json!({"name": format!("导入产品{i}"), "code": format!("P{i}")})).collect();
    let mut unit = Unit::new(&t.app, &principal, Source::Import).await.unwrap();
    unit.create_many("product", &products).await.unwrap();
    t.create("product", json!({"name": "抢先的产品", "code": "P999"})).await;
    assert!(unit.commit().await.is_err(), "the database refuses the taken code");
    assert_eq!(t.list("product", None, "count=true").await.expect(200)["total"], 1, "nothing of it is left");

    let rows: Vec<Value> = (0..1000).map(|i| json!({"name": format!("导入客户{i}")})).collect();
    let again = t.post("/api/v1/records/customer/bulk/create", json!({"records": rows})).await.expect(201);
    assert_eq!(again["created"], 1000, "the writer goes on after the failure");
    t.create("customer", json!({"name": "之后的一条"})).await;
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 1001);
    let id = again["ids"][0].as_str().unwrap();
    let history = t.get(&format!("/api/v1/records/customer/{id}/history")).await.expect(200);
    assert_eq!(history["data"][0]["action"], "create", "each imported record has its audit row");
    // Auto-numbers are set into statements built before the transaction: they run on in the
    // records' order across the statements' boundaries (500 rows each).
    let mut numbers = Vec::new();
    for row in [0, 1, 499, 500, 999] {
        let id = again["ids"][row].as_str().unwrap();
        let record = t.get(&format!("/api/v1/records/customer/{id}")).await.expect(200);
        let code = record["code"].as_str().unwrap();
        numbers.push((row, code.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<usize>().unwrap()));
    }
    let (_, first) = numbers[0];
    assert!(numbers.iter().all(|&(row, number)| number == first + row), "{numbers:?}");
}

async fn imports_and_single_writes_interleave(t: TestApp) {
    let admin = t.list("user", Some(json!({"field": "login", "op": "eq", "value": "admin"})), "").await.expect(200);
    let admin: uuid::Uuid = admin["data"][0]["id"].as_str().unwrap().parse().unwrap();
    let principal = t.app.principal(admin).await.unwrap();
    let t = std::sync::Arc::new(t);
    let rows = |tag: &str| -> Vec<Value> { (0..1000).map(|i| json!({"name": format!("{tag}{i}")})).collect() };
    // Two good imports, one the database refuses at its last row (its code was taken after
    // it was checked), and single creates, all at once: large writes commit alone, single
    // writes share commits, and the failure undoes only its own rows whichever group it
    // lands in.
    let bad: Vec<Value> = (0..1000).map(|i| json!({"name": format!("坏{i}"), "code": format!("坏{i}")})).collect();
    let refused = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut unit = Unit::new(&t.app, &principal, Source::Import).await.unwrap();
            unit.create_many("product", &bad).await.unwrap();
            t.create("product", json!({"name": "抢先的产品", "code": "坏999"})).await;
            unit.commit().await.is_err()
        })
    };
    let mut tasks = Vec::new();
    for tag in ["甲", "乙"] {
        let t = t.clone();
        let body = json!({"records": rows(tag)});
        tasks.push(tokio::spawn(async move {
            t.post("/api/v1/records/customer/bulk/create", body).await.expect(201)["created"].as_u64().unwrap()
        }));
    }
    for i in 0..30 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.post("/api/v1/records/customer", json!({"name": format!("单{i}")})).await.expect(201);
            1
        }));
    }
    let mut landed = 0;
    for task in tasks {
        landed += task.await.unwrap();
    }
    assert!(refused.await.unwrap(), "the import with a repeated id is refused");
    assert_eq!(landed, 2030);
    assert_eq!(
        t.list("customer", None, "count=true").await.expect(200)["total"],
        2030,
        "nothing of the refused import"
    );
    let refused_rows =
        t.list("product", Some(json!({"field": "name", "op": "starts_with", "value": "坏"})), "count=true");
    assert_eq!(refused_rows.await.expect(200)["total"], 0, "nothing of the refused import");
}
