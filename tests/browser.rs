//! The screens in a real browser: Chromium, driven over the DevTools protocol, against the app
//! served on a local port with a fresh database per test. Each test does what a user does —
//! types, clicks, drags — and checks the page it lands on and what the server stored.
//!
//! Set `CRM_TEST_CHROMIUM` to a Chromium binary to run them (`.ci/run` does); without it they
//! pass without doing anything. A failing test leaves a screenshot of its page in
//! `<target>/browser-screenshots/<test>.png`.

mod support;

use std::ffi::OsString;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::http::Method;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, InsertTextParams, MouseButton,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::{FutureExt as _, StreamExt as _};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, TestApp};

/// How long a page may take to reach an expected state.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the page is looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// A desktop window and a phone's.
const DESKTOP: Screen = Screen { width: 1280, height: 900, phone: false };
const PHONE: Screen = Screen { width: 375, height: 800, phone: true };
const LAPTOP: Screen = Screen { width: 1366, height: 768, phone: false };

/// Where in a test a step was asked for, for its failure message.
type At = &'static Location<'static>;

#[derive(Clone, Copy)]
struct Screen {
    width: u32,
    height: u32,
    phone: bool,
}

/// A browser with one tab, on the app of one test.
struct Ui {
    test: &'static str,
    screen: Screen,
    base: String,
    browser: Browser,
    page: Page,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

/// A fresh app served on a local port and a browser for it, or `None` (with a note) when
/// `CRM_TEST_CHROMIUM` is not set.
async fn start(test: &'static str, screen: Screen) -> Option<(TestApp, Ui)> {
    let Some(chromium) = std::env::var_os("CRM_TEST_CHROMIUM").filter(|c| !c.is_empty()) else {
        eprintln!("CRM_TEST_CHROMIUM is not set: skipping the browser test {test}");
        return None;
    };
    let t = TestApp::sqlite().await;
    let base = t.serve().await;
    let ui = Ui::launch(test, chromium, base, screen).await;
    Some((t, ui))
}

/// Quotes a text as a JavaScript string literal.
fn js(text: &str) -> String {
    Value::from(text).to_string()
}

/// The expression for the first element matching a CSS selector.
fn q(selector: &str) -> String {
    format!("document.querySelector({})", js(selector))
}

impl Ui {
    async fn launch(test: &'static str, chromium: OsString, base: String, screen: Screen) -> Self {
        let profile = tempfile::tempdir().expect("a temporary browser profile");
        let viewport = Viewport {
            width: screen.width,
            height: screen.height,
            device_scale_factor: Some(1.0),
            emulating_mobile: screen.phone,
            is_landscape: false,
            has_touch: false,
        };
        // Chromium's own defaults are replaced: they ask for English pages, and these tests
        // start as a Chinese user.
        let config = BrowserConfig::builder()
            .chrome_executable(&chromium)
            .user_data_dir(profile.path())
            .no_sandbox()
            .disable_default_args()
            .window_size(screen.width, screen.height)
            .viewport(viewport)
            .request_timeout(Duration::from_secs(20))
            .args([
                "disable-gpu",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "no-first-run",
                "disable-default-apps",
                "disable-dev-shm-usage",
                "disable-breakpad",
                "disable-features=Translate,MediaRouter,OptimizationHints",
                "metrics-recording-only",
                "use-mock-keychain",
                "password-store=basic",
            ])
            .arg(("lang", "zh-CN"))
            .arg(("accept-lang", "zh-CN,zh"))
            .build()
            .expect("a browser configuration");
        let (browser, mut events) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("Chromium ({}) does not start: {e}", chromium.to_string_lossy()));
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("a browser tab");
        Ui { test, screen, base, browser, page, handler, _profile: profile }
    }

    /// Runs a test's steps; if one fails, saves a screenshot of the page before failing.
    async fn check(&self, steps: impl Future<Output = ()>) {
        if let Err(panic) = AssertUnwindSafe(steps).catch_unwind().await {
            self.screenshot(None).await;
            std::panic::resume_unwind(panic);
        }
    }

