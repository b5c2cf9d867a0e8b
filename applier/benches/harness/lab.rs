//! The benchmark's PostgreSQL: the engine under test, a plain client for the baselines and for
//! looking at results, and scratch tenants that are created per measurement and always dropped.

use std::sync::Mutex;
use std::time::Duration;

use mirror_applier::dialect::postgres::render::PgRender;
use mirror_applier::dialect::{Render, Tenant};
use mirror_applier::engine::{Applied, Engine, EngineOptions};
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::TableSchema;
use mirror_common::wire::{Envelope, Message, ReplicationSummary};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use super::BenchError;
use super::workload::{Batches, envelope};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One tenant's mirror, holding one table, for one measurement.
#[derive(Debug, Clone)]
pub struct Scratch {
    pub tenant: Tenant,
    /// The table, qualified and quoted.
    pub table: String,
    pub schema: TableSchema,
}

/// What a table holds: its row count and an order-independent hash of every row's text form.
/// Equal fingerprints mean two loads wrote the same rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: i64,
    pub hash: String,
}

/// The engine and a plain connection to the same database.
pub struct Lab {
    pub engine: Engine,
    pub client: Client,
    run: String,
    next: Mutex<u32>,
    /// Schemas created and not dropped yet: dropped by [`Lab::cleanup`] after a failure.
    live: Mutex<Vec<String>>,
}

impl Lab {
    pub async fn connect(url: &str) -> Result<Lab, BenchError> {
        let settings = DatabaseSettings {
            url: url.to_owned(),
            ..DatabaseSettings::default()
        };
        let mut options = EngineOptions::default();
        options.postgres.pool_size = 2;
        let engine = Engine::connect_with(&settings, options).await?;
        let mut config: tokio_postgres::Config = url.parse()?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("mirror-bench");
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("benchmark connection ended: {error}");
            }
        });
        Ok(Lab {
            engine,
            client,
            run: Uuid::new_v4().simple().to_string()[..8].to_owned(),
            next: Mutex::new(0),
            live: Mutex::new(Vec::new()),
        })
    }

    /// A new tenant whose mirror holds `schema`'s table, created by the engine from a TableSchema
    /// message exactly as in production (so the table is in its loading phase, and empty).
    pub async fn scratch(&self, schema: &TableSchema) -> Result<Scratch, BenchError> {
        let n = {
            let mut next = self.next.lock().map_err(|_| poisoned())?;
            *next += 1;
            *next
        };
        let context_id = format!("Bench{}n{n}", self.run);
        let tenant = self.engine.tenant(&context_id)?;
        self.live
            .lock()
            .map_err(|_| poisoned())?
            .push(tenant.storage.clone());
        let table = PgRender.table(&tenant, &schema.name)?;
        let scratch = Scratch {
            tenant,
            table,
            schema: schema.clone(),
        };
        self.apply(&envelope(
            &context_id,
            Message::TableSchema {
                tables: vec![schema.clone()],
            },
        ))
        .await?;
        Ok(scratch)
    }

    /// Applies one envelope, which must take effect.
    pub async fn apply(&self, env: &Envelope) -> Result<(), BenchError> {
        match self.engine.apply(env).await? {
            Applied::Done { .. } => Ok(()),
            other => Err(BenchError::Unexpected(format!(
                "message {} of {} was not applied: {other:?}",
                env.message.kind().as_str(),
                env.tenant
            ))),
        }
    }

    /// Loads `load` through the engine and completes the cycle, so the table is an ordinary
    /// populated mirror table (out of its loading phase), then vacuums and analyzes it as
    /// autovacuum would have by the next cycle.
    pub async fn populate(&self, scratch: &Scratch, load: &Batches) -> Result<(), BenchError> {
        for env in load.envelopes(&scratch.tenant.context_id) {
            self.apply(&env).await?;
        }
        self.apply(&envelope(
            &scratch.tenant.context_id,
            Message::ReplicationCompleted {
                summaries: vec![ReplicationSummary {
                    table: scratch.schema.name.clone(),
                    inserts: i32::try_from(load.rows).unwrap_or(i32::MAX),
                    updates: 0,
                    deletes: 0,
                }],
            },
        ))
        .await?;
        self.client
            .batch_execute(&format!("VACUUM ANALYZE {}", scratch.table))
            .await?;
        Ok(())
    }

    /// Flushes dirty buffers so a measurement does not pay for the previous one's writes.
    ///
    /// A side effect that is also the realistic case: after a checkpoint, the first change to
    /// each page of a populated table writes a full-page image to the WAL, as a cycle's changes
    /// do in production (they arrive long after the table's load, past several checkpoints).
    /// Loads into an empty table write new pages and pay nothing extra.
    pub async fn settle(&self) -> Result<(), BenchError> {
        self.client.batch_execute("CHECKPOINT").await?;
        Ok(())
    }

    pub async fn fingerprint(&self, scratch: &Scratch) -> Result<Fingerprint, BenchError> {
        let sql = format!(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} t",
            scratch.table
        );
        let row = self.client.query_one(&sql, &[]).await?;
        Ok(Fingerprint {
            rows: row.try_get(0)?,
            hash: row.try_get(1)?,
        })
    }

    /// Drops the scratch tenant's schema.
    pub async fn drop_scratch(&self, scratch: &Scratch) -> Result<(), BenchError> {
        self.drop_schema(&scratch.tenant.storage).await
    }

    /// Drops every scratch schema still there (after a failure or an interrupt).
    pub async fn cleanup(&self) -> Result<(), BenchError> {
        let live = self.live.lock().map_err(|_| poisoned())?.clone();
        for storage in live {
            self.drop_schema(&storage).await?;
        }
        Ok(())
    }

    async fn drop_schema(&self, storage: &str) -> Result<(), BenchError> {
        let sql = format!(
            "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {} CASCADE",
            PgRender.quote(storage)?
        );
        self.client.batch_execute(&sql).await?;
        self.live
            .lock()
            .map_err(|_| poisoned())?
            .retain(|s| s != storage);
        Ok(())
    }

    /// `15.20 (Debian …), shared_buffers 128MB, synchronous_commit on`.
    pub async fn server(&self) -> Result<String, BenchError> {
        let row = self
            .client
            .query_one(
                "SELECT current_setting('server_version'), current_setting('shared_buffers'), \
                        current_setting('synchronous_commit')",
                &[],
            )
            .await?;
        let (version, buffers, sync): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        Ok(format!(
            "PostgreSQL {version}, shared_buffers {buffers}, synchronous_commit {sync}"
        ))
    }
}

fn poisoned() -> BenchError {
    BenchError::Unexpected("a benchmark thread panicked".into())
}
