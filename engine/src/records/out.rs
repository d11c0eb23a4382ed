//! Records as the API answers them: system keys and one key per visible field, serialized
//! straight from the stored values without building JSON trees first.

use std::collections::HashSet;
use std::sync::Arc;

use crm_model::{Entity, FieldDef, Ident, Value, value};
use crm_store::Record;
use crm_store::records::col;
use serde::Serialize;
use serde::ser::SerializeMap as _;
use uuid::Uuid;

/// The columns a caller may see when some are hidden from them (`None`: all of them).
pub(super) fn visible_columns(entity: &Entity, hidden: &HashSet<Ident>) -> Option<Vec<usize>> {
    if hidden.is_empty() {
        return None;
    }
    Some((0..entity.columns().len()).filter(|i| !hidden.contains(&entity.columns()[*i].name)).collect())
}

/// A record as the API writes it: system keys and one key per live field (or only the
/// columns asked for), serialized straight from the stored values.
struct RecordView<'a> {
    entity: &'a Entity,
    record: &'a Record,
    fields: Option<&'a [usize]>,
}

impl Serialize for RecordView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns = self.entity.columns();
        let chosen: Box<dyn Iterator<Item = usize>> = match self.fields {
            Some(indexes) => {
                Box::new(std::iter::once(col::ID).chain(indexes.iter().copied().filter(|i| *i != col::ID)))
            }
            None => Box::new(0..columns.len()),
        };
        let mut map = serializer.serialize_map(None)?;
        for i in chosen {
            let field = &columns[i];
            if !field.archived {
                map.serialize_entry(field.name.as_str(), &ValueView { field, value: &self.record.values[i] })?;
            }
        }
        map.end()
    }
}

/// A value as [`value::to_json`] writes it, without building the JSON first.
struct ValueView<'a> {
    field: &'a FieldDef,
    value: &'a Value,
}

impl Serialize for ValueView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Null => serializer.serialize_none(),
            Value::Text(text) => serializer.serialize_str(text),
            Value::Integer(n) => serializer.serialize_i64(*n),
            Value::Fixed(n) => serializer.serialize_str(&value::format_fixed(*n, self.field.scale())),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::Date(d) => serializer.collect_str(&d.format("%Y-%m-%d")),
            Value::Datetime(dt) => serializer.serialize_str(&value::format_datetime(dt)),
            Value::Uuid(id) => serializer.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            Value::List(items) => items.serialize(serializer),
        }
    }
}

/// One record for a response.
pub struct RecordOut {
    pub(super) entity: Arc<Entity>,
    pub(super) record: Record,
    pub(super) fields: Option<Vec<usize>>,
}

impl RecordOut {
    /// A record with every live field, as the system reads it.
    pub fn whole(entity: Arc<Entity>, record: Record) -> Self {
        RecordOut { entity, record, fields: None }
    }

    pub fn id(&self) -> Uuid {
        self.record.id()
    }

    pub fn version(&self) -> i64 {
        self.record.version()
    }
}

impl Serialize for RecordOut {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordView { entity: &self.entity, record: &self.record, fields: self.fields.as_deref() }.serialize(serializer)
    }
}

/// A page of a list, answered as `{"data": [...], "next_cursor": ..., "total": ...}`.
pub struct ListPage {
    pub(super) entity: Arc<Entity>,
    pub(super) records: Vec<Record>,
    pub(super) fields: Option<Vec<usize>>,
    pub next_cursor: Option<String>,
    pub total: Option<i64>,
}

impl ListPage {
    /// Records on the page.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The page's records as stored (an export writes them typed).
    pub fn records(&self) -> &[Record] {
        &self.records
    }
}

impl Serialize for ListPage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a ListPage);
        impl Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let page = self.0;
                serializer.collect_seq(page.records.iter().map(|record| RecordView {
                    entity: &page.entity,
                    record,
                    fields: page.fields.as_deref(),
                }))
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("data", &Data(self))?;
        map.serialize_entry("next_cursor", &self.next_cursor)?;
        if let Some(total) = self.total {
            map.serialize_entry("total", &total)?;
        }
        map.end()
    }
}
