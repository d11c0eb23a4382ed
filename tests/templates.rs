//! Industry templates: each installs on a fresh instance with and without its sample data, its
//! rules compile, its screens, reports and print templates render, its role scopes hold; they
//! combine; a conflict stops an installation before anything is applied; an upgrade over a
//! customised instance keeps the customisation; removal archives with the data kept; an export
//! installs elsewhere. On SQLite and PostgreSQL.

mod support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use crm::package::Package;
use crm::templates;
use crm_model::threeway::{Action, Choice};
use serde_json::{Value, json};
use support::browser::Browser;
use support::{ADMIN_PASSWORD, FIRST_PASSWORD, TestApp, USER_PASSWORD};

/// The template the mechanics are tried with: install, conflict, upgrade, removal, export.
const TRIED: &str = "direct_sales";

fn package(name: &str) -> Package {
    templates::template(name).expect("shipped").expect("a valid template")
}

/// The entities a template owns.
fn owned(package: &Package) -> Vec<String> {
    package.docs.entities.keys().map(ToString::to_string).collect()
}

async fn count(t: &TestApp, token: Option<&str>, entity: &str) -> usize {
    let reply =
        t.call(Method::GET, &format!("/api/v1/records/{entity}?limit=1&count=true"), None, token).await.expect(200);
    reply["total"].as_u64().expect("a total") as usize
}

/// A sample user, signed in with a password of their own: their id and token.
async fn sign_in_sample_user(t: &TestApp, login: &str) -> (String, String) {
    let filter = json!({"field": "login", "op": "eq", "value": login});
    let users = t.list("user", Some(filter), "").await.expect(200);
    let id = users["data"][0]["id"].as_str().unwrap_or_else(|| panic!("sample user {login}")).to_owned();
    t.post(&format!("/api/v1/admin/users/{id}/reset-password"), json!({"password": FIRST_PASSWORD})).await.expect(200);
    let token = t.login(login, FIRST_PASSWORD).await.expect("the sample user signs in");
    let change = json!({"current_password": FIRST_PASSWORD, "password": USER_PASSWORD});
    t.call(Method::POST, "/api/v1/auth/password", Some(change), Some(&token)).await.expect(204);
    (id, t.login(login, USER_PASSWORD).await.expect("signs in with their password"))
}

