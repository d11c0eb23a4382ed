//! Two real `crm serve` processes on one PostgreSQL database, as a company runs them behind
//! no balancer, the client spreading requests over both: a field added on one is live on the
//! other, a role changed or a user disabled on one holds on the other within seconds, each
//! event a webhook subscribes to is posted once, not once per node, and a scheduled ERP sync
//! runs on one node. And the logs: with
//! `CRM_LOG_FORMAT=json` every line is a JSON object, a request's rule runs log inside a span
//! naming its request id, and the secret key never appears. And a database that goes away and
//! comes back under a running server.

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::binary::{free_port, http, start_logging, start_with, stop};

fn secret_key() -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].iter().flat_map(|u| u.into_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn token_of(port: u16, login: &str, password: &str) -> String {
    let (status, body) =
        http(port, "POST", "/api/v1/auth/token", &json!({"login": login, "password": password}).to_string(), None);
    assert_eq!(status, 201, "{body}");
    json_of(&body)["token"].as_str().expect("a token").to_owned()
}

/// Waits until `check` holds, for at most 20 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}, within 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A webhook receiver on a local port: every delivery id it was posted, in order.
fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("bound").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let taken = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let (mut length, mut delivery) = (0, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(n) = lower.strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-crm-delivery:") {
                    delivery = line.split_once(':').map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            taken.lock().unwrap().push(delivery);
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

#[test]
fn two_serve_processes_on_one_postgres_database() {
    let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
        eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("crm_nodes_{}", uuid::Uuid::now_v7().simple());
    runtime.block_on(crm_store::server::create_database(&server, &name, None)).unwrap();
    let url = crm_store::server::database_url(&server, &name);
    let key = secret_key();
    let vars = [("CRM_DATABASE_URL", url.as_str()), ("CRM_SECRET_KEY", key.as_str())];
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (free_port(), free_port());
    let (node_a, lines) = start_with(data_a.path(), a, &vars);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let (node_b, lines) = start_with(data_b.path(), b, &vars);
    assert!(!lines.iter().any(|l| l.contains("password")), "the second node finds the administrator made");
    let admin = token_of(b, "admin", &password);

    // A field added on A takes values on B.
    let field = json!({"name": "erp_code", "type": "text", "label": {"zh-CN": "ERP编码", "en": "ERP code"}});
    let (status, body) = http(a, "POST", "/api/v1/meta/entities/customer/fields", &field.to_string(), Some(&admin));
    assert_eq!(status, 201, "{body}");
    eventually("the field is live on B", || {
        let customer = json!({"name": "双节点客户", "erp_code": "0001"}).to_string();
        http(b, "POST", "/api/v1/records/customer", &customer, Some(&admin)).0 == 201
    });

    // A role changed on A holds on B; so does a user disabled on A.
    let rep = json!({"user": {"name": "王芳", "login": "wangfang"}, "password": "Start-123x", "roles": ["sales_rep"]});
    let (status, body) = http(a, "POST", "/api/v1/admin/users", &rep.to_string(), Some(&admin));
    assert_eq!(status, 201, "{body}");
    let rep_id = json_of(&body)["id"].as_str().expect("an id").to_owned();
    let first = token_of(b, "wangfang", "Start-123x");
    let change = json!({"current_password": "Start-123x", "password": "Wang-fang-2026"}).to_string();
    assert_eq!(http(b, "POST", "/api/v1/auth/password", &change, Some(&first)).0, 204);
    let rep = token_of(a, "wangfang", "Wang-fang-2026");
    assert_eq!(http(b, "GET", "/api/v1/records/opportunity", "", Some(&rep)).0, 200);
    let roles = json!({"roles": ["service"]}).to_string();
    assert_eq!(http(a, "PUT", &format!("/api/v1/admin/users/{rep_id}/roles"), &roles, Some(&admin)).0, 200);
    // Service staff (客服) do not work opportunities: the module is not theirs.
    eventually("the new role holds on B", || http(b, "GET", "/api/v1/records/opportunity", "", Some(&rep)).0 == 404);
    assert_eq!(http(a, "POST", &format!("/api/v1/admin/users/{rep_id}/disable"), "{}", Some(&admin)).0, 200);
    eventually("B refuses the disabled user", || {
        http(b, "GET", "/api/v1/records/service_request", "", Some(&rep)).0 == 401
    });

    // Each event is posted once, though both nodes consume the outbox and send.
    let (port, seen) = receiver();
    let hook = json!({
        "name": "erp_customers", "label": {"zh-CN": "客户推送", "en": "Customers out"}, "entity": "customer",
        "events": ["created"], "url": format!("http://127.0.0.1:{port}/hook"),
    });
    assert_eq!(http(a, "PUT", "/api/v1/meta/webhooks/erp_customers", &hook.to_string(), Some(&admin)).0, 200);
    eventually("B knows the webhook", || {
        http(b, "POST", "/api/v1/webhooks/erp_customers/secret", "", Some(&admin)).0 == 200
    });
    for n in 0..10 {
        let node = if n % 2 == 0 { a } else { b };
        let customer = json!({"name": format!("推送客户{n}")}).to_string();
        assert_eq!(http(node, "POST", "/api/v1/records/customer", &customer, Some(&admin)).0, 201);
    }
    eventually("ten deliveries", || seen.lock().unwrap().len() >= 10);
    std::thread::sleep(Duration::from_secs(2));
    let posted = seen.lock().unwrap().clone();
    let mut distinct = posted.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((posted.len(), distinct.len()), (10, 10), "each event once: {posted:?}");

    // A sync scheduled a minute ago runs once, on one of the two nodes, at their next tick
    // of the schedule (each ticks every minute).
    let erp = format!("crm_nodes_erp_{}", uuid::Uuid::now_v7().simple());
    runtime.block_on(crm_store::server::create_database(&server, &erp, None)).unwrap();
    let erp_url = crm_store::server::database_url(&server, &erp);
    let psql = std::process::Command::new("psql")
        .args([erp_url.as_str(), "-v", "ON_ERROR_STOP=1", "-c"])
        .arg("CREATE TABLE inventory (cinvcode varchar(20) PRIMARY KEY, cinvname varchar(60) NOT NULL); INSERT INTO inventory VALUES ('001', '工业风扇'), ('002', '排风机');")
        .output()
        .unwrap();
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    let connection = json!({"url": erp_url}).to_string();
    assert_eq!(http(a, "PUT", "/api/v1/sync/connections/erp", &connection, Some(&admin)).0, 200);
    let beijing = chrono::Utc::now() + chrono::TimeDelta::hours(8) - chrono::TimeDelta::minutes(1);
    let mapping = json!({
        "name": "erp_products", "label": {"zh-CN": "存货档案", "en": "Products"}, "connection": "erp",
        "entity": "product", "table": "inventory", "key": {"column": "cinvcode", "field": "code"},
        "schedule": format!("daily {}", beijing.format("%H:%M")),
        "fields": [{"field": "name", "column": "cinvname"}]
    });
    let (status, body) = http(a, "PUT", "/api/v1/meta/syncs/erp_products", &mapping.to_string(), Some(&admin));
    assert_eq!(status, 200, "{body}");
    let runs = || json_of(&http(a, "GET", "/api/v1/sync/erp_products/runs", "", Some(&admin)).1);
    let deadline = Instant::now() + Duration::from_secs(75);
    while runs().as_array().is_none_or(Vec::is_empty) {
        assert!(Instant::now() < deadline, "a node ran the scheduled sync");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Both nodes tick again within the next minute; the slot was run, so neither runs it.
    std::thread::sleep(Duration::from_secs(62));
    let done = runs();
    assert_eq!(done.as_array().map(Vec::len), Some(1), "{done}");
    assert_eq!((done[0]["trigger"].as_str(), done[0]["counts"]["created"].as_i64()), (Some("schedule"), Some(2)));

    stop(node_a);
    stop(node_b);
    runtime.block_on(crm_store::server::drop_database(&server, &name)).unwrap();
    runtime.block_on(crm_store::server::drop_database(&server, &erp)).unwrap();
}

#[test]
fn json_logs_name_the_request_and_keep_secrets_out() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("crm.log");
    let key = secret_key();
    let port = free_port();
    let vars = [("CRM_LOG_FORMAT", "json"), ("CRM_LOG", "info,crm=debug,sqlx=warn"), ("CRM_SECRET_KEY", key.as_str())];
    let (node, lines) = start_logging(data.path(), port, &vars, &log);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let admin = token_of(port, "admin", &password);
    // A customer's save runs rules; they log inside the request's span.
    let body = json!({"name": "日志客户"}).to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /api/v1/records/customer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {admin}\r\nX-Request-Id: req-logs-42\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201") && answer.to_ascii_lowercase().contains("x-request-id: req-logs-42"),
        "{answer}"
    );
    stop(node);

    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "starting"), "{text}");
    let in_request = lines.iter().find(|l| {
        l["fields"]["message"] == "a rule ran"
            && l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["id"] == "req-logs-42"))
    });
    assert!(in_request.is_some(), "a rule run logged in the span of its request: {text}");
    assert!(!text.contains(&key), "the secret key never reaches the log");
    assert!(!text.contains(&password) && !text.contains(&admin), "nor passwords or tokens");
}

