//! The cache of list totals: plain data, owned by the app, forgotten on every write.

use std::collections::HashMap;

use crm_store::Db;
use crm_store::records as store;

use crate::error::ApiResult;

/// The totals of lists, kept until the next write. Counting every row of a large table is
/// most of the cost of a list's first page, and most pages are read far more often than their
/// entity is written. Writes made on another node (PostgreSQL) are seen when this node's
/// outbox consumer reads them, and after [`COUNT_TTL`] at most.
#[derive(Default)]
pub struct CountCache {
    generation: std::sync::atomic::AtomicU64,
    totals: std::sync::Mutex<HashMap<String, (u64, std::time::Instant, i64)>>,
}

const COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(5);
const COUNT_CACHE_SIZE: usize = 10_000;

impl CountCache {
    /// Every remembered total is stale: something was written.
    pub fn forget(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(super) async fn count(&self, db: &Db, statement: crm_store::Sql) -> ApiResult<i64> {
        let key = statement.cache_key();
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        {
            let totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((seen, at, total)) = totals.get(&key)
                && *seen == generation
                && at.elapsed() < COUNT_TTL
            {
                return Ok(*total);
            }
        }
        let total = store::count(db, statement).await?;
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        if totals.len() >= COUNT_CACHE_SIZE {
            totals.clear();
        }
        // Counted under `generation`: a write while counting leaves this entry already stale.
        totals.insert(key, (generation, std::time::Instant::now(), total));
        Ok(total)
    }
}
