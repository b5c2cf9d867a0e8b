//! Turning parsed `RowDataBatch`es into typed queue batches: each batch's own `TableInfo` is
//! validated, and every value is decoded by its column's declared type.
//!
//! This runs in the receiver before anything is published, so a value that does not fit its
//! column is refused with a precise message while SuperOffice is still on the line, instead of
//! failing later in a worker.

use std::fmt;

use crate::schema::{ColumnType, SchemaError, TableSchema};
use crate::soap::RawRowBatch;
use crate::value::{self, ValueError};
use crate::wire::{Operation, Row, RowBatch};

/// Which batch of a call an error is in. Shown only when the call had several batches, so the
/// common single-batch message stays short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIndex(pub Option<usize>);

impl fmt::Display for BatchIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, "batch {i}, "),
            None => Ok(()),
        }
    }
}

/// Why a batch cannot be decoded. Row indexes are 0-based within their batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("{batch}{error}")]
    Schema {
        batch: BatchIndex,
        error: SchemaError,
    },
    #[error("{batch}table {table}, row {row}: unknown operation {operation:?}")]
    UnknownOperation {
        batch: BatchIndex,
        table: String,
        row: usize,
        operation: String,
    },
    #[error("{batch}table {table}, row {row}: {values} values for {columns} columns")]
    ValueCount {
        batch: BatchIndex,
        table: String,
        row: usize,
        values: usize,
        columns: usize,
    },
    #[error("{batch}table {table}, row {row}: a delete without a key value")]
    MissingKey {
        batch: BatchIndex,
        table: String,
        row: usize,
    },
    #[error("{batch}table {table}, row {row}, column {column} ({ty}): {error}")]
    Value {
        batch: BatchIndex,
        table: String,
        row: usize,
        column: String,
        ty: ColumnType,
        error: ValueError,
    },
}

