//! How a [`Value`] travels on the queue (and rests in a parked batch): NULL as MessagePack `nil`,
//! any other value as an array of a one-byte type tag and its payload — `[1, 42]` for
//! `Int(42)`, `[8, seconds, nanoseconds]` for a datetime. A value costs one or two bytes more
//! than its payload, where the externally tagged form of earlier releases (`{"Int": 42}`,
//! `"Null"`) spent the variant's name on every value, about a quarter of a RowData message.
//!
//! Decoding accepts both forms, so messages queued, dead-lettered or parked by an earlier release
//! still apply after an upgrade. Upgrade the workers before the receivers: an earlier worker reads
//! only the old form, and dead-letters a message it cannot read (README, "Upgrading").

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Value;

/// The type tags of the compact form. Never renumber one: queued messages carry them.
mod tag {
    pub const INT: u8 = 1;
    pub const SMALL_INT: u8 = 2;
    pub const TINY_INT: u8 = 3;
    pub const BIG_INT: u8 = 4;
    pub const BIT: u8 = 5;
    pub const FLOAT: u8 = 6;
    pub const REAL: u8 = 7;
    /// Seconds and nanoseconds since the Unix epoch: exact over years 1–9999.
    pub const DATE_TIME: u8 = 8;
    /// Days since 0001-01-01 (day 1).
    pub const DATE: u8 = 9;
    pub const TEXT: u8 = 10;
    pub const BINARY: u8 = 11;
    /// The 16 bytes, as binary.
    pub const UUID: u8 = 12;
    /// The canonical decimal text (`-12.50`).
    pub const DECIMAL: u8 = 13;
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Int(v) => (tag::INT, v).serialize(s),
            Value::SmallInt(v) => (tag::SMALL_INT, v).serialize(s),
            Value::TinyInt(v) => (tag::TINY_INT, v).serialize(s),
            Value::BigInt(v) => (tag::BIG_INT, v).serialize(s),
            Value::Bit(v) => (tag::BIT, v).serialize(s),
            Value::Float(v) => (tag::FLOAT, v).serialize(s),
            Value::Real(v) => (tag::REAL, v).serialize(s),
            Value::DateTime(v) => {
                let utc = v.and_utc();
                let mut t = s.serialize_tuple(3)?;
                t.serialize_element(&tag::DATE_TIME)?;
                t.serialize_element(&utc.timestamp())?;
                t.serialize_element(&utc.timestamp_subsec_nanos())?;
                t.end()
            }
            Value::Date(v) => (tag::DATE, v.num_days_from_ce()).serialize(s),
            Value::Text(v) => (tag::TEXT, v).serialize(s),
            Value::Binary(v) => (tag::BINARY, serde_bytes::Bytes::new(v)).serialize(s),
            Value::Uuid(v) => (tag::UUID, serde_bytes::Bytes::new(v.as_bytes())).serialize(s),
            Value::Decimal(v) => (tag::DECIMAL, v).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column value: nil or [type tag, payload]")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    /// The old form's NULL.
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        match s {
            "Null" => Ok(Value::Null),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }

