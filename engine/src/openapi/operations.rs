//! The operations that are not one entity's records: metadata, sign-in and one's own session,
//! tokens and reminders, lead and quote conversion, the knowledge base's import, accounts and
//! the audit log (for administrators), health and this document.

use crm_model::{Action, Catalog, USER_ENTITY};
use serde_json::{Map, Value as Json, json};

use super::{Op, documents, reference};
use crate::access::Principal;
use crate::convert::quote;

/// Names of metadata documents and fields.
fn ident() -> Json {
    json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"})
}

fn labels() -> Json {
    json!({
        "type": "object", "required": ["zh-CN", "en"],
        "properties": {"zh-CN": {"type": "string"}, "en": {"type": "string"}},
    })
}

/// `{"data": [...]}` of items of a schema.
fn data(items: Json) -> Json {
    json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": items}}})
}

fn set_cookie(description: &str) -> Json {
    json!({"Set-Cookie": {"description": description, "schema": {"type": "string"}}})
}

/// Adds every operation but the records'.
pub(super) fn add(paths: &mut Map<String, Json>, catalog: &Catalog, p: &Principal) {
    let mut path = |path: &str, method: &str, op: Op| {
        paths.entry(path.to_owned()).or_insert_with(|| json!({}))[method] = op.build();
    };
    let uuid = json!({"type": "string", "format": "uuid"});
    let maybe_uuid = json!({"type": ["string", "null"], "format": "uuid"});
    let moment = json!({"type": ["string", "null"], "format": "date-time"});
    let entities: Vec<&str> = catalog.entities().map(|e| e.name().as_str()).filter(|name| p.sees(name)).collect();
    let entity_param = json!({"type": "string", "enum": entities});
    let kinds = documents(p);
    let any_document = json!({"anyOf": kinds.iter().map(|(_, component)| reference(component)).collect::<Vec<_>>()});
    let description = json!({
        "type": "object",
        "required": ["entity", "layout", "list_view", "related", "read_only"],
        "properties": {
            "entity": reference("EntityDocument"),
            "layout": reference("LayoutDocument"),
            "list_view": reference("ListViewDocument"),
            "related": reference("RelatedDocument"),
            "read_only": {"type": "array", "items": {"type": "string"}, "description": "Fields the caller may see but not change."},
        },
    });

    // The API's own description and health.
    path(
        "/api/openapi.json",
        "get",
        Op::new("openapi", "This document, for the caller").answers(
            200,
            "The OpenAPI document",
            json!({"type": "object", "required": ["openapi", "info", "paths", "components"]}),
        ),
    );
    path(
        "/healthz",
        "get",
        Op::new("healthz", "Whether the server and its database answer")
            .public()
            .answers(
                200,
                "Up",
                json!({"type": "object", "required": ["status", "catalog_version"],
                       "properties": {"status": {"const": "ok"}, "catalog_version": {"type": "integer"}}}),
            )
            .answers(
                503,
                "The database does not answer",
                json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "unavailable"}}}),
            ),
    );

    // Metadata, for everyone.
    path(
        "/api/v1/meta/entities",
        "get",
        Op::new("list_entities", "The caller's modules").answers(
            200,
            "The entities the caller sees",
            json!({
                "type": "object", "required": ["catalog_version", "data"],
                "properties": {
                    "catalog_version": {"type": "integer"},
                    "data": {"type": "array", "items": {
                        "type": "object", "required": ["name", "label", "icon", "system"],
                        "properties": {"name": {"type": "string"}, "label": labels(), "icon": {"type": ["string", "null"]}, "system": {"type": "boolean"}},
                    }},
                },
            }),
        ),
    );
    path(
        "/api/v1/meta/entities/{entity}",
        "get",
        Op::new("get_entity", "An entity with its layouts, list view and panels, as the caller sees them")
            .path("entity", entity_param.clone())
            .answers(200, "The entity", description.clone()),
    );
    let folders: Vec<&str> = kinds.iter().map(|(kind, _)| kind.folder()).collect();
    let mut names: Vec<&str> = entities.clone();
    names.extend(catalog.docs().stage_sets.keys().map(|name| name.as_str()));
    let mut document_name = ident();
    document_name["examples"] = json!(names);
    path(
        "/api/v1/meta/{kind}/{name}",
        "get",
        Op::new(
            "get_document",
            "A layout, list view, related panels or stage set document (roles and scripts: administrators)",
        )
        .path("kind", json!({"enum": folders}))
        .path("name", document_name)
        .answers(200, "The document", any_document.clone()),
    );

    // One's own session, password, tokens and reminders.
    let credentials = json!({
        "type": "object", "required": ["login", "password"], "additionalProperties": false,
        "properties": {
            "login": {"type": "string"}, "password": {"type": "string"},
            "name": {"type": "string", "description": "A name for the token."},
        },
    });
    path(
        "/api/v1/auth/token",
        "post",
        Op::new("create_token", "Exchange a login and password for a bearer token")
            .public()
            .body(credentials.clone())
            .answers(
                201,
                "A bearer token",
                json!({"type": "object", "required": ["token", "token_type", "user_id"],
                       "properties": {"token": {"type": "string"}, "token_type": {"const": "Bearer"}, "user_id": uuid}}),
            )
            .fails(&[401, 422, 429]),
    );
    path(
        "/api/v1/auth/login",
        "post",
        Op::new("login", "Sign in: a session cookie and its CSRF token")
            .public()
            .body(credentials)
            .answers_with(200, json!({
                "description": "Signed in",
                "headers": set_cookie("The HttpOnly session cookie."),
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["user_id", "csrf_token", "must_change_password"],
                    "properties": {"user_id": uuid, "csrf_token": {"type": "string"}, "must_change_password": {"type": "boolean"}},
                }}},
            }))
            .fails(&[401, 429]),
    );
    path(
        "/api/v1/auth/logout",
        "post",
        Op::new("logout", "End the browser session").answers_with(
            204,
            json!({"description": "Signed out", "headers": set_cookie("Takes the session cookie away.")}),
        ),
    );
    path(
        "/api/v1/auth/session",
        "get",
        Op::new("session", "Who is signed in, their roles and (with a cookie) the CSRF token").answers(
            200,
            "The session",
            json!({
                "type": "object",
                "required": ["user_id", "department", "roles", "administrator", "must_change_password", "csrf_token"],
                "properties": {
                    "user_id": uuid, "department": maybe_uuid, "roles": {"type": "array", "items": {"type": "string"}},
                    "administrator": {"type": "boolean"}, "must_change_password": {"type": "boolean"},
                    "csrf_token": {"type": ["string", "null"]},
                },
            }),
        ),
    );
    path(
        "/api/v1/auth/password",
        "post",
        Op::new("change_password", "Change one's own password (at least 8 characters of two kinds)")
            .body(json!({
                "type": "object", "required": ["current_password", "password"], "additionalProperties": false,
                "properties": {"current_password": {"type": "string"}, "password": {"type": "string", "minLength": 8}},
            }))
            .answers_empty(204, "Changed")
            .fails(&[422]),
    );
    path(
        "/api/v1/auth/tokens",
        "get",
        Op::new("list_api_tokens", "One's API tokens (never their secrets)").answers(
            200,
            "The tokens",
            data(json!({
                "type": "object", "required": ["id", "name", "created_at", "expires_at", "revoked_at"],
                "properties": {"id": uuid, "name": {"type": "string"}, "created_at": moment, "expires_at": moment, "revoked_at": moment},
            })),
        ),
    );
    path(
        "/api/v1/auth/tokens",
        "post",
        Op::new("create_api_token", "A new API token, shown once")
            .body(json!({
                "type": "object", "required": ["name"], "additionalProperties": false,
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
            }))
            .answers(
                201,
                "The token",
                json!({"type": "object", "required": ["token", "token_type"],
                       "properties": {"token": {"type": "string"}, "token_type": {"const": "Bearer"}}}),
            )
            .fails(&[422]),
    );
    path(
        "/api/v1/auth/tokens/{id}",
        "delete",
        Op::new("revoke_api_token", "Revoke one of one's tokens")
            .path("id", uuid.clone())
            .answers_empty(204, "Revoked"),
    );
    path(
        "/api/v1/reminders",
        "get",
        Op::new("list_reminders", "One's open reminders: due today and overdue")
            .query(json!({"name": "when", "in": "query", "schema": {"enum": ["today", "overdue"]}}))
            .answers(
                200,
                "The reminders",
                data(json!({
                    "type": "object",
                    "required": ["id", "message", "entity", "record_id", "rule", "due_at", "done_at", "overdue"],
                    "properties": {
                        "id": uuid, "message": {"type": "string"}, "entity": {"type": ["string", "null"]},
                        "record_id": maybe_uuid, "rule": {"type": ["string", "null"]}, "due_at": moment,
                        "done_at": moment, "overdue": {"type": "boolean"},
                        // Written in both languages: `message` is then the Chinese text.
                        "messages": labels(),
                    },
                })),
            ),
    );
    let labels = labels();
    path(
        "/api/v1/search",
        "get",
        Op::new("search", "Search the records one reads, grouped by module, best first")
            .query(json!({"name": "q", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 100}}))
            .query(json!({"name": "entities", "in": "query", "description": "Modules to search, comma-separated.",
                "schema": {"type": "string"}}))
            .query(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}}))
            .answers(
                200,
                "The records found",
                json!({
                    "type": "object", "required": ["q", "groups"],
                    "properties": {
                        "q": {"type": "string"},
                        "groups": {"type": "array", "items": {
                            "type": "object", "required": ["entity", "label", "hits"],
                            "properties": {
                                "entity": {"type": "string"}, "label": labels,
                                "hits": {"type": "array", "items": {
                                    "type": "object",
                                    "required": ["id", "title", "field", "field_label", "fragment", "highlights", "score"],
                                    "properties": {
                                        "id": uuid, "title": {"type": "string"}, "field": {"type": "string"},
                                        "field_label": {"oneOf": [labels, {"type": "null"}]},
                                        "fragment": {"type": "string"},
                                        "highlights": {"type": "array", "description": "Byte ranges of the fragment that matched.",
                                            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}},
                                        "score": {"type": "number"},
                                    },
                                }},
                            },
                        }},
                    },
                }),
            ),
    );
    let report = json!({
        "type": "object", "required": ["name", "label", "entity", "chart", "groups", "measures", "rows"],
        "properties": {
            "name": {"type": "string"}, "label": labels, "entity": {"type": "string"},
            "chart": {"enum": ["table", "bar", "stacked_bar", "line", "pie", "donut", "funnel", "number"]},
            "groups": {"type": "array", "items": {"type": "object", "required": ["field", "label"]}},
            "measures": {"type": "array", "items": {"type": "object", "required": ["agg", "label"]}},
            "rows": {"type": "array", "items": {
                "type": "object", "required": ["keys", "labels", "values"],
                "properties": {
                    "keys": {"type": "array", "description": "Each group's value; a date bucket as `2026-11-30` (day, or the Monday of a week), `2026-11`, `2026-Q4` or `2026`."},
                    "labels": {"type": "array", "items": labels},
                    "values": {"type": "array", "description": "Each measure: a count as a number, an amount as an exact decimal string.",
                        "items": {"oneOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}},
                    "filter": {"description": "The filter tree of the records behind the row, for `GET /api/v1/records/{entity}?filter=`; null when a group is read through a lookup."},
                    "days_in_stage": {"type": ["string", "null"], "description": "Only when the first group is a stage field of the report's entity: the average days the records the report counts stayed in this stage before they moved on, from the stage history, as a decimal string with one decimal; null when none has left it."},
                },
            }},
        },
    });
    let offset = json!({"name": "offset", "in": "query", "description": "The caller's offset from UTC in minutes; date-times fall into that time zone's days.",
        "schema": {"type": "integer", "minimum": -840, "maximum": 840, "default": 480}});
    path(
        "/api/v1/reports",
        "get",
        Op::new("reports", "The reports one may run: those of metadata shared with one's roles, then the saved reports one owns or that are shared with one").answers(
            200,
            "The reports",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
                "type": "object", "required": ["name", "label", "entity", "chart"]}}}}),
        ),
    );
    let saving = json!({"type": "object", "required": ["report"], "additionalProperties": false, "properties": {
        "report": {"description": "A report as `POST /api/v1/reports/run` takes it."},
        "roles": {"type": "array", "items": {"type": "string"}, "description": "The roles it is shared with; none keeps it private."},
    }});
    let saved = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "description": "`u_` and the report's id"}}});
    path(
        "/api/v1/reports",
        "post",
        Op::new("save_report", "Save a report one built (needs a role that builds reports)")
            .body(saving.clone())
            .answers(201, "Saved", saved.clone())
            .fails(&[400, 403, 422]),
    );
    path(
        "/api/v1/reports/{name}",
        "put",
        Op::new("change_report", "Change a saved report of one's own (an administrator's: any)")
            .path("name", json!({"type": "string"}))
            .body(saving)
            .answers(200, "Saved", saved)
            .fails(&[400, 403, 404, 422]),
    );
    path(
        "/api/v1/reports/{name}",
        "delete",
        Op::new("delete_report", "Delete a saved report of one's own (an administrator's: any)")
            .path("name", json!({"type": "string"}))
            .answers_empty(204, "Deleted")
            .fails(&[403, 404]),
    );
    path(
        "/api/v1/reports/{name}/export.xlsx",
        "get",
        Op::new("export_report", "A report's table as an Excel workbook, within one's read scope")
            .path("name", json!({"type": "string"}))
            .query(offset.clone())
            .query(json!({"name": "locale", "in": "query", "schema": {"enum": ["zh-CN", "en"], "default": "zh-CN"}}))
            .answers_file(200, "The workbook", &[crate::export::XLSX_TYPE])
            .fails(&[404]),
    );
    path(
        "/api/v1/reports/{name}",
        "get",
        Op::new("run_report", "Run a saved report within one's read scope")
            .path("name", json!({"type": "string"}))
            .query(offset.clone())
            .answers(200, "The groups and their measures", report.clone())
            .fails(&[404]),
    );
    path(
        "/api/v1/reports/{name}/chart.svg",
        "get",
        Op::new(
            "report_chart",
            "A saved report's first group and first measure drawn as SVG bars (a funnel for a funnel report)",
        )
        .path("name", json!({"type": "string"}))
        .query(offset.clone())
        .query(json!({"name": "locale", "in": "query", "schema": {"enum": ["zh-CN", "en"], "default": "zh-CN"}}))
        .answers_file(200, "The chart", &["image/svg+xml"])
        .fails(&[404]),
    );
    path(
        "/api/v1/reports/run",
        "post",
        Op::new("run_ad_hoc_report", "Run a report described in the body, without saving it")
            .query(offset)
            .body(reference("ReportDocument"))
            .answers(200, "The groups and their measures", report)
            .fails(&[404, 422]),
    );
    path(
        "/api/v1/tasks/{id}",
        "get",
        Op::new("task", "A background task one started: how far it is, and what came of it")
            .path("id", uuid.clone())
            .answers(200, "The task", reference("Task")),
    );
    path(
        "/api/v1/tasks/{id}/report.csv",
        "get",
        Op::new(
            "import_report",
            "The failed rows of an import one started: its columns, the row number and the reasons",
        )
        .path("id", uuid.clone())
        .query(json!({"name": "locale", "in": "query", "description": "The language of the reasons.",
                          "schema": {"enum": ["zh-CN", "en"], "default": "zh-CN"}}))
        .answers_file(200, "The failed rows as CSV (UTF-8 with a byte-order mark)", &["text/csv"]),
    );
    path(
        "/api/v1/reminders/{id}/done",
        "post",
        Op::new("finish_reminder", "Mark one of one's reminders done")
            .path("id", uuid.clone())
            .answers_empty(204, "Done"),
    );
    path(
        "/api/v1/merges/{id}/undo",
        "post",
        Op::new("undo_merge", "Undo a merge while the record it kept has not changed since")
            .path("id", uuid.clone())
            .answers(
                200,
                "Undone: the losers restored, the references moved back, the survivor's values back",
                json!({
                    "type": "object", "required": ["merge", "survivor", "restored", "repointed"],
                    "properties": {
                        "merge": uuid,
                        "survivor": {"type": "object", "required": ["id", "version"]},
                        "restored": {"type": "array", "items": uuid},
                        "repointed": {"type": "integer", "description": "References moved back to their loser."},
                    },
                }),
            )
            .fails(&[409, 422]),
    );
    if catalog.entity(crate::kb::ARTICLE).is_some() && p.sees(crate::kb::ARTICLE) {
        path(
            "/api/v1/kb/articles",
            "get",
            Op::new("kb_articles", "Knowledge articles one may read, found by text (best first) or newest first, in a category")
                .query(json!({"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}}))
                .query(json!({"name": "category", "in": "query", "schema": {"type": "string", "format": "uuid"}}))
                .answers(
                    200,
                    "The articles; published ones only for those who may not edit articles",
                    json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
                        "type": "object", "required": ["id", "title", "matched"],
                        "properties": {
                            "id": uuid.clone(), "title": {"type": "string"},
                            "matched": {"oneOf": [{"type": "null"}, {
                                "type": "object", "required": ["field_label", "fragment", "highlights"],
                                "properties": {
                                    "field_label": {"oneOf": [labels.clone(), {"type": "null"}]},
                                    "fragment": {"type": "string"},
                                    "highlights": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                                },
                            }]},
                        },
                    }}}}),
                )
                .fails(&[404]),
        );
    }
    if catalog.entity(crate::kb::ARTICLE).is_some() && p.access.allows(crate::kb::ARTICLE, Action::Import) {
        path(
            "/api/v1/kb/import",
            "post",
            Op::new("import_articles", "Knowledge articles from Markdown, HTML or text files: one per file, all or none")
                .multipart(json!({
                    "type": "object", "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "maxItems": crate::kb::import::MAX_FILES,
                            "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                            "description": ".md, .html or .txt files in UTF-8, at most 2 MB each; the title is the first `# heading`, `<title>` or `<h1>`, or the file name."},
                        "category": {"type": "string", "format": "uuid", "description": "The kb_category the articles go in."},
                    },
                }))
                .answers(
                    201,
                    "The articles created, in the order of the files",
                    json!({"type": "object", "required": ["ids"],
                           "properties": {"ids": {"type": "array", "items": uuid.clone()}}}),
                ),
        );
    }
    if catalog.entity("lead").is_some() && p.access.allows("lead", Action::Edit) {
        let ids = json!({"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "format": "uuid", "x-target": "lead"}});
        path(
            "/api/v1/leads/convert",
            "post",
            Op::new("convert_leads", "Convert leads to customer, contact and opportunity; a result per lead")
                .body(json!({
                    "type": "object", "required": ["ids"], "additionalProperties": false,
                    "properties": {
                        "ids": ids,
                        "owner": {"type": "string", "format": "uuid", "description": "Who owns what is created; the caller without it."},
                        "customer": {"type": "string", "format": "uuid", "description": "Attach to this customer instead of creating one."},
                        "create_contact": {"type": "boolean", "default": true},
                        "create_opportunity": {"type": "boolean", "default": true},
                        "opportunity_name": {"type": ["string", "null"]},
                    },
                }))
                .answers(200, "A result per lead", reference("BulkResults"))
                .fails(&[409]),
        );
    }
    if catalog.entity(quote::QUOTE).is_some() && catalog.entity(quote::ORDER).is_some() && quote::allowed(p) {
        path(
            "/api/v1/quotes/{id}/order",
            "post",
            Op::new(
                "convert_quote",
                "Turn a quote into an order: its values and a line per quote line, in one transaction; 409 `already_converted` once an order points at the quote",
            )
            .path("id", json!({"type": "string", "format": "uuid", "x-target": quote::QUOTE}))
            .answers(201, "The order created", reference(quote::ORDER))
            .fails(&[409, 422]),
        );
    }
    if p.is_admin() {
        admin(&mut path, catalog, &folders, description, any_document);
    }
}

/// The operations of administrators: changing metadata, accounts and the audit log.
fn admin(
    path: &mut impl FnMut(&str, &str, Op),
    catalog: &Catalog,
    folders: &[&str],
    description: Json,
    any_document: Json,
) {
    let uuid = json!({"type": "string", "format": "uuid"});
    let maybe_uuid = json!({"type": ["string", "null"], "format": "uuid"});
    let entities: Vec<&str> = catalog.entities().map(|e| e.name().as_str()).collect();
    let entity_param = json!({"type": "string", "enum": entities});
    let mut changed = description;
    changed["required"].as_array_mut().expect("required").push(json!("plan"));
    changed["properties"]["plan"] =
        json!({"type": "array", "items": {"type": "string"}, "description": "What the change did: DDL and documents."});

    path(
        "/api/v1/meta/entities",
        "post",
        Op::new("create_entity", "Create an entity (its table at once)")
            .body(reference("EntityDocument"))
            .answers(201, "Created", changed.clone())
            .fails(&[404, 409, 422]),
    );
    path(
        "/api/v1/meta/entities/{entity}/fields",
        "post",
        Op::new("add_field", "Add a field (the table is altered at once)")
            .path("entity", entity_param.clone())
            .body(reference("NewField"))
            .answers(201, "Added", changed.clone())
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/entities/{entity}/duplicates",
        "put",
        Op::new("set_duplicates", "Replace an entity's duplicate rules")
            .path("entity", entity_param.clone())
            .body(json!({"$ref": "#/components/schemas/EntityDocument/properties/duplicates"}))
            .answers(200, "Changed", changed.clone())
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/entities/{entity}/fields/{field}",
        "patch",
        Op::new("patch_field", "Change a field's labels, options and flags; null removes a property")
            .path("entity", entity_param.clone())
            .path("field", ident())
            .body(reference("FieldPatch"))
            .answers(200, "Changed", changed.clone())
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/entities/{entity}/fields/{field}",
        "delete",
        Op::new("archive_field", "Archive a field: hidden everywhere, its data kept")
            .path("entity", entity_param)
            .path("field", ident())
            .answers(200, "Archived", changed)
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/{kind}/{name}",
        "put",
        Op::new("put_document", "Replace a document (stage sets, roles and scripts: or create one)")
            .path("kind", json!({"enum": folders}))
            .path("name", ident())
            .body(any_document.clone())
            .answers(
                200,
                "Applied",
                json!({"type": "object", "required": ["document", "plan"],
                       "properties": {"document": any_document, "plan": {"type": "array", "items": {"type": "string"}}}}),
            )
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/roles",
        "get",
        Op::new("list_roles", "Every role").answers(200, "The roles", data(reference("RoleDocument"))),
    );
    path(
        "/api/v1/meta/history",
        "get",
        Op::new("meta_history", "Metadata changes, newest first")
            .query(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}}))
            .answers(
                200,
                "The changes",
                data(json!({
                    "type": "object",
                    "required": ["id", "catalog_version", "kind", "name", "before", "after", "changed_by", "changed_at"],
                    "properties": {
                        "id": {"type": "integer"}, "catalog_version": {"type": "integer"}, "kind": {"type": "string"},
                        "name": {"type": "string"}, "before": {}, "after": {}, "changed_by": maybe_uuid,
                        "changed_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                })),
            ),
    );
    let print_template = reference("PrintTemplateDocument");
    path(
        "/api/v1/meta/print_templates",
        "get",
        Op::new("list_print_templates", "Every print template").answers(
            200,
            "The print templates",
            data(print_template.clone()),
        ),
    );
    let templates: Vec<&str> = catalog.docs().print_templates.keys().map(|name| name.as_str()).collect();
    let mut template_name = ident();
    template_name["examples"] = json!(templates);
    path(
        "/api/v1/meta/print_templates/{name}",
        "get",
        Op::new("get_print_template", "A print template").path("name", template_name.clone()).answers(
            200,
            "The print template",
            print_template.clone(),
        ),
    );
    path(
        "/api/v1/meta/print_templates/{name}",
        "put",
        Op::new("put_print_template", "Create or replace a print template; its source must compile")
            .path("name", ident())
            .body(print_template.clone())
            .answers(
                200,
                "Applied",
                json!({"type": "object", "required": ["document", "plan"],
                       "properties": {"document": print_template, "plan": {"type": "array", "items": {"type": "string"}}}}),
            )
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/meta/print_templates/{name}",
        "delete",
        Op::new("delete_print_template", "Remove a print template (its history keeps it)")
            .path("name", template_name)
            .answers_empty(204, "Removed")
            .fails(&[409]),
    );
    let scripts: Vec<&str> = catalog.docs().scripts.keys().map(|name| name.as_str()).collect();
    path(
        "/api/v1/meta/scripts/{name}/dry-run",
        "post",
        Op::new("dry_run_script", "Run a rule without saving: what it would change, raise and do")
            .path("name", json!({"type": "string", "enum": scripts}))
            .body(json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "format": "uuid", "description": "A stored record to run it on."},
                    "record": {"type": "object", "description": "Values to run it on (over the stored record's)."},
                },
            }))
            .answers(
                200,
                "What the rule would do, or why it failed",
                json!({"oneOf": [
                    {"type": "object", "required": ["ok", "changes", "errors", "effects", "value"], "properties": {
                        "ok": {"const": true},
                        "changes": {"type": "object", "description": "Per field, its value before and after."},
                        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"],
                                   "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
                        "effects": {"type": "array", "items": {"type": "object"}},
                        "value": {},
                    }},
                    {"type": "object", "required": ["ok", "error"], "properties": {"ok": {"const": false}, "error": {"type": "string"}}},
                ]}),
            )
            .fails(&[422]),
    );

    let roles: Vec<&str> = catalog.docs().roles.keys().map(|name| name.as_str()).collect();
    let account = json!({
        "type": "object", "required": ["user_id", "roles", "has_password", "must_change_password"],
        "properties": {
            "user_id": uuid, "roles": {"type": "array", "items": {"type": "string"}},
            "has_password": {"type": "boolean"}, "must_change_password": {"type": "boolean"},
        },
    });
    let user = json!({"type": "string", "format": "uuid", "x-target": USER_ENTITY});
    path(
        "/api/v1/admin/users",
        "post",
        Op::new("create_user", "A user with a first password (to change at first sign-in) and roles")
            .body(json!({
                "type": "object", "required": ["user", "password"], "additionalProperties": false,
                "properties": {
                    "user": reference(&format!("{USER_ENTITY}_input")),
                    "password": {"type": "string", "minLength": 8},
                    "roles": {"type": "array", "items": {"enum": roles}},
                },
            }))
            .answers(201, "The user", reference(USER_ENTITY))
            .fails(&[409, 422]),
    );
    path(
        "/api/v1/admin/users/{id}",
        "get",
        Op::new("account", "A user's roles and password state").path("id", user.clone()).answers(
            200,
            "The account",
            account.clone(),
        ),
    );
    path(
        "/api/v1/admin/users/{id}/roles",
        "put",
        Op::new("user_roles", "Replace a user's roles")
            .path("id", user.clone())
            .body(json!({
                "type": "object", "required": ["roles"], "additionalProperties": false,
                "properties": {"roles": {"type": "array", "items": {"enum": roles}}},
            }))
            .answers(200, "The account", account.clone())
            .fails(&[422]),
    );
    for (action, summary) in [("disable", "Disable a user: signed out everywhere at once"), ("enable", "Enable a user")]
    {
        path(
            &format!("/api/v1/admin/users/{{id}}/{action}"),
            "post",
            Op::new(format!("user_{action}"), summary)
                .path("id", user.clone())
                .answers(200, "The account", account.clone())
                .fails(&[409, 422]),
        );
    }
    path(
        "/api/v1/admin/users/{id}/reset-password",
        "post",
        Op::new("user_reset_password", "Set a temporary password (the one given, or a generated one shown once)")
            .path("id", user.clone())
            .body(json!({
                "type": "object", "additionalProperties": false,
                "properties": {"password": {"type": ["string", "null"], "minLength": 8}},
            }))
            .answers(
                200,
                "The new state",
                json!({
                    "type": "object", "required": ["user_id", "temporary_password", "must_change_password"],
                    "properties": {"user_id": uuid, "temporary_password": {"type": ["string", "null"]}, "must_change_password": {"const": true}},
                }),
            )
            .fails(&[422]),
    );
    path(
        "/api/v1/admin/users/{id}/transfer",
        "post",
        Op::new("user_transfer", "Move every record of a user to another")
            .path("id", user.clone())
            .body(json!({"type": "object", "required": ["to"], "additionalProperties": false, "properties": {"to": user}}))
            .answers(
                200,
                "How many records moved, per entity",
                json!({
                    "type": "object", "required": ["from", "to", "moved"],
                    "properties": {"from": uuid, "to": uuid, "moved": {"type": "object", "additionalProperties": {"type": "integer"}}},
                }),
            )
            .fails(&[409, 422]),
    );
    let mut audit = Op::new("audit", "The audit log, newest first; `before` pages on").answers(
        200,
        "Entries",
        json!({
            "type": "object", "required": ["data", "next_before"],
            "properties": {
                "data": {"type": "array", "items": {
                    "type": "object", "required": ["id", "at", "actor", "entity", "record_id", "action", "source", "changes"],
                    "properties": {
                        "id": {"type": "integer"}, "at": {"type": ["string", "null"], "format": "date-time"}, "actor": maybe_uuid,
                        "entity": {"type": "string"}, "record_id": maybe_uuid, "action": {"type": "string"},
                        "source": super::write_source(), "changes": {},
                    },
                }},
                "next_before": {"type": ["integer", "null"], "description": "Pass as `before` for older entries."},
            },
        }),
    );
    for (name, schema) in [
        ("entity", json!({"type": "string"})),
        ("record_id", uuid.clone()),
        ("actor", uuid.clone()),
        ("action", json!({"type": "string"})),
        ("from", json!({"type": "string", "format": "date-time"})),
        ("to", json!({"type": "string", "format": "date-time"})),
        ("before", json!({"type": "integer"})),
        ("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})),
    ] {
        audit = audit.query(json!({"name": name, "in": "query", "schema": schema}));
    }
    path("/api/v1/audit", "get", audit);
    let when = json!({"type": ["string", "null"], "format": "date-time"});
    let consumer = json!({
        "type": "object",
        "required": ["name", "shared", "lag", "cursors", "retrying", "dead", "failures"],
        "properties": {
            "name": {"type": "string"},
            "shared": {"type": "boolean", "description": "Run by one node at a time, not by every node."},
            "lag": {"type": "integer", "description": "Events written and not yet read, on the node furthest behind."},
            "cursors": {"type": "array", "items": {
                "type": "object",
                "required": ["consumer", "node", "seq", "lag", "updated_at", "claimed_by", "claimed_until"],
                "properties": {
                    "consumer": {"type": "string"}, "node": {"type": "string"}, "seq": {"type": "integer"},
                    "lag": {"type": "integer"}, "updated_at": when, "claimed_by": {"type": ["string", "null"]},
                    "claimed_until": when,
                },
            }},
            "retrying": {"type": "integer"},
            "dead": {"type": "integer"},
            "failures": {"type": "array", "items": {
                "type": "object",
                "required": ["consumer", "node", "seq", "attempts", "error", "first_at", "next_at", "dead"],
                "properties": {
                    "consumer": {"type": "string"}, "node": {"type": "string"}, "seq": {"type": "integer"},
                    "attempts": {"type": "integer"}, "error": {"type": "string"}, "first_at": when, "next_at": when,
                    "dead": {"type": "boolean"},
                },
            }},
        },
    });
    path(
        "/api/v1/admin/jobs",
        "get",
        Op::new("jobs", "The outbox consumers: how far each has read, and the events they failed on").answers(
            200,
            "The consumers",
            json!({"type": "object", "required": ["consumers"], "properties": {"consumers": {"type": "array", "items": consumer}}}),
        ),
    );
    path(
        "/api/v1/admin/jobs/{consumer}/retry",
        "post",
        Op::new("jobs_retry", "Send a consumer's dead events again")
            .path("consumer", json!({"type": "string"}))
            .answers(
                200,
                "How many events wait again",
                json!({
                    "type": "object", "required": ["consumer", "retrying"],
                    "properties": {"consumer": {"type": "string"}, "retrying": {"type": "integer"}},
                }),
            ),
    );
}
