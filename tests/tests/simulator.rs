//! The simulator suite: SuperOffice's Mirroring Task played by `mirror-sim` against the real
//! receiver and TWO real applier workers, through every scenario the simulator offers, checked
//! row by row by its verifier — which must also catch a corrupted mirror. A token signed by a key
//! the receiver does not trust gets nothing published.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mirror_common::schema::ColumnType;
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::{RequestBody, Response};
use mirror_sim::driver::cycle::FullReason;
use mirror_sim::driver::{
    Credentials, CycleReport, CycleStatus, Endpoint, Quiet, RunConfig, SyncMode, TenantRun, run,
};
use mirror_sim::scenario::{SKIPPED_TABLE, Step};
use mirror_sim::source::Source;
use mirror_sim::verify::{DiffKind, PgReader, verify};
use mirror_tests::values::{batch, simple_row, simple_table};
use mirror_tests::{CLIENT_ID, DATABASE_URL, Pipeline, PipelineOptions, keys};

/// Every step the simulator offers, in an order where each one means something: the restore goes
/// back to the start of the completed `changes` cycle, the cycle after the aborted one resends
/// what the failed call did not deliver, and a skipped table comes back with the next step. The
/// `idle` step is what the settling cycles after the script run.
const SCRIPT: [Step; 7] = [
    Step::Initial,
    Step::Changes,
    Step::Restore,
    Step::Schema,
    Step::Abort,
    Step::SkipTable,
    Step::ExpireHistory,
];

/// Bound on the whole simulated run.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn credentials(issuer: mirror_common::auth::TokenIssuer) -> Credentials {
    Credentials {
        issuer,
        application_key: keys::shared().application_public.clone(),
        client_id: CLIENT_ID.to_owned(),
    }
}

fn endpoint(pipeline: &Pipeline, issuer: mirror_common::auth::TokenIssuer) -> Arc<Endpoint> {
    Arc::new(
        Endpoint::new(
            pipeline.url(),
            credentials(issuer),
            Duration::from_secs(120),
        )
        .unwrap(),
    )
}

fn cycle(run: &TenantRun, step: Step) -> &CycleReport {
    run.cycles
        .iter()
        .find(|c| c.step == step && c.cycle <= SCRIPT.len())
        .unwrap_or_else(|| panic!("{}: no {step} cycle", run.tenant()))
}

fn mode(report: &CycleReport, table: &str) -> Option<SyncMode> {
    report
        .tables
        .iter()
        .find(|t| t.table == table)
        .map(|t| t.mode)
}

