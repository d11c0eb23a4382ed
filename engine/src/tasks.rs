//! Background tasks: long work a person starts (an import, a duplicate scan, a reindex) runs
//! after the request that started it has answered, and reports how far it got in `crm_task`,
//! where a progress bar on any node can follow it (`GET /api/v1/tasks/{id}`) and its result
//! stays for the report. A task dies with its process; the node marks what it left running
//! as failed when it starts again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_store::tasks::{self as store, Task};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::access::Principal;
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};

/// How often a task's progress is written, at most.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// A running task's handle on its own progress.
pub struct Progress {
    app: AppState,
    id: Uuid,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    /// How far the task is: `done` of `total`. Written at most every [`REPORT_EVERY`].
    pub async fn report(&self, done: usize, total: Option<usize>) {
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let total = total.map(|t| t as i64);
        if let Err(error) = store::progress(&self.app.db, self.id, done as i64, total, self.app.now()).await {
            tracing::warn!(task = %self.id, error = ?error, "writing a task's progress failed");
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The progress of a task started elsewhere (a reindex a metadata change asked for).
    pub(crate) fn of(app: &App, id: Uuid) -> Self {
        Progress { app: app.shared(), id, last: Mutex::new(None) }
    }
}

/// Starts `work` as a task of `principal`'s and returns its id at once.
pub async fn start<F, Fut>(
    app: &App,
    principal: &Principal,
    kind: &'static str,
    entity: Option<&str>,
    work: F,
) -> ApiResult<Uuid>
where
    F: FnOnce(AppState, Progress) -> Fut + Send + 'static,
    Fut: Future<Output = ApiResult<Json>> + Send + 'static,
{
    let id = Uuid::now_v7();
    store::insert(app.db.dialect(), id, kind, entity, &app.node, Some(principal.user_id), app.now())
        .execute(&app.db)
        .await?;
    let app = app.shared();
    tokio::spawn(async move {
        let progress = Progress::of(&app, id);
        let outcome = work(app.clone(), progress).await.map_err(|error| match error {
            ApiError::Internal(cause) => {
                tracing::error!(task = %id, kind, cause = ?cause, "a background task failed");
                "internal".to_owned()
            }
            other => other.to_string(),
        });
        if let Err(error) = store::finish(&app.db, id, outcome, app.now()).await {
            tracing::error!(task = %id, error = ?error, "recording the end of a task failed");
        }
    });
    Ok(id)
}

/// A task as its starter (or an administrator) sees it; anyone else is told there is none.
pub async fn get(app: &App, principal: &Principal, id: Uuid) -> ApiResult<Task> {
    match store::get(&app.db, id).await? {
        Some(task) if task.created_by == Some(principal.user_id) || principal.is_admin() => Ok(task),
        _ => Err(ApiError::not_found(format!("no task `{id}`"))),
    }
}

/// Marks the tasks this node left running when its process ended as failed; not those this
/// process started before serving (the reindexing a first start's install asks for).
pub async fn mark_interrupted(app: &App) -> ApiResult<()> {
    let stopped = store::interrupted(&app.db, &app.node, "interrupted", app.opened_at, app.now()).await?;
    if stopped > 0 {
        tracing::warn!(stopped, "tasks left running by a previous process were marked failed");
    }
    Ok(())
}
