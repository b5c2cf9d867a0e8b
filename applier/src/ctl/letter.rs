//! A dead letter as an operator sees it: the AMQP properties and the headers the worker added
//! (see `crate::dead_letter`), and a summary of the envelope in its body.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use mirror_common::topology::{Topology, header};
use mirror_common::wire::{self, Envelope, Message};
use serde::Serialize;

/// Headers the broker adds when it dead-letters or returns a message; they are not part of the
/// message as the receiver published it, so a replay leaves them out.
const BROKER_HEADERS: [&str; 2] = ["x-death", "x-delivery-count"];
/// Prefix of the other headers the broker adds when it dead-letters (`x-first-death-queue` …).
const BROKER_HEADER_PREFIXES: [&str; 2] = ["x-first-death-", "x-last-death-"];
/// The headers the worker adds to a dead letter.
const DEAD_LETTER_HEADERS: [&str; 5] = [
    header::REASON,
    header::ATTEMPTS,
    header::TABLE,
    header::EPOCH,
    header::PARTITION,
];

/// What the dead-letter headers and properties say about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Letter {
    /// The AMQP message id (the envelope id); empty when the message has none.
    pub id: String,
    pub tenant: Option<String>,
    /// The message kind (`RowData`, `Wipe` …), from the AMQP `type`.
    pub kind: Option<String>,
    pub table: Option<String>,
    /// The table's epoch when the message failed.
    pub epoch: Option<i64>,
    pub reason: Option<String>,
    pub attempts: Option<i64>,
    /// The partition the message came from: the header, else the tenant's partition.
    pub partition: Option<u16>,
    /// When the receiver accepted the call.
    pub time: Option<DateTime<Utc>>,
}

impl Letter {
    /// Reads a dead letter's properties; `topology` supplies the tenant's partition when the
    /// header is missing (a message the broker dead-lettered itself).
    pub fn from_properties(properties: &BasicProperties, topology: &Topology) -> Letter {
        let headers = properties.headers().as_ref();
        let tenant = text(headers, header::TENANT);
        let partition = int(headers, header::PARTITION)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p < topology.partitions)
            .or_else(|| tenant.as_deref().map(|t| topology.partition_of(t)));
        Letter {
            id: properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            tenant,
            kind: properties.kind().as_ref().map(|k| k.as_str().to_owned()),
            table: text(headers, header::TABLE),
            epoch: int(headers, header::EPOCH),
            reason: text(headers, header::REASON),
            attempts: int(headers, header::ATTEMPTS),
            partition,
            time: properties
                .timestamp()
                .and_then(|t| i64::try_from(t).ok())
                .and_then(|t| DateTime::from_timestamp(t, 0)),
        }
    }
}

