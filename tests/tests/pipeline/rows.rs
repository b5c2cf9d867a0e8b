//! Row operations as the Mirroring Task sends them: final states by key, applied as upserts and
//! deletes, whatever the mirror held before; and a call sent twice has one effect.

use mirror_tests::values::{batch, delete_row, simple_row, simple_table};
use mirror_tests::{Mirror, Pipeline};

const TABLE: &str = "contact";

/// `(key, name, n)` of every row, by key.
async fn contents(mirror: &Mirror) -> Vec<(i32, Option<String>, Option<i32>)> {
    let sql = format!(
        "SELECT contact_id, name, n FROM {} ORDER BY 1",
        mirror.qualified(TABLE)
    );
    mirror
        .query(&sql)
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn expect(rows: &[(i32, &str)]) -> Vec<(i32, Option<String>, Option<i32>)> {
    rows.iter()
        .map(|(k, name)| (*k, Some((*name).to_owned()), Some(k * 10)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_updates_deletes_and_upserts_of_missing_rows_apply_by_key() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let schema = simple_table(TABLE);
    let tables = std::slice::from_ref(&schema);

    assert_eq!(tenant.table_schema(tables).await[TABLE], -1);
    tenant.wipe(TABLE).await;
    let initial = (1..=5)
        .map(|k| simple_row("I", k, &format!("row {k}")))
        .collect();
    tenant.row_data(vec![batch(&schema, 10, initial)]).await;
    tenant.completed(&[TABLE]).await;
    assert_eq!(tenant.table_schema(tables).await[TABLE], 10);
    let mirror = tenant.mirror().await;
    assert_eq!(
        contents(&mirror).await,
        expect(&[
            (1, "row 1"),
            (2, "row 2"),
            (3, "row 3"),
            (4, "row 4"),
            (5, "row 5")
        ])
    );

    // The next cycle's changes: an update, a delete, an update of a row the mirror does not have
    // (upsert), a delete of a row it does not have (no error), an insert of a row it has.
    tenant
        .row_data(vec![batch(
            &schema,
            20,
            vec![
                simple_row("U", 2, "row 2 updated"),
                delete_row(3),
                simple_row("U", 6, "upserted"),
                delete_row(99),
                simple_row("I", 1, "row 1 again"),
            ],
        )])
        .await;
    tenant.completed(&[TABLE]).await;
    assert_eq!(tenant.table_schema(tables).await[TABLE], 20);
    assert_eq!(
        contents(&mirror).await,
        expect(&[
            (1, "row 1 again"),
            (2, "row 2 updated"),
            (4, "row 4"),
            (5, "row 5"),
            (6, "upserted")
        ])
    );
    // A batch whose LSN is not meaningful (0) or older than the mirror's does not move it back.
    tenant
        .row_data(vec![batch(
            &schema,
            0,
            vec![simple_row("U", 4, "row 4 v2")],
        )])
        .await;
    tenant
        .row_data(vec![batch(
            &schema,
            15,
            vec![simple_row("U", 5, "row 5 v2")],
        )])
        .await;
    assert_eq!(tenant.table_schema(tables).await[TABLE], 20);
    assert_eq!(
        contents(&mirror).await,
        expect(&[
            (1, "row 1 again"),
            (2, "row 2 updated"),
            (4, "row 4 v2"),
            (5, "row 5 v2"),
            (6, "upserted")
        ])
    );

    let queues = pipeline.queues().await;
    assert_eq!(queues.dead_letter_count().await, 0, "nothing was refused");
    queues.close().await;
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_row_data_call_sent_twice_leaves_one_row_state() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let schema = simple_table(TABLE);
    let tables = std::slice::from_ref(&schema);
    let done = r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#;

    tenant.table_schema(tables).await;
    tenant.wipe(TABLE).await;
    let initial = (1..=3)
        .map(|k| simple_row("I", k, &format!("row {k}")))
        .collect();
    tenant.row_data(vec![batch(&schema, 100, initial)]).await;
    assert_eq!(tenant.table_schema(tables).await[TABLE], 100);
    assert_eq!(pipeline.metric(done), 1.0);

    // A resend: the Mirroring Task did not get the first answer and sends the same changes again,
    // as a second message. Both are applied; the mirror ends in the one state they describe.
    let changes = batch(
        &schema,
        110,
        vec![
            simple_row("I", 4, "inserted"),
            simple_row("U", 2, "updated"),
            delete_row(3),
        ],
    );
    tenant.row_data(vec![changes.clone()]).await;
    tenant.row_data(vec![changes]).await;
    assert_eq!(tenant.table_schema(tables).await[TABLE], 110);
    assert_eq!(pipeline.metric(done), 3.0, "both messages were applied");

    let mirror = tenant.mirror().await;
    assert_eq!(
        contents(&mirror).await,
        expect(&[(1, "row 1"), (2, "updated"), (4, "inserted")])
    );
    let sql = format!(
        "SELECT count(*), count(DISTINCT contact_id) FROM {}",
        mirror.qualified(TABLE)
    );
    let row = &mirror.query(&sql).await[0];
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (3, 3));
    pipeline.stop().await;
}
