//! The screens as a browser without JavaScript sees them, on SQLite and PostgreSQL: sign-in,
//! CSRF on forms, lists (filters, sort, pages, saved views, export, bulk actions), record
//! views, forms with inline errors and conflicts, the board and stage path, the recycle bin,
//! preferences, live metadata, and hostile values rendered inert on every screen.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::browser::{Browser, between, unescaped};
use support::{PageReply, TestApp};

backends!(
    pages_need_a_session_and_forms_their_token,
    hostile_values_are_inert_on_every_screen,
    metadata_changes_show_on_the_next_page,
    forms_keep_input_beside_errors_and_explain_conflicts,
    lists_filter_sort_page_save_views_and_export,
    bulk_actions_and_the_recycle_bin,
    board_and_stage_path,
    language_and_theme_are_remembered,
    a_rep_sees_only_their_modules_and_actions,
    approvals_reminders_and_conversion_on_screen,
    the_studio_builds_an_entity_with_a_plan_first,
    a_module_built_in_the_studio_is_live_for_a_rep,
    the_studio_manages_users,
    the_studio_shows_background_jobs_and_sends_stopped_events_again,
    the_search_page_marks_matches_and_escapes_everything,
    duplicate_rules_and_their_review_on_screen,
    a_report_shows_its_chart_and_table_in_the_viewers_scope,
    the_home_page_is_the_roles_dashboard_and_the_studio_arranges_it,
    a_manager_builds_a_report_saves_it_and_drills_into_its_records,
    mail_is_set_up_composed_from_a_list_previewed_and_its_statuses_shown,
    address_labels_print_what_the_viewer_may_read,
    the_calendar_shows_a_month_of_activities_and_reschedules_them,
);

/// The activity calendar: the viewer's activities by day (their team's on asking), a link to
/// plan one on a day, and a move to another day through the record's save.
async fn the_calendar_shows_a_month_of_activities_and_reschedules_them(t: TestApp) {
    let offset = crm::schedule::business_offset();
    let today = chrono::Utc::now().with_timezone(&offset).date_naive();
    let at = |day: chrono::NaiveDate, hour: u32| {
        day.and_hms_opt(hour, 0, 0).unwrap().and_local_timezone(offset).unwrap().to_rfc3339()
    };
    let user =
        json!({"user": {"name": "赵六", "login": "zhaoliu"}, "password": "a-long-password-1", "roles": ["sales_rep"]});
    let rep = t.post("/api/v1/admin/users", user).await.expect(201)["id"].as_str().unwrap().to_owned();
    let mine = t.create("activity", json!({"name": "拜访华东重工", "due_at": at(today, 10)})).await;
    t.create("activity", json!({"name": "赵六的电话", "due_at": at(today, 11), "owner": rep})).await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.get("/calendar").await;
    assert!(ok(&page).contains("href=\"&#x2f;calendar\"") || page.text.contains("href=\"/calendar\""), "in the menu");
    let cell = between(&page.text, &format!("data-date=\"{today}\""), "</td>").unwrap();
    assert!(cell.contains("10:00") && cell.contains("拜访华东重工"), "{cell}");
    assert!(!cell.contains("赵六的电话"), "mine only");
    assert!(
        cell.contains(&format!("data-new=\"{today}\"")) && cell.contains("new?due_at="),
        "a new one that day: {cell}"
    );
    let team = b.get("/calendar?who=team").await;
    let cell = between(ok(&team), &format!("data-date=\"{today}\""), "</td>").unwrap();
    assert!(cell.contains("赵六的电话 · 赵六"), "the team's, with whose: {cell}");
    let january = b.get("/calendar?month=2026-01").await;
    assert!(ok(&january).contains("2026 年 1 月") && !january.text.contains("拜访华东重工"));

    // A week and a day by hour: the activity in its hour's row, a new one planned at an hour.
    let week = b.get(&format!("/calendar?view=week&date={today}")).await;
    let slot = between(ok(&week), &format!("data-date=\"{today}\" data-hour=\"10\""), "</td>").unwrap();
    assert!(slot.contains("拜访华东重工") && slot.contains(&format!("data-new=\"{today}T10\"")), "{slot}");
    assert_eq!(week.text.matches("<th class=\"hour\"").count(), 12, "08:00 to 19:00, one row each");
    let empty = between(&week.text, &format!("data-date=\"{today}\" data-hour=\"11\""), "</td>").unwrap();
    assert!(!empty.contains("data-id="), "mine only, by hour too: {empty}");
    let day = b.get(&format!("/calendar?view=day&date={today}&who=team")).await;
    let slot = between(ok(&day), &format!("data-date=\"{today}\" data-hour=\"11\""), "</td>").unwrap();
    assert!(slot.contains("赵六的电话 · 赵六"), "{slot}");
    assert_eq!(
        day.text.matches("class=\"day").count() - day.text.matches("class=\"day-").count(),
        12,
        "one day's hours"
    );
    let late = b.get("/calendar?view=day&date=2026-03-02").await;
    assert!(ok(&late).contains("2026 年 3 月 2 日 周一"), "the day's heading");
    assert!(late.text.contains("date=2026-03-01") && late.text.contains("date=2026-03-03"), "the days around");

    // Dropped on the next day: rescheduled, the time of day kept.
    let tomorrow = today.succ_opt().unwrap();
    let id = mine["id"].as_str().unwrap();
    let due = format!("{tomorrow}T10:00");
    let fields = [("due_at", due.as_str()), ("version", "1"), ("_back", "/calendar")];
    let moved = b.post(&format!("/e/activity/{id}/edit"), &fields).await;
    assert_eq!(moved.location.as_deref(), Some("/calendar"));
    let stored = t.get(&format!("/api/v1/records/activity/{id}")).await.expect(200);
    let stored = chrono::DateTime::parse_from_rfc3339(stored["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(stored.with_timezone(&offset).naive_local(), tomorrow.and_hms_opt(10, 0, 0).unwrap());
}

/// A studio form's fields with the confirmation that applies its plan.
fn confirm<'a>(fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "yes"));
    confirmed
}

/// The ids of the rows of a page's tables, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.split("<tr data-id=\"").skip(1).filter_map(|s| s.split('"').next().map(str::to_owned)).collect()
}

#[track_caller]
fn ok(reply: &PageReply) -> &str {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.content_type.as_deref().unwrap_or("").starts_with("text/html"), "{:?}", reply.content_type);
    &reply.text
}

