//! Driving mirroring cycles against the receiver over real HTTP: one tenant's cycle ([`cycle`]),
//! many tenants at once ([`fleet`]), the HTTP client ([`client`]) and batch splitting ([`batch`]).

pub mod batch;
pub mod client;
pub mod cycle;
pub mod fleet;

use mirror_common::auth::AuthError;
use mirror_common::soap::SoapError;

pub use batch::{DEFAULT_BATCH_BYTES, DeleteShape};
pub use client::{Credentials, Endpoint};
pub use cycle::{
    CycleOptions, CycleReport, CycleStatus, IntermediateLsn, SyncMode, TableCycle, run_cycle,
};
pub use fleet::{RunConfig, TenantRun, run};

use crate::scenario::Step;
use crate::source::SourceError;

/// Why a call or a cycle failed. A failed cycle is not an error of the run: it is reported and
/// the next cycle resends, as the Mirroring Task does.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("invalid receiver URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot create the HTTP client: {source}")]
    Client { source: reqwest::Error },
    #[error("{op}: cannot reach the receiver at {url}: {source}")]
    Http {
        op: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{op}: no answer within {secs} s")]
    Timeout { op: &'static str, secs: u64 },
    #[error("{op}: HTTP {status}: {detail}")]
    Status {
        op: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{op}: unreadable answer: {source}")]
    Soap { op: &'static str, source: SoapError },
    #[error("{op}: the answer is a {got} response")]
    WrongResponse { op: &'static str, got: &'static str },
    #[error("{op} failed: {message}")]
    Refused { op: &'static str, message: String },
    #[error("Authenticate: the partner's signed answer does not verify: {0}")]
    BadAnswer(#[source] AuthError),
    #[error("aborted on purpose after {0} RowData call(s)")]
    AbortedOnPurpose(usize),
    #[error("stopped: shutdown requested")]
    Cancelled,
    #[error("a call's task ended abnormally: {0}")]
    Task(String),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Progress callbacks for a UI (the CLI's progress bars); every method defaults to nothing.
pub trait Observer: Send + Sync {
    fn cycle_started(&self, _tenant: &str, _cycle: usize, _step: Step) {}
    fn rows_sent(&self, _tenant: &str, _rows: u64, _bytes: u64) {}
    fn cycle_finished(&self, _report: &CycleReport) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}
