//! Comparing a mirror with its source: schema (columns and types), row count, and every row by key
//! with a checksum over canonical values. Lost, duplicated, unexpected and wrong rows are counted
//! per table ([`TenantReport`]).
//!
//! Reading the mirror is behind [`MirrorReader`], so the comparison is the same for every target:
//! PostgreSQL ([`PgReader`]) and SQL Server ([`MssqlReader`]); [`connect`] picks one by the
//! database URL.

mod canonical;
mod compare;
mod mssql;
mod postgres;
mod report;

use std::collections::HashMap;

use async_trait::async_trait;
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;

pub use canonical::{checksum, display};
pub use compare::{Merge, verify};
pub use mssql::{MssqlReader, mssql_type, spell};
pub use postgres::{PgReader, pg_type, redact};
pub use report::{DiffKind, RowDiff, TableReport, TenantReport};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot connect to the mirror database at {target}: {reason}")]
    Connect { target: String, reason: String },
    /// A query the database refused or could not finish; `reason` is the driver's error with
    /// its causes, whichever the target.
    #[error("reading {what} from the mirror: {reason}")]
    Query { what: String, reason: String },
    #[error("unsupported mirror database {0:?}: expected postgres://… or SQL Server")]
    UnsupportedTarget(String),
    #[error("mirror table {table}, column {column}: {reason}")]
    Decode {
        table: String,
        column: String,
        reason: String,
    },
    #[error("no answer from the mirror database within {0} s")]
    Timeout(u64),
}

/// One column of a mirror table: its name and its type as the target spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorColumn {
    pub name: String,
    pub ty: String,
}

/// Read access to one tenant's mirror.
#[async_trait]
pub trait MirrorReader: Send {
    /// Where the tenant's mirror is (schema or database name), for reports.
    fn storage(&self) -> &str;

    /// The type a mirror column of source type `ty` must have, spelled as [`columns`] reports it.
    ///
    /// [`columns`]: MirrorReader::columns
    fn expected_type(&self, ty: ColumnType) -> String;

    /// Mirrored tables present (state tables excluded).
    async fn tables(&mut self) -> Result<Vec<String>, VerifyError>;

    /// The table's columns in order; `None` when the table does not exist.
    async fn columns(&mut self, table: &str) -> Result<Option<Vec<MirrorColumn>>, VerifyError>;

    /// Streams every row's `columns` (decoded by the given source types) to `sink`, in ascending
    /// order of the first column (the key); returns the number of rows.
    async fn scan(
        &mut self,
        table: &str,
        columns: &[(String, ColumnType)],
        sink: &mut (dyn FnMut(Vec<Value>) + Send),
    ) -> Result<u64, VerifyError>;

    /// The LSN per table from the state table (empty when there is none).
    async fn lsns(&mut self) -> Result<HashMap<String, i64>, VerifyError>;
}

/// Connects the reader the database URL calls for: PostgreSQL for `postgres://…`, SQL Server for
/// `mssql://…`, `sqlserver://…`, an ADO.NET or a JDBC connection string (as the applier decides).
pub async fn connect(
    url: &str,
    name_template: &str,
    context_id: &str,
) -> Result<Box<dyn MirrorReader>, VerifyError> {
    let trimmed = url.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        Ok(Box::new(
            PgReader::connect(trimmed, name_template, context_id).await?,
        ))
    } else if mirror_applier::dialect::mssql::is_mssql_url(trimmed) {
        Ok(Box::new(
            MssqlReader::connect(trimmed, name_template, context_id).await?,
        ))
    } else {
        let scheme = trimmed.split(':').next().unwrap_or_default();
        Err(VerifyError::UnsupportedTarget(scheme.to_owned()))
    }
}
