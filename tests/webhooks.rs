//! Webhooks (P-10), on SQLite and PostgreSQL, against real HTTP receivers on local ports:
//! subscriptions are metadata; each event is queued once per webhook from the outbox and
//! posted signed (HMAC-SHA256 of the timestamp and the body); a receiver that answers 500
//! gets it again later with a growing delay, and counts every event exactly once by the
//! delivery id; a filter and the event kinds choose what is posted; a slow receiver delays
//! no other; a dead one is given up after its attempts and can be sent again by hand; two
//! nodes on one database post each event once.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use support::TestApp;
use support::browser::{Browser, between};
use tokio::sync::Notify;

backends!(
    deliveries_are_signed_retried_and_counted_once,
    filters_and_kinds_choose_what_is_posted,
    a_slow_receiver_delays_no_other_and_a_dead_one_is_given_up,
    the_studio_sets_one_up_and_shows_its_deliveries,
);

/// What a receiver saw: the deliveries it took (id, event, body), and how many posts it
/// refused for their signature.
#[derive(Default)]
struct Seen {
    taken: Vec<(String, String, Value)>,
    bad_signatures: usize,
    /// Answer 500 to this many posts first.
    failing: usize,
    secret: String,
}

type Shared = Arc<Mutex<Seen>>;

/// Checks the signature the way a receiver should, by the secret it was given.
fn signed(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp = header("x-crm-timestamp");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let Some(hex) = header("x-crm-signature").strip_prefix("sha256=").map(str::to_owned) else { return false };
    let Ok(tag) =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16)).collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    !timestamp.is_empty() && ring::hmac::verify(&key, &message, &tag).is_ok()
}