    /// Saves a screenshot of the page as `<test>.png`, or `<test>-<what>.png`; says where.
    async fn screenshot(&self, what: Option<&str>) -> String {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let folder = target.join("browser-screenshots");
        let name = match what {
            Some(what) => format!("{}-{}", self.test, what.replace(|c: char| !c.is_ascii_alphanumeric(), "_")),
            None => self.test.to_owned(),
        };
        let path = folder.join(format!("{name}.png"));
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build();
        let url = self.try_eval("location.href").await.unwrap_or(Value::Null);
        let shot = async {
            let png = self.page.screenshot(params).await;
            // A full-page screenshot drops the window's emulation; put it back for the next steps.
            let Screen { width, height, phone } = self.screen;
            let screen = SetDeviceMetricsOverrideParams::new(i64::from(width), i64::from(height), 1.0, phone);
            let restored = self.page.execute(screen).await;
            png.and_then(|png| restored.map(|_| png))
        };
        let said = match tokio::time::timeout(Duration::from_secs(5), shot).await {
            Ok(Ok(png)) => match std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&path, png)) {
                Ok(()) => format!("a screenshot of {url} is in {}", path.display()),
                Err(e) => format!("could not save a screenshot of {url} to {}: {e}", path.display()),
            },
            Ok(Err(e)) => format!("no screenshot of {url}: {e}"),
            Err(_) => format!("no screenshot of {url}: the browser did not answer"),
        };
        eprintln!("{}: {said}", self.test);
        said
    }

    /// Closes the browser (a failed test leaves it to be killed when dropped).
    async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }

    /// Evaluates an expression in the page as it is now (awaiting a promise), or says why not.
    async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        // No execution context id: the protocol then uses the current document's, which is
        // what is wanted right after a navigation.
        let params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .build()
            .map_err(|e| e.to_string())?;
        let reply = self.page.execute(params).await.map_err(|e| e.to_string())?;
        if let Some(exception) = &reply.result.exception_details {
            let detail = exception.exception.as_ref().and_then(|e| e.description.clone()).unwrap_or_default();
            return Err(format!("{} {detail}", exception.text));
        }
        Ok(reply.result.result.value.clone().unwrap_or(Value::Null))
    }

    /// Evaluates an expression; its value as a `T`.
    #[track_caller]
    fn eval<T: DeserializeOwned>(&self, expression: &str) -> impl Future<Output = T> {
        self.eval_at(Location::caller(), expression)
    }

    async fn eval_at<T: DeserializeOwned>(&self, at: At, expression: &str) -> T {
        let value = self.try_eval(expression).await.unwrap_or_else(|e| panic!("{at}: `{expression}` fails: {e}"));
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{at}: `{expression}` gave {value}, not the expected type: {e}"))
    }

    /// Waits until an expression is `true`.
    #[track_caller]
    fn wait(&self, condition: &str, what: &str) -> impl Future<Output = ()> {
        self.wait_at(Location::caller(), condition, what)
    }

    async fn wait_at(&self, at: At, condition: &str, what: &str) {
        let started = Instant::now();
        loop {
            let last = match self.try_eval(condition).await {
                Ok(Value::Bool(true)) => return,
                Ok(other) => other.to_string(),
                Err(e) => e,
            };
            if started.elapsed() > TIMEOUT {
                panic!("{at}: waited {TIMEOUT:?} for {what} (`{condition}` was {last})");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs an action that loads another page (a link, a form, a drop), and waits until the
    /// new page is loaded and its script has run.
    #[track_caller]
    fn navigating<F: Future>(&self, action: F) -> impl Future<Output = F::Output> {
        let at = Location::caller();
        async move {
            self.eval_at::<Value>(at, "window.__before_navigation = true").await;
            let out = action.await;
            let loaded = "!window.__before_navigation && document.readyState === 'complete'";
            self.wait_at(at, loaded, "the next page").await;
            out
        }
    }

    /// Opens a path of the app.
    #[track_caller]
    fn goto(&self, path: &str) -> impl Future<Output = ()> {
        let at = Location::caller();
        let url = format!("{}{path}", self.base);
        self.navigating(async move {
            self.page.goto(url.as_str()).await.unwrap_or_else(|e| panic!("{at}: {url} does not load: {e}"));
        })
    }

    /// The path and query of the page.
    async fn location(&self) -> String {
        self.eval("location.pathname + location.search").await
    }

    async fn exists(&self, selector: &str) -> bool {
        self.eval(&format!("{} !== null", q(selector))).await
    }

    async fn count(&self, selector: &str) -> usize {
        self.eval(&format!("document.querySelectorAll({}).length", js(selector))).await
    }

    /// The text of an element, trimmed.
    #[track_caller]
    fn text(&self, selector: &str) -> impl Future<Output = String> {
        let at = Location::caller();
        async move {
            let text: Option<String> = self.eval_at(at, &format!("{}?.textContent.trim() ?? null", q(selector))).await;
            text.unwrap_or_else(|| panic!("{at}: no `{selector}` on the page"))
        }
    }

    /// The texts of all matching elements, trimmed, in page order.
    async fn texts(&self, selector: &str) -> Vec<String> {
        self.eval(&format!("[...document.querySelectorAll({})].map(e => e.textContent.trim())", js(selector))).await
    }

    /// The `value` of a form control.
    #[track_caller]
    fn value(&self, selector: &str) -> impl Future<Output = String> {
        self.value_at(Location::caller(), selector)
    }

    async fn value_at(&self, at: At, selector: &str) -> String {
        let value: Option<String> = self.eval_at(at, &format!("{}?.value ?? null", q(selector))).await;
        value.unwrap_or_else(|| panic!("{at}: no `{selector}` on the page"))
    }

    async fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        self.eval(&format!("{}?.getAttribute({}) ?? null", q(selector), js(name))).await
    }

    /// Waits until an element is on the page and shown.
    async fn visible_at(&self, at: At, selector: &str) {
        let shown = format!("(e => e !== null && e.getClientRects().length > 0)({})", q(selector));
        self.wait_at(at, &shown, &format!("`{selector}` to show")).await;
    }

    /// Clicks an element with the mouse, in its middle, once it shows.
    #[track_caller]
    fn click(&self, selector: &str) -> impl Future<Output = ()> {
        self.click_at(Location::caller(), selector)
    }

    async fn click_at(&self, at: At, selector: &str) {
        self.visible_at(at, selector).await;
        let element = self.page.find_element(selector).await.unwrap_or_else(|e| panic!("{at}: `{selector}`: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("{at}: clicking `{selector}`: {e}"));
    }

    /// Empties a text box, clicks into it and types, key by key (characters no key makes,
    /// such as Chinese, arrive as an input method would send them).
    #[track_caller]
    fn fill(&self, selector: &str, text: &str) -> impl Future<Output = ()> {
        let at = Location::caller();
        async move {
            self.visible_at(at, selector).await;
            self.eval_at::<Value>(at, &format!("{}.value = ''", q(selector))).await;
            self.click_at(at, selector).await;
            let element = self.page.find_element(selector).await.unwrap_or_else(|e| panic!("{at}: {e}"));
            let mut buffer = [0u8; 4];
            for c in text.chars() {
                let key: &str = c.encode_utf8(&mut buffer);
                let typed = if c.is_ascii() && chromiumoxide::keys::get_key_definition(key).is_some() {
                    element.press_key(key).await.map(|_| ())
                } else {
                    self.page.execute(InsertTextParams::new(key)).await.map(|_| ())
                };
                typed.unwrap_or_else(|e| panic!("{at}: typing {c:?} into `{selector}`: {e}"));
            }
            assert_eq!(self.value_at(at, selector).await, text, "{at}: `{selector}` holds what was typed");
        }
    }

    /// Picks an option of a `<select>` by value, as a user's choice does (with a change event).
    #[track_caller]
    fn select(&self, selector: &str, value: &str) -> impl Future<Output = ()> {
        let at = Location::caller();
        async move {
            self.visible_at(at, selector).await;
            let pick = format!(
                "(s => {{ if (![...s.options].some(o => o.value === {v})) return false; s.value = {v}; \
                 s.dispatchEvent(new Event('input', {{bubbles: true}})); \
                 s.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})({})",
                q(selector),
                v = js(value)
            );
            let picked: bool = self.eval_at(at, &pick).await;
            assert!(picked, "{at}: `{selector}` has no option `{value}`");
        }
    }

    /// The middle of an element, in viewport coordinates, after scrolling it into view.
    async fn middle(&self, selector: &str) -> (f64, f64) {
        self.visible_at(Location::caller(), selector).await;
        let [x, y]: [f64; 2] = self
            .eval(&format!(
                "(e => {{ e.scrollIntoView({{block: 'nearest', inline: 'nearest'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})({})",
                q(selector)
            ))
            .await;
        (x, y)
    }

    /// A mouse event at a point; `buttons` is the set of buttons held (1: the left one).
    async fn mouse(&self, kind: DispatchMouseEventType, (x, y): (f64, f64), buttons: i64) {
        let mut event = DispatchMouseEventParams::builder().r#type(kind.clone()).x(x).y(y).buttons(buttons);
        event = match kind {
            DispatchMouseEventType::MousePressed | DispatchMouseEventType::MouseReleased => {
                event.button(MouseButton::Left).click_count(1)
            }
            _ if buttons == 1 => event.button(MouseButton::Left),
            _ => event.button(MouseButton::None),
        };
        let event = event.build().expect("a mouse event");
        self.page.execute(event).await.unwrap_or_else(|e| panic!("a mouse event at ({x}, {y}): {e}"));
    }

    /// Drags one element onto another with the mouse: press, move in steps, release.
    async fn drag(&self, what: &str, onto: &str) {
        let from = self.middle(what).await;
        let to = self.middle(onto).await;
        self.mouse(DispatchMouseEventType::MouseMoved, from, 0).await;
        self.mouse(DispatchMouseEventType::MousePressed, from, 1).await;
        const STEPS: u32 = 12;
        for step in 1..=STEPS {
            let f = f64::from(step) / f64::from(STEPS);
            let point = (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f);
            self.mouse(DispatchMouseEventType::MouseMoved, point, 1).await;
        }
        self.mouse(DispatchMouseEventType::MouseReleased, to, 0).await;
    }

    /// Signs in as a user from the login page, heading for `next`.
    async fn sign_in_as(&self, login: &str, password: &str, next: &str) {
        self.goto(&format!("/login?next={}", support::encode(next))).await;
        self.fill("#login-form input[name=login]", login).await;
        self.fill("#login-form input[name=password]", password).await;
        self.navigating(self.click("#login-form button[type=submit]")).await;
    }

    async fn sign_in(&self, next: &str) {
        self.sign_in_as("admin", ADMIN_PASSWORD, next).await;
        assert_eq!(self.location().await, next, "signed in, the browser is where it was headed");
    }

    /// Opens the user menu and clicks one of its buttons.
    async fn menu(&self, button: &str) {
        self.click("details#user-menu > summary").await;
        self.navigating(self.click(&format!("details#user-menu {button}"))).await;
    }

    /// How the page is wider than the window, if it is (something to scroll sideways to),
    /// naming the outermost elements that stick out; a screenshot of such a page is saved.
    async fn too_wide(&self, width: u32) -> Option<String> {
        let scroll: u32 = self.eval("document.documentElement.scrollWidth").await;
        if scroll <= width + 1 {
            return None;
        }
        let out: Vec<String> = self
            .eval(&format!(
                "(() => {{ const out = [...document.querySelectorAll('body *')] \
                 .filter(e => e.getBoundingClientRect().right > {width} + 1); \
                 return out.filter(e => !out.includes(e.parentElement)).slice(0, 5).map(e => e.tagName.toLowerCase() \
                 + (e.id ? '#' + e.id : '') + [...e.classList].map(c => '.' + c).join('') \
                 + (e.name ? `[name=${{e.name}}]` : '')); }})()"
            ))
            .await;
        let page = self.location().await;
        let shot = self.screenshot(Some(&page)).await;
        Some(format!("{page} is {scroll} px wide (sticking out: {}; {shot})", out.join(", ")))
    }
}

/// A record's id.
fn id(record: &Value) -> String {
    record["id"].as_str().expect("a record has an id").to_owned()
}

/// A user with a role, as an administrator creates one; returns the id.
async fn add_user(t: &TestApp, name: &str, login: &str, password: &str) -> String {
    let body = json!({"user": {"name": name, "login": login}, "password": password, "roles": ["sales_rep"]});
    id(&t.post("/api/v1/admin/users", body).await.expect(201))
}

/// The sales rep 小王 (`wang`), who has chosen the password `second-Password-2`; returns the id.
async fn add_rep_wang(t: &TestApp) -> String {
    let rep = add_user(t, "小王", "wang", "first-Password-1").await;
    let token = t.login("wang", "first-Password-1").await.expect("the rep signs in");
    let change = json!({"current_password": "first-Password-1", "password": "second-Password-2"});
    let changed = t.call(axum::http::Method::POST, "/api/v1/auth/password", Some(change), Some(&token)).await;
    assert_eq!(changed.status.as_u16(), 204);
    rep
}

async fn admin_id(t: &TestApp) -> String {
    t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().expect("the session's user").to_owned()
}

/// Login: a page asked for while signed out sends the browser to the login form, a wrong
/// password is refused on the form, the right one goes to the page first asked for. A user an
/// administrator created chooses a password before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_to_the_page_asked_for() {
    let Some((t, ui)) = start("login_returns_to_the_page_asked_for", DESKTOP).await else { return };
    ui.check(async {
        ui.goto("/e/customer?f_name=x").await;
        assert_eq!(ui.location().await, "/login?next=%2Fe%2Fcustomer%3Ff_name%3Dx");
        assert_eq!(ui.value("#login-form input[name=next]").await, "/e/customer?f_name=x");
        assert!(!ui.exists("#login-error").await, "no error before trying");

        ui.fill("#login-form input[name=login]", "admin").await;
        ui.fill("#login-form input[name=password]", "not-the-password").await;
        ui.navigating(ui.click("#login-form button[type=submit]")).await;
        assert!(ui.location().await.starts_with("/login"), "still on the login page");
        assert!(!ui.text("p#login-error").await.is_empty(), "the refusal is said");
        assert_eq!(ui.value("#login-form input[name=login]").await, "admin", "the login is kept");
        assert_eq!(ui.value("#login-form input[name=password]").await, "", "the password is not sent back");

        ui.fill("#login-form input[name=password]", ADMIN_PASSWORD).await;
        ui.navigating(ui.click("#login-form button[type=submit]")).await;
        assert_eq!(ui.location().await, "/e/customer?f_name=x");
        assert_eq!(ui.value("form#filters input[name=f_name]").await, "x");
        assert!(ui.exists("nav#nav a[href='/e/customer'].active").await, "the module is marked in the menu");
        let cookies: String = ui.eval("document.cookie").await;
        assert!(!cookies.contains("crm_session"), "scripts cannot read the session cookie: {cookies}");

        // Signing out ends the session: pages ask for a login again.
        ui.menu("button#logout").await;
        assert!(ui.location().await.starts_with("/login"));
        ui.goto("/e/customer").await;
        assert_eq!(ui.location().await, "/login?next=%2Fe%2Fcustomer");

        // A new user must choose their own password first, wherever they were headed.
        add_user(&t, "新同事", "newcomer", "Start-12345").await;
        ui.sign_in_as("newcomer", "Start-12345", "/e/customer").await;
        assert_eq!(ui.location().await, "/password");
        ui.goto("/e/contact").await;
        assert_eq!(ui.location().await, "/password", "no page before the password is changed");
        assert_eq!(ui.count("nav#nav a").await, 0, "and no menu of links that lead back here");
        ui.fill("input[name=current_password]", "Start-12345").await;
        ui.fill("input[name=password]", "Chosen-67890").await;
        ui.fill("input[name=password_again]", "Chosen-6789").await;
        ui.navigating(ui.click("main form button[type=submit]")).await;
        assert!(ui.text("main .form-error").await.contains("两次输入的新密码不一致"), "a typo is caught");
        ui.fill("input[name=current_password]", "Start-12345").await;
        ui.fill("input[name=password]", "Chosen-67890").await;
        ui.fill("input[name=password_again]", "Chosen-67890").await;
        ui.navigating(ui.click("main form button[type=submit]")).await;
        assert_eq!(ui.location().await, "/");
        assert!(!ui.text("div#flash").await.is_empty(), "the change is confirmed");
        ui.goto("/e/customer").await;
        assert_eq!(ui.location().await, "/e/customer");
        assert!(t.login("newcomer", "Chosen-67890").await.is_some(), "the new password works");
    })
    .await;
    ui.close().await;
}

/// A customer made with the form, a contact made from its contacts panel (the lookup filled
/// in, back to the customer after saving), and an opportunity whose customer is picked by
/// typing part of its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_then_contact_from_its_panel_and_lookup_typeahead() {
    let Some((t, ui)) = start("customer_then_contact_from_its_panel_and_lookup_typeahead", DESKTOP).await else {
        return;
    };
    ui.check(async {
        // Another customer whose name also matches what is typed in the lookup below.
        let decoy = id(&t.create("customer", json!({"name": "Acme 贸易有限公司"})).await);
        ui.sign_in("/e/customer").await;
        ui.navigating(ui.click("a#new-record")).await;
        assert_eq!(ui.location().await, "/e/customer/new");
        let name = "Acme 立友信科技";
        ui.fill("form#record-form input[name=name]", name).await;
        ui.select("form#record-form select[name=industry]", "software").await;
        ui.fill("form#record-form input[name=email]", "info@acme.example").await;
        ui.navigating(ui.click("button#save")).await;

        let path = ui.location().await;
        let customer = path.strip_prefix("/e/customer/").unwrap_or_else(|| panic!("on the new record, not {path}"));
        assert!(uuid::Uuid::parse_str(customer).is_ok(), "a record page: {path}");
        let customer = customer.to_owned();
        assert_eq!(ui.text("h1#record-title").await, name);
        assert!(!ui.text("div#flash").await.is_empty(), "the creation is confirmed");
        let stored = t.get(&format!("/api/v1/records/customer/{customer}")).await.expect(200);
        assert_eq!((stored["name"].as_str(), stored["industry"].as_str()), (Some(name), Some("software")));
        assert_eq!(stored["email"], "info@acme.example");
        assert_eq!(ui.count("section#panel-contacts tr[data-id]").await, 0);

        // The contacts panel's "new": the form knows the customer and comes back here.
        ui.navigating(ui.click("section#panel-contacts a[data-new-related=contacts]")).await;
        assert!(ui.location().await.starts_with(&format!("/e/contact/new?customer={customer}")));
        let lookup = "form#record-form div.lookup[data-lookup=customer]";
        assert_eq!(ui.value(&format!("{lookup} input[data-lookup-id]")).await, customer);
        assert_eq!(ui.value(&format!("{lookup} input[data-lookup-text]")).await, name, "the lookup shows the title");
        ui.fill("form#record-form input[name=name]", "张伟").await;
        ui.navigating(ui.click("button#save")).await;
        assert_eq!(ui.location().await, format!("/e/customer/{customer}"), "back on the customer");
        let contacts = t.list("contact", Some(json!({"field": "customer", "op": "eq", "value": customer})), "").await;
        let contacts = contacts.expect(200)["data"].as_array().expect("a list").clone();
        assert_eq!(contacts.len(), 1, "one contact of the customer: {contacts:?}");
        let contact = id(&contacts[0]);
        assert_eq!(contacts[0]["name"], "张伟");
        let row = format!("section#panel-contacts tr[data-id='{contact}']");
        assert_eq!(ui.count("section#panel-contacts tr[data-id]").await, 1);
        assert!(ui.text(&row).await.contains("张伟"), "the contact is in the panel");

        // An opportunity: the customer is found by typing part of its name and picked.
        ui.goto("/e/opportunity/new").await;
        ui.fill("form#record-form input[name=name]", "ERP 升级").await;
        let lookup = "form#record-form div.lookup[data-lookup=customer]";
        ui.fill(&format!("{lookup} input[data-lookup-text]"), "Acme").await;
        let choices = format!("{lookup} ul.lookup-results li");
        ui.wait(
            &format!(
                "document.querySelectorAll({}).length === 2 && !{}.hidden",
                js(&choices),
                q(&format!("{lookup} ul.lookup-results"))
            ),
            "both matching customers offered",
        )
        .await;
        let offered = ui.texts(&choices).await;
        assert!(offered.contains(&name.to_owned()) && offered.contains(&"Acme 贸易有限公司".to_owned()), "{offered:?}");
        ui.click(&format!("{lookup} ul.lookup-results li[data-id='{customer}']")).await;
        assert_eq!(ui.value(&format!("{lookup} input[data-lookup-id]")).await, customer, "not the decoy {decoy}");
        assert_eq!(ui.value(&format!("{lookup} input[data-lookup-text]")).await, name);
        ui.wait(&format!("{}.hidden", q(&format!("{lookup} ul.lookup-results"))), "the choices to close").await;
        ui.navigating(ui.click("button#save")).await;
        let path = ui.location().await;
        let opportunity =
            path.strip_prefix("/e/opportunity/").unwrap_or_else(|| panic!("on the new record, not {path}"));
        let stored = t.get(&format!("/api/v1/records/opportunity/{opportunity}")).await.expect(200);
        assert_eq!(stored["customer"].as_str(), Some(customer.as_str()));
        assert_eq!(stored["stage"], "initial_contact");
        assert!(ui.exists("section#stage-path span[data-stage=initial_contact][aria-current=step]").await);

        ui.goto(&format!("/e/customer/{customer}")).await;
        assert!(ui.exists(&format!("section#panel-opportunities tr[data-id='{opportunity}']")).await);
    })
    .await;
    ui.close().await;
}

/// Filtering a list by text and by a choice, then sorting by a column both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_and_sort_a_list() {
    let Some((t, ui)) = start("filter_and_sort_a_list", DESKTOP).await else { return };
    ui.check(async {
        for (name, industry) in [
            ("Alpha 科技", "software"),
            ("Beta 贸易", "trade"),
            ("Gamma 科技", "software"),
            ("Delta 制造", "manufacturing"),
            ("Epsilon 科技", "trade"),
        ] {
            t.create("customer", json!({"name": name, "industry": industry})).await;
        }
        ui.sign_in("/e/customer").await;
        assert_eq!(ui.count("table#records tbody tr[data-id]").await, 5);
        assert_eq!(ui.text("span#total").await, "共 5 条");

        ui.fill("form#filters input[name=f_name]", "科技").await;
        ui.navigating(ui.click("button#apply-filters")).await;
        let mut titles = ui.texts("table#records tbody tr[data-id] a.record-link").await;
        titles.sort();
        assert_eq!(titles, ["Alpha 科技", "Epsilon 科技", "Gamma 科技"]);
        assert_eq!(ui.text("span#total").await, "共 3 条");
        assert_eq!(ui.value("form#filters input[name=f_name]").await, "科技", "the filter stays in its box");

        let names = "table#records tbody tr[data-id] a.record-link";
        ui.navigating(ui.click("th[data-field=name] a.sort")).await;
        assert_eq!(ui.attribute("th[data-field=name]", "aria-sort").await.as_deref(), Some("ascending"));
        assert_eq!(ui.texts(names).await, ["Alpha 科技", "Epsilon 科技", "Gamma 科技"]);
        ui.navigating(ui.click("th[data-field=name] a.sort")).await;
        assert_eq!(ui.attribute("th[data-field=name]", "aria-sort").await.as_deref(), Some("descending"));
        assert_eq!(ui.texts(names).await, ["Gamma 科技", "Epsilon 科技", "Alpha 科技"], "the order flips");
        assert_eq!(ui.text("span#total").await, "共 3 条", "sorting keeps the filter");

        ui.select("form#filters select[name=f_industry]", "software").await;
        ui.navigating(ui.click("button#apply-filters")).await;
        assert_eq!(ui.texts(names).await, ["Gamma 科技", "Alpha 科技"], "both filters, and still the sort");
        assert_eq!(ui.text("span#total").await, "共 2 条");
    })
    .await;
    ui.close().await;
}

