//! A whole pipeline in this process: the real receiver on a random port and N real applier
//! workers, against the local RabbitMQ (a unique queue prefix, few partitions) and PostgreSQL,
//! with a generated token issuer in the `custom` auth environment.

use std::sync::Arc;
use std::time::Duration;

use mirror_applier::engine::{Engine, EngineOptions};
use mirror_applier::metrics::Metrics;
use mirror_common::config::{AuthEnvironment, LogSettings, Settings};
use mirror_common::shutdown::CancellationToken;
use mirror_common::telemetry;
use mirror_common::topology::Topology;
use tokio::task::JoinHandle;

use crate::broker::Queues;
use crate::cleanup::Cleanup;
use crate::eventually;
use crate::keys;
use crate::soap_client::{SoapClient, Tenant};
use crate::{AMQP_URL, DATABASE_URL, unique_id};

/// The application id the receiver is configured with (tokens carry `spn:<CLIENT_ID>`).
pub const CLIENT_ID: &str = "e2e0c0ffee0000000000000000000001";
/// Bound on a service stopping after its shutdown signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Database connections per worker: a test has a handful of tenants.
const WORKER_POOL_SIZE: usize = 4;

/// What varies between suites.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Applier workers; 0 leaves published messages in their queues.
    pub workers: usize,
    pub partitions: u16,
    /// How long the receiver waits for the mirror's answer to TableSchema.
    pub schema_reply_timeout_secs: u64,
}

impl Default for PipelineOptions {
    fn default() -> PipelineOptions {
        PipelineOptions {
            workers: 1,
            partitions: 2,
            schema_reply_timeout_secs: 60,
        }
    }
}

/// A running applier worker.
pub struct Worker {
    pub port: u16,
    pub metrics: Metrics,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    /// The value of one sample of the worker's metrics, e.g.
    /// `mirror_applier_messages_total{kind="RowData",outcome="done"}`; 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics.render().expect("the worker's metrics");
        text.lines()
            .find_map(|line| {
                line.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    /// Asks the worker to stop and waits until it has (it must stop cleanly).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(STOP_TIMEOUT, handle)
                .await
                .expect("the worker stops in time")
                .expect("the worker task does not panic")
                .expect("the worker stops cleanly");
        }
    }
}

impl Drop for Worker {
    /// A worker dropped without [`Worker::stop`] (a failed test) is still told to stop.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The receiver, the workers, and everything to remove afterwards.
pub struct Pipeline {
    /// The settings every service of this pipeline runs with.
    pub settings: Settings,
    pub topology: Topology,
    pub workers: Vec<Worker>,
    client: SoapClient,
    receiver_port: u16,
    receiver_shutdown: CancellationToken,
    receiver: Option<JoinHandle<()>>,
    cleanup: Cleanup,
    stopped: bool,
}

impl Pipeline {
    /// A pipeline with `workers` applier workers and the default options.
    pub async fn start(workers: usize) -> Pipeline {
        Pipeline::start_with(PipelineOptions {
            workers,
            ..PipelineOptions::default()
        })
        .await
    }

    /// Starts the receiver and `options.workers` workers and waits until all are ready.
    pub async fn start_with(options: PipelineOptions) -> Pipeline {
        telemetry::init_subscriber(&LogSettings {
            filter: "off".into(),
            ..LogSettings::default()
        });
        let id = unique_id();
        let dir = std::env::temp_dir().join(format!("mirror-e2e-{id}"));
        let keys = keys::shared();
        let files = keys.write(&dir);

        let mut settings = Settings::default();
        settings.http.listen = "127.0.0.1:0".into();
        settings.metrics.listen = "127.0.0.1:0".into();
        settings.auth.client_id = Some(CLIENT_ID.into());
        settings.auth.environment = AuthEnvironment::Custom;
        settings.auth.certificate_file = Some(files.issuer_certificate);
        settings.auth.private_key_file = Some(files.application_key);
        settings.amqp.url = AMQP_URL.into();
        settings.amqp.prefix = format!("e2e-{id}");
        settings.amqp.partitions = options.partitions;
        settings.amqp.connect_timeout_secs = 5;
        settings.amqp.publish_timeout_secs = 10;
        settings.amqp.schema_reply_timeout_secs = options.schema_reply_timeout_secs;
        settings.database.url = DATABASE_URL.into();

        let cleanup = Cleanup::new(settings.amqp.clone(), dir);
        let receiver = match mirror_receiver::Application::build(
            settings.clone(),
            mirror_receiver::BuildOptions::default(),
        )
        .await
        {
            Ok(receiver) => receiver,
            Err(error) => {
                cleanup.run().await;
                panic!("the receiver does not start: {error}");
            }
        };
        let receiver_port = receiver.port();
        let url = format!("http://127.0.0.1:{receiver_port}{}", settings.http.path);
        let receiver_shutdown = CancellationToken::new();
        // From here on, dropping the pipeline (a failed test) cleans up.
        let mut pipeline = Pipeline {
            topology: Topology::new(&settings.amqp),
            client: SoapClient::new(&url, keys.issuer.clone(), CLIENT_ID),
            settings,
            workers: Vec::new(),
            receiver_port,
            receiver: Some(tokio::spawn(receiver.run(receiver_shutdown.clone()))),
            receiver_shutdown,
            cleanup,
            stopped: false,
        };
        for _ in 0..options.workers {
            pipeline.add_worker().await;
        }
        pipeline.wait_ready().await;
        pipeline
    }

