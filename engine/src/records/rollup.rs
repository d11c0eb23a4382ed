//! Rollups: totals the engine keeps on a record over the records that point at it (a quote's
//! total over its lines). They are recomputed inside the transaction that created, changed,
//! deleted or restored one of those records, over all of them whoever wrote them, so a total
//! never depends on who saved last or what they could see.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use crm_model::{Catalog, Ident, Value, value};
use crm_store::records as store;
use crm_store::system::{self, AuditEntry, OutboxEvent};
use crm_store::{Record, Tx};
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiResult;

/// How many levels of rollups over rollups are followed (an order's total, then a
/// customer's total of orders).
const MAX_LEVELS: usize = 4;

/// Recomputes the rollups fed by written records (`(entity, before, after)`), and those fed
/// by the totals that changed, audited as coming from `source`; returns the entities whose
/// records changed.
pub(super) async fn recompute(
    tx: &mut Tx,
    catalog: &Catalog,
    written: Vec<(Ident, Option<Record>, Record)>,
    by: Uuid,
    source: &'static str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Ident>> {
    let mut touched = Vec::new();
    let mut level = written;
    for _ in 0..MAX_LEVELS {
        // Sorted, so that transactions lock parents in one order and never wait on each other
        // in a circle.
        let mut due: BTreeSet<(Ident, Ident, Uuid)> = BTreeSet::new();
        for (entity_name, before, after) in &level {
            let Some(entity) = catalog.entity(entity_name.as_str()) else { continue };
            for rollup in catalog.rollups_left_of(entity_name.as_str()) {
                let Some(base) = rollup.def.left_of.as_ref().and_then(|f| entity.column_index(f.as_str())) else {
                    continue;
                };
                if before.as_ref().is_none_or(|before| before.values[base] != after.values[base]) {
                    due.insert((rollup.entity.clone(), rollup.field.clone(), after.id()));
                }
            }
            for rollup in catalog.rollups_from(entity_name.as_str()) {
                let Some(via) = entity.column_index(rollup.def.via.as_str()) else { continue };
                for record in before.iter().chain([after]) {
                    if let Value::Uuid(parent) = record.values[via] {
                        due.insert((rollup.entity.clone(), rollup.field.clone(), parent));
                    }
                }
            }
        }
        if due.is_empty() {
            break;
        }
        let mut next = Vec::new();
        let (mut audit, mut events) = (Vec::new(), Vec::new());
        for (parent_name, field_name, id) in due {
            let Some(parent) = catalog.entity(parent_name.as_str()) else { continue };
            let Some(rollup) = catalog.rollup(parent_name.as_str(), field_name.as_str()) else { continue };
            let field = parent.field(field_name.as_str()).expect("a rollup's field");
            let Some((old, stored)) = store::recompute_rollup(tx, parent, rollup, id, by, now).await? else {
                continue;
            };
            let new = &stored.values[parent.column_index(field_name.as_str()).expect("a column of the parent")];
            audit.push(AuditEntry {
                actor: Some(by),
                entity: parent_name.to_string(),
                record_id: id,
                action: "update",
                source: Some(source),
                changes: json!({ field_name.as_str(): [value::to_json(field, &old), value::to_json(field, new)] }),
            });
            events.push(OutboxEvent {
                entity: parent_name.to_string(),
                record_id: id,
                event: "updated",
                payload: json!({
                    "version": stored.version(),
                    "fields": [field_name.as_str()],
                    "by": by,
                    "source": source,
                }),
            });
            touched.push(parent_name.clone());
            next.push((parent_name, None, stored));
        }
        system::record_change(tx, now, audit, events).await?;
        level = next;
    }
    Ok(touched)
}
