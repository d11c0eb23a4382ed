//! Rules on records: an entity's scripts around a save (defaults, assignment, derived fields,
//! formulas, validation, after-save effects), stage moves (required fields, guards,
//! probability, history), and the dry run of one script. Scripts run on a blocking thread,
//! so a slow one holds up no other request; whatever they do is checked like a user's input.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::meta::StageSetDoc;
use crm_model::{Catalog, Entity, FieldType, ScriptDoc, ScriptEvent, Storage, Value, value};
use crm_rules::{Effect, Input, RuleError};
use crm_store::records::col;
use crm_store::{Record, Tx, system};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::checks::stages_for_value;
use crate::records::read::{self, ListParams};

/// An effect a rule asked for, with the rule's name.
pub type Effects = Vec<(String, Effect)>;

/// A record as scripts see it: every live column by name.
pub fn record_json(entity: &Entity, record: &Record) -> Map<String, Json> {
    entity
        .columns()
        .iter()
        .zip(&record.values)
        .filter(|(f, _)| !f.archived)
        .map(|(f, v)| (f.name.to_string(), value::to_json(f, v)))
        .collect()
}

fn decimals(entity: &Entity) -> HashMap<String, u32> {
    entity
        .columns()
        .iter()
        .filter_map(|f| match f.storage() {
            Storage::Fixed(scale) => Some((f.name.to_string(), u32::from(scale))),
            _ => None,
        })
        .collect()
}

/// What a run needs besides the record: who, when, a reader, and the span of the request
/// (or job) it serves, for its logs on another thread.
struct Context {
    app: Arc<App>,
    principal: Principal,
    now: DateTime<Utc>,
    handle: tokio::runtime::Handle,
    span: tracing::Span,
}

impl Context {
    fn new(app: &App, principal: &Principal, now: DateTime<Utc>) -> Self {
        let (handle, span) = (tokio::runtime::Handle::current(), tracing::Span::current());
        Context { app: app.shared(), principal: principal.clone(), now, handle, span }
    }

    /// Runs a script, counted and timed for the metrics, logged in the request's span.
    fn run(&self, script: &str, source: &str, input: Input) -> Result<crm_rules::Outcome, RuleError> {
        let _entered = self.span.enter();
        let started = std::time::Instant::now();
        let outcome = self.app.rules.run(script, source, input);
        let seconds = started.elapsed().as_secs_f64();
        self.app.metrics.rule_runs.record(seconds);
        if let Err(e) = &outcome {
            self.app.metrics.rule_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(rule = script, error = %e, "a rule failed");
        } else {
            tracing::debug!(rule = script, seconds, "a rule ran");
        }
        outcome
    }

    /// The input of a run; `result` is the field a formula or default computes. Rules read
    /// every record, whoever runs them: a total or a check must not depend on who saves.
    /// What they write still goes through the caller's permissions.
    fn input(
        &self,
        decimals: HashMap<String, u32>,
        result: Option<&str>,
        record: Map<String, Json>,
        old: Option<Map<String, Json>>,
    ) -> Input {
        let result_scale = result.and_then(|field| decimals.get(field).copied());
        let (app, handle) = (self.app.clone(), self.handle.clone());
        Input {
            record,
            old,
            user: json!({"id": self.principal.user_id, "department": self.principal.department, "roles": self.principal.roles}),
            now: value::format_datetime(&self.now),
            decimals,
            result_scale,
            reader: Arc::new(move |entity, filter| {
                let filter = filter.as_object().filter(|f| !f.is_empty()).map(|_| filter.to_string());
                let params = ListParams { filter, limit: Some(200), ..ListParams::default() };
                let system = Principal::system(&app.catalog());
                let page = handle.block_on(read::list(&app, &system, entity, &params)).map_err(|e| e.to_string())?;
                let json = serde_json::to_value(&page).map_err(|e| e.to_string())?;
                Ok(json.get("data").and_then(Json::as_array).cloned().unwrap_or_default())
            }),
        }
    }
}

/// What the rules of one save decided.
struct Verdict {
    record: Map<String, Json>,
    errors: Vec<FieldError>,
    effects: Effects,
}

