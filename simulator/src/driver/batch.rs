//! Splitting a table's changed rows into RowData calls of about `batch_bytes` bytes of data, as the
//! Mirroring Task does with the tenant's `BatchSize` preference (default 1,000,000).
//!
//! Rows are pulled lazily from the source, so a table of millions of rows is never materialised:
//! only one call's rows exist at a time.

use std::borrow::Cow;
use std::iter::Peekable;

use mirror_common::soap::RawRow;
use mirror_common::value::Value;
use mirror_common::wire::Operation;

/// The default `BatchSize` of SuperOffice tenants.
pub const DEFAULT_BATCH_BYTES: usize = 1_000_000;

/// What a delete row carries besides its key (undocumented by SuperOffice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeleteShape {
    /// The key, then NULL for every other column (what a change-tracking outer join yields).
    #[default]
    KeyAndNulls,
    /// Only the key.
    KeyOnly,
}

/// One row ready for the wire: the operation and the encoded values.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRow {
    pub op: Operation,
    pub values: Vec<Option<String>>,
}

impl WireRow {
    /// Encodes a row's typed values (`[I:1]`, `[DT:…]`, raw text, NULL as `None`); text travels
    /// as it is, so it is moved rather than copied.
    pub fn from_values(op: Operation, values: Vec<Value>) -> WireRow {
        WireRow {
            op,
            values: values
                .into_iter()
                .map(|value| match value {
                    Value::Text(text) => Some(text),
                    other => other.encode(),
                })
                .collect(),
        }
    }

    /// A delete of `key` in a table of `columns` columns.
    pub fn delete(key: i32, columns: usize, shape: DeleteShape) -> WireRow {
        let mut values = Vec::with_capacity(columns.max(1));
        values.push(Value::Int(key).encode());
        if shape == DeleteShape::KeyAndNulls {
            values.resize(columns.max(1), None);
        }
        WireRow {
            op: Operation::Delete,
            values,
        }
    }

    /// Bytes of data this row adds to a call: its values' lengths, at least one per value.
    pub fn data_bytes(&self) -> usize {
        self.values
            .iter()
            .map(|v| v.as_ref().map_or(1, |s| s.len().max(1)))
            .sum()
    }

    /// The codec's row type (borrowing nothing: the call is rendered right after).
    pub fn into_raw(self) -> RawRow<'static> {
        RawRow {
            operation: self.op.letter().to_owned(),
            values: self.values.into_iter().map(|v| v.map(Cow::Owned)).collect(),
        }
    }
}

/// One call's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub rows: Vec<WireRow>,
    pub bytes: usize,
    /// True for the table's final call of the cycle: it carries the current version as LSN.
    pub last: bool,
}

/// Groups rows into batches of at most `limit` bytes of data; a row larger than the limit travels
/// alone. Yields nothing for no rows.
pub struct Batches<I: Iterator<Item = WireRow>> {
    rows: Peekable<I>,
    limit: usize,
}

impl<I: Iterator<Item = WireRow>> Batches<I> {
    pub fn new(rows: I, limit: usize) -> Batches<I> {
        Batches {
            rows: rows.peekable(),
            limit: limit.max(1),
        }
    }
}

impl<I: Iterator<Item = WireRow>> Iterator for Batches<I> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let first = self.rows.next()?;
        let mut bytes = first.data_bytes();
        let mut rows = vec![first];
        while let Some(next) = self.rows.peek() {
            let size = next.data_bytes();
            if bytes + size > self.limit {
                break;
            }
            bytes += size;
            if let Some(row) = self.rows.next() {
                rows.push(row);
            }
        }
        Some(Batch {
            rows,
            bytes,
            last: self.rows.peek().is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: i32, text_len: usize) -> WireRow {
        WireRow::from_values(
            Operation::Insert,
            vec![Value::Int(key), Value::Text("x".repeat(text_len))],
        )
    }

    #[test]
    fn batches_stay_under_the_limit_and_keep_every_row_in_order() {
        // Each row: "[I:k]" (5 bytes for one digit) + 95 bytes = 100 bytes.
        let rows: Vec<WireRow> = (1..=9).map(|k| row(k, 95)).collect();
        assert!(rows.iter().all(|r| r.data_bytes() == 100));
        let batches: Vec<Batch> = Batches::new(rows.clone().into_iter(), 250).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.rows.len()).collect();
        assert_eq!(sizes, [2, 2, 2, 2, 1]);
        assert!(batches.iter().all(|b| b.bytes <= 250));
        let lasts: Vec<bool> = batches.iter().map(|b| b.last).collect();
        assert_eq!(lasts, [false, false, false, false, true]);
        let flattened: Vec<WireRow> = batches.into_iter().flat_map(|b| b.rows).collect();
        assert_eq!(flattened, rows);
    }

    #[test]
    fn an_exact_fit_fills_a_batch_and_a_big_row_travels_alone() {
        let rows = vec![row(1, 95), row(2, 95), row(3, 10_000), row(4, 95)];
        let batches: Vec<Batch> = Batches::new(rows.into_iter(), 200).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.rows.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
        assert_eq!(batches[0].bytes, 200);
        assert_eq!(batches[1].bytes, 10_005);
    }

    #[test]
    fn no_rows_no_batches_and_one_row_is_one_final_batch() {
        assert_eq!(Batches::new(std::iter::empty(), 100).count(), 0);
        let only: Vec<Batch> = Batches::new(std::iter::once(row(1, 1)), 100).collect();
        assert_eq!(only.len(), 1);
        assert!(only[0].last);
    }

    #[test]
    fn nulls_count_and_the_default_size_gives_about_a_megabyte() {
        let nulls = WireRow::from_values(Operation::Insert, vec![Value::Int(1), Value::Null]);
        assert_eq!(nulls.data_bytes(), 6);
        let rows = (1..=30_000).map(|k| row(k, 95));
        let batches: Vec<Batch> = Batches::new(rows, DEFAULT_BATCH_BYTES).collect();
        assert!(batches.len() >= 3);
        for b in &batches[..batches.len() - 1] {
            assert!(b.bytes <= DEFAULT_BATCH_BYTES && b.bytes > DEFAULT_BATCH_BYTES - 110);
        }
    }

    #[test]
    fn deletes_carry_the_key_and_optionally_nulls() {
        let d = WireRow::delete(42, 3, DeleteShape::KeyAndNulls);
        assert_eq!(d.values, [Some("[I:42]".to_owned()), None, None]);
        assert_eq!(d.op, Operation::Delete);
        let d = WireRow::delete(42, 3, DeleteShape::KeyOnly);
        assert_eq!(d.values, [Some("[I:42]".to_owned())]);
        let raw = d.into_raw();
        assert_eq!(raw.operation, "D");
    }
}
