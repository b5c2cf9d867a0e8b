//! One message's transaction on a pooled PostgreSQL connection.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Object;
use mirror_common::schema::TableSchema;
use mirror_common::wire::{Kind, ReplicationSummary, RowBatch};
use tokio_postgres::Client;
use uuid::Uuid;

use super::error::classify;
use super::rows;
use super::state::{self as sql, Names};
use crate::dialect::{Load, LoadOutcome, Tenant, Tx};
use crate::error::ApplyError;
use crate::plan::Changes;
use crate::state::{FailureRecord, TableState};

/// An open transaction (`BEGIN` issued) on a connection taken from the pool.
///
/// Dropped without a successful commit, the connection is detached from the pool and closed, which
/// makes the server roll the transaction back: no connection ever returns to the pool mid-transaction
/// (not after an error, a timeout or a cancelled future either).
pub struct PgTx {
    conn: Option<Object>,
    tenant: Tenant,
    names: Names,
}

impl PgTx {
    /// Issues `BEGIN` and makes sure the tenant's schema and state tables exist.
    pub async fn begin(conn: Object, tenant: &Tenant) -> Result<PgTx, ApplyError> {
        let names = Names::new(tenant)?;
        let tx = PgTx {
            conn: Some(conn),
            tenant: tenant.clone(),
            names,
        };
        tx.client()?
            .batch_execute("BEGIN")
            .await
            .map_err(classify)?;
        sql::ensure(tx.client()?, &tx.names).await?;
        Ok(tx)
    }

    fn client(&self) -> Result<&Client, ApplyError> {
        self.conn
            .as_deref()
            .map(|w| &**w)
            .ok_or_else(|| ApplyError::Unavailable {
                message: "the transaction has already ended".into(),
            })
    }
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
    async fn is_applied(&mut self, id: Uuid) -> Result<bool, ApplyError> {
        sql::is_applied(self.client()?, &self.names, id).await
    }

    async fn record_applied(&mut self, id: Uuid, kind: Kind) -> Result<(), ApplyError> {
        sql::record_applied(self.client()?, &self.names, id, kind).await
    }

    async fn prune(&mut self, max_age: Duration) -> Result<u64, ApplyError> {
        sql::prune(self.client()?, &self.names, max_age).await
    }

    async fn states(&mut self) -> Result<Vec<TableState>, ApplyError> {
        sql::states(self.client()?, &self.names).await
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, ApplyError> {
        sql::state(self.client()?, &self.names, table).await
    }

    async fn save_state(&mut self, state: &TableState) -> Result<(), ApplyError> {
        sql::save_state(self.client()?, &self.names, state).await
    }

    async fn delete_state(&mut self, table: &str) -> Result<(), ApplyError> {
        sql::delete_state(self.client()?, &self.names, table).await
    }

    async fn park(
        &mut self,
        message_id: Uuid,
        epoch: i64,
        batch: &RowBatch,
    ) -> Result<(), ApplyError> {
        sql::park(self.client()?, &self.names, message_id, epoch, batch).await
    }

    async fn parked(&mut self, table: &str) -> Result<Vec<RowBatch>, ApplyError> {
        sql::parked(self.client()?, &self.names, table).await
    }

    async fn discard_parked(&mut self, table: &str) -> Result<u64, ApplyError> {
        sql::discard_parked(self.client()?, &self.names, table).await
    }

    async fn failure(&mut self, message_id: Uuid) -> Result<Option<FailureRecord>, ApplyError> {
        sql::failure(self.client()?, &self.names, message_id).await
    }

    async fn record_failure(&mut self, failure: &FailureRecord) -> Result<(), ApplyError> {
        sql::record_failure(self.client()?, &self.names, failure).await
    }

    async fn complete_cycle(
        &mut self,
        message_id: Uuid,
        summaries: &[ReplicationSummary],
    ) -> Result<(), ApplyError> {
        sql::complete_cycle(self.client()?, &self.names, message_id, summaries).await
    }

    async fn mirror_tables(&mut self) -> Result<Vec<String>, ApplyError> {
        sql::mirror_tables(self.client()?, &self.tenant).await
    }

    async fn execute(&mut self, table: &str, statements: &[String]) -> Result<(), ApplyError> {
        let client = self.client()?;
        for statement in statements {
            client
                .batch_execute(statement)
                .await
                .map_err(|e| classify(e).for_table(table))?;
        }
        Ok(())
    }

    async fn apply_changes(
        &mut self,
        schema: &TableSchema,
        changes: &Changes<'_>,
        load: Load,
    ) -> Result<LoadOutcome, ApplyError> {
        rows::apply(self.client()?, &self.tenant, schema, changes, load).await
    }

    async fn commit(&mut self) -> Result<(), ApplyError> {
        self.client()?
            .batch_execute("COMMIT")
            .await
            .map_err(classify)?;
        // Back to the pool only now, with no transaction open.
        self.conn.take();
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), ApplyError> {
        self.client()?
            .batch_execute("ROLLBACK")
            .await
            .map_err(classify)?;
        self.conn.take();
        Ok(())
    }
}
