//! The caches of what is counted and summed over many rows — list totals, report groups —:
//! plain data, owned by the app, forgotten on every write.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_store::Db;
use crm_store::records as store;

use crate::error::ApiResult;

/// Answers kept until the next write. Counting or grouping every row of a large table is most
/// of the cost of a list's first page or a report, and most are read far more often than
/// their entity is written. Writes made on another node (PostgreSQL) are seen when this
/// node's outbox consumer reads them, and after [`TTL`] at most.
pub struct WriteCache<T> {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (u64, Instant, T)>>,
}

const TTL: Duration = Duration::from_secs(5);
const SIZE: usize = 10_000;

impl<T> Default for WriteCache<T> {
    fn default() -> Self {
        WriteCache { generation: AtomicU64::new(0), entries: Mutex::new(HashMap::new()) }
    }
}

impl<T: Clone> WriteCache<T> {
    /// Every remembered answer is stale: something was written.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The answer for `key` (a statement's [`crm_store::Sql::cache_key`]), computed by
    /// `fetch` unless one computed since the last write is kept.
    pub async fn get_or<F, Fut>(&self, key: String, fetch: F) -> ApiResult<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((seen, at, answer)) = entries.get(&key)
                && *seen == generation
                && at.elapsed() < TTL
            {
                return Ok(answer.clone());
            }
        }
        let answer = fetch().await?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SIZE {
            entries.clear();
        }
        // Computed under `generation`: a write meanwhile leaves this entry already stale.
        entries.insert(key, (generation, Instant::now(), answer.clone()));
        Ok(answer)
    }
}

impl WriteCache<i64> {
    pub(super) async fn count(&self, db: &Db, statement: crm_store::Sql) -> ApiResult<i64> {
        self.get_or(statement.cache_key(), || async move { Ok(store::count(db, statement).await?) }).await
    }
}
