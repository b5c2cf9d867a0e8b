//! The operator's side of a poison message, through `mirrorctl`: a batch the mirror refuses (a
//! CHECK constraint the operator added to a mirror table) is dead-lettered with its reason and
//! quarantines only its table; `status` and `dlq list|show` show it; once the operator drops the
//! constraint, `dlq replay` restores the table (the failed batch and the batches parked behind
//! it, LSN and quarantine). A dead letter whose table was wiped since is reported stale and
//! dropped without effect. `resync` makes the next cycle reload a table.

use mirror_applier::ctl::{self, Cli};
use mirror_common::config::Settings;
use mirror_tests::values::{batch, simple_row, simple_table};
use mirror_tests::{Mirror, Pipeline, eventually};
use serde_json::Value;

/// The constraint the operator adds to the mirror's `contact` table.
const CONSTRAINT: &str = "contact_name_not_forbidden";

/// Runs `mirrorctl --json <args>` through the library entry and parses what it printed.
async fn mirrorctl(settings: &Settings, args: &[&str]) -> anyhow::Result<Value> {
    let argv = ["mirrorctl", "--json"].iter().chain(args).copied();
    let cli = Cli::parse_args(argv).expect("valid mirrorctl arguments");
    let mut out = Vec::new();
    ctl::execute(cli, settings, &mut out).await?;
    Ok(serde_json::from_slice(&out).expect("mirrorctl prints one JSON document"))
}

/// Adds the constraint for new rows (`NOT VALID`: rows already there are not checked).
async fn forbid(mirror: &Mirror) {
    mirror
        .exec(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {CONSTRAINT} CHECK (name <> 'forbidden') NOT VALID",
            mirror.qualified("contact")
        ))
        .await;
}

async fn allow(mirror: &Mirror) {
    mirror
        .exec(&format!(
            "ALTER TABLE {} DROP CONSTRAINT {CONSTRAINT}",
            mirror.qualified("contact")
        ))
        .await;
}

/// `(key, name)` of every row of `contact`, by key.
async fn contact_rows(mirror: &Mirror) -> Vec<(String, String)> {
    mirror
        .rows("contact")
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
}

