//! Reports on SQLite and PostgreSQL: the totals of a fixed set of opportunities whose sums
//! are known, grouped by month of expected close and by stage, weighted by the stage's
//! probability, grouped through a lookup; a rep's report counts only what the rep reads;
//! a report on a hidden field or a bucket on a text is refused; the funnel's average days in
//! each stage, on a clock the test holds.

mod support;

use std::io::Cursor;

use axum::http::Method;
use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};
use support::TestApp;

backends!(
    reports_add_up_within_the_scope,
    saved_reports_are_shared_with_roles_and_checked,
    periods_count_from_today_and_numbers_compare_with_the_period_before,
    a_weekly_snapshot_keeps_the_forecast_as_it_was,
    reports_users_save_stay_private_until_shared_and_drill_into_their_records,
    the_funnel_shows_the_days_deals_stayed_in_each_stage,
    this_quarters_forecast_comes_by_stage_department_and_product_category
);

/// The opportunities: (customer, owner, stage, amount, expected close).
const DEALS: [(usize, usize, &str, &str, &str); 6] = [
    (0, 0, "proposal", "1000.10", "2026-01-15"),
    (0, 0, "won", "2000.00", "2026-01-31"),
    (1, 1, "proposal", "500.05", "2026-02-01"),
    (1, 1, "negotiation", "4000.00", "2026-02-28"),
    (1, 0, "initial_contact", "300.00", "2026-03-10"),
    (0, 1, "lost", "999.99", "2026-03-20"),
];

async fn deals(t: &TestApp) -> (Vec<String>, Vec<String>) {
    let (rep1, token1) = t.user("rep1", &["sales_rep"], None).await;
    let (rep2, _) = t.user("rep2", &["sales_rep"], None).await;
    let owners = [rep1, rep2];
    let mut customers = Vec::new();
    for (name, industry) in [("华东重工集团有限公司", "manufacturing"), ("立友信软件有限公司", "software")]
    {
        let customer = t.create("customer", json!({"name": name, "industry": industry, "owner": owners[0]})).await;
        customers.push(customer["id"].as_str().unwrap().to_owned());
    }
    for (n, (customer, owner, stage, amount, close)) in DEALS.iter().enumerate() {
        t.create(
            "opportunity",
            json!({"name": format!("商机{n}"), "customer": customers[*customer], "owner": owners[*owner],
                   "stage": stage, "amount": amount, "expected_close": close,
                   "lost_reason": (*stage == "lost").then_some("competitor")}),
        )
        .await;
    }
    (owners.to_vec(), vec![token1])
}

fn rows(report: &Value) -> Vec<(Vec<Value>, Vec<Value>)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["keys"].as_array().unwrap().clone(), r["values"].as_array().unwrap().clone()))
        .collect()
}

