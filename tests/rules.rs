//! Rules and stage workflows on SQLite and PostgreSQL: every event of the save pipeline, the
//! core package's rules, stage moves with their checks, guards and history, the sandbox, the
//! dry run, and scheduled reminders driven by a clock the test chooses.

mod support;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use support::TestApp;

backends!(
    core_rules_price_lines_and_total_their_parents,
    every_save_event_runs_and_a_refusal_writes_nothing,
    stage_moves_check_fields_and_guards_and_are_recorded,
    broken_and_runaway_scripts_are_refused_with_their_place,
    a_dry_run_says_what_would_happen_and_saves_nothing,
    scheduled_rules_leave_reminders_once_per_slot,
    approvals_lock_records_for_reps_not_approvers,
    leads_convert_to_customer_contact_and_opportunity,
    assignment_and_activity_stage_rules,
    each_campaign_type_has_its_stages,
    service_levels_set_targets_in_working_hours_and_remind,
);

/// Installs a rule through the metadata API.
async fn install(t: &TestApp, name: &str, entity: Option<&str>, event: &str, extra: Value, source: &str) -> TestApp_ {
    let mut doc = json!({"name": name, "label": {"zh-CN": name, "en": name}, "event": event, "source": source});
    if let Some(entity) = entity {
        doc["entity"] = json!(entity);
    }
    if let Value::Object(extra) = extra {
        doc.as_object_mut().unwrap().extend(extra);
    }
    let reply = t.put(&format!("/api/v1/meta/scripts/{name}"), doc).await;
    TestApp_ { status: reply.status.as_u16(), body: reply.body }
}

/// What installing a rule answered.
struct TestApp_ {
    status: u16,
    body: Value,
}

/// A user with a role, signed in with a new password; returns their id and token.
async fn user(t: &TestApp, login: &str, role: &str, department: Option<&str>) -> (String, String) {
    let first = "first-Password-1";
    let body =
        json!({"user": {"name": login, "login": login, "department": department}, "password": first, "roles": [role]});
    let id = t.post("/api/v1/admin/users", body).await.expect(201)["id"].as_str().unwrap().to_owned();
    let token = t.login(login, first).await.expect("a new user signs in");
    let change = json!({"current_password": first, "password": "second-Password-2"});
    let changed = t.call(axum::http::Method::POST, "/api/v1/auth/password", Some(change), Some(&token)).await;
    assert_eq!(changed.status.as_u16(), 204);
    (id, token)
}

fn id(record: &Value) -> String {
    record["id"].as_str().expect("an id").to_owned()
}

async fn core_rules_price_lines_and_total_their_parents(t: TestApp) {
    let customer = t.create("customer", json!({"name": "报价客户"})).await;
    let quote = t.create("quote", json!({"name": "年度报价", "customer": id(&customer)})).await;
    let line = t
        .create(
            "quote_line",
            json!({"name": "服务器", "quote": id(&quote), "quantity": "3", "price": "10.15", "discount": "12.5"}),
        )
        .await;
    assert_eq!(line["amount"], "26.64", "3 × 10.15 × (1 − 12.5%) = 26.64375, rounded to the fen");
    let second =
        t.create("quote_line", json!({"name": "安装", "quote": id(&quote), "quantity": 1, "price": "100"})).await;
    assert_eq!(second["amount"], "100.00");
    let stored = t.get(&format!("/api/v1/records/quote/{}", id(&quote))).await.expect(200);
    assert_eq!(stored["total_amount"], "126.64", "the quote totals its lines");

    let changed = t
        .patch(&format!("/api/v1/records/quote_line/{}", id(&line)), json!({"quantity": "4", "version": 1}))
        .await
        .expect(200);
    assert_eq!(changed["amount"], "35.53", "4 × 10.15 × 0.875 = 35.525 → 35.53");
    let stored = t.get(&format!("/api/v1/records/quote/{}", id(&quote))).await.expect(200);
    assert_eq!(stored["total_amount"], "135.53");
    // A typed amount does not survive: the formula owns the field.
    let forced = t
        .patch(&format!("/api/v1/records/quote_line/{}", id(&second)), json!({"amount": "1", "version": 1}))
        .await
        .expect(200);
    assert_eq!(forced["amount"], "100.00");

    // Opportunities' probability follows their stage (the sales stage set allows no override).
    let opportunity = t
        .create(
            "opportunity",
            json!({"name": "扩容", "customer": id(&customer), "stage": "proposal", "probability": "90"}),
        )
        .await;
    assert_eq!(opportunity["probability"], "50.00");
}

