//! The measurements: each runs on a fresh scratch tenant, times only the work being compared,
//! fingerprints the table it wrote, and drops the tenant again (also when it fails).
//!
//! - [`Measurement::Copy`]: the floor of any load, a plain binary `COPY` of the rows in one
//!   transaction into an empty table of the same shape (created by the engine).
//! - [`Measurement::CopyPerMessage`]: the same `COPY`, but one transaction per RowData message:
//!   what the promise of one transaction per message costs by itself, so the engine's own
//!   overhead is the distance between this and [`Measurement::Load`].
//! - [`Measurement::Load`]: the engine applying the rows as RowData messages to an empty table
//!   (its direct-load path), one transaction per message as the workers do.
//! - [`Measurement::OurMix`] / [`Measurement::OurUpdate`]: the engine applying a change set to a
//!   populated table (temp table + `ON CONFLICT` merge).
//! - [`Measurement::SetMix`]: the server's floor for an upsert: the whole mix as one set-based
//!   statement pair (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE`, `DELETE … = ANY`) in
//!   one transaction, with no per-message commit and no bookkeeping. The distance between this and
//!   [`Measurement::OurMix`] is what the engine and one transaction per message cost; the distance
//!   between this and [`Measurement::Copy`] is what PostgreSQL's upsert costs per row.
//! - [`Measurement::SetMixPerMessage`]: the same statement pair per RowData message, each message
//!   collapsed beforehand and committed on its own, still without bookkeeping: the floor for
//!   upserts under the promise of one transaction per message, as
//!   [`Measurement::CopyPerMessage`] is for loads.
//! - [`Measurement::RowMix`] / [`Measurement::RowUpdate`]: the naive alternative, one prepared
//!   `INSERT … ON CONFLICT DO UPDATE` (or `DELETE`) per row in one transaction.

use std::time::{Duration, Instant};

use futures::pin_mut;
use mirror_applier::dialect::Render;
use mirror_applier::dialect::postgres::copy::{PgValue, pg_type};
use mirror_applier::dialect::postgres::render::PgRender;
use mirror_applier::dialect::postgres::rows::{conflict_action, delete_keys, upsert_arrays};
use mirror_applier::plan::collapse;
use mirror_common::wire::{Operation, Row};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::BenchError;
use super::lab::{Fingerprint, Lab, Scratch};
use super::workload::{Batches, Workload};

/// One timed run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub rows: usize,
    /// Transactions committed (for the engine, one per RowData message).
    pub transactions: usize,
    pub secs: f64,
}

impl Sample {
    pub fn rows_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.rows as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measurement {
    Copy,
    CopyPerMessage,
    Load,
    OurMix,
    SetMix,
    SetMixPerMessage,
    RowMix,
    OurUpdate,
    RowUpdate,
}

/// Which end state a measurement produces: measurements of one outcome must leave identical
/// tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Loaded,
    Mixed,
    Updated,
}

