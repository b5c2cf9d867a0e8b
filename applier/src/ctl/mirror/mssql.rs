//! The mirrors on SQL Server: a database per tenant, its state tables named in three parts
//! (`[Mirror_Cust1].[dbo].[Cust1_mirroring]`), read and changed over the engine's connection code
//! (`target`, `pool`), quoting (`MssqlRender`, via `StateSql`) and error classification.
//!
//! The statements are pure functions, checked by the golden tests. Values are parameters
//! (`@P1`…); only names quoted by the renderer are formatted in. Times are stored as UTC
//! `datetime2` and read back as UTC.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use mirror_common::config::DatabaseSettings;
use tiberius::{Row, ToSql};

use super::{APPLICATION_NAME, CONNECT_TIMEOUT, Resynced, TableStatus, Template, unknown_table};
use crate::dialect::Tenant;
use crate::dialect::mssql::bookkeeping::StateSql;
use crate::dialect::mssql::error::number;
use crate::dialect::mssql::pool::{Conn, Pool, PoolOptions, batch};
use crate::dialect::mssql::state::{exec, get, required, rows};
use crate::dialect::mssql::statement::{BEGIN, COMMIT, ROLLBACK};
use crate::dialect::mssql::target;
use crate::error::ApplyError;
use crate::state::RESEND_ALL;

/// "Invalid object name": a table (or the database named in a three-part name) does not exist.
const INVALID_OBJECT: i64 = 208;
/// "Database … does not exist".
const NO_DATABASE: i64 = 911;

/// Every database on the server, by name.
pub const DATABASES: &str = "SELECT [name] FROM [sys].[databases]";

/// Which of the quoted three-part names in `@P1`, a JSON array of strings, name a user table.
/// `OBJECT_ID` answers NULL for a database that does not exist or that the login cannot use.
pub const EXISTING_TABLES: &str =
    "SELECT [value] FROM OPENJSON(@P1) WHERE OBJECT_ID([value], N'U') IS NOT NULL";

/// The tenant's state rows with their parked-batch counts, by table name.
pub fn table_status(s: &StateSql) -> String {
    format!(
        "SELECT s.[tablename], s.[lsn], s.[epoch], s.[quarantine], s.[quarantined_at], \
         (SELECT COUNT_BIG(*) FROM {parked} AS p WHERE p.[tablename] = s.[tablename]), \
         s.[loading], s.[updated_at], s.[last_cycle_at] FROM {state} AS s ORDER BY s.[tablename]",
        parked = s.parked,
        state = s.state
    )
}

/// When the last cycle completed (NULL before the first).
pub fn last_cycle(s: &StateSql) -> String {
    format!("SELECT MAX([completed_at]) FROM {}", s.cycles)
}

/// The state rows `resync` changes — `@P1` a table name, or NULL for every table — locked until
/// the end of the transaction (`HOLDLOCK` also keeps rows from appearing in the range).
pub fn rows_to_resync(s: &StateSql) -> String {
    format!(
        "SELECT [tablename], [lsn], CAST(CASE WHEN [quarantine] IS NULL THEN 0 ELSE 1 END AS bit) \
         FROM {} WITH (UPDLOCK, HOLDLOCK) WHERE @P1 IS NULL OR [tablename] = LOWER(@P1) \
         ORDER BY [tablename]",
        s.state
    )
}

/// Every table with a state row, for the "unknown table" error.
pub fn state_rows(s: &StateSql) -> String {
    format!("SELECT [tablename] FROM {} ORDER BY [tablename]", s.state)
}

/// Sets the LSN to `@P1` in the rows [`rows_to_resync`] read (`@P2` as its `@P1`).
pub fn resync(s: &StateSql) -> String {
    format!(
        "UPDATE {} SET [lsn] = @P1, [updated_at] = SYSUTCDATETIME() \
         WHERE @P2 IS NULL OR [tablename] = LOWER(@P2)",
        s.state
    )
}

/// A connection to the SQL Server holding the mirrors (a pool of one, used one call at a time).
pub(super) struct MssqlMirrors {
    pool: Pool,
}

impl MssqlMirrors {
    /// Connects at once, so that a wrong URL or an unreachable server is reported first.
    pub(super) async fn connect(settings: &DatabaseSettings) -> anyhow::Result<MssqlMirrors> {
        let mut config = target::config(settings)?;
        config.application_name(APPLICATION_NAME);
        let where_ = config.get_addr();
        let options = PoolOptions {
            size: 1,
            connect_timeout: CONNECT_TIMEOUT,
            ..PoolOptions::default()
        };
        let pool = Pool::new(config, options);
        pool.get()
            .await
            .with_context(|| format!("cannot connect to the database at {where_}"))?
            .release();
        Ok(MssqlMirrors { pool })
    }

    async fn conn(&self) -> anyhow::Result<Conn> {
        Ok(self.pool.get().await?)
    }

