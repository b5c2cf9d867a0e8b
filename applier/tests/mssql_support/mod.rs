//! Shared by the SQL Server suites: real SuperOffice table schemas from the captured TableSchema
//! call, and small schema builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use mirror_common::schema::{
    Column, ColumnType, DefaultValue, RawColumn, RawTableSchema, TableSchema,
};
use mirror_common::soap::{Limits, RequestBody, parse_request};

/// Every table of the real 413-table TableSchema call, validated.
pub fn superoffice_tables() -> Vec<TableSchema> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/superoffice/tableschema-request.http"
    );
    let raw = std::fs::read(path).expect("the TableSchema fixture");
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP message has a blank line after its headers");
    let request = parse_request(&raw[at + 4..], &Limits::default()).expect("a TableSchema call");
    let RequestBody::TableSchema { tables } = request.body else {
        panic!("not a TableSchema call");
    };
    tables
        .iter()
        .map(|t| t.validate().expect("a valid schema"))
        .collect()
}

/// One table of the real schema.
pub fn superoffice_table(name: &str) -> TableSchema {
    superoffice_tables()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name} in the fixture"))
}

/// A schema from `(name, type, nullable, default clause)` rows, validated like the receiver does.
pub fn schema(table: &str, cols: &[(&str, &str, bool, &str)]) -> TableSchema {
    RawTableSchema {
        name: table.into(),
        columns: cols
            .iter()
            .map(|(n, t, null, d)| RawColumn {
                name: (*n).into(),
                ty: (*t).into(),
                nullable: *null,
                default: (*d).into(),
            })
            .collect(),
    }
    .validate()
    .expect("a valid schema")
}

/// A column built directly, bypassing validation (for names the receiver would refuse).
pub fn column(name: &str, ty: ColumnType, nullable: bool, default: Option<DefaultValue>) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
        default,
    }
}
