//! Web-to-lead forms (M-5): a form is metadata the studio designs; its HTML posts to a public
//! address with the form's key, and each submission becomes a lead through the save pipeline
//! (source web_form, the form's campaign and owner). Hostile submissions — a wrong key, a
//! filled honeypot, fields the form does not ask, bad values, oversized bodies, floods — are
//! refused with a clear answer and write nothing; what is written shows escaped.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::browser::{Browser, between, unescaped};
use support::{PageReply, TestApp};

backends!(a_designed_form_turns_submissions_into_leads_and_refuses_hostile_ones);

/// A visitor's browser sends a form.
async fn post(t: &TestApp, path: &str, fields: &[(&str, &str)]) -> PageReply {
    t.page(Method::POST, path, "", Some(fields)).await
}

async fn leads(t: &TestApp) -> Vec<Value> {
    let filter = json!({"field": "source", "op": "eq", "value": "web_form"});
    t.list("lead", Some(filter), "sort=created_at").await.expect(200)["data"].as_array().unwrap().clone()
}

async fn a_designed_form_turns_submissions_into_leads_and_refuses_hostile_ones(t: TestApp) {
    let campaign = t.create("campaign", json!({"name": "官网试用申请", "type": "website"})).await;
    let (rep_id, _) = t.user("web_rep", &["sales_rep"], None).await;
    let form = json!({
        "name": "trial",
        "label": {"zh-CN": "免费试用申请", "en": "Free trial"},
        "fields": [
            {"field": "name", "required": true, "label": {"zh-CN": "您的姓名", "en": "Your name"}},
            {"field": "company", "required": true},
            {"field": "email"},
            {"field": "industry"},
            {"field": "description"},
        ],
        "campaign": campaign["id"],
        "owner": "web_rep",
        "thanks": {"zh-CN": "感谢申请，我们会在一个工作日内联系您。", "en": "Thanks: we will call within a working day."},
    });
    // A form must ask for what a lead needs, and only for fields a visitor fills in.
    let mut bad = form.clone();
    bad["fields"] = json!([{"field": "company"}, {"field": "owner"}, {"field": "nothing"}]);
    let refused = t.put("/api/v1/meta/web_forms/trial", bad).await.expect(422);
    let said = refused.to_string();
    assert!(said.contains("a lead needs `name`") && said.contains("no field `nothing`"), "{said}");
    t.put("/api/v1/meta/web_forms/trial", form).await.expect(200);

    // The studio gives the HTML, with the public address and its key.
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.get("/studio/forms/trial").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let snippet = between(&page.text, "id=\"web-form-snippet\" class=\"code\">", "</textarea>").unwrap();
    let snippet = unescaped(&unescaped(&snippet));
    assert!(
        snippet.contains("您的姓名") && snippet.contains("name=\"_hp\"") && !snippet.contains("<script"),
        "{snippet}"
    );
    let action = between(&snippet, "action=\"", "\"").unwrap();
    let path = format!("/f/{}", action.split("/f/").nth(1).unwrap());

    let hostile = "<img src=x onerror=alert(1)>王先生";
    let ok = post(
        &t,
        &path,
        &[
            ("name", hostile),
            ("company", "杭州云栖科技"),
            ("email", "wang@yunqi.cn"),
            ("industry", "services"),
            ("_hp", ""),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.text.contains("感谢申请"), "{}", ok.text);
    let created = leads(&t).await;
    assert_eq!(created.len(), 1);
    let lead = &created[0];
    assert_eq!(lead["name"], hostile, "kept as the visitor typed it");
    assert_eq!(lead["campaign"], campaign["id"]);
    assert_eq!(lead["web_form"], "trial");
    assert_eq!(lead["owner"], rep_id.as_str());
    let members = t
        .list("campaign_member", Some(json!({"field": "campaign", "op": "eq", "value": campaign["id"]})), "")
        .await
        .expect(200);
    let members = members["data"].as_array().unwrap();
    assert_eq!(members.len(), 1, "the sign-up is a member of the form's campaign");
    assert_eq!(members[0]["lead"], lead["id"]);
    assert_eq!(members[0]["status"], "registered");
    let shown = b.get(&format!("/e/lead/{}", lead["id"].as_str().unwrap())).await;
    assert!(!shown.text.contains("<img src=x") && shown.text.contains("&lt;img"), "escaped on a signed-in page");

    // Refused, and nothing written: a wrong key, a robot, a field not asked, a bad value,
    // a missing required one, too large a body.
    let wrong = t.page(Method::POST, "/f/trial/not-the-key", "", Some(&[("name", "x")])).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert_eq!(
        post(&t, &path, &[("name", "机器人"), ("company", "x"), ("_hp", "http://spam")]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&t, &path, &[("name", "甲"), ("company", "x"), ("owner", "someone")]).await.status,
        StatusCode::BAD_REQUEST
    );
    let invalid = post(&t, &path, &[("name", "乙"), ("company", "x"), ("email", "not-an-address")]).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.text.contains("不是有效的电子邮件地址") || invalid.text.contains("email"), "{}", invalid.text);
    let missing = post(&t, &path, &[("company", "x")]).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.text.contains("您的姓名"), "the form's own question names the field: {}", missing.text);
    let large = "很".repeat(10_000);
    assert_eq!(post(&t, &path, &[("name", &large), ("company", "x")]).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(leads(&t).await.len(), 1, "none of those wrote a lead");

    // A flood from one address is turned away.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(post(&t, &path, &[("name", &format!("访客{i}")), ("company", "x")]).await.status);
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let taken = leads(&t).await.len();
    assert!(taken < 12, "the flood was cut short: {taken}");

    // Switched off, the form takes nothing; a redirect sends the visitor on.
    let mut changed = t.get("/api/v1/meta/web_forms/trial").await.expect(200);
    changed["enabled"] = json!(false);
    t.put("/api/v1/meta/web_forms/trial", changed.clone()).await.expect(200);
    assert_eq!(post(&t, &path, &[("name", "丙"), ("company", "x")]).await.status, StatusCode::NOT_FOUND);
    changed["enabled"] = json!(true);
    changed["name"] = json!("contact");
    changed["redirect"] = json!("https://www.example.cn/thanks");
    t.put("/api/v1/meta/web_forms/contact", changed).await.expect(200);
    let key = crm::forms::key(&t.app, "contact");
    let sent = t.page(Method::POST, &format!("/f/contact/{key}"), "", Some(&[("name", "丁"), ("company", "x")])).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(sent.location.as_deref(), Some("https://www.example.cn/thanks"));
}
