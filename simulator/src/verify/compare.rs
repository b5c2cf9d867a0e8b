//! The comparison itself: schema, then a merge of the mirror's rows (ascending by key) with the
//! source's keys (ascending too), so any table size is compared in constant memory.

use mirror_common::schema::ColumnType;
use mirror_common::value::Value;

use super::canonical::{checksum, display};
use super::report::{DiffKind, RowDiff, TableReport, TenantReport};
use super::{MirrorColumn, MirrorReader, VerifyError};
use crate::source::{Source, Table};

/// Concrete differences kept per table.
const MAX_SAMPLES: usize = 5;

/// Compares every mirrored table of `source` with the mirror behind `reader`.
pub async fn verify<R: MirrorReader + ?Sized>(
    reader: &mut R,
    source: &Source,
) -> Result<TenantReport, VerifyError> {
    let mirror_tables = reader.tables().await?;
    let lsns = reader.lsns().await?;
    let mut report = TenantReport {
        tenant: source.tenant().to_owned(),
        storage: reader.storage().to_owned(),
        source_version: source.current_version(),
        tables: Vec::new(),
        extra_tables: mirror_tables
            .iter()
            .filter(|t| source.mirrored_tables().all(|s| s.name() != t.as_str()))
            .cloned()
            .collect(),
    };
    for table in source.mirrored_tables() {
        let mut t = verify_table(reader, table).await?;
        t.mirror_lsn = lsns.get(table.name()).copied();
        report.tables.push(t);
    }
    Ok(report)
}

async fn verify_table<R: MirrorReader + ?Sized>(
    reader: &mut R,
    table: &Table,
) -> Result<TableReport, VerifyError> {
    let mut report = TableReport {
        table: table.name().to_owned(),
        source_rows: table.live_rows(),
        ..TableReport::default()
    };
    let expected: Vec<(String, ColumnType)> = table
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.ty()))
        .collect();
    let Some(actual) = reader.columns(table.name()).await? else {
        report.lost = report.source_rows;
        return Ok(report);
    };
    report.exists = true;
    report.schema_problems = schema_problems(reader, &expected, &actual);
    // Values are decoded by the expected types: only possible when every column is there with
    // its type. Otherwise compare keys alone.
    let comparable = expected.iter().all(|(name, ty)| {
        actual
            .iter()
            .any(|a| &a.name == name && a.ty == reader.expected_type(*ty))
    });
    report.values_compared = comparable;
    let columns = if comparable {
        expected.clone()
    } else {
        expected[..1].to_vec()
    };
    let mut merge = Merge::new(table, &columns, comparable);
    let mut sink = |values: Vec<Value>| merge.push(values);
    report.mirror_rows = reader.scan(table.name(), &columns, &mut sink).await?;
    merge.finish(&mut report);
    Ok(report)
}

fn schema_problems<R: MirrorReader + ?Sized>(
    reader: &R,
    expected: &[(String, ColumnType)],
    actual: &[MirrorColumn],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, ty) in expected {
        let want = reader.expected_type(*ty);
        match actual.iter().find(|a| &a.name == name) {
            None => problems.push(format!("column {name} ({want}) is missing")),
            Some(a) if a.ty != want => {
                problems.push(format!("column {name} is {} instead of {want}", a.ty));
            }
            Some(_) => {}
        }
    }
    for a in actual {
        if expected.iter().all(|(name, _)| name != &a.name) {
            problems.push(format!("column {} ({}) is not in the source", a.name, a.ty));
        }
    }
    problems
}

/// The merge of a key-ordered stream of mirror rows with the source's live keys.
pub struct Merge<'a> {
    table: &'a Table,
    columns: &'a [(String, ColumnType)],
    compare_values: bool,
    source_keys: std::iter::Peekable<Box<dyn Iterator<Item = i32> + Send + 'a>>,
    previous_key: Option<i64>,
    out_of_order: bool,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
    wrong: u64,
    samples: Vec<RowDiff>,
}

