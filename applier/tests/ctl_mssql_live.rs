//! `mirrorctl` against a real SQL Server: `status`, `resync` and `dlq replay`'s judgement on
//! mirrors the engine built there, through the real binary. They need a server named by
//! `MIRROR_TEST_MSSQL` (see `mssql_live.rs`), and the local RabbitMQ and PostgreSQL for the
//! queues. The `live_…` tests are ignored by default; `.ci/run` runs them when
//! `MIRROR_TEST_MSSQL` is set, and they fail when asked to run without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod consumer_support;
mod ctl_support;
mod engine_support;
mod mssql_live_support;

use chrono::{DateTime, Utc};
use consumer_support::Harness;
use ctl_support::{dead_letter, ids, mirrorctl};
use engine_support::{ins, simple};
use mirror_applier::engine::Quarantine;
use mirror_common::config::Settings;
use mirror_common::wire::{Message, RowBatch};
use mssql_live_support::Live;
use serde_json::Value;
use uuid::Uuid;

/// The broker settings of `broker` with the SQL Server mirrors of `live`.
fn settings(broker: &Harness, live: &Live) -> Settings {
    let mut settings = broker.settings.clone();
    settings.database = live.settings.clone();
    settings
}

/// `(table, lsn)` of every table in a `status` or `resync` JSON answer.
fn lsns(tables: &Value, lsn: &str) -> Vec<(String, i64)> {
    tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t[lsn].as_i64().unwrap(),
            )
        })
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

