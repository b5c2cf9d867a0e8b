//! The engine against a real SQL Server: the PostgreSQL engine suites' scenarios, on the SQL Server
//! target. They need a server: `MIRROR_TEST_MSSQL` holds its URL or connection string, e.g.
//! `mssql://sa:<password>@127.0.0.1:1433/master?trustServerCertificate=true` (docker-compose's
//! SQL Server). The `live_…` tests are ignored by default; `.ci/run` runs them when
//! `MIRROR_TEST_MSSQL` is set (`cargo nextest run --run-ignored only`), and they fail when asked to
//! run without it.
//!
//! Each test works in its own tenant database (`MirrorTest_<id>`), dropped afterwards, also when
//! the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;
mod mssql_live_support;

use chrono::NaiveDateTime;
use engine_support::{del, ins, lsns, rowdata, simple, table, upd};
use mirror_applier::engine::{Applied, Engine, Quarantine};
use mirror_applier::error::ApplyError;
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::TableSchema;
use mirror_common::value::Value;
use mirror_common::wire::{Message, Operation, Row, RowBatch};
use mssql_live_support::Live;
use mssql_live_support::typed::{all_types, as_rows, dt, read_back, sorted, typed_rows};
use uuid::Uuid;

// ---- offline: the engine picks SQL Server from the URL ----

#[tokio::test]
async fn engine_picks_sql_server_from_the_url_and_an_unreachable_server_is_transient() {
    for url in [
        "mssql://sa:secret@127.0.0.1:1/master?trustServerCertificate=true",
        "Server=tcp:127.0.0.1,1;Database=master;User Id=sa;Password=secret",
    ] {
        let settings = DatabaseSettings {
            url: url.into(),
            ..DatabaseSettings::default()
        };
        let engine = Engine::connect(&settings).await.unwrap();
        let err = engine.ping().await.unwrap_err();
        assert!(err.is_transient(), "{url}: {err}");
        assert_eq!(err.table(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_every_type_round_trips_through_bulk_values_and_merge() {
    let h = Live::start("live_every_type_round_trips_through_bulk_values_and_merge").await;
    // `typed` is bulk-loaded; `typed_large` has large-value columns and goes through VALUES.
    let tables = [
        (all_types("typed", false), false),
        (all_types("typed_large", true), true),
    ];
    let schemas: Vec<TableSchema> = tables.iter().map(|(t, _)| t.clone()).collect();
    h.schema_call(&schemas).await;
    for (schema, large) in &tables {
        let sent = typed_rows(*large);
        // Direct load: the table was just created.
        h.rows(schema, 0, as_rows(Operation::Insert, &sent)).await;
        assert_eq!(
            read_back(&h, schema).await,
            sorted(sent.clone()),
            "{}",
            schema.name
        );
    }
    // Merge path: end the loading phase, then send every row's values under another key.
    h.completed(&["typed", "typed_large"]).await;
    for (schema, large) in &tables {
        let sent = typed_rows(*large);
        let keys: Vec<Value> = sent.iter().map(|r| r[0].clone()).collect();
        let rotated: Vec<Vec<Value>> = sent
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = r.clone();
                r[0] = keys[(i + 1) % keys.len()].clone();
                r
            })
            .collect();
        h.rows(schema, 0, as_rows(Operation::Update, &rotated))
            .await;
        assert_eq!(
            read_back(&h, schema).await,
            sorted(rotated),
            "{}",
            schema.name
        );
    }
    // Types are kept as sent; defaults apply to rows written by others.
    let columns = h.columns("typed_large").await;
    let types: Vec<&str> = columns.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "int",
            "smallint",
            "tinyint",
            "bigint",
            "bit",
            "float",
            "real",
            "datetime",
            "datetime2",
            "date",
            "nvarchar(10)",
            "uniqueidentifier",
            "decimal",
            "varbinary(100)",
            "nvarchar(max)",
            "ntext",
            "varbinary(max)"
        ]
    );
    h.exec(&format!(
        "INSERT INTO {} ([typed_id]) VALUES (77)",
        h.qualified("typed")
    ))
    .await;
    let row = &h
        .query(
            &format!(
                "SELECT dt, nv FROM {} WHERE typed_id = 77",
                h.qualified("typed")
            ),
            &[],
        )
        .await[0];
    assert_eq!(
        row.get::<NaiveDateTime, _>(0),
        Some(dt("1760-01-01 00:00:00"))
    );
    assert_eq!(row.get::<&str, _>(1), Some(""));
}

