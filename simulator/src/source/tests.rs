use mirror_common::schema::{ColumnType, RawColumn, RawTableSchema};
use mirror_common::value::Value;
use mirror_common::wire::Operation;

use super::*;

fn col(name: &str, ty: &str, nullable: bool) -> RawColumn {
    RawColumn {
        name: name.into(),
        ty: ty.into(),
        nullable,
        default: String::new(),
    }
}

/// Two small tables; with 100 rows, `contact` gets 10/11 of them, `y_small` 1/11.
fn small(tenant: &str, seed: u64, rows: u64) -> Source {
    let tables = vec![
        RawTableSchema {
            name: "contact".into(),
            columns: vec![
                col("contact_id", "int", false),
                col("name", "nvarchar(30)", false),
                col("updated", "datetime", true),
                col("amount", "float", true),
            ],
        },
        RawTableSchema {
            name: "y_small".into(),
            columns: vec![
                col("id", "int", false),
                col("x_text", "nvarchar(max)", true),
            ],
        },
    ];
    Source::with_tables(tenant, seed, rows, &tables).unwrap()
}

fn ops(source: &Source, table: &str, since: u64) -> Vec<(i32, Operation)> {
    source
        .table(table)
        .unwrap()
        .changes_since(since)
        .map(|c| (c.key, c.op))
        .collect()
}

#[test]
fn same_seed_same_data_other_seed_or_tenant_other_data() {
    let a = small("Cust1", 7, 100);
    let b = small("Cust1", 7, 100);
    let c = small("Cust1", 8, 100);
    let d = small("Cust2", 7, 100);
    let rows = |s: &Source| -> Vec<Vec<Value>> {
        let t = s.table("contact").unwrap();
        t.live_keys().map(|k| t.row(k).unwrap()).collect()
    };
    assert_eq!(rows(&a).len(), 90);
    assert_eq!(rows(&a), rows(&b));
    assert_ne!(rows(&a), rows(&c));
    assert_ne!(rows(&a), rows(&d));
    assert_eq!(rows(&a)[4][0], Value::Int(5), "column 0 is the key");
}

#[test]
fn rows_are_spread_by_weight_over_the_real_tables() {
    let s = Source::new("Cust1", 1, 10_000).unwrap();
    assert!(s.tables().len() >= 10);
    let total = s.live_rows();
    assert!((9_900..=10_000).contains(&total), "{total}");
    let appointments = s.table("appointment").unwrap().live_rows();
    let custom = s.table("y_kostenstelle").unwrap().live_rows();
    assert!(appointments > 10 * custom, "{appointments} vs {custom}");
    // Every generated row of every table survives the receiver's own validation.
    for t in s.tables() {
        let schema = t.schema().validate().unwrap();
        for key in t.live_keys().take(50) {
            let row = t.row(key).unwrap();
            assert_eq!(row.len(), schema.columns.len());
            for (v, c) in row.iter().zip(&schema.columns) {
                let wire = v.encode();
                let back = mirror_common::value::decode(c.ty, c.nullable, wire.as_deref());
                assert_eq!(back.as_ref(), Ok(v), "{}.{}", t.name(), c.name);
            }
        }
    }
}

#[test]
fn change_tracking_reports_the_net_operation_per_key() {
    let mut s = small("Cust1", 1, 100);
    let v0 = s.current_version();
    assert!(v0 >= BASE_VERSION);
    assert_eq!(
        s.min_valid_version(),
        v0,
        "no history before the initial load"
    );
    assert!(ops(&s, "contact", v0).is_empty());
    assert_eq!(
        ops(&s, "contact", 0).len(),
        90,
        "everything is newer than version 0"
    );
    assert!(
        ops(&s, "contact", 0)
            .iter()
            .all(|(_, op)| *op == Operation::Insert)
    );

    assert!(s.update("contact", 3).unwrap());
    let inserted = s.insert("contact").unwrap();
    assert_eq!(inserted, 91);
    assert!(s.update("contact", inserted).unwrap()); // insert then update: still I
    assert!(s.delete("contact", 5).unwrap());
    assert!(s.update("contact", 7).unwrap());
    assert!(s.delete("contact", 7).unwrap()); // update then delete: D
    let gone = s.insert("contact").unwrap();
    assert!(s.delete("contact", gone).unwrap()); // insert then delete: D (harmless)
    assert!(
        !s.update("contact", 5).unwrap(),
        "a deleted row cannot be updated"
    );
    assert!(!s.delete("contact", 5).unwrap());
    assert!(!s.update("contact", 10_000).unwrap());

    assert_eq!(s.current_version(), v0 + 8, "one version per change");
    assert_eq!(
        ops(&s, "contact", v0),
        vec![
            (3, Operation::Update),
            (5, Operation::Delete),
            (7, Operation::Delete),
            (91, Operation::Insert),
            (92, Operation::Delete),
        ]
    );
    // Asking from a later version only shows what changed after it.
    assert_eq!(
        ops(&s, "contact", v0 + 2),
        vec![
            (5, Operation::Delete),
            (7, Operation::Delete),
            (91, Operation::Update),
            (92, Operation::Delete),
        ]
    );
    assert!(ops(&s, "y_small", v0).is_empty());
    assert_eq!(s.table("contact").unwrap().live_rows(), 90 - 2 + 1);
    let keys: Vec<i32> = s.table("contact").unwrap().live_keys().collect();
    assert!(!keys.contains(&5) && !keys.contains(&7) && keys.contains(&91));
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys ascend");
    let everything: Vec<_> = s.table("contact").unwrap().everything().collect();
    assert_eq!(everything.len(), keys.len());
    assert!(everything.iter().all(|c| c.op == Operation::Insert));
}

