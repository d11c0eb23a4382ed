//! The `crm` binary: first start prints the administrator's password once, serves the API,
//! keeps its data across restarts and stops cleanly on SIGTERM; `crm meta export` writes a
//! package. Configuration layers flags over variables over `crm.toml`.

mod support;

use std::process::Command;

use support::binary::{free_port, http, start, stop};

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
