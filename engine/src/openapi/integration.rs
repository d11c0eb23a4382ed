//! The operations administrators set the installation up with for the outside world: the
//! company's name and logo, webhooks' secrets and deliveries (the subscriptions are metadata
//! documents, `/api/v1/meta/webhooks/{name}`), ERP sync's connections and runs (the mappings
//! are `/api/v1/meta/syncs/{name}`), single sign-on, and industry templates.

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
            .path("name", name.clone())
            .answers_empty(204, "Removed"),
    );
    sync(&mut path, &name);
    sso(&mut path);
    templates(&mut path, &name);
}

fn templates(path: &mut impl FnMut(&str, &str, Op), name: &Json) {
    let labels = json!({"type": "object", "properties": {"zh-CN": {"type": "string"}, "en": {"type": "string"}}});
    let step = json!({"type": "object", "required": ["key", "action"], "properties": {
        "key": {"type": "string", "description": "The item: `entities/customer/fields/ka_abc_class`, `layouts/x/edit/section`, `roles/sales_rep/entities/x`, `reports/y`."},
        "action": {"enum": ["add", "update", "remove", "keep_local", "conflict"]},
        "base": {"description": "The item as the installed version had it."},
        "theirs": {"description": "The item as the template has it."},
        "ours": {"description": "The item as it is here."},
    }});
    let errors =
        json!({"type": "array", "description": "Why the result would not be valid metadata, if it would not."});
    path(
        "/api/v1/templates",
        "get",
        Op::new("templates", "The industry templates shipped, and which version of each is installed").answers(
            200,
            "The templates",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
            "type": "object", "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}, "label": labels.clone(),
                "summary": labels.clone(), "features": {"type": "array", "items": labels},
                "installed": {"type": ["object", "null"]},
            }}}}}),
        ),
    );
    path(
        "/api/v1/templates/{name}",
        "get",
        Op::new(
            "template",
            "A template and its plan over the metadata here: each item added, updated, removed, kept or in conflict",
        )
        .path("name", name.clone())
        .answers(
            200,
            "The template and its plan",
            json!({"type": "object", "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}, "manifest": {"type": "object"},
                "installed": {"type": ["string", "null"]},
                "steps": {"type": "array", "items": step.clone()},
                "plan": {"type": "array", "items": {"type": "string"}}, "errors": errors.clone()}}),
        ),
    );
    path(
        "/api/v1/templates/{name}/install",
        "post",
        Op::new("install_template", "Install a template or upgrade it to the version shipped, keeping what was changed here; every conflict must be chosen (`mine` keeps the item here, `theirs` takes the template's). `sample_data` also creates its sample records; `dry_run` answers the plan only")
            .path("name", name.clone())
            .body(json!({"type": "object", "additionalProperties": false, "properties": {
                "sample_data": {"type": "boolean"}, "dry_run": {"type": "boolean"},
                "choices": {"type": "object", "additionalProperties": {"enum": ["mine", "theirs"]}}}}))
            .answers(200, "The plan (a dry run)", json!({"type": "object", "properties": {
                "steps": {"type": "array", "items": step}, "plan": {"type": "array", "items": {"type": "string"}}, "errors": errors}}))
            .answers(201, "Installed", json!({"type": "object", "properties": {
                "version": {"type": "string"}, "plan": {"type": "array", "items": {"type": "string"}},
                "records": {"type": "integer", "description": "The records created: its configuration data and, when asked, its sample data."}}})),
    );
    path(
        "/api/v1/templates/{name}/remove",
        "post",
        Op::new("remove_template", "Remove an installed template: its entities and the fields it added are archived with their records, its grants, panels, rules and reports taken out, except what was changed here")
            .path("name", name.clone())
            .answers(200, "Removed", json!({"type": "object", "properties": {"plan": {"type": "array", "items": {"type": "string"}}}})),
    );
}

