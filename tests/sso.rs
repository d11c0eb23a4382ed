//! Single sign-on (I-2) against a real OpenID provider — the npm package `oidc-provider`,
//! installed and started by the test (`tests/sso/provider.mjs`), whose interaction signs in
//! the account the test names — on SQLite and PostgreSQL, driven by curl as a browser with a
//! cookie jar: a new user is made with the roles of their groups and their department, a
//! known one is matched by e-mail, a disabled one and one without a role are refused, a
//! forged return is refused, and passwords can be turned off for all but a break-glass
//! administrator.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;

backends!(people_sign_in_through_the_identity_provider);

/// Where the provider's npm packages are installed, once per machine.
fn provider_dir() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join("crm-test-oidc-provider");
    std::fs::create_dir_all(&dir).expect("a folder for the provider");
    for name in ["package.json", "package-lock.json", "provider.mjs"] {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sso").join(name);
        std::fs::copy(&from, dir.join(name)).expect("the provider's files");
    }
    if !dir.join("node_modules/oidc-provider/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci of the OpenID provider");
    }
    dir
}

/// The provider process, stopped at the end.
struct Idp {
    child: Child,
    issuer: String,
}

const ACCOUNTS: &str = r#"{
  "zhangsan": {"email": "zhangsan@liyou.cn", "email_verified": true, "name": "张三", "preferred_username": "zhangsan", "groups": ["sales"], "department": "华东销售部"},
  "lisi": {"email": "LiSi@liyou.cn", "name": "李四", "preferred_username": "lisi", "groups": ["managers"]},
  "wangwu": {"email": "wangwu@liyou.cn", "name": "王五", "groups": ["warehouse"]}
}"#;

impl Idp {
    fn start(redirect_uri: &str) -> Idp {
        let dir = provider_dir();
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .args([&port.to_string(), "crm", "crm-client-secret", redirect_uri, ACCOUNTS])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut output = BufReader::new(child.stdout.take().expect("its output"));
        let mut ready = String::new();
        output.read_line(&mut ready).expect("it starts");
        assert_eq!(ready.trim(), "ready", "the provider started");
        // It writes notices as it goes: read them, or it dies writing to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut output, &mut std::io::sink()));
        Idp { child, issuer: format!("http://127.0.0.1:{port}") }
    }

