//! Property tests of the three codecs' round trips, over everything the protocol can carry:
//!
//! - SOAP: any request of the five operations, rendered as SuperOffice sends it, parses back to
//!   itself (strings of XML 1.0 characters; the token without surrounding white space, since the
//!   header is trimmed).
//! - Values: each typed value, encoded the way SuperOffice wraps it, decodes back to itself by its
//!   column's type (binary values are non-empty: an empty non-text value means NULL).
//! - Queue messages: any envelope survives MessagePack unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use mirror_common::schema::{
    Column, ColumnType, DefaultValue, RawColumn, RawTableSchema, TableSchema,
};
use mirror_common::soap::{
    Limits, RawRow, RawRowBatch, Request, RequestBody, parse_request, render_request,
};
use mirror_common::value::{self, Value};
use mirror_common::wire::{
    self, Envelope, Message, Operation, ReplicationSummary, Row, RowBatch, SchemaReply, TableLsn,
};
use proptest::prelude::*;

/// Any string of XML 1.0 characters, biased towards what needs escaping or normalising.
fn xml_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("<&>\"']]>".to_owned()),
        Just("[I:1]".to_owned()),
        "[a-zA-Z0-9æøå€😀 \t\n]{1,8}",
        any::<char>()
            .prop_filter("XML 1.0 character", |c| {
                matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            })
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

fn raw_table() -> impl Strategy<Value = RawTableSchema> {
    let column = (xml_text(), xml_text(), any::<bool>(), xml_text()).prop_map(
        |(name, ty, nullable, default)| RawColumn {
            name,
            ty,
            nullable,
            default,
        },
    );
    (xml_text(), prop::collection::vec(column, 0..5))
        .prop_map(|(name, columns)| RawTableSchema { name, columns })
}

/// A row as operation letter and values, owned.
type OwnedRow = (String, Vec<Option<String>>);
/// A batch as table, LSN and rows, owned.
type OwnedBatch = (RawTableSchema, i64, Vec<OwnedRow>);

fn raw_batch() -> impl Strategy<Value = OwnedBatch> {
    let row = (
        xml_text(),
        prop::collection::vec(prop::option::weighted(0.8, xml_text()), 0..5),
    );
    (raw_table(), any::<i64>(), prop::collection::vec(row, 0..5))
}

fn summary() -> impl Strategy<Value = ReplicationSummary> {
    (xml_text(), any::<i32>(), any::<i32>(), any::<i32>()).prop_map(
        |(table, inserts, updates, deletes)| ReplicationSummary {
            table,
            inserts,
            updates,
            deletes,
        },
    )
}

/// The five request bodies, with owned row values (borrowed into a `RequestBody` by the test).
#[derive(Debug, Clone)]
enum Body {
    Authenticate,
    TableSchema(Vec<RawTableSchema>),
    RowData(Vec<OwnedBatch>),
    Wipe(String),
    ReplicationCompleted(Vec<ReplicationSummary>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Authenticate),
        prop::collection::vec(raw_table(), 0..4).prop_map(Body::TableSchema),
        prop::collection::vec(raw_batch(), 0..3).prop_map(Body::RowData),
        xml_text().prop_map(Body::Wipe),
        prop::collection::vec(summary(), 0..4).prop_map(Body::ReplicationCompleted),
    ]
}

