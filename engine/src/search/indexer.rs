//! Keeps this node's search index in step with the records: an outbox consumer that puts a
//! record's searchable text in the index when it is written and takes it out when it is
//! deleted. The index keeps the position it has reached with its data, so after a restart,
//! or with a fresh or deleted index folder, it goes on from there, or is rebuilt from the
//! database first.

use crm_model::value;
use crm_search::{Change, Record as Indexed};
use crm_store::jobs::{Event, Position};
use crm_store::records::{self as store, col};
use crm_store::{Record, jobs, tasks};
use serde_json::Value as Json;

use super::indexed_fields;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Consumer, Handled, Resumed};

pub struct Indexer;

/// The event a metadata change leaves when the fields the index keeps of an entity change.
pub const REINDEX: &str = "reindex";

/// Records read at a time while rebuilding.
const REBUILD_PAGE: u32 = 2000;

fn position_text(at: Position) -> String {
    format!("{}:{}", at.tx, at.seq)
}

fn position_of(text: &str) -> Option<Position> {
    let (tx, seq) = text.split_once(':')?;
    Some(Position { tx: tx.parse().ok()?, seq: seq.parse().ok()? })
}

/// The text of a record as the index keeps it: its searchable fields with a value (choices
/// by their labels, which is what people type).
fn indexed(entity: &crm_model::Entity, record: &Record) -> Indexed {
    let fields = indexed_fields(entity)
        .filter_map(|field| {
            let i = entity.column_index(field.name.as_str())?;
            let text = match value::to_json(field, &record.values[i]) {
                Json::String(text) if field.options.is_empty() => text,
                Json::String(option) => {
                    let label = &field.options.iter().find(|o| o.value == option)?.label;
                    format!("{} {}", label.zh_cn, label.en)
                }
                _ => return None,
            };
            Some((field.name.to_string(), text))
        })
        .collect();
    let owner = match record.values[col::OWNER] {
        crm_model::Value::Uuid(owner) => Some(owner),
        _ => None,
    };
    Indexed { entity: entity.name().to_string(), id: record.id(), owner, fields }
}

/// How long a finding that the index is caught up stands without asking the database, while
/// this node writes nothing: a bound for writes made by another process on the same file.
const CAUGHT_UP_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the index has seen every event written so far. On SQLite, where the writes are
/// this process's own, the answer stands while it writes nothing and the index stays where
/// it was (for at most [`CAUGHT_UP_FOR`]); a `contains` filter then costs no query for it.
pub(super) async fn caught_up(app: &App) -> ApiResult<bool> {
    let Some(reached) = app.search.position().map_err(failed)?.as_deref().and_then(position_of) else {
        return Ok(false);
    };
    let single = app.db.dialect() == crm_store::Dialect::Sqlite;
    let written = *app.written.borrow();
    let known = |(count, at, when): &(u64, Position, std::time::Instant)| {
        *count == written && *at == reached && when.elapsed() < CAUGHT_UP_FOR
    };
    if single && app.index_caught_up.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(known) {
        return Ok(true);
    }
    // An event the index failed on waits to be tried again: its record may be missing.
    let caught_up = !jobs::lacking(&app.db, crate::jobs::Consumer::name(&Indexer), &app.node, reached).await?;
    if single && caught_up {
        *app.index_caught_up.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((written, reached, std::time::Instant::now()));
    }
    Ok(caught_up)
}

/// Commits the index on a thread of the blocking pool: a commit waits for the indexing
/// threads and writes and syncs files, tens of milliseconds that would stall a runtime worker
/// and every request queued behind it.
async fn commit(app: &App, reached: Position) -> ApiResult<()> {
    let search = app.search.clone();
    tokio::task::spawn_blocking(move || search.commit(&position_text(reached))).await.map_err(failed)?.map_err(failed)
}

fn failed(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("search index: {error}"))
}

