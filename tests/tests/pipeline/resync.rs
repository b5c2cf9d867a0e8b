//! SuperOffice's documented force-resync procedures, done by an operator in SQL on the mirror,
//! make the next TableSchema answer -1 for exactly the tables concerned.

use std::collections::BTreeMap;

use mirror_tests::values::{batch, simple_row, simple_table};
use mirror_tests::{Pipeline, Tenant};

const TABLES: [&str; 3] = ["contact", "person", "sale"];

fn lsns(entries: [(&str, i64); 3]) -> BTreeMap<String, i64> {
    entries.iter().map(|(t, l)| ((*t).to_owned(), *l)).collect()
}

/// What the Mirroring Task does for a table answered -1: Wipe, then all its rows.
async fn reload(tenant: &Tenant, table: &str, lsn: i64, rows: i32) {
    let schema = simple_table(table);
    tenant.wipe(table).await;
    let rows = (1..=rows).map(|k| simple_row("I", k, table)).collect();
    tenant.row_data(vec![batch(&schema, lsn, rows)]).await;
    tenant.completed(&[table]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_force_resync_procedure_makes_the_next_table_schema_ask_for_the_right_tables() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let schema: Vec<_> = TABLES.iter().map(|t| simple_table(t)).collect();
    let mirror = tenant.mirror().await;
    let state = mirror.state_table();

    tenant.table_schema(&schema).await;
    reload(&tenant, "contact", 11, 3).await;
    reload(&tenant, "person", 12, 4).await;
    reload(&tenant, "sale", 13, 5).await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", 11), ("person", 12), ("sale", 13)])
    );

    // 1. Set one table's LSN to -1: that table is resent.
    mirror
        .exec(&format!(
            "UPDATE {state} SET lsn = -1 WHERE tablename = 'contact'"
        ))
        .await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", -1), ("person", 12), ("sale", 13)])
    );
    reload(&tenant, "contact", 21, 3).await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", 21), ("person", 12), ("sale", 13)])
    );

    // 2. Delete a table's state row and drop the table: it is recreated and resent.
    mirror
        .exec(&format!(
            "DELETE FROM {state} WHERE tablename = 'person'; DROP TABLE {}",
            mirror.qualified("person")
        ))
        .await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", 21), ("person", -1), ("sale", 13)])
    );
    assert!(mirror.table_exists("person").await, "recreated");
    assert_eq!(mirror.count("person").await, 0);
    assert_eq!(mirror.count("sale").await, 5, "other tables untouched");
    reload(&tenant, "person", 22, 4).await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", 21), ("person", 22), ("sale", 13)])
    );

    // 3. Drop the whole state table: a full reset.
    mirror.exec(&format!("DROP TABLE {state}")).await;
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", -1), ("person", -1), ("sale", -1)])
    );
    assert!(
        mirror.table_exists(&mirror.state_table_name()).await,
        "the state table is back"
    );
    for (n, table) in TABLES.iter().enumerate() {
        reload(&tenant, table, 30 + n as i64, 2).await;
    }
    assert_eq!(
        tenant.table_schema(&schema).await,
        lsns([("contact", 30), ("person", 31), ("sale", 32)])
    );
    for table in TABLES {
        assert_eq!(mirror.count(table).await, 2, "{table} reloaded");
    }
    pipeline.stop().await;
}
