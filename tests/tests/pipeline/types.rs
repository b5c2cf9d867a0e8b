//! Every SuperOffice column type round-trips exactly, from a RowData call to PostgreSQL.

use chrono::{NaiveDate, NaiveDateTime};
use mirror_common::soap::RawRow;
use mirror_tests::Pipeline;
use mirror_tests::values::{batch, binary, datetime, float, int, row, smallint, table};

const TABLE: &str = "y_all_types";

/// One row as the test means it; `None` is NULL.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    key: i32,
    int: Option<i32>,
    small: Option<i16>,
    when: Option<NaiveDateTime>,
    /// Compared bit for bit (so -0.0 and 0.0 differ).
    float: Option<u64>,
    short: Option<String>,
    astral: Option<String>,
    long: Option<String>,
    legacy: Option<String>,
    label: Option<String>,
    blob: Option<Vec<u8>>,
}

fn schema() -> mirror_common::schema::RawTableSchema {
    table(
        TABLE,
        &[
            ("y_all_types_id", "int", false),
            ("x_int", "int", true),
            ("x_small", "smallint", true),
            ("x_when", "datetime", true),
            ("x_float", "float", true),
            ("x_short", "nvarchar(10)", true),
            ("x_astral", "nvarchar(4)", true),
            ("x_long", "nvarchar(max)", true),
            ("x_legacy", "ntext", true),
            ("x_label", "nvarchar(20)", true),
            ("x_blob", "varbinary(max)", true),
        ],
    )
}

fn date(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32, micros: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_micro_opt(h, min, s, micros)
        .unwrap()
}

/// Deterministic bytes covering every value.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// Long text with markup, quotes, line ends, tabs, non-Latin scripts and astral characters,
/// starting and ending with white space (which must not be trimmed).
fn long_text() -> String {
    let piece = "  <tag attr=\"v\">&amp; 'q'</tag>\r\n\tÆøå Ђ 漢字 עברית العربية 😀𝄞🀄 [I:1] ]]> ";
    let mut text = String::new();
    while text.chars().count() < 100_000 {
        text.push_str(piece);
    }
    text.push_str(" \n");
    text
}

fn cases() -> Vec<Expected> {
    let full = |key| Expected {
        key,
        int: None,
        small: None,
        when: None,
        float: None,
        short: None,
        astral: None,
        long: None,
        legacy: None,
        label: None,
        blob: None,
    };
    vec![
        Expected {
            int: Some(i32::MAX),
            small: Some(i16::MAX),
            // SQL Server's largest datetime.
            when: Some(date(9999, 12, 31, 23, 59, 59, 997_000)),
            float: Some(f64::MAX.to_bits()),
            // nvarchar(10) at its limit, with characters XML must escape.
            short: Some("Æ<&>\"'漢€ø ".into()),
            // nvarchar(4) at its limit: two astral characters are four UTF-16 units.
            astral: Some("😀𝄞".into()),
            long: Some(long_text()),
            legacy: Some("ntext\r\nkept as text".into()),
            label: Some("plain".into()),
            blob: Some((0..=255).collect()),
            ..full(1)
        },
        Expected {
            int: Some(i32::MIN),
            small: Some(i16::MIN),
            // SQL Server's smallest datetime.
            when: Some(date(1753, 1, 1, 0, 0, 0, 0)),
            float: Some(f64::MIN.to_bits()),
            short: Some("0123456789".into()),
            astral: Some("a🀄b".into()),
            long: Some("x".into()),
            legacy: Some(String::new()),
            label: Some("[I:1]".into()),
            blob: Some(bytes(100_000, 7)),
            ..full(i32::MIN)
        },
        Expected {
            int: Some(0),
            small: Some(0),
            // SuperOffice's "empty date".
            when: Some(date(1760, 1, 1, 0, 0, 0, 0)),
            // The smallest subnormal.
            float: Some(5e-324f64.to_bits()),
            // Empty strings, which are not NULL.
            short: Some(String::new()),
            astral: Some(String::new()),
            long: Some(String::new()),
            legacy: Some(String::new()),
            label: Some("   ".into()),
            blob: Some(vec![0]),
            ..full(0)
        },
        Expected {
            int: Some(-1),
            small: Some(-1),
            when: Some(date(2020, 5, 18, 10, 40, 43, 123_456)),
            float: Some((-0.0f64).to_bits()),
            label: Some("[DT:01/01/1760]".into()),
            ..full(3)
        },
        Expected {
            when: Some(date(2024, 2, 29, 23, 59, 59, 0)),
            float: Some(f64::MIN_POSITIVE.to_bits()),
            ..full(4)
        },
        Expected {
            float: Some(0.1f64.to_bits()),
            ..full(5)
        },
        Expected {
            float: Some((-1.234_567_890_123_456_7e-300f64).to_bits()),
            ..full(6)
        },
        // Everything NULL but the key.
        full(i32::MAX),
    ]
}