/// The database goes away under a running server: requests get 503 with a problem document
/// (soon, not after a hang), `/healthz` says why, nothing is half-written; when the database
/// is back the server serves again by itself.
#[test]
fn the_postgres_database_goes_away_and_comes_back() {
    let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
        eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("crm_down_{}", uuid::Uuid::now_v7().simple());
    runtime.block_on(crm_store::server::create_database(&server, &name, None)).unwrap();
    let url = crm_store::server::database_url(&server, &name);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let (node, lines) = start_with(data.path(), port, &[("CRM_DATABASE_URL", url.as_str())]);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let admin = token_of(port, "admin", &password);
    let customer = json!({"name": "断线前的客户"}).to_string();
    assert_eq!(http(port, "POST", "/api/v1/records/customer", &customer, Some(&admin)).0, 201);

    let admin_sql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args([server.as_str(), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    admin_sql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"));

    let began = Instant::now();
    let (status, body) = http(port, "GET", "/api/v1/records/customer", "", Some(&admin));
    assert_eq!(status, 503, "{body}");
    assert!(began.elapsed() < Duration::from_secs(5), "answered without a hang: {:?}", began.elapsed());
    assert_eq!(json_of(&body)["code"], "database_unavailable", "{body}");
    let later = json!({"name": "断线时的客户"}).to_string();
    assert_eq!(http(port, "POST", "/api/v1/records/customer", &later, Some(&admin)).0, 503);
    let (status, body) = http(port, "GET", "/healthz", "", None);
    assert_eq!((status, json_of(&body)["reason"].clone()), (503, json!("unreachable")), "{body}");

    admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    eventually("the server serves again", || http(port, "GET", "/healthz", "", None).0 == 200);
    let (status, body) = http(port, "GET", "/api/v1/records/customer", "", Some(&admin));
    assert_eq!(status, 200, "{body}");
    let listed = json_of(&body);
    let names: Vec<&str> = listed["data"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["断线前的客户"], "nothing was written while the database was away");
    assert_eq!(http(port, "POST", "/api/v1/records/customer", &later, Some(&admin)).0, 201);
    stop(node);
    runtime.block_on(crm_store::server::drop_database(&server, &name)).unwrap();
}