async fn reports_add_up_within_the_scope(t: TestApp) {
    let (_, tokens) = deals(&t).await;
    let by_month = json!({
        "entity": "opportunity",
        "group_by": [{"field": "expected_close", "bucket": "month"}],
        "measures": [{"agg": "count"}, {"agg": "sum", "field": "amount"}, {"agg": "weighted", "field": "amount"}],
        "chart": "bar",
    });
    let report = t.post("/api/v1/reports/run", by_month.clone()).await.expect(200);
    assert_eq!(
        rows(&report),
        vec![
            // 1000.10 × 50 % + 2000.00 × 100 % = 2500.05
            (vec![json!("2026-01")], vec![json!(2), json!("3000.10"), json!("2500.05")]),
            // 500.05 × 50 % = 250.025 → 250.03; 4000.00 × 75 % = 3000.00
            (vec![json!("2026-02")], vec![json!(2), json!("4500.05"), json!("3250.03")]),
            // 300.00 × 10 % + 999.99 × 0 %
            (vec![json!("2026-03")], vec![json!(2), json!("1299.99"), json!("30.00")]),
        ]
    );
    assert_eq!(report["measures"][1]["label"]["zh-CN"], "预计金额合计");
    // Report groups are cached until the next write: a new deal shows on the next run.
    let customer = t.list("customer", None, "").await.expect(200)["data"][0]["id"].clone();
    let deal = json!({"name": "新商机", "customer": customer, "stage": "won", "amount": "0.90", "expected_close": "2026-01-02"});
    let added = t.create("opportunity", deal).await;
    let again = t.post("/api/v1/reports/run", by_month.clone()).await.expect(200);
    assert_eq!(rows(&again)[0], (vec![json!("2026-01")], vec![json!(3), json!("3001.00"), json!("2500.95")]));
    t.delete(&format!("/api/v1/records/opportunity/{}", added["id"].as_str().unwrap())).await.expect(204);
    assert_eq!(
        rows(&t.post("/api/v1/reports/run", by_month.clone()).await.expect(200)),
        rows(&report),
        "and gone after its delete"
    );

    // rep1 reads only their own four opportunities' figures.
    let mine = t.as_user(&tokens[0], Method::POST, "/api/v1/reports/run", Some(by_month)).await.expect(200);
    assert_eq!(
        rows(&mine),
        vec![
            (vec![json!("2026-01")], vec![json!(2), json!("3000.10"), json!("2500.05")]),
            (vec![json!("2026-03")], vec![json!(1), json!("300.00"), json!("30.00")]),
        ]
    );

    // Two groups, one through the customer lookup; labels in both languages.
    let by_industry = json!({
        "entity": "opportunity",
        "group_by": [{"field": "industry", "through": "customer"}, {"field": "stage"}],
        "measures": [{"agg": "avg", "field": "amount"}, {"agg": "max", "field": "amount"}],
    });
    let report = t.post("/api/v1/reports/run", by_industry).await.expect(200);
    let software_negotiation = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["keys"] == json!(["software", "negotiation"]))
        .expect("a group per industry and stage");
    assert_eq!(software_negotiation["values"], json!(["4000.00", "4000.00"]));
    assert_eq!(software_negotiation["labels"][0]["zh-CN"], "软件与信息技术");
    assert_eq!(software_negotiation["labels"][1]["zh-CN"], "谈判审核");
    let manufacturing: Vec<&Value> =
        report["rows"].as_array().unwrap().iter().filter(|r| r["keys"][0] == "manufacturing").collect();
    assert_eq!(manufacturing.len(), 3, "proposal, won and lost");

    // Date-times fall into the caller's days: a record created now is in today's bucket.
    let today = t
        .post(
            "/api/v1/reports/run?offset=480",
            json!({"entity": "opportunity", "group_by": [{"field": "created_at", "bucket": "year"}],
                   "measures": [{"agg": "count"}]}),
        )
        .await
        .expect(200);
    assert_eq!(rows(&today), vec![(vec![json!(chrono_year())], vec![json!(6)])]);

    // Wrong reports are refused with where they are wrong.
    for (wrong, path) in [
        (
            json!({"entity": "opportunity", "group_by": [{"field": "name", "bucket": "month"}], "measures": [{"agg": "count"}]}),
            "/group_by/0/bucket",
        ),
        (json!({"entity": "opportunity", "measures": [{"agg": "sum", "field": "name"}]}), "/measures/0/field"),
        (json!({"entity": "opportunity", "measures": [{"agg": "sum"}]}), "/measures/0"),
        (
            json!({"entity": "opportunity", "group_by": [{"field": "nope"}], "measures": [{"agg": "count"}]}),
            "/group_by/0/field",
        ),
    ] {
        let error = t.post("/api/v1/reports/run", wrong).await.expect(400);
        assert_eq!(error["code"], "invalid_query");
        assert!(error["detail"].as_str().unwrap().contains(&format!("`{path}`")), "{error}");
    }
}

fn chrono_year() -> String {
    chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y").to_string()
}

