//! A table of every SuperOffice column type, rows that probe each type's edges, and reading a
//! table back into values by its declared types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, NaiveDateTime};
use mirror_common::schema::{ColumnType, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{Operation, Row};
use uuid::Uuid;

use super::Live;
use crate::engine_support::table;

// ---- types ----

pub fn all_types(name: &str, large: bool) -> TableSchema {
    let id = format!("{name}_id");
    let mut cols = vec![
        (id.as_str(), "int", false, ""),
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
        ("u", "uniqueidentifier", true, ""),
        ("dec", "decimal(18,4)", true, ""),
        ("vb", "varbinary(100)", true, ""),
    ];
    if large {
        cols.extend([
            ("nvm", "nvarchar(max)", true, ""),
            ("nt", "ntext", true, ""),
            ("vbm", "varbinary(max)", true, ""),
        ]);
    }
    table(name, &cols)
}

pub fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// Rows for [`all_types`]; `datetime` values are whole seconds (the type keeps 1/300 s).
pub fn typed_rows(large: bool) -> Vec<Vec<Value>> {
    let width = if large { 17 } else { 14 };
    let mut nulls = vec![Value::Int(1)];
    nulls.extend(std::iter::repeat_n(Value::Null, width - 1));
    let mut typical = vec![
        Value::Int(2),
        Value::SmallInt(-32768),
        Value::TinyInt(255),
        Value::BigInt(i64::MIN),
        Value::Bit(true),
        Value::Float(f64::MAX),
        Value::Real(f32::MAX),
        Value::DateTime(dt("1760-01-01 00:00:00")),
        Value::DateTime(dt("9999-12-31 23:59:59.9999999")),
        Value::Date(NaiveDate::from_ymd_opt(1760, 1, 1).unwrap()),
        Value::Text(String::new()),
        Value::Uuid(Uuid::new_v4()),
        Value::Decimal("-12345678901234.5678".into()),
        Value::Binary(vec![0, 1, 2, 255]),
    ];
    let mut extremes = vec![
        Value::Int(i32::MAX),
        Value::SmallInt(32767),
        Value::TinyInt(0),
        Value::BigInt(i64::MAX),
        Value::Bit(false),
        Value::Float(1e-300),
        Value::Real(1e-30),
        Value::DateTime(dt("2020-05-18 10:40:43")),
        Value::DateTime(dt("0001-01-01 00:00:00")),
        Value::Date(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()),
        Value::Text("ãããããããããã".into()), // exactly the declared 10
        Value::Uuid(Uuid::nil()),
        Value::Decimal("0.0001".into()),
        Value::Binary(Vec::new()),
    ];
    let mut unicode = vec![
        Value::Int(-5),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Float(-0.5),
        Value::Real(-0.5),
        Value::DateTime(dt("1753-01-01 00:00:00")),
        Value::Null,
        Value::Null,
        Value::Text("Æø😀中'\"]".into()), // 8 UTF-16 units of the 10
        Value::Null,
        Value::Decimal("99999999999999.9999".into()),
        Value::Null,
    ];
    if large {
        typical.extend([
            Value::Text("Ærøskøbing 😀 — 中文 'quoted' \"double\" ]] back".into()),
            Value::Text("[I:1]".into()),
            Value::Binary((0..=255).collect()),
        ]);
        extremes.extend([
            Value::Text("x".repeat(100_000)),
            Value::Text("line\nbreak\ttab".into()),
            Value::Binary(vec![7; 100_000]),
        ]);
        unicode.extend([
            Value::Text(String::new()),
            Value::Text(String::new()),
            Value::Binary(Vec::new()),
        ]);
    }
    vec![nulls, typical, extremes, unicode]
}

/// Reads a table back into [`Value`]s by the declared column types.
pub async fn read_back(h: &Live, schema: &TableSchema) -> Vec<Vec<Value>> {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| match c.ty {
            ColumnType::Decimal(..) => format!("CAST([{}] AS nvarchar(50))", c.name),
            _ => format!("[{}]", c.name),
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY 1",
        cols.join(", "),
        h.qualified(&schema.name)
    );
    let mut out = Vec::new();
    for row in h.query(&sql, &[]).await {
        let mut values = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            use ColumnType as T;
            let v = match c.ty {
                T::Int => row.get::<i32, _>(i).map(Value::Int),
                T::SmallInt => row.get::<i16, _>(i).map(Value::SmallInt),
                T::TinyInt => row.get::<u8, _>(i).map(Value::TinyInt),
                T::BigInt => row.get::<i64, _>(i).map(Value::BigInt),
                T::Bit => row.get::<bool, _>(i).map(Value::Bit),
                T::Float => row.get::<f64, _>(i).map(Value::Float),
                T::Real => row.get::<f32, _>(i).map(Value::Real),
                T::DateTime | T::DateTime2 => row.get::<NaiveDateTime, _>(i).map(Value::DateTime),
                T::Date => row.get::<NaiveDate, _>(i).map(Value::Date),
                T::NVarChar(_) | T::NText => {
                    row.get::<&str, _>(i).map(|s| Value::Text(s.to_owned()))
                }
                T::VarBinary(_) => row.get::<&[u8], _>(i).map(|b| Value::Binary(b.to_vec())),
                T::UniqueIdentifier => row.get::<Uuid, _>(i).map(Value::Uuid),
                T::Decimal(..) => row.get::<&str, _>(i).map(|s| Value::Decimal(s.to_owned())),
                other => panic!("not in this table: {other}"),
            };
            values.push(v.unwrap_or(Value::Null));
        }
        out.push(values);
    }
    out
}

pub fn as_rows(op: Operation, values: &[Vec<Value>]) -> Vec<Row> {
    values
        .iter()
        .map(|v| Row {
            op,
            values: v.clone(),
        })
        .collect()
}

pub fn sorted(mut v: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    v.sort_by_key(|r| match r[0] {
        Value::Int(k) => k,
        _ => 0,
    });
    v
}
