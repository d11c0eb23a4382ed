//! Surveys (M-7): a questionnaire of records (single and multiple choice, rating, free text;
//! required; in order) designed on the survey's page, answered on a public page, in a web
//! form or from a mail's personal link, each answering stored as a response linked to the
//! respondent when known; statistics per question counted in the reader's scope, with a
//! workbook. Wrong answers are refused and write nothing.

mod support;

use std::io::Cursor;

use axum::http::{Method, StatusCode};
use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};
use support::browser::{Browser, between, unescaped};
use support::{PageReply, TestApp};

backends!(
    a_survey_is_designed_answered_and_counted_in_the_readers_scope,
    a_web_form_asks_its_survey_after_the_fields,
    a_resolved_request_is_scored_by_its_customer,
);

async fn visitor(t: &TestApp, path: &str, fields: &[(&str, &str)]) -> PageReply {
    t.page(Method::POST, path, "", Some(fields)).await
}

async fn count(t: &TestApp, entity: &str, survey: &str) -> usize {
    let filter = json!({"field": "survey", "op": "eq", "value": survey});
    t.list(entity, Some(filter), "limit=200").await.expect(200)["data"].as_array().unwrap().len()
}

/// The questions of a survey, their ids by text, in their order.
async fn questions(t: &TestApp, survey: &str) -> Vec<(String, String)> {
    let filter = json!({"field": "survey", "op": "eq", "value": survey});
    let listed = t.list("survey_question", Some(filter), "sort=position").await.expect(200);
    listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["name"].as_str().unwrap().to_owned(), q["id"].as_str().unwrap().to_owned()))
        .collect()
}

fn input(questions: &[(String, String)], text: &str) -> String {
    format!("q.{}", questions.iter().find(|(t, _)| t == text).unwrap().1)
}

/// The count and share shown for an option of a question on the survey's page.
fn shown(page: &str, question: &str, option: &str) -> (String, String) {
    let block = between(page, &format!("class=\"survey-question-stats\" data-question=\"{question}\""), "</table>")
        .unwrap_or_else(|| panic!("{question} on the page"));
    let row = between(&block, &format!("data-option=\"{option}\""), "</tr>").unwrap();
    (between(&row, "data-count=\"", "\"").unwrap(), between(&row, "data-percent=\"", "\"").unwrap())
}

