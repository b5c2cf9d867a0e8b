//! The fault-injection suite: a large initial load, driven by `mirror-sim`, hit half-way by a
//! worker killed with SIGKILL, a RabbitMQ restart, or a PostgreSQL restart; at the end the
//! simulator's verifier finds every row, once, with the right values.
//!
//! These tests stop the machine's shared RabbitMQ and PostgreSQL, so they never run beside other
//! tests: nextest's default profile leaves this binary out, CI runs it on its own with one test at
//! a time, and within the binary a lock keeps its tests apart under `cargo test` too. The worker
//! process test needs the `mirror-applier` binary: `cargo build -p mirror-applier` first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broker_restart;
mod database_restart;
mod worker_kill;

use std::sync::Arc;
use std::time::Duration;

use mirror_common::shutdown::CancellationToken;
use mirror_sim::driver::{CycleOptions, Endpoint, Observer, RunConfig, TenantRun, run};
use mirror_sim::scenario::Step;
use mirror_sim::source::{Source, Table};
use mirror_sim::verify::{PgReader, verify};
use mirror_tests::{CLIENT_ID, DATABASE_URL, Pipeline, keys};
use tokio::sync::{Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// Rows of the simulated tenant: enough that the load takes a while to apply.
const LOAD_ROWS: u64 = 100_000;
/// Bytes per RowData call: small, so the load is many messages and a fault lands between them.
const BATCH_BYTES: usize = 64 * 1024;
/// Fixed, so every run generates the same tenant.
const SEED: u64 = 20_261_129;
/// Idle cycles allowed after the load until one finds nothing left to send. Cycles during an
/// outage or a backlog are skipped with a backoff of at most 5 s, so this is minutes, not a count
/// that matters.
const SETTLE_CYCLES: usize = 120;
/// Bound on the whole simulated run, fault included.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Bound on one SOAP call of the simulator.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// One fault test at a time in this process (nextest runs each test in its own process and
/// serialises this binary by configuration; `cargo test` runs them as threads of one).
async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// The simulated tenant of a fault test.
struct Load {
    tenant: String,
    /// Rows its initial load sends.
    rows: u64,
}

impl Load {
    /// A tenant of the pipeline (its mirror is removed with it).
    fn new(pipeline: &Pipeline) -> Load {
        let tenant = pipeline.tenant().id().to_owned();
        let rows = mirrored_rows(&Source::new(&tenant, SEED, LOAD_ROWS).expect("a source"));
        Load { tenant, rows }
    }

    /// Starts the simulator on the pipeline's receiver: the initial load, then idle cycles until
    /// the mirror has everything.
    fn start(
        &self,
        pipeline: &Pipeline,
        observer: Arc<dyn Observer>,
    ) -> JoinHandle<Vec<TenantRun>> {
        let credentials = mirror_sim::driver::Credentials {
            issuer: keys::shared().issuer.clone(),
            application_key: keys::shared().application_public.clone(),
            client_id: CLIENT_ID.to_owned(),
        };
        let endpoint = Arc::new(Endpoint::new(pipeline.url(), credentials, CALL_TIMEOUT).unwrap());
        let config = RunConfig {
            tenants: vec![self.tenant.clone()],
            rows: LOAD_ROWS,
            seed: SEED,
            cycles: 1,
            script: vec![Step::Initial],
            cycle: CycleOptions {
                batch_bytes: BATCH_BYTES,
                ..CycleOptions::default()
            },
            settle_cycles: SETTLE_CYCLES,
            ..RunConfig::default()
        };
        tokio::spawn(async move {
            run(endpoint, &config, observer, CancellationToken::new())
                .await
                .expect("the simulated cycles run")
        })
    }
}

/// Waits for the simulator to end; its tenant must have settled (a cycle found nothing left to
/// send, so every earlier message was applied).
async fn finish(simulator: JoinHandle<Vec<TenantRun>>) -> TenantRun {
    let mut runs = tokio::time::timeout(RUN_TIMEOUT, simulator)
        .await
        .expect("the simulated cycles finish in time")
        .expect("the simulator does not panic");
    assert_eq!(runs.len(), 1);
    let run = runs.pop().expect("one tenant");
    assert_eq!(
        run.settled,
        Some(true),
        "the mirror caught up: {:?}",
        run.cycles
            .iter()
            .map(|c| (c.cycle, &c.status, c.rows()))
            .collect::<Vec<_>>()
    );
    run
}

/// Compares the mirror with the source row by row: nothing lost, duplicated, unexpected or wrong.
async fn verify_mirror(pipeline: &Pipeline, run: &TenantRun) {
    let template = &pipeline.settings.database.name_template;
    let mut reader = PgReader::connect(DATABASE_URL, template, run.tenant())
        .await
        .unwrap();
    let report = verify(&mut reader, &run.source).await.unwrap();
    for table in &report.tables {
        assert_eq!(
            (table.lost, table.duplicated, table.unexpected, table.wrong),
            (0, 0, 0, 0),
            "{report}"
        );
    }
    assert!(report.is_clean(), "{report}");
    assert!(report.tables.iter().all(|t| t.values_compared), "{report}");
    assert_eq!(report.source_rows(), mirrored_rows(&run.source), "{report}");
    assert_eq!(
        report.tables.len(),
        run.source.mirrored_tables().count(),
        "{report}"
    );
}

/// Rows of the tables the source mirrors.
fn mirrored_rows(source: &Source) -> u64 {
    source.mirrored_tables().map(Table::live_rows).sum()
}

/// Rows in the tenant's mirror tables right now.
async fn mirror_rows(pipeline: &Pipeline, tenant: &str) -> u64 {
    let mirror = mirror_tests::Mirror::connect(tenant, &pipeline.schema_of(tenant)).await;
    let mut rows = 0;
    for table in mirror.tables().await {
        rows += u64::try_from(mirror.count(&table).await).expect("a count");
    }
    rows
}

/// Nothing was dead-lettered: a fault is transient, never a reason to give a message up.
async fn assert_no_dead_letters(pipeline: &Pipeline) {
    let queues = pipeline.queues().await;
    assert_eq!(queues.dead_letter_count().await, 0, "dead letters");
    queues.close().await;
}
