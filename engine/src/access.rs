//! What the caller may do: the [`Principal`] of a request (their user, department and roles'
//! access), the data scopes it turns into filter predicates for the SQL layer, and the caches
//! of principals and of the department tree.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use crm_model::filter::{Cond, Op, ScopeTerm};
use crm_model::roles::EntityAccess;
use crm_model::{Access, Action, Catalog, Entity, Filter, Ident, Scope, USER_ENTITY, Value};
use crm_store::Db;
use crm_store::records as store;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub department: Option<Uuid>,
    pub roles: Vec<String>,
    pub access: Arc<Access>,
    /// Must set a new password before doing anything else.
    pub must_change_password: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or(ApiError::Unauthorized)
    }
}

static NO_FIELDS: std::sync::LazyLock<HashSet<Ident>> = std::sync::LazyLock::new(HashSet::new);

impl Principal {
    /// The engine itself, as scheduled rules, rules' reads and engine checks run: every
    /// record is in its scope.
    pub fn system(catalog: &Catalog) -> Principal {
        let roles: Vec<String> =
            catalog.docs().roles.values().filter(|r| r.admin).map(|r| r.name.to_string()).collect();
        Principal {
            user_id: Uuid::nil(),
            department: None,
            access: Arc::new(Access::of(roles.iter().filter_map(|r| catalog.role(r)))),
            roles,
            must_change_password: false,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.access.admin
    }

    /// Whether the user may build reports and save them.
    pub fn builds_reports(&self) -> bool {
        self.access.build_reports
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::forbidden("this needs an administrator")) }
    }

    /// Whether the entity is one of the user's modules (they may read it).
    pub fn sees(&self, entity: &str) -> bool {
        self.access.allows(entity, Action::Read)
    }

    /// Whether the user may claim an entity's records from a public pool (领取): their roles
    /// see its pool, or they administer and some role has a pool of it.
    pub fn sees_pool(&self, catalog: &Catalog, entity: &str) -> bool {
        let pooled = |grant: Option<&crm_model::roles::Grant>| grant.is_some_and(|g| g.pool);
        self.access.entity(entity).is_some_and(|e| e.pool)
            || (self.is_admin() && catalog.docs().roles.values().any(|r| pooled(r.entities.get(entity))))
    }

    /// An entity the user may `action`: unknown and invisible entities are both 404, so
    /// nobody learns what modules exist beyond theirs; a visible one they may not act on is 403.
    pub fn entity<'c>(&self, catalog: &'c Catalog, name: &str, action: Action) -> ApiResult<&'c Arc<Entity>> {
        let entity = catalog
            .entity(name)
            .filter(|_| self.sees(name))
            .ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
        if !self.access.allows(name, action) {
            let action = format!("{action:?}").to_lowercase();
            return Err(ApiError::forbidden(format!("your roles do not allow `{action}` on `{name}`")));
        }
        Ok(entity)
    }

    fn grant(&self, entity: &str) -> Option<&EntityAccess> {
        if self.is_admin() { None } else { self.access.entity(entity) }
    }

    /// Fields the user may not see on an entity.
    pub fn hidden(&self, entity: &str) -> &HashSet<Ident> {
        self.grant(entity).map_or(&NO_FIELDS, |g| &g.hidden)
    }

    /// Whether a field exists for the user: its entity is one of their modules and their
    /// roles do not hide it.
    pub fn shows(&self, entity: &str, field: &str) -> bool {
        self.sees(entity) && !self.hidden(entity).contains(field)
    }

    /// Fields the user may see but not change.
    pub fn read_only(&self, entity: &str) -> &HashSet<Ident> {
        self.grant(entity).map_or(&NO_FIELDS, |g| &g.read_only)
    }

    /// The records of an entity the user may read, as a filter (`None`: all of them). A
    /// record outside is answered as if it did not exist.
    pub fn read_scope(&self, tree: &DepartmentTree, entity: &Entity) -> Option<Filter> {
        self.scope(tree, entity, Reach::Read)
    }

    /// The records of an entity the user may change, share, delete or restore.
    pub fn edit_scope(&self, tree: &DepartmentTree, entity: &Entity) -> Option<Filter> {
        self.scope(tree, entity, Reach::Edit)
    }

    /// The records of an entity the user may give a new owner, if their roles let them
    /// assign: those they may change, and those waiting in a public pool they see (C-7). A
    /// record only shared with them for reading is not theirs to give away.
    pub fn assign_scope(&self, tree: &DepartmentTree, entity: &Entity) -> Option<Filter> {
        self.scope(tree, entity, Reach::Assign)
    }

    fn scope(&self, tree: &DepartmentTree, entity: &Entity, reach: Reach) -> Option<Filter> {
        let grant = self.grant(entity.name().as_str())?;
        let mut any = Vec::new();
        match grant.scope {
            Some(Scope::All) => return None,
            Some(Scope::DepartmentTree) => any.push(owned_in(tree.with_descendants(self.department))),
            Some(Scope::Department) => any.push(owned_in(self.department.into_iter().collect())),
            Some(Scope::Own) | None => {}
        }
        let owner = entity.column("owner").expect("every entity has an owner").clone();
        any.push(Filter::Cond(Box::new(Cond { field: owner, op: Op::Eq(Value::Uuid(self.user_id)) })));
        if grant.pool && reach != Reach::Edit {
            any.push(Filter::Scope(Box::new(ScopeTerm::OwnedByPools)));
        }
        any.push(Filter::Scope(Box::new(ScopeTerm::SharedWith {
            entity: entity.name().clone(),
            user: self.user_id,
            departments: self.department.into_iter().collect(),
            edit: reach != Reach::Read,
        })));
        Some(Filter::Or(any))
    }
}

