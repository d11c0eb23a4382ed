//! Dashboards as metadata: a page of widgets for the users of some roles — a report drawn as
//! its chart or table, a short list of records, the reminders inbox. The home page shows the
//! dashboard of the user's role; an administrator arranges them in the studio.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::catalog::{Catalog, MetaError};
use crate::filter::Filter;
use crate::ident::Ident;
use crate::meta::{DocKind, Labels};
use crate::report::PeriodOf;
use crate::types::Storage;

/// Most records a list widget shows.
pub const MAX_LIST_ROWS: u32 = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardDoc {
    pub name: Ident,
    pub label: Labels,
    /// The roles whose home page it is; administrators see every dashboard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Ident>,
    pub widgets: Vec<Widget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Widget {
    /// A saved report, as its chart or as its table.
    Report {
        report: Ident,
        #[serde(default)]
        show: Show,
        #[serde(default, skip_serializing_if = "is_false")]
        wide: bool,
    },
    /// The first records of an entity matching a filter, newest first unless sorted.
    List {
        label: Labels,
        entity: Ident,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Json>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period: Option<PeriodOf>,
        /// The list's columns; its list view's first columns when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<Ident>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sort: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default, skip_serializing_if = "is_false")]
        wide: bool,
    },
    /// The user's open reminders due by the end of today.
    Reminders {
        #[serde(default, skip_serializing_if = "is_false")]
        wide: bool,
    },
}

impl Widget {
    /// Whether the widget spans the page's two columns.
    pub fn wide(&self) -> bool {
        match self {
            Widget::Report { wide, .. } | Widget::List { wide, .. } | Widget::Reminders { wide } => *wide,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    #[default]
    Chart,
    Table,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What is wrong with a dashboard against the catalog: a report or an entity that does not
/// exist, a list's filter, period or columns that do not fit its entity.
pub fn check(catalog: &Catalog, doc: &DashboardDoc) -> Vec<MetaError> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| {
        errors.push(MetaError::new(DocKind::Dashboard, doc.name.as_str(), path, message));
    };
    for role in &doc.roles {
        if !catalog.docs().roles.contains_key(role) {
            err("/roles".into(), format!("no role `{role}`"));
        }
    }
    for (i, widget) in doc.widgets.iter().enumerate() {
        let path = format!("/widgets/{i}");
        match widget {
            Widget::Report { report, .. } if !catalog.docs().reports.contains_key(report) => {
                err(format!("{path}/report"), format!("no report `{report}`"));
            }
            Widget::List { entity, filter, period, columns, .. } => {
                let Some(def) = catalog.entity(entity.as_str()) else {
                    err(format!("{path}/entity"), format!("no entity `{entity}`"));
                    continue;
                };
                let none = HashSet::new();
                if let Some(Err(e)) = filter.as_ref().map(|json| Filter::parse(catalog, def, json, &none)) {
                    err(format!("{path}/filter{}", e.path), e.message);
                }
                if let Some(period) = period
                    && !def
                        .column(period.field.as_str())
                        .is_some_and(|f| matches!(f.storage(), Storage::Date | Storage::Datetime))
                {
                    err(format!("{path}/period/field"), format!("`{}` is not a date of `{entity}`", period.field));
                }
                for column in columns.iter().filter(|c| def.column(c.as_str()).is_none()) {
                    err(format!("{path}/columns"), format!("no field `{column}` on `{entity}`"));
                }
            }
            _ => {}
        }
    }
    errors
}
