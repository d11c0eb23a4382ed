//! The outbox consumers: durable cursors, at-least-once delivery that consumers survive,
//! retries with a growing delay, dead events an administrator sees and sends again; on
//! PostgreSQL with two nodes, a cursor per node for node-local consumers and one claimed
//! node for shared ones, and sign-outs heard at once.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;
use chrono::TimeDelta;
use crm::app::App;
use crm::jobs::{Consumer, Handled, Runner};
use crm_store::jobs::Event;
use serde_json::{Value, json};
use support::TestApp;

backends!(
    assignments_leave_one_reminder_each,
    a_failing_consumer_retries_then_waits_for_an_administrator,
    a_stream_of_writes_wakes_a_consumer_every_so_often_not_after_each
);

/// Runs consumers until none of `names` has events waiting on this node. On PostgreSQL an event becomes
/// readable once every transaction of the server that began before it has ended, and the
/// other tests' transactions keep running; on SQLite the first run reads everything.
async fn drain(t: &TestApp, runner: &Runner, now: chrono::DateTime<chrono::Utc>, names: &[&str]) -> usize {
    let mut handled = 0;
    for _ in 0..200 {
        handled += runner.run_once(now).await.unwrap();
        let cursors = crm_store::jobs::cursors(&t.app.db).await.unwrap();
        let ours = |c: &&crm_store::jobs::CursorState| c.node.is_empty() || c.node == t.app.node;
        if cursors.iter().filter(ours).filter(|c| names.contains(&c.consumer.as_str())).all(|c| c.lag == 0) {
            return handled;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("events kept waiting for {names:?}");
}

fn id(record: &Value) -> &str {
    record["id"].as_str().expect("a record has an id")
}

/// The messages of a user's open reminders.
async fn reminders(t: &TestApp, token: &str) -> Vec<String> {
    let open = t.as_user(token, Method::GET, "/api/v1/reminders", None).await.expect(200);
    open["data"].as_array().unwrap().iter().map(|r| r["message"].as_str().unwrap().to_owned()).collect()
}

async fn assignments_leave_one_reminder_each(t: TestApp) {
    let runner = Runner::new(t.app.clone(), crm::jobs::standard());
    let (rep, token) = t.user("rep", &["sales_rep"], None).await;
    // A new consumer starts from now: what was written before is not news.
    runner.run_once(t.app.now()).await.unwrap();
    assert!(reminders(&t, &token).await.is_empty());

    let given = t.create("customer", json!({"name": "分给业务员的客户", "owner": rep})).await;
    t.create("customer", json!({"name": "管理员自己的客户"})).await;
    let status = t.get("/api/v1/admin/jobs").await.expect(200);
    let assignments = status["consumers"].as_array().unwrap().iter().find(|c| c["name"] == "assignments").unwrap();
    assert_eq!(assignments["shared"], true);
    assert_eq!(assignments["lag"], 2, "two events wait: {status}");

    let all = ["caches", "assignments", "search"];
    let each = crm::jobs::standard().len();
    assert_eq!(drain(&t, &runner, t.app.now(), &all).await, 2 * each, "two events, for each consumer");
    let told = reminders(&t, &token).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("分给业务员的客户") && told[0].contains("已分配给你"), "{told:?}");
    let status = t.get("/api/v1/admin/jobs").await.expect(200);
    assert!(status["consumers"].as_array().unwrap().iter().all(|c| c["lag"] == 0), "{status}");

    // Delivered twice (a node stopped before it moved its cursor), still one reminder.
    let cursor = crm_store::jobs::cursor(&t.app.db, "assignments", "").await.unwrap().unwrap();
    crm_store::jobs::advance(&t.app.db, "assignments", "", Default::default(), t.app.now()).await.unwrap();
    drain(&t, &runner, t.app.now(), &all).await;
    assert_eq!(reminders(&t, &token).await.len(), 1, "the same event leaves the same reminder");
    assert!(crm_store::jobs::cursor(&t.app.db, "assignments", "").await.unwrap().unwrap().seq >= cursor.seq);

    // Given through bulk assignment: told; an import of their customers: not row by row.
    let mine = t.create("customer", json!({"name": "后来分配的客户"})).await;
    t.post("/api/v1/records/customer/bulk/assign", json!({"ids": [id(&mine)], "owner": rep})).await.expect(200);
    t.post("/api/v1/records/customer/bulk/create", json!({"records": [{"name": "导入一", "owner": rep}]}))
        .await
        .expect(201);
    drain(&t, &runner, t.app.now(), &all).await;
    let told = reminders(&t, &token).await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told.iter().any(|m| m.contains("后来分配的客户")));
    assert!(!told.iter().any(|m| m.contains("导入一")));
    assert!(told.iter().any(|m| m.contains(given["name"].as_str().unwrap())));
}

