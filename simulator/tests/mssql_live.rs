//! The SQL Server mirror reader against a real server. It needs one: `MIRROR_TEST_MSSQL` holds its
//! URL or connection string, e.g.
//! `mssql://sa:<password>@127.0.0.1:1433/master?trustServerCertificate=true` (docker-compose's
//! SQL Server). The `live_…` tests are ignored by default and fail when asked to run without it.
//!
//! The applier's engine writes a tenant mirror (its own database, `SimTest_<id>`, dropped
//! afterwards); the reader must list it, spell its types as sent, and read back every value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::NaiveDate;
use mirror_applier::dialect::mssql::pool::{Pool, PoolOptions};
use mirror_applier::dialect::mssql::target;
use mirror_applier::engine::{Applied, Engine};
use mirror_common::config::DatabaseSettings;
use mirror_common::schema::{Column, ColumnType, TableSchema};
use mirror_common::value::Value;
use mirror_common::wire::{Envelope, Message, Operation, Row, RowBatch};
use mirror_sim::verify::connect;
use uuid::Uuid;

const TEMPLATE: &str = "SimTest_{context_id}";

fn server() -> String {
    std::env::var("MIRROR_TEST_MSSQL")
        .expect("MIRROR_TEST_MSSQL must name a SQL Server for the live tests")
}

fn envelope(tenant: &str, message: Message) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        tenant: tenant.to_owned(),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        trace_id: String::new(),
        message,
    }
}

fn column(name: &str, ty: ColumnType) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        nullable: name != "item_id",
        default: None,
    }
}

/// Drops the tenant database when the test ends, passed or failed.
struct DropDatabase {
    settings: DatabaseSettings,
    database: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let sql = format!(
            "IF DB_ID(N'{0}') IS NOT NULL DROP DATABASE [{0}]",
            self.database
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let pool = Pool::new(target::config(&settings).unwrap(), PoolOptions::default());
                let mut conn = pool.get().await.unwrap();
                conn.client()
                    .unwrap()
                    .simple_query(sql)
                    .await
                    .unwrap()
                    .into_results()
                    .await
                    .unwrap();
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test database {}", self.database);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_the_reader_sees_what_the_engine_wrote_with_types_as_sent() {
    let url = server();
    let tenant = format!("Sim{}", &Uuid::new_v4().simple().to_string()[..10]);
    let settings = DatabaseSettings {
        url: url.clone(),
        name_template: TEMPLATE.into(),
        ..DatabaseSettings::default()
    };
    let _cleanup = DropDatabase {
        settings: settings.clone(),
        database: TEMPLATE.replace("{context_id}", &tenant),
    };
    let engine = Engine::connect(&settings).await.unwrap();
    let schema = TableSchema {
        name: "item".into(),
        columns: vec![
            column("item_id", ColumnType::Int),
            column("name", ColumnType::NVarChar(Some(40))),
            column("notes", ColumnType::NText),
            column("price", ColumnType::Decimal(12, 4)),
            column("registered", ColumnType::DateTime),
            column("born", ColumnType::Date),
            column("flag", ColumnType::Bit),
            column("ratio", ColumnType::Float),
            column("small", ColumnType::SmallInt),
            column("tiny", ColumnType::TinyInt),
            column("big", ColumnType::BigInt),
            column("guid", ColumnType::UniqueIdentifier),
            column("blob", ColumnType::VarBinary(None)),
        ],
    };
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_milli_opt(13, 14, 15, 170)
        .unwrap();
    let full = vec![
        Value::Int(1),
        Value::Text("Ærlig talt".into()),
        Value::Text("long text".into()),
        Value::Decimal("-12.5".into()),
        Value::DateTime(at),
        Value::Date(at.date()),
        Value::Bit(true),
        Value::Float(0.25),
        Value::SmallInt(-3),
        Value::TinyInt(250),
        Value::BigInt(1 << 40),
        Value::Uuid(Uuid::from_u128(42)),
        Value::Binary(vec![0, 1, 255]),
    ];
    let mut empty = vec![Value::Int(2)];
    empty.resize(full.len(), Value::Null);

    let create = Message::TableSchema {
        tables: vec![schema.clone()],
    };
    assert!(matches!(
        engine.apply(&envelope(&tenant, create)).await.unwrap(),
        Applied::Done { .. }
    ));
    let rows = Message::RowData {
        batches: vec![RowBatch {
            table: schema.clone(),
            lsn: 7,
            rows: [&full, &empty]
                .into_iter()
                .map(|values| Row {
                    op: Operation::Insert,
                    values: values.clone(),
                })
                .collect(),
        }],
    };
    engine.apply(&envelope(&tenant, rows)).await.unwrap();

    let mut reader =
        tokio::time::timeout(Duration::from_secs(60), connect(&url, TEMPLATE, &tenant))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(reader.tables().await.unwrap(), vec!["item".to_owned()]);
    let columns = reader.columns("item").await.unwrap().unwrap();
    let expected: Vec<(String, String)> = schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), reader.expected_type(c.ty)))
        .collect();
    let actual: Vec<(String, String)> = columns.into_iter().map(|c| (c.name, c.ty)).collect();
    assert_eq!(actual, expected);
    assert_eq!(reader.columns("absent").await.unwrap(), None);
    let typed: Vec<(String, ColumnType)> = schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect();
    let mut read = Vec::new();
    let count = reader
        .scan("item", &typed, &mut |values| read.push(values))
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(read, vec![full, empty]);
    assert_eq!(reader.lsns().await.unwrap().get("item"), Some(&7));
}

#[tokio::test]
#[ignore = "needs a SQL Server: set MIRROR_TEST_MSSQL and run with --run-ignored"]
async fn live_a_missing_tenant_database_reads_as_an_empty_mirror() {
    let tenant = format!("Sim{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut reader = connect(&server(), TEMPLATE, &tenant).await.unwrap();
    assert_eq!(reader.storage(), format!("SimTest_{tenant}"));
    assert!(reader.tables().await.unwrap().is_empty());
    assert_eq!(reader.columns("item").await.unwrap(), None);
    assert!(reader.lsns().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_reader_follows_the_url_and_an_unreachable_server_fails_to_connect() {
    for url in [
        "mssql://sa:secret@127.0.0.1:1/master?trustServerCertificate=true",
        "Server=tcp:127.0.0.1,1;Database=master;User Id=sa;Password=secret",
    ] {
        let error = connect(url, TEMPLATE, "Cust1").await.err().unwrap();
        let text = error.to_string();
        assert!(text.starts_with("cannot connect"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
    let error = connect("mysql://x@y/z", TEMPLATE, "Cust1")
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("mysql"), "{error}");
}
