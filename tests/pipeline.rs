//! The one save pipeline, seen from outside: the holes that writes taking different paths
//! opened are closed whichever path a write takes, on SQLite and PostgreSQL.

mod support;

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};
use support::TestApp;

backends!(
    a_read_share_does_not_let_one_take_a_record,
    references_are_checked_through_the_read_scope,
    disabling_a_user_ends_their_sessions_and_tokens_at_once,
    lead_conversion_stays_within_the_scope,
    totals_count_every_line_whoever_saves,
    deleting_restoring_or_moving_a_line_recomputes_its_parents,
    the_last_administrator_stays,
    an_empty_owner_is_the_caller,
    imports_run_rules_and_every_write_names_its_source,
    a_new_rollup_counts_what_is_there_then_follows,
);

fn id(record: &Value) -> &str {
    record["id"].as_str().expect("a record has an id")
}

/// Two departments, each with a manager and a sales rep.
struct Sales {
    t: TestApp,
    /// login → (user id, token)
    people: std::collections::BTreeMap<&'static str, (String, String)>,
}

impl Sales {
    async fn new(t: TestApp) -> Self {
        let east = t.create("department", json!({"name": "华东区"})).await;
        let north = t.create("department", json!({"name": "华北区"})).await;
        let mut people = std::collections::BTreeMap::new();
        for (login, role, department) in [
            ("mgr_east", "manager", &east),
            ("rep_east", "sales_rep", &east),
            ("rep_east2", "sales_rep", &east),
            ("mgr_north", "manager", &north),
        ] {
            people.insert(login, t.user(login, &[role], Some(id(department))).await);
        }
        Sales { t, people }
    }

    fn user(&self, login: &str) -> &str {
        &self.people[login].0
    }

    async fn call(&self, login: &str, method: Method, uri: &str, body: Option<Value>) -> support::Reply {
        self.t.as_user(&self.people[login].1, method, uri, body).await
    }
}

/// Defect 1: a record shared for reading could be taken over through bulk assign.
async fn a_read_share_does_not_let_one_take_a_record(t: TestApp) {
    let sales = Sales::new(t).await;
    let customer = sales
        .call("rep_east", Method::POST, "/api/v1/records/customer", Some(json!({"name": "只读共享客户"})))
        .await
        .expect(201);
    let share = json!({"ids": [id(&customer)], "user": sales.user("mgr_north"), "access": "read"});
    sales.call("rep_east", Method::POST, "/api/v1/records/customer/bulk/share", Some(share)).await.expect(200);
    let path = format!("/api/v1/records/customer/{}", id(&customer));
    sales.call("mgr_north", Method::GET, &path, None).await.expect(200);
    sales.call("mgr_north", Method::PATCH, &path, Some(json!({"name": "改名", "version": 1}))).await.expect(403);
    let taken = sales
        .call(
            "mgr_north",
            Method::POST,
            "/api/v1/records/customer/bulk/assign",
            Some(json!({"ids": [id(&customer)], "owner": sales.user("mgr_north")})),
        )
        .await
        .expect(200);
    assert_eq!(taken["results"][0]["status"], 403, "{taken}");
    let stored = sales.t.get(&path).await.expect(200);
    assert_eq!(stored["owner"], sales.user("rep_east"), "the owner did not change");
    assert_eq!(stored["version"], 1);
    // Within their own scope, a manager still assigns.
    let mine = sales
        .call("rep_east", Method::POST, "/api/v1/records/customer", Some(json!({"name": "本部门客户"})))
        .await
        .expect(201);
    let moved = sales
        .call(
            "mgr_east",
            Method::POST,
            "/api/v1/records/customer/bulk/assign",
            Some(json!({"ids": [id(&mine)], "owner": sales.user("rep_east2")})),
        )
        .await
        .expect(200);
    assert_eq!(moved["results"][0]["status"], 200, "{moved}");
}

