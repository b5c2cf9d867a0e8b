//! One message's transaction on a pooled PostgreSQL connection.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Object;
use futures::future::{join, try_join};
use mirror_common::schema::TableSchema;
use mirror_common::wire::{Kind, ReplicationSummary, RowBatch};
use tokio_postgres::Client;
use uuid::Uuid;

use super::error::classify;
use super::pipeline::{Deferred, pipelined};
use super::rows;
use super::state::{self as sql, Names};
use crate::dialect::{Load, LoadOutcome, Start, Tenant, Tx};
use crate::error::ApplyError;
use crate::plan::Changes;
use crate::state::{FailureRecord, TableState};

/// An open transaction on a connection taken from the pool.
///
/// Writes nothing waits on are deferred (see `pipeline`) and go out with the next awaited
/// statement, so a write's error may surface from a later call, at the latest from `commit`.
///
/// Dropped without a successful commit, the connection is detached from the pool and closed, which
/// makes the server roll the transaction back: no connection ever returns to the pool mid-transaction
/// (not after an error, a timeout or a cancelled future either).
pub struct PgTx {
    conn: Option<Object>,
    tenant: Tenant,
    names: Names,
    /// Writes not sent yet, in order.
    pending: Vec<Deferred>,
}

impl PgTx {
    /// Begins message `message`'s transaction and reads what it starts from (see
    /// [`crate::dialect::Backend::begin`]). One round trip when the state tables exist: `BEGIN`,
    /// their check and the reads go out together. When one is missing, the reads may have failed
    /// for it: the transaction is rolled back and begun again with the tables created first.
    pub async fn begin(
        conn: Object,
        tenant: &Tenant,
        message: Uuid,
        lock: &[&str],
    ) -> Result<(PgTx, Start), ApplyError> {
        let mut tx = PgTx {
            conn: Some(conn),
            tenant: tenant.clone(),
            names: Names::new(tenant)?,
            pending: vec![Deferred::new("BEGIN")],
        };
        let start = tx.start(message, lock).await?;
        Ok((tx, start))
    }

    async fn start(&mut self, message: Uuid, lock: &[&str]) -> Result<Start, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        let checked = async {
            Ok(join(
                sql::missing(client, names),
                read(client, names, message, lock),
            )
            .await)
        };
        let (missing, start) = pipelined(client, pending, checked).await?;
        if missing? == 0 {
            return start;
        }
        client.batch_execute("ROLLBACK").await.map_err(classify)?;
        let created = async {
            sql::create(client, names).await?;
            read(client, names, message, lock).await
        };
        pipelined(client, vec![Deferred::new("BEGIN")], created).await
    }

    /// The connection, the writes to send before anything else, and the names.
    fn parts(&mut self) -> Result<(&Client, Vec<Deferred>, &Names, &Tenant), ApplyError> {
        let pending = std::mem::take(&mut self.pending);
        let client = self
            .conn
            .as_deref()
            .map(|w| &**w)
            .ok_or_else(|| ApplyError::Unavailable {
                message: "the transaction has already ended".into(),
            })?;
        Ok((client, pending, &self.names, &self.tenant))
    }

    /// Queues a write (see `pipeline`).
    fn defer(&mut self, write: Result<Deferred, ApplyError>) -> Result<(), ApplyError> {
        self.pending.push(write?);
        Ok(())
    }
}

/// The message's history and the locked state rows, in one round trip.
async fn read(
    client: &Client,
    names: &Names,
    message: Uuid,
    lock: &[&str],
) -> Result<Start, ApplyError> {
    let (history, states) = try_join(
        sql::history(client, names, message),
        sql::lock_states(client, names, lock),
    )
    .await?;
    Ok(Start {
        history,
        states: states.into_iter().map(|s| (s.table.clone(), s)).collect(),
    })
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(Object::take(conn));
        }
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn record_applied(&mut self, id: Uuid, kind: Kind) -> Result<(), ApplyError> {
        let write = sql::record_applied(&self.names, id, kind);
        self.defer(Ok(write))
    }

    async fn prune(&mut self, max_age: Duration) -> Result<u64, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        pipelined(client, pending, sql::prune(client, names, max_age)).await
    }

    async fn states(&mut self) -> Result<Vec<TableState>, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        pipelined(client, pending, sql::states(client, names)).await
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        pipelined(client, pending, sql::state(client, names, table)).await
    }

    async fn save_state(&mut self, state: &TableState) -> Result<(), ApplyError> {
        let write = sql::save_state(&self.names, state);
        self.defer(write)
    }

    async fn save_progress(&mut self, state: &TableState) -> Result<(), ApplyError> {
        let write = sql::save_progress(&self.names, state);
        self.defer(Ok(write))
    }

    async fn delete_state(&mut self, table: &str) -> Result<(), ApplyError> {
        let write = sql::delete_state(&self.names, table);
        self.defer(Ok(write))
    }

    async fn park(
        &mut self,
        message_id: Uuid,
        epoch: i64,
        batch: &RowBatch,
    ) -> Result<(), ApplyError> {
        let write = sql::park(&self.names, message_id, epoch, batch);
        self.defer(write)
    }

    async fn parked(&mut self, table: &str) -> Result<Vec<RowBatch>, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        pipelined(client, pending, sql::parked(client, names, table)).await
    }

    async fn discard_parked(&mut self, table: &str) -> Result<u64, ApplyError> {
        let (client, pending, names, _) = self.parts()?;
        pipelined(client, pending, sql::discard_parked(client, names, table)).await
    }

    async fn record_failure(&mut self, failure: &FailureRecord) -> Result<(), ApplyError> {
        let write = sql::record_failure(&self.names, failure);
        self.defer(Ok(write))
    }

    async fn complete_cycle(
        &mut self,
        message_id: Uuid,
        summaries: &[ReplicationSummary],
    ) -> Result<(), ApplyError> {
        for write in sql::complete_cycle(&self.names, message_id, summaries)? {
            self.defer(Ok(write))?;
        }
        Ok(())
    }

    async fn mirror_tables(&mut self) -> Result<Vec<String>, ApplyError> {
        let (client, pending, _, tenant) = self.parts()?;
        pipelined(client, pending, sql::mirror_tables(client, tenant)).await
    }

    async fn execute(&mut self, table: &str, statements: &[String]) -> Result<(), ApplyError> {
        let (client, pending, _, _) = self.parts()?;
        let run = async {
            for statement in statements {
                client
                    .batch_execute(statement)
                    .await
                    .map_err(|e| classify(e).for_table(table))?;
            }
            Ok(())
        };
        pipelined(client, pending, run).await
    }

    async fn apply_changes(
        &mut self,
        schema: &TableSchema,
        changes: &Changes<'_>,
        load: Load,
    ) -> Result<LoadOutcome, ApplyError> {
        let (client, pending, _, tenant) = self.parts()?;
        let (outcome, follow_up) =
            rows::apply(client, pending, tenant, schema, changes, load).await?;
        self.pending.extend(follow_up);
        Ok(outcome)
    }

    async fn commit(&mut self) -> Result<(), ApplyError> {
        let (client, pending, _, _) = self.parts()?;
        let commit = async { client.batch_execute("COMMIT").await.map_err(classify) };
        pipelined(client, pending, commit).await?;
        // Back to the pool only now, with no transaction open.
        self.conn.take();
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), ApplyError> {
        // Unsent writes are simply not sent.
        let (client, _, _, _) = self.parts()?;
        client.batch_execute("ROLLBACK").await.map_err(classify)?;
        self.conn.take();
        Ok(())
    }
}