/// The properties to republish a dead letter with: the original ones, without the headers the
/// worker and the broker added on its way into the dead-letter queue.
pub fn original_properties(properties: &BasicProperties) -> BasicProperties {
    let kept: FieldTable = properties
        .headers()
        .iter()
        .flat_map(|h| h.inner().iter())
        .filter(|(key, _)| !is_added_header(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect::<std::collections::BTreeMap<ShortString, AMQPValue>>()
        .into();
    properties.clone().with_headers(kept)
}

fn is_added_header(key: &ShortString) -> bool {
    let key = key.as_str();
    DEAD_LETTER_HEADERS.contains(&key)
        || BROKER_HEADERS.contains(&key)
        || BROKER_HEADER_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Every header of a message, rendered for reading.
pub fn headers(properties: &BasicProperties) -> Vec<(String, String)> {
    properties
        .headers()
        .iter()
        .flat_map(|h| h.inner().iter())
        .map(|(key, value)| (key.as_str().to_owned(), render(value)))
        .collect()
}

/// A header value as text: strings as they are, numbers in decimal, anything else debug-printed.
fn render(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => match as_int(other) {
            Some(n) => n.to_string(),
            None => format!("{other:?}"),
        },
    }
}

fn text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn int(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    as_int(headers?.inner().get(name)?)
}

fn as_int(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// What a dead letter's body holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodySummary {
    pub envelope_id: String,
    pub tenant: String,
    pub kind: String,
    pub trace_id: String,
    pub received_at_ms: i64,
    /// Per table: name and rows (row batches), or the table a Wipe concerns (0 rows).
    pub tables: Vec<TableRows>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: usize,
    pub lsn: Option<i64>,
}

/// Decodes a dead letter's body; a body that is not an envelope is described by the error.
pub fn summarize(body: &[u8]) -> Result<BodySummary, wire::WireError> {
    let envelope: Envelope = wire::decode(body)?;
    let tables = match &envelope.message {
        Message::RowData { batches } => batches
            .iter()
            .map(|b| TableRows {
                table: b.table.name.clone(),
                rows: b.rows.len(),
                lsn: Some(b.lsn),
            })
            .collect(),
        Message::Wipe { table } => vec![TableRows {
            table: table.clone(),
            rows: 0,
            lsn: None,
        }],
        Message::TableSchema { tables } => tables
            .iter()
            .map(|t| TableRows {
                table: t.name.clone(),
                rows: 0,
                lsn: None,
            })
            .collect(),
        Message::ReplicationCompleted { summaries } => summaries
            .iter()
            .map(|s| TableRows {
                table: s.table.clone(),
                rows: 0,
                lsn: None,
            })
            .collect(),
    };
    Ok(BodySummary {
        envelope_id: envelope.id.to_string(),
        tenant: envelope.tenant,
        kind: envelope.message.kind().as_str().to_owned(),
        trace_id: envelope.trace_id,
        received_at_ms: envelope.received_at_ms,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::LongString;
    use mirror_common::config::AmqpSettings;

    fn topology() -> Topology {
        Topology::new(&AmqpSettings {
            partitions: 4,
            ..AmqpSettings::default()
        })
    }

    fn properties(pairs: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (key, value) in pairs {
            headers.insert((*key).into(), value.clone());
        }
        BasicProperties::default()
            .with_message_id("0193-id".into())
            .with_type("RowData".into())
            .with_timestamp(1_700_000_000)
            .with_headers(headers)
    }

    fn long(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s))
    }

    #[test]
    fn reads_the_dead_letter_headers() {
        let props = properties(&[
            (header::TENANT, long("Cust1")),
            (header::TABLE, long("contact")),
            (header::EPOCH, AMQPValue::LongLongInt(3)),
            (header::REASON, long("check violation")),
            (header::ATTEMPTS, AMQPValue::LongInt(2)),
            (header::PARTITION, AMQPValue::LongLongInt(1)),
        ]);
        let letter = Letter::from_properties(&props, &topology());
        assert_eq!(
            letter,
            Letter {
                id: "0193-id".into(),
                tenant: Some("Cust1".into()),
                kind: Some("RowData".into()),
                table: Some("contact".into()),
                epoch: Some(3),
                reason: Some("check violation".into()),
                attempts: Some(2),
                partition: Some(1),
                time: DateTime::from_timestamp(1_700_000_000, 0),
            }
        );
    }

    #[test]
    fn a_missing_or_impossible_partition_falls_back_to_the_tenants() {
        let t = topology();
        let expected = Some(t.partition_of("Cust1"));
        let missing = properties(&[(header::TENANT, long("Cust1"))]);
        assert_eq!(Letter::from_properties(&missing, &t).partition, expected);
        let impossible = properties(&[
            (header::TENANT, long("Cust1")),
            (header::PARTITION, AMQPValue::LongLongInt(99)),
        ]);
        assert_eq!(Letter::from_properties(&impossible, &t).partition, expected);
        let nothing = BasicProperties::default();
        let letter = Letter::from_properties(&nothing, &t);
        assert_eq!((letter.id.as_str(), letter.partition), ("", None));
    }

    #[test]
    fn the_original_properties_lose_only_the_added_headers() {
        let props = properties(&[
            (header::TENANT, long("Cust1")),
            (header::TRACE_ID, long("abc")),
            (header::REASON, long("bad")),
            (header::PARTITION, AMQPValue::LongLongInt(1)),
            ("x-delivery-count", AMQPValue::LongLongInt(1)),
            ("x-first-death-queue", long("mirror.p01")),
        ]);
        let original = original_properties(&props);
        let names: Vec<String> = headers(&original).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, vec![header::TENANT, header::TRACE_ID]);
        assert_eq!(original.message_id(), props.message_id());
        assert_eq!(original.kind(), props.kind());
        assert_eq!(original.timestamp(), props.timestamp());
    }

    #[test]
    fn summarizes_an_envelope_and_refuses_garbage() {
        let envelope = Envelope {
            id: uuid::Uuid::nil(),
            tenant: "Cust1".into(),
            received_at_ms: 1,
            trace_id: "t".into(),
            message: Message::Wipe {
                table: "contact".into(),
            },
        };
        let summary = summarize(&wire::encode(&envelope).unwrap()).unwrap();
        assert_eq!(summary.kind, "Wipe");
        assert_eq!(
            summary.tables,
            vec![TableRows {
                table: "contact".into(),
                rows: 0,
                lsn: None
            }]
        );
        assert!(summarize(b"\xc1garbage").is_err());
    }
}
