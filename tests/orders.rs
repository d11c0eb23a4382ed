//! Orders after the sale, on SQLite and PostgreSQL: payment plans (回款计划) and collections
//! (回款) whose sums the engine keeps on the plan and the order, to the fen; who may record a
//! collection; a quote turned into an order with its lines (生成订单) by the API and on its
//! screen, once; and the core package upgrading a database at the version before them.

mod support;

use axum::http::{Method, StatusCode};
use crm::package::Package;
use serde_json::{Value, json};
use support::TestApp;
use support::browser::{Browser, between};

backends!(
    collections_roll_up_into_their_plan_and_order,
    a_rep_records_collections_on_the_orders_they_read,
    a_quote_becomes_one_order_with_its_lines,
    the_quote_screen_converts_and_opens_the_order,
    the_core_package_upgrades_the_previous_version,
);

fn id(record: &Value) -> String {
    record["id"].as_str().expect("a record has an id").to_owned()
}

async fn get(t: &TestApp, entity: &str, record: &Value) -> Value {
    t.get(&format!("/api/v1/records/{entity}/{}", id(record))).await.expect(200)
}

/// The rows of a record's related panel.
async fn panel(t: &TestApp, entity: &str, record: &Value, name: &str) -> Vec<Value> {
    let page = t.get(&format!("/api/v1/records/{entity}/{}/related/{name}", id(record))).await.expect(200);
    page["data"].as_array().expect("data").clone()
}

async fn post_as(t: &TestApp, token: &str, uri: &str, body: Value) -> support::Reply {
    t.as_user(token, Method::POST, uri, Some(body)).await
}

