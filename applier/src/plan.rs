//! Dialect-neutral planning: what a message means for a mirror, before any SQL is rendered.
//!
//! - [`schema_hash`]: the stable fingerprint stored in the state table's `schemahash` column.
//! - [`collapse`]: a batch reduced to the last operation per key, so it can be applied set-based.
//! - [`diff`] and [`plan_schema`]: a TableSchema call turned into per-table actions (keep, alter,
//!   create, recreate, drop) that every dialect executes the same way.
//!
//! Types are compared in SQL Server terms (what SuperOffice sends); a dialect maps them to its own.

use std::collections::{HashMap, HashSet};

use mirror_common::schema::{Column, ColumnType, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{Operation, Row};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::error::ApplyError;
use crate::state::TableState;

/// Version tag at the start of the hashed text; bump it if the canonical form ever changes
/// (every table would then be altered once, with no data loss: the column lists still match).
const HASH_FORMAT: &str = "mirror-schema-v1";

/// The schema hash: lowercase hex SHA-256 of the canonical column list.
///
/// Canonical form, one line per column in the order sent, after the line `mirror-schema-v1`:
/// `name TAB type TAB nullability TAB default`, where `type` is the canonical SQL Server
/// spelling (`nvarchar(max)`, `decimal(18,2)`), nullability is `null` or `not null`, and the
/// default is empty, `null`, `int:<n>`, `float:<shortest round-trip f64>`, `text:<JSON string>`,
/// `now` or `newid`. Names are taken exactly as sent. The table name is not part of the hash.
pub fn schema_hash(schema: &TableSchema) -> String {
    use mirror_common::schema::DefaultValue as D;
    let mut text = String::with_capacity(64 + schema.columns.len() * 48);
    text.push_str(HASH_FORMAT);
    text.push('\n');
    for c in &schema.columns {
        let default = match &c.default {
            None => String::new(),
            Some(D::Null) => "null".to_owned(),
            Some(D::Integer(n)) => format!("int:{n}"),
            Some(D::Float(f)) => format!("float:{f:?}"),
            Some(D::Text(s)) => format!("text:{}", json_string(s)),
            Some(D::CurrentTimestamp) => "now".to_owned(),
            Some(D::NewId) => "newid".to_owned(),
        };
        let null = if c.nullable { "null" } else { "not null" };
        text.push_str(&format!("{}\t{}\t{null}\t{default}\n", c.name, c.ty));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The integer key of a row (column 0), widened to `i64`.
pub fn key_of(value: &Value) -> Option<i64> {
    match value {
        Value::Int(v) => Some(i64::from(*v)),
        Value::SmallInt(v) => Some(i64::from(*v)),
        Value::TinyInt(v) => Some(i64::from(*v)),
        Value::BigInt(v) => Some(*v),
        _ => None,
    }
}

/// A batch reduced to its net effect: each key appears at most once, either as the full row to
/// upsert or as a key to delete (never both).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes<'a> {
    /// Full rows in the schema's column order, in the order of each key's last operation.
    pub upserts: Vec<&'a [Value]>,
    /// Keys to delete (a missing row is not an error).
    pub deletes: Vec<i64>,
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// Collapses a batch to the last operation per key. SuperOffice sends only a row's final state,
/// and I and U are both applied as an upsert, D as a delete; so applying the last operation per
/// key gives the same table as applying every row in order (a property test checks this).
///
/// Checks the shape as well: I/U rows carry every column, D rows at least the key, and every key
/// is a non-NULL integer.
pub fn collapse<'a>(schema: &TableSchema, rows: &'a [Row]) -> Result<Changes<'a>, ApplyError> {
    let bad = |reason: String| ApplyError::BadBatch {
        table: schema.name.clone(),
        reason,
    };
    // While keys rise strictly (a load arrives in key order), no key can repeat: the map of each
    // key's last position is only built at the first key that does not rise.
    // `superseded` marks the operations a later one on the same key replaces.
    let mut last: Option<FxHashMap<i64, usize>> = None;
    let mut superseded: Vec<bool> = Vec::new();
    let mut keys: Vec<i64> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let width = row.values.len();
        let ok = match row.op {
            Operation::Insert | Operation::Update => width == schema.columns.len(),
            Operation::Delete => width >= 1,
        };
        if !ok {
            return Err(bad(format!(
                "row {i} ({}) has {width} values for {} columns",
                row.op.letter(),
                schema.columns.len()
            )));
        }
        let key = key_of(&row.values[0])
            .ok_or_else(|| bad(format!("row {i} has no integer key in column 0")))?;
        let rising = last.is_none() && keys.last().is_none_or(|&previous| previous < key);
        if !rising {
            let last = last.get_or_insert_with(|| {
                let mut map = FxHashMap::default();
                map.reserve(rows.len());
                map.extend(keys.iter().enumerate().map(|(at, &k)| (k, at)));
                map
            });
            if let Some(earlier) = last.insert(key, i) {
                if superseded.is_empty() {
                    superseded.resize(rows.len(), false);
                }
                superseded[earlier] = true;
            }
        }
        keys.push(key);
    }
    let mut changes = Changes::default();
    for (i, (row, key)) in rows.iter().zip(keys).enumerate() {
        if superseded.get(i).copied().unwrap_or(false) {
            continue;
        }
        match row.op {
            Operation::Insert | Operation::Update => changes.upserts.push(&row.values),
            Operation::Delete => changes.deletes.push(key),
        }
    }
    Ok(changes)
}

