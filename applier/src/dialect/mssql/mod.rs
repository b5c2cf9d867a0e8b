//! The SQL Server target (tiberius): what SuperOffice partners run.
//!
//! # A database per tenant, three-part names, one pool
//! Each tenant's mirror is a database (named from `database.name_template`, `Mirror_<contextId>`
//! by default, as SuperOffice's own service names them), created on first use. Every statement
//! names its tables in full — `[Mirror_Cust1].[dbo].[contact]` — so one small pool of connections
//! to the server serves every tenant, as one pool serves every schema on PostgreSQL. The
//! alternative, a connection (pool) per tenant database, would hold thousands of idle connections
//! for thousands of tenants. A transaction touching one tenant database from a session whose
//! current database is another stays local to the instance (no distributed transaction).
//! Session temp tables live in `tempdb` whatever the current database.
//!
//! Three-part names across databases need SQL Server or Azure SQL Managed Instance; Azure SQL
//! Database refuses references to other databases. Only operators' hook scripts run inside the
//! tenant database (`USE`), on a connection that is closed afterwards.
//!
//! # Requirements
//! SQL Server 2016 or later (`DROP … IF EXISTS`, and `OPENJSON`, which needs compatibility level
//! 130 in the database connections log in to); a login that may create databases, or tenant
//! databases created beforehand under the template's names.
//!
//! # Per message
//! [`MssqlBackend::begin`] checks the tenant database exists (`DB_ID`) and creates it outside any
//! transaction if not, then opens the transaction and creates missing state tables (see
//! `bookkeeping`). Rows are loaded set-based (see `statement` and `bulk`). Errors are classified
//! by SQL Server error number (see `error`).

pub mod bookkeeping;
pub mod bulk;
pub mod error;
pub mod load;
pub mod param;
pub mod pool;
pub mod render;
pub mod state;
pub mod statement;
pub mod target;
pub mod tx;

use async_trait::async_trait;
use mirror_common::config::DatabaseSettings;
use tiberius::ToSql;
use uuid::Uuid;

use self::error::{classify, number};
use self::pool::{Client, Pool, PoolOptions, batch};
use self::render::MssqlRender;
use self::statement::{COMMIT, DATABASE_ID, HOOK_BEGIN, PING, Upsert};
use self::tx::MssqlTx;
use crate::dialect::{Backend, Render, Start, Tenant, Tx};
use crate::error::ApplyError;

pub use self::target::is_mssql_url;

/// "Database already exists": another worker created it first.
const DATABASE_EXISTS: i64 = 1801;

/// Limits and choices of the SQL Server target.
#[derive(Debug, Clone, Default)]
pub struct MssqlOptions {
    pub pool: PoolOptions,
    pub upsert: Upsert,
}

/// The SQL Server target: a pool of connections to one server.
#[derive(Clone)]
pub struct MssqlBackend {
    pool: Pool,
    upsert: Upsert,
}

impl MssqlBackend {
    /// Builds the pool from `database.url` (see `target` for the accepted forms). Connections are
    /// opened lazily: this succeeds while the server is down (the first apply then fails
    /// transiently, and `ping` reports it).
    pub fn connect(
        settings: &DatabaseSettings,
        options: &MssqlOptions,
    ) -> Result<MssqlBackend, ApplyError> {
        let config = target::config(settings)?;
        Ok(MssqlBackend {
            pool: Pool::new(config, options.pool.clone()),
            upsert: options.upsert,
        })
    }
}

/// Creates the tenant's database unless it exists.
async fn ensure_database(client: &mut Client, tenant: &Tenant) -> Result<(), ApplyError> {
    let found = client
        .query(DATABASE_ID, &[&tenant.storage.as_str() as &dyn ToSql])
        .await
        .map_err(classify)?
        .into_row()
        .await
        .map_err(classify)?;
    let id: Option<i32> = match &found {
        Some(row) => row.try_get(0).map_err(classify)?,
        None => None,
    };
    if id.is_some() {
        return Ok(());
    }
    tracing::info!(
        tenant = %tenant.context_id,
        database = %tenant.storage,
        "Creating the tenant database."
    );
    match batch(client, &MssqlRender.create_database(tenant)?).await {
        Err(e) if number(&e) == Some(DATABASE_EXISTS) => Ok(()),
        other => other,
    }
}

/// An operator's script split into batches at `GO` lines (the separator of SQL Server's tools,
/// not a statement).
pub fn script_batches(sql: &str) -> Vec<String> {
    let mut batches = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim().eq_ignore_ascii_case("go") {
            batches.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    batches.push(current);
    batches.retain(|b| !b.trim().is_empty());
    batches
}

#[async_trait]
impl Backend for MssqlBackend {
    fn render(&self) -> &dyn Render {
        &MssqlRender
    }

    async fn begin(
        &self,
        tenant: &Tenant,
        message: Uuid,
        lock: &[&str],
    ) -> Result<(Box<dyn Tx>, Start), ApplyError> {
        let mut conn = self.pool.get().await?;
        ensure_database(conn.client()?, tenant).await?;
        let (tx, start) = MssqlTx::begin(conn, tenant, self.upsert, message, lock).await?;
        Ok((Box::new(tx), start))
    }

    /// Runs the script in the tenant database, in one transaction that any error rolls back
    /// (`XACT_ABORT ON`). The connection's session was changed, so it is closed, not pooled.
    async fn run_script(&self, tenant: &Tenant, sql: &str) -> Result<(), ApplyError> {
        let mut conn = self.pool.get().await?;
        let client = conn.client()?;
        batch(client, &MssqlRender.use_database(tenant)?).await?;
        batch(client, &HOOK_BEGIN.join(";\n")).await?;
        for part in script_batches(sql) {
            batch(client, &part).await?;
        }
        batch(client, COMMIT).await
    }

    async fn ping(&self) -> Result<(), ApplyError> {
        let mut conn = self.pool.get().await?;
        batch(conn.client()?, PING).await?;
        conn.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_go_lines() {
        let script = "CREATE INDEX ix ON {table} (a)\nGO\n  go  \nGRANT SELECT ON {table} TO r\n";
        assert_eq!(
            script_batches(script),
            vec![
                "CREATE INDEX ix ON {table} (a)\n",
                "GRANT SELECT ON {table} TO r\n"
            ]
        );
        // "GO" inside a line is not a separator.
        assert_eq!(script_batches("SELECT 'GO'").len(), 1);
        assert!(script_batches("\nGO\n").is_empty());
    }
}