/// A receiver on a local port: its address and what it saw.
async fn receiver() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let state = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = state.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                if !signed(&seen.secret, &headers, &body) {
                    seen.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                if seen.failing > 0 {
                    seen.failing -= 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let id = headers["x-crm-delivery"].to_str().unwrap().to_owned();
                let event = headers["x-crm-event"].to_str().unwrap().to_owned();
                seen.taken.push((id, event, serde_json::from_slice(&body).unwrap()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

async fn subscribe(t: &TestApp, name: &str, doc: Value) {
    let mut doc = doc;
    doc["name"] = json!(name);
    doc["label"] = json!({"zh-CN": name, "en": name});
    t.put(&format!("/api/v1/meta/webhooks/{name}"), doc).await.expect(200);
}

async fn secret(t: &TestApp, name: &str) -> String {
    let made = t.post(&format!("/api/v1/webhooks/{name}/secret"), json!({})).await.expect(200);
    made["secret"].as_str().expect("the secret, this once").to_owned()
}

/// Runs the outbox, then sends what is due, `after` past the current clock.
async fn deliver(t: &TestApp, after: TimeDelta) -> usize {
    t.run_jobs().await;
    t.app.hold_clock(t.app.now() + after);
    crm::webhooks::deliver::deliver_due(&t.app).await.expect("deliveries are sent")
}

async fn log(t: &TestApp, name: &str) -> Vec<Value> {
    let log = t.get(&format!("/api/v1/webhooks/{name}/deliveries")).await.expect(200);
    log["data"].as_array().expect("deliveries").clone()
}

async fn deliveries_are_signed_retried_and_counted_once(t: TestApp) {
    t.app.hold_clock(Utc::now());
    let (url, seen) = receiver().await;
    subscribe(
        &t,
        "erp_customers",
        json!({"entity": "customer", "events": ["created", "updated", "deleted"], "url": url}),
    )
    .await;

    // Without a secret nothing is posted: the attempt says why and waits.
    let first = t.create("customer", json!({"name": "北京立友信科技有限公司"})).await;
    assert_eq!(deliver(&t, TimeDelta::zero()).await, 1);
    let queued = log(&t, "erp_customers").await;
    assert_eq!(queued.len(), 1);
    assert_eq!((&queued[0]["status"], &queued[0]["attempts"]), (&json!("pending"), &json!(1)));
    assert!(queued[0]["attempt_log"][0]["answer"].as_str().unwrap().contains("no secret"), "{queued:?}");
    assert!(seen.lock().unwrap().taken.is_empty());

    // With the secret, a receiver answering 500 twice gets it on the third attempt, each after
    // a longer wait: not before it is due.
    let secret = secret(&t, "erp_customers").await;
    {
        let mut seen = seen.lock().unwrap();
        seen.secret = secret.clone();
        seen.failing = 2;
    }
    assert_eq!(deliver(&t, TimeDelta::seconds(10)).await, 0, "not due before 30 s");
    assert_eq!(deliver(&t, TimeDelta::seconds(21)).await, 1, "due 30 s after the first attempt");
    assert_eq!(deliver(&t, TimeDelta::seconds(59)).await, 0, "the next one after 60 s");
    assert_eq!(deliver(&t, TimeDelta::seconds(2)).await, 1);
    assert_eq!(deliver(&t, TimeDelta::seconds(121)).await, 1);
    let delivered = log(&t, "erp_customers").await;
    assert_eq!((&delivered[0]["status"], &delivered[0]["attempts"]), (&json!("delivered"), &json!(4)));
    let codes: Vec<&Value> =
        delivered[0]["attempt_log"].as_array().unwrap().iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&Value::Null, &json!(500), &json!(500), &json!(200)]);

    // A change and a delete of another customer; then the first delivery sent again by hand.
    let second = t.create("customer", json!({"name": "上海华东重工"})).await;
    let path = format!("/api/v1/records/customer/{}", second["id"].as_str().unwrap());
    t.patch(&path, json!({"phone": "021-62345678", "version": 1})).await.expect(200);
    t.delete(&path).await.expect(204);
    deliver(&t, TimeDelta::seconds(1)).await;
    let first_delivery = delivered[0]["id"].as_str().unwrap();
    t.post(&format!("/api/v1/webhooks/erp_customers/deliveries/{first_delivery}/redeliver"), json!({}))
        .await
        .expect(200);
    deliver(&t, TimeDelta::seconds(1)).await;
    // The outbox seen twice queues nothing twice.
    t.run_jobs().await;
    assert_eq!(deliver(&t, TimeDelta::hours(2)).await, 0, "nothing left to send");

    // Only administrators see and change webhooks.
    let (_, rep) = t.user("rep_hooks", &["sales_rep"], None).await;
    t.as_user(&rep, Method::GET, "/api/v1/webhooks/erp_customers/deliveries", None).await.expect(403);
    t.as_user(&rep, Method::POST, "/api/v1/webhooks/erp_customers/secret", Some(json!({}))).await.expect(403);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.bad_signatures, 0, "every post was signed with the secret");
    assert_eq!(seen.taken.len(), 5, "four events and one sent again");
    let mut unique: Vec<&(String, String, Value)> = Vec::new();
    for taken in &seen.taken {
        if !unique.iter().any(|u| u.0 == taken.0) {
            unique.push(taken);
        }
    }
    // Deliveries are posted side by side: they may arrive in any order.
    let mut events: Vec<(&str, &str)> =
        unique.iter().map(|(_, event, body)| (event.as_str(), body["record"]["name"].as_str().unwrap())).collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            ("created", "上海华东重工"),
            ("created", "北京立友信科技有限公司"),
            ("deleted", "上海华东重工"),
            ("updated", "上海华东重工")
        ],
        "each event once, after deduplication by the delivery id"
    );
    let (id, _, body) = unique.iter().find(|(_, event, _)| event == "updated").copied().unwrap();
    assert_eq!(body["changed"], json!(["phone"]), "{body}");
    assert_eq!(body["record_id"], second["id"]);
    assert_eq!(body["id"], json!(id), "the body carries the delivery id too");
    assert_eq!(unique[0].2["record_id"], first["id"], "the first customer's, sent before the others were made");
}

