//! TableSchema against the real PostgreSQL: evolution, absent tables, force-resync procedures, hooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use engine_support::*;
use mirror_applier::error::ApplyError;
use mirror_common::value::Value;
use mirror_common::wire::{Message, Operation, Row};

fn v1() -> mirror_common::schema::TableSchema {
    table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(20)", false, "default (N'')"),
            ("n", "smallint", true, ""),
        ],
    )
}

async fn loaded(h: &Harness) {
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
async fn compatible_changes_alter_in_place_and_keep_the_lsn() {
    let h = Harness::new().await;
    loaded(&h).await;
    let v2 = table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(max)", true, "default (N'')"), // widened, nullable now
            ("n", "int", true, ""),                           // widened
            ("added", "datetime", true, ""),                  // new
        ],
    );
    assert_eq!(
        h.schema_call(std::slice::from_ref(&v2)).await,
        vec![("contact".into(), 50)]
    );
    assert_eq!(
        h.columns("contact").await,
        vec![
            ("contact_id".into(), "integer".into(), false),
            ("name".into(), "text".into(), true),
            ("n".into(), "integer".into(), true),
            ("added".into(), "timestamp without time zone".into(), true),
        ]
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("Ada".into()))]
    );
    // Batches with the new TableInfo apply; batches with the old one no longer match.
    h.rows(
        &v2,
        60,
        vec![Row {
            op: Operation::Update,
            values: vec![Value::Int(1), Value::Null, Value::Int(70_000), Value::Null],
        }],
    )
    .await;
    assert_eq!(
        h.key_text("contact", "n").await,
        vec![(1, Some("70000".into()))]
    );
    let err = h
        .engine
        .apply(&h.envelope(rowdata(&v1(), 0, vec![])))
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::SchemaMismatch { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_changes_rebuild_the_table_and_answer_minus_one() {
    let h = Harness::new().await;
    loaded(&h).await;
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
            ("contact_id".into(), "integer".into(), false),
            ("name".into(), "character varying(10)".into(), false),
        ]
    );
    let (lsn, epoch, _) = h.state("contact").await.unwrap();
    assert_eq!((lsn, epoch), (-1, epoch_before + 1));
    // Same schema again: unchanged, still -1 until reloaded.
    assert_eq!(
        h.schema_call(std::slice::from_ref(&narrowed)).await,
        vec![("contact".into(), -1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_tables_are_dropped_by_default() {
    let h = Harness::new().await;
    let (a, b) = (simple("keep"), simple("gone"));
    h.schema_call(&[a.clone(), b.clone()]).await;
    h.rows(&b, 5, vec![ins(1, "x")]).await;
    assert_eq!(
        h.schema_call(std::slice::from_ref(&a)).await,
        vec![("keep".into(), -1)]
    );
    assert!(!h.table_exists("gone").await);
    assert!(h.state("gone").await.is_none());
    // Coming back later, it starts over.
    assert_eq!(
        h.schema_call(&[a, b]).await,
        vec![("keep".into(), -1), ("gone".into(), -1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_tables_are_kept_when_configured() {
    let h = Harness::with(|s| s.drop_absent_tables = false).await;
    let (a, b) = (simple("keep"), simple("skipped"));
    h.schema_call(&[a.clone(), b.clone()]).await;
    h.rows(&b, 5, vec![ins(1, "x")]).await;
    h.schema_call(std::slice::from_ref(&a)).await;
    assert!(h.table_exists("skipped").await);
    assert_eq!(h.count("skipped").await, 1);
    assert_eq!(
        h.schema_call(&[a, b]).await,
        vec![("keep".into(), -1), ("skipped".into(), 5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_resync_by_setting_the_lsn_to_minus_one() {
    let h = Harness::new().await;
    loaded(&h).await;
    h.exec(&format!(
        "update {} set lsn = -1 where tablename = 'contact'",
        h.state_table()
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert_eq!(
        h.count("contact").await,
        1,
        "the rows stay until SuperOffice wipes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_resync_by_deleting_the_row_and_dropping_the_table() {
    let h = Harness::new().await;
    loaded(&h).await;
    h.exec(&format!(
        "delete from {} where tablename = 'contact'; drop table {};",
        h.state_table(),
        h.qualified("contact")
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert!(h.table_exists("contact").await);
    assert_eq!(h.state("contact").await.unwrap().0, -1);
    // Only the row deleted (table kept): the table is unknown, so it is rebuilt too.
    h.rows(&v1(), 80, vec![]).await;
    h.exec(&format!(
        "delete from {} where tablename = 'contact'",
        h.state_table()
    ))
    .await;
    h.exec(&format!(
        "insert into {} values (5, 'x', 1)",
        h.qualified("contact")
    ))
    .await;
    assert_eq!(h.schema_call(&[v1()]).await, vec![("contact".into(), -1)]);
    assert_eq!(h.count("contact").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_resync_by_dropping_the_whole_state_table() {
    let h = Harness::new().await;
    loaded(&h).await;
    let other = simple("person");
    h.schema_call(&[v1(), other.clone()]).await;
    h.rows(&other, 70, vec![ins(1, "p")]).await;
    h.exec(&format!("drop table {}", h.state_table())).await;
    assert_eq!(
        h.schema_call(&[v1(), other]).await,
        vec![("contact".into(), -1), ("person".into(), -1)]
    );
    assert_eq!(h.count("contact").await, 0);
    assert_eq!(h.count("person").await, 0);
    assert!(h.state("person").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_or_reserved_names_are_permanent_errors_naming_the_table() {
    let h = Harness::new().await;
    let long = "t".repeat(64);
    let err = h
        .engine
        .apply(&h.envelope(Message::TableSchema {
            tables: vec![simple(&long)],
        }))
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::IdentifierTooLong { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(err.table(), Some(long.as_str()));
    let reserved = format!("{}_mirroring_x", h.tenant);
    let err = h
        .engine
        .apply(&h.envelope(Message::TableSchema {
            tables: vec![simple(&reserved)],
        }))
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::ReservedName { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_after_creation_and_cycles_and_failures_do_not_fail_the_message() {
    let dir = hooks_dir();
    let h = Harness::with(|s| s.hooks_dir = Some(dir.clone())).await;
    std::fs::create_dir_all(dir.join(&h.tenant)).unwrap();
    // Global hook: an index on every created table. Per-tenant cycle hook overrides the global.
    std::fs::write(
        dir.join("after_table_created.sql"),
        "CREATE INDEX ON {table} (name); CREATE TABLE IF NOT EXISTS hook_log (t text); \
         INSERT INTO hook_log VALUES ('{table}');",
    )
    .unwrap();
    std::fs::write(dir.join("after_cycle.sql"), "SELECT 1/0;").unwrap();
    std::fs::write(
        dir.join(&h.tenant).join("after_cycle.sql"),
        "INSERT INTO hook_log VALUES ('cycle');",
    )
    .unwrap();

    h.schema_call(&[simple("contact")]).await;
    let indexes = h
        .query(&format!(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = '{}' AND tablename = 'contact'",
            h.schema
        ))
        .await[0]
        .get::<_, i64>(0);
    assert_eq!(indexes, 2, "primary key + the hook's index");
    h.completed(&["contact"]).await;
    let log: Vec<String> = h
        .query(&format!(
            "SELECT t FROM {} ORDER BY 1",
            h.qualified("hook_log")
        ))
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        log,
        vec![
            "\"".to_owned() + &h.schema + "\".\"contact\"",
            "cycle".into()
        ]
    );

    // A failing hook is logged; the message is applied regardless.
    std::fs::write(dir.join("after_table_created.sql"), "THIS IS NOT SQL;").unwrap();
    let lsns = h.schema_call(&[simple("contact"), simple("person")]).await;
    assert_eq!(lsns[1], ("person".into(), -1));
    assert!(h.table_exists("person").await);
    std::fs::remove_dir_all(&dir).unwrap();
}
