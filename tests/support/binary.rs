//! The `crm` binary run as a process, for tests from the outside: start it on a free port,
//! talk HTTP/1.1 to it, stop it with SIGTERM or kill it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running server, killed if the test fails before stopping it.
pub struct Server(pub Child);

impl Server {
    /// A path as the server sees it, in its own mount namespace if it has one.
    pub fn path(&self, path: &std::path::Path) -> std::path::PathBuf {
        let inside = path.strip_prefix("/").unwrap_or(path);
        std::path::Path::new(&format!("/proc/{}/root", self.0.id())).join(inside)
    }

    /// `kill -9`: the process ends at once, without a chance to finish anything.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start(data: &std::path::Path, port: u16) -> (Server, Vec<String>) {
    start_with(data, port, &[])
}

/// Starts the server with more variables set; returns it and what it printed at start-up.
pub fn start_with(data: &std::path::Path, port: u16, vars: &[(&str, &str)]) -> (Server, Vec<String>) {
    started(data, port, vars, None)
}

/// Starts the server with its log (standard error) written to a file.
pub fn start_logging(
    data: &std::path::Path,
    port: u16,
    vars: &[(&str, &str)],
    log: &std::path::Path,
) -> (Server, Vec<String>) {
    started(data, port, vars, Some(log))
}

/// Starts the server in a mount namespace of its own whose `data` folder is a file system of
/// `megabytes`, so that a test can fill its disk (through `/proc/PID/root`, see
/// [`Server::path`]); `None` where this machine allows no such namespace.
pub fn start_on_small_disk(data: &std::path::Path, port: u16, megabytes: u32) -> Option<(Server, Vec<String>)> {
    let mount = r#"mount -t tmpfs -o size="$1"m crm-test-disk "$2" && shift 2 && exec "$@""#;
    let size = megabytes.to_string();
    // As root a mount namespace is enough; otherwise a user namespace lends the right to mount.
    let flags = [&["--mount"][..], &["--user", "--map-root-user", "--mount"]].into_iter().find(|flags| {
        Command::new("unshare")
            .args(*flags)
            .args(["sh", "-c", mount, "sh", "1"])
            .arg(data)
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })?;
    let mut command = Command::new("unshare");
    command.args(flags).args(["sh", "-c", mount, "sh", &size]).arg(data).arg(env!("CARGO_BIN_EXE_crm"));
    Some(launch(command, data, port, &[], None))
}

fn started(
    data: &std::path::Path,
    port: u16,
    vars: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> (Server, Vec<String>) {
    launch(Command::new(env!("CARGO_BIN_EXE_crm")), data, port, vars, log)
}

/// Runs `command` (the binary, or what runs it) as `crm serve` on `data` and `port`.
fn launch(
    mut command: Command,
    data: &std::path::Path,
    port: u16,
    vars: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> (Server, Vec<String>) {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::inherit(),
    };
    let mut child = command
        .args(["serve", "--data-dir"])
        .arg(data)
        .env("CRM_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("CRM_ADMIN_PASSWORD")
        .env_remove("CRM_DATABASE_URL")
        .env("CRM_LOG", "warn")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
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

/// A minimal HTTP/1.1 exchange of JSON, to test the binary from the outside.
pub fn http(port: u16, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    request(port, method, path, "application/json", body.as_bytes(), token)
}

/// A minimal HTTP/1.1 exchange with a body of any type.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    token: Option<&str>,
) -> (u16, String) {
    try_request(port, method, path, content_type, body, token).unwrap()
}

/// [`request`] to a server that may be gone: the error instead of a panic.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

pub fn stop(mut server: Server) {
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
