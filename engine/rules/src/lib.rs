//! Rules: one hardened Rhai engine for every script, each script compiled once per source and
//! cached, and the run of a script against a record under limits — operations, call depth,
//! string, array and map sizes, and a wall-clock budget. A script has no file, network or
//! `eval`; its only doors out are the host functions registered here, whose effects are
//! collected and handed back for the caller to apply (or, in a dry run, to show).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Map as RhaiMap, Position, Scope};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value as Json};

mod calendar;
pub use calendar::Calendar;

/// What a run may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A safety net only: the clock stops long runs first.
            max_operations: 500_000_000,
            max_call_levels: 32,
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            budget: Duration::from_millis(50),
        }
    }
}

/// Reads records for a script, through the permissions of the user the script runs for:
/// `(entity, filter)` → records as JSON objects, or a message saying why not.
pub type Reader = Arc<dyn Fn(&str, &Json) -> Result<Vec<Json>, String> + Send + Sync>;

/// What a script sees.
pub struct Input {
    /// The record as it will be saved; the script may change it.
    pub record: Map<String, Json>,
    /// The record as it was, for a change.
    pub old: Option<Map<String, Json>>,
    /// The user the script runs for: id, department, roles.
    pub user: Json,
    /// The engine's time, RFC 3339.
    pub now: String,
    /// Exact-number fields and their scale: scripts compute on them as decimals, and what
    /// they write back is rounded half away from zero to the field's scale.
    pub decimals: HashMap<String, u32>,
    /// The scale of an exact-number result (a formula's), to round it to.
    pub result_scale: Option<u32>,
    pub reader: Reader,
}

/// Something a script asked for that the engine carries out with the save.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A reminder for a user, about a record (`(entity, id)`) when the script names one; a
    /// rule run for a save is about the saved record otherwise.
    Notify { user: String, message: String, about: Option<(String, String)> },
    /// A new record of an entity.
    Create { entity: String, values: Json },
    /// A change to another record (a parent's totals, say).
    Update { entity: String, id: String, values: Json },
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The record after the script.
    pub record: Map<String, Json>,
    /// Field errors the script raised: `(field, message)`; an empty field is the record's.
    pub errors: Vec<(String, String)>,
    pub effects: Vec<Effect>,
    /// The value of the script's last expression (a formula's result).
    pub value: Json,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("script `{script}` does not compile (line {line}, column {column}): {message}")]
    Syntax { script: String, line: usize, column: usize, message: String },
    #[error("script `{script}` failed (line {line}, column {column}): {message}")]
    Failed { script: String, line: usize, column: usize, message: String },
    #[error("script `{script}` was stopped (line {line}, column {column}): {reason}")]
    Stopped { script: String, line: usize, column: usize, reason: String },
}

/// The state of the run on this thread, reached by the host functions and the progress
/// check; a run is synchronous on one thread, so no run sees another's.
struct RunState {
    now: DateTime<FixedOffset>,
    deadline: Instant,
    budget: Duration,
    errors: Vec<(String, String)>,
    effects: Vec<Effect>,
    reader: Reader,
}

thread_local! {
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
}

fn with_run<T>(f: impl FnOnce(&mut RunState) -> T) -> Option<T> {
    RUN.with(|run| run.borrow_mut().as_mut().map(f))
}

/// How many operations pass between two looks at the clock.
const CLOCK_EVERY: u64 = 1024;
const CACHE_SIZE: usize = 2_000;

pub struct Rules {
    engine: Engine,
    limits: Limits,
    compiled: RwLock<HashMap<u64, Arc<AST>>>,
}

