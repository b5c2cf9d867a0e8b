//! Typed values → the driver's TDS values, for statement parameters and for bulk loads alike, so
//! both paths store exactly the same thing.
//!
//! - NULL is typed by the column (a NULL declared `int` cannot go into a `uniqueidentifier`).
//! - `datetime` and `smalldatetime` are encoded here, in their own legacy formats, instead of
//!   through the driver's `NaiveDateTime` conversion: with TDS 7.3 that conversion produces a
//!   `datetime2`, which tiberius 0.13 bulk-loads into a `datetime` column only for dates from
//!   1900 on (SuperOffice's "empty date" is 1760-01-01) and truncates to the 1/300 s tick instead
//!   of rounding as SQL Server does (tiberius-rs/tiberius#307 and PR #298: bulk insert into
//!   `datetime` columns; the conversion is `datetime2_to_datetime` in its `column_data.rs`).

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;
use tiberius::numeric::Numeric;
use tiberius::time::{DateTime, SmallDateTime};
use tiberius::{ColumnData, ToSql};

use super::error::client;
use crate::error::ApplyError;

/// 1/300-second ticks in a day: the resolution of `datetime`.
const TICKS_PER_DAY: u64 = 300 * 86_400;

/// A bound parameter (the driver's `ToSql` for an already converted value).
#[derive(Debug, Clone)]
pub struct Param<'a>(pub ColumnData<'a>);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> ColumnData<'_> {
        self.0.clone()
    }
}

fn base() -> Result<NaiveDate, ApplyError> {
    NaiveDate::from_ymd_opt(1900, 1, 1).ok_or_else(|| client("no 1900-01-01".into()))
}

/// A `datetime`: days since 1900-01-01 (negative before) and 1/300 s ticks since midnight,
/// rounded to the nearest tick like SQL Server's own conversions. SQL Server's range
/// (1753-01-01 to 9999-12-31) is checked by the server, not here.
pub fn datetime(dt: NaiveDateTime) -> Result<DateTime, ApplyError> {
    let nanos = u64::from(dt.num_seconds_from_midnight()) * 1_000_000_000
        + u64::from(dt.nanosecond().min(999_999_999));
    let mut ticks = (nanos * 300 + 500_000_000) / 1_000_000_000;
    let mut days = (dt.date() - base()?).num_days();
    if ticks >= TICKS_PER_DAY {
        ticks -= TICKS_PER_DAY;
        days += 1;
    }
    let days = i32::try_from(days).map_err(|_| client(format!("{dt} is out of range")))?;
    let ticks = u32::try_from(ticks).map_err(|_| client(format!("{dt} is out of range")))?;
    Ok(DateTime::new(days, ticks))
}

/// A `smalldatetime`: days since 1900-01-01 and minutes, seconds rounded to the nearest minute.
pub fn smalldatetime(dt: NaiveDateTime) -> Result<SmallDateTime, ApplyError> {
    let out_of_range = || client(format!("{dt} is outside the smalldatetime range"));
    let mut minutes = (dt.num_seconds_from_midnight() + 30) / 60;
    let mut days = (dt.date() - base()?).num_days();
    if minutes >= 24 * 60 {
        minutes -= 24 * 60;
        days += 1;
    }
    let days = u16::try_from(days).map_err(|_| out_of_range())?;
    let minutes = u16::try_from(minutes).map_err(|_| out_of_range())?;
    Ok(SmallDateTime::new(days, minutes))
}

/// A canonical decimal string (`-12.50`) as a TDS numeric.
pub fn numeric(s: &str) -> Result<Numeric, ApplyError> {
    let bad = || client(format!("not a decimal: {s:?}"));
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let scale = u8::try_from(frac.len()).map_err(|_| bad())?;
    if scale > Numeric::MAX_NUMERIC_SCALE {
        return Err(bad());
    }
    let mut value: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(Numeric::new_with_scale(
        if negative { -value } else { value },
        scale,
    ))
}

/// A NULL of the column's type.
fn null(ty: ColumnType) -> ColumnData<'static> {
    use ColumnType as T;
    match ty {
        T::Int => ColumnData::I32(None),
        T::SmallInt => ColumnData::I16(None),
        T::TinyInt => ColumnData::U8(None),
        T::BigInt => ColumnData::I64(None),
        T::Bit => ColumnData::Bit(None),
        T::Float => ColumnData::F64(None),
        T::Real => ColumnData::F32(None),
        T::DateTime => ColumnData::DateTime(None),
        T::SmallDateTime => ColumnData::SmallDateTime(None),
        T::DateTime2 => ColumnData::DateTime2(None),
        T::Date => ColumnData::Date(None),
        T::NVarChar(_) | T::VarChar(_) | T::NChar(_) | T::Char(_) | T::NText | T::Text => {
            ColumnData::String(None)
        }
        T::VarBinary(_) | T::Image => ColumnData::Binary(None),
        T::UniqueIdentifier => ColumnData::Guid(None),
        T::Decimal(..) => ColumnData::Numeric(None),
    }
}

