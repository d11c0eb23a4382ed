//! The metadata model: entities, fields and the documents that describe their screens; their
//! validation by JSON Schema and by meaning; the field types, their values; the filter tree;
//! change plans. No IO happens here: the store and the app build on these types.

pub mod catalog;
pub mod changes;
pub mod dashboard;
pub mod filter;
pub mod ident;
pub mod meta;
pub mod period;
pub mod plan;
pub mod region;
pub mod report;
pub mod roles;
pub mod schema;
pub mod threeway;
pub mod types;
pub mod value;

pub use catalog::{Catalog, Docs, Entity, MetaError, WEB_FORM_ENTITY, on_web_forms};
pub use filter::{Filter, ListQuery, Op, QueryError};
pub use ident::Ident;
pub use meta::{
    Compare, DocKind, DuplicateAction, DuplicateField, DuplicateRule, EntityDef, FieldDef, Labels, PrintTemplateDoc,
    ScriptDoc, ScriptEvent, SortKey, SyncDirection, SyncDoc, SyncField, SyncKey, WebFormDoc, WebFormField, WebhookDoc,
    WebhookEvent,
};
pub use roles::{Access, Action, Scope};
pub use types::{FieldType, Storage, TypeSpec};
pub use value::Value;

/// The entity whose records are the people who own, create and change every other record.
pub const USER_ENTITY: &str = "user";
