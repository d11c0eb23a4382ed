//! Who is calling: passwords (Argon2id), API tokens (kept as SHA-256 hashes, cached briefly),
//! the middleware that turns a bearer token into a [`Principal`], and the first administrator.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_store::system;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub is_admin: bool,
}

impl Principal {
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin { Ok(()) } else { Err(ApiError::Forbidden("this needs an administrator".into())) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().copied().ok_or(ApiError::Unauthorized)
    }
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of a valid password-shaped string, verified against when a login does not exist so
/// that a wrong login takes as long as a wrong password.
static DECOY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("decoy password that matches nothing").expect("hashing works"));

/// Checks a login and password; the same error whether the login exists or not.
pub async fn check_password(app: &App, login: &str, password: &str) -> ApiResult<system::Credential> {
    let credential = system::credential_by_login(&app.db, login).await?;
    let hash = credential.as_ref().map_or_else(|| DECOY_HASH.clone(), |c| c.password_hash.clone());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    match credential {
        Some(credential) if matches => Ok(credential),
        _ => Err(ApiError::Unauthorized),
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a new API token for a user; only its hash is stored.
pub async fn issue_token(app: &App, user_id: Uuid, name: &str) -> ApiResult<String> {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let token = format!("crm_{}", URL_SAFE_NO_PAD.encode(secret));
    system::insert_token(&app.db, Uuid::now_v7(), user_id, &hex(&token_hash(&token)), name, app.now(), None).await?;
    Ok(token)
}

/// Tokens checked recently, so a busy client does not cost a database read per request.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], (Principal, Instant)>>,
}

/// How long a checked token is trusted without asking the database again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_SIZE: usize = 10_000;

impl TokenCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Principal> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL).map(|(p, _)| *p)
    }

    fn put(&self, hash: [u8; 32], principal: Principal) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= TOKEN_CACHE_SIZE {
            entries.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
        }
        if entries.len() < TOKEN_CACHE_SIZE {
            entries.insert(hash, (principal, Instant::now()));
        }
    }
}

/// Resolves a bearer token to its principal.
pub async fn principal_for_token(app: &App, token: &str) -> ApiResult<Principal> {
    let hash = token_hash(token);
    if let Some(principal) = app.tokens.get(&hash) {
        return Ok(principal);
    }
    let (user_id, is_admin) =
        system::token_user(&app.db, &hex(&hash), app.now()).await?.ok_or(ApiError::Unauthorized)?;
    let principal = Principal { user_id, is_admin };
    app.tokens.put(hash, principal);
    Ok(principal)
}

/// Middleware: requires `Authorization: Bearer <token>` and puts the [`Principal`] in the
/// request.
pub async fn require_token(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let principal = principal_for_token(&app, token.trim()).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Creates the administrator on first start. Returns the generated password, if one was.
pub async fn ensure_admin(app: &App) -> anyhow::Result<Option<String>> {
    if system::admin_exists(&app.db).await? {
        return Ok(None);
    }
    let (password, generated) = match &app.config.admin_password {
        Some(password) => (password.clone(), false),
        None => {
            let mut bytes = [0u8; 12];
            rand::fill(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
    };
    let id = Uuid::now_v7();
    let principal = Principal { user_id: id, is_admin: true };
    let hash = hash_password(&password)?;
    let fields = json!({"name": "系统管理员", "login": "admin", "active": true});
    crate::records::create_with(app, principal, "user", &fields, Some(id), move |tx, now| {
        Box::pin(async move { system::set_credential(tx, id, &hash, true, false, now).await })
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating the administrator failed: {e:?}"))?;
    Ok(generated.then_some(password))
}

/// Login with password, answering a new API token.
pub async fn login_for_token(app: &App, login: &str, password: &str, name: &str) -> ApiResult<(String, Principal)> {
    let credential = check_password(app, login, password).await?;
    let token = issue_token(app, credential.user_id, name).await?;
    Ok((token, Principal { user_id: credential.user_id, is_admin: credential.is_admin }))
}
