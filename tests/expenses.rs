//! Expenses against budgets, on SQLite and PostgreSQL: an expense finds the budget
//! of its campaign, its owner or the owner's department for its date; the budget keeps what
//! is used and left as expenses are submitted, withdrawn, deleted or the amount changes; an
//! expense over budget needs a second approval by the manager of the department above, which
//! the approver sees on the record with the budget and what is left.

mod support;

use axum::http::Method;
use serde_json::{Value, json};
use support::browser::Browser;
use support::{TestApp, USER_PASSWORD};

backends!(an_expense_draws_on_its_budget, an_expense_over_budget_needs_the_next_level);

fn id(record: &Value) -> String {
    record["id"].as_str().expect("a record has an id").to_owned()
}

async fn get(t: &TestApp, entity: &str, id: &str) -> Value {
    t.get(&format!("/api/v1/records/{entity}/{id}")).await.expect(200)
}

/// 集团 above 华东销售部; the rep in 华东 under its manager, whose own manager heads 集团.
struct Company {
    rep: (String, String),
    manager: (String, String),
    head: (String, String),
    sales: String,
}

async fn company(t: &TestApp) -> Company {
    let group = t.create("department", json!({"name": "集团"})).await;
    let sales = t.create("department", json!({"name": "华东销售部", "parent": id(&group)})).await;
    let head = t.user("zhao_zong", &["manager"], Some(&id(&group))).await;
    let manager = t.user("qian_jingli", &["manager"], Some(&id(&sales))).await;
    let rep = t.user("sun_yewu", &["sales_rep"], Some(&id(&sales))).await;
    for (department, manager) in [(&group, &head.0), (&sales, &manager.0)] {
        let change = json!({"manager": manager, "version": department["version"]});
        t.patch(&format!("/api/v1/records/department/{}", id(department)), change).await.expect(200);
    }
    Company { rep, manager, head, sales: id(&sales) }
}

async fn expense(t: &TestApp, token: &str, body: Value) -> Value {
    t.as_user(token, Method::POST, "/api/v1/records/expense", Some(body)).await.expect(201)
}

async fn step(t: &TestApp, token: &str, expense: &Value, action: &str) -> support::Reply {
    let uri = format!("/api/v1/records/expense/{}/approval", id(expense));
    t.as_user(token, Method::POST, &uri, Some(json!({"action": action, "comment": "见附件"}))).await
}

async fn an_expense_draws_on_its_budget(t: TestApp) {
    let c = company(&t).await;
    let december = |name: &str, amount: &str| json!({"name": name, "amount": amount, "period_start": "2026-12-01", "period_end": "2026-12-31"});
    let mut own = december("孙业务 12月差旅", "1000.00");
    own["holder"] = json!(c.rep.0);
    let own = t.create("budget", own).await;
    let mut team = december("华东销售部 12月", "5000.00");
    team["department"] = json!(c.sales);
    let team = t.create("budget", team).await;
    let campaign = t.create("campaign", json!({"name": "上海展会"})).await;
    let mut fair = december("上海展会预算", "3000.00");
    fair["campaign"] = json!(id(&campaign));
    let fair = t.create("budget", fair).await;
    let fresh = get(&t, "budget", &id(&fair)).await;
    assert_eq!(fresh["remaining"], "3000.00", "a new budget has all of it left: {fresh}");

    // The rep's own budget first, then the department's when the date is outside it; a
    // campaign's expense draws on the campaign's budget.
    let taxi = expense(&t, &c.rep.1, json!({"name": "打车", "amount": "600.00", "expense_date": "2026-12-05"})).await;
    assert_eq!(taxi["budget"], id(&own), "{taxi}");
    assert_eq!(taxi["budget_left"], "400.00");
    assert_eq!(taxi["over_budget"], false);
    let stand = json!({"name": "展位", "amount": "2000.00", "expense_date": "2026-12-06", "campaign": id(&campaign)});
    assert_eq!(expense(&t, &c.rep.1, stand).await["budget"], id(&fair));
    let outside = json!({"name": "年初差旅", "amount": "80.00", "expense_date": "2027-01-03"});
    assert_eq!(expense(&t, &c.rep.1, outside).await["budget"], Value::Null, "no budget covers January");
    let budget = get(&t, "budget", &id(&own)).await;
    assert_eq!((&budget["used"], &budget["remaining"]), (&json!("0.00"), &json!("1000.00")), "drafts draw nothing");

    // Submitted and approved expenses count; a recalled one no longer does.
    step(&t, &c.rep.1, &taxi, "submit").await.expect(200);
    let budget = get(&t, "budget", &id(&own)).await;
    assert_eq!((&budget["used"], &budget["remaining"]), (&json!("600.00"), &json!("400.00")), "{budget}");
    step(&t, &c.rep.1, &taxi, "recall").await.expect(200);
    assert_eq!(get(&t, "budget", &id(&own)).await["used"], "0.00");
    step(&t, &c.rep.1, &taxi, "submit").await.expect(200);
    step(&t, &c.manager.1, &taxi, "approve").await.expect(200);
    assert_eq!(get(&t, "expense", &id(&taxi)).await["approval_status"], "approved", "within budget: one level");

    // A larger budget leaves more; a deleted expense gives its amount back.
    let version = get(&t, "budget", &id(&own)).await["version"].clone();
    let change = json!({"amount": "1500.00", "version": version});
    t.patch(&format!("/api/v1/records/budget/{}", id(&own)), change).await.expect(200);
    assert_eq!(get(&t, "budget", &id(&own)).await["remaining"], "900.00");
    let meal = expense(&t, &c.rep.1, json!({"name": "招待", "amount": "300.00", "expense_date": "2026-12-08"})).await;
    step(&t, &c.rep.1, &meal, "submit").await.expect(200);
    assert_eq!(get(&t, "budget", &id(&own)).await["remaining"], "600.00");
    step(&t, &c.rep.1, &meal, "recall").await.expect(200);
    t.as_user(&c.rep.1, Method::DELETE, &format!("/api/v1/records/expense/{}", id(&meal)), None).await.expect(204);
    let budget = get(&t, "budget", &id(&own)).await;
    assert_eq!((&budget["used"], &budget["remaining"]), (&json!("600.00"), &json!("900.00")), "{budget}");

    // The budget lists what was drawn on it; the rep reads budgets but does not change them.
    let drawn = t.get(&format!("/api/v1/records/budget/{}/related/expenses", id(&own))).await.expect(200);
    assert_eq!(drawn["data"].as_array().map(Vec::len), Some(1), "{drawn}");
    let uri = format!("/api/v1/records/budget/{}", id(&team));
    let change = json!({"amount": "99999.00", "version": team["version"]});
    t.as_user(&c.rep.1, Method::PATCH, &uri, Some(change)).await.expect(403);
}

