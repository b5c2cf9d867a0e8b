//! The SQL text of loading a batch, of a session and of a transaction on SQL Server. Pure
//! functions, checked by the golden tests; values are always bound (`@P1`…) or bulk-loaded.
//!
//! Merging a batch into a populated table (never a statement per row):
//! 1. `CREATE TABLE [#mirror_stage]` — a session temp table shaped like the mirror table, keyed
//!    like it (the primary key makes the join below a merge of two sorted indexes);
//! 2. the upserts loaded into it: `INSERT BULK`, or multi-row `INSERT … VALUES` for column types
//!    the driver cannot bulk-load (see `bulk`);
//! 3. one `UPDATE m SET … FROM … JOIN [#mirror_stage]` and one `INSERT … SELECT … WHERE NOT
//!    EXISTS` (or one `MERGE … WITH (HOLDLOCK)`, see [`Upsert`]);
//! 4. `DROP TABLE [#mirror_stage]`: temp tables live as long as the session, and sessions are
//!    pooled;
//! 5. one `DELETE … WHERE key IN (SELECT … FROM OPENJSON(@P1))`: the keys travel as one JSON array
//!    parameter, whatever their number.
//!
//! A table being (re)loaded gets its rows bulk-loaded straight in, after one check that none of
//! the keys is there yet (`SELECT TOP (1) … OPENJSON`): if one is, nothing was changed and the
//! engine merges instead.

use std::ops::Range;

use mirror_common::schema::TableSchema;

use super::render::MssqlRender;
use crate::dialect::{Render, Tenant};
use crate::error::ApplyError;

/// The session temp table the upserts are staged in.
pub const STAGE: &str = "[#mirror_stage]";

/// Parameters one request may carry: SQL Server takes at most 2,100, and `sp_executesql` (how
/// drivers send parameterised statements) uses two of them for the statement text and the
/// parameter declarations.
pub const MAX_PARAMS: usize = 2_098;

/// Rows one `INSERT … VALUES` table constructor may hold.
pub const MAX_VALUES_ROWS: usize = 1_000;

/// How staged upserts reach the mirror table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upsert {
    /// `UPDATE … FROM … JOIN` then `INSERT … WHERE NOT EXISTS`: two plain statements, no MERGE
    /// caveats.
    #[default]
    UpdateThenInsert,
    /// One `MERGE … WITH (HOLDLOCK)`.
    Merge,
}

/// Run once on every new connection: the settings SQL Server needs for consistent results
/// (`ANSI_WARNINGS` makes truncation an error instead of silent), `XACT_ABORT OFF` so an error
/// leaves the transaction to the caller, `DATEFORMAT ymd` so date defaults read the same
/// everywhere, and a lock timeout so a blocked statement fails (transiently) instead of waiting
/// for the command timeout.
pub fn session_setup(lock_timeout_ms: u64) -> Vec<String> {
    vec![
        "SET ANSI_NULLS, ANSI_PADDING, ANSI_WARNINGS, ARITHABORT, CONCAT_NULL_YIELDS_NULL, \
         QUOTED_IDENTIFIER ON"
            .to_owned(),
        "SET NUMERIC_ROUNDABORT OFF".to_owned(),
        "SET XACT_ABORT OFF".to_owned(),
        "SET DATEFORMAT ymd".to_owned(),
        format!("SET LOCK_TIMEOUT {lock_timeout_ms}"),
    ]
}

pub const BEGIN: &str = "BEGIN TRANSACTION";
/// Opens an operator's hook script: any error rolls its whole transaction back.
pub const HOOK_BEGIN: [&str; 2] = ["SET XACT_ABORT ON", BEGIN];
pub const COMMIT: &str = "COMMIT TRANSACTION";
pub const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";
pub const PING: &str = "SELECT 1";
/// The id of a database by name (NULL when it does not exist).
pub const DATABASE_ID: &str = "SELECT DB_ID(@P1)";

/// Rows per `INSERT … VALUES` statement for a table of `columns` columns.
pub fn rows_per_insert(columns: usize) -> usize {
    (MAX_PARAMS / columns.max(1)).clamp(1, MAX_VALUES_ROWS)
}

/// The row ranges of successive `INSERT … VALUES` statements for `rows` rows.
pub fn insert_chunks(rows: usize, columns: usize) -> impl Iterator<Item = Range<usize>> {
    let step = rows_per_insert(columns);
    (0..rows)
        .step_by(step)
        .map(move |start| start..(start + step).min(rows))
}

/// The statements that load a batch into one mirror table.
#[derive(Debug, Clone)]
pub struct LoadSql {
    /// `[db].[dbo].[table]`
    pub table: String,
    /// Quoted column names, in the schema's order (the order values arrive in).
    pub columns: Vec<String>,
    /// Column definitions of the stage table.
    stage_defs: Vec<String>,
}