// ---- rows ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_insert_update_delete_and_their_missing_row_cases() {
    let h = Live::start("live_insert_update_delete_and_their_missing_row_cases").await;
    let t = simple("contact");
    assert_eq!(
        h.schema_call(std::slice::from_ref(&t)).await,
        vec![("contact".into(), -1)]
    );
    h.rows(&t, 0, vec![ins(1, "a"), ins(2, "b"), ins(3, "c")])
        .await;
    h.completed(&["contact"]).await; // merges from here on
    h.rows(
        &t,
        100,
        vec![upd(1, "a2"), upd(7, "new"), ins(2, "b2"), del(3), del(99)],
    )
    .await;
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![
            (1, Some("a2".into())),
            (2, Some("b2".into())),
            (7, Some("new".into()))
        ]
    );
    assert_eq!(
        h.key_text("contact", "n").await,
        vec![
            (1, Some("10".into())),
            (2, Some("20".into())),
            (7, Some("70".into()))
        ]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 100);
    // One batch: insert, update and delete of one key collapse to its last operation.
    h.rows(
        &t,
        0,
        vec![
            ins(5, "x"),
            upd(5, "y"),
            del(5),
            del(1),
            ins(1, "back"),
            upd(1, "final"),
        ],
    )
    .await;
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![
            (1, Some("final".into())),
            (2, Some("b2".into())),
            (7, Some("new".into()))
        ]
    );
    // The LSN only moves forward, and only on positive values.
    h.rows(&t, 40, vec![ins(8, "late")]).await;
    h.rows(&t, -1, vec![ins(9, "later")]).await;
    assert_eq!(h.state("contact").await.unwrap().0, 100);
    assert_eq!(
        h.schema_call(std::slice::from_ref(&t)).await,
        vec![("contact".into(), 100)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_a_reload_bulk_loads_falls_back_to_merging_and_a_wipe_empties() {
    let h = Live::start("live_a_reload_bulk_loads_falls_back_to_merging_and_a_wipe_empties").await;
    let t = simple("doc");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 0, (1..=500).map(|k| ins(k, "first")).collect())
        .await;
    h.rows(&t, 0, (501..=1000).map(|k| ins(k, "second")).collect())
        .await;
    // Still loading, but a key that exists: nothing is loaded directly, the batch is merged.
    h.rows(&t, 0, vec![ins(1, "merged"), ins(1001, "new")])
        .await;
    assert_eq!(h.count("doc").await, 1001);
    let names = h.key_text("doc", "name").await;
    assert_eq!(names[0], (1, Some("merged".into())));
    assert_eq!(names[1000], (1001, Some("new".into())));
    let epoch = h.state("doc").await.unwrap().1;
    h.wipe("doc").await;
    assert_eq!(h.count("doc").await, 0);
    let (lsn, new_epoch, _) = h.state("doc").await.unwrap();
    assert_eq!((lsn, new_epoch), (-1, epoch + 1));
    h.rows(&t, 9, (1..=3).map(|k| ins(k, "again")).collect())
        .await;
    assert_eq!(h.count("doc").await, 3);
    assert_eq!(h.state("doc").await.unwrap().0, 9);
}

// ---- schema ----

fn v1() -> TableSchema {
    table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(20)", false, "default (N'')"),
            ("n", "smallint", true, ""),
        ],
    )
}

