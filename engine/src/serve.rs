//! Running the server: listen, serve until SIGINT or SIGTERM, then drain and close.

use std::time::Duration;

use crate::app::AppState;

/// Serves the app on a bound listener until a shutdown signal.
pub async fn serve(app: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let router = crate::build_app(app.clone());
    if app.db.dialect() == crm_store::Dialect::Postgres {
        tokio::spawn(follow_catalog(app.clone()));
    }
    tokio::spawn(crate::schedule::follow_schedule(app.clone()));
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await?;
    app.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Other nodes on the same PostgreSQL database may change the metadata: look every second.
async fn follow_catalog(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match app.refresh_catalog().await {
            Ok(true) => tracing::info!(version = app.catalog().version, "picked up a metadata change"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "checking the catalog version failed"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