/// A consumer that fails on leads while told to, and counts what it was handed.
struct Flaky {
    failing: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
}

impl Consumer for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn shared(&self) -> bool {
        true
    }

    fn handle<'a>(&'a self, _app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move {
            self.seen.fetch_add(1, Ordering::SeqCst);
            if event.entity == "lead" && self.failing.load(Ordering::SeqCst) {
                Err(format!("cannot reach the mail server for {}", event.record_id))
            } else {
                Ok(())
            }
        })
    }
}

async fn a_failing_consumer_retries_then_waits_for_an_administrator(t: TestApp) {
    let failing = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(AtomicUsize::new(0));
    let flaky = || Flaky { failing: failing.clone(), seen: seen.clone() };
    let runner = Runner::new(t.app.clone(), vec![Box::new(flaky())]);
    runner.run_once(t.app.now()).await.unwrap();
    t.create("lead", json!({"name": "失败的线索"})).await;
    t.create("customer", json!({"name": "不受影响的客户"})).await;
    let start = t.app.now();
    drain(&t, &runner, start, &["flaky"]).await;
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the customer's event went on past the failed one");
    let failure = |status: &Value| {
        let flaky = status["consumers"].as_array().unwrap().iter().find(|c| c["name"] == "flaky").unwrap().clone();
        (flaky["retrying"].as_u64().unwrap(), flaky["dead"].as_u64().unwrap(), flaky["failures"][0].clone())
    };
    let (retrying, dead, first) = failure(&t.get("/api/v1/admin/jobs").await.expect(200));
    assert_eq!((retrying, dead), (1, 0));
    assert_eq!(first["attempts"], 1);
    assert!(first["error"].as_str().unwrap().contains("mail server"));

    // Not again before its time; then with a growing delay, until it is dead.
    runner.run_once(start).await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2, "not retried before the delay");
    let mut at = start;
    for attempt in 2..=crm::jobs::MAX_ATTEMPTS {
        at += TimeDelta::hours(2);
        runner.run_once(at).await.unwrap();
        let (_, _, failed) = failure(&t.get("/api/v1/admin/jobs").await.expect(200));
        assert_eq!(failed["attempts"], attempt);
    }
    let (retrying, dead, _) = failure(&t.get("/api/v1/admin/jobs").await.expect(200));
    assert_eq!((retrying, dead), (0, 1), "kept as dead");
    let before = seen.load(Ordering::SeqCst);
    runner.run_once(at + TimeDelta::days(1)).await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), before, "a dead event is not tried on its own");

    // The administrator sends it again once the cause is fixed; a restarted runner goes on
    // from where the last one stopped.
    failing.store(false, Ordering::SeqCst);
    let revived = t.post("/api/v1/admin/jobs/flaky/retry", json!({})).await.expect(200);
    assert_eq!(revived["retrying"], 1);
    let restarted = Runner::new(t.app.clone(), vec![Box::new(flaky())]);
    assert_eq!(restarted.run_once(t.app.now() + TimeDelta::days(2)).await.unwrap(), 1, "only the revived event");
    let (retrying, dead, _) = failure(&t.get("/api/v1/admin/jobs").await.expect(200));
    assert_eq!((retrying, dead), (0, 0));
    t.post("/api/v1/admin/jobs/nobody/retry", json!({})).await.expect(404);
}

/// The total of a node's customer list.
async fn total(t: &TestApp) -> i64 {
    t.list("customer", None, "count=true").await.expect(200)["total"].as_i64().unwrap()
}

