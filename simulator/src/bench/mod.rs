//! `mirror-sim bench`: the pipeline's load harness. In one run on one machine it measures each
//! service against the physical baseline beside it and prints the ratios DESIGN.md sets targets
//! for ("What fast means here"):
//!
//! - [`receiver`]: raw publish-with-confirms of the same messages vs the receiver end to end, at
//!   each concurrency; acknowledgement latency p50/p99;
//! - [`end_to_end`]: a generated tenant's initial load and an incremental cycle through the
//!   receiver and 1, then 2, appliers, until verified, vs the applier alone;
//! - memory: peak RSS of every service process ([`rss`]), and whether it stays flat over a long
//!   run of many cycles ([`soak`]).
//!
//! The services run as separate processes (the release binaries beside this one, or
//! `--bin-dir`), each phase with its own queue prefix, keys, tenants and mirror schemas, all
//! removed afterwards.

pub mod end_to_end;
pub mod receiver;
pub mod rss;
pub mod services;
pub mod soak;
pub mod table;

use std::fmt::Write as _;
use std::path::PathBuf;

use mirror_common::shutdown::CancellationToken;

use end_to_end::{EndToEndPlan, EndToEndResult};
use receiver::{ReceiverPlan, ReceiverResult};
use rss::Memory;
use services::Deployment;
use soak::{SoakPlan, SoakResult};
use table::{Ratio, Table, percent, thousands};

