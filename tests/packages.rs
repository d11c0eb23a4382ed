//! Packages: the live catalog exported in the format of `metadata/core` installs elsewhere to
//! the same catalog, with the plan shown first and nothing to do the second time.

mod support;

use crm::package::Package;
use serde_json::json;
use support::TestApp;

backends!(every_exported_module_installs_on_a_fresh_instance);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_module_installs_on_another_instance() {
    let source = TestApp::sqlite().await;
    source
        .post(
            "/api/v1/meta/entities",
            json!({"name": "competitor", "label": {"zh-CN": "竞争对手", "en": "Competitor"},
                   "fields": [{"name": "name", "type": "text", "label": {"zh-CN": "名称", "en": "Name"}, "required": true}]}),
        )
        .await
        .expect(201);
    source
        .post(
            "/api/v1/meta/entities/customer/fields",
            json!({"name": "wechat", "type": "text", "label": {"zh-CN": "微信", "en": "WeChat"}}),
        )
        .await
        .expect(201);
    let dir = tempfile::tempdir().unwrap();
    let written = Package::export(&source.app.catalog(), dir.path(), "export").unwrap();
    assert!(written > 80, "{written} documents");
    assert!(dir.path().join("entities/competitor.json").exists());

    let target = TestApp::sqlite().await;
    let package = Package::load(dir.path()).unwrap().unwrap();
    let current = target.app.catalog();
    let (_, plan) = crm::metadata::plan_docs(&current, package.merge_into(current.docs())).unwrap();
    let steps = plan.describe();
    assert!(steps.contains(&"create table `competitor`".to_owned()), "{steps:?}");
    assert!(steps.contains(&"add column `customer.wechat` (Text)".to_owned()), "{steps:?}");

    crm::package::apply_dir(&target.app, dir.path(), false).await.unwrap();
    assert_eq!(target.app.catalog().docs(), source.app.catalog().docs(), "the same catalog on both");
    target.create("competitor", json!({"name": "对手"})).await;

    let again = target.app.catalog();
    let (_, plan) = crm::metadata::plan_docs(&again, package.merge_into(again.docs())).unwrap();
    assert!(plan.is_empty(), "installing twice changes nothing: {:?}", plan.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_package_is_refused_with_its_problems() {
    let target = TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("entities")).unwrap();
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"name":"bad","version":"1.0.0","label":{"zh-CN":"坏","en":"Bad"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("entities/thing.json"),
        r#"{"name":"thing","label":{"zh-CN":"物","en":"Thing"},"fields":[{"name":"owner_ref","type":"lookup","target":"ghost","label":{"zh-CN":"甲","en":"A"}}]}"#,
    )
    .unwrap();
    let before = target.app.catalog().version;
    let error = crm::package::apply_dir(&target.app, dir.path(), false).await.unwrap_err();
    assert!(error.to_string().contains("no entity `ghost`"), "{error}");
    assert_eq!(target.app.catalog().version, before, "nothing was applied");

    // Removing a field is refused: a package can only add and archive.
    let export = tempfile::tempdir().unwrap();
    Package::export(&target.app.catalog(), export.path(), "export").unwrap();
    let path = export.path().join("entities/customer.json");
    let mut customer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    customer["fields"].as_array_mut().unwrap().retain(|f| f["name"] != "fax");
    std::fs::write(&path, customer.to_string()).unwrap();
    let merged = Package::load(export.path()).unwrap().unwrap();
    let current = target.app.catalog();
    assert!(
        crm::metadata::plan_docs(&current, merged.merge_into(current.docs()))
            .unwrap()
            .0
            .entity("customer")
            .unwrap()
            .column("fax")
            .is_some(),
        "live fields the package lacks are kept"
    );
}

/// A module exported from the studio installs on a fresh instance, whatever was done to it:
/// every core entity's module, and a module built in the studio whose stage field was
/// archived and whose lookup points at another new entity.
async fn every_exported_module_installs_on_a_fresh_instance(source: TestApp) {
    let target = if source.is_postgres() { TestApp::postgres().await.unwrap() } else { TestApp::sqlite().await };
    let label = |zh: &str, en: &str| json!({"zh-CN": zh, "en": en});
    source
        .put(
            "/api/v1/meta/stage_sets/project_phase",
            json!({"name": "project_phase", "label": label("项目阶段", "Project phase"), "stages": [
                {"name": "plan", "label": label("计划", "Plan"), "probability": 10, "category": "open"},
                {"name": "done", "label": label("完成", "Done"), "probability": 100, "category": "won"}]}),
        )
        .await
        .expect(200);
    source
        .post(
            "/api/v1/meta/entities",
            json!({"name": "project_kind", "label": label("项目类型", "Project kind"),
                   "fields": [{"name": "name", "type": "text", "label": label("名称", "Name")}]}),
        )
        .await
        .expect(201);
    source
        .post(
            "/api/v1/meta/entities",
            json!({"name": "project", "label": label("项目", "Project"), "fields": [
                {"name": "name", "type": "text", "label": label("名称", "Name"), "required": true},
                {"name": "phase", "type": "stage", "label": label("阶段", "Phase"), "stage_set": "project_phase"},
                {"name": "kind", "type": "lookup", "label": label("类型", "Kind"), "target": "project_kind"},
                {"name": "customer", "type": "lookup", "label": label("客户", "Customer"), "target": "customer"}]}),
        )
        .await
        .expect(201);
    source.delete("/api/v1/meta/entities/project/fields/phase").await.expect(200);

    let catalog = source.app.catalog();
    let fresh = target.app.catalog();
    for entity in catalog.entities() {
        let name = entity.name().as_str();
        let package = crm::package::unbundle(&crm::package::bundle(&catalog, "export", Some(name)))
            .unwrap_or_else(|e| panic!("the module {name} reads back: {e:?}"));
        crm::metadata::plan_docs(&fresh, package.merge_into(fresh.docs()))
            .unwrap_or_else(|e| panic!("the module {name} installs on a fresh instance: {e:?}"));
    }
    let project = crm::package::unbundle(&crm::package::bundle(&catalog, "export", Some("project"))).unwrap();
    crm::metadata::apply_docs(&target.app, None, |docs| Ok(project.merge_into(docs))).await.unwrap();
    let kind = target.create("project_kind", json!({"name": "实施"})).await;
    target.create("project", json!({"name": "上线项目", "kind": kind["id"]})).await;
    assert!(target.app.catalog().stage_set("project_phase").is_some(), "the archived field's stage set came along");
}
