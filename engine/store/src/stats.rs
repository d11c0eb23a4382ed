//! How many statements ran and how long they took, by side (reads; writes and transactions),
//! for the server's metrics. Counted in atomics shared by every database of the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The upper bounds, in seconds, of the histogram's buckets.
pub const BUCKETS: [f64; 13] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A histogram of durations: a count per bucket (not cumulative), the sum in microseconds.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram { buckets: [const { AtomicU64::new(0) }; BUCKETS.len() + 1], sum_micros: AtomicU64::new(0) }
    }

    pub fn record(&self, seconds: f64) {
        let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The cumulative counts per bound (the last for +Inf), and the sum in seconds.
    pub fn read(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let counts = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        (counts, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Statements on the read side.
pub static READS: Histogram = Histogram::new();
/// Statements on the write side, in transactions or not.
pub static WRITES: Histogram = Histogram::new();

/// Times a statement until it is dropped.
pub(crate) struct Timing {
    started: Instant,
    into: &'static Histogram,
}

impl Timing {
    pub(crate) fn read() -> Self {
        Timing { started: Instant::now(), into: &READS }
    }

    pub(crate) fn write() -> Self {
        Timing { started: Instant::now(), into: &WRITES }
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        self.into.record(self.started.elapsed().as_secs_f64());
    }
}
