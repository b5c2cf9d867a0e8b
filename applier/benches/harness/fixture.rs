//! Real SuperOffice table definitions, from the captured 413-table TableSchema call.

use mirror_common::schema::TableSchema;
use mirror_common::soap::{Limits, RequestBody, parse_request};

use super::BenchError;

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/superoffice/tableschema-request.http"
);

/// Every table of the capture, validated as the receiver validates them.
pub fn superoffice_tables() -> Result<Vec<TableSchema>, BenchError> {
    let bad = |reason: String| BenchError::Fixture(format!("{CAPTURE}: {reason}"));
    let raw = std::fs::read(CAPTURE).map_err(|e| bad(e.to_string()))?;
    let body_at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no blank line after the HTTP headers".into()))?;
    let request =
        parse_request(&raw[body_at + 4..], &Limits::default()).map_err(|e| bad(e.to_string()))?;
    let RequestBody::TableSchema { tables } = request.body else {
        return Err(bad("not a TableSchema call".into()));
    };
    tables
        .iter()
        .map(|t| t.validate().map_err(|e| bad(e.to_string())))
        .collect()
}

/// The named tables of the capture, in the order asked for.
pub fn superoffice_tables_named(names: &[String]) -> Result<Vec<TableSchema>, BenchError> {
    let all = superoffice_tables()?;
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|t| &t.name == name)
                .cloned()
                .ok_or_else(|| {
                    BenchError::Fixture(format!("no table {name:?} in the SuperOffice schema"))
                })
        })
        .collect()
}
