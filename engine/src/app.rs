//! The running application: the database, the live catalog and the caches every request
//! shares. Opening it migrates the system tables; what a first start installs is
//! [`crate::setup`]'s.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, SubsecRound as _, Utc};
use crm_model::{Catalog, Docs};
use crm_store::{Db, system};

use crate::access::{AccessCache, DepartmentTree, Principal};
use crate::auth::cache::{Throttle, TokenCache};
use crate::config::Config;
use crate::error::ApiResult;
use crate::records::counts::WriteCache;

pub struct App {
    /// The app itself, for work handed to other threads (rules read records through it).
    me: std::sync::Weak<App>,
    pub db: Db,
    pub config: Config,
    /// This node's name, kept in its data folder: outbox consumers of the node keep their
    /// place under it across restarts.
    pub node: String,
    catalog: ArcSwap<Catalog>,
    /// Metadata changes on this node apply one at a time.
    pub(crate) meta_lock: tokio::sync::Mutex<()>,
    pub(crate) tokens: TokenCache,
    pub(crate) access: AccessCache,
    pub(crate) throttle: Throttle,
    /// Web form submissions per address, to turn floods away.
    pub(crate) forms: crate::forms::Limiter,
    pub(crate) counts: WriteCache<i64>,
    /// The groups of reports (and the average days in their stages), by statement.
    pub(crate) report_groups: WriteCache<Arc<Vec<crm_store::aggregate::GroupRow>>>,
    /// The groups of lists (`/records/{entity}/groups`), by statement.
    pub(crate) record_groups: WriteCache<Arc<Vec<crm_store::records::Group>>>,
    pub rules: crm_rules::Rules,
    /// This node's search index, under its data folder; shared with the blocking threads
    /// that commit it.
    pub search: Arc<crm_search::Index>,
    /// Seals the secrets the database keeps and signs links that act without a login.
    pub secrets: crate::secrets::Secrets,
    /// Counts the writes this node commits, so each of its outbox consumers, watching it,
    /// need not wait to poll.
    pub written: tokio::sync::watch::Sender<u64>,
    /// When the search index was last found to have seen every event: the write count and
    /// the index's position then (see [`crate::search`]).
    pub(crate) index_caught_up: std::sync::Mutex<Option<(u64, crm_store::jobs::Position, std::time::Instant)>>,
    /// What the process counts for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The company's name and logo as last read.
    pub(crate) brand: crate::brand::Cache,
    /// When this process opened the app: tasks created before were left by another.
    pub(crate) opened_at: DateTime<Utc>,
    /// The time [`App::now`] tells while a test holds the clock.
    clock: std::sync::Mutex<Option<DateTime<Utc>>>,
}

pub type AppState = Arc<App>;

impl App {
    /// Connects, migrates and loads the catalog.
    pub async fn open(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", config.data_dir.display()))?;
        let node = node_name(&config.data_dir)?;
        let read_connections = std::thread::available_parallelism().map_or(4, |n| n.get() as u32 * 2).max(4);
        let db = Db::connect(&config.database_url, read_connections).await?;
        db.migrate().await?;
        let catalog = load_catalog(&db).await?;
        let search = Arc::new(crm_search::Index::open(&config.data_dir.join("search"))?);
        let secrets = crate::secrets::Secrets::load(config.secret_key.as_deref(), &config.data_dir)?;
        let rules_budget = config.rule_budget;
        let opened_at = Utc::now();
        let app = Arc::new_cyclic(|me| App {
            me: me.clone(),
            db,
            config,
            node,
            catalog: ArcSwap::from_pointee(catalog),
            meta_lock: tokio::sync::Mutex::new(()),
            tokens: TokenCache::default(),
            access: AccessCache::default(),
            throttle: Throttle::default(),
            forms: crate::forms::Limiter::default(),
            counts: WriteCache::default(),
            report_groups: WriteCache::default(),
            record_groups: WriteCache::default(),
            rules: crm_rules::Rules::new(crm_rules::Limits { budget: rules_budget, ..crm_rules::Limits::default() }),
            search,
            secrets,
            written: tokio::sync::watch::Sender::new(0),
            index_caught_up: std::sync::Mutex::new(None),
            metrics: crate::metrics::Metrics::default(),
            brand: crate::brand::Cache::default(),
            opened_at,
            clock: std::sync::Mutex::new(None),
        });
        Ok(app)
    }