/// A record as scripts see it, with the record before the change (`old`) when there is one.
type Seen = (Map<String, Json>, Option<Map<String, Json>>);

/// Runs scripts of the given events in order on records (each with its `old`), all on one
/// blocking thread; a script that fails or is stopped fails its record only.
async fn run_events(
    app: &App,
    principal: &Principal,
    entity: &Arc<Entity>,
    scripts: Vec<ScriptDoc>,
    records: Vec<Seen>,
) -> ApiResult<Vec<Result<Verdict, RuleError>>> {
    let context = Context::new(app, principal, app.now());
    let entity = entity.clone();
    tokio::task::spawn_blocking(move || {
        let decimals = decimals(&entity);
        records.into_iter().map(|(record, old)| run_one(&context, &decimals, &scripts, record, old.as_ref())).collect()
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))
}

fn run_one(
    context: &Context,
    decimals: &HashMap<String, u32>,
    scripts: &[ScriptDoc],
    record: Map<String, Json>,
    old: Option<&Map<String, Json>>,
) -> Result<Verdict, RuleError> {
    let mut verdict = Verdict { record, errors: Vec::new(), effects: Vec::new() };
    for script in scripts {
        let name = script.name.as_str();
        let field = script.field.as_ref().map(ToString::to_string);
        if script.event == ScriptEvent::Default
            && field.as_ref().is_some_and(|f| verdict.record.get(f).is_some_and(|v| !v.is_null()))
        {
            continue;
        }
        let input = context.input(decimals.clone(), field.as_deref(), verdict.record.clone(), old.cloned());
        let outcome = context.run(name, &script.source, input)?;
        verdict.errors.extend(outcome.errors.into_iter().map(|(f, message)| FieldError::new(f, "rule", message)));
        match script.event {
            ScriptEvent::Formula | ScriptEvent::Default => {
                if let Some(field) = field {
                    verdict.record.insert(field, outcome.value);
                }
            }
            ScriptEvent::BeforeSave | ScriptEvent::Assignment => verdict.record = outcome.record,
            ScriptEvent::AfterSave | ScriptEvent::AfterDelete | ScriptEvent::AfterRestore => {
                verdict.effects.extend(outcome.effects.into_iter().map(|e| (name.to_owned(), e)))
            }
            ScriptEvent::Validate | ScriptEvent::BeforeStageMove | ScriptEvent::Scheduled => {}
        }
    }
    Ok(verdict)
}

/// A script that failed or was stopped: the caller's save is refused with the script's name,
/// line and column, never a 500.
pub(crate) fn script_failure(error: RuleError) -> ApiError {
    tracing::warn!(%error, "a rule failed");
    ApiError::Invalid(vec![script_error(error)])
}

fn script_error(error: RuleError) -> FieldError {
    FieldError::new("", "script_error", error.to_string())
}

/// Runs the save rules of an entity on records about to be written (with `olds`, a change),
/// changing each in place; for each, the effects to apply with its write or what is wrong
/// with it. All of them run on one blocking thread, so an import pays one trip for its rules.
pub async fn on_save(
    app: &App,
    principal: &Principal,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    records: &mut [Record],
    olds: &[Option<&Record>],
) -> ApiResult<Vec<Result<Effects, Vec<FieldError>>>> {
    let name = entity.name().as_str();
    let mut events = Vec::new();
    if olds.iter().all(Option::is_none) {
        events.extend([ScriptEvent::Default, ScriptEvent::Assignment]);
    }
    events.extend([ScriptEvent::BeforeSave, ScriptEvent::Formula, ScriptEvent::Validate, ScriptEvent::AfterSave]);
    let scripts: Vec<ScriptDoc> = events.iter().flat_map(|e| catalog.scripts(name, *e)).cloned().collect();
    if scripts.is_empty() {
        return Ok(records.iter().map(|_| Ok(Vec::new())).collect());
    }
    let inputs: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (record_json(entity, r), olds.get(i).copied().flatten().map(|o| record_json(entity, o))))
        .collect();
    let befores: Vec<Map<String, Json>> = inputs.iter().map(|(before, _)| before.clone()).collect();
    let verdicts = run_events(app, principal, entity, scripts, inputs).await?;
    Ok(records
        .iter_mut()
        .zip(befores)
        .zip(verdicts)
        .map(|((record, before), verdict)| {
            let verdict = verdict.map_err(|e| vec![script_error(e)])?;
            let mut errors = verdict.errors;
            errors.extend(take_changes(catalog, entity, record, &before, &verdict.record));
            if errors.is_empty() { Ok(verdict.effects) } else { Err(errors) }
        })
        .collect())
}