/// Two rows ticked and given to another user; the third keeps its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_assign_two_records() {
    let Some((t, ui)) = start("bulk_assign_two_records", DESKTOP).await else { return };
    ui.check(async {
        let wang = add_user(&t, "王销售", "wang", "Start-12345").await;
        let admin = admin_id(&t).await;
        let mut ids = Vec::new();
        for name in ["一号客户", "二号客户", "三号客户"] {
            ids.push(id(&t.create("customer", json!({"name": name})).await));
        }
        ui.sign_in("/e/customer").await;
        assert_eq!(ui.text("[data-selected-count]").await, "已选 0 条");
        for picked in &ids[..2] {
            ui.click(&format!("table#records tr[data-id='{picked}'] input[name=ids]")).await;
        }
        assert_eq!(ui.text("[data-selected-count]").await, "已选 2 条", "the count follows the ticks");
        let option = format!("form#bulk select[name=owner] option[value='{wang}']");
        assert_eq!(ui.text(&option).await, "王销售");
        ui.select("form#bulk select[name=owner]", &wang).await;
        ui.navigating(ui.click("button#bulk-assign")).await;

        assert_eq!(ui.location().await, "/e/customer");
        assert_eq!(ui.text("div#flash").await, "已处理 2 条。");
        for (record, owner) in ids.iter().zip([&wang, &wang, &admin]) {
            let stored = t.get(&format!("/api/v1/records/customer/{record}")).await.expect(200);
            assert_eq!(stored["owner"].as_str(), Some(owner.as_str()), "{}", stored["name"]);
        }
        let row = format!("table#records tr[data-id='{}'] td[data-label]", ids[0]);
        assert!(ui.texts(&row).await.contains(&"王销售".to_owned()), "the list shows the new owner");
        ui.goto("/e/customer").await;
        assert!(!ui.exists("div#flash").await, "the message is shown once");

        // Updating a field with options offers the field's own options, not free text.
        ui.click(&format!("table#records tr[data-id='{}'] input[name=ids]", ids[2])).await;
        ui.select("form#bulk select[name=field]", "industry").await;
        let hidden = |selector: &str| format!("{}.hidden", q(selector));
        assert!(ui.eval::<bool>(&hidden("form#bulk input[name=value]")).await, "no free text for a select field");
        ui.select("form#bulk select[name=value_industry]", "retail").await;
        ui.navigating(ui.click("form#bulk button[value=update]")).await;
        assert_eq!(ui.text("div#flash").await, "已处理 1 条。");
        let stored = t.get(&format!("/api/v1/records/customer/{}", ids[2])).await.expect(200);
        assert_eq!(stored["industry"], "retail");
    })
    .await;
    ui.close().await;
}

