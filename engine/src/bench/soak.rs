//! `crm bench --soak MINUTES`: a mixed load — record pages and lists read, customers created
//! and changed with rules attached, a list screen, grouped counts, and a field added to the
//! customers every few minutes — run for a long time at half the capacity measured first,
//! reporting per window the rate, latency, failures and the process's memory, so that a leak,
//! a creeping tail or a failure under a metadata change shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::memory::{Memory, Peak};
use super::{Http, Run, Seeded, customer, filtered_params, install_rules, progress, query_string, seed, settle};
use crate::config::{BenchArgs, Config};

/// The mix, by weight out of 100.
const MIX: [(Op, u32); 6] =
    [(Op::Get, 35), (Op::List, 20), (Op::Screen, 10), (Op::Create, 15), (Op::Update, 15), (Op::Count, 5)];

#[derive(Clone, Copy)]
enum Op {
    Get,
    List,
    Screen,
    Create,
    Update,
    Count,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list",
            Op::Screen => "screen",
            Op::Create => "create",
            Op::Update => "update",
            Op::Count => "count",
        }
    }
}

/// How long the capacity is measured before the soak.
const PROBE: Duration = Duration::from_secs(10);
/// The share of the run counted as warm-up: memory is compared from its end.
const WARM_UP: f64 = 0.2;

#[derive(Serialize)]
pub struct Report {
    records: usize,
    database: &'static str,
    clients: usize,
    minutes: f64,
    /// Operations per second the mix reached unthrottled, and the rate it was run at.
    capacity: f64,
    rate: f64,
    windows: Vec<Window>,
    pub errors: u64,
    first_error: Option<String>,
    /// Fields added to the customers during the run, and the slowest of those changes.
    metadata_changes: u64,
    slowest_metadata_change_ms: f64,
    memory_start: Memory,
    memory_after_warm_up: Memory,
    memory_end: Memory,
    memory_peak: Memory,
    /// RSS at the end over RSS after warm-up, minus one.
    rss_growth_after_warm_up: f64,
}

#[derive(Serialize)]
struct Window {
    /// Seconds since the start, at the window's end.
    at_s: f64,
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Each operation's p99, to tell which one a creeping tail comes from.
    p99_by_op_ms: Vec<(&'static str, f64)>,
    errors: u64,
    memory: Memory,
}

impl Window {
    /// The operation with the highest p99, as `create 41.2 ms`.
    fn slowest(&self) -> String {
        self.p99_by_op_ms
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or_else(String::new, |(op, p99)| format!("{op} {p99:.1} ms"))
    }
}

/// What the clients have done since the last window closed.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// By the operation's place in [`MIX`].
    by_op: [Vec<u64>; MIX.len()],
    errors: u64,
    first_error: Option<String>,
}

