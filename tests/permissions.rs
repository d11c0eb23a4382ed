//! Roles, data scopes, sharing, pools and field permissions, enforced in SQL: for each role
//! and scope, the exact set of records each operation sees, on SQLite and PostgreSQL.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use serde_json::{Value, json};
use support::TestApp;

backends!(
    each_role_sees_exactly_its_scope,
    edits_follow_the_edit_scope,
    assignment_pools_sharing_and_transfer,
    the_pool_is_claimed_within_limits_and_takes_back_the_neglected,
    fields_and_modules_follow_the_roles,
    accounts_sessions_and_throttling,
    no_route_leaks_a_record_outside_the_scope,
);

const PASSWORD: &str = "Start-123";
const NEW_PASSWORD: &str = "Chosen-456";

/// A sales organisation: a tree of departments, people in roles, customers owned across it,
/// a public pool and shares.
struct Org {
    t: TestApp,
    /// Login → token.
    tokens: BTreeMap<&'static str, String>,
    /// Name → user id.
    users: BTreeMap<&'static str, String>,
    /// Department name → id.
    departments: BTreeMap<&'static str, String>,
    /// Customer name → id.
    customers: BTreeMap<&'static str, String>,
}

impl Org {
    async fn new(t: TestApp) -> Self {
        let mut departments: BTreeMap<&'static str, String> = BTreeMap::new();
        for (name, parent) in
            [("hq", None), ("sales", Some("hq")), ("s1", Some("sales")), ("s2", Some("sales")), ("s3", Some("sales"))]
        {
            let parent: Option<String> = parent.map(|p: &str| departments[p].clone());
            let created = t.create("department", json!({"name": name, "parent": parent})).await;
            departments.insert(name, created["id"].as_str().unwrap().to_owned());
        }
        t.put(
            "/api/v1/meta/roles/dept_reader",
            json!({"name": "dept_reader", "label": {"zh-CN": "部门查看", "en": "Department reader"},
                   "entities": {"customer": {"actions": ["read"], "scope": "department"}}}),
        )
        .await
        .expect(200);
        t.put(
            "/api/v1/meta/roles/service_only",
            json!({"name": "service_only", "label": {"zh-CN": "服务", "en": "Service"},
                   "entities": {"service_request": {"actions": ["read", "create"], "scope": "own"}}}),
        )
        .await
        .expect(200);
        let mut org =
            Org { t, tokens: BTreeMap::new(), users: BTreeMap::new(), departments, customers: BTreeMap::new() };
        for (login, role, department) in [
            ("mgr_sales", "manager", "sales"),
            ("mgr1", "manager", "s1"),
            ("rep1a", "sales_rep", "s1"),
            ("rep1b", "sales_rep", "s1"),
            ("rep2", "sales_rep", "s2"),
            ("rep3", "sales_rep", "s3"),
            ("dr2", "dept_reader", "s2"),
            ("svc", "service_only", "hq"),
        ] {
            org.add_user(login, role, department).await;
        }
        let pool = org.t.create("user", json!({"name": "公共客户池", "login": "pool", "pool": true})).await;
        org.users.insert("pool", pool["id"].as_str().unwrap().to_owned());
        let admin_id = org.t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().unwrap().to_owned();
        org.users.insert("admin", admin_id);
        for (name, owner) in [
            ("A1", "rep1a"),
            ("A2", "rep1a"),
            ("B1", "rep1b"),
            ("C1", "rep2"),
            ("D1", "rep3"),
            ("M1", "mgr_sales"),
            ("P1", "pool"),
            ("X1", "admin"),
        ] {
            let created = org.t.create("customer", json!({"name": name, "owner": org.users[owner]})).await;
            org.customers.insert(name, created["id"].as_str().unwrap().to_owned());
        }
        let body = json!({"ids": [org.customers["X1"]], "user": org.users["rep2"], "access": "read"});
        org.t.post("/api/v1/records/customer/bulk/share", body).await.expect(200);
        let body = json!({"ids": [org.customers["D1"]], "department": org.departments["s1"], "access": "edit"});
        org.t.post("/api/v1/records/customer/bulk/share", body).await.expect(200);
        org
    }