async fn installs_and_works(t: TestApp, name: &str) {
    let package = package(name);
    for script in package.docs.scripts.values() {
        assert!(
            t.app.rules.compile(script.name.as_str(), &script.source).is_ok(),
            "{name}: rule {} compiles",
            script.name
        );
    }
    // Without sample data: the metadata, the configuration records, nothing else.
    let done = t.post(&format!("/api/v1/templates/{name}/install"), json!({})).await.expect(201);
    let configured: usize = package.data.iter().map(|(_, records)| records.len()).sum();
    assert_eq!(done["records"], json!(configured), "{name}: only its configuration records");
    let mut browser = Browser::sign_in(&t, "admin", ADMIN_PASSWORD).await;
    for entity in owned(&package) {
        for page in [format!("/e/{entity}"), format!("/e/{entity}/new")] {
            let reply = browser.get(&page).await;
            assert_eq!(reply.status, StatusCode::OK, "{name}: {page}\n{}", reply.text);
        }
    }
    for report in package.docs.reports.keys() {
        let reply = browser.get(&format!("/reports/{report}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: report {report}\n{}", reply.text);
    }
    assert_eq!(browser.get("/").await.status, StatusCode::OK);

    // Then the sample data, all of it, through the save pipeline.
    let sample: usize = package.sample.iter().map(|(_, records)| records.len()).sum();
    assert!(sample >= 100, "{name}: a few hundred sample records, not {sample}");
    let done = t.post(&format!("/api/v1/templates/{name}/install"), json!({"sample_data": true})).await.expect(201);
    assert_eq!(done["records"], json!(sample), "{name}: every sample record");
    for (entity, records) in &package.sample {
        assert!(count(&t, None, entity).await >= records.len().min(500), "{name}: the sample {entity}s are there");
    }
    for entity in owned(&package) {
        let list = t.list(&entity, None, "&limit=1").await.expect(200);
        let Some(id) = list["data"][0]["id"].as_str() else { continue };
        let reply = browser.get(&format!("/e/{entity}/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: a {entity} record\n{}", reply.text);
        for print in package.docs.print_templates.values().filter(|p| p.entity.as_str() == entity) {
            let reply = browser.get(&format!("/e/{entity}/{id}/print?template={}", print.name)).await;
            assert_eq!(reply.status, StatusCode::OK, "{name}: print {}\n{}", print.name, reply.text);
        }
    }

    // A sample sales rep sees their own records of the entities the role scopes to their own.
    let catalog = t.app.catalog();
    let rep_role = catalog.role("sales_rep").expect("the core's sales_rep role");
    let rep = package
        .sample
        .iter()
        .filter(|(entity, _)| entity == "user")
        .flat_map(|(_, users)| users)
        .find(|u| u["$roles"].as_array().is_some_and(|r| r.iter().any(|r| r == "sales_rep")))
        .and_then(|u| u["login"].as_str())
        .unwrap_or_else(|| panic!("{name}: a sample sales rep"));
    let (rep_id, token) = sign_in_sample_user(&t, rep).await;
    let mut narrowed = false;
    for entity in owned(&package) {
        let own = rep_role.entities.get(entity.as_str()).is_some_and(|a| a.scope == crm_model::Scope::Own);
        if !own {
            continue;
        }
        let theirs =
            t.as_user(&token, Method::GET, &format!("/api/v1/records/{entity}?limit=500"), None).await.expect(200);
        for record in theirs["data"].as_array().expect("data") {
            assert_eq!(record["owner"], json!(rep_id), "{name}: a rep sees only their own {entity}s");
        }
        narrowed |= theirs["data"].as_array().map_or(0, Vec::len) < count(&t, None, &entity).await;
    }
    assert!(narrowed, "{name}: the sample data gives others records the rep does not see");
}

async fn each_template(backend: &str) {
    for name in templates::names() {
        let t = match backend {
            "postgres" => match TestApp::postgres().await {
                Some(t) => t,
                None => return,
            },
            _ => TestApp::sqlite().await,
        };
        installs_and_works(t, &name).await;
    }
}

mod every_template {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::each_template("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::each_template("postgres").await;
    }
}

/// All the templates on one instance, with their sample data: they do not conflict.
async fn templates_combine(t: TestApp) {
    let names = templates::names();
    assert!(names.len() >= 6, "six templates ship: {names:?}");
    for name in &names {
        let plan = t.post(&format!("/api/v1/templates/{name}/install"), json!({"dry_run": true})).await.expect(200);
        let conflicts: Vec<&Value> =
            plan["steps"].as_array().unwrap().iter().filter(|s| s["action"] == "conflict").collect();
        assert!(conflicts.is_empty(), "{name} conflicts with what is installed: {conflicts:?}");
        t.post(&format!("/api/v1/templates/{name}/install"), json!({"sample_data": true})).await.expect(201);
    }
    let listed = t.get("/api/v1/templates").await.expect(200);
    for item in listed["data"].as_array().unwrap() {
        assert!(item["installed"]["version"].is_string(), "{} is installed", item["name"]);
    }
}

/// A template adding a field a core entity already has here, differently: the conflict is
/// reported and nothing is applied, until it is chosen.
async fn a_conflict_stops_the_installation(t: TestApp) {
    let name = TRIED;
    let package = package(name);
    let (on, field) = package
        .extensions
        .iter()
        .filter(|(kind, _)| *kind == crm_model::DocKind::Entity)
        .flat_map(|(_, doc)| {
            doc["fields"].as_array().into_iter().flatten().map(move |f| (doc["name"].clone(), f.clone()))
        })
        .find(|(_, f)| f.get("target").is_none() && f.get("rollup").is_none() && f.get("stage_set").is_none())
        .expect("a template adds a plain field to a core entity");
    let on = on.as_str().unwrap().to_owned();
    let mut mine = field.clone();
    mine["label"] = json!({"zh-CN": "我们自己的字段", "en": "Our own field"});
    t.post(&format!("/api/v1/meta/entities/{on}/fields"), mine).await.expect(201);
    let version = t.app.catalog().version;
    let refused = t.post(&format!("/api/v1/templates/{name}/install"), json!({})).await.expect(422);
    let key = format!("entities/{on}/fields/{}", field["name"].as_str().unwrap());
    assert!(refused.to_string().contains(&key), "the conflict is named: {refused}");
    assert_eq!(t.app.catalog().version, version, "nothing was applied");
    assert!(
        t.get("/api/v1/templates").await.expect(200)["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["installed"].is_null())
    );

    let plan = t.post(&format!("/api/v1/templates/{name}/install"), json!({"dry_run": true})).await.expect(200);
    let step = plan["steps"].as_array().unwrap().iter().find(|s| s["key"] == json!(key)).expect("in the plan");
    assert_eq!(step["action"], "conflict");
    assert_eq!(step["ours"]["label"]["zh-CN"], "我们自己的字段");
    t.post(&format!("/api/v1/templates/{name}/install"), json!({"choices": {key.clone(): "mine"}})).await.expect(201);
    let live = t.app.catalog();
    let kept = live.entity(&on).unwrap().field(field["name"].as_str().unwrap()).unwrap().label.get("zh-CN").to_owned();
    assert_eq!(kept, "我们自己的字段", "the administrator's choice is kept");
}

/// Version 2 of a template over version 1 an administrator customised: the template's
/// changes are taken, the administrator's field, layout move and data are kept, and where
/// both changed the same field the administrator chooses.
async fn an_upgrade_keeps_the_customisation(t: TestApp) {
    let name = TRIED;
    let v1 = package(name);
    t.post(&format!("/api/v1/templates/{name}/install"), json!({"sample_data": true})).await.expect(201);
    let entity = owned(&v1)
        .into_iter()
        .find(|e| v1.docs.entities[e.as_str()].fields.len() >= 3)
        .expect("an entity with a few fields");
    let def = &v1.docs.entities[entity.as_str()];
    let title = def.title_field.clone().map_or("name".to_owned(), |f| f.to_string());
    let other = def.fields.iter().find(|f| f.name.as_str() != title).expect("another field").name.to_string();
    let records = count(&t, None, &entity).await;

    // The administrator's changes.
    let field = json!({"name": "admin_note", "type": "text", "label": {"zh-CN": "管理员备注", "en": "Admin note"}});
    t.post(&format!("/api/v1/meta/entities/{entity}/fields"), field).await.expect(201);
    let mut layout = t.get(&format!("/api/v1/meta/layouts/{entity}")).await.expect(200);
    let section = layout["edit"]["sections"][0]["name"].as_str().unwrap().to_owned();
    layout["edit"]["sections"][0]["fields"].as_array_mut().unwrap().reverse();
    let moved = layout["edit"]["sections"][0]["fields"].clone();
    t.put(&format!("/api/v1/meta/layouts/{entity}"), layout).await.expect(200);
    let relabel = json!({"label": {"zh-CN": "管理员改的名称", "en": "Renamed here"}});
    t.patch(&format!("/api/v1/meta/entities/{entity}/fields/{title}"), relabel).await.expect(200);

    // Version 2: a new field, a relabelled field, and the title field relabelled too.
    let mut v2 = package(name);
    v2.manifest["version"] = json!("9.0.0");
    let def = v2.docs.entities.get_mut(entity.as_str()).unwrap();
    let mut extra = def.fields.iter().find(|f| f.name.as_str() == title).unwrap().clone();
    extra.name = crm_model::Ident::new("v2_extra").unwrap();
    extra.required = false;
    extra.unique = false;
    def.fields.push(extra);
    for field in def.fields.iter_mut() {
        if field.name.as_str() == other {
            field.label = crm_model::Labels::new("模板第二版", "Version two");
        }
        if field.name.as_str() == title {
            field.label = crm_model::Labels::new("模板改的名称", "Renamed by the template");
        }
    }

    let preview = templates::preview(&t.app, &v2, &BTreeMap::new()).await.expect("a plan");
    let action = |key: String| preview.steps.iter().find(|s| s.key == key).map(|s| s.action);
    assert_eq!(action(format!("entities/{entity}/fields/v2_extra")), Some(Action::Add));
    assert_eq!(action(format!("entities/{entity}/fields/{other}")), Some(Action::Update));
    assert_eq!(action(format!("entities/{entity}/fields/{title}")), Some(Action::Conflict));
    assert_eq!(action(format!("layouts/{entity}/edit/{section}")), Some(Action::KeepLocal));
    assert_eq!(action(format!("entities/{entity}/fields/admin_note")), None, "the template knows nothing of it");

    let refused = templates::install(&t.app, None, &v2, false, &BTreeMap::new()).await;
    assert!(refused.is_err(), "a conflict not chosen is refused");
    let choices = BTreeMap::from([(format!("entities/{entity}/fields/{title}"), Choice::Mine)]);
    templates::install(&t.app, None, &v2, false, &choices).await.expect("upgraded");

    let live = t.get(&format!("/api/v1/meta/entities/{entity}")).await.expect(200);
    let label = |field: &str| {
        live["entity"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == field)
            .map(|f| f["label"]["zh-CN"].clone())
    };
    assert_eq!(label("admin_note"), Some(json!("管理员备注")), "the administrator's field stays");
    assert_eq!(
        label("v2_extra"),
        Some(json!(t.app.catalog().entity(&entity).unwrap().field("v2_extra").unwrap().label.get("zh-CN")))
    );
    assert_eq!(label(&other), Some(json!("模板第二版")), "the template's change is taken");
    assert_eq!(label(&title), Some(json!("管理员改的名称")), "the conflict went the administrator's way");
    let layout = t.get(&format!("/api/v1/meta/layouts/{entity}")).await.expect(200);
    assert_eq!(layout["edit"]["sections"][0]["fields"], moved, "the layout move stays");
    assert_eq!(count(&t, None, &entity).await, records, "no record is lost");
    let listed = t.get("/api/v1/templates").await.expect(200);
    let here = listed["data"].as_array().unwrap().iter().find(|i| i["name"] == json!(name)).unwrap().clone();
    assert_eq!(here["installed"]["version"], "9.0.0");
}

/// Removal archives the template's entities and the fields it added elsewhere, with their
/// records; another template removed after it goes the same way; installing it again brings
/// them back.
async fn removal_archives_and_keeps_the_data(t: TestApp) {
    let name = TRIED;
    let package = package(name);
    let second = templates::names().into_iter().find(|n| n != name).expect("another template");
    t.post(&format!("/api/v1/templates/{name}/install"), json!({"sample_data": true})).await.expect(201);
    t.post(&format!("/api/v1/templates/{second}/install"), json!({"sample_data": true})).await.expect(201);
    let entity = &owned(&package)[0];
    let records = count(&t, None, entity).await;
    let added: Vec<(String, String)> = package
        .extensions
        .iter()
        .filter(|(kind, _)| *kind == crm_model::DocKind::Entity)
        .flat_map(|(_, doc)| {
            let on = doc["name"].as_str().unwrap_or_default().to_owned();
            doc["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |f| (on.clone(), f["name"].as_str().unwrap_or_default().to_owned()))
        })
        .collect();

    t.post(&format!("/api/v1/templates/{name}/remove"), json!({})).await.expect(200);
    let catalog = t.app.catalog();
    assert!(catalog.entity(entity).unwrap().def.archived, "the entity is archived");
    for (on, field) in &added {
        assert!(
            catalog.entity(on).unwrap().def.fields.iter().any(|f| f.name.as_str() == field && f.archived),
            "{on}.{field} archived"
        );
    }
    let mut browser = Browser::sign_in(&t, "admin", ADMIN_PASSWORD).await;
    assert!(!browser.get("/").await.text.contains(&format!("href=\"/e/{entity}\"")), "out of the menus");
    assert_eq!(count(&t, None, entity).await, records, "its records are kept");

    t.post(&format!("/api/v1/templates/{second}/remove"), json!({})).await.expect(200);
    let second_entity = owned(&self::package(&second))[0].clone();
    assert!(t.app.catalog().entity(&second_entity).unwrap().def.archived, "the second is archived too");

    t.post(&format!("/api/v1/templates/{name}/install"), json!({})).await.expect(201);
    let catalog = t.app.catalog();
    assert!(!catalog.entity(entity).unwrap().def.archived, "back");
    for (on, field) in &added {
        assert!(catalog.entity(on).unwrap().field(field).is_some(), "{on}.{field} back");
    }
    assert!(count(&t, None, entity).await >= records);
}

/// What an administrator built, exported as a template folder, installs on another instance.
async fn an_export_installs_elsewhere(t: TestApp) {
    let name = TRIED;
    let package = package(name);
    t.post(&format!("/api/v1/templates/{name}/install"), json!({})).await.expect(201);
    let mut modules = owned(&package);
    modules.push("customer".into());
    let dir = tempfile::tempdir().expect("temp dir");
    templates::export(&t.app.catalog(), &modules, "exported", dir.path()).expect("exported");
    let exported = Package::load(dir.path()).expect("readable").expect("a valid package");
    assert!(!exported.docs.entities.contains_key("customer"), "the core's customer is extended, not copied");

    let elsewhere = TestApp::sqlite().await;
    let preview = templates::preview(&elsewhere.app, &exported, &BTreeMap::new()).await.expect("a plan");
    assert_eq!(preview.conflicts().count(), 0, "no conflict on a fresh instance");
    templates::install(&elsewhere.app, None, &exported, false, &BTreeMap::new()).await.expect("installs");
    for entity in owned(&package) {
        assert_eq!(
            elsewhere.app.catalog().entity(&entity).map(|e| e.def.clone()),
            t.app.catalog().entity(&entity).map(|e| e.def.clone()),
            "{entity} arrives as it was"
        );
    }
}

/// The gallery: the templates with their state; one's plan; installed from the page.
async fn the_gallery_installs_a_template(t: TestApp) {
    let name = TRIED;
    let mut browser = Browser::sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let gallery = browser.get("/studio/templates").await;
    assert_eq!(gallery.status, StatusCode::OK);
    for name in templates::names() {
        assert!(gallery.text.contains(&format!("data-template=\"{name}\"")), "{name} in the gallery");
    }
    assert!(gallery.text.contains("未安装"));
    let page = browser.get(&format!("/studio/templates/{name}")).await;
    assert!(page.text.contains("data-action=\"add\""), "the plan lists what it adds");
    let done = browser.post(&format!("/studio/templates/{name}"), &[("sample_data", "on")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let page = browser.follow(done).await;
    assert!(page.text.contains("已安装"), "{}", page.text);
    assert!(page.text.contains("id=\"template-remove\""));
    let package = package(name);
    assert!(count(&t, None, &owned(&package)[0]).await > 0, "with its sample data");
}

backends!(
    templates_combine,
    a_conflict_stops_the_installation,
    an_upgrade_keeps_the_customisation,
    removal_archives_and_keeps_the_data,
    an_export_installs_elsewhere,
    the_gallery_installs_a_template,
);

/// `crm template ...` as an implementer runs it: list, install with sample data, export the
/// module, check the exported folder against the instance it came from.
#[test]
fn the_command_line() {
    let data = tempfile::tempdir().expect("temp dir");
    let crm = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm"))
            .args(args)
            .env("CRM_DATA_DIR", data.path())
            .env("CRM_LOG", "warn")
            .output()
            .expect("crm runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "crm {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    assert!(crm(&["template", "list"]).contains("direct_sales 1.0.0    installed: -"));
    let dry = crm(&["template", "install", TRIED, "--dry-run"]);
    assert!(dry.contains("create table `prospect_visit`") && dry.contains("dry run: nothing applied"), "{dry}");
    let done = crm(&["template", "install", TRIED, "--with-sample-data"]);
    assert!(done.contains(&format!("installed {TRIED} 1.0.0")), "{done}");
    assert!(crm(&["template", "list"]).contains("installed: 1.0.0"));
    let folder = data.path().join("exported");
    let folder = folder.to_str().unwrap();
    crm(&["template", "export", "--module", "prospect_visit", "--to", folder]);
    let shown = crm(&["template", "show", folder]);
    assert!(shown.contains("plan (0 steps)"), "the export is what is installed: {shown}");
    assert!(crm(&["template", "upgrade", TRIED]).contains("0 steps"), "nothing to upgrade");
}
