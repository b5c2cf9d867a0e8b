//! The apply engine: one decoded [`Envelope`] → one committed database transaction.
//!
//! Each message is applied in ONE transaction together with its bookkeeping (rows, LSNs, the
//! applied-message id), so a crash at any point leaves either all of it or none of it. The rules
//! that make redeliveries and replays harmless are documented in [`crate::state`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use mirror_common::config::DatabaseSettings;
use mirror_common::schema::{TableSchema, check_identifier};
use mirror_common::wire::{Envelope, Message, ReplicationSummary, SchemaReply, TableLsn};

use crate::dialect::postgres::{PgBackend, PgOptions};
use crate::dialect::{Backend, Start, Tenant, Tx};
use crate::error::ApplyError;
use crate::hooks::Hooks;
use crate::metrics::{Heal, Metrics};

mod steps;

use self::steps::{apply_batch, duplicate, is_too_old, quarantine_one, rollback, row_data};
use crate::plan::{TableAction, plan_schema, schema_hash};
use crate::state::{
    APPLIED_RETENTION, FailureRecord, Replay, TableState, is_reserved, judge_replay,
};

/// What [`Engine::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Committed. `reply` is `Some` for TableSchema (the LSN of every table of the call).
    Done { reply: Option<SchemaReply> },
    /// Already applied (a redelivery), or a stale replay: no effect. TableSchema still gets its
    /// reply, computed from the current state.
    Duplicate { reply: Option<SchemaReply> },
    /// Every batch of the message belongs to a quarantined table and was parked behind it.
    Parked,
}

/// What [`Engine::quarantine`] did, for the dead-letter metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The quarantined table (`None`: the failure concerned no table, nothing was quarantined).
    pub table: Option<String>,
    /// The table's epoch: a replay of the message after a later wipe of the table is stale.
    pub epoch: i64,
}

/// Limits of the engine itself (the target's own are in its options).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Longest a single apply or quarantine may take, end to end; then it fails transiently.
    pub apply_timeout: Duration,
    pub postgres: PgOptions,
    pub mssql: crate::dialect::mssql::MssqlOptions,
    /// Where quarantines and their healing are counted (the worker's registry); none in tools.
    pub metrics: Option<Metrics>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            apply_timeout: Duration::from_secs(600),
            postgres: PgOptions::default(),
            mssql: crate::dialect::mssql::MssqlOptions::default(),
            metrics: None,
        }
    }
}

impl EngineOptions {
    /// Default limits with the configured pool size, counting into `metrics`.
    pub fn for_settings(settings: &DatabaseSettings, metrics: Option<Metrics>) -> EngineOptions {
        let mut options = EngineOptions {
            metrics,
            ..EngineOptions::default()
        };
        options.postgres.pool_size = settings.pool_size;
        options.mssql.pool.size = settings.pool_size;
        options
    }
}

/// The apply engine: one per process, cheap to clone, shared by every partition's consumer.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    name_template: String,
    drop_absent: bool,
    hooks: Hooks,
    apply_timeout: Duration,
    metrics: Option<Metrics>,
}

