//! What the verifier found, per tenant and table, in a form tests assert on and the CLI prints.

use std::fmt;

/// One concrete difference, for the report (a handful per table, not all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDiff {
    pub key: i64,
    pub kind: DiffKind,
    /// For a wrong row: `(column, expected, actual)` of each differing column.
    pub columns: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// In the source, not in the mirror.
    Lost,
    /// More than once in the mirror.
    Duplicated,
    /// In the mirror, not in the source.
    Unexpected,
    /// In both, with different values.
    Wrong,
}

/// One table's comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableReport {
    pub table: String,
    /// False when the mirror has no such table.
    pub exists: bool,
    /// Missing or extra columns, wrong types.
    pub schema_problems: Vec<String>,
    pub source_rows: u64,
    pub mirror_rows: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub wrong: u64,
    /// False when values could not be compared (schema problems): only keys were.
    pub values_compared: bool,
    /// The LSN the mirror's state table holds, when it has one.
    pub mirror_lsn: Option<i64>,
    pub samples: Vec<RowDiff>,
}

impl TableReport {
    pub fn is_clean(&self) -> bool {
        self.exists
            && self.schema_problems.is_empty()
            && self.lost == 0
            && self.duplicated == 0
            && self.unexpected == 0
            && self.wrong == 0
    }

    /// Rows that differ in any way.
    pub fn differences(&self) -> u64 {
        self.lost + self.duplicated + self.unexpected + self.wrong
    }
}

/// One tenant's comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantReport {
    pub tenant: String,
    /// Where the mirror is (schema or database name).
    pub storage: String,
    pub source_version: u64,
    pub tables: Vec<TableReport>,
    /// Tables in the mirror that the source does not mirror (dropped or skipped at the source and
    /// kept by the partner): reported, not a failure.
    pub extra_tables: Vec<String>,
}

impl TenantReport {
    pub fn is_clean(&self) -> bool {
        self.tables.iter().all(TableReport::is_clean)
    }

    pub fn differences(&self) -> u64 {
        self.tables.iter().map(TableReport::differences).sum()
    }

    pub fn table(&self, name: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == name)
    }

    pub fn source_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.source_rows).sum()
    }
}

impl fmt::Display for TenantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}), source version {}: {}",
            self.tenant,
            self.storage,
            self.source_version,
            if self.is_clean() {
                "mirror matches".to_owned()
            } else {
                format!("{} row difference(s)", self.differences())
            }
        )?;
        writeln!(
            f,
            "  {:<22} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9}",
            "table", "source", "mirror", "lost", "dup", "unexp", "wrong", "lsn"
        )?;
        for t in &self.tables {
            let lsn = t
                .mirror_lsn
                .map_or_else(|| "-".to_owned(), |l| l.to_string());
            let mark = if t.is_clean() { ' ' } else { '!' };
            writeln!(
                f,
                "{mark} {:<22} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9}",
                t.table,
                t.source_rows,
                t.mirror_rows,
                t.lost,
                t.duplicated,
                t.unexpected,
                t.wrong,
                lsn
            )?;
            if !t.exists {
                writeln!(f, "      table is missing from the mirror")?;
            }
            for problem in &t.schema_problems {
                writeln!(f, "      schema: {problem}")?;
            }
            if !t.values_compared && t.exists {
                writeln!(f, "      values not compared (schema differs): keys only")?;
            }
            for sample in &t.samples {
                write!(f, "      {:?} key {}", sample.kind, sample.key)?;
                for (column, expected, actual) in &sample.columns {
                    write!(f, "; {column}: expected {expected}, found {actual}")?;
                }
                writeln!(f)?;
            }
        }
        if !self.extra_tables.is_empty() {
            writeln!(
                f,
                "  not in the source (kept by the mirror): {}",
                self.extra_tables.join(", ")
            )?;
        }
        Ok(())
    }
}
