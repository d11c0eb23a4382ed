//! The API answers as its OpenAPI document says. As the administrator and as a sales rep,
//! every operation of the caller's own document is called with requests generated from the
//! document itself — path, query and body values drawn from the operation's schemas, valid
//! ones and mutated ones (wrong types, missing or unknown properties, huge, unicode and
//! injection strings, malformed JSON, no credentials) — and every answer must be a status the
//! operation documents, with the documented content type and a body that validates against
//! the documented schema; no answer may be a 5xx (but 502, where an operation documents that
//! another server — a mail server the generated settings name — did not answer), and none to
//! the rep may name a field hidden
//! from them. The generator is seeded: a failure names its `CRM_CONTRACT_SEED` to replay it,
//! `CRM_CONTRACT_CASES` sets how many requests each operation gets, and `CRM_CONTRACT_VERBOSE`
//! also lists the seeding failures and the operations that never answered a success.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use axum::http::Method;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value, json};
use support::{ADMIN_PASSWORD, FIRST_PASSWORD, TestApp, USER_PASSWORD, encode};

backends!(every_answer_is_documented);

const REP_LOGIN: &str = "rep";

/// Texts a valid value may be made of.
const SAMPLES: [&str; 8] = ["北京立友信科技有限公司", "上海", "Acme Ltd", "张三", "follow-up", "报价单", "x", "Zoë"];

/// Strings that have broken servers before: injections, templates, unicode edge cases.
const HOSTILE: [&str; 16] = [
    "' OR '1'='1",
    "\"; DROP TABLE customer; --",
    "<script>alert(1)</script>",
    "{{7*7}}${7*7}",
    "../../etc/passwd",
    "\u{0}",
    "nul\u{0}inside",
    "🦀🚀👩‍👩‍👧",
    "\u{202e}gnp.exe",
    "ℌ𝔢𝔩𝔩𝔬 Ω≈ç√∫",
    "\u{feff}",
    " ",
    "",
    "%00%ff",
    "-1e309",
    "null",
];

/// Path segments that are not what the parameter names.
const BAD_SEGMENTS: [&str; 9] =
    ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1", "' OR 1=1 --", "🦀", "北京", "..", "\u{0}", "%FF%FE"];

/// The OpenAPI 3.1 schema, which every document must satisfy.
static OPENAPI: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
    let schema: Value = serde_json::from_str(include_str!("fixtures/openapi-3.1.schema.json")).expect("JSON");
    jsonschema::validator_for(&schema).expect("the OpenAPI schema compiles")
});

fn seed() -> u64 {
    std::env::var("CRM_CONTRACT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

fn cases() -> usize {
    std::env::var("CRM_CONTRACT_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(6)
}

/// A signed-in caller and the document they were given.
struct Caller {
    name: &'static str,
    login: &'static str,
    password: &'static str,
    token: String,
    doc: Value,
    /// Compiled response schemas, by their text; emptied when the document changes.
    validators: HashMap<String, jsonschema::Validator>,
}

impl Caller {
    async fn fetch_doc(&mut self, t: &TestApp) {
        self.doc = t.call(Method::GET, "/api/openapi.json", None, Some(&self.token)).await.expect(200);
        self.validators.clear();
    }

    /// The operation at a path template and method, in the current document.
    fn operation(&self, path: &str, method: &Method) -> Option<&Value> {
        self.doc["paths"].get(path)?.get(method.as_str().to_ascii_lowercase())
    }

    fn validate(&mut self, schema: &Value, body: &Value) -> Result<(), String> {
        let components = &self.doc["components"];
        let validator = self.validators.entry(schema.to_string()).or_insert_with(|| {
            let wrapper = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": components,
                "allOf": [schema],
            });
            jsonschema::options()
                .should_validate_formats(true)
                .build(&wrapper)
                .unwrap_or_else(|e| panic!("a documented schema does not compile: {e}: {schema}"))
        });
        let errors: Vec<String> =
            validator.iter_errors(body).take(3).map(|e| format!("{e} at `{}`", e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}

/// Follows `$ref`s within the document.
fn resolve<'d>(doc: &'d Value, mut schema: &'d Value) -> &'d Value {
    while let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        schema = target
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .unwrap_or_else(|| panic!("the document has no `{target}`"));
    }
    schema
}

/// When an operation runs: reads, then writes, deletes and restores (of what was deleted), and
/// last what may end the session used for testing (accounts, one's own password and tokens)
/// or throttle logins.
fn phase(method: &Method, path: &str) -> u8 {
    match path {
        "/api/v1/auth/token" | "/api/v1/auth/login" => 7,
        "/api/v1/auth/password" | "/api/v1/auth/logout" => 6,
        "/api/v1/auth/tokens/{id}" if method == Method::DELETE => 6,
        _ if path.starts_with("/api/v1/admin/users/{id}/") => 5,
        _ if path.ends_with("/restore") => 4,
        _ if method == Method::DELETE || path.ends_with("/bulk/delete") => 3,
        _ if method == Method::GET => 1,
        _ => 2,
    }
}

/// The last phase, and the phases whose operations may end the session used for testing.
const PHASES: u8 = 7;
const RISKY: std::ops::Range<u8> = 5..7;

fn operations(doc: &Value, phase_wanted: u8) -> Vec<(Method, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            if item.get(method.as_str().to_ascii_lowercase()).is_some() && phase(&method, path) == phase_wanted {
                found.push((method, path.clone()));
            }
        }
    }
    found
}

/// What values are drawn from besides the document: ids of records by entity, other ids
/// (tokens, reminders) and names (entities, fields).
#[derive(Default)]
struct Pools {
    ids: HashMap<String, Vec<String>>,
    others: Vec<String>,
    names: Vec<String>,
}

/// One request to send.
struct Call {
    method: Method,
    uri: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    authenticated: bool,
    /// Nothing was broken on purpose.
    valid: bool,
    /// How the request was made, for the failure report.
    note: String,
}

/// Values from schemas, with a seeded generator.
struct Generator<'a> {
    rng: &'a mut StdRng,
    doc: &'a Value,
    pools: &'a Pools,
}

