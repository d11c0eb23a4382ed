//! E-mail (M-2) through a real SMTP server process: the administrator's settings and test
//! mail, mailings merged per recipient and sent by the outbox consumer, statuses per
//! recipient, the signed unsubscribe link honoured by later sends, retries when the server
//! is busy, drafts, schedules and cancelling, and the role's limit on recipients.

mod support;

use axum::http::Method;
use chrono::TimeDelta;
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::services::Smtp;

backends!(
    settings_keep_the_password_sealed_and_a_test_mail_arrives,
    a_mailing_is_merged_for_each_recipient_and_honours_unsubscribes,
    a_busy_server_is_tried_again_and_a_bounce_is_recorded,
    opens_and_clicks_are_counted_where_tracked,
    drafts_schedules_and_cancelling,
    the_role_limits_who_sends_to_how_many,
    webinar_invitations_carry_the_meeting,
);

async fn configure(t: &TestApp, smtp: &Smtp) {
    t.put("/api/v1/admin/mail", smtp.settings()).await.expect(200);
}

async fn settings_keep_the_password_sealed_and_a_test_mail_arrives(t: TestApp) {
    assert_eq!(t.get("/api/v1/admin/mail").await.expect(200)["configured"], false);
    let early = t.post("/api/v1/admin/mail/test", json!({"to": "it@example.cn"})).await.expect(409);
    assert_eq!(early["code"], "mail_not_configured");
    let smtp = Smtp::start(&[]);
    // Bad values are refused, each named, and nothing is saved.
    let mut bad = smtp.settings();
    bad["host"] = json!("mail server");
    bad["from_address"] = json!("not an address");
    bad["rate_per_second"] = json!(0);
    let refused = t.put("/api/v1/admin/mail", bad).await.expect(422);
    let fields: Vec<&str> =
        refused["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["host", "from_address", "rate_per_second"], "{refused}");
    assert_eq!(t.get("/api/v1/admin/mail").await.expect(200)["configured"], false);

    let mut settings = smtp.settings();
    settings["username"] = json!("market");
    settings["password"] = json!("s3cret-口令");
    let saved = t.put("/api/v1/admin/mail", settings).await.expect(200);
    assert_eq!(saved["password_set"], true);
    assert!(saved.get("password").is_none() && saved.get("password_sealed").is_none(), "{saved}");
    let stored = crm_store::settings::setting(&t.app.db, "mail").await.unwrap().unwrap();
    assert!(!stored.to_string().contains("s3cret"), "the password is sealed: {stored}");
    assert_eq!(crm::mail::settings::load(&t.app).await.unwrap().unwrap().password.as_deref(), Some("s3cret-口令"));
    // A change without a password keeps the saved one; an empty one clears it.
    let mut change = smtp.settings();
    change["username"] = json!("");
    assert_eq!(t.put("/api/v1/admin/mail", change.clone()).await.expect(200)["password_set"], true);
    change["password"] = json!("");
    assert_eq!(t.put("/api/v1/admin/mail", change).await.expect(200)["password_set"], false);

    let (_, rep) = t.user("mail_rep", &["sales_rep"], None).await;
    t.as_user(&rep, Method::GET, "/api/v1/admin/mail", None).await.expect(403);
    t.as_user(&rep, Method::POST, "/api/v1/admin/mail/test", Some(json!({"to": "a@example.cn"}))).await.expect(403);

    t.post("/api/v1/admin/mail/test", json!({"to": "nobody"})).await.expect(422);
    let sent = t.post("/api/v1/admin/mail/test", json!({"to": "it@example.cn"})).await.expect(200);
    assert!(sent["answer"].as_str().unwrap().starts_with("250"), "{sent}");
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["subject"], "测试邮件 Test mail");
    assert_eq!(received[0]["to"], json!(["it@example.cn"]));
    assert!(received[0]["headers"]["from"].as_str().unwrap().contains("立友信市场部"));
    assert!(received[0]["body"].as_str().unwrap().contains("邮件服务器设置可用"));

    // A server that cannot be reached is said so, with a gateway error.
    drop(smtp);
    let down = t.post("/api/v1/admin/mail/test", json!({"to": "it@example.cn"})).await.expect(502);
    assert_eq!(down["code"], "mail_refused");
}

