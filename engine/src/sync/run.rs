//! One run of a sync mapping: rows read, compared with what was last written for their
//! codes, and written through the save pipeline (from the ERP) or to the ERP's table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crm_erp::{Erp, Read};
use crm_model::meta::OnMissing;
use crm_model::{Catalog, Entity, SyncDirection, SyncDoc, Value};
use crm_store::sync::{self as store, Link, Run, State};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use super::values::{self, Codes, digest};
use super::{connection_url, unreachable};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, ListParams, Source, Unit};

/// Failed rows and dry-run changes a run keeps, at most.
const KEPT: usize = 1000;
/// Rows between two reports of a run's progress.
const PROGRESS_EVERY: i64 = 200;

/// The mappings, each after those whose codes its references use.
pub(super) fn in_order(catalog: &Catalog) -> Vec<&SyncDoc> {
    let all: Vec<&SyncDoc> = catalog.docs().syncs.values().collect();
    let mut ordered: Vec<&SyncDoc> = Vec::new();
    while ordered.len() < all.len() {
        let before = ordered.len();
        for sync in &all {
            let placed = |name: &str| ordered.iter().any(|s| s.name.as_str() == name);
            let ready =
                sync.fields.iter().filter_map(|f| f.via.as_ref()).all(|v| v == &sync.name || placed(v.as_str()));
            if !placed(sync.name.as_str()) && ready {
                ordered.push(sync);
            }
        }
        if ordered.len() == before {
            // References in a circle: the rest in name order; their rows retry next time.
            ordered
                .extend(all.iter().filter(|s| !ordered.iter().any(|o| o.name == s.name)).copied().collect::<Vec<_>>());
        }
    }
    ordered
}

/// Runs a started run to its end and records how it went.
pub(super) async fn execute(app: &App, sync: &SyncDoc, mut run: Run) -> Run {
    let mut tally = Tally::default();
    let outcome = match sync.direction {
        SyncDirection::FromErp => from_erp(app, sync, &mut run, &mut tally).await,
        SyncDirection::ToErp => to_erp(app, sync, &mut run, &mut tally).await,
    };
    run.status = if outcome.is_ok() { "succeeded" } else { "failed" }.into();
    run.message = outcome.err().map(|e| e.to_string());
    run.errors = Json::Array(tally.errors);
    run.changes = Json::Array(tally.changes);
    run.finished_at = Some(app.now());
    if let Err(e) = store::finish(&app.db, &run).await {
        tracing::warn!(sync = %sync.name, error = ?e, "recording the end of a sync run failed");
    }
    run
}

/// The failed rows and, for a dry run, the changes a run found.
#[derive(Default)]
struct Tally {
    errors: Vec<Json>,
    changes: Vec<Json>,
}

impl Tally {
    fn fail(&mut self, run: &mut Run, code: &str, message: String) {
        run.counts.failed += 1;
        if self.errors.len() < KEPT {
            self.errors.push(json!({"code": code, "message": message}));
        }
    }

