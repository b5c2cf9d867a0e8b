//! What each database target renders and does; everything else (planning, state rules, the flow
//! of a message) is shared and lives in `plan`, `state` and `engine`.
//!
//! A target provides three things:
//! - [`Render`]: pure functions from typed schemas to SQL text (identifier quoting, type mapping,
//!   default literals, DDL). No I/O, so each target's SQL is checked offline with golden tests.
//! - [`Backend`]: one per process; owns the connections and opens a transaction on a tenant's
//!   storage, creating that storage and its state tables on first use.
//! - [`Tx`]: one message's transaction: state-table reads and writes, running rendered DDL, and
//!   loading a collapsed batch set-based.
//!
//! Tenant storage differs by target: PostgreSQL keeps a schema per tenant in one database
//! (connections are per database, so one small pool serves every tenant), SQL Server a database per
//! tenant (addressed with three-part names, or a connection per database). [`Tenant::storage`] is
//! that schema's or database's name; the renderer qualifies every table with it.
//!
//! Loading rows is wholly the target's: PostgreSQL uses binary `COPY`; SQL Server would use a bulk
//! load or table-valued parameter (its 2,100-parameter cap rules out wide `VALUES` lists) and
//! `UPDATE … FROM` + `INSERT … WHERE NOT EXISTS` (or `MERGE … WITH (HOLDLOCK)`) from a session
//! temp table. Either way: set-based, never a statement per row.

pub mod mssql;
pub mod postgres;

use std::collections::HashMap;

use async_trait::async_trait;
use mirror_common::schema::{ColumnType, DefaultValue, TableSchema};
use mirror_common::wire::{Kind, ReplicationSummary, RowBatch};
use uuid::Uuid;

use crate::error::ApplyError;
use crate::plan::{AlterAction, Changes};
use crate::state::{FailureRecord, History, TableState};

/// A tenant and the name of its storage (PostgreSQL schema or SQL Server database), from
/// `database.name_template`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    /// SuperOffice context id (`Cust24709`); prefixes the state tables.
    pub context_id: String,
    /// Schema or database name (`Mirror_Cust24709`).
    pub storage: String,
}

/// What a message's transaction starts from, read as it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// What the tenant's mirror remembers of the message.
    pub history: History,
    /// The state rows of the tables asked for that have one, locked until the end of the
    /// transaction, by table name.
    pub states: HashMap<String, TableState>,
}

/// How [`Tx::apply_changes`] should load the upserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// The table is being (re)loaded: delete, then bulk-load the upserts straight into the table.
    /// If a key already exists the target undoes this load (savepoint) and answers
    /// [`LoadOutcome::Conflict`]; the engine then retries with [`Load::Merge`].
    Direct,
    /// Stage the upserts in a temp table, then one upsert statement and one set-based delete.
    Merge,
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    Applied,
    /// A [`Load::Direct`] hit an existing key and changed nothing.
    Conflict,
}

/// SQL text for one target. Every identifier is quoted by [`Render::quote`], which refuses names
/// the target would truncate; every default is rendered from a parsed [`DefaultValue`] literal.
/// Values never appear in rendered SQL: they are bound or bulk-loaded.
pub trait Render: Send + Sync {
    /// A quoted identifier (`"contact"`, `[contact]`), or an error when the target cannot hold it.
    fn quote(&self, ident: &str) -> Result<String, ApplyError>;

    /// The fully qualified, quoted name of a table in the tenant's storage.
    fn table(&self, tenant: &Tenant, table: &str) -> Result<String, ApplyError>;

    /// The target's column type for a SuperOffice column type.
    fn column_type(&self, ty: ColumnType) -> String;

    /// A literal for a column default, escaped for the target.
    fn default_literal(&self, default: &DefaultValue, ty: ColumnType) -> String;

    /// Statements creating a mirror table: column 0 the primary key, NOT NULL per nullability,
    /// defaults.
    fn create_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
    ) -> Result<Vec<String>, ApplyError>;

    /// Statements altering a table in place, in order.
    fn alter_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
        actions: &[AlterAction],
    ) -> Result<Vec<String>, ApplyError>;

    /// A statement dropping the table if it exists (the same in both dialects).
    fn drop_table(&self, tenant: &Tenant, table: &str) -> Result<String, ApplyError> {
        Ok(format!(
            "DROP TABLE IF EXISTS {}",
            self.table(tenant, table)?
        ))
    }

    /// A statement emptying the table (the same in both dialects).
    fn truncate_table(&self, tenant: &Tenant, table: &str) -> Result<String, ApplyError> {
        Ok(format!("TRUNCATE TABLE {}", self.table(tenant, table)?))
    }
}

