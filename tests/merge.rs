//! Merging duplicates (C-6) and undoing it, on SQLite and PostgreSQL: every reference to a
//! loser moves to the survivor in one transaction, audited and announced with source merge;
//! undo puts back exactly what was there; permissions and bad requests write nothing.

mod support;

use std::collections::BTreeMap;

use axum::http::Method;
use crm_store::Arg;
use serde_json::{Value, json};
use support::browser::Browser;
use support::{ADMIN_PASSWORD, TestApp};

backends!(
    merging_moves_every_reference_to_the_survivor_and_undo_puts_it_back,
    undo_is_refused_once_the_survivor_changed,
    a_rep_merges_only_what_they_may_change_and_delete,
    bad_merges_write_nothing,
    merging_and_undoing_on_screen,
);

fn id(record: &Value) -> &str {
    record["id"].as_str().expect("a record has an id")
}

/// The entities a customer merge touches.
const ENTITIES: [&str; 4] = ["customer", "contact", "opportunity", "activity"];

/// Every record of the entities, live and in the recycle bin, by id, without what any write
/// changes (version, updated by and at): what undo must put back exactly.
async fn snapshot(t: &TestApp) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for entity in ENTITIES {
        for deleted in ["false", "true"] {
            let page = t.list(entity, None, &format!("deleted={deleted}")).await.expect(200);
            for record in page["data"].as_array().expect("data") {
                let mut record = record.clone();
                for key in ["version", "updated_at", "updated_by"] {
                    record.as_object_mut().expect("an object").remove(key);
                }
                all.insert(format!("{entity}/{}", id(&record)), record);
            }
        }
    }
    all
}

/// The latest audit entry of a record.
async fn last_audit(t: &TestApp, record: &str) -> Value {
    let entries = t.get(&format!("/api/v1/audit?record_id={record}&limit=1")).await.expect(200);
    entries["data"][0].clone()
}

