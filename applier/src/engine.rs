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
use mirror_common::wire::{Envelope, Message, ReplicationSummary, RowBatch, SchemaReply, TableLsn};

use crate::dialect::postgres::{PgBackend, PgOptions};
use crate::dialect::{Backend, Load, LoadOutcome, Tenant, Tx};
use crate::error::ApplyError;
use crate::hooks::Hooks;
use crate::plan::{TableAction, collapse, plan_schema, schema_hash};
use crate::state::{
    APPLIED_RETENTION, FailureRecord, RESEND_ALL, Replay, TableState, is_reserved, judge_replay,
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            apply_timeout: Duration::from_secs(600),
            postgres: PgOptions::default(),
        }
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
}

impl Engine {
    /// Connects to the configured target with default limits.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Engine, ApplyError> {
        Engine::connect_with(settings, EngineOptions::default()).await
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
                    &crate::dialect::mssql::MssqlOptions::default(),
                )?)
            } else {
                return Err(ApplyError::Config(format!(
                    "MIRROR__DATABASE__URL: unsupported target {:?}",
                    url.split(':').next().unwrap_or_default()
                )));
            };
        Ok(Engine::with_backend(
            backend,
            settings,
            options.apply_timeout,
        ))
    }

    /// An engine over any target.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        settings: &DatabaseSettings,
        apply_timeout: Duration,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                backend,
                name_template: settings.name_template.clone(),
                drop_absent: settings.drop_absent_tables,
                hooks: Hooks::new(settings.hooks_dir.clone()),
                apply_timeout,
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

    async fn apply_now(&self, env: &Envelope) -> Result<Applied, ApplyError> {
        let tenant = self.tenant(&env.tenant)?;
        let mut tx = self.backend().begin(&tenant).await?;
        let result = self.apply_in(tx.as_mut(), &tenant, env).await;
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
    ) -> Result<Applied, ApplyError> {
        if let Some(failure) = tx.failure(env.id).await? {
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
        if tx.is_applied(env.id).await? {
            return duplicate(tx, env).await;
        }
        self.dispatch(tx, tenant, env).await
    }

    async fn dispatch(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        env: &Envelope,
    ) -> Result<Applied, ApplyError> {
        match &env.message {
            Message::TableSchema { tables } => self.table_schema(tx, tenant, env, tables).await,
            Message::RowData { batches } => row_data(tx, env, batches).await,
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
        for name in &plan.drop {
            tracing::info!(tenant = %env.tenant, table = %name, "Dropping a table absent from TableSchema.");
            tx.execute(name, &[render.drop_table(tenant, name)?])
                .await?;
            tx.delete_state(name).await?;
            tx.discard_parked(name).await?;
        }
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
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
        state.reset(None);
        tx.discard_parked(table).await?;
        tx.save_state(&state).await?;
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
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
            return Box::pin(self.dispatch(tx, tenant, env)).await;
        }
        tx.record_applied(env.id, env.message.kind()).await?;
        tx.commit().await?;
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
        let mut tx = self.backend().begin(tenant).await?;
        let result = quarantine_one(tx.as_mut(), env, table, reason, apply_others).await;
        if result.is_err() {
            rollback(tx.as_mut()).await;
        }
        result
    }
}

/// Quarantines `table` and parks the message's batches for it. With `apply_others`, the
/// message's batches for other tables are applied; without, their tables are quarantined too.
async fn quarantine_one(
    tx: &mut dyn Tx,
    env: &Envelope,
    table: &str,
    reason: &str,
    apply_others: bool,
) -> Result<Quarantine, ApplyError> {
    let previous = tx.failure(env.id).await?;
    let mut state = tx
        .state(table)
        .await?
        .unwrap_or_else(|| TableState::new(table));
    state.quarantine(reason.to_owned());
    tx.save_state(&state).await?;
    tx.record_failure(&FailureRecord {
        message_id: env.id,
        table: table.to_owned(),
        epoch: state.epoch,
        reason: reason.to_owned(),
    })
    .await?;
    // A message that failed before already has its batches parked (this is a failed replay).
    if previous.is_none()
        && let Message::RowData { batches } = &env.message
    {
        let mut others: HashMap<String, TableState> = HashMap::new();
        others.insert(table.to_owned(), state.clone());
        for batch in batches {
            let name = &batch.table.name;
            if !others.contains_key(name) {
                let s = tx
                    .state(name)
                    .await?
                    .unwrap_or_else(|| TableState::new(name));
                others.insert(name.clone(), s);
            }
            let Some(s) = others.get_mut(name) else {
                continue;
            };
            if !apply_others && s.quarantine.is_none() {
                s.quarantine(format!("quarantined with {table}: {reason}"));
            }
            if s.quarantine.is_some() {
                tx.park(env.id, s.epoch, batch).await?;
            } else {
                apply_batch(tx, s, batch).await?;
            }
        }
        others.remove(table);
        for s in others.values() {
            tx.save_state(s).await?;
        }
    }
    tx.commit().await?;
    tracing::warn!(tenant = %env.tenant, table = %table, epoch = state.epoch, %reason, "Table quarantined.");
    Ok(Quarantine {
        table: Some(table.to_owned()),
        epoch: state.epoch,
    })
}

