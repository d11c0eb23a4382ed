//! The save pipeline: every write of a record — from the API, the screens, imports, rules'
//! effects, approvals, lead conversion, account administration and the first start — goes
//! through a [`Unit`], and each record through the same steps in the same order:
//!
//! 1. permission: the action on the entity, and the record within the caller's scope;
//! 2. parse: the caller's values, refused where they may not write;
//! 3. defaults, for a new record;
//! 4. rules: default, assignment, before_save, formula, validate, after_save (after_delete,
//!    after_restore for the recycle bin);
//! 5. stage checks: fields the stage needs, guards, probability;
//! 6. required fields;
//! 7. references, through the caller's read scope;
//! 8. uniqueness, and likely duplicates under the rules that block;
//! 9. locks: the record's approval and its parent's (and accounts: nobody disables themself,
//!    the last administrator stays);
//! 10. the write, in one transaction, with audit rows naming the source, outbox events, stage
//!     history, reminders, rollups and sign-outs;
//! 11. after the commit: caches forgotten.
//!
//! Steps 1–9 read committed data and run rules before the writer's turn is taken; the write
//! checks each changed record's version again, so a slow rule costs only its own request.
//! Effects of rules (records they create or change) go through the same steps, in the same
//! unit, and commit with the write that caused them.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::filter::ScopeTerm;
use crm_model::{Action, Catalog, Entity, Filter, USER_ENTITY, Value};
use crm_rules::Effect;
use crm_store::records::{self as store, col};
use crm_store::system::{self, AuditEntry, OutboxEvent};
use crm_store::{On, Record, StoreError, Tx};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use super::checks::{self, Referring};
use super::out::{RecordOut, visible_columns};
use super::read::parse_id;
use super::{accounts, locks};
use crate::access::{DepartmentTree, Principal};
use crate::app::App;
use crate::duplicates;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::rules::{self, Effects, StageChange};

/// Where a write comes from; kept on its audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Screen,
    Import,
    /// A rule's effect.
    Rule,
    /// A rollup kept by the engine.
    Rollup,
    Approval,
    Conversion,
    /// Account administration: users, transfers.
    Admin,
    /// The first start.
    Setup,
    /// A merge of duplicates, or its undo: the survivor, the losers and every record moved
    /// from a loser to the survivor.
    Merge,
    /// A job of the schedule, such as the weekly forecast snapshot.
    Schedule,
    /// Sending mail: a mailing's progress, and a recipient who unsubscribed.
    Mail,
    /// A visitor's submission of a web form or a survey.
    WebForm,
    /// A run of an ERP sync mapping.
    Sync,
}

impl Source {
    /// Every source, for the places that list them (the API's description).
    pub const ALL: [Source; 14] = [
        Source::Api,
        Source::Screen,
        Source::Import,
        Source::Rule,
        Source::Rollup,
        Source::Approval,
        Source::Conversion,
        Source::Admin,
        Source::Setup,
        Source::Merge,
        Source::Schedule,
        Source::Mail,
        Source::WebForm,
        Source::Sync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Screen => "screen",
            Source::Import => "import",
            Source::Rule => "rule",
            Source::Rollup => "rollup",
            Source::Approval => "approval",
            Source::Conversion => "conversion",
            Source::Admin => "admin",
            Source::Setup => "setup",
            Source::Merge => "merge",
            Source::Schedule => "schedule",
            Source::Mail => "mail",
            Source::WebForm => "web_form",
            Source::Sync => "sync",
        }
    }
}

/// What a write does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    /// A change, named for the audit log: update, assign, approval.
    Change(&'static str),
    Delete,
    Restore,
}

impl Kind {
    fn action(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Change(action) => action,
            Kind::Delete => "delete",
            Kind::Restore => "restore",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Kind::Create => "created",
            Kind::Change(_) => "updated",
            Kind::Delete => "deleted",
            Kind::Restore => "restored",
        }
    }
}

/// A write the pipeline has checked, waiting for its transaction.
struct Write {
    entity: Arc<Entity>,
    source: Source,
    kind: Kind,
    /// The record as read (none for a new one) and as it will be stored.
    before: Option<Record>,
    after: Record,
    /// The columns a change writes.
    changed: Vec<usize>,
    moves: Vec<StageChange>,
    /// Whether the lock of the record's parent is checked again as it is written (approvals
    /// and the engine's own writes are not held by locks).
    guarded: bool,
}

impl Write {
    fn is(&self, entity: &Entity, id: Uuid) -> bool {
        self.entity.name() == entity.name() && self.after.id() == id
    }
}

/// A reminder a rule asked for, left with the write.
struct Notice {
    user: Uuid,
    message: String,
    entity: String,
    record_id: Uuid,
    rule: String,
}

