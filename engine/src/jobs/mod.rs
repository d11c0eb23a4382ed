//! Outbox consumers: what happens because a record was written, after it was written. Every
//! write leaves events in `crm_outbox` in its own transaction; a [`Runner`] hands them, in
//! commit order, to each consumer from a durable cursor:
//!
//! - node-local consumers (caches, later the search index) keep state of their node, so every
//!   node reads every event from a cursor of its own;
//! - shared consumers act on the world (reminders, mail, later webhooks), so one node at a
//!   time claims them, and another takes over when its claim runs out.
//!
//! Delivery is at least once: a consumer must do the same thing when it sees an event twice.
//! An event a consumer fails on is tried again later, with a growing delay, and after
//! [`MAX_ATTEMPTS`] it is kept as dead for an administrator (`GET /api/v1/admin/jobs`), who
//! may send it again.

mod assignments;
mod caches;

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crm_store::jobs::{self as store, Event, Position};
use serde_json::{Value as Json, json};

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};

/// What a consumer's work on one event comes to: done, or why not.
pub type Handled<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where a consumer stands when it starts: its cursor, or what its own state says.
pub type Resumed<'a> = Pin<Box<dyn Future<Output = ApiResult<Position>> + Send + 'a>>;

/// A consumer of the outbox.
pub trait Consumer: Send + Sync {
    /// Its name, kept with its cursor.
    fn name(&self) -> &'static str;
    /// Whether one node at a time runs it (it acts on the world), instead of every node (it
    /// keeps state of its node).
    fn shared(&self) -> bool;
    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a>;
    /// Where to go on from when the runner starts. A consumer that keeps the position it
    /// reached with its own state (a search index) says it here, and the cursor follows.
    fn resume<'a>(&'a self, _app: &'a App, cursor: Position) -> Resumed<'a> {
        Box::pin(async move { Ok(cursor) })
    }
    /// Makes what the events up to `reached` did durable, before the cursor moves past them.
    fn flush<'a>(&'a self, _app: &'a App, _reached: Position) -> Handled<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// The consumers every node runs.
pub fn standard() -> Vec<Box<dyn Consumer>> {
    vec![
        Box::new(caches::Caches),
        Box::new(assignments::Assignments),
        Box::new(crate::search::Indexer),
        Box::new(crate::mail::Sender),
        Box::new(crate::webhooks::Dispatcher),
    ]
}

/// Events read at a time.
const BATCH: i64 = 500;
/// Attempts at an event before it is kept as dead.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a node holds a shared consumer without renewing its claim.
const LEASE: TimeDelta = TimeDelta::seconds(30);
/// How often a node looks for new events.
const POLL: Duration = Duration::from_millis(250);
/// The least time from one run of a consumer to the next when writes wake it. A write after
/// a quiet spell is handled at once; under a stream of writes a run takes the events of many
/// (one read of the outbox, one cursor write, one index commit) instead of following each
/// write with writes of its own.
const SETTLE: Duration = Duration::from_millis(100);

/// Handles an event in a span that names the request which wrote it, so that the work it
/// causes logs beside the request.
async fn handle(consumer: &dyn Consumer, app: &App, event: &Event) -> Result<(), String> {
    use tracing::Instrument as _;
    let request = event.payload["request"].as_str().unwrap_or_default();
    let span = tracing::info_span!("job", consumer = consumer.name(), seq = event.seq, request);
    consumer.handle(app, event).instrument(span).await
}

/// The delay before attempt `n + 1` at an event: 1 s, 2 s, 4 s … up to an hour.
fn backoff(attempts: i64) -> TimeDelta {
    TimeDelta::seconds(1_i64 << attempts.clamp(1, 12).saturating_sub(1)).min(TimeDelta::hours(1))
}

/// Runs consumers over the outbox.
pub struct Runner {
    app: AppState,
    consumers: Vec<Box<dyn Consumer>>,
    /// The consumers that were asked where they stand since this runner started.
    resumed: std::sync::Mutex<std::collections::HashSet<&'static str>>,
}

impl Runner {
    pub fn new(app: AppState, consumers: Vec<Box<dyn Consumer>>) -> Self {
        Runner { app, consumers, resumed: Default::default() }
    }

