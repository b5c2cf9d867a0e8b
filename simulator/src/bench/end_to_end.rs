//! The whole pipeline against the applier alone, on the same generated tenant(s).
//!
//! A measured phase starts a `mirror-receiver` and N `mirror-applier` processes and runs, per
//! tenant, the Mirroring Task's cycles over HTTP: the initial load, an idle cycle (its
//! TableSchema is answered only once every earlier message is applied, so its end marks the load
//! as applied), an incremental cycle of row changes, idle cycles until nothing is left to send,
//! and finally a row-by-row verification of every mirror.
//!
//! The reference phase ("applier alone") runs the same initial load with the appliers paused
//! (SIGSTOP) from the moment every tenant's first rows were accepted until the receiver has taken
//! the whole load; then it resumes them (SIGCONT) and times how long they take to apply what is
//! queued, with the receiver idle. The few messages applied before the pause are counted as if
//! applied in it, which flatters the reference slightly (the ratio is conservative).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mirror_common::shutdown::CancellationToken;

use super::BenchError;
use super::rss::{Memory, cpu_seconds, machine_cpu_seconds};
use super::services::{BENCH_CLIENT_ID, Deployment, Service, send_signal};
use crate::driver::{CycleOptions, CycleReport, CycleStatus, Endpoint, Observer, RunConfig, run};
use crate::scenario::{Churn, Step};
use crate::verify::{PgReader, verify};

/// What to measure.
#[derive(Debug, Clone)]
pub struct EndToEndPlan {
    /// Rows over all tenants.
    pub rows: u64,
    /// Row changes of the incremental cycle, over all tenants.
    pub changes: u64,
    pub tenants: usize,
    /// Applier processes of each measured phase.
    pub workers: Vec<usize>,
    pub batch_bytes: usize,
    pub seed: u64,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub workers: usize,
    pub rows_loaded: u64,
    /// From the first call until the load is applied.
    pub load_secs: f64,
    pub changes: u64,
    /// From the incremental cycle's start until its changes are applied.
    pub incremental_secs: f64,
    pub verify_secs: f64,
    /// From the first call until every mirror is verified.
    pub verified_secs: f64,
    pub clean: bool,
    pub memory: Vec<(String, Option<Memory>)>,
    /// Where the CPU went while the cycles ran (load, incremental, idle cycles).
    pub cpu: Option<CpuUse>,
}

/// CPU seconds spent by each part while the cycles of a phase ran, over `wall_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    pub wall_secs: f64,
    /// This process: it plays SuperOffice (generates rows, renders and signs every call).
    pub simulator: f64,
    pub receiver: f64,
    pub workers: f64,
    /// Every core of the machine, busy for anyone.
    pub machine: f64,
}

impl CpuUse {
    /// The machine's busy time not spent in our processes: PostgreSQL, RabbitMQ, anything else.
    pub fn rest(&self) -> f64 {
        (self.machine - self.simulator - self.receiver - self.workers).max(0.0)
    }

    /// CPU seconds as cores busy on average.
    pub fn cores(&self, seconds: f64) -> f64 {
        seconds / self.wall_secs.max(f64::EPSILON)
    }
}

/// The counters [`CpuUse`] is the difference of.
#[derive(Debug, Clone, Copy)]
struct CpuSnapshot {
    at: Instant,
    simulator: f64,
    receiver: f64,
    workers: f64,
    machine: f64,
}

impl CpuSnapshot {
    fn take(pipeline: &Pipeline) -> Option<CpuSnapshot> {
        let of = |service: &Service| service.pid().and_then(cpu_seconds);
        Some(CpuSnapshot {
            at: Instant::now(),
            simulator: cpu_seconds(std::process::id())?,
            receiver: of(&pipeline.receiver)?,
            workers: pipeline.appliers.iter().map(of).sum::<Option<f64>>()?,
            machine: machine_cpu_seconds()?,
        })
    }

    fn since(self, start: CpuSnapshot) -> CpuUse {
        CpuUse {
            wall_secs: self.at.duration_since(start.at).as_secs_f64(),
            simulator: self.simulator - start.simulator,
            receiver: self.receiver - start.receiver,
            workers: self.workers - start.workers,
            machine: self.machine - start.machine,
        }
    }
}

impl Phase {
    pub fn load_rate(&self) -> f64 {
        self.rows_loaded as f64 / self.load_secs.max(f64::EPSILON)
    }

    pub fn incremental_rate(&self) -> f64 {
        self.changes as f64 / self.incremental_secs.max(f64::EPSILON)
    }
}

/// The applier alone.
#[derive(Debug, Clone)]
pub struct Reference {
    pub rows: u64,
    /// From the resume until everything queued is applied.
    pub drain_secs: f64,
    pub memory: Vec<(String, Option<Memory>)>,
}

