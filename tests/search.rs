//! Global search on SQLite and PostgreSQL: Chinese names found by words and by parts, the
//! index following creates, changes and deletes through the outbox, and a caller never
//! seeing, counting or quoting a record outside their read scope or a field hidden from them.

mod support;

use axum::http::Method;
use serde_json::{Value, json};
use support::{TestApp, encode};

backends!(
    search_finds_chinese_names_within_the_scope,
    the_index_follows_writes_and_rebuilds,
    contains_through_the_index_is_the_scan,
    a_field_made_searchable_is_indexed_in_the_background,
);

fn id(record: &Value) -> &str {
    record["id"].as_str().expect("a record has an id")
}

/// The ids a search answers, per entity.
fn found(reply: &Value, entity: &str) -> Vec<String> {
    reply["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["entity"] == entity)
        .flat_map(|g| g["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_owned()))
        .collect()
}

async fn search_as(t: &TestApp, token: &str, q: &str) -> Value {
    t.as_user(token, Method::GET, &format!("/api/v1/search?q={}", encode(q)), None).await.expect(200)
}

async fn search_finds_chinese_names_within_the_scope(t: TestApp) {
    // A searchable note the reps may not see.
    t.post(
        "/api/v1/meta/entities/customer/fields",
        json!({"name": "secret_note", "type": "text", "searchable": true,
               "label": {"zh-CN": "内部备注", "en": "Internal note"}}),
    )
    .await
    .expect(201);
    let mut role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"]["customer"]["fields"]["secret_note"] = json!("hidden");
    t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    let (rep1, token1) = t.user("rep1", &["sales_rep"], None).await;
    let (rep2, token2) = t.user("rep2", &["sales_rep"], None).await;
    let mine = t.create("customer", json!({"name": "北京立友信科技有限公司", "owner": rep1})).await;
    let theirs = t.create("customer", json!({"name": "立友信（上海）贸易有限公司", "owner": rep2})).await;
    let shared = t.create("customer", json!({"name": "立友数据服务有限公司", "owner": rep2})).await;
    let secret = t.create("customer", json!({"name": "无关公司", "owner": rep1, "secret_note": "暗号青龙"})).await;
    t.post("/api/v1/records/customer/bulk/share", json!({"ids": [id(&shared)], "user": rep1, "access": "read"}))
        .await
        .expect(200);
    t.run_jobs().await;

    let admin = t.get(&format!("/api/v1/search?q={}", encode("立友"))).await.expect(200);
    assert_eq!(found(&admin, "customer").len(), 3, "{admin}");
    let rep = search_as(&t, &token1, "立友").await;
    let mut ids = found(&rep, "customer");
    ids.sort();
    let mut expected = vec![id(&mine).to_owned(), id(&shared).to_owned()];
    expected.sort();
    assert_eq!(ids, expected, "their own and the one shared with them: {rep}");
    assert!(!rep.to_string().contains(id(&theirs)) && !rep.to_string().contains("上海"), "{rep}");
    let hit = &rep["groups"][0]["hits"][0];
    let fragment = hit["fragment"].as_str().unwrap();
    let range = hit["highlights"][0].as_array().unwrap();
    let marked = &fragment[range[0].as_u64().unwrap() as usize..range[1].as_u64().unwrap() as usize];
    assert_eq!(marked, "立友", "the match is marked in the fragment");
    let words = search_as(&t, &token1, "北京立友信").await;
    assert_eq!(found(&words, "customer"), vec![id(&mine).to_owned()], "a longer name by its words");

    // A hidden field is neither searched nor quoted; its owner still finds the record by name.
    let admin_secret = t.get(&format!("/api/v1/search?q={}", encode("暗号青龙"))).await.expect(200);
    assert_eq!(found(&admin_secret, "customer"), vec![id(&secret).to_owned()]);
    let rep_secret = search_as(&t, &token1, "暗号青龙").await;
    assert!(found(&rep_secret, "customer").is_empty(), "{rep_secret}");
    assert!(!search_as(&t, &token1, "无关").await.to_string().contains("暗号"));
    let other = search_as(&t, &token2, "立友").await;
    assert_eq!(found(&other, "customer").len(), 2, "rep2 sees their two");
    // Narrowed to modules, and a module the caller does not have is not searched.
    let none = t
        .as_user(&token1, Method::GET, &format!("/api/v1/search?q={}&entities=contact", encode("立友")), None)
        .await
        .expect(200);
    assert!(none["groups"].as_array().unwrap().is_empty());
    t.get(&format!("/api/v1/search?q={}", "长".repeat(101))).await.expect(400);
}

async fn the_index_follows_writes_and_rebuilds(t: TestApp) {
    let first = t.create("customer", json!({"name": "旧名称制造厂"})).await;
    let gone = t.create("customer", json!({"name": "将被删除的工厂"})).await;
    t.run_jobs().await;
    let ids = |reply: Value| found(&reply, "customer");
    let search = |q: &str| {
        let uri = format!("/api/v1/search?q={}", encode(q));
        let t = &t;
        async move { t.get(&uri).await.expect(200) }
    };
    assert_eq!(ids(search("旧名称").await).len(), 1);
    t.patch(&format!("/api/v1/records/customer/{}", id(&first)), json!({"name": "新名称制造厂", "version": 1}))
        .await
        .expect(200);
    t.delete(&format!("/api/v1/records/customer/{}", id(&gone))).await.expect(204);
    t.run_jobs().await;
    assert!(ids(search("旧名称").await).is_empty(), "the old name left the index");
    assert_eq!(ids(search("新名称").await), vec![id(&first).to_owned()]);
    assert!(ids(search("将被删除").await).is_empty(), "a deleted record left it");
    t.post(&format!("/api/v1/records/customer/{}/restore", id(&gone)), json!({})).await.expect(200);
    t.run_jobs().await;
    assert_eq!(ids(search("将被删除").await).len(), 1, "a restored one came back");

    // Rebuilt from the database, the index finds the same.
    crm::search::rebuild(&t.app, |_, _| {}).await.unwrap();
    assert_eq!(ids(search("新名称").await), vec![id(&first).to_owned()]);
    assert_eq!(t.app.search.stats().unwrap().documents, {
        // Every searchable field with a value of every live record: customers have a name and a
        // code, the service levels of the core package a name.
        let count =
            async |entity: &str| t.list(entity, None, "count=true").await.expect(200)["total"].as_u64().unwrap();
        count("customer").await * 2 + count("user").await * 2 + count("service_level").await
    });
}

/// `contains` and `starts_with` on a searchable field answer the same from the index as from
/// a scan: the same records before the index has seen them (it is not asked then) and after.
async fn contains_through_the_index_is_the_scan(t: TestApp) {
    for name in ["北京立友信科技有限公司", "立友数据", "ＡＢＣ立友", "abc商贸", "其他公司", "立 友", "100%纯", "友立"]
    {
        t.create("customer", json!({"name": name})).await;
    }
    let questions = [
        ("contains", "立友"),
        ("contains", "abc"),
        ("contains", "ABC"),
        ("contains", "友信科"),
        ("contains", "立"),
        ("contains", "%"),
        ("contains", "立友数据服务"),
        ("contains", " 友"),
        ("starts_with", "立友"),
        ("starts_with", "北京立"),
    ];
    let answer = |op: &'static str, text: &'static str| {
        let t = &t;
        async move { t.names("customer", json!({"field": "name", "op": op, "value": text})).await }
    };
    let mut scanned = Vec::new();
    for (op, text) in questions {
        scanned.push(answer(op, text).await);
    }
    t.run_jobs().await;
    for ((op, text), before) in questions.into_iter().zip(scanned) {
        assert_eq!(answer(op, text).await, before, "{op} {text}");
    }
    // Once it has seen every write, the index narrows the list; a new write is seen by the
    // scan until the index has it too.
    let catalog = t.app.catalog();
    let customer = catalog.entity("customer").unwrap();
    let params = crm::records::ListParams {
        filter: Some(json!({"field": "name", "op": "contains", "value": "立友"}).to_string()),
        ..Default::default()
    };
    let mut query = crm::records::list_query(&catalog, customer, &params, None, &[], &Default::default()).unwrap();
    crm::search::narrow(&t.app, customer, &mut query).await.unwrap();
    assert!(matches!(query.filter, Some(crm_model::Filter::And(ref all)) if all.len() == 2), "{:?}", query.filter);
    t.create("customer", json!({"name": "刚写入的立友"})).await;
    assert!(answer("contains", "立友").await.contains(&"刚写入的立友".to_owned()));
}

/// Marking a field searchable indexes that entity's records again, as a task whose progress
/// the studio shows; taking the mark off takes the field out of the index.
async fn a_field_made_searchable_is_indexed_in_the_background(t: TestApp) {
    for i in 0..30 {
        t.create("customer", json!({"name": format!("客户{i}"), "remark": format!("第{i}号 重点关注华东区")})).await;
    }
    t.run_jobs().await;
    let hits = |reply: Value| found(&reply, "customer").len();
    let uri = format!("/api/v1/search?q={}", encode("华东区"));
    assert_eq!(hits(t.get(&uri).await.expect(200)), 0, "remarks are not searchable yet");
    t.patch("/api/v1/meta/entities/customer/fields/remark", json!({"searchable": true})).await.expect(200);
    let task = crm_store::tasks::latest(&t.app.db, "reindex", "customer").await.unwrap().expect("a reindex task");
    assert_eq!(task.state, "running");
    t.run_jobs().await;
    let task = t.wait_task(None, &task.id.to_string()).await;
    assert_eq!(task["state"], "done", "{task}");
    let customers = t.list("customer", None, "count=true").await.expect(200)["total"].as_u64().unwrap();
    assert_eq!(task["result"]["records"].as_u64(), Some(customers), "{task}");
    assert_eq!(hits(t.get(&uri).await.expect(200)), 20, "found by their remarks (20 to a page)");
    t.patch("/api/v1/meta/entities/customer/fields/remark", json!({"searchable": false})).await.expect(200);
    t.run_jobs().await;
    assert_eq!(hits(t.get(&uri).await.expect(200)), 0, "out of the index again");
}
