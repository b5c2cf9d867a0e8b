//! PostgreSQL errors → [`ApplyError`], by SQLSTATE and error kind, never by message text.

use std::error::Error as _;

use crate::error::ApplyError;

/// True for the SQLSTATEs worth retrying unchanged: connection exceptions (class 08),
/// serialization failure (40001), deadlock (40P01), insufficient resources (class 53), the server
/// shutting down or restarting (57P01, 57P02, 57P03), a statement or lock timeout (57014, 55P03).
/// Data, constraint, syntax and privilege errors are permanent: the same message fails again.
pub fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "57014" | "55P03"
        )
}

/// Maps a driver error. Server errors carry a SQLSTATE; a closed connection or an I/O error is
/// transient; anything else from the client side (a value that cannot be encoded) is permanent.
pub fn classify(err: tokio_postgres::Error) -> ApplyError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code().to_owned();
        let mut message = db.message().to_owned();
        if let Some(detail) = db.detail() {
            message.push_str(" (");
            message.push_str(detail);
            message.push(')');
        }
        return ApplyError::Database {
            table: None,
            transient: is_transient_sqlstate(&code),
            code,
            message,
        };
    }
    let io = err
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    if err.is_closed() || io {
        return ApplyError::Unavailable {
            message: err.to_string(),
        };
    }
    ApplyError::Database {
        table: None,
        code: "client".into(),
        message: err.to_string(),
        transient: false,
    }
}

/// Maps an error obtaining a pooled connection: always transient (the server is down, refuses us,
/// or every connection is busy) — a message must never be dead-lettered for that.
pub fn pool(err: deadpool_postgres::PoolError) -> ApplyError {
    ApplyError::Unavailable {
        message: format!("no database connection: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_by_class_and_code() {
        for transient in [
            "08006", "08001", "40001", "40P01", "53300", "57P01", "57014",
        ] {
            assert!(is_transient_sqlstate(transient), "{transient}");
        }
        for permanent in [
            "22021", "23505", "42601", "42P01", "22P02", "42501", "57000",
        ] {
            assert!(!is_transient_sqlstate(permanent), "{permanent}");
        }
    }
}
