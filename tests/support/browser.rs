//! A browser without JavaScript for the screen tests: it signs in with the login form, keeps
//! the session cookie, sends each form with the page's CSRF token, and carries the flash
//! message a redirect leaves to the next page.

use axum::http::{Method, StatusCode};

use super::{PageReply, TestApp};

pub struct Browser<'t> {
    t: &'t TestApp,
    session: String,
    flash: Option<String>,
    pub csrf: String,
}

impl<'t> Browser<'t> {
    pub async fn sign_in(t: &'t TestApp, login: &str, password: &str) -> Browser<'t> {
        let form = [("login", login), ("password", password), ("next", "/e/customer")];
        let reply = t.page(Method::POST, "/login", "", Some(&form)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
        assert_eq!(reply.location.as_deref(), Some("/e/customer"));
        let session = cookie(&reply, "crm_session").expect("a session cookie");
        let mut browser = Browser { t, session, flash: None, csrf: String::new() };
        let mut home = browser.get("/").await;
        if home.status == StatusCode::SEE_OTHER {
            home = browser.follow(home).await;
        }
        browser.csrf = between(&home.text, "name=\"_csrf\" value=\"", "\"").expect("pages carry the CSRF token");
        browser
    }

    pub fn cookies(&self) -> String {
        match &self.flash {
            Some(flash) => format!("crm_session={}; crm_flash={flash}", self.session),
            None => format!("crm_session={}", self.session),
        }
    }

    pub async fn request(&mut self, method: Method, uri: &str, form: Option<&[(&str, &str)]>) -> PageReply {
        let reply = self.t.page(method, uri, &self.cookies(), form).await;
        if let Some(flash) = cookie(&reply, "crm_flash") {
            self.flash = (!flash.is_empty()).then_some(flash);
        }
        reply
    }

    pub async fn get(&mut self, uri: &str) -> PageReply {
        self.request(Method::GET, uri, None).await
    }

    /// Posts a form with the page's CSRF token.
    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> PageReply {
        let csrf = self.csrf.clone();
        let mut form = vec![("_csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.request(Method::POST, uri, Some(&form)).await
    }

    /// Follows a redirect and returns the page it leads to.
    pub async fn follow(&mut self, reply: PageReply) -> PageReply {
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "expected a redirect: {}", reply.text);
        let to = reply.location.expect("a location");
        self.get(&to).await
    }

    /// A page that answers 200, as text.
    pub async fn page(&mut self, uri: &str) -> String {
        let reply = self.get(uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
        reply.text
    }

    /// Posts a form that redirects; returns where to.
    pub async fn submit(&mut self, uri: &str, fields: &[(&str, &str)]) -> String {
        let reply = self.post(uri, fields).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{uri}: {}", reply.text);
        reply.location.expect("a location")
    }
}

/// A cookie a reply sets.
pub fn cookie(reply: &PageReply, name: &str) -> Option<String> {
    reply.set_cookies.iter().find_map(|c| c.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
}

/// The text between `start` and the next `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

/// Text of a page as the browser reads it: minijinja escapes `/`, `&`, `<`, `>` and quotes.
pub fn unescaped(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}
