//! Deterministic, realistic column values for SuperOffice tables.
//!
//! A row depends only on (table, key, version), never on the order rows are generated in, so an
//! update set regenerated in another run is the same bytes, and two measurements of one run see
//! exactly the same rows. Values look like a CRM's: foreign keys, small status codes, the
//! `1760-01-01` "empty date", amounts with two decimals, names and addresses in several scripts,
//! empty strings (SuperOffice's usual default) and NULLs in nullable columns.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use mirror_common::schema::{Column, ColumnType, TableSchema};
use mirror_common::value::Value;
use uuid::Uuid;

/// SplitMix64: tiny, fast, and good enough to spread benchmark values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The generator of one row version: independent of every other row's.
    pub fn for_row(table: &str, key: i64, version: u32) -> Rng {
        let mut seed = 0xcbf2_9ce4_8422_2325_u64;
        for b in table.bytes() {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        seed ^= (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        seed ^= u64::from(version).wrapping_mul(0xd1b5_4a32_d192_ed03);
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.saturating_sub(lo).saturating_add(1).max(1) as u64;
        lo.saturating_add(self.below(span) as i64)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Words of a Nordic/European CRM, with the scripts SuperOffice customers type (all in the Basic
/// Multilingual Plane, so a character is one UTF-16 unit as `nvarchar(n)` counts them).
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "Møte", "med", "kunde", "oppfølging", "tilbud", "kontrakt", "Angebot", "Besprechung",
    "réunion", "devis", "meeting", "follow-up", "contract", "renewal", "support", "faktura",
    "Ålesund", "Bjørn", "Müller", "Straße", "François", "Søren", "Zürich", "Kraków", "Łódź",
    "São", "Paulo", "Göteborg", "Ærø", "Øyvind", "Ødegård", "naïve", "café", "Ελλάδα", "Москва",
    "東京", "株式会社", "AS", "GmbH", "AB", "Ltd", "Oslo", "Bergen", "Stockholm", "München", "Lyon",
    "Kunde", "prosjekt", "salg", "status", "✓", "Q3", "2024", "#4711",
];

#[rustfmt::skip]
const FIRST: &[&str] = &[
    "ola", "kari", "jürgen", "anna", "françois", "søren", "åse", "øyvind", "lena", "per",
];
#[rustfmt::skip]
const LAST: &[&str] = &[
    "nordmann", "müller", "dupont", "hansen", "ødegård", "berg", "lindström", "kowalski",
];
#[rustfmt::skip]
const DOMAINS: &[&str] = &[
    "example.no", "firma.de", "société.fr", "company.com", "bedrift.no",
];

/// SuperOffice's "empty date".
fn empty_date() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1760, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// A full row (every column) of `schema` for `key`, version `version` (0 = first insert).
pub fn row(schema: &TableSchema, key: i64, version: u32) -> Vec<Value> {
    let mut rng = Rng::for_row(&schema.name, key, version);
    let mut values = Vec::with_capacity(schema.columns.len());
    values.push(key_value(schema.columns[0].ty, key));
    for column in &schema.columns[1..] {
        values.push(value(column, &mut rng));
    }
    values
}

/// The key column's value (column 0 is always an integer key).
pub fn key_value(ty: ColumnType, key: i64) -> Value {
    match ty {
        ColumnType::SmallInt => Value::SmallInt(key as i16),
        ColumnType::TinyInt => Value::TinyInt(key as u8),
        ColumnType::BigInt => Value::BigInt(key),
        _ => Value::Int(key as i32),
    }
}

/// One value of a non-key column.
pub fn value(column: &Column, rng: &mut Rng) -> Value {
    if column.nullable && rng.chance(8) {
        return Value::Null;
    }
    let name = column.name.as_str();
    match column.ty {
        ColumnType::Int => Value::Int(int(name, rng) as i32),
        ColumnType::SmallInt => Value::SmallInt(small(rng)),
        ColumnType::TinyInt => Value::TinyInt(rng.below(256) as u8),
        ColumnType::BigInt => Value::BigInt(int(name, rng) * 1_000 + rng.between(0, 999)),
        ColumnType::Bit => Value::Bit(rng.chance(30)),
        ColumnType::Float => Value::Float(amount(rng)),
        ColumnType::Real => Value::Real(amount(rng) as f32),
        ColumnType::DateTime => Value::DateTime(datetime(rng, 300)),
        ColumnType::DateTime2 => Value::DateTime(datetime(rng, 10_000_000)),
        ColumnType::SmallDateTime => Value::DateTime(datetime(rng, 0)),
        ColumnType::Date => Value::Date(datetime(rng, 0).date()),
        ColumnType::NVarChar(n) | ColumnType::VarChar(n) => Value::Text(text(name, n, rng)),
        ColumnType::NChar(n) | ColumnType::Char(n) => {
            let mut s = text(name, Some(n), rng);
            let pad = usize::from(n).saturating_sub(s.chars().count());
            s.extend(std::iter::repeat_n(' ', pad));
            Value::Text(s)
        }
        ColumnType::NText | ColumnType::Text => Value::Text(text(name, None, rng)),
        ColumnType::VarBinary(_) | ColumnType::Image => {
            let len = rng.between(16, 512) as usize;
            Value::Binary((0..len).map(|_| rng.below(256) as u8).collect())
        }
        ColumnType::UniqueIdentifier => {
            Value::Uuid(Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()))
        }
        ColumnType::Decimal(p, s) => Value::Decimal(decimal(p, s, rng)),
    }
}

/// Foreign keys (`*_id`, associates) are spread over a large range; other integers are mostly
/// small codes and counters, with SuperOffice's `-1` and `0` defaults common.
fn int(name: &str, rng: &mut Rng) -> i64 {
    let reference = name.ends_with("_id") || name.contains("associate") || name.contains("_by");
    match rng.below(10) {
        0 => -1,
        1 => 0,
        _ if reference => rng.between(1, 250_000),
        2..=7 => rng.between(1, 100),
        _ => rng.between(100, 2_000_000),
    }
}

fn small(rng: &mut Rng) -> i16 {
    match rng.below(10) {
        0 => -1,
        1..=4 => 0,
        _ => rng.between(1, 9) as i16,
    }
}

/// A quarter zero, the rest amounts with two decimals up to a million.
fn amount(rng: &mut Rng) -> f64 {
    if rng.chance(25) {
        0.0
    } else {
        rng.between(0, 100_000_000) as f64 / 100.0
    }
}

/// 15% SuperOffice's empty date, the rest 2005–2025. `ticks_per_second` is the type's precision
/// (SQL Server `datetime` keeps 1/300 s; 0 means whole minutes).
fn datetime(rng: &mut Rng, ticks_per_second: u32) -> NaiveDateTime {
    if rng.chance(15) {
        return empty_date();
    }
    let start = 1_104_537_600_i64; // 2005-01-01T00:00:00Z
    let mut secs = start + rng.between(0, 20 * 365 * 86_400);
    let nanos = match ticks_per_second {
        0 => {
            secs -= secs % 60;
            0
        }
        t => {
            let tick = rng.below(u64::from(t)) as u32;
            // Whole milliseconds for datetime's 1/300 s ticks, 100 ns for datetime2.
            if t == 300 {
                tick * 10 / 3 * 1_000_000
            } else {
                tick * 100
            }
        }
    };
    DateTime::from_timestamp(secs, nanos)
        .map(|d| d.naive_utc())
        .unwrap_or_else(empty_date)
}

/// Text of a realistic length for the column: codes for short columns, names, e-mail addresses
/// and titles for medium ones, descriptions for long ones; 10% empty. Never longer than `max`
/// characters.
fn text(name: &str, max: Option<u16>, rng: &mut Rng) -> String {
    if rng.chance(10) {
        return String::new();
    }
    let cap = usize::from(max.unwrap_or(u16::MAX));
    let s = if cap <= 12 {
        let len = rng.between(1, cap as i64) as usize;
        (0..len)
            .map(|_| char::from(b'A' + rng.below(26) as u8))
            .collect()
    } else if (name.contains("email") || name.contains("address")) && cap <= 300 {
        format!(
            "{}.{}@{}",
            rng.pick(FIRST),
            rng.pick(LAST),
            rng.pick(DOMAINS)
        )
    } else if name.contains("uid") {
        format!("{:032X}@superoffice.com", u128::from(rng.next_u64()))
    } else if cap <= 300 {
        {
            let target = rng.between(4, 48) as usize;
            words(rng, target)
        }
    } else {
        {
            let target = rng.between(20, 900) as usize;
            words(rng, target)
        }
    };
    truncate(s, cap)
}

fn words(rng: &mut Rng, target: usize) -> String {
    let mut s = String::with_capacity(target + 16);
    while s.chars().count() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max_chars) {
        s.truncate(at);
    }
    s
}

/// A decimal in canonical form that fits `decimal(p, s)`.
fn decimal(p: u8, s: u8, rng: &mut Rng) -> String {
    let int_digits = u32::from(p.saturating_sub(s)).min(12);
    let int_part = rng.below(10u64.pow(int_digits));
    let frac_digits = u32::from(s).min(12);
    if frac_digits == 0 {
        return int_part.to_string();
    }
    let frac = rng.below(10u64.pow(frac_digits));
    format!("{int_part}.{frac:0width$}", width = frac_digits as usize)
}