    async fn add_user(&mut self, login: &'static str, role: &str, department: &str) {
        let body = json!({
            "user": {"name": login, "login": login, "department": self.departments[department]},
            "password": PASSWORD,
            "roles": [role],
        });
        let created = self.t.post("/api/v1/admin/users", body).await.expect(201);
        self.users.insert(login, created["id"].as_str().unwrap().to_owned());
        let token = self.t.login(login, PASSWORD).await.expect("a new user logs in");
        let blocked = self.as_token(&token, Method::GET, "/api/v1/records/customer", None).await;
        assert_eq!(blocked.body["code"], "password_change_required", "{login}: {}", blocked.body);
        let changed = self
            .as_token(
                &token,
                Method::POST,
                "/api/v1/auth/password",
                Some(json!({"current_password": PASSWORD, "password": NEW_PASSWORD})),
            )
            .await;
        assert_eq!(changed.status.as_u16(), 204, "{}", changed.body);
        self.tokens.insert(login, token);
    }

    async fn as_token(&self, token: &str, method: Method, uri: &str, body: Option<Value>) -> support::Reply {
        self.t.call(method, uri, body, Some(token)).await
    }

    async fn as_user(&self, login: &str, method: Method, uri: &str, body: Option<Value>) -> support::Reply {
        self.as_token(&self.tokens[login], method, uri, body).await
    }

