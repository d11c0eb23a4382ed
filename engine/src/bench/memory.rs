//! The process's memory as Linux counts it: resident (RSS), proportional (PSS, where a page
//! shared with other processes — SQLite's mapped database file, the binary — counts for its
//! share) and private (this process's alone). Zero elsewhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    pub rss_mb: f64,
    pub pss_mb: f64,
    pub private_mb: f64,
    /// PSS split into anonymous memory (the heap, stacks) and file pages (the binary,
    /// SQLite's mapped database, the search index).
    pub pss_anon_mb: f64,
    pub pss_file_mb: f64,
}

impl Memory {
    /// This process's memory now, from `/proc/self/smaps_rollup`.
    pub fn now() -> Memory {
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        let mb = |key: &str| -> f64 {
            rollup
                .lines()
                .filter_map(|line| line.strip_prefix(key))
                .filter_map(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .sum::<f64>()
                / 1024.0
        };
        Memory {
            rss_mb: mb("Rss:"),
            pss_mb: mb("Pss:"),
            private_mb: mb("Private_Clean:") + mb("Private_Dirty:"),
            pss_anon_mb: mb("Pss_Anon:"),
            pss_file_mb: mb("Pss_File:"),
        }
    }

    /// The sample with the higher PSS, whole, so that its parts still add up.
    fn max(self, other: Memory) -> Memory {
        if other.pss_mb > self.pss_mb { other } else { self }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.0} MB, PSS {:.0} MB (anonymous {:.0}, files {:.0}), private {:.0} MB",
            self.rss_mb, self.pss_mb, self.pss_anon_mb, self.pss_file_mb, self.private_mb
        )
    }
}

/// The highest memory seen since [`Peak::watch`], sampled four times a second.
pub struct Peak {
    seen: Arc<Mutex<Memory>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Peak {
    pub fn watch() -> Peak {
        let seen = Arc::new(Mutex::new(Memory::now()));
        let sampler = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let now = Memory::now();
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    *seen = seen.max(now);
                }
            }
        });
        Peak { seen, sampler }
    }

    /// The peak so far, this moment included.
    pub fn get(&self) -> Memory {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).max(Memory::now())
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}