impl Reference {
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.drain_secs.max(f64::EPSILON)
    }
}

#[derive(Debug, Clone)]
pub struct EndToEndResult {
    pub reference: Reference,
    pub phases: Vec<Phase>,
}

pub async fn measure(
    bench: &super::Environment,
    plan: &EndToEndPlan,
    cancel: &CancellationToken,
) -> Result<EndToEndResult, BenchError> {
    let reference = reference(bench, plan, cancel).await?;
    let mut phases = Vec::new();
    for &workers in &plan.workers {
        phases.push(phase(bench, plan, workers, cancel).await?);
    }
    Ok(EndToEndResult { reference, phases })
}

/// The services of one phase, stopped and cleaned up whatever happens.
pub(super) struct Pipeline {
    deployment: Deployment,
    pub(super) receiver: Service,
    pub(super) appliers: Vec<Service>,
    pub(super) tenants: Vec<String>,
}

impl Pipeline {
    pub(super) async fn start(
        bench: &super::Environment,
        label: &str,
        workers: usize,
        tenants: usize,
    ) -> Result<Pipeline, BenchError> {
        let deployment = bench.deployment(label)?;
        let id = deployment
            .prefix
            .rsplit('-')
            .next()
            .unwrap_or("x")
            .to_owned();
        let tenants = (1..=tenants.max(1)).map(|n| format!("B{id}T{n}")).collect();
        let receiver = deployment.start_receiver().await?;
        let mut appliers = Vec::with_capacity(workers);
        for n in 1..=workers.max(1) {
            match deployment.start_applier(n).await {
                Ok(applier) => appliers.push(applier),
                Err(error) => {
                    let mut pipeline = Pipeline {
                        deployment,
                        receiver,
                        appliers,
                        tenants,
                    };
                    pipeline.stop(&bench.database_url).await;
                    return Err(error);
                }
            }
        }
        Ok(Pipeline {
            deployment,
            receiver,
            appliers,
            tenants,
        })
    }

    pub(super) fn endpoint(&self) -> Result<Arc<Endpoint>, BenchError> {
        Ok(Arc::new(Endpoint::new(
            &self.deployment.url(&self.receiver)?,
            self.deployment.keys.credentials(BENCH_CLIENT_ID),
            Duration::from_secs(1800),
        )?))
    }

    pub(super) fn memory(&self) -> Vec<(String, Option<Memory>)> {
        std::iter::once(&self.receiver)
            .chain(&self.appliers)
            .map(|s| (s.name.clone(), s.memory()))
            .collect()
    }

    /// Stops the services, deletes the queues and drops the mirrors.
    pub(super) async fn stop(&mut self, database_url: &str) {
        self.receiver.stop().await;
        for applier in &mut self.appliers {
            applier.stop().await;
        }
        if let Ok(settings) = self.deployment.settings() {
            crate::demo::delete_topology(&settings).await;
        }
        for tenant in &self.tenants {
            drop_mirror(database_url, tenant).await;
        }
        self.deployment.remove_files();
    }
}

async fn reference(
    bench: &super::Environment,
    plan: &EndToEndPlan,
    cancel: &CancellationToken,
) -> Result<Reference, BenchError> {
    let mut pipeline = Pipeline::start(bench, "ref", 1, plan.tenants).await?;
    let result = async {
        let pids = pipeline.appliers.iter().filter_map(Service::pid).collect();
        let clock = Arc::new(Clock::new(Some(Pause::new(pids, pipeline.tenants.len()))));
        let config = run_config(plan, pipeline.tenants.clone(), vec![Step::Initial]);
        let runs = run(pipeline.endpoint()?, &config, clock.clone(), cancel.clone()).await?;
        check_settled(&runs)?;
        let memory = pipeline.memory();
        let events = clock.events();
        let resumed = clock
            .resumed_at()
            .ok_or_else(|| BenchError::Failed("the appliers were never paused".into()))?;
        let applied = events.last_finish().unwrap_or(resumed);
        Ok(Reference {
            rows: events.rows_of_cycle(1),
            drain_secs: applied.saturating_duration_since(resumed).as_secs_f64(),
            memory,
        })
    }
    .await;
    pipeline.stop(&bench.database_url).await;
    result
}

