//! The authorization code flow with PKCE: the browser is sent to the provider with a state,
//! a nonce and a code challenge kept sealed in a short-lived cookie; coming back, the code is
//! exchanged (with the verifier and the client's secret) for an ID token, whose signature,
//! issuer, audience, expiry and nonce are checked before its claims name a user.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crm_model::{USER_ENTITY, Value};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{Settings, token};
use crate::access::Principal;
use crate::app::App;
use crate::outbound;
use crate::records;
use crate::screens::encode;

/// How long a sign-in may take at the provider.
const FLOW_SECONDS: i64 = 600;

/// Why a sign-in through the provider did not go through: what the person is told (a key of
/// the screens' texts) and what the log says.
#[derive(Debug)]
pub struct Refusal {
    pub text: &'static str,
    pub reason: String,
}

fn failed(reason: impl Into<String>) -> Refusal {
    Refusal { text: "login.sso_failed", reason: reason.into() }
}

/// The provider's endpoints, from its discovery document.
pub(super) struct Provider {
    authorization: String,
    token: String,
    jwks: String,
}

pub(super) async fn discover(issuer: &str) -> Result<Provider, String> {
    let client = outbound::client()?;
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let doc = outbound::get_json(&client, &url).await?;
    if doc["issuer"].as_str() != Some(issuer) {
        return Err(format!("the provider at `{url}` names itself `{}`", doc["issuer"]));
    }
    let endpoint = |name: &str| {
        doc[name].as_str().map(str::to_owned).ok_or_else(|| format!("the discovery document has no `{name}`"))
    };
    Ok(Provider {
        authorization: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
        jwks: endpoint("jwks_uri")?,
    })
}

/// What the browser keeps, sealed, while it is at the provider.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    at: i64,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn redirect_uri(app: &App, settings: &Settings) -> String {
    settings
        .redirect_uri
        .clone()
        .unwrap_or_else(|| format!("{}/sso/callback", app.config.public_url.trim_end_matches('/')))
}

/// Where to send the browser to sign in, and the value of the cookie that remembers the
/// attempt.
pub(super) async fn begin(app: &App, settings: &Settings, next: &str) -> Result<(String, String), Refusal> {
    let provider = discover(&settings.issuer).await.map_err(failed)?;
    let pending = Pending {
        state: random(),
        nonce: random(),
        verifier: random(),
        next: next.to_owned(),
        at: app.now().timestamp(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let redirect = redirect_uri(app, settings);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", settings.client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", settings.scopes.as_str()),
        ("state", pending.state.as_str()),
        ("nonce", pending.nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .map_err(|e| failed(e.to_string()))?;
    let separator = if provider.authorization.contains('?') { '&' } else { '?' };
    let sealed = serde_json::to_string(&pending).map_err(|e| failed(e.to_string()))?;
    let cookie = URL_SAFE_NO_PAD.encode(app.secrets.seal(&sealed));
    Ok((format!("{}{separator}{query}", provider.authorization), cookie))
}

/// The user a returning browser signed in as, and where they were headed.
pub(super) async fn complete(
    app: &App,
    settings: &Settings,
    secret: Option<&str>,
    cookie: Option<&str>,
    code: &str,
    state: &str,
) -> Result<(Uuid, String), Refusal> {
    let pending: Pending = cookie
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|sealed| String::from_utf8(sealed).ok())
        .and_then(|sealed| app.secrets.open(&sealed))
        .and_then(|plain| serde_json::from_str(&plain).ok())
        .ok_or_else(|| failed("the sign-in was not started here, or its cookie is damaged"))?;
    let now = app.now().timestamp();
    if pending.state != state || pending.at + FLOW_SECONDS < now {
        return Err(failed("the state does not match the sign-in started here, or it took too long"));
    }
    let provider = discover(&settings.issuer).await.map_err(failed)?;
    let client = outbound::client().map_err(failed)?;
    let redirect = redirect_uri(app, settings);
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pending.verifier.as_str()),
        ("client_id", settings.client_id.as_str()),
    ])
    .map_err(|e| failed(e.to_string()))?;
    // client_secret_basic: both parts form-encoded first (RFC 6749, 2.3.1).
    let credentials = format!("{}:{}", encode(&settings.client_id), encode(secret.unwrap_or_default()));
    let request = hyper::Request::post(&provider.token)
        .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::AUTHORIZATION, format!("Basic {}", STANDARD.encode(credentials)))
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| failed(e.to_string()))?;
    let answer = outbound::json(&client, request).await.map_err(failed)?;
    let id_token = answer["id_token"].as_str().ok_or_else(|| failed("the provider answered no ID token"))?;
    let jwks = outbound::get_json(&client, &provider.jwks).await.map_err(failed)?;
    let claims = token::verified(id_token, &jwks).map_err(failed)?;
    token::check(&claims, &settings.issuer, &settings.client_id, &pending.nonce, now).map_err(failed)?;
    let user = account(app, settings, &claims).await?;
    Ok((user, pending.next))
}