/// Builds the index anew from the live records; returns the position of the change log it
/// is consistent with (events after it are applied on top, which is harmless twice).
pub async fn rebuild(app: &App, progress: impl Fn(&str, usize)) -> ApiResult<Position> {
    let reached = jobs::end(&app.db).await?;
    app.search.clear().map_err(failed)?;
    let catalog = app.catalog();
    for entity in catalog.entities().filter(|e| indexed_fields(e).next().is_some()) {
        put_all(app, entity, |done| {
            progress(entity.name().as_str(), done);
            std::future::ready(())
        })
        .await?;
    }
    commit(app, reached).await?;
    // Entities waiting to be indexed again were: their reindex events lie before `reached`.
    tasks::finish_all(&app.db, REINDEX, serde_json::json!({"rebuilt": true}), app.now()).await?;
    Ok(reached)
}

/// Stages every live record of an entity; returns how many there were.
async fn put_all<F: Future<Output = ()>>(
    app: &App,
    entity: &crm_model::Entity,
    mut progress: impl FnMut(usize) -> F,
) -> ApiResult<usize> {
    let mut after = None;
    let mut done = 0;
    loop {
        let page = store::page_by_id(&app.db, entity, after, REBUILD_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id());
        done += page.len();
        let changes = page.iter().map(|r| Change::Put(indexed(entity, r))).collect();
        app.search.apply(changes).map_err(failed)?;
        progress(done).await;
        if page.len() < REBUILD_PAGE as usize {
            break;
        }
    }
    Ok(done)
}

/// Indexes an entity again after the fields the index keeps of it changed (a field made
/// searchable, a duplicate rule added), reporting to the task the metadata change started.
/// Done in the order of the change log, so no write of a record is overtaken by an older
/// reading of it.
async fn reindex(app: &App, event: &Event) -> ApiResult<()> {
    let task = event.payload["task"].as_str().and_then(|t| uuid::Uuid::parse_str(t).ok());
    app.search.apply(vec![Change::Forget { entity: event.entity.clone() }]).map_err(failed)?;
    let catalog = app.catalog();
    let (total, done) = match catalog.entity(&event.entity) {
        Some(entity) if indexed_fields(entity).next().is_some() => {
            let total = store::count(&app.db, store::count_statement(app.db.dialect(), entity, None, false)).await?;
            let progress = task.map(|id| crate::tasks::Progress::of(app, id));
            let done = put_all(app, entity, |done| {
                let progress = progress.as_ref();
                async move {
                    if let Some(progress) = progress {
                        progress.report(done, Some(total as usize)).await;
                    }
                }
            })
            .await?;
            (total, done)
        }
        _ => (0, 0),
    };
    if let Some(id) = task {
        tasks::finish(&app.db, id, Ok(serde_json::json!({"records": done, "total": total})), app.now()).await?;
    }
    Ok(())
}

impl Consumer for Indexer {
    fn name(&self) -> &'static str {
        "search"
    }

    fn shared(&self) -> bool {
        false
    }

    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move {
            if event.event == REINDEX {
                return reindex(app, event).await.map_err(|e| e.to_string());
            }
            let catalog = app.catalog();
            let Some(entity) = catalog.entity(&event.entity) else { return Ok(()) };
            if indexed_fields(entity).next().is_none() {
                return Ok(());
            }
            let record = store::get(&app.db, entity, event.record_id, None).await.map_err(|e| e.to_string())?;
            let change = match record.filter(|r| !r.is_deleted()) {
                Some(record) => Change::Put(indexed(entity, &record)),
                None => Change::Remove { entity: event.entity.clone(), id: event.record_id },
            };
            app.search.apply(vec![change]).map_err(|e| e.to_string())
        })
    }

    /// The index's own position wins over the cursor: it is what the index holds. An index
    /// that has none (new, or its folder deleted) is rebuilt from the database first.
    fn resume<'a>(&'a self, app: &'a App, _cursor: Position) -> Resumed<'a> {
        Box::pin(async move {
            match app.search.position().map_err(failed)?.as_deref().and_then(position_of) {
                Some(reached) => Ok(reached),
                None => {
                    tracing::info!("building the search index from the database");
                    rebuild(app, |_, _| {}).await
                }
            }
        })
    }

    fn flush<'a>(&'a self, app: &'a App, reached: Position) -> Handled<'a> {
        Box::pin(async move { commit(app, reached).await.map_err(|e| e.to_string()) })
    }
}
