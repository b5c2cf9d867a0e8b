//! Reading a SQL Server mirror: one database per tenant (named from the template), tables under
//! `dbo` with their types kept as sent, SuperOffice-shaped state table `<contextId>_mirroring`
//! beside them.
//!
//! The connection string is the applier's (`mssql://…`, ADO.NET or JDBC; same parsing, same TLS
//! options), and one connection of the applier's pool serves the reader. Every name is addressed
//! in three parts (`[Mirror_Cust1].[dbo].[contact]`), as the applier does, so the login's default
//! database does not matter.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use mirror_applier::dialect::mssql::pool::{Client, Conn, Pool, PoolOptions};
use mirror_applier::dialect::mssql::target;
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;
use tiberius::{ColumnData, FromSql, FromSqlOwned, Row, ToSql};
use uuid::Uuid;

use super::postgres::{canonical_decimal, chain};
use super::{MirrorColumn, MirrorReader, VerifyError};

/// Bound on the small catalog queries.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a full scan of one table.
const SCAN_TIMEOUT: Duration = Duration::from_secs(600);
/// The schema the applier creates the mirror tables in.
const SCHEMA: &str = "dbo";

/// The type of a mirror column of source type `ty`: kept as sent, in the canonical spelling
/// (`nvarchar(50)`, `nvarchar(max)`, `decimal(10,2)`), which is how [`spell`] reads it back.
pub fn mssql_type(ty: ColumnType) -> String {
    ty.to_string()
}

/// A column type as `sys.columns` / `sys.types` describe it, spelled as [`mssql_type`] spells
/// it. `max_length` is in bytes (-1 for `max`); `nchar`/`nvarchar` hold two bytes a character.
pub fn spell(type_name: &str, max_length: i16, precision: u8, scale: u8) -> String {
    let name = type_name.to_ascii_lowercase();
    let length = |per_char: i16| {
        if max_length < 0 {
            "max".to_owned()
        } else {
            (max_length / per_char).to_string()
        }
    };
    match name.as_str() {
        "nvarchar" | "nchar" => format!("{name}({})", length(2)),
        "varchar" | "char" | "varbinary" | "binary" => format!("{name}({})", length(1)),
        "decimal" | "numeric" => format!("decimal({precision},{scale})"),
        _ => name,
    }
}

/// `[name]`, with `]` doubled.
fn quote(identifier: &str) -> String {
    format!("[{}]", identifier.replace(']', "]]"))
}

/// The select-list expression that reads a column of source type `ty` in a form [`decode`]
/// takes: decimals as exact text, the legacy LOB types as their `max` successors.
fn select_expression(column: &str, ty: ColumnType) -> String {
    let q = quote(column);
    match ty {
        ColumnType::Decimal(..) => format!("CONVERT(nvarchar(80), {q})"),
        ColumnType::NText | ColumnType::Text => format!("CONVERT(nvarchar(max), {q})"),
        ColumnType::Image => format!("CONVERT(varbinary(max), {q})"),
        _ => q,
    }
}

/// The query that reads every row of `table` in key order (the key is the first column).
fn scan_query(database: &str, table: &str, columns: &[(String, ColumnType)]) -> Option<String> {
    let (key, _) = columns.first()?;
    let list: Vec<String> = columns
        .iter()
        .map(|(name, ty)| select_expression(name, *ty))
        .collect();
    Some(format!(
        "SELECT {} FROM {}.{}.{} ORDER BY {}",
        list.join(", "),
        quote(database),
        quote(SCHEMA),
        quote(table),
        quote(key)
    ))
}

