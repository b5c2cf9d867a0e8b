//! Many tenants at once, each strictly sequential: the script's step, then one cycle, per cycle
//! number; then, when asked, idle cycles until the mirror has nothing left to receive.

use std::sync::Arc;
use std::time::Duration;

use mirror_common::shutdown::CancellationToken;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::cycle::{CycleOptions, CycleReport, CycleStatus, run_cycle};
use super::{DriverError, Endpoint, Observer};
use crate::scenario::{Churn, ScriptState, Step, step_for};
use crate::source::{Rng, Source, hash_str};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Context ids, one per tenant.
    pub tenants: Vec<String>,
    /// Rows per tenant, spread over the tables.
    pub rows: u64,
    pub seed: u64,
    pub cycles: usize,
    /// Step per cycle number; cycles past its end make plain changes.
    pub script: Vec<Step>,
    pub churn: Churn,
    pub cycle: CycleOptions,
    /// Idle cycles allowed after the script until one finds nothing to send (0: don't settle).
    pub settle_cycles: usize,
    /// Wait between a tenant's cycles.
    pub pause: Duration,
    /// Tenants running at once.
    pub concurrency: usize,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            tenants: vec!["Cust1".to_owned()],
            rows: 1_000,
            seed: 1,
            cycles: 3,
            script: crate::scenario::DEFAULT_SCRIPT.to_vec(),
            churn: Churn::default(),
            cycle: CycleOptions::default(),
            settle_cycles: 5,
            pause: Duration::ZERO,
            concurrency: 64,
        }
    }
}

/// One tenant's run: its final source (to verify against) and every cycle's report.
#[derive(Debug, Clone)]
pub struct TenantRun {
    pub source: Source,
    pub cycles: Vec<CycleReport>,
    /// `Some(true)` when a settling cycle found nothing left to send; `None` when not settled.
    pub settled: Option<bool>,
}

impl TenantRun {
    pub fn tenant(&self) -> &str {
        self.source.tenant()
    }
}

/// Runs every tenant's cycles concurrently. Fails only for problems that make the run
/// meaningless (a source that cannot be built); failed cycles are in the reports.
pub async fn run(
    endpoint: Arc<Endpoint>,
    config: &RunConfig,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
) -> Result<Vec<TenantRun>, DriverError> {
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, tenant) in config.tenants.iter().enumerate() {
        let endpoint = endpoint.clone();
        let config = config.clone();
        let observer = observer.clone();
        let cancel = cancel.clone();
        let limit = limit.clone();
        let tenant = tenant.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let run = run_tenant(&endpoint, &config, &tenant, observer.as_ref(), &cancel).await;
            (index, run)
        });
    }
    let mut runs: Vec<Option<TenantRun>> = vec![None; config.tenants.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => runs[index] = Some(result?),
            Err(error) => {
                tracing::error!(%error, "A tenant task failed.");
            }
        }
    }
    Ok(runs.into_iter().flatten().collect())
}

/// One tenant: build the source, run the script, then settle.
pub async fn run_tenant(
    endpoint: &Endpoint,
    config: &RunConfig,
    tenant: &str,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<TenantRun, DriverError> {
    let mut source = Source::new(tenant, config.seed, config.rows)?;
    let mut state = ScriptState::default();
    let mut cycles = Vec::with_capacity(config.cycles + config.settle_cycles);
    let mut previous_completed = false;
    for cycle in 1..=config.cycles {
        if cancel.is_cancelled() {
            break;
        }
        if cycle > 1 && !config.pause.is_zero() {
            pause(config.pause, cancel).await;
        }
        let step = step_for(&config.script, cycle);
        state.previous_cycle(previous_completed, &source);
        let mut rng = Rng::from_parts(&[config.seed, hash_str(tenant), cycle as u64]);
        let plan = state.apply(step, &mut source, &mut rng, config.churn)?;
        let options = CycleOptions {
            abort_after_row_calls: plan.abort_after_row_calls,
            ..config.cycle
        };
        observer.cycle_started(tenant, cycle, step);
        let report = run_cycle(endpoint, &source, cycle, step, &options, observer, cancel).await;
        observer.cycle_finished(&report);
        previous_completed = report.completed();
        cycles.push(report);
    }
    let settled = if config.settle_cycles > 0 && !cancel.is_cancelled() {
        Some(
            settle(
                endpoint,
                config,
                &mut source,
                &mut state,
                &mut cycles,
                observer,
                cancel,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(TenantRun {
        source,
        cycles,
        settled,
    })
}

/// Idle cycles until one completes without sending anything: the mirror then holds the source's
/// current state (TableSchema is answered only after every earlier message was applied).
async fn settle(
    endpoint: &Endpoint,
    config: &RunConfig,
    source: &mut Source,
    state: &mut ScriptState,
    cycles: &mut Vec<CycleReport>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<bool, DriverError> {
    let mut backoff = Duration::from_millis(250);
    for attempt in 0..config.settle_cycles {
        if cancel.is_cancelled() {
            return Ok(false);
        }
        let cycle = config.cycles + attempt + 1;
        // The idle step makes no changes; it only brings a skipped table back.
        let mut rng = Rng::from_parts(&[config.seed, hash_str(source.tenant()), cycle as u64]);
        state.apply(Step::Idle, source, &mut rng, config.churn)?;
        observer.cycle_started(source.tenant(), cycle, Step::Idle);
        let options = CycleOptions {
            abort_after_row_calls: None,
            ..config.cycle
        };
        let report = run_cycle(
            endpoint,
            source,
            cycle,
            Step::Idle,
            &options,
            observer,
            cancel,
        )
        .await;
        observer.cycle_finished(&report);
        let done = report.completed() && !report.sent_anything();
        let retry_later = matches!(report.status, CycleStatus::Skipped | CycleStatus::Failed(_));
        cycles.push(report);
        if done {
            return Ok(true);
        }
        if retry_later {
            pause(backoff, cancel).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    Ok(false)
}

async fn pause(duration: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = cancel.cancelled() => {}
    }
}