impl Measurement {
    /// In the order they run in each repetition (baseline and contender alternate, so a slow
    /// spell of the machine hits both).
    pub const ALL: [Measurement; 9] = [
        Measurement::Copy,
        Measurement::CopyPerMessage,
        Measurement::Load,
        Measurement::OurMix,
        Measurement::SetMix,
        Measurement::SetMixPerMessage,
        Measurement::RowMix,
        Measurement::OurUpdate,
        Measurement::RowUpdate,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Measurement::Copy => "a) plain COPY, empty table",
            Measurement::CopyPerMessage => "a') plain COPY, a transaction per message",
            Measurement::Load => "b) our load, empty table",
            Measurement::OurMix => "c) our upsert, 50/30/20 mix",
            Measurement::OurUpdate => "c) our upsert, updates only",
            Measurement::SetMix => "c') one set-based upsert, one transaction, mix",
            Measurement::SetMixPerMessage => {
                "c'') set-based upsert, a transaction per message, mix"
            }
            Measurement::RowMix => "d) row-by-row, 50/30/20 mix",
            Measurement::RowUpdate => "d) row-by-row, updates only",
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Measurement::Copy | Measurement::CopyPerMessage | Measurement::Load => Outcome::Loaded,
            Measurement::OurMix
            | Measurement::SetMix
            | Measurement::SetMixPerMessage
            | Measurement::RowMix => Outcome::Mixed,
            Measurement::OurUpdate | Measurement::RowUpdate => Outcome::Updated,
        }
    }

    /// Rows the table must hold afterwards.
    pub fn expected_rows(self, w: &Workload) -> usize {
        match self.outcome() {
            Outcome::Loaded | Outcome::Updated => w.load.rows,
            Outcome::Mixed => w.rows_after_mix(),
        }
    }

    /// Runs the measurement on a fresh tenant, which is dropped afterwards whatever happened.
    pub async fn run(
        self,
        lab: &Lab,
        w: &Workload,
        timeout: Duration,
    ) -> Result<(Sample, Fingerprint), BenchError> {
        let scratch = lab.scratch(&w.schema).await?;
        let result = match tokio::time::timeout(timeout, self.run_in(lab, w, &scratch)).await {
            Ok(result) => result,
            Err(_) => Err(BenchError::Timeout {
                what: self.label(),
                secs: timeout.as_secs(),
            }),
        };
        if result.is_err() {
            // A baseline may have failed inside its transaction; end it before dropping.
            let _ = lab.client.batch_execute("ROLLBACK").await;
        }
        let dropped = lab.drop_scratch(&scratch).await;
        let measured = result?;
        dropped?;
        Ok(measured)
    }

    async fn run_in(
        self,
        lab: &Lab,
        w: &Workload,
        scratch: &Scratch,
    ) -> Result<(Sample, Fingerprint), BenchError> {
        let changes = match self.outcome() {
            Outcome::Loaded => &w.load,
            Outcome::Mixed => &w.mix,
            Outcome::Updated => &w.update,
        };
        if self.outcome() != Outcome::Loaded {
            lab.populate(scratch, &w.load).await?;
        }
        let sample = match self {
            Measurement::Copy => copy(lab, scratch, changes, false).await?,
            Measurement::CopyPerMessage => copy(lab, scratch, changes, true).await?,
            Measurement::Load | Measurement::OurMix | Measurement::OurUpdate => {
                engine(lab, scratch, changes).await?
            }
            Measurement::SetMix => set_based(lab, scratch, changes, false).await?,
            Measurement::SetMixPerMessage => set_based(lab, scratch, changes, true).await?,
            Measurement::RowMix | Measurement::RowUpdate => {
                row_by_row(lab, scratch, changes).await?
            }
        };
        Ok((sample, lab.fingerprint(scratch).await?))
    }
}

/// The engine applying each message in its own transaction, in order, as a partition's worker.
async fn engine(lab: &Lab, scratch: &Scratch, batches: &Batches) -> Result<Sample, BenchError> {
    let envelopes = batches.envelopes(&scratch.tenant.context_id);
    lab.settle().await?;
    let start = Instant::now();
    for env in &envelopes {
        lab.apply(env).await?;
    }
    Ok(Sample {
        rows: batches.rows,
        transactions: envelopes.len(),
        secs: start.elapsed().as_secs_f64(),
    })
}

fn column_types(scratch: &Scratch) -> Vec<Type> {
    scratch
        .schema
        .columns
        .iter()
        .map(|c| pg_type(c.ty))
        .collect()
}

