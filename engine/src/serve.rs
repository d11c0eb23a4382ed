//! Running the server: listen, serve until SIGINT or SIGTERM, then drain and close.

use std::time::Duration;

use crate::app::AppState;

/// Serves the app on a bound listener until a shutdown signal.
pub async fn serve(app: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    crate::tasks::mark_interrupted(&app).await?;
    let router = crate::build_app(app.clone());
    background(app.clone());
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await?;
    // The SQLite log is copied into the database and cut back, so that a stopped server
    // leaves one file behind, not a log of hundreds of megabytes.
    if let Err(e) = app.db.settle(&[]).await {
        tracing::warn!(error = ?e, "checkpointing the database at shutdown failed");
    }
    app.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts what a node does besides answering requests: the schedule, the outbox consumers,
/// sending webhook deliveries and, with several nodes on one PostgreSQL database, following
/// what the others change.
pub fn background(app: AppState) {
    if app.db.dialect() == crm_store::Dialect::Postgres {
        tokio::spawn(follow_catalog(app.clone()));
        tokio::spawn(follow_sign_outs(app.clone()));
    }
    tokio::spawn(crate::schedule::follow_schedule(app.clone()));
    tokio::spawn(crate::jobs::Runner::new(app.clone(), crate::jobs::standard()).run());
    tokio::spawn(crate::webhooks::deliver::follow(app.clone()));
}

/// Someone signed out on another node (a user disabled, a password reset) or was given other
/// roles: this node stops trusting the sessions, tokens and permissions it worked out, at once.
async fn follow_sign_outs(app: AppState) {
    loop {
        match crm_store::server::listen(&app.config.database_url, crm_store::system::SIGNED_OUT_CHANNEL).await {
            Ok(mut listener) => loop {
                // A notification, or a lost connection over which one may have been missed.
                let heard = listener.next().await;
                app.signed_out();
                if heard.is_err() {
                    break;
                }
            },
            Err(e) => tracing::warn!(error = %e, "listening for sign-outs failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
