//! The schemas and paths of one entity's records, as one caller sees them: the fields their
//! roles show them, marked read-only where they may not write them, and the operations their
//! roles allow.

use crm_model::filter::Operator;
use crm_model::region::PROVINCES;
use crm_model::types::ValueSchema;
use crm_model::{Action, Catalog, Entity, FieldDef, FieldType, Storage};
use serde_json::{Map, Value as Json, json};

use super::{Op, reference};
use crate::access::Principal;
use crate::records::merge::MAX_MERGE;
use crate::records::{MAX_BULK, MAX_IMPORT, MAX_LIMIT};
use crate::visible::writable;

fn nullable(mut schema: Json) -> Json {
    if let Some(ty) = schema.get("type").and_then(Json::as_str) {
        schema["type"] = json!([ty, "null"]);
        if let Some(values) = schema.get_mut("enum").and_then(Json::as_array_mut) {
            values.push(Json::Null);
        }
    }
    schema
}

/// Columns that always have a value.
const NEVER_NULL: [&str; 5] = ["id", "owner", "created_at", "updated_at", "version"];

/// What a schema of a value is for. A stored value met the field's rules when it was
/// written, but a later change of the metadata (an option removed, a shorter maximum) does not
/// change it: what is read is described by its type, what is written also by the rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    Read,
    Write,
}

/// The JSON Schema of a field's value.
pub(super) fn field_schema(catalog: &Catalog, p: &Principal, field: &FieldDef, to: Use) -> Json {
    let choices = |values: Vec<String>| match to {
        Use::Write => json!({"type": "string", "enum": values}),
        Use::Read => json!({"type": "string", "examples": values}),
    };
    let option_values = || field.options.iter().map(|o| o.value.clone()).collect::<Vec<_>>();
    let mut schema = match field.spec().schema {
        ValueSchema::Text { format } => {
            let mut schema = json!({"type": "string"});
            if let Some(format) = format {
                schema["format"] = json!(format);
            }
            if let Some(max) = field.max_length().filter(|_| to == Use::Write) {
                schema["maxLength"] = json!(max);
            }
            schema
        }
        ValueSchema::Generated => json!({"type": "string"}),
        ValueSchema::Integer => json!({"type": "integer"}),
        ValueSchema::Exact { currency } => {
            let scale = field.scale();
            let pattern =
                if scale == 0 { "^-?[0-9]+$".to_owned() } else { format!("^-?[0-9]+(\\.[0-9]{{1,{scale}}})?$") };
            let mut schema = json!({"type": "string", "pattern": pattern, "description": "An exact number as text."});
            if currency {
                schema["x-currency"] = json!(field.currency());
            }
            schema
        }
        ValueSchema::Boolean => json!({"type": "boolean"}),
        ValueSchema::Formatted(format) => json!({"type": "string", "format": format}),
        ValueSchema::Option => choices(option_values()),
        ValueSchema::Options => json!({"type": "array", "uniqueItems": true, "items": choices(option_values())}),
        ValueSchema::Reference => {
            let mut schema = json!({"type": "string", "format": "uuid"});
            // The entity a lookup points at is named only to those who see it.
            if let Some(target) = field.reference_target().filter(|t| p.sees(t)) {
                schema["x-target"] = json!(target);
            }
            schema
        }
        ValueSchema::Stage => {
            let mut stages: Vec<String> = Vec::new();
            for stage in catalog.stage_sets_of(field).iter().flat_map(|s| s.stages.iter()) {
                if !stages.iter().any(|s| s == stage.name.as_str()) {
                    stages.push(stage.name.to_string());
                }
            }
            choices(stages)
        }
    };
    match field.field_type {
        FieldType::Phone => {
            schema["description"] = json!("Digits, spaces and + - ( ) # * / . 转 x; at least three digits.");
            schema["examples"] = json!(["010-12345678", "+86 138 0013 8000"]);
        }
        FieldType::Region => {
            schema["description"] = json!("A province of China, optionally followed by `/` and a city.");
            schema["examples"] = json!([PROVINCES[0], PROVINCES[8], "广东省/深圳市"]);
        }
        _ => {}
    }
    let bounds = [(&field.min, "minimum"), (&field.max, "maximum")].into_iter().filter(|_| to == Use::Write);
    for (bound, keyword) in bounds {
        match (bound, field.storage()) {
            (Some(bound), Storage::Integer) => schema[keyword] = json!(bound),
            // An exact number travels as text; its bound is said beside it.
            (Some(bound), Storage::Fixed(_)) => schema[format!("x-{keyword}")] = json!(bound),
            _ => {}
        }
    }
    schema["title"] = json!(field.label.en);
    schema["x-label-zh-CN"] = json!(field.label.zh_cn);
    if let Some(help) = &field.help {
        schema["description"] = json!(help.en);
    }
    if NEVER_NULL.contains(&field.name.as_str()) { schema } else { nullable(schema) }
}