    /// Databases named from the template that hold their tenant's state table.
    pub(super) async fn tenants(&self, template: &Template) -> anyhow::Result<Vec<Tenant>> {
        let mut conn = self.conn().await?;
        let client = conn.client()?;
        let databases = rows(client, DATABASES, &[])
            .await
            .context("cannot list the databases")?;
        // A name too long to quote cannot be a mirror the engine made.
        let candidates: Vec<(String, Tenant)> = text_column(&databases)?
            .iter()
            .filter_map(|name| template.tenant_of(name))
            .filter_map(|tenant| Some((StateSql::new(&tenant).ok()?.state, tenant)))
            .collect();
        if candidates.is_empty() {
            conn.release();
            return Ok(Vec::new());
        }
        let names: Vec<&str> = candidates.iter().map(|(name, _)| name.as_str()).collect();
        let json = serde_json::to_string(&names)?;
        let found = rows(client, EXISTING_TABLES, &[&json.as_str()])
            .await
            .context("cannot list the mirrors")?;
        let found: HashSet<String> = text_column(&found)?.into_iter().collect();
        conn.release();
        Ok(candidates
            .into_iter()
            .filter(|(name, _)| found.contains(name))
            .map(|(_, tenant)| tenant)
            .collect())
    }

    pub(super) async fn tables(&self, tenant: &Tenant) -> anyhow::Result<Vec<TableStatus>> {
        let s = StateSql::new(tenant)?;
        let mut conn = self.conn().await?;
        let read = rows(conn.client()?, &table_status(&s), &[])
            .await
            .and_then(|rows| rows.iter().map(table_row).collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read the state of tenant {}", tenant.context_id))?;
        conn.release();
        Ok(read)
    }

    pub(super) async fn last_cycle(
        &self,
        tenant: &Tenant,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let s = StateSql::new(tenant)?;
        let mut conn = self.conn().await?;
        let read = match rows(conn.client()?, &last_cycle(&s), &[]).await {
            Ok(read) => read,
            Err(error) if number(&error) == Some(INVALID_OBJECT) => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot read the cycles of tenant {}", tenant.context_id)
                });
            }
        };
        conn.release();
        let at = match read.first() {
            Some(row) => get::<NaiveDateTime>(row, 0)?,
            None => None,
        };
        Ok(at.map(|t| t.and_utc()))
    }

    /// One transaction on one connection. Any error drops the connection, which closes it and
    /// makes the server roll back.
    pub(super) async fn resync(
        &mut self,
        tenant: &Tenant,
        table: Option<&str>,
        dry_run: bool,
    ) -> anyhow::Result<Vec<Resynced>> {
        let s = StateSql::new(tenant)?;
        let mut conn = self.conn().await?;
        let client = conn.client()?;
        batch(client, BEGIN)
            .await
            .context("cannot begin a transaction")?;
        let params: [&dyn ToSql; 1] = [&table];
        let locked = rows(client, &rows_to_resync(&s), &params)
            .await
            .with_context(|| format!("cannot read the state of tenant {}", tenant.context_id))?;
        if let Some(table) = table
            && locked.is_empty()
        {
            let known = rows(client, &state_rows(&s), &[])
                .await
                .context("cannot read the state table")?;
            return Err(unknown_table(tenant, table, &text_column(&known)?));
        }
        let resynced = locked
            .iter()
            .map(|r| {
                Ok(Resynced {
                    table: required::<&str>(r, 0)?.to_owned(),
                    lsn_before: required(r, 1)?,
                    quarantined: required(r, 2)?,
                })
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        exec(client, &resync(&s), &[&RESEND_ALL, &table])
            .await
            .context("cannot update the state table")?;
        if dry_run {
            batch(client, ROLLBACK).await.context("cannot roll back")?;
        } else {
            batch(client, COMMIT).await.context("cannot commit")?;
        }
        conn.release();
        Ok(resynced)
    }
}

fn table_row(r: &Row) -> Result<TableStatus, ApplyError> {
    let utc = |t: NaiveDateTime| t.and_utc();
    Ok(TableStatus {
        table: required::<&str>(r, 0)?.to_owned(),
        lsn: required(r, 1)?,
        epoch: required(r, 2)?,
        quarantine: get::<&str>(r, 3)?.map(str::to_owned),
        quarantined_at: get(r, 4)?.map(utc),
        parked: required(r, 5)?,
        loading: required(r, 6)?,
        updated_at: utc(required(r, 7)?),
        last_cycle_at: get(r, 8)?.map(utc),
    })
}

/// The first column of every row, as text.
fn text_column(rows: &[Row]) -> Result<Vec<String>, ApplyError> {
    rows.iter()
        .map(|r| required::<&str>(r, 0).map(str::to_owned))
        .collect()
}

/// True when `error`'s chain holds SQL Server's "invalid object name" or "database does not
/// exist". (4060, "cannot open database", concerns only the database a connection logs in to,
/// never a tenant's.)
pub(super) fn is_missing(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<ApplyError>())
        .any(|e| matches!(number(e), Some(INVALID_OBJECT | NO_DATABASE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: &str) -> ApplyError {
        ApplyError::Database {
            table: None,
            code: code.into(),
            message: "refused".into(),
            transient: false,
        }
    }

    #[test]
    fn missing_objects_and_databases_are_missing_and_nothing_else_is() {
        let wrapped = |e: ApplyError| anyhow::Error::from(e).context("cannot read the state");
        assert!(is_missing(&wrapped(server_error("208"))));
        assert!(is_missing(&wrapped(server_error("911"))));
        for other in ["207", "229", "4060", "1205"] {
            assert!(!is_missing(&wrapped(server_error(other))), "{other}");
        }
        assert!(!is_missing(&wrapped(ApplyError::Unavailable {
            message: "gone".into()
        })));
        assert!(!is_missing(&anyhow::anyhow!("208")));
    }
}
