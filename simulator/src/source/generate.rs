//! Deterministic column values: every value is a pure function of the tenant seed, the table, the
//! row key, the row's variant (bumped by each update) and the column, fitted to the column's type.
//!
//! The data is meant to break things: NULLs wherever a column allows them, unicode (Norwegian,
//! German, CJK, emoji — astral characters count as two UTF-16 units against `nvarchar(n)`), text
//! that looks like a wrapped value (`[I:1]`), XML specials, CR/LF, surrounding blanks, long text
//! in `nvarchar(max)`/`ntext`, binary of all sizes, extreme numbers, and SuperOffice's
//! 1760-01-01 "empty date".

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;
use uuid::Uuid;

use super::prng::Rng;

/// SuperOffice's "no date" value.
pub fn empty_date() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1760, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// What generation needs to know about a column.
#[derive(Debug, Clone, Copy)]
pub struct ColumnShape<'a> {
    pub name: &'a str,
    pub name_hash: u64,
    pub ty: ColumnType,
    pub nullable: bool,
}

/// The value of one non-key column of one row version.
pub fn value(seed: u64, table_hash: u64, key: i32, variant: u32, column: ColumnShape<'_>) -> Value {
    let mut rng = Rng::from_parts(&[
        seed,
        table_hash,
        key as u64,
        u64::from(variant),
        column.name_hash,
    ]);
    if column.nullable && rng.chance(12) {
        return Value::Null;
    }
    match column.ty {
        ColumnType::Int => Value::Int(int(&mut rng, column.name)),
        ColumnType::SmallInt => Value::SmallInt(small(&mut rng)),
        ColumnType::TinyInt => Value::TinyInt(rng.below(256) as u8),
        ColumnType::BigInt => Value::BigInt(rng.next_u64() as i64),
        ColumnType::Bit => Value::Bit(rng.chance(50)),
        ColumnType::Float => Value::Float(float(&mut rng)),
        ColumnType::Real => Value::Real(rng.range_i64(-10_000_000, 10_000_000) as f32 / 64.0),
        ColumnType::DateTime | ColumnType::DateTime2 | ColumnType::SmallDateTime => {
            Value::DateTime(datetime(&mut rng, column.ty != ColumnType::SmallDateTime))
        }
        ColumnType::Date => Value::Date(datetime(&mut rng, false).date()),
        ColumnType::NVarChar(n) | ColumnType::VarChar(n) => Value::Text(fit(
            text(&mut rng, column.name, n.is_none()),
            n.map(usize::from),
        )),
        ColumnType::NChar(n) | ColumnType::Char(n) => {
            let s = fit(text(&mut rng, column.name, false), Some(usize::from(n)));
            // Fixed-width types come back blank-padded.
            let pad = usize::from(n).saturating_sub(s.encode_utf16().count());
            Value::Text(s + &" ".repeat(pad))
        }
        ColumnType::NText | ColumnType::Text => Value::Text(text(&mut rng, column.name, true)),
        ColumnType::VarBinary(n) => Value::Binary(binary(&mut rng, n.map(usize::from))),
        ColumnType::Image => Value::Binary(binary(&mut rng, None)),
        ColumnType::UniqueIdentifier => {
            Value::Uuid(Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()))
        }
        ColumnType::Decimal(p, s) => Value::Decimal(decimal(&mut rng, p, s)),
    }
}

fn int(rng: &mut Rng, name: &str) -> i32 {
    let id_like = name.ends_with("_id") || name.ends_with("_idx") || name.ends_with("id");
    match rng.below(100) {
        0..=59 if id_like => rng.range_i64(1, 50_000) as i32,
        0..=59 => rng.range_i64(0, 1_000) as i32,
        60..=74 => *rng.pick(&[-1, 0, 1]),
        75..=96 => rng.next_u64() as i32,
        _ => *rng.pick(&[i32::MIN, i32::MAX]),
    }
}

fn small(rng: &mut Rng) -> i16 {
    match rng.below(100) {
        0..=69 => *rng.pick(&[0, 1]),
        70..=79 => -1,
        80..=95 => rng.range_i64(2, 400) as i16,
        _ => *rng.pick(&[i16::MIN, i16::MAX]),
    }
}

