//! The OpenAPI 3.1 document of the API, generated from the live catalog: one set of paths and
//! schemas per entity, the filter grammar and the problem shape.

use crm_model::filter::Operator;
use crm_model::types::{TYPES, ValueSchema};
use crm_model::{Catalog, Entity, FieldDef, FieldType, Storage};
use serde_json::{Map, Value as Json, json};

fn nullable(mut schema: Json) -> Json {
    if let Some(ty) = schema.get("type").and_then(Json::as_str) {
        schema["type"] = json!([ty, "null"]);
        if let Some(values) = schema.get_mut("enum").and_then(Json::as_array_mut) {
            values.push(Json::Null);
        }
    }
    schema
}

/// The JSON Schema of a field's value as the API returns it.
fn field_schema(catalog: &Catalog, field: &FieldDef) -> Json {
    let option_values = || field.options.iter().map(|o| o.value.clone()).collect::<Vec<_>>();
    let mut schema = match field.spec().schema {
        ValueSchema::Text { format: None } => json!({"type": "string", "maxLength": field.max_length()}),
        ValueSchema::Text { format: Some(format) } => {
            json!({"type": "string", "format": format, "maxLength": field.max_length()})
        }
        ValueSchema::Generated => json!({"type": "string", "readOnly": true}),
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
        ValueSchema::Option => json!({"type": "string", "enum": option_values()}),
        ValueSchema::Options => json!({"type": "array", "uniqueItems": true, "items": {"enum": option_values()}}),
        ValueSchema::Reference => json!({"type": "string", "format": "uuid", "x-target": field.reference_target()}),
        ValueSchema::Stage => {
            let mut stages: Vec<String> = Vec::new();
            for stage in catalog.stage_sets_of(field).iter().flat_map(|s| s.stages.iter()) {
                if !stages.iter().any(|s| s == stage.name.as_str()) {
                    stages.push(stage.name.to_string());
                }
            }
            json!({"type": "string", "enum": stages})
        }
    };
    schema["title"] = json!(field.label.en);
    schema["x-label-zh-CN"] = json!(field.label.zh_cn);
    if let Some(help) = &field.help {
        schema["description"] = json!(help.en);
    }
    let system_not_null = matches!(field.name.as_str(), "id" | "owner" | "created_at" | "updated_at" | "version");
    if system_not_null { schema } else { nullable(schema) }
}

fn record_schema(catalog: &Catalog, entity: &Entity) -> Json {
    let properties: Map<String, Json> = entity
        .columns()
        .iter()
        .filter(|f| !f.archived)
        .map(|f| (f.name.to_string(), field_schema(catalog, f)))
        .collect();
    json!({
        "type": "object",
        "title": entity.def.label.en,
        "x-label-zh-CN": entity.def.label.zh_cn,
        "properties": properties,
        "required": ["id", "owner", "created_at", "updated_at", "version"],
    })
}

/// What a create accepts; numbers may also be sent as JSON numbers.
fn input_schema(catalog: &Catalog, entity: &Entity, for_update: bool) -> Json {
    let mut properties: Map<String, Json> = entity
        .live_fields()
        .filter(|f| !f.spec().generated)
        .map(|f| {
            let mut schema = field_schema(catalog, f);
            if matches!(f.storage(), Storage::Fixed(_)) {
                schema = json!({"anyOf": [schema, {"type": "number"}]});
            }
            (f.name.to_string(), schema)
        })
        .collect();
    properties.insert("owner".into(), json!({"type": "string", "format": "uuid"}));
    let mut schema = json!({"type": "object", "additionalProperties": false, "properties": properties});
    if for_update {
        schema["properties"]["version"] =
            json!({"type": "integer", "description": "The version you read; a stale one is answered with 409."});
        schema["required"] = json!(["version"]);
    } else {
        let required: Vec<String> = entity
            .live_fields()
            .filter(|f| f.required && f.default.is_none() && !f.spec().generated)
            .map(|f| f.name.to_string())
            .collect();
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
    }
    schema
}

fn problem_responses(codes: &[&str]) -> Map<String, Json> {
    codes
        .iter()
        .map(|code| ((*code).to_owned(), json!({"$ref": format!("#/components/responses/Problem{code}")})))
        .collect()
}