/// An opportunity dragged from one kanban column to another changes stage; the stage path of
/// its record moves it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drag_an_opportunity_across_the_kanban() {
    let Some((t, ui)) = start("drag_an_opportunity_across_the_kanban", DESKTOP).await else { return };
    ui.check(async {
        let customer = id(&t.create("customer", json!({"name": "看板客户"})).await);
        let deal = t.create("opportunity", json!({"name": "大单", "customer": customer, "amount": "120000.00"})).await;
        let other = t.create("opportunity", json!({"name": "小单", "customer": customer, "amount": "800.00"})).await;
        let (deal, other) = (id(&deal), id(&other));
        ui.sign_in("/e/opportunity/board").await;
        assert!(ui.exists("#board[data-draggable]").await);
        let column = |stage: &str| format!("section.board-column[data-stage={stage}]");
        let count = |stage: &str| format!("{} span[data-count]", column(stage));
        let stage_of = |card: &str| {
            format!(
                "{}?.closest('.board-column')?.dataset.stage ?? null",
                q(&format!("li.kanban-card[data-id='{card}']"))
            )
        };
        assert_eq!(ui.text(&count("initial_contact")).await, "2");
        assert_eq!(ui.text(&count("needs_analysis")).await, "0");
        // Every column, won and lost too, is on the screen, and a card says whose deal it is.
        let right: f64 = ui.eval(&format!("{}.getBoundingClientRect().right", q(&column("lost")))).await;
        assert!(right <= 1280.0, "the lost column ends at {right} px");
        assert!(ui.text(&format!("li.kanban-card[data-id='{deal}']")).await.contains("系统管理员"));

        ui.navigating(ui.drag(&format!("li.kanban-card[data-id='{deal}']"), &column("needs_analysis"))).await;
        assert_eq!(ui.location().await, "/e/opportunity/board");
        assert_eq!(ui.eval::<Option<String>>(&stage_of(&deal)).await.as_deref(), Some("needs_analysis"));
        assert_eq!(ui.eval::<Option<String>>(&stage_of(&other)).await.as_deref(), Some("initial_contact"));
        assert_eq!(ui.text(&count("initial_contact")).await, "1");
        assert_eq!(ui.text(&count("needs_analysis")).await, "1");
        assert!(ui.exists("div#flash").await, "the move is confirmed");
        let stored = t.get(&format!("/api/v1/records/opportunity/{deal}")).await.expect(200);
        assert_eq!(stored["stage"], "needs_analysis");
        let untouched = t.get(&format!("/api/v1/records/opportunity/{other}")).await.expect(200);
        assert_eq!(untouched["stage"], "initial_contact");

        // The stage path on the record page.
        ui.goto(&format!("/e/opportunity/{deal}")).await;
        assert!(ui.exists("section#stage-path span[data-stage=needs_analysis][aria-current=step]").await);
        ui.navigating(ui.click("section#stage-path button[data-stage=proposal]")).await;
        assert_eq!(ui.location().await, format!("/e/opportunity/{deal}"));
        assert!(ui.exists("section#stage-path span[data-stage=proposal][aria-current=step]").await);
        let stored = t.get(&format!("/api/v1/records/opportunity/{deal}")).await.expect(200);
        assert_eq!(stored["stage"], "proposal");
    })
    .await;
    ui.close().await;
}

/// An activity dragged to another day on the calendar is rescheduled there, at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drag_an_activity_to_another_day() {
    let Some((t, ui)) = start("drag_an_activity_to_another_day", DESKTOP).await else { return };
    ui.check(async {
        let offset = crm::schedule::business_offset();
        let today = chrono::Utc::now().with_timezone(&offset).date_naive();
        // A day in the same week row: tomorrow, or Saturday on a Sunday.
        let other =
            if chrono::Datelike::weekday(&today) == chrono::Weekday::Sun { today.pred_opt() } else { today.succ_opt() }
                .unwrap();
        let due = today.and_hms_opt(15, 30, 0).unwrap().and_local_timezone(offset).unwrap().to_rfc3339();
        let activity = id(&t.create("activity", json!({"name": "日历上的拜访", "due_at": due})).await);
        ui.sign_in("/calendar").await;
        let event = format!("li.event[data-id='{activity}']");
        assert!(ui.text(&format!("td.day[data-date='{today}'] {event}")).await.contains("15:30 日历上的拜访"));
        ui.navigating(ui.drag(&event, &format!("td.day[data-date='{other}']"))).await;
        assert!(ui.exists(&format!("td.day[data-date='{other}'] {event}")).await, "on the new day");
        let stored = t.get(&format!("/api/v1/records/activity/{activity}")).await.expect(200);
        let stored = chrono::DateTime::parse_from_rfc3339(stored["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(stored.with_timezone(&offset).naive_local(), other.and_hms_opt(15, 30, 0).unwrap());

        // On the day's page, dropped on another hour: the minutes kept.
        ui.navigating(ui.click("#calendar-view-day")).await;
        assert!(ui.location().await.contains("view=day"), "the day view");
        ui.goto(&format!("/calendar?view=day&date={other}")).await;
        let slot = |hour: &str| format!("td.day[data-date='{other}'][data-hour='{hour}']");
        assert!(ui.exists(&format!("{} {event}", slot("15"))).await, "in its hour");
        ui.navigating(ui.drag(&event, &slot("17"))).await;
        assert!(ui.exists(&format!("{} {event}", slot("17"))).await, "in the new hour");
        let stored = t.get(&format!("/api/v1/records/activity/{activity}")).await.expect(200);
        let stored = chrono::DateTime::parse_from_rfc3339(stored["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(stored.with_timezone(&offset).naive_local(), other.and_hms_opt(17, 30, 0).unwrap());
    })
    .await;
    ui.close().await;
}

/// Language and theme from the user menu: the page comes back in English and dark, stays so on
/// other pages, and in the user's next session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_language_and_theme() {
    let Some((t, ui)) = start("switch_language_and_theme", DESKTOP).await else { return };
    ui.check(async {
        t.create("customer", json!({"name": "语言客户"})).await;
        ui.sign_in("/e/customer").await;
        let lang = "document.documentElement.lang";
        let theme = "document.documentElement.dataset.theme";
        let background = "getComputedStyle(document.body).backgroundColor";
        assert_eq!(ui.eval::<String>(lang).await, "zh-CN", "a Chinese browser gets Chinese pages");
        assert_eq!(ui.eval::<String>(theme).await, "blue");
        let light: String = ui.eval(background).await;
        assert_eq!(ui.text("span#total").await, "共 1 条");

        ui.menu("button[data-locale=en]").await;
        assert_eq!(ui.location().await, "/e/customer", "back on the same page");
        assert_eq!(ui.eval::<String>(lang).await, "en");
        assert_eq!(ui.text("span#total").await, "1 in all");
        assert_eq!(ui.eval::<String>(theme).await, "blue");

        ui.menu("button[data-theme-choice=dark]").await;
        assert_eq!(ui.eval::<String>(theme).await, "dark");
        assert_eq!(ui.eval::<String>(lang).await, "en", "the language stays");
        let dark: String = ui.eval(background).await;
        assert_ne!(dark, light, "the theme's colours apply");
        assert_eq!(dark, "rgb(13, 17, 23)");

        ui.navigating(ui.click("nav#nav a[href='/e/contact']")).await;
        assert_eq!(ui.location().await, "/e/contact");
        assert_eq!((ui.eval::<String>(lang).await, ui.eval::<String>(theme).await), ("en".into(), "dark".into()));
        assert!(ui.exists("div#empty").await, "no contacts yet");

        // Remembered for the user, not the browser session.
        ui.menu("button#logout").await;
        ui.sign_in("/e/opportunity").await;
        assert_eq!((ui.eval::<String>(lang).await, ui.eval::<String>(theme).await), ("en".into(), "dark".into()));
    })
    .await;
    ui.close().await;
}

/// A value the server refuses: the form comes back with the message beside the field and what
/// was typed still there; corrected, it saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_error_shown_inline() {
    let Some((t, ui)) = start("form_error_shown_inline", DESKTOP).await else { return };
    ui.check(async {
        ui.sign_in("/e/customer/new").await;
        ui.fill("form#record-form input[name=name]", "深圳邮箱有误公司").await;
        ui.fill("form#record-form input[name=email]", "not-an-email").await;
        ui.select("form#record-form select[name=industry]", "retail").await;
        ui.navigating(ui.click("button#save")).await;

        assert_eq!(ui.location().await, "/e/customer/new", "still on the form");
        assert!(!ui.text("p.field-error[data-error-for=email]").await.is_empty(), "the error is said");
        let beside: bool = ui
            .eval("document.querySelector('p.field-error[data-error-for=email]').closest('.field').dataset.field === 'email'")
            .await;
        assert!(beside, "the error is beside the email field");
        assert_eq!(ui.count("p.field-error").await, 1, "only the email is wrong");
        assert!(ui.exists("#form-errors").await);
        assert_eq!(ui.value("form#record-form input[name=name]").await, "深圳邮箱有误公司", "the name is kept");
        assert_eq!(ui.value("form#record-form input[name=email]").await, "not-an-email", "the bad value is kept");
        assert_eq!(ui.value("form#record-form select[name=industry]").await, "retail", "the choice is kept");
        assert_eq!(t.list("customer", None, "count=true").await.expect(200)["total"], 0, "nothing was saved");

        ui.fill("form#record-form input[name=email]", "hello@example.com").await;
        ui.navigating(ui.click("button#save")).await;
        let path = ui.location().await;
        let saved_id = path.strip_prefix("/e/customer/").unwrap_or_else(|| panic!("on the new record, not {path}"));
        assert!(uuid::Uuid::parse_str(saved_id).is_ok(), "a record page: {path}");
        let saved = t.list("customer", None, "").await.expect(200)["data"][0].clone();
        assert_eq!((saved["name"].as_str(), saved["email"].as_str()), (Some("深圳邮箱有误公司"), Some("hello@example.com")));
        assert_eq!(saved["industry"], "retail");
        assert_eq!(saved["id"].as_str(), Some(saved_id));
    })
    .await;
    ui.close().await;
}

/// On a phone, pages fit the screen's width and the module menu opens from its button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_width_pages_fit() {
    let Some((t, ui)) = start("phone_width_pages_fit", PHONE).await else { return };
    ui.check(async {
        let customer = t
            .create(
                "customer",
                json!({"name": "北京立友信科技有限公司华南大区深圳分公司", "industry": "software", "region": "广东省/深圳市",
                       "annual_revenue": "123456789.00", "email": "procurement.department@lixinyou-technology.example.com",
                       "website": "https://www.lixinyou-technology-group.example.com/about/company/profile",
                       "address": "广东省深圳市南山区粤海街道科技园南区高新南七道数字技术园"}),
            )
            .await;
        let customer = id(&customer);
        t.create(
            "contact",
            json!({"name": "欧阳晓明", "customer": customer, "title": "信息化建设部副总经理",
                   "email": "ouyang.xiaoming@lixinyou-technology.example.com", "mobile": "13800138000"}),
        )
        .await;
        t.create("opportunity", json!({"name": "全国门店 ERP 替换项目", "customer": customer, "amount": "2500000.00"})).await;

        let mut too_wide = Vec::new();
        ui.goto("/e/customer").await;
        assert!(ui.location().await.starts_with("/login"));
        too_wide.extend(ui.too_wide(PHONE.width).await);
        ui.sign_in("/e/customer").await;
        let nav_shown = "getComputedStyle(document.getElementById('nav')).display !== 'none'";
        assert!(!ui.eval::<bool>(nav_shown).await, "the module menu is folded away");
        assert_eq!(ui.attribute("button.nav-toggle", "aria-expanded").await.as_deref(), Some("false"));
        too_wide.extend(ui.too_wide(PHONE.width).await);

        ui.click("button.nav-toggle").await;
        ui.wait(&format!("document.getElementById('nav').classList.contains('open') && {nav_shown}"), "the menu").await;
        assert_eq!(ui.attribute("button.nav-toggle", "aria-expanded").await.as_deref(), Some("true"));
        ui.navigating(ui.click("nav#nav a[href='/e/opportunity']")).await;
        assert_eq!(ui.location().await, "/e/opportunity");
        assert!(!ui.eval::<bool>(nav_shown).await, "the menu is folded again on the next page");

        for page in [
            "/e/opportunity".to_owned(),
            "/e/contact".to_owned(),
            format!("/e/customer/{customer}"),
            "/e/customer/new".to_owned(),
            format!("/e/customer/{customer}/edit"),
            "/e/opportunity/new".to_owned(),
            "/e/opportunity/board".to_owned(),
            "/reports".to_owned(),
            "/reports/sales_funnel".to_owned(),
            "/reports/build?entity=opportunity&group1=stage&measure=count&chart=bar".to_owned(),
            "/mail/compose?entity=contact".to_owned(),
            "/studio/mail".to_owned(),
            "/studio/forms/contact_us".to_owned(),
        ] {
            ui.goto(&page).await;
            assert_eq!(ui.location().await, page);
            too_wide.extend(ui.too_wide(PHONE.width).await);
        }
        assert!(too_wide.is_empty(), "pages wider than a {} px phone:\n{}", PHONE.width, too_wide.join("\n"));

        // A list row is a compact card; an order's approval comes before its details.
        ui.goto("/e/customer").await;
        let row = q(&format!("table#records tr[data-id='{customer}']"));
        let height: f64 = ui.eval(&format!("{row}.getBoundingClientRect().height")).await;
        assert!(height < 120.0, "a compact card, not {height} px");
        let order = id(&t.create("order", json!({"name": "手机上的订单", "customer": customer})).await);
        ui.goto(&format!("/e/order/{order}")).await;
        let top: f64 = ui.eval("document.getElementById('approval').getBoundingClientRect().top").await;
        assert!(top < 700.0, "the approval box is near the top, not {top} px down");
        assert_eq!(ui.too_wide(PHONE.width).await, None, "the order fits");
    })
    .await;
    ui.close().await;
}

