//! The OpenAPI 3.1 document of the API for one caller, generated from the live catalog: the
//! operations their roles allow on the entities they see, with the fields they see, every
//! status each operation can answer and the shape of every body.

mod integration;
mod marketing;
mod operations;
mod records;

use std::collections::BTreeSet;

use crm_model::types::TYPES;
use crm_model::{Catalog, DocKind};
use serde_json::{Map, Value as Json, json};

use crate::access::Principal;
use crate::records::Source;

/// A `$ref` to a schema of the document.
fn reference(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// One operation, built up and then written into the document. The problems it can answer
/// follow from what it takes, so that none is forgotten: an authenticated operation may
/// answer 401 (no or bad credentials) and 403 (roles that do not allow it, a password to
/// change first, a session cookie without its CSRF token); a path parameter may name nothing
/// (404); query parameters may be malformed (400); a body may be malformed (400), too large
/// (413) or hold a NUL character (422); anything may fail on the server (500). [`Op::fails`]
/// adds those of its service.
struct Op {
    id: String,
    summary: String,
    public: bool,
    parameters: Vec<Json>,
    body: Option<Json>,
    responses: Map<String, Json>,
    problems: BTreeSet<u16>,
}

impl Op {
    fn new(id: impl Into<String>, summary: impl Into<String>) -> Self {
        Op {
            id: id.into(),
            summary: summary.into(),
            public: false,
            parameters: Vec::new(),
            body: None,
            responses: Map::new(),
            problems: BTreeSet::from([500]),
        }
    }

    /// Needs no credentials.
    fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// A success answered with a JSON body of this schema.
    fn answers(self, status: u16, description: &str, schema: Json) -> Self {
        self.answers_with(
            status,
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        )
    }

    /// A success answered without a body.
    fn answers_empty(self, status: u16, description: &str) -> Self {
        self.answers_with(status, json!({"description": description}))
    }

    fn answers_with(mut self, status: u16, response: Json) -> Self {
        self.responses.insert(status.to_string(), response);
        self
    }

    /// A path parameter; one that names nothing is answered with 404.
    fn path(mut self, name: &str, schema: Json) -> Self {
        self.parameters.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        self.problems.insert(404);
        self
    }

    /// A query parameter; a malformed or unknown one is answered with 400.
    fn query(mut self, parameter: Json) -> Self {
        self.parameters.push(parameter);
        self.problems.insert(400);
        self
    }

    /// A JSON body; a malformed one is answered with 400, one over the limit with 413, one
    /// with a NUL character in a text with 422.
    fn body(mut self, schema: Json) -> Self {
        self.body = Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}));
        self.problems.extend([400, 413, 422]);
        self
    }

    /// A `multipart/form-data` body (file uploads); a malformed one is answered with 400, one
    /// over the limit with 413, files or values that cannot be taken with 422.
    fn multipart(mut self, schema: Json) -> Self {
        self.body = Some(json!({"required": true, "content": {"multipart/form-data": {"schema": schema}}}));
        self.problems.extend([400, 413, 422]);
        self
    }

    /// A success answered with a file of one of these content types.
    fn answers_file(self, status: u16, description: &str, content_types: &[&str]) -> Self {
        let schema = json!({"type": "string", "format": "binary"});
        let content: Map<String, Json> =
            content_types.iter().map(|t| ((*t).to_owned(), json!({"schema": schema.clone()}))).collect();
        self.answers_with(status, json!({"description": description, "content": content}))
    }

    /// Problems the operation's service answers besides those that follow from its inputs.
    fn fails(mut self, statuses: &[u16]) -> Self {
        self.problems.extend(statuses);
        self
    }

    fn build(mut self) -> Json {
        if !self.public {
            self.problems.extend([401, 403]);
        }
        for status in &self.problems {
            let problem = json!({"$ref": format!("#/components/responses/Problem{status}")});
            self.responses.insert(status.to_string(), problem);
        }
        let mut operation = json!({"operationId": self.id, "summary": self.summary, "responses": self.responses});
        if !self.parameters.is_empty() {
            operation["parameters"] = Json::Array(self.parameters);
        }
        if let Some(body) = self.body {
            operation["requestBody"] = body;
        }
        if self.public {
            operation["security"] = json!([]);
        }
        operation
    }
}