fn ok(description: &str, schema: Json) -> Json {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn body(schema: Json) -> Json {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn operation(id: String, summary: String, responses: Map<String, Json>) -> Json {
    json!({"operationId": id, "summary": summary, "responses": responses})
}

fn entity_paths(paths: &mut Map<String, Json>, entity: &Entity) {
    let name = entity.name().as_str();
    let label = &entity.def.label.en;
    let record = json!({"$ref": format!("#/components/schemas/{name}")});
    let page = json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": record},
            "next_cursor": {"type": ["string", "null"]},
            "total": {"type": "integer"},
        },
        "required": ["data", "next_cursor"],
    });
    let list_params = json!([
        {"$ref": "#/components/parameters/filter"}, {"$ref": "#/components/parameters/sort"},
        {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"},
        {"$ref": "#/components/parameters/fields"}, {"$ref": "#/components/parameters/count"},
        {"$ref": "#/components/parameters/deleted"},
    ]);
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let bulk_results = json!({"$ref": "#/components/schemas/BulkResults"});

    let with = |mut responses: Map<String, Json>, codes: &[&str]| {
        responses.extend(problem_responses(codes));
        responses
    };
    let one = |code: &str, response: Json| Map::from_iter([(code.to_owned(), response)]);

    let mut list = operation(
        format!("list_{name}"),
        format!("List {label} records"),
        with(one("200", ok("A page", page.clone())), &["400", "401", "404"]),
    );
    list["parameters"] = list_params.clone();
    let mut create = operation(
        format!("create_{name}"),
        format!("Create a {label}"),
        with(one("201", ok("Created", record.clone())), &["400", "401", "404", "413", "422"]),
    );
    create["requestBody"] = body(json!({"$ref": format!("#/components/schemas/{name}_input")}));
    paths.insert(format!("/api/v1/records/{name}"), json!({"get": list, "post": create}));

    let mut get = operation(
        format!("get_{name}"),
        format!("Read a {label}"),
        with(one("200", ok("The record", record.clone())), &["401", "404"]),
    );
    get["parameters"] = json!([id_param, {"$ref": "#/components/parameters/fields"}]);
    let mut patch = operation(
        format!("update_{name}"),
        format!("Change a {label}"),
        with(one("200", ok("Changed", record.clone())), &["400", "401", "404", "409", "413", "422"]),
    );
    patch["parameters"] = json!([id_param]);
    patch["requestBody"] = body(json!({"$ref": format!("#/components/schemas/{name}_update")}));
    let mut delete = operation(
        format!("delete_{name}"),
        format!("Move a {label} to the recycle bin"),
        with(one("204", json!({"description": "Deleted"})), &["401", "404"]),
    );
    delete["parameters"] = json!([id_param]);
    paths.insert(format!("/api/v1/records/{name}/{{id}}"), json!({"get": get, "patch": patch, "delete": delete}));

    let mut restore = operation(
        format!("restore_{name}"),
        format!("Restore a {label} from the recycle bin"),
        with(one("200", ok("Restored", record.clone())), &["401", "404", "422"]),
    );
    restore["parameters"] = json!([id_param]);
    paths.insert(format!("/api/v1/records/{name}/{{id}}/restore"), json!({"post": restore}));

    let mut history = operation(
        format!("history_{name}"),
        format!("Field history of a {label}"),
        with(one("200", ok("Audit entries", json!({"type": "object"}))), &["401", "404"]),
    );
    history["parameters"] = json!([id_param]);
    paths.insert(format!("/api/v1/records/{name}/{{id}}/history"), json!({"get": history}));

    if entity.live_fields().any(|f| f.field_type == FieldType::Stage) {
        let mut stage = operation(
            format!("move_stage_{name}"),
            format!("Move a {label} to a stage (forward, back or skipping stages)"),
            with(one("200", ok("Moved", record.clone())), &["400", "401", "403", "404", "409", "422"]),
        );
        stage["parameters"] = json!([id_param]);
        stage["requestBody"] = body(json!({
            "type": "object", "required": ["stage"], "additionalProperties": false,
            "properties": {"stage": {"type": "string"}, "field": {"type": "string"}, "version": {"type": "integer"}},
        }));
        paths.insert(format!("/api/v1/records/{name}/{{id}}/stage"), json!({"post": stage}));
        let mut stage_history = operation(
            format!("stage_history_{name}"),
            format!("Stage moves of a {label}, oldest first"),
            with(one("200", ok("Stage moves", json!({"type": "object"}))), &["401", "404"]),
        );
        stage_history["parameters"] = json!([id_param]);
        paths.insert(format!("/api/v1/records/{name}/{{id}}/stage-history"), json!({"get": stage_history}));
    }
    if entity.def.approval.is_some() {
        let mut step = operation(
            format!("approval_{name}"),
            format!("Submit, approve, reject or recall a {label}"),
            with(one("200", ok("The new status", json!({"type": "object"}))), &["400", "401", "403", "404", "422"]),
        );
        step["parameters"] = json!([id_param]);
        step["requestBody"] = body(json!({
            "type": "object", "required": ["action"], "additionalProperties": false,
            "properties": {"action": {"enum": ["submit", "approve", "reject", "recall"]}, "comment": {"type": "string"}},
        }));
        paths.insert(format!("/api/v1/records/{name}/{{id}}/approval"), json!({"post": step}));
        let mut steps = operation(
            format!("approvals_{name}"),
            format!("Approval steps of a {label}, oldest first"),
            with(one("200", ok("Approval steps", json!({"type": "object"}))), &["401", "404"]),
        );
        steps["parameters"] = json!([id_param]);
        paths.insert(format!("/api/v1/records/{name}/{{id}}/approvals"), json!({"get": steps}));
    }

    for panel in &entity.related.panels {
        let source_page = json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{}", panel.source)}}, "next_cursor": {"type": ["string", "null"]}}});
        let mut related = operation(
            format!("related_{name}_{}", panel.name),
            format!("{} of a {label}", panel.label.en),
            with(one("200", ok("A page", source_page)), &["400", "401", "404"]),
        );
        let mut params = vec![id_param.clone()];
        params.extend(list_params.as_array().cloned().unwrap_or_default());
        related["parameters"] = Json::Array(params);
        paths.insert(format!("/api/v1/records/{name}/{{id}}/related/{}", panel.name), json!({"get": related}));
    }

    let mut groups = operation(
        format!("groups_{name}"),
        format!("Count {label} records per value"),
        with(one("200", ok("Groups", json!({"type": "object"}))), &["400", "401", "404"]),
    );
    groups["parameters"] = json!([
        {"name": "by", "in": "query", "required": true, "schema": {"type": "string"}},
        {"name": "sum", "in": "query", "schema": {"type": "string"}},
        {"$ref": "#/components/parameters/filter"},
    ]);
    paths.insert(format!("/api/v1/records/{name}/groups"), json!({"get": groups}));

    let ids =
        json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": crate::records::MAX_BULK});
    for (action, summary, schema) in [
        (
            "update",
            "Set values on many",
            json!({"type": "object", "required": ["ids", "set"], "properties": {"ids": ids, "set": {"type": "object"}}}),
        ),
        (
            "delete",
            "Move many to the recycle bin",
            json!({"type": "object", "required": ["ids"], "properties": {"ids": ids}}),
        ),
        (
            "restore",
            "Restore many from the recycle bin",
            json!({"type": "object", "required": ["ids"], "properties": {"ids": ids}}),
        ),
        (
            "assign",
            "Give a new owner to many",
            json!({"type": "object", "required": ["ids", "owner"], "properties": {"ids": ids, "owner": {"type": "string", "format": "uuid"}}}),
        ),
        ("share", "Share many", share_schema(&ids, true)),
        ("unshare", "Take back shares of many", share_schema(&ids, false)),
    ] {
        let mut op = operation(
            format!("bulk_{action}_{name}"),
            format!("{summary} {label} records"),
            with(one("200", ok("A result per id", bulk_results.clone())), &["400", "401", "404", "422"]),
        );
        op["requestBody"] = body(schema);
        paths.insert(format!("/api/v1/records/{name}/bulk/{action}"), json!({"post": op}));
    }
    let mut import = operation(
        format!("bulk_create_{name}"),
        format!("Create many {label} records, all or none"),
        with(one("201", ok("Created", json!({"type": "object"}))), &["400", "401", "404", "413", "422"]),
    );
    import["requestBody"] = body(json!({
        "type": "object",
        "required": ["records"],
        "properties": {"records": {"type": "array", "maxItems": crate::records::MAX_IMPORT, "items": {"$ref": format!("#/components/schemas/{name}_input")}}},
    }));
    paths.insert(format!("/api/v1/records/{name}/bulk/create"), json!({"post": import}));
}

