//! The messages that travel through RabbitMQ, encoded as MessagePack (rmp-serde).
//!
//! The receiver validates and decodes everything before it publishes, so a message on the queue is
//! always well-formed: the applier never sees XML or unknown types.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::TableSchema;
use crate::value::Value;

/// One queued message: a tenant's call, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per accepted call; the applier records it to make redeliveries harmless.
    pub id: Uuid,
    /// The tenant's context id, from the verified token.
    pub tenant: String,
    /// When the receiver accepted the call, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// Trace id of the HTTP call, carried into the applier's spans.
    pub trace_id: String,
    pub message: Message,
}

/// What the call asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// The full schema of every mirrored table; answered through a reply queue.
    TableSchema {
        tables: Vec<TableSchema>,
    },
    RowData {
        batches: Vec<RowBatch>,
    },
    Wipe {
        table: String,
    },
    ReplicationCompleted {
        summaries: Vec<ReplicationSummary>,
    },
}

/// The kind of a message, for headers, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    TableSchema,
    RowData,
    Wipe,
    ReplicationCompleted,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TableSchema => "TableSchema",
            Kind::RowData => "RowData",
            Kind::Wipe => "Wipe",
            Kind::ReplicationCompleted => "ReplicationCompleted",
        }
    }
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::TableSchema { .. } => Kind::TableSchema,
            Message::RowData { .. } => Kind::RowData,
            Message::Wipe { .. } => Kind::Wipe,
            Message::ReplicationCompleted { .. } => Kind::ReplicationCompleted,
        }
    }
}

/// Rows of one table, with the schema they were sent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowBatch {
    pub table: TableSchema,
    /// Change-tracking version; meaningful only on a table's final batch of a cycle.
    pub lsn: i64,
    pub rows: Vec<Row>,
}

/// One changed row: its final state (or only its key, for a delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub op: Operation,
    /// Positional, in the batch's column order. For a delete only `values[0]` (the key) matters.
    pub values: Vec<Value>,
}

/// SQL Server change-tracking operation letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    /// `I`, `U` or `D` (case-insensitive, surrounding white space ignored).
    pub fn parse(raw: &str) -> Option<Operation> {
        match raw.trim() {
            "I" | "i" => Some(Operation::Insert),
            "U" | "u" => Some(Operation::Update),
            "D" | "d" => Some(Operation::Delete),
            _ => None,
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Operation::Insert => "I",
            Operation::Update => "U",
            Operation::Delete => "D",
        }
    }
}

/// Per-table counts of a completed cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationSummary {
    pub table: String,
    pub inserts: i32,
    pub updates: i32,
    pub deletes: i32,
}

/// The LSN the mirror holds for one table (`-1`: send everything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableLsn {
    pub table: String,
    pub lsn: i64,
}

/// The applier's answer to a TableSchema message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaReply {
    Applied { lsns: Vec<TableLsn> },
    Failed { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("cannot decode message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// Encodes any wire type as MessagePack with named fields (robust to added optional fields).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

/// Decodes any wire type from MessagePack.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, ColumnType};

    /// A RowData message as the previous release queued it (values externally tagged).
    #[test]
    fn a_message_queued_by_the_previous_release_decodes() {
        let bytes = include_bytes!("../../testdata/wire/rowdata-tagged.msgpack");
        let envelope: Envelope = decode(bytes).unwrap();
        let Message::RowData { batches } = &envelope.message else {
            panic!("not RowData: {envelope:?}");
        };
        let values: Vec<&Value> = batches
            .iter()
            .flat_map(|b| &b.rows)
            .flat_map(|r| &r.values)
            .collect();
        assert!(!values.is_empty());
        let again: Envelope = decode(&encode(&envelope).unwrap()).unwrap();
        assert_eq!(again, envelope);
        assert!(encode(&envelope).unwrap().len() < bytes.len());
    }

    #[test]
    fn envelope_round_trips() {
        let env = Envelope {
            id: Uuid::now_v7(),
            tenant: "Cust24709".into(),
            received_at_ms: 1_631_791_281_000,
            trace_id: "8e7c226a62b25848aa9e99baaf7dde5c".into(),
            message: Message::RowData {
                batches: vec![RowBatch {
                    table: TableSchema {
                        name: "invitation".into(),
                        columns: vec![Column {
                            name: "invitation_id".into(),
                            ty: ColumnType::Int,
                            nullable: false,
                            default: None,
                        }],
                    },
                    lsn: 1_506_269,
                    rows: vec![Row {
                        op: Operation::Insert,
                        values: vec![Value::Int(1)],
                    }],
                }],
            },
        };
        let bytes = encode(&env).unwrap();
        assert_eq!(decode::<Envelope>(&bytes).unwrap(), env);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode::<Envelope>(b"\xc1\xff\x00garbage").is_err());
        assert!(decode::<Envelope>(&[]).is_err());
    }
}
