//! The rows a benchmark applies, generated once per table and shared by every measurement: the
//! initial load, a 50/30/20 insert/update/delete change set and a pure update set, each cut into
//! RowData messages of about SuperOffice's batch size.

use chrono::Utc;
use mirror_common::schema::TableSchema;
use mirror_common::value::{self, Value};
use mirror_common::wire::{Envelope, Message, Operation, Row, RowBatch};
use uuid::Uuid;

use super::BenchError;
use super::values::{Rng, key_value, row};

/// SuperOffice's default `BatchSize`: bytes of data per RowData call, XML overhead extra.
pub const SUPEROFFICE_BATCH_BYTES: usize = 1_000_000;

/// How much to generate for one table.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Rows of the initial load (keys `1..=rows`).
    pub rows: usize,
    /// Rows of each change set (mix and pure update).
    pub changes: usize,
    /// Data bytes per RowData message.
    pub batch_bytes: usize,
}

/// Rows of one table cut into RowData messages, in order.
#[derive(Debug, Clone)]
pub struct Batches {
    pub messages: Vec<Message>,
    /// Rows in all messages.
    pub rows: usize,
}

impl Batches {
    /// Cuts `rows` into messages of at least `batch_bytes` of encoded data (the last one may be
    /// smaller). Only the final batch carries a positive LSN, as SuperOffice sends it.
    pub fn cut(schema: &TableSchema, rows: Vec<Row>, batch_bytes: usize, lsn: i64) -> Batches {
        let total = rows.len();
        let mut messages = Vec::new();
        let mut current = Vec::new();
        let mut bytes = 0usize;
        let batch = |rows: Vec<Row>, lsn: i64| Message::RowData {
            batches: vec![RowBatch {
                table: schema.clone(),
                lsn,
                rows,
            }],
        };
        for r in rows {
            bytes += data_bytes(&r.values);
            current.push(r);
            if bytes >= batch_bytes {
                messages.push(batch(std::mem::take(&mut current), 0));
                bytes = 0;
            }
        }
        if !current.is_empty() {
            messages.push(batch(current, lsn));
        } else if let Some(Message::RowData { batches }) = messages.last_mut()
            && let Some(last) = batches.last_mut()
        {
            last.lsn = lsn;
        }
        Batches {
            messages,
            rows: total,
        }
    }

    /// Every row, in message order.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.messages.iter().flat_map(Batches::rows_of)
    }

    /// The rows grouped by transaction: every row in one, or (`per_message`) one per message.
    pub fn transactions(&self, per_message: bool) -> Vec<Vec<&Row>> {
        if per_message {
            self.messages
                .iter()
                .map(|m| Batches::rows_of(m).collect())
                .collect()
        } else {
            vec![self.rows().collect()]
        }
    }

    /// The rows of one message.
    pub fn rows_of(message: &Message) -> impl Iterator<Item = &Row> {
        let batches: &[RowBatch] = match message {
            Message::RowData { batches } => batches,
            Message::TableSchema { .. }
            | Message::Wipe { .. }
            | Message::ReplicationCompleted { .. } => &[],
        };
        batches.iter().flat_map(|b| b.rows.iter())
    }

    /// The messages as `tenant`'s envelopes, each with a fresh id (built before any clock starts).
    pub fn envelopes(&self, tenant: &str) -> Vec<Envelope> {
        self.messages
            .iter()
            .map(|m| envelope(tenant, m.clone()))
            .collect()
    }
}

/// An envelope of `tenant` as the receiver would publish it.
pub fn envelope(tenant: &str, message: Message) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        tenant: tenant.to_owned(),
        received_at_ms: Utc::now().timestamp_millis(),
        trace_id: String::new(),
        message,
    }
}

/// Bytes of data the row takes in a RowData call: its encoded values, as SuperOffice counts its
/// `BatchSize`.
pub fn data_bytes(values: &[Value]) -> usize {
    values
        .iter()
        .map(|v| v.encode().map_or(0, |s| s.len()))
        .sum()
}

