//! The partner-side state of one tenant's mirror, and the rules that keep it exactly-once.
//!
//! # Tables (all in the tenant's database or schema)
//! - `<contextId>_mirroring`: one row per mirrored table, shaped as SuperOffice's own client keeps
//!   it — lowercase `tablename` (primary key), `lsn` (bigint), `schemahash` (text) — so the
//!   operators' usual SQL works (`update "Cust1_mirroring" set lsn = -1 where tablename = 'contact'`).
//!   Beside them: `epoch`, `schemajson` (the schema the table was built from, to plan alters),
//!   `quarantine` (reason) and `quarantined_at`, `loading`, `updated_at`, `last_cycle_at`.
//! - `<contextId>_mirroring_applied`: ids of applied messages, with the time applied.
//! - `<contextId>_mirroring_parked`: batches of quarantined tables, in arrival order.
//! - `<contextId>_mirroring_failed`: messages that failed permanently, with the table's epoch then.
//! - `<contextId>_mirroring_cycles`: completed cycles (time and per-table counts).
//!
//! # Why a message never rolls a row back
//! A message can reach a mirror more than once in exactly two ways:
//! 1. **Redelivery** (a worker died before its ack, a broker failover): the message id is recorded
//!    in the same transaction as its rows, so the second delivery finds it and has no effect.
//! 2. **An operator's replay of a dead-lettered message**: the failure was recorded with the
//!    table's epoch at that time. Every wipe and every recreate increments the epoch, and discards
//!    the batches parked behind the failure. A replay whose epoch is no longer the table's (or whose
//!    table is no longer quarantined) is stale and dropped; only a replay into the same epoch, with
//!    the table still quarantined, is applied — together with everything parked behind it, in order.
//!
//! Messages older than [`APPLIED_RETENTION`] can no longer be recognised, so they are dropped too.
//! Within one delivery, per-tenant order is the queue's (single active consumer per partition).

use std::time::Duration;

use mirror_common::schema::TableSchema;
use uuid::Uuid;

/// How long applied-message ids and failure records are kept. Redeliveries arrive within minutes
/// and dead-letter replays within days; two weeks is well beyond both and beyond SuperOffice's
/// own 7-day change-history horizon, after which a table is reloaded anyway. A message older
/// than this is dropped as stale (its id may have been pruned).
pub const APPLIED_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The LSN that tells SuperOffice "I have nothing valid: send everything".
pub const RESEND_ALL: i64 = -1;

/// Suffixes of the state tables after `<contextId>_mirroring`.
pub mod suffix {
    pub const STATE: &str = "";
    pub const APPLIED: &str = "_applied";
    pub const PARKED: &str = "_parked";
    pub const FAILED: &str = "_failed";
    pub const CYCLES: &str = "_cycles";
    pub const ALL: [&str; 5] = [STATE, APPLIED, PARKED, FAILED, CYCLES];
}

/// `<contextId>_mirroring<suffix>`.
pub fn state_table(context_id: &str, suffix: &str) -> String {
    format!("{context_id}_mirroring{suffix}")
}

/// True when a mirrored table's name would collide with the state tables (compared
/// case-insensitively, as SQL Server would).
pub fn is_reserved(context_id: &str, table: &str) -> bool {
    let prefix = state_table(context_id, suffix::STATE).to_ascii_lowercase();
    table.to_ascii_lowercase().starts_with(&prefix)
}

/// One row of `<contextId>_mirroring`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    pub table: String,
    /// The LSN SuperOffice gets back for this table; -1 asks it to resend everything.
    pub lsn: i64,
    pub schema_hash: Option<String>,
    /// The schema the mirror table was built from (`None`: unknown, e.g. a hand-inserted row).
    pub schema: Option<TableSchema>,
    /// Incremented by every wipe and recreate; see the module documentation.
    pub epoch: i64,
    /// Why the table is quarantined; its batches are parked while this is set.
    pub quarantine: Option<String>,
    /// True from a create or wipe until the end of the cycle: the table is being (re)loaded, so
    /// batches are bulk-loaded straight into it.
    pub loading: bool,
}

impl TableState {
    /// The row of a table that does not exist yet (or whose row was lost).
    pub fn new(table: &str) -> TableState {
        TableState {
            table: table.to_owned(),
            lsn: RESEND_ALL,
            schema_hash: None,
            schema: None,
            epoch: 0,
            quarantine: None,
            loading: false,
        }
    }

