//! Who is calling: passwords (Argon2id), API tokens and browser sessions (kept as SHA-256
//! hashes, checked briefly from memory), CSRF tokens for cookie-authenticated changes, login
//! throttling, and the middleware that makes a [`crate::access::Principal`].

pub mod cache;

use std::net::SocketAddr;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_store::system::{self, AuditEntry};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};

/// The session cookie: random, HttpOnly, SameSite=Lax.
pub const SESSION_COOKIE: &str = "crm_session";
/// The header a cookie-authenticated change must carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The code of a password sign-in refused because only the identity provider signs in.
pub const SSO_ONLY: &str = "sso_only";
/// How long a browser session lasts.
const SESSION_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(12);

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A password policy small enough to state: at least 8 characters, not all the same kind.
pub fn check_new_password(password: &str) -> ApiResult<()> {
    let kinds = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if password.chars().count() < 8 || kinds.iter().filter(|k| **k).count() < 2 {
        return Err(ApiError::field(
            "password",
            "weak_password",
            "at least 8 characters, mixing two of: lower case, upper case, digits, symbols",
        ));
    }
    Ok(())
}

/// A hash of a valid password-shaped string, verified against when a login does not exist so
/// that a wrong login takes as long as a wrong password.
static DECOY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("decoy password that matches nothing").expect("hashing works"));

async fn verify_in_background(hash: String, password: &str) -> ApiResult<bool> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Writes one audit row outside any other change (logins, account actions).
pub async fn audit(
    app: &App,
    actor: Option<Uuid>,
    record: Uuid,
    action: &'static str,
    changes: serde_json::Value,
) -> ApiResult<()> {
    let entry = AuditEntry {
        actor,
        entity: crm_model::USER_ENTITY.to_owned(),
        record_id: record,
        action,
        source: None,
        changes,
    };
    let mut tx = app.db.begin().await?;
    system::record_change(&mut tx, app.now(), vec![entry], Vec::new()).await?;
    tx.commit().await?;
    Ok(())
}

/// Checks a login and password, throttled; the same error whether the login exists or not.
/// Failures and successes are audited.
pub async fn check_password(app: &App, login: &str, password: &str, address: &str) -> ApiResult<Uuid> {
    app.throttle.check(login, address)?;
    if !crate::sso::password_allowed(app, login).await? {
        let message = "passwords are turned off: sign in through the company's identity provider";
        return Err(ApiError::Forbidden { code: SSO_ONLY, message: message.into() });
    }
    let credential = system::credential_by_login(&app.db, login).await?;
    let hash = credential.as_ref().map_or_else(|| DECOY_HASH.clone(), |c| c.password_hash.clone());
    let matches = verify_in_background(hash, password).await?;
    match credential {
        Some(credential) if matches => {
            app.throttle.succeeded(login);
            audit(app, Some(credential.user_id), credential.user_id, "login", json!({"address": address})).await?;
            Ok(credential.user_id)
        }
        other => {
            app.throttle.failed(login, address);
            app.metrics.login_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let user = other.map(|c| c.user_id);
            audit(app, None, user.unwrap_or_default(), "login_failed", json!({"login": login, "address": address}))
                .await?;
            Err(ApiError::Unauthorized)
        }
    }
}

fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a new API token for a user, named so they can tell their tokens apart; only its
/// hash is stored.
pub async fn issue_token(app: &App, user_id: Uuid, name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "invalid", "a name of 1 to 100 characters"));
    }
    let token = format!("crm_{}", secret());
    system::insert_token(&app.db, Uuid::now_v7(), user_id, &hex(&digest(&token)), name, app.now(), None).await?;
    Ok(token)
}

/// A new browser session: the cookie value and its CSRF token.
pub async fn open_session(app: &App, user_id: Uuid) -> ApiResult<(String, String)> {
    let (cookie, csrf) = (secret(), secret());
    let now = app.now();
    system::insert_session(&app.db, &hex(&digest(&cookie)), user_id, &csrf, now, now + SESSION_LIFETIME).await?;
    Ok((cookie, csrf))
}

