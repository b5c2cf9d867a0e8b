//! The final report: every cycle of every tenant, then each mirror's verification.

use std::fmt::Write as _;

use crate::driver::{CycleStatus, SyncMode, TenantRun};
use crate::verify::TenantReport;

use super::progress::status;

/// One line per cycle: what was sent and how it ended.
pub fn cycles(runs: &[TenantRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>5} {:<15} {:<24} {:>4} {:>4} {:>9} {:>8} {:>8} {:>6} {:>8} {:>8}",
        "tenant",
        "cycle",
        "step",
        "status",
        "full",
        "incr",
        "inserts",
        "updates",
        "deletes",
        "calls",
        "MB",
        "seconds"
    );
    for run in runs {
        for c in &run.cycles {
            let full = c
                .tables
                .iter()
                .filter(|t| matches!(t.mode, SyncMode::Full(_)))
                .count();
            let incr = c
                .tables
                .iter()
                .filter(|t| matches!(t.mode, SyncMode::Incremental { .. }) && t.calls > 0)
                .count();
            let sum =
                |f: fn(&crate::driver::TableCycle) -> u64| c.tables.iter().map(f).sum::<u64>();
            let _ = writeln!(
                out,
                "{:<16} {:>5} {:<15} {:<24} {:>4} {:>4} {:>9} {:>8} {:>8} {:>6} {:>8.1} {:>8.1}",
                c.tenant,
                c.cycle,
                c.step.name(),
                status(&c.status),
                full,
                incr,
                sum(|t| t.inserts),
                sum(|t| t.updates),
                sum(|t| t.deletes),
                c.calls,
                c.request_bytes as f64 / 1e6,
                c.elapsed.as_secs_f64()
            );
            if let CycleStatus::Failed(error) = &c.status {
                let _ = writeln!(out, "{:<16}       {error}", "");
            }
        }
        match run.settled {
            Some(true) => {}
            Some(false) => {
                let _ = writeln!(
                    out,
                    "{:<16} did not settle: the mirror still had something to receive",
                    run.tenant()
                );
            }
            None => {}
        }
    }
    out
}

/// Every tenant's verification, then a one-line verdict.
pub fn verification(reports: &[TenantReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{report}");
    }
    let clean = reports.iter().filter(|r| r.is_clean()).count();
    let rows: u64 = reports.iter().map(TenantReport::source_rows).sum();
    let _ = writeln!(
        out,
        "{clean} of {} mirror(s) match their source ({rows} rows compared).",
        reports.len()
    );
    out
}
