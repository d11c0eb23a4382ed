//! The operations administrators set the installation up with for the outside world: the
//! company's name and logo, and webhooks' secrets and deliveries (the subscriptions are
//! metadata documents, `/api/v1/meta/webhooks/{name}`).

use serde_json::{Map, Value as Json, json};

use super::Op;
use crate::access::Principal;

pub(super) fn add(paths: &mut Map<String, Json>, p: &Principal) {
    if !p.is_admin() {
        return;
    }
    let mut path = |path: &str, method: &str, op: Op| {
        paths.entry(path.to_owned()).or_insert_with(|| json!({}))[method] = op.build();
    };
    let name = json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"});
    let brand = json!({"type": "object", "properties": {
        "name": {"type": ["string", "null"]},
        "logo": {"type": ["string", "null"], "description": "The logo's address (`/brand/logo?v=...`, or the configured URL)."},
    }});
    path(
        "/api/v1/admin/company",
        "get",
        Op::new("company", "The company's name and logo, as the top bar, the login page and printouts show them")
            .answers(200, "The company", brand.clone()),
    );
    path(
        "/api/v1/admin/company",
        "put",
        Op::new("set_company", "Name the company and give it a logo (PNG, JPEG, GIF or WebP, at most 256 KB); no file keeps the logo, `remove_logo` takes it away; nothing is saved if a part is wrong")
            .multipart(json!({"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 100},
                "logo": {"type": "string", "format": "binary"},
                "remove_logo": {"enum": ["true", "false"]},
            }}))
            .answers(200, "Saved", brand),
    );
    let attempt = json!({"type": "object", "properties": {
        "at": {"type": "string", "format": "date-time"},
        "status_code": {"type": ["integer", "null"]},
        "answer": {"type": ["string", "null"], "description": "The start of the receiver's answer, or why there was none."},
        "duration_ms": {"type": "integer"},
    }});
    let delivery = json!({"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Sent as X-CRM-Delivery: receivers deduplicate by it."},
        "webhook": {"type": "string"}, "event": {"type": "string"}, "entity": {"type": "string"},
        "record_id": {"type": "string", "format": "uuid"},
        "status": {"enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "next_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        "attempt_log": {"type": "array", "items": attempt},
    }});
    path(
        "/api/v1/webhooks/{name}/secret",
        "post",
        Op::new(
            "new_webhook_secret",
            "Make the webhook a new signing secret, answered this once; deliveries sign with it from now on",
        )
        .path("name", name.clone())
        .answers(
            200,
            "The secret",
            json!({"type": "object", "required": ["secret"], "properties": {"secret": {"type": "string"}}}),
        ),
    );
    path(
        "/api/v1/webhooks/{name}/deliveries",
        "get",
        Op::new("webhook_deliveries", "The webhook's latest deliveries, newest first, each with its attempts")
            .path("name", name.clone())
            .query(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}))
            .answers(200, "The deliveries", json!({"type": "object", "required": ["data"], "properties": {
                "data": {"type": "array", "items": delivery}, "secret_set": {"type": "boolean"}}})),
    );
    path(
        "/api/v1/webhooks/{name}/deliveries/{id}/redeliver",
        "post",
        Op::new("redeliver_webhook", "Send a delivery again from now, whatever became of it")
            .path("name", name.clone())
            .path("id", json!({"type": "string", "format": "uuid"}))
            .answers(200, "It will be sent", json!({"type": "object"})),
    );
    path(
        "/api/v1/webhooks/{name}",
        "delete",
        Op::new("remove_webhook", "Remove a webhook and its secret; its deliveries stay in the log")
            .path("name", name)
            .answers_empty(204, "Removed"),
    );
}