    /// A table (re)created from `schema` or wiped: empty, LSN -1, next epoch, quarantine lifted.
    /// The caller also discards the table's parked batches in the same transaction.
    pub fn reset(&mut self, schema: Option<(&TableSchema, String)>) {
        if let Some((schema, hash)) = schema {
            self.schema = Some(schema.clone());
            self.schema_hash = Some(hash);
        }
        self.lsn = RESEND_ALL;
        self.epoch += 1;
        self.quarantine = None;
        self.loading = true;
    }

    /// Stores a batch's LSN when it is positive and greater than the one held (only a table's
    /// final batch of a cycle carries a meaningful LSN). Returns whether it changed.
    pub fn advance_lsn(&mut self, batch_lsn: i64) -> bool {
        if batch_lsn > 0 && batch_lsn > self.lsn {
            self.lsn = batch_lsn;
            true
        } else {
            false
        }
    }

    /// Quarantines the table: LSN -1 (the next cycle wipes and reloads it), reason kept, epoch
    /// unchanged (a replay of the failed message into this epoch is still valid).
    pub fn quarantine(&mut self, reason: String) {
        self.lsn = RESEND_ALL;
        self.quarantine = Some(reason);
    }
}

/// One row of `<contextId>_mirroring_failed`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRecord {
    pub message_id: Uuid,
    pub table: String,
    pub epoch: i64,
    pub reason: String,
}

/// What a tenant's mirror remembers of one message id.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// It failed permanently before (it is a replay from the dead-letter queue).
    pub failure: Option<FailureRecord>,
    /// It was applied before (it is a redelivery).
    pub applied: bool,
}

/// What to do with a message that was dead-lettered before and has come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Its table was wiped or recreated since, or is no longer quarantined: no effect.
    Stale,
    /// Same epoch, still quarantined: apply the table's parked batches (the failed message's
    /// first) in order and lift the quarantine.
    Drain,
}

/// Judges a returning dead-lettered message against its table's current state.
pub fn judge_replay(failure: &FailureRecord, state: Option<&TableState>) -> Replay {
    match state {
        Some(s) if s.epoch == failure.epoch && s.quarantine.is_some() => Replay::Drain,
        _ => Replay::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_only_moves_forward_and_only_when_positive() {
        let mut s = TableState::new("contact");
        assert!(!s.advance_lsn(0));
        assert!(!s.advance_lsn(-1));
        assert!(s.advance_lsn(10));
        assert!(!s.advance_lsn(9));
        assert!(!s.advance_lsn(10));
        assert_eq!(s.lsn, 10);
    }

    #[test]
    fn reset_bumps_the_epoch_and_lifts_quarantine() {
        let mut s = TableState::new("contact");
        s.advance_lsn(10);
        s.quarantine("bad".into());
        assert_eq!((s.lsn, s.epoch), (RESEND_ALL, 0));
        s.reset(None);
        assert_eq!(
            (s.lsn, s.epoch, s.quarantine.clone(), s.loading),
            (-1, 1, None, true)
        );
    }

    #[test]
    fn replays_drain_only_into_the_same_quarantined_epoch() {
        let failure = FailureRecord {
            message_id: Uuid::nil(),
            table: "contact".into(),
            epoch: 3,
            reason: "x".into(),
        };
        let mut s = TableState::new("contact");
        s.epoch = 3;
        assert_eq!(judge_replay(&failure, Some(&s)), Replay::Stale);
        s.quarantine("x".into());
        assert_eq!(judge_replay(&failure, Some(&s)), Replay::Drain);
        s.reset(None);
        assert_eq!(judge_replay(&failure, Some(&s)), Replay::Stale);
        assert_eq!(judge_replay(&failure, None), Replay::Stale);
    }

    #[test]
    fn state_table_names_are_reserved() {
        assert_eq!(
            state_table("Cust1", suffix::APPLIED),
            "Cust1_mirroring_applied"
        );
        assert!(is_reserved("Cust1", "cust1_mirroring"));
        assert!(is_reserved("Cust1", "Cust1_mirroring_parked"));
        assert!(!is_reserved("Cust1", "contact"));
    }
}
