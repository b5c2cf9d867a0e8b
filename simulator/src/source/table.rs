//! One source table with SQL Server-style change tracking.
//!
//! Rows are not stored: the initial rows are the keys `1..=base_rows`, all written at one version,
//! and only keys changed since then have an entry (creation version, last change version, content
//! variant, deleted flag). Values are regenerated on demand from the variant, so a table of a
//! million rows with a few thousand changes costs a few thousand entries.

use std::collections::BTreeMap;

use mirror_common::schema::{ColumnType, RawColumn, RawTableSchema};
use mirror_common::value::Value;
use mirror_common::wire::Operation;

use super::SourceError;
use super::generate::{self, ColumnShape};
use super::prng::{Rng, hash_str};

/// A column and its history: the type it had from each version on, and since when it exists.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    name: String,
    name_hash: u64,
    /// `(since version, type)`, ascending; the first entry is the original type.
    types: Vec<(u64, ColumnType)>,
    nullable: bool,
    default: String,
    /// Rows last written before this version hold NULL here: the column was added later.
    added_at: u64,
}

impl SourceColumn {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's current type.
    pub fn ty(&self) -> ColumnType {
        self.types.last().map_or(ColumnType::Int, |(_, t)| *t)
    }

    pub fn nullable(&self) -> bool {
        self.nullable
    }

    /// The type a row written at `version` was generated with.
    fn type_at(&self, version: u64) -> ColumnType {
        self.types
            .iter()
            .rev()
            .find(|(since, _)| *since <= version)
            .or(self.types.first())
            .map_or(ColumnType::Int, |(_, t)| *t)
    }
}

/// One row's change-tracking entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyState {
    created: u64,
    last: u64,
    variant: u32,
    deleted: bool,
}

/// One change as `CHANGETABLE(CHANGES …)` reports it: the key, its last change version, and the
/// net operation since the version asked about (insert-then-update is `I`, update-then-delete `D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub key: i32,
    pub op: Operation,
    pub version: u64,
}

#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    hash: u64,
    seed: u64,
    columns: Vec<SourceColumn>,
    mirrored: bool,
    base_rows: i32,
    base_version: u64,
    overrides: BTreeMap<i32, KeyState>,
    next_key: i32,
    live: u64,
    /// Every row's content is regenerated from this version on (an incompatible type change).
    rewritten_at: u64,
}

impl Table {
    /// A table of `rows` rows (keys `1..=rows`) all written at `base_version`.
    pub fn new(
        raw: &RawTableSchema,
        seed: u64,
        rows: i32,
        base_version: u64,
    ) -> Result<Table, SourceError> {
        let table = raw.validate()?;
        let columns = table
            .columns
            .iter()
            .zip(&raw.columns)
            .map(|(c, r)| SourceColumn {
                name: c.name.clone(),
                name_hash: hash_str(&c.name),
                types: vec![(0, c.ty)],
                nullable: c.nullable,
                default: r.default.clone(),
                added_at: 0,
            })
            .collect();
        Ok(Table {
            name: table.name,
            hash: hash_str(&raw.name),
            seed,
            columns,
            mirrored: true,
            base_rows: rows.max(0),
            base_version,
            overrides: BTreeMap::new(),
            next_key: rows.max(0).saturating_add(1),
            live: u64::try_from(rows.max(0)).unwrap_or(0),
            rewritten_at: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn columns(&self) -> &[SourceColumn] {
        &self.columns
    }

    /// False when the table is dropped at the source or skipped by the tenant: it is left out of
    /// TableSchema and of every later call.
    pub fn mirrored(&self) -> bool {
        self.mirrored
    }

    pub(super) fn set_mirrored(&mut self, mirrored: bool) {
        self.mirrored = mirrored;
    }

    /// Number of rows that currently exist.
    pub fn live_rows(&self) -> u64 {
        self.live
    }

    /// The schema as the Mirroring Task sends it.
    pub fn schema(&self) -> RawTableSchema {
        RawTableSchema {
            name: self.name.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| RawColumn {
                    name: c.name.clone(),
                    ty: c.ty().to_string(),
                    nullable: c.nullable,
                    default: c.default.clone(),
                })
                .collect(),
        }
    }

    fn base_state(&self) -> KeyState {
        KeyState {
            created: self.base_version,
            last: self.base_version,
            variant: 0,
            deleted: false,
        }
    }

    fn state(&self, key: i32) -> Option<KeyState> {
        match self.overrides.get(&key) {
            Some(s) => Some(*s),
            None if (1..=self.base_rows).contains(&key) => Some(self.base_state()),
            None => None,
        }
    }

    /// Every key that ever existed (deleted ones included while tracked), in key order.
    fn states(&self) -> impl Iterator<Item = (i32, KeyState)> + '_ {
        let base = self.base_state();
        let mut overrides = self.overrides.iter().peekable();
        let mut next_base = 1i32;
        std::iter::from_fn(move || {
            if next_base <= self.base_rows {
                let key = next_base;
                next_base += 1;
                return match overrides.next_if(|(k, _)| **k == key) {
                    Some((k, s)) => Some((*k, *s)),
                    None => Some((key, base)),
                };
            }
            overrides.next().map(|(k, s)| (*k, *s))
        })
    }

    /// The keys of all existing rows, ascending.
    pub fn live_keys(&self) -> impl Iterator<Item = i32> + '_ {
        self.states().filter(|(_, s)| !s.deleted).map(|(k, _)| k)
    }