/// The schema of a value a write may send: exact numbers also as JSON numbers, and no null
/// for a required field.
fn write_schema(catalog: &Catalog, p: &Principal, field: &FieldDef) -> Json {
    let mut schema = field_schema(catalog, p, field, Use::Write);
    if field.required {
        if let Some(types) = schema.get_mut("type").and_then(Json::as_array_mut) {
            types.retain(|t| t != "null");
        }
        if let Some(values) = schema.get_mut("enum").and_then(Json::as_array_mut) {
            values.retain(|v| !v.is_null());
        }
    }
    if matches!(field.storage(), Storage::Fixed(_)) {
        let mut number = json!({"type": "number"});
        for keyword in ["minimum", "maximum"] {
            if let Some(bound) = schema.get(format!("x-{keyword}")) {
                number[keyword] = bound.clone();
            }
        }
        schema = json!({"anyOf": [schema, number]});
    }
    schema
}

/// The columns of the entity the caller sees.
fn shown<'e>(p: &'e Principal, entity: &'e Entity) -> impl Iterator<Item = &'e FieldDef> {
    let name = entity.name().as_str();
    entity.columns().iter().filter(move |f| !f.archived && p.shows(name, f.name.as_str()))
}

/// A record as the API writes it without `fields`: every field the caller sees, null when
/// empty.
fn record_schema(catalog: &Catalog, p: &Principal, entity: &Entity) -> Json {
    let mut properties = Map::new();
    for field in shown(p, entity) {
        let mut schema = field_schema(catalog, p, field, Use::Read);
        if !writable(p, entity, field) {
            schema["readOnly"] = json!(true);
        }
        properties.insert(field.name.to_string(), schema);
    }
    let required: Vec<&String> = properties.keys().collect();
    json!({
        "type": "object",
        "title": entity.def.label.en,
        "x-label-zh-CN": entity.def.label.zh_cn,
        "required": required,
        "properties": properties,
    })
}

/// A record as lists and reads write it: `id` and the fields asked for with `fields`, or
/// every field when it names none.
fn selection_schema(p: &Principal, entity: &Entity) -> Json {
    let name = entity.name().as_str();
    let properties: Map<String, Json> =
        shown(p, entity).map(|f| (f.name.to_string(), reference(&format!("{name}/properties/{}", f.name)))).collect();
    json!({
        "type": "object",
        "description": format!("A {}: `id` and the fields `fields` names, or every field when it names none.", entity.def.label.en),
        "required": ["id"],
        "properties": properties,
    })
}

/// What a write takes: the fields the caller sees that are not kept by the engine (those they
/// may only read are marked `readOnly`: sending one is refused), and the owner.
fn input_properties(catalog: &Catalog, p: &Principal, entity: &Entity) -> Map<String, Json> {
    let name = entity.name().as_str();
    let mut properties: Map<String, Json> = entity
        .live_fields()
        .filter(|f| p.shows(name, f.name.as_str()) && !f.kept_by_engine())
        .map(|f| {
            let mut schema = write_schema(catalog, p, f);
            if !writable(p, entity, f) {
                schema["readOnly"] = json!(true);
            }
            (f.name.to_string(), schema)
        })
        .collect();
    let mut owner =
        json!({"type": "string", "format": "uuid", "description": "Yourself, or anyone if your roles may assign."});
    if p.sees(crm_model::USER_ENTITY) {
        owner["x-target"] = json!(crm_model::USER_ENTITY);
    }
    properties.insert("owner".into(), owner);
    properties
}