fn request_body(body: &Body) -> RequestBody<'_> {
    match body {
        Body::Authenticate => RequestBody::Authenticate,
        Body::TableSchema(tables) => RequestBody::TableSchema {
            tables: tables.clone(),
        },
        Body::RowData(batches) => RequestBody::RowData {
            batches: batches
                .iter()
                .map(|(table, lsn, rows)| RawRowBatch {
                    table: table.clone(),
                    lsn: *lsn,
                    rows: rows
                        .iter()
                        .map(|(operation, values)| RawRow {
                            operation: operation.clone(),
                            values: values
                                .iter()
                                .map(|v| v.as_deref().map(Cow::Borrowed))
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        },
        Body::Wipe(table) => RequestBody::Wipe {
            table: table.clone(),
        },
        Body::ReplicationCompleted(summaries) => RequestBody::ReplicationCompleted {
            summaries: summaries.clone(),
        },
    }
}

/// A datetime SQL Server's `datetime2` can hold, at its 100 ns precision.
fn datetime() -> impl Strategy<Value = NaiveDateTime> {
    let first = NaiveDate::from_ymd_opt(1, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let last = NaiveDate::from_ymd_opt(9999, 12, 31)
        .unwrap()
        .and_hms_opt(23, 59, 59)
        .unwrap()
        .and_utc()
        .timestamp();
    (first..=last, 0..10_000_000u32).prop_map(|(secs, ticks)| {
        DateTime::from_timestamp(secs, ticks * 100)
            .unwrap()
            .naive_utc()
    })
}

/// A decimal literal in canonical form (no `+`, no leading or trailing zeros, no `-0`) that fits
/// `decimal(precision, scale)`.
fn decimal() -> impl Strategy<Value = (u8, u8, String)> {
    (1..=38u8)
        .prop_flat_map(|p| (Just(p), 0..=p))
        .prop_flat_map(|(p, s)| {
            let int = prop::collection::vec(0..10u8, 0..=usize::from(p - s));
            let frac = prop::collection::vec(0..10u8, 0..=usize::from(s));
            (Just(p), Just(s), any::<bool>(), int, frac)
        })
        .prop_map(|(p, s, negative, int, frac)| {
            let digits = |d: &[u8]| d.iter().map(|d| char::from(b'0' + d)).collect::<String>();
            let int = digits(&int).trim_start_matches('0').to_owned();
            let frac = digits(&frac).trim_end_matches('0').to_owned();
            let mut text = String::new();
            if negative && !(int.is_empty() && frac.is_empty()) {
                text.push('-');
            }
            text.push_str(if int.is_empty() { "0" } else { &int });
            if !frac.is_empty() {
                text.push('.');
                text.push_str(&frac);
            }
            (p, s, text)
        })
}

/// A typed value with a column type that holds it.
fn typed_value() -> impl Strategy<Value = (ColumnType, Value)> {
    prop_oneof![
        any::<i32>().prop_map(|v| (ColumnType::Int, Value::Int(v))),
        any::<i16>().prop_map(|v| (ColumnType::SmallInt, Value::SmallInt(v))),
        any::<u8>().prop_map(|v| (ColumnType::TinyInt, Value::TinyInt(v))),
        any::<i64>().prop_map(|v| (ColumnType::BigInt, Value::BigInt(v))),
        any::<bool>().prop_map(|v| (ColumnType::Bit, Value::Bit(v))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|v| (ColumnType::Float, Value::Float(v))),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|v| (ColumnType::Real, Value::Real(v))),
        datetime().prop_map(|v| (ColumnType::DateTime2, Value::DateTime(v))),
        datetime().prop_map(|v| (ColumnType::Date, Value::Date(v.date()))),
        any::<String>().prop_map(|v| (ColumnType::NVarChar(None), Value::Text(v))),
        prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|v| (ColumnType::VarBinary(None), Value::Binary(v))),
        any::<u128>().prop_map(|v| (
            ColumnType::UniqueIdentifier,
            Value::Uuid(uuid::Uuid::from_u128(v))
        )),
        decimal().prop_map(|(p, s, v)| (ColumnType::Decimal(p, s), Value::Decimal(v))),
    ]
}

fn column_type() -> impl Strategy<Value = ColumnType> {
    prop_oneof![
        Just(ColumnType::Int),
        Just(ColumnType::BigInt),
        Just(ColumnType::DateTime),
        Just(ColumnType::NText),
        Just(ColumnType::Image),
        Just(ColumnType::UniqueIdentifier),
        prop::option::of(1..=4000u16).prop_map(ColumnType::NVarChar),
        prop::option::of(1..=8000u16).prop_map(ColumnType::VarBinary),
        (1..=8000u16).prop_map(ColumnType::Char),
        (1..=38u8)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_map(|(p, s)| ColumnType::Decimal(p, s)),
    ]
}

fn default_value() -> impl Strategy<Value = Option<DefaultValue>> {
    prop::option::of(prop_oneof![
        Just(DefaultValue::Null),
        any::<i64>().prop_map(DefaultValue::Integer),
        any::<f64>()
            .prop_filter("comparable", |f| !f.is_nan())
            .prop_map(DefaultValue::Float),
        any::<String>().prop_map(DefaultValue::Text),
        Just(DefaultValue::CurrentTimestamp),
        Just(DefaultValue::NewId),
    ])
}

fn table_schema() -> impl Strategy<Value = TableSchema> {
    let column = (
        any::<String>(),
        column_type(),
        any::<bool>(),
        default_value(),
    )
        .prop_map(|(name, ty, nullable, default)| Column {
            name,
            ty,
            nullable,
            default,
        });
    (any::<String>(), prop::collection::vec(column, 0..4))
        .prop_map(|(name, columns)| TableSchema { name, columns })
}

fn row() -> impl Strategy<Value = Row> {
    let op = prop_oneof![
        Just(Operation::Insert),
        Just(Operation::Update),
        Just(Operation::Delete)
    ];
    let value = prop_oneof![
        1 => Just(Value::Null),
        8 => typed_value().prop_map(|(_, v)| v),
    ];
    (op, prop::collection::vec(value, 0..5)).prop_map(|(op, values)| Row { op, values })
}

fn message() -> impl Strategy<Value = Message> {
    let batch = (
        table_schema(),
        any::<i64>(),
        prop::collection::vec(row(), 0..5),
    )
        .prop_map(|(table, lsn, rows)| RowBatch { table, lsn, rows });
    prop_oneof![
        prop::collection::vec(table_schema(), 0..3)
            .prop_map(|tables| Message::TableSchema { tables }),
        prop::collection::vec(batch, 0..3).prop_map(|batches| Message::RowData { batches }),
        any::<String>().prop_map(|table| Message::Wipe { table }),
        prop::collection::vec(summary(), 0..3)
            .prop_map(|summaries| Message::ReplicationCompleted { summaries }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u128>(),
        any::<String>(),
        any::<i64>(),
        "[0-9a-f]{32}",
        message(),
    )
        .prop_map(|(id, tenant, received_at_ms, trace_id, message)| Envelope {
            id: uuid::Uuid::from_u128(id),
            tenant,
            received_at_ms,
            trace_id,
            message,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_request_round_trips_through_soap(
        token in "[A-Za-z0-9_.-]{1,64}",
        client_state in xml_text(),
        body in body(),
    ) {
        let request = Request { token, client_state, body: request_body(&body) };
        let xml = render_request(&request.token, &request);
        let parsed = parse_request(xml.as_bytes(), &Limits::default());
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, xml);
        prop_assert_eq!(parsed.unwrap(), request);
    }

    #[test]
    fn every_value_round_trips_through_its_encoding(
        (ty, value) in typed_value(),
        nullable in any::<bool>(),
    ) {
        let encoded = value.encode();
        prop_assert!(encoded.is_some());
        let decoded = value::decode(ty, nullable, encoded.as_deref());
        prop_assert_eq!(decoded, Ok(value), "{:?} as {}", encoded, ty);
    }

    #[test]
    fn null_round_trips_in_every_nullable_column((ty, _) in typed_value()) {
        prop_assert_eq!(Value::Null.encode(), None);
        prop_assert_eq!(value::decode(ty, true, None), Ok(Value::Null));
    }

    #[test]
    fn every_envelope_round_trips_through_messagepack(envelope in envelope()) {
        let bytes = wire::encode(&envelope).unwrap();
        prop_assert_eq!(wire::decode::<Envelope>(&bytes).unwrap(), envelope);
    }

    #[test]
    fn every_schema_reply_round_trips_through_messagepack(
        lsns in prop::collection::vec((any::<String>(), any::<i64>()), 0..4),
        error in prop::option::of(any::<String>()),
    ) {
        let reply = match error {
            Some(error) => SchemaReply::Failed { error },
            None => SchemaReply::Applied {
                lsns: lsns.into_iter().map(|(table, lsn)| TableLsn { table, lsn }).collect(),
            },
        };
        let bytes = wire::encode(&reply).unwrap();
        prop_assert_eq!(wire::decode::<SchemaReply>(&bytes).unwrap(), reply);
    }
}