/// Defect 2: a lookup could point at a record the caller cannot see, and the answer told
/// them it exists.
async fn references_are_checked_through_the_read_scope(t: TestApp) {
    let sales = Sales::new(t).await;
    let theirs = sales
        .call("rep_east2", Method::POST, "/api/v1/records/customer", Some(json!({"name": "别人的客户"})))
        .await
        .expect(201);
    let absent = uuid::Uuid::now_v7().to_string();
    let mut answers = Vec::new();
    for customer in [id(&theirs), absent.as_str()] {
        let refused = sales
            .call(
                "rep_east",
                Method::POST,
                "/api/v1/records/contact",
                Some(json!({"name": "联系人", "customer": customer})),
            )
            .await
            .expect(422);
        let error = &refused["errors"][0];
        assert_eq!(error["field"], "customer");
        answers.push((error["code"].clone(), error["message"].as_str().unwrap().replace(customer, "<id>")));
    }
    assert_eq!(answers[0], answers[1], "not theirs and not there read the same");
    assert_eq!(answers[0].0, "not_found");
    // The same through a change and through a bulk update.
    let mine = sales
        .call("rep_east", Method::POST, "/api/v1/records/customer", Some(json!({"name": "自己的客户"})))
        .await
        .expect(201);
    let contact = sales
        .call("rep_east", Method::POST, "/api/v1/records/contact", Some(json!({"name": "张三", "customer": id(&mine)})))
        .await
        .expect(201);
    let path = format!("/api/v1/records/contact/{}", id(&contact));
    sales
        .call("rep_east", Method::PATCH, &path, Some(json!({"customer": id(&theirs), "version": 1})))
        .await
        .expect(422);
    let bulk = sales
        .call(
            "rep_east",
            Method::POST,
            "/api/v1/records/contact/bulk/update",
            Some(json!({"ids": [id(&contact)], "set": {"customer": id(&theirs)}})),
        )
        .await
        .expect(200);
    assert_eq!(bulk["results"][0]["status"], 422, "{bulk}");
    assert_eq!(sales.t.get(&path).await.expect(200)["customer"], id(&mine));
    // Their manager sees the colleague's customer, so may point at it.
    sales
        .call(
            "mgr_east",
            Method::POST,
            "/api/v1/records/contact",
            Some(json!({"name": "李四", "customer": id(&theirs)})),
        )
        .await
        .expect(201);
}

/// Defect 3: disabling a user by editing their record left their token working.
async fn disabling_a_user_ends_their_sessions_and_tokens_at_once(t: TestApp) {
    let (user, token) = t.user("leaver", &["sales_rep"], None).await;
    let login = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"login": "leaver", "password": support::USER_PASSWORD})),
            Some(""),
        )
        .await;
    assert_eq!(login.status.as_u16(), 200, "{}", login.body);
    let cookie = login.set_cookie.unwrap().split(';').next().unwrap().to_owned();
    t.as_user(&token, Method::GET, "/api/v1/records/customer", None).await.expect(200);
    let session = t.with_cookie(Method::GET, "/api/v1/auth/session", None, &cookie, None).await;
    assert_eq!(session.status.as_u16(), 200);

    let path = format!("/api/v1/records/user/{user}");
    let version = t.get(&path).await.expect(200)["version"].clone();
    t.patch(&path, json!({"active": false, "version": version})).await.expect(200);
    assert_eq!(t.as_user(&token, Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 401);
    let session = t.with_cookie(Method::GET, "/api/v1/auth/session", None, &cookie, None).await;
    assert_eq!(session.status.as_u16(), 401);
    // Enabled again, the old token stays revoked: it was ended, not only refused.
    let version = t.get(&path).await.expect(200)["version"].clone();
    t.patch(&path, json!({"active": true, "version": version})).await.expect(200);
    assert_eq!(t.as_user(&token, Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 401);
    assert!(t.login("leaver", support::USER_PASSWORD).await.is_some(), "they may sign in again");
}

/// Defect 4: converting a lead named after another rep's customer told its id, and
/// attached records to it.
async fn lead_conversion_stays_within_the_scope(t: TestApp) {
    let sales = Sales::new(t).await;
    let theirs = sales
        .call("rep_east2", Method::POST, "/api/v1/records/customer", Some(json!({"name": "华东重工集团"})))
        .await
        .expect(201);
    let lead = sales
        .call(
            "rep_east",
            Method::POST,
            "/api/v1/records/lead",
            Some(json!({"name": "王经理", "company": "华东重工集团"})),
        )
        .await
        .expect(201);
    let converted = sales
        .call("rep_east", Method::POST, "/api/v1/leads/convert", Some(json!({"ids": [id(&lead)]})))
        .await
        .expect(200);
    let result = &converted["results"][0];
    assert_eq!(result["status"], 422, "{converted}");
    assert_eq!(result["error"]["errors"][0]["code"], "duplicate");
    assert!(!result.to_string().contains(id(&theirs)), "the other rep's customer is not named: {result}");
    let attached = sales
        .call(
            "rep_east",
            Method::POST,
            "/api/v1/leads/convert",
            Some(json!({"ids": [id(&lead)], "customer": id(&theirs)})),
        )
        .await
        .expect(200);
    assert_eq!(attached["results"][0]["status"], 422, "{attached}");
    for entity in ["contact", "opportunity"] {
        let all = sales.t.list(entity, None, "count=true").await.expect(200);
        assert_eq!(all["total"], 0, "nothing was attached to the customer: {entity}");
    }
    let lead_now = sales.t.get(&format!("/api/v1/records/lead/{}", id(&lead))).await.expect(200);
    assert_ne!(lead_now["status"], "converted");
}

/// Defect 6: a total recomputed by a rule read only what the saving user could see.
async fn totals_count_every_line_whoever_saves(t: TestApp) {
    let sales = Sales::new(t).await;
    let customer = sales
        .call("rep_east", Method::POST, "/api/v1/records/customer", Some(json!({"name": "报价客户"})))
        .await
        .expect(201);
    let quote = sales
        .call(
            "rep_east",
            Method::POST,
            "/api/v1/records/quote",
            Some(json!({"name": "报价一", "customer": id(&customer)})),
        )
        .await
        .expect(201);
    let line = |name: &str, price: &str| json!({"name": name, "quote": id(&quote), "quantity": 1, "price": price});
    let first = sales
        .call("rep_east", Method::POST, "/api/v1/records/quote_line", Some(line("一", "153.29")))
        .await
        .expect(201);
    sales.call("mgr_east", Method::POST, "/api/v1/records/quote_line", Some(line("经理加的", "50"))).await.expect(201);
    let quote_path = format!("/api/v1/records/quote/{}", id(&quote));
    assert_eq!(sales.t.get(&quote_path).await.expect(200)["total_amount"], "203.29");
    let visible = sales.call("rep_east", Method::GET, "/api/v1/records/quote_line", None).await.expect(200);
    assert_eq!(visible["data"].as_array().unwrap().len(), 1, "the rep does not see the manager's line");
    sales
        .call(
            "rep_east",
            Method::PATCH,
            &format!("/api/v1/records/quote_line/{}", id(&first)),
            Some(json!({"price": "160", "version": first["version"]})),
        )
        .await
        .expect(200);
    assert_eq!(sales.t.get(&quote_path).await.expect(200)["total_amount"], "210.00", "the manager's line counts");
    let history = sales.t.get(&format!("{quote_path}/history")).await.expect(200);
    let last = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "rollup", "{last}");
}