#[test]
fn an_update_changes_the_row_and_nothing_else() {
    let mut s = small("Cust1", 1, 100);
    let before = s.table("contact").unwrap().row(3).unwrap();
    let neighbour = s.table("contact").unwrap().row(4).unwrap();
    s.update("contact", 3).unwrap();
    let after = s.table("contact").unwrap().row(3).unwrap();
    assert_ne!(before, after);
    assert_eq!(after[0], Value::Int(3));
    assert_eq!(s.table("contact").unwrap().row(4).unwrap(), neighbour);
    s.delete("contact", 4).unwrap();
    assert_eq!(s.table("contact").unwrap().row(4), None);
}

#[test]
fn a_restored_backup_goes_back_in_version_and_content() {
    let mut s = small("Cust1", 1, 100);
    s.update("contact", 1).unwrap();
    let backup = s.clone();
    let row2 = s.table("contact").unwrap().row(2).unwrap();
    s.update("contact", 2).unwrap();
    s.insert("contact").unwrap();
    s.add_column("contact", "x_new", ColumnType::Int).unwrap();
    assert_eq!(s.current_version(), backup.current_version() + 2);
    let v = backup.current_version();
    s = backup.clone();
    assert_eq!(s.current_version(), v);
    assert_eq!(s.table("contact").unwrap().row(2).unwrap(), row2);
    assert_eq!(s.table("contact").unwrap().live_rows(), 90);
    assert_eq!(s.table("contact").unwrap().columns().len(), 4);
}

#[test]
fn expired_history_raises_the_minimum_valid_version() {
    let mut s = small("Cust1", 1, 100);
    let v0 = s.min_valid_version();
    s.update("contact", 1).unwrap();
    s.expire_history();
    assert_eq!(s.min_valid_version(), s.current_version());
    assert!(s.min_valid_version() > v0);
}

#[test]
fn schema_changes_follow_sql_server_semantics() {
    let mut s = small("Cust1", 1, 100);
    s.add_column("contact", "x_new", ColumnType::NVarChar(Some(40)))
        .unwrap();
    assert!(s.add_column("contact", "x_new", ColumnType::Int).is_err());
    assert!(
        s.add_column("contact", "bad name", ColumnType::Int)
            .is_err()
    );
    // Existing rows hold NULL in a new column; written rows get values.
    let t = s.table("contact").unwrap();
    assert!(t.live_keys().all(|k| t.row(k).unwrap()[4] == Value::Null));
    s.update("contact", 1).unwrap();
    let generated = (0..20).any(|_| {
        s.update("contact", 1).unwrap();
        s.table("contact").unwrap().row(1).unwrap()[4] != Value::Null
    });
    assert!(generated);
    assert_eq!(
        s.table("contact").unwrap().schema().columns[4].ty,
        "nvarchar(40)"
    );

    // Widening keeps existing values.
    let before: Vec<_> = (2..50)
        .map(|k| s.table("contact").unwrap().row(k))
        .collect();
    s.widen_column("contact", "name", ColumnType::NVarChar(Some(200)))
        .unwrap();
    let after: Vec<_> = (2..50)
        .map(|k| s.table("contact").unwrap().row(k))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        s.table("contact").unwrap().schema().columns[1].ty,
        "nvarchar(200)"
    );

    // An incompatible change converts every row, without change-tracking entries.
    let v = s.current_version();
    s.retype_column("contact", "amount", ColumnType::NVarChar(Some(50)))
        .unwrap();
    assert_eq!(s.current_version(), v);
    assert!(ops(&s, "contact", v).is_empty());
    let t = s.table("contact").unwrap();
    for k in t.live_keys() {
        let value = &t.row(k).unwrap()[3];
        assert!(matches!(value, Value::Null | Value::Text(_)), "{value:?}");
    }
    assert!(
        s.retype_column("contact", "contact_id", ColumnType::BigInt)
            .is_err()
    );
    assert!(
        s.retype_column("contact", "nope", ColumnType::BigInt)
            .is_err()
    );
    assert!(s.widen_column("nope", "name", ColumnType::BigInt).is_err());
}

#[test]
fn skipped_tables_leave_the_mirrored_set() {
    let mut s = small("Cust1", 1, 100);
    assert_eq!(s.mirrored_tables().count(), 2);
    s.set_mirrored("y_small", false).unwrap();
    let names: Vec<_> = s.mirrored_tables().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["contact"]);
    s.set_mirrored("y_small", true).unwrap();
    assert_eq!(s.mirrored_tables().count(), 2);
}

#[test]
fn a_million_rows_cost_only_their_changes() {
    let mut s = small("Cust1", 3, 1_100_000);
    let since = s.current_version();
    let t = s.table("contact").unwrap();
    assert_eq!(t.live_rows(), 1_000_000);
    let mut rng = Rng::from_parts(&[1]);
    for _ in 0..1000 {
        let key = s.random_live_key("contact", &mut rng).unwrap();
        s.update("contact", key).unwrap();
    }
    let changed = s.table("contact").unwrap().changes_since(since).count();
    assert!((900..=1000).contains(&changed), "{changed}");
    assert_eq!(s.table("contact").unwrap().live_keys().count(), 1_000_000);
}
