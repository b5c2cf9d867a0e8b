//! How fast the receiver turns a ~1 MB RowData call (SuperOffice's default batch size) into typed
//! rows: parsing alone, and parsing plus value decoding, in bytes of request body per second.
//!
//! The baseline, measured in the same run, is quick-xml's namespace-resolving event loop over the
//! same body doing nothing with the events: the least any namespace-aware parse must cost. Compare
//! the codec against it as a ratio; absolute numbers depend on the machine and its load.
//!
//! A second group decodes the body's datetime values alone, against chrono's format strings (the
//! general path the hand-written reader of SuperOffice's form stands in front of).

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mirror_common::batch::decode_batches;
use mirror_common::schema::ColumnType;
use mirror_common::schema::{RawColumn, RawTableSchema};
use mirror_common::soap::{
    Limits, RawRow, RawRowBatch, Request, RequestBody, parse_request, render_request,
};
use mirror_common::value::{self, Value};
use quick_xml::NsReader;
use quick_xml::events::Event;

const TARGET_BYTES: usize = 1_000_000;

/// The `invitation` table exactly as SuperOffice describes it.
fn invitation() -> RawTableSchema {
    let columns = [
        ("invitation_id", "int", false),
        ("event_uid", "nvarchar(255)", true),
        ("event_sequence", "int", true),
        ("event_dtstamp", "datetime", true),
        ("appointment_id", "int", true),
        ("registered", "datetime", false),
        ("registered_associate_id", "int", false),
        ("updated", "datetime", false),
        ("updated_associate_id", "int", false),
        ("updatedcount", "smallint", false),
        ("organizer_email", "nvarchar(255)", true),
        ("organizer_fullname", "nvarchar(255)", true),
        ("recurring_end_date", "datetime", true),
        ("recurring_start_date", "datetime", true),
    ];
    RawTableSchema {
        name: "invitation".into(),
        columns: columns
            .iter()
            .map(|(name, ty, nullable)| RawColumn {
                name: (*name).into(),
                ty: (*ty).into(),
                nullable: *nullable,
                default: String::new(),
            })
            .collect(),
    }
}

const NAMES: [(&str, &str); 6] = [
    ("Leon", "Nonnast"),
    ("Dennis", "Kessler"),
    ("Åse", "Øvergård"),
    ("Jürgen", "Müller"),
    ("Marie", "O'Brien"),
    ("Sam", "Smith & Sons"),
];

/// One realistic row: wrapped numbers and dates, a long hex uid, names with non-ASCII letters,
/// now and then a value that needs unescaping, and some NULLs.
fn row(i: usize) -> Vec<Option<String>> {
    let (first, last) = NAMES[i % NAMES.len()];
    let day = 1 + i % 28;
    let month = 1 + i % 12;
    let date = |h: usize| {
        format!(
            "[DT:{month:02}/{day:02}/2020 {:02}:{:02}:{:02}.0000000]",
            h % 24,
            i % 60,
            (i * 7) % 60
        )
    };
    vec![
        Some(format!("[I:{}]", i + 1)),
        Some(format!(
            "040000008200E00074C5B7101A82E00800000000{:016X}010000000000000000100000005315E9D8BC5F824BA6502093D637FCB2",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )),
        Some("[I:0]".into()),
        Some(date(10)),
        Some(format!("[I:{}]", 100 + i % 900)),
        Some(date(8)),
        Some(format!("[I:{}]", 1 + i % 40)),
        Some(date(9)),
        Some(format!("[I:{}]", 1 + i % 40)),
        Some(format!("[S:{}]", i % 5)),
        Some(format!("{first}.{last}@example.com").replace(' ', "")),
        Some(format!("{last}, {first}")),
        if i.is_multiple_of(3) {
            None
        } else {
            Some("[DT:01/01/1760 00:00:00.0000000]".into())
        },
        Some("[DT:01/01/1760 00:00:00.0000000]".into()),
    ]
}

/// Renders RowData calls with more and more rows until the body reaches ~1 MB.
fn request_body() -> Vec<u8> {
    let rows: Vec<Vec<Option<String>>> = (0..4000).map(row).collect();
    let render = |n: usize| {
        let batch = RawRowBatch {
            table: invitation(),
            lsn: 1_506_269,
            rows: rows[..n]
                .iter()
                .map(|values| RawRow {
                    operation: "I".into(),
                    values: values
                        .iter()
                        .map(|v| v.as_deref().map(Cow::Borrowed))
                        .collect(),
                })
                .collect(),
        };
        let request = Request {
            token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJDdXN0MjQ3MDkifQ.signature".into(),
            client_state: String::new(),
            body: RequestBody::RowData {
                batches: vec![batch],
            },
        };
        render_request(&request.token, &request)
    };
    let per_row = render(100).len() / 100;
    render(TARGET_BYTES / per_row).into_bytes()
}

fn bench(c: &mut Criterion) {
    let body = request_body();
    let limits = Limits::default();
    let rows = match parse_request(&body, &limits).map(|r| r.body) {
        Ok(RequestBody::RowData { batches }) => batches[0].rows.len(),
        other => panic!("the benchmark request does not parse: {other:?}"),
    };
    eprintln!("RowData request: {} bytes, {rows} rows", body.len());

    let mut group = c.benchmark_group("soap_decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("baseline_quick_xml_events", |b| {
        b.iter(|| {
            let mut reader = NsReader::from_reader(black_box(body.as_slice()));
            let mut events = 0usize;
            loop {
                match reader.read_resolved_event() {
                    Ok((_, Event::Eof)) | Err(_) => break events,
                    Ok(_) => events += 1,
                }
            }
        })
    });
    group.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(&body), &limits).map(|r| r.body.operation()))
    });
    group.bench_function("parse_request+decode_batches", |b| {
        b.iter(|| {
            let request = parse_request(black_box(&body), &limits).ok()?;
            match &request.body {
                RequestBody::RowData { batches } => decode_batches(batches).ok(),
                _ => None,
            }
        })
    });
    group.finish();
}

/// The datetime values of the benchmark's rows, as they arrive (wrapped).
fn datetime_values() -> Vec<String> {
    let dates = [3, 5, 7, 12, 13];
    (0..4000)
        .flat_map(|i| {
            let row = row(i);
            dates.map(|c| row[c].clone())
        })
        .flatten()
        .collect()
}

/// chrono's format strings in the order the codec tries them, for the baseline.
fn chrono_datetime(s: &str) -> Option<chrono::NaiveDateTime> {
    mirror_common::value::DATETIME_FORMATS
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
}

fn bench_datetimes(c: &mut Criterion) {
    let values = datetime_values();
    let inner: Vec<&str> = values
        .iter()
        .map(|v| v.trim_start_matches("[DT:").trim_end_matches(']'))
        .collect();
    let mut group = c.benchmark_group("datetime_values");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("baseline_chrono_format_strings", |b| {
        b.iter(|| {
            inner
                .iter()
                .filter(|v| chrono_datetime(black_box(v)).is_some())
                .count()
        })
    });
    group.bench_function("value_decode", |b| {
        b.iter(|| {
            values
                .iter()
                .filter(|v| {
                    matches!(
                        value::decode(ColumnType::DateTime, true, Some(black_box(v))),
                        Ok(Value::DateTime(_))
                    )
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_datetimes);
criterion_main!(benches);
