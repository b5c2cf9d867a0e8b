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
    Credentials, CycleReport, CycleStatus, Endpoint, Quiet, RunConfig, SyncMode, TableCycle,
    TenantRun, run,
};
use mirror_sim::scenario::{SKIPPED_TABLE, Step};
use mirror_sim::source::Source;
use mirror_sim::verify::{DiffKind, PgReader, verify};
use mirror_tests::values::{batch, simple_row, simple_table};
use mirror_tests::{CLIENT_ID, DATABASE_URL, Pipeline, PipelineOptions, keys};

/// Every step the simulator offers, in an order where each one means something: the restore goes
/// back to the start of the completed `changes` cycle, a skipped table comes back with the next
/// step, and the history expires right after the aborted cycle, while the tables that cycle did
/// not reach lag behind (so they must be reloaded). The `idle` step is what the settling cycles
/// after the script run.
const SCRIPT: [Step; 7] = [
    Step::Initial,
    Step::Changes,
    Step::Restore,
    Step::Schema,
    Step::SkipTable,
    Step::Abort,
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

/// Every cycle of a run in one line each, for assertion messages:
/// `3 restore Completed: contact=Full(SourceRestored)@1234+56 …` (mode, mirror LSN, rows sent).
fn describe(run: &TenantRun) -> String {
    let mut text = format!("{}:", run.tenant());
    for c in &run.cycles {
        text.push_str(&format!("\n  {} {} {:?}:", c.cycle, c.step, c.status));
        for t in &c.tables {
            text.push_str(&format!(
                " {}={:?}@{}+{}",
                t.table,
                t.mode,
                t.mirror_lsn,
                t.rows()
            ));
        }
    }
    text
}

/// What each scripted cycle must have done, as the simulator reports it.
fn check_cycles(run: &TenantRun) {
    let story = describe(run);
    for report in &run.cycles[..SCRIPT.len()] {
        let expected = if report.step == Step::Abort {
            CycleStatus::Aborted
        } else {
            CycleStatus::Completed
        };
        assert_eq!(report.status, expected, "{story}");
    }
    assert_eq!(run.settled, Some(true), "settles: {story}");
    let settling = &run.cycles[SCRIPT.len()..];
    assert!(settling.iter().all(|c| c.step == Step::Idle), "{story}");
    let last = settling.last().expect("a settling cycle");
    assert!(last.completed() && !last.sent_anything(), "{story}");

    let initial = cycle(run, Step::Initial);
    assert!(
        initial
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Full(_))),
        "the initial load sends every table in full: {story}"
    );
    let changes = cycle(run, Step::Changes);
    assert!(
        changes
            .tables
            .iter()
            .all(|t| matches!(t.mode, SyncMode::Incremental { .. } | SyncMode::UpToDate))
            && changes.rows() > 0,
        "the changes cycle sends changes only: {story}"
    );
    let restore = cycle(run, Step::Restore);
    assert!(
        restore
            .tables
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::SourceRestored)),
        "the mirror is ahead of the restored source and reloads: {story}"
    );
    let schema = cycle(run, Step::Schema);
    assert_eq!(
        mode(schema, "y_kostenstelle"),
        Some(SyncMode::Full(FullReason::MirrorEmpty)),
        "the incompatible type change rebuilds the table: {story}"
    );

    let skip = cycle(run, Step::SkipTable);
    assert_eq!(mode(skip, SKIPPED_TABLE), None, "left out: {story}");
    let back = run
        .cycles
        .iter()
        .filter(|c| c.cycle > skip.cycle)
        .find_map(|c| mode(c, SKIPPED_TABLE));
    assert_eq!(
        back,
        Some(SyncMode::Full(FullReason::MirrorEmpty)),
        "the skipped table was dropped and comes back empty: {story}"
    );

    // The aborted cycle delivered one RowData call and stopped; what it did not reach arrives
    // with the next cycle, which also finds the history expired for those tables.
    let abort = cycle(run, Step::Abort);
    assert_eq!(
        abort.tables.iter().map(|t| t.calls).sum::<u32>(),
        1,
        "one RowData call before the failure: {story}"
    );
    let expire = cycle(run, Step::ExpireHistory);
    assert_eq!(expire.cycle, abort.cycle + 1);
    let unreached: Vec<_> = expire
        .tables
        .iter()
        .filter(|t| abort.tables.iter().all(|a| a.table != t.table))
        .collect();
    assert!(
        !unreached.is_empty()
            && unreached
                .iter()
                .all(|t| t.rows() > 0 || t.mode == SyncMode::UpToDate),
        "the tables the failed cycle did not reach are sent next cycle: {story}"
    );
    assert!(
        unreached
            .iter()
            .any(|t| t.mode == SyncMode::Full(FullReason::HistoryExpired)),
        "expired history forces reloads: {story}"
    );
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
