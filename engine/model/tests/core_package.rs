//! The core package in `metadata/core` is a valid, complete catalog.

use std::path::Path;

use crm_model::{Catalog, Docs};

/// Every file of a package folder as `(relative path, contents)`.
fn read_package(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

#[test]
fn core_package_is_a_valid_catalog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = read_package(&root.join("metadata/core"));
    // The package's rules are shipped as Rhai files under scripts/core.
    files.extend(
        read_package(&root.join("scripts/core")).into_iter().map(|(path, text)| (format!("scripts/{path}"), text)),
    );
    let (manifest, docs) = Docs::from_package_files(files)
        .unwrap_or_else(|errors| panic!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    assert_eq!(manifest["name"], "core");
    let mut completed = docs.clone();
    completed.fill_defaults();
    assert_eq!(docs, completed, "every entity ships its layout, list view and related panels");
    let catalog = Catalog::build(docs, 1)
        .unwrap_or_else(|errors| panic!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    for name in [
        "department",
        "user",
        "customer",
        "contact",
        "lead",
        "opportunity",
        "quote",
        "quote_line",
        "order",
        "order_line",
        "product",
        "product_category",
        "price_list",
        "price_list_item",
        "service_request",
        "knowledge_article",
        "kb_category",
        "service_request_article",
        "activity",
        "campaign",
        "campaign_member",
        "expense",
    ] {
        let entity = catalog.entity(name).unwrap_or_else(|| panic!("missing entity {name}"));
        assert!(entity.title_field().is_some(), "{name} needs a title field");
    }
    for role in ["administrator", "manager", "sales_rep", "service"] {
        assert!(catalog.role(role).is_some(), "missing role {role}");
    }
    assert!(catalog.role("administrator").unwrap().admin);
}

#[test]
fn a_broken_document_is_reported_with_its_path() {
    let files = vec![
        ("package.json".to_owned(), r#"{"name":"t","version":"1.0.0","label":{"zh-CN":"测","en":"T"}}"#.to_owned()),
        ("entities/thing.json".to_owned(), r#"{"name":"thing","label":{"zh-CN":"物","en":"Thing"},"fields":[{"name":"x","type":"lookup","label":{"zh-CN":"甲","en":"X"}}]}"#.to_owned()),
    ];
    let errors = Docs::from_package_files(files).unwrap_err();
    assert!(errors.iter().any(|e| e.doc == "entity:thing" && e.path == "/fields/0"), "{errors:?}");
}
