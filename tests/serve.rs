//! The `crm` binary: first start prints the administrator's password once, serves the API,
//! keeps its data across restarts and stops cleanly on SIGTERM; `crm meta export` writes a
//! package. Configuration layers flags over variables over `crm.toml`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running server, killed if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, port: u16) -> (Server, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .env("CRM_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("CRM_ADMIN_PASSWORD")
        .env_remove("CRM_DATABASE_URL")
        .env("CRM_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Server(child);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    // The port is bound before the database is opened; /healthz answers once serving starts,
    // after anything printed at start-up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(port, "GET", "/healthz", "", None).0, 200);
    let lines = std::iter::from_fn(|| receiver.recv_timeout(Duration::from_millis(300)).ok()).collect();
    (child, lines)
}

/// A minimal HTTP/1.1 exchange, to test the binary from the outside.
fn http(port: u16, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn stop(mut server: Server) {
    let child = &mut server.0;
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "a graceful stop exits 0, got {exit}");
            return;
        }
        assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
}