async fn saved_reports_are_shared_with_roles_and_checked(t: TestApp) {
    let (_, tokens) = deals(&t).await;
    let report = json!({
        "name": "pipeline_by_stage",
        "label": {"zh-CN": "按阶段的商机", "en": "Pipeline by stage"},
        "entity": "opportunity",
        "filter": {"field": "stage", "op": "ne", "value": "lost"},
        "group_by": [{"field": "stage"}],
        "measures": [{"agg": "sum", "field": "amount"}],
        "chart": "funnel",
    });
    t.put("/api/v1/meta/reports/pipeline_by_stage", report.clone()).await.expect(200);
    let all = t.get("/api/v1/reports/pipeline_by_stage").await.expect(200);
    assert_eq!(all["rows"].as_array().unwrap().len(), 4, "every stage the deals are in but lost");
    let stages: Vec<&str> = all["rows"].as_array().unwrap().iter().map(|r| r["keys"][0].as_str().unwrap()).collect();
    let order = ["initial_contact", "needs_analysis", "proposal", "negotiation", "won"];
    let ranks: Vec<usize> = stages.iter().map(|s| order.iter().position(|o| o == s).unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "a funnel's stages in their order, not alphabetical: {stages:?}");
    // Not shared with reps yet.
    t.as_user(&tokens[0], Method::GET, "/api/v1/reports/pipeline_by_stage", None).await.expect(404);
    let mut shared = report.clone();
    shared["roles"] = json!(["sales_rep"]);
    t.put("/api/v1/meta/reports/pipeline_by_stage", shared).await.expect(200);
    let listed = t.as_user(&tokens[0], Method::GET, "/api/v1/reports", None).await.expect(200);
    let names: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"pipeline_by_stage"), "{names:?}");
    assert!(!names.contains(&"rep_ranking_this_quarter"), "the core package's manager reports are not the rep's");
    let mine = t.as_user(&tokens[0], Method::GET, "/api/v1/reports/pipeline_by_stage", None).await.expect(200);
    let total: f64 =
        mine["rows"].as_array().unwrap().iter().map(|r| r["values"][0].as_str().unwrap().parse::<f64>().unwrap()).sum();
    assert!((total - 3300.10).abs() < 0.001, "rep1's own open and won deals: {total}");

    // Drawn on the server: a funnel of rep1's stages, in their words and with 万 where it reads better.
    let chart = t.as_user(&tokens[0], Method::GET, "/api/v1/reports/pipeline_by_stage/chart.svg", None).await;
    assert_eq!(chart.status.as_u16(), 200);
    assert_eq!(chart.content_type.as_deref(), Some("image/svg+xml; charset=utf-8"));
    let svg = String::from_utf8(chart.bytes).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("赢单") && !svg.contains("谈判审核"), "{svg}");
    assert_eq!(svg.matches("class=\"chart-bar\"").count(), 3, "proposal, won, initial contact");

    // A saved report must compile: a measure of a text field is refused, nothing saved.
    let mut wrong = report;
    wrong["measures"] = json!([{"agg": "sum", "field": "name"}]);
    t.put("/api/v1/meta/reports/pipeline_by_stage", wrong).await.expect(422);
    let still = t.get("/api/v1/reports/pipeline_by_stage").await.expect(200);
    assert_eq!(still["rows"], all["rows"]);
}

/// Today in China, and a day of last month and of the month before it.
fn days_around_today() -> (chrono::NaiveDate, chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    let last_month = today.with_day(1).unwrap() - chrono::Duration::days(1);
    let before = last_month.with_day(1).unwrap() - chrono::Duration::days(1);
    (today, last_month, before)
}