/// The three write schemas: a new record (`_input`), the changes of a bulk update
/// (`_changes`) and a change with the version it was read at (`_update`).
fn input_schemas(catalog: &Catalog, p: &Principal, entity: &Entity) -> [(String, Json); 3] {
    let name = entity.name().as_str();
    let properties = input_properties(catalog, p, entity);
    let required: Vec<&str> = entity
        .live_fields()
        .filter(|f| f.required && f.default.is_none() && properties.contains_key(f.name.as_str()))
        .filter(|f| writable(p, entity, f))
        .map(|f| f.name.as_str())
        .collect();
    let mut create = json!({"type": "object", "additionalProperties": false, "properties": properties});
    if !required.is_empty() {
        create["required"] = json!(required);
    }
    let changes =
        json!({"type": "object", "additionalProperties": false, "minProperties": 1, "properties": properties});
    let mut with_version = properties;
    with_version.insert(
        "version".into(),
        json!({"type": "integer", "description": "The version you read; a stale one is answered with 409."}),
    );
    let update =
        json!({"type": "object", "additionalProperties": false, "required": ["version"], "properties": with_version});
    [(format!("{name}_input"), create), (format!("{name}_changes"), changes), (format!("{name}_update"), update)]
}

fn page(items: Json) -> Json {
    json!({
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": items},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page."},
            "total": {"type": "integer", "description": "With `count=true`."},
        },
    })
}

/// The query parameters of a list of `entity` (a list or a related panel).
fn list_parameters(p: &Principal, entity: &Entity) -> Vec<Json> {
    let names: Vec<String> = shown(p, entity).map(|f| f.name.to_string()).collect();
    let sortable: Vec<String> = shown(p, entity)
        .filter(|f| f.field_type.is_sortable())
        .flat_map(|f| [f.name.to_string(), format!("-{}", f.name)])
        .collect();
    vec![
        filter_parameter(entity),
        json!({"name": "sort", "in": "query", "style": "form", "explode": false, "description": "Fields to sort by, in order; `-` for descending.",
               "schema": {"type": "array", "uniqueItems": true, "maxItems": 4, "items": {"enum": sortable}}}),
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}}),
        json!({"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page.", "schema": {"type": "string"}}),
        fields_parameter(names),
        json!({"name": "count", "in": "query", "description": "Also answer the total.", "schema": {"type": "boolean"}}),
        json!({"name": "deleted", "in": "query", "description": "The recycle bin instead (needs the restore action).", "schema": {"type": "boolean"}}),
    ]
}

fn filter_parameter(entity: &Entity) -> Json {
    let schema = reference(&format!("{}_filter", entity.name()));
    json!({"name": "filter", "in": "query", "description": "A filter tree as JSON.", "content": {"application/json": {"schema": schema}}})
}

/// The filter tree of an entity's lists, over the fields the caller sees.
fn filter_schema(p: &Principal, entity: &Entity) -> Json {
    let tree = reference(&format!("{}_filter", entity.name()));
    let fields: Vec<&str> = shown(p, entity).map(|f| f.name.as_str()).collect();
    json!({
        "description": "A filter tree: and/or/not of conditions. Ops: eq, ne, lt, lte, gt, gte, between ([low, high]), in (a list), contains, starts_with, is_null (true/false); the `x-operators` of FieldType say which a field of each type takes.",
        "oneOf": [
            {"type": "object", "required": ["and"], "additionalProperties": false, "properties": {"and": {"type": "array", "minItems": 1, "items": tree}}},
            {"type": "object", "required": ["or"], "additionalProperties": false, "properties": {"or": {"type": "array", "minItems": 1, "items": tree}}},
            {"type": "object", "required": ["not"], "additionalProperties": false, "properties": {"not": tree}},
            {"type": "object", "required": ["field", "op"], "additionalProperties": false, "properties": {
                "field": {"enum": fields},
                "op": {"enum": Operator::ALL.map(Operator::name)},
                "value": {},
            }},
        ],
    })
}