/// The problem answers every operation refers to, by status.
const PROBLEMS: [(u16, &str); 10] = [
    (400, "Malformed request: body, query parameter, filter, sort or cursor"),
    (401, "No credentials, or credentials that are not valid"),
    (403, "Not allowed: the caller's roles, a password to change first, or a missing CSRF token"),
    (404, "No such entity, record or other resource (or one the caller may not see)"),
    (409, "Changed meanwhile: a stale version, or a concurrent change"),
    (413, "Body too large"),
    (422, "Invalid values: `errors` has one entry per field or document path"),
    (429, "Too many failed logins: try again later"),
    (500, "Something went wrong on the server; it has been logged"),
    (
        502,
        "Another server this one works with (the mail server) refused or could not be reached: `detail` says what it answered",
    ),
];

/// The document for one caller.
pub fn document(catalog: &Catalog, p: &Principal) -> Json {
    let mut paths = Map::new();
    operations::add(&mut paths, catalog, p);
    marketing::add(&mut paths, p);
    integration::add(&mut paths, p);
    let mut schemas = Map::new();
    for entity in catalog.entities().filter(|e| p.sees(e.name().as_str())) {
        records::add(&mut paths, &mut schemas, catalog, p, entity);
    }
    schemas.extend(shared_schemas(p));
    let responses: Map<String, Json> = PROBLEMS
        .iter()
        .map(|(status, description)| {
            let content = json!({"application/problem+json": {"schema": reference("Problem")}});
            (format!("Problem{status}"), json!({"description": description, "content": content}))
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CRM API",
            "version": format!("catalog-{}", catalog.version),
            "description": "Generated from the live metadata for the caller: the entities, fields and operations their roles allow.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": responses,
        },
    })
}

/// A metadata document's JSON Schema under a component name: its local references follow
/// its `$defs` there.
fn doc_schema(kind: DocKind, component: &str) -> Json {
    let mut schema = crm_model::schema::schema_json(kind);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$id");
        object.remove("$schema");
    }
    let text = schema.to_string().replace("\"#/$defs/", &format!("\"#/components/schemas/{component}/$defs/"));
    serde_json::from_str(&text).expect("a schema with its references moved is JSON")
}

/// The component names of the metadata documents `/api/v1/meta/{kind}/{name}` serves, by
/// kind; roles and scripts for administrators only.
fn documents(p: &Principal) -> Vec<(DocKind, &'static str)> {
    let mut kinds = vec![
        (DocKind::Layout, "LayoutDocument"),
        (DocKind::ListView, "ListViewDocument"),
        (DocKind::Related, "RelatedDocument"),
        (DocKind::StageSet, "StageSetDocument"),
        // Everyone runs reports described in this form (`POST /api/v1/reports/run`).
        (DocKind::Report, "ReportDocument"),
    ];
    if p.is_admin() {
        kinds.extend([
            (DocKind::Role, "RoleDocument"),
            (DocKind::Script, "ScriptDocument"),
            (DocKind::Dashboard, "DashboardDocument"),
            (DocKind::WebForm, "WebFormDocument"),
            (DocKind::Webhook, "WebhookDocument"),
            (DocKind::Sync, "SyncDocument"),
        ]);
    }
    kinds
}