async fn every_save_event_runs_and_a_refusal_writes_nothing(t: TestApp) {
    let owner = t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().unwrap().to_owned();
    for (name, event, extra, source) in [
        ("class_default", "default", json!({"field": "class"}), r#""normal""#),
        ("tidy_name", "before_save", json!({}), "record.name.trim(); record.fax = `${record.phone ?? \"\"}`;"),
        (
            "revenue_band",
            "formula",
            json!({"field": "remark", "order": 1}),
            r#"if (record.annual_revenue ?? 0) >= 1000000 { "大客户" } else { "中小客户" }"#,
        ),
        (
            "no_test_names",
            "validate",
            json!({}),
            r#"if record.name.contains("测试") { error("name", "客户名称不能包含“测试”"); }
               if old != () && old.status == "lost" && record.status == "active" { error("status", "流失客户须先转为潜在客户"); }"#,
        ),
        (
            "welcome_call",
            "after_save",
            json!({}),
            r#"if old == () {
                   notify(record.owner, `新客户：${record.name}`);
                   create("activity", #{ name: `首次拜访 ${record.name}`, type: "visit", status: "planned", customer: record.id });
               }"#,
        ),
    ] {
        let installed = install(&t, name, Some("customer"), event, extra, source).await;
        assert_eq!(installed.status, 200, "{name}: {}", installed.body);
    }
    let created =
        t.create("customer", json!({"name": "  立友信  ", "annual_revenue": "2000000", "phone": "010-1234"})).await;
    assert_eq!(created["name"], "立友信", "before_save trimmed the name");
    assert_eq!(created["class"], "normal", "the default filled the empty field");
    assert_eq!(created["remark"], "大客户", "the formula is stored");
    assert_eq!(created["fax"], "010-1234");
    let found =
        t.list("customer", Some(json!({"field": "remark", "op": "eq", "value": "大客户"})), "").await.expect(200);
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "formula values filter like any column");
    let activities =
        t.list("activity", Some(json!({"field": "customer", "op": "eq", "value": id(&created)})), "").await.expect(200);
    assert_eq!(activities["data"][0]["name"], "首次拜访 立友信", "after_save created the visit");
    let reminders = t.get("/api/v1/reminders").await.expect(200);
    assert_eq!(reminders["data"][0]["message"], "新客户：立友信");
    assert_eq!(reminders["data"][0]["record_id"], created["id"]);
    assert_eq!(created["owner"], owner.as_str());

    // A rule's refusal is a 422 naming the field, and nothing is written — not even effects.
    let refused = t.post("/api/v1/records/customer", json!({"name": "测试公司"})).await.expect(422);
    assert_eq!(refused["errors"][0]["field"], "name");
    assert_eq!(refused["errors"][0]["message"], "客户名称不能包含“测试”");
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 1);
    assert_eq!(t.list("activity", None, "count=true").await.expect(200)["total"], 1);
    assert_eq!(t.get("/api/v1/reminders").await.expect(200)["data"].as_array().unwrap().len(), 1);

    // `old` is the stored record on a change.
    let lost = t
        .patch(&format!("/api/v1/records/customer/{}", id(&created)), json!({"status": "lost", "version": 1}))
        .await
        .expect(200);
    let back = t
        .patch(
            &format!("/api/v1/records/customer/{}", id(&created)),
            json!({"status": "active", "version": lost["version"]}),
        )
        .await
        .expect(422);
    assert_eq!(back["errors"][0]["field"], "status");
    // A rule that sets a value the field cannot hold is refused like a user's input.
    let bad =
        install(&t, "bad_set", Some("customer"), "before_save", json!({}), r#"record.industry = "mining";"#).await;
    assert_eq!(bad.status, 200);
    let refused = t.post("/api/v1/records/customer", json!({"name": "另一家"})).await.expect(422);
    assert_eq!(refused["errors"][0]["field"], "industry");
    // Reminders are marked done by their owner.
    let reminder =
        t.get("/api/v1/reminders?when=today").await.expect(200)["data"][0]["id"].as_str().unwrap().to_owned();
    t.post(&format!("/api/v1/reminders/{reminder}/done"), json!({})).await.expect(204);
    assert!(t.get("/api/v1/reminders").await.expect(200)["data"].as_array().unwrap().is_empty());
    t.post(&format!("/api/v1/reminders/{reminder}/done"), json!({})).await.expect(404);
}