/// Runs the rules of a record going into the recycle bin or coming out of it; returns the
/// effects to apply with the move.
pub async fn on_bin(
    app: &App,
    principal: &Principal,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    record: &Record,
    restored: bool,
) -> ApiResult<Effects> {
    let event = if restored { ScriptEvent::AfterRestore } else { ScriptEvent::AfterDelete };
    let scripts: Vec<ScriptDoc> = catalog.scripts(entity.name().as_str(), event).into_iter().cloned().collect();
    if scripts.is_empty() {
        return Ok(Vec::new());
    }
    let inputs = vec![(record_json(entity, record), None)];
    let verdict = run_events(app, principal, entity, scripts, inputs).await?.pop().expect("one verdict per record");
    let verdict = verdict.map_err(script_failure)?;
    if verdict.errors.is_empty() { Ok(verdict.effects) } else { Err(ApiError::Invalid(verdict.errors)) }
}

/// Puts what scripts changed into the record, checked as any input is; a script may set
/// fields and the owner, nothing else.
fn take_changes(
    catalog: &Catalog,
    entity: &Entity,
    record: &mut Record,
    before: &Map<String, Json>,
    after: &Map<String, Json>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (name, value) in after {
        if before.get(name) == Some(value) {
            continue;
        }
        let Some(i) = entity.column_index(name) else {
            errors.push(FieldError::new(
                name.clone(),
                "rule",
                format!("a rule set `{name}`, which `{}` does not have", entity.name()),
            ));
            continue;
        };
        let field = &entity.columns()[i];
        let writable = !field.archived && (!field.kept_by_engine() || i == col::OWNER);
        if !writable {
            errors.push(FieldError::new(name.clone(), "rule", format!("a rule may not set `{name}`")));
            continue;
        }
        match value::parse(field, value, stages_for_value(catalog, field, value)) {
            Ok(parsed) => record.values[i] = parsed,
            Err(problem) => {
                errors.push(FieldError::new(name.clone(), problem.code, format!("a rule set it: {}", problem.message)))
            }
        }
    }
    errors
}

/// A move between stages found in a save, to be recorded with it.
pub struct StageChange {
    field: String,
    from: Option<String>,
    to: String,
}

