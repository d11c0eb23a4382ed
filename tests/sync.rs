//! ERP sync (I-1, B-7, O-3) against a real MariaDB server (127.0.0.1:3306) holding a T6-like
//! schema the test creates in a GBK database — codes with leading zeros, names padded with
//! spaces, grades as codes, dates as `yyyymmdd` text — with the CRM on SQLite and
//! PostgreSQL: a dry run changes nothing; a first full sync makes the records (a row that
//! does not fit fails alone); a second run changes nothing; an incremental run reads only the
//! changed rows; a changed code table compares every row again; a row deleted in the ERP
//! sends its record to the recycle bin; orders made here are written to the ERP, and what
//! the ERP shipped, invoiced and was paid is read back onto them.

mod support;

use std::process::Command;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::TestApp;
use support::browser::{Browser, between, unescaped};

backends!(
    customers_come_from_the_erp,
    orders_go_to_the_erp_and_their_execution_comes_back,
    the_studio_connects_and_runs_a_mapping,
    a_scheduled_sync_runs_on_one_node,
);

/// A database of its own on the MariaDB server, with a user of its own (named after it, with
/// the password `s3cret`), both dropped at the end.
struct Erp {
    name: String,
}

impl Erp {
    fn new() -> Self {
        start_mariadb();
        let name = format!("crm_erp_{}", uuid::Uuid::now_v7().simple());
        mariadb(
            None,
            &format!(
                "CREATE DATABASE {name} CHARACTER SET gbk; CREATE USER '{name}'@'%' IDENTIFIED BY 's3cret'; \
                 GRANT ALL ON {name}.* TO '{name}'@'%'"
            ),
        );
        Erp { name }
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.name)
    }

    /// Runs statements; answers the rows printed, tab-separated.
    fn sql(&self, statements: &str) -> String {
        mariadb(Some(&self.name), statements)
    }
}

impl Drop for Erp {
    fn drop(&mut self) {
        mariadb(None, &format!("DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%'", self.name));
    }
}