async fn pages_need_a_session_and_forms_their_token(t: TestApp) {
    let anonymous = t.page(Method::GET, "/e/customer?f_name=x", "", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location.as_deref(), Some("/login?next=%2Fe%2Fcustomer%3Ff_name%3Dx"));
    let login = t.page(Method::GET, "/login?next=/e/customer", "", None).await;
    assert!(ok(&login).contains("id=\"login-form\""));

    let wrong = t.page(Method::POST, "/login", "", Some(&[("login", "admin"), ("password", "nope")])).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("id=\"login-error\""));
    assert!(wrong.set_cookies.is_empty());
    // Only local paths are followed after signing in.
    let form = [("login", "admin"), ("password", support::ADMIN_PASSWORD), ("next", "//evil.example/")];
    let offsite = t.page(Method::POST, "/login", "", Some(&form)).await;
    assert_eq!(offsite.location.as_deref(), Some("/"));

    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let forged = t
        .page(Method::POST, "/e/customer/new", &b.cookies(), Some(&[("_csrf", "forged"), ("name", "Forged Ltd")]))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.text.contains("<html"), "refusals are pages: {}", forged.text);
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 0, "nothing was written");

    let created = b.post("/e/customer/new", &[("name", "Token Ltd")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 1);

    let missing = b.get("/e/no_such_entity").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<main"), "errors are pages in the shell");

    let out = b.post("/logout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert_eq!(b.get("/e/customer").await.status, StatusCode::SEE_OTHER, "the session ended");
}

const HOSTILE: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>{{7*7}}";

/// No page may carry the payload as markup.
#[track_caller]
fn inert(page: &str, what: &str) {
    for raw in ["<script>alert(1)", "<img src=x", "onerror=alert(2)>"] {
        assert!(!page.contains(raw), "{what} renders `{raw}` as markup");
    }
    // The payload ends `>{{7*7}}`: evaluated, it would read `&gt;49`.
    assert!(!page.contains("&gt;49"), "{what} evaluated a template expression in data");
}

async fn hostile_values_are_inert_on_every_screen(t: TestApp) {
    // Hostile metadata labels too: an entity field and select options an admin typed.
    let field = json!({
        "name": "tag",
        "type": "select",
        "label": {"zh-CN": HOSTILE, "en": HOSTILE},
        "options": [{"value": "x", "label": {"zh-CN": HOSTILE, "en": HOSTILE}}],
    });
    t.post("/api/v1/meta/entities/customer/fields", field).await.expect(201);
    let long = json!({"name": "notes_x", "type": "long_text", "label": {"zh-CN": "说明", "en": "Notes"}});
    t.post("/api/v1/meta/entities/customer/fields", long).await.expect(201);
    let customer = t
        .create(
            "customer",
            json!({
                "name": HOSTILE, "address": HOSTILE, "remark": HOSTILE, "notes_x": HOSTILE, "tag": "x",
                "website": "https://example.com/a?b=c",
                "industry": "software", "annual_revenue": "1000.5", "email": "a@example.com", "phone": "010-1234",
            }),
        )
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();
    let contact = t.create("contact", json!({"name": HOSTILE, "customer": id, "remark": HOSTILE})).await;
    let opportunity = t.create("opportunity", json!({"name": HOSTILE, "customer": id, "amount": 10})).await;
    let gone = t.create("customer", json!({"name": format!("{HOSTILE} deleted")})).await;
    t.delete(&format!("/api/v1/records/customer/{}", gone["id"].as_str().unwrap())).await.expect(204);

    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let pages = [
        "/e/customer".to_owned(),
        format!("/e/customer?f_name={}", support::encode(HOSTILE)),
        format!("/e/customer/{id}"),
        format!("/e/customer/{id}/edit"),
        format!("/e/contact/{}", contact["id"].as_str().unwrap()),
        format!("/e/contact/new?customer={id}&name={}", support::encode(HOSTILE)),
        format!("/e/opportunity/{}", opportunity["id"].as_str().unwrap()),
        "/e/opportunity/board".to_owned(),
        "/e/customer/bin".to_owned(),
        "/".to_owned(),
    ];
    for page in pages {
        let reply = b.get(&page).await;
        inert(ok(&reply), &page);
        assert!(reply.text.contains("&lt;script&gt;") || page == "/", "{page} shows the text, escaped");
    }
    // A javascript: address is never a link.
    let record = b.get(&format!("/e/customer/{id}")).await;
    assert!(!record.text.contains("href=\"javascript:"));
    // Errors keep what was typed, escaped.
    let invalid = b.post("/e/customer/new", &[("name", HOSTILE), ("email", HOSTILE)]).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    inert(&invalid.text, "the form with errors");
    // The export is data, not markup, and keeps the text whole.
    let csv = b.get("/e/customer/export.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text.contains("<script>alert(1)</script>"), "CSV keeps the text as typed");
}

async fn metadata_changes_show_on_the_next_page(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let id = t.create("customer", json!({"name": "Live Ltd"})).await["id"].as_str().unwrap().to_owned();
    let before = b.get("/e/customer/new").await;
    assert!(!ok(&before).contains("name=\"wechat\""));

    let field = json!({"name": "wechat", "type": "text", "label": {"zh-CN": "微信号", "en": "WeChat"}});
    t.post("/api/v1/meta/entities/customer/fields", field).await.expect(201);
    let form = b.get("/e/customer/new").await;
    assert!(ok(&form).contains("name=\"wechat\""), "the new field is on the form");
    assert!(form.text.contains("微信号"));
    let saved = b.post(&format!("/e/customer/{id}/edit"), &[("wechat", "live_ltd"), ("version", "1")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let view = b.follow(saved).await;
    assert!(ok(&view).contains("live_ltd"), "the record view shows the new field");

    // Moving the field to the top of the first section moves it on the form.
    let mut layout = t.get("/api/v1/meta/layouts/customer").await.expect(200);
    for side in ["edit", "view"] {
        let sections = layout[side]["sections"].as_array_mut().unwrap();
        for section in sections.iter_mut() {
            section["fields"].as_array_mut().unwrap().retain(|f| f != "wechat");
        }
        sections[0]["fields"].as_array_mut().unwrap().insert(0, json!("wechat"));
    }
    // The edit layout also asks for the industry, which the field itself does not require.
    layout["edit"]["sections"][0]["fields"].as_array_mut().unwrap().retain(|f| f != "industry");
    layout["edit"]["sections"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "industry", "required": true}));
    t.put("/api/v1/meta/layouts/customer", layout).await.expect(200);
    let moved = b.get("/e/customer/new").await;
    let text = ok(&moved);
    let wechat = text.find("name=\"wechat\"").unwrap();
    let name = text.find("name=\"name\"").unwrap();
    assert!(wechat < name, "the moved field comes first");
    let refused = b.post("/e/customer/new", &[("name", "No Industry Ltd"), ("industry", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("data-error-for=\"industry\""), "required on this layout");
    t.create("customer", json!({"name": "API Ltd"})).await;
    let saved = b.post("/e/customer/new", &[("name", "With Industry Ltd"), ("industry", "software")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
}

async fn forms_keep_input_beside_errors_and_explain_conflicts(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let invalid = b.post("/e/customer/new", &[("name", "Kept Name Ltd"), ("email", "not-an-email")]).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.text.contains("data-error-for=\"email\""), "the error is beside the field");
    assert!(invalid.text.contains("value=\"Kept Name Ltd\""), "what was typed is kept");
    assert!(invalid.text.contains("value=\"not-an-email\""));
    let missing = b.post("/e/customer/new", &[("name", "")]).await;
    assert!(missing.text.contains("data-error-for=\"name\""));
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 0);

    // Two people edit the same record; the second save is refused and explained.
    let id = t.create("customer", json!({"name": "Shared Ltd"})).await["id"].as_str().unwrap().to_owned();
    let first = b.post(&format!("/e/customer/{id}/edit"), &[("name", "Shared Ltd (A)"), ("version", "1")]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let second = b.post(&format!("/e/customer/{id}/edit"), &[("name", "Shared Ltd (B)"), ("version", "1")]).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.text.contains("id=\"conflict\""));
    assert!(second.text.contains("value=\"Shared Ltd (B)\""), "the user's change is still on the form");
    assert!(second.text.contains(&format!("href=\"/e/customer/{id}/edit\"")), "a way to reload");
    assert_eq!(t.get(&format!("/api/v1/records/customer/{id}")).await.expect(200)["name"], "Shared Ltd (A)");

    // A related panel's "new" pre-fills the lookup and comes back to the record.
    let new = b.get(&format!("/e/contact/new?customer={id}&back=/e/customer/{id}")).await;
    assert!(ok(&new).contains(&format!("value=\"{id}\"")), "the lookup is filled in");
    assert!(new.text.contains("Shared Ltd (A)"), "and shows the customer's name");
    let saved = b
        .post("/e/contact/new", &[("name", "王经理"), ("customer", &id), ("_back", &format!("/e/customer/{id}"))])
        .await;
    assert_eq!(saved.location, Some(format!("/e/customer/{id}")));
    let record = b.follow(saved).await;
    let panel = between(&record.text, "id=\"panel-contacts\"", "</section>").unwrap();
    assert!(panel.contains("王经理"), "the contact is in the customer's panel");
    assert!(record.text.contains("已创建"), "the flash says so");
    // The panel's records as a list filtered by the lookup, the filter showing the name.
    let filtered = b.get(&format!("/e/contact?f_customer={id}")).await;
    assert_eq!(row_ids(ok(&filtered)).len(), 1);
    assert!(filtered.text.contains("value=\"Shared Ltd (A)\""), "the lookup filter shows the customer's name");
}

async fn lists_filter_sort_page_save_views_and_export(t: TestApp) {
    let rows: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("客户{i:02}"), "industry": if i % 3 == 0 { "software" } else { "trade" }, "annual_revenue": i * 1000}))
        .collect();
    t.post("/api/v1/records/customer/bulk/create", json!({"records": rows})).await.expect(201);
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;

    let first = b.get("/e/customer").await;
    assert!(ok(&first).contains("共 60 条"));
    assert_eq!(row_ids(&first.text).len(), 50, "a page has 50 rows");
    assert!(first.text.contains("id=\"next-page\""));
    let cursor = between(&first.text, "href=\"/e/customer?cursor=", "\"").expect("a next page");
    let second = b.get(&format!("/e/customer?cursor={cursor}")).await;
    assert_eq!(row_ids(ok(&second)).len(), 10);

    let software = b.get("/e/customer?f_industry=software&f_annual_revenue_from=30000").await;
    let ids = row_ids(ok(&software));
    assert_eq!(ids.len(), 10, "20 software customers, 10 of them with revenue of at least 30,000");
    assert!(software.text.contains("共 10 条"));
    let sorted = b.get("/e/customer?f_industry=software&sort=-annual_revenue").await;
    let names: Vec<String> = sorted
        .text
        .split("class=\"record-link\">")
        .skip(1)
        .filter_map(|s| s.split('<').next().map(str::to_owned))
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("客户57"));
    assert!(sorted.text.contains("aria-sort=\"descending\""));
    let contains = b.get(&format!("/e/customer?f_name={}", support::encode("客户1"))).await;
    assert_eq!(row_ids(ok(&contains)).len(), 10);
    let bad = b.get("/e/customer?f_annual_revenue_from=lots").await;
    assert!(ok(&bad).contains("class=\"form-error\""), "a bad filter is said, not a crash");
    let said = between(&bad.text, "id=\"bad-filter\">", "<details>").unwrap();
    assert!(said.contains("查询条件有误") && !said.contains("number"), "in Chinese, the detail folded: {said}");

    // A saved view keeps filters and columns, and is the user's own.
    let query = "f_industry=software&cols=name&cols=annual_revenue";
    let saved = b.post("/e/customer/views", &[("name", "软件客户"), ("query", query)]).await;
    let page = b.follow(saved).await;
    assert!(ok(&page).contains("data-view=\"软件客户\""));
    assert!(page.text.contains("共 20 条"));
    assert!(!page.text.contains("data-field=\"industry\""), "only the chosen columns");
    let view_id = between(&page.text, "/e/customer/views/", "/delete").expect("a delete button");
    b.post(&format!("/e/customer/views/{view_id}/delete"), &[]).await;
    assert!(!b.get("/e/customer").await.text.contains("data-view=\"软件客户\""));

    let csv = b.get("/e/customer/export.csv?f_industry=software").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.as_deref().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 21, "a header and 20 rows");
    assert!(lines[0].starts_with('\u{feff}'), "a byte-order mark for Excel");
    assert!(lines[0].contains("客户名称"));
    assert!(lines.iter().skip(1).all(|l| l.contains("软件与信息技术")), "values as shown");
}

async fn bulk_actions_and_the_recycle_bin(t: TestApp) {
    let user =
        json!({"user": {"name": "李四", "login": "lisi"}, "password": "a-long-password-1", "roles": ["sales_rep"]});
    let lisi = t.post("/api/v1/admin/users", user).await.expect(201)["id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = futures_ids(&t, 3).await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;

    let none = b.post("/e/customer/bulk", &[("action", "assign"), ("owner", &lisi)]).await;
    assert!(b.follow(none).await.text.contains("请先选择记录"));
    let assigned =
        b.post("/e/customer/bulk", &[("action", "assign"), ("owner", &lisi), ("ids", &ids[0]), ("ids", &ids[1])]).await;
    let page = b.follow(assigned).await;
    assert!(ok(&page).contains("已处理 2 条"), "{}", page.text);
    for id in &ids[..2] {
        assert_eq!(t.get(&format!("/api/v1/records/customer/{id}")).await.expect(200)["owner"], lisi.as_str());
    }
    let updated = b
        .post("/e/customer/bulk", &[("action", "update"), ("field", "status"), ("value", "active"), ("ids", &ids[2])])
        .await;
    b.follow(updated).await;
    assert_eq!(t.get(&format!("/api/v1/records/customer/{}", ids[2])).await.expect(200)["status"], "active");
    let invalid = b
        .post("/e/customer/bulk", &[("action", "update"), ("field", "status"), ("value", "nonsense"), ("ids", &ids[2])])
        .await;
    let said = b.follow(invalid).await;
    assert!(ok(&said).contains("不是可选的值"), "the refusal is said on the list");
    // A field with options offers them; its label typed by hand means the option too.
    assert!(said.text.contains("<select name=\"value_industry\" data-bulk-value=\"industry\""));
    assert!(said.text.contains("<option value=\"\">"), "no field is chosen to begin with");
    let chosen = [("action", "update"), ("field", "industry"), ("value_industry", "software"), ("ids", &ids[2])];
    let posted = b.post("/e/customer/bulk", &chosen).await;
    b.follow(posted).await;
    assert_eq!(t.get(&format!("/api/v1/records/customer/{}", ids[2])).await.expect(200)["industry"], "software");
    let typed = [("action", "update"), ("field", "industry"), ("value", "制造业"), ("ids", &ids[2])];
    let posted = b.post("/e/customer/bulk", &typed).await;
    b.follow(posted).await;
    assert_eq!(t.get(&format!("/api/v1/records/customer/{}", ids[2])).await.expect(200)["industry"], "manufacturing");

    let deleted = b.post("/e/customer/bulk", &[("action", "delete"), ("ids", &ids[0]), ("ids", &ids[1])]).await;
    b.follow(deleted).await;
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 1);
    let bin = b.get("/e/customer/bin").await;
    assert_eq!(row_ids(ok(&bin)).len(), 2);
    let restored = b.post("/e/customer/bin", &[("ids", &ids[0])]).await;
    let bin = b.follow(restored).await;
    assert_eq!(row_ids(&bin.text), vec![ids[1].clone()]);
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 2);

    let gone = b.post(&format!("/e/customer/{}/delete", ids[2]), &[]).await;
    assert_eq!(gone.location.as_deref(), Some("/e/customer"));
    assert_eq!(b.get(&format!("/e/customer/{}", ids[2])).await.status, StatusCode::NOT_FOUND);
}

