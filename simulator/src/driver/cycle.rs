//! One mirroring cycle of one tenant, strictly sequential, as SuperOffice's Mirroring Task runs it:
//! Authenticate (and check the partner's signed answer), TableSchema, then per table Wipe + all
//! rows or the changes since the mirror's LSN, then ReplicationCompleted.
//!
//! Any failed call ends the cycle: nothing is retried within it, and the next cycle starts again
//! from the LSNs the mirror reports.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use mirror_common::schema::RawTableSchema;
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::{RawRowBatch, RequestBody, Response};
use mirror_common::wire::{Operation, ReplicationSummary};

use super::batch::{Batch, Batches, DeleteShape, WireRow};
use super::client::{Answer, Endpoint, Prepared};
use super::{DriverError, Observer};
use crate::scenario::Step;
use crate::source::{Source, Table};

/// What the LSN of a table's non-final RowData calls is (SuperOffice does not document it; only
/// the final call's LSN is meaningful, and a partner must not advance its LSN on the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IntermediateLsn {
    /// 0.
    #[default]
    Zero,
    /// The LSN the mirror reported at the start of the cycle.
    Start,
    /// The source's current version, as on the final call (a partner that stores it loses rows
    /// when the cycle fails half-way).
    Current,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleOptions {
    /// About this many bytes of data per RowData call (the tenant's `BatchSize`).
    pub batch_bytes: usize,
    pub delete_shape: DeleteShape,
    pub intermediate_lsn: IntermediateLsn,
    /// Fail the cycle on purpose after this many RowData calls (a failed call, resent next cycle).
    pub abort_after_row_calls: Option<usize>,
}

impl Default for CycleOptions {
    fn default() -> CycleOptions {
        CycleOptions {
            batch_bytes: super::batch::DEFAULT_BATCH_BYTES,
            delete_shape: DeleteShape::default(),
            intermediate_lsn: IntermediateLsn::default(),
            abort_after_row_calls: None,
        }
    }
}

/// Why a table is sent in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    /// The mirror reported -1 (new table, recreated, quarantined, or force-resync).
    MirrorEmpty,
    /// The mirror's LSN is older than the source's minimum valid version.
    HistoryExpired,
    /// The mirror's LSN is newer than the source's current version.
    SourceRestored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Full(FullReason),
    Incremental { since: u64 },
    UpToDate,
}

impl SyncMode {
    /// The Mirroring Task's decision for a table whose mirror holds `lsn`.
    pub fn decide(lsn: i64, source: &Source) -> SyncMode {
        let current = source.current_version();
        let Ok(lsn) = u64::try_from(lsn) else {
            return SyncMode::Full(FullReason::MirrorEmpty);
        };
        if lsn < source.min_valid_version() {
            SyncMode::Full(FullReason::HistoryExpired)
        } else if lsn > current {
            SyncMode::Full(FullReason::SourceRestored)
        } else if lsn == current {
            SyncMode::UpToDate
        } else {
            SyncMode::Incremental { since: lsn }
        }
    }
}

/// What happened to one table in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCycle {
    pub table: String,
    pub mirror_lsn: i64,
    pub mode: SyncMode,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub calls: u32,
}