/// Defect 7: deleting or restoring a line left its parent's total stale.
async fn deleting_restoring_or_moving_a_line_recomputes_its_parents(t: TestApp) {
    let customer = t.create("customer", json!({"name": "订单客户"})).await;
    let first = t.create("quote", json!({"name": "报价甲", "customer": id(&customer)})).await;
    let second = t.create("quote", json!({"name": "报价乙", "customer": id(&customer)})).await;
    let total = |quote: &Value| {
        let path = format!("/api/v1/records/quote/{}", id(quote));
        let t = &t;
        async move { t.get(&path).await.expect(200)["total_amount"].clone() }
    };
    let a = t.create("quote_line", json!({"name": "甲一", "quote": id(&first), "quantity": 2, "price": "50"})).await;
    let b = t.create("quote_line", json!({"name": "甲二", "quote": id(&first), "quantity": 1, "price": "25.5"})).await;
    assert_eq!(total(&first).await, "125.50");
    t.delete(&format!("/api/v1/records/quote_line/{}", id(&b))).await.expect(204);
    assert_eq!(total(&first).await, "100.00", "a deleted line leaves the total");
    t.post(&format!("/api/v1/records/quote_line/{}/restore", id(&b)), json!({})).await.expect(200);
    assert_eq!(total(&first).await, "125.50", "a restored line comes back into it");
    t.patch(&format!("/api/v1/records/quote_line/{}", id(&a)), json!({"quote": id(&second), "version": 1}))
        .await
        .expect(200);
    assert_eq!(total(&first).await, "25.50", "the line left its first quote");
    assert_eq!(total(&second).await, "100.00", "and joined the second");
    let removed = t.post("/api/v1/records/quote_line/bulk/delete", json!({"ids": [id(&a), id(&b)]})).await.expect(200);
    assert_eq!(removed["results"][1]["status"], 200);
    assert_eq!(total(&first).await, "0.00");
    assert_eq!(total(&second).await, "0.00");
    // A total is the engine's: nobody writes it by hand.
    let refused =
        t.patch(&format!("/api/v1/records/quote/{}", id(&first)), json!({"total_amount": "1", "version": 6})).await;
    assert_eq!(refused.expect(422)["errors"][0]["code"], "read_only");
    // Orders keep theirs the same way.
    let order = t.create("order", json!({"name": "订单", "customer": id(&customer)})).await;
    let line = t.create("order_line", json!({"name": "行", "order": id(&order), "quantity": 3, "price": "10"})).await;
    let order_path = format!("/api/v1/records/order/{}", id(&order));
    assert_eq!(t.get(&order_path).await.expect(200)["total_amount"], "30.00");
    t.delete(&format!("/api/v1/records/order_line/{}", id(&line))).await.expect(204);
    assert_eq!(t.get(&order_path).await.expect(200)["total_amount"], "0.00");
}

