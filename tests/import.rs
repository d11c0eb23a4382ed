//! Import and export on SQLite and PostgreSQL: real XLSX and CSV files built here (dates,
//! numbers, a formula, merged cells, a byte-order mark, GB18030 text) imported through the API
//! as background tasks in each mode, bad files refused with nothing written, the failed-rows
//! report, and exports as XLSX (read back with calamine) and CSV within the caller's scope.

mod support;

use std::io::Cursor;
use std::time::Duration;

use axum::http::Method;
use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use serde_json::{Value, json};
use support::{Reply, TestApp, encode};

backends!(
    a_thousand_customers_from_a_workbook,
    update_and_skip_by_key,
    likely_duplicates_are_skipped,
    all_or_nothing_and_the_good_rows,
    more_rows_than_one_unit_takes,
    the_mapping_is_proposed_and_remembered,
    lookups_and_owners_by_their_names,
    bad_files_are_refused_and_nothing_is_written,
    import_needs_its_permission,
    exports_are_typed_scoped_and_without_hidden_fields,
    the_screens_offer_import_and_export,
);

const BOUNDARY: &str = "crm-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart form: the file under `file`, then text fields.
fn form(file_name: &str, file: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(t: &TestApp, token: Option<&str>, file_name: &str, file: &[u8], fields: &[(&str, &str)]) -> Reply {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let token = token.unwrap_or(t.token.as_str());
    t.raw(
        Method::POST,
        "/api/v1/records/customer/import",
        form(file_name, file, fields),
        Some(&content_type),
        Some(token),
    )
    .await
}

/// Starts an import and waits for its task to end; the task.
async fn import(t: &TestApp, file_name: &str, file: &[u8], fields: &[(&str, &str)]) -> Value {
    let started = upload(t, None, file_name, file, fields).await.expect(202);
    let id = started["task"].as_str().expect("a task id").to_owned();
    for _ in 0..1200 {
        let task = t.get(&format!("/api/v1/tasks/{id}")).await.expect(200);
        if task["state"] != "running" {
            assert_eq!(task["state"], "done", "the import ends well: {task:#}");
            assert_eq!(task["kind"], "import");
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not end");
}

async fn count(t: &TestApp) -> i64 {
    t.get("/api/v1/records/customer?count=true&limit=1").await.expect(200)["total"].as_i64().unwrap()
}

async fn by_name(t: &TestApp, name: &str) -> Value {
    let filter = encode(&json!({"field": "name", "op": "eq", "value": name}).to_string());
    let page = t.get(&format!("/api/v1/records/customer?filter={filter}")).await.expect(200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "one {name}: {page}");
    page["data"][0].clone()
}

async fn add_field(t: &TestApp, field: Value) {
    t.post("/api/v1/meta/entities/customer/fields", field).await.expect(201);
}

/// CSV text with a byte-order mark, as Excel saves "CSV UTF-8".
fn csv(text: &str) -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// A workbook of customers: dates, money, a formula with its value, a number in a text column,
/// a merged cell, an empty row.
fn customers_workbook(rows: u32) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (i, header) in ["客户名称", "所属行业", "年收入", "成立日期", "邮编", "地址", "备注"].iter().enumerate()
    {
        sheet.write_string(0, i as u16, *header).unwrap();
    }
    for r in 1..=rows {
        sheet.write_string(r, 0, format!("导入客户{r:04}")).unwrap();
        sheet.write_string(r, 1, if r % 2 == 0 { "软件与信息技术" } else { "manufacturing" }).unwrap();
        sheet.write_number(r, 2, f64::from(r) * 1000.5).unwrap();
        let founded = ExcelDateTime::from_ymd(2020, 1 + (r % 12) as u8, 1 + (r % 28) as u8).unwrap();
        sheet.write_datetime_with_format(r, 3, &founded, &date).unwrap();
        sheet.write_number(r, 4, 100080.0).unwrap();
    }
    // The first row's revenue is a formula Excel calculated.
    sheet.write_formula(1, 2, Formula::new("=1000*2").set_result("2000")).unwrap();
    // Two rows share an address: the value is the top-left cell's.
    sheet.merge_range(1, 5, 2, 5, "北京市海淀区中关村大街1号", &Format::new()).unwrap();
    // An empty row in the middle is skipped.
    sheet.write_string(rows + 2, 0, "空行之后的客户").unwrap();
    book.save_to_buffer().unwrap()
}

async fn a_thousand_customers_from_a_workbook(t: TestApp) {
    add_field(&t, json!({"name": "founded", "type": "date", "label": {"zh-CN": "成立日期", "en": "Founded"}})).await;
    let before = count(&t).await;
    let file = customers_workbook(1000);

    let preview = upload(&t, None, "客户.xlsx", &file, &[("preview", "true")]).await.expect(200);
    let fields: Vec<Value> = preview["columns"].as_array().unwrap().iter().map(|c| c["field"].clone()).collect();
    assert_eq!(
        fields,
        [
            json!("name"),
            json!("industry"),
            json!("annual_revenue"),
            json!("founded"),
            json!("postcode"),
            json!("address"),
            json!("remark")
        ],
        "proposed from the Chinese labels"
    );
    assert_eq!(preview["total_rows"], 1001, "the row after the empty one counts, the empty one not");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 20);
    assert!(preview["rows"].as_array().unwrap().iter().all(|r| r["outcome"] == "create"), "{preview:#}");
    assert_eq!(preview["notes"][0]["range"], "F2:F3");
    assert!(preview["notes"][0]["zh-CN"].as_str().unwrap().contains("合并单元格"));
    assert_eq!(count(&t).await, before, "a preview writes nothing");

    let task = import(&t, "客户.xlsx", &file, &[]).await;
    let result = &task["result"];
    assert_eq!(result["created"], 1001, "{result:#}");
    assert_eq!(result["failed"], 0);
    assert_eq!(task["done"], task["total"]);
    assert_eq!(count(&t).await, before + 1001);

    let first = by_name(&t, "导入客户0001").await;
    assert_eq!(first["annual_revenue"], "2000.00", "the formula's calculated value");
    assert_eq!(first["industry"], "manufacturing");
    assert_eq!(first["founded"], "2020-02-02", "an Excel date");
    assert_eq!(first["postcode"], "100080", "a number in a text field, without .0");
    assert_eq!(first["address"], "北京市海淀区中关村大街1号");
    let second = by_name(&t, "导入客户0002").await;
    assert_eq!(second["industry"], "software", "a choice by its label");
    assert_eq!(second["annual_revenue"], "2001.00");
    assert!(second["address"].is_null(), "the merged cell's other part is empty");
    let audit = t.get(&format!("/api/v1/audit?record_id={}", first["id"].as_str().unwrap())).await.expect(200);
    assert!(audit.to_string().contains("\"import\""), "the audit names the source: {audit}");
}

async fn update_and_skip_by_key(t: TestApp) {
    add_field(
        &t,
        json!({"name": "tax_no", "type": "text", "unique": true, "label": {"zh-CN": "税号", "en": "Tax no."}}),
    )
    .await;
    t.create("customer", json!({"name": "甲公司", "tax_no": "T001", "annual_revenue": "1"})).await;
    t.create("customer", json!({"name": "乙公司", "tax_no": "T002", "annual_revenue": "2"})).await;
    let file = csv("税号,客户名称,年收入\nT001,甲公司（新）,100\nT002,乙公司,2\nT003,丙公司,300\n");

    let reported = import(&t, "a.csv", &file, &[("mode", "update"), ("key", "tax_no")]).await;
    let result = &reported["result"];
    assert_eq!((result["updated"].as_i64(), result["skipped"].as_i64()), (Some(1), Some(1)), "{result:#}");
    assert_eq!(result["failed"], 1, "no record has T003");
    assert_eq!(result["failures"][0]["row"], 4);
    assert_eq!(result["failures"][0]["reasons"][0]["code"], "import_no_match");
    assert_eq!(by_name(&t, "甲公司（新）").await["annual_revenue"], "100.00");

    let created = import(&t, "a.csv", &file, &[("mode", "update"), ("key", "tax_no"), ("unmatched", "create")]).await;
    assert_eq!(created["result"]["created"], 1);
    assert_eq!(by_name(&t, "丙公司").await["tax_no"], "T003");

    let file = csv("税号,客户名称\nT001,甲公司（再）\nT004,丁公司\n");
    let skipped = import(&t, "b.csv", &file, &[("mode", "skip"), ("key", "tax_no")]).await;
    assert_eq!((skipped["result"]["skipped"].as_i64(), skipped["result"]["created"].as_i64()), (Some(1), Some(1)));
    by_name(&t, "甲公司（新）").await;
    by_name(&t, "丁公司").await;

    // By id: the id column finds the record.
    let id = by_name(&t, "丁公司").await["id"].as_str().unwrap().to_owned();
    let file = csv(&format!("ID,客户名称\n{id},丁公司（改）\n"));
    let by_id = import(&t, "c.csv", &file, &[("mode", "update"), ("key", "id")]).await;
    assert_eq!(by_id["result"]["updated"], 1, "{by_id:#}");
    by_name(&t, "丁公司（改）").await;
}

/// `skip_duplicates`: rows the customer's duplicate rule finds a likely duplicate of a stored
/// customer for (another spelling of the name, the phone written another way) are left out.
async fn likely_duplicates_are_skipped(t: TestApp) {
    t.create("customer", json!({"name": "北京立友信科技有限公司", "phone": "010-62345678"})).await;
    t.run_jobs().await;
    let file = csv("客户名称,电话\n立友信科技（北京）有限公司,+86 10 6234 5678\n深圳华强电子有限公司,0755-83000000\n");
    let done = import(&t, "d.csv", &file, &[("mode", "skip_duplicates")]).await;
    let result = &done["result"];
    assert_eq!((result["skipped"].as_i64(), result["created"].as_i64()), (Some(1), Some(1)), "{result:#}");
    by_name(&t, "深圳华强电子有限公司").await;
    assert_eq!(count(&t).await, 2);
}

async fn all_or_nothing_and_the_good_rows(t: TestApp) {
    let before = count(&t).await;
    let file =
        csv("客户名称,电子邮件\n好一,a@example.com\n=1+1,not-an-email\n好二,\n,b@example.com\n好三,c@example.com\n");

    let refused = import(&t, "a.csv", &file, &[("all_or_nothing", "true")]).await;
    let result = &refused["result"];
    assert_eq!(result["written"], false, "{result:#}");
    assert_eq!(result["failed"], 2, "a bad email, a missing name");
    assert_eq!(count(&t).await, before, "nothing is written");

    let good = import(&t, "a.csv", &file, &[("all_or_nothing", "false")]).await;
    let result = &good["result"];
    assert_eq!((result["created"].as_i64(), result["failed"].as_i64()), (Some(3), Some(2)), "{result:#}");
    assert_eq!(count(&t).await, before + 3, "exactly the good rows");
    let rows: Vec<i64> = result["failures"].as_array().unwrap().iter().map(|f| f["row"].as_i64().unwrap()).collect();
    assert_eq!(rows, [3, 5]);
    assert_eq!(result["failures"][0]["reasons"][0]["code"], "invalid_email");
    assert!(result["failures"][0]["reasons"][0]["zh-CN"].as_str().unwrap().starts_with("电子邮件"));
    assert_eq!(result["failures"][1]["reasons"][0]["code"], "required");

    let id = good["id"].as_str().unwrap();
    let report = t.get(&format!("/api/v1/tasks/{id}/report.csv")).await;
    assert_eq!(report.status, 200);
    assert!(report.content_type.as_deref().unwrap().starts_with("text/csv"));
    let text = String::from_utf8(report.bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and the two bad rows: {text}");
    assert!(lines[0].contains("客户名称") && lines[0].contains("失败原因"));
    assert!(lines[1].starts_with("'=1+1,not-an-email,3,"), "the cell neutralised: {}", lines[1]);
    let english = t.get(&format!("/api/v1/tasks/{id}/report.csv?locale=en")).await;
    assert!(String::from_utf8(english.bytes).unwrap().contains("Email: not an email address"));
}

/// A file of more rows than one unit writes: all or nothing checks every unit before the first
/// commits, and the good rows of every unit are written otherwise.
async fn more_rows_than_one_unit_takes(t: TestApp) {
    let before = count(&t).await;
    let rows = crm::records::MAX_IMPORT + 5;
    let mut text = String::from("客户名称,电子邮件\n");
    for i in 0..rows {
        let email = if i == rows - 2 { "bad".to_owned() } else { format!("c{i}@example.com") };
        text.push_str(&format!("大批客户{i:05},{email}\n"));
    }
    let file = csv(&text);
    let refused = import(&t, "big.csv", &file, &[("all_or_nothing", "true")]).await;
    assert_eq!((refused["result"]["written"].as_bool(), refused["result"]["failed"].as_i64()), (Some(false), Some(1)));
    assert_eq!(count(&t).await, before, "the bad row in the last unit kept the first unit out too");

    let good = import(&t, "big.csv", &file, &[]).await;
    assert_eq!(good["result"]["created"].as_u64(), Some(rows as u64 - 1), "{:#}", good["result"]["failures"]);
    assert_eq!(good["result"]["failures"][0]["row"], rows as u64);
    assert_eq!(count(&t).await, before + rows as i64 - 1);
}

async fn the_mapping_is_proposed_and_remembered(t: TestApp) {
    let file = csv("客户名称, Industry ,联系电话X,Remarks\n映射公司,软件与信息技术,010-62345678,备注一\n");
    let preview = upload(&t, None, "m.csv", &file, &[("preview", "true")]).await.expect(200);
    let fields: Vec<Value> = preview["columns"].as_array().unwrap().iter().map(|c| c["field"].clone()).collect();
    assert_eq!(fields, [json!("name"), json!("industry"), Value::Null, json!("remark")]);
    assert!(
        preview["fields"].as_array().unwrap().iter().any(|f| f["name"] == "phone" && f["label"]["zh-CN"] == "电话")
    );

    let mapping =
        json!({"客户名称": "name", "Industry": "industry", "联系电话X": "phone", "Remarks": null}).to_string();
    let task = import(&t, "m.csv", &file, &[("mapping", &mapping)]).await;
    assert_eq!(task["result"]["created"], 1);
    let record = by_name(&t, "映射公司").await;
    assert_eq!(record["phone"], "010-62345678");
    assert!(record["remark"].is_null(), "a column mapped to nothing is not imported");

    let again = upload(&t, None, "m.csv", &file, &[("preview", "true")]).await.expect(200);
    let fields: Vec<Value> = again["columns"].as_array().unwrap().iter().map(|c| c["field"].clone()).collect();
    assert_eq!(fields, [json!("name"), json!("industry"), json!("phone"), Value::Null], "remembered");

    // GB18030 text, as Excel on a Chinese Windows saves CSV.
    let (gbk, _, _) = encoding_rs::GB18030.encode("客户名称,地址\n国标公司,上海市浦东新区\n");
    let task = import(&t, "gbk.csv", &gbk, &[]).await;
    assert_eq!(task["result"]["created"], 1, "{task:#}");
    assert_eq!(by_name(&t, "国标公司").await["address"], "上海市浦东新区");

    let unknown = json!({"客户名称": "no_such_field"}).to_string();
    let refused = upload(&t, None, "m.csv", &file, &[("mapping", &unknown), ("preview", "true")]).await.expect(422);
    assert_eq!(refused["errors"][0]["code"], "import_mapping");
}

async fn lookups_and_owners_by_their_names(t: TestApp) {
    let (rep_id, _) = t.user("rep1", &["sales_rep"], None).await;
    t.create("customer", json!({"name": "集团总部"})).await;
    t.create("customer", json!({"name": "同名公司"})).await;
    t.create("customer", json!({"name": "同名公司"})).await;
    let file = csv("客户名称,上级客户,所有者\n分公司甲,集团总部,rep1\n分公司乙,同名公司,\n分公司丙,不存在的公司,\n");
    let task = import(&t, "a.csv", &file, &[]).await;
    let result = &task["result"];
    assert_eq!((result["created"].as_i64(), result["failed"].as_i64()), (Some(1), Some(2)), "{result:#}");
    let codes: Vec<&str> =
        result["failures"].as_array().unwrap().iter().map(|f| f["reasons"][0]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["import_ambiguous", "import_no_record"]);
    let branch = by_name(&t, "分公司甲").await;
    assert_eq!(branch["parent"], by_name(&t, "集团总部").await["id"], "the parent by its name");
    assert_eq!(branch["owner"].as_str(), Some(rep_id.as_str()), "the owner by the user's name");
}

async fn bad_files_are_refused_and_nothing_is_written(t: TestApp) {
    let before = count(&t).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let refused = upload(&t, None, "客户.xlsx", png, &[]).await.expect(400);
    assert_eq!(refused["code"], "import_not_xlsx");
    assert_eq!(refused["status"], 400);
    let refused = upload(&t, None, "logo.png", png, &[]).await.expect(400);
    assert_eq!(refused["code"], "import_unsupported");

    let whole = customers_workbook(50);
    let truncated = &whole[..whole.len() / 2];
    let refused = upload(&t, None, "客户.xlsx", truncated, &[]).await.expect(400);
    assert_eq!(refused["code"], "import_broken", "{refused}");
    // A formula whose value is an Excel error is the row's error, named by its column.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "客户名称").unwrap();
    sheet.write_string(0, 1, "年收入").unwrap();
    sheet.write_string(1, 0, "除零公司").unwrap();
    sheet.write_formula(1, 1, Formula::new("=1/0").set_result("#DIV/0!")).unwrap();
    let preview = upload(&t, None, "e.xlsx", &book.save_to_buffer().unwrap(), &[("preview", "true")]).await.expect(200);
    assert_eq!(preview["rows"][0]["outcome"], "fail");
    assert_eq!(preview["rows"][0]["reasons"][0]["code"], "import_cell_error");
    assert_eq!(preview["rows"][0]["reasons"][0]["column"], "年收入");
    let refused = upload(&t, None, "empty.csv", b"", &[]).await.expect(400);
    assert_eq!(refused["code"], "import_no_header");
    let refused = upload(&t, None, "a.csv", &csv("客户名称\n甲\n"), &[("mode", "update")]).await.expect(400);
    assert_eq!(refused["code"], "import_key", "updating needs a key column");
    assert_eq!(count(&t).await, before);

    // A body announced at 200 MB is refused before it is sent.
    let base = t.serve().await;
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/records/customer/import HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 209715200\r\n\r\n",
        t.token
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&form("big.csv", b"a,b\n", &[])[..64]).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(count(&t).await, before);
}

async fn import_needs_its_permission(t: TestApp) {
    let (_, rep) = t.user("rep1", &["sales_rep"], None).await;
    let file = csv("客户名称\n越权公司\n");
    let refused = upload(&t, Some(&rep), "a.csv", &file, &[]).await.expect(403);
    assert_eq!(refused["status"], 403);
    let refused = upload(&t, Some(&rep), "a.csv", &file, &[("preview", "true")]).await;
    assert_eq!(refused.status, 403);

    let task = import(&t, "a.csv", &file, &[]).await;
    let id = task["id"].as_str().unwrap();
    let theirs = t.call(Method::GET, &format!("/api/v1/tasks/{id}/report.csv"), None, Some(&rep)).await;
    assert_eq!(theirs.status, 404, "another's report is not there for a rep");
}

async fn exports_are_typed_scoped_and_without_hidden_fields(t: TestApp) {
    add_field(&t, json!({"name": "founded", "type": "date", "label": {"zh-CN": "成立日期", "en": "Founded"}})).await;
    add_field(
        &t,
        json!({"name": "secret_note", "type": "text", "label": {"zh-CN": "内部备注", "en": "Internal note"}}),
    )
    .await;
    let mut role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
    role["entities"]["customer"]["fields"]["secret_note"] = json!("hidden");
    t.put("/api/v1/meta/roles/sales_rep", role).await.expect(200);
    let (rep_id, rep) = t.user("rep1", &["sales_rep"], None).await;
    for (name, owner) in [("=1+1", &rep_id), ("@SUM(A1)", &rep_id), ("别人的客户", &String::new())] {
        let mut body = json!({"name": name, "industry": "software", "annual_revenue": "1234.50",
                              "founded": "2021-03-04", "secret_note": "暗号青龙"});
        if !owner.is_empty() {
            body["owner"] = json!(owner);
        }
        t.create("customer", body).await;
    }

    let fields = "name,industry,annual_revenue,founded,secret_note,created_at";
    let admin = t.get(&format!("/api/v1/records/customer/export?format=xlsx&sort=name&fields={fields}")).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(admin.content_type.as_deref().unwrap().starts_with("application/vnd.openxmlformats"));

    let fields = "name,industry,annual_revenue,founded,created_at";
    let reply = t
        .call(
            Method::GET,
            &format!("/api/v1/records/customer/export?format=xlsx&sort=name&fields={fields}"),
            None,
            Some(&rep),
        )
        .await;
    assert_eq!(reply.status, 200);
    let mut book = Xlsx::new(Cursor::new(reply.bytes)).expect("a workbook");
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(
        rows[0],
        [
            Data::String("客户名称".into()),
            Data::String("所属行业".into()),
            Data::String("年收入".into()),
            Data::String("成立日期".into()),
            Data::String("创建时间".into())
        ]
        .as_slice(),
        "labels"
    );
    let list = t.call(Method::GET, "/api/v1/records/customer?sort=name", None, Some(&rep)).await.expect(200);
    let listed: Vec<String> =
        list["data"].as_array().unwrap().iter().map(|r| format!("'{}", r["name"].as_str().unwrap())).collect();
    let exported: Vec<String> = rows[1..].iter().map(|r| r[0].to_string()).collect();
    assert_eq!(exported, listed, "the rep's own records, as the list has them, neutralised");
    assert_eq!(rows[1][1], Data::String("软件与信息技术".into()), "a choice by its label");
    assert_eq!(rows[1][2], Data::Float(1234.5), "money as a number");
    match &rows[1][3] {
        Data::DateTime(d) => assert_eq!(d.as_datetime().unwrap().date().to_string(), "2021-03-04"),
        other => panic!("a date cell, not {other:?}"),
    }
    assert!(matches!(rows[1][4], Data::DateTime(_)), "a datetime cell");
    let hidden = t
        .call(Method::GET, "/api/v1/records/customer/export?format=xlsx&fields=name,secret_note", None, Some(&rep))
        .await;
    assert_eq!(hidden.status, 400, "a hidden field does not exist for the rep");
    let all = t.call(Method::GET, "/api/v1/records/customer/export?format=xlsx", None, Some(&rep)).await;
    let mut book = Xlsx::new(Cursor::new(all.bytes)).unwrap();
    let header = book.worksheet_range_at(0).unwrap().unwrap().rows().next().unwrap().to_vec();
    assert!(!header.contains(&Data::String("内部备注".into())), "hidden fields are never exported");

    let csv =
        t.call(Method::GET, "/api/v1/records/customer/export?format=csv&sort=name&fields=name", None, Some(&rep)).await;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.bytes).unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(text.contains("'=1+1") && text.contains("'@SUM(A1)"), "{text}");
    assert!(!text.contains("别人的客户"), "another's record is out of the rep's scope");
    let none = encode(&json!({"field": "name", "op": "eq", "value": "没有这个客户"}).to_string());
    let empty = t.get(&format!("/api/v1/records/customer/export?format=csv&fields=name&filter={none}")).await;
    assert_eq!(String::from_utf8(empty.bytes).unwrap(), "\u{feff}客户名称\n", "an empty list is its header");
    let empty = t.get(&format!("/api/v1/records/customer/export?format=xlsx&filter={none}")).await;
    let mut book = Xlsx::new(Cursor::new(empty.bytes)).unwrap();
    assert_eq!(book.worksheet_range_at(0).unwrap().unwrap().height(), 1, "the header row alone");
    assert_eq!(book.sheet_names().len(), 1);
}