    /// The old form of any other value: `{variant: payload}`.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let variant: String = map
            .next_key()?
            .ok_or_else(|| de::Error::invalid_length(0, &"one entry"))?;
        let value = match variant.as_str() {
            "Null" => {
                map.next_value::<()>()?;
                Value::Null
            }
            "Int" => Value::Int(map.next_value()?),
            "SmallInt" => Value::SmallInt(map.next_value()?),
            "TinyInt" => Value::TinyInt(map.next_value()?),
            "BigInt" => Value::BigInt(map.next_value()?),
            "Bit" => Value::Bit(map.next_value()?),
            "Float" => Value::Float(map.next_value()?),
            "Real" => Value::Real(map.next_value()?),
            "DateTime" => {
                let (secs, nanos): (i64, u32) = map.next_value()?;
                Value::DateTime(datetime(secs, nanos)?)
            }
            "Date" => Value::Date(map.next_value()?),
            "Text" => Value::Text(map.next_value()?),
            "Binary" => Value::Binary(map.next_value::<serde_bytes::ByteBuf>()?.into_vec()),
            "Uuid" => Value::Uuid(map.next_value()?),
            "Decimal" => Value::Decimal(map.next_value()?),
            other => return Err(de::Error::unknown_variant(other, VARIANTS)),
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &"one entry"));
        }
        Ok(value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let tag: u8 = next(&mut seq, 0)?;
        let value = match tag {
            tag::INT => Value::Int(next(&mut seq, 1)?),
            tag::SMALL_INT => Value::SmallInt(next(&mut seq, 1)?),
            tag::TINY_INT => Value::TinyInt(next(&mut seq, 1)?),
            tag::BIG_INT => Value::BigInt(next(&mut seq, 1)?),
            tag::BIT => Value::Bit(next(&mut seq, 1)?),
            tag::FLOAT => Value::Float(next(&mut seq, 1)?),
            tag::REAL => Value::Real(next(&mut seq, 1)?),
            tag::DATE_TIME => {
                let secs: i64 = next(&mut seq, 1)?;
                let nanos: u32 = next(&mut seq, 2)?;
                Value::DateTime(datetime(secs, nanos)?)
            }
            tag::DATE => {
                let days: i32 = next(&mut seq, 1)?;
                let date = NaiveDate::from_num_days_from_ce_opt(days)
                    .ok_or_else(|| de::Error::custom("date out of range"))?;
                Value::Date(date)
            }
            tag::TEXT => Value::Text(next(&mut seq, 1)?),
            tag::BINARY => Value::Binary(next::<serde_bytes::ByteBuf, _>(&mut seq, 1)?.into_vec()),
            tag::UUID => {
                let bytes: serde_bytes::ByteBuf = next(&mut seq, 1)?;
                let uuid = Uuid::from_slice(&bytes).map_err(de::Error::custom)?;
                Value::Uuid(uuid)
            }
            tag::DECIMAL => Value::Decimal(next(&mut seq, 1)?),
            other => {
                return Err(de::Error::custom(format!("unknown value type tag {other}")));
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "a value of type tag {tag} with more than its payload"
            )));
        }
        Ok(value)
    }
}

/// The element at `index` of a value's array, which must be there.
fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &"a type tag and its payload"))
}

fn datetime<E: de::Error>(secs: i64, nanos: u32) -> Result<NaiveDateTime, E> {
    DateTime::from_timestamp(secs, nanos)
        .map(|dt| dt.naive_utc())
        .ok_or_else(|| E::custom("datetime out of range"))
}

