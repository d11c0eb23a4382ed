//! Identifiers: the only strings that may become SQL table or column names.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Words that must never name an entity or a field, even quoted: they are SQL keywords that
/// confuse tools reading the database, or names the engine gives a meaning of its own.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cast",
    "check",
    "column",
    "constraint",
    "create",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "except",
    "exists",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "left",
    "like",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "outer",
    "primary",
    "references",
    "returning",
    "right",
    "rowid",
    "select",
    "set",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "update",
    "using",
    "values",
    "when",
    "where",
    "with",
    "oid",
    "ctid",
    "xmin",
    "xmax",
    "cmin",
    "cmax",
    "tableoid",
];

/// Prefixes kept for system tables of the engine and of the databases themselves.
const RESERVED_PREFIXES: &[&str] = &["crm_", "sqlite_", "pg_"];

/// A validated identifier: `^[a-z][a-z0-9_]{0,62}$`, not reserved.
///
/// `order` and `user` are allowed: they are entity names of the core package, and the dialect
/// layer quotes every identifier, so keywords that are ordinary nouns stay usable.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("must match ^[a-z][a-z0-9_]{{0,62}}$")]
    Malformed,
    #[error("`{0}` is a reserved word")]
    Reserved(String),
}

impl Ident {
    pub fn new(name: &str) -> Result<Self, IdentError> {
        let bytes = name.as_bytes();
        let well_formed = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if !well_formed {
            return Err(IdentError::Malformed);
        }
        if RESERVED.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Err(IdentError::Reserved(name.to_owned()));
        }
        Ok(Self(Arc::from(name)))
    }

    /// For names the engine itself defines (system columns); they are checked in tests.
    pub(crate) fn system(name: &'static str) -> Self {
        Self(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::borrow::Borrow<str> for Ident {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Ident {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Ident {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ident::new(&name).map_err(|e| serde::de::Error::custom(format!("`{name}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_nouns_that_are_keywords() {
        for name in ["customer", "order", "user", "a", "annual_revenue2"] {
            assert!(Ident::new(name).is_ok(), "{name}");
        }
        assert!(Ident::new(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn refuses_everything_that_could_escape_quoting() {
        for name in [
            "",
            "Customer",
            "1a",
            "_a",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "客户",
            "select",
            "crm_meta",
            "sqlite_master",
            "pg_class",
        ] {
            assert!(Ident::new(name).is_err(), "{name:?}");
        }
        assert!(Ident::new(&"a".repeat(64)).is_err());
    }
}
