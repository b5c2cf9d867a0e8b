//! The message-level steps shared by [`super::Engine`]'s operations: applying row batches,
//! duplicates, quarantining, and ending a failed transaction.

use std::collections::HashMap;

use mirror_common::wire::{Envelope, Message, RowBatch, SchemaReply, TableLsn};

use super::{Applied, Quarantine};
use crate::dialect::{Load, LoadOutcome, Tx};
use crate::error::ApplyError;
use crate::plan::{collapse, schema_hash};
use crate::state::{APPLIED_RETENTION, FailureRecord, RESEND_ALL, TableState};

/// Quarantines `table` and parks the message's batches for it. With `apply_others`, the
/// message's batches for other tables are applied; without, their tables are quarantined too.
/// `previous` is the message's earlier failure, if it failed before. Returns, with the
/// quarantine, how many tables it newly put in quarantine (committed).
pub(super) async fn quarantine_one(
    tx: &mut dyn Tx,
    env: &Envelope,
    previous: Option<FailureRecord>,
    table: &str,
    reason: &str,
    apply_others: bool,
) -> Result<(Quarantine, u64), ApplyError> {
    let mut state = tx
        .state(table)
        .await?
        .unwrap_or_else(|| TableState::new(table));
    let mut newly = u64::from(state.quarantine.is_none());
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
                newly += 1;
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
    Ok((
        Quarantine {
            table: Some(table.to_owned()),
            epoch: state.epoch,
        },
        newly,
    ))
}

/// Ends a failed transaction, keeping its connection when the server acknowledges the rollback.
pub(super) async fn rollback(tx: &mut dyn Tx) {
    if let Err(error) = tx.rollback().await {
        tracing::debug!(%error, "Rollback failed; the connection is discarded.");
    }
}

/// A message that has no effect; TableSchema still gets its reply from the current state.
pub(super) async fn duplicate(tx: &mut dyn Tx, env: &Envelope) -> Result<Applied, ApplyError> {
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

/// Applies the batches in order; `states` holds the locked state rows of their tables.
pub(super) async fn row_data(
    tx: &mut dyn Tx,
    env: &Envelope,
    batches: &[RowBatch],
    mut states: HashMap<String, TableState>,
) -> Result<Applied, ApplyError> {
    let mut parked = 0usize;
    for batch in batches {
        let name = &batch.table.name;
        let state = states
            .get_mut(name)
            .ok_or_else(|| ApplyError::UnknownTable {
                table: name.clone(),
            })?;
        if state.quarantine.is_some() {
            tx.park(env.id, state.epoch, batch).await?;
            parked += 1;
        } else {
            apply_batch(tx, state, batch).await?;
        }
    }
    for state in states.values() {
        tx.save_progress(state).await?;
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
pub(super) async fn apply_batch(
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
pub(super) fn is_too_old(env: &Envelope) -> bool {
    let retention_ms = i64::try_from(APPLIED_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let now_ms = chrono::Utc::now().timestamp_millis();
    env.received_at_ms > 0 && now_ms.saturating_sub(env.received_at_ms) > retention_ms
}
