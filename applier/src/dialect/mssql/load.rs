//! Applying a collapsed batch to a SQL Server mirror table, set-based (the statements and their
//! reasons: `statement`; how rows travel: `bulk`).

use mirror_common::schema::TableSchema;
use mirror_common::value::Value;
use tiberius::ToSql;

use super::bulk::{self, Destination};
use super::error::{classify, client};
use super::pool::{Client, batch};
use super::statement::{LoadSql, STAGE, Upsert};
use crate::dialect::{Load, LoadOutcome, Tenant};
use crate::error::ApplyError;
use crate::plan::{Changes, key_of};

/// Applies `changes` to the tenant's table built from `schema`.
pub async fn apply(
    client: &mut Client,
    tenant: &Tenant,
    schema: &TableSchema,
    changes: &Changes<'_>,
    load: Load,
    upsert: Upsert,
) -> Result<LoadOutcome, ApplyError> {
    let t = &schema.name;
    let sql = LoadSql::new(tenant, schema)?;
    let outcome = match load {
        Load::Direct => direct(client, &sql, schema, changes).await,
        Load::Merge => merge(client, &sql, schema, changes, upsert)
            .await
            .map(|()| LoadOutcome::Applied),
    };
    outcome.map_err(|e| e.for_table(t))
}

/// Straight into the table, unless one of the upserted keys is already there: then nothing is
/// changed and the engine merges instead.
async fn direct(
    client: &mut Client,
    sql: &LoadSql,
    schema: &TableSchema,
    changes: &Changes<'_>,
) -> Result<LoadOutcome, ApplyError> {
    if !changes.upserts.is_empty() {
        let keys = upsert_keys(&changes.upserts)?;
        let found = client
            .query(sql.any_key_exists(), &[&keys as &dyn ToSql])
            .await
            .map_err(classify)?
            .into_first_result()
            .await
            .map_err(classify)?;
        if !found.is_empty() {
            return Ok(LoadOutcome::Conflict);
        }
    }
    delete(client, sql, &changes.deletes).await?;
    bulk::load(
        client,
        sql,
        &sql.table,
        schema,
        &changes.upserts,
        Destination::Table,
    )
    .await?;
    Ok(LoadOutcome::Applied)
}

async fn merge(
    client: &mut Client,
    sql: &LoadSql,
    schema: &TableSchema,
    changes: &Changes<'_>,
    upsert: Upsert,
) -> Result<(), ApplyError> {
    if !changes.upserts.is_empty() {
        run(client, &sql.create_stage()).await?;
        bulk::load(
            client,
            sql,
            STAGE,
            schema,
            &changes.upserts,
            Destination::Stage,
        )
        .await?;
        match upsert {
            Upsert::UpdateThenInsert => {
                if let Some(update) = sql.update_from_stage() {
                    run(client, &update).await?;
                }
                run(client, &sql.insert_from_stage()).await?;
            }
            Upsert::Merge => run(client, &sql.merge_from_stage()).await?,
        }
        run(client, &sql.drop_stage()).await?;
    }
    delete(client, sql, &changes.deletes).await
}

async fn delete(client: &mut Client, sql: &LoadSql, keys: &[i64]) -> Result<(), ApplyError> {
    if keys.is_empty() {
        return Ok(());
    }
    let json = json_keys(keys.iter().copied());
    client
        .execute(sql.delete_keys(), &[&json as &dyn ToSql])
        .await
        .map_err(classify)?;
    Ok(())
}

/// One statement without parameters, as a batch: the stage table must belong to the session,
/// not to one `sp_executesql` call.
async fn run(client: &mut Client, statement: &str) -> Result<(), ApplyError> {
    batch(client, statement).await
}

fn upsert_keys(rows: &[&[Value]]) -> Result<String, ApplyError> {
    let keys = rows
        .iter()
        .map(|row| {
            row.first()
                .and_then(key_of)
                .ok_or_else(|| client("a row without an integer key".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_keys(keys))
}

/// `[1,2,3]`: keys as one JSON parameter for `OPENJSON`.
pub fn json_keys(keys: impl IntoIterator<Item = i64>) -> String {
    let mut out = String::from("[");
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&key.to_string());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_travel_as_a_json_array() {
        assert_eq!(json_keys([]), "[]");
        assert_eq!(json_keys([1, -2, i64::MAX]), "[1,-2,9223372036854775807]");
        let a = [Value::Int(5), Value::Text("x".into())];
        let b = [Value::BigInt(6)];
        assert_eq!(upsert_keys(&[&a, &b]).unwrap(), "[5,6]");
        let bad = [Value::Text("x".into())];
        assert!(upsert_keys(&[&bad]).is_err());
    }
}