/// Two nodes on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_postgres() {
    let Some(a) = TestApp::postgres().await else { return };
    let b = a.another_node().await;
    let (rep, token) = a.user("rep", &["sales_rep"], None).await;
    let on_a = Runner::new(a.app.clone(), crm::jobs::standard());
    let on_b = Runner::new(b.app.clone(), crm::jobs::standard());
    on_a.run_once(a.app.now()).await.unwrap();
    on_b.run_once(b.app.now()).await.unwrap();

    // Each node keeps its caches by its own cursor: B's list total follows A's write.
    let before = total(&b).await;
    a.create("customer", json!({"name": "节点甲写的客户", "owner": rep})).await;
    drain(&b, &on_b, b.app.now(), &["caches"]).await;
    assert_eq!(total(&b).await, before + 1, "B forgot its total when it read A's event");
    let cursors = crm_store::jobs::cursors(&a.app.db).await.unwrap();
    let caches: Vec<_> = cursors.iter().filter(|c| c.consumer == "caches").collect();
    assert_eq!(caches.len(), 2, "a caches cursor per node: {cursors:?}");

    // The shared consumer runs on one node: the reminder is left once.
    drain(&a, &on_a, a.app.now(), &["caches", "assignments"]).await;
    assert_eq!(reminders(&a, &token).await.len(), 1);
    let claimed = crm_store::jobs::cursors(&a.app.db).await.unwrap();
    let assignments = claimed.iter().find(|c| c.consumer == "assignments").unwrap();
    assert_eq!(assignments.claimed_by.as_deref(), Some(a.app.node.as_str()));
    a.create("customer", json!({"name": "第二个客户", "owner": rep})).await;
    on_b.run_once(b.app.now()).await.unwrap();
    assert_eq!(reminders(&a, &token).await.len(), 1, "B does not run what A holds");
    // When A stops renewing its claim, B takes over.
    drain(&b, &on_b, b.app.now() + TimeDelta::seconds(31), &["assignments"]).await;
    assert_eq!(reminders(&a, &token).await.len(), 2);

    // A field added on A is live on B, and a role changed on A holds on B, within seconds.
    crm::serve::background(b.app.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.as_user(&token, Method::GET, "/api/v1/records/budget", None).await.expect(200);
    let field = json!({"name": "wechat_id", "type": "text", "label": {"zh-CN": "微信号", "en": "WeChat ID"}});
    a.post("/api/v1/meta/entities/customer/fields", field).await.expect(201);
    let mut role = a.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"].as_object_mut().unwrap().remove("budget");
    a.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    let mut followed = false;
    for _ in 0..60 {
        let entity = b.get("/api/v1/meta/entities/customer").await.expect(200);
        let has_field = entity["entity"]["fields"].as_array().unwrap().iter().any(|f| f["name"] == "wechat_id");
        let budgets = b.as_user(&token, Method::GET, "/api/v1/records/budget", None).await.status.as_u16();
        if has_field && budgets != 200 {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(followed, "node B follows A's metadata and role changes");

    // Disabling on A ends the rep's token on B at once.
    b.as_user(&token, Method::GET, "/api/v1/records/customer", None).await.expect(200);
    a.post(&format!("/api/v1/admin/users/{rep}/disable"), json!({})).await.expect(200);
    let mut refused = false;
    for _ in 0..20 {
        if b.as_user(&token, Method::GET, "/api/v1/records/customer", None).await.status.as_u16() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "node B still trusted a token of a disabled user");
}

/// A consumer that counts the events it was handed and the runs that found any.
struct Counting {
    seen: Arc<AtomicUsize>,
    runs: Arc<AtomicUsize>,
}

impl Consumer for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn shared(&self) -> bool {
        false
    }

    fn handle<'a>(&'a self, _app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move {
            if event.entity == "customer" {
                self.seen.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })
    }

    fn flush<'a>(&'a self, _app: &'a App, _reached: crm_store::jobs::Position) -> Handled<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// Under a stream of writes a consumer runs at most every 100 ms and takes the events of many
/// writes at once, instead of following each write with a run (a read of the outbox, a cursor
/// write, an index commit) of its own; and none of the events is left behind.
async fn a_stream_of_writes_wakes_a_consumer_every_so_often_not_after_each(t: TestApp) {
    let (seen, runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let runner = Runner::new(t.app.clone(), vec![Box::new(Counting { seen: seen.clone(), runs: runs.clone() })]);
    let running = tokio::spawn(runner.run());
    // The consumer's first run starts its cursor; what it is handed afterwards is news.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = 40;
    let started = std::time::Instant::now();
    for n in 0..writes {
        t.create("customer", json!({"name": format!("连续写入的客户{n}")})).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let spent = started.elapsed();
    for _ in 0..200 {
        if seen.load(Ordering::SeqCst) == writes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    running.abort();
    assert_eq!(seen.load(Ordering::SeqCst), writes, "every write's event was handed over");
    // At most one run per 100 ms of writing, the first and the last besides.
    let most = spent.as_millis() as usize / 100 + 2;
    let runs = runs.load(Ordering::SeqCst);
    assert!(runs <= most, "{runs} runs for {writes} writes in {spent:?}: at most {most}");
    assert!(runs >= 2, "the events were taken as they came, not all at the end: {runs} run(s)");
}
