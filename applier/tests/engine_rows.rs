//! Row changes against the real PostgreSQL: upserts, deletes, collapse, LSN rules, load paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use engine_support::*;
use mirror_applier::engine::Applied;
use mirror_applier::error::ApplyError;
use mirror_common::wire::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_update_delete_and_their_missing_row_cases() {
    let h = Harness::new().await;
    let t = simple("contact");
    assert_eq!(
        h.schema_call(std::slice::from_ref(&t)).await,
        vec![("contact".into(), -1)]
    );
    assert!(matches!(
        h.rows(&t, 0, vec![ins(1, "a"), ins(2, "b"), ins(3, "c")])
            .await,
        Applied::Done { reply: None }
    ));
    h.completed(&["contact"]).await; // ends the loading phase: merges from here on
    h.rows(
        &t,
        100,
        vec![
            upd(1, "a2"),  // update of an existing row
            upd(7, "new"), // update of a missing row: upsert
            ins(2, "b2"),  // insert of an existing row: upsert
            del(3),        // delete
            del(99),       // delete of a missing row: no error
        ],
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
    let n: Vec<i32> = h
        .query(&format!(
            "SELECT n FROM {} ORDER BY 1",
            h.qualified("contact")
        ))
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(n, vec![10, 20, 70]);
    assert_eq!(h.state("contact").await.unwrap().0, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_collapses_insert_update_delete_of_one_key() {
    let h = Harness::new().await;
    let t = simple("person");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 0, vec![ins(5, "keep")]).await;
    h.rows(
        &t,
        0,
        vec![
            ins(1, "x"),
            upd(1, "y"),
            del(1),
            del(5),
            ins(5, "back"),
            upd(5, "final"),
        ],
    )
    .await;
    assert_eq!(
        h.key_text("person", "name").await,
        vec![(5, Some("final".into()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsn_is_stored_only_when_positive_and_greater() {
    let h = Harness::new().await;
    let t = simple("sale");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 0, vec![ins(1, "a")]).await;
    assert_eq!(h.state("sale").await.unwrap().0, -1);
    h.rows(&t, 500, vec![ins(2, "b")]).await;
    assert_eq!(h.state("sale").await.unwrap().0, 500);
    h.rows(&t, 400, vec![ins(3, "c")]).await;
    h.rows(&t, -1, vec![ins(4, "d")]).await;
    assert_eq!(h.state("sale").await.unwrap().0, 500);
    assert_eq!(h.count("sale").await, 4);
    // The next TableSchema answers what is stored.
    assert_eq!(
        h.schema_call(std::slice::from_ref(&t)).await,
        vec![("sale".into(), 500)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_bulk_loads_and_falls_back_to_merging_on_existing_keys() {
    let h = Harness::new().await;
    let t = simple("doc");
    h.schema_call(std::slice::from_ref(&t)).await;
    // Loading phase (just created): straight COPY, batch after batch.
    h.rows(&t, 0, (1..=500).map(|k| ins(k, "first")).collect())
        .await;
    h.rows(&t, 0, (501..=1000).map(|k| ins(k, "second")).collect())
        .await;
    // Still loading, but a key that exists: the direct load is undone and merged instead.
    h.rows(&t, 0, vec![ins(1, "merged"), ins(1001, "new")])
        .await;
    assert_eq!(h.count("doc").await, 1001);
    let names = h.key_text("doc", "name").await;
    assert_eq!(names[0], (1, Some("merged".into())));
    assert_eq!(names[1000], (1001, Some("new".into())));
    // After a wipe the table loads directly again.
    h.wipe("doc").await;
    assert_eq!(h.count("doc").await, 0);
    h.rows(&t, 9, (1..=3).map(|k| ins(k, "again")).collect())
        .await;
    assert_eq!(h.count("doc").await, 3);
    assert_eq!(h.state("doc").await.unwrap().0, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_for_unknown_tables_or_other_schemas_fail_permanently() {
    let h = Harness::new().await;
    let t = simple("contact");
    let env = h.envelope(rowdata(&t, 1, vec![ins(1, "a")]));
    let err = h.engine.apply(&env).await.unwrap_err();
    assert!(matches!(err, ApplyError::UnknownTable { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(err.table(), Some("contact"));

    h.schema_call(std::slice::from_ref(&t)).await;
    let other = table(
        "contact",
        &[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(60)", true, ""),
        ],
    );
    let env = h.envelope(rowdata(&other, 1, vec![]));
    let err = h.engine.apply(&env).await.unwrap_err();
    assert!(matches!(err, ApplyError::SchemaMismatch { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(err.table(), Some("contact"));
    // Nothing was recorded: the same message fails the same way again.
    assert!(h.engine.apply(&env).await.is_err());

    let err = h
        .engine
        .apply(&h.envelope(Message::Wipe {
            table: "nothing".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.table(), Some("nothing"));
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_apply_concurrently_on_separate_schemas() {
    let (a, b) = tokio::join!(Harness::new(), Harness::new());
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

/// The state row and the applied id are written together with the commit, after the rows: when
/// such a write fails, the message's rows must not be committed either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_state_write_commits_nothing_of_the_message() {
    let h = Harness::new().await;
    let t = simple("sale");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 10, vec![ins(1, "kept")]).await;
    h.exec(&format!(
        "ALTER TABLE {} ADD CONSTRAINT lsn_below_50 CHECK (lsn < 50)",
        h.state_table()
    ))
    .await;
    for load in ["direct (loading)", "merge (after a cycle)"] {
        let env = h.envelope(rowdata(&t, 60, vec![ins(2, "lost"), del(1)]));
        let err = h.engine.apply(&env).await.unwrap_err();
        assert!(err.to_string().contains("lsn_below_50"), "{load}: {err}");
        assert_eq!(
            h.key_text("sale", "name").await,
            vec![(1, Some("kept".into()))]
        );
        assert_eq!(h.state("sale").await.unwrap().0, 10, "{load}");
        // Not recorded as applied: once the cause is gone, the same message applies.
        h.exec(&format!(
            "ALTER TABLE {} DROP CONSTRAINT lsn_below_50",
            h.state_table()
        ))
        .await;
        h.engine.apply(&env).await.unwrap();
        assert_eq!(
            h.key_text("sale", "name").await,
            vec![(2, Some("lost".into()))]
        );
        // Back to the start for the second round, now merging.
        h.rows(&t, 0, vec![ins(1, "kept"), del(2)]).await;
        h.completed(&["sale"]).await;
        h.exec(&format!(
            "UPDATE {} SET lsn = 10; ALTER TABLE {0} ADD CONSTRAINT lsn_below_50 CHECK (lsn < 50)",
            h.state_table()
        ))
        .await;
    }
}