/// An integer value as the column's integer type, when it fits.
fn integer(value: i64, ty: ColumnType) -> Option<ColumnData<'static>> {
    use ColumnType as T;
    Some(match ty {
        T::Int => ColumnData::I32(Some(i32::try_from(value).ok()?)),
        T::SmallInt => ColumnData::I16(Some(i16::try_from(value).ok()?)),
        T::TinyInt => ColumnData::U8(Some(u8::try_from(value).ok()?)),
        T::BigInt => ColumnData::I64(Some(value)),
        T::Bit => ColumnData::Bit(Some(value != 0)),
        _ => return None,
    })
}

/// The TDS value of `value` in a column of type `ty`. The value was decoded with the same
/// schema, so its variant suits the column; a mismatch is reported, never coerced through text.
pub fn column_data(value: &Value, ty: ColumnType) -> Result<ColumnData<'_>, ApplyError> {
    use ColumnType as T;
    let mismatch = || {
        client(format!(
            "a {} value cannot be stored in a {ty} column",
            kind(value)
        ))
    };
    let data = match value {
        Value::Null => null(ty),
        Value::Int(v) => integer(i64::from(*v), ty).ok_or_else(mismatch)?,
        Value::SmallInt(v) => integer(i64::from(*v), ty).ok_or_else(mismatch)?,
        Value::TinyInt(v) => integer(i64::from(*v), ty).ok_or_else(mismatch)?,
        Value::BigInt(v) => integer(*v, ty).ok_or_else(mismatch)?,
        Value::Bit(v) if ty == T::Bit => ColumnData::Bit(Some(*v)),
        Value::Float(v) if ty == T::Float => ColumnData::F64(Some(*v)),
        Value::Float(v) if ty == T::Real => ColumnData::F32(Some(*v as f32)),
        Value::Real(v) if ty == T::Real => ColumnData::F32(Some(*v)),
        Value::Real(v) if ty == T::Float => ColumnData::F64(Some(f64::from(*v))),
        Value::DateTime(v) => match ty {
            T::DateTime => ColumnData::DateTime(Some(datetime(*v)?)),
            T::SmallDateTime => ColumnData::SmallDateTime(Some(smalldatetime(*v)?)),
            T::DateTime2 => v.to_sql().into_owned_data(),
            T::Date => v.date().to_sql().into_owned_data(),
            _ => return Err(mismatch()),
        },
        Value::Date(v) => match ty {
            T::Date => v.to_sql().into_owned_data(),
            T::DateTime | T::SmallDateTime | T::DateTime2 => {
                let midnight = v.and_hms_opt(0, 0, 0).ok_or_else(mismatch)?;
                return column_data_owned(Value::DateTime(midnight), ty);
            }
            _ => return Err(mismatch()),
        },
        Value::Text(s) if ty.is_text() => ColumnData::String(Some(Cow::Borrowed(s.as_str()))),
        Value::Binary(b) if matches!(ty, T::VarBinary(_) | T::Image) => {
            ColumnData::Binary(Some(Cow::Borrowed(b.as_slice())))
        }
        Value::Uuid(u) if ty == T::UniqueIdentifier => ColumnData::Guid(Some(*u)),
        Value::Decimal(s) if matches!(ty, T::Decimal(..)) => ColumnData::Numeric(Some(numeric(s)?)),
        Value::Bit(_)
        | Value::Float(_)
        | Value::Real(_)
        | Value::Text(_)
        | Value::Binary(_)
        | Value::Uuid(_)
        | Value::Decimal(_) => return Err(mismatch()),
    };
    Ok(data)
}

/// [`column_data`] of a value made on the spot (its data owns nothing borrowed).
fn column_data_owned(value: Value, ty: ColumnType) -> Result<ColumnData<'static>, ApplyError> {
    column_data(&value, ty).map(IntoOwnedData::into_owned_data)
}

/// A value's variant, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Int(_) => "int",
        Value::SmallInt(_) => "smallint",
        Value::TinyInt(_) => "tinyint",
        Value::BigInt(_) => "bigint",
        Value::Bit(_) => "bit",
        Value::Float(_) => "float",
        Value::Real(_) => "real",
        Value::DateTime(_) => "datetime",
        Value::Date(_) => "date",
        Value::Text(_) => "text",
        Value::Binary(_) => "binary",
        Value::Uuid(_) => "uniqueidentifier",
        Value::Decimal(_) => "decimal",
    }
}

/// Detaches driver values that borrow nothing worth keeping (dates, times) from their source.
trait IntoOwnedData {
    fn into_owned_data(self) -> ColumnData<'static>;
}