impl<'a> Merge<'a> {
    pub fn new(
        table: &'a Table,
        columns: &'a [(String, ColumnType)],
        compare_values: bool,
    ) -> Merge<'a> {
        let keys: Box<dyn Iterator<Item = i32> + Send + 'a> = Box::new(table.live_keys());
        Merge {
            table,
            columns,
            compare_values,
            source_keys: keys.peekable(),
            previous_key: None,
            out_of_order: false,
            lost: 0,
            duplicated: 0,
            unexpected: 0,
            wrong: 0,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self, key: i64, kind: DiffKind, columns: Vec<(String, String, String)>) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(RowDiff { key, kind, columns });
        }
    }

    /// One mirror row, in ascending key order.
    pub fn push(&mut self, values: Vec<Value>) {
        let key = match values.first() {
            Some(Value::Int(k)) => i64::from(*k),
            Some(Value::SmallInt(k)) => i64::from(*k),
            Some(Value::BigInt(k)) => *k,
            _ => {
                // A row without a usable key cannot belong to the source.
                self.unexpected += 1;
                self.sample(i64::MIN, DiffKind::Unexpected, Vec::new());
                return;
            }
        };
        if let Some(previous) = self.previous_key {
            if key == previous {
                self.duplicated += 1;
                self.sample(key, DiffKind::Duplicated, Vec::new());
                return;
            }
            if key < previous {
                self.out_of_order = true;
            }
        }
        self.previous_key = Some(key);
        while let Some(&source_key) = self.source_keys.peek() {
            if i64::from(source_key) >= key {
                break;
            }
            self.source_keys.next();
            self.lost += 1;
            self.sample(i64::from(source_key), DiffKind::Lost, Vec::new());
        }
        if self.source_keys.peek().map(|k| i64::from(*k)) != Some(key) {
            self.unexpected += 1;
            self.sample(key, DiffKind::Unexpected, Vec::new());
            return;
        }
        self.source_keys.next();
        if !self.compare_values {
            return;
        }
        let expected = i32::try_from(key)
            .ok()
            .and_then(|k| self.table.row(k))
            .unwrap_or_default();
        if checksum(&expected) != checksum(&values) {
            self.wrong += 1;
            let differing = self
                .columns
                .iter()
                .zip(expected.iter().zip(&values))
                .filter(|(_, (e, a))| e != a)
                .map(|((name, _), (e, a))| (name.clone(), display(e), display(a)))
                .collect();
            self.sample(key, DiffKind::Wrong, differing);
        }
    }

    /// Counts the source keys never seen and writes the totals.
    pub fn finish(mut self, report: &mut TableReport) {
        while let Some(key) = self.source_keys.next() {
            self.lost += 1;
            self.sample(i64::from(key), DiffKind::Lost, Vec::new());
        }
        if self.out_of_order {
            report
                .schema_problems
                .push("the mirror returned rows out of key order: counts are unreliable".into());
        }
        report.lost = self.lost;
        report.duplicated = self.duplicated;
        report.unexpected = self.unexpected;
        report.wrong = self.wrong;
        report.samples = self.samples;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::schema::{RawColumn, RawTableSchema};

    fn source() -> Source {
        let table = RawTableSchema {
            name: "contact".into(),
            columns: vec![
                RawColumn {
                    name: "contact_id".into(),
                    ty: "int".into(),
                    nullable: false,
                    default: String::new(),
                },
                RawColumn {
                    name: "name".into(),
                    ty: "nvarchar(50)".into(),
                    nullable: true,
                    default: String::new(),
                },
            ],
        };
        Source::with_tables("Cust1", 1, 10, &[table]).unwrap()
    }

    fn merged(source: &Source, rows: Vec<Vec<Value>>) -> TableReport {
        let table = source.table("contact").unwrap();
        let columns: Vec<(String, ColumnType)> = table
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.ty()))
            .collect();
        let mut merge = Merge::new(table, &columns, true);
        for row in rows {
            merge.push(row);
        }
        let mut report = TableReport::default();
        merge.finish(&mut report);
        report
    }

    #[test]
    fn an_exact_copy_is_clean() {
        let s = source();
        let t = s.table("contact").unwrap();
        let rows: Vec<_> = t.live_keys().map(|k| t.row(k).unwrap()).collect();
        assert_eq!(rows.len(), 10);
        let r = merged(&s, rows);
        assert_eq!((r.lost, r.duplicated, r.unexpected, r.wrong), (0, 0, 0, 0));
        assert!(r.samples.is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_counted_and_sampled() {
        let s = source();
        let t = s.table("contact").unwrap();
        let mut rows: Vec<_> = t.live_keys().map(|k| t.row(k).unwrap()).collect();
        rows.remove(0); // key 1 lost
        rows[2][1] = Value::Text("corrupted".into()); // key 4 wrong
        let dup = rows[4].clone();
        rows.insert(5, dup); // key 6 twice
        rows.push(vec![Value::Int(99), Value::Null]); // unexpected
        let last = rows.len() - 2;
        rows.remove(last); // key 10 lost
        let r = merged(&s, rows);
        assert_eq!(r.lost, 2);
        assert_eq!(r.wrong, 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.unexpected, 1);
        let wrong = r
            .samples
            .iter()
            .find(|d| d.kind == DiffKind::Wrong)
            .unwrap();
        assert_eq!(wrong.key, 4);
        assert_eq!(wrong.columns.len(), 1);
        assert_eq!(wrong.columns[0].0, "name");
        assert_eq!(wrong.columns[0].2, "\"corrupted\"");
        assert!(
            r.samples
                .iter()
                .any(|d| d.kind == DiffKind::Lost && d.key == 10)
        );
    }

    #[test]
    fn an_empty_mirror_loses_everything() {
        let s = source();
        let r = merged(&s, Vec::new());
        assert_eq!(r.lost, 10);
        assert_eq!(r.samples.len(), MAX_SAMPLES);
    }
}