/// Checks the moves between stages a save makes: the fields the new stage needs, the
/// entity's guards; and makes the probability follow the stage (unless the stage set lets
/// records override it and this save does). Returns the moves to record.
pub async fn check_stage_moves(
    app: &App,
    principal: &Principal,
    catalog: &Catalog,
    entity: &Arc<Entity>,
    record: &mut Record,
    old: Option<&Record>,
) -> ApiResult<Vec<StageChange>> {
    let mut moves = Vec::new();
    let mut errors = Vec::new();
    for field in entity.live_fields().filter(|f| f.field_type == FieldType::Stage) {
        let i = entity.column_index(field.name.as_str()).expect("a column of the entity");
        let before = old.map(|o| &o.values[i]);
        // A record whose stage set follows another field (a campaign's type) is checked
        // against its own set when either changes.
        let selector = field.stage_set_by.as_ref().and_then(|by| entity.column_index(by.field.as_str()));
        let selector_changed = selector.is_some_and(|s| old.is_none_or(|o| o.values[s] != record.values[s]));
        let moved = before != Some(&record.values[i]);
        if (!moved && !selector_changed) || record.values[i].is_null() {
            continue;
        }
        let selected = selector.and_then(|s| match &record.values[s] {
            Value::Text(value) => Some(value.as_str()),
            _ => None,
        });
        let Some(set) = catalog.stage_set_for(field, selected) else { continue };
        let Value::Text(mut to) = record.values[i].clone() else { continue };
        if !set.stages.iter().any(|s| s.name.as_str() == to) {
            // A new record's default stage comes from the default set: it starts at its own.
            let defaulted = old.is_none() && stages_default(field) == Some(to.as_str());
            match set.stages.first().filter(|_| defaulted) {
                Some(first) => {
                    to = first.name.to_string();
                    record.values[i] = Value::Text(to.clone());
                }
                None => {
                    errors.push(FieldError::new(
                        field.name.to_string(),
                        "invalid_stage",
                        format!("`{to}` is not a stage of `{}`", set.name),
                    ));
                    continue;
                }
            }
        }
        if !moved && before == Some(&record.values[i]) {
            continue;
        }
        let Some(stage) = set.stages.iter().find(|s| s.name.as_str() == to) else { continue };
        for needed in &stage.required {
            if entity.column_index(needed.as_str()).is_some_and(|n| record.values[n].is_null()) {
                let label = entity.field(needed.as_str()).map_or(needed.as_str(), |f| f.label.zh_cn.as_str());
                errors.push(FieldError::new(
                    needed.to_string(),
                    "required_for_stage",
                    format!("`{}` needs `{needed}` ({label}) filled in", stage.name),
                ));
            }
        }
        follow_probability(entity, set, stage.probability, record, old);
        let from = match before {
            Some(Value::Text(from)) => Some(from.clone()),
            _ => None,
        };
        moves.push(StageChange { field: field.name.to_string(), from, to });
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if !moves.is_empty() {
        let guards: Vec<ScriptDoc> =
            catalog.scripts(entity.name().as_str(), ScriptEvent::BeforeStageMove).into_iter().cloned().collect();
        if !guards.is_empty() {
            let inputs = vec![(record_json(entity, record), old.map(|o| record_json(entity, o)))];
            let verdict = run_events(app, principal, entity, guards, inputs).await?.pop().expect("one verdict");
            let verdict = verdict.map_err(script_failure)?;
            // A guard's refusal is said on the stage field unless it names another.
            let stage_field = &moves[0].field;
            let errors: Vec<FieldError> = verdict
                .errors
                .into_iter()
                .map(|e| if e.field.is_empty() { FieldError { field: stage_field.clone(), ..e } } else { e })
                .collect();
            if !errors.is_empty() {
                return Err(ApiError::Invalid(errors));
            }
        }
    }
    Ok(moves)
}

/// The stage a new record gets when its stage is left empty.
fn stages_default(field: &crm_model::FieldDef) -> Option<&str> {
    field.default.as_ref().and_then(Json::as_str)
}

/// The probability field follows the stage, unless the stage set allows an override and
/// this save sets one.
fn follow_probability(entity: &Entity, set: &StageSetDoc, probability: u8, record: &mut Record, old: Option<&Record>) {
    let Some(i) = entity.column_index("probability").filter(|i| entity.columns()[*i].field_type == FieldType::Percent)
    else {
        return;
    };
    let overridden =
        old.is_some_and(|o| o.values[i] != record.values[i]) || (old.is_none() && !record.values[i].is_null());
    if !(set.probability_override && overridden) {
        record.values[i] = Value::Fixed(i64::from(probability) * 100);
    }
}

/// Records the moves of a save, with the time spent in the stage each leaves.
pub async fn record_stage_moves(
    tx: &mut Tx,
    entity: &Entity,
    record: &Record,
    moves: &[StageChange],
    actor: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    for m in moves {
        let since = match system::last_stage_move(tx, entity.name().as_str(), record.id(), &m.field).await? {
            Some(at) => Some(at),
            None => match record.values[col::CREATED_AT] {
                Value::Datetime(at) if m.from.is_some() => Some(at),
                _ => None,
            },
        };
        let stage_move = system::StageMove {
            entity: entity.name().as_str(),
            record_id: record.id(),
            field: &m.field,
            from: m.from.as_deref(),
            to: &m.to,
            actor,
            at: now,
            seconds_in_previous: since.map(|s| (now - s).num_seconds().max(0)),
        };
        system::insert_stage_move(tx, &stage_move).await?;
    }
    Ok(())
}

/// Runs one rule on its own at `now` (a scheduled rule, a dry run), for a record of `entity`
/// if it has one.
pub async fn run_alone(
    app: &App,
    principal: &Principal,
    script: &ScriptDoc,
    entity: Option<Arc<Entity>>,
    record: Map<String, Json>,
    old: Option<Map<String, Json>>,
    now: DateTime<Utc>,
) -> ApiResult<Result<crm_rules::Outcome, RuleError>> {
    let context = Context::new(app, principal, now);
    let script = script.clone();
    tokio::task::spawn_blocking(move || {
        let result = script.field.as_ref().map(|f| f.as_str());
        let input = context.input(entity.as_deref().map(decimals).unwrap_or_default(), result, record, old);
        context.run(script.name.as_str(), &script.source, input)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))
}

/// An effect that could not be applied refuses the save, saying which rule asked for it.
pub(crate) fn blame(what: &str, error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid(errors) => ApiError::Invalid(
            errors.into_iter().map(|e| FieldError { message: format!("{what}: {}", e.message), ..e }).collect(),
        ),
        ApiError::NotFound(message) | ApiError::Forbidden { message, .. } => {
            ApiError::Invalid(vec![FieldError::new("", "rule", format!("{what}: {message}"))])
        }
        other => other,
    }
}