impl Engine {
    /// Connects to the configured target with default limits and the configured pool size.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Engine, ApplyError> {
        Engine::connect_with(settings, EngineOptions::for_settings(settings, None)).await
    }

    /// Connects to the configured target: `postgres://…`, or SQL Server (`mssql://…`, an ADO.NET
    /// or a JDBC connection string).
    pub async fn connect_with(
        settings: &DatabaseSettings,
        options: EngineOptions,
    ) -> Result<Engine, ApplyError> {
        let url = settings.url.trim();
        let backend: Box<dyn Backend> =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Box::new(PgBackend::connect(settings, &options.postgres)?)
            } else if crate::dialect::mssql::is_mssql_url(url) {
                Box::new(crate::dialect::mssql::MssqlBackend::connect(
                    settings,
                    &options.mssql,
                )?)
            } else {
                return Err(ApplyError::Config(format!(
                    "MIRROR__DATABASE__URL: unsupported target {:?}",
                    url.split(':').next().unwrap_or_default()
                )));
            };
        Ok(Engine::assemble(
            backend,
            settings,
            options.apply_timeout,
            options.metrics,
        ))
    }

    /// An engine over any target.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        settings: &DatabaseSettings,
        apply_timeout: Duration,
    ) -> Engine {
        Engine::assemble(backend, settings, apply_timeout, None)
    }

    fn assemble(
        backend: Box<dyn Backend>,
        settings: &DatabaseSettings,
        apply_timeout: Duration,
        metrics: Option<Metrics>,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                backend,
                name_template: settings.name_template.clone(),
                drop_absent: settings.drop_absent_tables,
                hooks: Hooks::new(settings.hooks_dir.clone()),
                apply_timeout,
                metrics,
            }),
        }
    }

    /// The tenant's storage name, from the name template.
    pub fn tenant(&self, context_id: &str) -> Result<Tenant, ApplyError> {
        check_identifier(context_id).map_err(|e| ApplyError::BadTenant {
            tenant: context_id.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Tenant {
            context_id: context_id.to_owned(),
            storage: self.inner.name_template.replace("{context_id}", context_id),
        })
    }

    /// Applies one message in ONE database transaction (rows, LSN, applied-message id together).
    pub async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError> {
        let secs = self.inner.apply_timeout.as_secs();
        tokio::time::timeout(self.inner.apply_timeout, self.apply_now(envelope))
            .await
            .map_err(|_| ApplyError::Timeout {
                operation: "apply",
                secs,
            })?
    }

    /// After a permanent failure: quarantine the table (LSN -1, its batches parked behind it until
    /// a wipe), park the message's batches for that table, apply its other tables' batches, and
    /// return the table's epoch for the dead-letter metadata.
    pub async fn quarantine(
        &self,
        envelope: &Envelope,
        failure: &ApplyError,
    ) -> Result<Quarantine, ApplyError> {
        let secs = self.inner.apply_timeout.as_secs();
        tokio::time::timeout(
            self.inner.apply_timeout,
            self.quarantine_now(envelope, failure),
        )
        .await
        .map_err(|_| ApplyError::Timeout {
            operation: "quarantine",
            secs,
        })?
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), ApplyError> {
        tokio::time::timeout(Duration::from_secs(10), self.inner.backend.ping())
            .await
            .map_err(|_| ApplyError::Timeout {
                operation: "ping",
                secs: 10,
            })?
    }

    fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// Counts quarantines lifted by a committed transaction.
    fn healed(&self, cause: Heal, tables: u64) {
        if let Some(metrics) = &self.inner.metrics {
            metrics.healed(cause, tables);
        }
    }

    async fn apply_now(&self, env: &Envelope) -> Result<Applied, ApplyError> {
        let tenant = self.tenant(&env.tenant)?;
        // A RowData message reads (and locks) the state of every table it has batches for.
        let lock: Vec<&str> = match &env.message {
            Message::RowData { batches } => {
                let mut tables: Vec<&str> = batches.iter().map(|b| b.table.name.as_str()).collect();
                tables.sort_unstable();
                tables.dedup();
                tables
            }
            _ => Vec::new(),
        };
        let (mut tx, start) = self.backend().begin(&tenant, env.id, &lock).await?;
        let result = self.apply_in(tx.as_mut(), &tenant, env, start).await;
        if result.is_err() {
            rollback(tx.as_mut()).await;
        }
        result
    }

    async fn apply_in(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        start: Start,
    ) -> Result<Applied, ApplyError> {
        let Start { history, states } = start;
        if let Some(failure) = history.failure {
            match judge_replay(&failure, tx.state(&failure.table).await?.as_ref()) {
                Replay::Drain => return self.drain(tx, tenant, env, &failure).await,
                Replay::Stale => {
                    tracing::info!(tenant = %env.tenant, id = %env.id, table = %failure.table,
                        "Dropping a stale replay: its table was wiped or healed since.");
                    return duplicate(tx, env).await;
                }
            }
        }
        if is_too_old(env) {
            tracing::warn!(tenant = %env.tenant, id = %env.id, "Dropping a message older than the id retention.");
            return duplicate(tx, env).await;
        }
        if history.applied {
            return duplicate(tx, env).await;
        }
        self.dispatch(tx, tenant, env, states).await
    }

    /// Applies the message; `locked` holds the state rows read as its transaction began.
    async fn dispatch(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        locked: HashMap<String, TableState>,
    ) -> Result<Applied, ApplyError> {
        match &env.message {
            Message::TableSchema { tables } => self.table_schema(tx, tenant, env, tables).await,
            Message::RowData { batches } => row_data(tx, env, batches, locked).await,
            Message::Wipe { table } => self.wipe(tx, tenant, env, table).await,
            Message::ReplicationCompleted { summaries } => {
                self.completed(tx, tenant, env, summaries).await
            }
        }
    }

    async fn table_schema(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        tables: &[TableSchema],
    ) -> Result<Applied, ApplyError> {
        if let Some(t) = tables
            .iter()
            .find(|t| is_reserved(&tenant.context_id, &t.name))
        {
            return Err(ApplyError::ReservedName {
                table: t.name.clone(),
            });
        }
        let mut states: HashMap<String, TableState> = tx
            .states()
            .await?
            .into_iter()
            .map(|s| (s.table.clone(), s))
            .collect();
        let existing: HashSet<String> = tx.mirror_tables().await?.into_iter().collect();
        let plan = plan_schema(tables, &states, &existing, self.inner.drop_absent);
        let render = self.backend().render();
        let mut created = Vec::new();
        let mut recreated_quarantined = 0u64;
        let mut lsns = Vec::with_capacity(plan.tables.len());
        for step in &plan.tables {
            let name = &step.schema.name;
            let mut state = states.remove(name).unwrap_or_else(|| TableState::new(name));
            match &step.action {
                TableAction::Keep => {}
                TableAction::Alter(actions) => {
                    tx.execute(name, &render.alter_table(tenant, step.schema, actions)?)
                        .await?;
                    state.schema = Some(step.schema.clone());
                    state.schema_hash = Some(schema_hash(step.schema));
                    tx.save_state(&state).await?;
                }
                TableAction::Create | TableAction::Recreate { .. } => {
                    if let TableAction::Recreate { reason } = &step.action {
                        tracing::info!(tenant = %env.tenant, table = %name, %reason, "Recreating table.");
                        tx.execute(name, &[render.drop_table(tenant, name)?])
                            .await?;
                    }
                    tx.execute(name, &render.create_table(tenant, step.schema)?)
                        .await?;
                    recreated_quarantined += u64::from(state.quarantine.is_some());
                    state.reset(Some((step.schema, schema_hash(step.schema))));
                    tx.discard_parked(name).await?;
                    tx.save_state(&state).await?;
                    created.push(name.clone());
                }
            }
            lsns.push(TableLsn {
                table: name.clone(),
                lsn: state.lsn,
            });
        }
        let dropped_quarantined = plan
            .drop
            .iter()
            .filter(|name| states.get(*name).is_some_and(|s| s.quarantine.is_some()))
            .count() as u64;
        for name in &plan.drop {
            tracing::info!(tenant = %env.tenant, table = %name, "Dropping a table absent from TableSchema.");
            tx.execute(name, &[render.drop_table(tenant, name)?])
                .await?;
            tx.delete_state(name).await?;
            tx.discard_parked(name).await?;
        }
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
        self.healed(Heal::Recreate, recreated_quarantined);
        self.healed(Heal::Dropped, dropped_quarantined);
        self.inner
            .hooks
            .after_table_created(self.backend(), tenant, &created)
            .await;
        Ok(Applied::Done {
            reply: Some(SchemaReply::Applied { lsns }),
        })
    }

    async fn wipe(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        table: &str,
    ) -> Result<Applied, ApplyError> {
        let mut state = tx
            .state(table)
            .await?
            .ok_or_else(|| ApplyError::UnknownTable {
                table: table.to_owned(),
            })?;
        let truncate = self.backend().render().truncate_table(tenant, table)?;
        tx.execute(table, &[truncate]).await?;
        let healed = u64::from(state.quarantine.is_some());
        state.reset(None);
        tx.discard_parked(table).await?;
        tx.save_state(&state).await?;
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
        self.healed(Heal::Wipe, healed);
        Ok(Applied::Done { reply: None })
    }

    async fn completed(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        summaries: &[ReplicationSummary],
    ) -> Result<Applied, ApplyError> {
        tx.complete_cycle(env.id, summaries).await?;
        let pruned = tx.prune(APPLIED_RETENTION).await?;
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
        tracing::debug!(tenant = %env.tenant, pruned, "Cycle completed.");
        self.inner.hooks.after_cycle(self.backend(), tenant).await;
        Ok(Applied::Done { reply: None })
    }

    /// An operator replayed a dead-lettered message into the epoch it failed in: apply the
    /// table's parked batches (the failed ones first) in order and lift the quarantine.
    async fn drain(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
        failure: &FailureRecord,
    ) -> Result<Applied, ApplyError> {
        let table = &failure.table;
        let mut state = tx
            .state(table)
            .await?
            .ok_or_else(|| ApplyError::UnknownTable {
                table: table.clone(),
            })?;
        state.quarantine = None;
        let parked = tx.parked(table).await?;
        for batch in &parked {
            apply_batch(tx, &mut state, batch).await?;
        }
        tx.discard_parked(table).await?;
        tx.save_state(&state).await?;
        if !matches!(env.message, Message::RowData { .. }) {
            // A non-row message parks nothing: with the quarantine lifted it applies normally,
            // in the same transaction.
            let applied = Box::pin(self.dispatch(tx, tenant, env, HashMap::new())).await?;
            self.healed(Heal::Replay, 1);
            return Ok(applied);
        }
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
        self.healed(Heal::Replay, 1);
        tracing::info!(tenant = %env.tenant, table = %table, batches = parked.len(), "Replay applied; quarantine lifted.");
        Ok(Applied::Done { reply: None })
    }

    async fn quarantine_now(
        &self,
        env: &Envelope,
        failure: &ApplyError,
    ) -> Result<Quarantine, ApplyError> {
        let tenant = self.tenant(&env.tenant)?;
        let Some(table) = failure
            .table()
            .filter(|t| !is_reserved(&tenant.context_id, t))
        else {
            return Ok(Quarantine {
                table: None,
                epoch: 0,
            });
        };
        let reason = failure.to_string();
        match self.quarantine_tx(&tenant, env, table, &reason, true).await {
            Err(e) if !e.is_transient() => {
                tracing::warn!(error = %e, tenant = %env.tenant, id = %env.id,
                    "Other tables of a failed message cannot be applied either; quarantining them too.");
                self.quarantine_tx(&tenant, env, table, &reason, false)
                    .await
            }
            other => other,
        }
    }

    async fn quarantine_tx(
        &self,
        tenant: &Tenant,
        env: &Envelope,
        table: &str,
        reason: &str,
        apply_others: bool,
    ) -> Result<Quarantine, ApplyError> {
        let (mut tx, start) = self.backend().begin(tenant, env.id, &[]).await?;
        let previous = start.history.failure;
        match quarantine_one(tx.as_mut(), env, previous, table, reason, apply_others).await {
            Ok((quarantine, tables)) => {
                if let Some(metrics) = &self.inner.metrics {
                    metrics.quarantined(tables);
                }
                Ok(quarantine)
            }
            Err(error) => {
                rollback(tx.as_mut()).await;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// The consumer spawns applies on a multi-threaded runtime: the futures must be `Send`, the
    /// engine `Clone + Send + Sync`.
    #[test]
    fn engine_and_its_futures_can_cross_threads() {
        fn shared<T: Clone + Send + Sync + 'static>() {}
        shared::<Engine>();
        let settings = DatabaseSettings::default();
        let Ok(backend) = PgBackend::connect(&settings, &PgOptions::default()) else {
            panic!("a pool builds without connecting");
        };
        let engine = Engine::with_backend(Box::new(backend), &settings, Duration::from_secs(1));
        let env = Envelope {
            id: uuid::Uuid::nil(),
            tenant: "Cust1".into(),
            received_at_ms: 0,
            trace_id: String::new(),
            message: Message::Wipe { table: "t".into() },
        };
        let failure = ApplyError::Config(String::new());
        is_send(&engine.apply(&env));
        is_send(&engine.quarantine(&env, &failure));
        is_send(&engine.ping());
    }

    #[test]
    fn tenants_are_named_from_the_template_and_checked() {
        let settings = DatabaseSettings {
            name_template: "mirror_{context_id}_db".into(),
            ..DatabaseSettings::default()
        };
        let Ok(backend) = PgBackend::connect(&settings, &PgOptions::default()) else {
            panic!("a pool builds without connecting");
        };
        let engine = Engine::with_backend(Box::new(backend), &settings, Duration::from_secs(1));
        let tenant = engine.tenant("Cust24709").ok();
        assert_eq!(
            tenant.map(|t| t.storage),
            Some("mirror_Cust24709_db".to_owned())
        );
        assert!(matches!(
            engine.tenant("Cust1\"; drop"),
            Err(ApplyError::BadTenant { .. })
        ));
    }
}