/// Everything one table's measurements apply.
#[derive(Debug, Clone)]
pub struct Workload {
    pub schema: TableSchema,
    /// Keys `1..=rows`, first version: what COPY and the initial load write.
    pub load: Batches,
    /// 50% inserts of new keys, 30% updates and 20% deletes of existing keys, shuffled.
    pub mix: Batches,
    /// Updates of existing keys, every column changed.
    pub update: Batches,
}

impl Workload {
    pub fn generate(schema: TableSchema, sizes: Sizes) -> Result<Workload, BenchError> {
        let n = sizes.rows.max(1);
        let load_rows: Vec<Row> = (1..=n as i64)
            .map(|k| Row {
                op: Operation::Insert,
                values: row(&schema, k, 0),
            })
            .collect();
        check_round_trip(&schema, &load_rows)?;

        let inserts = sizes.changes / 2;
        let updates = (sizes.changes * 3 / 10).min(n / 2);
        let deletes = (sizes.changes - inserts - updates).min(n - updates);
        let existing = shuffled_keys(n, 1);
        let key_ty = schema.columns[0].ty;
        let mut mix: Vec<Row> = Vec::with_capacity(inserts + updates + deletes);
        mix.extend((n + 1..=n + inserts).map(|k| Row {
            op: Operation::Insert,
            values: row(&schema, k as i64, 0),
        }));
        mix.extend(existing[..updates].iter().map(|&k| Row {
            op: Operation::Update,
            values: row(&schema, k, 1),
        }));
        mix.extend(existing[updates..updates + deletes].iter().map(|&k| Row {
            op: Operation::Delete,
            values: vec![key_value(key_ty, k)],
        }));
        shuffle(&mut mix, &mut Rng::new(2));
        check_round_trip(&schema, &mix)?;

        let update: Vec<Row> = shuffled_keys(n, 3)
            .into_iter()
            .take(sizes.changes.min(n))
            .map(|k| Row {
                op: Operation::Update,
                values: row(&schema, k, 2),
            })
            .collect();
        Ok(Workload {
            load: Batches::cut(&schema, load_rows, sizes.batch_bytes, 1_000),
            mix: Batches::cut(&schema, mix, sizes.batch_bytes, 2_000),
            update: Batches::cut(&schema, update, sizes.batch_bytes, 3_000),
            schema,
        })
    }

    /// Rows in the table after the load and the mix.
    pub fn rows_after_mix(&self) -> usize {
        let (mut inserts, mut deletes) = (0, 0);
        for r in self.mix.rows() {
            match r.op {
                Operation::Insert => inserts += 1,
                Operation::Delete => deletes += 1,
                Operation::Update => {}
            }
        }
        self.load.rows + inserts - deletes
    }
}

/// Keys `1..=n` in a deterministic order of `seed`.
fn shuffled_keys(n: usize, seed: u64) -> Vec<i64> {
    let mut keys: Vec<i64> = (1..=n as i64).collect();
    shuffle(&mut keys, &mut Rng::new(seed));
    keys
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The generated values must be exactly what the receiver decodes from SuperOffice's encoding,
/// or the benchmark would measure rows the pipeline never carries. The first rows are checked.
fn check_round_trip(schema: &TableSchema, rows: &[Row]) -> Result<(), BenchError> {
    for (i, r) in rows.iter().take(500).enumerate() {
        for (column, v) in schema.columns.iter().zip(&r.values) {
            let encoded = v.encode();
            let decoded = value::decode(column.ty, column.nullable, encoded.as_deref());
            if decoded.as_ref() != Ok(v) {
                return Err(BenchError::Generator(format!(
                    "table {}, row {i}, column {}: {v:?} encodes as {encoded:?}, decodes as {decoded:?}",
                    schema.name, column.name
                )));
            }
        }
    }
    Ok(())
}
