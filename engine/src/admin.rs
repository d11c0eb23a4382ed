//! Accounts (S-2): creating users with a password and roles, disabling and enabling them
//! (which signs them out everywhere at once), resetting passwords, changing one's own, and
//! transferring a leaver's records.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_model::{USER_ENTITY, Value};
use crm_store::records::{self as store, col};
use crm_store::system;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::auth::{self, check_new_password, hash_password};
use crate::error::{ApiError, ApiResult};
use crate::records::{self, RecordOut, Source, Unit};

/// Roles that exist, or a 422 naming the first that does not.
fn checked_roles(app: &App, roles: &[String]) -> ApiResult<Vec<String>> {
    let catalog = app.catalog();
    for (i, role) in roles.iter().enumerate() {
        if catalog.role(role).is_none() {
            return Err(ApiError::field(format!("roles/{i}"), "not_found", format!("no role `{role}`")));
        }
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn hashed(password: &str) -> ApiResult<String> {
    hash_password(password).map_err(ApiError::Internal)
}

/// Creates a user record with a password (changed at first login unless `keep_password`)
/// and roles, in one transaction.
pub async fn create_user(
    app: &App,
    admin: &Principal,
    fields: &Json,
    password: &str,
    roles: &[String],
) -> ApiResult<RecordOut> {
    admin.require_admin()?;
    check_new_password(password)?;
    let roles = checked_roles(app, roles)?;
    create_account(app, admin, fields, Some(hashed(password)?), roles).await
}

/// A new user with roles, and a first password unless they sign in through the identity
/// provider.
pub(crate) async fn create_account(
    app: &App,
    admin: &Principal,
    fields: &Json,
    password_hash: Option<String>,
    roles: Vec<String>,
) -> ApiResult<RecordOut> {
    let mut unit = Unit::new(app, admin, Source::Admin).await?;
    let id = unit.create_with_id(USER_ENTITY, fields, Some(Uuid::now_v7())).await?;
    unit.also(move |tx, now| {
        Box::pin(async move {
            if let Some(hash) = &password_hash {
                system::set_credential(tx, id, hash, true, now).await?;
            }
            system::set_user_roles(tx, id, &roles).await
        })
    });
    let created = unit.commit().await?.out(admin, id)?;
    auth::audit(app, Some(admin.user_id), id, "account_created", json!({})).await?;
    Ok(created)
}

async fn live_user(app: &App, user: Uuid) -> ApiResult<()> {
    let catalog = app.catalog();
    let users = catalog.entity(USER_ENTITY).ok_or_else(|| ApiError::not_found("no user entity"))?;
    match store::get(&app.db, users, user, None).await? {
        Some(record) if !record.is_deleted() => Ok(()),
        _ => Err(ApiError::not_found(format!("no user `{user}`"))),
    }
}

/// The account side of a user: roles and password state.
pub async fn account(app: &App, admin: &Principal, user: Uuid) -> ApiResult<Json> {
    admin.require_admin()?;
    live_user(app, user).await?;
    let roles = system::user_roles(&app.db, user).await?;
    let credential = system::credential_of(&app.db, user).await?;
    Ok(json!({
        "user_id": user,
        "roles": roles,
        "has_password": credential.is_some(),
        "must_change_password": credential.is_some_and(|c| c.must_change),
    }))
}

pub async fn set_roles(app: &App, admin: &Principal, user: Uuid, roles: &[String]) -> ApiResult<Json> {
    admin.require_admin()?;
    live_user(app, user).await?;
    let roles = checked_roles(app, roles)?;
    records::accounts::ensure_admin_remains(app, &app.catalog(), user, Some(&roles)).await?;
    let before = system::user_roles(&app.db, user).await?;
    let mut tx = app.db.begin().await?;
    system::set_user_roles(&mut tx, user, &roles).await?;
    tx.commit().await?;
    app.scopes_changed();
    auth::audit(app, Some(admin.user_id), user, "roles", json!({"roles": [before, roles]})).await?;
    account(app, admin, user).await
}

/// Disables (停用) or enables a user. Disabling signs them out everywhere at once (the save
/// pipeline does, whichever path disables); their records stay theirs until transferred.
pub async fn set_active(app: &App, admin: &Principal, user: Uuid, active: bool) -> ApiResult<Json> {
    admin.require_admin()?;
    live_user(app, user).await?;
    let mut unit = Unit::new(app, admin, Source::Admin).await?;
    unit.update(USER_ENTITY, &user.to_string(), &json!({"active": active}), None).await?;
    unit.commit().await?;
    auth::audit(app, Some(admin.user_id), user, if active { "enabled" } else { "disabled" }, json!({})).await?;
    account(app, admin, user).await
}

/// Sets a new password the user must change at next login: the one given, or a generated
/// one returned once. The user is signed out everywhere.
pub async fn reset_password(app: &App, admin: &Principal, user: Uuid, password: Option<&str>) -> ApiResult<Json> {
    admin.require_admin()?;
    live_user(app, user).await?;
    let (password, generated) = match password {
        Some(given) => {
            check_new_password(given)?;
            (given.to_owned(), false)
        }
        None => {
            let mut bytes = [0u8; 9];
            rand::fill(&mut bytes);
            (format!("T{}", URL_SAFE_NO_PAD.encode(bytes)), true)
        }
    };
    let hash = hashed(&password)?;
    let mut tx = app.db.begin().await?;
    system::set_credential(&mut tx, user, &hash, true, app.now()).await?;
    tx.commit().await?;
    auth::sign_out_everywhere(app, user).await?;
    auth::audit(app, Some(admin.user_id), user, "password_reset", json!({})).await?;
    Ok(json!({ "user_id": user, "temporary_password": generated.then_some(password), "must_change_password": true }))
}

/// A user changes their own password, proving the current one.
pub async fn change_own_password(app: &App, principal: &Principal, current: &str, new: &str) -> ApiResult<()> {
    let credential = system::credential_of(&app.db, principal.user_id).await?.ok_or(ApiError::Unauthorized)?;
    let hash = credential.password_hash.clone();
    let current = current.to_owned();
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &current))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if !matches {
        return Err(ApiError::field("current_password", "wrong_password", "the current password is not right"));
    }
    check_new_password(new)?;
    if auth::verify_password(&credential.password_hash, new) {
        return Err(ApiError::field("password", "unchanged", "choose a password different from the current one"));
    }
    let hash = hashed(new)?;
    let mut tx = app.db.begin().await?;
    system::set_credential(&mut tx, principal.user_id, &hash, false, app.now()).await?;
    tx.commit().await?;
    app.scopes_changed();
    auth::audit(app, Some(principal.user_id), principal.user_id, "password_changed", json!({})).await
}

/// Moves every record a user owns (in every entity, the recycle bin included) to another
/// user in one transaction, each through the save pipeline; answers how many per entity.
pub async fn transfer(app: &App, admin: &Principal, from: Uuid, to: Uuid) -> ApiResult<Json> {
    admin.require_admin()?;
    live_user(app, from).await?;
    live_user(app, to).await.map_err(|_| ApiError::field("to", "not_found", format!("no user `{to}`")))?;
    let catalog = app.catalog();
    let mut unit = Unit::new(app, admin, Source::Admin).await?;
    let mut moved = serde_json::Map::new();
    for entity in catalog.entities() {
        let owned = store::owned_by(&app.db, entity, from).await?;
        if owned.is_empty() {
            continue;
        }
        moved.insert(entity.name().to_string(), owned.len().into());
        for record in owned {
            unit.change_checked(entity, record, vec![(col::OWNER, Value::Uuid(to))], "assign").await?;
        }
    }
    unit.commit().await?;
    app.scopes_changed();
    Ok(json!({ "from": from, "to": to, "moved": moved }))
}
