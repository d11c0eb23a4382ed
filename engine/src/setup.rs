//! The first start: the core package installed into an empty catalog and the first
//! administrator created, its password printed once. Every command that opens the app
//! opens it through here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_store::system;
use serde_json::json;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::config::Config;
use crate::package::Package;
use crate::records::{Source, Unit};

/// What opening did, for the command line to report.
pub struct Opened {
    pub app: AppState,
    /// The generated password of the first administrator, printed once.
    pub generated_admin_password: Option<String>,
}

/// Opens the app and, on first start, installs the core package and creates the
/// administrator.
pub async fn open(config: Config) -> anyhow::Result<Opened> {
    let app = App::open(config).await?;
    if app.catalog().entities().next().is_none() {
        let core = Package::core()?;
        crate::metadata::apply_docs(&app, None, |current| Ok(core.merge_into(current)))
            .await
            .map_err(|e| anyhow::anyhow!("installing the core package failed: {e:?}"))?;
        let records = core
            .install_data(&app, false)
            .await
            .map_err(|e| anyhow::anyhow!("creating the core package's records failed: {e:?}"))?;
        tracing::info!(records, "installed the core package");
    }
    let generated_admin_password = ensure_admin(&app).await?;
    Ok(Opened { app, generated_admin_password })
}

/// Creates the administrator on first start. Returns the generated password, if one was.
async fn ensure_admin(app: &App) -> anyhow::Result<Option<String>> {
    if system::any_credential(&app.db).await? {
        return Ok(None);
    }
    let (password, generated) = match &app.config.admin_password {
        Some(password) => (password.clone(), false),
        None => {
            let mut bytes = [0u8; 12];
            rand::fill(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
    };
    let id = Uuid::now_v7();
    let catalog = app.catalog();
    let admin_roles: Vec<String> =
        catalog.docs().roles.values().filter(|r| r.admin).map(|r| r.name.to_string()).collect();
    anyhow::ensure!(!admin_roles.is_empty(), "the catalog has no administrator role");
    let principal = Principal {
        user_id: id,
        department: None,
        roles: admin_roles.clone(),
        access: std::sync::Arc::new(crm_model::Access::of(admin_roles.iter().filter_map(|r| catalog.role(r)))),
        must_change_password: false,
    };
    let hash = crate::auth::hash_password(&password)?;
    let fields = json!({"name": "系统管理员", "login": "admin", "active": true});
    let failed = |e| anyhow::anyhow!("creating the administrator failed: {e:?}");
    let mut unit = Unit::new(app, &principal, Source::Setup).await.map_err(failed)?;
    unit.create_with_id("user", &fields, Some(id)).await.map_err(failed)?;
    unit.also(move |tx, now| {
        Box::pin(async move {
            system::set_credential(tx, id, &hash, false, now).await?;
            system::set_user_roles(tx, id, &admin_roles).await
        })
    });
    unit.commit().await.map_err(failed)?;
    Ok(generated.then_some(password))
}
