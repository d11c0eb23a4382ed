//! Running an import: the file's rows become records through the save pipeline, at most
//! [`MAX_IMPORT`] rows per unit, with `Source::Import`. A row the pipeline refuses is taken out
//! and the rest of its chunk tried again, so that the good rows are written and each bad one is
//! reported with every reason found; with `all_or_nothing`, one bad row stops every write.

use std::collections::HashMap;
use std::sync::Arc;

use crm_model::Entity;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::read::{Row, Sheet};
use super::{lookup, mapping};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::{MAX_IMPORT, Source, Unit};
use crate::tasks::Progress;

/// What an import does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every row a new record.
    Create,
    /// A row whose key matches a record changes it; the others are created or reported.
    Update { create_unmatched: bool },
    /// A row whose key matches a record is left out; the others are created.
    Skip,
    /// A row the entity's duplicate rules find a likely duplicate of a stored record for is
    /// left out; the others are created.
    SkipDuplicates,
}

/// How to run an import.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// The field that finds existing records (update and skip).
    pub key: Option<String>,
    /// Nothing is written when any row fails.
    pub all_or_nothing: bool,
}

/// A file mapped onto an entity's fields, ready to run.
pub struct Plan {
    pub entity: Arc<Entity>,
    pub sheet: Sheet,
    /// The field each column goes into.
    pub targets: Vec<Option<String>>,
    pub options: Options,
}

/// Why a row was not written, in both languages of the screens.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub field: String,
    /// The file's column the field came from.
    pub column: Option<String>,
    pub code: String,
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

/// A row that was not written.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub row: usize,
    /// The row's cells as the file has them, for the report.
    pub cells: Vec<String>,
    pub reasons: Vec<Reason>,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
    pub failed: usize,
    /// False when `all_or_nothing` kept every row out because some failed.
    pub written: bool,
    pub columns: Vec<String>,
    pub failures: Vec<Failure>,
    /// Whether failures beyond [`MAX_REPORTED`] were left out of the report.
    pub failures_truncated: bool,
}

/// Failed rows kept for the report; beyond them only the count.
pub const MAX_REPORTED: usize = 10_000;

/// What became of one row.
#[derive(Debug, Clone)]
pub enum RowResult {
    Created,
    Updated,
    Skipped,
    Failed(Vec<FieldError>),
}

/// A row turned into the pipeline's input.
pub(super) struct Prepared {
    pub(super) body: Map<String, Json>,
    pub(super) key: Option<Json>,
    pub(super) errors: Vec<FieldError>,
}

impl Plan {
    fn prepare(&self, catalog: &crm_model::Catalog, row: &Row) -> Prepared {
        let key = self.options.key.as_deref();
        let mut prepared = Prepared { body: Map::new(), key: None, errors: Vec::new() };
        for (i, target) in self.targets.iter().enumerate() {
            let Some(field) = target.as_deref().and_then(|name| self.entity.column(name)) else { continue };
            let cell = row.cells.get(i).unwrap_or(&super::read::Cell::Empty);
            let column = self.sheet.headers.get(i).map_or("", String::as_str);
            match mapping::value_of(catalog, field, cell, column) {
                Ok(Some(value)) => {
                    if Some(field.name.as_str()) == key {
                        prepared.key = Some(value.clone());
                    }
                    if mapping::is_written(field) {
                        prepared.body.insert(field.name.to_string(), value);
                    }
                }
                Ok(None) => {}
                Err(error) => prepared.errors.push(error),
            }
        }
        prepared
    }

    /// A field error as a reason, with the field's label and column.
    fn reason(&self, error: &FieldError) -> Reason {
        let field = self.entity.column(&error.field);
        let column = self
            .targets
            .iter()
            .position(|t| t.as_deref() == Some(error.field.as_str()))
            .and_then(|i| self.sheet.headers.get(i).cloned());
        let zh_key = format!("error.{}", error.code);
        let zh_text = crate::screens::shell::text("zh-CN", &zh_key, &[]);
        let zh_text = if zh_text == zh_key { error.message.clone() } else { zh_text };
        let (zh_cn, en) = match field {
            Some(f) => (format!("{}：{zh_text}", f.label.zh_cn), format!("{}: {}", f.label.en, error.message)),
            None => (zh_text, error.message.clone()),
        };
        Reason { field: error.field.clone(), column, code: error.code.to_owned(), zh_cn, en }
    }

