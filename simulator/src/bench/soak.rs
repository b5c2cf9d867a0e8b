//! A long run: does the services' memory stay flat over many cycles?
//!
//! One receiver and one applier serve several tenants through an initial load and then many
//! cycles of the same number of row changes, all tenants at once, as fast as the pipeline takes
//! them. Whenever every tenant has finished a cycle, the resident memory (`VmRSS`) of each service
//! is sampled. The first half of the change cycles lets connections, buffers and the allocator's
//! arenas reach their working size; a leak, or a cache that grows with the work done, keeps
//! growing through the second half too, in proportion to the calls made. So the measure is the
//! growth from half-way to the end, and that growth per call. At the end every mirror is verified
//! row by row against its source.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use mirror_common::shutdown::CancellationToken;

use super::BenchError;
use super::end_to_end::{Pipeline, check_settled, tenant_cycles, verify_mirrors};
use super::rss::Memory;
use crate::driver::{CycleReport, Observer, run};
use crate::scenario::{Churn, Step};

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub tenants: usize,
    /// Rows over all tenants, loaded by the first cycle.
    pub rows: u64,
    /// Cycles of row changes after the load.
    pub cycles: usize,
    /// Row changes per cycle, over all tenants.
    pub changes: u64,
    pub batch_bytes: usize,
    pub seed: u64,
}

/// The services' resident memory once every tenant had finished `cycle`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cycle: usize,
    pub secs: f64,
    /// Calls and rows sent so far, over all tenants.
    pub calls: u64,
    pub rows: u64,
    pub receiver_kib: Option<u64>,
    pub worker_kib: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SoakResult {
    pub plan: SoakPlan,
    /// One per cycle, in order: the load is cycle 1.
    pub samples: Vec<Sample>,
    pub secs: f64,
    pub clean: bool,
    /// Each service's resident memory at the end of the run, with its peak.
    pub memory: Vec<(String, Option<Memory>)>,
}

/// The first change cycle, after the load.
const FIRST_CHANGES: usize = 2;

/// How a service's memory moved over the second half of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Resident memory at the end over that half-way.
    pub ratio: f64,
    /// KiB gained per call over the second half (negative: memory was returned).
    pub kib_per_call: f64,
}

impl SoakResult {
    /// The sample half-way through the change cycles, the baseline of [`SoakResult::growth`].
    pub fn half_way(&self) -> Option<&Sample> {
        let last = self.samples.last()?.cycle;
        let half = (FIRST_CHANGES + last) / 2;
        self.samples.iter().find(|s| s.cycle >= half)
    }

    /// The receiver's and the worker's memory growth over the second half.
    pub fn growth(&self) -> [(&'static str, Option<Growth>); 2] {
        let growth = |pick: fn(&Sample) -> Option<u64>| {
            let (half, last) = (self.half_way()?, self.samples.last()?);
            if last.cycle <= half.cycle {
                return None;
            }
            let (from, to) = (pick(half)? as f64, pick(last)? as f64);
            Some(Growth {
                ratio: to / from.max(1.0),
                kib_per_call: (to - from) / (last.calls.saturating_sub(half.calls)).max(1) as f64,
            })
        };
        [
            ("receiver", growth(|s| s.receiver_kib)),
            ("worker", growth(|s| s.worker_kib)),
        ]
    }

    /// The samples worth printing: the load, the first changes, about eight evenly spaced ones,
    /// half-way and the last.
    pub fn checkpoints(&self) -> Vec<&Sample> {
        let last = self.samples.last().map_or(0, |s| s.cycle);
        let half = self.half_way().map_or(0, |s| s.cycle);
        let every = last.div_ceil(8).max(1);
        self.samples
            .iter()
            .filter(|s| {
                s.cycle <= FIRST_CHANGES
                    || s.cycle % every == 0
                    || s.cycle == half
                    || s.cycle == last
            })
            .collect()
    }

    /// How a sample's cycle is labelled in the table.
    pub fn label(&self, sample: &Sample) -> String {
        match sample.cycle {
            1 => "1 (load)".to_owned(),
            FIRST_CHANGES => format!("{FIRST_CHANGES} (first changes)"),
            n if self.half_way().is_some_and(|h| h.cycle == n) => format!("{n} (half-way)"),
            n => n.to_string(),
        }
    }
}

pub async fn measure(
    bench: &super::Environment,
    plan: &SoakPlan,
    cancel: &CancellationToken,
) -> Result<SoakResult, BenchError> {
    let mut pipeline = Pipeline::start(bench, "soak", 1, plan.tenants).await?;
    let result = async {
        let sampler = std::sync::Arc::new(Sampler::new(&pipeline));
        let script = std::iter::once(Step::Initial)
            .chain(std::iter::repeat_n(Step::Changes, plan.cycles))
            .collect();
        // The same work every cycle, so that memory growth cannot be the work growing.
        let churn = Churn::Fixed(plan.changes / plan.tenants.max(1) as u64);
        let config = tenant_cycles(
            plan.rows,
            churn,
            plan.batch_bytes,
            plan.seed,
            pipeline.tenants.clone(),
            script,
        );
        let runs = run(
            pipeline.endpoint()?,
            &config,
            sampler.clone(),
            cancel.clone(),
        )
        .await?;
        check_settled(&runs)?;
        let secs = sampler.started.elapsed().as_secs_f64();
        let memory = pipeline.memory();
        let clean = verify_mirrors(&bench.database_url, &runs).await?;
        // The settling cycles at the end (idle, until nothing is left to send) are left out.
        let mut samples = sampler.samples();
        samples.retain(|s| s.cycle <= plan.cycles + 1);
        Ok(SoakResult {
            plan: plan.clone(),
            samples,
            secs,
            clean,
            memory,
        })
    }
    .await;
    pipeline.stop(&bench.database_url).await;
    result
}

/// Samples the services' memory each time the last tenant finishes a cycle.
struct Sampler {
    started: Instant,
    receiver: Option<u32>,
    worker: Option<u32>,
    tenants: usize,
    progress: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Tenants that finished each cycle (index: cycle − 1).
    finished: Vec<usize>,
    calls: u64,
    rows: u64,
    samples: Vec<Sample>,
}

impl Sampler {
    fn new(pipeline: &Pipeline) -> Sampler {
        Sampler {
            started: Instant::now(),
            receiver: pipeline.receiver.pid(),
            worker: pipeline.appliers.first().and_then(|a| a.pid()),
            tenants: pipeline.tenants.len(),
            progress: Mutex::new(Progress::default()),
        }
    }

