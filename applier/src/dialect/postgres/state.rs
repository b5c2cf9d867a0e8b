//! The state tables on PostgreSQL (layout and rules: `crate::state`).

use std::time::Duration;

use mirror_common::schema::TableSchema;
use mirror_common::wire::{self, Kind, ReplicationSummary, RowBatch};
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::error::classify;
use super::pipeline::Deferred;
use super::render::PgRender;
use crate::dialect::{Render, Tenant};
use crate::error::ApplyError;
use crate::state::{FailureRecord, History, TableState, state_table, suffix};

/// Quoted, qualified names of one tenant's state tables.
#[derive(Debug, Clone)]
pub struct Names {
    pub schema: String,
    pub state: String,
    pub applied: String,
    pub parked: String,
    pub failed: String,
    pub cycles: String,
}

impl Names {
    pub fn new(tenant: &Tenant) -> Result<Names, ApplyError> {
        let r = PgRender;
        let q = |s: &str| r.table(tenant, &state_table(&tenant.context_id, s));
        Ok(Names {
            schema: r.quote(&tenant.storage)?,
            state: q(suffix::STATE)?,
            applied: q(suffix::APPLIED)?,
            parked: q(suffix::PARKED)?,
            failed: q(suffix::FAILED)?,
            cycles: q(suffix::CYCLES)?,
        })
    }

    /// Every state table's qualified name.
    fn qualified(&self) -> [&String; 5] {
        [
            &self.state,
            &self.applied,
            &self.parked,
            &self.failed,
            &self.cycles,
        ]
    }

    /// Idempotent DDL for the schema and every state table. The first three columns of the state
    /// table are SuperOffice's own (`tablename`, `lsn`, `schemahash`).
    fn ddl(&self) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {state} (
                 tablename text PRIMARY KEY,
                 lsn bigint NOT NULL DEFAULT -1,
                 schemahash text,
                 epoch bigint NOT NULL DEFAULT 0,
                 schemajson text,
                 quarantine text,
                 quarantined_at timestamptz,
                 loading boolean NOT NULL DEFAULT false,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 last_cycle_at timestamptz);
             CREATE TABLE IF NOT EXISTS {applied} (
                 message_id uuid PRIMARY KEY,
                 kind text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {parked} (
                 seq bigserial PRIMARY KEY,
                 tablename text NOT NULL,
                 epoch bigint NOT NULL,
                 message_id uuid NOT NULL,
                 batch bytea NOT NULL,
                 parked_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {failed} (
                 message_id uuid PRIMARY KEY,
                 tablename text NOT NULL,
                 epoch bigint NOT NULL,
                 reason text NOT NULL,
                 failed_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {cycles} (
                 cycle bigserial PRIMARY KEY,
                 message_id uuid NOT NULL,
                 completed_at timestamptz NOT NULL DEFAULT now(),
                 summary jsonb NOT NULL);",
            schema = self.schema,
            state = self.state,
            applied = self.applied,
            parked = self.parked,
            failed = self.failed,
            cycles = self.cycles,
        )
    }
}

/// How many of the tenant's schema's state tables are missing, with one lookup per table in the
/// server's catalog cache (`to_regclass`), which is much cheaper to plan than `pg_tables`. Checked
/// on every message, because an operator may drop the state table to force a full resync.
pub async fn missing(client: &Client, names: &Names) -> Result<i32, ApplyError> {
    let tables = names.qualified();
    let missing_sql = format!(
        "SELECT num_nulls({})",
        (1..=tables.len())
            .map(|i| format!("to_regclass(${i}::text)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let params: Vec<Param<'_>> = tables.iter().map(|t| (*t as &Sql, Type::TEXT)).collect();
    let row = client
        .query_typed_one(&missing_sql, &params)
        .await
        .map_err(classify)?;
    Ok(row.get(0))
}

/// Creates the tenant's schema and every missing state table.
pub async fn create(client: &Client, names: &Names) -> Result<(), ApplyError> {
    client.batch_execute(&names.ddl()).await.map_err(classify)
}

type Sql = dyn ToSql + Sync;
/// A parameter with its type, for the one-round-trip `*_typed` calls of the per-message path.
type Param<'a> = (&'a Sql, Type);

fn row_to_state(row: &tokio_postgres::Row) -> TableState {
    let table: String = row.get(0);
    let json: Option<String> = row.get(4);
    let schema = json.and_then(|j| match serde_json::from_str::<TableSchema>(&j) {
        Ok(s) => Some(s),
        Err(error) => {
            // Treated as unknown: the next TableSchema recreates the table.
            tracing::warn!(%error, table = %table, "Unreadable stored schema.");
            None
        }
    });
    TableState {
        table,
        lsn: row.get(1),
        schema_hash: row.get(2),
        epoch: row.get(3),
        schema,
        quarantine: row.get(5),
        loading: row.get(6),
    }
}

const STATE_COLUMNS: &str = "tablename, lsn, schemahash, epoch, schemajson, quarantine, loading";

pub async fn states(client: &Client, n: &Names) -> Result<Vec<TableState>, ApplyError> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM {}", n.state);
    let rows = client.query(&sql, &[]).await.map_err(classify)?;
    Ok(rows.iter().map(row_to_state).collect())
}

pub async fn state(
    client: &Client,
    n: &Names,
    table: &str,
) -> Result<Option<TableState>, ApplyError> {
    Ok(lock_states(client, n, &[table]).await?.pop())
}

/// The state rows of `tables` (those that have one), locked until the end of the transaction.
pub async fn lock_states(
    client: &Client,
    n: &Names,
    tables: &[&str],
) -> Result<Vec<TableState>, ApplyError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {STATE_COLUMNS} FROM {} WHERE tablename = ANY($1) ORDER BY tablename FOR UPDATE",
        n.state
    );
    let rows = client
        .query_typed(&sql, &[(&tables, Type::TEXT_ARRAY)])
        .await
        .map_err(classify)?;
    Ok(rows.iter().map(row_to_state).collect())
}