    fn failure(&self, row: &Row, errors: &[FieldError]) -> Failure {
        Failure {
            row: row.number,
            cells: row.cells.iter().map(super::read::Cell::text).collect(),
            reasons: errors.iter().map(|e| self.reason(e)).collect(),
        }
    }
}

/// Checks `rows` through the pipeline into a unit that is not committed: the unit, and what
/// would become of each row.
async fn prepare_chunk<'a>(
    app: &'a App,
    principal: &'a Principal,
    plan: &Plan,
    rows: &[Row],
) -> ApiResult<(Unit<'a>, Vec<RowResult>)> {
    let catalog = app.catalog();
    let entity_name = plan.entity.name().as_str();
    let mut prepared: Vec<Prepared> = rows.iter().map(|row| plan.prepare(&catalog, row)).collect();
    lookup::resolve_references(app, principal, plan, &mut prepared).await?;
    let mut results: Vec<Option<RowResult>> =
        prepared.iter().map(|p| (!p.errors.is_empty()).then(|| RowResult::Failed(p.errors.clone()))).collect();
    let mut unit = Unit::new(app, principal, Source::Import).await?;
    let mut to_create: Vec<usize> = Vec::new();
    match plan.options.mode {
        Mode::Create => to_create.extend((0..prepared.len()).filter(|i| results[*i].is_none())),
        Mode::SkipDuplicates => {
            for (i, row) in prepared.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                if crate::duplicates::any_likely(app, &plan.entity, &row.body).await? {
                    results[i] = Some(RowResult::Skipped);
                } else {
                    to_create.push(i);
                }
            }
        }
        Mode::Update { .. } | Mode::Skip => {
            let (update, create_unmatched) = match plan.options.mode {
                Mode::Update { create_unmatched } => (true, create_unmatched),
                _ => (false, true),
            };
            let key = plan.options.key.as_deref().and_then(|k| plan.entity.column(k)).ok_or_else(|| {
                ApiError::bad_request("import_key", "choose the field that finds existing records (`key`)")
            })?;
            let found = lookup::find(app, principal, &plan.entity, key, &prepared).await?;
            for (i, row) in prepared.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                let matched = row.key.as_ref().and_then(|k| found.get(&lookup::key_text(k)));
                results[i] = match (matched, update) {
                    (Some(_), false) => Some(RowResult::Skipped),
                    (Some(id), true) => Some(update_row(&mut unit, entity_name, *id, &row.body).await?),
                    (None, _) if row.key.is_none() => Some(RowResult::Failed(vec![FieldError::new(
                        key.name.to_string(),
                        "import_no_key",
                        "the row has no value in the key column",
                    )])),
                    (None, _) if create_unmatched => {
                        to_create.push(i);
                        None
                    }
                    (None, _) => Some(RowResult::Failed(vec![FieldError::new(
                        key.name.to_string(),
                        "import_no_match",
                        "no record has this key (or it is not yours to change)",
                    )])),
                };
            }
        }
    }
    create_rows(&mut unit, entity_name, &prepared, to_create, &mut results).await?;
    Ok((unit, results.into_iter().map(|r| r.unwrap_or(RowResult::Created)).collect()))
}

async fn update_row(
    unit: &mut Unit<'_>,
    entity_name: &str,
    id: Uuid,
    body: &Map<String, Json>,
) -> ApiResult<RowResult> {
    let mark = unit.mark();
    match unit.update(entity_name, &id.to_string(), &Json::Object(body.clone()), None).await {
        // The same values as stored: nothing to write.
        Ok(()) if unit.mark() == mark => Ok(RowResult::Skipped),
        Ok(()) => Ok(RowResult::Updated),
        Err(error) => {
            unit.rewind(mark);
            Ok(RowResult::Failed(row_errors(error)?))
        }
    }
}

/// The errors of a refused row; an internal error stops the import.
fn row_errors(error: ApiError) -> ApiResult<Vec<FieldError>> {
    match error {
        ApiError::Invalid(errors) => Ok(errors),
        ApiError::Internal(cause) => Err(ApiError::Internal(cause)),
        other => {
            let (_, code, _) = other.parts();
            Ok(vec![FieldError::new("", code, other.to_string())])
        }
    }
}