/// A rollup added to records that already have lines totals them at once, then follows.
async fn a_new_rollup_counts_what_is_there_then_follows(t: TestApp) {
    let customer = t.create("customer", json!({"name": "统计客户"})).await;
    let quote = t.create("quote", json!({"name": "已有明细的报价", "customer": id(&customer)})).await;
    let empty = t.create("quote", json!({"name": "没有明细的报价", "customer": id(&customer)})).await;
    for price in ["10", "20"] {
        t.create("quote_line", json!({"name": "行", "quote": id(&quote), "quantity": 1, "price": price})).await;
    }
    let added = t
        .post(
            "/api/v1/meta/entities/quote/fields",
            json!({"name": "line_count", "type": "integer", "label": {"zh-CN": "明细数", "en": "Lines"},
                   "rollup": {"from": "quote_line", "via": "quote"}}),
        )
        .await
        .expect(201);
    assert!(added.to_string().contains("compute the rollup `quote.line_count`"), "{added}");
    let count = |quote: &Value| {
        let path = format!("/api/v1/records/quote/{}", id(quote));
        let t = &t;
        async move { t.get(&path).await.expect(200)["line_count"].clone() }
    };
    assert_eq!(count(&quote).await, 2);
    assert_eq!(count(&empty).await, 0);
    t.create("quote_line", json!({"name": "新行", "quote": id(&quote), "quantity": 1, "price": "1"})).await;
    assert_eq!(count(&quote).await, 3);
    // A rollup names a lookup that points back, and a number of its own kind.
    let wrong = t
        .post(
            "/api/v1/meta/entities/quote/fields",
            json!({"name": "wrong_total", "type": "money", "label": {"zh-CN": "错", "en": "Wrong"},
                   "rollup": {"from": "quote_line", "via": "product", "sum": "name"}}),
        )
        .await
        .expect(422);
    let paths: Vec<&str> = wrong["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/rollup/via")) && paths.iter().any(|p| p.ends_with("/rollup/sum")),
        "{wrong}"
    );
}

/// Defect 10: the only administrator could delete itself, and nobody could sign in again.
async fn the_last_administrator_stays(t: TestApp) {
    let me = t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/records/user/{me}");
    let refused = t.delete(&path).await.expect(422);
    assert_eq!(refused["errors"][0]["code"], "users_are_disabled");
    let bulk = t.post("/api/v1/records/user/bulk/delete", json!({"ids": [me]})).await.expect(200);
    assert_eq!(bulk["results"][0]["status"], 422);
    let version = t.get(&path).await.expect(200)["version"].clone();
    let own = t.patch(&path, json!({"active": false, "version": version})).await.expect(422);
    assert_eq!(own["errors"][0]["field"], "active");
    t.post(&format!("/api/v1/admin/users/{me}/disable"), json!({})).await.expect(422);
    let roles = t.put(&format!("/api/v1/admin/users/{me}/roles"), json!({"roles": ["manager"]})).await.expect(422);
    assert_eq!(roles["errors"][0]["code"], "last_administrator");
    let demoted = t.get("/api/v1/meta/roles/administrator").await.expect(200);
    let mut demoted = demoted.clone();
    demoted["admin"] = json!(false);
    t.put("/api/v1/meta/roles/administrator", demoted).await.expect(422);
    assert!(t.login("admin", support::ADMIN_PASSWORD).await.is_some(), "the administrator still signs in");

    // With a second administrator, one may step down, and the other then may not.
    let (second, token) = t.user("admin2", &["administrator"], None).await;
    t.put(&format!("/api/v1/admin/users/{me}/roles"), json!({"roles": ["manager"]})).await.expect(200);
    let back = t
        .as_user(
            &token,
            Method::PUT,
            &format!("/api/v1/admin/users/{second}/roles"),
            Some(json!({"roles": ["manager"]})),
        )
        .await
        .expect(422);
    assert_eq!(back["errors"][0]["code"], "last_administrator");
    let version = t.as_user(&token, Method::GET, &path, None).await.expect(200)["version"].clone();
    t.as_user(&token, Method::PATCH, &path, Some(json!({"active": false, "version": version}))).await.expect(200);
    assert!(t.login("admin", support::ADMIN_PASSWORD).await.is_none(), "a disabled administrator is out");
    assert!(t.login("admin2", support::USER_PASSWORD).await.is_some());
}

