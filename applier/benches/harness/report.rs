//! Medians, the ratios DESIGN.md sets targets for, and the Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::measure::{Measurement, Sample};

/// Every sample of one table's measurements.
#[derive(Debug, Clone)]
pub struct TableResult {
    pub table: String,
    pub columns: usize,
    pub samples: BTreeMap<Measurement, Vec<Sample>>,
}

impl TableResult {
    pub fn new(table: &str, columns: usize) -> TableResult {
        TableResult {
            table: table.to_owned(),
            columns,
            samples: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, m: Measurement, sample: Sample) {
        self.samples.entry(m).or_default().push(sample);
    }

    /// The median run by time (the mean of the middle two for an even count).
    pub fn median(&self, m: Measurement) -> Option<Sample> {
        let mut runs = self.samples.get(&m)?.clone();
        runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let mid = runs.len() / 2;
        let mut median = *runs.get(mid)?;
        if runs.len().is_multiple_of(2) {
            median.secs = (median.secs + runs[mid - 1].secs) / 2.0;
        }
        Some(median)
    }

    /// `numerator` rows/s over `denominator` rows/s, from the medians.
    pub fn ratio(&self, r: &Ratio) -> Option<f64> {
        let num = self.median(r.numerator)?.rows_per_sec();
        let den = self.median(r.denominator)?.rows_per_sec();
        (den > 0.0).then(|| num / den)
    }
}

/// A ratio of two measurements' rates and its target (DESIGN.md, "What fast means here").
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    pub name: &'static str,
    pub numerator: Measurement,
    pub denominator: Measurement,
    /// The target; `None` for a ratio shown to explain the others.
    pub at_least: Option<f64>,
    /// Shown as `25.1×` rather than `0.93`.
    pub times: bool,
}

pub const RATIOS: [Ratio; 10] = [
    Ratio {
        name: "our load / COPY",
        numerator: Measurement::Load,
        denominator: Measurement::Copy,
        at_least: Some(0.80),
        times: false,
    },
    Ratio {
        name: "our load / COPY with a transaction per message",
        numerator: Measurement::Load,
        denominator: Measurement::CopyPerMessage,
        at_least: None,
        times: false,
    },
    Ratio {
        name: "our upsert (mix) / COPY",
        numerator: Measurement::OurMix,
        denominator: Measurement::Copy,
        at_least: Some(0.35),
        times: false,
    },
    Ratio {
        name: "one set-based upsert in one transaction (mix) / COPY",
        numerator: Measurement::SetMix,
        denominator: Measurement::Copy,
        at_least: None,
        times: false,
    },
    Ratio {
        name: "our upsert (mix) / one set-based upsert in one transaction",
        numerator: Measurement::OurMix,
        denominator: Measurement::SetMix,
        at_least: None,
        times: false,
    },
    Ratio {
        name: "set-based upsert, a transaction per message (mix) / COPY",
        numerator: Measurement::SetMixPerMessage,
        denominator: Measurement::Copy,
        at_least: None,
        times: false,
    },
    Ratio {
        name: "our upsert (mix) / set-based upsert with a transaction per message",
        numerator: Measurement::OurMix,
        denominator: Measurement::SetMixPerMessage,
        at_least: None,
        times: false,
    },
    Ratio {
        name: "our upsert (updates) / COPY",
        numerator: Measurement::OurUpdate,
        denominator: Measurement::Copy,
        at_least: Some(0.35),
        times: false,
    },
    Ratio {
        name: "our upsert (mix) / row-by-row",
        numerator: Measurement::OurMix,
        denominator: Measurement::RowMix,
        at_least: Some(20.0),
        times: true,
    },
    Ratio {
        name: "our upsert (updates) / row-by-row",
        numerator: Measurement::OurUpdate,
        denominator: Measurement::RowUpdate,
        at_least: Some(20.0),
        times: true,
    },
];

impl Ratio {
    /// `93.1%`, or `25.1×` for the ratios that are multiples.
    fn show(&self, value: f64) -> String {
        if self.times {
            format!("{value:.1}×")
        } else {
            format!("{:.1}%", value * 100.0)
        }
    }
}

/// The machine the numbers were measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    /// 1-minute load average when the run started: other work on the machine skews absolute
    /// numbers (ratios less so, as baseline and contender alternate).
    pub load_average: String,
    pub server: String,
}

impl Machine {
    /// This machine, with the server description from the database.
    pub fn probe(server: String) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            load_average,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            server,
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report: machine, one row per measurement (medians), then the ratios against their targets.
pub fn render(
    machine: &Machine,
    repeat: usize,
    batch_bytes: usize,
    results: &[TableResult],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {:.1} GiB memory, load average {} at the start; {}.",
        machine.cpus, machine.cpu_model, machine.memory_gib, machine.load_average, machine.server
    );
    let _ = writeln!(
        out,
        "Median of {repeat} run(s); RowData messages of ~{} bytes of data; each run on a fresh tenant.\n",
        thousands(batch_bytes as u64)
    );
    let _ = writeln!(
        out,
        "| table (columns) | measurement | rows | transactions | seconds | rows/s |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|");
    for r in results {
        for m in Measurement::ALL {
            let Some(s) = r.median(m) else { continue };
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {:.3} | {} |",
                r.table,
                r.columns,
                m.label(),
                thousands(s.rows as u64),
                s.transactions,
                s.secs,
                thousands(s.rows_per_sec().round() as u64)
            );
        }
    }
    let _ = writeln!(out, "\n| table | ratio of rows/s | measured | target | |");
    let _ = writeln!(out, "|---|---|--:|--:|---|");
    for r in results {
        for ratio in &RATIOS {
            let Some(value) = r.ratio(ratio) else {
                continue;
            };
            let (target, verdict) = match ratio.at_least {
                Some(min) => (
                    format!("≥ {}", ratio.show(min)),
                    if value >= min { "met" } else { "MISSED" },
                ),
                None => ("–".to_owned(), ""),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {target} | {verdict} |",
                r.table,
                ratio.name,
                ratio.show(value),
            );
        }
    }
    out
}

/// The ratios below their targets, described.
pub fn misses(results: &[TableResult]) -> Vec<String> {
    results
        .iter()
        .flat_map(|r| {
            RATIOS.iter().filter_map(move |ratio| {
                let min = ratio.at_least?;
                let value = r.ratio(ratio)?;
                (value < min).then(|| {
                    format!(
                        "{}: {} is {} (target ≥ {})",
                        r.table,
                        ratio.name,
                        ratio.show(value),
                        ratio.show(min)
                    )
                })
            })
        })
        .collect()
}
