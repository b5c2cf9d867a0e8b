//! One message's transaction on a pooled SQL Server connection.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use mirror_common::schema::TableSchema;
use mirror_common::wire::{Kind, ReplicationSummary, RowBatch};
use uuid::Uuid;

use super::bookkeeping::StateSql;
use super::load;
use super::pool::{Client, Conn, batch};
use super::state as sql;
use super::statement::{BEGIN, COMMIT, ROLLBACK, Upsert};
use crate::dialect::{Load, LoadOutcome, Start, Tenant, Tx};
use crate::error::ApplyError;
use crate::plan::Changes;
use crate::state::{FailureRecord, TableState};

/// An open transaction (`BEGIN TRANSACTION` issued) in a tenant's database.
///
/// Dropped without a successful commit, its connection is closed instead of pooled, and the
/// server rolls the transaction back (after an error, a timeout or a cancelled future alike).
pub struct MssqlTx {
    conn: Option<Conn>,
    tenant: Tenant,
    sql: StateSql,
    upsert: Upsert,
}

impl MssqlTx {
    /// Issues `BEGIN TRANSACTION`, makes sure the state tables exist, and reads what message
    /// `message`'s transaction starts from (see [`crate::dialect::Backend::begin`]). The tenant's
    /// database must exist already (`CREATE DATABASE` cannot run inside a transaction).
    pub async fn begin(
        mut conn: Conn,
        tenant: &Tenant,
        upsert: Upsert,
        message: Uuid,
        lock: &[&str],
    ) -> Result<(MssqlTx, Start), ApplyError> {
        let state_sql = StateSql::new(tenant)?;
        batch(conn.client()?, BEGIN).await?;
        sql::ensure(conn.client()?, &state_sql).await?;
        let mut tx = MssqlTx {
            conn: Some(conn),
            tenant: tenant.clone(),
            sql: state_sql,
            upsert,
        };
        let (client, s) = tx.parts()?;
        let history = sql::history(client, s, message).await?;
        let mut states = HashMap::new();
        for table in lock {
            if let Some(state) = sql::state(client, s, table).await? {
                states.insert(state.table.clone(), state);
            }
        }
        Ok((tx, Start { history, states }))
    }

    fn client(&mut self) -> Result<&mut Client, ApplyError> {
        match self.conn.as_mut() {
            Some(conn) => conn.client(),
            None => Err(ApplyError::Unavailable {
                message: "the transaction has already ended".into(),
            }),
        }
    }

    /// The client and the statements together (they are borrowed from different fields).
    fn parts(&mut self) -> Result<(&mut Client, &StateSql), ApplyError> {
        let conn = self.conn.as_mut().ok_or_else(|| ApplyError::Unavailable {
            message: "the transaction has already ended".into(),
        })?;
        Ok((conn.client()?, &self.sql))
    }
}

#[async_trait]
impl Tx for MssqlTx {
    async fn record_applied(&mut self, id: Uuid, kind: Kind) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::record_applied(client, s, id, kind).await
    }

    async fn prune(&mut self, max_age: Duration) -> Result<u64, ApplyError> {
        let (client, s) = self.parts()?;
        sql::prune(client, s, max_age).await
    }

    async fn states(&mut self) -> Result<Vec<TableState>, ApplyError> {
        let (client, s) = self.parts()?;
        sql::states(client, s).await
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, ApplyError> {
        let (client, s) = self.parts()?;
        sql::state(client, s, table).await
    }

    async fn save_state(&mut self, state: &TableState) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::save_state(client, s, state).await
    }

    async fn save_progress(&mut self, state: &TableState) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::save_progress(client, s, state).await
    }

    async fn delete_state(&mut self, table: &str) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::delete_state(client, s, table).await
    }

    async fn park(
        &mut self,
        message_id: Uuid,
        epoch: i64,
        batch: &RowBatch,
    ) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::park(client, s, message_id, epoch, batch).await
    }

    async fn parked(&mut self, table: &str) -> Result<Vec<RowBatch>, ApplyError> {
        let (client, s) = self.parts()?;
        sql::parked(client, s, table).await
    }

    async fn discard_parked(&mut self, table: &str) -> Result<u64, ApplyError> {
        let (client, s) = self.parts()?;
        sql::discard_parked(client, s, table).await
    }

    async fn record_failure(&mut self, failure: &FailureRecord) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::record_failure(client, s, failure).await
    }

    async fn complete_cycle(
        &mut self,
        message_id: Uuid,
        summaries: &[ReplicationSummary],
    ) -> Result<(), ApplyError> {
        let (client, s) = self.parts()?;
        sql::complete_cycle(client, s, message_id, summaries).await
    }

    async fn mirror_tables(&mut self) -> Result<Vec<String>, ApplyError> {
        let context_id = self.tenant.context_id.clone();
        let (client, s) = self.parts()?;
        sql::mirror_tables(client, s, &context_id).await
    }

    async fn execute(&mut self, table: &str, statements: &[String]) -> Result<(), ApplyError> {
        let client = self.client()?;
        for statement in statements {
            batch(client, statement)
                .await
                .map_err(|e| e.for_table(table))?;
        }
        Ok(())
    }

    async fn apply_changes(
        &mut self,
        schema: &TableSchema,
        changes: &Changes<'_>,
        how: Load,
    ) -> Result<LoadOutcome, ApplyError> {
        let tenant = self.tenant.clone();
        let upsert = self.upsert;
        load::apply(self.client()?, &tenant, schema, changes, how, upsert).await
    }

    async fn commit(&mut self) -> Result<(), ApplyError> {
        batch(self.client()?, COMMIT).await?;
        // Back to the pool only now, with no transaction open.
        if let Some(conn) = self.conn.take() {
            conn.release();
        }
        Ok(())
    }

    /// The server may have ended the transaction itself (a deadlock victim is rolled back), hence
    /// the `@@TRANCOUNT` test. A connection that answered is in step and goes back to the pool;
    /// after an error it is closed (which rolls back too).
    async fn rollback(&mut self) -> Result<(), ApplyError> {
        let result = batch(self.client()?, ROLLBACK).await;
        if let Some(conn) = self.conn.take()
            && result.is_ok()
        {
            conn.release();
        }
        result
    }
}