    /// Runs until the process ends, each consumer in a task of its own, so a slow one (a
    /// mailing of thousands) never holds up another: after each write on this node, or every
    /// [`POLL`] for the writes of other nodes.
    pub async fn run(self) {
        let runner = std::sync::Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..runner.consumers.len() {
            let runner = runner.clone();
            tasks.spawn(async move { runner.follow(index).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn follow(&self, index: usize) {
        let consumer = self.consumers[index].as_ref();
        let mut written = self.app.written.subscribe();
        loop {
            let started = tokio::time::Instant::now();
            if let Err(e) = self.run_consumer(consumer, self.app.now()).await {
                tracing::warn!(consumer = consumer.name(), error = ?e, "running an outbox consumer failed");
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = written.changed() => tokio::time::sleep_until(started + SETTLE).await,
            }
        }
    }

    /// Gives each consumer what waits for it at `now`: failed events whose time has come,
    /// then new ones. Returns how many events were handed over.
    pub async fn run_once(&self, now: DateTime<Utc>) -> ApiResult<usize> {
        let mut handled = 0;
        for consumer in &self.consumers {
            handled += self.run_consumer(consumer.as_ref(), now).await?;
        }
        Ok(handled)
    }

    async fn run_consumer(&self, consumer: &dyn Consumer, now: DateTime<Utc>) -> ApiResult<usize> {
        let (app, db, name) = (&*self.app, &self.app.db, consumer.name());
        let node = if consumer.shared() { "" } else { app.node.as_str() };
        let mut at = match store::cursor(db, name, node).await? {
            Some(at) => at,
            // A new consumer starts from now: what was written before is not news to it.
            None => {
                let start = store::end(db).await?;
                store::start_cursor(db, name, node, start, now).await?;
                store::cursor(db, name, node).await?.unwrap_or(start)
            }
        };
        if consumer.shared() && !store::claim(db, name, &app.node, now, now + LEASE).await? {
            return Ok(0);
        }
        if !self.resumed.lock().unwrap_or_else(|e| e.into_inner()).contains(name) {
            let resumed = consumer.resume(app, at).await?;
            if resumed != at {
                store::advance(db, name, node, resumed, now).await?;
                at = resumed;
            }
            self.resumed.lock().unwrap_or_else(|e| e.into_inner()).insert(name);
        }
        let mut handled = 0;
        for due in store::due(db, name, node, now).await? {
            let outcome = match store::event_by_seq(db, due.seq).await? {
                Some(event) => handle(consumer, app, &event).await,
                // The event is gone from the outbox: nothing is left to do.
                None => Ok(()),
            };
            match outcome {
                Ok(()) => store::recovered(db, name, node, due.seq).await?,
                Err(error) => self.failed(name, node, due.seq, due.attempts + 1, &error, now).await?,
            }
            handled += 1;
        }
        if handled > 0 {
            consumer.flush(app, at).await.map_err(|e| ApiError::Internal(anyhow::anyhow!("{name}: {e}")))?;
        }
        loop {
            let events = store::events_after(db, at, BATCH).await?;
            for event in &events {
                if let Err(error) = handle(consumer, app, event).await {
                    self.failed(name, node, event.seq, 1, &error, now).await?;
                }
            }
            let Some(last) = events.last() else { break };
            at = Position { tx: last.tx, seq: last.seq };
            consumer.flush(app, at).await.map_err(|e| ApiError::Internal(anyhow::anyhow!("{name}: {e}")))?;
            store::advance(db, name, node, at, now).await?;
            handled += events.len();
            if (events.len() as i64) < BATCH {
                break;
            }
        }
        Ok(handled)
    }

    async fn failed(
        &self,
        name: &str,
        node: &str,
        seq: i64,
        attempts: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let dead = attempts >= MAX_ATTEMPTS;
        tracing::warn!(consumer = name, seq, attempts, dead, error, "an outbox consumer failed on an event");
        store::failed(&self.app.db, name, node, seq, attempts, error, now, now + backoff(attempts), dead).await?;
        Ok(())
    }
}

/// Renews this node's claim on a shared consumer during long work on one event (a mailing);
/// false when another node took it over meanwhile, and the work must stop.
pub async fn renew_claim(app: &App, consumer: &str) -> ApiResult<bool> {
    let now = app.now();
    Ok(store::claim(&app.db, consumer, &app.node, now, now + LEASE).await?)
}

/// `GET /api/v1/admin/jobs`: each consumer (the standard ones, and any other that has left a
/// cursor) with its cursors — how far, how many events wait — and the events it failed on.
pub async fn status(app: &App, principal: &Principal) -> ApiResult<Json> {
    principal.require_admin()?;
    let cursors = store::cursors(&app.db).await?;
    let failures = store::failures(&app.db).await?;
    let mut names: Vec<&str> = standard().iter().map(|c| c.name()).collect();
    for name in cursors.iter().map(|c| c.consumer.as_str()).chain(failures.iter().map(|f| f.consumer.as_str())) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let consumers: Vec<Json> = names
        .into_iter()
        .map(|name| {
            let mine: Vec<_> = cursors.iter().filter(|c| c.consumer == name).collect();
            let failed: Vec<_> = failures.iter().filter(|f| f.consumer == name).collect();
            json!({
                "name": name,
                "shared": mine.iter().any(|c| c.node.is_empty()),
                "lag": mine.iter().map(|c| c.lag).max().unwrap_or(0),
                "cursors": mine,
                "retrying": failed.iter().filter(|f| !f.dead).count(),
                "dead": failed.iter().filter(|f| f.dead).count(),
                "failures": failed,
            })
        })
        .collect();
    Ok(json!({ "consumers": consumers }))
}

/// `POST /api/v1/admin/jobs/{consumer}/retry`: sends a consumer's dead events again.
pub async fn retry(app: &App, principal: &Principal, consumer: &str) -> ApiResult<Json> {
    principal.require_admin()?;
    let revived = store::revive(&app.db, consumer, app.now()).await?;
    if revived == 0 && !store::cursors(&app.db).await?.iter().any(|c| c.consumer == consumer) {
        return Err(ApiError::not_found(format!("no consumer `{consumer}`")));
    }
    Ok(json!({ "consumer": consumer, "retrying": revived }))
}