/// The receiver must reach this share of raw publish-with-confirms.
pub const RECEIVER_MIN_RATIO: f64 = 0.80;
/// …and add at most this to the p99 acknowledgement at concurrency 1.
pub const RECEIVER_MAX_ADDED_P99_MS: f64 = 10.0;
/// Decoding a call costs less than this share of its publish-with-confirm time.
pub const DECODE_MAX_SHARE: f64 = 0.10;
/// The pipeline must reach this share of the applier-alone rate.
pub const END_TO_END_MIN_RATIO: f64 = 0.50;
/// "Stable over a long run": a service's resident memory at the end of the soak is at most this
/// much of what it was half-way through.
pub const SOAK_MAX_GROWTH: f64 = 1.10;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{service} did not become ready; its log: {log}")]
    NotReady { service: String, log: String },
    #[error("message broker: {0}")]
    Broker(String),
    #[error("message broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("HTTP: {source}")]
    Http { source: reqwest::Error },
    #[error(transparent)]
    Soap(#[from] mirror_common::soap::SoapError),
    #[error(transparent)]
    Wire(#[from] mirror_common::wire::WireError),
    #[error("invalid service settings: {0}")]
    Settings(#[from] mirror_common::config::ConfigError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeysError),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    #[error("{0}")]
    Failed(String),
}

/// Where the services and their dependencies are.
#[derive(Debug, Clone)]
pub struct Environment {
    pub bin_dir: PathBuf,
    pub amqp_url: String,
    pub database_url: String,
    pub key_bits: usize,
}

impl Environment {
    fn deployment(&self, label: &str) -> Result<Deployment, BenchError> {
        Deployment::new(
            label,
            &self.bin_dir,
            &self.amqp_url,
            &self.database_url,
            self.key_bits,
        )
    }
}

/// What to run; a part that is `None` is skipped.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub receiver: Option<ReceiverPlan>,
    pub end_to_end: Option<EndToEndPlan>,
    pub soak: Option<SoakPlan>,
    pub seed: u64,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub receiver: Option<ReceiverResult>,
    pub end_to_end: Option<EndToEndResult>,
    pub soak: Option<SoakResult>,
    pub simulator_memory: Option<Memory>,
}

/// Runs the plan's parts in turn, reporting progress on stderr.
pub async fn bench(
    environment: &Environment,
    plan: &BenchPlan,
    cancel: &CancellationToken,
) -> Result<BenchReport, BenchError> {
    let receiver = match &plan.receiver {
        Some(p) => {
            eprintln!(
                "Receiver: {} calls of ~{} bytes at concurrency {:?} …",
                p.calls,
                thousands(p.call_bytes as u64),
                p.concurrency
            );
            let deployment = environment.deployment("rx")?;
            let result = receiver::measure(&deployment, p, plan.seed).await;
            if let Ok(settings) = deployment.settings() {
                crate::demo::delete_topology(&settings).await;
            }
            deployment.remove_files();
            Some(result?)
        }
        None => None,
    };
    let end_to_end = match &plan.end_to_end {
        Some(p) => {
            eprintln!(
                "End to end: {} rows over {} tenant(s), {} changes, workers {:?} …",
                thousands(p.rows),
                p.tenants,
                thousands(p.changes),
                p.workers
            );
            Some(end_to_end::measure(environment, p, cancel).await?)
        }
        None => None,
    };
    let soak = match &plan.soak {
        Some(p) => {
            eprintln!(
                "Soak: {} rows over {} tenant(s), then {} cycles of {} changes, 1 worker …",
                thousands(p.rows),
                p.tenants,
                p.cycles,
                thousands(p.changes)
            );
            Some(soak::measure(environment, p, cancel).await?)
        }
        None => None,
    };
    Ok(BenchReport {
        receiver,
        end_to_end,
        soak,
        simulator_memory: Memory::of_self(),
    })
}

impl BenchReport {
    /// The measurement tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(r) = &self.receiver {
            let _ = writeln!(
                out,
                "Receiver: {} RowData calls of {} bytes on average, queued as messages of {} bytes; \
                 parse + decode of one call: {:.1} ms; reading it with quick-xml alone: {:.1} ms.\n",
                r.calls,
                thousands(r.mean_call_bytes),
                thousands(r.mean_message_bytes),
                r.decode_ms,
                r.read_ms
            );
            let mut t = Table::new(&[
                "concurrency",
                "measurement",
                "#MB/s",
                "#p50 ms",
                "#p99 ms",
                "#confirm, mean ms",
                "#receiver CPU ms/call",
            ]);
            for level in &r.levels {
                for (name, run, confirm) in [
                    (
                        "a) raw publish + confirm",
                        &level.raw,
                        Some(level.raw.mean_ms()),
                    ),
                    (
                        "b) receiver (HTTP → confirm → answer)",
                        &level.ours,
                        level.confirm_ms,
                    ),
                ] {
                    t.push(vec![
                        level.concurrency.to_string(),
                        name.to_owned(),
                        format!("{:.1}", run.mb_per_sec()),
                        format!("{:.1}", run.quantile_ms(0.5)),
                        format!("{:.1}", run.quantile_ms(0.99)),
                        confirm.map_or("–".into(), |ms| format!("{ms:.1}")),
                        run.cpu_ms_per_call
                            .map_or("–".into(), |ms| format!("{ms:.1}")),
                    ]);
                }
            }
            out.push_str(&t.render());
            out.push('\n');
        }
        if let Some(e) = &self.end_to_end {
            let mut t = Table::new(&[
                "phase",
                "#rows loaded",
                "#load s",
                "#load rows/s",
                "#changes",
                "#incremental s",
                "#changes/s",
                "#verify s",
                "#until verified s",
                "mirrors",
            ]);
            let r = &e.reference;
            t.push(vec![
                "applier alone (1 worker, queued load)".into(),
                thousands(r.rows),
                format!("{:.1}", r.drain_secs),
                thousands(r.rate().round() as u64),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
            ]);
            for p in &e.phases {
                t.push(vec![
                    format!("pipeline, {} worker(s)", p.workers),
                    thousands(p.rows_loaded),
                    format!("{:.1}", p.load_secs),
                    thousands(p.load_rate().round() as u64),
                    thousands(p.changes),
                    format!("{:.1}", p.incremental_secs),
                    thousands(p.incremental_rate().round() as u64),
                    format!("{:.1}", p.verify_secs),
                    format!("{:.1}", p.verified_secs),
                    if p.clean { "identical" } else { "DIFFER" }.into(),
                ]);
            }
            out.push_str(&t.render());
            out.push('\n');
            if e.phases.iter().any(|p| p.cpu.is_some()) {
                out.push_str(
                    "Cores busy on average while the cycles ran (CPU seconds / wall seconds):\n\n",
                );
                let mut t = Table::new(&[
                    "phase",
                    "#wall s",
                    "#simulator",
                    "#receiver",
                    "#worker(s)",
                    "#PostgreSQL, RabbitMQ, rest",
                    "#machine",
                ]);
                for p in &e.phases {
                    let Some(cpu) = p.cpu else { continue };
                    t.push(vec![
                        format!("pipeline, {} worker(s)", p.workers),
                        format!("{:.1}", cpu.wall_secs),
                        format!("{:.2}", cpu.cores(cpu.simulator)),
                        format!("{:.2}", cpu.cores(cpu.receiver)),
                        format!("{:.2}", cpu.cores(cpu.workers)),
                        format!("{:.2}", cpu.cores(cpu.rest())),
                        format!("{:.2}", cpu.cores(cpu.machine)),
                    ]);
                }
                out.push_str(&t.render());
                out.push('\n');
            }
        }
        if let Some(s) = &self.soak {
            out.push_str(&render_soak(s));
        }
        let mut t = Table::new(&["process", "#peak RSS MiB"]);
        for (name, memory) in self.memory() {
            t.push(vec![
                name,
                memory.map_or("–".into(), |m| format!("{:.1}", m.peak_mib())),
            ]);
        }
        out.push_str(&t.render());
        out
    }

    /// Every service process's memory, labelled by phase.
    fn memory(&self) -> Vec<(String, Option<Memory>)> {
        let mut all = Vec::new();
        if let Some(r) = &self.receiver {
            all.push(("receiver (receiver part)".to_owned(), r.receiver_memory));
        }
        if let Some(e) = &self.end_to_end {
            for (name, m) in &e.reference.memory {
                all.push((format!("{name} (applier alone)"), *m));
            }
            for p in &e.phases {
                for (name, m) in &p.memory {
                    all.push((format!("{name} (pipeline, {} worker(s))", p.workers), *m));
                }
            }
        }
        if let Some(s) = &self.soak {
            for (name, m) in &s.memory {
                all.push((format!("{name} (soak)"), *m));
            }
        }
        all.push((
            "mirror-sim (generates and verifies)".to_owned(),
            self.simulator_memory,
        ));
        all
    }

    /// The ratios against their targets.
    pub fn ratios(&self) -> Vec<Ratio> {
        let mut ratios = Vec::new();
        if let Some(r) = &self.receiver {
            for level in &r.levels {
                let c = level.concurrency;
                ratios.push(Ratio::at_least(
                    "receiver",
                    format!("receiver / raw publish-with-confirms, c={c}"),
                    level.ours.mb_per_sec() / level.raw.mb_per_sec().max(f64::EPSILON),
                    RECEIVER_MIN_RATIO,
                ));
            }
            if let Some(level) = r.levels.iter().find(|l| l.concurrency == 1) {
                ratios.push(Ratio::at_most_ms(
                    "receiver",
                    "added p99 acknowledgement, c=1",
                    level.ours.quantile_ms(0.99) - level.raw.quantile_ms(0.99),
                    RECEIVER_MAX_ADDED_P99_MS,
                ));
                let publish_ms = level.raw.quantile_ms(0.5);
                ratios.push(Ratio::info(
                    "receiver",
                    "ceiling of receiver / raw publish for any receiver that reads its input: \
                     publish / (publish + quick-xml read), c=1",
                    percent(publish_ms / (publish_ms + r.read_ms).max(f64::EPSILON)),
                ));
                ratios.push(Ratio::at_most(
                    "receiver",
                    "parse + decode / median publish-with-confirm, c=1",
                    r.decode_ms / level.raw.quantile_ms(0.5).max(f64::EPSILON),
                    DECODE_MAX_SHARE,
                ));
            }
        }
        if let Some(e) = &self.end_to_end {
            for p in &e.phases {
                ratios.push(Ratio::at_least(
                    "end to end",
                    format!("pipeline load / applier alone, {} worker(s)", p.workers),
                    p.load_rate() / e.reference.rate().max(f64::EPSILON),
                    END_TO_END_MIN_RATIO,
                ));
            }
            if let [one, two, ..] = e.phases.as_slice() {
                ratios.push(Ratio::info(
                    "end to end",
                    format!("load with {} workers / with {}", two.workers, one.workers),
                    percent(two.load_rate() / one.load_rate().max(f64::EPSILON)),
                ));
            }
        }
        if let Some(s) = &self.soak {
            for (service, growth) in s.growth() {
                let Some(growth) = growth else { continue };
                ratios.push(Ratio::at_most(
                    "memory",
                    format!("{service} RSS at the end of the soak / half-way"),
                    growth.ratio,
                    SOAK_MAX_GROWTH,
                ));
                ratios.push(Ratio::info(
                    "memory",
                    format!("{service} RSS gained per call over the soak's second half"),
                    format!("{:+.2} KiB", growth.kib_per_call),
                ));
            }
        }
        for (name, memory) in self.memory() {
            if let Some(m) = memory {
                ratios.push(Ratio::info(
                    "memory",
                    format!("{name} peak RSS"),
                    format!("{:.1} MiB", m.peak_mib()),
                ));
            }
        }
        ratios
    }

    /// Every ratio with a target met, and every mirror identical.
    pub fn targets_met(&self) -> bool {
        self.ratios().iter().all(|r| r.met != Some(false)) && self.mirrors_identical()
    }

    /// Every mirror of every part verified identical to its source.
    pub fn mirrors_identical(&self) -> bool {
        self.end_to_end
            .as_ref()
            .is_none_or(|e| e.phases.iter().all(|p| p.clean))
            && self.soak.as_ref().is_none_or(|s| s.clean)
    }
}

/// The soak's memory samples and its outcome.
fn render_soak(s: &SoakResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Soak: {} tenant(s), {} rows, then {} cycles of ~{} changes in {:.1} s; mirrors {}.\n\n\
         Resident memory (VmRSS) once every tenant had finished the cycle:\n",
        s.plan.tenants,
        thousands(s.plan.rows),
        s.plan.cycles,
        thousands(s.plan.changes),
        s.secs,
        if s.clean { "identical" } else { "DIFFER" }
    );
    let mut t = Table::new(&[
        "cycle",
        "#s",
        "#calls so far",
        "#rows so far",
        "#receiver MiB",
        "#worker MiB",
    ]);
    let mib = |kib: Option<u64>| kib.map_or("–".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    for sample in s.checkpoints() {
        t.push(vec![
            s.label(sample),
            format!("{:.1}", sample.secs),
            thousands(sample.calls),
            thousands(sample.rows),
            mib(sample.receiver_kib),
            mib(sample.worker_kib),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out
}