    /// Every existing row as an insert: what a full (re)load sends.
    pub fn everything(&self) -> impl Iterator<Item = Change> + '_ {
        self.states()
            .filter(|(_, s)| !s.deleted)
            .map(|(key, s)| Change {
                key,
                op: Operation::Insert,
                version: s.last,
            })
    }

    /// The net changes after version `since`, ascending by key, like `CHANGETABLE(CHANGES t, since)`.
    pub fn changes_since(&self, since: u64) -> impl Iterator<Item = Change> + '_ {
        self.states()
            .filter(move |(_, s)| s.last > since)
            .map(move |(key, s)| Change {
                key,
                op: if s.deleted {
                    Operation::Delete
                } else if s.created > since {
                    Operation::Insert
                } else {
                    Operation::Update
                },
                version: s.last,
            })
    }

    /// The current values of an existing row, in column order; `None` when it does not exist.
    pub fn row(&self, key: i32) -> Option<Vec<Value>> {
        let state = self.state(key).filter(|s| !s.deleted)?;
        Some(self.values(key, state))
    }

    fn values(&self, key: i32, state: KeyState) -> Vec<Value> {
        let written = state.last.max(self.rewritten_at);
        let mut out = Vec::with_capacity(self.columns.len());
        out.push(Value::Int(key));
        for column in self.columns.iter().skip(1) {
            if written < column.added_at {
                out.push(Value::Null);
                continue;
            }
            out.push(generate::value(
                self.seed,
                self.hash,
                key,
                state.variant,
                ColumnShape {
                    name: &column.name,
                    name_hash: column.name_hash,
                    ty: column.type_at(written),
                    nullable: column.nullable,
                },
            ));
        }
        out
    }

    /// Inserts a new row at `version`; returns its key.
    pub(super) fn insert(&mut self, version: u64) -> i32 {
        let key = self.next_key;
        self.next_key = self.next_key.saturating_add(1);
        self.overrides.insert(
            key,
            KeyState {
                created: version,
                last: version,
                variant: 0,
                deleted: false,
            },
        );
        self.live += 1;
        key
    }

    /// Changes an existing row's content at `version`. False when the row does not exist.
    pub(super) fn update(&mut self, key: i32, version: u64) -> bool {
        let Some(mut state) = self.state(key).filter(|s| !s.deleted) else {
            return false;
        };
        state.last = version;
        state.variant = state.variant.wrapping_add(1);
        self.overrides.insert(key, state);
        true
    }

    /// Deletes an existing row at `version`. False when the row does not exist.
    pub(super) fn delete(&mut self, key: i32, version: u64) -> bool {
        let Some(mut state) = self.state(key).filter(|s| !s.deleted) else {
            return false;
        };
        state.last = version;
        state.deleted = true;
        self.overrides.insert(key, state);
        self.live = self.live.saturating_sub(1);
        true
    }

    /// A random existing key, if the table has rows.
    pub(super) fn random_live_key(&self, rng: &mut Rng) -> Option<i32> {
        if self.live == 0 {
            return None;
        }
        let span = u64::try_from(self.next_key.saturating_sub(1)).unwrap_or(0);
        for _ in 0..64 {
            let key = 1 + rng.below(span) as i32;
            if self.state(key).is_some_and(|s| !s.deleted) {
                return Some(key);
            }
        }
        self.live_keys().next()
    }

    /// Appends a nullable column; rows written before `version` hold NULL in it.
    pub(super) fn add_column(
        &mut self,
        name: &str,
        ty: ColumnType,
        version: u64,
    ) -> Result<(), SourceError> {
        mirror_common::schema::check_identifier(name)?;
        if self
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        {
            return Err(SourceError::DuplicateColumn {
                table: self.name.clone(),
                column: name.to_owned(),
            });
        }
        self.columns.push(SourceColumn {
            name: name.to_owned(),
            name_hash: hash_str(name),
            types: vec![(0, ty)],
            nullable: true,
            default: String::new(),
            added_at: version,
        });
        Ok(())
    }

    /// Changes a column's type from `version` on. A compatible change (widening) keeps the rows
    /// already written; an incompatible one converts every row, as SQL Server's table rebuild does
    /// (without change-tracking entries: only a full reload brings the mirror up to date).
    pub(super) fn change_type(
        &mut self,
        column: &str,
        ty: ColumnType,
        version: u64,
        rewrite_rows: bool,
    ) -> Result<(), SourceError> {
        let index = self
            .columns
            .iter()
            .position(|c| c.name == column)
            .filter(|i| *i > 0)
            .ok_or_else(|| SourceError::UnknownColumn {
                table: self.name.clone(),
                column: column.to_owned(),
            })?;
        let col = &mut self.columns[index];
        col.types.push((version, ty));
        if rewrite_rows {
            self.rewritten_at = version;
        }
        Ok(())
    }
}