/// `POST /api/v1/meta/scripts/{name}/dry-run`: runs one rule against a stored record (`id`)
/// or a supplied one (`record`) and says what it would change, raise and do; nothing is saved.
pub async fn dry_run(app: &App, principal: &Principal, name: &str, body: &Json) -> ApiResult<Json> {
    principal.require_admin()?;
    let catalog = app.catalog();
    let script = catalog.docs().scripts.get(name).ok_or_else(|| ApiError::not_found(format!("no script `{name}`")))?;
    let entity_name = script.entity.as_ref().map(ToString::to_string);
    let (entity, record, old) = match &entity_name {
        Some(entity_name) => {
            let entity = principal.entity(&catalog, entity_name, crm_model::Action::Read)?.clone();
            let stored = match body.get("id").and_then(Json::as_str) {
                Some(id) => {
                    let out = read::get(app, principal, entity_name, id, None).await?;
                    match serde_json::to_value(out).map_err(|e| ApiError::Internal(e.into()))? {
                        Json::Object(map) => Some(map),
                        _ => None,
                    }
                }
                None => None,
            };
            let mut record = stored.clone().unwrap_or_default();
            if let Some(Json::Object(supplied)) = body.get("record") {
                record.extend(supplied.clone());
            }
            (Some(entity), record, stored)
        }
        None => (None, Map::new(), None),
    };
    let outcome = run_alone(app, principal, script, entity, record.clone(), old, app.now()).await?;
    Ok(match outcome {
        Ok(outcome) => {
            let changes: Map<String, Json> = outcome
                .record
                .iter()
                .filter(|(k, v)| record.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), json!([record.get(k).cloned().unwrap_or(Json::Null), v])))
                .collect();
            let effects: Vec<Json> = outcome
                .effects
                .iter()
                .map(|e| match e {
                    Effect::Notify { user, message, about } => {
                        json!({"notify": {"user": user, "message": message, "about": about}})
                    }
                    Effect::Create { entity, values } => json!({"create": {"entity": entity, "values": values}}),
                    Effect::Update { entity, id, values } => {
                        json!({"update": {"entity": entity, "id": id, "values": values}})
                    }
                })
                .collect();
            let errors: Vec<Json> = outcome.errors.iter().map(|(f, m)| json!({"field": f, "message": m})).collect();
            json!({"ok": true, "changes": changes, "errors": errors, "effects": effects, "value": outcome.value})
        }
        Err(error) => json!({"ok": false, "error": error.to_string()}),
    })
}

/// The record a rule's reminder is about, when the rule named one: an entity of the catalog
/// and a record id.
pub fn reminder_about(catalog: &Catalog, about: Option<(String, String)>) -> ApiResult<Option<(String, Uuid)>> {
    let Some((entity, id)) = about else { return Ok(None) };
    let unknown = || ApiError::field("", "rule", format!("a reminder is about `{entity}` `{id}`, which is no record"));
    let id = Uuid::parse_str(&id).map_err(|_| unknown())?;
    if catalog.entity(&entity).is_none() {
        return Err(unknown());
    }
    Ok(Some((entity, id)))
}