    /// Starts one more applier worker on this pipeline's queues.
    pub async fn add_worker(&mut self) {
        let metrics = Metrics::new().expect("the worker's metrics");
        let mut options =
            EngineOptions::for_settings(&self.settings.database, Some(metrics.clone()));
        options.postgres.pool_size = WORKER_POOL_SIZE;
        let engine = Engine::connect_with(&self.settings.database, options)
            .await
            .expect("the apply engine connects to PostgreSQL");
        let app = mirror_applier::startup::Application::build_with_metrics(
            self.settings.clone(),
            Arc::new(engine),
            metrics,
        )
        .await
        .expect("the worker starts");
        let shutdown = CancellationToken::new();
        let worker = Worker {
            port: app.port(),
            metrics: app.metrics(),
            shutdown: shutdown.clone(),
            handle: Some(tokio::spawn(app.run(shutdown))),
        };
        self.workers.push(worker);
    }

    /// Waits until the receiver and every worker say they are ready (broker connected, topology
    /// declared; for workers also the database).
    pub async fn wait_ready(&self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let ports = std::iter::once(("the receiver", self.receiver_port))
            .chain(self.workers.iter().map(|w| ("a worker", w.port)));
        for (service, port) in ports {
            let url = format!("http://127.0.0.1:{port}/readyz");
            eventually(&format!("{service} to be ready"), || async {
                let response = http.get(&url).send().await.ok()?;
                response.status().is_success().then_some(())
            })
            .await;
        }
    }

    /// The sum of one metric sample over every worker (see [`Worker::metric`]).
    pub fn metric(&self, sample: &str) -> f64 {
        self.workers.iter().map(|w| w.metric(sample)).sum()
    }

    /// A new tenant with a unique context id; its mirror is removed with the pipeline.
    pub fn tenant(&self) -> Tenant {
        let id = format!("E2e{}", unique_id());
        self.tenant_named(&id)
    }

    /// A tenant with the given context id (for the simulator, which names its tenants); its
    /// mirror is removed with the pipeline.
    pub fn tenant_named(&self, id: &str) -> Tenant {
        let schema = self.schema_of(id);
        self.cleanup.add_schema(schema.clone());
        Tenant::new(id.to_owned(), schema, self.client.clone())
    }

    /// The mirror schema of tenant `id`.
    pub fn schema_of(&self, id: &str) -> String {
        self.settings
            .database
            .name_template
            .replace("{context_id}", id)
    }

    /// The client every tenant calls with (tokens of the trusted issuer).
    pub fn client(&self) -> &SoapClient {
        &self.client
    }

    /// The mirroring URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// A connection of the test's own to this pipeline's queues.
    pub async fn queues(&self) -> Queues {
        Queues::connect(&self.settings.amqp).await
    }

    /// Stops the receiver and every worker (each must stop cleanly), then removes the queues,
    /// exchanges, mirrors and key files.
    pub async fn stop(mut self) {
        self.receiver_shutdown.cancel();
        if let Some(receiver) = self.receiver.take() {
            tokio::time::timeout(STOP_TIMEOUT, receiver)
                .await
                .expect("the receiver stops in time")
                .expect("the receiver task does not panic");
        }
        for worker in &mut self.workers {
            worker.stop().await;
        }
        self.cleanup.run().await;
        self.stopped = true;
    }
}

impl Drop for Pipeline {
    /// A test that failed half-way still removes what it created.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.receiver_shutdown.cancel();
        for worker in &self.workers {
            worker.shutdown.cancel();
        }
        self.cleanup.run_blocking();
    }
}
