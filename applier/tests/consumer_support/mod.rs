//! Shared harness of the consumer suites: a unique queue prefix and tenant per test, publishing as
//! the receiver does, a worker started on port 0, and checks against RabbitMQ and PostgreSQL.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use mirror_applier::consumer::Mirror;
use mirror_applier::engine::Engine;
use mirror_applier::metrics::Metrics;
use mirror_applier::startup::Application;
use mirror_common::config::{LogSettings, Settings};
use mirror_common::schema::{Column, ColumnType, TableSchema};
use mirror_common::telemetry;
use mirror_common::topology::{self, CONTENT_TYPE, Topology, header};
use mirror_common::value::Value;
use mirror_common::wire::{self, Envelope, Message, Operation, Row, RowBatch, SchemaReply};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod net;

pub use mirror_common::testing::eventually_within;
pub use net::{Proxy, http_get};

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const PG_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// One test's world: its own prefix, tenant, broker connection and database session.
pub struct Harness {
    pub settings: Settings,
    pub topology: Topology,
    pub tenant: String,
    pub amqp: Connection,
    pub channel: Channel,
    pub pg: tokio_postgres::Client,
    cleaned: bool,
}

impl Harness {
    pub async fn new(partitions: u16) -> Harness {
        telemetry::init_subscriber(&LogSettings {
            filter: "off".into(),
            ..LogSettings::default()
        });
        let id = Uuid::new_v4().simple().to_string();
        let mut settings = Settings::default();
        settings.amqp.url = AMQP_URL.into();
        settings.amqp.prefix = format!("test-{}", &id[..12]);
        settings.amqp.partitions = partitions;
        settings.amqp.connect_timeout_secs = 5;
        settings.amqp.publish_timeout_secs = 5;
        settings.metrics.listen = "127.0.0.1:0".into();
        let topology = Topology::new(&settings.amqp);
        let tenant = format!("Cust{}", &id[12..20]);
        let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ on 127.0.0.1:5672");
        let channel = amqp.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        topology::declare(&channel, &topology).await.unwrap();
        let (pg, connection) = tokio_postgres::connect(PG_URL, NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        tokio::spawn(connection);
        Harness {
            settings,
            topology,
            tenant,
            amqp,
            channel,
            pg,
            cleaned: false,
        }
    }

    /// The tenant's PostgreSQL schema.
    pub fn storage(&self) -> String {
        self.settings
            .database
            .name_template
            .replace("{context_id}", &self.tenant)
    }

    pub fn partition_queue(&self) -> String {
        self.topology
            .queue(self.topology.partition_of(&self.tenant))
    }

    /// A fresh envelope of this test's tenant.
    pub fn envelope(&self, message: Message) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            tenant: self.tenant.clone(),
            received_at_ms: chrono::Utc::now().timestamp_millis(),
            trace_id: Uuid::new_v4().simple().to_string(),
            message,
        }
    }

    /// The properties the receiver puts on a partition message.
    pub fn properties(&self, envelope: &Envelope) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            header::TENANT.into(),
            AMQPValue::LongString(envelope.tenant.as_str().into()),
        );
        headers.insert(
            header::TRACE_ID.into(),
            AMQPValue::LongString(envelope.trace_id.as_str().into()),
        );
        BasicProperties::default()
            .with_message_id(envelope.id.to_string().into())
            .with_type(envelope.message.kind().as_str().into())
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(2)
            .with_headers(headers)
    }

    /// Publishes as the receiver does: persistent, mandatory, to the tenant's partition, confirmed.
    pub async fn publish(&self, envelope: &Envelope) {
        let body = wire::encode(envelope).unwrap();
        self.publish_raw(&body, self.properties(envelope)).await;
    }

    /// Publishes any body to the tenant's partition.
    pub async fn publish_raw(&self, body: &[u8], properties: BasicProperties) {
        let partition = self.topology.partition_of(&self.tenant);
        let confirm = self
            .channel
            .basic_publish(
                self.topology.exchange().as_str().into(),
                self.topology.routing_key(partition).as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack() && confirm.take_message().is_none());
    }

    /// Ready (not unacknowledged) messages in `queue`.
    pub async fn ready(&self, queue: &str) -> u32 {
        let channel = self.amqp.create_channel().await.unwrap();
        let queue = mirror_common::topology::inspect(&channel, queue)
            .await
            .unwrap();
        let _ = channel.close(200, "OK".into()).await;
        queue.message_count()
    }

    /// Publishes a TableSchema request that asks for a direct reply-to answer. Direct reply-to
    /// needs the request to go out on the channel that consumes the replies: the harness channel.
    pub async fn ask(&self, envelope: Envelope, correlation: &str) {
        let properties = self
            .properties(&envelope)
            .with_reply_to("amq.rabbitmq.reply-to".into())
            .with_correlation_id(correlation.into());
        self.publish_raw(&wire::encode(&envelope).unwrap(), properties)
            .await;
    }

    /// Takes every message out of the dead-letter queue.
    pub async fn take_dead_letters(&self) -> Vec<lapin::message::Delivery> {
        let queue = self.topology.dead_letter_queue();
        let mut letters = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            letters.push(message.delivery);
        }
        letters
    }

    /// Starts a worker on the real engine.
    pub async fn start(&self) -> Worker {
        let engine = Engine::connect(&self.settings.database).await.unwrap();
        self.start_with(Arc::new(engine)).await
    }

    /// Starts a worker on `mirror`.
    pub async fn start_with(&self, mirror: Arc<dyn Mirror>) -> Worker {
        let app = Application::build_with(self.settings.clone(), mirror)
            .await
            .unwrap();
        let port = app.port();
        let metrics = app.metrics();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        Worker {
            port,
            metrics,
            shutdown,
            handle,
        }
    }

    /// Runs a query returning one row with one column.
    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        self.pg.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Rows of a mirror table of this tenant.
    pub async fn rows(&self, table: &str) -> Vec<(i32, Option<String>)> {
        let sql = format!(
            r#"SELECT {table}_id, name FROM "{}"."{table}" ORDER BY 1"#,
            self.storage()
        );
        self.pg
            .query(&sql, &[])
            .await
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            .unwrap_or_default()
    }

    /// Deletes this test's queues, exchanges and tenant schema.
    pub async fn cleanup(mut self) {
        cleanup(&self.channel, &self.pg, &self.topology, &self.storage()).await;
        self.cleaned = true;
    }
}