async fn collections_roll_up_into_their_plan_and_order(t: TestApp) {
    let customer = t.create("customer", json!({"name": "华东机电有限公司"})).await;
    let order = t.create("order", json!({"name": "机床大单", "customer": id(&customer)})).await;
    assert_eq!(order["paid_amount"], Value::Null, "nothing collected yet");
    let first = t
        .create(
            "payment_plan",
            json!({"order": id(&order), "installment": 1, "due_date": "2026-01-31", "amount": "1000.10"}),
        )
        .await;
    let second = t
        .create(
            "payment_plan",
            json!({"order": id(&order), "installment": 2, "due_date": "2026-03-31", "amount": "2000.20"}),
        )
        .await;
    assert_eq!(first["name"], "机床大单 第1期", "a plan is named after its order and instalment");
    assert_eq!(first["customer"], id(&customer), "and takes the order's customer");
    assert_eq!(first["collected_amount"], Value::Null, "nothing collected yet");

    let a = t.create("collection", json!({"order": id(&order), "payment_plan": id(&first), "amount": "600.05"})).await;
    let b = t.create("collection", json!({"order": id(&order), "payment_plan": id(&first), "amount": "400.05"})).await;
    // Against a plan, the order is the plan's.
    let c = t.create("collection", json!({"payment_plan": id(&second), "amount": "2000.20", "method": "cash"})).await;
    assert_eq!(c["order"], id(&order));
    assert_eq!(c["customer"], id(&customer), "the customer is the order's");
    assert!(a["code"].as_str().unwrap().starts_with("RC"), "a collection is numbered: {}", a["code"]);
    assert_eq!(a["collected_on"].as_str().unwrap().len(), 10, "collected today by default: {}", a["collected_on"]);
    assert_eq!(get(&t, "payment_plan", &first).await["collected_amount"], "1000.10");
    assert_eq!(get(&t, "payment_plan", &second).await["collected_amount"], "2000.20");
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "3000.30", "1000.10 + 2000.20, to the fen");

    t.delete(&format!("/api/v1/records/collection/{}", id(&b))).await.expect(204);
    assert_eq!(get(&t, "payment_plan", &first).await["collected_amount"], "600.05");
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "2600.25", "a deleted collection no longer counts");
    t.post(&format!("/api/v1/records/collection/{}/restore", id(&b)), json!({})).await.expect(200);
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "3000.30", "and counts again once restored");
    let moved = t
        .patch(&format!("/api/v1/records/collection/{}", id(&c)), json!({"amount": "1999.99", "version": c["version"]}))
        .await
        .expect(200);
    assert_eq!(moved["amount"], "1999.99");
    assert_eq!(get(&t, "payment_plan", &second).await["collected_amount"], "1999.99");
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "3000.09");

    // What was paid is the collections' sum, never typed; shipped and invoiced amounts are.
    let order = get(&t, "order", &order).await;
    let typed = t
        .patch(
            &format!("/api/v1/records/order/{}", id(&order)),
            json!({"paid_amount": "1", "version": order["version"]}),
        )
        .await
        .expect(422);
    assert_eq!(typed["errors"][0]["code"], "read_only", "{typed}");
    let executed = t
        .patch(
            &format!("/api/v1/records/order/{}", id(&order)),
            json!({"shipped_amount": "2500.00", "invoiced_amount": "1000.10", "version": order["version"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        (executed["shipped_amount"].as_str(), executed["invoiced_amount"].as_str()),
        (Some("2500.00"), Some("1000.10"))
    );

    // A plan of another order is refused: its collected amount would count money paid elsewhere.
    let other = t.create("order", json!({"name": "配件小单", "customer": id(&customer)})).await;
    let refused = t
        .post("/api/v1/records/collection", json!({"order": id(&other), "payment_plan": id(&first), "amount": "1"}))
        .await
        .expect(422);
    assert_eq!(refused["errors"][0]["field"], "payment_plan", "{refused}");
    assert_eq!(get(&t, "order", &other).await["paid_amount"], Value::Null);

    let plans = panel(&t, "order", &order, "payment_plans").await;
    assert_eq!(plans.iter().map(|p| p["installment"].clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
    assert_eq!(panel(&t, "order", &order, "collections").await.len(), 3);
    assert_eq!(panel(&t, "payment_plan", &first, "collections").await.len(), 2);
}

async fn a_rep_records_collections_on_the_orders_they_read(t: TestApp) {
    let (_, rep) = t.user("rep_wang", &["sales_rep"], None).await;
    let (_, other_rep) = t.user("rep_li", &["sales_rep"], None).await;
    let customer = post_as(&t, &rep, "/api/v1/records/customer", json!({"name": "王氏贸易"})).await.expect(201);
    let order = post_as(&t, &rep, "/api/v1/records/order", json!({"name": "王氏首单", "customer": id(&customer)}))
        .await
        .expect(201);
    let plan = post_as(
        &t,
        &rep,
        "/api/v1/records/payment_plan",
        json!({"order": id(&order), "installment": 1, "due_date": "2026-06-30", "amount": "5000.00"}),
    )
    .await
    .expect(201);
    post_as(&t, &rep, "/api/v1/records/collection", json!({"payment_plan": id(&plan), "amount": "1200.50"}))
        .await
        .expect(201);

    // Another rep cannot see the order, so cannot record money against it: the reference is
    // refused as any reference outside one's scope is.
    let refused =
        post_as(&t, &other_rep, "/api/v1/records/collection", json!({"order": id(&order), "amount": "99.00"}))
            .await
            .expect(422);
    assert_eq!(refused["errors"][0]["field"], "order", "{refused}");
    assert_eq!(refused["errors"][0]["code"], "not_found", "{refused}");
    let theirs = t.as_user(&other_rep, Method::GET, "/api/v1/records/collection", None).await.expect(200);
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0, "nor see its collections");
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "1200.50");

    // Once approved, the order and its plan are locked for the rep; money still comes in.
    let approval = format!("/api/v1/records/order/{}/approval", id(&order));
    post_as(&t, &rep, &approval, json!({"action": "submit"})).await.expect(200);
    t.post(&approval, json!({"action": "approve"})).await.expect(200);
    let locked = post_as(
        &t,
        &rep,
        "/api/v1/records/payment_plan",
        json!({"order": id(&order), "installment": 2, "due_date": "2026-09-30", "amount": "1.00"}),
    )
    .await
    .expect(403);
    assert_eq!(locked["code"], "record_locked");
    post_as(&t, &rep, "/api/v1/records/collection", json!({"payment_plan": id(&plan), "amount": "3799.50"}))
        .await
        .expect(201);
    assert_eq!(get(&t, "payment_plan", &plan).await["collected_amount"], "5000.00");
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "5000.00");
}

/// A quote of two lines, owned by whoever holds `token`: its id and its total.
async fn quote_with_lines(t: &TestApp, token: &str, name: &str) -> (Value, Value) {
    let post = |uri: &'static str, body: Value| t.as_user(token, Method::POST, uri, Some(body));
    let customer = post("/api/v1/records/customer", json!({"name": format!("{name}客户")})).await.expect(201);
    let contact =
        post("/api/v1/records/contact", json!({"name": "陈经理", "customer": id(&customer)})).await.expect(201);
    let quote = post(
        "/api/v1/records/quote",
        json!({"name": name, "customer": id(&customer), "contact": id(&contact), "remark": "含税价"}),
    )
    .await
    .expect(201);
    post(
        "/api/v1/records/quote_line",
        json!({"quote": id(&quote), "name": "数控车床", "quantity": 3, "unit": "台", "price": "1000.10"}),
    )
    .await
    .expect(201);
    post(
        "/api/v1/records/quote_line",
        json!({"quote": id(&quote), "name": "刀具", "quantity": "1.5", "unit": "套", "price": "200.20", "discount": 10}),
    )
    .await
    .expect(201);
    let quote = t.get(&format!("/api/v1/records/quote/{}", id(&quote))).await.expect(200);
    (quote, customer)
}

async fn count(t: &TestApp, entity: &str) -> i64 {
    t.list(entity, None, "count=true&limit=1").await.expect(200)["total"].as_i64().unwrap()
}

async fn a_quote_becomes_one_order_with_its_lines(t: TestApp) {
    let (rep_id, rep) = t.user("rep_zhao", &["sales_rep"], None).await;
    let (quote, customer) = quote_with_lines(&t, &rep, "机床报价").await;
    assert_eq!(quote["total_amount"], "3270.57", "3 × 1000.10 + 1.5 × 200.20 × 90%");

    let order = t.as_user(&rep, Method::POST, &format!("/api/v1/quotes/{}/order", id(&quote)), None).await.expect(201);
    assert_eq!(order["name"], "机床报价");
    assert_eq!(order["customer"], id(&customer));
    assert_eq!(order["contact"], quote["contact"]);
    assert_eq!(order["remark"], "含税价");
    assert_eq!(order["quote"], id(&quote), "the order points at its quote");
    assert_eq!(order["owner"], rep_id);
    assert_eq!(order["approval_status"], "draft");
    assert!(order["code"].as_str().unwrap().starts_with("SO"));
    assert_eq!(order["total_amount"], quote["total_amount"], "the same total, to the fen");
    let filter = json!({"field": "order", "op": "eq", "value": id(&order)});
    let lines = t.list("order_line", Some(filter), "sort=created_at").await.expect(200)["data"].clone();
    let seen: Vec<(Value, Value, Value, Value, Value, Value)> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].clone(),
                l["quantity"].clone(),
                l["unit"].clone(),
                l["price"].clone(),
                l["discount"].clone(),
                l["amount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!("数控车床"), json!("3.00"), json!("台"), json!("1000.10"), Value::Null, json!("3000.30")),
            (json!("刀具"), json!("1.50"), json!("套"), json!("200.20"), json!("10.00"), json!("270.27")),
        ]
    );
    assert_eq!(lines[0]["owner"], rep_id, "the lines are the rep's too");

    // Once: a second conversion is refused, saying which order the quote became.
    let again = t.as_user(&rep, Method::POST, &format!("/api/v1/quotes/{}/order", id(&quote)), None).await.expect(409);
    assert_eq!(again["code"], "already_converted", "{again}");
    let detail = again["detail"].as_str().unwrap();
    assert!(detail.contains(order["code"].as_str().unwrap()) && detail.contains("该报价已生成订单"), "{detail}");
    assert_eq!(count(&t, "order").await, 1);
    assert_eq!(count(&t, "order_line").await, 2);

    // The quote is its owner's: another rep does not find it.
    let (_, stranger) = t.user("rep_qian", &["sales_rep"], None).await;
    t.as_user(&stranger, Method::POST, &format!("/api/v1/quotes/{}/order", id(&quote)), None).await.expect(404);

    // Who may read quotes but not create orders is refused, and nothing is written.
    let label = |zh: &str, en: &str| json!({"zh-CN": zh, "en": en});
    let read = json!({"actions": ["read"], "scope": "all"});
    t.put(
        "/api/v1/meta/roles/quote_reader",
        json!({"name": "quote_reader", "label": label("报价查阅", "Quote reader"),
               "entities": {"quote": read, "quote_line": read, "order": read, "order_line": read, "customer": read}}),
    )
    .await
    .expect(200);
    let (_, reader) = t.user("reader_sun", &["quote_reader"], None).await;
    let (fresh, _) = quote_with_lines(&t, &t.token, "配件报价").await;
    let refused =
        t.as_user(&reader, Method::POST, &format!("/api/v1/quotes/{}/order", id(&fresh)), None).await.expect(403);
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!((count(&t, "order").await, count(&t, "order_line").await), (1, 2), "nothing was written");

    // Two conversions at once (a double click) make one order.
    let uri = format!("/api/v1/quotes/{}/order", id(&fresh));
    let (one, two) = tokio::join!(t.post(&uri, json!(null)), t.post(&uri, json!(null)));
    let mut statuses = [one.status.as_u16(), two.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{:#} {:#}", one.body, two.body);
    assert_eq!((count(&t, "order").await, count(&t, "order_line").await), (2, 4));

    // A manager converting a rep's quote leaves the order with the rep. With the first order
    // gone to the recycle bin, the quote may become an order again.
    t.delete(&format!("/api/v1/records/order/{}", id(&order))).await.expect(204);
    let again = t.post(&format!("/api/v1/quotes/{}/order", id(&quote)), json!(null)).await.expect(201);
    assert_eq!(again["owner"], rep_id);
    assert_eq!(again["total_amount"], "3270.57");
    t.as_user(&rep, Method::GET, &format!("/api/v1/records/order/{}", id(&again)), None).await.expect(200);
}

async fn the_quote_screen_converts_and_opens_the_order(t: TestApp) {
    let (quote, _) = quote_with_lines(&t, &t.token, "展会报价").await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.get(&format!("/e/quote/{}", id(&quote))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("id=\"quote-to-order\"") && page.text.contains("生成订单"), "the button is offered");

    let converted = b.post(&format!("/e/quote/{}/order", id(&quote)), &[]).await;
    assert_eq!(converted.status, StatusCode::SEE_OTHER, "{}", converted.text);
    let to = converted.location.expect("a redirect");
    let orders = t.list("order", None, "").await.expect(200)["data"].clone();
    assert_eq!(to, format!("/e/order/{}", id(&orders[0])), "to the new order");
    let page = b.get(&to).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("已由报价生成订单"), "said on the order's page");
    assert!(page.text.contains("id=\"panel-payment_plans\"") && page.text.contains("回款计划"));
    assert!(page.text.contains("id=\"panel-collections\""));
    assert!(page.text.contains("¥3,270.57"), "its total");

    let page = b.get(&format!("/e/quote/{}", id(&quote))).await;
    assert!(!page.text.contains("id=\"quote-to-order\""), "a quote that became an order is not offered again");
    assert!(page.text.contains("id=\"panel-orders\""), "the quote shows its order");
    let again = b.post(&format!("/e/quote/{}/order", id(&quote)), &[]).await;
    assert_eq!(again.location.as_deref(), Some(format!("/e/quote/{}", id(&quote)).as_str()));
    assert!(b.get(&format!("/e/quote/{}", id(&quote))).await.text.contains("该报价已生成订单"), "a stale page is told");

    // Someone who may not create orders is not offered the button.
    t.user("service_zhou", &["service"], None).await;
    let (_, rep) = t.user("rep_sun", &["sales_rep"], None).await;
    let (theirs, _) = quote_with_lines(&t, &rep, "代理报价").await;
    let mut service = Browser::sign_in(&t, "service_zhou", support::USER_PASSWORD).await;
    let page = service.get(&format!("/e/quote/{}", id(&theirs))).await;
    assert!(!page.text.contains("id=\"quote-to-order\""), "{}", page.status);

    // The order's form shows the totals the engine keeps without sending them back.
    let edit = b.get(&format!("/e/order/{}/edit", id(&orders[0]))).await;
    assert_eq!(edit.status, StatusCode::OK);
    for kept in ["total_amount", "paid_amount"] {
        let input = between(&edit.text, &format!("name=\"{kept}\""), ">").expect("shown");
        assert!(input.contains("readonly"), "{kept}: {input}");
    }
    let version = between(&edit.text, "name=\"version\" value=\"", "\"").expect("the form carries the version");
    let form = [
        ("_csrf", b.csrf.as_str()),
        ("version", version.as_str()),
        ("name", "展会报价（已签）"),
        ("customer", orders[0]["customer"].as_str().unwrap()),
        ("total_amount", "3270.57"),
        ("paid_amount", ""),
        ("shipped_amount", "100.00"),
    ];
    let saved = t.page(Method::POST, &format!("/e/order/{}/edit", id(&orders[0])), &b.cookies(), Some(&form)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(get(&t, "order", &orders[0]).await["shipped_amount"], "100.00");
}

/// The core package as it was before payment plans and collections: without those entities,
/// their screens, rules and grants, the order's panels and execution amounts, and with the
/// paid amount entered by hand.
fn previous_core() -> Package {
    let current = Package::core().expect("the core package");
    let added = ["payment_plan", "collection", "forecast_snapshot"];
    let mut files = vec![(
        "package.json".to_owned(),
        json!({"name": "core", "version": "1.0.0", "label": {"zh-CN": "标准CRM", "en": "Standard CRM"}}).to_string(),
    )];
    for (kind, name, mut doc) in current.docs.iter_json() {
        let name = name.as_str();
        if added.contains(&name) || doc["entity"].as_str().is_some_and(|e| added.contains(&e)) {
            continue;
        }
        // Reports and dashboards came with the same version.
        if matches!(kind.folder(), "reports" | "dashboards") {
            continue;
        }
        match (kind.folder(), name) {
            ("entities", "order") => {
                let fields = doc["fields"].as_array_mut().unwrap();
                fields.retain(|f| !["shipped_amount", "invoiced_amount"].contains(&f["name"].as_str().unwrap()));
                let paid = fields.iter_mut().find(|f| f["name"] == "paid_amount").unwrap();
                *paid = json!({"name": "paid_amount", "type": "money", "label": paid["label"].clone(), "min": 0});
            }
            ("layouts", "order") => {
                for side in ["edit", "view"] {
                    for section in doc[side]["sections"].as_array_mut().unwrap() {
                        let fields = section["fields"].as_array_mut().unwrap();
                        fields.retain(|f| f != "shipped_amount" && f != "invoiced_amount");
                    }
                }
            }
            ("related", "order" | "quote") => {
                let panels = doc["panels"].as_array_mut().unwrap();
                panels.retain(|p| !added.contains(&p["source"].as_str().unwrap()) && p["name"] != "orders");
            }
            ("roles", _) => {
                let entities = doc["entities"].as_object_mut().unwrap();
                entities.retain(|entity, _| !added.contains(&entity.as_str()));
            }
            _ => {}
        }
        files.push((format!("{}/{name}.json", kind.folder()), doc.to_string()));
    }
    Package::from_files(files).expect("the previous core package is valid")
}

/// What a test on an older database holds on to: its folder, and on PostgreSQL the database,
/// dropped at the end.
struct Older {
    _dir: tempfile::TempDir,
    _database: Option<DropDatabase>,
}

/// An app whose database the previous core package was installed into and that has an order
/// with a paid amount typed in.
async fn previous_version(postgres: bool) -> (TestApp, Value, Older) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crm::config::Config::for_data_dir(dir.path());
    let mut guard = None;
    if postgres {
        let server = std::env::var("CRM_TEST_POSTGRES_URL").expect("a PostgreSQL test");
        let name = format!("crm_t_{}", uuid::Uuid::now_v7().simple());
        crm_store::server::create_database(&server, &name, None).await.unwrap();
        config.database_url = crm_store::server::database_url(&server, &name);
        guard = Some(DropDatabase { server, name });
    }
    let url = config.database_url.clone();
    let old = crm::App::open(config).await.unwrap();
    let package = previous_core();
    crm::metadata::apply_docs(&old, None, |docs| Ok(package.merge_into(docs))).await.unwrap();
    let system = crm::access::Principal::system(&old.catalog());
    let source = crm::records::Source::Setup;
    let customer = crm::records::create(&old, &system, source, "customer", &json!({"name": "老客户"})).await.unwrap();
    let body = json!({"name": "老订单", "customer": customer.id(), "paid_amount": "500.50"});
    let order = crm::records::create(&old, &system, source, "order", &body).await.unwrap();
    let order = serde_json::to_value(order).unwrap();
    assert_eq!(order["paid_amount"], "500.50", "typed in before");
    old.db.close().await;
    drop(old);
    let t = TestApp::sqlite_with(|c| c.database_url = url).await;
    (t, order, Older { _dir: dir, _database: guard })
}