impl LoadSql {
    pub fn new(tenant: &Tenant, schema: &TableSchema) -> Result<LoadSql, ApplyError> {
        let r = MssqlRender;
        let table = r.table(tenant, &schema.name)?;
        let columns = schema
            .columns
            .iter()
            .map(|c| r.quote(&c.name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.for_table(&schema.name))?;
        let stage_defs = schema
            .columns
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(i, (c, q))| {
                let ty = r.column_type(c.ty);
                if i == 0 {
                    format!("{q} {ty} NOT NULL PRIMARY KEY")
                } else {
                    format!("{q} {ty} NULL")
                }
            })
            .collect();
        Ok(LoadSql {
            table,
            columns,
            stage_defs,
        })
    }

    fn key(&self) -> &str {
        &self.columns[0]
    }

    fn column_list(&self) -> String {
        self.columns.join(", ")
    }

    fn prefixed(&self, alias: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The stage table: the key `NOT NULL PRIMARY KEY` (an unnamed constraint: temp-table
    /// constraint names would collide between sessions), every other column nullable.
    pub fn create_stage(&self) -> String {
        format!("CREATE TABLE {STAGE} ({})", self.stage_defs.join(", "))
    }

    pub fn drop_stage(&self) -> String {
        format!("DROP TABLE {STAGE}")
    }

    /// Updates the rows that exist; `None` for a table that is only its key.
    pub fn update_from_stage(&self) -> Option<String> {
        let sets = self.update_sets()?;
        Some(format!(
            "UPDATE m SET {sets} FROM {table} AS m INNER JOIN {STAGE} AS s ON m.{key} = s.{key}",
            table = self.table,
            key = self.key()
        ))
    }

    /// Inserts the rows that do not exist.
    pub fn insert_from_stage(&self) -> String {
        format!(
            "INSERT INTO {table} ({cols}) SELECT {staged} FROM {STAGE} AS s WHERE NOT EXISTS \
             (SELECT 1 FROM {table} AS m WITH (UPDLOCK, HOLDLOCK) WHERE m.{key} = s.{key})",
            table = self.table,
            cols = self.column_list(),
            staged = self.prefixed("s"),
            key = self.key()
        )
    }

    /// Both of the above as one `MERGE`. `HOLDLOCK` closes MERGE's race between the match and
    /// the insert (two sessions inserting the same key).
    pub fn merge_from_stage(&self) -> String {
        let matched = match self.update_sets() {
            Some(sets) => format!(" WHEN MATCHED THEN UPDATE SET {sets}"),
            None => String::new(),
        };
        format!(
            "MERGE INTO {table} WITH (HOLDLOCK) AS m USING {STAGE} AS s ON m.{key} = s.{key}\
             {matched} WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}) VALUES ({staged});",
            table = self.table,
            key = self.key(),
            cols = self.column_list(),
            staged = self.prefixed("s"),
        )
    }

    fn update_sets(&self) -> Option<String> {
        (self.columns.len() >= 2).then(|| {
            self.columns[1..]
                .iter()
                .map(|c| format!("m.{c} = s.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// Deletes the keys of `@P1`, a JSON array of integers.
    pub fn delete_keys(&self) -> String {
        format!(
            "DELETE FROM {table} WHERE {key} IN (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))",
            table = self.table,
            key = self.key()
        )
    }

    /// A row when any key of `@P1` (a JSON array of integers) is in the table.
    pub fn any_key_exists(&self) -> String {
        format!(
            "SELECT TOP (1) 1 FROM {table} WHERE {key} IN \
             (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))",
            table = self.table,
            key = self.key()
        )
    }

    /// `INSERT INTO <target> (…) VALUES (@P1, …), (…)` for `rows` rows, parameters numbered row
    /// by row. Keep `rows` within [`rows_per_insert`].
    pub fn insert_values(&self, target: &str, rows: usize) -> String {
        let width = self.columns.len();
        let mut sql = format!("INSERT INTO {target} ({}) VALUES ", self.column_list());
        sql.reserve(rows * width * 7);
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("@P{}", r * width + c + 1));
            }
            sql.push(')');
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_parameter_and_row_caps() {
        assert_eq!(rows_per_insert(1), 1_000);
        assert_eq!(rows_per_insert(2), 1_000);
        assert_eq!(rows_per_insert(3), 699);
        assert_eq!(rows_per_insert(111), 18);
        assert_eq!(rows_per_insert(1_024), 2);
        assert_eq!(rows_per_insert(5_000), 1);
        let chunks: Vec<_> = insert_chunks(100, 111).collect();
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks[0], 0..18);
        assert_eq!(chunks[5], 90..100);
        assert!(chunks.iter().all(|c| c.len() * 111 <= MAX_PARAMS));
        assert_eq!(insert_chunks(0, 3).count(), 0);
        assert_eq!(insert_chunks(699, 3).count(), 1);
        assert_eq!(insert_chunks(700, 3).count(), 2);
    }
}