impl Rules {
    pub fn new(limits: Limits) -> Self {
        let mut engine = Engine::new();
        engine.disable_symbol("eval");
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_expr_depths(64, 32)
            .set_max_variables(1_000)
            .set_max_functions(200);
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.on_progress(|operations| {
            if !operations.is_multiple_of(CLOCK_EVERY) {
                return None;
            }
            with_run(|run| (Instant::now() > run.deadline).then(|| Dynamic::from(run.budget.as_millis() as i64)))
                .flatten()
        });
        engine.register_fn("error", |field: &str, message: &str| {
            with_run(|run| run.errors.push((field.to_owned(), message.to_owned())));
        });
        engine.register_fn("notify", |user: &str, message: &str| notify(user, message.to_owned(), None));
        // A message in each language, `#{ "zh-CN": "…", en: "…" }`: the reader sees theirs.
        engine.register_fn("notify", |user: &str, message: RhaiMap| -> Result<(), Box<EvalAltResult>> {
            notify(user, to_json(&Dynamic::from_map(message))?.to_string(), None);
            Ok(())
        });
        // The same about a record of an entity, which the reminder links to.
        engine.register_fn("notify", |user: &str, message: &str, entity: &str, id: &str| {
            notify(user, message.to_owned(), Some((entity.to_owned(), id.to_owned())));
        });
        engine.register_fn(
            "notify",
            |user: &str, message: RhaiMap, entity: &str, id: &str| -> Result<(), Box<EvalAltResult>> {
                let message = to_json(&Dynamic::from_map(message))?.to_string();
                notify(user, message, Some((entity.to_owned(), id.to_owned())));
                Ok(())
            },
        );
        engine.register_fn("create", |entity: &str, values: RhaiMap| -> Result<(), Box<EvalAltResult>> {
            let values = to_json(&Dynamic::from_map(values))?;
            with_run(|run| run.effects.push(Effect::Create { entity: entity.to_owned(), values }));
            Ok(())
        });
        engine.register_fn("update", |entity: &str, id: &str, values: RhaiMap| -> Result<(), Box<EvalAltResult>> {
            let values = to_json(&Dynamic::from_map(values))?;
            with_run(|run| run.effects.push(Effect::Update { entity: entity.to_owned(), id: id.to_owned(), values }));
            Ok(())
        });
        engine.register_fn("days_ago", |days: i64| -> Result<String, Box<EvalAltResult>> {
            let now = with_run(|run| run.now).ok_or("days_ago is only available while a rule runs")?;
            Ok((now - TimeDelta::days(days)).to_rfc3339())
        });
        engine.register_fn("days_between", |from: &str, to: &str| -> Result<i64, Box<EvalAltResult>> {
            let day = |text: &str| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.date_naive())
                    .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
                    .map_err(|_| format!("`{text}` is not a date"))
            };
            Ok((day(to)? - day(from)?).num_days())
        });
        engine.register_fn("hours_between", |from: &str, to: &str| -> Result<Decimal, Box<EvalAltResult>> {
            let minutes = (moment(to)? - moment(from)?).num_minutes();
            Ok((Decimal::from(minutes) / Decimal::from(60)).round_dp(2))
        });
        engine.register_fn("add_hours", |start: &str, hours: Dynamic| -> Result<String, Box<EvalAltResult>> {
            Ok((moment(start)? + TimeDelta::minutes(minutes_of(&hours)?)).to_rfc3339())
        });
        engine.register_fn(
            "add_working_hours",
            |start: &str, hours: Dynamic, calendar: RhaiMap| -> Result<String, Box<EvalAltResult>> {
                let text = |key: &str| calendar.get(key).and_then(|v| v.clone().into_string().ok()).unwrap_or_default();
                let days: Vec<String> = calendar
                    .get("days")
                    .and_then(|d| d.clone().try_cast::<rhai::Array>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| d.into_string().ok())
                    .collect();
                let offset = calendar.get("utc_offset_minutes").and_then(|v| v.as_int().ok());
                let calendar = Calendar::parse(&days, &text("start"), &text("end"), offset)?;
                Ok(calendar.after(moment(start)?, minutes_of(&hours)?)?.to_rfc3339())
            },
        );
        engine.register_fn("find", |entity: &str, filter: RhaiMap| -> Result<rhai::Array, Box<EvalAltResult>> {
            let filter = to_json(&Dynamic::from_map(filter))?;
            let reader = with_run(|run| run.reader.clone()).ok_or("find is only available while a rule runs")?;
            let records = reader(entity, &filter).map_err(|e| format!("find(\"{entity}\"): {e}"))?;
            records.iter().map(rhai::serde::to_dynamic).collect()
        });
        engine.register_fn("decimal", |text: &str| -> Result<Decimal, Box<EvalAltResult>> {
            Decimal::from_str(text.trim()).map_err(|_| format!("`{text}` is not a number").into())
        });
        Rules { engine, limits, compiled: RwLock::new(HashMap::new()) }
    }

    /// Compiles a script (or finds it compiled): a syntax check on save, and the first step of
    /// every run.
    pub fn compile(&self, script: &str, source: &str) -> Result<Arc<AST>, RuleError> {
        let mut hasher = DefaultHasher::new();
        source.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(ast) = self.compiled.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(ast.clone());
        }
        let ast = self.engine.compile(source).map_err(|e| {
            let (line, column) = place(e.position());
            RuleError::Syntax { script: script.to_owned(), line, column, message: e.err_type().to_string() }
        })?;
        let ast = Arc::new(ast);
        let mut compiled = self.compiled.write().unwrap_or_else(|e| e.into_inner());
        if compiled.len() >= CACHE_SIZE {
            compiled.clear();
        }
        compiled.insert(key, ast.clone());
        Ok(ast)
    }

    /// Runs a script against a record. Blocking: call it where blocking is allowed.
    pub fn run(&self, script: &str, source: &str, input: Input) -> Result<Outcome, RuleError> {
        let ast = self.compile(script, source)?;
        let now = DateTime::parse_from_rfc3339(&input.now).map_err(|e| RuleError::Failed {
            script: script.to_owned(),
            line: 0,
            column: 0,
            message: format!("the time given to the rule is not RFC 3339: {e}"),
        })?;
        let decimals = input.decimals;
        let input_scale = input.result_scale;
        let mut scope = Scope::new();
        scope.push("record", dynamic_record(&input.record, &decimals));
        scope.push("old", input.old.as_ref().map_or(Dynamic::UNIT, |old| dynamic_record(old, &decimals)));
        scope.push("user", rhai::serde::to_dynamic(&input.user).unwrap_or(Dynamic::UNIT));
        scope.push("now", input.now);
        let started = Instant::now();
        RUN.with(|run| {
            *run.borrow_mut() = Some(RunState {
                now,
                deadline: started + self.limits.budget,
                budget: self.limits.budget,
                errors: Vec::new(),
                effects: Vec::new(),
                reader: input.reader,
            })
        });
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast);
        let state = RUN.with(|run| run.borrow_mut().take()).expect("the run's state was set");
        let value = result.map_err(|e| failure(script, *e))?;
        let record = scope.get_value::<Dynamic>("record").unwrap_or(Dynamic::UNIT);
        let record = match json_record(&record, &decimals).map_err(|e| failure(script, *e))? {
            Json::Object(record) => record,
            _ => {
                return Err(RuleError::Failed {
                    script: script.to_owned(),
                    line: 0,
                    column: 0,
                    message: "`record` must stay a map".into(),
                });
            }
        };
        let value = match (input_scale, number_of(&value)) {
            (Some(scale), Some(n)) => Json::String(round(n, scale).to_string()),
            _ => to_json(&value).map_err(|e| failure(script, *e))?,
        };
        Ok(Outcome { record, errors: state.errors, effects: state.effects, value })
    }
}