    /// Tells this node's outbox consumers (and the index's freshness check) that a write with
    /// events was committed.
    pub fn wrote(&self) {
        self.written.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A shared handle on the app, for work that outlives the borrow it started from.
    pub fn shared(&self) -> AppState {
        self.me.upgrade().expect("the app is alive while it is used")
    }

    /// The catalog as of now; a request keeps the one it started with.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    pub(crate) fn set_catalog(&self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
    }

    /// Picks up metadata changes made by another node on the same database.
    pub async fn refresh_catalog(&self) -> anyhow::Result<bool> {
        let version = system::catalog_version(&self.db).await?;
        if version == self.catalog().version {
            return Ok(false);
        }
        let _guard = self.meta_lock.lock().await;
        self.set_catalog(load_catalog(&self.db).await?);
        Ok(true)
    }

    /// The principal of a user who has just authenticated.
    pub async fn principal(&self, user_id: uuid::Uuid) -> ApiResult<Principal> {
        self.access.principal(&self.db, &self.catalog(), user_id).await
    }

    /// The department tree as of now.
    pub async fn departments(&self) -> ApiResult<Arc<DepartmentTree>> {
        self.access.departments(&self.db, &self.catalog()).await
    }

    /// Called after a write commits: list totals and reports are counted again, and changes
    /// to users and departments change who may see what.
    pub fn noticed_write(&self, entity: &str) {
        self.forget_counted();
        if entity == crm_model::USER_ENTITY || entity == "department" {
            self.access.forget();
        }
    }

    /// Called after someone was signed out: sessions and tokens are checked again, and so is
    /// who may do what.
    pub fn signed_out(&self) {
        self.tokens.forget();
        self.access.forget();
    }

    /// Called after roles, accounts or ownership change: who sees what is worked out again.
    pub fn scopes_changed(&self) {
        self.access.forget();
        self.forget_counted();
    }

    /// Totals and groups counted over many rows are counted again.
    fn forget_counted(&self) {
        self.counts.forget();
        self.report_groups.forget();
        self.record_groups.forget();
    }

    /// The time of the engine; one place so rules and schedules can be tested with a clock.
    pub fn now(&self) -> DateTime<Utc> {
        if let Some(held) = *self.clock.lock().unwrap_or_else(|e| e.into_inner()) {
            return held;
        }
        // Microseconds: what both databases keep, so a record reads back as it was written.
        Utc::now().trunc_subsecs(6)
    }

    /// Holds the engine's time at `at` from now on: a test of what takes days (how long a
    /// record stays in a stage) moves the clock instead of waiting.
    pub fn hold_clock(&self, at: DateTime<Utc>) {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(at.trunc_subsecs(6));
    }
}

/// The node's name: made once, then read from `node-id` in the data folder.
fn node_name(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        _ => {
            let name = uuid::Uuid::now_v7().to_string();
            std::fs::write(&path, &name).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            Ok(name)
        }
    }
}

/// Builds the catalog from the stored documents.
pub(crate) async fn load_catalog(db: &Db) -> anyhow::Result<Catalog> {
    let (version, stored) = system::load_docs(db).await?;
    let mut docs = Docs::default();
    for doc in stored {
        docs.insert_json(doc.kind, &doc.body).map_err(|e| anyhow::anyhow!("stored metadata is invalid: {e:?}"))?;
    }
    Catalog::build(docs, version).map_err(|e| anyhow::anyhow!("stored metadata is invalid: {e:?}"))
}
