//! The mirrors on PostgreSQL: a schema per tenant, read and changed with `tokio_postgres`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use mirror_common::config::DatabaseSettings;
use tokio_postgres::{Client, NoTls};

use super::{APPLICATION_NAME, CONNECT_TIMEOUT, Resynced, TableStatus, Template, unknown_table};
use crate::dialect::postgres::render::PgRender;
use crate::dialect::{Render, Tenant};
use crate::state::{RESEND_ALL, state_table, suffix};

/// A connection to the PostgreSQL database holding the mirrors.
pub(super) struct PgMirrors {
    client: Client,
}

impl PgMirrors {
    pub(super) async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgMirrors> {
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
            .application_name(APPLICATION_NAME);
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
        Ok(PgMirrors { client })
    }

    /// Schemas named from the template holding their tenant's state table.
    pub(super) async fn tenants(&self, template: &Template) -> anyhow::Result<Vec<Tenant>> {
        let rows = self
            .client
            .query(
                "SELECT schemaname, tablename FROM pg_catalog.pg_tables
                 WHERE tablename LIKE '%\\_mirroring'",
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
                let tenant = template.tenant(context_id);
                (tenant.storage == schema).then_some(tenant)
            })
            .collect())
    }

    pub(super) async fn tables(&self, tenant: &Tenant) -> anyhow::Result<Vec<TableStatus>> {
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

    pub(super) async fn last_cycle(
        &self,
        tenant: &Tenant,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let sql = format!(
            "SELECT max(completed_at) FROM {}",
            qualified(tenant, suffix::CYCLES)?
        );
        match self.client.query_one(&sql, &[]).await {
            Ok(row) => Ok(row.get(0)),
            Err(error) if is_missing_relation(&error) => Ok(None),
            Err(error) => Err(error)
                .with_context(|| format!("cannot read the cycles of tenant {}", tenant.context_id)),
        }
    }

    /// The rows are locked (`FOR UPDATE`) from reading to updating; the transaction rolls back
    /// when dropped.
    pub(super) async fn resync(
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
            return Err(unknown_table(tenant, table, &known));
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
fn is_missing_relation(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error
        .code()
        .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME)
}

/// [`is_missing_relation`] anywhere in `error`'s chain.
pub(super) fn is_missing(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<tokio_postgres::Error>())
        .any(is_missing_relation)
}