pub async fn soak(args: &BenchArgs, minutes: f64, config: Config, password: &str) -> anyhow::Result<Report> {
    anyhow::ensure!(minutes > 0.0, "--soak takes a number of minutes above 0");
    let Seeded { app, server, http, owners, ids, .. } = seed(args, config, password).await?;
    install_rules(&http).await?;
    settle(&app).await?;
    let ids = Arc::new(ids);
    let owners = Arc::new(owners);
    let memory_start = Memory::now();
    let peak = Peak::watch();

    progress(args, &format!("measuring the mix's capacity for {} s…", PROBE.as_secs()));
    let probe = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + PROBE;
    run_clients(args.clients, None, deadline, &http, &ids, &owners, &probe).await;
    let probed = std::mem::take(&mut *probe.lock().unwrap_or_else(|e| e.into_inner()));
    anyhow::ensure!(
        probed.errors == 0,
        "the mix failed while measuring it: {}",
        probed.first_error.unwrap_or_default()
    );
    let capacity = probed.latencies_us.len() as f64 / PROBE.as_secs_f64();
    let rate = capacity / 2.0;

    let duration = Duration::from_secs_f64(minutes * 60.0);
    let window = (duration / 10).clamp(Duration::from_secs(2), Duration::from_secs(60));
    let change_every = (duration / 5).clamp(Duration::from_secs(5), Duration::from_secs(180));
    progress(
        args,
        &format!(
            "soaking for {minutes} min at {rate:.0} operations/s (half of {capacity:.0}), a field added every {} s…",
            change_every.as_secs()
        ),
    );
    let began = Instant::now();
    let deadline = began + duration;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients = {
        let (http, ids, owners, tally) = (http.clone(), ids.clone(), owners.clone(), tally.clone());
        let clients = args.clients;
        let pace = Duration::from_secs_f64(clients as f64 / rate.max(1.0));
        tokio::spawn(async move { run_clients(clients, Some(pace), deadline, &http, &ids, &owners, &tally).await })
    };
    let changes = Arc::new(AtomicU64::new(0));
    let slowest_change_us = Arc::new(AtomicU64::new(0));
    let changer = {
        let (http, changes, slowest, tally) = (http.clone(), changes.clone(), slowest_change_us.clone(), tally.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + change_every, change_every);
            loop {
                ticks.tick().await;
                if Instant::now() >= deadline {
                    break;
                }
                let n = changes.fetch_add(1, Ordering::Relaxed) + 1;
                let field = json!({
                    "name": format!("soak_note_{n}"),
                    "type": "text",
                    "label": {"zh-CN": format!("压测备注{n}"), "en": format!("Soak note {n}")},
                });
                let started = Instant::now();
                let outcome = http.send(Method::POST, "/api/v1/meta/entities/customer/fields", Some(&field)).await;
                slowest.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                if let Err(e) = outcome {
                    failed(&tally, &e);
                }
            }
        })
    };

    let mut windows = Vec::new();
    let mut memory_after_warm_up = None;
    let (mut errors, mut first_error) = (0, None);
    let mut opened = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(window.min(deadline.saturating_duration_since(Instant::now()))).await;
        let done = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
        let elapsed = std::mem::replace(&mut opened, Instant::now()).elapsed();
        let mut run = Run { latencies_us: done.latencies_us, elapsed };
        run.latencies_us.sort_unstable();
        let p99_by_op_ms = MIX
            .iter()
            .zip(done.by_op)
            .map(|((op, _), mut latencies_us)| {
                latencies_us.sort_unstable();
                (op.name(), Run { latencies_us, elapsed }.percentile_ms(0.99))
            })
            .collect();
        let at = began.elapsed();
        let memory = Memory::now();
        let closed = Window {
            at_s: at.as_secs_f64(),
            ops_per_s: run.rps(),
            p50_ms: run.percentile_ms(0.5),
            p99_ms: run.percentile_ms(0.99),
            p99_by_op_ms,
            errors: done.errors,
            memory,
        };
        progress(
            args,
            &format!(
                "{:>6.0} s  {:>6.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms ({})  errors {}  RSS {:.0} MB  PSS {:.0} MB",
                closed.at_s,
                closed.ops_per_s,
                closed.p50_ms,
                closed.p99_ms,
                closed.slowest(),
                closed.errors,
                memory.rss_mb,
                memory.pss_mb
            ),
        );
        errors += done.errors;
        first_error = first_error.or(done.first_error);
        if memory_after_warm_up.is_none() && at.as_secs_f64() >= duration.as_secs_f64() * WARM_UP {
            memory_after_warm_up = Some(memory);
        }
        windows.push(closed);
    }
    clients.await?;
    changer.await?;
    // What ended after the last window closed.
    let rest = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    errors += rest.errors;
    first_error = first_error.or(rest.first_error);

    server.abort();
    let database = if app.db.dialect() == crm_store::Dialect::Postgres { "postgres" } else { "sqlite" };
    app.db.close().await;
    let memory_end = Memory::now();
    let memory_after_warm_up = memory_after_warm_up.unwrap_or(memory_start);
    Ok(Report {
        records: args.records,
        database,
        clients: args.clients,
        minutes,
        capacity,
        rate,
        windows,
        errors,
        first_error,
        metadata_changes: changes.load(Ordering::Relaxed),
        slowest_metadata_change_ms: slowest_change_us.load(Ordering::Relaxed) as f64 / 1000.0,
        memory_start,
        memory_after_warm_up,
        memory_end,
        memory_peak: peak.get(),
        rss_growth_after_warm_up: memory_end.rss_mb / memory_after_warm_up.rss_mb.max(1.0) - 1.0,
    })
}

/// Runs the mix from `clients` tasks until `deadline`, each starting an operation every `pace`
/// (as fast as they can without), tallying every outcome.
async fn run_clients(
    clients: usize,
    pace: Option<Duration>,
    deadline: Instant,
    http: &Http,
    ids: &Arc<Vec<Uuid>>,
    owners: &Arc<Vec<Uuid>>,
    tally: &Arc<Mutex<Tally>>,
) {
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, ids, owners, tally) = (http.clone(), ids.clone(), owners.clone(), tally.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(5000 + client as u64);
                // Clients start spread over one pace, not all at once.
                let offset = pace.map_or(Duration::ZERO, |p| p.mul_f64(client as f64 / clients as f64));
                let mut ticks = pace.map(|p| {
                    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, p);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks
                });
                while Instant::now() < deadline {
                    if let Some(ticks) = &mut ticks {
                        ticks.tick().await;
                    }
                    let began = Instant::now();
                    let (place, outcome) = one(&http, &ids, &owners, &mut rng).await;
                    match outcome {
                        Ok(()) => {
                            let took = began.elapsed().as_micros() as u64;
                            let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                            tally.latencies_us.push(took);
                            tally.by_op[place].push(took);
                        }
                        Err(e) => failed(&tally, &e),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        // A client cannot panic but through a bug of the bench itself: surface it.
        task.await.expect("a soak client panicked");
    }
}