async fn phase(
    bench: &super::Environment,
    plan: &EndToEndPlan,
    workers: usize,
    cancel: &CancellationToken,
) -> Result<Phase, BenchError> {
    let mut pipeline =
        Pipeline::start(bench, &format!("w{workers}"), workers, plan.tenants).await?;
    let result = async {
        let clock = Arc::new(Clock::new(None));
        let script = vec![Step::Initial, Step::Idle, Step::Changes];
        let config = run_config(plan, pipeline.tenants.clone(), script);
        let before = CpuSnapshot::take(&pipeline);
        let runs = run(pipeline.endpoint()?, &config, clock.clone(), cancel.clone()).await?;
        let cpu = before
            .zip(CpuSnapshot::take(&pipeline))
            .map(|(before, after)| after.since(before));
        check_settled(&runs)?;
        let memory = pipeline.memory();
        let verify_started = Instant::now();
        let clean = verify_mirrors(&bench.database_url, &runs).await?;
        let verified = Instant::now();
        let events = clock.events();
        let loaded = events.last_finish_of_cycle(2).unwrap_or(verified);
        let incremental_start = events.first_start_of_cycle(3).unwrap_or(loaded);
        let incremental_end = events.last_finish().unwrap_or(verified);
        Ok(Phase {
            workers,
            rows_loaded: events.rows_of_cycle(1),
            load_secs: loaded
                .saturating_duration_since(clock.started)
                .as_secs_f64(),
            changes: events.rows_of_cycle(3),
            incremental_secs: incremental_end
                .saturating_duration_since(incremental_start)
                .as_secs_f64(),
            verify_secs: verified.duration_since(verify_started).as_secs_f64(),
            verified_secs: verified
                .saturating_duration_since(clock.started)
                .as_secs_f64(),
            clean,
            memory,
            cpu,
        })
    }
    .await;
    pipeline.stop(&bench.database_url).await;
    result
}

/// Every tenant's mirror compared row by row with its source: true when all are identical.
pub(super) async fn verify_mirrors(
    database_url: &str,
    runs: &[crate::driver::TenantRun],
) -> Result<bool, BenchError> {
    let mut clean = true;
    for tenant in runs {
        let mut reader =
            PgReader::connect(database_url, Deployment::NAME_TEMPLATE, tenant.tenant()).await?;
        clean &= verify(&mut reader, &tenant.source).await?.is_clean();
    }
    Ok(clean)
}

fn run_config(plan: &EndToEndPlan, tenants: Vec<String>, script: Vec<Step>) -> RunConfig {
    let per_mille = (plan.changes * 1000).div_ceil(plan.rows.max(1)).max(1);
    tenant_cycles(
        plan.rows,
        Churn::PerMille(per_mille),
        plan.batch_bytes,
        plan.seed,
        tenants,
        script,
    )
}

/// The cycles of `tenants`, all at once, over `rows` in all, each change cycle making `churn`
/// changes per tenant.
pub(super) fn tenant_cycles(
    rows: u64,
    churn: Churn,
    batch_bytes: usize,
    seed: u64,
    tenants: Vec<String>,
    script: Vec<Step>,
) -> RunConfig {
    RunConfig {
        rows: rows / tenants.len().max(1) as u64,
        seed,
        cycles: script.len(),
        script,
        churn,
        cycle: CycleOptions {
            batch_bytes,
            ..CycleOptions::default()
        },
        settle_cycles: 5,
        pause: Duration::ZERO,
        concurrency: tenants.len().max(1),
        tenants,
    }
}

pub(super) fn check_settled(runs: &[crate::driver::TenantRun]) -> Result<(), BenchError> {
    for tenant in runs {
        if let Some(failed) = tenant
            .cycles
            .iter()
            .find(|c| !matches!(c.status, CycleStatus::Completed))
        {
            return Err(BenchError::Failed(format!(
                "{} cycle {}: {:?}",
                tenant.tenant(),
                failed.cycle,
                failed.status
            )));
        }
        if tenant.settled != Some(true) {
            return Err(BenchError::Failed(format!(
                "{} did not settle",
                tenant.tenant()
            )));
        }
    }
    Ok(())
}

async fn drop_mirror(database_url: &str, tenant: &str) {
    let Ok(reader) = PgReader::connect(database_url, Deployment::NAME_TEMPLATE, tenant).await
    else {
        return;
    };
    let schema = Deployment::NAME_TEMPLATE.replace("{context_id}", tenant);
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    match tokio::time::timeout(
        Duration::from_secs(120),
        reader.client().batch_execute(&sql),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, schema, "Cannot drop a bench mirror."),
        Err(_) => tracing::warn!(schema, "Dropping a bench mirror timed out."),
    }
}

/// When each tenant's cycles started and finished, and what they sent.
#[derive(Debug, Clone, Default)]
struct Events {
    started: HashMap<(String, usize), Instant>,
    finished: HashMap<(String, usize), (Instant, u64)>,
}

impl Events {
    fn rows_of_cycle(&self, cycle: usize) -> u64 {
        self.finished
            .iter()
            .filter(|((_, c), _)| *c == cycle)
            .map(|(_, (_, rows))| rows)
            .sum()
    }