/// Ends a session by its cookie value.
pub async fn close_session(app: &App, cookie: &str) -> ApiResult<()> {
    system::delete_session(&app.db, &hex(&digest(cookie))).await?;
    app.tokens.forget();
    Ok(())
}

/// Ends every session and revokes every token of a user (a password reset), on every node.
pub async fn sign_out_everywhere(app: &App, user_id: Uuid) -> ApiResult<()> {
    let mut tx = app.db.begin().await?;
    crm_store::Sql::execute_all(system::sign_out_statements(tx.dialect(), user_id, app.now()), &mut tx).await?;
    tx.commit().await?;
    app.signed_out();
    Ok(())
}

/// The user of a bearer token.
async fn token_user(app: &App, token: &str) -> ApiResult<Uuid> {
    let hash = digest(token);
    if let Some((user, None)) = app.tokens.get(&hash) {
        return Ok(user);
    }
    let user = system::token_user(&app.db, &hex(&hash), app.now()).await?.ok_or(ApiError::Unauthorized)?;
    app.tokens.put(hash, user, None);
    Ok(user)
}

/// The user and CSRF token of a session cookie.
pub(crate) async fn session_user(app: &App, cookie: &str) -> ApiResult<(Uuid, String)> {
    let hash = digest(cookie);
    if let Some((user, Some(csrf))) = app.tokens.get(&hash) {
        return Ok((user, csrf));
    }
    let (user, csrf) = system::session_user(&app.db, &hex(&hash), app.now()).await?.ok_or(ApiError::Unauthorized)?;
    app.tokens.put(hash, user, Some(csrf.clone()));
    Ok((user, csrf))
}

/// The `Set-Cookie` value that gives the browser its session cookie, or (`open` false) takes
/// it away.
pub fn session_cookie(app: &App, value: &str, open: bool) -> ApiResult<axum::http::HeaderValue> {
    let secure = if app.config.secure_cookies { "; Secure" } else { "" };
    let max_age = if open { SESSION_LIFETIME.num_seconds() } else { 0 };
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    axum::http::HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))
}

/// The CSRF token of a session cookie.
pub async fn session_csrf(app: &App, cookie: &str) -> ApiResult<String> {
    Ok(session_user(app, cookie).await?.1)
}

/// The value of a cookie of the request.
pub fn cookie<'r>(request: &'r axum::http::HeaderMap, name: &str) -> Option<&'r str> {
    request
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The client's address, as far as this server can tell.
pub fn client_address(request: &axum::http::Extensions) -> String {
    request.get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// Comparing secrets in constant time, so the time taken does not reveal how much matched.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Routes a user who must change their password may still use.
const WHILE_PASSWORD_EXPIRED: [&str; 3] = ["/api/v1/auth/password", "/api/v1/auth/logout", "/api/v1/auth/session"];

/// Middleware: authenticates by `Authorization: Bearer <token>` or by the session cookie
/// (whose changes need the CSRF token in `X-CSRF-Token`), and puts the [`Principal`] in the
/// request.
pub async fn authenticate(State(app): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let user = match (bearer, cookie(request.headers(), SESSION_COOKIE)) {
        (Some(token), _) => token_user(&app, token).await?,
        (None, Some(session)) => {
            let (user, csrf) = session_user(&app, session).await?;
            let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            let sent = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !safe && !same_secret(sent, &csrf) {
                return Err(ApiError::Forbidden {
                    code: "csrf_failed",
                    message: "a change made with the session cookie needs the X-CSRF-Token header".into(),
                });
            }
            user
        }
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let principal = app.principal(user).await?;
    if principal.must_change_password && !WHILE_PASSWORD_EXPIRED.contains(&request.uri().path()) {
        return Err(ApiError::Forbidden {
            code: "password_change_required",
            message: "set a new password first (POST /api/v1/auth/password)".into(),
        });
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