async fn futures_ids(t: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(t.create("customer", json!({"name": format!("批量{i}")})).await["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn board_and_stage_path(t: TestApp) {
    let customer = t.create("customer", json!({"name": "Board Ltd"})).await["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, stage, amount) in
        [("A", "initial_contact", "100.5"), ("B", "initial_contact", "200"), ("C", "proposal", "50")]
    {
        let created = t
            .create("opportunity", json!({"name": name, "customer": customer, "stage": stage, "amount": amount}))
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let board = b.get("/e/opportunity/board").await;
    let column = between(ok(&board), "data-stage=\"initial_contact\"", "</section>").unwrap();
    assert!(column.contains("data-count>2<"), "{column}");
    assert!(column.contains("¥300.50"), "the sum of the amounts");
    assert_eq!(row_ids(&column).len(), 0);
    assert_eq!(column.matches("class=\"kanban-card\"").count(), 2);
    assert_eq!(b.get("/e/customer/board").await.status, StatusCode::NOT_FOUND, "no stages, no board");

    // The stage path moves the record, as a drag on the board does (same form).
    let moved = b
        .post(
            &format!("/e/opportunity/{}/edit", ids[0]),
            &[("stage", "negotiation"), ("version", "1"), ("_back", "/e/opportunity/board")],
        )
        .await;
    assert_eq!(moved.location.as_deref(), Some("/e/opportunity/board"));
    let board = b.follow(moved).await;
    assert!(between(&board.text, "data-stage=\"negotiation\"", "</section>").unwrap().contains("data-count>1<"));
    assert_eq!(t.get(&format!("/api/v1/records/opportunity/{}", ids[0])).await.expect(200)["stage"], "negotiation");
    let stale = b
        .post(
            &format!("/e/opportunity/{}/edit", ids[0]),
            &[("stage", "proposal"), ("version", "1"), ("_back", "/e/opportunity/board")],
        )
        .await;
    assert!(b.follow(stale).await.text.contains("其他人已修改"), "a stale move is explained");
    // Losing a deal asks why.
    let lost = b
        .post(
            &format!("/e/opportunity/{}/edit", ids[1]),
            &[("stage", "lost"), ("version", "1"), ("_back", "/e/opportunity/board")],
        )
        .await;
    assert_eq!(lost.status, StatusCode::UNPROCESSABLE_ENTITY, "the whole form asks for the reason");
    let reason = between(&lost.text, "data-field=\"lost_reason\"", "</div>").expect("the reason's field");
    assert!(reason.contains("进入该阶段需要填写此字段"), "the error is beside the reason: {reason}");
    assert!(lost.text.contains("<option value=\"lost\" selected"), "the stage chosen is kept: {}", lost.text);
    assert_eq!(t.get(&format!("/api/v1/records/opportunity/{}", ids[1])).await.expect(200)["stage"], "initial_contact");

    let record = b.get(&format!("/e/opportunity/{}", ids[0])).await;
    let path = between(ok(&record), "id=\"stage-path\"", "</section>").unwrap();
    assert!(path.contains("data-stage=\"negotiation\" aria-current=\"step\""));
    let state = |stage: &str| {
        let before = &path[..path.find(&format!("data-stage=\"{stage}\"")).unwrap()];
        before[before.rfind("class=\"stage ").unwrap() + 13..].split(' ').next().unwrap().to_owned()
    };
    assert_eq!(state("initial_contact"), "done", "where it was");
    assert_eq!((state("needs_analysis"), state("proposal")), ("skipped".into(), "skipped".into()), "passed over");
    assert!(path.contains("初步接洽") && path.contains("谈判审核"), "the history names both stages");
    assert!(path.contains("data-confirm=\"确定将阶段改为“输单”吗？\""), "closing is confirmed");
    let stays = between(&path, "<tbody>", "</tbody>").unwrap();
    assert!(stays.contains("0 天 0 小时"), "how long, in days and hours: {stays}");
    let today = chrono::Utc::now().with_timezone(&crm::schedule::business_offset()).format("%Y-%m-%d").to_string();
    assert!(stays.contains(&today), "since when, on the viewer's clock: {stays}");
    let timeline = between(&record.text, "class=\"timeline", "</aside>").unwrap();
    assert!(timeline.contains("系统管理员") && timeline.contains("谈判审核"), "the change is on the timeline");
    // Activities logged on the record are on its timeline too, newest first.
    t.create("activity", json!({"name": "电话回访", "opportunity": ids[0]})).await;
    let record = b.get(&format!("/e/opportunity/{}", ids[0])).await;
    let timeline = between(ok(&record), "class=\"timeline", "</aside>").unwrap();
    let call = timeline.find("电话回访").expect("the activity is on the timeline");
    assert!(call < timeline.find("谈判审核").unwrap(), "newer entries come first");
}

async fn language_and_theme_are_remembered(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    assert!(b.get("/e/customer").await.text.contains("<html lang=\"zh-CN\" data-theme=\"blue\">"));
    let english = b.post("/prefs", &[("locale", "en"), ("back", "/e/customer")]).await;
    assert_eq!(english.location.as_deref(), Some("/e/customer"));
    b.post("/prefs", &[("theme", "dark"), ("back", "/")]).await;
    let page = b.get("/e/customer").await;
    assert!(ok(&page).contains("<html lang=\"en\" data-theme=\"dark\">"));
    assert!(page.text.contains(">Customer <") || page.text.contains(">Customer<"), "labels in English");
    assert!(page.text.contains("Export CSV"));
    let refused = b.post("/prefs", &[("theme", "neon")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A new session keeps the choice; a browser that asks for English gets it before choosing.
    let again = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let cookies = again.cookies();
    assert!(t.page(Method::GET, "/", &cookies, None).await.text.contains("lang=\"en\""));
}

async fn a_rep_sees_only_their_modules_and_actions(t: TestApp) {
    let password = "a-long-password-1";
    let user = json!({"user": {"name": "张三", "login": "zhangsan"}, "password": password, "roles": ["sales_rep"]});
    t.post("/api/v1/admin/users", user).await.expect(201);
    let mut rep = Browser::sign_in(&t, "zhangsan", password).await;
    // A new account sets its password first.
    let forced = rep.get("/e/customer").await;
    assert_eq!(forced.location.as_deref(), Some("/password"));
    let changed = rep
        .post(
            "/password",
            &[
                ("current_password", password),
                ("password", "another-long-password-2"),
                ("password_again", "another-long-password-2"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.text);

    let theirs = t.create("customer", json!({"name": "Admin's own Ltd"})).await["id"].as_str().unwrap().to_owned();
    let list = rep.get("/e/customer").await;
    assert!(ok(&list).contains("id=\"empty\""), "no customers of their own yet: the empty state");
    assert!(list.text.contains("新建第一条客户"));
    assert!(!list.text.contains("bulk-assign"), "reps may not assign");
    assert_eq!(rep.get(&format!("/e/customer/{theirs}")).await.status, StatusCode::NOT_FOUND, "out of scope");
    // A share shows at once, total included (list totals are remembered between writes).
    let zhangsan =
        t.list("user", Some(json!({"field": "login", "op": "eq", "value": "zhangsan"})), "").await.expect(200);
    let zhangsan = zhangsan["data"][0]["id"].as_str().unwrap().to_owned();
    t.post("/api/v1/records/customer/bulk/share", json!({"ids": [theirs], "user": zhangsan, "access": "read"}))
        .await
        .expect(200);
    let shared = rep.get("/e/customer").await;
    assert!(ok(&shared).contains("共 1 条"), "the shared record counts");
    assert_eq!(rep.get(&format!("/e/customer/{theirs}")).await.status, StatusCode::OK);
    t.post("/api/v1/records/customer/bulk/unshare", json!({"ids": [theirs], "user": zhangsan})).await.expect(200);
    assert!(rep.get("/e/customer").await.text.contains("id=\"empty\""), "and stops counting when unshared");
    let home = rep.get("/").await;
    assert!(ok(&home).contains("href=\"&#x2f;e&#x2f;customer\""), "the module is in the menu beside the dashboard");
    let mine = rep.post("/e/customer/new", &[("name", "Rep's Ltd")]).await;
    let record = rep.follow(mine).await;
    assert!(ok(&record).contains("Rep&#x27;s Ltd") || record.text.contains("Rep's Ltd"));
    assert!(record.text.contains("张三"), "owned by the rep");
    assert!(!rep.get("/e/customer").await.text.contains("id=\"empty\""));

    // The public pool (公海) is a view of the list, and its customers are claimed (领取) from
    // the record or the list's selection.
    let pool = t.create("user", json!({"name": "公共客户池", "login": "pool", "pool": true})).await;
    let pool = pool["id"].as_str().unwrap().to_owned();
    let waiting =
        t.create("customer", json!({"name": "公海客户", "owner": pool})).await["id"].as_str().unwrap().to_owned();
    let list = rep.get("/e/customer").await;
    let chip = format!("href=\"/e/customer?f_owner={pool}\"");
    assert!(ok(&list).contains(&chip) && list.text.contains("公海：公共客户池"), "{}", list.text);
    assert!(list.text.contains("id=\"bulk-claim\""));
    let view = rep.get(&format!("/e/customer?f_owner={pool}")).await;
    assert_eq!(row_ids(ok(&view)), vec![waiting.clone()], "the pool's view lists what waits in it");
    let page = rep.get(&format!("/e/customer/{waiting}")).await;
    assert!(ok(&page).contains("id=\"claim-record\""));
    let claimed = rep.post("/e/customer/bulk", &[("action", "claim"), ("ids", &waiting), ("record", &waiting)]).await;
    let page = rep.follow(claimed).await;
    assert!(ok(&page).contains("已处理 1 条"), "{}", page.text);
    assert!(!page.text.contains("id=\"claim-record\""), "claimed: no longer in the pool");
    assert_eq!(t.get(&format!("/api/v1/records/customer/{waiting}")).await.expect(200)["owner"], zhangsan);
}

/// Pages load one stylesheet and one script, together well under 100 KB, and nothing else
/// before first paint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_light() {
    let t = TestApp::sqlite().await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.get("/e/customer").await;
    let loads: Vec<String> =
        ok(&page).split(['"', '\'']).filter(|part| part.starts_with("/static/")).map(str::to_owned).collect();
    assert_eq!(loads, vec!["/static/app.css", "/static/app.js"]);
    let mut total = 0;
    for asset in &loads {
        let reply = t.page(Method::GET, asset, "", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        total += reply.text.len();
    }
    assert!(total < 100 * 1024, "JS and CSS are {total} bytes");
    assert_eq!(t.page(Method::GET, "/static/../Cargo.toml", "", None).await.status, StatusCode::NOT_FOUND);
}

async fn approvals_reminders_and_conversion_on_screen(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let customer = t.create("customer", json!({"name": "审核客户"})).await["id"].as_str().unwrap().to_owned();
    let order =
        t.create("order", json!({"name": "首单", "customer": customer})).await["id"].as_str().unwrap().to_owned();
    let page = b.get(&format!("/e/order/{order}")).await;
    let approval = between(ok(&page), "id=\"approval\"", "</section>").unwrap();
    assert!(approval.contains("data-approval=\"submit\""), "{approval}");
    let submitted = b.post(&format!("/e/order/{order}/approval"), &[("action", "submit")]).await;
    let page = b.follow(submitted).await;
    assert!(ok(&page).contains("已提交审核"));
    let approval = between(&page.text, "id=\"approval\"", "</section>").unwrap();
    assert!(approval.contains("data-approval=\"approve\"") && approval.contains("data-approval=\"reject\""));
    let refused = b.post(&format!("/e/order/{order}/approval"), &[("action", "reject")]).await;
    assert!(b.follow(refused).await.text.contains("say why"), "a rejection needs a reason, said on the page");
    let approved = b.post(&format!("/e/order/{order}/approval"), &[("action", "approve"), ("comment", "同意")]).await;
    let page = b.follow(approved).await;
    let approval = between(&page.text, "id=\"approval\"", "</section>").unwrap();
    assert!(approval.contains("同意") && approval.contains("审核通过"), "{approval}");
    assert_eq!(t.get(&format!("/api/v1/records/order/{order}")).await.expect(200)["approval_status"], "approved");

    // The decision is in the owner's reminders, and can be marked done there.
    let reminders = b.get("/reminders").await;
    assert!(ok(&reminders).contains("订单「首单」已审核通过：同意"), "{}", reminders.text);
    assert!(!reminders.text.contains("approved"), "no English on a Chinese screen");
    let id = between(&reminders.text, "action=\"/reminders/", "/done").unwrap();
    let done = b.post(&format!("/reminders/{id}/done"), &[]).await;
    assert!(b.follow(done).await.text.contains("今天没有待办提醒"));

    // A service request past its resolution target is marked in the list and on the record,
    // one near its response target too; a resolved one is not.
    let level = t.list("service_level", Some(json!({"field": "priority", "op": "eq", "value": "normal"})), "").await;
    let level = level.expect(200)["data"][0].clone();
    let change = json!({"round_the_clock": true, "response_hours": "0.5", "resolution_hours": "0", "version": 1});
    t.patch(&format!("/api/v1/records/service_level/{}", level["id"].as_str().unwrap()), change).await.expect(200);
    let late = t.create("service_request", json!({"name": "超时的请求", "customer": customer})).await;
    let list = b.get("/e/service_request").await;
    let row = between(ok(&list), &format!("<tr data-id=\"{}\"", late["id"].as_str().unwrap()), "</tr>").unwrap();
    assert!(row.contains("class=\"text deadline-overdue\"") && row.contains("已逾期"), "{row}");
    let page = b.get(&format!("/e/service_request/{}", late["id"].as_str().unwrap())).await;
    let marks = |html: &str, tone: &str| html.matches(&format!("text deadline-{tone}\"")).count();
    assert_eq!((marks(ok(&page), "overdue"), marks(&page.text, "due-soon")), (1, 1), "{}", page.text);
    assert!(page.text.contains("即将到期"));
    let resolved = json!({"status": "resolved", "version": 1});
    t.patch(&format!("/api/v1/records/service_request/{}", late["id"].as_str().unwrap()), resolved).await.expect(200);
    let page = b.get(&format!("/e/service_request/{}", late["id"].as_str().unwrap())).await;
    assert_eq!(marks(ok(&page), "overdue"), 0, "met: nothing is due");

    // A quote's total recalculated line after line is one entry of its timeline.
    let quote =
        t.create("quote", json!({"name": "三行报价", "customer": customer})).await["id"].as_str().unwrap().to_owned();
    for (name, quantity) in [("甲", "10"), ("乙", "2.5"), ("丙", "1")] {
        t.create("quote_line", json!({"quote": quote, "name": name, "quantity": quantity, "price": "100"})).await;
    }
    let page = b.get(&format!("/e/quote/{quote}")).await;
    let timeline = between(ok(&page), "class=\"timeline", "</aside>").unwrap();
    assert_eq!(timeline.matches("重新计算了").count(), 1, "{timeline}");
    assert!(timeline.contains("¥1,350.00"), "from the first total to the last: {timeline}");
    let lines = between(&page.text, "id=\"panel-lines\"", "</table>").unwrap();
    assert!(lines.contains(">2.5<") && !lines.contains("2.50"), "quantities as people write them: {lines}");

    // A deleted customer shows as deleted on its opportunity, with the way to the recycle bin.
    let gone = t.create("customer", json!({"name": "已删客户"})).await["id"].as_str().unwrap().to_owned();
    let deal = json!({"name": "孤儿商机", "customer": gone, "expected_close": "2026-12-31"});
    let deal = t.create("opportunity", deal).await["id"].as_str().unwrap().to_owned();
    let before = b.get(&format!("/e/customer/{gone}")).await;
    assert!(ok(&before).contains("这条记录还关联着：销售机会 1 条"), "the delete button warns first");
    t.delete(&format!("/api/v1/records/customer/{gone}")).await.expect(204);
    let page = b.get(&format!("/e/opportunity/{deal}")).await;
    assert!(ok(&page).contains("已删客户（已删除）"), "{}", page.text);
    assert!(page.text.contains("href=\"&#x2f;e&#x2f;customer&#x2f;bin\""), "{}", page.text);
    assert!(!page.text.contains("无权查看"));

    // The supervisor's workload: per owner, open, overdue, resolved this week, average hours.
    t.create("service_request", json!({"name": "还没解决", "customer": customer})).await;
    let page = b.get("/service/workload").await;
    let table = between(ok(&page), "id=\"workload\"", "</table>").unwrap();
    assert!(table.contains("系统管理员"), "{table}");
    for cell in ["data-label=\"未结\">1<", "deadline-overdue\" data-label=\"已逾期\">1<", "data-label=\"本周解决\">1<"]
    {
        assert!(table.contains(cell), "{cell} in {table}");
    }
    assert!(table.contains("data-label=\"平均解决用时（小时）\">0.0<"), "{table}");

    let lead =
        t.create("lead", json!({"name": "赵经理", "company": "新线索公司"})).await["id"].as_str().unwrap().to_owned();
    let page = b.get(&format!("/e/lead/{lead}")).await;
    assert!(ok(&page).contains("id=\"convert-lead\""));
    let converted = b.post(&format!("/e/lead/{lead}/convert"), &[]).await;
    let page = b.follow(converted).await;
    assert!(ok(&page).contains("线索已转换"));
    assert!(!page.text.contains("id=\"convert-lead\""), "a converted lead is not converted again");
    assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 2);
}

async fn the_studio_builds_an_entity_with_a_plan_first(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let home = b.get("/studio").await;
    assert!(ok(&home).contains("data-entity=\"customer\""));

    // A new entity: first its plan, then (confirmed) live, with nothing applied in between.
    let fields = [("name", "competitor"), ("label_zh", "竞争对手"), ("label_en", "Competitor"), ("icon", "flag")];
    let planned = b.post("/studio", &fields).await;
    assert!(ok(&planned).contains("新建数据表「竞争对手」"), "the plan is shown first, in Chinese");
    t.get("/api/v1/meta/entities/competitor").await.expect(404);
    let confirmed = confirm(&fields);
    let applied = b.post("/studio", &confirmed).await;
    assert_eq!(applied.location.as_deref(), Some("/studio/e/competitor"));
    t.get("/api/v1/meta/entities/competitor").await.expect(200);

    // A select field with its options, then live on the entity's form.
    let field = [
        ("name", "threat"),
        ("label_zh", "威胁程度"),
        ("label_en", "Threat"),
        ("type", "select"),
        ("options", "high | 高 | High\nlow | 低 | Low"),
        ("required", "true"),
    ];
    let planned = b.post("/studio/e/competitor/fields", &field).await;
    assert!(ok(&planned).contains("在「竞争对手」中新增字段「威胁程度」（单选）"), "{}", planned.text);
    let confirmed = confirm(&field);
    let applied = b.post("/studio/e/competitor/fields", &confirmed).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.text);
    let form = b.get("/e/competitor/new").await;
    assert!(ok(&form).contains("name=\"threat\"") && form.text.contains("威胁程度"));
    assert!(form.text.contains("<option value=\"high\">高</option>"));
    let created = t.create("competitor", json!({"name": "对手甲", "threat": "high"})).await;
    let ours = t.create("competitor", json!({"name": "我们的影子", "threat": "low"})).await;
    assert_eq!(created["threat"], "high");

    // A field the metadata refuses is said on the page, nothing applied.
    let refused =
        b.post("/studio/e/competitor/fields", &[("name", "Bad Name"), ("label_zh", "坏"), ("label_en", "Bad")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("id=\"studio-errors\""));
    assert!(refused.text.contains("data-error-for=\"name\""), "the error is beside the name: {}", refused.text);
    let lookup = b
        .post(
            "/studio/e/competitor/fields",
            &[
                ("name", "rival_of"),
                ("label_zh", "对手"),
                ("label_en", "Rival of"),
                ("type", "lookup"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(lookup.status, StatusCode::UNPROCESSABLE_ENTITY, "a lookup needs a target");

    // The layout as JSON (what the designer's script writes): a field moved, errors refused.
    let designer = b.get("/studio/e/competitor/layout").await;
    assert!(ok(&designer).contains("data-field=\"threat\""));
    let moved = json!({"sections": [{"name": "main", "label": {"zh-CN": "基本", "en": "Main"}, "columns": 1,
        "fields": [{"field": "threat", "required": true}, "name"]}]});
    let saved = b.post("/studio/e/competitor/layout", &[("side", "edit"), ("layout", &moved.to_string())]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let form = b.get("/e/competitor/new").await;
    assert!(ok(&form).find("name=\"threat\"").unwrap() < form.text.find("name=\"name\"").unwrap());
    let unknown = json!({"sections": [{"name": "main", "label": {"zh-CN": "基本", "en": "Main"}, "fields": ["nope"]}]});
    let refused = b.post("/studio/e/competitor/layout", &[("side", "edit"), ("layout", &unknown.to_string())]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("nope"), "the error names the field");
    let garbled = b.post("/studio/e/competitor/layout", &[("side", "view"), ("layout", "{not json")]).await;
    assert_eq!(garbled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(garbled.text.contains("{not json"), "what was typed is kept");

    // Fields are reordered.
    let moved = b.post("/studio/e/competitor/fields/threat/move", &[("direction", "up")]).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    let studio = b.get("/studio/e/competitor").await;
    assert!(ok(&studio).find("data-field=\"threat\"").unwrap() < studio.text.find("data-field=\"name\"").unwrap());
    assert!(studio.text.contains("<option value=\"long_text\">多行文本</option>"), "types are offered by their labels");

    // A field's labels, options and flags changed in the studio: planned, then live.
    let edit = b.get("/studio/e/competitor/fields/threat").await;
    assert!(ok(&edit).contains("high | 高 | High"), "the options as they are");
    let change = [
        ("type", "select"),
        ("label_zh", "威胁等级"),
        ("label_en", "Threat level"),
        ("options", "high | 高 | High\nmid | 中 | Medium\nlow | 低 | Low"),
        ("required", "true"),
    ];
    let planned = b.post("/studio/e/competitor/fields/threat", &change).await;
    assert!(ok(&planned).contains("id=\"studio-plan\""), "{}", planned.text);
    let confirmed = confirm(&change);
    let applied = b.post("/studio/e/competitor/fields/threat", &confirmed).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.text);
    let form = b.get("/e/competitor/new").await;
    assert!(ok(&form).contains("威胁等级") && form.text.contains("<option value=\"mid\">中</option>"));

    let archived = b.post("/studio/e/competitor/fields/threat/archive", &[]).await;
    assert_eq!(archived.location.as_deref(), Some("/studio/e/competitor"));
    assert!(!b.get("/e/competitor/new").await.text.contains("name=\"threat\""), "archived fields leave the form");
    let history = b.get("/studio/history").await;
    assert!(
        ok(&history).contains("对象「竞争对手」") && history.text.contains("修改字段「威胁等级」"),
        "{}",
        history.text
    );
    let rules_only = b.get("/studio/history?kind=script").await;
    assert!(!ok(&rules_only).contains("对象「竞争对手」"), "filtered by the kind of document");

    // A rule written in the studio: its syntax checked on save, tried on a record, live at once.
    assert_eq!(b.get("/studio/scripts?new=no_rivals").await.location.as_deref(), Some("/studio/scripts/no_rivals"));
    let rule = |source: &'static str| {
        vec![
            ("label_zh", "不许自称对手"),
            ("label_en", "No self-rivals"),
            ("event", "validate"),
            ("entity", "competitor"),
            ("enabled", "true"),
            ("source", source),
        ]
    };
    let broken = b.post("/studio/scripts/no_rivals", &rule("if record.name == { }")).await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.text.contains("第 1 行第"), "the syntax error is placed, in Chinese: {}", broken.text);
    let source = r#"if record.name.contains("我们") { error("name", "不能把自己列为竞争对手"); }"#;
    let saved = b.post("/studio/scripts/no_rivals", &rule(source)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let listed = b.get("/studio/scripts").await;
    assert!(ok(&listed).contains("data-script=\"no_rivals\""));
    let mut tried = rule(source);
    let rival = ours["id"].as_str().unwrap().to_owned();
    tried.extend([("dry_run", "yes"), ("record_id", rival.as_str())]);
    let dry = b.post("/studio/scripts/no_rivals", &tried).await;
    assert!(ok(&dry).contains("id=\"dry-run-ok\""), "{}", dry.text);
    let picker = between(&dry.text, "id=\"dry-run-record\"", "</select>").unwrap();
    assert!(
        picker.contains(&format!("<option value=\"{rival}\" selected>")),
        "the record is picked from a list: {picker}"
    );
    let said = between(&dry.text, "id=\"dry-run-errors\"", "</ul>").unwrap();
    assert!(said.contains("不能把自己列为竞争对手"), "what the rule would say, in words: {said}");
    let refused = t.post("/api/v1/records/competitor", json!({"name": "我们自己"})).await.expect(422);
    assert_eq!(refused["errors"][0]["message"], "不能把自己列为竞争对手");

    // The module as a package file, installed on another system: plan first, then live.
    let file = b.get("/studio/package.json?entity=competitor").await;
    assert_eq!(file.status, StatusCode::OK);
    let bundle: Value = serde_json::from_str(&file.text).expect("a package file is JSON");
    let files: Vec<&String> = bundle["files"].as_object().unwrap().keys().collect();
    for expected in ["entities/competitor.json", "layouts/competitor.json", "scripts/no_rivals.json"] {
        assert!(files.iter().any(|f| *f == expected), "{expected} in {files:?}");
    }
    assert!(!files.iter().any(|f| f.as_str() == "entities/customer.json"), "only the module");
    let other = TestApp::sqlite().await;
    let mut there = Browser::sign_in(&other, "admin", support::ADMIN_PASSWORD).await;
    let planned = there.post("/studio/package", &[("package", &file.text)]).await;
    assert!(ok(&planned).contains("新建数据表「竞争对手」"), "{}", planned.text);
    other.get("/api/v1/meta/entities/competitor").await.expect(404);
    let installed = there.post("/studio/package", &[("package", &file.text), ("confirm", "yes")]).await;
    assert_eq!(installed.status, StatusCode::SEE_OTHER, "{}", installed.text);
    other.get("/api/v1/meta/entities/competitor").await.expect(200);
    other.post("/api/v1/records/competitor", json!({"name": "我们"})).await.expect(422);
    let garbled = there.post("/studio/package", &[("package", "{\"package\": 1}")]).await;
    assert_eq!(garbled.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Rolling back the change that added `threat`: it and `motto`, added since, stay archived,
    // their data kept, and `motto` leaves the form.
    let motto = json!({"name": "motto", "type": "text", "label": {"zh-CN": "口号", "en": "Motto"}});
    t.post("/api/v1/meta/entities/competitor/fields", motto).await.expect(201);
    assert!(b.get("/e/competitor/new").await.text.contains("name=\"motto\""));
    let changes = t.get("/api/v1/meta/history").await.expect(200);
    let added = changes["data"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|c| c["kind"] == "entity" && c["name"] == "competitor" && !c["before"].is_null())
        .expect("the change that added a field")["id"]
        .as_i64()
        .unwrap();
    let rolled = b.post(&format!("/studio/history/{added}/rollback"), &[]).await;
    assert!(b.follow(rolled).await.text.contains("已回滚"));
    let studio = b.get("/studio/e/competitor").await;
    assert!(ok(&studio).contains("data-field=\"threat\" class=\"muted\""), "threat is kept, archived");
    assert!(studio.text.contains("data-field=\"motto\" class=\"muted\""), "motto is kept, archived");
    assert!(!b.get("/e/competitor/new").await.text.contains("name=\"motto\""), "and off the form");
    let first = changes["data"].as_array().unwrap().iter().rfind(|c| c["name"] == "competitor").unwrap()["id"]
        .as_i64()
        .unwrap();
    let refused = b.post(&format!("/studio/history/{first}/rollback"), &[]).await;
    assert!(b.follow(refused).await.text.contains("不能回滚"), "creating an entity is not undone by dropping it");

    // The customer form as a sales rep sees it: the credit limit is theirs to read only.
    let preview = b.get("/studio/e/customer/preview?role=sales_rep").await;
    assert!(ok(&preview).contains("id=\"preview-notice\""));
    let credit = between(&preview.text, "data-field=\"credit_limit\"", "</div>").expect("the field is shown");
    assert!(credit.contains("readonly"), "{credit}");
    assert!(preview.text.contains("id=\"save\" disabled"));
    assert_eq!(b.get("/studio/e/customer/preview?role=nobody").await.status, StatusCode::NOT_FOUND);

    // Only administrators have the studio.
    t.user("plain", &["sales_rep"], None).await;
    let mut rep = Browser::sign_in(&t, "plain", support::USER_PASSWORD).await;
    assert_eq!(rep.get("/studio").await.status, StatusCode::FORBIDDEN);
    assert_eq!(rep.get("/studio/e/customer/layout").await.status, StatusCode::FORBIDDEN);
    assert_eq!(rep.get("/studio/package.json").await.status, StatusCode::FORBIDDEN);
    let made =
        rep.post("/studio/users", &[("name", "越权"), ("login", "sneak"), ("password", "long-Password-9")]).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    assert!(!rep.get("/").await.text.contains("id=\"studio-link\""));
}

/// The studio's promise without a browser: an entity with fields, a stage set, a rule, a role
/// grant, a panel on customers and list settings — then a rep uses it, with no restart.
async fn a_module_built_in_the_studio_is_live_for_a_rep(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let made = b
        .post("/studio", &confirm(&[("name", "competitor"), ("label_zh", "竞争对手"), ("label_en", "Competitor")]))
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    assert_eq!(b.get("/studio?stage_set=rivalry").await.location.as_deref(), Some("/studio/stage-sets/rivalry"));
    let stages = b
        .post(
            "/studio/stage-sets/rivalry",
            &[
                ("label_zh", "竞争阶段"),
                ("label_en", "Rivalry"),
                ("stage", "watch"),
                ("stage_zh", "观察"),
                ("stage_en", "Watch"),
                ("probability", "10"),
                ("category", "open"),
                ("required", ""),
                ("stage", "compete"),
                ("stage_zh", "竞争"),
                ("stage_en", "Compete"),
                ("probability", "50"),
                ("category", "open"),
                ("required", "strength"),
                ("stage", "beaten"),
                ("stage_zh", "击败"),
                ("stage_en", "Beaten"),
                ("probability", "100"),
                ("category", "won"),
                ("required", ""),
                ("stage", ""),
                ("stage_zh", ""),
                ("stage_en", ""),
                ("probability", "0"),
                ("category", "open"),
                ("required", ""),
            ],
        )
        .await;
    assert_eq!(stages.status, StatusCode::SEE_OTHER, "{}", stages.text);
    // Reordered by their positions: "beaten" moved before "compete".
    let reordered = b
        .post(
            "/studio/stage-sets/rivalry",
            &[
                ("label_zh", "竞争阶段"),
                ("label_en", "Rivalry"),
                ("order", "10"),
                ("stage", "watch"),
                ("stage_zh", "观察"),
                ("stage_en", "Watch"),
                ("probability", "10"),
                ("category", "open"),
                ("required", ""),
                ("order", "30"),
                ("stage", "compete"),
                ("stage_zh", "竞争"),
                ("stage_en", "Compete"),
                ("probability", "50"),
                ("category", "open"),
                ("required", "strength"),
                ("order", "20"),
                ("stage", "beaten"),
                ("stage_zh", "击败"),
                ("stage_en", "Beaten"),
                ("probability", "100"),
                ("category", "won"),
                ("required", ""),
            ],
        )
        .await;
    assert_eq!(reordered.status, StatusCode::SEE_OTHER);
    let set = t.get("/api/v1/meta/stage_sets/rivalry").await.expect(200);
    let names: Vec<&str> = set["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["watch", "beaten", "compete"]);
    let bad = b
        .post(
            "/studio/stage-sets/broken",
            &[("label_zh", "坏"), ("label_en", "Bad"), ("stage", "x"), ("probability", "150"), ("category", "open")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "a probability over 100 is refused on the page");
    for field in [
        vec![
            ("name", "customer"),
            ("label_zh", "客户"),
            ("label_en", "Customer"),
            ("type", "lookup"),
            ("target", "customer"),
        ],
        vec![("name", "strength"), ("label_zh", "实力"), ("label_en", "Strength"), ("type", "integer")],
        vec![
            ("name", "stage"),
            ("label_zh", "阶段"),
            ("label_en", "Stage"),
            ("type", "stage"),
            ("stage_set", "rivalry"),
            ("default", "watch"),
        ],
        vec![("name", "website"), ("label_zh", "网址"), ("label_en", "Website"), ("type", "url")],
    ] {
        let added = b.post("/studio/e/competitor/fields", &confirm(&field)).await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    }
    let rule = [
        ("label_zh", "实力范围"),
        ("label_en", "Strength range"),
        ("event", "validate"),
        ("entity", "competitor"),
        ("enabled", "true"),
        (
            "source",
            r#"if record.strength != () && (record.strength < 1 || record.strength > 5) { error("strength", "实力为 1 到 5"); }"#,
        ),
    ];
    assert_eq!(b.post("/studio/scripts/strength_range", &rule).await.status, StatusCode::SEE_OTHER);

    // The rep's role may read and create competitors, and change their own.
    let role = b.get("/studio/roles/sales_rep").await;
    assert!(ok(&role).contains("name=\"competitor.read\""));
    let mut grant: Vec<(String, String)> = Vec::new();
    for (entity, actions) in t.get("/api/v1/meta/roles").await.expect(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "sales_rep")
        .unwrap()["entities"]
        .as_object()
        .unwrap()
    {
        for action in actions["actions"].as_array().unwrap() {
            grant.push((format!("{entity}.{}", action.as_str().unwrap()), "true".into()));
        }
        grant.push((format!("{entity}.scope"), actions["scope"].as_str().unwrap().into()));
        for (field, access) in actions.get("fields").and_then(Value::as_object).into_iter().flatten() {
            grant.push((format!("{entity}.field.{field}"), access.as_str().unwrap().into()));
        }
    }
    // Reps see a competitor's website but may not change it.
    grant.push(("competitor.field.website".into(), "read".into()));
    for action in ["read", "create", "edit"] {
        grant.push((format!("competitor.{action}"), "true".into()));
    }
    grant.push(("competitor.scope".into(), "own".into()));
    grant.push(("label_zh".into(), "业务员".into()));
    grant.push(("label_en".into(), "Sales rep".into()));
    let grant: Vec<(&str, &str)> = grant.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = b.post("/studio/roles/sales_rep", &grant).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);

    // A panel of competitors on the customer, and the list's columns.
    let panel = b
        .post(
            "/studio/e/customer/related",
            &[
                ("source", "competitor.customer"),
                ("name", "competitors"),
                ("label_zh", "竞争对手"),
                ("label_en", "Competitors"),
                ("columns", "name, stage, strength"),
            ],
        )
        .await;
    assert_eq!(panel.status, StatusCode::SEE_OTHER, "{}", panel.text);
    let list = b
        .post(
            "/studio/e/competitor/list",
            &[("columns", "name, stage, strength, customer"), ("sort_field", "strength"), ("descending", "true")],
        )
        .await;
    assert_eq!(list.status, StatusCode::SEE_OTHER, "{}", list.text);

    // A rep, with no restart in between.
    t.user("wang", &["sales_rep"], None).await;
    let mut rep = Browser::sign_in(&t, "wang", support::USER_PASSWORD).await;
    assert!(ok(&rep.get("/").await).contains("href=\"&#x2f;e&#x2f;competitor\""), "the module is in the rep's menu");
    let customer = rep.post("/e/customer/new", &[("name", "被竞争的客户")]).await;
    let customer = customer.location.unwrap().rsplit('/').next().unwrap().to_owned();
    let refused =
        rep.post("/e/competitor/new", &[("name", "对手乙"), ("customer", &customer), ("strength", "9")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("data-error-for=\"strength\"") && refused.text.contains("实力为 1 到 5"));
    let created =
        rep.post("/e/competitor/new", &[("name", "对手乙"), ("customer", &customer), ("strength", "4")]).await;
    let rival = created.location.unwrap().rsplit('/').next().unwrap().to_owned();
    let page = rep.get(&format!("/e/competitor/{rival}")).await;
    assert!(
        ok(&page).contains("data-stage=\"watch\" aria-current=\"step\""),
        "the stage path starts at the first stage"
    );
    let moved = rep
        .post(
            &format!("/e/competitor/{rival}/edit"),
            &[("stage", "compete"), ("version", "1"), ("_back", &format!("/e/competitor/{rival}"))],
        )
        .await;
    let page = rep.follow(moved).await;
    assert!(page.text.contains("data-stage=\"compete\" aria-current=\"step\""), "moved");
    let customer_page = rep.get(&format!("/e/customer/{customer}")).await;
    let panel = between(ok(&customer_page), "id=\"panel-competitors\"", "</section>").expect("the new panel");
    assert!(panel.contains("对手乙") && panel.contains("竞争"), "{panel}");
    let list = rep.get("/e/competitor").await;
    assert!(ok(&list).contains("data-field=\"strength\" aria-sort=\"descending\""), "the list settings apply");
    let role = t.get("/api/v1/meta/roles").await.expect(200);
    let rep_role = role["data"].as_array().unwrap().iter().find(|r| r["name"] == "sales_rep").unwrap();
    assert_eq!(rep_role["entities"]["competitor"]["fields"]["website"], "read", "field access from the matrix");
    assert_eq!(rep_role["entities"]["customer"]["fields"]["credit_limit"], "read", "and the others kept");
    let edit = rep.get(&format!("/e/competitor/{rival}/edit")).await;
    let website = between(ok(&edit), "data-field=\"website\"", "</div>").expect("shown");
    assert!(website.contains("readonly"), "{website}");
}

async fn the_studio_manages_users(t: TestApp) {
    let top = t.create("department", json!({"name": "销售中心"})).await["id"].as_str().unwrap().to_owned();
    t.create("department", json!({"name": "华南大区", "parent": top})).await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.get("/studio/users").await;
    let tree = between(ok(&page), "id=\"department-tree\"", "</ul>").unwrap();
    assert!(tree.find("销售中心").unwrap() < tree.find("华南大区").unwrap(), "the tree, parents first");
    assert!(!page.text.contains("data-disable=\"admin\""), "one's own account offers no disable button");

    let weak = b
        .post("/studio/users", &[("name", "小刘"), ("login", "liu"), ("password", "short"), ("roles", "sales_rep")])
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY, "a weak first password is refused on the page");
    let made = b
        .post(
            "/studio/users",
            &[
                ("name", "小刘"),
                ("login", "liu"),
                ("department", &top),
                ("password", "first-Password-1"),
                ("roles", "sales_rep"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let page = b.follow(made).await;
    let row = between(&page.text, "data-user=\"liu\"", "</tr>").expect("the new user is listed");
    assert!(row.contains("销售中心"));
    let id = between(row.as_str(), "action=\"/studio/users/", "\"").unwrap();

    let roles = b
        .post(&format!("/studio/users/{id}"), &[("action", "roles"), ("roles", "sales_rep"), ("roles", "manager")])
        .await;
    assert_eq!(roles.status, StatusCode::SEE_OTHER);
    let account = t.get(&format!("/api/v1/admin/users/{id}")).await.expect(200);
    assert_eq!(account["roles"], json!(["manager", "sales_rep"]));
    b.post(&format!("/studio/users/{id}"), &[("action", "disable")]).await;
    assert!(t.login("liu", "first-Password-1").await.is_none(), "a disabled user cannot sign in");
    b.post(&format!("/studio/users/{id}"), &[("action", "enable")]).await;
    let reset = b.post(&format!("/studio/users/{id}"), &[("action", "reset")]).await;
    let notice = between(ok(&reset), "id=\"studio-notice\">", "</div>").unwrap();
    let password = between(&notice, "临时密码：", "（").expect("the temporary password is shown once");
    let token = t.login("liu", &password).await.expect("the temporary password works");
    let blocked = t.call(Method::GET, "/api/v1/records/customer", None, Some(&token)).await;
    assert_eq!(blocked.body["code"], "password_change_required", "and must be changed first");
}

#[test]
fn ui_catalogs_agree() {
    let zh = crm::screens::shell::catalog_keys("zh-CN");
    let en = crm::screens::shell::catalog_keys("en");
    let missing_zh: Vec<&String> = en.iter().filter(|k| !zh.contains(k)).collect();
    assert!(missing_zh.is_empty(), "keys without Chinese: {missing_zh:?}");
    // Field error codes are said in English by the service itself; everything else is in both.
    let missing_en: Vec<&String> = zh.iter().filter(|k| !k.starts_with("error.") && !en.contains(k)).collect();
    assert!(missing_en.is_empty(), "keys without English: {missing_en:?}");
}

/// Every text key the screens name, in a template (`t("…")`) or in the code (`text("…")`),
/// has words in both languages, and so do the keys made from a history entry's action: a
/// missing one would show as a raw key such as `timeline.approval`.
#[test]
fn every_key_the_screens_name_has_text() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    let mut folders = vec![root.join("ui-shell/templates"), root.join("engine/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "html" || e == "rs") {
                sources.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let is_key = |k: &str| {
        k.contains('.')
            && k.split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
    };
    let mut named = std::collections::BTreeSet::new();
    for (path, text) in &sources {
        let html = path.extension().is_some_and(|e| e == "html");
        let openers: &[&str] =
            if html { &["t(\"", "t('"] } else { &["text(\"", "text(viewer.locale, \"", "text(locale, \""] };
        for opener in openers {
            for piece in text.split(opener).skip(1) {
                let key: String = piece.chars().take_while(|c| *c != '"' && *c != '\'').collect();
                // A key ending in `_` is a prefix the template completes.
                if is_key(&key) && !key.ends_with('_') {
                    named.insert(key);
                }
            }
        }
    }
    for action in [
        "create",
        "update",
        "delete",
        "restore",
        "assign",
        "share",
        "unshare",
        "merge",
        "unmerge",
        "approval",
        "recalculated",
        "claim",
    ] {
        named.insert(format!("timeline.{action}"));
    }
    assert!(named.len() > 300, "the scan finds the keys: {}", named.len());
    for locale in ["zh-CN", "en"] {
        let keys = crm::screens::shell::catalog_keys(locale);
        let missing: Vec<&String> = named.iter().filter(|k| !keys.contains(k)).collect();
        assert!(missing.is_empty(), "keys without {locale} text: {missing:?}");
    }
}

/// The outbox consumers as an administrator sees them, in Chinese: what waits, what failed,
/// and a button that sends stopped events again. Nobody else sees them.
async fn the_studio_shows_background_jobs_and_sends_stopped_events_again(t: TestApp) {
    // The consumers' cursors start, and one event's sending stopped after eight attempts.
    let runner = crm::jobs::Runner::new(t.app.clone(), crm::jobs::standard());
    runner.run_once(t.app.now()).await.unwrap();
    let seq = 1;
    let now = t.app.now();
    crm_store::jobs::failed(&t.app.db, "assignments", "", seq, 8, "mail server refused <b>", now, now, true)
        .await
        .unwrap();

    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    assert!(ok(&b.get("/studio").await).contains("href=\"/studio/jobs\""), "the studio links to the jobs");
    let page = b.get("/studio/jobs").await;
    let text = ok(&page);
    assert!(text.contains("后台任务") && text.contains("缓存同步") && text.contains("分配提醒"), "{text}");
    assert!(text.contains("mail server refused &lt;b&gt;"), "the error is shown, escaped");
    assert!(text.contains("action=\"/studio/jobs/assignments/retry\""), "a stopped consumer offers to send again");
    let sent = b.post("/studio/jobs/assignments/retry", &[]).await;
    assert_eq!(sent.location.as_deref(), Some("/studio/jobs"));
    assert!(b.follow(sent).await.text.contains("重新发送"), "the page says so");
    let failures = crm_store::jobs::failures(&t.app.db).await.unwrap();
    assert!(failures.iter().all(|f| !f.dead), "{failures:?}");

    let (_, _) = t.user("jobrep", &["sales_rep"], None).await;
    let mut rep = Browser::sign_in(&t, "jobrep", support::USER_PASSWORD).await;
    let refused = rep.get("/studio/jobs").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// `/search` without a script: results grouped by module with the match marked, hostile
/// names shown as text, and a word for an empty box and for nothing found.
async fn the_search_page_marks_matches_and_escapes_everything(t: TestApp) {
    t.create("customer", json!({"name": "<script>alert(1)</script>立友信"})).await;
    t.run_jobs().await;
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    assert!(ok(&b.get("/e/customer").await).contains("id=\"global-search\""), "every page has the box");
    let empty = b.get("/search").await;
    assert!(ok(&empty).contains("输入名称"), "an empty box says what to do");
    let page = b.get(&format!("/search?q={}", support::encode("立友"))).await;
    let text = ok(&page);
    assert!(text.contains("<mark>立友</mark>"), "{text}");
    assert!(text.contains("&lt;script&gt;") && !text.contains("<script>alert"), "names are text");
    assert!(ok(&b.get(&format!("/search?q={}", support::encode("不存在的名字"))).await).contains("没有找到"));
}

/// The studio edits an entity's duplicate rules; the review screen starts a scan, shows the
/// clusters side by side with a way to merge them, and forgets a cluster set apart.
async fn duplicate_rules_and_their_review_on_screen(t: TestApp) {
    let mut admin = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let rules = admin.get("/studio/e/customer/duplicates").await;
    assert_eq!(rules.status, StatusCode::OK);
    assert!(rules.text.contains("同一公司") && rules.text.contains("公司名称（忽略后缀与地名）"), "{}", rules.text);
    let fields = [
        ("r0_name", "company"),
        ("r0_zh", "同一公司"),
        ("r0_en", "Same company"),
        ("r0_threshold", "85"),
        ("r0_block", "true"),
        ("r0_f0_field", "name"),
        ("r0_f0_compare", "company"),
        ("r0_f0_weight", "70"),
        ("r0_f1_field", "phone"),
        ("r0_f1_compare", "phone"),
        ("r0_f1_weight", "30"),
        ("r1_zh", ""),
        ("r1_en", ""),
        ("r1_f0_field", ""),
    ];
    let saved = admin.post("/studio/e/customer/duplicates", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    // The address is no longer compared: the index drops it, and the studio follows that.
    let studio = admin.get("/studio/e/customer").await;
    assert!(studio.text.contains("id=\"reindex-progress\""), "{}", studio.text);
    t.run_jobs().await;
    assert!(!admin.get("/studio/e/customer").await.text.contains("reindex-progress"));
    let entity = t.get("/api/v1/meta/entities/customer").await.expect(200);
    let rule = &entity["entity"]["duplicates"][0];
    assert_eq!((rule["threshold"].as_u64(), rule["action"].as_str()), (Some(85), Some("block")), "{rule}");
    assert_eq!(rule["fields"].as_array().unwrap().len(), 2);
    // A rule on a field that cannot be compared is refused on the page.
    let mut broken = fields.to_vec();
    broken[5] = ("r0_f0_field", "annual_revenue");
    let refused = admin.post("/studio/e/customer/duplicates", &broken).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Two spellings of one company that came in together (the check at entry looks in the
    // index, which had not seen the first yet), and another company.
    let a = t.create("customer", json!({"name": "北京立友信科技有限公司", "phone": "010-62345678"})).await;
    let c = t.create("customer", json!({"name": "立友信科技（北京）有限公司", "phone": "+86 10 6234 5678"})).await;
    t.create("customer", json!({"name": "深圳华强电子有限公司"})).await;
    t.run_jobs().await;
    let review = admin.get("/e/customer/duplicates").await;
    assert!(review.text.contains("id=\"no-scan\""), "{}", review.text);
    let started = admin.post("/e/customer/duplicates/scan", &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let task = crm_store::tasks::latest(&t.app.db, "duplicates", "customer").await.unwrap().expect("a scan");
    t.wait_task(None, &task.id.to_string()).await;
    let review = admin.get("/e/customer/duplicates").await;
    let (a, c) = (a["id"].as_str().unwrap(), c["id"].as_str().unwrap());
    assert!(
        review.text.contains("/e/customer/merge?ids=") && review.text.contains(a) && review.text.contains(c),
        "{}",
        review.text
    );
    assert!(!review.text.contains("深圳华强"), "not a duplicate of anything");
    let ids = between(&review.text, "name=\"ids\" value=\"", "\"").expect("the cluster's ids");
    let apart = admin.post("/e/customer/duplicates/apart", &[("ids", &ids)]).await;
    assert_eq!(apart.status, StatusCode::SEE_OTHER);
    let review = admin.get("/e/customer/duplicates").await;
    assert!(review.text.contains("id=\"no-clusters\""), "{}", review.text);
    // Not for a rep.
    let (_, _) = t.user("rep", &["sales_rep"], None).await;
    let mut rep = Browser::sign_in(&t, "rep", support::USER_PASSWORD).await;
    assert_eq!(rep.get("/e/customer/duplicates").await.status, StatusCode::FORBIDDEN);
}

/// The reports page lists what the viewer may run (saying what to do when there is
/// nothing); a report's page shows the server's chart and a table of the viewer's figures.
async fn a_report_shows_its_chart_and_table_in_the_viewers_scope(t: TestApp) {
    let (rep, _) = t.user("rep", &["sales_rep"], None).await;
    let (other, _) = t.user("other", &["sales_rep"], None).await;
    let customer = t.create("customer", json!({"name": "华东重工集团", "owner": rep})).await;
    for (owner, stage, amount) in [(&rep, "won", "12000.00"), (&rep, "proposal", "500.00"), (&other, "won", "999.00")] {
        let deal =
            json!({"name": "商机", "customer": customer["id"], "owner": owner, "stage": stage, "amount": amount});
        t.create("opportunity", deal).await;
    }
    t.user("engineer", &["service"], None).await;
    let mut engineer = Browser::sign_in(&t, "engineer", support::USER_PASSWORD).await;
    let empty = engineer.get("/reports").await;
    let empty = ok(&empty);
    assert!(empty.contains("还没有可查看的报表"), "no report is shared with service: {empty}");
    let mut b = Browser::sign_in(&t, "rep", support::USER_PASSWORD).await;
    let report = json!({
        "name": "won_by_stage", "label": {"zh-CN": "<b>按阶段</b>", "en": "By stage"}, "entity": "opportunity",
        "group_by": [{"field": "stage"}], "measures": [{"agg": "count"}, {"agg": "sum", "field": "amount"}],
        "chart": "bar", "roles": ["sales_rep"],
    });
    t.put("/api/v1/meta/reports/won_by_stage", report).await.expect(200);
    let list = b.get("/reports").await;
    let list = ok(&list);
    assert!(list.contains("href=\"/reports/won_by_stage\"") && list.contains("&lt;b&gt;按阶段"), "{list}");
    let page = b.get("/reports/won_by_stage").await;
    let page = ok(&page);
    assert!(page.contains("<svg") && page.contains("赢单: 1"), "the server's chart, inline: {page}");
    assert!(!page.contains("<b>按阶段"), "labels are escaped in the chart and the page: {page}");
    let won = between(page, "<td>赢单</td>", "</tr>").expect("a row of won deals");
    assert!(won.contains(">1</a></td>") && won.contains(">12000.00</a></td>"), "each figure links to its deals: {won}");
    assert!(page.contains("方案报价") && !page.contains("999.00"), "only the rep's own deals");
    assert_eq!(b.get("/reports/nothing_here").await.status, StatusCode::NOT_FOUND);
}

/// The home page is the dashboard of the user's role, each widget in their scope; a write
/// shows on the next load (the cached groups are forgotten); the studio arranges widgets and
/// the rep's home page follows.
async fn the_home_page_is_the_roles_dashboard_and_the_studio_arranges_it(t: TestApp) {
    let (rep, _) = t.user("rep", &["sales_rep"], None).await;
    let (other, _) = t.user("other", &["sales_rep"], None).await;
    let customer = t.create("customer", json!({"name": "华东重工集团", "owner": rep})).await;
    let deal = |owner: &str, stage: &str, amount: &str| json!({"name": "商机", "customer": customer["id"], "owner": owner, "stage": stage, "amount": amount});
    t.create("opportunity", deal(&rep, "proposal", "1234.50")).await;
    t.create("opportunity", deal(&other, "negotiation", "777.00")).await;
    for (owner, amount) in [(&rep, "3000.00"), (&other, "45000.00")] {
        let order = t.create("order", json!({"name": "订单", "customer": customer["id"], "owner": owner})).await;
        t.create("collection", json!({"order": order["id"], "amount": amount, "owner": owner})).await;
    }

    let mut b = Browser::sign_in(&t, "rep", support::USER_PASSWORD).await;
    let home = b.get("/").await;
    let home = ok(&home);
    assert!(home.contains("我的工作台") && home.contains("今日待办") && home.contains("销售漏斗"), "{home}");
    assert!(home.contains("方案报价") && !home.contains("谈判审核"), "the funnel counts only the rep's deals: {home}");
    assert!(!home.contains("本季度业绩排名"), "the boss's widgets are not the rep's");
    assert!(
        home.contains("本月回款金额") && home.contains("3000") && !home.contains("4.5万"),
        "my collections only: {home}"
    );
    assert_eq!(b.get("/?board=executive").await.status, StatusCode::NOT_FOUND, "nor is the boss's dashboard");

    let mut admin = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let home = admin.get("/").await;
    let home = ok(&home);
    assert!(home.contains("老板看板") && home.contains("href=\"/?board=sales_manager\""), "tabs of every dashboard");
    let morning = admin.get("/?board=sales_manager").await;
    let morning = ok(&morning);
    assert!(
        morning.contains("本周新增商机（按人）") && morning.contains("1234.50") && morning.contains("777.00"),
        "both reps' new deals: {morning}"
    );
    t.create("opportunity", deal(&rep, "proposal", "100.00")).await;
    let morning = admin.get("/?board=sales_manager").await;
    assert!(ok(&morning).contains("1334.50"), "a write is on the next load: {}", morning.text);

    // The studio arranges the rep's dashboard: the funnel goes, a list of customers comes.
    let editor = admin.get("/studio/dashboards/sales_rep").await;
    assert!(ok(&editor).contains("销售漏斗"), "{}", editor.text);
    let saved = admin
        .post(
            "/studio/dashboards/sales_rep",
            &[
                ("label_zh", "我的一天"),
                ("label_en", "My day"),
                ("role", "sales_rep"),
                ("pos_0", "1"),
                ("pos_1", "2"),
                ("pos_2", "3"),
                ("pos_3", "4"),
                ("pos_4", "5"),
                ("pos_5", "6"),
                ("remove_6", "on"),
                ("add", "list:customer"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let home = b.get("/").await;
    let home = ok(&home);
    assert!(home.contains("我的一天") && !home.contains("销售漏斗"), "{home}");
    assert!(home.contains("data-kind=\"list\"") && home.contains("华东重工集团"), "the customer list widget: {home}");

    // A widget naming a report that does not exist is refused with the reason; nothing changes.
    let json = t.get("/api/v1/meta/dashboards/sales_rep").await.expect(200);
    let mut wrong = json.clone();
    wrong["widgets"] = json!([{"kind": "report", "report": "no_such_report"}]);
    t.put("/api/v1/meta/dashboards/sales_rep", wrong).await.expect(422);
    assert_eq!(t.get("/api/v1/meta/dashboards/sales_rep").await.expect(200), json);
}

/// The report builder: a rep may not build; a manager previews a design (its chart and
/// table in their scope), is told what is wrong with one that cannot run, saves it shared
/// with reps, changes it and deletes it; a figure leads to the list of its records.
async fn a_manager_builds_a_report_saves_it_and_drills_into_its_records(t: TestApp) {
    let (rep, _) = t.user("rep", &["sales_rep"], None).await;
    let (other, _) = t.user("other", &["sales_rep"], None).await;
    t.user("boss", &["manager"], None).await;
    let customer = t.create("customer", json!({"name": "华东重工集团", "owner": rep})).await;
    for (owner, stage, amount) in [
        (&rep, "won", "12000.00"),
        (&rep, "proposal", "500.00"),
        (&rep, "proposal", "700.00"),
        (&other, "proposal", "999.00"),
    ] {
        let deal =
            json!({"name": "商机", "customer": customer["id"], "owner": owner, "stage": stage, "amount": amount});
        t.create("opportunity", deal).await;
    }
    // The boss's department is theirs alone: make everyone's deals theirs to read.
    let mut manager = t.get("/api/v1/meta/roles/manager").await.expect(200);
    manager["entities"]["opportunity"]["scope"] = json!("all");
    t.put("/api/v1/meta/roles/manager", manager).await.expect(200);

    // The studio says which roles build reports: the manager's, not the rep's.
    let mut admin = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let manager = admin.get("/studio/roles/manager").await;
    assert!(ok(&manager).contains("id=\"role-build-reports\" checked"), "{}", manager.text);
    let rep_role = admin.get("/studio/roles/sales_rep").await;
    assert!(ok(&rep_role).contains("id=\"role-build-reports\">"), "{}", rep_role.text);

    let mut r = Browser::sign_in(&t, "rep", support::USER_PASSWORD).await;
    let refused = r.get("/reports/build").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a rep's role does not build reports");
    assert!(
        refused.text.contains("您的角色没有这项权限") && !refused.text.contains("needs a role"),
        "said in Chinese, not in the engine's English: {}",
        refused.text
    );
    let reports = r.get("/reports").await;
    assert!(!ok(&reports).contains("/reports/build"));
    assert!(!ok(&r.get("/e/opportunity").await).contains("report-on-list"));

    let mut b = Browser::sign_in(&t, "boss", support::USER_PASSWORD).await;
    let reports = b.get("/reports").await;
    assert!(ok(&reports).contains("href=\"/reports/build\""), "{}", reports.text);
    let start = b.get("/reports/build").await;
    assert!(ok(&start).contains("先选择一个模块"), "{}", start.text);
    let design = "entity=opportunity&group1=stage&measure=count&measure=sum%3Aamount&chart=bar";
    let preview = b.get(&format!("/reports/build?{design}")).await;
    let preview = ok(&preview);
    assert!(preview.contains("<svg") && preview.contains("方案报价"), "{preview}");
    let proposal = between(preview, "<td>方案报价</td>", "</tr>").expect("a row of proposals");
    assert!(proposal.contains(">3</a>") && proposal.contains(">2199.00</a>"), "all three proposals: {proposal}");
    // A list's filters carry over into a report on it.
    let proposals = b.get("/e/opportunity?f_stage=proposal").await;
    let before = ok(&proposals).split("\" id=\"report-on-list\"").next().expect("a link to a report on the list");
    let link = unescaped(before.rsplit("href=\"").next().unwrap_or_default());
    assert!(link.starts_with("/reports/build?entity=opportunity&") && link.contains("f_stage=proposal"), "{link}");
    let on_list = b.get(&link).await;
    assert!(ok(&on_list).contains(">3</a>"), "a count of the three proposals: {}", on_list.text);
    let workbook = b.get(&format!("/reports/build/export.xlsx?{design}")).await;
    assert_eq!(workbook.status, StatusCode::OK, "the design being built exports too");
    assert!(workbook.content_type.as_deref().is_some_and(|c| c.contains("spreadsheetml")));
    let wrong = b.get("/reports/build?entity=opportunity&group1=stage&measure=sum%3Aname").await;
    assert!(ok(&wrong).contains("这个报表的设置无法运行"), "{}", wrong.text);

    // A figure leads to the records behind it, and only those.
    let href = between(&proposal, "<a href=\"", "\"").expect("a link");
    let drilled = b.get(&unescaped(&href)).await;
    let drilled = ok(&drilled);
    assert_eq!(row_ids(drilled).len(), 3, "the three proposals: {drilled}");
    assert!(drilled.contains("只显示报表中这一项背后的记录"), "{drilled}");

    // Saving needs a name; saved, it is shared with reps, who run it in their scope.
    let fields = [("entity", "opportunity"), ("group1", "stage"), ("measure", "sum:amount"), ("chart", "funnel")];
    let unnamed = b.post("/reports/build", &fields).await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unnamed.text.contains("请给报表起个名字"), "{}", unnamed.text);
    let mut named = fields.to_vec();
    named.extend([("label", "我的漏斗"), ("roles", "sales_rep")]);
    let saved = b.post("/reports/build", &named).await;
    let location = saved.location.clone().expect("to the saved report");
    assert!(location.starts_with("/reports/u_"), "{location}");
    let page = b.follow(saved).await;
    let page = ok(&page);
    assert!(page.contains("我的漏斗") && page.contains("id=\"edit-report\"") && page.contains("2199.00"), "{page}");
    let name = location.trim_start_matches("/reports/").to_owned();

    let reports = r.get("/reports").await;
    assert!(ok(&reports).contains("我的漏斗") && reports.text.contains("共享给我"), "{}", reports.text);
    let theirs = r.get(&location).await;
    let theirs = ok(&theirs);
    assert!(theirs.contains("1200.00") && !theirs.contains("2199.00"), "the rep's own proposals: {theirs}");
    assert!(!theirs.contains("id=\"edit-report\""), "only its owner changes it");
    assert_eq!(r.post(&format!("/reports/{name}/delete"), &[]).await.status, StatusCode::FORBIDDEN);
    let export = r.get(&format!("{location}/export.xlsx")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.content_type.as_deref().is_some_and(|c| c.contains("spreadsheetml")));

    // Changing it opens the builder with its design; the change keeps its name.
    let edit = b.get(&format!("/reports/build?report={name}")).await;
    let edit = ok(&edit);
    assert!(edit.contains("value=\"我的漏斗\"") && edit.contains("<option value=\"stage\" selected>"), "{edit}");
    let mut changed = named.clone();
    changed.retain(|(k, _)| *k != "chart");
    changed.extend([("chart", "bar"), ("report", name.as_str())]);
    let resaved = b.post("/reports/build", &changed).await;
    assert_eq!(resaved.location.as_deref(), Some(location.as_str()));
    let deleted = b.post(&format!("/reports/{name}/delete"), &[]).await;
    assert_eq!(deleted.location.as_deref(), Some("/reports"));
    assert_eq!(b.get(&location).await.status, StatusCode::NOT_FOUND);
}

async fn mail_is_set_up_composed_from_a_list_previewed_and_its_statuses_shown(t: TestApp) {
    let smtp = support::services::Smtp::start(&[]);
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    // The studio's mail settings: a bad address is said in Chinese beside the form, nothing saved.
    let page = b.get("/studio/mail").await;
    assert!(ok(&page).contains("id=\"mail-settings\"") && !page.text.contains("id=\"mail-test\""));
    let port = smtp.port.to_string();
    let mut fields = vec![
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("security", "none"),
        ("from_address", "不是地址"),
        ("from_name", "市场部"),
        ("rate_per_second", "100"),
    ];
    let refused = b.post("/studio/mail", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("发件人地址: 不是有效的电子邮件地址"), "{}", refused.text);
    fields[3] = ("from_address", "market@example.cn");
    let saved = b.post("/studio/mail", &fields).await;
    assert_eq!(saved.location.as_deref(), Some("/studio/mail"));
    let tested = b.post("/studio/mail", &[("action", "test"), ("to", "it@example.cn")]).await;
    assert!(ok(&tested).contains("测试邮件已发出，服务器回复：250"), "{}", tested.text);
    assert_eq!(smtp.received().len(), 1);

    let customer = t.create("customer", json!({"name": "广州恒远贸易有限公司"})).await;
    let mut ids = Vec::new();
    for (name, email) in [("陈<script>x</script>", "chen@hengyuan.cn"), ("林静", "lin@hengyuan.cn")] {
        let contact = t.create("contact", json!({"name": name, "customer": customer["id"], "email": email})).await;
        ids.push(contact["id"].as_str().unwrap().to_owned());
    }
    let template = t
        .create(
            "email_template",
            json!({"name": "春季促销", "recipient_entity": "contact", "subject": "{{ recipient.name }}，春季促销",
                "body": "<p>{{ recipient.salutation }}您好，{{ customer.name }}专享。</p>"}),
        )
        .await;

    // From the list: the selection goes to the compose page.
    let list = b.get("/e/contact").await;
    assert!(ok(&list).contains("id=\"bulk-mail\"") && list.text.contains("id=\"mail-list\""));
    let mut chosen = vec![("action", "mail")];
    chosen.extend(ids.iter().map(|id| ("ids", id.as_str())));
    let compose = b.post("/e/contact/bulk", &chosen).await;
    let location = compose.location.clone().expect("to the compose page");
    assert!(location.starts_with("/mail/compose?entity=contact&ids="), "{location}");
    let page = b.follow(compose).await;
    assert!(ok(&page).contains("已选 2 条联系人") && page.text.contains("{{ recipient.salutation }}"), "{}", page.text);
    let ids_joined = ids.join(",");
    let template_id = template["id"].as_str().unwrap();
    let base = [("entity", "contact"), ("ids", ids_joined.as_str()), ("template", template_id)];
    let loaded = b.post("/mail/compose", &[&base[..], &[("action", "load")]].concat()).await;
    assert!(ok(&loaded).contains("value=\"{{ recipient.name }}，春季促销\""), "{}", loaded.text);

    let content = [
        ("subject", "{{ recipient.name }}，春季促销"),
        ("body", "<p>{{ recipient.salutation }}您好，{{ customer.name }}专享。</p>"),
    ];
    let preview = b.post("/mail/compose", &[&base[..], &content[..], &[("action", "preview")]].concat()).await;
    let preview = ok(&preview);
    assert!(preview.contains("id=\"mail-preview-box\"") && preview.contains("sandbox srcdoc="), "{preview}");
    assert!(!preview.contains("<script>x"), "a merged value is never live on the page");
    assert!(preview.contains("id=\"preview-subject\">陈&lt;script&gt;x"), "{preview}");
    assert!(preview.contains("广州恒远贸易有限公司专享"), "the customer is merged: {preview}");

    let broken = b
        .post("/mail/compose", &[&base[..], &[("subject", "x"), ("body", "{% if %}"), ("action", "now")]].concat())
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.text.contains("邮件正文: 模板有误"), "{}", broken.text);

    let sent = b.post("/mail/compose", &[&base[..], &content[..], &[("action", "now")]].concat()).await;
    let mailing = sent.location.clone().expect("to the mailing");
    assert!(mailing.starts_with("/e/mailing/"), "{mailing}");
    let page = b.follow(sent).await;
    assert!(ok(&page).contains("已开始发送，共 2 位收件人"), "{}", page.text);
    t.run_jobs().await;
    let page = b.get(&mailing).await;
    let page = ok(&page);
    assert!(page.contains("data-status=\"sent\">已发送 2") && page.contains("chen@hengyuan.cn"), "{page}");
    assert!(!page.contains("id=\"mailing-send-now\""), "a sent mailing is not sent again");
    let received = smtp.received();
    let to_lin = received.iter().find(|m| m["to"] == json!(["lin@hengyuan.cn"])).expect("lin's mail");
    assert_eq!(to_lin["subject"], "林静，春季促销");

    // The whole list (no filters), or what its filters show, can be mailed too.
    let whole = b.get("/mail/compose?entity=contact").await;
    assert!(ok(&whole).contains("列表中符合筛选条件的全部联系人，共 2 条"), "{}", whole.text);
    let query = support::encode(&format!("f_name={}", support::encode("林")));
    let filtered = b.get(&format!("/mail/compose?entity=contact&query={query}")).await;
    assert!(ok(&filtered).contains("列表中符合筛选条件的全部联系人，共 1 条"), "{}", filtered.text);
    let draft = b
        .post("/mail/compose", &[("entity", "contact"), ("subject", "全体"), ("body", "<p>x</p>"), ("action", "draft")])
        .await;
    let draft = b.follow(draft).await;
    assert!(ok(&draft).contains("已保存为草稿，共 2 位收件人"), "{}", draft.text);

    // The recipient's timeline shows the mail with the subject they got.
    let contact = b.get(&format!("/e/contact/{}", ids[1])).await;
    assert!(ok(&contact).contains("邮件：已发送") && contact.text.contains("林静，春季促销"), "{}", contact.text);
}

async fn address_labels_print_what_the_viewer_may_read(t: TestApp) {
    let (_, rep_token) = t.user("label_rep", &["sales_rep"], None).await;
    let rep_customer = t
        .as_user(
            &rep_token,
            Method::POST,
            "/api/v1/records/customer",
            Some(json!({"name": "杭州西湖<茶>业", "address": "浙江省杭州市西湖区龙井路1号", "postcode": "310013"})),
        )
        .await
        .expect(201);
    let contact = t
        .as_user(
            &rep_token,
            Method::POST,
            "/api/v1/records/contact",
            Some(json!({"name": "周明", "title": "采购经理", "customer": rep_customer["id"]})),
        )
        .await
        .expect(201);
    let other = t.create("customer", json!({"name": "别人的客户", "address": "北京", "postcode": "100000"})).await;

    let mut b = Browser::sign_in(&t, "label_rep", support::USER_PASSWORD).await;
    let list = b.get("/e/customer").await;
    assert!(ok(&list).contains("id=\"bulk-labels\""));
    let ids = [rep_customer["id"].as_str().unwrap(), other["id"].as_str().unwrap()];
    let chosen = b.post("/e/customer/bulk", &[("action", "labels"), ("ids", ids[0]), ("ids", ids[1])]).await;
    let page = b.follow(chosen).await;
    let page = ok(&page);
    assert!(page.contains("310013") && page.contains("浙江省杭州市西湖区龙井路1号"), "{page}");
    assert!(page.contains("杭州西湖&lt;茶&gt;业") && !page.contains("<茶>"), "values are escaped");
    assert!(page.contains("周明 采购经理 收"), "a customer's label goes to its first contact: {page}");
    assert!(!page.contains("别人的客户") && page.contains("共 1 张标签"), "only what the rep may read");

    let by_contact = b.get(&format!("/labels?entity=contact&ids={}&sheet=2x7", contact["id"].as_str().unwrap())).await;
    let by_contact = ok(&by_contact);
    assert!(
        by_contact.contains("repeat(2, 1fr)") && by_contact.contains("310013") && by_contact.contains("周明"),
        "{by_contact}"
    );
    assert_eq!(b.get("/labels?entity=product&ids=").await.status, StatusCode::BAD_REQUEST);
}
