//! The bodies of the fuzz targets, as plain functions: `fuzz_targets/` hands them libFuzzer's
//! inputs, and `tests/seeds.rs` runs the seed corpus through them in an ordinary test.
//!
//! Each one panics only when a decoder breaks a promise: a panic inside a decoder, or a value that
//! does not survive being encoded and decoded again.

use mirror_common::batch;
use mirror_common::schema::ColumnType;
use mirror_common::soap::{self, Limits, RequestBody};
use mirror_common::value::{self, Value};
use mirror_common::wire::{self, Envelope, SchemaReply};

/// `soap_request`: any bytes as a request body. What parses must render and parse back to
/// itself, and its rows go through the receiver's value decoding.
pub fn soap_request(data: &[u8]) {
    let Ok(request) = soap::parse_request(data, &Limits::default()) else {
        return;
    };
    let rendered = soap::render_request(&request.token, &request);
    let again = soap::parse_request(rendered.as_bytes(), &Limits::default());
    assert_eq!(again.as_ref(), Ok(&request), "{rendered}");
    if let RequestBody::RowData { batches } = &request.body {
        let _ = batch::decode_batches(batches);
    }
}

/// `value_decode`: a column type, nullability and raw value taken from the input. A decoded
/// value must encode to a form that decodes to the same value, except that the encoding carries
/// datetimes to 100 ns and has no form for an empty binary other than NULL's.
///
/// Layout: type selector, length (u16 LE), scale, flags (bit 0 nullable, bit 1 nil), then the raw
/// value as UTF-8.
pub fn value_decode(data: &[u8]) {
    let [selector, low, high, scale, flags, raw @ ..] = data else {
        return;
    };
    let Some(ty) = column_type(*selector, u16::from_le_bytes([*low, *high]), *scale) else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(raw) else {
        return;
    };
    let nullable = flags & 1 != 0;
    let raw = (flags & 2 == 0).then_some(raw);
    let Ok(decoded) = value::decode(ty, nullable, raw) else {
        return;
    };
    let encoded = decoded.encode();
    let again = value::decode(ty, true, encoded.as_deref());
    let expected = match decoded {
        Value::Binary(bytes) if bytes.is_empty() => Value::Null,
        Value::DateTime(dt) => {
            let excess = dt.and_utc().timestamp_subsec_nanos() % 100;
            Value::DateTime(dt - chrono::Duration::nanoseconds(i64::from(excess)))
        }
        other => other,
    };
    assert_eq!(again, Ok(expected), "{ty} {raw:?} → {encoded:?}");
}

/// A column type named by the selector, through [`ColumnType::parse`] so that only types the
/// receiver can meet are built.
fn column_type(selector: u8, length: u16, scale: u8) -> Option<ColumnType> {
    let text = match selector % 24 {
        0 => "int".to_owned(),
        1 => "smallint".to_owned(),
        2 => "tinyint".to_owned(),
        3 => "bigint".to_owned(),
        4 => "bit".to_owned(),
        5 => "float".to_owned(),
        6 => "real".to_owned(),
        7 => "datetime".to_owned(),
        8 => "datetime2".to_owned(),
        9 => "smalldatetime".to_owned(),
        10 => "date".to_owned(),
        11 => format!("nvarchar({length})"),
        12 => "nvarchar(max)".to_owned(),
        13 => format!("varchar({length})"),
        14 => format!("nchar({length})"),
        15 => format!("char({length})"),
        16 => "ntext".to_owned(),
        17 => "text".to_owned(),
        18 => format!("varbinary({length})"),
        19 => "varbinary(max)".to_owned(),
        20 => "image".to_owned(),
        21 => "uniqueidentifier".to_owned(),
        _ => format!("decimal({},{scale})", length % 64),
    };
    ColumnType::parse(&text)
}

/// `wire_message`: any bytes as a queue message. What decodes must encode, and encoding must be
/// stable: decoding the encoded form and encoding it again gives the same bytes.
pub fn wire_message(data: &[u8]) {
    if let Ok(envelope) = wire::decode::<Envelope>(data) {
        stable(&envelope);
    }
    if let Ok(reply) = wire::decode::<SchemaReply>(data) {
        stable(&reply);
    }
}

fn stable<T: serde::Serialize + for<'de> serde::Deserialize<'de>>(message: &T) {
    let encode = |message: &T| match wire::encode(message) {
        Ok(bytes) => bytes,
        Err(error) => panic!("a decoded message does not encode: {error}"),
    };
    let bytes = encode(message);
    let again = match wire::decode::<T>(&bytes) {
        Ok(again) => again,
        Err(error) => panic!("an encoded message does not decode: {error}"),
    };
    assert_eq!(bytes, encode(&again));
}
