//! The `crm` binary: first start prints the administrator's password once, serves the API,
//! keeps its data across restarts and stops cleanly on SIGTERM; `crm meta export` writes a
//! package; `crm backup` copies a running server's data and `crm restore` brings it back.
//! Configuration layers flags over variables over `crm.toml`.

mod support;

use std::process::Command;

use support::binary::{free_port, http, request, start, start_on_small_disk, start_with, stop, try_request};

#[test]
fn first_start_restart_and_graceful_stop() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, lines) = start(data.path(), port);
    let password = lines
        .iter()
        .find_map(|l| l.split("with password ").nth(1))
        .unwrap_or_else(|| panic!("the password is printed: {lines:?}"))
        .trim()
        .to_owned();
    assert_eq!(http(port, "GET", "/healthz", "", None).0, 200);
    let (status, body) =
        http(port, "POST", "/api/v1/auth/token", &format!(r#"{{"login":"admin","password":"{password}"}}"#), None);
    assert_eq!(status, 201, "{body}");
    let token = body.split("\"token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (status, body) = http(port, "POST", "/api/v1/records/customer", r#"{"name":"持久客户"}"#, Some(&token));
    assert_eq!(status, 201, "{body}");
    stop(child);
    // The tasks a first start sets going itself (the install's reindexing) are not taken for
    // ones a previous process left running.
    let failed = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = crm_store::Db::connect(&crm_store::Db::sqlite_url(&data.path().join("crm.db")), 1).await.unwrap();
        let mut sql = db.sql();
        sql.push("SELECT count(*) FROM crm_task WHERE state = 'failed'");
        sql.fetch_all(&db).await.unwrap()[0].int(0).unwrap()
    });
    assert_eq!(failed, Some(0), "no task of a fresh start failed");

    let port = free_port();
    let (child, lines) = start(data.path(), port);
    assert!(!lines.iter().any(|l| l.contains("password")), "the password is printed once only: {lines:?}");
    let (status, body) = http(port, "GET", "/api/v1/records/customer?count=true", "", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("持久客户"), "data survives a restart: {body}");
    stop(child);

    let export = tempfile::tempdir().unwrap();
    let meta = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_crm"))
            .arg("meta")
            .args(args)
            .arg(export.path())
            .arg("--data-dir")
            .arg(data.path())
            .env("CRM_LOG", "warn")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    meta(&["export"]);
    assert!(export.path().join("entities/customer.json").exists());
    assert!(meta(&["apply", "--dry-run"]).contains("nothing to change"));
}