/// A write of the caller's own in the transaction (a credential, an approval step).
type Also<'a> = Box<
    dyn for<'t> FnOnce(&'t mut Tx, DateTime<Utc>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
        + Send
        + Sync
        + 'a,
>;

/// Most records one import request takes.
pub const MAX_IMPORT: usize = 10_000;

/// How deep rules may go in making writes that make writes.
const MAX_DEPTH: u8 = 4;

/// Writes checked one at a time, then committed together: all of them or none.
pub struct Unit<'a> {
    app: &'a App,
    principal: &'a Principal,
    source: Source,
    catalog: Arc<Catalog>,
    tree: Arc<DepartmentTree>,
    now: DateTime<Utc>,
    writes: Vec<Write>,
    notices: Vec<Notice>,
    also: Vec<Also<'a>>,
    held: Vec<Held>,
    taken: Vec<Taken>,
    depth: u8,
}

/// A record that must still be at a version when the unit's transaction starts, or the unit
/// is refused with the reason given.
struct Held {
    entity: Arc<Entity>,
    id: Uuid,
    version: i64,
    refusal: String,
}

/// A value no live record may hold in a field when a unit's transaction starts, or the unit
/// is refused with the error given.
struct Taken {
    entity: Arc<Entity>,
    field: String,
    value: Value,
    refusal: ApiError,
}

/// A place in a unit's preparation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    writes: usize,
    notices: usize,
    also: usize,
}

/// The records a unit stored.
pub struct Committed {
    records: Vec<(Arc<Entity>, Record)>,
}

impl Committed {
    pub fn record(&self, id: Uuid) -> Option<&Record> {
        self.records.iter().map(|(_, r)| r).find(|r| r.id() == id)
    }

    /// One stored record as its writer may see it.
    pub fn out(mut self, principal: &Principal, id: Uuid) -> ApiResult<RecordOut> {
        let at = self.records.iter().position(|(_, r)| r.id() == id);
        let (entity, record) = self.records.swap_remove(at.ok_or_else(|| ApiError::not_found("no record"))?);
        let fields = visible_columns(&entity, principal.hidden(entity.name().as_str()));
        Ok(RecordOut { entity, record, fields })
    }
}

/// Whose scope a record must be in to be changed.
#[derive(Clone, Copy)]
pub(super) enum Reach {
    Edit,
    Assign,
    /// Records waiting in a public pool the caller sees.
    Claim,
}