fn float(rng: &mut Rng) -> f64 {
    match rng.below(100) {
        0..=59 => rng.range_i64(0, 10_000_000) as f64 / 100.0,
        60..=69 => 0.0,
        70..=79 => -(rng.range_i64(1, 1_000_000) as f64) / 100.0,
        80..=89 => rng.unit(),
        90..=95 => rng.unit() * 1e15,
        _ => *rng.pick(&[0.1, 1e-300, -1e300, f64::MAX, f64::MIN_POSITIVE]),
    }
}

fn datetime(rng: &mut Rng, with_millis: bool) -> NaiveDateTime {
    if rng.chance(8) {
        return empty_date();
    }
    // 1990-01-01 .. 2035-12-31, whole seconds, sometimes milliseconds.
    let secs = rng.range_i64(631_152_000, 2_082_758_399);
    let millis = if with_millis && rng.chance(20) {
        rng.below(1000) as u32
    } else {
        0
    };
    DateTime::from_timestamp(secs, millis * 1_000_000)
        .map(|d| d.naive_utc())
        .unwrap_or_else(empty_date)
}

const FIRST: &[&str] = &[
    "Leon",
    "Dennis",
    "Åse",
    "Jørgen",
    "Marie-Claire",
    "Zoë",
    "Øystein",
    "Björn",
    "Siân",
    "Γιώργος",
    "Александр",
    "美咲",
    "محمد",
    "José",
    "O'Brien",
];
const LAST: &[&str] = &[
    "Nonnast",
    "Kessler",
    "Ødegård",
    "Müller",
    "Straße",
    "Lindqvist",
    "van der Berg",
    "Hansen",
    "García Márquez",
    "田中",
    "Smith & Sons",
    "Æbeltoft",
];
const WORDS: &[&str] = &[
    "meeting",
    "follow-up",
    "offer",
    "invoice",
    "kontrakt",
    "møte",
    "Übergabe",
    "réunion",
    "出荷",
    "🚀",
    "😀👍",
    "<b>bold</b>",
    "a & b",
    "\"quoted\"",
    "it's",
    "[I:1]",
    "[DT:01/01/1760]",
    "[B:AAEC]",
    "1 < 2 > 0",
    "tab\there",
    "line\r\nbreak",
    "line\nfeed",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "e\u{301}",
];

/// Natural-length text for a column; truncation to the declared length happens in [`fit`].
fn text(rng: &mut Rng, name: &str, long: bool) -> String {
    if rng.chance(4) {
        return String::new();
    }
    if rng.chance(2) {
        return (*rng.pick(&[" ", "  leading", "trailing  ", " both "])).to_owned();
    }
    if name.contains("mail") {
        return format!(
            "{}.{}@example.{}",
            rng.pick(FIRST),
            rng.pick(LAST).replace(' ', ""),
            rng.pick(&["com", "no", "de"])
        );
    }
    if name.contains("name") && !long {
        return format!("{}, {}", rng.pick(LAST), rng.pick(FIRST));
    }
    let words = if long && rng.chance(2) {
        // Long text: 1 000 to 10 000 words (tens of KB) in an nvarchar(max)/ntext.
        rng.range_i64(1_000, 10_000) as usize
    } else {
        rng.range_i64(1, 12) as usize
    };
    let mut out = String::with_capacity(words * 8);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        let word: &&str = rng.pick(WORDS);
        out.push_str(word);
    }
    out
}

/// Cuts `s` to at most `max` UTF-16 code units (SQL Server's measure for `nvarchar(n)`), never
/// splitting a character.
pub fn fit(s: String, max: Option<usize>) -> String {
    let Some(max) = max else { return s };
    // A character never takes more UTF-16 units than UTF-8 bytes.
    if s.len() <= max {
        return s;
    }
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return s[..i].to_owned();
        }
    }
    s
}