impl TableCycle {
    pub fn rows(&self) -> u64 {
        self.inserts + self.updates + self.deletes
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleStatus {
    Completed,
    /// The partner asked to skip the cycle (`doNotReplicate`).
    Skipped,
    /// Failed on purpose (the `abort` step).
    Aborted,
    Failed(String),
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct CycleReport {
    pub tenant: String,
    pub cycle: usize,
    pub step: Step,
    pub status: CycleStatus,
    pub tables: Vec<TableCycle>,
    pub calls: u32,
    pub request_bytes: u64,
    pub elapsed: Duration,
}

impl CycleReport {
    pub fn completed(&self) -> bool {
        self.status == CycleStatus::Completed
    }

    /// True when the cycle wiped or sent anything.
    pub fn sent_anything(&self) -> bool {
        self.tables
            .iter()
            .any(|t| matches!(t.mode, SyncMode::Full(_)) || t.calls > 0)
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(TableCycle::rows).sum()
    }
}

/// Runs one cycle of `source`'s tenant. Never fails: the outcome is in the report's status.
pub async fn run_cycle(
    endpoint: &Endpoint,
    source: &Source,
    cycle: usize,
    step: Step,
    options: &CycleOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> CycleReport {
    let started = Instant::now();
    let mut report = CycleReport {
        tenant: source.tenant().to_owned(),
        cycle,
        step,
        status: CycleStatus::Completed,
        tables: Vec::new(),
        calls: 0,
        request_bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut driver = Cycle {
        endpoint,
        source,
        options,
        observer,
        cancel,
        report: &mut report,
        row_calls: 0,
    };
    let result = driver.run().await;
    report.status = match result {
        Ok(status) => status,
        Err(DriverError::AbortedOnPurpose(_)) => CycleStatus::Aborted,
        Err(DriverError::Cancelled) => CycleStatus::Cancelled,
        Err(error) => {
            tracing::warn!(tenant = source.tenant(), cycle, %error, "Cycle failed.");
            CycleStatus::Failed(error.to_string())
        }
    };
    report.elapsed = started.elapsed();
    report
}

struct Cycle<'a> {
    endpoint: &'a Endpoint,
    source: &'a Source,
    options: &'a CycleOptions,
    observer: &'a dyn Observer,
    cancel: &'a CancellationToken,
    report: &'a mut CycleReport,
    row_calls: usize,
}

impl Cycle<'_> {
    async fn run(&mut self) -> Result<CycleStatus, DriverError> {
        if !self.authenticate().await? {
            return Ok(CycleStatus::Skipped);
        }
        let lsns = self.table_schema().await?;
        let tables: Vec<&Table> = self.source.mirrored_tables().collect();
        for table in tables {
            let lsn = lsns.get(table.name()).copied().unwrap_or(-1);
            self.table(table, lsn).await?;
        }
        let summaries: Vec<ReplicationSummary> = self
            .report
            .tables
            .iter()
            .filter(|t| t.calls > 0 || matches!(t.mode, SyncMode::Full(_)))
            .map(|t| ReplicationSummary {
                table: t.table.clone(),
                inserts: saturate(t.inserts),
                updates: saturate(t.updates),
                deletes: saturate(t.deletes),
            })
            .collect();
        let answer = self
            .call(RequestBody::ReplicationCompleted { summaries })
            .await?;
        succeeded(&answer)?;
        Ok(CycleStatus::Completed)
    }

    /// Sends one call unless shutdown was requested; counts it.
    async fn call(&mut self, body: RequestBody<'_>) -> Result<Answer, DriverError> {
        let in_flight = self.start(self.endpoint.prepare(self.source.tenant(), body))?;
        self.answer(in_flight).await
    }

    /// Sends a prepared call as a task of its own, unless shutdown was requested.
    fn start(&self, prepared: Prepared) -> Result<InFlight, DriverError> {
        if self.cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        Ok(tokio::spawn(self.endpoint.send(prepared)))
    }

    /// Waits for the answer of a started call (abandoning it on shutdown); counts it.
    async fn answer(&mut self, mut in_flight: InFlight) -> Result<Answer, DriverError> {
        let answer = tokio::select! {
            joined = &mut in_flight => joined.map_err(|e| DriverError::Task(e.to_string()))??,
            () = self.cancel.cancelled() => {
                in_flight.abort();
                return Err(DriverError::Cancelled);
            }
        };
        self.report.calls += 1;
        self.report.request_bytes += answer.request_bytes as u64;
        Ok(answer)
    }

    /// False when the partner asked to skip this cycle.
    async fn authenticate(&mut self) -> Result<bool, DriverError> {
        let answer = self.call(RequestBody::Authenticate).await?;
        let Response::Authenticate {
            outcome,
            answer: auth,
        } = &answer.response
        else {
            return Err(wrong(&answer, "Authenticate"));
        };
        if !outcome.ok {
            return Err(refused("Authenticate", &outcome.error));
        }
        self.endpoint
            .credentials()
            .application_key
            .verify_answer(&auth.signed_application_token, &answer.nonce, Utc::now())
            .map_err(DriverError::BadAnswer)?;
        Ok(!do_not_replicate(&auth.additional_information_json))
    }

    async fn table_schema(&mut self) -> Result<HashMap<String, i64>, DriverError> {
        let tables = self.source.mirrored_tables().map(Table::schema).collect();
        let answer = self.call(RequestBody::TableSchema { tables }).await?;
        let Response::TableSchema { outcome, lsns } = &answer.response else {
            return Err(wrong(&answer, "TableSchema"));
        };
        if !outcome.ok {
            return Err(refused("TableSchema", &outcome.error));
        }
        Ok(lsns.iter().map(|l| (l.table.clone(), l.lsn)).collect())
    }

    async fn table(&mut self, table: &Table, mirror_lsn: i64) -> Result<(), DriverError> {
        let mode = SyncMode::decide(mirror_lsn, self.source);
        self.report.tables.push(TableCycle {
            table: table.name().to_owned(),
            mirror_lsn,
            mode,
            inserts: 0,
            updates: 0,
            deletes: 0,
            calls: 0,
        });
        let since = match mode {
            SyncMode::UpToDate => return Ok(()),
            SyncMode::Incremental { since } => Some(since),
            SyncMode::Full(_) => {
                let answer = self
                    .call(RequestBody::Wipe {
                        table: table.name().to_owned(),
                    })
                    .await?;
                succeeded(&answer)?;
                None
            }
        };
        let current = i64::try_from(self.source.current_version()).unwrap_or(i64::MAX);
        let intermediate = match self.options.intermediate_lsn {
            IntermediateLsn::Zero => 0,
            IntermediateLsn::Start => mirror_lsn.max(0),
            IntermediateLsn::Current => current,
        };
        let columns = table.columns().len();
        let shape = self.options.delete_shape;
        let changes: Box<dyn Iterator<Item = _> + Send> = match since {
            Some(since) => Box::new(table.changes_since(since)),
            None => Box::new(table.everything()),
        };
        let rows = changes.filter_map(|change| match change.op {
            Operation::Delete => Some(WireRow::delete(change.key, columns, shape)),
            op => table
                .row(change.key)
                .map(|values| WireRow::from_values(op, values)),
        });
        let mut batches = Batches::new(rows, self.options.batch_bytes).peekable();
        if batches.peek().is_none() && since.is_some() {
            // Changes were only in other tables: nothing to send for this one.
            return Ok(());
        }
        let schema = table.schema();
        let lsn_of = |last: bool| if last { current } else { intermediate };
        // A wiped table with no rows still gets one empty final call carrying the LSN.
        let mut next =
            RowCall::prepare(self.endpoint, self.source, &schema, batches.next(), lsn_of);
        loop {
            let RowCall {
                prepared,
                counts,
                bytes,
                last,
            } = next;
            // The call goes out as a task of its own while this one renders the next call, as a
            // sender whose own work is not the bottleneck would: still one call in flight.
            let in_flight = self.start(prepared)?;
            tokio::task::yield_now().await;
            let following = (!last).then(|| {
                RowCall::prepare(self.endpoint, self.source, &schema, batches.next(), lsn_of)
            });
            let answer = self.answer(in_flight).await?;
            succeeded(&answer)?;
            if let Some(entry) = self.report.tables.last_mut() {
                entry.inserts += counts[0];
                entry.updates += counts[1];
                entry.deletes += counts[2];
                entry.calls += 1;
            }
            self.observer
                .rows_sent(self.source.tenant(), counts.iter().sum(), bytes as u64);
            self.row_calls += 1;
            if self.options.abort_after_row_calls == Some(self.row_calls) {
                return Err(DriverError::AbortedOnPurpose(self.row_calls));
            }
            match following {
                Some(call) => next = call,
                None => return Ok(()),
            }
        }
    }
}

/// A call sent as a task of its own.
type InFlight = tokio::task::JoinHandle<Result<Answer, DriverError>>;

/// One RowData call of a table, rendered, with what the cycle reports of it.
struct RowCall {
    prepared: Prepared,
    counts: [u64; 3],
    bytes: usize,
    last: bool,
}

impl RowCall {
    /// The call carrying `batch` (no batch: the table's empty final call), its LSN chosen by
    /// whether it is the table's last.
    fn prepare(
        endpoint: &Endpoint,
        source: &Source,
        schema: &RawTableSchema,
        batch: Option<Batch>,
        lsn_of: impl Fn(bool) -> i64,
    ) -> RowCall {
        let last = batch.as_ref().is_none_or(|b| b.last);
        let (rows, bytes) = batch.map_or((Vec::new(), 0), |b| (b.rows, b.bytes));
        let mut counts = [0u64; 3];
        for row in &rows {
            counts[match row.op {
                Operation::Insert => 0,
                Operation::Update => 1,
                Operation::Delete => 2,
            }] += 1;
        }
        let raw = RawRowBatch {
            table: schema.clone(),
            lsn: lsn_of(last),
            rows: rows.into_iter().map(WireRow::into_raw).collect(),
        };
        let prepared =
            endpoint.prepare(source.tenant(), RequestBody::RowData { batches: vec![raw] });
        RowCall {
            prepared,
            counts,
            bytes,
            last,
        }
    }
}

fn saturate(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn succeeded(answer: &Answer) -> Result<(), DriverError> {
    let outcome = answer.response.outcome();
    if outcome.ok {
        Ok(())
    } else {
        Err(refused(answer.response.operation().name(), &outcome.error))
    }
}

fn refused(op: &'static str, message: &str) -> DriverError {
    DriverError::Refused {
        op,
        message: if message.is_empty() {
            "IsSuccessful=false without a message".to_owned()
        } else {
            message.to_owned()
        },
    }
}

fn wrong(answer: &Answer, op: &'static str) -> DriverError {
    DriverError::WrongResponse {
        op,
        got: answer.response.operation().name(),
    }
}

/// `{"doNotReplicate":"true"}` (or `true`) in `AdditionalInformationJson`.
pub fn do_not_replicate(json: &str) -> bool {
    if json.trim().is_empty() {
        return false;
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("doNotReplicate")
                && match v {
                    serde_json::Value::Bool(b) => *b,
                    serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
                    _ => false,
                }
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn do_not_replicate_reads_the_documented_json() {
        assert!(do_not_replicate(r#"{"doNotReplicate":"true"}"#));
        assert!(do_not_replicate(r#"{"doNotReplicate":true}"#));
        assert!(!do_not_replicate(r#"{"doNotReplicate":"false"}"#));
        assert!(!do_not_replicate(""));
        assert!(!do_not_replicate("not json"));
        assert!(!do_not_replicate(r#"{"other":"true"}"#));
    }

    #[test]
    fn the_mirroring_task_decides_per_table_from_the_reported_lsn() {
        let mut source = Source::new("Cust1", 1, 100).unwrap();
        let initial = source.current_version() as i64;
        assert_eq!(
            SyncMode::decide(initial - 1, &source),
            SyncMode::Full(FullReason::HistoryExpired),
            "a mirror from before the initial load"
        );
        for _ in 0..20 {
            source.insert("contact").unwrap();
        }
        let current = source.current_version() as i64;
        assert_eq!(
            SyncMode::decide(-1, &source),
            SyncMode::Full(FullReason::MirrorEmpty)
        );
        assert_eq!(SyncMode::decide(current, &source), SyncMode::UpToDate);
        assert_eq!(
            SyncMode::decide(current + 1, &source),
            SyncMode::Full(FullReason::SourceRestored)
        );
        assert_eq!(
            SyncMode::decide(current - 10, &source),
            SyncMode::Incremental {
                since: current as u64 - 10
            }
        );
        source.insert("contact").unwrap();
        source.expire_history();
        assert_eq!(
            SyncMode::decide(current, &source),
            SyncMode::Full(FullReason::HistoryExpired)
        );
        assert_eq!(SyncMode::decide(current + 1, &source), SyncMode::UpToDate);
    }
}