/// The deliveries of a mailing, by recipient name.
async fn statuses(t: &TestApp, mailing: &str) -> Value {
    t.get(&format!("/api/v1/mailings/{mailing}/deliveries?limit=500")).await.expect(200)
}

async fn a_mailing_is_merged_for_each_recipient_and_honours_unsubscribes(t: TestApp) {
    let smtp = Smtp::start(&[]);
    configure(&t, &smtp).await;
    let (rep_id, rep) = t.user("rep_wang", &["sales_rep"], None).await;
    let version = t.get(&format!("/api/v1/records/user/{rep_id}")).await.expect(200)["version"].clone();
    let change = json!({"name": "王销售", "mobile": "13800001111", "version": version});
    t.patch(&format!("/api/v1/records/user/{rep_id}"), change).await.expect(200);
    let rep_create = |entity: &'static str, body: Value| {
        let rep = rep.clone();
        let t = &t;
        async move { t.as_user(&rep, Method::POST, &format!("/api/v1/records/{entity}"), Some(body)).await.expect(201) }
    };
    let customer = rep_create("customer", json!({"name": "北京立友信科技有限公司"})).await;
    let zhang = rep_create(
        "contact",
        json!({"name": "张伟", "gender": "male", "customer": customer["id"], "email": "zhang@liyouxin.cn"}),
    )
    .await;
    let li = rep_create(
        "contact",
        json!({"name": "李娜<b>", "gender": "female", "customer": customer["id"], "email": "li@liyouxin.cn"}),
    )
    .await;
    let quiet = rep_create(
        "contact",
        json!({"name": "赵敏", "customer": customer["id"], "email": "zhao@liyouxin.cn", "email_opt_out": true}),
    )
    .await;
    let no_address = rep_create("contact", json!({"name": "钱多", "customer": customer["id"]})).await;
    // Someone else's contact: the rep cannot read it, so cannot mail it.
    let theirs = t.create("customer", json!({"name": "深圳他方有限公司"})).await;
    let other = t.create("contact", json!({"name": "孙外", "customer": theirs["id"], "email": "sun@other.cn"})).await;

    let template = t
        .create(
            "email_template",
            json!({
                "name": "新品发布会邀请",
                "recipient_entity": "contact",
                "subject": "{{ recipient.salutation }}，诚邀{{ customer.name }}参加新品发布会",
                "body": "<p>{{ recipient.salutation }}您好：</p><p>{{ recipient.name }}</p><p>联系人：{{ owner.name }} {{ owner.mobile }}</p><p><a href=\"{{ unsubscribe_url }}\">退订</a></p>",
            }),
        )
        .await;
    let ids = [&zhang, &li, &quiet, &no_address, &other].map(|r| r["id"].clone());
    let body = json!({"recipients": {"entity": "contact", "ids": ids}, "template": template["id"], "send": "now"});
    let composed = t.as_user(&rep, Method::POST, "/api/v1/mailings", Some(body)).await.expect(201);
    assert_eq!(composed["recipients"], 4, "only the contacts the rep may read: {composed}");
    assert_eq!(composed["mailing"]["status"], "queued");
    let mailing = composed["mailing"]["id"].as_str().unwrap().to_owned();

    t.run_jobs().await;
    let received = smtp.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let to_zhang = received.iter().find(|m| m["to"] == json!(["zhang@liyouxin.cn"])).expect("zhang's mail");
    assert_eq!(to_zhang["subject"], "张先生，诚邀北京立友信科技有限公司参加新品发布会");
    let body = to_zhang["body"].as_str().unwrap();
    assert!(body.contains("<p>张先生您好：</p>") && body.contains("联系人：王销售 13800001111"), "{body}");
    let to_li = received.iter().find(|m| m["to"] == json!(["li@liyouxin.cn"])).expect("li's mail");
    assert!(to_li["body"].as_str().unwrap().contains("<p>李娜&lt;b&gt;</p>"), "merged values are escaped");
    assert!(to_li["subject"].as_str().unwrap().starts_with("李女士"));
    let unsubscribe = to_zhang["headers"]["list-unsubscribe"].as_str().unwrap();
    let link = unsubscribe.trim_matches(|c| c == '<' || c == '>');
    // Escaped as every merged value is (`/` as `&#x2f;`), which a mail program reads back.
    assert!(body.replace("&#x2f;", "/").contains(&format!("href=\"{link}\"")), "the link is in the body too: {body}");
    assert_eq!(to_zhang["headers"]["list-unsubscribe-post"], "List-Unsubscribe=One-Click");
    assert_ne!(to_zhang["message_id"], to_li["message_id"]);

    let deliveries = statuses(&t, &mailing).await;
    assert_eq!(deliveries["counts"], json!({"sent": 2, "skipped": 2}), "{deliveries}");
    let answer_of = |id: &Value| {
        let row = deliveries["data"].as_array().unwrap().iter().find(|d| d["record_id"] == *id).expect("a row");
        (row["status"].as_str().unwrap().to_owned(), row["answer"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(answer_of(&quiet["id"]), ("skipped".into(), "unsubscribed".into()));
    assert_eq!(answer_of(&no_address["id"]), ("skipped".into(), "no e-mail address".into()));
    assert!(answer_of(&zhang["id"]).1.starts_with("250"));
    let sent = t.get(&format!("/api/v1/records/mailing/{mailing}")).await.expect(200);
    assert_eq!(sent["status"], "sent");
    assert!(sent["sent_at"].is_string());

    // The link opens a page without a login; a forged one is not found.
    let path = link.split_once("://").unwrap().1.split_once('/').unwrap().1;
    let path = format!("/{path}");
    let page = t.page(Method::GET, &path, "", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("确认退订") || page.text.contains("Unsubscribe"), "{}", page.text);
    let forged = format!("{}x", &path[..path.len() - 1]);
    assert_eq!(t.page(Method::POST, &forged, "", Some(&[])).await.status, 404);
    let done = t.page(Method::POST, &path, "", Some(&[])).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let marked = t.get(&format!("/api/v1/records/contact/{}", zhang["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(marked["email_opt_out"], true);

    // A later mailing skips them, even once the record's mark is taken off: the address is
    // on the suppression list.
    let change = json!({"email_opt_out": false, "version": marked["version"]});
    t.patch(&format!("/api/v1/records/contact/{}", zhang["id"].as_str().unwrap()), change).await.expect(200);
    let again = json!({"recipients": {"entity": "contact", "ids": [zhang["id"], li["id"]]}, "subject": "第二封 {{ recipient.name }}", "body": "<p>hi</p>", "send": "now"});
    let second = t.as_user(&rep, Method::POST, "/api/v1/mailings", Some(again)).await.expect(201);
    t.run_jobs().await;
    let received = smtp.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2]["to"], json!(["li@liyouxin.cn"]));
    let second = statuses(&t, second["mailing"]["id"].as_str().unwrap()).await;
    assert_eq!(second["counts"], json!({"sent": 1, "skipped": 1}), "{second}");
}

async fn a_busy_server_is_tried_again_and_a_bounce_is_recorded(t: TestApp) {
    let smtp = Smtp::start(&["--defer", "2", "--reject", "gone@example.cn"]);
    configure(&t, &smtp).await;
    let runner = crm::jobs::Runner::new(t.app.clone(), crm::jobs::standard());
    // The consumers start reading here: what is written next is news to them.
    runner.run_once(t.app.now()).await.unwrap();
    let a = t.create("lead", json!({"name": "周一", "email": "zhou@example.cn"})).await;
    let b = t.create("lead", json!({"name": "吴二", "email": "gone@example.cn"})).await;
    let body = json!({"recipients": {"entity": "lead", "filter": {"field": "name", "op": "in", "value": ["周一", "吴二"]}}, "subject": "试用邀请", "body": "<p>{{ lead.name }}</p>", "send": "now"});
    let mailing = t.post("/api/v1/mailings", body).await.expect(201)["mailing"]["id"].as_str().unwrap().to_owned();
    assert_eq!(statuses(&t, &mailing).await["counts"], json!({"queued": 2}));

    let mut at = t.app.now();
    // The server answers 451 twice: each time the mail waits, and the outbox tries again later.
    // On PostgreSQL a transaction running elsewhere on the server (another test's database)
    // can hold the outbox's horizon for a moment: a round that finds nothing waits a little.
    for _ in 0..200 {
        at += TimeDelta::minutes(10);
        if runner.run_once(at).await.unwrap() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        if statuses(&t, &mailing).await["counts"].get("queued").is_none() {
            break;
        }
    }
    let deliveries = statuses(&t, &mailing).await;
    assert_eq!(deliveries["counts"], json!({"sent": 1, "bounced": 1}), "the unknown mailbox bounced: {deliveries}");
    let rows = deliveries["data"].as_array().unwrap();
    let row = |id: &Value| rows.iter().find(|d| d["record_id"] == *id).unwrap();
    assert_eq!(row(&a["id"])["status"], "sent");
    assert!(row(&a["id"])["attempts"].as_i64().unwrap() >= 1);
    assert_eq!(row(&b["id"])["status"], "bounced");
    assert!(row(&b["id"])["answer"].as_str().unwrap().contains("550"), "{}", row(&b["id"]));
    assert_eq!(smtp.received().len(), 1, "one mail accepted, none twice");
}

/// Tracking on, a mail carries a pixel and its links go through the server, each signed for
/// the recipient and its destination: the first open and click are recorded and counted, the
/// click goes on to where the mail said, a forged destination goes nowhere, and the
/// unsubscribe link stays direct. Tracking off, a mail has none of it.
async fn opens_and_clicks_are_counted_where_tracked(t: TestApp) {
    let smtp = Smtp::start(&[]);
    let mut settings = smtp.settings();
    settings["tracking"] = json!(true);
    t.put("/api/v1/admin/mail", settings).await.expect(200);
    let lead = t.create("lead", json!({"name": "郑八", "email": "zheng@example.cn"})).await;
    let body = "<p>{{ lead.name }}您好，<a href=\"https://www.example.cn/offer?a=1&b=2\">年终优惠</a> <a href=\"{{ unsubscribe_url }}\">退订</a></p>";
    let send = json!({"recipients": {"entity": "lead", "ids": [lead["id"]]}, "subject": "年终优惠", "body": body, "send": "now"});
    let mailing =
        t.post("/api/v1/mailings", send.clone()).await.expect(201)["mailing"]["id"].as_str().unwrap().to_owned();
    t.run_jobs().await;
    let html = smtp.received()[0]["body"].as_str().unwrap().to_owned();
    let path = |marker: &str| {
        let at = html.find(marker).unwrap_or_else(|| panic!("{marker} in {html}"));
        html[at..].split('"').next().unwrap().replace("&amp;", "&")
    };
    let (pixel, click) = (path("/t/o/"), path("/t/c/"));
    assert!(!html.contains("href=\"https://www.example.cn/offer"), "the link goes through the server: {html}");
    assert!(html.replace("&#x2f;", "/").contains("href=\"http://"), "the unsubscribe link stays direct: {html}");
    assert_eq!(statuses(&t, &mailing).await["opened"], 0);

    let image = t.page(Method::GET, &pixel, "", None).await;
    assert_eq!((image.status.as_u16(), image.content_type.as_deref()), (200, Some("image/gif")));
    let counted = statuses(&t, &mailing).await;
    assert_eq!((counted["opened"].as_i64(), counted["clicked"].as_i64()), (Some(1), Some(0)), "{counted}");
    let opened_at = counted["data"][0]["opened_at"].clone();
    assert!(opened_at.is_string());

    let followed = t.page(Method::GET, &click, "", None).await;
    assert_eq!(followed.status.as_u16(), 303);
    assert_eq!(followed.location.as_deref(), Some("https://www.example.cn/offer?a=1&b=2"));
    let forged = click.replace("offer", "phish");
    assert_eq!(t.page(Method::GET, &forged, "", None).await.status.as_u16(), 404, "no open redirect");
    t.page(Method::GET, &pixel, "", None).await;
    let counted = statuses(&t, &mailing).await;
    assert_eq!((counted["opened"].as_i64(), counted["clicked"].as_i64()), (Some(1), Some(1)));
    assert_eq!(counted["data"][0]["opened_at"], opened_at, "the first open is kept");
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let timeline = b.page(&format!("/e/lead/{}", lead["id"].as_str().unwrap())).await;
    assert!(timeline.contains("已发送 · 已打开 · 已点击"), "{timeline}");

    // Tracking off: the mail is as written.
    let mut settings = smtp.settings();
    settings["tracking"] = json!(false);
    t.put("/api/v1/admin/mail", settings).await.expect(200);
    let other = t.create("lead", json!({"name": "钱九", "email": "qian@example.cn"})).await;
    let mut again = send;
    again["recipients"]["ids"] = json!([other["id"]]);
    t.post("/api/v1/mailings", again).await.expect(201);
    t.run_jobs().await;
    let plain = smtp.received()[1]["body"].as_str().unwrap().to_owned();
    assert!(!plain.contains("/t/o/") && !plain.contains("/t/c/"), "{plain}");
}

async fn drafts_schedules_and_cancelling(t: TestApp) {
    let smtp = Smtp::start(&[]);
    configure(&t, &smtp).await;
    let c = t.create("customer", json!({"name": "上海华信贸易有限公司", "email": "info@huaxin.cn"})).await;
    let body = json!({"recipients": {"entity": "customer", "ids": [c["id"]]}, "subject": "{{ customer.name }} 年终回馈", "body": "<p>x</p>"});
    let draft = t.post("/api/v1/mailings", body.clone()).await.expect(201);
    assert_eq!(draft["mailing"]["status"], "draft");
    let id = draft["mailing"]["id"].as_str().unwrap().to_owned();
    t.run_jobs().await;
    assert!(smtp.received().is_empty(), "a draft is not sent");
    assert_eq!(statuses(&t, &id).await["counts"], json!({"draft": 1}));

    // Later: not before its time, then by the schedule.
    let past = json!({"send": "later", "scheduled_at": t.app.now() - TimeDelta::hours(1)});
    t.post(&format!("/api/v1/mailings/{id}/send"), past).await.expect(422);
    let at = t.app.now() + TimeDelta::hours(2);
    let later =
        t.post(&format!("/api/v1/mailings/{id}/send"), json!({"send": "later", "scheduled_at": at})).await.expect(200);
    assert_eq!(later["mailing"]["status"], "scheduled");
    assert_eq!(crm::mail::compose::release_due(&t.app, t.app.now()).await.unwrap(), 0);
    t.run_jobs().await;
    assert!(smtp.received().is_empty());
    assert_eq!(crm::mail::compose::release_due(&t.app, at + TimeDelta::minutes(1)).await.unwrap(), 1);
    t.run_jobs().await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(smtp.received()[0]["subject"], "上海华信贸易有限公司 年终回馈");
    let sent = t.post(&format!("/api/v1/mailings/{id}/send"), json!({"send": "now"})).await.expect(409);
    assert_eq!(sent["code"], "not_a_draft");

    // Cancelled: nothing goes, and it cannot be sent after.
    let other = t.post("/api/v1/mailings", body).await.expect(201)["mailing"]["id"].as_str().unwrap().to_owned();
    let cancelled = t.post(&format!("/api/v1/mailings/{other}/cancel"), json!({})).await.expect(200);
    assert_eq!(cancelled["mailing"]["status"], "cancelled");
    t.post(&format!("/api/v1/mailings/{other}/send"), json!({"send": "now"})).await.expect(409);
    t.run_jobs().await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(statuses(&t, &other).await["counts"], json!({"skipped": 1}));

    // Bad input says what is wrong and writes nothing.
    let before = t.list("mailing", None, "").await.expect(200)["data"].as_array().unwrap().len();
    let no_body = json!({"recipients": {"entity": "customer", "ids": [c["id"]]}, "subject": "x"});
    t.post("/api/v1/mailings", no_body).await.expect(422);
    let broken = json!({"recipients": {"entity": "customer", "ids": [c["id"]]}, "subject": "x", "body": "{% if %}"});
    let refused = t.post("/api/v1/mailings", broken).await.expect(422);
    assert_eq!(refused["errors"][0]["field"], "body");
    assert!(refused["errors"][0]["message"].as_str().unwrap().starts_with("line 1"), "{refused}");
    let to_products = json!({"recipients": {"entity": "product", "ids": []}, "subject": "x", "body": "y"});
    assert!([403, 422].contains(&t.post("/api/v1/mailings", to_products).await.status.as_u16()));
    assert_eq!(t.list("mailing", None, "").await.expect(200)["data"].as_array().unwrap().len(), before);
}

async fn the_role_limits_who_sends_to_how_many(t: TestApp) {
    let mut role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["send_limit"] = json!(2);
    t.put("/api/v1/meta/roles/sales_rep", role.clone()).await.expect(200);
    let (_, rep) = t.user("rep_limit", &["sales_rep"], None).await;
    let mut ids = Vec::new();
    for name in ["甲", "乙", "丙"] {
        let body = json!({"name": name, "email": format!("{}@example.cn", ids.len())});
        ids.push(t.as_user(&rep, Method::POST, "/api/v1/records/lead", Some(body)).await.expect(201)["id"].clone());
    }
    let body = |ids: &[Value]| json!({"recipients": {"entity": "lead", "ids": ids}, "subject": "s", "body": "b"});
    let refused = t.as_user(&rep, Method::POST, "/api/v1/mailings", Some(body(&ids))).await.expect(403);
    assert_eq!(refused["code"], "send_limit");
    t.as_user(&rep, Method::POST, "/api/v1/mailings", Some(body(&ids[..2]))).await.expect(201);

    // Without `send` on the entity, no mailing at all.
    if let Some(grant) = role["entities"]["lead"]["actions"].as_array_mut() {
        grant.retain(|a| a != "send");
    }
    t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    t.as_user(&rep, Method::POST, "/api/v1/mailings", Some(body(&ids[..1]))).await.expect(403);
}

/// Webinars (M-6): the meeting's platform (a record with its join link pattern), number and
/// password on the campaign, its join link made from the platform's pattern; invitations
/// merge them; registrations are members. The
/// campaign's survey (M-7) is each recipient's own link, so their answers are theirs.
async fn webinar_invitations_carry_the_meeting(t: TestApp) {
    let smtp = Smtp::start(&[]);
    configure(&t, &smtp).await;
    let zoom = t.create("meeting_platform", json!({"name": "Zoom", "url_pattern": "https://zoom.us/j/{id}"})).await;
    let survey = t.create("survey", json!({"name": "会后反馈", "status": "open"})).await;
    let question =
        t.create("survey_question", json!({"survey": survey["id"], "name": "会议评分", "kind": "rating"})).await;
    let campaign = t
        .create(
            "campaign",
            json!({"name": "新品线上发布会", "type": "webinar", "meeting_provider": zoom["id"],
                "meeting_id": "123 456 789", "meeting_password": "8888", "meeting_at": "2026-12-10T06:00:00Z",
                "survey": survey["id"]}),
        )
        .await;
    assert_eq!(campaign["meeting_url"], "https://zoom.us/j/123456789", "made from the platform's pattern");
    let customer = t.create("customer", json!({"name": "南京钟山软件"})).await;
    let contact =
        t.create("contact", json!({"name": "孔亮", "customer": customer["id"], "email": "kong@zhongshan.cn"})).await;
    let member = json!({"campaign": campaign["id"], "contact": contact["id"], "status": "registered"});
    assert_eq!(t.create("campaign_member", member).await["status"], "registered");

    let body = "<p>{{ recipient.name }}您好，会议号 {{ campaign.meeting_id }}，密码 {{ campaign.meeting_password }}，入会链接 {{ campaign.meeting_url }}</p><p>反馈 {{ survey_url }}</p>";
    let invite = json!({"recipients": {"entity": "contact", "ids": [contact["id"]]}, "campaign": campaign["id"],
        "subject": "{{ campaign.name }} 邀请", "body": body, "send": "now"});
    t.post("/api/v1/mailings", invite).await.expect(201);
    t.run_jobs().await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["subject"], "新品线上发布会 邀请");
    let html = received[0]["body"].as_str().unwrap().replace("&#x2f;", "/");
    assert!(html.contains("会议号 123 456 789，密码 8888，入会链接 https://zoom.us/j/123456789"), "{html}");
    let link = support::browser::between(&html, "反馈 ", "</p>").unwrap();
    let path = format!("/q/{}", link.split("/q/").nth(1).expect("the survey's address"));
    let rating = format!("q.{}", question["id"].as_str().unwrap());
    let answered = t.page(Method::POST, &path, "", Some(&[(rating.as_str(), "4")])).await;
    assert_eq!(answered.status.as_u16(), 200, "{}", answered.text);
    let filter = json!({"field": "contact", "op": "eq", "value": contact["id"]});
    let theirs = t.list("survey_response", Some(filter), "").await.expect(200);
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1, "the answers are the recipient's: {theirs}");
}

/// `kill -9` of the server in the middle of a mailing of 10,000: after a restart every
/// recipient has exactly one mail (by its Message-ID, the delivery's key), none is lost, and
/// the mails a second the server took are reported.
#[test]
fn a_mailing_survives_kill_9_and_every_recipient_gets_one_mail() {
    use std::collections::{HashMap, HashSet};
    use std::time::{Duration, Instant};
    use support::binary::{free_port, http, start_with};

    const RECIPIENTS: usize = 10_000;
    let smtp = Smtp::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let vars = [("CRM_ADMIN_PASSWORD", support::ADMIN_PASSWORD)];
    let port = free_port();
    let (server, _) = start_with(data.path(), port, &vars);
    let call = |port: u16, method: &str, path: &str, body: &Value, token: Option<&str>| {
        let (status, text) = http(port, method, path, &body.to_string(), token);
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
    };
    let login = json!({"login": "admin", "password": support::ADMIN_PASSWORD});
    let (_, token) = call(port, "POST", "/api/v1/auth/token", &login, None);
    let token = token["token"].as_str().unwrap().to_owned();
    let token = Some(token.as_str());
    assert_eq!(call(port, "PUT", "/api/v1/admin/mail", &smtp.settings(), token).0, 200);
    for chunk in 0..RECIPIENTS / 5000 {
        let records: Vec<Value> = (0..5000)
            .map(|i| {
                let n = chunk * 5000 + i;
                json!({"name": format!("线索{n:05}"), "email": format!("lead{n:05}@example.cn")})
            })
            .collect();
        let (status, body) =
            call(port, "POST", "/api/v1/records/lead/bulk/create", &json!({"records": records}), token);
        assert_eq!(status, 201, "{body}");
    }
    let compose = json!({
        "recipients": {"entity": "lead", "filter": {"field": "name", "op": "starts_with", "value": "线索"}},
        "subject": "{{ lead.name }}：年终回馈",
        "body": "<p>{{ recipient.salutation }}您好</p>",
        "send": "now",
    });
    let (status, composed) = call(port, "POST", "/api/v1/mailings", &compose, token);
    assert_eq!(status, 201, "{composed}");
    assert_eq!(composed["recipients"], RECIPIENTS);
    let mailing = composed["mailing"]["id"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    while smtp.received().len() < RECIPIENTS / 3 {
        assert!(Instant::now() < deadline, "the sending did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before_kill = smtp.received().len();
    let rate = before_kill as f64 / started.elapsed().as_secs_f64();
    server.kill();
    eprintln!("mails a second into the SMTP server: {rate:.0} ({before_kill} before kill -9)");

    let port = free_port();
    let (server, _) = start_with(data.path(), port, &vars);
    loop {
        let (_, record) = call(port, "GET", &format!("/api/v1/records/mailing/{mailing}"), &Value::Null, token);
        if record["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "the mailing did not finish after the restart: {record}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, deliveries) = call(port, "GET", &format!("/api/v1/mailings/{mailing}/deliveries"), &Value::Null, token);
    assert_eq!(deliveries["counts"], json!({"sent": RECIPIENTS}), "{}", deliveries["counts"]);
    drop(server);

    let received = smtp.received();
    let mut ids_by_address: HashMap<String, HashSet<String>> = HashMap::new();
    for mail in &received {
        let to = mail["to"][0].as_str().unwrap().to_owned();
        ids_by_address.entry(to).or_default().insert(mail["message_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids_by_address.len(), RECIPIENTS, "every recipient got their mail");
    assert!(ids_by_address.values().all(|ids| ids.len() == 1), "one message per recipient");
    let again = received.len() - RECIPIENTS;
    eprintln!("mails handed over again after kill -9, with the same Message-ID: {again}");
    assert!(again <= 1, "only the mail in flight at the kill may go twice, got {again}");
}
