//! What happens at the source before each cycle: a script of steps, one per cycle.
//!
//! Each step mutates the tenant's source the way real use does (and the way that breaks mirrors):
//! row changes, schema changes, a table leaving and coming back, a failed cycle, a restored backup,
//! expired change history. The driver then runs one ordinary cycle; the mirror must end up equal
//! to the source whatever the step was.

use std::fmt;
use std::str::FromStr;

use mirror_common::schema::ColumnType;

use crate::source::{Rng, Source, SourceError};

/// One cycle's script step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// No changes: the first cycle, which loads everything.
    Initial,
    /// No changes: a later cycle that only sends what the mirror still lacks (settling cycles).
    Idle,
    /// Inserts, updates, deletes, insert-then-update and update-then-delete.
    Changes,
    /// A new column, a widened column and an incompatible type change, plus row changes.
    Schema,
    /// A table is left out of TableSchema (dropped at the source or skipped by the tenant); the
    /// next step brings it back.
    SkipTable,
    /// Row changes, then the cycle fails after its first RowData call; the next cycle must resend
    /// from the LSN the mirror reports.
    Abort,
    /// The source database is restored from the backup taken before the previous cycle: its
    /// version goes back and the mirror is ahead of it.
    Restore,
    /// Change-tracking history is cleaned up: mirrors older than the current version must reload.
    ExpireHistory,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Initial,
        Step::Idle,
        Step::Changes,
        Step::Schema,
        Step::SkipTable,
        Step::Abort,
        Step::Restore,
        Step::ExpireHistory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Initial => "initial",
            Step::Idle => "idle",
            Step::Changes => "changes",
            Step::Schema => "schema",
            Step::SkipTable => "skip-table",
            Step::Abort => "abort",
            Step::Restore => "restore",
            Step::ExpireHistory => "expire-history",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> Result<Step, String> {
        Step::ALL
            .into_iter()
            .find(|step| step.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario step {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// The built-in script: everything the issue asks for, in an order where every step is
/// meaningful, then plain changes for as many cycles as asked.
pub const DEFAULT_SCRIPT: [Step; 8] = [
    Step::Initial,
    Step::Changes,
    Step::Schema,
    Step::Abort,
    Step::Changes,
    Step::Restore,
    Step::SkipTable,
    Step::ExpireHistory,
];

/// The table the skip-table step leaves out.
pub const SKIPPED_TABLE: &str = "y_collective_orders";

/// The step of cycle `cycle` (1-based): the script's entry, `changes` past its end.
pub fn step_for(script: &[Step], cycle: usize) -> Step {
    script
        .get(cycle.saturating_sub(1))
        .copied()
        .unwrap_or(Step::Changes)
}

/// How the driver must run the cycle after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CyclePlan {
    /// Fail the cycle on purpose after this many RowData calls.
    pub abort_after_row_calls: Option<usize>,
}

/// Per-tenant state the steps need across cycles.
#[derive(Debug, Clone, Default)]
pub struct ScriptState {
    /// The source as it was before the current cycle's step.
    pending: Option<Source>,
    /// The source as it was before the previous cycle's step, kept only when that cycle completed:
    /// the mirror then holds it plus the cycle's changes, with an LSN ahead of it in every table
    /// that changed, so restoring it is something the Mirroring Task can detect.
    restorable: Option<Source>,
    schema_changes: u32,
}

/// How many row changes one step makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    /// In per mille of the tenant's live rows (at least a handful): grows as the tables grow.
    PerMille(u64),
    /// The same number every cycle, however the tables have grown.
    Fixed(u64),
}

impl Churn {
    /// Changes to make to a tenant of `live_rows` rows.
    pub fn count(self, live_rows: u64) -> u64 {
        match self {
            Churn::PerMille(per_mille) => (live_rows * per_mille / 1000).max(8),
            Churn::Fixed(count) => count,
        }
    }
}

impl Default for Churn {
    fn default() -> Churn {
        Churn::PerMille(20)
    }
}

impl ScriptState {
    /// Records how the previous cycle ended (pass `false` before the first cycle); call it before
    /// every [`ScriptState::apply`].
    pub fn previous_cycle(&mut self, completed: bool, source: &Source) {
        // An aborted cycle may have left rows in the mirror that its LSN does not cover; going back
        // to before it would leave them there, undetectably. Only a completed cycle's start is safe.
        self.restorable = if completed { self.pending.take() } else { None };
        self.pending = Some(source.clone());
    }

    /// Applies `step` to `source`; `rng` is the tenant's cycle-specific generator.
    pub fn apply(
        &mut self,
        step: Step,
        source: &mut Source,
        rng: &mut Rng,
        churn: Churn,
    ) -> Result<CyclePlan, SourceError> {
        let mut plan = CyclePlan::default();
        match step {
            Step::Initial | Step::Idle => {}
            Step::Changes => row_changes(source, rng, churn)?,
            Step::Schema => {
                self.schema_changes += 1;
                schema_changes(source, self.schema_changes)?;
                row_changes(source, rng, churn)?;
            }
            Step::SkipTable => {
                if source.table(SKIPPED_TABLE).is_some() {
                    source.set_mirrored(SKIPPED_TABLE, false)?;
                }
                row_changes(source, rng, churn)?;
            }
            Step::Abort => {
                row_changes(source, rng, churn)?;
                plan.abort_after_row_calls = Some(1);
            }
            Step::Restore => {
                // No changes after the restore: they would reuse versions the mirror has seen
                // and hide the restore from the Mirroring Task's "mirror is ahead" check.
                if let Some(backup) = self.restorable.take() {
                    *source = backup;
                    tracing::info!(
                        tenant = source.tenant(),
                        "Restored the source from a backup."
                    );
                } else {
                    tracing::info!(
                        tenant = source.tenant(),
                        "No safe backup to restore; skipped."
                    );
                }
            }
            Step::ExpireHistory => {
                source.expire_history();
                row_changes(source, rng, churn)?;
            }
        }
        // A skipped table comes back with the next step.
        if step != Step::SkipTable && source.table(SKIPPED_TABLE).is_some() {
            source.set_mirrored(SKIPPED_TABLE, true)?;
        }
        Ok(plan)
    }
}

/// Random row changes over all tables, weighted by size: updates, inserts, deletes, and keys
/// changed twice (insert-then-update, update-then-delete, update-then-update).
pub fn row_changes(source: &mut Source, rng: &mut Rng, churn: Churn) -> Result<(), SourceError> {
    let count = churn.count(source.live_rows());
    let names: Vec<(String, u64)> = source
        .tables()
        .iter()
        .map(|t| (t.name().to_owned(), t.live_rows() + 1))
        .collect();
    let weight_sum: u64 = names.iter().map(|(_, w)| w).sum();
    for _ in 0..count {
        let mut pick = rng.below(weight_sum);
        let table = names
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(names[0].0.as_str(), |(n, _)| n.as_str());
        match rng.below(100) {
            0..=39 => {
                if let Some(key) = source.random_live_key(table, rng) {
                    source.update(table, key)?;
                }
            }
            40..=64 => {
                source.insert(table)?;
            }
            65..=79 => {
                if let Some(key) = source.random_live_key(table, rng) {
                    source.delete(table, key)?;
                }
            }
            80..=89 => {
                let key = source.insert(table)?;
                source.update(table, key)?;
            }
            90..=94 => {
                if let Some(key) = source.random_live_key(table, rng) {
                    source.update(table, key)?;
                    source.delete(table, key)?;
                }
            }
            _ => {
                if let Some(key) = source.random_live_key(table, rng) {
                    source.update(table, key)?;
                    source.update(table, key)?;
                }
            }
        }
    }
    Ok(())
}

/// The `n`th schema change: a new extra field on `contact`, a widened `person` column, and an
/// incompatible change of a custom table's field (text ↔ number, back and forth).
fn schema_changes(source: &mut Source, n: u32) -> Result<(), SourceError> {
    if source.table("contact").is_some() {
        let name = if n == 1 {
            "x_segment".to_owned()
        } else {
            format!("x_segment{n}")
        };
        source.add_column("contact", &name, ColumnType::NVarChar(Some(99)))?;
    }
    if let Some(person) = source.table("person") {
        let widen = person.columns().iter().skip(1).find_map(|c| match c.ty() {
            ColumnType::NVarChar(Some(len)) if len < 2000 => Some((c.name().to_owned(), len)),
            _ => None,
        });
        if let Some((column, len)) = widen {
            source.widen_column("person", &column, ColumnType::NVarChar(Some(len * 2)))?;
        }
    }
    if let Some(table) = source.table("y_kostenstelle")
        && let Some(column) = table
            .columns()
            .iter()
            .find(|c| c.name() == "x_beschreibung")
    {
        let ty = if column.ty().is_text() {
            ColumnType::Int
        } else {
            ColumnType::NVarChar(Some(255))
        };
        source.retype_column("y_kostenstelle", "x_beschreibung", ty)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_by_name() {
        for step in Step::ALL {
            assert_eq!(step.name().parse::<Step>(), Ok(step));
        }
        assert!(
            "explode"
                .parse::<Step>()
                .unwrap_err()
                .contains("skip-table")
        );
        assert_eq!(step_for(&DEFAULT_SCRIPT, 1), Step::Initial);
        assert_eq!(step_for(&DEFAULT_SCRIPT, 3), Step::Schema);
        assert_eq!(step_for(&DEFAULT_SCRIPT, 99), Step::Changes);
    }

    #[test]
    fn churn_is_a_share_of_the_rows_or_a_fixed_count() {
        assert_eq!(Churn::PerMille(20).count(10_000), 200);
        assert_eq!(Churn::PerMille(20).count(100), 8, "at least a handful");
        assert_eq!(Churn::Fixed(300).count(10_000), 300);
        assert_eq!(Churn::Fixed(300).count(1_000_000), 300);
    }

    #[test]
    fn changes_touch_every_kind_of_operation() {
        let mut source = Source::new("Cust1", 1, 5_000).unwrap();
        let before = source.current_version();
        let mut rng = Rng::from_parts(&[9]);
        row_changes(&mut source, &mut rng, Churn::default()).unwrap();
        let mut ops = std::collections::HashSet::new();
        for t in source.tables() {
            for change in t.changes_since(before) {
                ops.insert(change.op);
            }
        }
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(source.current_version() >= before + 100);
    }

    #[test]
    fn schema_step_changes_three_tables_and_flips_back() {
        let mut source = Source::new("Cust1", 1, 1_000).unwrap();
        let mut state = ScriptState::default();
        let mut rng = Rng::from_parts(&[1]);
        let contact_columns = source.table("contact").unwrap().columns().len();
        let kst = |s: &Source| {
            s.table("y_kostenstelle")
                .unwrap()
                .schema()
                .columns
                .into_iter()
                .find(|c| c.name == "x_beschreibung")
                .unwrap()
                .ty
        };
        assert_eq!(kst(&source), "nvarchar(255)");
        state
            .apply(Step::Schema, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(
            source.table("contact").unwrap().columns().len(),
            contact_columns + 1
        );
        assert_eq!(kst(&source), "int");
        state
            .apply(Step::Schema, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(
            source.table("contact").unwrap().columns().len(),
            contact_columns + 2
        );
        assert_eq!(kst(&source), "nvarchar(255)");
    }

    #[test]
    fn a_skipped_table_comes_back_with_the_next_step() {
        let mut source = Source::new("Cust1", 1, 1_000).unwrap();
        let mut state = ScriptState::default();
        let mut rng = Rng::from_parts(&[1]);
        let all = source.mirrored_tables().count();
        state
            .apply(Step::SkipTable, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(source.mirrored_tables().count(), all - 1);
        assert!(source.mirrored_tables().all(|t| t.name() != SKIPPED_TABLE));
        state
            .apply(Step::Changes, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(source.mirrored_tables().count(), all);
    }

    #[test]
    fn restore_goes_back_only_to_the_start_of_a_completed_cycle() {
        let mut source = Source::new("Cust1", 1, 1_000).unwrap();
        let mut state = ScriptState::default();
        let mut rng = Rng::from_parts(&[1]);
        let churn = Churn::default();
        state.previous_cycle(false, &source);
        state
            .apply(Step::Initial, &mut source, &mut rng, churn)
            .unwrap();
        // Cycle 2: changes; its start is the backup.
        state.previous_cycle(true, &source);
        let backup_version = source.current_version();
        state
            .apply(Step::Changes, &mut source, &mut rng, churn)
            .unwrap();
        let ahead = source.current_version();
        assert!(ahead > backup_version);
        // Cycle 2 completed: restoring goes back to its start.
        state.previous_cycle(true, &source);
        let plan = state
            .apply(Step::Restore, &mut source, &mut rng, churn)
            .unwrap();
        assert_eq!(plan, CyclePlan::default());
        assert_eq!(source.current_version(), backup_version);

        // After an aborted cycle there is nothing safe to restore.
        state.previous_cycle(true, &source);
        state
            .apply(Step::Abort, &mut source, &mut rng, churn)
            .unwrap();
        state.previous_cycle(false, &source);
        let v = source.current_version();
        state
            .apply(Step::Restore, &mut source, &mut rng, churn)
            .unwrap();
        assert_eq!(source.current_version(), v);
    }

    #[test]
    fn abort_plans_a_failed_call_and_expiry_raises_the_minimum() {
        let mut source = Source::new("Cust1", 1, 1_000).unwrap();
        let mut state = ScriptState::default();
        let mut rng = Rng::from_parts(&[1]);
        let plan = state
            .apply(Step::Abort, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(plan.abort_after_row_calls, Some(1));
        let v = source.current_version();
        state
            .apply(Step::ExpireHistory, &mut source, &mut rng, Churn::default())
            .unwrap();
        assert_eq!(source.min_valid_version(), v);
        assert!(source.current_version() > v);
    }
}