fn notify(user: &str, message: String, about: Option<(String, String)>) {
    with_run(|run| run.effects.push(Effect::Notify { user: user.to_owned(), message, about }));
}

/// A moment a script passes as text.
fn moment(text: &str) -> Result<DateTime<FixedOffset>, Box<EvalAltResult>> {
    DateTime::parse_from_rfc3339(text).map_err(|_| format!("`{text}` is not a date and time").into())
}

/// Hours as a script holds them (a whole number, a decimal, a float or a field's text), in
/// whole minutes.
fn minutes_of(hours: &Dynamic) -> Result<i64, Box<EvalAltResult>> {
    let hours = if let Ok(n) = hours.as_int() {
        Decimal::from(n)
    } else if let Ok(f) = hours.as_float() {
        Decimal::try_from(f).map_err(|_| format!("{f} is not a number of hours"))?
    } else if let Some(d) = hours.clone().try_cast::<Decimal>() {
        d
    } else {
        let text = hours.to_string();
        Decimal::from_str(text.trim()).map_err(|_| format!("`{text}` is not a number of hours"))?
    };
    (hours * Decimal::from(60)).round().try_into().map_err(|_| "too many hours".into())
}

fn place(position: Position) -> (usize, usize) {
    (position.line().unwrap_or(0), position.position().unwrap_or(0))
}

/// A run's error as the engine reports it: what stopped it, and where.
fn failure(script: &str, error: EvalAltResult) -> RuleError {
    let (line, column) = place(error.position());
    let script = script.to_owned();
    let stopped = |reason: String| RuleError::Stopped { script: script.clone(), line, column, reason };
    match &error {
        EvalAltResult::ErrorTerminated(budget, _) => stopped(format!("ran longer than its {budget} ms budget")),
        EvalAltResult::ErrorTooManyOperations(_) => stopped("used more operations than a rule may".into()),
        EvalAltResult::ErrorStackOverflow(_) => stopped("called functions nested too deeply".into()),
        EvalAltResult::ErrorDataTooLarge(what, _) => stopped(format!("{what} grew past its limit")),
        EvalAltResult::ErrorRuntime(value, _) => RuleError::Failed { script, line, column, message: value.to_string() },
        other => RuleError::Failed { script, line, column, message: other.to_string() },
    }
}

