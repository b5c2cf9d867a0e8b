//! Removing what a pipeline created: its queues and exchanges, its tenants' mirror schemas and its
//! key files. Runs when the pipeline stops, and from `Drop` when a test failed half-way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use mirror_common::config::AmqpSettings;
use mirror_common::topology::Topology;
use tokio_postgres::NoTls;

use crate::DATABASE_URL;

/// Bound on the whole clean-up: it must never hang a test run.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// What to remove; tenants are added as tests create them.
#[derive(Debug, Clone)]
pub struct Cleanup {
    amqp: AmqpSettings,
    topology: Topology,
    schemas: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Cleanup {
    pub fn new(amqp: AmqpSettings, dir: PathBuf) -> Cleanup {
        Cleanup {
            topology: Topology::new(&amqp),
            amqp,
            schemas: Arc::default(),
            dir,
        }
    }

    /// Remembers a tenant's mirror schema for removal.
    pub fn add_schema(&self, schema: String) {
        self.schemas.lock().expect("the schema list").push(schema);
    }

    /// Removes everything, ignoring what is already gone; logs nothing and never panics.
    pub async fn run(&self) {
        let work = async {
            self.delete_topology().await;
            self.drop_schemas().await;
        };
        let _ = tokio::time::timeout(CLEANUP_TIMEOUT, work).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// [`Cleanup::run`] from synchronous code (a `Drop`): on a thread with its own runtime, since
    /// the caller may be inside a runtime that cannot block.
    pub fn run_blocking(&self) {
        let cleanup = self.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(cleanup.run());
            }
        })
        .join();
    }

    async fn delete_topology(&self) {
        let Ok(connection) = mirror_common::broker::connect(&self.amqp).await else {
            return;
        };
        let Ok(channel) = connection.create_channel().await else {
            return;
        };
        let topology = &self.topology;
        let queues = (0..topology.partitions)
            .map(|n| topology.queue(n))
            .chain([topology.dead_letter_queue()]);
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
        let _ = connection.close(200, "OK".into()).await;
    }

    async fn drop_schemas(&self) {
        let schemas = self.schemas.lock().expect("the schema list").clone();
        if schemas.is_empty() {
            return;
        }
        let Ok((client, connection)) = tokio_postgres::connect(DATABASE_URL, NoTls).await else {
            return;
        };
        let connection = tokio::spawn(connection);
        // A worker stopped abruptly may still hold a lock for a moment; don't wait for ever.
        let _ = client.batch_execute("SET lock_timeout = '20s'").await;
        for schema in schemas {
            let sql = format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                schema.replace('"', "\"\"")
            );
            let _ = client.batch_execute(&sql).await;
        }
        drop(client);
        let _ = connection.await;
    }
}