fn mariadb(database: Option<&str>, statements: &str) -> String {
    let mut command = Command::new("mariadb");
    command.args(["-h127.0.0.1", "-P3306", "-uroot", "--default-character-set=utf8mb4", "-N", "-B"]);
    if let Some(database) = database {
        command.arg(database);
    }
    let out = command.arg("-e").arg(statements).output().expect("the mariadb client runs");
    assert!(out.status.success(), "{statements}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Starts the machine's MariaDB server when it is not running (CI does the same).
fn start_mariadb() {
    let up = || {
        Command::new("mysqladmin").args(["-h127.0.0.1", "-uroot", "ping"]).output().is_ok_and(|o| o.status.success())
    };
    if !up() {
        let _ = Command::new("service").args(["mariadb", "start"]).status();
        for _ in 0..30 {
            if up() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

async fn connect(t: &TestApp, erp: &Erp) {
    let answer = t.put("/api/v1/sync/connections/t6", json!({"url": erp.url()})).await.expect(200);
    assert_eq!(answer["address"], format!("mysql://root:***@127.0.0.1:3306/{}", erp.name));
}

async fn run(t: &TestApp, name: &str, options: Value) -> Value {
    let mut body = options;
    body["wait"] = json!(true);
    let run = t.post(&format!("/api/v1/sync/{name}/runs"), body).await.expect(201);
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

fn counts(run: &Value) -> (i64, i64, i64, i64, i64) {
    let c = &run["counts"];
    let n = |k: &str| c[k].as_i64().unwrap_or(-1);
    (n("created"), n("updated"), n("deleted"), n("unchanged"), n("failed"))
}

/// The live customer of a name, or null.
async fn customer(t: &TestApp, name: &str) -> Value {
    let list = t.list("customer", Some(json!({"field": "name", "op": "eq", "value": name})), "").await.expect(200);
    list["data"][0].clone()
}

const T6: &str = "
CREATE TABLE Person (
    cPersonCode VARCHAR(20) NOT NULL PRIMARY KEY,
    cPersonName VARCHAR(40) NOT NULL,
    cPersonEmail VARCHAR(60)
) DEFAULT CHARSET=gbk;
CREATE TABLE Customer (
    cCusCode VARCHAR(20) NOT NULL PRIMARY KEY,
    cCusName VARCHAR(98) NOT NULL,
    cCusGrade CHAR(4),
    cCusPhone VARCHAR(40),
    iCusCreLine DECIMAL(18, 2),
    cCusPPerson VARCHAR(20),
    dModifyDate DATETIME NOT NULL
) DEFAULT CHARSET=gbk;
INSERT INTO Person VALUES ('0101', '张三', 'zhangsan@example.cn'), ('0102', '李四', NULL);
INSERT INTO Customer VALUES
    ('0001', '北京立友信科技有限公司   ', '01', '010-62345678', 500000.00, '0101', '2026-11-01 09:00:00'),
    ('0002', '上海华东机电设备有限公司', '02', NULL, 120000.50, '0102', '2026-11-02 09:00:00'),
    ('0003', '深圳立友电子有限公司', '03', '0755-86001234', NULL, '0101', '2026-11-03 09:00:00'),
    ('0004', '杭州西湖茶业有限公司', '09', NULL, NULL, '0102', '2026-11-04 09:00:00');
";

fn people() -> Value {
    json!({
        "name": "erp_people",
        "label": {"zh-CN": "职员档案", "en": "Employees"},
        "connection": "t6",
        "entity": "user",
        "table": "Person",
        "key": {"column": "cPersonCode", "field": "employee_no"},
        "fields": [
            {"field": "name", "column": "cPersonName"},
            {"field": "login", "column": "cPersonCode"},
            {"field": "email", "column": "cPersonEmail"}
        ]
    })
}

fn customers(codes: Value) -> Value {
    json!({
        "name": "erp_customers",
        "label": {"zh-CN": "往来单位", "en": "Customers"},
        "connection": "t6",
        "entity": "customer",
        "table": "Customer",
        "key": {"column": "cCusCode"},
        "watermark": "dModifyDate",
        "fields": [
            {"field": "name", "column": "cCusName"},
            {"field": "class", "column": "cCusGrade", "codes": codes},
            {"field": "phone", "column": "cCusPhone"},
            {"field": "credit_limit", "column": "iCusCreLine"},
            {"field": "owner", "column": "cCusPPerson", "via": "erp_people"}
        ]
    })
}

async fn customers_come_from_the_erp(t: TestApp) {
    let erp = Erp::new();
    erp.sql(T6);
    connect(&t, &erp).await;
    t.put("/api/v1/meta/syncs/erp_people", people()).await.expect(200);
    let grades = json!({"01": "key", "02": "normal", "03": "small"});
    t.put("/api/v1/meta/syncs/erp_customers", customers(grades)).await.expect(200);
    // A mapping onto a field that is not there is refused before anything runs.
    let mut wrong = customers(json!({}));
    wrong["fields"][0]["field"] = json!("full_name");
    let refused = t.put("/api/v1/meta/syncs/erp_customers", wrong).await.expect(422);
    assert!(refused.to_string().contains("full_name"), "{refused}");

    // A dry run says what would change, and changes nothing.
    run(&t, "erp_people", json!({})).await;
    let dry = run(&t, "erp_customers", json!({"dry_run": true})).await;
    assert_eq!(counts(&dry), (3, 0, 0, 0, 1), "{dry}");
    let planned = dry["changes"].as_array().unwrap();
    assert!(planned.iter().any(|c| c["code"] == "0001" && c["changes"]["name"] == "北京立友信科技有限公司"));
    assert!(customer(&t, "北京立友信科技有限公司").await.is_null());

    // The first run makes three customers; the fourth's grade is not in the code table and
    // fails alone, saying why.
    let first = run(&t, "erp_customers", json!({})).await;
    assert_eq!(counts(&first), (3, 0, 0, 0, 1), "{first}");
    assert_eq!(first["errors"][0]["code"], "0004");
    assert!(first["errors"][0]["message"].as_str().unwrap().contains("`09`"), "{first}");
    let liyou = customer(&t, "北京立友信科技有限公司").await;
    assert_eq!(liyou["class"], "key");
    assert_eq!(liyou["credit_limit"], "500000.00");
    let zhang =
        t.list("user", Some(json!({"field": "employee_no", "op": "eq", "value": "0101"})), "").await.expect(200);
    assert_eq!(zhang["data"][0]["name"], "张三");
    assert_eq!(liyou["owner"], zhang["data"][0]["id"]);
    let history =
        t.get(&format!("/api/v1/records/customer/{}/history", liyou["id"].as_str().unwrap())).await.expect(200);
    assert!(history.to_string().contains("\"sync\""), "{history}");

    // Running again changes nothing: same versions, the failing row still failing.
    let again = run(&t, "erp_customers", json!({})).await;
    assert_eq!(
        (again["counts"]["created"].as_i64(), again["counts"]["updated"].as_i64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(customer(&t, "北京立友信科技有限公司").await["version"], liyou["version"]);

    // A changed code table compares every row again: 09 now has a meaning, 03 another one.
    let grades = json!({"01": "key", "02": "normal", "03": "normal", "09": "small"});
    t.put("/api/v1/meta/syncs/erp_customers", customers(grades)).await.expect(200);
    let remapped = run(&t, "erp_customers", json!({})).await;
    assert_eq!(remapped["full"], true);
    assert_eq!(counts(&remapped), (1, 1, 0, 2, 0), "{remapped}");
    assert_eq!(customer(&t, "深圳立友电子有限公司").await["class"], "normal");
    assert_eq!(customer(&t, "杭州西湖茶业有限公司").await["class"], "small");

    // An incremental run reads only what changed since (and the last row read before, again).
    erp.sql(
        "UPDATE Customer SET cCusPhone = '021-51234567', dModifyDate = '2026-11-20 10:00:00' WHERE cCusCode = '0002'",
    );
    let incremental = run(&t, "erp_customers", json!({})).await;
    assert_eq!(incremental["full"], false);
    assert_eq!(incremental["counts"]["read"], 2, "{incremental}");
    assert_eq!(counts(&incremental), (0, 1, 0, 1, 0));
    assert_eq!(customer(&t, "上海华东机电设备有限公司").await["phone"], "021-51234567");

    // A row deleted in the ERP is seen by a full compare: its customer goes to the recycle bin.
    erp.sql("DELETE FROM Customer WHERE cCusCode = '0003'");
    let full = run(&t, "erp_customers", json!({"full": true})).await;
    assert_eq!(counts(&full), (0, 0, 1, 3, 0), "{full}");
    assert!(customer(&t, "深圳立友电子有限公司").await.is_null());
    let bin = t.list(
        "customer",
        Some(json!({"field": "name", "op": "eq", "value": "深圳立友电子有限公司"})),
        "&deleted=true",
    );
    assert_eq!(bin.await.expect(200)["data"].as_array().unwrap().len(), 1);

    // The history keeps every run, newest first.
    let runs = t.get("/api/v1/sync/erp_customers/runs").await.expect(200);
    assert_eq!(runs.as_array().unwrap().len(), 6);
    assert_eq!(runs[0]["id"], full["id"]);
    assert_eq!(runs[5]["dry_run"], true);
}

async fn orders_go_to_the_erp_and_their_execution_comes_back(t: TestApp) {
    let erp = Erp::new();
    erp.sql(T6);
    erp.sql(
        "CREATE TABLE SO_SOMain (
            cSOCode VARCHAR(30) NOT NULL PRIMARY KEY,
            cCusCode VARCHAR(20) NOT NULL,
            dDate CHAR(8),
            cSOName VARCHAR(100),
            iSum DECIMAL(18, 2),
            iShipSum DECIMAL(18, 2),
            iInvSum DECIMAL(18, 2),
            cPayState CHAR(1)
        ) DEFAULT CHARSET=gbk;
        INSERT INTO SO_SOMain VALUES ('T6-0009', '0002', '20261101', '门店补货', 800, 800, 0, '0');",
    );
    connect(&t, &erp).await;
    t.put("/api/v1/meta/syncs/erp_people", people()).await.expect(200);
    t.put(
        "/api/v1/meta/syncs/erp_customers",
        customers(json!({"01": "key", "02": "normal", "03": "small", "09": "small"})),
    )
    .await
    .expect(200);
    t.put(
        "/api/v1/meta/syncs/orders_to_erp",
        json!({
            "name": "orders_to_erp",
            "label": {"zh-CN": "销售订单（传ERP）", "en": "Orders to the ERP"},
            "connection": "t6",
            "entity": "order",
            "direction": "to_erp",
            "table": "SO_SOMain",
            "key": {"column": "cSOCode", "field": "code"},
            "filter": {"field": "payment_terms", "op": "is_null", "value": false},
            "fields": [
                {"field": "customer", "column": "cCusCode", "via": "erp_customers"},
                {"field": "order_date", "column": "dDate", "date_format": "%Y%m%d"},
                {"field": "name", "column": "cSOName"},
                {"field": "total_amount", "column": "iSum"}
            ]
        }),
    )
    .await
    .expect(200);
    t.put(
        "/api/v1/meta/syncs/erp_order_execution",
        json!({
            "name": "erp_order_execution",
            "label": {"zh-CN": "订单执行（发货、开票、回款）", "en": "Order execution"},
            "connection": "t6",
            "entity": "order",
            "table": "SO_SOMain",
            "key": {"column": "cSOCode", "field": "code"},
            "creates": false,
            "fields": [
                {"field": "shipped_amount", "column": "iShipSum"},
                {"field": "invoiced_amount", "column": "iInvSum"},
                {"field": "payment_status", "column": "cPayState", "codes": {"0": "unpaid", "1": "partially", "2": "paid"}}
            ]
        }),
    )
    .await
    .expect(200);
    run(&t, "erp_people", json!({})).await;
    run(&t, "erp_customers", json!({})).await;
    let liyou = customer(&t, "北京立友信科技有限公司").await;

    let order = t
        .create("order", json!({"name": "立友信年度服务", "customer": liyou["id"], "order_date": "2026-11-30", "payment_terms": "月结30天"}))
        .await;
    t.create("order_line", json!({"name": "实施服务", "order": order["id"], "quantity": 2, "price": "15000.00"})).await;
    let draft = t.create("order", json!({"name": "未谈妥付款条件的订单", "customer": liyou["id"]})).await;
    let code = order["code"].as_str().unwrap().to_owned();

    // Only orders with payment terms agreed are sent; the customer goes as its ERP code, the date as yyyymmdd.
    let sent = run(&t, "orders_to_erp", json!({})).await;
    assert_eq!(counts(&sent), (1, 0, 0, 0, 0), "{sent}");
    let row = erp.sql(&format!("SELECT cCusCode, dDate, cSOName, iSum FROM SO_SOMain WHERE cSOCode = '{code}'"));
    assert_eq!(row.trim(), "0001\t20261130\t立友信年度服务\t30000.00");
    assert_eq!(run(&t, "orders_to_erp", json!({})).await["counts"]["unchanged"], 1);

    // A change here is sent again, to the same row.
    let uri = format!("/api/v1/records/order/{}", order["id"].as_str().unwrap());
    let version = t.get(&uri).await.expect(200)["version"].clone();
    t.patch(&uri, json!({"name": "立友信年度服务（续）", "version": version})).await.expect(200);
    assert_eq!(counts(&run(&t, "orders_to_erp", json!({})).await), (0, 1, 0, 0, 0));
    assert_eq!(
        erp.sql(&format!("SELECT cSOName FROM SO_SOMain WHERE cSOCode = '{code}'")).trim(),
        "立友信年度服务（续）"
    );

    // The ERP ships, invoices and is paid; the execution is read back onto the order, and
    // the ERP's own order makes no record here.
    erp.sql(&format!(
        "UPDATE SO_SOMain SET iShipSum = 30000, iInvSum = 15000, cPayState = '1' WHERE cSOCode = '{code}'"
    ));
    let back = run(&t, "erp_order_execution", json!({})).await;
    assert_eq!(counts(&back), (0, 1, 0, 1, 0), "{back}");
    let order = t.get(&uri).await.expect(200);
    assert_eq!(
        (order["shipped_amount"].as_str(), order["invoiced_amount"].as_str()),
        (Some("30000.00"), Some("15000.00"))
    );
    assert_eq!(order["payment_status"], "partially");
    let orders = t.list("order", None, "").await.expect(200);
    assert_eq!(orders["data"].as_array().unwrap().len(), 2, "{orders}");
    let erp_orders = erp.sql("SELECT cSOCode FROM SO_SOMain ORDER BY cSOCode");
    assert!(!erp_orders.contains(draft["code"].as_str().unwrap()), "{erp_orders}");
    assert_eq!(erp_orders.lines().count(), 2);
}

async fn the_studio_connects_and_runs_a_mapping(t: TestApp) {
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    let empty = b.page("/studio/sync").await;
    assert!(empty.contains("id=\"no-syncs\"") && empty.contains("还没有同步映射"), "an empty list says what to do");

    let erp = Erp::new();
    erp.sql(T6);
    t.put("/api/v1/meta/syncs/erp_people", people()).await.expect(200);
    let page = b.page("/studio/sync").await;
    assert!(page.contains("data-connection=\"t6\"") && page.contains("尚未设置地址"), "{page}");

    // An address that does not answer is refused, saying why, and nothing is kept.
    let refused = b.post("/studio/sync/connections/t6", &[("url", "mysql://root@127.0.0.1:1/nothing")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("连接不上"), "{}", refused.text);
    assert!(refused.text.contains("尚未设置地址"));
    let wrong = format!("mysql://{0}:wrong@127.0.0.1:3306/{0}", erp.name);
    assert_eq!(
        b.post("/studio/sync/connections/t6", &[("url", &wrong)]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    b.submit("/studio/sync/connections/t6", &[("url", &format!("mysql://{0}:s3cret@127.0.0.1:3306/{0}", erp.name))])
        .await;
    let connected = unescaped(&b.page("/studio/sync").await);
    assert!(connected.contains(&format!("mysql://{}:***@127.0.0.1:3306/", erp.name)), "{connected}");
    assert!(!connected.contains("s3cret"), "the password is never shown");

    // A dry run starts in the background; its page shows what it would make.
    let to = b.submit("/studio/sync/erp_people/run", &[("mode", "dry_run")]).await;
    let id = to.split("run=").nth(1).expect("the run's page").to_owned();
    for _ in 0..100 {
        if t.get(&format!("/api/v1/sync/runs/{id}")).await.expect(200)["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let shown = b.page(&to).await;
    let changes = between(&shown, "id=\"sync-changes\"", "</table>").expect("what the dry run would change");
    assert!(changes.contains("张三") && changes.contains("新增"), "{changes}");
    assert!(shown.contains("试运行") && shown.contains("读取 2 行：新增 2"), "{shown}");
    assert_eq!(
        t.list("user", Some(json!({"field": "name", "op": "eq", "value": "张三"})), "").await.expect(200)["data"],
        json!([])
    );

    // The document is edited as JSON and checked as through the API.
    let broken = b.post("/studio/sync/erp_people", &[("doc", "{\"name\": ")]).await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.text.contains("不是有效的 JSON"));
    let mut doc = people();
    doc["table"] = json!("Person; DROP TABLE Customer");
    let unsafe_name = b.post("/studio/sync/erp_people", &[("doc", &doc.to_string())]).await;
    assert_eq!(unsafe_name.status, StatusCode::UNPROCESSABLE_ENTITY, "a table name that is not a name is refused");
    doc["table"] = json!("Person");
    doc["label"]["zh-CN"] = json!("职员");
    assert_eq!(b.submit("/studio/sync/erp_people", &[("doc", &doc.to_string())]).await, "/studio/sync/erp_people");
    assert!(b.page("/studio/sync").await.contains("职员"));
}

async fn a_scheduled_sync_runs_on_one_node(t: TestApp) {
    let erp = Erp::new();
    erp.sql(T6);
    connect(&t, &erp).await;
    let mut doc = people();
    doc["schedule"] = json!("every 15 minutes");
    t.put("/api/v1/meta/syncs/erp_people", doc).await.expect(200);
    let other = t.another_node().await;
    other.app.refresh_catalog().await.expect("the other node reads the metadata");

    // Both nodes reach the same slot at once: one of them runs it.
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(crm::sync::run_due(&t.app, now), crm::sync::run_due(&other.app, now));
    assert_eq!(a.expect("runs") + b.expect("runs"), 1);
    let runs = t.get("/api/v1/sync/erp_people/runs").await.expect(200);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["trigger"], "schedule");
    assert_eq!(runs[0]["counts"]["created"], 2);
    // The same slot again runs nothing; the next one does.
    assert_eq!(crm::sync::run_due(&other.app, now).await.expect("runs"), 0);
    let later = now + chrono::TimeDelta::minutes(15);
    assert_eq!(crm::sync::run_due(&other.app, later).await.expect("runs"), 1);
    let runs = t.get("/api/v1/sync/erp_people/runs").await.expect(200);
    assert_eq!(runs[0]["counts"]["unchanged"], 2, "{runs}");
}

/// An ERP on PostgreSQL (a replica of the ERP's tables, say): read incrementally by a
/// timestamp, written with every value cast to its column's type. Runs where
/// `CRM_TEST_POSTGRES_URL` names a server (CI), with the CRM on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_on_postgres() {
    let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
        eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL ERP");
        return;
    };
    let name = format!("crm_erp_{}", uuid::Uuid::now_v7().simple());
    crm_store::server::create_database(&server, &name, None).await.expect("an ERP database");
    let url = crm_store::server::database_url(&server, &name);
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    psql(
        "CREATE TABLE inventory (cinvcode varchar(20) PRIMARY KEY, cinvname varchar(60) NOT NULL, iinvsprice numeric(18, 4), ts timestamp NOT NULL);
         INSERT INTO inventory VALUES ('001', '工业风扇  ', 1.25, '2026-11-01 08:00'), ('002', '排风机', 2.5, '2026-11-02 08:00');
         CREATE TABLE crm_customer (ccuscode varchar(20) PRIMARY KEY, ccusname varchar(98) NOT NULL, icreline numeric(18, 2), dsince date);",
    );
    let t = TestApp::sqlite().await;
    t.put("/api/v1/sync/connections/erp_pg", json!({"url": url})).await.expect(200);
    t.put(
        "/api/v1/meta/syncs/erp_products",
        json!({
            "name": "erp_products", "label": {"zh-CN": "存货档案", "en": "Products"}, "connection": "erp_pg",
            "entity": "product", "table": "public.inventory", "key": {"column": "cinvcode", "field": "code"}, "watermark": "ts",
            "fields": [{"field": "name", "column": "cinvname"}, {"field": "standard_price", "column": "iinvsprice", "factor": 1000}]
        }),
    )
    .await
    .expect(200);
    let first = run(&t, "erp_products", json!({})).await;
    assert_eq!(counts(&first), (2, 0, 0, 0, 0), "{first}");
    let fan = t.list("product", Some(json!({"field": "code", "op": "eq", "value": "001"})), "").await.expect(200);
    assert_eq!(
        (fan["data"][0]["name"].as_str(), fan["data"][0]["standard_price"].as_str()),
        (Some("工业风扇"), Some("1250.00"))
    );
    psql("UPDATE inventory SET iinvsprice = 1.3, ts = '2026-11-05 09:30' WHERE cinvcode = '001'");
    let incremental = run(&t, "erp_products", json!({})).await;
    assert_eq!(
        (incremental["full"].as_bool(), incremental["counts"]["read"].as_i64()),
        (Some(false), Some(2)),
        "{incremental}"
    );
    assert_eq!(counts(&incremental), (0, 1, 0, 1, 0));

    t.put(
        "/api/v1/meta/syncs/customers_to_erp",
        json!({
            "name": "customers_to_erp", "label": {"zh-CN": "客户传ERP", "en": "Customers to the ERP"}, "connection": "erp_pg",
            "entity": "customer", "direction": "to_erp", "table": "crm_customer", "key": {"column": "ccuscode", "field": "code"},
            "fields": [
                {"field": "name", "column": "ccusname"},
                {"field": "credit_limit", "column": "icreline"},
                {"field": "owned_since", "column": "dsince", "date_format": "%Y-%m-%d"}
            ]
        }),
    )
    .await
    .expect(200);
    let customer = t.create("customer", json!({"name": "苏州工业园区新材料有限公司", "credit_limit": "800000"})).await;
    assert_eq!(counts(&run(&t, "customers_to_erp", json!({})).await), (1, 0, 0, 0, 0));
    let code = customer["code"].as_str().unwrap();
    let row =
        psql(&format!("SELECT ccusname, icreline, dsince IS NOT NULL FROM crm_customer WHERE ccuscode = '{code}'"));
    assert_eq!(row.trim(), "苏州工业园区新材料有限公司|800000.00|t");
    let uri = format!("/api/v1/records/customer/{}", customer["id"].as_str().unwrap());
    let version = t.get(&uri).await.expect(200)["version"].clone();
    t.patch(&uri, json!({"credit_limit": "950000.50", "version": version})).await.expect(200);
    assert_eq!(counts(&run(&t, "customers_to_erp", json!({})).await), (0, 1, 0, 0, 0));
    assert_eq!(psql(&format!("SELECT icreline FROM crm_customer WHERE ccuscode = '{code}'")).trim(), "950000.50");
    drop(t);
    crm_store::server::drop_database(&server, &name).await.expect("the ERP database goes");
}