async fn an_expense_over_budget_needs_the_next_level(t: TestApp) {
    let c = company(&t).await;
    let budget = json!({
        "name": "孙业务 12月", "holder": c.rep.0, "amount": "1000.00",
        "period_start": "2026-12-01", "period_end": "2026-12-31",
    });
    let budget = t.create("budget", budget).await;
    let trip = json!({"name": "北京出差", "amount": "1200.00", "expense_date": "2026-12-10"});
    let trip = expense(&t, &c.rep.1, trip).await;
    assert_eq!((&trip["budget_left"], &trip["over_budget"]), (&json!("-200.00"), &json!(true)), "{trip}");
    step(&t, &c.rep.1, &trip, "submit").await.expect(200);
    assert_eq!(get(&t, "budget", &id(&budget)).await["remaining"], "-200.00");

    // The department's manager approves first; the record stays submitted for the level above.
    step(&t, &c.manager.1, &trip, "approve").await.expect(200);
    assert_eq!(get(&t, "expense", &id(&trip)).await["approval_status"], "submitted");
    let again = step(&t, &c.manager.1, &trip, "approve").await.expect(403);
    assert!(again["detail"].as_str().unwrap_or_default().contains("next level"), "{again}");
    let reminders = t.as_user(&c.head.1, Method::GET, "/api/v1/reminders", None).await.expect(200);
    let told = reminders["data"].as_array().expect("reminders").iter().any(|r| r["record_id"] == id(&trip));
    assert!(told, "the head of the department above hears it is their turn: {reminders}");

    // The approver sees the budget, what is left and that it is over, and whose turn it is.
    let mut head = Browser::sign_in(&t, "zhao_zong", USER_PASSWORD).await;
    let page = head.page(&format!("/e/expense/{}", id(&trip))).await;
    assert!(page.contains("待上级审批"), "the status says the next level is awaited");
    let facts = support::browser::between(&page, "id=\"approval-facts\"", "</dl>").expect("the approval's facts");
    for shown in ["孙业务 12月", "-200", "超出预算", "初审通过"] {
        assert!(facts.contains(shown) || page.contains(shown), "{shown} on the approval: {facts}");
    }

    // The head approves; a rejection at the second level sends it back for a new first one.
    step(&t, &c.head.1, &trip, "approve").await.expect(200);
    assert_eq!(get(&t, "expense", &id(&trip)).await["approval_status"], "approved");
    let dinner = json!({"name": "客户宴请", "amount": "100.00", "expense_date": "2026-12-11"});
    let dinner = expense(&t, &c.rep.1, dinner).await;
    assert_eq!(dinner["over_budget"], true, "nothing is left after the trip: {dinner}");
    step(&t, &c.rep.1, &dinner, "submit").await.expect(200);
    step(&t, &c.manager.1, &dinner, "approve").await.expect(200);
    step(&t, &c.head.1, &dinner, "reject").await.expect(200);
    step(&t, &c.rep.1, &dinner, "submit").await.expect(200);
    step(&t, &c.head.1, &dinner, "approve").await.expect(200);
    assert_eq!(get(&t, "expense", &id(&dinner)).await["approval_status"], "submitted", "a first approval again");
    step(&t, &c.head.1, &dinner, "approve").await.expect(200);
    assert_eq!(get(&t, "expense", &id(&dinner)).await["approval_status"], "approved");
}
