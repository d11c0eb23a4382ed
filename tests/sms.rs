//! SMS (M-4) through a stand-in for Alibaba Cloud's API that checks each request's signature
//! with its own implementation of the service's signing: the provider settings with the secret
//! sealed and a test text; a mailing of texts merged per recipient from an SMS template, sent
//! by the outbox consumer, with each recipient's status and the parts a long text is billed as.

mod support;

use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::services::SmsStandIn;

backends!(
    settings_and_a_test_text_are_signed_as_the_provider_checks,
    a_mailing_of_texts_reaches_each_mobile,
    the_studio_sets_up_the_provider_and_sends_a_test_text,
);

async fn settings_and_a_test_text_are_signed_as_the_provider_checks(t: TestApp) {
    let stand_in = SmsStandIn::start(&[]);
    let early = t.post("/api/v1/admin/sms/test", json!({"to": "13800138000", "template": "SMS_1"})).await.expect(409);
    assert_eq!(early["code"], "sms_not_configured");
    let mut bad = stand_in.settings(SmsStandIn::SECRET);
    bad["sign_name"] = json!("");
    bad["endpoint"] = json!("ftp://x");
    let refused = t.put("/api/v1/admin/sms", bad).await.expect(422);
    let fields: Vec<&str> =
        refused["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["endpoint", "sign_name"]);

    let saved = t.put("/api/v1/admin/sms", stand_in.settings(SmsStandIn::SECRET)).await.expect(200);
    assert_eq!(saved["access_key_secret_set"], true);
    let stored = crm_store::settings::setting(&t.app.db, "sms").await.unwrap().unwrap();
    assert!(!stored.to_string().contains("test-secret"), "the secret is sealed: {stored}");

    let text = json!({"to": "+86 138-0013-8000", "template": "SMS_154950909", "params": {"code": "8时半"}});
    let sent = t.post("/api/v1/admin/sms/test", text.clone()).await.expect(200);
    assert!(sent["answer"].as_str().unwrap().starts_with("OK"), "{sent}");
    let received = stand_in.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["to"], "13800138000");
    assert_eq!(received[0]["sign"], "立友信");
    assert_eq!(received[0]["params"], json!({"code": "8时半"}));

    // With the wrong secret the provider refuses the signature, and says so.
    let mut wrong = stand_in.settings("not-the-secret");
    wrong["rate_per_second"] = json!(5);
    t.put("/api/v1/admin/sms", wrong).await.expect(200);
    let refused = t.post("/api/v1/admin/sms/test", text).await.expect(502);
    assert!(refused["detail"].as_str().unwrap().contains("SignatureDoesNotMatch"), "{refused}");
    t.post("/api/v1/admin/sms/test", json!({"to": "010-12345678", "template": "SMS_1"})).await.expect(422);
    assert_eq!(stand_in.received().len(), 1);
}

async fn a_mailing_of_texts_reaches_each_mobile(t: TestApp) {
    let stand_in = SmsStandIn::start(&["--reject", "13900000000"]);
    t.put("/api/v1/admin/sms", stand_in.settings(SmsStandIn::SECRET)).await.expect(200);
    let customer = t.create("customer", json!({"name": "武汉光谷电子"})).await;
    let mut ids = Vec::new();
    for (name, gender, mobile) in
        [("胡明", "male", Some("13800138001")), ("田静", "female", Some("13900000000")), ("高远", "male", None)]
    {
        let mut body = json!({"name": name, "gender": gender, "customer": customer["id"]});
        if let Some(mobile) = mobile {
            body["mobile"] = json!(mobile);
        }
        ids.push(t.create("contact", body).await["id"].clone());
    }
    let long = "尊敬的${name}：感谢您一直以来对我们的支持，我们的春季新品发布会将于下月初在武汉国际会展中心举行，届时将有多款新品首发，诚邀贵公司${company}莅临指导，详情请致电您的客户经理。";
    let template = t
        .create(
            "sms_template",
            json!({"name": "新品发布会", "provider_template": "SMS_200001", "content": long,
                "params": "name={{ recipient.salutation }}\ncompany={{ customer.name }}"}),
        )
        .await;
    // Texts go to records with a mobile number field: customers have none.
    let to_customers = json!({"recipients": {"entity": "customer", "ids": [customer["id"]]}, "sms_template": template["id"], "send": "now"});
    t.post("/api/v1/mailings", to_customers).await.expect(422);
    let body = json!({"recipients": {"entity": "contact", "ids": ids}, "sms_template": template["id"], "send": "now"});
    let composed = t.post("/api/v1/mailings", body).await.expect(201);
    assert_eq!(composed["mailing"]["channel"], "sms");
    let mailing = composed["mailing"]["id"].as_str().unwrap().to_owned();
    t.run_jobs().await;

    let received = stand_in.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["template"], "SMS_200001");
    assert_eq!(received[0]["params"], json!({"name": "胡先生", "company": "武汉光谷电子"}));
    let deliveries = t.get(&format!("/api/v1/mailings/{mailing}/deliveries")).await.expect(200);
    assert_eq!(deliveries["counts"], json!({"sent": 1, "failed": 1, "skipped": 1}), "{deliveries}");
    let row =
        |id: &Value| deliveries["data"].as_array().unwrap().iter().find(|d| d["record_id"] == *id).unwrap().clone();
    let sent = row(&ids[0]);
    let read = sent["subject"].as_str().unwrap();
    assert!(read.starts_with("尊敬的胡先生：") && read.contains("诚邀贵公司武汉光谷电子莅临"), "{read}");
    assert!(read.chars().count() > 70);
    assert!(sent["answer"].as_str().unwrap().ends_with("· 2"), "a long text is billed as two: {sent}");
    assert!(row(&ids[1])["answer"].as_str().unwrap().contains("isv.MOBILE_NUMBER_ILLEGAL"));
    assert_eq!(row(&ids[2])["answer"], "no mobile number");
    assert_eq!(t.get(&format!("/api/v1/records/mailing/{mailing}")).await.expect(200)["status"], "sent");
}