impl Generator<'_> {
    fn pick<'v, T>(&mut self, items: &'v [T]) -> Option<&'v T> {
        items.choose(self.rng)
    }

    fn chance(&mut self, numerator: u32, denominator: u32) -> bool {
        self.rng.random_ratio(numerator, denominator)
    }

    /// A value the schema admits (as far as a generator can tell from the schema alone).
    fn valid(&mut self, schema: &Value, key: Option<&str>, depth: usize) -> Value {
        let doc = self.doc;
        let schema = resolve(doc, schema);
        if depth > 6 {
            return Value::Null;
        }
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return self.pick(values).cloned().unwrap_or(Value::Null);
        }
        if let Some(examples) = schema.get("examples").and_then(Value::as_array)
            && self.chance(3, 4)
            && let Some(example) = self.pick(examples)
        {
            return example.clone();
        }
        for combinator in ["oneOf", "anyOf"] {
            let Some(branches) = schema.get(combinator).and_then(Value::as_array) else { continue };
            let Some(at) = (!branches.is_empty()).then(|| self.rng.random_range(0..branches.len())) else { continue };
            if schema.get("properties").is_none() {
                return self.valid(&branches[at], key, depth + 1);
            }
            // Branches that only require properties of the object around them: the object
            // with the chosen branch's, and without those only the others require.
            let required = |branch: &Value| -> Vec<Value> {
                resolve(doc, branch).get("required").and_then(Value::as_array).cloned().unwrap_or_default()
            };
            let mut merged = schema.clone();
            merged.as_object_mut().expect("an object schema").remove(combinator);
            let chosen = required(&branches[at]);
            for (_, branch) in branches.iter().enumerate().filter(|(i, _)| *i != at) {
                for name in required(branch).iter().filter(|n| !chosen.contains(n)).filter_map(Value::as_str) {
                    merged["properties"].as_object_mut().expect("properties").remove(name);
                }
            }
            let mut all = merged.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
            all.extend(chosen);
            merged["required"] = Value::Array(all);
            return self.valid(&merged, key, depth + 1);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(ty)) => vec![ty.as_str()],
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
            _ if schema.get("properties").is_some() => vec!["object"],
            _ if schema.get("items").is_some() => vec!["array"],
            _ => vec!["string", "integer", "boolean"],
        };
        let concrete: Vec<&str> = types.iter().copied().filter(|t| *t != "null").collect();
        let ty = match self.pick(&concrete) {
            Some(ty) if !(types.contains(&"null") && self.chance(1, 8)) => *ty,
            _ => "null",
        };
        match ty {
            "boolean" => Value::Bool(self.rng.random()),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(min + 1000);
                json!(self.rng.random_range(min..=max))
            }
            "number" => json!(f64::from(self.rng.random_range(0..100_000)) / 100.0),
            "string" => Value::String(self.string(schema, key)),
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                let max = schema.get("maxItems").and_then(Value::as_u64).map_or(min + 3, |m| (m as usize).min(min + 3));
                let count = self.rng.random_range(min..=max.max(min));
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                let mut values: Vec<Value> = Vec::new();
                for _ in 0..count {
                    let value = self.valid(&items, key, depth + 1);
                    if !(schema.get("uniqueItems") == Some(&Value::Bool(true)) && values.contains(&value)) {
                        values.push(value);
                    }
                }
                Value::Array(values)
            }
            "object" => Value::Object(self.object(schema, depth)),
            _ => Value::Null,
        }
    }

    fn object(&mut self, schema: &Value, depth: usize) -> Map<String, Value> {
        let required: BTreeSet<&str> =
            schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut object = Map::new();
        let empty = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        // About four optional properties: a large object with all of them is mostly refused.
        let odds = (4 * 100 / properties.len().max(1)).min(50) as u32;
        for (name, property) in properties {
            let property_schema = resolve(self.doc, property);
            if property_schema.get("readOnly") == Some(&Value::Bool(true)) {
                continue;
            }
            if required.contains(name.as_str()) || self.chance(odds, 100) {
                let value = self.valid(property, Some(name), depth + 1);
                object.insert(name.clone(), value);
            }
        }
        let pools = self.pools;
        if properties.is_empty()
            && let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object())
            && let Some(name) = self.pick(&pools.names).cloned()
        {
            let value = self.valid(extra, Some(&name), depth + 1);
            object.insert(name, value);
        }
        object
    }

    fn string(&mut self, schema: &Value, key: Option<&str>) -> String {
        let n = self.rng.random_range(0..10_000);
        match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => return self.id(schema),
            Some("date") => {
                return format!("2026-{:02}-{:02}", self.rng.random_range(1..=12), self.rng.random_range(1..=28));
            }
            Some("date-time") => {
                return format!(
                    "2026-{:02}-{:02}T0{}:30:00Z",
                    self.rng.random_range(1..=12),
                    self.rng.random_range(1..=28),
                    n % 10
                );
            }
            Some("email") => return format!("user{n}@example.com"),
            Some("uri") => return format!("https://example.com/{n}"),
            _ => {}
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if let Some(rest) = pattern.strip_prefix("^-?[0-9]+") {
                // An exact number: within its bounds, with as many decimals as it may have.
                let bound = |keyword: &str| schema.get(keyword).and_then(Value::as_f64).map(|b| b as i64);
                let (min, max) = (bound("x-minimum").unwrap_or(0), bound("x-maximum").unwrap_or(10_000));
                let whole = self.rng.random_range(min..=max.max(min));
                let scale = rest.split("{1,").nth(1).and_then(|r| r.split('}').next()).and_then(|d| d.parse().ok());
                return match scale {
                    Some(scale) if whole < max && self.chance(2, 3) => {
                        format!("{whole}.{}", "7".repeat(self.rng.random_range(1..=scale)))
                    }
                    _ => whole.to_string(),
                };
            }
            return format!("f{n}");
        }
        let pools = self.pools;
        if matches!(key, Some("field" | "by" | "sum" | "name"))
            && self.chance(2, 3)
            && let Some(name) = self.pick(&pools.names)
        {
            return name.clone();
        }
        let max = schema.get("maxLength").and_then(Value::as_u64).unwrap_or(200) as usize;
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        if min == 0 && self.chance(1, 10) {
            return String::new();
        }
        let text = format!("{} {n}", self.pick(&SAMPLES).expect("samples"));
        let mut text: String = text.chars().take(max.max(1)).collect();
        while text.chars().count() < min {
            text.push('x');
        }
        text
    }

    /// An id: of a record of the entity the schema names (`x-target`), some other id, or one
    /// that exists nowhere.
    fn id(&mut self, schema: &Value) -> String {
        let target = schema.get("x-target").and_then(Value::as_str);
        let pools = self.pools;
        if let Some(ids) = target.and_then(|t| pools.ids.get(t)).filter(|ids| !ids.is_empty())
            && self.chance(9, 10)
        {
            return self.pick(ids).expect("not empty").clone();
        }
        if target.is_none() && !pools.others.is_empty() && self.chance(1, 2) {
            return self.pick(&pools.others).expect("not empty").clone();
        }
        uuid::Uuid::from_u128(self.rng.random()).to_string()
    }

    /// A hostile string for a body: possibly long.
    fn hostile(&mut self) -> String {
        match self.rng.random_range(0..6) {
            0 => "字".repeat(self.rng.random_range(1000..20_000)),
            1 => "A".repeat(self.rng.random_range(10_000..300_000)),
            _ => self.hostile_short(),
        }
    }

    /// A hostile string short enough for a URI once percent-encoded.
    fn hostile_short(&mut self) -> String {
        match self.rng.random_range(0..5) {
            0 => "字".repeat(self.rng.random_range(100..2000)),
            _ => (*self.pick(&HOSTILE).expect("hostile")).to_owned(),
        }
    }

    /// A value of another type than `value`.
    fn wrong_type(&mut self, value: &Value) -> Value {
        match value {
            Value::String(_) => json!(self.pick(&[json!(12345), json!(true), json!({"a": 1}), json!(["x"])]).cloned()),
            Value::Number(_) => json!(self.pick(&["twelve", "1,5", "0x10", ""]).copied()),
            Value::Bool(_) => json!(self.pick(&["yes", "1", "TRUE"]).copied()),
            Value::Array(_) => json!({"not": "a list"}),
            Value::Object(_) => json!([1, 2]),
            Value::Null => json!("unexpected"),
        }
    }

    /// A path segment for a path parameter: mostly a valid one, or one that cannot be.
    fn segment(&mut self, parameter: &Value, bad: bool) -> String {
        if bad {
            let raw = *self.pick(&BAD_SEGMENTS).expect("segments");
            return match raw {
                // Sent as it is: percent-encoded bytes that are not UTF-8.
                "%FF%FE" => raw.to_owned(),
                _ if self.chance(1, 4) => encode(&self.hostile_short()),
                _ => encode(raw),
            };
        }
        let schema = resolve(self.doc, &parameter["schema"]);
        let name = parameter["name"].as_str();
        let pools = self.pools;
        let value = match self.valid(schema, name, 0) {
            Value::String(text) if schema.get("enum").is_none() && schema.get("format").is_none() => {
                match self.pick(&pools.names) {
                    Some(known) if self.chance(4, 5) => known.clone(),
                    _ => text,
                }
            }
            Value::String(text) => text,
            other => other.to_string(),
        };
        encode(&value)
    }

    /// The text of a query parameter's value.
    fn query_value(&mut self, parameter: &Value) -> String {
        if let Some(content) = parameter.get("content").and_then(Value::as_object) {
            let schema = content.values().next().map(|m| m["schema"].clone()).unwrap_or(json!({}));
            return self.valid(&schema, None, 0).to_string();
        }
        let name = parameter["name"].as_str();
        match self.valid(&parameter["schema"], name, 0) {
            Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
            other => scalar_text(&other),
        }
    }

    /// A malformed value for a query parameter.
    fn bad_query_value(&mut self, parameter: &Value) -> String {
        let schema = resolve(self.doc, &parameter["schema"]);
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => {
                (*self.pick(&["abc", "-1", "1.5", "99999999999999999999", ""]).expect("values")).to_owned()
            }
            Some("boolean") => (*self.pick(&["yes", "1", "TRUE", ""]).expect("values")).to_owned(),
            _ if parameter.get("content").is_some() => {
                (*self.pick(&["{not json", "[]", "{\"field\":\"name\"}", "{\"and\":{}}", "null"]).expect("values"))
                    .to_owned()
            }
            _ => self.hostile_short(),
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Pointers to the string values inside a JSON value.
fn string_leaves(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::String(_) => out.push(at),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| string_leaves(v, format!("{at}/{i}"), out)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| string_leaves(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        _ => {}
    }
}

/// The test's state: the app, the callers, the pools and what was found.
struct Run {
    t: TestApp,
    rng: StdRng,
    callers: Vec<Caller>,
    pools: Pools,
    /// Field names hidden from the rep on every entity they see, that no answer to them may name.
    secrets: Vec<String>,
    failures: Vec<String>,
    sent: usize,
    /// Operations (`caller method path`) and whether one of their answers was a success.
    succeeded: BTreeMap<String, bool>,
}

impl Run {
    async fn new(t: TestApp, seed: u64) -> Self {
        let admin_id = t.get("/api/v1/auth/session").await.expect(200)["user_id"].as_str().unwrap().to_owned();
        let (rep_id, rep_token) = t.user(REP_LOGIN, &["sales_rep"], None).await;
        // Users the account operations may disable, reset and transfer from.
        for login in ["fodder1", "fodder2"] {
            t.post(
                "/api/v1/admin/users",
                json!({"user": {"name": login, "login": login}, "password": FIRST_PASSWORD, "roles": ["sales_rep"]}),
            )
            .await
            .expect(201);
        }
        let caller = |name, login, password, token: String| Caller {
            name,
            login,
            password,
            token,
            doc: Value::Null,
            validators: HashMap::new(),
        };
        let admin_token = t.token.clone();
        let mut callers = vec![
            caller("administrator", "admin", ADMIN_PASSWORD, admin_token),
            caller("sales rep", REP_LOGIN, USER_PASSWORD, rep_token),
        ];
        // The administrator's document names the fields the rep's role hides.
        callers[0].fetch_doc(&t).await;
        let role = t.get("/api/v1/meta/roles/sales_rep").await.expect(200);
        let mut run = Run {
            t,
            rng: StdRng::seed_from_u64(seed),
            callers,
            pools: Pools::default(),
            secrets: Vec::new(),
            failures: Vec::new(),
            sent: 0,
            succeeded: BTreeMap::new(),
        };
        run.secrets = run.hidden_from_rep(&role);
        run.fetch_documents().await;
        run.collect_names();
        for caller in 0..run.callers.len() {
            run.seed_records(caller).await;
        }
        run.collect_ids(&[admin_id, rep_id]).await;
        run
    }

    /// The rep's hidden fields that no entity they see shows them under the same name.
    fn hidden_from_rep(&self, role: &Value) -> Vec<String> {
        let admin_schemas = &self.callers[0].doc["components"]["schemas"];
        let mut hidden = BTreeSet::new();
        let mut shown = BTreeSet::new();
        for (entity, grant) in role["entities"].as_object().expect("entities") {
            let fields = grant.get("fields").and_then(Value::as_object);
            let is_hidden = |name: &str| fields.and_then(|f| f.get(name)) == Some(&json!("hidden"));
            for name in admin_schemas[entity]["properties"].as_object().into_iter().flat_map(|p| p.keys()) {
                if is_hidden(name) {
                    hidden.insert(name.clone())
                } else {
                    shown.insert(name.clone())
                };
            }
        }
        let secrets: Vec<String> = hidden.difference(&shown).cloned().collect();
        assert!(!secrets.is_empty(), "the sales rep's role hides fields (cost_price)");
        secrets
    }

    /// Entity and field names, for parameters that name them.
    fn collect_names(&mut self) {
        let mut names = BTreeSet::new();
        for caller in &self.callers {
            let paths = caller.doc["paths"].as_object().expect("paths").keys();
            names.extend(
                paths
                    .filter_map(|p| p.strip_prefix("/api/v1/records/"))
                    .map(|p| p.split('/').next().unwrap_or(p).to_owned()),
            );
            for schema in caller.doc["components"]["schemas"].as_object().expect("schemas").values() {
                names.extend(
                    schema.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.keys().cloned()),
                );
            }
        }
        // A hidden field's name sent by the generator could come back in an answer.
        self.pools.names = names.into_iter().filter(|name| !self.secrets.contains(name)).collect();
    }

    /// A few records of every entity the caller may create, from the create operation's own
    /// schema; several rounds, so that lookups find records created in an earlier one.
    async fn seed_records(&mut self, caller: usize) {
        let creates: Vec<(String, String)> = self.callers[caller].doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .filter_map(|(path, item)| {
                let entity = path.strip_prefix("/api/v1/records/").filter(|e| !e.contains('/'))?;
                item.get("post").map(|_| (path.clone(), entity.to_owned()))
            })
            .collect();
        for _round in 0..3 {
            for (path, entity) in &creates {
                let have = self.pools.ids.get(entity).map_or(0, Vec::len);
                if have >= 3 * (caller + 1) {
                    continue;
                }
                let doc = &self.callers[caller].doc;
                let schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
                for _attempt in 0..4 {
                    let body = Generator { rng: &mut self.rng, doc, pools: &self.pools }.valid(&schema, None, 0);
                    let reply = self.t.call(Method::POST, path, Some(body), Some(&self.callers[caller].token)).await;
                    self.sent += 1;
                    if std::env::var_os("CRM_CONTRACT_VERBOSE").is_some() && reply.status.as_u16() != 201 {
                        eprintln!("seeding {path}: {} {}", reply.status, reply.body);
                    }
                    if reply.status.as_u16() == 201 {
                        let id = reply.body["id"].as_str().expect("a created record has an id").to_owned();
                        self.pools.ids.entry(entity.clone()).or_default().push(id);
                        break;
                    }
                }
            }
        }
    }

    /// The ids of records of every entity, tokens and reminders; the test's own users are
    /// left out, so that no generated request disables or resets them.
    async fn collect_ids(&mut self, protected: &[String]) {
        let lists: Vec<String> = self.callers[0].doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .filter(|p| p.strip_prefix("/api/v1/records/").is_some_and(|e| !e.contains('/')))
            .cloned()
            .collect();
        for path in lists {
            let entity = path.trim_start_matches("/api/v1/records/").to_owned();
            let page = self.t.get(&format!("{path}?limit=20")).await.expect(200);
            let ids = self.pools.ids.entry(entity).or_default();
            for record in page["data"].as_array().expect("data") {
                let id = record["id"].as_str().expect("id").to_owned();
                if !ids.contains(&id) && !protected.contains(&id) {
                    ids.push(id);
                }
            }
            ids.retain(|id| !protected.contains(id));
        }
        for caller in &self.callers {
            for uri in ["/api/v1/auth/tokens", "/api/v1/reminders"] {
                let listed = self.t.call(Method::GET, uri, None, Some(&caller.token)).await.expect(200);
                let ids = listed["data"].as_array().expect("data").iter().filter_map(|r| r["id"].as_str());
                self.pools.others.extend(ids.map(str::to_owned));
            }
        }
    }

    /// A request for an operation: valid, or with one thing wrong.
    fn request(&mut self, caller: usize, method: &Method, path: &str) -> Call {
        let doc = &self.callers[caller].doc;
        let operation = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        let parameters: Vec<&Value> = operation
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| resolve(doc, p))
            .collect();
        let body_schema = operation.pointer("/requestBody/content/application~1json/schema").cloned();
        let mut generator = Generator { rng: &mut self.rng, doc, pools: &self.pools };
        let mut targets = vec!["auth"];
        if path.contains('{') {
            targets.push("path");
        }
        if parameters.iter().any(|p| p["in"] == "query") {
            targets.push("query");
        }
        if body_schema.is_some() {
            targets.extend(["body", "body", "body"]);
        }
        let broken = if generator.chance(1, 2) { generator.pick(&targets).copied() } else { None };
        let mut note = broken.map_or_else(|| "valid".to_owned(), |b| format!("bad {b}"));

        let mut uri = String::new();
        for segment in path.split('/').skip(1) {
            uri.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let parameter = parameters.iter().find(|p| p["in"] == "path" && p["name"] == name);
                    let parameter = parameter.unwrap_or_else(|| panic!("{path}: `{name}` is not documented"));
                    uri.push_str(&generator.segment(parameter, broken == Some("path")));
                }
                None => uri.push_str(segment),
            }
        }
        let mut query: Vec<(String, String)> = Vec::new();
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            if parameter["required"] == true || generator.chance(1, 3) {
                let value = generator.query_value(parameter);
                query.push((parameter["name"].as_str().expect("name").to_owned(), value));
            }
        }
        if broken == Some("query") {
            match generator.rng.random_range(0..3) {
                0 if !query.is_empty() => {
                    let at = generator.rng.random_range(0..query.len());
                    let parameter = parameters.iter().find(|p| p["name"] == query[at].0.as_str()).expect("documented");
                    query[at].1 = generator.bad_query_value(parameter);
                }
                1 if !query.is_empty() => query.push(query[0].clone()),
                _ => query.push(("zz_unknown".to_owned(), "1".to_owned())),
            }
        }
        if !query.is_empty() {
            let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            uri = format!("{uri}?{}", pairs.join("&"));
        }

        let mut content_type = Some("application/json");
        let mut body = body_schema.map(|schema| {
            let mut value = generator.valid(&schema, None, 0);
            if broken != Some("body") {
                return serde_json::to_vec(&value).expect("JSON");
            }
            let (what, bytes) = mutate(&mut generator, &schema, &mut value, &mut content_type);
            note = format!("bad body: {what}");
            bytes
        });
        // Signing in needs a login and password that exist, which no schema can say.
        let who = &self.callers[caller];
        if broken.is_none()
            && let Some(body) = body.as_mut()
            && let Ok(Value::Object(mut credentials)) = serde_json::from_slice::<Value>(body)
            && credentials.contains_key("login")
            && credentials.contains_key("password")
            && self.rng.random_ratio(1, 2)
        {
            credentials.insert("login".into(), json!(who.login));
            credentials.insert("password".into(), json!(who.password));
            *body = serde_json::to_vec(&credentials).expect("JSON");
        }
        let authenticated = broken != Some("auth") && operation.get("security") != Some(&json!([]));
        Call { method: method.clone(), uri, body, content_type, authenticated, valid: broken.is_none(), note }
    }

    /// Sends a call and checks the answer against the caller's current document.
    async fn check(&mut self, caller: usize, path: &str, call: Call) -> u16 {
        let token = if call.authenticated { Some(self.callers[caller].token.clone()) } else { None };
        let reply = self
            .t
            .raw(call.method.clone(), &call.uri, call.body.unwrap_or_default(), call.content_type, token.as_deref())
            .await;
        self.sent += 1;
        let status = reply.status.as_u16();
        let key = format!("{} {} {path}", self.callers[caller].name, call.method);
        *self.succeeded.entry(key).or_default() |= (200..300).contains(&status);
        let problems = self.problems(caller, path, &call.method, status, reply.content_type.as_deref(), &reply.body);
        if !problems.is_empty() {
            let mut body = reply.body.to_string();
            body.truncate(body.char_indices().nth(400).map_or(body.len(), |(i, _)| i));
            let mut uri = call.uri.clone();
            uri.truncate(uri.char_indices().nth(300).map_or(uri.len(), |(i, _)| i));
            self.failures.push(format!(
                "[{}] {} {uri} ({}) → {status} {}: {}\n    body: {body}",
                self.callers[caller].name,
                call.method,
                call.note,
                reply.content_type.as_deref().unwrap_or("no content type"),
                problems.join("; "),
            ));
        }
        status
    }

    fn problems(
        &mut self,
        caller: usize,
        path: &str,
        method: &Method,
        status: u16,
        content_type: Option<&str>,
        body: &Value,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let upstream = status == 502
            && self.callers[caller].operation(path, method).is_some_and(|o| o["responses"].get("502").is_some());
        if status >= 500 && !upstream {
            problems.push("a server error".to_owned());
        }
        if caller == 1 {
            let text = body.to_string();
            problems.extend(
                self.secrets
                    .iter()
                    .filter(|s| text.contains(s.as_str()))
                    .map(|s| format!("names the hidden field `{s}`")),
            );
        }
        let who = &mut self.callers[caller];
        let Some(operation) = who.operation(path, method) else {
            return problems;
        };
        let responses = &operation["responses"];
        let Some(response) = responses.get(status.to_string()).or_else(|| responses.get("default")) else {
            problems.push(format!("status {status} is not documented"));
            return problems;
        };
        let response = resolve(&who.doc, response).clone();
        let essence = content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        match response.get("content").and_then(Value::as_object).filter(|c| !c.is_empty()) {
            None => {
                if !body.is_null() || essence.is_some() {
                    problems.push("a body where none is documented".to_owned());
                }
            }
            Some(content) => match essence.as_deref().and_then(|e| content.get(e)) {
                None => problems.push(format!(
                    "content type {} is not documented (documented: {})",
                    essence.as_deref().unwrap_or("none"),
                    content.keys().cloned().collect::<Vec<_>>().join(", "),
                )),
                Some(media) => {
                    let schema = media["schema"].clone();
                    if let Err(e) = who.validate(&schema, body) {
                        problems.push(format!("the body does not match the schema: {e}"));
                    }
                    if essence.as_deref() == Some("application/problem+json") && body["status"] != json!(status) {
                        problems.push("the problem's status is not the answer's".to_owned());
                    }
                }
            },
        }
        problems
    }

    /// Every caller's document, as of now; a document must be valid OpenAPI and the rep's
    /// may not name a field hidden from them.
    async fn fetch_documents(&mut self) {
        for caller in 0..self.callers.len() {
            self.callers[caller].fetch_doc(&self.t).await;
            let document = &self.callers[caller].doc;
            let errors: Vec<String> =
                OPENAPI.iter_errors(document).take(3).map(|e| format!("{e} at {}", e.instance_path())).collect();
            if !errors.is_empty() {
                self.failures.push(format!(
                    "[{}] the document is not OpenAPI 3.1: {}",
                    self.callers[caller].name,
                    errors.join("; ")
                ));
            }
            let text = document.to_string();
            for secret in self.secrets.iter().filter(|s| caller == 1 && text.contains(s.as_str())) {
                self.failures.push(format!("[sales rep] the OpenAPI document names the hidden field `{secret}`"));
            }
        }
    }

    /// A change sent with the version of the record it changes, read just before, so that
    /// changes get past the version check.
    async fn read_version(&mut self, caller: usize, call: &mut Call) {
        let Some(mut body) = call.body.as_deref().and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
            return;
        };
        let token = self.callers[caller].token.clone();
        let current = self.t.call(Method::GET, &call.uri, None, Some(&token)).await;
        if let (Some(version), Some(object)) = (current.body.get("version"), body.as_object_mut()) {
            object.insert("version".into(), version.clone());
            call.body = Some(serde_json::to_vec(&body).expect("JSON"));
        }
    }

    /// A caller whose session ended (revoked, logged out) signs in again.
    async fn keep_signed_in(&mut self, caller: usize) {
        let Caller { name, login, password, .. } = self.callers[caller];
        let session = self.t.call(Method::GET, "/api/v1/auth/session", None, Some(&self.callers[caller].token)).await;
        if session.status.as_u16() != 200 {
            let token = self.t.login(login, password).await;
            self.callers[caller].token = token.unwrap_or_else(|| panic!("the {name} signs in again"));
        }
    }

    /// Every operation of every caller's document, phase by phase.
    async fn run(&mut self, cases: usize) {
        for phase in 1..=PHASES {
            for caller in 0..self.callers.len() {
                for (method, path) in operations(&self.callers[caller].doc, phase) {
                    for _ in 0..cases {
                        let mut call = self.request(caller, &method, &path);
                        if method == Method::PATCH && call.valid {
                            self.read_version(caller, &mut call).await;
                        }
                        let changes_metadata = method != Method::GET && path.starts_with("/api/v1/meta/");
                        let status = self.check(caller, &path, call).await;
                        if changes_metadata && (200..300).contains(&status) {
                            self.fetch_documents().await;
                        }
                        if RISKY.contains(&phase) && status == 401 {
                            self.keep_signed_in(caller).await;
                        }
                    }
                }
            }
        }
    }
}