/// What each scripted cycle must have done, as the simulator reports it.
fn check_cycles(run: &TenantRun) {
    let tenant = run.tenant();
    let statuses: Vec<(Step, &CycleStatus)> =
        run.cycles.iter().map(|c| (c.step, &c.status)).collect();
    for report in &run.cycles[..SCRIPT.len()] {
        let expected = if report.step == Step::Abort {
            CycleStatus::Aborted
        } else {
            CycleStatus::Completed
        };
        assert_eq!(report.status, expected, "{tenant}: {statuses:?}");
    }
    assert_eq!(run.settled, Some(true), "{tenant} settles: {statuses:?}");
    let settling = &run.cycles[SCRIPT.len()..];
    assert!(
        settling.iter().all(|c| c.step == Step::Idle),
        "{statuses:?}"
    );
    let last = settling.last().expect("a settling cycle");
    assert!(
        last.completed() && !last.sent_anything(),
        "{tenant}: {last:?}"
    );

    let initial = cycle(run, Step::Initial);
    assert!(
        initial
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Full(_))),
        "{tenant}: the initial load sends every table in full"
    );
    let changes = cycle(run, Step::Changes);
    let sum = |f: fn(&mirror_sim::driver::TableCycle) -> u64| -> u64 {
        changes.tables.iter().map(f).sum()
    };
    assert!(
        sum(|t| t.inserts) > 0 && sum(|t| t.updates) > 0 && sum(|t| t.deletes) > 0,
        "{tenant}: the changes cycle sends inserts, updates and deletes: {:?}",
        changes.tables
    );
    assert!(
        changes
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Incremental { .. } | SyncMode::UpToDate)),
        "{tenant}: {:?}",
        changes.tables
    );
    let restore = cycle(run, Step::Restore);
    assert!(
        restore
            .tables
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::SourceRestored)),
        "{tenant}: the mirror is ahead of the restored source and reloads: {:?}",
        restore.tables
    );
    let schema = cycle(run, Step::Schema);
    assert!(
        matches!(
            mode(schema, "y_kostenstelle"),
            Some(SyncMode::Full(FullReason::MirrorEmpty))
        ),
        "{tenant}: the incompatible type change rebuilds the table: {:?}",
        schema.tables
    );
    let skip = cycle(run, Step::SkipTable);
    assert_eq!(
        mode(skip, SKIPPED_TABLE),
        None,
        "{tenant}: {SKIPPED_TABLE} is left out"
    );
    let expire = cycle(run, Step::ExpireHistory);
    assert_eq!(
        mode(expire, SKIPPED_TABLE),
        Some(SyncMode::Full(FullReason::MirrorEmpty)),
        "{tenant}: the skipped table was dropped and comes back empty"
    );
    assert!(
        expire
            .tables
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::HistoryExpired)),
        "{tenant}: expired history forces reloads: {:?}",
        expire.tables
    );
    // The failed call's changes arrive with the next cycle.
    assert!(skip.rows() > 0, "{tenant}: {:?}", skip.tables);
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
    let pipeline = Pipeline::start_with(PipelineOptions {
        workers: 2,
        partitions: 4,
        ..PipelineOptions::default()
    })
    .await;
    let tenants: Vec<String> = (0..3).map(|_| pipeline.tenant().id().to_owned()).collect();
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
            Arc::new(Quiet),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the simulated cycles finish in time")
    .expect("the simulated cycles run");
    assert_eq!(
        runs.iter()
            .map(|r| r.tenant().to_owned())
            .collect::<Vec<_>>(),
        tenants
    );
    for run in &runs {
        check_cycles(run);
    }

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_another_key_is_refused_and_nothing_is_published() {
    // No workers: whatever is published stays in its partition queue, where it can be counted.
    let pipeline = Pipeline::start_with(PipelineOptions {
        workers: 0,
        schema_reply_timeout_secs: 5,
        ..PipelineOptions::default()
    })
    .await;
    let tenant = pipeline.tenant();
    let queues = pipeline.queues().await;
    let keys = keys::shared();

    // The simulator, holding the wrong key, cannot even authenticate.
    let config = RunConfig {
        tenants: vec![tenant.id().to_owned()],
        cycles: 1,
        script: vec![Step::Initial],
        settle_cycles: 0,
        ..RunConfig::default()
    };
    let runs = run(
        endpoint(&pipeline, keys.foreign_issuer.clone()),
        &config,
        Arc::new(Quiet),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let status = &runs[0].cycles[0].status;
    let CycleStatus::Failed(reason) = status else {
        panic!("expected a failed cycle, got {status:?}");
    };
    assert!(reason.starts_with("Authenticate"), "{reason}");

    // Every operation, with the other issuer's own token, and with a token that names the trusted
    // certificate but is signed by the other key.
    let foreign = pipeline.client().with_issuer(keys.foreign_issuer.clone());
    let mut header = keys.issuer.header();
    let claims = serde_json::json!({
        "sub": tenant.id(),
        "http://schemes.superoffice.net/identity/ctx": tenant.id(),
        "nonce": "0123456789ABCDEF0123456789ABCDEF",
        "nbf": chrono::Utc::now().timestamp() - 60,
        "exp": chrono::Utc::now().timestamp() + 300,
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
    });
    header["typ"] = "JWT".into();
    let forged = keys.foreign_issuer.sign_token(&header, &claims);
    let contact = simple_table("contact");
    let bodies = || {
        vec![
            RequestBody::Authenticate,
            RequestBody::TableSchema {
                tables: vec![contact.clone()],
            },
            RequestBody::Wipe {
                table: "contact".into(),
            },
            RequestBody::RowData {
                batches: vec![batch(&contact, 5, vec![simple_row("I", 1, "x")])],
            },
            RequestBody::ReplicationCompleted {
                summaries: Vec::new(),
            },
        ]
    };
    for (token, expected) in [
        (
            foreign.token(tenant.id()).token,
            "does not match the custom certificate",
        ),
        (forged, "signature does not verify"),
    ] {
        for body in bodies() {
            let operation = body.operation();
            let response = foreign.call_with_token(&token, body).await.response();
            assert_eq!(response.operation(), operation);
            let outcome = response.outcome();
            assert!(!outcome.ok, "{}: accepted", operation.name());
            assert!(
                outcome.error.contains(expected),
                "{}: {}",
                operation.name(),
                outcome.error
            );
            if let Response::Authenticate { answer, .. } = &response {
                assert_eq!(answer.signed_application_token, "");
            }
        }
    }
    assert_eq!(
        queues.partition_counts().await,
        vec![0, 0],
        "nothing published"
    );
    assert_eq!(queues.dead_letter_count().await, 0);

    // The same call with a trusted token is published: the counting above could see it.
    tenant
        .row_data(vec![batch(&contact, 5, vec![simple_row("I", 1, "x")])])
        .await;
    let mut expected = vec![0, 0];
    expected[usize::from(pipeline.topology.partition_of(tenant.id()))] = 1;
    assert_eq!(queues.partition_counts().await, expected);
    queues.close().await;
    pipeline.stop().await;
}