fn sync(path: &mut impl FnMut(&str, &str, Op), name: &Json) {
    let counts = json!({"type": "object", "properties": {
        "read": {"type": "integer"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
        "deleted": {"type": "integer"}, "unchanged": {"type": "integer"}, "failed": {"type": "integer"},
    }});
    let run = json!({"type": "object", "required": ["id", "sync", "status", "counts"], "properties": {
        "id": {"type": "string", "format": "uuid"},
        "sync": {"type": "string"},
        "trigger": {"enum": ["manual", "schedule"]},
        "dry_run": {"type": "boolean"},
        "full": {"type": "boolean", "description": "Every row was compared (and rows gone from the source were seen)."},
        "status": {"enum": ["running", "succeeded", "failed"]},
        "started_by": {"type": ["string", "null"], "format": "uuid"},
        "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "counts": counts,
        "message": {"type": ["string", "null"], "description": "Why the run stopped, when it did."},
        "errors": {"type": "array", "description": "The rows it could not keep: `{code, message}`."},
        "changes": {"type": "array", "description": "For a dry run, what it would do: `{code, action, record_id, changes}`."},
    }});
    path(
        "/api/v1/sync",
        "get",
        Op::new(
            "sync_overview",
            "The sync mappings with their latest run, and the connections they use (without passwords)",
        )
        .answers(
            200,
            "The mappings",
            json!({"type": "object", "required": ["data", "connections"], "properties": {
                "data": {"type": "array"}, "connections": {"type": "array"}}}),
        ),
    );
    path(
        "/api/v1/sync/connections/{name}",
        "put",
        Op::new("set_sync_connection", "Set the address of an external database (mysql://, mariadb:// or postgres://); it is tried first and kept encrypted")
            .path("name", name.clone())
            .body(json!({"type": "object", "required": ["url"], "additionalProperties": false, "properties": {"url": {"type": "string"}}}))
            .answers(200, "Connected and kept", json!({"type": "object", "properties": {
                "name": {"type": "string"}, "address": {"type": "string", "description": "Without the password."}}}))
            .fails(&[502]),
    );
    path(
        "/api/v1/sync/{name}/runs",
        "post",
        Op::new("run_sync", "Run a mapping now: `dry_run` records what would change and writes nothing, `full` compares every row; `wait` answers when it has ended (201), otherwise as it starts (202)")
            .path("name", name.clone())
            .body(json!({"type": "object", "additionalProperties": false, "properties": {
                "full": {"type": "boolean"}, "dry_run": {"type": "boolean"}, "wait": {"type": "boolean"}}}))
            .answers(201, "The run, ended", run.clone())
            .answers(202, "The run, started", run.clone())
            .fails(&[409]),
    );
    path(
        "/api/v1/sync/{name}/runs",
        "get",
        Op::new("sync_runs", "A mapping's latest runs, newest first")
            .path("name", name.clone())
            .query(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}))
            .answers(200, "The runs", json!({"type": "array", "items": run.clone()})),
    );
    path(
        "/api/v1/sync/runs/{id}",
        "get",
        Op::new("sync_run", "One run, with its failed rows and, for a dry run, what it would change")
            .path("id", json!({"type": "string", "format": "uuid"}))
            .answers(200, "The run", run),
    );
}

fn sso(path: &mut impl FnMut(&str, &str, Op)) {
    let settings = json!({"type": "object", "required": ["enabled", "issuer", "client_id"], "additionalProperties": false, "properties": {
        "enabled": {"type": "boolean"},
        "issuer": {"type": "string", "description": "The OpenID provider; its discovery document is at <issuer>/.well-known/openid-configuration."},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string", "description": "Write-only; absent keeps the saved one."},
        "redirect_uri": {"type": "string", "description": "<public url>/sso/callback when absent."},
        "scopes": {"type": "string", "default": "openid email profile"},
        "groups_claim": {"type": "string", "default": "groups"},
        "roles": {"type": "object", "additionalProperties": {"type": "string"}, "description": "The role each group gives."},
        "default_role": {"type": "string", "description": "The role of a new user whose groups give none; without it they are refused."},
        "department_claim": {"type": "string", "description": "The claim naming the department, by its name."},
        "local_login": {"type": "boolean", "default": true, "description": "Off: only the break-glass administrator signs in with a password."},
        "break_glass": {"type": "string", "description": "An administrator's login."},
    }});
    let shown = json!({"type": "object", "required": ["enabled", "client_secret_set"], "properties": {
        "enabled": {"type": "boolean"}, "client_secret_set": {"type": "boolean"}}});
    path(
        "/api/v1/admin/sso",
        "get",
        Op::new("sso_settings", "Single sign-on's settings, without the client secret").answers(
            200,
            "The settings",
            shown.clone(),
        ),
    );
    path(
        "/api/v1/admin/sso",
        "put",
        Op::new("set_sso", "Set single sign-on up: the roles must exist, the provider must answer when it is turned on, and passwords are turned off only with a break-glass administrator")
            .body(settings)
            .answers(200, "Saved", shown)
            .fails(&[502]),
    );
}
