//! Importing records from a CSV or XLSX file (L-1, C-8): the file is read ([`read`]), its
//! columns mapped onto the entity's fields ([`mapping`]), the first rows previewed through the
//! save pipeline without writing, and the import run as a background task ([`run`]) whose
//! result lists the failed rows for a report.

mod lookup;
pub mod mapping;
pub mod read;
pub mod run;

use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

pub use read::{MAX_FILE_BYTES, Sheet};
pub use run::{Mode, Options, Plan, Summary};

use crm_model::Action;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// Rows a preview shows.
pub const PREVIEW_ROWS: usize = 20;

/// What the caller asked of an uploaded file.
#[derive(Debug, Clone)]
pub struct Request {
    /// `{column header: field or null}`; without it, the proposed mapping.
    pub mapping: Option<Map<String, Json>>,
    pub options: Options,
}

/// Maps a read file onto the entity for the caller: the plan to preview or run.
pub async fn plan(
    app: &App,
    principal: &Principal,
    entity_name: &str,
    sheet: Sheet,
    request: Request,
) -> ApiResult<Plan> {
    let catalog = app.catalog();
    let entity = principal.entity(&catalog, entity_name, Action::Import)?.clone();
    let fields = mapping::importable(&entity, principal);
    let targets = match &request.mapping {
        Some(chosen) => {
            let mut targets = Vec::with_capacity(sheet.headers.len());
            for header in &sheet.headers {
                let target = match chosen.get(header) {
                    Some(Json::String(name)) if !name.is_empty() => Some(name.clone()),
                    _ => None,
                };
                if let Some(name) = &target
                    && !fields.iter().any(|f| f.name.as_str() == name)
                {
                    return Err(ApiError::field(
                        "mapping",
                        "import_mapping",
                        format!("column `{header}`: no field `{name}` you may import into"),
                    ));
                }
                targets.push(target);
            }
            targets
        }
        None => {
            let remembered = mapping::remembered(app, principal.user_id, entity_name).await?;
            mapping::propose(&fields, &sheet.headers, &remembered)
        }
    };
    let mut options = request.options;
    if matches!(options.mode, Mode::Update { .. } | Mode::Skip) {
        let key = options.key.clone().or_else(|| {
            let mapped = |name: &str| targets.iter().any(|t| t.as_deref() == Some(name));
            fields.iter().find(|f| mapping::is_key(f) && mapped(f.name.as_str())).map(|f| f.name.to_string())
        });
        let usable = key
            .as_deref()
            .and_then(|k| entity.column(k))
            .is_some_and(|f| mapping::is_key(f) && targets.iter().any(|t| t.as_deref() == Some(f.name.as_str())));
        if !usable {
            return Err(ApiError::bad_request(
                "import_key",
                "to update or skip existing records, map a column to the id or a unique field and name it as `key`",
            ));
        }
        options.key = key;
    }
    Ok(Plan { entity, sheet, targets, options })
}

/// A field a column can go into, for the mapping's choices.
#[derive(Serialize)]
struct Choice {
    name: String,
    label: crm_model::Labels,
    required: bool,
    key: bool,
}

/// The preview of a plan: the columns with their fields, the fields to choose from, the first
/// rows with what would become of each, and notes about the file.
pub async fn preview(app: &App, principal: &Principal, plan: &Plan) -> ApiResult<Json> {
    let rows = run::preview(app, principal, plan, PREVIEW_ROWS).await?;
    let choices: Vec<Choice> = mapping::importable(&plan.entity, principal)
        .into_iter()
        .map(|f| Choice {
            name: f.name.to_string(),
            label: f.label.clone(),
            required: f.required,
            key: mapping::is_key(f),
        })
        .collect();
    let columns: Vec<Json> = plan
        .sheet
        .headers
        .iter()
        .zip(&plan.targets)
        .map(|(header, target)| json!({"header": header, "field": target}))
        .collect();
    let notes: Vec<Json> = plan
        .sheet
        .notes
        .iter()
        .map(|note| match note {
            read::Note::Merged { range } => json!({
                "code": "merged",
                "range": range,
                "zh-CN": format!("合并单元格 {range}：值在左上角的单元格里，其余单元格按空值导入"),
                "en": format!("Merged cells {range}: the value is the top-left cell's; the others are imported as empty"),
            }),
        })
        .collect();
    Ok(json!({
        "columns": columns,
        "fields": choices,
        "rows": rows,
        "notes": notes,
        "total_rows": plan.sheet.rows.len(),
        "key": plan.options.key,
    }))
}

/// Starts a plan as a background task of the caller's (kind `import`) and remembers its
/// mapping for their next file; the task's id.
pub async fn start(app: &App, principal: &Principal, plan: Plan) -> ApiResult<Uuid> {
    let entity_name = plan.entity.name().to_string();
    mapping::remember(app, principal.user_id, &entity_name, &plan.sheet.headers, &plan.targets).await?;
    let owner = principal.clone();
    crate::tasks::start(app, principal, "import", Some(&entity_name), move |app, progress| async move {
        let summary = run::run(&app, &owner, &plan, Some(&progress)).await?;
        serde_json::to_value(summary).map_err(|e| ApiError::Internal(e.into()))
    })
    .await
}

/// The failed rows of an import task as CSV: the file's columns, the row number and the
/// reasons, each cell neutralised as in an export.
pub async fn report(app: &App, principal: &Principal, task: Uuid, locale: &str) -> ApiResult<Vec<u8>> {
    let task = crate::tasks::get(app, principal, task).await?;
    let result = match (task.kind.as_str(), task.result) {
        ("import", Some(result)) => result,
        _ => return Err(ApiError::not_found("this task has no import report (yet)")),
    };
    let text = |value: &Json| value.as_str().unwrap_or_default().to_owned();
    let columns: Vec<String> = result["columns"].as_array().into_iter().flatten().map(text).collect();
    let (row_label, reason_label) = if locale == "en" { ("Row", "Reason") } else { ("行号", "失败原因") };
    let mut header = columns.clone();
    header.extend([row_label.to_owned(), reason_label.to_owned()]);
    let mut rows = Vec::new();
    for failure in result["failures"].as_array().into_iter().flatten() {
        let mut cells: Vec<String> = failure["cells"].as_array().into_iter().flatten().map(text).collect();
        cells.resize(columns.len(), String::new());
        let reasons: Vec<String> =
            failure["reasons"].as_array().into_iter().flatten().map(|r| text(&r[locale_key(locale)])).collect();
        cells.push(failure["row"].to_string());
        cells.push(reasons.join("; "));
        rows.push(cells);
    }
    crate::export::csv_bytes(&header, rows)
}

fn locale_key(locale: &str) -> &'static str {
    if locale == "en" { "en" } else { "zh-CN" }
}