fn fields_parameter(names: Vec<String>) -> Json {
    json!({
        "name": "fields", "in": "query", "style": "form", "explode": false,
        "description": "The fields to answer besides `id`; when it names none (absent or empty), every field.",
        "schema": {"type": "array", "items": {"enum": names}},
    })
}

/// Adds the schemas and paths of an entity the caller sees.
pub(super) fn add(
    paths: &mut Map<String, Json>,
    schemas: &mut Map<String, Json>,
    catalog: &Catalog,
    p: &Principal,
    entity: &Entity,
) {
    let name = entity.name().as_str();
    let label = &entity.def.label.en;
    let may = |action| p.access.allows(name, action);
    schemas.insert(name.to_owned(), record_schema(catalog, p, entity));
    schemas.insert(format!("{name}_fields"), selection_schema(p, entity));
    schemas.insert(format!("{name}_filter"), filter_schema(p, entity));
    let record = reference(name);
    let selected = reference(&format!("{name}_fields"));
    let id = json!({"type": "string", "format": "uuid", "x-target": name});
    let ids = json!({"type": "array", "minItems": 1, "maxItems": MAX_BULK, "items": id});
    let bulk_results = reference("BulkResults");
    let mut path = |suffix: &str, method: &str, op: Op| {
        let item = paths.entry(format!("/api/v1/records/{name}{suffix}")).or_insert_with(|| json!({}));
        item[method] = op.build();
    };

    let mut list = Op::new(format!("list_{name}"), format!("List {label} records"))
        .answers(200, "A page", page(selected.clone()))
        .fails(&[404]);
    for parameter in list_parameters(p, entity) {
        list = list.query(parameter);
    }
    path("", "get", list);
    let get = Op::new(format!("get_{name}"), format!("Read a {label}"))
        .path("id", id.clone())
        .query(fields_parameter(shown(p, entity).map(|f| f.name.to_string()).collect()))
        .answers(200, "The record", selected.clone());
    path("/{id}", "get", get);
    let history = Op::new(format!("history_{name}"), format!("Field history of a {label}, oldest first"))
        .path("id", id.clone())
        .answers(200, "Changes", reference("RecordHistory"));
    path("/{id}/history", "get", history);
    let groupable: Vec<&str> =
        shown(p, entity).filter(|f| f.field_type.is_sortable()).map(|f| f.name.as_str()).collect();
    let summable: Vec<&str> = shown(p, entity)
        .filter(|f| matches!(f.storage(), Storage::Integer | Storage::Fixed(_)))
        .map(|f| f.name.as_str())
        .collect();
    let groups = Op::new(format!("groups_{name}"), format!("Count {label} records per value"))
        .query(json!({"name": "by", "in": "query", "required": true, "schema": {"enum": groupable}}))
        .query(json!({"name": "sum", "in": "query", "description": "A number field to total per group.", "schema": {"enum": summable}}))
        .query(filter_parameter(entity))
        .answers(200, "Groups", reference("Groups"))
        .fails(&[404]);
    path("/groups", "get", groups);

    for panel in &entity.related.panels {
        let source =
            catalog.entity(panel.source.as_str()).filter(|_| p.shows(panel.source.as_str(), panel.lookup.as_str()));
        let Some(source) = source else { continue };
        let mut related = Op::new(format!("related_{name}_{}", panel.name), format!("{} of a {label}", panel.label.en))
            .path("id", id.clone())
            .answers(
                200,
                "A page of the panel's columns, or of the fields asked for",
                page(reference(&format!("{}_fields", panel.source))),
            );
        for parameter in list_parameters(p, source) {
            related = related.query(parameter);
        }
        path(&format!("/{{id}}/related/{}", panel.name), "get", related);
    }
    let stage_fields: Vec<&FieldDef> =
        entity.live_fields().filter(|f| f.field_type == FieldType::Stage && p.shows(name, f.name.as_str())).collect();
    if !stage_fields.is_empty() {
        let history = Op::new(format!("stage_history_{name}"), format!("Stage moves of a {label}, oldest first"))
            .path("id", id.clone())
            .answers(200, "Stage moves", reference("StageHistory"));
        path("/{id}/stage-history", "get", history);
    }
    let approval = entity.def.approval.as_ref().filter(|a| p.shows(name, a.field.as_str()));
    if approval.is_some() {
        let steps = Op::new(format!("approvals_{name}"), format!("Approval steps of a {label}, oldest first"))
            .path("id", id.clone())
            .answers(200, "Approval steps", reference("ApprovalSteps"));
        path("/{id}/approvals", "get", steps);
    }

    let [input, changes, update] = input_schemas(catalog, p, entity);
    if may(Action::Create) {
        let create = Op::new(format!("create_{name}"), format!("Create a {label}"))
            .body(reference(&input.0))
            .answers(201, "Created", record.clone())
            .fails(&[404, 409, 422]);
        path("", "post", create);
    }
    if may(Action::Import) {
        let import = Op::new(format!("bulk_create_{name}"), format!("Create many {label} records, all or none"))
            .body(json!({
                "type": "object", "required": ["records"], "additionalProperties": false,
                "properties": {"records": {"type": "array", "maxItems": MAX_IMPORT, "items": reference(&input.0)}},
            }))
            .answers(201, "Created", reference("Created"))
            .fails(&[404, 409, 422]);
        path("/bulk/create", "post", import);
        let upload = Op::new(format!("import_{name}"), format!("Import {label} records from a CSV or XLSX file"))
            .multipart(import_form())
            .answers(200, "The preview (with `preview=true`)", reference("ImportPreview"))
            .answers(
                202,
                "Started: follow it at /api/v1/tasks/{task}",
                json!({"type": "object", "required": ["task"], "properties": {"task": {"type": "string", "format": "uuid"}}}),
            );
        path("/import", "post", upload);
    }
    if may(Action::Export) {
        let mut export = Op::new(format!("export_{name}"), format!("Export a list of {label} records as XLSX or CSV"))
            .query(json!({"name": "format", "in": "query", "required": true, "schema": {"enum": ["xlsx", "csv"]}}))
            .answers_file(200, "The records of the list, at most 100,000", &[crate::export::XLSX_TYPE, "text/csv"]);
        for parameter in list_parameters(p, entity) {
            if ["filter", "sort", "fields"].contains(&parameter["name"].as_str().unwrap_or_default()) {
                export = export.query(parameter);
            }
        }
        path("/export", "get", export);
    }
    if may(Action::Edit) {
        let patch = Op::new(format!("update_{name}"), format!("Change a {label}"))
            .path("id", id.clone())
            .body(reference(&update.0))
            .answers(200, "Changed", record.clone())
            .fails(&[409, 422]);
        path("/{id}", "patch", patch);
        let bulk = Op::new(format!("bulk_update_{name}"), format!("Set values on many {label} records"))
            .body(json!({
                "type": "object", "required": ["ids", "set"], "additionalProperties": false,
                "properties": {"ids": ids, "set": reference(&changes.0)},
            }))
            .answers(200, "A result per id", bulk_results.clone())
            .fails(&[404, 409, 422]);
        path("/bulk/update", "post", bulk);
        if !stage_fields.is_empty() {
            let mut stages: Vec<Json> = Vec::new();
            for field in &stage_fields {
                for value in field_schema(catalog, p, field, Use::Write)["enum"].as_array().into_iter().flatten() {
                    if !value.is_null() && !stages.contains(value) {
                        stages.push(value.clone());
                    }
                }
            }
            let fields: Vec<&str> = stage_fields.iter().map(|f| f.name.as_str()).collect();
            let stage = Op::new(
                format!("move_stage_{name}"),
                format!("Move a {label} to a stage (forward, back or skipping stages)"),
            )
            .path("id", id.clone())
            .body(json!({
                "type": "object", "required": ["stage"], "additionalProperties": false,
                "properties": {
                    "stage": {"enum": stages},
                    "field": {"enum": fields, "description": "The stage field, when there are several."},
                    "version": {"type": "integer", "description": "The version you read; the current one without it."},
                },
            }))
            .answers(200, "Moved", record.clone())
            .fails(&[409, 422]);
            path("/{id}/stage", "post", stage);
        }
    }
    if approval.is_some() && (may(Action::Edit) || may(Action::Approve)) {
        let step = Op::new(format!("approval_{name}"), format!("Submit, approve, reject or recall a {label}"))
            .path("id", id.clone())
            .body(json!({
                "type": "object", "required": ["action"], "additionalProperties": false,
                "properties": {
                    "action": {"enum": ["submit", "approve", "reject", "recall"]},
                    "comment": {"type": ["string", "null"], "description": "Why, for a rejection."},
                },
            }))
            .answers(200, "The new status", reference("ApprovalStatus"))
            .fails(&[409, 422]);
        path("/{id}/approval", "post", step);
    }
    if may(Action::Delete) {
        let delete = Op::new(format!("delete_{name}"), format!("Move a {label} to the recycle bin"))
            .path("id", id.clone())
            .answers_empty(204, "Deleted")
            .fails(&[409, 422]);
        path("/{id}", "delete", delete);
        let bulk = Op::new(format!("bulk_delete_{name}"), format!("Move many {label} records to the recycle bin"))
            .body(ids_body(&ids))
            .answers(200, "A result per id", bulk_results.clone())
            .fails(&[404, 409, 422]);
        path("/bulk/delete", "post", bulk);
    }
    if may(Action::Restore) {
        let restore = Op::new(format!("restore_{name}"), format!("Restore a {label} from the recycle bin"))
            .path("id", id.clone())
            .answers(200, "Restored", record.clone())
            .fails(&[409, 422]);
        path("/{id}/restore", "post", restore);
        let bulk =
            Op::new(format!("bulk_restore_{name}"), format!("Restore many {label} records from the recycle bin"))
                .body(ids_body(&ids))
                .answers(200, "A result per id", bulk_results.clone())
                .fails(&[404, 409, 422]);
        path("/bulk/restore", "post", bulk);
    }
    // Handing records back to a public pool takes only the right to change them.
    if may(Action::Assign) || may(Action::Edit) {
        let mut owner = json!({"type": "string", "format": "uuid"});
        if p.sees(crm_model::USER_ENTITY) {
            owner["x-target"] = json!(crm_model::USER_ENTITY);
        }
        let assign = Op::new(format!("bulk_assign_{name}"), format!("Give many {label} records a new owner"))
            .body(json!({
                "type": "object", "required": ["ids", "owner"], "additionalProperties": false,
                "properties": {"ids": ids, "owner": owner},
            }))
            .answers(200, "A result per id", bulk_results.clone())
            .fails(&[404, 409, 422]);
        path("/bulk/assign", "post", assign);
    }
    if p.sees_pool(catalog, name) {
        let claim = Op::new(format!("bulk_claim_{name}"), format!("Claim {label} records from the public pool (领取)"))
            .body(ids_body(&ids))
            .answers(
                200,
                "A result per id; 403 `claim_limit_held` or `claim_limit_per_day` past a limit",
                bulk_results.clone(),
            )
            .fails(&[404, 409, 422]);
        path("/bulk/claim", "post", claim);
    }
    if may(Action::Share) {
        for (action, summary) in [("share", "Share many"), ("unshare", "Take back the shares of many")] {
            let share = Op::new(format!("bulk_{action}_{name}"), format!("{summary} {label} records"))
                .body(share_schema(p, &ids, action == "share"))
                .answers(200, "A result per id", bulk_results.clone())
                .fails(&[404, 409, 422]);
            path(&format!("/bulk/{action}"), "post", share);
        }
    }
    let hidden = p.hidden(name);
    let rules: Vec<&crm_model::DuplicateRule> =
        entity.def.duplicates.iter().filter(|r| r.fields.iter().all(|f| !hidden.contains(&f.field))).collect();
    if !rules.is_empty() {
        add_duplicates(&mut path, p, entity, &rules);
    }
    if may(Action::Edit) && may(Action::Delete) && name != crm_model::USER_ENTITY {
        add_merge(&mut path, p, entity, &record, &changes.1);
    }
    for (name, schema) in [input, changes, update] {
        schemas.insert(name, schema);
    }
}

