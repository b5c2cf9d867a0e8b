//! `ApplyError`: everything that can go wrong between a decoded envelope and a committed mirror.
//!
//! The consumer decides what to do with a failure from two questions only: is it transient (retry
//! the same message with backoff, never reorder) and which table does it concern (quarantine that
//! table, dead-letter the message). Both are answered here by one exhaustive `match`, from error
//! codes and kinds — never from message text.

use std::fmt;

/// A failed apply, quarantine or ping.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database could not be reached, the connection broke, or the pool had no connection in
    /// time. Retrying later is the cure.
    #[error("database unavailable: {message}")]
    Unavailable { message: String },

    /// One database round trip (or the whole apply) took longer than allowed.
    #[error("database operation timed out after {secs} s: {operation}")]
    Timeout { operation: &'static str, secs: u64 },

    /// The database refused a statement; `code` is its SQLSTATE (or the target's error number).
    #[error("{}database error {code}: {message}", TablePrefix(table.as_deref()))]
    Database {
        table: Option<String>,
        code: String,
        message: String,
        transient: bool,
    },

    /// A name does not fit the target's identifier limit; it is never silently truncated.
    #[error("{}identifier {name:?} is {len} bytes long; the database allows at most {max}", TablePrefix(table.as_deref()))]
    IdentifierTooLong {
        table: Option<String>,
        name: String,
        len: usize,
        max: usize,
    },

    /// Rows or a wipe for a table that no TableSchema created in this mirror.
    #[error("table {table}: unknown to this mirror (no TableSchema created it)")]
    UnknownTable { table: String },

    /// A batch's own TableInfo differs from the schema the mirror table was built from.
    #[error(
        "table {table}: the batch's schema (hash {actual}) differs from the mirror's (hash {expected})"
    )]
    SchemaMismatch {
        table: String,
        expected: String,
        actual: String,
    },

    /// A batch that cannot be applied as sent (wrong number of values, a key that is not an integer).
    #[error("table {table}: {reason}")]
    BadBatch { table: String, reason: String },

    /// A mirrored table whose name collides with the mirror's own state tables.
    #[error("table {table}: the name is reserved for the mirror's state tables")]
    ReservedName { table: String },

    /// A context id that cannot name a tenant's storage.
    #[error("tenant {tenant:?}: {reason}")]
    BadTenant { tenant: String, reason: String },

    /// Stored state the engine cannot read back (edited by hand, or written by another version).
    #[error("{}stored mirror state is unreadable: {reason}", TablePrefix(table.as_deref()))]
    CorruptState {
        table: Option<String>,
        reason: String,
    },

    /// The database settings cannot be used (bad URL, unsupported target, unreadable password file).
    #[error("database settings: {0}")]
    Config(String),
}

impl ApplyError {
    /// True when the same message may succeed later unchanged (connection, timeout, deadlock,
    /// serialization failure, server shutting down, out of resources). Everything else is permanent:
    /// retrying would fail the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Unavailable { .. } | ApplyError::Timeout { .. } => true,
            ApplyError::Database { transient, .. } => *transient,
            ApplyError::IdentifierTooLong { .. }
            | ApplyError::UnknownTable { .. }
            | ApplyError::SchemaMismatch { .. }
            | ApplyError::BadBatch { .. }
            | ApplyError::ReservedName { .. }
            | ApplyError::BadTenant { .. }
            | ApplyError::CorruptState { .. }
            | ApplyError::Config(_) => false,
        }
    }

    /// The mirrored table the failure concerns, when it concerns one; that table is the one to
    /// quarantine after a permanent failure.
    pub fn table(&self) -> Option<&str> {
        match self {
            ApplyError::Database { table, .. }
            | ApplyError::IdentifierTooLong { table, .. }
            | ApplyError::CorruptState { table, .. } => table.as_deref(),
            ApplyError::UnknownTable { table }
            | ApplyError::SchemaMismatch { table, .. }
            | ApplyError::BadBatch { table, .. }
            | ApplyError::ReservedName { table } => Some(table),
            ApplyError::Unavailable { .. }
            | ApplyError::Timeout { .. }
            | ApplyError::BadTenant { .. }
            | ApplyError::Config(_) => None,
        }
    }

    /// The same error, attributed to `table` unless it already names one. Dialects call this
    /// around every statement that touches a mirrored table.
    pub fn for_table(self, name: &str) -> ApplyError {
        match self {
            ApplyError::Database {
                table: None,
                code,
                message,
                transient,
            } => ApplyError::Database {
                table: Some(name.to_owned()),
                code,
                message,
                transient,
            },
            ApplyError::IdentifierTooLong {
                table: None,
                name: ident,
                len,
                max,
            } => ApplyError::IdentifierTooLong {
                table: Some(name.to_owned()),
                name: ident,
                len,
                max,
            },
            ApplyError::CorruptState {
                table: None,
                reason,
            } => ApplyError::CorruptState {
                table: Some(name.to_owned()),
                reason,
            },
            other => other,
        }
    }
}

/// Renders `table x: ` before a message when a table is known.
struct TablePrefix<'a>(Option<&'a str>);

impl fmt::Display for TablePrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "table {t}: "),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_name_their_table_once_attributed() {
        let e = ApplyError::Database {
            table: None,
            code: "22021".into(),
            message: "invalid byte sequence".into(),
            transient: false,
        }
        .for_table("contact");
        assert_eq!(e.table(), Some("contact"));
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "table contact: database error 22021: invalid byte sequence"
        );
        // A second attribution keeps the first table.
        assert_eq!(e.for_table("person").table(), Some("contact"));
    }

    #[test]
    fn connection_trouble_is_transient_and_tableless() {
        let e = ApplyError::Unavailable {
            message: "connection refused".into(),
        };
        assert!(e.is_transient());
        assert_eq!(e.for_table("contact").table(), None);
        let t = ApplyError::Timeout {
            operation: "apply",
            secs: 5,
        };
        assert!(t.is_transient());
    }
}