/// The outbox events of a record: (event, source), oldest first.
async fn events(t: &TestApp, record: &str) -> Vec<(String, String)> {
    let mut sql = t.app.db.sql();
    sql.push("SELECT event, payload FROM crm_outbox WHERE record_id = ");
    sql.bind(Arg::Uuid(record.parse().expect("an id"))).push(" ORDER BY seq");
    let rows = sql.fetch_all(&t.app.db).await.expect("the outbox reads");
    rows.iter()
        .map(|row| {
            let payload = row.json(1).expect("JSON").expect("a payload");
            (row.text(0).expect("text").expect("an event"), payload["source"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

async fn merging_moves_every_reference_to_the_survivor_and_undo_puts_it_back(t: TestApp) {
    let rich = t
        .create(
            "customer",
            json!({"name": "北京立友信科技有限公司", "industry": "software", "region": "北京", "phone": "010-12345678"}),
        )
        .await;
    let thin = t.create("customer", json!({"name": "立友信科技", "email": "info@lyx.cn", "address": "海淀区"})).await;
    let bare = t.create("customer", json!({"name": "北京立友信", "industry": "services"})).await;
    let (a, b, c) = (id(&rich).to_owned(), id(&thin).to_owned(), id(&bare).to_owned());
    let c1 = t.create("contact", json!({"name": "张伟", "customer": b})).await;
    let c2 = t.create("contact", json!({"name": "李娜", "customer": c})).await;
    t.create("contact", json!({"name": "王芳", "customer": a})).await;
    let binned = t.create("contact", json!({"name": "刘洋", "customer": b})).await;
    t.delete(&format!("/api/v1/records/contact/{}", id(&binned))).await.expect(204);
    let o1 = t.create("opportunity", json!({"name": "ERP 项目", "customer": b, "contact": id(&c1)})).await;
    t.create("opportunity", json!({"name": "CRM 项目", "customer": c})).await;
    let visit = t.create("activity", json!({"name": "拜访", "customer": c})).await;
    let child = t.create("customer", json!({"name": "立友信上海分公司", "parent": b})).await;
    let before = snapshot(&t).await;

    let preview = t.post("/api/v1/records/customer/merge/preview", json!({"ids": [b, a, c]})).await.expect(200);
    assert_eq!(preview["master"], a, "the richest record is proposed: {preview}");
    assert_eq!(
        preview["references"],
        json!({"activity": 1, "contact": 3, "customer": 1, "opportunity": 2}),
        "the binned contact counts too"
    );
    let email = preview["fields"].as_array().unwrap().iter().find(|f| f["field"] == "email").unwrap().clone();
    assert_eq!(email["proposed"], b, "the master has none: the first other one that has it");

    let merged = t
        .post(
            "/api/v1/records/customer/merge",
            json!({"ids": [b, a, c], "master": a, "values": {"industry": "services"}}),
        )
        .await
        .expect(200);
    assert_eq!(merged["repointed"], 7, "{merged}");
    let survivor = &merged["survivor"];
    assert_eq!(survivor["id"], a);
    assert_eq!(survivor["industry"], "services", "the value chosen");
    assert_eq!(survivor["email"], "info@lyx.cn", "filled from a loser");
    assert_eq!(survivor["phone"], "010-12345678", "the master's kept");
    for loser in [&b, &c] {
        t.get(&format!("/api/v1/records/customer/{loser}")).await.expect(404);
    }
    let binned_customers = t.list("customer", None, "deleted=true").await.expect(200);
    let in_bin: Vec<&str> = binned_customers["data"].as_array().unwrap().iter().map(id).collect();
    assert!(in_bin.contains(&b.as_str()) && in_bin.contains(&c.as_str()), "{binned_customers}");

    let after = snapshot(&t).await;
    let pointing = |entity: &str, record: &str, field: &str| after[&format!("{entity}/{record}")][field].clone();
    assert_eq!(pointing("contact", id(&c1), "customer"), a);
    assert_eq!(pointing("contact", id(&c2), "customer"), a);
    assert_eq!(pointing("contact", id(&binned), "customer"), a, "in the recycle bin too");
    assert!(!after[&format!("contact/{}", id(&binned))]["deleted_at"].is_null(), "and still there");
    assert_eq!(pointing("opportunity", id(&o1), "customer"), a);
    assert_eq!(pointing("activity", id(&visit), "customer"), a);
    assert_eq!(pointing("customer", id(&child), "parent"), a);

    for (record, action) in [(id(&c1), "merge"), (b.as_str(), "delete"), (a.as_str(), "update")] {
        let entry = last_audit(&t, record).await;
        assert_eq!((entry["action"].as_str(), entry["source"].as_str()), (Some(action), Some("merge")), "{entry}");
    }
    assert_eq!(events(&t, &b).await.last(), Some(&("deleted".to_owned(), "merge".to_owned())));
    assert_eq!(events(&t, id(&o1)).await.last(), Some(&("updated".to_owned(), "merge".to_owned())));

    let undo = format!("/api/v1/merges/{}/undo", merged["merge"].as_str().unwrap());
    let undone = t.post(&undo, json!({})).await.expect(200);
    assert_eq!(undone["restored"], json!([b, c]));
    assert_eq!(undone["repointed"], 7);
    assert_eq!(snapshot(&t).await, before, "every value and reference as it was");
    assert_eq!(events(&t, &b).await.last(), Some(&("restored".to_owned(), "merge".to_owned())));
    let again = t.post(&undo, json!({})).await.expect(409);
    assert!(again["detail"].as_str().unwrap().contains("already undone"), "{again}");
}

async fn undo_is_refused_once_the_survivor_changed(t: TestApp) {
    let a = t.create("customer", json!({"name": "华东精密机械", "industry": "manufacturing"})).await;
    let b = t.create("customer", json!({"name": "华东精密", "phone": "021-5555"})).await;
    let contact = t.create("contact", json!({"name": "赵磊", "customer": id(&b)})).await;
    let merged =
        t.post("/api/v1/records/customer/merge", json!({"ids": [id(&a), id(&b)], "master": id(&a)})).await.expect(200);
    let version = merged["survivor"]["version"].clone();
    t.patch(
        &format!("/api/v1/records/customer/{}", id(&a)),
        json!({"name": "华东精密机械有限公司", "version": version}),
    )
    .await
    .expect(200);
    let undo = format!("/api/v1/merges/{}/undo", merged["merge"].as_str().unwrap());
    let refused = t.post(&undo, json!({})).await.expect(409);
    assert!(refused["detail"].as_str().unwrap().contains("has changed since"), "{refused}");
    t.get(&format!("/api/v1/records/customer/{}", id(&b))).await.expect(404);
    let contact = t.get(&format!("/api/v1/records/contact/{}", id(&contact))).await.expect(200);
    assert_eq!(contact["customer"], id(&a), "nothing was undone");
}

async fn a_rep_merges_only_what_they_may_change_and_delete(t: TestApp) {
    let east = t.create("department", json!({"name": "华东区"})).await;
    let (rep_id, rep) = t.user("rep_a", &["sales_rep"], Some(id(&east))).await;
    let (other_id, other) = t.user("rep_b", &["sales_rep"], Some(id(&east))).await;
    let mine = create_as(&t, &rep, "宁波港联贸易").await;
    let mine_too = create_as(&t, &rep, "宁波港联").await;
    let theirs = create_as(&t, &other, "宁波港联贸易有限公司").await;
    // A record the rep may not change points at a loser: the merge moves it all the same.
    let foreign = t.create("contact", json!({"name": "孙强", "customer": id(&mine_too), "owner": other_id})).await;
    let before = snapshot(&t).await;
    let merge = |ids: Vec<&str>| json!({"ids": ids, "master": ids[0]});

    let outside = merge(vec![id(&mine), id(&theirs)]);
    t.as_user(&rep, Method::POST, "/api/v1/records/customer/merge", Some(outside.clone())).await.expect(404);
    let preview = json!({"ids": [id(&mine), id(&theirs)]});
    t.as_user(&rep, Method::POST, "/api/v1/records/customer/merge/preview", Some(preview)).await.expect(404);
    let shared = json!({"ids": [id(&theirs)], "user": rep_id, "access": "read"});
    t.as_user(&other, Method::POST, "/api/v1/records/customer/bulk/share", Some(shared)).await.expect(200);
    let refused = t.as_user(&rep, Method::POST, "/api/v1/records/customer/merge", Some(outside)).await.expect(403);
    assert!(refused["detail"].as_str().unwrap().contains("not change"), "{refused}");
    // Nor into it: their own records would move to a record that is not theirs.
    let into = merge(vec![id(&theirs), id(&mine)]);
    t.as_user(&rep, Method::POST, "/api/v1/records/customer/merge", Some(into)).await.expect(403);
    assert_eq!(snapshot(&t).await, before, "nothing changed");

    let merged = t
        .as_user(&rep, Method::POST, "/api/v1/records/customer/merge", Some(merge(vec![id(&mine), id(&mine_too)])))
        .await
        .expect(200);
    assert_eq!(merged["repointed"], 1);
    let moved = t.get(&format!("/api/v1/records/contact/{}", id(&foreign))).await.expect(200);
    assert_eq!(moved["customer"], id(&mine));
    assert_eq!(moved["owner"], other_id, "still theirs");
}

async fn create_as(t: &TestApp, token: &str, name: &str) -> Value {
    t.as_user(token, Method::POST, "/api/v1/records/customer", Some(json!({"name": name}))).await.expect(201)
}

async fn bad_merges_write_nothing(t: TestApp) {
    let a = t.create("customer", json!({"name": "甲公司"})).await;
    let b = t.create("customer", json!({"name": "乙公司"})).await;
    let contact = t.create("contact", json!({"name": "周敏", "customer": id(&a)})).await;
    let (a, b) = (id(&a), id(&b));
    let audit = t.get("/api/v1/audit?limit=1000").await.expect(200)["data"].as_array().unwrap().len();
    let before = snapshot(&t).await;
    let many: Vec<String> = (0..21).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for (body, status, says) in [
        (json!({"ids": [a], "master": a}), 400, "2 to 20"),
        (json!({"ids": [a, a], "master": a}), 400, "given twice"),
        (json!({"ids": many, "master": a}), 400, "2 to 20"),
        (json!({"ids": [a, id(&contact)], "master": a}), 422, "is a contact, not a customer"),
        (json!({"ids": [a, "not-an-id"], "master": a}), 422, "not a record id"),
        (json!({"ids": [a, b], "master": uuid::Uuid::now_v7()}), 422, "one of `ids`"),
        (json!({"ids": [a, b], "master": a, "values": {"no_such_field": 1}}), 422, "no_such_field"),
        (json!({"ids": [a, b], "master": a, "values": {"annual_revenue": "lots"}}), 422, "annual_revenue"),
        (json!({"ids": [a, uuid::Uuid::now_v7()], "master": a}), 404, "no customer"),
        (json!({"ids": [a, b]}), 400, "master"),
    ] {
        let reply = t.post("/api/v1/records/customer/merge", body.clone()).await.expect(status);
        assert!(reply.to_string().contains(says), "{body} → {reply}");
    }
    let users = json!({"ids": [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()], "master": a});
    t.post("/api/v1/records/user/merge", users).await.expect(422);
    assert_eq!(snapshot(&t).await, before);
    assert_eq!(t.get("/api/v1/audit?limit=1000").await.expect(200)["data"].as_array().unwrap().len(), audit);
    t.post(&format!("/api/v1/merges/{}/undo", uuid::Uuid::now_v7()), json!({})).await.expect(404);
    t.post("/api/v1/merges/nonsense/undo", json!({})).await.expect(404);
}

async fn merging_and_undoing_on_screen(t: TestApp) {
    let kept = t
        .create(
            "customer",
            json!({"name": "苏州恒通电子", "industry": "manufacturing", "phone": "0512-1234", "region": "江苏省"}),
        )
        .await;
    let other = t.create("customer", json!({"name": "苏州恒通", "industry": "trade", "email": "ht@example.cn"})).await;
    t.create("contact", json!({"name": "陈静", "customer": id(&other)})).await;
    let (a, b) = (id(&kept), id(&other));
    let mut browser = Browser::sign_in(&t, "admin", ADMIN_PASSWORD).await;
    assert!(browser.page("/e/customer").await.contains("id=\"bulk-merge\""));
    let alone = browser.submit("/e/customer/bulk", &[("action", "merge"), ("ids", a)]).await;
    assert!(browser.page(&alone).await.contains("请至少选择两条记录再合并"));
    let to = browser.submit("/e/customer/bulk", &[("action", "merge"), ("ids", b), ("ids", a)]).await;
    assert_eq!(to, format!("/e/customer/merge?ids={b},{a}"));
    let page = browser.page(&to).await;
    assert!(page.contains("1 条关联记录将指向保留的记录"), "{page}");
    assert!(page.contains(&format!("value=\"{a}\" checked data-master")), "the richer record is proposed");
    assert!(page.contains(&format!("name=\"f_industry\" value=\"{a}\" checked")), "{page}");
    assert!(page.contains(&format!("name=\"f_email\" value=\"{b}\" checked")), "filled from the other");

    let survivor = browser.submit(&to, &[("master", a), ("f_industry", b), ("f_email", b), ("f_phone", a)]).await;
    assert_eq!(survivor, format!("/e/customer/{a}"));
    let page = browser.page(&survivor).await;
    assert!(page.contains("已合并 2 条记录。"), "the flash");
    assert!(page.contains("已合并 2 条记录 · ") && page.contains("id=\"undo-merge\""), "{page}");
    assert!(page.contains("商贸业"), "the industry chosen");
    let bin = browser.page("/e/customer/bin").await;
    assert!(bin.contains(&format!("已合并到 <a href=\"/e/customer/{a}\">苏州恒通电子</a>")), "{bin}");
    let moved = browser.get(&format!("/e/customer/{b}")).await;
    assert_eq!(moved.location.as_deref(), Some(survivor.as_str()), "the loser's page leads to the survivor");
    assert!(browser.page(&survivor).await.contains("您打开的记录已合并到这条记录"));

    let undo = between_quotes(&page, "action=\"/merges/");
    let back = browser.submit(&format!("/merges/{undo}"), &[("back", &survivor)]).await;
    assert_eq!(back, survivor);
    let page = browser.page(&survivor).await;
    assert!(page.contains("已撤销合并") && !page.contains("id=\"undo-merge\""), "{page}");
    let list = browser.page("/e/customer").await;
    assert!(list.contains(&format!("data-id=\"{a}\"")) && list.contains(&format!("data-id=\"{b}\"")), "both back");
}

/// The text after `start` up to the next quote.
fn between_quotes(text: &str, start: &str) -> String {
    let from = text.find(start).expect("the text is there") + start.len();
    text[from..].split('"').next().unwrap_or_default().to_owned()
}
