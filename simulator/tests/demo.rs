//! The whole pipeline in one process: receiver and applier against the local RabbitMQ and
//! PostgreSQL, two tenants, three scripted cycles (initial load, schema changes, a cycle that fails
//! half-way), then settling, verification, and a deliberately corrupted mirror the verifier must
//! catch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::sync::Arc;
use std::time::Duration;

use mirror_common::shutdown::CancellationToken;
use mirror_sim::demo::{DemoConfig, demo};
use mirror_sim::driver::{CycleStatus, Quiet, RunConfig, SyncMode};
use mirror_sim::scenario::Step;
use mirror_sim::verify::{DiffKind, PgReader, verify};

const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_three_cycles_mirror_exactly_and_corruption_is_caught() {
    let config = DemoConfig {
        run: RunConfig {
            rows: 400,
            cycles: 3,
            script: vec![Step::Initial, Step::Schema, Step::Abort],
            ..RunConfig::default()
        },
        tenants: 2,
        key_bits: 1024,
        drop_mirrors: false,
        ..DemoConfig::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(240),
        demo(&config, Arc::new(Quiet), CancellationToken::new()),
    )
    .await
    .expect("the demo timed out")
    .expect("the demo failed");

    // Tamper with tenant 1's mirror, verify again, then drop both mirrors before asserting.
    let first = &outcome.runs[0];
    let template = "Mirror_{context_id}";
    let mut reader = PgReader::connect(DATABASE_URL, template, first.tenant())
        .await
        .unwrap();
    let schema = format!("\"Mirror_{}\"", first.tenant());
    let person = first.source.table("person").unwrap();
    let keys: Vec<i32> = person.live_keys().take(3).collect();
    reader
        .client()
        .batch_execute(&format!(
            "UPDATE {schema}.person SET firstname = 'tampered' WHERE person_id = {};
             DELETE FROM {schema}.person WHERE person_id = {};
             UPDATE {schema}.person SET person_id = 2000000000 WHERE person_id = {};",
            keys[0], keys[1], keys[2]
        ))
        .await
        .unwrap();
    let tampered = verify(&mut reader, &first.source).await;
    for run in &outcome.runs {
        reader
            .client()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"Mirror_{}\" CASCADE",
                run.tenant()
            ))
            .await
            .unwrap();
    }
    let tampered = tampered.unwrap();

    // The run itself.
    assert_eq!(outcome.runs.len(), 2);
    for run in &outcome.runs {
        let statuses: Vec<&CycleStatus> = run.cycles.iter().map(|c| &c.status).collect();
        assert_eq!(
            statuses[0],
            &CycleStatus::Completed,
            "{}: {statuses:?}",
            run.tenant()
        );
        assert_eq!(
            statuses[1],
            &CycleStatus::Completed,
            "{}: {statuses:?}",
            run.tenant()
        );
        assert_eq!(
            statuses[2],
            &CycleStatus::Aborted,
            "{}: {statuses:?}",
            run.tenant()
        );
        assert_eq!(run.settled, Some(true), "{}: {statuses:?}", run.tenant());
        // The initial load wiped and filled every table.
        let initial = &run.cycles[0];
        assert!(
            initial
                .tables
                .iter()
                .all(|t| matches!(t.mode, SyncMode::Full(_)))
        );
        assert_eq!(
            initial.rows(),
            initial.tables.iter().map(|t| t.inserts).sum::<u64>()
        );
        // The incompatible type change made the mirror recreate y_kostenstelle: reloaded.
        let schema_cycle = &run.cycles[1];
        let kst = schema_cycle
            .tables
            .iter()
            .find(|t| t.table == "y_kostenstelle")
            .unwrap();
        assert!(matches!(kst.mode, SyncMode::Full(_)), "{kst:?}");
        // After the aborted cycle, a settling cycle resent its changes.
        assert!(run.cycles[3].rows() > 0, "{:?}", run.cycles[3]);
    }
    assert_eq!(outcome.reports.len(), 2);
    for report in &outcome.reports {
        assert!(report.is_clean(), "{report}");
        assert!(report.source_rows() >= 380, "{report}");
        assert!(report.tables.iter().all(|t| t.values_compared), "{report}");
        let contact = report.table("contact").unwrap();
        assert!(contact.source_rows > 0 && contact.mirror_rows == contact.source_rows);
    }
    assert!(outcome.is_clean());

    // The tampered mirror.
    assert!(!tampered.is_clean(), "{tampered}");
    let person = tampered.table("person").unwrap();
    assert_eq!(
        (
            person.wrong,
            person.lost,
            person.unexpected,
            person.duplicated
        ),
        (1, 2, 1, 0),
        "{tampered}"
    );
    let wrong = person
        .samples
        .iter()
        .find(|s| s.kind == DiffKind::Wrong)
        .unwrap();
    assert_eq!(wrong.key, i64::from(keys[0]));
    assert!(
        wrong
            .columns
            .iter()
            .any(|(c, _, actual)| c == "firstname" && actual.contains("tampered"))
    );
    assert_eq!(tampered.differences(), 4);
    assert!(
        tampered
            .tables
            .iter()
            .filter(|t| t.table != "person")
            .all(|t| t.is_clean())
    );
}
