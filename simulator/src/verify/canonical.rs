//! Canonical bytes of a row and their checksum: the mirror's values and the source's are compared
//! through these, so two readers (PostgreSQL, SQL Server) that decode to the same [`Value`]s agree
//! whatever their native types are. Integers of every width compare as 64-bit numbers; every
//! variable-length value carries its length, so the encoding of a row is unambiguous.

use mirror_common::value::Value;

use crate::source::{FNV_OFFSET, fnv1a};

/// Appends one value's canonical bytes.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    let mut bytes = |tag: u8, payload: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(payload);
    };
    match value {
        Value::Null => bytes(0, &[]),
        Value::Int(v) => bytes(1, &i64::from(*v).to_le_bytes()),
        Value::SmallInt(v) => bytes(1, &i64::from(*v).to_le_bytes()),
        Value::TinyInt(v) => bytes(1, &i64::from(*v).to_le_bytes()),
        Value::BigInt(v) => bytes(1, &v.to_le_bytes()),
        Value::Bit(v) => bytes(2, &[u8::from(*v)]),
        Value::Float(v) => bytes(3, &v.to_bits().to_le_bytes()),
        Value::Real(v) => bytes(3, &f64::from(*v).to_bits().to_le_bytes()),
        Value::DateTime(v) => {
            let utc = v.and_utc();
            let mut payload = utc.timestamp().to_le_bytes().to_vec();
            payload.extend_from_slice(&utc.timestamp_subsec_nanos().to_le_bytes());
            bytes(4, &payload);
        }
        Value::Date(v) => bytes(5, v.to_string().as_bytes()),
        Value::Text(v) => bytes(6, v.as_bytes()),
        Value::Binary(v) => bytes(7, v),
        Value::Uuid(v) => bytes(8, v.as_bytes()),
        Value::Decimal(v) => bytes(9, v.as_bytes()),
    }
}

/// The checksum of a row's values, in column order.
pub fn checksum(values: &[Value]) -> u64 {
    let mut buffer = Vec::with_capacity(256);
    for value in values {
        encode_value(value, &mut buffer);
    }
    fnv1a(FNV_OFFSET, &buffer)
}

/// A short, printable form of a value for difference reports.
pub fn display(value: &Value) -> String {
    const MAX: usize = 60;
    let full = match value {
        Value::Null => "NULL".to_owned(),
        Value::Text(s) => format!("{s:?}"),
        Value::Binary(b) => format!("{} bytes {}", b.len(), hex_prefix(b)),
        other => other.encode().unwrap_or_default(),
    };
    match full.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &full[..i]),
        None => full,
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_equal_checksums_any_difference_changes_it() {
        let row = vec![
            Value::Int(1),
            Value::Text("a".into()),
            Value::Null,
            Value::Float(0.5),
        ];
        assert_eq!(checksum(&row), checksum(&row.clone()));
        let mut changed = row.clone();
        changed[1] = Value::Text("b".into());
        assert_ne!(checksum(&row), checksum(&changed));
        // Moving a boundary between values changes it too (lengths are part of the encoding).
        let a = [Value::Text("ab".into()), Value::Text("c".into())];
        let b = [Value::Text("a".into()), Value::Text("bc".into())];
        assert_ne!(checksum(&a), checksum(&b));
        // NULL and an empty string differ.
        assert_ne!(
            checksum(&[Value::Null]),
            checksum(&[Value::Text(String::new())])
        );
        // Integer widths do not matter, signs do.
        assert_eq!(checksum(&[Value::SmallInt(5)]), checksum(&[Value::Int(5)]));
        assert_ne!(checksum(&[Value::Int(-5)]), checksum(&[Value::Int(5)]));
    }

    #[test]
    fn display_is_short() {
        assert_eq!(display(&Value::Null), "NULL");
        assert_eq!(display(&Value::Int(3)), "[I:3]");
        assert!(display(&Value::Text("x".repeat(500))).chars().count() <= 61);
        assert_eq!(display(&Value::Binary(vec![1, 2])), "2 bytes 0102");
    }
}
