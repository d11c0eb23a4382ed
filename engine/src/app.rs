//! The running application: the database, the live catalog and the caches every request
//! shares; opening it migrates the system tables and installs the core package on first start.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, SubsecRound as _, Utc};
use crm_model::{Catalog, Docs};
use crm_store::{Db, system};

use crate::access::AccessCache;
use crate::auth::TokenCache;
use crate::config::Config;
use crate::package::Package;

pub struct App {
    /// The app itself, for work handed to other threads (rules read records through it).
    me: std::sync::Weak<App>,
    pub db: Db,
    pub config: Config,
    catalog: ArcSwap<Catalog>,
    /// Metadata changes on this node apply one at a time.
    pub(crate) meta_lock: tokio::sync::Mutex<()>,
    pub(crate) tokens: TokenCache,
    pub(crate) access: AccessCache,
    pub(crate) throttle: crate::auth::Throttle,
    pub(crate) counts: crate::records::CountCache,
    pub rules: crm_rules::Rules,
}

pub type AppState = Arc<App>;

/// What the first start did, for the command line to report.
pub struct Opened {
    pub app: AppState,
    /// The generated password of the first administrator, printed once.
    pub generated_admin_password: Option<String>,
}

impl App {
    /// Connects, migrates, loads the catalog and, on first start, installs the core package
    /// and creates the administrator.
    pub async fn open(config: Config) -> anyhow::Result<Opened> {
        if !config.database_url.starts_with("postgres") {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", config.data_dir.display()))?;
        }
        let read_connections = std::thread::available_parallelism().map_or(4, |n| n.get() as u32 * 2).max(4);
        let db = Db::connect(&config.database_url, read_connections).await?;
        db.migrate().await?;
        let catalog = load_catalog(&db).await?;
        let rules_budget = config.rule_budget;
        let app = Arc::new_cyclic(|me| App {
            me: me.clone(),
            db,
            config,
            catalog: ArcSwap::from_pointee(catalog),
            meta_lock: tokio::sync::Mutex::new(()),
            tokens: TokenCache::default(),
            access: AccessCache::default(),
            throttle: crate::auth::Throttle::default(),
            counts: crate::records::CountCache::default(),
            rules: crm_rules::Rules::new(crm_rules::Limits { budget: rules_budget, ..crm_rules::Limits::default() }),
        });
        if app.catalog().entities().next().is_none() {
            let core = Package::core()?;
            crate::metadata::apply_docs(&app, None, |current| Ok(core.merge_into(current)))
                .await
                .map_err(|e| anyhow::anyhow!("installing the core package failed: {e:?}"))?;
            tracing::info!("installed the core package");
        }
        let generated_admin_password = crate::auth::ensure_admin(&app).await?;
        Ok(Opened { app, generated_admin_password })
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

    /// Called after a write commits: list totals are recounted, and changes to users and
    /// departments change who may see what.
    pub fn noticed_write(&self, entity: &str) {
        self.counts.forget();
        if entity == crm_model::USER_ENTITY || entity == "department" {
            self.access.forget();
        }
    }

    /// Called after roles, accounts or ownership change: who sees what is worked out again.
    pub fn scopes_changed(&self) {
        self.access.forget();
        self.counts.forget();
    }

    /// The time of the engine; one place so rules and schedules can be tested with a clock.
    pub fn now(&self) -> DateTime<Utc> {
        // Microseconds: what both databases keep, so a record reads back as it was written.
        Utc::now().trunc_subsecs(6)
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
