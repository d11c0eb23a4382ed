//! A metadata change's plan in the words of the studio's reader: tables and fields by the
//! labels of their entities and fields, documents by their kind and label. The API keeps
//! [`Plan::describe`], in the terms developers use.

use crm_model::plan::{Plan, TableStep};
use crm_model::{Catalog, Ident};

use super::shell::text;

/// One line per step, as [`Plan::describe`] orders them, in `locale`; `catalog` is the
/// catalog the plan leads to, where new entities and fields have their labels.
pub fn describe(catalog: &Catalog, plan: &Plan, locale: &str) -> Vec<String> {
    let entity =
        |name: &Ident| catalog.entity(name.as_str()).map_or(name.to_string(), |e| e.def.label.get(locale).to_owned());
    let field = |of: &Ident, name: &Ident| {
        catalog
            .entity(of.as_str())
            .and_then(|e| e.column(name.as_str()))
            .map_or(name.to_string(), |f| f.label.get(locale).to_owned())
    };
    let separator = if locale == "en" { ", " } else { "、" };
    let fields = |of: &Ident, names: &[Ident]| names.iter().map(|n| field(of, n)).collect::<Vec<_>>().join(separator);
    let tables = plan.tables.iter().map(|step| match step {
        TableStep::CreateTable { entity: e } => text(locale, "plan.create_table", &[("entity", entity(e))]),
        TableStep::AddColumn { entity: e, field: f } => {
            let args = [
                ("entity", entity(e)),
                ("field", f.label.get(locale).to_owned()),
                ("type", f.spec().label(locale).to_owned()),
            ];
            text(locale, "plan.add_column", &args)
        }
        TableStep::CreateIndex { entity: e, fields: names, unique } => {
            let key = if *unique { "plan.create_unique_index" } else { "plan.create_index" };
            text(locale, key, &[("entity", entity(e)), ("fields", fields(e, names))])
        }
        TableStep::DropIndex { entity: e, fields: names, .. } => {
            text(locale, "plan.drop_index", &[("entity", entity(e)), ("fields", fields(e, names))])
        }
        TableStep::Rescale { entity: e, field: f, from, to } => {
            let args =
                [("entity", entity(e)), ("field", field(e, f)), ("from", from.to_string()), ("to", to.to_string())];
            text(locale, "plan.rescale", &args)
        }
        TableStep::FillRollup { entity: e, field: f, replaces } => {
            let key = if *replaces { "plan.fill_rollup_replacing" } else { "plan.fill_rollup" };
            text(locale, key, &[("entity", entity(e)), ("field", field(e, f))])
        }
    });
    let docs = plan.docs.iter().map(|step| {
        let verb = match (&step.before, step.removes()) {
            (_, true) => "plan.remove",
            (Some(_), false) => "plan.update",
            (None, false) => "plan.create",
        };
        // A document's label where it has one; a layout, list or panels document is its
        // entity's.
        let label = catalog
            .docs()
            .get_json(step.kind, step.name.as_str())
            .and_then(|doc| doc["label"][locale].as_str().map(str::to_owned))
            .unwrap_or_else(|| entity(&step.name));
        let kind = text(locale, &format!("plan.kind.{}", step.kind.as_str()), &[]);
        text(locale, verb, &[("kind", kind), ("name", label)])
    });
    tables.chain(docs).collect()
}
