//! The tenants' mirrors as `mirrorctl` sees them: their state tables (layout: `crate::state`),
//! read and changed with plain SQL on PostgreSQL.
//!
//! SQL Server mirrors are refused with a clear error for now: the engine's backend abstraction
//! covers one message's transaction in a known tenant, not listing tenants or reading the
//! operator's columns (`quarantined_at`, `last_cycle_at`), so supporting them is its own work.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use mirror_common::config::DatabaseSettings;
use serde::Serialize;
use tokio_postgres::{Client, NoTls};

use crate::dialect::postgres::render::PgRender;
use crate::dialect::{Render, Tenant};
use crate::state::{RESEND_ALL, state_table, suffix};

/// How long connecting to the database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of a tenant's state table, with what an operator wants next to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub lsn: i64,
    pub epoch: i64,
    pub quarantine: Option<String>,
    pub quarantined_at: Option<DateTime<Utc>>,
    /// Batches parked behind the quarantine.
    pub parked: i64,
    pub loading: bool,
    pub updated_at: DateTime<Utc>,
    pub last_cycle_at: Option<DateTime<Utc>>,
}

/// What `resync` changed (or would change) in one state row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resynced {
    pub table: String,
    pub lsn_before: i64,
    pub quarantined: bool,
}

/// A connection to the database holding the mirrors.
pub struct Mirrors {
    client: Client,
    template: String,
}