/// One value as the driver returned it, decoded by the source column's type.
fn decode(data: ColumnData<'static>, ty: ColumnType) -> Result<Value, tiberius::error::Error> {
    use ColumnType as T;
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    Ok(match ty {
        T::Int => opt(i32::from_sql(&data)?, Value::Int),
        T::SmallInt => opt(i16::from_sql(&data)?, Value::SmallInt),
        T::TinyInt => opt(u8::from_sql(&data)?, Value::TinyInt),
        T::BigInt => opt(i64::from_sql(&data)?, Value::BigInt),
        T::Bit => opt(bool::from_sql(&data)?, Value::Bit),
        T::Float => opt(f64::from_sql(&data)?, Value::Float),
        T::Real => opt(f32::from_sql(&data)?, Value::Real),
        T::DateTime | T::DateTime2 | T::SmallDateTime => {
            opt(NaiveDateTime::from_sql(&data)?, Value::DateTime)
        }
        T::Date => opt(NaiveDate::from_sql(&data)?, Value::Date),
        T::NVarChar(_) | T::VarChar(_) | T::NChar(_) | T::Char(_) | T::NText | T::Text => {
            opt(String::from_sql_owned(data)?, Value::Text)
        }
        T::VarBinary(_) | T::Image => opt(Vec::<u8>::from_sql_owned(data)?, Value::Binary),
        T::UniqueIdentifier => opt(Uuid::from_sql(&data)?, Value::Uuid),
        T::Decimal(..) => opt(String::from_sql_owned(data)?, |s| {
            Value::Decimal(canonical_decimal(&s))
        }),
    })
}