fn text_claim<'c>(claims: &'c Map<String, Json>, name: &str) -> Option<&'c str> {
    claims.get(name).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// The roles the provider's groups give.
fn mapped_roles(settings: &Settings, claims: &Map<String, Json>) -> Vec<String> {
    let groups: Vec<&str> = match claims.get(&settings.groups_claim) {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        Some(Json::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    let mut roles: Vec<String> = groups.iter().filter_map(|g| settings.roles.get(*g)).cloned().collect();
    roles.sort();
    roles.dedup();
    roles
}

/// A live record of `entity` whose `field` is `value`.
async fn find(
    app: &App,
    system: &Principal,
    entity: &str,
    field: &str,
    value: &str,
) -> Result<Option<crm_store::Record>, Refusal> {
    records::find_by(app, system, entity, field, value).await.map_err(|e| failed(e.to_string()))
}

/// The user of the claims: matched by e-mail (a disabled one is refused), or made now with
/// the roles of their groups and their department; a known user's roles follow their groups.
async fn account(app: &App, settings: &Settings, claims: &Map<String, Json>) -> Result<Uuid, Refusal> {
    let email = text_claim(claims, "email")
        .map(str::to_lowercase)
        .ok_or_else(|| failed("the provider gave no e-mail address (ask for the `email` scope)"))?;
    let catalog = app.catalog();
    let system = Principal::system(&catalog);
    let users = catalog.entity(USER_ENTITY).ok_or_else(|| failed("no user entity"))?;
    let roles = mapped_roles(settings, claims);
    if let Some(user) = find(app, &system, USER_ENTITY, "email", &email).await? {
        let flag = |name: &str| users.column_index(name).map(|at| &user.values[at]);
        if flag("active") == Some(&Value::Boolean(false)) || flag("pool") == Some(&Value::Boolean(true)) {
            return Err(Refusal { text: "login.sso_disabled", reason: format!("{email} is disabled here") });
        }
        let id = user.id();
        let current = crm_store::system::user_roles(&app.db, id).await.map_err(|e| failed(e.to_string()))?;
        if !roles.is_empty() && current != roles {
            crate::admin::set_roles(app, &system, id, &roles).await.map_err(|e| failed(e.to_string()))?;
        }
        return Ok(id);
    }
    let roles = if roles.is_empty() { settings.default_role.iter().cloned().collect() } else { roles };
    if roles.is_empty() {
        return Err(Refusal { text: "login.sso_no_role", reason: format!("no group of {email} gives a role here") });
    }
    let name = text_claim(claims, "name").or_else(|| text_claim(claims, "preferred_username")).unwrap_or(&email);
    let wanted = text_claim(claims, "preferred_username").unwrap_or(&email);
    let login = match find(app, &system, USER_ENTITY, "login", wanted).await? {
        None => wanted.to_owned(),
        Some(_) => email.clone(),
    };
    let mut fields = json!({"name": name, "login": login, "email": email});
    if let Some(claim) = &settings.department_claim
        && let Some(department) = text_claim(claims, claim)
        && let Some(found) = find(app, &system, "department", "name", department).await?
    {
        fields["department"] = json!(found.id());
    }
    let created =
        crate::admin::create_account(app, &system, &fields, None, roles).await.map_err(|e| failed(e.to_string()))?;
    Ok(created.id())
}

/// Whether `login` is an active administrator's, who signs in with a password.
pub(super) async fn is_admin_login(app: &App, login: &str) -> crate::error::ApiResult<bool> {
    let Some(credential) = crm_store::system::credential_by_login(&app.db, login).await? else { return Ok(false) };
    let roles = crm_store::system::user_roles(&app.db, credential.user_id).await?;
    let catalog = app.catalog();
    Ok(roles.iter().any(|r| catalog.role(r).is_some_and(|role| role.admin)))
}
