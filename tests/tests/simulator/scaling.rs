//! Scaling the worker group under load: one worker, then three, then one again, while simulated
//! tenants on every partition run cycle after cycle of changes. While three run, the partitions
//! are spread evenly and all three apply; when two leave, the last one takes every partition; at
//! the end the verifier finds every mirror exact — a message applied out of order would leave a
//! row at an older state, which it reports as wrong.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mirror_applier::metrics::ACTIVE_PARTITIONS;
use mirror_common::shutdown::CancellationToken;
use mirror_sim::driver::{CycleStatus, Observer, RunConfig, run};
use mirror_sim::scenario::{Churn, Step};
use mirror_sim::verify::{PgReader, verify};
use mirror_tests::{DATABASE_URL, Pipeline, PipelineOptions, eventually, keys};

use crate::endpoint;

const PARTITIONS: u16 = 6;
/// The cycle whose start (by any tenant) brings two more workers.
const GROW_CYCLE: usize = 3;
/// Cycles per tenant: an initial load, then changes, enough to outlast the scaling.
const CYCLES: usize = 14;
/// Bound on the whole simulated run.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
/// RowData batches a worker has applied.
const DONE: &str = r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#;

/// Counts cycle starts, and signals the first start of [`GROW_CYCLE`].
struct Progress {
    started: AtomicUsize,
    grow: CancellationToken,
}

impl Observer for Progress {
    fn cycle_started(&self, _tenant: &str, cycle: usize, _step: Step) {
        self.started.fetch_add(1, Ordering::SeqCst);
        if cycle == GROW_CYCLE {
            self.grow.cancel();
        }
    }
}

/// Tenant ids until every partition has at least one tenant.
fn tenants_on_every_partition(pipeline: &Pipeline) -> Vec<String> {
    let mut covered = BTreeSet::new();
    let mut tenants = Vec::new();
    while covered.len() < usize::from(PARTITIONS) {
        let tenant = pipeline.tenant().id().to_owned();
        if covered.insert(pipeline.topology.partition_of(&tenant)) {
            tenants.push(tenant);
        }
    }
    tenants
}

/// Partitions each worker consumes.
fn held(pipeline: &Pipeline) -> Vec<f64> {
    pipeline
        .workers
        .iter()
        .map(|w| w.metric(ACTIVE_PARTITIONS))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_from_one_to_three_workers_and_back_under_load_keeps_every_mirror_exact() {
    let mut pipeline = Pipeline::start_with(PipelineOptions {
        workers: 0,
        partitions: PARTITIONS,
        ..PipelineOptions::default()
    })
    .await;
    pipeline.settings.amqp.member_heartbeat_ms = 200;
    pipeline.settings.amqp.membership_timeout_ms = 2_000;
    pipeline.add_worker().await;
    pipeline.wait_ready().await;
    let tenants = tenants_on_every_partition(&pipeline);

    let progress = Arc::new(Progress {
        started: AtomicUsize::new(0),
        grow: CancellationToken::new(),
    });
    let config = RunConfig {
        tenants: tenants.clone(),
        rows: 600,
        seed: 20_261_129,
        cycles: CYCLES,
        script: vec![Step::Initial],
        churn: Churn::PerMille(150),
        settle_cycles: 5,
        ..RunConfig::default()
    };
    let simulation = tokio::spawn({
        let endpoint = endpoint(&pipeline, keys::shared().issuer.clone());
        let observer = progress.clone();
        async move {
            run(endpoint, &config, observer, CancellationToken::new())
                .await
                .expect("the simulated cycles run")
        }
    });

    // Two more workers join mid-run; the partitions spread two each, and all three apply.
    tokio::time::timeout(RUN_TIMEOUT, progress.grow.cancelled())
        .await
        .expect("the run reaches the growth cycle");
    pipeline.add_worker().await;
    pipeline.add_worker().await;
    pipeline.wait_ready().await;
    eventually("three workers to consume two partitions each", || async {
        (held(&pipeline) == [2.0, 2.0, 2.0]).then_some(())
    })
    .await;
    let spread: Vec<f64> = pipeline.workers.iter().map(|w| w.metric(DONE)).collect();
    eventually(
        "each of the three workers to apply five more batches",
        || async {
            let now: Vec<f64> = pipeline.workers.iter().map(|w| w.metric(DONE)).collect();
            now.iter()
                .zip(&spread)
                .all(|(n, s)| *n >= s + 5.0)
                .then_some(())
        },
    )
    .await;

    // Two leave mid-run, the first worker among them; the last one takes every partition.
    let started_before_shrink = progress.started.load(Ordering::SeqCst);
    let mut leaving: Vec<_> = pipeline.workers.drain(..2).collect();
    for worker in &mut leaving {
        worker.stop().await;
    }
    eventually("the remaining worker to consume all partitions", || async {
        (held(&pipeline) == [f64::from(PARTITIONS)]).then_some(())
    })
    .await;

    let runs = tokio::time::timeout(RUN_TIMEOUT, simulation)
        .await
        .expect("the simulated cycles finish in time")
        .expect("the simulation task does not panic");
    assert!(
        progress.started.load(Ordering::SeqCst) > started_before_shrink,
        "the load went on after the workers left"
    );
    let survivor = &pipeline.workers[0];
    assert!(survivor.metric(DONE) > 0.0);
    for worker in &leaving {
        assert!(worker.metric(DONE) > 0.0, "every worker applied batches");
    }

    let template = pipeline.settings.database.name_template.clone();
    assert_eq!(runs.len(), tenants.len());
    for run in &runs {
        let failed: Vec<_> = run
            .cycles
            .iter()
            .filter(|c| matches!(c.status, CycleStatus::Failed(_)))
            .map(|c| (c.cycle, format!("{:?}", c.status)))
            .collect();
        assert!(failed.is_empty(), "{}: {failed:?}", run.tenant());
        assert_eq!(run.settled, Some(true), "{} settles", run.tenant());
        let mut reader = PgReader::connect(DATABASE_URL, &template, run.tenant())
            .await
            .unwrap();
        let report = verify(&mut reader, &run.source).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.differences(), 0, "{report}");
        assert!(report.tables.iter().all(|t| t.values_compared), "{report}");
        let (lost, duplicated, unexpected, wrong) =
            report.tables.iter().fold((0, 0, 0, 0), |(l, d, u, w), t| {
                (l + t.lost, d + t.duplicated, u + t.unexpected, w + t.wrong)
            });
        assert_eq!(
            (lost, duplicated, unexpected, wrong),
            (0, 0, 0, 0),
            "{report}"
        );
        assert!(report.source_rows() > 0, "{report}");
    }
    pipeline.stop().await;
}