/// Defect 11: an explicit null owner answered 500.
async fn an_empty_owner_is_the_caller(t: TestApp) {
    let me = t.get("/api/v1/auth/session").await.expect(200)["user_id"].clone();
    for entity in ["price_list", "campaign"] {
        let created = t
            .post(&format!("/api/v1/records/{entity}"), json!({"name": format!("空负责人{entity}"), "owner": null}))
            .await
            .expect(201);
        assert_eq!(created["owner"], me, "{entity}");
        let cleared = t
            .patch(&format!("/api/v1/records/{entity}/{}", id(&created)), json!({"owner": null, "version": 1}))
            .await
            .expect(422);
        assert_eq!(cleared["errors"][0]["code"], "required");
    }
}

/// Imports go through the same pipeline: rules run on every row; and each audit row says
/// where its write came from.
async fn imports_run_rules_and_every_write_names_its_source(t: TestApp) {
    let rule = json!({"name": "customer_class", "label": {"zh-CN": "客户分类", "en": "Class"}, "entity": "customer",
        "event": "before_save", "source": "if record.annual_revenue != () && record.annual_revenue > decimal(\"1000000\") { record.class = \"key\"; }"});
    t.put("/api/v1/meta/scripts/customer_class", rule).await.expect(200);
    let imported = t
        .post(
            "/api/v1/records/customer/bulk/create",
            json!({"records": [{"name": "大客户", "annual_revenue": "5000000"}, {"name": "小客户", "annual_revenue": "10"}]}),
        )
        .await
        .expect(201);
    let big = t.get(&format!("/api/v1/records/customer/{}", imported["ids"][0].as_str().unwrap())).await.expect(200);
    let small = t.get(&format!("/api/v1/records/customer/{}", imported["ids"][1].as_str().unwrap())).await.expect(200);
    assert_eq!(big["class"], "key", "the import ran the rule");
    assert_eq!(small["class"], Value::Null);
    let history = t.get(&format!("/api/v1/records/customer/{}/history", id(&big))).await.expect(200);
    assert_eq!(history["data"][0]["source"], "import");
    let one = t.create("customer", json!({"name": "接口客户"})).await;
    let history = t.get(&format!("/api/v1/records/customer/{}/history", id(&one))).await.expect(200);
    assert_eq!(history["data"][0]["source"], "api");
}

/// Defect 5: a runaway rule on an update held the writer, and every other write waited for it.
async fn a_runaway_rule_costs_only_its_own_request(t: TestApp) {
    let t = std::sync::Arc::new(t);
    let rule = json!({"name": "stuck", "label": {"zh-CN": "卡住", "en": "Stuck"}, "entity": "activity",
        "event": "validate", "source": "if old != () { loop {} }"});
    let activities: Vec<Value> = {
        let mut created = Vec::new();
        for i in 0..4 {
            created.push(t.create("activity", json!({"name": format!("行动{i}")})).await);
        }
        created
    };
    t.put("/api/v1/meta/scripts/stuck", rule).await.expect(200);
    let mut slow = Vec::new();
    for activity in &activities {
        let t = t.clone();
        let path = format!("/api/v1/records/activity/{}", id(activity));
        slow.push(tokio::spawn(
            async move { t.patch(&path, json!({"name": "改", "version": 1})).await.status.as_u16() },
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    t.create("customer", json!({"name": "不受影响"})).await;
    let took = began.elapsed();
    for update in slow {
        assert_eq!(update.await.unwrap(), 422, "the runaway rule is stopped and refuses its own save");
    }
    assert!(took < Duration::from_secs(1), "an unrelated create waited {took:?} for the rules of others");
}

fn runaway_budget(config: &mut crm::config::Config) {
    // Long enough that a create waiting behind even one rule is told apart from one that
    // does not wait.
    config.rule_budget = Duration::from_secs(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_rule_sqlite() {
    a_runaway_rule_costs_only_its_own_request(TestApp::sqlite_with(runaway_budget).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_rule_postgres() {
    if let Some(t) = TestApp::postgres_with(runaway_budget).await {
        a_runaway_rule_costs_only_its_own_request(t).await;
    }
}
