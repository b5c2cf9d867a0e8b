//! The live SQL Server harness: a unique tenant database per test on the server named by
//! `MIRROR_TEST_MSSQL`, envelope helpers, and a plain client to look at what the engine wrote.
//! The tenant database is dropped when the harness goes out of scope, also when the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod typed;

use std::time::Duration;

use mirror_applier::dialect::mssql::pool::Client;
use mirror_applier::dialect::mssql::render::MssqlRender;
use mirror_applier::dialect::mssql::{MssqlBackend, MssqlOptions, target};
use mirror_applier::dialect::{Render, Tenant};
use mirror_applier::engine::{Applied, Engine};
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::TableSchema;
use mirror_common::wire::{Envelope, Message, ReplicationSummary, Row};
use tiberius::ToSql;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::compat::TokioAsyncWriteCompatExt;
use uuid::Uuid;

use crate::engine_support::{lsns, rowdata};

pub const VAR: &str = "MIRROR_TEST_MSSQL";

pub async fn admin_client(settings: &DatabaseSettings) -> Client {
    let config = target::config(settings).unwrap();
    let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap()
}

/// One test's tenant on the live server, and a plain client to look at what the engine wrote.
pub struct Live {
    pub engine: Engine,
    pub tenant: Tenant,
    admin: Mutex<Client>,
    pub settings: DatabaseSettings,
}

impl Live {
    /// Connects to the server named by `MIRROR_TEST_MSSQL`; panics without one.
    pub async fn start(test: &str) -> Live {
        Live::start_with(test, |_| {}).await
    }

    pub async fn start_with(test: &str, adjust: impl FnOnce(&mut DatabaseSettings)) -> Live {
        let Some(url) = std::env::var(VAR).ok().filter(|u| !u.trim().is_empty()) else {
            panic!("{VAR} is not set: {test} needs a SQL Server to run against");
        };
        let context_id = format!("Test{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut settings = DatabaseSettings {
            url,
            name_template: "MirrorTest_{context_id}".into(),
            ..DatabaseSettings::default()
        };
        adjust(&mut settings);
        let mut options = MssqlOptions::default();
        options.pool.size = 4;
        let backend = MssqlBackend::connect(&settings, &options).unwrap();
        let engine = Engine::with_backend(Box::new(backend), &settings, Duration::from_secs(300));
        let tenant = engine.tenant(&context_id).unwrap();
        let admin = Mutex::new(admin_client(&settings).await);
        Live {
            engine,
            tenant,
            admin,
            settings,
        }
    }

    pub fn envelope(&self, message: Message) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            tenant: self.tenant.context_id.clone(),
            received_at_ms: chrono::Utc::now().timestamp_millis(),
            trace_id: "test".into(),
            message,
        }
    }

    pub async fn apply(&self, message: Message) -> Applied {
        self.engine.apply(&self.envelope(message)).await.unwrap()
    }

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

    /// `[db].[dbo].[table]`
    pub fn qualified(&self, table: &str) -> String {
        MssqlRender.table(&self.tenant, table).unwrap()
    }

    pub fn state_table(&self) -> String {
        self.qualified(&format!("{}_mirroring", self.tenant.context_id))
    }

    pub async fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Vec<tiberius::Row> {
        let mut admin = self.admin.lock().await;
        admin
            .query(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
            .into_first_result()
            .await
            .unwrap()
    }

    pub async fn exec(&self, sql: &str) {
        let mut admin = self.admin.lock().await;
        admin
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
            .into_results()
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }

    /// `(key, column as text)` of every row, by key.
    pub async fn key_text(&self, table: &str, column: &str) -> Vec<(i32, Option<String>)> {
        let sql = format!(
            "SELECT [{table}_id], CAST([{column}] AS nvarchar(max)) FROM {} ORDER BY 1",
            self.qualified(table)
        );
        self.query(&sql, &[])
            .await
            .iter()
            .map(|r| {
                (
                    r.get::<i32, _>(0).unwrap(),
                    r.get::<&str, _>(1).map(str::to_owned),
                )
            })
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT_BIG(*) FROM {}", self.qualified(table));
        self.query(&sql, &[]).await[0].get::<i64, _>(0).unwrap()
    }

    /// `(lsn, epoch, quarantine)` of a table's state row.
    pub async fn state(&self, table: &str) -> Option<(i64, i64, Option<String>)> {
        let sql = format!(
            "SELECT lsn, epoch, quarantine FROM {} WHERE tablename = @P1",
            self.state_table()
        );
        self.query(&sql, &[&table]).await.first().map(|r| {
            (
                r.get::<i64, _>(0).unwrap(),
                r.get::<i64, _>(1).unwrap(),
                r.get::<&str, _>(2).map(str::to_owned),
            )
        })
    }

    pub async fn table_exists(&self, table: &str) -> bool {
        let sql = format!(
            "SELECT COUNT(*) FROM [{}].sys.tables WHERE name = @P1",
            self.tenant.storage
        );
        self.query(&sql, &[&table]).await[0].get::<i32, _>(0) == Some(1)
    }

    /// `(column, type with length, nullable)` as SQL Server describes the table.
    pub async fn columns(&self, table: &str) -> Vec<(String, String, bool)> {
        let sql = format!(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE \
             FROM [{}].INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = @P1 ORDER BY ORDINAL_POSITION",
            self.tenant.storage
        );
        self.query(&sql, &[&table])
            .await
            .iter()
            .map(|r| {
                let ty = r.get::<&str, _>(1).unwrap();
                let ty = match r.get::<i32, _>(2) {
                    Some(-1) => format!("{ty}(max)"),
                    Some(n) if ty.starts_with("nvarchar") || ty.starts_with("varbinary") => {
                        format!("{ty}({n})")
                    }
                    _ => ty.to_owned(),
                };
                (
                    r.get::<&str, _>(0).unwrap().to_owned(),
                    ty,
                    r.get::<&str, _>(3) == Some("YES"),
                )
            })
            .collect()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let db = self.tenant.storage.replace(']', "]]");
        let name = self.tenant.storage.replace('\'', "''");
        let sql = format!(
            "IF DB_ID(N'{name}') IS NOT NULL BEGIN \
             ALTER DATABASE [{db}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; \
             DROP DATABASE [{db}]; END"
        );
        // A fresh runtime on its own thread: this runs inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut admin = admin_client(&settings).await;
                if let Ok(stream) = admin.simple_query(sql).await {
                    let _ = stream.into_results().await;
                }
            });
        })
        .join();
    }
}