/// A record for a script: exact numbers become decimals.
fn dynamic_record(record: &Map<String, Json>, decimals: &HashMap<String, u32>) -> Dynamic {
    let mut map = RhaiMap::new();
    for (name, value) in record {
        let dynamic = match (decimals.contains_key(name), value) {
            (true, Json::String(text)) => Decimal::from_str(text).map_or(Dynamic::UNIT, Dynamic::from_decimal),
            (true, Json::Number(n)) => Decimal::from_str(&n.to_string()).map_or(Dynamic::UNIT, Dynamic::from_decimal),
            _ => rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT),
        };
        map.insert(name.as_str().into(), dynamic);
    }
    Dynamic::from_map(map)
}

/// A record back from a script: decimals become exact text at their field's scale.
fn json_record(record: &Dynamic, decimals: &HashMap<String, u32>) -> Result<Json, Box<EvalAltResult>> {
    let Some(map) = record.read_lock::<RhaiMap>() else {
        return Ok(Json::Null);
    };
    let mut out = Map::new();
    for (name, value) in map.iter() {
        let json = match decimals.get(name.as_str()) {
            Some(scale) => match number_of(value) {
                Some(n) => {
                    Json::String(n.round_dp_with_strategy(*scale, RoundingStrategy::MidpointAwayFromZero).to_string())
                }
                None => to_json(value)?,
            },
            None => to_json(value)?,
        };
        out.insert(name.to_string(), json);
    }
    Ok(Json::Object(out))
}

/// Exact numbers are rounded half away from zero, as people round money.
fn round(n: Decimal, scale: u32) -> Decimal {
    n.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero)
}

/// A number a script computed, as a decimal: from a decimal, an integer or a float.
fn number_of(value: &Dynamic) -> Option<Decimal> {
    if let Ok(d) = value.as_decimal() {
        return Some(d);
    }
    if let Ok(i) = value.as_int() {
        return Some(Decimal::from(i));
    }
    value.as_float().ok().and_then(|f| Decimal::try_from(f).ok())
}