async fn the_studio_sets_up_the_provider_and_sends_a_test_text(t: TestApp) {
    let stand_in = SmsStandIn::start(&[]);
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.page("/studio/sms").await;
    assert!(page.contains("id=\"sms-settings\"") && !page.contains("id=\"sms-test\""), "no test before settings");
    let endpoint = format!("http://127.0.0.1:{}/", stand_in.port);
    let mut fields = vec![
        ("endpoint", endpoint.as_str()),
        ("access_key_id", SmsStandIn::KEY_ID),
        ("sign_name", ""),
        ("rate_per_second", "20"),
    ];
    let refused = b.post("/studio/sms", &fields).await;
    assert_eq!(refused.status.as_u16(), 422);
    assert!(refused.text.contains("短信签名: 必填"), "{}", refused.text);
    fields[2] = ("sign_name", "立友信");
    fields.push(("secret", SmsStandIn::SECRET));
    assert_eq!(b.submit("/studio/sms", &fields).await, "/studio/sms");
    let page = b.page("/studio/sms").await;
    assert!(page.contains("已保存，不修改请留空"), "the secret is kept, not shown: {page}");
    assert!(!page.contains("test-secret"));
    let tested = b.post("/studio/sms", &[("action", "test"), ("to", "13800138000"), ("template", "SMS_1")]).await;
    assert!(tested.text.contains("服务器回复：OK"), "{}", tested.text);
    assert_eq!(stand_in.received().len(), 1);

    // From a list: the chosen contacts get a text of a template, previewed and billed.
    let customer = t.create("customer", json!({"name": "长沙湘江电气"})).await;
    let contact = t
        .create(
            "contact",
            json!({"name": "罗敏", "gender": "female", "customer": customer["id"], "mobile": "13700137000"}),
        )
        .await;
    let template = t
        .create("sms_template", json!({"name": "回访", "provider_template": "SMS_300", "content": "${name}您好，感谢惠顾。", "params": "name={{ recipient.salutation }}"}))
        .await;
    let id = contact["id"].as_str().unwrap();
    let list = b.page("/e/contact").await;
    assert!(list.contains("id=\"bulk-sms\""));
    let compose = b.submit("/e/contact/bulk", &[("action", "sms"), ("ids", id)]).await;
    assert_eq!(compose, format!("/mail/compose?entity=contact&channel=sms&ids={id}"));
    let page = b.page(&compose).await;
    assert!(page.contains("id=\"sms-template\"") && !page.contains("id=\"mail-subject\""), "{page}");
    let chosen =
        [("entity", "contact"), ("channel", "sms"), ("ids", id), ("sms_template", template["id"].as_str().unwrap())];
    let preview = b.post("/mail/compose", &[&chosen[..], &[("action", "preview")]].concat()).await;
    assert!(
        preview.text.contains("罗女士您好，感谢惠顾。") && preview.text.contains("按 1 条计费"),
        "{}",
        preview.text
    );
    let sent = b.submit("/mail/compose", &[&chosen[..], &[("action", "now")]].concat()).await;
    assert!(sent.starts_with("/e/mailing/"), "{sent}");
    t.run_jobs().await;
    assert!(b.page(&sent).await.contains("data-status=\"sent\">已发送 1"));
    assert_eq!(stand_in.received()[1]["params"], json!({"name": "罗女士"}));
    let timeline = b.page(&format!("/e/contact/{id}")).await;
    assert!(
        timeline.contains("短信：已发送") && timeline.contains("罗女士您好，感谢惠顾。"),
        "the text in her timeline: {timeline}"
    );
}