/// The layout designer: a field dragged from the palette into a section, and one dragged out
/// to the palette, are on (and off) the form once saved — with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drag_fields_on_the_layout_designer() {
    let Some((t, ui)) = start("drag_fields_on_the_layout_designer", DESKTOP).await else { return };
    ui.check(async {
        let field = json!({"name": "wechat", "type": "text", "label": {"zh-CN": "微信号", "en": "WeChat"}, "place_on_layouts": false});
        t.post("/api/v1/meta/entities/customer/fields", field).await.expect(201);
        ui.sign_in("/studio/e/customer/layout").await;
        assert!(ui.exists("#palette li.chip-field[data-field=wechat]").await, "the new field waits in the palette");
        let first = "#designer section.designer-section:first-of-type ol.chips";
        ui.drag("#palette li.chip-field[data-field=wechat]", &format!("{first} li.chip-field[data-field=name]")).await;
        ui.wait(&format!("!!{}", q(&format!("{first} li.chip-field[data-field=wechat]"))), "the field in the first section")
            .await;
        ui.drag(&format!("{first} li.chip-field[data-field=class]"), "#palette").await;
        ui.wait(&format!("!!{}", q("#palette li.chip-field[data-field=class]")), "the class field back in the palette").await;
        ui.navigating(ui.click("#save-layout")).await;
        assert!(ui.exists("div#flash").await, "saved");
        ui.goto("/e/customer/new").await;
        assert!(ui.exists("#record-form input[name=wechat]").await, "the dragged field is on the form");
        assert!(!ui.exists("#record-form [name=class]").await, "the removed one is not");
        let order: Vec<String> = ui
            .eval(r#"[...document.querySelectorAll('#record-form [name]')].map(e => e.name).filter(n => n === 'wechat' || n === 'name')"#)
            .await;
        assert_eq!(order, ["wechat", "name"], "dropped before the name field");
    })
    .await;
    ui.close().await;
}

/// A field the studio's form adds: name, labels, type, and the selects it needs.
type FieldToAdd = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The studio's promise, in the browser only: an administrator builds a "竞争对手" module —
/// five fields of different types, laid out by dragging, a stage set of three stages, a
/// validation rule, a role grant and a panel on customers — and a sales rep uses it at once:
/// creates a record from the customer, is refused a bad value, moves the stage, and sees the
/// record on the customer. No restart in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_builds_a_module_and_a_rep_uses_it() {
    let Some((t, ui)) = start("an_admin_builds_a_module_and_a_rep_uses_it", DESKTOP).await else { return };
    ui.check(async {
        let rep = add_rep_wang(&t).await;
        let customer = id(&t.create("customer", json!({"name": "被竞争的客户", "owner": rep})).await);

        ui.sign_in("/studio").await;
        // The entity: its plan first, then live.
        ui.fill("#entity-name", "competitor").await;
        ui.fill("#entity-zh", "竞争对手").await;
        ui.fill("#entity-en", "Competitor").await;
        ui.navigating(ui.click("#entity-submit")).await;
        assert!(ui.text("#studio-plan").await.contains("新建数据表「竞争对手」"));
        ui.navigating(ui.click("#entity-submit")).await;
        assert_eq!(ui.location().await, "/studio/e/competitor");

        // A stage set of three stages.
        ui.goto("/studio/stage-sets/rivalry").await;
        ui.fill("#set-zh", "竞争阶段").await;
        ui.fill("#set-en", "Rivalry").await;
        for (row, (name, zh, en, probability, category)) in
            [("watch", "观察", "Watch", "10", "open"), ("compete", "竞争", "Compete", "50", "open"), ("beaten", "击败", "Beaten", "100", "won")]
                .into_iter()
                .enumerate()
        {
            let cell = |field: &str| format!("#stage-rows tbody tr:nth-child({}) [name={field}]", row + 1);
            ui.fill(&cell("stage"), name).await;
            ui.fill(&cell("stage_zh"), zh).await;
            ui.fill(&cell("stage_en"), en).await;
            ui.fill(&cell("probability"), probability).await;
            ui.select(&cell("category"), category).await;
        }
        ui.navigating(ui.click("#save-stage-set")).await;
        assert!(ui.exists("div#flash").await, "the stage set is saved");

        // Five fields of different types.
        let fields: [FieldToAdd; 5] = [
            ("customer", "客户", "Customer", "lookup", &[("#field-target", "customer")]),
            ("strength", "实力", "Strength", "integer", &[]),
            ("stage", "阶段", "Stage", "stage", &[("#field-stage-set", "rivalry")]),
            ("threat", "威胁", "Threat", "select", &[]),
            ("since", "发现日期", "Found on", "date", &[]),
        ];
        for (name, zh, en, ty, picks) in fields {
            ui.goto("/studio/e/competitor").await;
            ui.fill("#field-name", name).await;
            ui.fill("#field-zh", zh).await;
            ui.fill("#field-en", en).await;
            ui.select("#field-type", ty).await;
            for (select, value) in picks {
                ui.select(select, value).await;
            }
            if ty == "select" {
                ui.eval::<Value>(&format!("{}.value = 'high | 高 | High\\nlow | 低 | Low'", q("#field-options"))).await;
            }
            if ty == "stage" {
                ui.fill("#field-default", "watch").await;
            }
            ui.navigating(ui.click("#field-submit")).await;
            assert!(ui.exists("#studio-plan").await, "{name}: the plan is shown first");
            ui.navigating(ui.click("#field-submit")).await;
            assert!(ui.exists(&format!("#studio-fields tr[data-field={name}]")).await, "{name} is a field");
        }

        // Laid out by dragging: strength before the name.
        ui.goto("/studio/e/competitor/layout").await;
        let section = "#designer section.designer-section:first-of-type ol.chips";
        ui.drag(&format!("{section} li.chip-field[data-field=strength]"), &format!("{section} li.chip-field[data-field=name]")).await;
        ui.navigating(ui.click("#save-layout")).await;

        // A validation rule.
        ui.goto("/studio/scripts/strength_range").await;
        ui.fill("#script-zh", "实力范围").await;
        ui.fill("#script-en", "Strength range").await;
        ui.select("#script-event", "validate").await;
        ui.select("#script-entity", "competitor").await;
        ui.fill("#script-source", r#"if record.strength != () && record.strength > 5 { error("strength", "实力为 1 到 5"); }"#).await;
        ui.navigating(ui.click("#save-script")).await;
        assert!(ui.exists("div#flash").await, "the rule is saved");

        // Sales reps may read, create and change competitors.
        ui.goto("/studio/roles/sales_rep").await;
        for action in ["read", "create", "edit"] {
            ui.click(&format!("#role-matrix input[name='competitor.{action}']")).await;
        }
        ui.navigating(ui.click("#save-role")).await;
        assert!(ui.exists("div#flash").await, "the role is saved");

        // A panel of competitors on customers.
        ui.goto("/studio/e/customer/related").await;
        ui.select("#panel-source", "competitor.customer").await;
        ui.fill("#panel-name", "competitors").await;
        ui.fill("#panel-columns", "name, stage, strength").await;
        ui.fill("#panel-zh", "竞争对手").await;
        ui.fill("#panel-en", "Competitors").await;
        ui.navigating(ui.click("#save-panel")).await;
        assert!(ui.exists("#related-panels li[data-panel=competitors]").await);

        // The rep, in the same running server.
        ui.menu("#logout").await;
        ui.sign_in_as("wang", "second-Password-2", &format!("/e/customer/{customer}")).await;
        ui.navigating(ui.click("a[data-new-related=competitors]")).await;
        assert!(ui.exists("#record-form input[name=strength]").await);
        let order: Vec<String> =
            ui.eval("[...document.querySelectorAll('#record-form [name=strength], #record-form [name=name]')].map(e => e.name)").await;
        assert_eq!(order, ["strength", "name"], "the layout as dragged");
        ui.fill("#record-form input[name=name]", "对手乙").await;
        ui.fill("#record-form input[name=strength]", "9").await;
        ui.navigating(ui.click("#save")).await;
        assert!(ui.text("p.field-error[data-error-for=strength]").await.contains("实力为 1 到 5"), "the rule refuses");
        ui.fill("#record-form input[name=strength]", "4").await;
        ui.navigating(ui.click("#save")).await;
        assert_eq!(ui.location().await, format!("/e/customer/{customer}"), "back on the customer");
        assert!(ui.text("section#panel-competitors").await.contains("对手乙"), "the record is on the customer");

        ui.navigating(ui.click("section#panel-competitors tbody tr a")).await;
        assert!(ui.exists("section#stage-path span[data-stage=watch][aria-current=step]").await);
        ui.navigating(ui.click("section#stage-path button[data-stage=compete]")).await;
        assert!(ui.exists("section#stage-path span[data-stage=compete][aria-current=step]").await, "the stage moved");
        let stored = t.list("competitor", None, "").await.expect(200);
        assert_eq!(stored["data"][0]["stage"], "compete");
        assert_eq!(stored["data"][0]["owner"], rep.as_str(), "owned by the rep who created it");
    })
    .await;
    ui.close().await;
}