/// A time the server wrote a moment ago: read back as UTC, not shifted by a time zone.
fn assert_recent(value: &Value) {
    let age = Utc::now().signed_duration_since(time(value)).abs();
    assert!(age < chrono::Duration::minutes(10), "{value} is {age} away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_status_and_resync_on_sql_server() {
    let h = Live::start("live_status_and_resync_on_sql_server").await;
    let broker = Harness::new(1).await;
    let settings = settings(&broker, &h);
    let ctx = h.tenant.context_id.as_str();
    let (contact, person) = (simple("contact"), simple("person"));
    h.schema_call(&[contact.clone(), person.clone()]).await;
    h.rows(&contact, 100, vec![ins(1, "a")]).await;
    h.rows(&person, 200, vec![ins(1, "p")]).await;
    h.completed(&["contact", "person"]).await;

    // status of the tenant: every state column, converted.
    let status = mirrorctl(&settings, &["--json", "status", "--tenant", ctx])
        .await
        .json();
    let tenant = &status["tenants"][0];
    assert_eq!(tenant["tenant"], ctx);
    assert_eq!(tenant["storage"], h.tenant.storage.as_str());
    assert_recent(&tenant["last_cycle"]);
    assert_eq!(
        lsns(&tenant["tables"], "lsn"),
        vec![("contact".into(), 100), ("person".into(), 200)]
    );
    for table in tenant["tables"].as_array().unwrap() {
        let name = table["table"].as_str().unwrap();
        let epoch = h.state(name).await.unwrap().1;
        assert_eq!(table["epoch"], epoch, "{name}");
        assert_eq!(table["loading"], false, "{name}");
        assert_eq!(table["parked"], 0, "{name}");
        assert_eq!(table["quarantine"], Value::Null, "{name}");
        assert_eq!(table["quarantined_at"], Value::Null, "{name}");
        assert_recent(&table["updated_at"]);
        assert_recent(&table["last_cycle_at"]);
    }

    // Every tenant: ours is listed (other tests' tenants may come and go meanwhile).
    let all = mirrorctl(&settings, &["--json", "status"]).await.json();
    assert!(
        all["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tenant"] == ctx),
        "{all}"
    );
    let text = mirrorctl(&settings, &["status", "--tenant", ctx]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with(&format!(
            "Tenant {ctx} (database {}, partition ",
            h.tenant.storage
        )),
        "{}",
        text.stdout
    );

    // A dry run reports and changes nothing.
    let dry = mirrorctl(
        &settings,
        &["--json", "resync", "--tenant", ctx, "--dry-run"],
    )
    .await
    .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        lsns(&dry["tables"], "lsn_before"),
        vec![("contact".into(), 100), ("person".into(), 200)]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 100);
    assert_eq!(h.state("person").await.unwrap().0, 200);

    // One table, named in any case: only its LSN becomes -1.
    let one = mirrorctl(
        &settings,
        &["--json", "resync", "--tenant", ctx, "--table", "CONTACT"],
    )
    .await
    .json();
    assert_eq!(
        lsns(&one["tables"], "lsn_before"),
        vec![("contact".into(), 100)]
    );
    assert_eq!(one["tables"][0]["quarantined"], false);
    assert_eq!(h.state("contact").await.unwrap().0, -1);
    assert_eq!(h.state("person").await.unwrap().0, 200);

    // Every table.
    let every = mirrorctl(&settings, &["resync", "--tenant", ctx]).await;
    assert_eq!(every.code, 0, "{}", every.stderr);
    assert!(
        every
            .stdout
            .contains(&format!("Set the LSN of 2 table(s) of tenant {ctx} to -1")),
        "{}",
        every.stdout
    );
    assert_eq!(h.state("person").await.unwrap().0, -1);

    // Unknown table, unknown tenant.
    let table = mirrorctl(&settings, &["resync", "--tenant", ctx, "--table", "nope"]).await;
    assert_eq!(table.code, 1);
    assert!(
        table.stderr.contains(&format!(
            "unknown table nope of tenant {ctx}: no row in {ctx}_mirroring (tables: contact, person)"
        )),
        "{}",
        table.stderr
    );
    let tenant = mirrorctl(&settings, &["resync", "--tenant", "NoSuchTenant"]).await;
    assert_eq!(tenant.code, 1);
    assert!(
        tenant.stderr.contains(
            "unknown tenant NoSuchTenant: no state table NoSuchTenant_mirroring in database \
             MirrorTest_NoSuchTenant"
        ),
        "{}",
        tenant.stderr
    );

    // A mirror without the cycles table (as SuperOffice's own client keeps it) has no last cycle.
    h.exec(&format!(
        "DROP TABLE {}",
        h.qualified(&format!("{ctx}_mirroring_cycles"))
    ))
    .await;
    let status = mirrorctl(&settings, &["--json", "status", "--tenant", ctx])
        .await
        .json();
    assert_eq!(status["tenants"][0]["last_cycle"], Value::Null);
    assert_eq!(status["tenants"][0]["tables"].as_array().unwrap().len(), 2);

    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_dlq_replay_judges_letters_by_the_sql_server_mirror() {
    let h = Live::start("live_dlq_replay_judges_letters_by_the_sql_server_mirror").await;
    let broker = Harness::new(1).await;
    let settings = settings(&broker, &h);
    let ctx = h.tenant.context_id.clone();
    let (contact, person) = (simple("contact"), simple("person"));
    h.schema_call(&[contact.clone(), person.clone()]).await;
    h.rows(&contact, 100, vec![ins(1, "fine")]).await;
    h.rows(&person, 100, vec![ins(1, "fine")]).await;
    // A batch the mirror refuses: the engine quarantines `contact`, as the worker would.
    h.exec(&format!(
        "ALTER TABLE {} ADD CONSTRAINT no_bad CHECK (name <> N'bad')",
        h.qualified("contact")
    ))
    .await;
    let poison = h.envelope(Message::RowData {
        batches: vec![RowBatch {
            table: contact.clone(),
            lsn: 0,
            rows: vec![ins(2, "bad")],
        }],
    });
    let err = h.engine.apply(&poison).await.unwrap_err();
    let Quarantine { table, epoch } = h.engine.quarantine(&poison, &err).await.unwrap();
    assert_eq!(table.as_deref(), Some("contact"));
    let person_epoch = h.state("person").await.unwrap().1;

    // status shows the quarantine and the parked batch.
    let status = mirrorctl(&settings, &["--json", "status", "--tenant", &ctx])
        .await
        .json();
    let quarantined = &status["tenants"][0]["tables"][0];
    assert_eq!(quarantined["table"], "contact");
    assert_eq!(
        (&quarantined["lsn"], &quarantined["epoch"]),
        (&(-1).into(), &epoch.into())
    );
    assert!(
        quarantined["quarantine"]
            .as_str()
            .unwrap()
            .contains("contact")
    );
    assert_recent(&quarantined["quarantined_at"]);
    assert_eq!(quarantined["parked"], 1);

    // Still quarantined in its epoch: replayed. A table that is not quarantined, a newer epoch
    // and a tenant without a mirror: stale.
    let replay = dead_letter(&broker, &ctx, "contact", epoch).await;
    let healed = dead_letter(&broker, &ctx, "person", person_epoch).await;
    let wiped = dead_letter(&broker, &ctx, "contact", epoch - 1).await;
    let gone = format!("Gone{}", &Uuid::new_v4().simple().to_string()[..8]);
    let no_mirror = dead_letter(&broker, &gone, "contact", epoch).await;
    let report = mirrorctl(&settings, &["--json", "dlq", "replay", "--dry-run"])
        .await
        .json();
    let verdicts: Vec<[String; 3]> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ["id", "verdict", "why"].map(|k| m[k].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        [
            replay,
            "replay".into(),
            format!("table contact is still quarantined in epoch {epoch}"),
        ],
        [
            healed,
            "stale".into(),
            "table person is no longer quarantined: it was healed since".into(),
        ],
        [
            wiped,
            "stale".into(),
            format!(
                "table contact was wiped or recreated since (failed in epoch {}, now {epoch})",
                epoch - 1
            ),
        ],
        [
            no_mirror,
            "stale".into(),
            format!("tenant {gone} has no mirror any more"),
        ],
    ];
    assert_eq!(verdicts, expected);
    assert_eq!(
        (&report["replayed"], &report["dropped"]),
        (&1.into(), &3.into())
    );
    // Nothing changed: the letters are all still there, in order, and none was sent.
    let left = mirrorctl(&settings, &["--json", "dlq", "list"])
        .await
        .json();
    assert_eq!(ids(&left), expected.map(|[id, _, _]| id));
    assert_eq!(broker.ready(&broker.partition_queue()).await, 0);

    broker.cleanup().await;
}