fn shared_schemas(p: &Principal) -> Map<String, Json> {
    let mut schemas = Map::new();
    let mut entity = doc_schema(DocKind::Entity, "EntityDocument");
    entity["$defs"]["field"]["properties"]["type"] = reference("FieldType");
    let mut new_field = entity["$defs"]["field"].clone();
    new_field["properties"]["place_on_layouts"] =
        json!({"type": "boolean", "default": true, "description": "false keeps the field off the layouts."});
    let mut patch = entity["$defs"]["field"].clone();
    patch.as_object_mut().expect("a field is an object schema").remove("required");
    patch["description"] = json!("The properties of the field to change; null removes one. The name cannot change.");
    for property in patch["properties"].as_object_mut().expect("a field has properties").values_mut() {
        *property = json!({"anyOf": [property.take(), {"type": "null"}]});
    }
    schemas.insert("FieldPatch".into(), patch);
    schemas.insert("EntityDocument".into(), entity);
    schemas.insert("NewField".into(), new_field);
    for (kind, component) in documents(p) {
        schemas.insert(component.into(), doc_schema(kind, component));
    }
    if p.is_admin() {
        let component = "PrintTemplateDocument";
        schemas.insert(component.into(), doc_schema(DocKind::PrintTemplate, component));
    }
    schemas.insert("FieldType".into(), field_type_schema());
    let uuid = json!({"type": "string", "format": "uuid"});
    let maybe_uuid = json!({"type": ["string", "null"], "format": "uuid"});
    let moment = json!({"type": ["string", "null"], "format": "date-time"});
    schemas.insert("Problem".into(), json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "Stable, for programs to tell problems apart: e.g. invalid_body, malformed_json, invalid_query, unauthorized, forbidden, password_change_required, csrf_failed, not_found, version_conflict, already_converted, payload_too_large, validation_failed, invalid_metadata, too_many_attempts, internal."},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"anyOf": [
                {"type": "object", "required": ["field", "code", "message"], "properties": {
                    "field": {"type": "string", "description": "The field (a JSON-pointer-like path for nested values); empty for the whole record."},
                    "code": {"type": "string"}, "message": {"type": "string"},
                }},
                {"type": "object", "required": ["doc", "path", "message"], "properties": {
                    "doc": {"type": "string", "description": "`kind:name` of the metadata document."},
                    "path": {"type": "string"}, "message": {"type": "string"},
                }},
            ]}},
        },
    }));
    schemas.insert("BulkResults".into(), json!({
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string"},
                "status": {"enum": [200, 403, 404, 422], "description": "What the record alone would have been answered."},
                "version": {"type": "integer"},
                "error": {"type": "object", "required": ["code"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                }},
            },
        }}},
    }));
    schemas.insert(
        "Created".into(),
        json!({
            "type": "object", "required": ["created", "ids"],
            "properties": {"created": {"type": "integer"}, "ids": {"type": "array", "items": uuid}},
        }),
    );
    schemas.insert("Groups".into(), json!({
        "type": "object", "required": ["groups"],
        "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["value", "count"],
            "properties": {"value": {}, "count": {"type": "integer"}, "sum": {"type": ["string", "integer", "null"]}},
        }}},
    }));
    schemas.insert(
        "RecordHistory".into(),
        json!({
            "type": "object", "required": ["data"],
            "properties": {"data": {"type": "array", "items": {
                "type": "object", "required": ["at", "actor", "action", "source", "changes"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"}, "actor": maybe_uuid, "action": {"type": "string"},
                    "source": write_source(),
                    "changes": {"type": ["object", "null"], "description": "Per field, its value before and after."},
                },
            }}},
        }),
    );
    schemas.insert(
        "StageHistory".into(),
        json!({
            "type": "object", "required": ["data"],
            "properties": {"data": {"type": "array", "items": {
                "type": "object", "required": ["field", "from", "to", "actor", "at", "seconds_in_previous"],
                "properties": {
                    "field": {"type": "string"}, "from": {"type": ["string", "null"]}, "to": {"type": "string"},
                    "actor": maybe_uuid, "at": moment, "seconds_in_previous": {"type": ["integer", "null"]},
                },
            }}},
        }),
    );
    schemas.insert(
        "ApprovalSteps".into(),
        json!({
            "type": "object", "required": ["data"],
            "properties": {"data": {"type": "array", "items": {
                "type": "object", "required": ["action", "from", "to", "actor", "comment", "at"],
                "properties": {
                    "action": {"type": "string"}, "from": {"type": ["string", "null"]}, "to": {"type": "string"},
                    "actor": maybe_uuid, "comment": {"type": ["string", "null"]}, "at": moment,
                },
            }}},
        }),
    );
    schemas.insert(
        "ApprovalStatus".into(),
        json!({
            "type": "object", "required": ["id", "status", "version"],
            "properties": {"id": uuid, "status": {"type": "string"}, "version": {"type": "integer"}},
        }),
    );
    schemas.insert(
        "Task".into(),
        json!({
            "type": "object",
            "required": ["id", "kind", "entity", "state", "done", "total", "result", "error", "created_by", "created_at", "finished_at"],
            "properties": {
                "id": uuid, "kind": {"type": "string"}, "entity": {"type": ["string", "null"]},
                "state": {"enum": ["running", "done", "failed"]},
                "done": {"type": "integer", "minimum": 0}, "total": {"type": ["integer", "null"]},
                "result": {"description": "What the task came to; its shape follows its kind. An import's: `created`, `updated`, `skipped`, `failed`, `written` (false when all or nothing kept every row out), `columns` and `failures` (each `row`, `cells` and `reasons` with `field`, `column`, `code`, `zh-CN`, `en`)."},
                "error": {"type": ["string", "null"], "description": "Why it failed."},
                "created_by": maybe_uuid, "created_at": moment, "finished_at": moment,
            },
        }),
    );
    let reason = json!({
        "type": "object", "required": ["field", "column", "code", "zh-CN", "en"],
        "properties": {
            "field": {"type": "string"}, "column": {"type": ["string", "null"]}, "code": {"type": "string"},
            "zh-CN": {"type": "string"}, "en": {"type": "string"},
        },
    });
    schemas.insert(
        "ImportPreview".into(),
        json!({
            "type": "object", "required": ["columns", "fields", "rows", "notes", "total_rows", "key"],
            "properties": {
                "columns": {"type": "array", "items": {
                    "type": "object", "required": ["header", "field"],
                    "properties": {"header": {"type": "string"}, "field": {"type": ["string", "null"]}},
                }},
                "fields": {"type": "array", "description": "The fields a column can go into.", "items": {
                    "type": "object", "required": ["name", "label", "required", "key"],
                    "properties": {
                        "name": {"type": "string"}, "label": {"type": "object"},
                        "required": {"type": "boolean"}, "key": {"type": "boolean", "description": "Can find records to update."},
                    },
                }},
                "rows": {"type": "array", "items": {
                    "type": "object", "required": ["row", "cells", "outcome", "reasons"],
                    "properties": {
                        "row": {"type": "integer"}, "cells": {"type": "array", "items": {"type": "string"}},
                        "outcome": {"enum": ["create", "update", "skip", "fail"]},
                        "reasons": {"type": "array", "items": reason},
                    },
                }},
                "notes": {"type": "array", "items": {
                    "type": "object", "required": ["code", "zh-CN", "en"],
                    "properties": {"code": {"type": "string"}, "range": {"type": "string"}, "zh-CN": {"type": "string"}, "en": {"type": "string"}},
                }},
                "total_rows": {"type": "integer"},
                "key": {"type": ["string", "null"]},
            },
        }),
    );
    schemas
}