/// One in-place change to an existing mirror table.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// A new column (nullable, or with a default that fills existing rows).
    AddColumn(Column),
    /// A compatible widening (`nvarchar(20)` → `nvarchar(max)`, `int` → `bigint`, …).
    WidenType { column: Column, from: ColumnType },
    /// A column that became nullable.
    DropNotNull { column: Column },
    /// A column whose default changed (`None` in `column.default`: remove it).
    SetDefault { column: Column },
}

/// How an existing table gets from its stored schema to the incoming one.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaChange {
    /// In place; the rows and the LSN stay valid. May be empty (columns only reordered).
    Alter(Vec<AlterAction>),
    /// Drop and create again; the LSN becomes -1 so SuperOffice resends the table.
    Recreate { reason: String },
}

/// True when every value of `from` fits `to` unchanged, so the column can be altered in place.
pub fn widens(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType::*;
    // `None` is `max`.
    let fits = |a: Option<u16>, b: Option<u16>| match (a, b) {
        (_, None) => true,
        (Some(a), Some(b)) => a <= b,
        (None, Some(_)) => false,
    };
    match (from, to) {
        (a, b) if a == b => true,
        (TinyInt, SmallInt | Int | BigInt) | (SmallInt, Int | BigInt) | (Int, BigInt) => true,
        (Real, Float) => true,
        (SmallDateTime, DateTime | DateTime2) | (DateTime, DateTime2) => true,
        (NVarChar(a), NVarChar(b))
        | (VarChar(a), VarChar(b))
        | (VarChar(a), NVarChar(b))
        | (VarBinary(a), VarBinary(b)) => fits(a, b),
        (NText, NVarChar(None)) | (Text, VarChar(None)) | (Image, VarBinary(None)) => true,
        (Decimal(p1, s1), Decimal(p2, s2)) => s2 >= s1 && p2 - s2 >= p1 - s1,
        _ => false,
    }
}

/// Plans the change from the stored schema `old` to the incoming `new` (their hashes differ).
///
/// In place: added columns, compatible widenings, relaxed nullability, changed defaults. Anything
/// else — a dropped or renamed column, an incompatible type change, a tightened nullability, a
/// changed key column, a new NOT NULL column without a default — recreates the table.
pub fn diff(old: &TableSchema, new: &TableSchema) -> SchemaChange {
    let recreate = |reason: String| SchemaChange::Recreate { reason };
    let (Some(old_key), Some(new_key)) = (old.columns.first(), new.columns.first()) else {
        return recreate("a schema without columns".into());
    };
    if old_key != new_key {
        return recreate(format!(
            "key column changed from {} {} to {} {}",
            old_key.name, old_key.ty, new_key.name, new_key.ty
        ));
    }
    if let Some(gone) = old
        .columns
        .iter()
        .find(|o| !new.columns.iter().any(|n| n.name == o.name))
    {
        return recreate(format!("column {} was dropped or renamed", gone.name));
    }
    let mut actions = Vec::new();
    for col in &new.columns[1..] {
        let Some(prev) = old.columns.iter().find(|o| o.name == col.name) else {
            let fills =
                matches!(&col.default, Some(d) if *d != mirror_common::schema::DefaultValue::Null);
            if !col.nullable && !fills {
                return recreate(format!(
                    "new column {} is NOT NULL without a default",
                    col.name
                ));
            }
            actions.push(AlterAction::AddColumn(col.clone()));
            continue;
        };
        if prev.ty != col.ty {
            if !widens(prev.ty, col.ty) {
                return recreate(format!(
                    "column {} changed type from {} to {}",
                    col.name, prev.ty, col.ty
                ));
            }
            actions.push(AlterAction::WidenType {
                column: col.clone(),
                from: prev.ty,
            });
        }
        match (prev.nullable, col.nullable) {
            (false, true) => actions.push(AlterAction::DropNotNull {
                column: col.clone(),
            }),
            (true, false) => {
                return recreate(format!("column {} became NOT NULL", col.name));
            }
            _ => {}
        }
        if prev.default != col.default {
            actions.push(AlterAction::SetDefault {
                column: col.clone(),
            });
        }
    }
    SchemaChange::Alter(actions)
}

