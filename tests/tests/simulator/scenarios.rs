//! Three tenants through every scenario, two workers with a failover half-way, the verifier
//! clean — and a corrupted row caught.

use std::sync::Arc;
use std::time::Duration;

use mirror_common::schema::ColumnType;
use mirror_common::shutdown::CancellationToken;
use mirror_sim::driver::{Observer, RunConfig, TableCycle, run};
use mirror_sim::scenario::Step;
use mirror_sim::source::Source;
use mirror_sim::verify::{DiffKind, PgReader, verify};
use mirror_tests::{DATABASE_URL, Pipeline, PipelineOptions, keys};

use crate::cycles::{SCRIPT, check_cycles, cycle};
use crate::endpoint;

/// The cycle whose start (by any tenant) stops the active worker.
const FAILOVER_CYCLE: usize = 4;

/// Bound on the whole simulated run.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Signals when any tenant starts cycle `cycle`.
struct CycleSignal {
    cycle: usize,
    reached: CancellationToken,
}

impl Observer for CycleSignal {
    fn cycle_started(&self, _tenant: &str, cycle: usize, _step: Step) {
        if cycle == self.cycle {
            self.reached.cancel();
        }
    }
}

/// A text column of a table with rows, and one of its keys.
fn corruptible(source: &Source) -> (String, String, String, i32) {
    for table in source.mirrored_tables() {
        let Some(key) = table.live_keys().next() else {
            continue;
        };
        let text = table
            .columns()
            .iter()
            .skip(1)
            .find(|c| matches!(c.ty(), ColumnType::NVarChar(Some(n)) if n >= 16));
        if let Some(column) = text {
            let key_column = table.columns()[0].name().to_owned();
            return (
                table.name().to_owned(),
                key_column,
                column.name().to_owned(),
                key,
            );
        }
    }
    panic!("no table with rows and a text column");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tenants_through_every_scenario_with_two_workers_mirror_exactly() {
    assert!(
        Step::ALL
            .iter()
            .all(|step| SCRIPT.contains(step) || *step == Step::Idle),
        "the script covers every scenario the simulator offers"
    );
    let mut pipeline = Pipeline::start_with(PipelineOptions {
        workers: 2,
        partitions: 4,
        ..PipelineOptions::default()
    })
    .await;
    let tenants: Vec<String> = (0..3).map(|_| pipeline.tenant().id().to_owned()).collect();
    // Whichever worker subscribed first is the active consumer of the partitions; when the first
    // tenant starts cycle FAILOVER_CYCLE it stops, mid-run, and the other must carry on.
    let done = r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#;
    let mut workers = std::mem::take(&mut pipeline.workers);
    let failover_at = CancellationToken::new();
    let failover = tokio::spawn({
        let at = failover_at.clone();
        async move {
            at.cancelled().await;
            workers.sort_by(|a, b| a.metric(done).total_cmp(&b.metric(done)));
            let mut busiest = workers.pop().expect("two workers");
            busiest.stop().await;
            let remaining = workers.pop().expect("two workers");
            let remaining_before = remaining.metric(done);
            (busiest.metric(done), busiest, remaining_before, remaining)
        }
    });
    let observer = Arc::new(CycleSignal {
        cycle: FAILOVER_CYCLE,
        reached: failover_at,
    });
    let config = RunConfig {
        tenants: tenants.clone(),
        rows: 1_500,
        seed: 20_240_601,
        cycles: SCRIPT.len(),
        script: SCRIPT.to_vec(),
        settle_cycles: 5,
        ..RunConfig::default()
    };
    let runs = tokio::time::timeout(
        RUN_TIMEOUT,
        run(
            endpoint(&pipeline, keys::shared().issuer.clone()),
            &config,
            observer,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the simulated cycles finish in time")
    .expect("the simulated cycles run");
    let (stopped_done, stopped, remaining_before, remaining) =
        tokio::time::timeout(Duration::from_secs(60), failover)
            .await
            .expect("the active worker stops in time")
            .expect("the active worker stops cleanly");
    let remaining_after = remaining.metric(done);
    pipeline.workers.push(remaining);
    assert!(stopped_done > 0.0, "the stopped worker had applied batches");
    assert_eq!(
        stopped.metric(done),
        stopped_done,
        "and applied none once stopped"
    );
    assert!(
        remaining_after > remaining_before,
        "the other worker took over: {remaining_before} batches before, {remaining_after} after"
    );
    assert_eq!(
        runs.iter()
            .map(|r| r.tenant().to_owned())
            .collect::<Vec<_>>(),
        tenants
    );
    for run in &runs {
        check_cycles(run);
    }
    let changed = |op: fn(&TableCycle) -> u64| -> u64 {
        runs.iter()
            .flat_map(|r| &cycle(r, Step::Changes).tables)
            .map(op)
            .sum()
    };
    let (inserts, updates, deletes) = (
        changed(|t| t.inserts),
        changed(|t| t.updates),
        changed(|t| t.deletes),
    );
    assert!(
        inserts > 0 && updates > 0 && deletes > 0,
        "the changes cycles send every operation: {inserts} I, {updates} U, {deletes} D"
    );

    let template = pipeline.settings.database.name_template.clone();
    for run in &runs {
        let mut reader = PgReader::connect(DATABASE_URL, &template, run.tenant())
            .await
            .unwrap();
        let report = verify(&mut reader, &run.source).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.differences(), 0, "{report}");
        assert!(report.tables.iter().all(|t| t.values_compared), "{report}");
        assert!(report.source_rows() > 1_000, "{report}");
        assert_eq!(
            report.tables.len(),
            run.source.mirrored_tables().count(),
            "{report}"
        );
    }

    // The checker can fail: one mirror row changed behind the pipeline's back is reported.
    let run = &runs[0];
    let (table, key_column, column, key) = corruptible(&run.source);
    let schema = pipeline.schema_of(run.tenant());
    let mut reader = PgReader::connect(DATABASE_URL, &template, run.tenant())
        .await
        .unwrap();
    let updated = reader
        .client()
        .execute(
            &format!(
                "UPDATE \"{schema}\".\"{table}\" SET \"{column}\" = 'corrupted' \
                 WHERE \"{key_column}\" = $1"
            ),
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let report = verify(&mut reader, &run.source).await.unwrap();
    assert!(!report.is_clean(), "{report}");
    assert_eq!(report.differences(), 1, "{report}");
    let corrupted = report.table(&table).unwrap();
    assert_eq!(
        (corrupted.wrong, corrupted.lost, corrupted.unexpected),
        (1, 0, 0)
    );
    let sample = &corrupted.samples[0];
    assert_eq!((sample.kind, sample.key), (DiffKind::Wrong, i64::from(key)));
    assert!(
        sample
            .columns
            .iter()
            .any(|(c, _, actual)| *c == column && actual.contains("corrupted")),
        "{sample:?}"
    );
    drop(reader);
    pipeline.stop().await;
}