/// Every field type with its labels and the filter operators it takes.
fn field_type_schema() -> Json {
    let types: Vec<Json> = TYPES
        .iter()
        .map(|spec| {
            json!({
                "const": spec.name,
                "title": spec.label_en,
                "x-label-zh-CN": spec.label_zh_cn,
                "x-operators": spec.operators.iter().map(|op| op.name()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"description": "The type of a field.", "oneOf": types})
}

/// Where a record write came from, as its audit row says (none for other entries).
fn write_source() -> Json {
    json!({
        "type": ["string", "null"],
        "enum": Source::ALL.iter().map(|s| Json::from(s.as_str())).chain([Json::Null]).collect::<Vec<_>>(),
        "description": "Where the write came from.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_model::{FieldDef, FieldType, Labels};

    #[test]
    fn fixed_numbers_are_described_as_exact_text() {
        let mut field =
            FieldDef::new(crm_model::Ident::new("amount").unwrap(), FieldType::Money, Labels::new("金额", "Amount"));
        field.required = true;
        let system = Principal::system(&Catalog::default());
        let schema = records::field_schema(&Catalog::default(), &system, &field, records::Use::Read);
        assert_eq!(schema["type"], json!(["string", "null"]));
        assert_eq!(schema["x-currency"], "CNY");
    }
}