/// Creates the rows at `pending` together; each refused row is taken out with its reasons and
/// the others tried again.
async fn create_rows(
    unit: &mut Unit<'_>,
    entity_name: &str,
    rows: &[Prepared],
    mut pending: Vec<usize>,
    results: &mut [Option<RowResult>],
) -> ApiResult<()> {
    while !pending.is_empty() {
        let mark = unit.mark();
        let bodies: Vec<Json> = pending.iter().map(|i| Json::Object(rows[*i].body.clone())).collect();
        let error = match unit.create_many(entity_name, &bodies).await {
            Ok(_) => {
                for i in pending {
                    results[i] = Some(RowResult::Created);
                }
                return Ok(());
            }
            Err(error) => error,
        };
        unit.rewind(mark);
        let errors = row_errors(error)?;
        let blamed = blame(errors, pending.len());
        if blamed.is_empty() {
            // Nothing names a row (a rule's effect went wrong): each row on its own says whose.
            for i in std::mem::take(&mut pending) {
                let mark = unit.mark();
                if let Err(error) = unit.create_many(entity_name, &[Json::Object(rows[i].body.clone())]).await {
                    unit.rewind(mark);
                    results[i] = Some(RowResult::Failed(row_errors(error)?));
                } else {
                    results[i] = Some(RowResult::Created);
                }
            }
            return Ok(());
        }
        for (at, errors) in &blamed {
            results[pending[*at]] = Some(RowResult::Failed(errors.clone()));
        }
        pending = pending.into_iter().enumerate().filter(|(at, _)| !blamed.contains_key(at)).map(|(_, i)| i).collect();
    }
    Ok(())
}

/// Errors of `create_many` by the row they name (`records/{row}/{field}`); with one row,
/// they are all its.
fn blame(errors: Vec<FieldError>, rows: usize) -> HashMap<usize, Vec<FieldError>> {
    let mut blamed: HashMap<usize, Vec<FieldError>> = HashMap::new();
    if rows == 1 {
        blamed.insert(0, errors);
        return blamed;
    }
    for error in errors {
        let Some(rest) = error.field.strip_prefix("records/") else { continue };
        let (row, field) = rest.split_once('/').unwrap_or((rest, ""));
        if let Ok(row) = row.parse::<usize>()
            && row < rows
        {
            blamed.entry(row).or_default().push(FieldError { field: field.to_owned(), ..error });
        }
    }
    blamed
}