impl IntoOwnedData for ColumnData<'_> {
    fn into_owned_data(self) -> ColumnData<'static> {
        match self {
            ColumnData::String(s) => ColumnData::String(s.map(|s| Cow::Owned(s.into_owned()))),
            ColumnData::Binary(b) => ColumnData::Binary(b.map(|b| Cow::Owned(b.into_owned()))),
            ColumnData::Xml(x) => ColumnData::Xml(x.map(|x| Cow::Owned(x.into_owned()))),
            ColumnData::U8(v) => ColumnData::U8(v),
            ColumnData::I16(v) => ColumnData::I16(v),
            ColumnData::I32(v) => ColumnData::I32(v),
            ColumnData::I64(v) => ColumnData::I64(v),
            ColumnData::F32(v) => ColumnData::F32(v),
            ColumnData::F64(v) => ColumnData::F64(v),
            ColumnData::Bit(v) => ColumnData::Bit(v),
            ColumnData::Guid(v) => ColumnData::Guid(v),
            ColumnData::Numeric(v) => ColumnData::Numeric(v),
            ColumnData::DateTime(v) => ColumnData::DateTime(v),
            ColumnData::SmallDateTime(v) => ColumnData::SmallDateTime(v),
            ColumnData::Time(v) => ColumnData::Time(v),
            ColumnData::Date(v) => ColumnData::Date(v),
            ColumnData::DateTime2(v) => ColumnData::DateTime2(v),
            ColumnData::DateTimeOffset(v) => ColumnData::DateTimeOffset(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_nano_opt(h, mi, s, nanos)
            .unwrap()
    }

    #[test]
    fn datetimes_before_1900_have_negative_days() {
        // SuperOffice's empty date.
        let dt = datetime(at(1760, 1, 1, 0, 0, 0, 0)).unwrap();
        assert_eq!((dt.days(), dt.seconds_fragments()), (-51_134, 0));
        let dt = datetime(at(1900, 1, 1, 0, 0, 1, 0)).unwrap();
        assert_eq!((dt.days(), dt.seconds_fragments()), (0, 300));
    }

    #[test]
    fn datetime_ticks_round_like_sql_server() {
        // One tick is 3.33 ms; SuperOffice prints it as .0033333.
        let dt = datetime(at(2020, 5, 18, 10, 40, 43, 3_333_300)).unwrap();
        assert_eq!(dt.seconds_fragments() % 300, 1);
        let dt = datetime(at(2020, 5, 18, 10, 40, 43, 997_000_000)).unwrap();
        assert_eq!(dt.seconds_fragments() % 300, 299);
        // 23:59:59.999 rounds into the next day.
        let dt = datetime(at(2020, 5, 18, 23, 59, 59, 999_000_000)).unwrap();
        let next = datetime(at(2020, 5, 19, 0, 0, 0, 0)).unwrap();
        assert_eq!((dt.days(), dt.seconds_fragments()), (next.days(), 0));
    }

    #[test]
    fn smalldatetime_rounds_to_the_minute_and_has_a_range() {
        let dt = smalldatetime(at(2020, 5, 18, 10, 40, 30, 0)).unwrap();
        assert_eq!(dt.seconds_fragments(), 10 * 60 + 41);
        assert!(smalldatetime(at(1760, 1, 1, 0, 0, 0, 0)).is_err());
    }

    #[test]
    fn decimals_keep_every_digit() {
        let n = numeric("-12.50").unwrap();
        assert_eq!((n.value(), n.scale()), (-1250, 2));
        let n = numeric("7").unwrap();
        assert_eq!((n.value(), n.scale()), (7, 0));
        assert!(numeric("1e5").is_err());
        assert!(numeric("").is_err());
        assert!(numeric(&"9".repeat(40)).is_err());
    }

    #[test]
    fn nulls_are_typed_by_the_column() {
        let guid = column_data(&Value::Null, ColumnType::UniqueIdentifier).unwrap();
        assert_eq!(guid, ColumnData::Guid(None));
        let text = column_data(&Value::Null, ColumnType::NVarChar(None)).unwrap();
        assert_eq!(text, ColumnData::String(None));
        let dt = column_data(&Value::Null, ColumnType::DateTime).unwrap();
        assert_eq!(dt, ColumnData::DateTime(None));
    }

    #[test]
    fn values_follow_the_column_type() {
        assert_eq!(
            column_data(&Value::Int(7), ColumnType::BigInt).unwrap(),
            ColumnData::I64(Some(7))
        );
        assert!(column_data(&Value::Int(70_000), ColumnType::SmallInt).is_err());
        assert!(column_data(&Value::Text("1".into()), ColumnType::Int).is_err());
        let when = at(1760, 1, 1, 0, 0, 0, 0);
        assert!(matches!(
            column_data(&Value::DateTime(when), ColumnType::DateTime).unwrap(),
            ColumnData::DateTime(Some(_))
        ));
        assert!(matches!(
            column_data(&Value::DateTime(when), ColumnType::DateTime2).unwrap(),
            ColumnData::DateTime2(Some(_))
        ));
        let text = Value::Text("ünï".into());
        assert_eq!(
            column_data(&text, ColumnType::NText).unwrap(),
            ColumnData::String(Some(Cow::Borrowed("ünï")))
        );
    }
}
