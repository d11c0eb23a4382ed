//! The `crm` command: parses the configuration and runs a subcommand of the library.

use clap::Parser;
use crm::bench;
use crm::config::{Cli, Command, Config, MetaCommand, SearchCommand};
use crm::package::Package;
use tracing_subscriber::EnvFilter;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to standard error, so that what a command prints (`bench --json`, the plan
    // of `meta apply`) can be piped; `CRM_LOG_FORMAT=json` writes a JSON object per line,
    // with the request's id and route on each line of a request.
    let filter = EnvFilter::try_from_env("CRM_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    if std::env::var("CRM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().with_current_span(true).with_span_list(true).init();
    } else {
        logs.init();
    }
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            tracing::info!(?config, "starting");
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let opened = crm::setup::open(config).await?;
            if let Some(password) = &opened.generated_admin_password {
                // Printed once, to the terminal only: it is not kept anywhere in clear.
                println!("\nFirst start: log in as `admin` with password {password}\n");
            }
            tracing::info!(listen = %listener.local_addr()?, "serving");
            crm::serve::serve(opened.app, listener).await
        }
        Command::Meta { command: MetaCommand::Export { dir, server } } => {
            let opened = crm::setup::open(Config::resolve(&server)?).await?;
            let written = Package::export(&opened.app.catalog(), &dir, "export")?;
            println!("wrote {written} documents to {}", dir.display());
            Ok(())
        }
        Command::Meta { command: MetaCommand::Apply { dir, dry_run, server } } => {
            let opened = crm::setup::open(Config::resolve(&server)?).await?;
            crm::package::apply_dir(&opened.app, &dir, dry_run).await
        }
        Command::Template { command } => crm::templates::cli::run(command).await,
        Command::Backup { to, server } => {
            let size = crm::backup::backup(&Config::resolve(&server)?, &to).await?;
            println!("wrote {} ({:.1} MB)", to.display(), size as f64 / 1e6);
            Ok(())
        }
        Command::Restore { from, force, server } => {
            let config = Config::resolve(&server)?;
            crm::backup::restore(&config, &from, force).await?;
            let opened = crm::setup::open(config).await?;
            crm::search::rebuild(&opened.app, |_, _| {})
                .await
                .map_err(|e| anyhow::anyhow!("rebuilding the search index failed: {e:?}"))?;
            println!("restored {}; the search index was rebuilt", from.display());
            Ok(())
        }
        Command::Search { command: SearchCommand::Reindex { server } } => {
            let opened = crm::setup::open(Config::resolve(&server)?).await?;
            let began = std::time::Instant::now();
            crm::search::rebuild(&opened.app, |entity, done| {
                if done % 10_000 == 0 {
                    eprintln!("{entity}: {done}");
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("rebuilding the search index failed: {e:?}"))?;
            let stats = opened.app.search.stats()?;
            println!(
                "indexed {} documents ({:.1} MB) in {:.1} s",
                stats.documents,
                stats.bytes as f64 / 1e6,
                began.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Bench(args) => bench::run(args).await,
    }
}
