//! `crm bench`: seeds deterministic customers into a fresh database, then measures each
//! operation through the HTTP API at N concurrent clients and the same SQL run directly
//! through the same pool at the same concurrency (the floor), plus bulk import and adding a
//! field to the seeded table; and, when named in `--only`, importing an XLSX file of as many
//! customers through the import service the API uses.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::Serialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::config::{BenchArgs, Config};
use crate::records::{self, ListParams};

mod memory;
mod soak;

const INDUSTRIES: [&str; 8] =
    ["manufacturing", "trade", "industry_trade", "services", "software", "construction", "finance", "retail"];
const STATUSES: [(&str, u32); 4] = [("prospect", 40), ("active", 35), ("dormant", 15), ("lost", 10)];
const CITIES: [&str; 16] = [
    "北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "苏州", "天津", "重庆", "青岛", "厦门",
    "长沙", "郑州",
];
const BRAND_CHARS: [&str; 30] = [
    "华", "立", "友", "信", "恒", "达", "鑫", "隆", "瑞", "丰", "宏", "盛", "泰", "安", "创", "新", "联", "通", "科",
    "源", "嘉", "捷", "博", "卓", "众", "汇", "诚", "德", "美", "金",
];
const TRADES: [&str; 8] = ["机械制造", "商贸", "工贸", "咨询服务", "软件科技", "建筑工程", "投资", "连锁零售"];
const SUFFIXES: [&str; 3] = ["有限公司", "股份有限公司", "集团有限公司"];
const OWNERS: usize = 50;
const DEPARTMENTS: usize = 10;
const SHARES: usize = 1_000;
/// The password of the sales rep the scoped list is measured as.
const REP_PASSWORD: &str = "Bench-rep-2026";
const IMPORT_BATCH: usize = 10_000;
/// Batches an import sends before waiting for the first answer: the server reads and checks
/// one while it writes the other, as an importer that uploads ahead would have it.
const IMPORT_IN_FLIGHT: usize = 2;

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn weighted(rng: &mut StdRng) -> &'static str {
    let mut roll = rng.random_range(0..100);
    for (status, weight) in STATUSES {
        if roll < weight {
            return status;
        }
        roll -= weight;
    }
    STATUSES[0].0
}

fn brand(rng: &mut StdRng) -> String {
    format!("{}{}", pick(rng, &BRAND_CHARS), pick(rng, &BRAND_CHARS))
}

/// A customer as a client would send it; the same seed gives the same customers.
fn customer(rng: &mut StdRng, owners: &[Uuid]) -> Json {
    let industry = rng.random_range(0..INDUSTRIES.len());
    let province = crm_model::region::PROVINCES[rng.random_range(0..31)];
    let revenue = rng.random_range(1_000_000_i64..50_000_000_000);
    json!({
        "name": format!("{}{}{}{}", pick(rng, &CITIES), brand(rng), TRADES[industry], pick(rng, &SUFFIXES)),
        "industry": INDUSTRIES[industry],
        "region": province,
        "annual_revenue": crm_model::value::format_fixed(revenue, 2),
        "status": weighted(rng),
        "class": pick(rng, &["key", "normal", "small"]),
        "owner": owners[rng.random_range(0..owners.len())],
        "phone": format!("0{}-{}", rng.random_range(10..999), rng.random_range(2_000_000..89_999_999)),
    })
}

/// The stages of the core package's sales stage set.
const STAGES: [&str; 6] = ["initial_contact", "needs_analysis", "proposal", "negotiation", "won", "lost"];