fn column_list(scratch: &Scratch) -> Result<Vec<String>, BenchError> {
    Ok(scratch
        .schema
        .columns
        .iter()
        .map(|c| PgRender.quote(&c.name))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Binary `COPY` of every row: in one transaction, or (`per_message`) in one transaction per
/// RowData message.
async fn copy(
    lab: &Lab,
    scratch: &Scratch,
    batches: &Batches,
    per_message: bool,
) -> Result<Sample, BenchError> {
    let types = column_types(scratch);
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        scratch.table,
        column_list(scratch)?.join(", ")
    );
    let client = &lab.client;
    let transactions = batches.transactions(per_message);
    lab.settle().await?;
    let start = Instant::now();
    let mut copied = 0;
    for rows in &transactions {
        client.batch_execute("BEGIN").await?;
        let sink = client.copy_in(&sql).await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for row in rows {
            writer
                .as_mut()
                .write_raw(row.values.iter().map(PgValue))
                .await?;
        }
        copied += writer.finish().await?;
        client.batch_execute("COMMIT").await?;
    }
    let secs = start.elapsed().as_secs_f64();
    if copied != batches.rows as u64 {
        return Err(BenchError::Unexpected(format!(
            "COPY took {copied} rows of {}",
            batches.rows
        )));
    }
    Ok(Sample {
        rows: batches.rows,
        transactions: transactions.len(),
        secs,
    })
}

/// The last operation per key, then the engine's upsert and delete statements, once each: for the
/// whole change set in one transaction, or (`per_message`) for each RowData message in its own.
async fn set_based(
    lab: &Lab,
    scratch: &Scratch,
    batches: &Batches,
    per_message: bool,
) -> Result<Sample, BenchError> {
    let types = column_types(scratch);
    let columns = column_list(scratch)?;
    let key = &columns[0];
    // The planner's own collapse, done before the clock starts.
    let transactions: Vec<Vec<Row>> = batches
        .transactions(per_message)
        .into_iter()
        .map(|rows| rows.into_iter().cloned().collect())
        .collect();
    let changes = transactions
        .iter()
        .map(|rows| collapse(&scratch.schema, rows))
        .collect::<Result<Vec<_>, _>>()?;
    let client = &lab.client;
    lab.settle().await?;
    let start = Instant::now();
    for changes in &changes {
        client.batch_execute("BEGIN").await?;
        if !changes.upserts.is_empty() {
            upsert_arrays(client, &scratch.table, &columns, &types, &changes.upserts).await?;
        }
        if !changes.deletes.is_empty() {
            delete_keys(client, &scratch.table, key, &changes.deletes).await?;
        }
        client.batch_execute("COMMIT").await?;
    }
    Ok(Sample {
        rows: batches.rows,
        transactions: changes.len(),
        secs: start.elapsed().as_secs_f64(),
    })
}

/// One prepared statement per row (upsert, or delete by key) in one transaction.
async fn row_by_row(lab: &Lab, scratch: &Scratch, batches: &Batches) -> Result<Sample, BenchError> {
    let types = column_types(scratch);
    let columns = column_list(scratch)?;
    let key = &columns[0];
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let upsert_sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({key}) {}",
        scratch.table,
        columns.join(", "),
        placeholders.join(", "),
        conflict_action(&columns)
    );
    let delete_sql = format!("DELETE FROM {} WHERE {key} = $1", scratch.table);
    let client = &lab.client;
    lab.settle().await?;
    let start = Instant::now();
    client.batch_execute("BEGIN").await?;
    let upsert = client.prepare_typed(&upsert_sql, &types).await?;
    let delete = client.prepare_typed(&delete_sql, &types[..1]).await?;
    for row in batches.rows() {
        match row.op {
            Operation::Insert | Operation::Update => {
                client
                    .execute_raw(&upsert, row.values.iter().map(PgValue))
                    .await?;
            }
            Operation::Delete => {
                client
                    .execute_raw(&delete, row.values[..1].iter().map(PgValue))
                    .await?;
            }
        }
    }
    client.batch_execute("COMMIT").await?;
    Ok(Sample {
        rows: batches.rows,
        transactions: 1,
        secs: start.elapsed().as_secs_f64(),
    })
}
