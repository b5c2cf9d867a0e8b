//! Every SuperOffice type survives the trip into PostgreSQL exactly, through both load paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use chrono::{NaiveDate, NaiveDateTime};
use engine_support::*;
use mirror_common::schema::{ColumnType, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{Operation, Row};
use uuid::Uuid;

fn all_types() -> TableSchema {
    table(
        "typed",
        &[
            ("typed_id", "int", false, ""),
            ("si", "smallint", true, ""),
            ("ti", "tinyint", true, ""),
            ("bi", "bigint", true, ""),
            ("bt", "bit", true, ""),
            ("f", "float", true, ""),
            ("r", "real", true, ""),
            ("dt", "datetime", true, "default (N'1760-01-01 00:00:00')"),
            ("dt2", "datetime2", true, ""),
            ("d", "date", true, ""),
            ("nv", "nvarchar(10)", true, "default (N'')"),
            ("nvm", "nvarchar(max)", true, ""),
            ("nt", "ntext", true, ""),
            ("vb", "varbinary(max)", true, ""),
            ("u", "uniqueidentifier", true, ""),
            ("dec", "decimal(18,4)", true, ""),
        ],
    )
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn rows() -> Vec<Vec<Value>> {
    let mut nulls = vec![Value::Int(1)];
    nulls.extend(std::iter::repeat_n(Value::Null, 15));
    let typical = vec![
        Value::Int(2),
        Value::SmallInt(-32768),
        Value::TinyInt(255),
        Value::BigInt(i64::MIN),
        Value::Bit(true),
        Value::Float(f64::MAX),
        Value::Real(f32::MAX),
        Value::DateTime(dt("1760-01-01 00:00:00")),
        Value::DateTime(dt("9999-12-31 23:59:59.999999")),
        Value::Date(NaiveDate::from_ymd_opt(1760, 1, 1).unwrap()),
        Value::Text(String::new()),
        Value::Text("Ærøskøbing 😀 — 中文 'quoted' \"double\" \\ back".into()),
        Value::Text("[I:1]".into()),
        Value::Binary(vec![0, 1, 2, 255]),
        Value::Uuid(Uuid::new_v4()),
        Value::Decimal("-12345678901234.5678".into()),
    ];
    let extremes = vec![
        Value::Int(i32::MAX),
        Value::SmallInt(32767),
        Value::TinyInt(0),
        Value::BigInt(i64::MAX),
        Value::Bit(false),
        Value::Float(f64::MIN_POSITIVE),
        Value::Real(f32::MIN_POSITIVE),
        Value::DateTime(dt("2020-05-18 10:40:43.123")),
        Value::DateTime(dt("0001-01-01 00:00:00")),
        Value::Date(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()),
        Value::Text("ãããããããããã".into()), // exactly the declared 10
        Value::Text("x".repeat(1_000_000)),
        Value::Text("line\nbreak\ttab".into()),
        Value::Binary(Vec::new()),
        Value::Uuid(Uuid::nil()),
        Value::Decimal("0.0001".into()),
    ];
    let negative = vec![
        Value::Int(-5),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Float(f64::MIN),
        Value::Real(-0.5),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Text(" ".into()),
        Value::Text(String::new()),
        Value::Null,
        Value::Binary((0..=255).collect()),
        Value::Null,
        Value::Decimal("99999999999999.9999".into()),
    ];
    vec![nulls, typical, extremes, negative]
}

/// Reads the table back into [`Value`]s by the declared column types.
async fn read_back(h: &Harness, schema: &TableSchema) -> Vec<Vec<Value>> {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| match c.ty {
            ColumnType::Decimal(..) => format!("\"{}\"::text", c.name),
            _ => format!("\"{}\"", c.name),
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY 1",
        cols.join(", "),
        h.qualified(&schema.name)
    );
    let mut out = Vec::new();
    for row in h.query(&sql).await {
        let mut values = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            use ColumnType as T;
            let v = match c.ty {
                T::Int => row.get::<_, Option<i32>>(i).map(Value::Int),
                T::SmallInt => row.get::<_, Option<i16>>(i).map(Value::SmallInt),
                T::TinyInt => row
                    .get::<_, Option<i16>>(i)
                    .map(|v| Value::TinyInt(u8::try_from(v).unwrap())),
                T::BigInt => row.get::<_, Option<i64>>(i).map(Value::BigInt),
                T::Bit => row.get::<_, Option<bool>>(i).map(Value::Bit),
                T::Float => row.get::<_, Option<f64>>(i).map(Value::Float),
                T::Real => row.get::<_, Option<f32>>(i).map(Value::Real),
                T::DateTime | T::DateTime2 => {
                    row.get::<_, Option<NaiveDateTime>>(i).map(Value::DateTime)
                }
                T::Date => row.get::<_, Option<NaiveDate>>(i).map(Value::Date),
                T::NVarChar(_) | T::NText => row.get::<_, Option<String>>(i).map(Value::Text),
                T::VarBinary(_) => row.get::<_, Option<Vec<u8>>>(i).map(Value::Binary),
                T::UniqueIdentifier => row.get::<_, Option<Uuid>>(i).map(Value::Uuid),
                T::Decimal(..) => row.get::<_, Option<String>>(i).map(Value::Decimal),
                other => panic!("not in this table: {other}"),
            };
            values.push(v.unwrap_or(Value::Null));
        }
        out.push(values);
    }
    out
}

fn as_rows(op: Operation, values: &[Vec<Value>]) -> Vec<Row> {
    values
        .iter()
        .map(|v| Row {
            op,
            values: v.clone(),
        })
        .collect()
}

fn sorted(mut v: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    v.sort_by_key(|r| match r[0] {
        Value::Int(k) => k,
        _ => 0,
    });
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_copy_and_through_merge() {
    let h = Harness::new().await;
    let schema = all_types();
    h.schema_call(std::slice::from_ref(&schema)).await;
    let sent = rows();

    // Direct COPY (a fresh table is loading).
    h.rows(&schema, 0, as_rows(Operation::Insert, &sent)).await;
    assert_eq!(read_back(&h, &schema).await, sorted(sent.clone()));

    // Merge path: end the loading phase, then send every row's values under another key.
    h.completed(&["typed"]).await;
    let keys: Vec<Value> = sent.iter().map(|r| r[0].clone()).collect();
    let rotated: Vec<Vec<Value>> = sent
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r[0] = keys[(i + 1) % keys.len()].clone();
            r
        })
        .collect();
    h.rows(&schema, 0, as_rows(Operation::Update, &rotated))
        .await;
    assert_eq!(read_back(&h, &schema).await, sorted(rotated));

    // Negative zero keeps its sign bit.
    let zero = vec![vec![
        Value::Int(9),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Float(-0.0),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ]];
    h.rows(&schema, 0, as_rows(Operation::Insert, &zero)).await;
    let back = read_back(&h, &schema).await;
    let nine = back.iter().find(|r| r[0] == Value::Int(9)).unwrap();
    let Value::Float(f) = nine[5] else {
        panic!("not a float")
    };
    assert_eq!(f.to_bits(), (-0.0f64).to_bits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_get_the_documented_postgres_types_and_defaults() {
    let h = Harness::new().await;
    let schema = all_types();
    h.schema_call(std::slice::from_ref(&schema)).await;
    let types: Vec<(String, String)> = h
        .columns("typed")
        .await
        .into_iter()
        .map(|(c, t, _)| (c, t))
        .collect();
    let expected = [
        ("typed_id", "integer"),
        ("si", "smallint"),
        ("ti", "smallint"),
        ("bi", "bigint"),
        ("bt", "boolean"),
        ("f", "double precision"),
        ("r", "real"),
        ("dt", "timestamp without time zone"),
        ("dt2", "timestamp without time zone"),
        ("d", "date"),
        ("nv", "character varying(10)"),
        ("nvm", "text"),
        ("nt", "text"),
        ("vb", "bytea"),
        ("u", "uuid"),
        ("dec", "numeric(18,4)"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(types, expected);
    // Defaults apply to rows written by others (hooks, operators).
    h.exec(&format!(
        "INSERT INTO {} (typed_id) VALUES (77)",
        h.qualified("typed")
    ))
    .await;
    let row = &h
        .query(&format!(
            "SELECT dt, nv FROM {} WHERE typed_id = 77",
            h.qualified("typed")
        ))
        .await[0];
    assert_eq!(row.get::<_, NaiveDateTime>(0), dt("1760-01-01 00:00:00"));
    assert_eq!(row.get::<_, String>(1), "");
}