/// The connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    if url.contains("://") && !url.to_ascii_lowercase().starts_with("jdbc:") {
        return super::redact(url);
    }
    url.split(';')
        .map(|part| match part.split_once('=') {
            Some((key, _))
                if matches!(key.trim().to_ascii_lowercase().as_str(), "password" | "pwd") =>
            {
                format!("{key}=***")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// One connection to the server that holds the tenant's database.
pub struct MssqlReader {
    conn: Conn,
    database: String,
    context_id: String,
}

impl MssqlReader {
    /// Connects to the server of `url` (any form the applier accepts) for the mirror of
    /// `context_id`, stored in the database named by `name_template`.
    pub async fn connect(
        url: &str,
        name_template: &str,
        context_id: &str,
    ) -> Result<MssqlReader, VerifyError> {
        let fail = |reason: String| VerifyError::Connect {
            target: redact(url),
            reason,
        };
        let settings = DatabaseSettings {
            url: url.to_owned(),
            ..DatabaseSettings::default()
        };
        let config = target::config(&settings).map_err(|e| fail(e.to_string()))?;
        let options = PoolOptions {
            size: 1,
            command_timeout: SCAN_TIMEOUT,
            ..PoolOptions::default()
        };
        let conn = Pool::new(config, options)
            .get()
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(MssqlReader {
            conn,
            database: name_template.replace("{context_id}", context_id),
            context_id: context_id.to_owned(),
        })
    }

    fn client(&mut self) -> Result<&mut Client, VerifyError> {
        self.conn.client().map_err(|e| VerifyError::Query {
            what: "a connection".into(),
            reason: e.to_string(),
        })
    }

    /// Runs one catalog query and collects its rows.
    async fn query(
        &mut self,
        what: &str,
        sql: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<Row>, VerifyError> {
        let query_error = |e: tiberius::error::Error| VerifyError::Query {
            what: what.to_owned(),
            reason: chain(&e),
        };
        let client = self.client()?;
        let run = async {
            client
                .query(sql, params)
                .await
                .map_err(query_error)?
                .into_first_result()
                .await
                .map_err(query_error)
        };
        tokio::time::timeout(QUERY_TIMEOUT, run)
            .await
            .map_err(|_| VerifyError::Timeout(QUERY_TIMEOUT.as_secs()))?
    }

    /// True when the tenant's database exists.
    async fn database_exists(&mut self) -> Result<bool, VerifyError> {
        let database = self.database.clone();
        let rows = self
            .query(
                "the tenant database",
                "SELECT CAST(CASE WHEN DB_ID(@P1) IS NULL THEN 0 ELSE 1 END AS int)",
                &[&database],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<i32, _>(0))
            .is_some_and(|n| n == 1))
    }

    fn qualified(&self, table: &str) -> String {
        format!(
            "{}.{}.{}",
            quote(&self.database),
            quote(SCHEMA),
            quote(table)
        )
    }

    fn state_table(&self) -> String {
        format!("{}_mirroring", self.context_id)
    }
}

/// Text of column `index`, or a decoding error naming `what`.
fn text(row: &Row, index: usize, what: &str) -> Result<String, VerifyError> {
    row.try_get::<&str, _>(index)
        .map_err(|e| VerifyError::Query {
            what: what.to_owned(),
            reason: e.to_string(),
        })?
        .map(str::to_owned)
        .ok_or_else(|| VerifyError::Query {
            what: what.to_owned(),
            reason: format!("column {index} is NULL"),
        })
}

#[async_trait]
impl MirrorReader for MssqlReader {
    fn storage(&self) -> &str {
        &self.database
    }

    fn expected_type(&self, ty: ColumnType) -> String {
        mssql_type(ty)
    }

    async fn tables(&mut self) -> Result<Vec<String>, VerifyError> {
        if !self.database_exists().await? {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT t.name FROM {db}.sys.tables t JOIN {db}.sys.schemas s \
             ON s.schema_id = t.schema_id WHERE s.name = @P1 ORDER BY t.name",
            db = quote(&self.database)
        );
        let rows = self.query("the table list", &sql, &[&SCHEMA]).await?;
        let state = self.state_table().to_ascii_lowercase();
        let mut tables = Vec::with_capacity(rows.len());
        for row in &rows {
            let name = text(row, 0, "the table list")?;
            if !name.to_ascii_lowercase().starts_with(&state) {
                tables.push(name);
            }
        }
        Ok(tables)
    }

    async fn columns(&mut self, table: &str) -> Result<Option<Vec<MirrorColumn>>, VerifyError> {
        if !self.database_exists().await? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT c.name, ty.name, c.max_length, c.precision, c.scale \
             FROM {db}.sys.columns c JOIN {db}.sys.types ty ON ty.user_type_id = c.user_type_id \
             WHERE c.object_id = OBJECT_ID(@P1, N'U') ORDER BY c.column_id",
            db = quote(&self.database)
        );
        let what = format!("the columns of {table}");
        let qualified = self.qualified(table);
        let rows = self.query(&what, &sql, &[&qualified]).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(rows.len());
        for row in &rows {
            let number = |index: usize| row.try_get::<u8, _>(index).ok().flatten().unwrap_or(0);
            let max_length = row.try_get::<i16, _>(2).ok().flatten().unwrap_or(0);
            columns.push(MirrorColumn {
                name: text(row, 0, &what)?,
                ty: spell(&text(row, 1, &what)?, max_length, number(3), number(4)),
            });
        }
        Ok(Some(columns))
    }

    async fn scan(
        &mut self,
        table: &str,
        columns: &[(String, ColumnType)],
        sink: &mut (dyn FnMut(Vec<Value>) + Send),
    ) -> Result<u64, VerifyError> {
        let Some(sql) = scan_query(&self.database, table, columns) else {
            return Ok(0);
        };
        let query_error = |e: tiberius::error::Error| VerifyError::Query {
            what: format!("the rows of {table}"),
            reason: chain(&e),
        };
        let client = self.client()?;
        let run = async {
            let mut rows = client
                .query(sql, &[])
                .await
                .map_err(query_error)?
                .into_row_stream();
            let mut count = 0u64;
            while let Some(row) = rows.try_next().await.map_err(query_error)? {
                let mut values = Vec::with_capacity(columns.len());
                for (data, (name, ty)) in row.into_iter().zip(columns) {
                    let value = decode(data, *ty).map_err(|e| VerifyError::Decode {
                        table: table.to_owned(),
                        column: name.clone(),
                        reason: e.to_string(),
                    })?;
                    values.push(value);
                }
                sink(values);
                count += 1;
            }
            Ok(count)
        };
        tokio::time::timeout(SCAN_TIMEOUT, run)
            .await
            .map_err(|_| VerifyError::Timeout(SCAN_TIMEOUT.as_secs()))?
    }

    async fn lsns(&mut self) -> Result<HashMap<String, i64>, VerifyError> {
        if !self.database_exists().await? {
            return Ok(HashMap::new());
        }
        let state = self.qualified(&self.state_table());
        let exists = self
            .query(
                "the state table",
                "SELECT CAST(CASE WHEN OBJECT_ID(@P1, N'U') IS NULL THEN 0 ELSE 1 END AS int)",
                &[&state],
            )
            .await?;
        if exists.first().and_then(|r| r.get::<i32, _>(0)) != Some(1) {
            return Ok(HashMap::new());
        }
        let sql = format!("SELECT [tablename], CAST([lsn] AS bigint) FROM {state}");
        let rows = self.query("the state table", &sql, &[]).await?;
        let mut lsns = HashMap::with_capacity(rows.len());
        for row in &rows {
            let lsn = row.try_get::<i64, _>(1).ok().flatten().unwrap_or(-1);
            lsns.insert(text(row, 0, "the state table")?, lsn);
        }
        Ok(lsns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiberius::IntoSql;

    #[test]
    fn types_are_kept_as_sent_and_read_back_in_the_same_spelling() {
        let cases = [
            (ColumnType::Int, ("int", 4, 10, 0)),
            (ColumnType::NVarChar(Some(50)), ("nvarchar", 100, 0, 0)),
            (ColumnType::NVarChar(None), ("nvarchar", -1, 0, 0)),
            (ColumnType::VarChar(Some(20)), ("varchar", 20, 0, 0)),
            (ColumnType::NChar(3), ("nchar", 6, 0, 0)),
            (ColumnType::VarBinary(None), ("varbinary", -1, 0, 0)),
            (ColumnType::Decimal(10, 2), ("decimal", 9, 10, 2)),
            (ColumnType::DateTime, ("datetime", 8, 23, 3)),
            (ColumnType::UniqueIdentifier, ("uniqueidentifier", 16, 0, 0)),
            (ColumnType::NText, ("ntext", 16, 0, 0)),
        ];
        for (ty, (name, length, precision, scale)) in cases {
            assert_eq!(
                mssql_type(ty),
                spell(name, length, precision, scale),
                "{ty}"
            );
        }
        assert_eq!(spell("NUMERIC", 5, 5, 0), "decimal(5,0)");
    }

    #[test]
    fn the_scan_reads_in_key_order_with_exact_decimals_and_quoted_names() {
        let columns = [
            ("id".to_owned(), ColumnType::Int),
            ("amount".to_owned(), ColumnType::Decimal(12, 4)),
            ("notes".to_owned(), ColumnType::NText),
            ("odd]name".to_owned(), ColumnType::Image),
        ];
        assert_eq!(
            scan_query("Mirror_Cust1", "con]tact", &columns).unwrap(),
            "SELECT [id], CONVERT(nvarchar(80), [amount]), CONVERT(nvarchar(max), [notes]), \
             CONVERT(varbinary(max), [odd]]name]) FROM [Mirror_Cust1].[dbo].[con]]tact] \
             ORDER BY [id]"
        );
        assert_eq!(scan_query("Mirror_Cust1", "t", &[]), None);
    }

    #[test]
    fn driver_values_decode_by_the_source_type() {
        let at = NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_milli_opt(13, 14, 15, 160)
            .unwrap();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let cases = [
            (ColumnData::I32(Some(-7)), ColumnType::Int, Value::Int(-7)),
            (ColumnData::I32(None), ColumnType::Int, Value::Null),
            (
                ColumnData::U8(Some(200)),
                ColumnType::TinyInt,
                Value::TinyInt(200),
            ),
            (
                ColumnData::Bit(Some(true)),
                ColumnType::Bit,
                Value::Bit(true),
            ),
            (
                ColumnData::F64(Some(1.5)),
                ColumnType::Float,
                Value::Float(1.5),
            ),
            (at.into_sql(), ColumnType::DateTime, Value::DateTime(at)),
            (
                at.date().into_sql(),
                ColumnType::Date,
                Value::Date(at.date()),
            ),
            (
                "Ærlig talt".into_sql(),
                ColumnType::NVarChar(None),
                Value::Text("Ærlig talt".into()),
            ),
            (
                vec![0u8, 255].into_sql(),
                ColumnType::Image,
                Value::Binary(vec![0, 255]),
            ),
            (id.into_sql(), ColumnType::UniqueIdentifier, Value::Uuid(id)),
            (
                "-12.5000".into_sql(),
                ColumnType::Decimal(12, 4),
                Value::Decimal("-12.5".into()),
            ),
        ];
        for (data, ty, expected) in cases {
            assert_eq!(decode(data, ty).unwrap(), expected, "{ty}");
        }
        // A value of another type is an error, not a wrong value.
        assert!(decode(ColumnData::String(Some("x".into())), ColumnType::Int).is_err());
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("mssql://sa:secret@db:1433/master"),
            "mssql://sa:***@db:1433/master"
        );
        assert_eq!(
            redact("Server=tcp:db,1433;User Id=sa;Password=secret;TrustServerCertificate=true"),
            "Server=tcp:db,1433;User Id=sa;Password=***;TrustServerCertificate=true"
        );
        assert_eq!(
            redact("jdbc:sqlserver://db:1433;user=sa;pwd=secret"),
            "jdbc:sqlserver://db:1433;user=sa;pwd=***"
        );
    }
}
