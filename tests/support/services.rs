//! Servers the marketing tests talk to, each a real process: an SMTP server (`smtp_sink.py` on
//! aiosmtpd, installed with pip when it is missing) and a stand-in for an SMS provider's API
//! (`sms_standin.py`). What each accepted is read back as JSON, one object per message.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub struct Smtp {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs aiosmtpd once per test process if Python cannot import it.
fn installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let found = Command::new("python3").args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        if !found {
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "aiosmtpd"])
                .status()
                .expect("python3 runs");
            assert!(status.success(), "pip install aiosmtpd failed");
        }
    });
}

impl Smtp {
    /// A server on a free port; `args` as `smtp_sink.py` takes them (`--defer 2`).
    pub fn start(args: &[&str]) -> Smtp {
        installed();
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py"))
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP server");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut ready).expect("the server says ready");
        assert_eq!(ready.trim(), "ready", "the SMTP server did not start");
        Smtp { child, port, out, _dir: dir }
    }

    /// The messages received so far, oldest first; a line the server is still writing is
    /// left for the next look.
    pub fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// The mail settings that send to this server.
    pub fn settings(&self) -> Value {
        serde_json::json!({
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from_address": "market@example.cn",
            "from_name": "立友信市场部",
            "rate_per_second": 2000,
        })
    }
}

/// A stand-in for Alibaba Cloud's SMS API (`sms_standin.py`), checking signatures with the
/// AccessKey it is given; what it accepts is read back as JSON, one object per text.
pub struct SmsStandIn {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmsStandIn {
    pub const KEY_ID: &'static str = "LTAI-test-key";
    pub const SECRET: &'static str = "test-secret-密钥";

    /// A stand-in on a free port; `args` as `sms_standin.py` takes them (`--reject NUMBER`).
    pub fn start(args: &[&str]) -> SmsStandIn {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("texts.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/sms_standin.py"))
            .args(["--port", &port.to_string(), "--key-id", Self::KEY_ID, "--secret", Self::SECRET, "--out"])
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMS stand-in");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut ready).expect("the stand-in says ready");
        assert_eq!(ready.trim(), "ready", "the SMS stand-in did not start");
        SmsStandIn { child, port, out, _dir: dir }
    }

    pub fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
    }

    /// The SMS settings that send to this stand-in, with `secret`.
    pub fn settings(&self, secret: &str) -> Value {
        serde_json::json!({
            "endpoint": format!("http://127.0.0.1:{}/", self.port),
            "access_key_id": Self::KEY_ID,
            "access_key_secret": secret,
            "sign_name": "立友信",
            "rate_per_second": 1000,
        })
    }
}
