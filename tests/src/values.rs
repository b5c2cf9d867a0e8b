//! Building calls the way SuperOffice's Mirroring Task writes them: raw table schemas and rows
//! whose values are the wire strings (`[I:135]`, `[DT:05/18/2020 10:40:43.0000000]`, raw text …).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{NaiveDateTime, Timelike};
use mirror_common::schema::{RawColumn, RawTableSchema};
use mirror_common::soap::{RawRow, RawRowBatch};
use std::borrow::Cow;

/// A column as TableSchema and RowData describe it (no default).
pub fn column(name: &str, ty: &str, nullable: bool) -> RawColumn {
    RawColumn {
        name: name.into(),
        ty: ty.into(),
        nullable,
        default: String::new(),
    }
}

/// A table from `(name, type, nullable)`; the first column is the `int` key.
pub fn table(name: &str, columns: &[(&str, &str, bool)]) -> RawTableSchema {
    RawTableSchema {
        name: name.into(),
        columns: columns
            .iter()
            .map(|(n, ty, nullable)| column(n, ty, *nullable))
            .collect(),
    }
}

/// `<name>_id int`, `name nvarchar(50)`, `n int`: a minimal SuperOffice-like table.
pub fn simple_table(name: &str) -> RawTableSchema {
    table(
        name,
        &[
            (&format!("{name}_id"), "int", false),
            ("name", "nvarchar(50)", true),
            ("n", "int", true),
        ],
    )
}

/// A row of [`simple_table`]: operation letter, key, name (`n` is `key * 10`).
pub fn simple_row(op: &str, key: i32, name: &str) -> RawRow<'static> {
    row(
        op,
        vec![Some(int(key)), Some(name.to_owned()), Some(int(key * 10))],
    )
}

/// A delete of [`simple_table`]'s `key`, as change tracking sends it (the key, the rest nil).
pub fn delete_row(key: i32) -> RawRow<'static> {
    row("D", vec![Some(int(key)), None, None])
}

/// A row; `None` values are sent as `i:nil="true"`.
pub fn row(op: &str, values: Vec<Option<String>>) -> RawRow<'static> {
    RawRow {
        operation: op.into(),
        values: values.into_iter().map(|v| v.map(Cow::Owned)).collect(),
    }
}

/// One batch of `rows` for `table`.
pub fn batch(table: &RawTableSchema, lsn: i64, rows: Vec<RawRow<'static>>) -> RawRowBatch<'static> {
    RawRowBatch {
        table: table.clone(),
        lsn,
        rows,
    }
}

/// `[I:n]`
pub fn int(n: i32) -> String {
    format!("[I:{n}]")
}

/// `[S:n]`
pub fn smallint(n: i16) -> String {
    format!("[S:{n}]")
}

/// `[DT:MM/dd/yyyy HH:mm:ss.fffffff]`, the invariant form with 100 ns ticks.
pub fn datetime(dt: NaiveDateTime) -> String {
    format!(
        "[DT:{}.{:07}]",
        dt.format("%m/%d/%Y %H:%M:%S"),
        dt.nanosecond() / 100
    )
}

/// `[F:…]` as .NET's round-trip format writes it: plain digits for ordinary magnitudes,
/// `1.7976931348623157E+308` for extreme ones.
pub fn float(f: f64) -> String {
    let magnitude = f.abs();
    if f == 0.0 || (1e-5..1e15).contains(&magnitude) {
        return format!("[F:{f}]");
    }
    let scientific = format!("{f:E}");
    let formatted = match scientific.split_once('E') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}E+{exponent}")
        }
        _ => scientific,
    };
    format!("[F:{formatted}]")
}

/// `[B:<base64>]`
pub fn binary(bytes: &[u8]) -> String {
    format!("[B:{}]", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn values_are_written_as_superoffice_writes_them() {
        let dt = NaiveDate::from_ymd_opt(2020, 5, 18)
            .unwrap()
            .and_hms_nano_opt(10, 40, 43, 123_456_700)
            .unwrap();
        assert_eq!(datetime(dt), "[DT:05/18/2020 10:40:43.1234567]");
        assert_eq!(int(-135), "[I:-135]");
        assert_eq!(smallint(0), "[S:0]");
        assert_eq!(float(12.5), "[F:12.5]");
        assert_eq!(float(f64::MAX), "[F:1.7976931348623157E+308]");
        assert_eq!(float(5e-324), "[F:5E-324]");
        assert_eq!(binary(&[0, 255]), "[B:AP8=]");
    }
}
