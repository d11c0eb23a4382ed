//! The test harness: a real app with a fresh database per test (SQLite in a temporary folder,
//! or a PostgreSQL database copied from a migrated template when `CRM_TEST_POSTGRES_URL` is
//! set), driven in-process through the same router the server uses.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod binary;
pub mod browser;
pub mod services;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use crm::AppState;
use crm::config::Config;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const ADMIN_PASSWORD: &str = "test-admin-password";
/// The first password of users made with [`TestApp::user`], and the one they choose.
pub const FIRST_PASSWORD: &str = "Start-123x";
pub const USER_PASSWORD: &str = "Chosen-456y";

pub struct TestApp {
    pub app: AppState,
    router: Router,
    pub token: String,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    /// The body as sent (a file download).
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub set_cookie: Option<String>,
    /// The id the server gave the request (`X-Request-Id`).
    pub request_id: Option<String>,
}

impl Reply {
    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {:#}", self.body);
        self.body
    }
}

/// A page as a browser gets it.
#[derive(Debug)]
pub struct PageReply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub set_cookies: Vec<String>,
    pub text: String,
}

fn config(dir: &std::path::Path, database_url: Option<String>) -> Config {
    let mut config = Config::for_data_dir(dir);
    if let Some(url) = database_url {
        config.database_url = url;
    }
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config
}

