//! The knowledge base (知识库) on SQLite and PostgreSQL: the category tree with its counts,
//! Chinese search ranking a title above a passing mention with the match marked, readers
//! seeing published articles within their scope only, articles attached to service requests
//! (shown on both records, never twice), and the import of Markdown and HTML files, all or none.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, TestApp, USER_PASSWORD, encode};

backends!(
    categories_form_a_tree_with_counts,
    search_ranks_titles_first_and_marks_the_match,
    readers_see_published_articles_in_their_scope,
    articles_attach_to_a_request_once,
    markdown_and_html_files_become_articles_all_or_none,
);

fn id(record: &Value) -> String {
    record["id"].as_str().expect("a record has an id").to_owned()
}

async fn category(t: &TestApp, name: &str, parent: Option<&str>, sort_order: i64) -> String {
    id(&t.create("kb_category", json!({"name": name, "parent": parent, "sort_order": sort_order})).await)
}

async fn article(t: &TestApp, body: Value) -> String {
    id(&t.create("knowledge_article", body).await)
}

/// A signed-in browser session: its cookie header and CSRF token.
async fn sign_in(t: &TestApp, login: &str, password: &str) -> (String, String) {
    let form = [("login", login), ("password", password), ("next", "/")];
    let reply = t.page(Method::POST, "/login", "", Some(&form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let session = reply
        .set_cookies
        .iter()
        .find_map(|c| c.strip_prefix("crm_session=")?.split(';').next().map(str::to_owned))
        .expect("a session cookie");
    let cookie = format!("crm_session={session}");
    let home = t.page(Method::GET, "/", &cookie, None).await;
    let csrf = home.text.split("name=\"_csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).expect("a token");
    (cookie, csrf.to_owned())
}

/// The knowledge base page's HTML.
async fn kb_page(t: &TestApp, cookie: &str, query: &str) -> String {
    let reply = t.page(Method::GET, &format!("/kb{query}"), cookie, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.text
}

/// The tree as indented lines of names and counts.
fn outline(nodes: &[crm::kb::Category], depth: usize) -> String {
    nodes
        .iter()
        .map(|n| format!("{}{} {}\n{}", "  ".repeat(depth), n.name, n.count, outline(&n.children, depth + 1)))
        .collect()
}

/// The ids of the articles a page lists, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-article=\"").skip(1).filter_map(|s| s.split('"').next().map(str::to_owned)).collect()
}

async fn categories_form_a_tree_with_counts(t: TestApp) {
    let product = category(&t, "产品知识", None, 1).await;
    let printer = category(&t, "打印机", Some(&product), 1).await;
    let driver = category(&t, "驱动安装", Some(&printer), 1).await;
    let policy = category(&t, "政策制度", None, 2).await;
    for (name, in_category) in
        [("驱动下载", &driver), ("驱动卸载", &driver), ("卡纸处理", &printer), ("退货政策", &policy)]
    {
        article(&t, json!({"name": name, "category": in_category, "published": true})).await;
    }
    article(&t, json!({"name": "未分类文章", "published": true})).await;

    let admin = t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().unwrap().parse().unwrap();
    let principal = t.app.principal(admin).await.expect("the administrator");
    let tree = crm::kb::tree(&t.app, &principal).await.expect("the tree");
    assert_eq!(
        outline(&tree.roots, 0),
        "产品知识 3\n  打印机 3\n    驱动安装 2\n政策制度 1\n",
        "nested in sort order, each counting its subtree"
    );
    assert_eq!((tree.total, tree.uncategorised), (5, 1));

    // The page: the tree with counts, and a category's articles with its subcategories'.
    let (cookie, _) = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let page = kb_page(&t, &cookie, "").await;
    assert!(page.contains("产品知识 <span class=\"count\">3</span>"), "{page}");
    assert!(page.contains("kb\" class=\"active\" aria-current=\"page\">知识库</a>"), "the navigation leads here");
    let printer_page = kb_page(&t, &cookie, &format!("?category={printer}")).await;
    assert_eq!(listed(&printer_page).len(), 3, "{printer_page}");
    let unknown = t.page(Method::GET, &format!("/kb?category={}", uuid::Uuid::now_v7()), &cookie, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Empty states say what to do.
    let empty = TestApp::sqlite().await;
    let (cookie, _) = sign_in(&empty, "admin", ADMIN_PASSWORD).await;
    let page = kb_page(&empty, &cookie, "").await;
    assert!(page.contains("知识库还没有文章") && page.contains("id=\"kb-import\""), "{page}");
}

async fn search_ranks_titles_first_and_marks_the_match(t: TestApp) {
    let faq = category(&t, "常见问题", None, 1).await;
    let other = category(&t, "其他", None, 2).await;
    let mention = article(
        &t,
        json!({"name": "月度对账说明", "category": faq, "published": true,
               "content": "每月初核对上月的订单和回款。遇到问题请先重启客户端，如仍无法解决，请联系财务部门。打印机故障请另行报修。"}),
    )
    .await;
    let title = article(
        &t,
        json!({"name": "打印机故障排除", "category": faq, "published": true, "keywords": "卡纸 驱动",
               "content": "检查电源和数据线，然后重新安装驱动。"}),
    )
    .await;
    let elsewhere = article(
        &t,
        json!({"name": "打印机采购政策", "category": other, "published": true, "content": "按季度集中采购。"}),
    )
    .await;
    t.run_jobs().await;

    let (cookie, _) = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let page = kb_page(&t, &cookie, &format!("?q={}", encode("打印机故障"))).await;
    let found = listed(&page);
    let at = |id: &str| found.iter().position(|f| f == id);
    assert!(at(&title).is_some() && at(&mention).is_some(), "{page}");
    assert!(at(&title) < at(&mention), "the title match ranks above a passing mention: {found:?}");
    assert!(page.contains("<mark>打印机</mark>") || page.contains("<mark>打印机故障</mark>"), "{page}");

    // Narrowed to a category: the same ranking, without the other category's article.
    let page = kb_page(&t, &cookie, &format!("?q={}&category={faq}", encode("打印机"))).await;
    let found = listed(&page);
    assert!(found.contains(&title) && found.contains(&mention) && !found.contains(&elsewhere), "{found:?}");
    let page = kb_page(&t, &cookie, &format!("?q={}", encode("驱动"))).await;
    assert_eq!(listed(&page), vec![title.clone()], "keywords and content are searched");
    let page = kb_page(&t, &cookie, &format!("?q={}", encode("量子纠缠"))).await;
    assert!(listed(&page).is_empty() && page.contains("没有找到匹配的文章"), "{page}");
}

async fn readers_see_published_articles_in_their_scope(t: TestApp) {
    // Reps read only their own articles here, to show the scope holds on the page.
    let mut role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"]["knowledge_article"]["scope"] = json!("own");
    t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    let (rep, rep_token) = t.user("rep1", &["sales_rep"], None).await;
    let (other, _) = t.user("rep2", &["sales_rep"], None).await;
    let (_, _) = t.user("svc1", &["service"], None).await;
    let mine = article(&t, json!({"name": "报价单填写指南", "published": true, "owner": rep})).await;
    let draft = article(&t, json!({"name": "报价单草稿说明", "published": false, "owner": rep})).await;
    let theirs = article(&t, json!({"name": "报价单审批流程", "published": true, "owner": other})).await;
    t.run_jobs().await;

    let (cookie, _) = sign_in(&t, "rep1", USER_PASSWORD).await;
    for query in [String::new(), format!("?q={}", encode("报价单"))] {
        let page = kb_page(&t, &cookie, &query).await;
        assert_eq!(listed(&page), vec![mine.clone()], "published, and theirs only: {page}");
        assert!(page.contains("只显示已发布的文章"));
        assert!(!page.contains("报价单审批流程") && !page.contains(&theirs) && !page.contains(&draft));
        assert!(!page.contains("id=\"kb-import\""), "reps do not import");
    }
    // The API the 查找知识 box asks answers the same.
    let uri = format!("/api/v1/kb/articles?q={}", encode("报价单"));
    let found = t.as_user(&rep_token, Method::GET, &uri, None).await.expect(200);
    let ids: Vec<&str> = found["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.as_str()], "{found}");
    let (cookie, _) = sign_in(&t, "svc1", USER_PASSWORD).await;
    let page = kb_page(&t, &cookie, &format!("?q={}", encode("报价单"))).await;
    assert_eq!(listed(&page).len(), 3, "service staff edit articles and see drafts: {page}");
    assert!(page.contains("id=\"kb-import\""));
}

async fn articles_attach_to_a_request_once(t: TestApp) {
    let (rep, token) = t.user("rep1", &["sales_rep"], None).await;
    let customer = id(&t.create("customer", json!({"name": "北京立友信科技有限公司", "owner": rep})).await);
    let request =
        id(&t.create("service_request", json!({"name": "打印机无法打印", "customer": customer, "owner": rep})).await);
    let solution = article(&t, json!({"name": "打印机故障排除", "published": true})).await;

    let link = json!({"service_request": request, "article": solution});
    t.as_user(&token, Method::POST, "/api/v1/records/service_request_article", Some(link.clone())).await.expect(201);
    let again = t.as_user(&token, Method::POST, "/api/v1/records/service_request_article", Some(link.clone())).await;
    let refused = again.expect(422);
    assert_eq!(refused["errors"][0]["field"], "article", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("已关联"), "{refused}");
    let by_admin = t.post("/api/v1/records/service_request_article", link).await;
    assert_eq!(by_admin.status.as_u16(), 422, "whoever made the first link");

    let panel = t
        .as_user(&token, Method::GET, &format!("/api/v1/records/service_request/{request}/related/articles"), None)
        .await;
    let rows = panel.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["article"], json!(solution));

    // Both record pages show the other record by its title in their panels.
    let (cookie, _) = sign_in(&t, "rep1", USER_PASSWORD).await;
    let page = t.page(Method::GET, &format!("/e/service_request/{request}"), &cookie, None).await;
    let section = page.text.split("id=\"panel-articles\"").nth(1).expect("the 关联知识 panel");
    let section = section.split("</section>").next().unwrap();
    assert!(section.contains("关联知识") && section.contains("打印机故障排除"), "{section}");
    assert!(page.text.contains("id=\"kb-find\"") && page.text.contains(&format!("data-attached=\"{solution}\"")));
    let (cookie, _) = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let page = t.page(Method::GET, &format!("/e/knowledge_article/{solution}"), &cookie, None).await;
    let section = page.text.split("id=\"panel-service_requests\"").nth(1).expect("the 引用的服务请求 panel");
    assert!(section.split("</section>").next().unwrap().contains("打印机无法打印"), "{}", page.text);
}

/// A multipart body of files (name, bytes) and an optional category: its bytes and type.
fn multipart(files: &[(&str, &[u8])], category: Option<&str>) -> (Vec<u8>, String) {
    let boundary = "----crm-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    if let Some(category) = category {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\n{category}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

async fn import(t: &TestApp, token: Option<&str>, files: &[(&str, &[u8])], category: Option<&str>) -> support::Reply {
    let (body, content_type) = multipart(files, category);
    t.raw(Method::POST, "/api/v1/kb/import", body, Some(&content_type), Some(token.unwrap_or(&t.token))).await
}

async fn markdown_and_html_files_become_articles_all_or_none(t: TestApp) {
    let faq = category(&t, "常见问题", None, 1).await;
    let markdown = "# 退货流程\n\n1. 在订单中登记退货\n2. 仓库验收后退款\n".as_bytes();
    let html = r#"<html><head><title>发票开具说明</title><style>p{color:red}</style></head>
        <body><h1>发票</h1><p>增值税专用发票需提供&ldquo;税号&rdquo;&amp;开户行。</p><script>alert(1)</script></body></html>"#
        .as_bytes();
    let created = import(
        &t,
        None,
        &[("return.md", markdown), ("invoice.html", html), ("备注.txt", "纯文本".as_bytes())],
        Some(&faq),
    )
    .await
    .expect(201);
    let ids: Vec<String> = created["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    let first = t.get(&format!("/api/v1/records/knowledge_article/{}", ids[0])).await.expect(200);
    assert_eq!((first["name"].as_str(), first["category"].as_str()), (Some("退货流程"), Some(faq.as_str())));
    assert_eq!(first["content"], "1. 在订单中登记退货\n2. 仓库验收后退款");
    assert_eq!(first["keywords"], Value::Null);
    let second = t.get(&format!("/api/v1/records/knowledge_article/{}", ids[1])).await.expect(200);
    assert_eq!(second["name"], "发票开具说明");
    assert_eq!(second["content"], "发票\n增值税专用发票需提供“税号”&开户行。");
    let third = t.get(&format!("/api/v1/records/knowledge_article/{}", ids[2])).await.expect(200);
    assert_eq!((third["name"].as_str(), third["content"].as_str()), (Some("备注"), Some("纯文本")));
    let audit = t.get(&format!("/api/v1/audit?entity=knowledge_article&record_id={}", ids[0])).await.expect(200);
    assert_eq!(audit["data"][0]["source"], "import", "{audit}");

    // One bad file of four: nothing is written, and each bad file is named.
    let before = t.list("knowledge_article", None, "count=true").await.expect(200)["total"].clone();
    let big = vec![b'a'; 2 * 1024 * 1024 + 1];
    let reply = import(
        &t,
        None,
        &[
            ("ok.md", markdown),
            ("empty.md", b"  \n"),
            ("latin1.txt", &[0xe9, 0x74, 0xe9]),
            ("big.txt", &big),
            ("x.pdf", b"%PDF"),
        ],
        None,
    )
    .await;
    let problem = reply.expect(422);
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("files/1", "empty_file"),
        ("files/2", "not_utf8"),
        ("files/3", "too_large"),
        ("files/4", "unknown_file_type"),
    ];
    assert_eq!(errors, expected.map(|(f, c)| (f.to_owned(), c.to_owned())), "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("empty.md"));
    assert_eq!(t.list("knowledge_article", None, "count=true").await.expect(200)["total"], before, "nothing written");
    // A category that does not exist is the pipeline's refusal of the form's `category`.
    let reply = import(&t, None, &[("ok.md", markdown)], Some(&uuid::Uuid::now_v7().to_string())).await.expect(422);
    assert_eq!(reply["errors"][0]["field"], "category", "{reply}");
    import(&t, None, &[], Some(&faq)).await.expect(422);

    // A rep may not import; the page's form imports for those who may, back to the category.
    let (_, rep) = t.user("rep1", &["sales_rep"], None).await;
    import(&t, Some(&rep), &[("ok.md", markdown)], None).await.expect(403);
    let (cookie, csrf) = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let (mut body, content_type) = multipart(&[("page.md", "# 页面导入\n正文".as_bytes())], Some(&faq));
    let csrf_part =
        format!("------crm-test-boundary-7MA4YWxk\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n");
    body.splice(0..0, csrf_part.into_bytes());
    let reply = page_post(&t, "/kb/import", &cookie, body, &content_type).await;
    assert_eq!(reply.0, StatusCode::SEE_OTHER);
    assert_eq!(reply.1.as_deref(), Some(format!("/kb?category={faq}").as_str()));
    let (body, content_type) = multipart(&[("empty.md", b"")], Some(&faq));
    let reply = page_post(&t, "/kb/import", &cookie, body, &content_type).await;
    assert_eq!(reply.0, StatusCode::FORBIDDEN, "the form carries its CSRF token");
}

/// Posts raw bytes with a session cookie, as a browser's multipart form: status and location.
async fn page_post(
    t: &TestApp,
    uri: &str,
    cookie: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (StatusCode, Option<String>) {
    use axum::body::Body;
    use tower::ServiceExt as _;
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("cookie", cookie)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request");
    let response = crm::build_app(t.app.clone()).oneshot(request).await.expect("infallible");
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status(), location)
}
