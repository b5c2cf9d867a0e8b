//! Shared harness of the engine tests: a unique tenant per test on the local PostgreSQL, envelope
//! builders, and a plain client to look at what the engine wrote. The tenant's schema is dropped
//! when the harness goes out of scope, also when the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mirror_applier::engine::{Applied, Engine, EngineOptions};
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::{RawColumn, RawTableSchema, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{
    Envelope, Message, Operation, ReplicationSummary, Row, RowBatch, SchemaReply, TableLsn,
};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

pub const URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct Harness {
    pub engine: Engine,
    pub tenant: String,
    pub schema: String,
    pub db: Client,
    pub settings: DatabaseSettings,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    /// A harness whose settings `adjust` may change (hooks folder, dropping absent tables).
    pub async fn with(adjust: impl FnOnce(&mut DatabaseSettings)) -> Harness {
        let tenant = format!("Test{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut settings = DatabaseSettings {
            url: URL.into(),
            ..DatabaseSettings::default()
        };
        adjust(&mut settings);
        let mut options = EngineOptions::default();
        options.postgres.pool_size = 4;
        let engine = Engine::connect_with(&settings, options).await.unwrap();
        let (db, conn) = tokio_postgres::connect(URL, NoTls).await.unwrap();
        tokio::spawn(conn);
        Harness {
            engine,
            schema: format!("Mirror_{tenant}"),
            tenant,
            db,
            settings,
        }
    }

    /// An envelope of this tenant with a fresh id.
    pub fn envelope(&self, message: Message) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            tenant: self.tenant.clone(),
            received_at_ms: chrono::Utc::now().timestamp_millis(),
            trace_id: "test".into(),
            message,
        }
    }

    pub async fn apply(&self, message: Message) -> Applied {
        let env = self.envelope(message);
        self.engine.apply(&env).await.unwrap()
    }

    /// Applies a TableSchema call and returns its LSNs by table.
    pub async fn schema_call(&self, tables: &[TableSchema]) -> Vec<(String, i64)> {
        lsns(
            self.apply(Message::TableSchema {
                tables: tables.to_vec(),
            })
            .await,
        )
    }

    pub async fn rows(&self, table: &TableSchema, lsn: i64, rows: Vec<Row>) -> Applied {
        self.apply(rowdata(table, lsn, rows)).await
    }

    pub async fn wipe(&self, table: &str) -> Applied {
        self.apply(Message::Wipe {
            table: table.into(),
        })
        .await
    }

    pub async fn completed(&self, tables: &[&str]) -> Applied {
        self.apply(Message::ReplicationCompleted {
            summaries: tables
                .iter()
                .map(|t| ReplicationSummary {
                    table: (*t).into(),
                    inserts: 1,
                    updates: 0,
                    deletes: 0,
                })
                .collect(),
        })
        .await
    }

    /// `"Mirror_X"."table"`.
    pub fn qualified(&self, table: &str) -> String {
        format!("\"{}\".\"{table}\"", self.schema)
    }

    pub fn state_table(&self) -> String {
        self.qualified(&format!("{}_mirroring", self.tenant))
    }

    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.db.query(sql, &[]).await.unwrap()
    }

    pub async fn exec(&self, sql: &str) {
        self.db.batch_execute(sql).await.unwrap();
    }

    /// `(key, text of column 1)` of every row, by key.
    pub async fn key_text(&self, table: &str, column: &str) -> Vec<(i32, Option<String>)> {
        let sql = format!(
            "SELECT {table}_id, \"{column}\"::text FROM {} ORDER BY 1",
            self.qualified(table)
        );
        self.query(&sql)
            .await
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {}", self.qualified(table));
        self.query(&sql).await[0].get(0)
    }

    /// `(lsn, epoch, quarantine)` of a table's state row.
    pub async fn state(&self, table: &str) -> Option<(i64, i64, Option<String>)> {
        let sql = format!(
            "SELECT lsn, epoch, quarantine FROM {} WHERE tablename = $1",
            self.state_table()
        );
        self.db
            .query_opt(&sql, &[&table])
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    pub async fn table_exists(&self, table: &str) -> bool {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                &[&self.schema, &table],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) == 1
    }

    /// `(column, data type, nullable)` as PostgreSQL describes the table.
    pub async fn columns(&self, table: &str) -> Vec<(String, String, bool)> {
        self.db
            .query(
                "SELECT column_name::text, \
                        format_type(a.atttypid, a.atttypmod), is_nullable = 'YES' \
                 FROM information_schema.columns c \
                 JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass \
                                     AND a.attname = c.column_name \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let sql = format!(
            "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        );
        // A fresh runtime on its own thread: this runs inside the test's runtime, whose other
        // worker keeps serving the engine's connections (tests use the multi-thread flavour).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(URL, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// A validated table from `(name, type, nullable, default clause)` columns.
pub fn table(name: &str, cols: &[(&str, &str, bool, &str)]) -> TableSchema {
    RawTableSchema {
        name: name.into(),
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

/// A simple SuperOffice-like table: `<name>_id int`, `name nvarchar(50)`, `n int`.
pub fn simple(name: &str) -> TableSchema {
    let id = format!("{name}_id");
    table(
        name,
        &[
            (id.as_str(), "int", false, ""),
            ("name", "nvarchar(50)", true, "default (N'')"),
            ("n", "int", true, ""),
        ],
    )
}

pub fn upsert(op: Operation, key: i32, name: &str) -> Row {
    Row {
        op,
        values: vec![
            Value::Int(key),
            Value::Text(name.into()),
            Value::Int(key * 10),
        ],
    }
}

pub fn ins(key: i32, name: &str) -> Row {
    upsert(Operation::Insert, key, name)
}

pub fn upd(key: i32, name: &str) -> Row {
    upsert(Operation::Update, key, name)
}

pub fn del(key: i32) -> Row {
    Row {
        op: Operation::Delete,
        values: vec![Value::Int(key)],
    }
}

pub fn rowdata(table: &TableSchema, lsn: i64, rows: Vec<Row>) -> Message {
    Message::RowData {
        batches: vec![RowBatch {
            table: table.clone(),
            lsn,
            rows,
        }],
    }
}

pub fn lsns(applied: Applied) -> Vec<(String, i64)> {
    let reply = match applied {
        Applied::Done { reply } | Applied::Duplicate { reply } => reply,
        Applied::Parked => None,
    };
    match reply {
        Some(SchemaReply::Applied { lsns }) => lsns
            .into_iter()
            .map(|TableLsn { table, lsn }| (table, lsn))
            .collect(),
        other => panic!("expected LSNs, got {other:?}"),
    }
}

pub fn hooks_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mirror-hooks-{}", Uuid::new_v4().simple()))
}