fn binary(rng: &mut Rng, max: Option<usize>) -> Vec<u8> {
    // Never empty: `[B:]` is how an empty payload would travel, and an empty non-text value is
    // NULL on the wire (the value codec's rule), so an empty binary cannot round-trip.
    let len = match rng.below(100) {
        0..=89 => rng.range_i64(1, 2_048) as usize,
        90..=97 => rng.range_i64(2_048, 65_536) as usize,
        _ => rng.range_i64(65_536, 400_000) as usize,
    };
    let len = max.map_or(len, |m| len.min(m)).max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn decimal(rng: &mut Rng, precision: u8, scale: u8) -> String {
    let int_digits = u32::from(precision - scale).min(15);
    let int = rng.below(10u64.pow(int_digits));
    let frac_digits = u32::from(scale).min(6);
    let frac = rng.below(10u64.pow(frac_digits));
    let sign = if rng.chance(20) && (int > 0 || frac > 0) {
        "-"
    } else {
        ""
    };
    let frac = format!("{frac:0width$}", width = frac_digits as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::value::decode;

    fn shape(name: &str, ty: ColumnType, nullable: bool) -> ColumnShape<'_> {
        ColumnShape {
            name,
            name_hash: super::super::prng::hash_str(name),
            ty,
            nullable,
        }
    }

    #[test]
    fn values_are_deterministic_and_depend_on_every_input() {
        let c = shape("name", ColumnType::NVarChar(Some(219)), false);
        let v = |seed, t, k, var| value(seed, t, k, var, c);
        assert_eq!(v(1, 2, 3, 0), v(1, 2, 3, 0));
        let differs = |f: &dyn Fn(u64) -> Value| (0..20).any(|i| f(i) != f(i + 1));
        assert!(differs(&|i| v(i, 2, 3, 0)));
        assert!(differs(&|i| v(1, i, 3, 0)));
        assert!(differs(&|i| v(1, 2, i as i32, 0)));
        assert!(differs(&|i| v(1, 2, 3, i as u32)));
    }

    #[test]
    fn every_value_survives_the_wire_encoding_and_fits_its_column() {
        let types = [
            ColumnType::Int,
            ColumnType::SmallInt,
            ColumnType::DateTime,
            ColumnType::Float,
            ColumnType::NVarChar(Some(5)),
            ColumnType::NVarChar(Some(255)),
            ColumnType::NVarChar(None),
            ColumnType::NText,
            ColumnType::VarBinary(None),
            ColumnType::VarBinary(Some(16)),
            ColumnType::BigInt,
            ColumnType::Bit,
            ColumnType::Real,
            ColumnType::Date,
            ColumnType::NChar(4),
            ColumnType::UniqueIdentifier,
            ColumnType::Decimal(10, 2),
        ];
        let mut nulls = 0;
        let mut empty_dates = 0;
        let mut astral = 0;
        let mut long = 0;
        for ty in types {
            for nullable in [false, true] {
                for key in 0..400 {
                    let v = value(7, 11, key, 0, shape("col", ty, nullable));
                    nulls += usize::from(v == Value::Null);
                    empty_dates += usize::from(v == Value::DateTime(empty_date()));
                    if let Value::Text(s) = &v {
                        astral += usize::from(s.chars().any(|c| c.len_utf16() == 2));
                        long += usize::from(s.len() > 4000);
                    }
                    if !nullable {
                        assert_ne!(v, Value::Null, "{ty}");
                    }
                    let wire = v.encode();
                    assert_eq!(decode(ty, nullable, wire.as_deref()), Ok(v), "{ty}");
                }
            }
        }
        assert!(nulls > 100, "{nulls} NULLs");
        assert!(empty_dates > 10, "{empty_dates} empty dates");
        assert!(astral > 10, "{astral} texts with astral characters");
        assert!(long > 3, "{long} long texts");
    }

    #[test]
    fn fit_counts_utf16_units_and_keeps_characters_whole() {
        assert_eq!(fit("abcdef".into(), Some(3)), "abc");
        assert_eq!(fit("a😀b".into(), Some(2)), "a");
        assert_eq!(fit("a😀b".into(), Some(3)), "a😀");
        assert_eq!(fit("æøå".into(), None), "æøå");
    }
}