/// A name for the PostgreSQL template that changes when the system tables, the code that
/// builds tables or the core package change, so a stale template is never reused.
fn template_name() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(include_bytes!("../../engine/store/src/lib.rs"));
    feed(include_bytes!("../../engine/store/src/ddl.rs"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut folders = vec![root.join("migrations/postgres"), root.join("metadata/core"), root.join("scripts/core")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).expect("the core package folders exist") {
            let path = entry.expect("readable").path();
            if path.is_dir() { folders.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    for file in files {
        feed(file.to_string_lossy().as_bytes());
        feed(&std::fs::read(file).expect("readable"));
    }
    format!("crm_tpl_{hash:016x}")
}

const TEMPLATE_LOCK: i64 = 7243;

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Creates the template database once per server (under an advisory lock, since test
/// binaries run in parallel).
async fn postgres_template(server: &str) -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let lock = crm_store::server::advisory_lock(server, TEMPLATE_LOCK).await.expect("PostgreSQL reachable");
            if !crm_store::server::database_exists(server, &name).await.expect("query pg_database") {
                let building = format!("{name}_building");
                crm_store::server::drop_database(server, &building).await.expect("drop leftover");
                crm_store::server::create_database(server, &building, None).await.expect("create template");
                let dir = tempfile::tempdir().expect("temp dir");
                let opened =
                    crm::setup::open(config(dir.path(), Some(crm_store::server::database_url(server, &building))))
                        .await
                        .expect("template installs");
                opened.app.db.close().await;
                crm_store::server::rename_database(server, &building, &name).await.expect("rename template");
            }
            lock.release(TEMPLATE_LOCK).await.expect("advisory unlock");
            name
        })
        .await
        .clone()
}

impl TestApp {
    /// A fresh app on SQLite.
    pub async fn sqlite() -> Self {
        Self::sqlite_with(|_| {}).await
    }

    /// A fresh app on SQLite with some settings changed.
    pub async fn sqlite_with(change: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path(), None);
        change(&mut config);
        let opened = crm::setup::open(config).await.expect("app opens");
        Self::ready(opened.app, dir, None).await
    }

    /// A fresh app on PostgreSQL, or `None` (with a note) when `CRM_TEST_POSTGRES_URL` is
    /// not set. CI sets it.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(|_| {}).await
    }

    /// A fresh app on PostgreSQL with some settings changed.
    pub async fn postgres_with(change: impl FnOnce(&mut Config)) -> Option<Self> {
        let Ok(server) = std::env::var("CRM_TEST_POSTGRES_URL") else {
            eprintln!("CRM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
            return None;
        };
        let template = postgres_template(&server).await;
        let name = format!("crm_t_{}", uuid::Uuid::now_v7().simple());
        crm_store::server::create_database(&server, &name, Some(&template)).await.expect("create test database");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path(), Some(crm_store::server::database_url(&server, &name)));
        change(&mut config);
        let opened = crm::setup::open(config).await.expect("app opens");
        Some(Self::ready(opened.app, dir, Some((server, name))).await)
    }

    /// A second node on the same database, with a data folder of its own and the first
    /// node's secret key, as every node of one database must have; the first keeps the
    /// database (and drops it at the end).
    pub async fn another_node(&self) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path(), None);
        config.database_url = self.app.config.database_url.clone();
        config.secret_key = std::fs::read_to_string(self.app.config.data_dir.join("secret.key")).ok();
        let opened = crm::setup::open(config).await.expect("the second node opens");
        Self::ready(opened.app, dir, None).await
    }

    /// Runs the outbox consumers of this node (search index, caches, reminders) until no
    /// event waits for them. On PostgreSQL an event becomes readable once every older
    /// transaction of the server has ended, and other tests' keep running: try for a while.
    pub async fn run_jobs(&self) {
        let runner = crm::jobs::Runner::new(self.app.clone(), crm::jobs::standard());
        for _ in 0..200 {
            runner.run_once(self.app.now()).await.expect("the consumers run");
            let cursors = crm_store::jobs::cursors(&self.app.db).await.expect("cursors");
            let ours = |c: &&crm_store::jobs::CursorState| c.node.is_empty() || c.node == self.app.node;
            if cursors.iter().filter(ours).all(|c| c.lag == 0) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("events kept waiting for the consumers");
    }

    /// Waits for a background task to end; returns it as `GET /api/v1/tasks/{id}` answers.
    pub async fn wait_task(&self, token: Option<&str>, id: &str) -> Value {
        for _ in 0..1200 {
            let task = self.call(Method::GET, &format!("/api/v1/tasks/{id}"), None, token).await.expect(200);
            if task["state"] != "running" {
                return task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("task {id} kept running");
    }

    /// Sends a request with a user's token.
    pub async fn as_user(&self, token: &str, method: Method, uri: &str, body: Option<Value>) -> Reply {
        self.call(method, uri, body, Some(token)).await
    }

    async fn ready(app: AppState, dir: tempfile::TempDir, postgres: Option<(String, String)>) -> Self {
        let router = crm::build_app(app.clone());
        let mut test = Self { app, router, token: String::new(), _dir: dir, postgres };
        test.token = test.login("admin", ADMIN_PASSWORD).await.expect("admin logs in");
        // The outbox consumers start reading as a server's would at its start: what the test
        // writes next is news to them.
        test.run_jobs().await;
        test
    }

    /// A token for a login, or `None` if refused.
    pub async fn login(&self, login: &str, password: &str) -> Option<String> {
        let reply = self
            .call(Method::POST, "/api/v1/auth/token", Some(json!({"login": login, "password": password})), None)
            .await;
        (reply.status == StatusCode::CREATED).then(|| reply.body["token"].as_str().expect("token").to_owned())
    }

    /// A user with roles (in a department, if given), made by the administrator, who has
    /// signed in and chosen their password ([`USER_PASSWORD`]): their id and token.
    pub async fn user(&self, login: &str, roles: &[&str], department: Option<&str>) -> (String, String) {
        let body = json!({
            "user": {"name": login, "login": login, "department": department},
            "password": FIRST_PASSWORD,
            "roles": roles,
        });
        let created = self.post("/api/v1/admin/users", body).await.expect(201);
        let token = self.login(login, FIRST_PASSWORD).await.expect("a new user signs in");
        let change = json!({"current_password": FIRST_PASSWORD, "password": USER_PASSWORD});
        self.call(Method::POST, "/api/v1/auth/password", Some(change), Some(&token)).await.expect(204);
        (created["id"].as_str().expect("an id").to_owned(), token)
    }

    /// Serves the app on a free local port, as `crm serve` does, for a real browser; returns
    /// the base URL. The server lives as long as the test's runtime.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound");
        let service = self.router.clone().into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await.expect("serves") });
        format!("http://{address}")
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Sends a request with the admin's token.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>, token: Option<&str>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("serializable")).unwrap_or_default();
        self.raw(
            method,
            uri,
            bytes,
            Some("application/json"),
            token.or(Some(self.token.as_str())).filter(|t| !t.is_empty()),
        )
        .await
    }

    /// Sends raw bytes.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body)).expect("valid request")).await
    }

    /// Sends a request authenticated by a session cookie (`name=value`), with a CSRF token.
    pub async fn with_cookie(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        cookie: &str,
        csrf: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri).header(header::COOKIE, cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("serializable")).unwrap_or_default();
        let request = request.header(header::CONTENT_TYPE, "application/json").body(Body::from(bytes));
        self.send(request.expect("valid request")).await
    }

    /// Requests a page as a browser would: with cookies (`a=1; b=2`) and, for a form, its
    /// fields URL-encoded. Redirects are not followed.
    pub async fn page(&self, method: Method, uri: &str, cookies: &str, form: Option<&[(&str, &str)]>) -> PageReply {
        let mut request = Request::builder().method(method).uri(uri).header(header::COOKIE, cookies);
        let mut body = Vec::new();
        if let Some(form) = form {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let pairs: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            body = pairs.join("&").into_bytes();
        }
        let response = self.router.clone().oneshot(request.body(Body::from(body)).expect("valid request")).await;
        let response = response.expect("infallible");
        let header_text = |name| response.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
        let location = header_text(header::LOCATION).map(str::to_owned);
        let content_type = header_text(header::CONTENT_TYPE).map(str::to_owned);
        let set_cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        PageReply { status, location, content_type, set_cookies, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// Sends a request as built.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers();
        let [set_cookie, content_type, request_id] =
            [header::SET_COOKIE, header::CONTENT_TYPE, header::HeaderName::from_static("x-request-id")]
                .map(|name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned));
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body, bytes: bytes.to_vec(), content_type, set_cookie, request_id }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(body), None).await
    }

    pub async fn patch(&self, uri: &str, body: Value) -> Reply {
        self.call(Method::PATCH, uri, Some(body), None).await
    }

    pub async fn put(&self, uri: &str, body: Value) -> Reply {
        self.call(Method::PUT, uri, Some(body), None).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, None, None).await
    }

    /// Creates a record and returns it.
    pub async fn create(&self, entity: &str, body: Value) -> Value {
        self.post(&format!("/api/v1/records/{entity}"), body).await.expect(201)
    }

    /// Lists with a filter tree (URL-encoded here) and other raw query parameters.
    pub async fn list(&self, entity: &str, filter: Option<Value>, extra: &str) -> Reply {
        let mut uri = format!("/api/v1/records/{entity}?");
        if !extra.contains("limit=") {
            uri.push_str("limit=500");
        }
        if let Some(filter) = filter {
            uri.push_str("&filter=");
            uri.push_str(&encode(&filter.to_string()));
        }
        if !extra.is_empty() {
            uri.push('&');
            uri.push_str(extra);
        }
        self.get(&uri).await
    }

    /// The `name`s of a filtered list, sorted.
    pub async fn names(&self, entity: &str, filter: Value) -> Vec<String> {
        let body = self.list(entity, Some(filter), "").await.expect(200);
        let mut names: Vec<String> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| r["name"].as_str().unwrap_or("").to_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // Dropping needs async IO; do it on a thread of its own so it runs to the end even
            // while the test's runtime shuts down.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    let _ = runtime.block_on(crm_store::server::drop_database(&server, &name));
                }
            })
            .join();
        }
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs a scenario on SQLite and, when configured, on PostgreSQL: `backends!(name, ...)`
/// makes a module per scenario with a `sqlite` and a `postgres` test.
#[macro_export]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::support::TestApp::sqlite().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = super::support::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
}