/// The duplicate check of an entity with rules, and for administrators the scan and the
/// pairs said not to be duplicates.
fn add_duplicates(
    path: &mut impl FnMut(&str, &str, Op),
    p: &Principal,
    entity: &Entity,
    rules: &[&crm_model::DuplicateRule],
) {
    let (name, label) = (entity.name().as_str(), &entity.def.label.en);
    let compared: Vec<&str> = rules.iter().flat_map(|r| r.fields.iter().map(|f| f.field.as_str())).collect();
    let values: Map<String, Json> =
        compared.iter().map(|f| ((*f).to_owned(), json!({"type": ["string", "null"]}))).collect();
    let id = json!({"type": "string", "format": "uuid", "x-target": name});
    let check = Op::new(format!("duplicates_{name}"), format!("Likely duplicates of {label} values about to be saved"))
        .body(json!({
            "type": "object", "required": ["values"], "additionalProperties": false,
            "properties": {
                "values": {"type": "object", "properties": values},
                "id": {"type": ["string", "null"], "format": "uuid", "description": "The record being changed, if it is not new."},
            },
        }))
        .answers(200, "The likely duplicates, best first", json!({
            "type": "object", "required": ["blocked", "matches"],
            "properties": {
                "blocked": {"type": "boolean", "description": "Whether a rule that blocks found one: the save will be refused."},
                "matches": {"type": "array", "items": {
                    "type": "object",
                    "required": ["visible", "id", "title", "score", "rule", "rule_label", "action", "owner", "department"],
                    "properties": {
                        "visible": {"type": "boolean", "description": "Whether the caller may read the record; if not, only its owner is told."},
                        "id": {"type": ["string", "null"], "format": "uuid"},
                        "title": {"type": ["string", "null"]},
                        "score": {"type": "integer", "minimum": 0, "maximum": 100},
                        "rule": {"type": "string"},
                        "rule_label": {"type": "object", "required": ["zh-CN", "en"]},
                        "action": {"enum": ["warn", "block"]},
                        "owner": {"type": ["string", "null"]},
                        "department": {"type": ["string", "null"]},
                    },
                }},
            },
        }))
        .fails(&[422]);
    path("/duplicates", "post", check);
    if p.is_admin() {
        let scan = Op::new(
            format!("duplicate_scan_{name}"),
            format!("Find clusters of likely duplicate {label} records"),
        )
        .answers(
            202,
            "The scan started; follow it at /api/v1/tasks/{id}",
            json!({
                "type": "object", "required": ["task"], "properties": {"task": {"type": "string", "format": "uuid"}},
            }),
        );
        path("/duplicates/scan", "post", scan);
        let apart = Op::new(
            format!("not_duplicates_{name}"),
            format!("Say {label} records are not duplicates of each other"),
        )
        .body(json!({
            "type": "object", "required": ["ids"], "additionalProperties": false,
            "properties": {"ids": {"type": "array", "minItems": 2, "maxItems": 20, "uniqueItems": true, "items": id}},
        }))
        .answers_empty(204, "Remembered")
        .fails(&[404, 422]);
        path("/not-duplicates", "post", apart);
    }
}

