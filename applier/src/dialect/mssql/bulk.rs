//! Getting many rows into a table fast: the TDS bulk load (`INSERT BULK`, what `SqlBulkCopy`
//! uses), or batched multi-row `INSERT … VALUES` for tables the driver cannot bulk-load safely.
//!
//! # Why some tables are not bulk-loaded
//! tiberius 0.13's bulk encoder has open problems with large-value and date/time columns:
//! - `nvarchar(max)`, `varchar(max)`, `varbinary(max)`: the column's metadata length (0xFFFF,
//!   which means "max") is taken as the value's limit in bytes (`column_data.rs`: `length >
//!   vlc.len()`), so a value over 65,535 bytes is refused ("Encoded string length … exceed column
//!   limit"); large text values have also been reported to fail on the server with error 4816
//!   "Invalid column type from bcp client" (tiberius-rs/tiberius#322, open);
//! - `ntext`, `text`, `image`: bulk input needs the text-pointer row format, for which users
//!   found no working example (tiberius-rs/tiberius#352) and which we cannot verify here;
//! - date/time types: NaiveDateTime is sent as `datetime2`, which a `datetime` column refuses
//!   before 1900 and truncates to the 1/300 s tick (tiberius-rs/tiberius#307 and PR #298, open);
//!   `datetime2` metadata without its scale (tiberius-rs/tiberius#234) and the `date` length
//!   (PR #346) are fixed in 0.13; a `date` column before a `time` column still fails
//!   (tiberius-rs/tiberius#410, open). These are avoided rather than fallen back from:
//!   `datetime` and `smalldatetime` values are encoded in their own formats (see `param`), and
//!   SuperOffice sends no `time` columns.
//!
//! A table with any large-value column is therefore loaded with `INSERT … VALUES (@P1, …), (…)`,
//! as many rows per statement as the 2,100-parameter and 1,000-row caps allow
//! ([`rows_per_insert`](super::statement::rows_per_insert)): still set-based, one round trip per
//! few hundred values.

use mirror_common::schema::{ColumnType, TableSchema};
use mirror_common::value::Value;
use tiberius::{SqlBulkCopyOption, SqlBulkCopyOptions, ToSql, TokenRow};

use super::error::classify;
use super::param::{Param, column_data};
use super::pool::Client;
use super::statement::{LoadSql, insert_chunks};
use crate::error::ApplyError;

/// True when tiberius 0.13 can bulk-load values of this type (see the module docs).
pub fn bulk_loadable(ty: ColumnType) -> bool {
    use ColumnType as T;
    !matches!(
        ty,
        T::NVarChar(None) | T::VarChar(None) | T::VarBinary(None) | T::NText | T::Text | T::Image
    )
}

/// How a table's rows are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Bulk,
    /// Batched multi-row `INSERT … VALUES`.
    Values,
}

impl Method {
    pub fn for_table(schema: &TableSchema) -> Method {
        if schema.columns.iter().all(|c| bulk_loadable(c.ty)) {
            Method::Bulk
        } else {
            Method::Values
        }
    }
}

/// Where the rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The session's stage table.
    Stage,
    /// The mirror table itself (a load into an empty or just-wiped table): the whole table is
    /// locked for the load (which lets SQL Server log it minimally), and CHECK constraints and
    /// triggers an operator added apply, as they do to the merge (a bulk load skips both unless
    /// told otherwise).
    Table,
}

/// Loads `rows` (each in the schema's column order) into `target`, a table with the columns of
/// `sql`. Returns the number of rows stored.
pub async fn load(
    client: &mut Client,
    sql: &LoadSql,
    target: &str,
    schema: &TableSchema,
    rows: &[&[Value]],
    into: Destination,
) -> Result<u64, ApplyError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let types: Vec<ColumnType> = schema.columns.iter().map(|c| c.ty).collect();
    match Method::for_table(schema) {
        Method::Bulk => bulk(client, sql, target, &types, rows, into).await,
        Method::Values => values(client, sql, target, &types, rows).await,
    }
}

async fn bulk(
    client: &mut Client,
    sql: &LoadSql,
    target: &str,
    types: &[ColumnType],
    rows: &[&[Value]],
    into: Destination,
) -> Result<u64, ApplyError> {
    // Every value is converted before the load starts: a value that cannot be sent fails the
    // message without leaving a half-sent bulk stream behind.
    let mut token_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let mut token_row = TokenRow::with_capacity(types.len());
        for (value, ty) in row.iter().zip(types) {
            token_row.push(column_data(value, *ty)?);
        }
        token_rows.push(token_row);
    }
    // Without KEEP_NULLS a NULL would be replaced by the column's default.
    let mut options: SqlBulkCopyOptions = SqlBulkCopyOption::KeepNulls.into();
    if into == Destination::Table {
        options |= SqlBulkCopyOption::TableLock
            | SqlBulkCopyOption::CheckConstraints
            | SqlBulkCopyOption::FireTriggers;
    }
    let columns: Vec<&str> = sql.columns.iter().map(String::as_str).collect();
    let mut request = client
        .bulk_insert_with_options(target, &columns, options, &[])
        .await
        .map_err(classify)?;
    for token_row in token_rows {
        request.send(token_row).await.map_err(classify)?;
    }
    Ok(request.finalize().await.map_err(classify)?.total())
}

async fn values(
    client: &mut Client,
    sql: &LoadSql,
    target: &str,
    types: &[ColumnType],
    rows: &[&[Value]],
) -> Result<u64, ApplyError> {
    let mut total = 0;
    let mut full: Option<(usize, String)> = None;
    for range in insert_chunks(rows.len(), types.len()) {
        let n = range.len();
        // Every full chunk has the same text, so the server reuses one plan.
        let text = match &full {
            Some((len, text)) if *len == n => text.clone(),
            _ => {
                let text = sql.insert_values(target, n);
                full = Some((n, text.clone()));
                text
            }
        };
        let mut params = Vec::with_capacity(n * types.len());
        for row in &rows[range] {
            for (value, ty) in row.iter().zip(types) {
                params.push(Param(column_data(value, *ty)?));
            }
        }
        let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
        total += client.execute(text, &refs).await.map_err(classify)?.total();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::schema::Column;

    fn table(types: &[ColumnType]) -> TableSchema {
        TableSchema {
            name: "t".into(),
            columns: types
                .iter()
                .enumerate()
                .map(|(i, ty)| Column {
                    name: format!("c{i}"),
                    ty: *ty,
                    nullable: i > 0,
                    default: None,
                })
                .collect(),
        }
    }

    #[test]
    fn large_value_columns_turn_a_table_to_values() {
        use ColumnType as T;
        let plain = [
            T::Int,
            T::NVarChar(Some(4000)),
            T::DateTime,
            T::Float,
            T::SmallInt,
        ];
        assert_eq!(Method::for_table(&table(&plain)), Method::Bulk);
        for large in [
            T::NVarChar(None),
            T::VarBinary(None),
            T::NText,
            T::Image,
            T::Text,
        ] {
            assert!(!bulk_loadable(large), "{large}");
            assert_eq!(Method::for_table(&table(&[T::Int, large])), Method::Values);
        }
        assert!(bulk_loadable(T::VarBinary(Some(8000))));
        assert!(bulk_loadable(T::DateTime2));
    }
}