    fn samples(&self) -> Vec<Sample> {
        let mut samples = self
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples
            .clone();
        samples.sort_by_key(|s| s.cycle);
        samples
    }
}

impl Observer for Sampler {
    fn cycle_finished(&self, report: &CycleReport) {
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        progress.calls += u64::from(report.calls);
        progress.rows += report.rows();
        if progress.finished.len() < report.cycle {
            progress.finished.resize(report.cycle, 0);
        }
        progress.finished[report.cycle - 1] += 1;
        if progress.finished[report.cycle - 1] == self.tenants {
            let current = |pid: Option<u32>| Memory::of(pid?).map(|m| m.current_kib);
            let sample = Sample {
                cycle: report.cycle,
                secs: self.started.elapsed().as_secs_f64(),
                calls: progress.calls,
                rows: progress.rows,
                receiver_kib: current(self.receiver),
                worker_kib: current(self.worker),
            };
            progress.samples.push(sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cycle: usize, receiver: u64, worker: u64) -> Sample {
        Sample {
            cycle,
            secs: cycle as f64,
            calls: 10 * cycle as u64,
            rows: 100 * cycle as u64,
            receiver_kib: Some(receiver),
            worker_kib: Some(worker),
        }
    }

    fn result(samples: Vec<Sample>) -> SoakResult {
        SoakResult {
            plan: SoakPlan {
                tenants: 1,
                rows: 100,
                cycles: samples.len().saturating_sub(1),
                changes: 10,
                batch_bytes: 1000,
                seed: 1,
            },
            samples,
            secs: 1.0,
            clean: true,
            memory: Vec::new(),
        }
    }

    #[test]
    fn growth_is_measured_over_the_second_half() {
        let r = result(vec![
            sample(1, 50_000, 30_000),
            sample(2, 20_000, 10_000),
            sample(3, 21_000, 10_000),
            sample(4, 22_000, 15_000),
            sample(5, 23_100, 15_000),
        ]);
        assert_eq!(r.half_way().map(|s| s.cycle), Some(3));
        let [(_, receiver), (_, worker)] = r.growth();
        let receiver = receiver.unwrap();
        assert!((receiver.ratio - 1.1).abs() < 1e-9);
        // 2,100 KiB over the 20 calls between cycles 3 and 5.
        assert!((receiver.kib_per_call - 105.0).abs() < 1e-9);
        assert!((worker.unwrap().ratio - 1.5).abs() < 1e-9);
        assert_eq!(result(vec![sample(1, 1, 1)]).growth()[0].1, None);
        assert_eq!(
            result(vec![sample(1, 1, 1), sample(2, 1, 1)]).growth()[0].1,
            None
        );
    }

    #[test]
    fn checkpoints_keep_the_load_the_first_changes_half_way_and_the_last() {
        let r = result((1..=20).map(|c| sample(c, 1, 1)).collect());
        let cycles: Vec<usize> = r.checkpoints().iter().map(|s| s.cycle).collect();
        assert_eq!(cycles, vec![1, 2, 3, 6, 9, 11, 12, 15, 18, 20]);
        assert_eq!(r.label(&r.samples[10]), "11 (half-way)");
        assert_eq!(r.label(&r.samples[1]), "2 (first changes)");
    }
}