/// Merging duplicates (C-6): the preview, and the merge with the values chosen.
fn add_merge(path: &mut impl FnMut(&str, &str, Op), p: &Principal, entity: &Entity, record: &Json, changes: &Json) {
    let name = entity.name().as_str();
    let label = &entity.def.label.en;
    let id = json!({"type": "string", "format": "uuid", "x-target": name});
    let ids = json!({"type": "array", "minItems": 2, "maxItems": MAX_MERGE, "uniqueItems": true, "items": id});
    let fields: Vec<&str> =
        entity.live_fields().filter(|f| p.shows(name, f.name.as_str())).map(|f| f.name.as_str()).collect();
    let uuid = json!({"type": "string", "format": "uuid"});
    let preview = Op::new(format!("merge_preview_{name}"), format!("What merging {label} records would do"))
        .body(ids_body(&ids))
        .answers(
            200,
            "The proposed master, each field's values and the references that would move",
            json!({
                "type": "object", "required": ["entity", "master", "records", "fields", "references"],
                "properties": {
                    "entity": {"const": name},
                    "master": uuid,
                    "records": {"type": "array", "items": record},
                    "fields": {"type": "array", "items": {
                        "type": "object", "required": ["field", "values", "proposed", "choosable"],
                        "properties": {
                            "field": {"enum": fields},
                            "values": {"type": "array", "description": "One per record, in their order."},
                            "proposed": {"type": "string", "format": "uuid", "description": "The record whose value is proposed."},
                            "choosable": {"type": "boolean", "description": "false: the master's value stays (read-only or computed)."},
                        },
                    }},
                    "references": {"type": "object", "additionalProperties": {"type": "integer"},
                        "description": "Records that would point at the survivor instead of a loser, per entity."},
                },
            }),
        )
        .fails(&[404, 422]);
    path("/merge/preview", "post", preview);
    let mut values = changes.clone();
    if let Some(schema) = values.as_object_mut() {
        schema.remove("minProperties");
    }
    values["description"] =
        json!("Values chosen for the survivor; other fields take the master's value, else the first non-empty one.");
    let merge = Op::new(format!("merge_{name}"), format!("Merge {label} records into one; the others go to the recycle bin"))
        .body(json!({
            "type": "object", "required": ["ids", "master"], "additionalProperties": false,
            "properties": {"ids": ids, "master": id, "values": values},
        }))
        .answers(
            200,
            "Merged",
            json!({
                "type": "object", "required": ["merge", "survivor", "repointed"],
                "properties": {
                    "merge": {"type": "string", "format": "uuid", "description": "Undo with POST /api/v1/merges/{merge}/undo."},
                    "survivor": record,
                    "repointed": {"type": "integer", "description": "References moved from the losers to the survivor."},
                },
            }),
        )
        .fails(&[404, 409, 422]);
    path("/merge", "post", merge);
}