async fn periods_count_from_today_and_numbers_compare_with_the_period_before(t: TestApp) {
    let (rep1, _) = t.user("rep1", &["sales_rep"], None).await;
    let (rep2, token2) = t.user("rep2", &["sales_rep"], None).await;
    let customer = t.create("customer", json!({"name": "北京立友信科技有限公司"})).await;
    let (today, last_month, before) = days_around_today();
    for (owner, amount, close) in [
        (&rep1, "1000.10", today),
        (&rep2, "2500.00", today),
        (&rep2, "0.20", today),
        (&rep1, "800.00", last_month),
        (&rep1, "99999.00", before),
    ] {
        t.create(
            "opportunity",
            json!({"name": "商机", "customer": customer["id"], "owner": owner, "stage": "proposal",
                   "amount": amount, "expected_close": close.to_string()}),
        )
        .await;
    }
    let number = json!({
        "entity": "opportunity",
        "period": {"field": "expected_close", "range": "this_month"},
        "measures": [{"agg": "sum", "field": "amount"}],
        "chart": "number",
    });
    let this_month = t.post("/api/v1/reports/run", number.clone()).await.expect(200);
    assert_eq!(this_month["total"], "3500.30", "this month's three deals, exactly: {this_month}");
    assert_eq!(this_month["previous"], "800.00", "last month's, for the change: {this_month}");
    assert_eq!(this_month["period"]["from"], today.format("%Y-%m-01").to_string());

    // A ranking: the groups by their first measure, largest first, within the caller's scope.
    let mut ranking = number.clone();
    ranking["group_by"] = json!([{"field": "owner"}]);
    ranking["order"] = json!("largest_first");
    ranking["chart"] = json!("bar");
    let ranked = t.post("/api/v1/reports/run", ranking.clone()).await.expect(200);
    let owners: Vec<&str> = ranked["rows"].as_array().unwrap().iter().map(|r| r["keys"][0].as_str().unwrap()).collect();
    assert_eq!(owners, [rep2.as_str(), rep1.as_str()], "{ranked}");
    assert_eq!(ranked["rows"][0]["labels"][0]["zh-CN"], "rep2", "a rep is named, not numbered: {ranked}");
    ranking["order"] = json!("smallest_first");
    let reversed = t.post("/api/v1/reports/run", ranking).await.expect(200);
    assert_eq!(reversed["rows"][0]["keys"][0], rep1.as_str());
    let mine = t.as_user(&token2, Method::POST, "/api/v1/reports/run", Some(number)).await.expect(200);
    assert_eq!(mine["total"], "2500.20", "rep2 counts only their own: {mine}");
    assert_eq!(mine["previous"], Value::Null, "rep2 had nothing last month: {mine}");

    // A period needs a date.
    let wrong =
        json!({"entity": "opportunity", "period": {"field": "name", "range": "today"}, "measures": [{"agg": "count"}]});
    let error = t.post("/api/v1/reports/run", wrong).await.expect(400);
    assert!(error["detail"].as_str().unwrap().contains("`/period/field`"), "{error}");
}

/// Once a week the open deals' forecast is kept per owner and month of expected close; the
/// snapshot is taken once per week however often the schedule asks, and a rep reads only the
/// snapshots of their own deals.
async fn a_weekly_snapshot_keeps_the_forecast_as_it_was(t: TestApp) {
    let (_, tokens) = deals(&t).await;
    // Monday 1 December 2025, 07:00 in China: the week's snapshot is due.
    let monday = chrono::DateTime::parse_from_rfc3339("2025-12-01T07:00:00+08:00").unwrap().with_timezone(&chrono::Utc);
    let taken = crm::reports::snapshot::take_due(&t.app, monday).await.unwrap();
    assert_eq!(taken, 3, "rep1 Jan, rep2 Feb, rep1 Mar; the lost and the won deals are not open: {taken}");
    assert_eq!(crm::reports::snapshot::take_due(&t.app, monday + chrono::TimeDelta::hours(5)).await.unwrap(), 0);
    let by_month = json!({
        "entity": "forecast_snapshot",
        "group_by": [{"field": "close_month", "bucket": "month"}],
        "measures": [{"agg": "sum", "field": "deals"}, {"agg": "sum", "field": "amount"}, {"agg": "sum", "field": "weighted_amount"}],
    });
    let all = t.post("/api/v1/reports/run", by_month.clone()).await.expect(200);
    let year = "2026";
    assert_eq!(
        rows(&all),
        vec![
            (vec![json!(format!("{year}-01"))], vec![json!("1"), json!("1000.10"), json!("500.05")]),
            (vec![json!(format!("{year}-02"))], vec![json!("2"), json!("4500.05"), json!("3250.03")]),
            (vec![json!(format!("{year}-03"))], vec![json!("1"), json!("300.00"), json!("30.00")]),
        ],
        "{all}"
    );
    let snapshots = t.list("forecast_snapshot", None, "").await.expect(200);
    assert!(snapshots["data"].as_array().unwrap().iter().all(|s| s["week"] == "2025-12-01"), "{snapshots}");
    let mine = t.as_user(&tokens[0], Method::POST, "/api/v1/reports/run", Some(by_month)).await.expect(200);
    assert_eq!(rows(&mine).len(), 2, "rep1's January and March only: {mine}");
    // The next week takes another snapshot beside the first.
    let next = monday + chrono::TimeDelta::days(7);
    assert_eq!(crm::reports::snapshot::take_due(&t.app, next).await.unwrap(), 3);
}

