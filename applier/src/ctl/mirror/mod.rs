//! The tenants' mirrors as `mirrorctl` sees them: their state tables (layout: `crate::state`),
//! read and changed with plain SQL, on PostgreSQL (`postgres`: a schema per tenant) or SQL Server
//! (`mssql`: a database per tenant). `database.url` picks the side, as it does for the engine.
//!
//! The engine's backend abstraction covers one message's transaction in a known tenant; listing
//! the tenants and reading the operator's columns (`quarantined_at`, `last_cycle_at`, parked
//! counts) is this module's own, with one interface for both databases.

pub mod mssql;
mod postgres;

use std::time::Duration;

use anyhow::bail;
use chrono::{DateTime, Utc};
use mirror_common::config::DatabaseSettings;
use serde::Serialize;

use self::mssql::MssqlMirrors;
use self::postgres::PgMirrors;
use crate::dialect::Tenant;
use crate::state::{state_table, suffix};

/// How long connecting to the database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name `mirrorctl` gives its connections on the server.
const APPLICATION_NAME: &str = "mirrorctl";

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

/// `database.name_template`: `<prefix>{context_id}<suffix>`, naming each tenant's storage.
#[derive(Debug, Clone)]
struct Template(String);

const PLACEHOLDER: &str = "{context_id}";

impl Template {
    fn tenant(&self, context_id: &str) -> Tenant {
        Tenant {
            context_id: context_id.to_owned(),
            storage: self.0.replace(PLACEHOLDER, context_id),
        }
    }

    /// The tenant whose storage is named `storage`, when the template names it so.
    fn tenant_of(&self, storage: &str) -> Option<Tenant> {
        let (prefix, suffix) = self.0.split_once(PLACEHOLDER)?;
        let context_id = storage.strip_prefix(prefix)?.strip_suffix(suffix)?;
        let tenant = self.tenant(context_id);
        (!context_id.is_empty() && tenant.storage == storage).then_some(tenant)
    }
}

/// The database side holding the mirrors.
enum Side {
    Postgres(PgMirrors),
    Mssql(MssqlMirrors),
}

/// A connection to the database holding the mirrors.
pub struct Mirrors {
    template: Template,
    side: Side,
}

impl Mirrors {
    /// Connects to `settings.url`: SQL Server when it names one, PostgreSQL otherwise.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Mirrors> {
        let side = if crate::dialect::mssql::is_mssql_url(&settings.url) {
            Side::Mssql(MssqlMirrors::connect(settings).await?)
        } else {
            Side::Postgres(PgMirrors::connect(settings).await?)
        };
        Ok(Mirrors {
            template: Template(settings.name_template.clone()),
            side,
        })
    }

    /// What holds a tenant's mirror: a schema (PostgreSQL) or a database (SQL Server).
    pub fn storage_kind(&self) -> &'static str {
        match self.side {
            Side::Postgres(_) => "schema",
            Side::Mssql(_) => "database",
        }
    }

    /// The tenant whose context id is `context_id`, with its storage from the name template.
    pub fn tenant(&self, context_id: &str) -> Tenant {
        self.template.tenant(context_id)
    }

    /// Every tenant with a mirror: storage named from the template holding the tenant's state
    /// table. Sorted by context id.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        let mut tenants = match &self.side {
            Side::Postgres(pg) => pg.tenants(&self.template).await?,
            Side::Mssql(ms) => ms.tenants(&self.template).await?,
        };
        tenants.sort_by(|a, b| a.context_id.cmp(&b.context_id));
        Ok(tenants)
    }

    /// The tenant `context_id`, or an error naming the tenants there are.
    pub async fn known_tenant(&self, context_id: &str) -> anyhow::Result<Tenant> {
        let tenants = self.tenants().await?;
        if let Some(tenant) = tenants.iter().find(|t| t.context_id == context_id) {
            return Ok(tenant.clone());
        }
        let known: Vec<&str> = tenants.iter().map(|t| t.context_id.as_str()).collect();
        bail!(
            "unknown tenant {context_id}: no state table {} in {} {} (known tenants: {})",
            state_table(context_id, suffix::STATE),
            self.storage_kind(),
            self.tenant(context_id).storage,
            listing(&known)
        )
    }

    /// The tenant's state rows, by table name.
    pub async fn tables(&self, tenant: &Tenant) -> anyhow::Result<Vec<TableStatus>> {
        match &self.side {
            Side::Postgres(pg) => pg.tables(tenant).await,
            Side::Mssql(ms) => ms.tables(tenant).await,
        }
    }

    /// When the tenant's last cycle completed (its ReplicationCompleted was applied); `None` also
    /// for a mirror made by SuperOffice's own client, which has only the state table.
    pub async fn last_cycle(&self, tenant: &Tenant) -> anyhow::Result<Option<DateTime<Utc>>> {
        match &self.side {
            Side::Postgres(pg) => pg.last_cycle(tenant).await,
            Side::Mssql(ms) => ms.last_cycle(tenant).await,
        }
    }

    /// SuperOffice's force-resync: sets the LSN of `table` (every table when `None`; compared in
    /// lowercase, as state rows are named) to -1 in one transaction, so the next cycle wipes and
    /// resends it. Quarantines are left as they are: the Wipe of that cycle lifts them (and
    /// discards the parked batches) as for any quarantined table. With `dry_run` the transaction
    /// is rolled back. Refuses a table without a state row.
    pub async fn resync(
        &mut self,
        tenant: &Tenant,
        table: Option<&str>,
        dry_run: bool,
    ) -> anyhow::Result<Vec<Resynced>> {
        match &mut self.side {
            Side::Postgres(pg) => pg.resync(tenant, table, dry_run).await,
            Side::Mssql(ms) => ms.resync(tenant, table, dry_run).await,
        }
    }

    /// True when `error` (from this connection) says a tenant's table or its whole storage does
    /// not exist (any more): a tenant dropped while it was being read.
    pub fn is_missing(&self, error: &anyhow::Error) -> bool {
        match self.side {
            Side::Postgres(_) => postgres::is_missing(error),
            Side::Mssql(_) => mssql::is_missing(error),
        }
    }
}

/// `resync`'s refusal of a table without a state row, naming the tables there are.
fn unknown_table(tenant: &Tenant, table: &str, known: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown table {table} of tenant {}: no row in {} (tables: {})",
        tenant.context_id,
        state_table(&tenant.context_id, suffix::STATE),
        listing(known)
    )
}

/// `a, b, c`, or `none`.
fn listing<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_storage_and_reads_the_context_id_back() {
        let template = Template("Mirror_{context_id}_db".into());
        let tenant = template.tenant("Cust1");
        assert_eq!(tenant.storage, "Mirror_Cust1_db");
        assert_eq!(template.tenant_of("Mirror_Cust1_db"), Some(tenant));
        for other in [
            "Mirror__db",
            "Mirror_Cust1",
            "master",
            "mirror_Cust1_db",
            "Mirror_",
        ] {
            assert_eq!(template.tenant_of(other), None, "{other}");
        }
        let bare = Template("{context_id}".into());
        assert_eq!(bare.tenant_of("Cust7").unwrap().context_id, "Cust7");
    }

    #[test]
    fn errors_list_what_there_is() {
        let tenant = Template("Mirror_{context_id}".into()).tenant("Cust1");
        let error = unknown_table(&tenant, "nope", &["contact".into(), "person".into()]);
        assert_eq!(
            error.to_string(),
            "unknown table nope of tenant Cust1: no row in Cust1_mirroring (tables: contact, person)"
        );
        assert_eq!(listing::<&str>(&[]), "none");
    }
}