fn table<'a>(status: &'a Value, tenant: &str, name: &str) -> &'a Value {
    let tenant = status["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap_or_else(|| panic!("tenant {tenant} in {status:#}"));
    tenant["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("table {name} in {tenant:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_replayed_once_fixed_and_dropped_once_stale() {
    let pipeline = Pipeline::start(1).await;
    let settings = pipeline.settings.clone();
    let tenant = pipeline.tenant();
    let (contact, person) = (simple_table("contact"), simple_table("person"));
    let both = [contact.clone(), person.clone()];
    let mirror = tenant.mirror().await;
    let queues = pipeline.queues().await;
    let partition = i64::from(pipeline.topology.partition_of(tenant.id()));

    tenant.table_schema(&both).await;
    for (schema, lsn) in [(&contact, 10), (&person, 20)] {
        tenant.wipe(&schema.name).await;
        let rows = (1..=2).map(|k| simple_row("I", k, "loaded")).collect();
        tenant.row_data(vec![batch(schema, lsn, rows)]).await;
    }
    tenant.completed(&["contact", "person"]).await;
    tenant.table_schema(&both).await;

    // The operator's constraint refuses a change; the tenant goes on changing both tables.
    forbid(&mirror).await;
    tenant
        .row_data(vec![batch(
            &contact,
            11,
            vec![simple_row("U", 2, "forbidden"), simple_row("I", 3, "new")],
        )])
        .await;
    tenant
        .row_data(vec![batch(&person, 21, vec![simple_row("I", 3, "after")])])
        .await;
    tenant
        .row_data(vec![batch(
            &contact,
            12,
            vec![simple_row("I", 4, "parked")],
        )])
        .await;
    assert_eq!(
        tenant.table_schema(&both).await,
        [("contact".to_owned(), -1), ("person".to_owned(), 21)].into()
    );

    // status: only contact is quarantined, with both of its batches parked; one dead letter.
    let status = mirrorctl(&settings, &["status", "--tenant", tenant.id()])
        .await
        .unwrap();
    let quarantined = table(&status, tenant.id(), "contact");
    assert_eq!(quarantined["lsn"], -1);
    assert_eq!(quarantined["parked"], 2);
    let reason = quarantined["quarantine"].as_str().unwrap();
    assert!(reason.contains(CONSTRAINT), "{reason}");
    let epoch = quarantined["epoch"].as_i64().unwrap();
    let healthy = table(&status, tenant.id(), "person");
    assert_eq!(
        (&healthy["lsn"], &healthy["quarantine"]),
        (&21.into(), &Value::Null)
    );
    assert_eq!(status["tenants"][0]["partition"], partition);
    assert!(status["tenants"][0]["last_cycle"].is_string());
    assert_eq!(status["dead_letter_queue"]["messages"], 1);
    assert_eq!(
        status["partitions"].as_array().unwrap().len(),
        usize::from(pipeline.topology.partitions)
    );

    // dlq list and show: the message, why it failed, where it goes back to.
    let list = mirrorctl(&settings, &["dlq", "list"]).await.unwrap();
    let letters = list.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{list:#}");
    let letter = &letters[0];
    assert_eq!(letter["tenant"], tenant.id());
    assert_eq!(letter["kind"], "RowData");
    assert_eq!(letter["table"], "contact");
    assert_eq!(letter["epoch"], epoch);
    assert_eq!(letter["partition"], partition);
    assert!(letter["reason"].as_str().unwrap().contains(CONSTRAINT));
    let id = letter["id"].as_str().unwrap().to_owned();
    let shown = mirrorctl(&settings, &["dlq", "show", &id]).await.unwrap();
    assert_eq!(shown["body"]["kind"], "RowData");
    assert_eq!(shown["body"]["tables"][0]["table"], "contact");
    assert_eq!(shown["body"]["tables"][0]["rows"], 2);
    assert_eq!(shown["body"]["tables"][0]["lsn"], 11);
    let unknown = mirrorctl(&settings, &["dlq", "show", "no-such-id"])
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown id no-such-id"),
        "{unknown}"
    );

    // A dry run says it would replay, and changes nothing.
    let dry = mirrorctl(&settings, &["dlq", "replay", "--dry-run"])
        .await
        .unwrap();
    assert_eq!(dry["messages"][0]["verdict"], "replay", "{dry:#}");
    assert_eq!(queues.dead_letter_count().await, 1);
    assert!(mirror.state("contact").await.unwrap().quarantine.is_some());

    // The cause is fixed; the replay restores the table.
    allow(&mirror).await;
    let replayed = mirrorctl(
        &settings,
        &[
            "dlq",
            "replay",
            "--tenant",
            tenant.id(),
            "--table",
            "contact",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        (&replayed["replayed"], &replayed["dropped"]),
        (&1.into(), &0.into()),
        "{replayed:#}"
    );
    assert_eq!(queues.dead_letter_count().await, 0);
    let healed = eventually("the replay to lift the quarantine", || async {
        let state = mirror.state("contact").await?;
        state.quarantine.is_none().then_some(state)
    })
    .await;
    assert_eq!(healed.lsn, 12);
    assert_eq!(
        contact_rows(&mirror).await,
        [
            ("1", "loaded"),
            ("2", "forbidden"),
            ("3", "new"),
            ("4", "parked")
        ]
        .map(|(k, n)| (k.to_owned(), n.to_owned()))
    );
    let status = mirrorctl(&settings, &["status"]).await.unwrap();
    assert_eq!(table(&status, tenant.id(), "contact")["parked"], 0);
    assert_eq!(
        queues.dead_letter_count().await,
        0,
        "the replay applied cleanly"
    );

    // Another refused change; then the next cycle wipes and reloads the table before anyone
    // replays it: the dead letter is stale.
    forbid(&mirror).await;
    tenant
        .row_data(vec![batch(
            &contact,
            13,
            vec![simple_row("I", 5, "forbidden")],
        )])
        .await;
    assert_eq!(tenant.table_schema(&both).await["contact"], -1);
    allow(&mirror).await;
    tenant.wipe("contact").await;
    let reload = (1..=3).map(|k| simple_row("I", k, "reloaded")).collect();
    tenant.row_data(vec![batch(&contact, 15, reload)]).await;
    tenant.completed(&["contact"]).await;
    assert_eq!(tenant.table_schema(&both).await["contact"], 15);

    let stale = mirrorctl(&settings, &["dlq", "replay"]).await.unwrap();
    assert_eq!(
        (&stale["replayed"], &stale["dropped"]),
        (&0.into(), &1.into()),
        "{stale:#}"
    );
    let why = stale["messages"][0]["why"].as_str().unwrap();
    assert!(why.contains("wiped or recreated since"), "{why}");
    assert_eq!(queues.dead_letter_count().await, 0);
    // A round trip through the partition: nothing of the stale message reached the table.
    assert_eq!(tenant.table_schema(&both).await["contact"], 15);
    let rows = contact_rows(&mirror).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(_, name)| name == "reloaded"), "{rows:?}");

    // resync: a dry run changes nothing; then person's LSN is -1 and the next cycle reloads it.
    let dry = mirrorctl(
        &settings,
        &[
            "resync",
            "--tenant",
            tenant.id(),
            "--table",
            "person",
            "--dry-run",
        ],
    )
    .await
    .unwrap();
    assert_eq!(dry["tables"][0]["lsn_before"], 21);
    assert_eq!(mirror.state("person").await.unwrap().lsn, 21);
    let done = mirrorctl(
        &settings,
        &["resync", "--tenant", tenant.id(), "--table", "person"],
    )
    .await
    .unwrap();
    assert_eq!(done["tables"].as_array().unwrap().len(), 1, "{done:#}");
    assert_eq!(mirror.state("person").await.unwrap().lsn, -1);
    assert_eq!(mirror.state("contact").await.unwrap().lsn, 15);
    assert_eq!(
        tenant.table_schema(&both).await,
        [("contact".to_owned(), 15), ("person".to_owned(), -1)].into()
    );
    let unknown_table = mirrorctl(
        &settings,
        &["resync", "--tenant", tenant.id(), "--table", "nosuch"],
    )
    .await
    .unwrap_err();
    assert!(
        unknown_table.to_string().contains("unknown table nosuch"),
        "{unknown_table}"
    );
    let unknown_tenant = mirrorctl(&settings, &["resync", "--tenant", "NoSuchTenant"])
        .await
        .unwrap_err();
    assert!(
        unknown_tenant
            .to_string()
            .contains("unknown tenant NoSuchTenant"),
        "{unknown_tenant}"
    );

    queues.close().await;
    pipeline.stop().await;
}