/// An administrator installs a template from the studio's gallery, with its sample data; a
/// rep then uses it: the new module in the menu, a visit planned from a customer's new panel,
/// the template's rule refusing a visit done without its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_from_the_gallery_used_by_a_rep() {
    let Some((t, ui)) = start("a_template_from_the_gallery_used_by_a_rep", DESKTOP).await else { return };
    ui.check(async {
        let rep = add_rep_wang(&t).await;

        ui.sign_in("/studio/templates").await;
        assert!(ui.text("section[data-template=direct_sales]").await.contains("未安装"));
        ui.navigating(ui.click("section[data-template=direct_sales] a.button")).await;
        assert!(ui.exists("#template-steps tr[data-item='entities/prospect_visit'][data-action=add]").await);
        ui.click("#template-sample").await;
        ui.navigating(ui.click("#template-apply")).await;
        assert!(ui.text("div#flash").await.contains("已安装"), "installed");
        assert!(ui.text("#template-status").await.contains("已安装"));
        assert!(t.list("prospect_visit", None, "").await.expect(200)["data"].as_array().is_some_and(|v| !v.is_empty()));

        let customer = id(&t.create("customer", json!({"name": "杭州试用客户有限公司", "owner": rep})).await);
        ui.menu("#logout").await;
        ui.sign_in_as("wang", "second-Password-2", &format!("/e/customer/{customer}")).await;
        assert!(ui.exists("nav a[href='/e/prospect_visit']").await, "the new module is in the rep's menu");
        ui.navigating(ui.click("a[data-new-related=prospect_visits]")).await;
        ui.fill("#record-form input[name=name]", "首次上门演示").await;
        ui.select("#record-form select[name=visit_purpose]", "product_demo").await;
        let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
        ui.eval::<Value>(&format!("{}.value = '{today}'", q("#record-form input[name=visit_date]"))).await;
        ui.select("#record-form select[name=status]", "done").await;
        ui.navigating(ui.click("#save")).await;
        assert!(
            ui.text("p.field-error[data-error-for=visit_result]").await.contains("拜访结果"),
            "the template's rule refuses"
        );
        ui.select("#record-form select[name=visit_result]", "intent").await;
        ui.navigating(ui.click("#save")).await;
        assert_eq!(ui.location().await, format!("/e/customer/{customer}"), "back on the customer");
        assert!(
            ui.text("section#panel-prospect_visits").await.contains("首次上门演示"),
            "the visit is on the customer"
        );
        let visits =
            t.list("prospect_visit", Some(json!({"field": "customer", "op": "eq", "value": customer})), "").await;
        assert_eq!(visits.expect(200)["data"][0]["owner"], rep.as_str(), "owned by the rep");
    })
    .await;
    ui.close().await;
}

/// The top bar's box finds customers as one types a few characters of their name; the full
/// results page marks the match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_from_the_top_bar() {
    let Some((t, ui)) = start("search_from_the_top_bar", DESKTOP).await else { return };
    ui.check(async {
        let lixin = id(&t.create("customer", json!({"name": "北京立友信科技有限公司"})).await);
        t.create("customer", json!({"name": "上海东方贸易公司"})).await;
        t.run_jobs().await;
        ui.sign_in("/e/customer").await;
        ui.fill("#global-search", "立友").await;
        let hit = format!("#search-suggest a.suggest-hit[href='/e/customer/{lixin}']");
        ui.wait(
            &format!("!!document.querySelector(\"{hit}\") && !document.getElementById('search-suggest').hidden"),
            "suggestions",
        )
        .await;
        assert_eq!(ui.texts("#search-suggest a.suggest-hit").await, vec!["北京立友信科技有限公司".to_owned()]);
        assert_eq!(ui.text("#search-suggest .suggest-group").await, "客户");
        ui.navigating(ui.click("#search-suggest a.suggest-all")).await;
        assert!(ui.location().await.starts_with("/search?q="));
        assert_eq!(ui.text("#search-results mark").await, "立友", "the match is marked");
        ui.navigating(ui.click(&format!("#search-results a[href='/e/customer/{lixin}']"))).await;
        assert_eq!(ui.location().await, format!("/e/customer/{lixin}"));
    })
    .await;
    ui.close().await;
}

/// Entering a customer a colleague already has: the form names the colleague and their
/// department before the save, without showing the record; the administrator sees which one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_likely_duplicate_is_shown_on_the_form() {
    let Some((t, ui)) = start("a_likely_duplicate_is_shown_on_the_form", DESKTOP).await else { return };
    ui.check(async {
        let east = id(&t.create("department", json!({"name": "华东销售部"})).await).to_owned();
        let (zhang, _) = t.user("zhangsan", &["sales_rep"], Some(&east)).await;
        t.user("lisi", &["sales_rep"], None).await;
        let lixin =
            id(&t.create("customer", json!({"name": "北京立友信科技有限公司", "owner": zhang})).await).to_owned();
        t.run_jobs().await;
        ui.sign_in_as("lisi", support::USER_PASSWORD, "/e/customer/new").await;
        ui.fill("#in-name", "立友信科技（北京）有限公司").await;
        ui.wait("!document.getElementById('duplicates').hidden", "the duplicate warning").await;
        let said = ui.text("#duplicates li").await;
        assert!(said.contains("zhangsan") && said.contains("华东销售部"), "{said}");
        assert!(!said.contains("北京立友信"), "nothing of the record itself: {said}");
        assert_eq!(ui.count("#duplicates li a").await, 0);

        ui.menu("button#logout").await;
        ui.sign_in("/e/customer/new").await;
        ui.fill("#in-name", "北京立友信科技公司").await;
        let link = format!("#duplicates a[href='/e/customer/{lixin}']");
        ui.wait(&format!("!!document.querySelector(\"{link}\")"), "the duplicate's link").await;
        assert_eq!(ui.text(&link).await, "北京立友信科技有限公司");
        // A different name: the warning goes.
        ui.fill("#in-name", "深圳华强电子有限公司").await;
        ui.wait("document.getElementById('duplicates').hidden", "the warning gone").await;
    })
    .await;
    ui.close().await;
}