    /// Who the provider signs in next.
    fn next(&self, account: &str) {
        let url = format!("{}/test/next", self.issuer);
        let out = Command::new("curl").args(["-s", "-X", "POST", "--data", account, &url]).output();
        assert!(out.expect("curl runs").status.success());
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: curl following every redirect with a cookie jar. Answers where it ended, the
/// status and the page.
fn browse(jar: &Path, url: &str) -> (String, u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-L",
            "-c",
            jar.to_str().unwrap(),
            "-b",
            jar.to_str().unwrap(),
            "-w",
            "\n%{url_effective} %{http_code}",
            url,
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (page, last) = text.rsplit_once('\n').expect("curl's summary");
    let (at, status) = last.rsplit_once(' ').expect("where and how");
    (at.to_owned(), status.parse().expect("a status"), page.to_owned())
}

/// The user the jar's session signs in as, through the API.
fn session_user(jar: &Path, base: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-b", jar.to_str().unwrap(), &format!("{base}/api/v1/auth/session")])
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

async fn user_by_email(t: &TestApp, email: &str) -> Vec<Value> {
    let list = t.list("user", Some(json!({"field": "email", "op": "eq", "value": email})), "").await.expect(200);
    list["data"].as_array().cloned().unwrap_or_default()
}

async fn people_sign_in_through_the_identity_provider(t: TestApp) {
    let department = t.create("department", json!({"name": "华东销售部"})).await;
    let lisi = t
        .post(
            "/api/v1/admin/users",
            json!({"user": {"name": "李四", "login": "lisi", "email": "lisi@liyou.cn"}, "password": support::FIRST_PASSWORD, "roles": ["sales_rep"]}),
        )
        .await
        .expect(201);
    let base = t.serve().await;
    let idp = Idp::start(&format!("{base}/sso/callback"));
    let jar_dir = tempfile::tempdir().expect("a folder for cookies");

    // Until it is set up there is no such sign-in, and the login page offers none.
    assert_eq!(t.get("/sso/login").await.status, StatusCode::NOT_FOUND);
    assert!(!browse(&jar_dir.path().join("none"), &format!("{base}/login")).2.contains("id=\"sso-login\""));

    let settings = json!({
        "enabled": true,
        "issuer": idp.issuer,
        "client_id": "crm",
        "client_secret": "crm-client-secret",
        "redirect_uri": format!("{base}/sso/callback"),
        "scopes": "openid email profile groups",
        "roles": {"sales": "sales_rep", "managers": "manager"},
        "department_claim": "department",
    });
    let mut wrong = settings.clone();
    wrong["roles"]["sales"] = json!("salesman");
    assert!(t.put("/api/v1/admin/sso", wrong).await.expect(422).to_string().contains("salesman"));
    let mut locked_out = settings.clone();
    locked_out["local_login"] = json!(false);
    assert!(t.put("/api/v1/admin/sso", locked_out).await.expect(422).to_string().contains("break_glass"));
    // The studio's form says what is wrong, and saves what is right.
    let mut b = Browser::sign_in(&t, "admin", support::ADMIN_PASSWORD).await;
    assert!(b.page("/studio/sso").await.contains("id=\"sso-settings\""));
    let callback = format!("{base}/sso/callback");
    let mut form = vec![
        ("enabled", "true"),
        ("issuer", idp.issuer.as_str()),
        ("client_id", "crm"),
        ("client_secret", "crm-client-secret"),
        ("redirect_uri", callback.as_str()),
        ("scopes", "openid email profile groups"),
        ("roles", "sales = salesman"),
        ("department_claim", "department"),
        ("local_login", "true"),
    ];
    let refused = b.post("/studio/sso", &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("id=\"studio-errors\"") && refused.text.contains("salesman"), "{}", refused.text);
    form[6] = ("roles", "sales = sales_rep\nmanagers = manager");
    assert_eq!(b.submit("/studio/sso", &form).await, "/studio/sso");
    let saved = t.get("/api/v1/admin/sso").await.expect(200);
    assert_eq!(saved["roles"], json!({"managers": "manager", "sales": "sales_rep"}));
    assert!(!b.page("/studio/sso").await.contains("crm-client-secret"), "the secret is never shown");
    let saved = t.put("/api/v1/admin/sso", settings.clone()).await.expect(200);
    assert_eq!(saved["client_secret_set"], true);
    assert!(!saved.to_string().contains("crm-client-secret"), "the secret is never answered");
    assert!(browse(&jar_dir.path().join("none"), &format!("{base}/login")).2.contains("id=\"sso-login\""));

    // A first sign-in makes the user: roles from the groups, the department from its claim.
    idp.next("zhangsan");
    let jar = jar_dir.path().join("zhangsan");
    let (at, status, _) = browse(&jar, &format!("{base}/sso/login?next=/e/customer"));
    assert_eq!((at.as_str(), status), (format!("{base}/e/customer").as_str(), 200));
    let me = session_user(&jar, &base);
    let made = user_by_email(&t, "zhangsan@liyou.cn").await;
    assert_eq!(made.len(), 1);
    assert_eq!(me["user_id"], made[0]["id"], "{me}");
    assert_eq!(
        (made[0]["login"].as_str(), made[0]["department"].as_str()),
        (Some("zhangsan"), department["id"].as_str())
    );
    let account = t.get(&format!("/api/v1/admin/users/{}", made[0]["id"].as_str().unwrap())).await.expect(200);
    assert_eq!((account["roles"].clone(), account["has_password"].clone()), (json!(["sales_rep"]), json!(false)));
    // Signing in again finds the same user.
    browse(&jar_dir.path().join("again"), &format!("{base}/sso/login"));
    assert_eq!(user_by_email(&t, "zhangsan@liyou.cn").await.len(), 1);

    // A known user is matched by e-mail, whatever its case, and their roles follow their groups.
    idp.next("lisi");
    let jar = jar_dir.path().join("lisi");
    assert_eq!(browse(&jar, &format!("{base}/sso/login")).1, 200);
    assert_eq!(session_user(&jar, &base)["user_id"], lisi["id"]);
    let account = t.get(&format!("/api/v1/admin/users/{}", lisi["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(account["roles"], json!(["manager"]));

    // Someone whose groups give no role here is refused, and nothing is made.
    idp.next("wangwu");
    let (at, status, page) = browse(&jar_dir.path().join("wangwu"), &format!("{base}/sso/login"));
    assert_eq!((at.starts_with(&format!("{base}/sso/callback")), status), (true, 401), "{at}");
    assert!(page.contains("id=\"login-error\"") && page.contains("没有分配角色"), "{page}");
    assert!(user_by_email(&t, "wangwu@liyou.cn").await.is_empty());

    // A return the sign-in did not start here is refused.
    let (_, status, page) =
        browse(&jar_dir.path().join("forged"), &format!("{base}/sso/callback?code=stolen&state=forged"));
    assert_eq!(status, 401);
    assert!(page.contains("单点登录失败"), "{page}");

    // A disabled user cannot come back through the provider.
    t.post(&format!("/api/v1/admin/users/{}/disable", made[0]["id"].as_str().unwrap()), json!({})).await.expect(200);
    idp.next("zhangsan");
    let (_, status, page) = browse(&jar_dir.path().join("disabled"), &format!("{base}/sso/login"));
    assert_eq!(status, 401);
    assert!(page.contains("已停用"), "{page}");

    // Passwords off: only the break-glass administrator still signs in with one.
    let mut sso_only = settings;
    sso_only["local_login"] = json!(false);
    sso_only["break_glass"] = json!("admin");
    t.put("/api/v1/admin/sso", sso_only).await.expect(200);
    let refused = t.post("/api/v1/auth/token", json!({"login": "lisi", "password": support::FIRST_PASSWORD})).await;
    assert_eq!((refused.status, refused.body["code"].as_str()), (StatusCode::FORBIDDEN, Some("sso_only")));
    let page = browse(&jar_dir.path().join("form"), &format!("{base}/login")).2;
    assert!(page.contains("id=\"sso-login\""));
    assert!(t.login("admin", support::ADMIN_PASSWORD).await.is_some(), "the break-glass administrator");
}
