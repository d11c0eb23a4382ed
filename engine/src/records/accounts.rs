//! What the engine holds to about user records, whichever path changes them: users are
//! disabled, never deleted (records, audit rows and history name them); nobody disables
//! themself; the last active administrator keeps both the account and the role; and a user
//! who can no longer sign in is signed out everywhere in the same transaction.

use crm_model::{Catalog, Entity, USER_ENTITY, Value};
use crm_store::Record;
use crm_store::system;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

pub(super) fn users_are_not_deleted() -> ApiError {
    ApiError::field("", "users_are_disabled", "users are disabled, never deleted: their records and history name them")
}

/// Whether a user record lets its user sign in: enabled, not a pool account, not deleted.
fn can_sign_in(entity: &Entity, record: &Record) -> bool {
    let flag = |name: &str| entity.column_index(name).map(|i| &record.values[i]);
    flag("active") != Some(&Value::Boolean(false))
        && flag("pool") != Some(&Value::Boolean(true))
        && !record.is_deleted()
}

/// Whether a write takes away a user's ability to sign in.
pub(super) fn deactivates(entity: &Entity, before: &Record, after: &Record) -> bool {
    entity.name().as_str() == USER_ENTITY && can_sign_in(entity, before) && !can_sign_in(entity, after)
}

/// Refuses a change to a user record that disables its author or the last active
/// administrator.
pub(super) async fn check_change(
    app: &App,
    catalog: &Catalog,
    principal: &Principal,
    entity: &Entity,
    before: &Record,
    after: &Record,
) -> ApiResult<()> {
    if !deactivates(entity, before, after) {
        return Ok(());
    }
    if after.id() == principal.user_id {
        return Err(ApiError::field("active", "forbidden", "you cannot disable yourself"));
    }
    ensure_admin_remains(app, catalog, after.id(), None).await
}

/// Refuses to leave no active administrator: `user` is about to lose the ability to sign in
/// (`roles_after` is `None`) or to hold only `roles_after`.
pub async fn ensure_admin_remains(
    app: &App,
    catalog: &Catalog,
    user: Uuid,
    roles_after: Option<&[String]>,
) -> ApiResult<()> {
    let admin_roles: Vec<String> =
        catalog.docs().roles.values().filter(|r| r.admin).map(|r| r.name.to_string()).collect();
    let still_admin = roles_after.is_some_and(|roles| roles.iter().any(|r| admin_roles.contains(r)));
    if still_admin {
        return Ok(());
    }
    let admins = system::active_users_with_roles(&app.db, &admin_roles).await?;
    if admins.iter().all(|admin| *admin == user) && admins.contains(&user) {
        let field = if roles_after.is_some() { "roles" } else { "active" };
        return Err(ApiError::field(
            field,
            "last_administrator",
            "this is the last active administrator: make someone else an administrator first",
        ));
    }
    Ok(())
}
