//! Operating the server: `/metrics` in the Prometheus text format for a scraper with the
//! token (requests by route and status with latency, statements, connections, the outbox's
//! lag, rule runs, failed logins), nothing without it; each request's id in its answer and in
//! the outbox events it wrote, so its jobs can be found by it; the nightly backup, taken once
//! a night, the folder keeping the latest few.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use support::TestApp;

backends!(metrics_are_counted_and_kept_for_the_scraper, the_nightly_backup_is_taken_once_and_the_latest_kept);

const TOKEN: &str = "scrape-7f3a9c";

async fn scrape(t: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().method(Method::GET).uri("/metrics");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let reply = t.send(request.body(Body::empty()).unwrap()).await;
    (reply.status, String::from_utf8(reply.bytes).unwrap())
}

/// The value of a sample, by its name and labels as written.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} in:\n{text}"))
        .parse()
        .unwrap()
}

async fn metrics_are_counted_and_kept_for_the_scraper(plain: TestApp) {
    // Without a token configured there are no metrics to read.
    assert_eq!(scrape(&plain, Some(TOKEN)).await.0, StatusCode::NOT_FOUND);
    let t = if plain.is_postgres() {
        let Some(t) = TestApp::postgres_with(|c| c.metrics_token = Some(TOKEN.into())).await else { return };
        t
    } else {
        TestApp::sqlite_with(|c| c.metrics_token = Some(TOKEN.into())).await
    };
    assert_eq!(scrape(&t, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&t, Some("wrong")).await.0, StatusCode::UNAUTHORIZED);

    // A request named by its client keeps its id, in the answer and in the event it wrote.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/records/customer")
        .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "order-import-42")
        .body(Body::from(json!({"name": "指标客户"}).to_string()))
        .unwrap();
    let created = t.send(request).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.request_id.as_deref(), Some("order-import-42"));
    let events = crm_store::jobs::events_after(&t.app.db, Default::default(), 10_000).await.unwrap();
    let written = events.iter().rev().find(|e| e.entity == "customer").expect("the customer's event");
    assert_eq!(written.payload["request"], "order-import-42", "the job it causes can be traced to it");
    let other = t.get("/api/v1/records/customer").await;
    assert!(other.status == StatusCode::OK);
    t.get("/api/v1/records/nope").await.expect(404);
    let wrong = json!({"login": "admin", "password": "not-the-password"});
    t.call(Method::POST, "/api/v1/auth/token", Some(wrong), None).await.expect(401);

    let (status, text) = scrape(&t, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample: {line}"));
        assert!(value.parse::<f64>().is_ok() && !series.is_empty(), "a sample: {line}");
    }
    let listed = "crm_http_requests_total{route=\"/api/v1/records/{entity}\",method=\"GET\",status=\"200\"}";
    assert!(sample(&text, listed) >= 1.0);
    assert!(
        sample(&text, "crm_http_requests_total{route=\"/api/v1/records/{entity}\",method=\"GET\",status=\"404\"}")
            >= 1.0
    );
    assert!(
        sample(&text, "crm_http_requests_total{route=\"/api/v1/records/{entity}\",method=\"POST\",status=\"201\"}")
            >= 1.0
    );
    let count = "crm_http_request_duration_seconds_count{route=\"/api/v1/records/{entity}\",method=\"GET\"}";
    assert!(sample(&text, count) >= 2.0);
    assert!(sample(&text, "crm_login_failures_total") >= 1.0);
    assert!(sample(&text, "crm_rule_run_duration_seconds_count") >= 1.0, "the customer's rules ran");
    assert!(sample(&text, "crm_db_statement_duration_seconds_count{side=\"read\"}") >= 1.0);
    assert!(sample(&text, "crm_db_statement_duration_seconds_count{side=\"write\"}") >= 1.0);
    assert!(text.contains("crm_db_connections{state=\"idle\"}"));
    t.run_jobs().await;
    let (_, text) = scrape(&t, Some(TOKEN)).await;
    let caches =
        text.lines().find(|l| l.starts_with("crm_outbox_lag_events{consumer=\"caches\"")).expect("the caches' lag");
    assert!(caches.ends_with(" 0"), "caught up: {caches}");
}

async fn the_nightly_backup_is_taken_once_and_the_latest_kept(plain: TestApp) {
    let folder = tempfile::tempdir().unwrap();
    let configure = |c: &mut crm::config::Config| {
        c.backup_dir = Some(folder.path().to_owned());
        c.backup_keep = 2;
    };
    let t = if plain.is_postgres() {
        let Some(t) = TestApp::postgres_with(configure).await else { return };
        t
    } else {
        TestApp::sqlite_with(configure).await
    };
    assert!(crm::backup::take_due(&plain.app, chrono::Utc::now()).await.unwrap().is_none(), "no folder, no backup");
    t.create("customer", json!({"name": "夜间备份客户"})).await;
    let china = crm::schedule::business_offset();
    let night = |day: u32, hour: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 12, day)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_local_timezone(china)
            .unwrap()
            .to_utc()
    };
    let mut taken = Vec::new();
    for day in [2, 3, 4] {
        let file = crm::backup::take_due(&t.app, night(day, 3)).await.unwrap().expect("the night's backup");
        taken.push(file);
        assert!(crm::backup::take_due(&t.app, night(day, 9)).await.unwrap().is_none(), "once a night");
    }
    let mut kept: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["crm-20261203-0230.zip", "crm-20261204-0230.zip"], "the latest two");
    // The latest restores, with the customer in it (PostgreSQL's restore: tests/serve.rs).
    if t.is_postgres() {
        return;
    }
    let restored = tempfile::tempdir().unwrap();
    let config = crm::config::Config::for_data_dir(restored.path());
    crm::backup::restore(&config, &taken[2], false).await.unwrap();
    let reopened = crm::setup::open(config).await.unwrap();
    let mut sql = reopened.app.db.sql();
    sql.push("SELECT COUNT(*) FROM customer WHERE deleted_at IS NULL");
    let rows = crm_store::records::count(&reopened.app.db, sql).await.unwrap();
    assert_eq!(rows, 1, "the customer came back");
}
