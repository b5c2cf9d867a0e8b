//! SQL Server errors → [`ApplyError`], by error number and driver error kind, never by message
//! text.
//!
//! Transient means "the same message may succeed later unchanged": the worker keeps it and retries
//! with backoff. Everything the server refuses for the data or the statement itself (constraint,
//! conversion, truncation, syntax, missing object, permission) is permanent: the message is
//! dead-lettered and its table quarantined.

use std::io::ErrorKind;

use tiberius::error::Error;

use crate::error::ApplyError;

/// Error numbers worth retrying unchanged.
///
/// - deadlock victim (1205), lock request timeout (1222), lock resources (1204), snapshot update
///   conflict (3960), In-Memory OLTP conflicts (41301, 41302, 41305, 41325);
/// - connection trouble: no process on the other end of the pipe (233), transport errors (10053,
///   10054, 10060), cannot open the database (4060, e.g. while it starts or restores), and the
///   client-side timeout number `-2` that ADO.NET-style tooling reports;
/// - throttling and failovers on Azure SQL / Managed Instance: 40197, 40501, 40613, 49918,
///   49919, 49920, 10928, 10929, 40143;
/// - the server short of memory (701, 8645) or of space (1105 data file full, 9002 log full):
///   an operator fixes these, and a message must not be dead-lettered meanwhile.
pub fn is_transient_number(number: i64) -> bool {
    matches!(
        number,
        -2 | 233
            | 701
            | 1105
            | 1204
            | 1205
            | 1222
            | 3960
            | 4060
            | 8645
            | 9002
            | 10053
            | 10054
            | 10060
            | 10928
            | 10929
            | 40143
            | 40197
            | 40501
            | 40613
            | 41301
            | 41302
            | 41305
            | 41325
            | 49918
            | 49919
            | 49920
    )
}

/// Maps a driver error from an open connection.
///
/// A server error carries its number. I/O failures, protocol desyncs (a connection left half-way
/// through a response is unusable), TLS failures and redirects mean the connection is gone:
/// transient. Errors raised on the client side before anything reached the server (a value that
/// does not fit its column, text the column's code page cannot hold) are permanent.
pub fn classify(err: Error) -> ApplyError {
    match err {
        Error::Server(token) => {
            let number = i64::from(token.code());
            ApplyError::Database {
                table: None,
                code: number.to_string(),
                message: token.message().to_owned(),
                transient: is_transient_number(number),
            }
        }
        Error::Io { kind, message } => ApplyError::Unavailable {
            message: match kind {
                ErrorKind::TimedOut => format!("SQL Server did not answer in time: {message}"),
                _ => format!("SQL Server connection failed: {message}"),
            },
        },
        Error::Protocol(message) => ApplyError::Unavailable {
            message: format!("SQL Server connection unusable: {message}"),
        },
        Error::Tls(message) => ApplyError::Unavailable {
            message: format!("TLS with SQL Server failed: {message}"),
        },
        Error::Routing { host, port } => ApplyError::Unavailable {
            message: format!("SQL Server redirected the connection to {host}:{port}"),
        },
        Error::Encoding(message) | Error::Conversion(message) | Error::BulkInput(message) => {
            client(message.into_owned())
        }
        Error::Utf8 => client("text is not valid UTF-8".into()),
        Error::Utf16 => client("text is not valid UTF-16".into()),
        Error::ParseInt(e) => client(e.to_string()),
    }
}

/// Maps an error while establishing a connection: always transient. A refused login or an
/// unreachable server is fixed by an operator, never by dead-lettering the message at hand.
pub fn connect_error(err: Error) -> ApplyError {
    ApplyError::Unavailable {
        message: format!("cannot connect to SQL Server: {err}"),
    }
}

/// A permanent error raised on the client side.
pub fn client(message: String) -> ApplyError {
    ApplyError::Database {
        table: None,
        code: "client".into(),
        message,
        transient: false,
    }
}

/// The SQL Server error number of a database error (`None` for anything else).
pub fn number(err: &ApplyError) -> Option<i64> {
    match err {
        ApplyError::Database { code, .. } => code.parse().ok(),
        ApplyError::Unavailable { .. }
        | ApplyError::Timeout { .. }
        | ApplyError::IdentifierTooLong { .. }
        | ApplyError::UnknownTable { .. }
        | ApplyError::SchemaMismatch { .. }
        | ApplyError::BadBatch { .. }
        | ApplyError::ReservedName { .. }
        | ApplyError::BadTenant { .. }
        | ApplyError::CorruptState { .. }
        | ApplyError::Config(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_named_as_transient_are_transient() {
        for n in [
            1205, -2, 233, 10053, 10054, 10060, 4060, 40501, 40613, 49918, 49919, 49920, 1222,
        ] {
            assert!(is_transient_number(n), "{n}");
        }
    }

    #[test]
    fn constraint_conversion_and_syntax_errors_are_permanent() {
        // 2627/2601 duplicate key, 547 FK/CHECK, 515 NULL into NOT NULL, 8152/2628 truncation,
        // 241/242/245/8114/8115 conversion and overflow, 102/156 syntax, 207/208 missing
        // column/object, 229 permission, 1801 database exists.
        for n in [
            2627, 2601, 547, 515, 8152, 2628, 241, 242, 245, 8114, 8115, 102, 156, 207, 208, 229,
            1801,
        ] {
            assert!(!is_transient_number(n), "{n}");
        }
    }

    #[test]
    fn driver_errors_map_by_kind() {
        let io = classify(Error::Io {
            kind: ErrorKind::ConnectionReset,
            message: "reset".into(),
        });
        assert!(io.is_transient());
        assert!(matches!(io, ApplyError::Unavailable { .. }));
        let timeout = classify(Error::Io {
            kind: ErrorKind::TimedOut,
            message: "stalled".into(),
        });
        assert!(timeout.is_transient());
        assert!(classify(Error::Protocol("desync".into())).is_transient());
        let bulk = classify(Error::BulkInput("too long".into()));
        assert!(!bulk.is_transient());
        assert_eq!(number(&bulk), None);
        assert!(!classify(Error::Conversion("bad".into())).is_transient());
        assert!(connect_error(Error::Tls("handshake".into())).is_transient());
    }

    #[test]
    fn database_errors_expose_their_number() {
        let e = ApplyError::Database {
            table: None,
            code: "2627".into(),
            message: "Violation of PRIMARY KEY constraint".into(),
            transient: false,
        };
        assert_eq!(number(&e), Some(2627));
        assert_eq!(number(&ApplyError::Config("x".into())), None);
    }
}
