//! Reading a PostgreSQL mirror: one schema per tenant, tables under their own (lowercase) names,
//! SuperOffice-shaped state table `<contextId>_mirroring` beside them.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use mirror_common::schema::ColumnType;
use mirror_common::value::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};
use uuid::Uuid;

use super::{MirrorColumn, MirrorReader, VerifyError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Server-side bound on one statement: a full scan of a large table included.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on the small catalog queries.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// `format_type()`'s spelling of the PostgreSQL type a source column maps to (the mirror's type
/// mapping: int→integer, datetime→timestamp, nvarchar(n)→varchar(n), nvarchar(max)/ntext→text …).
pub fn pg_type(ty: ColumnType) -> String {
    use ColumnType as T;
    match ty {
        T::Int => "integer".into(),
        T::SmallInt | T::TinyInt => "smallint".into(),
        T::BigInt => "bigint".into(),
        T::Bit => "boolean".into(),
        T::Float => "double precision".into(),
        T::Real => "real".into(),
        T::DateTime | T::DateTime2 | T::SmallDateTime => "timestamp without time zone".into(),
        T::Date => "date".into(),
        T::NVarChar(Some(n)) | T::VarChar(Some(n)) => format!("character varying({n})"),
        T::NVarChar(None) | T::VarChar(None) | T::NText | T::Text => "text".into(),
        T::NChar(n) | T::Char(n) => format!("character({n})"),
        T::VarBinary(_) | T::Image => "bytea".into(),
        T::UniqueIdentifier => "uuid".into(),
        T::Decimal(p, s) => format!("numeric({p},{s})"),
    }
}

/// A connection to the database that holds the tenant's schema.
pub struct PgReader {
    client: Client,
    schema: String,
    context_id: String,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for PgReader {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl PgReader {
    /// Connects to `url` for the mirror of `context_id`, stored in the schema named by
    /// `name_template` (`Mirror_{context_id}` by default).
    pub async fn connect(
        url: &str,
        name_template: &str,
        context_id: &str,
    ) -> Result<PgReader, VerifyError> {
        let target = redact(url);
        let fail = |reason: String| VerifyError::Connect {
            target: target.clone(),
            reason,
        };
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| fail(format!("{e}")))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("mirror-sim")
            .options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        let (client, connection) =
            match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(fail(chain(&e))),
                Err(_) => {
                    return Err(fail(format!(
                        "no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            };
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "Mirror database connection ended.");
            }
        });
        Ok(PgReader {
            client,
            schema: name_template.replace("{context_id}", context_id),
            context_id: context_id.to_owned(),
            connection,
        })
    }

    /// The underlying client (tests use it to tamper with a mirror).
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, VerifyError> {
        match tokio::time::timeout(QUERY_TIMEOUT, self.client.query(sql, params)).await {
            Ok(result) => result.map_err(|source| VerifyError::Query {
                what: what.to_owned(),
                reason: chain(&source),
            }),
            Err(_) => Err(VerifyError::Timeout(QUERY_TIMEOUT.as_secs())),
        }
    }

    fn state_table(&self) -> String {
        format!("{}_mirroring", self.context_id)
    }
}

#[async_trait]
impl MirrorReader for PgReader {
    fn storage(&self) -> &str {
        &self.schema
    }

    fn expected_type(&self, ty: ColumnType) -> String {
        pg_type(ty)
    }

    async fn tables(&mut self) -> Result<Vec<String>, VerifyError> {
        let state = self.state_table().to_ascii_lowercase();
        let rows = self
            .query(
                "the table list",
                "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[&self.schema],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|t| !t.to_ascii_lowercase().starts_with(&state))
            .collect())
    }

    async fn columns(&mut self, table: &str) -> Result<Option<Vec<MirrorColumn>>, VerifyError> {
        let rows = self
            .query(
                &format!("the columns of {table}"),
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                   FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
                    AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum",
                &[&self.schema, &table],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|r| MirrorColumn {
                    name: r.get(0),
                    ty: r.get(1),
                })
                .collect(),
        ))
    }

    async fn scan(
        &mut self,
        table: &str,
        columns: &[(String, ColumnType)],
        sink: &mut (dyn FnMut(Vec<Value>) + Send),
    ) -> Result<u64, VerifyError> {
        let Some((key, _)) = columns.first() else {
            return Ok(0);
        };
        let list: Vec<String> = columns
            .iter()
            .map(|(name, ty)| match ty {
                // Exact decimal text, compared with the source's canonical form.
                ColumnType::Decimal(..) => format!("{}::text", quote(name)),
                _ => quote(name),
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {}.{} ORDER BY {}",
            list.join(", "),
            quote(&self.schema),
            quote(table),
            quote(key)
        );
        let query_error = |source: tokio_postgres::Error| VerifyError::Query {
            what: format!("the rows of {table}"),
            reason: chain(&source),
        };
        let params: [&(dyn ToSql + Sync); 0] = [];
        let stream = self
            .client
            .query_raw(sql.as_str(), params)
            .await
            .map_err(query_error)?;
        futures::pin_mut!(stream);
        let mut count = 0u64;
        while let Some(row) = stream.try_next().await.map_err(query_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for (index, (name, ty)) in columns.iter().enumerate() {
                let value = read(&row, index, *ty).map_err(|e| VerifyError::Decode {
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
    }

    async fn lsns(&mut self) -> Result<HashMap<String, i64>, VerifyError> {
        let exists = self
            .query(
                "the state table",
                "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2",
                &[&self.schema, &self.state_table()],
            )
            .await?;
        if exists.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT tablename::text, lsn::bigint FROM {}.{}",
            quote(&self.schema),
            quote(&self.state_table())
        );
        let rows = self.query("the state table", &sql, &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// One value of a row, decoded by the source column's type.
fn read(row: &Row, index: usize, ty: ColumnType) -> Result<Value, tokio_postgres::Error> {
    use ColumnType as T;
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    Ok(match ty {
        T::Int => opt(row.try_get::<_, Option<i32>>(index)?, Value::Int),
        T::SmallInt => opt(row.try_get::<_, Option<i16>>(index)?, Value::SmallInt),
        T::TinyInt => opt(row.try_get::<_, Option<i16>>(index)?, |v| {
            Value::TinyInt(u8::try_from(v).unwrap_or(u8::MAX))
        }),
        T::BigInt => opt(row.try_get::<_, Option<i64>>(index)?, Value::BigInt),
        T::Bit => opt(row.try_get::<_, Option<bool>>(index)?, Value::Bit),
        T::Float => opt(row.try_get::<_, Option<f64>>(index)?, Value::Float),
        T::Real => opt(row.try_get::<_, Option<f32>>(index)?, Value::Real),
        T::DateTime | T::DateTime2 | T::SmallDateTime => opt(
            row.try_get::<_, Option<NaiveDateTime>>(index)?,
            Value::DateTime,
        ),
        T::Date => opt(row.try_get::<_, Option<NaiveDate>>(index)?, Value::Date),
        T::NVarChar(_) | T::VarChar(_) | T::NChar(_) | T::Char(_) | T::NText | T::Text => {
            opt(row.try_get::<_, Option<String>>(index)?, Value::Text)
        }
        T::VarBinary(_) | T::Image => opt(row.try_get::<_, Option<Vec<u8>>>(index)?, Value::Binary),
        T::UniqueIdentifier => opt(row.try_get::<_, Option<Uuid>>(index)?, Value::Uuid),
        T::Decimal(..) => opt(row.try_get::<_, Option<String>>(index)?, |s| {
            Value::Decimal(canonical_decimal(&s))
        }),
    })
}

/// `-12.50` → `-12.5`, `0.00` → `0`: the value codec's canonical decimal form.
pub(super) fn canonical_decimal(s: &str) -> String {
    let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

/// An error and its causes on one line (tokio-postgres puts the reason in the source).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_documented_mapping() {
        assert_eq!(pg_type(ColumnType::Int), "integer");
        assert_eq!(pg_type(ColumnType::DateTime), "timestamp without time zone");
        assert_eq!(
            pg_type(ColumnType::NVarChar(Some(99))),
            "character varying(99)"
        );
        assert_eq!(pg_type(ColumnType::NVarChar(None)), "text");
        assert_eq!(pg_type(ColumnType::NText), "text");
        assert_eq!(pg_type(ColumnType::VarBinary(None)), "bytea");
        assert_eq!(pg_type(ColumnType::Float), "double precision");
    }

    #[test]
    fn decimals_and_urls_are_normalised() {
        assert_eq!(canonical_decimal("-12.50"), "-12.5");
        assert_eq!(canonical_decimal("-0.00"), "0");
        assert_eq!(canonical_decimal("007"), "7");
        assert_eq!(
            redact("postgres://user:secret@host:5432/db"),
            "postgres://user:***@host:5432/db"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }
}
