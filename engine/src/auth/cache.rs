//! What authentication keeps in memory: tokens and sessions checked recently, and failed
//! logins for throttling. Plain data, owned by the app and used by [`super`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// How many failed logins are tolerated, and for how long they count.
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
const FAILURES_PER_LOGIN: usize = 5;
const FAILURES_PER_ADDRESS: usize = 30;

/// Failed logins per login name and per client address, in memory. After 5 failures for a
/// login, or 30 from one address, within 15 minutes, further attempts are refused (429) until
/// the oldest failure is 15 minutes old; a success clears the login's failures.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    fn keys(login: &str, address: &str) -> [(String, usize); 2] {
        [
            (format!("login:{}", login.trim().to_lowercase()), FAILURES_PER_LOGIN),
            (format!("address:{address}"), FAILURES_PER_ADDRESS),
        ]
    }

    pub(super) fn check(&self, login: &str, address: &str) -> ApiResult<()> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit) in Self::keys(login, address) {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| t.elapsed() < THROTTLE_WINDOW);
                if times.len() >= limit {
                    return Err(ApiError::TooManyRequests(
                        "too many failed logins; wait 15 minutes or ask an administrator".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn failed(&self, login: &str, address: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| t.elapsed() < THROTTLE_WINDOW));
        }
        for (key, _) in Self::keys(login, address) {
            failures.entry(key).or_default().push_back(Instant::now());
        }
    }

    pub(super) fn succeeded(&self, login: &str) {
        let [(key, _), _] = Self::keys(login, "");
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

/// Tokens and sessions checked recently, so a busy client does not cost a database read
/// per request: secret hash → user and, for sessions, the CSRF token.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Checked>>,
}

/// A token or session found valid: its user, the session's CSRF token, and when.
struct Checked {
    user: Uuid,
    csrf: Option<String>,
    at: Instant,
}

/// How long a checked token is trusted without asking the database again; revocations and
/// disabled accounts on this node take effect at once (the cache is cleared).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_SIZE: usize = 10_000;

impl TokenCache {
    pub(super) fn get(&self, hash: &[u8; 32]) -> Option<(Uuid, Option<String>)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|c| c.at.elapsed() < TOKEN_CACHE_TTL).map(|c| (c.user, c.csrf.clone()))
    }

    pub(super) fn put(&self, hash: [u8; 32], user: Uuid, csrf: Option<String>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= TOKEN_CACHE_SIZE {
            entries.retain(|_, c| c.at.elapsed() < TOKEN_CACHE_TTL);
        }
        if entries.len() < TOKEN_CACHE_SIZE {
            entries.insert(hash, Checked { user, csrf, at: Instant::now() });
        }
    }

    pub fn forget(&self) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
