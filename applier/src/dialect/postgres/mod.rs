//! The PostgreSQL target (tokio-postgres, a deadpool connection pool, binary `COPY`).
//!
//! # One schema per tenant
//! Each tenant's mirror is a schema (named from `database.name_template`, `Mirror_<contextId>` by
//! default) inside the one configured database, created on first use. PostgreSQL connections are
//! bound to one database, so a database per tenant would need a pool per tenant; schemas let one
//! small pool serve thousands of tenants. A schema still isolates each tenant (every statement
//! names it explicitly; nothing relies on `search_path`) and is dropped as a unit
//! (`DROP SCHEMA … CASCADE`).

pub mod copy;
pub mod error;
pub mod pipeline;
pub mod render;
pub mod rows;
pub mod state;
pub mod tx;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use mirror_common::config::DatabaseSettings;
use tokio_postgres::NoTls;
use uuid::Uuid;

use self::error::{classify, pool};
use self::render::PgRender;
use self::tx::PgTx;
use crate::dialect::{Backend, Render, Start, Tenant, Tx};
use crate::error::ApplyError;

/// Connection and pool limits.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool: an upper bound on tenants applied at once by this process.
    pub pool_size: usize,
    /// Establishing one connection.
    pub connect_timeout: Duration,
    /// Waiting for a free connection from the pool.
    pub wait_timeout: Duration,
    /// Server-side limit on one statement (`statement_timeout`); exceeding it is transient.
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(300),
        }
    }
}

/// A pool of connections to the configured PostgreSQL database.
#[derive(Clone)]
pub struct PgBackend {
    pool: Pool,
}

impl PgBackend {
    /// Builds the pool; connections are opened lazily, so this succeeds while the server is down
    /// (the first apply then fails transiently, and `ping` reports it).
    pub fn connect(
        settings: &DatabaseSettings,
        options: &PgOptions,
    ) -> Result<PgBackend, ApplyError> {
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|e| ApplyError::Config(format!("MIRROR__DATABASE__URL: {e}")))?;
        if config.get_password().is_none()
            && let Some(file) = &settings.password_file
        {
            let password = std::fs::read_to_string(file).map_err(|e| {
                ApplyError::Config(format!(
                    "MIRROR__DATABASE__PASSWORD_FILE {}: {e}",
                    file.display()
                ))
            })?;
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        let mut server_options = config.get_options().unwrap_or_default().to_owned();
        server_options.push_str(&format!(
            " -c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        config
            .options(server_options.trim())
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("mirror-applier");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| ApplyError::Config(format!("database pool: {e}")))?;
        Ok(PgBackend { pool })
    }

    async fn conn(&self) -> Result<Object, ApplyError> {
        self.pool.get().await.map_err(pool)
    }
}

#[async_trait]
impl Backend for PgBackend {
    fn render(&self) -> &dyn Render {
        &PgRender
    }

    async fn begin(
        &self,
        tenant: &Tenant,
        message: Uuid,
        lock: &[&str],
    ) -> Result<(Box<dyn Tx>, Start), ApplyError> {
        let conn = self.conn().await?;
        let (tx, start) = PgTx::begin(conn, tenant, message, lock).await?;
        Ok((Box::new(tx), start))
    }

    async fn run_script(&self, tenant: &Tenant, sql: &str) -> Result<(), ApplyError> {
        let conn = self.conn().await?;
        let schema = PgRender.quote(&tenant.storage)?;
        let script = format!("BEGIN;\nSET LOCAL search_path TO {schema};\n{sql}\n;\nCOMMIT;");
        match conn.batch_execute(&script).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if conn.batch_execute("ROLLBACK").await.is_err() {
                    drop(Object::take(conn));
                }
                Err(classify(e))
            }
        }
    }

    async fn ping(&self) -> Result<(), ApplyError> {
        self.conn()
            .await?
            .batch_execute("SELECT 1")
            .await
            .map_err(classify)
    }
}
