//! What each scripted cycle must have done, as the simulator reports it.

use mirror_sim::driver::cycle::FullReason;
use mirror_sim::driver::{CycleReport, CycleStatus, SyncMode, TenantRun};
use mirror_sim::scenario::{SKIPPED_TABLE, Step};

/// Every step the simulator offers, in an order where each one means something: the restore goes
/// back to the start of the completed `changes` cycle, a skipped table comes back with the next
/// step, and the history expires right after the aborted cycle, while the tables that cycle did
/// not reach lag behind (so they must be reloaded). The `idle` step is what the settling cycles
/// after the script run.
pub const SCRIPT: [Step; 7] = [
    Step::Initial,
    Step::Changes,
    Step::Restore,
    Step::Schema,
    Step::SkipTable,
    Step::Abort,
    Step::ExpireHistory,
];

/// The scripted cycle of `step`.
pub fn cycle(run: &TenantRun, step: Step) -> &CycleReport {
    run.cycles
        .iter()
        .find(|c| c.step == step && c.cycle <= SCRIPT.len())
        .unwrap_or_else(|| panic!("{}: no {step} cycle", run.tenant()))
}

/// How `table` was sent in a cycle (`None`: not in the cycle's TableSchema, or not reached).
pub fn mode(report: &CycleReport, table: &str) -> Option<SyncMode> {
    report
        .tables
        .iter()
        .find(|t| t.table == table)
        .map(|t| t.mode)
}

/// Every cycle of a run in one line each, for assertion messages:
/// `3 restore Completed: contact=Full(SourceRestored)@1234+56 …` (mode, mirror LSN, rows sent).
pub fn describe(run: &TenantRun) -> String {
    let mut text = format!("{}:", run.tenant());
    for c in &run.cycles {
        text.push_str(&format!("\n  {} {} {:?}:", c.cycle, c.step, c.status));
        for t in &c.tables {
            text.push_str(&format!(
                " {}={:?}@{}+{}",
                t.table,
                t.mode,
                t.mirror_lsn,
                t.rows()
            ));
        }
    }
    text
}

/// Checks every cycle of a run of [`SCRIPT`] did what its step is for.
pub fn check_cycles(run: &TenantRun) {
    let story = describe(run);
    for report in &run.cycles[..SCRIPT.len()] {
        let expected = if report.step == Step::Abort {
            CycleStatus::Aborted
        } else {
            CycleStatus::Completed
        };
        assert_eq!(report.status, expected, "{story}");
    }
    assert_eq!(run.settled, Some(true), "settles: {story}");
    let settling = &run.cycles[SCRIPT.len()..];
    assert!(settling.iter().all(|c| c.step == Step::Idle), "{story}");
    let last = settling.last().expect("a settling cycle");
    assert!(last.completed() && !last.sent_anything(), "{story}");

    let initial = cycle(run, Step::Initial);
    assert!(
        initial
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Full(_))),
        "the initial load sends every table in full: {story}"
    );
    let changes = cycle(run, Step::Changes);
    assert!(
        changes
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Incremental { .. } | SyncMode::UpToDate))
            && changes.rows() > 0,
        "the changes cycle sends changes only: {story}"
    );
    let restore = cycle(run, Step::Restore);
    assert!(
        restore
            .tables
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::SourceRestored)),
        "the mirror is ahead of the restored source and reloads: {story}"
    );
    let schema = cycle(run, Step::Schema);
    assert_eq!(
        mode(schema, "y_kostenstelle"),
        Some(SyncMode::Full(FullReason::MirrorEmpty)),
        "the incompatible type change rebuilds the table: {story}"
    );

    let skip = cycle(run, Step::SkipTable);
    assert_eq!(mode(skip, SKIPPED_TABLE), None, "left out: {story}");
    let back = run
        .cycles
        .iter()
        .filter(|c| c.cycle > skip.cycle)
        .find_map(|c| mode(c, SKIPPED_TABLE));
    assert_eq!(
        back,
        Some(SyncMode::Full(FullReason::MirrorEmpty)),
        "the skipped table was dropped and comes back empty: {story}"
    );

    // The aborted cycle delivered one RowData call and stopped; what it did not reach arrives
    // with the next cycle, which also finds the history expired for those tables.
    let abort = cycle(run, Step::Abort);
    assert_eq!(
        abort.tables.iter().map(|t| t.calls).sum::<u32>(),
        1,
        "one RowData call before the failure: {story}"
    );
    let expire = cycle(run, Step::ExpireHistory);
    assert_eq!(expire.cycle, abort.cycle + 1);
    let unreached: Vec<_> = expire
        .tables
        .iter()
        .filter(|t| abort.tables.iter().all(|a| a.table != t.table))
        .collect();
    assert!(
        !unreached.is_empty()
            && unreached
                .iter()
                .all(|t| t.rows() > 0 || t.mode == SyncMode::UpToDate),
        "the tables the failed cycle did not reach are sent next cycle: {story}"
    );
    assert!(
        unreached
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::HistoryExpired)),
        "expired history forces reloads: {story}"
    );
}
