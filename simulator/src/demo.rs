//! `mirror-sim demo`: the whole pipeline on one machine. Starts the receiver and an applier
//! in-process against the local RabbitMQ and PostgreSQL, with throwaway keys and a unique queue
//! prefix, runs the cycles, verifies every tenant's mirror, and cleans up its queues.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_common::config::Settings;
use mirror_common::shutdown::CancellationToken;
use mirror_common::topology::Topology;

use crate::driver::{DriverError, Endpoint, Observer, RunConfig, TenantRun, run};
use crate::keys::{Keys, KeysError};
use crate::verify::{PgReader, TenantReport, VerifyError, verify};

/// The application id the demo's receiver is configured with.
pub const DEMO_CLIENT_ID: &str = "6cf25376616343b38d14ddcd804f2891";
/// How long the services may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the services stopping.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Cycles, rows, script … (`tenants` is replaced by fresh, unique context ids).
    pub run: RunConfig,
    pub tenants: usize,
    pub amqp_url: String,
    pub database_url: String,
    pub partitions: u16,
    /// Size of the generated issuer and application keys.
    pub key_bits: usize,
    /// Drop the tenants' mirror schemas at the end (they are kept for inspection otherwise).
    pub drop_mirrors: bool,
}

impl Default for DemoConfig {
    fn default() -> DemoConfig {
        DemoConfig {
            run: RunConfig {
                rows: 20_000,
                cycles: 5,
                ..RunConfig::default()
            },
            tenants: 3,
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            partitions: 4,
            key_bits: crate::keys::KEY_BITS,
            drop_mirrors: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot reach RabbitMQ at {url}: {reason}")]
    RabbitMq { url: String, reason: String },
    #[error("cannot reach PostgreSQL at {url}: {reason}")]
    Postgres { url: String, reason: String },
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("invalid demo settings: {0}")]
    Settings(#[from] mirror_common::config::ConfigError),
    #[error("cannot start the receiver: {0}")]
    Receiver(#[from] mirror_receiver::StartupError),
    #[error("cannot start the applier: {0}")]
    Applier(String),
    #[error("{service} did not become ready within {secs} s ({url})")]
    NotReady {
        service: &'static str,
        url: String,
        secs: u64,
    },
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("stopped: shutdown requested")]
    Cancelled,
}

/// What a demo did.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    /// The queue prefix used (unique per demo).
    pub prefix: String,
    pub runs: Vec<TenantRun>,
    pub reports: Vec<TenantReport>,
    pub elapsed: Duration,
}

impl DemoOutcome {
    /// Every tenant settled and every mirror matches its source.
    pub fn is_clean(&self) -> bool {
        self.runs.iter().all(|r| r.settled == Some(true))
            && self.reports.len() == self.runs.len()
            && self.reports.iter().all(TenantReport::is_clean)
    }
}

/// Runs the demo. `observer` sees every cycle; `cancel` stops it between calls.
pub async fn demo(
    config: &DemoConfig,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let run_id = &id[..8];
    let prefix = format!("mirror-sim-{run_id}");
    check_rabbitmq(&config.amqp_url).await?;
    check_postgres(&config.database_url).await?;

    let keys = Keys::generate(config.key_bits)?;
    let key_dir = std::env::temp_dir().join(&prefix);
    let files = keys.write(&key_dir)?;
    let settings = Settings::load(
        None,
        [
            ("MIRROR__AUTH__CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
            ("MIRROR__AUTH__ENVIRONMENT", "custom".to_owned()),
            (
                "MIRROR__AUTH__CERTIFICATE_FILE",
                path(&files.issuer_certificate),
            ),
            (
                "MIRROR__AUTH__PRIVATE_KEY_FILE",
                path(&files.application_key_pem),
            ),
            ("MIRROR__AMQP__URL", config.amqp_url.clone()),
            ("MIRROR__AMQP__PREFIX", prefix.clone()),
            ("MIRROR__AMQP__PARTITIONS", config.partitions.to_string()),
            ("MIRROR__DATABASE__URL", config.database_url.clone()),
            ("MIRROR__HTTP__LISTEN", "127.0.0.1:0".to_owned()),
            ("MIRROR__METRICS__LISTEN", "127.0.0.1:0".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    )?;

    let services = CancellationToken::new();
    let receiver = mirror_receiver::Application::build(
        settings.clone(),
        mirror_receiver::BuildOptions::default(),
    )
    .await?;
    let applier = mirror_applier::startup::Application::build(settings.clone())
        .await
        .map_err(|e| DemoError::Applier(format!("{e:#}")))?;
    let receiver_port = receiver.port();
    let applier_port = applier.port();
    let receiver_task = tokio::spawn(receiver.run(services.clone()));
    let applier_task = tokio::spawn(applier.run(services.clone()));

    let result = async {
        wait_ready("the receiver", receiver_port, &cancel).await?;
        wait_ready("the applier", applier_port, &cancel).await?;
        let url = format!("http://127.0.0.1:{receiver_port}{}", settings.http.path);
        let endpoint = Arc::new(Endpoint::new(
            &url,
            keys.credentials(DEMO_CLIENT_ID),
            Duration::from_secs(120),
        )?);
        let mut run_config = config.run.clone();
        run_config.tenants = (1..=config.tenants.max(1))
            .map(|n| format!("Demo{run_id}T{n}"))
            .collect();
        let runs = run(endpoint, &run_config, observer, cancel.clone()).await?;
        if cancel.is_cancelled() {
            return Err(DemoError::Cancelled);
        }
        let mut reports = Vec::with_capacity(runs.len());
        for tenant in &runs {
            let mut reader = PgReader::connect(
                &config.database_url,
                &settings.database.name_template,
                tenant.tenant(),
            )
            .await?;
            reports.push(verify(&mut reader, &tenant.source).await?);
            if config.drop_mirrors {
                drop_schema(&reader, &settings.database.name_template, tenant.tenant()).await;
            }
        }
        Ok((runs, reports))
    }
    .await;

    services.cancel();
    for (name, stopped) in [
        (
            "receiver",
            tokio::time::timeout(STOP_TIMEOUT, receiver_task)
                .await
                .is_ok(),
        ),
        (
            "applier",
            tokio::time::timeout(STOP_TIMEOUT, applier_task)
                .await
                .is_ok(),
        ),
    ] {
        if !stopped {
            tracing::warn!(service = name, "The service did not stop in time.");
        }
    }
    delete_topology(&settings).await;
    if let Err(error) = std::fs::remove_dir_all(&key_dir) {
        tracing::warn!(%error, dir = %key_dir.display(), "Cannot remove the demo keys.");
    }
    let (runs, reports) = result?;
    Ok(DemoOutcome {
        prefix,
        runs,
        reports,
        elapsed: started.elapsed(),
    })
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

async fn check_rabbitmq(url: &str) -> Result<(), DemoError> {
    let settings = mirror_common::config::AmqpSettings {
        url: url.to_owned(),
        connect_timeout_secs: 5,
        ..Default::default()
    };
    let shown = crate::verify::redact(url);
    let connection = mirror_common::broker::connect(&settings)
        .await
        .map_err(|e| DemoError::RabbitMq {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    let _ = connection.close(200, "".into()).await;
    Ok(())
}

async fn check_postgres(url: &str) -> Result<(), DemoError> {
    PgReader::connect(url, "{context_id}", "check")
        .await
        .map(drop)
        .map_err(|e| DemoError::Postgres {
            url: crate::verify::redact(url),
            reason: match e {
                VerifyError::Connect { reason, .. } => reason,
                other => other.to_string(),
            },
        })
}

/// Polls `/readyz` until it answers 200.
async fn wait_ready(
    service: &'static str,
    port: u16,
    cancel: &CancellationToken,
) -> Result<(), DemoError> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|source| DemoError::Driver(DriverError::Client { source }))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if cancel.is_cancelled() {
            return Err(DemoError::Cancelled);
        }
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(DemoError::NotReady {
        service,
        url,
        secs: READY_TIMEOUT.as_secs(),
    })
}

async fn drop_schema(reader: &PgReader, template: &str, tenant: &str) {
    let schema = template
        .replace("{context_id}", tenant)
        .replace('"', "\"\"");
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    match tokio::time::timeout(Duration::from_secs(60), reader.client().batch_execute(&sql)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, schema, "Cannot drop the mirror schema."),
        Err(_) => tracing::warn!(schema, "Dropping the mirror schema timed out."),
    }
}

/// Deletes the demo's exchanges and queues (its prefix is unique, nothing else uses them).
pub async fn delete_topology(settings: &Settings) {
    let topology = Topology::new(&settings.amqp);
    let work = async {
        let connection = mirror_common::broker::connect(&settings.amqp).await?;
        let channel = connection.create_channel().await?;
        for partition in 0..topology.partitions {
            channel
                .queue_delete(
                    topology.queue(partition).as_str().into(),
                    Default::default(),
                )
                .await?;
        }
        channel
            .queue_delete(
                topology.dead_letter_queue().as_str().into(),
                Default::default(),
            )
            .await?;
        for exchange in [topology.exchange(), topology.dead_letter_exchange()] {
            channel
                .exchange_delete(exchange.as_str().into(), Default::default())
                .await?;
        }
        let _ = connection.close(200, "".into()).await;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    match tokio::time::timeout(Duration::from_secs(30), work).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, prefix = %topology.prefix, "Cannot delete the demo queues.")
        }
        Err(_) => tracing::warn!(prefix = %topology.prefix, "Deleting the demo queues timed out."),
    }
}