    fn last_finish_of_cycle(&self, cycle: usize) -> Option<Instant> {
        self.finished
            .iter()
            .filter(|((_, c), _)| *c == cycle)
            .map(|(_, (at, _))| *at)
            .max()
    }

    fn first_start_of_cycle(&self, cycle: usize) -> Option<Instant> {
        self.started
            .iter()
            .filter(|((_, c), _)| *c == cycle)
            .map(|(_, at)| *at)
            .min()
    }

    fn last_finish(&self) -> Option<Instant> {
        self.finished.values().map(|(at, _)| *at).max()
    }
}

/// Pauses the appliers once every tenant's first rows were accepted, and resumes them once every
/// tenant's first cycle is over.
#[derive(Debug)]
struct Pause {
    pids: Vec<u32>,
    tenants: usize,
    sent_rows: HashSet<String>,
    finished_first: HashSet<String>,
    paused: bool,
    resumed_at: Option<Instant>,
}

impl Pause {
    fn new(pids: Vec<u32>, tenants: usize) -> Pause {
        Pause {
            pids,
            tenants,
            sent_rows: HashSet::new(),
            finished_first: HashSet::new(),
            paused: false,
            resumed_at: None,
        }
    }

    fn rows_sent(&mut self, tenant: &str) {
        self.sent_rows.insert(tenant.to_owned());
        if !self.paused && self.resumed_at.is_none() && self.sent_rows.len() >= self.tenants {
            self.pids.iter().for_each(|&pid| send_signal(pid, "STOP"));
            self.paused = true;
        }
    }

    fn cycle_finished(&mut self, report: &CycleReport) {
        if report.cycle != 1 {
            return;
        }
        self.finished_first.insert(report.tenant.clone());
        if self.finished_first.len() >= self.tenants && self.resumed_at.is_none() {
            self.pids.iter().for_each(|&pid| send_signal(pid, "CONT"));
            self.paused = false;
            self.resumed_at = Some(Instant::now());
        }
    }
}

/// The observer that timestamps the cycles (and drives the pause in the reference phase).
#[derive(Debug)]
struct Clock {
    started: Instant,
    events: Mutex<Events>,
    pause: Option<Mutex<Pause>>,
}

impl Clock {
    fn new(pause: Option<Pause>) -> Clock {
        Clock {
            started: Instant::now(),
            events: Mutex::new(Events::default()),
            pause: pause.map(Mutex::new),
        }
    }

    fn events(&self) -> Events {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn resumed_at(&self) -> Option<Instant> {
        self.pause
            .as_ref()
            .and_then(|p| p.lock().unwrap_or_else(PoisonError::into_inner).resumed_at)
    }
}

impl Observer for Clock {
    fn cycle_started(&self, tenant: &str, cycle: usize, _step: Step) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started
            .insert((tenant.to_owned(), cycle), Instant::now());
    }

    fn rows_sent(&self, tenant: &str, _rows: u64, _bytes: u64) {
        if let Some(pause) = &self.pause {
            pause
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .rows_sent(tenant);
        }
    }

    fn cycle_finished(&self, report: &CycleReport) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished
            .insert(
                (report.tenant.clone(), report.cycle),
                (Instant::now(), report.rows()),
            );
        if let Some(pause) = &self.pause {
            pause
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .cycle_finished(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incremental_cycle_changes_about_the_asked_share() {
        let plan = EndToEndPlan {
            rows: 1_000_000,
            changes: 50_000,
            tenants: 2,
            workers: vec![1],
            batch_bytes: 1_000_000,
            seed: 1,
        };
        let config = run_config(&plan, vec!["A".into(), "B".into()], vec![Step::Initial]);
        assert_eq!(config.rows, 500_000);
        assert_eq!(config.churn, Churn::PerMille(50));
        assert_eq!(config.cycles, 1);
    }

    #[test]
    fn the_pause_waits_for_every_tenant_and_resumes_once() {
        // No processes to signal: only the state is checked.
        let mut pause = Pause::new(Vec::new(), 2);
        pause.rows_sent("A");
        assert!(!pause.paused);
        pause.rows_sent("B");
        assert!(pause.paused);
        let report = |tenant: &str, cycle| CycleReport {
            tenant: tenant.into(),
            cycle,
            step: Step::Initial,
            status: CycleStatus::Completed,
            tables: Vec::new(),
            calls: 0,
            request_bytes: 0,
            elapsed: Duration::ZERO,
        };
        pause.cycle_finished(&report("A", 1));
        assert!(pause.resumed_at.is_none());
        pause.cycle_finished(&report("B", 2));
        assert!(pause.resumed_at.is_none());
        pause.cycle_finished(&report("B", 1));
        assert!(pause.resumed_at.is_some() && !pause.paused);
        pause.rows_sent("A");
        assert!(!pause.paused, "never paused again after the resume");
    }
}