impl Drop for Harness {
    /// A failed test still removes what it created (on a thread of its own: `Drop` cannot await).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let topology = self.topology.clone();
        let storage = self.storage();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(amqp) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
                else {
                    return;
                };
                let Ok(channel) = amqp.create_channel().await else {
                    return;
                };
                let Ok((pg, connection)) = tokio_postgres::connect(PG_URL, NoTls).await else {
                    return;
                };
                tokio::spawn(connection);
                cleanup(&channel, &pg, &topology, &storage).await;
            });
        })
        .join();
    }
}

async fn cleanup(
    channel: &Channel,
    pg: &tokio_postgres::Client,
    topology: &Topology,
    storage: &str,
) {
    let mut queues: Vec<String> = (0..topology.partitions)
        .map(|p| topology.queue(p))
        .collect();
    queues.push(topology.dead_letter_queue());
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [topology.exchange(), topology.dead_letter_exchange()] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = pg
        .batch_execute(&format!(r#"DROP SCHEMA IF EXISTS "{storage}" CASCADE"#))
        .await;
}

/// A running worker.
pub struct Worker {
    pub port: u16,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    /// Asks for a graceful shutdown and waits for it (at most 20 s).
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("worker stops within 20 s")
            .unwrap()
            .unwrap();
    }

    /// The value of one sample in `/metrics`, e.g.
    /// `mirror_applier_messages_total{kind="RowData",outcome="done"}`; 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics.render().unwrap();
        text.lines()
            .find_map(|line| {
                let value = line.strip_prefix(sample)?.strip_prefix(' ')?;
                value.trim().parse().ok()
            })
            .unwrap_or(0.0)
    }

    /// `GET path` on the worker's probe port: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).await
    }
}

/// The next answer on the reply-to consumer: its correlation id and the decoded reply.
pub async fn next_reply(
    replies: &mut lapin::Consumer,
    wait: Duration,
) -> (Option<String>, SchemaReply) {
    let delivery = tokio::time::timeout(wait, replies.next())
        .await
        .expect("a schema reply")
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str()),
        Some(CONTENT_TYPE)
    );
    let correlation = delivery
        .properties
        .correlation_id()
        .as_ref()
        .map(|s| s.as_str().to_owned());
    (
        correlation,
        wire::decode::<SchemaReply>(&delivery.data).unwrap(),
    )
}

/// `<table>` with an integer key and a nullable `name`.
pub fn table(name: &str) -> TableSchema {
    TableSchema {
        name: name.into(),
        columns: vec![
            Column {
                name: format!("{name}_id"),
                ty: ColumnType::Int,
                nullable: false,
                default: None,
            },
            Column {
                name: "name".into(),
                ty: ColumnType::NVarChar(Some(50)),
                nullable: true,
                default: None,
            },
        ],
    }
}

pub fn schema_message(tables: &[&str]) -> Message {
    Message::TableSchema {
        tables: tables.iter().map(|t| table(t)).collect(),
    }
}

/// Upserts of `(key, name)` into `table`, carrying `lsn`.
pub fn rows_message(table_name: &str, lsn: i64, rows: &[(i32, &str)]) -> Message {
    Message::RowData {
        batches: vec![RowBatch {
            table: table(table_name),
            lsn,
            rows: rows
                .iter()
                .map(|(key, name)| Row {
                    op: Operation::Insert,
                    values: vec![Value::Int(*key), Value::Text((*name).into())],
                })
                .collect(),
        }],
    }
}
