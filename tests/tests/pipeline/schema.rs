//! Schema evolution through TableSchema calls, Wipe, and tables that leave the schema.

use std::collections::BTreeMap;

use mirror_common::schema::RawTableSchema;
use mirror_tests::values::{batch, int, row, simple_row, simple_table, table};
use mirror_tests::{Mirror, Pipeline, Tenant};

const TABLE: &str = "person";

/// The four versions of `person` a tenant goes through.
fn version(n: u8) -> RawTableSchema {
    let mut columns = vec![("person_id", "int", false)];
    columns.push((
        "name",
        if n >= 3 {
            "nvarchar(200)"
        } else {
            "nvarchar(20)"
        },
        true,
    ));
    columns.push(("n", if n >= 4 { "nvarchar(10)" } else { "int" }, true));
    if n >= 2 {
        columns.push(("x_new", "nvarchar(10)", true));
    }
    table(TABLE, &columns)
}

fn lsns(entries: &[(&str, i64)]) -> BTreeMap<String, i64> {
    entries.iter().map(|(t, l)| ((*t).to_owned(), *l)).collect()
}

/// Loads `rows` into a table the way a cycle does: Wipe, the rows, completion.
async fn load(
    tenant: &Tenant,
    schema: &RawTableSchema,
    lsn: i64,
    rows: Vec<mirror_common::soap::RawRow<'static>>,
) {
    tenant.wipe(&schema.name).await;
    tenant.row_data(vec![batch(schema, lsn, rows)]).await;
    tenant.completed(&[&schema.name]).await;
}

fn column_types(columns: Vec<(String, String, bool)>) -> Vec<(String, String)> {
    columns.into_iter().map(|(n, t, _)| (n, t)).collect()
}

