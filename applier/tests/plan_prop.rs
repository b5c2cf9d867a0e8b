//! Property tests of the apply planner: collapsing a batch to the last operation per key never
//! changes the final state of a table, whatever the table held and whatever sequence of inserts,
//! updates and deletes arrives over a small key space (so keys repeat often).
//!
//! The table is an in-memory model with the mirror's meaning: I and U upsert the whole row by key,
//! D deletes by key (a missing row is not an error). The collapsed form is applied the way the
//! engine does it: one set-based delete, then one set-based upsert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};

use mirror_applier::plan::{Changes, collapse, key_of};
use mirror_common::schema::{Column, ColumnType, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{Operation, Row};
use proptest::prelude::*;

type Table = BTreeMap<i64, Vec<Value>>;

const KEYS: i64 = 6;

fn schema() -> TableSchema {
    let column = |name: &str, ty: ColumnType, nullable: bool| Column {
        name: name.into(),
        ty,
        nullable,
        default: None,
    };
    TableSchema {
        name: "contact".into(),
        columns: vec![
            column("contact_id", ColumnType::BigInt, false),
            column("name", ColumnType::NVarChar(Some(20)), true),
            column("n", ColumnType::Int, true),
        ],
    }
}

/// A key in any integer width SuperOffice uses; all widths of one number are one key.
fn key() -> impl Strategy<Value = Value> {
    (0..KEYS, 0..4u8).prop_map(|(k, width)| match width {
        0 => Value::TinyInt(u8::try_from(k).unwrap()),
        1 => Value::SmallInt(i16::try_from(k).unwrap()),
        2 => Value::Int(i32::try_from(k).unwrap()),
        _ => Value::BigInt(k),
    })
}

fn values(key: Value) -> impl Strategy<Value = Vec<Value>> {
    let name = prop_oneof![Just(Value::Null), "[a-c]{0,3}".prop_map(Value::Text)];
    let n = prop_oneof![Just(Value::Null), any::<i32>().prop_map(Value::Int)];
    (name, n).prop_map(move |(name, n)| vec![key.clone(), name, n])
}

/// One row of a batch. A delete carries only its key, or (as SuperOffice may send it) the whole
/// row, which must not matter.
fn row() -> impl Strategy<Value = Row> {
    (key(), 0..3u8, any::<bool>())
        .prop_flat_map(|(key, op, whole)| (Just(op), Just(whole), values(key)))
        .prop_map(|(op, whole, values)| match op {
            0 => Row {
                op: Operation::Insert,
                values,
            },
            1 => Row {
                op: Operation::Update,
                values,
            },
            _ => Row {
                op: Operation::Delete,
                values: if whole { values } else { values[..1].to_vec() },
            },
        })
}

fn table() -> impl Strategy<Value = Table> {
    prop::collection::vec(key().prop_flat_map(values), 0..(KEYS as usize)).prop_map(|rows| {
        rows.into_iter()
            .map(|r| (key_of(&r[0]).unwrap(), r))
            .collect()
    })
}

/// The meaning of a batch, one row after the other.
fn apply_in_order(table: &mut Table, rows: &[Row]) {
    for row in rows {
        let key = key_of(&row.values[0]).unwrap();
        match row.op {
            Operation::Insert | Operation::Update => {
                table.insert(key, row.values.clone());
            }
            Operation::Delete => {
                table.remove(&key);
            }
        }
    }
}

/// The meaning of a collapsed batch: its deletes, then its upserts.
fn applied(mut table: Table, changes: &Changes<'_>) -> Table {
    for key in &changes.deletes {
        table.remove(key);
    }
    for row in &changes.upserts {
        table.insert(key_of(&row[0]).unwrap(), row.to_vec());
    }
    table
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn collapsing_a_batch_never_changes_the_final_state(
        start in table(),
        rows in prop::collection::vec(row(), 0..40),
    ) {
        let mut row_by_row = start.clone();
        apply_in_order(&mut row_by_row, &rows);

        let changes = collapse(&schema(), &rows).unwrap();
        let upserted: Vec<i64> = changes.upserts.iter().map(|r| key_of(&r[0]).unwrap()).collect();
        let mut seen = HashSet::new();
        for key in changes.deletes.iter().chain(&upserted) {
            prop_assert!(seen.insert(*key), "key {} appears twice in {:?}", key, changes);
        }
        let keys_sent: HashSet<i64> =
            rows.iter().map(|r| key_of(&r.values[0]).unwrap()).collect();
        prop_assert_eq!(seen, keys_sent, "every key sent is applied exactly once");

        prop_assert_eq!(applied(start, &changes), row_by_row);
    }

    /// Loads arrive in key order: collapsing skips its key map while keys rise, and must still
    /// catch every repeat after they stop rising.
    #[test]
    fn batches_that_start_in_key_order_collapse_like_any_other(
        start in table(),
        mut rows in prop::collection::vec(row(), 0..40),
        rising in 0usize..40,
    ) {
        let rising = rising.min(rows.len());
        rows[..rising].sort_by_key(|r| key_of(&r.values[0]));
        let mut row_by_row = start.clone();
        apply_in_order(&mut row_by_row, &rows);
        let changes = collapse(&schema(), &rows).unwrap();
        prop_assert_eq!(applied(start, &changes), row_by_row);
        prop_assert_eq!(
            changes.upserts.len() + changes.deletes.len(),
            rows.iter().map(|r| key_of(&r.values[0])).collect::<HashSet<_>>().len()
        );
    }

    #[test]
    fn upserts_keep_the_order_of_each_keys_last_operation(
        rows in prop::collection::vec(row(), 0..40),
    ) {
        let changes = collapse(&schema(), &rows).unwrap();
        let last_position = |key: i64| {
            rows.iter().rposition(|r| key_of(&r.values[0]) == Some(key)).unwrap()
        };
        let positions: Vec<usize> = changes
            .upserts
            .iter()
            .map(|r| last_position(key_of(&r[0]).unwrap()))
            .collect();
        prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{:?}", positions);
    }

    #[test]
    fn a_batch_with_one_malformed_row_is_refused_whole(
        mut rows in prop::collection::vec(row(), 1..20),
        at in any::<prop::sample::Index>(),
        short in any::<bool>(),
    ) {
        let i = at.index(rows.len());
        if short {
            rows[i] = Row { op: Operation::Update, values: rows[i].values[..1].to_vec() };
        } else {
            rows[i].values[0] = Value::Text("1".into());
        }
        prop_assert!(collapse(&schema(), &rows).is_err());
    }
}