#[test]
fn flags_override_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crm.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\ndata_dir = \"/from/file\"\n").unwrap();
    let args = crm::config::ServerArgs { config: Some(file.clone()), ..Default::default() };
    let from_file = crm::config::Config::resolve(&args).unwrap();
    assert_eq!(from_file.listen.port(), 1);
    assert_eq!(from_file.data_dir, std::path::PathBuf::from("/from/file"));
    assert!(from_file.database_url.ends_with("/from/file/crm.db"));
    let args = crm::config::ServerArgs {
        config: Some(file),
        listen: Some("127.0.0.1:2".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(crm::config::Config::resolve(&args).unwrap().listen.port(), 2);
    std::fs::write(dir.path().join("bad.toml"), "lisen = 1").unwrap();
    let args = crm::config::ServerArgs { config: Some(dir.path().join("bad.toml")), ..Default::default() };
    assert!(crm::config::Config::resolve(&args).is_err(), "unknown keys are refused");
}

#[test]
fn bench_json_is_one_object_on_stdout() {
    // Logs at info level, as by default: they must not reach standard output.
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["bench", "--records", "300", "--clients", "2", "--seconds", "0.05", "--only", "get", "--json"])
        .env("CRM_LOG", "info")
        .env_remove("CRM_BENCH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(report["records"], 300);
    assert_eq!(report["ops"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["ops"][0]["op"], "get");
    for key in ["api_p50_ms", "api_rps", "floor_p50_ms", "ratio_p50"] {
        assert!(report["ops"][0][key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    assert!(report["import_rows_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["add_field_ms"].as_f64().unwrap() > 0.0, "{report}");
    for memory in ["memory", "memory_load_peak", "memory_peak"] {
        let mb = |key: &str| report[memory][key].as_f64().unwrap();
        assert!(mb("pss_mb") > 0.0, "{memory}: {report}");
        assert!((mb("pss_anon_mb") + mb("pss_file_mb") - mb("pss_mb")).abs() < 2.0, "{memory}: {report}");
    }
}

/// A backup taken while customers are being written restores every customer the server had
/// confirmed before the backup began; a restore does not overwrite data unless told.
#[test]
fn a_backup_under_writes_restores_everything_up_to_its_point_sqlite() {
    backup_round_trip(None);
}

#[test]
fn a_backup_under_writes_restores_everything_up_to_its_point_postgres() {
    let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
        eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let names = ["src", "dst"].map(|side| format!("crm_backup_{side}_{}", uuid::Uuid::now_v7().simple()));
    for name in &names {
        runtime.block_on(crm_store::server::create_database(&server, name, None)).unwrap();
    }
    let url = |name: &str| crm_store::server::database_url(&server, name);
    backup_round_trip(Some((url(&names[0]), url(&names[1]))));
    for name in &names {
        runtime.block_on(crm_store::server::drop_database(&server, name)).unwrap();
    }
}

/// The round trip on SQLite, or on PostgreSQL from one database to another, empty one.
fn backup_round_trip(databases: Option<(String, String)>) {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let source = databases.as_ref().map(|(source, _)| vec![("CRM_DATABASE_URL", source.as_str())]).unwrap_or_default();
    let (child, lines) = start_with(data.path(), port, &source);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let login = format!(r#"{{"login":"admin","password":"{password}"}}"#);
    let token = http(port, "POST", "/api/v1/auth/token", &login, None).1;
    let token = token.split("\"token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    // A writer confirms customers one after another until told to stop.
    let confirmed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop_writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (confirmed, stop_writing, token) = (confirmed.clone(), stop_writing.clone(), token.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop_writing.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("备份客户{n:05}");
                let (status, _) =
                    http(port, "POST", "/api/v1/records/customer", &format!(r#"{{"name":"{name}"}}"#), Some(&token));
                if status == 201 {
                    confirmed.lock().unwrap().push(name);
                }
                n += 1;
            }
        })
    };
    while confirmed.lock().unwrap().len() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before: Vec<String> = confirmed.lock().unwrap().clone();
    let backup = data.path().join("nightly.zip");
    let taken = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["backup", "--to"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(data.path())
        .env("CRM_LOG", "warn")
        .envs(source.iter().copied())
        .output()
        .unwrap();
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    while confirmed.lock().unwrap().len() < before.len() + 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop_writing.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    stop(child);

    let restore = |into: &std::path::Path, database: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
        command.args(["restore", "--from"]).arg(&backup).arg("--data-dir").arg(into).env("CRM_LOG", "warn");
        command.env_remove("CRM_DATABASE_URL").envs(database.map(|url| ("CRM_DATABASE_URL", url)));
        command.output().unwrap()
    };
    let refused = restore(data.path(), databases.as_ref().map(|(source, _)| source.as_str()));
    assert!(!refused.status.success(), "data in place is not overwritten");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let restored = tempfile::tempdir().unwrap();
    let target = databases.as_ref().map(|(_, target)| target.as_str());
    let done = restore(restored.path(), target);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let port = free_port();
    let (child, _) =
        start_with(restored.path(), port, &target.map(|t| vec![("CRM_DATABASE_URL", t)]).unwrap_or_default());
    let token = http(port, "POST", "/api/v1/auth/token", &login, None).1;
    assert!(token.contains("\"token\""), "the administrator's password came back with the data: {token}");
    let token = token.split("\"token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (status, page) =
        http(port, "GET", "/api/v1/records/customer?limit=500&sort=name&fields=name", "", Some(&token));
    assert_eq!(status, 200, "{page}");
    for name in &before {
        assert!(page.contains(name), "{name}, confirmed before the backup, is restored");
    }
    let found = http(port, "GET", "/api/v1/search?q=%E5%A4%87%E4%BB%BD%E5%AE%A2%E6%88%B700000", "", Some(&token));
    assert!(found.1.contains("备份客户00000"), "the search index was rebuilt: {}", found.1);
    stop(child);
}

/// After a large import the SQLite log is cut back (it had grown to hundreds of megabytes
/// and stayed so; 12 MB after these 30,000 rows), and a graceful stop cuts it back too (the
/// node's last cursor writes may follow the checkpoint).
#[test]
fn an_import_and_a_stop_leave_the_sqlite_log_short() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, lines) = start(data.path(), port);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let token = admin_token(port, &password);
    let mut csv = String::from("客户名称,地址,备注\n");
    for n in 0..30_000 {
        csv.push_str(&format!("日志测试客户{n:05},北京市海淀区中关村大街{n}号,批量导入的第{n}位客户\n"));
    }
    let task = start_import(port, &token, &csv);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, state) = http(port, "GET", &format!("/api/v1/tasks/{task}"), "", Some(&token));
        if !state.contains("\"running\"") {
            assert!(state.contains("\"done\""), "{state}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the import ended");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let log = data.path().join("crm.db-wal");
    let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    assert!(size() < 8 << 20, "the log after the import: {} MB", size() >> 20);
    stop(child);
    assert!(size() < 1 << 20, "a graceful stop cuts the log back: {} bytes", size());
}

/// `kill -9` in the middle of a large import: every row the import had reported committed is
/// there after the restart, no batch is there in part, the task is marked interrupted, the
/// server answers at once, and the search index (fed from the outbox) has what was committed.
#[test]
fn a_kill_during_an_import_loses_no_committed_row_sqlite() {
    kill_during_an_import(&[]);
}

#[test]
fn a_kill_during_an_import_loses_no_committed_row_postgres() {
    on_a_fresh_postgres_database(kill_during_an_import);
}

/// Runs the binary's `scenario` with `CRM_DATABASE_URL` naming a fresh database on the test
/// PostgreSQL server, dropped after; skipped without one.
fn on_a_fresh_postgres_database(scenario: fn(&[(&str, &str)])) {
    let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
        eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("crm_crash_{}", uuid::Uuid::now_v7().simple());
    runtime.block_on(crm_store::server::create_database(&server, &name, None)).unwrap();
    let url = crm_store::server::database_url(&server, &name);
    scenario(&[("CRM_DATABASE_URL", url.as_str())]);
    runtime.block_on(crm_store::server::drop_database(&server, &name)).unwrap();
}

fn kill_during_an_import(vars: &[(&str, &str)]) {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, lines) = start_with(data.path(), port, vars);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let token = admin_token(port, &password);
    let rows = 80_000;
    let mut csv = String::from("客户名称,地址\n");
    for n in 0..rows {
        csv.push_str(&format!("崩溃测试客户{n:05},上海市浦东新区世纪大道{n}号\n"));
    }
    let task = start_import(port, &token, &csv);
    let task_of = |port, token: &str| {
        let (_, state) = http(port, "GET", &format!("/api/v1/tasks/{task}"), "", Some(token));
        serde_json::from_str::<serde_json::Value>(&state).unwrap()
    };
    // Killed once a few batches are in and before the last.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let reported = loop {
        let state = task_of(port, &token);
        let done = state["done"].as_i64().unwrap_or(0);
        assert_eq!(state["state"], "running", "killed while running: {state}");
        if done >= 20_000 {
            break done;
        }
        assert!(std::time::Instant::now() < deadline, "the import got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill();

    let began = std::time::Instant::now();
    let (child, _) = start_with(data.path(), port, vars);
    assert!(began.elapsed() < std::time::Duration::from_secs(5), "ready again in {:?}", began.elapsed());
    let token = admin_token(port, &password);
    let count = |token: &str| {
        let (_, page) = http(port, "GET", "/api/v1/records/customer?limit=1&count=true", "", Some(token));
        serde_json::from_str::<serde_json::Value>(&page).unwrap()["total"].as_i64().unwrap()
    };
    let kept = count(&token);
    assert!(kept >= reported, "every row reported committed is there: {kept} < {reported}");
    assert!(kept < rows, "the kill came before the end");
    assert_eq!(kept % 10_000, 0, "whole batches only: {kept}");
    let state = task_of(port, &token);
    assert_eq!(state["state"], "failed", "the task the process left running is marked: {state}");
    let last = format!("崩溃测试客户{:05}", kept - 1);
    let query = format!("/api/v1/search?q={}", support::encode(&last));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http(port, "GET", &query, "", Some(&token)).1.contains(&last) {
        assert!(std::time::Instant::now() < deadline, "the search index caught up with the committed rows");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    stop(child);
}

/// `kill -9` while stage moves, approval steps, creates a webhook follows and fields being
/// added to customers are in flight: after the restart every opportunity's stage is the last
/// move its history records, every order's approval status the last step its approval
/// records; the webhook's outbox consumer, resuming from its cursor, queues exactly one
/// delivery for each customer that was committed (none lost, none twice); and the catalog
/// and the table agree on every field (a field the catalog has takes values; the next field
/// adds cleanly, so no column was left behind without its field).
#[test]
fn a_kill_during_writes_and_metadata_changes_leaves_each_whole_sqlite() {
    kill_during_moves_and_changes(&[]);
}

#[test]
fn a_kill_during_writes_and_metadata_changes_leaves_each_whole_postgres() {
    on_a_fresh_postgres_database(kill_during_moves_and_changes);
}

fn kill_during_moves_and_changes(vars: &[(&str, &str)]) {
    use serde_json::{Value, json};
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, lines) = start_with(data.path(), port, vars);
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let token = admin_token(port, &password);
    let (status, customer) = http(port, "POST", "/api/v1/records/customer", r#"{"name":"崩溃阶段客户"}"#, Some(&token));
    assert_eq!(status, 201, "{customer}");
    let customer: Value = serde_json::from_str(&customer).unwrap();
    let deals: Vec<Value> = (0..24)
        .map(|i| json!({"name": format!("崩溃机会{i}"), "customer": customer["id"], "stage": "initial_contact", "amount": "50000"}))
        .collect();
    let (status, created) = http(
        port,
        "POST",
        "/api/v1/records/opportunity/bulk/create",
        &json!({ "records": deals }).to_string(),
        Some(&token),
    );
    assert_eq!(status, 201, "{created}");
    let ids: Vec<String> =
        serde_json::from_value(serde_json::from_str::<Value>(&created).unwrap()["ids"].clone()).unwrap();
    let orders: Vec<Value> =
        (0..6).map(|i| json!({"name": format!("崩溃订单{i}"), "customer": customer["id"]})).collect();
    let (status, created) = http(
        port,
        "POST",
        "/api/v1/records/order/bulk/create",
        &json!({ "records": orders }).to_string(),
        Some(&token),
    );
    assert_eq!(status, 201, "{created}");
    let orders: Vec<String> =
        serde_json::from_value(serde_json::from_str::<Value>(&created).unwrap()["ids"].clone()).unwrap();
    // No secret is set, so nothing is posted: the deliveries wait in the log to be counted.
    let hook = json!({"name": "crash_hook", "label": {"zh-CN": "崩溃推送", "en": "Crash hook"},
        "entity": "customer", "events": ["created"], "url": "http://127.0.0.1:9/hook"});
    let (status, body) = http(port, "PUT", "/api/v1/meta/webhooks/crash_hook", &hook.to_string(), Some(&token));
    assert_eq!(status, 200, "{body}");

    // Movers cycle their opportunities through the stages, approvers their orders through
    // submit and reject, a creator adds customers and a changer adds fields, all until the
    // server is gone; then the kill lands among their writes.
    let moved = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for order in orders.clone() {
        let token = token.clone();
        workers.push(std::thread::spawn(move || {
            let steps = [json!({"action": "submit"}), json!({"action": "reject", "comment": "重新核对"})];
            for step in steps.iter().cycle() {
                let path = format!("/api/v1/records/order/{order}/approval");
                match try_request(port, "POST", &path, "application/json", step.to_string().as_bytes(), Some(&token)) {
                    Ok((200, _)) => {}
                    Ok((0, _)) | Err(_) => break,
                    Ok((status, body)) => panic!("an approval step: {status} {body}"),
                }
            }
        }));
    }
    let creator = {
        let token = token.clone();
        std::thread::spawn(move || {
            let mut created = 0;
            // Fewer than the delivery log shows at once.
            while created < 150 {
                let body = json!({ "name": format!("崩溃推送客户{created}") }).to_string();
                match try_request(
                    port,
                    "POST",
                    "/api/v1/records/customer",
                    "application/json",
                    body.as_bytes(),
                    Some(&token),
                ) {
                    Ok((201, _)) => created += 1,
                    Ok((0, _)) | Err(_) => break,
                    Ok((status, body)) => panic!("creating a customer: {status} {body}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            created
        })
    };
    for chunk in ids.chunks(3).map(<[String]>::to_vec) {
        let (token, moved) = (token.clone(), moved.clone());
        workers.push(std::thread::spawn(move || {
            let stages = ["needs_analysis", "proposal", "negotiation", "initial_contact"];
            for step in 0.. {
                let id = &chunk[step % chunk.len()];
                let body = json!({ "stage": stages[step % stages.len()] }).to_string();
                let path = format!("/api/v1/records/opportunity/{id}/stage");
                match try_request(port, "POST", &path, "application/json", body.as_bytes(), Some(&token)) {
                    Ok((200, _)) => {
                        moved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }));
    }
    let changer = {
        let token = token.clone();
        std::thread::spawn(move || {
            let mut added = 0;
            for n in 0.. {
                let field = json!({"name": format!("crash_note_{n}"), "type": "text", "label": {"zh-CN": "备注", "en": "Note"}});
                match try_request(
                    port,
                    "POST",
                    "/api/v1/meta/entities/customer/fields",
                    "application/json",
                    field.to_string().as_bytes(),
                    Some(&token),
                ) {
                    Ok((201, _)) => added += 1,
                    // No status line: the server died while answering.
                    Ok((0, _)) | Err(_) => break,
                    Ok((status, body)) => panic!("adding a field: {status} {body}"),
                }
            }
            added
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while moved.load(std::sync::atomic::Ordering::Relaxed) < 100 {
        assert!(std::time::Instant::now() < deadline, "the moves got going");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill();
    for worker in workers {
        worker.join().unwrap();
    }
    let added = changer.join().unwrap();
    assert!(added > 0, "fields were added before the kill");
    let told_created = creator.join().unwrap();

    let began = std::time::Instant::now();
    let (child, _) = start_with(data.path(), port, vars);
    assert!(began.elapsed() < std::time::Duration::from_secs(5), "ready again in {:?}", began.elapsed());
    let token = admin_token(port, &password);
    for id in &ids {
        let (_, record) = http(port, "GET", &format!("/api/v1/records/opportunity/{id}"), "", Some(&token));
        let record: Value = serde_json::from_str(&record).unwrap();
        let (_, history) =
            http(port, "GET", &format!("/api/v1/records/opportunity/{id}/stage-history"), "", Some(&token));
        let history: Value = serde_json::from_str(&history).unwrap();
        let last = history["data"].as_array().and_then(|moves| moves.last()).map(|m| m["to"].clone());
        assert_eq!(last, Some(record["stage"].clone()), "the record and its history agree: {record} {history}");
    }
    for id in &orders {
        let (_, record) = http(port, "GET", &format!("/api/v1/records/order/{id}"), "", Some(&token));
        let record: Value = serde_json::from_str(&record).unwrap();
        let (_, steps) = http(port, "GET", &format!("/api/v1/records/order/{id}/approvals"), "", Some(&token));
        let steps: Value = serde_json::from_str(&steps).unwrap();
        let last = steps["data"].as_array().and_then(|steps| steps.last()).map_or(json!("draft"), |s| s["to"].clone());
        assert_eq!(last, record["approval_status"], "the order and its approval agree: {record} {steps}");
    }
    let filter = support::encode(&json!({"field": "name", "op": "starts_with", "value": "崩溃推送客户"}).to_string());
    let (_, listed) =
        http(port, "GET", &format!("/api/v1/records/customer?filter={filter}&limit=200"), "", Some(&token));
    let mut customers: Vec<String> = serde_json::from_str::<Value>(&listed).unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    customers.sort();
    assert!(customers.len() >= told_created, "every customer reported created is there");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, log) = http(port, "GET", "/api/v1/webhooks/crash_hook/deliveries?limit=200", "", Some(&token));
        let mut delivered: Vec<String> = serde_json::from_str::<Value>(&log).unwrap()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["record_id"].as_str().unwrap().to_owned())
            .filter(|id| customers.binary_search(id).is_ok())
            .collect();
        delivered.sort();
        if delivered == customers {
            break;
        }
        let mut distinct = delivered.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), delivered.len(), "no customer's creation is delivered twice");
        assert!(
            std::time::Instant::now() < deadline,
            "one delivery per committed customer: {delivered:?} {customers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, entity) = http(port, "GET", "/api/v1/meta/entities/customer", "", Some(&token));
    let entity: Value = serde_json::from_str(&entity).unwrap();
    let notes: Vec<String> = entity["entity"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .filter(|name| name.starts_with("crash_note_"))
        .map(str::to_owned)
        .collect();
    assert!(notes.len() >= added, "every field reported added is there: {notes:?} < {added}");
    let mut values = json!({"name": "崩溃后客户"});
    for note in &notes {
        values[note] = json!("可写");
    }
    let (status, body) = http(port, "POST", "/api/v1/records/customer", &values.to_string(), Some(&token));
    assert_eq!(status, 201, "every field the catalog has is a column: {body}");
    let next = json!({"name": format!("crash_note_{}", notes.len()), "type": "text", "label": {"zh-CN": "备注", "en": "Note"}});
    let (status, body) = http(port, "POST", "/api/v1/meta/entities/customer/fields", &next.to_string(), Some(&token));
    assert_eq!(status, 201, "no column was left without its field: {body}");
    stop(child);
}

/// A full disk under the SQLite database: saves get 503 with a problem saying so and write
/// nothing, reads still answer, `/healthz` says why; once there is room again saves succeed
/// without a restart. The data folder is a small file system of the server's own, filled
/// from outside.
#[test]
fn a_full_disk_refuses_saves_with_503_and_the_server_recovers_sqlite() {
    use serde_json::{Value, json};
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some((child, lines)) = start_on_small_disk(data.path(), port, 48) else {
        eprintln!("this machine allows no mount namespace: skipping the full disk");
        return;
    };
    let password = lines.iter().find_map(|l| l.split("with password ").nth(1)).expect("the password").trim().to_owned();
    let token = admin_token(port, &password);
    let create = |n: usize| {
        let body = json!({"name": format!("满盘客户{n}"), "remark": "上海市浦东新区世纪大道".repeat(100)});
        http(port, "POST", "/api/v1/records/customer", &body.to_string(), Some(&token))
    };
    assert_eq!(create(0).0, 201);

    let filler = child.path(&data.path().join("filler"));
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0_u8; 1 << 20];
        while file.write_all(&block).and_then(|()| file.sync_all()).is_ok() {}
    }
    // The log has room for a few saves before it must grow. Four clients save at once, so
    // that saves share commits: every one of them is told 201 or 503, none 500.
    let next = std::sync::atomic::AtomicUsize::new(1);
    let (saved, refused) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut saved = 0;
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        assert!(n < 5_000, "the disk filled up");
                        let (status, body) = create(n);
                        match status {
                            201 => saved += 1,
                            503 => return (saved, serde_json::from_str::<Value>(&body).unwrap()),
                            _ => panic!("a save on a full disk: {status} {body}"),
                        }
                    }
                })
            })
            .collect();
        let told: Vec<(usize, Value)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        (
            1 + told.iter().map(|(saved, _)| saved).sum::<usize>(),
            told.into_iter().map(|(_, refused)| refused).collect::<Vec<_>>(),
        )
    });
    for refused in &refused {
        assert_eq!((&refused["status"], &refused["code"]), (&json!(503), &json!("disk_full")), "{refused}");
    }
    let (status, health) = http(port, "GET", "/healthz", "", None);
    assert_eq!((status, serde_json::from_str::<Value>(&health).unwrap()["reason"].clone()), (503, json!("disk_full")));
    let (status, _) = http(port, "GET", "/api/v1/records/customer?limit=5", "", Some(&token));
    assert_eq!(status, 200, "reads still answer");

    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut saved = saved;
    loop {
        let (status, body) = create(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        if status == 201 {
            saved += 1;
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(std::time::Instant::now() < deadline, "saves succeed again once there is room");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Saves that commit for a while after the last refusal say the trouble is over.
    while http(port, "GET", "/healthz", "", None).0 != 200 {
        assert!(std::time::Instant::now() < deadline, "healthy again");
        assert_eq!(create(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).0, 201);
        saved += 1;
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let filter = support::encode(&json!({"field": "name", "op": "starts_with", "value": "满盘客户"}).to_string());
    let (_, page) =
        http(port, "GET", &format!("/api/v1/records/customer?filter={filter}&limit=1&count=true"), "", Some(&token));
    let total = serde_json::from_str::<Value>(&page).unwrap()["total"].as_i64().unwrap();
    assert_eq!(total, saved as i64, "every save told 201 is there and no refused one");
    // The search index, whose writer stopped at the full disk, takes a fresh one and catches up.
    let last = format!("满盘客户{}", next.load(std::sync::atomic::Ordering::Relaxed) - 1);
    let query = format!("/api/v1/search?q={}", support::encode(&last));
    while !http(port, "GET", &query, "", Some(&token)).1.contains(&last) {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(20), "the index caught up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    stop(child);
}

/// `crm bench --soak`: a short soak runs the mix, adds a field meanwhile, reports windows
/// with each operation's p99 and memory, and fails on no request.
#[test]
fn a_short_soak_reports_windows_memory_and_no_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["bench", "--soak", "0.1", "--records", "2000", "--clients", "4", "--json"])
        .env("CRM_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["capacity"].as_f64().unwrap() > 0.0, "{report}");
    let windows = report["windows"].as_array().unwrap();
    assert!(windows.len() >= 2, "{report}");
    assert!(windows.iter().all(|w| w["ops_per_s"].as_f64().unwrap() > 0.0), "{report}");
    assert!(report["metadata_changes"].as_u64().unwrap() >= 1, "a field was added during the soak: {report}");
    for window in windows {
        let ops: Vec<&str> =
            window["p99_by_op_ms"].as_array().unwrap().iter().map(|op| op[0].as_str().unwrap()).collect();
        assert_eq!(ops, ["get", "list", "screen", "create", "update", "count"], "{report}");
        assert!(window["p99_by_op_ms"].as_array().unwrap().iter().any(|op| op[1].as_f64().unwrap() > 0.0));
    }
    for memory in ["memory_start", "memory_end", "memory_peak"] {
        let mb = |key: &str| report[memory][key].as_f64().unwrap();
        assert!(mb("pss_mb") > 0.0, "{memory}: {report}");
        assert!(mb("rss_mb") >= mb("private_mb"), "{report}");
        assert!(
            (mb("pss_anon_mb") + mb("pss_file_mb") - mb("pss_mb")).abs() < 2.0,
            "PSS is anonymous or files: {report}"
        );
    }
}

/// The administrator's token, from the binary's first-start password.
fn admin_token(port: u16, password: &str) -> String {
    let token =
        http(port, "POST", "/api/v1/auth/token", &format!(r#"{{"login":"admin","password":"{password}"}}"#), None).1;
    token.split("\"token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// Uploads a CSV of customers to import in the background; the import's task id.
fn start_import(port: u16, token: &str, csv: &str) -> String {
    const BOUNDARY: &str = "crm-import-test";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"customers.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let (status, started) = request(port, "POST", "/api/v1/records/customer/import", &content_type, &body, Some(token));
    assert_eq!(status, 202, "{started}");
    started.split("\"task\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}