    /// The customer names a user's list shows.
    async fn visible(&self, login: &str) -> BTreeSet<String> {
        let reply = self.as_user(login, Method::GET, "/api/v1/records/customer?limit=500&count=true", None).await;
        let body = reply.expect(200);
        let names: BTreeSet<String> =
            body["data"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(body["total"].as_u64().unwrap() as usize, names.len(), "count and list agree for {login}");
        names
    }

    fn id(&self, customer: &str) -> &str {
        &self.customers[customer]
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn each_role_sees_exactly_its_scope(t: TestApp) {
    let org = Org::new(t).await;
    let expected: [(&str, &[&str]); 8] = [
        ("mgr_sales", &["A1", "A2", "B1", "C1", "D1", "M1", "P1"]),
        ("mgr1", &["A1", "A2", "B1", "D1", "P1"]),
        ("rep1a", &["A1", "A2", "D1", "P1"]),
        ("rep1b", &["B1", "D1", "P1"]),
        ("rep2", &["C1", "P1", "X1"]),
        ("rep3", &["D1", "P1"]),
        ("dr2", &["C1"]),
        ("svc", &[]),
    ];
    for (login, names) in expected {
        if login == "svc" {
            let reply = org.as_user(login, Method::GET, "/api/v1/records/customer", None).await;
            assert_eq!(reply.status.as_u16(), 404, "customers are not a module of svc");
            continue;
        }
        assert_eq!(org.visible(login).await, set(names), "list of {login}");
        for (name, id) in &org.customers {
            let reply = org.as_user(login, Method::GET, &format!("/api/v1/records/customer/{id}"), None).await;
            let expect = if names.contains(name) { 200 } else { 404 };
            assert_eq!(reply.status.as_u16(), expect, "{login} reads {name}");
            let history =
                org.as_user(login, Method::GET, &format!("/api/v1/records/customer/{id}/history"), None).await;
            assert_eq!(history.status.as_u16(), expect, "{login} reads the history of {name}");
        }
        let groups =
            org.as_user(login, Method::GET, "/api/v1/records/customer/groups?by=status", None).await.expect(200);
        let counted: i64 = groups["groups"].as_array().unwrap().iter().map(|g| g["count"].as_i64().unwrap()).sum();
        assert_eq!(counted as usize, names.len(), "grouped counts of {login}");
    }
    let admin = org.t.list("customer", None, "count=true").await.expect(200);
    assert_eq!(admin["total"], 8);

    // Related panels apply the source's scope: a contact of A1 is rep1a's, not rep2's.
    let contact = org
        .as_user(
            "rep1a",
            Method::POST,
            "/api/v1/records/contact",
            Some(json!({"name": "联系人", "customer": org.id("A1")})),
        )
        .await
        .expect(201);
    let panel = format!("/api/v1/records/customer/{}/related/contacts", org.id("A1"));
    let seen = org.as_user("rep1a", Method::GET, &panel, None).await.expect(200);
    assert_eq!(seen["data"][0]["id"], contact["id"]);
    assert_eq!(org.as_user("rep2", Method::GET, &panel, None).await.status.as_u16(), 404);
    let seen = org.as_user("mgr_sales", Method::GET, &panel, None).await.expect(200);
    assert_eq!(seen["data"].as_array().unwrap().len(), 1, "the manager sees his rep's contact");
    // A filter cannot reach past the scope either.
    let filtered = org
        .as_user(
            "rep3",
            Method::GET,
            &format!(
                "/api/v1/records/customer?filter={}",
                support::encode(&json!({"field": "name", "op": "eq", "value": "A1"}).to_string())
            ),
            None,
        )
        .await
        .expect(200);
    assert!(filtered["data"].as_array().unwrap().is_empty());
}

async fn edits_follow_the_edit_scope(t: TestApp) {
    let org = Org::new(t).await;
    let patch = |name: &str, version: i64| {
        (format!("/api/v1/records/customer/{}", org.id(name)), json!({"version": version, "phone": "010-12345678"}))
    };
    for (login, name, status) in [
        ("rep2", "X1", 403),  // shared for reading only
        ("rep1a", "D1", 200), // shared with rep1a's department for editing
        ("rep1a", "C1", 404), // not visible at all
        ("rep1a", "P1", 403), // the pool is visible, not editable
        ("mgr1", "B1", 200),  // within the manager's department
        ("mgr1", "C1", 404),  // another department
        ("dr2", "C1", 403),   // read-only role
    ] {
        let current = org.t.get(&format!("/api/v1/records/customer/{}", org.id(name))).await.expect(200);
        let (uri, body) = patch(name, current["version"].as_i64().unwrap());
        let reply = org.as_user(login, Method::PATCH, &uri, Some(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{login} edits {name}: {}", reply.body);
    }
    let bulk = org
        .as_user(
            "rep1a",
            Method::POST,
            "/api/v1/records/customer/bulk/update",
            Some(json!({"ids": [org.id("A1"), org.id("C1"), org.id("P1")], "set": {"class": "key"}})),
        )
        .await
        .expect(200);
    let statuses: Vec<i64> =
        bulk["results"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 404, 403], "the pool's P1 is seen, not changed in place");
    let deleted = org
        .as_user(
            "rep2",
            Method::POST,
            "/api/v1/records/customer/bulk/delete",
            Some(json!({"ids": [org.id("X1"), org.id("C1")]})),
        )
        .await
        .expect(200);
    let statuses: Vec<i64> =
        deleted["results"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [403, 200], "X1 is shared with rep2 for reading only, as PATCH answers");
    org.t.get(&format!("/api/v1/records/customer/{}", org.id("X1"))).await.expect(200);
    let bin = org.as_user("rep2", Method::GET, "/api/v1/records/customer?deleted=true", None).await;
    assert_eq!(bin.status.as_u16(), 403, "sales reps may not restore");
    let restored = org
        .as_user("mgr_sales", Method::POST, &format!("/api/v1/records/customer/{}/restore", org.id("C1")), None)
        .await;
    assert_eq!(restored.status.as_u16(), 200, "{}", restored.body);
    let created = org.as_user("dr2", Method::POST, "/api/v1/records/customer", Some(json!({"name": "新"}))).await;
    assert_eq!(created.status.as_u16(), 403, "a read-only role cannot create");
    let import = org
        .as_user(
            "rep1a",
            Method::POST,
            "/api/v1/records/customer/bulk/create",
            Some(json!({"records": [{"name": "x"}]})),
        )
        .await;
    assert_eq!(import.status.as_u16(), 403, "reps may not import");
    let metadata = org
        .as_user(
            "mgr_sales",
            Method::POST,
            "/api/v1/meta/entities/customer/fields",
            Some(json!({"name": "x", "type": "text", "label": {"zh-CN": "甲", "en": "A"}})),
        )
        .await;
    assert_eq!(metadata.status.as_u16(), 403);
}

async fn the_pool_is_claimed_within_limits_and_takes_back_the_neglected(t: TestApp) {
    let mut org = Org::new(t).await;
    let mut role = org.t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"]["customer"]["claim_limits"] = json!({"held": 3, "per_day": 2});
    org.t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    for name in ["P2", "P3", "P4"] {
        let created = org.t.create("customer", json!({"name": name, "owner": org.users["pool"]})).await;
        org.customers.insert(name, created["id"].as_str().unwrap().to_owned());
    }
    let claim = |names: &[&str]| json!({"ids": names.iter().map(|n| org.id(n)).collect::<Vec<_>>()});
    let statuses = |reply: &Value| -> Vec<(i64, String)> {
        reply["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["status"].as_i64().unwrap(), r["error"]["code"].as_str().unwrap_or("").to_owned()))
            .collect()
    };
    let uri = "/api/v1/records/customer/bulk/claim";
    // rep1a owns A1 and A2: one more fits under the limit of three held.
    let reply = org.as_user("rep1a", Method::POST, uri, Some(claim(&["P1", "P2"]))).await.expect(200);
    assert_eq!(statuses(&reply), [(200, String::new()), (403, "claim_limit_held".to_owned())]);
    assert!(org.visible("rep1a").await.contains("P1"));
    assert!(!org.visible("rep3").await.contains("P1"), "P1 left the pool");
    let history = org.t.get(&format!("/api/v1/records/customer/{}/history", org.id("P1"))).await.expect(200);
    let last = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("claim"), Some(org.users["rep1a"].as_str())));
    // rep2 claims twice in a day, hands one back, and may still not claim a third time today.
    for name in ["P2", "P3"] {
        let reply = org.as_user("rep2", Method::POST, uri, Some(claim(&[name]))).await.expect(200);
        assert_eq!(statuses(&reply), [(200, String::new())], "{name}");
    }
    let back = json!({"ids": [org.id("C1")], "owner": org.users["pool"]});
    org.as_user("rep2", Method::POST, "/api/v1/records/customer/bulk/assign", Some(back)).await.expect(200);
    let reply = org.as_user("rep2", Method::POST, uri, Some(claim(&["P4"]))).await.expect(200);
    assert_eq!(statuses(&reply), [(403, "claim_limit_per_day".to_owned())]);
    // Only what waits in the pool is claimed, and only by roles that see the pool.
    let share = json!({"ids": [org.id("X1")], "user": org.users["rep3"], "access": "read"});
    org.t.post("/api/v1/records/customer/bulk/share", share).await.expect(200);
    let reply = org.as_user("rep3", Method::POST, uri, Some(claim(&["X1", "A1"]))).await.expect(200);
    assert_eq!(statuses(&reply).iter().map(|s| s.0).collect::<Vec<_>>(), [403, 404], "X1 is only shared; A1 unseen");
    let reply = org.as_user("dr2", Method::POST, uri, Some(claim(&["P4"]))).await.expect(200);
    assert_eq!(statuses(&reply)[0].0, 403, "a role without the pool");
    assert!(org.visible("rep3").await.contains("P4"), "still in the pool");

    // A done activity is a customer's last follow-up; 31 days on, the customers their owners
    // neither followed up nor got within 30 days go back to the pool, and the owners hear it.
    let later = chrono::Utc::now() + chrono::TimeDelta::days(20);
    let activity = json!({"name": "回访", "customer": org.id("A2"), "status": "done", "done_at": later.to_rfc3339()});
    org.as_user("rep1a", Method::POST, "/api/v1/records/activity", Some(activity)).await.expect(201);
    let a2 = org.t.get(&format!("/api/v1/records/customer/{}", org.id("A2"))).await.expect(200);
    let followed = chrono::DateTime::parse_from_rfc3339(a2["last_followed_at"].as_str().unwrap()).unwrap();
    assert_eq!(followed.timestamp(), later.timestamp(), "kept by the engine from the activity: {a2}");
    crm::schedule::run_due(&org.t.app, chrono::Utc::now() + chrono::TimeDelta::days(31)).await.unwrap();
    let owner = async |name: &str| {
        let record = org.t.get(&format!("/api/v1/records/customer/{}", org.id(name))).await.expect(200);
        record["owner"].as_str().unwrap().to_owned()
    };
    assert_eq!(owner("A1").await, org.users["pool"], "not followed up: back in the pool");
    assert_eq!(owner("P1").await, org.users["pool"], "claimed and left alone: back in the pool");
    assert_eq!(owner("A2").await, org.users["rep1a"], "followed up within 30 days");
    assert!(org.visible("rep3").await.contains("A1"));
    let rep = uuid::Uuid::parse_str(&org.users["rep1a"]).unwrap();
    let told = crm_store::system::open_reminders(&org.t.app.db, rep, chrono::Utc::now() + chrono::TimeDelta::days(40))
        .await
        .unwrap();
    assert!(
        told.iter().any(|r| crm_model::Labels::message_in(&r.message, "zh-CN") == "A1：超过 30 天未跟进，已退回公海"),
        "{told:?}"
    );
}

async fn assignment_pools_sharing_and_transfer(t: TestApp) {
    let org = Org::new(t).await;
    let assign = |names: &[&str], owner: &str| json!({"ids": names.iter().map(|n| org.id(n)).collect::<Vec<_>>(), "owner": org.users[owner]});
    // A manager gives a pool customer to a rep (C-2).
    let reply = org
        .as_user("mgr_sales", Method::POST, "/api/v1/records/customer/bulk/assign", Some(assign(&["P1", "X1"], "rep2")))
        .await
        .expect(200);
    let statuses: Vec<i64> =
        reply["results"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 404], "X1 is outside the manager's scope");
    assert!(org.visible("rep2").await.contains("P1"));
    assert!(!org.visible("rep3").await.contains("P1"), "P1 left the pool");
    // A rep may not assign to a colleague, but may hand a customer back to the pool (C-7).
    let reply =
        org.as_user("rep1a", Method::POST, "/api/v1/records/customer/bulk/assign", Some(assign(&["A2"], "rep2"))).await;
    assert_eq!(reply.status.as_u16(), 403);
    org.as_user("rep1a", Method::POST, "/api/v1/records/customer/bulk/assign", Some(assign(&["A2"], "pool")))
        .await
        .expect(200);
    assert!(org.visible("rep3").await.contains("A2"), "A2 is in the pool now");
    let history = org.t.get(&format!("/api/v1/records/customer/{}/history", org.id("A2"))).await.expect(200);
    assert_eq!(history["data"].as_array().unwrap().last().unwrap()["action"], "assign");

    // An owner shares with a colleague, then takes it back (C-3).
    let share = json!({"ids": [org.id("A1")], "user": org.users["rep3"], "access": "read"});
    org.as_user("rep1a", Method::POST, "/api/v1/records/customer/bulk/share", Some(share.clone())).await.expect(200);
    assert!(org.visible("rep3").await.contains("A1"));
    let refused = org
        .as_user(
            "rep3",
            Method::POST,
            "/api/v1/records/customer/bulk/share",
            Some(json!({"ids": [org.id("A1")], "user": org.users["rep2"], "access": "read"})),
        )
        .await
        .expect(200);
    assert_eq!(refused["results"][0]["status"], 404, "a reader cannot share further");
    org.as_user("rep1a", Method::POST, "/api/v1/records/customer/bulk/unshare", Some(share)).await.expect(200);
    assert!(!org.visible("rep3").await.contains("A1"));

    // A leaver's records move in one operation.
    let moved = org
        .t
        .post(&format!("/api/v1/admin/users/{}/transfer", org.users["rep1b"]), json!({"to": org.users["rep1a"]}))
        .await
        .expect(200);
    assert_eq!(moved["moved"]["customer"], 1);
    assert!(org.visible("rep1a").await.contains("B1"));
    assert!(!org.visible("rep1b").await.contains("B1"));
}

async fn fields_and_modules_follow_the_roles(t: TestApp) {
    let org = Org::new(t).await;
    let product = org
        .t
        .create("product", json!({"name": "主机", "code": "P-1", "cost_price": "100", "standard_price": "150"}))
        .await;
    let uri = format!("/api/v1/records/product/{}", product["id"].as_str().unwrap());
    let seen = org.as_user("rep1a", Method::GET, &uri, None).await.expect(200);
    assert!(seen.get("cost_price").is_none(), "hidden from reps: {seen}");
    assert_eq!(seen["standard_price"], "150.00");
    let listed = org.as_user("rep1a", Method::GET, "/api/v1/records/product", None).await.expect(200);
    assert!(listed["data"][0].get("cost_price").is_none());
    for query in [
        "fields=cost_price",
        "sort=cost_price",
        "filter=%7B%22field%22%3A%22cost_price%22%2C%22op%22%3A%22gt%22%2C%22value%22%3A1%7D",
    ] {
        let reply = org.as_user("rep1a", Method::GET, &format!("/api/v1/records/product?{query}"), None).await;
        assert_eq!(reply.status.as_u16(), 400, "{query}");
    }
    let groups = org.as_user("rep1a", Method::GET, "/api/v1/records/product/groups?by=name&sum=cost_price", None).await;
    assert_eq!(groups.status.as_u16(), 400);
    assert_eq!(org.t.get(&uri).await.expect(200)["cost_price"], "100.00", "the administrator sees it");
    let meta = org.as_user("rep1a", Method::GET, "/api/v1/meta/entities/product", None).await.expect(200);
    assert!(!meta["entity"].to_string().contains("cost_price"));

    let version = org.t.get(&format!("/api/v1/records/customer/{}", org.id("A1"))).await.expect(200)["version"].clone();
    let read_only = org
        .as_user(
            "rep1a",
            Method::PATCH,
            &format!("/api/v1/records/customer/{}", org.id("A1")),
            Some(json!({"version": version, "credit_limit": "5000"})),
        )
        .await
        .expect(422);
    assert_eq!(read_only["errors"][0]["code"], "read_only");

    let modules = org.as_user("svc", Method::GET, "/api/v1/meta/entities", None).await.expect(200);
    let names: Vec<&str> = modules["data"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["service_request"]);
    let openapi = org.as_user("svc", Method::GET, "/api/openapi.json", None).await.expect(200);
    assert!(openapi["paths"].get("/api/v1/records/customer").is_none());
    assert!(openapi["paths"].get("/api/v1/records/service_request").is_some());
    assert_eq!(org.as_user("svc", Method::GET, "/api/v1/meta/entities/customer", None).await.status.as_u16(), 404);
    assert_eq!(org.as_user("svc", Method::GET, "/api/v1/audit", None).await.status.as_u16(), 403);
    assert_eq!(org.as_user("svc", Method::GET, "/api/v1/meta/roles", None).await.status.as_u16(), 403);
}

async fn accounts_sessions_and_throttling(t: TestApp) {
    let org = Org::new(t).await;
    // A disabled user's token and session stop at once; their records stay.
    org.as_user("rep3", Method::GET, "/api/v1/records/customer", None).await.expect(200);
    let body = json!({"login": "rep3", "password": NEW_PASSWORD}).to_string().into_bytes();
    let session = org.t.raw(Method::POST, "/api/v1/auth/login", body, Some("application/json"), None).await;
    let session_cookie = session.set_cookie.expect("a session cookie").split(';').next().unwrap().to_owned();
    org.t.with_cookie(Method::GET, "/api/v1/records/customer", None, &session_cookie, None).await.expect(200);
    org.t.post(&format!("/api/v1/admin/users/{}/disable", org.users["rep3"]), json!({})).await.expect(200);
    assert_eq!(org.as_user("rep3", Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 401);
    let after = org.t.with_cookie(Method::GET, "/api/v1/records/customer", None, &session_cookie, None).await;
    assert_eq!(after.status.as_u16(), 401, "the session ended with the account");
    assert!(org.t.login("rep3", NEW_PASSWORD).await.is_none(), "a disabled user cannot log in");
    assert_eq!(
        org.t.get(&format!("/api/v1/records/customer/{}", org.id("D1"))).await.expect(200)["owner"],
        org.users["rep3"].as_str()
    );
    org.t.post(&format!("/api/v1/admin/users/{}/enable", org.users["rep3"]), json!({})).await.expect(200);
    assert!(org.t.login("rep3", NEW_PASSWORD).await.is_some());

    // A revoked token fails on the next request.
    let token = org
        .as_user("rep2", Method::POST, "/api/v1/auth/tokens", Some(json!({"name": "sync"})))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    org.as_token(&token, Method::GET, "/api/v1/records/customer", None).await.expect(200);
    let listed = org.as_user("rep2", Method::GET, "/api/v1/auth/tokens", None).await.expect(200);
    let id = listed["data"].as_array().unwrap().iter().find(|t| t["name"] == "sync").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!listed.to_string().contains(&token), "tokens are never shown again");
    assert_eq!(
        org.as_user("rep2", Method::DELETE, &format!("/api/v1/auth/tokens/{id}"), None).await.status.as_u16(),
        204
    );
    assert_eq!(org.as_token(&token, Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 401);

    // Browser sessions: an HttpOnly cookie, and a CSRF token for changes.
    let login = org
        .t
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            json!({"login": "rep2", "password": NEW_PASSWORD}).to_string().into_bytes(),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(login.status.as_u16(), 200, "{}", login.body);
    let set_cookie = login.set_cookie.clone().expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = login.body["csrf_token"].as_str().unwrap().to_owned();
    let read = org.t.with_cookie(Method::GET, "/api/v1/records/customer", None, &cookie, None).await;
    assert_eq!(read.status.as_u16(), 200);
    let without =
        org.t.with_cookie(Method::POST, "/api/v1/records/customer", Some(json!({"name": "会话"})), &cookie, None).await;
    assert_eq!(without.status.as_u16(), 403);
    assert_eq!(without.body["code"], "csrf_failed");
    let wrong = org
        .t
        .with_cookie(Method::POST, "/api/v1/records/customer", Some(json!({"name": "会话"})), &cookie, Some("nope"))
        .await;
    assert_eq!(wrong.status.as_u16(), 403);
    let with = org
        .t
        .with_cookie(Method::POST, "/api/v1/records/customer", Some(json!({"name": "会话"})), &cookie, Some(&csrf))
        .await;
    assert_eq!(with.status.as_u16(), 201, "{}", with.body);
    let tampered = format!("{}x", cookie);
    assert_eq!(
        org.t.with_cookie(Method::GET, "/api/v1/records/customer", None, &tampered, None).await.status.as_u16(),
        401
    );
    let logout = org.t.with_cookie(Method::POST, "/api/v1/auth/logout", None, &cookie, Some(&csrf)).await;
    assert_eq!(logout.status.as_u16(), 204);
    assert_eq!(
        org.t.with_cookie(Method::GET, "/api/v1/records/customer", None, &cookie, None).await.status.as_u16(),
        401
    );

    // Brute force: after 5 failures the login is refused even with the right password.
    for _ in 0..5 {
        assert!(org.t.login("rep1b", "wrong password").await.is_none());
    }
    let throttled = org
        .t
        .raw(
            Method::POST,
            "/api/v1/auth/token",
            json!({"login": "rep1b", "password": NEW_PASSWORD}).to_string().into_bytes(),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(throttled.status.as_u16(), 429);
    assert_eq!(throttled.body["code"], "too_many_attempts");
    let unknown = org
        .t
        .raw(
            Method::POST,
            "/api/v1/auth/token",
            json!({"login": "nobody", "password": "x"}).to_string().into_bytes(),
            Some("application/json"),
            None,
        )
        .await;
    let wrong = org
        .t
        .raw(
            Method::POST,
            "/api/v1/auth/token",
            json!({"login": "rep2", "password": "x"}).to_string().into_bytes(),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(unknown.body["detail"], wrong.body["detail"], "the same answer whether the login exists or not");

    // Resetting a password signs the user out and asks for a new one.
    let reset =
        org.t.post(&format!("/api/v1/admin/users/{}/reset-password", org.users["rep2"]), json!({})).await.expect(200);
    let temporary = reset["temporary_password"].as_str().unwrap().to_owned();
    assert_eq!(org.as_user("rep2", Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 401);
    let token = org.t.login("rep2", &temporary).await.unwrap();
    assert_eq!(org.as_token(&token, Method::GET, "/api/v1/records/customer", None).await.status.as_u16(), 403);

    // The audit log has the logins, failures and account actions.
    let audit = org.t.get(&format!("/api/v1/audit?record_id={}&limit=50", org.users["rep3"])).await.expect(200);
    let actions: BTreeSet<&str> =
        audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["login", "disabled", "enabled", "account_created", "password_changed"] {
        assert!(actions.contains(action), "{action} in {actions:?}");
    }
    let failed = org.t.get("/api/v1/audit?action=login_failed").await.expect(200);
    assert!(failed["data"].as_array().unwrap().len() >= 5);
    let meta = org.t.get("/api/v1/audit?entity=meta:role").await.expect(200);
    assert!(!meta["data"].as_array().unwrap().is_empty(), "role changes are audited");
}

/// Walks every GET route of the OpenAPI document as a sales rep, with every record id in
/// the path, and checks that no response mentions a customer outside the rep's scope.
async fn no_route_leaks_a_record_outside_the_scope(t: TestApp) {
    let org = Org::new(t).await;
    // A contact under an invisible customer, to be found through panels if scopes leaked.
    let hidden_contact = org.t.create("contact", json!({"name": "秘密", "customer": org.id("A1")})).await;
    let visible = ["D1", "P1"];
    let secrets: Vec<String> = org
        .customers
        .iter()
        .filter(|(name, _)| !visible.contains(name))
        .map(|(_, id)| id.clone())
        .chain([hidden_contact["id"].as_str().unwrap().to_owned()])
        .collect();
    let ids: Vec<String> = org.customers.values().cloned().chain(secrets.iter().cloned()).collect();
    let document = org.as_user("rep3", Method::GET, "/api/openapi.json", None).await.expect(200);
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let mut uris = vec![path.clone()];
        for (placeholder, values) in [
            ("{id}", ids.clone()),
            ("{entity}", vec!["customer".to_owned(), "contact".to_owned()]),
            ("{kind}", vec!["layouts".to_owned(), "related".to_owned()]),
            ("{name}", vec!["customer".to_owned()]),
        ] {
            uris = uris
                .into_iter()
                .flat_map(|uri| {
                    if uri.contains(placeholder) {
                        values.iter().map(|v| uri.replace(placeholder, v)).collect::<Vec<_>>()
                    } else {
                        vec![uri]
                    }
                })
                .collect();
        }
        for uri in uris {
            let uri = if uri.ends_with("/groups") { format!("{uri}?by=id") } else { uri };
            let reply = org.as_user("rep3", Method::GET, &uri, None).await;
            assert!(reply.status.as_u16() < 500, "{uri}: {}", reply.body);
            let text = reply.body.to_string();
            for secret in &secrets {
                // The id in the request path may be echoed in a 404's message; nothing else.
                if reply.status.as_u16() == 404 && uri.contains(secret.as_str()) {
                    continue;
                }
                assert!(!text.contains(secret.as_str()), "{uri} shows {secret}: {text}");
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "walked {checked} requests");
}