/// What a scope is for: pools are seen and claimed but not edited in place; shares for
/// reading do not let one change or give away.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Read,
    Edit,
    Assign,
}

fn owned_in(departments: Vec<Uuid>) -> Filter {
    Filter::Scope(Box::new(ScopeTerm::OwnedInDepartments(departments)))
}

/// The departments as a tree, to widen a department scope to the departments below.
#[derive(Debug, Default)]
pub struct DepartmentTree {
    children: HashMap<Uuid, Vec<Uuid>>,
}

impl DepartmentTree {
    /// A department and every department below it.
    pub fn with_descendants(&self, root: Option<Uuid>) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = root.into_iter().collect();
        let mut i = 0;
        while i < out.len() {
            if let Some(children) = self.children.get(&out[i]) {
                // A cycle in the parents (which the data allows) must not loop forever.
                for child in children {
                    if !out.contains(child) {
                        out.push(*child);
                    }
                }
            }
            i += 1;
        }
        out
    }
}

/// How long a computed principal or department tree is trusted. Changes made through this
/// node take effect at once (it forgets them); changes on another node within this time.
const TRUST_FOR: Duration = Duration::from_secs(10);

/// Principals and the department tree, computed once and reused.
#[derive(Default)]
pub struct AccessCache {
    principals: RwLock<HashMap<Uuid, (Principal, i64, Instant)>>,
    tree: RwLock<Option<(Arc<DepartmentTree>, Instant)>>,
}

impl AccessCache {
    /// Forgets everything: after a change to users, roles, departments or credentials.
    pub fn forget(&self) {
        self.principals.write().unwrap_or_else(|e| e.into_inner()).clear();
        *self.tree.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl AccessCache {
    /// The principal of a user who has just authenticated.
    pub async fn principal(&self, db: &Db, catalog: &Catalog, user_id: Uuid) -> ApiResult<Principal> {
        if let Some((principal, version, at)) = self.principals.read().unwrap_or_else(|e| e.into_inner()).get(&user_id)
            && *version == catalog.version
            && at.elapsed() < TRUST_FOR
        {
            return Ok(principal.clone());
        }
        let users = catalog.entity(USER_ENTITY).ok_or(ApiError::Unauthorized)?;
        let user = store::get(db, users, user_id, None).await?.ok_or(ApiError::Unauthorized)?;
        let department = match users.column_index("department").map(|i| &user.values[i]) {
            Some(Value::Uuid(id)) => Some(*id),
            _ => None,
        };
        let roles = crm_store::system::user_roles(db, user_id).await?;
        let access = Access::of(roles.iter().filter_map(|r| catalog.role(r)));
        let must_change_password = crm_store::system::credential_of(db, user_id).await?.is_some_and(|c| c.must_change);
        let principal = Principal { user_id, department, roles, access: Arc::new(access), must_change_password };
        self.principals
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id, (principal.clone(), catalog.version, Instant::now()));
        Ok(principal)
    }

    /// The department tree as of now.
    pub async fn departments(&self, db: &Db, catalog: &Catalog) -> ApiResult<Arc<DepartmentTree>> {
        if let Some((tree, at)) = self.tree.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < TRUST_FOR
        {
            return Ok(tree.clone());
        }
        let mut tree = DepartmentTree::default();
        if let Some(departments) = catalog.entity("department")
            && let Some(parent) = departments.column("parent")
        {
            for (id, parent) in store::references(db, departments, parent).await? {
                if let Some(parent) = parent {
                    tree.children.entry(parent).or_default().push(id);
                }
            }
        }
        let tree = Arc::new(tree);
        *self.tree.write().unwrap_or_else(|e| e.into_inner()) = Some((tree.clone(), Instant::now()));
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_department_tree_includes_everything_below_and_survives_cycles() {
        let [a, b, c, d] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let tree = DepartmentTree { children: HashMap::from([(a, vec![b, c]), (c, vec![d]), (d, vec![a])]) };
        let mut below_c = tree.with_descendants(Some(c));
        below_c.sort();
        let mut expected = vec![c, d, a, b];
        expected.sort();
        assert_eq!(below_c, expected);
        assert!(tree.with_descendants(None).is_empty());
    }
}