impl Mirrors {
    /// Connects to `settings.url` (PostgreSQL only, see the module documentation).
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Mirrors> {
        if crate::dialect::mssql::is_mssql_url(&settings.url) {
            bail!(
                "MIRROR__DATABASE__URL names SQL Server: mirrorctl reads mirror state on PostgreSQL only; \
                 this command is not supported for SQL Server yet"
            );
        }
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .context("MIRROR__DATABASE__URL is not a PostgreSQL URL")?;
        if config.get_password().is_none()
            && let Some(file) = &settings.password_file
        {
            let password = std::fs::read_to_string(file)
                .with_context(|| format!("MIRROR__DATABASE__PASSWORD_FILE {}", file.display()))?;
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("mirrorctl");
        let where_ = describe(&config);
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to the database at {where_}"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "Database connection ended.");
            }
        });
        Ok(Mirrors {
            client,
            template: settings.name_template.clone(),
        })
    }

    /// The tenant whose context id is `context_id`, with its storage from the name template.
    pub fn tenant(&self, context_id: &str) -> Tenant {
        Tenant {
            context_id: context_id.to_owned(),
            storage: self.template.replace("{context_id}", context_id),
        }
    }

    /// Every tenant with a mirror: a schema named from the template holding the tenant's state
    /// table. Sorted by context id.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        let rows = self
            .client
            .query(
                "SELECT schemaname, tablename FROM pg_catalog.pg_tables
                 WHERE tablename LIKE '%\\_mirroring' ORDER BY tablename",
                &[],
            )
            .await
            .context("cannot list the mirrors")?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let schema: String = row.get(0);
                let table: String = row.get(1);
                let context_id = table.strip_suffix("_mirroring")?;
                let tenant = self.tenant(context_id);
                (tenant.storage == schema).then_some(tenant)
            })
            .collect())
    }

    /// The tenant `context_id`, or an error naming the tenants there are.
    pub async fn known_tenant(&self, context_id: &str) -> anyhow::Result<Tenant> {
        let tenants = self.tenants().await?;
        if let Some(tenant) = tenants.iter().find(|t| t.context_id == context_id) {
            return Ok(tenant.clone());
        }
        let known: Vec<&str> = tenants.iter().map(|t| t.context_id.as_str()).collect();
        bail!(
            "unknown tenant {context_id}: no state table {} in schema {} (known tenants: {})",
            state_table(context_id, suffix::STATE),
            self.tenant(context_id).storage,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    }

    /// The tenant's state rows, by table name.
    pub async fn tables(&self, tenant: &Tenant) -> anyhow::Result<Vec<TableStatus>> {
        let state = qualified(tenant, suffix::STATE)?;
        let parked = qualified(tenant, suffix::PARKED)?;
        let sql = format!(
            "SELECT s.tablename, s.lsn, s.epoch, s.quarantine, s.quarantined_at,
                    (SELECT count(*) FROM {parked} p WHERE p.tablename = s.tablename),
                    s.loading, s.updated_at, s.last_cycle_at
             FROM {state} s ORDER BY s.tablename"
        );
        let rows =
            self.client.query(&sql, &[]).await.with_context(|| {
                format!("cannot read the state of tenant {}", tenant.context_id)
            })?;
        Ok(rows
            .iter()
            .map(|r| TableStatus {
                table: r.get(0),
                lsn: r.get(1),
                epoch: r.get(2),
                quarantine: r.get(3),
                quarantined_at: r.get(4),
                parked: r.get(5),
                loading: r.get(6),
                updated_at: r.get(7),
                last_cycle_at: r.get(8),
            })
            .collect())
    }

    /// When the tenant's last cycle completed (its ReplicationCompleted was applied).
    pub async fn last_cycle(&self, tenant: &Tenant) -> anyhow::Result<Option<DateTime<Utc>>> {
        let sql = format!(
            "SELECT max(completed_at) FROM {}",
            qualified(tenant, suffix::CYCLES)?
        );
        match self.client.query_one(&sql, &[]).await {
            Ok(row) => Ok(row.get(0)),
            // A mirror made by SuperOffice's own client has only the state table.
            Err(error) if is_missing_relation(&error) => Ok(None),
            Err(error) => Err(error)
                .with_context(|| format!("cannot read the cycles of tenant {}", tenant.context_id)),
        }
    }

    /// SuperOffice's force-resync: sets the LSN of `table` (every table when `None`) to -1 in one
    /// transaction, so the next cycle wipes and resends it. Quarantines are left as they are: the
    /// Wipe of that cycle lifts them (and discards the parked batches) as for any quarantined
    /// table. With `dry_run` the transaction is rolled back. Refuses a table without a state row.
    pub async fn resync(
        &mut self,
        tenant: &Tenant,
        table: Option<&str>,
        dry_run: bool,
    ) -> anyhow::Result<Vec<Resynced>> {
        let state = qualified(tenant, suffix::STATE)?;
        let tx = self
            .client
            .transaction()
            .await
            .context("cannot begin a transaction")?;
        let select = format!(
            "SELECT tablename, lsn, quarantine IS NOT NULL FROM {state}
             WHERE $1::text IS NULL OR tablename = lower($1::text)
             ORDER BY tablename FOR UPDATE"
        );
        let rows = tx
            .query(&select, &[&table])
            .await
            .with_context(|| format!("cannot read the state of tenant {}", tenant.context_id))?;
        if let Some(table) = table
            && rows.is_empty()
        {
            let all = format!("SELECT tablename FROM {state} ORDER BY tablename");
            let known: Vec<String> = tx
                .query(&all, &[])
                .await
                .context("cannot read the state table")?
                .iter()
                .map(|r| r.get(0))
                .collect();
            bail!(
                "unknown table {table} of tenant {}: no row in {} (tables: {})",
                tenant.context_id,
                state_table(&tenant.context_id, suffix::STATE),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
        let resynced: Vec<Resynced> = rows
            .iter()
            .map(|r| Resynced {
                table: r.get(0),
                lsn_before: r.get(1),
                quarantined: r.get(2),
            })
            .collect();
        let names: Vec<&str> = resynced.iter().map(|r| r.table.as_str()).collect();
        let update =
            format!("UPDATE {state} SET lsn = $1, updated_at = now() WHERE tablename = ANY($2)");
        tx.execute(&update, &[&RESEND_ALL, &names])
            .await
            .context("cannot update the state table")?;
        if dry_run {
            tx.rollback().await.context("cannot roll back")?;
        } else {
            tx.commit().await.context("cannot commit")?;
        }
        Ok(resynced)
    }
}

/// The quoted, qualified name of one of the tenant's state tables.
fn qualified(tenant: &Tenant, suffix: &str) -> anyhow::Result<String> {
    Ok(PgRender.table(tenant, &state_table(&tenant.context_id, suffix))?)
}

/// `host:port/dbname` of a connection config, for error messages (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

/// True when `error` says a table or schema does not exist (any more).
pub fn is_missing_relation(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error
        .code()
        .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME)
}