fn named(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_are_added_and_widened_in_place_and_an_incompatible_change_rebuilds_the_table() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let other = simple_table("contact");
    let mirror: Mirror = tenant.mirror().await;

    // Version 1, loaded, beside another table that none of this concerns.
    assert_eq!(
        tenant.table_schema(&[version(1), other.clone()]).await,
        lsns(&[(TABLE, -1), ("contact", -1)])
    );
    let v1_row = |k: i32| row("I", vec![Some(int(k)), Some(format!("p{k}")), Some(int(k))]);
    load(&tenant, &version(1), 100, (1..=3).map(v1_row).collect()).await;
    load(&tenant, &other, 50, vec![simple_row("I", 1, "kept")]).await;
    assert_eq!(
        tenant.table_schema(&[version(1), other.clone()]).await,
        lsns(&[(TABLE, 100), ("contact", 50)])
    );

    // Version 2 adds a column: the table keeps its rows and its LSN.
    assert_eq!(
        tenant.table_schema(&[version(2), other.clone()]).await,
        lsns(&[(TABLE, 100), ("contact", 50)])
    );
    assert_eq!(
        column_types(mirror.columns(TABLE).await),
        named(&[
            ("person_id", "integer"),
            ("name", "character varying(20)"),
            ("n", "integer"),
            ("x_new", "character varying(10)"),
        ])
    );
    assert_eq!(
        mirror.rows(TABLE).await,
        vec![
            vec![Some("1".into()), Some("p1".into()), Some("1".into()), None],
            vec![Some("2".into()), Some("p2".into()), Some("2".into()), None],
            vec![Some("3".into()), Some("p3".into()), Some("3".into()), None],
        ]
    );
    tenant
        .row_data(vec![batch(
            &version(2),
            110,
            vec![row(
                "U",
                vec![
                    Some(int(1)),
                    Some("p1".into()),
                    Some(int(1)),
                    Some("new".into()),
                ],
            )],
        )])
        .await;

    // Version 3 widens `name`: still in place; a value only the wider column holds now fits.
    assert_eq!(
        tenant.table_schema(&[version(3), other.clone()]).await,
        lsns(&[(TABLE, 110), ("contact", 50)])
    );
    assert_eq!(
        mirror.columns(TABLE).await[1],
        ("name".to_owned(), "character varying(200)".to_owned(), true)
    );
    let wide = "w".repeat(150);
    tenant
        .row_data(vec![batch(
            &version(3),
            120,
            vec![row(
                "U",
                vec![Some(int(2)), Some(wide.clone()), Some(int(2)), None],
            )],
        )])
        .await;
    assert_eq!(
        tenant.table_schema(&[version(3), other.clone()]).await,
        lsns(&[(TABLE, 120), ("contact", 50)])
    );
    assert_eq!(
        mirror.rows(TABLE).await,
        vec![
            vec![
                Some("1".into()),
                Some("p1".into()),
                Some("1".into()),
                Some("new".into())
            ],
            vec![Some("2".into()), Some(wide), Some("2".into()), None],
            vec![Some("3".into()), Some("p3".into()), Some("3".into()), None],
        ]
    );

    // Version 4 turns `n` from int into text: no way to convert in place. The table is rebuilt,
    // empty, and the answer asks for everything (-1); the other table is untouched.
    assert_eq!(
        tenant.table_schema(&[version(4), other.clone()]).await,
        lsns(&[(TABLE, -1), ("contact", 50)])
    );
    assert_eq!(
        column_types(mirror.columns(TABLE).await),
        named(&[
            ("person_id", "integer"),
            ("name", "character varying(200)"),
            ("n", "character varying(10)"),
            ("x_new", "character varying(10)"),
        ])
    );
    assert_eq!(mirror.count(TABLE).await, 0);
    assert_eq!(mirror.count("contact").await, 1);
    let v4_row = |k: i32| {
        row(
            "I",
            vec![
                Some(int(k)),
                Some(format!("p{k}")),
                Some(format!("t{k}")),
                None,
            ],
        )
    };
    load(&tenant, &version(4), 130, (1..=2).map(v4_row).collect()).await;
    assert_eq!(
        tenant.table_schema(&[version(4), other.clone()]).await,
        lsns(&[(TABLE, 130), ("contact", 50)])
    );
    assert_eq!(
        mirror.rows(TABLE).await,
        vec![
            vec![Some("1".into()), Some("p1".into()), Some("t1".into()), None],
            vec![Some("2".into()), Some("p2".into()), Some("t2".into()), None],
        ]
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wipe_empties_a_table_and_a_table_absent_from_table_schema_is_dropped() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let (a, b) = (simple_table("appointment"), simple_table("document"));
    let both = [a.clone(), b.clone()];
    let mirror = tenant.mirror().await;

    tenant.table_schema(&both).await;
    load(
        &tenant,
        &a,
        5,
        (1..=3).map(|k| simple_row("I", k, "a")).collect(),
    )
    .await;
    load(
        &tenant,
        &b,
        7,
        (1..=2).map(|k| simple_row("I", k, "b")).collect(),
    )
    .await;
    assert_eq!(
        tenant.table_schema(&both).await,
        lsns(&[("appointment", 5), ("document", 7)])
    );

    // Wipe empties the table and forgets its LSN until it is reloaded.
    tenant.wipe("appointment").await;
    assert_eq!(
        tenant.table_schema(&both).await,
        lsns(&[("appointment", -1), ("document", 7)])
    );
    assert_eq!(mirror.count("appointment").await, 0);
    assert_eq!(mirror.count("document").await, 2);
    tenant
        .row_data(vec![batch(&a, 9, vec![simple_row("I", 7, "reloaded")])])
        .await;
    tenant.completed(&["appointment"]).await;
    assert_eq!(
        tenant.table_schema(&both).await,
        lsns(&[("appointment", 9), ("document", 7)])
    );
    assert_eq!(mirror.count("appointment").await, 1);

    // `document` leaves the schema (dropped at the source, or skipped by the tenant).
    assert_eq!(
        tenant.table_schema(std::slice::from_ref(&a)).await,
        lsns(&[("appointment", 9)])
    );
    assert!(!mirror.table_exists("document").await);
    assert!(mirror.table_exists("appointment").await);
    assert_eq!(mirror.tables().await, vec!["appointment".to_owned()]);
    assert!(!mirror.lsns().await.contains_key("document"));

    // When it comes back it is new: created empty, and everything is asked for.
    assert_eq!(
        tenant.table_schema(&both).await,
        lsns(&[("appointment", 9), ("document", -1)])
    );
    assert!(mirror.table_exists("document").await);
    assert_eq!(mirror.count("document").await, 0);
    pipeline.stop().await;
}
