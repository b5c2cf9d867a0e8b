//! Looking into a tenant's mirror in PostgreSQL: one schema per tenant (`Mirror_<contextId>` by
//! default) holding the mirrored tables and the state table `<contextId>_mirroring`.

use std::collections::BTreeMap;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Row};

use crate::DATABASE_URL;

/// `"name"`, with embedded quotes doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// One tenant's mirror, through a connection of the test's own.
pub struct Mirror {
    client: Client,
    schema: String,
    tenant: String,
    connection: JoinHandle<()>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A table's row of the state table, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    pub lsn: i64,
    pub quarantine: Option<String>,
}

impl Mirror {
    /// Connects to the mirror of `tenant`, stored in schema `schema`.
    pub async fn connect(tenant: &str, schema: &str) -> Mirror {
        let (client, connection) = tokio_postgres::connect(DATABASE_URL, NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Mirror {
            client,
            schema: schema.to_owned(),
            tenant: tenant.to_owned(),
            connection,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `"Mirror_X"."table"`.
    pub fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    /// The name of the state table, `<contextId>_mirroring`.
    pub fn state_table_name(&self) -> String {
        format!("{}_mirroring", self.tenant)
    }

    /// The state table, qualified.
    pub fn state_table(&self) -> String {
        self.qualified(&self.state_table_name())
    }

    /// Runs statements as an operator would (several may be separated by `;`).
    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn query(&self, sql: &str) -> Vec<Row> {
        self.client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn table_exists(&self, table: &str) -> bool {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                &[&self.schema, &table],
            )
            .await
            .expect("pg_tables");
        row.get::<_, i64>(0) == 1
    }

    /// Mirrored tables (the state tables left out), by name.
    pub async fn tables(&self) -> Vec<String> {
        let prefix = format!("{}_mirroring", self.tenant);
        self.client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[&self.schema],
            )
            .await
            .expect("pg_tables")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|t| !t.starts_with(&prefix))
            .collect()
    }

    /// `(column, type as PostgreSQL spells it, nullable)` of a table, in column order.
    pub async fn columns(&self, table: &str) -> Vec<(String, String, bool)> {
        self.client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
                 FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&self.schema, &table],
            )
            .await
            .expect("pg_attribute")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {}", self.qualified(table));
        self.query(&sql).await[0].get(0)
    }

    /// Every row of `table` with every column as text, ordered by the key (the first column).
    pub async fn rows(&self, table: &str) -> Vec<Vec<Option<String>>> {
        let columns = self.columns(table).await;
        let list: Vec<String> = columns
            .iter()
            .map(|(name, _, _)| format!("{}::text", quote(name)))
            .collect();
        let Some((key, _, _)) = columns.first() else {
            panic!("table {table} does not exist in {}", self.schema);
        };
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            list.join(", "),
            self.qualified(table),
            quote(key)
        );
        self.query(&sql)
            .await
            .iter()
            .map(|row| (0..columns.len()).map(|i| row.get(i)).collect())
            .collect()
    }

    /// The LSN of every table in the state table (empty when there is no state table).
    pub async fn lsns(&self) -> BTreeMap<String, i64> {
        if !self.table_exists(&self.state_table_name()).await {
            return BTreeMap::new();
        }
        let sql = format!("SELECT tablename::text, lsn FROM {}", self.state_table());
        self.query(&sql)
            .await
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// A table's row of the state table.
    pub async fn state(&self, table: &str) -> Option<TableState> {
        let sql = format!(
            "SELECT lsn, quarantine FROM {} WHERE tablename = $1",
            self.state_table()
        );
        self.client
            .query_opt(&sql, &[&table])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .map(|r| TableState {
                lsn: r.get(0),
                quarantine: r.get(1),
            })
    }
}
