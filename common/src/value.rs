//! SuperOffice encoded column values, decoded by the column's declared type.
//!
//! Non-text values arrive wrapped (`[I:135]`, `[S:0]`, `[DT:05/18/2020 10:40:43.0000000]`,
//! `[F:12.5]`, `[B:…]`); text arrives raw. We decode by the declared type and never by sniffing
//! brackets: a text column may legitimately hold `[I:1]`. Unwrapped numbers are accepted too.

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

use crate::schema::ColumnType;

mod encoding;

/// A typed column value, as it travels on the queue (in the compact form of [`encoding`]) and is
/// written to the mirror.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i32),
    SmallInt(i16),
    TinyInt(u8),
    BigInt(i64),
    Bit(bool),
    Float(f64),
    Real(f32),
    DateTime(NaiveDateTime),
    Date(NaiveDate),
    Text(String),
    Binary(Vec<u8>),
    Uuid(Uuid),
    /// A decimal in canonical text form (`-12.50`), exact.
    Decimal(String),
}

/// What was wrong with one value; the caller adds table, column and row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("NULL in a non-nullable {0} column")]
    NullNotAllowed(ColumnType),
    #[error("{value:?} is not a valid {ty} value")]
    Unparsable { ty: ColumnType, value: String },
    #[error("text of {len} characters is longer than {ty} allows")]
    TooLong { ty: ColumnType, len: usize },
}

/// Decodes one wire value. `raw` is `None` for an `i:nil="true"` element.
///
/// An empty element in a non-text column is NULL when the column is nullable (SuperOffice documents
/// no encoding for NULL, and an empty number or date has no other meaning); in a text column it is
/// the empty string.
pub fn decode(ty: ColumnType, nullable: bool, raw: Option<&str>) -> Result<Value, ValueError> {
    let Some(raw) = raw else {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err(ValueError::NullNotAllowed(ty))
        };
    };
    if ty.is_text() {
        return decode_text(ty, raw);
    }
    let inner = trim(unwrap(raw));
    if inner.is_empty() {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err(ValueError::NullNotAllowed(ty))
        };
    }
    let bad = || ValueError::Unparsable {
        ty,
        value: truncate_for_message(raw),
    };
    let value = match ty {
        ColumnType::Int => Value::Int(inner.parse().map_err(|_| bad())?),
        ColumnType::SmallInt => Value::SmallInt(inner.parse().map_err(|_| bad())?),
        ColumnType::TinyInt => Value::TinyInt(inner.parse().map_err(|_| bad())?),
        ColumnType::BigInt => Value::BigInt(inner.parse().map_err(|_| bad())?),
        ColumnType::Bit => Value::Bit(parse_bit(inner).ok_or_else(bad)?),
        ColumnType::Float => Value::Float(parse_finite(inner).ok_or_else(bad)?),
        ColumnType::Real => {
            let f = parse_finite(inner).ok_or_else(bad)? as f32;
            if !f.is_finite() {
                return Err(bad());
            }
            Value::Real(f)
        }
        ColumnType::DateTime | ColumnType::DateTime2 | ColumnType::SmallDateTime => {
            Value::DateTime(
                parse_datetime(inner)
                    .filter(no_leap_second)
                    .ok_or_else(bad)?,
            )
        }
        ColumnType::Date => Value::Date(
            parse_datetime(inner)
                .filter(no_leap_second)
                .map(|dt| dt.date())
                .or_else(|| NaiveDate::parse_from_str(inner, "%Y-%m-%d").ok())
                .ok_or_else(bad)?,
        ),
        ColumnType::VarBinary(max) => {
            let bytes = parse_binary(inner).ok_or_else(bad)?;
            if let Some(max) = max
                && bytes.len() > usize::from(max)
            {
                return Err(ValueError::TooLong {
                    ty,
                    len: bytes.len(),
                });
            }
            Value::Binary(bytes)
        }
        ColumnType::Image => Value::Binary(parse_binary(inner).ok_or_else(bad)?),
        ColumnType::UniqueIdentifier => Value::Uuid(
            Uuid::parse_str(inner.trim_start_matches('{').trim_end_matches('}'))
                .map_err(|_| bad())?,
        ),
        ColumnType::Decimal(p, s) => Value::Decimal(parse_decimal(inner, p, s).ok_or_else(bad)?),
        ColumnType::NVarChar(_)
        | ColumnType::VarChar(_)
        | ColumnType::NChar(_)
        | ColumnType::Char(_)
        | ColumnType::NText
        | ColumnType::Text => return decode_text(ty, raw),
    };
    Ok(value)
}