/// A deal of a customer, closing some day of 2026, as a client would send it.
fn opportunity(rng: &mut StdRng, customers: &[Uuid], owners: &[Uuid]) -> Json {
    let stage = pick(rng, &STAGES);
    json!({
        "name": format!("{}项目", brand(rng)),
        "customer": customers[rng.random_range(0..customers.len())],
        "owner": owners[rng.random_range(0..owners.len())],
        "stage": stage,
        // A lost deal says why.
        "lost_reason": (stage == "lost").then_some("price"),
        "amount": crm_model::value::format_fixed(rng.random_range(100_000_i64..500_000_000), 2),
        "expected_close": format!("2026-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28)),
    })
}

/// The pipeline a manager asks for: the deals by month of expected close and by stage, their
/// number, amount and amount weighted by the stage's probability.
fn pipeline_report() -> Json {
    json!({
        "entity": "opportunity",
        "group_by": [{"field": "expected_close", "bucket": "month"}, {"field": "stage"}],
        "measures": [{"agg": "count"}, {"agg": "sum", "field": "amount"}, {"agg": "weighted", "field": "amount"}],
    })
}

/// A duplicate check of the values of a customer being entered, as the form sends them.
fn duplicate_check(rng: &mut StdRng, owners: &[Uuid]) -> Json {
    let candidate = customer(rng, owners);
    json!({"values": {"name": candidate["name"], "phone": candidate["phone"]}})
}

/// Latencies of one measured run.
struct Run {
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Run {
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `op` from `clients` tasks for `duration`; every call must succeed.
async fn drive<F, Fut>(clients: usize, duration: Duration, op: F) -> anyhow::Result<Run>
where
    F: Fn(StdRng) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<StdRng>> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(1000 + client as u64);
            let mut latencies = Vec::with_capacity(4096);
            while Instant::now() < deadline {
                let began = Instant::now();
                rng = op(rng).await?;
                latencies.push(began.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Ok(Run { latencies_us, elapsed })
}

/// An HTTP client of the running server.
#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
    /// A browser session's cookie, for the screens.
    cookie: String,
}

impl Http {
    /// Sends a request and returns the body unparsed: a client elsewhere would parse it on
    /// its own machine, so parsing is not the server's time.
    async fn send(&self, method: Method, path: &str, body: Option<&Json>) -> anyhow::Result<Bytes> {
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        self.send_bytes(method, path, Bytes::from(bytes)).await
    }

    async fn send_bytes(&self, method: Method, path: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let (status, body) = self.exchange(method, path, body).await?;
        anyhow::ensure!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Ok(body)
    }

    /// Sends a request and returns whatever the server answered.
    async fn exchange(&self, method: Method, path: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("cookie", format!("{}={}", crate::auth::SESSION_COOKIE, self.cookie))
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    async fn send_json(&self, method: Method, path: &str, body: Option<&Json>) -> anyhow::Result<Json> {
        Ok(serde_json::from_slice(&self.send(method, path, body).await?)?)
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn filtered_params(rng: &mut StdRng) -> ListParams {
    let filter = json!({"and": [
        {"field": "industry", "op": "eq", "value": pick(rng, &INDUSTRIES)},
        {"field": "region", "op": "eq", "value": crm_model::region::PROVINCES[rng.random_range(0..31)]},
    ]});
    ListParams {
        filter: Some(filter.to_string()),
        sort: Some("-annual_revenue".into()),
        limit: Some(50),
        ..ListParams::default()
    }
}

fn contains_params(rng: &mut StdRng) -> ListParams {
    let filter = json!({"field": "name", "op": "contains", "value": brand(rng)});
    ListParams { filter: Some(filter.to_string()), limit: Some(50), ..ListParams::default() }
}

fn query_string(params: &ListParams) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &params.filter {
        parts.push(format!("filter={}", encode(f)));
    }
    if let Some(s) = &params.sort {
        parts.push(format!("sort={}", encode(s)));
    }
    if let Some(l) = params.limit {
        parts.push(format!("limit={l}"));
    }
    if let Some(c) = &params.cursor {
        parts.push(format!("cursor={c}"));
    }
    parts.join("&")
}

#[derive(Serialize)]
struct OpReport {
    op: &'static str,
    api_p50_ms: f64,
    api_p99_ms: f64,
    api_rps: f64,
    floor_p50_ms: f64,
    floor_p99_ms: f64,
    floor_rps: f64,
    ratio_p50: f64,
}

#[derive(Serialize)]
struct Report {
    records: usize,
    database: &'static str,
    clients: usize,
    ops: Vec<OpReport>,
    import_rows_per_s: f64,
    /// The same import with the three rules of [`BENCH_RULES`] attached.
    import_rules_rows_per_s: f64,
    /// An XLSX file of `records` customers read, mapped and imported through the import
    /// service (only when `--only` names `xlsx_import`: it doubles the rows).
    xlsx_import_rows_per_s: Option<f64>,
    /// Building the search index from the seeded database.
    reindex_s: f64,
    /// The duplicate scan over every customer, and the clusters it found.
    duplicate_scan_s: f64,
    duplicate_clusters: u64,
    index_documents: u64,
    index_mb: f64,
    /// The process's memory at the end; the highest seen while the operations ran (the
    /// server under request load, the load generator included); and the highest seen after
    /// seeding (the index rebuild, the duplicate scan and the imports included).
    memory: memory::Memory,
    memory_load_peak: memory::Memory,
    memory_peak: memory::Memory,
    add_field_ms: f64,
    /// The filtered list as a rep with a department scope, over the same list as the
    /// administrator (p50).
    scope_ratio_p50: f64,
    /// A create with three rules attached over one with none (p50).
    rules_ratio_p50: f64,
    /// One run of a compiled rule, in microseconds.
    rule_run_us: f64,
}

/// The three rules a create runs in the `create_rules` operation: a validation, a derived
/// field and a formula.
const BENCH_RULES: [(&str, &str, Option<&str>, &str); 3] = [
    ("bench_validate", "validate", None, r#"if record.name == "" { error("name", "a name is needed"); }"#),
    ("bench_tidy", "before_save", None, "record.name.trim();"),
    (
        "bench_class",
        "formula",
        Some("class"),
        r#"let revenue = record.annual_revenue ?? 0; if revenue >= 50000000 { "key" } else if revenue >= 5000000 { "normal" } else { "small" }"#,
    ),
];

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(dir.path());
    let postgres = match &args.database_url {
        Some(server) => {
            let name = format!("crm_bench_{}", Uuid::now_v7().simple());
            crm_store::server::create_database(server, &name, None).await?;
            config.database_url = crm_store::server::database_url(server, &name);
            Some((server.clone(), name))
        }
        None => None,
    };
    let mut secret = [0u8; 16];
    rand::fill(&mut secret);
    let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    config.admin_password = Some(password.clone());
    let result = match args.soak {
        Some(minutes) => soak::soak(&args, minutes, config, &password).await.map(Finished::Soaked),
        None => measure(&args, config, &password).await.map(Finished::Measured),
    };
    if let Some((server, name)) = postgres {
        crm_store::server::drop_database(&server, &name).await?;
    }
    match result? {
        Finished::Measured(report) if args.json => println!("{}", serde_json::to_string(&report)?),
        Finished::Measured(report) => print_table(&report),
        Finished::Soaked(report) => {
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                soak::print(&report);
            }
            anyhow::ensure!(report.errors == 0, "{} requests failed during the soak", report.errors);
        }
    }
    Ok(())
}

enum Finished {
    Measured(Report),
    Soaked(soak::Report),
}

fn progress(args: &BenchArgs, message: &str) {
    if !args.json {
        eprintln!("{message}");
    }
}

/// A server running on a fresh database, seeded with departments, sales reps and customers
/// through its API.
struct Seeded {
    app: AppState,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    http: Http,
    principal: Principal,
    departments: Vec<Uuid>,
    owners: Vec<Uuid>,
    /// The customers, oldest first.
    ids: Vec<Uuid>,
    import_time: Duration,
    /// The seeding's random stream, to go on with.
    rng: StdRng,
}

async fn seed(args: &BenchArgs, config: Config, password: &str) -> anyhow::Result<Seeded> {
    let app = crate::setup::open(config).await?.app;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(axum::serve(listener, crate::build_app(app.clone())).into_future());
    let admin = crate::auth::check_password(&app, "admin", password, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("bench login failed: {e}"))?;
    let token = crate::auth::issue_token(&app, admin, "bench").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let principal = app.principal(admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(args.clients * 2).build(connector);
    let (cookie, _) = crate::auth::open_session(&app, admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let http = Http { client, base, token, cookie };

    progress(args, &format!("seeding {DEPARTMENTS} departments, {OWNERS} users and {} customers…", args.records));
    let departments: Vec<Json> = (0..DEPARTMENTS).map(|i| json!({"name": format!("销售{i}部")})).collect();
    let created = http
        .send_json(Method::POST, "/api/v1/records/department/bulk/create", Some(&json!({"records": departments})))
        .await?;
    let departments: Vec<Uuid> = serde_json::from_value(created["ids"].clone())?;
    let users: Vec<Json> = (0..OWNERS)
        .map(|i| json!({"name": format!("销售{i:02}"), "login": format!("rep{i:02}"), "department": departments[i % DEPARTMENTS]}))
        .collect();
    let created =
        http.send_json(Method::POST, "/api/v1/records/user/bulk/create", Some(&json!({"records": users}))).await?;
    let owners: Vec<Uuid> = serde_json::from_value(created["ids"].clone())?;
    let mut rng = StdRng::seed_from_u64(42);
    let (ids, import_time) = import(&http, args.records, &owners, &mut rng).await?;
    Ok(Seeded { app, server, http, principal, departments, owners, ids, import_time, rng })
}

/// Settles what was seeded, as an import leaves it: not while SQLite still copies the log
/// into the file, nor on PostgreSQL's statistics of an empty table.
async fn settle(app: &App) -> anyhow::Result<()> {
    let catalog = app.catalog();
    let seeded: Vec<&crm_model::Entity> =
        ["customer", "opportunity", "user"].iter().filter_map(|name| catalog.entity(name).map(|e| &**e)).collect();
    app.db.settle(&seeded).await?;
    Ok(())
}

async fn measure(args: &BenchArgs, config: Config, password: &str) -> anyhow::Result<Report> {
    let Seeded { app, server, http, principal, departments, owners, ids, import_time, mut rng } =
        seed(args, config, password).await?;
    let peak = memory::Peak::watch();
    let import_rows_per_s = ids.len() as f64 / import_time.as_secs_f64();
    progress(args, &format!("imported at {import_rows_per_s:.0} rows/s"));
    let xlsx_import_rows_per_s = if args.only.iter().any(|o| o == "xlsx_import") {
        progress(args, &format!("building an XLSX file of {} customers…", args.records));
        let file = customers_workbook(&app, args.records, &mut rng)?;
        let rate = xlsx_import(&app, &principal, &file, args.records).await?;
        progress(args, &format!("imported the XLSX file at {rate:.0} rows/s"));
        Some(rate)
    } else {
        None
    };
    if args.only.is_empty() || args.only.iter().any(|o| o == "report" || o == "dashboard") {
        progress(args, &format!("seeding {} opportunities of those customers…", args.records));
        // A random stream of their own: the other operations see the same data either way.
        let mut deals = StdRng::seed_from_u64(7);
        for start in (0..args.records).step_by(IMPORT_BATCH) {
            let batch: Vec<Json> = (start..(start + IMPORT_BATCH).min(args.records))
                .map(|_| opportunity(&mut deals, &ids, &owners))
                .collect();
            http.send(Method::POST, "/api/v1/records/opportunity/bulk/create", Some(&json!({ "records": batch })))
                .await?;
        }
    }
    let rep = scoped_rep(&http, &departments, &owners, &ids, &mut rng).await?;
    let rep_principal = app.principal(rep.0).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let rep_http = Http { token: rep.1, ..http.clone() };
    progress(args, "building the search index…");
    let began = Instant::now();
    crate::search::rebuild(&app, |_, _| {}).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let reindex_s = began.elapsed().as_secs_f64();
    let index = app.search.stats()?;
    settle(&app).await?;
    let catalog = app.catalog();

    let duration = Duration::from_secs_f64(args.seconds);
    let mut ops = Vec::new();
    let ids = std::sync::Arc::new(ids);
    let entity = catalog.entity("customer").ok_or_else(|| anyhow::anyhow!("no customer entity"))?.clone();

    // Cursors deep into the default newest-first list.
    let mut cursors = Vec::new();
    for fraction in [0.5, 0.6, 0.7, 0.8, 0.9] {
        let id = ids[ids.len() - 1 - (ids.len() as f64 * fraction) as usize];
        let record = crm_store::records::get(&app.db, &entity, id, None)
            .await?
            .ok_or_else(|| anyhow::anyhow!("seeded row missing"))?;
        cursors.push(records::cursor_of(&entity, &entity.list.sort, &record));
    }
    let cursors = std::sync::Arc::new(cursors);

    // `create_rules` comes last: the rules it installs stay on the customers.
    let all = [
        "get",
        "list_filtered",
        "list_scoped",
        "list_deep",
        "contains",
        "search",
        "duplicates",
        "report",
        "dashboard",
        "create",
        "count_by_status",
        "list_page",
        "create_rules",
    ];
    let load_peak = memory::Peak::watch();
    for op in all {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == op) {
            continue;
        }
        if op == "create_rules" {
            install_rules(&http).await?;
        }
        progress(args, &format!("measuring {op}…"));
        let api = {
            let http = if op == "list_scoped" { rep_http.clone() } else { http.clone() };
            let ids = ids.clone();
            let cursors = cursors.clone();
            let owners = owners.clone();
            drive(args.clients, duration, move |mut rng| {
                let http = http.clone();
                let ids = ids.clone();
                let cursors = cursors.clone();
                let owners = owners.clone();
                async move {
                    match op {
                        "get" => {
                            let id = ids[rng.random_range(0..ids.len())];
                            http.send(Method::GET, &format!("/api/v1/records/customer/{id}"), None).await?;
                        }
                        "list_filtered" | "list_scoped" => {
                            let q = query_string(&filtered_params(&mut rng));
                            http.send(Method::GET, &format!("/api/v1/records/customer?{q}"), None).await?;
                        }
                        "list_deep" => {
                            let cursor = &cursors[rng.random_range(0..cursors.len())];
                            http.send(Method::GET, &format!("/api/v1/records/customer?limit=50&cursor={cursor}"), None)
                                .await?;
                        }
                        "contains" => {
                            let q = query_string(&contains_params(&mut rng));
                            http.send(Method::GET, &format!("/api/v1/records/customer?{q}"), None).await?;
                        }
                        "search" => {
                            let q = encode(&brand(&mut rng));
                            http.send(Method::GET, &format!("/api/v1/search?q={q}&limit=20"), None).await?;
                        }
                        "duplicates" => {
                            let body = duplicate_check(&mut rng, &owners);
                            http.send(Method::POST, "/api/v1/records/customer/duplicates", Some(&body)).await?;
                        }
                        "report" => {
                            http.send(Method::POST, "/api/v1/reports/run", Some(&pipeline_report())).await?;
                        }
                        "create" | "create_rules" => {
                            let body = customer(&mut rng, &owners);
                            http.send(Method::POST, "/api/v1/records/customer", Some(&body)).await?;
                        }
                        "list_page" => {
                            http.send(Method::GET, "/e/customer", None).await?;
                        }
                        "dashboard" => {
                            http.send(Method::GET, "/?board=sales_manager", None).await?;
                        }
                        _ => {
                            http.send(Method::GET, "/api/v1/records/customer/groups?by=status", None).await?;
                        }
                    }
                    Ok(rng)
                }
            })
            .await?
        };
        let who = if op == "list_scoped" { rep_principal.clone() } else { principal.clone() };
        let floor = floor(&app, who, op, args.clients, duration, ids.clone(), cursors.clone(), owners.clone()).await?;
        ops.push(OpReport {
            op,
            api_p50_ms: api.percentile_ms(0.5),
            api_p99_ms: api.percentile_ms(0.99),
            api_rps: api.rps(),
            floor_p50_ms: floor.percentile_ms(0.5),
            floor_p99_ms: floor.percentile_ms(0.99),
            floor_rps: floor.rps(),
            ratio_p50: if floor.percentile_ms(0.5) > 0.0 {
                api.percentile_ms(0.5) / floor.percentile_ms(0.5)
            } else {
                0.0
            },
        });
    }

    let memory_load_peak = load_peak.get();
    drop(load_peak);

    progress(args, "scanning the customers for duplicates…");
    let began = Instant::now();
    let scan = crate::duplicates::scan::run(&app, &entity, &crate::tasks::Progress::of(&app, Uuid::nil()))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let duplicate_scan_s = began.elapsed().as_secs_f64();
    let duplicate_clusters = scan["found"].as_u64().unwrap_or(0);

    // An import runs the same pipeline as every write: its rules too.
    install_rules(&http).await?;
    let (with_rules, import_time) = import(&http, RULES_IMPORT, &owners, &mut rng).await?;
    let import_rules_rows_per_s = with_rules.len() as f64 / import_time.as_secs_f64();
    progress(args, &format!("imported with three rules at {import_rules_rows_per_s:.0} rows/s"));

    progress(args, "adding a field to the seeded table…");
    let field = json!({"name": "bench_note", "type": "text", "label": {"zh-CN": "备注二", "en": "Bench note"}});
    let began = Instant::now();
    http.send(Method::POST, "/api/v1/meta/entities/customer/fields", Some(&field)).await?;
    let add_field_ms = began.elapsed().as_secs_f64() * 1000.0;

    let rule_run_us = rule_run_us(&app)?;
    server.abort();
    let database = if app.db.dialect() == crm_store::Dialect::Postgres { "postgres" } else { "sqlite" };
    app.db.close().await;
    let p50 = |name: &str| ops.iter().find(|o| o.op == name).map(|o| o.api_p50_ms);
    let scope_ratio_p50 = match (p50("list_scoped"), p50("list_filtered")) {
        (Some(scoped), Some(admin)) if admin > 0.0 => scoped / admin,
        _ => 0.0,
    };
    let rules_ratio_p50 = match (p50("create_rules"), p50("create")) {
        (Some(with), Some(without)) if without > 0.0 => with / without,
        _ => 0.0,
    };
    Ok(Report {
        records: args.records,
        database,
        clients: args.clients,
        ops,
        import_rows_per_s,
        import_rules_rows_per_s,
        xlsx_import_rows_per_s,
        reindex_s,
        duplicate_scan_s,
        duplicate_clusters,
        index_documents: index.documents,
        index_mb: index.bytes as f64 / 1e6,
        memory: memory::Memory::now(),
        memory_load_peak,
        memory_peak: peak.get(),
        add_field_ms,
        scope_ratio_p50,
        rules_ratio_p50,
        rule_run_us,
    })
}

/// Rows imported with the bench's rules attached.
const RULES_IMPORT: usize = 20_000;

/// Installs the rules of [`BENCH_RULES`] on customers (again, when they are there).
async fn install_rules(http: &Http) -> anyhow::Result<()> {
    for (name, event, field, source) in BENCH_RULES {
        let mut doc = json!({"name": name, "label": {"zh-CN": name, "en": name}, "entity": "customer", "event": event, "source": source});
        if let Some(field) = field {
            doc["field"] = json!(field);
        }
        http.send(Method::PUT, &format!("/api/v1/meta/scripts/{name}"), Some(&doc)).await?;
    }
    Ok(())
}

/// Imports `records` customers in batches through the API; their ids and the time it took.
async fn import(
    http: &Http,
    records: usize,
    owners: &[Uuid],
    rng: &mut StdRng,
) -> anyhow::Result<(Vec<Uuid>, Duration)> {
    // The batches are ready before the clock starts, as an importer reading a file has them.
    let mut batches = Vec::new();
    for start in (0..records).step_by(IMPORT_BATCH) {
        let batch: Vec<Json> = (start..(start + IMPORT_BATCH).min(records)).map(|_| customer(rng, owners)).collect();
        batches.push(Bytes::from(serde_json::to_vec(&json!({ "records": batch }))?));
    }
    let began = Instant::now();
    let replies: Vec<Bytes> = futures_util::stream::iter(batches)
        .map(|body| http.send_bytes(Method::POST, "/api/v1/records/customer/bulk/create", body))
        .buffered(IMPORT_IN_FLIGHT)
        .try_collect()
        .await?;
    let took = began.elapsed();
    let mut ids: Vec<Uuid> = Vec::with_capacity(records);
    for reply in replies {
        let reply: Json = serde_json::from_slice(&reply)?;
        ids.extend(serde_json::from_value::<Vec<Uuid>>(reply["ids"].clone())?);
    }
    Ok((ids, took))
}

/// An XLSX workbook of `records` customers with Chinese headers and the labels of choices, as
/// a person would export one from another system.
fn customers_workbook(app: &App, records: usize, rng: &mut StdRng) -> anyhow::Result<Vec<u8>> {
    let catalog = app.catalog();
    let entity = catalog.entity("customer").ok_or_else(|| anyhow::anyhow!("no customer entity"))?;
    let label = |field: &str, value: &str| -> String {
        let option = entity.field(field).and_then(|f| f.options.iter().find(|o| o.value == value));
        option.map_or_else(|| value.to_owned(), |o| o.label.zh_cn.clone())
    };
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let headers = ["客户名称", "所属行业", "所在地区", "年收入", "客户状态", "电话"];
    for (i, header) in headers.iter().enumerate() {
        sheet.write_string(0, i as u16, *header)?;
    }
    for row in 1..=records {
        let customer = customer(rng, &[Uuid::nil()]);
        let text = |key: &str| customer[key].as_str().unwrap_or_default().to_owned();
        let at = row as u32;
        sheet.write_string(at, 0, text("name"))?;
        sheet.write_string(at, 1, label("industry", &text("industry")))?;
        sheet.write_string(at, 2, text("region"))?;
        sheet.write_number(at, 3, text("annual_revenue").parse::<f64>()?)?;
        sheet.write_string(at, 4, label("status", &text("status")))?;
        sheet.write_string(at, 5, text("phone"))?;
    }
    Ok(book.save_to_buffer()?)
}

/// Reads, maps and imports a workbook as the import API does (good rows written, units of
/// `MAX_IMPORT` rows); rows per second from the bytes to the last commit.
async fn xlsx_import(app: &App, principal: &Principal, file: &[u8], records: usize) -> anyhow::Result<f64> {
    let began = Instant::now();
    let bytes = file.to_vec();
    let sheet = tokio::task::spawn_blocking(move || crate::import::read::read("customers.xlsx", &bytes))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = crate::import::Options { mode: crate::import::Mode::Create, key: None, all_or_nothing: false };
    let request = crate::import::Request { mapping: None, options };
    let plan =
        crate::import::plan(app, principal, "customer", sheet, request).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = crate::import::run::run(app, principal, &plan, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let took = began.elapsed();
    if summary.created != records {
        anyhow::bail!("the XLSX import created {} of {records} rows: {:?}", summary.created, summary.failures.first());
    }
    Ok(records as f64 / took.as_secs_f64())
}

/// The time of one run of a compiled rule (the formula of [`BENCH_RULES`]) on one thread.
fn rule_run_us(app: &App) -> anyhow::Result<f64> {
    let (name, _, _, source) = BENCH_RULES[2];
    let runs = 20_000;
    let input = || crm_rules::Input {
        record: serde_json::Map::from_iter([("annual_revenue".to_owned(), json!("12000000.00"))]),
        old: None,
        user: json!({"id": Uuid::nil()}),
        now: "2026-11-26T08:00:00+08:00".into(),
        decimals: std::collections::HashMap::from([("annual_revenue".to_owned(), 2)]),
        result_scale: None,
        reader: std::sync::Arc::new(|_, _| Ok(Vec::new())),
    };
    app.rules.run(name, source, input())?;
    let began = Instant::now();
    for _ in 0..runs {
        app.rules.run(name, source, input())?;
    }
    Ok(began.elapsed().as_secs_f64() * 1e6 / f64::from(runs))
}

/// The same SQL as the API's, run directly through the same pool at the same concurrency.
#[expect(clippy::too_many_arguments, reason = "the shared inputs of the measured operations")]
async fn floor(
    app: &AppState,
    principal: Principal,
    op: &'static str,
    clients: usize,
    duration: Duration,
    ids: std::sync::Arc<Vec<Uuid>>,
    cursors: std::sync::Arc<Vec<String>>,
    owners: Vec<Uuid>,
) -> anyhow::Result<Run> {
    let app = app.clone();
    drive(clients, duration, move |mut rng| {
        let app = app.clone();
        let ids = ids.clone();
        let cursors = cursors.clone();
        let owners = owners.clone();
        let principal = principal.clone();
        async move {
            let catalog = app.catalog();
            let entity = catalog.entity("customer").ok_or_else(|| anyhow::anyhow!("no customer entity"))?;
            let dialect = app.db.dialect();
            let scope = principal.read_scope(&*app.departments().await.map_err(|e| anyhow::anyhow!("{e}"))?, entity);
            let list = |params: &ListParams| {
                let hidden = principal.hidden("customer");
                records::list_query(&catalog, entity, params, scope.clone(), &entity.list.sort, hidden)
                    .map(|q| crm_store::records::list_statement(dialect, entity, &q))
                    .map_err(|e| anyhow::anyhow!("{e}"))
            };
            if op == "report" {
                // The report's one statement, compiled for the caller and run on the pool.
                let doc = crate::reports::ad_hoc(&pipeline_report()).map_err(|e| anyhow::anyhow!("{e}"))?;
                let opportunities =
                    catalog.entity("opportunity").ok_or_else(|| anyhow::anyhow!("no opportunity entity"))?;
                let scope =
                    principal.read_scope(&*app.departments().await.map_err(|e| anyhow::anyhow!("{e}"))?, opportunities);
                let hidden = |name: &str| principal.hidden(name).clone();
                let compiled = crm_model::report::compile(
                    &catalog,
                    &doc,
                    &hidden,
                    scope,
                    chrono::Utc::now().with_timezone(&crate::schedule::business_offset()),
                )?;
                crm_store::aggregate::run(&app.db, opportunities, &compiled).await?;
                return Ok(rng);
            }
            if op == "dashboard" {
                // Every report of the manager's dashboard, uncached, at once.
                let catalog = app.catalog();
                let board =
                    catalog.docs().dashboards.get("sales_manager").ok_or_else(|| anyhow::anyhow!("no dashboard"))?;
                let now = chrono::Utc::now().with_timezone(&crate::schedule::business_offset());
                let tree = app.departments().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let runs = board.widgets.iter().filter_map(|widget| match widget {
                    crm_model::dashboard::Widget::Report { report, .. } => catalog.docs().reports.get(report),
                    _ => None,
                });
                let runs = runs.map(|doc| {
                    let (catalog, app, principal, tree) = (&catalog, &app, &principal, &tree);
                    async move {
                        let entity = catalog.entity(doc.entity.as_str()).ok_or_else(|| anyhow::anyhow!("no entity"))?;
                        let hidden = |name: &str| principal.hidden(name).clone();
                        let scope = principal.read_scope(tree, entity);
                        let compiled = crm_model::report::compile(catalog, doc, &hidden, scope, now)?;
                        crm_store::aggregate::run(&app.db, entity, &compiled).await?;
                        anyhow::Ok(())
                    }
                });
                futures_util::future::try_join_all(runs).await?;
                return Ok(rng);
            }
            if op == "duplicates" {
                // The check itself, without HTTP.
                let body = duplicate_check(&mut rng, &owners);
                crate::duplicates::check(&app, &principal, "customer", &body)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                return Ok(rng);
            }
            if op == "search" {
                // The index alone, over every customer: what the API adds is the scope and
                // the database's check of what the index found.
                let targets = vec![crm_search::Target {
                    entity: "customer".into(),
                    fields: vec!["name".into(), "code".into()],
                    scope: crm_search::Scope::All,
                }];
                app.search.search(&crm_search::Query { text: &brand(&mut rng), targets, limit: 20 })?;
                return Ok(rng);
            }
            let statement = match op {
                "get" => crm_store::records::get_statement(dialect, entity, ids[rng.random_range(0..ids.len())], None),
                "list_filtered" | "list_scoped" => list(&filtered_params(&mut rng))?,
                "list_deep" => {
                    let cursor = cursors[rng.random_range(0..cursors.len())].clone();
                    list(&ListParams { cursor: Some(cursor), limit: Some(50), ..ListParams::default() })?
                }
                // The same narrowing by the search index as the API's.
                "contains" => {
                    let hidden = principal.hidden("customer");
                    let params = contains_params(&mut rng);
                    let mut query =
                        records::list_query(&catalog, entity, &params, scope.clone(), &entity.list.sort, hidden)
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                    crate::search::narrow(&app, entity, &mut query).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    crm_store::records::list_statement(dialect, entity, &query)
                }
                // The list screen's SQL: its first page and its total.
                "list_page" => {
                    crm_store::records::count_statement(dialect, entity, scope.as_ref(), false)
                        .fetch_all(&app.db)
                        .await?;
                    list(&ListParams { limit: Some(50), ..ListParams::default() })?
                }
                "create" | "create_rules" => {
                    let body = customer(&mut rng, &owners);
                    records::create(&app, &principal, records::Source::Api, "customer", &body)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    return Ok(rng);
                }
                _ => {
                    let status = entity.column("status").ok_or_else(|| anyhow::anyhow!("no status field"))?;
                    crm_store::records::group_statement(dialect, entity, status, None, None)
                }
            };
            statement.fetch_all(&app.db).await?;
            Ok(rng)
        }
    })
    .await
}

/// A sales rep whose role sees the customers of their own department, and shares spread
/// over the users and departments: returns the rep's id and token.
async fn scoped_rep(
    http: &Http,
    departments: &[Uuid],
    users: &[Uuid],
    customers: &[Uuid],
    rng: &mut StdRng,
) -> anyhow::Result<(Uuid, String)> {
    let role = json!({"name": "bench_department", "label": {"zh-CN": "部门业务员", "en": "Department rep"},
        "entities": {"customer": {"actions": ["read", "create", "edit"], "scope": "department"}}});
    http.send(Method::PUT, "/api/v1/meta/roles/bench_department", Some(&role)).await?;
    let rep = json!({"user": {"name": "部门业务员", "login": "bench_rep", "department": departments[0]},
        "password": REP_PASSWORD, "roles": ["bench_department"]});
    let created = http.send_json(Method::POST, "/api/v1/admin/users", Some(&rep)).await?;
    let id: Uuid = serde_json::from_value(created["id"].clone())?;
    let login = json!({"login": "bench_rep", "password": REP_PASSWORD});
    let token = http.send_json(Method::POST, "/api/v1/auth/token", Some(&login)).await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rep_http = Http { token: token.clone(), ..http.clone() };
    let change = json!({"current_password": REP_PASSWORD, "password": format!("{REP_PASSWORD}!")});
    rep_http.send(Method::POST, "/api/v1/auth/password", Some(&change)).await.ok();
    for batch in 0..SHARES / 10 {
        let ids: Vec<Uuid> = (0..10).map(|_| customers[rng.random_range(0..customers.len())]).collect();
        let grantee = if batch % 2 == 0 {
            json!({"ids": ids, "user": users[rng.random_range(0..users.len())], "access": "read"})
        } else {
            json!({"ids": ids, "department": departments[rng.random_range(0..departments.len())], "access": "read"})
        };
        http.send(Method::POST, "/api/v1/records/customer/bulk/share", Some(&grantee)).await?;
    }
    Ok((id, token))
}

fn print_table(report: &Report) {
    println!("\n{} customers on {}, {} concurrent clients\n", report.records, report.database, report.clients);
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>11} {:>11} {:>10} {:>8}",
        "op", "api p50", "api p99", "api req/s", "floor p50", "floor p99", "floor r/s", "api/floor"
    );
    for op in &report.ops {
        println!(
            "{:<16} {:>8.2}ms {:>8.2}ms {:>10.0} {:>9.2}ms {:>9.2}ms {:>10.0} {:>8.2}",
            op.op,
            op.api_p50_ms,
            op.api_p99_ms,
            op.api_rps,
            op.floor_p50_ms,
            op.floor_p99_ms,
            op.floor_rps,
            op.ratio_p50
        );
    }
    println!(
        "\nbulk import ({IMPORT_BATCH}-record batches, {IMPORT_IN_FLIGHT} in flight): {:.0} rows/s",
        report.import_rows_per_s
    );
    println!("the same import with three rules attached: {:.0} rows/s", report.import_rules_rows_per_s);
    if let Some(rate) = report.xlsx_import_rows_per_s {
        println!("an XLSX file of {} customers read, mapped and imported: {rate:.0} rows/s", report.records);
    }
    println!(
        "search index rebuilt in {:.1} s: {} documents, {:.1} MB",
        report.reindex_s, report.index_documents, report.index_mb
    );
    for (when, memory) in [
        ("at the peak while the operations ran", report.memory_load_peak),
        ("at the peak of the whole run (index rebuild, duplicate scan and imports included)", report.memory_peak),
        ("at the end", report.memory),
    ] {
        println!("process memory {when}: {memory}");
    }
    println!(
        "duplicate scan over {} customers: {:.1} s, {} clusters",
        report.records, report.duplicate_scan_s, report.duplicate_clusters
    );
    println!("add a field to the {}-row table: {:.1} ms", report.records, report.add_field_ms);
    println!(
        "filtered list as a rep with department scope ({SHARES} shares) vs as administrator: {:.2}x (p50)",
        report.scope_ratio_p50
    );
    println!("create with three rules vs none: {:.2}x (p50)", report.rules_ratio_p50);
    println!("one run of a compiled rule: {:.1} µs", report.rule_run_us);
}