async fn a_survey_is_designed_answered_and_counted_in_the_readers_scope(t: TestApp) {
    let survey = t
        .create(
            "survey",
            json!({"name": "客户满意度调查", "status": "draft", "intro": "占用您一分钟", "thanks": "谢谢您的反馈！"}),
        )
        .await;
    let id = survey["id"].as_str().unwrap().to_owned();
    let page = format!("/surveys/{id}");

    // Designed on the survey's page: questions added at the end, then moved.
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let empty = b.page(&page).await;
    assert!(empty.contains("还没有问题"), "an empty survey says what to do");
    let added = [
        ("您从哪里了解到我们？", "single", "展会\n朋友介绍\n网站", "true"),
        ("您关注哪些功能？", "multiple", "客户管理\n销售漏斗\n报表", ""),
        ("您对服务的评分", "rating", "", "true"),
        ("还有什么建议？", "text", "", ""),
    ];
    for (name, kind, options, required) in added {
        let to = b
            .submit(
                &format!("{page}/questions"),
                &[("name", name), ("kind", kind), ("options", options), ("required", required)],
            )
            .await;
        assert_eq!(to, page);
    }
    let q = questions(&t, &id).await;
    assert_eq!(q.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), added.map(|a| a.0));
    b.submit(&format!("{page}/questions/{}/move", q[2].1), &[("to", "up")]).await;
    let q = questions(&t, &id).await;
    assert_eq!(q[1].0, "您对服务的评分", "moved up one place");
    assert_eq!(q[2].0, "您关注哪些功能？");

    // A draft takes no answers; open, its public page asks the questions without a script.
    let link = crm::surveys::link(&t.app, id.parse().unwrap());
    let path = format!("/q/{}", link.split("/q/").nth(1).unwrap());
    assert_eq!(t.page(Method::GET, &path, "", None).await.status, StatusCode::CONFLICT);
    let r1 = input(&q, "您从哪里了解到我们？");
    assert_eq!(visitor(&t, &path, &[(&r1, "展会")]).await.status, StatusCode::CONFLICT);
    t.patch(&format!("/api/v1/records/survey/{id}"), json!({"status": "open", "version": survey["version"]}))
        .await
        .expect(200);
    let public = t.page(Method::GET, &path, "", None).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.text.contains("占用您一分钟") && public.text.contains("朋友介绍") && !public.text.contains("<script")
    );
    let designed = b.page(&page).await;
    let snippet =
        unescaped(&unescaped(&between(&designed, "id=\"survey-snippet\" class=\"code\">", "</textarea>").unwrap()));
    assert!(snippet.contains(&format!("name=\"{r1}\"")) && snippet.contains(&link), "{snippet}");

    let (r_rating, r_features, r_text) =
        (input(&q, "您对服务的评分"), input(&q, "您关注哪些功能？"), input(&q, "还有什么建议？"));
    let hostile = "<script>alert(1)</script>希望有手机版";
    let answered = visitor(
        &t,
        &path,
        &[
            (&r1, "展会"),
            (&r_rating, "5"),
            (&r_features, "客户管理"),
            (&r_features, "报表"),
            (&r_text, hostile),
            ("_hp", ""),
        ],
    )
    .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
    assert!(answered.text.contains("谢谢您的反馈！"));
    assert_eq!(visitor(&t, &path, &[(&r1, "朋友介绍"), (&r_rating, "3")]).await.status, StatusCode::OK);

    // From a mail: the campaign's survey link is the contact's own, so the answers are theirs;
    // a link whose signature is not this server's answers anonymously.
    let customer = t.create("customer", json!({"name": "北京立友信科技有限公司"})).await;
    let contact =
        t.create("contact", json!({"name": "王建国", "customer": customer["id"], "email": "wang@example.cn"})).await;
    let contact_id = contact["id"].as_str().unwrap();
    let personal = crm::surveys::personal_link(&t.app, id.parse().unwrap(), "contact", contact_id.parse().unwrap());
    let personal = format!("/q/{}", personal.split("/q/").nth(1).unwrap());
    assert_eq!(visitor(&t, &personal, &[(&r1, "网站"), (&r_rating, "4")]).await.status, StatusCode::OK);
    let forged = format!("{}x", &personal[..personal.len() - 1]);
    assert_eq!(visitor(&t, &forged, &[(&r1, "网站"), (&r_rating, "2")]).await.status, StatusCode::OK);
    let filter = json!({"field": "contact", "op": "eq", "value": contact_id});
    let theirs = t.list("survey_response", Some(filter), "").await.expect(200);
    let theirs = theirs["data"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "only the signed link is the contact's");
    assert_eq!(theirs[0]["name"], "王建国");

    // Refused, and nothing written: an option not offered, a rating out of range, a
    // required question unanswered, a question the survey does not ask, a robot.
    let before = (count(&t, "survey_response", &id).await, count(&t, "survey_answer", &id).await);
    assert_eq!(before, (4, 11), "four responses: five answers, then two each");
    let wrong = visitor(&t, &path, &[(&r1, "电视广告"), (&r_rating, "5")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text.contains("您从哪里了解到我们？") && wrong.text.contains("不是可选的值"), "{}", wrong.text);
    assert_eq!(visitor(&t, &path, &[(&r1, "展会"), (&r_rating, "9")]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = visitor(&t, &path, &[(&r_text, "没有")]).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.text.contains("您对服务的评分") && missing.text.contains("必填"), "{}", missing.text);
    let unknown = format!("q.{}", uuid::Uuid::nil());
    assert_eq!(
        visitor(&t, &path, &[(&r1, "展会"), (&r_rating, "5"), (&unknown, "x")]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        visitor(&t, &path, &[(&r1, "展会"), (&r_rating, "5"), ("_hp", "http://spam")]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(visitor(&t, "/q/not-a-survey/key", &[(&r1, "展会")]).await.status, StatusCode::NOT_FOUND);
    assert_eq!((count(&t, "survey_response", &id).await, count(&t, "survey_answer", &id).await), before);

    // Statistics per question: counts and shares of the four responses, a rating's average,
    // the free text escaped.
    let stats = b.page(&page).await;
    assert!(stats.contains("共 4 份答卷"), "{stats}");
    assert_eq!(shown(&stats, "您从哪里了解到我们？", "展会"), ("1".into(), "25.0".into()));
    assert_eq!(shown(&stats, "您从哪里了解到我们？", "网站"), ("2".into(), "50.0".into()));
    assert_eq!(shown(&stats, "您从哪里了解到我们？", "朋友介绍"), ("1".into(), "25.0".into()));
    assert_eq!(shown(&stats, "您关注哪些功能？", "销售漏斗"), ("0".into(), "0.0".into()), "an option nobody chose");
    assert!(stats.contains("data-average=\"3.5\""), "(5 + 3 + 4 + 2) / 4");
    assert!(
        stats.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;希望有手机版") && !stats.contains("<script>alert(1)")
    );

    // The workbook: a row per option with its count and share.
    let file = t.with_cookie(Method::GET, &format!("{page}/statistics.xlsx"), None, &b.cookies(), None).await;
    assert_eq!(file.status, StatusCode::OK);
    let mut book = Xlsx::new(Cursor::new(file.bytes)).expect("a workbook");
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<Vec<Data>> = sheet.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(cells[0][..3], [Data::String("问题".into()), Data::String("答案".into()), Data::String("人数".into())]);
    let site = cells.iter().find(|r| r[1] == Data::String("网站".into())).expect("a row per option");
    assert_eq!(site[2..], [Data::Float(2.0), Data::Float(0.5)]);

    // A rep reads only the responses their role lets them: the survey's owner's are not theirs.
    let (_, token) = t.user("survey_rep", &["sales_rep"], None).await;
    assert_eq!(
        t.as_user(&token, Method::GET, "/api/v1/records/survey_response", None).await.expect(200)["data"],
        json!([])
    );
    let mut rep = Browser::sign_in(&t, "survey_rep", support::USER_PASSWORD).await;
    let theirs = rep.page(&page).await;
    assert!(theirs.contains("共 0 份答卷") && !theirs.contains("希望有手机版"), "nothing counted out of scope");
    assert!(!theirs.contains("id=\"add-question\""), "a rep does not design surveys");
    assert_eq!(
        rep.post(&format!("{page}/questions"), &[("name", "x"), ("kind", "text")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(questions(&t, &id).await.len(), 4);
}

async fn a_web_form_asks_its_survey_after_the_fields(t: TestApp) {
    let survey = t.create("survey", json!({"name": "试用需求调查", "status": "open"})).await;
    let id = survey["id"].as_str().unwrap();
    let question = t
        .create(
            "survey_question",
            json!({"survey": id, "name": "团队规模", "kind": "single", "options": "1-10人\n11-50人\n50人以上", "required": true}),
        )
        .await;
    let asked = format!("q.{}", question["id"].as_str().unwrap());
    let form = json!({
        "name": "trial",
        "label": {"zh-CN": "免费试用", "en": "Free trial"},
        "fields": [{"field": "name", "required": true}, {"field": "company"}],
        "survey": id,
        "thanks": {"zh-CN": "谢谢", "en": "Thanks"},
    });
    t.put("/api/v1/meta/web_forms/trial", form).await.expect(200);
    let path = format!("/f/trial/{}", crm::forms::key(&t.app, "trial"));
    let page = t.page(Method::GET, &path, "", None).await;
    assert!(page.text.contains("团队规模") && page.text.contains(&format!("name=\"{asked}\"")), "{}", page.text);

    let missing = visitor(&t, &path, &[("name", "李雷"), ("company", "x")]).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.text.contains("团队规模"), "the question names what is missing: {}", missing.text);
    assert_eq!(count(&t, "survey_response", id).await, 0);
    let lead_filter = json!({"field": "source", "op": "eq", "value": "web_form"});
    assert_eq!(t.list("lead", Some(lead_filter.clone()), "").await.expect(200)["data"], json!([]), "no lead either");

    let sent = visitor(&t, &path, &[("name", "李雷"), ("company", "远景科技"), (&asked, "11-50人")]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let leads = t.list("lead", Some(lead_filter), "").await.expect(200);
    let lead: &Value = &leads["data"][0];
    let filter = json!({"field": "lead", "op": "eq", "value": lead["id"]});
    let responses = t.list("survey_response", Some(filter), "").await.expect(200);
    assert_eq!(responses["data"].as_array().unwrap().len(), 1, "the answers are the lead's");
    assert_eq!(responses["data"][0]["name"], "李雷");
    let answers =
        t.list("survey_answer", Some(json!({"field": "survey", "op": "eq", "value": id})), "").await.expect(200);
    assert_eq!(answers["data"][0]["answer"], "11-50人");

    // A survey of optional questions still wants one answer.
    let optional = t.create("survey", json!({"name": "随访意见", "status": "open"})).await;
    let optional_id = optional["id"].as_str().unwrap();
    let remark = t.create("survey_question", json!({"survey": optional_id, "name": "意见", "kind": "text"})).await;
    let link = crm::surveys::link(&t.app, optional_id.parse().unwrap());
    let path = format!("/q/{}", link.split("/q/").nth(1).unwrap());
    let nothing = visitor(&t, &path, &[(&format!("q.{}", remark["id"].as_str().unwrap()), "  ")]).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    assert!(nothing.text.contains("请至少回答一个问题"), "{}", nothing.text);
    assert_eq!(count(&t, "survey_response", optional_id).await, 0);
}

/// The satisfaction after a service request (SV-5): once resolved, its page offers the open
/// service survey's personal link; the customer's stars and words are kept on the request.
async fn a_resolved_request_is_scored_by_its_customer(t: TestApp) {
    let survey = t.create("survey", json!({"name": "服务满意度回访", "status": "open", "purpose": "service"})).await;
    let id = survey["id"].as_str().unwrap().to_owned();
    for (position, (name, kind)) in [(1, ("您对本次服务的评分", "rating")), (2, ("您的意见", "text"))] {
        let question = json!({"survey": id, "name": name, "kind": kind, "position": position});
        t.create("survey_question", question).await;
    }
    let asked = questions(&t, &id).await;
    let customer = t.create("customer", json!({"name": "华东重工"})).await;
    let request = json!({"name": "打印机卡纸", "priority": "normal", "customer": customer["id"]});
    let request = t.create("service_request", request).await;
    let request_id = request["id"].as_str().unwrap().to_owned();
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let page = b.page(&format!("/e/service_request/{request_id}")).await;
    assert!(!page.contains("id=\"satisfaction-survey\""), "no survey before it is resolved");

    let change = json!({"status": "resolved", "version": request["version"]});
    t.patch(&format!("/api/v1/records/service_request/{request_id}"), change).await.expect(200);
    let page = b.page(&format!("/e/service_request/{request_id}")).await;
    let card = between(&page, "id=\"satisfaction-survey\"", "</section>").expect("the survey's card");
    let link = unescaped(&between(&card, "value=\"", "\"").expect("the link"));
    assert!(link.contains(&format!("/q/{id}/")) && link.contains("?r=service_request."), "{link}");

    // Four stars of five: 满意, the second best; the written answer is the comment.
    let path = format!("/q/{}", link.split("/q/").nth(1).unwrap());
    let answers = [(input(&asked, "您对本次服务的评分"), "4"), (input(&asked, "您的意见"), "工程师很耐心")];
    let fields: Vec<(&str, &str)> = answers.iter().map(|(q, a)| (q.as_str(), *a)).collect();
    assert_eq!(visitor(&t, &path, &fields).await.status, StatusCode::OK);
    let scored = t.get(&format!("/api/v1/records/service_request/{request_id}")).await.expect(200);
    assert_eq!(
        (&scored["satisfaction"], &scored["satisfaction_comment"]),
        (&json!("satisfied"), &json!("工程师很耐心"))
    );
    let responses =
        t.list("survey_response", Some(json!({"field": "service_request", "op": "eq", "value": request_id})), "").await;
    assert_eq!(responses.expect(200)["data"].as_array().map(Vec::len), Some(1), "the response names the request");
    let page = b.page(&format!("/e/service_request/{request_id}")).await;
    assert!(page.contains("满意") && page.contains("工程师很耐心"), "shown on the request");
}
