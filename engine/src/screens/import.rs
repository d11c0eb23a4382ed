//! The import page of an entity (`/e/{entity}/import`): choose a file, see each column with the
//! field proposed for it and the first rows checked, choose how to import, start, follow the
//! progress bar to the summary and the report of failed rows. The page's script sends the file
//! to the import API; the page gives it the words it shows, in the user's language.

use axum::extract::State;
use axum::response::Response;
use crm_model::Action;
use serde_json::{Map, Value as Json, json};

use super::{Viewer, html};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ApiPath;

/// The UI strings the page's script shows, and the error codes it explains.
const TEXTS: &[&str] = &[
    "import.empty",
    "import.mapping",
    "import.column",
    "import.field",
    "import.skip_column",
    "import.required",
    "import.preview",
    "import.total_rows",
    "import.no_rows",
    "import.row",
    "import.result",
    "import.outcome.create",
    "import.outcome.update",
    "import.outcome.skip",
    "import.outcome.fail",
    "import.no_key",
    "import.checking",
    "import.running",
    "import.done",
    "import.summary",
    "import.not_written",
    "import.failures",
    "import.report",
    "import.task_failed",
    "error.failed",
];

const ERROR_CODES: &[&str] = &[
    "import_not_xlsx",
    "import_xls",
    "import_unsupported",
    "import_broken",
    "import_no_header",
    "import_too_many_rows",
    "import_encoding",
    "import_no_file",
    "import_key",
    "import_mapping",
    "payload_too_large",
    "forbidden",
    "invalid_body",
    "csrf_failed",
];

/// `GET /e/{entity}/import`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiPath(entity_name): ApiPath<String>,
) -> ApiResult<Response> {
    let catalog = app.catalog();
    let entity = viewer.principal.entity(&catalog, &entity_name, Action::Import)?;
    let label = entity.def.label.get(viewer.locale).to_owned();
    let mut texts: Map<String, Json> = TEXTS.iter().map(|key| ((*key).to_owned(), json!(viewer.text(key)))).collect();
    for code in ERROR_CODES {
        let key = format!("error.{code}");
        texts.insert(key.clone(), json!(viewer.text(&key)));
    }
    let title = super::shell::text(viewer.locale, "import.title", &[("entity", label.clone())]);
    let values = json!({"entity": entity_name, "entity_label": label, "texts": texts});
    html("import.html", viewer.page(&catalog, Some(&entity_name), &title, values))
}