/// The records behind each row of a report, through the list API with the row's `filter`:
/// their count, and the sum of their amounts.
async fn behind(t: &TestApp, row: &Value) -> (usize, f64) {
    let list = t.list("opportunity", Some(row["filter"].clone()), "fields=amount").await.expect(200);
    let records = list["data"].as_array().unwrap();
    let sum = records.iter().map(|r| r["amount"].as_str().unwrap_or("0").parse::<f64>().unwrap()).sum();
    (records.len(), sum)
}

async fn reports_users_save_stay_private_until_shared_and_drill_into_their_records(t: TestApp) {
    let (_, tokens) = deals(&t).await;
    let rep = &tokens[0];
    let (_, boss) = t.user("boss", &["manager"], None).await;
    let design = json!({
        "label": {"zh-CN": "各阶段商机", "en": "Deals by stage"},
        "entity": "opportunity",
        "filter": {"field": "stage", "op": "ne", "value": "lost"},
        "group_by": [{"field": "stage"}],
        "measures": [{"agg": "count"}, {"agg": "sum", "field": "amount"}],
        "chart": "funnel",
    });
    // Only a role that may build reports saves one.
    t.as_user(rep, Method::POST, "/api/v1/reports", Some(json!({"report": design}))).await.expect(403);
    let saved = t.as_user(&boss, Method::POST, "/api/v1/reports", Some(json!({"report": design}))).await.expect(201);
    let name = saved["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("u_"), "{name}");
    let path = format!("/api/v1/reports/{name}");
    let mine = t.as_user(&boss, Method::GET, &path, None).await.expect(200);
    assert_eq!(mine["label"]["zh-CN"], "各阶段商机");
    // Private: the rep neither runs nor lists it.
    t.as_user(rep, Method::GET, &path, None).await.expect(404);
    let listed = t.as_user(rep, Method::GET, "/api/v1/reports", None).await.expect(200);
    assert!(!listed["data"].as_array().unwrap().iter().any(|r| r["name"] == name.as_str()));
    // Shared with reps, it runs in the rep's scope; only its owner changes or deletes it.
    let share = json!({"report": design, "roles": ["sales_rep"]});
    t.as_user(&boss, Method::PUT, &path, Some(share.clone())).await.expect(200);
    t.as_user(rep, Method::PUT, &path, Some(share)).await.expect(403);
    t.as_user(rep, Method::DELETE, &path, None).await.expect(403);
    let theirs = t.as_user(rep, Method::GET, &path, None).await.expect(200);
    let total: f64 = theirs["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["values"][1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((total - 3300.10).abs() < 0.001, "rep1's own deals but lost: {total}");
    let unknown = json!({"report": design, "roles": ["no_such_role"]});
    t.as_user(&boss, Method::PUT, &path, Some(unknown)).await.expect(422);
    let mut wrong = design.clone();
    wrong["measures"] = json!([{"agg": "sum", "field": "name"}]);
    t.as_user(&boss, Method::POST, "/api/v1/reports", Some(json!({"report": wrong}))).await.expect(400);

    // The boss reads the deals of their department, which has none; an administrator reads
    // them all. Each row's filter lists exactly the records it counts.
    assert_eq!(mine["rows"], json!([]));
    let all = t.get(&path).await.expect(200);
    let rows = all["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let (count, sum) = behind(&t, row).await;
        assert_eq!(count as u64, row["values"][0].as_u64().unwrap(), "{row}");
        assert!((sum - row["values"][1].as_str().unwrap().parse::<f64>().unwrap()).abs() < 0.001, "{row}");
    }
    // Date buckets drill into their days: months of expected close, weeks and days of creation.
    for (field, bucket) in
        [("expected_close", "month"), ("expected_close", "quarter"), ("created_at", "week"), ("created_at", "day")]
    {
        let by_date = json!({"entity": "opportunity", "group_by": [{"field": field, "bucket": bucket}], "measures": [{"agg": "count"}]});
        let result = t.post("/api/v1/reports/run", by_date).await.expect(200);
        let rows = result["rows"].as_array().unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            assert_eq!(
                behind(&t, row).await.0 as u64,
                row["values"][0].as_u64().unwrap(),
                "{field} by {bucket}: {row}"
            );
        }
    }
    // A group read through a lookup has no list of its own to drill into.
    let through = json!({"entity": "opportunity", "group_by": [{"through": "customer", "field": "industry"}], "measures": [{"agg": "count"}]});
    let result = t.post("/api/v1/reports/run", through).await.expect(200);
    assert!(result["rows"].as_array().unwrap().iter().all(|r| r["filter"].is_null()));

    // The table as a workbook: headings in Chinese, amounts as numbers.
    let file = t.get(&format!("{path}/export.xlsx")).await;
    assert_eq!(file.status.as_u16(), 200);
    let mut book = Xlsx::new(Cursor::new(file.bytes)).expect("a workbook");
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<Vec<Data>> = sheet.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(
        cells[0],
        vec![Data::String("销售阶段".into()), Data::String("数量".into()), Data::String("预计金额合计".into())]
    );
    assert_eq!(cells.len(), 5, "a heading and four stages");
    let negotiation = cells.iter().find(|r| r[0] == Data::String("谈判审核".into())).expect("negotiation");
    assert_eq!(negotiation[1..], [Data::Float(1.0), Data::Float(4000.0)]);

    t.as_user(&boss, Method::DELETE, &path, None).await.expect(204);
    t.as_user(&boss, Method::GET, &path, None).await.expect(404);
}

/// The core funnel (SA-5): beside each stage, the average days its opportunities stayed in it
/// before they moved on, from the stage history written by their moves; within the report's
/// filter (no lost deals) and the caller's scope.
async fn the_funnel_shows_the_days_deals_stayed_in_each_stage(t: TestApp) {
    let (rep1, token1) = t.user("rep1", &["sales_rep"], None).await;
    let (rep2, _) = t.user("rep2", &["sales_rep"], None).await;
    let customer = t.create("customer", json!({"name": "华东重工集团有限公司"})).await;
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00").unwrap().to_utc();
    t.app.hold_clock(start);
    let mut deals = Vec::new();
    for (name, owner) in [("A", &rep1), ("B", &rep1), ("C", &rep2), ("D", &rep1), ("E", &rep2)] {
        let deal = t
            .create(
                "opportunity",
                json!({"name": name, "customer": customer["id"], "owner": owner, "stage": "initial_contact",
                       "amount": "1000.00", "expected_close": "2026-06-30"}),
            )
            .await;
        deals.push((name, deal["id"].as_str().unwrap().to_owned(), deal["version"].clone()));
    }
    // (hours after the start, deal, the stage it moves to)
    for (hours, name, stage) in [
        (24, "B", "needs_analysis"),  // 1 day in initial contact
        (48, "A", "needs_analysis"),  // 2 days
        (120, "A", "proposal"),       // 3 days in needs analysis
        (150, "C", "needs_analysis"), // 6.25 days in initial contact
        (246, "C", "proposal"),       // 4 days in needs analysis
        (480, "E", "lost"),           // 20 days, but the funnel leaves lost deals out
    ] {
        t.app.hold_clock(start + chrono::TimeDelta::hours(hours));
        let (_, id, version) = deals.iter_mut().find(|(n, ..)| *n == name).unwrap();
        let moved = t
            .patch(
                &format!("/api/v1/records/opportunity/{id}"),
                json!({"stage": stage, "version": version, "lost_reason": (stage == "lost").then_some("price")}),
            )
            .await
            .expect(200);
        *version = moved["version"].clone();
    }
    let days = |report: &Value| -> Vec<(Value, Value)> {
        report["rows"].as_array().unwrap().iter().map(|r| (r["keys"][0].clone(), r["days_in_stage"].clone())).collect()
    };
    let all = t.get("/api/v1/reports/sales_funnel").await.expect(200);
    assert_eq!(
        days(&all),
        vec![
            // (1 + 2 + 6.25) / 3 = 3.083…
            (json!("initial_contact"), json!("3.1")),
            // (3 + 4) / 2
            (json!("needs_analysis"), json!("3.5")),
            (json!("proposal"), Value::Null),
        ],
        "{all}"
    );

    // rep1's deals are A, B and D: their moves alone.
    let mine = t.as_user(&token1, Method::GET, "/api/v1/reports/sales_funnel", None).await.expect(200);
    assert_eq!(
        days(&mine),
        vec![
            (json!("initial_contact"), json!("1.5")),
            (json!("needs_analysis"), json!("3.0")),
            (json!("proposal"), Value::Null),
        ],
        "{mine}"
    );
    let chart = t.as_user(&token1, Method::GET, "/api/v1/reports/sales_funnel/chart.svg?locale=en", None).await;
    let svg = String::from_utf8(chart.bytes).unwrap();
    assert!(svg.contains(">avg 1.5 days</text>") && svg.contains(">avg 3.0 days</text>"), "{svg}");

    // A move shows on the next run: A leaves the proposal after 7 days.
    t.app.hold_clock(start + chrono::TimeDelta::hours(288));
    let (_, id, version) = &deals[0];
    t.patch(&format!("/api/v1/records/opportunity/{id}"), json!({"stage": "negotiation", "version": version}))
        .await
        .expect(200);
    let after = t.get("/api/v1/reports/sales_funnel").await.expect(200);
    assert_eq!(days(&after)[2], (json!("proposal"), json!("7.0")), "{after}");

    // Only a report grouped first by a stage carries the days.
    let by_owner = json!({"entity": "opportunity", "group_by": [{"field": "owner"}, {"field": "stage"}],
                          "measures": [{"agg": "count"}]});
    let report = t.post("/api/v1/reports/run", by_owner).await.expect(200);
    assert!(report["rows"].as_array().unwrap().iter().all(|r| r.get("days_in_stage").is_none()), "{report}");
}

/// The core package's forecast (SA-4) of this quarter's open deals, weighted by their stages'
/// probabilities: by stage, by the owner's department (through the user) and by product
/// category, each adding up to the same weighted total.
async fn this_quarters_forecast_comes_by_stage_department_and_product_category(t: TestApp) {
    let east = t.create("department", json!({"name": "华东销售部"})).await;
    let south = t.create("department", json!({"name": "华南销售部"})).await;
    let (zhang, _) = t.user("zhang", &["sales_rep"], east["id"].as_str()).await;
    let (li, _) = t.user("li", &["sales_rep"], south["id"].as_str()).await;
    let machines = t.create("product_category", json!({"name": "机床"})).await;
    let software = t.create("product_category", json!({"name": "软件"})).await;
    let customer = t.create("customer", json!({"name": "华东重工集团有限公司"})).await;
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    // (owner, category, stage, amount): proposal weighs 50 %, negotiation 75 %, won is no forecast.
    for (owner, category, stage, amount) in [
        (&zhang, &machines, "proposal", "1000.00"),
        (&zhang, &software, "negotiation", "2000.00"),
        (&li, &machines, "negotiation", "400.00"),
        (&li, &software, "won", "9000.00"),
    ] {
        let deal = json!({"name": "预测商机", "customer": customer["id"], "owner": owner, "product_category": category["id"],
                          "stage": stage, "amount": amount, "expected_close": today.to_string()});
        t.create("opportunity", deal).await;
    }
    let figures = |report: &Value| -> Vec<(String, String)> {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (r["labels"][0]["zh-CN"].as_str().unwrap().to_owned(), r["values"][0].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let by_stage = t.get("/api/v1/reports/forecast_by_stage_this_quarter").await.expect(200);
    assert_eq!(figures(&by_stage), [("方案报价".into(), "500.00".into()), ("谈判审核".into(), "1800.00".into())]);
    let by_department = t.get("/api/v1/reports/forecast_by_department_this_quarter").await.expect(200);
    assert_eq!(
        figures(&by_department),
        [("华东销售部".into(), "2000.00".into()), ("华南销售部".into(), "300.00".into())]
    );
    let by_category = t.get("/api/v1/reports/forecast_by_category_this_quarter").await.expect(200);
    assert_eq!(figures(&by_category), [("软件".into(), "1500.00".into()), ("机床".into(), "800.00".into())]);
    for report in [&by_stage, &by_department, &by_category] {
        assert_eq!(report["total"], "2300.00", "{report}");
    }
}
