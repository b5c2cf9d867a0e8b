//! Loading a collapsed batch into a PostgreSQL mirror table, set-based.
//!
//! - Direct (a table being reloaded): one `DELETE … = ANY($1)`, then binary `COPY` straight into
//!   the table, inside a savepoint; a duplicate key (23505) rolls back to the savepoint and the
//!   engine falls back to merging. The savepoint and the delete go out with the `COPY` (see
//!   `pipeline`), and the savepoint's release with the transaction's next statement.
//! - Merge: one `INSERT … SELECT * FROM unnest($1, $2, …) ON CONFLICT (key) DO UPDATE` with each
//!   column bound as one binary array parameter, then one `DELETE … = ANY($1)`. Binding the batch
//!   as arrays does the work of a staging table (the rows cross as binary, set-based, in one
//!   statement) without creating and dropping a temp table in every transaction, which costs
//!   catalog writes on every message.

use mirror_common::schema::TableSchema;
use mirror_common::value::Value;
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use super::copy::{ColumnArray, array_type, copy_rows, pg_type};
use super::error::classify;
use super::pipeline::{Deferred, pipelined, sent_with};
use crate::dialect::{Load, LoadOutcome, Render, Tenant};
use crate::error::ApplyError;
use crate::plan::Changes;

use super::render::PgRender;

const UNIQUE_VIOLATION: &str = "23505";

/// Applies `changes` to the tenant's table built from `schema`, after sending the transaction's
/// `pending` writes. Returns the writes to send next (they need no answer before then).
pub async fn apply(
    client: &Client,
    mut pending: Vec<Deferred>,
    tenant: &Tenant,
    schema: &TableSchema,
    changes: &Changes<'_>,
    load: Load,
) -> Result<(LoadOutcome, Vec<Deferred>), ApplyError> {
    let t = &schema.name;
    let r = PgRender;
    let table = r.table(tenant, t)?;
    let columns = schema
        .columns
        .iter()
        .map(|c| r.quote(&c.name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.for_table(t))?;
    let column_list = columns.join(", ");
    let key = &columns[0];
    let types: Vec<Type> = schema.columns.iter().map(|c| pg_type(c.ty)).collect();
    if changes.upserts.is_empty() {
        // Only deletes, which cannot conflict: nothing to wait for yet.
        pending.extend(delete(&table, key, &changes.deletes));
        return Ok((LoadOutcome::Applied, pending));
    }
    match load {
        Load::Direct => {
            pending.push(Deferred::new("SAVEPOINT mirror_direct"));
            pending.extend(delete(&table, key, &changes.deletes));
            let copy = format!("COPY {table} ({column_list}) FROM STDIN (FORMAT binary)");
            let copy = async {
                copy_rows(client, &copy, &types, &changes.upserts).await?;
                Ok(())
            };
            let (written, copied) = sent_with(client, pending, copy).await;
            written.map_err(|e| e.for_table(t))?;
            match copied {
                Ok(()) => Ok((
                    LoadOutcome::Applied,
                    vec![Deferred::new("RELEASE SAVEPOINT mirror_direct")],
                )),
                Err(ApplyError::Database { code, .. }) if code == UNIQUE_VIOLATION => Ok((
                    LoadOutcome::Conflict,
                    vec![Deferred::new("ROLLBACK TO SAVEPOINT mirror_direct")],
                )),
                Err(e) => Err(e.for_table(t)),
            }
        }
        Load::Merge => {
            // Keys are unique across upserts and deletes (collapsed): the order does not matter.
            let upsert = async {
                upsert_arrays(client, &table, &columns, &types, &changes.upserts)
                    .await
                    .map_err(classify)
            };
            pipelined(client, pending, upsert)
                .await
                .map_err(|e| e.for_table(t))?;
            Ok((
                LoadOutcome::Applied,
                delete(&table, key, &changes.deletes).into_iter().collect(),
            ))
        }
    }
}

/// The set-based delete of `keys`, when there are any.
fn delete(table: &str, key: &str, keys: &[i64]) -> Option<Deferred> {
    (!keys.is_empty())
        .then(|| Deferred::new(delete_keys_sql(table, key)).bind(keys.to_vec(), Type::INT8_ARRAY))
}

/// `DO UPDATE SET` every column but the key (column 0) from the proposed row; `DO NOTHING` for a
/// table that is only a key.
pub fn conflict_action(columns: &[String]) -> String {
    if columns.len() == 1 {
        return "DO NOTHING".to_owned();
    }
    let sets: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!("DO UPDATE SET {}", sets.join(", "))
}

/// One set-based upsert of `rows` into `table` (quoted, qualified): `INSERT … SELECT * FROM
/// unnest($1, $2, …) ON CONFLICT (key) …`, each of the quoted `columns` bound as one array of its
/// [`pg_type`]. Keys must be unique within `rows`.
pub async fn upsert_arrays(
    client: &Client,
    table: &str,
    columns: &[String],
    types: &[Type],
    rows: &[&[Value]],
) -> Result<u64, tokio_postgres::Error> {
    let placeholders: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::{}[]", i + 1, ty.name()))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) {}",
        columns.join(", "),
        placeholders.join(", "),
        columns[0],
        conflict_action(columns)
    );
    let arrays: Vec<ColumnArray<'_>> = (0..columns.len())
        .map(|column| ColumnArray { rows, column })
        .collect();
    let params: Vec<(&(dyn ToSql + Sync), Type)> = arrays
        .iter()
        .zip(types)
        .map(|(a, ty)| (a as &(dyn ToSql + Sync), array_type(ty)))
        .collect();
    client.execute_typed(&sql, &params).await
}

/// One `DELETE … WHERE key = ANY($1)` of `keys` from `table` (a missing row is not an error).
pub async fn delete_keys(
    client: &Client,
    table: &str,
    key: &str,
    keys: &[i64],
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute_typed(&delete_keys_sql(table, key), &[(&keys, Type::INT8_ARRAY)])
        .await
}

fn delete_keys_sql(table: &str, key: &str) -> String {
    format!("DELETE FROM {table} WHERE {key} = ANY($1::bigint[])")
}
