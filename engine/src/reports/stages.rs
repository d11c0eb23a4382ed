//! Average days in stage (SA-5): beside each stage of a report grouped first by a stage
//! field, how long the records the report counts stayed in that stage before they moved on,
//! from the stage history.

use std::sync::Arc;

use crm_model::report::Aggregate;
use crm_model::{Entity, Value};
use crm_store::aggregate;
use serde_json::Value as Json;

use crate::app::App;
use crate::error::ApiResult;

/// Gives each row of a report's result its stage's `days_in_stage` (days to a tenth, null
/// when no record left that stage); a report not grouped first by a stage is left as it is.
pub(super) async fn add_days(app: &App, entity: &Entity, compiled: &Aggregate, result: &mut Json) -> ApiResult<()> {
    let Some(statement) = aggregate::days_in_stage_statement(app.db.dialect(), entity, compiled) else {
        return Ok(());
    };
    // It reads every move of the records the report counts, more rows than the groups read,
    // and a write makes it stale as it makes them (a move is a write): kept beside them.
    let days =
        app.report_groups
            .get_or(statement.cache_key(), || async move {
                Ok(Arc::new(aggregate::days_in_stage(&app.db, statement).await?))
            })
            .await?;
    for row in result["rows"].as_array_mut().into_iter().flatten() {
        let stage = &row["keys"][0];
        let figure = days
            .iter()
            .find(|d| matches!(&d.keys[0], Value::Text(s) if *stage == *s))
            .and_then(|d| d.measures.first())
            .map_or(Json::Null, super::measured_json);
        row["days_in_stage"] = figure;
    }
    Ok(())
}