/// A session cookie for a user, as a browser has after signing in.
async fn session(t: &TestApp, user: &str) -> String {
    let id = uuid::Uuid::parse_str(user).unwrap();
    let (cookie, _) = crm::auth::open_session(&t.app, id).await.unwrap();
    format!("crm_session={cookie}")
}

async fn the_screens_offer_import_and_export(t: TestApp) {
    let (rep_id, _) = t.user("rep1", &["sales_rep"], None).await;
    let (admin_id, _) = t.user("boss", &["administrator"], None).await;
    t.create("customer", json!({"name": "=HYPERLINK(\"x\")", "industry": "software", "owner": rep_id})).await;
    let admin = session(&t, &admin_id).await;
    let list = t.page(Method::GET, "/e/customer", &admin, None).await;
    assert!(list.text.contains("href=\"/e/customer/import\""), "an import button");
    assert!(list.text.contains("导出 Excel") && list.text.contains("导出 CSV"));

    let page = t.page(Method::GET, "/e/customer/import", &admin, None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("导入客户") && page.text.contains("选择文件"), "Chinese first");
    assert!(page.text.contains("还没有选择文件"), "an empty state that says what to do");
    let texts = page.text.split("id=\"import-texts\">").nth(1).and_then(|rest| rest.split("</script>").next()).unwrap();
    let texts: serde_json::Map<String, Value> = serde_json::from_str(texts).expect("the script's texts");
    assert!(texts.iter().all(|(key, text)| text.as_str() != Some(key.as_str())), "no raw keys: {texts:?}");
    assert!(
        page.text.contains("文件名是 .xlsx，但内容不是 Excel 工作簿"),
        "errors explained in Chinese for the script"
    );

    let rep = session(&t, &rep_id).await;
    let list = t.page(Method::GET, "/e/customer", &rep, None).await;
    assert!(!list.text.contains("/e/customer/import"), "no import button without the permission");
    assert!(list.text.contains("export.xlsx"));
    assert_eq!(t.page(Method::GET, "/e/customer/import", &rep, None).await.status, 403);

    let csv = t.page(Method::GET, "/e/customer/export.csv", &rep, None).await;
    assert!(csv.text.contains("'=HYPERLINK"), "{}", csv.text);
    let xlsx = t.page(Method::GET, "/e/customer/export.xlsx?f_industry=software", &rep, None).await;
    assert_eq!(xlsx.status, 200);
    assert_eq!(xlsx.content_type.as_deref(), Some(crm::export::XLSX_TYPE));
}