/// What a TableSchema call does to one table.
#[derive(Debug, Clone, PartialEq)]
pub enum TableAction {
    /// Same hash, table present: answer the stored LSN.
    Keep,
    /// Alter in place, store the new hash and schema, answer the stored LSN.
    Alter(Vec<AlterAction>),
    /// No table yet: create it, answer -1.
    Create,
    /// Drop and create, answer -1.
    Recreate { reason: String },
}

/// One table of the call and its action.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan<'a> {
    pub schema: &'a TableSchema,
    pub action: TableAction,
}

/// A whole TableSchema call, planned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaPlan<'a> {
    /// Every table of the call, in call order.
    pub tables: Vec<TablePlan<'a>>,
    /// Tables (or bare state rows) absent from the call, to drop with their state.
    pub drop: Vec<String>,
}

/// Plans a TableSchema call from the stored state rows and the mirror tables that exist.
///
/// A table counts as known only when it exists AND has a state row with a stored schema; this is
/// what makes SuperOffice's force-resync procedures work: a deleted state row or a dropped state
/// table makes an existing table unknown (recreated, -1), a dropped table is created again (-1),
/// and an LSN set to -1 by hand is simply answered.
pub fn plan_schema<'a>(
    incoming: &'a [TableSchema],
    states: &HashMap<String, TableState>,
    existing: &HashSet<String>,
    drop_absent: bool,
) -> SchemaPlan<'a> {
    let mut plan = SchemaPlan::default();
    for schema in incoming {
        let exists = existing.contains(&schema.name);
        let state = states.get(&schema.name);
        let action = match (exists, state) {
            (false, _) => TableAction::Create,
            (true, None) => TableAction::Recreate {
                reason: "the table has no state row".into(),
            },
            (true, Some(state)) => match (&state.schema_hash, &state.schema) {
                (Some(hash), Some(_)) if *hash == schema_hash(schema) => TableAction::Keep,
                (_, Some(old)) => match diff(old, schema) {
                    SchemaChange::Alter(actions) => TableAction::Alter(actions),
                    SchemaChange::Recreate { reason } => TableAction::Recreate { reason },
                },
                (_, None) => TableAction::Recreate {
                    reason: "the stored schema is unknown".into(),
                },
            },
        };
        plan.tables.push(TablePlan { schema, action });
    }
    if drop_absent {
        let wanted: HashSet<&str> = incoming.iter().map(|s| s.name.as_str()).collect();
        let mut absent: Vec<String> = existing
            .iter()
            .chain(states.keys())
            .filter(|t| !wanted.contains(t.as_str()))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        absent.sort();
        plan.drop = absent;
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mirror_common::schema::{DefaultValue, RawColumn, RawTableSchema};
    use proptest::prelude::*;

    use super::*;

    fn table(cols: &[(&str, &str, bool, &str)]) -> TableSchema {
        RawTableSchema {
            name: "contact".into(),
            columns: cols
                .iter()
                .map(|(n, t, null, d)| RawColumn {
                    name: (*n).into(),
                    ty: (*t).into(),
                    nullable: *null,
                    default: (*d).into(),
                })
                .collect(),
        }
        .validate()
        .unwrap()
    }

    fn base() -> TableSchema {
        table(&[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(20)", false, "default (N'')"),
            ("n", "smallint", true, ""),
        ])
    }

    fn row(op: Operation, key: i32, v: &str) -> Row {
        Row {
            op,
            values: vec![Value::Int(key), Value::Text(v.into()), Value::Null],
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive_to_every_part() {
        let h = schema_hash(&base());
        assert_eq!(h.len(), 64);
        assert_eq!(h, schema_hash(&base()));
        let mut renamed_table = base();
        renamed_table.name = "person".into();
        assert_eq!(
            h,
            schema_hash(&renamed_table),
            "the table name is not hashed"
        );
        let variants = [
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(21)", false, "default (N'')"),
                ("n", "smallint", true, ""),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(20)", true, "default (N'')"),
                ("n", "smallint", true, ""),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(20)", false, "default (N'x')"),
                ("n", "smallint", true, ""),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("n", "smallint", true, ""),
                ("name", "nvarchar(20)", false, "default (N'')"),
            ]),
        ];
        for v in variants {
            assert_ne!(h, schema_hash(&v), "{v:?}");
        }
    }

    #[test]
    fn collapse_keeps_the_last_operation_per_key() {
        let rows = vec![
            row(Operation::Insert, 1, "a"),
            row(Operation::Update, 1, "b"),
            row(Operation::Delete, 1, ""),
            row(Operation::Insert, 2, "x"),
            row(Operation::Delete, 3, ""),
            row(Operation::Insert, 3, "y"),
        ];
        let c = collapse(&base(), &rows).unwrap();
        assert_eq!(c.deletes, vec![1]);
        assert_eq!(
            c.upserts,
            vec![rows[3].values.as_slice(), rows[5].values.as_slice()]
        );
    }

    #[test]
    fn collapse_refuses_malformed_rows() {
        let short = Row {
            op: Operation::Update,
            values: vec![Value::Int(1)],
        };
        let err = collapse(&base(), &[short]).unwrap_err();
        assert_eq!(err.table(), Some("contact"));
        let textual_key = Row {
            op: Operation::Delete,
            values: vec![Value::Text("1".into())],
        };
        assert!(matches!(
            collapse(&base(), &[textual_key]),
            Err(ApplyError::BadBatch { .. })
        ));
        let delete_by_key = Row {
            op: Operation::Delete,
            values: vec![Value::Int(7)],
        };
        assert_eq!(
            collapse(&base(), &[delete_by_key]).unwrap().deletes,
            vec![7]
        );
    }

    #[test]
    fn widening_rules() {
        use ColumnType::*;
        assert!(widens(NVarChar(Some(10)), NVarChar(Some(20))));
        assert!(widens(NVarChar(Some(10)), NVarChar(None)));
        assert!(!widens(NVarChar(None), NVarChar(Some(4000))));
        assert!(!widens(NVarChar(Some(20)), NVarChar(Some(10))));
        assert!(widens(SmallInt, Int) && widens(Int, BigInt) && widens(TinyInt, BigInt));
        assert!(!widens(BigInt, Int));
        assert!(widens(Real, Float) && !widens(Float, Real));
        assert!(widens(Decimal(10, 2), Decimal(12, 3)));
        assert!(!widens(Decimal(10, 2), Decimal(10, 3)));
        assert!(!widens(Int, NVarChar(None)));
    }

    #[test]
    fn diff_alters_in_place_only_when_safe() {
        let old = base();
        let added = table(&[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(max)", true, "default (N'')"),
            ("n", "int", true, ""),
            ("extra", "datetime", true, ""),
        ]);
        match diff(&old, &added) {
            SchemaChange::Alter(actions) => {
                assert_eq!(actions.len(), 4, "{actions:?}");
                assert!(matches!(
                    &actions[0],
                    AlterAction::WidenType {
                        from: ColumnType::NVarChar(Some(20)),
                        ..
                    }
                ));
                assert!(
                    matches!(&actions[1], AlterAction::DropNotNull { column } if column.name == "name")
                );
                assert!(matches!(
                    &actions[2],
                    AlterAction::WidenType {
                        from: ColumnType::SmallInt,
                        ..
                    }
                ));
                assert!(matches!(&actions[3], AlterAction::AddColumn(c) if c.name == "extra"));
            }
            other => panic!("{other:?}"),
        }
        let recreates = [
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(20)", false, "default (N'')"),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(10)", false, "default (N'')"),
                ("n", "smallint", true, ""),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(20)", false, "default (N'')"),
                ("n", "smallint", false, ""),
            ]),
            table(&[
                ("contact_id", "bigint", false, ""),
                ("name", "nvarchar(20)", false, "default (N'')"),
                ("n", "smallint", true, ""),
            ]),
            table(&[
                ("contact_id", "int", false, ""),
                ("name", "nvarchar(20)", false, "default (N'')"),
                ("n", "smallint", true, ""),
                ("m", "int", false, ""),
            ]),
        ];
        for new in recreates {
            assert!(
                matches!(diff(&old, &new), SchemaChange::Recreate { .. }),
                "{new:?}"
            );
        }
        let with_default = table(&[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(20)", false, "default (N'')"),
            ("n", "smallint", true, ""),
            ("m", "int", false, "default ((0))"),
        ]);
        assert!(matches!(
            diff(&old, &with_default),
            SchemaChange::Alter(a) if a == vec![AlterAction::AddColumn(Column {
                name: "m".into(), ty: ColumnType::Int, nullable: false, default: Some(DefaultValue::Integer(0)),
            })]
        ));
    }

    #[test]
    fn plan_covers_every_force_resync_procedure() {
        let a = base();
        let mut b = base();
        b.name = "person".into();
        let incoming = vec![a.clone(), b.clone()];
        let mut known = TableState::new("contact");
        known.schema_hash = Some(schema_hash(&a));
        known.schema = Some(a.clone());
        known.lsn = 42;
        let states: HashMap<String, TableState> = [("contact".to_owned(), known.clone())].into();
        let all: HashSet<String> =
            ["contact".to_owned(), "person".to_owned(), "old".to_owned()].into();

        // Known table kept; a table with no state row recreated; absent table dropped.
        let plan = plan_schema(&incoming, &states, &all, true);
        assert_eq!(plan.tables[0].action, TableAction::Keep);
        assert!(matches!(
            plan.tables[1].action,
            TableAction::Recreate { .. }
        ));
        assert_eq!(plan.drop, vec!["old".to_owned()]);
        // Kept when configured so.
        assert!(plan_schema(&incoming, &states, &all, false).drop.is_empty());
        // State row deleted and table dropped: created.
        let none: HashSet<String> = HashSet::new();
        let plan = plan_schema(&incoming, &HashMap::new(), &none, true);
        assert!(plan.tables.iter().all(|t| t.action == TableAction::Create));
        // State row present but table dropped by hand: created.
        let plan = plan_schema(&incoming[..1], &states, &none, true);
        assert_eq!(plan.tables[0].action, TableAction::Create);
    }

    /// The in-memory meaning of a batch: I/U upsert by key, D delete by key.
    fn apply_in_order(table: &mut BTreeMap<i64, Vec<Value>>, rows: &[Row]) {
        for r in rows {
            let key = key_of(&r.values[0]).unwrap();
            match r.op {
                Operation::Insert | Operation::Update => {
                    table.insert(key, r.values.clone());
                }
                Operation::Delete => {
                    table.remove(&key);
                }
            }
        }
    }

    fn arb_row() -> impl Strategy<Value = Row> {
        (0..3u8, 0..8i32, "[a-c]{0,2}").prop_map(|(op, key, text)| {
            let op = [Operation::Insert, Operation::Update, Operation::Delete][usize::from(op)];
            let values = if op == Operation::Delete {
                vec![Value::Int(key)]
            } else {
                vec![Value::Int(key), Value::Text(text), Value::SmallInt(1)]
            };
            Row { op, values }
        })
    }

    proptest! {
        #[test]
        fn collapsing_never_changes_the_final_state(
            start in proptest::collection::btree_map(0..8i64, "[x-z]", 0..8),
            rows in proptest::collection::vec(arb_row(), 0..40),
        ) {
            let start: BTreeMap<i64, Vec<Value>> = start
                .into_iter()
                .map(|(k, v)| (k, vec![Value::Int(k as i32), Value::Text(v), Value::Null]))
                .collect();
            let mut row_by_row = start.clone();
            apply_in_order(&mut row_by_row, &rows);

            let changes = collapse(&base(), &rows).unwrap();
            let mut keys: Vec<i64> = changes.deletes.clone();
            keys.extend(changes.upserts.iter().map(|r| key_of(&r[0]).unwrap()));
            let unique: HashSet<i64> = keys.iter().copied().collect();
            prop_assert_eq!(unique.len(), keys.len(), "a key appears twice");

            let mut collapsed = start;
            for k in &changes.deletes {
                collapsed.remove(k);
            }
            for r in &changes.upserts {
                collapsed.insert(key_of(&r[0]).unwrap(), r.to_vec());
            }
            prop_assert_eq!(collapsed, row_by_row);
        }
    }
}