/// The body of bulk share (with `access`) and unshare: a user or a department.
fn share_schema(ids: &Json, access: bool) -> Json {
    let mut properties = json!({
        "ids": ids,
        "user": {"type": "string", "format": "uuid"},
        "department": {"type": "string", "format": "uuid"},
    });
    if access {
        properties["access"] = json!({"enum": ["read", "edit"]});
    }
    json!({"type": "object", "required": ["ids"], "properties": properties})
}

fn filter_schema() -> Json {
    json!({
        "description": "A filter tree: and/or/not of conditions. Ops: eq, ne, lt, lte, gt, gte, between ([low, high]), in (a list), contains, starts_with, is_null (true/false); the `x-operators` of FieldType say which a field of each type takes.",
        "oneOf": [
            {"type": "object", "required": ["and"], "additionalProperties": false, "properties": {"and": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Filter"}}}},
            {"type": "object", "required": ["or"], "additionalProperties": false, "properties": {"or": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Filter"}}}},
            {"type": "object", "required": ["not"], "additionalProperties": false, "properties": {"not": {"$ref": "#/components/schemas/Filter"}}},
            {"type": "object", "required": ["field", "op"], "additionalProperties": false, "properties": {
                "field": {"type": "string"},
                "op": {"enum": Operator::ALL.map(Operator::name)},
                "value": {},
            }},
        ],
    })
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

fn meta_paths(paths: &mut Map<String, Json>) {
    let any = json!({"type": "object"});
    let std = |id: &str, summary: &str, code: &str, codes: &[&str]| {
        let mut responses = Map::from_iter([(code.to_owned(), ok(summary, any.clone()))]);
        responses.extend(problem_responses(codes));
        operation(id.to_owned(), summary.to_owned(), responses)
    };
    let name_param = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let mut create_entity = std("create_entity", "Create an entity", "201", &["400", "401", "403", "422"]);
    create_entity["requestBody"] = body(json!({"$ref": "#/components/schemas/EntityDocument"}));
    paths.insert(
        "/api/v1/meta/entities".into(),
        json!({"get": std("list_entities", "The entities", "200", &["401"]), "post": create_entity}),
    );
    let mut get_entity = std("get_entity", "An entity with its layouts, list view and panels", "200", &["401", "404"]);
    get_entity["parameters"] = json!([name_param("entity")]);
    paths.insert("/api/v1/meta/entities/{entity}".into(), json!({"get": get_entity}));
    let mut add_field =
        std("add_field", "Add a field (the real table is altered)", "201", &["400", "401", "403", "404", "422"]);
    add_field["parameters"] = json!([name_param("entity")]);
    add_field["requestBody"] = body(json!({"$ref": "#/components/schemas/EntityDocument/$defs/field"}));
    paths.insert("/api/v1/meta/entities/{entity}/fields".into(), json!({"post": add_field}));
    let mut patch_field =
        std("patch_field", "Change a field's labels, options and flags", "200", &["400", "401", "403", "404", "422"]);
    patch_field["parameters"] = json!([name_param("entity"), name_param("field")]);
    patch_field["requestBody"] = body(any.clone());
    let mut archive_field =
        std("archive_field", "Archive a field (its data is kept)", "200", &["401", "403", "404", "422"]);
    archive_field["parameters"] = json!([name_param("entity"), name_param("field")]);
    paths.insert(
        "/api/v1/meta/entities/{entity}/fields/{field}".into(),
        json!({"patch": patch_field, "delete": archive_field}),
    );
    let mut get_doc =
        std("get_document", "A layout, list view, related panels or stage set document", "200", &["401", "404"]);
    get_doc["parameters"] = json!([{"name": "kind", "in": "path", "required": true, "schema": {"enum": ["layouts", "lists", "related", "stage_sets"]}}, name_param("name")]);
    let mut put_doc = std(
        "put_document",
        "Replace a layout, list view, related panels or stage set document",
        "200",
        &["400", "401", "403", "404", "422"],
    );
    put_doc["parameters"] = get_doc["parameters"].clone();
    put_doc["requestBody"] = body(any.clone());
    paths.insert("/api/v1/meta/{kind}/{name}".into(), json!({"get": get_doc, "put": put_doc}));
    paths.insert(
        "/api/v1/meta/history".into(),
        json!({"get": std("meta_history", "Metadata changes, newest first", "200", &["401", "403"])}),
    );
    let mut token = std("create_token", "Exchange a login and password for a bearer token", "201", &["400", "401"]);
    token["security"] = json!([]);
    token["requestBody"] = body(json!({
        "type": "object", "required": ["login", "password"], "additionalProperties": false,
        "properties": {"login": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string"}},
    }));
    paths.insert("/api/v1/auth/token".into(), json!({"post": token.clone()}));
    let mut login = std("login", "Sign in: a session cookie and its CSRF token", "200", &["400", "401"]);
    login["security"] = json!([]);
    login["requestBody"] = token["requestBody"].clone();
    paths.insert("/api/v1/auth/login".into(), json!({"post": login}));
    paths.insert("/api/v1/auth/logout".into(), json!({"post": std("logout", "End the session", "204", &["401"])}));
    paths.insert(
        "/api/v1/auth/session".into(),
        json!({"get": std("session", "Who is signed in, their roles and CSRF token", "200", &["401"])}),
    );
    let mut password = std("change_password", "Change one's own password", "204", &["400", "401", "422"]);
    password["requestBody"] = body(json!({
        "type": "object", "required": ["current_password", "password"],
        "properties": {"current_password": {"type": "string"}, "password": {"type": "string"}},
    }));
    paths.insert("/api/v1/auth/password".into(), json!({"post": password}));
    let mut new_token = std("create_api_token", "A new API token, shown once", "201", &["400", "401", "422"]);
    new_token["requestBody"] =
        body(json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}));
    paths.insert(
        "/api/v1/auth/tokens".into(),
        json!({"get": std("list_api_tokens", "One's API tokens", "200", &["401"]), "post": new_token}),
    );
    let mut revoke = std("revoke_api_token", "Revoke one of one's tokens", "204", &["401", "404"]);
    revoke["parameters"] = json!([name_param("id")]);
    paths.insert("/api/v1/auth/tokens/{id}".into(), json!({"delete": revoke}));
    paths.insert("/api/v1/meta/roles".into(), json!({"get": std("list_roles", "Every role", "200", &["401", "403"])}));
    let mut dry_run = std(
        "dry_run_script",
        "Run a rule without saving: what it would change, raise and do",
        "200",
        &["400", "401", "403", "404"],
    );
    dry_run["parameters"] = json!([name_param("name")]);
    dry_run["requestBody"] = body(json!({
        "type": "object",
        "properties": {"id": {"type": "string", "format": "uuid"}, "record": {"type": "object"}},
    }));
    paths.insert("/api/v1/meta/scripts/{name}/dry-run".into(), json!({"post": dry_run}));
    let mut reminders = std("list_reminders", "One's open reminders: due today and overdue", "200", &["400", "401"]);
    reminders["parameters"] =
        json!([{"name": "when", "in": "query", "required": false, "schema": {"enum": ["today", "overdue"]}}]);
    paths.insert("/api/v1/reminders".into(), json!({"get": reminders}));
    let mut convert = std(
        "convert_leads",
        "Convert leads to customer, contact and opportunity; a result per lead",
        "200",
        &["400", "401", "403"],
    );
    convert["requestBody"] = body(json!({
        "type": "object", "required": ["ids"], "additionalProperties": false,
        "properties": {
            "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
            "owner": {"type": "string", "format": "uuid"},
            "customer": {"type": "string", "format": "uuid"},
            "create_contact": {"type": "boolean"},
            "create_opportunity": {"type": "boolean"},
            "opportunity_name": {"type": "string"},
        },
    }));
    paths.insert("/api/v1/leads/convert".into(), json!({"post": convert}));
    let mut done = std("finish_reminder", "Mark one of one's reminders done", "204", &["401", "404"]);
    done["parameters"] = json!([name_param("id")]);
    paths.insert("/api/v1/reminders/{id}/done".into(), json!({"post": done}));
    let mut create_user = std("create_user", "A user with a password and roles", "201", &["400", "401", "403", "422"]);
    create_user["requestBody"] = body(json!({
        "type": "object", "required": ["user", "password"],
        "properties": {"user": {"type": "object"}, "password": {"type": "string"}, "roles": {"type": "array", "items": {"type": "string"}}},
    }));
    paths.insert("/api/v1/admin/users".into(), json!({"post": create_user}));
    let mut account = std("account", "A user's roles and password state", "200", &["401", "403", "404"]);
    account["parameters"] = json!([name_param("id")]);
    paths.insert("/api/v1/admin/users/{id}".into(), json!({"get": account}));
    for (action, summary, method) in [
        ("roles", "Replace a user's roles", "put"),
        ("disable", "Disable a user (signed out everywhere)", "post"),
        ("enable", "Enable a user", "post"),
        ("reset-password", "Set a temporary password", "post"),
        ("transfer", "Move every record of a user to another", "post"),
    ] {
        let mut op =
            std(&format!("user_{}", action.replace('-', "_")), summary, "200", &["400", "401", "403", "404", "422"]);
        op["parameters"] = json!([name_param("id")]);
        op["requestBody"] = body(any.clone());
        paths.insert(format!("/api/v1/admin/users/{{id}}/{action}"), json!({ method: op }));
    }
    let mut audit = std("audit", "The audit log, newest first", "200", &["400", "401", "403"]);
    audit["parameters"] = json!(
        ["entity", "record_id", "actor", "action", "from", "to", "before", "limit"]
            .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string"}}))
    );
    paths.insert("/api/v1/audit".into(), json!({"get": audit}));
    let mut health = std("healthz", "Health", "200", &[]);
    health["security"] = json!([]);
    paths.insert("/healthz".into(), json!({"get": health}));
}

/// The document for the entities `visible` admits.
pub fn document(catalog: &Catalog, visible: impl Fn(&str) -> bool) -> Json {
    let mut paths = Map::new();
    meta_paths(&mut paths);
    let mut schemas = Map::new();
    for entity in catalog.entities().filter(|e| visible(e.name().as_str())) {
        entity_paths(&mut paths, entity);
        let name = entity.name().as_str();
        schemas.insert(name.to_owned(), record_schema(catalog, entity));
        schemas.insert(format!("{name}_input"), input_schema(catalog, entity, false));
        schemas.insert(format!("{name}_update"), input_schema(catalog, entity, true));
    }
    schemas.insert("Filter".into(), filter_schema());
    schemas.insert("EntityDocument".into(), {
        let mut schema = crm_model::schema::schema_json(crm_model::DocKind::Entity);
        if let Some(object) = schema.as_object_mut() {
            object.remove("$id");
            object.remove("$schema");
        }
        // Its local references point into its own `$defs`, which move with it.
        let text = schema.to_string().replace("\"#/$defs/", "\"#/components/schemas/EntityDocument/$defs/");
        let mut schema: Json = serde_json::from_str(&text).unwrap_or_default();
        schema["$defs"]["field"]["properties"]["type"] = json!({"$ref": "#/components/schemas/FieldType"});
        schema
    });
    schemas.insert("FieldType".into(), field_type_schema());
    schemas.insert("Problem".into(), json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "code": {"type": "string", "description": "Stable: bad_request codes, unauthorized, forbidden, not_found, version_conflict, payload_too_large, validation_failed, invalid_metadata, internal"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "path": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}}}},
        },
    }));
    schemas.insert("BulkResults".into(), json!({
        "type": "object",
        "properties": {"results": {"type": "array", "items": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"}, "status": {"type": "integer"}, "version": {"type": "integer"}, "error": {"type": "object"},
        }}}},
    }));
    let problem = |description: &str| json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CRM API",
            "version": format!("catalog-{}", catalog.version),
            "description": "Generated from the live metadata: every entity has its record paths and schemas.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "parameters": {
                "filter": {"name": "filter", "in": "query", "description": "A filter tree as JSON", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Filter"}}}},
                "sort": {"name": "sort", "in": "query", "description": "Comma-separated fields; `-` for descending", "schema": {"type": "string"}, "example": "-annual_revenue,name"},
                "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": crate::records::MAX_LIMIT, "default": 50}},
                "cursor": {"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page", "schema": {"type": "string"}},
                "fields": {"name": "fields", "in": "query", "description": "Comma-separated fields to return", "schema": {"type": "string"}},
                "count": {"name": "count", "in": "query", "description": "Also return the total", "schema": {"type": "boolean"}},
                "deleted": {"name": "deleted", "in": "query", "description": "List the recycle bin", "schema": {"type": "boolean"}},
            },
            "responses": {
                "Problem400": problem("Malformed request, filter, sort or cursor"),
                "Problem401": problem("Missing or invalid bearer token"),
                "Problem403": problem("Not allowed"),
                "Problem404": problem("Unknown entity, record or route"),
                "Problem409": problem("Stale version"),
                "Problem413": problem("Body too large"),
                "Problem422": problem("Invalid values; `errors` has one entry per field"),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_model::Labels;

    #[test]
    fn fixed_numbers_are_described_as_exact_text() {
        let mut field =
            FieldDef::new(crm_model::Ident::new("amount").unwrap(), FieldType::Money, Labels::new("金额", "Amount"));
        field.required = true;
        let schema = field_schema(&Catalog::default(), &field);
        assert_eq!(schema["type"], json!(["string", "null"]));
        assert_eq!(schema["x-currency"], "CNY");
    }
}
