//! The state tables on SQL Server: creating them and reading and writing their rows (statements:
//! `bookkeeping`; rules: `crate::state`).

use std::time::Duration;

use mirror_common::schema::TableSchema;
use mirror_common::wire::{self, Kind, ReplicationSummary, RowBatch};
use tiberius::{Row, ToSql};
use uuid::Uuid;

use super::bookkeeping::StateSql;
use super::error::classify;
use super::pool::Client;
use crate::error::ApplyError;
use crate::state::{FailureRecord, History, TableState, is_reserved};

/// Rows of a statement.
pub async fn rows(
    client: &mut Client,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Vec<Row>, ApplyError> {
    client
        .query(sql, params)
        .await
        .map_err(classify)?
        .into_first_result()
        .await
        .map_err(classify)
}

/// Rows affected by a statement.
pub async fn exec(
    client: &mut Client,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<u64, ApplyError> {
    Ok(client.execute(sql, params).await.map_err(classify)?.total())
}

fn corrupt(table: Option<&str>, reason: String) -> ApplyError {
    ApplyError::CorruptState {
        table: table.map(str::to_owned),
        reason,
    }
}

/// Column `i` of `row`, NULL as `None`.
pub fn get<'a, T: tiberius::FromSql<'a>>(row: &'a Row, i: usize) -> Result<Option<T>, ApplyError> {
    row.try_get::<T, usize>(i)
        .map_err(|e| corrupt(None, format!("column {i}: {e}")))
}

/// Column `i` of `row`, which must not be NULL.
pub fn required<'a, T: tiberius::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, ApplyError> {
    get(row, i)?.ok_or_else(|| corrupt(None, format!("column {i} is NULL")))
}

/// Names of the tables in the tenant database's `dbo` schema.
async fn dbo_tables(
    client: &mut Client,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Vec<String>, ApplyError> {
    rows(client, sql, params)
        .await?
        .iter()
        .map(|r| required::<&str>(r, 0).map(str::to_owned))
        .collect()
}

/// Creates the state tables that are missing. One catalog query in the common case; checked on
/// every message because an operator may drop the state table to force a full resync.
pub async fn ensure(client: &mut Client, s: &StateSql) -> Result<(), ApplyError> {
    let params: Vec<&dyn ToSql> = s.plain.iter().map(|n| n as &dyn ToSql).collect();
    let present = dbo_tables(client, &s.existing_tables(), &params).await?;
    for (name, create) in s.plain.iter().zip(s.create_tables()) {
        if !present.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            exec(client, &create, &[]).await?;
        }
    }
    Ok(())
}

pub async fn mirror_tables(
    client: &mut Client,
    s: &StateSql,
    context_id: &str,
) -> Result<Vec<String>, ApplyError> {
    Ok(dbo_tables(client, &s.mirror_tables(), &[])
        .await?
        .into_iter()
        .filter(|t| !is_reserved(context_id, t))
        .collect())
}

fn row_to_state(row: &Row) -> Result<TableState, ApplyError> {
    let table: String = required::<&str>(row, 0)?.to_owned();
    let schema = get::<&str>(row, 4)?.and_then(|j| match serde_json::from_str::<TableSchema>(j) {
        Ok(s) => Some(s),
        Err(error) => {
            // Treated as unknown: the next TableSchema recreates the table.
            tracing::warn!(%error, table = %table, "Unreadable stored schema.");
            None
        }
    });
    Ok(TableState {
        lsn: required(row, 1)?,
        schema_hash: get::<&str>(row, 2)?.map(str::to_owned),
        epoch: required(row, 3)?,
        schema,
        quarantine: get::<&str>(row, 5)?.map(str::to_owned),
        loading: required(row, 6)?,
        table,
    })
}

pub async fn states(client: &mut Client, s: &StateSql) -> Result<Vec<TableState>, ApplyError> {
    rows(client, &s.states(), &[])
        .await?
        .iter()
        .map(row_to_state)
        .collect()
}

pub async fn state(
    client: &mut Client,
    s: &StateSql,
    table: &str,
) -> Result<Option<TableState>, ApplyError> {
    rows(client, &s.state_locked(), &[&table])
        .await?
        .first()
        .map(row_to_state)
        .transpose()
        .map_err(|e| e.for_table(table))
}

pub async fn save_state(
    client: &mut Client,
    s: &StateSql,
    st: &TableState,
) -> Result<(), ApplyError> {
    let json = match &st.schema {
        Some(schema) => Some(
            serde_json::to_string(schema).map_err(|e| corrupt(Some(&st.table), e.to_string()))?,
        ),
        None => None,
    };
    let hash = st.schema_hash.as_deref();
    let quarantine = st.quarantine.as_deref();
    let params: [&dyn ToSql; 7] = [
        &st.table.as_str(),
        &st.lsn,
        &hash,
        &st.epoch,
        &json.as_deref(),
        &quarantine,
        &st.loading,
    ];
    for statement in s.save_state() {
        exec(client, &statement, &params).await?;
    }
    Ok(())
}

pub async fn save_progress(
    client: &mut Client,
    s: &StateSql,
    st: &TableState,
) -> Result<(), ApplyError> {
    let params: [&dyn ToSql; 3] = [&st.table.as_str(), &st.lsn, &st.loading];
    exec(client, &s.save_progress(), &params).await?;
    Ok(())
}

pub async fn delete_state(
    client: &mut Client,
    s: &StateSql,
    table: &str,
) -> Result<(), ApplyError> {
    exec(client, &s.delete_state(), &[&table]).await?;
    Ok(())
}

pub async fn history(client: &mut Client, s: &StateSql, id: Uuid) -> Result<History, ApplyError> {
    let found = rows(client, &s.history(), &[&id]).await?;
    let row = found
        .first()
        .ok_or_else(|| corrupt(None, "the message history query returned no row".into()))?;
    let failure = match get::<&str>(row, 0)? {
        Some(table) => Some(FailureRecord {
            message_id: id,
            table: table.to_owned(),
            epoch: required(row, 1)?,
            reason: required::<&str>(row, 2)?.to_owned(),
        }),
        None => None,
    };
    Ok(History {
        failure,
        applied: required(row, 3)?,
    })
}

pub async fn record_applied(
    client: &mut Client,
    s: &StateSql,
    id: Uuid,
    kind: Kind,
) -> Result<(), ApplyError> {
    exec(client, &s.record_applied(), &[&id, &kind.as_str()]).await?;
    Ok(())
}

pub async fn prune(
    client: &mut Client,
    s: &StateSql,
    max_age: Duration,
) -> Result<u64, ApplyError> {
    // DATEADD takes an int; 68 years is retention enough.
    let secs = i32::try_from(max_age.as_secs()).unwrap_or(i32::MAX);
    let mut total = 0;
    for statement in s.prune() {
        total += exec(client, &statement, &[&secs]).await?;
    }
    Ok(total)
}

pub async fn park(
    client: &mut Client,
    s: &StateSql,
    id: Uuid,
    epoch: i64,
    batch: &RowBatch,
) -> Result<(), ApplyError> {
    let bytes = wire::encode(batch).map_err(|e| corrupt(Some(&batch.table.name), e.to_string()))?;
    let table = batch.table.name.as_str();
    exec(client, &s.park(), &[&table, &epoch, &id, &bytes.as_slice()]).await?;
    Ok(())
}

pub async fn parked(
    client: &mut Client,
    s: &StateSql,
    table: &str,
) -> Result<Vec<RowBatch>, ApplyError> {
    rows(client, &s.parked(), &[&table])
        .await?
        .iter()
        .map(|r| {
            let bytes: &[u8] = required(r, 0).map_err(|e| e.for_table(table))?;
            wire::decode::<RowBatch>(bytes)
                .map_err(|e| corrupt(Some(table), format!("parked batch: {e}")))
        })
        .collect()
}

pub async fn discard_parked(
    client: &mut Client,
    s: &StateSql,
    table: &str,
) -> Result<u64, ApplyError> {
    exec(client, &s.discard_parked(), &[&table]).await
}

pub async fn record_failure(
    client: &mut Client,
    s: &StateSql,
    f: &FailureRecord,
) -> Result<(), ApplyError> {
    let table = f.table.as_str();
    let reason = f.reason.as_str();
    let params: [&dyn ToSql; 4] = [&f.message_id, &table, &f.epoch, &reason];
    for statement in s.record_failure() {
        exec(client, &statement, &params).await?;
    }
    Ok(())
}

pub async fn complete_cycle(
    client: &mut Client,
    s: &StateSql,
    id: Uuid,
    summaries: &[ReplicationSummary],
) -> Result<(), ApplyError> {
    let summary = serde_json::to_string(summaries).map_err(|e| corrupt(None, e.to_string()))?;
    let tables: Vec<&str> = summaries.iter().map(|s| s.table.as_str()).collect();
    let tables = serde_json::to_string(&tables).map_err(|e| corrupt(None, e.to_string()))?;
    exec(client, &s.record_cycle(), &[&id, &summary]).await?;
    exec(client, &s.end_loading(), &[]).await?;
    exec(client, &s.touch_tables(), &[&tables]).await?;
    Ok(())
}