/// One thing wrong with a valid body: its description and the bytes to send.
fn mutate(
    generator: &mut Generator<'_>,
    schema: &Value,
    value: &mut Value,
    content_type: &mut Option<&'static str>,
) -> (&'static str, Vec<u8>) {
    let schema = resolve(generator.doc, schema);
    let what = match generator.rng.random_range(0..12) {
        0 => {
            let required: Vec<String> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            match (value.as_object_mut(), generator.pick(&required)) {
                (Some(object), Some(name)) => {
                    object.remove(name);
                    "a required property missing"
                }
                _ => "nothing missing",
            }
        }
        1 => {
            if let Some(object) = value.as_object_mut() {
                object.insert("zz_unknown".into(), json!(1));
            }
            "an unknown property"
        }
        2 | 3 => {
            let keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            match generator.pick(&keys).cloned() {
                Some(key) => {
                    let wrong = generator.wrong_type(&value[&key]);
                    value[&key] = wrong;
                    "a value of the wrong type"
                }
                None => {
                    *value = generator.wrong_type(value);
                    "the wrong type"
                }
            }
        }
        4..=6 => {
            let mut leaves = Vec::new();
            string_leaves(value, String::new(), &mut leaves);
            let hostile = generator.hostile();
            match generator.pick(&leaves).and_then(|at| value.pointer_mut(at)) {
                Some(leaf) => {
                    *leaf = Value::String(hostile);
                    "a hostile string"
                }
                None => "no string to spoil",
            }
        }
        7 => {
            *value = generator
                .pick(&[json!([]), json!("text"), json!(42), Value::Null, json!(true)])
                .cloned()
                .expect("values");
            "not an object"
        }
        8 => {
            let bytes = generator
                .pick(&[&b"{\"unterminated\": "[..], &b"{\"a\":1,}"[..], &b"\xff\xfe{}"[..], &b"NaN"[..]])
                .expect("bytes")
                .to_vec();
            return ("malformed JSON", bytes);
        }
        9 => {
            *content_type =
                *generator.pick(&[Some("text/plain"), None, Some("application/x-www-form-urlencoded")]).expect("types");
            "the wrong content type"
        }
        10 => return ("an empty body", Vec::new()),
        _ => {
            if generator.chance(1, 3) {
                return ("a body over the limit", format!("\"{}\"", "x".repeat(3 * 1024 * 1024)).into_bytes());
            }
            "nothing wrong after all"
        }
    };
    (what, serde_json::to_vec(value).expect("JSON"))
}

async fn every_answer_is_documented(t: TestApp) {
    let seed = seed();
    eprintln!("contract: CRM_CONTRACT_SEED={seed}");
    let started = Instant::now();
    let mut run = Run::new(t, seed).await;
    run.run(cases()).await;
    let never: Vec<&String> = run.succeeded.iter().filter(|(_, ok)| !**ok).map(|(op, _)| op).collect();
    eprintln!(
        "contract: {} requests in {:.1?}; {} of {} operations answered a success at least once",
        run.sent,
        started.elapsed(),
        run.succeeded.len() - never.len(),
        run.succeeded.len(),
    );
    if std::env::var_os("CRM_CONTRACT_VERBOSE").is_some() {
        eprintln!("never a success:\n{}", never.iter().map(|op| op.as_str()).collect::<Vec<_>>().join("\n"));
    }
    assert!(
        run.failures.is_empty(),
        "CRM_CONTRACT_SEED={seed}: {} answers break the contract (the first 40):\n{}",
        run.failures.len(),
        run.failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
    );
}
