//! Roles: per entity, the actions a role allows, the data scope it sees and the fields it may
//! only read or not see; and the access of a user, the union of their roles.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ident::Ident;
use crate::meta::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Edit,
    Delete,
    Restore,
    Assign,
    Share,
    Import,
    Export,
    Approve,
    /// Send mail (and later SMS) to the records, up to the role's `send_limit` at once.
    Send,
}

/// Whose records a role sees: its holder's, their department's, their department's and
/// those below it, or everyone's. Ordered from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Own,
    Department,
    DepartmentTree,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    /// Shown, not editable.
    Read,
    /// Not shown at all: left out of every response, refused in writes, filters and sorts.
    Hidden,
}

/// What a role allows on one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub actions: BTreeSet<Action>,
    pub scope: Scope,
    /// Also sees the records owned by public pool accounts (公共池), to claim them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
    /// How much of the pool a user may take (领取上限); no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_limits: Option<ClaimLimits>,
    /// Fields this role may only read, or not see.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<Ident, FieldAccess>,
}

/// Limits on claiming from a pool: how many records of the entity a user may own at once,
/// and how many they may claim in a day (China time). Either may be absent: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

impl ClaimLimits {
    /// The limits of a user with several roles: the most generous of each; a role with the
    /// pool and no limit gives none.
    fn widest(a: Option<ClaimLimits>, b: Option<ClaimLimits>) -> Option<ClaimLimits> {
        let (a, b) = (a?, b?);
        let wider = |x: Option<u32>, y: Option<u32>| Some(x?.max(y?));
        Some(ClaimLimits { held: wider(a.held, b.held), per_day: wider(a.per_day, b.per_day) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    pub name: Ident,
    pub label: Labels,
    /// Administrators may do everything, including changing metadata and accounts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// May build reports in the browser and save them, private or shared with roles.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_reports: bool,
    /// The most recipients one mailing of this role's holder may have (with `send` on the
    /// recipients' entity); an administrator has no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_limit: Option<u32>,
    /// Entities the role may use; an entity not listed is invisible to it.
    #[serde(default)]
    pub entities: BTreeMap<Ident, Grant>,
}

/// What a user may do with one entity: the union of their roles' grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityAccess {
    pub actions: BTreeSet<Action>,
    pub scope: Option<Scope>,
    pub pool: bool,
    /// Claim limits of the roles that see the pool; none when one of them has none.
    pub claim_limits: Option<ClaimLimits>,
    pub read_only: HashSet<Ident>,
    pub hidden: HashSet<Ident>,
}

impl EntityAccess {
    pub fn allows(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

/// A user's access over the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub admin: bool,
    pub build_reports: bool,
    /// The most recipients of one mailing: the largest any role gives; `None` is no limit.
    pub send_limit: Option<u32>,
    entities: HashMap<Ident, EntityAccess>,
}

impl Access {
    /// The union of roles: every action any role allows, the widest scope, and for each field
    /// the freest access any role reading the entity gives.
    pub fn of<'a>(roles: impl IntoIterator<Item = &'a RoleDoc>) -> Self {
        let mut access = Access::default();
        let mut grants: HashMap<&Ident, Vec<&Grant>> = HashMap::new();
        for role in roles {
            access.admin |= role.admin;
            access.build_reports |= role.admin || role.build_reports;
            access.send_limit = match (role.admin, role.send_limit) {
                (true, _) => Some(u32::MAX),
                (false, limit) => access.send_limit.max(limit),
            };
            for (entity, grant) in &role.entities {
                grants.entry(entity).or_default().push(grant);
            }
        }
        for (entity, grants) in grants {
            let claim_limits =
                grants.iter().filter(|g| g.pool).map(|g| g.claim_limits).reduce(ClaimLimits::widest).flatten();
            let mut merged = EntityAccess { claim_limits, ..EntityAccess::default() };
            for grant in &grants {
                merged.actions.extend(grant.actions.iter().copied());
                merged.scope = merged.scope.max(Some(grant.scope));
                merged.pool |= grant.pool;
            }
            let restricted: BTreeSet<&Ident> = grants.iter().flat_map(|g| g.fields.keys()).collect();
            for field in restricted {
                // A role that does not mention the field gives full access to it.
                let freest = grants.iter().map(|g| g.fields.get(field).copied()).min_by_key(|a| match a {
                    None => 0,
                    Some(FieldAccess::Read) => 1,
                    Some(FieldAccess::Hidden) => 2,
                });
                match freest.flatten() {
                    Some(FieldAccess::Read) => {
                        merged.read_only.insert(field.clone());
                    }
                    Some(FieldAccess::Hidden) => {
                        merged.hidden.insert(field.clone());
                    }
                    None => {}
                }
            }
            access.entities.insert(entity.clone(), merged);
        }
        access
    }

    /// The access to an entity; administrators have all of it.
    pub fn entity(&self, name: &str) -> Option<&EntityAccess> {
        self.entities.get(name)
    }

    pub fn allows(&self, entity: &str, action: Action) -> bool {
        self.admin || self.entity(entity).is_some_and(|e| e.allows(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, entities: serde_json::Value) -> RoleDoc {
        serde_json::from_value(serde_json::json!({
            "name": name, "label": {"zh-CN": name, "en": name}, "entities": entities,
        }))
        .unwrap()
    }

    #[test]
    fn roles_add_up_to_the_freest_access() {
        let rep = role(
            "rep",
            serde_json::json!({"customer": {"actions": ["read", "edit"], "scope": "own",
                "fields": {"credit_limit": "hidden", "annual_revenue": "read"}}}),
        );
        let auditor = role(
            "auditor",
            serde_json::json!({"customer": {"actions": ["read", "export"], "scope": "department_tree",
                "fields": {"annual_revenue": "hidden", "remark": "read"}}}),
        );
        let access = Access::of([&rep, &auditor]);
        let customer = access.entity("customer").unwrap();
        assert_eq!(customer.scope, Some(Scope::DepartmentTree));
        assert!(customer.allows(Action::Edit) && customer.allows(Action::Export) && !customer.allows(Action::Delete));
        assert!(customer.hidden.is_empty(), "credit_limit is visible to the auditor: {customer:?}");
        let read_only: BTreeSet<&str> = customer.read_only.iter().map(Ident::as_str).collect();
        assert_eq!(read_only, BTreeSet::from(["annual_revenue"]));
        assert!(!access.allows("contact", Action::Read), "unlisted entities are invisible");

        let only_rep = Access::of([&rep]);
        assert!(only_rep.entity("customer").unwrap().hidden.iter().any(|f| f.as_str() == "credit_limit"));
    }

    #[test]
    fn claim_limits_are_the_most_generous_of_the_roles_that_see_the_pool() {
        let grant = |limits: serde_json::Value| {
            let mut customer = serde_json::json!({"actions": ["read"], "scope": "own", "pool": true});
            if !limits.is_null() {
                customer["claim_limits"] = limits;
            }
            serde_json::json!({ "customer": customer })
        };
        let small = role("small", grant(serde_json::json!({"held": 10, "per_day": 5})));
        let large = role("large", grant(serde_json::json!({"held": 50})));
        let free = role("free", grant(serde_json::Value::Null));
        let no_pool = role("no_pool", serde_json::json!({"customer": {"actions": ["read"], "scope": "all"}}));
        let limits = |roles: &[&RoleDoc]| Access::of(roles.iter().copied()).entity("customer").unwrap().claim_limits;
        assert_eq!(limits(&[&small]), Some(ClaimLimits { held: Some(10), per_day: Some(5) }));
        assert_eq!(
            limits(&[&small, &large]),
            Some(ClaimLimits { held: Some(50), per_day: None }),
            "a role without a daily limit lifts it"
        );
        assert_eq!(limits(&[&small, &free]), None, "a role that sees the pool without limits");
        assert_eq!(
            limits(&[&small, &no_pool]),
            Some(ClaimLimits { held: Some(10), per_day: Some(5) }),
            "only pool roles count"
        );
    }
}