async fn filters_and_kinds_choose_what_is_posted(t: TestApp) {
    t.app.hold_clock(Utc::now());
    let (vip_url, vip_seen) = receiver().await;
    let (stage_url, stage_seen) = receiver().await;
    let filter = json!({"field": "name", "op": "contains", "value": "VIP"});
    subscribe(
        &t,
        "vip_customers",
        json!({"entity": "customer", "events": ["created"], "url": vip_url, "filter": filter}),
    )
    .await;
    subscribe(&t, "deal_stages", json!({"entity": "opportunity", "events": ["stage_moved"], "url": stage_url})).await;
    vip_seen.lock().unwrap().secret = secret(&t, "vip_customers").await;
    stage_seen.lock().unwrap().secret = secret(&t, "deal_stages").await;
    let wrong = json!({"name": "broken", "label": {"zh-CN": "坏", "en": "bad"}, "entity": "nope", "events": ["created"], "url": vip_url});
    let refused = t.put("/api/v1/meta/webhooks/broken", wrong).await.expect(422);
    assert!(refused.to_string().contains("no entity `nope`"), "{refused}");

    let customer = t.create("customer", json!({"name": "VIP 华南贸易"})).await;
    t.create("customer", json!({"name": "普通客户"})).await;
    let deal = t.create("opportunity", json!({"name": "服务器采购", "customer": customer["id"]})).await;
    let path = format!("/api/v1/records/opportunity/{}", deal["id"].as_str().unwrap());
    t.patch(&path, json!({"amount": "5000.00", "version": 1})).await.expect(200);
    t.post(&format!("{path}/stage"), json!({"stage": "proposal"})).await.expect(200);
    deliver(&t, TimeDelta::seconds(1)).await;

    let names = |seen: &Shared| -> Vec<(String, String)> {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bad_signatures, 0);
        seen.taken
            .iter()
            .map(|(_, event, body)| (event.clone(), body["record"]["name"].as_str().unwrap().to_owned()))
            .collect()
    };
    assert_eq!(names(&vip_seen), [("created".to_owned(), "VIP 华南贸易".to_owned())], "only what the filter matches");
    assert_eq!(names(&stage_seen), [("stage_moved".to_owned(), "服务器采购".to_owned())], "the move, not the amount");
    let moved = stage_seen.lock().unwrap().taken[0].2.clone();
    assert_eq!(moved["record"]["stage"], "proposal");
}

