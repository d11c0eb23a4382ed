//! Printing quotes and orders (SA-3), on SQLite and PostgreSQL: the core package's templates
//! print a record's lines, its exact total and the total in Chinese capitals; printing reads
//! through the caller's scope and hidden fields; print templates are metadata whose source
//! must compile, rendered escaped and stopped when they run away.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestApp;

backends!(
    a_quote_prints_its_lines_total_and_amount_in_words,
    printing_reads_within_the_callers_scope,
    templates_are_checked_escaped_and_stopped,
    the_company_set_by_the_administrator_heads_pages_and_prints,
);

/// A session cookie (`crm_session=...`) for the screens.
async fn session(t: &TestApp, login: &str, password: &str) -> String {
    let form = [("login", login), ("password", password), ("next", "/")];
    let reply = t.page(Method::POST, "/login", "", Some(&form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let cookie = reply
        .set_cookies
        .iter()
        .find_map(|c| c.strip_prefix("crm_session=")?.split(';').next().map(str::to_owned))
        .expect("a session cookie");
    format!("crm_session={cookie}")
}

/// A quote of 12345.67 over two lines (3 × 1234.56 and 1 × 8641.99), owned by the admin.
async fn quote(t: &TestApp) -> (String, Value) {
    let customer = t.create("customer", json!({"name": "北京立友信科技有限公司"})).await;
    let quote = t
        .create("quote", json!({"name": "服务器采购报价", "customer": customer["id"], "remark": "仅供内部参考的备注"}))
        .await;
    let id = quote["id"].as_str().expect("an id").to_owned();
    for (name, quantity, price) in [("机架服务器", "3", "1234.56"), ("存储阵列", "1", "8641.99")] {
        t.create("quote_line", json!({"quote": id, "name": name, "quantity": quantity, "price": price})).await;
    }
    let stored = t.get(&format!("/api/v1/records/quote/{id}")).await.expect(200);
    assert_eq!(stored["total_amount"], "12345.67", "the lines roll up to the total");
    (id, stored)
}

async fn a_quote_prints_its_lines_total_and_amount_in_words(t: TestApp) {
    let (id, _) = quote(&t).await;
    let admin = session(&t, "admin", support::ADMIN_PASSWORD).await;

    let record = t.page(Method::GET, &format!("/e/quote/{id}"), &admin, None).await;
    assert_eq!(record.status, StatusCode::OK);
    assert!(record.text.contains(&format!("href=\"/e/quote/{id}/print\"")), "the record offers 打印");

    let printed = t.page(Method::GET, &format!("/e/quote/{id}/print"), &admin, None).await;
    assert_eq!(printed.status, StatusCode::OK, "{}", printed.text);
    let page = printed.text;
    assert!(page.contains("size: A4"), "an A4 print page");
    for expected in
        ["报价单", "服务器采购报价", "北京立友信科技有限公司", "机架服务器", "存储阵列", "3,703.68", "8,641.99"]
    {
        assert!(page.contains(expected), "the print shows {expected}");
    }
    assert!(page.contains("12,345.67"), "the exact total");
    assert!(page.contains("人民币大写"));
    assert!(page.contains("壹万贰仟叁佰肆拾伍元陆角柒分"), "the total in capitals");
    assert!(page.contains("报价主题") && page.contains("Subject"), "labels in both languages");

    // A template is chosen by name, among the entity's own.
    let missing = t.page(Method::GET, &format!("/e/quote/{id}/print?template=order"), &admin, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "the order template does not print quotes");
}

async fn printing_reads_within_the_callers_scope(t: TestApp) {
    let (id, _) = quote(&t).await;
    t.user("rep", &["sales_rep"], None).await;
    let rep = session(&t, "rep", support::USER_PASSWORD).await;
    let refused = t.page(Method::GET, &format!("/e/quote/{id}/print"), &rep, None).await;
    assert!(matches!(refused.status.as_u16(), 403 | 404), "{}", refused.status);
    for secret in ["服务器采购报价", "机架服务器", "12,345.67", "壹万贰仟"] {
        assert!(!refused.text.contains(secret), "nothing of the quote leaks: {secret}");
    }

    // A role that reads every quote and line but not the remark prints without it.
    let role = json!({
        "name": "quote_reader",
        "label": {"zh-CN": "报价查看", "en": "Quote reader"},
        "entities": {
            "quote": {"actions": ["read"], "scope": "all", "fields": {"remark": "hidden"}},
            "quote_line": {"actions": ["read"], "scope": "all"},
            "customer": {"actions": ["read"], "scope": "all"},
        },
    });
    t.put("/api/v1/meta/roles/quote_reader", role).await.expect(200);
    t.user("reader", &["quote_reader"], None).await;
    let reader = session(&t, "reader", support::USER_PASSWORD).await;
    let printed = t.page(Method::GET, &format!("/e/quote/{id}/print"), &reader, None).await;
    assert_eq!(printed.status, StatusCode::OK, "{}", printed.text);
    assert!(printed.text.contains("机架服务器") && printed.text.contains("壹万贰仟叁佰肆拾伍元陆角柒分"));
    assert!(!printed.text.contains("仅供内部参考的备注"), "a hidden field stays hidden");
    let admin = session(&t, "admin", support::ADMIN_PASSWORD).await;
    let full = t.page(Method::GET, &format!("/e/quote/{id}/print"), &admin, None).await;
    assert!(full.text.contains("仅供内部参考的备注"), "the administrator sees the remark");

    // Print templates are for administrators only.
    let (_, token) = t.user("rep2", &["sales_rep"], None).await;
    t.as_user(&token, Method::GET, "/api/v1/meta/print_templates/quote", None).await.expect(403);
}

async fn templates_are_checked_escaped_and_stopped(t: TestApp) {
    let (id, stored) = quote(&t).await;
    let admin = session(&t, "admin", support::ADMIN_PASSWORD).await;
    let template = |name: &str, source: &str| json!({"name": name, "label": {"zh-CN": "测试", "en": "Test"}, "entity": "quote", "source": source});

    // Invalid source is refused with its line, and nothing is saved.
    let refused = t
        .put("/api/v1/meta/print_templates/broken", template("broken", "<p>{{ title }}</p>\n<p>{% for x in %}</p>"))
        .await
        .expect(422);
    let text = refused.to_string();
    assert!(text.contains("print_template:broken") && text.contains("line 2"), "{text}");
    t.get("/api/v1/meta/print_templates/broken").await.expect(404);
    let mut unknown = template("elsewhere", "{{ title }}");
    unknown["entity"] = json!("no_such_entity");
    t.put("/api/v1/meta/print_templates/elsewhere", unknown).await.expect(422);

    // A value is escaped on output.
    t.patch(
        &format!("/api/v1/records/quote/{id}"),
        json!({"name": "<script>alert(1)</script>", "version": stored["version"]}),
    )
    .await
    .expect(200);
    let saved =
        t.put("/api/v1/meta/print_templates/plain", template("plain", "<h1>{{ record.name.value }}</h1>")).await;
    assert_eq!(saved.expect(200)["document"]["name"], "plain");
    let printed = t.page(Method::GET, &format!("/e/quote/{id}/print?template=plain"), &admin, None).await;
    assert_eq!(printed.status, StatusCode::OK);
    assert!(!printed.text.contains("<script>"), "{}", printed.text);
    assert!(printed.text.contains("&lt;script&gt;"));

    // Two templates: the record view offers a choice.
    let record = t.page(Method::GET, &format!("/e/quote/{id}"), &admin, None).await;
    assert!(record.text.contains("id=\"print-form\"") && record.text.contains("value=\"plain\""));

    // A runaway template stops with an error page in the viewer's language.
    let endless = "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}";
    t.put("/api/v1/meta/print_templates/endless", template("endless", endless)).await.expect(200);
    let stopped = t.page(Method::GET, &format!("/e/quote/{id}/print?template=endless"), &admin, None).await;
    assert_eq!(stopped.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(stopped.text.contains("无法打印") && stopped.text.contains("死循环"), "{}", stopped.text);

    // Removed through the API, it is gone from the record and its history keeps it.
    t.delete("/api/v1/meta/print_templates/endless").await.expect(204);
    t.delete("/api/v1/meta/print_templates/endless").await.expect(404);
    let gone = t.page(Method::GET, &format!("/e/quote/{id}/print?template=endless"), &admin, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let history = t.get("/api/v1/meta/history?limit=5").await.expect(200);
    assert!(history["data"].as_array().expect("data").iter().any(|c| c["name"] == "endless" && c["after"].is_null()));
}

/// The company form as the studio page and the API send it: a name, a logo file, and whether
/// to remove the saved logo.
fn company_form(name: &str, logo: Option<&[u8]>, remove: bool) -> (Vec<u8>, String) {
    let boundary = "----crm-test-boundary-company";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n").into_bytes();
    if let Some(logo) = logo {
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"logo\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(logo);
        body.extend_from_slice(b"\r\n");
    }
    if remove {
        let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"remove_logo\"\r\n\r\ntrue\r\n");
        body.extend_from_slice(part.as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

async fn put_company(t: &TestApp, token: &str, name: &str, logo: Option<&[u8]>, remove: bool) -> support::Reply {
    let (body, content_type) = company_form(name, logo, remove);
    t.raw(Method::PUT, "/api/v1/admin/company", body, Some(&content_type), Some(token)).await
}

/// Text as the templates write it into HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('/', "&#x2f;")
}

async fn the_company_set_by_the_administrator_heads_pages_and_prints(t: TestApp) {
    let (id, _) = quote(&t).await;
    let admin = session(&t, "admin", support::ADMIN_PASSWORD).await;
    let login = t.page(Method::GET, "/login", "", None).await;
    assert!(login.text.contains("元枢CRM") && !login.text.contains("login-logo"), "the product's own name at first");

    // A picture that is not a safe image, or a rep, changes nothing.
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    let refused = put_company(&t, &t.token, "北京立友信科技有限公司", Some(svg), false).await.expect(422);
    assert_eq!(refused["errors"][0]["code"], "not_an_image", "{refused}");
    assert_eq!(t.get("/api/v1/admin/company").await.expect(200)["name"], Value::Null, "nothing saved");
    let (_, rep) = t.user("rep", &["sales_rep"], None).await;
    put_company(&t, &rep, "别家公司", None, false).await.expect(403);

    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let saved = put_company(&t, &t.token, " 北京立友信科技有限公司 ", Some(png), false).await.expect(200);
    assert_eq!(saved["name"], "北京立友信科技有限公司", "trimmed: {saved}");
    let logo = saved["logo"].as_str().expect("the logo's address").to_owned();
    assert!(logo.starts_with("/brand/logo?v="), "{logo}");
    let served = t.page(Method::GET, &logo, "", None).await;
    assert_eq!(served.status, StatusCode::OK, "the logo is served to anyone: the login page shows it");
    assert_eq!(served.content_type.as_deref(), Some("image/png"), "its type from its bytes");

    // The login page, every page's top bar and the printout show the company.
    let login = t.page(Method::GET, "/login", "", None).await.text;
    assert!(login.contains("北京立友信科技有限公司") && login.contains(&escaped(&logo)), "{login}");
    let record = t.page(Method::GET, &format!("/e/quote/{id}"), &admin, None).await.text;
    let top = record.split("class=\"brand\"").nth(1).expect("the top bar's brand");
    assert!(top.contains("北京立友信科技有限公司") && top.contains(&escaped(&logo)), "{top}");
    let printed = t.page(Method::GET, &format!("/e/quote/{id}/print"), &admin, None).await.text;
    assert!(printed.contains("北京立友信科技有限公司") && printed.contains(&escaped(&logo)), "the print's head");
    let studio = t.page(Method::GET, "/studio/company", &admin, None).await;
    assert!(studio.text.contains("公司信息") && studio.text.contains("value=\"北京立友信科技有限公司\""));

    // A name kept without a new file keeps the logo; removing it takes it away.
    let kept = put_company(&t, &t.token, "立友信", None, false).await.expect(200);
    assert_eq!((&kept["name"], &kept["logo"]), (&json!("立友信"), &json!(logo)));
    let removed = put_company(&t, &t.token, "立友信", None, true).await.expect(200);
    assert_eq!(removed["logo"], Value::Null, "{removed}");
    assert_eq!(t.page(Method::GET, &logo, "", None).await.status, StatusCode::NOT_FOUND);
}