/// Ends a failed transaction, keeping its connection when the server acknowledges the rollback.
async fn rollback(tx: &mut dyn Tx) {
    if let Err(error) = tx.rollback().await {
        tracing::debug!(%error, "Rollback failed; the connection is discarded.");
    }
}

/// A message that has no effect; TableSchema still gets its reply from the current state.
async fn duplicate(tx: &mut dyn Tx, env: &Envelope) -> Result<Applied, ApplyError> {
    let reply = match &env.message {
        Message::TableSchema { tables } => {
            let states: HashMap<String, i64> = tx
                .states()
                .await?
                .into_iter()
                .map(|s| (s.table, s.lsn))
                .collect();
            let lsns = tables
                .iter()
                .map(|t| TableLsn {
                    table: t.name.clone(),
                    lsn: states.get(&t.name).copied().unwrap_or(RESEND_ALL),
                })
                .collect();
            Some(SchemaReply::Applied { lsns })
        }
        Message::RowData { .. } | Message::Wipe { .. } | Message::ReplicationCompleted { .. } => {
            None
        }
    };
    // Nothing was written (the state tables may have been created): committing is the cheap end.
    tx.commit().await?;
    Ok(Applied::Duplicate { reply })
}

async fn row_data(
    tx: &mut dyn Tx,
    env: &Envelope,
    batches: &[RowBatch],
) -> Result<Applied, ApplyError> {
    let mut states: HashMap<String, TableState> = HashMap::new();
    let mut parked = 0usize;
    for batch in batches {
        let name = &batch.table.name;
        if !states.contains_key(name) {
            let state = tx
                .state(name)
                .await?
                .ok_or_else(|| ApplyError::UnknownTable {
                    table: name.clone(),
                })?;
            states.insert(name.clone(), state);
        }
        let Some(state) = states.get_mut(name) else {
            continue;
        };
        if state.quarantine.is_some() {
            tx.park(env.id, state.epoch, batch).await?;
            parked += 1;
        } else {
            apply_batch(tx, state, batch).await?;
        }
    }
    for state in states.values() {
        tx.save_state(state).await?;
    }
    tx.record_applied(env.id, env.message.kind()).await?;
    tx.commit().await?;
    if parked > 0 && parked == batches.len() {
        Ok(Applied::Parked)
    } else {
        Ok(Applied::Done { reply: None })
    }
}

/// Applies one batch to a table that is not quarantined; updates `state` (LSN, loading phase).
async fn apply_batch(
    tx: &mut dyn Tx,
    state: &mut TableState,
    batch: &RowBatch,
) -> Result<(), ApplyError> {
    let schema = &batch.table;
    let actual = schema_hash(schema);
    if state.schema_hash.as_deref() != Some(actual.as_str()) {
        return Err(ApplyError::SchemaMismatch {
            table: schema.name.clone(),
            expected: state.schema_hash.clone().unwrap_or_else(|| "none".into()),
            actual,
        });
    }
    let changes = collapse(schema, &batch.rows)?;
    if !changes.is_empty() {
        let load = if state.loading {
            Load::Direct
        } else {
            Load::Merge
        };
        if tx.apply_changes(schema, &changes, load).await? == LoadOutcome::Conflict {
            // Rows already there: this table is no longer a fresh load.
            state.loading = false;
            tx.apply_changes(schema, &changes, Load::Merge).await?;
        }
    }
    state.advance_lsn(batch.lsn);
    Ok(())
}

/// True when the message is older than the applied-id retention (its id may have been pruned).
fn is_too_old(env: &Envelope) -> bool {
    let retention_ms = i64::try_from(APPLIED_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let now_ms = chrono::Utc::now().timestamp_millis();
    env.received_at_ms > 0 && now_ms.saturating_sub(env.received_at_ms) > retention_ms
}