async fn stage_moves_check_fields_and_guards_and_are_recorded(t: TestApp) {
    // Entering "proposal" needs an amount; a guard refuses winning without a close date.
    let mut sales = t.get("/api/v1/meta/stage_sets/sales").await.expect(200);
    sales["stages"][2]["required"] = json!(["amount"]);
    t.put("/api/v1/meta/stage_sets/sales", sales).await.expect(200);
    let guard = r#"if record.stage == "won" && record.expected_close == () { error("", "赢单前请填写预计成交日期"); }"#;
    assert_eq!(
        install(&t, "won_needs_close", Some("opportunity"), "before_stage_move", json!({}), guard).await.status,
        200
    );

    let customer = t.create("customer", json!({"name": "阶段客户"})).await;
    let created =
        t.create("opportunity", json!({"name": "机会", "customer": id(&customer), "stage": "initial_contact"})).await;
    let path = format!("/api/v1/records/opportunity/{}", id(&created));
    assert_eq!(created["probability"], "10.00");

    let refused = t.post(&format!("{path}/stage"), json!({"stage": "proposal"})).await.expect(422);
    assert_eq!(refused["errors"][0]["field"], "amount", "the stage says what it needs");
    assert_eq!(t.get(&path).await.expect(200)["stage"], "initial_contact", "nothing moved");
    t.patch(&path, json!({"amount": "50000", "version": 1})).await.expect(200);
    // Skipping a stage (跨阶段升迁) is allowed.
    let moved = t.post(&format!("{path}/stage"), json!({"stage": "proposal"})).await.expect(200);
    assert_eq!(moved["stage"], "proposal");
    assert_eq!(moved["probability"], "50.00", "the probability follows the stage");
    let refused = t.post(&format!("{path}/stage"), json!({"stage": "won"})).await.expect(422);
    assert_eq!(refused["errors"][0]["field"], "stage", "a guard's refusal is said on the stage");
    assert_eq!(refused["errors"][0]["message"], "赢单前请填写预计成交日期");
    // Backwards, then a stale version.
    let back = t.post(&format!("{path}/stage"), json!({"stage": "needs_analysis"})).await.expect(200);
    t.post(&format!("{path}/stage"), json!({"stage": "proposal", "version": 1})).await.expect(409);
    // A plain PATCH of the stage goes through the same checks.
    t.patch(&path, json!({"stage": "won", "version": back["version"]})).await.expect(422);
    let won = t
        .patch(&path, json!({"stage": "won", "expected_close": "2026-12-31", "version": back["version"]}))
        .await
        .expect(200);
    assert_eq!(won["probability"], "100.00");

    let history = t.get(&format!("{path}/stage-history")).await.expect(200);
    let moves: Vec<(Value, Value)> =
        history["data"].as_array().unwrap().iter().map(|m| (m["from"].clone(), m["to"].clone())).collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, json!("initial_contact")),
            (json!("initial_contact"), json!("proposal")),
            (json!("proposal"), json!("needs_analysis")),
            (json!("needs_analysis"), json!("won")),
        ]
    );
    let spent: Vec<Option<i64>> =
        history["data"].as_array().unwrap().iter().map(|m| m["seconds_in_previous"].as_i64()).collect();
    assert_eq!(spent[0], None, "entering the first stage leaves none");
    assert!(spent[1..].iter().all(|s| s.is_some_and(|s| s >= 0)), "{spent:?}");
    assert_eq!(history["data"][0]["actor"], t.get("/api/v1/auth/session").await.expect(200)["user_id"]);
    t.get("/api/v1/records/opportunity/01a2f0b3-0000-7000-8000-000000000000/stage-history").await.expect(404);
    t.post(&format!("/api/v1/records/customer/{}/stage", id(&customer)), json!({"stage": "x"})).await.expect(400);
}