async fn a_slow_receiver_delays_no_other_and_a_dead_one_is_given_up(t: TestApp) {
    t.app.hold_clock(Utc::now());
    // The slow receiver answers only once the fast one has been posted to: were deliveries
    // posted one after another with the slow one first, it would run out of time instead.
    let (fast_url, fast) = receiver().await;
    let released = Arc::new(Notify::new());
    let slow_seen: Shared = Arc::default();
    let (slow_state, wait) = (slow_seen.clone(), released.clone());
    let slow = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (seen, wait) = (slow_state.clone(), wait.clone());
            async move {
                wait.notified().await;
                let id = headers["x-crm-delivery"].to_str().unwrap().to_owned();
                seen.lock().unwrap().taken.push((id, String::new(), serde_json::from_slice(&body).unwrap()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    let fast_posts = fast.clone();
    let release = released.clone();
    tokio::spawn(async move {
        loop {
            if !fast_posts.lock().unwrap().taken.is_empty() {
                release.notify_one();
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    // A port nothing listens on.
    let dead_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    for (name, url) in [("a_slow", &slow_url), ("b_fast", &fast_url), ("c_dead", &dead_url)] {
        subscribe(&t, name, json!({"entity": "lead", "events": ["created"], "url": url})).await;
        let secret = secret(&t, name).await;
        if name == "b_fast" {
            fast.lock().unwrap().secret = secret;
        }
    }
    t.create("lead", json!({"name": "展会线索", "company": "深圳某科技"})).await;
    assert_eq!(deliver(&t, TimeDelta::seconds(1)).await, 3);
    assert_eq!(fast.lock().unwrap().taken.len(), 1);
    assert_eq!(slow_seen.lock().unwrap().taken.len(), 1, "the slow one answered in time");
    assert_eq!(log(&t, "a_slow").await[0]["status"], "delivered");
    assert_eq!(log(&t, "b_fast").await[0]["status"], "delivered");

    // The dead receiver: attempts until they are given up, then sent again by hand.
    let mut attempts = 1;
    while log(&t, "c_dead").await[0]["status"] == "pending" {
        assert!(deliver(&t, TimeDelta::hours(1)).await <= 1);
        attempts += 1;
        assert!(attempts <= crm::webhooks::deliver::MOST_ATTEMPTS + 1, "given up in time");
    }
    let dead = &log(&t, "c_dead").await[0];
    assert_eq!((&dead["status"], &dead["attempts"]), (&json!("failed"), &json!(crm::webhooks::deliver::MOST_ATTEMPTS)));
    assert!(dead["attempt_log"][0]["answer"].as_str().unwrap().contains("no answer"), "{dead}");
    let id = dead["id"].as_str().unwrap();
    t.post(&format!("/api/v1/webhooks/c_dead/deliveries/{id}/redeliver"), json!({})).await.expect(200);
    assert_eq!(log(&t, "c_dead").await[0]["status"], "pending", "sent again from now");
}

async fn the_studio_sets_one_up_and_shows_its_deliveries(t: TestApp) {
    t.app.hold_clock(Utc::now());
    let (url, seen) = receiver().await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let empty = b.page("/studio/webhooks").await;
    assert!(empty.contains("id=\"no-webhooks\"") && empty.contains("还没有推送"), "an empty list says what to do");

    let form = [
        ("name", "erp_orders"),
        ("label_zh", "订单推送到ERP"),
        ("label_en", "Orders to the ERP"),
        ("entity", "customer"),
        ("url", url.as_str()),
        ("event.created", "true"),
        ("enabled", "true"),
    ];
    assert_eq!(b.submit("/studio/webhooks", &form).await, "/studio/webhooks/erp_orders");
    let bad = [
        ("label_zh", "坏"),
        ("label_en", "bad"),
        ("entity", "customer"),
        ("url", "ftp://x"),
        ("event.created", "true"),
    ];
    let refused = b.post("/studio/webhooks/erp_orders", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("id=\"studio-errors\""), "what is wrong, on the page");
    let page = b.page("/studio/webhooks/erp_orders").await;
    assert!(page.contains("id=\"webhook-no-secret\""), "a webhook without a secret says so");
    assert!(page.contains("id=\"no-deliveries\""));

    // The secret shows once, on the page that made it.
    let made = b.post("/studio/webhooks/erp_orders/secret", &[]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let secret = between(&made.text, "value=\"whsec_", "\"").map(|s| format!("whsec_{s}")).expect("the secret, shown");
    assert!(!b.page("/studio/webhooks/erp_orders").await.contains(&secret), "and never again");
    seen.lock().unwrap().secret = secret;

    t.create("customer", json!({"name": "推送客户"})).await;
    deliver(&t, TimeDelta::seconds(1)).await;
    let page = b.page("/studio/webhooks/erp_orders").await;
    let row = between(&page, "data-status=\"delivered\"", "</tr>").expect("the delivered row");
    assert!(row.contains("新建") && row.contains("<code>200</code>"), "{row}");
    let id = between(&page, "data-redeliver=\"", "\"").expect("a send-again button");
    b.submit(&format!("/studio/webhooks/erp_orders/deliveries/{id}/redeliver"), &[]).await;
    deliver(&t, TimeDelta::seconds(1)).await;
    assert_eq!(seen.lock().unwrap().taken.len(), 2, "sent again");
    assert_eq!(b.submit("/studio/webhooks/erp_orders/delete", &[]).await, "/studio/webhooks");
    assert!(t.get("/api/v1/meta/webhooks/erp_orders").await.status == StatusCode::NOT_FOUND);
}

/// Two nodes on one PostgreSQL database, both running the outbox consumers and posting due
/// deliveries at the same time: each event is queued and posted once, not once per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_post_each_event_once_postgres() {
    let Some(a) = TestApp::postgres().await else { return };
    let b = a.another_node().await;
    let (url, seen) = receiver().await;
    subscribe(&a, "two_nodes", json!({"entity": "customer", "events": ["created"], "url": url})).await;
    seen.lock().unwrap().secret = secret(&a, "two_nodes").await;
    assert!(b.app.refresh_catalog().await.unwrap(), "node B picks up the webhook");
    for n in 0..20 {
        a.create("customer", json!({"name": format!("两节点客户{n:02}")})).await;
    }
    let on_a = crm::jobs::Runner::new(a.app.clone(), crm::jobs::standard());
    let on_b = crm::jobs::Runner::new(b.app.clone(), crm::jobs::standard());
    for _ in 0..100 {
        let (ran_a, ran_b) = tokio::join!(on_a.run_once(a.app.now()), on_b.run_once(b.app.now()));
        ran_a.unwrap();
        ran_b.unwrap();
        let (sent_a, sent_b) =
            tokio::join!(crm::webhooks::deliver::deliver_due(&a.app), crm::webhooks::deliver::deliver_due(&b.app));
        sent_a.unwrap();
        sent_b.unwrap();
        if seen.lock().unwrap().taken.len() >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ids: std::collections::HashSet<String> = {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.taken.len(), 20, "each event posted once, not once per node");
        assert_eq!(seen.bad_signatures, 0, "both nodes sign with the one secret");
        seen.taken.iter().map(|(id, _, _)| id.clone()).collect()
    };
    assert_eq!(ids.len(), 20);
    let log = log(&a, "two_nodes").await;
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{log:?}");
}
