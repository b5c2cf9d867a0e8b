//! The synthetic tenant database: SuperOffice-shaped tables, deterministic rows from a seed, and
//! SQL Server-style change tracking (one database-wide version bumped by every change, per key the
//! last change and net operation, a minimum valid version below which history is gone).
//!
//! `Source` is `Clone`: a clone is a backup, and assigning it back is a restore (the version goes
//! back, as it does when a SuperOffice database is restored).

mod catalog;
mod generate;
mod prng;
mod table;

pub use catalog::{TABLES_TSV, tables as catalog_tables, weight as table_weight};
pub use generate::empty_date;
pub use prng::{FNV_OFFSET, Rng, fnv1a, hash_str};
pub use table::{Change, SourceColumn, Table};

use mirror_common::schema::{ColumnType, RawTableSchema, SchemaError};

/// The lowest version the initial rows are written at: an established database, not an empty one.
pub const BASE_VERSION: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid table definition: {0}")]
    Schema(#[from] SchemaError),
    #[error("table {0} does not exist in the source")]
    UnknownTable(String),
    #[error("table {table} has no column {column} (or it is the key)")]
    UnknownColumn { table: String, column: String },
    #[error("table {table} already has a column {column}")]
    DuplicateColumn { table: String, column: String },
    #[error("invalid table catalog: {0}")]
    Catalog(#[from] catalog::CatalogError),
}

#[derive(Debug, Clone)]
pub struct Source {
    tenant: String,
    tables: Vec<Table>,
    version: u64,
    min_valid: u64,
}

impl Source {
    /// A tenant with about `rows` rows spread over the embedded SuperOffice tables by weight.
    pub fn new(tenant: &str, seed: u64, rows: u64) -> Result<Source, SourceError> {
        let tables = catalog::parse(TABLES_TSV)?;
        Source::with_tables(tenant, seed, rows, &tables)
    }

    /// A tenant over the given tables (tests use small ones).
    pub fn with_tables(
        tenant: &str,
        seed: u64,
        rows: u64,
        tables: &[RawTableSchema],
    ) -> Result<Source, SourceError> {
        let mut rng = Rng::from_parts(&[seed, hash_str(tenant), rows]);
        let seed = rng.next_u64();
        // The initial version depends on the data, and history before it is gone: a mirror left
        // over from a run with other settings is then either older than the minimum valid version
        // or newer than the source, and is reloaded either way, never patched.
        let base = BASE_VERSION + rng.below(1_000_000);
        let total: u64 = tables.iter().map(|t| catalog::weight(&t.name)).sum();
        let tables = tables
            .iter()
            .map(|t| {
                let share = rows.saturating_mul(catalog::weight(&t.name)) / total.max(1);
                let share = i32::try_from(share).unwrap_or(i32::MAX - 1_000_000);
                Table::new(t, seed, share, base)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Source {
            tenant: tenant.to_owned(),
            tables,
            version: base,
            min_valid: base,
        })
    }

    /// The tenant's context id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// `CHANGE_TRACKING_CURRENT_VERSION()`.
    pub fn current_version(&self) -> u64 {
        self.version
    }

    /// `CHANGE_TRACKING_MIN_VALID_VERSION()`: a mirror older than this must be reloaded.
    pub fn min_valid_version(&self) -> u64 {
        self.min_valid
    }

    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The tables the Mirroring Task sends (not dropped, not skipped).
    pub fn mirrored_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| t.mirrored())
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name() == name)
    }

    fn table_mut(&mut self, name: &str) -> Result<&mut Table, SourceError> {
        self.tables
            .iter_mut()
            .find(|t| t.name() == name)
            .ok_or_else(|| SourceError::UnknownTable(name.to_owned()))
    }

    /// Rows that currently exist, over all tables.
    pub fn live_rows(&self) -> u64 {
        self.tables.iter().map(Table::live_rows).sum()
    }

    /// Inserts a row (one transaction); returns its key.
    pub fn insert(&mut self, table: &str) -> Result<i32, SourceError> {
        let version = self.version + 1;
        let key = self.table_mut(table)?.insert(version);
        self.version = version;
        Ok(key)
    }

    /// Updates a row (one transaction). False when it does not exist.
    pub fn update(&mut self, table: &str, key: i32) -> Result<bool, SourceError> {
        let version = self.version + 1;
        let done = self.table_mut(table)?.update(key, version);
        if done {
            self.version = version;
        }
        Ok(done)
    }

    /// Deletes a row (one transaction). False when it does not exist.
    pub fn delete(&mut self, table: &str, key: i32) -> Result<bool, SourceError> {
        let version = self.version + 1;
        let done = self.table_mut(table)?.delete(key, version);
        if done {
            self.version = version;
        }
        Ok(done)
    }

    /// A random existing key of `table`.
    pub fn random_live_key(&self, table: &str, rng: &mut Rng) -> Option<i32> {
        self.table(table)?.random_live_key(rng)
    }

    /// Adds a nullable column at the end; existing rows hold NULL in it until they are written.
    pub fn add_column(
        &mut self,
        table: &str,
        column: &str,
        ty: ColumnType,
    ) -> Result<(), SourceError> {
        let from = self.version + 1;
        self.table_mut(table)?.add_column(column, ty, from)
    }

    /// Widens a column (`nvarchar(99)` → `nvarchar(254)`): existing values stay as they are.
    pub fn widen_column(
        &mut self,
        table: &str,
        column: &str,
        ty: ColumnType,
    ) -> Result<(), SourceError> {
        let from = self.version + 1;
        self.table_mut(table)?.change_type(column, ty, from, false)
    }

    /// Changes a column to an incompatible type: every row's value is converted, without
    /// change-tracking entries (only a full reload can bring a mirror up to date).
    pub fn retype_column(
        &mut self,
        table: &str,
        column: &str,
        ty: ColumnType,
    ) -> Result<(), SourceError> {
        let from = self.version + 1;
        self.table_mut(table)?.change_type(column, ty, from, true)
    }

    /// Leaves a table out of (or back into) the mirroring: dropped at the source or skipped by the
    /// tenant's `SkipTable` preference.
    pub fn set_mirrored(&mut self, table: &str, mirrored: bool) -> Result<(), SourceError> {
        self.table_mut(table)?.set_mirrored(mirrored);
        Ok(())
    }

    /// Change-tracking cleanup ran: history before the current version is gone, so a mirror whose
    /// LSN is older must be reloaded.
    pub fn expire_history(&mut self) {
        self.min_valid = self.version;
    }
}

#[cfg(test)]
mod tests;
