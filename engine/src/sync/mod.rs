//! ERP sync (I-1, B-7, O-3): sync mappings are metadata (`syncs/<name>.json`): a table of an
//! external database, an entity, the key (the ERP's code, remembered per record), the fields
//! with their transforms, the direction. A run reads the rows changed since the last one (by
//! the watermark column) or all of them, and writes every change through the save pipeline
//! as the system, with the source `sync`, one row at a time: a row that fails is recorded
//! with its reason and the others go on. Unchanged rows are skipped by a digest of their
//! values, so running twice changes nothing. Runs are kept with what they did; a dry run
//! records what it would change and changes nothing. Scheduled runs run on one node.
//!
//! A connection's address (with its password) is kept sealed per installation, apart from
//! the metadata, like a webhook's secret.

mod run;
pub mod screens;
mod values;

use chrono::{DateTime, TimeDelta, Utc};
use crm_erp::Erp;
use crm_model::{Catalog, SyncDoc};
use crm_store::sync::{self as store, Counts, Run};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};

/// A run still marked running after this long was cut short (its node stopped); another
/// may start.
const STALE: TimeDelta = TimeDelta::hours(2);

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Compare every row, even with a watermark (rows gone from the source are seen so).
    pub full: bool,
    pub dry_run: bool,
    pub trigger: Trigger,
    pub by: Option<Uuid>,
}

fn connection_setting(name: &str) -> String {
    format!("sync_connection:{name}")
}

/// A connection's address, opened; `None` while none was set.
async fn connection_url(app: &App, name: &str) -> ApiResult<Option<String>> {
    let stored = crm_store::settings::setting(&app.db, &connection_setting(name)).await?;
    Ok(stored.and_then(|s| s["sealed"].as_str().and_then(|sealed| app.secrets.open(sealed))))
}

fn unreachable(e: crm_erp::ErpError) -> ApiError {
    ApiError::Upstream { code: "erp_unreachable", message: e.to_string() }
}

/// `PUT /api/v1/sync/connections/{name}` `{url}`: the address of an external database,
/// checked by connecting, kept sealed; answered without its password.
pub async fn set_connection(app: &App, principal: &Principal, name: &str, url: &str) -> ApiResult<Json> {
    principal.require_admin()?;
    if crm_model::Ident::new(name).is_err() {
        return Err(ApiError::field("name", "invalid", "a connection's name: lower-case letters, digits and _"));
    }
    let erp = Erp::connect(url.trim()).await.map_err(unreachable)?;
    erp.close().await;
    let stored = json!({"sealed": app.secrets.seal(url.trim()), "address": crm_erp::redacted(url.trim())});
    crm_store::settings::set_setting(&app.db, &connection_setting(name), stored, principal.user_id, app.now()).await?;
    Ok(json!({"name": name, "address": crm_erp::redacted(url.trim())}))
}

/// The connections the mappings name, each with its address (without the password) when
/// it is set.
async fn connections(app: &App, catalog: &Catalog) -> ApiResult<Vec<Json>> {
    let mut names: Vec<&str> = catalog.docs().syncs.values().map(|s| s.connection.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let stored = crm_store::settings::setting(&app.db, &connection_setting(name)).await?;
        let address = stored.as_ref().and_then(|s| s["address"].as_str()).map(str::to_owned);
        out.push(json!({"name": name, "address": address}));
    }
    Ok(out)
}

fn mapping<'c>(catalog: &'c Catalog, name: &str) -> ApiResult<&'c SyncDoc> {
    catalog.docs().syncs.get(name).ok_or_else(|| ApiError::not_found(format!("no sync mapping `{name}`")))
}

/// `GET /api/v1/sync`: the mappings with their latest run, and the connections.
pub async fn overview(app: &App, principal: &Principal) -> ApiResult<Json> {
    principal.require_admin()?;
    let catalog = app.catalog();
    let mut data = Vec::new();
    for sync in catalog.docs().syncs.values() {
        let last = store::runs(&app.db, sync.name.as_str(), 1).await?.into_iter().next();
        data.push(json!({"mapping": sync, "last_run": last}));
    }
    Ok(json!({"data": data, "connections": connections(app, &catalog).await?}))
}

/// `GET /api/v1/sync/{name}/runs`: a mapping's latest runs, newest first.
pub async fn runs(app: &App, principal: &Principal, name: &str, limit: i64) -> ApiResult<Vec<Run>> {
    principal.require_admin()?;
    mapping(&app.catalog(), name)?;
    Ok(store::runs(&app.db, name, limit.clamp(1, 100)).await?)
}

/// `GET /api/v1/sync/runs/{id}`: one run, with its failed rows and, for a dry run, what it
/// would change.
pub async fn run_of(app: &App, principal: &Principal, id: &str) -> ApiResult<Run> {
    principal.require_admin()?;
    let missing = || ApiError::not_found(format!("no sync run `{id}`"));
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    store::run(&app.db, id).await?.ok_or_else(missing)
}

/// Starts a run of a mapping and answers it as it stands: finished when `wait`, otherwise
/// just started (it goes on in the background; its counts show its progress). Refused
/// while another run of the mapping is going.
pub async fn start(app: &AppState, principal: &Principal, name: &str, options: Options, wait: bool) -> ApiResult<Run> {
    principal.require_admin()?;
    let sync = mapping(&app.catalog(), name)?.clone();
    let run = begin(app, &sync, options).await?.ok_or_else(|| ApiError::AlreadyDone {
        code: "sync_running",
        message: format!("a run of `{name}` is going; wait for it to end"),
    })?;
    if wait {
        return Ok(run::execute(app, &sync, run).await);
    }
    let started = run.clone();
    let app = app.clone();
    tokio::spawn(async move {
        run::execute(&app, &sync, run).await;
    });
    Ok(started)
}

/// Records a run as started; `None` while another run of the mapping is going.
async fn begin(app: &App, sync: &SyncDoc, options: Options) -> ApiResult<Option<Run>> {
    let now = app.now();
    let run = Run {
        id: Uuid::now_v7(),
        sync: sync.name.to_string(),
        trigger: options.trigger.as_str().to_owned(),
        dry_run: options.dry_run,
        full: options.full,
        status: "running".into(),
        started_by: options.by,
        started_at: now,
        finished_at: None,
        counts: Counts::default(),
        message: None,
        errors: json!([]),
        changes: json!([]),
    };
    Ok(store::start(&app.db, &run, now - STALE).await?.then_some(run))
}

/// Runs every enabled mapping whose scheduled slot has come and that no node has run for it
/// yet, in the order of their references (customers before their contacts); returns how
/// many ran.
pub async fn run_due(app: &App, now: DateTime<Utc>) -> ApiResult<usize> {
    let catalog = app.catalog();
    let mut ran = 0;
    for sync in run::in_order(&catalog) {
        let Some(slot) = sync.schedule.as_deref().and_then(|s| crate::schedule::latest_slot(s, now)) else { continue };
        if !sync.enabled
            || !crm_store::system::claim_scheduled_run(&app.db, &format!("sync:{}", sync.name), slot).await?
        {
            continue;
        }
        let options = Options { full: false, dry_run: false, trigger: Trigger::Schedule, by: None };
        if let Some(run) = begin(app, sync, options).await? {
            let done = run::execute(app, sync, run).await;
            tracing::info!(sync = %sync.name, status = %done.status, counts = ?done.counts, "ran a scheduled sync");
            ran += 1;
        }
    }
    Ok(ran)
}