/// The form of an import: the file and what to do with it.
fn import_form() -> Json {
    json!({
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "CSV (UTF-8 or GB18030) or XLSX (the first sheet; the first row is the header), at most 50 MB."},
            "mapping": {"type": "string", "description": "JSON: {column header: field name or null}; without it, the mapping proposed from the fields' labels and the caller's last import."},
            "mode": {"enum": ["create", "update", "skip", "skip_duplicates"], "default": "create",
                "description": "skip: rows whose key matches a record are left out; skip_duplicates: rows the entity's duplicate rules find a likely duplicate for are left out."},
            "key": {"type": "string", "description": "The field that finds existing records for update and skip: `id`, a unique field or an auto-number."},
            "unmatched": {"enum": ["create", "report"], "default": "report", "description": "In update mode, rows whose key matches nothing."},
            "all_or_nothing": {"type": "boolean", "default": false},
            "preview": {"type": "boolean", "default": false, "description": "Answer the mapping and the first 20 rows checked, without writing."},
        },
    })
}

fn ids_body(ids: &Json) -> Json {
    json!({"type": "object", "required": ["ids"], "additionalProperties": false, "properties": {"ids": ids}})
}

/// The body of bulk share (with `access`) and unshare: a user or a department, not both.
fn share_schema(p: &Principal, ids: &Json, access: bool) -> Json {
    let mut properties = json!({"ids": ids});
    for (key, entity) in [("user", crm_model::USER_ENTITY), ("department", "department")] {
        properties[key] = json!({"type": "string", "format": "uuid"});
        if p.sees(entity) {
            properties[key]["x-target"] = json!(entity);
        }
    }
    if access {
        properties["access"] = json!({"enum": ["read", "edit"], "default": "read"});
    }
    json!({
        "type": "object", "required": ["ids"], "additionalProperties": false, "properties": properties,
        "oneOf": [{"required": ["user"]}, {"required": ["department"]}],
    })
}