pub fn save_state(n: &Names, s: &TableState) -> Result<Deferred, ApplyError> {
    let json = match &s.schema {
        Some(schema) => {
            Some(
                serde_json::to_string(schema).map_err(|e| ApplyError::CorruptState {
                    table: Some(s.table.clone()),
                    reason: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let sql = format!(
        "INSERT INTO {t} AS s (tablename, lsn, schemahash, epoch, schemajson, quarantine,
                              quarantined_at, loading, updated_at)
         VALUES ($1::text, $2::bigint, $3::text, $4::bigint, $5::text, $6::text,
                 CASE WHEN $6::text IS NULL THEN NULL ELSE now() END, $7::boolean, now())
         ON CONFLICT (tablename) DO UPDATE SET
             lsn = EXCLUDED.lsn, schemahash = EXCLUDED.schemahash, epoch = EXCLUDED.epoch,
             schemajson = EXCLUDED.schemajson, quarantine = EXCLUDED.quarantine,
             quarantined_at = CASE WHEN EXCLUDED.quarantine IS NULL THEN NULL
                                   ELSE coalesce(s.quarantined_at, now()) END,
             loading = EXCLUDED.loading, updated_at = now()",
        t = n.state
    );
    Ok(Deferred::new(sql)
        .bind(s.table.clone(), Type::TEXT)
        .bind(s.lsn, Type::INT8)
        .bind(s.schema_hash.clone(), Type::TEXT)
        .bind(s.epoch, Type::INT8)
        .bind(json, Type::TEXT)
        .bind(s.quarantine.clone(), Type::TEXT)
        .bind(s.loading, Type::BOOL))
}

pub fn save_progress(n: &Names, s: &TableState) -> Deferred {
    let sql = format!(
        "UPDATE {} SET lsn = $2, loading = $3, updated_at = now() WHERE tablename = $1",
        n.state
    );
    Deferred::new(sql)
        .bind(s.table.clone(), Type::TEXT)
        .bind(s.lsn, Type::INT8)
        .bind(s.loading, Type::BOOL)
}

pub fn delete_state(n: &Names, table: &str) -> Deferred {
    let sql = format!("DELETE FROM {} WHERE tablename = $1", n.state);
    Deferred::new(sql).bind(table.to_owned(), Type::TEXT)
}

pub async fn history(client: &Client, n: &Names, id: Uuid) -> Result<History, ApplyError> {
    let sql = format!(
        "SELECT f.tablename, f.epoch, f.reason,
                EXISTS (SELECT 1 FROM {applied} WHERE message_id = $1)
         FROM (SELECT 1) AS one LEFT JOIN {failed} f ON f.message_id = $1",
        applied = n.applied,
        failed = n.failed
    );
    let row = client
        .query_typed_one(&sql, &[(&id, Type::UUID)])
        .await
        .map_err(classify)?;
    let table: Option<String> = row.get(0);
    Ok(History {
        failure: table.map(|table| FailureRecord {
            message_id: id,
            table,
            epoch: row.get(1),
            reason: row.get(2),
        }),
        applied: row.get(3),
    })
}

pub fn record_applied(n: &Names, id: Uuid, kind: Kind) -> Deferred {
    let sql = format!(
        "INSERT INTO {} (message_id, kind) VALUES ($1, $2) ON CONFLICT (message_id) DO NOTHING",
        n.applied
    );
    Deferred::new(sql)
        .bind(id, Type::UUID)
        .bind(kind.as_str(), Type::TEXT)
}

pub async fn prune(client: &Client, n: &Names, max_age: Duration) -> Result<u64, ApplyError> {
    let secs = max_age.as_secs_f64();
    let mut total = 0;
    for (table, column) in [(&n.applied, "applied_at"), (&n.failed, "failed_at")] {
        let sql = format!(
            "DELETE FROM {table} WHERE {column} < now() - $1::float8 * interval '1 second'"
        );
        total += client.execute(&sql, &[&secs]).await.map_err(classify)?;
    }
    Ok(total)
}

pub fn park(n: &Names, id: Uuid, epoch: i64, batch: &RowBatch) -> Result<Deferred, ApplyError> {
    let bytes = wire::encode(batch).map_err(|e| ApplyError::CorruptState {
        table: Some(batch.table.name.clone()),
        reason: e.to_string(),
    })?;
    let sql = format!(
        "INSERT INTO {} (tablename, epoch, message_id, batch) VALUES ($1, $2, $3, $4)",
        n.parked
    );
    Ok(Deferred::new(sql)
        .bind(batch.table.name.clone(), Type::TEXT)
        .bind(epoch, Type::INT8)
        .bind(id, Type::UUID)
        .bind(bytes, Type::BYTEA))
}

pub async fn parked(client: &Client, n: &Names, table: &str) -> Result<Vec<RowBatch>, ApplyError> {
    let sql = format!(
        "SELECT batch FROM {} WHERE tablename = $1 ORDER BY seq",
        n.parked
    );
    let rows = client.query(&sql, &[&table]).await.map_err(classify)?;
    rows.iter()
        .map(|r| {
            wire::decode::<RowBatch>(r.get::<_, &[u8]>(0)).map_err(|e| ApplyError::CorruptState {
                table: Some(table.to_owned()),
                reason: format!("parked batch: {e}"),
            })
        })
        .collect()
}

pub async fn discard_parked(client: &Client, n: &Names, table: &str) -> Result<u64, ApplyError> {
    let sql = format!("DELETE FROM {} WHERE tablename = $1", n.parked);
    client.execute(&sql, &[&table]).await.map_err(classify)
}

pub fn record_failure(n: &Names, f: &FailureRecord) -> Deferred {
    let sql = format!(
        "INSERT INTO {} (message_id, tablename, epoch, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (message_id) DO UPDATE SET tablename = EXCLUDED.tablename,
             epoch = EXCLUDED.epoch, reason = EXCLUDED.reason, failed_at = now()",
        n.failed
    );
    Deferred::new(sql)
        .bind(f.message_id, Type::UUID)
        .bind(f.table.clone(), Type::TEXT)
        .bind(f.epoch, Type::INT8)
        .bind(f.reason.clone(), Type::TEXT)
}

/// The statements recording a completed cycle, in order.
pub fn complete_cycle(
    n: &Names,
    id: Uuid,
    summaries: &[ReplicationSummary],
) -> Result<[Deferred; 3], ApplyError> {
    let summary = serde_json::to_string(summaries).map_err(|e| ApplyError::CorruptState {
        table: None,
        reason: e.to_string(),
    })?;
    let tables: Vec<String> = summaries.iter().map(|s| s.table.clone()).collect();
    let insert = format!(
        "INSERT INTO {} (message_id, summary) VALUES ($1, $2::text::jsonb)",
        n.cycles
    );
    let end_loading = format!("UPDATE {} SET loading = false WHERE loading", n.state);
    let touched = format!(
        "UPDATE {} SET last_cycle_at = now() WHERE tablename = ANY($1)",
        n.state
    );
    Ok([
        Deferred::new(insert)
            .bind(id, Type::UUID)
            .bind(summary, Type::TEXT),
        Deferred::new(end_loading),
        Deferred::new(touched).bind(tables, Type::TEXT_ARRAY),
    ])
}

pub async fn mirror_tables(client: &Client, tenant: &Tenant) -> Result<Vec<String>, ApplyError> {
    let rows = client
        .query(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1",
            &[&tenant.storage],
        )
        .await
        .map_err(classify)?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !crate::state::is_reserved(&tenant.context_id, t))
        .collect())
}