fn wire_row(e: &Expected) -> RawRow<'static> {
    row(
        "I",
        vec![
            Some(int(e.key)),
            e.int.map(int),
            e.small.map(smallint),
            e.when.map(datetime),
            e.float.map(|bits| float(f64::from_bits(bits))),
            e.short.clone(),
            e.astral.clone(),
            e.long.clone(),
            e.legacy.clone(),
            e.label.clone(),
            e.blob.as_deref().map(binary),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_exactly_from_soap_to_postgres() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let schema = schema();
    let cases = cases();

    assert_eq!(
        tenant.table_schema(std::slice::from_ref(&schema)).await,
        [(TABLE.to_owned(), -1)].into()
    );
    tenant.wipe(TABLE).await;
    // Two calls, as a table of several batches arrives: only the final one carries the LSN.
    let (first, second) = cases.split_at(3);
    tenant
        .row_data(vec![batch(
            &schema,
            0,
            first.iter().map(wire_row).collect(),
        )])
        .await;
    tenant
        .row_data(vec![batch(
            &schema,
            4711,
            second.iter().map(wire_row).collect(),
        )])
        .await;
    tenant.completed(&[TABLE]).await;
    // TableSchema is answered after everything before it was applied.
    assert_eq!(
        tenant.table_schema(std::slice::from_ref(&schema)).await,
        [(TABLE.to_owned(), 4711)].into()
    );

    let mirror = tenant.mirror().await;
    let types: Vec<(String, String, bool)> = mirror.columns(TABLE).await;
    let expected_types = [
        ("y_all_types_id", "integer", false),
        ("x_int", "integer", true),
        ("x_small", "smallint", true),
        ("x_when", "timestamp without time zone", true),
        ("x_float", "double precision", true),
        ("x_short", "character varying(10)", true),
        ("x_astral", "character varying(4)", true),
        ("x_long", "text", true),
        ("x_legacy", "text", true),
        ("x_label", "character varying(20)", true),
        ("x_blob", "bytea", true),
    ];
    assert_eq!(
        types,
        expected_types
            .iter()
            .map(|(n, t, null)| ((*n).to_owned(), (*t).to_owned(), *null))
            .collect::<Vec<_>>()
    );

    let sql = format!(
        "SELECT y_all_types_id, x_int, x_small, x_when, x_float, x_short, x_astral, x_long, \
                x_legacy, x_label, x_blob FROM {} ORDER BY 1",
        mirror.qualified(TABLE)
    );
    let found: Vec<Expected> = mirror
        .query(&sql)
        .await
        .iter()
        .map(|r| Expected {
            key: r.get(0),
            int: r.get(1),
            small: r.get(2),
            when: r.get(3),
            float: r.get::<_, Option<f64>>(4).map(f64::to_bits),
            short: r.get(5),
            astral: r.get(6),
            long: r.get(7),
            legacy: r.get(8),
            label: r.get(9),
            blob: r.get(10),
        })
        .collect();
    let mut expected = cases.clone();
    expected.sort_by_key(|e| e.key);
    assert_eq!(found.len(), expected.len());
    for (found, expected) in found.iter().zip(&expected) {
        assert_eq!(found, expected, "row {}", expected.key);
    }
    pipeline.stop().await;
}
