//! Progress bars for the CLI: one line per tenant (cycle, step, rows and bytes sent) under an
//! overall bar of cycles. Drawn on stderr and hidden when it is not a terminal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::driver::{CycleReport, CycleStatus, Observer};
use crate::scenario::Step;

pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    tenants: Mutex<HashMap<String, Tenant>>,
}

struct Tenant {
    bar: ProgressBar,
    label: String,
    rows: u64,
    bytes: u64,
}

impl Progress {
    /// `cycles` is the expected number of cycles over all tenants (settling cycles come on top).
    pub fn new(cycles: u64) -> Progress {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(cycles));
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner:.green} cycles {pos}/{len} [{bar:30.cyan/blue}] {elapsed_precise} {msg}",
        ) {
            overall.set_style(style.progress_chars("=> "));
        }
        overall.enable_steady_tick(Duration::from_millis(200));
        Progress {
            multi,
            overall,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn with_tenant(&self, tenant: &str, f: impl FnOnce(&mut Tenant)) {
        let Ok(mut tenants) = self.tenants.lock() else {
            return;
        };
        let entry = tenants.entry(tenant.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("  {prefix:<16} {msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(tenant.to_owned());
            Tenant {
                bar,
                label: String::new(),
                rows: 0,
                bytes: 0,
            }
        });
        f(entry);
    }

    /// Removes the bars (before the final report is printed).
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        if let Ok(tenants) = self.tenants.lock() {
            for t in tenants.values() {
                t.bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

fn show(t: &Tenant) {
    t.bar.set_message(format!(
        "{}  {} rows  {:.1} MB",
        t.label,
        t.rows,
        t.bytes as f64 / 1e6
    ));
}

impl Observer for Progress {
    fn cycle_started(&self, tenant: &str, cycle: usize, step: Step) {
        self.with_tenant(tenant, |t| {
            t.label = format!("cycle {cycle} {step}");
            t.rows = 0;
            t.bytes = 0;
            show(t);
        });
    }

    fn rows_sent(&self, tenant: &str, rows: u64, bytes: u64) {
        self.with_tenant(tenant, |t| {
            t.rows += rows;
            t.bytes += bytes;
            show(t);
        });
    }

    fn cycle_finished(&self, report: &CycleReport) {
        // Settling cycles come on top of the planned ones.
        if self
            .overall
            .length()
            .is_some_and(|len| self.overall.position() >= len)
        {
            self.overall.inc_length(1);
        }
        self.overall.inc(1);
        if let CycleStatus::Failed(error) = &report.status {
            self.println(&format!(
                "{} cycle {}: failed: {error}",
                report.tenant, report.cycle
            ));
        }
        self.with_tenant(&report.tenant, |t| {
            t.label = format!(
                "cycle {} {}: {}",
                report.cycle,
                report.step,
                status(&report.status)
            );
            show(t);
        });
    }
}

pub fn status(status: &CycleStatus) -> &'static str {
    match status {
        CycleStatus::Completed => "completed",
        CycleStatus::Skipped => "skipped (doNotReplicate)",
        CycleStatus::Aborted => "aborted on purpose",
        CycleStatus::Failed(_) => "failed",
        CycleStatus::Cancelled => "cancelled",
    }
}