/// SQL Server has no leap seconds: a `:60` second, which chrono reads as one, is refused.
fn no_leap_second(dt: &NaiveDateTime) -> bool {
    dt.and_utc().timestamp_subsec_nanos() < 1_000_000_000
}

fn decode_text(ty: ColumnType, raw: &str) -> Result<Value, ValueError> {
    let limit = match ty {
        ColumnType::NVarChar(Some(n))
        | ColumnType::VarChar(Some(n))
        | ColumnType::NChar(n)
        | ColumnType::Char(n) => Some(usize::from(n)),
        _ => None,
    };
    // SQL Server counts nvarchar lengths in UTF-16 code units, never more than UTF-8 bytes: only
    // text longer in bytes than the limit needs counting.
    if let Some(limit) = limit
        && raw.len() > limit
    {
        let len = raw.encode_utf16().count();
        if len > limit {
            return Err(ValueError::TooLong { ty, len });
        }
    }
    Ok(Value::Text(raw.to_owned()))
}

/// Strips one `[TAG:…]` wrapper whose tag is one to four letters; returns other input unchanged.
fn unwrap(raw: &str) -> &str {
    let s = trim(raw);
    if let Some(body) = s.strip_prefix('[').and_then(|b| b.strip_suffix(']'))
        && let Some(colon) = body.bytes().take(5).position(|b| b == b':')
        && colon > 0
        && body.as_bytes()[..colon].iter().all(u8::is_ascii_alphabetic)
    {
        return &body[colon + 1..];
    }
    s
}

/// `str::trim`, answered from the first and last bytes in the common case of nothing to trim.
fn trim(s: &str) -> &str {
    let solid = |b: &u8| b.is_ascii_graphic();
    match s.as_bytes() {
        [first, .., last] if solid(first) && solid(last) => s,
        [only] if solid(only) => s,
        _ => s.trim(),
    }
}