/// Drops a database made for one test.
struct DropDatabase {
    server: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = runtime.block_on(crm_store::server::drop_database(&server, &name));
            }
        })
        .join();
    }
}

async fn the_core_package_upgrades_the_previous_version(current: TestApp) {
    let (t, order, _older) = previous_version(current.is_postgres()).await;
    drop(current);
    assert!(t.app.catalog().entity("collection").is_none(), "the previous version");

    let core = Package::core().unwrap();
    let before = t.app.catalog();
    let (_, plan) = crm::metadata::plan_docs(&before, core.merge_into(before.docs())).unwrap();
    let steps = plan.describe();
    for step in [
        "create table `collection`",
        "create table `payment_plan`",
        "add column `order.shipped_amount` (Money)",
        "add column `order.invoiced_amount` (Money)",
        "compute the rollup `order.paid_amount`, replacing the values entered by hand (each record's history keeps its value)",
    ] {
        assert!(steps.iter().any(|s| s == step), "{step} in {steps:#?}");
    }
    crm::metadata::apply_docs(&t.app, None, |docs| Ok(core.merge_into(docs))).await.unwrap();
    let again = t.app.catalog();
    let (_, plan) = crm::metadata::plan_docs(&again, core.merge_into(again.docs())).unwrap();
    assert!(plan.is_empty(), "installed: {:?}", plan.describe());

    // The typed amount gave way to the collections' sum, and stays in the order's history.
    let upgraded = get(&t, "order", &order).await;
    assert_eq!(upgraded["paid_amount"], "0.00");
    let history = t.get(&format!("/api/v1/records/order/{}/history", id(&order))).await.expect(200);
    let replaced = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["changes"].get("paid_amount").is_some())
        .unwrap_or_else(|| panic!("the history keeps the typed amount: {history:#}"));
    assert_eq!(replaced["changes"]["paid_amount"], json!(["500.50", "0.00"]));
    assert_eq!(replaced["source"], "rollup", "{replaced}");

    t.create("collection", json!({"order": id(&order), "amount": "500.50", "remark": "期初已回款"})).await;
    assert_eq!(get(&t, "order", &order).await["paid_amount"], "500.50", "recorded as a collection, it counts");
    let (_, rep) = t.user("rep_new", &["sales_rep"], None).await;
    let rep_order = t.as_user(&rep, Method::GET, "/api/v1/records/collection", None).await.expect(200);
    assert_eq!(rep_order["data"].as_array().unwrap().len(), 0, "reps have the new modules, in their scope");
}
