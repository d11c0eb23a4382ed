//! The public pool (公海): records owned by pool accounts, which the users whose roles see
//! the pool may claim (领取) as their own within their roles' limits — how many records of
//! the entity they may own at once, and how many they may claim in a day.

use crm_model::{USER_ENTITY, Value};
use crm_store::records as store;
use crm_store::system::{self, AuditQuery};
use uuid::Uuid;

use super::Outcome;
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Whether a user is a public pool account.
pub async fn is_pool(app: &App, user: Uuid) -> ApiResult<bool> {
    let catalog = app.catalog();
    let users = catalog.entity(USER_ENTITY).ok_or_else(|| ApiError::not_found("no user entity"))?;
    let record = store::get(&app.db, users, user, None).await?.filter(|r| !r.is_deleted());
    let record = record.ok_or_else(|| ApiError::field("owner", "not_found", format!("no user with id {user}")))?;
    Ok(users.column_index("pool").is_some_and(|i| record.values[i] == Value::Boolean(true)))
}

/// How many more records a user may claim now, and which limit says so.
#[derive(Debug, Clone, Copy)]
pub enum Allowance {
    Unlimited,
    Left { left: i64, limit: Limit },
}

#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Held(u32),
    PerDay(u32),
}

impl Allowance {
    /// The refusal of one more claim, when the allowance is spent.
    pub fn refusal(&self) -> Option<Outcome> {
        let Allowance::Left { left: 0, limit } = self else { return None };
        Some(match limit {
            Limit::Held(n) => Outcome::Forbidden {
                code: "claim_limit_held",
                message: format!("you may own at most {n} of these records; hand some back to the pool first"),
            },
            Limit::PerDay(n) => {
                Outcome::Forbidden { code: "claim_limit_per_day", message: format!("you may claim {n} records a day") }
            }
        })
    }

    /// One claim made.
    pub fn take(&mut self) {
        if let Allowance::Left { left, .. } = self {
            *left = (*left - 1).max(0);
        }
    }

    fn tighter(self, other: Allowance) -> Allowance {
        match (self, other) {
            (Allowance::Left { left: a, .. }, Allowance::Left { left: b, .. }) if a <= b => self,
            (Allowance::Left { .. }, Allowance::Unlimited) => self,
            _ => other,
        }
    }
}

/// What a user may still claim of an entity's pool: administrators and roles without limits
/// may claim any number. Counted before the claims' transaction: two claims at the same
/// moment may pass a limit by one.
pub async fn allowance(app: &App, principal: &Principal, entity_name: &str) -> ApiResult<Allowance> {
    let limits = principal.access.entity(entity_name).and_then(|e| e.claim_limits);
    let (false, Some(limits)) = (principal.is_admin(), limits) else { return Ok(Allowance::Unlimited) };
    let catalog = app.catalog();
    let entity =
        catalog.entity(entity_name).ok_or_else(|| ApiError::not_found(format!("no entity `{entity_name}`")))?;
    let mut allowance = Allowance::Unlimited;
    if let Some(held) = limits.held {
        let owned = store::count_owned(&app.db, entity, principal.user_id).await?;
        allowance =
            allowance.tighter(Allowance::Left { left: (i64::from(held) - owned).max(0), limit: Limit::Held(held) });
    }
    if let Some(per_day) = limits.per_day {
        let offset = crate::schedule::business_offset();
        let midnight = app.now().with_timezone(&offset).date_naive().and_time(chrono::NaiveTime::MIN);
        let since = midnight.and_local_timezone(offset).single().map(|t| t.to_utc());
        let query = AuditQuery {
            entity: Some(entity_name.to_owned()),
            actor: Some(principal.user_id),
            action: Some("claim".to_owned()),
            from: since,
            ..AuditQuery::default()
        };
        let claimed = system::audit_count(&app.db, &query).await?;
        let left = (i64::from(per_day) - claimed).max(0);
        allowance = allowance.tighter(Allowance::Left { left, limit: Limit::PerDay(per_day) });
    }
    Ok(allowance)
}