impl<'a> Unit<'a> {
    pub async fn new(app: &'a App, principal: &'a Principal, source: Source) -> ApiResult<Self> {
        Ok(Unit {
            app,
            principal,
            source,
            catalog: app.catalog(),
            tree: app.departments().await?,
            now: app.now(),
            writes: Vec::new(),
            notices: Vec::new(),
            also: Vec::new(),
            held: Vec::new(),
            taken: Vec::new(),
            depth: 0,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Whether the unit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.also.is_empty()
    }

    fn entity(&self, name: &str, action: Action) -> ApiResult<Arc<Entity>> {
        Ok(self.principal.entity(&self.catalog, name, action)?.clone())
    }

    /// A new record from the caller's values; returns its id.
    pub async fn create(&mut self, entity_name: &str, body: &Json) -> ApiResult<Uuid> {
        self.create_with_id(entity_name, body, None).await
    }

    /// A new record whose id the engine chose (a user whose credential is written with it).
    pub(crate) async fn create_with_id(&mut self, entity_name: &str, body: &Json, id: Option<Uuid>) -> ApiResult<Uuid> {
        let entity = self.entity(entity_name, Action::Create)?;
        let body = checks::body_object(body, "a record")?;
        let ids = self.prepare_new(&entity, &[body], id).await?;
        Ok(ids[0])
    }

    /// New records, all or none (an import); errors are named `records/{row}/{field}`.
    pub async fn create_many(&mut self, entity_name: &str, rows: &[Json]) -> ApiResult<Vec<Uuid>> {
        let entity = self.entity(entity_name, Action::Import)?;
        if rows.len() > MAX_IMPORT {
            return Err(ApiError::bad_request("too_many", format!("at most {MAX_IMPORT} records per request")));
        }
        let bodies = rows.iter().map(|r| checks::body_object(r, "each record")).collect::<ApiResult<Vec<_>>>()?;
        self.prepare_new(&entity, &bodies, None).await
    }

    /// The catalog the unit's writes are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A change of the caller's values; `version` is the one the caller read, if they did.
    pub async fn update(&mut self, entity_name: &str, id: &str, body: &Json, version: Option<i64>) -> ApiResult<()> {
        let entity = self.entity(entity_name, Action::Edit)?;
        let id = parse_id(id)?;
        let body = checks::body_object(body, "a change")?;
        let values =
            checks::parse_values(&self.catalog, &entity, self.principal, body, "", false).map_err(ApiError::Invalid)?;
        let current = self.current(&entity, id, Reach::Edit, false).await?;
        if let Some(version) = version
            && current.version() != version
        {
            return Err(ApiError::Conflict(format!(
                "this record was changed by someone else (version {} is current, you sent {version}); reload it and apply your change again",
                current.version()
            )));
        }
        self.change(entity, current, values, Kind::Change("update"), true).await
    }

    /// A new owner: by those who may assign, for records they may change or see in a pool;
    /// by anyone, for records they may change handed back to a pool (`to_pool`).
    pub async fn assign(&mut self, entity_name: &str, id: Uuid, owner: Uuid, to_pool: bool) -> ApiResult<()> {
        let entity = self.entity(entity_name, Action::Read)?;
        let reach = if self.principal.access.allows(entity_name, Action::Assign) {
            Reach::Assign
        } else if to_pool {
            self.entity(entity_name, Action::Edit)?;
            Reach::Edit
        } else {
            return Err(ApiError::forbidden(format!("your roles do not allow `assign` on `{entity_name}`")));
        };
        let current = self.current(&entity, id, reach, false).await?;
        self.change(entity, current, vec![(col::OWNER, Value::Uuid(owner))], Kind::Change("assign"), true).await
    }

    /// Takes a record waiting in a public pool as the caller's own (领取); the caller's roles
    /// must see that pool. The claim limits are the bulk operation's to count.
    pub async fn claim(&mut self, entity_name: &str, id: Uuid) -> ApiResult<()> {
        let entity = self.entity(entity_name, Action::Read)?;
        if !self.principal.sees_pool(&self.catalog, entity_name) {
            return Err(ApiError::forbidden(format!("your roles do not see the pool of `{entity_name}`")));
        }
        let current = self.current(&entity, id, Reach::Claim, false).await?;
        let owner = vec![(col::OWNER, Value::Uuid(self.principal.user_id))];
        self.change(entity, current, owner, Kind::Change("claim"), true).await
    }

    /// A change the engine makes for a caller whose right to it was checked by the caller
    /// (an approval step, an administrator's transfer): locks do not hold it.
    pub(crate) async fn change_checked(
        &mut self,
        entity: &Arc<Entity>,
        current: Record,
        values: Vec<(usize, Value)>,
        action: &'static str,
    ) -> ApiResult<()> {
        self.change(entity.clone(), current, values, Kind::Change(action), false).await
    }

    /// Into the recycle bin.
    pub async fn delete(&mut self, entity_name: &str, id: Uuid) -> ApiResult<()> {
        let entity = self.entity(entity_name, Action::Delete)?;
        if entity.name().as_str() == USER_ENTITY {
            return Err(accounts::users_are_not_deleted());
        }
        let current = self.current(&entity, id, Reach::Edit, false).await?;
        let effects = rules::on_bin(self.app, self.principal, &self.catalog, &entity, &current, false).await?;
        locks::check_own_lock(self.principal, &entity, &current)?;
        self.check_parent_unlocked(&entity, &current).await?;
        let mut next = current.clone();
        next.values[col::DELETED_AT] = Value::Datetime(self.now);
        self.queue(entity.clone(), Kind::Delete, Some(current), next, vec![col::DELETED_AT], Vec::new(), true);
        self.apply_effects(&entity, id, effects).await
    }

    /// Out of the recycle bin, unless a live record now holds one of its unique values.
    pub async fn restore(&mut self, entity_name: &str, id: Uuid) -> ApiResult<()> {
        self.restore_as(entity_name, id, Action::Restore).await
    }

    /// Out of the recycle bin for those whose roles allow `action`: the undo of a merge takes
    /// its losers back with the right that put them there (delete).
    pub(crate) async fn restore_as(&mut self, entity_name: &str, id: Uuid, action: Action) -> ApiResult<()> {
        let entity = self.entity(entity_name, action)?;
        let current = self.current(&entity, id, Reach::Edit, true).await?;
        let effects = rules::on_bin(self.app, self.principal, &self.catalog, &entity, &current, true).await?;
        refuse(checks::unique(&self.app.db, &entity, &current, &checks::unique_columns(&entity), "").await?)?;
        locks::check_own_lock(self.principal, &entity, &current)?;
        self.check_parent_unlocked(&entity, &current).await?;
        let mut next = current.clone();
        next.values[col::DELETED_AT] = Value::Null;
        self.queue(entity.clone(), Kind::Restore, Some(current), next, vec![col::DELETED_AT], Vec::new(), true);
        self.apply_effects(&entity, id, effects).await
    }

    /// Another write of the caller's in the same transaction.
    pub fn also(
        &mut self,
        write: impl for<'t> FnOnce(
            &'t mut Tx,
            DateTime<Utc>,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
        + Send
        + Sync
        + 'a,
    ) {
        self.also.push(Box::new(write));
    }

    /// Requires a record to be at `version` when the writes begin, whatever the unit does to
    /// it after (an undo that rollups of its own writes move on); refused with `refusal`.
    pub(crate) fn hold(&mut self, entity: &Arc<Entity>, id: Uuid, version: i64, refusal: String) {
        self.held.push(Held { entity: entity.clone(), id, version, refusal });
    }

    /// Refuses the unit with `refusal` if, when its writes begin, a live record of `entity`
    /// holds `value` in `field` (an order of a quote the unit turns into one). It is checked
    /// after the holds, which lock their records: two units that hold the same record and
    /// refuse the same value are written one after the other, and the second is refused.
    pub(crate) fn refuse_if_taken(&mut self, entity: &Arc<Entity>, field: &str, value: Value, refusal: ApiError) {
        self.taken.push(Taken { entity: entity.clone(), field: field.to_owned(), value, refusal });
    }

    /// The record a change starts from: as this unit left it, or as stored, within the
    /// caller's scope (in the recycle bin or not, as `deleted` says). Outside the scope it
    /// does not exist, unless the caller may see it (403).
    async fn current(&self, entity: &Entity, id: Uuid, reach: Reach, deleted: bool) -> ApiResult<Record> {
        if let Some(write) = self.writes.iter().rev().find(|w| w.is(entity, id)) {
            return Ok(write.after.clone());
        }
        let scope = match reach {
            Reach::Edit => self.principal.edit_scope(&self.tree, entity),
            Reach::Assign => self.principal.assign_scope(&self.tree, entity),
            Reach::Claim => {
                let pools = Filter::Scope(Box::new(ScopeTerm::OwnedByPools));
                match self.principal.read_scope(&self.tree, entity) {
                    Some(read) => Some(Filter::And(vec![read, pools])),
                    None => Some(pools),
                }
            }
        };
        match store::get(&self.app.db, entity, id, scope.as_ref()).await? {
            Some(record) if record.is_deleted() == deleted => return Ok(record),
            Some(_) => return Err(ApiError::not_found(format!("no {} `{id}`", entity.name()))),
            None => {}
        }
        let visible = self.principal.read_scope(&self.tree, entity);
        match store::get(&self.app.db, entity, id, visible.as_ref()).await? {
            Some(record) if record.is_deleted() == deleted => {
                Err(ApiError::forbidden("you may see this record but not change it"))
            }
            _ => Err(ApiError::not_found(format!("no {} `{id}`", entity.name()))),
        }
    }

    /// Ids of the records this unit creates or brings back from the recycle bin, by entity:
    /// references to them are good.
    fn created(&self) -> HashMap<&str, HashSet<Uuid>> {
        let mut created: HashMap<&str, HashSet<Uuid>> = HashMap::new();
        for write in self.writes.iter().filter(|w| matches!(w.kind, Kind::Create | Kind::Restore)) {
            created.entry(write.entity.name().as_str()).or_default().insert(write.after.id());
        }
        created
    }

    /// Whether rules that block likely duplicates hold this unit's writes: not a merge's,
    /// which is how duplicates are resolved.
    fn checks_duplicates(&self) -> bool {
        self.source != Source::Merge
    }

    /// The records of an entity this unit puts in the recycle bin.
    fn leaving(&self, entity: &Entity) -> HashSet<Uuid> {
        self.writes
            .iter()
            .filter(|w| w.kind == Kind::Delete && w.entity.name() == entity.name())
            .map(|w| w.after.id())
            .collect()
    }

    /// Steps 2–9 for new records, then their rules' effects.
    async fn prepare_new(
        &mut self,
        entity: &Arc<Entity>,
        bodies: &[&Map<String, Json>],
        id: Option<Uuid>,
    ) -> ApiResult<Vec<Uuid>> {
        let several = bodies.len() > 1;
        let prefix = |row: usize| if several { format!("records/{row}/") } else { String::new() };
        let defaults = checks::new_values(&self.catalog, entity, self.principal, self.now);
        // Every error is said at once: values refused, what the rules say of the others, and
        // what is still missing once the rules have filled fields in — not a value refused
        // already.
        let mut errors = Vec::new();
        let mut refused = HashSet::new();
        let mut records = Vec::with_capacity(bodies.len());
        for (row, body) in bodies.iter().enumerate() {
            let mut record = Record { values: defaults.clone() };
            record.values[col::ID] = Value::Uuid(id.unwrap_or_else(Uuid::now_v7));
            match checks::parse_values(&self.catalog, entity, self.principal, body, &prefix(row), true) {
                Ok(values) => {
                    for (i, value) in values {
                        record.values[i] = value;
                    }
                }
                Err(e) => {
                    refused.insert(row);
                    errors.extend(e);
                }
            }
            records.push(record);
        }
        let olds = vec![None; records.len()];
        let verdicts = rules::on_save(self.app, self.principal, &self.catalog, entity, &mut records, &olds).await?;
        let mut effects = Vec::with_capacity(records.len());
        for (row, verdict) in verdicts.into_iter().enumerate() {
            match verdict {
                Ok(found) => effects.push(found),
                Err(found) => {
                    effects.push(Vec::new());
                    if !refused.contains(&row) {
                        errors.extend(named(found, &prefix(row)));
                    }
                }
            }
        }
        let mut moves = Vec::with_capacity(records.len());
        for (row, record) in records.iter_mut().enumerate() {
            match rules::check_stage_moves(self.app, self.principal, &self.catalog, entity, record, None).await {
                Ok(found) => moves.push(found),
                Err(ApiError::Invalid(found)) if !refused.contains(&row) => errors.extend(named(found, &prefix(row))),
                Err(ApiError::Invalid(_)) => moves.push(Vec::new()),
                Err(other) => return Err(other),
            }
            // A row whose values were refused holds none of them: only what it did not send
            // is missing.
            let sent = |e: &FieldError| {
                let name = e.field.strip_prefix(&prefix(row)).unwrap_or(&e.field);
                refused.contains(&row) && bodies[row].get(name).is_some_and(|v| !v.is_null() && v != "")
            };
            let said = |e: &FieldError| errors.iter().any(|known: &FieldError| known.field == e.field);
            let missing = checks::missing_required(entity, record, None, &prefix(row));
            let missing: Vec<FieldError> = missing.into_iter().filter(|e| !said(e) && !sent(e)).collect();
            errors.extend(missing);
        }
        refuse(errors)?;
        let referring: Vec<Referring<'_>> = records
            .iter()
            .enumerate()
            .map(|(row, record)| Referring { record, only: None, prefix: prefix(row) })
            .collect();
        let mut created = self.created();
        created.entry(entity.name().as_str()).or_default().extend(records.iter().map(Record::id));
        let mut errors =
            checks::references(&self.app.db, &self.catalog, entity, self.principal, &self.tree, &referring, &created)
                .await?;
        drop(referring);
        let unique = checks::unique_columns(entity);
        if !unique.is_empty() {
            for (row, record) in records.iter().enumerate() {
                errors.extend(checks::unique(&self.app.db, entity, record, &unique, &prefix(row)).await?);
            }
            if several {
                errors.extend(checks::duplicates_within(entity, &records, &unique));
            }
        }
        if self.checks_duplicates() {
            let leaving = self.leaving(entity);
            for (row, record) in records.iter().enumerate() {
                errors.extend(duplicates::blocking(self.app, entity, record, None, &leaving, &prefix(row)).await?);
            }
        }
        refuse(errors)?;
        if entity.def.locked_by.is_some() {
            for record in &records {
                self.check_parent_unlocked(entity, record).await?;
            }
        }
        let ids: Vec<Uuid> = records.iter().map(Record::id).collect();
        for (record, moves) in records.into_iter().zip(moves) {
            self.queue(entity.clone(), Kind::Create, None, record, Vec::new(), moves, true);
        }
        for (id, found) in ids.iter().zip(effects) {
            self.apply_effects(entity, *id, found).await?;
        }
        Ok(ids)
    }

    /// Steps 4–9 for a change of `current`, then its rules' effects.
    async fn change(
        &mut self,
        entity: Arc<Entity>,
        current: Record,
        values: Vec<(usize, Value)>,
        kind: Kind,
        guarded: bool,
    ) -> ApiResult<()> {
        let mut next = current.clone();
        for (i, value) in values {
            next.values[i] = value;
        }
        if next.values == current.values {
            return Ok(());
        }
        let verdict = rules::on_save(
            self.app,
            self.principal,
            &self.catalog,
            &entity,
            std::slice::from_mut(&mut next),
            &[Some(&current)],
        )
        .await?;
        let effects = verdict.into_iter().next().expect("one verdict per record").map_err(ApiError::Invalid)?;
        let moves =
            rules::check_stage_moves(self.app, self.principal, &self.catalog, &entity, &mut next, Some(&current))
                .await?;
        let changed: Vec<usize> = (0..next.values.len()).filter(|i| next.values[*i] != current.values[*i]).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut errors = checks::missing_required(&entity, &next, Some(&changed), "");
        let referring = [Referring { record: &next, only: Some(&changed), prefix: String::new() }];
        errors.extend(
            checks::references(
                &self.app.db,
                &self.catalog,
                &entity,
                self.principal,
                &self.tree,
                &referring,
                &self.created(),
            )
            .await?,
        );
        errors.extend(checks::unique(&self.app.db, &entity, &next, &changed, "").await?);
        if self.checks_duplicates() {
            let leaving = self.leaving(&entity);
            errors.extend(duplicates::blocking(self.app, &entity, &next, Some(&changed), &leaving, "").await?);
        }
        refuse(errors)?;
        accounts::check_change(self.app, &self.catalog, self.principal, &entity, &current, &next).await?;
        if guarded {
            locks::check_own_lock(self.principal, &entity, &current)?;
            self.check_parent_unlocked(&entity, &current).await?;
            self.check_parent_unlocked(&entity, &next).await?;
        }
        let id = next.id();
        self.queue(entity.clone(), kind, Some(current), next, changed, moves, guarded);
        self.apply_effects(&entity, id, effects).await
    }

    /// Refuses a write under a parent whose approval locks it, for those who may not approve.
    async fn check_parent_unlocked(&self, entity: &Entity, record: &Record) -> ApiResult<()> {
        let Some((parent_entity, parent_id)) = locks::locking_parent(&self.catalog, entity, record) else {
            return Ok(());
        };
        let parent = match self.writes.iter().rev().find(|w| w.is(&parent_entity, parent_id)) {
            Some(write) => Some(write.after.clone()),
            None => store::get(&self.app.db, &parent_entity, parent_id, None).await?,
        };
        locks::check_parent_lock(self.principal, &parent_entity, parent.as_ref())
    }

    /// Puts a checked write in the unit.
    #[expect(clippy::too_many_arguments, reason = "the parts of one write")]
    fn queue(
        &mut self,
        entity: Arc<Entity>,
        kind: Kind,
        before: Option<Record>,
        mut after: Record,
        changed: Vec<usize>,
        moves: Vec<StageChange>,
        guarded: bool,
    ) {
        if let Some(before) = &before {
            after.values[col::VERSION] = Value::Integer(before.version() + 1);
            after.values[col::UPDATED_AT] = Value::Datetime(self.now);
            after.values[col::UPDATED_BY] = Value::Uuid(self.principal.user_id);
        }
        self.writes.push(Write { entity, source: self.source, kind, before, after, changed, moves, guarded });
    }

    /// Where the unit stands, to go back to if what follows is refused (one id of a bulk
    /// operation).
    pub(crate) fn mark(&self) -> Mark {
        Mark { writes: self.writes.len(), notices: self.notices.len(), also: self.also.len() }
    }

    /// Forgets what was prepared since `mark`.
    pub(crate) fn rewind(&mut self, mark: Mark) {
        self.writes.truncate(mark.writes);
        self.notices.truncate(mark.notices);
        self.also.truncate(mark.also);
    }

    /// Prepares what a rule asked for with the write of `record_id` that ran it: records
    /// created or changed go through the pipeline as the caller's own; reminders are left
    /// with it.
    async fn apply_effects(&mut self, origin: &Entity, record_id: Uuid, effects: Effects) -> ApiResult<()> {
        if effects.is_empty() {
            return Ok(());
        }
        if self.depth >= MAX_DEPTH {
            return Err(ApiError::field(
                "",
                "rule",
                "rules make writes that make writes too deeply; check their effects",
            ));
        }
        let entity = origin.name().to_string();
        self.depth += 1;
        let source = std::mem::replace(&mut self.source, Source::Rule);
        let mut result = Ok(());
        for (rule, effect) in effects {
            let outcome = match effect {
                Effect::Notify { user, message, about } => match Uuid::parse_str(&user) {
                    Ok(user) => rules::reminder_about(&self.catalog, about).map(|about| {
                        let (entity, record_id) = about.unwrap_or_else(|| (entity.clone(), record_id));
                        self.notices.push(Notice { user, message, entity, record_id, rule: rule.clone() });
                    }),
                    Err(_) => Err(ApiError::field(
                        "",
                        "rule",
                        format!("rule `{rule}` notified `{user}`, which is not a user id"),
                    )),
                },
                Effect::Create { entity: target, values } => {
                    let what = format!("rule `{rule}` creating `{target}`");
                    Box::pin(self.create(&target, &values)).await.map(|_| ()).map_err(|e| rules::blame(&what, e))
                }
                Effect::Update { entity: target, id, values } => {
                    let what = format!("rule `{rule}` changing `{target}` `{id}`");
                    Box::pin(self.update(&target, &id, &values, None)).await.map_err(|e| rules::blame(&what, e))
                }
            };
            if outcome.is_err() {
                result = outcome;
                break;
            }
        }
        self.source = source;
        self.depth -= 1;
        result
    }

    /// Step 10 and 11: writes everything in one transaction, then forgets what the writes
    /// made stale.
    pub async fn commit(self) -> ApiResult<Committed> {
        let Unit { app, principal, catalog, now, writes, notices, also, held, taken, .. } = self;
        if writes.is_empty() && also.is_empty() {
            return Ok(Committed { records: Vec::new() });
        }
        let writes = coalesce(writes);
        let dialect = app.db.dialect();
        let by = principal.user_id;
        let (audit, events): (Vec<AuditEntry>, Vec<OutboxEvent>) = writes.iter().map(|w| logged(w, by)).unzip();
        let mut logs = Some(system::change_statements(dialect, now, audit, events));
        // New records of one entity in a row are inserted together, built before the
        // writer's turn; the log goes with the last statement when it is an insert.
        let mut inserts: Vec<(usize, usize, store::Insert)> = Vec::new();
        let mut i = 0;
        while i < writes.len() {
            let end = (i..writes.len())
                .find(|j| writes[*j].kind != Kind::Create || writes[*j].entity.name() != writes[i].entity.name())
                .unwrap_or(writes.len());
            if writes[i].kind == Kind::Create {
                let records: Vec<&Record> = writes[i..end].iter().map(|w| &w.after).collect();
                let then = if end == writes.len() { logs.take().unwrap_or_default() } else { Vec::new() };
                inserts.push((i, end, store::Insert::new(dialect, &writes[i].entity, &records, then)));
                i = end;
            } else {
                i += 1;
            }
        }
        let mut writes = writes;
        // Concurrent writers on PostgreSQL number their records before their transactions
        // (see store::reserve_ahead); SQLite's one writer numbers them in its turn.
        let ahead = dialect == crm_store::Dialect::Postgres;
        if ahead {
            for (start, end, insert) in &mut inserts {
                let entity = writes[*start].entity.clone();
                fill_auto_numbers(&app.db, None, &entity, &mut writes[*start..*end], insert).await?;
            }
        }
        let deactivated: Vec<Uuid> = writes
            .iter()
            .filter(|w| w.before.as_ref().is_some_and(|before| accounts::deactivates(&w.entity, before, &w.after)))
            .map(|w| w.after.id())
            .collect();
        let mut tx = app.db.begin().await?;
        for hold in held {
            let stored = store::get_for_update(&mut tx, &hold.entity, hold.id, None).await?;
            if stored.as_ref().map(Record::version) != Some(hold.version) {
                return Err(ApiError::Conflict(hold.refusal));
            }
        }
        for claim in taken {
            let field = claim.entity.field(&claim.field).expect("a field the unit was given");
            if store::value_taken(&mut On::Tx(&mut tx), &claim.entity, field, &claim.value, Uuid::nil()).await? {
                return Err(claim.refusal);
            }
        }
        let mut inserts = inserts.into_iter().peekable();
        let mut i = 0;
        while i < writes.len() {
            if let Some((_, end, mut insert)) = inserts.next_if(|(at, _, _)| *at == i) {
                let entity = writes[i].entity.clone();
                if !ahead {
                    fill_auto_numbers(&app.db, Some(&mut tx), &entity, &mut writes[i..end], &mut insert).await?;
                }
                insert.run(&mut tx, &entity).await?;
                i = end;
                continue;
            }
            let write = &mut writes[i];
            let before = write.before.as_ref().expect("a change has the record it started from");
            let changes: Vec<(usize, Value)> =
                write.changed.iter().map(|c| (*c, write.after.values[*c].clone())).collect();
            let stored = store::update(&mut tx, &write.entity, before.id(), before.version(), &changes, by, now)
                .await?
                .ok_or_else(|| ApiError::Conflict("this record changed while it was being saved; reload it".into()))?;
            write.after = stored;
            i += 1;
        }
        for write in writes.iter().filter(|w| w.guarded && w.entity.def.locked_by.is_some()) {
            if let Some((parent_entity, parent_id)) = locks::locking_parent(&catalog, &write.entity, &write.after) {
                let parent = store::get_for_update(&mut tx, &parent_entity, parent_id, None).await?;
                locks::check_parent_lock(principal, &parent_entity, parent.as_ref())?;
            }
        }
        for write in &writes {
            rules::record_stage_moves(&mut tx, &write.entity, &write.after, &write.moves, by, now).await?;
        }
        for notice in &notices {
            let reminder = system::NewReminder {
                user: notice.user,
                message: &notice.message,
                entity: Some(&notice.entity),
                record_id: Some(notice.record_id),
                rule: Some(&notice.rule),
                due_at: now,
            };
            system::insert_reminder(&mut tx, &reminder, now).await?;
        }
        for user in &deactivated {
            crm_store::Sql::execute_all(system::sign_out_statements(dialect, *user, now), &mut tx).await?;
        }
        if let Some(logs) = logs {
            crm_store::Sql::execute_all(logs, &mut tx).await?;
        }
        let written = writes
            .iter()
            .filter(|w| catalog.feeds_rollups(w.entity.name().as_str()))
            .map(|w| (w.entity.name().clone(), w.before.clone(), w.after.clone()))
            .collect();
        let rolled = super::rollup::recompute(&mut tx, &catalog, written, by, Source::Rollup.as_str(), now).await?;
        for write in also {
            write(&mut tx, now).await?;
        }
        tx.commit().await?;
        app.wrote();
        let touched: HashSet<&str> =
            writes.iter().map(|w| w.entity.name().as_str()).chain(rolled.iter().map(|e| e.as_str())).collect();
        for entity in touched {
            app.noticed_write(entity);
        }
        if !deactivated.is_empty() {
            app.signed_out();
        }
        Ok(Committed { records: writes.into_iter().map(|w| (w.entity, w.after)).collect() })
    }
}

/// One write per record: a record written several times in a unit (a rule's effect on a
/// record the unit already changes) is written once, from its first state to its last.
fn coalesce(writes: Vec<Write>) -> Vec<Write> {
    let mut merged: Vec<Write> = Vec::with_capacity(writes.len());
    // Ids are UUIDv7s the engine made: one names one record, whatever its entity.
    let mut at: HashMap<Uuid, usize> = HashMap::with_capacity(writes.len());
    for write in writes {
        let key = write.after.id();
        let Some(&first) = at.get(&key) else {
            at.insert(key, merged.len());
            merged.push(write);
            continue;
        };
        let earlier = &mut merged[first];
        let version = earlier.after.values[col::VERSION].clone();
        earlier.after = write.after;
        earlier.after.values[col::VERSION] = version;
        if earlier.kind != Kind::Create {
            earlier.kind = write.kind;
        }
        if let Some(before) = &earlier.before {
            earlier.changed = (col::DELETED_AT..before.values.len())
                .chain([col::OWNER])
                .filter(|i| before.values[*i] != earlier.after.values[*i])
                .collect();
        }
        earlier.moves.extend(write.moves);
        earlier.guarded |= write.guarded;
    }
    merged
}

/// The audit row and outbox event of a write. A creation is audited without its values:
/// they are the record's until a change, whose audit entry keeps the value before it, so
/// nothing is lost and imports stay fast.
fn logged(write: &Write, by: Uuid) -> (AuditEntry, OutboxEvent) {
    let changes = match &write.before {
        Some(before) => checks::diff_json(&write.entity, before, &write.after),
        None => json!({}),
    };
    let fields: Vec<&str> = write.changed.iter().map(|i| write.entity.columns()[*i].name.as_str()).collect();
    let payload = match write.kind {
        Kind::Create => json!({"version": 1}),
        Kind::Change(_) => json!({"version": write.after.version(), "fields": fields}),
        Kind::Delete | Kind::Restore => json!({"version": write.after.version()}),
    };
    let mut payload = payload;
    payload["by"] = json!(by);
    if let Value::Uuid(owner) = write.after.values[col::OWNER] {
        payload["owner"] = json!(owner);
    }
    payload["source"] = json!(write.source.as_str());
    if let Some(request) = crate::metrics::request_id() {
        payload["request"] = json!(request);
    }
    let entity = write.entity.name().to_string();
    let id = write.after.id();
    (
        AuditEntry {
            actor: Some(by),
            entity: entity.clone(),
            record_id: id,
            action: write.kind.action(),
            source: Some(write.source.as_str()),
            changes,
        },
        OutboxEvent { entity, record_id: id, event: write.kind.event(), payload },
    )
}

/// Numbers new records, in the records and in their insert: in the transaction when given,
/// else ahead of it.
async fn fill_auto_numbers(
    db: &crm_store::Db,
    mut tx: Option<&mut Tx>,
    entity: &Entity,
    writes: &mut [Write],
    insert: &mut store::Insert,
) -> ApiResult<()> {
    for (i, field) in entity
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.field_type == crm_model::FieldType::AutoNumber && !f.archived)
    {
        let sequence = format!("{}.{}", entity.name(), field.name);
        let count = writes.len() as i64;
        let first = match tx.as_deref_mut() {
            Some(tx) => store::reserve_in_sequence(tx, &sequence, count).await?,
            None => store::reserve_ahead(db, &sequence, count).await?,
        };
        let digits = usize::from(field.digits.unwrap_or(6));
        let prefix = field.prefix.as_deref().unwrap_or("");
        let numbers: Vec<String> = (first..).take(writes.len()).map(|n| format!("{prefix}{n:0digits$}")).collect();
        for (write, number) in writes.iter_mut().zip(&numbers) {
            write.after.values[i] = Value::Text(number.clone());
        }
        insert.set_texts(i, numbers);
    }
    Ok(())
}

fn refuse(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Invalid(errors)) }
}

/// Field errors of one row of several, named after it.
fn named(errors: Vec<FieldError>, prefix: &str) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(move |e| FieldError { field: format!("{prefix}{}", e.field), ..e })
}