/// A database target: one per process, shared by all tenants (`Send + Sync`, cheap to share).
#[async_trait]
pub trait Backend: Send + Sync {
    fn render(&self) -> &dyn Render;

    /// Opens the transaction of message `message` on the tenant's storage, creating the storage
    /// and its state tables first if they are missing (they may have been dropped by an operator:
    /// check every time, a cache would go stale), and reads what it starts from: the message's
    /// history and the state rows of `lock`, locked (one round trip where the target allows: every
    /// message starts with these questions). A `Tx` dropped without [`Tx::commit`] must roll back.
    async fn begin(
        &self,
        tenant: &Tenant,
        message: Uuid,
        lock: &[&str],
    ) -> Result<(Box<dyn Tx>, Start), ApplyError>;

    /// Runs an operator's SQL script (a hook) in its own transaction in the tenant's storage, so
    /// unqualified names resolve there.
    async fn run_script(&self, tenant: &Tenant, sql: &str) -> Result<(), ApplyError>;

    /// A round trip to the server (readiness).
    async fn ping(&self) -> Result<(), ApplyError>;
}

/// One message's transaction in one tenant's storage.
#[async_trait]
pub trait Tx: Send {
    // ---- bookkeeping: `<contextId>_mirroring*` ----

    async fn record_applied(&mut self, id: Uuid, kind: Kind) -> Result<(), ApplyError>;
    /// Forgets applied ids and failure records older than `max_age`; returns how many went.
    async fn prune(&mut self, max_age: std::time::Duration) -> Result<u64, ApplyError>;

    /// Every state row.
    async fn states(&mut self) -> Result<Vec<TableState>, ApplyError>;
    /// One state row, locked until the end of the transaction.
    async fn state(&mut self, table: &str) -> Result<Option<TableState>, ApplyError>;
    /// Inserts or updates a state row (and its updated time).
    async fn save_state(&mut self, state: &TableState) -> Result<(), ApplyError>;
    /// Stores only what applying row batches changes in an existing state row: its LSN and
    /// loading phase (and its updated time). Cheaper than [`Tx::save_state`], which also writes
    /// the stored schema, on every RowData message.
    async fn save_progress(&mut self, state: &TableState) -> Result<(), ApplyError>;
    async fn delete_state(&mut self, table: &str) -> Result<(), ApplyError>;

    /// Appends a batch to its table's parked queue.
    async fn park(
        &mut self,
        message_id: Uuid,
        epoch: i64,
        batch: &RowBatch,
    ) -> Result<(), ApplyError>;
    /// The table's parked batches, oldest first.
    async fn parked(&mut self, table: &str) -> Result<Vec<RowBatch>, ApplyError>;
    /// Drops the table's parked batches; returns how many.
    async fn discard_parked(&mut self, table: &str) -> Result<u64, ApplyError>;

    async fn record_failure(&mut self, failure: &FailureRecord) -> Result<(), ApplyError>;

    /// Records a completed cycle (time, counts) and ends every table's loading phase; sets the
    /// last-cycle time of the tables in `summaries`.
    async fn complete_cycle(
        &mut self,
        message_id: Uuid,
        summaries: &[ReplicationSummary],
    ) -> Result<(), ApplyError>;

    // ---- mirror tables ----

    /// Names of the tables in the tenant's storage, state tables excluded.
    async fn mirror_tables(&mut self) -> Result<Vec<String>, ApplyError>;

    /// Runs rendered statements; failures are attributed to `table`.
    async fn execute(&mut self, table: &str, statements: &[String]) -> Result<(), ApplyError>;

    /// Applies a collapsed batch to a table built from `schema` (see [`Load`]).
    async fn apply_changes(
        &mut self,
        schema: &TableSchema,
        changes: &Changes<'_>,
        load: Load,
    ) -> Result<LoadOutcome, ApplyError>;

    /// Commits. After an error the transaction is unusable: roll it back or drop it.
    async fn commit(&mut self) -> Result<(), ApplyError>;

    /// Rolls back and releases the connection. A `Tx` dropped without commit or rollback must
    /// also roll back (e.g. by closing its connection), since a future can be cancelled anywhere.
    async fn rollback(&mut self) -> Result<(), ApplyError>;
}