/// A script's value as JSON; decimals, wherever they are, become exact text.
fn to_json(value: &Dynamic) -> Result<Json, Box<EvalAltResult>> {
    if let Ok(d) = value.as_decimal() {
        return Ok(Json::String(d.normalize().to_string()));
    }
    if let Some(map) = value.read_lock::<RhaiMap>() {
        return map
            .iter()
            .map(|(k, v)| Ok((k.to_string(), to_json(v)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Json::Object);
    }
    if let Some(items) = value.read_lock::<rhai::Array>() {
        return items.iter().map(to_json).collect::<Result<Vec<_>, _>>().map(Json::Array);
    }
    rhai::serde::from_dynamic(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(record: Json) -> Input {
        let Json::Object(record) = record else { panic!("a record is an object") };
        Input {
            record,
            old: None,
            user: json!({"id": "u1"}),
            now: "2026-11-26T08:00:00+08:00".into(),
            decimals: HashMap::from([("price".to_owned(), 2), ("amount".to_owned(), 2), ("discount".to_owned(), 2)]),
            result_scale: None,
            reader: Arc::new(|entity, _| Ok(vec![json!({"entity": entity, "name": "found"})])),
        }
    }

    fn stopped(result: Result<Outcome, RuleError>) -> String {
        match result {
            Err(RuleError::Stopped { script, reason, .. }) => {
                assert_eq!(script, "bad");
                reason
            }
            other => panic!("expected the script to be stopped, got {other:?}"),
        }
    }

    #[test]
    fn a_rule_reads_and_sets_fields_raises_errors_and_asks_for_effects() {
        let rules = Rules::new(Limits::default());
        let source = r#"
            if record.name == "" { error("name", "a name is needed"); }
            record.amount = record.quantity * record.price * (1 - record.discount / 100);
            notify(user.id, `check ${record.name}`);
            create("activity", #{ name: "follow up" });
            find("customer", #{}).len()
        "#;
        let outcome = rules
            .run("lines", source, input(json!({"name": "", "quantity": 3, "price": "10.15", "discount": "12.50"})))
            .unwrap();
        assert_eq!(outcome.record["amount"], "26.64", "3 × 10.15 × 0.875 = 26.64375, rounded to the field's scale");
        assert_eq!(outcome.errors, vec![("name".to_owned(), "a name is needed".to_owned())]);
        assert_eq!(outcome.effects.len(), 2);
        assert_eq!(outcome.effects[0], Effect::Notify { user: "u1".into(), message: "check ".into(), about: None });
        assert_eq!(outcome.value, json!(1));
    }

    #[test]
    fn dates_are_counted_from_the_run_time() {
        let rules = Rules::new(Limits::default());
        let outcome =
            rules.run("dates", r#"[days_ago(30), days_between("2026-11-01", now)]"#, input(json!({}))).unwrap();
        assert_eq!(outcome.value, json!(["2026-10-27T08:00:00+08:00", 25]));
    }

    #[test]
    fn targets_are_counted_in_working_hours() {
        let rules = Rules::new(Limits::default());
        let source = r#"
            let weekdays = #{ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "18:00" };
            [add_working_hours("2026-12-04T17:00:00+08:00", "4.5", weekdays), add_hours(now, 2),
             add_working_hours(now, 1, weekdays), hours_between("2026-12-04T17:00:00+08:00", "2026-12-04T11:30:00Z")]
        "#;
        let outcome = rules.run("sla", source, input(json!({}))).unwrap();
        assert_eq!(
            outcome.value,
            json!(["2026-12-07T12:30:00+08:00", "2026-11-26T10:00:00+08:00", "2026-11-26T10:00:00+08:00", "2.5"])
        );
        let error =
            rules.run("sla", r#"add_working_hours(now, 1, #{ days: [], start: "9", end: "18" })"#, input(json!({})));
        assert!(matches!(error, Err(RuleError::Failed { .. })), "{error:?}");
    }

    #[test]
    fn a_message_may_come_in_each_language() {
        let rules = Rules::new(Limits::default());
        let source = r#"notify("u1", #{ "zh-CN": "你好", en: "Hello" }, "customer", "c1")"#;
        let outcome = rules.run("hello", source, input(json!({}))).unwrap();
        let Effect::Notify { message, about, .. } = &outcome.effects[0] else { panic!("a reminder") };
        assert_eq!(serde_json::from_str::<Json>(message).unwrap(), json!({"zh-CN": "你好", "en": "Hello"}));
        assert_eq!(about, &Some(("customer".to_owned(), "c1".to_owned())));
    }

    #[test]
    fn runaway_scripts_are_stopped_with_the_script_named() {
        let rules = Rules::new(Limits { budget: Duration::from_millis(30), ..Limits::default() });
        let began = Instant::now();
        let reason = stopped(rules.run("bad", "let x = 0; loop { x += 1; }", input(json!({}))));
        assert!(reason.contains("budget") || reason.contains("operations"), "{reason}");
        assert!(began.elapsed() < Duration::from_secs(2), "stopped promptly");

        let reason = stopped(rules.run("bad", "fn f(n) { f(n + 1) } f(0)", input(json!({}))));
        assert!(reason.contains("nested"), "{reason}");

        let reason = stopped(rules.run("bad", r#"let s = "x"; loop { s += s; }"#, input(json!({}))));
        assert!(reason.contains("limit"), "{reason}");
        let reason = stopped(rules.run("bad", "let a = []; loop { a.push(1); }", input(json!({}))));
        assert!(reason.contains("limit") || reason.contains("budget"), "{reason}");
    }

    #[test]
    fn scripts_have_no_way_out() {
        let rules = Rules::new(Limits::default());
        for (source, what) in [
            (r#"import "/etc/passwd" as p;"#, "import"),
            (r#"eval("1 + 1")"#, "eval"),
            (r#"open("/etc/passwd")"#, "a file function"),
            (r#"http_get("http://example.com")"#, "a network function"),
        ] {
            let error = rules.run("escape", source, input(json!({}))).expect_err(what);
            assert!(
                matches!(&error, RuleError::Syntax { script, .. } | RuleError::Failed { script, .. } if script == "escape"),
                "{what}: {error:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_script_line_and_column() {
        let rules = Rules::new(Limits::default());
        let error = rules.compile("typo", "let a = 1;\nlet b = ;").unwrap_err();
        assert!(matches!(error, RuleError::Syntax { line: 2, .. }), "{error:?}");
        let error = rules.run("thrower", "let a = 1;\n  throw \"no deal\";", input(json!({}))).unwrap_err();
        assert_eq!(
            error,
            RuleError::Failed { script: "thrower".into(), line: 2, column: 3, message: "no deal".into() }
        );
        assert!(error.to_string().contains("thrower") && error.to_string().contains("line 2"));
    }
}