/// Two customers ticked in the list are merged on the merge page; the survivor's notice undoes
/// it and both are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_two_customers_then_undo() {
    let Some((t, ui)) = start("merge_two_customers_then_undo", DESKTOP).await else { return };
    ui.check(async {
        let kept = id(&t
            .create("customer", json!({"name": "杭州云帆科技", "industry": "software", "region": "浙江省"}))
            .await);
        let other = id(&t.create("customer", json!({"name": "杭州云帆", "email": "yf@example.cn"})).await);
        t.create("contact", json!({"name": "吴婷", "customer": other})).await;
        ui.sign_in("/e/customer").await;
        for picked in [&kept, &other] {
            ui.click(&format!("table#records tr[data-id='{picked}'] input[name=ids]")).await;
        }
        ui.navigating(ui.click("button#bulk-merge")).await;
        assert!(ui.location().await.starts_with("/e/customer/merge?ids="));
        assert_eq!(ui.text("p#merge-summary").await, "1 条关联记录将指向保留的记录 (联系人 1)");
        assert!(ui.eval::<bool>(&format!("{}.checked", q(&format!("input[data-master='{kept}']")))).await);
        ui.click(&format!("tr[data-field=email] input[value='{other}']")).await;
        ui.navigating(ui.click("button#confirm-merge")).await;

        assert_eq!(ui.location().await, format!("/e/customer/{kept}"));
        assert!(ui.text("form#merge-notice").await.starts_with("已合并 2 条记录"));
        let stored = t.get(&format!("/api/v1/records/customer/{kept}")).await.expect(200);
        assert_eq!(stored["email"], "yf@example.cn", "the value chosen from the other record");
        t.get(&format!("/api/v1/records/customer/{other}")).await.expect(404);

        ui.navigating(ui.click("button#undo-merge")).await;
        assert_eq!(ui.text("div#flash").await, "已撤销合并，记录已恢复。");
        assert!(!ui.exists("form#merge-notice").await);
        ui.goto("/e/customer").await;
        for record in [&kept, &other] {
            assert!(ui.exists(&format!("table#records tr[data-id='{record}']")).await, "both are back");
        }
        let restored = t.get(&format!("/api/v1/records/customer/{kept}")).await.expect(200);
        assert!(restored["email"].is_null(), "the survivor's own values are back");
    })
    .await;
    ui.close().await;
}

/// A service request's 查找知识 box finds an article as one types and 关联 attaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_an_article_to_a_service_request() {
    let Some((t, ui)) = start("attach_an_article_to_a_service_request", DESKTOP).await else { return };
    ui.check(async {
        let customer = id(&t.create("customer", json!({"name": "北京立友信科技有限公司"})).await);
        let request = id(&t.create("service_request", json!({"name": "打印机无法打印", "customer": customer})).await);
        let article = id(&t
            .create(
                "knowledge_article",
                json!({"name": "打印机卡纸处理", "published": true, "content": "打开后盖，取出卡住的纸张。"}),
            )
            .await);
        t.create("knowledge_article", json!({"name": "发票开具说明", "published": true})).await;
        t.run_jobs().await;
        ui.sign_in(&format!("/e/service_request/{request}")).await;
        assert_eq!(ui.text("#panel-articles h2").await, "关联知识 0");
        ui.fill("#kb-find-input", "卡纸").await;
        let attach = format!("#kb-find-hits button[data-attach='{article}']");
        ui.wait(&format!("!!{}", q(&attach)), "a hit with 关联").await;
        assert_eq!(ui.texts("#kb-find-hits a").await, vec!["打印机卡纸处理".to_owned()]);
        assert_eq!(ui.text("#kb-find-hits mark").await, "卡纸", "the match is marked");
        ui.click(&attach).await;
        ui.wait(
            "document.querySelector('#panel-articles tbody')?.textContent.includes('打印机卡纸处理')",
            "the article in the 关联知识 panel",
        )
        .await;
        assert_eq!(ui.text("#panel-articles h2").await, "关联知识 1");
        assert!(!ui.exists(&attach).await, "an attached article is not offered again");
        let links = t.list("service_request_article", None, "").await.expect(200);
        assert_eq!(links["data"].as_array().unwrap().len(), 1);
        assert_eq!(links["data"][0]["article"], json!(article));
    })
    .await;
    ui.close().await;
}

/// A CSV chosen on the import page: its columns get their fields proposed from the Chinese
/// header, a bad row shows its error in the preview, the import runs with a progress bar to
/// its summary, and the good rows are customers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_a_csv_from_the_list() {
    let Some((t, ui)) = start("import_a_csv_from_the_list", DESKTOP).await else { return };
    ui.check(async {
        ui.sign_in("/e/customer").await;
        ui.navigating(ui.click("a#import")).await;
        assert_eq!(ui.location().await, "/e/customer/import");
        assert!(ui.text("#import-empty").await.starts_with("还没有选择文件"));

        let file = "\u{feff}客户名称,所属行业,电子邮件,备注\n浏览器导入一,软件与信息技术,a@example.com,第一行\n浏览器导入二,制造业,不是邮箱,第二行\n浏览器导入三,,c@example.com,\n";
        let choose = format!(
            "(() => {{ const input = document.getElementById('import-file'); const files = new DataTransfer();
               files.items.add(new File([{}], '客户.csv', {{ type: 'text/csv' }}));
               input.files = files.files; input.dispatchEvent(new Event('change')); return true; }})()",
            js(file)
        );
        ui.eval::<Value>(&choose).await;
        ui.wait("document.querySelectorAll('#import-columns select').length === 4", "the mapping").await;
        let proposed: Vec<String> =
            ui.eval("[...document.querySelectorAll('#import-columns select')].map((s) => s.value)").await;
        assert_eq!(proposed, ["name", "industry", "email", "remark"], "proposed from the Chinese header");
        assert_eq!(ui.count("#import-rows tbody tr").await, 3);
        assert_eq!(ui.count("#import-rows tbody tr.failed").await, 1, "the bad email shows before importing");
        assert!(ui.text("#import-rows tbody tr.failed .form-error").await.contains("电子邮件"));

        ui.click("button#import-start").await;
        ui.wait("!document.getElementById('import-summary').hidden", "the summary").await;
        let bar: (f64, f64) = ui
            .eval("[document.getElementById('import-bar').value, document.getElementById('import-bar').max]")
            .await;
        assert_eq!(bar.0, bar.1, "the progress bar is full");
        assert_eq!(ui.text("#import-counts").await, "新建 2 条，更新 0 条，跳过 0 条，失败 1 条。");
        assert!(ui.exists("a#import-report:not([hidden])").await, "the report of the failed row");
        assert!(ui.text("#import-failures li").await.starts_with("行号 3: 电子邮件"), "the failed row and why");
        let names = t.names("customer", json!({"field": "name", "op": "starts_with", "value": "浏览器导入"})).await;
        assert_eq!(names, ["浏览器导入一", "浏览器导入三"]);
    })
    .await;
    ui.close().await;
}

/// A quote's 打印 button opens its print page: the lines, the total and the total in Chinese
/// capitals (人民币大写), laid out for A4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_a_quote() {
    let Some((t, ui)) = start("print_a_quote", DESKTOP).await else { return };
    let customer = t.create("customer", json!({"name": "上海打印测试有限公司"})).await;
    let quote = t.create("quote", json!({"name": "打印报价", "customer": customer["id"]})).await;
    let quote = id(&quote);
    t.create("quote_line", json!({"quote": quote, "name": "工作站", "quantity": "2", "price": "5000.05"})).await;
    ui.check(async {
        ui.sign_in(&format!("/e/quote/{quote}")).await;
        assert_eq!(ui.text("a#print-record").await, "打印");
        ui.navigating(ui.click("a#print-record")).await;
        assert_eq!(ui.location().await, format!("/e/quote/{quote}/print"));
        assert!(ui.text("body").await.contains("人民币大写"));
        assert_eq!(ui.text("strong.rmb-upper").await, "壹万元零壹角");
        assert_eq!(ui.count("table.lines tbody tr").await, 1);
        let a4: bool = ui
            .eval("[...document.styleSheets].some((s) => [...s.cssRules].some((r) => /size:\\s*a4/i.test(r.cssText)))")
            .await;
        assert!(a4, "the page is laid out for A4");
    })
    .await;
    ui.close().await;
}

/// The report builder: a module chosen loads its choices; each change shows the result in
/// place (no page load), a bar of the chart leads to the records behind it, and the design is
/// saved under a name and opens as a report of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_a_report_and_drill_into_a_bar() {
    let Some((t, ui)) = start("build_a_report_and_drill_into_a_bar", DESKTOP).await else { return };
    let customer = t.create("customer", json!({"name": "北京报表测试有限公司"})).await;
    for (stage, amount) in [("proposal", "800.00"), ("proposal", "200.00"), ("won", "5000.00")] {
        let deal = json!({"name": "报表商机", "customer": customer["id"], "stage": stage, "amount": amount});
        t.create("opportunity", deal).await;
    }
    ui.check(async {
        ui.sign_in("/reports").await;
        ui.navigating(ui.click("a#new-report")).await;
        assert_eq!(ui.location().await, "/reports/build");
        ui.navigating(ui.select("#rb-entity", "opportunity")).await;
        assert!(ui.exists("#rb-group1").await, "the module's groups are offered");
        // From here on the result changes in place: the page is not loaded again.
        ui.eval::<Value>("window.__same_page = true").await;
        ui.select("#rb-group1", "stage").await;
        ui.wait("document.querySelectorAll('#report-preview table tbody tr').length === 2", "a row per stage").await;
        ui.select("#rb-measure2", "sum:amount").await;
        ui.wait("document.querySelector('#report-preview table').textContent.includes('1000.00')", "the sum").await;
        ui.select("#rb-chart", "pie").await;
        ui.wait("document.querySelectorAll('#report-preview svg .chart-slice').length === 2", "a pie").await;
        assert!(ui.eval::<bool>("window.__same_page === true").await, "no page load while designing");
        assert!(ui.location().await.contains("chart=pie"), "the address keeps the design");

        ui.fill("#rb-label", "阶段金额").await;
        ui.click("#report-save input[value=sales_rep]").await;
        ui.navigating(ui.click("#save-report")).await;
        assert!(ui.location().await.starts_with("/reports/u_"), "{}", ui.location().await);
        assert_eq!(ui.text("h1").await, "阶段金额");
        assert_eq!(ui.count("svg .chart-slice").await, 2);

        // A slice leads to the list of the deals behind it.
        let href: String = ui
            .eval("[...document.querySelectorAll('svg a')].find(a => a.textContent.includes('方案报价')).getAttribute('href')")
            .await;
        ui.goto(&href).await;
        assert!(ui.location().await.starts_with("/e/opportunity?filter="));
        assert!(ui.exists("#drill-notice").await);
        assert_eq!(ui.count("table tbody tr[data-id]").await, 2, "the two proposals");
        ui.navigating(ui.click("#drill-notice a")).await;
        assert_eq!(ui.count("table tbody tr[data-id]").await, 3, "all deals again");
    })
    .await;
    ui.close().await;
}

