//! The caches of what is counted and summed over many rows — list totals, report groups —:
//! plain data, owned by the app, forgotten on every write.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// One computation per key at a time: requests that miss together wait for the first
    /// instead of each running the same statement.
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

const TTL: Duration = Duration::from_secs(5);
const SIZE: usize = 10_000;

impl<T> Default for WriteCache<T> {
    fn default() -> Self {
        WriteCache {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
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
        if let Some(answer) = self.fresh(&key) {
            return Ok(answer);
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            flights.entry(key.clone()).or_default().clone()
        };
        let turn = flight.lock().await;
        // The one before us in the flight may have just computed it.
        let answer = match self.fresh(&key) {
            Some(answer) => Ok(answer),
            None => self.compute(&key, fetch).await,
        };
        drop(turn);
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        // Nobody else holds this flight (they take it under this lock): it can go.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(&key);
        }
        answer
    }

    async fn compute<F, Fut>(&self, key: &str, fetch: F) -> ApiResult<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let answer = fetch().await?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SIZE {
            entries.clear();
        }
        // Computed under `generation`: a write meanwhile leaves this entry already stale.
        entries.insert(key.to_owned(), (generation, Instant::now(), answer.clone()));
        Ok(answer)
    }

    /// The answer kept for `key`, if computed since the last write and within [`TTL`].
    fn fresh(&self, key: &str) -> Option<T> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(seen, at, _)| *seen == generation && at.elapsed() < TTL)
            .map(|(_, _, answer)| answer.clone())
    }
}

impl WriteCache<i64> {
    pub(super) async fn count(&self, db: &Db, statement: crm_store::Sql) -> ApiResult<i64> {
        self.get_or(statement.cache_key(), || async move { Ok(store::count(db, statement).await?) }).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn requests_that_miss_together_compute_once_and_a_write_computes_again() {
        let cache: WriteCache<i64> = WriteCache::default();
        let runs = AtomicUsize::new(0);
        let fetch = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(7)
        };
        let answers = futures_util::future::join_all((0..8).map(|_| cache.get_or("k".into(), fetch))).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(7))));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "eight misses at once, one computation");
        cache.forget();
        cache.get_or("k".into(), fetch).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2, "a write makes the kept answer stale");
        assert!(cache.flights.lock().unwrap().is_empty(), "no flight is left behind");
    }
}