/// The variant names of the old form.
const VARIANTS: &[&str] = &[
    "Null", "Int", "SmallInt", "TinyInt", "BigInt", "Bit", "Float", "Real", "DateTime", "Date",
    "Text", "Binary", "Uuid", "Decimal",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::NaiveTime;
    use proptest::prelude::*;

    use super::*;
    use crate::wire;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// The values of `testdata/wire/values-tagged.msgpack`, which holds them as the previous
    /// release encoded them.
    fn fixture_values() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Int(i32::MIN),
            Value::SmallInt(-12),
            Value::TinyInt(255),
            Value::BigInt(9_007_199_254_740_993),
            Value::Bit(true),
            Value::Float(-0.125),
            Value::Real(3.5),
            Value::DateTime(date(1760, 1, 1).and_time(NaiveTime::MIN)),
            Value::DateTime(
                date(2021, 9, 16)
                    .and_hms_nano_opt(13, 1, 21, 123_456_700)
                    .unwrap(),
            ),
            Value::Date(date(9999, 12, 31)),
            Value::Text("Ærlig \u{1F600} \"x\"".into()),
            Value::Text(String::new()),
            Value::Binary(vec![0, 1, 254, 255]),
            Value::Uuid(Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap()),
            Value::Decimal("-12.50".into()),
        ]
    }

    const TAGGED: &[u8] = include_bytes!("../../../testdata/wire/values-tagged.msgpack");

    #[test]
    fn values_queued_by_the_previous_release_still_decode() {
        let decoded: Vec<Value> = wire::decode(TAGGED).unwrap();
        assert_eq!(decoded, fixture_values());
    }

    #[test]
    fn every_kind_of_value_round_trips_in_the_compact_form_at_a_fraction_of_the_size() {
        let values = fixture_values();
        let bytes = wire::encode(&values).unwrap();
        assert_eq!(wire::decode::<Vec<Value>>(&bytes).unwrap(), values);
        assert_eq!(bytes[3], 0xc0, "NULL is a bare nil");
        assert!(
            bytes.len() * 10 < TAGGED.len() * 7,
            "{} bytes, against {} in the tagged form",
            bytes.len(),
            TAGGED.len()
        );
    }

    #[test]
    fn the_extremes_of_every_range_round_trip_exactly() {
        let values = vec![
            Value::DateTime(date(1, 1, 1).and_time(NaiveTime::MIN)),
            Value::DateTime(
                date(9999, 12, 31)
                    .and_hms_nano_opt(23, 59, 59, 999_999_900)
                    .unwrap(),
            ),
            Value::Date(date(1, 1, 1)),
            Value::Int(i32::MAX),
            Value::BigInt(i64::MIN),
            Value::SmallInt(i16::MIN),
            Value::TinyInt(0),
            Value::Float(f64::MAX),
            Value::Real(f32::MIN_POSITIVE),
            Value::Binary(Vec::new()),
        ];
        let bytes = wire::encode(&values).unwrap();
        assert_eq!(wire::decode::<Vec<Value>>(&bytes).unwrap(), values);
    }

    #[test]
    fn malformed_values_are_errors() {
        let bad = [
            rmp_serde::to_vec(&(99u8, 1)).unwrap(),         // unknown tag
            rmp_serde::to_vec(&(tag::INT,)).unwrap(),       // no payload
            rmp_serde::to_vec(&(tag::INT, 1, 2)).unwrap(),  // more than its payload
            rmp_serde::to_vec(&(tag::INT, "one")).unwrap(), // wrong payload type
            rmp_serde::to_vec(&(tag::DATE, i32::MAX)).unwrap(), // out of range
            rmp_serde::to_vec(&(tag::UUID, serde_bytes::Bytes::new(&[1, 2]))).unwrap(),
            rmp_serde::to_vec("Nul").unwrap(),
            rmp_serde::to_vec_named(&BTreeMap::from([("Nope", 1)])).unwrap(),
            rmp_serde::to_vec_named(&BTreeMap::from([("Int", 1), ("SmallInt", 2)])).unwrap(),
            rmp_serde::to_vec_named(&BTreeMap::<&str, i32>::new()).unwrap(),
        ];
        for bytes in bad {
            assert!(wire::decode::<Value>(&bytes).is_err(), "{bytes:?}");
        }
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let datetime = (-62_135_596_800i64..253_402_300_800, 0u32..1_000_000_000)
            .prop_map(|(s, n)| Value::DateTime(datetime::<de::value::Error>(s, n).unwrap()));
        prop_oneof![
            Just(Value::Null),
            any::<i32>().prop_map(Value::Int),
            any::<i16>().prop_map(Value::SmallInt),
            any::<u8>().prop_map(Value::TinyInt),
            any::<i64>().prop_map(Value::BigInt),
            any::<bool>().prop_map(Value::Bit),
            any::<f64>()
                .prop_filter("NaN has no equal", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<f32>()
                .prop_filter("NaN has no equal", |f| !f.is_nan())
                .prop_map(Value::Real),
            datetime,
            (1i32..=3_652_059)
                .prop_map(|d| Value::Date(NaiveDate::from_num_days_from_ce_opt(d).unwrap())),
            ".*".prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(Value::Binary),
            any::<u128>().prop_map(|u| Value::Uuid(Uuid::from_u128(u))),
            "-?[0-9]{1,20}(\\.[0-9]{1,10})?".prop_map(Value::Decimal),
        ]
    }

    proptest! {
        #[test]
        fn any_row_round_trips(row in prop::collection::vec(any_value(), 0..20)) {
            let bytes = wire::encode(&row).unwrap();
            prop_assert_eq!(wire::decode::<Vec<Value>>(&bytes).unwrap(), row);
        }
    }
}
