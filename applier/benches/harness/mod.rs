//! A harness for measuring the applier against PostgreSQL baselines in one run, on the same rows:
//! realistic SuperOffice rows ([`values`], [`workload`]) for real table definitions
//! ([`fixture`]), scratch tenants ([`lab`]), timed measurements ([`measure`]), and the report of
//! medians and ratios against DESIGN.md's targets ([`report`]). [`run`] ties them together.

pub mod fixture;
pub mod lab;
pub mod measure;
pub mod report;
pub mod run;
pub mod values;
pub mod workload;

use mirror_applier::error::ApplyError;

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("SuperOffice schema fixture: {0}")]
    Fixture(String),
    #[error("row generator: {0}")]
    Generator(String),
    #[error("database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("engine: {0}")]
    Apply(#[from] ApplyError),
    #[error("{what} took longer than {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    /// Two measurements that must leave the same table did not: the numbers would be meaningless.
    #[error("results differ: {0}")]
    Mismatch(String),
    #[error("{0}")]
    Unexpected(String),
}

/// The server's message and SQLSTATE when there is one (tokio-postgres' own text is just
/// "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