fn failed(tally: &Mutex<Tally>, error: &anyhow::Error) {
    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    tally.errors += 1;
    tally.first_error.get_or_insert_with(|| format!("{error:#}"));
}

/// One operation of the mix, chosen by weight: its place in [`MIX`], and how it went.
async fn one(http: &Http, ids: &[Uuid], owners: &[Uuid], rng: &mut StdRng) -> (usize, anyhow::Result<()>) {
    let mut pick = rng.random_range(0..MIX.iter().map(|(_, w)| w).sum::<u32>());
    let place = MIX
        .iter()
        .position(|(_, weight)| {
            let here = pick < *weight;
            pick = pick.saturating_sub(*weight);
            here
        })
        .unwrap_or(0);
    (place, run_one(MIX[place].0, http, ids, owners, rng).await)
}

async fn run_one(op: Op, http: &Http, ids: &[Uuid], owners: &[Uuid], rng: &mut StdRng) -> anyhow::Result<()> {
    let id = ids[rng.random_range(0..ids.len())];
    match op {
        Op::Get => http.send(Method::GET, &format!("/api/v1/records/customer/{id}"), None).await?,
        Op::List => {
            let q = query_string(&filtered_params(rng));
            http.send(Method::GET, &format!("/api/v1/records/customer?{q}"), None).await?
        }
        Op::Screen => http.send(Method::GET, "/e/customer", None).await?,
        Op::Create => http.send(Method::POST, "/api/v1/records/customer", Some(&customer(rng, owners))).await?,
        Op::Update => {
            // As a person saves: the version read goes with the change. Another client saving
            // the same customer in between is told so (409), which is an answer, not a failure.
            let path = format!("/api/v1/records/customer/{id}");
            let read: serde_json::Value = serde_json::from_slice(&http.send(Method::GET, &path, None).await?)?;
            let change =
                json!({"annual_revenue": rng.random_range(100_000..500_000_000i64), "version": read["version"]});
            let body = Bytes::from(serde_json::to_vec(&change)?);
            let (status, answer) = http.exchange(Method::PATCH, &path, body).await?;
            anyhow::ensure!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "{path}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
            answer
        }
        Op::Count => http.send(Method::GET, "/api/v1/records/customer/groups?by=status", None).await?,
    };
    Ok(())
}

pub fn print(report: &Report) {
    println!(
        "\nsoak of {} min on {} customers ({}), {} clients: {:.0} operations/s, half of the {:.0} measured\n",
        report.minutes, report.records, report.database, report.clients, report.rate, report.capacity
    );
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8} {:>10}  slowest p99",
        "at s", "ops/s", "p50 ms", "p99 ms", "errors", "RSS MB", "PSS MB", "private MB"
    );
    for w in &report.windows {
        println!(
            "{:>8.0} {:>9.0} {:>9.2} {:>9.2} {:>7} {:>8.0} {:>8.0} {:>10.0}  {}",
            w.at_s,
            w.ops_per_s,
            w.p50_ms,
            w.p99_ms,
            w.errors,
            w.memory.rss_mb,
            w.memory.pss_mb,
            w.memory.private_mb,
            w.slowest()
        );
    }
    let p99s = report.windows.iter().map(|w| w.p99_ms);
    let (low, high) = p99s.fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p), hi.max(p)));
    println!("\np99 per window: {:.2}–{:.2} ms", if high > 0.0 { low } else { 0.0 }, high);
    println!(
        "fields added to the customers meanwhile: {} (slowest {:.0} ms)",
        report.metadata_changes, report.slowest_metadata_change_ms
    );
    for (when, m) in [
        ("at the start", report.memory_start),
        ("after warm-up", report.memory_after_warm_up),
        ("at the end", report.memory_end),
        ("at the peak", report.memory_peak),
    ] {
        println!("memory {when}: {m}");
    }
    println!("RSS from warm-up to the end: {:+.1} %", report.rss_growth_after_warm_up * 100.0);
    match &report.first_error {
        Some(e) => println!("errors: {} (first: {e})", report.errors),
        None => println!("errors: 0"),
    }
}