fn parse_finite(s: &str) -> Option<f64> {
    // Rust also accepts "inf" and "NaN", which SQL Server's float cannot hold.
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bit(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `MM/dd/yyyy HH:mm:ss[.fffffff]` (invariant culture, SuperOffice's form), ISO 8601 as a fallback.
///
/// Every datetime value of every row passes here, so SuperOffice's own form is read by hand
/// ([`parse_superoffice_datetime`]); anything else goes through chrono's format strings.
fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    parse_superoffice_datetime(s).or_else(|| parse_datetime_with_formats(s))
}

/// The fast path for exactly `MM/dd/yyyy HH:mm:ss` with an optional `.` and 1–9 fraction digits,
/// two-digit fields and a four-digit year. `None` for any other shape and for out-of-range fields
/// (the chrono path then decides), so it never accepts what the format strings would refuse.
fn parse_superoffice_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[2] != b'/'
        || b[5] != b'/'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            decimal(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let (hour, minute, second) = (
        decimal(&b[11..13])?,
        decimal(&b[14..16])?,
        decimal(&b[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let year = i32::try_from(decimal(&b[6..10])?).ok()?;
    NaiveDate::from_ymd_opt(year, decimal(&b[0..2])?, decimal(&b[3..5])?)?
        .and_hms_nano_opt(hour, minute, second, nanos)
}

/// The value of ASCII decimal digits (at most nine, so it cannot overflow); `None` for anything
/// else.
#[inline]
fn decimal(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &c| {
        let digit = c.wrapping_sub(b'0');
        (digit < 10).then(|| n * 10 + u32::from(digit))
    })
}

/// Every accepted datetime form as chrono format strings, in the order they are tried (a date-only
/// form gives midnight).
pub const DATETIME_FORMATS: [&str; 6] = [
    "%m/%d/%Y %H:%M:%S%.f",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d",
];

/// Every accepted form, through chrono's format strings.
fn parse_datetime_with_formats(s: &str) -> Option<NaiveDateTime> {
    DATETIME_FORMATS.iter().find_map(|f| {
        NaiveDateTime::parse_from_str(s, f).ok().or_else(|| {
            NaiveDate::parse_from_str(s, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
    })
}

/// Base64 first (SuperOffice's encoding as far as it is known; standard alphabet, padded), then hex
/// (optionally `0x`-prefixed) as the fallback, then unpadded Base64. Base64 goes first because a
/// Base64 payload may itself begin with `0x` (`0Xg=` is the bytes `d1 78`).
fn parse_binary(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    if let Ok(bytes) = STANDARD.decode(s) {
        return Some(bytes);
    }
    let hex_digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(hex_digits)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(s).ok())
}

/// Checks a decimal literal against its precision and scale; returns it canonically
/// (no `+`, no leading zeros, no exponent).
fn parse_decimal(s: &str, precision: u8, scale: u8) -> Option<String> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(scale) || int.len() > usize::from(precision - scale) {
        return None;
    }
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::with_capacity(s.len() + 1);
    if neg && (int != "0" || !frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

fn truncate_for_message(raw: &str) -> String {
    const MAX: usize = 80;
    match raw.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &raw[..i]),
        None => raw.to_owned(),
    }
}

impl Value {
    /// Encodes the value the way SuperOffice sends it, for a column of type `ty` (used by the
    /// simulator and by tests; the inverse of [`decode`] up to formatting).
    pub fn encode(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Int(v) => tagged_integer("[I:", *v),
            Value::SmallInt(v) => tagged_integer("[S:", *v),
            Value::TinyInt(v) => tagged_integer("[S:", *v),
            Value::BigInt(v) => tagged_integer("[L:", *v),
            Value::Bit(v) => tagged_integer("[I:", u8::from(*v)),
            Value::Float(v) => format!("[F:{v:?}]"),
            Value::Real(v) => format!("[F:{v:?}]"),
            Value::DateTime(v) => encode_datetime(*v),
            Value::Date(v) => encode_datetime(v.and_time(NaiveTime::MIN)),
            Value::Text(v) => v.clone(),
            Value::Binary(v) => format!(
                "[B:{}]",
                base64::engine::general_purpose::STANDARD.encode(v)
            ),
            Value::Uuid(v) => format!("[G:{v}]"),
            Value::Decimal(v) => format!("[D:{v}]"),
        })
    }
}

fn tagged_integer(tag: &str, n: impl itoa::Integer) -> String {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n);
    let mut out = String::with_capacity(tag.len() + digits.len() + 1);
    out.push_str(tag);
    out.push_str(digits);
    out.push(']');
    out
}

/// `[DT:MM/dd/yyyy HH:mm:ss.fffffff]`, the one shape SuperOffice sends.
fn encode_datetime(v: NaiveDateTime) -> String {
    use chrono::{Datelike as _, Timelike as _};
    let year = v.year();
    if !(0..=9999).contains(&year) || v.nanosecond() >= 1_000_000_000 {
        // Outside SQL Server's range, or a leap second: never decoded from the wire, written as
        // chrono writes them.
        return format!(
            "[DT:{}.{:07}]",
            v.format("%m/%d/%Y %H:%M:%S"),
            v.and_utc().timestamp_subsec_nanos() / 100
        );
    }
    let mut out = String::with_capacity(32);
    out.push_str("[DT:");
    push_padded(&mut out, v.month(), 2);
    out.push('/');
    push_padded(&mut out, v.day(), 2);
    out.push('/');
    push_padded(&mut out, year.unsigned_abs(), 4);
    out.push(' ');
    push_padded(&mut out, v.hour(), 2);
    out.push(':');
    push_padded(&mut out, v.minute(), 2);
    out.push(':');
    push_padded(&mut out, v.second(), 2);
    out.push('.');
    push_padded(&mut out, v.nanosecond() / 100, 7);
    out.push(']');
    out
}

/// `n` in decimal, left-padded with zeros to `width` digits (`n` has at most `width` digits).
fn push_padded(out: &mut String, n: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from_digit(n / divisor % 10, 10).unwrap_or('0'));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType as T;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn datetimes_encode_as_chrono_formats_them() {
        let chrono_shape = |v: NaiveDateTime| {
            format!(
                "[DT:{}.{:07}]",
                v.format("%m/%d/%Y %H:%M:%S"),
                v.and_utc().timestamp_subsec_nanos() / 100
            )
        };
        for v in [
            "0001-01-01 00:00:00",
            "1760-01-01 00:00:00",
            "2021-03-04 05:06:07.1234567",
            "2021-12-31 23:59:59.9999999",
            "9999-12-31 23:59:59.9999999",
        ]
        .map(dt)
        .into_iter()
        .chain(NaiveDate::from_ymd_opt(12_000, 1, 1).and_then(|d| d.and_hms_opt(1, 2, 3)))
        {
            assert_eq!(Value::DateTime(v).encode(), Some(chrono_shape(v)), "{v}");
        }
        let date = NaiveDate::from_ymd_opt(1760, 1, 1).unwrap();
        assert_eq!(
            Value::Date(date).encode().as_deref(),
            Some("[DT:01/01/1760 00:00:00.0000000]")
        );
        assert_eq!(Value::Int(-135).encode().as_deref(), Some("[I:-135]"));
        assert_eq!(
            Value::BigInt(i64::MIN).encode(),
            Some(format!("[L:{}]", i64::MIN))
        );
        assert_eq!(Value::Bit(true).encode().as_deref(), Some("[I:1]"));
    }

    #[test]
    fn decodes_the_values_of_the_rowdata_fixture() {
        assert_eq!(decode(T::Int, false, Some("[I:135]")), Ok(Value::Int(135)));
        assert_eq!(
            decode(T::SmallInt, false, Some("[S:0]")),
            Ok(Value::SmallInt(0))
        );
        assert_eq!(
            decode(T::DateTime, true, Some("[DT:05/18/2020 10:40:43.0000000]")),
            Ok(Value::DateTime(dt("2020-05-18 10:40:43")))
        );
        assert_eq!(
            decode(T::DateTime, true, Some("[DT:01/01/1760 00:00:00.0000000]")),
            Ok(Value::DateTime(dt("1760-01-01 00:00:00")))
        );
        assert_eq!(
            decode(T::NVarChar(Some(255)), true, Some("Nonnast, Leon")),
            Ok(Value::Text("Nonnast, Leon".into()))
        );
    }

    #[test]
    fn decodes_by_declared_type_never_by_brackets() {
        assert_eq!(
            decode(T::NVarChar(Some(10)), true, Some("[I:1]")),
            Ok(Value::Text("[I:1]".into()))
        );
        assert_eq!(decode(T::Int, true, Some("42")), Ok(Value::Int(42)));
        assert_eq!(
            decode(T::Float, true, Some("[F:12.5]")),
            Ok(Value::Float(12.5))
        );
        assert_eq!(
            decode(T::Float, true, Some("-1E+20")),
            Ok(Value::Float(-1e20))
        );
        assert_eq!(
            decode(T::DateTime, true, Some("[DT:12/31/2021 23:59:59.1234567]")),
            Ok(Value::DateTime(dt("2021-12-31 23:59:59.1234567")))
        );
    }

    #[test]
    fn nulls_and_empty_values() {
        assert_eq!(decode(T::NVarChar(None), true, None), Ok(Value::Null));
        assert_eq!(
            decode(T::NVarChar(None), false, Some("")),
            Ok(Value::Text(String::new()))
        );
        assert_eq!(decode(T::Int, true, Some("")), Ok(Value::Null));
        assert_eq!(
            decode(T::Int, false, None),
            Err(ValueError::NullNotAllowed(T::Int))
        );
        assert_eq!(
            decode(T::Int, false, Some("")),
            Err(ValueError::NullNotAllowed(T::Int))
        );
    }

    #[test]
    fn binary_is_base64_or_hex() {
        assert_eq!(
            decode(T::VarBinary(None), true, Some("[B:AAEC/w==]")),
            Ok(Value::Binary(vec![0, 1, 2, 255]))
        );
        assert_eq!(
            decode(T::VarBinary(None), true, Some("[B:0x00ff]")),
            Ok(Value::Binary(vec![0, 255]))
        );
        assert_eq!(
            decode(T::VarBinary(None), true, Some("[B:0Xg=]")),
            Ok(Value::Binary(vec![0xd1, 0x78]))
        );
        assert_eq!(
            decode(T::VarBinary(None), true, Some("[B:0001ff]")),
            Ok(Value::Binary(vec![0, 1, 255]))
        );
        assert_eq!(
            decode(T::VarBinary(Some(2)), true, Some("[B:AAEC/w==]")),
            Err(ValueError::TooLong {
                ty: T::VarBinary(Some(2)),
                len: 4
            })
        );
    }

    #[test]
    fn refuses_values_that_do_not_parse() {
        for (ty, raw) in [
            (T::Int, "[I:abc]"),
            (T::Int, "[I:99999999999]"),
            (T::SmallInt, "[S:40000]"),
            (T::Float, "[F:NaN]"),
            (T::Float, "[F:inf]"),
            (T::DateTime, "[DT:13/01/2020 00:00:00.0000000]"),
            (T::DateTime, "[DT:yesterday]"),
            (T::DateTime, "[DT:1/31/2029\n23:59:60.1234567]"),
            (T::DateTime2, "[DT:12/31/2016 23:59:60]"),
            (T::Date, "[DT:12/31/2016 23:59:60]"),
            (T::VarBinary(None), "[B:%%%]"),
            (T::Decimal(5, 2), "[D:1234.5]"),
            (T::Decimal(5, 2), "[D:1.234]"),
            (T::UniqueIdentifier, "[G:not-a-guid]"),
        ] {
            assert!(
                matches!(
                    decode(ty, true, Some(raw)),
                    Err(ValueError::Unparsable { .. })
                ),
                "{ty} {raw}"
            );
        }
    }

    #[test]
    fn text_length_counts_utf16_units() {
        assert!(decode(T::NVarChar(Some(2)), true, Some("ab")).is_ok());
        assert!(decode(T::NVarChar(Some(2)), true, Some("æø")).is_ok());
        assert_eq!(
            decode(T::NVarChar(Some(2)), true, Some("abc")),
            Err(ValueError::TooLong {
                ty: T::NVarChar(Some(2)),
                len: 3
            })
        );
        // One emoji is two UTF-16 code units.
        assert!(decode(T::NVarChar(Some(1)), true, Some("😀")).is_err());
    }

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(
            decode(T::Decimal(10, 2), true, Some("[D:-0012.50]")),
            Ok(Value::Decimal("-12.5".into()))
        );
        assert_eq!(
            decode(T::Decimal(10, 2), true, Some("-0.00")),
            Ok(Value::Decimal("0".into()))
        );
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let cases = [
            (T::Int, Value::Int(-7)),
            (T::SmallInt, Value::SmallInt(300)),
            (T::BigInt, Value::BigInt(i64::MIN)),
            (T::Bit, Value::Bit(true)),
            (T::Float, Value::Float(0.1)),
            (T::Float, Value::Float(-1.0e-300)),
            (T::DateTime, Value::DateTime(dt("1760-01-01 00:00:00"))),
            (
                T::DateTime2,
                Value::DateTime(dt("9999-12-31 23:59:59.9999999")),
            ),
            (T::NVarChar(None), Value::Text("[I:1] ünï 😀".into())),
            (T::VarBinary(None), Value::Binary(vec![0, 159, 146, 150])),
            (T::UniqueIdentifier, Value::Uuid(Uuid::nil())),
            (T::Decimal(18, 4), Value::Decimal("-3.1415".into())),
        ];
        for (ty, v) in cases {
            let wire = v.encode();
            assert_eq!(
                decode(ty, true, wire.as_deref()),
                Ok(v.clone()),
                "{ty} {wire:?}"
            );
        }
    }

    /// Both datetime paths on one input: the fast path may decline, but when it answers it must
    /// agree with chrono's format strings.
    fn assert_paths_agree(s: &str) {
        if let Some(fast) = parse_superoffice_datetime(s) {
            assert_eq!(Some(fast), parse_datetime_with_formats(s), "{s:?}");
        }
        assert_eq!(parse_datetime(s), parse_datetime_with_formats(s), "{s:?}");
    }

    #[test]
    fn the_datetime_fast_path_reads_superoffice_values() {
        for s in [
            "05/18/2020 10:40:43.0000000",
            "01/01/1760 00:00:00.0000000",
            "12/31/9999 23:59:59.9999999",
            "02/29/2024 12:00:00",
            "01/01/0001 00:00:00.1",
            "07/04/2021 08:09:10.123456789",
        ] {
            assert!(parse_superoffice_datetime(s).is_some(), "{s}");
            assert_paths_agree(s);
        }
    }

    #[test]
    fn the_datetime_fast_path_declines_other_shapes_and_bad_fields() {
        for s in [
            "02/30/2021 00:00:00",
            "13/01/2020 00:00:00.0000000",
            "00/10/2020 00:00:00",
            "01/01/2020 24:00:00",
            "01/01/2020 23:60:00",
            "01/01/2020 23:59:60",
            "01/01/2020 00:00:00.",
            "01/01/2020 00:00:00.1234567890",
            "01/01/2020 00:00:00,5",
            "1/1/2020 00:00:00",
            "01/01/2020 0:00:00",
            "01/01/2020",
            "2020-01-01T10:00:00.5",
            "2020-01-01 10:00:00",
            "01/01/2020 00:00:00.00x",
            "01/01/20x0 00:00:00",
            "",
        ] {
            assert_eq!(parse_superoffice_datetime(s), None, "{s}");
            assert_paths_agree(s);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Well-formed SuperOffice datetimes, in range or not: the fast path answers exactly
        /// what chrono does.
        #[test]
        fn the_datetime_fast_path_agrees_with_chrono(
            month in 0u32..=13,
            day in 0u32..=32,
            year in 0u32..=9999,
            hour in 0u32..=24,
            minute in 0u32..=60,
            second in 0u32..=60,
            fraction in proptest::option::of("[0-9]{1,10}"),
        ) {
            let mut s = format!("{month:02}/{day:02}/{year:04} {hour:02}:{minute:02}:{second:02}");
            if let Some(fraction) = fraction {
                s.push('.');
                s.push_str(&fraction);
            }
            assert_paths_agree(&s);
        }

        /// Arbitrary text over the characters datetimes are made of.
        #[test]
        fn both_datetime_paths_agree_on_any_text(s in "[0-9/: .T-]{0,32}") {
            assert_paths_agree(&s);
        }
    }

    #[test]
    fn messagepack_round_trip_keeps_datetimes_exact() {
        let v = vec![
            Value::DateTime(dt("0001-01-01 00:00:00")),
            Value::DateTime(dt("9999-12-31 23:59:59.9999999")),
            Value::Binary(vec![1, 2, 3]),
            Value::Null,
        ];
        let bytes = rmp_serde::to_vec(&v).unwrap();
        let back: Vec<Value> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, v);
    }
}
