//! Binary `COPY … FROM STDIN`: the fastest way into PostgreSQL, and values are never turned into
//! SQL text. Also the binding of [`Value`]s as statement parameters.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use futures::pin_mut;
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};

use super::error::classify;
use crate::error::ApplyError;

/// The PostgreSQL type whose binary format a column's values are sent in (see `render` for the
/// column types themselves; `varchar(n)` and `text` share one format).
pub fn pg_type(ty: ColumnType) -> Type {
    use ColumnType as T;
    match ty {
        T::Int => Type::INT4,
        T::SmallInt | T::TinyInt => Type::INT2,
        T::BigInt => Type::INT8,
        T::Bit => Type::BOOL,
        T::Float => Type::FLOAT8,
        T::Real => Type::FLOAT4,
        T::DateTime | T::DateTime2 | T::SmallDateTime => Type::TIMESTAMP,
        T::Date => Type::DATE,
        T::NVarChar(Some(_)) | T::VarChar(Some(_)) => Type::VARCHAR,
        T::NVarChar(None) | T::VarChar(None) | T::NText | T::Text => Type::TEXT,
        T::NChar(_) | T::Char(_) => Type::BPCHAR,
        T::VarBinary(_) | T::Image => Type::BYTEA,
        T::UniqueIdentifier => Type::UUID,
        T::Decimal(..) => Type::NUMERIC,
    }
}

/// The array type of an element type from [`pg_type`], for binding a column as one parameter.
pub fn array_type(element: &Type) -> Type {
    match *element {
        Type::INT4 => Type::INT4_ARRAY,
        Type::INT2 => Type::INT2_ARRAY,
        Type::INT8 => Type::INT8_ARRAY,
        Type::BOOL => Type::BOOL_ARRAY,
        Type::FLOAT8 => Type::FLOAT8_ARRAY,
        Type::FLOAT4 => Type::FLOAT4_ARRAY,
        Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
        Type::DATE => Type::DATE_ARRAY,
        Type::VARCHAR => Type::VARCHAR_ARRAY,
        Type::BPCHAR => Type::BPCHAR_ARRAY,
        Type::BYTEA => Type::BYTEA_ARRAY,
        Type::UUID => Type::UUID_ARRAY,
        Type::NUMERIC => Type::NUMERIC_ARRAY,
        _ => Type::TEXT_ARRAY,
    }
}

/// A [`Value`] in PostgreSQL's binary format. The column's type was chosen from the same schema the
/// value was decoded with, so the variant always suits it; a mismatch is reported, not coerced.
#[derive(Debug)]
pub struct PgValue<'a>(pub &'a Value);

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for PgValue<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => v.to_sql(ty, out),
            Value::SmallInt(v) => v.to_sql(ty, out),
            Value::TinyInt(v) => i16::from(*v).to_sql(ty, out),
            Value::BigInt(v) => v.to_sql(ty, out),
            Value::Bit(v) => v.to_sql(ty, out),
            Value::Float(v) => v.to_sql(ty, out),
            Value::Real(v) => v.to_sql(ty, out),
            Value::DateTime(v) => v.to_sql(ty, out),
            Value::Date(v) => v.to_sql(ty, out),
            Value::Text(v) => v.as_str().to_sql(ty, out),
            Value::Binary(v) => v.as_slice().to_sql(ty, out),
            Value::Uuid(v) => v.to_sql(ty, out),
            Value::Decimal(v) => {
                encode_numeric(v, out)?;
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One column of a set of rows as a PostgreSQL array parameter (`$n::int4[]`, …), so a whole batch
/// binds to one statement: `INSERT … SELECT * FROM unnest($1, $2, …)`. Elements use the same binary
/// format as [`PgValue`].
#[derive(Debug)]
pub struct ColumnArray<'a> {
    pub rows: &'a [&'a [Value]],
    pub column: usize,
}

impl ToSql for ColumnArray<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let Kind::Array(element) = ty.kind() else {
            return Err(format!("{ty} is not an array type").into());
        };
        let len = i32::try_from(self.rows.len())?;
        let has_null = self
            .rows
            .iter()
            .any(|row| matches!(row.get(self.column), Some(Value::Null) | None));
        out.put_i32(1); // dimensions
        out.put_i32(i32::from(has_null));
        out.put_u32(element.oid());
        out.put_i32(len);
        out.put_i32(1); // lower bound
        for row in self.rows {
            let value = row
                .get(self.column)
                .ok_or_else(|| format!("a row has no column {}", self.column))?;
            let at = out.len();
            out.put_i32(0);
            let written = match PgValue(value).to_sql(element, out)? {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(out.len() - at - 4)?,
            };
            out[at..at + 4].copy_from_slice(&written.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    to_sql_checked!();
}

/// Writes a canonical decimal string (`-12.5`, as `value::decode` produces) in PostgreSQL's binary
/// `numeric` format: digit count, weight, sign, display scale, then base-10000 digits.
pub fn encode_numeric(s: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("not a decimal: {s:?}").into());
    }
    let dscale = u16::try_from(frac.len())?;
    // Left-pad the integer part and right-pad the fraction to whole groups of four digits.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits_text: String = "0"
        .repeat(int_pad)
        .chars()
        .chain(int.chars())
        .chain(frac.chars())
        .chain("0".repeat(frac_pad).chars())
        .collect();
    let mut groups: Vec<i16> = digits_text
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i16::try_from((int.len() + int_pad) / 4)? - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.put_i16(i16::try_from(groups.len())?);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// Streams `rows` (each in `types` order) through `copy_sql` (a `COPY … FROM STDIN (FORMAT
/// binary)` statement). Returns the number of rows the server took.
pub async fn copy_rows(
    client: &Client,
    copy_sql: &str,
    types: &[Type],
    rows: &[&[Value]],
) -> Result<u64, ApplyError> {
    let sink = client.copy_in(copy_sql).await.map_err(classify)?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    let mut values: Vec<PgValue<'_>> = Vec::with_capacity(types.len());
    for row in rows {
        values.clear();
        values.extend(row.iter().map(PgValue));
        writer
            .as_mut()
            .write_raw(values.iter())
            .await
            .map_err(classify)?;
    }
    writer.finish().await.map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(s: &str) -> Vec<i16> {
        let mut out = BytesMut::new();
        encode_numeric(s, &mut out).unwrap();
        out.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_use_base_10000_groups() {
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(numeric("0"), vec![0, 0, 0, 0]);
        assert_eq!(numeric("12345.678"), vec![3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric("-0.0045"), vec![1, -1, 0x4000, 4, 45]);
        assert_eq!(numeric("10000"), vec![1, 1, 0, 0, 1]);
        assert!(encode_numeric("1e5", &mut BytesMut::new()).is_err());
    }
}