/// Validates and decodes every batch of a RowData call.
///
/// An `I` or `U` row must carry exactly one value per column. A `D` row needs only its key: what
/// else SuperOffice sends with a delete is undocumented, so only column 0 is decoded and kept.
pub fn decode_batches(raw: &[RawRowBatch<'_>]) -> Result<Vec<RowBatch>, BatchError> {
    let several = raw.len() > 1;
    raw.iter()
        .enumerate()
        .map(|(i, batch)| decode_batch(BatchIndex(several.then_some(i)), batch))
        .collect()
}

fn decode_batch(at: BatchIndex, raw: &RawRowBatch<'_>) -> Result<RowBatch, BatchError> {
    let table = raw
        .table
        .validate()
        .map_err(|error| BatchError::Schema { batch: at, error })?;
    let mut rows = Vec::with_capacity(raw.rows.len());
    for (index, row) in raw.rows.iter().enumerate() {
        rows.push(decode_row(at, &table, index, &row.operation, &row.values)?);
    }
    Ok(RowBatch {
        table,
        lsn: raw.lsn,
        rows,
    })
}

fn decode_row(
    at: BatchIndex,
    table: &TableSchema,
    row: usize,
    operation: &str,
    values: &[Option<std::borrow::Cow<'_, str>>],
) -> Result<Row, BatchError> {
    let op = Operation::parse(operation).ok_or_else(|| BatchError::UnknownOperation {
        batch: at,
        table: table.name.clone(),
        row,
        operation: operation.to_owned(),
    })?;
    let columns = match op {
        Operation::Insert | Operation::Update => {
            if values.len() != table.columns.len() {
                return Err(BatchError::ValueCount {
                    batch: at,
                    table: table.name.clone(),
                    row,
                    values: values.len(),
                    columns: table.columns.len(),
                });
            }
            values.len()
        }
        Operation::Delete => {
            if values.is_empty() {
                return Err(BatchError::MissingKey {
                    batch: at,
                    table: table.name.clone(),
                    row,
                });
            }
            1
        }
    };
    // Sized up front: collecting through `Result` would grow the vector several times per row.
    let mut decoded = Vec::with_capacity(columns);
    for (column, raw) in table.columns.iter().zip(values).take(columns) {
        let value = value::decode(column.ty, column.nullable, raw.as_deref()).map_err(|error| {
            BatchError::Value {
                batch: at,
                table: table.name.clone(),
                row,
                column: column.name.clone(),
                ty: column.ty,
                error,
            }
        })?;
        decoded.push(value);
    }
    Ok(Row {
        op,
        values: decoded,
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::schema::{RawColumn, RawTableSchema};
    use crate::soap::RawRow;
    use crate::value::Value;

    fn table(name: &str, columns: &[(&str, &str, bool)]) -> RawTableSchema {
        RawTableSchema {
            name: name.into(),
            columns: columns
                .iter()
                .map(|(n, t, null)| RawColumn {
                    name: (*n).into(),
                    ty: (*t).into(),
                    nullable: *null,
                    default: String::new(),
                })
                .collect(),
        }
    }

    fn row<'a>(op: &str, values: &[Option<&'a str>]) -> RawRow<'a> {
        RawRow {
            operation: op.into(),
            values: values.iter().map(|v| v.map(Cow::Borrowed)).collect(),
        }
    }

    fn batch<'a>(rows: Vec<RawRow<'a>>) -> RawRowBatch<'a> {
        RawRowBatch {
            table: table(
                "t",
                &[
                    ("t_id", "int", false),
                    ("name", "nvarchar(5)", true),
                    ("updated", "datetime", false),
                ],
            ),
            lsn: 7,
            rows,
        }
    }

    #[test]
    fn decodes_inserts_updates_and_deletes() {
        let decoded = decode_batches(&[batch(vec![
            row(
                "I",
                &[
                    Some("[I:1]"),
                    None,
                    Some("[DT:01/02/2021 03:04:05.0000000]"),
                ],
            ),
            row(
                "U",
                &[
                    Some("[I:2]"),
                    Some(" x "),
                    Some("[DT:01/01/1760 00:00:00.0000000]"),
                ],
            ),
            row("D", &[Some("[I:3]"), Some("ignored"), Some("not a date")]),
        ])])
        .unwrap();
        assert_eq!(decoded.len(), 1);
        let b = &decoded[0];
        assert_eq!((b.table.name.as_str(), b.lsn, b.rows.len()), ("t", 7, 3));
        assert_eq!(b.rows[0].op, Operation::Insert);
        assert_eq!(b.rows[0].values[..2], [Value::Int(1), Value::Null]);
        assert_eq!(b.rows[1].op, Operation::Update);
        assert_eq!(b.rows[1].values[1], Value::Text(" x ".into()));
        assert_eq!(b.rows[2].op, Operation::Delete);
        assert_eq!(b.rows[2].values, vec![Value::Int(3)]);
    }

    #[test]
    fn errors_name_table_row_and_column() {
        let err = decode_batches(&[batch(vec![
            row(
                "I",
                &[
                    Some("[I:1]"),
                    None,
                    Some("[DT:01/02/2021 03:04:05.0000000]"),
                ],
            ),
            row("I", &[Some("[I:2]"), None, Some("[DT:x]")]),
        ])])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table t, row 1, column updated (datetime): \"[DT:x]\" is not a valid datetime value"
        );
        let err = decode_batches(&[batch(vec![row("I", &[Some("[I:1]"), None])])]).unwrap_err();
        assert_eq!(err.to_string(), "table t, row 0: 2 values for 3 columns");
        let err = decode_batches(&[batch(vec![row("X", &[])])]).unwrap_err();
        assert_eq!(err.to_string(), "table t, row 0: unknown operation \"X\"");
        let err = decode_batches(&[batch(vec![row("D", &[])])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table t, row 0: a delete without a key value"
        );
        let err = decode_batches(&[batch(vec![row("D", &[None])])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table t, row 0, column t_id (int): NULL in a non-nullable int column"
        );
    }

    #[test]
    fn batch_index_appears_when_there_are_several() {
        let good = batch(vec![row("I", &[Some("1"), None, Some("01/01/2020")])]);
        let bad = batch(vec![row(
            "I",
            &[Some("1"), Some("toolong"), Some("01/01/2020")],
        )]);
        let err = decode_batches(&[good, bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch 1, table t, row 0, column name (nvarchar(5)): text of 7 characters is longer than nvarchar(5) allows"
        );
    }

    #[test]
    fn invalid_table_info_is_refused() {
        let mut b = batch(vec![]);
        b.table.columns[2].ty = "xml".into();
        let err = decode_batches(&[b]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table t: column updated: unsupported column type \"xml\""
        );
        let mut b = batch(vec![]);
        b.table.name = "t; drop".into();
        assert!(matches!(
            decode_batches(&[b]),
            Err(BatchError::Schema {
                error: SchemaError::UnsafeIdentifier(_),
                ..
            })
        ));
    }

    #[test]
    fn empty_call_and_empty_batch_are_fine() {
        assert_eq!(decode_batches(&[]).unwrap(), vec![]);
        assert!(decode_batches(&[batch(vec![])]).unwrap()[0].rows.is_empty());
    }
}