async fn loaded(h: &Live) {
    let t = v1();
    assert_eq!(
        h.schema_call(std::slice::from_ref(&t)).await,
        vec![("contact".into(), -1)]
    );
    h.rows(
        &t,
        50,
        vec![Row {
            op: Operation::Insert,
            values: vec![Value::Int(1), Value::Text("Ada".into()), Value::SmallInt(3)],
        }],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_schema_evolution_alters_in_place_or_rebuilds() {
    let h = Live::start("live_schema_evolution_alters_in_place_or_rebuilds").await;
    loaded(&h).await;
    let v2 = table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(max)", true, "default (N'?')"), // widened, nullable, new default
            ("n", "int", true, ""),                            // widened
            ("added", "datetime", true, ""),                   // new
            ("flag", "smallint", true, "default ((1))"),       // new, filled in existing rows
        ],
    );
    assert_eq!(
        h.schema_call(std::slice::from_ref(&v2)).await,
        vec![("contact".into(), 50)]
    );
    assert_eq!(
        h.columns("contact").await,
        vec![
            ("contact_id".into(), "int".into(), false),
            ("name".into(), "nvarchar(max)".into(), true),
            ("n".into(), "int".into(), true),
            ("added".into(), "datetime".into(), true),
            ("flag".into(), "smallint".into(), true),
        ]
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("Ada".into()))]
    );
    assert_eq!(
        h.key_text("contact", "flag").await,
        vec![(1, Some("1".into()))]
    );
    h.rows(
        &v2,
        60,
        vec![Row {
            op: Operation::Update,
            values: vec![
                Value::Int(1),
                Value::Null,
                Value::Int(70_000),
                Value::Null,
                Value::Null,
            ],
        }],
    )
    .await;
    assert_eq!(
        h.key_text("contact", "n").await,
        vec![(1, Some("70000".into()))]
    );
    // The new default is the one in force.
    h.exec(&format!(
        "INSERT INTO {} ([contact_id]) VALUES (2)",
        h.qualified("contact")
    ))
    .await;
    assert_eq!(
        h.key_text("contact", "name").await[1],
        (2, Some("?".into()))
    );
    let err = h
        .engine
        .apply(&h.envelope(rowdata(&v1(), 0, vec![])))
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::SchemaMismatch { .. }), "{err}");

    // An incompatible change rebuilds the table and asks for everything again.
    let epoch_before = h.state("contact").await.unwrap().1;
    let narrowed = table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(10)", false, "default (N'')"),
        ],
    );
    assert_eq!(
        h.schema_call(std::slice::from_ref(&narrowed)).await,
        vec![("contact".into(), -1)]
    );
    assert_eq!(h.count("contact").await, 0);
    assert_eq!(
        h.columns("contact").await,
        vec![
            ("contact_id".into(), "int".into(), false),
            ("name".into(), "nvarchar(10)".into(), false),
        ]
    );
    let (lsn, epoch, _) = h.state("contact").await.unwrap();
    assert_eq!((lsn, epoch), (-1, epoch_before + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_absent_tables_are_dropped() {
    let h = Live::start("live_absent_tables_are_dropped").await;
    let (a, b) = (simple("keep"), simple("gone"));
    h.schema_call(&[a.clone(), b.clone()]).await;
    h.rows(&b, 5, vec![ins(1, "x")]).await;
    assert_eq!(
        h.schema_call(std::slice::from_ref(&a)).await,
        vec![("keep".into(), -1)]
    );
    assert!(!h.table_exists("gone").await);
    assert!(h.state("gone").await.is_none());
    assert_eq!(
        h.schema_call(&[a, b]).await,
        vec![("keep".into(), -1), ("gone".into(), -1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_force_resync_procedures() {
    let h = Live::start("live_force_resync_procedures").await;
    loaded(&h).await;
    // 1. Set the table's LSN to -1 (the operators' statement, SuperOffice's column spelling).
    h.exec(&format!(
        "UPDATE {} SET LSN = -1 WHERE tablename = 'contact'",
        h.state_table()
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert_eq!(
        h.count("contact").await,
        1,
        "the rows stay until SuperOffice wipes"
    );

    // 2. Delete the table's row and drop the table: recreated, empty, -1.
    h.rows(&v1(), 80, vec![]).await;
    h.exec(&format!(
        "DELETE FROM {} WHERE tablename = 'contact'; DROP TABLE {};",
        h.state_table(),
        h.qualified("contact")
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert!(h.table_exists("contact").await);
    assert_eq!(h.state("contact").await.unwrap().0, -1);
    // Only the row deleted (table kept): the table is unknown, so it is rebuilt too.
    h.exec(&format!(
        "DELETE FROM {} WHERE tablename = 'contact'; INSERT INTO {} VALUES (5, N'x', 1);",
        h.state_table(),
        h.qualified("contact")
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert_eq!(h.count("contact").await, 0);

    // 3. Drop the whole state table: a full reset.
    let other = simple("person");
    h.schema_call(&[v1(), other.clone()]).await;
    h.rows(&other, 70, vec![ins(1, "p")]).await;
    h.exec(&format!("DROP TABLE {}", h.state_table())).await;
    assert_eq!(
        h.schema_call(&[v1(), other]).await,
        vec![("contact".into(), -1), ("person".into(), -1)]
    );
    assert_eq!(h.count("person").await, 0);
    assert!(h.state("person").await.is_some());
}

// ---- exactly once, poison, quarantine ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_the_same_envelope_twice_has_one_effect() {
    let h = Live::start("live_the_same_envelope_twice_has_one_effect").await;
    let t = simple("contact");
    let schema = h.envelope(Message::TableSchema {
        tables: vec![t.clone()],
    });
    h.engine.apply(&schema).await.unwrap();
    let first = h.envelope(rowdata(&t, 10, vec![ins(1, "v1")]));
    h.engine.apply(&first).await.unwrap();
    let second = h.envelope(rowdata(&t, 20, vec![upd(1, "v2"), ins(2, "other")]));
    h.engine.apply(&second).await.unwrap();
    assert_eq!(
        h.engine.apply(&first).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.engine.apply(&second).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("v2".into())), (2, Some("other".into()))]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 20);
    let again = h.engine.apply(&schema).await.unwrap();
    assert!(matches!(again, Applied::Duplicate { .. }));
    assert_eq!(lsns(again), vec![("contact".into(), 20)]);
    // A redelivered wipe does not wipe twice.
    let wipe = h.envelope(Message::Wipe {
        table: "contact".into(),
    });
    h.engine.apply(&wipe).await.unwrap();
    h.rows(&t, 30, vec![ins(3, "reloaded")]).await;
    assert!(matches!(
        h.engine.apply(&wipe).await.unwrap(),
        Applied::Duplicate { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(3, Some("reloaded".into()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_a_poison_batch_quarantines_its_table_until_a_wipe() {
    let h = Live::start("live_a_poison_batch_quarantines_its_table_until_a_wipe").await;
    let (contact, person) = (simple("contact"), simple("person"));
    h.schema_call(&[contact.clone(), person.clone()]).await;
    h.rows(&contact, 100, vec![ins(1, "fine")]).await;
    let epoch = h.state("contact").await.unwrap().1;
    // An operator's CHECK constraint the next batch breaks: error 547, permanent. The table is
    // still loading, so this also checks that a direct bulk load honours CHECK constraints.
    h.exec(&format!(
        "ALTER TABLE {} ADD CONSTRAINT no_bad CHECK (name <> N'bad')",
        h.qualified("contact")
    ))
    .await;
    let poison = h.envelope(Message::RowData {
        batches: vec![
            RowBatch {
                table: person.clone(),
                lsn: 0,
                rows: vec![ins(7, "same message, other table")],
            },
            RowBatch {
                table: contact.clone(),
                lsn: 0,
                rows: vec![ins(2, "bad")],
            },
        ],
    });
    let err = h.engine.apply(&poison).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(err.table(), Some("contact"));
    assert!(matches!(&err, ApplyError::Database { .. }), "{err}");
    assert_eq!(
        h.count("person").await,
        0,
        "the failed transaction left nothing behind"
    );

    let q = h.engine.quarantine(&poison, &err).await.unwrap();
    assert_eq!(
        q,
        Quarantine {
            table: Some("contact".into()),
            epoch
        }
    );
    let (lsn, state_epoch, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, state_epoch), (-1, epoch));
    assert!(reason.unwrap().contains("contact"));
    assert_eq!(
        h.count("person").await,
        1,
        "the message's other table was applied"
    );

    // Later batches of the quarantined table are parked; other tables still apply.
    assert_eq!(
        h.rows(&contact, 0, vec![upd(1, "parked")]).await,
        Applied::Parked
    );
    assert!(matches!(
        h.rows(&person, 300, vec![ins(8, "p")]).await,
        Applied::Done { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("fine".into()))]
    );
    let parked = h
        .query(
            &format!(
                "SELECT COUNT_BIG(*) FROM {}",
                h.qualified(&format!("{}_mirroring_parked", h.tenant.context_id))
            ),
            &[],
        )
        .await[0]
        .get::<i64, _>(0);
    assert_eq!(parked, Some(2), "the failed batch and the later one");

    // The next cycle asks for the table again; the wipe heals it.
    assert_eq!(
        h.schema_call(&[contact.clone(), person.clone()]).await,
        vec![("contact".into(), -1), ("person".into(), 300)]
    );
    h.exec(&format!(
        "ALTER TABLE {} DROP CONSTRAINT no_bad",
        h.qualified("contact")
    ))
    .await;
    h.wipe("contact").await;
    let (lsn, new_epoch, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, new_epoch, reason), (-1, epoch + 1, None));
    h.rows(&contact, 400, vec![ins(1, "reloaded")]).await;
    // Replaying the dead-lettered message now is stale: dropped without effect.
    assert_eq!(
        h.engine.apply(&poison).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("reloaded".into()))]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_a_replay_into_the_same_epoch_drains_the_parked_batches() {
    let h = Live::start("live_a_replay_into_the_same_epoch_drains_the_parked_batches").await;
    let t = simple("contact");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 10, vec![ins(1, "one")]).await;
    h.completed(&["contact"]).await; // the merge path this time
    h.exec(&format!(
        "ALTER TABLE {} ADD CONSTRAINT no_bad CHECK (name <> N'bad')",
        h.qualified("contact")
    ))
    .await;
    let failed = h.envelope(rowdata(&t, 0, vec![ins(2, "bad")]));
    let err = h.engine.apply(&failed).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    h.engine.quarantine(&failed, &err).await.unwrap();
    assert_eq!(h.rows(&t, 0, vec![upd(2, "later")]).await, Applied::Parked);
    assert_eq!(h.rows(&t, 50, vec![ins(3, "last")]).await, Applied::Parked);
    h.exec(&format!(
        "ALTER TABLE {} DROP CONSTRAINT no_bad",
        h.qualified("contact")
    ))
    .await;
    assert!(matches!(
        h.engine.apply(&failed).await.unwrap(),
        Applied::Done { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![
            (1, Some("one".into())),
            (2, Some("later".into())),
            (3, Some("last".into()))
        ]
    );
    let (lsn, _, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, reason), (50, None));
}

// ---- hooks and tenants ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_hooks_run_in_the_tenant_database() {
    let dir = std::env::temp_dir().join(format!("mirror-hooks-{}", Uuid::new_v4().simple()));
    let h = Live::start_with("live_hooks_run_in_the_tenant_database", |s| {
        s.hooks_dir = Some(dir.clone())
    })
    .await;
    std::fs::create_dir_all(&dir).unwrap();
    // Two batches, as operators write them for SQL Server's tools; unqualified names land in the
    // tenant database.
    std::fs::write(
        dir.join("after_table_created.sql"),
        "CREATE INDEX ix_hook_name ON {table} (name)\nGO\n\
         IF OBJECT_ID(N'dbo.hook_log') IS NULL CREATE TABLE dbo.hook_log (t nvarchar(400));\n\
         INSERT INTO dbo.hook_log VALUES (N'{table}');\n",
    )
    .unwrap();
    h.schema_call(&[simple("contact")]).await;
    let indexes = h
        .query(
            &format!(
                "SELECT COUNT(*) FROM [{db}].sys.indexes AS i INNER JOIN [{db}].sys.tables AS t \
                 ON t.object_id = i.object_id WHERE t.name = N'contact' AND i.name = N'ix_hook_name'",
                db = h.tenant.storage
            ),
            &[],
        )
        .await[0]
        .get::<i32, _>(0);
    assert_eq!(indexes, Some(1));
    let log = h
        .query(&format!("SELECT t FROM {}", h.qualified("hook_log")), &[])
        .await;
    assert_eq!(
        log[0].get::<&str, _>(0),
        Some(h.qualified("contact").as_str())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_tenants_apply_concurrently_in_their_own_databases() {
    let (a, b) = tokio::join!(
        Live::start("live_tenants_apply_concurrently_in_their_own_databases"),
        Live::start("live_tenants_apply_concurrently_in_their_own_databases (second tenant)")
    );
    let t = simple("contact");
    let (la, lb) = tokio::join!(
        a.schema_call(std::slice::from_ref(&t)),
        b.schema_call(std::slice::from_ref(&t))
    );
    assert_eq!((la[0].1, lb[0].1), (-1, -1));
    tokio::join!(
        a.rows(&t, 3, vec![ins(1, "a")]),
        b.rows(&t, 4, vec![ins(1, "b")])
    );
    assert_eq!(
        a.key_text("contact", "name").await,
        vec![(1, Some("a".into()))]
    );
    assert_eq!(
        b.key_text("contact", "name").await,
        vec![(1, Some("b".into()))]
    );
    assert!(a.engine.ping().await.is_ok());
}
