//! Loading a collapsed batch into a PostgreSQL mirror table, set-based.
//!
//! - Direct (a table being reloaded): one `DELETE … = ANY($1)`, then binary `COPY` straight into
//!   the table, inside a savepoint; a duplicate key (23505) rolls back to the savepoint and the
//!   engine falls back to merging.
//! - Merge: binary `COPY` into an `ON COMMIT DROP` temp table, one
//!   `INSERT … SELECT … ON CONFLICT (key) DO UPDATE`, one `DELETE … = ANY($1)`.

use mirror_common::schema::TableSchema;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::copy::{copy_rows, pg_type};
use super::error::classify;
use crate::dialect::{Load, LoadOutcome, Render, Tenant};
use crate::error::ApplyError;
use crate::plan::Changes;

use super::render::PgRender;

const UNIQUE_VIOLATION: &str = "23505";

/// Applies `changes` to the tenant's table built from `schema`. `stage` is a name for the temp
/// table, unique within the transaction.
pub async fn apply(
    client: &Client,
    tenant: &Tenant,
    schema: &TableSchema,
    changes: &Changes<'_>,
    load: Load,
    stage: &str,
) -> Result<LoadOutcome, ApplyError> {
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
    match load {
        Load::Direct => {
            client
                .batch_execute("SAVEPOINT mirror_direct")
                .await
                .map_err(classify)?;
            let loaded = async {
                delete(client, &table, key, &changes.deletes).await?;
                if !changes.upserts.is_empty() {
                    let copy = format!("COPY {table} ({column_list}) FROM STDIN (FORMAT binary)");
                    copy_rows(client, &copy, &types, &changes.upserts).await?;
                }
                Ok::<(), ApplyError>(())
            }
            .await;
            match loaded {
                Ok(()) => {
                    client
                        .batch_execute("RELEASE SAVEPOINT mirror_direct")
                        .await
                        .map_err(|e| classify(e).for_table(t))?;
                    Ok(LoadOutcome::Applied)
                }
                Err(ApplyError::Database { code, .. }) if code == UNIQUE_VIOLATION => {
                    client
                        .batch_execute("ROLLBACK TO SAVEPOINT mirror_direct")
                        .await
                        .map_err(|e| classify(e).for_table(t))?;
                    Ok(LoadOutcome::Conflict)
                }
                Err(e) => Err(e.for_table(t)),
            }
        }
        Load::Merge => {
            merge(
                client,
                &table,
                &column_list,
                &columns,
                &types,
                changes,
                stage,
            )
            .await
            .map_err(|e| e.for_table(t))?;
            Ok(LoadOutcome::Applied)
        }
    }
}

async fn delete(client: &Client, table: &str, key: &str, keys: &[i64]) -> Result<(), ApplyError> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!("DELETE FROM {table} WHERE {key} = ANY($1::bigint[])");
    client.execute(&sql, &[&keys]).await.map_err(classify)?;
    Ok(())
}

async fn merge(
    client: &Client,
    table: &str,
    column_list: &str,
    columns: &[String],
    types: &[Type],
    changes: &Changes<'_>,
    stage: &str,
) -> Result<(), ApplyError> {
    let key = &columns[0];
    if !changes.upserts.is_empty() {
        let stage = PgRender.quote(stage)?;
        client
            .batch_execute(&format!(
                "CREATE TEMP TABLE {stage} ON COMMIT DROP AS \
                 SELECT {column_list} FROM {table} WITH NO DATA"
            ))
            .await
            .map_err(classify)?;
        let copy = format!("COPY {stage} ({column_list}) FROM STDIN (FORMAT binary)");
        copy_rows(client, &copy, types, &changes.upserts).await?;
        let action = if columns.len() == 1 {
            "DO NOTHING".to_owned()
        } else {
            let sets: Vec<String> = columns[1..]
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            format!("DO UPDATE SET {}", sets.join(", "))
        };
        client
            .batch_execute(&format!(
                "INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage} \
                 ON CONFLICT ({key}) {action}"
            ))
            .await
            .map_err(classify)?;
    }
    delete(client, table, key, &changes.deletes).await
}
