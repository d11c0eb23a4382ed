//! Configuration, layered: defaults, then `crm.toml`, then `CRM_*` variables, then flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "crm", version, about = "A metadata-driven CRM platform")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServerArgs),
    /// Export or install metadata packages.
    Meta {
        #[command(subcommand)]
        command: MetaCommand,
    },
    /// Industry templates and other packages: list, show, install, upgrade, export.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// The search index of this node.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Measure the API against direct SQL on a fresh, seeded database.
    Bench(BenchArgs),
    /// Copy the data (database, secret key) to one file while the server runs.
    Backup {
        /// The backup file to write.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Bring a backup back into an empty data folder or database.
    Restore {
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
        /// Replace the database that is there.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Build the index anew from the database (with the server of this data folder stopped).
    Reindex {
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// The templates shipped with the product, and which are installed.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// What a template brings and what installing it would change.
    Show {
        /// A template's name or a package folder.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Install a template (or a package folder) over the live metadata.
    Install {
        name: String,
        /// Also create its sample records.
        #[arg(long)]
        with_sample_data: bool,
        #[command(flatten)]
        choices: ChoiceArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Upgrade an installed template to the version shipped (or in a folder), keeping what
    /// an administrator changed.
    Upgrade {
        name: String,
        #[command(flatten)]
        choices: ChoiceArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove an installed template: its entities and fields are archived with their data,
    /// what an administrator changed since stays.
    Remove {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Write entities with what they need (layouts, lists, panels, rules, reports, grants)
    /// as a template folder.
    Export {
        /// An entity to include; repeat for several.
        #[arg(long = "module", required = true)]
        modules: Vec<String>,
        /// The folder to write.
        #[arg(long)]
        to: PathBuf,
        /// The template's name [default: the first module's]
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// How to go on where the plan has conflicts, and whether to apply it.
#[derive(Debug, Clone, Default, Args)]
pub struct ChoiceArgs {
    /// Print the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Resolve a conflict: `ITEM=mine` keeps the live one, `ITEM=theirs` takes the
    /// template's; repeat for several.
    #[arg(long = "resolve")]
    pub resolve: Vec<String>,
    /// Resolve every conflict left the same way: `mine` or `theirs`.
    #[arg(long)]
    pub all: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// Write the live catalog as a package folder.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Install a package folder: validate, diff, print the plan, apply.
    Apply {
        dir: PathBuf,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the data is and where to listen. Every flag has a `CRM_*` variable and a key in
/// `crm.toml`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Folder for the SQLite database and other files [default: ./data]
    #[arg(long, env = "CRM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CRM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// `postgres://...` for PostgreSQL [default: SQLite file in the data folder]
    #[arg(long, env = "CRM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Mark the session cookie Secure (serve behind HTTPS) [default: false]
    #[arg(long, env = "CRM_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// How long one run of a rule may take, in milliseconds [default: 50]
    #[arg(long, env = "CRM_RULE_BUDGET_MS")]
    pub rule_budget_ms: Option<u64>,
    /// The company's name at the head of printed quotes and orders
    #[arg(long, env = "CRM_COMPANY_NAME")]
    pub company_name: Option<String>,
    /// The URL of the company's logo on printed quotes and orders
    #[arg(long, env = "CRM_COMPANY_LOGO")]
    pub company_logo: Option<String>,
    /// The address people reach this server at, for links in mails (unsubscribe)
    /// [default: http:// and the listen address]
    #[arg(long, env = "CRM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Base64 of 32 random bytes; the same on every node of one database
    /// [default: secret.key in the data folder, made on the first start]
    #[arg(long, env = "CRM_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The token a metrics scraper sends (`Authorization: Bearer ...`) to read `/metrics`
    /// [default: none, and no metrics are served]
    #[arg(long, env = "CRM_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// A folder for the nightly backup (02:30 China time, by one node) [default: none]
    #[arg(long, env = "CRM_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How many nightly backups the folder keeps [default: 7]
    #[arg(long, env = "CRM_BACKUP_KEEP")]
    pub backup_keep: Option<usize>,
    /// Configuration file [default: ./crm.toml when it exists]
    #[arg(long, env = "CRM_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Customers to seed.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds per measured operation.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure only these operations (comma-separated), e.g. `get,list_filtered`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Instead of measuring each operation, run a mixed load for this many minutes at half
    /// the capacity measured first, and report latency, errors and memory as it goes.
    #[arg(long, value_name = "MINUTES")]
    pub soak: Option<f64>,
    /// Benchmark on PostgreSQL: a fresh database is created on this server and dropped after.
    #[arg(long, env = "CRM_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

const DEFAULT_RULE_BUDGET: Duration = Duration::from_millis(50);
const DEFAULT_BACKUP_KEEP: usize = 7;

/// The keys of `crm.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    secure_cookies: Option<bool>,
    rule_budget_ms: Option<u64>,
    company_name: Option<String>,
    company_logo: Option<String>,
    public_url: Option<String>,
    secret_key: Option<String>,
    metrics_token: Option<String>,
    backup_dir: Option<PathBuf>,
    backup_keep: Option<usize>,
}

/// The settings the app runs with.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    /// The first administrator's password; generated and printed when absent.
    pub admin_password: Option<String>,
    /// Whether the session cookie is marked Secure (HTTPS only).
    pub secure_cookies: bool,
    /// The wall-clock budget of one run of a rule.
    pub rule_budget: std::time::Duration,
    /// The company's name and logo URL until an administrator sets them (公司信息).
    pub company_name: Option<String>,
    pub company_logo: Option<String>,
    /// Where people reach the server, without a trailing slash.
    pub public_url: String,
    pub secret_key: Option<String>,
    /// The token that reads `/metrics`; none serves no metrics.
    pub metrics_token: Option<String>,
    /// Where nightly backups go, and how many are kept; none are taken without a folder.
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("admin_password", &self.admin_password.as_ref().map(|_| "***"))
            .field("secure_cookies", &self.secure_cookies)
            .field("rule_budget", &self.rule_budget)
            .field("company_name", &self.company_name)
            .field("company_logo", &self.company_logo)
            .field("public_url", &self.public_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("backup_dir", &self.backup_dir)
            .field("backup_keep", &self.backup_keep)
            .finish()
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Resolves the layers for a command's server arguments.
    pub fn resolve(args: &ServerArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None if Path::new("crm.toml").exists() => read_file(Path::new("crm.toml"))?,
            None => FileConfig::default(),
        };
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("data"));
        let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| crm_store::Db::sqlite_url(&data_dir.join("crm.db")));
        let admin_password = std::env::var("CRM_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
        let secure_cookies = args.secure_cookies.or(file.secure_cookies).unwrap_or(false);
        let rule_budget =
            args.rule_budget_ms.or(file.rule_budget_ms).map_or(DEFAULT_RULE_BUDGET, Duration::from_millis);
        let company_name = args.company_name.clone().or(file.company_name).filter(|n| !n.trim().is_empty());
        let company_logo = args.company_logo.clone().or(file.company_logo).filter(|l| !l.trim().is_empty());
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map_or_else(|| format!("http://{listen}"), |url| url.trim_end_matches('/').to_owned());
        let secret_key = args.secret_key.clone().or(file.secret_key).filter(|k| !k.trim().is_empty());
        let metrics_token = args.metrics_token.clone().or(file.metrics_token).filter(|t| !t.trim().is_empty());
        let backup_dir = args.backup_dir.clone().or(file.backup_dir);
        let backup_keep = args.backup_keep.or(file.backup_keep).unwrap_or(DEFAULT_BACKUP_KEEP).max(1);
        Ok(Self {
            data_dir,
            listen,
            database_url,
            admin_password,
            secure_cookies,
            rule_budget,
            company_name,
            company_logo,
            public_url,
            secret_key,
            metrics_token,
            backup_dir,
            backup_keep,
        })
    }

    /// Settings for a data folder with an embedded database (tests, benchmarks).
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: crm_store::Db::sqlite_url(&data_dir.join("crm.db")),
            admin_password: None,
            secure_cookies: false,
            rule_budget: DEFAULT_RULE_BUDGET,
            company_name: None,
            company_logo: None,
            public_url: "http://127.0.0.1".to_owned(),
            secret_key: None,
            metrics_token: None,
            backup_dir: None,
            backup_keep: DEFAULT_BACKUP_KEEP,
        }
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_in_logs() {
        assert_eq!(redact_url("postgres://crm:s3cret@db:5432/crm"), "postgres://crm:***@db:5432/crm");
        assert_eq!(redact_url("postgres://crm@db/crm"), "postgres://crm@db/crm");
        assert_eq!(redact_url("sqlite://data/crm.db"), "sqlite://data/crm.db");
    }
}