/// Runs an import to its end, reporting progress; what it did.
pub async fn run(app: &App, principal: &Principal, plan: &Plan, progress: Option<&Progress>) -> ApiResult<Summary> {
    let rows = &plan.sheet.rows;
    let chunks: Vec<&[Row]> = rows.chunks(MAX_IMPORT).collect();
    let mut summary = Summary { columns: plan.sheet.headers.clone(), written: true, ..Summary::default() };
    // With several units, all or nothing needs every row checked before the first commits.
    let check_first = plan.options.all_or_nothing && chunks.len() > 1;
    let total = if check_first { rows.len() * 2 } else { rows.len() };
    let mut done = 0;
    if check_first {
        for chunk in &chunks {
            let (_, results) = prepare_chunk(app, principal, plan, chunk).await?;
            tally_failures(plan, chunk, &results, &mut summary);
            done += chunk.len();
            report(progress, done, total).await;
        }
        if summary.failed > 0 {
            summary.written = false;
            return Ok(summary);
        }
    }
    // A chunk is checked while the one before it commits, where no row of one can depend on
    // the other's: new records only, no unique field to collide across chunks, and the good
    // rows written whatever fails.
    let overlap = plan.options.mode == Mode::Create
        && !plan.options.all_or_nothing
        && !plan.entity.live_fields().any(|f| f.unique);
    let mut waiting: Option<(Unit<'_>, Vec<RowResult>, &[Row])> = None;
    for chunk in &chunks {
        let next = prepare_chunk(app, principal, plan, chunk);
        let (unit, results) = match waiting.take() {
            Some((previous, results, rows)) if overlap => {
                let (committed, next) = tokio::join!(previous.commit(), next);
                committed?;
                tally(plan, rows, &results, &mut summary);
                done += rows.len();
                report(progress, done, total).await;
                next?
            }
            _ => next.await?,
        };
        let failed = results.iter().any(|r| matches!(r, RowResult::Failed(_)));
        if plan.options.all_or_nothing && failed {
            tally_failures(plan, chunk, &results, &mut summary);
            summary.written = false;
            return Ok(summary);
        }
        if overlap {
            waiting = Some((unit, results, chunk));
            continue;
        }
        unit.commit().await?;
        tally(plan, chunk, &results, &mut summary);
        done += chunk.len();
        report(progress, done, total).await;
    }
    if let Some((unit, results, rows)) = waiting {
        unit.commit().await?;
        tally(plan, rows, &results, &mut summary);
        report(progress, done + rows.len(), total).await;
    }
    // A large import grew SQLite's log far past its usual size, and PostgreSQL's statistics of
    // the table are now wrong: cut the one back and count the other again.
    if chunks.len() > 1 {
        app.db.settle(&[&plan.entity]).await?;
    }
    Ok(summary)
}

/// Counts what became of the rows of a committed chunk.
fn tally(plan: &Plan, rows: &[Row], results: &[RowResult], summary: &mut Summary) {
    for (row, result) in rows.iter().zip(results) {
        match result {
            RowResult::Created => summary.created += 1,
            RowResult::Updated => summary.updated += 1,
            RowResult::Skipped => summary.skipped += 1,
            RowResult::Failed(errors) => add_failure(plan, row, errors, summary),
        }
    }
}

async fn report(progress: Option<&Progress>, done: usize, total: usize) {
    if let Some(progress) = progress {
        progress.report(done, Some(total)).await;
    }
}

fn tally_failures(plan: &Plan, chunk: &[Row], results: &[RowResult], summary: &mut Summary) {
    for (row, result) in chunk.iter().zip(results) {
        if let RowResult::Failed(errors) = result {
            add_failure(plan, row, errors, summary);
        }
    }
}

fn add_failure(plan: &Plan, row: &Row, errors: &[FieldError], summary: &mut Summary) {
    summary.failed += 1;
    if summary.failures.len() < MAX_REPORTED {
        summary.failures.push(plan.failure(row, errors));
    } else {
        summary.failures_truncated = true;
    }
}

/// A row of a preview: its cells and what would become of it.
#[derive(Debug, Serialize)]
pub struct PreviewRow {
    pub row: usize,
    pub cells: Vec<String>,
    /// `create`, `update`, `skip` or `fail`.
    pub outcome: &'static str,
    pub reasons: Vec<Reason>,
}

/// What the first rows would become, checked by the pipeline and written nowhere.
pub async fn preview(app: &App, principal: &Principal, plan: &Plan, rows: usize) -> ApiResult<Vec<PreviewRow>> {
    let first = &plan.sheet.rows[..rows.min(plan.sheet.rows.len())];
    let (unit, results) = prepare_chunk(app, principal, plan, first).await?;
    drop(unit);
    Ok(first
        .iter()
        .zip(results)
        .map(|(row, result)| {
            let (outcome, reasons) = match result {
                RowResult::Created => ("create", Vec::new()),
                RowResult::Updated => ("update", Vec::new()),
                RowResult::Skipped => ("skip", Vec::new()),
                RowResult::Failed(errors) => ("fail", errors.iter().map(|e| plan.reason(e)).collect()),
            };
            PreviewRow {
                row: row.number,
                cells: row.cells.iter().map(super::read::Cell::text).collect(),
                outcome,
                reasons,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_blamed_on_the_rows_they_name() {
        let errors = vec![
            FieldError::new("records/2/name", "required", "a value is required"),
            FieldError::new("records/0/email", "invalid_email", "not an email address"),
            FieldError::new("records/2/phone", "invalid_phone", "not a phone number"),
        ];
        let blamed = blame(errors, 3);
        assert_eq!(blamed[&2].len(), 2);
        assert_eq!(blamed[&2][0].field, "name");
        assert_eq!(blamed[&0][0].field, "email");
    }
}
