//! The server's metrics in the Prometheus text format (`GET /metrics`, with the token of
//! `--metrics-token`): requests by route, method and status with their latency, database
//! statements and connections, the outbox consumers' lag and failures, webhook deliveries,
//! rule runs and failed logins. Requests carry an id (`X-Request-Id`, kept from the client when
//! it sends a sane one) that every log line of the request, its rule runs and the outbox work
//! it caused names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_store::stats::{BUCKETS, Histogram};
use tracing::Instrument;

use crate::app::{App, AppState};
use crate::error::ApiResult;

/// What the process counts as it goes.
#[derive(Default)]
pub struct Metrics {
    /// Per route and method: the answers by status, and the latency.
    requests: Mutex<BTreeMap<(String, String), Route>>,
    pub rule_runs: Histogram,
    pub rule_failures: AtomicU64,
    pub login_failures: AtomicU64,
}

#[derive(Default)]
struct Route {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

tokio::task_local! {
    /// The id of the request being answered, for the outbox events it writes.
    pub static REQUEST_ID: String;
}

/// The request's id, when a request is being answered.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client's id is kept when it is short and plain; otherwise a new one is made.
fn id_of(headers: &HeaderMap) -> String {
    let given = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    match given.filter(|id| (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        Some(id) => id.to_owned(),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

/// Gives each request its id (in a span around everything it logs, and in the answer) and
/// counts it under its route.
pub async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().to_string();
    let id = id_of(request.headers());
    let span = tracing::info_span!("request", id = %id, %method, route = %route);
    let started = Instant::now();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request).instrument(span)).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let mut requests = app.metrics.requests.lock().unwrap_or_else(|e| e.into_inner());
    let counted = requests.entry((route, method)).or_default();
    *counted.statuses.entry(status).or_default() += 1;
    counted.latency.record(seconds);
    response
}

/// A label value, escaped as the text format wants.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let (counts, sum) = histogram.read();
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in BUCKETS.iter().zip(&counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
    }
    let total = counts.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {total}");
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The metrics as text.
pub async fn render(app: &App) -> ApiResult<String> {
    let mut out = String::new();
    {
        let requests = app.metrics.requests.lock().unwrap_or_else(|e| e.into_inner());
        head(&mut out, "crm_http_requests_total", "counter", "Requests answered, by route, method and status.");
        for ((route, method), counted) in requests.iter() {
            for (status, n) in &counted.statuses {
                let _ = writeln!(
                    out,
                    "crm_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        head(&mut out, "crm_http_request_duration_seconds", "histogram", "Time to answer, by route and method.");
        for ((route, method), counted) in requests.iter() {
            let labels = format!("route=\"{}\",method=\"{method}\"", label(route));
            histogram(&mut out, "crm_http_request_duration_seconds", &labels, &counted.latency);
        }
    }
    head(&mut out, "crm_db_statement_duration_seconds", "histogram", "Database statements, by side.");
    histogram(&mut out, "crm_db_statement_duration_seconds", "side=\"read\"", &crm_store::stats::READS);
    histogram(&mut out, "crm_db_statement_duration_seconds", "side=\"write\"", &crm_store::stats::WRITES);
    let (size, idle) = app.db.connections();
    head(&mut out, "crm_db_connections", "gauge", "Open database connections of this node, by state.");
    let _ = writeln!(
        out,
        "crm_db_connections{{state=\"idle\"}} {idle}\ncrm_db_connections{{state=\"busy\"}} {}",
        size.saturating_sub(idle)
    );

    head(&mut out, "crm_outbox_lag_events", "gauge", "Events each outbox consumer has yet to handle.");
    for cursor in crm_store::jobs::cursors(&app.db).await? {
        let node = if cursor.node.is_empty() { "shared" } else { cursor.node.as_str() };
        let _ = writeln!(
            out,
            "crm_outbox_lag_events{{consumer=\"{}\",node=\"{}\"}} {}",
            label(&cursor.consumer),
            label(node),
            cursor.lag
        );
    }
    head(
        &mut out,
        "crm_outbox_failed_events",
        "gauge",
        "Events a consumer failed on and waits to try again or gave up.",
    );
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    for failure in crm_store::jobs::failures(&app.db).await? {
        *failed.entry(failure.consumer).or_default() += 1;
    }
    for (consumer, n) in failed {
        let _ = writeln!(out, "crm_outbox_failed_events{{consumer=\"{}\"}} {n}", label(&consumer));
    }
    head(&mut out, "crm_webhook_deliveries", "gauge", "Webhook deliveries, by status.");
    for (status, n) in crm_store::webhooks::counts(&app.db).await? {
        let _ = writeln!(out, "crm_webhook_deliveries{{status=\"{status}\"}} {n}");
    }
    head(&mut out, "crm_rule_run_duration_seconds", "histogram", "Rule runs and their time.");
    histogram(&mut out, "crm_rule_run_duration_seconds", "", &app.metrics.rule_runs);
    head(&mut out, "crm_rule_failures_total", "counter", "Rule runs that failed or ran out of time.");
    let _ = writeln!(out, "crm_rule_failures_total {}", app.metrics.rule_failures.load(Ordering::Relaxed));
    head(&mut out, "crm_login_failures_total", "counter", "Sign-ins refused for a wrong login or password.");
    let _ = writeln!(out, "crm_login_failures_total {}", app.metrics.login_failures.load(Ordering::Relaxed));
    Ok(out)
}

/// `GET /metrics`: for a scraper with the metrics token; without a token configured, there
/// are none to read.
pub async fn serve(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = app.config.metrics_token.as_deref() else { return StatusCode::NOT_FOUND.into_response() };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|given| crate::auth::same_secret(given, token)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match render(&app).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(e) => e.into_response(),
    }
}