async fn broken_and_runaway_scripts_are_refused_with_their_place(t: TestApp) {
    let broken = install(&t, "typo", Some("customer"), "validate", json!({}), "let a = 1;\nif a > { }").await;
    assert_eq!(broken.status, 422, "{}", broken.body);
    let message = broken.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("typo") && message.contains("line 2"), "{message}");
    assert_eq!(broken.body["errors"][0]["path"], "/source");
    t.get("/api/v1/meta/scripts/typo").await.expect(404);

    for (name, source, says) in [
        ("spin", "loop { }", "stopped"),
        ("deep", "fn f(n) { f(n + 1) } f(0);", "nested"),
        ("huge", r#"let s = "0123456789"; loop { s += s; }"#, "limit"),
        ("escape", r#"open("/etc/passwd")"#, "escape"),
        ("thrower", "let a = 1;\nthrow \"坏了\";", "line 2"),
    ] {
        assert_eq!(install(&t, name, Some("lead"), "validate", json!({}), source).await.status, 200, "{name}");
        let began = Instant::now();
        let refused = t.post("/api/v1/records/lead", json!({"name": "线索"})).await.expect(422);
        assert!(began.elapsed() < Duration::from_secs(5), "{name} was stopped in time");
        let error = &refused["errors"][0];
        assert_eq!(error["code"], "script_error", "{name}: {refused}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(name), "{name}: the script is named: {message}");
        assert!(message.contains(says) || says == "escape", "{name}: {message}");
        let disabled = json!({"name": name, "label": {"zh-CN": name, "en": name}, "entity": "lead", "event": "validate", "enabled": false, "source": source});
        t.put(&format!("/api/v1/meta/scripts/{name}"), disabled).await.expect(200);
    }
    assert_eq!(t.list("lead", None, "count=true").await.expect(200)["total"], 0, "no partial write");
    t.create("lead", json!({"name": "线索"})).await;
}

/// A slow rule runs on its own thread: other requests are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_rule_holds_up_no_other_request() {
    let t = TestApp::sqlite_with(|config| config.rule_budget = Duration::from_millis(1500)).await;
    assert_eq!(install(&t, "slow", Some("lead"), "validate", json!({}), "loop { }").await.status, 200);
    let t = std::sync::Arc::new(t);
    let slow = {
        let t = t.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let reply = t.post("/api/v1/records/lead", json!({"name": "慢"})).await;
            (reply.status.as_u16(), began.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    for _ in 0..5 {
        t.list("customer", None, "count=true").await.expect(200);
    }
    let others = began.elapsed();
    let (status, took) = slow.await.unwrap();
    assert_eq!(status, 422);
    assert!(took >= Duration::from_millis(1400), "the rule ran its whole budget ({took:?})");
    assert!(others < Duration::from_millis(1000), "five lists took {others:?} while the rule ran");
}

async fn a_dry_run_says_what_would_happen_and_saves_nothing(t: TestApp) {
    let customer = t.create("customer", json!({"name": "试算客户"})).await;
    let quote = t.create("quote", json!({"name": "试算", "customer": id(&customer)})).await;
    let line = t.create("quote_line", json!({"name": "行", "quote": id(&quote), "quantity": 2, "price": "5"})).await;
    let supplied = t
        .post(
            "/api/v1/meta/scripts/quote_line_amount/dry-run",
            json!({"record": {"quantity": "3", "price": "10.15", "discount": "12.5"}}),
        )
        .await
        .expect(200);
    assert_eq!(supplied["ok"], true);
    assert_eq!(supplied["value"], "26.64");
    let note = "update(\"quote\", record.quote, #{ remark: `明细金额 ${record.amount}` });";
    assert_eq!(install(&t, "quote_note", Some("quote_line"), "after_save", json!({}), note).await.status, 200);
    let stored = t
        .post("/api/v1/meta/scripts/quote_note/dry-run", json!({"id": id(&line), "record": {"amount": "99"}}))
        .await
        .expect(200);
    assert_eq!(stored["effects"][0]["update"]["values"]["remark"], "明细金额 99", "{stored}");
    let quote = t.get(&format!("/api/v1/records/quote/{}", id(&quote))).await.expect(200);
    assert_eq!(quote["remark"], Value::Null, "nothing saved");
    assert_eq!(quote["total_amount"], "10.00");
    assert_eq!(t.get(&format!("/api/v1/records/quote_line/{}", id(&line))).await.expect(200)["version"], 1);
    let failing = install(&t, "fails", Some("customer"), "validate", json!({}), "throw \"no\";").await;
    assert_eq!(failing.status, 200);
    let said = t.post("/api/v1/meta/scripts/fails/dry-run", json!({"id": id(&customer)})).await.expect(200);
    assert_eq!(said["ok"], false);
    assert!(said["error"].as_str().unwrap().contains("fails"));
    t.post("/api/v1/meta/scripts/nothing/dry-run", json!({})).await.expect(404);
}

async fn scheduled_rules_leave_reminders_once_per_slot(t: TestApp) {
    let now = Utc::now();
    let customer = t.create("customer", json!({"name": "久未联系"})).await;
    let stale = (now - TimeDelta::days(40)).to_rfc3339();
    let fresh = (now - TimeDelta::days(3)).to_rfc3339();
    t.create("contact", json!({"name": "老张", "customer": id(&customer), "last_contacted_at": stale})).await;
    t.create("contact", json!({"name": "小李", "customer": id(&customer), "last_contacted_at": fresh})).await;
    let this_month = now.with_timezone(&crm::schedule::business_offset()).format("%Y-%m-15").to_string();
    let order = t
        .create("order", json!({"name": "应收订单", "customer": id(&customer), "delivery_date": this_month, "payment_status": "partially"}))
        .await;
    t.post(&format!("/api/v1/records/order/{}/approval", id(&order)), json!({"action": "submit"})).await.expect(200);
    t.post(&format!("/api/v1/records/order/{}/approval", id(&order)), json!({"action": "approve"})).await.expect(200);
    t.post("/api/v1/records/order_line", json!({"name": "货款", "order": id(&order), "quantity": 1, "price": "1000"}))
        .await
        .expect(201);
    // What was paid is the sum of the order's collections.
    t.create("collection", json!({"order": id(&order), "amount": "400"})).await;
    // The approval's own reminder is not what this test is about.
    for r in t.get("/api/v1/reminders").await.expect(200)["data"].as_array().unwrap() {
        t.post(&format!("/api/v1/reminders/{}/done", r["id"].as_str().unwrap()), json!({})).await.expect(204);
    }
    // At 09:00 China time the 08:00 slot has come.
    let nine = now.with_timezone(&crm::schedule::business_offset()).date_naive().and_hms_opt(9, 0, 0).unwrap();
    let nine = nine.and_local_timezone(crm::schedule::business_offset()).unwrap().with_timezone(&Utc);
    let ran = crm::schedule::run_due(&t.app, nine).await.unwrap();
    assert_eq!(ran, 5, "the core scheduled rules ran: three each morning, one at night, one every 15 minutes");
    assert_eq!(crm::schedule::run_due(&t.app, nine + TimeDelta::minutes(5)).await.unwrap(), 0, "once per slot");
    assert_eq!(crm::schedule::run_due(&t.app, nine + TimeDelta::minutes(15)).await.unwrap(), 1, "the next quarter");
    let mine: Vec<String> = t.get("/api/v1/reminders").await.expect(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(mine.iter().any(|m| m.starts_with("老张")), "{mine:?}");
    assert!(!mine.iter().any(|m| m.starts_with("小李")), "contacted recently: no reminder");
    assert!(mine.iter().any(|m| m.contains("应收订单 ¥600")), "what is still owed this month: {mine:?}");
    // The next morning's run replaces the day's list instead of piling up.
    let english = t.get("/api/v1/reminders").await.expect(200)["data"].as_array().unwrap().clone();
    let contact = english.iter().find(|r| r["message"].as_str().unwrap().starts_with("老张")).unwrap();
    assert_eq!(contact["messages"]["en"], "老张: not contacted for 30 days", "{contact}");
    assert_eq!(contact["entity"], "contact", "the reminder links to the contact");
    assert_eq!(crm::schedule::run_due(&t.app, nine + TimeDelta::days(1)).await.unwrap(), 5);
    let open = t.get("/api/v1/reminders").await.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(open.len(), 0, "tomorrow's reminders are not due today, and today's were replaced");
}

async fn service_levels_set_targets_in_working_hours_and_remind(t: TestApp) {
    let levels = t.names("service_level", json!({"field": "name", "op": "is_null", "value": false})).await;
    assert_eq!(levels.len(), 4, "the core package brings a level per priority: {levels:?}");
    let customer = t.create("customer", json!({"name": "服务客户"})).await;
    let request = t.create("service_request", json!({"name": "打印机卡纸", "customer": id(&customer)})).await;
    assert_eq!(request["priority"], "normal");
    let at =
        |field: &str, record: &Value| chrono::DateTime::parse_from_rfc3339(record[field].as_str().unwrap()).unwrap();
    let created = at("created_at", &request);
    let weekdays: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec();
    let calendar = crm_rules::Calendar::parse(&weekdays, "09:00", "18:00", None).unwrap();
    assert_eq!(at("response_due_at", &request), calendar.after(created, 4 * 60).unwrap(), "4 working hours");
    assert_eq!(at("resolution_due_at", &request), calendar.after(created, 24 * 60).unwrap(), "24 working hours");
    assert_eq!(request["responded_at"], Value::Null);

    // Urgent requests are served round the clock: 1 hour and 8 hours, whatever the day.
    let uri = format!("/api/v1/records/service_request/{}", id(&request));
    let urgent = t.patch(&uri, json!({"priority": "urgent", "version": 1})).await.expect(200);
    assert_eq!(at("response_due_at", &urgent), created + TimeDelta::hours(1));
    assert_eq!(at("resolution_due_at", &urgent), created + TimeDelta::hours(8));
    let assigned = t.patch(&uri, json!({"status": "assigned", "version": 2})).await.expect(200);
    assert_eq!(assigned["responded_at"], Value::Null, "assigning is not answering");
    let working = t.patch(&uri, json!({"status": "in_progress", "version": 3})).await.expect(200);
    assert!(working["responded_at"].is_string(), "the first response: {working}");
    let resolved = t.patch(&uri, json!({"status": "resolved", "version": 4})).await.expect(200);
    assert!(resolved["resolved_at"].is_string());
    let reopened = t.patch(&uri, json!({"status": "in_progress", "version": 5})).await.expect(200);
    assert_eq!(reopened["resolved_at"], Value::Null, "reopened: not resolved any more");
    assert_eq!(reopened["responded_at"], working["responded_at"], "the first response stays");

    // The owner hears of it near the target (the urgent level reminds 1 h before) and after
    // it, not before; the reminders are kept in both languages and link to the request.
    let owner = uuid::Uuid::parse_str(request["owner"].as_str().unwrap()).unwrap();
    let created = created.with_timezone(&Utc);
    let told = async |at: chrono::DateTime<Utc>| -> Vec<crm_store::system::Reminder> {
        crm::schedule::run_due(&t.app, at).await.unwrap();
        let open = crm_store::system::open_reminders(&t.app.db, owner, at + TimeDelta::days(1)).await.unwrap();
        open.into_iter().filter(|r| r.rule.as_deref() == Some("service_levels_due")).collect()
    };
    assert!(told(created + TimeDelta::minutes(2 * 60 + 15)).await.is_empty(), "6 hours to go");
    let near = told(created + TimeDelta::minutes(7 * 60 + 30)).await;
    assert_eq!(near.len(), 1, "{near:?}");
    let text = |r: &crm_store::system::Reminder, locale| crm_model::Labels::message_in(&r.message, locale);
    assert_eq!(text(&near[0], "zh-CN"), "服务请求 SR000001「打印机卡纸」将在 1 小时内到达解决期限");
    let late = told(created + TimeDelta::hours(9)).await;
    assert_eq!(late.len(), 1, "the near reminder is replaced by the late one: {late:?}");
    assert_eq!(text(&late[0], "zh-CN"), "服务请求 SR000001「打印机卡纸」已超过解决期限");
    assert_eq!(text(&late[0], "en"), "Service request SR000001 \"打印机卡纸\" is past its resolution target");
    assert_eq!(late[0].record_id.map(|id| id.to_string()), request["id"].as_str().map(str::to_owned));

    // A level's hours must give due times, and one level per priority.
    let low =
        t.list("service_level", Some(json!({"field": "priority", "op": "eq", "value": "low"})), "").await.expect(200);
    let low = format!("/api/v1/records/service_level/{}", id(&low["data"][0]));
    let refused = t.patch(&low, json!({"workdays": [], "version": 1})).await.expect(422);
    assert!(refused.to_string().contains("请至少选择一个工作日"), "{refused}");
    let refused = t.patch(&low, json!({"work_start": "20:00", "work_end": "08:00", "version": 1})).await.expect(422);
    assert!(refused.to_string().contains("work_start"), "{refused}");
    t.patch(&low, json!({"round_the_clock": true, "workdays": [], "version": 1})).await.expect(200);
    let twin = json!({"name": "又一个低", "priority": "low", "response_hours": "1", "resolution_hours": "2"});
    let refused = t.post("/api/v1/records/service_level", twin).await;
    assert!(refused.status.is_client_error(), "one level per priority");
}

async fn approvals_lock_records_for_reps_not_approvers(t: TestApp) {
    use axum::http::Method;
    let department = id(&t.create("department", json!({"name": "华东销售部"})).await);
    let (manager, boss) = user(&t, "boss", "manager", Some(&department)).await;
    t.patch(&format!("/api/v1/records/department/{department}"), json!({"manager": manager, "version": 1}))
        .await
        .expect(200);
    let (rep_id, rep) = user(&t, "rep", "sales_rep", Some(&department)).await;
    let as_rep = |method: Method, uri: String, body: Option<Value>| {
        let t = &t;
        let rep = rep.clone();
        async move { t.call(method, &uri, body, Some(&rep)).await }
    };
    let as_boss = |method: Method, uri: String, body: Option<Value>| {
        let t = &t;
        let boss = boss.clone();
        async move { t.call(method, &uri, body, Some(&boss)).await }
    };

    let customer =
        as_rep(Method::POST, "/api/v1/records/customer".into(), Some(json!({"name": "审核客户"}))).await.expect(201);
    let order =
        as_rep(Method::POST, "/api/v1/records/order".into(), Some(json!({"name": "首单", "customer": id(&customer)})))
            .await
            .expect(201);
    let path = format!("/api/v1/records/order/{}", id(&order));
    let line = as_rep(
        Method::POST,
        "/api/v1/records/order_line".into(),
        Some(json!({"name": "设备", "order": id(&order), "quantity": 2, "price": "100"})),
    )
    .await
    .expect(201);
    let line_path = format!("/api/v1/records/order_line/{}", id(&line));

    // A rep may not decide; a rejection needs a reason.
    as_rep(Method::POST, format!("{path}/approval"), Some(json!({"action": "approve"}))).await.expect(403);
    let submitted =
        as_rep(Method::POST, format!("{path}/approval"), Some(json!({"action": "submit"}))).await.expect(200);
    assert_eq!(submitted["status"], "submitted");
    let locked =
        as_rep(Method::PATCH, path.clone(), Some(json!({"remark": "改一下", "version": submitted["version"]})))
            .await
            .expect(403);
    assert_eq!(locked["code"], "record_locked");
    let line_locked =
        as_rep(Method::PATCH, line_path.clone(), Some(json!({"quantity": 3, "version": 1}))).await.expect(403);
    assert_eq!(line_locked["code"], "record_locked", "the lines are locked with their order");
    let deleted = as_rep(Method::POST, "/api/v1/records/order/bulk/delete".into(), Some(json!({"ids": [id(&order)]})))
        .await
        .expect(200);
    assert_eq!(deleted["results"][0]["status"], 403);
    assert_eq!(deleted["results"][0]["error"]["code"], "record_locked");
    let deleted = as_rep(Method::DELETE, path.clone(), None).await.expect(403);
    assert_eq!(deleted["code"], "record_locked", "DELETE answers a lock as PATCH does");
    let added = as_rep(
        Method::POST,
        "/api/v1/records/order_line".into(),
        Some(json!({"name": "加一行", "order": id(&order), "quantity": 1, "price": "1"})),
    )
    .await
    .expect(403);
    assert_eq!(added["code"], "record_locked", "no new line under a locked order");
    let line_gone = as_rep(Method::DELETE, line_path.clone(), None).await.expect(403);
    assert_eq!(line_gone["code"], "record_locked", "nor a line deleted from it");
    as_boss(Method::POST, format!("{path}/approval"), Some(json!({"action": "reject"}))).await.expect(422);

    let approved =
        as_boss(Method::POST, format!("{path}/approval"), Some(json!({"action": "approve", "comment": "同意"})))
            .await
            .expect(200);
    assert_eq!(approved["status"], "approved");
    as_boss(Method::POST, format!("{path}/approval"), Some(json!({"action": "approve"}))).await.expect(422);
    // Expenses go through the same mechanism (A-3).
    let expense =
        as_rep(Method::POST, "/api/v1/records/expense".into(), Some(json!({"name": "出差", "amount": "800"})))
            .await
            .expect(201);
    let expense_path = format!("/api/v1/records/expense/{}", id(&expense));
    as_rep(Method::POST, format!("{expense_path}/approval"), Some(json!({"action": "submit"}))).await.expect(200);
    let locked =
        as_rep(Method::PATCH, expense_path.clone(), Some(json!({"amount": "900", "version": 2}))).await.expect(403);
    assert_eq!(locked["code"], "record_locked");
    let recalled =
        as_rep(Method::POST, format!("{expense_path}/approval"), Some(json!({"action": "recall"}))).await.expect(200);
    assert_eq!(recalled["status"], "draft");
    as_rep(Method::PATCH, expense_path, Some(json!({"amount": "900", "version": recalled["version"]})))
        .await
        .expect(200);
    // Still locked for the rep; a manager may still change it.
    as_rep(Method::PATCH, path.clone(), Some(json!({"remark": "再改", "version": approved["version"]})))
        .await
        .expect(403);
    as_boss(Method::PATCH, path.clone(), Some(json!({"remark": "经理修改", "version": approved["version"]})))
        .await
        .expect(200);
    as_boss(Method::PATCH, line_path.clone(), Some(json!({"quantity": 3, "version": 1}))).await.expect(200);

    let steps = t.get(&format!("{path}/approvals")).await.expect(200);
    let taken: Vec<(&str, &str)> = steps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(taken, vec![("submit", rep_id.as_str()), ("approve", manager.as_str())]);
    assert_eq!(steps["data"][1]["comment"], "同意");
    let told = as_rep(Method::GET, "/api/v1/reminders".into(), None).await.expect(200);
    assert!(
        told["data"][0]["message"] == "订单「首单」已审核通过：同意"
            && told["data"][0]["messages"]["en"] == "Order \"首单\" approved: 同意",
        "the submitter hears the decision: {told}"
    );

    // Any entity can have an approval: a new one where only the submitter's manager decides.
    let claim = json!({
        "name": "claim",
        "label": {"zh-CN": "报销", "en": "Claim"},
        "approval": {"field": "state", "manager_only": true},
        "fields": [
            {"name": "name", "type": "text", "label": {"zh-CN": "名称", "en": "Name"}, "required": true},
            {"name": "state", "type": "select", "label": {"zh-CN": "状态", "en": "State"}, "default": "draft", "options": [
                {"value": "draft", "label": {"zh-CN": "草稿", "en": "Draft"}},
                {"value": "submitted", "label": {"zh-CN": "已提交", "en": "Submitted"}},
                {"value": "approved", "label": {"zh-CN": "已审核", "en": "Approved"}},
                {"value": "rejected", "label": {"zh-CN": "已退回", "en": "Rejected"}}
            ]}
        ]
    });
    t.post("/api/v1/meta/entities", claim).await.expect(201);
    let bad = json!({"name": "bad", "label": {"zh-CN": "坏", "en": "Bad"}, "approval": {"field": "name"},
        "fields": [{"name": "name", "type": "text", "label": {"zh-CN": "名称", "en": "Name"}}]});
    t.post("/api/v1/meta/entities", bad).await.expect(422);
    let mut role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"]["claim"] = json!({"actions": ["read", "create", "edit", "approve"], "scope": "own"});
    t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    let mut role = t.get("/api/v1/meta/roles/manager").await.expect(200);
    role["entities"]["claim"] = json!({"actions": ["read", "edit", "approve"], "scope": "department_tree"});
    t.put("/api/v1/meta/roles/manager", role).await.expect(200);
    let claim = as_rep(Method::POST, "/api/v1/records/claim".into(), Some(json!({"name": "差旅"}))).await.expect(201);
    let claim_path = format!("/api/v1/records/claim/{}", id(&claim));
    as_rep(Method::POST, format!("{claim_path}/approval"), Some(json!({"action": "submit"}))).await.expect(200);
    let own =
        as_rep(Method::POST, format!("{claim_path}/approval"), Some(json!({"action": "approve"}))).await.expect(403);
    assert!(own["detail"].as_str().unwrap().contains("manager"), "{own}");
    as_boss(Method::POST, format!("{claim_path}/approval"), Some(json!({"action": "approve"}))).await.expect(200);
}

async fn leads_convert_to_customer_contact_and_opportunity(t: TestApp) {
    let (manager, _) = user(&t, "manager1", "manager", None).await;
    let campaign = t.create("campaign", json!({"name": "春季展会"})).await;
    let lead = t
        .create("lead", json!({"name": "王经理", "company": "杭州新客科技", "mobile": "13800138000", "campaign": id(&campaign), "industry": "software"}))
        .await;
    let other = t.create("lead", json!({"name": "李总", "company": "杭州新客科技"})).await;
    let reply =
        t.post("/api/v1/leads/convert", json!({"ids": [id(&lead), id(&other)], "owner": manager})).await.expect(200);
    assert_eq!(reply["results"][0]["status"], 200, "{reply}");
    assert_eq!(reply["results"][1]["status"], 422, "the second would duplicate the first's customer");
    assert_eq!(reply["results"][1]["error"]["errors"][0]["code"], "duplicate");

    let converted = t.get(&format!("/api/v1/records/lead/{}", id(&lead))).await.expect(200);
    assert_eq!(converted["status"], "converted");
    let customer = t
        .get(&format!("/api/v1/records/customer/{}", converted["converted_customer"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(customer["name"], "杭州新客科技");
    assert_eq!(customer["industry"], "software");
    assert_eq!(customer["owner"], manager.as_str(), "owned by the chosen user");
    let contact = t
        .get(&format!("/api/v1/records/contact/{}", converted["converted_contact"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!((contact["name"].as_str(), contact["mobile"].as_str()), (Some("王经理"), Some("13800138000")));
    let opportunity = t
        .get(&format!("/api/v1/records/opportunity/{}", converted["converted_opportunity"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(opportunity["campaign"], campaign["id"], "the campaign link is kept (M-9)");
    assert_eq!(opportunity["lead"], lead["id"]);
    assert_eq!(opportunity["customer"], customer["id"]);

    // Into the existing customer, without an opportunity; a converted lead stays converted.
    let into = t
        .post(
            "/api/v1/leads/convert",
            json!({"ids": [id(&other)], "customer": customer["id"], "create_opportunity": false}),
        )
        .await
        .expect(200);
    assert_eq!(into["results"][0]["status"], 200, "{into}");
    let other = t.get(&format!("/api/v1/records/lead/{}", id(&other))).await.expect(200);
    assert_eq!(other["converted_customer"], customer["id"]);
    assert!(other["converted_opportunity"].is_null());
    let again = t.post("/api/v1/leads/convert", json!({"ids": [id(&lead)]})).await.expect(200);
    assert_eq!(again["results"][0]["status"], 422);
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 1);
}

async fn assignment_and_activity_stage_rules(t: TestApp) {
    // Leads from Guangdong go to the south team's rep; others stay with their creator.
    let (south, _) = user(&t, "south", "sales_rep", None).await;
    let rule = format!(r#"if (record.region ?? "").starts_with("广东省") {{ record.owner = "{south}"; }}"#);
    assert_eq!(install(&t, "south_leads", Some("lead"), "assignment", json!({}), &rule).await.status, 200);
    let southern = t.create("lead", json!({"name": "深圳客户", "region": "广东省/深圳市"})).await;
    assert_eq!(southern["owner"], south.as_str());
    let northern = t.create("lead", json!({"name": "北京客户", "region": "北京市"})).await;
    assert_ne!(northern["owner"], south.as_str());

    // An activity logged on an opportunity is logged against its current stage.
    let customer = t.create("customer", json!({"name": "阶段行动"})).await;
    let opportunity =
        t.create("opportunity", json!({"name": "机会", "customer": id(&customer), "stage": "needs_analysis"})).await;
    let activity = t.create("activity", json!({"name": "需求调研", "opportunity": id(&opportunity)})).await;
    assert_eq!(activity["stage"], "needs_analysis");
    let listed = t
        .list("activity", Some(json!({"and": [{"field": "opportunity", "op": "eq", "value": id(&opportunity)}, {"field": "stage", "op": "eq", "value": "needs_analysis"}]})), "")
        .await
        .expect(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "activities listed per stage");
    // The stage kept by its key reads as the stage's name.
    let mut b = support::browser::Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.page(&format!("/e/activity/{}", id(&activity))).await;
    assert!(page.contains("需求确认") && !page.contains(">needs_analysis<"), "the stage's label on the page");
}

async fn each_campaign_type_has_its_stages(t: TestApp) {
    // An email campaign walks the email stages (M-1); others the general ones.
    let email = t.create("campaign", json!({"name": "双十一邮件", "type": "email"})).await;
    assert_eq!(email["stage"], "design", "a new email campaign starts at its own first stage");
    let event = t.create("campaign", json!({"name": "展会", "type": "event"})).await;
    assert_eq!(event["stage"], "plan");
    let path = format!("/api/v1/records/campaign/{}", id(&email));
    let refused = t.post(&format!("{path}/stage"), json!({"stage": "execute"})).await.expect(422);
    assert_eq!(refused["errors"][0]["code"], "invalid_stage", "a general stage is not an email one");
    let moved = t.post(&format!("{path}/stage"), json!({"stage": "choose_recipients"})).await.expect(200);
    assert_eq!(moved["stage"], "choose_recipients");
    // Changing the type to one whose stages do not include the current stage is refused.
    t.patch(&path, json!({"type": "event", "version": moved["version"]})).await.expect(422);
    t.patch(&path, json!({"type": "event", "stage": "prepare", "version": moved["version"]})).await.expect(200);
    let history = t.get(&format!("{path}/stage-history")).await.expect(200);
    let to: Vec<&str> = history["data"].as_array().unwrap().iter().map(|m| m["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["design", "choose_recipients", "prepare"]);
}