/// The home page is the role's dashboard, drawn as charts in the page; it fits a phone, and a
/// figure of the funnel opens the deals behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_draws_its_charts_and_fits_a_phone() {
    let Some((t, ui)) = start("a_dashboard_draws_its_charts_and_fits_a_phone", PHONE).await else { return };
    let customer = t.create("customer", json!({"name": "广州看板测试有限公司"})).await;
    for (name, stage, amount) in [("看板方案商机", "proposal", "1500.00"), ("看板谈判商机", "negotiation", "2500.00")]
    {
        let deal = json!({"name": name, "customer": customer["id"], "stage": stage, "amount": amount});
        t.create("opportunity", deal).await;
    }
    ui.check(async {
        ui.sign_in("/?board=sales_manager").await;
        assert_eq!(ui.count(".dashboard .widget").await, 10, "the morning view's ten widgets");
        let charts = ui.count(".dashboard .widget[data-kind=chart] svg.chart").await;
        assert!(charts >= 2, "its reports are drawn in the page: {charts}");
        if let Some(wide) = ui.too_wide(PHONE.width).await {
            panic!("the dashboard does not fit a phone: {wide}");
        }
        ui.goto("/?board=executive").await;
        assert!(ui.count(".dashboard svg.chart").await >= 3);
        let funnel: String = ui
            .eval("[...document.querySelectorAll('.dashboard svg a')].find(a => a.textContent.includes('谈判审核'))?.getAttribute('href') ?? ''")
            .await;
        assert!(funnel.starts_with("/e/opportunity?filter="), "a funnel's stage links to its deals: {funnel:?}");
        ui.goto(&funnel).await;
        let listed = ui.text("main").await;
        assert!(listed.contains("看板谈判商机") && !listed.contains("看板方案商机"), "only the deal in negotiation: {listed}");
    })
    .await;
    ui.close().await;
}

/// Mail to a list selection: the rows chosen go to the compose page; a template is loaded, a
/// merge field put in the body with a click, the mail previewed and sent; once the outbox
/// consumer ran, the mailing's page says each recipient's mail went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_a_mail_to_a_list_selection_and_see_it_sent() {
    let Some((t, ui)) = start("compose_a_mail_to_a_list_selection_and_see_it_sent", DESKTOP).await else { return };
    let smtp = support::services::Smtp::start(&[]);
    t.put("/api/v1/admin/mail", smtp.settings()).await.expect(200);
    let customer = t.create("customer", json!({"name": "重庆山城机电"})).await;
    let mut contacts = Vec::new();
    for (name, email) in [("邓伟", "deng@shancheng.cn"), ("谢芳", "xie@shancheng.cn")] {
        contacts
            .push(id(&t.create("contact", json!({"name": name, "customer": customer["id"], "email": email})).await));
    }
    let template = t
        .create(
            "email_template",
            json!({"name": "秋季展会邀请", "recipient_entity": "contact", "subject": "{{ recipient.name }}：秋季展会邀请",
                "body": "<p>您好，</p>"}),
        )
        .await;
    ui.check(async {
        ui.sign_in("/e/contact").await;
        for contact in &contacts {
            ui.click(&format!("tr[data-id='{contact}'] input[name=ids]")).await;
        }
        ui.navigating(ui.click("button#bulk-mail")).await;
        assert!(ui.location().await.starts_with("/mail/compose?entity=contact&ids="));
        assert!(ui.text("#mail-recipients").await.contains("已选 2 条联系人"));
        ui.select("#mail-template", &id(&template)).await;
        ui.navigating(ui.click("button#mail-load")).await;
        assert_eq!(ui.value("#mail-subject").await, "{{ recipient.name }}：秋季展会邀请");
        ui.click("#merge-fields [data-insert='{{ customer.name }}']").await;
        assert!(ui.value("#mail-body").await.contains("{{ customer.name }}"), "the field went into the body");
        ui.navigating(ui.click("button#mail-preview")).await;
        assert!(ui.text("#preview-subject").await.ends_with("：秋季展会邀请"));
        ui.eval::<Value>("window.confirm = () => true").await;
        ui.navigating(ui.click("button#mail-send")).await;
        let mailing = ui.location().await;
        assert!(mailing.starts_with("/e/mailing/"), "{mailing}");
        t.run_jobs().await;
        ui.goto(&mailing).await;
        assert!(ui.text("#mailing-counts").await.contains("已发送 2"));
        assert_eq!(ui.count("#mailing-deliveries tr[data-status=sent]").await, 2);
    })
    .await;
    ui.close().await;
    let received = smtp.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|m| m["body"].as_str().unwrap().contains("重庆山城机电")), "{received:?}");
}

/// A web form designed in the studio: its HTML on a static page of the company's website,
/// filled in and sent by a visitor, who reads the thanks; the lead is in the web leads list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_form_from_the_studio_takes_a_lead_from_a_static_page() {
    let Some((t, ui)) = start("a_web_form_from_the_studio_takes_a_lead_from_a_static_page", DESKTOP).await else {
        return;
    };
    ui.check(async {
        ui.sign_in("/studio/forms").await;
        ui.fill("#new-web-form input[name=name]", "trial").await;
        ui.navigating(ui.click("#new-web-form button[type=submit]")).await;
        assert!(ui.location().await.starts_with("/studio/forms/trial"));
        ui.click("tr[data-field=industry] input[name='ask.industry']").await;
        ui.navigating(ui.click("button#web-form-save")).await;
        let snippet: String = ui.eval("document.getElementById('web-form-snippet').value").await;
        assert!(snippet.contains("name=\"industry\""), "{snippet}");

        // The website is a page of its own, elsewhere. The test server listens on a port the
        // configured public address does not name, so the form is pointed at it.
        let html = snippet.replace(&t.app.config.public_url, &ui.base);
        let site = format!("<!doctype html><meta charset=utf-8><title>公司官网</title>{html}");
        let url = format!("data:text/html;charset=utf-8,{}", support::encode(&site));
        ui.navigating(async { ui.page.goto(url.as_str()).await.expect("the static page loads") }).await;
        ui.fill("#crm-trial-name", "刘访客").await;
        ui.fill("#crm-trial-company", "成都天府软件").await;
        ui.select("#crm-trial-industry", "services").await;
        ui.navigating(ui.click("#crm-form-trial button[type=submit]")).await;
        assert!(ui.text("#form-thanks").await.contains("感谢"));

        ui.goto("/studio/forms/trial").await;
        ui.navigating(ui.click("a#web-leads")).await;
        assert!(ui.text("table.records").await.contains("刘访客"));
    })
    .await;
    ui.close().await;
    let leads = t.names("lead", json!({"field": "web_form", "op": "eq", "value": "trial"})).await;
    assert_eq!(leads, ["刘访客"]);
}

/// In English on a 1366 px laptop, a manager decides an expense over budget: the company's name
/// in the top bar, the budget and what is left beside the decision, the first approval leaving
/// it for the level above, and no key of the interface anywhere instead of words; the week of
/// the calendar by hour fits the screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_decides_an_expense_over_budget_in_english() {
    let Some((t, ui)) = start("a_manager_decides_an_expense_over_budget_in_english", LAPTOP).await else { return };
    ui.check(async {
        let group = t.create("department", json!({"name": "集团"})).await;
        let sales = t.create("department", json!({"name": "华东销售部", "parent": id(&group)})).await;
        let (manager, _) = t.user("qian", &["manager"], Some(&id(&sales))).await;
        let (rep, rep_token) = t.user("sun", &["sales_rep"], Some(&id(&sales))).await;
        let change = json!({"manager": manager, "version": sales["version"]});
        t.patch(&format!("/api/v1/records/department/{}", id(&sales)), change).await.expect(200);
        let budget = json!({"name": "Sun, December travel", "holder": rep, "amount": "1000.00",
            "period_start": "2026-12-01", "period_end": "2026-12-31"});
        t.create("budget", budget).await;
        let trip = json!({"name": "Trip to Beijing", "amount": "1200.00", "expense_date": "2026-12-10"});
        let trip = t.as_user(&rep_token, Method::POST, "/api/v1/records/expense", Some(trip)).await.expect(201);
        let submit = format!("/api/v1/records/expense/{}/approval", id(&trip));
        t.as_user(&rep_token, Method::POST, &submit, Some(json!({"action": "submit"}))).await.expect(200);
        let trip = id(&trip);
        let boundary = "----company";
        let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLiyouxin Technology\r\n--{boundary}--\r\n");
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let token = t.token.clone();
        t.raw(Method::PUT, "/api/v1/admin/company", body.into_bytes(), Some(&content_type), Some(&token)).await.expect(200);

        ui.sign_in_as("qian", support::USER_PASSWORD, &format!("/e/expense/{trip}")).await;
        ui.menu("button[data-locale=en]").await;
        assert!(ui.text("a.brand").await.contains("Liyouxin Technology"), "the company in the top bar");
        let facts = ui.text("#approval-facts").await;
        for shown in ["Budget", "Sun, December travel", "Budget left", "-200.00", "Over budget", "Yes"] {
            assert!(facts.contains(shown), "{shown} beside the decision: {facts}");
        }
        ui.navigating(ui.click("button[data-approval=approve]")).await;
        assert_eq!(ui.text("#approval-status").await, "Awaiting the next level");
        assert!(ui.text("#approval ol.steps").await.contains("approved at the first level"));
        let body: String = ui.eval("document.body.innerText").await;
        for key in ["timeline.", "approval.", "common.", "calendar."] {
            assert!(!body.contains(key), "a key instead of words ({key}): {body}");
        }
        assert_eq!(ui.too_wide(1366).await, None);

        ui.goto("/calendar?view=week").await;
        assert!(ui.exists("#calendar-view-week.on").await, "the week, by hour");
        assert_eq!(ui.count("table.calendar-week thead th").await, 8, "the hours' column and seven days");
        assert_eq!(ui.too_wide(1366).await, None);
    })
    .await;
    ui.close().await;
}