    fn done(&mut self, run: &mut Run, code: &str, done: Done) {
        let action = match done.action {
            Action::Create => {
                run.counts.created += 1;
                "create"
            }
            Action::Update => {
                run.counts.updated += 1;
                "update"
            }
            Action::Delete => {
                run.counts.deleted += 1;
                "delete"
            }
            Action::Unchanged => {
                run.counts.unchanged += 1;
                return;
            }
        };
        if run.dry_run && self.changes.len() < KEPT {
            self.changes
                .push(json!({"code": code, "action": action, "record_id": done.record, "changes": done.changes}));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// What became of a row (or would, in a dry run).
struct Done {
    action: Action,
    record: Option<Uuid>,
    changes: Json,
}

impl Done {
    fn unchanged(record: Option<Uuid>) -> Self {
        Done { action: Action::Unchanged, record, changes: Json::Null }
    }
}

/// What every row of a run shares.
struct Pass<'a> {
    app: &'a App,
    system: Principal,
    sync: &'a SyncDoc,
    entity: Arc<Entity>,
    dry_run: bool,
}

impl<'a> Pass<'a> {
    fn new(app: &'a App, sync: &'a SyncDoc, dry_run: bool) -> ApiResult<Self> {
        let catalog = app.catalog();
        let entity = catalog.entity(sync.entity.as_str()).ok_or_else(|| ApiError::not_found("no entity"))?.clone();
        Ok(Pass { app, system: Principal::system(&catalog), sync, entity, dry_run })
    }
}

/// A row error's reason, as a person reads it: each invalid field named.
fn reason(error: ApiError) -> String {
    match error {
        ApiError::Invalid(errors) => {
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

async fn connect(app: &App, sync: &SyncDoc) -> ApiResult<Erp> {
    let url = connection_url(app, sync.connection.as_str()).await?.ok_or_else(|| ApiError::NotReady {
        code: "erp_not_connected",
        message: format!("the connection `{}` has no address yet", sync.connection),
    })?;
    Erp::connect(&url).await.map_err(unreachable)
}

/// The codes another mapping keeps, by code (to read references) or by record (to write them).
async fn via_links(app: &App, sync: &SyncDoc) -> ApiResult<HashMap<String, HashMap<String, Link>>> {
    let mut via = HashMap::new();
    for other in sync.fields.iter().filter_map(|f| f.via.as_ref()) {
        via.insert(other.to_string(), store::links(&app.db, other.as_str()).await?);
    }
    Ok(via)
}

async fn from_erp(app: &App, sync: &SyncDoc, run: &mut Run, tally: &mut Tally) -> ApiResult<()> {
    let name = sync.name.as_str();
    let fingerprint = digest(&serde_json::to_value(sync).map_err(|e| ApiError::Internal(e.into()))?);
    let state = store::state(&app.db, name).await?;
    let since = state.as_ref().filter(|s| s.fingerprint == fingerprint).and_then(|s| s.watermark.clone());
    // A changed mapping (a new code table) reads every row again; so does a first run.
    run.full = run.full || sync.watermark.is_none() || since.is_none();
    let erp = connect(app, sync).await?;
    let columns: Vec<&str> = sync.fields.iter().map(|f| f.column.as_str()).collect();
    let read = Read {
        table: &sync.table,
        key: &sync.key.column,
        columns: &columns,
        watermark: sync.watermark.as_deref(),
        since: if run.full { None } else { since.as_deref() },
    };
    let rows = erp.read(&read).await;
    erp.close().await;
    let rows = rows.map_err(unreachable)?;

    let catalog = app.catalog();
    let pass = Pass::new(app, sync, run.dry_run)?;
    let entity = &pass.entity;
    let mut links = store::links(&app.db, name).await?;
    let via: HashMap<String, Codes> = via_links(app, sync)
        .await?
        .into_iter()
        .map(|(other, links)| (other, links.into_iter().map(|(code, link)| (code, link.record_id)).collect()))
        .collect();
    let mut seen = HashSet::new();
    let mut held_back: Option<Option<String>> = None;
    let mut reached = None;
    for row in rows {
        run.counts.read += 1;
        reached = row.watermark.clone().or(reached);
        let code = row.key.as_deref().map(str::trim).unwrap_or_default().to_owned();
        let outcome = if code.is_empty() {
            Err("the row has no code".to_owned())
        } else if !seen.insert(code.clone()) {
            Err(format!("the code `{code}` is on more than one row"))
        } else {
            match values::incoming(&catalog, entity, sync, &row.cells, &via) {
                Ok(values) => keep(&pass, &code, values, links.get(&code)).await,
                Err(message) => Err(message),
            }
        };
        match outcome {
            Ok((done, link)) => {
                if let Some(link) = link {
                    links.insert(code.clone(), link);
                }
                tally.done(run, &code, done);
            }
            Err(message) => {
                // The next incremental run starts again at the first row that failed.
                held_back.get_or_insert(row.watermark.clone());
                tally.fail(run, &code, message);
            }
        }
        if run.counts.read % PROGRESS_EVERY == 0 && !run.dry_run {
            store::progress(&app.db, run.id, &run.counts).await?;
        }
    }
    if run.full && sync.on_missing == OnMissing::Delete {
        let gone: Vec<(String, Link)> =
            links.iter().filter(|(code, _)| !seen.contains(*code)).map(|(c, l)| (c.clone(), l.clone())).collect();
        for (code, link) in gone {
            match remove(&pass, &code, link.record_id).await {
                Ok(done) => tally.done(run, &code, done),
                Err(message) => tally.fail(run, &code, message),
            }
        }
    }
    if !run.dry_run {
        let watermark = match held_back {
            Some(first_failed) => first_failed,
            None => reached.or(since),
        };
        store::set_state(&app.db, name, &State { watermark, fingerprint }).await?;
    }
    Ok(())
}

/// Keeps a row's values in its record: made, changed (back from the recycle bin if it was
/// there) or left as it is; with the link to write beside it.
async fn keep(
    pass: &Pass<'_>,
    code: &str,
    mut values: Map<String, Json>,
    link: Option<&Link>,
) -> Result<(Done, Option<Link>), String> {
    let (app, system, sync, entity, dry_run) = (pass.app, &pass.system, pass.sync, &pass.entity, pass.dry_run);
    let digest = digest(&Json::Object(values.clone()));
    let record_id = match link {
        Some(link) if link.digest == digest => return Ok((Done::unchanged(Some(link.record_id)), None)),
        Some(link) => Some(link.record_id),
        None => match &sync.key.field {
            Some(field) => records::find_by(app, system, entity.name().as_str(), field.as_str(), code)
                .await
                .map_err(reason)?
                .map(|r| r.id()),
            None => None,
        },
    };
    let stored = match record_id {
        Some(id) => crm_store::records::get(&app.db, entity, id, None).await.map_err(|e| reason(e.into()))?,
        None => None,
    };
    let entity_name = entity.name().to_string();
    let sync_name = sync.name.to_string();
    let Some(record) = stored else {
        if !sync.creates {
            return Ok((Done::unchanged(None), None));
        }
        // A new record gets the code in the key field; a found one has it already.
        if let Some(field) = &sync.key.field {
            values.insert(field.to_string(), Json::from(code));
        }
        let changes = Json::Object(values.clone());
        if dry_run {
            return Ok((Done { action: Action::Create, record: None, changes }, None));
        }
        let mut unit = Unit::new(app, system, Source::Sync).await.map_err(reason)?;
        let id = unit.create(&entity_name, &Json::Object(values)).await.map_err(reason)?;
        let link = Link { record_id: id, digest };
        write_link(&mut unit, sync_name, code, link.clone());
        unit.commit().await.map_err(reason)?;
        return Ok((Done { action: Action::Create, record: Some(id), changes }, Some(link)));
    };
    let id = record.id();
    let catalog = app.catalog();
    let changed = values::differences(&catalog, entity, &record.values, &values);
    let deleted = entity.column_index("deleted_at").is_some_and(|at| !record.values[at].is_null());
    let link = Link { record_id: id, digest };
    let action = if changed.is_empty() && !deleted { Action::Unchanged } else { Action::Update };
    if dry_run {
        return Ok((Done { action, record: Some(id), changes: Json::Object(changed) }, None));
    }
    let mut unit = Unit::new(app, system, Source::Sync).await.map_err(reason)?;
    if deleted {
        unit.restore(&entity_name, id).await.map_err(reason)?;
    }
    if !changed.is_empty() {
        let body: Map<String, Json> = changed.keys().map(|k| (k.clone(), values[k].clone())).collect();
        unit.update(&entity_name, &id.to_string(), &Json::Object(body), None).await.map_err(reason)?;
    }
    write_link(&mut unit, sync_name, code, link.clone());
    unit.commit().await.map_err(reason)?;
    Ok((Done { action, record: Some(id), changes: Json::Object(changed) }, Some(link)))
}

fn write_link(unit: &mut Unit<'_>, sync: String, code: &str, link: Link) {
    let code = code.to_owned();
    unit.also(move |tx, _| Box::pin(async move { store::link(tx, &sync, &code, &link).await }));
}

/// A record whose row is gone from the source goes to the recycle bin, and its code is
/// forgotten.
async fn remove(pass: &Pass<'_>, code: &str, id: Uuid) -> Result<Done, String> {
    let (app, system, sync, entity, dry_run) = (pass.app, &pass.system, pass.sync, &pass.entity, pass.dry_run);
    let stored = crm_store::records::get(&app.db, entity, id, None).await.map_err(|e| reason(e.into()))?;
    let live = stored.is_some_and(|r| entity.column_index("deleted_at").is_some_and(|at| r.values[at].is_null()));
    let action = if live { Action::Delete } else { Action::Unchanged };
    if dry_run {
        return Ok(Done { action, record: Some(id), changes: Json::Null });
    }
    let mut unit = Unit::new(app, system, Source::Sync).await.map_err(reason)?;
    if live {
        unit.delete(entity.name().as_str(), id).await.map_err(reason)?;
    }
    let (sync, code) = (sync.name.to_string(), code.to_owned());
    unit.also(move |tx, _| Box::pin(async move { store::unlink(tx, &sync, &code).await }));
    unit.commit().await.map_err(reason)?;
    Ok(Done { action, record: Some(id), changes: Json::Null })
}

async fn to_erp(app: &App, sync: &SyncDoc, run: &mut Run, tally: &mut Tally) -> ApiResult<()> {
    let pass = Pass::new(app, sync, run.dry_run)?;
    let entity = &pass.entity;
    let key_field = sync.key.field.as_ref().ok_or_else(|| ApiError::bad_request("invalid", "no key field"))?;
    let key_at = entity.column_index(key_field.as_str()).ok_or_else(|| ApiError::not_found("no key field"))?;
    let via: HashMap<String, HashMap<Uuid, String>> = via_links(app, sync)
        .await?
        .into_iter()
        .map(|(other, links)| (other, links.into_iter().map(|(code, link)| (link.record_id, code)).collect()))
        .collect();
    let by_record: HashMap<Uuid, (String, Link)> =
        store::links(&app.db, sync.name.as_str()).await?.into_iter().map(|(c, l)| (l.record_id, (c, l))).collect();
    run.full = true;
    let erp = connect(app, sync).await?;
    let mut params = ListParams {
        filter: sync.filter.as_ref().map(Json::to_string),
        limit: Some(records::MAX_LIMIT),
        ..ListParams::default()
    };
    let outcome = async {
        loop {
            let page = records::list(app, &pass.system, entity.name().as_str(), &params).await?;
            for record in page.records() {
                run.counts.read += 1;
                let code = match &record.values[key_at] {
                    Value::Null => String::new(),
                    value => crm_model::value::to_json(entity.columns().get(key_at).expect("a column"), value)
                        .as_str()
                        .map_or_else(String::new, |s| s.trim().to_owned()),
                };
                let outcome = if code.is_empty() {
                    Err(format!("`{key_field}` is empty: the ERP row needs a code"))
                } else {
                    send(&pass, &erp, record, &code, by_record.get(&record.id()), &via).await
                };
                match outcome {
                    Ok(done) => tally.done(run, &code, done),
                    Err(message) => tally.fail(run, &code, message),
                }
                if run.counts.read % PROGRESS_EVERY == 0 && !run.dry_run {
                    store::progress(&app.db, run.id, &run.counts).await?;
                }
            }
            match page.next_cursor.clone() {
                Some(cursor) => params.cursor = Some(cursor),
                None => return Ok::<(), ApiError>(()),
            }
        }
    }
    .await;
    erp.close().await;
    outcome
}

/// Writes a record to its ERP row: inserted the first time, updated when its values
/// changed since they were last sent.
async fn send(
    pass: &Pass<'_>,
    erp: &Erp,
    record: &crm_store::Record,
    code: &str,
    sent: Option<&(String, Link)>,
    via: &HashMap<String, HashMap<Uuid, String>>,
) -> Result<Done, String> {
    let (app, sync, entity, dry_run) = (pass.app, pass.sync, &pass.entity, pass.dry_run);
    let cells = values::outgoing(entity, sync, &record.values, via)?;
    let mut row = vec![(sync.key.column.clone(), Some(code.to_owned()))];
    row.extend(cells);
    let digest = digest(&json!(row));
    let id = record.id();
    let changes = Json::Object(row.iter().map(|(c, v)| (c.clone(), json!(v))).collect());
    let action = match sent {
        Some((_, link)) if link.digest == digest => return Ok(Done::unchanged(Some(id))),
        Some(_) => Action::Update,
        None => Action::Create,
    };
    if dry_run {
        return Ok(Done { action, record: Some(id), changes });
    }
    let columns: Vec<(&str, Option<String>)> = row.iter().map(|(c, v)| (c.as_str(), v.clone())).collect();
    let failed = |e: crm_erp::ErpError| e.to_string();
    match sent {
        Some((old_code, _)) => {
            let changed = erp.update(&sync.table, (&sync.key.column, old_code), &columns).await.map_err(failed)?;
            if changed == 0 {
                return Err(format!("the ERP has no row `{old_code}` any more"));
            }
        }
        None => erp.insert(&sync.table, &columns).await.map_err(failed)?,
    }
    let mut tx = app.db.begin().await.map_err(|e| reason(e.into()))?;
    if let Some((old_code, _)) = sent.filter(|(old, _)| old != code) {
        store::unlink(&mut tx, sync.name.as_str(), old_code).await.map_err(|e| reason(e.into()))?;
    }
    store::link(&mut tx, sync.name.as_str(), code, &Link { record_id: id, digest })
        .await
        .map_err(|e| reason(e.into()))?;
    tx.commit().await.map_err(|e| reason(e.into()))?;
    Ok(Done { action, record: Some(id), changes })
}
